// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Probe placement: the decoder's choice on hand-assembled code for each
 * rule, and on the real allocators Debian ships (glibc, jemalloc,
 * tcmalloc), whose first instructions are what the overhead work is about
 * (glibc's free starts with test %rdi,%rdi, which the kernel single-steps).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "elfsym.h"
#include "placement.h"

#define LIBDIR "/usr/lib/x86_64-linux-gnu/"
#define GLIBC LIBDIR "libc.so.6"
#define JEMALLOC LIBDIR "libjemalloc.so.2"
#define TCMALLOC LIBDIR "libtcmalloc.so.4"

static struct placement decide(const uint8_t *code, size_t len, unsigned nargs)
{
	struct placement p;

	cr_assert_eq(placement__decide(code, len, 0x1000, nargs, &p), 0);
	return p;
}

/* The placement of function name in lib; *entry gets its entry offset. */
static struct placement place(const char *lib, const char *name, unsigned nargs, uint64_t *entry)
{
	const char *names[] = { name };
	struct placement p;
	bool found;

	cr_assert_eq(elfsym__find_functions(lib, names, 1, entry, &found), 1, "%s in %s", name, lib);
	cr_assert_eq(placement__in_file(lib, *entry, nargs, &p), 0, "%s in %s", name, lib);
	return p;
}

static void assert_moved(const char *lib, const char *name, unsigned nargs, uint32_t skipped,
			 const char *insn_prefix)
{
	uint64_t entry;
	struct placement p = place(lib, name, nargs, &entry);

	cr_assert(p.emulated, "%s: %s", name, p.why);
	cr_assert_eq(p.skipped, skipped, "%s: %u skipped", name, p.skipped);
	cr_assert_gt(p.offset, entry, "%s", name);
	cr_assert_eq(strncmp(p.insn, insn_prefix, strlen(insn_prefix)), 0, "%s: probe on '%s'", name, p.insn);
}

static void assert_at_entry(const char *lib, const char *name, unsigned nargs, bool emulated)
{
	uint64_t entry;
	struct placement p = place(lib, name, nargs, &entry);

	cr_assert_eq(p.offset, entry, "%s: moved to +%#lx (%s)", name, (unsigned long)(p.offset - entry), p.why);
	cr_assert_eq(p.skipped, 0);
	cr_assert_eq(p.emulated, emulated, "%s: %s", name, p.why);
}

/* ---- rules, on hand-assembled code ---- */

Test(placement, jcc_after_a_test_of_the_argument)
{
	/* test %rdi,%rdi; je +2; push %rbx */
	static const uint8_t code[] = { 0x48, 0x85, 0xff, 0x74, 0x02, 0x53, 0xc3 };
	struct placement p = decide(code, sizeof(code), 1);

	cr_assert(p.emulated);
	cr_assert_eq(p.offset, 0x1003);
	cr_assert_eq(p.skipped, 1);
}

Test(placement, emulated_entry_stays)
{
	/* push %r12 */
	static const uint8_t code[] = { 0x41, 0x54, 0xc3 };
	struct placement p = decide(code, sizeof(code), 1);

	cr_assert(p.emulated);
	cr_assert_eq(p.offset, 0x1000);
}

Test(placement, argument_register_write_keeps_the_entry)
{
	/* mov %rax,%rdi; push %rbx */
	static const uint8_t code[] = { 0x48, 0x89, 0xc7, 0x53, 0xc3 };
	struct placement p = decide(code, sizeof(code), 1);

	cr_assert_not(p.emulated);
	cr_assert_eq(p.offset, 0x1000);
}

Test(placement, only_the_arguments_read_are_kept)
{
	/* mov $1,%ecx; push %rbx: fine for 3 arguments, not for 4 */
	static const uint8_t code[] = { 0xb9, 0x01, 0x00, 0x00, 0x00, 0x53, 0xc3 };

	cr_assert_eq(decide(code, sizeof(code), 3).offset, 0x1005);
	cr_assert_eq(decide(code, sizeof(code), 4).offset, 0x1000);
}

Test(placement, stack_pointer_change_keeps_the_entry)
{
	/* sub $8,%rsp; push %rbx: [rsp] is no longer the return address */
	static const uint8_t code[] = { 0x48, 0x83, 0xec, 0x08, 0x53, 0xc3 };

	cr_assert_eq(decide(code, sizeof(code), 1).offset, 0x1000);
}

Test(placement, memory_write_keeps_the_entry)
{
	/* mov %rsi,0x8(%rsp); push %rbx */
	static const uint8_t code[] = { 0x48, 0x89, 0x74, 0x24, 0x08, 0x53, 0xc3 };

	cr_assert_eq(decide(code, sizeof(code), 1).offset, 0x1000);
}

Test(placement, frame_pointer_write_keeps_the_entry)
{
	/* mov %rdi,%rbp; push %rbx: an entry stack walk starts at %rbp */
	static const uint8_t code[] = { 0x48, 0x89, 0xfd, 0x53, 0xc3 };

	cr_assert_eq(decide(code, sizeof(code), 1).offset, 0x1000);
}

Test(placement, operand_size_prefix_is_not_emulated)
{
	/* xchg %ax,%ax (66 90: the kernel refuses 0x66); push %rbx */
	static const uint8_t code[] = { 0x66, 0x90, 0x53, 0xc3 };
	struct placement p = decide(code, sizeof(code), 1);

	cr_assert_eq(p.offset, 0x1002);
	cr_assert_eq(p.skipped, 1);
}

Test(placement, branch_back_into_the_skipped_code_keeps_the_entry)
{
	/* 0: test %rdi,%rdi; 3: je +2; 5: jmp 3; 7: ret — a loop through
	 * the probe would count one call many times */
	static const uint8_t code[] = { 0x48, 0x85, 0xff, 0x74, 0x02, 0xeb, 0xfc, 0xc3 };
	struct placement p = decide(code, sizeof(code), 1);

	cr_assert_eq(p.offset, 0x1000, "%s", p.why);
}

Test(placement, syscall_keeps_the_entry)
{
	/* mov $0xb,%eax; syscall; ret (glibc's munmap) */
	static const uint8_t code[] = { 0xb8, 0x0b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3 };

	cr_assert_eq(decide(code, sizeof(code), 2).offset, 0x1000);
}

Test(placement, nothing_emulated_keeps_the_entry)
{
	/* test %rdi,%rdi x 20 */
	uint8_t code[60];

	for (size_t i = 0; i < sizeof(code); i += 3)
		memcpy(code + i, (uint8_t[]){ 0x48, 0x85, 0xff }, 3);
	cr_assert_eq(decide(code, sizeof(code), 1).offset, 0x1000);
}

Test(placement, undecodable_code)
{
	/* the first byte of a two-byte opcode, cut short */
	static const uint8_t code[] = { 0x0f };
	struct placement p;

	cr_assert_eq(placement__decide(code, sizeof(code), 0x1000, 1, &p), -EINVAL);
	cr_assert_eq(p.offset, 0x1000);
}

Test(placement, missing_file)
{
	struct placement p;

	cr_assert_lt(placement__in_file("/nonexistent/libc.so.6", 0x1000, 1, &p), 0);
	cr_assert_eq(p.offset, 0x1000);
}

/* ---- Debian's allocators ---- */

Test(placement_glibc, free_moves_past_its_null_test)
{
	assert_moved(GLIBC, "free", 1, 1, "je");
}

Test(placement_glibc, functions_that_start_with_push_stay)
{
	assert_at_entry(GLIBC, "malloc", 1, true);
	assert_at_entry(GLIBC, "calloc", 2, true);
	assert_at_entry(GLIBC, "realloc", 2, true);
}

Test(placement_glibc, rip_relative_compare_is_skipped)
{
	assert_moved(GLIBC, "posix_memalign", 3, 1, "push");
	assert_moved(GLIBC, "memalign", 2, 1, "je");
	assert_moved(GLIBC, "valloc", 1, 1, "push");
}

Test(placement_glibc, mmap_moves_to_its_alignment_test)
{
	assert_moved(GLIBC, "mmap", 4, 2, "jne");
}

Test(placement_glibc, reallocarray_mul_clobbers_its_third_argument)
{
	assert_at_entry(GLIBC, "reallocarray", 3, false);
}

Test(placement_glibc, munmap_and_mremap_stay)
{
	assert_at_entry(GLIBC, "munmap", 2, false);
	assert_at_entry(GLIBC, "mremap", 4, false);
}

Test(placement_jemalloc, malloc_moves_to_its_size_class_branch)
{
	assert_moved(JEMALLOC, "malloc", 1, 1, "ja");
}

Test(placement_jemalloc, calloc_and_realloc_stay)
{
	assert_at_entry(JEMALLOC, "calloc", 2, true);
	assert_at_entry(JEMALLOC, "realloc", 2, true);
}

Test(placement_tcmalloc, malloc_and_new_move_to_their_cache_test)
{
	assert_moved(TCMALLOC, "malloc", 1, 3, "jne");
	assert_moved(TCMALLOC, "_Znwm", 1, 3, "jne");
}

Test(placement_tcmalloc, free_moves_to_its_cache_test)
{
	assert_moved(TCMALLOC, "free", 1, 2, "jne");
}

Test(placement_tcmalloc, calloc_move_depends_on_the_arguments_read)
{
	uint64_t entry;

	/* calloc loads %rcx first: harmless for its 2 arguments... */
	assert_moved(TCMALLOC, "calloc", 2, 2, "jne");
	/* ...not for a function whose 4th argument is read */
	cr_assert_eq(place(TCMALLOC, "calloc", 4, &entry).offset, entry);
}
