// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unwind tables from call-frame information. libdw evaluates the CFA
 * programs (dwarf_cfi_addrframe gives the row at an address and the range
 * it covers); this module only enumerates the FDEs, asks libdw for each
 * row in turn, and reduces every row to what the BPF walker can evaluate:
 * CFA = sp|fp + offset, return address at CFA - 8, the caller's frame
 * pointer unchanged or saved at CFA + offset. Anything else (a CFA
 * expression other than the PLT's) becomes a row without a rule.
 */
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <gelf.h>
#include "unwind_table.h"

/* x86-64 DWARF register numbers */
#define DWREG_FP 6
#define DWREG_SP 7
#define DWREG_RA 16

/* A module's rows stay within what the BPF binary search covers. */
#define UNWIND_MAX_MODULE_ROWS (1u << 22)

struct row_buf {
	struct stray_unwind_row *rows;
	size_t n, cap, max;
};

static int push_row(struct row_buf *b, struct stray_unwind_row row)
{
	if (b->n >= b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct stray_unwind_row *rows;

		if (b->n >= b->max * 2 + 16) /* before merging: twice the bound */
			return -E2BIG;
		rows = realloc(b->rows, cap * sizeof(*rows));
		if (!rows)
			return -ENOMEM;
		b->rows = rows;
		b->cap = cap;
	}
	b->rows[b->n++] = row;
	return 0;
}

/* The x86-64 lazy PLT's CFA: rsp + 8, plus 8 once the entry's push ran:
 * DW_OP_breg7 8, DW_OP_breg16 0, DW_OP_lit15, DW_OP_and, DW_OP_litN,
 * DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus. Returns N, or 0. */
static int plt_threshold(const Dwarf_Op *ops, size_t nops)
{
	static const uint8_t shape[] = { DW_OP_breg7, DW_OP_breg16, DW_OP_lit15, DW_OP_and, 0,
					 DW_OP_ge, DW_OP_lit3, DW_OP_shl, DW_OP_plus };

	if (nops != sizeof(shape) || ops[0].number != 8 || ops[4].atom < DW_OP_lit0 ||
	    ops[4].atom > DW_OP_lit31)
		return 0;
	for (size_t i = 0; i < nops; i++)
		if (shape[i] && ops[i].atom != shape[i])
			return 0;
	return ops[4].atom - DW_OP_lit0;
}

static void cfa_rule(Dwarf_Frame *frame, struct stray_unwind_row *row)
{
	Dwarf_Op *ops;
	size_t nops;
	int plt;

	if (dwarf_frame_cfa(frame, &ops, &nops) || !nops)
		return;
	if (nops == 1 && ops[0].atom == DW_OP_bregx && (ops[0].number == DWREG_SP || ops[0].number == DWREG_FP)) {
		row->cfa_rule = ops[0].number == DWREG_SP ? STRAY_CFA_SP : STRAY_CFA_FP;
		row->cfa_off = (int32_t)ops[0].number2;
	} else if ((plt = plt_threshold(ops, nops))) {
		row->cfa_rule = STRAY_CFA_PLT;
		row->cfa_off = 8;
		row->fp_off = plt; /* a PLT row's fp is unchanged: the field holds N */
	}
}

/* Register regno saved at CFA + *off: libdw's DW_OP_call_frame_cfa [,
 * DW_OP_plus_uconst off] location (no DW_OP_stack_value). */
static bool saved_at_cfa(const Dwarf_Op *ops, size_t nops, int64_t *off)
{
	if (!ops || !nops || ops[0].atom != DW_OP_call_frame_cfa)
		return false;
	if (nops == 1) {
		*off = 0;
		return true;
	}
	if (nops != 2 || (ops[1].atom != DW_OP_plus_uconst && ops[1].atom != DW_OP_consts))
		return false;
	*off = (int64_t)ops[1].number;
	return true;
}

/* The row of one CFI frame state. */
static struct stray_unwind_row frame_row(Dwarf_Frame *frame, uint64_t pc)
{
	struct stray_unwind_row row = { .pc = (uint32_t)pc };
	Dwarf_Op mem[3], *ops;
	size_t nops;
	int64_t off;

	if (dwarf_frame_register(frame, DWREG_RA, mem, &ops, &nops))
		return row;
	if (ops == mem && !nops) { /* undefined: the outermost frame */
		row.cfa_rule = STRAY_CFA_END;
		return row;
	}
	if (!saved_at_cfa(ops, nops, &off) || off != STRAY_UNWIND_RA_OFF)
		return row;
	cfa_rule(frame, &row);
	if (!dwarf_frame_register(frame, DWREG_FP, mem, &ops, &nops) && saved_at_cfa(ops, nops, &off) &&
	    off >= INT16_MIN && off <= INT16_MAX && row.cfa_rule != STRAY_CFA_PLT) {
		row.fp_rule = STRAY_FP_AT_CFA;
		row.fp_off = (int16_t)off;
	}
	return row;
}

/* Rows for the FDE covering [start, end): one per CFI row, then a row
 * without rule at the end (removed when another FDE starts there). */
static int fde_rows(Dwarf_CFI *cfi, uint64_t start, uint64_t end, struct row_buf *b)
{
	uint64_t pc = start;
	int err = 0;

	if (end > UINT32_MAX) /* the row format keeps 32-bit pcs */
		return 0;
	while (pc < end && !err) {
		Dwarf_Frame *frame;
		Dwarf_Addr lo, hi;

		if (dwarf_cfi_addrframe(cfi, pc, &frame))
			break;
		if (dwarf_frame_info(frame, &lo, &hi, NULL) < 0 || hi <= pc) {
			free(frame);
			break;
		}
		err = push_row(b, frame_row(frame, pc));
		free(frame);
		pc = hi;
	}
	return err ?: push_row(b, (struct stray_unwind_row){ .pc = (uint32_t)end });
}

/* Read a pointer in DW_EH_PE encoding enc at p (field address addr). */
static bool read_encoded(const uint8_t *p, const uint8_t *limit, uint8_t enc, uint64_t addr, uint64_t *out)
{
	int32_t s32;
	uint32_t u32;
	uint64_t v;

	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		if (p + 8 > limit)
			return false;
		memcpy(&v, p, 8);
		break;
	case DW_EH_PE_udata4:
		if (p + 4 > limit)
			return false;
		memcpy(&u32, p, 4);
		v = u32;
		break;
	case DW_EH_PE_sdata4:
		if (p + 4 > limit)
			return false;
		memcpy(&s32, p, 4);
		v = (uint64_t)(int64_t)s32;
		break;
	default:
		return false;
	}
	if ((enc & 0x70) == DW_EH_PE_pcrel)
		v += addr;
	else if (enc & 0x70)
		return false; /* datarel, textrel, funcrel: not used for FDEs by GNU tools */
	*out = v;
	return true;
}

