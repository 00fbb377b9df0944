// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * stray's timer tracer: timerfds, POSIX timers, setitimer/alarm and libuv
 * timer handles of the target processes, kept in kernel maps with their
 * creation stacks. User space (user/timers.c) drains, reconciles against
 * /proc/PID/fdinfo and groups.
 *
 * Only BTF raw tracepoints (tp_btf) and uprobes are used: they need no
 * tracefs or debugfs, and they are what this class of kernel offers (on the
 * 6.18 kernel stray is developed on, fentry/fexit loads fail with EPERM and
 * there is no kprobe PMU). The timer syscalls are seen at libc's wrappers
 * (timerfd_create, timerfd_settime, timer_create, timer_settime,
 * timer_delete, setitimer, alarm) with pid-filtered uprobe_multi links on
 * the targets only: arguments kept at entry, acted on at a successful
 * return. No program runs on the syscall path of other processes (a
 * raw_syscalls:sys_exit program would put every thread of the machine on
 * the slow syscall-exit path). Direct syscalls that bypass libc are not
 * seen at creation.
 *
 * A timerfd lives until the last reference to its struct file goes, which
 * close, close_range, dup2/dup3 over it, close-on-exec, exit and a child's
 * copy all reach through one place: the struct file is freed, which the
 * kmem_cache_free tracepoint shows (files are freed directly since the
 * filp cache became SLAB_TYPESAFE_BY_RCU, v6.7). So timerfds are keyed by
 * their struct file (never by fd number, which is reused), mapped from the
 * fd at timerfd_create's return.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "stray.h"
#include "stack.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NSEC_PER_SEC 1000000000LL
#define NSEC_PER_USEC 1000LL
#define NSEC_PER_MSEC 1000000LL

/* Processes being traced (tgid -> unused), filled by timers__attach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

/* Outstanding timers. Not LRU, for the same reason as stray's allocs map:
 * eviction would drop exactly the old timers that leak. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAY_DEFAULT_MAX_TIMERS);
	__type(key, struct stray_timer_key);
	__type(value, struct stray_timer);
} timers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAY_DEFAULT_MAX_TIMER_SITES);
	__type(key, struct stray_site_key);
	__type(value, struct stray_timer_site);
} timer_sites SEC(".maps");

/* struct file * of a tracked timerfd -> its creating process. The release
 * hook and timerfd_settime (possibly from a child holding a copy) find the
 * timer's key through it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAY_DEFAULT_MAX_TIMERS);
	__type(key, __u64);
	__type(value, struct stray_timer_owner);
} owners SEC(".maps");

/* Thread id -> the libc timer wrapper it is in: arguments and creation
 * stack taken at the entry, used by the return probe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRAY_MAX_TIMER_PENDING);
	__type(key, __u32);
	__type(value, struct stray_timer_pending);
} pending_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* tgid */
	__type(value, struct stray_itimers);
} itimers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stray_timer_counters);
} timer_counters SEC(".maps");

/* A stray_timer_site is too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stray_timer_site);
} timer_scratch SEC(".maps");

static __always_inline void count(enum stray_timer_counter c)
{
	__u32 zero = 0;
	struct stray_timer_counters *cs = bpf_map_lookup_elem(&timer_counters, &zero);

	if (cs && c < STRAY_TCNT_NR)
		cs->v[c]++;
}

static __always_inline bool is_target(__u32 tgid)
{
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

static __always_inline __u64 current_mm(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return (__u64)BPF_CORE_READ(task, mm);
}

/*
 * Capture the current user stack and find or create its site; returns the
 * stack hash (0 if no site could be kept). Called where the creating
 * function has just been entered (a uprobe on its first instruction): its
 * return address is at the user stack pointer and not yet in the frame
 * chain, which starts at the caller's frame (glibc's timer_create later
 * uses %rbp as a scratch register, so only its entry gives the caller). So the first frame (inside the creating
 * function) is replaced by that return address, and the stack reads
 * caller, caller's caller, ... as for allocations.
 */
