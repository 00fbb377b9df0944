// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ELF look-ups with libelf: function symbols as file offsets (what uprobes
 * take) and the dynamic linker's load order of a program's libraries.
 *
 * Everything here is a pure function of files on disk, so it works for a
 * target in another mount namespace as long as the caller passes the
 * target's root ("/proc/PID/root").
 */
#include "elfsym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Bounds: every table here has one, even though real programs stay far below. */
#define MAX_NEEDED	 512 /* DT_NEEDED entries read per object */
#define MAX_CONF_DIRS	 256 /* directories taken from ld.so.conf and its includes */
#define MAX_CONF_DEPTH	 8   /* nested "include" levels (guards against include loops) */
#define MAX_CHAIN	 64  /* loader chain walked for DT_RPATH */

/*
 * The default directories and the $LIB / $PLATFORM expansions follow the
 * build machine's multiarch tuple, like Debian's ld.so does.
 */
#if defined(__x86_64__)
#define HAVE_MULTIARCH 1
#define MULTIARCH "x86_64-linux-gnu"
#define PLATFORM  "x86_64"
#elif defined(__aarch64__)
#define HAVE_MULTIARCH 1
#define MULTIARCH "aarch64-linux-gnu"
#define PLATFORM  "aarch64"
#elif defined(__riscv) && __riscv_xlen == 64
#define HAVE_MULTIARCH 1
#define MULTIARCH "riscv64-linux-gnu"
#define PLATFORM  "riscv64"
#else
#define HAVE_MULTIARCH 0
#define MULTIARCH ""
#define PLATFORM  ""
#endif

static const char *const default_dirs[] = {
#if HAVE_MULTIARCH
	"/lib/" MULTIARCH, "/usr/lib/" MULTIARCH,
#endif
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
};

/* ------------------------------------------------------------------ */
/* Function symbols                                                    */
/* ------------------------------------------------------------------ */

/*
 * How good a definition of a name is. A non-default version
 * ("memcpy@GLIBC_2.2.5", hidden in .gnu.version) exists only for old
 * binaries; new links bind to the default one, so that is what we want
 * to probe even when it turns out to be an ifunc (then: not found).
 */
enum { RANK_NONE = 0, RANK_HIDDEN = 1, RANK_DEFAULT = 2 };

struct sym_pick {
	int rank;
	unsigned char type;
	GElf_Addr value;
};

static int open_elf(const char *path, int *fd, Elf **elf)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (elf_version(EV_CURRENT) == EV_NONE)
		goto bad;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf)
		goto bad;
	if (elf_kind(*elf) != ELF_K_ELF) {
		elf_end(*elf);
		goto bad;
	}
	return 0;
bad:
	close(*fd);
	*fd = -1;
	*elf = NULL;
	return -ENOEXEC;
}

/* "malloc@@GLIBC_2.2.5" matches "malloc"; sets *hidden for a single '@'. */
static bool name_matches(const char *symname, const char *want, bool *hidden)
{
	size_t n = strlen(want);

	if (strncmp(symname, want, n) != 0)
		return false;
	if (symname[n] == '\0') {
		*hidden = false;
		return true;
	}
	if (symname[n] != '@')
		return false;
	*hidden = symname[n + 1] != '@';
	return true;
}

static bool sym_is_definition(const GElf_Sym *sym)
{
	int bind = GELF_ST_BIND(sym->st_info);

	if (sym->st_shndx == SHN_UNDEF || sym->st_shndx == SHN_ABS)
		return false;
	return bind == STB_GLOBAL || bind == STB_WEAK;
}

/* The .gnu.version section, which says which .dynsym entries are hidden. */
static Elf_Data *find_versym(Elf *elf)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_GNU_versym)
			return elf_getdata(scn, NULL);
	}
	return NULL;
}

/*
 * Scan one symbol table. Only names with no pick from an earlier table are
 * considered: once .dynsym has a say about a name (even "it is an ifunc"),
 * .symtab must not override it with some other definition.
 */
