// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for trend assessment, the bounded site history, and the
 * verdict and score of a site on synthetic series: a steady leak, a cache
 * that fills then churns on a plateau, a sawtooth, and noise.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "trend.h"

#define UT_KIB 1024.0
#define UT_MIB (1024.0 * 1024.0)
#define UT_N 120 /* one sample per second for two minutes */

Test(trend, verdict_names)
{
	cr_assert_str_eq(verdict__name(VERDICT_TRANSIENT), "transient");
	cr_assert_str_eq(verdict__name(VERDICT_STABLE), "stable");
	cr_assert_str_eq(verdict__name(VERDICT_GROWING), "growing");
	cr_assert_str_eq(verdict__name(VERDICT_LEAK), "leak");
}

static void ut_ramp(double *t, double *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		t[i] = (double)(i + 1);
		v[i] = 100.0 * (double)(i + 1);
	}
}

Test(trend, strictly_increasing_is_sustained_from_ten_points)
{
	double t[10], v[10];
	struct trend tr;

	ut_ramp(t, v, 10);
	trend__assess(t, v, 9, NULL, &tr);
	cr_assert(!tr.significant, "9 points < default min_points 10");
	trend__assess(t, v, 10, NULL, &tr);
	cr_assert_eq(tr.points, 10);
	cr_assert_float_eq(tr.slope_per_s, 100.0, 1e-9);
	cr_assert_float_eq(tr.recent_slope_per_s, 100.0, 1e-9);
	cr_assert_float_eq(tr.p, 8.30307e-5, 1e-9);
	cr_assert_float_eq(tr.recent_p, 0.0274863361, 1e-9); /* last 5 points */
	cr_assert(tr.significant);
	cr_assert(tr.sustained);
}

Test(trend, recent_half_needs_five_points)
{
	struct trend_opts o = { .min_points = 5 };
	double t[8], v[8];
	struct trend tr;

	ut_ramp(t, v, 8);
	trend__assess(t, v, 8, &o, &tr); /* recent half = 4 points */
	cr_assert(tr.significant);
	cr_assert(!tr.sustained);
}

Test(trend, plateau_is_significant_but_not_sustained)
{
	double t[20], v[20];
	struct trend tr;

	for (size_t i = 0; i < 20; i++) {
		t[i] = (double)i;
		v[i] = i < 8 ? 1000.0 * (double)i : 8000.0 + (double)(i % 3); /* ramp, then flat */
	}
	trend__assess(t, v, 20, NULL, &tr);
	cr_assert(tr.significant, "p=%g", tr.p);
	cr_assert(!tr.sustained, "recent_p=%g", tr.recent_p);
}

Test(trend, decreasing_and_empty_are_not_significant)
{
	double t[12], v[12];
	struct trend tr;

	for (size_t i = 0; i < 12; i++) {
		t[i] = (double)i;
		v[i] = 1000.0 - (double)i;
	}
	trend__assess(t, v, 12, NULL, &tr);
	cr_assert(tr.slope_per_s < 0);
	cr_assert(!tr.significant);
	trend__assess(NULL, NULL, 0, NULL, &tr);
	cr_assert_eq(tr.points, 0);
	cr_assert_float_eq(tr.p, 1.0, 0);
	cr_assert(!tr.significant && !tr.sustained);
}

/* ---- history bounds ------------------------------------------------------ */

static int ut_add(struct site_history *h, int pid, uint64_t hash, double t, double live)
{
	struct site_point p = { .t_s = t, .live_bytes = live };

	return site_history__add(h, pid, hash, &p);
}

static size_t ut_points(const struct site_history *h, int pid, uint64_t hash)
{
	struct site_assessment a;

	site_history__assess(h, pid, hash, NULL, NULL, false, &a);
	return a.trend.points;
}

Test(site_history, constructor_and_destructor_edges)
{
	errno = 0;
	cr_assert_null(site_history__new(0, 8));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(site_history__new(8, 0));
	site_history__free(NULL);
	cr_assert_eq(site_history__add(NULL, 1, 1, NULL), -EINVAL);
	cr_assert_eq(site_history__dropped(NULL), 0);
}

