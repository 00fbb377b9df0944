// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Leak analysis over time (issue 6), each scenario run for real against
 * the growth fixture: a steady leak raises heap_growth and site_growth
 * early and once; a cache that fills and then churns raises nothing over
 * two minutes and ranks below a leak in the same process; a sawtooth
 * raises nothing; a leak in a memory cgroup with a limit raises
 * oom_projection with a projected time near the truth. Also --fail-on-leak,
 * --report-every, --heap-warn and option errors.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common_e2e.h"

#define KIB 1024
#define MIB (1024 * 1024)

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
}

static const char *string(json_object *obj, const char *key)
{
	json_object *v = e2e_member(obj, key);

	cr_assert(json_object_is_type(v, json_type_string), "\"%s\" is not a string: %s", key,
		  json_object_to_json_string(obj));
	return json_object_get_string(v);
}

static bool stack_has(json_object *obj, const char *fn)
{
	json_object *stack = e2e_member(obj, "stack"), *f;

	cr_assert(json_object_is_type(stack, json_type_array));
	for (size_t i = 0; i < json_object_array_length(stack); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(stack, i), "function", &f) &&
		    json_object_is_type(f, json_type_string) && !strcmp(json_object_get_string(f), fn))
			return true;
	return false;
}

/* ---- the --alerts file ---------------------------------------------------- */

static int alerts_seq;

/* A fresh path for an --alerts file (absent). */
static void alerts_path(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/stray-e2e-alerts-%d-%d.jsonl", getpid(), alerts_seq++);
	unlink(buf);
}

/* Each test's .fini: remove its --alerts files, also when it failed. */
static void remove_alerts_files(void)
{
	char path[256];

	for (int i = 0; i < alerts_seq; i++) {
		snprintf(path, sizeof(path), "/tmp/stray-e2e-alerts-%d-%d.jsonl", getpid(), i);
		unlink(path);
	}
}

/* One alert object as the issue defines it: t_s, kind, severity, pid,
 * message, value, threshold, and a stack for site_growth. */
static void assert_alert_shape(json_object *a, const char *line)
{
	static const char *const kinds[] = { "heap_growth", "heap_warn", "heap_critical",
					     "oom_projection", "site_growth" };
	const char *kind, *sev;
	bool known = false;

	cr_assert(json_object_is_type(a, json_type_object), "alert is not an object: %s", line);
	cr_assert_geq(e2e_number(a, "t_s"), 0, "negative t_s: %s", line);
	kind = string(a, "kind");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		known |= !strcmp(kind, kinds[i]);
	cr_assert(known, "unknown alert kind: %s", line);
	sev = string(a, "severity");
	cr_assert(!strcmp(sev, "warning") || !strcmp(sev, "critical"), "bad severity: %s", line);
	cr_assert(json_object_is_type(e2e_member(a, "pid"), json_type_int), "pid: %s", line);
	string(a, "message");
	e2e_number(a, "value");
	e2e_number(a, "threshold");
	if (!strcmp(kind, "site_growth"))
		cr_assert(json_object_is_type(e2e_member(a, "stack"), json_type_array) &&
				  json_object_array_length(e2e_member(a, "stack")) > 0,
			  "site_growth without a stack: %s", line);
}

/* The alerts in the file at path, as a JSON array (empty when the file is
 * absent or empty). Every line must be one complete JSON object ending in a
 * newline. *text gets the file's content (or "") for messages. */
static json_object *read_alerts(const char *path, char **text)
{
	json_object *arr = json_object_new_array();
	char *s = e2e_slurp(path), *line, *nl;

	if (!s)
		s = strdup("");
	for (line = s; *line; line = nl + 1) {
		char buf[16384];
		json_object *a;
		size_t len;

		nl = strchr(line, '\n');
		cr_assert(nl, "the alerts file ends in a partial line: %s", line);
		len = (size_t)(nl - line);
		cr_assert_lt(len, sizeof(buf), "alert line too long");
		memcpy(buf, line, len);
		buf[len] = '\0';
		a = json_tokener_parse(buf);
		cr_assert(a, "alert line does not parse: %s", buf);
		assert_alert_shape(a, buf);
		json_object_array_add(arr, a);
	}
	*text = s;
	return arr;
}

