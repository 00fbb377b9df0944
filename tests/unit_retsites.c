// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * retsites: the ret instructions through which a function returns to its
 * caller, found on hand-written machine code in this test binary whose
 * answer is known: every ret label is its own (global, STT_FUNC) symbol,
 * located independently with elfsym.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include "elfsym.h"
#include "retsites.h"

#if defined(__x86_64__)
/*
 * rs_entry returns through ret1 (branch not taken), through ret2 (after a
 * call, which is stepped over) and, by a conditional tail jump, through
 * rs_tail's ret. rs_helper is only called: its ret returns to rs_entry,
 * not to rs_entry's caller, and must not be reported.
 */
__asm__(".text\n"
	".globl rs_entry\n.type rs_entry,@function\n"
	"rs_entry:\n"
	"	test %edi, %edi\n"
	"	jne 1f\n"
	".globl rs_ret1\n.type rs_ret1,@function\n"
	"rs_ret1:\n"
	"	ret\n"
	"1:	cmp $5, %edi\n"
	"	jg rs_tail\n"
	"	call rs_helper\n"
	".globl rs_ret2\n.type rs_ret2,@function\n"
	"rs_ret2:\n"
	"	ret\n"
	".globl rs_tail\n.type rs_tail,@function\n"
	"rs_tail:\n"
	"	mov $1, %eax\n"
	".globl rs_tail_ret\n.type rs_tail_ret,@function\n"
	"rs_tail_ret:\n"
	"	ret\n"
	".globl rs_helper\n.type rs_helper,@function\n"
	"rs_helper:\n"
	"	xor %eax, %eax\n"
	".globl rs_helper_ret\n.type rs_helper_ret,@function\n"
	"rs_helper_ret:\n"
	"	ret\n");

enum { ENTRY, RET1, RET2, TAIL_RET, HELPER_RET, NNAMES };
static const char *const names[NNAMES] = { "rs_entry", "rs_ret1", "rs_ret2", "rs_tail_ret", "rs_helper_ret" };

static void offsets_of(uint64_t *off)
{
	bool found[NNAMES];

	cr_assert_eq(elfsym__find_functions("/proc/self/exe", names, NNAMES, off, found), NNAMES,
		     "the test's own symbols are missing");
}

static bool has(const uint64_t *sites, int n, uint64_t off)
{
	for (int i = 0; i < n; i++)
		if (sites[i] == off)
			return true;
	return false;
}

Test(retsites, rets_through_branches_and_tail_jumps_not_calls)
{
	uint64_t off[NNAMES], sites[16];
	int n;

	offsets_of(off);
	n = retsites__find("/proc/self/exe", off[ENTRY], sites, 16);
	cr_assert_eq(n, 3, "%d sites, expected 3", n);
	cr_expect(has(sites, n, off[RET1]), "the ret after the untaken branch is missing");
	cr_expect(has(sites, n, off[RET2]), "the ret after the call is missing");
	cr_expect(has(sites, n, off[TAIL_RET]), "the ret of the tail-jumped function is missing");
	cr_expect(!has(sites, n, off[HELPER_RET]), "the called function's ret is not the caller's return");
}

Test(retsites, too_many_sites_is_an_error)
{
	uint64_t off[NNAMES], sites[2];

	offsets_of(off);
	cr_expect_eq(retsites__find("/proc/self/exe", off[ENTRY], sites, 2), -E2BIG);
}
#endif

Test(retsites, not_an_elf_file)
{
	uint64_t sites[4];

	cr_expect_lt(retsites__find("/etc/hostname", 0, sites, 4), 0);
	cr_expect_eq(retsites__find("/nonexistent-stray-file", 0, sites, 4), -ENOENT);
}
