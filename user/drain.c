// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "drain.h"

#define BATCH 4096u
#define NO_RECORD UINT32_MAX

struct drain {
	struct loader *loader;
	/* record table: dense array plus an open-addressing index into it */
	struct site_record *records;
	size_t nrecords, max_records;
	uint32_t *index;
	size_t index_mask;
	uint64_t outstanding_bytes, outstanding_allocations;
	/* the part of the totals that comes from frozen (exited) records */
	uint64_t frozen_bytes, frozen_allocations;
	/* the same for anonymous mmap regions, kept apart */
	uint64_t mmap_bytes, mmap_regions, frozen_mmap_bytes, frozen_mmap_regions;
	uint64_t counters[DRAIN_CNT_NR];
	/* --sample: mean bytes between samples (0: exact), and the heap
	 * totals as estimates, all and from frozen records */
	uint64_t sample_bytes;
	struct sample_estimate sampled, frozen_sampled;
	/* scratch buffers for batch reads, sized for the larger value */
	void *keys, *values;
};

struct drain *drain__new(struct loader *l, size_t max_records)
{
	struct drain *d = calloc(1, sizeof(*d));
	size_t index_size = 1;

	if (!d)
		return NULL;
	while (index_size < 2 * max_records)
		index_size <<= 1;
	d->loader = l;
	d->sample_bytes = loader__sample_bytes(l);
	d->max_records = max_records;
	d->index_mask = index_size - 1;
	d->records = calloc(max_records, sizeof(*d->records));
	d->index = malloc(index_size * sizeof(*d->index));
	d->keys = malloc(BATCH * sizeof(struct stray_site_key));
	d->values = malloc(BATCH * sizeof(struct stray_site));
	if (!d->records || !d->index || !d->keys || !d->values) {
		drain__free(d);
		errno = ENOMEM;
		return NULL;
	}
	memset(d->index, 0xff, index_size * sizeof(*d->index));
	return d;
}

void drain__free(struct drain *d)
{
	if (!d)
		return;
	free(d->records);
	free(d->index);
	free(d->keys);
	free(d->values);
	free(d);
}

int drain__kernel_counters(struct drain *d, uint64_t out[STRAY_CNT_NR])
{
	int ncpus = libbpf_num_possible_cpus();
	struct stray_counters *per_cpu;
	__u32 zero = 0;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	per_cpu = calloc(ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(loader__counters_fd(d->loader), &zero, per_cpu)) {
		free(per_cpu);
		return -errno;
	}
	memset(out, 0, sizeof(uint64_t) * STRAY_CNT_NR);
	for (int cpu = 0; cpu < ncpus; cpu++)
		for (int c = 0; c < STRAY_CNT_NR; c++)
			out[c] += per_cpu[cpu].v[c];
	free(per_cpu);
	return 0;
}

const uint64_t *drain__counters(const struct drain *d)
{
	return d->counters;
}

/*
 * Visit every entry of a hash map in batches. visit() returns 0 to go on.
 * Returns 0 or -errno.
 */
typedef int (*visit_fn)(struct drain *d, const void *key, const void *value, void *ctx);