static void scan_symtab(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, Elf_Data *versym,
			const char *const *names, size_t n, struct sym_pick *picks,
			const bool *locked)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count, i, j;

	if (!data || sh->sh_entsize == 0)
		return;
	count = sh->sh_size / sh->sh_entsize;
	for (i = 1; i < count; i++) {
		GElf_Sym sym;
		const char *symname;

		if (!gelf_getsym(data, (int)i, &sym) || !sym_is_definition(&sym))
			continue;
		symname = elf_strptr(elf, sh->sh_link, sym.st_name);
		if (!symname || !*symname)
			continue;
		for (j = 0; j < n; j++) {
			bool hidden = false;
			GElf_Versym vs;
			int rank;

			if (locked[j] || !name_matches(symname, names[j], &hidden))
				continue;
			/* In .dynsym the version lives in .gnu.version, not the name. */
			if (versym && gelf_getversym(versym, (int)i, &vs))
				hidden = hidden || (vs & 0x8000);
			rank = hidden ? RANK_HIDDEN : RANK_DEFAULT;
			if (rank > picks[j].rank) {
				picks[j].rank = rank;
				picks[j].type = GELF_ST_TYPE(sym.st_info);
				picks[j].value = sym.st_value;
			}
		}
	}
}

/* Pass over every section of type 'type' (SHT_DYNSYM or SHT_SYMTAB). */
static void scan_type(Elf *elf, Elf32_Word type, const char *const *names, size_t n,
		      struct sym_pick *picks, const bool *locked)
{
	Elf_Data *versym = type == SHT_DYNSYM ? find_versym(elf) : NULL;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, &sh) && sh.sh_type == type)
			scan_symtab(elf, scn, &sh, versym, names, n, picks, locked);
	}
}

/* Virtual address -> file offset through the PT_LOAD that holds it. */
static bool vaddr_to_offset(Elf *elf, GElf_Addr v, uint64_t *off)
{
	size_t phnum, i;

	if (elf_getphdrnum(elf, &phnum) != 0)
		return false;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		/* p_filesz, not p_memsz: code must be backed by the file. */
		if (v >= ph.p_vaddr && v < ph.p_vaddr + ph.p_filesz) {
			*off = v - ph.p_vaddr + ph.p_offset;
			return true;
		}
	}
	return false;
}

int elfsym__find_functions(const char *path, const char *const *names, size_t n,
			   uint64_t *offsets, bool *found)
{
	struct sym_pick *picks = NULL;
	bool *locked = NULL;
	Elf *elf = NULL;
	int fd = -1, err, nfound = 0;
	size_t i;

	if (!path || (n && (!names || !offsets || !found)))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!names[i])
			return -EINVAL;
		found[i] = false;
		offsets[i] = 0;
	}
	err = open_elf(path, &fd, &elf);
	if (err)
		return err;
	picks = calloc(n ? n : 1, sizeof(*picks));
	locked = calloc(n ? n : 1, sizeof(*locked));
	if (!picks || !locked) {
		err = -ENOMEM;
		goto cleanup;
	}

	scan_type(elf, SHT_DYNSYM, names, n, picks, locked);
	for (i = 0; i < n; i++)
		locked[i] = picks[i].rank != RANK_NONE;
	scan_type(elf, SHT_SYMTAB, names, n, picks, locked);

	for (i = 0; i < n; i++) {
		/* An ifunc's symbol is its resolver, not the function: not found. */
		if (picks[i].rank == RANK_NONE || picks[i].type != STT_FUNC)
			continue;
		if (vaddr_to_offset(elf, picks[i].value, &offsets[i])) {
			found[i] = true;
			nfound++;
		}
	}
	err = nfound;
cleanup:
	free(picks);
	free(locked);
	elf_end(elf);
	if (fd >= 0)
		close(fd);
	return err;
}

/* ------------------------------------------------------------------ */
/* Files under a root                                                  */
/* ------------------------------------------------------------------ */

struct rootctx {
	const char *prefix; /* "" for / */
	int dirfd;	    /* O_PATH fd of prefix, -1 when prefix is "" */
	bool no_openat2;
};

/*
 * Open an absolute in-root path. Through /proc/PID/root, an absolute
 * symlink inside the target (/lib64/ld-linux… -> /lib/…) would otherwise
 * resolve in OUR namespace; openat2(RESOLVE_IN_ROOT) (Linux 5.6) keeps it
 * inside. Older kernels fall back to plain prefixing.
 */
