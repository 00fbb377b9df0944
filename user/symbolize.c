// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Symbolization with elfutils (libdwfl, libdw).
 *
 * Every mapped object is opened once, when a maps snapshot first shows it,
 * through /proc/PID/map_files (so a file deleted or replaced on disk, or one
 * inside another mount namespace, is still the one the process mapped) and
 * kept as a module keyed by its build-id: processes sharing libc share one
 * module, its symbol tables, its DWARF and its resolved frames. A process is
 * a sorted list of mappings pointing at modules; a new snapshot adds and
 * replaces mappings but keeps those that disappeared without being
 * replaced, so libraries dlclosed before the report (and processes that
 * exited) still symbolize. Addresses outside every file mapping are looked
 * up in the process's perf map (/tmp/perf-PID.map) for JIT code.
 *
 * Bounds: MAX_PIDS processes, MAX_MAPPINGS mappings per process (kept
 * unmapped ones are dropped first), MAX_MODULES open modules (each holds
 * its file and, when found, its separate debug file open), MAX_PERF_SYMS
 * perf map symbols per process, MAX_INLINE inlined frames per address, and
 * a fixed-size set-associative cache of resolved frames (CACHE_SLOTS
 * addresses, a few MiB when full). Interned strings
 * grow with the number of distinct names resolved and live until
 * symbolizer__free(). What did not fit is counted (symbolizer__dropped).
 */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "perfmap.h"
#include "procfs.h"

#define MAX_MAPS_BYTES	 (16u << 20) /* of /proc/PID/maps text */
#define MAX_PIDS	 65536
#define MAX_MAPPINGS	 4096
#define MAX_MODULES	 512
#define MAX_LOADS	 16    /* PT_LOAD segments remembered per module */
#define MAX_PERF_SYMS	 65536
#define MAX_INLINE	 SYMBOLIZE_MAX_INLINE
#define MAX_FRAMES	 (MAX_INLINE + 1)
#define MAX_ID		 64    /* build-id (20 bytes for sha1) + size, or a dev:inode key */
#define PID_BUCKETS	 1024  /* power of two */
#define CACHE_SETS	 16384 /* power of two */
#define CACHE_WAYS	 4
#define CACHE_SLOTS	 (CACHE_SETS * CACHE_WAYS)
#define INTERN_MIN_CAP	 256   /* power of two */

/* From libstdc++'s C++ ABI; the Makefile links -lstdc++. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

static const char UNKNOWN_MODULE[] = "[unknown]";
static const char DELETED_SUFFIX[] = " (deleted)";

struct load {
	uint64_t offset, filesz, vaddr;
};

/* One object file, shared by every process that maps it. */
struct module {
	unsigned char id[MAX_ID];
	size_t id_len;
	const char *path;  /* interned, as the first process to map it saw it */
	Dwfl *dwfl;        /* a Dwfl of this one module, at its link-time addresses */
	Dwfl_Module *mod;
	/* its separate debug info not searched yet (symbolizer__set_maps_lazy) */
	bool debuginfo_pending;
	size_t nloads;
	struct load loads[MAX_LOADS];
};

struct mapping {
	uint64_t start, end, pgoff, inode;
	const char *path;      /* interned, " (deleted)" stripped */
	struct module *module; /* NULL: not an ELF file, or unreadable */
	bool current;          /* in the latest snapshot (else kept from an older one) */
};

struct proc {
	int pid;
	struct mapping *maps; /* sorted by start, non-overlapping */
	size_t nmaps;
	struct perfmap *perf;
	const char *perf_path; /* interned, shown as the module of JIT frames */
	struct timespec perf_mtime;
	off_t perf_size;
	struct proc *next;
};

struct cache_slot {
	const struct module *module; /* NULL: empty */
	uint64_t pc;                 /* link-time address looked up */
	uint64_t last_use;           /* tick of the last lookup, for replacement */
	size_t nframes;
	struct report_frame *frames; /* address left 0: filled per lookup */
};

