// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Text report for people, modelled on LeakSanitizer's output so that anyone
 * who has read an ASan/LSan report can read this one:
 *
 *   stray: pid 4242 (./app --flag), window 60.0 s, exit code 0
 *
 *   4096 bytes in 4 allocations from pid 4242 (oldest 12.5 s, site allocated
 *   8192 bytes in 8 allocations, 4 frees)
 *       #0 0x401136 in leak_site+0x16 demo.c:42 (/usr/bin/demo)
 *       #1 0x7f00 in ?? (/usr/lib/libc.so.6)
 *
 *   SUMMARY: ...
 *
 * Every exact number is printed as an integer; human units (KiB, MiB, ...)
 * are only ever added next to it, never instead of it.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "output.h"

/* Room for "-1023.9 EiB" and more. */
#define HUMAN_LEN 32

/* Binary units, one decimal: 1536 -> "1.5 KiB". Small values stay in bytes. */
static const char *human(double v, char buf[HUMAN_LEN])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double a = fabs(v);
	size_t u = 0;

	if (!isfinite(v)) {
		snprintf(buf, HUMAN_LEN, "%g B", v);
		return buf;
	}
	while (a >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		a /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, HUMAN_LEN, "%.0f B", v);
	else
		snprintf(buf, HUMAN_LEN, "%.1f %s", v < 0 ? -a : a, units[u]);
	return buf;
}

static void print_header(const struct report *r, FILE *out)
{
	fprintf(out, "stray: pid%s ", r->npids == 1 ? "" : "s");
	if (r->npids == 0)
		fputs("(none)", out);
	for (size_t i = 0; i < r->npids; i++)
		fprintf(out, "%s%d", i ? "," : "", r->pids[i]);
	if (r->command) {
		fputs(" (", out);
		for (char *const *a = r->command; *a; a++)
			fprintf(out, "%s%s", a == r->command ? "" : " ", *a);
		fputc(')', out);
	}
	fprintf(out, ", window %.1f s", r->duration_s);
	if (r->has_exit_code)
		fprintf(out, ", exit code %d", r->exit_code);
	fputc('\n', out);
	if (r->sample_bytes)
		fprintf(out, "sampled every %" PRIu64 " bytes on average: heap bytes and counts are "
			"estimates\n", r->sample_bytes);
}

static void print_frame(const struct report_frame *f, size_t idx, FILE *out)
{
	fprintf(out, "    #%zu 0x%" PRIx64 " in ", idx, f->address);
	if (f->function) {
		fputs(f->function, out);
		if (f->offset >= 0)
			fprintf(out, "+0x%" PRIx64, (uint64_t)f->offset);
	} else {
		fputs("??", out);
	}
	if (f->inlined)
		fputs(" [inlined]", out);
	if (f->file) {
		fprintf(out, " %s", f->file);
		if (f->line > 0)
			fprintf(out, ":%d", f->line);
	}
	fprintf(out, " (%s)\n", f->module ? f->module : "[unknown]");
}

static void print_suspect(const struct report_suspect *s, FILE *out)
{
	bool mmap = s->kind && !strcmp(s->kind, "mmap");

	fprintf(out,
		"%s%" PRIu64 " bytes in %" PRIu64 " %s from pid %d "
		"(oldest %.1f s, site allocated %" PRIu64 " bytes in %" PRIu64
		" %s, %" PRIu64 " %s)\n",
		mmap ? "[mmap] " : "", s->bytes, s->allocations, mmap ? "mapped regions" : "allocations", s->pid, s->oldest_age_s, s->total_bytes,
		s->total_allocations, mmap ? "mappings" : "allocations", s->frees, mmap ? "unmaps" : "frees");
	if (s->sampled)
		fprintf(out, "  estimated from %" PRIu64 " samples, relative error %.1f%%\n", s->samples,
			100 * s->relative_error);
	if (s->verdict && isnan(s->trend_p))
		fprintf(out, "  verdict: %s (rank %d, score %.1f)\n", s->verdict, s->rank, s->score);
	else if (s->verdict)
		fprintf(out, "  verdict: %s (rank %d, score %.1f, grows %+.0f bytes/s, trend p=%.2g)\n",
			s->verdict, s->rank, s->score, s->growth_bytes_per_s, s->trend_p);
	if (s->nframes == 0)
		fputs("    (no stack captured)\n", out);
	for (size_t i = 0; i < s->nframes; i++)
		print_frame(&s->frames[i], i, out);
	fputc('\n', out);
}

