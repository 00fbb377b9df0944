// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * stray's allocation tracer: uprobes on the allocator's entry points keep,
 * in kernel maps, every outstanding allocation of the target processes and
 * a per-call-site aggregate. User space only drains the maps.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "stray.h"
#include "stack.bpf.h"
#include "inflight.bpf.h"
#include "sample.bpf.h"

#define EEXIST 17
#define MAP_SHARED_F 0x01
#define MAP_FIXED_F 0x10
#define MAP_ANONYMOUS_F 0x20
#define MAP_STACK_F 0x20000
#define MREMAP_DONTUNMAP_F 4
/* mmap and mremap return -errno in [-4095, -1] on failure (MAP_FAILED: -1). */
#define IS_MAP_ERR(x) ((__u64)(x) >= (__u64)-4095)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Processes being traced (tgid -> unused). The kernel already filters
 * pid-attached uprobes by mm; this keeps stray correct if a probe is ever
 * attached system-wide, and costs one lookup per trap. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

/*
 * Where is_target usually ends: slot tgid % STRAY_TARGET_SLOTS holds tgid
 * while that target owns the slot (the first of the targets sharing it).
 * An array look-up is compiled inline, a hash look-up is a helper call
 * that hashes the key; this check runs on every entry trap. A target
 * without its slot is still found in targets.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STRAY_TARGET_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} target_slots SEC(".maps");

/* Outstanding allocations. Deliberately not LRU: an LRU map silently evicts
 * the oldest blocks, which are exactly what leaks are made of. When it is
 * full, new blocks are counted as untracked instead. Not preallocated:
 * a million preallocated entries took 22 ms of every start and 80 MiB
 * whatever the target holds, and the allocating map was no slower in the
 * malloc/free benchmark. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, STRAY_DEFAULT_MAX_ALLOCS);
	__type(key, struct stray_alloc_key);
	__type(value, struct stray_alloc);
} allocs SEC(".maps");

/* Call sites with their stack and aggregates. User space reclaims sites with
 * nothing outstanding when the map fills, so stack storage never freezes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAY_DEFAULT_MAX_SITES);
	__type(key, struct stray_site_key);
	__type(value, struct stray_site);
} sites SEC(".maps");

/* Counter slots of sites (stray.h): sized and mapped by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stray_site_slot);
} site_slots SEC(".maps");

/* log2 of site_slots' entries, set by user space; 0: no slots. */
const volatile __u32 site_slot_bits = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stray_counters);
} counters SEC(".maps");

/* A stray_site is too large for the 512-byte BPF stack: build it here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stray_site);
} scratch SEC(".maps");

static __always_inline void count(enum stray_counter c)
{
	__u32 zero = 0;
	struct stray_counters *cs = bpf_map_lookup_elem(&counters, &zero);

	if (cs && c < STRAY_CNT_NR)
		cs->v[c]++;
}

/* A block (or region piece) of size bytes that the full allocs map (and,
 * for a block, its full set of the block table) could not take: the
 * report says how many and how large. */
static __always_inline void count_untracked(__u64 size)
{
	__u32 zero = 0;
	struct stray_counters *cs = bpf_map_lookup_elem(&counters, &zero);

	if (!cs)
		return;
	cs->v[STRAY_CNT_ALLOC_MAP_FULL]++;
	cs->v[STRAY_CNT_UNTRACKED_BYTES] += size;
}

#include "unwind.bpf.h"
#include "blocks.bpf.h"

static __always_inline bool is_target(__u32 tgid)
{
	__u32 i = tgid % STRAY_TARGET_SLOTS;
	__u64 *slot = bpf_map_lookup_elem(&target_slots, &i);

	if (slot && *slot == tgid)
		return true;
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

/* Give target tgid its slot if no other target holds it. */
static __always_inline void claim_target_slot(__u32 tgid)
{
	__u32 i = tgid % STRAY_TARGET_SLOTS;
	__u64 *slot = bpf_map_lookup_elem(&target_slots, &i);

	if (slot)
		__sync_val_compare_and_swap(slot, 0, (__u64)tgid);
}

/* targets' value: bit set once the process has a tracked mmap region. Most
 * munmaps of most processes (glibc's free of a large block unmaps its own
 * chunk) concern no tracked region: without any, the region search, up to
 * 2 x STRAY_UNMAP_SEARCH_PAGES lookups, is skipped. Set once, never
 * cleared, so it can only make stray search when there is nothing to find. */
#define TARGET_HAS_MMAP 2u

static __always_inline void mark_has_mmap(__u32 tgid)
{
	__u32 *flags = bpf_map_lookup_elem(&targets, &tgid);

	/* A plain read-modify-write is enough: every concurrent writer sets
	 * the same bit (user space writes the value only at attach and exec). */
	if (flags && !(*flags & TARGET_HAS_MMAP))
		*flags |= TARGET_HAS_MMAP;
}

static __always_inline bool has_mmap(__u32 tgid)
{
	__u32 *flags = bpf_map_lookup_elem(&targets, &tgid);

	return flags && (*flags & TARGET_HAS_MMAP);
}

/* What capture_user_stack found besides the frames (a global function
 * returns one scalar): the stack's hash, and whether the frames were
 * written to the scratch site. */
struct stack_capture {
	__u64 hash;
	__u32 ips_filled;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_capture);
} captures SEC(".maps");

/*
 * Walk the current user stack into the scratch site's ips and depth, and
 * its hash into captures; returns the depth. With memo (return probes),
 * a remembered walk that still holds (unwind.bpf.h) gives the depth and
 * hash and leaves the frames unwritten. A global function: the verifier
 * checks it once per program instead of at every inlined call site (the
 * DWARF walker, inlined at each of the return program's record_alloc
 * calls, made loading the session program take 0.75 s of stray's
 * start-up).
 */
