// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alerts.h"
#include "analysis.h"
#include "cgroup.h"
#include "monitor.h"
#include "trend.h"

#define MAX_SAMPLES 4096
#define HISTORY_RING 256
/* Sites assessed for site_growth per interval: the largest by live bytes. */
#define MAX_CANDIDATES 64
#define MAX_ALERTS_KEPT 1024
#define NS_PER_S 1e9

struct candidate {
	struct site_view view;
};

struct monitor {
	struct monitor_opts opts;
	struct drain *drain;
	struct symbolizer *sym;
	struct site_history *history;
	struct alerts *alerts;
	double t_s;
	/* heap samples and the cgroup usage at each, thinned by two whenever
	 * the buffer fills so any window length fits */
	struct report_heap_sample samples[MAX_SAMPLES];
	double cgroup_usage[MAX_SAMPLES];
	size_t nsamples;
	unsigned stride, intervals;
	/* the largest sites of the current interval */
	struct candidate candidates[MAX_CANDIDATES];
	size_t ncandidates;
	/* latest cgroup reading of the main target */
	struct cgroup_memory cgroup;
	bool has_cgroup;
	double projected_s;
	struct report_trend rss, anon, tracked;
};

struct monitor *monitor__new(const struct monitor_opts *opts, struct drain *d,
			     struct symbolizer *sym)
{
	struct monitor *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->opts = *opts;
	m->drain = d;
	m->sym = sym;
	m->stride = 1;
	m->projected_s = -1;
	m->rss.p = m->anon.p = m->tracked.p = NAN;
	m->history = site_history__new(opts->max_sites, HISTORY_RING);
	m->alerts = alerts__new(opts->alerts_path, MAX_ALERTS_KEPT);
	if (!m->history || !m->alerts) {
		int err = errno;

		monitor__free(m);
		errno = err;
		return NULL;
	}
	return m;
}

void monitor__free(struct monitor *m)
{
	if (!m)
		return;
	site_history__free(m->history);
	alerts__free(m->alerts);
	free(m);
}

void monitor__begin_interval(struct monitor *m, double t_s)
{
	m->t_s = t_s;
	m->ncandidates = 0;
}

/* Keep the MAX_CANDIDATES largest sites: replace the smallest kept one. */
static void consider_candidate(struct monitor *m, const struct site_view *v)
{
	size_t smallest = 0;

	if (m->ncandidates < MAX_CANDIDATES) {
		m->candidates[m->ncandidates++].view = *v;
		return;
	}
	for (size_t i = 1; i < m->ncandidates; i++)
		if (m->candidates[i].view.live_bytes < m->candidates[smallest].view.live_bytes)
			smallest = i;
	if (v->live_bytes > m->candidates[smallest].view.live_bytes)
		m->candidates[smallest].view = *v;
}

void monitor__site_view(const struct site_view *v, void *ctx)
{
	struct monitor *m = ctx;
	struct site_point p = {
		.t_s = m->t_s, .live_bytes = v->live_bytes > 0 ? v->live_bytes : 0,
		.alloc_bytes = v->alloc_bytes,
	};

	site_history__add(m->history, v->pid, v->stack_hash, &p);
	if (v->live_bytes > 0)
		consider_candidate(m, v);
}

static void add_sample(struct monitor *m, const struct report_heap_sample *s, double cgroup_usage)
{
	if (m->intervals++ % m->stride)
		return;
	if (m->nsamples == MAX_SAMPLES) {
		for (size_t i = 0; i < MAX_SAMPLES / 2; i++) {
			m->samples[i] = m->samples[2 * i];
			m->cgroup_usage[i] = m->cgroup_usage[2 * i];
		}
		m->nsamples = MAX_SAMPLES / 2;
		m->stride *= 2;
	}
	m->cgroup_usage[m->nsamples] = cgroup_usage;
	m->samples[m->nsamples++] = *s;
}

/* The robust trend of values v[i] sampled at the samples' times. */
static void trend_of(const struct monitor *m, const double *v, struct report_trend *out)
{
	static double t[MAX_SAMPLES];
	struct trend tr;

	for (size_t i = 0; i < m->nsamples; i++)
		t[i] = m->samples[i].t_s;
	trend__assess(t, v, m->nsamples, NULL, &tr);
	out->slope_bytes_per_hour = tr.slope_per_s * 3600;
	out->p = tr.points ? tr.p : NAN;
	out->significant = tr.significant;
	out->sustained = tr.sustained;
}

