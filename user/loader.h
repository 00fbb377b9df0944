/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Skeleton lifecycle and target management: open, size the maps, load,
 * then attach the allocator probes per target process and object.
 */
#ifndef STRAY_LOADER_H
#define STRAY_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "stray.h"

struct loader;

struct loader_opts {
	uint32_t max_allocs;   /* outstanding-allocation map capacity */
	uint32_t max_sites;    /* call-site map capacity */
	uint32_t max_targets;  /* processes traced at once */
	bool follow;           /* load the --follow programs (bpf/follow.bpf.h) */
	uint64_t sample_bytes; /* --sample: mean bytes between samples, 0: exact */
	uint32_t unwind_mode;  /* enum stray_unwind_mode (0: frame pointers) */
	uint32_t max_depth;    /* frames per stack, 0: STRAY_MAX_STACK_DEPTH */
	uint32_t max_unwind_rows; /* unwind table rows, 0: default */
	/* Called once the maps exist (their fds valid), while the probe
	 * programs are still being verified on other threads: for work to
	 * overlap with that. May be NULL. */
	void (*maps_ready)(void *ctx, struct loader *l);
	void *maps_ready_ctx;
};

/* Ret instructions of operator new probed per object (user/retsites.c). */
#define STRAY_MAX_NEW_RETURNS 128

/* Where one object defines allocator functions, as uprobe file offsets. */
struct alloc_object {
	char *path; /* opened by the kernel, e.g. /proc/PID/root/usr/lib/libc.so.6 */
	uint64_t offsets[STRAY_FN_COUNT];
	bool found[STRAY_FN_COUNT];
	/* operator new's ret instructions, entry-probed with cookie
	 * STRAY_COOKIE_NEW_RETURN */
	uint64_t new_returns[STRAY_MAX_NEW_RETURNS];
	size_t nnew_returns;
	/* Where each function's probes go: its entry or an instruction the
	 * kernel emulates a few instructions in (user/placement.h), and why. */
	uint64_t probe_offsets[STRAY_FN_COUNT];
	uint8_t probe_skipped[STRAY_FN_COUNT];
	const char *probe_why[STRAY_FN_COUNT];
};

/* The allocator of one process: each function's defining object. */
struct allocator {
	size_t nobjects;
	struct alloc_object objects[STRAY_FN_COUNT];
};

/*
 * The distinct probe sites of object o: file offsets and the function
 * (enum stray_fn) at each, in enum order. Aliases (glibc's memalign and
 * aligned_alloc are one function) appear once, or each call would be seen
 * twice. entries: every function (entry probes); otherwise only those with
 * a return probe (neither free nor operator new). offsets are the probe
 * offsets (probe_offsets), aliases are told by their entries. Arrays hold
 * STRAY_FN_COUNT entries; returns the count.
 */
size_t alloc_object__sites(const struct alloc_object *o, bool entries,
			   unsigned long *offsets, __u64 *fns);

/* Open, configure and load the BPF programs. NULL with errno on failure;
 * *errmsg (static string) names the step that failed. */
struct loader *loader__new(const struct loader_opts *opts, const char **errmsg);
void loader__free(struct loader *l);

/*
 * Trace process pid: add it to the target set and attach every probe of
 * alloc to it. Objects already attached for pid are skipped, so calling
 * this again after an exec only adds what the new image needs.
 * Returns 0 or -errno.
 */
int loader__attach(struct loader *l, int pid, const struct allocator *alloc);

/* Stop tracing pid: detach its probes and drop it from the target set. Its
 * map entries stay until drained. */
void loader__detach(struct loader *l, int pid);

/* How the probes are attached: "session", "multi" or "classic"
 * (user/attach_mode.h). */
const char *loader__attach_mode(const struct loader *l);

/* Map file descriptors for the drain. */
int loader__allocs_fd(const struct loader *l);
/* The block table (bpf/blocks.bpf.h), mapped: n slots, NULL when none. */
struct stray_block_slot *loader__block_slots(const struct loader *l, size_t *n);
/* The site counter slots (stray.h), mapped, and log2 of their number;
 * NULL when there are none. */
struct stray_site_slot *loader__site_slots(const struct loader *l, uint32_t *slot_bits);
/* Heap blocks in the allocs map: user space deleting one decrements it. */
__u64 *loader__heap_in_allocs(const struct loader *l);
int loader__sites_fd(const struct loader *l);
int loader__counters_fd(const struct loader *l);
uint32_t loader__max_sites(const struct loader *l);
uint32_t loader__max_allocs(const struct loader *l);
/* The --follow events ring buffer (valid only with loader_opts.follow). */
int loader__follow_events_fd(const struct loader *l);
uint64_t loader__sample_bytes(const struct loader *l); /* 0: exact tracking */
/* The DWARF unwinder's maps (user/unwind.h) and their capacities. */
int loader__unwind_rows_fd(const struct loader *l);
int loader__unwind_modules_fd(const struct loader *l);
int loader__unwind_vma_cache_fd(const struct loader *l);
uint32_t loader__max_unwind_rows(const struct loader *l);
uint32_t loader__max_unwind_modules(const struct loader *l);

/*
 * Which objects define the allocator functions for process pid.
 * at_exec: the process has just exec'd and its libraries are not mapped
 * yet, so they are predicted from the executable's DT_NEEDED chain;
 * otherwise they are read from /proc/pid/maps. Each function goes to the
 * first object in symbol-lookup order that defines it, as ld.so binds it.
 * Returns 0, -ENOENT when no object defines malloc, or another -errno.
 */
int allocator__resolve(int pid, bool at_exec, struct allocator *out);

/*
 * The objects of process pid in symbol-lookup order: from /proc/pid/maps,
 * or, at_exec, predicted from the executable's DT_NEEDED chain under
 * /proc/pid/root with the process's LD_LIBRARY_PATH. *paths is malloc'ed
 * (free with elfsym__free_paths). Returns 0 or -errno.
 */
int allocator__lookup_scope(int pid, bool at_exec, char ***paths, size_t *n);
void allocator__clear(struct allocator *a);

extern const char *const stray_fn_names[STRAY_FN_COUNT];

#endif /* STRAY_LOADER_H */