__noinline int capture_user_stack(struct pt_regs *ctx, __u64 ret_slot, __u32 memo)
{
	struct stack_capture *c;
	struct stray_site *s;
	bool filled = true;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&scratch, &zero);
	c = bpf_map_lookup_elem(&captures, &zero);
	if (!s || !c)
		return 0;
	s->depth = unwind_user_stack(ctx, ret_slot, s->ips, memo, &c->hash, &filled);
	c->ips_filled = filled;
	return s->depth;
}

static __always_inline struct stray_site_slot *site_slot(__u64 tag)
{
	__u32 i = stray_site_slot_index(tag, site_slot_bits);

	return site_slot_bits ? bpf_map_lookup_elem(&site_slots, &i) : NULL;
}

/* The counters in the slot of site (tgid, stack_hash), if it holds one. */
static __always_inline struct stray_site_counts *slot_counts(__u32 tgid, __u64 stack_hash)
{
	__u64 tag = stray_site_tag(tgid, stack_hash);
	struct stray_site_slot *slot = site_slot(tag);

	return slot && *(volatile __u64 *)&slot->tag == tag ? &slot->counts : NULL;
}

/* Where site (tgid, stack_hash) counts: its slot, else its map value;
 * NULL when the site is gone (reclaimed, or never made: the map was full). */
static __always_inline struct stray_site_counts *site_counts(__u32 tgid, __u64 stack_hash)
{
	struct stray_site_key key = { .tgid = tgid, .stack_hash = stack_hash };
	struct stray_site_counts *c = slot_counts(tgid, stack_hash);
	struct stray_site *site;

	if (c)
		return c;
	site = bpf_map_lookup_elem(&sites, &key);
	return site ? &site->counts : NULL;
}

/* Give the site just made its slot, if free: claimed, zeroed (a late add
 * to a slot user space was freeing may have left something), then tagged.
 * Returns the slot's counters or NULL. */
static __always_inline struct stray_site_counts *claim_site_slot(__u32 tgid, __u64 stack_hash)
{
	__u64 tag = stray_site_tag(tgid, stack_hash);
	struct stray_site_slot *slot = site_slot(tag);

	if (!slot || slot->tag || __sync_val_compare_and_swap(&slot->tag, 0, STRAY_SITE_SLOT_CLAIMED))
		return NULL;
	slot->counts.live_bytes = slot->counts.live_count = 0;
	slot->counts.alloc_bytes = slot->counts.alloc_count = 0;
	__sync_lock_test_and_set(&slot->tag, tag);
	return &slot->counts;
}

/*
 * Capture the user stack of the current allocation and find or create its
 * site; returns where the site counts. Called from return probes: there
 * the kernel has already restored the instruction pointer to the return
 * address in the allocator's caller, so the first frame is the caller
 * itself and the frame-pointer walk continues from the caller's frame,
 * with no allocator frame to strip. Called at a function's entry
 * (operator new), ret_slot is the stack pointer: the return address is
 * there and not yet in the frame chain, which starts at the caller's
 * frame, so it replaces the first frame (the function's own first
 * instruction) and the stack reads the same. A site found by a remembered
 * walk's hash needs no frames; a new one does, and then the stack is
 * walked again.
 */
static __always_inline struct stray_site_counts *site_of_current_stack(void *ctx, __u32 tgid, __u64 ret_slot,
									__u64 *hash, __u32 kind)
{
	struct stray_site_key key = { .tgid = tgid };
	struct stray_site_counts *counts;
	struct stray_site *s, *found;
	struct stack_capture *c;
	__u32 zero = 0;
	long err;

	capture_user_stack(ctx, ret_slot, 1);
	s = bpf_map_lookup_elem(&scratch, &zero);
	c = bpf_map_lookup_elem(&captures, &zero);
	if (!s || !c)
		return NULL;
	key.stack_hash = c->hash;
	/* The kind is part of the site's identity. */
	if (kind != STRAY_KIND_HEAP)
		key.stack_hash = mix(key.stack_hash, 0x6d6d61702d6b6e64ULL + kind);
	s->kind = kind;
	*hash = key.stack_hash;

	counts = slot_counts(tgid, key.stack_hash);
	if (counts)
		return counts;
	found = bpf_map_lookup_elem(&sites, &key);
	if (found) {
		/* Cheap plausibility check; a full compare would cost a loop
		 * per allocation for a 64-bit hash that practically never
		 * collides. */
		if (found->depth != s->depth || (c->ips_filled && s->depth && found->ips[0] != s->ips[0]))
			count(STRAY_CNT_STACK_COLLISIONS);
		return &found->counts;
	}
	if (!c->ips_filled)
		capture_user_stack(ctx, ret_slot, 0);
	s->counts.live_bytes = s->counts.live_count = 0;
	s->counts.alloc_bytes = s->counts.alloc_count = s->extra_pieces = 0;
	err = bpf_map_update_elem(&sites, &key, s, BPF_NOEXIST);
	if (!err) {
		counts = claim_site_slot(tgid, key.stack_hash);
		if (counts)
			return counts;
	}
	found = bpf_map_lookup_elem(&sites, &key);
	/* At an entry there is no allocation yet: its record counts. */
	if (!found && !ret_slot)
		count(STRAY_CNT_SITE_MAP_FULL);
	return found ? &found->counts : NULL;
}

static __always_inline void site_add(struct stray_site_counts *c, __u64 size)
{
	__sync_fetch_and_add(&c->live_bytes, size);
	__sync_fetch_and_add(&c->live_count, 1);
	__sync_fetch_and_add(&c->alloc_bytes, size);
	__sync_fetch_and_add(&c->alloc_count, 1);
}

