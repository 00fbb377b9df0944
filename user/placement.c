// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <capstone/capstone.h>
#include "placement.h"

bool placement__disabled(void)
{
	const char *v = getenv("STRAY_PLACEMENT");

	return v && !strcmp(v, "entry");
}

static void at_entry(uint64_t offset, const char *why, struct placement *out)
{
	memset(out, 0, sizeof(*out));
	out->offset = offset;
	out->why = why;
}

#ifdef __x86_64__

/* The System V argument registers, then the stack and frame pointers
 * (the frame pointer is where an entry probe's stack walk starts). */
enum kept_reg { KEEP_RDI, KEEP_RSI, KEEP_RDX, KEEP_RCX, KEEP_R8, KEEP_R9, KEEP_RSP, KEEP_RBP };

/* Which kept register a (sub)register write clobbers, or -1. */
static int kept_reg_of(unsigned reg)
{
	switch (reg) {
	case X86_REG_RDI: case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL:
		return KEEP_RDI;
	case X86_REG_RSI: case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL:
		return KEEP_RSI;
	case X86_REG_RDX: case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL: case X86_REG_DH:
		return KEEP_RDX;
	case X86_REG_RCX: case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL: case X86_REG_CH:
		return KEEP_RCX;
	case X86_REG_R8: case X86_REG_R8D: case X86_REG_R8W: case X86_REG_R8B:
		return KEEP_R8;
	case X86_REG_R9: case X86_REG_R9D: case X86_REG_R9W: case X86_REG_R9B:
		return KEEP_R9;
	case X86_REG_RSP: case X86_REG_ESP: case X86_REG_SP: case X86_REG_SPL:
		return KEEP_RSP;
	case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL:
		return KEEP_RBP;
	}
	return -1;
}

static bool has_prefix(const cs_x86 *x)
{
	for (int i = 0; i < 4; i++)
		if (x->prefix[i])
			return true;
	return false;
}

/*
 * Whether the kernel emulates in rather than single-stepping it, by its
 * opcode as arch/x86/kernel/uprobes.c decides: push of a 64-bit register
 * (REX.B allowed), nop (0x90), jmp rel8/rel32, call rel32, jcc rel8/rel32.
 * Anything with a legacy prefix is left out (the kernel refuses 0x66 and
 * stray does not bet on the others), and so is every other REX prefix.
 */
static bool kernel_emulates(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;
	uint8_t op = x->opcode[0];

	if (has_prefix(x))
		return false;
	if (op >= 0x50 && op <= 0x57)
		return !x->rex || x->rex == 0x41;
	if (x->rex)
		return false;
	if (op == 0x90 || op == 0xeb || op == 0xe9 || op == 0xe8 || (op >= 0x70 && op <= 0x7f))
		return true;
	return op == 0x0f && x->opcode[1] >= 0x80 && x->opcode[1] <= 0x8f;
}

static bool changes_control_flow(csh h, const cs_insn *in)
{
	return cs_insn_group(h, in, CS_GRP_JUMP) || cs_insn_group(h, in, CS_GRP_CALL) ||
	       cs_insn_group(h, in, CS_GRP_RET) || cs_insn_group(h, in, CS_GRP_INT) ||
	       cs_insn_group(h, in, CS_GRP_IRET) || cs_insn_group(h, in, CS_GRP_PRIVILEGE) ||
	       in->id == X86_INS_SYSCALL || in->id == X86_INS_SYSENTER || in->id == X86_INS_UD2;
}

/* Whether in, run before the probe, leaves the first nargs argument
 * registers, the stack and frame pointers and memory as they were, and
 * falls through. */
