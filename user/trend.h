/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Growth over time: a bounded history per call site (a ring of its live
 * bytes at each drain) and per series, and the assessment of each: growth
 * rate, significance, boundedness, a score and a verdict. Pure C, no I/O.
 */
#ifndef STRAY_TREND_H
#define STRAY_TREND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum verdict {
	VERDICT_TRANSIENT, /* comes and goes: little of its peak is still held */
	VERDICT_STABLE,    /* holds memory without a significant trend (a filled cache) */
	VERDICT_GROWING,   /* grows, but releases most of what it allocates, or too few points */
	VERDICT_LEAK,      /* significant, sustained growth of memory it does not release */
};

const char *verdict__name(enum verdict v); /* "transient", "stable", "growing", "leak" */

struct trend_opts {
	size_t min_points; /* intervals before anything is called a trend (default 10) */
	double alpha;      /* significance level of Mann–Kendall (default 0.05) */
};

/* Assessment of one series (a site's live bytes, or a process's RSS). */
struct trend {
	size_t points;          /* points the assessment used */
	double slope_per_s;     /* Theil–Sen over the whole history, units per second */
	double recent_slope_per_s; /* Theil–Sen over the most recent half */
	double p;               /* Mann–Kendall two-sided p over the whole history */
	double recent_p;        /* ... over the most recent half */
	bool significant;       /* enough points, p < alpha and slope > 0 */
	bool sustained;         /* significant and still growing in the recent half
				   (recent_p < alpha, recent slope > 0): not a plateau */
};

/* Longer series are thinned to this many evenly spaced points. */
#define TREND_MAX_POINTS 128

/*
 * Assess a series of (t_s, value) points in time order. A series longer
 * than TREND_MAX_POINTS is thinned to that many evenly spaced points
 * spanning all of it.
 */
void trend__assess(const double *t_s, const double *v, size_t n, const struct trend_opts *o,
		   struct trend *out);

/* One site's state at one drain. */
struct site_point {
	double t_s;
	double live_bytes;
	double alloc_bytes; /* everything the site allocated so far (cumulative); 0: unknown */
};

struct site_history;

/*
 * max_sites: bound on sites with a history; when full, the site with the
 * fewest live bytes is dropped (and counted) to make room for a larger
 * one. ring: points kept per site (older points are overwritten).
 */
struct site_history *site_history__new(size_t max_sites, size_t ring);
void site_history__free(struct site_history *h);

/* Record site (pid, hash)'s live bytes at this drain. Returns 0 or -errno
 * (-ENOSPC: full and the site is smaller than every tracked one). */
int site_history__add(struct site_history *h, int pid, uint64_t hash, const struct site_point *p);

/* Sites dropped for lack of room so far. */
uint64_t site_history__dropped(const struct site_history *h);

/* What a site did in the window, for boundedness. */
struct site_totals {
	double live_bytes;   /* outstanding now */
	double alloc_bytes;  /* allocated in the window */
	double free_bytes;   /* freed in the window */
	double oldest_age_s; /* age of its oldest outstanding block */
	double window_s;     /* length of the window so far */
};

struct site_assessment {
	struct trend trend;
	double growth_bytes_per_s;
	double trend_p;
	double release_ratio; /* free_bytes / alloc_bytes */
	double score;
	enum verdict verdict;
};

/*
 * Assess site (pid, hash). exited: the window ended with the process's
 * exit (run mode), so a site without enough history that still holds
 * memory is a leak as LeakSanitizer would report it. Sites without
 * history are assessed from totals alone.
 *
 * Verdict: leak = sustained significant growth with release_ratio < 0.9;
 * growing = significant growth otherwise, or too few points with memory
 * held; stable = memory held without a significant trend or after a
 * plateau; transient = live bytes under 10% of the site's peak in the
 * history, or nothing outstanding.
 * (leak and growing also need the growth to be material: over the recent
 * half the site gained at least 2% of its live bytes, so a noisy plateau
 * that Mann–Kendall flags by chance stays stable; see trend.c.)
 * Sites dropped from a full history count once per refused or evicted add.
 * Score: higher ranks first; a steady leak scores above a filled cache,
 * and a sawtooth below both (see trend.c for the formula).
 */
void site_history__assess(const struct site_history *h, int pid, uint64_t hash,
			  const struct site_totals *totals, const struct trend_opts *o, bool exited,
			  struct site_assessment *out);

#endif /* STRAY_TREND_H */
