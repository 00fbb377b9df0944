// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Timer leaks, user side: skeleton lifecycle of bpf/timers.bpf.c, per-target
 * uprobes (libc's timer wrappers, entry and return; libuv's timer API),
 * reconciliation of timerfds against /proc/PID/fdinfo, freezing what a
 * process held when its window ended, and grouping for the report.
 *
 * Window rules (see also bpf/timers.bpf.c):
 * - exit: timers__on_exit freezes every timer and interval timer the
 *   process still holds (call it at the ptrace exit stop, fds still open)
 *   and removes its kernel state. The kernel never counts the owner's own
 *   exit as a release (it flags the entry STRAY_TIMER_F_ENDED), so a late
 *   on_exit (attach mode, no exit stop) still finds everything.
 * - exec: like memory (drain__forget), what the old image held is gone,
 *   not leaked and not released: timers__on_exec drops the old image's
 *   timers, including timerfds that survive exec without close-on-exec
 *   (their creation stacks belong to an image whose maps are gone).
 *   Interval timers survive exec and are kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "elfsym.h"
#include "procfs.h"
#include "loader.h"
#include "timers.h"
#include "timers.skel.h"

_Static_assert(sizeof(struct stray_timer_key) == 16, "ABI: stray_timer_key");
_Static_assert(sizeof(struct stray_timer) == 64, "ABI: stray_timer");
_Static_assert(sizeof(struct stray_timer_site) == 16 + 8 * STRAY_MAX_STACK_DEPTH, "ABI: stray_timer_site");
_Static_assert(sizeof(struct stray_timer_owner) == 8, "ABI: stray_timer_owner");
_Static_assert(sizeof(struct stray_timer_pending) == 48, "ABI: stray_timer_pending");
_Static_assert(sizeof(struct stray_itimers) == 72, "ABI: stray_itimers");
_Static_assert(sizeof(struct stray_timer_fdrec) == 16, "ABI: stray_timer_fdrec");
_Static_assert(sizeof(struct stray_timer_counters) == 8 * STRAY_TCNT_NR, "ABI: stray_timer_counters");

#define NS_PER_S 1000000000ll
/* A site younger than this may belong to a timer being created right now
 * (the site is stored before its timer): never reclaim it. */
#define SITE_GRACE_NS NS_PER_S
#define MAX_OBJECTS 8
#define MAX_FDRECS 65536

static const char *const timer_fn_names[STRAY_TFN_COUNT] = {
	[STRAY_TFN_TIMER_CREATE] = "timer_create",
	[STRAY_TFN_TIMERFD_CREATE] = "timerfd_create",
	[STRAY_TFN_TIMER_SETTIME] = "timer_settime",
	[STRAY_TFN_TIMER_DELETE] = "timer_delete",
	[STRAY_TFN_TIMERFD_SETTIME] = "timerfd_settime",
	[STRAY_TFN_SETITIMER] = "setitimer",
	[STRAY_TFN_ALARM] = "alarm",
	[STRAY_TFN_UV_TIMER_INIT] = "uv_timer_init",
	[STRAY_TFN_UV_TIMER_START] = "uv_timer_start",
	[STRAY_TFN_UV_TIMER_STOP] = "uv_timer_stop",
	[STRAY_TFN_UV_CLOSE] = "uv_close",
};

/* libuv is tracked only where all four functions resolve. */
static bool fn_is_uv(int fn)
{
	return fn >= STRAY_TFN_UV_TIMER_INIT;
}

/* libc's wrappers but alarm also get a return probe: they act on success. */
static bool fn_has_return(int fn)
{
	return fn < STRAY_TFN_ALARM;
}

struct tproc {
	int pid; /* 0: free slot */
	size_t nlinks;
	struct bpf_link *links[2 * MAX_OBJECTS]; /* entry and return links */
	size_t nobjects;
	struct {
		dev_t dev;
		ino_t ino;
	} objects[MAX_OBJECTS];
};

/* A timer whose process's window has ended. */
struct frozen_timer {
	int pid;
	uint32_t kind;
	bool armed, periodic;
	int64_t interval_ns;
	uint64_t stack_hash;
	uint32_t depth;
	uint64_t ips[STRAY_MAX_STACK_DEPTH];
};

/* A live timerfd's state read from fdinfo at the last reconcile. */
struct fdstate {
	uint32_t tgid; /* owner (creator) */
	uint64_t file;
	uint64_t as_of_ns;
	int64_t value_ns, interval_ns; /* remaining it_value, it_interval */
};

struct timers {
	struct timers_bpf *skel;
	uint32_t max_targets, max_timers;
	bool have_release_hook;
	struct tproc *procs;
	struct frozen_timer *frozen;
	size_t nfrozen;
	struct itimer_state *fitimers; /* frozen interval timers */
	size_t nfitimers, fitimers_cap;
	struct fdstate *fds;
	size_t nfds, fds_cap;
	uint64_t user_released;  /* fallback releases (no release hook) */
	uint64_t frozen_dropped;
	uint64_t uprobe_failures;
	uint64_t site_reclaims;
};