/* Account the release of block a on its site (if the site still exists). */
static __always_inline void site_release(__u32 tgid, const struct stray_alloc *a)
{
	struct stray_site_counts *c = site_counts(tgid, a->stack_hash);

	count(a->kind == STRAY_KIND_MMAP ? STRAY_CNT_UNMAPS : STRAY_CNT_FREES);
	if (!c)
		return;
	__sync_fetch_and_add(&c->live_bytes, -(__s64)a->size);
	__sync_fetch_and_add(&c->live_count, -1);
}

/* Remove block addr from the allocs hash map into *out. Returns true if it
 * was there. */
static __always_inline bool take_hashed(__u32 tgid, __u64 addr, struct stray_alloc *out)
{
	struct stray_alloc_key key = { .tgid = tgid, .addr = addr };
	struct stray_alloc *a = bpf_map_lookup_elem(&allocs, &key);

	if (!a)
		return false;
	*out = *a;
	/* A concurrent free of the same block (a double free in the target)
	 * may win the delete; only the winner accounts the release. */
	if (bpf_map_delete_elem(&allocs, &key))
		return false;
	if (out->kind == STRAY_KIND_HEAP)
		__sync_fetch_and_add(&heap_in_allocs, -1);
	return true;
}

/* Remove heap block addr from the block table or, if its set was full
 * when it was stored, from the allocs map, into *out. Returns true if it
 * was outstanding. */
static __always_inline bool take_alloc(__u32 tgid, __u64 addr, struct stray_alloc *out)
{
	switch (take_block_slot(tgid, addr, out)) {
	case SLOT_TAKEN:
		return true;
	case SLOT_LOST:
		return false;
	default:
		break;
	}
	if (block_set_bits && !heap_blocks_in_map())
		return false;
	return take_hashed(tgid, addr, out);
}

/* Account the free of block addr. A global function, verified once per
 * program (so are restore_alloc and record_alloc): the block table's
 * unrolled set walks, inlined at every call site, cost 20 ms of start-up. */
__noinline int record_free(__u32 tgid, __u64 addr)
{
	struct stray_alloc a;

	if (take_alloc(tgid, addr, &a))
		site_release(tgid, &a);
	else if (!sampling()) /* sampled: most blocks are never recorded */
		count(STRAY_CNT_UNMATCHED_FREES);
	return 0;
}

/* An address handed out while we still hold it as live means its free
 * went unseen (e.g. released through an entry point we do not probe): the
 * stale record is retired, so the site totals stay consistent. */
static __always_inline void retire_stale(__u32 tgid, const struct stray_alloc *stale)
{
	count(STRAY_CNT_DUPLICATE_ADDR);
	site_release(tgid, stale);
}

/* Insert block a at key into the allocs hash map, retiring a stale record
 * of the same address. Trying the insert first saves a look-up per
 * allocation in the usual case. Returns 0 or an error. */
static __always_inline long insert_hashed(const struct stray_alloc_key *key, const struct stray_alloc *a)
{
	struct stray_alloc stale;
	long err = bpf_map_update_elem(&allocs, key, a, BPF_NOEXIST);

	if (err == -EEXIST) {
		if (take_hashed(key->tgid, key->addr, &stale))
			retire_stale(key->tgid, &stale);
		err = bpf_map_update_elem(&allocs, key, a, BPF_NOEXIST);
	}
	if (!err && a->kind == STRAY_KIND_HEAP)
		__sync_fetch_and_add(&heap_in_allocs, 1);
	return err;
}

/* Insert block a at key: a heap block into the block table, or the allocs
 * map when its set is full; a region into the map, where munmap's search
 * finds it. Returns 0 or an error (the map is full). */
static __always_inline long insert_alloc(const struct stray_alloc_key *key, const struct stray_alloc *a)
{
	struct stray_alloc stale;
	bool had_stale, stored;

	if (a->kind != STRAY_KIND_HEAP)
		return insert_hashed(key, a);
	stored = store_block_slot(key->tgid, key->addr, a, &stale, &had_stale);
	if (had_stale)
		retire_stale(key->tgid, &stale);
	if (!stored)
		return insert_hashed(key, a);
	/* A stale record of the same block may be in the map instead, left
	 * from a time its set was full. */
	if (heap_blocks_in_map() && take_hashed(key->tgid, key->addr, &stale))
		retire_stale(key->tgid, &stale);
	return 0;
}

/* Record block addr of size bytes. Its site is the current stack, or
 * site_hash when not 0 (taken earlier, at operator new's entry). A global
 * function: the verifier checks it once per program, not at each of its
 * dozen call sites. */
__noinline int record_alloc(struct pt_regs *ctx, __u64 addr, __u64 size, __u32 fn, __u64 site_hash)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct stray_alloc_key key = { .tgid = tgid, .addr = addr };
	struct stray_alloc a = { .size = size, .fn = fn };
	__u32 kind = fn == STRAY_FN_MMAP || fn == STRAY_FN_MREMAP ? STRAY_KIND_MMAP : STRAY_KIND_HEAP;
	struct stray_site_counts *site;

	if (site_hash) {
		a.stack_hash = site_hash;
		site = site_counts(tgid, site_hash);
		if (!site) /* map full at new's entry, or reclaimed since */
			count(STRAY_CNT_SITE_MAP_FULL);
	} else {
		site = site_of_current_stack(ctx, tgid, 0, &a.stack_hash, kind);
	}
	a.kind = kind;
	a.ts_ns = bpf_ktime_get_ns();
	if (insert_alloc(&key, &a)) {
		count_untracked(size);
		return 0;
	}
	count(kind == STRAY_KIND_MMAP ? STRAY_CNT_MAPS : STRAY_CNT_ALLOCS);
	if (site)
		site_add(site, size);
	return 0;
}

