/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * User stack walking, with DWARF call-frame information (--unwind=dwarf and
 * auto) or frame pointers only (--unwind=fp: the same loop and stack
 * window, without rules). Included by stray.bpf.c after its scratch map and
 * count().
 *
 * User space builds, per mapped file, rows "from pc on, CFA = sp|fp + off,
 * the caller's fp is unchanged or saved at CFA + off" (bpf/stray.h). Each
 * step finds the frame's module from its VMA (bpf_find_vma: the file's
 * device and inode, and the file offset of the address), binary-searches
 * the module's rows, computes the CFA, and reads the return address and
 * the caller's frame pointer from the user stack. Modules without a table
 * (JIT code, the vDSO, one mapped after the last refresh) are stepped with
 * the frame pointer in auto mode. The walk runs in bpf_loop so that the
 * verifier checks one step, not max_depth of them.
 */
#ifndef STRAY_UNWIND_BPF_H
#define STRAY_UNWIND_BPF_H

#include "stray.h"

/* Set by user space before load (--unwind, --max-depth). */
const volatile __u32 unwind_mode = STRAY_UNWIND_FP;
const volatile __u32 max_depth = STRAY_MAX_STACK_DEPTH;
const volatile __u32 unwind_page_shift = 12;

/* Binary search steps: a module holds at most 1 << this many rows. */
#define UNWIND_SEARCH_STEPS 22

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STRAY_DEFAULT_UNWIND_ROWS);
	__type(key, __u32);
	__type(value, struct stray_unwind_row);
} unwind_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAY_DEFAULT_UNWIND_MODULES);
	__type(key, struct stray_unwind_module_key);
	__type(value, struct stray_unwind_module);
} unwind_modules SEC(".maps");

/*
 * bpf_find_vma only try-locks the address space: while another thread of
 * the process maps or unmaps (thread stacks, malloc arenas), it fails with
 * EBUSY. Then the module comes from this cache (bpf/stray.h), which the
 * walker fills with its earlier answers and user space seeds from the
 * process's maps. It is only consulted when the lock is taken, so an entry
 * left by a library since unmapped is used rarely, and only until it is
 * replaced.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stray_vma_cache_key);
	__type(value, struct stray_vma_cache_entry);
} unwind_vma_cache SEC(".maps");

/*
 * The rule found for a return address, per process: the frames of hot
 * allocation paths repeat, and a hit here saves the VMA look-up and the
 * binary search. A direct-mapped cache per CPU, in an array: a look-up is
 * an index and two compares (the hash map it replaces cost a 32-byte hash
 * and an LRU update per frame, more than the rest of the step). The tag
 * names the process by its tgid, start time and exec count (a pid is
 * reused by another process, and exec maps another program: the three
 * together are unique). Only found rules are kept, so a module whose table
 * arrives later (dlopen) is not missed. A library unmapped and another
 * mapped at the same address in one process could meet a stale rule until
 * the entry is replaced: the walk then stops or falls back early, it never
 * reads anything but the user stack.
 */
#define UNWIND_RULE_CACHE_SLOTS STRAY_UNWIND_RULE_SLOTS

struct unwind_rule_slot {
	__u64 tag;
	__u64 pc;
	struct stray_unwind_row row;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UNWIND_RULE_CACHE_SLOTS); /* x the CPUs (user space) */
	__type(key, __u32);
	__type(value, struct unwind_rule_slot);
} unwind_rule_cache SEC(".maps");

/*
 * The user stack is read through a window: one read of up to
 * UNWIND_WINDOW bytes, from which the frames that lie in it are taken
 * without a helper call. Each bpf_probe_read_user costs a helper call, a
 * fault-proof copy and the kernel's hardened-usercopy check on the
 * destination; a walk that reads every frame that way spent most of its
 * time there. Per CPU, tagged with the task that filled it: a uprobe
 * program can be preempted, and another task's walk may refill it.
 */
#define UNWIND_WINDOW 1024 /* bytes read at once */
#define UNWIND_PAGE 4096
/* The buffer, a power of two: a remembered walk's words are checked in
 * one read of up to this many bytes (unwind_memo_holds). */
#define UNWIND_BUF 4096

struct unwind_window {
	__u64 task;
	__u64 base;
	__u64 len;
	__u8 data[UNWIND_BUF + 16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_window);
} unwind_windows SEC(".maps");

