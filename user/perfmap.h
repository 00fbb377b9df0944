/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * JIT symbols from a perf map file (/tmp/perf-PID.map, one "START SIZE
 * name" line per symbol, hex without 0x; written by Node.js with
 * --perf-basic-prof, the JVM's perf-map-agent, LuaJIT, ...).
 */
#ifndef STRAY_PERFMAP_H
#define STRAY_PERFMAP_H

#include <stddef.h>
#include <stdint.h>

struct perfmap;

/*
 * Read path, keeping at most max_symbols symbols (the rest is ignored).
 * Returns NULL with errno set (ENOENT when there is no such file).
 */
struct perfmap *perfmap__read(const char *path, size_t max_symbols);
/* Accepts NULL. */
void perfmap__free(struct perfmap *m);

/* Name of the symbol covering addr (and its start in *start), or NULL.
 * When symbols overlap (a JIT reused the range), the later line wins. */
const char *perfmap__lookup(const struct perfmap *m, uint64_t addr, uint64_t *start);

/* Number of symbols kept. */
size_t perfmap__count(const struct perfmap *m);

#endif /* STRAY_PERFMAP_H */
