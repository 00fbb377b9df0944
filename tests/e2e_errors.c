// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Every way stray refuses to run: exit status 1, exactly one line on
 * stderr starting "stray: ", nothing on stdout, and no JSON file nor
 * temporary file (".<name>.XXXXXX") left in the --json directory, which
 * is a fresh, world-writable mkdtemp directory per test so that a file
 * written even by an unprivileged stray would be seen.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common_e2e.h"

struct err_run {
	int status;
	char out[4096];
	char err[4096];
	char dir[64];
};

static void read_all(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

/*
 * Run stray --json DIR/report.json ARGS... (DIR: a new temporary
 * directory), after pre() in the child when given; at most 15 s.
 */
static void run_stray(struct err_run *r, const char *const *args, void (*pre)(void))
{
	const char *argv[32];
	char json[128], out[] = "/tmp/stray-e2e-out-XXXXXX", err[] = "/tmp/stray-e2e-err-XXXXXX";
	int ofd, efd;
	size_t n = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/stray-e2e-errors-XXXXXX");
	cr_assert(mkdtemp(r->dir), "mkdtemp: %s", strerror(errno));
	cr_assert(chmod(r->dir, 0777) == 0);
	snprintf(json, sizeof(json), "%s/report.json", r->dir);
	argv[n++] = e2e_stray();
	argv[n++] = "--json";
	argv[n++] = json;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	ofd = mkstemp(out);
	efd = mkstemp(err);
	cr_assert(ofd >= 0 && efd >= 0);
	unlink(out);
	unlink(err);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		if (pre)
			pre();
		execv(argv[0], (char **)argv);
		_exit(126);
	}
	r->status = e2e_wait_status(pid, 15);
	read_all(ofd, r->out, sizeof(r->out));
	read_all(efd, r->err, sizeof(r->err));
}

/* The contract of every error; removes the directory. Returns the
 * message so callers can check what it names. */
