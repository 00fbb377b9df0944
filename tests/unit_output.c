// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for the report writers (JSON, text) and the atomic file writer.
 * The JSON report is parsed back with json-c and checked key by key: other
 * tools depend on its exact shape.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <math.h>
#include "json_util.h"
#include <json-c/json.h>

#include "output.h"

/* ---- a report with two suspects, one of them partly unsymbolized ---- */

static const int uo_pids[] = { 4242, 4343 };
static char *const uo_cmd[] = { "./app", "--flag", "a/b", NULL };

static struct report_frame uo_frames_a[] = {
	{ 0x401136, "/usr/bin/app", "leak_site", 0x16, "src/app.c", 42, false },
	{ 0x7F00DEADBEEF, "/usr/lib/x86_64-linux-gnu/libc.so.6", NULL, -1, NULL, 0, false },
};
static struct report_frame uo_frames_b[] = {
	{ 0x401200, "/usr/bin/app", "cache_fill", 0x8, NULL, 0, false },
};

/* bytes of suspect A is above INT64_MAX: it only survives as a uint64. */
#define UO_BIG_BYTES (UINT64_C(1) << 63 | 5)

static const struct report_suspect uo_suspects[] = {
	{ .pid = 4242, .bytes = UO_BIG_BYTES, .allocations = 4, .oldest_age_s = 12.5,
	  .total_bytes = 8192, .total_allocations = 8, .frees = 4, .growth_bytes_per_s = 64.5,
	  .trend_p = 0.001, .score = 120.25, .verdict = "leak", .rank = 1,
	  .nframes = 2, .frames = uo_frames_a },
	{ .pid = 4343, .bytes = 1024, .allocations = 1, .oldest_age_s = 3.25,
	  .total_bytes = 4096, .total_allocations = 4, .frees = 3, .growth_bytes_per_s = 0,
	  .trend_p = NAN, .score = 2.5, .verdict = "stable", .rank = 2,
	  .nframes = 1, .frames = uo_frames_b },
};

static const struct report_counter uo_dropped[] = {
	{ "alloc_map_full", 3 },
	{ "stack_collisions", 0 },
	{ "missing_entry", 7 },
};

static const struct report_heap_sample uo_samples[] = {
	{ 0.0, 10485760, 8388608, 0 },
	{ 1.0, 11534336, 9437184, 4096 },
	{ 2.0, 12582912, 10485760, 8192 },
};

static const char *const uo_notes[] = {
	"allocations made before attach are not reported",
	"stacks are truncated at 64 frames",
};

static struct report uo_report(void)
{
	struct report r = {
		.npids = 2, .pids = uo_pids, .command = uo_cmd,
		.has_exit_code = true, .exit_code = 3,
		.duration_s = 60.0,
		.allocations = 100, .frees = 90, .outstanding_bytes = 5120,
		.outstanding_allocations = 10, .unmatched_frees = 6,
		.ndropped = 3, .dropped = uo_dropped,
		.nsuspects = 2, .suspects = uo_suspects,
		.nsamples = 3, .samples = uo_samples,
		.rss_slope_bytes_per_hour = 3774873600.0,
		.tracked_slope_bytes_per_hour = 14745600.5,
		.nnotes = 2, .notes = uo_notes,
	};
	return r;
}

/* ---- helpers ---- */

/* Run a writer into memory; returns the NUL-terminated output (free it). */
static char *uo_render_json(const struct report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cr_assert_eq(report__write_json(r, f), 0);
	cr_assert_eq(fclose(f), 0);
	return buf;
}

static char *uo_render_text(const struct report *r, int top)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cr_assert_eq(report__write_text(r, f, top), 0);
	cr_assert_eq(fclose(f), 0);
	return buf;
}

/* Fetch obj[key], asserting it exists with the given type. */
static struct json_object *uo_get(struct json_object *obj, const char *key, enum json_type t)
{
	struct json_object *v = NULL;