/*
 * Walks remembered, to be checked instead of redone. A walk is a function
 * of the registers it starts from and of the stack words it reads (the
 * rules are cached per pc, as above). A return probe that starts from the
 * registers of a remembered walk, in the same process, and finds every
 * word that walk read unchanged would walk the same frames: its stack
 * hash is taken from here. The check is one read of the window and a
 * compare per word, where a walk costs a rule and a step per frame. Only
 * walks that read at most UNWIND_MEMO_WORDS words, all within UNWIND_BUF
 * bytes above the stack pointer they started from, are remembered.
 * Direct-mapped per CPU, like the rule cache.
 */
#define UNWIND_MEMO_SLOTS STRAY_UNWIND_MEMO_SLOTS
#define UNWIND_MEMO_WORDS STRAY_UNWIND_MEMO_WORDS

struct unwind_memo {
	__u64 tag, ip, sp, fp; /* the process and the registers at the start; tag 0: empty */
	__u64 hash;	       /* the walk's stack hash (stack.bpf.h: hash_stack) */
	__u64 base;	       /* the stack pointer the walk started from: every frame lies above */
	__u32 depth, nwords;
	__u32 span; /* the words lie in [base, base + span), span <= UNWIND_BUF */
	__u32 slot; /* its index: its words are unwind_memo_words[slot * UNWIND_MEMO_WORDS + i] */
	/* While a walk records itself here (tag 0): whether it still can. In
	 * the map, not in the walk's state, like the word count: the verifier
	 * would otherwise explore the walk loop once per value of each. */
	__u32 recording;
	/* Whether the walk used the frame pointer it started with (a frame
	 * with its CFA from fp, or stepped with fp, before fp was reloaded
	 * from the stack); fp_fresh: not reloaded yet. Code built without
	 * frame pointers keeps data in the register: a walk that never used
	 * it holds whatever it is. */
	__u8 uses_fp, fp_fresh;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UNWIND_MEMO_SLOTS); /* x the CPUs (user space) */
	__type(key, __u32);
	__type(value, struct unwind_memo);
} unwind_memos SEC(".maps");

/* A word a remembered walk read: its value at base + off. In a map of its
 * own, looked up by index (a bounds check at run time), so that the
 * verifier need not track the word count of the walk exactly: as an index
 * into an array in the memo it made every step of the walk loop a new
 * state to verify (stray took 1.4 s to start). */
struct unwind_memo_word {
	__u64 val;
	__u32 off;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UNWIND_MEMO_SLOTS * UNWIND_MEMO_WORDS); /* x the CPUs (user space) */
	__type(key, __u32);
	__type(value, struct unwind_memo_word);
} unwind_memo_words SEC(".maps");

/* A walk in progress, on the BPF stack of the probe. */
struct unwind_walk {
	__u64 ip, sp, fp;
	__u64 tag; /* the process, for unwind_rule_cache */
	__u64 start_ip, start_sp, start_fp; /* the registers the walk started from */
	__u64 hash; /* of the frames so far, as hash_stack computes it */
	__u64 task; /* the current task, owner of the window */
	struct unwind_window *win;
	__u64 *ips; /* the frames found */
	struct unwind_memo *memo; /* where the walk is recorded (never NULL) */
	/* The VMA of the previous frame's module, so that a run of frames in
	 * one module looks it up once. */
	__u64 vma_start, vma_end;
	__s64 bias; /* module pc = ip - bias */
	__u32 first, nrows; /* its rows; nrows 0: no table */
	/* bpf_find_vma's answer */
	__u64 dev, ino, pgoff;
	__u32 has_file;
	__u32 depth;
};

static long unwind_vma_found(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct unwind_walk *w = data;
	struct file *file = BPF_CORE_READ(vma, vm_file);

	w->vma_start = BPF_CORE_READ(vma, vm_start);
	w->vma_end = BPF_CORE_READ(vma, vm_end);
	w->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	w->has_file = file != NULL;
	if (file) {
		w->ino = BPF_CORE_READ(file, f_inode, i_ino);
		w->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	}
	return 0;
}

static __always_inline struct stray_vma_cache_key unwind_cache_key_of(__u64 ip)
{
	return (struct stray_vma_cache_key){
		.tgid = bpf_get_current_pid_tgid() >> 32, .granule = ip >> STRAY_VMA_GRANULE_SHIFT,
	};
}

