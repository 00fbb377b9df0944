// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach_mode.h"
#include "elfsym.h"
#include "loader.h"
#include "placement.h"
#include "procfs.h"
#include "retsites.h"
#include "scope.h"
#include "sampling.h"
#include "split_load.h"
#include "stray.skel.h"

_Static_assert(sizeof(struct stray_alloc_key) == 16, "ABI: stray_alloc_key");
_Static_assert(sizeof(struct stray_site_key) == 16, "ABI: stray_site_key");
_Static_assert(sizeof(struct stray_alloc) == 32, "ABI: stray_alloc");
_Static_assert(sizeof(struct stray_site) == 48 + 8 * STRAY_MAX_STACK_DEPTH, "ABI: stray_site");
_Static_assert(sizeof(struct stray_block_slot) == 48, "ABI: stray_block_slot");
_Static_assert(sizeof(struct stray_site_slot) == 48, "ABI: stray_site_slot");
_Static_assert(sizeof(struct stray_inflight) == 72 + sizeof(struct stray_alloc), "ABI: stray_inflight");
_Static_assert(sizeof(struct stray_counters) == 8 * STRAY_CNT_NR, "ABI: stray_counters");

const char *const stray_fn_names[STRAY_FN_COUNT] = {
	[STRAY_FN_MALLOC] = "malloc",
	[STRAY_FN_CALLOC] = "calloc",
	[STRAY_FN_REALLOC] = "realloc",
	[STRAY_FN_REALLOCARRAY] = "reallocarray",
	[STRAY_FN_FREE] = "free",
	[STRAY_FN_POSIX_MEMALIGN] = "posix_memalign",
	[STRAY_FN_ALIGNED_ALLOC] = "aligned_alloc",
	[STRAY_FN_MEMALIGN] = "memalign",
	[STRAY_FN_VALLOC] = "valloc",
	[STRAY_FN_PVALLOC] = "pvalloc",
	/* Itanium C++ ABI names, size_t = unsigned long (m). */
	[STRAY_FN_NEW] = "_Znwm",
	[STRAY_FN_NEW_ARRAY] = "_Znam",
	[STRAY_FN_NEW_NOTHROW] = "_ZnwmRKSt9nothrow_t",
	[STRAY_FN_NEW_ARRAY_NOTHROW] = "_ZnamRKSt9nothrow_t",
	[STRAY_FN_NEW_ALIGNED] = "_ZnwmSt11align_val_t",
	[STRAY_FN_NEW_ARRAY_ALIGNED] = "_ZnamSt11align_val_t",
	[STRAY_FN_NEW_ALIGNED_NOTHROW] = "_ZnwmSt11align_val_tRKSt9nothrow_t",
	[STRAY_FN_NEW_ARRAY_ALIGNED_NOTHROW] = "_ZnamSt11align_val_tRKSt9nothrow_t",
	[STRAY_FN_DELETE] = "_ZdlPv",
	[STRAY_FN_DELETE_ARRAY] = "_ZdaPv",
	[STRAY_FN_DELETE_SIZED] = "_ZdlPvm",
	[STRAY_FN_DELETE_ARRAY_SIZED] = "_ZdaPvm",
	[STRAY_FN_DELETE_NOTHROW] = "_ZdlPvRKSt9nothrow_t",
	[STRAY_FN_DELETE_ARRAY_NOTHROW] = "_ZdaPvRKSt9nothrow_t",
	[STRAY_FN_DELETE_ALIGNED] = "_ZdlPvSt11align_val_t",
	[STRAY_FN_DELETE_ARRAY_ALIGNED] = "_ZdaPvSt11align_val_t",
	[STRAY_FN_DELETE_SIZED_ALIGNED] = "_ZdlPvmSt11align_val_t",
	[STRAY_FN_DELETE_ARRAY_SIZED_ALIGNED] = "_ZdaPvmSt11align_val_t",
	[STRAY_FN_DELETE_ALIGNED_NOTHROW] = "_ZdlPvSt11align_val_tRKSt9nothrow_t",
	[STRAY_FN_DELETE_ARRAY_ALIGNED_NOTHROW] = "_ZdaPvSt11align_val_tRKSt9nothrow_t",
	[STRAY_FN_MMAP] = "mmap",
	[STRAY_FN_MUNMAP] = "munmap",
	[STRAY_FN_MREMAP] = "mremap",
	[STRAY_FN_MALLOCX] = "mallocx",
	[STRAY_FN_RALLOCX] = "rallocx",
	[STRAY_FN_XALLOCX] = "xallocx",
	[STRAY_FN_SDALLOCX] = "sdallocx",
	[STRAY_FN_DALLOCX] = "dallocx",
	[STRAY_FN_MI_ZALLOC] = "mi_zalloc",
	[STRAY_FN_MI_MALLOCN] = "mi_mallocn",
	[STRAY_FN_MI_MALLOC_ALIGNED] = "mi_malloc_aligned",
	[STRAY_FN_MI_ZALLOC_ALIGNED] = "mi_zalloc_aligned",
	[STRAY_FN_MI_CALLOC_ALIGNED] = "mi_calloc_aligned",
	[STRAY_FN_MI_REALLOCN] = "mi_reallocn",
	[STRAY_FN_MI_REALLOC_ALIGNED] = "mi_realloc_aligned",
	[STRAY_FN_MI_RECALLOC] = "mi_recalloc",
	[STRAY_FN_MI_REALLOCARRAY] = "mi_reallocarray",
	[STRAY_FN_MI_POSIX_MEMALIGN] = "mi_posix_memalign",
	[STRAY_FN_MI_ALIGNED_ALLOC] = "mi_aligned_alloc",
	[STRAY_FN_MI_FREE_ALIGNED] = "mi_free_aligned",
};

