// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <bpf/bpf.h>
#include "elfsym.h"
#include "loader.h"
#include "unwind.h"
#include "unwind_table.h"
#include "unwind_vmas.h"

_Static_assert(sizeof(struct stray_unwind_row) == 12, "ABI: stray_unwind_row");
_Static_assert(sizeof(struct stray_unwind_module_key) == 16, "ABI: stray_unwind_module_key");
_Static_assert(sizeof(struct stray_unwind_module) == 16, "ABI: stray_unwind_module");

/* Files looked at, with or without a table, per allowed module: a file is
 * looked at once (shared libraries without CFI, data files mapped
 * executable), and the set stays bounded. */
#define FILES_PER_MODULE 4

/* A table in the rows map, shared by every file with its build-id. */
struct loaded_table {
	char build_id[41];
	uint32_t first, nrows;
	int64_t vaddr_delta;
};

struct unwind_tables {
	int rows_fd, modules_fd;
	int vma_cache_fd; /* -1: not seeded */
	uint32_t max_rows, max_modules, next_row;
	struct stray_unwind_module_key *files; /* every file looked at */
	size_t nfiles, max_files;
	struct loaded_table *tables;
	size_t ntables;
	size_t nmodules; /* entries in the modules map */
	uint64_t rows_full, modules_full, files_full;
};

struct unwind_tables *unwind_tables__new(int rows_fd, uint32_t max_rows, int modules_fd, uint32_t max_modules)
{
	struct unwind_tables *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->rows_fd = rows_fd;
	u->vma_cache_fd = -1;
	u->modules_fd = modules_fd;
	u->max_rows = max_rows;
	u->max_modules = max_modules;
	u->max_files = (size_t)max_modules * FILES_PER_MODULE;
	u->files = calloc(u->max_files, sizeof(*u->files));
	u->tables = calloc(max_modules, sizeof(*u->tables));
	if (!u->files || !u->tables) {
		unwind_tables__free(u);
		errno = ENOMEM;
		return NULL;
	}
	return u;
}

void unwind_tables__seed_vmas(struct unwind_tables *u, int cache_fd)
{
	u->vma_cache_fd = cache_fd;
}

void unwind_tables__free(struct unwind_tables *u)
{
	if (!u)
		return;
	free(u->files);
	free(u->tables);
	free(u);
}

/* The file as the kernel names it in a VMA: s_dev is MKDEV(major, minor),
 * 20 bits of minor, not the user-space encoding of st_dev. */
static struct stray_unwind_module_key kernel_key(const struct stat *st)
{
	return (struct stray_unwind_module_key){
		.dev = unwind__kernel_dev(major(st->st_dev), minor(st->st_dev)),
		.ino = st->st_ino,
	};
}

static bool seen(const struct unwind_tables *u, const struct stray_unwind_module_key *key)
{
	for (size_t i = 0; i < u->nfiles; i++)
		if (u->files[i].dev == key->dev && u->files[i].ino == key->ino)
			return true;
	return false;
}

static struct loaded_table *table_by_build_id(struct unwind_tables *u, const char *build_id)
{
	for (size_t i = 0; build_id[0] && i < u->ntables; i++)
		if (!strcmp(u->tables[i].build_id, build_id))
			return &u->tables[i];
	return NULL;
}

/* Copy t's rows into the rows map after the ones already there. */
static int upload_rows(struct unwind_tables *u, const struct unwind_table *t, struct loaded_table *out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t *keys, count = t->nrows;
	int err = 0;

	if (t->nrows > u->max_rows - u->next_row) {
		u->rows_full++;
		return -ENOSPC;
	}
	keys = malloc(t->nrows * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nrows; i++)
		keys[i] = u->next_row + i;
	if (bpf_map_update_batch(u->rows_fd, keys, t->rows, &count, &opts))
		err = -errno;
	free(keys);
	if (err)
		return err;
	*out = (struct loaded_table){ .first = u->next_row, .nrows = t->nrows, .vaddr_delta = t->vaddr_delta };
	strcpy(out->build_id, t->build_id);
	u->next_row += t->nrows;
	return 0;
}

