// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Growth over time: trend assessment of a series, a bounded per-site
 * history of live bytes, and the verdict and score of each site.
 *
 * The question every rule here answers is "is this memory still piling up,
 * or did it stop?" A leak keeps growing to the end of the window; a cache
 * grows, then holds a plateau while it churns; a batch buffer grows and is
 * freed again. The whole history says whether it grew at all, the most
 * recent half says whether it is still growing, and the freed/allocated
 * ratio says whether the site gives memory back.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "stats.h"
#include "trend.h"

#define DEFAULT_MIN_POINTS 10
#define DEFAULT_ALPHA 0.05
/* Mann–Kendall on 4 points cannot reach p < 0.05 even when strictly
 * increasing (p = 0.089); 5 is the fewest that can (p = 0.0275). */
#define RECENT_MIN_POINTS 5
/* A site holding less than this fraction of its peak gave its memory back. */
#define TRANSIENT_FRAC 0.10
/* Releasing at least this fraction of what it allocated is churn, not a leak. */
#define LEAK_MAX_RELEASE 0.9
/*
 * Mann–Kendall detects a monotone drift of any size, and on a plateau with
 * noise the recent half comes out "significant" by chance in alpha/2 of the
 * drains, which over a long run means some drain almost surely does. Growth
 * is also required to matter: over the recent half the site must have
 * gained at least this fraction of its live bytes. A leak that started in
 * the window gains about half its bytes there; a cache plateau wobbling by
 * less than 2% of its size can never pass.
 */
#define MIN_RECENT_GROWTH_FRAC 0.02
/*
 * A leak keeps a real share of what it allocates: over the recent half, the
 * live bytes must grow by at least this fraction of the bytes allocated.
 * Measured on the window itself, not on matched frees: attached to a
 * running process, a cache that replaces entries allocated before the
 * attach sees those frees as unmatched, so its tracked live bytes step up
 * while it only churns (its retained share stays near zero).
 */
#define LEAK_MIN_RETAINED 0.25

const char *verdict__name(enum verdict v)
{
	switch (v) {
	case VERDICT_TRANSIENT:
		return "transient";
	case VERDICT_STABLE:
		return "stable";
	case VERDICT_GROWING:
		return "growing";
	case VERDICT_LEAK:
		return "leak";
	}
	return "unknown";
}

static size_t opts_min_points(const struct trend_opts *o)
{
	return o && o->min_points ? o->min_points : DEFAULT_MIN_POINTS;
}

static double opts_alpha(const struct trend_opts *o)
{
	return o && o->alpha > 0 && o->alpha < 1 ? o->alpha : DEFAULT_ALPHA;
}

/*
 * TREND_MAX_POINTS evenly spaced points of a longer series, first and last
 * included. The statistics are O(n^2) in time and Theil–Sen in memory:
 * thinning keeps every assessment cheap and bounded however long the
 * history, while still covering all of it (not just its tail).
 */
static void thin(const double *t_s, const double *v, size_t n, double *out_t, double *out_v)
{
	for (size_t i = 0; i < TREND_MAX_POINTS; i++) {
		size_t src = i * (n - 1) / (TREND_MAX_POINTS - 1);

		out_t[i] = t_s[src];
		out_v[i] = v[src];
	}
}

void trend__assess(const double *t_s, const double *v, size_t n, const struct trend_opts *o,
		   struct trend *out)
{
	double thin_t[TREND_MAX_POINTS], thin_v[TREND_MAX_POINTS];
	struct mann_kendall mk, rmk;
	size_t min_points = opts_min_points(o), half, rn;
	double alpha = opts_alpha(o);

	if (!out)
		return;
	*out = (struct trend){ .p = 1.0, .recent_p = 1.0 };
	if (!t_s || !v)
		return;
	if (n > TREND_MAX_POINTS) {
		thin(t_s, v, n, thin_t, thin_v);
		t_s = thin_t;
		v = thin_v;
		n = TREND_MAX_POINTS;
	}
	/* The recent half is the later one, and takes the middle point of an
	 * odd count: it is what must still be growing. */
	half = n / 2;
	rn = n - half;

	stats__mann_kendall(v, n, &mk);
	stats__mann_kendall(v + half, rn, &rmk);
	out->points = n;
	out->slope_per_s = stats__theil_sen(t_s, v, n);
	out->recent_slope_per_s = stats__theil_sen(t_s + half, v + half, rn);
	out->p = mk.p;
	out->recent_p = rmk.p;
	out->significant = n >= min_points && mk.p < alpha && out->slope_per_s > 0;
	out->sustained = out->significant && rn >= RECENT_MIN_POINTS && rmk.p < alpha &&
			 out->recent_slope_per_s > 0;
}

