/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Timer leaks: the timerfd and POSIX timer syscalls, setitimer/alarm, and
 * libuv timer handles of the target processes, traced in the kernel
 * (bpf/timers.bpf.c) and reconciled against /proc/PID/fdinfo at each drain.
 * A timer counts as outstanding when it was created in the window and is
 * still held at its end; a process's exit ends its window (like memory:
 * what it held when it exited is reported), it does not release.
 */
/*
 * Session integration, in order:
 *   timers__new once (after the loader), unless --no-timers;
 *   timers__attach(pid, true) at each exec stop (after timers__on_exec),
 *     timers__attach(child, false) at each fork stop, and
 *     timers__attach(pid, false) for -p;
 *   timers__reconcile(pid) for each live pid at each drain;
 *   timers__on_exit(pid) at the ptrace exit stop (run mode) or when an
 *     attached process is found gone (attach mode), then timers__detach;
 *   at report time timers__collect (reconciles live pids itself),
 *     timers__itimers, timers__totals, timers__dropped.
 * Kernel side: BTF raw tracepoints (kmem_cache_free, sched_process_exit),
 * pid-filtered uprobes on libc's timer wrappers (entry and return) and on
 * libuv, and a task_file iterator; no tracefs. Nothing runs on the
 * syscall path of other processes.
 */
#ifndef STRAY_TIMERS_H
#define STRAY_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "stray.h"

struct timers;

struct timers_opts {
	uint32_t max_timers; /* timers tracked at once (kernel map capacity) */
	uint32_t max_sites;  /* creation stacks tracked at once */
	uint32_t max_targets;
};

/* Outstanding timers of one kind, process and creation stack. */
struct timer_group {
	const char *kind; /* "timerfd", "posix", "uv_timer" (static strings) */
	int pid;
	uint64_t outstanding, armed, periodic;
	int64_t interval_ns; /* shared repeat interval of the periodic ones, or -1 */
	uint32_t depth;
	uint64_t ips[STRAY_MAX_STACK_DEPTH]; /* creation stack, innermost first:
						ips[0] is in the creator's caller */
};

struct itimer_state {
	int pid;
	const char *which; /* "real", "virtual", "prof" */
	int64_t value_ns, interval_ns;
};

/* Open, load and attach the kernel side. NULL with errno; *errmsg names
 * the step that failed. */
struct timers *timers__new(const struct timers_opts *opts, const char **errmsg);
void timers__free(struct timers *t);

/* Trace pid from now on (call with the process stopped, e.g. at exec or
 * fork in run mode): its libc timer wrappers, and libuv's timer functions when
 * it maps an object defining them (at_exec: predict from DT_NEEDED as
 * allocator__resolve does). Returns 0 or -errno. */
int timers__attach(struct timers *t, int pid, bool at_exec);
/* pid exec'd: its POSIX timers and close-on-exec timerfds are gone. */
void timers__on_exec(struct timers *t, int pid);
/* pid is about to exit, its fds still open (ptrace exit stop) or has
 * exited: freeze what it holds for the report and free its kernel state. */
void timers__on_exit(struct timers *t, int pid);
void timers__detach(struct timers *t, int pid);

/* Reconcile pid's timerfds against /proc/PID/fdinfo (drain time). */
int timers__reconcile(struct timers *t, int pid);

/* Everything outstanding now (live processes and frozen exited ones),
 * grouped, sorted by outstanding descending. *groups is malloc'ed. */
int timers__collect(struct timers *t, struct timer_group **groups, size_t *n);
int timers__itimers(struct timers *t, struct itimer_state **out, size_t *n);
void timers__totals(const struct timers *t, uint64_t *created, uint64_t *released);
/* Drop counters: name/value pairs (static names), for the report. */
size_t timers__dropped(const struct timers *t, const char **names, uint64_t *values, size_t max);

#endif /* STRAY_TIMERS_H */
