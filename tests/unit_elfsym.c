// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * elfsym: symbol offsets are checked against an independent route (the
 * running process's own dynamic linker: dlsym + dl_iterate_phdr, and the
 * bytes mapped in memory), and the load order against ld.so's own trace
 * (LD_TRACE_LOADED_OBJECTS, what ldd prints).
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"

#define MAX_OBJS 256

/* A global function the linker keeps out of .dynsym: only .symtab has it. */
__attribute__((noinline, used)) int stray_unit_symtab_only(int x)
{
	return x * 7 + 3;
}

/* Local binding: must not be reported (the header wants global or weak). */
__attribute__((noinline, used)) static int stray_unit_local_fn(int x)
{
	return x * 11 + 5;
}

static void self_exe(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);

	cr_assert(n > 0);
	buf[n] = '\0';
}

/* The libc this process runs on, and the address of one of its symbols. */
static void *libc_symbol(const char *name, Dl_info *info)
{
	void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	void *sym;

	cr_assert_not_null(h);
	sym = dlsym(h, name);
	cr_assert_not_null(sym, "dlsym %s", name);
	cr_assert(dladdr(sym, info));
	dlclose(h);
	return sym;
}

struct phdr_query {
	uintptr_t base;
	uintptr_t vaddr; /* address - load bias */
	uint64_t offset;
	bool found;
};

/* The same PT_LOAD math, from the program headers ld.so mapped. */
static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct phdr_query *q = data;
	int i;

	(void)size;
	if (info->dlpi_addr != q->base)
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD && q->vaddr >= ph->p_vaddr &&
		    q->vaddr < ph->p_vaddr + ph->p_filesz) {
			q->offset = q->vaddr - ph->p_vaddr + ph->p_offset;
			q->found = true;
			return 1;
		}
	}
	return 0;
}

static uint64_t memory_route_offset(const void *sym, const Dl_info *info)
{
	struct phdr_query q = {
		.base = (uintptr_t)info->dli_fbase,
		.vaddr = (uintptr_t)sym - (uintptr_t)info->dli_fbase,
	};

	/* for ET_DYN dli_fbase is the load bias; ld.so's dlpi_addr is too */
	dl_iterate_phdr(phdr_cb, &q);
	cr_assert(q.found, "no PT_LOAD holds %p", sym);
	return q.offset;
}

static void assert_file_bytes_equal(const char *path, uint64_t off, const void *mem)
{
	unsigned char buf[32];
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0, "open %s", path);
	cr_assert_eq(pread(fd, buf, sizeof(buf), (off_t)off), (ssize_t)sizeof(buf));
	close(fd);
	cr_assert(memcmp(buf, mem, sizeof(buf)) == 0, "bytes at %s+%#llx differ from memory",
		  path, (unsigned long long)off);
}

Test(elfsym, libc_allocators_match_memory)
{
	const char *names[] = { "malloc", "free", "calloc" };
	uint64_t offs[3];
	bool found[3];
	Dl_info info;
	size_t i;
	int n;

	libc_symbol("malloc", &info);
	n = elfsym__find_functions(info.dli_fname, names, 3, offs, found);
	cr_assert_eq(n, 3, "found %d in %s", n, info.dli_fname);
	for (i = 0; i < 3; i++) {
		void *sym = libc_symbol(names[i], &info);

		cr_assert(found[i]);
		cr_assert_eq(offs[i], memory_route_offset(sym, &info), "%s", names[i]);
		assert_file_bytes_equal(info.dli_fname, offs[i], sym);
	}
}

Test(elfsym, missing_name_not_found)
{
	const char *names[] = { "stray_no_such_function_xyz", "malloc", "mallo" };
	uint64_t offs[3] = { 1, 1, 1 };
	bool found[3] = { true, false, true };
	Dl_info info;

	libc_symbol("malloc", &info);
	cr_assert_eq(elfsym__find_functions(info.dli_fname, names, 3, offs, found), 1);
	cr_assert(!found[0]);
	cr_assert(found[1]);
	cr_assert(!found[2], "a prefix must not match");
	cr_assert_eq(offs[0], 0);
}

