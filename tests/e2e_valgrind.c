// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * stray against valgrind (memcheck) on deterministic programs: what valgrind
 * says is "in use at exit" must be exactly stray's outstanding bytes and
 * blocks, and its "total heap usage" exactly stray's allocations and frees.
 * --run-libc-freeres=no: stray does not make glibc free its internals at
 * exit either. Fixtures avoid pvalloc (valgrind 3.19 aborts on it) and
 * realloc(p, 0) (valgrind 3.19 does not free there as glibc does).
 * Fixtures first, then Debian's own programs (an interpreter, a database,
 * a compressor, C++), in run mode and, further down, in attach mode.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "common_e2e.h"

#define VALGRIND "/usr/bin/valgrind"

struct vg_result {
	int64_t in_use_bytes, in_use_blocks, allocs, frees;
};

/* "1,045,497" -> 1045497 */
static int64_t parse_count(const char *s)
{
	int64_t v = 0;

	for (; *s == ',' || (*s >= '0' && *s <= '9'); s++)
		if (*s != ',')
			v = v * 10 + (*s - '0');
	return v;
}

/* Fork argv with stdout and stderr in out_fd; returns its pid. */
static pid_t spawn_with_output(const char *const *argv, int out_fd)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		execv(argv[0], (char **)argv);
		_exit(126);
	}
	return pid;
}

/* Fork valgrind (memcheck, freeres off, then opt, e.g. the log file) on cmd
 * with stdout and stderr in out_fd; returns its pid (valgrind execs the tool
 * in place: it is also the client's pid). */
