// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * BPF tests of the timer tracer: load the real timers skeleton, attach it
 * to this process, create and release timers from noinline trigger
 * functions and assert on timers__collect's groups. Needs root. Criterion
 * forks each test, so each has its own pid and its own kernel state.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "timers.h"

/* Every frame keeps its frame pointer, so a trigger called from one site
 * always yields one stack (the build optimises tests without them). */
#pragma GCC optimize("no-omit-frame-pointer")

#define MS 1000000ll

/* Loop bounds the compiler cannot see: an unrolled loop would call a
 * trigger from several sites, and each site is its own stack. */
static volatile int three = 3;

static struct timers *timers;

static void setup(void)
{
	struct timers_opts opts = { .max_timers = 1024, .max_sites = 256, .max_targets = 8 };
	const char *errmsg;

	timers = timers__new(&opts, &errmsg);
	cr_assert(timers, "%s: %s", errmsg, strerror(errno));
	cr_assert_eq(timers__attach(timers, getpid(), false), 0);
}

static void teardown(void)
{
	timers__free(timers);
}

TestSuite(bpf_timers, .init = setup, .fini = teardown);

/* The barrier after each call keeps it a real call (not a tail jump), so
 * the captured return address lies inside the trigger function. */
#define BARRIER() __asm__ volatile("" ::: "memory")
/* Triggers start 256 bytes apart, so a return address identifies one. */
#define TRIGGER __attribute__((noinline, aligned(256)))

struct seen {
	uint64_t groups, outstanding, armed, periodic;
	int64_t interval_ns;
	int pid;
};

/* What timers__collect reports for kind at sites whose first frame lies in
 * trigger function fn, for process pid (0: this one). */
static struct seen collected(void *fn, const char *kind, int pid)
{
	struct timer_group *g;
	struct seen s = { .interval_ns = -2 };
	size_t n;

	cr_assert_eq(timers__collect(timers, &g, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (i)
			cr_assert_geq(g[i - 1].outstanding, g[i].outstanding, "sorted by outstanding");
		if (strcmp(g[i].kind, kind) || g[i].pid != (pid ? pid : getpid()) || !g[i].depth ||
		    g[i].ips[0] - (uintptr_t)fn >= 256)
			continue;
		if (getenv("TIMERS_DEBUG"))
			fprintf(stderr, "group %s pid %d out %lu armed %lu per %lu iv %ld depth %u ip0 %#lx ip1 %#lx\n",
				g[i].kind, g[i].pid, g[i].outstanding, g[i].armed, g[i].periodic, g[i].interval_ns,
				g[i].depth, g[i].ips[0], g[i].ips[1]);
		if (getenv("TIMERS_DEBUG"))
			for (uint32_t d = 0; d < g[i].depth; d++)
				fprintf(stderr, "   %#lx\n", g[i].ips[d]);
		s.groups++;
		s.outstanding += g[i].outstanding;
		s.armed += g[i].armed;
		s.periodic += g[i].periodic;
		if (g[i].periodic || s.interval_ns == -2)
			s.interval_ns = g[i].interval_ns;
		s.pid = g[i].pid;
	}
	free(g);
	return s;
}

static void totals(uint64_t *created, uint64_t *released)
{
	timers__totals(timers, created, released);
}

static void arm_fd(int fd, int64_t value_ns, int64_t interval_ns)
{
	struct itimerspec its = {
		.it_value = { value_ns / 1000000000, value_ns % 1000000000 },
		.it_interval = { interval_ns / 1000000000, interval_ns % 1000000000 },
	};

	cr_assert_eq(timerfd_settime(fd, 0, &its, NULL), 0);
}

static void arm_posix(timer_t id, int64_t value_ns, int64_t interval_ns)
{
	struct itimerspec its = {
		.it_value = { value_ns / 1000000000, value_ns % 1000000000 },
		.it_interval = { interval_ns / 1000000000, interval_ns % 1000000000 },
	};

	cr_assert_eq(timer_settime(id, 0, &its, NULL), 0);
}


/*
 * Call a trigger n times from one site in a fresh thread. Frames above
 * the test function belong to Criterion, built without frame pointers, and
 * the frame walk reads stale stack words there that change between calls;
 * a thread's stack starts clean, so one call site gives one stack.
 */
struct batch {
	intptr_t (*fn)(void);
	int n;
	intptr_t out[8];
};

static void *batch_thread(void *arg)
{
	struct batch *b = arg;

	for (int i = 0; i < b->n; i++)
		b->out[i] = b->fn();
	return NULL;
}

static void batch(intptr_t (*fn)(void), int n, intptr_t *out)
{
	struct batch b = { .fn = fn, .n = n };
	pthread_t th;

	cr_assert_leq(n, 8);
	cr_assert_eq(pthread_create(&th, NULL, batch_thread, &b), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	for (int i = 0; i < n; i++)
		out[i] = b.out[i];
}

TRIGGER static int trig_tfd_a(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);

	BARRIER();
	return fd;
}

TRIGGER static int trig_tfd_b(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, 0);