static const char *const kind_names[] = {
	[STRAY_TIMER_TIMERFD] = "timerfd",
	[STRAY_TIMER_POSIX] = "posix",
	[STRAY_TIMER_UV] = "uv_timer",
};

static const char *const which_names[3] = { "real", "virtual", "prof" };

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* ---- lifecycle ---- */

/* Programs whose BTF raw tracepoint this kernel lacks are not loaded.
 * Without the file-free hook, timerfd releases are inferred at reconcile
 * from the owner's fd table (a copy held by a child is then missed). */
static void probe_tracepoints(struct timers *t)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, t->skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		char name[128];

		if (strncmp(sec, "tp_btf/", 7))
			continue;
		snprintf(name, sizeof(name), "btf_trace_%s", sec + 7);
		if (!vmlinux || btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) <= 0)
			bpf_program__set_autoload(prog, false);
	}
	t->have_release_hook = bpf_program__autoload(t->skel->progs.file_free);
	btf__free(vmlinux);
}

struct timers *timers__new(const struct timers_opts *opts, const char **errmsg)
{
	struct timers *t = calloc(1, sizeof(*t));
	int err;

	*errmsg = "out of memory";
	if (!t)
		return NULL;
	t->max_targets = opts && opts->max_targets ? opts->max_targets : 1024;
	t->max_timers = opts && opts->max_timers ? opts->max_timers : STRAY_DEFAULT_MAX_TIMERS;
	t->procs = calloc(t->max_targets, sizeof(*t->procs));
	t->frozen = calloc(t->max_timers, sizeof(*t->frozen));
	if (!t->procs || !t->frozen) {
		err = -ENOMEM;
		goto fail;
	}
	t->skel = timers_bpf__open();
	if (!t->skel) {
		err = -errno;
		*errmsg = "cannot open timers BPF object";
		goto fail;
	}
	err = bpf_map__set_max_entries(t->skel->maps.timers, t->max_timers);
	err = err ?: bpf_map__set_max_entries(t->skel->maps.owners, t->max_timers);
	if (opts && opts->max_sites)
		err = err ?: bpf_map__set_max_entries(t->skel->maps.timer_sites, opts->max_sites);
	err = err ?: bpf_map__set_max_entries(t->skel->maps.targets, t->max_targets);
	err = err ?: bpf_map__set_max_entries(t->skel->maps.itimers, t->max_targets);
	if (err) {
		*errmsg = "cannot size timers BPF maps";
		goto fail;
	}
	probe_tracepoints(t);
	/* Attached per target / per reconcile, not by the skeleton. */
	bpf_program__set_autoattach(t->skel->progs.timer_uprobe, false);
	bpf_program__set_autoattach(t->skel->progs.timer_uretprobe, false);
	bpf_program__set_autoattach(t->skel->progs.timerfd_files, false);
	err = timers_bpf__load(t->skel);
	if (err) {
		*errmsg = "cannot load timers BPF programs (needs BTF raw tracepoints, uprobes and task_file iterators)";
		goto fail;
	}
	err = timers_bpf__attach(t->skel);
	if (err) {
		*errmsg = "cannot attach the kmem_cache_free and sched_process_exit tracepoints";
		goto fail;
	}
	return t;
fail:
	timers__free(t);
	errno = err < 0 ? -err : ENOMEM;
	return NULL;
}

static void proc_release(struct tproc *p)
{
	for (size_t i = p->nlinks; i-- > 0;)
		bpf_link__destroy(p->links[i]);
	memset(p, 0, sizeof(*p));
}

void timers__free(struct timers *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; t->procs && i < t->max_targets; i++)
		proc_release(&t->procs[i]);
	timers_bpf__destroy(t->skel);
	free(t->procs);
	free(t->frozen);
	free(t->fitimers);
	free(t->fds);
	free(t);
}

static struct tproc *proc_slot(struct timers *t, int pid, bool create)
{
	struct tproc *free_slot = NULL;

	for (uint32_t i = 0; i < t->max_targets; i++) {
		if (t->procs[i].pid == pid)
			return &t->procs[i];
		if (!t->procs[i].pid && !free_slot)
			free_slot = &t->procs[i];
	}
	if (create && free_slot)
		free_slot->pid = pid;
	return create ? free_slot : NULL;
}

/* ---- attach ---- */