static void assert_error(struct err_run *r, const char *must_mention)
{
	char leftovers[1024] = "";
	struct dirent *e;
	DIR *d = opendir(r->dir);
	const char *nl;

	cr_assert(d);
	while ((e = readdir(d))) {
		char path[512];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		strncat(leftovers, e->d_name, sizeof(leftovers) - strlen(leftovers) - 2);
		strcat(leftovers, " ");
		snprintf(path, sizeof(path), "%s/%s", r->dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(r->dir);

	cr_expect_eq(r->status, 1, "exit status %d, want 1; stderr: %s", r->status, r->err);
	cr_expect_str_empty(r->out, "stdout is not empty: %s", r->out);
	cr_expect_str_empty(leftovers, "files left in the --json directory: %s", leftovers);
	cr_expect(!strncmp(r->err, "stray: ", 7), "stderr does not start with \"stray: \": %s", r->err);
	nl = strchr(r->err, '\n');
	cr_expect(nl && nl[1] == '\0', "stderr is not exactly one line:\n%s", r->err);
	if (must_mention)
		cr_expect(strstr(r->err, must_mention), "stderr does not mention \"%s\": %s",
			  must_mention, r->err);
}

static void expect_error(const char *const *args, const char *must_mention)
{
	struct err_run r;

	run_stray(&r, args, NULL);
	assert_error(&r, must_mention);
}

/* ---- environment ---- */

static void become_nobody(void)
{
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(125);
}

Test(e2e_errors, not_root)
{
	struct err_run r;
	const char *args[] = { "--", "/bin/true", NULL };

	run_stray(&r, args, become_nobody);
	cr_assert_neq(r.status, 125, "could not become nobody");
	assert_error(&r, "root");
}

/* Hide the kernel's BTF behind an empty tmpfs in a private mount
 * namespace: only stray's view changes. */
static void hide_btf(void)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/sys/kernel/btf", "tmpfs", 0, NULL))
		_exit(125);
}

Test(e2e_errors, no_btf)
{
	struct err_run r;
	const char *args[] = { "--", "/bin/true", NULL };

	cr_assert(access("/sys/kernel/btf/vmlinux", R_OK) == 0, "this kernel has no BTF at all");
	run_stray(&r, args, hide_btf);
	cr_assert_neq(r.status, 125, "could not hide /sys/kernel/btf");
	assert_error(&r, "BTF");
}

/* ---- targets ---- */

Test(e2e_errors, pid_missing)
{
	char pidbuf[16];
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	cr_assert(kill(pid, 0) == -1 && errno == ESRCH);
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-d", "1", "-p", pidbuf, NULL };
	expect_error(args, pidbuf);
}

Test(e2e_errors, pid_above_pid_max)
{
	const char *args[] = { "-d", "1", "-p", "2147483647", NULL };

	expect_error(args, "2147483647");
}

/* A zombie has a PID but no memory left to trace: it is gone. */
Test(e2e_errors, pid_gone_zombie)
{
	char pidbuf[16];
	pid_t pid = fork();
	struct err_run r;

	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	/* Wait until it is a zombie, without reaping it. */
	for (int i = 0; i < 200; i++) {
		siginfo_t si = { 0 };

		if (!waitid(P_PID, pid, &si, WEXITED | WNOWAIT | WNOHANG) && si.si_pid == pid)
			break;
		usleep(5000);
	}
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-d", "1", "-p", pidbuf, NULL };
	run_stray(&r, args, NULL);
	waitpid(pid, NULL, 0);
	assert_error(&r, pidbuf);
	cr_expect(!strstr(r.err, "no allocator"), "a zombie is reported as having no malloc: %s", r.err);
	cr_expect(strstr(r.err, "exited") || strstr(r.err, "no process"),
		  "the message does not say the process is gone: %s", r.err);
}

Test(e2e_errors, command_not_found_by_path)
{
	const char *args[] = { "--", "/nonexistent/stray-no-such-command", NULL };

	expect_error(args, "/nonexistent/stray-no-such-command");
}

Test(e2e_errors, command_not_found_in_PATH)
{
	const char *args[] = { "--", "stray-no-such-command-4711", "arg", NULL };

	expect_error(args, "stray-no-such-command-4711");
}

Test(e2e_errors, command_not_executable)
{
	const char *args[] = { "--", "/etc/hostname", NULL };

	expect_error(args, "/etc/hostname");
}

/*
 * /sbin/ldconfig (libc-bin, Essential: yes) is a stripped static-pie
 * executable: it has its own malloc but no symbol names it, so stray
 * finds no allocator to probe.
 */
#define NO_MALLOC_BIN "/sbin/ldconfig"

Test(e2e_errors, no_allocator_symbol_run_mode)
{
	const char *args[] = { "--", NO_MALLOC_BIN, "-p", NULL };

	if (access(NO_MALLOC_BIN, X_OK))
		cr_skip_test(NO_MALLOC_BIN " is missing");
	expect_error(args, "malloc");
}

Test(e2e_errors, no_allocator_symbol_attach_mode)
{
	char pidbuf[16];
	int st;
	pid_t pid;

	if (access(NO_MALLOC_BIN, X_OK))
		cr_skip_test(NO_MALLOC_BIN " is missing");
	/* Hold ldconfig at its first instruction: it stops at the exec. */
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		execl(NO_MALLOC_BIN, "ldconfig", "-p", (char *)NULL);
		_exit(126);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFSTOPPED(st), "ldconfig did not stop at exec");
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-d", "1", "-p", pidbuf, NULL };
	struct err_run r;

	run_stray(&r, args, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_error(&r, "malloc");
}

/* ---- options ---- */

#define BAD_OPTIONS(name, mention, ...)                        \
	Test(e2e_errors, name)                                 \
	{                                                      \
		const char *args[] = { __VA_ARGS__, NULL };    \
		expect_error(args, mention);                   \
	}

/* With a valid target after the bad option, so that accepting the
 * option by mistake would run (and succeed) instead of failing. */
BAD_OPTIONS(duration_not_a_number, "abc", "-d", "abc", "--", "/bin/true")
BAD_OPTIONS(duration_zero, "0", "-d", "0", "--", "/bin/true")
BAD_OPTIONS(duration_negative, "-2", "-d", "-2", "--", "/bin/true")
BAD_OPTIONS(duration_trailing_garbage, "2x", "-d", "2x", "--", "/bin/true")
BAD_OPTIONS(interval_negative, "-1", "-i", "-1", "--", "/bin/true")
BAD_OPTIONS(interval_zero, "0", "-i", "0", "--", "/bin/true")
BAD_OPTIONS(min_age_not_a_number, "x", "--min-age", "x", "--", "/bin/true")
BAD_OPTIONS(top_not_a_number, "x", "--top", "x", "--", "/bin/true")
BAD_OPTIONS(top_negative, "-3", "--top", "-3", "--", "/bin/true")
BAD_OPTIONS(pid_zero, "0", "-p", "0")
BAD_OPTIONS(pid_negative, "-5", "-p", "-5")
BAD_OPTIONS(pid_not_a_number, "abc", "-p", "abc")
BAD_OPTIONS(pid_too_big, "99999999999", "-p", "99999999999")
BAD_OPTIONS(pid_and_command_together, NULL, "-p", "1", "--", "/bin/true")
BAD_OPTIONS(nothing_to_trace, NULL, "-d", "1")
BAD_OPTIONS(unknown_long_option, "--bogus", "--bogus", "--", "/bin/true")
BAD_OPTIONS(unknown_short_option, "x", "-x", "--", "/bin/true")
BAD_OPTIONS(missing_option_argument, "p", "-d", "1", "-p")

/* The report cannot be written (the later --json wins): the run itself
 * succeeded, but stray must still fail cleanly, before the text report. */
BAD_OPTIONS(json_directory_missing, "/nonexistent-stray-dir/r.json", "--json",
	    "/nonexistent-stray-dir/r.json", "--", "/bin/true")

/* The error names the target, not only what is missing. */
Test(e2e_errors, no_allocator_symbol_names_target)
{
	const char *args[] = { "--", NO_MALLOC_BIN, "-p", NULL };

	if (access(NO_MALLOC_BIN, X_OK))
		cr_skip_test(NO_MALLOC_BIN " is missing");
	expect_error(args, NO_MALLOC_BIN);
}
