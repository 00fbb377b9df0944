/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * --follow (-p mode): processes forked by a target become targets. The
 * sched tracepoints put the child in the targets map at once (so its own
 * children and its exec are seen even before user space caught up) and
 * tell user space, which attaches the probes to the child. Between the
 * fork and that attach the child runs without probes: what it allocates
 * then is not seen (README: "Following children in -p mode").
 * Included by stray.bpf.c: uses its targets map and counters. The programs
 * are loaded only with --follow (user/loader.c).
 */
#ifndef STRAY_FOLLOW_BPF_H
#define STRAY_FOLLOW_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, STRAY_FOLLOW_RINGBUF_BYTES);
} follow_events SEC(".maps");

static __always_inline void follow_notify(__u32 kind, __u32 pid, __u32 parent)
{
	struct stray_follow_event e = {
		.ts_ns = bpf_ktime_get_ns(), .kind = kind, .pid = pid, .parent = parent,
	};

	if (bpf_ringbuf_output(&follow_events, &e, sizeof(e), 0))
		count(STRAY_CNT_FOLLOW_LOST);
}

/* A new process (not a thread) forked by a target. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(follow_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid), one = 1;

	if (ptgid == ctgid || !is_target(ptgid))
		return 0;
	if (bpf_map_update_elem(&targets, &ctgid, &one, BPF_NOEXIST) && !is_target(ctgid)) {
		count(STRAY_CNT_FOLLOW_LOST);
		return 0;
	}
	claim_target_slot(ctgid);
	follow_notify(STRAY_FOLLOW_FORK, ctgid, ptgid);
	return 0;
}

/* A target replaced its image: the old image's blocks are gone, and the
 * new one may need probes on other objects. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(follow_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (is_target(tgid))
		follow_notify(STRAY_FOLLOW_EXEC, tgid, 0);
	return 0;
}

/* The last thread of a target exited. signal->live counts the live
 * threads and is already decremented here, so 0 means the whole process
 * is gone (this works whether or not the tracepoint has a group_dead
 * argument, which it gained in 6.16). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(follow_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (BPF_CORE_READ(task, signal, live.counter) == 0 && is_target(tgid))
		follow_notify(STRAY_FOLLOW_EXIT, tgid, 0);
	return 0;
}

#endif /* STRAY_FOLLOW_BPF_H */