static int attach_object(struct timers *t, struct tproc *p, const char *path,
			 const unsigned long *offsets, const __u64 *cookies, size_t n)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .offsets = offsets, .cookies = cookies, .cnt = n);
	LIBBPF_OPTS(bpf_uprobe_multi_opts, ropts, .retprobe = true);
	unsigned long roffsets[STRAY_TFN_COUNT];
	__u64 rcookies[STRAY_TFN_COUNT];
	struct bpf_link *link, *rlink = NULL;
	size_t nr = 0;
	struct stat st;

	if (stat(path, &st))
		return -errno;
	for (size_t i = 0; i < p->nobjects; i++)
		if (p->objects[i].dev == st.st_dev && p->objects[i].ino == st.st_ino)
			return 0;
	if (p->nobjects >= MAX_OBJECTS)
		return -E2BIG;
	for (size_t i = 0; i < n && nr < STRAY_TFN_COUNT; i++) {
		if (!fn_has_return(cookies[i]))
			continue;
		roffsets[nr] = offsets[i];
		rcookies[nr++] = cookies[i];
	}
	/* The return link first: an entry without its return would leave a
	 * pending call; a return without its entry does nothing. */
	if (nr) {
		ropts.offsets = roffsets;
		ropts.cookies = rcookies;
		ropts.cnt = nr;
		rlink = bpf_program__attach_uprobe_multi(t->skel->progs.timer_uretprobe, p->pid, path, NULL,
							 &ropts);
		if (!rlink)
			return -errno;
	}
	link = bpf_program__attach_uprobe_multi(t->skel->progs.timer_uprobe, p->pid, path, NULL, &opts);
	if (!link) {
		int err = -errno;

		bpf_link__destroy(rlink);
		return err;
	}
	if (rlink)
		p->links[p->nlinks++] = rlink;
	p->links[p->nlinks++] = link;
	p->objects[p->nobjects].dev = st.st_dev;
	p->objects[p->nobjects++].ino = st.st_ino;
	return 0;
}

/*
 * Probe each user function in the first object (lookup order) defining
 * it: libc's timer wrappers (entry and return: this is how the timer
 * syscalls are traced, in the targets only), and libuv's timer API when an
 * object defines all of it (libuv1, node).
 */
static int attach_user_functions(struct timers *t, struct tproc *p, bool at_exec)
{
	char **paths = NULL;
	size_t n = 0;
	int owner[STRAY_TFN_COUNT];
	uint64_t where[STRAY_TFN_COUNT];
	int err, first_err = 0;

	for (int fn = 0; fn < STRAY_TFN_COUNT; fn++)
		owner[fn] = -1;
	err = allocator__lookup_scope(p->pid, at_exec, &paths, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		uint64_t offsets[STRAY_TFN_COUNT];
		bool found[STRAY_TFN_COUNT];

		if (elfsym__find_functions(paths[i], timer_fn_names, STRAY_TFN_COUNT, offsets, found) <= 0)
			continue;
		for (int fn = 0; fn < STRAY_TFN_COUNT; fn++) {
			if (found[fn] && owner[fn] < 0) {
				owner[fn] = i;
				where[fn] = offsets[fn];
			}
		}
	}
	/* libuv: all of it from one object, or nothing. */
	for (int fn = STRAY_TFN_UV_TIMER_INIT; fn < STRAY_TFN_COUNT; fn++) {
		if (owner[fn] < 0 || owner[fn] != owner[STRAY_TFN_UV_TIMER_INIT]) {
			for (int g = 0; g < STRAY_TFN_COUNT; g++)
				if (fn_is_uv(g))
					owner[g] = -1;
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		unsigned long offs[STRAY_TFN_COUNT];
		__u64 cookies[STRAY_TFN_COUNT];
		size_t cnt = 0;

		for (int fn = 0; fn < STRAY_TFN_COUNT; fn++) {
			if (owner[fn] != (int)i)
				continue;
			offs[cnt] = where[fn];
			cookies[cnt++] = fn;
		}
		if (!cnt)
			continue;
		err = attach_object(t, p, paths[i], offs, cookies, cnt);
		if (err) {
			t->uprobe_failures++;
			first_err = first_err ?: err;
		}
	}
	elfsym__free_paths(paths, n);
	return first_err;
}

int timers__attach(struct timers *t, int pid, bool at_exec)
{
	struct tproc *p = proc_slot(t, pid, true);
	__u32 key = pid, one = 1;

	if (!p)
		return -ENOSPC;
	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.targets), &key, &one, BPF_ANY)) {
		int err = -errno;

		p->pid = 0;
		return err;
	}
	/* Without these probes the process's timers are not traced; the
	 * failure is counted, not fatal. */
	attach_user_functions(t, p, at_exec);
	return 0;
}

/* ---- kernel state of one process ---- */