static int for_each_entry(struct drain *d, int fd, size_t key_size, size_t value_size,
			  visit_fn visit, void *ctx)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 token = 0, count;
	bool first = true, last = false;
	int err;

	while (!last) {
		count = BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : &token, &token, d->keys, d->values,
					   &count, &opts);
		if (err && errno != ENOENT)
			return -errno;
		last = err != 0; /* ENOENT: this was the final batch */
		first = false;
		for (__u32 i = 0; i < count; i++) {
			err = visit(d, (char *)d->keys + i * key_size, (char *)d->values + i * value_size, ctx);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Keys to delete once a batch walk is over (deleting during it would
 * disturb the walk). */
struct doomed {
	void *keys;
	size_t n, cap, key_size;
};

static int doom(struct doomed *dm, const void *key)
{
	if (dm->n == dm->cap) {
		size_t cap = dm->cap ? dm->cap * 2 : 1024;
		void *grown = realloc(dm->keys, cap * dm->key_size);

		if (!grown)
			return -ENOMEM;
		dm->keys = grown;
		dm->cap = cap;
	}
	memcpy((char *)dm->keys + dm->n++ * dm->key_size, key, dm->key_size);
	return 0;
}

static const void *doomed_key(const struct doomed *dm, size_t i)
{
	return (const char *)dm->keys + i * dm->key_size;
}

static void forget_doomed(struct doomed *dm)
{
	free(dm->keys);
	dm->keys = NULL;
	dm->n = dm->cap = 0;
}

/* Returns how many were still there to delete. */
static uint64_t delete_doomed(int fd, struct doomed *dm)
{
	uint64_t deleted = 0;

	for (size_t i = 0; i < dm->n; i++)
		deleted += bpf_map_delete_elem(fd, doomed_key(dm, i)) == 0;
	forget_doomed(dm);
	return deleted;
}

/* A block of the block table as the visitors see it: its key first, as
 * for a block of the allocs map, then where it is. */
struct slot_ref {
	struct stray_alloc_key key;
	uint64_t index;
};

/*
 * Visit every block of the block table (bpf/blocks.bpf.h). A slot whose
 * tgid is 0 is free or changing hands; a slot that changed while it was
 * copied is skipped, as a walk of the hash map misses an entry that comes
 * and goes while it runs.
 */
static int for_each_slot(struct drain *d, visit_fn visit, void *ctx)
{
	size_t n;
	struct stray_block_slot *slots = loader__block_slots(d->loader, &n);
	struct stray_alloc a;
	struct slot_ref ref;
	int err;

	for (size_t i = 0; i < n; i++) {
		struct stray_block_slot *s = &slots[i];
		uint64_t tgid = __atomic_load_n(&s->tgid, __ATOMIC_ACQUIRE);

		if (!tgid)
			continue;
		ref = (struct slot_ref){ .key = { .tgid = tgid, .addr = s->addr }, .index = i };
		memcpy(&a, &s->a, sizeof(a));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->tgid, __ATOMIC_ACQUIRE) != tgid ||
		    __atomic_load_n(&s->addr, __ATOMIC_RELAXED) != ref.key.addr)
			continue;
		err = visit(d, &ref, &a, ctx);
		if (err)
			return err;
	}
	return 0;
}

/* Free the slots of doomed blocks as the BPF side takes one: clearing tgid
 * makes the slot ours (unless a free took it first), clearing addr frees
 * it. */
