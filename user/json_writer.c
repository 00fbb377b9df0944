// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * JSON report writer (json-c). The schema is a contract with other tools
 * (CI gates, dashboards, the e2e tests): keys and types must not drift.
 *
 *   version, target{pids, command|null, exit_code|null}, window{duration_s},
 *   sampled, sample_bytes|null (--sample: heap figures are estimates),
 *   totals{allocations, frees, outstanding_bytes, outstanding_allocations,
 *          unmatched_frees, mmap_regions, munmaps, outstanding_mmap_bytes,
 *          outstanding_mmap_regions, unmatched_unmaps, dropped{name: n}},
 *          (allocations..unmatched_frees: heap only; mmap_*: anonymous
 *          mmap regions)
 *          timers_created, timers_released,
 *          untracked_allocations, untracked_bytes (not tracked: map full)},
 *   suspects[{pid, kind "heap"|"mmap", bytes, allocations, oldest_age_s, total_bytes,
 *             total_allocations, frees, growth_bytes_per_s, trend_p|null,
 *             score, verdict, rank, stack[{address "0x..", module,
 *             function|null, offset|null, file|null, line|null}],
 *             with --sample also: sampled, samples, relative_error}],
 *   heap{samples[{t_s, rss_bytes, anon_bytes, tracked_bytes}],
 *        rss_slope_bytes_per_hour, tracked_slope_bytes_per_hour,
 *        trend{rss, anon, tracked: {slope_bytes_per_hour, p|null,
 *              significant, sustained}},
 *        cgroup{path, limit_bytes, usage_bytes, projected_s_to_limit|null}|null},
 *   notes[str],
 *   timers[{kind, outstanding, armed, periodic, interval_ns|null, pid, stack}],
 *   itimers[{pid, which, value_ns, interval_ns}],
 *   alerts[{t_s, kind, severity, pid, message, value, threshold, stack?}]
 *
 * Every builder returns a new object or NULL when json-c could not allocate;
 * the only error json-c has is out-of-memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "alerts.h"
#include "json_util.h"
#include "output.h"

static struct json_object *build_target(const struct report *r)
{
	struct json_object *t = json_object_new_object(), *pids, *cmd;

	if (!t)
		return NULL;
	pids = json_object_new_array();
	if (json__add(t, "pids", pids))
		goto fail;
	for (size_t i = 0; i < r->npids; i++)
		if (json__push(pids, json_object_new_int(r->pids[i])))
			goto fail;
	if (r->command) {
		cmd = json_object_new_array();
		if (json__add(t, "command", cmd))
			goto fail;
		for (char *const *a = r->command; *a; a++)
			if (json__push(cmd, json_object_new_string(*a)))
				goto fail;
	} else if (json__add_null(t, "command")) {
		goto fail;
	}
	if (r->has_exit_code ? json__add(t, "exit_code", json_object_new_int(r->exit_code))
			     : json__add_null(t, "exit_code"))
		goto fail;
	return t;
fail:
	json_object_put(t);
	return NULL;
}

static struct json_object *build_window(const struct report *r)
{
	struct json_object *w = json_object_new_object();

	if (w && json__add_float(w, "duration_s", r->duration_s)) {
		json_object_put(w);
		return NULL;
	}
	return w;
}

static struct json_object *build_dropped(const struct report *r)
{
	struct json_object *d = json_object_new_object();

	if (!d)
		return NULL;
	for (size_t i = 0; i < r->ndropped; i++) {
		/* A nameless counter is a bug upstream; keep its value visible. */
		const char *name = r->dropped[i].name ? r->dropped[i].name : "unnamed";

		if (json__add_u64(d, name, r->dropped[i].value)) {
			json_object_put(d);
			return NULL;
		}
	}
	return d;
}

static struct json_object *build_totals(const struct report *r)
{
	struct json_object *t = json_object_new_object();

