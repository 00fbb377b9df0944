// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * symbolize_bench [DIR]: symbolization cost with the per-module cache.
 * Takes 100 shared libraries from DIR (default the multiarch library
 * directory), describes a process mapping their code, and symbolizes
 * 10,000 distinct stacks of 12 frames drawn from 200 call sites per
 * library, three times in one run:
 *   first     the first load: opening every module and its debug info
 *   again     the same stacks of the same process
 *   other     a second process mapping the same libraries elsewhere
 *             (modules and frames are shared by build-id)
 * Prints seconds and ratios; never pass/fail.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "symbolize.h"

#define NMODULES 100
#define SITES_PER_MODULE 200
#define NSTACKS 10000
#define DEPTH 12
/* pids that no process has (above the kernel's PID_MAX_LIMIT): their
 * objects are opened by path */
#define PID_A 0x40000001
#define PID_B 0x40000002

struct text {
	char path[512];
	uint64_t offset, vaddr, size; /* the executable PT_LOAD segment */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The executable segment of the ELF shared object at path; 0 or -1. */
static int text_segment(const char *path, struct text *t)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -1;
	Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
	GElf_Ehdr eh;
	size_t nph = 0;

	if (elf && gelf_getehdr(elf, &eh) && eh.e_type == ET_DYN && !elf_getphdrnum(elf, &nph)) {
		for (size_t i = 0; i < nph; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
			    ph.p_filesz > 65536) {
				*t = (struct text){ .offset = ph.p_offset, .vaddr = ph.p_vaddr,
						    .size = ph.p_filesz };
				snprintf(t->path, sizeof(t->path), "%s", path);
				ret = 0;
				break;
			}
		}
	}
	elf_end(elf);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Up to NMODULES libraries of dir with a sizeable text segment, each
 * file once (symlinks skipped). */
static size_t pick_libraries(const char *dir, struct text *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while (n < NMODULES && (e = readdir(d))) {
		char path[512];
		struct stat st;

		if (!strstr(e->d_name, ".so"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		n += text_segment(path, &out[n]) == 0;
	}
	closedir(d);
	return n;
}

/* A maps text placing each library's text at base + i * 256 MiB. */
static char *maps_text(const struct text *libs, size_t n, uint64_t base, uint64_t *starts)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	for (size_t i = 0; f && i < n; i++) {
		uint64_t page_off = libs[i].offset & ~0xfffull;
		uint64_t start = base + i * (256ull << 20);
		uint64_t end = start + ((libs[i].offset - page_off + libs[i].size + 0xfff) & ~0xfffull);

		starts[i] = start - page_off; /* where file offset 0 would be */
		fprintf(f, "%" PRIx64 "-%" PRIx64 " r-xp %08" PRIx64 " 00:00 %zu %s\n", start, end,
			page_off, i + 1, libs[i].path);
	}
	if (!f || fclose(f))
		exit(1);
	return text;
}

/* Return addresses: sites[m][k] is a file offset inside library m's text. */
static void pick_sites(const struct text *libs, size_t n, uint64_t sites[][SITES_PER_MODULE])
{
	for (size_t m = 0; m < n; m++)
		for (size_t k = 0; k < SITES_PER_MODULE; k++)
			sites[m][k] = libs[m].offset + 1 + (uint64_t)rand() % (libs[m].size - 1);
}

/* Symbolize every stack (as addresses relative to starts); frames found. */
static size_t symbolize_all(struct symbolizer *s, int pid, const uint64_t *starts,
			    uint64_t sites[][SITES_PER_MODULE], const uint32_t (*stacks)[DEPTH][2])
{
	struct report_frame frames[SYMBOLIZE_MAX_INLINE + 1];
	size_t found = 0;

	for (size_t i = 0; i < NSTACKS; i++) {
		for (size_t d = 0; d < DEPTH; d++) {
			uint32_t m = stacks[i][d][0], k = stacks[i][d][1];
			int nf = symbolizer__resolve_frames(s, pid, starts[m] + sites[m][k], frames,
							    SYMBOLIZE_MAX_INLINE + 1);

			found += nf > 0 && frames[0].function;
		}
	}
	return found;
}

int main(int argc, char **argv)
{
	static struct text libs[NMODULES];
	static uint64_t sites[NMODULES][SITES_PER_MODULE], starts_a[NMODULES], starts_b[NMODULES];
	static uint32_t stacks[NSTACKS][DEPTH][2];
	const char *dir = argc > 1 ? argv[1] : "/usr/lib/x86_64-linux-gnu";
	struct symbolizer *s;
	size_t n, found;
	char *text_a, *text_b;
	double t0, first, again, other;

	elf_version(EV_CURRENT);
	n = pick_libraries(dir, libs);
	if (n < 2) {
		fprintf(stderr, "symbolize_bench: too few libraries in %s\n", dir);
		return 1;
	}
	srand(42);
	pick_sites(libs, n, sites);
	/* distinct with overwhelming probability: 12 draws from 20,000 sites */
	for (size_t i = 0; i < NSTACKS; i++)
		for (size_t d = 0; d < DEPTH; d++) {
			stacks[i][d][0] = rand() % n;
			stacks[i][d][1] = rand() % SITES_PER_MODULE;
		}
	text_a = maps_text(libs, n, 0x7f0000000000ull, starts_a);
	text_b = maps_text(libs, n, 0x7e0000000000ull, starts_b);
	s = symbolizer__new();
	if (!s)
		return 1;

	t0 = now_s();
	symbolizer__set_maps(s, PID_A, text_a, NULL);
	found = symbolize_all(s, PID_A, starts_a, sites, (const uint32_t (*)[DEPTH][2])stacks);
	first = now_s() - t0;
	t0 = now_s();
	symbolize_all(s, PID_A, starts_a, sites, (const uint32_t (*)[DEPTH][2])stacks);
	again = now_s() - t0;
	t0 = now_s();
	symbolizer__set_maps(s, PID_B, text_b, NULL);
	symbolize_all(s, PID_B, starts_b, sites, (const uint32_t (*)[DEPTH][2])stacks);
	other = now_s() - t0;

	printf("symbolize: %zu modules, %d stacks x %d frames (%zu of %d frames named)\n", n,
	       NSTACKS, DEPTH, found, NSTACKS * DEPTH);
	printf("symbolize: first load %.3f s, again %.4f s (%.0fx faster), "
	       "another process with the same modules %.4f s (%.0fx faster)\n",
	       first, again, first / again, other, first / other);
	symbolizer__free(s);
	free(text_a);
	free(text_b);
	return 0;
}
