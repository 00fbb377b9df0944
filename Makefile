# stray build: bpf/*.bpf.c -> build/*.bpf.o -> bpftool skeleton -> user objects -> build/stray
# Everything generated goes to build/; nothing is written beside the sources.

ARCH        ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BUILD       ?= build
CLANG       ?= clang
CC          ?= gcc
CXX         ?= g++
BPFTOOL     ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
LIBBPF_A    ?= $(firstword $(wildcard /usr/lib/$(shell $(CC) -print-multiarch)/libbpf.a /usr/lib64/libbpf.a /usr/lib/libbpf.a))

CFLAGS      ?= -O2 -g
WARN        := -Wall -Wextra -Werror
CPPFLAGS    += -I$(BUILD) -Ibpf -Iuser -D_GNU_SOURCE
LDLIBS      += $(LIBBPF_A) -ldw -lelf -lz -ljson-c -lcap -lcapstone -lstdc++ -lm
BPF_CFLAGS  := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -Ibpf -Wall -Werror

BPF_SRCS    := $(wildcard bpf/*.bpf.c)
BPF_OBJS    := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS       := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
USER_SRCS   := $(wildcard user/*.c)
USER_OBJS   := $(patsubst user/%.c,$(BUILD)/user/%.o,$(USER_SRCS))
LIB_OBJS    := $(filter-out $(BUILD)/user/main.o,$(USER_OBJS))

UNIT_SRCS   := $(wildcard tests/unit_*.c)
E2E_SRCS    := $(wildcard tests/e2e_*.c)
BPF_TEST_SRCS := $(wildcard tests/bpf_*.c)
# C++ triggers of the BPF tests (operator new/delete called by name).
BPF_TEST_CXX_OBJS := $(patsubst tests/%.cpp,$(BUILD)/tests/%.o,$(wildcard tests/bpf_*.cpp))
TEST_COMMON := $(wildcard tests/common_*.c)
FIXTURE_SRCS:= $(wildcard tests/fixtures/*.c)
FIXTURE_CXX_SRCS := $(wildcard tests/fixtures/*.cpp)
FIXTURES    := $(patsubst tests/fixtures/%.c,$(BUILD)/fixtures/%,$(FIXTURE_SRCS)) \
	       $(patsubst tests/fixtures/%.cpp,$(BUILD)/fixtures/%,$(FIXTURE_CXX_SRCS)) \
	       $(patsubst tests/fixtures/%.cpp,$(BUILD)/fixtures/%-static,$(FIXTURE_CXX_SRCS))
# The attach-cost fixture (manylibs) dlopens 50 tiny generated libraries.
TINY_LIBS   := $(foreach i,$(shell seq 1 50),$(BUILD)/fixtures/tiny/libtiny$(i).so)
FIXTURES    += $(TINY_LIBS)
# Fixtures keep frame pointers and stay unoptimised so every leak site is a
# distinct, predictable frame.
FIXTURE_CFLAGS := -O0 -g -fno-omit-frame-pointer -fno-inline -Wall -Wextra -Werror -pthread

.SECONDARY:
.PHONY: all test unit-test bpf-test e2e-test soak demo bench clean deps
all: $(BUILD)/stray

deps:
	./scripts/install-deps.sh

$(BUILD) $(BUILD)/user $(BUILD)/tests $(BUILD)/fixtures:
	mkdir -p $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/*.h | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/user/%.o: user/%.c user/*.h bpf/stray.h $(SKELS) | $(BUILD)/user
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

$(BUILD)/stray: $(USER_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# stray built with AddressSanitizer + UBSan (LeakSanitizer included), for
# the e2e sanitizer test (tests/e2e_sanitize.c): valgrind 3.19 cannot run
# attach mode (no pidfd_open). Objects live apart from the normal build.
ASAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g
ASAN_OBJS   := $(patsubst user/%.c,$(BUILD)/asan/%.o,$(USER_SRCS))

$(BUILD)/asan:
	mkdir -p $@

$(BUILD)/asan/%.o: user/%.c user/*.h bpf/stray.h $(SKELS) | $(BUILD)/asan
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) $(WARN) -c $< -o $@

$(BUILD)/stray-asan: $(ASAN_OBJS)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fixtures/%: tests/fixtures/%.c $(wildcard tests/fixtures/*.h) | $(BUILD)/fixtures
	$(CC) $(FIXTURE_CFLAGS) -o $@ $< $(if $(filter %_lib,$*),,-ldl)

$(BUILD)/fixtures/tiny:
	mkdir -p $@

$(BUILD)/fixtures/tiny/libtiny%.so: tests/fixtures/tiny/tinylib.c | $(BUILD)/fixtures/tiny
	$(CC) $(FIXTURE_CFLAGS) -shared -fPIC -DTINY_ID=$* -o $@ $<

# C++ fixtures, with the same flags; each is also linked statically, where
# operator new and malloc are defined in the executable itself.
$(BUILD)/fixtures/%: tests/fixtures/%.cpp | $(BUILD)/fixtures
	$(CXX) $(FIXTURE_CFLAGS) -o $@ $<

$(BUILD)/fixtures/%-static: tests/fixtures/%.cpp | $(BUILD)/fixtures
	$(CXX) $(FIXTURE_CFLAGS) -static -o $@ $<

# The stress fixture calls operator new/delete by name from C.
$(BUILD)/fixtures/stress: tests/fixtures/stress.c $(wildcard tests/fixtures/*.h) | $(BUILD)/fixtures
	$(CC) $(FIXTURE_CFLAGS) -o $@ $< -lstdc++

# timers: the libuv fixture links Debian's libuv1 (libuv1-dev); an explicit
# rule wins over the pattern above.
$(BUILD)/fixtures/uvleak: tests/fixtures/uvleak.c | $(BUILD)/fixtures
	$(CC) $(FIXTURE_CFLAGS) -o $@ $< -luv

# Allocator libraries: alloclib linked with each one (also calling its own
# entry points), and with jemalloc's archive into a stripped executable that
# still exports malloc (-rdynamic): its .dynsym is all stray can read.
ALLOCLIB_FIXTURES := $(addprefix $(BUILD)/fixtures/alloclib-,jemalloc tcmalloc mimalloc)
FIXTURES += $(ALLOCLIB_FIXTURES) $(BUILD)/fixtures/alloclib-stripped
alloclib_libs_jemalloc := -ljemalloc
alloclib_libs_tcmalloc := -ltcmalloc_minimal
alloclib_libs_mimalloc := -lmimalloc

$(ALLOCLIB_FIXTURES): $(BUILD)/fixtures/alloclib-%: tests/fixtures/alloclib.cpp | $(BUILD)/fixtures
	$(CXX) $(FIXTURE_CFLAGS) -DWITH_$(shell echo $* | tr a-z A-Z) -o $@ $< $(alloclib_libs_$*)

$(BUILD)/fixtures/alloclib-stripped: tests/fixtures/alloclib.cpp | $(BUILD)/fixtures
	$(CXX) $(FIXTURE_CFLAGS) -DWITH_JEMALLOC -rdynamic -o $@ $< -Wl,-Bstatic -ljemalloc -Wl,-Bdynamic -ldl
	strip $@

# DWARF unwinding (tests/e2e_unwind.c): a program and a library built the
# way distributions build them, optimised and without frame pointers.
# Sibling-call optimisation stays off so that every function of the chain
# is a frame (a tail call would drop it from stray's and valgrind's stacks
# alike).
UNWIND_FIXTURE_CFLAGS := -O2 -g -fomit-frame-pointer -fno-optimize-sibling-calls -Wall -Wextra -Werror
# libunwinddl.so: the same library, for the fixture to dlopen.
UNWIND_FIXTURES := $(BUILD)/fixtures/libunwindlib.so $(BUILD)/fixtures/libunwinddl.so $(BUILD)/fixtures/unwindleak

$(BUILD)/fixtures/libunwindlib.so $(BUILD)/fixtures/libunwinddl.so: tests/fixtures/unwind/unwind_lib.cpp \
		tests/fixtures/unwind/unwind_lib.h | $(BUILD)/fixtures
	$(CXX) $(UNWIND_FIXTURE_CFLAGS) -fPIC -shared -o $@ $<

$(BUILD)/fixtures/unwindleak: tests/fixtures/unwind/unwindleak.cpp $(BUILD)/fixtures/libunwindlib.so
	$(CXX) $(UNWIND_FIXTURE_CFLAGS) -Itests/fixtures/unwind -o $@ $< -L$(BUILD)/fixtures -lunwindlib \
		-Wl,-rpath,'$$ORIGIN'

$(BUILD)/tests/unit: $(UNIT_SRCS) $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $(UNIT_SRCS) $(LIB_OBJS) -lcriterion $(LDLIBS)

$(BUILD)/tests/e2e: $(E2E_SRCS) $(TEST_COMMON) $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -Itests -DVALGRIND_SUPP='"$(abspath tests/valgrind.supp)"' \
		-o $@ $(E2E_SRCS) $(TEST_COMMON) -lcriterion $(LDLIBS)

$(BUILD)/tests/%.o: tests/%.cpp tests/*.h | $(BUILD)/tests
	$(CXX) $(CFLAGS) $(WARN) -Itests -c $< -o $@

$(BUILD)/tests/bpf: $(BPF_TEST_SRCS) $(BPF_TEST_CXX_OBJS) $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -Itests -o $@ $(BPF_TEST_SRCS) $(BPF_TEST_CXX_OBJS) $(LIB_OBJS) \
		-lcriterion $(LDLIBS)

unit-test: $(BUILD)/tests/unit
	$(BUILD)/tests/unit

# BPF and end-to-end tests load real BPF programs: they need root.
bpf-test: $(BUILD)/tests/bpf
	$(BUILD)/tests/bpf

e2e-test: $(BUILD)/stray $(BUILD)/stray-asan $(BUILD)/tests/e2e $(FIXTURES) $(UNWIND_FIXTURES)
	STRAY=$(abspath $(BUILD)/stray) STRAY_ASAN=$(abspath $(BUILD)/stray-asan) \
		FIXTURES=$(abspath $(BUILD)/fixtures) $(BUILD)/tests/e2e -j1
	# The exactness subset again under each forced fallback attach mode
	# (user/attach_mode.h; the default is the best the kernel has).
	for mode in multi classic; do \
		STRAY_ATTACH=$$mode STRAY=$(abspath $(BUILD)/stray) FIXTURES=$(abspath $(BUILD)/fixtures) \
			$(BUILD)/tests/e2e -j1 --filter '$(E2E_MODE_SUBSET)' || exit 1; \
	done
	# And with the block table, the site counter slots and the in-flight
	# slots shrunk to two sets, two slots and one: most blocks go to the
	# allocs map, most sites count in their map value, or in both, and all
	# threads but one keep their in-flight call in task storage
	# (bpf/blocks.bpf.h, bpf/stray.h, bpf/inflight.bpf.h).
	STRAY_BLOCK_SETS=2 STRAY_SITE_SLOTS=2 STRAY_INFLIGHT_SLOTS=1 STRAY=$(abspath $(BUILD)/stray) \
		FIXTURES=$(abspath $(BUILD)/fixtures) $(BUILD)/tests/e2e -j1 --filter '$(E2E_TABLE_SUBSET)'

E2E_MODE_SUBSET := @(e2e_exact|e2e_cxx|e2e_mmap|e2e_fork|e2e_probes)/*
E2E_TABLE_SUBSET := @(e2e_exact|e2e_cxx|e2e_mmap|e2e_fork|e2e_stress)/*

test: unit-test bpf-test e2e-test

demo: $(BUILD)/stray $(BUILD)/fixtures/demo
	$(BUILD)/stray --json $(BUILD)/demo-report.json -- $(BUILD)/fixtures/demo

$(BUILD)/bench:
	mkdir -p $@

$(BUILD)/bench/malloc_bench: tests/bench/malloc_bench.c | $(BUILD)/bench
	$(CC) -O2 -g $(WARN) -o $@ $<

$(BUILD)/bench/unwind_bench: tests/bench/malloc_bench.c | $(BUILD)/bench
	$(CC) -O2 -g -fno-omit-frame-pointer $(WARN) -o $@ $<

$(BUILD)/bench/trapfloor: tests/bench/trapfloor.c $(LIB_OBJS) | $(BUILD)/bench
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(LIB_OBJS) $(LDLIBS)

# Benchmarks are not tests: they print ratios measured in one run.
bench: $(BUILD)/stray $(BUILD)/bench/malloc_bench $(BUILD)/bench/trapfloor $(BUILD)/bench/unwind_bench \
		$(BUILD)/fixtures/manylibs $(TINY_LIBS)
	BUILD=$(BUILD) ./scripts/bench.sh

# Soak (not a test): stray --watch for 30 minutes, its RSS must stay flat.
soak: $(BUILD)/stray $(BUILD)/fixtures/growth
	BUILD=$(BUILD) ./scripts/soak.sh

clean:
	rm -rf $(BUILD)

include tests/symbolize.mk
