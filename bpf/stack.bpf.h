/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* BPF-only helpers shared by stray's programs: stack hashing for site keys. */
#ifndef STRAY_STACK_BPF_H
#define STRAY_STACK_BPF_H

#include "stray.h"

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

/* Site keys hash the process and its return addresses: stack addresses are
 * per process (ASLR), so one stack in two processes is two sites. */
static __always_inline __u64 hash_stack(__u32 tgid, const __u64 *ips, __u32 depth)
{
	__u64 h = mix(0xcbf29ce484222325ULL, tgid);

	for (__u32 i = 0; i < STRAY_MAX_STACK_DEPTH; i++) {
		if (i >= depth)
			break;
		h = mix(h, ips[i]);
	}
	return h;
}

#endif /* STRAY_STACK_BPF_H */
