// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * C++ triggers for the BPF tests (see bpf_cxx.h): explicit calls of the
 * global operator new and delete forms, so that each form is exercised by
 * name whatever the compiler does with new-expressions.
 */
#include <new>
#include "bpf_cxx.h"

/* The barrier after each call keeps it a real call (not a tail jump), so
 * the captured return address lies inside the trigger function. */
#define BARRIER() __asm__ volatile("" ::: "memory")
/* Triggers start 256 bytes apart, so a return address identifies one. */
#define TRIGGER __attribute__((noinline, aligned(256)))

static inline std::align_val_t al(size_t a)
{
	return static_cast<std::align_val_t>(a);
}

TRIGGER static void *trig_new(size_t n, size_t)
{
	void *p = ::operator new(n);

	BARRIER();
	return p;
}

TRIGGER static void *trig_new_array(size_t n, size_t)
{
	void *p = ::operator new[](n);

	BARRIER();
	return p;
}

TRIGGER static void *trig_new_nothrow(size_t n, size_t)
{
	void *p = ::operator new(n, std::nothrow);

	BARRIER();
	return p;
}

TRIGGER static void *trig_new_array_nothrow(size_t n, size_t)
{
	void *p = ::operator new[](n, std::nothrow);

	BARRIER();
	return p;
}

TRIGGER static void *trig_new_aligned(size_t n, size_t a)
{
	void *p = ::operator new(n, al(a));

	BARRIER();
	return p;
}

TRIGGER static void *trig_new_array_aligned(size_t n, size_t a)
{
	void *p = ::operator new[](n, al(a));

	BARRIER();
	return p;
}

TRIGGER static void *trig_new_aligned_nothrow(size_t n, size_t a)
{
	void *p = ::operator new(n, al(a), std::nothrow);

	BARRIER();
	return p;
}

TRIGGER static void *trig_new_array_aligned_nothrow(size_t n, size_t a)
{
	void *p = ::operator new[](n, al(a), std::nothrow);

	BARRIER();
	return p;
}

extern "C" const cxx_new_fn cxx_new_triggers[CXX_NEW_FORMS] = {
	trig_new,
	trig_new_array,
	trig_new_nothrow,
	trig_new_array_nothrow,
	trig_new_aligned,
	trig_new_array_aligned,
	trig_new_aligned_nothrow,
	trig_new_array_aligned_nothrow,
};

extern "C" TRIGGER void cxx_delete(int form, void *p, size_t n, size_t a)
{
	switch (form) {
	case CXX_DELETE:
		::operator delete(p);
		break;
	case CXX_DELETE_ARRAY:
		::operator delete[](p);
		break;
	case CXX_DELETE_SIZED:
		::operator delete(p, n);
		break;
	case CXX_DELETE_ARRAY_SIZED:
		::operator delete[](p, n);
		break;
	case CXX_DELETE_NOTHROW:
		::operator delete(p, std::nothrow);
		break;
	case CXX_DELETE_ARRAY_NOTHROW:
		::operator delete[](p, std::nothrow);
		break;
	case CXX_DELETE_ALIGNED:
		::operator delete(p, al(a));
		break;
	case CXX_DELETE_ARRAY_ALIGNED:
		::operator delete[](p, al(a));
		break;
	case CXX_DELETE_SIZED_ALIGNED:
		::operator delete(p, n, al(a));
		break;
	case CXX_DELETE_ARRAY_SIZED_ALIGNED:
		::operator delete[](p, n, al(a));
		break;
	case CXX_DELETE_ALIGNED_NOTHROW:
		::operator delete(p, al(a), std::nothrow);
		break;
	case CXX_DELETE_ARRAY_ALIGNED_NOTHROW:
		::operator delete[](p, al(a), std::nothrow);
		break;
	}
	BARRIER();
}

extern "C" TRIGGER int cxx_new_after_throw(size_t huge, size_t n, void **out)
{
	int caught = 0;

	try {
		*out = ::operator new(huge);
	} catch (const std::bad_alloc &) {
		caught = 1;
	}
	BARRIER();
	*out = ::operator new(n);
	BARRIER();
	return caught;
}

extern "C" TRIGGER int cxx_new_after_nothrow_failure(size_t huge, size_t n, void **out)
{
	int failed = ::operator new(huge, std::nothrow) == nullptr;

	BARRIER();
	*out = ::operator new(n, std::nothrow);
	BARRIER();
	return failed;
}