/* How many System V argument registers alloc_entry (bpf/stray.bpf.c) reads
 * for each function: they must still hold the arguments where the probe
 * goes (user/placement.h). */
static const uint8_t stray_fn_nargs[STRAY_FN_COUNT] = {
	[STRAY_FN_MALLOC] = 1, [STRAY_FN_CALLOC] = 2, [STRAY_FN_REALLOC] = 2,
	[STRAY_FN_REALLOCARRAY] = 3, [STRAY_FN_FREE] = 1, [STRAY_FN_POSIX_MEMALIGN] = 3,
	[STRAY_FN_ALIGNED_ALLOC] = 2, [STRAY_FN_MEMALIGN] = 2, [STRAY_FN_VALLOC] = 1,
	[STRAY_FN_PVALLOC] = 1,
	[STRAY_FN_NEW ... STRAY_FN_NEW_ARRAY_ALIGNED_NOTHROW] = 1,
	[STRAY_FN_DELETE ... STRAY_FN_DELETE_ARRAY_ALIGNED_NOTHROW] = 1,
	[STRAY_FN_MMAP] = 4, [STRAY_FN_MUNMAP] = 2, [STRAY_FN_MREMAP] = 4,
	/* alloc_ext.bpf.h reads at most three (xallocx) */
	[STRAY_FN_MALLOCX ... STRAY_FN_MI_FREE_ALIGNED] = 3,
};

/* An object already probed in a target, identified by inode so that two
 * paths to one file (/proc/PID/root/..., a symlink) attach once. */
struct attached_object {
	dev_t dev;
	ino_t ino;
};

struct target {
	int pid; /* 0: free slot */
	size_t nlinks;
	/* entry + return per object, or per function in classic mode */
	struct bpf_link *links[2 * 2 * STRAY_FN_COUNT];
	size_t nsessions;
	int sessions[2 * STRAY_FN_COUNT]; /* session link fds, one per object */
	size_t nobjects;
	struct attached_object objects[2 * STRAY_FN_COUNT];
};

/* The probe programs of every mode (select_programs). */
#define NPROBE_PROGRAMS 5

struct loader {
	struct stray_bpf *skel;
	/* copies of skel, each loading one probe program (load_programs) */
	struct stray_bpf *copies[NPROBE_PROGRAMS];
	size_t ncopies;
	/* the probe programs, from whichever object loaded them */
	struct {
		struct bpf_program *entry, *ret, *entry_classic, *ret_classic, *session;
	} progs;
	enum attach_mode mode;
	uint32_t max_targets;
	struct target *targets;
	/* the block table, mapped (NULL when there is none) */
	struct stray_block_slot *block_slots;
	size_t nblock_slots;
	struct stray_site_slot *site_slots; /* (NULL when there are none) */
};

/* The stack walker's caches: a share per possible CPU (bpf/stray.h). */
static int size_walker_caches(struct stray_bpf *skel)
{
	int cpus = libbpf_num_possible_cpus();

	if (cpus < 0)
		return cpus;
	return bpf_map__set_max_entries(skel->maps.unwind_rule_cache, cpus * STRAY_UNWIND_RULE_SLOTS) ?:
	       bpf_map__set_max_entries(skel->maps.unwind_memos, cpus * STRAY_UNWIND_MEMO_SLOTS) ?:
	       bpf_map__set_max_entries(skel->maps.unwind_memo_words,
					cpus * STRAY_UNWIND_MEMO_SLOTS * STRAY_UNWIND_MEMO_WORDS);
}

