// SPDX-License-Identifier: GPL-2.0-or-later
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common_e2e.h"

const char *e2e_stray(void)
{
	const char *s = getenv("STRAY");

	cr_assert(s, "STRAY must name the stray binary (run through 'make e2e-test')");
	return s;
}

const char *e2e_fixture(const char *name)
{
	static char bufs[8][512];
	static int next;
	const char *dir = getenv("FIXTURES");
	char *b = bufs[next++ % 8];

	cr_assert(dir, "FIXTURES must name the fixture directory");
	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

static char *slurp_fd(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 2)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	return buf;
}

static char *slurp_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	char *s;

	if (fd < 0)
		return NULL;
	s = slurp_fd(fd);
	close(fd);
	return s;
}

/* Fork argv with stdout and stderr captured in unlinked temporary files,
 * whose descriptors go to r for e2e_stray_wait. */
static pid_t spawn_captured(struct e2e_run *r, const char *const *argv)
{
	char out[] = "/tmp/stray-e2e-out-XXXXXX", err[] = "/tmp/stray-e2e-err-XXXXXX";
	int ofd = mkstemp(out), efd = mkstemp(err);
	pid_t pid;

	cr_assert(ofd >= 0 && efd >= 0);
	unlink(out);
	unlink(err);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(argv[0], (char **)argv);
		_exit(126);
	}
	r->out_fd = ofd;
	r->err_fd = efd;
	return pid;
}

pid_t e2e_stray_start(struct e2e_run *r, const char *const *args)
{
	static int seq;
	const char *argv[64];
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	snprintf(r->json_path, sizeof(r->json_path), "/tmp/stray-e2e-%d-%d.json", getpid(), seq++);
	unlink(r->json_path);
	argv[n++] = e2e_stray();
	argv[n++] = "--json";
	argv[n++] = r->json_path;
	for (size_t i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return spawn_captured(r, argv);
}

int e2e_wait_status(pid_t pid, int timeout_s)
{
	time_t deadline = time(NULL) + timeout_s;
	int st = 0;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			break;
		}
		usleep(10000);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void e2e_stray_wait(struct e2e_run *r, pid_t pid, int timeout_s)
{
	int ofd = r->out_fd, efd = r->err_fd;
	char *json;

	r->status = e2e_wait_status(pid, timeout_s);
	lseek(ofd, 0, SEEK_SET);
	lseek(efd, 0, SEEK_SET);
	r->out = slurp_fd(ofd);
	r->err = slurp_fd(efd);
	close(ofd);
	close(efd);
	json = slurp_file(r->json_path);
	if (json) {
		r->report = json_tokener_parse(json);
		cr_assert(r->report, "stray wrote a JSON report that does not parse:\n%s", json);
		free(json);
	}
}

void e2e_stray_run(struct e2e_run *r, int timeout_s, const char *const *args)
{
	pid_t pid = e2e_stray_start(r, args);

	e2e_stray_wait(r, pid, timeout_s);
}

void e2e_run_free(struct e2e_run *r)
{
	free(r->out);
	free(r->err);
	if (r->report)
		json_object_put(r->report);
	unlink(r->json_path);
	memset(r, 0, sizeof(*r));
}

pid_t e2e_start_fixture(const char *const *argv)
{
	int p[2];
	pid_t pid;
	char buf[64] = { 0 };
	size_t len = 0;
	struct pollfd pfd;

	cr_assert(pipe(p) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execv(argv[0], (char **)argv);
		_exit(126);
	}
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	while (!strstr(buf, "ready\n") && len < sizeof(buf) - 1) {
		ssize_t n;

		cr_assert(poll(&pfd, 1, 10000) == 1, "fixture %s did not get ready", argv[0]);
		n = read(p[0], buf + len, sizeof(buf) - 1 - len);
		cr_assert(n > 0, "fixture %s exited before it was ready", argv[0]);
		len += n;
	}
	/* Leave the pipe open on our side only as long as needed: the fixture
	 * must not die of SIGPIPE if it prints more, so keep reading end. */
	return pid;
}

void e2e_stop_fixture(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int64_t e2e_int(json_object *obj, const char *path)
{
	char buf[256], *save = NULL;
	json_object *cur = obj;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
		cr_assert(json_object_object_get_ex(cur, k, &cur), "report has no %s", path);
	cr_assert(json_object_is_type(cur, json_type_int), "%s is not an integer", path);
	return json_object_get_int64(cur);
}

static const char *frame_function(json_object *stack, size_t i)
{
	json_object *frame, *fn;

	if (i >= json_object_array_length(stack))
		return NULL;
	frame = json_object_array_get_idx(stack, i);
	if (!json_object_object_get_ex(frame, "function", &fn) || !json_object_is_type(fn, json_type_string))
		return NULL;
	return json_object_get_string(fn);
}

json_object *e2e_suspect(json_object *report, int pid, const char *fn0, const char *fn1)
{
	json_object *suspects, *s, *stack;

	cr_assert(json_object_object_get_ex(report, "suspects", &suspects));
	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		const char *f0, *f1;

		s = json_object_array_get_idx(suspects, i);
		if (pid > 0 && e2e_int(s, "pid") != pid)
			continue;
		cr_assert(json_object_object_get_ex(s, "stack", &stack));
		f0 = frame_function(stack, 0);
		f1 = frame_function(stack, 1);
		if (f0 && !strcmp(f0, fn0) && (!fn1 || (f1 && !strcmp(f1, fn1))))
			return s;
	}
	return NULL;
}

int e2e_suspects_with(json_object *report, const char *fn)
{
	json_object *suspects, *stack;
	int count = 0;

	cr_assert(json_object_object_get_ex(report, "suspects", &suspects));
	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		json_object_object_get_ex(json_object_array_get_idx(suspects, i), "stack", &stack);
		for (size_t f = 0; f < json_object_array_length(stack); f++) {
			const char *name = frame_function(stack, f);

			if (name && !strcmp(name, fn)) {
				count++;
				break;
			}
		}
	}
	return count;
}

