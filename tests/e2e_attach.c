// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Attach mode (stray -p PID) against the steady fixture, and how a
 * window ends: -d, the target exiting, SIGINT/SIGTERM to stray (in both
 * modes). Whatever ends it, the JSON report must be complete.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common_e2e.h"

#define MIB (1024 * 1024)

/* Every top-level key of the schema, with its type: what an interrupted
 * run must still write. */
static void assert_complete(json_object *report)
{
	static const struct {
		const char *key;
		json_type type;
	} keys[] = {
		{ "version", json_type_int },  { "target", json_type_object },
		{ "window", json_type_object }, { "totals", json_type_object },
		{ "suspects", json_type_array }, { "heap", json_type_object },
		{ "notes", json_type_array },  { "timers", json_type_array },
		{ "alerts", json_type_array },
	};

	cr_assert(report, "no JSON report");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		cr_assert(json_object_is_type(e2e_member(report, keys[i].key), keys[i].type),
			  "\"%s\" has the wrong type", keys[i].key);
	cr_assert_eq(e2e_int(report, "version"), 1);
	e2e_number(e2e_member(report, "window"), "duration_s");
	e2e_int(report, "totals.allocations");
	e2e_int(report, "totals.frees");
	e2e_int(report, "totals.outstanding_bytes");
	e2e_int(report, "totals.outstanding_allocations");
	e2e_int(report, "totals.unmatched_frees");
	cr_assert(json_object_is_type(e2e_member(e2e_member(report, "totals"), "dropped"), json_type_object));
	cr_assert(json_object_is_type(e2e_member(e2e_member(report, "heap"), "samples"), json_type_array));
}

/* A suspect at fn, from pid, whose allocations are all unit bytes. */
static json_object *assert_leak(json_object *report, pid_t pid, const char *fn, int unit,
				const char *text)
{
	json_object *s = e2e_suspect(report, pid, fn, NULL);
	int64_t bytes, allocs;

	cr_assert(s, "no %s suspect for pid %d:\n%s", fn, pid, text);
	bytes = e2e_int(s, "bytes");
	allocs = e2e_int(s, "allocations");
	cr_assert_gt(bytes, 0, "%s: no bytes", fn);
	cr_assert_eq(bytes % 1000, 0, "%s: %lld bytes is not a multiple of 1000", fn, (long long)bytes);
	cr_assert_eq(bytes, allocs * unit, "%s: %lld bytes in %lld allocations of %d", fn,
		     (long long)bytes, (long long)allocs, unit);
	return s;
}

Test(e2e_attach, reports_window_leaks_of_all_threads_only)
{
	const char *fx[] = { e2e_fixture("steady"), NULL };
	pid_t pid = e2e_start_fixture(fx);
	char pidbuf[16];
	struct e2e_run r;
	json_object *target, *pids, *suspects;
	double dur;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	e2e_sleep_s(0.3);
	const char *args[] = { "-d", "2", "-p", pidbuf, NULL };
	e2e_stray_run(&r, 60, args);
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	assert_complete(r.report);

	/* Both threads' leaks; 40 ticks of 50 ms fit in 2 s. */
	json_object *tick = assert_leak(r.report, pid, "leak_tick", 1000, r.out);
	json_object *thr = assert_leak(r.report, pid, "thread_leak", 2000, r.out);
	cr_expect(e2e_int(tick, "allocations") >= 10 && e2e_int(tick, "allocations") <= 80,
		  "leak_tick: %lld allocations in a 2 s window", (long long)e2e_int(tick, "allocations"));
	cr_expect(e2e_int(thr, "allocations") >= 10 && e2e_int(thr, "allocations") <= 80,
		  "thread_leak: %lld allocations in a 2 s window", (long long)e2e_int(thr, "allocations"));

	/* The 1 MiB block predates the attach: never a suspect. The frees
	 * of pre-attach blocks are unmatched. */
	suspects = e2e_member(r.report, "suspects");
	for (size_t i = 0; i < json_object_array_length(suspects); i++)
		cr_assert_lt(e2e_int(json_object_array_get_idx(suspects, i), "bytes"), MIB,
			     "a pre-attach block is reported:\n%s", r.out);
	cr_assert_lt(e2e_int(r.report, "totals.outstanding_bytes"), MIB);
	cr_assert_geq(e2e_int(r.report, "totals.unmatched_frees"), 1);

	dur = e2e_number(e2e_member(r.report, "window"), "duration_s");
	cr_assert(dur >= 1.8 && dur <= 4, "window.duration_s = %g for -d 2", dur);

	json_object *samples = e2e_member(e2e_member(r.report, "heap"), "samples");
	cr_assert_gt(json_object_array_length(samples), 0, "no heap samples");
	for (size_t i = 0; i < json_object_array_length(samples); i++)
		cr_assert_gt(e2e_int(json_object_array_get_idx(samples, i), "rss_bytes"), 0);

	target = e2e_member(r.report, "target");
	pids = e2e_member(target, "pids");
	cr_assert_eq(json_object_array_length(pids), 1);
	cr_assert_eq(json_object_get_int(json_object_array_get_idx(pids, 0)), pid);
	cr_assert(json_object_is_type(e2e_member(target, "command"), json_type_null));
	cr_assert(json_object_is_type(e2e_member(target, "exit_code"), json_type_null));
	cr_expect(strstr(r.out, "leak_tick") && strstr(r.out, "thread_leak"),
		  "text report does not name both leaks:\n%s", r.out);
	e2e_run_free(&r);
}

