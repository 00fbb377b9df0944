/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Loading one BPF object's programs in parallel (issue 7). The kernel
 * verifies a program on the thread that loads it, and the verification of
 * the allocator probes (each carries the DWARF stack walker) is most of
 * stray's start-up. So each heavy program is loaded by a copy of the
 * object of its own (opened from the same skeleton), on a thread of its
 * own, and every copy uses the primary object's maps (bpf_map__reuse_fd):
 * the programs see one set of maps, as if loaded together.
 */
#ifndef STRAY_SPLIT_LOAD_H
#define STRAY_SPLIT_LOAD_H

#include <stddef.h>
#include <bpf/libbpf.h>

/*
 * Load primary (creating every map, loading the programs it autoloads),
 * then the ncopies copies at once, each on a thread, after pointing each
 * of their maps at primary's map of the same name. The caller opens every
 * copy from primary's ELF and leaves to autoload in each only the programs
 * it is to load (in no other object). between(ctx), if not NULL, runs on
 * the calling thread once the maps exist, while the copies load. Returns
 * 0 or the first -errno.
 */
int split_load(struct bpf_object *primary, struct bpf_object *const *copies, size_t ncopies,
	       void (*between)(void *ctx), void *ctx);

#endif /* STRAY_SPLIT_LOAD_H */
