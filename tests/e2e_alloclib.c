// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/fixtures/alloclib.cpp under jemalloc, tcmalloc and mimalloc, each
 * linked into the executable and LD_PRELOADed into the plain (glibc) build,
 * in run mode (stray -- CMD) and attach mode (stray -p PID); also glibc
 * linked statically, and a stripped executable with jemalloc inside that
 * exports malloc only through .dynsym. Every leak site must be exact
 * (bytes, blocks, each counted once: the allocators inline their fast path
 * into operator new), and stray must have probed the allocator's object.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "common_e2e.h"

#define LIBDIR "/usr/lib/x86_64-linux-gnu/"

struct site {
	const char *fn; /* stack[0] */
	int64_t bytes, allocations;
};

/* Keep in sync with tests/fixtures/alloclib.cpp. */
static const struct site common_sites[] = {
	{ "leak_malloc()", 3 * 120, 3 },
	{ "leak_calloc()", 85, 1 },
	{ "leak_realloc()", 7000, 1 },
	{ "leak_posix_memalign()", 640, 1 },
	{ "leak_aligned_alloc()", 2 * 192, 2 },
	{ "leak_new()", 3 * 40, 3 },
	{ "leak_many_new()", 100 * 24, 100 },
	{ "leak_new_array()", 2 * 100, 2 },
	{ "leak_big_new()", 20000, 1 },
	{ "leak_nothrow()", 2 * 40, 2 },
	{ "leak_aligned_new()", 128, 1 },
	{ NULL, 0, 0 },
};

static const struct site jemalloc_sites[] = {
	{ "leak_mallocx()", 2 * 300 + 64, 3 },
	{ "leak_rallocx()", 5000, 1 },
	{ "leak_xallocx()", 110, 1 },
	{ NULL, 0, 0 },
};

static const struct site tcmalloc_sites[] = {
	{ "leak_tc()", 2 * 77 + 33, 3 },
	{ NULL, 0, 0 },
};

static const struct site mimalloc_sites[] = {
	{ "leak_mi()", 2 * 88 + 99 + 30 + 200, 5 },
	{ "leak_mi_aligned()", 48 + 48 + 72 + 128, 4 },
	{ "leak_mi_realloc()", 100 + 500 + 60 + 150, 4 },
	{ NULL, 0, 0 },
};

static const char *const freed_fns[] = { "freed_all()", "freed_ext()" };

/* Bytes, blocks and blocks ever allocated over the heap suspects of pid
 * whose first frame is fn (a function may hold several sites). */
static void sum_sites(json_object *report, int pid, const char *fn, int64_t *bytes, int64_t *allocs,
		      int64_t *total)
{
	json_object *suspects = e2e_member(report, "suspects");

	*bytes = *allocs = *total = 0;
	for (size_t i = 0; i < json_object_array_length(suspects); i++) {
		json_object *s = json_object_array_get_idx(suspects, i), *stack, *f0, *name;

		if (e2e_int(s, "pid") != pid || !json_object_object_get_ex(s, "stack", &stack) ||
		    !json_object_array_length(stack))
			continue;
		f0 = json_object_array_get_idx(stack, 0);
		if (!json_object_object_get_ex(f0, "function", &name) || !json_object_is_type(name, json_type_string) ||
		    strcmp(json_object_get_string(name), fn))
			continue;
		*bytes += e2e_int(s, "bytes");
		*allocs += e2e_int(s, "allocations");
		*total += e2e_int(s, "total_allocations");
	}
}

static void check_table(json_object *report, int pid, const struct site *sites, const char *what)
{
	for (const struct site *s = sites; s->fn; s++) {
		int64_t bytes, allocs, total;

		sum_sites(report, pid, s->fn, &bytes, &allocs, &total);
		cr_expect_eq(bytes, s->bytes, "%s: %s %ld bytes, expected %ld", what, s->fn, (long)bytes, (long)s->bytes);
		cr_expect_eq(allocs, s->allocations, "%s: %s %ld blocks, expected %ld", what, s->fn, (long)allocs,
			     (long)s->allocations);
		/* Nothing at these sites was freed: each block counted once. */
		cr_expect_eq(total, s->allocations, "%s: %s %ld allocations in total, expected %ld", what, s->fn,
			     (long)total, (long)s->allocations);
	}
}

static void check_report(json_object *report, int pid, const struct site *extra, const char *what)
{
	cr_assert(report, "%s: no JSON report", what);
	check_table(report, pid, common_sites, what);
	if (extra)
		check_table(report, pid, extra, what);
	for (size_t i = 0; i < sizeof(freed_fns) / sizeof(freed_fns[0]); i++)
		cr_expect_eq(e2e_suspects_with(report, freed_fns[i]), 0, "%s: %s freed everything but is a suspect",
			     what, freed_fns[i]);
	cr_expect_eq(e2e_int(report, "totals.unmatched_frees"), 0, "%s: unmatched frees", what);
	cr_expect_eq(e2e_int(report, "totals.dropped.stale_inflight"), 0, "%s: stale in-flight records", what);
	cr_expect_eq(e2e_int(report, "totals.dropped.missing_entry"), 0, "%s: returns without entry", what);
	cr_expect_eq(e2e_int(report, "totals.dropped.duplicate_addresses"), 0, "%s: unseen frees", what);
}

