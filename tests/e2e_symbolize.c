// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Symbolization end to end (issue 5's list, issue 4's dlopen item): the
 * real stray against fixtures in tests/fixtures/symbolize/, asserting on
 * the frames of the JSON report. Expected lines are found by markers in
 * the fixture sources the report names, so they cannot drift.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common_e2e.h"

#define SYMLOAD_BYTES 1111

/* The heap suspect of exactly bytes bytes (of pid when pid > 0). */
static json_object *suspect_of(json_object *report, int pid, int64_t bytes)
{
	json_object *sus = e2e_member(report, "suspects");

	for (size_t i = 0; i < json_object_array_length(sus); i++) {
		json_object *s = json_object_array_get_idx(sus, i);

		if (e2e_int(s, "bytes") == bytes && (pid <= 0 || e2e_int(s, "pid") == pid))
			return s;
	}
	cr_assert_fail("no suspect of %lld bytes in %s", (long long)bytes,
		       json_object_to_json_string(sus));
	return NULL;
}

static json_object *frame(json_object *suspect, size_t i)
{
	json_object *stack = e2e_member(suspect, "stack");

	cr_assert_lt(i, json_object_array_length(stack), "stack too short: %s",
		     json_object_to_json_string(stack));
	return json_object_array_get_idx(stack, i);
}

/* A string member, or NULL for JSON null. */
static const char *str(json_object *f, const char *key)
{
	json_object *v = e2e_member(f, key);

	return json_object_is_type(v, json_type_null) ? NULL : json_object_get_string(v);
}

static bool is_inlined(json_object *f)
{
	json_object *v;

	return json_object_object_get_ex(f, "inlined", &v) && json_object_get_boolean(v);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = s ? strlen(s) : 0, b = strlen(suffix);

	return s && a >= b && !strcmp(s + a - b, suffix);
}

/* The 1-based line of path that ends in the comment marking marker. */
static int marker_line(const char *path, const char *marker)
{
	FILE *f = fopen(path, "r");
	char buf[512], comment[128];
	int line = 0;

	snprintf(comment, sizeof(comment), "/* %s */", marker);
	cr_assert_not_null(f, "cannot open %s, the source the report names", path);
	while (fgets(buf, sizeof(buf), f)) {
		line++;
		if (strstr(buf, comment)) {
			fclose(f);
			return line;
		}
	}
	fclose(f);
	cr_assert_fail("%s has no line marked %s", path, marker);
	return 0;
}

/* Frame f is function fn in a file ending in file_suffix, at the line
 * marked marker (or with no source at all when marker is NULL). */
static void assert_frame(json_object *f, const char *fn, const char *file_suffix, const char *marker)
{
	const char *file = str(f, "file");

	cr_assert_str_eq(str(f, "function"), fn, "frame %s", json_object_to_json_string(f));
	if (!marker) {
		cr_assert_null(file, "frame %s", json_object_to_json_string(f));
		return;
	}
	cr_assert(ends_with(file, file_suffix), "frame %s", json_object_to_json_string(f));
	cr_assert_eq(e2e_int(f, "line"), marker_line(file, marker), "frame %s",
		     json_object_to_json_string(f));
}

static int first_pid(json_object *report)
{
	json_object *pids = e2e_member(e2e_member(report, "target"), "pids");

	cr_assert_geq(json_object_array_length(pids), 1);
	return json_object_get_int(json_object_array_get_idx(pids, 0));
}

static void run_fixture(struct e2e_run *r, const char *const *cmd)
{
	const char *args[16] = { "--" };
	size_t n = 1;

	for (size_t i = 0; cmd[i] && n < 15; i++)
		args[n++] = cmd[i];
	e2e_stray_run(r, 60, args);
	cr_assert_eq(r->status, 0, "stray failed (%d): %s", r->status, r->err);
	cr_assert_not_null(r->report, "no JSON report: %s", r->err);
}

/* The stack of symload's leak: symlib_leak in module lib (from source
 * when with_source), called by load_and_leak in symload. */
static void assert_symload_stack(json_object *report, int pid, const char *lib, bool with_source)
{
	json_object *s = suspect_of(report, pid, SYMLOAD_BYTES);

	cr_assert_str_eq(str(frame(s, 0), "module"), lib);
	assert_frame(frame(s, 0), "symlib_leak", "symlib.c", with_source ? "SYMLIB_LEAK" : NULL);
	cr_assert_str_eq(str(frame(s, 1), "function"), "load_and_leak");
	cr_assert(ends_with(str(frame(s, 1), "module"), "/symload"), "%s",
		  json_object_to_json_string(frame(s, 1)));
}

