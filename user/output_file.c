// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Atomic file output: a report is either the previous complete file or the
 * new complete file, never half of one, even if stray is killed or the
 * machine loses power mid-write.
 *
 * Not async-signal-safe (stdio, malloc): SIGINT/SIGTERM handlers only set a
 * flag, and main calls this afterwards from its normal flow. Signals that
 * arrive meanwhile are tolerated: fsync() is retried on EINTR, and nothing
 * here installs handlers or changes the signal mask.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"

/*
 * Build "<dir>/.<base>.XXXXXX" for mkstemp and return dir separately for the
 * final directory fsync. The temp file must live in the target's directory:
 * rename() is only atomic within one filesystem. dirname() and basename()
 * may modify their argument, so each gets its own copy.
 */
static int temp_path(const char *path, char **dirp, char **tmplp)
{
	char *dcopy = strdup(path), *bcopy = strdup(path), *dir = NULL, *tmpl = NULL;
	int err = -ENOMEM;

	if (!dcopy || !bcopy)
		goto out;
	dir = strdup(dirname(dcopy));
	if (!dir)
		goto out;
	if (asprintf(&tmpl, "%s/.%s.XXXXXX", dir, basename(bcopy)) < 0) {
		tmpl = NULL;
		goto out;
	}
	*dirp = dir;
	*tmplp = tmpl;
	dir = NULL;
	err = 0;
out:
	free(dir);
	free(dcopy);
	free(bcopy);
	return err;
}

static int fsync_retry(int fd)
{
	while (fsync(fd)) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * Make the rename itself durable: until the directory entry is on disk a
 * crash can bring back the old file (or none). Some filesystems cannot sync
 * a directory and say EINVAL; the data is already safe there, so accept it.
 */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err;

	if (fd < 0)
		return -errno;
	err = fsync_retry(fd);
	close(fd);
	return err == -EINVAL ? 0 : err;
}

/* Flush stdio, then the kernel's page cache, then close; report the first
 * failure. fclose() releases the stream even when it fails. */
static int finish_stream(FILE *f)
{
	int err = 0;

	if (fflush(f) == EOF)
		err = -errno;
	else if (ferror(f))
		err = -EIO; /* an earlier write failed; errno is long gone */
	if (!err)
		err = fsync_retry(fileno(f));
	if (fclose(f) == EOF && !err)
		err = -errno;
	return err;
}

int output__write_atomic(const char *path, output_fill_fn fill, void *ctx)
{
	char *dir = NULL, *tmpl = NULL;
	bool created = false;
	FILE *f = NULL;
	int fd = -1, err;

	if (!path || !*path || !fill)
		return -EINVAL;
	err = temp_path(path, &dir, &tmpl);
	if (err)
		return err;

	/* O_CLOEXEC: a target started with "stray -- app" must not inherit it. */
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	created = true;
	/* mkstemp creates 0600; reports are meant to be read by other users
	 * and tools (CI artifact collectors), as any file written by the
	 * tracer's owner normally is. */
	if (fchmod(fd, 0644)) {
		err = -errno;
		goto cleanup;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		goto cleanup;
	}
	fd = -1; /* owned by f now */

	err = fill(f, ctx);
	if (err) {
		err = err < 0 ? err : -EIO;
		goto cleanup;
	}
	err = finish_stream(f);
	f = NULL;
	if (err)
		goto cleanup;

	if (rename(tmpl, path)) {
		err = -errno;
		goto cleanup;
	}
	created = false;
	/* path already holds the complete new report: a failure here only
	 * means the rename may not survive a crash, but it is still reported. */
	err = fsync_dir(dir);

cleanup:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(tmpl);
	free(tmpl);
	free(dir);
	return err;
}