struct symbolizer {
	struct proc *buckets[PID_BUCKETS];
	size_t nprocs;
	struct module *modules[MAX_MODULES];
	size_t nmodules;
	struct cache_slot *cache; /* CACHE_SETS sets of CACHE_WAYS */
	uint64_t tick;
	uint64_t dropped_modules, dropped_mappings;
	size_t ndebuginfo_pending; /* modules with debuginfo_pending set */
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
/* Modules                                                             */
/* ------------------------------------------------------------------ */

static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
	/* every module is reported with its fd: find_elf is never asked */
	.find_elf = dwfl_linux_proc_find_elf,
	/* .gnu_debuglink next to the file, /usr/lib/debug/.build-id, and
	 * debuginfod when DEBUGINFOD_URLS is set */
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

static void module_free(struct module *m)
{
	if (!m)
		return;
	dwfl_end(m->dwfl);
	free(m);
}

/* The identity of an object: its GNU build-id and size (a stripped copy
 * shares the build-id but not the symbols), or without one its device,
 * inode, size and modification time. */
static void object_id(int fd, unsigned char *id, size_t *len)
{
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	const void *bid = NULL;
	ssize_t n = elf ? dwelf_elf_gnu_build_id(elf, &bid) : -1;
	struct stat st;
	bool have_stat = fstat(fd, &st) == 0;

	if (n > 0 && (size_t)n + sizeof(st.st_size) <= MAX_ID && have_stat) {
		memcpy(id, bid, n);
		memcpy(id + n, &st.st_size, sizeof(st.st_size));
		*len = n + sizeof(st.st_size);
	} else if (have_stat) {
		*len = snprintf((char *)id, MAX_ID, "%jx:%jx:%jx:%jx", (uintmax_t)st.st_dev,
				(uintmax_t)st.st_ino, (uintmax_t)st.st_size,
				(uintmax_t)st.st_mtim.tv_sec);
	} else {
		*len = 0;
	}
	elf_end(elf);
}

static struct module *find_module(struct symbolizer *s, const unsigned char *id, size_t len)
{
	for (size_t i = 0; i < s->nmodules; i++)
		if (s->modules[i]->id_len == len && !memcmp(s->modules[i]->id, id, len))
			return s->modules[i];
	return NULL;
}

/* Remember where each PT_LOAD segment of the file goes, to turn a mapped
 * address (mapping start + file offset) into a link-time address. */
static void read_loads(struct module *m)
{
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(m->mod, &bias);
	size_t nph = 0;

	if (!elf || elf_getphdrnum(elf, &nph))
		return;
	for (size_t i = 0; i < nph && m->nloads < MAX_LOADS; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD)
			m->loads[m->nloads++] = (struct load){
				.offset = ph.p_offset, .filesz = ph.p_filesz, .vaddr = ph.p_vaddr + bias,
			};
	}
}

/* The separate debug info of m (next to the file name it was reported
 * with, or under /usr/lib/debug by build-id): with libc6-dbg installed,
 * most of what opening a module costs. */
static void find_debuginfo(struct symbolizer *s, struct module *m)
{
	Dwarf_Addr bias;

	if (!m->debuginfo_pending)
		return;
	m->debuginfo_pending = false;
	s->ndebuginfo_pending--;
	dwfl_module_getdwarf(m->mod, &bias);
}

/*
 * A module for the object open on fd (consumed). file_name is where the
 * object lives in our namespace (root-prefixed): separate debug info is
 * searched next to it, later (find_debuginfo). NULL when fd is not an ELF
 * file or the table is full.
 */