static int open_under(struct rootctx *r, const char *path)
{
	char buf[PATH_MAX];

	if (r->dirfd >= 0 && !r->no_openat2) {
		struct open_how how = {
			.flags = O_RDONLY | O_CLOEXEC,
			.resolve = RESOLVE_IN_ROOT,
		};
		const char *rel = path;
		long fd;

		while (*rel == '/')
			rel++;
		fd = syscall(SYS_openat2, r->dirfd, *rel ? rel : ".", &how, sizeof(how));
		if (fd >= 0 || (errno != ENOSYS && errno != EINVAL && errno != E2BIG))
			return fd >= 0 ? (int)fd : -1;
		r->no_openat2 = true;
	}
	if (snprintf(buf, sizeof(buf), "%s%s", r->prefix, path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(buf, O_RDONLY | O_CLOEXEC);
}

/* ------------------------------------------------------------------ */
/* Dynamic section of one object                                       */
/* ------------------------------------------------------------------ */

struct elf_info {
	int elfclass;
	unsigned int machine;
	char *needed[MAX_NEEDED];
	size_t nneeded;
	char *rpath, *runpath, *interp;
};

static void elf_info_clear(struct elf_info *info)
{
	size_t i;

	for (i = 0; i < info->nneeded; i++)
		free(info->needed[i]);
	free(info->rpath);
	free(info->runpath);
	free(info->interp);
	memset(info, 0, sizeof(*info));
}

static int dup_into(char **dst, const char *s)
{
	if (!s)
		return 0;
	free(*dst);
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

static int read_dynamic(Elf *elf, Elf_Scn *scn, const GElf_Shdr *sh, struct elf_info *info)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count, i;
	int err = 0;

	if (!data || sh->sh_entsize == 0)
		return 0;
	count = sh->sh_size / sh->sh_entsize;
	for (i = 0; i < count && !err; i++) {
		GElf_Dyn dyn;
		const char *s;

		if (!gelf_getdyn(data, (int)i, &dyn) || dyn.d_tag == DT_NULL)
			break;
		if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_RPATH && dyn.d_tag != DT_RUNPATH)
			continue;
		s = elf_strptr(elf, sh->sh_link, dyn.d_un.d_val);
		if (!s)
			continue;
		if (dyn.d_tag == DT_RPATH)
			err = dup_into(&info->rpath, s);
		else if (dyn.d_tag == DT_RUNPATH)
			err = dup_into(&info->runpath, s);
		else if (info->nneeded < MAX_NEEDED)
			err = dup_into(&info->needed[info->nneeded++], s);
	}
	return err;
}

/* PT_INTERP names the dynamic linker, which ld.so does not list itself. */
static int read_interp(Elf *elf, struct elf_info *info)
{
	size_t phnum, i, size;
	const char *raw;

	if (elf_getphdrnum(elf, &phnum) != 0)
		return 0;
	for (i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_INTERP)
			continue;
		raw = elf_rawfile(elf, &size);
		if (!raw || ph.p_offset >= size || ph.p_filesz > size - ph.p_offset ||
		    ph.p_filesz == 0 || raw[ph.p_offset + ph.p_filesz - 1] != '\0')
			return 0;
		return dup_into(&info->interp, raw + ph.p_offset);
	}
	return 0;
}

/*
 * Read class, machine, DT_NEEDED/DT_RPATH/DT_RUNPATH (via the section
 * headers; an object stripped of them is treated as having no needs) and
 * PT_INTERP. Takes ownership of fd.
 */
static int read_elf_info(int fd, struct elf_info *info)
{
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	GElf_Shdr sh;
	Elf *elf = NULL;
	int err = -ENOEXEC;

	memset(info, 0, sizeof(*info));
	if (elf_version(EV_CURRENT) == EV_NONE)
		goto cleanup;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh))
		goto cleanup;
	info->elfclass = gelf_getclass(elf);
	info->machine = eh.e_machine;
	err = read_interp(elf, info);
	while (!err && (scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_DYNAMIC)
			err = read_dynamic(elf, scn, &sh, info);
	}
