# mailpush: plain GNU Makefile.  `make', `make check', `make demo',
# `make install', `make SANITIZE=1 check', `make e2e', `make nat',
# `make bench', `make fuzz'.

PREFIX		?= /usr/local
SBINDIR		?= $(PREFIX)/sbin
BINDIR		?= $(PREFIX)/bin
LIBEXECDIR	?= $(PREFIX)/libexec
MANDIR		?= $(PREFIX)/share/man
SYSCONFDIR	?= $(PREFIX)/etc
SYSTEMDUNITDIR	?= $(PREFIX)/lib/systemd/system
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
DOCDIR		?= $(PREFIX)/share/doc/mailpush
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
PKGS		:= libevent libsodium inih libcurl hiredis
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
LIBS_CURL	= $(shell $(PKG_CONFIG) --libs libcurl) -lresolv
LIBS_HIREDIS	= $(shell $(PKG_CONFIG) --libs hiredis)

SHARED_SRCS	:= $(wildcard shared/*.c)
DAEMON_SRCS	:= $(filter-out notifier/main.c notifier/mailpushctl%.c, \
		   $(wildcard notifier/*.c))
CLIENT_SRCS	:= $(filter-out client/mailpush-listen.c client/listen-%.c, \
		   $(wildcard client/*.c))
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
		   check mandoc dovecot-dev libhiredis-dev redis-server prometheus \
		   libcurl4-openssl-dev openssl dnsmasq

.PHONY: all deps check demo install install-data lint clean e2e nat bench \
	fuzz flood soak valgrind deb check-paths print-paths

all: $(PROGS) $(HELPERS) dovecot-plugin docs

include deliver-hook/dovecot/Makefile.inc

# Paths are compiled in: a build made for another PREFIX or SYSCONFDIR
# is rebuilt rather than installed with the wrong paths.
PATHS_STAMP	:= $(B)/.paths-$(subst /,_,$(SYSCONFDIR))
$(PATHS_STAMP):
	@mkdir -p $(B)
	@rm -f $(B)/.paths-*
	@touch $@

# The manual, README and conf/ name the default paths (/usr/local/...);
# their built copies in $(B)/man, $(B)/doc and $(B)/conf name this
# build's, and are what `make install' installs.  Sources are never
# rewritten.  paths.sed changes only when a path does.
DOC_CONF	:= $(filter-out conf/README%,$(wildcard conf/*))
DOCS		:= $(patsubst man/%,$(B)/man/%,$(MANPAGES)) $(B)/doc/README.md \
		   $(patsubst conf/%,$(B)/conf/%,$(DOC_CONF))
docs: $(DOCS)
$(B)/paths.sed: FORCE
	@mkdir -p $(B)
	@printf '%s\n' \
	    's|/usr/local/lib/systemd/system|$(SYSTEMDUNITDIR)|g' \
	    's|/usr/local/lib/systemd/user|$(SYSTEMDUSERUNITDIR)|g' \
	    's|/usr/local/share/doc/mailpush|$(DOCDIR)|g' \
	    's|/usr/local/etc/mailpush|$(SYSCONFDIR)/mailpush|g' \
	    's|/usr/local/libexec/mailpush|$(LIBEXECDIR)/mailpush|g' \
	    's|/usr/local/sbin/mailpush|$(SBINDIR)/mailpush|g' \
	    's|/usr/local/bin/mailpush|$(BINDIR)/mailpush|g' > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
$(B)/man/%: man/% $(B)/paths.sed
	@mkdir -p $(dir $@)
	sed -f $(B)/paths.sed $< > $@
$(B)/doc/README.md: README.md $(B)/paths.sed
	@mkdir -p $(dir $@)
	sed -f $(B)/paths.sed $< > $@
$(B)/conf/%: conf/% $(B)/paths.sed
	@mkdir -p $(dir $@)
	sed -f $(B)/paths.sed $< > $@
.PHONY: docs FORCE
FORCE:

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
$(B)/mailpush-hook: $(B)/deliver-hook/mailpush-hook.o \
    $(B)/deliver-hook/hookargs.o $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) $(if $(HOOK_STATIC),-static-pie) -o $@ $^ \
	    $(if $(HOOK_STATIC),-l:libinih.a,$(LIBS_INIH)) > $@.ld 2>&1 || \
	    { cat $@.ld; rm -f $@.ld; exit 1; }
	@rm -f $@.ld
$(B)/mailpush-listen: $(B)/client/mailpush-listen.o $(B)/client/listen-prov.o \
    $(B)/libmailpush-client.a $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_CURL) $(LIBS_SODIUM)

$(B)/test/%: $(B)/test/helpers/%.o $(B)/libmailpush-client.a $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_CURL) $(LIBS_SODIUM) $(LIBS_INIH)

# One Check runner; each test/check_NAME.c exports make_NAME_suite().
$(B)/test/suites.h: $(TEST_SRCS) Makefile
	@mkdir -p $(dir $@)
	printf '$(foreach s,$(TEST_SUITES),SUITE($(s))\n)' > $@
$(B)/test/check_main.o: $(B)/test/suites.h
$(B)/test/%.o: CPPFLAGS += -I$(B)/test -Itest/lib -Inotifier -DBUILDDIR='"$(abspath $(B))"'
$(B)/test/%.o: ALL_CFLAGS += -Wno-cast-qual -Wno-missing-prototypes
# The fault-injecting and tracing LD_PRELOAD library of check_journal.c.
$(B)/test/mpfault.so: test/preload/mpfault.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=gnu11 -g -O2 -Wall -Wextra -Werror -fPIC \
	    -shared -o $@ $< -ldl
$(B)/test/check_mailpush: $(call obj,$(TEST_SRCS) $(TESTLIB_SRCS)) $(B)/libdaemon.a \
    $(B)/libmailpush-client.a $(B)/libshared.a | $(PROGS) $(B)/test/mpfault.so
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_CHECK) $(LIBS_EVENT) \
	    $(LIBS_CURL) $(LIBS_SODIUM) $(LIBS_INIH) $(LIBS_HIREDIS)

# The test suite with every daemon it starts under valgrind memcheck: an
# error or a leak in mailpushd fails the test that started it.
valgrind: deps all $(B)/test/check_mailpush
	MP_VALGRIND=1 $(B)/test/check_mailpush

# Load tests: bounded in count and time, loopback only.
FLOOD_COUNT	?= 1000000
$(B)/test/flood-test: $(B)/test/flood/flood.o $(B)/test/lib/harness.o \
    $(B)/test/lib/tclient.o $(B)/libshared.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_SODIUM) $(LIBS_INIH)
flood: deps all $(B)/test/flood-test
	$(B)/test/flood-test $(FLOOD_COUNT)

SOAK_SECONDS	?= 600
$(B)/test/soak-test: $(B)/test/soak/soak.o $(B)/test/lib/harness.o \
    $(B)/test/lib/tclient.o $(B)/libshared.a
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
	sh test/paths.sh $(B)
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
	bash test/e2e/srv.sh $(B)
	bash test/nat/run.sh $(B)

# Clients behind real NATs in network namespaces (root; part of e2e).
nat: all
	bash test/nat/run.sh $(B)

install: all install-data install-dovecot-plugin
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) \
	    $(DESTDIR)$(LIBEXECDIR)/mailpush
	install -m 755 $(B)/mailpushd $(B)/mailpushctl $(DESTDIR)$(SBINDIR)
	install -m 755 $(B)/mailpush-hook $(DESTDIR)$(LIBEXECDIR)/mailpush
	install -m 755 $(B)/mailpush-listen $(DESTDIR)$(BINDIR)

# Everything but the programs: the manual, README and examples, the
# configuration and the systemd units, with this build's paths.
install-data: docs
	install -d $(DESTDIR)$(SYSCONFDIR)/mailpush $(DESTDIR)$(DOCDIR)/examples \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSTEMDUSERUNITDIR)
	for m in $(MANPAGES); do s=$${m##*.}; \
	    install -m 644 $(B)/$$m $(DESTDIR)$(MANDIR)/man$$s; done
	install -m 644 $(B)/doc/README.md $(DESTDIR)$(DOCDIR)
	install -m 644 $(patsubst conf/%,$(B)/conf/%,$(DOC_CONF)) \
	    $(DESTDIR)$(DOCDIR)/examples
	@# never overwrite an existing configuration
	install -m 644 $(B)/conf/mailpushd.conf \
	    $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf.example
	[ -e $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf ] || \
	    install -m 644 $(B)/conf/mailpushd.conf \
	    $(DESTDIR)$(SYSCONFDIR)/mailpush/mailpushd.conf
	install -m 644 $(B)/conf/mailpushd.service $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 644 $(B)/conf/mailpush-listen.service \
	    $(DESTDIR)$(SYSTEMDUSERUNITDIR)

# For test/paths.sh: this build's paths, as shell assignments.
print-paths:
	@echo PREFIX=$(PREFIX) SBINDIR=$(SBINDIR) BINDIR=$(BINDIR) \
	    LIBEXECDIR=$(LIBEXECDIR) MANDIR=$(MANDIR) SYSCONFDIR=$(SYSCONFDIR) \
	    SYSTEMDUNITDIR=$(SYSTEMDUNITDIR) DOCDIR=$(DOCDIR) \
	    SYSTEMDUSERUNITDIR=$(SYSTEMDUSERUNITDIR)

# The installed manual names the installed paths, for two prefixes.
check-paths: all
	sh test/paths.sh $(B)

# Debian packages (debian/), built from a copy of the tree in
# build-deb/src; the .deb files land in build-deb/.
deb:
	rm -rf build-deb && mkdir -p build-deb/src
	tar -cf - --exclude='./build*' --exclude=./.git . | \
	    tar -xf - -C build-deb/src
	cd build-deb/src && dpkg-buildpackage -us -uc -b
	@ls -l build-deb/*.deb

clean:
	rm -rf build build-san build-fuzz build-deb

include test/fuzz/fuzz.mk
include test/bench/bench.mk

-include $(shell find $(B) -name '*.d' 2>/dev/null)
