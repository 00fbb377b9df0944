// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * split_load (user/split_load.h): programs loaded by copies of the BPF
 * object, in parallel, must use the primary's maps (else what the probes
 * record would land in maps stray never reads). Needs root.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "split_load.h"
#include "stray.skel.h"

/* In skel, autoload only the program named name (or none for NULL). */
static void only(struct stray_bpf *skel, const char *name)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, name && !strcmp(bpf_program__name(p), name));
}

static uint32_t map_id(int fd)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);

	cr_assert_eq(bpf_map_get_info_by_fd(fd, &info, &len), 0, "%s", strerror(errno));
	return info.id;
}

/* Whether every map program prog_fd uses is one of primary's. */
static bool uses_only_maps_of(int prog_fd, struct bpf_object *primary, size_t *nused)
{
	uint32_t ids[64];
	struct bpf_prog_info info = { .nr_map_ids = 64, .map_ids = (uint64_t)(uintptr_t)ids };
	uint32_t len = sizeof(info);
	struct bpf_map *m;

	cr_assert_eq(bpf_prog_get_info_by_fd(prog_fd, &info, &len), 0, "%s", strerror(errno));
	*nused = info.nr_map_ids;
	for (uint32_t i = 0; i < info.nr_map_ids; i++) {
		bool found = false;

		bpf_object__for_each_map(m, primary)
			found |= map_id(bpf_map__fd(m)) == ids[i];
		if (!found)
			return false;
	}
	return true;
}

static int calls;
static int allocs_fd_seen = -1;

static void maps_ready(void *ctx)
{
	struct stray_bpf *primary = ctx;

	calls++;
	allocs_fd_seen = bpf_map__fd(primary->maps.allocs);
}

Test(bpf_split_load, copies_use_the_primary_maps)
{
	struct stray_bpf *primary = stray_bpf__open(), *copies[2] = { stray_bpf__open(), stray_bpf__open() };
	struct bpf_object *objs[2];
	size_t nused;

	cr_assert(primary && copies[0] && copies[1]);
	only(primary, "thread_exit");
	only(copies[0], "alloc_entry");
	only(copies[1], "alloc_return");
	objs[0] = copies[0]->obj;
	objs[1] = copies[1]->obj;
	cr_assert_eq(split_load(primary->obj, objs, 2, maps_ready, primary), 0);
	cr_assert_eq(calls, 1, "maps_ready ran %d times", calls);
	cr_assert_geq(allocs_fd_seen, 0, "maps_ready ran before the maps existed");
	cr_assert_geq(bpf_program__fd(copies[0]->progs.alloc_entry), 0);
	cr_assert_geq(bpf_program__fd(copies[1]->progs.alloc_return), 0);
	cr_assert(uses_only_maps_of(bpf_program__fd(copies[0]->progs.alloc_entry), primary->obj, &nused));
	cr_assert_gt(nused, 2, "alloc_entry uses %zu maps", nused);
	cr_assert(uses_only_maps_of(bpf_program__fd(copies[1]->progs.alloc_return), primary->obj, &nused));
	/* the primary's own map, as the copy sees it */
	cr_assert_eq(map_id(bpf_map__fd(copies[0]->maps.allocs)), map_id(bpf_map__fd(primary->maps.allocs)));
	stray_bpf__destroy(copies[0]);
	stray_bpf__destroy(copies[1]);
	stray_bpf__destroy(primary);
}

/* A copy that fails to load fails the whole load. */
Test(bpf_split_load, a_copy_failing_fails_the_load)
{
	struct stray_bpf *primary = stray_bpf__open(), *copy = stray_bpf__open();
	struct bpf_object *objs[1];

	cr_assert(primary && copy);
	libbpf_set_print(NULL); /* the verifier's refusal is expected */
	only(primary, "thread_exit");
	only(copy, "alloc_session");
	/* a session program loaded as a plain uprobe_multi one: refused */
	bpf_program__set_expected_attach_type(copy->progs.alloc_session, BPF_TRACE_UPROBE_MULTI);
	objs[0] = copy->obj;
	cr_assert_lt(split_load(primary->obj, objs, 1, NULL, NULL), 0);
	stray_bpf__destroy(copy);
	stray_bpf__destroy(primary);
}
