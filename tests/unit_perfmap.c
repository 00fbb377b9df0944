// SPDX-License-Identifier: GPL-2.0-or-later
/* perfmap: perf map files of JIT code, alone and through the symbolizer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "perfmap.h"
#include "symbolize.h"

/* Write text to dir/tmp/perf-PID.map (dir made here); returns the path. */
static char *write_map(char *dir, int pid, const char *text)
{
	static char path[PATH_MAX];
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tmp", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/tmp/perf-%d.map", dir, pid);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void remove_map(const char *dir, const char *path)
{
	char tmp[PATH_MAX];

	unlink(path);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	rmdir(tmp);
	rmdir(dir);
}

Test(perfmap, lookup_covers_start_to_end_and_later_lines_win)
{
	char dir[] = "/tmp/stray-perfmap-XXXXXX";
	const char *path = write_map(dir, 1, "1000 100 first\n"
					     "garbage line\n"
					     "2000 0 empty\n"
					     "1080 20 reused\n"
					     "3000 10 LazyCompile:*foo /app/x.js:3\n");
	struct perfmap *m = perfmap__read(path, 100);
	uint64_t start = 0;

	cr_assert_not_null(m);
	cr_assert_eq(perfmap__count(m), 3, "malformed and empty lines are skipped");
	cr_assert_str_eq(perfmap__lookup(m, 0x1000, &start), "first");
	cr_assert_eq(start, 0x1000);
	cr_assert_str_eq(perfmap__lookup(m, 0x1090, &start), "reused");
	cr_assert_eq(start, 0x1080);
	cr_assert_str_eq(perfmap__lookup(m, 0x10a0, NULL), "first");
	cr_assert_null(perfmap__lookup(m, 0x1100, NULL));
	cr_assert_null(perfmap__lookup(m, 0xfff, NULL));
	cr_assert_str_eq(perfmap__lookup(m, 0x3004, NULL), "LazyCompile:*foo /app/x.js:3");
	perfmap__free(m);
	remove_map(dir, path);
}

Test(perfmap, bounded_and_missing)
{
	char dir[] = "/tmp/stray-perfmap-XXXXXX";
	const char *path = write_map(dir, 1, "1000 10 a\n2000 10 b\n3000 10 c\n");
	struct perfmap *m = perfmap__read(path, 2);

	cr_assert_eq(perfmap__count(m), 2);
	cr_assert_null(perfmap__lookup(m, 0x3000, NULL));
	perfmap__free(m);
	perfmap__free(NULL);
	remove_map(dir, path);
	cr_assert_null(perfmap__read(path, 2));
	cr_assert_eq(errno, ENOENT);
}

/* An address in no file mapping is looked up in root/tmp/perf-PID.map,
 * and the frame names the map as the process sees it. */
Test(perfmap, symbolizer_names_jit_frames)
{
	char dir[] = "/tmp/stray-perfmap-XXXXXX", module[64];
	const char *path = write_map(dir, getpid(), "7f0000001000 40 jit_fn\n");
	struct symbolizer *s = symbolizer__new();
	struct report_frame f;

	cr_assert_eq(symbolizer__set_maps(s, getpid(), "", dir), 0);
	cr_assert_eq(symbolizer__resolve_frames(s, getpid(), 0x7f0000001010, &f, 1), 1);
	snprintf(module, sizeof(module), "/tmp/perf-%d.map", getpid());
	cr_assert_str_eq(f.module, module);
	cr_assert_str_eq(f.function, "jit_fn");
	cr_assert_eq(f.offset, 0x10);
	cr_assert_eq(f.address, 0x7f0000001010);
	cr_assert_eq(symbolizer__resolve_frames(s, getpid(), 0x7f0000002000, &f, 1), 1);
	cr_assert_str_eq(f.module, "[unknown]");
	symbolizer__free(s);
	remove_map(dir, path);
}
