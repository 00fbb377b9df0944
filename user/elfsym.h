/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ELF look-ups with libelf: where an object defines a function (as a file
 * offset, which is what uprobes take), and which objects a dynamically
 * linked program will load, in the dynamic linker's symbol-lookup order.
 */
#ifndef STRAY_ELFSYM_H
#define STRAY_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * For each names[i], find a defined function symbol (STT_FUNC or
 * STT_GNU_IFUNC is NOT accepted: an ifunc resolver is not the function;
 * global or weak, st_shndx != SHN_UNDEF) in path's .dynsym, falling back to
 * .symtab, and convert its address to a file offset through the PT_LOAD
 * segment that contains it. Versioned names ("malloc@@GLIBC_2.2.5") match
 * their base name. found[i] tells whether offsets[i] is valid.
 * Returns the number found (>= 0), or -errno if path is not a readable ELF.
 */
int elfsym__find_functions(const char *path, const char *const *names, size_t n,
			   uint64_t *offsets, bool *found);

/*
 * The objects a dynamically linked executable will load, in breadth-first
 * DT_NEEDED order as ld.so searches symbols: the executable itself first,
 * then its needed libraries, then theirs. Library search per ld.so(8):
 * DT_RPATH (when there is no DT_RUNPATH), ld_library_path (may be NULL),
 * DT_RUNPATH, directories listed in root/etc/ld.so.conf (and its includes),
 * then the default system directories; "$ORIGIN" is expanded. Every path is
 * opened under root (NULL or "" for /), and returned WITH that prefix.
 * The interpreter (PT_INTERP) is not included. A static executable yields
 * just itself. Libraries that cannot be found are skipped.
 * On success returns the count and sets *paths to a malloc'ed array of
 * malloc'ed strings (free with elfsym__free_paths); returns -errno on error.
 * At most max_objects objects are returned.
 */
int elfsym__load_order(const char *root, const char *exe, const char *ld_library_path,
		       size_t max_objects, char ***paths);

void elfsym__free_paths(char **paths, size_t n);

#endif /* STRAY_ELFSYM_H */
