#!/bin/bash
# test/e2e/run.sh BUILD_DIR: `make e2e', the end-to-end test with a real
# Postfix and Dovecot on loopback:
#
#   pipe:  SMTP 127.0.0.1:25 -> Postfix -> pipe(8) -> mailpush-hook wrapper
#          -> dovecot-lda -d -> Maildir        (virtual users alice, bob)
#   local: SMTP -> Postfix local(8) -> mailbox_command -> mailpush-hook
#          wrapper -> dovecot-lda -> ~/Maildir (system users mpcarol, mpdave)
#   lmtp:  SMTP -> Postfix -> Dovecot LMTP -> the mailpush push_notification
#          driver (when BUILD_DIR/dovecot/lib30_mailpush_plugin.so exists)
#
# each followed by mailpushd -> mailpush-listen, one listener per user, and
# timed against an IMAP IDLE connection of the same user.  The checks are in
# e2e.py beside this file.  Then the pipe and local pipelines once more with
# the backend as a [cluster] relay: mailpush-hook -> mailpushd (relay) ->
# redis-server (a Unix socket here) -> mailpushd (notifier) -> the
# listeners (mailpush-cluster(7); skipped when redis-server is missing);
# E2E_CLUSTER_ONLY=1 runs this pass alone (virtual users through LMTP
# when the Dovecot plugin is built).
#
# Needs root on a Debian 12 machine; installs postfix, dovecot-core and
# dovecot-imapd (and dovecot-lmtpd) with debconf preseeding when they are
# missing.  Postfix and Dovecot are configured from the snippets users copy
# (conf/postfix-main.cf, conf/postfix-master.cf, conf/dovecot-lda.conf,
# conf/postfix-lmtp.cf, conf/dovecot-lmtp.conf) with only their paths
# changed, plus the settings of this test machine (host name, ports, log
# files, passwords).  /etc/postfix and /etc/dovecot are backed up first and
# restored at the end.  Holds /tmp/mailpush-mta.lock (flock) while Postfix
# or Dovecot run, and waits (bounded) for any other Postfix or Dovecot to
# stop before starting its own.  mailpushd runs as root and drops to the
# system user mailpush (created for the test), with conf/mailpushd.conf
# adjusted by test/confset.sh (paths, port, registration_lifetime = 8s so
# that listeners notice a restart that lost the state within seconds).  On
# exit everything it started is stopped and everything it created is
# removed.  Prints its total time; exits non-zero on any failure.
# E2E_PER_USER=N (default 4): timed messages per user and pipeline.
set -euo pipefail

T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { printf 'e2e: %s\n' "$*"; }
die() { printf 'e2e: FAIL: %s\n' "$*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: bash test/e2e/run.sh BUILD_DIR" >&2; exit 64; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "$ROOT" && cd "$1" && pwd) || die "no build directory $1"
for p in mailpushd mailpushctl mailpush-hook mailpush-listen; do
	[ -x "$B/$p" ] || die "$B/$p missing (run make first)"
done
[ "$(id -u)" -eq 0 ] || die "must run as root: it installs, configures and runs Postfix and Dovecot"
PLUGIN=$B/dovecot/lib30_mailpush_plugin.so
LOCK=/tmp/mailpush-mta.lock
HOOK_CONF=/usr/local/etc/mailpush/mailpushd.conf	# the hook's default file
LMTP_SOCK=/var/spool/postfix/private/dovecot-lmtp
LIFETIME=8		# registration_lifetime: listeners refresh every 4 s
for f in postfix-main.cf postfix-master.cf dovecot-lda.conf; do
	[ -f "$ROOT/conf/$f" ] || die "conf/$f missing"
done

# ---- install what is missing ---------------------------------------------
t=$(date +%s%N)
want="postfix dovecot-core dovecot-imapd python3"
[ -f "$PLUGIN" ] && want="$want dovecot-lmtpd"
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	debconf-set-selections <<-EOF
	postfix postfix/main_mailer_type select Local only
	postfix postfix/mailname string localhost.localdomain
	EOF
	apt-get update -qq
	# shellcheck disable=SC2086	# a list of names
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $missing >/dev/null
fi
say "packages: $(ms "$t") ms"

# ---- wait for the MTA lock and for any other Postfix/Dovecot ---------------
exec 9>"$LOCK"
if ! flock -n 9; then
	say "waiting (at most 600 s) for $LOCK: another Postfix/Dovecot test runs"
	flock -w 600 9 || die "$LOCK still held after 600 s"
