/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Compact unwind tables from an ELF file's call-frame information
 * (.eh_frame, or .debug_frame when that is all there is), read with libdw:
 * one row per address range, sorted by pc, in the format the BPF walker
 * searches (struct stray_unwind_row, bpf/stray.h). No I/O besides reading
 * the file; no BPF.
 */
#ifndef STRAY_UNWIND_TABLE_H
#define STRAY_UNWIND_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "stray.h"

struct unwind_table {
	struct stray_unwind_row *rows; /* sorted by pc, adjacent rows differ */
	size_t nrows;
	int64_t vaddr_delta; /* p_vaddr - p_offset of the code segment */
	char build_id[41];   /* hex, "" when the file has none */
};

/*
 * Build the table of the ELF file at path, at most max_rows rows. Returns 0,
 * -ENOENT when the file has no call-frame information, -E2BIG when it needs
 * more than max_rows rows, -ENOEXEC when it is not an ELF file, or another
 * -errno.
 */
int unwind_table__build(const char *path, size_t max_rows, struct unwind_table *out);

/* Only the file's build-id (hex) into out (41 bytes); "" when it has none.
 * Returns 0 or -errno. */
int unwind_table__build_id(const char *path, char out[41]);

void unwind_table__clear(struct unwind_table *t);

/* The dynamic linker an executable names (PT_INTERP) into out. Returns 0,
 * -ENOENT when it has none (static), or another -errno. */
int unwind_table__interpreter(const char *path, char *out, size_t len);

/* The row covering pc (module virtual address), or NULL: the BPF walker's
 * search, for tests. */
const struct stray_unwind_row *unwind_table__lookup(const struct unwind_table *t, uint64_t pc);

#endif /* STRAY_UNWIND_TABLE_H */
