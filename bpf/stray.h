/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between stray's BPF programs and user space: map keys and values,
 * limits and drop counters. Fixed-width __u32/__u64 only; user space
 * _Static_asserts every size so a layout change cannot go unnoticed.
 */
#ifndef STRAY_H
#define STRAY_H

#ifndef __VMLINUX_H__ /* user space: BPF code gets the types from vmlinux.h */
#include <linux/types.h>
#endif

/* Deepest user stack captured per allocation site (frames). */
#define STRAY_MAX_STACK_DEPTH 64

/* Default map capacities; user space may override them before load. */
/* The stack walker's per-CPU caches (bpf/unwind.bpf.h), each an array of
 * this many slots per CPU: user space sizes the maps for the CPUs there
 * are. One plain array, not a per-CPU map: a per-CPU array allocates each
 * element on its own, which took 30 ms of stray's start-up. */
#define STRAY_UNWIND_RULE_SLOTS 8192 /* a power of two */
#define STRAY_UNWIND_MEMO_SLOTS 1024 /* a power of two */
#define STRAY_UNWIND_MEMO_WORDS 16

/* is_target's fast path: an array of this many slots (a power of two). */
#define STRAY_TARGET_SLOTS 4096
#define STRAY_DEFAULT_MAX_ALLOCS (1u << 20)
#define STRAY_DEFAULT_MAX_SITES (1u << 14)

/* The allocator entry points stray probes. Order is ABI: user space indexes
 * its symbol tables with it. */
enum stray_fn {
	STRAY_FN_MALLOC,
	STRAY_FN_CALLOC,
	STRAY_FN_REALLOC,
	STRAY_FN_REALLOCARRAY,
	STRAY_FN_FREE,
	STRAY_FN_POSIX_MEMALIGN,
	STRAY_FN_ALIGNED_ALLOC,
	STRAY_FN_MEMALIGN,
	STRAY_FN_VALLOC,
	STRAY_FN_PVALLOC,
	/* C++ (libstdc++ mangled names in user/loader.c): operator new and
	 * new[], plain, nothrow, aligned (std::align_val_t) and both. */
	STRAY_FN_NEW,
	STRAY_FN_NEW_ARRAY,
	STRAY_FN_NEW_NOTHROW,
	STRAY_FN_NEW_ARRAY_NOTHROW,
	STRAY_FN_NEW_ALIGNED,
	STRAY_FN_NEW_ARRAY_ALIGNED,
	STRAY_FN_NEW_ALIGNED_NOTHROW,
	STRAY_FN_NEW_ARRAY_ALIGNED_NOTHROW,
	/* operator delete and delete[]: every form takes the block first. */
	STRAY_FN_DELETE,
	STRAY_FN_DELETE_ARRAY,
	STRAY_FN_DELETE_SIZED,
	STRAY_FN_DELETE_ARRAY_SIZED,
	STRAY_FN_DELETE_NOTHROW,
	STRAY_FN_DELETE_ARRAY_NOTHROW,
	STRAY_FN_DELETE_ALIGNED,
	STRAY_FN_DELETE_ARRAY_ALIGNED,
	STRAY_FN_DELETE_SIZED_ALIGNED,
	STRAY_FN_DELETE_ARRAY_SIZED_ALIGNED,
	STRAY_FN_DELETE_ALIGNED_NOTHROW,
	STRAY_FN_DELETE_ARRAY_ALIGNED_NOTHROW,
	/* Anonymous mappings (a separate kind, STRAY_KIND_MMAP): libc's
	 * wrappers, probed like the allocator functions. */
	STRAY_FN_MMAP,
	STRAY_FN_MUNMAP,
	STRAY_FN_MREMAP,
	/* jemalloc's non-standard API (mallocx(3)); nallocx and sallocx
	 * allocate nothing. Handled in bpf/alloc_ext.bpf.h. */
	STRAY_FN_MALLOCX,
	STRAY_FN_RALLOCX,
	STRAY_FN_XALLOCX,
	STRAY_FN_SDALLOCX,
	STRAY_FN_DALLOCX,
	/* mimalloc's own names that are not aliases of a standard one
	 * (mi_malloc, mi_calloc, mi_realloc, mi_free and mi_new are). */
	STRAY_FN_MI_ZALLOC,
	STRAY_FN_MI_MALLOCN,
	STRAY_FN_MI_MALLOC_ALIGNED,
	STRAY_FN_MI_ZALLOC_ALIGNED,
	STRAY_FN_MI_CALLOC_ALIGNED,
	STRAY_FN_MI_REALLOCN,
	STRAY_FN_MI_REALLOC_ALIGNED,
	STRAY_FN_MI_RECALLOC,
	STRAY_FN_MI_REALLOCARRAY,
	STRAY_FN_MI_POSIX_MEMALIGN,
	STRAY_FN_MI_ALIGNED_ALLOC,
	STRAY_FN_MI_FREE_ALIGNED,
	STRAY_FN_COUNT,
};