	BARRIER();
	return fd;
}

TRIGGER static int trig_tfd_c(void)
{
	int fd = timerfd_create(CLOCK_REALTIME, 0);

	BARRIER();
	return fd;
}

/* A direct syscall that bypasses libc's wrapper: not seen (the timer
 * syscalls are traced at libc's wrappers, see README "Timer leaks"). */
TRIGGER static int trig_tfd_raw(void)
{
	int fd = syscall(SYS_timerfd_create, CLOCK_MONOTONIC, 0);

	BARRIER();
	return fd;
}

TRIGGER static timer_t trig_posix_a(void)
{
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	timer_t id;

	if (timer_create(CLOCK_MONOTONIC, &sev, &id))
		id = (timer_t)-1;
	BARRIER();
	return id;
}

TRIGGER static timer_t trig_posix_b(void)
{
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	timer_t id;

	if (timer_create(CLOCK_MONOTONIC, &sev, &id))
		id = (timer_t)-1;
	BARRIER();
	return id;
}

static intptr_t mk_tfd_a(void)
{
	return trig_tfd_a();
}

static intptr_t mk_tfd_b(void)
{
	return trig_tfd_b();
}

static intptr_t mk_posix_a(void)
{
	return (intptr_t)trig_posix_a();
}

static intptr_t mk_posix_b(void)
{
	return (intptr_t)trig_posix_b();
}

Test(bpf_timers, timerfds_grouped_per_site_with_armed_and_periodic)
{
	intptr_t a[3], b[2];
	uint64_t c0, r0, c1, r1;
	struct seen s;

	totals(&c0, &r0);
	batch(mk_tfd_a, 3, a);
	batch(mk_tfd_b, 2, b);
	arm_fd(a[0], 100 * MS, 100 * MS);
	arm_fd(a[1], 50 * MS, 100 * MS);
	arm_fd(a[2], 3600000 * MS, 0); /* one-shot, an hour away: armed */
	close(b[0]);
	close(b[1]);

	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.groups, 1);
	cr_expect_eq(s.outstanding, 3);
	cr_expect_eq(s.armed, 3);
	cr_expect_eq(s.periodic, 2);
	cr_expect_eq(s.interval_ns, 100 * MS);
	s = collected(trig_tfd_b, "timerfd", 0);
	cr_expect_eq(s.outstanding, 0, "closed timerfds are released");
	totals(&c1, &r1);
	cr_expect_eq(c1 - c0, 5);
	cr_expect_eq(r1 - r0, 2);
}

Test(bpf_timers, timerfd_state_comes_from_fdinfo_after_expiry_and_disarm)
{
	int fd1 = trig_tfd_a(), fd2 = trig_tfd_a(), fd3 = trig_tfd_a();
	struct seen s;

	arm_fd(fd1, 1 * MS, 0);              /* one-shot, expires */
	arm_fd(fd2, 10 * MS, 20 * MS);       /* periodic */
	arm_fd(fd3, 10 * MS, 20 * MS);
	arm_fd(fd3, 0, 0);                   /* disarmed again */
	usleep(30000);
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 3);
	cr_expect_eq(s.armed, 1);
	cr_expect_eq(s.periodic, 1);
	cr_expect_eq(s.interval_ns, 20 * MS);
}

Test(bpf_timers, fd_number_reuse_is_a_new_timer)
{
	int fd1 = trig_tfd_a(), fd2;
	struct seen s;

	arm_fd(fd1, 10 * MS, 10 * MS);
	close(fd1);
	fd2 = trig_tfd_b();
	cr_assert_eq(fd2, fd1, "the fd number is reused");
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 0);
	s = collected(trig_tfd_b, "timerfd", 0);
	cr_expect_eq(s.outstanding, 1);
	cr_expect_eq(s.armed, 0, "the new timer was never armed");
	cr_expect_eq(s.periodic, 0);
	cr_expect_eq(s.interval_ns, -1);
}

