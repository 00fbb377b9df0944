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
#include "bpf_cxx.h"
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

/* Any kind of site, for recorded_where. */
#define ANY_KIND UINT32_MAX

/* Outstanding bytes and blocks recorded for sites of kind (or ANY_KIND)
 * whose first frame lies in the span bytes from fn (a return address just
 * after a call in it). */
static void recorded_where(const void *fn, uintptr_t span, uint32_t kind, uint64_t *bytes, uint64_t *blocks)
{
	const struct site_record *recs;
	size_t n;

	drain__free(drain);
	drain = drain__new(loader, 512);
	cr_assert_eq(drain__harvest(drain, getpid(), 0, now_ns(), false), 0);
	recs = drain__records(drain, &n);
	*bytes = *blocks = 0;
	for (size_t i = 0; i < n; i++) {
		if ((kind == ANY_KIND || recs[i].kind == kind) && recs[i].depth &&
		    recs[i].ips[0] - (uintptr_t)fn < span) {
			*bytes += recs[i].live.bytes;
			*blocks += recs[i].live.allocations;
		}
	}
}

static void recorded_span(const void *fn, uintptr_t span, uint64_t *bytes, uint64_t *blocks)
{
	recorded_where(fn, span, ANY_KIND, bytes, blocks);
}

/* The same for trigger function fn (triggers are 256 bytes apart). */
static void recorded(const void *fn, uint64_t *bytes, uint64_t *blocks)
{
	recorded_span(fn, 256, bytes, blocks);
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

/* ---- C++: operator new and delete (triggers in tests/bpf_cxx.cpp) ---- */

struct counts {
	uint64_t allocs, frees, unmatched, failed, stale, missing, dups;
};

static void counts_now(struct counts *c)
{
	c->allocs = kernel_counter(STRAY_CNT_ALLOCS);
	c->frees = kernel_counter(STRAY_CNT_FREES);
	c->unmatched = kernel_counter(STRAY_CNT_UNMATCHED_FREES);
	c->failed = kernel_counter(STRAY_CNT_FAILED_ALLOCS);
	c->stale = kernel_counter(STRAY_CNT_STALE_INFLIGHT);
	c->missing = kernel_counter(STRAY_CNT_MISSING_ENTRY);
	c->dups = kernel_counter(STRAY_CNT_DUPLICATE_ADDR);
}

/* Counter deltas since *before: allocations, frees, failed allocations;
 * every other counter must not have moved. */
static void expect_deltas(const struct counts *before, uint64_t allocs, uint64_t frees, uint64_t failed,
			  const char *what)
{
	struct counts now;

	counts_now(&now);
	cr_expect_eq(now.allocs - before->allocs, allocs, "%s: %lu allocations recorded, expected %lu", what,
		     now.allocs - before->allocs, allocs);
	cr_expect_eq(now.frees - before->frees, frees, "%s: %lu frees, expected %lu", what,
		     now.frees - before->frees, frees);
	cr_expect_eq(now.failed - before->failed, failed, "%s: %lu failed, expected %lu", what,
		     now.failed - before->failed, failed);
	cr_expect_eq(now.unmatched, before->unmatched, "%s: unmatched frees", what);
	cr_expect_eq(now.stale, before->stale, "%s: stale in-flight records", what);
	cr_expect_eq(now.missing, before->missing, "%s: returns without entry", what);
	cr_expect_eq(now.dups, before->dups, "%s: duplicate addresses", what);
}

static const char *const new_names[CXX_NEW_FORMS] = {
	"new", "new[]", "new(nothrow)", "new[](nothrow)", "new(align)", "new[](align)",
	"new(align, nothrow)", "new[](align, nothrow)",
};

/* Every operator new form is one allocation at its caller, although
 * libstdc++'s calls malloc or aligned_alloc inside (and new[] tail-jumps
 * into new); the block is then outstanding until deleted. */
Test(bpf_probes, every_operator_new_counts_once_at_its_caller)
{
	for (int form = 0; form < CXX_NEW_FORMS; form++) {
		uint64_t bytes, blocks, size = 40 + 8 * form;
		struct counts before;

		counts_now(&before);
		keep[form] = cxx_new_triggers[form](size, 64);
		cr_assert(keep[form]);
		expect_deltas(&before, 1, 0, 0, new_names[form]);
		recorded(cxx_new_triggers[form], &bytes, &blocks);
		cr_expect_eq(bytes, size, "%s: %lu bytes outstanding, expected %lu", new_names[form], bytes, size);
		cr_expect_eq(blocks, 1, "%s: %lu blocks outstanding", new_names[form], blocks);
	}
}

static const char *const delete_names[CXX_DELETE_FORMS] = {
	"delete", "delete[]", "delete(size)", "delete[](size)", "delete(nothrow)", "delete[](nothrow)",
	"delete(align)", "delete[](align)", "delete(size, align)", "delete[](size, align)",
	"delete(align, nothrow)", "delete[](align, nothrow)",
};

/* Every delete form releases its block once, although libstdc++'s forms
 * tail-jump into one another and into free. */
Test(bpf_probes, every_operator_delete_frees_once)
{
	for (int form = 0; form < CXX_DELETE_FORMS; form++) {
		bool aligned = form >= CXX_DELETE_ALIGNED;
		bool array = form & 1;
		int nform = (array ? CXX_NEW_ARRAY : CXX_NEW) + (aligned ? CXX_NEW_ALIGNED : 0);
		uint64_t bytes, blocks, size = 24 + 8 * form;
		struct counts before;
		void *p;

		p = cxx_new_triggers[nform](size, 64);
		cr_assert(p);
		recorded(cxx_new_triggers[nform], &bytes, &blocks);
		cr_expect_eq(blocks, 1, "%s: the block to delete was not recorded", delete_names[form]);
		counts_now(&before);
		cxx_delete(form, p, size, 64);
		expect_deltas(&before, 0, 1, 0, delete_names[form]);
		recorded(cxx_new_triggers[nform], &bytes, &blocks);
		cr_expect_eq(blocks, 0, "%s: %lu blocks still outstanding", delete_names[form], blocks);
	}
	/* delete of a null pointer: nothing at all. */
	for (int form = 0; form < CXX_DELETE_FORMS; form++) {
		struct counts before;

		counts_now(&before);
		cxx_delete(form, NULL, 8, 64);
		expect_deltas(&before, 0, 0, 0, delete_names[form]);
	}
}

/*
 * A failing nothrow new returns NULL: counted as failed, never recorded.
 * Inside it libstdc++'s throwing new throws std::bad_alloc and catches it:
 * the exception object is an ordinary malloc'ed and freed block. The next
 * call in the same frame is recorded.
 */
Test(bpf_probes, failed_nothrow_new_is_not_recorded)
{
	uint64_t bytes, blocks;
	struct counts before;
	void *p = NULL;

	counts_now(&before);
	cr_assert_eq(cxx_new_after_nothrow_failure(SIZE_MAX - 4096, 72, &p), 1);
	keep[0] = p;
	cr_assert(p);
	expect_deltas(&before, 2, 1, 1, "nothrow new failure, then nothrow new");
	recorded_span(cxx_new_after_nothrow_failure, 1024, &bytes, &blocks);
	cr_expect_eq(bytes, 72);
	cr_expect_eq(blocks, 1);
}

/*
 * operator new that throws std::bad_alloc (caught) must leave the program
 * working (no return probe on new: the unwinder cannot pass a uretprobe
 * trampoline) and must not make the thread's later calls look nested: a
 * new in the very frame that caught it (same stack pointer) is recorded,
 * and so are later calls from deeper frames.
 */
Test(bpf_probes, new_after_bad_alloc_is_recorded)
{
	uint64_t bytes, blocks;
	struct counts before;
	void *p = NULL;

	counts_now(&before);
	cr_assert_eq(cxx_new_after_throw(SIZE_MAX - 4096, 88, &p), 1, "operator new(huge) did not throw");
	keep[0] = p;
	/* The exception object (allocated and freed), then the new. */
	expect_deltas(&before, 2, 1, 1, "bad_alloc, then new");
	recorded_span(cxx_new_after_throw, 1024, &bytes, &blocks);
	cr_expect_eq(bytes, 88);
	cr_expect_eq(blocks, 1);

	counts_now(&before);
	keep[1] = cxx_new_triggers[CXX_NEW](56, 0);
	keep[2] = trig_malloc(48);
	cxx_delete(CXX_DELETE, keep[1], 0, 0);
	free(keep[2]);
	expect_deltas(&before, 2, 2, 0, "new, malloc, delete, free after bad_alloc");
}

/* ---- anonymous mmap/munmap/mremap: a separate kind (STRAY_KIND_MMAP) ---- */

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PG ((size_t)sysconf(_SC_PAGESIZE))

/* Outstanding bytes and blocks of kind at trigger fn's sites. */
static void recorded_kind(const void *fn, uint32_t kind, uint64_t *bytes, uint64_t *blocks)
{
	recorded_where(fn, 256, kind, bytes, blocks);
}

static void expect_mapped(const void *fn, uint64_t bytes, uint64_t blocks, const char *what)
{
	uint64_t b, n;

	recorded_kind(fn, STRAY_KIND_MMAP, &b, &n);
	cr_expect_eq(b, bytes, "%s: %lu mmap bytes recorded, expected %lu", what, b, bytes);
	cr_expect_eq(n, blocks, "%s: %lu regions recorded, expected %lu", what, n, blocks);
}

TRIGGER static void *trig_mmap(size_t len, int flags, int fd)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);

	BARRIER();
	return p;
}