/* Cookie of the entry probes on operator new's ret instructions (not a
 * function: user/retsites.c, bpf/alloc_ext.bpf.h). */
#define STRAY_COOKIE_NEW_RETURN 0x10000u

/* Drop and event counters, one slot each in the per-CPU "counters" map. */
enum stray_counter {
	STRAY_CNT_ALLOCS,          /* allocations recorded */
	STRAY_CNT_FREES,           /* frees matched to a recorded allocation */
	STRAY_CNT_UNMATCHED_FREES, /* free of an address never recorded (e.g. before attach) */
	STRAY_CNT_FAILED_ALLOCS,   /* allocator returned NULL / error: not recorded */
	STRAY_CNT_ALLOC_MAP_FULL,  /* allocation not tracked: allocs map full */
	STRAY_CNT_SITE_MAP_FULL,   /* allocation tracked without a stack: sites map full */
	STRAY_CNT_INFLIGHT_FULL,   /* call not tracked: inflight map full */
	STRAY_CNT_MISSING_ENTRY,   /* return probe without a matching entry */
	STRAY_CNT_STACK_ERRORS,    /* no stack at all: the walk could not start */
	STRAY_CNT_STACK_COLLISIONS,/* two different stacks hashed to one site key */
	STRAY_CNT_DUPLICATE_ADDR,  /* allocation returned an address already live */
	STRAY_CNT_STALE_INFLIGHT,  /* in-flight record whose return was never seen */
	STRAY_CNT_MAPS,            /* anonymous regions recorded (mmap, mremap) */
	STRAY_CNT_UNMAPS,          /* regions released whole (munmap, mremap's old one) */
	STRAY_CNT_UNMATCHED_UNMAPS,/* munmap/MAP_FIXED range with no tracked region found
				      (mapped before attach, not anonymous, not through
				      libc's wrapper, or an interior unmap of a region
				      starting more than STRAY_UNMAP_SEARCH_PAGES below) */
	STRAY_CNT_UNMAP_UNHANDLED, /* munmap range reaching past STRAY_UNMAP_MAX_REGIONS
				      contiguous regions: the rest stays recorded */
	STRAY_CNT_UNTRACKED_BYTES, /* bytes of the blocks counted in STRAY_CNT_ALLOC_MAP_FULL */
	STRAY_CNT_FOLLOW_LOST,     /* --follow: fork/exec/exit event not delivered (ring
				      buffer or targets map full) */
	STRAY_CNT_UNWIND_FP_FRAMES,/* --unwind=auto: frames stepped with the frame pointer
				      because their module had no unwind table (yet) */
	STRAY_CNT_UNWIND_STOPPED,  /* DWARF walks ended early: no rule for the address,
				      or the stack could not be read */
	STRAY_CNT_UNWIND_NO_VMA,   /* frames whose module could not be found: address
				      space locked (bpf_find_vma's EBUSY), not cached */
	STRAY_CNT_NR,
};

/* Allocation kinds: a site holds one kind only (the kind is mixed into its
 * stack hash), so a function that both mallocs and mmaps is two sites. */
enum stray_kind {
	STRAY_KIND_HEAP = 0, /* malloc family and operator new */
	STRAY_KIND_MMAP = 1, /* anonymous mmap regions (mremap keeps the kind) */
};

/* munmap: regions per call handled (contiguous ones), and how far below an
 * unmapped address that is not a region start the containing region's start
 * is searched for (one hash lookup per page, bpf_loop). */
