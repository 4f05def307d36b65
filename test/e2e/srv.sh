#!/bin/bash
# test/e2e/srv.sh BUILD_DIR: `make e2e', discovery by DNS SRV and fail-over
# (mailpush-protocol(7) DISCOVERY), on loopback:
#
#   - dnsmasq on a free loopback port serves two records for
#     _mailpush._udp.srv.example.test: localhost:P1 priority 10 and
#     localhost:P2 priority 20;
#   - two mailpushd with the same key listen on P1 and P2 (keepalive_min
#     4s, so the client keeps alive every 4 s);
#   - mailpush-listen -S srv.example.test -R 127.0.0.1:DNSPORT registers
#     with P1 and gets a push; P1 is killed (SIGKILL); the client must be
#     registered with P2 within two keep-alive intervals (8 s) and get a
#     push from it; P1 is started again, and the client goes back to it
#     after its fail-back time (-B 6) and gets a push from it.
#
# Needs dnsmasq (Debian package dnsmasq; installed when missing, as root).
# Starts no Postfix or Dovecot, so it takes no MTA lock.  Everything it
# makes is under /tmp/mailpush-srv.* and removed at the end.
set -euo pipefail

T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { printf 'e2e-srv: %s\n' "$*"; }
die() { printf 'e2e-srv: FAIL: %s\n' "$*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: bash test/e2e/srv.sh BUILD_DIR" >&2; exit 64; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "$ROOT" && cd "$1" && pwd) || die "no build directory $1"
for p in mailpushd mailpushctl mailpush-hook mailpush-listen; do
	[ -x "$B/$p" ] || die "$B/$p missing (run make first)"
done
if ! command -v dnsmasq >/dev/null && [ -x /usr/sbin/dnsmasq ]; then
	PATH=$PATH:/usr/sbin
fi
if ! command -v dnsmasq >/dev/null; then
	[ "$(id -u)" -eq 0 ] || die "dnsmasq is not installed (apt-get install dnsmasq)"
	say "installing dnsmasq"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends dnsmasq >/dev/null
fi

