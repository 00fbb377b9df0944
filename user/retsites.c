// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Where operator new returns to its caller: the ret instructions reachable
 * from its entry through jumps (not calls).
 *
 * Why: libstdc++'s operator new calls malloc, whose return probe records
 * the block, but jemalloc, tcmalloc and mimalloc inline their fast path
 * into their own operator new and reach their slow path through internal
 * functions: no probed call happens inside it. A return probe on new would
 * see the block, but a uretprobe replaces the return address on the stack,
 * and the C++ unwinder cannot unwind through the kernel's trampoline: a
 * std::bad_alloc thrown out of a probed new terminates the program. An
 * entry probe ON each ret instruction sees the result in %rax with the
 * stack pointer at new's return-address slot, and changes nothing on the
 * stack: a throw unwinds as usual.
 *
 * The walk is a recursive descent over the object's file bytes with
 * capstone: conditional branches are followed both ways, direct jumps to
 * their target (tail calls into the allocator's slow path included), calls
 * are stepped over, jumps through a PLT stub or GOT slot to a function the
 * object defines are followed there, and a walk stops at ret, any other
 * indirect jump, or a trap.
 * It only ever lands on instruction boundaries of code the assembler laid
 * out, so a probe never splits an instruction; a ret reached that is not
 * new's own (code after a noreturn call) is harmless: the BPF side acts
 * only when the stack pointer is new's entry one.
 */
#include "retsites.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "loader.h"

#define MAX_INSNS 20000	 /* instructions decoded per walk */
#define MAX_PENDING 512	 /* branch targets waiting to be walked */

#define MAX_SLOTS 8192	 /* GOT slots of functions the object defines */

struct segment {
	const uint8_t *bytes; /* the file, mapped by libelf */
	uint64_t start, end;  /* file offsets of the executable PT_LOAD */
	uint64_t vaddr;       /* its address in the object */
};

/* A GOT slot that an indirect jump (a PLT stub, or -fno-plt code) goes
 * through, bound to a function the object itself defines: a tail call
 * into the allocator's own slow path, exported for interposition. */
struct slot {
	uint64_t got;    /* slot address in the object */
	uint64_t target; /* the function, as a file offset */
};

/* The executable PT_LOAD segment that holds file offset off. */
static bool code_segment(Elf *elf, uint64_t off, struct segment *seg)
{
	size_t nphdr, fsize;
	const char *raw = elf_rawfile(elf, &fsize);

	if (!raw || elf_getphdrnum(elf, &nphdr))
		return false;
	for (size_t i = 0; i < nphdr; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X))
			continue;
		if (off < ph.p_offset || off >= ph.p_offset + ph.p_filesz || ph.p_offset + ph.p_filesz > fsize)
			continue;
		seg->bytes = (const uint8_t *)raw;
		seg->start = ph.p_offset;
		seg->end = ph.p_offset + ph.p_filesz;
		seg->vaddr = ph.p_vaddr;
		return true;
	}
	return false;
}

static bool in_segment(const struct segment *seg, uint64_t vaddr, uint64_t *off)
{
	if (vaddr < seg->vaddr || vaddr - seg->vaddr >= seg->end - seg->start)
		return false;
	*off = vaddr - seg->vaddr + seg->start;
	return true;
}

/* The defined function a relocation binds its GOT slot to, if any. */
static bool slot_of(Elf_Data *syms, const GElf_Rela *r, const struct segment *seg, struct slot *out)
{
	int type = GELF_R_TYPE(r->r_info);
	GElf_Sym sym;

	if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
		return false;
	if (!gelf_getsym(syms, (int)GELF_R_SYM(r->r_info), &sym) || sym.st_shndx == SHN_UNDEF ||
	    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
		return false;
	out->got = r->r_offset;
	return in_segment(seg, sym.st_value, &out->target);
}

/* Every GOT slot bound to a function of the object (SHT_RELA sections
 * against .dynsym), at most max. */
static size_t read_slots(Elf *elf, const struct segment *seg, struct slot *slots, size_t max)
{
	Elf_Scn *scn = NULL;
	size_t n = 0;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn)) && n < max) {
		Elf_Scn *symscn;
		GElf_Shdr symsh;
		Elf_Data *data, *syms;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		symscn = elf_getscn(elf, sh.sh_link);
		if (!symscn || !gelf_getshdr(symscn, &symsh) || symsh.sh_type != SHT_DYNSYM)
			continue;
		data = elf_getdata(scn, NULL);
		syms = elf_getdata(symscn, NULL);
		for (size_t i = 0; data && syms && i < sh.sh_size / sh.sh_entsize && n < max; i++) {
			GElf_Rela r;

			if (gelf_getrela(data, (int)i, &r) && slot_of(syms, &r, seg, &slots[n]))
				n++;
		}
	}
	return n;
}

struct walk {
	csh cs;
	const struct slot *slots;
	size_t nslots;
	cs_insn *insn;
	const struct segment *seg;
	uint8_t *seen; /* one bit per byte of the segment: instruction starts walked */
	uint64_t pending[MAX_PENDING];
	size_t npending;
	uint64_t *sites;
	size_t nsites, max_sites;
	size_t budget;
};

static bool seen_test_set(struct walk *w, uint64_t off)
{
	uint64_t i = off - w->seg->start;
	bool was = w->seen[i / 8] & (1u << (i % 8));

	w->seen[i / 8] |= 1u << (i % 8);
	return was;
}

static int push(struct walk *w, uint64_t target)
{
	if (target < w->seg->start || target >= w->seg->end)
		return 0; /* into another segment or a PLT outside: not new's code */
	if (w->npending >= MAX_PENDING)
		return -E2BIG;
	w->pending[w->npending++] = target;
	return 0;
}

