// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fixtures/stress.c: 8 threads allocating (malloc, calloc,
 * posix_memalign, aligned_alloc, realloc, operator new and new[]) and
 * freeing (free, realloc, sized delete, delete[]) each other's blocks
 * through queues. stray's totals must equal the fixture's own counts
 * exactly, in run mode and in -p mode, with every drop counter at zero:
 * no drift under concurrency.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common_e2e.h"

#define NTHREADS 8

/* The fixture's "counts ..." line. */
struct stress_counts {
	long long allocs, frees, bytes, blocks, ops;
	long long thread_leak_bytes, thread_leak_blocks, main_leak_bytes, main_leak_blocks;
};

static void parse_counts(const char *text, struct stress_counts *c)
{
	const char *line = text ? strstr(text, "counts allocs=") : NULL;

	cr_assert(line, "the fixture printed no counts:\n%s", text ? text : "(nothing)");
	cr_assert_eq(sscanf(line,
			    "counts allocs=%lld frees=%lld outstanding_bytes=%lld outstanding_blocks=%lld ops=%lld "
			    "thread_leak_bytes=%lld thread_leak_blocks=%lld main_leak_bytes=%lld "
			    "main_leak_blocks=%lld",
			    &c->allocs, &c->frees, &c->bytes, &c->blocks, &c->ops, &c->thread_leak_bytes,
			    &c->thread_leak_blocks, &c->main_leak_bytes, &c->main_leak_blocks),
		     9, "bad counts line: %s", line);
}

static void expect_site(json_object *report, const char *fn, long long bytes, long long blocks)
{
	json_object *s = e2e_suspect(report, 0, fn, NULL);

	cr_assert(s, "no suspect at %s", fn);
	cr_expect_eq(e2e_int(s, "bytes"), bytes, "%s: %lld bytes, the fixture leaked %lld", fn,
		     (long long)e2e_int(s, "bytes"), bytes);
	cr_expect_eq(e2e_int(s, "allocations"), blocks, "%s: %lld blocks, the fixture leaked %lld", fn,
		     (long long)e2e_int(s, "allocations"), blocks);
	cr_expect_eq(e2e_int(s, "total_allocations"), blocks, "%s: allocated more than it leaked", fn);
}

/* Every counter under totals.dropped is zero. */
static void expect_zero_drops(json_object *report)
{
	json_object *dropped = e2e_member(e2e_member(report, "totals"), "dropped");

	json_object_object_foreach(dropped, name, value)
		cr_expect_eq(json_object_get_int64(value), 0, "dropped.%s = %lld", name,
			     (long long)json_object_get_int64(value));
}

static void expect_no_drops(json_object *report)
{
	expect_zero_drops(report);
	cr_expect_eq(e2e_int(report, "totals.unmatched_frees"), 0);
}

/*
 * stray's totals against the fixture's. extra_allocs/extra_bytes: blocks
 * the fixture cannot count (glibc's per-thread DTVs in run mode).
 */
static void expect_totals(json_object *report, const struct stress_counts *c, long long extra_allocs,
			  long long extra_bytes)
{
	cr_expect_eq(e2e_int(report, "totals.allocations"), c->allocs + extra_allocs,
		     "allocations: stray %lld, fixture %lld + %lld", (long long)e2e_int(report, "totals.allocations"),
		     c->allocs, extra_allocs);
	cr_expect_eq(e2e_int(report, "totals.frees"), c->frees, "frees: stray %lld, fixture %lld",
		     (long long)e2e_int(report, "totals.frees"), c->frees);
	cr_expect_eq(e2e_int(report, "totals.outstanding_bytes"), c->bytes + extra_bytes,
		     "outstanding bytes: stray %lld, fixture %lld + %lld",
		     (long long)e2e_int(report, "totals.outstanding_bytes"), c->bytes, extra_bytes);
	cr_expect_eq(e2e_int(report, "totals.outstanding_allocations"), c->blocks + extra_allocs,
		     "outstanding blocks: stray %lld, fixture %lld + %lld",
		     (long long)e2e_int(report, "totals.outstanding_allocations"), c->blocks, extra_allocs);
	expect_site(report, "leak_per_thread", c->thread_leak_bytes, c->thread_leak_blocks);
	expect_site(report, "leak_from_main", c->main_leak_bytes, c->main_leak_blocks);
	expect_no_drops(report);
}