T=$(mktemp -d /tmp/mailpush-srv.XXXXXX)
PIDS=""
cleanup() {
	local rc=$? p
	set +e
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	if [ $rc -ne 0 ]; then
		for f in "$T"/*.log "$T"/listen.err; do
			[ -s "$f" ] || continue
			echo "---- $(basename "$f") (last 20 lines)"
			tail -20 "$f"
		done
	fi
	rm -rf "$T"
	say "total $(( $(ms "$T0") / 1000 )) s"
	if [ $rc -eq 0 ]; then say "PASS"; else say "FAIL"; fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

free_port() {	# a UDP port free on 127.0.0.1 and, if there is one, ::1
	python3 -c 'import socket
while True:
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    try:
        b = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        b.bind(("::1", p))
    except OSError as e:
        if e.errno == 99: print(p); break	# no ::1 here
        continue
    print(p); break'
}
P1=$(free_port)
P2=$(free_port)
DNS=$(free_port)
V6=no
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null && V6=yes

write_conf() {	# write_conf N PORT
	local listen="127.0.0.1:$2"
	[ "$V6" = yes ] && listen="$listen [::1]:$2"
	mkdir -p "$T/n$1"
	cat > "$T/n$1/mailpushd.conf" <<-EOF
	[mailpushd]
	user =
	listen = $listen
	key_file = $T/key
	state_file = $T/n$1/state
	control_socket = $T/n$1/control.sock
	[events]
	socket = $T/n$1/event.sock
	[limits]
	keepalive_min = 4s
	registration_lifetime = 60s
	EOF
}
write_conf 1 "$P1"
write_conf 2 "$P2"
"$B/mailpushctl" -c "$T/n1/mailpushd.conf" genkey >/dev/null
"$B/mailpushctl" -c "$T/n1/mailpushd.conf" token alice > "$T/alice.token"
chmod 600 "$T/alice.token"

start_daemon() {	# start_daemon N: prints the pid
	"$B/mailpushd" -d -v -c "$T/n$1/mailpushd.conf" >> "$T/mailpushd$1.log" 2>&1 &
	echo $!
}
wait_for() {	# wait_for FILE TEXT COUNT SECONDS
	local end=$(( $(date +%s%N) + $4 * 1000000000 ))
	while [ "$(grep -c -- "$2" "$1" 2>/dev/null || true)" -lt "$3" ]; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.1
	done
}
N1=$(start_daemon 1); PIDS="$PIDS $N1"
N2=$(start_daemon 2); PIDS="$PIDS $N2"
wait_for "$T/mailpushd1.log" "started:" 1 10 || die "mailpushd 1 did not start"
wait_for "$T/mailpushd2.log" "started:" 1 10 || die "mailpushd 2 did not start"

dnsmasq --keep-in-foreground --no-daemon --no-resolv --no-hosts \
    --port="$DNS" --listen-address=127.0.0.1 --bind-interfaces \
    --user=root --pid-file= --log-facility=- --log-queries \
    --srv-host="_mailpush._udp.srv.example.test,localhost,$P1,10,100" \
    --srv-host="_mailpush._udp.srv.example.test,localhost,$P2,20,100" \
    > "$T/dnsmasq.log" 2>&1 &
PIDS="$PIDS $!"
wait_for "$T/dnsmasq.log" "started" 1 10 || die "dnsmasq did not start"
say "dnsmasq on 127.0.0.1:$DNS: _mailpush._udp.srv.example.test ->" \
    "localhost:$P1 (priority 10), localhost:$P2 (priority 20)"

"$B/mailpush-listen" -v -S srv.example.test -R "127.0.0.1:$DNS" -N -B 6 \
    -u alice -K "$T/alice.token" > "$T/listen.out" 2> "$T/listen.err" &
L=$!; PIDS="$PIDS $L"
wait_for "$T/listen.err" "registered id=" 1 10 || die "client not registered"
grep -q "_mailpush._udp.srv.example.test: localhost:$P1 localhost:$P2" \
    "$T/listen.err" || die "the SRV order is not priority 10 first"
wait_for "$T/mailpushd1.log" "registered" 1 5 || die "not registered with $P1"
event() {	# event N: an event for alice through notifier N's socket
	"$B/mailpush-hook" -c "$T/n$1/mailpushd.conf" -u alice -m INBOX
}
event 1
wait_for "$T/listen.out" "^push user=alice" 1 10 || die "no push from $P1"
say "registered with the preferred notifier (priority 10) and got its push"

t=$(date +%s%N)
kill -KILL "$N1"; wait "$N1" 2>/dev/null || true
wait_for "$T/listen.err" "localhost:$P1 does not answer: registering at localhost:$P2" 1 8 ||
    die "the client did not move to $P2 within two keep-alive intervals (8 s)"
wait_for "$T/listen.err" "registered id=" 2 8 || die "not registered with $P2"
moved=$(ms "$t")
[ "$moved" -le 8000 ] || die "moved after $moved ms, more than 8 s"
event 2
wait_for "$T/listen.out" "^push user=alice" 2 10 || die "no push from $P2"
say "notifier $P1 killed: the client registered with $P2 after $moved ms" \
    "(keep-alive 4 s) and got its push"

N1=$(start_daemon 1); PIDS="$PIDS $N1"
wait_for "$T/mailpushd1.log" "started:" 2 10 || die "mailpushd 1 did not restart"
wait_for "$T/listen.err" "localhost:$P2 was the fall-back for long enough: registering at localhost:$P1" 1 15 ||
    die "the client did not go back to $P1"
wait_for "$T/listen.err" "registered id=" 3 10 || die "not registered again with $P1"
event 1
wait_for "$T/listen.out" "^push user=alice" 3 10 || die "no push from $P1 after going back"
say "notifier $P1 back: the client returned to it after its fail-back time" \
    "and got its push"