static int count_kind(json_object *alerts, const char *kind)
{
	int n = 0;

	for (size_t i = 0; i < json_object_array_length(alerts); i++)
		n += !strcmp(string(json_object_array_get_idx(alerts, i), "kind"), kind);
	return n;
}

static json_object *find_kind(json_object *alerts, const char *kind)
{
	for (size_t i = 0; i < json_object_array_length(alerts); i++)
		if (!strcmp(string(json_object_array_get_idx(alerts, i), "kind"), kind))
			return json_object_array_get_idx(alerts, i);
	return NULL;
}

/* The report's "alerts" array, each checked like a line of the file. */
static json_object *report_alerts(json_object *report)
{
	json_object *arr = e2e_member(report, "alerts");

	cr_assert(json_object_is_type(arr, json_type_array), "report alerts is not an array");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *a = json_object_array_get_idx(arr, i);

		assert_alert_shape(a, json_object_to_json_string(a));
	}
	return arr;
}

/* ---- running a scenario --------------------------------------------------- */

struct scenario {
	struct e2e_run r;
	pid_t pid;             /* the fixture */
	char alerts[256];      /* --alerts file */
	json_object *file;     /* its lines */
	char *file_text;
	double lag_s;          /* from the fixture's "ready" to stray's start */
};

/* Start growth MODE [ARG], attach stray at once with -p PID -d SECS
 * --alerts FILE plus extra args, wait for it, stop the fixture. */