/* ---- per-site history ---------------------------------------------------- */

struct sh_site {
	int pid;
	uint64_t hash;
	struct site_point *pts; /* ring of h->ring points, allocated on first use */
	size_t head;            /* next ring slot to write */
	size_t count;           /* points held, <= ring */
	size_t heap_pos;        /* this site's index in h->heap */
	double latest;          /* live bytes of the newest point: the eviction key */
};

/*
 * Sites occupy slots [0, nsites) of sites[] and are never removed, only
 * replaced in place on eviction, so no free list is needed. Lookup is an
 * open-addressed table of slot+1 (0 = empty) with linear probing, kept at
 * most half full. Eviction needs the site with the fewest live bytes at
 * every add once full: a min-heap on `latest` makes that O(log n) instead
 * of a scan of every site per newcomer.
 */
struct site_history {
	size_t max_sites;
	size_t ring;
	size_t nsites;
	struct sh_site *sites;
	size_t *table;
	size_t mask;
	size_t *heap;
	uint64_t dropped;
};

static size_t sh_bucket(const struct site_history *h, int pid, uint64_t hash)
{
	/* splitmix64 finaliser: stack hashes may share low bits. */
	uint64_t k = hash ^ ((uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ULL);

	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ULL;
	k = (k ^ (k >> 27)) * 0x94d049bb133111ebULL;
	k ^= k >> 31;
	return (size_t)k & h->mask;
}

/* Table position holding (pid, hash), or of the empty bucket ending its probe. */
static size_t sh_probe(const struct site_history *h, int pid, uint64_t hash)
{
	size_t b = sh_bucket(h, pid, hash);

	while (h->table[b]) {
		const struct sh_site *s = &h->sites[h->table[b] - 1];

		if (s->pid == pid && s->hash == hash)
			return b;
		b = (b + 1) & h->mask;
	}
	return b;
}

static struct sh_site *sh_find(const struct site_history *h, int pid, uint64_t hash)
{
	size_t b = sh_probe(h, pid, hash);

	return h->table[b] ? &h->sites[h->table[b] - 1] : NULL;
}

/* Remove the entry at bucket b, shifting later entries of its probe run
 * back so lookups never stop early (no tombstones to accumulate). */
static void sh_table_delete(struct site_history *h, size_t b)
{
	size_t j = b;

	for (;;) {
		const struct sh_site *s;
		size_t home;

		j = (j + 1) & h->mask;
		if (!h->table[j])
			break;
		s = &h->sites[h->table[j] - 1];
		home = sh_bucket(h, s->pid, s->hash);
		/* The entry at j may stay if its home lies cyclically in (b, j]. */
		if (b <= j ? (b < home && home <= j) : (b < home || home <= j))
			continue;
		h->table[b] = h->table[j];
		b = j;
	}
	h->table[b] = 0;
}

static void sh_heap_swap(struct site_history *h, size_t a, size_t b)
{
	size_t t = h->heap[a];

	h->heap[a] = h->heap[b];
	h->heap[b] = t;
	h->sites[h->heap[a]].heap_pos = a;
	h->sites[h->heap[b]].heap_pos = b;
}

static double sh_key(const struct site_history *h, size_t pos)
{
	return h->sites[h->heap[pos]].latest;
}

/* Restore the heap after the key at pos changed either way. */
static void sh_heap_fix(struct site_history *h, size_t pos)
{
	while (pos > 0 && sh_key(h, pos) < sh_key(h, (pos - 1) / 2)) {
		sh_heap_swap(h, pos, (pos - 1) / 2);
		pos = (pos - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * pos + 1, r = l + 1, m = pos;

		if (l < h->nsites && sh_key(h, l) < sh_key(h, m))
			m = l;
		if (r < h->nsites && sh_key(h, r) < sh_key(h, m))
			m = r;
		if (m == pos)
			return;
		sh_heap_swap(h, pos, m);
		pos = m;
	}
}

struct site_history *site_history__new(size_t max_sites, size_t ring)
{
	struct site_history *h;
	size_t cap = 8;

	if (!max_sites || !ring || max_sites > SIZE_MAX / 4 / sizeof(size_t)) {
		errno = EINVAL;
		return NULL;
	}
	while (cap < 2 * max_sites)
		cap *= 2;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->max_sites = max_sites;
	h->ring = ring;
	h->mask = cap - 1;
	h->sites = calloc(max_sites, sizeof(*h->sites));
	h->table = calloc(cap, sizeof(*h->table));
	h->heap = calloc(max_sites, sizeof(*h->heap));
	if (!h->sites || !h->table || !h->heap) {
		site_history__free(h);
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

void site_history__free(struct site_history *h)
{
	if (!h)
		return;
	if (h->sites)
		for (size_t i = 0; i < h->max_sites; i++)
			free(h->sites[i].pts);
	free(h->sites);
	free(h->table);
	free(h->heap);
	free(h);
}

uint64_t site_history__dropped(const struct site_history *h)
{
	return h ? h->dropped : 0;
}

static void sh_ring_push(const struct site_history *h, struct sh_site *s,
			 const struct site_point *p)
{
	s->pts[s->head] = *p;
	s->head = (s->head + 1) % h->ring;
	if (s->count < h->ring)
		s->count++;
	s->latest = p->live_bytes;
}

/* Take a fresh slot for a new site; -ENOMEM leaves the history unchanged. */
static int sh_add_new(struct site_history *h, int pid, uint64_t hash, size_t bucket,
		      const struct site_point *p)
{
	size_t slot = h->nsites;
	struct sh_site *s = &h->sites[slot];

	if (!s->pts) {
		s->pts = calloc(h->ring, sizeof(*s->pts));
		if (!s->pts)
			return -ENOMEM;
	}
	*s = (struct sh_site){ .pid = pid, .hash = hash, .pts = s->pts, .heap_pos = slot };
	sh_ring_push(h, s, p);
	h->table[bucket] = slot + 1;
	h->heap[slot] = slot;
	h->nsites++;
	sh_heap_fix(h, slot);
	return 0;
}

/* Full: the newcomer replaces the site with the fewest live bytes, if it
 * holds more. Either way one site's history is lost, and counted. */
static int sh_add_evict(struct site_history *h, int pid, uint64_t hash,
			const struct site_point *p)
{
	size_t slot = h->heap[0];
	struct sh_site *s = &h->sites[slot];

	h->dropped++;
	if (!(p->live_bytes > s->latest))
		return -ENOSPC;
	sh_table_delete(h, sh_probe(h, s->pid, s->hash));
	*s = (struct sh_site){ .pid = pid, .hash = hash, .pts = s->pts, .heap_pos = 0 };
	sh_ring_push(h, s, p);
	/* Probe after the delete: the shift may have moved the free bucket. */
	h->table[sh_probe(h, pid, hash)] = slot + 1;
	sh_heap_fix(h, 0);
	return 0;
}

int site_history__add(struct site_history *h, int pid, uint64_t hash, const struct site_point *p)
{
	size_t b;

	if (!h || !p || !isfinite(p->t_s) || !isfinite(p->live_bytes))
		return -EINVAL;
	b = sh_probe(h, pid, hash);
	if (h->table[b]) {
		struct sh_site *s = &h->sites[h->table[b] - 1];

		sh_ring_push(h, s, p);
		sh_heap_fix(h, s->heap_pos);
		return 0;
	}
	if (h->nsites < h->max_sites)
		return sh_add_new(h, pid, hash, b, p);
	return sh_add_evict(h, pid, hash, p);
}

/* ---- assessment ---------------------------------------------------------- */

/* A site's newest points, oldest first, at most STATS_MAX_POINTS of them,
 * into t, v (live bytes) and a (cumulative allocated bytes); *peak = the
 * most live bytes in the ring. Returns the count. */
static size_t sh_series(const struct site_history *h, const struct sh_site *s, double *t,
			double *v, double *a, double *peak)
{
	size_t n = s->count < STATS_MAX_POINTS ? s->count : STATS_MAX_POINTS;
	size_t first = (s->head + h->ring - s->count) % h->ring;

	*peak = 0;
	for (size_t i = 0; i < s->count; i++) {
		const struct site_point *pt = &s->pts[(first + i) % h->ring];

		if (pt->live_bytes > *peak)
			*peak = pt->live_bytes;
		if (i >= s->count - n) {
			t[i - (s->count - n)] = pt->t_s;
			v[i - (s->count - n)] = pt->live_bytes;
			a[i - (s->count - n)] = pt->alloc_bytes;
		}
	}
	return n;
}

static double release_ratio(const struct site_totals *tot)
{
	double r;

	if (!(tot->alloc_bytes > 0))
		return 0;
	r = tot->free_bytes / tot->alloc_bytes;
	return r < 0 ? 0 : r > 1 ? 1 : r;
}

/* Did the site gain a material share of its bytes over the recent half? */
static bool recent_growth_material(const struct trend *tr, const double *t, size_t n,
				   double live)
{
	double span;

	if (n < 2)
		return false;
	span = t[n - 1] - t[n / 2];
	return tr->recent_slope_per_s * span >= MIN_RECENT_GROWTH_FRAC * live;
}

/* Share of the bytes allocated over the recent half that is still live; 1
 * when the allocations are unknown (no evidence against a leak). */
static double recent_retained(const double *v, const double *a, size_t n)
{
	double allocated;

	if (n < 2)
		return 1;
	allocated = a[n - 1] - a[n / 2];
	return allocated > 0 ? (v[n - 1] - v[n / 2]) / allocated : 1;
}

static enum verdict decide(const struct trend *tr, bool material, double live, double peak,
			   double release, double retained, size_t min_points, bool exited)
{
	if (!(live > 0) || live < TRANSIENT_FRAC * peak)
		return VERDICT_TRANSIENT;
	if (tr->points < min_points)
		/* Too short to tell a trend; what a process still holds when
		 * it exits is what LeakSanitizer would report. */
		return exited ? VERDICT_LEAK : VERDICT_GROWING;
	if (tr->sustained && material)
		return release < LEAK_MAX_RELEASE && retained >= LEAK_MIN_RETAINED ? VERDICT_LEAK
										     : VERDICT_GROWING;
	/* No trend, a trend that stopped (plateau), or drift too small to
	 * matter: it holds memory but is not piling more up. */
	return VERDICT_STABLE;
}

static double verdict_weight(enum verdict v)
{
	switch (v) {
	case VERDICT_LEAK:
		return 8;
	case VERDICT_GROWING:
		return 3;
	case VERDICT_STABLE:
		return 1;
	case VERDICT_TRANSIENT:
		return 0.25;
	}
	return 0;
}

/*
 * score = log2(1 + live_bytes)
 *       * W(verdict)                    leak 8, growing 3, stable 1, transient 0.25
 *       * (slope > 0 ? 2 - p : 1)        evidence of growth, 1..2
 *       * (1.1 - release_ratio)          0.1 (frees everything) .. 1.1 (frees nothing)
 *       * (1 + min(oldest_age_s / window_s, 1))   held since early in the window, 1..2
 *
 * Bytes enter through a logarithm so that size ranks sites of the same
 * kind but cannot lift a bounded site above a growing one: doubling the
 * bytes adds one to a term of ~20, while the verdict weight and the
 * release term each move the score by 8x or more. A cache holding twice a
 * leak's bytes (23 vs 22 bits) still loses by its weight (1 vs 8) and its
 * churn (release near 1). A sawtooth loses to the cache on age: its oldest
 * block is at most one cycle old, while a cache keeps entries from the
 * start of the window.
 */
static double site_score(const struct site_assessment *a, const struct site_totals *tot,
			 double live)
{
	double evidence = a->trend.slope_per_s > 0 ? 2 - a->trend.p : 1;
	double age = 0;

	if (tot->window_s > 0 && tot->oldest_age_s > 0)
		age = fmin(tot->oldest_age_s / tot->window_s, 1);
	return log2(1 + fmax(live, 0)) * verdict_weight(a->verdict) * evidence *
	       (1.1 - a->release_ratio) * (1 + age);
}

void site_history__assess(const struct site_history *h, int pid, uint64_t hash,
			  const struct site_totals *totals, const struct trend_opts *o, bool exited,
			  struct site_assessment *out)
{
	double t[STATS_MAX_POINTS], v[STATS_MAX_POINTS], a[STATS_MAX_POINTS], peak = 0, live;
	const struct sh_site *s = h ? sh_find(h, pid, hash) : NULL;
	struct site_totals tot = { 0 };
	size_t n = 0;

	if (!out)
		return;
	*out = (struct site_assessment){ 0 };
	/* Unwritten entries are never read (n bounds every use); the first
	 * is set only to keep the compiler's flow analysis quiet. */
	t[0] = v[0] = a[0] = 0;
	if (s)
		n = sh_series(h, s, t, v, a, &peak);
	trend__assess(t, v, n, o, &out->trend);
	if (totals)
		tot = *totals;
	else if (n)
		tot.live_bytes = v[n - 1];
	live = tot.live_bytes;

	out->growth_bytes_per_s = out->trend.slope_per_s;
	out->trend_p = out->trend.p;
	out->release_ratio = release_ratio(&tot);
	out->verdict = decide(&out->trend, recent_growth_material(&out->trend, t, n, live), live,
			      peak, out->release_ratio, recent_retained(v, a, n), opts_min_points(o),
			      exited);
	out->score = site_score(out, &tot, live);
}
