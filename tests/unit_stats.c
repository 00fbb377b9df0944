// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for the robust trend statistics: Theil–Sen and Mann–Kendall. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "stats.h"

#define US_N(a) (sizeof(a) / sizeof((a)[0]))

static void us_line(double *x, double *y, size_t n, double slope, double icpt)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = (double)i;
		y[i] = slope * x[i] + icpt;
	}
}

Test(theil_sen, exact_line)
{
	double x[10], y[10];

	us_line(x, y, 10, 3.0, 2.0);
	cr_assert_float_eq(stats__theil_sen(x, y, 10), 3.0, 1e-12);
}

Test(theil_sen, one_outlier_does_not_move_it)
{
	double x[10], y[10];

	us_line(x, y, 10, 3.0, 2.0);
	y[5] = 1000.0; /* 9 of 45 slopes are off; the median is not */
	cr_assert_float_eq(stats__theil_sen(x, y, 10), 3.0, 1e-12);
	y[5] = -1000.0;
	cr_assert_float_eq(stats__theil_sen(x, y, 10), 3.0, 1e-12);
}

Test(theil_sen, pairs_with_equal_x_are_skipped)
{
	/* Two samples per x; the vertical pairs have no slope. */
	double x[] = { 0, 0, 1, 1, 2, 2 }, y[] = { 0, 0, 2, 2, 4, 4 };
	double same_x[] = { 5, 5, 5 }, yy[] = { 1, 2, 3 };

	cr_assert_float_eq(stats__theil_sen(x, y, US_N(x)), 2.0, 1e-12);
	cr_assert_float_eq(stats__theil_sen(same_x, yy, 3), 0.0, 0);
}

Test(theil_sen, even_count_takes_mean_of_middle_two)
{
	/* Slopes: (0,1) = 1 and (0,2) = 3; (1,2) has equal x. */
	double x[] = { 0, 1, 1 }, y[] = { 0, 1, 3 };

	cr_assert_float_eq(stats__theil_sen(x, y, 3), 2.0, 1e-12);
}

Test(theil_sen, zero_one_two_points)
{
	double x[] = { 1, 3 }, y[] = { 10, 4 };

	cr_assert_float_eq(stats__theil_sen(x, y, 0), 0.0, 0);
	cr_assert_float_eq(stats__theil_sen(x, y, 1), 0.0, 0);
	cr_assert_float_eq(stats__theil_sen(x, y, 2), -3.0, 1e-12);
	cr_assert_float_eq(stats__theil_sen(NULL, y, 2), 0.0, 0);
}

static int us_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Reference median of pairwise slopes by full sort, to check the
 * quickselect on scrambled data (odd and even pair counts). */
