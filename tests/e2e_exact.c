// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fixtures/exact.c: every allocator entry point leaks a known number
 * of bytes in a known number of blocks at its own site; stray must report
 * each exactly, nothing for what was freed or failed, and totals that add up.
 */
#include <criterion/criterion.h>
#include "common_e2e.h"

struct site {
	const char *fn0, *fn1; /* stack[0], and stack[1] when not NULL */
	int64_t bytes, allocations;
};

/* Keep in sync with tests/fixtures/exact.c. */
static const struct site sites[] = {
	{ "leak_malloc", "main", 3 * 100, 3 },
	{ "leak_calloc", "main", 2 * 7 * 33, 2 },
	/* malloc(10) -> realloc(200) -> realloc(3000), twice: only the last
	 * block of each chain is outstanding, at the last realloc's site. */
	{ "leak_realloc", "main", 2 * 3000, 2 },
	{ "leak_reallocarray", "main", 10 * 24, 1 },
	{ "leak_posix_memalign", "main", 2 * 256, 2 },
	{ "leak_aligned_alloc", "main", 512, 1 },
	{ "leak_memalign", "main", 768, 1 },
	{ "leak_valloc", "main", 1000, 1 },
	{ "leak_pvalloc", "main", 8192, 1 },
	{ "leak_shared", "path_a", 2 * 48, 2 },
	{ "leak_shared", "path_b", 3 * 48, 3 },
	/* strdup: libc has no frame pointers, the site has no caller frames. */
	{ "__strdup", NULL, 4 * 20, 4 },
	/* realloc(p, SIZE_MAX) fails and must leave p outstanding. */
	{ "leak_failed_realloc", "main", 55, 1 },
	/* 4 threads, 1000 + 2000 + 3000 + 4000 bytes, one stack. */
	{ "leak_in_thread", "thread_main", 10000, 4 },
};

/* glibc's allocate_dtv: each new thread's DTV (4 threads x 272 bytes on
 * Debian 12 x86-64), calloc'ed in ld.so and kept with the cached stack. */
#define DTV_BYTES_PER_THREAD 272

static const char *const freed_fns[] = { "freed_all", "failed_allocations", "free_null", "freed_by_realloc0" };

static void check_sites(json_object *report, bool pvalloc, bool threads)
{
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		const struct site *s = &sites[i];
		json_object *sus;

		if ((!pvalloc && !strcmp(s->fn0, "leak_pvalloc")) || (!threads && !strcmp(s->fn0, "leak_in_thread"))) {
			cr_expect_eq(e2e_suspects_with(report, s->fn0), 0, "%s must not be a suspect", s->fn0);
			continue;
		}
		sus = e2e_suspect(report, 0, s->fn0, s->fn1);
		cr_expect(sus, "no suspect %s <- %s", s->fn0, s->fn1 ? s->fn1 : "*");
		if (!sus)
			continue;
		cr_expect_eq(e2e_int(sus, "bytes"), s->bytes, "%s <- %s: %ld bytes, expected %ld", s->fn0,
			     s->fn1 ? s->fn1 : "*", (long)e2e_int(sus, "bytes"), (long)s->bytes);
		cr_expect_eq(e2e_int(sus, "allocations"), s->allocations, "%s <- %s: %ld allocations, expected %ld",
			     s->fn0, s->fn1 ? s->fn1 : "*", (long)e2e_int(sus, "allocations"), (long)s->allocations);
	}
	/* One suspect per two-parent path, no merged third one. */
	cr_expect_eq(e2e_suspects_with(report, "leak_shared"), 2);
	for (size_t i = 0; i < sizeof(freed_fns) / sizeof(freed_fns[0]); i++)
		cr_expect_eq(e2e_suspects_with(report, freed_fns[i]), 0, "%s freed everything but is a suspect",
			     freed_fns[i]);
}

static int64_t expected_bytes(bool pvalloc, bool threads)
{
	int64_t sum = 0;

	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++)
		sum += sites[i].bytes;
	if (!pvalloc)
		sum -= 8192;
	if (!threads)
		sum -= 10000;
	else
		sum += 4 * DTV_BYTES_PER_THREAD;
	return sum;
}

static void check_totals(json_object *report, bool pvalloc, bool threads)
{
	int64_t bytes = e2e_int(report, "totals.outstanding_bytes");
	int64_t allocs = e2e_int(report, "totals.outstanding_allocations");

	/* --min-age 0 (the default): every outstanding block is in a suspect. */
	cr_expect_eq(e2e_suspects_sum(report, 0, "bytes"), bytes, "suspects sum to %ld bytes, totals say %ld",
		     (long)e2e_suspects_sum(report, 0, "bytes"), (long)bytes);
	cr_expect_eq(e2e_suspects_sum(report, 0, "allocations"), allocs);
	cr_expect_eq(bytes, expected_bytes(pvalloc, threads), "outstanding %ld bytes, expected %ld", (long)bytes,
		     (long)expected_bytes(pvalloc, threads));
	cr_expect_geq(e2e_int(report, "totals.allocations") - e2e_int(report, "totals.frees"), allocs);
	/* Failed allocations are counted, never recorded: 9 in
	 * failed_allocations() (8 without pvalloc), 1 in leak_failed_realloc. */
	cr_expect_eq(e2e_int(report, "totals.dropped.failed_allocations"), pvalloc ? 10 : 9);
}

Test(e2e_exact, every_site_exact)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("exact"), NULL };

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	check_sites(r.report, true, true);
	check_totals(r.report, true, true);
	/* glibc frees each exiting thread's tcache, which it allocated with
	 * _int_malloc (not through malloc): one unmatched free per thread. */
	cr_expect_eq(e2e_int(r.report, "totals.unmatched_frees"), 4);
	e2e_run_free(&r);
}

/* Without threads nothing is freed that stray did not see allocated. */
Test(e2e_exact, no_unmatched_frees_without_threads)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("exact"), "--no-threads", NULL };

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	check_sites(r.report, true, false);
	check_totals(r.report, true, false);
	cr_expect_eq(e2e_int(r.report, "totals.unmatched_frees"), 0);
	e2e_run_free(&r);
}

/* glibc's realloc(p, 0) frees p and returns NULL: nothing outstanding there,
 * and not a failed allocation. */
Test(e2e_exact, realloc_zero_frees)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("exact"), "--no-threads", "--realloc0", NULL };

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	check_sites(r.report, true, false);
	check_totals(r.report, true, false);
	cr_expect_eq(e2e_int(r.report, "totals.unmatched_frees"), 0);
	e2e_run_free(&r);
}

/* noleak frees everything, across threads, sizes and realloc chains. */
Test(e2e_noleak, no_suspects_nothing_outstanding)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("noleak"), NULL };

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	cr_expect_eq(e2e_suspects_count(r.report, 0), 0, "noleak has suspects:\n%s", r.out);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), 0);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), 0);
	cr_expect_eq(e2e_int(r.report, "totals.allocations"), e2e_int(r.report, "totals.frees"));
	/* valgrind agrees on the count: 654 allocations in noleak. */
	cr_expect_eq(e2e_int(r.report, "totals.allocations"), 654, "noleak: %ld allocations, expected 654",
		     (long)e2e_int(r.report, "totals.allocations"));
	e2e_run_free(&r);
}