/* Size of a pointer in encoding enc (for skipping 'P' augmentation data). */
static size_t encoded_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case DW_EH_PE_udata2: case DW_EH_PE_sdata2: return 2;
	case DW_EH_PE_udata4: case DW_EH_PE_sdata4: return 4;
	default: return 8;
	}
}

/* The FDE pointer encoding of a CIE ('R' in its augmentation). */
static uint8_t cie_fde_encoding(const Dwarf_CIE *cie)
{
	const uint8_t *d = cie->augmentation_data;
	const uint8_t *end = d ? d + cie->augmentation_data_size : NULL;

	if (!d || cie->augmentation[0] != 'z')
		return DW_EH_PE_absptr;
	for (const char *a = cie->augmentation + 1; *a && d < end; a++) {
		if (*a == 'R')
			return *d;
		if (*a == 'L')
			d++;
		else if (*a == 'P')
			d += 1 + encoded_size(*d);
	}
	return DW_EH_PE_absptr;
}

#define MAX_CIES 4096

struct cie_enc {
	Dwarf_Off off;
	uint8_t enc;
};

static int cie_encoding(const struct cie_enc *cies, size_t n, Dwarf_Off off, uint8_t *enc)
{
	for (size_t i = n; i-- > 0;)
		if (cies[i].off == off) {
			*enc = cies[i].enc;
			return 0;
		}
	return -ENOENT;
}

