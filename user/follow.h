/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --follow in -p mode: the fork, exec and exit events of the targets
 * (bpf/follow.bpf.h), read from their ring buffer and handed to the
 * session, which attaches, re-resolves or folds the process.
 */
#ifndef STRAY_FOLLOW_H
#define STRAY_FOLLOW_H

#include <stdint.h>
#include "loader.h"

struct follow_ops {
	/* ts_ns: bpf_ktime_get_ns() (CLOCK_MONOTONIC) at the event; blocks
	 * older than an exec belong to the replaced image. */
	void (*on_fork)(void *ctx, int parent, int child, uint64_t ts_ns);
	void (*on_exec)(void *ctx, int pid, uint64_t ts_ns);
	void (*on_exit)(void *ctx, int pid);
};

struct follow;

/* NULL with errno set on failure. The loader must have been opened with
 * loader_opts.follow. */
struct follow *follow__new(struct loader *l, const struct follow_ops *ops, void *ctx);
void follow__free(struct follow *f);

/* A descriptor that polls readable when events are waiting. */
int follow__fd(const struct follow *f);

/* Hand every waiting event to the ops, in order. Returns 0 or -errno. */
int follow__consume(struct follow *f);

#endif /* STRAY_FOLLOW_H */