	cr_assert(json_object_object_get_ex(obj, key, &v), "missing key \"%s\"", key);
	cr_assert_eq(json_object_get_type(v), t, "key \"%s\": type %s, want %s", key,
		     json_type_to_name(json_object_get_type(v)), json_type_to_name(t));
	return v;
}

static void uo_assert_null(struct json_object *obj, const char *key)
{
	uo_get(obj, key, json_type_null);
}

static uint64_t uo_u64(struct json_object *obj, const char *key)
{
	return json_object_get_uint64(uo_get(obj, key, json_type_int));
}

static double uo_dbl(struct json_object *obj, const char *key)
{
	return json_object_get_double(uo_get(obj, key, json_type_double));
}

static const char *uo_str(struct json_object *obj, const char *key)
{
	return json_object_get_string(uo_get(obj, key, json_type_string));
}

static struct json_object *uo_parse(const char *text)
{
	struct json_object *root = json_tokener_parse(text);

	cr_assert_not_null(root, "report is not valid JSON:\n%s", text);
	return root;
}

/* ---- JSON ---- */

Test(json_writer, top_level_and_target)
{
	struct report r = uo_report();
	char *text = uo_render_json(&r);
	struct json_object *root = uo_parse(text), *t, *a;

	cr_assert_eq(text[strlen(text) - 1], '\n', "document must end with a newline");
	cr_assert_null(strstr(text, "\\/"), "slashes must not be escaped");
	cr_assert_eq(json_object_object_length(root), 12);
	cr_assert_eq(uo_u64(root, "version"), 1);
	/* exact tracking (no --sample) */
	cr_assert(!json_object_get_boolean(uo_get(root, "sampled", json_type_boolean)));
	uo_assert_null(root, "sample_bytes");

	t = uo_get(root, "target", json_type_object);
	a = uo_get(t, "pids", json_type_array);
	cr_assert_eq(json_object_array_length(a), 2);
	cr_assert_eq(json_object_get_int(json_object_array_get_idx(a, 0)), 4242);
	cr_assert_eq(json_object_get_int(json_object_array_get_idx(a, 1)), 4343);
	a = uo_get(t, "command", json_type_array);
	cr_assert_eq(json_object_array_length(a), 3);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(a, 0)), "./app");
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(a, 2)), "a/b");
	cr_assert_eq(uo_u64(t, "exit_code"), 3);

	/* A duration that happens to be integral must still be a float. */
	cr_assert_float_eq(uo_dbl(uo_get(root, "window", json_type_object), "duration_s"),
			   60.0, 1e-12);
	cr_assert_eq(json_object_array_length(uo_get(root, "timers", json_type_array)), 0);
	cr_assert_eq(json_object_array_length(uo_get(root, "itimers", json_type_array)), 0);
	cr_assert_eq(json_object_array_length(uo_get(root, "alerts", json_type_array)), 0);
	json_object_put(root);
	free(text);
}

Test(json_writer, pid_mode_has_null_command_and_exit_code)
{
	struct report r = uo_report();
	char *text;
	struct json_object *root, *t;

	r.command = NULL;
	r.has_exit_code = false;
	text = uo_render_json(&r);
	root = uo_parse(text);
	t = uo_get(root, "target", json_type_object);
	uo_assert_null(t, "command");
	uo_assert_null(t, "exit_code");
	json_object_put(root);
	free(text);
}

Test(json_writer, totals_and_dropped)
{
	struct report r = uo_report();
	char *text = uo_render_json(&r);
	struct json_object *root = uo_parse(text), *t, *d;

	t = uo_get(root, "totals", json_type_object);
	cr_assert_eq(uo_u64(t, "allocations"), 100);
	cr_assert_eq(uo_u64(t, "frees"), 90);
	cr_assert_eq(uo_u64(t, "outstanding_bytes"), 5120);
	cr_assert_eq(uo_u64(t, "outstanding_allocations"), 10);
	cr_assert_eq(uo_u64(t, "unmatched_frees"), 6);
	d = uo_get(t, "dropped", json_type_object);
	/* Every counter is listed, zero or not. */
	cr_assert_eq(json_object_object_length(d), 3);
	cr_assert_eq(uo_u64(d, "alloc_map_full"), 3);
	cr_assert_eq(uo_u64(d, "stack_collisions"), 0);
	cr_assert_eq(uo_u64(d, "missing_entry"), 7);
	json_object_put(root);
	free(text);
}