/* Remember the walk's current VMA for its granule. */
static __always_inline void unwind_cache_put(const struct unwind_walk *w)
{
	struct stray_vma_cache_key key = unwind_cache_key_of(w->ip);
	struct stray_vma vma = { w->vma_start, w->vma_end, w->bias, w->first, w->nrows };
	struct stray_vma_cache_entry *e = bpf_map_lookup_elem(&unwind_vma_cache, &key), fresh = {};
	__u32 slot;

	if (!e) {
		fresh.vma[0] = vma;
		fresh.next = 1;
		bpf_map_update_elem(&unwind_vma_cache, &key, &fresh, BPF_ANY);
		return;
	}
	for (int i = 0; i < STRAY_VMA_CACHE_WAYS; i++)
		if (e->vma[i].start == vma.start && e->vma[i].end == vma.end) {
			e->vma[i] = vma;
			return;
		}
	slot = e->next++ % STRAY_VMA_CACHE_WAYS;
	e->vma[slot] = vma;
}

/* The VMA holding w->ip from the cache; false when it has none. */
static __always_inline bool unwind_cache_get(struct unwind_walk *w)
{
	struct stray_vma_cache_key key = unwind_cache_key_of(w->ip);
	struct stray_vma_cache_entry *e = bpf_map_lookup_elem(&unwind_vma_cache, &key);

	if (!e)
		return false;
	for (int i = 0; i < STRAY_VMA_CACHE_WAYS; i++)
		if (w->ip >= e->vma[i].start && w->ip < e->vma[i].end) {
			w->vma_start = e->vma[i].start;
			w->vma_end = e->vma[i].end;
			w->bias = e->vma[i].bias;
			w->first = e->vma[i].first;
			w->nrows = e->vma[i].nrows;
			return true;
		}
	return false;
}

/* Point the walk at the rows of the module holding w->ip (nrows 0 when it
 * has none). */
static __always_inline void unwind_find_module(struct unwind_walk *w)
{
	struct stray_unwind_module_key key = {};
	struct stray_unwind_module *m;

	if (w->ip >= w->vma_start && w->ip < w->vma_end)
		return;
	w->nrows = 0;
	w->vma_start = w->vma_end = 0;
	w->has_file = 0;
	if (bpf_find_vma(bpf_get_current_task_btf(), w->ip, unwind_vma_found, w, 0)) {
		if (!unwind_cache_get(w)) {
			count(STRAY_CNT_UNWIND_NO_VMA);
			/* may do better with the lock free: not remembered */
			w->memo->recording = 0;
		}
		return;
	}
	if (w->has_file) {
		key.dev = w->dev;
		key.ino = w->ino;
		m = bpf_map_lookup_elem(&unwind_modules, &key);
		if (m) {
			w->first = m->first;
			w->nrows = m->nrows;
			w->bias = (__s64)w->vma_start - (__s64)(w->pgoff << unwind_page_shift) - m->vaddr_delta;
		} else {
			/* its table may be loaded at the next drain (dlopen) */
			w->memo->recording = 0;
		}
	}
	unwind_cache_put(w);
}

/* A binary search in progress over rows [lo, hi) for the last row
 * starting at or below pc. */
struct unwind_search {
	__u32 lo, hi;
	__u64 pc;
};

/* bpf_loop callback: one step of the search. In a callback, the verifier
 * checks one step instead of UNWIND_SEARCH_STEPS unrolled ones (a third
 * of the probe programs' verification time, and of stray's start-up). */
static long unwind_search_step(__u64 k, void *data)
{
	struct unwind_search *q = data;
	struct stray_unwind_row *row;
	__u32 mid;

	if (q->lo + 1 >= q->hi)
		return 1;
	mid = q->lo + (q->hi - q->lo) / 2;
	row = bpf_map_lookup_elem(&unwind_rows, &mid);
	if (!row) {
		q->hi = q->lo; /* not found */
		return 1;
	}
	if (row->pc <= q->pc)
		q->lo = mid;
	else
		q->hi = mid;
	return 0;
}

/* The module's last row starting at or below pc, or NULL. */
static __always_inline struct stray_unwind_row *unwind_find_row(const struct unwind_walk *w, __u64 pc)
{
	struct unwind_search q = { .lo = w->first, .hi = w->first + w->nrows, .pc = pc };
	struct stray_unwind_row *row;

	bpf_loop(UNWIND_SEARCH_STEPS, unwind_search_step, &q, 0);
	if (q.hi <= q.lo)
		return NULL;
	row = bpf_map_lookup_elem(&unwind_rows, &q.lo);
	return row && row->pc <= pc ? row : NULL;
}