fi
port_busy() {
	python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1)
sys.exit(s.connect_ex(("127.0.0.1",int(sys.argv[1])))!=0)' "$1"
}
running() {	# running NAME: a process of that name exists (no procps here)
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] && return 0
	done
	return 1
}
others() {
	postfix status >/dev/null 2>&1 && printf ' a Postfix;'
	running dovecot && printf ' a Dovecot;'
	port_busy 25 && printf ' a listener on 127.0.0.1:25;'
	return 0
}
t=$(date +%s%N)
busy=$(others)
if [ -n "$busy" ]; then
	say "waiting (at most 120 s) for what is not ours to stop:$busy"
	for _ in $(seq 600); do
		busy=$(others)
		[ -z "$busy" ] && break
		sleep 0.2
	done
	[ -z "$busy" ] || die "still running after 120 s, not ours:$busy"
	say "they stopped after $(ms "$t") ms"
fi

# The hook reads its default file when it exists: its socket is the one
# mailpushd must listen on.
EVSOCK=/run/mailpush/event.sock
if [ -f "$HOOK_CONF" ]; then
	EVSOCK=$("$B/mailpushd" -n -c "$HOOK_CONF" | awk '
	    /^\[/ { s = $0 } $1 == "socket" && s == "[events]" { e = $3 }
	    $1 == "socket" && s == "[hook]" { h = $3 }
	    END { print (h != "" ? h : e) }')
	say "note: $HOOK_CONF exists; the hook posts to $EVSOCK"
fi
EVDIR=$(dirname "$EVSOCK")
if [ -S "$EVSOCK" ] && python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.connect(sys.argv[1])' \
    "$EVSOCK" 2>/dev/null; then
	die "a mailpushd already listens on $EVSOCK"
fi

# ---- from here on, cleanup undoes what was done ------------------------------
T=$(mktemp -d /tmp/mailpush-e2e.XXXXXX)
chmod 755 "$T"
CREATED_USERS=""
PY=""
RELAY=""
REDIS=""
BACKED_UP=no
STARTED_DOVECOT=no
STARTED_POSTFIX=no
EVDIR_CREATED=no
[ -e "$EVDIR" ] || EVDIR_CREATED=yes
LMTP_SOCK_CREATED=no
[ -e "$LMTP_SOCK" ] || LMTP_SOCK_CREATED=yes
QUEUE_WAS_EMPTY=no
[ -z "$(find /var/spool/postfix/{incoming,active,deferred,hold,maildrop} \
    -type f 2>/dev/null | head -1)" ] && QUEUE_WAS_EMPTY=yes

manifest() {	# everything about /etc/postfix and /etc/dovecot but times
	(cd / && find etc/postfix etc/dovecot -printf '%p %y %m %u %g %l\n' |
	    sort && find etc/postfix etc/dovecot -type f -print0 | sort -z |
	    xargs -0 sha256sum)
}

cleanup() {
	local rc=$? t pid f
	set +e
	trap - EXIT INT TERM HUP
	trap '' PIPE	# finish even when nobody reads the output any more
	t=$(date +%s%N)
	[ -n "$PY" ] && kill "$PY" 2>/dev/null && wait "$PY" 2>/dev/null
	for pid in $RELAY $REDIS; do	# the cluster pass
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	for f in "$T"/pids/*; do	# left behind by e2e.py after a crash
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		grep -qa mailpush "/proc/$pid/cmdline" 2>/dev/null &&
		    kill "$pid" 2>/dev/null
	done
	if [ "$STARTED_DOVECOT" = yes ]; then
		doveadm stop >/dev/null 2>&1
		for _ in $(seq 100); do
			running dovecot || break
			sleep 0.1
		done
		running dovecot && { say "Dovecot did not stop"; rc=1; }
	fi
	if [ "$STARTED_POSTFIX" = yes ]; then
		postfix stop >/dev/null 2>&1
		for _ in $(seq 100); do
			postfix status >/dev/null 2>&1 || break
			sleep 0.1
		done
		postfix status >/dev/null 2>&1 && { say "Postfix did not stop"; rc=1; }
		# Mail this test left queued after a failure, and only when
		# the queue was empty before.
		[ "$QUEUE_WAS_EMPTY" = yes ] && postsuper -d ALL >/dev/null 2>&1
	fi
	say "stopped Postfix and Dovecot: $(ms "$t") ms"
	if [ $rc -ne 0 ]; then
		for f in mailpushd.log dovecot.log postfix.log; do
			[ -s "$T/$f" ] || continue
			echo "---- $f (last 25 lines)"
			tail -25 "$T/$f"
		done
		for f in "$T"/listen-*.err; do
			[ -s "$f" ] || continue
			echo "---- $(basename "$f") (last 5 lines)"
			tail -5 "$f"
		done
	fi
	[ "$LMTP_SOCK_CREATED" = yes ] && rm -f "$LMTP_SOCK"
	if [ -e "$T/devlog-ours" ] && [ -S /dev/log ]; then
		rm -f /dev/log
	fi
	[ "$EVDIR_CREATED" = yes ] && rm -rf "$EVDIR"
	if [ "$BACKED_UP" = yes ]; then
		rm -rf /etc/postfix /etc/dovecot
		cp -a "$T/backup/postfix" "$T/backup/dovecot" /etc/
		if [ "$(manifest)" = "$(cat "$T/backup/manifest")" ]; then
			say "restored /etc/postfix and /etc/dovecot (verified)"
		else
			f=/var/tmp/mailpush-e2e-backup.$$
			cp -a "$T/backup" "$f"
			say "FAIL: /etc/postfix or /etc/dovecot differ from before;" \
			    "the originals are in $f"
			rc=1
		fi
	fi
	for u in $CREATED_USERS; do
		userdel "$u" >/dev/null 2>&1 || { say "userdel $u failed"; rc=1; }
	done
	rm -rf "$T"
	say "total $(( $(ms "$T0") / 1000 )).$(( $(ms "$T0") % 1000 / 100 )) s"
	if [ $rc -eq 0 ]; then say "PASS"; else say "FAIL"; fi
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM HUP
trap 'exit 1' PIPE
say "working directory $T"

# A run killed before its cleanup leaves its settings behind; backing them up
# now would make them permanent.
for f in /etc/dovecot/dovecot.conf /etc/postfix/main.cf; do
	if grep -qs "mailpush's test/e2e/run.sh\|/tmp/mailpush-e2e\." "$f"; then
		die "$f holds the settings of an interrupted run of this test;" \
		    "restore /etc/postfix and /etc/dovecot from the backup in" \
		    "/tmp/mailpush-e2e.*/backup (or reinstall the packages' files)"
	fi
done
mkdir "$T/backup"
manifest > "$T/backup/manifest"
cp -a /etc/postfix /etc/dovecot "$T/backup/"
BACKED_UP=yes

# ---- the snippets, with their paths pointed here --------------------------
# A logical line per entry: comments dropped, continuation lines joined.
logical() {
	awk '/^[ \t]*#/ || /^[ \t]*$/ { next }
	    /^[ \t]/ { sub(/^[ \t]+/, " "); cur = cur $0; next }
	    { if (cur != "") print cur; cur = $0 }
	    END { if (cur != "") print cur }' "$1"
}
mkdir -p "$T/bin" "$T/vhosts" "$T/home" "$T/dovecot/run" "$T/dovecot/state" \
    "$T/mp/state" "$T/mp/run" "$T/tokens" "$T/pids"
install -m 755 "$B/mailpush-hook" "$T/bin/mailpush-hook"
subst() {
	sed -e "s|/[^ \"']*/mailpush-hook|$T/bin/mailpush-hook|g" \
	    -e "s|/var/mail/vhosts|$T/vhosts|g" \
	    -e "s|/run/mailpush/event.sock|$EVSOCK|g" "$1"
}
subst "$ROOT/conf/postfix-main.cf" | logical /dev/stdin > "$T/postfix-main.lines"
subst "$ROOT/conf/postfix-master.cf" | logical /dev/stdin > "$T/postfix-master.lines"
subst "$ROOT/conf/dovecot-lda.conf" > "$T/dovecot/lda.conf"

DOMAIN=$(sed -n 's/^virtual_mailbox_domains *= *\([^ ,]*\).*/\1/p' \
    "$T/postfix-main.lines" | head -1)
[ -n "$DOMAIN" ] || die "conf/postfix-main.cf: no virtual_mailbox_domains"
VMAP=$(sed -n 's/^virtual_mailbox_maps *= *[a-z]*:\([^ ,]*\).*/\1/p' \
    "$T/postfix-main.lines" | head -1)
[ -n "$VMAP" ] || die "conf/postfix-main.cf: no virtual_mailbox_maps"
TRANSPORT=$(sed -n 's/^virtual_transport *= *\([^ ]*\).*/\1/p' \
    "$T/postfix-main.lines" | head -1)
[ -n "$TRANSPORT" ] || die "conf/postfix-main.cf: no virtual_transport"
VMAIL=$(grep -o ' user=[^ :]*' "$T/postfix-master.lines" | head -1 | cut -d= -f2)
[ -n "$VMAIL" ] || die "conf/postfix-master.cf: no user= in the pipe entry"
grep -q "^mailbox_command *=.*$T/bin/mailpush-hook" "$T/postfix-main.lines" ||
    die "conf/postfix-main.cf: no mailbox_command running mailpush-hook"
grep -q "^$TRANSPORT  *unix .* pipe .*argv=$T/bin/mailpush-hook" \
    "$T/postfix-master.lines" ||
    die "conf/postfix-master.cf: no pipe entry $TRANSPORT running mailpush-hook"

# ---- users ------------------------------------------------------------------
add_user() {	# add_user NAME system|home
	local home
	if id "$1" >/dev/null 2>&1; then
		home=$(getent passwd "$1" | cut -d: -f6)
		case $2:$home in
		home:/tmp/mailpush-e2e.*)	# left by an interrupted run
			userdel "$1" ;;
		home:*)	die "user $1 exists; not touching it" ;;
		system:*) return 0 ;;
		esac
	fi
	if [ "$2" = system ]; then
		useradd --system -U --no-create-home --home-dir /nonexistent \
		    --shell /usr/sbin/nologin "$1"
	else
		useradd -U -m -d "$T/home/$1" --shell /usr/sbin/nologin "$1"
	fi
	CREATED_USERS="$CREATED_USERS $1"
}
add_user "$VMAIL" system
add_user mailpush system
add_user mpcarol home
add_user mpdave home
chown "$VMAIL:$VMAIL" "$T/vhosts"
chown mailpush:mailpush "$T/mp/state" "$T/mp/run"

free_port() {	# free_port tcp|udp
	python3 -c 'import socket,sys
t = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, t); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$1"
}
IMAP_PORT=$(free_port tcp)
UDP_PORT=$(free_port udp)

