#!/bin/bash
# test/deb/smoke.sh: the Debian packages, as an administrator gets them.
# Builds them (make deb), runs lintian (no error, no warning: overrides
# are listed and justified in debian/*.lintian-overrides), installs them
# with apt, checks what postinst made (user, key, state directory) and
# that a changed configuration survives a reinstall; then runs the
# installed files: mailpushd started, mailpush-listen registered, a push
# through the installed hook, the counters read by promtool, the daemon
# stopped; then purges and checks that nothing of the packages is left.
#
# Root only (it installs packages and starts the daemon as root, which
# drops to the mailpush user).  Holds /tmp/mailpush-mta.lock, as the e2e
# tests do, because it uses the default /run/mailpush.  About 45 s, most
# of it building (SMOKE_NO_BUILD=1 uses the packages in build-deb/).
set -euo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s%N)
say() { printf 'deb: %s\n' "$*"; }
die() { say "FAIL: $*"; exit 1; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

if [ "$(id -u)" != 0 ]; then
	say "skipped: needs root (it installs packages); CI runs it as root"
	exit 0
fi
exec 9>/tmp/mailpush-mta.lock
if ! flock -n 9; then
	say "waiting for /tmp/mailpush-mta.lock"
	flock -w 600 9 || die "/tmp/mailpush-mta.lock still held after 600 s"
fi
PKGS="mailpush mailpush-listen dovecot-mailpush"
for p in $PKGS; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep installed >/dev/null; then
		die "$p is installed already; not touching it (dpkg --purge $p)"
	fi
done
if getent passwd mailpush >/dev/null; then
	OLDUSER=1
	say "note: a mailpush user exists already; it must survive the purge"
else
	OLDUSER=0
fi

T=$(mktemp -d /tmp/mailpush-deb.XXXXXX)
PID=
LPID=
cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null || true
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	if dpkg-query -W -f='${Status}' mailpush 2>/dev/null | grep installed >/dev/null
	then
		say "purging after a failure"
		dpkg --purge $PKGS >/dev/null 2>&1 || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT

if [ "${SMOKE_NO_BUILD:-0}" != 1 ]; then
	t=$(date +%s%N)
	make deb > "$T/build.log" 2>&1 || { tail -30 "$T/build.log"; die "make deb"; }
	say "make deb: $(ms "$t") ms"
fi
DEBS=$(ls build-deb/mailpush_*.deb build-deb/mailpush-listen_*.deb \
    build-deb/dovecot-mailpush_*.deb)

t=$(date +%s%N)
if ! lintian --fail-on error,warning --display-info build-deb/*.changes \
    > "$T/lintian" 2>&1; then
	cat "$T/lintian"
	die "lintian found errors or warnings"
fi
grep -v "running with root privileges" "$T/lintian" | sed 's/^/deb: lintian: /' || true
say "lintian: no errors or warnings, overrides: $(cat debian/*.lintian-overrides | grep -c '^[a-z]') ($(ms "$t") ms)"

# --- install ---------------------------------------------------------------
t=$(date +%s%N)
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $(printf './%s ' $DEBS) \
    > "$T/apt.log" 2>&1 || { cat "$T/apt.log"; die "apt-get install"; }
say "installed with apt-get: $(ms "$t") ms"
getent passwd mailpush >/dev/null || die "postinst made no mailpush user"
uid=$(id -u mailpush)
[ "$uid" -lt 1000 ] || die "mailpush is not a system user (uid $uid)"
KEY=/etc/mailpush/mailpushd.key
[ "$(stat -c '%U %a' $KEY)" = "mailpush 600" ] ||
    die "$KEY is $(stat -c '%U %a' $KEY), not mailpush 600"
[ "$(stat -c '%U %a' /var/lib/mailpush)" = "mailpush 700" ] ||
    die "/var/lib/mailpush is $(stat -c '%U %a' /var/lib/mailpush)"
dpkg-query -W -f='${Conffiles}\n' mailpush | grep ' /etc/mailpush/mailpushd.conf ' >/dev/null ||
    die "/etc/mailpush/mailpushd.conf is not a conffile"
dep=$(dpkg-query -W -f='${Depends}' dovecot-mailpush)
abi=$(tr A-Z a-z < /usr/share/dovecot/dovecot-abi)
case $dep in *"dovecot-abi-$abi"*) ;; *) die "dovecot-mailpush depends on '$dep'";; esac
# (grep reads to the end: with pipefail, an early grep -q exit would
# fail the pipeline on zcat's SIGPIPE)
zcat /usr/share/man/man8/mailpushd.8.gz | grep /etc/mailpush/mailpushd.conf >/dev/null ||
    die "the installed mailpushd(8) does not name /etc/mailpush/mailpushd.conf"
grep -q '^mailbox_command = /usr/libexec/mailpush/mailpush-hook' \
    /usr/share/doc/mailpush/examples/postfix-main.cf ||
    die "the installed postfix-main.cf does not name the installed hook"
[ -f /usr/lib/dovecot/modules/lib30_mailpush_plugin.so ] || die "no plugin"
# the installed units as systemd reads them (no systemd needs to run)
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify --man=no /lib/systemd/system/mailpushd.service \
	    /usr/share/doc/mailpush/examples/mailpush-metrics.service \
	    /usr/share/doc/mailpush/examples/mailpush-metrics.timer \
	    > "$T/verify" 2>&1 || true
	if [ -s "$T/verify" ]; then
		cat "$T/verify"
		die "systemd-analyze verify complains about the units"
	fi
	say "systemd-analyze verify: mailpushd.service and the metrics timer are clean"
fi
# a user unit is for each user to enable: none enabled for everybody
if ls /etc/systemd/user/*.wants/mailpush-listen.service >/dev/null 2>&1; then
	die "installing mailpush-listen enabled its user unit for every user"
fi
say "postinst: user mailpush (uid $uid), key 0600, state directory, conffile; plugin depends on dovecot-abi-$abi"

# A changed configuration survives a reinstall; the key is never replaced.
PORT=$(python3 -c 'import socket
for p in range(24650, 24750):
    try:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", p))
        b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); b.bind(("::1", p))
        print(p); break
    except OSError: pass')
[ -n "$PORT" ] || die "no free UDP port"
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT/" /etc/mailpush/mailpushd.conf
sum=$(md5sum < $KEY)
dpkg -i --force-confold build-deb/mailpush_*.deb > "$T/reinstall.log" 2>&1 ||
    { cat "$T/reinstall.log"; die "reinstall"; }
grep -q "^listen = 127.0.0.1:$PORT\$" /etc/mailpush/mailpushd.conf ||
    die "reinstalling overwrote the changed mailpushd.conf"
[ "$(md5sum < $KEY)" = "$sum" ] || die "reinstalling replaced the key"
say "reinstall kept the changed configuration and the key"

# --- smoke test against the installed files -----------------------------------
/usr/sbin/mailpushd -n > /dev/null || die "mailpushd -n"
/usr/sbin/mailpushd -dv 2> "$T/mailpushd.log" &
PID=$!
for _ in $(seq 50); do
	/usr/sbin/mailpushctl status > "$T/status" 2>/dev/null && break
	sleep 0.1
done
/usr/sbin/mailpushctl status > "$T/status" || { cat "$T/status" "$T/mailpushd.log"; die "mailpushctl status"; }
grep -q "^health: ok" "$T/status" || die "status: $(cat "$T/status")"
ps -o user= -p "$PID" | grep -x mailpush >/dev/null || die "mailpushd does not run as mailpush"
/usr/sbin/mailpushctl token smoke17 > "$T/token"
/usr/bin/mailpush-listen -1 -v -t 20 -s "127.0.0.1:$PORT" -u smoke17 \
    -K "$T/token" > "$T/listen.out" 2> "$T/listen.err" &
LPID=$!
# `list USER' exits 0 with "no registrations": wait for the client's own
# word that its REGISTERED came back (-v), then check the daemon's list
for _ in $(seq 200); do
	grep -q "registered id=" "$T/listen.err" && break
	sleep 0.05
done
/usr/sbin/mailpushctl list smoke17 > "$T/list" || die "mailpushctl list smoke17"
grep -q "smoke17" "$T/list" ||
    die "mailpush-listen did not register: $(cat "$T/list" "$T/listen.err")"
t=$(date +%s%N)
/usr/libexec/mailpush/mailpush-hook -d -u smoke17 -m INBOX 2> "$T/hook.err" ||
    die "mailpush-hook: $(cat "$T/hook.err")"
rc=0
wait "$LPID" || rc=$?
LPID=
if [ "$rc" != 0 ] || ! grep -q "^push user=smoke17 seq=1 count=1" "$T/listen.out"
then
	# everything that tells where the push went
	for f in hook.err listen.err listen.out mailpushd.log; do
		sed "s/^/deb: $f: /" "$T/$f"
	done
	/usr/sbin/mailpushctl list smoke17 | sed 's/^/deb: list: /' || true
	/usr/sbin/mailpushctl stats | sed 's/^/deb: stats: /' || true
	die "no push (mailpush-listen -1 exited $rc)"
fi
say "pushed through the installed hook to the installed mailpush-listen in $(ms "$t") ms"
/usr/sbin/mailpushctl stats -o prometheus > "$T/metrics"
promtool check metrics < "$T/metrics" || die "promtool check metrics"
grep -q '^mailpush_pushes_total 1$' "$T/metrics" || die "$(cat "$T/metrics")"
kill "$PID"
wait "$PID" || die "mailpushd exited $? on SIGTERM: $(cat "$T/mailpushd.log")"
PID=
[ "$(stat -c %U /var/lib/mailpush/registrations)" = mailpush ] ||
    die "the state file was not written by mailpush"
say "mailpushd stopped cleanly; promtool accepts its counters"

# --- purge ---------------------------------------------------------------------
dpkg -L $PKGS 2>/dev/null | sort -u > "$T/files"
dpkg --purge $PKGS > "$T/purge.log" 2>&1 || { cat "$T/purge.log"; die "purge"; }
left=
while read -r f; do
	# a directory others still use is theirs too
	if [ -d "$f" ] && [ -n "$(ls -A "$f")" ]; then
		continue
	fi
	if [ -e "$f" ]; then left="$left $f"; fi
done < "$T/files"
for f in /etc/mailpush /var/lib/mailpush /run/mailpush; do
	if [ -e "$f" ]; then left="$left $f"; fi
done
[ -z "$left" ] || die "left after purge:$left"
if [ $OLDUSER = 0 ]; then
	getent passwd mailpush >/dev/null && die "the mailpush user is left"
	getent group mailpush >/dev/null && die "the mailpush group is left"
else
	getent passwd mailpush >/dev/null || die "purge removed a mailpush user it did not make"
fi
say "purge left nothing of the packages (files, /etc/mailpush, key, state, user)"
say "PASS in $(ms "$T0") ms"