/* Keys of every timer entry of pid (all pids if pid == 0). */
static int timer_keys(struct timers *t, int pid, struct stray_timer_key **keys, size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.timers);
	struct stray_timer_key k, next, *out = NULL, *grown;
	size_t cnt = 0, cap = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (pid && k.tgid != (uint32_t)pid)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(out, cap * sizeof(*out));
			if (!grown) {
				free(out);
				return -ENOMEM;
			}
			out = grown;
		}
		out[cnt++] = k;
		if (cnt > 4 * (size_t)t->max_timers) /* a map changing under us */
			break;
	}
	*keys = out;
	*n = cnt;
	return 0;
}

static void delete_sites_of(struct timers *t, int pid)
{
	int fd = bpf_map__fd(t->skel->maps.timer_sites);
	struct stray_site_key k, next;
	void *prev = NULL;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (k.tgid == (uint32_t)pid) {
			bpf_map_delete_elem(fd, &k);
			prev = NULL; /* restart: deleting invalidates the cursor */
		}
	}
}

static void forget_fdstates(struct timers *t, int pid)
{
	size_t j = 0;

	for (size_t i = 0; i < t->nfds; i++)
		if (t->fds[i].tgid != (uint32_t)pid)
			t->fds[j++] = t->fds[i];
	t->nfds = j;
}

/* Remove pid's timers (not its interval timers) from the kernel maps. */
static void forget_timers(struct timers *t, int pid)
{
	struct stray_timer_key *keys;
	size_t n;

	if (timer_keys(t, pid, &keys, &n))
		return;
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.timers), &keys[i]);
	free(keys);
	delete_sites_of(t, pid);
	forget_fdstates(t, pid);
}

static void forget_itimers(struct timers *t, int pid)
{
	__u32 key = pid;

	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.itimers), &key);
}

void timers__on_exec(struct timers *t, int pid)
{
	forget_timers(t, pid);
}

void timers__detach(struct timers *t, int pid)
{
	struct tproc *p = proc_slot(t, pid, false);
	__u32 key = pid;

	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.targets), &key);
	if (p)
		proc_release(p);
	forget_timers(t, pid);
	forget_itimers(t, pid);
}

/* ---- state evaluation ---- */

static const struct fdstate *find_fdstate(const struct timers *t, uint32_t tgid, uint64_t file)
{
	for (size_t i = 0; i < t->nfds; i++)
		if (t->fds[i].tgid == tgid && t->fds[i].file == file)
			return &t->fds[i];
	return NULL;
}

/* The clock's current time, or false for clocks user space cannot read
 * for the target (per-process and per-thread CPU clocks). */
static bool clock_now(uint32_t clockid, int64_t *now)
{
	struct timespec ts;
	clockid_t c = (clockid_t)clockid;

	if (c == CLOCK_REALTIME_ALARM)
		c = CLOCK_REALTIME;
	else if (c == CLOCK_BOOTTIME_ALARM)
		c = CLOCK_BOOTTIME;
	if (c != CLOCK_REALTIME && c != CLOCK_MONOTONIC && c != CLOCK_BOOTTIME && c != CLOCK_TAI)
		return false;
	if (clock_gettime(c, &ts))
		return false;
	*now = ts.tv_sec * NS_PER_S + ts.tv_nsec;
	return true;
}

/*
 * Armed and periodic now. A periodic timer (nonzero interval, armed) never
 * expires; a one-shot one is armed until its expiry, computed from when
 * and how it was set. A live timerfd's fdinfo, when read after its last
 * settime, is authoritative (it shows the remaining it_value).
 */
static void timer_state(const struct timers *t, const struct stray_timer_key *key,
			const struct stray_timer *v, int64_t now, bool *armed, bool *periodic,
			int64_t *interval_ns)
{
	const struct fdstate *fs = NULL;
	int64_t value = v->value_ns, interval = v->interval_ns, expires, clk;

	if (key->kind == STRAY_TIMER_TIMERFD)
		fs = find_fdstate(t, key->tgid, key->id);
	if (fs && fs->as_of_ns >= v->set_ns) {
		*periodic = fs->value_ns && fs->interval_ns > 0;
		*armed = fs->value_ns && (*periodic || (int64_t)fs->as_of_ns + fs->value_ns > now);
		*interval_ns = *periodic ? fs->interval_ns : -1;
		return;
	}
	*armed = *periodic = false;
	*interval_ns = -1;
	if (!value)
		return;
	if (interval > 0) {
		*armed = *periodic = true;
		*interval_ns = interval;
		return;
	}
	if (!(v->flags & STRAY_TIMER_F_ABSTIME)) {
		expires = v->set_ns + value;
	} else if (clock_now(v->clockid, &clk)) {
		expires = now + (value - clk);
	} else {
		*armed = true; /* a CPU-time clock: cannot tell, say armed */
		return;
	}
	*armed = expires > now;
}

/* ---- reconcile ---- */

/*
 * A timerfd's fdinfo: "ticks: N", "it_value: (sec, nsec)" (time to the
 * next expiry, 0 once expired) and "it_interval: (sec, nsec)". A periodic
 * timerfd whose expiry has not been read yet shows it_value 0 with ticks
 * pending: it is re-armed by the read, so it still counts as armed. A
 * settime with it_value 0 disarms (and zeroes ticks) whatever the interval.
 */