/* Refill the window from addr and copy size (8 or 16) bytes from its
 * start. The window is UNWIND_WINDOW bytes, or up to the end of addr's
 * page when the next page is not mapped (the top of a stack). */
static __always_inline long unwind_refill(struct unwind_walk *w, __u64 addr, __u64 *out, __u32 size)
{
	struct unwind_window *win = w->win;
	__u64 len = UNWIND_WINDOW;

	win->task = w->task;
	win->base = addr;
	win->len = 0;
	if (bpf_probe_read_user(win->data, UNWIND_WINDOW, (void *)addr)) {
		len = UNWIND_PAGE - (addr & (UNWIND_PAGE - 1));
		if (len > UNWIND_WINDOW)
			len = UNWIND_WINDOW;
		if (len < 16 || bpf_probe_read_user(win->data, len, (void *)addr)) {
			w->memo->recording = 0;
			return bpf_probe_read_user(out, size, (void *)addr);
		}
	}
	win->len = len;
	out[0] = *(__u64 *)&win->data[0];
	if (size == 16)
		out[1] = *(__u64 *)&win->data[8];
	return 0;
}

/* Note the words just read at addr in the walk's memo, or give up
 * remembering the walk: too many words, or too far above its start to be
 * checked in one read. */
static __always_inline void unwind_note(struct unwind_walk *w, __u64 addr, const __u64 *v, __u32 size)
{
	struct unwind_memo *m = w->memo;
	struct unwind_memo_word *word;
	__u32 n = m->nwords, off, key;

	if (!m->recording)
		return;
	off = addr - m->base;
	if (n + size / 8 > UNWIND_MEMO_WORDS || addr < m->base || off + size > UNWIND_BUF) {
		m->recording = 0;
		return;
	}
	for (__u32 i = 0; i < size / 8; i++) {
		key = m->slot * UNWIND_MEMO_WORDS + n + i;
		word = bpf_map_lookup_elem(&unwind_memo_words, &key);
		if (!word) {
			m->recording = 0;
			return;
		}
		word->val = v[i];
		word->off = off + 8 * i;
	}
	if (off + size > m->span)
		m->span = off + size;
	m->nwords = n + size / 8;
}

/* size (8 or 16) bytes of the user stack at addr, from the window when it
 * holds them. Returns 0 or a read error. */
static __always_inline long unwind_read(struct unwind_walk *w, __u64 addr, __u64 *out, __u32 size)
{
	struct unwind_window *win = w->win;
	__u64 off = addr - win->base;
	long err = 0;

	if (win->task != w->task || addr < win->base || off + size > win->len || (addr & 7)) {
		err = unwind_refill(w, addr, out, size);
	} else {
		off &= UNWIND_BUF - 1; /* no-op (off + size <= len): bounds for the verifier */
		out[0] = *(__u64 *)&win->data[off];
		if (size == 16)
			out[1] = *(__u64 *)&win->data[off + 8];
	}
	if (!err)
		unwind_note(w, addr, out, size);
	return err;
}

/* Step to the caller through the frame-pointer chain. */
static __always_inline long unwind_step_fp(struct unwind_walk *w)
{
	__u64 frame[2];

	/* A caller's frame is above the callee's, and aligned: anything else
	 * is not a frame pointer (code that uses the register for data), and
	 * following it would only add junk frames. */
	if (w->memo->recording && w->memo->fp_fresh)
		w->memo->uses_fp = 1;
	if (w->fp < w->sp || (w->fp & 7) || unwind_read(w, w->fp, frame, 16))
		return 1;
	w->sp = w->fp + 16;
	w->fp = frame[0];
	w->memo->fp_fresh = 0;
	w->ip = frame[1];
	return 0;
}

/* Step to the caller with a row. 0: continue, 1: the walk ends, -1: no
 * usable rule (the caller decides on a fallback). */