static __always_inline __u64 capture_site(void *ctx, __u32 tgid, __u64 user_sp)
{
	struct stray_site_key key = { .tgid = tgid };
	struct stray_timer_site *s, *found;
	__u64 ret_addr = 0;
	__u32 zero = 0;
	long n;

	s = bpf_map_lookup_elem(&timer_scratch, &zero);
	if (!s)
		return 0;
	n = bpf_get_stack(ctx, s->ips, sizeof(s->ips), BPF_F_USER_STACK);
	if (n < 0) {
		count(STRAY_TCNT_STACK_ERRORS);
		n = 0;
	}
	s->depth = n / sizeof(__u64);
	if (user_sp && !bpf_probe_read_user(&ret_addr, sizeof(ret_addr), (void *)user_sp) && ret_addr) {
		s->ips[0] = ret_addr;
		if (!s->depth)
			s->depth = 1;
	}
	key.stack_hash = hash_stack(tgid, s->ips, s->depth);
	s->last_ns = bpf_ktime_get_ns();

	found = bpf_map_lookup_elem(&timer_sites, &key);
	if (found) {
		if (found->depth != s->depth || (s->depth && found->ips[0] != s->ips[0]))
			count(STRAY_TCNT_STACK_COLLISIONS);
		found->last_ns = s->last_ns;
		return key.stack_hash;
	}
	if (bpf_map_update_elem(&timer_sites, &key, s, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&timer_sites, &key)) {
		count(STRAY_TCNT_SITE_MAP_FULL);
		return 0;
	}
	return key.stack_hash;
}

static __always_inline bool record_timer(const struct stray_timer_key *key, const struct stray_timer *t)
{
	if (bpf_map_lookup_elem(&timers, key))
		count(STRAY_TCNT_STALE_KEY);
	if (bpf_map_update_elem(&timers, key, t, BPF_ANY)) {
		count(STRAY_TCNT_MAP_FULL);
		return false;
	}
	count(STRAY_TCNT_CREATED);
	return true;
}

/* The struct file behind fd in task's fd table (NULL if none). */
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **arr;
	struct file *f = NULL;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]))
		return NULL;
	return f;
}

/* A timerfd is an anonymous-inode file named "[timerfd]". */
static __always_inline bool is_timerfd(struct file *f)
{
	static const char want[] = "[timerfd]";
	const unsigned char *name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	char buf[sizeof(want)] = {};

	if (!name || bpf_probe_read_kernel(buf, sizeof(buf), name))
		return false;
	for (int i = 0; i < sizeof(want); i++)
		if (buf[i] != want[i])
			return false;
	return true;
}

/* Arm/disarm from a user struct itimerspec (interval first, then value). */
static __always_inline void set_from_itimerspec(struct stray_timer *t, const void *uptr, int flags)
{
	struct __kernel_itimerspec its = {};

	if (uptr && bpf_probe_read_user(&its, sizeof(its), uptr))
		return;
	t->value_ns = its.it_value.tv_sec * NSEC_PER_SEC + its.it_value.tv_nsec;
	t->interval_ns = its.it_interval.tv_sec * NSEC_PER_SEC + its.it_interval.tv_nsec;
	t->set_ns = bpf_ktime_get_ns();
	/* TFD_TIMER_ABSTIME and TIMER_ABSTIME are both 1. */
	if (flags & 1)
		t->flags |= STRAY_TIMER_F_ABSTIME;
	else
		t->flags &= ~STRAY_TIMER_F_ABSTIME;
}

/* ---- libc wrapper calls in progress ---- */

/*
 * The call of fn this thread entered, taken out of pending_stacks, if the
 * return probe now firing is that call's return: at a return the return
 * address has been popped, so the stack pointer is the entry's plus 8. A
 * pending entry of another call (one interrupted by a signal handler that
 * called a probed wrapper, or a call whose return was missed) is dropped.
 */
static __always_inline bool take_pending(struct pt_regs *ctx, __u32 fn, struct stray_timer_pending *out)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct stray_timer_pending *p = bpf_map_lookup_elem(&pending_stacks, &tid);

	if (!p)
		return false;
	*out = *p;
	bpf_map_delete_elem(&pending_stacks, &tid);
	return out->fn == fn && out->sp + 8 == PT_REGS_SP(ctx);
}

/* ---- timerfd ---- */

