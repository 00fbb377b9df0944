/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * C++ trigger functions for tests/bpf_probes.c (defined in tests/bpf_cxx.cpp):
 * each calls one operator new or delete form directly, so the BPF tests can
 * find its allocations by their first frame, as for the C triggers.
 */
#ifndef STRAY_BPF_CXX_H
#define STRAY_BPF_CXX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The operator new forms, in enum stray_fn order from STRAY_FN_NEW. */
enum cxx_new_form {
	CXX_NEW,
	CXX_NEW_ARRAY,
	CXX_NEW_NOTHROW,
	CXX_NEW_ARRAY_NOTHROW,
	CXX_NEW_ALIGNED,
	CXX_NEW_ARRAY_ALIGNED,
	CXX_NEW_ALIGNED_NOTHROW,
	CXX_NEW_ARRAY_ALIGNED_NOTHROW,
	CXX_NEW_FORMS,
};

/* The operator delete forms, in enum stray_fn order from STRAY_FN_DELETE. */
enum cxx_delete_form {
	CXX_DELETE,
	CXX_DELETE_ARRAY,
	CXX_DELETE_SIZED,
	CXX_DELETE_ARRAY_SIZED,
	CXX_DELETE_NOTHROW,
	CXX_DELETE_ARRAY_NOTHROW,
	CXX_DELETE_ALIGNED,
	CXX_DELETE_ARRAY_ALIGNED,
	CXX_DELETE_SIZED_ALIGNED,
	CXX_DELETE_ARRAY_SIZED_ALIGNED,
	CXX_DELETE_ALIGNED_NOTHROW,
	CXX_DELETE_ARRAY_ALIGNED_NOTHROW,
	CXX_DELETE_FORMS,
};

/* Trigger functions 256 bytes apart, one per new form (index: form):
 * cxx_new_triggers[form](size, align) calls that form (align ignored by
 * the unaligned ones) and returns its result. */
typedef void *(*cxx_new_fn)(size_t size, size_t align);
extern const cxx_new_fn cxx_new_triggers[CXX_NEW_FORMS];

/* Release p (size bytes, alignment align) with delete form form. */
void cxx_delete(int form, void *p, size_t size, size_t align);

/* operator new(huge), which throws std::bad_alloc, caught here; then, in the
 * same frame, operator new(size) into *out. Returns 1 if bad_alloc was
 * caught. */
int cxx_new_after_throw(size_t huge, size_t size, void **out);

/* operator new(huge, std::nothrow), which fails (NULL), then, in the same
 * frame, operator new(size, std::nothrow) into *out. Returns 1 if the first
 * one failed. */
int cxx_new_after_nothrow_failure(size_t huge, size_t size, void **out);

#ifdef __cplusplus
}
#endif

#endif /* STRAY_BPF_CXX_H */