static struct module *module_for_fd(struct symbolizer *s, int fd, const char *path,
				    const char *file_name)
{
	unsigned char id[MAX_ID];
	size_t id_len;
	struct module *m;

	object_id(fd, id, &id_len);
	m = id_len ? find_module(s, id, id_len) : NULL;
	if (m || !id_len) {
		close(fd);
		return m;
	}
	if (s->nmodules >= MAX_MODULES) {
		s->dropped_modules++;
		close(fd);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->path = intern(s, path)) || !(m->dwfl = dwfl_begin(&callbacks)))
		goto fail;
	memcpy(m->id, id, id_len);
	m->id_len = id_len;
	dwfl_report_begin(m->dwfl);
	/* at its link-time addresses (base 0 + p_vaddr): one module per Dwfl,
	 * so nothing can overlap */
	m->mod = dwfl_report_elf(m->dwfl, m->path, file_name, fd, 0, true);
	if (m->mod)
		fd = -1; /* consumed */
	if (!m->mod || dwfl_report_end(m->dwfl, NULL, NULL))
		goto fail;
	read_loads(m);
	s->modules[s->nmodules++] = m;
	m->debuginfo_pending = true;
	s->ndebuginfo_pending++;
	/* The separate debug info is searched while file_name still leads
	 * to the target's files (a container's root goes away with it): at
	 * the end of symbolizer__set_maps, or soon after a lazy snapshot. */
	return m;
fail:
	if (fd >= 0)
		close(fd);
	module_free(m);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Processes and their mappings                                        */
/* ------------------------------------------------------------------ */

static struct proc **proc_slot(struct symbolizer *s, int pid)
{
	struct proc **p = &s->buckets[(unsigned int)pid & (PID_BUCKETS - 1)];

	while (*p && (*p)->pid != pid)
		p = &(*p)->next;
	return p;
}

static void proc_free(struct proc *p)
{
	if (!p)
		return;
	free(p->maps);
	perfmap__free(p->perf);
	free(p);
}

/* One file-mapping line of a maps text. */
struct maps_line {
	uint64_t start, end, pgoff, inode;
	char path[4096];
	bool deleted;
};

static bool parse_maps_line(const char *line, size_t len, struct maps_line *out)
{
	struct procfs_mapping m;
	size_t plen;

	if (!procfs__parse_mapping(line, len, &m) || !m.path)
		return false;
	out->start = m.start;
	out->end = m.end;
	out->pgoff = m.offset;
	out->inode = m.inode;
	plen = m.path_len;
	if (plen >= sizeof(out->path))
		return false;
	memcpy(out->path, m.path, plen);
	out->path[plen] = '\0';
	out->deleted = plen > strlen(DELETED_SUFFIX) &&
		       !strcmp(out->path + plen - strlen(DELETED_SUFFIX), DELETED_SUFFIX);
	if (out->deleted)
		out->path[plen - strlen(DELETED_SUFFIX)] = '\0';
	return true;
}

static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/*
 * Open the object behind a mapping: through /proc/PID/map_files first,
 * which reaches exactly the file the process mapped even when it was
 * deleted, replaced or lives in another mount namespace; else by path
 * under root (e.g. a maps text describing no live process).
 */
static int open_mapped(int pid, const char *root, const struct maps_line *l, char *file_name,
		       size_t size)
{
	char link[96];
	int fd;

	snprintf(file_name, size, "%s%s", root, l->path);
	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, l->start, l->end);
	fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && !l->deleted)
		return open(file_name, O_RDONLY | O_CLOEXEC);
	/* A chrooted process in our mount namespace shows our paths, not
	 * its own: then the file is at the bare path (debug info next to it). */
	if (fd >= 0 && *root && !same_file(fd, file_name) && same_file(fd, l->path))
		snprintf(file_name, size, "%s", l->path);
	return fd;
}

static const struct mapping *find_mapping(const struct mapping *maps, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (addr < maps[mid].start)
			hi = mid;
		else if (addr >= maps[mid].end)
			lo = mid + 1;
		else
			return &maps[mid];
	}
	return NULL;
}

/* The same mapping in the previous snapshot: its module is reused without
 * opening the file again (snapshots are taken every interval). */
static struct module *known_module(const struct proc *p, const struct maps_line *l,
				   const char *path, bool *found)
{
	const struct mapping *old = p ? find_mapping(p->maps, p->nmaps, l->start) : NULL;

	*found = old && old->start == l->start && old->end == l->end && old->pgoff == l->pgoff &&
		 old->inode == l->inode && old->path == path;
	return *found ? old->module : NULL;
}

