// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A real jemalloc program: Debian's redis-server (linked with the system
 * libjemalloc.so.2, calling malloc/calloc/realloc/free from its zmalloc)
 * on a private unix socket, no TCP port, no persistence. stray -p attaches,
 * redis-benchmark sends a few thousand requests, and stray must have
 * probed jemalloc, counted allocations and frees there, report sites whose
 * frames are in redis-server, and end cleanly on SIGINT with a report.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common_e2e.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define REDIS_BENCHMARK "/usr/bin/redis-benchmark"

static pid_t spawn_quiet(const char *const *argv)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static bool socket_accepts(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static pid_t start_redis(const char *sock)
{
	const char *argv[] = { REDIS_SERVER, "--port", "0", "--unixsocket", sock, "--save", "",
			       "--appendonly", "no", "--daemonize", "no", NULL };
	pid_t pid = spawn_quiet(argv);
	double deadline = e2e_now_s() + 10;

	while (!socket_accepts(sock)) {
		cr_assert(waitpid(pid, NULL, WNOHANG) == 0, "redis-server exited");
		cr_assert(e2e_now_s() < deadline, "redis-server did not listen on %s within 10 s", sock);
		e2e_sleep_s(0.05);
	}
	return pid;
}

/* Until stray -v says its probes are on. */
static void wait_probes(struct e2e_run *r, pid_t stray)
{
	char buf[4096];
	double deadline = e2e_now_s() + 10;
	ssize_t n;

	for (;;) {
		n = pread(r->err_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, "probes on"))
			return;
		cr_assert(waitpid(stray, NULL, WNOHANG) == 0 && e2e_now_s() < deadline, "stray did not attach: %s",
			  buf);
		e2e_sleep_s(0.05);
	}
}

/* Suspects with a frame in redis-server itself (Debian installs it as a
 * link to redis-check-rdb: the module is that file). */
static int suspects_in_redis(json_object *report)
{
	json_object *suspects = e2e_member(report, "suspects");
	int n = 0;

	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		json_object *stack = e2e_member(json_object_array_get_idx(suspects, i), "stack"), *module;
		bool inside = false;

		for (size_t f = 0; f < json_object_array_length(stack) && !inside; f++)
			inside = json_object_object_get_ex(json_object_array_get_idx(stack, f), "module", &module) &&
				 json_object_is_type(module, json_type_string) &&
				 strstr(json_object_get_string(module), "/usr/bin/redis-");
		n += inside;
	}
	return n;
}

Test(e2e_redis, benchmark_under_attach, .timeout = 60)
{
	char sock[64], pidbuf[16];
	struct e2e_run r;
	pid_t redis, stray, bench;
	int st;

	if (access(REDIS_SERVER, X_OK) || access(REDIS_BENCHMARK, X_OK))
		cr_skip_test("redis-server or redis-benchmark missing (scripts/install-deps.sh)");
	snprintf(sock, sizeof(sock), "/tmp/stray-redis-%d.sock", getpid());
	unlink(sock);
	redis = start_redis(sock);
	snprintf(pidbuf, sizeof(pidbuf), "%d", redis);
	/* Ended by SIGINT once the benchmark is done (-d only bounds it). */
	const char *args[] = { "-v", "-d", "40", "-p", pidbuf, NULL };
	stray = e2e_stray_start(&r, args);
	wait_probes(&r, stray);
	const char *bench_argv[] = { REDIS_BENCHMARK, "-s", sock, "-n", "3000", "-c", "4", "-q", "-t", "set,get,lpush,lpop",
				     NULL };
	bench = spawn_quiet(bench_argv);
	st = e2e_wait_status(bench, 30);
	kill(stray, SIGINT);
	e2e_stray_wait(&r, stray, 30);
	kill(redis, SIGKILL);
	waitpid(redis, NULL, 0);
	unlink(sock);
	cr_assert_eq(st, 0, "redis-benchmark failed (%d)", st);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	cr_expect(strstr(r.err, "libjemalloc.so.2"), "jemalloc not probed: %s", r.err);
	/* 12000 requests: every one allocates (client query buffers, argv
	 * objects, replies) and most free again. */
	cr_expect_gt(e2e_int(r.report, "totals.allocations"), 12000, "allocations: %ld",
		     (long)e2e_int(r.report, "totals.allocations"));
	cr_expect_gt(e2e_int(r.report, "totals.frees"), 6000, "frees: %ld", (long)e2e_int(r.report, "totals.frees"));
	cr_expect_gt(suspects_in_redis(r.report), 0, "no suspect with a frame in redis-server");
	cr_expect_eq(e2e_int(r.report, "totals.dropped.stale_inflight"), 0);
	cr_expect_eq(e2e_int(r.report, "totals.dropped.missing_entry"), 0);
	e2e_run_free(&r);
}
