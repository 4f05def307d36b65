#!/bin/bash
# test/e2e/provision.sh BUILD_DIR: `make e2e', provisioning over IMAP with
# a real Dovecot and Postfix on loopback (mailpush-dovecot(7)):
#
#   - a CA and a server certificate made here with openssl; Dovecot speaks
#     IMAP over TLS only (imaps on one port, STARTTLS on another), with
#     METADATA on and the mailpush_metadata plugin loaded for imap;
#   - a system user (imap runs as that user) and two virtual users alice
#     and bob (imap runs as vmail); mailpushd with its provisioning socket;
#   - the checks in provision.py beside this file: python3 imaplib reads
#     the entries, the token is the one mailpushctl prints and registers,
#     Alice never gets Bob's token, an untrusted uid gets no other user's
#     token from the socket, SETMETADATA on the entries fails, and the
#     client-side checks (mailpush-listen -I, wrong certificate, key
#     rollover, DNS SRV) when the client supports them.
#
# Needs root on a Debian 12 machine with postfix, dovecot-core,
# dovecot-imapd, openssl and python3 (installs what is missing, as run.sh
# does).  /etc/postfix and /etc/dovecot are backed up and restored; holds
# /tmp/mailpush-mta.lock (flock) while Postfix or Dovecot run.  Users and
# files it makes are named mpprov* and /tmp/mailpush-prov.*, and removed.
set -euo pipefail

T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { printf 'e2e-provision: %s\n' "$*"; }
die() { printf 'e2e-provision: FAIL: %s\n' "$*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: bash test/e2e/provision.sh BUILD_DIR" >&2; exit 64; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "$ROOT" && cd "$1" && pwd) || die "no build directory $1"
for p in mailpushd mailpushctl mailpush-hook mailpush-listen; do
	[ -x "$B/$p" ] || die "$B/$p missing (run make first)"
done
MPLUGIN=$B/dovecot/lib30_mailpush_metadata_plugin.so
[ -f "$MPLUGIN" ] || die "$MPLUGIN missing (install dovecot-dev, run make)"
[ "$(id -u)" -eq 0 ] || die "must run as root: it configures and runs Postfix and Dovecot"
LOCK=/tmp/mailpush-mta.lock
DOMAIN=prov.example.org

# ---- install what is missing ------------------------------------------------
missing=""
for p in postfix dovecot-core dovecot-imapd python3 openssl; do
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

# ---- the MTA lock, and nobody else's Postfix or Dovecot ------------------------
exec 9>"$LOCK"
if ! flock -n 9; then
	say "waiting (at most 600 s) for $LOCK: another Postfix/Dovecot test runs"
	flock -w 600 9 || die "$LOCK still held after 600 s"
fi
running() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] && return 0
	done
	return 1
}
for _ in $(seq 600); do
	postfix status >/dev/null 2>&1 || running dovecot || break
	sleep 0.2
done
postfix status >/dev/null 2>&1 && die "a Postfix runs that is not ours"
running dovecot && die "a Dovecot runs that is not ours"