static pid_t spawn_valgrind(const char *const *cmd, const char *opt, int out_fd)
{
	const char *argv[32];
	size_t n = 0;

	argv[n++] = VALGRIND;
	argv[n++] = "--run-libc-freeres=no";
	argv[n++] = "--run-cxx-freeres=no";
	argv[n++] = opt;
	for (size_t i = 0; cmd[i] && n < 31; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	return spawn_with_output(argv, out_fd);
}

/* "<label>1,234 bytes in 5 blocks" anywhere in text: false when absent. */
static bool parse_bytes_blocks(const char *text, const char *label, int64_t *bytes, int64_t *blocks)
{
	const char *p = strstr(text, label);

	if (!p)
		return false;
	*bytes = parse_count(p + strlen(label));
	p = strstr(p, " bytes in ");
	if (!p)
		return false;
	*blocks = parse_count(p + strlen(" bytes in "));
	return true;
}

/* The heap summary valgrind wrote to log (removed once read). */
static void read_valgrind_log(const char *log, const char *what, struct vg_result *res)
{
	char *text = e2e_slurp(log);
	const char *p;

	unlink(log);
	cr_assert(text, "valgrind wrote no log for %s", what);
	cr_assert(parse_bytes_blocks(text, "in use at exit: ", &res->in_use_bytes, &res->in_use_blocks),
		  "no 'in use at exit' in valgrind's log for %s:\n%s", what, text);
	p = strstr(text, "total heap usage: ");
	cr_assert(p, "no 'total heap usage' in valgrind's log for %s:\n%s", what, text);
	p += strlen("total heap usage: ");
	res->allocs = parse_count(p);
	p = strstr(p, " allocs, ");
	cr_assert(p, "no frees in valgrind's log for %s:\n%s", what, text);
	res->frees = parse_count(p + strlen(" allocs, "));
	free(text);
}

/* A temporary file for a program's output, already unlinked. */
static int output_file(void)
{
	char out[] = "/tmp/stray-e2e-vgout-XXXXXX";
	int fd = mkstemp(out);

	cr_assert(fd >= 0);
	unlink(out);
	return fd;
}

static void run_valgrind(const char *const *cmd, struct vg_result *res)
{
	char log[] = "/tmp/stray-e2e-vg-XXXXXX", logopt[64];
	/* stdout and stderr to a regular file, as under e2e_stray_run:
	 * programs look at what their output is (GNU grep stops at the first
	 * match when it is /dev/null; Python's io raises, and allocates for,
	 * an "Illegal seek" on a pipe). */
	int fd = mkstemp(log), ofd = output_file(), status;

	cr_assert(fd >= 0);
	close(fd);
	snprintf(logopt, sizeof(logopt), "--log-file=%s", log);
	status = e2e_wait_status(spawn_valgrind(cmd, logopt, ofd), 120);
	close(ofd);
	cr_assert(status != 126 && status < 128, "valgrind did not run %s (status %d)", cmd[0], status);
	read_valgrind_log(log, cmd[0], res);
}

/*
 * The environment valgrind gives its client differs from ours: Debian's
 * /usr/bin/valgrind wrapper appends /usr/lib/debug to LD_LIBRARY_PATH and
 * sets GLIBCXX_FORCE_NEW/GLIBCPP_FORCE_NEW, and valgrind adds LD_PRELOAD
 * (its vgpreload objects). Programs that copy their environment (Perl's
 * %ENV, Python's os.environ) allocate for every variable, so stray's target
 * must see the same one: this replaces our environment with the client's as
 * `valgrind /usr/bin/env` prints it, LD_PRELOAD's value turned into colons
 * of the same length (ld.so skips empty entries: nothing is preloaded, and
 * the copied string is as long). Call after the valgrind run; each test
 * runs in its own process, so the change ends with the test.
 */
static void take_valgrind_client_env(void)
{
	const char *cmd[] = { "/usr/bin/env", NULL };
	char out[] = "/tmp/stray-e2e-vgenv-XXXXXX", *text, *line, *save = NULL;
	int ofd = mkstemp(out);

	cr_assert(ofd >= 0);
	cr_assert_eq(e2e_wait_status(spawn_valgrind(cmd, "-q", ofd), 60), 0, "valgrind /usr/bin/env failed");
	close(ofd);
	text = e2e_slurp(out);
	unlink(out);
	cr_assert(text && strstr(text, "LD_PRELOAD="), "no LD_PRELOAD in valgrind's client environment");
	clearenv();
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "LD_PRELOAD=", strlen("LD_PRELOAD=")) == 0)
			memset(line + strlen("LD_PRELOAD="), ':', strlen(line + strlen("LD_PRELOAD=")));
		cr_assert(strchr(line, '=') && putenv(line) == 0, "bad line in valgrind's client environment: %s", line);
	}
	/* text stays allocated: putenv keeps pointers into it. */
}

struct comparison {
	const char *const *cmd;
	/* Called before each of the two runs (e.g. to remove a database). */
	void (*reset)(void);
	/* The program's threads exit: glibc then frees each thread's tcache,
	 * which malloc allocated internally (no entry point), and the blocks
	 * cached in it, which were freed already: frees stray cannot match
	 * and valgrind (whose malloc replaces glibc's) never sees. Without
	 * threads, stray must match every free. */
	bool threads_exit;
	/* The command runs other programs: stray follows them, valgrind
	 * (without --trace-children) reports the command's process alone. */
	bool own_process_only;
};

/* The command's own process (the first of target.pids): its outstanding
 * bytes and blocks, summed over its heap suspects. */
static void own_process_outstanding(json_object *report, int64_t *bytes, int64_t *blocks)
{
	json_object *target, *pids;
	int pid;

	cr_assert(json_object_object_get_ex(report, "target", &target) &&
		  json_object_object_get_ex(target, "pids", &pids) && json_object_array_length(pids) > 0);
	pid = json_object_get_int(json_object_array_get_idx(pids, 0));
	*bytes = e2e_suspects_sum(report, pid, "bytes");
	*blocks = e2e_suspects_sum(report, pid, "allocations");
}

