// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests for the pure analysis functions: suspect ranking and OLS slope. */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "analysis.h"

#define UA_N(a) (sizeof(a) / sizeof((a)[0]))

static struct site_live ua_site(int pid, uint64_t hash, uint64_t bytes, uint64_t allocs)
{
	struct site_live s = {
		.pid = pid, .stack_hash = hash, .bytes = bytes, .allocations = allocs,
		.total_bytes = bytes * 2, .total_allocations = allocs * 2, .frees = allocs,
	};
	return s;
}

/*
 * Input in scrambled order; expected order by hash (hashes are unique here).
 * Covers every tie-break level and values that overflow a subtracting
 * comparator (UINT64_MAX bytes and hashes).
 */
static void ua_fill_sites(struct site_live *s)
{
	s[0] = ua_site(2, 9, 100, 2);              /* 100 B, 2 allocs, pid 2, hash 9 */
	s[1] = ua_site(1, 0xdead, 0, 0);           /* nothing outstanding: dropped */
	s[2] = ua_site(1, 5, 100, 3);              /* more allocations wins a bytes tie */
	s[3] = ua_site(1, 7, 100, 2);              /* pid 1 before pid 2 */
	s[4] = ua_site(1, 3, 100, 2);              /* same pid: hash 3 before 7 */
	s[5] = ua_site(3, 1, 500, 1);              /* more bytes first */
	s[6] = ua_site(2, UINT64_MAX, 100, 2);     /* largest hash last in its tie */
	s[7] = ua_site(4, 0xbeef, 999, 0);         /* bytes but no allocations: dropped */
	s[8] = ua_site(5, 2, UINT64_MAX, 1);       /* huge: first */
	s[9] = ua_site(2, 0, 100, 2);              /* hash 0 first among pid 2 */
}

static const uint64_t ua_expected_hashes[] = { 2, 1, 5, 3, 7, 0, 9, UINT64_MAX };

static void ua_assert_ranked(const struct site_live *s, size_t n)
{
	cr_assert_eq(n, UA_N(ua_expected_hashes));
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(s[i].stack_hash, ua_expected_hashes[i],
			     "position %zu: hash %#llx, want %#llx", i,
			     (unsigned long long)s[i].stack_hash,
			     (unsigned long long)ua_expected_hashes[i]);
}

Test(rank_suspects, order_with_ties_and_zero_sites_dropped)
{
	struct site_live s[10];
	size_t n;

	ua_fill_sites(s);
	n = analysis__rank_suspects(s, UA_N(s));
	ua_assert_ranked(s, n);
	/* The fields travel with their site. */
	cr_assert_eq(s[0].pid, 5);
	cr_assert_eq(s[0].bytes, UINT64_MAX);
	cr_assert_eq(s[2].allocations, 3);
	cr_assert_eq(s[2].total_bytes, 200);
	/* The dropped sites are still in the array, behind the suspects. */
	for (size_t i = n; i < UA_N(s); i++)
		cr_assert_eq(s[i].allocations, 0);
}

Test(rank_suspects, result_does_not_depend_on_input_order)
{
	struct site_live base[10], s[10];

	ua_fill_sites(base);
	/* Every rotation and its reverse must rank identically. */
	for (size_t rot = 0; rot < UA_N(base); rot++) {
		for (size_t i = 0; i < UA_N(s); i++)
			s[i] = base[(i + rot) % UA_N(base)];
		ua_assert_ranked(s, analysis__rank_suspects(s, UA_N(s)));
		for (size_t i = 0; i < UA_N(s); i++)
			s[UA_N(s) - 1 - i] = base[(i + rot) % UA_N(base)];
		ua_assert_ranked(s, analysis__rank_suspects(s, UA_N(s)));
	}
}

Test(rank_suspects, empty_and_all_freed)
{
	struct site_live s[3] = { ua_site(1, 1, 0, 0), ua_site(1, 2, 0, 0), ua_site(2, 3, 0, 0) };

	cr_assert_eq(analysis__rank_suspects(s, 0), 0);
	cr_assert_eq(analysis__rank_suspects(NULL, 0), 0);
	cr_assert_eq(analysis__rank_suspects(s, UA_N(s)), 0);
	s[2].allocations = 1;
	cr_assert_eq(analysis__rank_suspects(s, UA_N(s)), 1);
	cr_assert_eq(s[0].stack_hash, 3);
}

Test(ls_slope, exact_line)
{
	double x[10], y[10];

	for (int i = 0; i < 10; i++) {
		x[i] = i;
		y[i] = 3.0 * i + 2.0;
	}
	cr_assert_float_eq(analysis__ls_slope(x, y, 10), 3.0, 1e-12);

	for (int i = 0; i < 10; i++)
		y[i] = -2.0 * i + 10.0;
	cr_assert_float_eq(analysis__ls_slope(x, y, 10), -2.0, 1e-12);
}

Test(ls_slope, degenerate_inputs_give_zero)
{
	double x[] = { 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1 };
	double y[] = { 1.0, 5.0, 2.0, 8.0, 3.0, 9.0, 4.0 };

	cr_assert_eq(analysis__ls_slope(x, y, 1), 0.0);
	cr_assert_eq(analysis__ls_slope(x, y, 0), 0.0);
	/* All x equal: the slope is undefined, reported as 0, never inf/nan. */
	cr_assert_eq(analysis__ls_slope(x, y, UA_N(x)), 0.0);
}

Test(ls_slope, noisy_data_matches_hand_computation)
{
	/* mean x = 3, mean y = 4; Sxy = 4+0+0+0+2 = 6, Sxx = 4+1+0+1+4 = 10. */
	double x[] = { 1, 2, 3, 4, 5 };
	double y[] = { 2, 4, 5, 4, 5 };

	cr_assert_float_eq(analysis__ls_slope(x, y, UA_N(x)), 0.6, 1e-12);
}

Test(ls_slope, irregular_x_matches_hand_computation)
{
	/* mean x = 3, mean y = 2; dx = -3,-2,1,4; dy = -1,-1,0,2;
	 * Sxy = 3+2+0+8 = 13, Sxx = 9+4+1+16 = 30. */
	double x[] = { 0, 1, 4, 7 };
	double y[] = { 1, 1, 2, 4 };

	cr_assert_float_eq(analysis__ls_slope(x, y, UA_N(x)), 13.0 / 30.0, 1e-12);
}

Test(ls_slope, large_offset_x_stays_accurate)
{
	/* Wall-clock seconds: the one-pass formula cancels catastrophically here.
	 * Alternating +-0.25 noise on y = 3x + 2; exact slope (rational
	 * arithmetic, dx and dy about the means) is 10800/3599. */
	double x[60], y[60];

	for (int i = 0; i < 60; i++) {
		x[i] = 1.7e9 + 0.5 * i;
		y[i] = 3.0 * x[i] + 2.0 + ((i % 2) ? 0.25 : -0.25);
	}
	cr_assert_float_eq(analysis__ls_slope(x, y, UA_N(x)), 10800.0 / 3599.0, 1e-9);
}
