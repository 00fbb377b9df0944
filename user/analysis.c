// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Leak analysis: pure functions over harvested site state. No libbpf, no
 * I/O, no allocation, so every function here is unit-tested directly.
 */
#include <stdlib.h>

#include "analysis.h"

/* Three-way compare without subtraction: uint64 differences overflow int. */
#define CMP3(a, b) (((a) > (b)) - ((a) < (b)))

/*
 * Total order over sites: bytes desc, allocations desc, pid asc, stack hash
 * asc. qsort is not stable, so every key that can tell two sites apart takes
 * part; otherwise equal-sized sites would swap places between runs and
 * reports would not diff cleanly.
 */
static int site_cmp(const void *pa, const void *pb)
{
	const struct site_live *a = pa, *b = pb;
	int c;

	c = CMP3(b->bytes, a->bytes);
	if (c)
		return c;
	c = CMP3(b->allocations, a->allocations);
	if (c)
		return c;
	c = CMP3(a->pid, b->pid);
	if (c)
		return c;
	return CMP3(a->stack_hash, b->stack_hash);
}

/* Move the sites that still hold allocations to the front; returns how many.
 * Order is not kept: the sort that follows decides it. */
static size_t partition_suspects(struct site_live *sites, size_t n)
{
	size_t keep = 0;

	for (size_t i = 0; i < n; i++) {
		if (sites[i].allocations == 0)
			continue;
		if (i != keep) {
			struct site_live tmp = sites[keep];

			sites[keep] = sites[i];
			sites[i] = tmp;
		}
		keep++;
	}
	return keep;
}

size_t analysis__rank_suspects(struct site_live *sites, size_t n)
{
	size_t nsuspects;

	if (!sites || n == 0)
		return 0;
	nsuspects = partition_suspects(sites, n);
	if (nsuspects > 1)
		qsort(sites, nsuspects, sizeof(*sites), site_cmp);
	return nsuspects;
}

/*
 * Mean computed relative to v[0]: with timestamps or byte counts of ~1e9 the
 * shift keeps the summed terms small, and n identical values give exactly
 * v[0] back (a plain sum/n may not), which the zero-variance test relies on.
 */
static double shifted_mean(const double *v, size_t n)
{
	double sum = 0.0;

	for (size_t i = 0; i < n; i++)
		sum += v[i] - v[0];
	return v[0] + sum / (double)n;
}

/*
 * Two-pass OLS: slope = sum((x-mx)(y-my)) / sum((x-mx)^2). The one-pass
 * form (n*Sxy - Sx*Sy) cancels catastrophically when x is large compared
 * with its spread, which is exactly the case for wall-clock sample times.
 */
double analysis__ls_slope(const double *x, const double *y, size_t n)
{
	double mx, my, sxx = 0.0, sxy = 0.0;

	if (!x || !y || n < 2)
		return 0.0;
	mx = shifted_mean(x, n);
	my = shifted_mean(y, n);
	for (size_t i = 0; i < n; i++) {
		double dx = x[i] - mx;

		sxx += dx * dx;
		sxy += dx * (y[i] - my);
	}
	/* sxx is a sum of squares: it is 0 only when every x equals the mean. */
	if (!(sxx > 0.0))
		return 0.0;
	return sxy / sxx;
}