static int by_start(const void *a, const void *b)
{
	const struct mapping *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Whether m overlaps one of maps (sorted by start, not overlapping, as
 * /proc/PID/maps lists them). */
static bool overlaps_any(const struct mapping *maps, size_t n, const struct mapping *m)
{
	size_t lo = 0, hi = n;

	/* the first mapping ending after m starts */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (maps[mid].end <= m->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && maps[lo].start < m->end;
}

/* The file mappings of text, with their modules. */
static int read_mappings(struct symbolizer *s, int pid, const char *text, const char *root,
			 const struct proc *old, struct mapping *out, size_t *n)
{
	static struct maps_line l; /* 4 KiB path: not on the stack */
	char file_name[sizeof(l.path) + 256];
	const char *line = text;

	*n = 0;
	for (; *line; line += strcspn(line, "\n"), line += *line == '\n') {
		size_t len = strcspn(line, "\n");
		struct mapping *m = &out[*n];
		bool found;
		int fd;

		if (!parse_maps_line(line, len, &l))
			continue;
		if (*n >= MAX_MAPPINGS) {
			s->dropped_mappings++;
			continue;
		}
		*m = (struct mapping){ .start = l.start, .end = l.end, .pgoff = l.pgoff,
				       .inode = l.inode, .path = intern(s, l.path), .current = true };
		if (!m->path)
			return -ENOMEM;
		m->module = known_module(old, &l, m->path, &found);
		if (!found && (fd = open_mapped(pid, root, &l, file_name, sizeof(file_name))) >= 0)
			m->module = module_for_fd(s, fd, m->path, file_name);
		(*n)++;
	}
	return 0;
}

/* Add to the n current mappings those of old that nothing replaced. */
static size_t keep_unmapped(struct symbolizer *s, const struct proc *old, struct mapping *maps,
			    size_t n)
{
	size_t ncur = n;

	for (size_t i = 0; old && i < old->nmaps; i++) {
		if (!old->maps[i].module || overlaps_any(maps, ncur, &old->maps[i]))
			continue;
		if (n >= MAX_MAPPINGS) {
			s->dropped_mappings++;
			continue;
		}
		maps[n] = old->maps[i];
		maps[n++].current = false;
	}
	qsort(maps, n, sizeof(*maps), by_start);
	return n;
}

/* The process's pid in its own (innermost) pid namespace: what a JIT in a
 * container names its perf map after. pid itself when unknown. */
static int namespace_pid(int pid)
{
	char *status = NULL, *line;
	int nspid = pid;

	if (procfs__read_file(pid, "status", 1 << 16, &status))
		return pid;
	line = strstr(status, "\nNSpid:");
	if (line) {
		char *end = line + strcspn(line + 1, "\n") + 1, *last = NULL;

		/* the last of the tab-separated pids is the innermost */
		*end = '\0';
		for (char *tab = strchr(line + 1, '\t'); tab; tab = strchr(tab + 1, '\t'))
			last = tab + 1;
		if (last && atoi(last) > 0)
			nspid = atoi(last);
	}
	free(status);
	return nspid;
}

/* (Re)read the process's perf map when it changed since the last snapshot. */
static void refresh_perfmap(struct symbolizer *s, struct proc *p, const char *root)
{
	char path[4352];
	struct stat st;

	snprintf(path, sizeof(path), "%s/tmp/perf-%d.map", root, *root ? namespace_pid(p->pid) : p->pid);
	if (stat(path, &st) || (p->perf && st.st_size == p->perf_size &&
				st.st_mtim.tv_sec == p->perf_mtime.tv_sec &&
				st.st_mtim.tv_nsec == p->perf_mtime.tv_nsec))
		return;
	perfmap__free(p->perf);
	p->perf = perfmap__read(path, MAX_PERF_SYMS);
	/* shown as the process sees it */
	p->perf_path = intern(s, path + strlen(root));
	p->perf_size = st.st_size;
	p->perf_mtime = st.st_mtim;
}

struct symbolizer *symbolizer__new(void)
{
	struct symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		goto fail;
	s->cache = calloc(CACHE_SLOTS, sizeof(*s->cache));
	if (!s->cache || intern_grow(s))
		goto fail;
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
			proc_free(p);
		}
	}
	for (i = 0; i < s->nmodules; i++)
		module_free(s->modules[i]);
	for (i = 0; s->cache && i < CACHE_SLOTS; i++)
		free(s->cache[i].frames);
	for (i = 0; i < s->strings_cap; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->cache);
	free(s);
}

