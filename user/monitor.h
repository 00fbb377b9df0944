/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The per-interval watch over a session: heap samples, per-site growth
 * history, the robust trends of the heap and of the target's memory
 * cgroup, and the alerts they raise. Fills the growth parts of the report.
 */
#ifndef STRAY_MONITOR_H
#define STRAY_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "drain.h"
#include "report.h"
#include "symbolize.h"

struct monitor_opts {
	double growth_alert_bytes_per_hour; /* heap_growth threshold */
	uint64_t heap_warn_bytes;           /* 0: off */
	uint64_t heap_critical_bytes;       /* 0: off */
	double oom_horizon_s;               /* oom_projection when the limit is nearer */
	const char *alerts_path;            /* JSON lines file, "-" stdout, NULL none */
	size_t max_sites;                   /* sites with a growth history */
	bool tracked_from_start;            /* run mode: tracked bytes cover the whole heap */
};

struct monitor;

/* NULL with errno set (e.g. the alerts file cannot be opened). */
struct monitor *monitor__new(const struct monitor_opts *opts, struct drain *d,
			     struct symbolizer *sym);
void monitor__free(struct monitor *m);

/*
 * One drain at t_s seconds into the window: call begin, pass
 * monitor__site_view (with m as ctx) to drain__sites_pass, then end with the
 * heap sample (NULL when no target could be read) and the process whose
 * cgroup and alerts are watched.
 */
void monitor__begin_interval(struct monitor *m, double t_s);
void monitor__site_view(const struct site_view *v, void *ctx);
void monitor__end_interval(struct monitor *m, const struct report_heap_sample *sample, int main_pid);

/* Growth fields of one suspect (growth_bytes_per_s, trend_p, score,
 * verdict). exited: the window ended with the process's exit. */
void monitor__assess_suspect(const struct monitor *m, const struct site_live *site,
			     double window_s, uint64_t end_ns, bool exited,
			     struct report_suspect *out);

/* Heap samples, slopes, trends, cgroup and alerts of the report. The
 * report points into the monitor: valid until the next interval. */
void monitor__fill_report(struct monitor *m, struct report *r);

/* Drop counters of the monitor (sites without history, alerts not kept). */
uint64_t monitor__sites_dropped(const struct monitor *m);
uint64_t monitor__alerts_dropped(const struct monitor *m);

#endif /* STRAY_MONITOR_H */