static int parse_fdinfo(const char *text, int64_t *value_ns, int64_t *interval_ns)
{
	const char *v = strstr(text, "it_value:"), *i = strstr(text, "it_interval:");
	const char *tk = strstr(text, "ticks:");
	long long vs, vn, is, in;
	unsigned long long ticks = 0;

	if (!v || !i || sscanf(v, "it_value: (%lld, %lld)", &vs, &vn) != 2 ||
	    sscanf(i, "it_interval: (%lld, %lld)", &is, &in) != 2)
		return -EINVAL;
	if (tk)
		sscanf(tk, "ticks: %llu", &ticks);
	*value_ns = vs * NS_PER_S + vn;
	*interval_ns = is * NS_PER_S + in;
	/* Expired, unread periodic timer: armed, next expiry now. */
	if (!*value_ns && ticks && *interval_ns > 0)
		*value_ns = 1;
	return 0;
}

static int set_fdstate(struct timers *t, const struct fdstate *s)
{
	struct fdstate *slot = (struct fdstate *)find_fdstate(t, s->tgid, s->file);

	if (!slot) {
		if (t->nfds == t->fds_cap) {
			size_t cap = t->fds_cap ? 2 * t->fds_cap : 64;
			struct fdstate *grown;

			if (cap > t->max_timers)
				return -ENOSPC;
			grown = realloc(t->fds, cap * sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			t->fds = grown;
			t->fds_cap = cap;
		}
		slot = &t->fds[t->nfds++];
	}
	*slot = *s;
	return 0;
}

/* pid's tracked timerfds as (fd, file), from a pid-filtered task_file
 * iterator: struct file identity, which fd numbers cannot give. */
static int tracked_fds(struct timers *t, int pid, struct stray_timer_fdrec **recs, size_t *n)
{
	union bpf_iter_link_info linfo = { .task.pid = pid };
	LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &linfo, .link_info_len = sizeof(linfo));
	struct stray_timer_fdrec *out = NULL, *grown;
	size_t cnt = 0, cap = 0;
	struct bpf_link *link;
	int fd, err = 0;
	ssize_t got;

	link = bpf_program__attach_iter(t->skel->progs.timerfd_files, &opts);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		if (cnt == cap) {
			cap = cap ? 2 * cap : 64;
			if (cap > MAX_FDRECS) {
				err = -E2BIG;
				break;
			}
			grown = realloc(out, cap * sizeof(*out));
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			out = grown;
		}
		got = read(fd, out + cnt, (cap - cnt) * sizeof(*out));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = -errno;
			break;
		}
		if (got == 0)
			break;
		cnt += got / sizeof(*out);
	}
	close(fd);
out:
	bpf_link__destroy(link);
	if (err) {
		free(out);
		return err;
	}
	*recs = out;
	*n = cnt;
	return 0;
}

static int cmp_site_keys(const void *pa, const void *pb)
{
	const struct stray_site_key *a = pa, *b = pb;

	if (a->tgid != b->tgid)
		return a->tgid < b->tgid ? -1 : 1;
	if (a->stack_hash != b->stack_hash)
		return a->stack_hash < b->stack_hash ? -1 : 1;
	return 0;
}

/* Drop sites no timer refers to, once the sites map is half full. */
static void reclaim_sites(struct timers *t)
{
	int sfd = bpf_map__fd(t->skel->maps.timer_sites), tfd = bpf_map__fd(t->skel->maps.timers);
	uint32_t max = bpf_map__max_entries(t->skel->maps.timer_sites);
	struct stray_site_key k, next, *used = NULL, *dead = NULL;
	struct stray_timer_key *keys = NULL;
	struct stray_timer_site site;
	size_t n = 0, nused = 0, nsites = 0, ndead = 0;
	int64_t now = mono_ns();
	void *prev = NULL;

	while (bpf_map_get_next_key(sfd, prev, &next) == 0 && nsites <= max) {
		k = next;
		prev = &k;
		nsites++;
	}
	if (nsites < max / 2 || timer_keys(t, 0, &keys, &n))
		return;
	used = calloc(n + 1, sizeof(*used));
	dead = calloc(nsites + 1, sizeof(*dead));
	if (!used || !dead)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct stray_timer v;

		if (!bpf_map_lookup_elem(tfd, &keys[i], &v))
			used[nused++] = (struct stray_site_key){ .tgid = keys[i].tgid, .stack_hash = v.stack_hash };
	}
	qsort(used, nused, sizeof(*used), cmp_site_keys);
	prev = NULL;
	while (bpf_map_get_next_key(sfd, prev, &next) == 0 && ndead < nsites) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(sfd, &k, &site) || now - (int64_t)site.last_ns < SITE_GRACE_NS)
			continue;
		if (!bsearch(&k, used, nused, sizeof(*used), cmp_site_keys))
			dead[ndead++] = k;
	}
	for (size_t i = 0; i < ndead; i++)
		if (!bpf_map_delete_elem(sfd, &dead[i]))
			t->site_reclaims++;
