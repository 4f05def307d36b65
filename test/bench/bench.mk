# Benchmarks (issue 8): make bench [BENCH_QUICK=1] [BENCH_ONLY=push,...]
# Included by the top Makefile after its rules (it uses $(B), obj, the
# LIBS_ variables and the deps and all targets).  Every figure comes with
# a baseline measured in the same run; a figure never fails the target,
# only a broken run does.  Results and the machine: BENCHMARKS.md.
# BENCH_ONLY names: push intake latency hook e2e memory register growth pages
# cluster keepalive state.
BENCH_SRCS	:= $(wildcard test/bench/*.c)
BENCH_QUICK	?=
BENCH_ONLY	?=

$(B)/test/bench/%.o: CPPFLAGS += -Inotifier
$(B)/test/mpbench: $(call obj,$(BENCH_SRCS)) $(B)/test/lib/harness.o \
    $(B)/test/lib/redis.o $(B)/notifier/record.o $(B)/libshared.a \
    | $(B)/test/mpspawn
	$(CC) $(ALL_LDFLAGS) -pthread -o $@ $^ $(LIBS_SODIUM) $(LIBS_INIH) \
	    $(LIBS_HIREDIS)
# The wrapper benchmark's floor: a wrapper that only spawns the agent and
# waits, linked as the hook is.
$(B)/test/mpspawn: $(B)/test/bench/spawn/mpspawn.o
	$(CC) $(ALL_LDFLAGS) $(if $(HOOK_STATIC),-static-pie) -o $@ $^

bench: deps all $(B)/test/mpbench
	BENCH_QUICK=$(BENCH_QUICK) $(B)/test/mpbench \
	    $(if $(BENCH_ONLY),-o $(BENCH_ONLY))
.PHONY: bench

# Does batching pay?  The push benchmark against a daemon built with one
# datagram per sendmmsg(2) (PUSH_BATCH=1, in build-nobatch/), then against
# the normal one, in the same run.
bench-batch: deps all $(B)/test/mpbench
	$(MAKE) B=build-nobatch CFLAGS="-DPUSH_BATCH=1" build-nobatch/mailpushd
	@echo "== unbatched daemon (PUSH_BATCH=1)"
	MPBENCH_DAEMON=build-nobatch/mailpushd BENCH_QUICK=$(BENCH_QUICK) \
	    $(B)/test/mpbench -o push
	@echo "== batched daemon (PUSH_BATCH=64)"
	BENCH_QUICK=$(BENCH_QUICK) $(B)/test/mpbench -o push
.PHONY: bench-batch
