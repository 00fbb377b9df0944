/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ret instructions through which operator new returns to its caller,
 * as file offsets, so that allocators which inline their fast path into
 * new (jemalloc, tcmalloc, mimalloc) have new's result seen without a
 * return probe (see retsites.c for why not a uretprobe).
 */
#ifndef STRAY_RETSITES_H
#define STRAY_RETSITES_H

#include <stddef.h>
#include <stdint.h>

struct allocator;

/*
 * The ret instructions reachable from file offset entry of path through
 * branches and jumps (not calls), at most max_sites, into sites. Returns
 * the count, -E2BIG when the code reaches more than the bounds allow,
 * -EOPNOTSUPP on architectures other than x86-64, or another -errno.
 */
int retsites__find(const char *path, uint64_t entry, uint64_t *sites, size_t max_sites);

/*
 * For every object of a that provides both malloc and operator new (an
 * allocator library, a static executable), fill its new_returns with the
 * ret sites of all its new forms (deduplicated). An object whose sites
 * cannot all be found gets none: new keeps its entry-only probe there,
 * exact where new calls a probed allocator.
 */
void retsites__add_to(struct allocator *a);

#endif /* STRAY_RETSITES_H */
