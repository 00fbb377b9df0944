// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for cgroup__memory. Parsing (v1/v2, mount roots, escapes,
 * nested limits) runs on fake /proc and /sys trees under a temporary
 * sysfs_root, so it needs no privileges; one test reads a real v1 memory
 * cgroup it creates (root only, skipped elsewhere).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cgroup.h"

/* ---- fake trees ---- */

static char uc_root[64];

static void uc_fake_setup(void)
{
	snprintf(uc_root, sizeof(uc_root), "/tmp/stray-uc-XXXXXX");
	cr_assert_not_null(mkdtemp(uc_root));
}

static int uc_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void uc_fake_teardown(void)
{
	nftw(uc_root, uc_rm, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(cgroup_fake, .init = uc_fake_setup, .fini = uc_fake_teardown);

/* Write content to uc_root/rel, creating the directories on the way. */
static void uc_put(const char *rel, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", uc_root, rel);
	for (char *p = path + strlen(uc_root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(content, f);
	fclose(f);
}

#define UC_MOUNTS                                                                       \
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"           \
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"          \
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n" \
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"

static bool uc_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

Test(cgroup_fake, v1_limit_and_usage)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo", UC_MOUNTS);
	uc_put("proc/123/cgroup", "4:memory:/app\n2:cpu:/\n0::/\n");
	uc_put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	uc_put("sys/fs/cgroup/memory/memory.usage_in_bytes", "999999\n");
	uc_put("sys/fs/cgroup/memory/app/memory.limit_in_bytes", "67108864\n");
	uc_put("sys/fs/cgroup/memory/app/memory.usage_in_bytes", "1048576\n");
	cr_assert_eq(cgroup__memory(123, uc_root, &m), 0);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit_bytes, 64 << 20);
	cr_assert_eq(m.usage_bytes, 1 << 20);
	cr_assert(uc_ends_with(m.path, "/sys/fs/cgroup/memory/app"), "path %s", m.path);
	cr_assert_eq(strncmp(m.path, uc_root, strlen(uc_root)), 0, "under sysfs_root");
}

Test(cgroup_fake, v1_huge_limit_is_no_limit)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo", UC_MOUNTS);
	uc_put("proc/5/cgroup", "7:cpu,memory:/\n");
	uc_put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	uc_put("sys/fs/cgroup/memory/memory.usage_in_bytes", "4096\n");
	cr_assert_eq(cgroup__memory(5, uc_root, &m), 0, "the root cgroup has no limit, not ENOENT");
	cr_assert_not(m.has_limit);
	cr_assert_eq(m.usage_bytes, 4096);
	cr_assert(uc_ends_with(m.path, "/sys/fs/cgroup/memory"), "path %s", m.path);

	/* The boundary: 2^62 is no limit, a page below it is one. */
	uc_put("sys/fs/cgroup/memory/memory.limit_in_bytes", "4611686018427387904\n");
	cr_assert_eq(cgroup__memory(5, uc_root, &m), 0);
	cr_assert_not(m.has_limit);
	uc_put("sys/fs/cgroup/memory/memory.limit_in_bytes", "4611686018427383808\n");
	cr_assert_eq(cgroup__memory(5, uc_root, &m), 0);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit_bytes, 4611686018427383808ULL);
}

/* Inside a container the v1 mount shows only the container's subtree:
 * mountinfo's root field is stripped from the /proc/PID/cgroup path. */
Test(cgroup_fake, v1_mount_root_is_stripped)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo",
	       "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n");
	uc_put("proc/77/cgroup", "4:memory:/docker/abc/inner\n");
	uc_put("sys/fs/cgroup/memory/inner/memory.limit_in_bytes", "8388608\n");
	uc_put("sys/fs/cgroup/memory/inner/memory.usage_in_bytes", "100\n");
	cr_assert_eq(cgroup__memory(77, uc_root, &m), 0);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit_bytes, 8 << 20);
	cr_assert(uc_ends_with(m.path, "/sys/fs/cgroup/memory/inner"), "path %s", m.path);

	/* "/docker/abcdef" is not under "/docker/abc". */
	uc_put("proc/78/cgroup", "4:memory:/docker/abcdef\n");
	cr_assert_eq(cgroup__memory(78, uc_root, &m), -ENOENT);
	/* Neither is a path another cgroup namespace shows as "/..". */
	uc_put("proc/self/mountinfo",
	       "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
	uc_put("proc/79/cgroup", "4:memory:/../outside\n");
	cr_assert_eq(cgroup__memory(79, uc_root, &m), -ENOENT);
}