cleanup:
	elf_end(elf);
	close(fd);
	if (err)
		elf_info_clear(info);
	return err;
}

/* Whether fd is an ELF object the executable can load (same class and machine). */
static bool elf_compatible(int fd, int elfclass, unsigned int machine)
{
	GElf_Ehdr eh;
	Elf *elf;
	bool ok;

	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	ok = elf && elf_kind(elf) == ELF_K_ELF && gelf_getehdr(elf, &eh) &&
	     gelf_getclass(elf) == elfclass && eh.e_machine == machine;
	elf_end(elf);
	return ok;
}

/* ------------------------------------------------------------------ */
/* ld.so.conf                                                          */
/* ------------------------------------------------------------------ */

struct dirlist {
	char *dirs[MAX_CONF_DIRS];
	size_t n;
};

static void dirlist_clear(struct dirlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->dirs[i]);
	l->n = 0;
}

static int parse_conf(const char *prefix, const char *path, int depth, struct dirlist *out);

/* "include PATTERN": a relative pattern is relative to /etc, like ldconfig. */
static int conf_include(const char *prefix, const char *pattern, int depth, struct dirlist *out)
{
	char buf[PATH_MAX];
	size_t plen = strlen(prefix), i;
	glob_t g;
	int err = 0;

	if (snprintf(buf, sizeof(buf), "%s%s%s", prefix, pattern[0] == '/' ? "" : "/etc/",
		     pattern) >= (int)sizeof(buf))
		return 0;
	if (glob(buf, 0, NULL, &g) != 0)
		return 0; /* no match is not an error */
	for (i = 0; i < g.gl_pathc && !err; i++) {
		/* glob returns prefixed paths; parse_conf wants in-root ones */
		if (strncmp(g.gl_pathv[i], prefix, plen) == 0)
			err = parse_conf(prefix, g.gl_pathv[i] + plen, depth + 1, out);
	}
	globfree(&g);
	return err;
}

static int conf_line(const char *prefix, char *line, int depth, struct dirlist *out)
{
	char *s = line, *end;

	s[strcspn(s, "#\n")] = '\0';
	s += strspn(s, " \t");
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	if (!*s)
		return 0;
	if (strncmp(s, "include", 7) == 0 && (s[7] == ' ' || s[7] == '\t')) {
		s += 7 + strspn(s + 7, " \t");
		return conf_include(prefix, s, depth, out);
	}
	if (strncmp(s, "hwcap", 5) == 0 && (s[5] == ' ' || s[5] == '\t'))
		return 0;
	s[strcspn(s, "=")] = '\0'; /* old "dir=libc5" form */
	if (s[0] != '/' || out->n >= MAX_CONF_DIRS)
		return 0;
	out->dirs[out->n] = strdup(s);
	if (!out->dirs[out->n])
		return -ENOMEM;
	out->n++;
	return 0;
}

/* Read root/path; missing files are fine (a minimal container has none). */
static int parse_conf(const char *prefix, const char *path, int depth, struct dirlist *out)
{
	char buf[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;
	int err = 0;

	if (depth > MAX_CONF_DEPTH)
		return 0;
	if (snprintf(buf, sizeof(buf), "%s%s", prefix, path) >= (int)sizeof(buf))
		return 0;
	f = fopen(buf, "re");
	if (!f)
		return 0;
	while (!err && getline(&line, &cap, f) > 0)
		err = conf_line(prefix, line, depth, out);
	free(line);
	fclose(f);
	return err;
}

/* ------------------------------------------------------------------ */
/* Load order                                                          */
/* ------------------------------------------------------------------ */

struct object {
	char *path;  /* in-root path */
	char *origin_path; /* exe only: symlink-free path, what ld.so's $ORIGIN uses */
	int parent;  /* index of the object that needed it, -1 for the exe */
	dev_t dev;
	ino_t ino;
	struct elf_info info;
};

struct search {
	struct rootctx root;
	const char *ld_library_path;
	struct dirlist conf;
	struct object *objs;
	size_t nobjs, max;
	char **names; /* every DT_NEEDED name already resolved or tried */
	size_t nnames, names_cap;
	bool have_interp;
	dev_t interp_dev;
	ino_t interp_ino;
};

/* Copy the directory part of path (ld.so's $ORIGIN) into buf. */
static void origin_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, size, ".");
	else if (slash == path)
		snprintf(buf, size, "/");
	else
		snprintf(buf, size, "%.*s", (int)(slash - path), path);
}