Test(bpf_timers, dup_keeps_a_timerfd_alive_and_dup2_over_it_releases)
{
	int fd = trig_tfd_a(), copy, victim = trig_tfd_b(), other = trig_tfd_c();
	struct seen s;

	copy = dup(fd);
	close(fd);
	arm_fd(copy, 5 * MS, 5 * MS); /* armed through the copy */
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 1, "the dup still holds it");
	cr_expect_eq(s.periodic, 1);
	close(copy);
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 0, "the last reference went");

	cr_assert_eq(dup2(other, victim), victim);
	s = collected(trig_tfd_b, "timerfd", 0);
	cr_expect_eq(s.outstanding, 0, "dup2 over it released it");
	s = collected(trig_tfd_c, "timerfd", 0);
	cr_expect_eq(s.outstanding, 1);
}

Test(bpf_timers, close_range_releases)
{
	uint64_t c0, r0, c1, r1;
	struct seen s;

	totals(&c0, &r0);
	for (int i = 0; i < three; i++) {
		int fd = trig_tfd_a();

		cr_assert_eq(dup2(fd, 900 + i), 900 + i);
		close(fd);
	}
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 3);
	cr_assert_eq(syscall(SYS_close_range, 900, 902, 0), 0);
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 0);
	totals(&c1, &r1);
	cr_expect_eq(c1 - c0, 3);
	cr_expect_eq(r1 - r0, 3);
}

/* Direct syscalls bypass libc's wrappers, where timers are traced: such a
 * timerfd is not recorded and no stack is invented for it, even when it
 * is later armed through libc or found in the fd table at reconcile. */
Test(bpf_timers, direct_syscall_is_not_seen)
{
	uint64_t c0, r0, c1, r1;
	struct timer_group *g;
	size_t n;
	int fd;

	totals(&c0, &r0);
	fd = trig_tfd_raw();
	cr_assert_geq(fd, 0);
	arm_fd(fd, 10 * MS, 10 * MS);
	cr_assert_eq(timers__collect(timers, &g, &n), 0);
	for (size_t i = 0; i < n; i++)
		cr_expect(strcmp(g[i].kind, "timerfd") || g[i].pid != getpid(), "no timerfd group expected");
	free(g);
	close(fd);
	totals(&c1, &r1);
	cr_expect_eq(c1 - c0, 0);
	cr_expect_eq(r1 - r0, 0);
}

Test(bpf_timers, posix_timers_grouped_and_deleted)
{
	intptr_t a[3], b[2];
	uint64_t c0, r0, c1, r1;
	struct seen s;

	totals(&c0, &r0);
	batch(mk_posix_a, 3, a);
	batch(mk_posix_b, 2, b);
	for (int i = 0; i < 3; i++)
		cr_assert_neq(a[i], -1);
	arm_posix((timer_t)a[0], 50 * MS, 50 * MS);
	arm_posix((timer_t)a[1], 1 * MS, 0); /* one-shot: expired by collect */
	timer_delete((timer_t)b[0]);
	timer_delete((timer_t)b[1]);
	usleep(20000);
	s = collected(trig_posix_a, "posix", 0);
	cr_expect_eq(s.groups, 1);
	cr_expect_eq(s.outstanding, 3);
	cr_expect_eq(s.armed, 1);
	cr_expect_eq(s.periodic, 1);
	cr_expect_eq(s.interval_ns, 50 * MS);
	s = collected(trig_posix_b, "posix", 0);
	cr_expect_eq(s.outstanding, 0);
	totals(&c1, &r1);
	cr_expect_eq(c1 - c0, 5);
	cr_expect_eq(r1 - r0, 2);
	/* Kernel timer ids are reused after delete: a new timer, a new key. */
	trig_posix_b();
	s = collected(trig_posix_b, "posix", 0);
	cr_expect_eq(s.outstanding, 1);
	cr_expect_eq(s.armed, 0);
}

Test(bpf_timers, on_exit_freezes_what_the_process_held)
{
	int fd = trig_tfd_a();
	timer_t id = trig_posix_a();
	uint64_t c0, r0, c1, r1;
	struct seen s;

	arm_fd(fd, 10 * MS, 10 * MS);
	timers__on_exit(timers, getpid());
	totals(&c0, &r0);
	close(fd);
	timer_delete(id);
	totals(&c1, &r1);
	cr_expect_eq(r1 - r0, 0, "after the window ended, nothing is released");
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 1);
	cr_expect_eq(s.periodic, 1);
	cr_expect_eq(s.interval_ns, 10 * MS);
	s = collected(trig_posix_a, "posix", 0);
	cr_expect_eq(s.outstanding, 1);
}

