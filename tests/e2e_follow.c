// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * stray -p PID --follow: processes the target forks after the attach are
 * traced as they appear, exec'd ones with their new image, and each one's
 * leaks are reported under its own pid (tests/fixtures/follower.c).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common_e2e.h"

/* How many times stray's -v log says "pid PID: probes on". */
static int attach_lines(struct e2e_run *r, int pid)
{
	char buf[16384], needle[48];
	ssize_t n = pread(r->err_fd, buf, sizeof(buf) - 1, 0);
	int count = 0;

	buf[n > 0 ? n : 0] = '\0';
	snprintf(needle, sizeof(needle), "pid %d: probes on", pid);
	for (const char *p = buf; (p = strstr(p, needle)); p += strlen(needle))
		count++;
	return count;
}

static void wait_attach_lines(struct e2e_run *r, int pid, int lines)
{
	double deadline = e2e_now_s() + 15;

	while (attach_lines(r, pid) < lines) {
		cr_assert(e2e_now_s() < deadline, "stray did not attach to pid %d within 15 s", pid);
		e2e_sleep_s(0.02);
	}
}

/* The children of pid, in fork order (the kernel lists them so). */
static int children_of(int pid, int *out, int max)
{
	char path[64], *text;
	int n = 0, off = 0, child, used;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	text = e2e_slurp(path);
	while (text && n < max && sscanf(text + off, "%d%n", &child, &used) == 1) {
		out[n++] = child;
		off += used;
	}
	free(text);
	return n;
}

static void wait_children(int pid, int *kids, int n)
{
	double deadline = e2e_now_s() + 15;

	while (children_of(pid, kids, n) < n) {
		cr_assert(e2e_now_s() < deadline, "pid %d did not fork %d children", pid, n);
		e2e_sleep_s(0.02);
	}
}

static void expect_site(json_object *report, int pid, const char *fn, int64_t bytes, int64_t allocs)
{
	json_object *s = e2e_suspect(report, pid, fn, "main");

	cr_assert(s, "no suspect %s for pid %d", fn, pid);
	cr_expect_eq(e2e_int(s, "bytes"), bytes, "%s pid %d: %ld bytes, expected %ld", fn, pid,
		     (long)e2e_int(s, "bytes"), (long)bytes);
	cr_expect_eq(e2e_int(s, "allocations"), allocs);
}

Test(e2e_follow, children_forked_after_attach_reported_per_process, .timeout = 90)
{
	char pids_path[] = "/tmp/stray-follow-XXXXXX", *line;
	int fd = mkstemp(pids_path), parent = 0, forked = 0, execed = 0, kids[2];
	const char *fx[] = { e2e_fixture("follower"), "-o", pids_path, NULL };
	struct e2e_run r;
	pid_t fixture, stray;

	cr_assert_geq(fd, 0);
	close(fd);
	fixture = e2e_attach_fixture(&r, fx, "--follow", &stray);
	kill(fixture, SIGUSR1);
	/* Each child waits for SIGUSR1 until its probes are on. */
	wait_children(fixture, kids, 2);
	wait_attach_lines(&r, kids[0], 1);
	wait_attach_lines(&r, kids[1], 1);
	kill(kids[0], SIGUSR1);
	kill(kids[1], SIGUSR1);
	/* The second child execs; its new image waits again until stray
	 * has read it (a second attach line). */
	wait_attach_lines(&r, kids[1], 2);
	kill(kids[1], SIGUSR1);
	cr_assert_eq(e2e_wait_status(fixture, 30), 0, "the fixture failed");
	e2e_stray_wait(&r, stray, 30);
	line = e2e_slurp(pids_path);
	unlink(pids_path);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	cr_assert(line && sscanf(line, "pids parent=%d fork=%d exec=%d", &parent, &forked, &execed) == 3,
		  "no pids from the fixture: %s", line ? line : "(none)");
	free(line);
	cr_assert_eq(forked, kids[0]);
	cr_assert_eq(execed, kids[1]);

	cr_expect(e2e_target_has_pid(r.report, parent), "target.pids lacks the parent");
	cr_expect(e2e_target_has_pid(r.report, forked), "target.pids lacks the fork child");
	cr_expect(e2e_target_has_pid(r.report, execed), "target.pids lacks the exec child");
	expect_site(r.report, parent, "parent_leak", 3 * 111, 3);
	expect_site(r.report, forked, "child_leak", 5 * 222, 5);
	expect_site(r.report, execed, "exec_leak", 4 * 444, 4);
	cr_expect_eq(e2e_suspects_count(r.report, parent), 1, "%s", r.out);
	cr_expect_eq(e2e_suspects_count(r.report, forked), 1, "%s", r.out);
	cr_expect_eq(e2e_suspects_count(r.report, execed), 1, "%s", r.out);
	/* The exec child's pre-exec block went away with the old image. */
	cr_expect_eq(e2e_suspects_with(r.report, "pre_exec_leak"), 0);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), 3 * 111 + 5 * 222 + 4 * 444);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), 3 + 5 + 4);
	cr_expect_eq(e2e_int(r.report, "totals.dropped.follow_events_lost"), 0);
	cr_expect_eq(e2e_int(r.report, "totals.dropped.untraced_processes"), 0);
	e2e_run_free(&r);
}

/* Without --follow, -p traces the given process only. */
Test(e2e_follow, without_follow_children_are_not_traced, .timeout = 90)
{
	char pids_path[] = "/tmp/stray-follow-XXXXXX";
	int fd = mkstemp(pids_path), kids[2];
	const char *fx[] = { e2e_fixture("follower"), "-o", pids_path, NULL };
	struct e2e_run r;
	pid_t fixture, stray;

	cr_assert_geq(fd, 0);
	close(fd);
	fixture = e2e_attach_fixture(&r, fx, NULL, &stray);
	kill(fixture, SIGUSR1);
	wait_children(fixture, kids, 2);
	kill(kids[0], SIGUSR1);
	kill(kids[1], SIGUSR1);
	e2e_sleep_s(0.5);
	kill(kids[1], SIGUSR1); /* the leaf, after exec (or still pending) */
	cr_assert_eq(e2e_wait_status(fixture, 30), 0, "the fixture failed");
	e2e_stray_wait(&r, stray, 30);
	unlink(pids_path);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	expect_site(r.report, fixture, "parent_leak", 3 * 111, 3);
	cr_expect_eq(e2e_suspects_count(r.report, 0), 1, "%s", r.out);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), 3 * 111);
	e2e_run_free(&r);
}
