// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * BPF tests: load the real skeleton, attach it to this very process, call
 * the allocator from noinline trigger functions and assert on what the
 * kernel maps recorded (in the style of the kernel's BPF selftests).
 * Needs root. Criterion forks each test, so each has its own pid.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "drain.h"
#include "loader.h"

static struct loader *loader;
static struct drain *drain;

static void setup(void)
{
	struct loader_opts opts = { .max_allocs = 4096, .max_sites = 256, .max_targets = 4 };
	struct allocator alloc;
	const char *errmsg;

	loader = loader__new(&opts, &errmsg);
	cr_assert(loader, "%s: %s", errmsg, strerror(errno));
	drain = drain__new(loader, 512);
	cr_assert(drain);
	cr_assert_eq(allocator__resolve(getpid(), false, &alloc), 0);
	cr_assert_eq(loader__attach(loader, getpid(), &alloc), 0);
	allocator__clear(&alloc);
	cr_assert(libbpf_num_possible_cpus() > 0);
}

static void teardown(void)
{
	drain__free(drain);
	loader__free(loader);
}

TestSuite(bpf_probes, .init = setup, .fini = teardown);

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Outstanding bytes and blocks recorded for sites whose first frame lies in
 * trigger function fn (a return address just after its call). */
static void recorded(void *fn, uint64_t *bytes, uint64_t *blocks)
{
	const struct site_record *recs;
	size_t n;

	drain__free(drain);
	drain = drain__new(loader, 512);
	cr_assert_eq(drain__harvest(drain, getpid(), 0, now_ns(), false), 0);
	recs = drain__records(drain, &n);
	*bytes = *blocks = 0;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].depth && recs[i].ips[0] - (uintptr_t)fn < 256) {
			*bytes += recs[i].live.bytes;
			*blocks += recs[i].live.allocations;
		}
	}
}

/*
 * A kernel counter, read without allocating: this process is itself traced,
 * so a malloc or free here would move the very counters under test.
 */
static uint64_t kernel_counter(enum stray_counter c)
{
	static struct stray_counters per_cpu[1024];
	int ncpus = libbpf_num_possible_cpus(); /* cached after setup's call */
	uint64_t sum = 0;
	__u32 zero = 0;

	cr_assert(ncpus > 0 && ncpus <= 1024);
	cr_assert_eq(bpf_map_lookup_elem(loader__counters_fd(loader), &zero, per_cpu), 0);
	for (int cpu = 0; cpu < ncpus; cpu++)
		sum += per_cpu[cpu].v[c];
	return sum;
}

static void *volatile keep[16];

/* The barrier after each call keeps it a real call (not a tail jump), so
 * the captured return address lies inside the trigger function. */
#define BARRIER() __asm__ volatile("" ::: "memory")
/* Triggers start 256 bytes apart, so a return address identifies one. */
#define TRIGGER __attribute__((noinline, aligned(256)))

TRIGGER static void *trig_malloc(size_t n)
{
	void *p = malloc(n);

	BARRIER();
	return p;
}

TRIGGER static void *trig_realloc(void *old, size_t n)
{
	void *p = realloc(old, n);

	BARRIER();
	return p;
}

TRIGGER static int trig_posix_memalign(void **p, size_t a, size_t n)
{
	int rc = posix_memalign(p, a, n);

	BARRIER();
	return rc;
}

TRIGGER static void *trig_memalign(size_t a, size_t n)
{
	void *p = memalign(a, n);

	BARRIER();
	return p;
}

TRIGGER static void *trig_aligned_alloc(size_t a, size_t n)
{
	void *p = aligned_alloc(a, n);

	BARRIER();
	return p;
}

Test(bpf_probes, malloc_and_free_are_matched)
{
	uint64_t bytes, blocks;

	keep[0] = trig_malloc(100);
	keep[1] = trig_malloc(200);
	free(keep[0]);
	recorded(trig_malloc, &bytes, &blocks);
	cr_expect_eq(bytes, 200);
	cr_expect_eq(blocks, 1);
	free(keep[1]);
	recorded(trig_malloc, &bytes, &blocks);
	cr_expect_eq(blocks, 0);
}

/* glibc's realloc(NULL, n) calls malloc internally: one allocation. */
Test(bpf_probes, nested_realloc_of_null_counts_once)
{
	uint64_t bytes, blocks, allocs = kernel_counter(STRAY_CNT_ALLOCS);
	uint64_t dups = kernel_counter(STRAY_CNT_DUPLICATE_ADDR);

	keep[0] = trig_realloc(NULL, 48);
	cr_expect_eq(kernel_counter(STRAY_CNT_ALLOCS) - allocs, 1);
	cr_expect_eq(kernel_counter(STRAY_CNT_DUPLICATE_ADDR), dups);
	recorded(trig_realloc, &bytes, &blocks);
	cr_expect_eq(bytes, 48);
	cr_expect_eq(blocks, 1);
}

