/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The memory cgroup of a process: its limit and usage (v2 or v1). */
#ifndef STRAY_CGROUP_H
#define STRAY_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

struct cgroup_memory {
	bool has_limit;      /* false when the limit is "max" or effectively unlimited */
	uint64_t limit_bytes;
	uint64_t usage_bytes;
	char path[512];      /* the cgroup directory read */
};

/*
 * Find pid's memory cgroup from /proc/PID/cgroup: the v1 "memory"
 * controller line (memory.limit_in_bytes, memory.usage_in_bytes under the
 * v1 memory mount) or else the v2 "0::" line (memory.max,
 * memory.current under the cgroup2 mount). Mount points are found in
 * /proc/self/mountinfo. sysfs_root overrides "/" for tests (NULL: "/"), for
 * /proc/PID/cgroup and /proc/self/mountinfo as well as the mounts.
 * v1 limits at or above 2^62 count as no limit.
 * Limits on ancestors bind too: every directory from pid's cgroup up to the
 * mount is read and the one with the least headroom (limit - usage) is
 * returned; with no limit anywhere, the nearest one with the controller.
 * A process in the v1 root cgroup gives 0 with has_limit false; in the v2
 * root (no memory.max/memory.current there) it gives -ENOENT.
 * Returns 0, -ENOENT when pid has no memory cgroup, or -errno.
 */
int cgroup__memory(int pid, const char *sysfs_root, struct cgroup_memory *out);

#endif /* STRAY_CGROUP_H */