/* timerfd_create(clockid, flags) returned fd. */
static __always_inline int timerfd_created(const struct stray_timer_pending *p, int fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct stray_timer t = {};
	struct stray_timer_key key = { .tgid = tgid, .kind = STRAY_TIMER_TIMERFD };
	struct stray_timer_owner owner = { .tgid = tgid };
	struct file *file;

	if (fd < 0)
		return 0;
	/* Another thread may have closed or replaced the new fd already. */
	file = fd_file(bpf_get_current_task_btf(), fd);
	if (!file || !is_timerfd(file)) {
		count(STRAY_TCNT_FD_RACE);
		return 0;
	}
	key.id = (__u64)file;
	t.stack_hash = p->stack_hash;
	t.created_ns = bpf_ktime_get_ns();
	t.mm = current_mm();
	t.clockid = p->args[0];
	t.fd = fd;
	if (bpf_map_update_elem(&owners, &key.id, &owner, BPF_ANY)) {
		count(STRAY_TCNT_OWNER_MAP_FULL);
		return 0;
	}
	if (!record_timer(&key, &t))
		bpf_map_delete_elem(&owners, &key.id);
	return 0;
}

/* timerfd_settime(fd, flags, new, old) returned ret. The fd may be a copy
 * inherited by a traced child: the owners map finds the timer's key. */
static __always_inline int timerfd_set(const struct stray_timer_pending *p, int ret)
{
	struct stray_timer_key key = { .kind = STRAY_TIMER_TIMERFD };
	struct stray_timer_owner *owner;
	struct stray_timer *t;
	struct file *file;

	if (ret != 0)
		return 0;
	file = fd_file(bpf_get_current_task_btf(), (int)p->args[0]);
	if (!file)
		return 0;
	key.id = (__u64)file;
	owner = bpf_map_lookup_elem(&owners, &key.id);
	if (!owner)
		return 0;
	key.tgid = owner->tgid;
	t = bpf_map_lookup_elem(&timers, &key);
	if (t)
		set_from_itimerspec(t, (void *)p->args[2], p->args[1]);
	return 0;
}

/*
 * A struct file is freed: if it is a tracked timerfd, its last reference
 * went. This is a release, except when the process that created it drops
 * it while leaving its address space (exit: exit_mm runs before
 * exit_files; exec: exec_mmap runs before close-on-exec; deferred fputs
 * run later still): then the creator's window has ended and the timer was
 * held to its end. Such entries stay, flagged, for user space (which has
 * normally frozen and removed them at the ptrace exit stop or at exec
 * already) and are not counted as released.
 *
 * This tracepoint fires for every slab free on the system: objects of
 * another size are rejected with one load before the map lookup.
 */
SEC("tp_btf/kmem_cache_free")
int BPF_PROG(file_free, unsigned long call_site, const void *ptr, const struct kmem_cache *s)
{
	struct stray_timer_key key = { .kind = STRAY_TIMER_TIMERFD, .id = (__u64)ptr };
	struct stray_timer_owner *owner;
	struct stray_timer *t;

	if (!s || s->object_size != bpf_core_type_size(struct file))
		return 0;
	owner = bpf_map_lookup_elem(&owners, &key.id);
	if (!owner)
		return 0;
	key.tgid = owner->tgid;
	bpf_map_delete_elem(&owners, &key.id);
	t = bpf_map_lookup_elem(&timers, &key);
	if (!t)
		return 0;
	if ((bpf_get_current_pid_tgid() >> 32) == key.tgid && current_mm() != t->mm) {
		t->flags |= STRAY_TIMER_F_ENDED;
		count(STRAY_TCNT_ENDED);
		return 0;
	}
	if (bpf_map_delete_elem(&timers, &key) == 0)
		count(STRAY_TCNT_RELEASED);
	return 0;
}

/* ---- POSIX timers ---- */

/*
 * Keyed by the timer_t glibc hands out (read from the caller's pointer at
 * timer_create's return) and takes back in timer_settime/timer_delete: the
 * kernel timer id for signal timers, glibc's own handle for SIGEV_THREAD
 * ones. Both are unique while the timer lives.
 */
static __always_inline int timer_created(const struct stray_timer_pending *p, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct stray_timer_key key = { .tgid = tgid, .kind = STRAY_TIMER_POSIX };
	struct stray_timer t = {};
	__u64 id;

	if (ret != 0 || bpf_probe_read_user(&id, sizeof(id), (void *)p->args[2]))
		return 0;
	key.id = id;
	t.stack_hash = p->stack_hash;
	t.created_ns = bpf_ktime_get_ns();
	t.mm = current_mm();
	t.clockid = p->args[0];
	t.fd = -1;
	record_timer(&key, &t);
	return 0;
}

/* timer_settime(id, flags, new, old) */
static __always_inline int timer_set(const struct stray_timer_pending *p, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct stray_timer_key key = { .tgid = tgid, .kind = STRAY_TIMER_POSIX, .id = p->args[0] };
	struct stray_timer *t;

	if (ret != 0)
		return 0;
	t = bpf_map_lookup_elem(&timers, &key);
	if (t)
		set_from_itimerspec(t, (void *)p->args[2], p->args[1]);
	return 0;
}

