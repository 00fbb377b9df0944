// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * stray itself must be clean under a memory checker.
 *
 * valgrind (3.19, Debian 12) runs stray in run mode, with two limits:
 *   - it does not model the bpf() commands libbpf uses to read maps
 *     (batch lookups, links: "unhandled eBPF command"), so memory the
 *     kernel fills in looks uninitialised to it: --undef-value-errors=no
 *     keeps invalid accesses, bad frees and leaks, and drops those false
 *     positives;
 *   - it does not know pidfd_open (syscall 434), so attach mode fails
 *     under it ("no process with PID").
 * Attach mode, and run mode a second time, are therefore checked with
 * the AddressSanitizer + UBSan + LeakSanitizer build (make build/stray-asan,
 * passed as $STRAY_ASAN by make e2e-test).
 */
#ifndef VALGRIND_SUPP
#define VALGRIND_SUPP "tests/valgrind.supp"
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common_e2e.h"

#define TIMEOUT_S 60

struct checked_run {
	int status;
	char *out, *err;
	json_object *report;
	char json[128];
	int ofd, efd;
};

static char *read_fd(int fd)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* Start prefix... stray --json FILE args... */
static pid_t checked_start(struct checked_run *c, const char *const *prefix, const char *stray,
			   const char *const *args)
{
	static int seq;
	const char *argv[64];
	char out[] = "/tmp/stray-e2e-out-XXXXXX", err[] = "/tmp/stray-e2e-err-XXXXXX";
	size_t n = 0;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	snprintf(c->json, sizeof(c->json), "/tmp/stray-e2e-sanitize-%d-%d.json", getpid(), seq++);
	unlink(c->json);
	for (size_t i = 0; prefix && prefix[i]; i++)
		argv[n++] = prefix[i];
	argv[n++] = stray;
	argv[n++] = "--json";
	argv[n++] = c->json;
	for (size_t i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	c->ofd = mkstemp(out);
	c->efd = mkstemp(err);
	cr_assert(c->ofd >= 0 && c->efd >= 0);
	unlink(out);
	unlink(err);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(c->ofd, 1);
		dup2(c->efd, 2);
		execvp(argv[0], (char **)argv);
		_exit(126);
	}
	return pid;
}

static void checked_wait(struct checked_run *c, pid_t pid)
{
	FILE *f;

	c->status = e2e_wait_status(pid, TIMEOUT_S);
	c->out = read_fd(c->ofd);
	c->err = read_fd(c->efd);
	f = fopen(c->json, "r");
	if (f) {
		fclose(f);
		c->report = json_object_from_file(c->json);
		cr_assert(c->report, "stray wrote a JSON report that does not parse");
	}
}

static void checked_free(struct checked_run *c)
{
	free(c->out);
	free(c->err);
	if (c->report)
		json_object_put(c->report);
	unlink(c->json);
}

/* ---- valgrind ---- */

/* tests/valgrind.supp: Valgrind takes bpf(BPF_MAP_GET_NEXT_KEY)'s NULL
 * "first key" for an unaddressable pointer. */
static const char *const valgrind[] = {
	"valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
	"--undef-value-errors=no", "--suppressions=" VALGRIND_SUPP, NULL,
};

static void assert_valgrind_clean(const struct checked_run *c)
{
	cr_assert_neq(c->status, 99, "valgrind found errors in stray:\n%s", c->err);
	cr_assert_neq(c->status, 126, "valgrind is not installed");
	cr_assert(strstr(c->err, "definitely lost: 0 bytes") || strstr(c->err, "no leaks are possible"),
		  "stray leaks:\n%s", c->err);
	cr_assert(strstr(c->err, "ERROR SUMMARY: 0 errors"), "valgrind errors:\n%s", c->err);
}

