# mailpush: plain GNU Makefile.  `make', `make check', `make demo',
# `make install', `make SANITIZE=1 check', `make e2e', `make bench', `make fuzz'.

PREFIX		?= /usr/local
SBINDIR		?= $(PREFIX)/sbin
BINDIR		?= $(PREFIX)/bin
LIBEXECDIR	?= $(PREFIX)/libexec
MANDIR		?= $(PREFIX)/share/man
SYSCONFDIR	?= $(PREFIX)/etc
SYSTEMDUNITDIR	?= $(PREFIX)/lib/systemd/system
DESTDIR		?=

PKG_CONFIG	?= pkg-config
CC		?= cc

ifeq ($(SANITIZE),1)
B		:= build-san
OPT		:= -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
		   -fno-sanitize-recover=undefined
SANLD		:= -fsanitize=address,undefined
else
B		:= build
OPT		:= -O2 -D_FORTIFY_SOURCE=2
SANLD		:=
endif

WARN		:= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
		   -Wmissing-prototypes -Wformat=2 -Wpointer-arith \
		   -Wcast-qual -Wwrite-strings -Wno-format-nonliteral \
		   -Wno-format-truncation
HARDEN		:= -fstack-protector-strong -fPIE -fstack-clash-protection
PKGS		:= libevent libsodium inih hiredis
PKG_CFLAGS	:= $(shell $(PKG_CONFIG) --cflags $(PKGS) check 2>/dev/null)
CPPFLAGS	+= -D_GNU_SOURCE -Ishared -Iclient \
		   -DMP_CONFIG_FILE='"$(SYSCONFDIR)/mailpush/mailpushd.conf"' \
		   -DMP_KEY_FILE='"$(SYSCONFDIR)/mailpush/mailpushd.key"'
CFLAGS		?=
ALL_CFLAGS	:= -std=gnu11 -g $(OPT) $(WARN) $(HARDEN) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS	:= -pie -Wl,-z,relro,-z,now $(SANLD) $(LDFLAGS)

LIBS_EVENT	= $(shell $(PKG_CONFIG) --libs libevent)
LIBS_SODIUM	= $(shell $(PKG_CONFIG) --libs libsodium)
LIBS_INIH	= $(shell $(PKG_CONFIG) --libs inih)
LIBS_CHECK	= $(shell $(PKG_CONFIG) --libs check)
LIBS_HIREDIS	= $(shell $(PKG_CONFIG) --libs hiredis)

SHARED_SRCS	:= $(wildcard shared/*.c)
DAEMON_SRCS	:= $(filter-out notifier/main.c notifier/mailpushctl%.c, \
		   $(wildcard notifier/*.c))
CLIENT_SRCS	:= $(filter-out client/mailpush-listen.c, $(wildcard client/*.c))
TEST_SRCS	:= $(wildcard test/check_*.c)
TEST_SUITES	:= $(patsubst test/check_%.c,%,$(filter-out test/check_main.c,$(TEST_SRCS)))
HELPER_SRCS	:= $(wildcard test/helpers/*.c)
TESTLIB_SRCS	:= $(wildcard test/lib/*.c)

obj		= $(patsubst %.c,$(B)/%.o,$(1))

PROGS		:= $(B)/mailpushd $(B)/mailpushctl $(B)/mailpush-hook \
		   $(B)/mailpush-listen
HELPERS		:= $(patsubst test/helpers/%.c,$(B)/test/%,$(HELPER_SRCS))
MANPAGES	:= $(wildcard man/*.[1-8])

DEBIAN_PKGS	:= gcc make pkg-config libevent-dev libinih-dev libsodium-dev \
		   check mandoc dovecot-dev libhiredis-dev redis-server

.PHONY: all deps check demo install lint clean e2e bench fuzz flood soak valgrind

all: $(PROGS) $(HELPERS) dovecot-plugin

include deliver-hook/dovecot/Makefile.inc

# Paths are compiled in: a build made for another PREFIX or SYSCONFDIR
# is rebuilt rather than installed with the wrong paths.
PATHS_STAMP	:= $(B)/.paths-$(subst /,_,$(SYSCONFDIR))
$(PATHS_STAMP):
	@mkdir -p $(B)
	@rm -f $(B)/.paths-*
	@touch $@

$(B)/%.o: %.c $(PATHS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libshared.a: $(call obj,$(SHARED_SRCS))
	rm -f $@ && ar rcs $@ $^
$(B)/libdaemon.a: $(call obj,$(DAEMON_SRCS))
	rm -f $@ && ar rcs $@ $^
$(B)/libmailpush-client.a: $(call obj,$(CLIENT_SRCS))
	rm -f $@ && ar rcs $@ $^

$(B)/mailpushd: $(B)/notifier/main.o $(B)/libdaemon.a $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_EVENT) $(LIBS_SODIUM) $(LIBS_INIH) \
	    $(LIBS_HIREDIS)
$(B)/mailpushctl: $(B)/notifier/mailpushctl.o $(B)/notifier/mailpushctl-key.o \
    $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SODIUM) $(LIBS_INIH)
# The hook runs once per delivered message: linked as a static PIE it
# starts as fast as /bin/true (no dynamic loader, no relocations of
# shared libraries; see BENCHMARKS.md).  glibc warns that getpwnam needs
# NSS at run time: the hook never looks up accounts (config.c).
HOOK_STATIC	:= $(if $(filter 1,$(SANITIZE)),,$(wildcard /usr/lib/*/libinih.a))
$(B)/mailpush-hook: $(B)/deliver-hook/mailpush-hook.o $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) $(if $(HOOK_STATIC),-static-pie) -o $@ $^ \
	    $(if $(HOOK_STATIC),-l:libinih.a,$(LIBS_INIH)) > $@.ld 2>&1 || \
	    { cat $@.ld; rm -f $@.ld; exit 1; }
	@rm -f $@.ld