static __always_inline long unwind_step_row(struct unwind_walk *w, const struct stray_unwind_row *row)
{
	__u64 cfa, ra = 0, fp = w->fp;

	switch (row->cfa_rule) {
	case STRAY_CFA_SP:
		cfa = w->sp + row->cfa_off;
		break;
	case STRAY_CFA_FP:
		if (w->memo->recording && w->memo->fp_fresh)
			w->memo->uses_fp = 1;
		cfa = w->fp + row->cfa_off;
		break;
	case STRAY_CFA_PLT:
		cfa = w->sp + row->cfa_off + ((w->ip & 15) >= (__u64)row->fp_off ? 8 : 0);
		break;
	case STRAY_CFA_END:
		return 1;
	default:
		return -1;
	}
	if (cfa <= w->sp) /* the stack only grows down: a corrupt frame */
		return -1;
	if (row->fp_rule == STRAY_FP_AT_CFA && row->fp_off == STRAY_UNWIND_RA_OFF - 8) {
		/* The usual prologue pushed fp right below the return address:
		 * one read for both. */
		__u64 pair[2];

		if (unwind_read(w, cfa + row->fp_off, pair, 16))
			return -1;
		fp = pair[0];
		ra = pair[1];
	} else {
		if (unwind_read(w, cfa + STRAY_UNWIND_RA_OFF, &ra, 8))
			return -1;
		if (row->fp_rule == STRAY_FP_AT_CFA && unwind_read(w, cfa + row->fp_off, &fp, 8))
			return -1;
	}
	w->ip = ra;
	w->sp = cfa;
	w->fp = fp;
	if (row->fp_rule == STRAY_FP_AT_CFA)
		w->memo->fp_fresh = 0;
	return 0;
}

/* The rule for w->ip: from the cache, else from the module's rows (and
 * then cached). NULL when there is none. */
static __always_inline struct stray_unwind_row *unwind_rule(struct unwind_walk *w)
{
	__u32 idx = bpf_get_smp_processor_id() * UNWIND_RULE_CACHE_SLOTS +
		    (__u32)((w->ip ^ (w->ip >> 17) ^ w->tag) & (UNWIND_RULE_CACHE_SLOTS - 1));
	struct unwind_rule_slot *slot = bpf_map_lookup_elem(&unwind_rule_cache, &idx);
	struct stray_unwind_row *row = NULL;

	if (!slot)
		return NULL;
	if (slot->tag == w->tag && slot->pc == w->ip)
		return &slot->row;
	unwind_find_module(w);
	/* Every frame's ip is a return address: the call is the byte before,
	 * which is inside the caller even when the call was its last
	 * instruction (a noreturn callee). */
	if (w->nrows && w->ip - 1 - w->bias <= 0xffffffffULL) /* rows hold 32-bit pcs */
		row = unwind_find_row(w, w->ip - 1 - w->bias);
	if (!row)
		return NULL;
	slot->row = *row;
	slot->pc = w->ip;
	slot->tag = w->tag;
	return &slot->row;
}

/* bpf_loop callback: record frame i (w->ip) and step to its caller. */
static long unwind_frame(__u64 i, void *data)
{
	struct unwind_walk *w = data;
	struct stray_unwind_row *row;
	__u32 d = w->depth;
	long ret;

	if (!w->ip || d >= STRAY_MAX_STACK_DEPTH || d >= max_depth)
		return 1;
	w->ips[d] = w->ip;
	w->hash = mix(w->hash, w->ip); /* hash_stack's, frame by frame */
	w->depth = d + 1;
	if (unwind_mode == STRAY_UNWIND_FP)
		return unwind_step_fp(w);
	row = unwind_rule(w);
	ret = row ? unwind_step_row(w, row) : -1;
	if (ret >= 0)
		return ret;
	if (unwind_mode != STRAY_UNWIND_AUTO) {
		count(STRAY_CNT_UNWIND_STOPPED);
		return 1;
	}
	count(STRAY_CNT_UNWIND_FP_FRAMES);
	return unwind_step_fp(w);
}

/* The memo slot for a walk starting from w's registers. */
static __always_inline struct unwind_memo *unwind_memo_slot(const struct unwind_walk *w)
{
	__u32 idx = bpf_get_smp_processor_id() * UNWIND_MEMO_SLOTS +
		    (__u32)(mix(mix(w->tag, w->ip), w->sp) & (UNWIND_MEMO_SLOTS - 1));
	struct unwind_memo *m = bpf_map_lookup_elem(&unwind_memos, &idx);

	if (m)
		m->slot = idx;
	return m;
}

/* Whether m remembers the walk w is about to make: same process and
 * registers, and every word it read still the same (read again, in one
 * window that a walk after a failed check goes on using). */
