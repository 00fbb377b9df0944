// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Bounds: with the outstanding-allocation map smaller than the target's
 * live blocks, stray keeps running, tracks what fits, and the report says
 * exactly how many blocks and bytes it could not track.
 */
#include <criterion/criterion.h>
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
