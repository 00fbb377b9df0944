// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * JSON report writer (json-c). The schema is a contract with other tools
 * (CI gates, dashboards, the e2e tests): keys and types must not drift.
 *
 *   version, target{pids, command|null, exit_code|null}, window{duration_s},
 *   totals{allocations, frees, outstanding_bytes, outstanding_allocations,
 *          unmatched_frees, dropped{name: n}},
 *          timers_created, timers_released},
 *   suspects[{pid, bytes, allocations, oldest_age_s, total_bytes,
 *             total_allocations, frees, growth_bytes_per_s, trend_p|null,
 *             score, verdict, rank, stack[{address "0x..", module,
 *             function|null, offset|null, file|null, line|null}]}],
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
#include "output.h"

/*
 * Add val under key, taking ownership of val either way. json-c leaves val
 * with the caller when the insert fails, so release it here to keep callers
 * a single "if (add(...)) goto fail".
 */
static int add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (!val)
		return -1;
	if (json_object_object_add(obj, key, val)) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

/* Add a JSON null: json-c represents it as a NULL value, which add() would
 * mistake for an allocation failure. */
static int add_null(struct json_object *obj, const char *key)
{
	return json_object_object_add(obj, key, NULL) ? -1 : 0;
}

static int push(struct json_object *arr, struct json_object *val)
{
	if (!val)
		return -1;
	if (json_object_array_add(arr, val)) {
		json_object_put(val);
		return -1;
	}
	return 0;
}

/*
 * A double that always serialises as a JSON float: the shortest of %.15g and
 * %.17g that reads back to the same value, with ".0" added to integral values
 * so that 60 s stays a float for typed consumers (json-c would parse "60" back
 * as an int). JSON has no NaN or infinity; those become null, which is better
 * than the invalid document json-c would otherwise print.
 */
static struct json_object *new_float(double d)
{
	char buf[48];

	if (!isfinite(d))
		return NULL;
	snprintf(buf, sizeof(buf), "%.15g", d);
	if (strtod(buf, NULL) != d)
		snprintf(buf, sizeof(buf), "%.17g", d);
	if (!strpbrk(buf, ".eE"))
		strcat(buf, ".0");
	return json_object_new_double_s(d, buf);
}

static int add_float(struct json_object *obj, const char *key, double d)
{
	if (!isfinite(d))
		return add_null(obj, key);
	return add(obj, key, new_float(d));
}

static int add_u64(struct json_object *obj, const char *key, uint64_t v)
{
	return add(obj, key, json_object_new_uint64(v));
}

/* Nullable string: NULL means "unknown" and is written as null. */
static int add_str_or_null(struct json_object *obj, const char *key, const char *s)
{
	return s ? add(obj, key, json_object_new_string(s)) : add_null(obj, key);
}

static struct json_object *build_target(const struct report *r)
{
	struct json_object *t = json_object_new_object(), *pids, *cmd;

	if (!t)
		return NULL;
	pids = json_object_new_array();
	if (add(t, "pids", pids))
		goto fail;
	for (size_t i = 0; i < r->npids; i++)
		if (push(pids, json_object_new_int(r->pids[i])))
			goto fail;
	if (r->command) {
		cmd = json_object_new_array();
		if (add(t, "command", cmd))
			goto fail;
		for (char *const *a = r->command; *a; a++)
			if (push(cmd, json_object_new_string(*a)))
				goto fail;
	} else if (add_null(t, "command")) {
		goto fail;
	}
	if (r->has_exit_code ? add(t, "exit_code", json_object_new_int(r->exit_code))
			     : add_null(t, "exit_code"))
		goto fail;
	return t;
fail:
	json_object_put(t);
	return NULL;
}

static struct json_object *build_window(const struct report *r)
{
	struct json_object *w = json_object_new_object();