#define STRAY_UNMAP_MAX_REGIONS 4
#define STRAY_UNMAP_SEARCH_PAGES 256

/* Key of the outstanding-allocation map: one entry per live block. */
struct stray_alloc_key {
	__u32 tgid;
	__u32 pad;
	__u64 addr;
};

/* Key of a call site: the process and a hash of its user stack. Stack
 * addresses are per process (ASLR), so the tgid is part of the identity. */
struct stray_site_key {
	__u32 tgid;
	__u32 pad;
	__u64 stack_hash;
};

struct stray_alloc {
	__u64 size;
	__u64 ts_ns; /* bpf_ktime_get_ns() at allocation */
	__u64 stack_hash;
	__u32 fn; /* enum stray_fn that made it */
	__u32 kind; /* enum stray_kind */
};

/* ==== the block table (bpf/blocks.bpf.h, user/drain.c) ===================
 * Heap blocks live first in a set-associative table, an array map that
 * user space maps: slot = (set of the block's tgid and address) * WAYS +
 * way. An array look-up compiles to an address computation where the hash
 * map's insert, look-up and delete each cost a helper call, a key hash, a
 * bucket lock and (insert) an allocation. A block whose set is full goes to
 * the allocs hash map as before. A slot is free while addr is 0; tgid is
 * written last when a block is stored and cleared first when it is taken,
 * so a slot whose tgid is not 0 holds a complete record. */
#define STRAY_BLOCK_WAYS 4

struct stray_block_slot {
	__u64 addr;
	__u64 tgid; /* 64 bits: the BPF atomics clang 14 makes by default */
	struct stray_alloc a;
};

/* A site's counters, updated with atomic adds by every CPU. What was freed
 * is not counted but derived (user/drain.c): two more atomic adds per free
 * cost more than the subtraction. */
struct stray_site_counts {
	__s64 live_bytes;
	__s64 live_count;
	__u64 alloc_bytes;
	__u64 alloc_count;
};

/* Per-site aggregate: a site's counters are these plus, when it has one,
 * its slot's (struct stray_site_slot). */
struct stray_site {
	struct stray_site_counts counts;
	/* live pieces that munmap cut out of regions beyond the regions
	 * themselves: each is counted as freed when it goes */
	__u64 extra_pieces;
	__u32 depth; /* valid entries in ips[] */
	__u32 kind;  /* enum stray_kind */
	/* Return addresses, innermost first: ips[0] is in the function that
	 * called the allocator. */
	__u64 ips[STRAY_MAX_STACK_DEPTH];
};

/* ==== site counter slots (bpf/stray.bpf.c, user/drain.c) ================
 * A new site takes the slot of an array map that its tag selects, if that
 * slot is free, and keeps it for its life: then an allocation or a free
 * adds to the slot's counters, found by an address computation, where the
 * sites hash map costs a helper call, a key hash and a bucket walk each
 * time (half of stray's work per malloc/free pair beyond the traps). A
 * site that found its slot taken counts in its hash map value; a site
 * created on two CPUs at once may count in both, so a site's totals are
 * always the sum. tag is 0 while the slot is free and
 * STRAY_SITE_SLOT_CLAIMED while its counters are being zeroed. */
#define STRAY_SITE_SLOT_CLAIMED 2ull

struct stray_site_slot {
	__u64 tag;
	__u64 pad;
	struct stray_site_counts counts;
};

/* Odd, so never 0 or STRAY_SITE_SLOT_CLAIMED; its top bits pick the slot. */
static inline __u64 stray_site_tag(__u32 tgid, __u64 stack_hash)
{
	return ((stack_hash ^ ((__u64)tgid << 32)) * 0x9e3779b97f4a7c15ULL) | 1;
}

static inline __u32 stray_site_slot_index(__u64 tag, __u32 slot_bits)
{
	return (__u32)(tag >> (64 - (slot_bits & 31)));
}

