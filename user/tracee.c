// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tracee.h"

struct proc {
	int pid;      /* 0: free slot */
	bool attached;/* probes are in place: it may run */
	bool stopped; /* sitting in its initial stop, waiting for attach */
};

struct tracee {
	const struct tracee_ops *ops;
	void *ctx;
	int root, root_status, exec_errno;
	bool root_exited, root_execed;
	int errpipe; /* CLOEXEC pipe: the child writes errno here if exec fails */
	unsigned long untraced;
	int max_procs;
	struct proc *procs;
};

static const int seize_options = PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_TRACEFORK |
				 PTRACE_O_TRACEVFORK;

/* execvp's PATH search, done before fork so "not found" is stray's error. */
static int find_command(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	char *dirs, *dir, *save = NULL;
	int err = -ENOENT;

	if (strchr(name, '/')) {
		snprintf(out, size, "%s", name);
		return access(out, X_OK) ? -errno : 0;
	}
	dirs = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	if (!dirs)
		return -ENOMEM;
	for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		struct stat st;

		snprintf(out, size, "%s/%s", *dir ? dir : ".", name);
		if (!stat(out, &st) && S_ISREG(st.st_mode) && !access(out, X_OK)) {
			err = 0;
			break;
		}
	}
	free(dirs);
	return err;
}

/* In the child: wait until the parent has seized us, then exec. Only
 * async-signal-safe calls between fork and exec. */
static void child_exec(const char *path, char *const argv[], int go_fd, int err_fd)
{
	sigset_t none;
	char c;
	int e;

	/* stray blocks the signals it reads through a signalfd; the command
	 * must start with the usual empty mask. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	while (read(go_fd, &c, 1) < 0 && errno == EINTR)
		;
	execv(path, argv);
	e = errno;
	if (write(err_fd, &e, sizeof(e)) < 0)
		_exit(127);
	_exit(127);
}

static struct proc *proc_find(struct tracee *t, int pid, bool create)
{
	struct proc *free_slot = NULL;

	for (int i = 0; i < t->max_procs; i++) {
		if (t->procs[i].pid == pid)
			return &t->procs[i];
		if (!t->procs[i].pid && !free_slot)
			free_slot = &t->procs[i];
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->pid = pid;
	return free_slot;
}

struct tracee *tracee__spawn(char *const argv[], const struct tracee_ops *ops, void *ctx,
			     int max_procs)
{
	char path[PATH_MAX];
	int go[2] = { -1, -1 }, errp[2] = { -1, -1 };
	struct tracee *t;
	int err;

	err = find_command(argv[0], path, sizeof(path));
	if (err) {
		errno = -err;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t || !(t->procs = calloc(max_procs, sizeof(*t->procs)))) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	t->ops = ops;
	t->ctx = ctx;
	t->max_procs = max_procs;
	t->errpipe = -1;
	if (pipe2(go, O_CLOEXEC) || pipe2(errp, O_CLOEXEC))
		goto fail;
	t->root = fork();
	if (t->root < 0)
		goto fail;
	if (t->root == 0) {
		close(go[1]);
		close(errp[0]);
		child_exec(path, argv, go[0], errp[1]);
	}
	close(go[0]);
	close(errp[1]);
	t->errpipe = errp[0];
	if (ptrace(PTRACE_SEIZE, t->root, 0, seize_options)) {
		err = errno;
		kill(t->root, SIGKILL);
		waitpid(t->root, NULL, 0);
		close(go[1]);
		errno = err;
		goto fail_late;
	}
	proc_find(t, t->root, true)->attached = true; /* probes go in at its exec */
	/* Closing the go pipe releases the child into execv(). */
	close(go[1]);
	return t;
fail:
	err = errno;
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	errno = err;
fail_late:
	err = errno;
	if (t->errpipe >= 0)
		close(t->errpipe);
	free(t->procs);
	free(t);
	errno = err;
	return NULL;
}

static void resume(int pid, int sig)
{
	/* ESRCH: the process was killed meanwhile; its exit is reported next. */
	ptrace(PTRACE_CONT, pid, 0, sig);
}