out:
	free(used);
	free(dead);
	free(keys);
}

int timers__reconcile(struct timers *t, int pid)
{
	struct stray_timer_fdrec *recs = NULL;
	struct stray_timer_key *keys = NULL;
	size_t nrecs = 0, nkeys = 0;
	int err;

	err = tracked_fds(t, pid, &recs, &nrecs);
	if (err)
		return err;
	for (size_t i = 0; i < nrecs; i++) {
		struct fdstate s = { .tgid = recs[i].owner_tgid, .file = recs[i].file };
		char name[48], *text;

		bool dup = false;

		for (size_t j = 0; j < i && !dup; j++) /* threads list shared tables again */
			dup = recs[j].file == recs[i].file;
		if (dup)
			continue;
		snprintf(name, sizeof(name), "fdinfo/%d", recs[i].fd);
		/* The fd may be closed meanwhile: keep the kernel's view. */
		if (procfs__read_file(pid, name, 4096, &text))
			continue;
		s.as_of_ns = mono_ns();
		if (!parse_fdinfo(text, &s.value_ns, &s.interval_ns))
			set_fdstate(t, &s);

		free(text);
	}
	/* States of timerfds that are no longer tracked go; without the
	 * release hook, pid's timerfds it no longer holds count as released
	 * (a copy held by a child is then missed). */
	if (!timer_keys(t, pid, &keys, &nkeys)) {
		for (size_t i = 0; i < nkeys; i++) {
			bool held = false;

			if (keys[i].kind != STRAY_TIMER_TIMERFD || t->have_release_hook)
				continue;
			for (size_t j = 0; j < nrecs && !held; j++)
				held = recs[j].file == keys[i].id;
			if (!held && !bpf_map_delete_elem(bpf_map__fd(t->skel->maps.timers), &keys[i]))
				t->user_released++;
		}
		for (size_t j = 0; j < t->nfds;) {
			struct stray_timer v;
			struct stray_timer_key k = { t->fds[j].tgid, STRAY_TIMER_TIMERFD, t->fds[j].file };

			if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.timers), &k, &v))
				t->fds[j] = t->fds[--t->nfds];
			else
				j++;
		}
	}
	free(keys);
	free(recs);
	reclaim_sites(t);
	return 0;
}

/* ---- exit: freeze ---- */

static void freeze_itimers(struct timers *t, int pid, int64_t now);

void timers__on_exit(struct timers *t, int pid)
{
	int tfd = bpf_map__fd(t->skel->maps.timers), sfd = bpf_map__fd(t->skel->maps.timer_sites);
	struct stray_timer_key *keys;
	int64_t now;
	size_t n;

	/* At the exit stop the fds are still open: read their real state. */
	timers__reconcile(t, pid);
	now = mono_ns();
	if (!timer_keys(t, pid, &keys, &n)) {
		for (size_t i = 0; i < n; i++) {
			struct stray_site_key sk = { .tgid = keys[i].tgid };
			struct stray_timer_site site;
			struct stray_timer v;
			struct frozen_timer *f;

			if (bpf_map_lookup_elem(tfd, &keys[i], &v))
				continue;
			if (t->nfrozen == t->max_timers) {
				t->frozen_dropped++;
				continue;
			}
			f = &t->frozen[t->nfrozen++];
			memset(f, 0, sizeof(*f));
			f->pid = pid;
			f->kind = keys[i].kind;
			f->stack_hash = v.stack_hash;
			timer_state(t, &keys[i], &v, now, &f->armed, &f->periodic, &f->interval_ns);
			sk.stack_hash = v.stack_hash;
			if (!bpf_map_lookup_elem(sfd, &sk, &site)) {
				f->depth = site.depth < STRAY_MAX_STACK_DEPTH ? site.depth : STRAY_MAX_STACK_DEPTH;
				memcpy(f->ips, site.ips, f->depth * sizeof(f->ips[0]));
			}
		}
		free(keys);
	}
	freeze_itimers(t, pid, now);
	forget_timers(t, pid);
	forget_itimers(t, pid);
}

/* ---- collect ---- */

struct group_acc {
	struct timer_group g;
	uint64_t hash;
	bool mixed_interval;
};

