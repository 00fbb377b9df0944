/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers for end-to-end tests: run the real stray binary (path in $STRAY)
 * against fixture programs (in $FIXTURES) and read its JSON report.
 */
#ifndef STRAY_COMMON_E2E_H
#define STRAY_COMMON_E2E_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct e2e_run {
	int status;          /* stray's exit status (128 + signal if killed) */
	char *out;           /* everything stray wrote to stdout */
	char *err;           /* everything stray wrote to stderr */
	json_object *report; /* parsed --json file, or NULL when absent */
	char json_path[256]; /* the --json file e2e_stray_run chose */
	int out_fd, err_fd;  /* capture files while stray runs */
};

/* $STRAY, and $FIXTURES/name (a static buffer per call, 8 in rotation). */
const char *e2e_stray(void);
const char *e2e_fixture(const char *name);

/*
 * Run stray with args (NULL-terminated, without argv[0] and without
 * --json: a fresh temporary JSON path is inserted first). Waits for it,
 * with a timeout in seconds after which it is killed (status then 137).
 */
void e2e_stray_run(struct e2e_run *r, int timeout_s, const char *const *args);

/* Start stray in the background with args (JSON path chosen as above); the
 * caller signals and then calls e2e_stray_wait. */
pid_t e2e_stray_start(struct e2e_run *r, const char *const *args);
void e2e_stray_wait(struct e2e_run *r, pid_t pid, int timeout_s);

void e2e_run_free(struct e2e_run *r);

/* Reap pid, killing it (SIGKILL) if it is still running after timeout_s;
 * returns its shell-style status (code, or 128 + signal). */
int e2e_wait_status(pid_t pid, int timeout_s);

/*
 * Start a fixture with args (NULL-terminated, argv[0] included) and wait
 * until it prints a line "ready" on stdout. Returns its pid (> 0).
 */
pid_t e2e_start_fixture(const char *const *argv);
/* Block until stray (started with -v by e2e_stray_start) logs that its
 * probes are on, so what the test does next lands in the window rather
 * than during set-up. */
void e2e_wait_attached(struct e2e_run *r, pid_t stray);

/* Kill (SIGKILL) and reap a fixture started above. */
void e2e_stop_fixture(pid_t pid);

/* Integer at a dotted path ("totals.outstanding_bytes"); aborts the test
 * (cr_assert) when missing. */
int64_t e2e_int(json_object *obj, const char *path);

/* The suspect whose stack[0].function is fn0 and, when fn1 is not NULL,
 * whose stack[1].function is fn1; NULL when there is none. With pid > 0
 * only suspects of that pid match. */
json_object *e2e_suspect(json_object *report, int pid, const char *fn0, const char *fn1);

/* Number of suspects whose stack contains function fn anywhere. */
int e2e_suspects_with(json_object *report, const char *fn);

/* Sum of the integer field ("bytes", "allocations") over all heap suspects
 * (the kind the outstanding totals count; mmap suspects are left out), or
 * over those of pid when pid > 0. */
int64_t e2e_suspects_sum(json_object *report, int pid, const char *field);

/* Number of suspects (of pid when pid > 0). */
int e2e_suspects_count(json_object *report, int pid);

/* Whether target.pids lists pid. */
bool e2e_target_has_pid(json_object *report, int pid);

/* The whole content of the file at path (malloc'd, NUL-terminated), or
 * NULL when it cannot be opened. */
char *e2e_slurp(const char *path);

/* Like e2e_stray_run, but args are passed as given: no --json is inserted
 * (r->json_path stays empty, r->report NULL). */
void e2e_stray_run_nojson(struct e2e_run *r, int timeout_s, const char *const *args);

/* CLOCK_MONOTONIC seconds, and a sleep that resumes after signals. */
double e2e_now_s(void);
void e2e_sleep_s(double s);

/* obj[key] (cr_assert that it exists, naming the key and the object), and
 * the same as a number (int or double). */
json_object *e2e_member(json_object *obj, const char *key);
double e2e_number(json_object *obj, const char *key);

/* Block until stray (started with -v) logs that its probes are on, so a
 * signal sent next lands in the window rather than during set-up. */
void e2e_wait_attached(struct e2e_run *r, pid_t stray);

/*
 * Start fixture fx (until it prints "ready"), then stray -v [opt] -p PID
 * against it in the background, and wait until its probes are on.
 * Returns the fixture's pid; *stray receives stray's (for e2e_stray_wait).
 */
pid_t e2e_attach_fixture(struct e2e_run *r, const char *const *fx, const char *opt, pid_t *stray);

#endif /* STRAY_COMMON_E2E_H */