/* The count in environment variable name (a test knob), else dflt. */
static uint64_t forced_count(const char *name, uint64_t dflt)
{
	const char *forced = getenv(name);

	return forced && *forced ? strtoull(forced, NULL, 0) : dflt;
}

/* log2 of the largest power of two <= n (n >= 1), at most 24. */
static uint32_t log2_floor(uint64_t n)
{
	uint32_t log2 = 0;

	while (log2 < 24 && (2ull << log2) <= n)
		log2++;
	return log2;
}

/* Sets of the block table (bpf/blocks.bpf.h): a power of two, with a
 * quarter as many slots as the allocs map has entries. STRAY_BLOCK_SETS
 * (a power of two, 0 for none) forces another size: tests use it to make
 * sets overflow into the map. */
static uint32_t block_sets_log2(uint32_t max_allocs)
{
	uint64_t sets = forced_count("STRAY_BLOCK_SETS", max_allocs / 4 / STRAY_BLOCK_WAYS);

	return sets < 2 ? 0 : log2_floor(sets);
}

static int size_block_table(struct stray_bpf *skel, uint32_t max_allocs)
{
	uint32_t log2 = block_sets_log2(max_allocs);

	skel->rodata->block_set_bits = log2;
	if (!log2)
		return 0;
	return bpf_map__set_max_entries(skel->maps.block_slots, (1u << log2) * STRAY_BLOCK_WAYS);
}

static size_t mapped_bytes(const struct bpf_map *map)
{
	size_t page = sysconf(_SC_PAGESIZE);
	size_t bytes = (size_t)bpf_map__max_entries(map) * bpf_map__value_size(map);

	return (bytes + page - 1) / page * page;
}

/* Map array map into user space (it is BPF_F_MMAPABLE): user space reads
 * and frees its slots without a system call per slot. */
static int map_array(const struct bpf_map *map, void **out)
{
	void *m = mmap(NULL, mapped_bytes(map), PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);

	if (m == MAP_FAILED)
		return -errno;
	*out = m;
	return 0;
}

static int map_tables(struct loader *l)
{
	void *m;
	int err;

	if (l->skel->rodata->block_set_bits) {
		err = map_array(l->skel->maps.block_slots, &m);
		if (err)
			return err;
		l->block_slots = m;
		l->nblock_slots = bpf_map__max_entries(l->skel->maps.block_slots);
	}
	if (l->skel->rodata->site_slot_bits) {
		err = map_array(l->skel->maps.site_slots, &m);
		if (err)
			return err;
		l->site_slots = m;
	}
	return 0;
}

/* Site counter slots (stray.h): twice as many as sites, a power of two.
 * STRAY_SITE_SLOTS (a power of two, 0 for none) forces another number:
 * tests use it to make sites share slots. */
static int size_site_slots(struct stray_bpf *skel, uint32_t max_sites)
{
	uint64_t slots = forced_count("STRAY_SITE_SLOTS", 2ull * max_sites);
	uint32_t log2 = slots < 2 ? 0 : log2_floor(slots);

	skel->rodata->site_slot_bits = log2;
	if (!log2)
		return 0;
	return bpf_map__set_max_entries(skel->maps.site_slots, 1u << log2);
}

/* STRAY_INFLIGHT_SLOTS (a power of two, at most the array's 8192) makes
 * threads share in-flight slots (bpf/inflight.bpf.h): tests use it to run
 * most threads on task storage. */
static void size_inflight_slots(struct stray_bpf *skel)
{
	uint64_t slots = forced_count("STRAY_INFLIGHT_SLOTS", 0);

	if (slots && !(slots & (slots - 1)) && slots - 1 < skel->rodata->inflight_slot_mask)
		skel->rodata->inflight_slot_mask = slots - 1;
}

static int size_maps(struct stray_bpf *skel, const struct loader_opts *opts)
{
	int err = 0;

	if (opts->max_allocs)
		err = err ?: bpf_map__set_max_entries(skel->maps.allocs, opts->max_allocs);
	err = err ?: size_block_table(skel, bpf_map__max_entries(skel->maps.allocs));
	if (opts->max_sites)
		err = err ?: bpf_map__set_max_entries(skel->maps.sites, opts->max_sites);
	err = err ?: size_site_slots(skel, bpf_map__max_entries(skel->maps.sites));
	size_inflight_slots(skel);
	if (opts->max_targets)
		err = err ?: bpf_map__set_max_entries(skel->maps.targets, opts->max_targets);
	if (opts->max_unwind_rows)
		err = err ?: bpf_map__set_max_entries(skel->maps.unwind_rows, opts->max_unwind_rows);
	return err ?: size_walker_caches(skel);
}

