/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small readers of /proc/PID files. Return 0 or -errno; never print. */
#ifndef STRAY_PROCFS_H
#define STRAY_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whole contents of /proc/pid/<name> as a malloc'ed NUL-terminated string
 * (at most max_bytes are read). */
int procfs__read_file(int pid, const char *name, size_t max_bytes, char **text);

/* Resident set size and its anonymous part, in bytes. */
int procfs__memory(int pid, uint64_t *rss_bytes, uint64_t *anon_bytes);

/* Value of environment variable name in the process's initial environment
 * (malloc'ed), or NULL in *value when it is not set. */
int procfs__getenv(int pid, const char *name, char **value);

/* Mapped ELF objects, each path once, in /proc/pid/maps order, with the
 * process's root prefixed ("/proc/PID/root/usr/lib/..."). Pseudo-mappings
 * ("[vdso]", anonymous) and deleted files are skipped. */
int procfs__mapped_objects(int pid, size_t max_objects, char ***paths, size_t *n);

/* One line of /proc/PID/maps. path is NULL unless a file path ('/...')
 * follows within the line's len bytes (the line need not end there). */
struct procfs_mapping {
	uint64_t start, end, offset, inode;
	unsigned int dev_major, dev_minor;
	char perms[5]; /* "r-xp" */
	const char *path; /* into the line, up to its end */
	size_t path_len;
};

/* Parse the first len bytes at line; false when they are not a mapping. */
bool procfs__parse_mapping(const char *line, size_t len, struct procfs_mapping *out);

/* Main thread's state letter from /proc/pid/stat ('Z' for a zombie). */
int procfs__state(int pid, char *state);

#endif /* STRAY_PROCFS_H */