/* Entries needed for a snapshot of text merged with p's mappings: at most
 * one per line, plus the old ones, within the bound. */
static size_t mappings_room(const char *text, const struct proc *p)
{
	size_t lines = 1;

	for (const char *c = strchr(text, '\n'); c && lines <= MAX_MAPPINGS; c = strchr(c + 1, '\n'))
		lines++;
	if (lines > MAX_MAPPINGS)
		lines = MAX_MAPPINGS;
	return lines + (p ? p->nmaps : 0);
}

void symbolizer__find_debuginfo(struct symbolizer *s)
{
	for (size_t i = 0; s && s->ndebuginfo_pending && i < s->nmodules; i++)
		find_debuginfo(s, s->modules[i]);
}

int symbolizer__set_maps(struct symbolizer *s, int pid, const char *maps_text,
			 const char *root)
{
	int err = symbolizer__set_maps_lazy(s, pid, maps_text, root);

	/* (also the modules an earlier lazy snapshot left pending) */
	symbolizer__find_debuginfo(s);
	return err;
}

int symbolizer__set_maps_lazy(struct symbolizer *s, int pid, const char *maps_text,
			      const char *root)
{
	struct proc **slot, *p;
	struct mapping *maps;
	size_t n;
	int err;

	if (!s || !maps_text || pid <= 0)
		return -EINVAL;
	if (!root || strcmp(root, "/") == 0)
		root = "";
	slot = proc_slot(s, pid);
	p = *slot;
	if (!p && s->nprocs >= MAX_PIDS)
		return -ENOSPC;
	maps = calloc(mappings_room(maps_text, p), sizeof(*maps));
	if (!maps)
		return -ENOMEM;
	err = read_mappings(s, pid, maps_text, root, p, maps, &n);
	if (err) {
		free(maps);
		return err;
	}
	n = keep_unmapped(s, p, maps, n);
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			free(maps);
			return -ENOMEM;
		}
		p->pid = pid;
		*slot = p;
		s->nprocs++;
	}
	free(p->maps);
	/* shrink to what is used: most processes map a few dozen files */
	p->maps = realloc(maps, (n ? n : 1) * sizeof(*maps)) ?: maps;
	p->nmaps = n;
	refresh_perfmap(s, p, root);
	return 0;
}

int symbolizer__snapshot_process(struct symbolizer *s, int pid, bool lazy)
{
	char *maps, root[32];
	int err = procfs__read_file(pid, "maps", MAX_MAPS_BYTES, &maps);

	if (err)
		return err;
	/* paths in maps are the process's own: a container's root differs */
	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	if (*maps)
		err = (lazy ? symbolizer__set_maps_lazy : symbolizer__set_maps)(s, pid, maps, root);
	free(maps);
	return err;
}

uint64_t symbolizer__dropped(const struct symbolizer *s)
{
	return s ? s->dropped_modules + s->dropped_mappings : 0;
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

/* The link-time address of a mapped address, or 0 when no loaded segment
 * of the file covers it. */
static uint64_t link_address(const struct mapping *m, uint64_t addr)
{
	uint64_t file_off = addr - m->start + m->pgoff;

	for (size_t i = 0; i < m->module->nloads; i++) {
		const struct load *ld = &m->module->loads[i];

		if (file_off - ld->offset < ld->filesz)
			return file_off - ld->offset + ld->vaddr;
	}
	return 0;
}

/* A source path as the compiler's working directory saw it: relative
 * names are joined to it (what gdb and addr2line show). Interned. */
static const char *source_path(struct symbolizer *s, const char *comp_dir, const char *file)
{
	char buf[8192];

	if (!file || file[0] == '/' || !comp_dir || comp_dir[0] != '/')
		return intern(s, file);
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", comp_dir, file) >= sizeof(buf))
		return intern(s, file);
	return intern(s, buf);
}

static const char *cu_comp_dir(Dwarf_Die *cu)
{
	Dwarf_Attribute attr;

	return dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
}

/* Name of an inlined subroutine (its abstract origin's), demangled. */
static const char *inlined_name(struct symbolizer *s, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));

	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (!name)
		name = dwarf_diename(die);
	return intern_function(s, name);
}