/* Load only the programs of mode: each costs verification time, and the
 * session program would not even load with another expected attach type.
 * None is attached by the skeleton: they go per target and object. */
static void select_programs(struct stray_bpf *skel, enum attach_mode mode)
{
	struct {
		struct bpf_program *prog;
		enum attach_mode mode;
	} progs[NPROBE_PROGRAMS] = {
		{ skel->progs.alloc_entry, ATTACH_MULTI },
		{ skel->progs.alloc_return, ATTACH_MULTI },
		{ skel->progs.alloc_entry_classic, ATTACH_CLASSIC },
		{ skel->progs.alloc_return_classic, ATTACH_CLASSIC },
		{ skel->progs.alloc_session, ATTACH_SESSION },
	};

	for (size_t i = 0; i < NPROBE_PROGRAMS; i++) {
		bpf_program__set_autoload(progs[i].prog, progs[i].mode == mode);
		bpf_program__set_autoattach(progs[i].prog, false);
	}
	if (mode == ATTACH_SESSION) {
		bpf_program__set_expected_attach_type(skel->progs.alloc_session,
						      (enum bpf_attach_type)STRAY_BPF_TRACE_UPROBE_SESSION);
		/* for the functions without a return probe (attach_object) */
		bpf_program__set_autoload(skel->progs.alloc_entry, true);
	}
}

/* Whether prog is one of the probe programs (each carries the stack
 * walker: the costly ones to verify). */
static bool is_probe_program(const struct stray_bpf *skel, const struct bpf_program *prog)
{
	return prog == skel->progs.alloc_entry || prog == skel->progs.alloc_return ||
	       prog == skel->progs.alloc_entry_classic || prog == skel->progs.alloc_return_classic ||
	       prog == skel->progs.alloc_session;
}

/* In copy, autoload only the program named like prog, loaded as prog is. */
static void load_only(struct stray_bpf *copy, const struct bpf_program *prog)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, copy->obj) {
		bool it = !strcmp(bpf_program__name(p), bpf_program__name(prog));

		bpf_program__set_autoload(p, it);
		bpf_program__set_autoattach(p, false);
		if (it)
			bpf_program__set_expected_attach_type(p, bpf_program__expected_attach_type(prog));
	}
}

/* The loaded program named name, in skel or a copy. */
static struct bpf_program *loaded_program(const struct loader *l, const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(l->skel->obj, name);

	for (size_t i = 0; i < l->ncopies && (!p || bpf_program__fd(p) < 0); i++)
		p = bpf_object__find_program_by_name(l->copies[i]->obj, name);
	return p && bpf_program__fd(p) >= 0 ? p : NULL;
}

struct maps_ready_call {
	const struct loader_opts *opts;
	struct loader *l;
};

static void call_maps_ready(void *ctx)
{
	struct maps_ready_call *c = ctx;

	c->opts->maps_ready(c->opts->maps_ready_ctx, c->l);
}

/*
 * Load skel, its probe programs in parallel: each in a copy of the object
 * of its own, on a thread (user/split_load.h). Verifying them is most of
 * stray's start-up (issue 7), and the other programs and the maps are
 * quick, so skel loads those first.
 */
static int load_programs(struct loader *l, const struct loader_opts *opts)
{
	struct maps_ready_call call = { opts, l };
	struct bpf_object *objs[NPROBE_PROGRAMS];
	struct bpf_program *prog;
	int err;

	bpf_object__for_each_program(prog, l->skel->obj) {
		if (!bpf_program__autoload(prog) || !is_probe_program(l->skel, prog))
			continue;
		l->copies[l->ncopies] = stray_bpf__open();
		if (!l->copies[l->ncopies])
			return -errno;
		load_only(l->copies[l->ncopies], prog);
		objs[l->ncopies] = l->copies[l->ncopies]->obj;
		l->ncopies++;
		bpf_program__set_autoload(prog, false);
	}
	err = split_load(l->skel->obj, objs, l->ncopies, opts->maps_ready ? call_maps_ready : NULL, &call);
	if (err)
		return err;
	l->progs.entry = loaded_program(l, "alloc_entry");
	l->progs.ret = loaded_program(l, "alloc_return");
	l->progs.entry_classic = loaded_program(l, "alloc_entry_classic");
	l->progs.ret_classic = loaded_program(l, "alloc_return_classic");
	l->progs.session = loaded_program(l, "alloc_session");
	return 0;
}

