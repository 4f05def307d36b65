# libFuzzer targets: make fuzz [FUZZ_SECONDS=60]
# Built with clang -fsanitize=fuzzer,address,undefined into build-fuzz/;
# each runs FUZZ_SECONDS from a copy of its seed corpus (test/fuzz/corpus/),
# with leak detection on.  A crash, a leak or a sanitizer report fails.
# Before that, the targets of FUZZ_DEPTH run each seed once: at least one
# must get past the target's first check (fuzz_depth.h), or the seeds are
# out of date and fuzzing would only knock at the door.
FUZZ_SECONDS	?= 60
FUZZ_CC		?= clang
FZ		:= build-fuzz
FUZZ_TARGETS	:= request reply event config state control hook imap \
		   cluster handler
# targets that report how deep their seeds go (fuzz_depth.h)
FUZZ_DEPTH	:= event config state control hook handler cluster imap
FUZZ_CFLAGS	:= -std=gnu11 -g -O1 -D_GNU_SOURCE -fno-omit-frame-pointer \
		   -fsanitize=fuzzer-no-link,address,undefined \
		   -fno-sanitize-recover=undefined -Ishared -Iclient -Inotifier \
		   -Ideliver-hook -Itest/fuzz \
		   $(shell $(PKG_CONFIG) --cflags $(PKGS))
FUZZ_LIBSRCS	:= $(SHARED_SRCS) $(CLIENT_SRCS) $(DAEMON_SRCS) \
		   deliver-hook/hookargs.c test/fuzz/fuzz_depth.c

# -MMD: an object is rebuilt when a header it uses changes (a stale
# object with an old struct layout makes crashes that are not there)
$(FZ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FZ)/fuzz_%: $(FZ)/test/fuzz/fuzz_%.o $(patsubst %.c,$(FZ)/%.o,$(FUZZ_LIBSRCS))
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ \
	    $(LIBS_EVENT) $(LIBS_SODIUM) $(LIBS_INIH) $(LIBS_HIREDIS) $(LIBS_CURL)

fuzz-build: $(addprefix $(FZ)/fuzz_,$(FUZZ_TARGETS))

fuzz: deps fuzz-build fuzz-depth
	@set -e; for t in $(FUZZ_TARGETS); do \
	    work=$(FZ)/corpus-$$t; rm -rf $$work; mkdir -p $$work; \
	    cp test/fuzz/corpus/$$t/* $$work/ 2>/dev/null || true; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS)s"; \
	    ASAN_OPTIONS=detect_leaks=1 $(FZ)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -max_len=2048 -print_final_stats=1 -artifact_prefix=$(FZ)/crash-$$t- \
	        $$work 2> $(FZ)/fuzz_$$t.log || { tail -60 $(FZ)/fuzz_$$t.log; exit 1; }; \
	    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added)' $(FZ)/fuzz_$$t.log | sed "s/^/  fuzz_$$t /"; \
	done
# Each seed once (-runs=0): "fuzz-depth: N" counts those past the first
# check; none is a failure.
fuzz-depth: fuzz-build
	@set -e; for t in $(FUZZ_DEPTH); do \
	    FUZZ_DEPTH=1 ASAN_OPTIONS=detect_leaks=1 $(FZ)/fuzz_$$t -runs=0 \
	        -artifact_prefix=$(FZ)/crash-$$t- \
	        test/fuzz/corpus/$$t > $(FZ)/depth_$$t.log 2>&1 || \
	        { tail -30 $(FZ)/depth_$$t.log; exit 1; }; \
	    n=$$(sed -n 's/^fuzz-depth: //p' $(FZ)/depth_$$t.log | tail -1); \
	    seeds=$$(ls test/fuzz/corpus/$$t | wc -l); \
	    echo "  fuzz_$$t: $${n:-0} runs past the first check ($$seeds seeds)"; \
	    if [ "$${n:-0}" -eq 0 ]; then \
	        echo "fuzz_$$t: no seed in test/fuzz/corpus/$$t gets past the" \
	            "first check: the seeds are out of date"; exit 1; fi; \
	done
.PHONY: fuzz fuzz-build fuzz-depth
.PRECIOUS: $(FZ)/%.o

-include $(shell find $(FZ) -name '*.d' 2>/dev/null)
