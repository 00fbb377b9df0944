/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between stray's BPF programs and user space: map keys and values,
 * limits and drop counters. Fixed-width __u32/__u64 only; user space
 * _Static_asserts every size so a layout change cannot go unnoticed.
 */
#ifndef STRAY_H
#define STRAY_H

#ifndef __VMLINUX_H__ /* user space: BPF code gets the types from vmlinux.h */
#include <linux/types.h>
#endif

/* Deepest user stack captured per allocation site (frames). */
#define STRAY_MAX_STACK_DEPTH 64

/* Default map capacities; user space may override them before load. */
#define STRAY_DEFAULT_MAX_ALLOCS (1u << 20)
#define STRAY_DEFAULT_MAX_SITES (1u << 14)
#define STRAY_DEFAULT_MAX_INFLIGHT (1u << 14)

/* The allocator entry points stray probes. Order is ABI: user space indexes
 * its symbol tables with it. */
enum stray_fn {
	STRAY_FN_MALLOC,
	STRAY_FN_CALLOC,
	STRAY_FN_REALLOC,
	STRAY_FN_REALLOCARRAY,
	STRAY_FN_FREE,
	STRAY_FN_POSIX_MEMALIGN,
	STRAY_FN_ALIGNED_ALLOC,
	STRAY_FN_MEMALIGN,
	STRAY_FN_VALLOC,
	STRAY_FN_PVALLOC,
	STRAY_FN_COUNT,
};

/* Drop and event counters, one slot each in the per-CPU "counters" map. */
enum stray_counter {
	STRAY_CNT_ALLOCS,          /* allocations recorded */
	STRAY_CNT_FREES,           /* frees matched to a recorded allocation */
	STRAY_CNT_UNMATCHED_FREES, /* free of an address never recorded (e.g. before attach) */
	STRAY_CNT_FAILED_ALLOCS,   /* allocator returned NULL / error: not recorded */
	STRAY_CNT_ALLOC_MAP_FULL,  /* allocation not tracked: allocs map full */
	STRAY_CNT_SITE_MAP_FULL,   /* allocation tracked without a stack: sites map full */
	STRAY_CNT_INFLIGHT_FULL,   /* call not tracked: inflight map full */
	STRAY_CNT_MISSING_ENTRY,   /* return probe without a matching entry */
	STRAY_CNT_STACK_ERRORS,    /* bpf_get_stack failed */
	STRAY_CNT_STACK_COLLISIONS,/* two different stacks hashed to one site key */
	STRAY_CNT_DUPLICATE_ADDR,  /* allocation returned an address already live */
	STRAY_CNT_STALE_INFLIGHT,  /* in-flight record whose return was never seen */
	STRAY_CNT_NR,
};

/* Key of the outstanding-allocation map: one entry per live block. */
struct stray_alloc_key {
	__u32 tgid;
	__u32 pad;
	__u64 addr;
};

/* Key of a call site: the process and a hash of its user stack. Stack
 * addresses are per process (ASLR), so the tgid is part of the identity. */
struct stray_site_key {
	__u32 tgid;
	__u32 pad;
	__u64 stack_hash;
};

struct stray_alloc {
	__u64 size;
	__u64 ts_ns; /* bpf_ktime_get_ns() at allocation */
	__u64 stack_hash;
	__u32 fn; /* enum stray_fn that made it */
	__u32 pad;
};

/* Per-site aggregate, updated with atomic adds by every CPU. */
struct stray_site {
	__s64 live_bytes;
	__s64 live_count;
	__u64 alloc_bytes;
	__u64 alloc_count;
	__u64 free_bytes;
	__u64 free_count;
	__u32 depth; /* valid entries in ips[] */
	__u32 pad;
	/* Return addresses, innermost first: ips[0] is in the function that
	 * called the allocator. */
	__u64 ips[STRAY_MAX_STACK_DEPTH];
};

/* One call in flight per thread. Keyed by thread id only: allocator entry
 * points call each other (realloc(NULL, n) -> malloc, reallocarray ->
 * realloc, realloc(p, 0) -> free), and only the outermost call may be
 * recorded, so nesting is tracked as a depth on the thread's one entry. */
struct stray_inflight {
	__u64 size;
	__u64 ptr_arg;  /* realloc's old pointer, posix_memalign's memptr */
	__u64 sp;       /* user stack pointer at entry (points at the return address) */
	__u32 fn;
	__u32 depth;
	__u32 has_old;  /* old block was moved out of the allocs map at entry */
	__u32 pad;
	struct stray_alloc old; /* realloc's old block, restored if realloc fails */
};

struct stray_counters {
	__u64 v[STRAY_CNT_NR];
};

#endif /* STRAY_H */