/*
 * glibc's memcpy@@GLIBC_2.14 (the default) is an ifunc; memcpy@GLIBC_2.2.5
 * (hidden, for old binaries) is a plain function. Neither may be reported:
 * the first is a resolver, the second is not what new programs call.
 */
Test(elfsym, default_version_ifunc_is_not_found)
{
	const char *names[] = { "memcpy" };
	uint64_t off;
	bool found;
	Dl_info info;

	libc_symbol("malloc", &info);
	cr_assert_eq(elfsym__find_functions(info.dli_fname, names, 1, &off, &found), 0);
	cr_assert(!found);
}

Test(elfsym, symtab_fallback_in_pie)
{
	const char *names[] = { "stray_unit_symtab_only", "stray_unit_local_fn" };
	char exe[PATH_MAX];
	uint64_t offs[2];
	bool found[2];

	self_exe(exe, sizeof(exe));
	cr_assert_eq(stray_unit_local_fn(1), 16);
	cr_assert_eq(elfsym__find_functions(exe, names, 2, offs, found), 1);
	cr_assert(found[0]);
	cr_assert(!found[1], "local symbols are not global or weak");
	assert_file_bytes_equal(exe, offs[0], (const void *)stray_unit_symtab_only);
}

Test(elfsym, not_elf_and_missing)
{
	char tmpl[] = "/tmp/stray-elfsym-XXXXXX";
	const char *names[] = { "malloc" };
	uint64_t off;
	bool found;
	int fd = mkstemp(tmpl);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "hello, not an ELF file\n", 23), 23);
	close(fd);
	cr_assert_eq(elfsym__find_functions(tmpl, names, 1, &off, &found), -ENOEXEC);
	unlink(tmpl);
	cr_assert_eq(elfsym__find_functions("/nonexistent/stray", names, 1, &off, &found),
		     -ENOENT);
}

/* ---- load order ---- */

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static int index_of_basename(char **paths, int n, const char *base)
{
	int i;

	for (i = 0; i < n; i++) {
		const char *slash = strrchr(paths[i], '/');

		if (strcmp(slash ? slash + 1 : paths[i], base) == 0)
			return i;
	}
	return -1;
}

/* ld.so's own answer: "name => path (addr)" lines, in link-map order. */
static int ld_so_trace(const char *exe, char out[][PATH_MAX], int max)
{
	char cmd[PATH_MAX + 64], line[PATH_MAX + 128];
	FILE *p;
	int n = 0;

	snprintf(cmd, sizeof(cmd), "env -u LD_PRELOAD LD_TRACE_LOADED_OBJECTS=1 '%s'", exe);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (n < max && fgets(line, sizeof(line), p)) {
		char *arrow = strstr(line, "=> "), *end;

		if (!arrow || arrow[3] != '/')
			continue;
		end = strstr(arrow, " (0x");
		if (end)
			*end = '\0';
		snprintf(out[n++], PATH_MAX, "%s", arrow + 3);
	}
	cr_assert_eq(pclose(p), 0);
	return n;
}

Test(elfsym, load_order_matches_ld_so)
{
	static char expect[MAX_OBJS][PATH_MAX];
	char exe[PATH_MAX], **paths = NULL;
	int n, m, i;

	self_exe(exe, sizeof(exe));
	n = elfsym__load_order(NULL, exe, getenv("LD_LIBRARY_PATH"), MAX_OBJS, &paths);
	cr_assert_gt(n, 1, "load_order: %d", n);
	cr_assert_str_eq(paths[0], exe);
	m = ld_so_trace(exe, expect, MAX_OBJS);
	cr_assert_eq(n - 1, m, "we list %d libraries, ld.so %d", n - 1, m);
	for (i = 0; i < m; i++)
		cr_assert(same_file(paths[i + 1], expect[i]), "#%d: %s vs ld.so %s", i + 1,
			  paths[i + 1], expect[i]);
	elfsym__free_paths(paths, (size_t)n);
}

