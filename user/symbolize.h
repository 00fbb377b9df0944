/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Symbolization with elfutils' libdwfl. A process's address space is
 * described by a saved copy of its /proc/PID/maps text, so processes that
 * already exited (run mode reports at exit) still symbolize.
 */
#ifndef STRAY_SYMBOLIZE_H
#define STRAY_SYMBOLIZE_H

#include <stdbool.h>
#include <stdint.h>
#include "report.h"

struct symbolizer;

/* Returns NULL with errno set on failure. */
struct symbolizer *symbolizer__new(void);
/* Accepts NULL. Frees every string handed out in frames. */
void symbolizer__free(struct symbolizer *s);

/*
 * Describe process pid by the text of its /proc/PID/maps (copied; a later
 * call for the same pid replaces it). root is the prefix under which the
 * mapped paths are opened ("" or NULL for /, "/proc/PID/root" for a
 * process in another mount namespace). Returns 0 or -errno.
 */
int symbolizer__set_maps(struct symbolizer *s, int pid, const char *maps_text,
			 const char *root);

/*
 * Fill *out for address addr of process pid. addr is a return address
 * (every captured frame is one), so lookups use addr - 1 for function and
 * line. Always succeeds for a known pid: unknown parts are NULL / 0 / -1,
 * module "[unknown]". Strings stay valid until symbolizer__free().
 * Returns 0, or -ENOENT when no maps were set for pid.
 */
int symbolizer__resolve(struct symbolizer *s, int pid, uint64_t addr,
			struct report_frame *out);

#endif /* STRAY_SYMBOLIZE_H */
