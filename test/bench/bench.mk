# Benchmarks (issue 8): make bench [BENCH_QUICK=1] [BENCH_ONLY=push,...]
# Included by the top Makefile after its rules (it uses $(B), obj, the
# LIBS_ variables and the deps and all targets).  Every figure comes with
# a baseline measured in the same run; a figure never fails the target,
# only a broken run does.  Results and the machine: BENCHMARKS.md.
# BENCH_ONLY names: push intake latency hook e2e memory register.
BENCH_SRCS	:= $(wildcard test/bench/*.c)
BENCH_QUICK	?=
BENCH_ONLY	?=

$(B)/test/mpbench: $(call obj,$(BENCH_SRCS)) $(B)/test/lib/harness.o \
    $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -pthread -o $@ $^ $(LIBS_SODIUM) $(LIBS_INIH)

bench: deps all $(B)/test/mpbench
	BENCH_QUICK=$(BENCH_QUICK) $(B)/test/mpbench \
	    $(if $(BENCH_ONLY),-o $(BENCH_ONLY))
.PHONY: bench