/* stray -v logs "probes on PATH" per object: the allocator's must be one. */
static void check_probed(const struct e2e_run *r, const char *object, const char *what)
{
	cr_expect(strstr(r->err, "probes on") && strstr(r->err, object), "%s: %s not probed:\n%s", what, object,
		  r->err);
}

static void run_mode(const char *const *cmd, const struct site *extra, const char *object)
{
	const char *args[8] = { "-v", "--" };
	struct e2e_run r;
	size_t n = 2;

	for (size_t i = 0; cmd[i] && n < 7; i++)
		args[n++] = cmd[i];
	args[n] = NULL;
	e2e_stray_run(&r, 60, args);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report");
	check_probed(&r, object, cmd[0]);
	/* One process (env execs the fixture): its pid is the only one. */
	check_report(r.report, (int)e2e_int(json_object_array_get_idx(e2e_member(e2e_member(r.report, "target"),
										  "pids"), 0), ""),
		     extra, "run mode");
	e2e_run_free(&r);
}

/* Attach to a --wait fixture, let it allocate, then stop after -d. */
static void attach_mode(const char *const *cmd, const struct site *extra, const char *object)
{
	const char *fx[8];
	struct e2e_run r;
	char pidbuf[16];
	pid_t pid, stray;
	size_t n = 0;

	for (size_t i = 0; cmd[i] && n < 6; i++)
		fx[n++] = cmd[i];
	fx[n++] = "--wait";
	fx[n] = NULL;
	pid = e2e_start_fixture(fx);
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-v", "-d", "3", "-p", pidbuf, NULL };
	stray = e2e_stray_start(&r, args);
	e2e_sleep_s(1.5); /* attached by then */
	cr_assert_eq(kill(pid, SIGUSR1), 0);
	e2e_stray_wait(&r, stray, 60);
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	check_probed(&r, object, cmd[0]);
	check_report(r.report, pid, extra, "attach mode");
	e2e_run_free(&r);
}

#define LINKED(lib, object)                                                   \
	Test(e2e_alloclib, lib##_linked_run)                                  \
	{                                                                     \
		const char *cmd[] = { e2e_fixture("alloclib-" #lib), NULL };  \
		run_mode(cmd, lib##_sites, object);                           \
	}                                                                     \
	Test(e2e_alloclib, lib##_linked_attach)                               \
	{                                                                     \
		const char *cmd[] = { e2e_fixture("alloclib-" #lib), NULL };  \
		attach_mode(cmd, lib##_sites, object);                        \
	}

#define PRELOADED(lib, object)                                                                            \
	Test(e2e_alloclib, lib##_preload_run)                                                             \
	{                                                                                                 \
		const char *cmd[] = { "/usr/bin/env", "LD_PRELOAD=" LIBDIR object, e2e_fixture("alloclib"), \
				      NULL };                                                             \
		run_mode(cmd, NULL, object);                                                              \
	}                                                                                                 \
	Test(e2e_alloclib, lib##_preload_attach)                                                          \
	{                                                                                                 \
		const char *cmd[] = { "/usr/bin/env", "LD_PRELOAD=" LIBDIR object, e2e_fixture("alloclib"), \
				      NULL };                                                             \
		attach_mode(cmd, NULL, object);                                                           \
	}

LINKED(jemalloc, "libjemalloc.so.2")
LINKED(tcmalloc, "libtcmalloc_minimal.so.4")
LINKED(mimalloc, "libmimalloc.so.2")
PRELOADED(jemalloc, "libjemalloc.so.2")
PRELOADED(tcmalloc, "libtcmalloc_minimal.so.4")
PRELOADED(mimalloc, "libmimalloc.so.2")

/* glibc linked statically: malloc and operator new in the executable. */
Test(e2e_alloclib, glibc_static_run)
{
	const char *cmd[] = { e2e_fixture("alloclib-static"), NULL };

	run_mode(cmd, NULL, "alloclib-static");
}

/* jemalloc's archive inside a stripped executable: no .symtab, malloc,
 * operator new and mallocx found through .dynsym (-rdynamic) alone. */
Test(e2e_alloclib, stripped_exports_malloc_run)
{
	const char *cmd[] = { e2e_fixture("alloclib-stripped"), NULL };

	run_mode(cmd, jemalloc_sites, "alloclib-stripped");
}

Test(e2e_alloclib, stripped_exports_malloc_attach)
{
	const char *cmd[] = { e2e_fixture("alloclib-stripped"), NULL };

	attach_mode(cmd, jemalloc_sites, "alloclib-stripped");
}
