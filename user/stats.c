// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Theil–Sen slope and Mann–Kendall trend test.
 *
 * Both are rank/median based, so one wild drain (a burst freed a moment
 * later, a sample taken mid-realloc) cannot fake or hide a trend the way it
 * can with least squares. Both are O(n^2) in the number of points, which is
 * why the caller's series is capped at STATS_MAX_POINTS.
 */
#include <math.h>
#include <stdlib.h>

#include "stats.h"

/*
 * Theil–Sen needs every pairwise slope at once to take their median. Up to
 * TS_STACK_POINTS points (2016 slopes, 16 KiB) live on the stack; longer
 * series take a malloc'ed buffer freed before return. Should that malloc
 * fail, the series is thinned to TS_STACK_POINTS evenly spaced points, which
 * still gives an unbiased (if noisier) estimate, because the function has no
 * way to report an error.
 */
#define TS_STACK_POINTS 64
#define TS_STACK_PAIRS (TS_STACK_POINTS * (TS_STACK_POINTS - 1) / 2)

/* Total order on doubles with NaN last, so sorting a series that contains
 * NaN is still well defined. */
static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b);
	return (a > b) - (a < b);
}

static void swap_double(double *a, double *b)
{
	double t = *a;

	*a = *b;
	*b = t;
}

/*
 * Quickselect: reorder a[0..n) so that a[k] is the k-th smallest, everything
 * before it is <= a[k] and everything after is >= a[k]. Median-of-three
 * pivots keep sorted input (the common case: a growing series gives nearly
 * sorted slopes) from going quadratic. Values must be finite.
 */
static double select_kth(double *a, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (hi > lo) {
		size_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
		double pivot;

		if (a[mid] < a[lo])
			swap_double(&a[mid], &a[lo]);
		if (a[hi] < a[lo])
			swap_double(&a[hi], &a[lo]);
		if (a[hi] < a[mid])
			swap_double(&a[hi], &a[mid]);
		pivot = a[mid];

		/* Hoare partition: afterwards [lo, j] <= pivot <= [i, hi]. */
		while (i <= j) {
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j) {
				swap_double(&a[i], &a[j]);
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return a[k]; /* between the partitions: equal to the pivot */
	}
	return a[k];
}

/* Median of a[0..n), n > 0; reorders a. */
static double median_inplace(double *a, size_t n)
{
	size_t k = n / 2;
	double hi = select_kth(a, n, k), lo = hi;

	if (n % 2 == 0) {
		/* After selection every element before k is <= a[k]; the lower
		 * middle value is the largest of them. */
		lo = a[0];
		for (size_t i = 1; i < k; i++)
			if (a[i] > lo)
				lo = a[i];
	}
	return lo / 2 + hi / 2;
}

/*
 * Slopes of all pairs among the points idx(0..m) into out; pairs with equal
 * x (no slope) and non-finite slopes (NaN input) are skipped. Points are
 * addressed through a stride so the thinned fallback needs no copy.
 */
static size_t pair_slopes(const double *x, const double *y, size_t m, double stride,
			  double *out)
{
	size_t cnt = 0;

	for (size_t a = 0; a < m; a++) {
		size_t i = (size_t)(a * stride + 0.5);

		for (size_t b = a + 1; b < m; b++) {
			size_t j = (size_t)(b * stride + 0.5);
			double dx = x[j] - x[i], s;

			if (dx == 0)
				continue;
			s = (y[j] - y[i]) / dx;
			if (isfinite(s))
				out[cnt++] = s;
		}
	}
	return cnt;
}

double stats__theil_sen(const double *x, const double *y, size_t n)
{
	double stack[TS_STACK_PAIRS], *buf = stack, stride = 1.0, r = 0.0;
	size_t m, cnt;

	if (!x || !y || n < 2)
		return 0.0;
	if (n > STATS_MAX_POINTS) {
		x += n - STATS_MAX_POINTS;
		y += n - STATS_MAX_POINTS;
		n = STATS_MAX_POINTS;
	}
	m = n;
	if (n > TS_STACK_POINTS) {
		buf = malloc(n * (n - 1) / 2 * sizeof(*buf));
		if (!buf) {
			/* Evenly spaced points including the first and last. */
			buf = stack;
			m = TS_STACK_POINTS;
			stride = (double)(n - 1) / (double)(m - 1);
		}
	}
	cnt = pair_slopes(x, y, m, stride, buf);
	if (cnt)
		r = median_inplace(buf, cnt);
	if (buf != stack)
		free(buf);
	return r;
}

static double sign_of(double d)
{
	return (d > 0) - (d < 0);
}

/*
 * Sum over groups of tied values of t(t-1)(2t+5): ties shrink the variance
 * of S because tied pairs contribute 0 rather than +-1.
 */
static double tie_term(const double *y, size_t n)
{
	double sorted[STATS_MAX_POINTS], sum = 0.0;
	size_t run = 1;

	for (size_t i = 0; i < n; i++)
		sorted[i] = y[i];
	qsort(sorted, n, sizeof(sorted[0]), cmp_double);
	for (size_t i = 1; i <= n; i++) {
		if (i < n && cmp_double(&sorted[i], &sorted[i - 1]) == 0) {
			run++;
			continue;
		}
		sum += (double)run * (run - 1) * (2.0 * run + 5);
		run = 1;
	}
	return sum;
}

void stats__mann_kendall(const double *y, size_t n, struct mann_kendall *out)
{
	double nn;

	if (!out)
		return;
	*out = (struct mann_kendall){ .p = 1.0 };
	if (!y || n < 2)
		return;
	/* Same window as Theil–Sen, so the two describe the same points. */
	if (n > STATS_MAX_POINTS) {
		y += n - STATS_MAX_POINTS;
		n = STATS_MAX_POINTS;
	}
	for (size_t i = 0; i + 1 < n; i++)
		for (size_t j = i + 1; j < n; j++)
			out->s += sign_of(y[j] - y[i]);

	nn = (double)n;
	out->var_s = (nn * (nn - 1) * (2 * nn + 5) - tie_term(y, n)) / 18.0;
	/* The normal approximation means nothing for two points, and a
	 * constant series (all ties) has no variance to score against. */
	if (n < 3 || out->var_s <= 0)
		return;
	/* Continuity correction: S moves in steps of 2, so shift it by 1
	 * toward 0 before comparing with the continuous normal. */
	if (out->s > 0)
		out->z = (out->s - 1) / sqrt(out->var_s);
	else if (out->s < 0)
		out->z = (out->s + 1) / sqrt(out->var_s);
	out->p = erfc(fabs(out->z) / M_SQRT2);
}
