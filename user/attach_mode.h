/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How the allocator probes are attached, best first: uprobe sessions
 * (kernel 6.13+: one link per process and object, entry and return in one
 * program, the return probe only when the entry asks for it), uprobe_multi
 * links (6.6+: one entry and one return link per process and object), and
 * classic perf-event uprobes (one link per function and direction). The
 * kernel's support is probed at start-up, never read from its version;
 * STRAY_ATTACH=session|multi|classic in the environment forces a mode (for
 * tests and benchmarks).
 */
#ifndef STRAY_ATTACH_MODE_H
#define STRAY_ATTACH_MODE_H

#include <stddef.h>
#include <linux/types.h>

enum attach_mode {
	ATTACH_SESSION,
	ATTACH_MULTI,
	ATTACH_CLASSIC,
	ATTACH_MODE_NR,
};

/* bpf_attach_type of uprobe sessions (uapi, kernel 6.13): newer than the
 * linux/bpf.h stray builds against. */
#define STRAY_BPF_TRACE_UPROBE_SESSION 57

const char *attach_mode__name(enum attach_mode mode);

/*
 * The mode to use: the one STRAY_ATTACH names, or else the best the kernel
 * supports. Returns 0, -EINVAL when STRAY_ATTACH names no mode, or
 * -EOPNOTSUPP when it names one the kernel lacks.
 */
int attach_mode__choose(enum attach_mode *mode);

/*
 * Attach session program prog_fd to the n offsets of path in process pid,
 * with cookies, as one uprobe session link (libbpf 1.4 cannot create
 * those). Returns the link's fd or -errno.
 */
int attach_mode__session_link(int prog_fd, int pid, const char *path, const unsigned long *offsets,
			      const __u64 *cookies, size_t n);

#endif /* STRAY_ATTACH_MODE_H */
