/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The part of attaching that does not need the allocator probes' BPF
 * object, done on threads of its own while that object loads (its
 * verification is most of the attach time, issue 7): the timers BPF object
 * loaded, and for a -p target its allocator resolved and its maps snapshot
 * taken (lazily: the separate debug info is searched after the attach).
 *
 * While the target's thread runs, it alone uses the symbolizer (and
 * libdw); the caller must not touch them before attach_prep__join_target.
 */
#ifndef STRAY_ATTACH_PREP_H
#define STRAY_ATTACH_PREP_H

#include <pthread.h>
#include <stdbool.h>
#include "loader.h"
#include "symbolize.h"
#include "timers.h"

struct attach_prep {
	/* in */
	int pid;                       /* the -p target, 0: none (run mode) */
	struct symbolizer *sym;        /* the pid's snapshot goes there */
	bool load_timers;
	struct timers_opts timers_opts;
	/* out, valid after attach_prep__join */
	struct allocator alloc;        /* pid's, when alloc_err is 0 */
	int alloc_err;                 /* allocator__resolve's result */
	struct timers *timers;         /* NULL: not loaded, see timers_err */
	const char *timers_errmsg;
	int timers_err;                /* errno of a failed timers__new */
	/* private */
	pthread_t target_thread, timers_thread;
	bool target_running, timers_running;
};

/* Start the work on two threads (the target's, the timers'), or do it
 * here when no thread can be made. Returns 0. */
int attach_prep__start(struct attach_prep *p);

/* Wait for the target's part to end (no-op if not running). */
void attach_prep__join_target(struct attach_prep *p);

/* Wait for all of it to end (no-op if not running). */
void attach_prep__join(struct attach_prep *p);

#endif /* STRAY_ATTACH_PREP_H */