static void on_new_child(struct tracee *t, int parent, int child)
{
	struct proc *p = proc_find(t, child, true);

	if (!p || t->ops->on_fork(t->ctx, parent, child)) {
		t->untraced++;
		if (p)
			p->pid = 0;
		/* Not followed: let it go. It may not be in its stop yet, in
		 * which case the detach fails and it is detached at its stop. */
		ptrace(PTRACE_DETACH, child, 0, 0);
		return;
	}
	p->attached = true;
	if (p->stopped) {
		p->stopped = false;
		resume(child, 0);
	}
}

static void on_exec_event(struct tracee *t, int pid)
{
	int err = t->ops->on_exec(t->ctx, pid);

	if (pid == t->root)
		t->root_execed = true;
	if (err && pid == t->root) {
		t->exec_errno = -err;
		kill(pid, SIGKILL);
	} else if (err) {
		t->untraced++;
	}
	resume(pid, 0);
}

static void on_event_stop(struct tracee *t, int pid, int sig, int event)
{
	struct proc *p = proc_find(t, pid, false);
	unsigned long msg = 0;

	switch (event) {
	case PTRACE_EVENT_EXEC:
		on_exec_event(t, pid);
		return;
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
		ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
		on_new_child(t, pid, (int)msg);
		resume(pid, 0);
		return;
	case PTRACE_EVENT_EXIT:
		t->ops->on_exit_stop(t->ctx, pid);
		resume(pid, 0);
		return;
	case PTRACE_EVENT_STOP:
		if (!p) {
			/* A new child's first stop, before its parent's fork
			 * event: hold it until the parent's event attaches it. */
			p = proc_find(t, pid, true);
			if (p)
				p->stopped = true;
			else
				ptrace(PTRACE_DETACH, pid, 0, 0);
			return;
		}
		if (!p->attached) {
			p->stopped = true;
			return;
		}
		/* A group-stop (SIGSTOP, SIGTSTP, ...): keep it stopped but
		 * let us see the SIGCONT, as a debugger would. */
		if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
			ptrace(PTRACE_LISTEN, pid, 0, 0);
		else
			resume(pid, 0);
		return;
	default:
		/* Signal-delivery stop: deliver the signal unchanged. */
		resume(pid, sig);
	}
}

static void on_gone(struct tracee *t, int pid, int status)
{
	struct proc *p = proc_find(t, pid, false);

	if (p)
		p->pid = 0;
	t->ops->on_exited(t->ctx, pid, status);
	if (pid != t->root)
		return;
	t->root_exited = true;
	t->root_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (!t->root_execed && t->exec_errno == 0) {
		int e = 0;

		if (read(t->errpipe, &e, sizeof(e)) == sizeof(e))
			t->exec_errno = e;
	}
}

int tracee__handle_events(struct tracee *t)
{
	int status, pid;

	while ((pid = waitpid(-1, &status, __WALL | WNOHANG)) > 0) {
		if (WIFEXITED(status) || WIFSIGNALED(status))
			on_gone(t, pid, status);
		else if (WIFSTOPPED(status))
			on_event_stop(t, pid, WSTOPSIG(status), status >> 16);
	}
	return t->exec_errno ? -t->exec_errno : 0;
}

int tracee__root_pid(const struct tracee *t)
{
	return t->root;
}

bool tracee__root_exited(const struct tracee *t)
{
	return t->root_exited;
}

int tracee__root_status(const struct tracee *t)
{
	return t->root_status;
}

unsigned long tracee__untraced(const struct tracee *t)
{
	return t->untraced;
}

void tracee__free(struct tracee *t)
{
	if (!t)
		return;
	/* Tracees are detached by the kernel when the tracer exits; detach
	 * the stopped ones now so they do not wait for that. */
	for (int i = 0; i < t->max_procs; i++)
		if (t->procs[i].pid)
			ptrace(PTRACE_DETACH, t->procs[i].pid, 0, 0);
	if (t->errpipe >= 0)
		close(t->errpipe);
	free(t->procs);
	free(t);
}
