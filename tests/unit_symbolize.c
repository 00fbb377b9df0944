// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * symbolize: this test process describes itself with its own
 * /proc/self/maps and resolves return addresses it captured, so the
 * expected function, offset, file and line are known exactly.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolize.h"

static char *read_self_maps(void)
{
	char *text = NULL;
	size_t size = 0;
	FILE *in = fopen("/proc/self/maps", "r"), *out = open_memstream(&text, &size);
	char buf[4096];
	size_t n;

	cr_assert_not_null(in);
	cr_assert_not_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
	return text;
}

static struct symbolizer *self_symbolizer(const char *root)
{
	struct symbolizer *s = symbolizer__new();
	char *maps = read_self_maps();

	cr_assert_not_null(s);
	cr_assert_eq(symbolizer__set_maps(s, getpid(), maps, root), 0);
	free(maps);
	return s;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

__attribute__((noinline)) static uint64_t return_address(void)
{
	uint64_t ra = (uint64_t)__builtin_return_address(0);

	__asm__ volatile("" ::: "memory"); /* keep this a real call */
	return ra;
}

/*
 * Make call on this source line, record the line in line_var, and return
 * the call's result: the asm keeps it from being a tail call, so the
 * caller's frame really holds a return address on this line.
 */
#define CALL_ON_RECORDED_LINE(line_var, call)                                 \
	({                                                                     \
		uint64_t ra_;                                                  \
		line_var = __LINE__, ra_ = (call);                             \
		__asm__ volatile("" : "+r"(ra_));                              \
		ra_;                                                           \
	})

static int call_line;

/* The frame under test: its call to return_address() is on call_line. */
__attribute__((noinline)) static uint64_t stray_symbolize_caller(void)
{
	return CALL_ON_RECORDED_LINE(call_line, return_address());
}

static int inlined_line, inliner_line;

/* Always inlined into stray_symbolize_inliner: the return address of its
 * call is one address standing for two source frames. */
static inline __attribute__((always_inline)) uint64_t stray_inlined_callee(void)
{
	return CALL_ON_RECORDED_LINE(inlined_line, return_address());
}

__attribute__((noinline)) static uint64_t stray_symbolize_inliner(void)
{
	return CALL_ON_RECORDED_LINE(inliner_line, stray_inlined_callee());
}

static void self_exe(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);

	cr_assert(n > 0);
	buf[n] = '\0';
}

static void assert_caller_frame(const struct report_frame *f, uint64_t ra)
{
	char exe[PATH_MAX];

	self_exe(exe, sizeof(exe));
	cr_assert_eq(f->address, ra);
	cr_assert_str_eq(f->module, exe);
	cr_assert_str_eq(f->function, "stray_symbolize_caller");
	cr_assert_eq(f->offset, (int64_t)(ra - (uint64_t)stray_symbolize_caller));
	cr_assert_not_null(f->file, "no line info: was the test built with -g?");
	cr_assert(ends_with(f->file, "unit_symbolize.c"), "file %s", f->file);
	cr_assert_eq(f->line, call_line);
}

Test(symbolize, own_function_file_and_line)
{
	struct symbolizer *s = self_symbolizer(NULL);
	uint64_t ra = stray_symbolize_caller();
	struct report_frame f, again;

	cr_assert_eq(symbolizer__resolve(s, getpid(), ra, &f), 0);
	assert_caller_frame(&f, ra);
	/* the second answer comes from the cache and hands out the same strings */
	cr_assert_eq(symbolizer__resolve(s, getpid(), ra, &again), 0);
	cr_assert_eq(again.function, f.function);
	cr_assert_eq(again.module, f.module);
	symbolizer__free(s);
}

/* Paths are opened under root but reported as the target sees them. */
Test(symbolize, root_prefix_not_reported)
{
	struct symbolizer *s = self_symbolizer("/proc/self/root");
	uint64_t ra = stray_symbolize_caller();
	struct report_frame f;

	cr_assert_eq(symbolizer__resolve(s, getpid(), ra, &f), 0);
	assert_caller_frame(&f, ra);
	symbolizer__free(s);
}

