// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "procfs.h"
#include "unwind.h"
#include "unwind_vmas.h"

/* Granules written per seeding: a process maps a few hundred libraries at
 * most, each one or two granules of code. */
#define MAX_GRANULES 1024
#define MAX_MAPS_BYTES (16u << 20)

bool unwind_vmas__parse_line(const char *line, struct unwind_vma_mapping *out)
{
	struct procfs_mapping m;

	if (!procfs__parse_mapping(line, strlen(line), &m) || m.perms[2] != 'x' || m.end <= m.start)
		return false;
	*out = (struct unwind_vma_mapping){
		.start = m.start, .end = m.end, .offset = m.offset,
		.file = { .dev = m.inode ? unwind__kernel_dev(m.dev_major, m.dev_minor) : 0, .ino = m.inode },
	};
	return true;
}

static struct unwind_vma_granule *granule_of(struct unwind_vma_granule *g, size_t *n, size_t max, uint32_t tgid,
					     uint64_t granule)
{
	for (size_t i = *n; i-- > 0;) /* mappings come in address order: the last is likeliest */
		if (g[i].key.granule == granule)
			return &g[i];
	if (*n >= max)
		return NULL;
	g[*n] = (struct unwind_vma_granule){ .key = { .tgid = tgid, .granule = granule } };
	return &g[(*n)++];
}

bool unwind_vmas__add(struct unwind_vma_granule *g, size_t *n, size_t max, uint32_t tgid,
		      const struct unwind_vma_mapping *m, const struct stray_unwind_module *mod)
{
	struct stray_vma vma = { .start = m->start, .end = m->end };

	if (mod) {
		/* as the walker computes it from the VMA: module pc = address - bias */
		vma.bias = (int64_t)m->start - (int64_t)m->offset - mod->vaddr_delta;
		vma.first = mod->first;
		vma.nrows = mod->nrows;
	}
	for (uint64_t k = m->start >> STRAY_VMA_GRANULE_SHIFT; k <= (m->end - 1) >> STRAY_VMA_GRANULE_SHIFT; k++) {
		struct unwind_vma_granule *e = granule_of(g, n, max, tgid, k);

		if (!e)
			return false;
		if (e->entry.next < STRAY_VMA_CACHE_WAYS)
			e->entry.vma[e->entry.next++] = vma;
	}
	return true;
}

int unwind_vmas__seed(int cache_fd, int modules_fd, int pid)
{
	struct unwind_vma_granule *g = calloc(MAX_GRANULES, sizeof(*g));
	struct unwind_vma_mapping m;
	struct stray_unwind_module mod;
	bool has_table;
	char *maps = NULL, *line, *save = NULL;
	size_t n = 0;
	int err = g ? procfs__read_file(pid, "maps", MAX_MAPS_BYTES, &maps) : -ENOMEM;

	for (line = err ? NULL : strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!unwind_vmas__parse_line(line, &m))
			continue;
		has_table = m.file.ino && !bpf_map_lookup_elem(modules_fd, &m.file, &mod);
		if (!unwind_vmas__add(g, &n, MAX_GRANULES, pid, &m, has_table ? &mod : NULL))
			break;
	}
	for (size_t i = 0; i < n && !err; i++)
		if (bpf_map_update_elem(cache_fd, &g[i].key, &g[i].entry, BPF_ANY))
			err = -errno;
	free(maps);
	free(g);
	return err ? err : (int)n;
}