/* Where an inlined subroutine was inlined: its call site. */
static void call_site(struct symbolizer *s, Dwarf_Die *cu, Dwarf_Die *inl, const char **file,
		      int *line)
{
	Dwarf_Attribute attr;
	Dwarf_Word fileidx = 0, lineno = 0;
	Dwarf_Files *files;
	size_t nfiles;

	*file = NULL;
	*line = 0;
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &fileidx) == 0 &&
	    dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && fileidx < nfiles)
		*file = source_path(s, cu_comp_dir(cu), dwarf_filesrc(files, fileidx, NULL, NULL));
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &lineno) == 0)
		*line = (int)lineno;
}

/*
 * The chain of DIEs from the innermost function-like scope at pc out to
 * its subprogram, in the concrete tree (dwarf_getscopes alone goes on
 * from an inlined instance into its abstract origin's scopes). Returns
 * the count, *chain malloc'd; 0 without DWARF for pc.
 */
static int inline_chain(Dwarf_Die *cu, Dwarf_Addr addr, Dwarf_Die **chain)
{
	Dwarf_Die *scopes = NULL, innermost;
	int n = dwarf_getscopes(cu, addr, &scopes), i;

	*chain = NULL;
	for (i = 0; i < n; i++) {
		int tag = dwarf_tag(&scopes[i]);

		if (tag == DW_TAG_inlined_subroutine || tag == DW_TAG_subprogram)
			break;
	}
	if (i >= n) {
		free(scopes);
		return 0;
	}
	innermost = scopes[i];
	free(scopes);
	n = dwarf_getscopes_die(&innermost, chain);
	return n > 0 ? n : 0;
}

/*
 * The frames at link-time address pc of m, innermost first: one per
 * inlined subroutine whose code pc is in (function, file and line of pc
 * inside it, inlined), then the function the code physically belongs to
 * (its symbol, with the line of the outermost call site). Returns the count.
 */
static size_t describe(struct symbolizer *s, const struct module *m, Dwarf_Addr pc,
		       struct report_frame *out)
{
	struct report_frame outer = { .module = m->path, .offset = -1 };
	Dwarf_Addr sym_off = 0, line_addr, bias;
	Dwarf_Die *cu, *chain = NULL;
	Dwfl_Line *dl = dwfl_module_getsrc(m->mod, pc);
	const char *file = dl ? dwfl_lineinfo(dl, &line_addr, &outer.line, NULL, NULL, NULL) : NULL;
	const char *name = dwfl_module_addrinfo(m->mod, pc, &sym_off, &(GElf_Sym){ 0 }, NULL, NULL, NULL);
	size_t n = 0;
	int nchain;

	outer.file = dl ? source_path(s, dwfl_line_comp_dir(dl), file) : NULL;
	if (name) {
		outer.function = intern_function(s, name);
		/* relative to the return address, not pc = address - 1 */
		outer.offset = (int64_t)sym_off + 1;
	}
	cu = dwfl_module_addrdie(m->mod, pc, &bias);
	nchain = cu ? inline_chain(cu, pc - bias, &chain) : 0;
	for (int i = 0; i < nchain && n < MAX_INLINE; i++) {
		int tag = dwarf_tag(&chain[i]);

		if (tag == DW_TAG_subprogram)
			break;
		if (tag != DW_TAG_inlined_subroutine)
			continue;
		out[n++] = (struct report_frame){
			.module = m->path, .function = inlined_name(s, &chain[i]), .offset = -1,
			.file = outer.file, .line = outer.line, .inlined = true,
		};
		call_site(s, cu, &chain[i], &outer.file, &outer.line);
	}
	free(chain);
	out[n++] = outer;
	return n;
}

