# Fixtures of the symbolization tests (tests/e2e_symbolize.c) and the
# symbolization benchmark; included by the Makefile. Sources live in
# tests/fixtures/symbolize/ so the generic fixture rule does not take them.
SYM_SRC := tests/fixtures/symbolize
SYM_FIXTURES := $(addprefix $(BUILD)/fixtures/,libsymlib.so libsymlib-stripped.so symload \
		syminline symdebug symdebug.debug symjit symjail)

# A library that keeps frame pointers, and a copy stripped to .dynsym.
$(BUILD)/fixtures/libsymlib.so: $(SYM_SRC)/symlib.c | $(BUILD)/fixtures
	$(CC) $(FIXTURE_CFLAGS) -fPIC -shared -o $@ $<

$(BUILD)/fixtures/libsymlib-stripped.so: $(BUILD)/fixtures/libsymlib.so
	strip --strip-all -o $@ $<

# -O2 with an always_inline chain; frame pointers kept for the unwinder.
$(BUILD)/fixtures/syminline: $(SYM_SRC)/syminline.c | $(BUILD)/fixtures
	$(CC) -O2 -g -fno-omit-frame-pointer -Wall -Wextra -Werror -o $@ $<

# Debug info split off into symdebug.debug, linked by .gnu_debuglink.
$(BUILD)/fixtures/symdebug.debug: $(BUILD)/fixtures/symdebug
$(BUILD)/fixtures/symdebug: $(SYM_SRC)/symdebug.c | $(BUILD)/fixtures
	$(CC) $(FIXTURE_CFLAGS) -o $@.full $<
	objcopy --only-keep-debug $@.full $@.debug
	strip --strip-all -o $@ $@.full
	cd $(@D) && objcopy --add-gnu-debuglink=$(@F).debug $(@F)
	rm -f $@.full

$(BUILD)/fixtures/symload $(BUILD)/fixtures/symjit $(BUILD)/fixtures/symjail: $(BUILD)/fixtures/%: \
		$(SYM_SRC)/%.c tests/fixtures/wait_usr1.h | $(BUILD)/fixtures
	$(CC) $(FIXTURE_CFLAGS) -o $@ $< -ldl

# JavaScript for Node.js (--perf-basic-prof), next to the other fixtures.
$(BUILD)/fixtures/jsleak.js: $(SYM_SRC)/jsleak.js | $(BUILD)/fixtures
	cp $< $@

e2e-test: $(SYM_FIXTURES) $(BUILD)/fixtures/jsleak.js

$(BUILD)/bench/symbolize_bench: tests/bench/symbolize_bench.c $(LIB_OBJS) | $(BUILD)/bench
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(LIB_OBJS) $(LDLIBS)

# Run before scripts/bench.sh: prints seconds and ratios, never fails on time.
.PHONY: bench-symbolize
bench-symbolize: $(BUILD)/bench/symbolize_bench
	$(BUILD)/bench/symbolize_bench

bench: bench-symbolize