static void run_growth(struct scenario *sc, const char *mode, const char *arg, const char *secs,
		       const char *const *extra)
{
	const char *fx[] = { e2e_fixture("growth"), mode, arg, NULL };
	const char *args[32];
	char pidbuf[16];
	size_t n = 0;
	double ready;
	pid_t stray;

	memset(sc, 0, sizeof(*sc));
	alerts_path(sc->alerts, sizeof(sc->alerts));
	sc->pid = e2e_start_fixture(fx);
	ready = e2e_now_s();
	snprintf(pidbuf, sizeof(pidbuf), "%d", sc->pid);
	args[n++] = "-p";
	args[n++] = pidbuf;
	args[n++] = "-d";
	args[n++] = secs;
	args[n++] = "--alerts";
	args[n++] = sc->alerts;
	for (size_t i = 0; extra && extra[i]; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	stray = e2e_stray_start(&sc->r, args);
	sc->lag_s = e2e_now_s() - ready;
	e2e_stray_wait(&sc->r, stray, atoi(secs) + 60);
	e2e_stop_fixture(sc->pid);
	cr_assert_eq(sc->r.status, 0, "stray failed (%d): %s", sc->r.status, sc->r.err);
	cr_assert(sc->r.report, "no JSON report: %s", sc->r.err);
	sc->file = read_alerts(sc->alerts, &sc->file_text);
	/* the report's alerts are those of the file, in the same number */
	cr_assert_eq(json_object_array_length(report_alerts(sc->r.report)),
		     json_object_array_length(sc->file),
		     "the report lists %zu alerts, the --alerts file %zu:\n%s\nreport: %s",
		     json_object_array_length(report_alerts(sc->r.report)),
		     json_object_array_length(sc->file), sc->file_text,
		     json_object_to_json_string(e2e_member(sc->r.report, "alerts")));
}

static void scenario_free(struct scenario *sc)
{
	unlink(sc->alerts);
	free(sc->file_text);
	if (sc->file)
		json_object_put(sc->file);
	e2e_run_free(&sc->r);
}

static const char *verdict(json_object *s)
{
	const char *v = string(s, "verdict");

	cr_assert(!strcmp(v, "leak") || !strcmp(v, "growing") || !strcmp(v, "stable") ||
			  !strcmp(v, "transient"),
		  "unknown verdict %s", v);
	return v;
}

/* The suspect allocating at fn, with the growth fields of issue 6. */
static json_object *growth_suspect(json_object *report, pid_t pid, const char *fn)
{
	json_object *s = e2e_suspect(report, pid, fn, NULL), *p;

	cr_assert(s, "no %s suspect: %s", fn, json_object_to_json_string(e2e_member(report, "suspects")));
	e2e_number(s, "growth_bytes_per_s");
	e2e_number(s, "score");
	verdict(s);
	cr_assert_geq(e2e_int(s, "rank"), 1);
	p = e2e_member(s, "trend_p");
	cr_assert(is_number(p) || json_object_is_type(p, json_type_null), "trend_p: %s",
		  json_object_to_json_string(s));
	return s;
}

static json_object *rss_trend(json_object *report)
{
	json_object *t = e2e_member(e2e_member(e2e_member(report, "heap"), "trend"), "rss");

	e2e_number(t, "slope_bytes_per_hour");
	cr_assert(json_object_is_type(e2e_member(t, "significant"), json_type_boolean));
	cr_assert(json_object_is_type(e2e_member(t, "sustained"), json_type_boolean));
	return t;
}

/* Suspects stay sorted by bytes; ranks 1..n follow the scores. */
static void assert_ranks_follow_scores(json_object *report)
{
	json_object *suspects = e2e_member(report, "suspects");
	size_t n = json_object_array_length(suspects);

	for (size_t i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(suspects, i);

		if (i + 1 < n)
			cr_assert_geq(e2e_int(a, "bytes"),
				      e2e_int(json_object_array_get_idx(suspects, i + 1), "bytes"),
				      "suspects are not sorted by bytes");
		for (size_t j = 0; j < n; j++) {
			json_object *b = json_object_array_get_idx(suspects, j);

			if (e2e_number(a, "score") > e2e_number(b, "score"))
				cr_assert_lt(e2e_int(a, "rank"), e2e_int(b, "rank"),
					     "a higher score ranks lower: %s vs %s",
					     json_object_to_json_string(a), json_object_to_json_string(b));
		}
	}
}

/* ---- scenarios ------------------------------------------------------------ */

/* 64 KiB/s leaked at one site: heap_growth and site_growth within 30 s of
 * the leak starting, each once although the leak goes on; a "leak" verdict
 * with the true rate. */
Test(e2e_growth, steady_leak_raises_heap_and_site_growth_once, .timeout = 120, .fini = remove_alerts_files)
{
	struct scenario sc;
	json_object *heap, *site, *s;
	double rate;

	run_growth(&sc, "leak", "64", "32", NULL);
	cr_assert_eq(count_kind(sc.file, "heap_growth"), 1, "heap_growth not raised once:\n%s",
		     sc.file_text);
	cr_assert_eq(count_kind(sc.file, "site_growth"), 1, "site_growth not raised once:\n%s",
		     sc.file_text);
	heap = find_kind(sc.file, "heap_growth");
	site = find_kind(sc.file, "site_growth");
	fprintf(stderr, "steady leak: heap_growth at %.2f s (value %.0f B/h), site_growth at %.2f s "
			"(value %.0f B/s), attach lag %.2f s\n",
		e2e_number(heap, "t_s"), e2e_number(heap, "value"), e2e_number(site, "t_s"),
		e2e_number(site, "value"), sc.lag_s);
	/* t_s counts from the window's start, which is lag_s after the leak's */
	cr_assert_leq(e2e_number(heap, "t_s") + sc.lag_s, 30, "heap_growth %.1f s after the leak began",
		      e2e_number(heap, "t_s") + sc.lag_s);
	cr_assert_leq(e2e_number(site, "t_s") + sc.lag_s, 30, "site_growth %.1f s after the leak began",
		      e2e_number(site, "t_s") + sc.lag_s);
	cr_assert_eq(e2e_int(heap, "pid"), sc.pid);
	cr_assert_eq(e2e_int(site, "pid"), sc.pid);
	cr_assert_eq(e2e_number(heap, "threshold"), 5 * MIB, "default --growth-alert is 5 MiB/h");
	cr_assert_gt(e2e_number(heap, "value"), e2e_number(heap, "threshold"));
	cr_assert(stack_has(site, "leak_step"), "site_growth stack lacks leak_step:\n%s", sc.file_text);

	s = growth_suspect(sc.r.report, sc.pid, "leak_step");
	rate = e2e_number(s, "growth_bytes_per_s");
	fprintf(stderr, "steady leak: leak_step %.0f B/s, p %g, score %.1f, verdict %s\n", rate,
		e2e_number(s, "trend_p"), e2e_number(s, "score"), verdict(s));
	cr_assert_str_eq(verdict(s), "leak");
	cr_assert(rate >= 0.75 * 64 * KIB && rate <= 1.25 * 64 * KIB,
		  "leak_step grows %.0f bytes/s, want 65536 +-25%%", rate);
	cr_assert_lt(e2e_number(s, "trend_p"), 0.05);
	cr_assert_eq(e2e_int(s, "rank"), 1);
	cr_assert(json_object_get_boolean(e2e_member(rss_trend(sc.r.report), "sustained")),
		  "RSS of a steady leak is not a sustained trend");
	scenario_free(&sc);
}

/* A cache filling 8 MiB in 5 s, then replacing 8 entries a second: nothing
 * to alert about in two minutes, and it holds steady. */
Test(e2e_growth, cache_raises_nothing_in_two_minutes, .timeout = 240, .fini = remove_alerts_files)
{
	struct scenario sc;
	json_object *s;

	run_growth(&sc, "cache", NULL, "120", NULL);
	s = growth_suspect(sc.r.report, sc.pid, "cache_put");
	fprintf(stderr, "cache: cache_put %lld bytes, %.0f B/s, score %.2f, verdict %s; alerts:\n%s",
		(long long)e2e_int(s, "bytes"), e2e_number(s, "growth_bytes_per_s"), e2e_number(s, "score"),
		verdict(s), sc.file_text);
	cr_expect_eq(json_object_array_length(sc.file), 0, "a cache raised alerts:\n%s", sc.file_text);
	cr_expect_eq(json_object_array_length(e2e_member(sc.r.report, "alerts")), 0,
		     "the report lists alerts for a cache: %s",
		     json_object_to_json_string(e2e_member(sc.r.report, "alerts")));
	cr_assert_str_neq(verdict(s), "leak", "the cache is called a leak");
	cr_expect_str_eq(verdict(s), "stable");
	cr_assert_geq(e2e_int(s, "bytes"), 7 * MIB, "the cache should hold ~8 MiB");
	cr_assert_not(json_object_get_boolean(e2e_member(rss_trend(sc.r.report), "sustained")),
		      "RSS of a full cache is called a sustained trend: %s",
		      json_object_to_json_string(rss_trend(sc.r.report)));
	scenario_free(&sc);
}

/* Leak and cache in one process: the leak ranks first although the cache
 * holds more bytes. */
Test(e2e_growth, leak_outranks_a_bigger_cache, .timeout = 120, .fini = remove_alerts_files)
{
	struct scenario sc;
	json_object *leak, *cache;

	run_growth(&sc, "mixed", NULL, "40", NULL);
	leak = growth_suspect(sc.r.report, sc.pid, "leak_step");
	cache = growth_suspect(sc.r.report, sc.pid, "cache_put");
	fprintf(stderr, "mixed: leak_step %lld bytes score %.2f rank %lld %s; cache_put %lld bytes "
			"score %.2f rank %lld %s\n",
		(long long)e2e_int(leak, "bytes"), e2e_number(leak, "score"),
		(long long)e2e_int(leak, "rank"), verdict(leak), (long long)e2e_int(cache, "bytes"),
		e2e_number(cache, "score"), (long long)e2e_int(cache, "rank"), verdict(cache));
	cr_assert_gt(e2e_int(cache, "bytes"), e2e_int(leak, "bytes"),
		     "precondition: the cache should hold more bytes than the leak");
	cr_assert_str_eq(verdict(leak), "leak");
	cr_assert_str_neq(verdict(cache), "leak", "the cache is called a leak");
	cr_assert_gt(e2e_number(leak, "score"), e2e_number(cache, "score"));
	cr_assert_eq(e2e_int(leak, "rank"), 1);
	cr_assert_gt(e2e_int(cache, "rank"), 1);
	/* and the report stays sorted by bytes: the cache comes first there */
	assert_ranks_follow_scores(sc.r.report);
	cr_assert(e2e_suspect(sc.r.report, sc.pid, "leak_step", NULL) !=
			  json_object_array_get_idx(e2e_member(sc.r.report, "suspects"), 0),
		  "suspects should stay sorted by bytes, not by rank");
	scenario_free(&sc);
}

/* Grow 4 MiB over 4 s, free it all, again: no alert, not a leak. */
Test(e2e_growth, sawtooth_raises_nothing, .timeout = 150, .fini = remove_alerts_files)
{
	struct scenario sc;
	json_object *s;

	run_growth(&sc, "sawtooth", NULL, "60", NULL);
	cr_assert_eq(json_object_array_length(sc.file), 0, "a sawtooth raised alerts:\n%s",
		     sc.file_text);
	cr_assert_eq(json_object_array_length(e2e_member(sc.r.report, "alerts")), 0);
	s = e2e_suspect(sc.r.report, sc.pid, "sawtooth_grow", NULL);
	if (s) {
		fprintf(stderr, "sawtooth: sawtooth_grow %lld bytes, score %.2f, verdict %s\n",
			(long long)e2e_int(s, "bytes"), e2e_number(s, "score"), verdict(s));
		cr_assert_str_neq(verdict(s), "leak", "the sawtooth is called a leak");
	}
	scenario_free(&sc);
}

/* ---- oom_projection ------------------------------------------------------- */

static char cgroup_dir[256];

static void write_file(const char *dir, const char *name, const char *value, bool required)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f && !required)
		return;
	cr_assert(f, "cannot open %s: %s", path, strerror(errno));
	fprintf(f, "%s\n", value);
	cr_assert(fclose(f) == 0, "cannot write %s to %s: %s", value, path, strerror(errno));
}

