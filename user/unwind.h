/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The unwind tables of the traced processes' modules, loaded into the BPF
 * maps the walker reads (unwind_rows, unwind_modules). A table is built
 * once per module, keyed by build-id, and shared by every process and
 * every file (device, inode) with that build-id; the rows storage and the
 * module count are bounded, and what did not fit is counted.
 */
#ifndef STRAY_UNWIND_H
#define STRAY_UNWIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "report.h"

struct unwind_tables;

/* A device number as the kernel's s_dev encodes it (MKDEV: 20 bits of
 * minor), as the walker reads it from a VMA and unwind_modules keys it. */
static inline uint64_t unwind__kernel_dev(unsigned int major, unsigned int minor)
{
	return ((uint64_t)major << 20) | minor;
}

/* rows_fd/modules_fd: the BPF maps, with their capacities. NULL with errno
 * on failure. */
struct unwind_tables *unwind_tables__new(int rows_fd, uint32_t max_rows, int modules_fd,
					 uint32_t max_modules);
void unwind_tables__free(struct unwind_tables *u);

/* Seed the walker's VMA cache (user/unwind_vmas.h) at every
 * unwind_tables__add_process: cache_fd is the BPF map. */
void unwind_tables__seed_vmas(struct unwind_tables *u, int cache_fd);

/*
 * Load the tables of every module of process pid not loaded yet: the
 * mapped ones, or at_exec (libraries not mapped yet) the executable and
 * the libraries it will load. Cheap when nothing is new (a stat per
 * mapped file), so it is called again on every drain to catch dlopen.
 * Returns 0 or -errno (the process is gone).
 */
int unwind_tables__add_process(struct unwind_tables *u, int pid, bool at_exec);

/* Load the table of the ELF file at path (if not loaded yet). Returns 0,
 * -ENOENT when it has no call-frame information, -ENOSPC when the storage
 * is full (counted), or another -errno. */
int unwind_tables__add_file(struct unwind_tables *u, const char *path);

/* What could not be loaded, as report drop counters into out; returns the
 * count (at most max). */
size_t unwind_tables__dropped(const struct unwind_tables *u, struct report_counter *out, size_t max);

#endif /* STRAY_UNWIND_H */
