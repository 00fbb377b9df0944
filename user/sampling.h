/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Poisson sampling by bytes (--sample T): the table of exponential draws
 * the BPF programs pick countdowns from (bpf/sample.bpf.h), and the
 * estimators that turn samples back into bytes and objects. Pure C, no I/O.
 *
 * A block of Z bytes is sampled with probability p = 1 - e^(-Z/T), so each
 * sample stands for Z/p bytes and 1/p objects (Horvitz-Thompson: unbiased
 * whatever the mix of sizes). The variance of the bytes estimate is
 * estimated without bias by the sum over samples of Z^2 (1 - p) / p^2.
 */
#ifndef STRAY_SAMPLING_H
#define STRAY_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

/* Running estimate over the samples of one group (a site, a process). */
struct sample_estimate {
	double bytes;     /* estimated bytes */
	double objects;   /* estimated blocks */
	double var_bytes; /* estimated variance of bytes */
	uint64_t samples;
};

/* Fill draws[0..n) with the quantiles of Exp(mean) at the midpoints of n
 * equal strata, each at least 1 byte. */
void sampling__fill_draws(uint64_t mean, uint64_t *draws, size_t n);

/* Probability that a block of size bytes is sampled at mean T. */
double sampling__probability(uint64_t mean, uint64_t size);

/* Add one sampled block of size bytes to e. */
void sampling__add(struct sample_estimate *e, uint64_t mean, uint64_t size);

/* Relative standard error of e's bytes (0 without samples or when every
 * sample was certain). */
double sampling__relative_error(const struct sample_estimate *e);

/*
 * Estimate from an aggregate only (count samples totalling bytes, sizes
 * unknown): every sample is taken to have the mean size. Exact when the
 * group's blocks are all of one size; used for a site's cumulative totals,
 * which the kernel keeps as sums.
 */
void sampling__estimate_aggregate(uint64_t mean, uint64_t bytes, uint64_t count, double *est_bytes,
				  double *est_objects);

#endif /* STRAY_SAMPLING_H */