/* Put back a block (or region) that realloc (mremap) moved out at entry
 * but did not free. */
__noinline int restore_alloc(__u32 tgid, __u64 addr, const struct stray_alloc *a)
{
	struct stray_alloc_key key = { .tgid = tgid, .addr = addr };

	if (a && insert_alloc(&key, a))
		count_untracked(a->size);
	return 0;
}

/* Like take_alloc, for an mmap region only (a heap block is left alone). */
static __always_inline bool take_region(__u32 tgid, __u64 addr, struct stray_alloc *out)
{
	struct stray_alloc_key key = { .tgid = tgid, .addr = addr };
	struct stray_alloc *a = bpf_map_lookup_elem(&allocs, &key);

	if (!a || a->kind != STRAY_KIND_MMAP)
		return false;
	*out = *a;
	return bpf_map_delete_elem(&allocs, &key) == 0;
}

enum entry_action {
	ENTRY_PLAIN,     /* allocation only */
	ENTRY_MOVES_OLD, /* realloc: ptr_arg's block moves out, back on failure */
	ENTRY_FREES,     /* operator delete: ptr_arg's block is released */
	ENTRY_NEW,       /* operator new: no return probe, see stray_inflight */
	ENTRY_MAP,       /* mmap: like ENTRY_PLAIN, never adopts operator new's record */
	ENTRY_REMAP,     /* mremap: ptr_arg's region moves out, back on failure */
};

/* How each kind of entry takes part in --sample. */
static __always_inline enum sample_call sample_call_of(enum entry_action action)
{
	switch (action) {
	case ENTRY_PLAIN:
		return SAMPLE_CALL_ALLOC;
	case ENTRY_NEW:
		return SAMPLE_CALL_NEW;
	case ENTRY_MOVES_OLD:
		return SAMPLE_CALL_REALLOC;
	default:
		return SAMPLE_CALL_EXACT;
	}
}

/* Whether the operator new of record in still runs at stack pointer sp:
 * sp is below its entry's and its return-address slot still holds the
 * return address seen there (a call made after it returned, or after an
 * exception left it, from its caller's frame overwrote the slot). */
static __always_inline bool new_running(const struct stray_inflight *in, __u64 sp)
{
	__u64 slot = 0;

	if (sp > in->new_sp || bpf_probe_read_user(&slot, sizeof(slot), (void *)in->new_sp))
		return false;
	return slot == in->new_ret;
}

/* A record opened by operator new, not yet adopted by an allocator call. */
static __always_inline bool new_waiting(const struct stray_inflight *in)
{
	return in->new_sp && !in->sp;
}

/*
 * Entry of an allocator call. Only the outermost call of a thread is
 * recorded; nested ones (glibc's realloc(NULL, n) calls malloc) leave the
 * thread's record alone. realloc moves its old block out of the
 * outstanding map here, and operator delete releases its block here,
 * before the allocator can hand that address to another thread. A record
 * left by a call whose return went unseen is recognised by its stack
 * pointer: a nested call runs deeper (lower) or, entered by a tail jump,
 * at the same stack pointer, never shallower. Inside operator new, the
 * first plain allocator call adopts new's record (its size and site); a
 * nested operator new (new[] tail-jumps into new) leaves it alone.
 * Returns 1 when this call's return must be seen (it holds or chains onto
 * the thread's record), 0 when its return changes nothing: a session
 * program then skips the return probe altogether.
 */
__noinline int enter_call(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 ptr_arg, __u64 action_aux)
{
	/* (packed: a BPF function takes at most five arguments) */
	enum entry_action action = action_aux & 0xff;
	__u32 aux = action_aux >> 8;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct stray_inflight rec = { .size = size, .ptr_arg = ptr_arg, .fn = fn, .old_pages = aux };
	struct inflight_slot *slot;
	struct stray_inflight *in;
	__u64 sp;

	if (!is_target(tgid))
		return 0;
	sp = PT_REGS_SP((struct pt_regs *)ctx);
	slot = inflight_slot_made();
	in = inflight_rec(slot);
	if (in && new_waiting(in)) {
		if (new_running(in, sp)) {
			if (action == ENTRY_PLAIN) {
				in->sp = sp;
				in->fn = fn;
				in->ptr_arg = ptr_arg;
				return 1;
			}
			/* Anything else inside operator new (a new_handler
			 * deleting a reserve) is not new's block: a delete
			 * there leaves its release to the free inside it. */
			return 0;
		}
	} else if (in && sp <= in->sp) {
		if (sp == in->sp)
			in->chained++;
		/* Never for operator new: its return must not be probed. */
		return sp == in->sp && action != ENTRY_NEW;
	}
	if (in) {
		count(STRAY_CNT_STALE_INFLIGHT);
		inflight_delete(in);
	}
	if (sampling()) {
		switch (sample_entry(sp, size, sample_call_of(action))) {
		case SAMPLE_NESTED:
			return 0;
		case SAMPLE_SKIP:
			/* The return is still asked for (session programs):
			 * sample_on_return ends the skip, where the kernel's
			 * trampoline in the slot defeats the slot test. */
			if (action != ENTRY_MOVES_OLD)
				return action != ENTRY_NEW;
			rec.unsampled = 1;
			break;
		case SAMPLE_TRACK:
			break;
		}
	}
	if (action == ENTRY_NEW) {
		/* The caller's stack, taken now: inside libstdc++ (no frame
		 * pointers; its aligned new uses %rbp as a scratch register)
		 * no frame walk finds the caller. */
		rec.new_sp = sp;
		if (bpf_probe_read_user(&rec.new_ret, sizeof(rec.new_ret), (void *)sp))
			return 0;
		site_of_current_stack(ctx, tgid, sp, &rec.new_site, STRAY_KIND_HEAP);
	} else {
		rec.sp = sp;
	}
	if (action == ENTRY_MOVES_OLD && ptr_arg) {
		rec.has_old = take_alloc(tgid, ptr_arg, &rec.old);
		if (!rec.has_old && !sampling())
			count(STRAY_CNT_UNMATCHED_FREES);
	}
	/* mremap of an untracked mapping (file, before attach): not recorded. */
	if (action == ENTRY_REMAP && take_region(tgid, ptr_arg, &rec.old))
		rec.has_old = 1;
	if (action == ENTRY_FREES && ptr_arg)
		record_free(tgid, ptr_arg);
	if (inflight_insert(slot, &rec)) {
		count(STRAY_CNT_INFLIGHT_FULL);
		if (rec.has_old)
			restore_alloc(tgid, ptr_arg, &rec.old);
		return 0;
	}
	return action != ENTRY_NEW; /* operator new has no return probe */
}

