/*
 * main.c: mailpushd's entry point, apart so the tests and fuzzers can link
 * the rest of the daemon.
 */
#include "mailpushd.h"

int
main(int argc, char *argv[])
{
	return mailpushd_main(argc, argv);
}
