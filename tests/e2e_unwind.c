// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DWARF unwinding against valgrind. tests/fixtures/unwind/unwindleak.cpp
 * and its library are built -O2 -fomit-frame-pointer and leak through a
 * 7-frame chain that crosses the library, libc (strdup, fopen, a qsort
 * comparator) and libstdc++ (vector growth, std::string). The same program
 * runs under valgrind, whose memcheck unwinds with the modules' CFI, and
 * under stray; every stack stray reports, from the allocator's caller to
 * main, must name the same functions as valgrind's stack of the block of
 * the same size. Nothing about the frames is written down here: valgrind
 * is the reference.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common_e2e.h"

#define VALGRIND "/usr/bin/valgrind"
#define MAX_RECORDS 32
#define MAX_FRAMES 64
#define LOG_BYTES (256 * 1024)

/* The fixture's leaks that reach main: strdup, fopen, qsort comparator,
 * vector object and buffer, string object and buffer. */
#define FIXTURE_LEAKS 7

/* One valgrind loss record: its size and its physical frames' functions,
 * the allocator's caller first, up to and including main. */
struct vg_record {
	int64_t bytes, blocks;
	char *fns[MAX_FRAMES];
	int nfns;
	bool reaches_main;
	bool in_chain; /* made by the fixture's chain (stage4 is a frame), not
			  by the runtime (dlopen, libstdc++'s start-up) */
};

/*
 * Symbol names differ between the two tools only by which alias of one
 * address they pick (valgrind takes libc6-dbg's "strdup", the dynamic
 * symbol table has "__strdup"), by symbol versions ("@@GLIBC_2.34") and by
 * GCC's clone suffixes (valgrind's ELF symbol "msort_with_tmp.part.0" is
 * stray's DWARF "msort_with_tmp").
 */
static char *normalized(const char *name)
{
	char *s;

	while (*name == '_')
		name++;
	s = strdup(name);
	cr_assert(s);
	if (strchr(s, '@'))
		*strchr(s, '@') = '\0';
	if (strchr(s, '.'))
		*strchr(s, '.') = '\0';
	return s;
}

/* "   by 0x4B3A9A9: strdup (strdup.c:42)" -> address and "strdup". The
 * location in parentheses is the last " (" of the line; C++ names hold
 * parentheses of their own. */
static bool parse_frame(const char *line, unsigned long *addr, char **fn)
{
	const char *p = strstr(line, " at 0x"), *colon, *loc;
	char name[4096];

	if (!p)
		p = strstr(line, " by 0x");
	if (!p)
		return false;
	*addr = strtoul(p + 4, NULL, 16);
	colon = strstr(p, ": ");
	if (!colon)
		return false;
	colon += 2;
	loc = strrchr(colon, '(');
	while (loc && loc > colon && loc[-1] != ' ')
		loc = memrchr(colon, '(', loc - colon);
	if (!loc || loc <= colon)
		loc = colon + strlen(colon) + 1;
	snprintf(name, sizeof(name), "%.*s", (int)(loc - 1 - colon), colon);
	*fn = normalized(name);
	return true;
}

/*
 * Add one frame line to rec. Valgrind lists inlined calls as extra lines
 * with the same address, the containing function last; stray reports the
 * physical frame (the containing function), so a line with the previous
 * line's address replaces it. The allocator's own frame (the first "at"
 * line) is not a frame of stray's stacks.
 */
static void add_frame(struct vg_record *rec, unsigned long addr, char *fn, unsigned long *last_addr, bool *first)
{
	if (*first || rec->reaches_main) {
		*first = false;
		free(fn);
		return;
	}
	if (rec->nfns && addr == *last_addr) {
		free(rec->fns[rec->nfns - 1]);
		rec->fns[rec->nfns - 1] = fn;
	} else if (rec->nfns < MAX_FRAMES) {
		rec->fns[rec->nfns++] = fn;
	} else {
		free(fn);
	}
	*last_addr = addr;
	rec->reaches_main = !strcmp(fn, "main");
	rec->in_chain |= !strcmp(fn, "stage4(int)");
}

