/*
 * fuzz_depth.h: how `make fuzz' knows that a seed corpus still reaches
 * past a target's first check.  A target calls fuzz_deep() when an input
 * got there (an event decoded, a state line became a registration, a
 * control request was recognised...).  With FUZZ_DEPTH set in the
 * environment the count is printed at exit as "fuzz-depth: N"; make fuzz
 * runs each seed once (-runs=0) and fails when N is 0, which is what an
 * outdated seed format gives (the state seeds once stopped every line at
 * the field count: 57 edges instead of 258).
 */
#ifndef MP_FUZZ_DEPTH_H
#define MP_FUZZ_DEPTH_H

void	fuzz_deep(void);

#endif
