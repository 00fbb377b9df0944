// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * trapfloor PID: attach empty programs to PID's allocator at the very sites
 * stray probes (same resolution and placement code), with the link type
 * stray would use (user/attach_mode.h: session or uprobe_multi; STRAY_ATTACH
 * forces one), and hold them until PID exits.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "attach_mode.h"
#include "floor.skel.h"
#include "loader.h"

/* Session links: one per object, the return probe only for functions that
 * have one in stray. */
static int attach_session(struct floor_bpf *skel, int pid, const struct alloc_object *o)
{
	unsigned long offs[STRAY_FN_COUNT], roffs[STRAY_FN_COUNT];
	__u64 fns[STRAY_FN_COUNT], no_return[STRAY_FN_COUNT];
	size_t n = alloc_object__sites(o, true, offs, fns);
	size_t nr = alloc_object__sites(o, false, roffs, fns);
	int fd;

	for (size_t i = 0; i < n; i++) {
		no_return[i] = 1;
		for (size_t k = 0; k < nr; k++)
			if (roffs[k] == offs[i])
				no_return[i] = 0;
	}
	fd = attach_mode__session_link(bpf_program__fd(skel->progs.floor_session), pid, o->path, offs,
				       no_return, n);
	return fd < 0 ? fd : 0;
}

static int attach_multi(struct floor_bpf *skel, int pid, const struct alloc_object *o)
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
	enum attach_mode mode;
	struct allocator alloc;
	struct floor_bpf *skel;
	struct pollfd pfd;
	int pid, err;

	if (argc != 2 || (pid = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: trapfloor PID\n");
		return 1;
	}
	if (attach_mode__choose(&mode) || mode == ATTACH_CLASSIC) {
		fprintf(stderr, "trapfloor: needs session or uprobe_multi links\n");
		return 1;
	}
	skel = floor_bpf__open();
	if (skel) {
		bpf_program__set_autoload(skel->progs.floor_session, mode == ATTACH_SESSION);
		bpf_program__set_autoload(skel->progs.floor_entry, mode == ATTACH_MULTI);
		bpf_program__set_autoload(skel->progs.floor_return, mode == ATTACH_MULTI);
		bpf_program__set_expected_attach_type(skel->progs.floor_session,
						      (enum bpf_attach_type)STRAY_BPF_TRACE_UPROBE_SESSION);
	}
	if (!skel || floor_bpf__load(skel) || allocator__resolve(pid, false, &alloc)) {
		fprintf(stderr, "trapfloor: cannot load or resolve pid %d\n", pid);
		return 1;
	}
	for (size_t i = 0; i < alloc.nobjects; i++) {
		err = mode == ATTACH_SESSION ? attach_session(skel, pid, &alloc.objects[i]) :
					       attach_multi(skel, pid, &alloc.objects[i]);
		if (err) {
			fprintf(stderr, "trapfloor: attach %s: %s\n", alloc.objects[i].path, strerror(-err));
			return 1;
		}
	}
	printf("attached %s\n", attach_mode__name(mode));
	fflush(stdout);
	pfd.fd = syscall(SYS_pidfd_open, pid, 0);
	pfd.events = POLLIN;
	poll(&pfd, 1, -1);
	allocator__clear(&alloc);
	floor_bpf__destroy(skel);
	return 0;
}
