/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The report: everything a writer needs, already symbolized, with no
 * pointers into BPF maps or libdw. Built by main from the drain and
 * analysis results; read by the JSON and text writers.
 */
#ifndef STRAY_REPORT_H
#define STRAY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPORT_VERSION 1

/* One symbolized stack frame. Strings may be NULL (unknown); they are
 * owned by whoever built the report (normally the symbolizer) and must
 * outlive the writers' use of the report. */
struct report_frame {
	uint64_t address;     /* return address as captured */
	const char *module;   /* path of the mapped object, or "[unknown]" */
	const char *function; /* demangled name, or NULL */
	int64_t offset;       /* address - symbol start; -1 when function is NULL */
	const char *file;     /* source file, or NULL */
	int line;             /* source line, 0 when unknown */
	bool inlined;         /* function was inlined into the next frame's */
};

struct report_suspect {
	int pid;
	const char *kind;     /* "heap" (malloc family, operator new) or "mmap" */
	uint64_t bytes;       /* outstanding bytes at the end of the window */
	uint64_t allocations; /* outstanding blocks at the end of the window */
	double oldest_age_s;  /* age of the oldest outstanding block */
	uint64_t total_bytes; /* everything this site allocated in the window */
	uint64_t total_allocations;
	uint64_t frees;
	/* growth over the window (trend analysis) */
	double growth_bytes_per_s; /* Theil–Sen slope of its live bytes */
	double trend_p;            /* Mann–Kendall p-value; NaN when not assessed */
	double score;              /* higher ranks first */
	const char *verdict;       /* "leak", "growing", "stable", "transient" */
	int rank;                  /* 1 = highest score */
	size_t nframes;
	struct report_frame *frames; /* frames[0]: the allocator's caller */
	/* --sample: bytes, allocations, totals and frees are estimates */
	bool sampled;
	uint64_t samples;      /* outstanding blocks sampled */
	double relative_error; /* standard error of bytes / bytes */
};

/* The robust trend of one heap series. */
struct report_trend {
	double slope_bytes_per_hour; /* Theil–Sen */
	double p;                    /* Mann–Kendall, NaN when not assessed */
	bool significant, sustained;
};

struct alert;

/* Timers created in the window and still held at its end, grouped by
 * creation stack (issue: timer leaks). */
struct report_timer {
	const char *kind;     /* "timerfd", "posix", "uv_timer" */
	int pid;
	uint64_t outstanding; /* created in the window, not released */
	uint64_t armed;       /* of those, armed at the end */
	uint64_t periodic;    /* of those, armed with a repeat interval */
	int64_t interval_ns;  /* the repeat interval when all periodic ones share it, else -1 (null) */
	size_t nframes;
	struct report_frame *frames; /* creation stack, frames[0]: the caller */
};

/* An interval timer of setitimer(2)/alarm(2): at most one per kind and process. */
struct report_itimer {
	int pid;
	const char *which;    /* "real", "virtual", "prof" */
	int64_t value_ns;     /* time to the next expiry */
	int64_t interval_ns;  /* 0 for a one-shot timer */
};

struct report_heap_sample {
	double t_s;
	uint64_t rss_bytes;
	uint64_t anon_bytes;
	uint64_t tracked_bytes;
};

struct report_counter {
	const char *name;
	uint64_t value;
};

struct report {
	/* target */
	size_t npids;
	const int *pids;
	char *const *command; /* NULL-terminated argv, or NULL in -p mode */
	bool has_exit_code;
	int exit_code;
	/* window */
	double duration_s;
	/* totals */
	uint64_t allocations;
	uint64_t frees;
	uint64_t outstanding_bytes;
	uint64_t outstanding_allocations;
	uint64_t unmatched_frees;
	/* anonymous mmap regions, apart from the heap totals above */
	uint64_t mmap_regions;            /* regions recorded in the window */
	uint64_t munmaps;                 /* regions released whole */
	uint64_t outstanding_mmap_bytes;
	uint64_t outstanding_mmap_regions;
	uint64_t unmatched_unmaps;        /* unmaps of no tracked region */
	/* blocks and regions the full outstanding-allocation map could not
	 * take (--max-allocs): missing from the outstanding figures */
	uint64_t untracked_allocations;
	uint64_t untracked_bytes;
	size_t ndropped;
	const struct report_counter *dropped; /* every drop counter, zero or not */
	/* suspects, sorted by bytes descending */
	size_t nsuspects;
	const struct report_suspect *suspects;
	/* heap */
	size_t nsamples;
	const struct report_heap_sample *samples;
	double rss_slope_bytes_per_hour;
	double tracked_slope_bytes_per_hour;
	struct report_trend rss_trend, anon_trend, tracked_trend;
	/* the target's memory cgroup, when it has a limit */
	bool has_cgroup;
	const char *cgroup_path;
	uint64_t cgroup_limit_bytes, cgroup_usage_bytes;
	double cgroup_projected_s; /* time to the limit at the current slope; < 0: none */
	/* alerts raised in the window */
	size_t nalerts;
	const struct alert *alerts;
	/* timers, sorted by outstanding descending */
	size_t ntimers;
	const struct report_timer *timers;
	size_t nitimers;
	const struct report_itimer *itimers;
	uint64_t timers_created;
	uint64_t timers_released;
	/* what could not be seen, one sentence each (e.g. "allocations made
	 * before attach are not reported") */
	size_t nnotes;
	const char *const *notes;
	/* --sample: mean bytes between samples; 0: exact tracking */
	uint64_t sample_bytes;
};

#endif /* STRAY_REPORT_H */