/* The table for the file at path: already loaded under its build-id, or
 * built and loaded now. */
static int find_or_load_table(struct unwind_tables *u, const char *path, struct loaded_table **out)
{
	struct unwind_table t;
	char build_id[41];
	int err;

	if (!unwind_table__build_id(path, build_id) && (*out = table_by_build_id(u, build_id)))
		return 0;
	if (u->ntables >= u->max_modules) {
		u->modules_full++;
		return -ENOSPC;
	}
	err = unwind_table__build(path, u->max_rows - u->next_row, &t);
	if (err == -E2BIG)
		u->rows_full++;
	if (err)
		return err == -E2BIG ? -ENOSPC : err;
	err = upload_rows(u, &t, &u->tables[u->ntables]);
	unwind_table__clear(&t);
	if (err)
		return err;
	*out = &u->tables[u->ntables++];
	return 0;
}

int unwind_tables__add_file(struct unwind_tables *u, const char *path)
{
	struct stray_unwind_module_key key;
	struct stray_unwind_module mod;
	struct loaded_table *t;
	struct stat st;
	int err;

	if (stat(path, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOEXEC;
	key = kernel_key(&st);
	if (seen(u, &key))
		return 0;
	if (u->nfiles >= u->max_files) {
		u->files_full++;
		return -ENOSPC;
	}
	/* Looked at once, whatever the outcome: a file without CFI is not
	 * read again at every drain. */
	u->files[u->nfiles++] = key;
	err = find_or_load_table(u, path, &t);
	if (err)
		return err;
	if (u->nmodules >= u->max_modules) {
		u->modules_full++;
		return -ENOSPC;
	}
	mod = (struct stray_unwind_module){ .first = t->first, .nrows = t->nrows, .vaddr_delta = t->vaddr_delta };
	if (bpf_map_update_elem(u->modules_fd, &key, &mod, BPF_ANY))
		return -errno;
	u->nmodules++;
	return 0;
}

/* At exec the dynamic linker is not in the predicted load order, and the
 * libraries' constructors it runs allocate before the first drain. */
static void add_interpreter(struct unwind_tables *u, int pid)
{
	char exe[64], interp[PATH_MAX], path[PATH_MAX + 64];

	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	if (unwind_table__interpreter(exe, interp, sizeof(interp)))
		return;
	snprintf(path, sizeof(path), "/proc/%d/root%s", pid, interp);
	unwind_tables__add_file(u, path);
}

int unwind_tables__add_process(struct unwind_tables *u, int pid, bool at_exec)
{
	char **paths = NULL;
	size_t n = 0;
	int err = allocator__lookup_scope(pid, at_exec, &paths, &n);

	if (err)
		return err;
	/* A file that cannot be used only loses its own frames (auto mode
	 * steps them with the frame pointer). */
	for (size_t i = 0; i < n; i++)
		unwind_tables__add_file(u, paths[i]);
	elfsym__free_paths(paths, n);
	if (at_exec)
		add_interpreter(u, pid);
	if (u->vma_cache_fd >= 0)
		unwind_vmas__seed(u->vma_cache_fd, u->modules_fd, pid);
	return 0;
}

size_t unwind_tables__dropped(const struct unwind_tables *u, struct report_counter *out, size_t max)
{
	const struct report_counter all[] = {
		{ "unwind_rows_full", u->rows_full },
		{ "unwind_modules_full", u->modules_full },
		{ "unwind_files_full", u->files_full },
	};
	size_t n = sizeof(all) / sizeof(all[0]) < max ? sizeof(all) / sizeof(all[0]) : max;

	memcpy(out, all, n * sizeof(*out));
	return n;
}
