// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include "attach_mode.h"

static const char *const mode_names[ATTACH_MODE_NR] = {
	[ATTACH_SESSION] = "session",
	[ATTACH_MULTI] = "multi",
	[ATTACH_CLASSIC] = "classic",
};

const char *attach_mode__name(enum attach_mode mode)
{
	return mode < ATTACH_MODE_NR ? mode_names[mode] : "?";
}

/* BPF_LINK_CREATE for uprobe_multi and session links, by hand: libbpf
 * 1.4's bpf_link_create fills the uprobe_multi attributes only for
 * BPF_TRACE_UPROBE_MULTI. */
static int uprobe_link_create(int prog_fd, unsigned attach_type, int pid, const char *path,
			      const unsigned long *offsets, const __u64 *cookies, size_t n)
{
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.link_create.prog_fd = prog_fd;
	attr.link_create.attach_type = attach_type;
	attr.link_create.uprobe_multi.path = (__u64)(unsigned long)path;
	attr.link_create.uprobe_multi.offsets = (__u64)(unsigned long)offsets;
	attr.link_create.uprobe_multi.cookies = (__u64)(unsigned long)cookies;
	attr.link_create.uprobe_multi.cnt = n;
	attr.link_create.uprobe_multi.pid = pid;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

int attach_mode__session_link(int prog_fd, int pid, const char *path, const unsigned long *offsets,
			      const __u64 *cookies, size_t n)
{
	return uprobe_link_create(prog_fd, STRAY_BPF_TRACE_UPROBE_SESSION, pid, path, offsets, cookies, n);
}

/*
 * Whether the kernel has links of attach_type for uprobes, without
 * registering any probe (whose removal would wait for an RCU grace period):
 * a trivial program of that expected type, linked for a process that
 * cannot exist. A kernel that knows the type looks for the process and
 * says ESRCH; one that does not refuses the type first (EINVAL).
 */
static bool kernel_has_uprobe_link(unsigned attach_type)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = attach_type);
	unsigned long offset = 0;
	int prog, link;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "stray_probe", "GPL", insns, 2, &opts);
	if (prog < 0)
		return false;
	link = uprobe_link_create(prog, attach_type, INT_MAX, "/proc/self/exe", &offset, NULL, 1);
	if (link >= 0)
		close(link);
	close(prog);
	return link == -ESRCH || link >= 0;
}

static bool kernel_has(enum attach_mode mode)
{
	switch (mode) {
	case ATTACH_SESSION:
		return kernel_has_uprobe_link(STRAY_BPF_TRACE_UPROBE_SESSION);
	case ATTACH_MULTI:
		return kernel_has_uprobe_link(BPF_TRACE_UPROBE_MULTI);
	default:
		return true; /* perf-event uprobes: every kernel stray runs on */
	}
}

int attach_mode__choose(enum attach_mode *mode)
{
	const char *forced = getenv("STRAY_ATTACH");

	if (forced && *forced) {
		for (int m = 0; m < ATTACH_MODE_NR; m++) {
			if (strcmp(forced, mode_names[m]))
				continue;
			*mode = m;
			return kernel_has(m) ? 0 : -EOPNOTSUPP;
		}
		return -EINVAL;
	}
	for (int m = 0; m < ATTACH_MODE_NR; m++) {
		if (kernel_has(m)) {
			*mode = m;
			return 0;
		}
	}
	*mode = ATTACH_CLASSIC;
	return 0;
}
