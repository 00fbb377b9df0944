// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The trap floor for `make bench`: empty programs attached exactly where
 * stray attaches its own (same objects, offsets, link types), so the cost
 * measured is the kernel's uprobe trap and nothing of stray's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe.multi")
int BPF_UPROBE(floor_entry)
{
	return 0;
}

SEC("uretprobe.multi")
int BPF_URETPROBE(floor_return)
{
	return 0;
}

/* Session mode (loaded with expected attach type BPF_TRACE_UPROBE_SESSION):
 * the cookie is 0 where stray's entry asks for the return probe (functions
 * with one), 1 where it never does. */
SEC("uprobe.multi")
int BPF_UPROBE(floor_session)
{
	return bpf_get_attach_cookie(ctx) ? 1 : 0;
}