/* enter_call, its action and aux unpacked. */
static __always_inline int enter_aux(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 ptr_arg,
				     enum entry_action action, __u32 aux)
{
	return enter_call(ctx, fn, size, ptr_arg, action | (__u64)aux << 8);
}

static __always_inline int enter(struct pt_regs *ctx, __u32 fn, __u64 size, __u64 ptr_arg, enum entry_action action)
{
	return enter_aux(ctx, fn, size, ptr_arg, action, 0);
}

/*
 * Return of an allocator call: copies the thread's record into *rec and
 * returns true when this return closes the outermost call. The outermost
 * call returns with the stack pointer just above its entry's, and so do
 * the calls it entered by tail jumps, all at once (chained uretprobes);
 * nested calls return below it. A return from higher up means the record
 * is stale.
 */
static __always_inline bool leave(void *ctx, struct stray_inflight *rec)
{
	struct stray_inflight *in = inflight_lookup();
	__u64 sp = PT_REGS_SP((struct pt_regs *)ctx);

	if (!in) {
		if (!sampling()) /* sampled: unsampled calls leave no record */
			count(STRAY_CNT_MISSING_ENTRY);
		return false;
	}
	/* A call inside operator new that did not adopt its record. */
	if (new_waiting(in) && new_running(in, sp))
		return false;
	if (sp > in->sp + 8) {
		count(STRAY_CNT_STALE_INFLIGHT);
		inflight_delete(in);
		return false;
	}
	if (sp < in->sp + 8) /* a nested call's return */
		return false;
	if (in->chained) {
		in->chained--;
		return false;
	}
	*rec = *in;
	inflight_delete(in);
	return true;
}

/* Return of malloc-like calls whose result is the returned pointer. */
static __always_inline int leave_alloc(void *ctx, const struct stray_inflight *rec, __u64 ret)
{
	if (!ret) {
		count(STRAY_CNT_FAILED_ALLOCS);
		return 0;
	}
	record_alloc(ctx, ret, rec->size, rec->fn, rec->new_site);
	return 0;
}

/*
 * realloc: the old block is released only if realloc succeeded, which for
 * glibc is a non-NULL return, or size 0 (realloc(p, 0) frees p and returns
 * NULL). On failure the old block is still valid and goes back.
 */
static __always_inline int leave_realloc(void *ctx, const struct stray_inflight *rec, __u64 ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!ret && rec->size) {
		count(STRAY_CNT_FAILED_ALLOCS);
		if (rec->has_old)
			restore_alloc(tgid, rec->ptr_arg, &rec->old);
		return 0;
	}
	if (rec->has_old)
		site_release(tgid, &rec->old);
	if (ret && !rec->unsampled)
		record_alloc(ctx, ret, rec->size, rec->fn, 0);
	return 0;
}

/* n * m as the allocator sees it; an overflowing product makes the call fail. */
static __always_inline __u64 array_bytes(__u64 n, __u64 m)
{
	/* BPF has no 128-bit multiply (clang turns overflow checks into one):
	 * multiply in 32-bit halves. */
	__u64 big = n > m ? n : m, small = n > m ? m : n, hi, lo;

	if (small >> 32)
		return ~0ULL;
	hi = (big >> 32) * small;
	lo = (big & 0xffffffffULL) * small;
	if ((hi >> 32) || lo + (hi << 32) < lo)
		return ~0ULL;
	return lo + (hi << 32);
}

/* pvalloc rounds the request up to whole pages (one page for 0); record
 * what the program actually holds. The page size is set by user space. */
const volatile __u64 page_size = 4096;

static __always_inline __u64 whole_pages(__u64 size)
{
	return size ? (size + page_size - 1) / page_size * page_size : page_size;
}

static __always_inline int on_free(void *ctx, void *ptr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	struct stray_inflight *in;

	if (!ptr || !is_target(tgid))
		return 0;
	/* A free inside another allocator call (realloc(p, 0), operator
	 * delete) is accounted by that call; a record from a shallower stack
	 * pointer is not an enclosing call but a stale one. operator new frees
	 * nothing of its own: a free inside one (its new_handler's) counts. */
	in = inflight_lookup();
	if (in && !new_waiting(in) && PT_REGS_SP((struct pt_regs *)ctx) <= in->sp)
		return 0;
	record_free(tgid, (__u64)ptr);
	return 0;
}

