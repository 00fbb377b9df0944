// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "procfs.h"

int procfs__read_file(int pid, const char *name, size_t max_bytes, char **text)
{
	size_t len = 0, cap = 0;
	char path[64], *buf = NULL, *grown;
	ssize_t got;
	int fd, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do {
		if (cap - len < 2) {
			cap = cap ? cap * 2 : 4096;
			grown = realloc(buf, cap);
			if (!grown) {
				err = -ENOMEM;
				goto out;
			}
			buf = grown;
		}
		got = read(fd, buf + len, cap - len - 1);
		if (got < 0) {
			err = -errno;
			goto out;
		}
		len += got;
	} while (got > 0 && len < max_bytes);
	buf[len < max_bytes ? len : max_bytes] = '\0';
	*text = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return err;
}

/* Value of "Key:   123 kB" in /proc/pid/status, in bytes. */
static uint64_t status_kb(const char *status, const char *key)
{
	const char *p = strstr(status, key);

	return p ? strtoull(p + strlen(key), NULL, 10) * 1024 : 0;
}

int procfs__memory(int pid, uint64_t *rss_bytes, uint64_t *anon_bytes)
{
	char *status;
	int err = procfs__read_file(pid, "status", 1 << 16, &status);

	if (err)
		return err;
	if (!strstr(status, "VmRSS:")) {
		/* A zombie has no mm: no memory lines at all. */
		free(status);
		return -ESRCH;
	}
	*rss_bytes = status_kb(status, "\nVmRSS:");
	*anon_bytes = status_kb(status, "\nRssAnon:");
	free(status);
	return 0;
}

int procfs__getenv(int pid, const char *name, char **value)
{
	char path[64], *buf = NULL;
	size_t cap = 0, namelen = strlen(name);
	ssize_t len;
	FILE *f;

	*value = NULL;
	snprintf(path, sizeof(path), "/proc/%d/environ", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	/* Entries are NUL-separated "NAME=value" strings. */
	while ((len = getdelim(&buf, &cap, '\0', f)) > 0) {
		if ((size_t)len > namelen && !strncmp(buf, name, namelen) && buf[namelen] == '=') {
			*value = strdup(buf + namelen + 1);
			break;
		}
	}
	free(buf);
	fclose(f);
	return 0;
}

static int add_unique(char ***paths, size_t *n, size_t max, const char *path)
{
	char **grown;

	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*paths)[i], path))
			return 0;
	if (*n >= max)
		return 0;
	grown = realloc(*paths, (*n + 1) * sizeof(**paths));
	if (!grown)
		return -ENOMEM;
	*paths = grown;
	if (!(grown[*n] = strdup(path)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

int procfs__mapped_objects(int pid, size_t max_objects, char ***paths, size_t *n)
{
	char *maps, *line, *save = NULL, prefixed[4352];
	int err;

	*paths = NULL;
	*n = 0;
	err = procfs__read_file(pid, "maps", 1 << 24, &maps);
	if (err)
		return err;
	for (line = strtok_r(maps, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
		char *path = strchr(line, '/');

		if (!path || strstr(path, " (deleted)"))
			continue;
		snprintf(prefixed, sizeof(prefixed), "/proc/%d/root%s", pid, path);
		err = add_unique(paths, n, max_objects, prefixed);
	}
	free(maps);
	return err;
}

bool procfs__parse_mapping(const char *line, size_t len, struct procfs_mapping *out)
{
	int path_at = -1;

	/* " %n" also skips a newline: a path offset past len is the next
	 * line's, and this mapping has none. */
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n", &out->start, &out->end,
		   out->perms, &out->offset, &out->dev_major, &out->dev_minor, &out->inode, &path_at) < 7)
		return false;
	out->path = NULL;
	out->path_len = 0;
	if (path_at >= 0 && (size_t)path_at < len && line[path_at] == '/') {
		out->path = line + path_at;
		out->path_len = len - path_at;
	}
	return true;
}

int procfs__state(int pid, char *state)
{
	char *stat, *p;
	int err = procfs__read_file(pid, "stat", 4096, &stat);

	if (err)
		return err;
	/* comm may contain spaces and parentheses: the state follows the last ')'. */
	p = strrchr(stat, ')');
	if (!p || !p[1] || !p[2]) {
		free(stat);
		return -EINVAL;
	}
	*state = p[2];
	free(stat);
	return 0;
}