Test(bpf_timers, on_exec_forgets_the_old_image)
{
	uint64_t c0, r0, c1, r1;
	struct seen s;
	int fd = trig_tfd_a();

	trig_posix_a();
	timers__on_exec(timers, getpid());
	totals(&c0, &r0);
	close(fd);
	totals(&c1, &r1);
	cr_expect_eq(r1 - r0, 0);
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 0);
	s = collected(trig_posix_a, "posix", 0);
	cr_expect_eq(s.outstanding, 0);
}

/* A child's exit ends its window: what it held is frozen by a late
 * on_exit (as in attach mode) and its exit's closes are not releases. */
Test(bpf_timers, exit_is_not_a_release)
{
	int go[2];
	pid_t child;
	uint64_t c0, r0, c1, r1;
	struct seen s;
	char c = 0;

	cr_assert_eq(pipe(go), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		int fd = trig_tfd_a();

		trig_tfd_a();
		arm_fd(fd, 10 * MS, 10 * MS);
		trig_posix_a();
		_exit(0);
	}
	cr_assert_eq(timers__attach(timers, child, false), 0);
	totals(&c0, &r0);
	cr_assert_eq(write(go[1], &c, 1), 1);
	cr_assert_eq(waitpid(child, NULL, 0), child);
	totals(&c1, &r1);
	cr_expect_eq(c1 - c0, 3);
	cr_expect_eq(r1 - r0, 0, "exit released nothing");
	timers__on_exit(timers, child);
	s = collected(trig_tfd_a, "timerfd", child);
	cr_expect_eq(s.outstanding, 2);
	cr_expect_eq(s.periodic, 1);
	s = collected(trig_posix_a, "posix", child);
	cr_expect_eq(s.outstanding, 1);
	timers__detach(timers, child);
	s = collected(trig_tfd_a, "timerfd", child);
	cr_expect_eq(s.outstanding, 2, "detach keeps what was frozen");
}

/* A timerfd inherited by a child lives while either holds it. */
Test(bpf_timers, inherited_timerfd_lives_until_the_last_holder)
{
	int go[2], fd = trig_tfd_a();
	pid_t child;
	uint64_t r0, r1, c;
	struct seen s;
	char ch = 0;

	cr_assert_eq(pipe(go), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		if (read(go[0], &ch, 1) != 1)
			_exit(1);
		_exit(0); /* closes its copy */
	}
	close(fd);
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 1, "the child still holds it");
	totals(&c, &r0);
	cr_assert_eq(write(go[1], &ch, 1), 1);
	cr_assert_eq(waitpid(child, NULL, 0), child);
	totals(&c, &r1);
	cr_expect_eq(r1 - r0, 1, "the child's exit dropped the last reference: a release");
	s = collected(trig_tfd_a, "timerfd", 0);
	cr_expect_eq(s.outstanding, 0);
}

