// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for alerts: edge-triggered raising (once per episode), the
 * bounds (kept alerts, condition table) and the JSON-lines file, parsed back
 * line by line with json-c since other tools tail and parse it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "alerts.h"

static char ua_dir[64];
static char ua_path[128];

static void ua_setup(void)
{
	snprintf(ua_dir, sizeof(ua_dir), "/tmp/stray-ua-XXXXXX");
	cr_assert_not_null(mkdtemp(ua_dir));
	snprintf(ua_path, sizeof(ua_path), "%s/alerts.jsonl", ua_dir);
}

static void ua_teardown(void)
{
	unlink(ua_path);
	rmdir(ua_dir);
}

TestSuite(alerts, .init = ua_setup, .fini = ua_teardown);

/* The whole alerts file as a string (empty when missing). */
static char *ua_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n = 0;

	cr_assert_not_null(buf);
	if (f) {
		n = fread(buf, 1, (1 << 20) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* Split the file into lines; each must end in '\n' (no torn last line). */
static size_t ua_lines(const char *path, char lines[][4096], size_t max)
{
	char *buf = ua_slurp(path), *p = buf, *nl;
	size_t n = 0;

	while (*p) {
		nl = strchr(p, '\n');
		cr_assert_not_null(nl, "last line has no newline: %s", p);
		cr_assert_lt(n, max);
		cr_assert_lt((size_t)(nl - p), (size_t)4096);
		memcpy(lines[n], p, (size_t)(nl - p));
		lines[n][nl - p] = '\0';
		n++;
		p = nl + 1;
	}
	free(buf);
	return n;
}

static size_t ua_count_lines(const char *path)
{
	char *buf = ua_slurp(path);
	size_t n = 0;

	for (char *p = buf; *p; p++)
		n += *p == '\n';
	free(buf);
	return n;
}

static struct alert ua_heap(enum alert_kind kind, int pid, double value)
{
	struct alert al = {
		.t_s = 12.5, .kind = kind, .critical = kind == ALERT_HEAP_CRITICAL, .pid = pid,
		.value = value, .threshold = 1000.0,
	};

	snprintf(al.message, sizeof(al.message), "heap of %d is %.0f bytes", pid, value);
	return al;
}

Test(alerts, raise_once_while_active)
{
	struct alerts *a = alerts__new(ua_path, 16);
	struct alert al = ua_heap(ALERT_HEAP_WARN, 42, 2000);
	size_t n;

	cr_assert_not_null(a);
	cr_assert_eq(alerts__update(a, &al, 0, true), 1);
	cr_assert_eq(alerts__update(a, &al, 0, true), 0, "a persisting condition is raised again");
	cr_assert_eq(alerts__update(a, &al, 0, true), 0);
	cr_assert_eq(ua_count_lines(ua_path), 1);
	alerts__list(a, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(alerts__dropped(a), 0);
	alerts__free(a);
}

Test(alerts, clear_then_raise_again)
{
	struct alerts *a = alerts__new(ua_path, 16);
	struct alert al = ua_heap(ALERT_HEAP_GROWTH, 42, 2000);
	size_t n;

	cr_assert_not_null(a);
	cr_assert_eq(alerts__update(a, &al, 0, true), 1);
	cr_assert_eq(alerts__update(a, &al, 0, false), 0);
	cr_assert_eq(alerts__update(a, &al, 0, false), 0, "clearing twice is harmless");
	al.t_s = 20.0;
	cr_assert_eq(alerts__update(a, &al, 0, true), 1);
	cr_assert_eq(ua_count_lines(ua_path), 2);
	const struct alert *list = alerts__list(a, &n);
	cr_assert_eq(n, 2);
	cr_assert_float_eq(list[0].t_s, 12.5, 1e-9);
	cr_assert_float_eq(list[1].t_s, 20.0, 1e-9);
	alerts__free(a);
}

Test(alerts, clearing_unknown_condition_raises_nothing)
{
	struct alerts *a = alerts__new(NULL, 16);
	struct alert al = ua_heap(ALERT_HEAP_WARN, 1, 1);

	cr_assert_not_null(a);
	cr_assert_eq(alerts__update(a, &al, 0, false), 0);
	cr_assert_eq(alerts__update(a, &al, 0, true), 1, "NULL path still raises and keeps");
	alerts__free(a);
}

Test(alerts, conditions_are_independent)
{
	struct alerts *a = alerts__new(ua_path, 16);
	struct alert p1 = ua_heap(ALERT_HEAP_WARN, 1, 5000), p2 = ua_heap(ALERT_HEAP_WARN, 2, 5000);
	struct alert crit = ua_heap(ALERT_HEAP_CRITICAL, 1, 5000);
	struct alert site = { .kind = ALERT_SITE_GROWTH, .pid = 1 };

	cr_assert_not_null(a);
	cr_assert_eq(alerts__update(a, &p1, 0, true), 1);
	cr_assert_eq(alerts__update(a, &p2, 0, true), 1, "another pid");
	cr_assert_eq(alerts__update(a, &crit, 0, true), 1, "another kind");
	cr_assert_eq(alerts__update(a, &site, 0xabc, true), 1);
	cr_assert_eq(alerts__update(a, &site, 0xdef, true), 1, "another key");
	/* Clearing one leaves the others raised. */
	cr_assert_eq(alerts__update(a, &p1, 0, false), 0);
	cr_assert_eq(alerts__update(a, &p2, 0, true), 0);
	cr_assert_eq(alerts__update(a, &crit, 0, true), 0);
	cr_assert_eq(alerts__update(a, &site, 0xabc, true), 0);
	cr_assert_eq(alerts__update(a, &site, 0xdef, true), 0);
	cr_assert_eq(alerts__update(a, &p1, 0, true), 1);
	cr_assert_eq(ua_count_lines(ua_path), 6);
	alerts__free(a);
}

/* Check obj has exactly the given keys with the given types. */
static void ua_expect_keys(struct json_object *obj, const char *const *keys,
			   const enum json_type *types, size_t n)
{
	struct json_object *v;

	cr_assert(json_object_is_type(obj, json_type_object));
	cr_assert_eq((size_t)json_object_object_length(obj), n, "keys: %s",
		     json_object_to_json_string(obj));
	for (size_t i = 0; i < n; i++) {
		cr_assert(json_object_object_get_ex(obj, keys[i], &v), "missing %s", keys[i]);
		cr_assert(json_object_is_type(v, types[i]), "%s has type %s", keys[i],
			  json_type_to_name(json_object_get_type(v)));
	}
}

static const char *const ua_keys[] = { "t_s", "kind", "severity", "pid", "message", "value",
				       "threshold", "stack" };
static const enum json_type ua_types[] = { json_type_double, json_type_string, json_type_string,
					   json_type_int, json_type_string, json_type_double,
					   json_type_double, json_type_array };

static const char *ua_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

Test(alerts, heap_alert_lines_parse_with_exact_keys)
{
	struct alerts *a = alerts__new(ua_path, 16);
	struct alert warn = ua_heap(ALERT_HEAP_WARN, 4242, 2048.0);
	struct alert crit = ua_heap(ALERT_HEAP_CRITICAL, 4242, 1e9);
	char lines[2][4096];
	struct json_object *o, *v;

	cr_assert_not_null(a);
	/* A message with quotes, a slash and a newline must stay on one line. */
	snprintf(warn.message, sizeof(warn.message), "heap \"big\"\n/usr/bin/app");
	cr_assert_eq(alerts__update(a, &warn, 0, true), 1);
	cr_assert_eq(alerts__update(a, &crit, 0, true), 1);
	alerts__free(a);

	cr_assert_eq(ua_lines(ua_path, lines, 2), 2);
	o = json_tokener_parse(lines[0]);
	cr_assert_not_null(o, "not JSON: %s", lines[0]);
	ua_expect_keys(o, ua_keys, ua_types, 7);
	cr_assert_str_eq(ua_str(o, "kind"), "heap_warn");
	cr_assert_str_eq(ua_str(o, "severity"), "warning");
	cr_assert_str_eq(ua_str(o, "message"), "heap \"big\"\n/usr/bin/app");
	cr_assert_not_null(strstr(lines[0], "/usr/bin/app"), "slashes are not escaped");
	json_object_object_get_ex(o, "pid", &v);
	cr_assert_eq(json_object_get_int(v), 4242);
	json_object_object_get_ex(o, "t_s", &v);
	cr_assert_float_eq(json_object_get_double(v), 12.5, 1e-9);
	json_object_object_get_ex(o, "value", &v);
	cr_assert_float_eq(json_object_get_double(v), 2048.0, 1e-9);
	json_object_object_get_ex(o, "threshold", &v);
	cr_assert_float_eq(json_object_get_double(v), 1000.0, 1e-9);
	json_object_put(o);

	o = json_tokener_parse(lines[1]);
	cr_assert_not_null(o);
	ua_expect_keys(o, ua_keys, ua_types, 7);
	cr_assert_str_eq(ua_str(o, "kind"), "heap_critical");
	cr_assert_str_eq(ua_str(o, "severity"), "critical");
	json_object_put(o);
}

Test(alerts, non_finite_floats_are_null)
{
	struct alert al = ua_heap(ALERT_OOM_PROJECTION, 7, NAN);
	struct json_object *o = NULL, *v;

	al.threshold = INFINITY;
	o = alert__to_json(&al);
	cr_assert_not_null(o);
	cr_assert_str_eq(ua_str(o, "kind"), "oom_projection");
	cr_assert(json_object_object_get_ex(o, "value", &v));
	cr_assert_null(v);
	cr_assert(json_object_object_get_ex(o, "threshold", &v));
	cr_assert_null(v);
	json_object_put(o);
}

static struct report_frame ua_frames[] = {
	{ 0x401136, "/usr/bin/app", "leak_site", 0x16, "src/app.c", 42, false },
	{ 0x7F00DEADBEEF, "/usr/lib/x86_64-linux-gnu/libc.so.6", NULL, -1, NULL, 0, false },
	/* An offset without a function means nothing: null even if set. */
	{ 0x10, "[unknown]", NULL, 0x10, NULL, 0, false },
};

Test(alerts, site_alert_has_stack)
{
	struct alerts *a = alerts__new(ua_path, 16);
	struct report_frame frames[3];
	struct alert al = { .t_s = 3.0, .kind = ALERT_SITE_GROWTH, .pid = 99, .value = 65536,
			    .threshold = 0, .stack_hash = 0x1234, .nframes = 3, .frames = frames };
	char lines[1][4096];
	struct json_object *o, *stack, *f, *v;
	const struct alert *list;
	size_t n;

	static const char *const fkeys[] = { "address", "module", "function", "offset", "file",
					     "line" };
	static const enum json_type ftypes0[] = { json_type_string, json_type_string,
						  json_type_string, json_type_int,
						  json_type_string, json_type_int };
	static const enum json_type ftypes1[] = { json_type_string, json_type_string,
						  json_type_null, json_type_null, json_type_null,
						  json_type_null };

	cr_assert_not_null(a);
	memcpy(frames, ua_frames, sizeof(frames));
	snprintf(al.message, sizeof(al.message), "site grows");
	cr_assert_eq(alerts__update(a, &al, al.stack_hash, true), 1);

	/* The kept alert owns a copy of the frame array: the caller's array
	 * may be reused after the call; the strings are the symbolizer's. */
	memset(frames, 0, sizeof(frames));
	list = alerts__list(a, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(list[0].nframes, 3);
	cr_assert_neq(list[0].frames, frames);
	cr_assert_eq(list[0].frames[0].address, 0x401136);
	cr_assert_eq(list[0].frames[0].function, ua_frames[0].function, "string pointers kept");
	cr_assert_eq(list[0].stack_hash, 0x1234);
	alerts__free(a);

	cr_assert_eq(ua_lines(ua_path, lines, 1), 1);
	o = json_tokener_parse(lines[0]);
	cr_assert_not_null(o);
	ua_expect_keys(o, ua_keys, ua_types, 8);
	cr_assert_str_eq(ua_str(o, "kind"), "site_growth");
	cr_assert_str_eq(ua_str(o, "severity"), "warning");
	json_object_object_get_ex(o, "stack", &stack);
	cr_assert_eq(json_object_array_length(stack), 3);

	f = json_object_array_get_idx(stack, 0);
	ua_expect_keys(f, fkeys, ftypes0, 6);
	cr_assert_str_eq(ua_str(f, "address"), "0x401136");
	cr_assert_str_eq(ua_str(f, "module"), "/usr/bin/app");
	cr_assert_str_eq(ua_str(f, "function"), "leak_site");
	cr_assert_str_eq(ua_str(f, "file"), "src/app.c");
	json_object_object_get_ex(f, "offset", &v);
	cr_assert_eq(json_object_get_int64(v), 0x16);
	json_object_object_get_ex(f, "line", &v);
	cr_assert_eq(json_object_get_int(v), 42);

	f = json_object_array_get_idx(stack, 1);
	ua_expect_keys(f, fkeys, ftypes1, 6);
	cr_assert_str_eq(ua_str(f, "address"), "0x7f00deadbeef", "lowercase hex");
	cr_assert_str_eq(ua_str(f, "module"), "/usr/lib/x86_64-linux-gnu/libc.so.6");
	ua_expect_keys(json_object_array_get_idx(stack, 2), fkeys, ftypes1, 6);
	json_object_put(o);
}

Test(alerts, file_is_appended)
{
	int fd = open(ua_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct alerts *a;
	struct alert al = ua_heap(ALERT_HEAP_WARN, 5, 5000);
	char lines[3][4096];

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "{\"earlier\":1}\n", 14), 14);
	close(fd);

	a = alerts__new(ua_path, 16);
	cr_assert_not_null(a);
	cr_assert_eq(alerts__update(a, &al, 0, true), 1);
	alerts__free(a);
	/* A second run appends too. */
	a = alerts__new(ua_path, 16);
	cr_assert_not_null(a);
	cr_assert_eq(alerts__update(a, &al, 0, true), 1);
	alerts__free(a);

	cr_assert_eq(ua_lines(ua_path, lines, 3), 3);
	cr_assert_str_eq(lines[0], "{\"earlier\":1}");
	cr_assert_not_null(strstr(lines[1], "\"heap_warn\""));
	cr_assert_not_null(strstr(lines[2], "\"heap_warn\""));
}

Test(alerts, new_file_mode_is_0644)
{
	struct alerts *a;
	struct stat st;
	mode_t old = umask(022);

	a = alerts__new(ua_path, 1);
	umask(old);
	cr_assert_not_null(a);
	cr_assert_eq(stat(ua_path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	alerts__free(a);
}

Test(alerts, kept_alerts_are_bounded)
{
	struct alerts *a = alerts__new(ua_path, 2);
	struct alert al = ua_heap(ALERT_HEAP_WARN, 0, 5000);
	size_t n;

	cr_assert_not_null(a);
	for (int pid = 1; pid <= 5; pid++) {
		al.pid = pid;
		cr_assert_eq(alerts__update(a, &al, 0, true), 1);
	}
	const struct alert *list = alerts__list(a, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(list[0].pid, 1);
	cr_assert_eq(list[1].pid, 2);
	cr_assert_eq(alerts__dropped(a), 3);
	cr_assert_eq(ua_count_lines(ua_path), 5, "dropped alerts are still written");
	alerts__free(a);
}

Test(alerts, condition_table_is_bounded)
{
	struct alerts *a = alerts__new(NULL, 0);
	struct alert al = { .kind = ALERT_SITE_GROWTH, .pid = 3 };
	uint64_t key;

	cr_assert_not_null(a);
	for (key = 1; key <= 4096; key++)
		cr_assert_eq(alerts__update(a, &al, key, true), 1, "key %lu", (unsigned long)key);
	cr_assert_eq(alerts__update(a, &al, 5000, true), 0);
	cr_assert_eq(alerts__untracked(a), 1);
	cr_assert_eq(alerts__dropped(a), 4096, "max_kept 0 keeps nothing");
	/* Clearing one makes room. */
	cr_assert_eq(alerts__update(a, &al, 17, false), 0);
	cr_assert_eq(alerts__update(a, &al, 5000, true), 1);
	cr_assert_eq(alerts__update(a, &al, 5000, true), 0);
	cr_assert_eq(alerts__update(a, &al, 4096, true), 0, "others still raised");
	alerts__free(a);
}

/*
 * The table deletes by shifting entries back; compare it against a plain
 * array model over a long random sequence, so a broken probe chain (a
 * raised condition no longer found, or raised twice) shows up.
 */
Test(alerts, table_matches_model)
{
	enum { NKEYS = 2000 }; /* 2 * NKEYS stays under the 4096 bound */
	static bool model[2][NKEYS];
	struct alerts *a = alerts__new(NULL, 0);
	struct alert al = { .kind = ALERT_SITE_GROWTH };
	unsigned int seed = 12345;

	cr_assert_not_null(a);
	/* Mostly active, so the table runs near its bound (load ~0.45) with
	 * long probe runs, some wrapping around the end of the slots. */
	for (int i = 0; i < 1000000; i++) {
		int pid = rand_r(&seed) % 2, k = rand_r(&seed) % NKEYS;
		bool active = rand_r(&seed) % 8 != 0;
		int expect = active && !model[pid][k];

		al.pid = pid;
		cr_assert_eq(alerts__update(a, &al, (uint64_t)k, active), expect,
			     "step %d pid %d key %d", i, pid, k);
		model[pid][k] = active;
	}
	alerts__free(a);
}

Test(alerts, stdout_is_not_closed)
{
	int saved = dup(STDOUT_FILENO), fd = open(ua_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct alerts *a;
	struct alert al = ua_heap(ALERT_HEAP_WARN, 8, 5000);
	int rc;

	cr_assert_geq(saved, 0);
	cr_assert_geq(fd, 0);
	fflush(stdout);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	a = alerts__new("-", 4);
	rc = a ? alerts__update(a, &al, 0, true) : -1;
	alerts__free(a);
	fd = fcntl(STDOUT_FILENO, F_GETFD);
	dup2(saved, STDOUT_FILENO);
	close(saved);

	cr_assert_eq(rc, 1);
	cr_assert_geq(fd, 0, "alerts__free closed stdout");
	cr_assert_eq(ua_count_lines(ua_path), 1);
}

Test(alerts, unwritable_path_fails_with_errno)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/no-such-dir/alerts.jsonl", ua_dir);
	errno = 0;
	cr_assert_null(alerts__new(path, 4));
	cr_assert_eq(errno, ENOENT);
	errno = 0;
	cr_assert_null(alerts__new(ua_dir, 4), "a directory");
	cr_assert_eq(errno, EISDIR);
}

Test(alerts, null_arguments)
{
	struct alert al = ua_heap(ALERT_HEAP_WARN, 1, 1);
	size_t n = 99;

	alerts__free(NULL);
	cr_assert_eq(alerts__update(NULL, &al, 0, true), -EINVAL);
	cr_assert_null(alerts__list(NULL, &n));
	cr_assert_eq(n, 0);
	cr_assert_eq(alerts__dropped(NULL), 0);
	cr_assert_null(alert__to_json(NULL));
	cr_assert_str_eq(alert_kind__name(ALERT_KIND_NR), "unknown");
	cr_assert_str_eq(alert_kind__name(ALERT_HEAP_GROWTH), "heap_growth");
}
