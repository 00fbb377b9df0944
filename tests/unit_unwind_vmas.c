// SPDX-License-Identifier: GPL-2.0-or-later
/* unwind_vmas: seeding the stack walker's VMA cache from /proc/PID/maps. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "unwind_vmas.h"

#define GRANULE (1ull << STRAY_VMA_GRANULE_SHIFT)

Test(unwind_vmas, parses_executable_file_mappings)
{
	struct unwind_vma_mapping m;

	cr_assert(unwind_vmas__parse_line(
		"7f1c2a428000-7f1c2a5bd000 r-xp 00028000 fe:01 1835111    /usr/lib/x86_64-linux-gnu/libc.so.6", &m));
	cr_expect_eq(m.start, 0x7f1c2a428000ull);
	cr_expect_eq(m.end, 0x7f1c2a5bd000ull);
	cr_expect_eq(m.offset, 0x28000ull);
	cr_expect_eq(m.file.dev, (0xfeull << 20) | 1, "dev 0x%llx", (unsigned long long)m.file.dev);
	cr_expect_eq(m.file.ino, 1835111ull);
}

Test(unwind_vmas, anonymous_code_has_no_file_and_data_is_skipped)
{
	struct unwind_vma_mapping m;

	cr_assert(unwind_vmas__parse_line("7f0000000000-7f0000001000 r-xp 00000000 00:00 0", &m));
	cr_expect_eq(m.file.dev, 0);
	cr_expect_eq(m.file.ino, 0);
	cr_expect_not(unwind_vmas__parse_line(
		"7f1c2a5bd000-7f1c2a615000 r--p 001bd000 fe:01 1835111    /usr/lib/x86_64-linux-gnu/libc.so.6", &m));
	cr_expect_not(unwind_vmas__parse_line("garbage", &m));
}

Test(unwind_vmas, a_mapping_is_in_every_granule_it_covers_with_the_walkers_bias)
{
	struct unwind_vma_granule g[4] = {};
	struct stray_unwind_module mod = { .first = 100, .nrows = 50, .vaddr_delta = 0x1000 };
	/* from the last 4 KiB of granule 4 to 4 KiB into granule 6 */
	struct unwind_vma_mapping m = { .start = 5 * GRANULE - 4096, .end = 6 * GRANULE + 4096, .offset = 0x3000 };
	size_t n = 0;

	cr_assert(unwind_vmas__add(g, &n, 4, 42, &m, &mod));
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(g[i].key.tgid, 42);
		cr_expect_eq(g[i].key.granule, 4 + i);
		cr_expect_eq(g[i].entry.next, 1);
		cr_expect_eq(g[i].entry.vma[0].start, m.start);
		cr_expect_eq(g[i].entry.vma[0].end, m.end);
		/* module pc = address - bias = file offset + vaddr_delta */
		cr_expect_eq(m.start + 0x10 - g[i].entry.vma[0].bias, 0x3000 + 0x10 + 0x1000);
		cr_expect_eq(g[i].entry.vma[0].first, 100);
		cr_expect_eq(g[i].entry.vma[0].nrows, 50);
	}
}

Test(unwind_vmas, a_granule_keeps_its_first_ways_and_the_table_is_bounded)
{
	struct unwind_vma_granule g[2] = {};
	size_t n = 0;

	for (int i = 0; i < STRAY_VMA_CACHE_WAYS + 3; i++) {
		struct unwind_vma_mapping m = { .start = GRANULE + i * 8192, .end = GRANULE + i * 8192 + 4096 };

		cr_assert(unwind_vmas__add(g, &n, 2, 1, &m, NULL));
	}
	cr_assert_eq(n, 1);
	cr_expect_eq(g[0].entry.next, STRAY_VMA_CACHE_WAYS);
	cr_expect_eq(g[0].entry.vma[STRAY_VMA_CACHE_WAYS - 1].start, GRANULE + (STRAY_VMA_CACHE_WAYS - 1) * 8192);
	cr_expect_eq(g[0].entry.vma[0].nrows, 0, "no module: no rows");

	struct unwind_vma_mapping far = { .start = 9 * GRANULE, .end = 12 * GRANULE };

	cr_expect_not(unwind_vmas__add(g, &n, 2, 1, &far, NULL), "three granules do not fit in the one left");
}

/* The mapping of this process that holds addr, from its maps. */
static bool own_mapping(uint64_t addr, struct unwind_vma_mapping *out)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	bool found = false;

	cr_assert_not_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = unwind_vmas__parse_line(line, out) && addr >= out->start && addr < out->end;
	fclose(f);
	return found;
}

/* Against this process and real BPF maps (root): libc's code granule gets
 * libc's rows, as the walker would compute them from the VMA. */
Test(unwind_vmas, seeds_the_cache_from_a_live_process)
{
	uint64_t addr = (uint64_t)dlsym(RTLD_DEFAULT, "malloc");
	struct unwind_vma_mapping libc;
	struct stray_unwind_module mod = { .first = 7, .nrows = 1234, .vaddr_delta = 0 };
	struct stray_vma_cache_key key = { .tgid = getpid(), .granule = addr >> STRAY_VMA_GRANULE_SHIFT };
	struct stray_vma_cache_entry e;
	int modules, cache, written;
	bool found = false;

	cr_assert(own_mapping(addr, &libc), "malloc is in no executable mapping");
	modules = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(struct stray_unwind_module_key),
				 sizeof(struct stray_unwind_module), 16, NULL);
	if (modules < 0 && (errno == EPERM || errno == EACCES))
		cr_skip_test("needs root to create BPF maps");
	cr_assert_geq(modules, 0, "bpf_map_create: %s", strerror(errno));
	cache = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, NULL, sizeof(key), sizeof(e), 4096, NULL);
	cr_assert_geq(cache, 0, "bpf_map_create: %s", strerror(errno));
	cr_assert_eq(bpf_map_update_elem(modules, &libc.file, &mod, BPF_ANY), 0);

	written = unwind_vmas__seed(cache, modules, getpid());
	cr_assert_gt(written, 0, "seed: %d", written);
	cr_assert_eq(bpf_map_lookup_elem(cache, &key, &e), 0, "malloc's granule is not in the cache");
	for (uint32_t i = 0; i < e.next && i < STRAY_VMA_CACHE_WAYS; i++) {
		if (addr < e.vma[i].start || addr >= e.vma[i].end)
			continue;
		found = true;
		cr_expect_eq(e.vma[i].first, 7);
		cr_expect_eq(e.vma[i].nrows, 1234);
		cr_expect_eq(e.vma[i].bias, (int64_t)(libc.start - libc.offset));
	}
	cr_expect(found, "no way of the granule holds malloc");
	cr_expect_eq(unwind_vmas__seed(cache, modules, 999999999), -ENOENT, "a pid that cannot exist");
	close(cache);
	close(modules);
}
