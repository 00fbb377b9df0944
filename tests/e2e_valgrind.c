// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * stray against valgrind (memcheck) on deterministic programs: what valgrind
 * says is "in use at exit" must be exactly stray's outstanding bytes and
 * blocks, and its "total heap usage" exactly stray's allocations and frees.
 * --run-libc-freeres=no: stray does not make glibc free its internals at
 * exit either. Fixtures avoid pvalloc (valgrind 3.19 aborts on it) and
 * realloc(p, 0) (valgrind 3.19 does not free there as glibc does).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Fork valgrind (memcheck, freeres off, log to logopt) on cmd with stdout
 * and stderr in out_fd; returns its pid. */
static pid_t spawn_valgrind(const char *const *cmd, const char *logopt, int out_fd)
{
	const char *argv[32];
	size_t n = 0;
	pid_t pid;

	argv[n++] = VALGRIND;
	argv[n++] = "--run-libc-freeres=no";
	argv[n++] = "--run-cxx-freeres=no";
	argv[n++] = logopt;
	for (size_t i = 0; cmd[i] && n < 31; i++)
		argv[n++] = cmd[i];
	argv[n] = NULL;
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		execv(argv[0], (char **)argv);
		_exit(126);
	}
	return pid;
}

static void run_valgrind(const char *const *cmd, struct vg_result *res)
{
	char log[] = "/tmp/stray-e2e-vg-XXXXXX", logopt[64], buf[8192];
	/* stdout and stderr to a regular file, as under e2e_stray_run:
	 * programs look at what their output is (GNU grep stops at the first
	 * match when it is /dev/null; Python's io raises, and allocates for,
	 * an "Illegal seek" on a pipe). */
	char out[] = "/tmp/stray-e2e-vgout-XXXXXX";
	int fd = mkstemp(log), ofd = mkstemp(out), status;
	const char *p;
	ssize_t len;

	cr_assert(fd >= 0 && ofd >= 0);
	unlink(out);
	snprintf(logopt, sizeof(logopt), "--log-file=%s", log);
	status = e2e_wait_status(spawn_valgrind(cmd, logopt, ofd), 120);
	close(ofd);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	unlink(log);
	buf[len > 0 ? len : 0] = '\0';
	cr_assert(status != 126 && status < 128, "valgrind did not run %s:\n%s", cmd[0], buf);
	p = strstr(buf, "in use at exit: ");
	cr_assert(p, "no 'in use at exit' in valgrind's log for %s:\n%s", cmd[0], buf);
	p += strlen("in use at exit: ");
	res->in_use_bytes = parse_count(p);
	p = strstr(p, " bytes in ");
	cr_assert(p);
	res->in_use_blocks = parse_count(p + strlen(" bytes in "));
	p = strstr(buf, "total heap usage: ");
	cr_assert(p, "no 'total heap usage' in valgrind's log:\n%s", buf);
	p += strlen("total heap usage: ");
	res->allocs = parse_count(p);
	p = strstr(p, " allocs, ");
	cr_assert(p);
	res->frees = parse_count(p + strlen(" allocs, "));
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
};

static void compare_with(const struct comparison *c)
{
	const char *const *cmd = c->cmd;
	const char *args[32] = { "--" };
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
	cr_log_info("%s: valgrind %ld bytes in %ld blocks, %ld allocs, %ld frees; stray %ld bytes in %ld, %ld allocs, %ld frees, %ld unmatched",
		    cmd[0], (long)vg.in_use_bytes, (long)vg.in_use_blocks, (long)vg.allocs, (long)vg.frees,
		    (long)e2e_int(r.report, "totals.outstanding_bytes"),
		    (long)e2e_int(r.report, "totals.outstanding_allocations"), (long)e2e_int(r.report, "totals.allocations"),
		    (long)e2e_int(r.report, "totals.frees"), (long)e2e_int(r.report, "totals.unmatched_frees"));
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_bytes"), vg.in_use_bytes,
		     "%s: stray %ld outstanding bytes, valgrind %ld in use", cmd[0],
		     (long)e2e_int(r.report, "totals.outstanding_bytes"), (long)vg.in_use_bytes);
	cr_expect_eq(e2e_int(r.report, "totals.outstanding_allocations"), vg.in_use_blocks,
		     "%s: stray %ld outstanding allocations, valgrind %ld blocks", cmd[0],
		     (long)e2e_int(r.report, "totals.outstanding_allocations"), (long)vg.in_use_blocks);
	cr_expect_eq(e2e_int(r.report, "totals.allocations"), vg.allocs, "%s: stray %ld allocations, valgrind %ld",
		     cmd[0], (long)e2e_int(r.report, "totals.allocations"), (long)vg.allocs);
	cr_expect_eq(e2e_int(r.report, "totals.frees"), vg.frees, "%s: stray %ld frees, valgrind %ld", cmd[0],
		     (long)e2e_int(r.report, "totals.frees"), (long)vg.frees);
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

/*
 * An interpreter: Debian's own python3 (by its path, never a pyenv shim),
 * with string hashing fixed so that dict and set layouts repeat. The
 * imports load extension modules from lib-dynload (_decimal with libmpdec,
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

	setenv("PYTHONHASHSEED", "0", 1);
	compare(cmd);
}

/* Perl (the system malloc; %ENV is copied at start, hence the shared
 * environment), with its hash seed fixed. */
Test(e2e_valgrind, perl)
{
	const char *cmd[] = { "/usr/bin/perl", "-e",
			      "my %h; $h{$_} = [($_) x 3] for 1 .. 300;"
			      " my @k = sort { $a <=> $b } keys %h;"
			      " printf \"%d %s\\n\", scalar @k, join(',', @{$h{$k[-1]}});",
			      NULL };

	setenv("PERL_HASH_SEED", "0", 1);
	setenv("PERL_PERTURB_KEYS", "0", 1);
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

/* 20,000 numbered lines (about 110 KB) for the compressors. */
static void write_numbers(char *path)
{
	size_t cap = 20000 * 8, len = 0;
	char *text = malloc(cap);

	cr_assert(text);
	for (int i = 1; i <= 20000; i++)
		len += snprintf(text + len, cap - len, "%d\n", i);
	write_temp_file(path, text);
	free(text);
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