static __always_inline int timer_deleted(const struct stray_timer_pending *p, int ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct stray_timer_key key = { .tgid = tgid, .kind = STRAY_TIMER_POSIX, .id = p->args[0] };

	if (ret != 0)
		return 0;
	if (bpf_map_delete_elem(&timers, &key) == 0)
		count(STRAY_TCNT_RELEASED);
	return 0;
}

/* ---- setitimer / alarm: one current state per process and kind ---- */

static __always_inline void set_itimer_slot(struct stray_itimers *it, const int which, __s64 value_ns,
					    __s64 interval_ns)
{
	it->value_ns[which] = value_ns;
	it->interval_ns[which] = interval_ns;
	it->set_ns[which] = bpf_ktime_get_ns();
}

static __always_inline void set_itimer(__u32 tgid, __u32 which, __s64 value_ns, __s64 interval_ns)
{
	struct stray_itimers *it = bpf_map_lookup_elem(&itimers, &tgid);
	struct stray_itimers zero = {};

	if (which > 2)
		return;
	if (!it) {
		if (!value_ns && !interval_ns)
			return;
		if (bpf_map_update_elem(&itimers, &tgid, &zero, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&itimers, &tgid)) {
			count(STRAY_TCNT_ITIMER_MAP_FULL);
			return;
		}
		it = bpf_map_lookup_elem(&itimers, &tgid);
		if (!it)
			return;
	}
	/* Constant indexes: the verifier loses a variable index's bound. */
	switch (which) {
	case 0:
		set_itimer_slot(it, 0, value_ns, interval_ns);
		break;
	case 1:
		set_itimer_slot(it, 1, value_ns, interval_ns);
		break;
	case 2:
		set_itimer_slot(it, 2, value_ns, interval_ns);
		break;
	}
}

/* setitimer(which, new, old) */
static __always_inline int itimer_set(const struct stray_timer_pending *p, int ret)
{
	struct __kernel_old_itimerval v = {};
	void *uptr = (void *)p->args[1];

	if (ret != 0)
		return 0;
	/* A NULL new value disarms (the kernel accepts it, with a warning). */
	if (uptr && bpf_probe_read_user(&v, sizeof(v), uptr))
		return 0;
	set_itimer(bpf_get_current_pid_tgid() >> 32, p->args[0],
		   v.it_value.tv_sec * NSEC_PER_SEC + v.it_value.tv_usec * NSEC_PER_USEC,
		   v.it_interval.tv_sec * NSEC_PER_SEC + v.it_interval.tv_usec * NSEC_PER_USEC);
	return 0;
}

/* ---- user functions: libc's timer wrappers and libuv ---- */

/*
 * Entry probe of every probed user function, attached per process and
 * object with one uprobe_multi link (pid-filtered: only the targets pay
 * for the trap), enum stray_timer_fn as the cookie. At a function's first
 * instruction the return address is at the stack pointer (capture_site
 * puts it first). libc's wrappers keep their arguments (and for the
 * creating ones the stack) for timer_uretprobe; alarm cannot fail and is
 * recorded here.
 */
