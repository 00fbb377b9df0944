// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Bounds: with the outstanding-allocation map smaller than the target's
 * live blocks, stray keeps running, tracks what fits, and the report says
 * exactly how many blocks and bytes it could not track. The allocs map
 * holds --max-allocs blocks; the block table in front of it (a quarter as
 * many slots, bpf/blocks.bpf.h) holds more, as many as fit in their sets.
 * With the table off (STRAY_BLOCK_SETS=0) the limit is exact.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "common_e2e.h"

#define MAX_ALLOCS 1000
#define HELD 5000
#define SIZE 48

Test(e2e_bounds, full_alloc_map_reports_exact_missing_figures, .timeout = 60)
{
	const char *args[] = { "--max-allocs", "1000", "--", e2e_fixture("holder"), "5000", "48", NULL };
	struct e2e_run r;
	json_object *s;

	setenv("STRAY_BLOCK_SETS", "0", 1);
	e2e_stray_run(&r, 50, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	/* The map holds exactly MAX_ALLOCS blocks: the holder's are the only
	 * ones (it allocates nothing else), all at one site. */
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), MAX_ALLOCS);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), MAX_ALLOCS * SIZE);
	cr_expect_eq(e2e_int(r.report, "totals.untracked_allocations"), HELD - MAX_ALLOCS);
	cr_expect_eq(e2e_int(r.report, "totals.untracked_bytes"), (HELD - MAX_ALLOCS) * SIZE);
	cr_expect_eq(e2e_int(r.report, "totals.dropped.alloc_map_full"), HELD - MAX_ALLOCS);
	/* Tracked + missing = what the fixture holds. */
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations") +
			     e2e_int(r.report, "totals.untracked_allocations"),
		     HELD);
	s = e2e_suspect(r.report, 0, "hold_blocks", "main");
	cr_assert(s, "no hold_blocks suspect:\n%s", r.out);
	cr_expect_eq(e2e_int(s, "allocations"), MAX_ALLOCS);
	cr_expect_eq(e2e_int(s, "bytes"), MAX_ALLOCS * SIZE);
	/* The report is complete and says what is missing, in both forms. */
	e2e_member(r.report, "heap");
	e2e_member(r.report, "timers");
	cr_expect(strstr(json_object_to_json_string(e2e_member(r.report, "notes")), "--max-allocs"),
		  "no note about the full map: %s", json_object_to_json_string(e2e_member(r.report, "notes")));
	cr_expect(strstr(r.out, "MISSING: 4000 allocations (192000 bytes) not tracked"),
		  "the text report does not say what is missing:\n%s", r.out);
	e2e_run_free(&r);
}

/* With the block table: at least --max-allocs blocks tracked, at most the
 * table's slots more, and tracked + missing still exactly what is held. */
Test(e2e_bounds, block_table_adds_to_the_full_map_and_figures_stay_exact, .timeout = 60)
{
	const char *args[] = { "--max-allocs", "1000", "--", e2e_fixture("holder"), "5000", "48", NULL };
	const int64_t table_slots = 32 * 4; /* 1000 / 16 -> 32 sets of 4 ways */
	int64_t tracked, missing;
	struct e2e_run r;
	json_object *s;

	e2e_stray_run(&r, 50, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	tracked = e2e_int(r.report, "totals.outstanding_allocations");
	missing = e2e_int(r.report, "totals.untracked_allocations");
	cr_expect_gt(tracked, MAX_ALLOCS, "the block table held nothing: %ld tracked", (long)tracked);
	cr_expect_leq(tracked, MAX_ALLOCS + table_slots);
	cr_expect_eq(tracked + missing, HELD, "%ld tracked + %ld missing", (long)tracked, (long)missing);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), tracked * SIZE);
	cr_expect_eq(e2e_int(r.report, "totals.untracked_bytes"), missing * SIZE);
	s = e2e_suspect(r.report, 0, "hold_blocks", "main");
	cr_assert(s, "no hold_blocks suspect:\n%s", r.out);
	cr_expect_eq(e2e_int(s, "allocations"), tracked);
	cr_expect_eq(e2e_int(s, "bytes"), tracked * SIZE);
	e2e_run_free(&r);
}

/* Nothing missing, nothing said. */
Test(e2e_bounds, no_missing_figures_when_everything_fits, .timeout = 60)
{
	const char *args[] = { "--max-allocs", "8192", "--", e2e_fixture("holder"), "5000", "48", NULL };
	struct e2e_run r;

	e2e_stray_run(&r, 50, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), HELD);
	cr_expect_eq(e2e_int(r.report, "totals.untracked_allocations"), 0);
	cr_expect_eq(e2e_int(r.report, "totals.untracked_bytes"), 0);
	cr_expect_null(strstr(r.out, "MISSING:"));
	e2e_run_free(&r);
}
