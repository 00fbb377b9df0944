/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A process's symbol-lookup scope in ld.so's order: executable, preloads
 * (LD_PRELOAD, /etc/ld.so.preload), DT_NEEDED breadth-first, then objects
 * loaded later. Decides which object's malloc the process really calls.
 */
#ifndef STRAY_SCOPE_H
#define STRAY_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

#define SCOPE_MAX_OBJECTS 256

/*
 * The objects of process pid, as paths under /proc/pid/root, in lookup
 * order. at_exec: the process has just exec'd, nothing but the executable
 * is mapped: the scope is predicted from its DT_NEEDED chain, its
 * LD_LIBRARY_PATH and LD_PRELOAD. Otherwise: the objects in /proc/pid/maps,
 * ordered by that prediction (unpredicted ones, dlopen'ed, last).
 * *paths is malloc'ed (elfsym__free_paths). Returns 0 or -errno.
 */
int scope__lookup(int pid, bool at_exec, char ***paths, size_t *n);

#endif /* STRAY_SCOPE_H */
