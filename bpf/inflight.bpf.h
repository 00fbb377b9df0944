/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Each thread's in-flight allocator call (struct stray_inflight), in task
 * local storage rather than a hash map keyed by thread id: the slot of the
 * current task is found without hashing and never allocated or freed in
 * the steady state (a hash map cost an insert and a delete per call, most
 * of stray's work per malloc after the trap itself). A slot lives as long
 * as its thread, so the storage is bounded by the threads of the targets.
 */
#ifndef STRAY_INFLIGHT_BPF_H
#define STRAY_INFLIGHT_BPF_H

#include "stray.h"

struct inflight_slot {
	struct stray_inflight rec; /* first: a record's address is its slot's */
	__u64 live;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight_slot);
} inflight SEC(".maps");

/* The slot's record, or NULL when it holds none. */
static __always_inline struct stray_inflight *inflight_rec(struct inflight_slot *s)
{
	return s && s->live ? &s->rec : NULL;
}

/* The current thread's record, or NULL. */
static __always_inline struct stray_inflight *inflight_lookup(void)
{
	return inflight_rec(bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0));
}

/* The current thread's slot, made if it has none (NULL: no memory). An
 * entry looks its slot up once, for the record and for inserting one. */
static __always_inline struct inflight_slot *inflight_slot_made(void)
{
	return bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* End the record in (from inflight_lookup or inflight_rec): no second
 * storage look-up, its slot starts where it does. */
static __always_inline void inflight_delete(struct stray_inflight *in)
{
	((struct inflight_slot *)in)->live = 0;
}

/* Make *rec the record of slot s unless it has one. Returns 0, or non-zero
 * when it has one or there is no slot. */
static __always_inline int inflight_insert(struct inflight_slot *s, const struct stray_inflight *rec)
{
	if (!s || s->live)
		return -1;
	s->rec = *rec;
	s->live = 1;
	return 0;
}

#endif /* STRAY_INFLIGHT_BPF_H */