static bool swap_on(void)
{
	char *s = e2e_slurp("/proc/swaps");
	bool on = s && strchr(s, '\n') && strchr(s, '\n')[1] != '\0';

	free(s);
	return on;
}

/* Kill whatever is left in the cgroup and remove it, pass or fail. */
static void remove_cgroup(void)
{
	char path[512];

	if (!cgroup_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup_dir);
	for (int tries = 0; tries < 100 && rmdir(cgroup_dir) != 0 && errno == EBUSY; tries++) {
		FILE *f = fopen(path, "r");
		int pid;

		while (f && fscanf(f, "%d", &pid) == 1)
			kill(pid, SIGKILL);
		if (f)
			fclose(f);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		usleep(50000);
	}
	cgroup_dir[0] = '\0';
	remove_alerts_files();
}

/* 4 MiB/s in a 256 MiB memory cgroup: the OOM killer ends it after about a
 * minute; stray must project that time within 20%. */
Test(e2e_growth, oom_projection_is_within_20_percent, .timeout = 240, .fini = remove_cgroup)
{
	char cmd[1024], limit[32];
	const char *fx[] = { "/bin/sh", "-c", cmd, NULL };
	struct e2e_run r;
	char alerts[256], *text;
	json_object *file, *oom, *cg;
	double dur, t, value, truth;
	pid_t pid;
	int st;

	snprintf(cgroup_dir, sizeof(cgroup_dir), "/sys/fs/cgroup/memory/stray-e2e-%d", getpid());
	cr_assert(mkdir(cgroup_dir, 0755) == 0 || errno == EEXIST, "cannot create %s: %s", cgroup_dir,
		  strerror(errno));
	snprintf(limit, sizeof(limit), "%d", 256 * MIB);
	write_file(cgroup_dir, "memory.limit_in_bytes", limit, true);
	write_file(cgroup_dir, "memory.swappiness", "0", false);
	if (swap_on())
		write_file(cgroup_dir, "memory.memsw.limit_in_bytes", limit, false);
	snprintf(cmd, sizeof(cmd), "echo $$ > %s/cgroup.procs && exec %s leak 4096", cgroup_dir,
		 e2e_fixture("growth"));
	pid = e2e_start_fixture(fx);

	alerts_path(alerts, sizeof(alerts));
	char pidbuf[16];
	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-p", pidbuf, "--alerts", alerts, NULL };
	e2e_stray_run(&r, 180, args);
	st = e2e_wait_status(pid, 10);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert_eq(st, 128 + SIGKILL, "the fixture was not OOM-killed (status %d)", st);
	cr_assert(r.report, "no JSON report");

	file = read_alerts(alerts, &text);
	cr_assert_eq(count_kind(file, "oom_projection"), 1, "oom_projection not raised once:\n%s", text);
	cr_assert_eq(count_kind(report_alerts(r.report), "oom_projection"), 1);
	oom = find_kind(file, "oom_projection");
	cr_assert_eq(e2e_int(oom, "pid"), pid);
	cr_assert_eq(e2e_number(oom, "threshold"), 3600, "default --oom-horizon is 3600 s");
	dur = e2e_number(e2e_member(r.report, "window"), "duration_s");
	t = e2e_number(oom, "t_s");
	value = e2e_number(oom, "value");
	truth = dur - t;
	fprintf(stderr, "oom: alert at %.2f s (%s), projected %.1f s, target died at %.2f s: true "
			"%.1f s, error %+.1f%%\n",
		t, string(oom, "severity"), value, dur, truth, 100 * (value - truth) / truth);
	cr_assert_gt(truth, 0);
	cr_assert_leq(value, 3600);
	cr_assert_leq(fabs(value - truth), 0.2 * truth,
		      "projected %.1f s to the limit at t=%.1f s, the target died %.1f s later", value,
		      t, truth);

	/* The final report still describes the cgroup the target ran in. */
	cg = e2e_member(e2e_member(r.report, "heap"), "cgroup");
	cr_expect(json_object_is_type(cg, json_type_object),
		  "heap.cgroup is %s in the report of a target OOM-killed in %s",
		  json_object_to_json_string(cg), cgroup_dir);
	if (json_object_is_type(cg, json_type_object))
		cr_expect_eq(e2e_int(cg, "limit_bytes"), 256 * MIB);

	unlink(alerts);
	free(text);
	json_object_put(file);
	e2e_run_free(&r);
}

