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

/*
 * Most threads keep their slot in this array instead, at index tid %
 * INFLIGHT_SLOTS, owned for the thread's life: an array look-up is an
 * address computation where a task storage look-up is a helper call, and
 * an entry, a return and a free each need one. A thread finds its array
 * slot owned by another thread (tids that collide) at its first entry,
 * and then uses task storage for its life: a thread with a slot in task
 * storage never claims an array slot, so its record is in one place only.
 * The owner is the thread's tid and start time together (a tid is reused);
 * thread_exit frees the slot.
 */
#define INFLIGHT_SLOTS 8192

struct inflight_owned {
	struct inflight_slot slot; /* first: a record's address is its slot's */
	__u64 owner;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, INFLIGHT_SLOTS);
	__type(key, __u32);
	__type(value, struct inflight_owned);
} inflight_slots SEC(".maps");

/* Slots in use less one, a power of two less one: user space lowers it
 * (STRAY_INFLIGHT_SLOTS) to make threads share slots in tests. */
const volatile __u32 inflight_slot_mask = INFLIGHT_SLOTS - 1;

/* Task t's array slot, which it owns if its owner is *owner. */
static __always_inline struct inflight_owned *inflight_owned_slot(struct task_struct *t, __u64 *owner)
{
	__u32 i = t->pid & inflight_slot_mask & (INFLIGHT_SLOTS - 1);

	*owner = (t->start_time ^ ((__u64)t->pid << 44)) | 1;
	return bpf_map_lookup_elem(&inflight_slots, &i);
}

/* The slot's record, or NULL when it holds none. */
static __always_inline struct stray_inflight *inflight_rec(struct inflight_slot *s)
{
	return s && s->live ? &s->rec : NULL;
}

/* The current thread's record, or NULL. */
static __always_inline struct stray_inflight *inflight_lookup(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct inflight_owned *o;
	__u64 owner;

	o = inflight_owned_slot(t, &owner);
	if (o && o->owner == owner)
		return inflight_rec(&o->slot);
	return inflight_rec(bpf_task_storage_get(&inflight, t, 0, 0));
}

/* The current thread's slot, made if it has none (NULL: no memory). An
 * entry looks its slot up once, for the record and for inserting one. */
static __always_inline struct inflight_slot *inflight_slot_made(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct inflight_slot *stored;
	struct inflight_owned *o;
	__u64 owner;

	o = inflight_owned_slot(t, &owner);
	if (o && o->owner == owner)
		return &o->slot;
	stored = bpf_task_storage_get(&inflight, t, 0, 0);
	if (stored)
		return stored;
	if (o && !o->owner && !__sync_val_compare_and_swap(&o->owner, 0, owner)) {
		o->slot.live = 0;
		return &o->slot;
	}
	return bpf_task_storage_get(&inflight, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* Thread t exits: its slot, wherever it is, goes. */
static __always_inline void inflight_release(struct task_struct *t)
{
	struct inflight_owned *o;
	__u64 owner;

	o = inflight_owned_slot(t, &owner);
	if (o && o->owner == owner) {
		o->slot.live = 0;
		__sync_val_compare_and_swap(&o->owner, owner, 0);
	}
	bpf_task_storage_delete(&inflight, t);
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