/* posix_memalign reports success by returning 0; only then is *memptr set. */
static __always_inline int leave_posix_memalign(void *ctx, const struct stray_inflight *rec, int rc)
{
	__u64 block = 0;

	if (rc != 0 || bpf_probe_read_user(&block, sizeof(block), (void *)rec->ptr_arg) || !block) {
		count(STRAY_CNT_FAILED_ALLOCS);
		return 0;
	}
	record_alloc(ctx, block, rec->size, rec->fn, rec->new_site);
	return 0;
}

/* ==== anonymous mappings ===============================================
 * Regions are kept in the allocs map, keyed by (tgid, start), with kind
 * STRAY_KIND_MMAP, their size in whole pages; never in the block table,
 * where munmap's search by page would not find them. */

/*
 * Release [lo, hi) of region r (start s), already taken out of the map: the
 * pieces left below and above it go back under their own starts, with the
 * same site and age (a middle unmap makes two regions of one site).
 */
static __always_inline void cut_region(__u32 tgid, __u64 s, const struct stray_alloc *r, __u64 lo, __u64 hi)
{
	struct stray_site_key skey = { .tgid = tgid, .stack_hash = r->stack_hash };
	struct stray_site_counts *counts;
	struct stray_alloc_key key = { .tgid = tgid };
	struct stray_alloc piece = *r;
	struct stray_site *site;
	__u64 e = s + r->size, kept_bytes = 0, released;
	__s64 kept = 0;

	if (lo < s)
		lo = s;
	if (hi > e)
		hi = e;
	if (s < lo) {
		key.addr = s;
		piece.size = lo - s;
		if (bpf_map_update_elem(&allocs, &key, &piece, BPF_ANY)) {
			count_untracked(piece.size);
		} else {
			kept++;
			kept_bytes += piece.size;
		}
	}
	if (hi < e) {
		key.addr = hi;
		piece.size = e - hi;
		if (bpf_map_update_elem(&allocs, &key, &piece, BPF_ANY)) {
			count_untracked(piece.size);
		} else {
			kept++;
			kept_bytes += piece.size;
		}
	}
	if (!kept)
		count(STRAY_CNT_UNMAPS);
	counts = site_counts(tgid, r->stack_hash);
	if (!counts)
		return;
	released = r->size - kept_bytes;
	__sync_fetch_and_add(&counts->live_bytes, -(__s64)released);
	if (kept != 1)
		__sync_fetch_and_add(&counts->live_count, kept - 1);
	/* The pieces are in the map value, which a site with a slot has too. */
	site = kept > 1 ? bpf_map_lookup_elem(&sites, &skey) : NULL;
	if (site)
		__sync_fetch_and_add(&site->extra_pieces, kept - 1);
}

struct region_search {
	__u64 addr;
	__u64 end; /* search_above: stop before this address */
	__u64 found;
	__u32 tgid;
	__u32 pad;
};

/* bpf_loop callback: is page k+1 below addr the start of a region that
 * contains addr? The first region found below ends the search (regions do
 * not overlap). */
static long search_below(__u64 k, void *data)
{
	struct region_search *rs = data;
	struct stray_alloc_key key = { .tgid = rs->tgid };
	__u64 step = (k + 1) * page_size;
	struct stray_alloc *a;

	if (step > rs->addr)
		return 1;
	key.addr = rs->addr - step;
	a = bpf_map_lookup_elem(&allocs, &key);
	if (!a || a->kind != STRAY_KIND_MMAP)
		return 0;
	if (key.addr + a->size > rs->addr)
		rs->found = key.addr;
	return 1;
}

/* bpf_loop callback: is page k+1 above addr, below end, a region's start? */
static long search_above(__u64 k, void *data)
{
	struct region_search *rs = data;
	struct stray_alloc_key key = { .tgid = rs->tgid, .addr = rs->addr + (k + 1) * page_size };
	struct stray_alloc *a;

	if (key.addr >= rs->end)
		return 1;
	a = bpf_map_lookup_elem(&allocs, &key);
	if (!a || a->kind != STRAY_KIND_MMAP)
		return 0;
	rs->found = key.addr;
	return 1;
}

/*
 * Unmap [a, b) from the tracked regions of tgid. Regions are found at a
 * (exact start), inside a region that starts at most
 * STRAY_UNMAP_SEARCH_PAGES pages below a, and, past the end of each region
 * handled (or past a if none holds it), at the first region start within
 * STRAY_UNMAP_SEARCH_PAGES pages that is still below b. Each region found
 * loses its part in the range: all of it (removed), its front or back
 * (shrunk) or its middle (split in two, one site). Up to
 * STRAY_UNMAP_MAX_REGIONS regions per call; more are counted.
 */
static __always_inline void unmap_range(__u32 tgid, __u64 a, __u64 b, bool count_miss)
{
	struct region_search rs = { .addr = a, .tgid = tgid };
	struct stray_alloc_key key = { .tgid = tgid };
	struct stray_alloc r, *next;
	__u64 cur = a, s;
	int i, done = 0;

	for (i = 0; i < STRAY_UNMAP_MAX_REGIONS; i++) {
		if (cur >= b)
			break;
		s = cur;
		if (!take_region(tgid, s, &r)) {
			rs.found = 0;
			if (!i) /* a region holding a? */
				bpf_loop(STRAY_UNMAP_SEARCH_PAGES, search_below, &rs, 0);
			if (!rs.found) { /* the next region start in the range */
				rs.addr = cur;
				rs.end = b;
				bpf_loop(STRAY_UNMAP_SEARCH_PAGES, search_above, &rs, 0);
			}
			s = rs.found;
			if (!s || !take_region(tgid, s, &r))
				break;
		}
		cut_region(tgid, s, &r, cur, b);
		done++;
		cur = s + r.size;
	}
	if (!done) {
		if (count_miss)
			count(STRAY_CNT_UNMATCHED_UNMAPS);
		return;
	}
	key.addr = cur;
	if (cur < b && (next = bpf_map_lookup_elem(&allocs, &key)) && next->kind == STRAY_KIND_MMAP)
		count(STRAY_CNT_UNMAP_UNHANDLED);
}