int64_t e2e_suspects_sum(json_object *report, int pid, const char *field)
{
	json_object *suspects, *s;
	int64_t sum = 0;

	cr_assert(json_object_object_get_ex(report, "suspects", &suspects));
	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		json_object *kind;

		s = json_object_array_get_idx(suspects, i);
		/* heap suspects only, like the outstanding totals */
		if (json_object_object_get_ex(s, "kind", &kind) && strcmp(json_object_get_string(kind), "heap"))
			continue;
		if (pid <= 0 || e2e_int(s, "pid") == pid)
			sum += e2e_int(s, field);
	}
	return sum;
}

int e2e_suspects_count(json_object *report, int pid)
{
	json_object *suspects;
	int count = 0;

	cr_assert(json_object_object_get_ex(report, "suspects", &suspects));
	for (size_t i = 0; i < json_object_array_length(suspects); i++)
		if (pid <= 0 || e2e_int(json_object_array_get_idx(suspects, i), "pid") == pid)
			count++;
	return count;
}

bool e2e_target_has_pid(json_object *report, int pid)
{
	json_object *target, *pids;

	cr_assert(json_object_object_get_ex(report, "target", &target), "report has no target");
	cr_assert(json_object_object_get_ex(target, "pids", &pids), "report has no target.pids");
	for (size_t i = 0; i < json_object_array_length(pids); i++)
		if (json_object_get_int64(json_object_array_get_idx(pids, i)) == pid)
			return true;
	return false;
}

char *e2e_slurp(const char *path)
{
	return slurp_file(path);
}

void e2e_stray_run_nojson(struct e2e_run *r, int timeout_s, const char *const *args)
{
	const char *argv[64];
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	argv[n++] = e2e_stray();
	for (size_t i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	/* json_path stays empty: no report is read, r->report stays NULL. */
	e2e_stray_wait(r, spawn_captured(r, argv), timeout_s);
}

double e2e_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void e2e_sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

json_object *e2e_member(json_object *obj, const char *key)
{
	json_object *v = NULL;

	cr_assert(json_object_object_get_ex(obj, key, &v), "no \"%s\" in %s", key,
		  json_object_to_json_string(obj));
	return v;
}

double e2e_number(json_object *obj, const char *key)
{
	json_object *v = e2e_member(obj, key);

	cr_assert(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int),
		  "\"%s\" is not a number: %s", key, json_object_to_json_string(obj));
	return json_object_get_double(v);
}

void e2e_wait_attached(struct e2e_run *r, pid_t stray)
{
	char buf[4096];
	double deadline = e2e_now_s() + 10;

	for (;;) {
		ssize_t n = pread(r->err_fd, buf, sizeof(buf) - 1, 0);

		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, "probes on"))
			return;
		cr_assert(waitpid(stray, NULL, WNOHANG) == 0, "stray exited before attaching: %s", buf);
		cr_assert(e2e_now_s() < deadline, "stray did not attach within 10 s: %s", buf);
		e2e_sleep_s(0.02);
	}
}
