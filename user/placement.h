/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Probe placement: where in a function's first instructions a uprobe costs
 * least. An x86-64 uprobe trap on an instruction the kernel emulates (push
 * reg, nop, jmp/jcc/call rel) costs about a microsecond; on any other
 * instruction the kernel must single-step a copy of it, which costs about
 * five (arch/x86/kernel/uprobes.c: branch_setup_xol_ops,
 * push_setup_xol_ops). So the probe goes on the earliest emulated
 * instruction reached on every path from the entry, as long as nothing
 * before it changes what the BPF program reads there: the argument
 * registers, the stack pointer and the memory it points to (a return
 * probe takes the return address at [rsp]; operator new reads it too).
 * Otherwise the probe stays at the function entry. Decoding uses Capstone.
 */
#ifndef STRAY_PLACEMENT_H
#define STRAY_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Instructions looked at past the entry, at most. */
#define PLACEMENT_MAX_INSNS 12
/* Bytes of the function scanned for branches back into the skipped
 * instructions (a probe reached by a loop would count one call twice). */
#define PLACEMENT_SCAN_BYTES 1024

struct placement {
	uint64_t offset;  /* file offset to probe */
	uint32_t skipped; /* instructions before it, run natively */
	bool emulated;    /* the kernel emulates the probed instruction */
	char insn[48];    /* the probed instruction ("je 0x98fb8") */
	const char *why;  /* static: why it is there */
};

/*
 * Decide for the function whose code (len bytes, from file offset offset)
 * is given, whose probe program reads the first nargs System V argument
 * registers (rdi, rsi, rdx, rcx, r8, r9). Always fills *out (falls back to
 * the entry). Returns 0, or -EINVAL when the first instruction cannot be
 * decoded.
 */
int placement__decide(const uint8_t *code, size_t len, uint64_t offset, unsigned nargs,
		      struct placement *out);

/* The same for the function at file offset offset of ELF file path.
 * Returns 0 or -errno (*out then holds the entry). */
int placement__in_file(const char *path, uint64_t offset, unsigned nargs, struct placement *out);

/* Whether placement is turned off (STRAY_PLACEMENT=entry in the
 * environment: probes at function entries, for `make bench` and tests). */
bool placement__disabled(void);

#endif /* STRAY_PLACEMENT_H */
