#!/bin/sh
# paths.sh BUILDDIR: what an administrator reads on the machine is what
# the programs do.  Installs the manual, README, examples, configuration
# and units (make install-data) into two DESTDIRs with two different
# prefixes and checks that the installed pages name the installed paths
# and no default (/usr/local) path is left; then that the configuration
# path compiled into BUILDDIR's programs is the one BUILDDIR's manual
# names.  Takes about a second (sed and mandoc only, no compiling).
set -eu
B=${1:-build}
t=$(mktemp -d /tmp/mailpush-paths.XXXXXX)
trap 'rm -rf "$t"' EXIT
fail=0
bad() { echo "paths: FAIL: $*" >&2; fail=1; }

# $1 the file, $2 a string it must contain (in the rendered page for man)
has() {
	case $1 in
	*.[1-8]) mandoc -Tascii "$1" | sed "s/.\x08//g" | tr -s ' \n' '  ' | grep -qF -- "$2" ;;
	*) grep -qF -- "$2" "$1" ;;
	esac || bad "$1 does not name $2"
}

check() {	# name, then make variables
	name=$1; shift
	d=$t/$name
	make -s --no-print-directory B="$t/b-$name" DESTDIR="$d" "$@" \
	    install-data >/dev/null
	eval "$(make -s --no-print-directory B="$t/b-$name" "$@" \
	    print-paths)"
	man=$d$MANDIR
	for f in "$man/man8/mailpushd.8" "$man/man5/mailpushd.conf.5" \
	    "$man/man8/mailpushctl.8" "$man/man8/mailpush-hook.8"; do
		[ -f "$f" ] || { bad "$f not installed"; continue; }
		has "$f" "$SYSCONFDIR/mailpush/mailpushd.conf"
	done
	has "$man/man8/mailpushd.8" "$SYSCONFDIR/mailpush/mailpushd.key"
	has "$man/man8/mailpush-hook.8" "$LIBEXECDIR/mailpush/mailpush-hook"
	has "$man/man8/mailpushd.8" "$SYSTEMDUNITDIR"
	has "$d$DOCDIR/README.md" "$SYSCONFDIR/mailpush/mailpushd.conf"
	has "$d$DOCDIR/README.md" "$LIBEXECDIR/mailpush/mailpush-hook"
	has "$d$DOCDIR/examples/postfix-main.cf" \
	    "mailbox_command = $LIBEXECDIR/mailpush/mailpush-hook"
	has "$d$DOCDIR/examples/postfix-master.cf" \
	    "argv=$LIBEXECDIR/mailpush/mailpush-hook"
	has "$d$SYSCONFDIR/mailpush/mailpushd.conf" \
	    "key_file = $SYSCONFDIR/mailpush/mailpushd.key"
	has "$d$SYSTEMDUNITDIR/mailpushd.service" \
	    "ExecStart=$SBINDIR/mailpushd"
	has "$d$SYSTEMDUSERUNITDIR/mailpush-listen.service" \
	    "ExecStart=$BINDIR/mailpush-listen"
	has "$d$DOCDIR/examples/mailpush-metrics.service" \
	    "$SBINDIR/mailpushctl stats -o prometheus"
	# nothing installed names a default path this install does not use
	left=$(grep -rlE '/usr/local/(etc|libexec|sbin|bin)/mailpush|/usr/local/lib/systemd|/usr/local/share/doc' "$d" || true)
	if [ "$PREFIX" != /usr/local ] && [ -n "$left" ]; then
		bad "$name: default paths left in: $left"
		grep -rnE '/usr/local/(etc|libexec|sbin|bin)/mailpush|/usr/local/lib/systemd|/usr/local/share/doc' "$d" >&2 | head -5
	fi
	echo "paths: $name ($PREFIX, $SYSCONFDIR): $(find "$d" -type f | wc -l) files checked"
}

check debian PREFIX=/usr SYSCONFDIR=/etc LIBEXECDIR=/usr/libexec \
    SYSTEMDUNITDIR=/lib/systemd/system
check opt PREFIX=/opt/mailpush

# the built programs read the file the built manual names
conf=$(strings "$B/mailpushctl" | grep -m1 '/mailpush/mailpushd\.conf$' || true)
[ -n "$conf" ] || bad "no configuration path in $B/mailpushctl"
for p in mailpushd mailpush-hook; do
	strings "$B/$p" | grep -qxF "$conf" || bad "$B/$p does not read $conf"
done
grep -qF "$conf" "$B/man/mailpushd.8" || bad "$B/man/mailpushd.8 does not name $conf"
grep -qF "$conf" "$B/doc/README.md" || bad "$B/doc/README.md does not name $conf"
# every page and conf/ file goes into a Debian package (make deb's
# dh_missing --fail-missing would stop on it much later)
for m in man/*.[1-8]; do
	n=${m#man/}; s=${n##*.}
	grep -qxF -e "usr/share/man/man$s/*" -e "usr/share/man/man$s/$n" \
	    debian/*.install ||
	    bad "$m is in no debian/*.install (add usr/share/man/man$s/$n)"
done
[ $fail = 0 ] && echo "paths: the manual names the paths the programs use ($conf)"
exit $fail