	if (!t)
		return NULL;
	if (json__add_u64(t, "allocations", r->allocations) ||
	    json__add_u64(t, "frees", r->frees) ||
	    json__add_u64(t, "outstanding_bytes", r->outstanding_bytes) ||
	    json__add_u64(t, "outstanding_allocations", r->outstanding_allocations) ||
	    json__add_u64(t, "unmatched_frees", r->unmatched_frees) ||
	    json__add_u64(t, "mmap_regions", r->mmap_regions) ||
	    json__add_u64(t, "munmaps", r->munmaps) ||
	    json__add_u64(t, "outstanding_mmap_bytes", r->outstanding_mmap_bytes) ||
	    json__add_u64(t, "outstanding_mmap_regions", r->outstanding_mmap_regions) ||
	    json__add_u64(t, "unmatched_unmaps", r->unmatched_unmaps) ||
	    json__add_u64(t, "timers_created", r->timers_created) ||
	    json__add_u64(t, "timers_released", r->timers_released) ||
	    json__add_u64(t, "untracked_allocations", r->untracked_allocations) ||
	    json__add_u64(t, "untracked_bytes", r->untracked_bytes) ||
	    json__add(t, "dropped", build_dropped(r))) {
		json_object_put(t);
		return NULL;
	}
	return t;
}

static struct json_object *build_suspect(const struct report_suspect *s, bool sampled)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (json__add(o, "pid", json_object_new_int(s->pid)) ||
	    json__add_str_or_null(o, "kind", s->kind ? s->kind : "heap") ||
	    json__add_u64(o, "bytes", s->bytes) ||
	    json__add_u64(o, "allocations", s->allocations) ||
	    json__add_float(o, "oldest_age_s", s->oldest_age_s) ||
	    json__add_u64(o, "total_bytes", s->total_bytes) ||
	    json__add_u64(o, "total_allocations", s->total_allocations) ||
	    json__add_u64(o, "frees", s->frees) ||
	    json__add_float(o, "growth_bytes_per_s", s->growth_bytes_per_s) ||
	    json__add_float(o, "trend_p", s->trend_p) ||
	    json__add_float(o, "score", s->score) ||
	    json__add_str_or_null(o, "verdict", s->verdict) ||
	    json__add(o, "rank", json_object_new_int(s->rank)))
		goto fail;
	if (json__add(o, "stack", json__stack(s->frames, s->nframes)))
		goto fail;
	if (sampled && (json__add(o, "sampled", json_object_new_boolean(s->sampled)) ||
			json__add_u64(o, "samples", s->samples) ||
			json__add_float(o, "relative_error", s->relative_error)))
		goto fail;
	return o;
fail:
	json_object_put(o);
	return NULL;
}