static void compare_with(const struct comparison *c)
{
	const char *const *cmd = c->cmd;
	const char *args[32] = { "--" };
	int64_t bytes, blocks;
	struct vg_result vg;
	struct e2e_run r;
	size_t n = 1;

	for (size_t i = 0; cmd[i] && n < 31; i++)
		args[n++] = cmd[i];
	args[n] = NULL;
	if (c->reset)
		c->reset();
	run_valgrind(cmd, &vg);
	take_valgrind_client_env();
	if (c->reset)
		c->reset();
	e2e_stray_run(&r, 120, args);
	cr_assert(r.report, "no JSON report for %s (status %d): %s", cmd[0], r.status, r.err);
	bytes = e2e_int(r.report, "totals.outstanding_bytes");
	blocks = e2e_int(r.report, "totals.outstanding_allocations");
	if (c->own_process_only)
		own_process_outstanding(r.report, &bytes, &blocks);
	cr_log_info("%s: valgrind %ld bytes in %ld blocks, %ld allocs, %ld frees; stray %ld bytes in %ld, %ld allocs, %ld frees, %ld unmatched",
		    cmd[0], (long)vg.in_use_bytes, (long)vg.in_use_blocks, (long)vg.allocs, (long)vg.frees, (long)bytes,
		    (long)blocks, (long)e2e_int(r.report, "totals.allocations"), (long)e2e_int(r.report, "totals.frees"),
		    (long)e2e_int(r.report, "totals.unmatched_frees"));
	cr_expect_eq(bytes, vg.in_use_bytes, "%s: stray %ld outstanding bytes, valgrind %ld in use", cmd[0], (long)bytes,
		     (long)vg.in_use_bytes);
	cr_expect_eq(blocks, vg.in_use_blocks, "%s: stray %ld outstanding allocations, valgrind %ld blocks", cmd[0],
		     (long)blocks, (long)vg.in_use_blocks);
	/* The totals count every process stray followed. */
	if (!c->own_process_only) {
		cr_expect_eq(e2e_int(r.report, "totals.allocations"), vg.allocs,
			     "%s: stray %ld allocations, valgrind %ld", cmd[0],
			     (long)e2e_int(r.report, "totals.allocations"), (long)vg.allocs);
		cr_expect_eq(e2e_int(r.report, "totals.frees"), vg.frees, "%s: stray %ld frees, valgrind %ld", cmd[0],
			     (long)e2e_int(r.report, "totals.frees"), (long)vg.frees);
	}
	if (!c->threads_exit)
		cr_expect_eq(e2e_int(r.report, "totals.unmatched_frees"), 0, "%s: stray %ld unmatched frees", cmd[0],
			     (long)e2e_int(r.report, "totals.unmatched_frees"));
	e2e_run_free(&r);
}

static void compare(const char *const *cmd)
{
	const struct comparison c = { .cmd = cmd };

	compare_with(&c);
}

/* Fixtures that start threads (see threads_exit). */
static void compare_threaded(const char *const *cmd)
{
	const struct comparison c = { .cmd = cmd, .threads_exit = true };

	compare_with(&c);
}

Test(e2e_valgrind, exact)
{
	const char *cmd[] = { e2e_fixture("exact"), "--no-pvalloc", NULL };

	compare_threaded(cmd);
}

Test(e2e_valgrind, noleak)
{
	const char *cmd[] = { e2e_fixture("noleak"), NULL };

	compare_threaded(cmd);
}

/* C++: valgrind counts a block from operator new once, as stray must
 * (libstdc++'s new calls malloc, its delete free); libstdc++'s emergency
 * exception pool is outstanding for both. */
Test(e2e_valgrind, cxxleak)
{
	const char *cmd[] = { e2e_fixture("cxxleak"), NULL };

	compare(cmd);
}

Test(e2e_valgrind, demo)
{
	const char *cmd[] = { e2e_fixture("demo"), NULL };

	compare(cmd);
}

/* Real Debian programs, on inputs that do not change between the runs. */
Test(e2e_valgrind, sort)
{
	char path[] = "/tmp/stray-e2e-sort-XXXXXX";
	const char text[] = "pear\napple\nfig\nbanana\ncherry\n";
	int fd = mkstemp(path);
	const char *cmd[] = { "/usr/bin/sort", path, NULL };

	cr_assert(fd >= 0);
	cr_assert(write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1);
	close(fd);
	compare(cmd);
	unlink(path);
}

