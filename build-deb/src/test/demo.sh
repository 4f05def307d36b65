#!/bin/sh
# make demo: a notifier, three deliveries through mailpush-hook in wrapper
# mode and a client receiving each push, all on loopback, no root, no MTA.
set -eu
B=${1:-build}
DIR=$(mktemp -d /tmp/mailpush-demo.XXXXXX)
PORT=$((20000 + $$ % 20000))
DPID= LPID=
cleanup() {
	[ -n "$LPID" ] && kill "$LPID" 2>/dev/null || true
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

say() { printf '\n== %s\n' "$*"; }

say "configuration: conf/mailpushd.conf adjusted to $DIR, UDP port $PORT on loopback"
sh test/confset.sh conf/mailpushd.conf \
    mailpushd user "" \
    mailpushd listen "127.0.0.1:$PORT [::1]:$PORT" \
    mailpushd key_file "$DIR/mailpushd.key" \
    mailpushd state_file "$DIR/registrations" \
    mailpushd control_socket "$DIR/control.sock" \
    events socket "$DIR/event.sock" \
    > "$DIR/mailpushd.conf"
"$B/mailpushd" -n -c "$DIR/mailpushd.conf" > /dev/null
"$B/mailpushctl" -c "$DIR/mailpushd.conf" genkey
"$B/mailpushctl" -c "$DIR/mailpushd.conf" token demo > "$DIR/demo.token"
echo "token for user demo: $(cat "$DIR/demo.token")"

say "starting mailpushd"
"$B/mailpushd" -d -c "$DIR/mailpushd.conf" 2> "$DIR/mailpushd.log" &
DPID=$!
i=0
until "$B/mailpushctl" -c "$DIR/mailpushd.conf" status > /dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 200 ] || { cat "$DIR/mailpushd.log"; exit 1; }
	sleep 0.05
done
"$B/mailpushctl" -c "$DIR/mailpushd.conf" status

say "starting mailpush-listen for user demo"
"$B/mailpush-listen" -s "127.0.0.1:$PORT" -u demo -K "$DIR/demo.token" \
    -t 30 > "$DIR/pushes" 2> "$DIR/listen.log" &
LPID=$!
i=0
until [ "$("$B/mailpushctl" -c "$DIR/mailpushd.conf" -j status | sed 's/.*"registrations":\([0-9]*\).*/\1/')" = 1 ]; do
	i=$((i + 1)); [ $i -lt 200 ] || { cat "$DIR/listen.log"; exit 1; }
	sleep 0.05
done
"$B/mailpushctl" -c "$DIR/mailpushd.conf" list

mkdir -p "$DIR/Maildir/new"
for n in 1 2 3; do
	say "delivering message $n through mailpush-hook (wrapper mode)"
	rc=0
	printf 'From: demo@example.org\nSubject: message %s\n\nhello %s\n' $n $n |
	    "$B/mailpush-hook" -c "$DIR/mailpushd.conf" -u Demo+news -- \
	    /bin/sh -c "cat > $DIR/Maildir/new/msg$n" || rc=$?
	echo "delivered: $(sed -n 2p "$DIR/Maildir/new/msg$n") (hook exit $rc)"
	i=0
	until [ "$(wc -l < "$DIR/pushes")" -ge $n ]; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "no push"; exit 1; }
		sleep 0.02
	done
	echo "pushed:    $(sed -n "${n}p" "$DIR/pushes")"
done

say "counters"
"$B/mailpushctl" -c "$DIR/mailpushd.conf" stats | grep -E '^(events_in|pushes|acks|registrations) '
say "done: 3 messages delivered, 3 pushes received"