static void forget_doomed_slots(struct drain *d, struct doomed *dm)
{
	size_t n;
	struct stray_block_slot *slots = loader__block_slots(d->loader, &n);

	for (size_t i = 0; i < dm->n; i++) {
		const struct slot_ref *ref = doomed_key(dm, i);
		struct stray_block_slot *s = &slots[ref->index];
		uint64_t tgid = ref->key.tgid;

		if (__atomic_load_n(&s->addr, __ATOMIC_ACQUIRE) != ref->key.addr)
			continue;
		if (__atomic_compare_exchange_n(&s->tgid, &tgid, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			__atomic_store_n(&s->addr, 0, __ATOMIC_RELEASE);
	}
	forget_doomed(dm);
}

struct sites_pass {
	int pid;
	size_t nsites;
	uint64_t tracked;
	struct doomed idle; /* sites with nothing outstanding */
	site_view_fn visit;
	void *ctx;
};

/* A kernel sum of count blocks totalling bytes, as an estimate when they
 * are samples (--sample, heap sites); as it is otherwise. */
static void estimate_sum(const struct drain *d, uint32_t kind, int64_t bytes, int64_t count,
			 int64_t *est_bytes, int64_t *est_count)
{
	double b, o;

	if (!d->sample_bytes || kind != STRAY_KIND_HEAP || bytes <= 0 || count <= 0) {
		*est_bytes = bytes;
		*est_count = count;
		return;
	}
	sampling__estimate_aggregate(d->sample_bytes, bytes, count, &b, &o);
	*est_bytes = llround(b);
	*est_count = llround(o);
}

/* The counter slot that site k would hold (stray.h), or NULL. */
static struct stray_site_slot *site_slot_of(const struct drain *d, const struct stray_site_key *k, uint64_t *tag)
{
	uint32_t bits;
	struct stray_site_slot *slots = loader__site_slots(d->loader, &bits);

	*tag = stray_site_tag(k->tgid, k->stack_hash);
	return slots ? &slots[stray_site_slot_index(*tag, bits)] : NULL;
}

/* Site k's counters: its map value's (s) plus its slot's, if it holds one. */
static struct stray_site_counts site_totals(const struct drain *d, const struct stray_site_key *k,
					    const struct stray_site *s)
{
	struct stray_site_counts c = s->counts;
	uint64_t tag;
	struct stray_site_slot *slot = site_slot_of(d, k, &tag);

	if (!slot || __atomic_load_n(&slot->tag, __ATOMIC_ACQUIRE) != tag)
		return c;
	c.live_bytes += __atomic_load_n(&slot->counts.live_bytes, __ATOMIC_RELAXED);
	c.live_count += __atomic_load_n(&slot->counts.live_count, __ATOMIC_RELAXED);
	c.alloc_bytes += __atomic_load_n(&slot->counts.alloc_bytes, __ATOMIC_RELAXED);
	c.alloc_count += __atomic_load_n(&slot->counts.alloc_count, __ATOMIC_RELAXED);
	return c;
}

/* Free the slots of sites about to be deleted, zeroed for their next
 * owner (which zeroes them again: an add that raced with this one may
 * land after it). */
static void release_site_slots(const struct drain *d, const struct doomed *dm)
{
	for (size_t i = 0; i < dm->n; i++) {
		const struct stray_site_key *k = doomed_key(dm, i);
		uint64_t tag;
		struct stray_site_slot *slot = site_slot_of(d, k, &tag);

		if (!slot || __atomic_load_n(&slot->tag, __ATOMIC_ACQUIRE) != tag)
			continue;
		memset(&slot->counts, 0, sizeof(slot->counts));
		__atomic_store_n(&slot->tag, 0, __ATOMIC_RELEASE);
	}
}

/* What a site released: bytes, and blocks (region pieces count each). */
static void site_freed(const struct stray_site_counts *c, uint64_t extra_pieces, int64_t *bytes,
		       int64_t *count)
{
	*bytes = (int64_t)c->alloc_bytes - c->live_bytes;
	*count = (int64_t)(c->alloc_count + extra_pieces) - c->live_count;
}

static int visit_site(struct drain *d, const void *key, const void *value, void *ctx)
{
	const struct stray_site_key *k = key;
	const struct stray_site *s = value;
	struct stray_site_counts c = site_totals(d, k, s);
	struct sites_pass *p = ctx;

	if (p->pid < 0 || (__u32)p->pid == k->tgid) {
		struct site_view v = { .pid = k->tgid, .stack_hash = k->stack_hash };
		int64_t alloc_bytes, free_bytes, unused, freed_bytes, freed;

		site_freed(&c, s->extra_pieces, &freed_bytes, &freed);
		estimate_sum(d, s->kind, c.live_bytes, c.live_count, &v.live_bytes, &v.live_count);
		estimate_sum(d, s->kind, c.alloc_bytes, c.alloc_count, &alloc_bytes, &unused);
		estimate_sum(d, s->kind, freed_bytes, freed, &free_bytes, &unused);
		v.alloc_bytes = alloc_bytes;
		v.free_bytes = free_bytes;

		p->tracked += v.live_bytes > 0 ? v.live_bytes : 0;
		if (p->visit)
			p->visit(&v, p->ctx);
	}
	p->nsites++;
	return c.live_count <= 0 ? doom(&p->idle, key) : 0;
}

int drain__sites_pass(struct drain *d, int pid, uint64_t *tracked_bytes, site_view_fn visit,
		      void *ctx)
{
	struct sites_pass p = {
		.pid = pid, .idle.key_size = sizeof(struct stray_site_key), .visit = visit, .ctx = ctx,
	};
	int fd = loader__sites_fd(d->loader);
	int err;

	err = for_each_entry(d, fd, sizeof(struct stray_site_key), sizeof(struct stray_site),
			     visit_site, &p);
	/* Reclaim only under pressure: a reclaimed site loses its totals. */
	if (err || p.nsites * 4 <= (size_t)loader__max_sites(d->loader) * 3)
		p.idle.n = 0;
	d->counters[DRAIN_CNT_SITES_RECLAIMED] += p.idle.n;
	release_site_slots(d, &p.idle);
	delete_doomed(fd, &p.idle);
	*tracked_bytes = p.tracked;
	return err;
}

int drain__site_stack(struct drain *d, int pid, uint64_t stack_hash, uint64_t *ips)
{
	struct stray_site_key key = { .tgid = pid, .stack_hash = stack_hash };
	struct stray_site site;
	uint32_t depth;

	if (bpf_map_lookup_elem(loader__sites_fd(d->loader), &key, &site))
		return -ENOENT;
	depth = site.depth < STRAY_MAX_STACK_DEPTH ? site.depth : STRAY_MAX_STACK_DEPTH;
	memcpy(ips, site.ips, depth * sizeof(*ips));
	return depth;
}

static size_t slot_of(const struct drain *d, int pid, uint64_t hash)
{
	uint64_t h = (hash ^ ((uint64_t)pid * 0x9e3779b97f4a7c15ULL)) * 0xff51afd7ed558ccdULL;

	return (h >> 17) & d->index_mask;
}

const struct site_record *drain__find_record(const struct drain *d, int pid, uint64_t hash)
{
	for (size_t i = slot_of(d, pid, hash);; i = (i + 1) & d->index_mask) {
		uint32_t r = d->index[i];

		if (r == NO_RECORD)
			return NULL;
		if (d->records[r].live.pid == pid && d->records[r].live.stack_hash == hash)
			return &d->records[r];
	}
}

/* Copy the site's stack and totals from the kernel into a new record. */
static void fill_from_site(struct drain *d, struct site_record *rec)
{
	struct stray_site_key key = { .tgid = rec->live.pid, .stack_hash = rec->live.stack_hash };
	struct stray_site own;
	int64_t total_bytes, total_allocations, free_bytes, frees, freed_bytes, freed;

	if (bpf_map_lookup_elem(loader__sites_fd(d->loader), &key, &own))
		return; /* depth stays 0: stack lost */
	rec->depth = own.depth < STRAY_MAX_STACK_DEPTH ? own.depth : STRAY_MAX_STACK_DEPTH;
	memcpy(rec->ips, own.ips, rec->depth * sizeof(rec->ips[0]));
	own.counts = site_totals(d, &key, &own);
	estimate_sum(d, rec->kind, own.counts.alloc_bytes, own.counts.alloc_count, &total_bytes, &total_allocations);
	site_freed(&own.counts, own.extra_pieces, &freed_bytes, &freed);
	estimate_sum(d, rec->kind, freed_bytes, freed, &free_bytes, &frees);
	rec->live.total_bytes = total_bytes;
	rec->live.total_allocations = total_allocations;
	rec->live.frees = frees;
}

static struct site_record *record_for(struct drain *d, int pid, uint64_t hash, uint32_t kind)
{
	struct site_record *rec;
	size_t i;

	for (i = slot_of(d, pid, hash); d->index[i] != NO_RECORD; i = (i + 1) & d->index_mask) {
		rec = &d->records[d->index[i]];
		if (rec->live.pid == pid && rec->live.stack_hash == hash)
			return rec;
	}
	if (d->nrecords == d->max_records) {
		d->counters[DRAIN_CNT_REPORT_TABLE_FULL]++;
		return NULL;
	}
	rec = &d->records[d->nrecords];
	memset(rec, 0, sizeof(*rec));
	rec->live.pid = pid;
	rec->live.stack_hash = hash;
	rec->live.oldest_ts_ns = UINT64_MAX;
	rec->kind = kind;
	fill_from_site(d, rec);
	if (!rec->depth)
		d->counters[DRAIN_CNT_STACK_LOST]++;
	d->index[i] = d->nrecords++;
	return rec;
}

struct harvest {
	int pid;
	uint64_t min_age_ns, now_ns;
	bool record; /* fold into totals and records (false: just delete) */
	bool remove;
	uint64_t before_ns; /* with !record: only blocks older than this (0: all) */
	bool in_table; /* visiting the block table, not the allocs map */
	/* blocks to forget: heap blocks and regions of the allocs map (the
	 * BPF side counts the heap blocks there), blocks of the table; sites */
	struct doomed heap, regions, slots, blocks;
};

static int doom_alloc(struct harvest *h, const void *key, const struct stray_alloc *a)
{
	if (h->in_table)
		return doom(&h->slots, key);
	return doom(a->kind == STRAY_KIND_HEAP ? &h->heap : &h->regions, key);
}

static void add_to_record(const struct drain *d, struct site_record *rec, const struct stray_alloc *a)
{
	if (d->sample_bytes && a->kind == STRAY_KIND_HEAP) {
		sampling__add(&rec->sampled, d->sample_bytes, a->size);
		rec->live.bytes = llround(rec->sampled.bytes);
		rec->live.allocations = llround(rec->sampled.objects);
		return;
	}
	rec->live.bytes += a->size;
	rec->live.allocations++;
}

static int visit_alloc(struct drain *d, const void *key, const void *value, void *ctx)
{
	const struct stray_alloc_key *k = key;
	const struct stray_alloc *a = value;
	struct harvest *h = ctx;
	struct site_record *rec;

	if (h->pid >= 0 && (__u32)h->pid != k->tgid)
		return 0;
	if (!h->record)
		return h->before_ns && a->ts_ns >= h->before_ns ? 0 : doom_alloc(h, key, a);
	if (a->kind == STRAY_KIND_MMAP) {
		d->mmap_bytes += a->size;
		d->mmap_regions++;
		if (h->remove) {
			d->frozen_mmap_bytes += a->size;
			d->frozen_mmap_regions++;
		}
	} else if (d->sample_bytes) {
		sampling__add(&d->sampled, d->sample_bytes, a->size);
		if (h->remove)
			sampling__add(&d->frozen_sampled, d->sample_bytes, a->size);
	} else {
		d->outstanding_bytes += a->size;
		d->outstanding_allocations++;
		if (h->remove) {
			d->frozen_bytes += a->size;
			d->frozen_allocations++;
		}
	}
	if (h->now_ns - a->ts_ns >= h->min_age_ns || a->ts_ns > h->now_ns) {
		rec = record_for(d, k->tgid, a->stack_hash, a->kind);
		if (rec && h->remove)
			rec->frozen = true;
		if (rec) {
			add_to_record(d, rec, a);
			if (a->ts_ns < rec->live.oldest_ts_ns)
				rec->live.oldest_ts_ns = a->ts_ns;
		}
	}
	return h->remove ? doom_alloc(h, key, a) : 0;
}

static int visit_site_of_pid(struct drain *d, const void *key, const void *value, void *ctx)
{
	const struct stray_site_key *k = key;
	struct harvest *h = ctx;

	(void)d;
	(void)value;
	return (__u32)h->pid == k->tgid ? doom(&h->blocks, key) : 0;
}

static int harvest(struct drain *d, struct harvest *h)
{
	int afd = loader__allocs_fd(d->loader), sfd = loader__sites_fd(d->loader);
	int err;

	h->heap.key_size = h->regions.key_size = sizeof(struct stray_alloc_key);
	h->slots.key_size = sizeof(struct slot_ref);
	err = for_each_entry(d, afd, sizeof(struct stray_alloc_key), sizeof(struct stray_alloc),
			     visit_alloc, h);
	h->in_table = true;
	err = err ?: for_each_slot(d, visit_alloc, h);
	__atomic_fetch_sub(loader__heap_in_allocs(d->loader), delete_doomed(afd, &h->heap), __ATOMIC_RELAXED);
	delete_doomed(afd, &h->regions);
	forget_doomed_slots(d, &h->slots);
	if (err || !h->remove || h->pid < 0)
		return err;
	h->blocks.key_size = sizeof(struct stray_site_key);
	err = for_each_entry(d, sfd, sizeof(struct stray_site_key), sizeof(struct stray_site),
			     visit_site_of_pid, h);
	release_site_slots(d, &h->blocks);
	delete_doomed(sfd, &h->blocks);
	return err;
}

int drain__harvest(struct drain *d, int pid, uint64_t min_age_ns, uint64_t now_ns, bool remove)
{
	struct harvest h = {
		.pid = pid, .min_age_ns = min_age_ns, .now_ns = now_ns, .record = true, .remove = remove,
	};

	return harvest(d, &h);
}

int drain__forget(struct drain *d, int pid)
{
	struct harvest h = { .pid = pid, .remove = true };

	return pid < 0 ? -EINVAL : harvest(d, &h);
}

int drain__forget_before(struct drain *d, int pid, uint64_t before_ns)
{
	struct harvest h = { .pid = pid, .before_ns = before_ns };

	return pid < 0 ? -EINVAL : harvest(d, &h);
}

static void index_insert(struct drain *d, uint32_t r)
{
	const struct site_live *l = &d->records[r].live;
	size_t i = slot_of(d, l->pid, l->stack_hash);

	while (d->index[i] != NO_RECORD)
		i = (i + 1) & d->index_mask;
	d->index[i] = r;
}

void drain__begin_snapshot(struct drain *d)
{
	size_t kept = 0;

	for (size_t r = 0; r < d->nrecords; r++)
		if (d->records[r].frozen)
			d->records[kept++] = d->records[r];
	d->nrecords = kept;
	memset(d->index, 0xff, (d->index_mask + 1) * sizeof(*d->index));
	for (size_t r = 0; r < kept; r++)
		index_insert(d, r);
	d->outstanding_bytes = d->frozen_bytes;
	d->outstanding_allocations = d->frozen_allocations;
	d->mmap_bytes = d->frozen_mmap_bytes;
	d->mmap_regions = d->frozen_mmap_regions;
	d->sampled = d->frozen_sampled;
}

void drain__outstanding_mmap(const struct drain *d, uint64_t *bytes, uint64_t *regions)
{
	*bytes = d->mmap_bytes;
	*regions = d->mmap_regions;
}

void drain__outstanding(const struct drain *d, uint64_t *bytes, uint64_t *allocations)
{
	*bytes = d->sample_bytes ? (uint64_t)llround(d->sampled.bytes) : d->outstanding_bytes;
	*allocations = d->sample_bytes ? (uint64_t)llround(d->sampled.objects) : d->outstanding_allocations;
}

const struct site_record *drain__records(const struct drain *d, size_t *n)
{
	*n = d->nrecords;
	return d->records;
}