struct loader *loader__new(const struct loader_opts *opts, const char **errmsg)
{
	struct loader *l = calloc(1, sizeof(*l));
	int err;

	*errmsg = "out of memory";
	if (!l)
		return NULL;
	l->max_targets = opts->max_targets ? opts->max_targets : 1024;
	l->targets = calloc(l->max_targets, sizeof(*l->targets));
	if (!l->targets) {
		err = -ENOMEM;
		goto fail;
	}
	l->skel = stray_bpf__open();
	if (!l->skel) {
		err = -errno;
		*errmsg = "cannot open BPF object";
		goto fail;
	}
	l->skel->rodata->page_size = sysconf(_SC_PAGESIZE);
	/* --follow's sched programs run on every fork, exec and exit of the
	 * machine: only when asked. */
	bpf_program__set_autoload(l->skel->progs.follow_fork, opts->follow);
	bpf_program__set_autoload(l->skel->progs.follow_exec, opts->follow);
	bpf_program__set_autoload(l->skel->progs.follow_exit, opts->follow);
	l->skel->rodata->sample_bytes = opts->sample_bytes;
	if (opts->sample_bytes)
		sampling__fill_draws(opts->sample_bytes, (uint64_t *)l->skel->rodata->sample_draws,
				     STRAY_SAMPLE_DRAWS);
	err = attach_mode__choose(&l->mode);
	if (err) {
		*errmsg = err == -EINVAL ? "STRAY_ATTACH is none of session, multi, classic"
					 : "the attach mode forced by STRAY_ATTACH";
		goto fail;
	}
	select_programs(l->skel, l->mode);
	l->skel->rodata->unwind_page_shift = __builtin_ctzl(sysconf(_SC_PAGESIZE));
	l->skel->rodata->unwind_mode = opts->unwind_mode;
	if (opts->max_depth)
		l->skel->rodata->max_depth = opts->max_depth;
	err = size_maps(l->skel, opts);
	if (err) {
		*errmsg = "cannot size BPF maps";
		goto fail;
	}
	err = load_programs(l, opts);
	if (err) {
		*errmsg = "cannot load BPF programs (is this kernel built with BPF, BTF and uprobes?)";
		goto fail;
	}
	err = map_tables(l);
	if (err) {
		*errmsg = "cannot map the block table and site slots";
		goto fail;
	}
	/* The thread-exit tracepoint is the only link not tied to a target. */
	err = stray_bpf__attach(l->skel);
	if (err) {
		*errmsg = "cannot attach the sched_process_exit tracepoint";
		goto fail;
	}
	return l;
fail:
	loader__free(l);
	errno = -err;
	return NULL;
}

static void target_release(struct target *t)
{
	/* Reverse order: entry probes go before their return probes, so no
	 * call is left with an in-flight record and no return. */
	for (size_t i = t->nlinks; i-- > 0;)
		bpf_link__destroy(t->links[i]);
	for (size_t i = 0; i < t->nsessions; i++)
		close(t->sessions[i]);
	memset(t, 0, sizeof(*t));
}

void loader__free(struct loader *l)
{
	if (!l)
		return;
	for (uint32_t i = 0; l->targets && i < l->max_targets; i++)
		target_release(&l->targets[i]);
	free(l->targets);
	if (l->block_slots)
		munmap(l->block_slots, mapped_bytes(l->skel->maps.block_slots));
	if (l->site_slots)
		munmap(l->site_slots, mapped_bytes(l->skel->maps.site_slots));
	for (size_t i = 0; i < l->ncopies; i++)
		stray_bpf__destroy(l->copies[i]);
	stray_bpf__destroy(l->skel);
	free(l);
}

static struct target *target_slot(struct loader *l, int pid, bool create)
{
	struct target *free_slot = NULL;

	for (uint32_t i = 0; i < l->max_targets; i++) {
		if (l->targets[i].pid == pid)
			return &l->targets[i];
		if (!l->targets[i].pid && !free_slot)
			free_slot = &l->targets[i];
	}
	if (create && free_slot)
		free_slot->pid = pid;
	return create ? free_slot : NULL;
}