Test(elfsym, libc_before_its_needs_and_no_interpreter)
{
	char exe[PATH_MAX], **paths = NULL;
	int n, libc, i;

	self_exe(exe, sizeof(exe));
	n = elfsym__load_order("", exe, NULL, MAX_OBJS, &paths);
	cr_assert_gt(n, 1);
	libc = index_of_basename(paths, n, "libc.so.6");
	cr_assert_gt(libc, 0, "libc.so.6 missing");
	for (i = 0; i < n; i++) {
		/* the interpreter is what libc needs; it must not be listed */
		cr_assert(!same_file(paths[i], "/lib64/ld-linux-x86-64.so.2"), "%s", paths[i]);
		if (i != libc)
			cr_assert(!same_file(paths[i], paths[libc]), "duplicate libc at %d", i);
	}
	elfsym__free_paths(paths, (size_t)n);
}

Test(elfsym, ld_library_path_and_origin)
{
	/* dir is short, so the paths built from it are too */
	char dir[] = "/tmp/stray-origin-XXXXXX", exe[PATH_MAX], copy[64], lib[64],
	     link_path[128], cmd[2 * PATH_MAX], **paths = NULL;
	const char *lists[] = { "$ORIGIN/lib", "/nonexistent:${ORIGIN}/lib" };
	Dl_info info;
	size_t k;
	int n, libc;

	self_exe(exe, sizeof(exe));
	libc_symbol("malloc", &info);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(copy, sizeof(copy), "%s/exe", dir);
	snprintf(lib, sizeof(lib), "%s/lib", dir);
	snprintf(link_path, sizeof(link_path), "%s/libc.so.6", lib);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", exe, copy);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(mkdir(lib, 0755), 0);
	cr_assert_eq(symlink(info.dli_fname, link_path), 0);

	for (k = 0; k < 2; k++) {
		n = elfsym__load_order(NULL, copy, lists[k], MAX_OBJS, &paths);
		cr_assert_gt(n, 1);
		libc = index_of_basename(paths, n, "libc.so.6");
		cr_assert_gt(libc, 0);
		cr_assert_str_eq(paths[libc], link_path, "LD_LIBRARY_PATH %s", lists[k]);
		elfsym__free_paths(paths, (size_t)n);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(elfsym, root_prefix_is_applied_and_returned)
{
	const char *root = "/proc/self/root";
	char exe[PATH_MAX], want[PATH_MAX + 32], **plain = NULL, **rooted = NULL;
	int n, m, i;

	self_exe(exe, sizeof(exe));
	n = elfsym__load_order(NULL, exe, NULL, MAX_OBJS, &plain);
	m = elfsym__load_order(root, exe, NULL, MAX_OBJS, &rooted);
	cr_assert_gt(n, 1);
	cr_assert_eq(m, n);
	for (i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "%s%s", root, plain[i]);
		cr_assert_str_eq(rooted[i], want);
	}
	elfsym__free_paths(plain, (size_t)n);
	elfsym__free_paths(rooted, (size_t)m);
}

Test(elfsym, load_order_errors_and_bounds)
{
	char exe[PATH_MAX], **paths = NULL;
	int n;

	self_exe(exe, sizeof(exe));
	cr_assert_eq(elfsym__load_order("/nonexistent-root-stray", exe, NULL, MAX_OBJS, &paths),
		     -ENOENT);
	cr_assert_null(paths);
	cr_assert_eq(elfsym__load_order(NULL, "/nonexistent/exe", NULL, MAX_OBJS, &paths),
		     -ENOENT);
	cr_assert_eq(elfsym__load_order(NULL, "/etc/passwd", NULL, MAX_OBJS, &paths), -ENOEXEC);
	n = elfsym__load_order(NULL, exe, NULL, 2, &paths);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(paths[0], exe);
	elfsym__free_paths(paths, (size_t)n);
	elfsym__free_paths(NULL, 0);
}

/* Debian's ldconfig is a static-pie: no DT_NEEDED, so just itself. */
Test(elfsym, static_executable_is_alone)
{
	const char *exe = "/sbin/ldconfig";
	char **paths = NULL;
	int n;

	if (access(exe, R_OK) != 0)
		cr_skip_test("%s not present", exe);
	n = elfsym__load_order(NULL, exe, NULL, MAX_OBJS, &paths);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(paths[0], exe);
	elfsym__free_paths(paths, (size_t)n);
}