/* One uint64_t field (at offset) of every sample, as doubles. */
static const double *column(const struct monitor *m, size_t offset)
{
	static double v[MAX_SAMPLES];

	for (size_t i = 0; i < m->nsamples; i++)
		v[i] = *(const uint64_t *)((const char *)&m->samples[i] + offset);
	return v;
}

static void update(struct monitor *m, enum alert_kind kind, bool critical, int pid, bool active,
		   double value, double threshold, uint64_t key, const char *fmt, double shown)
{
	struct alert al = {
		.t_s = m->t_s, .kind = kind, .critical = critical, .pid = pid,
		.value = value, .threshold = threshold, .stack_hash = key,
	};

	snprintf(al.message, sizeof(al.message), fmt, shown);
	alerts__update(m->alerts, &al, key, active);
}

/*
 * heap_growth looks at RSS and anonymous RSS, and at tracked bytes only
 * when the window saw the process from its start (run mode): attached to a
 * running process, tracked bytes rise as blocks allocated before the
 * attach are freed and replaced, however flat the heap really is.
 */
static void heap_alerts(struct monitor *m, int pid)
{
	const struct report_trend *series[] = { &m->rss, &m->anon, &m->tracked };
	size_t nseries = m->opts.tracked_from_start ? 3 : 2;
	const struct report_heap_sample *last = &m->samples[m->nsamples - 1];
	double threshold = m->opts.growth_alert_bytes_per_hour, worst = 0;
	bool growing = false;

	for (size_t i = 0; i < nseries; i++) {
		if (series[i]->sustained && series[i]->slope_bytes_per_hour > threshold) {
			growing = true;
			worst = fmax(worst, series[i]->slope_bytes_per_hour);
		}
	}
	update(m, ALERT_HEAP_GROWTH, false, pid, growing, worst, threshold, 0,
	       "heap grows %.0f bytes/hour, significantly and steadily", worst);
	if (m->opts.heap_warn_bytes)
		update(m, ALERT_HEAP_WARN, false, pid, last->rss_bytes >= m->opts.heap_warn_bytes,
		       last->rss_bytes, m->opts.heap_warn_bytes, 0, "RSS %.0f bytes is above --heap-warn",
		       last->rss_bytes);
	if (m->opts.heap_critical_bytes)
		update(m, ALERT_HEAP_CRITICAL, true, pid, last->rss_bytes >= m->opts.heap_critical_bytes,
		       last->rss_bytes, m->opts.heap_critical_bytes, 0,
		       "RSS %.0f bytes is above --heap-critical", last->rss_bytes);
}

/* Time to the cgroup's limit at the usage's current (robust) slope. */
static void oom_alert(struct monitor *m, int pid)
{
	struct report_trend usage;
	double slope_per_s;

	m->projected_s = -1;
	if (!m->has_cgroup || !m->cgroup.has_limit)
		return;
	trend_of(m, m->cgroup_usage, &usage);
	slope_per_s = usage.slope_bytes_per_hour / 3600;
	if (usage.significant && slope_per_s > 0) {
		double left = m->cgroup.limit_bytes > m->cgroup.usage_bytes
				      ? (double)(m->cgroup.limit_bytes - m->cgroup.usage_bytes) : 0;

		m->projected_s = left / slope_per_s;
	}
	update(m, ALERT_OOM_PROJECTION, true, pid,
	       m->projected_s >= 0 && m->projected_s <= m->opts.oom_horizon_s, m->projected_s,
	       m->opts.oom_horizon_s, 0, "memory cgroup limit projected in %.0f s at the current slope",
	       m->projected_s);
}

/* Symbolize a site's current stack into frames (at most max). */
static size_t site_frames(struct monitor *m, int pid, uint64_t hash, struct report_frame *frames,
			  size_t max)
{
	uint64_t ips[STRAY_MAX_STACK_DEPTH];
	int depth = drain__site_stack(m->drain, pid, hash, ips);
	size_t n = 0;

	for (int i = 0; i < depth && n < max; i++)
		if (!symbolizer__resolve(m->sym, pid, ips[i], &frames[n]))
			n++;
	return n;
}