/* "1,024 bytes" -> 1024 */
static int64_t count_of(const char *s)
{
	char digits[32];
	size_t n = 0;

	while ((*s == ',' || (*s >= '0' && *s <= '9')) && n + 1 < sizeof(digits)) {
		if (*s != ',')
			digits[n++] = *s;
		s++;
	}
	digits[n] = '\0';
	return strtoll(digits, NULL, 10);
}

/* Every loss record of valgrind's log. */
static int parse_records(char *log, struct vg_record *recs)
{
	unsigned long addr, last_addr = 0;
	char *save = NULL, *fn, *p;
	struct vg_record *cur = NULL;
	bool first = false;
	int n = 0;

	for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if ((p = strstr(line, " bytes in ")) && strstr(line, " loss record ")) {
			cur = n < MAX_RECORDS ? &recs[n++] : NULL;
			if (!cur)
				continue;
			while (p > line && p[-1] != ' ')
				p--;
			cur->bytes = count_of(p);
			cur->blocks = count_of(strstr(p, " bytes in ") + strlen(" bytes in "));
			first = true;
		} else if (cur && parse_frame(line, &addr, &fn)) {
			add_frame(cur, addr, fn, &last_addr, &first);
		} else if (!strstr(line, "==")) {
			continue;
		} else if (strlen(strstr(line, "==") + 2) < 8) { /* "==PID== ": a record ended */
			cur = NULL;
		}
	}
	return n;
}

/* Run the fixture with argv (argv[0] its path) under valgrind. */
static int run_valgrind(const char *const *argv, struct vg_record *recs)
{
	char log[] = "/tmp/stray-e2e-unwind-vg-XXXXXX", logopt[64];
	int fd = mkstemp(log), status, n;
	char *text;
	pid_t pid;

	cr_assert(fd >= 0);
	close(fd);
	snprintf(logopt, sizeof(logopt), "--log-file=%s", log);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		const char *vg[16] = { VALGRIND, "--leak-check=full", "--show-leak-kinds=all", "--num-callers=50",
				       "--run-libc-freeres=no", "--run-cxx-freeres=no", logopt };
		int null = open("/dev/null", O_WRONLY), n = 7;

		for (int i = 0; argv[i] && n < 15; i++)
			vg[n++] = argv[i];
		dup2(null, 1);
		execv(VALGRIND, (char **)vg);
		_exit(126);
	}
	status = e2e_wait_status(pid, 120);
	text = e2e_slurp(log);
	unlink(log);
	cr_assert(status == 0 && text, "valgrind did not run %s (status %d)", argv[0], status);
	n = parse_records(text, recs);
	free(text);
	return n;
}

static void free_records(struct vg_record *recs, int n)
{
	for (int i = 0; i < n; i++)
		for (int f = 0; f < recs[i].nfns; f++)
			free(recs[i].fns[f]);
}

/* The stray suspect with this many bytes in this many blocks. */
static json_object *suspect_of_size(json_object *report, int64_t bytes, int64_t blocks)
{
	json_object *sus = e2e_member(report, "suspects");

	for (size_t i = 0; i < json_object_array_length(sus); i++) {
		json_object *s = json_object_array_get_idx(sus, i);

		if (e2e_int(s, "bytes") == bytes && e2e_int(s, "allocations") == blocks)
			return s;
	}
	return NULL;
}

/* Frame i of a stack, counting only real frames: valgrind folds inlined
 * calls into their caller's frame (add_frame), stray lists them as frames
 * of their own marked "inlined". */
static json_object *real_frame(json_object *stack, size_t i)
{
	for (size_t k = 0; k < json_object_array_length(stack); k++) {
		json_object *f = json_object_array_get_idx(stack, k), *inl;

		if (json_object_object_get_ex(f, "inlined", &inl) && json_object_get_boolean(inl))
			continue;
		if (i-- == 0)
			return f;
	}
	return NULL;
}

static size_t real_frames(json_object *stack)
{
	size_t n = 0;

	while (real_frame(stack, n))
		n++;
	return n;
}

static const char *frame_function(json_object *stack, size_t i)
{
	json_object *f = real_frame(stack, i), *fn;

	if (!f || !json_object_object_get_ex(f, "function", &fn) || !fn)
		return "??";
	return json_object_get_string(fn);
}

