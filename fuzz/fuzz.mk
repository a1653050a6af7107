# libFuzzer targets (clang, Debian's packages), included by the Makefile.
#   make fuzz                    replay fuzz/regress/, then fuzz each target
#                                for FUZZ_SECONDS (default 60) from fuzz/corpus/
#   make fuzz FUZZ_SECONDS=20    the short pass CI runs
#   make fuzz FUZZ_TARGETS=state only some targets
#   make fuzz-build              build them only (fuzz/build/fuzz_<target>)
#   make fuzz-seeds              regenerate fuzz/corpus/state/gen-* with the real
#                                state_format()
# The sources are rebuilt apart, in fuzz/build/obj/, with the fuzz flags;
# src/main.c (main) is left out. New inputs go to fuzz/build/corpus/<target>/
# (fuzz/corpus/ stays as committed), crashes to fuzz/build/crash-<target>-*.

FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_TARGETS	?= config address values state notify control logsink
FUZZ_DIR	 = fuzz/build
FUZZ_SAN	 = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS	 = -std=gnu11 -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) \
		   -D_GNU_SOURCE -DFUGUE_VERSION='"$(VERSION)"' -Wall -Wextra
FUZZ_OBJS	 = $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(SRCS))
FUZZ_LIB	 = $(FUZZ_DIR)/libfugue-fuzz.a
FUZZ_COMMON	 = fuzz/fuzz_common.c fuzz/fuzz_common.h
# No DNS from a fuzz run: fuzz_common.c's getaddrinfo takes numeric hosts only.
FUZZ_LDFLAGS	 = -Wl,--wrap=getaddrinfo

$(FUZZ_DIR)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	$(AR) rcs $@ $(FUZZ_OBJS)

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_COMMON) $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -Ifuzz -o $@ \
	    $< fuzz/fuzz_common.c $(FUZZ_LIB) $(FUZZ_LDFLAGS) $(LIBS)

$(FUZZ_DIR)/gen_seeds: fuzz/gen_seeds.c $(FUZZ_COMMON) $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Isrc -Ifuzz -o $@ \
	    $< fuzz/fuzz_common.c $(FUZZ_LIB) $(FUZZ_LDFLAGS) $(LIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

fuzz: fuzz-build
	@sh fuzz/run.sh "$(FUZZ_SECONDS)" $(FUZZ_TARGETS)

fuzz-seeds: $(FUZZ_DIR)/gen_seeds
	$(FUZZ_DIR)/gen_seeds fuzz/corpus

fuzz-clean:
	rm -rf $(FUZZ_DIR)

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-clean