Test(bpf_probes, failed_realloc_keeps_the_old_block)
{
	uint64_t bytes, blocks;
	void *p = trig_malloc(64);

	keep[0] = p;
	cr_assert_null(trig_realloc(p, SIZE_MAX / 2), "realloc of SIZE_MAX/2 should fail");
	recorded(trig_malloc, &bytes, &blocks);
	cr_expect_eq(bytes, 64, "the old block must still be outstanding");
	cr_expect_eq(blocks, 1);
	cr_expect_geq(kernel_counter(STRAY_CNT_FAILED_ALLOCS), 1);
}

Test(bpf_probes, realloc_to_zero_frees)
{
	uint64_t bytes, blocks, unmatched, frees;
	void *p = trig_malloc(64);

	unmatched = kernel_counter(STRAY_CNT_UNMATCHED_FREES);
	frees = kernel_counter(STRAY_CNT_FREES);
	cr_expect_null(trig_realloc(p, 0));
	cr_expect_eq(kernel_counter(STRAY_CNT_UNMATCHED_FREES), unmatched,
		     "the nested free must not count as unmatched");
	cr_expect_eq(kernel_counter(STRAY_CNT_FREES), frees + 1);
	recorded(trig_malloc, &bytes, &blocks);
	cr_expect_eq(blocks, 0);
}

Test(bpf_probes, realloc_moves_the_block_to_the_new_site)
{
	uint64_t bytes, blocks;
	void *p = trig_malloc(16);

	keep[0] = trig_realloc(p, 4000);
	recorded(trig_malloc, &bytes, &blocks);
	cr_expect_eq(blocks, 0);
	recorded(trig_realloc, &bytes, &blocks);
	cr_expect_eq(bytes, 4000);
	cr_expect_eq(blocks, 1);
}

Test(bpf_probes, posix_memalign_records_only_success)
{
	uint64_t bytes, blocks;
	void *p = NULL;

	cr_assert_eq(trig_posix_memalign(&p, 3, 64), EINVAL);
	cr_assert_eq(trig_posix_memalign(&p, 64, 320), 0);
	keep[0] = p;
	recorded(trig_posix_memalign, &bytes, &blocks);
	cr_expect_eq(bytes, 320);
	cr_expect_eq(blocks, 1);
}

/* glibc's memalign and aligned_alloc are one function: probed once. */
Test(bpf_probes, aliases_count_once)
{
	uint64_t bytes, blocks;

	keep[0] = trig_memalign(64, 1000);
	keep[1] = trig_aligned_alloc(64, 2048);
	recorded(trig_memalign, &bytes, &blocks);
	cr_expect_eq(bytes, 1000);
	cr_expect_eq(blocks, 1);
	recorded(trig_aligned_alloc, &bytes, &blocks);
	cr_expect_eq(bytes, 2048);
	cr_expect_eq(blocks, 1);
}

Test(bpf_probes, failed_malloc_is_not_recorded)
{
	uint64_t bytes, blocks, failed = kernel_counter(STRAY_CNT_FAILED_ALLOCS);

	cr_assert_null(trig_malloc(SIZE_MAX - 4096));
	cr_expect_eq(kernel_counter(STRAY_CNT_FAILED_ALLOCS), failed + 1);
	recorded(trig_malloc, &bytes, &blocks);
	cr_expect_eq(blocks, 0);
}

Test(bpf_probes, free_of_unknown_block_is_counted)
{
	uint64_t unmatched;
	void *p;

	/* A block allocated while untraced, freed once traced again. */
	loader__detach(loader, getpid());
	p = trig_malloc(77); /* a real call: a malloc/free pair may be elided */
	{
		struct allocator alloc;

		cr_assert_eq(allocator__resolve(getpid(), false, &alloc), 0);
		cr_assert_eq(loader__attach(loader, getpid(), &alloc), 0);
		allocator__clear(&alloc);
	}
	unmatched = kernel_counter(STRAY_CNT_UNMATCHED_FREES);
	keep[0] = p;
	free(keep[0]);
	uint64_t after = kernel_counter(STRAY_CNT_UNMATCHED_FREES);

	cr_expect_eq(after, unmatched + 1, "unmatched %lu -> %lu", unmatched, after);
}