# ---- mailpushd.conf: conf/mailpushd.conf with paths and ports ----------------
LISTEN="127.0.0.1:$UDP_PORT"
grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null &&
    LISTEN="$LISTEN [::1]:$UDP_PORT"
MPCONF=$T/mp/mailpushd.conf
sh "$ROOT/test/confset.sh" "$ROOT/conf/mailpushd.conf" \
    mailpushd user mailpush \
    mailpushd listen "$LISTEN" \
    mailpushd key_file "$T/mp/mailpushd.key" \
    mailpushd state_file "$T/mp/state/registrations" \
    mailpushd control_socket "$T/mp/run/control.sock" \
    events socket "$EVSOCK" \
    limits registration_lifetime "${LIFETIME}s" > "$MPCONF"
"$B/mailpushd" -n -c "$MPCONF" > /dev/null
"$B/mailpushctl" -c "$MPCONF" genkey > /dev/null
chown mailpush:mailpush "$T/mp/mailpushd.key"
chmod 600 "$T/mp/mailpushd.key"
for u in "alice@$DOMAIN" "bob@$DOMAIN" mpcarol mpdave; do
	"$B/mailpushctl" -c "$MPCONF" token "$u" > "$T/tokens/${u%@*}"
	chmod 600 "$T/tokens/${u%@*}"