Test(json_writer, suspects_and_frames)
{
	struct report r = uo_report();
	char *text = uo_render_json(&r);
	struct json_object *root = uo_parse(text), *arr, *s, *stack, *f;

	arr = uo_get(root, "suspects", json_type_array);
	cr_assert_eq(json_object_array_length(arr), 2);

	s = json_object_array_get_idx(arr, 0);
	cr_assert_eq(json_object_object_length(s), 14);
	/* a suspect without a kind set (heap by default) says "heap" */
	cr_assert_str_eq(uo_str(s, "kind"), "heap");
	cr_assert_float_eq(uo_dbl(s, "growth_bytes_per_s"), 64.5, 1e-12);
	cr_assert_float_eq(uo_dbl(s, "trend_p"), 0.001, 1e-15);
	cr_assert_float_eq(uo_dbl(s, "score"), 120.25, 1e-12);
	cr_assert_str_eq(uo_str(s, "verdict"), "leak");
	cr_assert_eq(uo_u64(s, "rank"), 1);
	/* a NaN p-value (not assessed) must be written as null */
	uo_assert_null(json_object_array_get_idx(arr, 1), "trend_p");
	cr_assert_eq(uo_u64(s, "pid"), 4242);
	cr_assert_eq(uo_u64(s, "bytes"), UO_BIG_BYTES, "uint64 above INT64_MAX mangled");
	cr_assert_eq(uo_u64(s, "allocations"), 4);
	cr_assert_float_eq(uo_dbl(s, "oldest_age_s"), 12.5, 1e-12);
	cr_assert_eq(uo_u64(s, "total_bytes"), 8192);
	cr_assert_eq(uo_u64(s, "total_allocations"), 8);
	cr_assert_eq(uo_u64(s, "frees"), 4);

	stack = uo_get(s, "stack", json_type_array);
	cr_assert_eq(json_object_array_length(stack), 2);
	f = json_object_array_get_idx(stack, 0);
	cr_assert_eq(json_object_object_length(f), 6);
	cr_assert_str_eq(uo_str(f, "address"), "0x401136");
	cr_assert_str_eq(uo_str(f, "module"), "/usr/bin/app");
	cr_assert_str_eq(uo_str(f, "function"), "leak_site");
	cr_assert_eq(uo_u64(f, "offset"), 0x16);
	cr_assert_str_eq(uo_str(f, "file"), "src/app.c");
	cr_assert_eq(uo_u64(f, "line"), 42);

	/* Unknown function: offset, file and line are all null; hex is lowercase. */
	f = json_object_array_get_idx(stack, 1);
	cr_assert_str_eq(uo_str(f, "address"), "0x7f00deadbeef");
	cr_assert_str_eq(uo_str(f, "module"), "/usr/lib/x86_64-linux-gnu/libc.so.6");
	uo_assert_null(f, "function");
	uo_assert_null(f, "offset");
	uo_assert_null(f, "file");
	uo_assert_null(f, "line");

	s = json_object_array_get_idx(arr, 1);
	cr_assert_eq(uo_u64(s, "pid"), 4343);
	cr_assert_eq(uo_u64(s, "bytes"), 1024);
	cr_assert_float_eq(uo_dbl(s, "oldest_age_s"), 3.25, 1e-12);
	f = json_object_array_get_idx(uo_get(s, "stack", json_type_array), 0);
	/* Known function without line info: offset kept, file and line null. */
	cr_assert_str_eq(uo_str(f, "function"), "cache_fill");
	cr_assert_eq(uo_u64(f, "offset"), 8);
	uo_assert_null(f, "file");
	uo_assert_null(f, "line");
	json_object_put(root);
	free(text);
}