static int attach_multi(struct target *t, struct bpf_program *prog, const char *path,
			const unsigned long *offsets, const __u64 *cookies, size_t n, bool retprobe)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .offsets = offsets, .cookies = cookies, .cnt = n,
		    .retprobe = retprobe);
	struct bpf_link *link;

	if (!n)
		return 0;
	if (t->nlinks >= sizeof(t->links) / sizeof(t->links[0]))
		return -E2BIG;
	link = bpf_program__attach_uprobe_multi(prog, t->pid, path, NULL, &opts);
	if (!link)
		return -errno;
	t->links[t->nlinks++] = link;
	return 0;
}

/* Classic mode: one perf-event uprobe per function and direction. */
static int attach_classic(struct target *t, struct bpf_program *prog, const char *path,
			  const unsigned long *offsets, const __u64 *cookies, size_t n, bool retprobe)
{
	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookies[i], .retprobe = retprobe);
		struct bpf_link *link;

		if (t->nlinks >= sizeof(t->links) / sizeof(t->links[0]))
			return -E2BIG;
		link = bpf_program__attach_uprobe_opts(prog, t->pid, path, offsets[i], &opts);
		if (!link)
			return -errno;
		t->links[t->nlinks++] = link;
	}
	return 0;
}

static int attach_session_link(struct target *t, struct bpf_program *prog, const char *path,
			       const unsigned long *offsets, const __u64 *cookies, size_t n)
{
	int fd;

	if (!n)
		return 0;
	if (t->nsessions >= sizeof(t->sessions) / sizeof(t->sessions[0]))
		return -E2BIG;
	fd = attach_mode__session_link(bpf_program__fd(prog), t->pid, path, offsets, cookies, n);
	if (fd < 0)
		return fd;
	t->sessions[t->nsessions++] = fd;
	return 0;
}

/* free returns nothing that matters; operator new must not have a return
 * probe (bpf/stray.h, struct stray_inflight): the C++ unwinder cannot
 * unwind through the uretprobe trampoline, so a std::bad_alloc thrown out
 * of a probed new would terminate the program. */
static bool has_return_probe(__u64 fn)
{
	/* (operator new's ret sites, STRAY_COOKIE_NEW_RETURN, are entries) */
	return fn < STRAY_FN_COUNT && fn != STRAY_FN_FREE && fn != STRAY_FN_MUNMAP && (fn < STRAY_FN_NEW || fn > STRAY_FN_NEW_ARRAY_ALIGNED_NOTHROW);
}

size_t alloc_object__sites(const struct alloc_object *o, bool entries,
			   unsigned long *offsets, __u64 *fns)
{
	size_t n = 0;

	for (int fn = 0; fn < STRAY_FN_COUNT; fn++) {
		bool alias = false;

		for (int i = 0; i < fn; i++)
			alias |= o->found[i] && o->offsets[i] == o->offsets[fn];
		if (!o->found[fn] || alias || (!entries && !has_return_probe(fn)))
			continue;
		offsets[n] = o->probe_offsets[fn];
		fns[n++] = fn;
	}
	return n;
}

/* Append o's operator new ret sites to the n entry offsets (none that is
 * already there); returns how many. */
static size_t new_return_sites(const struct alloc_object *o, unsigned long *offsets, size_t n)
{
	size_t added = 0;

	for (size_t i = 0; i < o->nnew_returns; i++) {
		bool dup = false;

		for (size_t j = 0; j < n; j++)
			dup |= offsets[j] == o->new_returns[i];
		if (!dup)
			offsets[n + added++] = o->new_returns[i];
	}
	return added;
}

/*
 * Session mode: the functions with a return probe in one session link, whose
 * entry decides whether the return runs (enter_aux in bpf/stray.bpf.c); the
 * others (free, munmap, operator new) in an entry-only uprobe_multi link.
 * Not in the session: the kernel runs a session's return unless the entry
 * program of EVERY session consumer of that instruction declines it, and
 * the consumer of another traced process (a forked child, another stray)
 * runs no program for this one's calls, which counts as not declining. A
 * return probe on operator new would stop a std::bad_alloc (the unwinder
 * cannot pass the uretprobe trampoline): an entry-only link has none.
 */
static int attach_session(struct loader *l, struct target *t, const char *path, const unsigned long *entry_offs,
			  const __u64 *entry_fns, size_t nentry, const unsigned long *ret_offs,
			  const __u64 *ret_fns, size_t nret)
{
	unsigned long only_offs[STRAY_FN_COUNT + STRAY_MAX_NEW_RETURNS];
	__u64 only_fns[STRAY_FN_COUNT + STRAY_MAX_NEW_RETURNS];
	size_t nonly = 0;

	for (size_t i = 0; i < nentry; i++) {
		if (has_return_probe(entry_fns[i]))
			continue;
		only_offs[nonly] = entry_offs[i];
		only_fns[nonly++] = entry_fns[i];
	}
	return attach_session_link(t, l->progs.session, path, ret_offs, ret_fns, nret) ?:
	       attach_multi(t, l->progs.entry, path, only_offs, only_fns, nonly, false);
}