done

# ---- Dovecot: a small dovecot.conf for this machine + the snippets ------------
LMTP=""
if [ -f "$PLUGIN" ] && [ -x /usr/lib/dovecot/lmtp ]; then
	LMTP=$T/lmtp-switch.sh
	mkdir "$T/modules"
	for m in /usr/lib/dovecot/modules/lib*.so; do ln -s "$m" "$T/modules/"; done
	install -m 644 "$PLUGIN" "$T/modules/"
	subst "$ROOT/conf/dovecot-lmtp.conf" > "$T/dovecot/lmtp.conf"
fi
# The virtual users' password file the snippet names, moved here.
PWFILE=$(awk '/^[ \t]*passdb[ \t]*\{/ { p = 1 } p && $1 == "driver" { d = $3 }
    p && $1 == "args" { a = $NF } p && /\}/ { if (d == "passwd-file") print a;
    p = 0 }' "$T/dovecot/lda.conf" | head -1)
[ -n "$PWFILE" ] || die "conf/dovecot-lda.conf: no passwd-file passdb for the virtual users"
sed -i "s|$PWFILE|$T/dovecot/users|g" "$T/dovecot/lda.conf"
printf '%s\n' "alice@$DOMAIN:{PLAIN}secret" "bob@$DOMAIN:{PLAIN}secret" \
    > "$T/dovecot/users"