SEC("uprobe.multi")
int BPF_UPROBE(timer_uprobe)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct stray_timer_key key = { .tgid = tgid, .kind = STRAY_TIMER_UV, .id = PT_REGS_PARM1(ctx) };
	__u64 sp = PT_REGS_SP(ctx);
	struct stray_timer_pending p = { .sp = sp };
	struct stray_timer t = {};
	struct stray_timer *cur;
	__u64 fn = bpf_get_attach_cookie(ctx);

	if (!is_target(tgid))
		return 0;
	switch (fn) {
	case STRAY_TFN_TIMER_CREATE:
	case STRAY_TFN_TIMERFD_CREATE:
		p.stack_hash = capture_site(ctx, tgid, sp);
		/* fallthrough */
	case STRAY_TFN_TIMER_SETTIME:
	case STRAY_TFN_TIMER_DELETE:
	case STRAY_TFN_TIMERFD_SETTIME:
	case STRAY_TFN_SETITIMER:
		p.fn = fn;
		p.args[0] = PT_REGS_PARM1(ctx);
		p.args[1] = PT_REGS_PARM2(ctx);
		p.args[2] = PT_REGS_PARM3(ctx);
		if (bpf_map_update_elem(&pending_stacks, &tid, &p, BPF_ANY))
			count(STRAY_TCNT_PENDING_FULL);
		return 0;
	case STRAY_TFN_ALARM: /* (seconds): replaces ITIMER_REAL, 0 disarms */
		set_itimer(tgid, 0 /* ITIMER_REAL */, (__s64)(__u32)PT_REGS_PARM1(ctx) * NSEC_PER_SEC, 0);
		return 0;
	case STRAY_TFN_UV_TIMER_INIT: /* (loop, handle) */
		key.id = PT_REGS_PARM2(ctx);
		t.stack_hash = capture_site(ctx, tgid, sp);
		t.created_ns = bpf_ktime_get_ns();
		t.mm = current_mm();
		t.clockid = 1; /* libuv's loop time is CLOCK_MONOTONIC */
		t.fd = -1;
		record_timer(&key, &t);
		return 0;
	case STRAY_TFN_UV_TIMER_START: /* (handle, cb, timeout ms, repeat ms) */
		cur = bpf_map_lookup_elem(&timers, &key);
		if (!cur || !PT_REGS_PARM2(ctx)) /* a NULL callback is rejected */
			return 0;
		/* timeout 0 fires on the next loop iteration: still armed. */
		cur->value_ns = PT_REGS_PARM3(ctx) ? (__s64)PT_REGS_PARM3(ctx) * NSEC_PER_MSEC : 1;
		cur->interval_ns = (__s64)PT_REGS_PARM4(ctx) * NSEC_PER_MSEC;
		cur->set_ns = bpf_ktime_get_ns();
		return 0;
	case STRAY_TFN_UV_TIMER_STOP: /* (handle) */
		cur = bpf_map_lookup_elem(&timers, &key);
		if (cur) {
			cur->value_ns = cur->interval_ns = 0;
			cur->set_ns = bpf_ktime_get_ns();
		}
		return 0;
	case STRAY_TFN_UV_CLOSE: /* (handle, cb): any handle type; only tracked timers match */
		if (bpf_map_delete_elem(&timers, &key) == 0)
			count(STRAY_TCNT_RELEASED);
		return 0;
	}
	return 0;
}

/*
 * Return probe of libc's timer wrappers (all but alarm), same cookies:
 * acts on the arguments kept at entry, and only on success (glibc's
 * wrappers return 0, or the new fd, or -1 with errno).
 */
SEC("uretprobe.multi")
int BPF_UPROBE(timer_uretprobe)
{
	__u64 fn = bpf_get_attach_cookie(ctx);
	int ret = (int)PT_REGS_RC(ctx);
	struct stray_timer_pending p;

	if (!take_pending(ctx, fn, &p))
		return 0;
	switch (fn) {
	case STRAY_TFN_TIMERFD_CREATE:
		return timerfd_created(&p, ret);
	case STRAY_TFN_TIMERFD_SETTIME:
		return timerfd_set(&p, ret);
	case STRAY_TFN_TIMER_CREATE:
		return timer_created(&p, ret);
	case STRAY_TFN_TIMER_SETTIME:
		return timer_set(&p, ret);
	case STRAY_TFN_TIMER_DELETE:
		return timer_deleted(&p, ret);
	case STRAY_TFN_SETITIMER:
		return itimer_set(&p, ret);
	}
	return 0;
}

/* A thread that dies inside a probed wrapper leaves its pending call. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(timer_thread_exit, struct task_struct *task)
{
	__u32 tid = BPF_CORE_READ(task, pid);

	bpf_map_delete_elem(&pending_stacks, &tid);
	return 0;
}

/*
 * Reconciliation: which tracked timerfds are in a process's fd table, and
 * under which fd. Run by user space with a pid-filtered task_file iterator;
 * it then reads /proc/PID/fdinfo/FD for the exact timer state.
 */
SEC("iter/task_file")
int timerfd_files(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct file *file = ctx->file;
	struct stray_timer_fdrec rec = {};
	struct stray_timer_owner *owner;
	__u64 key = (__u64)file;

	if (!file)
		return 0;
	owner = bpf_map_lookup_elem(&owners, &key);
	if (!owner)
		return 0;
	rec.file = key;
	rec.owner_tgid = owner->tgid;
	rec.fd = ctx->fd;
	bpf_seq_write(seq, &rec, sizeof(rec));
	return 0;
}