/* ---- options -------------------------------------------------------------- */

static bool any_leak_verdict(json_object *report)
{
	json_object *suspects = e2e_member(report, "suspects");

	for (size_t i = 0; i < json_object_array_length(suspects); i++)
		if (!strcmp(verdict(json_object_array_get_idx(suspects, i)), "leak"))
			return true;
	return false;
}

Test(e2e_growth, fail_on_leak_exits_3_only_for_a_leak, .timeout = 120)
{
	struct e2e_run r;
	const char *demo_plain[] = { "--", e2e_fixture("demo"), NULL };
	const char *demo[] = { "--fail-on-leak", "--", e2e_fixture("demo"), NULL };
	const char *noleak[] = { "--fail-on-leak", "--", e2e_fixture("noleak"), NULL };

	e2e_stray_run(&r, 60, demo_plain);
	cr_assert_eq(r.status, 0, "demo without --fail-on-leak: status %d: %s", r.status, r.err);
	e2e_run_free(&r);

	e2e_stray_run(&r, 60, demo);
	cr_assert_eq(r.status, 3, "demo with --fail-on-leak: status %d: %s", r.status, r.err);
	cr_assert(r.report && any_leak_verdict(r.report), "exit 3 without a \"leak\" verdict");
	e2e_run_free(&r);

	e2e_stray_run(&r, 60, noleak);
	cr_assert_eq(r.status, 0, "noleak with --fail-on-leak: status %d: %s", r.status, r.err);
	cr_assert(r.report && !any_leak_verdict(r.report));
	e2e_run_free(&r);
}