Test(site_history, fifth_site_evicts_the_smallest)
{
	struct site_history *h = site_history__new(4, 8);

	cr_assert_not_null(h);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(ut_add(h, 100, (uint64_t)i, 1.0, 100.0 * i), 0);
	cr_assert_eq(site_history__dropped(h), 0);
	cr_assert_eq(ut_add(h, 100, 5, 1.0, 500.0), 0);
	cr_assert_eq(site_history__dropped(h), 1);
	cr_assert_eq(ut_points(h, 100, 1), 0, "the 100-byte site was evicted");
	for (uint64_t k = 2; k <= 5; k++)
		cr_assert_eq(ut_points(h, 100, k), 1, "site %llu kept", (unsigned long long)k);
	site_history__free(h);
}

Test(site_history, smaller_newcomer_is_refused_and_counted)
{
	struct site_history *h = site_history__new(4, 8);

	for (int i = 1; i <= 4; i++)
		ut_add(h, 100, (uint64_t)i, 1.0, 100.0 * i);
	cr_assert_eq(ut_add(h, 100, 5, 1.0, 100.0), -ENOSPC, "equal is not larger");
	cr_assert_eq(site_history__dropped(h), 1);
	cr_assert_eq(ut_points(h, 100, 5), 0);
	cr_assert_eq(ut_points(h, 100, 1), 1);
	site_history__free(h);
}

Test(site_history, eviction_follows_the_latest_bytes)
{
	struct site_history *h = site_history__new(4, 8);

	for (int i = 1; i <= 4; i++)
		ut_add(h, 100, (uint64_t)i, 1.0, 100.0 * i);
	/* Site 1 grows past everyone; site 2 (200) is now the smallest. */
	cr_assert_eq(ut_add(h, 100, 1, 2.0, 1000.0), 0);
	cr_assert_eq(ut_add(h, 100, 9, 2.0, 250.0), 0);
	cr_assert_eq(ut_points(h, 100, 2), 0);
	cr_assert_eq(ut_points(h, 100, 1), 2);
	/* Same hash, other pid: a distinct site. */
	cr_assert_eq(ut_add(h, 200, 1, 2.0, 5000.0), 0);
	cr_assert_eq(ut_points(h, 100, 9), 0);
	cr_assert_eq(ut_points(h, 200, 1), 1);
	cr_assert_eq(site_history__dropped(h), 2);
	site_history__free(h);
}

Test(site_history, ring_keeps_the_last_points)
{
	struct site_history *h = site_history__new(2, 4);
	struct site_assessment a;

	for (int t = 1; t <= 10; t++)
		ut_add(h, 1, 1, (double)t, (double)(t * t));
	site_history__assess(h, 1, 1, NULL, NULL, false, &a);
	cr_assert_eq(a.trend.points, 4);
	/* Points t=7..10 of t^2: the slope of pair (a, b) is a + b, so
	 * 15,16,17,17,18,19 -> median 17. Any older point would pull it down
	 * (all ten points give 11). */
	cr_assert_float_eq(a.trend.slope_per_s, 17.0, 1e-9);
	site_history__free(h);
}

Test(site_history, overwritten_peak_no_longer_makes_it_transient)
{
	struct site_history *h = site_history__new(2, 4);
	struct site_totals tot = { .live_bytes = 10 };
	struct site_assessment a;

	ut_add(h, 1, 1, 1.0, 1000.0);
	for (int t = 2; t <= 4; t++)
		ut_add(h, 1, 1, (double)t, 10.0);
	site_history__assess(h, 1, 1, &tot, NULL, false, &a);
	cr_assert_eq(a.verdict, VERDICT_TRANSIENT, "10 B of a 1000 B peak");
	ut_add(h, 1, 1, 5.0, 10.0); /* the 1000 B point is overwritten */
	site_history__assess(h, 1, 1, &tot, NULL, false, &a);
	cr_assert_neq(a.verdict, VERDICT_TRANSIENT, "got %s", verdict__name(a.verdict));
	site_history__free(h);
}

/* Random adds against a brute-force model of "keep the max_sites largest
 * latest values": exercises the hash table's deletion and the heap. */