$(B)/mailpush-listen: $(B)/client/mailpush-listen.o \
    $(B)/libmailpush-client.a $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SODIUM)

$(B)/test/%: $(B)/test/helpers/%.o $(B)/libmailpush-client.a $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SODIUM) $(LIBS_INIH)

# One Check runner; each test/check_NAME.c exports make_NAME_suite().
$(B)/test/suites.h: $(TEST_SRCS) Makefile
	@mkdir -p $(dir $@)
	printf '$(foreach s,$(TEST_SUITES),SUITE($(s))\n)' > $@
$(B)/test/check_main.o: $(B)/test/suites.h
$(B)/test/%.o: CPPFLAGS += -I$(B)/test -Itest/lib -DBUILDDIR='"$(B)"'
$(B)/test/%.o: ALL_CFLAGS += -Wno-cast-qual -Wno-missing-prototypes
$(B)/test/check_mailpush: $(call obj,$(TEST_SRCS) $(TESTLIB_SRCS)) $(B)/libdaemon.a \
    $(B)/libmailpush-client.a $(B)/libshared.a | $(PROGS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_CHECK) $(LIBS_EVENT) \
	    $(LIBS_SODIUM) $(LIBS_INIH) $(LIBS_HIREDIS)

# The test suite with every daemon it starts under valgrind memcheck: an
# error or a leak in mailpushd fails the test that started it.
valgrind: deps all $(B)/test/check_mailpush
	MP_VALGRIND=1 $(B)/test/check_mailpush

# Load tests: bounded in count and time, loopback only.
FLOOD_COUNT	?= 1000000
$(B)/test/flood-test: $(B)/test/flood/flood.o $(B)/test/lib/harness.o \
    $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SODIUM) $(LIBS_INIH)
flood: deps all $(B)/test/flood-test
	$(B)/test/flood-test $(FLOOD_COUNT)

SOAK_SECONDS	?= 600
$(B)/test/soak-test: $(B)/test/soak/soak.o $(B)/test/lib/harness.o \
    $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SODIUM) $(LIBS_INIH)
soak: deps all $(B)/test/soak-test
	$(B)/test/soak-test $(SOAK_SECONDS)

# Install missing Debian packages, and only those.
deps:
	@missing=""; for p in $(DEBIAN_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	    grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

check: deps
	$(MAKE) all $(B)/test/check_mailpush
	$(MAKE) lint
	$(B)/test/check_mailpush

lint:
	@out=$$(mandoc -Tlint -Wwarning $(MANPAGES) 2>&1); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	echo "mandoc -Tlint: $(words $(MANPAGES)) pages clean"

demo: deps
	$(MAKE) all
	sh test/demo.sh $(B)

e2e: all
	bash test/e2e/run.sh $(B)
	bash test/e2e/lmtp.sh $(B)
	bash test/e2e/provision.sh $(B)

install: all install-dovecot-plugin
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(LIBEXECDIR)/mailpush $(DESTDIR)$(SYSCONFDIR)/mailpush \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(B)/mailpushd $(B)/mailpushctl $(DESTDIR)$(SBINDIR)
	install -m 755 $(B)/mailpush-hook $(DESTDIR)$(LIBEXECDIR)/mailpush
	install -m 755 $(B)/mailpush-listen $(DESTDIR)$(BINDIR)
	for m in $(MANPAGES); do \
	    s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$s; done
	@# never overwrite an existing configuration
	sed 's|/usr/local/etc|$(SYSCONFDIR)|g' conf/mailpushd.conf \
	    > $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf.example
	chmod 644 $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf.example
	[ -e $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf ] || \
	    cp -p $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf.example \
	    $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed -e 's|/usr/local/sbin|$(SBINDIR)|g' \
	    -e 's|/usr/local/etc|$(SYSCONFDIR)|g' conf/mailpushd.service \
	    > $(DESTDIR)$(SYSTEMDUNITDIR)/mailpushd.service

clean:
	rm -rf build build-san build-fuzz

include test/fuzz/fuzz.mk
include test/bench/bench.mk

-include $(shell find $(B) -name '*.d' 2>/dev/null)
