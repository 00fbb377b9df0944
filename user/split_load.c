// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <pthread.h>
#include "split_load.h"

#define MAX_COPIES 8

struct copy_load {
	struct bpf_object *obj;
	pthread_t thread;
	bool started;
	int err;
};

/* Every map of copy becomes primary's map of the same name. */
static int share_maps(struct bpf_object *primary, struct bpf_object *copy)
{
	struct bpf_map *map, *own;

	bpf_object__for_each_map(map, copy) {
		own = bpf_object__find_map_by_name(primary, bpf_map__name(map));
		if (!own || bpf_map__fd(own) < 0)
			return -ENOENT;
		if (bpf_map__reuse_fd(map, bpf_map__fd(own)))
			return -errno;
	}
	return 0;
}

static void *load_copy(void *arg)
{
	struct copy_load *c = arg;

	c->err = bpf_object__load(c->obj);
	return NULL;
}

int split_load(struct bpf_object *primary, struct bpf_object *const *copies, size_t ncopies,
	       void (*between)(void *ctx), void *ctx)
{
	struct copy_load loads[MAX_COPIES] = { 0 };
	int err;

	if (ncopies > MAX_COPIES)
		return -E2BIG;
	err = bpf_object__load(primary);
	for (size_t i = 0; i < ncopies && !err; i++) {
		loads[i].obj = copies[i];
		err = share_maps(primary, copies[i]);
	}
	for (size_t i = 0; i < ncopies && !err; i++) {
		/* without a thread, that copy loads here: only slower */
		loads[i].started = !pthread_create(&loads[i].thread, NULL, load_copy, &loads[i]);
		if (!loads[i].started)
			load_copy(&loads[i]);
	}
	if (!err && between)
		between(ctx);
	for (size_t i = 0; i < ncopies; i++) {
		if (loads[i].started)
			pthread_join(loads[i].thread, NULL);
		err = err ?: loads[i].err;
	}
	return err;
}
