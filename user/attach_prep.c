// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>
#include "attach_prep.h"

static void *prepare(void *arg)
{
	struct attach_prep *p = arg;

	if (p->load_timers) {
		p->timers = timers__new(&p->timers_opts, &p->timers_errmsg);
		p->timers_err = p->timers ? 0 : errno;
	}
	if (p->pid) {
		p->alloc_err = allocator__resolve(p->pid, false, &p->alloc);
		/* The snapshot goes with the resolve: both before the probes. */
		if (!p->alloc_err)
			symbolizer__snapshot_process(p->sym, p->pid, true);
	}
	return NULL;
}

int attach_prep__start(struct attach_prep *p)
{
	int err = pthread_create(&p->thread, NULL, prepare, p);

	/* Without a thread it is only slower. */
	if (err)
		prepare(p);
	p->running = !err;
	return 0;
}

void attach_prep__join(struct attach_prep *p)
{
	if (!p->running)
		return;
	pthread_join(p->thread, NULL);
	p->running = false;
}