Test(e2e_symbolize, inlined_functions_are_frames_of_their_own)
{
	const char *cmd[] = { e2e_fixture("syminline"), NULL };
	struct e2e_run r;
	json_object *s;

	run_fixture(&r, cmd);
	s = suspect_of(r.report, 0, 2002);
	/* one return address, three source frames */
	cr_assert_str_eq(str(frame(s, 0), "address"), str(frame(s, 2), "address"));
	assert_frame(frame(s, 0), "inline_inner", "syminline.c", "INLINE_INNER");
	cr_assert(is_inlined(frame(s, 0)));
	assert_frame(frame(s, 1), "inline_mid", "syminline.c", "INLINE_MID");
	cr_assert(is_inlined(frame(s, 1)));
	assert_frame(frame(s, 2), "inline_outer", "syminline.c", "INLINE_OUTER");
	cr_assert_not(is_inlined(frame(s, 2)));
	cr_assert_geq(e2e_int(frame(s, 2), "offset"), 1);
	cr_assert_str_eq(str(frame(s, 3), "function"), "main");
	e2e_run_free(&r);
}

/* The whole fixture file, to prove a name is not in it. */
static bool file_contains(const char *path, const char *needle)
{
	char *text = NULL;
	size_t size = 0;
	FILE *in = fopen(path, "rb"), *out = open_memstream(&text, &size);
	char buf[65536];
	size_t n;
	bool found;

	cr_assert(in && out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
	found = memmem(text, size, needle, strlen(needle)) != NULL;
	free(text);
	return found;
}

Test(e2e_symbolize, stripped_program_symbolizes_from_its_gnu_debuglink_file)
{
	const char *cmd[] = { e2e_fixture("symdebug"), NULL };
	struct e2e_run r;
	json_object *s;

	/* the name is only in symdebug.debug */
	cr_assert_not(file_contains(cmd[0], "debuglink_leak"), "%s is not stripped", cmd[0]);
	run_fixture(&r, cmd);
	s = suspect_of(r.report, 0, 1212);
	assert_frame(frame(s, 0), "debuglink_leak", "symdebug.c", "DEBUGLINK_LEAK");
	assert_frame(frame(s, 1), "main", "symdebug.c", "CALL_DEBUGLINK");
	e2e_run_free(&r);
}

/* libc6-dbg installs glibc's debug info under /usr/lib/debug/.build-id. */
Test(e2e_symbolize, libc_frames_get_lines_from_build_id_debug_files)
{
	const char *cmd[] = { e2e_fixture("symdebug"), NULL };
	struct e2e_run r;
	json_object *f;
	const char *fn;

	run_fixture(&r, cmd);
	f = frame(suspect_of(r.report, 0, 1313), 0);
	fn = str(f, "function");
	cr_assert(ends_with(str(f, "module"), "/libc.so.6"), "%s", json_object_to_json_string(f));
	cr_assert(fn && strstr(fn, "strdup"), "%s", json_object_to_json_string(f));
	cr_assert(ends_with(str(f, "file"), "strdup.c"), "%s", json_object_to_json_string(f));
	cr_assert_gt(e2e_int(f, "line"), 0);
	e2e_run_free(&r);
}

Test(e2e_symbolize, stripped_library_falls_back_to_the_dynamic_symbol_table)
{
	const char *cmd[] = { e2e_fixture("symload"), e2e_fixture("libsymlib-stripped.so"), "exit", NULL };
	struct e2e_run r;

	run_fixture(&r, cmd);
	assert_symload_stack(r.report, 0, cmd[1], false);
	e2e_run_free(&r);
}

/* A temporary copy of libsymlib.so, so the fixture may delete it. */
static void copy_library(char *dir, char *lib, size_t size)
{
	char cmd[PATH_MAX * 2 + 16];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(lib, size, "%s/libsymlib.so", dir);
	snprintf(cmd, sizeof(cmd), "cp %s %s", e2e_fixture("libsymlib.so"), lib);
	cr_assert_eq(system(cmd), 0);
}

/* symload MODE deletes its library from disk, or renames another file
 * over it, after loading it: only /proc/PID/map_files still reaches it. */
static void library_gone_from_disk(const char *mode)
{
	char dir[] = "/tmp/stray-symlib-XXXXXX", lib[PATH_MAX];
	struct e2e_run r;

	copy_library(dir, lib, sizeof(lib));
	const char *cmd[] = { e2e_fixture("symload"), lib, mode, NULL };
	run_fixture(&r, cmd);
	cr_assert(access(lib, F_OK) != 0 || !file_contains(lib, "symlib_leak"),
		  "%s still holds the library", lib);
	/* the report names the file as it was mapped */
	assert_symload_stack(r.report, 0, lib, true);
	unlink(lib);
	rmdir(dir);
	e2e_run_free(&r);
}

Test(e2e_symbolize, library_deleted_before_the_report)
{
	library_gone_from_disk("unlink");
}

Test(e2e_symbolize, library_replaced_before_the_report)
{
	library_gone_from_disk("replace");
}

/* Run mode: the process is gone at report time; its maps were saved at
 * its exit stop. */
Test(e2e_symbolize, process_exited_before_the_report)
{
	const char *cmd[] = { e2e_fixture("symload"), e2e_fixture("libsymlib.so"), "exit", NULL };
	struct e2e_run r;
	int pid;

	run_fixture(&r, cmd);
	pid = first_pid(r.report);
	cr_assert(kill(pid, 0) != 0, "pid %d still exists", pid);
	cr_assert_eq(e2e_int(r.report, "target.exit_code"), 0);
	assert_symload_stack(r.report, pid, cmd[1], true);
	e2e_run_free(&r);
}

/* Whether pid currently maps a file whose path contains name. */
static bool maps_contain(pid_t pid, const char *name)
{
	char path[64], *text;
	bool found;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	text = e2e_slurp(path);
	cr_assert_not_null(text);
	found = strstr(text, name) != NULL;
	free(text);
	return found;
}

/*
 * -p mode against `symload LIB wait` started by argv: attach, then let it
 * dlopen LIB (after attach), leak from it and dlclose it; the report,
 * written after the dlclose, still symbolizes LIB's frames as module lib.
 */
static void attach_and_dlopen(const char *const *argv, const char *lib)
{
	pid_t pid = e2e_start_fixture(argv), stray;
	char pidbuf[16];
	struct e2e_run r;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-v", "-p", pidbuf, NULL };
	stray = e2e_stray_start(&r, args);
	e2e_wait_attached(&r, stray);
	cr_assert_not(maps_contain(pid, "libsymlib"), "loaded before attach");
	kill(pid, SIGUSR1);
	/* symload keeps the library 2.5 s, then closes it */
	for (double end = e2e_now_s() + 10; e2e_now_s() < end && !maps_contain(pid, "libsymlib");)
		e2e_sleep_s(0.05);
	for (double end = e2e_now_s() + 10; e2e_now_s() < end && maps_contain(pid, "libsymlib");)
		e2e_sleep_s(0.05);
	cr_assert_not(maps_contain(pid, "libsymlib"), "library not dlclosed");
	e2e_sleep_s(1.2); /* a drain with the library gone */
	kill(stray, SIGINT);
	e2e_stray_wait(&r, stray, 30);
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert_not_null(r.report, "no JSON report: %s", r.err);
	assert_symload_stack(r.report, pid, lib, true);
	e2e_run_free(&r);
}

Test(e2e_symbolize, library_dlopened_after_attach_and_dlclosed_before_the_report)
{
	const char *argv[] = { e2e_fixture("symload"), e2e_fixture("libsymlib.so"), "wait", NULL };

	attach_and_dlopen(argv, argv[1]);
}

/* Copy host file from into the fake container root at path to. */
static void install(const char *root, const char *from, const char *to)
{
	char cmd[PATH_MAX * 3];

	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname %s%s)\" && cp %s %s%s", root, to, from, root, to);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A container root (from a mkdtemp template) with glibc (x86-64 Debian
 * paths) and an empty /tmp. */