static struct group_acc *group_for(struct group_acc **groups, size_t *n, size_t *cap, uint32_t kind,
				   int pid, uint64_t hash)
{
	struct group_acc *grown;

	/* Linear: groups are per distinct creation stack, few. */
	for (size_t i = 0; i < *n; i++) {
		struct group_acc *a = &(*groups)[i];

		if (a->hash == hash && a->g.pid == pid && !strcmp(a->g.kind, kind_names[kind]))
			return a;
	}
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 32;
		grown = realloc(*groups, *cap * sizeof(**groups));
		if (!grown)
			return NULL;
		*groups = grown;
	}
	grown = &(*groups)[(*n)++];
	memset(grown, 0, sizeof(*grown));
	grown->g.kind = kind_names[kind];
	grown->g.pid = pid;
	grown->g.interval_ns = -1;
	grown->hash = hash;
	return grown;
}

static void group_add(struct group_acc *a, bool armed, bool periodic, int64_t interval_ns)
{
	a->g.outstanding++;
	a->g.armed += armed;
	if (!periodic)
		return;
	if (a->g.periodic++ == 0)
		a->g.interval_ns = interval_ns;
	else if (a->g.interval_ns != interval_ns)
		a->mixed_interval = true;
}

static int cmp_groups(const void *pa, const void *pb)
{
	const struct timer_group *a = pa, *b = pb;
	int c;

	if (a->outstanding != b->outstanding)
		return a->outstanding > b->outstanding ? -1 : 1;
	if ((c = strcmp(a->kind, b->kind)))
		return c;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	if (a->depth && b->depth && a->ips[0] != b->ips[0])
		return a->ips[0] < b->ips[0] ? -1 : 1;
	return 0;
}

static bool alive(int pid)
{
	char state;

	return procfs__state(pid, &state) == 0 && state != 'Z' && state != 'X';
}

int timers__collect(struct timers *t, struct timer_group **groups, size_t *n)
{
	int tfd = bpf_map__fd(t->skel->maps.timers), sfd = bpf_map__fd(t->skel->maps.timer_sites);
	struct group_acc *acc = NULL;
	struct stray_timer_key *keys;
	size_t nacc = 0, cap = 0, nkeys;
	struct timer_group *out;
	int64_t now;
	int err;

	for (uint32_t i = 0; i < t->max_targets; i++)
		if (t->procs[i].pid && alive(t->procs[i].pid))
			timers__reconcile(t, t->procs[i].pid);
	now = mono_ns();
	err = timer_keys(t, 0, &keys, &nkeys);
	if (err)
		return err;
	for (size_t i = 0; i < nkeys; i++) {
		struct stray_site_key sk = { .tgid = keys[i].tgid };
		struct stray_timer_site site;
		struct stray_timer v;
		struct group_acc *a;
		bool armed, periodic;
		int64_t interval;

		if (bpf_map_lookup_elem(tfd, &keys[i], &v))
			continue; /* released meanwhile */
		a = group_for(&acc, &nacc, &cap, keys[i].kind, keys[i].tgid, v.stack_hash);
		if (!a) {
			err = -ENOMEM;
			goto out;
		}
		if (a->g.outstanding == 0) {
			sk.stack_hash = v.stack_hash;
			if (!bpf_map_lookup_elem(sfd, &sk, &site)) {
				a->g.depth = site.depth < STRAY_MAX_STACK_DEPTH ? site.depth : STRAY_MAX_STACK_DEPTH;
				memcpy(a->g.ips, site.ips, a->g.depth * sizeof(a->g.ips[0]));
			}
		}
		timer_state(t, &keys[i], &v, now, &armed, &periodic, &interval);
		group_add(a, armed, periodic, interval);
	}
	for (size_t i = 0; i < t->nfrozen; i++) {
		const struct frozen_timer *f = &t->frozen[i];
		struct group_acc *a = group_for(&acc, &nacc, &cap, f->kind, f->pid, f->stack_hash);

		if (!a) {
			err = -ENOMEM;
			goto out;
		}
		if (a->g.outstanding == 0) {
			a->g.depth = f->depth;
			memcpy(a->g.ips, f->ips, f->depth * sizeof(f->ips[0]));
		}
		group_add(a, f->armed, f->periodic, f->interval_ns);
	}
	out = calloc(nacc ? nacc : 1, sizeof(*out));
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nacc; i++) {
		out[i] = acc[i].g;
		if (acc[i].mixed_interval)
			out[i].interval_ns = -1;
	}
	qsort(out, nacc, sizeof(*out), cmp_groups);
	*groups = out;
	*n = nacc;
out:
	free(acc);
	free(keys);
	return err;
}

/* ---- interval timers ---- */

/* Current state of one interval timer, false if disarmed. ITIMER_REAL
 * runs in real time, so what remains is computed; the CPU-time ones
 * (virtual, prof) are reported as set. */