Test(e2e_valgrind, ls_long)
{
	const char *cmd[] = { "/bin/ls", "-l", "/", NULL };

	compare(cmd);
}

Test(e2e_valgrind, grep)
{
	const char *cmd[] = { "/bin/grep", "-c", "tcp", "/etc/services", NULL };

	compare(cmd);
}

/* A file at a fresh temporary path holding text; path is the mkstemp
 * template, filled in. */
static void write_temp_file(char *path, const char *text)
{
	int fd = mkstemp(path);
	size_t len = strlen(text);

	cr_assert(fd >= 0);
	cr_assert(write(fd, text, len) == (ssize_t)len);
	close(fd);
}

/* 20,000 numbered lines (about 110 KB) for the compressors (malloc'd). */
static char *numbers_text(void)
{
	size_t cap = 20000 * 8, len = 0;
	char *text = malloc(cap);

	cr_assert(text);
	for (int i = 1; i <= 20000; i++)
		len += snprintf(text + len, cap - len, "%d\n", i);
	return text;
}

static void write_numbers(char *path)
{
	char *text = numbers_text();

	write_temp_file(path, text);
	free(text);
}

/* String hashing seeded the same in every run, so that dict, set and hash
 * layouts repeat. */
static void fix_python_hash_seed(void)
{
	setenv("PYTHONHASHSEED", "0", 1);
}

static void fix_perl_hash_seed(void)
{
	setenv("PERL_HASH_SEED", "0", 1);
	setenv("PERL_PERTURB_KEYS", "0", 1);
}

/*
 * An interpreter: Debian's own python3 (by its path, never a pyenv shim).
 * The imports dlopen extension modules from lib-dynload (_json, _decimal,
 * _bz2 with libbz2): ld.so's allocations for dlopen are compared too.
 */
Test(e2e_valgrind, python3)
{
	const char *cmd[] = { "/usr/bin/python3", "-c",
			      "import bz2, collections, decimal, json, re\n"
			      "words = re.findall(r'\\w+', 'the quick brown fox jumps over the lazy dog ' * 40)\n"
			      "top = collections.Counter(words).most_common(3)\n"
			      "print(json.dumps(top), decimal.Decimal('1.10') * 3, len(bz2.compress(b'stray' * 1000)))\n",
			      NULL };

	fix_python_hash_seed();
	compare(cmd);
}

/* Perl (the system malloc; %ENV is copied at start, hence the shared
 * environment). */
Test(e2e_valgrind, perl)
{
	const char *cmd[] = { "/usr/bin/perl", "-e",
			      "my %h; $h{$_} = [($_) x 3] for 1 .. 300;"
			      " my @k = sort { $a <=> $b } keys %h;"
			      " printf \"%d %s\\n\", scalar @k, join(',', @{$h{$k[-1]}});",
			      NULL };

	fix_perl_hash_seed();
	compare(cmd);
}

/* A database: sqlite3 on a new database file (removed before each run):
 * a table, 500 inserts, an index, queries through it. */
static char sqlite_db[] = "/tmp/stray-e2e-sqlite-XXXXXX";

static void remove_sqlite_db(void)
{
	unlink(sqlite_db);
}

Test(e2e_valgrind, sqlite3)
{
	const char *cmd[] = { "/usr/bin/sqlite3", sqlite_db,
			      "create table t(id integer primary key, name text, v real);"
			      " with recursive c(x) as (select 1 union all select x + 1 from c where x < 500)"
			      " insert into t select x, 'name' || x, x * 1.5 from c;"
			      " create index t_name on t(name);"
			      " select count(*), sum(v) from t where name like 'name1%';"
			      " select name from t where id = 250;",
			      NULL };
	const struct comparison c = { .cmd = cmd, .reset = remove_sqlite_db };
	int fd = mkstemp(sqlite_db);

	cr_assert(fd >= 0);
	close(fd);
	compare_with(&c);
	unlink(sqlite_db);
}