/*
 * Expand $ORIGIN, $LIB and $PLATFORM (bare or braced) in one search-path
 * element. Returns false for an unknown token, which makes ld.so drop the
 * element too.
 */
static bool expand_tokens(const char *elem, size_t len, const char *origin, char *out,
			  size_t size)
{
	static const struct { const char *name, *value; } tokens[] = {
		{ "ORIGIN", NULL }, { "LIB", "lib/" MULTIARCH }, { "PLATFORM", PLATFORM },
	};
	size_t o = 0, i = 0, t;

	while (i < len) {
		const char *val = NULL;
		size_t skip = 0;

		if (elem[i] != '$') {
			if (o + 1 >= size)
				return false;
			out[o++] = elem[i++];
			continue;
		}
		for (t = 0; t < sizeof(tokens) / sizeof(tokens[0]) && !val; t++) {
			size_t n = strlen(tokens[t].name);
			const char *p = elem + i + 1;

			if (i + 1 + n <= len && strncmp(p, tokens[t].name, n) == 0 &&
			    (i + 1 + n == len || !(p[n] == '_' || (p[n] >= 'A' && p[n] <= 'Z') ||
						   (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9'))))
				skip = 1 + n;
			else if (i + 3 + n <= len && p[0] == '{' && strncmp(p + 1, tokens[t].name, n) == 0 &&
				 p[1 + n] == '}')
				skip = 3 + n;
			if (skip)
				val = tokens[t].value ? tokens[t].value : origin;
		}
		if (!val || o + strlen(val) >= size)
			return false;
		memcpy(out + o, val, strlen(val));
		o += strlen(val);
		i += skip;
	}
	out[o] = '\0';
	return o > 0;
}

/* Try dir/name: it must open under root and match the executable's ELF kind. */
static int try_candidate(struct search *s, const char *dir, const char *name, char *path,
			 size_t size)
{
	const struct elf_info *exe = &s->objs[0].info;
	int fd;

	if (snprintf(path, size, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name) >=
	    (int)size)
		return -1;
	fd = open_under(&s->root, path);
	if (fd < 0)
		return -1;
	if (!elf_compatible(fd, exe->elfclass, exe->machine)) {
		close(fd); /* e.g. a 32-bit library in a biarch directory */
		return -1;
	}
	return fd;
}

/* Search a ':'/';'-separated list (DT_RPATH, DT_RUNPATH, LD_LIBRARY_PATH). */
static int search_list(struct search *s, const char *list, const char *origin_path,
		       const char *name, char *path, size_t size)
{
	char origin[PATH_MAX], dir[PATH_MAX];
	const char *p = list;

	if (!list)
		return -1;
	origin_of(origin_path, origin, sizeof(origin));
	while (*p) {
		size_t len = strcspn(p, ":;");
		int fd;

		/* empty elements mean "." to ld.so; the tracer's cwd means nothing here */
		if (len && expand_tokens(p, len, origin, dir, sizeof(dir))) {
			fd = try_candidate(s, dir, name, path, size);
			if (fd >= 0)
				return fd;
		}
		p += len;
		if (*p)
			p++;
	}
	return -1;
}

/* The path whose directory is $ORIGIN for object o. */
static const char *object_origin(const struct object *o)
{
	return o->origin_path ? o->origin_path : o->path;
}

/*
 * For the executable ld.so takes $ORIGIN from /proc/self/exe, i.e. with
 * symlinks resolved; libraries keep the directory they were found in.
 * Best effort: without a usable realpath the path as given is used.
 */
static void set_exe_origin(struct search *s)
{
	struct object *exe = &s->objs[0];
	size_t plen = strlen(s->root.prefix);
	char buf[PATH_MAX], *real;

	if (snprintf(buf, sizeof(buf), "%s%s", s->root.prefix, exe->path) >= (int)sizeof(buf))
		return;
	real = realpath(buf, NULL);
	if (!real)
		return;
	if (strncmp(real, s->root.prefix, plen) == 0 && real[plen] == '/')
		exe->origin_path = strdup(real + plen);
	free(real);
}

/*
 * DT_RPATH of the requesting object, then of the object that loaded it, up
 * to the executable, each only if it has no DT_RUNPATH (glibc's
 * _dl_map_object). Nothing at all when the requester has DT_RUNPATH.
 */
static int search_rpaths(struct search *s, int idx, const char *name, char *path, size_t size)
{
	int i = idx, steps = 0, fd;

	if (s->objs[idx].info.runpath)
		return -1;
	while (i >= 0 && steps++ < MAX_CHAIN) {
		const struct object *o = &s->objs[i];

		if (o->info.rpath && !o->info.runpath) {
			fd = search_list(s, o->info.rpath, object_origin(o), name, path, size);
			if (fd >= 0)
				return fd;
		}
		i = o->parent;
	}
	return -1;
}

/* ld.so(8) order for a name without a slash; returns an open fd or -1. */
static int find_library(struct search *s, int idx, const char *name, char *path, size_t size)
{
	const struct object *o = &s->objs[idx];
	size_t i;
	int fd;

	/* a relative name with a slash is relative to the target's cwd: unknowable */
	if (strchr(name, '/'))
		return name[0] == '/' ? try_candidate(s, "/", name + 1, path, size) : -1;
	fd = search_rpaths(s, idx, name, path, size);
	if (fd < 0)
		fd = search_list(s, s->ld_library_path, object_origin(&s->objs[0]), name, path,
				 size);
	if (fd < 0)
		fd = search_list(s, o->info.runpath, object_origin(o), name, path, size);
	for (i = 0; fd < 0 && i < s->conf.n; i++)
		fd = try_candidate(s, s->conf.dirs[i], name, path, size);
	for (i = 0; fd < 0 && i < sizeof(default_dirs) / sizeof(default_dirs[0]); i++)
		fd = try_candidate(s, default_dirs[i], name, path, size);
	return fd;
}

/* ld.so loads a DT_NEEDED name once, whoever asks for it again. */
static int name_seen(struct search *s, const char *name, bool *seen)
{
	size_t i;

	for (i = 0; i < s->nnames; i++) {
		if (strcmp(s->names[i], name) == 0) {
			*seen = true;
			return 0;
		}
	}
	*seen = false;
	if (s->nnames == s->names_cap) {
		size_t cap = s->names_cap ? s->names_cap * 2 : 32;
		char **n = realloc(s->names, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->names = n;
		s->names_cap = cap;
	}
	s->names[s->nnames] = strdup(name);
	if (!s->names[s->nnames])
		return -ENOMEM;
	s->nnames++;
	return 0;
}

/* The same file reached by two names (symlinks) is one object. */
static bool inode_seen(const struct search *s, dev_t dev, ino_t ino)
{
	size_t i;

	if (s->have_interp && s->interp_dev == dev && s->interp_ino == ino)
		return true;
	for (i = 0; i < s->nobjs; i++) {
		if (s->objs[i].dev == dev && s->objs[i].ino == ino)
			return true;
	}
	return false;
}

/* Append an opened object (takes fd) and read its dynamic section. */
static int add_object(struct search *s, int fd, const char *path, int parent)
{
	struct object *o = &s->objs[s->nobjs];
	struct stat st;
	int err;

	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	if (inode_seen(s, st.st_dev, st.st_ino)) {
		close(fd);
		return 0;
	}
	memset(o, 0, sizeof(*o));
	o->path = strdup(path);
	if (!o->path) {
		close(fd);
		return -ENOMEM;
	}
	err = read_elf_info(fd, &o->info);
	if (err) {
		free(o->path);
		return err;
	}
	o->parent = parent;
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	s->nobjs++;
	return 0;
}

/* Resolve the needs of object idx, appending what is new. */
static int expand_object(struct search *s, int idx)
{
	char path[PATH_MAX];
	size_t i;
	int err;

	for (i = 0; i < s->objs[idx].info.nneeded && s->nobjs < s->max; i++) {
		const char *name = s->objs[idx].info.needed[i];
		bool seen;
		int fd;

		err = name_seen(s, name, &seen);
		if (err)
			return err;
		if (seen)
			continue;
		fd = find_library(s, idx, name, path, sizeof(path));
		if (fd < 0)
			continue; /* not found: ld.so would fail, we just skip it */
		err = add_object(s, fd, path, idx);
		/* a broken candidate library is skipped, not fatal */
		if (err == -ENOMEM)
			return err;
	}
	return 0;
}

/* Remember the interpreter's inode so it is never listed. */
static void note_interp(struct search *s)
{
	const char *interp = s->objs[0].info.interp;
	struct stat st;
	int fd;

	if (!interp)
		return;
	fd = open_under(&s->root, interp);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0) {
		s->have_interp = true;
		s->interp_dev = st.st_dev;
		s->interp_ino = st.st_ino;
	}
	close(fd);
}

static int open_root(struct rootctx *r, const char *root)
{
	struct stat st;

	r->prefix = root;
	r->dirfd = -1;
	r->no_openat2 = false;
	if (!*root)
		return 0;
	r->dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		return -errno;
	if (fstat(r->dirfd, &st) < 0 || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

/* Hand the in-root paths back with the root prefix, in BFS order. */
static int export_paths(const struct search *s, char ***paths)
{
	char **out = calloc(s->nobjs ? s->nobjs : 1, sizeof(*out));
	size_t i;

	if (!out)
		return -ENOMEM;
	for (i = 0; i < s->nobjs; i++) {
		if (asprintf(&out[i], "%s%s", s->root.prefix, s->objs[i].path) < 0) {
			out[i] = NULL;
			elfsym__free_paths(out, i);
			return -ENOMEM;
		}
	}
	*paths = out;
	return (int)s->nobjs;
}

static void search_clear(struct search *s)
{
	size_t i;

	for (i = 0; i < s->nobjs; i++) {
		free(s->objs[i].path);
		free(s->objs[i].origin_path);
		elf_info_clear(&s->objs[i].info);
	}
	free(s->objs);
	for (i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
	dirlist_clear(&s->conf);
	if (s->root.dirfd >= 0)
		close(s->root.dirfd);
}

int elfsym__load_order(const char *root, const char *exe, const char *ld_library_path,
		       size_t max_objects, char ***paths)
{
	struct search s = { .root.dirfd = -1 };
	char exe_path[PATH_MAX];
	size_t i;
	int err, fd;

	if (!exe || !*exe || !paths || max_objects == 0 || max_objects > INT_MAX)
		return -EINVAL;
	*paths = NULL;
	if (!root || strcmp(root, "/") == 0)
		root = "";
	err = open_root(&s.root, root);
	if (err)
		goto cleanup;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		err = -ENOEXEC;
		goto cleanup;
	}
	/* a relative exe only means something relative to a root */
	if (snprintf(exe_path, sizeof(exe_path), "%s%s", (*root && exe[0] != '/') ? "/" : "",
		     exe) >= (int)sizeof(exe_path)) {
		err = -ENAMETOOLONG;
		goto cleanup;
	}
	s.objs = calloc(max_objects, sizeof(*s.objs));
	if (!s.objs) {
		err = -ENOMEM;
		goto cleanup;
	}
	s.max = max_objects;
	s.ld_library_path = ld_library_path;
	fd = open_under(&s.root, exe_path);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	err = add_object(&s, fd, exe_path, -1);
	if (err)
		goto cleanup;
	note_interp(&s);
	set_exe_origin(&s);
	err = parse_conf(root, "/etc/ld.so.conf", 0, &s.conf);
	/* BFS: objs doubles as the queue, so depth is bounded by max_objects */
	for (i = 0; !err && i < s.nobjs && s.nobjs < s.max; i++)
		err = expand_object(&s, (int)i);
	if (!err)
		err = export_paths(&s, paths);
cleanup:
	search_clear(&s);
	return err;
}

void elfsym__free_paths(char **paths, size_t n)
{
	size_t i;

	if (!paths)
		return;
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}
