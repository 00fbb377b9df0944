// SPDX-License-Identifier: GPL-2.0-or-later
/* The bundled demo: its two leaks, exactly, in run mode. */
#include <criterion/criterion.h>
#include "common_e2e.h"

Test(e2e_demo, reports_both_leaks_exactly)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("demo"), NULL };
	json_object *session, *copy;

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed: %s", r.err);
	cr_assert(r.report, "no JSON report");
	session = e2e_suspect(r.report, 0, "cache_user_session", "handle_request");
	cr_assert(session, "cache_user_session leak missing:\n%s", r.out);
	cr_expect_eq(e2e_int(session, "bytes"), 30 * 256);
	cr_expect_eq(e2e_int(session, "allocations"), 30);
	/* strdup is in libc, built without frame pointers: its caller is not
	 * recoverable with frame-pointer unwinding, but the site is exact. */
	copy = e2e_suspect(r.report, 0, "__strdup", NULL);
	cr_assert(copy, "strdup leak missing:\n%s", r.out);
	cr_expect_eq(e2e_int(copy, "bytes"), 10 * 25);
	cr_expect_eq(e2e_int(copy, "allocations"), 10);
	cr_expect(strstr(r.out, "cache_user_session"), "text report does not name the leak");
	e2e_run_free(&r);
}