/* munmap, at its entry (like free: before another thread can map the
 * range again). One inside an allocator call (glibc's realloc of a mapped
 * chunk) is the allocator's business. */
static __always_inline int on_unmap(void *ctx, __u64 addr, __u64 len)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct stray_inflight *in;

	if (!len || !is_target(tgid))
		return 0;
	in = inflight_lookup();
	if (in && !new_waiting(in) && PT_REGS_SP((struct pt_regs *)ctx) <= in->sp)
		return 0;
	if (sampling() && !in && sample_inside_skipped(PT_REGS_SP((struct pt_regs *)ctx)))
		return 0;
	if (!has_mmap(tgid)) {
		count(STRAY_CNT_UNMATCHED_UNMAPS);
		return 0;
	}
	unmap_range(tgid, addr, addr + whole_pages(len), true);
	return 0;
}

/*
 * mmap's return. Only anonymous mappings are recorded, not thread stacks
 * (MAP_STACK: glibc's pthread_create, which caches and reuses them), and
 * never a failure. MAP_FIXED replaces whatever was mapped in the range, a
 * file mapping too: the regions there are unmapped first.
 */
static __always_inline int leave_mmap(void *ctx, const struct stray_inflight *rec, __u64 ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 flags = rec->ptr_arg;

	if (IS_MAP_ERR(ret))
		return 0;
	if ((flags & MAP_FIXED_F) && has_mmap(tgid))
		unmap_range(tgid, ret, ret + rec->size, false);
	if (!(flags & MAP_ANONYMOUS_F) || (flags & MAP_STACK_F))
		return 0;
	mark_has_mmap(tgid);
	record_alloc(ctx, ret, rec->size, STRAY_FN_MMAP, 0);
	return 0;
}

/*
 * mremap's return. The old region was taken out at entry (only a tracked
 * one: an untracked mapping's remap is not recorded either). On failure it
 * goes back. Otherwise its first old_size bytes are released (the rest, if
 * old_size was smaller, stays a region) and the new region is recorded at
 * the old region's site. old_size 0 (a second mapping of a shared region)
 * and MREMAP_DONTUNMAP leave the old region in place.
 */
static __always_inline int leave_mremap(void *ctx, const struct stray_inflight *rec, __u64 ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 old_bytes = (__u64)rec->old_pages * page_size;

	if (!rec->has_old)
		return 0;
	if (IS_MAP_ERR(ret) || !old_bytes) {
		restore_alloc(tgid, rec->ptr_arg, &rec->old);
		if (IS_MAP_ERR(ret))
			return 0;
	} else {
		cut_region(tgid, rec->ptr_arg, &rec->old, rec->ptr_arg, rec->ptr_arg + old_bytes);
	}
	record_alloc(ctx, ret, rec->size, STRAY_FN_MREMAP, rec->old.stack_hash);
	return 0;
}

#include "alloc_ext.bpf.h"

/*
 * One entry program and one return program serve every allocator function:
 * user space attaches each with a single uprobe_multi link per process and
 * object, the function's enum stray_fn as the cookie. One link instead of
 * one per function matters: every uprobe unregistration waits for an RCU
 * grace period, so detaching 19 classic links took 1.8 s on this kernel.
 * (C++ adds 20 more functions per object.)
 */
/* The entry of every allocator function; returns 1 when the call's
 * return must be seen (enter_aux). */