static void make_root(char *root)
{
	char cmd[PATH_MAX + 16];

	cr_assert_not_null(mkdtemp(root));
	install(root, "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6");
	install(root, "/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2");
	snprintf(cmd, sizeof(cmd), "mkdir %s/tmp", root);
	cr_assert_eq(system(cmd), 0);
}

/*
 * A "container": a private mount namespace (unshare --mount) whose root
 * is a directory holding the fixture and its libraries (pivot_root, as
 * runtimes do), so the paths in /proc/PID/maps (/opt/app/...) exist only
 * under /proc/PID/root, not on the host.
 */
Test(e2e_symbolize, process_in_another_mount_namespace)
{
	char root[] = "/tmp/stray-container-XXXXXX", cmd[PATH_MAX + 16];

	make_root(root);
	install(root, e2e_fixture("symload"), "/opt/app/symload");
	install(root, e2e_fixture("libsymlib.so"), "/opt/app/libsymlib.so");
	cr_assert(access("/opt/app/libsymlib.so", F_OK) != 0, "the host has /opt/app/libsymlib.so");
	const char *argv[] = { "/usr/bin/unshare", "--mount", e2e_fixture("symjail"), root,
			       "/opt/app/symload", "/opt/app/libsymlib.so", "wait", NULL };
	attach_and_dlopen(argv, "/opt/app/libsymlib.so");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	cr_assert_eq(system(cmd), 0);
}