/*
 * One call in flight per thread. Keyed by thread id only: allocator entry
 * points call each other (realloc(NULL, n) -> malloc, reallocarray ->
 * realloc, realloc(p, 0) -> free, operator delete[] -> operator delete ->
 * free), and only the outermost call may be recorded, so nested calls
 * leave the thread's one entry alone. A nested call entered by a tail jump
 * shares the outermost call's stack pointer and returns with it (the
 * kernel chains their uretprobes): those are counted in chained, so that
 * only the last of those returns closes the record.
 *
 * operator new has no return probe (a uretprobe replaces the return
 * address on the user stack, and the C++ unwinder cannot unwind through
 * it: a std::bad_alloc thrown out of a probed new would terminate the
 * program). Its entry takes the caller's stack and opens the record with
 * sp 0; the allocator call made inside it (libstdc++'s new calls malloc,
 * its aligned new aligned_alloc) adopts the record, and its return records
 * the block with operator new's size and site.
 */
struct stray_inflight {
	__u64 size;
	__u64 ptr_arg;  /* realloc's old pointer, posix_memalign's memptr */
	__u64 sp;       /* user stack pointer at the entry of the call whose return
			   closes the record (points at its return address); 0
			   while an operator new waits for its allocator call */
	__u64 new_sp;   /* operator new's entry stack pointer, 0 outside one */
	__u64 new_ret;  /* the return address at new_sp at that entry */
	__u64 new_site; /* stack hash of operator new's caller (its site) */
	__u32 fn;
	__u32 chained;  /* nested calls entered by a tail jump, not yet returned */
	__u32 has_old;  /* old block was moved out of the allocs map at entry */
	__u32 old_pages;/* mremap: old_size in pages; xallocx: its extra (clamped) */
	struct stray_alloc old; /* realloc's old block, restored if realloc fails */
	__u32 unsampled;/* --sample: realloc's new block was not sampled */
	__u32 pad;
};

struct stray_counters {
	__u64 v[STRAY_CNT_NR];
};

/* ==== --follow (bpf/follow.bpf.h, user/follow.c) =========================
 * In -p mode with --follow, the sched tracepoints tell user space about
 * processes forked by a target, about execs and about exits of targets,
 * through a ring buffer (rare events). */

#define STRAY_FOLLOW_RINGBUF_BYTES (256 * 1024)

enum stray_follow_kind {
	STRAY_FOLLOW_FORK = 1, /* pid: the new process, parent: the target that forked it */
	STRAY_FOLLOW_EXEC = 2, /* pid: a target that exec'd */
	STRAY_FOLLOW_EXIT = 3, /* pid: a target whose last thread exited */
};

struct stray_follow_event {
	__u64 ts_ns; /* bpf_ktime_get_ns() at the event */
	__u32 kind;  /* enum stray_follow_kind */
	__u32 pid;
	__u32 parent;
	__u32 pad;
};
/* --sample: exponential draws precomputed by user space (bpf/sample.bpf.h);
 * a power of two. */
#define STRAY_SAMPLE_DRAWS 4096

/* ==== timers (bpf/timers.bpf.c, user/timers.c) ==========================
 * Timer leaks: timerfds, POSIX timers, setitimer/alarm and libuv timer
 * handles. Appended as one section; nothing above depends on it. */

#define STRAY_DEFAULT_MAX_TIMERS (1u << 16)
#define STRAY_DEFAULT_MAX_TIMER_SITES (1u << 12)
/* Threads inside a probed libc timer wrapper at once (see pending_stacks). */
#define STRAY_MAX_TIMER_PENDING (1u << 12)

enum stray_timer_kind {
	STRAY_TIMER_TIMERFD = 1, /* id: the struct file * of the timerfd */
	STRAY_TIMER_POSIX = 2,   /* id: the kernel timer id */
	STRAY_TIMER_UV = 3,      /* id: the uv_timer_t * in the target */
};

/* User functions probed per target (uprobe_multi cookie). Order is ABI:
 * user space indexes its symbol tables with it. */
enum stray_timer_fn {
	/* libc's wrappers: arguments kept at entry, acted on at a successful
	 * return (alarm: entry only); creation stacks taken at entry. */
	STRAY_TFN_TIMER_CREATE,
	STRAY_TFN_TIMERFD_CREATE,
	STRAY_TFN_TIMER_SETTIME,
	STRAY_TFN_TIMER_DELETE,
	STRAY_TFN_TIMERFD_SETTIME,
	STRAY_TFN_SETITIMER,
	STRAY_TFN_ALARM,
	/* libuv: entry probes */
	STRAY_TFN_UV_TIMER_INIT,
	STRAY_TFN_UV_TIMER_START,
	STRAY_TFN_UV_TIMER_STOP,
	STRAY_TFN_UV_CLOSE,
	STRAY_TFN_COUNT,
};