Test(cgroup_fake, mountinfo_escapes)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo",
	       "35 31 0:32 / /sys/fs/cgroup/my\\040mem rw - cgroup cgroup rw,memory\n");
	uc_put("proc/9/cgroup", "4:memory:/a\n");
	uc_put("sys/fs/cgroup/my mem/a/memory.limit_in_bytes", "4096\n");
	uc_put("sys/fs/cgroup/my mem/a/memory.usage_in_bytes", "0\n");
	cr_assert_eq(cgroup__memory(9, uc_root, &m), 0);
	cr_assert_eq(m.limit_bytes, 4096);
	cr_assert(uc_ends_with(m.path, "/my mem/a"), "path %s", m.path);
}

Test(cgroup_fake, v2_max_and_number)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	uc_put("proc/10/cgroup", "0::/svc\n");
	uc_put("sys/fs/cgroup/svc/memory.max", "max\n");
	uc_put("sys/fs/cgroup/svc/memory.current", "123456\n");
	cr_assert_eq(cgroup__memory(10, uc_root, &m), 0);
	cr_assert_not(m.has_limit);
	cr_assert_eq(m.usage_bytes, 123456);
	cr_assert(uc_ends_with(m.path, "/sys/fs/cgroup/svc"), "path %s", m.path);

	uc_put("sys/fs/cgroup/svc/memory.max", "268435456\n");
	cr_assert_eq(cgroup__memory(10, uc_root, &m), 0);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit_bytes, 256 << 20);
}

/* A limit on a parent (a systemd slice, a pod) binds the process too; the
 * level with the least headroom is the one reported. */
Test(cgroup_fake, v2_parent_limit_binds)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	uc_put("proc/11/cgroup", "0::/pod/ctr\n");
	uc_put("sys/fs/cgroup/pod/memory.max", "1048576\n");
	uc_put("sys/fs/cgroup/pod/memory.current", "524288\n");
	uc_put("sys/fs/cgroup/pod/ctr/memory.max", "max\n");
	uc_put("sys/fs/cgroup/pod/ctr/memory.current", "4096\n");
	cr_assert_eq(cgroup__memory(11, uc_root, &m), 0);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit_bytes, 1 << 20);
	cr_assert_eq(m.usage_bytes, 512 << 10);
	cr_assert(uc_ends_with(m.path, "/sys/fs/cgroup/pod"), "path %s", m.path);

	/* A tighter limit on the leaf wins. */
	uc_put("sys/fs/cgroup/pod/ctr/memory.max", "8192\n");
	cr_assert_eq(cgroup__memory(11, uc_root, &m), 0);
	cr_assert_eq(m.limit_bytes, 8192);
	cr_assert(uc_ends_with(m.path, "/sys/fs/cgroup/pod/ctr"), "path %s", m.path);
}

/* The v2 root has no memory.max or memory.current: a process there has no
 * memory cgroup to read (-ENOENT); in v1 the root has both files and reads
 * as "no limit". */
Test(cgroup_fake, v2_root_is_enoent)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	uc_put("proc/12/cgroup", "0::/\n");
	uc_put("sys/fs/cgroup/cgroup.procs", "12\n");
	cr_assert_eq(cgroup__memory(12, uc_root, &m), -ENOENT);
}

/* Hybrid layout: v1 memory wins; a v1 line without a v1 memory mount falls
 * back to v2. */
Test(cgroup_fake, hybrid_prefers_v1_then_v2)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo", UC_MOUNTS);
	uc_put("proc/13/cgroup", "4:memory:/v1\n0::/v2\n");
	uc_put("sys/fs/cgroup/memory/v1/memory.limit_in_bytes", "1000000\n");
	uc_put("sys/fs/cgroup/memory/v1/memory.usage_in_bytes", "1\n");
	uc_put("sys/fs/cgroup/unified/v2/memory.max", "2000000\n");
	uc_put("sys/fs/cgroup/unified/v2/memory.current", "2\n");
	cr_assert_eq(cgroup__memory(13, uc_root, &m), 0);
	cr_assert_eq(m.limit_bytes, 1000000);

	uc_put("proc/self/mountinfo",
	       "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
	cr_assert_eq(cgroup__memory(13, uc_root, &m), 0);
	cr_assert_eq(m.limit_bytes, 2000000);
	cr_assert_eq(m.usage_bytes, 2);
}