Test(json_writer, heap_and_notes)
{
	struct report r = uo_report();
	char *text = uo_render_json(&r);
	struct json_object *root = uo_parse(text), *h, *arr, *s, *notes;

	h = uo_get(root, "heap", json_type_object);
	arr = uo_get(h, "samples", json_type_array);
	cr_assert_eq(json_object_array_length(arr), 3);
	s = json_object_array_get_idx(arr, 1);
	cr_assert_float_eq(uo_dbl(s, "t_s"), 1.0, 1e-12);
	cr_assert_eq(uo_u64(s, "rss_bytes"), 11534336);
	cr_assert_eq(uo_u64(s, "anon_bytes"), 9437184);
	cr_assert_eq(uo_u64(s, "tracked_bytes"), 4096);
	cr_assert_float_eq(uo_dbl(h, "rss_slope_bytes_per_hour"), 3774873600.0, 1e-3);
	/* Exact round trip, not just close. */
	cr_assert_eq(uo_dbl(h, "tracked_slope_bytes_per_hour"), 14745600.5);

	notes = uo_get(root, "notes", json_type_array);
	cr_assert_eq(json_object_array_length(notes), 2);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(notes, 0)),
			 "allocations made before attach are not reported");
	json_object_put(root);
	free(text);
}

/* --sample: the report says so, and each heap suspect carries its error. */
Test(json_writer, sampled_report_marks_estimates)
{
	struct report_suspect sus[2] = { uo_suspects[0], uo_suspects[1] };
	struct report r = uo_report();
	struct json_object *root, *s;
	char *text;

	sus[0].sampled = true;
	sus[0].samples = 1600;
	sus[0].relative_error = 0.025;
	r.suspects = sus;
	r.sample_bytes = 524288;
	text = uo_render_json(&r);
	root = uo_parse(text);
	cr_assert(json_object_get_boolean(uo_get(root, "sampled", json_type_boolean)));
	cr_assert_eq(uo_u64(root, "sample_bytes"), 524288);
	s = json_object_array_get_idx(uo_get(root, "suspects", json_type_array), 0);
	cr_assert(json_object_get_boolean(uo_get(s, "sampled", json_type_boolean)));
	cr_assert_eq(uo_u64(s, "samples"), 1600);
	cr_assert_float_eq(uo_dbl(s, "relative_error"), 0.025, 1e-12);
	/* an mmap site is exact even in sampled mode */
	s = json_object_array_get_idx(uo_get(root, "suspects", json_type_array), 1);
	cr_assert(!json_object_get_boolean(uo_get(s, "sampled", json_type_boolean)));
	json_object_put(root);
	free(text);
	text = uo_render_text(&r, 0);
	cr_assert_not_null(strstr(text, "sampled every 524288 bytes"), "%s", text);
	cr_assert_not_null(strstr(text, "estimated from 1600 samples, relative error 2.5%"), "%s", text);
	free(text);
}

Test(json_writer, empty_report_keeps_every_key)
{
	struct report r = { .duration_s = 0.5 };
	char *text = uo_render_json(&r);
	struct json_object *root = uo_parse(text);

	cr_assert_eq(json_object_object_length(root), 12);
	cr_assert_eq(json_object_array_length(uo_get(root, "suspects", json_type_array)), 0);
	cr_assert_eq(json_object_array_length(
			     uo_get(uo_get(root, "heap", json_type_object), "samples",
				    json_type_array)), 0);
	cr_assert_eq(json_object_object_length(
			     uo_get(uo_get(root, "totals", json_type_object), "dropped",
				    json_type_object)), 0);
	json_object_put(root);
	free(text);
}

Test(json_writer, write_error_is_eio)
{
	struct report r = uo_report();
	/* /dev/full accepts open but fails every write with ENOSPC; unbuffered
	 * so that the failure shows up during the writer, not at fclose. */
	FILE *f = fopen("/dev/full", "w");

	cr_assert_not_null(f);
	setvbuf(f, NULL, _IONBF, 0);
	cr_assert_eq(report__write_json(&r, f), -EIO);
	fclose(f);
}