static double us_ref_theil_sen(const double *x, const double *y, size_t n)
{
	double *s = malloc(n * n * sizeof(*s)), r;
	size_t m = 0;

	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (x[j] != x[i])
				s[m++] = (y[j] - y[i]) / (x[j] - x[i]);
	qsort(s, m, sizeof(*s), us_cmp);
	r = m % 2 ? s[m / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
	free(s);
	return r;
}

Test(theil_sen, matches_sorting_reference_on_scrambled_data)
{
	static double x[200], y[200];
	uint64_t st = 12345;

	for (size_t n = 3; n <= 200; n += 13) {
		for (size_t i = 0; i < n; i++) {
			st = st * 6364136223846793005ULL + 1442695040888963407ULL;
			x[i] = (double)(i / 2); /* pairs of equal x */
			y[i] = (double)(st >> 40) / 1e3 + 0.5 * (double)i;
		}
		cr_assert_float_eq(stats__theil_sen(x, y, n), us_ref_theil_sen(x, y, n), 1e-9,
				   "n=%zu", n);
	}
}

Test(theil_sen, long_series_uses_last_max_points)
{
	static double x[STATS_MAX_POINTS + 88], y[STATS_MAX_POINTS + 88];
	size_t n = US_N(x);

	/* The first 88 points fall steeply; the last STATS_MAX_POINTS rise at 5. */
	for (size_t i = 0; i < n; i++) {
		x[i] = (double)i;
		y[i] = i < 88 ? -1000.0 * (double)i : 5.0 * (double)i;
	}
	cr_assert_float_eq(stats__theil_sen(x, y, n), 5.0, 1e-12);
}

Test(mann_kendall, increasing_1_to_10)
{
	double y[10];
	struct mann_kendall mk;

	for (size_t i = 0; i < 10; i++)
		y[i] = (double)(i + 1);
	stats__mann_kendall(y, 10, &mk);
	/* S = C(10,2) = 45; var = 10*9*25/18 = 125; z = 44/sqrt(125). */
	cr_assert_float_eq(mk.s, 45.0, 0);
	cr_assert_float_eq(mk.var_s, 125.0, 1e-9);
	cr_assert_float_eq(mk.z, 3.9354796404, 1e-9);
	cr_assert_float_eq(mk.p, 8.30307e-5, 1e-9);
}

Test(mann_kendall, five_increasing_points_just_significant)
{
	double y[] = { 1, 2, 3, 4, 5 };
	struct mann_kendall mk;

	/* S = 10, var = 5*4*15/18 = 16.667, z = 9/4.0825 = 2.2045. */
	stats__mann_kendall(y, 5, &mk);
	cr_assert_float_eq(mk.z, 2.2045407685, 1e-9);
	cr_assert_float_eq(mk.p, 0.0274863361, 1e-9);
}

Test(mann_kendall, ties_correct_the_variance)
{
	double y[] = { 1, 2, 2, 3, 3, 3, 4 };
	struct mann_kendall mk;

	/*
	 * S by first element: 1 -> +6; 2 -> +4 (the other 2 ties); 2 -> +4;
	 * 3 -> +1 (two ties, then 4); 3 -> +1; 3 -> +1. S = 17.
	 * var = [7*6*19 - (2*1*9) - (3*2*11)] / 18 = (798 - 18 - 66) / 18
	 *     = 714 / 18 = 39.6667; z = 16 / sqrt(39.6667) = 2.54043;
	 * p = erfc(2.54043 / sqrt 2) = 0.0110716.
	 */
	stats__mann_kendall(y, US_N(y), &mk);
	cr_assert_float_eq(mk.s, 17.0, 0);
	cr_assert_float_eq(mk.var_s, 714.0 / 18.0, 1e-9);
	cr_assert_float_eq(mk.z, 2.5404293953, 1e-9);
	cr_assert_float_eq(mk.p, 0.0110716446, 1e-9);
}

Test(mann_kendall, no_trend_with_ties)
{
	double y[] = { 3, 1, 4, 1, 5, 9, 2, 6 };
	struct mann_kendall mk;

	/* S = 11; var = (8*7*21 - 2*1*9)/18 = 1158/18 = 64.333; z = 10/8.0208. */
	stats__mann_kendall(y, US_N(y), &mk);
	cr_assert_float_eq(mk.s, 11.0, 0);
	cr_assert_float_eq(mk.var_s, 1158.0 / 18.0, 1e-9);
	cr_assert_float_eq(mk.z, 1.2467574524, 1e-9);
	cr_assert_float_eq(mk.p, 0.2124864457, 1e-9);
}

Test(mann_kendall, decreasing_gives_negative_z)
{
	double y[10];
	struct mann_kendall mk;

	for (size_t i = 0; i < 10; i++)
		y[i] = (double)(10 - i);
	stats__mann_kendall(y, 10, &mk);
	cr_assert_float_eq(mk.s, -45.0, 0);
	cr_assert_float_eq(mk.z, -3.9354796404, 1e-9);
	cr_assert_float_eq(mk.p, 8.30307e-5, 1e-9);
}

Test(mann_kendall, constant_series_has_no_variance)
{
	double y[] = { 7, 7, 7, 7, 7, 7 };
	struct mann_kendall mk;

	stats__mann_kendall(y, US_N(y), &mk);
	cr_assert_float_eq(mk.s, 0.0, 0);
	cr_assert_float_eq(mk.var_s, 0.0, 1e-12);
	cr_assert_float_eq(mk.z, 0.0, 0);
	cr_assert_float_eq(mk.p, 1.0, 0);
}

Test(mann_kendall, fewer_than_three_points)
{
	double y[] = { 1, 2 };
	struct mann_kendall mk;

	stats__mann_kendall(y, 0, &mk);
	cr_assert_float_eq(mk.p, 1.0, 0);
	stats__mann_kendall(y, 1, &mk);
	cr_assert_float_eq(mk.p, 1.0, 0);
	stats__mann_kendall(y, 2, &mk);
	cr_assert_float_eq(mk.s, 1.0, 0);
	cr_assert_float_eq(mk.z, 0.0, 0);
	cr_assert_float_eq(mk.p, 1.0, 0);
	stats__mann_kendall(NULL, 5, &mk);
	cr_assert_float_eq(mk.p, 1.0, 0);
	stats__mann_kendall(y, 2, NULL); /* must not crash */
}
