// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "analysis.h"
#include "attach_prep.h"
#include "drain.h"
#include "follow.h"
#include "loader.h"
#include "monitor.h"
#include "output.h"
#include "procfs.h"
#include "report.h"
#include "session.h"
#include "symbolize.h"
#include "timers.h"
#include "tracee.h"
#include "unwind.h"

#define NS_PER_S 1000000000ull
/* How long a run-mode command gets to exit after stray forwards it a signal. */
#define TERMINATE_GRACE_NS (5 * NS_PER_S)

struct session {
	const struct session_opts *opts;
	struct loader *loader;
	struct drain *drain;
	struct symbolizer *sym;
	struct tracee *tracee;
	struct monitor *monitor;
	struct timers *timers; /* NULL with --no-timers or when the kernel lacks them */
	struct follow *follow; /* -p --follow only */
	uint64_t follow_untraced; /* --follow: children that could not be attached */
	struct unwind_tables *unwind; /* NULL with --unwind=fp */
	const char *timers_unavailable; /* why timers are off, for the report's notes */
	struct attach_prep prep; /* done while the BPF object loads */
	/* every process traced in the window, and whether it still lives */
	int *pids;
	bool *live;
	size_t npids;
	uint64_t start_ns, end_ns, terminate_deadline_ns, last_report_ns;
	bool done, failed;
	bool error_reported; /* the failure's one line is already on stderr */
	int exit_status;
	bool has_exit_code;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC is the clock of bpf_ktime_get_ns(). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void logv(const struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logv(const struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->opts->verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "stray: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* -v: how long the attach phase since *since took (issue 7). */
static void log_phase(const struct session *s, const char *phase, uint64_t *since)
{
	uint64_t t = now_ns();

	logv(s, "timing: %s %.1f ms", phase, (t - *since) / 1e6);
	*since = t;
}

static int track_pid(struct session *s, int pid)
{
	for (size_t i = 0; i < s->npids; i++) {
		if (s->pids[i] == pid) {
			s->live[i] = true;
			return 0;
		}
	}
	if (s->npids >= s->opts->max_procs)
		return -ENOSPC;
	s->pids[s->npids] = pid;
	s->live[s->npids++] = true;
	return 0;
}

static void mark_dead(struct session *s, int pid)
{
	for (size_t i = 0; i < s->npids; i++)
		if (s->pids[i] == pid)
			s->live[i] = false;
}

/* Keep a copy of pid's address space layout for symbolizing after it is
 * gone. Failures are harmless: the previous snapshot stays. lazy: the
 * separate debug info is searched later (symbolizer__set_maps_lazy). */
static void snapshot_maps(struct session *s, int pid, bool lazy)
{
	symbolizer__snapshot_process(s->sym, pid, lazy);
}

/* -v: where each function's probe went (user/placement.h). */
static void log_placement(const struct session *s, int pid, const struct alloc_object *o)
{
	for (int fn = 0; fn < STRAY_FN_COUNT; fn++)
		if (o->found[fn])
			logv(s, "pid %d: %s: probe at +0x%" PRIx64 " of entry 0x%" PRIx64 " (%u skipped: %s)",
			     pid, stray_fn_names[fn], o->probe_offsets[fn] - o->offsets[fn], o->offsets[fn],
			     o->probe_skipped[fn], o->probe_why[fn]);
}

/* pid's allocator: the -p target's was resolved while BPF loaded. */
static int resolve_allocator(struct session *s, int pid, bool at_exec, struct allocator *out)
{
	if (pid != s->prep.pid || at_exec)
		return allocator__resolve(pid, at_exec, out);
	s->prep.pid = 0; /* used once: a later exec resolves anew */
	*out = s->prep.alloc;
	memset(&s->prep.alloc, 0, sizeof(s->prep.alloc));
	return s->prep.alloc_err;
}

static int attach(struct session *s, int pid, bool at_exec)
{
	struct allocator alloc;
	uint64_t t = now_ns();
	int err;

	err = resolve_allocator(s, pid, at_exec, &alloc);
	if (err)
		return err;
	log_phase(s, "resolve allocator", &t);
	err = track_pid(s, pid);
	/* Unwind tables before the probes: the first allocations seen need
	 * them. */
	if (!err && s->unwind) /* (the -p target's: a refresh of on_maps_ready's) */
		unwind_tables__add_process(s->unwind, pid, at_exec);
	log_phase(s, "unwind tables", &t);
	/* The layout before the probes: a process that exits right after its
	 * first traced allocation still symbolizes (its libraries are opened
	 * now, through map_files, while it lives). Their debug info can wait
	 * until the probes are in (session__run, the next snapshot). For the
	 * -p target, a refresh of the prep thread's snapshot. */
	if (!err)
		snapshot_maps(s, pid, true);
	log_phase(s, "maps snapshot", &t);
	if (!err)
		err = loader__attach(s->loader, pid, &alloc);
	log_phase(s, "probe links", &t);
	for (size_t i = 0; i < alloc.nobjects && !err; i++) {
		logv(s, "pid %d: probes on %s", pid, alloc.objects[i].path);
		log_placement(s, pid, &alloc.objects[i]);
	}
	allocator__clear(&alloc);
	if (err)
		return err;
	/* Timers are extra: a process whose timers cannot be traced still has
	 * its memory traced. */
	if (s->timers && (err = timers__attach(s->timers, pid, at_exec)))
		logv(s, "pid %d: timers not traced: %s", pid, strerror(-err));
	log_phase(s, "timer probes", &t);
	return 0;
}

static void report_attach_error(int pid, const char *what, int err)
{
	if (err == -ENOENT)
		fprintf(stderr, "stray: %s (pid %d): no allocator symbol (malloc) found in the program "
				"or the libraries it loads\n", what, pid);
	else
		fprintf(stderr, "stray: %s (pid %d): cannot attach probes: %s\n", what, pid,
			strerror(-err));
}

static void drain_interval(struct session *s);
static void periodic_report(struct session *s);

/* ---- run mode: ptrace callbacks ---- */

static int on_exec(void *ctx, int pid)
{
	struct session *s = ctx;
	int err;

	/* exec replaced the address space: what the old image held is gone,
	 * not leaked. (Nothing to forget at the command's own first exec.) */
	drain__forget(s->drain, pid);
	if (s->timers)
		timers__on_exec(s->timers, pid);
	err = attach(s, pid, true);

	if (err && pid == tracee__root_pid(s->tracee)) {
		report_attach_error(pid, s->opts->command[0], err);
		s->error_reported = true;
	}
	else if (err)
		logv(s, "pid %d: exec not followed: %s", pid, strerror(-err));
	return err;
}

static int on_fork(void *ctx, int parent, int child)
{
	struct session *s = ctx;
	int err = attach(s, child, false);

	if (err)
		logv(s, "pid %d (child of %d) not followed: %s", child, parent, strerror(-err));
	return err;
}

static void on_exit_stop(void *ctx, int pid)
{
	struct session *s = ctx;

	/* The root's address space is intact for the last time: take the
	 * final heap sample (and maps) now. */
	if (pid == tracee__root_pid(s->tracee))
		drain_interval(s);
	else
		snapshot_maps(s, pid, false);
	/* Its fds are still open: freeze the timers it holds at exit. */
	if (s->timers)
		timers__on_exit(s->timers, pid);
}

/* Process pid is gone. A child's outstanding blocks are final: fold them
 * into the report now and free its kernel state (fold_child). The root's
 * stay for the final harvest. */
static void process_gone(struct session *s, int pid, bool fold_child)
{
	loader__detach(s->loader, pid);
	if (s->timers)
		timers__detach(s->timers, pid);
	mark_dead(s, pid);
	if (fold_child)
		drain__harvest(s->drain, pid, s->opts->min_age_s * NS_PER_S, now_ns(), true);
}

static void on_exited(void *ctx, int pid, int status)
{
	struct session *s = ctx;

	(void)status;
	process_gone(s, pid, pid != tracee__root_pid(s->tracee));
}

static const struct tracee_ops tracee_ops = {
	.on_exec = on_exec,
	.on_fork = on_fork,
	.on_exit_stop = on_exit_stop,
	.on_exited = on_exited,
};

/* ---- -p --follow: events from bpf/follow.bpf.h ---- */

static void follow_fork(void *ctx, int parent, int child, uint64_t ts_ns)
{
	struct session *s = ctx;
	int err = attach(s, child, false);

	/* The child ran without probes from its fork until now. */
	if (!err) {
		logv(s, "pid %d (child of %d): followed %.2f ms after its fork", child, parent,
		     (now_ns() - ts_ns) / 1e6);
		return;
	}
	/* Gone already, or no room: the kernel's targets entry goes too. */
	logv(s, "pid %d (child of %d) not followed: %s", child, parent, strerror(-err));
	loader__detach(s->loader, child);
	s->follow_untraced++;
}

static void follow_exec(void *ctx, int pid, uint64_t ts_ns)
{
	struct session *s = ctx;
	int err;

	/* What the old image held is gone, not leaked; the new image may
	 * already have allocated by now, so only older blocks go. */
	drain__forget_before(s->drain, pid, ts_ns);
	if (s->timers)
		timers__on_exec(s->timers, pid);
	err = attach(s, pid, true);
	if (err)
		logv(s, "pid %d: exec not followed: %s", pid, strerror(-err));
}

static void follow_exit(void *ctx, int pid)
{
	struct session *s = ctx;

	/* The -p target's exit ends the window through its pidfd. */
	if (pid != s->opts->pid)
		process_gone(s, pid, true);
}

static const struct follow_ops follow_ops = {
	.on_fork = follow_fork,
	.on_exec = follow_exec,
	.on_exit = follow_exit,
};

/* ---- the interval drain ---- */

/* The process whose cgroup is watched and whose pid heap alerts carry. */
static int main_pid(const struct session *s)
{
	return s->tracee ? tracee__root_pid(s->tracee) : s->opts->pid;
}

/*
 * One drain: sample the targets' memory and the tracked bytes, refresh the
 * maps snapshots, reclaim idle sites. Without any live target (the window
 * ends after the last exit) only the reclaim is done: a sample with no
 * memory readings would show a false drop to zero.
 */
static void drain_interval(struct session *s)
{
	struct report_heap_sample sample = { .t_s = (now_ns() - s->start_ns) / 1e9 };
	uint64_t rss, anon;
	size_t readings = 0;
	int err;

	for (size_t i = 0; i < s->npids; i++) {
		if (!s->live[i] || procfs__memory(s->pids[i], &rss, &anon))
			continue;
		sample.rss_bytes += rss;
		sample.anon_bytes += anon;
		readings++;
		snapshot_maps(s, s->pids[i], false);
		if (s->unwind) /* modules mapped since (dlopen) */
			unwind_tables__add_process(s->unwind, s->pids[i], false);
		if (s->timers)
			timers__reconcile(s->timers, s->pids[i]);
	}
	monitor__begin_interval(s->monitor, sample.t_s);
	err = drain__sites_pass(s->drain, -1, &sample.tracked_bytes, monitor__site_view, s->monitor);
	if (err)
		logv(s, "drain failed: %s", strerror(-err));
	monitor__end_interval(s->monitor, readings ? &sample : NULL, main_pid(s));
}

/* ---- the event loop ---- */

static int open_signalfd(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGHUP);
	sigaddset(mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, mask, NULL))
		return -1;
	return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int open_interval_timer(double interval_s)
{
	struct itimerspec its = { 0 };
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	its.it_interval.tv_sec = (time_t)interval_s;
	its.it_interval.tv_nsec = (long)((interval_s - (time_t)interval_s) * 1e9);
	if (!its.it_interval.tv_sec && !its.it_interval.tv_nsec)
		its.it_interval.tv_nsec = 1000000;
	its.it_value = its.it_interval;
	if (fd >= 0 && timerfd_settime(fd, 0, &its, NULL)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * SIGINT/SIGTERM end the window. In run mode the command is asked to end
 * too, unless the signal came from the terminal (then it got its own copy),
 * and stray waits a grace period for its exit so the report shows what it
 * held at exit. A second signal ends the window at once.
 */
static void on_signal(struct session *s, const struct signalfd_siginfo *si)
{
	int root;

	if (si->ssi_signo == SIGCHLD)
		return;
	if (!s->tracee || s->terminate_deadline_ns) {
		s->done = true;
		return;
	}
	root = tracee__root_pid(s->tracee);
	if (si->ssi_code == SI_USER || si->ssi_code == SI_QUEUE)
		kill(root, si->ssi_signo);
	s->terminate_deadline_ns = now_ns() + TERMINATE_GRACE_NS;
}

static void handle_signals(struct session *s, int sfd)
{
	struct signalfd_siginfo si;
	int err;

	while (read(sfd, &si, sizeof(si)) == sizeof(si))
		on_signal(s, &si);
	/* SIGCHLDs coalesce: always look for ptrace events. */
	if (s->tracee) {
		err = tracee__handle_events(s->tracee);
		if (err) {
			if (!s->error_reported)
				fprintf(stderr, "stray: %s: cannot run: %s\n", s->opts->command[0],
					strerror(-err));
			s->failed = s->done = true;
		}
	}
}

static void check_window_end(struct session *s, int pidfd_ready)
{
	uint64_t t = now_ns();

	if (s->opts->duration_s > 0 && t - s->start_ns >= s->opts->duration_s * NS_PER_S)
		s->done = true;
	if (s->terminate_deadline_ns && t >= s->terminate_deadline_ns)
		s->done = true;
	if (s->tracee && tracee__root_exited(s->tracee))
		s->done = true;
	if (pidfd_ready)
		s->done = true;
}

static int event_loop(struct session *s, int sfd, int pidfd)
{
	int tfd = open_interval_timer(s->opts->interval_s);
	/* poll ignores negative descriptors: no pidfd in run mode, no
	 * follow events without --follow. */
	struct pollfd fds[4] = {
		{ .fd = sfd, .events = POLLIN },
		{ .fd = tfd, .events = POLLIN },
		{ .fd = pidfd, .events = POLLIN },
		{ .fd = s->follow ? follow__fd(s->follow) : -1, .events = POLLIN },
	};
	uint64_t ticks;

	if (tfd < 0)
		return -errno;
	/* ptrace events may have queued before the loop started. */
	handle_signals(s, sfd);
	while (!s->done) {
		fds[2].revents = 0;
		if (poll(fds, 4, 200) < 0 && errno != EINTR)
			break;
		if (fds[3].revents & POLLIN)
			follow__consume(s->follow);
		if (fds[0].revents & POLLIN)
			handle_signals(s, sfd);
		if ((fds[1].revents & POLLIN) && read(tfd, &ticks, sizeof(ticks)) > 0) {
			drain_interval(s);
			periodic_report(s);
		}
		check_window_end(s, fds[2].revents & POLLIN);
	}
	close(tfd);
	return 0;
}

/* ---- the report ---- */

struct counter_name {
	int index;
	const char *name;
};

static const struct counter_name kernel_drops[] = {
	{ STRAY_CNT_ALLOC_MAP_FULL, "alloc_map_full" },
	{ STRAY_CNT_SITE_MAP_FULL, "site_map_full" },
	{ STRAY_CNT_INFLIGHT_FULL, "inflight_map_full" },
	{ STRAY_CNT_MISSING_ENTRY, "missing_entry" },
	{ STRAY_CNT_STACK_ERRORS, "stack_errors" },
	{ STRAY_CNT_STACK_COLLISIONS, "stack_collisions" },
	{ STRAY_CNT_DUPLICATE_ADDR, "duplicate_addresses" },
	{ STRAY_CNT_STALE_INFLIGHT, "stale_inflight" },
	{ STRAY_CNT_UNMAP_UNHANDLED, "unmaps_not_handled" },
	{ STRAY_CNT_FOLLOW_LOST, "follow_events_lost" },
	{ STRAY_CNT_UNWIND_STOPPED, "unwind_stopped" },
	{ STRAY_CNT_UNWIND_NO_VMA, "unwind_no_vma" },
};

static const struct counter_name drain_drops[] = {
	{ DRAIN_CNT_STACK_LOST, "stack_lost" },
	{ DRAIN_CNT_REPORT_TABLE_FULL, "report_table_full" },
	{ DRAIN_CNT_SITES_RECLAIMED, "sites_reclaimed" },
};

#define NDROPS (sizeof(kernel_drops) / sizeof(kernel_drops[0]) + \
		sizeof(drain_drops) / sizeof(drain_drops[0]) + 5)

/* Storage behind a struct report while it is being written. */
#define MAX_TIMER_DROPS 32
#define MAX_UNWIND_DROPS 4

struct report_build {
	struct report r;
	struct report_counter dropped[NDROPS + MAX_TIMER_DROPS + MAX_UNWIND_DROPS];
	struct site_live *sites;
	struct report_suspect *suspects;
	struct report_frame *frames;
	struct timer_group *groups;
	struct report_timer *timers;
	struct report_frame *timer_frames;
	struct itimer_state *itimer_states;
	struct report_itimer *itimers;
	const char *notes[7];
};

static size_t timer_drops(struct session *s, struct report_counter *out)
{
	const char *names[MAX_TIMER_DROPS];
	uint64_t values[MAX_TIMER_DROPS];
	size_t n;

	if (!s->timers)
		return 0;
	n = timers__dropped(s->timers, names, values, MAX_TIMER_DROPS);
	for (size_t i = 0; i < n; i++)
		out[i] = (struct report_counter){ names[i], values[i] };
	return n;
}

static void fill_counters(struct session *s, struct report_build *b, uint64_t *kc)
{
	const uint64_t *dc = drain__counters(s->drain);
	size_t n = 0;

	b->r.allocations = kc[STRAY_CNT_ALLOCS];
	b->r.frees = kc[STRAY_CNT_FREES];
	b->r.unmatched_frees = kc[STRAY_CNT_UNMATCHED_FREES];
	drain__outstanding(s->drain, &b->r.outstanding_bytes, &b->r.outstanding_allocations);
	b->r.mmap_regions = kc[STRAY_CNT_MAPS];
	b->r.munmaps = kc[STRAY_CNT_UNMAPS];
	b->r.unmatched_unmaps = kc[STRAY_CNT_UNMATCHED_UNMAPS];
	b->r.untracked_allocations = kc[STRAY_CNT_ALLOC_MAP_FULL];
	b->r.untracked_bytes = kc[STRAY_CNT_UNTRACKED_BYTES];
	drain__outstanding_mmap(s->drain, &b->r.outstanding_mmap_bytes, &b->r.outstanding_mmap_regions);
	for (size_t i = 0; i < sizeof(kernel_drops) / sizeof(kernel_drops[0]); i++)
		b->dropped[n++] = (struct report_counter){ kernel_drops[i].name, kc[kernel_drops[i].index] };
	for (size_t i = 0; i < sizeof(drain_drops) / sizeof(drain_drops[0]); i++)
		b->dropped[n++] = (struct report_counter){ drain_drops[i].name, dc[drain_drops[i].index] };
	b->dropped[n++] = (struct report_counter){ "failed_allocations", kc[STRAY_CNT_FAILED_ALLOCS] };
	b->dropped[n++] = (struct report_counter){ "untraced_processes",
						   (s->tracee ? tracee__untraced(s->tracee) : 0) + s->follow_untraced };
	b->dropped[n++] = (struct report_counter){ "sites_without_history",
						   monitor__sites_dropped(s->monitor) };
	b->dropped[n++] = (struct report_counter){ "alerts_not_kept", monitor__alerts_dropped(s->monitor) };
	b->dropped[n++] = (struct report_counter){ "mappings_not_symbolized", symbolizer__dropped(s->sym) };
	n += timer_drops(s, &b->dropped[n]);
	if (s->unwind)
		n += unwind_tables__dropped(s->unwind, &b->dropped[n], MAX_UNWIND_DROPS);
	b->r.dropped = b->dropped;
	b->r.ndropped = n;
}

static double window_s(const struct session *s)
{
	return (s->end_ns - s->start_ns) / 1e9;
}

/* Run mode, and the command has exited: what it still held is what it
 * leaked at exit, as LeakSanitizer would say, whatever its history. */
static bool window_ended_by_exit(const struct session *s)
{
	return s->tracee && tracee__root_exited(s->tracee);
}

/* rank 1 = highest score; the array itself stays sorted by bytes. */
static void rank_by_score(struct report_suspect *sus, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sus[i].rank = 1;
		for (size_t j = 0; j < n; j++)
			if (sus[j].score > sus[i].score || (sus[j].score == sus[i].score && j < i))
				sus[i].rank++;
	}
}

/* Symbolize a recorded stack into out (NULL: only count), inlined
 * functions as frames of their own; returns the number of frames. */
static size_t stack_frames(struct session *s, int pid, const uint64_t *ips, uint32_t depth,
			   struct report_frame *out)
{
	size_t n = 0;

	for (uint32_t d = 0; d < depth; d++) {
		int k = symbolizer__resolve_frames(s->sym, pid, ips[d], out ? out + n : NULL,
						   out ? SIZE_MAX : 0);

		n += k > 0 ? k : 0;
		/* a pid never described still gets its raw frames */
		if (k <= 0 && out)
			out[n] = (struct report_frame){ .address = ips[d], .offset = -1 };
		n += k <= 0;
	}
	return n;
}

/* --sample: how good the estimate of a heap site is (mmap sites are exact). */
static void fill_sampling(const struct session *s, const struct site_record *rec, struct report_suspect *out)
{
	if (!s->opts->sample_bytes || rec->kind != STRAY_KIND_HEAP)
		return;
	out->sampled = true;
	out->samples = rec->sampled.samples;
	out->relative_error = sampling__relative_error(&rec->sampled);
}

static int build_suspects(struct session *s, struct report_build *b)
{
	size_t nrec, nsus, nframes = 0, f = 0;
	const struct site_record *recs = drain__records(s->drain, &nrec);

	b->sites = calloc(nrec + 1, sizeof(*b->sites));
	if (!b->sites)
		return -ENOMEM;
	for (size_t i = 0; i < nrec; i++)
		b->sites[i] = recs[i].live;
	nsus = analysis__rank_suspects(b->sites, nrec);
	for (size_t i = 0; i < nsus; i++) {
		const struct site_record *rec =
			drain__find_record(s->drain, b->sites[i].pid, b->sites[i].stack_hash);

		nframes += stack_frames(s, b->sites[i].pid, rec->ips, rec->depth, NULL);
	}
	b->suspects = calloc(nsus + 1, sizeof(*b->suspects));
	b->frames = calloc(nframes + 1, sizeof(*b->frames));
	if (!b->suspects || !b->frames)
		return -ENOMEM;
	for (size_t i = 0; i < nsus; i++) {
		const struct site_live *site = &b->sites[i];
		const struct site_record *rec = drain__find_record(s->drain, site->pid, site->stack_hash);
		struct report_suspect *out = &b->suspects[i];

		out->pid = site->pid;
		out->kind = rec->kind == STRAY_KIND_MMAP ? "mmap" : "heap";
		out->bytes = site->bytes;
		out->allocations = site->allocations;
		out->oldest_age_s = site->oldest_ts_ns < s->end_ns ? (s->end_ns - site->oldest_ts_ns) / 1e9 : 0;
		out->total_bytes = site->total_bytes;
		out->total_allocations = site->total_allocations;
		out->frees = site->frees;
		fill_sampling(s, rec, out);
		monitor__assess_suspect(s->monitor, site, window_s(s), s->end_ns, window_ended_by_exit(s), out);
		out->frames = &b->frames[f];
		out->nframes = stack_frames(s, site->pid, rec->ips, rec->depth, out->frames);
		f += out->nframes;
	}
	rank_by_score(b->suspects, nsus);
	b->r.suspects = b->suspects;
	b->r.nsuspects = nsus;
	return 0;
}

static void fill_notes(struct session *s, struct report_build *b)
{
	size_t n = 0;

	if (s->opts->pid)
		b->notes[n++] = "allocations made before stray attached are not reported; frees of them "
				"are counted as unmatched_frees";
	if (s->opts->min_age_s > 0)
		b->notes[n++] = "suspects list only blocks older than --min-age; totals count every "
				"outstanding block";
	if (s->opts->unwind_mode == STRAY_UNWIND_FP)
		b->notes[n++] = "stacks are unwound with frame pointers: frames inside code built without "
				"them may be missing";
	else
		b->notes[n++] = "stacks are unwound with the modules' call-frame information; a module "
				"loaded after an allocation was made (dlopen) is covered from the next drain";
	if (s->timers_unavailable)
		b->notes[n++] = s->timers_unavailable;
	if (b->r.untracked_allocations)
		b->notes[n++] = "the outstanding-allocation map was full: totals.untracked_allocations blocks "
				"(totals.untracked_bytes bytes) were not tracked and are missing from the "
				"outstanding figures and suspects; frees of them count as unmatched_frees; "
				"raise --max-allocs";
	if (s->opts->sample_bytes)
		b->notes[n++] = "--sample: heap bytes and counts are estimates from sampled blocks; "
				"allocations and frees in totals count samples; mmap regions are exact";
	b->r.notes = b->notes;
	b->r.nnotes = n;
}

/* Timers still held, grouped by creation stack, symbolized. */
static int build_timers(struct session *s, struct report_build *b)
{
	size_t ngroups = 0, nframes = 0, f = 0, nit = 0;
	int err;

	if (!s->timers)
		return 0;
	err = timers__collect(s->timers, &b->groups, &ngroups);
	if (!err)
		err = timers__itimers(s->timers, &b->itimer_states, &nit);
	if (err)
		return err;
	for (size_t i = 0; i < ngroups; i++)
		nframes += stack_frames(s, b->groups[i].pid, b->groups[i].ips, b->groups[i].depth, NULL);
	b->timers = calloc(ngroups + 1, sizeof(*b->timers));
	b->timer_frames = calloc(nframes + 1, sizeof(*b->timer_frames));
	b->itimers = calloc(nit + 1, sizeof(*b->itimers));
	if (!b->timers || !b->timer_frames || !b->itimers)
		return -ENOMEM;
	for (size_t i = 0; i < ngroups; i++) {
		const struct timer_group *g = &b->groups[i];

		b->timers[i] = (struct report_timer){
			.kind = g->kind, .pid = g->pid, .outstanding = g->outstanding,
			.armed = g->armed, .periodic = g->periodic, .interval_ns = g->interval_ns,
			.frames = &b->timer_frames[f],
		};
		b->timers[i].nframes = stack_frames(s, g->pid, g->ips, g->depth, b->timers[i].frames);
		f += b->timers[i].nframes;
	}
	for (size_t i = 0; i < nit; i++)
		b->itimers[i] = (struct report_itimer){
			.pid = b->itimer_states[i].pid, .which = b->itimer_states[i].which,
			.value_ns = b->itimer_states[i].value_ns, .interval_ns = b->itimer_states[i].interval_ns,
		};
	b->r.timers = b->timers;
	b->r.ntimers = ngroups;
	b->r.itimers = b->itimers;
	b->r.nitimers = nit;
	timers__totals(s->timers, &b->r.timers_created, &b->r.timers_released);
	return 0;
}

static int build_report(struct session *s, struct report_build *b)
{
	uint64_t kc[STRAY_CNT_NR];
	int err;

	memset(b, 0, sizeof(*b));
	err = drain__kernel_counters(s->drain, kc);
	if (err)
		return err;
	b->r.pids = s->pids;
	b->r.npids = s->npids;
	b->r.command = s->opts->command;
	b->r.has_exit_code = s->has_exit_code;
	b->r.exit_code = s->exit_status;
	b->r.duration_s = (s->end_ns - s->start_ns) / 1e9;
	fill_counters(s, b, kc);
	monitor__fill_report(s->monitor, &b->r);
	fill_notes(s, b);
	b->r.sample_bytes = s->opts->sample_bytes;
	err = build_timers(s, b);
	return err ? err : build_suspects(s, b);
}

static void free_report(struct report_build *b)
{
	free(b->sites);
	free(b->suspects);
	free(b->frames);
	free(b->groups);
	free(b->timers);
	free(b->timer_frames);
	free(b->itimer_states);
	free(b->itimers);
}

static int fill_json(FILE *out, void *ctx)
{
	return report__write_json(ctx, out);
}

/* Harvest the live processes' outstanding blocks as of now (exited ones
 * are already frozen in the drain). */
static void take_snapshot(struct session *s)
{
	s->end_ns = now_ns();
	drain__begin_snapshot(s->drain);
	drain__harvest(s->drain, -1, s->opts->min_age_s * NS_PER_S, s->end_ns, false);
}

static bool any_leak_verdict(const struct report *r)
{
	for (size_t i = 0; i < r->nsuspects; i++)
		if (r->suspects[i].verdict && !strcmp(r->suspects[i].verdict, "leak"))
			return true;
	return false;
}

/*
 * Write the JSON report (atomically) and, unless only_json, the text
 * report. *leak tells whether a suspect has the verdict "leak". Returns 0
 * or -errno after printing one line.
 */
static int write_reports(struct session *s, bool only_json, bool *leak)
{
	struct report_build b;
	int err = build_report(s, &b);

	if (err) {
		fprintf(stderr, "stray: cannot build the report: %s\n", strerror(-err));
		goto out;
	}
	*leak = any_leak_verdict(&b.r);
	if (s->opts->json_path) {
		err = output__write_atomic(s->opts->json_path, fill_json, &b.r);
		if (err) {
			fprintf(stderr, "stray: cannot write %s: %s\n", s->opts->json_path, strerror(-err));
			goto out;
		}
	}
	if (!only_json) {
		err = report__write_text(&b.r, stdout, s->opts->top);
		fflush(stdout);
	}
out:
	free_report(&b);
	return err;
}

/* --report-every: rewrite the JSON report with the latest state. A failed
 * rewrite is reported and retried at the next period, never fatal. */
static void periodic_report(struct session *s)
{
	uint64_t t = now_ns();
	bool leak;

	if (s->opts->report_every_s <= 0 || !s->opts->json_path ||
	    t - s->last_report_ns < s->opts->report_every_s * NS_PER_S)
		return;
	s->last_report_ns = t;
	take_snapshot(s);
	write_reports(s, true, &leak);
	/* A report is built as one json-c tree, whose size grows with the
	 * heap samples: give its pages back, or glibc keeps the largest
	 * report's worth of memory in stray's RSS for good. */
	malloc_trim(0);
}

/* ---- set-up and tear-down ---- */

static int start_targets(struct session *s, int *pidfd)
{
	char state;
	int err;

	*pidfd = -1;
	if (s->opts->command) {
		s->tracee = tracee__spawn(s->opts->command, &tracee_ops, s, s->opts->max_procs);
		if (!s->tracee) {
			fprintf(stderr, "stray: %s: %s\n", s->opts->command[0],
				errno == ENOENT ? "command not found" : strerror(errno));
			return -1;
		}
		return 0;
	}
	/* A pidfd becomes readable when the process exits, without racing
	 * against PID reuse. */
	*pidfd = syscall(SYS_pidfd_open, s->opts->pid, 0);
	if (*pidfd < 0) {
		fprintf(stderr, "stray: no process with PID %d\n", s->opts->pid);
		return -1;
	}
	err = procfs__state(s->opts->pid, &state) ?: (state == 'Z' ? -ESRCH : 0);
	if (!err)
		err = attach(s, s->opts->pid, false);
	/* A process that died meanwhile has no maps, which would otherwise
	 * read as "no allocator". */
	if (err == -ESRCH || (err && (kill(s->opts->pid, 0) ||
				      (!procfs__state(s->opts->pid, &state) && state == 'Z')))) {
		fprintf(stderr, "stray: process %d exited before probes could be attached\n", s->opts->pid);
		return -1;
	}
	if (err) {
		report_attach_error(s->opts->pid, "target", err);
		return -1;
	}
	return 0;
}

static void finish_window(struct session *s)
{
	s->end_ns = now_ns();
	if (s->tracee && tracee__root_exited(s->tracee)) {
		s->has_exit_code = true;
		s->exit_status = tracee__root_status(s->tracee);
	}
	drain_interval(s);
	/* An attached process that is gone: what it held at exit is frozen. */
	if (s->timers && s->opts->pid && kill(s->opts->pid, 0))
		timers__on_exit(s->timers, s->opts->pid);
	take_snapshot(s);
}

/* Timer tracing is on by default but never fatal: without it (--no-timers,
 * or a kernel that cannot load it) memory is still traced, and the report
 * says why timers are missing. Loaded by the prep thread. */
static void take_timers(struct session *s)
{
	if (s->opts->no_timers)
		return;
	s->timers = s->prep.timers;
	s->prep.timers = NULL;
	if (!s->timers) {
		s->timers_unavailable = "timers are not traced: the kernel side could not be loaded";
		logv(s, "timers off: %s: %s", s->prep.timers_errmsg ? s->prep.timers_errmsg : "timers",
		     strerror(s->prep.timers_err));
	}
}

/*
 * The BPF maps exist and the probe programs are being verified on other
 * threads (loader_opts.maps_ready): build the unwind tables meanwhile, for
 * the -p target every module it maps (attach() adds what it maps since).
 * The prep's target thread is done by now, near enough: waiting for it
 * keeps libdw to one thread.
 */
static void on_maps_ready(void *ctx, struct loader *l)
{
	struct session *s = ctx;

	if (s->opts->unwind_mode == STRAY_UNWIND_FP)
		return;
	s->unwind = unwind_tables__new(loader__unwind_rows_fd(l), loader__max_unwind_rows(l),
				       loader__unwind_modules_fd(l), loader__max_unwind_modules(l));
	if (s->unwind)
		unwind_tables__seed_vmas(s->unwind, loader__unwind_vma_cache_fd(l));
	attach_prep__join_target(&s->prep);
	if (s->unwind && s->opts->pid)
		unwind_tables__add_process(s->unwind, s->opts->pid, false);
}

static int session_open(struct session *s, const struct session_opts *opts)
{
	struct loader_opts lo = {
		.max_allocs = opts->max_allocs,
		.max_sites = opts->max_sites,
		.max_targets = opts->max_procs,
		.follow = opts->follow && opts->pid,
		.sample_bytes = opts->sample_bytes,
		.unwind_mode = opts->unwind_mode,
		.max_depth = opts->max_depth,
		.maps_ready = on_maps_ready,
		.maps_ready_ctx = s,
	};
	struct monitor_opts mo = {
		.growth_alert_bytes_per_hour = opts->growth_alert_bph,
		.heap_warn_bytes = opts->heap_warn_bytes,
		.heap_critical_bytes = opts->heap_critical_bytes,
		.oom_horizon_s = opts->oom_horizon_s,
		.alerts_path = opts->alerts_path,
		.max_sites = opts->max_sites,
		.tracked_from_start = opts->command != NULL,
	};
	const char *errmsg;
	uint64_t t = now_ns();

	memset(s, 0, sizeof(*s));
	s->opts = opts;
	s->pids = calloc(opts->max_procs, sizeof(*s->pids));
	s->live = calloc(opts->max_procs, sizeof(*s->live));
	s->sym = symbolizer__new();
	s->drain = NULL;
	if (!s->pids || !s->live || !s->sym) {
		fprintf(stderr, "stray: out of memory\n");
		return -1;
	}
	/* The other core loads the timers and reads the target meanwhile. */
	s->prep = (struct attach_prep){
		.pid = opts->pid, .sym = s->sym, .load_timers = !opts->no_timers,
		.timers_opts = { .max_targets = opts->max_procs },
	};
	attach_prep__start(&s->prep);
	s->loader = loader__new(&lo, &errmsg);
	if (!s->loader) {
		fprintf(stderr, "stray: %s: %s\n", errmsg, strerror(errno));
		return -1;
	}
	log_phase(s, "BPF load", &t);
	logv(s, "probes attached as %s links", loader__attach_mode(s->loader));
	if (opts->unwind_mode != STRAY_UNWIND_FP && !s->unwind) { /* (on_maps_ready) */
		fprintf(stderr, "stray: out of memory\n");
		return -1;
	}
	/* Records: one per site, plus room for exited children's sites. */
	s->drain = drain__new(s->loader, (size_t)opts->max_sites * 2);
	if (!s->drain) {
		fprintf(stderr, "stray: out of memory\n");
		return -1;
	}
	if (lo.follow && !(s->follow = follow__new(s->loader, &follow_ops, s))) {
		fprintf(stderr, "stray: cannot read the --follow events: %s\n", strerror(errno));
		return -1;
	}
	log_phase(s, "session set-up", &t);
	attach_prep__join(&s->prep);
	take_timers(s);
	log_phase(s, "wait for the prep threads (timers BPF load; -p: allocator, maps)", &t);
	s->monitor = monitor__new(&mo, s->drain, s->sym);
	if (!s->monitor) {
		fprintf(stderr, "stray: %s: %s\n", opts->alerts_path ? opts->alerts_path : "monitor",
			strerror(errno));
		return -1;
	}
	return 0;
}

static void session_close(struct session *s)
{
	attach_prep__join(&s->prep); /* it uses s->sym */
	timers__free(s->prep.timers);
	allocator__clear(&s->prep.alloc);
	tracee__free(s->tracee);
	follow__free(s->follow);
	monitor__free(s->monitor);
	timers__free(s->timers);
	drain__free(s->drain);
	unwind_tables__free(s->unwind);
	loader__free(s->loader);
	symbolizer__free(s->sym);
	free(s->pids);
	free(s->live);
}

int session__run(const struct session_opts *opts)
{
	struct session *s = calloc(1, sizeof(*s));
	int sfd = -1, pidfd = -1, status = 1;
	uint64_t open_ns = now_ns();
	bool leak = false;
	sigset_t mask;

	if (!s) {
		fprintf(stderr, "stray: out of memory\n");
		return 1;
	}
	sfd = open_signalfd(&mask);
	if (sfd < 0) {
		fprintf(stderr, "stray: cannot set up signal handling: %s\n", strerror(errno));
		goto out;
	}
	if (session_open(s, opts) || start_targets(s, &pidfd))
		goto out;
	s->start_ns = s->last_report_ns = now_ns();
	if (opts->pid) /* the attach cost, BPF load included (issue 7) */
		logv(s, "attached to pid %d: %.1f ms after start", opts->pid, (s->start_ns - open_ns) / 1e6);
	/* What the attach left for later, while the targets surely live. */
	open_ns = now_ns();
	symbolizer__find_debuginfo(s->sym);
	log_phase(s, "debug info search (after the attach)", &open_ns);
	if (event_loop(s, sfd, pidfd) || s->failed)
		goto out;
	finish_window(s);
	if (write_reports(s, false, &leak))
		goto out;
	status = opts->command ? (s->has_exit_code ? s->exit_status : 0) : 0;
	if (opts->fail_on_leak && leak)
		status = STRAY_EXIT_LEAK;
out:
	session_close(s);
	free(s);
	if (pidfd >= 0)
		close(pidfd);
	if (sfd >= 0)
		close(sfd);
	return status;
}
