/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Run mode: start a command under ptrace (PTRACE_SEIZE) so that it and
 * every process it forks is held stopped at exec, fork and exit while
 * stray attaches probes or snapshots its address space. Signals are passed
 * through untouched and group-stops are kept (PTRACE_LISTEN).
 */
#ifndef STRAY_TRACEE_H
#define STRAY_TRACEE_H

#include <stdbool.h>

struct tracee_ops {
	/* pid has just exec'd (libraries not mapped yet). Non-zero: fatal for
	 * the run when pid is the root command, otherwise pid goes untraced. */
	int (*on_exec)(void *ctx, int pid);
	/* child was forked by parent and has not run yet. */
	int (*on_fork)(void *ctx, int parent, int child);
	/* pid is exiting; its address space is still intact. */
	void (*on_exit_stop)(void *ctx, int pid);
	/* pid is gone (reaped). */
	void (*on_exited)(void *ctx, int pid, int wait_status);
};

struct tracee;

/*
 * Find argv[0] (PATH search as execvp does), fork, seize the child and let
 * it exec. Returns NULL with errno set; ENOENT/EACCES mean the command
 * cannot be run. max_procs bounds the processes followed at once.
 */
struct tracee *tracee__spawn(char *const argv[], const struct tracee_ops *ops, void *ctx,
			     int max_procs);

/* Handle every pending ptrace event (call on SIGCHLD). Returns 0, or
 * -errno when the root command could not be started. */
int tracee__handle_events(struct tracee *t);

int tracee__root_pid(const struct tracee *t);
bool tracee__root_exited(const struct tracee *t);
/* Shell-style exit status of the root command: code, or 128 + signal. */
int tracee__root_status(const struct tracee *t);
/* Processes that could not be followed (table full or attach failed). */
unsigned long tracee__untraced(const struct tracee *t);

/* Detach from every process still traced and free. Accepts NULL. */
void tracee__free(struct tracee *t);

#endif /* STRAY_TRACEE_H */