Test(site_history, matches_model_under_random_churn)
{
	enum { MAX = 16, POOL = 64, ROUNDS = 20000 };
	struct site_history *h = site_history__new(MAX, 3);
	double model[POOL]; /* latest live bytes, or -1 when not tracked */
	uint64_t st = 99, drops = 0;
	size_t tracked = 0;

	for (int i = 0; i < POOL; i++)
		model[i] = -1;
	for (int r = 0; r < ROUNDS; r++) {
		int k, min = -1, rc;
		double live;

		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		k = (int)((st >> 33) % POOL);
		live = (double)(st >> 20); /* distinct: no ties in the model */
		for (int i = 0; i < POOL; i++)
			if (model[i] >= 0 && (min < 0 || model[i] < model[min]))
				min = i;
		rc = ut_add(h, 7, (uint64_t)k * 0x1000, (double)r, live);
		if (model[k] >= 0 || tracked < MAX) {
			tracked += model[k] < 0;
			model[k] = live;
			cr_assert_eq(rc, 0);
		} else if (live > model[min]) {
			model[min] = -1;
			model[k] = live;
			drops++;
			cr_assert_eq(rc, 0);
		} else {
			drops++;
			cr_assert_eq(rc, -ENOSPC);
		}
	}
	for (int i = 0; i < POOL; i++)
		cr_assert_eq(ut_points(h, 7, (uint64_t)i * 0x1000) > 0, model[i] >= 0, "key %d", i);
	cr_assert_eq(site_history__dropped(h), drops);
	site_history__free(h);
}

/* ---- verdicts without history -------------------------------------------- */

Test(site_assess, no_history_uses_totals)
{
	struct site_history *h = site_history__new(4, 8);
	struct site_totals held = { .live_bytes = 4096, .alloc_bytes = 4096 };
	struct site_totals none = { .alloc_bytes = 4096, .free_bytes = 4096 };
	struct site_assessment a;

	site_history__assess(h, 1, 1, &held, NULL, true, &a);
	cr_assert_eq(a.verdict, VERDICT_LEAK, "held at exit is what LSan reports");
	site_history__assess(h, 1, 1, &held, NULL, false, &a);
	cr_assert_eq(a.verdict, VERDICT_GROWING);
	site_history__assess(h, 1, 1, &none, NULL, true, &a);
	cr_assert_eq(a.verdict, VERDICT_TRANSIENT);
	cr_assert_float_eq(a.release_ratio, 1.0, 0);
	site_history__assess(NULL, 1, 1, &held, NULL, false, &a);
	cr_assert_eq(a.verdict, VERDICT_GROWING);
	site_history__free(h);
}

/* ---- scenarios ----------------------------------------------------------- */

/* A site's totals at each second 1..UT_N. */
struct ut_series {
	struct site_totals at[UT_N];
};

struct ut_run {
	enum verdict verdict[UT_N]; /* assessed on prefixes 1..k */
	int first_leak;             /* 1-based prefix, 0 = never */
	bool leak_after_first;      /* leak at every prefix from first_leak on */
	struct site_assessment last;
};

/* Feed the series one drain at a time and assess after every drain, as
 * the session does. */
static void ut_play(const struct ut_series *s, struct ut_run *r)
{
	struct site_history *h = site_history__new(8, 256);

	cr_assert_not_null(h);
	*r = (struct ut_run){ .leak_after_first = true };
	for (int k = 0; k < UT_N; k++) {
		cr_assert_eq(ut_add(h, 42, 0xabc, k + 1.0, s->at[k].live_bytes), 0);
		site_history__assess(h, 42, 0xabc, &s->at[k], NULL, false, &r->last);
		r->verdict[k] = r->last.verdict;
		if (r->last.verdict == VERDICT_LEAK && !r->first_leak)
			r->first_leak = k + 1;
		if (r->first_leak && r->last.verdict != VERDICT_LEAK)
			r->leak_after_first = false;
	}
	site_history__free(h);
}

/* Deterministic noise in [-1, 1]. */
static double ut_noise(uint64_t *st)
{
	*st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(*st >> 11) / (double)(1ULL << 53) * 2.0 - 1.0;
}

static void ut_leak(struct ut_series *s, double rate)
{
	for (int k = 0; k < UT_N; k++) {
		double t = k + 1.0;

		s->at[k] = (struct site_totals){
			.live_bytes = rate * t, .alloc_bytes = rate * t, .free_bytes = 0,
			.oldest_age_s = t, .window_s = t,
		};
	}
}

/* Fills 8 MiB in 5 s, then holds it +-32 KiB while replacing 1 MiB/s of
 * entries; some entries stay from the start. */
