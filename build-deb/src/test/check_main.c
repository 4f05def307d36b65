/*
 * check_main.c: the one Check runner.  The Makefile lists every
 * test/check_NAME.c in suites.h; each exports make_NAME_suite().
 * CK_FORK=no runs in one process for gdb and valgrind.
 */
#include <stdlib.h>

#include <check.h>

#define SUITE(n)	Suite *make_##n##_suite(void);
#include "suites.h"
#undef SUITE

int
main(void)
{
	SRunner *sr = srunner_create(NULL);
	int failed;

#define SUITE(n)	srunner_add_suite(sr, make_##n##_suite());
#include "suites.h"
#undef SUITE
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