static __always_inline bool unwind_memo_holds(struct unwind_walk *w, const struct unwind_memo *m)
{
	struct unwind_window *win = w->win;
	__u32 span = m->span, off;

	if (m->tag != w->tag || m->ip != w->ip || m->sp != w->sp || (m->uses_fp && m->fp != w->fp) || !m->nwords ||
	    span > UNWIND_BUF || span < 8)
		return false;
	if (bpf_probe_read_user(win->data, span, (void *)m->base))
		return false;
	win->task = w->task;
	win->base = m->base;
	win->len = span;
	for (__u32 i = 0; i < UNWIND_MEMO_WORDS; i++) {
		__u32 key = m->slot * UNWIND_MEMO_WORDS + i;
		struct unwind_memo_word *word;

		if (i >= m->nwords)
			break;
		word = bpf_map_lookup_elem(&unwind_memo_words, &key);
		if (!word)
			return false;
		off = word->off & (UNWIND_BUF - 1);
		if (*(__u64 *)&win->data[off] != word->val)
			return false;
	}
	return true;
}

/* Keep walk w, whose frames are w->ips[0, depth), in its memo slot. */
static __always_inline void unwind_memo_keep(struct unwind_walk *w, __u64 hash)
{
	struct unwind_memo *m = w->memo;

	if (!m->recording || !m->nwords)
		return;
	m->ip = w->start_ip;
	m->sp = w->start_sp;
	m->fp = w->start_fp;
	m->hash = hash;
	m->depth = w->depth;
	m->tag = w->tag; /* last: the slot is valid from here */
}

/*
 * Walk the current user stack into ips[]; returns the depth and sets
 * *hash to the stack's hash (hash_stack of tgid and the frames). At a
 * return probe the registers are the caller's after the return, the
 * first frame its return address; there, with memo, a remembered walk
 * that still holds gives the depth and hash without the frames:
 * *ips_filled says whether ips[] was written. At a function's entry,
 * ret_slot is the stack pointer: the return address is there, and popping
 * it gives the caller's stack pointer (CFA = sp + 8); the frame pointer is
 * unchanged.
 */
static __always_inline __u32 unwind_user_stack(struct pt_regs *regs, __u64 ret_slot, __u64 *ips, bool memo,
					       __u64 *hash, bool *ips_filled)
{
	struct unwind_walk w = {
		.ip = PT_REGS_IP(regs),
		.sp = PT_REGS_SP(regs),
		.fp = PT_REGS_FP(regs),
		.ips = ips,
	};
	struct task_struct *task = bpf_get_current_task_btf();
	struct unwind_memo *m;
	__u32 zero = 0;

	*ips_filled = true;
	*hash = 0;
	w.win = bpf_map_lookup_elem(&unwind_windows, &zero);
	if (!w.win)
		goto unreadable;
	w.win->len = 0; /* the stack has changed since the last walk */
	w.task = (__u64)task;
	if (ret_slot) {
		if (bpf_probe_read_user(&w.ip, sizeof(w.ip), (void *)ret_slot))
			goto unreadable;
		w.sp = ret_slot + 8;
	}
	/* exec gives the process a new address space and counts itself in
	 * self_exec_id (a thread's copy is its creator's). Plain loads: the
	 * mm pointer as a number would take a probe read. */
	w.tag = mix(mix(task->group_leader->start_time, task->self_exec_id), task->tgid);
	w.hash = hash_stack(task->tgid, ips, 0);
	w.start_ip = w.ip;
	w.start_sp = w.sp;
	w.start_fp = w.fp;
	m = unwind_memo_slot(&w);
	if (!m)
		goto unreadable;
	w.memo = m;
	m->recording = 0;
	if (memo && !ret_slot) {
		if (unwind_memo_holds(&w, m)) {
			*hash = m->hash;
			*ips_filled = false;
			return m->depth;
		}
		m->tag = 0; /* recorded anew by this walk, or left empty */
		m->base = w.sp & ~7ULL;
		m->span = 0;
		m->uses_fp = 0;
		m->fp_fresh = 1;
		m->nwords = 0;
		m->recording = 1;
	}
	bpf_loop(STRAY_MAX_STACK_DEPTH, unwind_frame, &w, 0);
	*hash = w.hash;
	unwind_memo_keep(&w, *hash);
	return w.depth;
unreadable:
	count(STRAY_CNT_STACK_ERRORS);
	return 0;
}

#endif /* STRAY_UNWIND_BPF_H */