static void ut_cache(struct ut_series *s)
{
	uint64_t st = 2024;

	for (int k = 0; k < UT_N; k++) {
		double t = k + 1.0, live, alloc;

		if (t <= 5) {
			live = alloc = 8 * UT_MIB * t / 5;
		} else {
			live = 8 * UT_MIB + 32 * UT_KIB * ut_noise(&st);
			alloc = 8 * UT_MIB + 64 * UT_KIB + UT_MIB * (t - 5);
		}
		s->at[k] = (struct site_totals){
			.live_bytes = live, .alloc_bytes = alloc, .free_bytes = alloc - live,
			.oldest_age_s = t, .window_s = t,
		};
	}
}

/* Grows 1 MiB/s for 4 s, frees everything, repeats; phase shifts where in
 * the cycle the window ends. */
static void ut_sawtooth(struct ut_series *s, int phase)
{
	double alloc = 0;

	for (int k = 0; k < UT_N; k++) {
		int pos = (k + 1 + phase) % 5; /* 1,2,3,4 MiB, then 0 */
		double live = pos * UT_MIB;

		if (pos)
			alloc += UT_MIB;
		s->at[k] = (struct site_totals){
			.live_bytes = live, .alloc_bytes = alloc, .free_bytes = alloc - live,
			.oldest_age_s = pos, .window_s = k + 1.0,
		};
	}
}

/* 1 MiB +- amp with no trend, 256 KiB/s of churn. */
static void ut_noise_only(struct ut_series *s, uint64_t seed, double amp)
{
	for (int k = 0; k < UT_N; k++) {
		double t = k + 1.0, live = UT_MIB + amp * ut_noise(&seed);
		double alloc = UT_MIB + amp + 256 * UT_KIB * t;

		s->at[k] = (struct site_totals){
			.live_bytes = live, .alloc_bytes = alloc, .free_bytes = alloc - live,
			.oldest_age_s = t, .window_s = t,
		};
	}
}

static struct ut_series ut_s;
static struct ut_run ut_r;

Test(scenario, steady_leak_is_leak_by_point_12_and_stays)
{
	ut_leak(&ut_s, 64 * UT_KIB);
	ut_play(&ut_s, &ut_r);
	cr_log_info("steady leak: first leak at prefix %d, score at 120 s %.2f", ut_r.first_leak,
		    ut_r.last.score);
	cr_assert(ut_r.first_leak >= 1 && ut_r.first_leak <= 12, "first leak at %d",
		  ut_r.first_leak);
	cr_assert(ut_r.leak_after_first);
	cr_assert_eq(ut_r.verdict[0], VERDICT_GROWING, "one point: growing, not yet a trend");
	cr_assert_float_eq(ut_r.last.growth_bytes_per_s, 64 * UT_KIB, 1e-6);
	cr_assert(ut_r.last.trend_p < 1e-6);
}

Test(scenario, filled_cache_is_never_leak_and_ends_stable)
{
	ut_cache(&ut_s);
	ut_play(&ut_s, &ut_r);
	for (int k = 0; k < UT_N; k++)
		cr_assert_neq(ut_r.verdict[k], VERDICT_LEAK, "leak at prefix %d", k + 1);
	cr_assert_eq(ut_r.verdict[UT_N - 1], VERDICT_STABLE, "got %s",
		     verdict__name(ut_r.verdict[UT_N - 1]));
	cr_log_info("cache: score at 120 s %.2f, release %.3f", ut_r.last.score,
		    ut_r.last.release_ratio);
}

Test(scenario, sawtooth_is_never_leak_at_any_phase)
{
	for (int phase = 0; phase < 5; phase++) {
		ut_sawtooth(&ut_s, phase);
		ut_play(&ut_s, &ut_r);
		for (int k = 0; k < UT_N; k++)
			cr_assert_neq(ut_r.verdict[k], VERDICT_LEAK, "phase %d prefix %d", phase,
				      k + 1);
	}
}

/*
 * Noise within +-1% of the level stays under the 2% growth floor: never a
 * leak at any drain. Larger noise (+-6%) can pass Mann–Kendall by chance
 * at some drain (measured: 29 of 300 seeds at some prefix of 120), but
 * not over the whole window: the final verdict is never leak.
 */