printf '%s\n' "mpcarol:{PLAIN}secret" "mpdave:{PLAIN}secret" \
    > "$T/dovecot/system-users"
# This machine's settings, IMAP logins for the system users (their homes
# from the passwd database), then the snippets, which have everything about
# delivery and the virtual users.
cat > /etc/dovecot/dovecot.conf <<EOF
# written by mailpush's test/e2e/run.sh; the original is restored at its end
instance_name = mailpush-e2e
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
protocols = imap${LMTP:+ lmtp}
listen = 127.0.0.1
ssl = no
log_path = $T/dovecot.log
disable_plaintext_auth = no
auth_mechanisms = plain
${LMTP:+mail_plugin_dir = $T/modules}
namespace inbox {
  inbox = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN $T/dovecot/system-users
}
userdb {
  driver = passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
}
!include $T/dovecot/lda.conf
${LMTP:+!include $T/dovecot/lmtp.conf}
EOF
chmod 644 /etc/dovecot/dovecot.conf
doveconf -n > "$T/doveconf.out" 2>&1 || { cat "$T/doveconf.out"; die "doveconf -n failed"; }

# ---- Postfix: the machine's settings, then the snippets' lines ----------------
postconf -e "myhostname = localhost.localdomain" "mydomain = localdomain" \
    "myorigin = \$myhostname" "mydestination = localhost.localdomain, localhost" \
    "inet_interfaces = loopback-only" "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" "default_transport = error" \
    "relay_transport = error" "alias_maps =" "alias_database =" \
    "recipient_delimiter = +" "maillog_file = $T/postfix.log" \
    "maillog_file_prefixes = /var, /dev/stdout, $T"
postconf -F '*/*/chroot = n'
while IFS= read -r line; do
	postconf -e "$line"
done < "$T/postfix-main.lines"
while IFS= read -r line; do
	read -r name type _ <<< "$line"
	postconf -M "$name/$type=$line"
done < "$T/postfix-master.lines"
printf '%s\n' "alice@$DOMAIN x" "bob@$DOMAIN x" > "$VMAP"
if [ -n "$LMTP" ]; then
	subst "$ROOT/conf/postfix-lmtp.cf" | logical /dev/stdin > "$T/postfix-lmtp.lines"
	{
		echo 'set -e'
		while IFS= read -r line; do
			printf 'postconf -e %q\n' "$line"
		done < "$T/postfix-lmtp.lines"
		echo 'postfix reload 2>/dev/null'
		# running processes finish what they do with the old settings
		echo 'sleep 1'
	} > "$LMTP"
fi
postfix check || die "postfix check failed"

# ---- start ------------------------------------------------------------------
t=$(date +%s%N)
STARTED_DOVECOT=yes
dovecot 9>&- || die "dovecot did not start"
STARTED_POSTFIX=yes
postfix start >/dev/null 2>&1 9>&- || die "postfix start failed"
python3 - "$IMAP_PORT" <<'EOF' || die "Postfix or Dovecot not answering within 10 s"
import socket, sys, time
end = time.monotonic() + 10
for port in (25, int(sys.argv[1])):
    while True:
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port)); s.close(); break
        except OSError:
            s.close()
            if time.monotonic() > end: sys.exit(1)
            time.sleep(0.05)
EOF
say "Dovecot and Postfix answering after $(ms "$t") ms" \
    "(SMTP 127.0.0.1:25, IMAP 127.0.0.1:$IMAP_PORT)"

# ---- the checks ----------------------------------------------------------------
python3 - "$T" "$DOMAIN" "$TRANSPORT" > "$T/users.json" <<'EOF'
import json, sys
t, dom, tr = sys.argv[1:]
u = []
for n in ("alice", "bob"):
    u.append(dict(name=n, kind="pipe", relay=tr, login="%s@%s" % (n, dom),
        listen="%s@%s" % (n, dom), hookuser="%s@%s" % (n, dom),
        maildir="%s/vhosts/%s/%s/Maildir" % (t, dom, n),
        addrs=["%s@%s" % (n, dom), "%s+news@%s" % (n.capitalize(), dom),
               "%s@%s" % (n.upper(), dom.upper()), "%s+Lists@%s" % (n, dom)]))
