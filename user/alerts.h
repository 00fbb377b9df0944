/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Alerts: conditions evaluated at each drain, each raised once when it
 * starts and cleared when it ends (never repeated while it persists),
 * kept for the report and appended as JSON lines to a file.
 */
#ifndef STRAY_ALERTS_H
#define STRAY_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "report.h"

enum alert_kind {
	ALERT_HEAP_GROWTH,    /* significant slope above --growth-alert bytes/hour */
	ALERT_HEAP_WARN,      /* above --heap-warn bytes */
	ALERT_HEAP_CRITICAL,  /* above --heap-critical bytes */
	ALERT_OOM_PROJECTION, /* cgroup limit projected within --oom-horizon */
	ALERT_SITE_GROWTH,    /* a site's verdict became "leak" */
	ALERT_KIND_NR,
};

const char *alert_kind__name(enum alert_kind k); /* "heap_growth", ... */

struct alert {
	double t_s;
	enum alert_kind kind;
	bool critical;          /* severity: "critical" or "warning" */
	int pid;
	char message[256];
	double value;
	double threshold;
	/* site alerts only */
	uint64_t stack_hash;
	size_t nframes;
	const struct report_frame *frames; /* owned by the caller; may be NULL */
};

struct alerts;

/*
 * path: file to append alerts to as JSON lines ("-" for stdout, NULL for
 * none). max_kept: bound on alerts kept for the report (later ones are
 * counted as dropped, still written to the file). Returns NULL with errno
 * set (e.g. the file cannot be opened).
 */
struct alerts *alerts__new(const char *path, size_t max_kept);
void alerts__free(struct alerts *a);

/*
 * Report the state of condition (kind, pid, key) at this drain: key tells
 * apart conditions of one kind and pid (the stack hash for site alerts, 0
 * otherwise). When active and not already raised, the alert is raised:
 * kept, and written as one JSON line which is flushed and fsync()ed. When
 * inactive, a raised condition is cleared (it may be raised again later).
 * Returns 1 if an alert was raised, 0 if not, -errno on a write error.
 */
int alerts__update(struct alerts *a, const struct alert *candidate, uint64_t key, bool active);

/* Alerts raised so far (for the report), in order. */
const struct alert *alerts__list(const struct alerts *a, size_t *n);
uint64_t alerts__dropped(const struct alerts *a);
/* Conditions that became active while the condition table was full (4096
 * raised at once): not raised, so not repeated at every drain either. */
uint64_t alerts__untracked(const struct alerts *a);

/* The JSON object for one alert (json-c), as written to the file and in
 * the report's "alerts" array. Returns NULL on allocation failure. */
struct json_object *alert__to_json(const struct alert *al);

#endif /* STRAY_ALERTS_H */
