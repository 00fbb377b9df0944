/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Poisson sampling by bytes (--sample T), as tcmalloc and heapprof do it:
 * every thread keeps a countdown of bytes until its next sample, drawn from
 * an exponential distribution of mean T. An allocation of Z bytes that
 * reaches the countdown is sampled (probability 1 - e^(-Z/T), whatever the
 * other allocations of the thread were: the exponential is memoryless) and
 * the countdown is drawn afresh. User space turns each sample into an
 * unbiased estimate (user/sampling.c).
 *
 * BPF has no floating point: user space precomputes a table of exponential
 * draws (the quantiles of Exp(T) at the midpoints of STRAY_SAMPLE_DRAWS
 * equal strata) and the programs pick one with bpf_get_prandom_u32().
 *
 * The decision is made at the allocation's entry, where its size is known,
 * so that an unsampled call creates no in-flight record and takes no stack.
 * Without a record, the calls the allocator makes inside an unsampled call
 * (operator new's malloc, malloc's own mmap) must still not be seen as the
 * program's: the thread remembers the unsampled call's entry stack pointer
 * until the call returns. A call with a return probe is seen returning
 * (sample_on_return). operator new has none, and is known to be still
 * running as its in-flight record is (stray_inflight): its return address
 * is still in its slot. That test cannot serve calls with a return probe:
 * the kernel replaces their return address with its trampoline's. (When
 * unsampled calls skip their return probe, session programs, the slot test
 * serves them all: set skip_by_slot for every call.)
 *
 * Per thread, not per CPU: a uprobe program can be preempted by another
 * thread's on the same CPU (it runs with migration disabled, not
 * preemption), and interleaving two threads' read-modify-write of one
 * countdown would bias it. Task storage is freed with its thread, so the
 * map is bounded by the number of threads.
 */
#ifndef STRAY_SAMPLE_BPF_H
#define STRAY_SAMPLE_BPF_H

#include "stray.h"

/* Mean bytes between samples; 0: exact tracking. Read-only after load, so
 * in exact mode the verifier removes every sampling branch. */
const volatile __u64 sample_bytes = 0;
/* Exponential draws of mean sample_bytes, each at least 1. */
const volatile __u64 sample_draws[STRAY_SAMPLE_DRAWS] = {};

struct sample_state {
	__u64 countdown; /* bytes until the next sample; 0: not drawn yet */
	__u64 skip_sp;   /* entry stack pointer of the last unsampled call, 0: none */
	__u64 skip_ret;  /* the return address at skip_sp at that entry */
	__u32 skip_new;  /* that call is an operator new whose allocator call
			    has not been seen yet (it may still tail-jump) */
	__u32 skip_by_slot; /* that call has no return probe: it runs while
			       skip_ret is in its slot */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sample_state);
} sample_states SEC(".maps");

/* How an entry takes part in sampling. */
enum sample_call {
	SAMPLE_CALL_EXACT,   /* not an allocation of its own (delete, mmap, mremap) */
	SAMPLE_CALL_ALLOC,   /* malloc family: unsampled means no record at all */
	SAMPLE_CALL_NEW,     /* operator new: same, and may tail-jump into another new */
	SAMPLE_CALL_REALLOC, /* realloc: keeps its record (the old block), unsampled
				means the new block is not recorded */
};

enum sample_verdict {
	SAMPLE_TRACK,  /* go on as in exact mode */
	SAMPLE_NESTED, /* inside an unsampled call: not the program's call */
	SAMPLE_SKIP,   /* an allocation not sampled */
};

static __always_inline bool sampling(void)
{
	return sample_bytes != 0;
}

static __always_inline struct sample_state *sample_state(void)
{
	return bpf_task_storage_get(&sample_states, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/*
 * Whether a call entering at sp runs inside the thread's last unsampled
 * call: deeper on the stack, while that call runs (see the top of this
 * file). At the same stack pointer only operator new's tail jump into
 * another new is nested.
 */
static __always_inline bool sample_nested(const struct sample_state *st, __u64 sp, bool is_new)
{
	__u64 slot = 0;

	if (!st->skip_sp || sp > st->skip_sp)
		return false;
	if (sp == st->skip_sp && !(is_new && st->skip_new))
		return false;
	if (!st->skip_by_slot)
		return true;
	if (bpf_probe_read_user(&slot, sizeof(slot), (void *)st->skip_sp))
		return false;
	return slot == st->skip_ret;
}

static __always_inline __u64 sample_draw(void)
{
	return sample_draws[bpf_get_prandom_u32() & (STRAY_SAMPLE_DRAWS - 1)];
}

/* Count size bytes down; true when they reach the countdown (a sample). */
static __always_inline bool sample_crossed(struct sample_state *st, __u64 size)
{
	if (!st->countdown)
		st->countdown = sample_draw();
	if (size < st->countdown) {
		st->countdown -= size;
		return false;
	}
	st->countdown = sample_draw();
	return true;
}

/* Remember an unsampled call so that the calls inside it are ignored. */
static __always_inline void sample_mark_skipped(struct sample_state *st, __u64 sp, bool is_new)
{
	if (bpf_probe_read_user(&st->skip_ret, sizeof(st->skip_ret), (void *)sp)) {
		st->skip_sp = 0;
		return;
	}
	st->skip_sp = sp;
	st->skip_new = is_new;
	st->skip_by_slot = is_new;
}

/*
 * The sampling decision for the outermost allocator call of a thread (one
 * with no in-flight record around it), entering at sp for size bytes.
 */
static __always_inline enum sample_verdict sample_entry(__u64 sp, __u64 size, enum sample_call call)
{
	bool is_new = call == SAMPLE_CALL_NEW;
	struct sample_state *st = sample_state();

	if (!st) /* no memory for the thread's state: track it exactly */
		return SAMPLE_TRACK;
	if (sample_nested(st, sp, is_new)) {
		/* operator new's allocator call: no tail jump after it */
		if (!is_new)
			st->skip_new = 0;
		return SAMPLE_NESTED;
	}
	st->skip_sp = 0; /* the last unsampled call has returned */
	if (call == SAMPLE_CALL_EXACT || sample_crossed(st, size))
		return SAMPLE_TRACK;
	if (call != SAMPLE_CALL_REALLOC) /* realloc's record covers its calls */
		sample_mark_skipped(st, sp, is_new);
	return SAMPLE_SKIP;
}

/* A return probe at sp: the thread's unsampled call, if it was this one or
 * one it was nested in, has returned. */
static __always_inline void sample_on_return(__u64 sp)
{
	struct sample_state *st = bpf_task_storage_get(&sample_states, bpf_get_current_task_btf(), 0, 0);

	if (st && st->skip_sp && sp > st->skip_sp)
		st->skip_sp = 0;
}

/* For entries outside the decision (munmap): inside an unsampled call? */
static __always_inline bool sample_inside_skipped(__u64 sp)
{
	struct sample_state *st = bpf_task_storage_get(&sample_states, bpf_get_current_task_btf(), 0, 0);

	return st && sample_nested(st, sp, false);
}

#endif /* STRAY_SAMPLE_BPF_H */