static __always_inline int on_alloc_entry(struct pt_regs *ctx)
{
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);

	switch (bpf_get_attach_cookie(ctx)) {
	case STRAY_FN_MALLOC:
		return enter(ctx, STRAY_FN_MALLOC, a1, 0, ENTRY_PLAIN);
	case STRAY_FN_CALLOC:
		return enter(ctx, STRAY_FN_CALLOC, array_bytes(a1, a2), 0, ENTRY_PLAIN);
	case STRAY_FN_REALLOC:
		return enter(ctx, STRAY_FN_REALLOC, a2, a1, ENTRY_MOVES_OLD);
	case STRAY_FN_REALLOCARRAY:
		return enter(ctx, STRAY_FN_REALLOCARRAY, array_bytes(a2, a3), a1, ENTRY_MOVES_OLD);
	case STRAY_FN_FREE:
		return on_free(ctx, (void *)a1);
	case STRAY_FN_POSIX_MEMALIGN:
		return enter(ctx, STRAY_FN_POSIX_MEMALIGN, a3, a1, ENTRY_PLAIN);
	case STRAY_FN_ALIGNED_ALLOC:
		return enter(ctx, STRAY_FN_ALIGNED_ALLOC, a2, 0, ENTRY_PLAIN);
	case STRAY_FN_MEMALIGN:
		return enter(ctx, STRAY_FN_MEMALIGN, a2, 0, ENTRY_PLAIN);
	case STRAY_FN_VALLOC:
		return enter(ctx, STRAY_FN_VALLOC, a1, 0, ENTRY_PLAIN);
	case STRAY_FN_PVALLOC:
		return enter(ctx, STRAY_FN_PVALLOC, whole_pages(a1), 0, ENTRY_PLAIN);
	/* operator new(size [, align] [, nothrow]): the size comes first.
	 * The aligned forms record the size asked for, as valgrind does (the
	 * allocator may round it up to the alignment). Entry probes only:
	 * the allocator call inside records the block (see stray_inflight). */
	case STRAY_FN_NEW:
	case STRAY_FN_NEW_ARRAY:
	case STRAY_FN_NEW_NOTHROW:
	case STRAY_FN_NEW_ARRAY_NOTHROW:
	case STRAY_FN_NEW_ALIGNED:
	case STRAY_FN_NEW_ARRAY_ALIGNED:
	case STRAY_FN_NEW_ALIGNED_NOTHROW:
	case STRAY_FN_NEW_ARRAY_ALIGNED_NOTHROW:
		return enter(ctx, bpf_get_attach_cookie(ctx), a1, 0, ENTRY_NEW);
	/* operator delete(ptr [, size] [, align] [, nothrow]). Unlike free it
	 * is a call with a return probe: libstdc++'s forms tail-jump into one
	 * another and into free, and the record keeps those nested frees (same
	 * block) from being seen twice. */
	case STRAY_FN_DELETE:
	case STRAY_FN_DELETE_ARRAY:
	case STRAY_FN_DELETE_SIZED:
	case STRAY_FN_DELETE_ARRAY_SIZED:
	case STRAY_FN_DELETE_NOTHROW:
	case STRAY_FN_DELETE_ARRAY_NOTHROW:
	case STRAY_FN_DELETE_ALIGNED:
	case STRAY_FN_DELETE_ARRAY_ALIGNED:
	case STRAY_FN_DELETE_SIZED_ALIGNED:
	case STRAY_FN_DELETE_ARRAY_SIZED_ALIGNED:
	case STRAY_FN_DELETE_ALIGNED_NOTHROW:
	case STRAY_FN_DELETE_ARRAY_ALIGNED_NOTHROW:
		return enter(ctx, bpf_get_attach_cookie(ctx), 0, a1, ENTRY_FREES);
	/* mmap(addr, length, prot, flags, fd, offset): flags kept in ptr_arg. */
	case STRAY_FN_MMAP:
		return enter(ctx, STRAY_FN_MMAP, whole_pages(a2), PT_REGS_PARM4(ctx), ENTRY_MAP);
	case STRAY_FN_MUNMAP:
		return on_unmap(ctx, a1, a2);
	/* mremap(old_address, old_size, new_size, flags, ...) */
	case STRAY_FN_MREMAP:
		return enter_aux(ctx, STRAY_FN_MREMAP, whole_pages(a3), a1, ENTRY_REMAP,
				 (PT_REGS_PARM4(ctx) & MREMAP_DONTUNMAP_F) ? 0 :
				 (a2 + page_size - 1) / page_size);
	}
	return ext_entry(ctx, bpf_get_attach_cookie(ctx), a1, a2, a3);
}

static __always_inline int on_alloc_return(struct pt_regs *ctx)
{
	long ret = PT_REGS_RC(ctx);
	struct stray_inflight rec;

	if (sampling())
		sample_on_return(PT_REGS_SP((struct pt_regs *)ctx));
	if (!leave(ctx, &rec))
		return 0;
	/* The outermost call decides how to read the result: a nested call
	 * returning here has the same address but not the same meaning. */
	switch (rec.fn) {
	case STRAY_FN_REALLOC:
	case STRAY_FN_REALLOCARRAY:
		return leave_realloc(ctx, &rec, ret);
	case STRAY_FN_POSIX_MEMALIGN:
		return leave_posix_memalign(ctx, &rec, (int)ret);
	case STRAY_FN_DELETE ... STRAY_FN_DELETE_ARRAY_ALIGNED_NOTHROW:
		return 0; /* released at entry */
	case STRAY_FN_MMAP:
		return leave_mmap(ctx, &rec, ret);
	case STRAY_FN_MREMAP:
		return leave_mremap(ctx, &rec, ret);
	case STRAY_FN_MALLOCX ... STRAY_FN_MI_FREE_ALIGNED:
		return ext_return(ctx, &rec, ret);
	default:
		return leave_alloc(ctx, &rec, ret);
	}
}

/* An entry and a return program for one kind of link. */
#define ALLOC_PROBES(entry_sec, entry, return_sec, ret)		\
	SEC(entry_sec)						\
	int BPF_UPROBE(entry)					\
	{							\
		on_alloc_entry(ctx);				\
		return 0;					\
	}							\
	SEC(return_sec)						\
	int BPF_URETPROBE(ret)					\
	{							\
		return on_alloc_return(ctx);			\
	}

ALLOC_PROBES("uprobe.multi", alloc_entry, "uretprobe.multi", alloc_return)

/*
 * Attach-mode fallbacks and upgrades (user/attach_mode.h), each loaded only
 * when chosen. Classic perf-event uprobes, one link per function, where
 * the kernel has no uprobe_multi links (before 6.6); the cookie is the
 * same.
 */
ALLOC_PROBES("uprobe", alloc_entry_classic, "uretprobe", alloc_return_classic)

/* A uprobe session (kernel 6.13+; user space loads it with expected attach
 * type BPF_TRACE_UPROBE_SESSION): one program for entry and return, and the
 * return probe runs only when the entry returns 0, so free, operator new
 * and nested calls cost no return trap. */
SEC("uprobe.multi")
int BPF_UPROBE(alloc_session)
{
	if (bpf_session_is_return())
		return on_alloc_return(ctx);
	return on_alloc_entry(ctx) ? 0 : 1;
}

/* A thread that dies inside an allocator call never returns from it: drop
 * its in-flight record so the thread id can be reused cleanly. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *task)
{
	inflight_release(task);
	return 0;
}

#include "follow.bpf.h"