/* The one suspect whose first frame is in a module whose path contains
 * module (NULL when there is none or more than one). */
static json_object *suspect_in_module(json_object *report, const char *module)
{
	json_object *suspects = e2e_member(report, "suspects"), *found = NULL;
	int n = 0;

	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		json_object *s = json_object_array_get_idx(suspects, i);
		json_object *stack = e2e_member(s, "stack"), *m;

		if (json_object_array_length(stack) &&
		    json_object_object_get_ex(json_object_array_get_idx(stack, 0), "module", &m) &&
		    strstr(json_object_get_string(m), module)) {
			found = s;
			n++;
		}
	}
	return n == 1 ? found : NULL;
}

/*
 * Run mode sees the fixture from its first instruction, so start-up and
 * pthread_create are traced too: glibc callocs one DTV (the thread's TLS
 * vector) per thread and keeps it with the cached stack, so NTHREADS
 * blocks at allocate_dtv are outstanding at exit, and libstdc++ mallocs its
 * emergency exception pool (one block) at start-up and keeps it; valgrind
 * counts both as in use too. Nothing else may differ.
 */
Test(e2e_stress, run_mode_totals_equal_the_fixture_counts, .timeout = 60)
{
	const char *args[] = { "--", e2e_fixture("stress"), "3", NULL };
	struct stress_counts c;
	struct e2e_run r;
	json_object *dtv, *pool;

	e2e_stray_run(&r, 50, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	parse_counts(r.out, &c);
	cr_assert_gt(c.ops, 10000, "only %lld operations", c.ops);
	/* With libc6-dbg installed, ld.so's calloc wrapper inlined into
	 * allocate_dtv is reported as a frame of its own ahead of it. */
	dtv = e2e_suspect(r.report, 0, "allocate_dtv", NULL);
	if (!dtv)
		dtv = e2e_suspect(r.report, 0, "calloc", "allocate_dtv");
	cr_assert(dtv, "no allocate_dtv suspect (pthread_create's DTVs):\n%s", r.out);
	cr_expect_eq(e2e_int(dtv, "allocations"), NTHREADS);
	pool = suspect_in_module(r.report, "libstdc++");
	cr_assert(pool, "not one suspect in libstdc++ (its emergency pool):\n%s", r.out);
	cr_expect_eq(e2e_int(pool, "allocations"), 1);
	cr_expect_eq(e2e_suspects_count(r.report, 0), 4,
		     "other suspects than the fixture's two, the DTVs and libstdc++'s pool:\n%s", r.out);
	expect_totals(r.report, &c, NTHREADS + 1, e2e_int(dtv, "bytes") + e2e_int(pool, "bytes"));
	cr_log_info("stress run mode: %lld operations, %lld allocations, %lld frees", c.ops, c.allocs, c.frees);
	e2e_run_free(&r);
}

/*
 * -p mode, 10 s: the threads exist before stray attaches, and the fixture
 * starts only on SIGUSR1, sent once the probes are on. The window ends
 * when the fixture exits, so stray's totals are exactly the fixture's.
 */
Test(e2e_stress, attach_totals_equal_the_fixture_counts_10s, .timeout = 90)
{
	char counts_path[] = "/tmp/stray-stress-XXXXXX";
	int fd = mkstemp(counts_path);
	const char *fx[] = { e2e_fixture("stress"), "-w", "-o", counts_path, "10", NULL };
	struct stress_counts c;
	struct e2e_run r;
	pid_t fixture, stray;
	char *text;

	cr_assert_geq(fd, 0);
	close(fd);
	fixture = e2e_attach_fixture(&r, fx, NULL, &stray);
	kill(fixture, SIGUSR1);
	cr_assert_eq(e2e_wait_status(fixture, 60), 0, "the fixture failed");
	e2e_stray_wait(&r, stray, 30);
	text = e2e_slurp(counts_path);
	unlink(counts_path);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	parse_counts(text, &c);
	cr_assert_gt(c.ops, 10000, "only %lld operations", c.ops);
	cr_expect_eq(e2e_suspects_count(r.report, 0), 2, "other suspects than the fixture's two:\n%s", r.out);
	expect_totals(r.report, &c, 0, 0);
	cr_log_info("stress -p 10 s: %lld operations, %lld allocations, %lld frees", c.ops, c.allocs, c.frees);
	free(text);
	e2e_run_free(&r);
}

/* tests/fixtures/threadexit.c's shape. */
#define EXIT_ROUNDS 5
#define EXIT_THREADS 8
#define EXIT_PER_THREAD 50
#define EXIT_KEEP 1

/* Each thread leaves EXIT_KEEP blocks of 64 + its index bytes. */
static long long orphan_bytes_kept(void)
{
	long long bytes = 0;

	for (int i = 0; i < EXIT_THREADS; i++)
		bytes += EXIT_ROUNDS * EXIT_KEEP * (64 + i);
	return bytes;
}

static void run_threadexit(struct e2e_run *r)
{
	const char *args[] = { "--", e2e_fixture("threadexit"), NULL };
	json_object *s;

	e2e_stray_run(r, 30, args);
	cr_assert_eq(r->status, 0, "stray failed (%d): %s", r->status, r->err);
	cr_assert(r->report, "no JSON report");
	s = e2e_suspect(r->report, 0, "orphan_alloc", "thread_main");
	cr_assert(s, "no orphan_alloc suspect:\n%s", r->out);
	cr_expect_eq(e2e_int(s, "allocations"), EXIT_ROUNDS * EXIT_THREADS * EXIT_KEEP);
	cr_expect_eq(e2e_int(s, "bytes"), orphan_bytes_kept());
	cr_expect_eq(e2e_int(s, "total_allocations"), EXIT_ROUNDS * EXIT_THREADS * EXIT_PER_THREAD);
	cr_expect_eq(e2e_int(s, "frees"), EXIT_ROUNDS * EXIT_THREADS * (EXIT_PER_THREAD - EXIT_KEEP));
	expect_zero_drops(r->report);
}

/*
 * Threads that allocate and exit; their blocks are freed later by the main
 * thread. The blocks stay at the exited threads' site, exact.
 * unmatched_frees: an exiting thread's glibc frees its tcache, a block
 * malloc allocated internally (not through a probed entry point), and
 * every chunk cached in it. With the tcache holding no chunks
 * (glibc.malloc.tcache_count=0) that is exactly one unmatched free per
 * thread; with the default, the chunks malloc stashed there from the bins
 * the main thread's frees filled are freed too: at most 7 per bin of 64.
 */
Test(e2e_stress, exited_threads_blocks_freed_by_another_thread, .timeout = 60)
{
	const long long threads = EXIT_ROUNDS * EXIT_THREADS;
	struct e2e_run r;

	setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
	run_threadexit(&r);
	cr_expect_eq(e2e_int(r.report, "totals.unmatched_frees"), threads,
		     "%lld unmatched frees for %lld exited threads", (long long)e2e_int(r.report, "totals.unmatched_frees"),
		     threads);
	e2e_run_free(&r);

	unsetenv("GLIBC_TUNABLES");
	run_threadexit(&r);
	cr_expect(e2e_int(r.report, "totals.unmatched_frees") >= threads &&
			  e2e_int(r.report, "totals.unmatched_frees") <= threads * (1 + 7 * 64),
		  "%lld unmatched frees for %lld exited threads", (long long)e2e_int(r.report, "totals.unmatched_frees"),
		  threads);
	e2e_run_free(&r);
}
