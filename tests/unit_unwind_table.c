// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * unwind_table: the rows built from libc's and this program's .eh_frame,
 * checked against what holds for any x86-64 code (at a function's first
 * instruction the CFA is sp + 8, the return address just pushed), with the
 * function addresses taken from the running process (dladdr), and the
 * table's invariants (sorted, compact) and bounds.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unwind_table.h"

__attribute__((noinline)) int stray_unit_unwind_leaf(int x)
{
	return x * 3 + 1;
}

/* The row at function fn's first instruction, in the module it is in. */
static struct stray_unwind_row entry_row(void *fn, struct unwind_table *t)
{
	const struct stray_unwind_row *row;
	Dl_info info;

	const char *path;

	cr_assert(dladdr(fn, &info) && info.dli_fname);
	/* The executable is named as it was run (criterion's worker name). */
	path = strchr(info.dli_fname, '/') ? info.dli_fname : "/proc/self/exe";
	cr_assert_eq(unwind_table__build(path, 1u << 22, t), 0, "no table for %s", path);
	row = unwind_table__lookup(t, (uintptr_t)fn - (uintptr_t)info.dli_fbase);
	cr_assert(row, "no row at %p in %s", fn, info.dli_fname);
	return *row;
}

Test(unwind_table, function_entry_is_sp_plus_8)
{
	void *fns[] = { (void *)malloc, (void *)qsort, (void *)stray_unit_unwind_leaf };

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		struct unwind_table t;
		struct stray_unwind_row row = entry_row(fns[i], &t);

		cr_assert_eq(row.cfa_rule, STRAY_CFA_SP, "function %zu: rule %u", i, row.cfa_rule);
		cr_assert_eq(row.cfa_off, 8, "function %zu: CFA = sp + %d", i, row.cfa_off);
		cr_assert_eq(row.fp_rule, STRAY_FP_SAME);
		unwind_table__clear(&t);
	}
}

Test(unwind_table, sorted_compact_with_build_id)
{
	struct unwind_table t;
	Dl_info info;
	size_t plt = 0;

	cr_assert(dladdr((void *)malloc, &info));
	cr_assert_eq(unwind_table__build(info.dli_fname, 1u << 22, &t), 0);
	cr_assert_gt(t.nrows, 1000);
	cr_assert_eq(strlen(t.build_id), 40);
	for (size_t i = 1; i < t.nrows; i++) {
		const struct stray_unwind_row *a = &t.rows[i - 1], *b = &t.rows[i];

		cr_assert_lt(a->pc, b->pc, "rows %zu and %zu out of order", i - 1, i);
		cr_assert(a->cfa_rule != b->cfa_rule || a->cfa_off != b->cfa_off || a->fp_rule != b->fp_rule ||
			  a->fp_off != b->fp_off, "rows %zu and %zu repeat one rule", i - 1, i);
		plt += b->cfa_rule == STRAY_CFA_PLT;
	}
	/* libc's lazy PLT has the well-known CFA expression. */
	cr_assert_eq(plt, 1);
	unwind_table__clear(&t);
}

Test(unwind_table, bounded_and_bad_input)
{
	struct unwind_table t;
	Dl_info info;

	cr_assert(dladdr((void *)malloc, &info));
	cr_assert_eq(unwind_table__build(info.dli_fname, 100, &t), -E2BIG);
	cr_assert_eq(unwind_table__build("/etc/passwd", 1000, &t), -ENOEXEC);
	cr_assert_eq(unwind_table__build("/nonexistent/libx.so", 1000, &t), -ENOENT);
}

Test(unwind_table, interpreter)
{
	char interp[256];

	cr_assert_eq(unwind_table__interpreter("/proc/self/exe", interp, sizeof(interp)), 0);
	cr_assert(strstr(interp, "ld-linux"), "%s", interp);
}
