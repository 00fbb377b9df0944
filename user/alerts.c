// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Alerts: edge-triggered conditions. A condition (kind, pid, key) is raised
 * the first drain it is active and stays quiet while it persists, so a leak
 * that lasts an hour produces one line, not 3600. Raised alerts are kept
 * (bounded) for the report and appended to a JSON-lines file.
 *
 * The condition table only holds raised conditions: a cleared condition is
 * indistinguishable from one never seen, so clearing removes its entry.
 * That makes "evict cleared ones first" free and the bound applies only to
 * conditions raised at the same time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "alerts.h"
#include "json_util.h"

/* Raised conditions tracked at once; beyond this new ones are counted.
 * Overridable only to exercise wrap-around in the table with a tiny one. */
#ifndef ALERTS_MAX_CONDS
#define ALERTS_MAX_CONDS 4096
#endif
/* Open addressing at load <= 1/2 keeps linear probes short. */
#define ALERTS_SLOTS (2 * ALERTS_MAX_CONDS)

struct cond {
	uint64_t key;
	int pid;
	uint8_t kind;
	bool used;
};

struct alerts {
	int fd;                 /* -1: no file */
	bool is_stdout;         /* not ours to close or fsync */
	struct cond *slots;     /* ALERTS_SLOTS entries, linear probing */
	size_t nconds;
	uint64_t untracked;     /* active conditions the full table could not hold */
	struct alert *kept;
	size_t nkept, cap_kept, max_kept;
	uint64_t dropped;       /* raised but beyond max_kept */
};

static const char *const kind_names[ALERT_KIND_NR] = {
	[ALERT_HEAP_GROWTH] = "heap_growth",
	[ALERT_HEAP_WARN] = "heap_warn",
	[ALERT_HEAP_CRITICAL] = "heap_critical",
	[ALERT_OOM_PROJECTION] = "oom_projection",
	[ALERT_SITE_GROWTH] = "site_growth",
};

const char *alert_kind__name(enum alert_kind k)
{
	if ((unsigned)k >= ALERT_KIND_NR)
		return "unknown";
	return kind_names[k];
}

/* ---- condition table ---- */

static size_t cond_hash(enum alert_kind kind, int pid, uint64_t key)
{
	/* splitmix64 finalizer: stack hashes are already random, but pids and
	 * key 0 are not, and they must spread over the slots too. */
	uint64_t h = key ^ ((uint64_t)(uint32_t)pid << 32) ^ ((uint64_t)kind << 8);

	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return (size_t)(h & (ALERTS_SLOTS - 1));
}

/* The slot holding (kind, pid, key), or the empty slot where it would go. */
static size_t cond_find(const struct alerts *a, enum alert_kind kind, int pid, uint64_t key)
{
	size_t i = cond_hash(kind, pid, key);

	/* Terminates: the table is never more than half full. */
	while (a->slots[i].used) {
		const struct cond *c = &a->slots[i];

		if (c->kind == kind && c->pid == pid && c->key == key)
			break;
		i = (i + 1) & (ALERTS_SLOTS - 1);
	}
	return i;
}

/*
 * Remove slot i by shifting later members of its probe run back, so lookups
 * never need tombstones (which would fill the table over a long run).
 */
static void cond_remove(struct alerts *a, size_t i)
{
	size_t j = i, home;

	for (;;) {
		j = (j + 1) & (ALERTS_SLOTS - 1);
		if (!a->slots[j].used)
			break;
		home = cond_hash(a->slots[j].kind, a->slots[j].pid, a->slots[j].key);
		/* Entry j may move to i only if i lies on its probe path, i.e.
		 * cyclically within [home, j). */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			a->slots[i] = a->slots[j];
			i = j;
		}
	}
	a->slots[i].used = false;
	a->nconds--;
}

/* ---- kept alerts ---- */

/* Copy al into the kept list; frames get their own array (the strings in
 * them belong to the caller's symbolizer, which outlives the report). */
