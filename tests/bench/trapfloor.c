// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * trapfloor PID: attach empty entry/return programs to PID's allocator at
 * the very sites stray probes (same resolution code, same uprobe_multi
 * links), and hold them until PID exits.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "floor.skel.h"
#include "loader.h"

static int attach_sites(struct floor_bpf *skel, int pid, const struct alloc_object *o)
{
	unsigned long offs[STRAY_FN_COUNT], roffs[STRAY_FN_COUNT];
	__u64 fns[STRAY_FN_COUNT];
	size_t n = alloc_object__sites(o, true, offs, fns);
	size_t nr = alloc_object__sites(o, false, roffs, fns);

	LIBBPF_OPTS(bpf_uprobe_multi_opts, e, .offsets = offs, .cnt = n);
	LIBBPF_OPTS(bpf_uprobe_multi_opts, r, .offsets = roffs, .cnt = nr, .retprobe = true);
	if (!bpf_program__attach_uprobe_multi(skel->progs.floor_entry, pid, o->path, NULL, &e) ||
	    !bpf_program__attach_uprobe_multi(skel->progs.floor_return, pid, o->path, NULL, &r))
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	struct allocator alloc;
	struct floor_bpf *skel;
	struct pollfd pfd;
	int pid, err;

	if (argc != 2 || (pid = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: trapfloor PID\n");
		return 1;
	}
	skel = floor_bpf__open_and_load();
	if (!skel || allocator__resolve(pid, false, &alloc)) {
		fprintf(stderr, "trapfloor: cannot load or resolve pid %d\n", pid);
		return 1;
	}
	for (size_t i = 0; i < alloc.nobjects; i++) {
		err = attach_sites(skel, pid, &alloc.objects[i]);
		if (err) {
			fprintf(stderr, "trapfloor: attach %s: %s\n", alloc.objects[i].path, strerror(-err));
			return 1;
		}
	}
	printf("attached\n");
	fflush(stdout);
	pfd.fd = syscall(SYS_pidfd_open, pid, 0);
	pfd.events = POLLIN;
	poll(&pfd, 1, -1);
	allocator__clear(&alloc);
	floor_bpf__destroy(skel);
	return 0;
}