/* Probe every allocator function of one object in one process, as the
 * attach mode says (user/attach_mode.h): with uprobe_multi, a single link
 * for the entries and one for the returns, with the function (enum
 * stray_fn) as each offset's cookie. free and operator new have no return
 * probe (has_return_probe). */
static int attach_object(struct loader *l, struct target *t, const struct alloc_object *o)
{
	unsigned long entry_offs[STRAY_FN_COUNT + STRAY_MAX_NEW_RETURNS], ret_offs[STRAY_FN_COUNT];
	__u64 entry_fns[STRAY_FN_COUNT + STRAY_MAX_NEW_RETURNS], ret_fns[STRAY_FN_COUNT];
	size_t nfns, nentry, nret;
	struct stat st;
	int err;

	if (stat(o->path, &st))
		return -errno;
	for (size_t i = 0; i < t->nobjects; i++)
		if (t->objects[i].dev == st.st_dev && t->objects[i].ino == st.st_ino)
			return 0;
	if (t->nobjects >= sizeof(t->objects) / sizeof(t->objects[0]))
		return -E2BIG;
	nfns = alloc_object__sites(o, true, entry_offs, entry_fns);
	nentry = nfns + new_return_sites(o, entry_offs, nfns);
	for (size_t i = nfns; i < nentry; i++)
		entry_fns[i] = STRAY_COOKIE_NEW_RETURN;
	nret = alloc_object__sites(o, false, ret_offs, ret_fns);
	if (l->mode == ATTACH_SESSION)
		err = attach_session(l, t, o->path, entry_offs, entry_fns, nentry, ret_offs, ret_fns, nret);
	else if (l->mode == ATTACH_CLASSIC)
		err = attach_classic(t, l->progs.ret_classic, o->path, ret_offs, ret_fns, nret, true) ?:
		      attach_classic(t, l->progs.entry_classic, o->path, entry_offs, entry_fns, nentry,
				     false);
	else /* Returns first, here and in classic mode: a call entered between
	      * the two attachments must not leave an in-flight record whose
	      * return is never seen (the thread's later calls would look
	      * nested and go unrecorded). A return without its entry is only
	      * counted. */
		err = attach_multi(t, l->progs.ret, o->path, ret_offs, ret_fns, nret, true) ?:
		      attach_multi(t, l->progs.entry, o->path, entry_offs, entry_fns, nentry, false);
	if (err)
		return err;
	t->objects[t->nobjects++] = (struct attached_object){ st.st_dev, st.st_ino };
	return 0;
}

/* The target_slots entry of pid (bpf/stray.bpf.c: is_target). The first
 * target to find it empty owns it; the BPF side claims it the same way for
 * forked children (with a compare-and-swap: only 0 is replaced). */
static void claim_target_slot(struct loader *l, uint32_t pid)
{
	uint32_t i = pid % STRAY_TARGET_SLOTS;
	uint64_t owner = 0, me = pid;
	int fd = bpf_map__fd(l->skel->maps.target_slots);

	if (!bpf_map_lookup_elem(fd, &i, &owner) && !owner)
		bpf_map_update_elem(fd, &i, &me, BPF_ANY);
}

static void release_target_slot(struct loader *l, uint32_t pid)
{
	uint32_t i = pid % STRAY_TARGET_SLOTS;
	uint64_t owner = 0, none = 0;
	int fd = bpf_map__fd(l->skel->maps.target_slots);

	if (!bpf_map_lookup_elem(fd, &i, &owner) && owner == pid)
		bpf_map_update_elem(fd, &i, &none, BPF_ANY);
}

int loader__attach(struct loader *l, int pid, const struct allocator *alloc)
{
	struct target *t = target_slot(l, pid, true);
	__u32 key = pid, one = 1;
	int err;

	if (!t)
		return -ENOSPC;
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.targets), &key, &one, BPF_ANY))
		return -errno;
	claim_target_slot(l, pid);
	for (size_t i = 0; i < alloc->nobjects; i++) {
		err = attach_object(l, t, &alloc->objects[i]);
		if (err)
			return err;
	}
	return 0;
}

void loader__detach(struct loader *l, int pid)
{
	struct target *t = target_slot(l, pid, false);
	__u32 key = pid;

	bpf_map_delete_elem(bpf_map__fd(l->skel->maps.targets), &key);
	release_target_slot(l, pid);
	if (t)
		target_release(t);
}