/* std::terminate() lives in libstdc++; its .dynsym name is mangled. */
Test(symbolize, cxx_names_are_demangled)
{
	void *h = dlopen("libstdc++.so.6", RTLD_NOW);
	struct symbolizer *s;
	struct report_frame f;
	uint64_t addr;

	cr_assert_not_null(h, "%s", dlerror());
	addr = (uint64_t)dlsym(h, "_ZSt9terminatev");
	cr_assert_neq(addr, 0);
	s = self_symbolizer(""); /* maps read after dlopen */
	/* as if std::terminate's first byte were a call returning to addr + 1 */
	cr_assert_eq(symbolizer__resolve(s, getpid(), addr + 1, &f), 0);
	cr_assert_str_eq(f.function, "std::terminate()");
	cr_assert_eq(f.offset, 1);
	cr_assert(strstr(f.module, "libstdc++.so.6") != NULL, "module %s", f.module);
	symbolizer__free(s);
	dlclose(h);
}

Test(symbolize, unknown_pid_and_address)
{
	struct symbolizer *s = self_symbolizer(NULL);
	struct report_frame f;

	cr_assert_eq(symbolizer__resolve(s, getpid() + 1, 0x1234, &f), -ENOENT);
	/* page 1 is never mapped */
	cr_assert_eq(symbolizer__resolve(s, getpid(), 0x1010, &f), 0);
	cr_assert_str_eq(f.module, "[unknown]");
	cr_assert_null(f.function);
	cr_assert_eq(f.offset, -1);
	cr_assert_null(f.file);
	cr_assert_eq(f.line, 0);
	cr_assert_eq(f.address, 0x1010);
	symbolizer__free(s);
}

Test(symbolize, inlined_function_is_a_frame_of_its_own)
{
	struct symbolizer *s = self_symbolizer(NULL);
	uint64_t ra = stray_symbolize_inliner();
	struct report_frame f[SYMBOLIZE_MAX_INLINE + 1];

	cr_assert_eq(symbolizer__resolve_frames(s, getpid(), ra, NULL, 0), 2);
	cr_assert_eq(symbolizer__resolve_frames(s, getpid(), ra, f, 2), 2);
	cr_assert_str_eq(f[0].function, "stray_inlined_callee");
	cr_assert(f[0].inlined);
	cr_assert_eq(f[0].offset, -1);
	cr_assert_eq(f[0].line, inlined_line);
	cr_assert_str_eq(f[1].function, "stray_symbolize_inliner");
	cr_assert_not(f[1].inlined);
	cr_assert_eq(f[1].offset, (int64_t)(ra - (uint64_t)stray_symbolize_inliner));
	cr_assert_eq(f[1].line, inliner_line);
	cr_assert_eq(f[0].address, ra);
	cr_assert_eq(f[1].address, ra);
	/* the one-frame API gives the innermost */
	cr_assert_eq(symbolizer__resolve(s, getpid(), ra, &f[0]), 0);
	cr_assert_str_eq(f[0].function, "stray_inlined_callee");
	symbolizer__free(s);
}

/* An object missing from a later snapshot (dlclosed) still resolves. */
Test(symbolize, unmapped_objects_stay_resolvable)
{
	struct symbolizer *s = self_symbolizer(NULL);
	uint64_t ra = stray_symbolize_caller();
	struct report_frame f;

	cr_assert_eq(symbolizer__set_maps(s, getpid(), "", NULL), 0);
	cr_assert_eq(symbolizer__resolve(s, getpid(), ra, &f), 0);
	assert_caller_frame(&f, ra);
	symbolizer__free(s);
}

