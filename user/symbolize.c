// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Symbolization with elfutils' libdwfl, one Dwfl per process, built lazily
 * from a saved copy of the process's /proc/PID/maps text (the process may
 * be gone by report time).
 *
 * Bounds: at most MAX_PIDS processes are described, at most MAX_OPEN_DWFL
 * of them hold an open Dwfl (each keeps the mapped objects' fds open; the
 * least recently used one is closed and rebuilt on demand), and resolved
 * frames live in a fixed-size direct-mapped cache. Interned strings grow
 * with the number of distinct names resolved and live until
 * symbolizer__free().
 */
#include "symbolize.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PIDS	 65536
#define MAX_OPEN_DWFL	 64
#define PID_BUCKETS	 1024  /* power of two */
#define CACHE_SLOTS	 16384 /* power of two */
#define INTERN_MIN_CAP	 256   /* power of two */

/* From libstdc++'s C++ ABI; the Makefile links -lstdc++. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

static const char UNKNOWN_MODULE[] = "[unknown]";

struct proc {
	int pid;
	uint64_t gen;	  /* changes on every set_maps: invalidates cache slots */
	uint64_t last_use;/* for closing the least recently used Dwfl */
	char *maps;	  /* maps text, paths already prefixed with root */
	char *root;	  /* "" for / */
	size_t root_len;
	Dwfl *dwfl;	  /* NULL until first resolve, or after eviction */
	bool dwfl_failed; /* building failed: every address is unknown */
	struct proc *next;
};

struct cache_slot {
	bool valid;
	int pid;
	uint64_t gen;
	uint64_t addr;
	struct report_frame frame;
};

struct symbolizer {
	struct proc *buckets[PID_BUCKETS];
	size_t nprocs;
	size_t nopen;
	uint64_t next_gen;
	uint64_t tick;
	struct cache_slot *cache;
	/* interned strings: open addressing, linear probing */
	char **strings;
	size_t nstrings, strings_cap;
};

