// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fixtures/mmapleak.c: anonymous mmap regions are a kind of their own
 * ("kind": "mmap" on each suspect), in whole pages, split and shrunk by
 * partial unmaps, moved by mremap at their site, and never mixed with heap
 * blocks: not in the heap totals, not in a heap site, not counted twice
 * when glibc's malloc maps a large block itself.
 */
#include <criterion/criterion.h>
#include <unistd.h>
#include "common_e2e.h"

#define PG 4096

struct msite {
	const char *fn0, *fn1, *kind;
	int64_t bytes, allocations;
};

/* Keep in sync with tests/fixtures/mmapleak.c. */
static const struct msite msites[] = {
	{ "anon", "leak_private", "mmap", 3 * 3 * PG, 3 },
	{ "anon", "leak_shared", "mmap", 2 * PG, 1 },
	{ "anon", "leak_front_unmapped", "mmap", 3 * PG, 1 },
	{ "anon", "leak_middle_unmapped", "mmap", 3 * PG, 2 },
	{ "anon", "leak_remapped", "mmap", 4 * PG, 1 },
	{ "anon", "leak_both", "mmap", PG, 1 },
	{ "leak_both", "main", "heap", 256, 1 },
	{ "leak_big_malloc", "main", "heap", 1 << 20, 1 },
};

static const char *kind_of(json_object *s)
{
	json_object *k;

	cr_assert(json_object_object_get_ex(s, "kind", &k), "suspect without a kind");
	return json_object_get_string(k);
}

/* The suspect of kind whose stack starts fn0 <- fn1, or NULL. */
static json_object *suspect_of_kind(json_object *report, const char *fn0, const char *fn1, const char *kind)
{
	json_object *suspects, *s, *stack, *f;

	cr_assert(json_object_object_get_ex(report, "suspects", &suspects));
	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		const char *names[2] = { NULL, NULL };

		s = json_object_array_get_idx(suspects, i);
		cr_assert(json_object_object_get_ex(s, "stack", &stack));
		for (size_t j = 0; j < 2 && j < json_object_array_length(stack); j++)
			if (json_object_object_get_ex(json_object_array_get_idx(stack, j), "function", &f) &&
			    json_object_is_type(f, json_type_string))
				names[j] = json_object_get_string(f);
		if (names[0] && names[1] && !strcmp(names[0], fn0) && !strcmp(names[1], fn1) &&
		    !strcmp(kind_of(s), kind))
			return s;
	}
	return NULL;
}

Test(e2e_mmap, kinds_exact_bytes_and_regions)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("mmapleak"), NULL };
	int64_t heap = 0, mapped = 0, regions = 0, nmmap = 0;
	json_object *suspects;

	cr_assert_eq(sysconf(_SC_PAGESIZE), PG);
	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	for (size_t i = 0; i < sizeof(msites) / sizeof(msites[0]); i++) {
		const struct msite *m = &msites[i];
		json_object *s = suspect_of_kind(r.report, m->fn0, m->fn1, m->kind);

		cr_expect(s, "no %s suspect %s <- %s:\n%s", m->kind, m->fn0, m->fn1, r.out);
		if (!strcmp(m->kind, "heap")) {
			heap += m->bytes;
		} else {
			mapped += m->bytes;
			regions += m->allocations;
		}
		if (!s)
			continue;
		cr_expect_eq(e2e_int(s, "bytes"), m->bytes, "%s <- %s (%s): %ld bytes, expected %ld", m->fn0, m->fn1,
			     m->kind, (long)e2e_int(s, "bytes"), (long)m->bytes);
		cr_expect_eq(e2e_int(s, "allocations"), m->allocations, "%s <- %s (%s): %ld regions, expected %ld",
			     m->fn0, m->fn1, m->kind, (long)e2e_int(s, "allocations"), (long)m->allocations);
	}
	/* Nothing else: no suspect for what was freed, unmapped, failed or
	 * file-backed, and malloc's own mapping of the 1 MiB block is no region. */
	cr_assert(json_object_object_get_ex(r.report, "suspects", &suspects));
	cr_expect_eq(json_object_array_length(suspects), sizeof(msites) / sizeof(msites[0]), "suspects:\n%s", r.out);
	cr_expect_eq(e2e_suspects_with(r.report, "freed_mappings"), 0);
	cr_expect_eq(e2e_suspects_with(r.report, "leak_big_malloc"), 1);
	for (size_t i = 0; i < json_object_array_length(suspects); i++)
		nmmap += !strcmp(kind_of(json_object_array_get_idx(suspects, i)), "mmap");
	cr_expect_eq(nmmap, 6);
	/* Heap totals are heap only (what valgrind calls in use); mmap apart. */
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), heap);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), 2);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_mmap_bytes"), mapped);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_mmap_regions"), regions);
	cr_expect_eq(e2e_suspects_sum(r.report, 0, "bytes"), heap, "e2e_suspects_sum counts heap suspects");
	/* mmaps: 3 + 1 + 1 + 1 + 1 (+ its mremap) + 1 leaked, 3 (+ the mremap) freed */
	cr_expect_eq(e2e_int(r.report, "totals.mmap_regions"), 13);
	cr_expect_eq(e2e_int(r.report, "totals.dropped.unmaps_not_handled"), 0);
	e2e_run_free(&r);
}

/* The text report marks the kind. */
Test(e2e_mmap, text_report_marks_mmap_suspects)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("mmapleak"), NULL };

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_expect(strstr(r.out, "[mmap] 36864 bytes in 3 mapped regions"), "text report:\n%s", r.out);
	cr_expect(strstr(r.out, "mmap: "), "no mmap summary line:\n%s", r.out);
	e2e_run_free(&r);
}
