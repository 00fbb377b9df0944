/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Robust trend statistics: Theil–Sen slope and the Mann–Kendall test.
 * Pure C, no I/O, no allocation beyond what the caller passes in.
 * (Exception, invisible to the caller: Theil–Sen over more than 64 points
 * keeps its pairwise slopes in a malloc'ed scratch freed before it returns,
 * and thins the series to 64 points if that malloc fails.)
 */
#ifndef STRAY_STATS_H
#define STRAY_STATS_H

#include <stddef.h>

/* Longest series the functions accept; longer ones are the caller's to
 * thin (they cost O(n^2)). */
#define STATS_MAX_POINTS 512

/*
 * Theil–Sen estimator: the median of the slopes (y[j]-y[i])/(x[j]-x[i]) over
 * all pairs i < j with x[j] != x[i]. Units of y per unit of x. Returns 0.0
 * for fewer than two distinct x, and for n > STATS_MAX_POINTS uses only the
 * last STATS_MAX_POINTS points.
 */
double stats__theil_sen(const double *x, const double *y, size_t n);

struct mann_kendall {
	double s;     /* sum of sign(y[j] - y[i]) over i < j */
	double var_s; /* variance of S under no trend, corrected for ties */
	double z;     /* normal score with continuity correction */
	double p;     /* two-sided p-value; 1.0 when n < 3 or var_s == 0 */
};

/* Mann–Kendall trend test on y in time order (ties corrected). */
void stats__mann_kendall(const double *y, size_t n, struct mann_kendall *out);

#endif /* STRAY_STATS_H */
