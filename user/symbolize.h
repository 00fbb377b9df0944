/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Symbolization with elfutils' libdwfl. A process's address space is
 * described by snapshots of its /proc/PID/maps text; the objects are opened
 * when a snapshot first shows them, so processes that already exited (run
 * mode reports at exit), libraries dlclosed since and files deleted since
 * still symbolize.
 */
#ifndef STRAY_SYMBOLIZE_H
#define STRAY_SYMBOLIZE_H

#include <stdbool.h>
#include <stdint.h>
#include "report.h"

struct symbolizer;

/* At most this many inlined frames are reported per address (the rest of
 * a deeper inline chain is left out). */
#define SYMBOLIZE_MAX_INLINE 7

/* Returns NULL with errno set on failure. */
struct symbolizer *symbolizer__new(void);
/* Accepts NULL. Frees every string handed out in frames. */
void symbolizer__free(struct symbolizer *s);

/*
 * Describe process pid by the text of its /proc/PID/maps, read just now
 * (pid must be the live process when it is a real one: newly seen objects
 * are opened through /proc/PID/map_files, else by path under root). A later
 * call for the same pid replaces the mappings it shows and keeps the ones
 * that disappeared without replacement (dlclose). root is the prefix under
 * which paths are opened and separate debug info is searched ("" or NULL
 * for /, "/proc/PID/root" for a process in another mount namespace); JIT
 * symbols are read from root/tmp/perf-PID.map when it exists.
 * Returns 0 or -errno.
 */
int symbolizer__set_maps(struct symbolizer *s, int pid, const char *maps_text,
			 const char *root);

/*
 * symbolizer__set_maps without its costly part: the objects are opened
 * (cheap: the process may exit right after) but the search for their
 * separate debug info waits for symbolizer__find_debuginfo, the next
 * symbolizer__set_maps, or the first lookup in them. For taking a snapshot
 * while the process waits (stray -p before its probes go in).
 */
int symbolizer__set_maps_lazy(struct symbolizer *s, int pid, const char *maps_text,
			      const char *root);

/* Search the separate debug info that lazy snapshots left pending. */
void symbolizer__find_debuginfo(struct symbolizer *s);

/* symbolizer__set_maps (lazy: _lazy) with the live process pid's own
 * /proc/PID/maps, its paths opened under /proc/PID/root. Returns 0 or
 * -errno (the process is gone: the previous snapshot stays). */
int symbolizer__snapshot_process(struct symbolizer *s, int pid, bool lazy);

/*
 * Fill *out for address addr of process pid. addr is a return address
 * (every captured frame is one), so lookups use addr - 1 for function and
 * line. Always succeeds for a known pid: unknown parts are NULL / 0 / -1,
 * module "[unknown]". Strings stay valid until symbolizer__free().
 * Returns 0, or -ENOENT when no maps were set for pid.
 */
int symbolizer__resolve(struct symbolizer *s, int pid, uint64_t addr,
			struct report_frame *out);

/*
 * All frames at addr, innermost first: one per inlined function the
 * address is in (marked inlined), then the function the code belongs to.
 * Writes at most max frames to out (out may be NULL when max is 0) and
 * returns how many there are (>= 1), or -ENOENT when no maps were set for
 * pid. Resolving the same address again is a cache lookup.
 */
int symbolizer__resolve_frames(struct symbolizer *s, int pid, uint64_t addr,
			       struct report_frame *out, size_t max);

/* Mappings left out, or whose object was, because a table was full. */
uint64_t symbolizer__dropped(const struct symbolizer *s);

#endif /* STRAY_SYMBOLIZE_H */
