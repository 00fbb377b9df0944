// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The symbol-lookup scope of a process, in the order ld.so searches it:
 * the executable, the preloaded libraries (LD_PRELOAD, then
 * /etc/ld.so.preload), then the DT_NEEDED chain breadth-first; objects
 * loaded later (dlopen) come last. The first object in this order that
 * defines malloc is the one every call binds to, so it is the one stray
 * must probe.
 */
#include "scope.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "elfsym.h"
#include "procfs.h"

#define MAX_PRELOADS 32 /* preloaded libraries taken into account */
#define PRELOAD_FILE_BYTES 4096

static const char *const preload_dirs[] = {
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
};

struct pathlist {
	char **paths;
	size_t n, max;
};

static int list_add(struct pathlist *l, const char *path)
{
	char **grown;

	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->paths[i], path))
			return 0;
	if (l->n >= l->max)
		return 0;
	grown = realloc(l->paths, (l->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	l->paths = grown;
	if (!(grown[l->n] = strdup(path)))
		return -ENOMEM;
	l->n++;
	return 0;
}

/* Where a preload entry is, under root: a path as given, a bare name in
 * LD_LIBRARY_PATH or the system directories (ld.so would also find one
 * through ld.so.cache in a directory listed only in ld.so.conf: such a
 * preload is not predicted, and -p mode ranks it with the dlopen'ed). */
static bool locate_preload(const char *root, const char *name, const char *ld_path, char *out, size_t size)
{
	char dirs[PATH_MAX] = "", *save = NULL, *dir;

	if (strchr(name, '/')) {
		snprintf(out, size, "%s%s", root, name);
		return access(out, R_OK) == 0;
	}
	if (ld_path)
		snprintf(dirs, sizeof(dirs), "%s", ld_path);
	for (dir = strtok_r(dirs, ":;", &save); dir; dir = strtok_r(NULL, ":;", &save)) {
		snprintf(out, size, "%s%s/%s", root, dir, name);
		if (access(out, R_OK) == 0)
			return true;
	}
	for (size_t i = 0; i < sizeof(preload_dirs) / sizeof(preload_dirs[0]); i++) {
		snprintf(out, size, "%s%s/%s", root, preload_dirs[i], name);
		if (access(out, R_OK) == 0)
			return true;
	}
	return false;
}

/* Add every entry of list (separated by spaces or colons, as ld.so reads
 * LD_PRELOAD and /etc/ld.so.preload) that can be found. */
static int add_preloads(struct pathlist *l, const char *root, char *list, const char *ld_path)
{
	char path[PATH_MAX], *save = NULL, *name;
	int err = 0;

	for (name = strtok_r(list, " :\t\n", &save); name && !err; name = strtok_r(NULL, " :\t\n", &save))
		if (locate_preload(root, name, ld_path, path, sizeof(path)))
			err = list_add(l, path);
	return err;
}

static int read_small_file(const char *path, char **text)
{
	FILE *f = fopen(path, "re");
	size_t n;

	*text = NULL;
	if (!f)
		return -errno;
	*text = calloc(1, PRELOAD_FILE_BYTES + 1);
	if (!*text) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(*text, 1, PRELOAD_FILE_BYTES, f);
	(*text)[n] = '\0';
	fclose(f);
	return 0;
}

/* The executable, its preloads, then the rest of its DT_NEEDED chain. */
static int predicted_scope(int pid, size_t max, struct pathlist *out)
{
	char root[64], link[64], exe[PATH_MAX], conf[PATH_MAX];
	char *ld_path = NULL, *preload = NULL, *system_preload = NULL, **needed = NULL;
	int nneeded = 0, err;
	ssize_t len;

	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	len = readlink(link, exe, sizeof(exe) - 1);
	if (len < 0)
		return -errno;
	exe[len] = '\0';
	procfs__getenv(pid, "LD_LIBRARY_PATH", &ld_path);
	procfs__getenv(pid, "LD_PRELOAD", &preload);
	snprintf(conf, sizeof(conf), "%s/etc/ld.so.preload", root);
	read_small_file(conf, &system_preload);
	nneeded = elfsym__load_order(root, exe, ld_path, max, &needed);
	err = nneeded < 0 ? nneeded : 0;
	out->max = max;
	/* needed[0] is the executable itself. */
	if (!err && nneeded > 0)
		err = list_add(out, needed[0]);
	if (!err && preload)
		err = add_preloads(out, root, preload, ld_path);
	if (!err && system_preload)
		err = add_preloads(out, root, system_preload, ld_path);
	for (int i = 1; i < nneeded && !err; i++)
		err = list_add(out, needed[i]);
	if (nneeded > 0)
		elfsym__free_paths(needed, nneeded);
	free(ld_path);
	free(preload);
	free(system_preload);
	return err;
}

/* Position of path's file in the predicted scope (by inode: the two
 * lists spell paths differently, /lib vs /usr/lib), or SIZE_MAX. */
static size_t rank_in(const struct pathlist *predicted, const struct stat *predicted_st, const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return SIZE_MAX;
	for (size_t i = 0; i < predicted->n; i++)
		if (predicted_st[i].st_ino == st.st_ino && predicted_st[i].st_dev == st.st_dev)
			return i;
	return SIZE_MAX;
}

/* The mapped objects, reordered: those of the predicted scope in its
 * order, then the others (dlopen'ed) in address order. */
static int order_mapped(char **mapped, size_t n, const struct pathlist *predicted)
{
	struct stat *st = calloc(predicted->n + 1, sizeof(*st));
	size_t *rank = calloc(n + 1, sizeof(*rank));
	int err = st && rank ? 0 : -ENOMEM;

	for (size_t i = 0; !err && i < predicted->n; i++)
		if (stat(predicted->paths[i], &st[i]))
			memset(&st[i], 0, sizeof(st[i]));
	for (size_t i = 0; !err && i < n; i++)
		rank[i] = rank_in(predicted, st, mapped[i]);
	/* Insertion sort, stable: n is bounded (SCOPE_MAX_OBJECTS). */
	for (size_t i = 1; !err && i < n; i++) {
		char *p = mapped[i];
		size_t r = rank[i], j = i;

		for (; j > 0 && rank[j - 1] > r; j--) {
			mapped[j] = mapped[j - 1];
			rank[j] = rank[j - 1];
		}
		mapped[j] = p;
		rank[j] = r;
	}
	free(st);
	free(rank);
	return err;
}

int scope__lookup(int pid, bool at_exec, char ***paths, size_t *n)
{
	struct pathlist predicted = { 0 };
	int err;

	*paths = NULL;
	*n = 0;
	err = predicted_scope(pid, SCOPE_MAX_OBJECTS, &predicted);
	if (at_exec && err)
		elfsym__free_paths(predicted.paths, predicted.n);
	if (at_exec) {
		*paths = err ? NULL : predicted.paths;
		*n = err ? 0 : predicted.n;
		return err;
	}
	/* Attached: what is mapped is the truth, the prediction only orders
	 * it (a process whose executable cannot be read keeps maps order). */
	err = procfs__mapped_objects(pid, SCOPE_MAX_OBJECTS, paths, n);
	if (!err)
		err = order_mapped(*paths, *n, &predicted);
	elfsym__free_paths(predicted.paths, predicted.n);
	if (err) {
		elfsym__free_paths(*paths, *n);
		*paths = NULL;
		*n = 0;
	}
	return err;
}