static bool runs_harmlessly(csh h, const cs_insn *in, unsigned nargs)
{
	const cs_x86 *x = &in->detail->x86;
	cs_regs rd, wr;
	uint8_t nrd, nwr;

	if (changes_control_flow(h, in))
		return false;
	for (int i = 0; i < x->op_count; i++)
		if (x->operands[i].type == X86_OP_MEM && (x->operands[i].access & CS_AC_WRITE))
			return false;
	if (cs_regs_access(h, in, rd, &nrd, wr, &nwr) != CS_ERR_OK)
		return false;
	for (int i = 0; i < nwr; i++) {
		int k = kept_reg_of(wr[i]);

		if (k == KEEP_RSP || k == KEEP_RBP || (k >= 0 && (unsigned)k < nargs))
			return false;
	}
	return true;
}

/* Whether a direct branch among the first len bytes targets (lo, hi]:
 * those instructions are then not run once per call only. */
static bool branch_into(csh h, cs_insn *in, const uint8_t *code, size_t len, uint64_t lo, uint64_t hi)
{
	uint64_t addr = lo;

	while (len && cs_disasm_iter(h, &code, &len, &addr, in)) {
		const cs_x86 *x = &in->detail->x86;

		if (!cs_insn_group(h, in, CS_GRP_JUMP) && !cs_insn_group(h, in, CS_GRP_CALL))
			continue;
		if (x->op_count == 1 && x->operands[0].type == X86_OP_IMM &&
		    (uint64_t)x->operands[0].imm > lo && (uint64_t)x->operands[0].imm <= hi)
			return true;
	}
	return false;
}

static int choose(csh h, cs_insn *in, const uint8_t *code, size_t len, uint64_t offset, unsigned nargs,
		   struct placement *out)
{
	const uint8_t *p = code;
	size_t left = len;
	uint64_t addr = offset, at;

	for (uint32_t i = 0; i < PLACEMENT_MAX_INSNS && left; i++) {
		at = addr;
		if (!cs_disasm_iter(h, &p, &left, &addr, in)) {
			at_entry(offset, i ? "undecodable instruction before an emulated one" :
					     "undecodable first instruction", out);
			return i ? 0 : -EINVAL;
		}
		if (kernel_emulates(in)) {
			out->offset = at;
			out->skipped = i;
			out->emulated = true;
			out->why = i ? "first emulated instruction" : "entry instruction is emulated";
			snprintf(out->insn, sizeof(out->insn), "%.15s %.31s", in->mnemonic, in->op_str);
			/* (branch_into reuses in) */
			if (i && branch_into(h, in, code, len, offset, at))
				at_entry(offset, "a branch in the function re-enters the skipped instructions", out);
			return 0;
		}
		if (!runs_harmlessly(h, in, nargs)) {
			at_entry(offset, "an instruction before any emulated one changes arguments, "
					 "stack or control flow", out);
			return 0;
		}
	}
	at_entry(offset, "no emulated instruction among the first ones", out);
	return 0;
}

int placement__decide(const uint8_t *code, size_t len, uint64_t offset, unsigned nargs, struct placement *out)
{
	cs_insn *in;
	int err = -ENOMEM;
	csh h;

	at_entry(offset, "cannot start the disassembler", out);
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	in = cs_malloc(h);
	if (in) {
		err = choose(h, in, code, len, offset, nargs, out);
		cs_free(in, 1);
	}
	cs_close(&h);
	return err;
}

#else /* !__x86_64__ */

int placement__decide(const uint8_t *code, size_t len, uint64_t offset, unsigned nargs, struct placement *out)
{
	(void)code, (void)len, (void)nargs;
	at_entry(offset, "probe placement is implemented for x86-64 only", out);
	return 0;
}

#endif

int placement__in_file(const char *path, uint64_t offset, unsigned nargs, struct placement *out)
{
	uint8_t code[PLACEMENT_SCAN_BYTES];
	ssize_t n;
	int fd, err;

	at_entry(offset, "cannot read the function's code", out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, code, sizeof(code), offset);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (n <= 0)
		return n < 0 ? err : -EINVAL;
	return placement__decide(code, n, offset, nargs, out);
}