/* The way holding m's pc in its set, or the one to replace (least
 * recently used): a set-associative cache keeps hot frames that a
 * direct-mapped one would evict on every collision. */
static struct cache_slot *cache_way(struct symbolizer *s, const struct module *m, uint64_t pc)
{
	uint64_t h = (pc ^ (uint64_t)(uintptr_t)m) * 0x9E3779B97F4A7C15ULL;
	struct cache_slot *set = &s->cache[((h >> 32) & (CACHE_SETS - 1)) * CACHE_WAYS], *victim = set;

	for (size_t w = 0; w < CACHE_WAYS; w++) {
		if (set[w].module == m && set[w].pc == pc)
			return &set[w];
		if (set[w].last_use < victim->last_use)
			victim = &set[w];
	}
	return victim;
}

/* The frames of m at pc, from the cache or described and cached. */
static const struct cache_slot *module_frames(struct symbolizer *s, const struct module *m,
					      uint64_t pc)
{
	struct cache_slot *slot = cache_way(s, m, pc);
	struct report_frame frames[MAX_FRAMES];
	size_t n;

	slot->last_use = ++s->tick;
	if (slot->module == m && slot->pc == pc)
		return slot;
	n = describe(s, m, pc, frames);
	free(slot->frames);
	slot->frames = malloc(n * sizeof(*frames));
	if (!slot->frames) {
		slot->module = NULL;
		return NULL;
	}
	memcpy(slot->frames, frames, n * sizeof(*frames));
	slot->nframes = n;
	slot->module = m;
	slot->pc = pc;
	return slot;
}

/* JIT code: the symbol of the perf map, or nothing. The name is interned
 * (only names that show up in stacks are): the map may be re-read while
 * frames handed out earlier are still in use. */
static void jit_frame(struct symbolizer *s, const struct proc *p, uint64_t addr,
		      struct report_frame *out)
{
	uint64_t start = 0;
	const char *name = intern(s, perfmap__lookup(p->perf, addr - 1, &start));

	if (!name)
		return;
	out->module = p->perf_path;
	out->function = name;
	out->offset = (int64_t)(addr - start);
}

int symbolizer__resolve_frames(struct symbolizer *s, int pid, uint64_t addr,
			       struct report_frame *out, size_t max)
{
	struct report_frame unknown = { .address = addr, .module = UNKNOWN_MODULE, .offset = -1 };
	const struct cache_slot *slot;
	const struct mapping *m;
	struct proc *p;
	uint64_t pc;
	size_t i;

	if (!s || (!out && max))
		return -EINVAL;
	p = *proc_slot(s, pid);
	if (!p)
		return -ENOENT;
	/* a return address points after the call; addr - 1 is inside it */
	m = addr ? find_mapping(p->maps, p->nmaps, addr - 1) : NULL;
	if (!m) {
		jit_frame(s, p, addr, &unknown);
		goto one;
	}
	unknown.module = m->path;
	pc = m->module ? link_address(m, addr - 1) : 0;
	if (pc)
		find_debuginfo(s, m->module);
	slot = pc ? module_frames(s, m->module, pc) : NULL;
	if (!slot)
		goto one;
	for (i = 0; i < slot->nframes && i < max; i++) {
		out[i] = slot->frames[i];
		out[i].address = addr;
		/* the report names the file as this process mapped it */
		out[i].module = m->path;
	}
	return (int)slot->nframes;
one:
	if (max)
		out[0] = unknown;
	return 1;
}

int symbolizer__resolve(struct symbolizer *s, int pid, uint64_t addr,
			struct report_frame *out)
{
	int n;

	if (!out)
		return -EINVAL;
	n = symbolizer__resolve_frames(s, pid, addr, out, 1);
	return n < 0 ? n : 0;
}
