// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * perf map reader: the symbols sorted by start address for binary search.
 * A JIT that reuses code space appends a new line for the same range, so
 * where symbols overlap the later line wins.
 */
#include "perfmap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct perf_sym {
	uint64_t start, size;
	size_t order; /* line number: later lines win */
	char *name;
};

struct perfmap {
	struct perf_sym *syms;
	size_t n;
};

static int by_start_then_order(const void *a, const void *b)
{
	const struct perf_sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Parse one "START SIZE name" line; 0 or -EINVAL. */
static int parse_line(char *line, struct perf_sym *out)
{
	char *end, *name;

	out->start = strtoull(line, &end, 16);
	if (end == line || *end != ' ')
		return -EINVAL;
	line = end + 1;
	out->size = strtoull(line, &end, 16);
	if (end == line || *end != ' ' || out->size == 0)
		return -EINVAL;
	name = end + 1;
	name[strcspn(name, "\n")] = '\0';
	if (!*name)
		return -EINVAL;
	out->name = strdup(name);
	return out->name ? 0 : -ENOMEM;
}

struct perfmap *perfmap__read(const char *path, size_t max_symbols)
{
	struct perfmap *m = calloc(1, sizeof(*m));
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	int err = 0;

	if (!m || !f) {
		err = m ? -errno : -ENOMEM;
		goto fail;
	}
	m->syms = calloc(max_symbols + 1, sizeof(*m->syms));
	if (!m->syms) {
		err = -ENOMEM;
		goto fail;
	}
	while (m->n < max_symbols && getline(&line, &cap, f) > 0) {
		struct perf_sym *sym = &m->syms[m->n];

		if (parse_line(line, sym) == 0)
			sym->order = m->n++;
	}
	qsort(m->syms, m->n, sizeof(*m->syms), by_start_then_order);
	free(line);
	fclose(f);
	return m;
fail:
	if (f)
		fclose(f);
	perfmap__free(m);
	errno = -err;
	return NULL;
}

void perfmap__free(struct perfmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->syms[i].name);
	free(m->syms);
	free(m);
}

const char *perfmap__lookup(const struct perfmap *m, uint64_t addr, uint64_t *start)
{
	const struct perf_sym *best = NULL;
	size_t lo = 0, hi;

	if (!m)
		return NULL;
	/* first symbol starting after addr */
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->syms[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Among the symbols starting at or before addr that cover it, the
	 * latest line wins. Looking back is bounded: JIT stubs are small and
	 * few overlap. */
	for (size_t i = lo, steps = 0; i > 0 && steps < 64; i--, steps++) {
		const struct perf_sym *sym = &m->syms[i - 1];

		if (addr - sym->start < sym->size && (!best || sym->order > best->order))
			best = sym;
	}
	if (best && start)
		*start = best->start;
	return best ? best->name : NULL;
}

size_t perfmap__count(const struct perfmap *m)
{
	return m ? m->n : 0;
}