/* Every FDE of section scn (eh: .eh_frame, else .debug_frame) into rows. */
static int section_rows(Elf *elf, Elf_Scn *scn, bool eh, Dwarf_CFI *cfi, struct row_buf *b)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	struct cie_enc *cies = calloc(MAX_CIES, sizeof(*cies));
	const unsigned char *ident = (const unsigned char *)elf_getident(elf, NULL);
	Dwarf_Off off = 0, next;
	size_t ncies = 0;
	GElf_Shdr shdr;
	int err = 0;

	if (!cies)
		return -ENOMEM;
	if (!data || !ident || !gelf_getshdr(scn, &shdr)) {
		free(cies);
		return -ENOEXEC;
	}
	for (; !err && off != (Dwarf_Off)-1; off = next) {
		Dwarf_CFI_Entry e;
		uint64_t start, range;
		uint8_t enc = DW_EH_PE_absptr;
		const uint8_t *limit;

		if (dwarf_next_cfi(ident, data, eh, off, &next, &e))
			break;
		if (dwarf_cfi_cie_p(&e)) {
			if (ncies < MAX_CIES)
				cies[ncies++] = (struct cie_enc){ off, eh ? cie_fde_encoding(&e.cie) : DW_EH_PE_absptr };
			continue;
		}
		if (cie_encoding(cies, ncies, e.fde.CIE_pointer, &enc))
			continue;
		limit = e.fde.end;
		if (!read_encoded(e.fde.start, limit, enc, shdr.sh_addr + (e.fde.start - (uint8_t *)data->d_buf),
				  &start) ||
		    !read_encoded(e.fde.start + encoded_size(enc), limit, enc & 0x0f, 0, &range))
			continue;
		if (start && range)
			err = fde_rows(cfi, start, start + range, b);
	}
	free(cies);
	return err;
}

static int row_order(const void *a, const void *b)
{
	const struct stray_unwind_row *x = a, *y = b;

	if (x->pc != y->pc)
		return x->pc < y->pc ? -1 : 1;
	/* At one pc a real row wins over the end of the previous FDE: rule-less
	 * rows sort first, and the last row of a pc is kept. */
	return (x->cfa_rule != STRAY_CFA_NONE) - (y->cfa_rule != STRAY_CFA_NONE);
}

static bool same_rule(const struct stray_unwind_row *a, const struct stray_unwind_row *b)
{
	return a->cfa_rule == b->cfa_rule && a->cfa_off == b->cfa_off && a->fp_rule == b->fp_rule &&
	       a->fp_off == b->fp_off;
}

/* Sort, keep one row per pc, drop rows that repeat the previous rule. */
static void compact(struct row_buf *b)
{
	size_t n = 0;

	qsort(b->rows, b->n, sizeof(*b->rows), row_order);
	for (size_t i = 0; i < b->n; i++) {
		if (i + 1 < b->n && b->rows[i + 1].pc == b->rows[i].pc)
			continue;
		if (n && same_rule(&b->rows[n - 1], &b->rows[i]))
			continue;
		b->rows[n++] = b->rows[i];
	}
	b->n = n;
}

static Elf_Scn *find_section(Elf *elf, const char *name)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	GElf_Shdr shdr;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *n;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
			continue;
		n = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (n && !strcmp(n, name))
			return scn;
	}
	return NULL;
}

/* p_vaddr - p_offset of the first executable PT_LOAD. */
static int code_delta(Elf *elf, int64_t *delta)
{
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return -ENOEXEC;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
			*delta = (int64_t)(ph.p_vaddr - ph.p_offset);
			return 0;
		}
	}
	return -ENOENT;
}