/* --report-every 1: the JSON file is there while stray runs, and whenever
 * read it is complete (rewritten atomically); at the end, the final one. */
Test(e2e_growth, report_every_rewrites_the_json_atomically, .timeout = 60)
{
	const char *fx[] = { e2e_fixture("steady"), NULL };
	pid_t pid = e2e_start_fixture(fx), stray;
	char pidbuf[16];
	struct e2e_run r;
	double t0, mid_duration = -1, final;
	int reads = 0;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-p", pidbuf, "-d", "4", "--report-every", "1", NULL };
	stray = e2e_stray_start(&r, args);
	t0 = e2e_now_s();
	/* read it as often as we can until 3.8 s: never a partial file */
	while (e2e_now_s() - t0 < 3.8) {
		char *s = e2e_slurp(r.json_path);

		if (s) {
			json_object *j = json_tokener_parse(s);

			cr_assert(j, "a partial --json file at %.2f s:\n%s", e2e_now_s() - t0, s);
			cr_assert(json_object_is_type(e2e_member(j, "suspects"), json_type_array));
			mid_duration = e2e_number(e2e_member(j, "window"), "duration_s");
			reads++;
			json_object_put(j);
			free(s);
		} else {
			cr_assert_lt(e2e_now_s() - t0, 2.5, "no --json file 2.5 s into the run");
		}
		e2e_sleep_s(0.002);
	}
	cr_assert_gt(reads, 0);
	e2e_stray_wait(&r, stray, 30);
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no final report");
	final = e2e_number(e2e_member(r.report, "window"), "duration_s");
	fprintf(stderr, "report-every: %d complete reads, last interim duration %.2f s, final %.2f s\n",
		reads, mid_duration, final);
	cr_assert(mid_duration > 0 && mid_duration < 3.8, "interim report duration %.2f", mid_duration);
	cr_assert(final >= 3.8 && final < 6, "the final report's window is %.2f s for -d 4", final);
	cr_assert(e2e_suspect(r.report, pid, "leak_tick", NULL), "final report lacks leak_tick");
	e2e_run_free(&r);
}