	if (w && add_float(w, "duration_s", r->duration_s)) {
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

		if (add_u64(d, name, r->dropped[i].value)) {
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
	if (add_u64(t, "allocations", r->allocations) ||
	    add_u64(t, "frees", r->frees) ||
	    add_u64(t, "outstanding_bytes", r->outstanding_bytes) ||
	    add_u64(t, "outstanding_allocations", r->outstanding_allocations) ||
	    add_u64(t, "unmatched_frees", r->unmatched_frees) ||
	    add_u64(t, "timers_created", r->timers_created) ||
	    add_u64(t, "timers_released", r->timers_released) ||
	    add(t, "dropped", build_dropped(r))) {
		json_object_put(t);
		return NULL;
	}
	return t;
}

struct json_object *report__frame_json(const struct report_frame *f)
{
	struct json_object *o = json_object_new_object();
	char addr[2 + 16 + 1];

	if (!o)
		return NULL;
	/* A string, not a number: JSON readers lose precision above 2^53 and
	 * people grep for addresses in hex. */
	snprintf(addr, sizeof(addr), "0x%" PRIx64, f->address);
	if (add(o, "address", json_object_new_string(addr)) ||
	    add(o, "module", json_object_new_string(f->module ? f->module : "[unknown]")) ||
	    add_str_or_null(o, "function", f->function) ||
	    /* An offset is only meaningful relative to a known symbol. */
	    (f->function && f->offset >= 0 ? add(o, "offset", json_object_new_int64(f->offset))
					   : add_null(o, "offset")) ||
	    add_str_or_null(o, "file", f->file) ||
	    (f->line > 0 ? add(o, "line", json_object_new_int(f->line)) : add_null(o, "line"))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_suspect(const struct report_suspect *s)
{
	struct json_object *o = json_object_new_object(), *stack;

	if (!o)
		return NULL;
	if (add(o, "pid", json_object_new_int(s->pid)) ||
	    add_u64(o, "bytes", s->bytes) ||
	    add_u64(o, "allocations", s->allocations) ||
	    add_float(o, "oldest_age_s", s->oldest_age_s) ||
	    add_u64(o, "total_bytes", s->total_bytes) ||
	    add_u64(o, "total_allocations", s->total_allocations) ||
	    add_u64(o, "frees", s->frees) ||
	    add_float(o, "growth_bytes_per_s", s->growth_bytes_per_s) ||
	    add_float(o, "trend_p", s->trend_p) ||
	    add_float(o, "score", s->score) ||
	    add_str_or_null(o, "verdict", s->verdict) ||
	    add(o, "rank", json_object_new_int(s->rank)))
		goto fail;
	stack = json_object_new_array();
	if (add(o, "stack", stack))
		goto fail;
	for (size_t i = 0; i < s->nframes; i++)
		if (push(stack, report__frame_json(&s->frames[i])))
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
		if (push(arr, build_suspect(&r->suspects[i]))) {
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
	if (add_float(o, "t_s", s->t_s) ||
	    add_u64(o, "rss_bytes", s->rss_bytes) ||
	    add_u64(o, "anon_bytes", s->anon_bytes) ||
	    add_u64(o, "tracked_bytes", s->tracked_bytes)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_trend(const struct report_trend *t)
{
	struct json_object *o = json_object_new_object();

	if (o && (add_float(o, "slope_bytes_per_hour", t->slope_bytes_per_hour) ||
		  add_float(o, "p", t->p) ||
		  add(o, "significant", json_object_new_boolean(t->significant)) ||
		  add(o, "sustained", json_object_new_boolean(t->sustained)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_heap_trends(const struct report *r)
{
	struct json_object *o = json_object_new_object();

	if (o && (add(o, "rss", build_trend(&r->rss_trend)) ||
		  add(o, "anon", build_trend(&r->anon_trend)) ||
		  add(o, "tracked", build_trend(&r->tracked_trend)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_cgroup(const struct report *r)
{
	struct json_object *o = json_object_new_object();

	if (o && (add_str_or_null(o, "path", r->cgroup_path) ||
		  add_u64(o, "limit_bytes", r->cgroup_limit_bytes) ||
		  add_u64(o, "usage_bytes", r->cgroup_usage_bytes) ||
		  (r->cgroup_projected_s >= 0 ? add_float(o, "projected_s_to_limit", r->cgroup_projected_s)
					      : add_null(o, "projected_s_to_limit")))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *build_timer(const struct report_timer *t)
{
	struct json_object *o = json_object_new_object(), *stack;

	if (!o)
		return NULL;
	if (add(o, "kind", json_object_new_string(t->kind)) ||
	    add_u64(o, "outstanding", t->outstanding) ||
	    add_u64(o, "armed", t->armed) ||
	    add_u64(o, "periodic", t->periodic) ||
	    (t->interval_ns >= 0 ? add(o, "interval_ns", json_object_new_int64(t->interval_ns))
				 : add_null(o, "interval_ns")) ||
	    add(o, "pid", json_object_new_int(t->pid)))
		goto fail;
	stack = json_object_new_array();
	if (add(o, "stack", stack))
		goto fail;
	for (size_t i = 0; i < t->nframes; i++)
		if (push(stack, report__frame_json(&t->frames[i])))
			goto fail;
	return o;
fail:
	json_object_put(o);
	return NULL;
}

static struct json_object *build_itimer(const struct report_itimer *t)
{
	struct json_object *o = json_object_new_object();

	if (o && (add(o, "pid", json_object_new_int(t->pid)) ||
		  add(o, "which", json_object_new_string(t->which)) ||
		  add(o, "value_ns", json_object_new_int64(t->value_ns)) ||
		  add(o, "interval_ns", json_object_new_int64(t->interval_ns)))) {
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
		if (push(arr, build((const char *)items + i * size))) {
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
	if (add(h, "samples", samples))
		goto fail;
	for (size_t i = 0; i < r->nsamples; i++)
		if (push(samples, build_sample(&r->samples[i])))
			goto fail;
	if (add_float(h, "rss_slope_bytes_per_hour", r->rss_slope_bytes_per_hour) ||
	    add_float(h, "tracked_slope_bytes_per_hour", r->tracked_slope_bytes_per_hour) ||
	    add(h, "trend", build_heap_trends(r)) ||
	    (r->has_cgroup ? add(h, "cgroup", build_cgroup(r)) : add_null(h, "cgroup")))
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
		if (push(arr, json_object_new_string(r->notes[i]))) {
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
	if (add(root, "version", json_object_new_int(REPORT_VERSION)) ||
	    add(root, "target", build_target(r)) ||
	    add(root, "window", build_window(r)) ||
	    add(root, "totals", build_totals(r)) ||
	    add(root, "suspects", build_suspects(r)) ||
	    add(root, "heap", build_heap(r)) ||
	    add(root, "notes", build_notes(r)) ||
	    add(root, "timers", build_array(r->timers, r->ntimers, sizeof(*r->timers), timer_json)) ||
	    add(root, "itimers", build_array(r->itimers, r->nitimers, sizeof(*r->itimers), itimer_json)) ||
	    add(root, "alerts", build_array(r->alerts, r->nalerts, sizeof(*r->alerts), alert_json))) {
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
