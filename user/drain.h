/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Drain: batch-read the kernel maps into user-space state. Once per
 * interval it sums tracked bytes and reclaims idle sites; at a process's
 * exit and at the end of the window it harvests outstanding allocations
 * into a bounded table of per-site records.
 */
#ifndef STRAY_DRAIN_H
#define STRAY_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "analysis.h"
#include "loader.h"
#include "sampling.h"

struct site_record {
	struct site_live live;
	bool frozen;    /* from an exited process: kept across snapshots */
	uint32_t kind;  /* enum stray_kind: the site's blocks are all of one kind */
	uint32_t depth; /* 0: stack lost (site reclaimed or sites map full) */
	uint64_t ips[STRAY_MAX_STACK_DEPTH];
	/* --sample: the estimate behind live.bytes and live.allocations
	 * (heap sites; an mmap site is always exact) */
	struct sample_estimate sampled;
};

/* A site's state as the per-interval pass sees it. */
struct site_view {
	int pid;
	uint64_t stack_hash;
	int64_t live_bytes, live_count;
	uint64_t alloc_bytes, free_bytes;
};

typedef void (*site_view_fn)(const struct site_view *v, void *ctx);

/* Counters kept by user space, reported beside the kernel's. */
enum drain_counter {
	DRAIN_CNT_STACK_LOST,        /* outstanding block whose site record is gone */
	DRAIN_CNT_REPORT_TABLE_FULL, /* site not reported: record table full */
	DRAIN_CNT_SITES_RECLAIMED,   /* idle sites deleted to make room */
	DRAIN_CNT_NR,
};

struct drain;

struct drain *drain__new(struct loader *l, size_t max_records);
void drain__free(struct drain *d);

/* Sum of the per-CPU kernel counters. Returns 0 or -errno. */
int drain__kernel_counters(struct drain *d, uint64_t out[STRAY_CNT_NR]);
const uint64_t *drain__counters(const struct drain *d); /* DRAIN_CNT_NR values */

/*
 * The per-interval pass over the sites map: *tracked_bytes receives the
 * live bytes of process pid's sites (all processes for pid -1). When the
 * map is more than three quarters full, sites with nothing outstanding are
 * deleted so new stacks can still be recorded. Returns 0 or -errno.
 */
int drain__sites_pass(struct drain *d, int pid, uint64_t *tracked_bytes, site_view_fn visit,
		      void *ctx);

/* The stack of site (pid, hash) as the kernel holds it now: up to
 * STRAY_MAX_STACK_DEPTH return addresses into ips. Returns the depth, or
 * -ENOENT when the site is gone. */
int drain__site_stack(struct drain *d, int pid, uint64_t stack_hash, uint64_t *ips);

/*
 * Start a new snapshot of live processes: drop the records and outstanding
 * totals of the previous live harvest, keeping the frozen records of exited
 * processes, so drain__harvest(d, -1, ..., false) can run once per report
 * (watch mode rewrites the report periodically) without counting twice.
 */
void drain__begin_snapshot(struct drain *d);

/*
 * Fold the outstanding allocations of pid (every process for pid -1) into
 * the record table. Blocks younger than min_age_ns at now_ns still count in
 * the outstanding totals but not in the records. With remove, the pid's
 * kernel state is deleted afterwards (its process has exited) and its
 * records are frozen: they survive drain__begin_snapshot().
 * Returns 0 or -errno.
 */
int drain__harvest(struct drain *d, int pid, uint64_t min_age_ns, uint64_t now_ns, bool remove);

/* Delete pid's outstanding allocations and sites without reporting them:
 * its exec replaced the address space that held them. Returns 0 or -errno. */
int drain__forget(struct drain *d, int pid);

/* Like drain__forget, for the blocks of pid allocated before before_ns
 * only (an exec seen after the fact, in -p --follow mode: the new image
 * may already have allocated). Sites stay. Returns 0 or -errno. */
int drain__forget_before(struct drain *d, int pid, uint64_t before_ns);

/* Outstanding totals over every harvest so far: heap blocks only (what
 * Valgrind calls "in use"); anonymous mmap regions apart. With --sample,
 * heap figures (here, in the records and in site views) are estimates. */
void drain__outstanding(const struct drain *d, uint64_t *bytes, uint64_t *allocations);
void drain__outstanding_mmap(const struct drain *d, uint64_t *bytes, uint64_t *regions);

/* All records harvested so far (array valid until the next harvest). */
const struct site_record *drain__records(const struct drain *d, size_t *n);
const struct site_record *drain__find_record(const struct drain *d, int pid, uint64_t stack_hash);

#endif /* STRAY_DRAIN_H */