Test(symbolize, bad_arguments_and_null_free)
{
	struct symbolizer *s = symbolizer__new();
	struct report_frame f;

	cr_assert_not_null(s);
	cr_assert_eq(symbolizer__set_maps(s, getpid(), NULL, NULL), -EINVAL);
	cr_assert_eq(symbolizer__resolve(s, getpid(), 0x1234, &f), -ENOENT);
	symbolizer__free(s);
	symbolizer__free(NULL);
}

/* The line of our own maps text that maps our code, as a maps text of
 * its own (with its path replaced by other_path when not NULL). */
static char *own_code_mapping(const char *other_path)
{
	char *maps = read_self_maps(), exe[PATH_MAX], *line, *out = NULL, *save = NULL;

	self_exe(exe, sizeof(exe));
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *path = strchr(line, '/');

		if (!strstr(line, " r-xp ") || !path || strcmp(path, exe))
			continue;
		cr_assert(asprintf(&out, "%.*s%s\n", (int)(path - line), line,
				   other_path ? other_path : exe) > 0);
		break;
	}
	free(maps);
	cr_assert_not_null(out, "no r-xp mapping of %s", exe);
	return out;
}

/* A snapshot showing another object where an old one was (a library
 * unloaded, another loaded at its addresses) replaces it. The pid is no
 * process: objects are opened by path. */
Test(symbolize, new_object_at_the_same_addresses_replaces_the_old)
{
	const int pid = 0x40000001; /* above PID_MAX_LIMIT */
	const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
	char *ours = own_code_mapping(NULL), *theirs = own_code_mapping(libc);
	struct symbolizer *s = symbolizer__new();
	uint64_t ra = stray_symbolize_caller();
	struct report_frame f;

	cr_assert_eq(symbolizer__set_maps(s, pid, ours, NULL), 0);
	cr_assert_eq(symbolizer__resolve(s, pid, ra, &f), 0);
	assert_caller_frame(&f, ra);
	cr_assert_eq(symbolizer__set_maps(s, pid, theirs, NULL), 0);
	cr_assert_eq(symbolizer__resolve(s, pid, ra, &f), 0);
	cr_assert_str_eq(f.module, libc);
	cr_assert(!f.function || strcmp(f.function, "stray_symbolize_caller"));
	symbolizer__free(s);
	free(ours);
	free(theirs);
}

static uint64_t qsort_return;

/* A comparator qsort calls from inside libc: its return address is there. */
__attribute__((noinline)) static int record_qsort_return(const void *a, const void *b)
{
	qsort_return = (uint64_t)__builtin_return_address(0);
	return *(const int *)a - *(const int *)b;
}

/*
 * A lazy snapshot (stray -p before its probes go in) leaves the search for
 * separate debug info for later: libc's file and line (from libc6-dbg's
 * build-id file) still come at the first lookup, the same as eagerly.
 */
Test(symbolize, lazy_snapshot_finds_separate_debug_info_at_the_first_lookup)
{
	struct symbolizer *lazy = symbolizer__new(), *eager = self_symbolizer(NULL);
	int v[] = { 3, 1, 2 };
	char *maps = read_self_maps();
	struct report_frame f, e;

	qsort(v, 3, sizeof(v[0]), record_qsort_return);
	cr_assert_not_null(lazy);
	cr_assert_eq(symbolizer__set_maps_lazy(lazy, getpid(), maps, NULL), 0);
	cr_assert_eq(symbolizer__resolve(lazy, getpid(), qsort_return, &f), 0);
	cr_assert_eq(symbolizer__resolve(eager, getpid(), qsort_return, &e), 0);
	cr_assert(ends_with(f.module, "/libc.so.6"), "module %s", f.module);
	cr_assert_not_null(f.file, "no line info from libc6-dbg for %s", f.function);
	cr_assert_str_eq(f.function, e.function);
	cr_assert_str_eq(f.file, e.file);
	cr_assert_eq(f.line, e.line);
	/* and the explicit search finds nothing left to do */
	symbolizer__find_debuginfo(lazy);
	free(maps);
	symbolizer__free(lazy);
	symbolizer__free(eager);
}
