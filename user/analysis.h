/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Leak analysis: pure C, no libbpf, no I/O, so it is unit-testable.
 */
#ifndef STRAY_ANALYSIS_H
#define STRAY_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

/* Outstanding state of one call site at report time, as harvested. */
struct site_live {
	int pid;
	uint64_t stack_hash;
	uint64_t bytes;       /* outstanding blocks older than --min-age */
	uint64_t allocations;
	uint64_t oldest_ts_ns;/* allocation time of its oldest such block */
	uint64_t total_bytes;
	uint64_t total_allocations;
	uint64_t frees;
};

/*
 * Keep the sites that are leak suspects (allocations > 0) and sort them by
 * bytes descending, then allocations descending, then pid and stack hash
 * ascending so the order is deterministic. Works in place; returns the
 * number of suspects, which are moved to the front of sites[].
 */
size_t analysis__rank_suspects(struct site_live *sites, size_t n);

/* Ordinary least-squares slope of y over x (units of y per unit of x).
 * Returns 0.0 for fewer than two points or when all x are equal. */
double analysis__ls_slope(const double *x, const double *y, size_t n);

#endif /* STRAY_ANALYSIS_H */