static struct json_object *build_suspects(const struct report *r)
{
	struct json_object *arr = json_object_new_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < r->nsuspects; i++) {
		if (json__push(arr, build_suspect(&r->suspects[i], r->sample_bytes != 0))) {
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}

static struct json_object *build_sample(const struct report_heap_sample *s)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (json__add_float(o, "t_s", s->t_s) ||
	    json__add_u64(o, "rss_bytes", s->rss_bytes) ||
	    json__add_u64(o, "anon_bytes", s->anon_bytes) ||
	    json__add_u64(o, "tracked_bytes", s->tracked_bytes)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_trend(const struct report_trend *t)
{
	struct json_object *o = json_object_new_object();

	if (o && (json__add_float(o, "slope_bytes_per_hour", t->slope_bytes_per_hour) ||
		  json__add_float(o, "p", t->p) ||
		  json__add(o, "significant", json_object_new_boolean(t->significant)) ||
		  json__add(o, "sustained", json_object_new_boolean(t->sustained)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_heap_trends(const struct report *r)
{
	struct json_object *o = json_object_new_object();

	if (o && (json__add(o, "rss", build_trend(&r->rss_trend)) ||
		  json__add(o, "anon", build_trend(&r->anon_trend)) ||
		  json__add(o, "tracked", build_trend(&r->tracked_trend)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_cgroup(const struct report *r)
{
	struct json_object *o = json_object_new_object();

	if (o && (json__add_str_or_null(o, "path", r->cgroup_path) ||
		  json__add_u64(o, "limit_bytes", r->cgroup_limit_bytes) ||
		  json__add_u64(o, "usage_bytes", r->cgroup_usage_bytes) ||
		  (r->cgroup_projected_s >= 0 ? json__add_float(o, "projected_s_to_limit", r->cgroup_projected_s)
					      : json__add_null(o, "projected_s_to_limit")))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_timer(const struct report_timer *t)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (json__add(o, "kind", json_object_new_string(t->kind)) ||
	    json__add_u64(o, "outstanding", t->outstanding) ||
	    json__add_u64(o, "armed", t->armed) ||
	    json__add_u64(o, "periodic", t->periodic) ||
	    (t->interval_ns >= 0 ? json__add(o, "interval_ns", json_object_new_int64(t->interval_ns))
				 : json__add_null(o, "interval_ns")) ||
	    json__add(o, "pid", json_object_new_int(t->pid)))
		goto fail;
	if (json__add(o, "stack", json__stack(t->frames, t->nframes)))
		goto fail;
	return o;
fail:
	json_object_put(o);
	return NULL;
}

static struct json_object *build_itimer(const struct report_itimer *t)
{
	struct json_object *o = json_object_new_object();

	if (o && (json__add(o, "pid", json_object_new_int(t->pid)) ||
		  json__add(o, "which", json_object_new_string(t->which)) ||
		  json__add(o, "value_ns", json_object_new_int64(t->value_ns)) ||
		  json__add(o, "interval_ns", json_object_new_int64(t->interval_ns)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* An array of n items built by one builder from a base pointer and stride. */
static struct json_object *build_array(const void *items, size_t n, size_t size,
				       struct json_object *(*build)(const void *))
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; arr && i < n; i++) {
		if (json__push(arr, build((const char *)items + i * size))) {
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}

static struct json_object *timer_json(const void *t)
{
	return build_timer(t);
}

static struct json_object *itimer_json(const void *t)
{
	return build_itimer(t);
}

static struct json_object *alert_json(const void *a)
{
	return alert__to_json(a);
}

static struct json_object *build_heap(const struct report *r)
{
	struct json_object *h = json_object_new_object(), *samples;

	if (!h)
		return NULL;
	samples = json_object_new_array();
	if (json__add(h, "samples", samples))
		goto fail;
	for (size_t i = 0; i < r->nsamples; i++)
		if (json__push(samples, build_sample(&r->samples[i])))
			goto fail;
	if (json__add_float(h, "rss_slope_bytes_per_hour", r->rss_slope_bytes_per_hour) ||
	    json__add_float(h, "tracked_slope_bytes_per_hour", r->tracked_slope_bytes_per_hour) ||
	    json__add(h, "trend", build_heap_trends(r)) ||
	    (r->has_cgroup ? json__add(h, "cgroup", build_cgroup(r)) : json__add_null(h, "cgroup")))
		goto fail;
	return h;
fail:
	json_object_put(h);
	return NULL;
}

static struct json_object *build_notes(const struct report *r)
{
	struct json_object *arr = json_object_new_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < r->nnotes; i++) {
		if (!r->notes[i])
			continue;
		if (json__push(arr, json_object_new_string(r->notes[i]))) {
			json_object_put(arr);
			return NULL;
		}
	}
	return arr;
}

static struct json_object *build_report(const struct report *r)
{
	struct json_object *root = json_object_new_object();

	if (!root)
		return NULL;
	/* Insertion order is output order: keep it the order of the schema. */
	if (json__add(root, "version", json_object_new_int(REPORT_VERSION)) ||
	    json__add(root, "target", build_target(r)) ||
	    json__add(root, "window", build_window(r)) ||
	    json__add(root, "sampled", json_object_new_boolean(r->sample_bytes != 0)) ||
	    (r->sample_bytes ? json__add_u64(root, "sample_bytes", r->sample_bytes)
			     : json__add_null(root, "sample_bytes")) ||
	    json__add(root, "totals", build_totals(r)) ||
	    json__add(root, "suspects", build_suspects(r)) ||
	    json__add(root, "heap", build_heap(r)) ||
	    json__add(root, "notes", build_notes(r)) ||
	    json__add(root, "timers", build_array(r->timers, r->ntimers, sizeof(*r->timers), timer_json)) ||
	    json__add(root, "itimers", build_array(r->itimers, r->nitimers, sizeof(*r->itimers), itimer_json)) ||
	    json__add(root, "alerts", build_array(r->alerts, r->nalerts, sizeof(*r->alerts), alert_json))) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

int report__write_json(const struct report *r, FILE *out)
{
	struct json_object *root;
	const char *text;
	int err = 0;

	if (!r || !out)
		return -EINVAL;
	root = build_report(r);
	if (!root)
		return -ENOMEM;
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
						    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		err = -ENOMEM;
	else if (fputs(text, out) == EOF || fputc('\n', out) == EOF || ferror(out))
		err = -EIO;
	json_object_put(root);
	return err;
}