Test(e2e_sanitize, valgrind_run_mode_demo, .timeout = TIMEOUT_S + 10)
{
	struct checked_run c;
	const char *args[] = { "--", e2e_fixture("demo"), NULL };

	checked_wait(&c, checked_start(&c, valgrind, e2e_stray(), args));
	assert_valgrind_clean(&c);
	cr_assert_eq(c.status, 0, "stray under valgrind: status %d:\n%s", c.status, c.err);
	cr_assert(c.report, "no JSON report");
	cr_assert(e2e_suspect(c.report, 0, "cache_user_session", "handle_request"),
		  "stray under valgrind missed the demo leak:\n%s", c.out);
	checked_free(&c);
}

/* ---- AddressSanitizer + UBSan + LeakSanitizer ---- */

static const char *stray_asan(void)
{
	static char path[512];
	const char *env = getenv("STRAY_ASAN");
	char *slash;

	if (env)
		return env;
	/* Beside $STRAY, when run by hand with only STRAY and FIXTURES. */
	snprintf(path, sizeof(path), "%s", e2e_stray());
	slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, sizeof(path) - (slash ? slash + 1 - path : 0), "stray-asan");
	if (access(path, X_OK))
		cr_skip_test("no sanitizer build of stray: set STRAY_ASAN (make build/stray-asan)");
	return path;
}

static void asan_env(void)
{
	setenv("ASAN_OPTIONS", "detect_leaks=1:exitcode=99:abort_on_error=0", 1);
	setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=99", 1);
}

static void assert_asan_clean(const struct checked_run *c)
{
	cr_assert_neq(c->status, 99, "sanitizers found errors in stray:\n%s", c->err);
	cr_assert(!strstr(c->err, "Sanitizer"), "sanitizer report:\n%s", c->err);
	cr_assert(!strstr(c->err, "runtime error"), "UBSan report:\n%s", c->err);
}

Test(e2e_sanitize, asan_run_mode_demo, .timeout = TIMEOUT_S + 10)
{
	struct checked_run c;
	const char *args[] = { "--", e2e_fixture("demo"), NULL };

	asan_env();
	checked_wait(&c, checked_start(&c, NULL, stray_asan(), args));
	assert_asan_clean(&c);
	cr_assert_eq(c.status, 0, "stray-asan: status %d:\n%s", c.status, c.err);
	cr_assert(c.report && e2e_suspect(c.report, 0, "cache_user_session", "handle_request"),
		  "stray-asan missed the demo leak:\n%s", c.out);
	checked_free(&c);
}

Test(e2e_sanitize, asan_attach_mode_steady, .timeout = TIMEOUT_S + 10)
{
	const char *fx[] = { e2e_fixture("steady"), NULL };
	const char *bin = stray_asan();
	pid_t pid = e2e_start_fixture(fx);
	struct checked_run c;
	char pidbuf[16];

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-d", "2", "-p", pidbuf, NULL };
	asan_env();
	e2e_sleep_s(0.2);
	checked_wait(&c, checked_start(&c, NULL, bin, args));
	e2e_stop_fixture(pid);
	assert_asan_clean(&c);
	cr_assert_eq(c.status, 0, "stray-asan: status %d:\n%s", c.status, c.err);
	cr_assert(c.report && e2e_suspect(c.report, pid, "leak_tick", NULL),
		  "stray-asan missed leak_tick:\n%s", c.out);
	checked_free(&c);
}

/* The interrupted path: SIGTERM forwarded, report, tear-down. */
Test(e2e_sanitize, asan_run_mode_sigterm, .timeout = TIMEOUT_S + 10)
{
	const char *args[] = { "--", e2e_fixture("steady"), NULL };
	struct checked_run c;
	pid_t stray;

	asan_env();
	stray = checked_start(&c, NULL, stray_asan(), args);
	e2e_sleep_s(1.0);
	kill(stray, SIGTERM);
	checked_wait(&c, stray);
	assert_asan_clean(&c);
	cr_assert_eq(c.status, 128 + SIGTERM, "stray-asan: status %d:\n%s", c.status, c.err);
	cr_assert(c.report, "no JSON report");
	checked_free(&c);
}
