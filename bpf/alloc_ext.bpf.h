/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Allocator libraries beyond glibc: the return of operator new seen at its
 * ret instructions, jemalloc's mallocx family and mimalloc's own names.
 * Included by bpf/stray.bpf.c after its helpers (enter, leave_alloc,
 * leave_realloc, ...), which these build on.
 */
#ifndef STRAY_ALLOC_EXT_BPF_H
#define STRAY_ALLOC_EXT_BPF_H

/*
 * An entry probe on a ret instruction reachable from operator new
 * (user/retsites.c). It is new's own return when the thread's record is
 * still new's, unadopted (no probed allocator call inside took it), and the
 * stack pointer is at new's return-address slot; then %rax is the block
 * (NULL: a nothrow new failed). Anything else (a ret of the same code
 * reached from elsewhere, or after the inner malloc already recorded the
 * block) is left alone.
 */
static __always_inline int on_new_return(void *ctx)
{
	struct stray_inflight *in = inflight_lookup();
	struct stray_inflight rec;

	if (!in || !new_waiting(in) || PT_REGS_SP((struct pt_regs *)ctx) != in->new_sp)
		return 0;
	rec = *in;
	inflight_delete(in);
	if (!PT_REGS_RC((struct pt_regs *)ctx)) {
		count(STRAY_CNT_FAILED_ALLOCS);
		return 0;
	}
	record_alloc(ctx, PT_REGS_RC((struct pt_regs *)ctx), rec.size, rec.fn, rec.new_site);
	return 0;
}

/* Entry of an extended function, or of a new ret site (cookie). */
static __always_inline int ext_entry(void *ctx, __u64 cookie, __u64 a1, __u64 a2, __u64 a3)
{
	switch (cookie) {
	case STRAY_COOKIE_NEW_RETURN:
		return on_new_return(ctx);
	case STRAY_FN_MALLOCX: /* mallocx(size, flags) */
	case STRAY_FN_MI_ZALLOC: /* mi_zalloc(size) */
	case STRAY_FN_MI_MALLOC_ALIGNED: /* mi_malloc_aligned(size, alignment) */
	case STRAY_FN_MI_ZALLOC_ALIGNED:
		return enter(ctx, cookie, a1, 0, ENTRY_PLAIN);
	case STRAY_FN_MI_MALLOCN: /* mi_mallocn(count, size) */
	case STRAY_FN_MI_CALLOC_ALIGNED: /* mi_calloc_aligned(count, size, alignment) */
		return enter(ctx, cookie, array_bytes(a1, a2), 0, ENTRY_PLAIN);
	case STRAY_FN_MI_ALIGNED_ALLOC: /* mi_aligned_alloc(alignment, size) */
		return enter(ctx, cookie, a2, 0, ENTRY_PLAIN);
	case STRAY_FN_MI_POSIX_MEMALIGN: /* mi_posix_memalign(&p, alignment, size) */
		return enter(ctx, cookie, a3, a1, ENTRY_PLAIN);
	case STRAY_FN_RALLOCX: /* rallocx(p, size, flags) */
	case STRAY_FN_MI_REALLOC_ALIGNED: /* mi_realloc_aligned(p, size, alignment) */
		return enter(ctx, cookie, a2, a1, ENTRY_MOVES_OLD);
	case STRAY_FN_MI_REALLOCN: /* mi_reallocn(p, count, size) */
	case STRAY_FN_MI_RECALLOC:
	case STRAY_FN_MI_REALLOCARRAY:
		return enter(ctx, cookie, array_bytes(a2, a3), a1, ENTRY_MOVES_OLD);
	/* xallocx(p, size, extra, flags): resizes in place or not at all. */
	case STRAY_FN_XALLOCX:
		return enter_aux(ctx, cookie, a2, a1, ENTRY_MOVES_OLD, a3 > 0xffffffffULL ? 0xffffffffU : (__u32)a3);
	/* sdallocx(p, size, flags), dallocx(p, flags), mi_free_aligned(p,
	 * alignment): like operator delete, a call with a return probe, so
	 * that the free they may make inside (mi_free_aligned calls free) is
	 * not a second release of the block. */
	case STRAY_FN_SDALLOCX:
	case STRAY_FN_DALLOCX:
	case STRAY_FN_MI_FREE_ALIGNED:
		return enter(ctx, cookie, 0, a1, ENTRY_FREES);
	}
	return 0;
}

/*
 * xallocx returns the block's usable size afterwards: at least size when
 * it could resize in place (the block now holds what was asked, up to
 * size + extra), less when it could not (the block is unchanged). Either
 * way the address stays; a resize counts like a realloc at its caller.
 */
static __always_inline int leave_xallocx(void *ctx, const struct stray_inflight *rec, __u64 usable)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 most = rec->size + rec->old_pages;

	if (!rec->has_old)
		return 0;
	if (usable < rec->size) {
		restore_alloc(tgid, rec->ptr_arg, &rec->old);
		return 0;
	}
	site_release(tgid, &rec->old);
	record_alloc(ctx, rec->ptr_arg, usable < most ? usable : most, rec->fn, 0);
	return 0;
}

/* Return of an extended function. */
static __always_inline int ext_return(void *ctx, const struct stray_inflight *rec, __u64 ret)
{
	switch (rec->fn) {
	case STRAY_FN_RALLOCX:
	case STRAY_FN_MI_REALLOC_ALIGNED:
	case STRAY_FN_MI_REALLOCN:
	case STRAY_FN_MI_RECALLOC:
	case STRAY_FN_MI_REALLOCARRAY:
		return leave_realloc(ctx, rec, ret);
	case STRAY_FN_XALLOCX:
		return leave_xallocx(ctx, rec, ret);
	case STRAY_FN_MI_POSIX_MEMALIGN:
		return leave_posix_memalign(ctx, rec, (int)ret);
	case STRAY_FN_SDALLOCX:
	case STRAY_FN_DALLOCX:
	case STRAY_FN_MI_FREE_ALIGNED:
		return 0; /* released at entry */
	default:
		return leave_alloc(ctx, rec, ret);
	}
}

#endif /* STRAY_ALLOC_EXT_BPF_H */
