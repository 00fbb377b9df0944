// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The memory cgroup of a process: where it is (/proc/PID/cgroup and the
 * mounts in /proc/self/mountinfo) and how close it is to its limit.
 *
 * A process is constrained by every limit on the way from its cgroup up to
 * the root (v2 always; v1 with use_hierarchy, the only mode since Linux
 * 5.11 / commit bef8620cd8e0 "mm: memcg: deprecate the non-hierarchical
 * mode"). Containers and systemd slices commonly put the limit on a parent,
 * so the directories from the process's cgroup up to the mount are all read
 * and the one with the least headroom is reported.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"

/* v1 reports "unlimited" as PAGE_COUNTER_MAX pages in bytes, which is just
 * below 2^63 and depends on the page size: anything this large is no limit. */
#define V1_UNLIMITED (UINT64_C(1) << 62)

enum cg_version { CG_V1, CG_V2 };

struct cg_files {
	const char *limit;
	const char *usage;
};

static const struct cg_files cg_files[] = {
	[CG_V1] = { "memory.limit_in_bytes", "memory.usage_in_bytes" },
	[CG_V2] = { "memory.max", "memory.current" },
};

/* A mount of a cgroup hierarchy: the part of the hierarchy it shows (root)
 * and where (dir, already prefixed with sysfs_root). */
struct cg_mount {
	char root[PATH_MAX];
	char dir[PATH_MAX];
	bool found;
};

/* Undo mountinfo's octal escapes of space, tab, newline and backslash. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* Whether the comma-separated list has item as one of its entries. */
static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	const char *p = list;

	while (p && *p) {
		if (!strncmp(p, item, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

/* The part of path below the mount's root, or NULL when the mount does not
 * show path (a bind mount of another subtree). */
static const char *below_root(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (!strcmp(root, "/"))
		return path;
	if (strncmp(path, root, n) || (path[n] != '/' && path[n] != '\0'))
		return NULL;
	return path + n;
}

/*
 * Parse one mountinfo line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS
 * [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS". Fills the v1 memory or the v2
 * mount when the line is one and shows cg_path; when several do, the one
 * with the deepest root wins (it is the most specific view).
 */
static void parse_mount(char *line, const char *prefix, const char *v1_path, const char *v2_path,
			struct cg_mount *v1, struct cg_mount *v2)
{
	char *f[6], *sep, *fstype, *super, *save = NULL;
	struct cg_mount *m;
	const char *path;
	int i;

	sep = strstr(line, " - ");
	if (!sep)
		return;
	*sep = '\0';
	for (i = 0; i < 6; i++) {
		f[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!f[i])
			return;
	}
	fstype = strtok_r(sep + 3, " \n", &save);
	if (!fstype || !strtok_r(NULL, " \n", &save))
		return;
	super = strtok_r(NULL, " \n", &save);
	if (!strcmp(fstype, "cgroup") && super && list_has(super, "memory")) {
		m = v1;
		path = v1_path;
	} else if (!strcmp(fstype, "cgroup2")) {
		m = v2;
		path = v2_path;
	} else {
		return;
	}
	unescape(f[3]);
	unescape(f[4]);
	if (!path || !below_root(path, f[3]))
		return;
	if (m->found && strlen(m->root) >= strlen(f[3]))
		return;
	if (snprintf(m->root, sizeof(m->root), "%s", f[3]) >= (int)sizeof(m->root) ||
	    snprintf(m->dir, sizeof(m->dir), "%s%s", prefix, f[4]) >= (int)sizeof(m->dir))
		return;
	m->found = true;
}

static int find_mounts(const char *prefix, const char *v1_path, const char *v2_path,
		       struct cg_mount *v1, struct cg_mount *v2)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/self/mountinfo", prefix);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0)
		parse_mount(line, prefix, v1_path, v2_path, v1, v2);
	free(line);
	fclose(f);
	return 0;
}

/*
 * Parse /proc/PID/cgroup: "ID:CONTROLLERS:PATH" lines. The v1 line whose
 * controllers include "memory", and the v2 line "0::PATH". Paths may hold
 * ':' so PATH is the rest of the line.
 */
static int read_proc_cgroup(const char *prefix, int pid, char *v1, char *v2, size_t size)
{
	char path[PATH_MAX], *line = NULL, *ctl, *p;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/%d/cgroup", prefix, pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		ctl = strchr(line, ':');
		p = ctl ? strchr(ctl + 1, ':') : NULL;
		if (!p)
			continue;
		*p++ = '\0';
		*ctl++ = '\0';
		if (!strcmp(line, "0") && !*ctl)
			snprintf(v2, size, "%s", p);
		else if (list_has(ctl, "memory"))
			snprintf(v1, size, "%s", p);
	}
	free(line);
	fclose(f);
	return 0;
}

/* Read a cgroup value file: a number, or "max" (v2 for no limit). */
static int read_value(const char *dir, const char *name, uint64_t *val, bool *is_max)
{
	char path[PATH_MAX], buf[64], *end;
	unsigned long long v;
	size_t n;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	*is_max = !strncmp(buf, "max", 3);
	if (*is_max)
		return 0;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	*val = v;
	return 0;
}

/*
 * Read limit and usage of one directory. Returns -ENOENT when the memory
 * controller is not there (v2 root, or not enabled in that subtree).
 */
static int read_level(const char *dir, enum cg_version ver, struct cgroup_memory *lvl)
{
	uint64_t limit = 0, usage = 0;
	bool is_max = false, usage_max;
	size_t len;
	int err;

	err = read_value(dir, cg_files[ver].limit, &limit, &is_max);
	if (err)
		return err;
	err = read_value(dir, cg_files[ver].usage, &usage, &usage_max);
	if (err)
		return err;
	lvl->has_limit = !is_max && !(ver == CG_V1 && limit >= V1_UNLIMITED);
	lvl->limit_bytes = lvl->has_limit ? limit : 0;
	lvl->usage_bytes = usage_max ? 0 : usage;
	/* read_hierarchy already bounds dir; checked again so the copy is
	 * visibly safe (and gcc sees no truncation). */
	len = strlen(dir);
	if (len >= sizeof(lvl->path))
		return -ENAMETOOLONG;
	memcpy(lvl->path, dir, len + 1);
	return 0;
}

/* Whether path has a ".." component, which would climb out of the mount. */
static bool has_dotdot(const char *path)
{
	const char *p = path;

	while ((p = strstr(p, "..")) != NULL) {
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return true;
		p += 2;
	}
	return false;
}

static uint64_t headroom(const struct cgroup_memory *m)
{
	return m->usage_bytes >= m->limit_bytes ? 0 : m->limit_bytes - m->usage_bytes;
}

/*
 * Walk from the process's directory up to the mount point and keep the
 * level with the least headroom; with no limit anywhere, the nearest level
 * with the controller (usage only). Returns -ENOENT when no level has it.
 */
static int read_hierarchy(const struct cg_mount *m, const char *cg_path, enum cg_version ver,
			  struct cgroup_memory *out)
{
	struct cgroup_memory lvl, best = { 0 };
	const char *rel = below_root(cg_path, m->root);
	size_t base;
	char dir[PATH_MAX], *slash;
	bool found = false;

	/* A path outside our view (another cgroup namespace shows "/.."). */
	if (!rel || has_dotdot(rel))
		return -ENOENT;
	base = strlen(m->dir);
	if (snprintf(dir, sizeof(dir), "%s%s", m->dir, rel) >= (int)sizeof(dir) ||
	    strlen(dir) >= sizeof(out->path))
		return -ENAMETOOLONG;
	/* Drop a trailing '/', as for the root path "/". */
	while (strlen(dir) > base && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = '\0';
	for (;;) {
		if (!read_level(dir, ver, &lvl)) {
			if (!found || (lvl.has_limit &&
				       (!best.has_limit || headroom(&lvl) < headroom(&best))))
				best = lvl;
			found = true;
		}
		slash = strlen(dir) > base ? strrchr(dir + base, '/') : NULL;
		if (!slash)
			break;
		*slash = '\0';
	}
	if (!found)
		return -ENOENT;
	*out = best;
	return 0;
}

int cgroup__memory(int pid, const char *sysfs_root, struct cgroup_memory *out)
{
	struct cg_mount *v1m = NULL, *v2m = NULL;
	char v1[PATH_MAX] = "", v2[PATH_MAX] = "";
	const char *prefix = sysfs_root && strcmp(sysfs_root, "/") ? sysfs_root : "";
	int err;

	if (pid <= 0 || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	err = read_proc_cgroup(prefix, pid, v1, v2, sizeof(v1));
	if (err)
		return err;
	if (!*v1 && !*v2)
		return -ENOENT;
	/* Two PATH_MAX pairs: keep them off the stack. */
	v1m = calloc(1, sizeof(*v1m));
	v2m = calloc(1, sizeof(*v2m));
	if (!v1m || !v2m) {
		err = -ENOMEM;
		goto out;
	}
	err = find_mounts(prefix, *v1 ? v1 : NULL, *v2 ? v2 : NULL, v1m, v2m);
	if (err)
		goto out;
	/* On hybrid systems (v1 memory plus a cgroup2 mount without the memory
	 * controller) the v1 hierarchy is the one that enforces limits. */
	err = -ENOENT;
	if (v1m->found)
		err = read_hierarchy(v1m, v1, CG_V1, out);
	if (err == -ENOENT && v2m->found)
		err = read_hierarchy(v2m, v2, CG_V2, out);
out:
	free(v1m);
	free(v2m);
	return err;
}
