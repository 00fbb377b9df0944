/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tracing session: attach to the targets, drain every interval, end the
 * window (duration, signal, target exit), build and write the report.
 */
#ifndef STRAY_SESSION_H
#define STRAY_SESSION_H

#include <stdbool.h>
#include <stdint.h>

struct session_opts {
	int pid;              /* -p; 0 in run mode */
	char **command;       /* run mode argv, NULL-terminated; NULL with -p */
	double duration_s;    /* -d; 0: until the target exits or a signal */
	double interval_s;    /* -i */
	double min_age_s;     /* --min-age */
	int top;              /* --top: suspects in the text report, 0 = all */
	const char *json_path;/* --json */
	uint32_t max_allocs;
	uint32_t max_sites;
	uint32_t max_procs;
	bool verbose;
	/* growth analysis and alerts */
	bool watch;                 /* --watch: continuous, until stopped */
	double report_every_s;      /* --report-every: rewrite --json periodically; 0 off */
	const char *alerts_path;    /* --alerts FILE ("-" stdout) */
	double growth_alert_bph;    /* --growth-alert, bytes per hour */
	uint64_t heap_warn_bytes;   /* --heap-warn, 0 off */
	uint64_t heap_critical_bytes;
	double oom_horizon_s;       /* --oom-horizon */
	bool fail_on_leak;          /* --fail-on-leak: exit 3 on a "leak" verdict */
	bool no_timers;             /* --no-timers */
	bool follow;                /* --follow: -p mode traces the target's children too */
	uint64_t sample_bytes;      /* --sample: mean bytes between samples, 0: exact */
	uint32_t unwind_mode;       /* --unwind: enum stray_unwind_mode */
	uint32_t max_depth;         /* --max-depth */
};

/* Exit status of stray when --fail-on-leak finds a suspect with verdict "leak". */
#define STRAY_EXIT_LEAK 3

/*
 * Run the session to its end and write the reports. Returns the process
 * exit status for stray: the command's status in run mode, 0 in -p mode,
 * 1 when stray itself failed (after printing one line on stderr).
 */
int session__run(const struct session_opts *opts);

#endif /* STRAY_SESSION_H */