/* ---- text ---- */

Test(text_writer, header_suspects_summary_heap_notes)
{
	struct report r = uo_report();
	char *text = uo_render_text(&r, 0);

	cr_assert_not_null(strstr(text, "4242,4343"), "%s", text);
	cr_assert_not_null(strstr(text, "./app --flag a/b"), "%s", text);
	cr_assert_not_null(strstr(text, "window 60.0 s"), "%s", text);
	cr_assert_not_null(strstr(text, "exit code 3"), "%s", text);
	cr_assert_not_null(strstr(text,
				  "9223372036854775813 bytes in 4 allocations from pid 4242 "
				  "(oldest 12.5 s, site allocated 8192 bytes in 8 allocations, "
				  "4 frees)\n"), "%s", text);
	cr_assert_not_null(strstr(text,
				  "    #0 0x401136 in leak_site+0x16 src/app.c:42 (/usr/bin/app)\n"),
			   "%s", text);
	cr_assert_not_null(strstr(text,
				  "    #1 0x7f00deadbeef in ?? "
				  "(/usr/lib/x86_64-linux-gnu/libc.so.6)\n"), "%s", text);
	cr_assert_not_null(strstr(text, "1024 bytes in 1 allocations from pid 4343"), "%s", text);
	cr_assert_not_null(strstr(text, "    #0 0x401200 in cache_fill+0x8 (/usr/bin/app)\n"),
			   "%s", text);
	/* Summary: totals, unmatched frees, non-zero drops only. */
	cr_assert_not_null(strstr(text, "5120 bytes (5.0 KiB) outstanding in 10 allocations"),
			   "%s", text);
	cr_assert_not_null(strstr(text, "100 allocations, 90 frees"), "%s", text);
	cr_assert_not_null(strstr(text, "6 unmatched frees"), "%s", text);
	cr_assert_not_null(strstr(text, "alloc_map_full=3"), "%s", text);
	cr_assert_not_null(strstr(text, "missing_entry=7"), "%s", text);
	cr_assert_null(strstr(text, "stack_collisions"), "%s", text);
	/* Heap: first and last sample, slopes. */
	cr_assert_not_null(strstr(text, "rss 10485760 (10.0 MiB)"), "%s", text);
	cr_assert_not_null(strstr(text, "rss 12582912 (12.0 MiB)"), "%s", text);
	cr_assert_null(strstr(text, "rss 11534336"), "middle sample printed:\n%s", text);
	cr_assert_not_null(strstr(text, "rss +3774873600 bytes/hour (3.5 GiB/h)"), "%s", text);
	cr_assert_not_null(strstr(text, "allocations made before attach are not reported"),
			   "%s", text);
	cr_assert_null(strstr(text, "no leak suspects"), "%s", text);
	free(text);
}

Test(text_writer, top_limits_suspects)
{
	struct report r = uo_report();
	char *text = uo_render_text(&r, 1);

	cr_assert_not_null(strstr(text, "from pid 4242"), "%s", text);
	cr_assert_null(strstr(text, "from pid 4343"), "top=1 listed a second suspect:\n%s", text);
	cr_assert_null(strstr(text, "cache_fill"), "%s", text);
	cr_assert_not_null(strstr(text, "1 more suspects not shown"), "%s", text);
	free(text);

	/* top larger than the list shows everything and mentions nothing hidden. */
	text = uo_render_text(&r, 5);
	cr_assert_not_null(strstr(text, "from pid 4343"), "%s", text);
	cr_assert_null(strstr(text, "not shown"), "%s", text);
	free(text);
}

Test(text_writer, no_suspects_is_said_clearly)
{
	struct report r = uo_report();
	char *text;

	r.nsuspects = 0;
	r.ndropped = 0;
	r.nsamples = 0;
	text = uo_render_text(&r, 0);
	cr_assert_not_null(strstr(text, "no leak suspects: "), "%s", text);
	cr_assert_not_null(strstr(text, "dropped: none"), "%s", text);
	cr_assert_not_null(strstr(text, "heap: no samples"), "%s", text);
	free(text);
}