TRIGGER static int trig_munmap(void *p, size_t len)
{
	int rc = munmap(p, len);

	BARRIER();
	return rc;
}

TRIGGER static void *trig_mremap(void *old, size_t old_size, size_t new_size, int flags, void *to)
{
	void *p = mremap(old, old_size, new_size, flags, to);

	BARRIER();
	return p;
}

/* A function that both mallocs and mmaps: two sites, one per kind. */
TRIGGER static void *trig_both(void **block)
{
	void *p;

	*block = malloc(300);
	BARRIER();
	p = mmap(NULL, 5000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	BARRIER();
	return p;
}

Test(bpf_probes, anonymous_mmap_is_recorded_in_whole_pages_and_unmapped)
{
	uint64_t maps = kernel_counter(STRAY_CNT_MAPS), unmaps = kernel_counter(STRAY_CNT_UNMAPS);
	uint64_t allocs = kernel_counter(STRAY_CNT_ALLOCS);
	void *p = trig_mmap(10000, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	void *q = trig_mmap(PG, MAP_SHARED | MAP_ANONYMOUS, -1);
	uint64_t bytes, blocks;

	cr_assert(p != MAP_FAILED && q != MAP_FAILED);
	/* read before any harvest: the drain itself allocates */
	cr_expect_eq(kernel_counter(STRAY_CNT_ALLOCS), allocs, "regions are not heap allocations");
	expect_mapped(trig_mmap, 3 * PG + PG, 2, "private + shared");
	recorded_kind(trig_mmap, STRAY_KIND_HEAP, &bytes, &blocks);
	cr_expect_eq(blocks, 0, "an mmap region is not a heap block");
	cr_expect_eq(kernel_counter(STRAY_CNT_MAPS) - maps, 2);
	cr_assert_eq(trig_munmap(p, 10000), 0);
	cr_assert_eq(trig_munmap(q, PG), 0);
	expect_mapped(trig_mmap, 0, 0, "unmapped");
	cr_expect_eq(kernel_counter(STRAY_CNT_UNMAPS) - unmaps, 2);
}

Test(bpf_probes, file_mappings_and_thread_stacks_are_ignored)
{
	int fd = open("/proc/self/exe", O_RDONLY);
	void *p, *s;

	cr_assert(fd >= 0);
	p = mmap(NULL, 3 * PG, PROT_READ, MAP_PRIVATE, fd, 0);
	BARRIER();
	cr_assert(p != MAP_FAILED);
	s = trig_mmap(4 * PG, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1);
	cr_assert(s != MAP_FAILED);
	p = trig_mmap(2 * PG, MAP_PRIVATE, fd);
	cr_assert(p != MAP_FAILED);
	expect_mapped(trig_mmap, 0, 0, "file mapping / MAP_STACK");
	close(fd);
}

Test(bpf_probes, map_failed_is_never_recorded)
{
	uint64_t maps = kernel_counter(STRAY_CNT_MAPS);

	/* neither MAP_PRIVATE nor MAP_SHARED: EINVAL */
	cr_assert_eq(trig_mmap(PG, MAP_ANONYMOUS, -1), MAP_FAILED);
	/* far more than the address space: ENOMEM */
	cr_assert_eq(trig_mmap((size_t)1 << 62, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1), MAP_FAILED);
	expect_mapped(trig_mmap, 0, 0, "MAP_FAILED");
	cr_expect_eq(kernel_counter(STRAY_CNT_MAPS), maps);
}

Test(bpf_probes, partial_munmap_front_back_middle)
{
	char *f = trig_mmap(4 * PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *b = trig_mmap(4 * PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *m = trig_mmap(4 * PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	uint64_t unmatched = kernel_counter(STRAY_CNT_UNMATCHED_UNMAPS);

	cr_assert(f != MAP_FAILED && b != MAP_FAILED && m != MAP_FAILED);
	expect_mapped(trig_mmap, 12 * PG, 3, "mapped");
	cr_assert_eq(trig_munmap(f, PG), 0); /* front */
	expect_mapped(trig_mmap, 11 * PG, 3, "front");
	cr_assert_eq(trig_munmap(b + 3 * PG, 100), 0); /* back, length rounded up */
	expect_mapped(trig_mmap, 10 * PG, 3, "back");
	cr_assert_eq(trig_munmap(m + PG, 2 * PG), 0); /* middle: two regions */
	expect_mapped(trig_mmap, 8 * PG, 4, "middle");
	/* The shrunk and split pieces are regions of their own. */
	cr_assert_eq(trig_munmap(f + PG, 3 * PG), 0);
	cr_assert_eq(trig_munmap(b, 3 * PG), 0);
	expect_mapped(trig_mmap, 2 * PG, 2, "front and back pieces unmapped");
	/* One munmap over both middle pieces and the hole between them. */
	cr_assert_eq(trig_munmap(m, 4 * PG), 0);
	expect_mapped(trig_mmap, 0, 0, "all unmapped");
	cr_expect_eq(kernel_counter(STRAY_CNT_UNMATCHED_UNMAPS), unmatched);
	cr_expect_eq(kernel_counter(STRAY_CNT_UNMAP_UNHANDLED), 0);
}

Test(bpf_probes, munmap_over_adjacent_regions)
{
	/* Reserve 6 pages (raw syscall: not seen), then map three 2-page
	 * regions into them with MAP_FIXED through the probed wrapper. */
	char *base = (char *)syscall(SYS_mmap, NULL, 6 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert(base != MAP_FAILED);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(mmap(base + 2 * i * PG, 2 * PG, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), base + 2 * i * PG);
	BARRIER();
	/* pages 1..4: the back of the first, all of the second, the front of the third */
	cr_assert_eq(trig_munmap(base + PG, 4 * PG), 0);
	{
		const struct site_record *recs;
		uint64_t bytes = 0, blocks = 0;
		size_t n;

		drain__free(drain);
		drain = drain__new(loader, 512);
		cr_assert_eq(drain__harvest(drain, getpid(), 0, now_ns(), false), 0);
		recs = drain__records(drain, &n);
		for (size_t i = 0; i < n; i++)
			if (recs[i].kind == STRAY_KIND_MMAP) {
				bytes += recs[i].live.bytes;
				blocks += recs[i].live.allocations;
			}
		cr_expect_eq(bytes, 2 * PG, "%lu bytes left, expected 2 pages", bytes);
		cr_expect_eq(blocks, 2);
	}
	/* MAP_FIXED over a tracked region replaces it. */
	cr_assert_eq(mmap(base, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), base);
	syscall(SYS_munmap, base, 6 * PG);
}

Test(bpf_probes, mremap_grows_and_moves_at_the_old_site)
{
	char *p = trig_mmap(PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	char *to = (char *)syscall(SYS_mmap, NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q, *r;

	cr_assert(p != MAP_FAILED && to != MAP_FAILED);
	q = trig_mremap(p, PG, 3 * PG, MREMAP_MAYMOVE, NULL);
	cr_assert(q != MAP_FAILED);
	expect_mapped(trig_mmap, 3 * PG, 1, "grown");
	expect_mapped(trig_mremap, 0, 0, "mremap keeps the mmap's site");
	/* forced move to a fixed address, and a shrink on the way */
	r = trig_mremap(q, 3 * PG, 2 * PG + 1, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	cr_assert_eq(r, to);
	expect_mapped(trig_mmap, 3 * PG, 1, "moved");
	/* a failed mremap keeps the region */
	cr_assert_eq(trig_mremap(r, 3 * PG, (size_t)1 << 62, 0, NULL), MAP_FAILED);
	expect_mapped(trig_mmap, 3 * PG, 1, "failed mremap");
	cr_assert_eq(trig_munmap(r, 3 * PG), 0);
	expect_mapped(trig_mmap, 0, 0, "unmapped after the move");
	syscall(SYS_munmap, to, 8 * PG);
}

Test(bpf_probes, mmap_and_malloc_in_one_function_are_two_sites)
{
	void *block;
	void *p = trig_both(&block);
	uint64_t bytes, blocks;

	cr_assert(p != MAP_FAILED && block);
	expect_mapped(trig_both, 2 * PG, 1, "mmap kind");
	recorded_kind(trig_both, STRAY_KIND_HEAP, &bytes, &blocks);
	cr_expect_eq(bytes, 300);
	cr_expect_eq(blocks, 1);
	free(block);
	munmap(p, 5000);
}

/* glibc's malloc maps blocks of 128 KiB and more itself (and realloc
 * remaps them): inside a probed call those are nested, not regions. */
Test(bpf_probes, large_malloc_is_one_heap_block_not_a_region)
{
	uint64_t maps = kernel_counter(STRAY_CNT_MAPS), bytes, blocks;

	keep[0] = trig_malloc(1 << 20);
	cr_assert(keep[0]);
	recorded(trig_malloc, &bytes, &blocks);
	cr_expect_eq(bytes, 1 << 20);
	cr_expect_eq(blocks, 1);
	keep[0] = trig_realloc(keep[0], 4 << 20);
	cr_assert(keep[0]);
	recorded(trig_realloc, &bytes, &blocks);
	cr_expect_eq(bytes, 4 << 20);
	cr_expect_eq(blocks, 1);
	cr_expect_eq(kernel_counter(STRAY_CNT_MAPS), maps, "malloc's own mmap was recorded");
	expect_mapped(trig_malloc, 0, 0, "malloc");
	expect_mapped(trig_realloc, 0, 0, "realloc");
	free(keep[0]);
	recorded(trig_realloc, &bytes, &blocks);
	cr_expect_eq(blocks, 0);
}
