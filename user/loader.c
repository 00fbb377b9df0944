// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "elfsym.h"
#include "loader.h"
#include "procfs.h"
#include "stray.skel.h"

_Static_assert(sizeof(struct stray_alloc_key) == 16, "ABI: stray_alloc_key");
_Static_assert(sizeof(struct stray_site_key) == 16, "ABI: stray_site_key");
_Static_assert(sizeof(struct stray_alloc) == 32, "ABI: stray_alloc");
_Static_assert(sizeof(struct stray_site) == 56 + 8 * STRAY_MAX_STACK_DEPTH, "ABI: stray_site");
_Static_assert(sizeof(struct stray_inflight) == 64 + sizeof(struct stray_alloc), "ABI: stray_inflight");
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
	struct bpf_link *links[2 * 2 * STRAY_FN_COUNT]; /* entry + return per object */
	size_t nobjects;
	struct attached_object objects[2 * STRAY_FN_COUNT];
};

struct loader {
	struct stray_bpf *skel;
	uint32_t max_targets;
	struct target *targets;
};

static int size_maps(struct stray_bpf *skel, const struct loader_opts *opts)
{
	int err = 0;

	if (opts->max_allocs)
		err = err ?: bpf_map__set_max_entries(skel->maps.allocs, opts->max_allocs);
	if (opts->max_sites)
		err = err ?: bpf_map__set_max_entries(skel->maps.sites, opts->max_sites);
	if (opts->max_targets)
		err = err ?: bpf_map__set_max_entries(skel->maps.targets, opts->max_targets);
	if (opts->max_unwind_rows)
		err = err ?: bpf_map__set_max_entries(skel->maps.unwind_rows, opts->max_unwind_rows);
	return err;
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
	l->skel->rodata->unwind_page_shift = __builtin_ctzl(sysconf(_SC_PAGESIZE));
	l->skel->rodata->unwind_mode = opts->unwind_mode;
	if (opts->max_depth)
		l->skel->rodata->max_depth = opts->max_depth;
	err = size_maps(l->skel, opts);
	if (err) {
		*errmsg = "cannot size BPF maps";
		goto fail;
	}
	err = stray_bpf__load(l->skel);
	if (err) {
		*errmsg = "cannot load BPF programs (is this kernel built with BPF, BTF and uprobes?)";
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
	memset(t, 0, sizeof(*t));
}

void loader__free(struct loader *l)
{
	if (!l)
		return;
	for (uint32_t i = 0; l->targets && i < l->max_targets; i++)
		target_release(&l->targets[i]);
	free(l->targets);
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

/* free returns nothing that matters; operator new must not have a return
 * probe (bpf/stray.h, struct stray_inflight): the C++ unwinder cannot
 * unwind through the uretprobe trampoline, so a std::bad_alloc thrown out
 * of a probed new would terminate the program. */
static bool has_return_probe(int fn)
{
	return fn != STRAY_FN_FREE && fn != STRAY_FN_MUNMAP && (fn < STRAY_FN_NEW || fn > STRAY_FN_NEW_ARRAY_ALIGNED_NOTHROW);
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
		offsets[n] = o->offsets[fn];
		fns[n++] = fn;
	}
	return n;
}

/* Probe every allocator function of one object in one process: a single
 * uprobe_multi link for the entries and one for the returns, with the
 * function (enum stray_fn) as each offset's cookie. free and operator new
 * have no return probe (has_return_probe). */
static int attach_object(struct loader *l, struct target *t, const struct alloc_object *o)
{
	unsigned long entry_offs[STRAY_FN_COUNT], ret_offs[STRAY_FN_COUNT];
	__u64 entry_fns[STRAY_FN_COUNT], ret_fns[STRAY_FN_COUNT];
	size_t nentry, nret;
	struct stat st;
	int err;

	if (stat(o->path, &st))
		return -errno;
	for (size_t i = 0; i < t->nobjects; i++)
		if (t->objects[i].dev == st.st_dev && t->objects[i].ino == st.st_ino)
			return 0;
	if (t->nobjects >= sizeof(t->objects) / sizeof(t->objects[0]))
		return -E2BIG;
	nentry = alloc_object__sites(o, true, entry_offs, entry_fns);
	nret = alloc_object__sites(o, false, ret_offs, ret_fns);
	/* Returns first: a call entered between the two attachments must not
	 * leave an in-flight record whose return is never seen (the thread's
	 * later calls would look nested and go unrecorded). A return without
	 * its entry is only counted. */
	err = attach_multi(t, l->skel->progs.alloc_return, o->path, ret_offs, ret_fns, nret, true);
	if (!err)
		err = attach_multi(t, l->skel->progs.alloc_entry, o->path, entry_offs, entry_fns, nentry, false);
	if (err)
		return err;
	t->objects[t->nobjects++] = (struct attached_object){ st.st_dev, st.st_ino };
	return 0;
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
	if (t)
		target_release(t);
}

int loader__allocs_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.allocs);
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

int loader__unwind_rows_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.unwind_rows);
}

int loader__unwind_modules_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.unwind_modules);
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
	char root[64], link[64], exe[PATH_MAX];
	char *ld_path = NULL;
	ssize_t len;
	int ret;

	if (!at_exec)
		return procfs__mapped_objects(pid, 256, paths, n);
	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	len = readlink(link, exe, sizeof(exe) - 1);
	if (len < 0)
		return -errno;
	exe[len] = '\0';
	procfs__getenv(pid, "LD_LIBRARY_PATH", &ld_path);
	ret = elfsym__load_order(root, exe, ld_path, 256, paths);
	free(ld_path);
	if (ret < 0)
		return ret;
	*n = ret;
	return 0;
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