/* ---- atomic file writes ---- */

struct uo_fill_ctx {
	const char *text;
	int ret;
};

static int uo_fill(FILE *out, void *ctx)
{
	struct uo_fill_ctx *c = ctx;

	fputs(c->text, out);
	return c->ret;
}

static char uo_dir[] = "/tmp/stray-unit-output.XXXXXX";
static char uo_path[sizeof(uo_dir) + 32];

static void uo_setup(void)
{
	strcpy(uo_dir, "/tmp/stray-unit-output.XXXXXX");
	cr_assert_not_null(mkdtemp(uo_dir));
	snprintf(uo_path, sizeof(uo_path), "%s/report.json", uo_dir);
}

static void uo_teardown(void)
{
	DIR *d = opendir(uo_dir);
	struct dirent *e;
	char p[sizeof(uo_path) + 256];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", uo_dir, e->d_name);
		if (unlink(p) == 0)
			continue;
		/* what rename_failure_cleans_up leaves when it fails midway */
		snprintf(p, sizeof(p), "%s/%s/keep", uo_dir, e->d_name);
		rmdir(p);
		snprintf(p, sizeof(p), "%s/%s", uo_dir, e->d_name);
		rmdir(p);
	}
	closedir(d);
	rmdir(uo_dir);
}

static char *uo_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 4096);

	cr_assert_not_null(f);
	cr_assert_not_null(buf);
	cr_assert_lt(fread(buf, 1, 4095, f), 4095, "file unexpectedly large");
	fclose(f);
	return buf;
}

/* Number of directory entries besides . and .. */
static int uo_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

TestSuite(atomic_write, .init = uo_setup, .fini = uo_teardown);