/* --heap-warn 1M on a process well above it: one heap_warn, not one per
 * interval. */
Test(e2e_growth, heap_warn_is_raised_once, .timeout = 60, .fini = remove_alerts_files)
{
	const char *fx[] = { e2e_fixture("steady"), NULL };
	pid_t pid = e2e_start_fixture(fx);
	char pidbuf[16], alerts[256], *text;
	struct e2e_run r;
	json_object *file, *w;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	alerts_path(alerts, sizeof(alerts));
	const char *args[] = { "-p", pidbuf, "-d", "3", "--heap-warn", "1M", "--alerts", alerts, NULL };
	e2e_stray_run(&r, 30, args);
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray failed (%d): %s", r.status, r.err);
	file = read_alerts(alerts, &text);
	cr_assert_eq(count_kind(file, "heap_warn"), 1, "heap_warn not raised once:\n%s", text);
	cr_assert_eq(count_kind(report_alerts(r.report), "heap_warn"), 1);
	cr_assert_eq(count_kind(file, "heap_critical"), 0, "heap_critical without --heap-critical");
	w = find_kind(file, "heap_warn");
	cr_assert_eq(e2e_number(w, "threshold"), MIB);
	cr_assert_geq(e2e_number(w, "value"), MIB);
	cr_assert_str_eq(string(w, "severity"), "warning");
	cr_assert_eq(e2e_int(w, "pid"), pid);
	unlink(alerts);
	free(text);
	json_object_put(file);
	e2e_run_free(&r);
}

static void assert_option_error(const char *const *args, const char *what)
{
	struct e2e_run r;
	char *nl;

	e2e_stray_run_nojson(&r, 10, args);
	cr_assert_eq(r.status, 1, "%s: status %d, want 1: %s", what, r.status, r.err);
	cr_assert(!strncmp(r.err, "stray: ", 7), "%s: stderr %s", what, r.err);
	nl = strchr(r.err, '\n');
	cr_assert(nl && nl[1] == '\0', "%s: want one line on stderr, got:\n%s", what, r.err);
	e2e_run_free(&r);
}

Test(e2e_growth, option_errors, .timeout = 60)
{
	const char *watch_d[] = { "--watch", "-d", "5", "-p", "1", NULL };
	const char *growth[] = { "--growth-alert", "x", "-p", "1", NULL };
	const char *every[] = { "--report-every", "2", "-p", "1", NULL };

	assert_option_error(watch_d, "--watch -d 5");
	assert_option_error(growth, "--growth-alert x");
	assert_option_error(every, "--report-every without --json");
}