/* A compression tool: xz compressing (level 1: a 9 MB encoder, most of it
 * still held at exit) and decompressing. */
Test(e2e_valgrind, xz_compress)
{
	char path[] = "/tmp/stray-e2e-xz-XXXXXX";
	const char *cmd[] = { "/usr/bin/xz", "-1", "-c", path, NULL };

	write_numbers(path);
	compare(cmd);
	unlink(path);
}

Test(e2e_valgrind, xz_decompress)
{
	char path[] = "/tmp/stray-e2e-unxz-XXXXXX", packed[64], shell[128];
	const char *cmd[] = { "/usr/bin/xz", "-d", "-c", packed, NULL };

	write_numbers(path);
	snprintf(packed, sizeof(packed), "%s.xz", path);
	snprintf(shell, sizeof(shell), "/usr/bin/xz -1 -k -f %s", path);
	cr_assert_eq(system(shell), 0, "%s failed", shell);
	compare(cmd);
	unlink(path);
	unlink(packed);
}

/* C++ from Debian (both link libstdc++; its emergency exception pool is
 * outstanding at exit for both tools): groff's tbl on a small table, and
 * pzstd, zstd's parallel front end, compressing with two worker threads. */
Test(e2e_valgrind, cxx_tbl)
{
	char path[] = "/tmp/stray-e2e-tbl-XXXXXX";
	const char *cmd[] = { "/usr/bin/tbl", path, NULL };

	write_temp_file(path, ".TS\ntab(:);\nl n.\napple:3\npear:10\nfig:7\n.TE\n");
	compare(cmd);
	unlink(path);
}

Test(e2e_valgrind, cxx_pzstd_threads)
{
	char path[] = "/tmp/stray-e2e-pzstd-XXXXXX";
	const char *cmd[] = { "/usr/bin/pzstd", "-q", "-p", "2", "-c", path, NULL };

	write_numbers(path);
	compare_threaded(cmd);
	unlink(path);
}

/* C++ with a child: apt-config (libapt-pkg) runs `dpkg
 * --print-foreign-architectures`; its own process is compared. */
Test(e2e_valgrind, cxx_apt_config_child)
{
	const char *cmd[] = { "/usr/bin/apt-config", "dump", NULL };
	const struct comparison c = { .cmd = cmd, .own_process_only = true };

	compare_with(&c);
}

/*
 * Attach mode. The program reads its input (a script, SQL, data) from a
 * FIFO, so it can be held at the same point in both runs: blocked on the
 * FIFO, everything before it done. valgrind runs it with --trace-malloc
 * (every allocation and free with its address), and the length of its log
 * at that point marks the attach; in the native run stray attaches with -p
 * there. Then the input is written and the program finishes. What stray
 * reports outstanding at exit must be what valgrind has in use at exit
 * minus the blocks in use then that were allocated before the attach
 * point (their frees after it are stray's unmatched frees; a block it
 * reallocates after it is a new block to both).
 */
struct traced_block {
	uint64_t addr, size;
	bool before_attach;
};

struct trace_replay {
	void *blocks; /* tsearch tree of struct traced_block, by address */
	int64_t live_bytes, live_blocks;
	int64_t early_bytes, early_blocks; /* live, allocated before the attach */
};

static int traced_block_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct traced_block *)a)->addr, y = ((const struct traced_block *)b)->addr;

	return x < y ? -1 : x > y;
}

static void replay_free(struct trace_replay *t, uint64_t addr)
{
	struct traced_block key = { .addr = addr }, *b;
	void *node = tfind(&key, &t->blocks, traced_block_cmp);

	if (!node)
		return;
	b = *(struct traced_block **)node;
	t->live_bytes -= b->size;
	t->live_blocks--;
	if (b->before_attach) {
		t->early_bytes -= b->size;
		t->early_blocks--;
	}
	tdelete(b, &t->blocks, traced_block_cmp);
	free(b);
}