/* Event and drop counters, per-CPU "timer_counters" map. */
enum stray_timer_counter {
	STRAY_TCNT_CREATED,         /* timers recorded */
	STRAY_TCNT_RELEASED,        /* recorded timers released (close/delete/uv_close) */
	STRAY_TCNT_ENDED,           /* last reference dropped by the owner's exit or exec:
				       not a release (the entry stays for user space) */
	STRAY_TCNT_MAP_FULL,        /* timer not tracked: timers map full */
	STRAY_TCNT_SITE_MAP_FULL,   /* timer tracked without a stack: sites map full */
	STRAY_TCNT_OWNER_MAP_FULL,  /* timerfd not tracked: owners map full */
	STRAY_TCNT_STACK_ERRORS,    /* bpf_get_stack failed */
	STRAY_TCNT_STACK_COLLISIONS,/* two stacks hashed to one site key */
	STRAY_TCNT_STALE_KEY,       /* a key was reused while still recorded: old entry lost */
	STRAY_TCNT_FD_RACE,         /* timerfd_create's fd no longer held a timerfd at return */
	STRAY_TCNT_PENDING_FULL,    /* libc wrapper call not traced: pending map full */
	STRAY_TCNT_ITIMER_MAP_FULL, /* setitimer/alarm not tracked: itimers map full */
	STRAY_TCNT_NR,
};

/* Outstanding timers. A struct file is unique system-wide while it lives,
 * but the key still carries the creating tgid: an entry left by an exited
 * or exec'd owner can never be confused with a new timerfd of another
 * process that got the same (freed and reused) struct file. */
struct stray_timer_key {
	__u32 tgid;
	__u32 kind; /* enum stray_timer_kind */
	__u64 id;
};

#define STRAY_TIMER_F_ABSTIME 1u /* value_ns is an absolute time on clockid */
#define STRAY_TIMER_F_ENDED 2u   /* last reference dropped at the owner's exit/exec */

struct stray_timer {
	__u64 stack_hash; /* creation site, in the sites map under (tgid, hash) */
	__u64 created_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u64 mm;         /* creating address space: a last release seen after
			     it changed (exec, or exit_mm at exit) ends the
			     window instead of releasing */
	__u64 set_ns;     /* CLOCK_MONOTONIC time of the last arm/disarm */
	__s64 value_ns;   /* it_value as last set (0: disarmed) */
	__s64 interval_ns;/* it_interval as last set (0: one-shot) */
	__u32 clockid;
	__u32 flags;      /* STRAY_TIMER_F_* */
	__s32 fd;         /* timerfd's fd number at creation (informational) */
	__u32 pad;
};

/* A creation stack. Sites carry no counts: user space reclaims the ones no
 * timer refers to (last_ns guards a site created just before its timer). */
struct stray_timer_site {
	__u64 last_ns;
	__u32 depth;
	__u32 pad;
	__u64 ips[STRAY_MAX_STACK_DEPTH]; /* innermost first: ips[0] is in the
					     caller of the creating function */
};

/* Owner of a tracked timerfd, keyed by struct file *. */
struct stray_timer_owner {
	__u32 tgid;
	__u32 pad;
};

/* A libc timer wrapper in progress in one thread: its arguments (and, for
 * timer_create/timerfd_create, the creation stack) taken at its entry,
 * used by its return probe in the same thread. */
struct stray_timer_pending {
	__u64 sp;         /* user stack pointer at the wrapper's entry */
	__u64 stack_hash;
	__u64 args[3];
	__u32 fn;         /* enum stray_timer_fn */
	__u32 pad;
};

/* setitimer/alarm state of one process: one slot per ITIMER_REAL,
 * ITIMER_VIRTUAL, ITIMER_PROF. */
struct stray_itimers {
	__s64 value_ns[3];
	__s64 interval_ns[3];
	__u64 set_ns[3];
};