Test(cgroup_fake, no_memory_cgroup_is_enoent)
{
	struct cgroup_memory m;

	uc_put("proc/self/mountinfo", UC_MOUNTS);
	uc_put("proc/14/cgroup", "2:cpu:/x\n1:name=systemd:/y\n");
	cr_assert_eq(cgroup__memory(14, uc_root, &m), -ENOENT);
	/* A v1 memory line with the controller mounted nowhere. */
	uc_put("proc/self/mountinfo", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
	uc_put("proc/14/cgroup", "4:memory:/x\n");
	cr_assert_eq(cgroup__memory(14, uc_root, &m), -ENOENT);
	/* "memory" must be a whole controller name. */
	uc_put("proc/self/mountinfo", UC_MOUNTS);
	uc_put("proc/14/cgroup", "4:memoryx:/x\n");
	cr_assert_eq(cgroup__memory(14, uc_root, &m), -ENOENT);
	/* No such process. */
	cr_assert_eq(cgroup__memory(15, uc_root, &m), -ENOENT);
	cr_assert_eq(cgroup__memory(0, uc_root, &m), -EINVAL);
}

/* ---- the real system ---- */

Test(cgroup_real, nonexistent_pid_is_enoent)
{
	struct cgroup_memory m;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	/* Reaped: the pid is free (reuse within this instant is unlikely). */
	cr_assert_eq(cgroup__memory(pid, NULL, &m), -ENOENT);
}

#define UC_V1 "/sys/fs/cgroup/memory"

static char uc_cg[128];
static pid_t uc_child = -1;

static void uc_real_teardown(void)
{
	if (uc_child > 0) {
		kill(uc_child, SIGKILL);
		waitpid(uc_child, NULL, 0);
		uc_child = -1;
	}
	/* rmdir works once the killed child has left the cgroup. */
	if (uc_cg[0])
		rmdir(uc_cg);
	uc_cg[0] = '\0';
}

/* Whether UC_V1 is the mount point of a v1 hierarchy with memory. */
static bool uc_have_v1_memory(void)
{
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0)
		found = strstr(line, " " UC_V1 " ") && strstr(line, " - cgroup ") &&
			strstr(line, "memory");
	free(line);
	fclose(f);
	return found;
}

static void uc_write_file(const char *dir, const char *name, const char *val)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, val, strlen(val)), (ssize_t)strlen(val), "%s: %s", path,
		     strerror(errno));
	close(fd);
}

/*
 * A child joins a fresh v1 memory cgroup with a 64 MiB limit and then
 * touches memory (v1 does not move charges with a process, so the usage
 * must be made after joining).
 */
Test(cgroup_real, v1_cgroup_of_a_child, .fini = uc_real_teardown)
{
	struct cgroup_memory m;
	int ready[2];
	char ok = 0;

	if (!uc_have_v1_memory())
		cr_skip_test("%s is not a v1 memory cgroup mount", UC_V1);
	snprintf(uc_cg, sizeof(uc_cg), UC_V1 "/stray-unit-%d", (int)getpid());
	if (mkdir(uc_cg, 0755)) {
		int err = errno;

		uc_cg[0] = '\0';
		if (err == EACCES || err == EPERM || err == EROFS)
			cr_skip_test("cannot create a memory cgroup: %s", strerror(err));
		cr_assert_fail("mkdir: %s", strerror(err));
	}
	uc_write_file(uc_cg, "memory.limit_in_bytes", "67108864");
	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);

	uc_child = fork();
	cr_assert_geq(uc_child, 0);
	if (uc_child == 0) {
		char path[160], pid[16];
		int fd, len = snprintf(pid, sizeof(pid), "%d", (int)getpid());
		char *mem;

		snprintf(path, sizeof(path), "%s/cgroup.procs", uc_cg);
		fd = open(path, O_WRONLY);
		if (fd < 0 || write(fd, pid, (size_t)len) != len)
			_exit(1);
		mem = malloc(4 << 20);
		if (!mem)
			_exit(1);
		memset(mem, 1, 4 << 20);
		if (write(ready[1], "y", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &ok, 1), 1, "child could not join the cgroup");
	close(ready[0]);

	cr_assert_eq(cgroup__memory(uc_child, NULL, &m), 0);
	cr_assert(m.has_limit);
	cr_assert_eq(m.limit_bytes, UINT64_C(64) << 20);
	cr_assert_gt(m.usage_bytes, 0);
	cr_assert_leq(m.usage_bytes, m.limit_bytes);
	cr_assert_str_eq(m.path, uc_cg);
}

/* A process in the v1 root memory cgroup: its limit is the kernel's
 * "unlimited" value, read as no limit (0, not -ENOENT). */
Test(cgroup_real, v1_root_cgroup_has_no_limit, .fini = uc_real_teardown)
{
	struct cgroup_memory m;
	char pid[16];

	if (!uc_have_v1_memory())
		cr_skip_test("%s is not a v1 memory cgroup mount", UC_V1);
	if (access(UC_V1 "/cgroup.procs", W_OK))
		cr_skip_test("cannot move a process to the root memory cgroup");
	uc_child = fork();
	cr_assert_geq(uc_child, 0);
	if (uc_child == 0) {
		for (;;)
			pause();
	}
	snprintf(pid, sizeof(pid), "%d", (int)uc_child);
	uc_write_file(UC_V1, "cgroup.procs", pid);

	cr_assert_eq(cgroup__memory(uc_child, NULL, &m), 0);
	cr_assert_not(m.has_limit);
	cr_assert_eq(m.limit_bytes, 0);
	cr_assert_gt(m.usage_bytes, 0);
	cr_assert_str_eq(m.path, UC_V1);
}