static void replay_alloc(struct trace_replay *t, uint64_t addr, uint64_t size, bool before_attach)
{
	struct traced_block *b = malloc(sizeof(*b));

	cr_assert(b);
	*b = (struct traced_block){ .addr = addr, .size = size, .before_attach = before_attach };
	replay_free(t, addr); /* never live twice; valgrind never hands it out so */
	cr_assert(tsearch(b, &t->blocks, traced_block_cmp));
	t->live_bytes += size;
	t->live_blocks++;
	if (before_attach) {
		t->early_bytes += size;
		t->early_blocks++;
	}
}

/*
 * One --trace-malloc line: "--PID-- malloc(32) = 0x4C94A70", "calloc(1,32)",
 * "realloc(0x4C94830,1280)", "memalign(al 64, size 100)", "_Znwm(12)", and
 * frees without a result: "free(0x4C94AD0)", "_ZdlPv(0x4D71F70)".
 * realloc(NULL, n) is traced as the malloc it makes, on the same line:
 * "realloc(0x0,1600)malloc(1600) = 0x4A712F0".
 */
static void replay_line(struct trace_replay *t, const char *line, bool before_attach)
{
	char name[64], args[128], *tok, *save = NULL;
	unsigned long long ret = 0, v[2] = { 0, 0 }, size = 0;
	const char *body, *inner;
	int fields, start = -1;
	size_t n = 0;

	if (sscanf(line, "--%*d-- %n", &start) != 0 || start < 0)
		return;
	body = line + start;
	inner = strstr(body, ")malloc(");
	if (inner)
		body = inner + 1;
	fields = sscanf(body, "%63[A-Za-z0-9_](%127[^)]) = %llx", name, args, &ret);
	if (fields < 2)
		return;
	for (tok = strtok_r(args, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		tok += strspn(tok, " ");
		if (strncmp(tok, "size ", 5) == 0)
			size = strtoull(tok + 5, NULL, 0);
		else if (strncmp(tok, "al ", 3) != 0 && n < 2)
			v[n++] = strtoull(tok, NULL, 0);
	}
	if (fields == 2) {
		if (v[0])
			replay_free(t, v[0]);
		return;
	}
	if (!ret)
		return; /* a failed allocation: nothing changes */
	if (strcmp(name, "realloc") == 0) {
		if (v[0])
			replay_free(t, v[0]);
		size = v[1];
	} else if (strcmp(name, "calloc") == 0) {
		size = v[0] * v[1];
	} else if (n == 1) {
		size = v[0];
	}
	replay_alloc(t, ret, size, before_attach);
}

/* Replay valgrind's trace in log; lines in its first attach_offset bytes
 * were written before the attach point. */
static void replay_trace(const char *log, size_t attach_offset, struct trace_replay *t)
{
	char *text = e2e_slurp(log), *line, *save = NULL;

	cr_assert(text, "no valgrind log at %s", log);
	memset(t, 0, sizeof(*t));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		replay_line(t, line, (size_t)(line - text) < attach_offset);
	tdestroy(t->blocks, free);
	t->blocks = NULL;
	free(text);
}

/* Open fifo for writing once pid has it open for reading (O_NONBLOCK
 * fails with ENXIO until then); returns a blocking descriptor, closed on
 * exec: a copy in stray would keep the reader from ever seeing EOF. */
static int open_fifo_writer(const char *fifo, pid_t pid)
{
	double deadline = e2e_now_s() + 60;
	int fd;

	while ((fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		cr_assert(errno == ENXIO, "open %s: %s", fifo, strerror(errno));
		cr_assert(waitpid(pid, NULL, WNOHANG) == 0, "pid %d exited before opening %s", pid, fifo);
		cr_assert(e2e_now_s() < deadline, "pid %d did not open %s within 60 s", pid, fifo);
		e2e_sleep_s(0.01);
	}
	cr_assert(fcntl(fd, F_SETFL, 0) == 0);
	return fd;
}

/* Whether pid sleeps in read/poll/select (a FIFO without data). */
static bool blocked_in_input(pid_t pid)
{
	char path[64], buf[512], state = 0;
	long nr = -1;
	const char *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f && fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		state = p[2];
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/syscall", pid);
	f = fopen(path, "r");
	if (f && fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	if (f)
		fclose(f);
	return state == 'S' && (nr == SYS_read || nr == SYS_poll || nr == SYS_ppoll || nr == SYS_select ||
				nr == SYS_pselect6);
}

/* Wait until pid is blocked on its input, twice in a row 50 ms apart. */
static void wait_blocked(pid_t pid)
{
	double deadline = e2e_now_s() + 60;

	for (;;) {
		if (blocked_in_input(pid)) {
			e2e_sleep_s(0.05);
			if (blocked_in_input(pid))
				return;
		}
		cr_assert(waitpid(pid, NULL, WNOHANG) == 0, "pid %d exited before blocking on its input", pid);
		cr_assert(e2e_now_s() < deadline, "pid %d did not block on its input within 60 s", pid);
		e2e_sleep_s(0.02);
	}
}

static void write_all_and_close(int fd, const char *input)
{
	size_t len = strlen(input);

	cr_assert(write(fd, input, len) == (ssize_t)len);
	close(fd);
}

/* Size of the file at path now. */
static size_t file_size(const char *path)
{
	struct stat st;

	cr_assert(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return (size_t)st.st_size;
}

/* Run cmd under valgrind --trace-malloc, feeding input into fifo once it
 * blocks there: what is in use at exit, split at that point. */
static void valgrind_attach_run(const char *const *cmd, const char *fifo, const char *input, struct vg_result *vg,
				struct trace_replay *t)
{
	const char *traced[34] = { "--trace-malloc=yes" };
	char log[] = "/tmp/stray-e2e-vg-XXXXXX", logopt[64];
	int fd = mkstemp(log), ofd = output_file(), wfd;
	size_t n = 1, attach_offset;
	pid_t pid;

	cr_assert(fd >= 0);
	close(fd);
	for (size_t i = 0; cmd[i] && n < 33; i++)
		traced[n++] = cmd[i];
	traced[n] = NULL;
	snprintf(logopt, sizeof(logopt), "--log-file=%s", log);
	pid = spawn_valgrind(traced, logopt, ofd);
	wfd = open_fifo_writer(fifo, pid);
	wait_blocked(pid);
	attach_offset = file_size(log);
	write_all_and_close(wfd, input);
	cr_assert_eq(e2e_wait_status(pid, 120), 0, "%s failed under valgrind", cmd[0]);
	close(ofd);
	replay_trace(log, attach_offset, t);
	read_valgrind_log(log, cmd[0], vg);
	cr_assert(t->live_bytes == vg->in_use_bytes && t->live_blocks == vg->in_use_blocks,
		  "%s: valgrind's trace replays to %ld bytes in %ld blocks, its summary says %ld in %ld", cmd[0],
		  (long)t->live_bytes, (long)t->live_blocks, (long)vg->in_use_bytes, (long)vg->in_use_blocks);
}

/* cmd reads input from fifo (a path in cmd). */
static void compare_attach(const char *const *cmd, const char *fifo, const char *input)
{
	char pidstr[16];
	const char *args[] = { "-v", "-p", pidstr, NULL };
	struct trace_replay t;
	struct vg_result vg;
	struct e2e_run r;
	pid_t pid, stray;
	int ofd, wfd;

	cr_assert(mkfifo(fifo, 0600) == 0, "mkfifo %s: %s", fifo, strerror(errno));
	valgrind_attach_run(cmd, fifo, input, &vg, &t);
	take_valgrind_client_env();
	ofd = output_file();
	pid = spawn_with_output(cmd, ofd);
	wfd = open_fifo_writer(fifo, pid);
	wait_blocked(pid);
	snprintf(pidstr, sizeof(pidstr), "%d", pid);
	stray = e2e_stray_start(&r, args);
	e2e_wait_attached(&r, stray);
	write_all_and_close(wfd, input);
	cr_assert_eq(e2e_wait_status(pid, 60), 0, "%s failed under stray", cmd[0]);
	close(ofd);
	e2e_stray_wait(&r, stray, 60);
	unlink(fifo);
	cr_assert(r.report, "no JSON report for %s (status %d): %s", cmd[0], r.status, r.err);
	cr_log_info("%s -p: valgrind %ld bytes in %ld blocks in use at exit, %ld in %ld of them from before the attach; stray %ld bytes in %ld, %ld unmatched frees",
		    cmd[0], (long)vg.in_use_bytes, (long)vg.in_use_blocks, (long)t.early_bytes, (long)t.early_blocks,
		    (long)e2e_int(r.report, "totals.outstanding_bytes"),
		    (long)e2e_int(r.report, "totals.outstanding_allocations"),
		    (long)e2e_int(r.report, "totals.unmatched_frees"));
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), vg.in_use_bytes - t.early_bytes,
		     "%s -p: stray %ld outstanding bytes, valgrind %ld in use at exit, %ld of it from before the attach",
		     cmd[0], (long)e2e_int(r.report, "totals.outstanding_bytes"), (long)vg.in_use_bytes,
		     (long)t.early_bytes);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), vg.in_use_blocks - t.early_blocks,
		     "%s -p: stray %ld outstanding allocations, valgrind %ld blocks at exit, %ld from before the attach",
		     cmd[0], (long)e2e_int(r.report, "totals.outstanding_allocations"), (long)vg.in_use_blocks,
		     (long)t.early_blocks);
	e2e_run_free(&r);
}