/* site_growth: raised when a site's verdict becomes "leak". */
static void site_alerts(struct monitor *m)
{
	struct report_frame frames[STRAY_MAX_STACK_DEPTH];

	for (size_t i = 0; i < m->ncandidates; i++) {
		const struct site_view *v = &m->candidates[i].view;
		struct site_totals totals = {
			.live_bytes = v->live_bytes, .alloc_bytes = v->alloc_bytes,
			.free_bytes = v->free_bytes, .window_s = m->t_s,
		};
		struct site_assessment a;
		struct alert al = {
			.t_s = m->t_s, .kind = ALERT_SITE_GROWTH, .pid = v->pid,
			.stack_hash = v->stack_hash, .threshold = 0,
		};
		bool leak;

		site_history__assess(m->history, v->pid, v->stack_hash, &totals, NULL, false, &a);
		leak = a.verdict == VERDICT_LEAK;
		al.value = a.growth_bytes_per_s;
		snprintf(al.message, sizeof(al.message),
			 "call site grows %.0f bytes/s and does not release it (p=%.2g)",
			 a.growth_bytes_per_s, a.trend_p);
		if (leak) {
			al.frames = frames;
			al.nframes = site_frames(m, v->pid, v->stack_hash, frames, STRAY_MAX_STACK_DEPTH);
		}
		alerts__update(m->alerts, &al, v->stack_hash, leak);
	}
}

void monitor__end_interval(struct monitor *m, const struct report_heap_sample *sample, int main_pid)
{
	struct cgroup_memory cg;

	/* Read only while the target lives (sample != NULL): a dying process
	 * has already left its cgroup, and the report keeps the last reading
	 * of the cgroup it ran in. */
	if (sample && main_pid > 0 && !cgroup__memory(main_pid, NULL, &cg)) {
		m->cgroup = cg;
		m->has_cgroup = true;
	}
	if (sample)
		add_sample(m, sample, m->has_cgroup ? (double)m->cgroup.usage_bytes : 0);
	if (!m->nsamples)
		return;
	trend_of(m, column(m, offsetof(struct report_heap_sample, rss_bytes)), &m->rss);
	trend_of(m, column(m, offsetof(struct report_heap_sample, anon_bytes)), &m->anon);
	trend_of(m, column(m, offsetof(struct report_heap_sample, tracked_bytes)), &m->tracked);
	heap_alerts(m, main_pid);
	oom_alert(m, main_pid);
	site_alerts(m);
}

void monitor__assess_suspect(const struct monitor *m, const struct site_live *site,
			     double window_s, uint64_t end_ns, bool exited,
			     struct report_suspect *out)
{
	struct site_totals totals = {
		.live_bytes = site->bytes,
		.alloc_bytes = site->total_bytes,
		.free_bytes = site->total_bytes >= site->bytes ? site->total_bytes - site->bytes : 0,
		.oldest_age_s = site->oldest_ts_ns < end_ns ? (end_ns - site->oldest_ts_ns) / NS_PER_S : 0,
		.window_s = window_s,
	};
	struct site_assessment a;

	site_history__assess(m->history, site->pid, site->stack_hash, &totals, NULL, exited, &a);
	out->growth_bytes_per_s = a.growth_bytes_per_s;
	/* Mann–Kendall says nothing below three points: no p-value then. */
	out->trend_p = a.trend.points >= 3 ? a.trend_p : NAN;
	out->score = a.score;
	out->verdict = verdict__name(a.verdict);
}

void monitor__fill_report(struct monitor *m, struct report *r)
{
	double t[MAX_SAMPLES], rss[MAX_SAMPLES], tracked[MAX_SAMPLES];

	for (size_t i = 0; i < m->nsamples; i++) {
		t[i] = m->samples[i].t_s / 3600.0;
		rss[i] = m->samples[i].rss_bytes;
		tracked[i] = m->samples[i].tracked_bytes;
	}
	r->samples = m->samples;
	r->nsamples = m->nsamples;
	r->rss_slope_bytes_per_hour = analysis__ls_slope(t, rss, m->nsamples);
	r->tracked_slope_bytes_per_hour = analysis__ls_slope(t, tracked, m->nsamples);
	r->rss_trend = m->rss;
	r->anon_trend = m->anon;
	r->tracked_trend = m->tracked;
	r->has_cgroup = m->has_cgroup && m->cgroup.has_limit;
	r->cgroup_path = m->cgroup.path;
	r->cgroup_limit_bytes = m->cgroup.limit_bytes;
	r->cgroup_usage_bytes = m->cgroup.usage_bytes;
	r->cgroup_projected_s = m->projected_s;
	r->alerts = alerts__list(m->alerts, &r->nalerts);
}

uint64_t monitor__sites_dropped(const struct monitor *m)
{
	return site_history__dropped(m->history);
}

uint64_t monitor__alerts_dropped(const struct monitor *m)
{
	return alerts__dropped(m->alerts);
}