static int add_site(struct walk *w, uint64_t off)
{
	if (w->nsites >= w->max_sites)
		return -E2BIG;
	w->sites[w->nsites++] = off;
	return 0;
}

/* An indirect jump through a GOT slot (jmp *slot(%rip)) to a function
 * of the object: its file offset, or 0. */
static uint64_t slot_target(const struct walk *w, const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;
	uint64_t got;

	if (x->op_count != 1 || x->operands[0].type != X86_OP_MEM || x->operands[0].mem.base != X86_REG_RIP ||
	    x->operands[0].mem.index != X86_REG_INVALID)
		return 0;
	got = in->address - w->seg->start + w->seg->vaddr + in->size + x->operands[0].mem.disp;
	for (size_t i = 0; i < w->nslots; i++)
		if (w->slots[i].got == got)
			return w->slots[i].target;
	return 0;
}

/* The immediate target of a direct branch, or 0 for an indirect one. */
static uint64_t branch_target(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	return x->op_count == 1 && x->operands[0].type == X86_OP_IMM ? (uint64_t)x->operands[0].imm : 0;
}

/* Walk straight-line code from off until a ret, jump or trap ends it. */
static int walk_block(struct walk *w, uint64_t off)
{
	const uint8_t *code = w->seg->bytes + off;
	size_t size = w->seg->end - off;
	uint64_t addr = off;
	int err = 0;

	while (!err && cs_disasm_iter(w->cs, &code, &size, &addr, w->insn)) {
		const cs_insn *in = w->insn;

		if (!w->budget--)
			return -E2BIG;
		if (seen_test_set(w, in->address))
			return 0;
		if (cs_insn_group(w->cs, in, X86_GRP_RET))
			return add_site(w, in->address);
		if (in->id == X86_INS_JMP || in->id == X86_INS_LJMP) {
			uint64_t target = branch_target(in) ?: slot_target(w, in);

			return target ? push(w, target) : 0;
		}
		if (in->id == X86_INS_HLT || in->id == X86_INS_UD2 || in->id == X86_INS_INT3)
			return 0;
		if (cs_insn_group(w->cs, in, X86_GRP_JUMP) && branch_target(in))
			err = push(w, branch_target(in)); /* conditional: both ways */
	}
	return err;
}

static int walk_from(struct walk *w, uint64_t entry)
{
	int err = push(w, entry);

	while (!err && w->npending)
		err = walk_block(w, w->pending[--w->npending]);
	return err;
}

int retsites__find(const char *path, uint64_t entry, uint64_t *sites, size_t max_sites)
{
#if defined(__x86_64__)
	struct walk w = { .sites = sites, .max_sites = max_sites, .budget = MAX_INSNS };
	struct segment seg;
	struct slot *slots = NULL;
	Elf *elf = NULL;
	int fd, err = -ENOEXEC;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (elf_version(EV_CURRENT) == EV_NONE || !(elf = elf_begin(fd, ELF_C_READ_MMAP, NULL)) ||
	    !code_segment(elf, entry, &seg))
		goto out;
	w.seg = &seg;
	err = -ENOMEM;
	slots = calloc(MAX_SLOTS, sizeof(*slots));
	if (!slots)
		goto out;
	w.slots = slots;
	w.nslots = read_slots(elf, &seg, slots, MAX_SLOTS);
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &w.cs) != CS_ERR_OK)
		goto out;
	cs_option(w.cs, CS_OPT_DETAIL, CS_OPT_ON);
	w.insn = cs_malloc(w.cs);
	w.seen = calloc((seg.end - seg.start) / 8 + 1, 1);
	if (w.insn && w.seen)
		err = walk_from(&w, entry);
	free(w.seen);
	if (w.insn)
		cs_free(w.insn, 1);
	cs_close(&w.cs);
out:
	free(slots);
	elf_end(elf);
	close(fd);
	return err ? err : (int)w.nsites;
#else
	(void)path, (void)entry, (void)sites, (void)max_sites;
	return -EOPNOTSUPP;
#endif
}

static void add_unique(struct alloc_object *o, const uint64_t *sites, size_t n, bool *overflow)
{
	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		for (size_t j = 0; j < o->nnew_returns; j++)
			dup |= o->new_returns[j] == sites[i];
		if (dup)
			continue;
		if (o->nnew_returns >= STRAY_MAX_NEW_RETURNS) {
			*overflow = true;
			return;
		}
		o->new_returns[o->nnew_returns++] = sites[i];
	}
}

static void object_new_returns(struct alloc_object *o)
{
	uint64_t sites[STRAY_MAX_NEW_RETURNS];
	bool overflow = false;

	for (int fn = STRAY_FN_NEW; fn <= STRAY_FN_NEW_ARRAY_ALIGNED_NOTHROW && !overflow; fn++) {
		int n;

		if (!o->found[fn])
			continue;
		n = retsites__find(o->path, o->offsets[fn], sites, STRAY_MAX_NEW_RETURNS);
		if (n < 0)
			overflow = true;
		else
			add_unique(o, sites, n, &overflow);
	}
	if (overflow)
		o->nnew_returns = 0;
}

void retsites__add_to(struct allocator *a)
{
	/* Only where new and malloc come from one object: an object whose
	 * new gets its memory from another object's malloc (libstdc++) has
	 * that malloc probed, and a ret probe would be one more trap per new
	 * (about 20% on this machine) for a block already recorded. */
	for (size_t i = 0; i < a->nobjects; i++)
		if (a->objects[i].found[STRAY_FN_MALLOC])
			object_new_returns(&a->objects[i]);
}