Test(e2e_symbolize, jit_code_through_the_perf_map)
{
	const char *cmd[] = { e2e_fixture("symjit"), NULL };
	struct e2e_run r;
	json_object *s;
	char map[64];
	int pid;

	run_fixture(&r, cmd);
	pid = first_pid(r.report);
	snprintf(map, sizeof(map), "/tmp/perf-%d.map", pid);
	s = suspect_of(r.report, pid, 3434);
	cr_assert_str_eq(str(frame(s, 0), "module"), map);
	assert_frame(frame(s, 0), "jit_stub_leak", "", NULL);
	cr_assert_geq(e2e_int(frame(s, 0), "offset"), 1);
	assert_frame(frame(s, 1), "jit_call", "symjit.c", "CALL_STUB");
	unlink(map);
	e2e_run_free(&r);
}

/*
 * JIT code in a container with its own pid namespace: the JIT names its
 * perf map after its pid there (1), under the container's /tmp.
 */
Test(e2e_symbolize, jit_code_in_a_container_through_its_own_perf_map)
{
	char root[] = "/tmp/stray-container-XXXXXX", cmd[PATH_MAX + 16];
	struct e2e_run r;
	json_object *s;

	make_root(root);
	install(root, e2e_fixture("symjit"), "/opt/app/symjit");
	const char *argv[] = { "/usr/bin/unshare", "--mount", "--pid", "--fork", e2e_fixture("symjail"),
			       root, "/opt/app/symjit", NULL };
	run_fixture(&r, argv);
	s = suspect_of(r.report, 0, 3434);
	cr_assert_str_eq(str(frame(s, 0), "module"), "/tmp/perf-1.map");
	assert_frame(frame(s, 0), "jit_stub_leak", "", NULL);
	cr_assert_str_eq(str(frame(s, 1), "module"), "/opt/app/symjit");
	assert_frame(frame(s, 1), "jit_call", "symjit.c", "CALL_STUB");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	cr_assert_eq(system(cmd), 0);
	e2e_run_free(&r);
}

/* Whether a suspect's stack holds a frame named in a perf map whose
 * function mentions fn. */
static bool through_perf_map(json_object *s, const char *fn)
{
	json_object *stack = e2e_member(s, "stack");

	for (size_t i = 0; i < json_object_array_length(stack); i++) {
		json_object *f = json_object_array_get_idx(stack, i), *m, *name;

		if (json_object_object_get_ex(f, "module", &m) && m &&
		    strstr(json_object_get_string(m), "/tmp/perf-") &&
		    json_object_object_get_ex(f, "function", &name) && name &&
		    strstr(json_object_get_string(name), fn))
			return true;
	}
	return false;
}

/*
 * Node.js with --perf-basic-prof: a JavaScript function leaks Buffers whose
 * backing stores node mallocs in C++. The stacks run from node's allocator
 * through V8's builtins (DWARF) into JIT code (frame pointers, named by
 * node's perf map) and on to main. Whichever tier V8 ran leakyBuffers in,
 * the backing stores allocated through it are exactly what jsleak.js keeps.
 */
Test(e2e_symbolize, nodejs_jit_frames_through_its_perf_map, .timeout = 120)
{
	const char *cmd[] = { "/usr/bin/node", "--perf-basic-prof", "--interpreted-frames-native-stack", e2e_fixture("jsleak.js"), NULL };
	json_object *sus;
	struct e2e_run r;
	int64_t bytes = 0, blocks = 0;
	char map[64];

	run_fixture(&r, cmd);
	sus = e2e_member(r.report, "suspects");
	for (size_t i = 0; i < json_object_array_length(sus); i++) {
		json_object *s = json_object_array_get_idx(sus, i);

		/* the backing stores (node's C++ objects around them are
		 * allocated through leakyBuffers too, by V8's new) */
		const char *fn0;

		if (!through_perf_map(s, "leakyBuffers") || !(fn0 = str(frame(s, 0), "function")) ||
		    !strstr(fn0, "NodeArrayBufferAllocator"))
			continue;
		bytes += e2e_int(s, "bytes");
		blocks += e2e_int(s, "allocations");
	}
	cr_expect_eq(blocks, 100, "blocks through leakyBuffers: %lld\n%s", (long long)blocks, r.out);
	cr_expect_eq(bytes, 10000200, "bytes through leakyBuffers: %lld", (long long)bytes);
	snprintf(map, sizeof(map), "/tmp/perf-%d.map", first_pid(r.report));
	unlink(map);
	e2e_run_free(&r);
}