Test(atomic_write, creates_and_replaces)
{
	struct uo_fill_ctx c1 = { "first version\n", 0 }, c2 = { "second\n", 0 };
	struct stat st;
	char *s;

	cr_assert_eq(output__write_atomic(uo_path, uo_fill, &c1), 0);
	s = uo_slurp(uo_path);
	cr_assert_str_eq(s, "first version\n");
	free(s);

	cr_assert_eq(output__write_atomic(uo_path, uo_fill, &c2), 0);
	s = uo_slurp(uo_path);
	cr_assert_str_eq(s, "second\n");
	free(s);

	cr_assert_eq(stat(uo_path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	cr_assert_eq(uo_count_entries(uo_dir), 1, "temp file left behind");
}

Test(atomic_write, failed_fill_keeps_old_file)
{
	struct uo_fill_ctx good = { "complete report\n", 0 };
	struct uo_fill_ctx bad = { "half a rep", -ENOSPC };
	char *s;

	cr_assert_eq(output__write_atomic(uo_path, uo_fill, &good), 0);
	cr_assert_eq(output__write_atomic(uo_path, uo_fill, &bad), -ENOSPC);
	s = uo_slurp(uo_path);
	cr_assert_str_eq(s, "complete report\n");
	free(s);
	cr_assert_eq(uo_count_entries(uo_dir), 1, "temp file left behind");
}

Test(atomic_write, failed_fill_creates_nothing)
{
	struct uo_fill_ctx bad = { "x", -EIO };

	cr_assert_eq(output__write_atomic(uo_path, uo_fill, &bad), -EIO);
	cr_assert_eq(access(uo_path, F_OK), -1);
	cr_assert_eq(uo_count_entries(uo_dir), 0, "temp file left behind");
}

Test(atomic_write, rename_failure_cleans_up)
{
	struct uo_fill_ctx c = { "x", 0 };
	char sub[sizeof(uo_path) + 16];

	/* Renaming a file over a non-empty directory fails at the last step,
	 * after the temp file was written and synced. */
	snprintf(sub, sizeof(sub), "%s/keep", uo_path);
	cr_assert_eq(mkdir(uo_path, 0755), 0);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_lt(output__write_atomic(uo_path, uo_fill, &c), 0);
	cr_assert_eq(uo_count_entries(uo_dir), 1, "temp file left behind");
	rmdir(sub);
	rmdir(uo_path);
}

Test(atomic_write, missing_directory_is_enoent)
{
	struct uo_fill_ctx c = { "x", 0 };
	char path[sizeof(uo_path) + 32];

	snprintf(path, sizeof(path), "%s/no/such/dir/report.json", uo_dir);
	cr_assert_eq(output__write_atomic(path, uo_fill, &c), -ENOENT);
	cr_assert_eq(output__write_atomic(NULL, uo_fill, &c), -EINVAL);
}

/* The real use: the JSON writer as the fill function. */
static int uo_fill_json(FILE *out, void *ctx)
{
	return report__write_json(ctx, out);
}

Test(atomic_write, json_report_round_trip)
{
	struct report r = uo_report();
	struct json_object *root;

	cr_assert_eq(output__write_atomic(uo_path, uo_fill_json, &r), 0);
	root = json_object_from_file(uo_path);
	cr_assert_not_null(root);
	cr_assert_eq(json_object_array_length(uo_get(root, "suspects", json_type_array)), 2);
	json_object_put(root);
}

/* Anonymous mmap regions: the suspect's kind, the totals kept apart, and
 * the text report's marker and summary line. */
Test(json_writer, mmap_kind_and_totals)
{
	struct report r = uo_report();
	struct report_suspect sus[2];
	struct json_object *root, *t, *arr;
	char *text;

	memcpy(sus, uo_suspects, sizeof(sus));
	sus[0].kind = "mmap";
	sus[1].kind = "heap";
	r.suspects = sus;
	r.mmap_regions = 5;
	r.munmaps = 2;
	r.outstanding_mmap_bytes = 12288;
	r.outstanding_mmap_regions = 3;
	r.unmatched_unmaps = 1;
	text = uo_render_json(&r);
	root = uo_parse(text);
	t = uo_get(root, "totals", json_type_object);
	cr_assert_eq(uo_u64(t, "outstanding_bytes"), 5120, "heap totals unchanged");
	cr_assert_eq(uo_u64(t, "mmap_regions"), 5);
	cr_assert_eq(uo_u64(t, "munmaps"), 2);
	cr_assert_eq(uo_u64(t, "outstanding_mmap_bytes"), 12288);
	cr_assert_eq(uo_u64(t, "outstanding_mmap_regions"), 3);
	cr_assert_eq(uo_u64(t, "unmatched_unmaps"), 1);
	arr = uo_get(root, "suspects", json_type_array);
	cr_assert_str_eq(uo_str(json_object_array_get_idx(arr, 0), "kind"), "mmap");
	cr_assert_str_eq(uo_str(json_object_array_get_idx(arr, 1), "kind"), "heap");
	json_object_put(root);
	free(text);
	text = uo_render_text(&r, 0);
	cr_assert(strstr(text, "[mmap] "), "%s", text);
	cr_assert(strstr(text, "mmap: 12288 bytes (12.0 KiB) outstanding in 3 anonymous regions; 5 mapped, 2 unmapped"),
		  "%s", text);
	free(text);
}

/* Only inlined frames carry "inlined" (true); the others keep their shape. */
Test(json_writer, inlined_frames_are_marked)
{
	struct report_frame inl = { 0x401136, "/usr/bin/app", "helper", -1, "src/app.c", 7, true };
	struct json_object *o = json__frame(&inl), *v;

	cr_assert_not_null(o);
	cr_assert(json_object_object_get_ex(o, "inlined", &v) && json_object_get_boolean(v));
	uo_assert_null(o, "offset");
	json_object_put(o);
	o = json__frame(&uo_frames_a[0]);
	cr_assert_not(json_object_object_get_ex(o, "inlined", &v));
	json_object_put(o);
}
