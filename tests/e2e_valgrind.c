// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * stray against valgrind (memcheck) on deterministic programs: what valgrind
 * says is "in use at exit" must be exactly stray's outstanding bytes and
 * blocks, and its "total heap usage" exactly stray's allocations and frees.
 * --run-libc-freeres=no: stray does not make glibc free its internals at
 * exit either. Fixtures avoid pvalloc (valgrind 3.19 aborts on it) and
 * realloc(p, 0) (valgrind 3.19 does not free there as glibc does).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common_e2e.h"

#define VALGRIND "/usr/bin/valgrind"

struct vg_result {
	int64_t in_use_bytes, in_use_blocks, allocs, frees;
};

/* "1,045,497" -> 1045497 */
static int64_t parse_count(const char *s)
{
	int64_t v = 0;

	for (; *s == ',' || (*s >= '0' && *s <= '9'); s++)
		if (*s != ',')
			v = v * 10 + (*s - '0');
	return v;
}

static void run_valgrind(const char *const *cmd, struct vg_result *res)
{
	char log[] = "/tmp/stray-e2e-vg-XXXXXX", logopt[64], buf[8192];
	const char *argv[32];
	size_t n = 0;
	int fd = mkstemp(log), status;
	const char *p;
	ssize_t len;
	pid_t pid;

	cr_assert(fd >= 0);
	snprintf(logopt, sizeof(logopt), "--log-file=%s", log);
	argv[n++] = VALGRIND;
	argv[n++] = "--run-libc-freeres=no";
	argv[n++] = "--run-cxx-freeres=no";
	argv[n++] = logopt;
	for (size_t i = 0; cmd[i] && n < 31; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* stdout to a regular file, as under e2e_stray_run: programs
		 * look at what their output is (GNU grep stops at the first
		 * match when it is /dev/null). */
		char out[] = "/tmp/stray-e2e-vgout-XXXXXX";
		int ofd = mkstemp(out);

		unlink(out);
		dup2(ofd, 1);
		execv(argv[0], (char **)argv);
		_exit(126);
	}
	status = e2e_wait_status(pid, 60);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	unlink(log);
	buf[len > 0 ? len : 0] = '\0';
	cr_assert(status != 126 && status < 128, "valgrind did not run %s:\n%s", cmd[0], buf);
	p = strstr(buf, "in use at exit: ");
	cr_assert(p, "no 'in use at exit' in valgrind's log for %s:\n%s", cmd[0], buf);
	p += strlen("in use at exit: ");
	res->in_use_bytes = parse_count(p);
	p = strstr(p, " bytes in ");
	cr_assert(p);
	res->in_use_blocks = parse_count(p + strlen(" bytes in "));
	p = strstr(buf, "total heap usage: ");
	cr_assert(p, "no 'total heap usage' in valgrind's log:\n%s", buf);
	p += strlen("total heap usage: ");
	res->allocs = parse_count(p);
	p = strstr(p, " allocs, ");
	cr_assert(p);
	res->frees = parse_count(p + strlen(" allocs, "));
}

static void compare(const char *const *cmd)
{
	const char *args[32] = { "--" };
	struct vg_result vg;
	struct e2e_run r;
	size_t n = 1;

	for (size_t i = 0; cmd[i] && n < 31; i++)
		args[n++] = cmd[i];
	args[n] = NULL;
	run_valgrind(cmd, &vg);
	e2e_stray_run(&r, 60, args);
	cr_assert(r.report, "no JSON report for %s (status %d): %s", cmd[0], r.status, r.err);
	cr_log_info("%s: valgrind %ld bytes in %ld blocks, %ld allocs, %ld frees; stray %ld bytes in %ld, %ld allocs, %ld frees",
		    cmd[0], (long)vg.in_use_bytes, (long)vg.in_use_blocks, (long)vg.allocs, (long)vg.frees,
		    (long)e2e_int(r.report, "totals.outstanding_bytes"),
		    (long)e2e_int(r.report, "totals.outstanding_allocations"), (long)e2e_int(r.report, "totals.allocations"),
		    (long)e2e_int(r.report, "totals.frees"));
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), vg.in_use_bytes,
		     "%s: stray %ld outstanding bytes, valgrind %ld in use", cmd[0],
		     (long)e2e_int(r.report, "totals.outstanding_bytes"), (long)vg.in_use_bytes);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), vg.in_use_blocks,
		     "%s: stray %ld outstanding allocations, valgrind %ld blocks", cmd[0],
		     (long)e2e_int(r.report, "totals.outstanding_allocations"), (long)vg.in_use_blocks);
	cr_expect_eq(e2e_int(r.report, "totals.allocations"), vg.allocs, "%s: stray %ld allocations, valgrind %ld",
		     cmd[0], (long)e2e_int(r.report, "totals.allocations"), (long)vg.allocs);
	cr_expect_eq(e2e_int(r.report, "totals.frees"), vg.frees, "%s: stray %ld frees, valgrind %ld", cmd[0],
		     (long)e2e_int(r.report, "totals.frees"), (long)vg.frees);
	e2e_run_free(&r);
}

Test(e2e_valgrind, exact)
{
	const char *cmd[] = { e2e_fixture("exact"), "--no-pvalloc", NULL };

	compare(cmd);
}

Test(e2e_valgrind, noleak)
{
	const char *cmd[] = { e2e_fixture("noleak"), NULL };

	compare(cmd);
}

/* C++: valgrind counts a block from operator new once, as stray must
 * (libstdc++'s new calls malloc, its delete free); libstdc++'s emergency
 * exception pool is outstanding for both. */
Test(e2e_valgrind, cxxleak)
{
	const char *cmd[] = { e2e_fixture("cxxleak"), NULL };

	compare(cmd);
}

Test(e2e_valgrind, demo)
{
	const char *cmd[] = { e2e_fixture("demo"), NULL };

	compare(cmd);
}

/* Real Debian programs, on inputs that do not change between the runs. */
Test(e2e_valgrind, sort)
{
	char path[] = "/tmp/stray-e2e-sort-XXXXXX";
	const char text[] = "pear\napple\nfig\nbanana\ncherry\n";
	int fd = mkstemp(path);
	const char *cmd[] = { "/usr/bin/sort", path, NULL };

	cr_assert(fd >= 0);
	cr_assert(write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
	close(fd);
	compare(cmd);
	unlink(path);
}

Test(e2e_valgrind, ls_long)
{
	const char *cmd[] = { "/bin/ls", "-l", "/", NULL };

	compare(cmd);
}

Test(e2e_valgrind, grep)
{
	const char *cmd[] = { "/bin/grep", "-c", "tcp", "/etc/services", NULL };

	compare(cmd);
}
