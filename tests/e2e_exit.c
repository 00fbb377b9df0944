// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fixtures/exiter.c: stray exits with its command's status (128 + the
 * signal when the command is killed), records it as target.exit_code, and
 * writes a complete report whichever way the command ended.
 */
#include <criterion/criterion.h>
#include "common_e2e.h"

static void run_exiter(const char *mode, int expected)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("exiter"), mode, NULL };
	json_object *leak;

	e2e_stray_run(&r, 60, args);
	/* 137 is also what a timeout gives: a report proves stray finished. */
	cr_assert(r.report, "%s: no JSON report (status %d): %s", mode, r.status, r.err);
	cr_expect_eq(r.status, expected, "%s: stray exited %d, expected %d: %s", mode, r.status, expected, r.err);
	cr_expect_eq(e2e_int(r.report, "target.exit_code"), expected, "%s: target.exit_code %ld, expected %d", mode,
		     (long)e2e_int(r.report, "target.exit_code"), expected);
	leak = e2e_suspect(r.report, 0, "exiter_leak", "main");
	cr_expect(leak, "%s: exiter_leak missing:\n%s", mode, r.out);
	if (leak) {
		cr_expect_eq(e2e_int(leak, "bytes"), 2 * 123);
		cr_expect_eq(e2e_int(leak, "allocations"), 2);
	}
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), 2 * 123);
	e2e_run_free(&r);
}

Test(e2e_exit, exit_status_7)
{
	run_exiter("exit7", 7);
}

Test(e2e_exit, raised_sigsegv)
{
	run_exiter("segv", 128 + 11);
}

Test(e2e_exit, null_dereference)
{
	run_exiter("null", 128 + 11);
}

Test(e2e_exit, sigkill_to_self)
{
	run_exiter("kill", 128 + 9);
}