for n in ("mpcarol", "mpdave"):
    u.append(dict(name=n, kind="local", relay="local", login=n, listen=n,
        hookuser=n, maildir="%s/home/%s/Maildir" % (t, n),
        addrs=["%s@localhost" % n, "%s+news@localhost" % n.capitalize(),
               "%s@LOCALHOST" % n.upper(), "%s+x@localhost.localdomain" % n]))
# interleave the two pipelines
print(json.dumps([u[0], u[2], u[1], u[3]]))
EOF
DEVLOG=capture
[ -e /dev/log ] && DEVLOG=skip
[ "$DEVLOG" = skip ] && say "note: /dev/log exists (a syslog daemon?): the hook's log line is not checked"
SWITCHED=""
if [ -z "${E2E_CLUSTER_ONLY:-}" ]; then
E2E_T=$T E2E_B=$B E2E_MPCONF=$MPCONF E2E_UDP="127.0.0.1:$UDP_PORT" \
E2E_IMAP_PORT=$IMAP_PORT E2E_STATE_FILE=$T/mp/state/registrations \
E2E_EVSOCK=$EVSOCK E2E_POSTFIX_LOG=$T/postfix.log E2E_LIFETIME=$LIFETIME \
E2E_LMTP=$LMTP E2E_DEVLOG=$DEVLOG \
    python3 "$ROOT/test/e2e/e2e.py" 9>&- &
PY=$!
wait $PY	# in the background so that a signal reaches cleanup at once
PY=""
SWITCHED=$LMTP	# e2e.py switched Postfix to LMTP when it could
elif [ -n "$LMTP" ]; then
	bash "$LMTP" 9>&- || die "switching Postfix to LMTP failed"
	SWITCHED=$LMTP
fi

# ---- the same backend as a cluster relay, through Redis ------------------------
if [ ! -x /usr/bin/redis-server ]; then
	say "skip the cluster pass: no redis-server (make deps installs it)"
	exit 0
fi
t=$(date +%s%N)
mkdir "$T/redis"
/usr/bin/redis-server --port 0 --unixsocket "$T/redis/redis.sock" \
    --unixsocketperm 777 --save "" --appendonly no --dir "$T/redis" \
    --logfile "$T/redis/redis.log" 9>&- &
REDIS=$!
CLUSTER="cluster role notifier cluster redis $T/redis/redis.sock"
# the notifier: the listeners' UDP port and control socket, its own event
# socket and state; the relay: the hook's event socket
sh "$ROOT/test/confset.sh" "$MPCONF" $CLUSTER \
    mailpushd state_file "$T/mp/state/notifier" \
    events socket "$T/mp/run/notifier-event.sock" > "$T/mp/notifier.conf"
sh "$ROOT/test/confset.sh" "$MPCONF" $CLUSTER cluster role relay \
    mailpushd listen "127.0.0.1:$(free_port udp)" \
    mailpushd state_file "" \
    mailpushd control_socket "$T/mp/run/relay.sock" > "$T/mp/relay.conf"
for _ in $(seq 100); do
	[ -S "$T/redis/redis.sock" ] && break
	sleep 0.05
done
"$B/mailpushd" -d -c "$T/mp/relay.conf" > "$T/relay.log" 2>&1 9>&- &
RELAY=$!
for _ in $(seq 100); do
	"$B/mailpushctl" -c "$T/mp/relay.conf" status 2>/dev/null |
	    grep -q "publish link: ready" && break
	sleep 0.05
done
"$B/mailpushctl" -c "$T/mp/relay.conf" status | grep -q "publish link: ready" ||
    die "the relay is not connected to Redis (log $T/relay.log)"
say "redis-server and the relay ready after $(ms "$t") ms"
E2E_T=$T E2E_B=$B E2E_MPCONF=$T/mp/notifier.conf E2E_UDP="127.0.0.1:$UDP_PORT" \
E2E_IMAP_PORT=$IMAP_PORT E2E_STATE_FILE=$T/mp/state/notifier \
E2E_EVSOCK=$EVSOCK E2E_POSTFIX_LOG=$T/postfix.log E2E_LIFETIME=$LIFETIME \
E2E_DEVLOG=skip E2E_CLUSTER=1 E2E_PER_USER=2 E2E_LMTP=$SWITCHED \
    python3 "$ROOT/test/e2e/e2e.py" 9>&- &
PY=$!
wait $PY
PY=""
"$B/mailpushctl" -c "$T/mp/relay.conf" stats | grep -E "^(events_in|cluster_published|cluster_dropped) "