/* A FIFO path that does not exist yet. */
static void fifo_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "/tmp/stray-e2e-%s-%d.fifo", name, getpid());
	unlink(buf);
}

Test(e2e_valgrind, attach_xz)
{
	char fifo[64];
	const char *cmd[] = { "/usr/bin/xz", "-1", "-c", fifo, NULL };
	char *text = numbers_text();

	fifo_path(fifo, sizeof(fifo), "xz");
	compare_attach(cmd, fifo, text);
	free(text);
}

Test(e2e_valgrind, attach_sqlite3)
{
	char fifo[64], dot_read[80];
	const char *cmd[] = { "/usr/bin/sqlite3", ":memory:", dot_read, NULL };

	fifo_path(fifo, sizeof(fifo), "sqlite");
	snprintf(dot_read, sizeof(dot_read), ".read %s", fifo);
	compare_attach(cmd, fifo,
		       "create table t(id integer primary key, name text);\n"
		       "with recursive c(x) as (select 1 union all select x + 1 from c where x < 300)"
		       " insert into t select x, 'name' || x from c;\n"
		       "create index t_name on t(name);\n"
		       "select count(*) from t where name like 'name2%';\n");
}

/* A program whose one argument is its input file (a script, a table),
 * here the FIFO. */
static void compare_attach_file(const char *program, const char *input)
{
	char fifo[64];
	const char *cmd[] = { program, fifo, NULL };

	fifo_path(fifo, sizeof(fifo), "input");
	compare_attach(cmd, fifo, input);
}

Test(e2e_valgrind, attach_python3)
{
	fix_python_hash_seed();
	compare_attach_file("/usr/bin/python3",
			      "import collections, json\n"
			      "words = 'the quick brown fox jumps over the lazy dog the end'.split() * 30\n"
			      "print(json.dumps(collections.Counter(words).most_common(2)))\n");
}

Test(e2e_valgrind, attach_perl)
{
	fix_perl_hash_seed();
	compare_attach_file("/usr/bin/perl",
			      "my %h; $h{$_} = [($_) x 2] for 1 .. 200; print scalar(keys %h), \"\\n\";\n");
}

Test(e2e_valgrind, attach_cxx_tbl)
{
	compare_attach_file("/usr/bin/tbl", ".TS\ntab(:);\nl n.\napple:3\npear:10\nfig:7\n.TE\n");
}
