/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The block table (see stray.h): heap blocks in a set-associative array,
 * the allocs hash map taking only what a full set cannot. Included by
 * stray.bpf.c.
 */
#ifndef STRAY_BLOCKS_BPF_H
#define STRAY_BLOCKS_BPF_H

/* Sized by user space (sets x STRAY_BLOCK_WAYS slots), mapped by it to
 * read and forget blocks without a system call per slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, STRAY_BLOCK_WAYS);
	__type(key, __u32);
	__type(value, struct stray_block_slot);
} block_slots SEC(".maps");

/* log2 of the number of sets, set by user space; 0: no table. */
const volatile __u32 block_set_bits = 0;

/* Heap blocks in the allocs hash map (their set was full), kept by every
 * insert and delete there, user space's too. While it is 0, a free that
 * misses the table needs no hash look-up. It may count high for a moment
 * (an insert not yet undone), never low: a block in the map is counted
 * before any free of it can run. */
__u64 heap_in_allocs SEC(".bss");

/* Whether any heap block may be in the allocs hash map (see above). */
static __always_inline bool heap_blocks_in_map(void)
{
	return *(volatile __u64 *)&heap_in_allocs != 0;
}

enum slot_take {
	SLOT_ABSENT, /* not in the table */
	SLOT_TAKEN,  /* taken into *out */
	SLOT_LOST,   /* found, but a concurrent taker (double free) won */
};

static __always_inline __u32 block_set_base(__u32 tgid, __u64 addr)
{
	/* Fibonacci hashing: the top bits of the product mix every bit of
	 * the address (heap blocks differ in their middle bits). */
	__u64 h = (addr ^ ((__u64)tgid << 47)) * 0x9e3779b97f4a7c15ULL;

	return (__u32)(h >> (64 - (block_set_bits & 31))) * STRAY_BLOCK_WAYS;
}

static __always_inline struct stray_block_slot *block_slot(__u32 base, __u32 way)
{
	__u32 i = base + way;

	return bpf_map_lookup_elem(&block_slots, &i);
}

/* Take slot s, found holding tgid's block: clearing tgid first makes it
 * ours (no one claims a slot whose addr is set), addr last frees it. */
static __always_inline enum slot_take take_slot(struct stray_block_slot *s, __u32 tgid,
						struct stray_alloc *out)
{
	if (__sync_val_compare_and_swap(&s->tgid, (__u64)tgid, 0) != tgid)
		return SLOT_LOST;
	*out = s->a;
	/* A plain store frees it: a claimer that does not see it yet only
	 * passes the slot by. */
	*(volatile __u64 *)&s->addr = 0;
	return SLOT_TAKEN;
}

static __always_inline bool slot_holds(const struct stray_block_slot *s, __u32 tgid, __u64 addr)
{
	return s->addr == addr && *(volatile __u64 *)&s->tgid == tgid;
}

/* Take block addr of tgid out of the table into *out. */
static __always_inline enum slot_take take_block_slot(__u32 tgid, __u64 addr, struct stray_alloc *out)
{
	struct stray_block_slot *s;
	__u32 base;

	if (!block_set_bits)
		return SLOT_ABSENT;
	base = block_set_base(tgid, addr);
#pragma unroll
	for (__u32 way = 0; way < STRAY_BLOCK_WAYS; way++) {
		s = block_slot(base, way);
		if (s && slot_holds(s, tgid, addr))
			return take_slot(s, tgid, out);
	}
	return SLOT_ABSENT;
}

/* Store block a at addr in a free slot of its set. A record of the same
 * block still there (its free went unseen) is taken into *stale first and
 * *had_stale set. Returns false when the set is full. */
static __always_inline bool store_block_slot(__u32 tgid, __u64 addr, const struct stray_alloc *a,
					     struct stray_alloc *stale, bool *had_stale)
{
	struct stray_block_slot *s;
	__u32 base;

	*had_stale = take_block_slot(tgid, addr, stale) == SLOT_TAKEN;
	if (!block_set_bits)
		return false;
	base = block_set_base(tgid, addr);
#pragma unroll
	for (__u32 way = 0; way < STRAY_BLOCK_WAYS; way++) {
		s = block_slot(base, way);
		if (!s || s->addr || __sync_val_compare_and_swap(&s->addr, 0, addr))
			continue;
		s->a = *a;
		/* Publishes the record: an exchange is a full barrier, so
		 * whoever sees this tgid sees the fields above. */
		__sync_lock_test_and_set(&s->tgid, (__u64)tgid);
		return true;
	}
	return false;
}

#endif