Test(e2e_attach, target_exit_ends_the_window)
{
	const char *fx[] = { e2e_fixture("steady"), "1", NULL };
	pid_t pid = e2e_start_fixture(fx);
	char pidbuf[16];
	struct e2e_run r;
	double t0 = e2e_now_s(), elapsed;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-d", "30", "-p", pidbuf, NULL };
	e2e_stray_run(&r, 30, args);
	elapsed = e2e_now_s() - t0;
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert_lt(elapsed, 5, "stray took %.1f s after a 1 s target exited", elapsed);
	assert_complete(r.report);
	cr_assert_lt(e2e_number(e2e_member(r.report, "window"), "duration_s"), 5);
	assert_leak(r.report, pid, "leak_tick", 1000, r.out);
	cr_assert(json_object_is_type(e2e_member(e2e_member(r.report, "target"), "command"), json_type_null));
	e2e_run_free(&r);
}

/* stray -p PID without -d, ended by sig: a full report, status 0. */
static void signal_ends_attach(int sig)
{
	const char *fx[] = { e2e_fixture("steady"), NULL };
	pid_t pid = e2e_start_fixture(fx), stray;
	char pidbuf[16];
	struct e2e_run r;
	double t0;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-v", "-p", pidbuf, NULL };
	stray = e2e_stray_start(&r, args);
	e2e_wait_attached(&r, stray);
	e2e_sleep_s(0.5);
	t0 = e2e_now_s();
	kill(stray, sig);
	e2e_stray_wait(&r, stray, 20);
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray ended by %s: status %d: %s", strsignal(sig), r.status, r.err);
	cr_assert_lt(e2e_now_s() - t0, 3, "stray took %.1f s to report after %s", e2e_now_s() - t0, strsignal(sig));
	assert_complete(r.report);
	cr_assert_geq(e2e_number(e2e_member(r.report, "window"), "duration_s"), 0.4);
	assert_leak(r.report, pid, "leak_tick", 1000, r.out);
	e2e_run_free(&r);
}

Test(e2e_attach, sigint_ends_the_window_with_a_full_report)
{
	signal_ends_attach(SIGINT);
}

Test(e2e_attach, sigterm_ends_the_window_with_a_full_report)
{
	signal_ends_attach(SIGTERM);
}

static pid_t target_pid(json_object *report)
{
	json_object *pids = e2e_member(e2e_member(report, "target"), "pids");

	cr_assert_geq(json_object_array_length(pids), 1);
	return json_object_get_int(json_object_array_get_idx(pids, 0));
}