# ---- from here on, cleanup undoes what was done ------------------------------
T=$(mktemp -d /tmp/mailpush-prov.XXXXXX)
chmod 755 "$T"
CREATED_USERS=""
BACKED_UP=no
STARTED=no
PY=""
cleanup() {
	local rc=$? f
	set +e
	trap - EXIT INT TERM HUP
	[ -n "$PY" ] && kill "$PY" 2>/dev/null && wait "$PY" 2>/dev/null
	for f in "$T"/pids/*; do
		[ -f "$f" ] || continue
		grep -qa mailpush "/proc/$(cat "$f")/cmdline" 2>/dev/null &&
		    kill "$(cat "$f")" 2>/dev/null
	done
	if [ "$STARTED" = yes ]; then
		doveadm stop >/dev/null 2>&1
		postfix stop >/dev/null 2>&1
		for _ in $(seq 100); do
			running dovecot || postfix status >/dev/null 2>&1 || break
			sleep 0.1
		done
		postsuper -d ALL >/dev/null 2>&1
	fi
	if [ $rc -ne 0 ]; then
		for f in mailpushd.log dovecot.log postfix.log; do
			[ -s "$T/$f" ] || continue
			echo "---- $f (last 30 lines)"
			tail -30 "$T/$f"
		done
	fi
	if [ "$BACKED_UP" = yes ]; then
		rm -rf /etc/postfix /etc/dovecot
		cp -a "$T/backup/postfix" "$T/backup/dovecot" /etc/
	fi
	for u in $CREATED_USERS; do
		userdel "$u" >/dev/null 2>&1 || { say "userdel $u failed"; rc=1; }
	done
	rm -rf "$T"
	say "total $(( $(ms "$T0") / 1000 )) s"
	if [ $rc -eq 0 ]; then say "PASS"; else say "FAIL"; fi
	exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM HUP
for f in /etc/dovecot/dovecot.conf /etc/postfix/main.cf; do
	grep -qs "/tmp/mailpush-prov\.\|/tmp/mailpush-e2e\." "$f" &&
	    die "$f holds the settings of an interrupted test run; restore it first"
done
mkdir "$T/backup"
cp -a /etc/postfix /etc/dovecot "$T/backup/"
BACKED_UP=yes
mkdir -p "$T/bin" "$T/vhosts" "$T/home" "$T/dovecot/run" "$T/dovecot/state" \
    "$T/mp/run" "$T/mp/state" "$T/tls" "$T/modules" "$T/pids"
install -m 755 "$B/mailpush-hook" "$T/bin/mailpush-hook"

# ---- users -------------------------------------------------------------------
add_user() {	# add_user NAME system|home
	if id "$1" >/dev/null 2>&1; then
		case $2:$(getent passwd "$1" | cut -d: -f6) in
		home:/tmp/mailpush-prov.*) userdel "$1" ;;
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
add_user vmail system
add_user mailpush system
add_user mpprovsys home
add_user mpprovx home		# a local user who is nobody's mail user
chown vmail:vmail "$T/vhosts"
chown mailpush:mailpush "$T/mp/run" "$T/mp/state"

free_port() {	# free_port tcp|udp
	python3 -c 'import socket,sys
t = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, t); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$1"
}
IMAPS_PORT=$(free_port tcp)
IMAP_PORT=$(free_port tcp)
UDP_PORT=$(free_port udp)
UDP_PORT2=$(free_port udp)

# ---- certificates: our CA, the server's certificate, and a stranger's CA -------
t=$(date +%s%N)
(
	cd "$T/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout ca.key -out ca.crt -days 2 -subj "/CN=mailpush test CA" \
	    2>/dev/null
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout other-ca.key -out other-ca.crt -days 2 \
	    -subj "/CN=somebody else's CA" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
	printf 'subjectAltName = DNS:localhost, IP:127.0.0.1\n' > san.ext
	openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
	    -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null
	chmod 644 ca.crt other-ca.crt server.crt
	chmod 600 server.key ca.key other-ca.key
) || die "openssl could not make the certificates"
say "certificates: $(ms "$t") ms"

# ---- mailpushd with a provisioning socket --------------------------------------
MPCONF=$T/mp/mailpushd.conf
sh "$ROOT/test/confset.sh" "$ROOT/conf/mailpushd.conf" \
    mailpushd user mailpush \
    mailpushd listen "127.0.0.1:$UDP_PORT" \
    mailpushd key_file "$T/mp/mailpushd.key" \
    mailpushd state_file "$T/mp/state/registrations" \
    mailpushd control_socket "$T/mp/run/control.sock" \
    events socket "$T/mp/run/event.sock" \
    provision socket "$T/mp/run/provision.sock" \
    provision servers "127.0.0.1:$UDP_PORT 127.0.0.1:$UDP_PORT2" \
    mailpushd key_grace 20s \
    limits registration_lifetime 8s > "$MPCONF"
chmod 644 "$MPCONF"
"$B/mailpushd" -n -c "$MPCONF" > /dev/null
"$B/mailpushctl" -c "$MPCONF" genkey > /dev/null
chown mailpush:mailpush "$T/mp/mailpushd.key"
chmod 755 "$T/mp" "$T/mp/run"

# ---- Dovecot: IMAP over TLS only, METADATA, the plugin for imap ---------------
for m in /usr/lib/dovecot/modules/lib*.so; do ln -s "$m" "$T/modules/"; done
install -m 644 "$MPLUGIN" "$T/modules/"
printf '%s\n' "alice@$DOMAIN:{PLAIN}alice-secret" \
    "bob@$DOMAIN:{PLAIN}bob-secret" "mpprovsys:{PLAIN}sys-secret" \
    > "$T/dovecot/users"
cat > /etc/dovecot/dovecot.conf <<EOF
# written by mailpush's test/e2e/provision.sh; the original is restored at its end
instance_name = mailpush-prov
base_dir = $T/dovecot/run
state_dir = $T/dovecot/state
protocols = imap
listen = 127.0.0.1
log_path = $T/dovecot.log
mail_plugin_dir = $T/modules
mail_location = maildir:~/Maildir
ssl = required
ssl_cert = <$T/tls/server.crt
ssl_key = <$T/tls/server.key
auth_mechanisms = plain
# RFC 5464 METADATA; the attribute dict holds what users set themselves,
# mailpush's entries are computed by the plugin and never stored
imap_metadata = yes
mail_attribute_dict = file:%h/dovecot-attributes
protocol imap {
  mail_plugins = \$mail_plugins mailpush_metadata
}
plugin {
  mailpush_provision_socket = $T/mp/run/provision.sock
}
namespace inbox {
  inbox = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $T/dovecot/users
}
userdb {
  driver = passwd
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$T/vhosts/%d/%n
}
service auth {
  unix_listener auth-userdb {
    mode = 0600
    user = vmail
    group = vmail
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
protocol lda {
  log_path = /dev/stderr
}
EOF
chmod 644 /etc/dovecot/dovecot.conf
doveconf -n > "$T/doveconf.out" 2>&1 || { cat "$T/doveconf.out"; die "doveconf -n failed"; }

# ---- Postfix: virtual users through pipe(8), the system user through local(8) --
postconf -e "myhostname = localhost.localdomain" "mydomain = localdomain" \
    "myorigin = \$myhostname" "mydestination = localhost.localdomain, localhost" \
    "inet_interfaces = loopback-only" "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" "default_transport = error" \
    "relay_transport = error" "alias_maps =" "alias_database =" \
    "recipient_delimiter = +" "maillog_file = $T/postfix.log" \
    "maillog_file_prefixes = /var, /dev/stdout, $T" \
    "virtual_mailbox_domains = $DOMAIN" \
    "virtual_mailbox_maps = texthash:$T/vmap" \
    "virtual_transport = mpprov" "mpprov_destination_recipient_limit = 1" \
    "mailbox_command = $T/bin/mailpush-hook -c $MPCONF -u \"\$USER\" -- /usr/lib/dovecot/dovecot-lda -f \"\$SENDER\" -a \"\$RECIPIENT\""
postconf -F '*/*/chroot = n'
postconf -M "mpprov/unix=mpprov unix - n n - - pipe flags=DRhu user=vmail:vmail argv=$T/bin/mailpush-hook -c $MPCONF -u \${user}@\${nexthop} -- /usr/lib/dovecot/dovecot-lda -f \${sender} -a \${original_recipient} -d \${user}@\${nexthop}"
printf '%s\n' "alice@$DOMAIN x" "bob@$DOMAIN x" > "$T/vmap"
postfix check || die "postfix check failed"

# ---- start --------------------------------------------------------------------
t=$(date +%s%N)
"$B/mailpushd" -d -v -c "$MPCONF" > "$T/mailpushd.log" 2>&1 9>&- &
echo $! > "$T/pids/mailpushd"
STARTED=yes
dovecot 9>&- || die "dovecot did not start"
postfix start >/dev/null 2>&1 9>&- || die "postfix start failed"
python3 - "$IMAPS_PORT" "$T/mp/run/provision.sock" <<'EOF' || die "Postfix, Dovecot or mailpushd not answering within 10 s"
import os, socket, sys, time
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
while not os.path.exists(sys.argv[2]):
    if time.monotonic() > end: sys.exit(1)
    time.sleep(0.05)
EOF
say "mailpushd, Dovecot and Postfix answering after $(ms "$t") ms"

E2E_T=$T E2E_B=$B E2E_MPCONF=$MPCONF E2E_DOMAIN=$DOMAIN \
E2E_IMAPS_PORT=$IMAPS_PORT E2E_IMAP_PORT=$IMAP_PORT \
E2E_UDP="127.0.0.1:$UDP_PORT" E2E_UDP2="127.0.0.1:$UDP_PORT2" \
    python3 "$ROOT/test/e2e/provision.py" 9>&- &
PY=$!
wait $PY