/* One tracked timerfd in a process's fd table (task_file iterator record). */
struct stray_timer_fdrec {
	__u64 file;
	__u32 owner_tgid;
	__s32 fd;
};

struct stray_timer_counters {
	__u64 v[STRAY_TCNT_NR];
};

/* ==== DWARF unwinding (bpf/unwind.bpf.h, user/unwind_table.c) ==========
 * User space turns each mapped module's call-frame information into rows
 * (one per address range, sorted by pc) in the unwind_rows array, and
 * registers each module's file (device, inode) in unwind_modules. The
 * walker finds a frame's module through its VMA, so one table serves every
 * process that maps the file, at any address. */

enum stray_unwind_mode {
	STRAY_UNWIND_FP = 0,    /* frame pointers only (bpf_get_stack) */
	STRAY_UNWIND_DWARF = 1, /* tables only: a walk ends where no table covers */
	STRAY_UNWIND_AUTO = 2,  /* tables where they exist, frame pointers elsewhere */
};

#define STRAY_DEFAULT_UNWIND_ROWS (1u << 20)
#define STRAY_DEFAULT_UNWIND_MODULES 4096u

/* How the canonical frame address (CFA) of a row is computed. Registers are
 * named by role, not by an architecture's numbers. */
enum stray_cfa_rule {
	STRAY_CFA_NONE = 0, /* no rule here (gap between functions, or an
			       expression stray cannot evaluate) */
	STRAY_CFA_SP = 1,   /* CFA = sp + cfa_off */
	STRAY_CFA_FP = 2,   /* CFA = fp + cfa_off */
	STRAY_CFA_PLT = 3,  /* x86-64 lazy PLT entry: sp + cfa_off, + 8 more when
			       (pc & 15) >= 11 (the entry's push has run) */
	STRAY_CFA_END = 4,  /* outermost frame: return address undefined (_start) */
};

enum stray_fp_rule {
	STRAY_FP_SAME = 0,   /* the caller's frame pointer is unchanged */
	STRAY_FP_AT_CFA = 1, /* saved at CFA + fp_off */
};

/* One row: from pc (module virtual address) up to the next row's pc. The
 * return address is at CFA + STRAY_UNWIND_RA_OFF (x86-64: CFA - 8). */
struct stray_unwind_row {
	__u32 pc;
	__s32 cfa_off;
	__s16 fp_off;
	__u8 cfa_rule; /* enum stray_cfa_rule */
	__u8 fp_rule;  /* enum stray_fp_rule */
};

#define STRAY_UNWIND_RA_OFF (-8)

/* A mapped file, as the kernel names it (s_dev in kernel encoding). */
struct stray_unwind_module_key {
	__u64 dev;
	__u64 ino;
};

/* A module's rows: unwind_rows[first, first + nrows). A pc in the module is
 * its file offset + vaddr_delta (p_vaddr - p_offset of its code segment). */
struct stray_unwind_module {
	__u32 first;
	__u32 nrows;
	__s64 vaddr_delta;
};

/*
 * The stack walker's VMA cache (bpf/unwind.bpf.h), for the moments when
 * bpf_find_vma cannot take the address-space lock: per process and 2 MiB
 * granule of address space, up to STRAY_VMA_CACHE_WAYS executable
 * mappings with their module's rows. The walker fills it as it goes, and
 * user space seeds it from /proc/PID/maps (user/unwind_vmas.c), so that a
 * frame first met while another thread maps or unmaps still finds its
 * module.
 */
#define STRAY_VMA_GRANULE_SHIFT 21
#define STRAY_VMA_CACHE_WAYS 8

struct stray_vma_cache_key {
	__u32 tgid;
	__u32 pad;
	__u64 granule; /* address >> STRAY_VMA_GRANULE_SHIFT */
};

struct stray_vma {
	__u64 start, end;
	__s64 bias;	    /* module pc = address - bias */
	__u32 first, nrows; /* its rows; nrows 0: no table */
};

struct stray_vma_cache_entry {
	struct stray_vma vma[STRAY_VMA_CACHE_WAYS];
	__u32 next; /* the way replaced next */
	__u32 pad;
};

#endif /* STRAY_H */