const char *loader__attach_mode(const struct loader *l)
{
	return attach_mode__name(l->mode);
}

int loader__allocs_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.allocs);
}

struct stray_block_slot *loader__block_slots(const struct loader *l, size_t *n)
{
	*n = l->nblock_slots;
	return l->block_slots;
}

struct stray_site_slot *loader__site_slots(const struct loader *l, uint32_t *slot_bits)
{
	*slot_bits = l->skel->rodata->site_slot_bits;
	return l->site_slots;
}

__u64 *loader__heap_in_allocs(const struct loader *l)
{
	return &l->skel->bss->heap_in_allocs;
}

int loader__sites_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.sites);
}

int loader__counters_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.counters);
}

uint32_t loader__max_sites(const struct loader *l)
{
	return bpf_map__max_entries(l->skel->maps.sites);
}

uint32_t loader__max_allocs(const struct loader *l)
{
	return bpf_map__max_entries(l->skel->maps.allocs);
}

int loader__follow_events_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.follow_events);
}

uint64_t loader__sample_bytes(const struct loader *l)
{
	return l->skel->rodata->sample_bytes;
}

int loader__unwind_rows_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.unwind_rows);
}

int loader__unwind_modules_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.unwind_modules);
}

int loader__unwind_vma_cache_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.unwind_vma_cache);
}

uint32_t loader__max_unwind_rows(const struct loader *l)
{
	return bpf_map__max_entries(l->skel->maps.unwind_rows);
}

uint32_t loader__max_unwind_modules(const struct loader *l)
{
	return bpf_map__max_entries(l->skel->maps.unwind_modules);
}

int allocator__lookup_scope(int pid, bool at_exec, char ***paths, size_t *n)
{
	return scope__lookup(pid, at_exec, paths, n);
}

/* Where fn's probes go in o. The entry and return probes of a function
 * share the offset (one trap for both); placement keeps [rsp] the return
 * address there. Any failure leaves the probe at the entry. */
static void place_probe(struct alloc_object *o, int fn)
{
	struct placement p;

	if (placement__disabled()) {
		o->probe_offsets[fn] = o->offsets[fn];
		o->probe_skipped[fn] = 0;
		o->probe_why[fn] = "placement disabled (STRAY_PLACEMENT=entry)";
		return;
	}
	placement__in_file(o->path, o->offsets[fn], stray_fn_nargs[fn], &p);
	o->probe_offsets[fn] = p.offset;
	o->probe_skipped[fn] = p.skipped;
	o->probe_why[fn] = p.why;
}

/* Give fn to object path at offset, creating the object entry if needed. */
static int assign(struct allocator *a, const char *path, int fn, uint64_t offset)
{
	struct alloc_object *o = NULL;

	for (size_t i = 0; i < a->nobjects; i++)
		if (!strcmp(a->objects[i].path, path))
			o = &a->objects[i];
	if (!o) {
		o = &a->objects[a->nobjects];
		memset(o, 0, sizeof(*o));
		if (!(o->path = strdup(path)))
			return -ENOMEM;
		a->nobjects++;
	}
	o->offsets[fn] = offset;
	o->found[fn] = true;
	place_probe(o, fn);
	return 0;
}

int allocator__resolve(int pid, bool at_exec, struct allocator *out)
{
	bool assigned[STRAY_FN_COUNT] = { 0 };
	char **paths = NULL;
	size_t n = 0;
	int err;

	memset(out, 0, sizeof(*out));
	err = allocator__lookup_scope(pid, at_exec, &paths, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n && !err; i++) {
		uint64_t offsets[STRAY_FN_COUNT];
		bool found[STRAY_FN_COUNT];

		if (elfsym__find_functions(paths[i], stray_fn_names, STRAY_FN_COUNT, offsets, found) <= 0)
			continue;
		for (int fn = 0; fn < STRAY_FN_COUNT && !err; fn++) {
			if (!found[fn] || assigned[fn])
				continue;
			assigned[fn] = true;
			err = assign(out, paths[i], fn, offsets[fn]);
		}
	}
	elfsym__free_paths(paths, n);
	if (!err && !assigned[STRAY_FN_MALLOC])
		err = -ENOENT;
	if (!err)
		retsites__add_to(out);
	if (err)
		allocator__clear(out);
	return err;
}

void allocator__clear(struct allocator *a)
{
	for (size_t i = 0; i < a->nobjects; i++)
		free(a->objects[i].path);
	memset(a, 0, sizeof(*a));
}
