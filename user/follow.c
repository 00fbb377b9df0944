// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <bpf/libbpf.h>
#include "follow.h"

_Static_assert(sizeof(struct stray_follow_event) == 24, "ABI: stray_follow_event");

struct follow {
	struct ring_buffer *rb;
	const struct follow_ops *ops;
	void *ctx;
};

static int on_event(void *ctx, void *data, size_t size)
{
	const struct stray_follow_event *e = data;
	struct follow *f = ctx;

	if (size < sizeof(*e))
		return 0;
	switch (e->kind) {
	case STRAY_FOLLOW_FORK:
		f->ops->on_fork(f->ctx, e->parent, e->pid, e->ts_ns);
		break;
	case STRAY_FOLLOW_EXEC:
		f->ops->on_exec(f->ctx, e->pid, e->ts_ns);
		break;
	case STRAY_FOLLOW_EXIT:
		f->ops->on_exit(f->ctx, e->pid);
		break;
	}
	return 0;
}

struct follow *follow__new(struct loader *l, const struct follow_ops *ops, void *ctx)
{
	struct follow *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->ops = ops;
	f->ctx = ctx;
	f->rb = ring_buffer__new(loader__follow_events_fd(l), on_event, f, NULL);
	if (!f->rb) {
		int err = errno;

		free(f);
		errno = err;
		return NULL;
	}
	return f;
}

void follow__free(struct follow *f)
{
	if (!f)
		return;
	ring_buffer__free(f->rb);
	free(f);
}

int follow__fd(const struct follow *f)
{
	return ring_buffer__epoll_fd(f->rb);
}

int follow__consume(struct follow *f)
{
	int n = ring_buffer__consume(f->rb);

	return n < 0 ? n : 0;
}