static bool itimer_now(const struct stray_itimers *it, int which, int64_t now, int64_t *value,
		       int64_t *interval)
{
	int64_t v = it->value_ns[which], iv = it->interval_ns[which], elapsed;

	*interval = iv;
	*value = v;
	if (!v)
		return false;
	if (which != 0)
		return true;
	elapsed = now - (int64_t)it->set_ns[which];
	if (elapsed < v) {
		*value = v - elapsed;
		return true;
	}
	if (iv <= 0)
		return false;
	*value = iv - (elapsed - v) % iv;
	return true;
}

static int push_itimer(struct itimer_state **arr, size_t *n, size_t *cap, const struct itimer_state *s)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 8;
		struct itimer_state *grown = realloc(*arr, c * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		*arr = grown;
		*cap = c;
	}
	(*arr)[(*n)++] = *s;
	return 0;
}

static void freeze_itimers(struct timers *t, int pid, int64_t now)
{
	struct stray_itimers it;
	__u32 key = pid;

	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.itimers), &key, &it))
		return;
	for (int w = 0; w < 3; w++) {
		struct itimer_state s = { .pid = pid, .which = which_names[w] };

		if (t->nfitimers >= 3 * (size_t)t->max_targets) {
			t->frozen_dropped++;
			continue;
		}
		if (itimer_now(&it, w, now, &s.value_ns, &s.interval_ns))
			push_itimer(&t->fitimers, &t->nfitimers, &t->fitimers_cap, &s);
	}
}

int timers__itimers(struct timers *t, struct itimer_state **out, size_t *n)
{
	int fd = bpf_map__fd(t->skel->maps.itimers);
	struct itimer_state *arr = NULL;
	size_t cnt = 0, cap = 0;
	__u32 k, next;
	void *prev = NULL;
	int64_t now = mono_ns();

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct stray_itimers it;

		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &it))
			continue;
		for (int w = 0; w < 3; w++) {
			struct itimer_state s = { .pid = (int)k, .which = which_names[w] };

			if (itimer_now(&it, w, now, &s.value_ns, &s.interval_ns) &&
			    push_itimer(&arr, &cnt, &cap, &s))
				goto nomem;
		}
	}
	for (size_t i = 0; i < t->nfitimers; i++)
		if (push_itimer(&arr, &cnt, &cap, &t->fitimers[i]))
			goto nomem;
	*out = arr;
	*n = cnt;
	return 0;
nomem:
	free(arr);
	return -ENOMEM;
}

/* ---- counters ---- */

static void read_counters(const struct timers *t, uint64_t *sum)
{
	int ncpus = libbpf_num_possible_cpus();
	struct stray_timer_counters *per_cpu;
	__u32 zero = 0;

	memset(sum, 0, sizeof(uint64_t) * STRAY_TCNT_NR);
	if (ncpus <= 0 || !(per_cpu = calloc(ncpus, sizeof(*per_cpu))))
		return;
	if (!bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.timer_counters), &zero, per_cpu))
		for (int cpu = 0; cpu < ncpus; cpu++)
			for (int c = 0; c < STRAY_TCNT_NR; c++)
				sum[c] += per_cpu[cpu].v[c];
	free(per_cpu);
}

void timers__totals(const struct timers *t, uint64_t *created, uint64_t *released)
{
	uint64_t sum[STRAY_TCNT_NR];

	read_counters(t, sum);
	*created = sum[STRAY_TCNT_CREATED];
	*released = sum[STRAY_TCNT_RELEASED] + t->user_released;
}

size_t timers__dropped(const struct timers *t, const char **names, uint64_t *values, size_t max)
{
	static const struct {
		const char *name;
		int counter;
	} kernel[] = {
		{ "timer_map_full", STRAY_TCNT_MAP_FULL },
		{ "timer_site_map_full", STRAY_TCNT_SITE_MAP_FULL },
		{ "timer_owner_map_full", STRAY_TCNT_OWNER_MAP_FULL },
		{ "timer_stack_errors", STRAY_TCNT_STACK_ERRORS },
		{ "timer_stack_collisions", STRAY_TCNT_STACK_COLLISIONS },
		{ "timer_stale_keys", STRAY_TCNT_STALE_KEY },
		{ "timerfd_create_races", STRAY_TCNT_FD_RACE },
		{ "timer_pending_full", STRAY_TCNT_PENDING_FULL },
		{ "itimer_map_full", STRAY_TCNT_ITIMER_MAP_FULL },
	};
	uint64_t sum[STRAY_TCNT_NR];
	size_t n = 0;

	read_counters(t, sum);
	for (size_t i = 0; i < sizeof(kernel) / sizeof(kernel[0]) && n < max; i++, n++) {
		names[n] = kernel[i].name;
		values[n] = sum[kernel[i].counter];
	}
	if (n < max) {
		names[n] = "timer_frozen_full";
		values[n++] = t->frozen_dropped;
	}
	if (n < max) {
		names[n] = "timer_uprobe_attach_failed";
		values[n++] = t->uprobe_failures;
	}
	return n;
}