static int keep(struct alerts *a, const struct alert *al)
{
	struct alert *dst;
	struct report_frame *frames = NULL;

	if (a->nkept >= a->max_kept) {
		a->dropped++;
		return 0;
	}
	if (a->nkept == a->cap_kept) {
		size_t cap = a->cap_kept ? a->cap_kept * 2 : 16;
		struct alert *grown;

		if (cap > a->max_kept)
			cap = a->max_kept;
		grown = realloc(a->kept, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		a->kept = grown;
		a->cap_kept = cap;
	}
	if (al->frames && al->nframes) {
		frames = malloc(al->nframes * sizeof(*frames));
		if (!frames)
			return -ENOMEM;
		memcpy(frames, al->frames, al->nframes * sizeof(*frames));
	}
	dst = &a->kept[a->nkept++];
	*dst = *al;
	/* The caller's message may fill the buffer without a terminator. */
	dst->message[sizeof(dst->message) - 1] = '\0';
	dst->frames = frames;
	if (!frames)
		dst->nframes = 0;
	return 0;
}

/* ---- JSON ---- */

struct json_object *alert__to_json(const struct alert *al)
{
	struct json_object *o;

	if (!al)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	if (json__add_float(o, "t_s", al->t_s) ||
	    json__add(o, "kind", json_object_new_string(alert_kind__name(al->kind))) ||
	    json__add(o, "severity", json_object_new_string(al->critical ? "critical" : "warning")) ||
	    json__add(o, "pid", json_object_new_int(al->pid)) ||
	    json__add(o, "message", json_object_new_string_len(al->message,
			    (int)strnlen(al->message, sizeof(al->message)))) ||
	    json__add_float(o, "value", al->value) ||
	    json__add_float(o, "threshold", al->threshold) ||
	    (al->kind == ALERT_SITE_GROWTH && json__add(o, "stack", json__stack(al->frames, al->nframes)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* ---- the alerts file ---- */

/*
 * Append al as one line. The whole line goes to a single write(2) on an
 * O_APPEND descriptor, so a reader tailing the file never sees half an
 * object and concurrent appenders never interleave inside a line; fsync
 * makes a raised alert survive a crash that follows it (the point of
 * alerting is often exactly that crash).
 */
static int write_line(struct alerts *a, const struct alert *al)
{
	struct json_object *o;
	const char *s;
	char *line;
	size_t len, off = 0;
	ssize_t n;
	int err = 0;

	if (a->fd < 0)
		return 0;
	o = alert__to_json(al);
	if (!o)
		return -ENOMEM;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	len = s ? strlen(s) : 0;
	line = s ? malloc(len + 1) : NULL;
	if (!line) {
		json_object_put(o);
		return -ENOMEM;
	}
	memcpy(line, s, len);
	line[len++] = '\n';
	json_object_put(o);

	/* One write normally takes it all; a short write (disk full, a signal
	 * on a pipe) is finished rather than leaving a torn line behind. */
	while (off < len) {
		n = write(a->fd, line + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		off += (size_t)n;
	}
	free(line);
	/* Pipes and terminals cannot be synced (EINVAL); that is fine. */
	if (!err && !a->is_stdout && fsync(a->fd) && errno != EINVAL)
		err = -errno;
	return err;
}

/* ---- public ---- */

struct alerts *alerts__new(const char *path, size_t max_kept)
{
	struct alerts *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return NULL;
	a->fd = -1;
	a->max_kept = max_kept;
	a->slots = calloc(ALERTS_SLOTS, sizeof(*a->slots));
	if (!a->slots)
		goto fail;
	if (path && !strcmp(path, "-")) {
		a->fd = STDOUT_FILENO;
		a->is_stdout = true;
	} else if (path) {
		a->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (a->fd < 0)
			goto fail;
	}
	return a;
fail:
	err = errno;
	alerts__free(a);
	errno = err;
	return NULL;
}

void alerts__free(struct alerts *a)
{
	size_t i;

	if (!a)
		return;
	if (a->fd >= 0 && !a->is_stdout)
		close(a->fd);
	for (i = 0; i < a->nkept; i++)
		free((void *)a->kept[i].frames);
	free(a->kept);
	free(a->slots);
	free(a);
}

/*
 * A condition is marked raised before its line is written: if the write
 * fails, the alert is still kept for the report and the caller hears of the
 * error once, instead of a broken file being retried every drain.
 */
int alerts__update(struct alerts *a, const struct alert *candidate, uint64_t key, bool active)
{
	struct cond *c;
	size_t i;
	int err;

	if (!a || !candidate || (unsigned)candidate->kind >= ALERT_KIND_NR)
		return -EINVAL;
	i = cond_find(a, candidate->kind, candidate->pid, key);
	c = &a->slots[i];
	if (!active) {
		if (c->used)
			cond_remove(a, i);
		return 0;
	}
	if (c->used)
		return 0; /* raised already and still going on */
	if (a->nconds >= ALERTS_MAX_CONDS) {
		/* Raising without remembering would repeat it every drain. */
		a->untracked++;
		return 0;
	}
	*c = (struct cond){ .key = key, .pid = candidate->pid, .kind = candidate->kind, .used = true };
	a->nconds++;

	err = keep(a, candidate);
	if (err) {
		/* Out of memory: forget it, so a later drain can try again. */
		cond_remove(a, i);
		return err;
	}
	err = write_line(a, candidate);
	return err ? err : 1;
}

const struct alert *alerts__list(const struct alerts *a, size_t *n)
{
	if (n)
		*n = a ? a->nkept : 0;
	return a ? a->kept : NULL;
}

uint64_t alerts__dropped(const struct alerts *a)
{
	return a ? a->dropped : 0;
}

uint64_t alerts__untracked(const struct alerts *a)
{
	return a ? a->untracked : 0;
}
