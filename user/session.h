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
};

/*
 * Run the session to its end and write the reports. Returns the process
 * exit status for stray: the command's status in run mode, 0 in -p mode,
 * 1 when stray itself failed (after printing one line on stderr).
 */
int session__run(const struct session_opts *opts);

#endif /* STRAY_SESSION_H */