/* Whether stray's stack s names valgrind's functions of rec, frame by
 * frame, up to main; a mismatch is described in why. */
static bool stack_matches(json_object *s, const struct vg_record *rec, char *why, size_t len)
{
	json_object *stack = e2e_member(s, "stack");

	for (int f = 0; f < rec->nfns; f++) {
		char *mine = normalized(frame_function(stack, f));
		bool same = !strcmp(mine, rec->fns[f]);

		if (!same)
			snprintf(why, len, "frame %d of the %lld-byte leak: stray '%s', valgrind '%s'", f,
				 (long long)rec->bytes, mine, rec->fns[f]);
		free(mine);
		if (!same)
			return false;
	}
	return true;
}

/* stray --unwind=mode on the fixture argv (argv[0] its path; at most 2
 * arguments), draining every 0.2 s. */
static void run_stray(struct e2e_run *r, const char *mode, const char *const *argv)
{
	const char *args[10] = { NULL, "-i", "0.2", "--no-timers", "--" };
	char opt[32];
	int n = 5;

	snprintf(opt, sizeof(opt), "--unwind=%s", mode);
	args[0] = opt;
	for (int i = 0; argv[i] && n < 9; i++)
		args[n++] = argv[i];
	e2e_stray_run(r, 120, args);
	cr_assert_eq(r->status, 0, "stray --unwind=%s failed (%d): %s", mode, r->status, r->err);
	cr_assert(r->report, "no JSON report: %s", r->err);
}

/* Compare every leak of the fixture's chain run as argv (valgrind records
 * through stage4 to main, nleaks of them) with stray's report; returns how
 * many of them stray's stacks match. */
static int report_matches(json_object *report, const char *const *argv, int nleaks, char *why, size_t len)
{
	struct vg_record recs[MAX_RECORDS] = { 0 };
	int n = run_valgrind(argv, recs), compared = 0, matched = 0;

	why[0] = '\0';
	for (int i = 0; i < n; i++) {
		json_object *s;

		if (!recs[i].reaches_main || !recs[i].in_chain)
			continue;
		compared++;
		s = suspect_of_size(report, recs[i].bytes, recs[i].blocks);
		if (!s)
			snprintf(why, len, "no stray suspect of %lld bytes in %lld blocks", (long long)recs[i].bytes,
				 (long long)recs[i].blocks);
		else if (stack_matches(s, &recs[i], why, len))
			matched++;
	}
	cr_assert_eq(compared, nleaks, "valgrind saw %d leaks of the chain, expected %d", compared, nleaks);
	free_records(recs, n);
	return matched;
}

/* The same for stray --unwind=mode running the fixture. */
static int matching_stacks(const char *mode, const char *const *argv, int nleaks, char *why, size_t len)
{
	struct e2e_run r;
	int matched;

	run_stray(&r, mode, argv);
	matched = report_matches(r.report, argv, nleaks, why, len);
	e2e_run_free(&r);
	return matched;
}

Test(e2e_unwind, auto_matches_valgrind, .timeout = 300)
{
	const char *argv[] = { e2e_fixture("unwindleak"), NULL };
	char why[512];

	cr_assert_eq(matching_stacks("auto", argv, FIXTURE_LEAKS, why, sizeof(why)), FIXTURE_LEAKS, "%s", why);
}

Test(e2e_unwind, dwarf_matches_valgrind, .timeout = 300)
{
	const char *argv[] = { e2e_fixture("unwindleak"), NULL };
	char why[512];

	cr_assert_eq(matching_stacks("dwarf", argv, FIXTURE_LEAKS, why, sizeof(why)), FIXTURE_LEAKS, "%s", why);
}

/* The reason for DWARF unwinding: without frame pointers, the frame
 * pointer walk loses the chain, and no stack matches. */
Test(e2e_unwind, fp_truncates, .timeout = 300)
{
	const char *argv[] = { e2e_fixture("unwindleak"), NULL };
	char why[512];

	cr_assert_eq(matching_stacks("fp", argv, FIXTURE_LEAKS, why, sizeof(why)), 0,
		     "frame pointers gave a complete stack");
}

