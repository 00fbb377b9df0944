// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>
#include "attach_prep.h"

static void *load_timers(void *arg)
{
	struct attach_prep *p = arg;

	p->timers = timers__new(&p->timers_opts, &p->timers_errmsg);
	p->timers_err = p->timers ? 0 : errno;
	return NULL;
}

static void *read_target(void *arg)
{
	struct attach_prep *p = arg;

	p->alloc_err = allocator__resolve(p->pid, false, &p->alloc);
	/* The snapshot goes with the resolve: both before the probes. */
	if (!p->alloc_err)
		symbolizer__snapshot_process(p->sym, p->pid, true);
	return NULL;
}

/* Run fn on a thread (*running says so), or here when none can be made:
 * only slower. */
static void start(pthread_t *thread, bool *running, void *(*fn)(void *), struct attach_prep *p)
{
	*running = !pthread_create(thread, NULL, fn, p);
	if (!*running)
		fn(p);
}

int attach_prep__start(struct attach_prep *p)
{
	if (p->pid)
		start(&p->target_thread, &p->target_running, read_target, p);
	if (p->load_timers)
		start(&p->timers_thread, &p->timers_running, load_timers, p);
	return 0;
}

void attach_prep__join_target(struct attach_prep *p)
{
	if (p->target_running)
		pthread_join(p->target_thread, NULL);
	p->target_running = false;
}

void attach_prep__join(struct attach_prep *p)
{
	attach_prep__join_target(p);
	if (p->timers_running)
		pthread_join(p->timers_thread, NULL);
	p->timers_running = false;
}
