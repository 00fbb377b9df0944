// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fixtures/cxxleak.cpp: every operator new form leaks a known number
 * of bytes in a known number of blocks at its own site; stray must report
 * each exactly, at the function that called new (not inside libstdc++),
 * nothing for what every operator delete form, std::vector and std::string
 * released, and each block once although libstdc++'s new calls malloc.
 * The comparison with valgrind is in e2e_valgrind.c (cxxleak).
 */
#include <criterion/criterion.h>
#include "common_e2e.h"

struct site {
	const char *fn0, *fn1; /* stack[0], and stack[1] */
	int64_t bytes, allocations;
};

/* Keep in sync with tests/fixtures/cxxleak.cpp. */
static const struct site sites[] = {
	{ "leak_widget()", "main", 3 * 40, 3 },
	{ "leak_array()", "main", 2 * 100, 2 },
	/* new[] of a type with a destructor: an 8-byte element count first. */
	{ "leak_counted_array()", "main", 8 + 4 * 8, 1 },
	{ "leak_aligned()", "main", 128, 1 },
	{ "leak_aligned_array()", "main", 2 * 128, 1 },
	{ "leak_nothrow()", "main", 2 * 40, 2 },
	{ "leak_nothrow_array()", "main", 33, 1 },
	{ "leak_nothrow_aligned()", "main", 128, 1 },
	{ "leak_nothrow_aligned_array()", "main", 3 * 128, 1 },
	/* The new inside std::make_unique, called from leak_unique. */
	{ "std::__detail::_MakeUniq<Widget>::__single_object std::make_unique<Widget>()", "leak_unique()", 2 * 40,
	  2 },
	/* --throw only: the new after a caught std::bad_alloc. */
	{ "leak_after_throw()", "main", 40, 1 },
};

static const char *const freed_fns[] = { "freed_all()", "vector_growth()", "strings()" };

static void check_sites(json_object *report, bool thrown)
{
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		const struct site *s = &sites[i];
		json_object *sus;

		if (!thrown && !strcmp(s->fn0, "leak_after_throw()")) {
			cr_expect_eq(e2e_suspects_with(report, s->fn0), 0, "%s must not be a suspect", s->fn0);
			continue;
		}
		sus = e2e_suspect(report, 0, s->fn0, s->fn1);
		cr_expect(sus, "no suspect %s <- %s", s->fn0, s->fn1);
		if (!sus)
			continue;
		cr_expect_eq(e2e_int(sus, "bytes"), s->bytes, "%s: %ld bytes, expected %ld", s->fn0,
			     (long)e2e_int(sus, "bytes"), (long)s->bytes);
		cr_expect_eq(e2e_int(sus, "allocations"), s->allocations, "%s: %ld allocations, expected %ld", s->fn0,
			     (long)e2e_int(sus, "allocations"), (long)s->allocations);
		/* Allocated once each, nothing freed: counted once, not also
		 * as the malloc inside operator new. */
		cr_expect_eq(e2e_int(sus, "total_allocations"), s->allocations, "%s: %ld allocations in total",
			     s->fn0, (long)e2e_int(sus, "total_allocations"));
		cr_expect_eq(e2e_int(sus, "frees"), 0);
	}
	for (size_t i = 0; i < sizeof(freed_fns) / sizeof(freed_fns[0]); i++)
		cr_expect_eq(e2e_suspects_with(report, freed_fns[i]), 0, "%s freed everything but is a suspect",
			     freed_fns[i]);
}

static int64_t sites_bytes(bool thrown, int64_t *allocations)
{
	int64_t sum = 0;

	*allocations = 0;
	for (size_t i = 0; i < sizeof(sites) / sizeof(sites[0]); i++) {
		if (!thrown && !strcmp(sites[i].fn0, "leak_after_throw()"))
			continue;
		sum += sites[i].bytes;
		*allocations += sites[i].allocations;
	}
	return sum;
}

/* libstdc++'s emergency exception pool, malloc'ed at start-up and kept: the
 * one suspect whose first frame is in libstdc++. Returns its bytes. */
static int64_t emergency_pool(json_object *report)
{
	json_object *suspects, *s, *stack, *module;
	json_object *pool = NULL;
	int n = 0;

	cr_assert(json_object_object_get_ex(report, "suspects", &suspects));
	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		s = json_object_array_get_idx(suspects, i);
		if (!json_object_object_get_ex(s, "stack", &stack) || !json_object_array_length(stack))
			continue;
		if (json_object_object_get_ex(json_object_array_get_idx(stack, 0), "module", &module) &&
		    strstr(json_object_get_string(module), "libstdc++")) {
			pool = s;
			n++;
		}
	}
	cr_assert_eq(n, 1, "%d suspects in libstdc++, expected its emergency pool alone", n);
	cr_expect_eq(e2e_int(pool, "allocations"), 1);
	cr_expect_geq(e2e_int(pool, "bytes"), 1024);
	return e2e_int(pool, "bytes");
}

static void check_clean(json_object *report, bool thrown)
{
	json_object *dropped;

	cr_expect_eq(e2e_int(report, "totals.unmatched_frees"), 0);
	cr_assert(json_object_object_get_ex(json_object_object_get(report, "totals"), "dropped", &dropped));
	json_object_object_foreach(dropped, name, value) {
		/* --throw: one bad_alloc, one failed nothrow new; neither is
		 * recorded. */
		int64_t expect = !strcmp(name, "failed_allocations") && thrown ? 2 : 0;

		cr_expect_eq(json_object_get_int64(value), expect, "dropped.%s = %ld, expected %ld", name,
			     (long)json_object_get_int64(value), (long)expect);
	}
}

static void check_dynamic(bool thrown)
{
	const char *args[] = { "--", e2e_fixture("cxxleak"), thrown ? "--throw" : NULL, NULL };
	int64_t allocs, bytes = sites_bytes(thrown, &allocs);
	struct e2e_run r;

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	check_sites(r.report, thrown);
	check_clean(r.report, thrown);
	bytes += emergency_pool(r.report);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), bytes, "outstanding %ld bytes, expected %ld",
		     (long)e2e_int(r.report, "totals.outstanding_bytes"), (long)bytes);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), allocs + 1);
	cr_expect_eq(e2e_suspects_sum(r.report, 0, "bytes"), bytes);
	e2e_run_free(&r);
}

Test(e2e_cxx, every_new_form_exact)
{
	check_dynamic(false);
}

/* std::bad_alloc thrown out of operator new and caught: the program runs
 * on (no return probe on new), and the new after it is recorded. */
Test(e2e_cxx, bad_alloc_then_new)
{
	check_dynamic(true);
}

/* Statically linked: operator new, delete and malloc are all defined in the
 * executable, and probed there. */
Test(e2e_cxx, static_executable)
{
	const char *args[] = { "-v", "--", e2e_fixture("cxxleak-static"), "--throw", NULL };
	struct e2e_run r;

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	cr_expect(strstr(r.err, "cxxleak-static"), "probes not on the executable: %s", r.err);
	cr_expect(!strstr(r.err, "libstdc++") && !strstr(r.err, "libc.so"), "probes outside the executable: %s",
		  r.err);
	check_sites(r.report, true);
	check_clean(r.report, true);
	e2e_run_free(&r);
}