static int by_rank(const void *a, const void *b)
{
	const struct report_suspect *x = *(const struct report_suspect *const *)a;
	const struct report_suspect *y = *(const struct report_suspect *const *)b;

	return (x->rank > y->rank) - (x->rank < y->rank);
}

static void print_suspects(const struct report *r, FILE *out, int top)
{
	const struct report_suspect **order;
	size_t shown = r->nsuspects;

	if (r->nsuspects == 0) {
		fputs("no leak suspects: nothing allocated in the window is still "
		      "outstanding\n\n", out);
		return;
	}
	if (top > 0 && (size_t)top < shown)
		shown = (size_t)top;
	/* People read the highest-ranked first; the JSON keeps bytes order. */
	order = malloc(r->nsuspects * sizeof(*order));
	for (size_t i = 0; order && i < r->nsuspects; i++)
		order[i] = &r->suspects[i];
	if (order)
		qsort(order, r->nsuspects, sizeof(*order), by_rank);
	for (size_t i = 0; i < shown; i++)
		print_suspect(order ? order[i] : &r->suspects[i], out);
	free(order);
	if (shown < r->nsuspects)
		fprintf(out, "(%zu more suspects not shown)\n\n", r->nsuspects - shown);
}

/* Drops are the report's blind spots: name every one that happened. */
static void print_summary(const struct report *r, FILE *out)
{
	char h[HUMAN_LEN];
	int any = 0;

	fprintf(out,
		"SUMMARY: %" PRIu64 " bytes (%s) outstanding in %" PRIu64
		" allocations; %" PRIu64 " allocations, %" PRIu64 " frees in the window; %" PRIu64
		" unmatched frees\n",
		r->outstanding_bytes, human((double)r->outstanding_bytes, h),
		r->outstanding_allocations, r->allocations, r->frees, r->unmatched_frees);
	if (r->mmap_regions || r->outstanding_mmap_regions)
		fprintf(out,
			"mmap: %" PRIu64 " bytes (%s) outstanding in %" PRIu64 " anonymous regions; %" PRIu64
			" mapped, %" PRIu64 " unmapped in the window\n",
			r->outstanding_mmap_bytes, human((double)r->outstanding_mmap_bytes, h),
			r->outstanding_mmap_regions, r->mmap_regions, r->munmaps);
	if (r->untracked_allocations)
		fprintf(out,
			"MISSING: %" PRIu64 " allocations (%" PRIu64 " bytes) not tracked: the outstanding-allocation "
			"map was full (raise --max-allocs)\n",
			r->untracked_allocations, r->untracked_bytes);
	fputs("dropped:", out);
	for (size_t i = 0; i < r->ndropped; i++) {
		if (!r->dropped[i].value)
			continue;
		fprintf(out, " %s=%" PRIu64, r->dropped[i].name ? r->dropped[i].name : "unnamed",
			r->dropped[i].value);
		any = 1;
	}
	fputs(any ? "\n" : " none\n", out);
}

static void print_sample(const char *label, const struct report_heap_sample *s, FILE *out)
{
	char a[HUMAN_LEN], b[HUMAN_LEN], c[HUMAN_LEN];

	fprintf(out,
		"  %-5s t=%.1f s  rss %" PRIu64 " (%s)  anon %" PRIu64 " (%s)  tracked %" PRIu64
		" (%s)\n",
		label, s->t_s, s->rss_bytes, human((double)s->rss_bytes, a), s->anon_bytes,
		human((double)s->anon_bytes, b), s->tracked_bytes,
		human((double)s->tracked_bytes, c));
}

static void print_trend(const char *name, const struct report_trend *t, FILE *out)
{
	char h[HUMAN_LEN];

	if (isnan(t->p))
		return;
	fprintf(out, "  robust trend %-7s %+.0f bytes/hour (%s/h), p=%.2g%s\n", name,
		t->slope_bytes_per_hour, human(t->slope_bytes_per_hour, h), t->p,
		t->sustained ? ", sustained growth" : t->significant ? ", grew, now flat" : "");
}