static void hex_build_id(Elf *elf, char out[41])
{
	const void *id;
	ssize_t len = dwelf_elf_gnu_build_id(elf, &id);

	out[0] = '\0';
	for (ssize_t i = 0; i < len && i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", ((const uint8_t *)id)[i]);
}

static int open_elf(const char *path, int *fd, Elf **elf)
{
	elf_version(EV_CURRENT);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF) {
		elf_end(*elf);
		close(*fd);
		return -ENOEXEC;
	}
	return 0;
}

int unwind_table__build_id(const char *path, char out[41])
{
	Elf *elf;
	int fd, err = open_elf(path, &fd, &elf);

	if (err)
		return err;
	hex_build_id(elf, out);
	elf_end(elf);
	close(fd);
	return 0;
}

/* The PT_INTERP string of elf into out. */
static int read_interpreter(Elf *elf, char *out, size_t len)
{
	size_t n, size;
	const char *raw = elf_rawfile(elf, &size);

	if (!raw || elf_getphdrnum(elf, &n))
		return -ENOEXEC;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_INTERP)
			continue;
		if (ph.p_offset >= size || ph.p_filesz > size - ph.p_offset || !ph.p_filesz ||
		    raw[ph.p_offset + ph.p_filesz - 1] || ph.p_filesz > len)
			return -ENOEXEC;
		memcpy(out, raw + ph.p_offset, ph.p_filesz);
		return 0;
	}
	return -ENOENT;
}

int unwind_table__interpreter(const char *path, char *out, size_t len)
{
	Elf *elf;
	int fd, err = open_elf(path, &fd, &elf);

	if (err)
		return err;
	err = read_interpreter(elf, out, len);
	elf_end(elf);
	close(fd);
	return err;
}

/* Rows from .eh_frame (libdw's dwarf_getcfi_elf), or from .debug_frame. */
static int elf_rows(Elf *elf, struct row_buf *b)
{
	Elf_Scn *scn = find_section(elf, ".eh_frame");
	Dwarf_CFI *cfi;
	Dwarf *dw;
	int err;

	if (scn && (cfi = dwarf_getcfi_elf(elf))) {
		err = section_rows(elf, scn, true, cfi, b);
		dwarf_cfi_end(cfi);
		return err;
	}
	scn = find_section(elf, ".debug_frame");
	if (!scn || !(dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL)))
		return -ENOENT;
	cfi = dwarf_getcfi(dw);
	err = cfi ? section_rows(elf, scn, false, cfi, b) : -ENOENT;
	dwarf_end(dw);
	return err;
}

int unwind_table__build(const char *path, size_t max_rows, struct unwind_table *out)
{
	struct row_buf b = { .max = max_rows < UNWIND_MAX_MODULE_ROWS ? max_rows : UNWIND_MAX_MODULE_ROWS };
	Elf *elf;
	int fd, err;

	memset(out, 0, sizeof(*out));
	err = open_elf(path, &fd, &elf);
	if (err)
		return err;
	hex_build_id(elf, out->build_id);
	err = code_delta(elf, &out->vaddr_delta) ?: elf_rows(elf, &b);
	elf_end(elf);
	close(fd);
	if (!err) {
		compact(&b);
		if (!b.n)
			err = -ENOENT;
		else if (b.n > b.max)
			err = -E2BIG;
	}
	if (err) {
		free(b.rows);
		return err;
	}
	out->rows = b.rows;
	out->nrows = b.n;
	return 0;
}

void unwind_table__clear(struct unwind_table *t)
{
	free(t->rows);
	memset(t, 0, sizeof(*t));
}

const struct stray_unwind_row *unwind_table__lookup(const struct unwind_table *t, uint64_t pc)
{
	size_t lo = 0, hi = t->nrows;

	if (!t->nrows || pc < t->rows[0].pc)
		return NULL;
	while (lo + 1 < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->rows[mid].pc <= pc)
			lo = mid;
		else
			hi = mid;
	}
	return &t->rows[lo];
}