Test(bpf_timers, setitimer_and_alarm)
{
	struct itimerval v = { .it_value = { 100, 0 }, .it_interval = { 7, 0 } };
	struct itimer_state *its;
	size_t n;
	bool real = false, prof = false;

	cr_assert_eq(setitimer(ITIMER_PROF, &v, NULL), 0);
	alarm(300);
	cr_assert_eq(timers__itimers(timers, &its, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (its[i].pid != getpid())
			continue;
		if (!strcmp(its[i].which, "real")) {
			real = true;
			cr_expect(its[i].value_ns > 299 * 1000 * MS && its[i].value_ns <= 300 * 1000 * MS);
			cr_expect_eq(its[i].interval_ns, 0);
		} else if (!strcmp(its[i].which, "prof")) {
			prof = true;
			cr_expect_eq(its[i].value_ns, 100 * 1000 * MS);
			cr_expect_eq(its[i].interval_ns, 7 * 1000 * MS);
		}
	}
	free(its);
	cr_expect(real && prof);
	alarm(0);
	memset(&v, 0, sizeof(v));
	cr_assert_eq(setitimer(ITIMER_PROF, &v, NULL), 0);
	cr_assert_eq(timers__itimers(timers, &its, &n), 0);
	for (size_t i = 0; i < n; i++)
		cr_expect_neq(its[i].pid, getpid(), "disarmed interval timers are not reported");
	free(its);
}

/* ---- libuv (dlopen'ed: the test binary does not link it) ---- */

struct uv_api {
	void *lib;
	int (*loop_init)(void *);
	int (*timer_init)(void *, void *);
	int (*timer_start)(void *, void (*)(void *), uint64_t, uint64_t);
	int (*timer_stop)(void *);
	void (*close)(void *, void (*)(void *));
	int (*run)(void *, int);
	size_t (*loop_size)(void);
	size_t (*handle_size)(int);
};

static struct uv_api uv;

static void uv_cb(void *h)
{
	(void)h;
}

TRIGGER static void *trig_uv_init(void *loop)
{
	void *h = calloc(1, uv.handle_size(13 /* UV_TIMER */));

	if (uv.timer_init(loop, h))
		h = NULL;
	BARRIER();
	return h;
}

static void *uv_loop;

static intptr_t mk_uv_a(void)
{
	return (intptr_t)trig_uv_init(uv_loop);
}

TRIGGER static void *trig_uv_init_b(void *loop)
{
	void *h = calloc(1, uv.handle_size(13 /* UV_TIMER */));

	if (uv.timer_init(loop, h))
		h = NULL;
	BARRIER();
	return h;
}

Test(bpf_timers, libuv_handles_never_closed_and_repeating_never_stopped)
{
	void *loop, *a[3], *b[2];
	intptr_t made[3];
	uint64_t c0, r0, c1, r1;
	struct seen s;

	uv.lib = dlopen("libuv.so.1", RTLD_NOW);
	if (!uv.lib)
		cr_skip_test("libuv1 not installed");
	*(void **)&uv.loop_init = dlsym(uv.lib, "uv_loop_init");
	*(void **)&uv.timer_init = dlsym(uv.lib, "uv_timer_init");
	*(void **)&uv.timer_start = dlsym(uv.lib, "uv_timer_start");
	*(void **)&uv.timer_stop = dlsym(uv.lib, "uv_timer_stop");
	*(void **)&uv.close = dlsym(uv.lib, "uv_close");
	*(void **)&uv.run = dlsym(uv.lib, "uv_run");
	*(void **)&uv.loop_size = dlsym(uv.lib, "uv_loop_size");
	*(void **)&uv.handle_size = dlsym(uv.lib, "uv_handle_size");
	/* libuv is mapped now: attach again to probe it. */
	cr_assert_eq(timers__attach(timers, getpid(), false), 0);
	loop = calloc(1, uv.loop_size());
	cr_assert_eq(uv.loop_init(loop), 0);

	totals(&c0, &r0);
	uv_loop = loop;
	batch(mk_uv_a, 3, made);
	for (int i = 0; i < 3; i++)
		cr_assert((a[i] = (void *)made[i]));
	/* Two call sites: two groups, summed by collected(). */
	b[0] = trig_uv_init_b(loop);
	b[1] = trig_uv_init_b(loop);
	cr_assert_eq(uv.timer_start(a[0], uv_cb, 100, 250), 0); /* repeating */
	cr_assert_eq(uv.timer_start(a[1], uv_cb, 100, 250), 0);
	cr_assert_eq(uv.timer_start(a[2], uv_cb, 100, 250), 0);
	cr_assert_eq(uv.timer_stop(a[2]), 0);                   /* stopped, never closed */
	cr_assert_eq(uv.timer_start(b[0], uv_cb, 100, 0), 0);
	uv.close(b[0], NULL);
	uv.close(b[1], NULL);
	uv.run(loop, 2 /* UV_RUN_NOWAIT */);

	s = collected(trig_uv_init, "uv_timer", 0);
	cr_expect_eq(s.groups, 1);
	cr_expect_eq(s.outstanding, 3);
	cr_expect_eq(s.armed, 2);
	cr_expect_eq(s.periodic, 2);
	cr_expect_eq(s.interval_ns, 250 * MS);
	s = collected(trig_uv_init_b, "uv_timer", 0);
	cr_expect_eq(s.outstanding, 0);
	totals(&c1, &r1);
	cr_expect_eq(c1 - c0, 5);
	cr_expect_eq(r1 - r0, 2);
}

Test(bpf_timers, drop_counters_are_named)
{
	const char *names[32];
	uint64_t values[32];
	size_t n = timers__dropped(timers, names, values, 32);

	cr_assert_gt(n, 0);
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(values[i], 0, "%s", names[i]);
}
