/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The user stack by frame pointers, walked in BPF. It reads what
 * bpf_get_stack(BPF_F_USER_STACK) reads on x86-64 (the kernel's
 * perf_callchain_user: the current ip, then each frame's return address
 * following saved %rbp), but stops where the chain stops climbing: the
 * kernel follows it until a read fails or the depth is reached, which in a
 * program built without frame pointers means up to 64 reads of junk per
 * allocation, most of stray's per-trap work in a return probe.
 */
#ifndef STRAY_FPWALK_BPF_H
#define STRAY_FPWALK_BPF_H

#include "stray.h"

struct user_frame {
	__u64 next; /* caller's saved %rbp */
	__u64 ret;  /* return address into the caller */
};

struct fp_walk {
	__u64 fp;
	__u64 *ips;
	long n;
};

/* bpf_loop callback: frame i (from 1) of the walk. A loop callback is
 * verified once, where an unrolled or bounded loop would be verified at
 * every inlined call site (that cost 250 ms of stray's start-up). */
static long fp_step(__u64 i, void *data)
{
	struct fp_walk *w = data;
	struct user_frame f;

	if (i == 0 || i >= STRAY_MAX_STACK_DEPTH)
		return i == 0 ? 0 : 1;
	if ((w->fp & 7) || bpf_probe_read_user(&f, sizeof(f), (void *)w->fp))
		return 1;
	w->ips[i] = f.ret;
	w->n = i + 1;
	/* Callers' frames lie above: a chain that does not climb is not a
	 * frame chain (code built without frame pointers uses %rbp for
	 * data), and following it only adds junk frames. */
	if (f.next <= w->fp)
		return 1;
	w->fp = f.next;
	return 0;
}

/* Fill up to frames (at most STRAY_MAX_STACK_DEPTH) entries of ips from
 * regs; returns the bytes filled, like bpf_get_stack. */
static __always_inline long walk_user_stack(struct pt_regs *regs, __u64 *ips, __u32 frames)
{
	struct fp_walk w = { .fp = PT_REGS_FP(regs), .ips = ips, .n = 1 };

	ips[0] = PT_REGS_IP(regs);
	bpf_loop(frames, fp_step, &w, 0);
	return w.n * sizeof(__u64);
}

#endif /* STRAY_FPWALK_BPF_H */