Test(scenario, noise_is_never_leak)
{
	for (uint64_t seed = 1; seed <= 20; seed++) {
		ut_noise_only(&ut_s, seed, 10 * UT_KIB);
		ut_play(&ut_s, &ut_r);
		for (int k = 0; k < UT_N; k++)
			cr_assert_neq(ut_r.verdict[k], VERDICT_LEAK, "seed %llu prefix %d",
				      (unsigned long long)seed, k + 1);
		cr_assert_eq(ut_r.verdict[UT_N - 1], VERDICT_STABLE);
		ut_noise_only(&ut_s, seed, 64 * UT_KIB);
		ut_play(&ut_s, &ut_r);
		cr_assert_neq(ut_r.verdict[UT_N - 1], VERDICT_LEAK, "seed %llu",
			      (unsigned long long)seed);
		cr_assert_neq(ut_r.verdict[UT_N - 1], VERDICT_GROWING);
	}
}

static double ut_final_score(struct ut_series *s)
{
	ut_play(s, &ut_r);
	return ut_r.last.score;
}

Test(scenario, leak_outranks_cache_outranks_sawtooth)
{
	double leak, small_leak, cache, saw;

	ut_leak(&ut_s, 64 * UT_KIB);
	leak = ut_final_score(&ut_s);
	ut_leak(&ut_s, 32 * UT_KIB); /* 3.75 MiB at 120 s, under half the cache */
	small_leak = ut_final_score(&ut_s);
	ut_cache(&ut_s);
	cache = ut_final_score(&ut_s);
	cr_assert_gt(leak, cache);
	cr_assert_gt(small_leak, cache);
	for (int phase = 0; phase < 5; phase++) {
		ut_sawtooth(&ut_s, phase);
		saw = ut_final_score(&ut_s);
		cr_log_info("scores at 120 s: leak %.2f, leak(3.75 MiB) %.2f, cache %.2f, "
				"sawtooth phase %d %.2f (%s)\n",
			leak, small_leak, cache, phase, saw, verdict__name(ut_r.last.verdict));
		cr_assert_gt(cache, saw, "phase %d", phase);
	}
}

/* ---- retained share (attach-mode cache artifact) ------------------------ */

static enum verdict ut_verdict_at(const double *live, const double *alloc, size_t n)
{
	struct site_history *h = site_history__new(4, 256);
	struct site_assessment a;
	struct site_totals tot;

	cr_assert(h);
	for (size_t i = 0; i < n; i++) {
		struct site_point p = { .t_s = (double)i, .live_bytes = live[i], .alloc_bytes = alloc[i] };

		cr_assert_eq(site_history__add(h, 1, 7, &p), 0);
	}
	/* Frees of blocks allocated before the attach are unmatched: the
	 * site's own frees undercount what it released. */
	tot = (struct site_totals){ .live_bytes = live[n - 1], .alloc_bytes = alloc[n - 1],
				    .free_bytes = alloc[n - 1] - live[n - 1], .window_s = (double)n };
	site_history__assess(h, 1, 7, &tot, NULL, false, &a);
	site_history__free(h);
	return a.verdict;
}

/*
 * stray attached to a running cache: 8 MiB of 64 KiB entries, 8 replaced a
 * second, 6 of them allocated before the attach. When those come up for
 * replacement (at 16 s) the tracked live bytes step up by 384 KiB, although
 * the cache only churns: never a leak at any prefix.
 */
Test(retained, attached_cache_replacing_untracked_entries_is_not_a_leak)
{
	double live[40], alloc[40];

	for (size_t i = 0; i < 40; i++) {
		double untracked = i < 16 ? 6 : i < 17 ? 2 : 0;

		live[i] = (128 - untracked) * 65536;
		alloc[i] = (122 + 8.0 * i) * 65536;
	}
	for (size_t n = 1; n <= 40; n++)
		cr_assert_neq(ut_verdict_at(live, alloc, n), VERDICT_LEAK, "called a leak at %zu s", n);
}

/* A site that keeps half of what it allocates is a leak; one that keeps a
 * tenth while churning is only growing. */
Test(retained, share_kept_decides_leak_or_growing)
{
	double live[60], alloc[60];

	for (size_t i = 0; i < 60; i++) {
		alloc[i] = 100000.0 * i;
		live[i] = 50000.0 * i;
	}
	cr_assert_eq(ut_verdict_at(live, alloc, 60), VERDICT_LEAK);
	for (size_t i = 0; i < 60; i++)
		live[i] = 10000.0 * i;
	cr_assert_eq(ut_verdict_at(live, alloc, 60), VERDICT_GROWING);
}
