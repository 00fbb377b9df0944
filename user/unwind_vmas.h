/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef STRAY_UNWIND_VMAS_H
#define STRAY_UNWIND_VMAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "stray.h"

/*
 * Seeding the stack walker's VMA cache (bpf/stray.h: stray_vma_cache_*)
 * from /proc/PID/maps. bpf_find_vma fails while another thread of the
 * target holds its address-space lock; a frame first met then used to lose
 * its module (dropped.unwind_no_vma) unless the walker had cached the
 * granule before. Seeded, every executable mapping is there from the
 * start: with its module's rows when it has a table, with none otherwise
 * (the walker then steps the frame with the frame pointer, as it would
 * with the VMA in hand).
 */

/* A process's executable mappings grouped by granule, ready to write. */
struct unwind_vma_granule {
	struct stray_vma_cache_key key;
	struct stray_vma_cache_entry entry;
};

/* One executable mapping of /proc/PID/maps. */
struct unwind_vma_mapping {
	uint64_t start, end, offset;
	struct stray_unwind_module_key file; /* ino 0: anonymous */
};

/* Parse one line of /proc/PID/maps; true for an executable mapping. */
bool unwind_vmas__parse_line(const char *line, struct unwind_vma_mapping *out);

/*
 * Add mapping m, with module rows mod (NULL: no table), to the granules it
 * covers in g[0, *n) (at most max). A granule keeps its first
 * STRAY_VMA_CACHE_WAYS mappings. Returns false when g is full.
 */
bool unwind_vmas__add(struct unwind_vma_granule *g, size_t *n, size_t max, uint32_t tgid,
		      const struct unwind_vma_mapping *m, const struct stray_unwind_module *mod);

/* Seed cache_fd with pid's executable mappings, looking their modules up
 * in modules_fd. Returns the granules written, or a negative errno. */
int unwind_vmas__seed(int cache_fd, int modules_fd, int pid);

#endif /* STRAY_UNWIND_VMAS_H */
