// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fixtures/forker.c: stray follows fork, fork+exec and posix_spawn
 * (vfork+exec) children and reports each process's leaks under its own pid.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "common_e2e.h"

/* demo's outstanding memory, exactly (also what valgrind says, see
 * e2e_valgrind::demo): 30 sessions, 10 strdups, stdout's buffer. */
#define DEMO_BYTES (30 * 256 + 10 * 25 + 4096)
#define DEMO_ALLOCS (30 + 10 + 1)

static void expect_site(json_object *report, int pid, const char *fn0, const char *fn1, int64_t bytes,
			int64_t allocs)
{
	json_object *s = e2e_suspect(report, pid, fn0, fn1);

	cr_expect(s, "no suspect %s <- %s for pid %d", fn0, fn1 ? fn1 : "*", pid);
	if (!s)
		return;
	cr_expect_eq(e2e_int(s, "bytes"), bytes, "%s pid %d: %ld bytes, expected %ld", fn0, pid,
		     (long)e2e_int(s, "bytes"), (long)bytes);
	cr_expect_eq(e2e_int(s, "allocations"), allocs, "%s pid %d: %ld allocations, expected %ld", fn0, pid,
		     (long)e2e_int(s, "allocations"), (long)allocs);
}

Test(e2e_fork, children_reported_under_their_pids)
{
	struct e2e_run r;
	const char *args[] = { "--", e2e_fixture("forker"), e2e_fixture("demo"), NULL };
	int parent = 0, forked = 0, execed = 0, spawned = 0;
	const char *line;
	json_object *target, *pids;

	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	line = strstr(r.out, "pids parent=");
	cr_assert(line, "forker did not print its pids:\n%s", r.out);
	cr_assert_eq(sscanf(line, "pids parent=%d fork=%d exec=%d spawn=%d", &parent, &forked, &execed, &spawned), 4);
	cr_assert(parent > 0 && forked > 0 && execed > 0 && spawned > 0);
	cr_assert(forked != parent && execed != parent && spawned != parent);

	cr_assert(json_object_object_get_ex(r.report, "target", &target));
	cr_assert(json_object_object_get_ex(target, "pids", &pids));
	cr_expect_eq(json_object_array_length(pids), 4, "target.pids: %s", json_object_to_json_string(pids));
	cr_expect(e2e_target_has_pid(r.report, parent), "target.pids lacks the parent %d", parent);
	cr_expect(e2e_target_has_pid(r.report, forked), "target.pids lacks the fork child %d", forked);
	cr_expect(e2e_target_has_pid(r.report, execed), "target.pids lacks the exec child %d", execed);
	cr_expect(e2e_target_has_pid(r.report, spawned), "target.pids lacks the spawned child %d", spawned);

	/* The parent: only its own leak. */
	expect_site(r.report, parent, "parent_leak", "main", 3 * 111, 3);
	cr_expect_eq(e2e_suspects_count(r.report, parent), 1, "parent %d has other suspects:\n%s", parent, r.out);
	cr_expect_null(e2e_suspect(r.report, parent, "child_leak", NULL), "child_leak reported under the parent");

	/* The fork child: its own leak under its own pid. */
	expect_site(r.report, forked, "child_leak", "main", 5 * 222, 5);

	/* The exec child and the spawned child both run demo: exactly demo's
	 * leaks. The exec child's pre-exec block (pre_exec_leak, 333 bytes)
	 * went away with the old image and must not be reported. */
	expect_site(r.report, execed, "cache_user_session", "handle_request", 30 * 256, 30);
	expect_site(r.report, spawned, "cache_user_session", "handle_request", 30 * 256, 30);
	expect_site(r.report, execed, "__strdup", NULL, 10 * 25, 10);
	expect_site(r.report, spawned, "__strdup", NULL, 10 * 25, 10);
	cr_expect_eq(e2e_suspects_sum(r.report, execed, "bytes"), DEMO_BYTES,
		     "exec child %d: %ld bytes outstanding, demo leaves %d:\n%s", execed,
		     (long)e2e_suspects_sum(r.report, execed, "bytes"), DEMO_BYTES, r.out);
	cr_expect_eq(e2e_suspects_sum(r.report, execed, "allocations"), DEMO_ALLOCS);
	cr_expect_eq(e2e_suspects_sum(r.report, spawned, "bytes"), DEMO_BYTES,
		     "spawned child %d: %ld bytes outstanding, demo leaves %d", spawned,
		     (long)e2e_suspects_sum(r.report, spawned, "bytes"), DEMO_BYTES);
	cr_expect_eq(e2e_suspects_sum(r.report, spawned, "allocations"), DEMO_ALLOCS);
	cr_expect_eq(e2e_suspects_with(r.report, "pre_exec_leak"), 0);

	/* Totals add up over all processes. */
	cr_expect_eq(e2e_suspects_sum(r.report, 0, "bytes"), e2e_int(r.report, "totals.outstanding_bytes"));
	cr_expect_eq(e2e_suspects_sum(r.report, 0, "allocations"),
		     e2e_int(r.report, "totals.outstanding_allocations"));
	e2e_run_free(&r);
}