Test(e2e_attach, run_mode_forwards_sigterm_and_exits_with_its_status)
{
	struct e2e_run r;
	const char *args[] = { "-v", "--", e2e_fixture("steady"), NULL };
	pid_t stray = e2e_stray_start(&r, args), child;
	double t0;
	json_object *cmd;

	e2e_wait_attached(&r, stray);
	e2e_sleep_s(0.5);
	t0 = e2e_now_s();
	kill(stray, SIGTERM);
	e2e_stray_wait(&r, stray, 20);
	cr_assert_eq(r.status, 128 + SIGTERM, "stray status %d, want steady's (143): %s", r.status, r.err);
	cr_assert_lt(e2e_now_s() - t0, 3, "stray took %.1f s", e2e_now_s() - t0);
	assert_complete(r.report);
	cr_assert_eq(e2e_int(r.report, "target.exit_code"), 128 + SIGTERM);
	cmd = e2e_member(e2e_member(r.report, "target"), "command");
	cr_assert(json_object_is_type(cmd, json_type_array) && json_object_array_length(cmd) == 1);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(cmd, 0)), e2e_fixture("steady"));
	child = target_pid(r.report);
	cr_assert(kill(child, 0) == -1 && errno == ESRCH, "steady (pid %d) still exists", child);
	assert_leak(r.report, child, "leak_tick", 1000, r.out);
	e2e_run_free(&r);
}

/* A command that ignores SIGTERM: stray gives it 5 s, then reports. */
Test(e2e_attach, run_mode_waits_5s_for_a_command_ignoring_sigterm)
{
	struct e2e_run r;
	const char *args[] = { "--", "/bin/sh", "-c", "trap '' TERM; exec sleep 12", NULL };
	pid_t stray = e2e_stray_start(&r, args);
	double t0, took;

	e2e_sleep_s(0.5);
	t0 = e2e_now_s();
	kill(stray, SIGTERM);
	e2e_stray_wait(&r, stray, 20);
	took = e2e_now_s() - t0;
	assert_complete(r.report);
	kill(target_pid(r.report), SIGKILL);
	cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
	cr_assert(took >= 4.5 && took < 8, "stray reported %.1f s after SIGTERM, want ~5 s", took);
	cr_assert(json_object_is_type(e2e_member(e2e_member(r.report, "target"), "exit_code"), json_type_null));
	e2e_run_free(&r);
}

/* ... and a second signal makes it report at once. */
Test(e2e_attach, run_mode_second_signal_reports_at_once)
{
	struct e2e_run r;
	const char *args[] = { "--", "/bin/sh", "-c", "trap '' TERM INT; exec sleep 12", NULL };
	pid_t stray = e2e_stray_start(&r, args);
	double t0, took;

	e2e_sleep_s(0.5);
	kill(stray, SIGTERM);
	e2e_sleep_s(0.3);
	t0 = e2e_now_s();
	kill(stray, SIGINT);
	e2e_stray_wait(&r, stray, 20);
	took = e2e_now_s() - t0;
	assert_complete(r.report);
	kill(target_pid(r.report), SIGKILL);
	cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
	cr_assert_lt(took, 2, "stray took %.1f s to report after a second signal", took);
	e2e_run_free(&r);
}

/* --min-age keeps only blocks at least that old at the window's end: with a
 * 2 s window and --min-age 1, about half of leak_tick's blocks remain, all
 * suspects are at least 1 s old, and the totals still count every block. */
Test(e2e_attach, min_age_filters_young_blocks)
{
	const char *fx[] = { e2e_fixture("steady"), NULL };
	pid_t pid = e2e_start_fixture(fx);
	char pidbuf[16];
	struct e2e_run r;
	json_object *suspects, *tick;
	int64_t kept, total_outstanding = 0;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-d", "2", "--min-age", "1", "-p", pidbuf, NULL };
	e2e_stray_run(&r, 60, args);
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	tick = assert_leak(r.report, pid, "leak_tick", 1000, r.out);
	kept = e2e_int(tick, "allocations");
	cr_expect(kept >= 8 && kept <= 24, "leak_tick kept %lld blocks older than 1 s of a 2 s window",
		  (long long)kept);
	suspects = e2e_member(r.report, "suspects");
	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		json_object *s = json_object_array_get_idx(suspects, i);

		cr_expect_geq(e2e_number(s, "oldest_age_s"), 1.0);
		total_outstanding += e2e_int(s, "bytes");
	}
	cr_expect_gt(e2e_int(r.report, "totals.outstanding_bytes"), total_outstanding,
		     "totals must count the young blocks too");
	e2e_run_free(&r);
}