static void print_heap(const struct report *r, FILE *out)
{
	char a[HUMAN_LEN], b[HUMAN_LEN];

	if (r->nsamples == 0) {
		fputs("heap: no samples\n", out);
		return;
	}
	fprintf(out, "heap: %zu sample%s\n", r->nsamples, r->nsamples == 1 ? "" : "s");
	print_sample("first", &r->samples[0], out);
	if (r->nsamples > 1)
		print_sample("last", &r->samples[r->nsamples - 1], out);
	fprintf(out,
		"  trend: rss %+.0f bytes/hour (%s/h), tracked %+.0f bytes/hour (%s/h)\n",
		r->rss_slope_bytes_per_hour, human(r->rss_slope_bytes_per_hour, a),
		r->tracked_slope_bytes_per_hour, human(r->tracked_slope_bytes_per_hour, b));
	print_trend("rss", &r->rss_trend, out);
	print_trend("anon", &r->anon_trend, out);
	print_trend("tracked", &r->tracked_trend, out);
	if (r->has_cgroup) {
		fprintf(out, "  cgroup %s: %s of %s limit", r->cgroup_path ? r->cgroup_path : "?",
			human((double)r->cgroup_usage_bytes, a), human((double)r->cgroup_limit_bytes, b));
		if (r->cgroup_projected_s >= 0)
			fprintf(out, ", limit reached in %.0f s at the current slope", r->cgroup_projected_s);
		fputc('\n', out);
	}
}

static void print_alerts(const struct report *r, FILE *out)
{
	if (!r->nalerts)
		return;
	fprintf(out, "alerts: %zu\n", r->nalerts);
	for (size_t i = 0; i < r->nalerts; i++) {
		const struct alert *al = &r->alerts[i];

		fprintf(out, "  t=%.1f s %s %s pid %d: %s\n", al->t_s, al->critical ? "CRITICAL" : "warning",
			alert_kind__name(al->kind), al->pid, al->message);
		for (size_t f = 0; f < al->nframes && f < 3; f++)
			print_frame(&al->frames[f], f, out);
	}
}

static void print_timers(const struct report *r, FILE *out)
{
	if (!r->ntimers && !r->nitimers)
		return;
	fprintf(out, "timers: %zu site%s still holding timers (%" PRIu64 " created, %" PRIu64
		" released in the window)\n", r->ntimers, r->ntimers == 1 ? "" : "s",
		r->timers_created, r->timers_released);
	for (size_t i = 0; i < r->ntimers; i++) {
		const struct report_timer *t = &r->timers[i];

		fprintf(out, "%" PRIu64 " %s timer%s from pid %d (%" PRIu64 " armed, %" PRIu64 " periodic",
			t->outstanding, t->kind, t->outstanding == 1 ? "" : "s", t->pid, t->armed,
			t->periodic);
		if (t->interval_ns >= 0)
			fprintf(out, ", every %.3f s", t->interval_ns / 1e9);
		fputs(")\n", out);
		for (size_t f = 0; f < t->nframes; f++)
			print_frame(&t->frames[f], f, out);
	}
	for (size_t i = 0; i < r->nitimers; i++)
		fprintf(out, "interval timer %s of pid %d: next in %.3f s, every %.3f s\n",
			r->itimers[i].which, r->itimers[i].pid, r->itimers[i].value_ns / 1e9,
			r->itimers[i].interval_ns / 1e9);
	fputc('\n', out);
}

static void print_notes(const struct report *r, FILE *out)
{
	if (r->nnotes == 0)
		return;
	fputs("notes:\n", out);
	for (size_t i = 0; i < r->nnotes; i++)
		if (r->notes[i])
			fprintf(out, "  - %s\n", r->notes[i]);
}

int report__write_text(const struct report *r, FILE *out, int top)
{
	if (!r || !out)
		return -EINVAL;
	print_header(r, out);
	fputc('\n', out);
	print_suspects(r, out, top);
	print_timers(r, out);
	print_summary(r, out);
	print_heap(r, out);
	print_alerts(r, out);
	print_notes(r, out);
	/* stdio keeps the error sticky: one check covers every write above. */
	return ferror(out) ? -EIO : 0;
}