/* ------------------------------------------------------------------ */
/* Interned strings                                                    */
/* ------------------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static int intern_grow(struct symbolizer *s)
{
	size_t cap = s->strings_cap ? s->strings_cap * 2 : INTERN_MIN_CAP, i;
	char **tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (i = 0; i < s->strings_cap; i++) {
		size_t j;

		if (!s->strings[i])
			continue;
		for (j = hash_str(s->strings[i]) & (cap - 1); tab[j]; j = (j + 1) & (cap - 1))
			;
		tab[j] = s->strings[i];
	}
	free(s->strings);
	s->strings = tab;
	s->strings_cap = cap;
	return 0;
}

/* The one stable copy of str, or NULL for NULL input or out of memory. */
static const char *intern(struct symbolizer *s, const char *str)
{
	size_t j;

	if (!str)
		return NULL;
	/* keep the load factor under 1/2 so probes stay short */
	if ((s->nstrings + 1) * 2 > s->strings_cap && intern_grow(s))
		return NULL;
	for (j = hash_str(str) & (s->strings_cap - 1); s->strings[j];
	     j = (j + 1) & (s->strings_cap - 1)) {
		if (strcmp(s->strings[j], str) == 0)
			return s->strings[j];
	}
	s->strings[j] = strdup(str);
	if (!s->strings[j])
		return NULL;
	s->nstrings++;
	return s->strings[j];
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

static struct proc **proc_slot(struct symbolizer *s, int pid)
{
	struct proc **p = &s->buckets[(unsigned int)pid & (PID_BUCKETS - 1)];

	while (*p && (*p)->pid != pid)
		p = &(*p)->next;
	return p;
}

static void proc_close_dwfl(struct symbolizer *s, struct proc *p)
{
	if (!p->dwfl)
		return;
	dwfl_end(p->dwfl);
	p->dwfl = NULL;
	s->nopen--;
}

static void proc_free(struct symbolizer *s, struct proc *p)
{
	if (!p)
		return;
	proc_close_dwfl(s, p);
	free(p->maps);
	free(p->root);
	free(p);
}

/*
 * Prefix every absolute path (the 6th column) with root so libdwfl opens
 * the target's files, not ours. Other lines are copied as they are.
 */
/*
 * Keep only the file-backed lines of a maps text (prefixing their paths with
 * root): anonymous regions, the heap and the stack carry no symbols, and
 * leaving them out means a heap that grows between two snapshots does not
 * count as a new address space (which would rebuild the Dwfl every drain).
 */
static int rewrite_maps(const char *text, const char *root, char **out)
{
	size_t size = 0;
	FILE *mem;
	const char *line = text;

	mem = open_memstream(out, &size);
	if (!mem)
		return -errno;
	while (*line) {
		size_t len = strcspn(line, "\n"), pos = 0;
		int field;

		/* skip five fields and the spaces after them */
		for (field = 0; field < 5 && pos < len; field++) {
			pos += strcspn(line + pos, " \t\n");
			pos += strspn(line + pos, " \t");
		}
		if (field == 5 && pos < len && line[pos] == '/')
			fprintf(mem, "%.*s%s%.*s\n", (int)pos, line, root, (int)(len - pos),
				line + pos);
		line += len;
		if (*line == '\n')
			line++;
	}
	if (fclose(mem) != 0) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

struct symbolizer *symbolizer__new(void)
{
	struct symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		goto fail;
	s->cache = calloc(CACHE_SLOTS, sizeof(*s->cache));
	if (!s->cache || intern_grow(s))
		goto fail;
	s->next_gen = 1;
	return s;
fail:
	symbolizer__free(s);
	errno = ENOMEM;
	return NULL;
}

void symbolizer__free(struct symbolizer *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < PID_BUCKETS; i++) {
		while (s->buckets[i]) {
			struct proc *p = s->buckets[i];

			s->buckets[i] = p->next;
			proc_free(s, p);
		}
	}
	for (i = 0; i < s->strings_cap; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->cache);
	free(s);
}

int symbolizer__set_maps(struct symbolizer *s, int pid, const char *maps_text,
			 const char *root)
{
	struct proc **slot, *p;
	char *maps = NULL, *root_copy = NULL;
	int err;

	if (!s || !maps_text || pid <= 0)
		return -EINVAL;
	if (!root || strcmp(root, "/") == 0)
		root = "";
	root_copy = strdup(root);
	if (!root_copy)
		return -ENOMEM;
	err = rewrite_maps(maps_text, root, &maps);
	if (err)
		goto cleanup;
	slot = proc_slot(s, pid);
	p = *slot;
	if (p && p->maps && !strcmp(p->maps, maps) && !strcmp(p->root, root_copy)) {
		/* Unchanged (the common case for snapshots taken every
		 * interval): keep the Dwfl and the cached frames. */
		err = 0;
		goto cleanup;
	}
	if (!p) {
		if (s->nprocs >= MAX_PIDS) {
			err = -ENOSPC;
			goto cleanup;
		}
		p = calloc(1, sizeof(*p));
		if (!p) {
			err = -ENOMEM;
			goto cleanup;
		}
		p->pid = pid;
		*slot = p;
		s->nprocs++;
	}
	/* replacing: the old Dwfl and every cached frame describe the old maps */
	proc_close_dwfl(s, p);
	p->dwfl_failed = false;
	p->gen = s->next_gen++;
	free(p->maps);
	free(p->root);
	p->maps = maps;
	p->root = root_copy;
	p->root_len = strlen(root_copy);
	return 0;
cleanup:
	free(maps);
	free(root_copy);
	return err;
}

/* ------------------------------------------------------------------ */
/* Dwfl                                                                */
/* ------------------------------------------------------------------ */

static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
	/* opens regular files by the (root-prefixed) mapped path */
	.find_elf = dwfl_linux_proc_find_elf,
	/* .gnu_debuglink, build-id under /usr/lib/debug, debuginfod if configured */
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

/* Close the least recently used Dwfl so open fds stay bounded. */
static void evict_one(struct symbolizer *s)
{
	struct proc *victim = NULL;
	size_t i;

	for (i = 0; i < PID_BUCKETS; i++) {
		struct proc *p;

		for (p = s->buckets[i]; p; p = p->next) {
			if (p->dwfl && (!victim || p->last_use < victim->last_use))
				victim = p;
		}
	}
	if (victim)
		proc_close_dwfl(s, victim);
}

/* Report every mapping of the saved maps text as a module. */
static int report_maps(Dwfl *dwfl, const char *maps)
{
	size_t len = strlen(maps);
	FILE *f;
	int err;

	/* fmemopen rejects size 0; no mappings simply means no modules */
	if (len == 0)
		return 0;
	f = fmemopen((void *)maps, len, "r");
	if (!f)
		return -errno;
	err = dwfl_linux_proc_maps_report(dwfl, f);
	fclose(f);
	/* returns an errno value, or -1 with a libdwfl error */
	return err == 0 ? 0 : err > 0 ? -err : -EINVAL;
}

static Dwfl *proc_dwfl(struct symbolizer *s, struct proc *p)
{
	Dwfl *dwfl;

	p->last_use = ++s->tick;
	if (p->dwfl || p->dwfl_failed)
		return p->dwfl;
	if (s->nopen >= MAX_OPEN_DWFL)
		evict_one(s);
	dwfl = dwfl_begin(&callbacks);
	if (!dwfl)
		goto fail;
	dwfl_report_begin(dwfl);
	if (report_maps(dwfl, p->maps) != 0 || dwfl_report_end(dwfl, NULL, NULL) != 0)
		goto fail;
	p->dwfl = dwfl;
	s->nopen++;
	return dwfl;
fail:
	dwfl_end(dwfl);
	p->dwfl_failed = true;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Resolving                                                           */
/* ------------------------------------------------------------------ */

/* Demangled if it is a C++ name, interned either way. */
static const char *intern_function(struct symbolizer *s, const char *name)
{
	const char *out;
	char *dem;
	int status = -1;

	if (!name || strncmp(name, "_Z", 2) != 0)
		return intern(s, name);
	dem = __cxa_demangle(name, NULL, NULL, &status);
	out = intern(s, status == 0 && dem ? dem : name);
	free(dem);
	return out;
}

/* The module name is the mapped path; the report shows it without root. */
static const char *module_path(struct symbolizer *s, const struct proc *p, Dwfl_Module *mod)
{
	const char *name = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

	if (!name)
		return UNKNOWN_MODULE;
	if (p->root_len && strncmp(name, p->root, p->root_len) == 0 && name[p->root_len] == '/')
		name += p->root_len;
	return intern(s, name);
}

static int resolve_uncached(struct symbolizer *s, struct proc *p, uint64_t addr,
			    struct report_frame *out)
{
	Dwfl *dwfl = proc_dwfl(s, p);
	/* a return address points after the call; addr - 1 is inside it */
	Dwarf_Addr pc = addr - 1, sym_off = 0, line_addr;
	Dwfl_Module *mod;
	Dwfl_Line *line;
	GElf_Sym sym;
	const char *name, *file;
	int lineno = 0;

	*out = (struct report_frame){ .address = addr, .module = UNKNOWN_MODULE, .offset = -1 };
	if (!dwfl || addr == 0)
		return 0;
	mod = dwfl_addrmodule(dwfl, pc);
	if (!mod)
		return 0;
	out->module = module_path(s, p, mod);
	if (!out->module)
		return -ENOMEM;

	name = dwfl_module_addrinfo(mod, pc, &sym_off, &sym, NULL, NULL, NULL);
	if (name) {
		out->function = intern_function(s, name);
		if (!out->function)
			return -ENOMEM;
		/* relative to addr itself, not addr - 1 */
		out->offset = (int64_t)sym_off + 1;
	}

	line = dwfl_module_getsrc(mod, pc);
	file = line ? dwfl_lineinfo(line, &line_addr, &lineno, NULL, NULL, NULL) : NULL;
	if (file) {
		out->file = intern(s, file);
		if (!out->file)
			return -ENOMEM;
		out->line = lineno;
	}
	return 0;
}

static struct cache_slot *cache_slot(struct symbolizer *s, int pid, uint64_t addr)
{
	uint64_t h = (addr ^ ((uint64_t)(unsigned int)pid << 32)) * 0x9E3779B97F4A7C15ULL;

	return &s->cache[(h >> 32) & (CACHE_SLOTS - 1)];
}

int symbolizer__resolve(struct symbolizer *s, int pid, uint64_t addr,
			struct report_frame *out)
{
	struct cache_slot *slot;
	struct proc *p;
	int err;

	if (!s || !out)
		return -EINVAL;
	p = *proc_slot(s, pid);
	if (!p)
		return -ENOENT;
	slot = cache_slot(s, pid, addr);
	if (slot->valid && slot->pid == pid && slot->gen == p->gen && slot->addr == addr) {
		*out = slot->frame;
		return 0;
	}
	err = resolve_uncached(s, p, addr, out);
	if (err)
		return err;
	/* direct-mapped: a collision simply overwrites, the bound is fixed */
	*slot = (struct cache_slot){
		.valid = true, .pid = pid, .gen = p->gen, .addr = addr, .frame = *out,
	};
	return 0;
}