/* A library loaded after attach gets its table at the next drain: its
 * frames unwind with DWARF only (no frame-pointer fallback to hide a
 * missing table). */
Test(e2e_unwind, dlopen_after_attach, .timeout = 300)
{
	const char *argv[] = { e2e_fixture("unwindleak"), "--dlopen", e2e_fixture("libunwinddl.so"), NULL };
	char why[512];

	cr_assert_eq(matching_stacks("dwarf", argv, 1, why, sizeof(why)), 1, "%s", why);
}

/* stray -p: the tables of everything the process has mapped are loaded at
 * attach. The fixture leaks once stray's probes are on. */
Test(e2e_unwind, attach_matches_valgrind, .timeout = 300)
{
	const char *argv[] = { e2e_fixture("unwindleak"), NULL };
	const char *fx[] = { e2e_fixture("unwindleak"), "--wait", NULL };
	pid_t pid = e2e_start_fixture(fx), stray;
	char pidbuf[16], why[512];
	struct e2e_run r;

	snprintf(pidbuf, sizeof(pidbuf), "%d", pid);
	const char *args[] = { "-v", "--unwind=dwarf", "--no-timers", "-p", pidbuf, "-d", "30", NULL };
	stray = e2e_stray_start(&r, args);
	e2e_wait_attached(&r, stray);
	kill(pid, SIGUSR1);
	e2e_stray_wait(&r, stray, 60); /* the window ends when the fixture exits */
	e2e_stop_fixture(pid);
	cr_assert_eq(r.status, 0, "stray -p failed (%d): %s", r.status, r.err);
	cr_assert(r.report, "no JSON report: %s", r.err);
	cr_assert_eq(report_matches(r.report, argv, FIXTURE_LEAKS, why, sizeof(why)), FIXTURE_LEAKS, "%s", why);
	e2e_run_free(&r);
}

/* Run stray with args; every suspect's stack has at most depth real
 * frames. The report stays in r for more checks. */
static void expect_depth_at_most(struct e2e_run *r, const char *const *args, size_t depth)
{
	json_object *sus;

	e2e_stray_run(r, 120, args);
	cr_assert_eq(r->status, 0, "%s", r->err);
	sus = e2e_member(r->report, "suspects");
	cr_assert_gt(json_object_array_length(sus), 0);
	for (size_t i = 0; i < json_object_array_length(sus); i++)
		cr_assert_leq(real_frames(e2e_member(json_object_array_get_idx(sus, i), "stack")), depth, "%s",
			      r->out);
}

Test(e2e_unwind, max_depth, .timeout = 120)
{
	const char *args[] = { "--max-depth", "3", "--no-timers", "--", e2e_fixture("unwindleak"), NULL };
	struct e2e_run r;

	expect_depth_at_most(&r, args, 3);
	/* The 777-byte comparator block: comparator, msort, msort. */
	cr_assert_eq(real_frames(e2e_member(suspect_of_size(r.report, 777, 1), "stack")), 3);
	e2e_run_free(&r);
}

/* The frame-pointer walk honours --max-depth too (demo keeps frame
 * pointers, so its stacks are deeper than 2 without the limit). */
Test(e2e_unwind, max_depth_with_frame_pointers, .timeout = 120)
{
	const char *args[] = { "--unwind=fp", "--max-depth", "2", "--no-timers", "--", e2e_fixture("demo"), NULL };
	struct e2e_run r;

	expect_depth_at_most(&r, args, 2);
	e2e_run_free(&r);
}

Test(e2e_unwind, bad_options)
{
	const char *bad_mode[] = { "--unwind=frames", "--", "/bin/true", NULL };
	const char *bad_depth[] = { "--max-depth", "65", "--", "/bin/true", NULL };
	struct e2e_run r;

	e2e_stray_run_nojson(&r, 30, bad_mode);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "invalid --unwind 'frames'"), "%s", r.err);
	e2e_run_free(&r);
	e2e_stray_run_nojson(&r, 30, bad_depth);
	cr_assert_eq(r.status, 1);
	cr_assert(strstr(r.err, "invalid --max-depth '65'"), "%s", r.err);
	e2e_run_free(&r);
}
