#!/bin/bash
# test/e2e/lmtp.sh BUILD_DIR: end-to-end test of the Dovecot push_notification
# driver (BUILD_DIR/dovecot/lib30_mailpush_plugin.so) with the real daemons:
#
#	SMTP 127.0.0.1:25 -> Postfix -> Dovecot LMTP (+ a global Sieve script)
#	    -> the mailpush driver -> the event socket
#
# checked at the event socket by a small receiver (python3, below).  Needs
# root on a machine like CI's; installs postfix and Dovecot from Debian when
# they are missing.  Postfix runs from a config directory under a temporary
# directory (so /etc/postfix is not touched), Dovecot from a dovecot.conf
# there that includes conf/dovecot-lmtp.conf; Postfix gets the lines of
# conf/postfix-lmtp.cf.  Only paths are substituted in both, except where a
# check says it changes a setting.  On exit everything started is stopped and
# everything created is removed.  Prints timings; exits non-zero on failure.
set -euo pipefail

T0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { printf 'lmtp.sh: %s\n' "$*"; }
die() { printf 'lmtp.sh: FAIL: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: bash test/e2e/lmtp.sh BUILD_DIR" >&2; exit 64; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PLUGIN=$(cd "$1" && pwd)/dovecot/lib30_mailpush_plugin.so
[ -f "$PLUGIN" ] || die "$PLUGIN missing (make dovecot-plugin)"
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs and runs Postfix and Dovecot)"

DOMAIN=example.org		# as in conf/postfix-lmtp.cf
VUSER=mpe2e			# system user owning the virtual mailboxes
LMTP_SOCK=/var/spool/postfix/private/dovecot-lmtp

# ---- install (only what is missing) -------------------------------------
t=$(date +%s%N)
missing=""
for p in postfix dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve \
    python3; do
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
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $missing >/dev/null
fi
T_INSTALL=$(ms "$t")

if postfix status >/dev/null 2>&1; then
	die "a Postfix is already running; stop it first"
fi
if python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(("127.0.0.1",25))!=0)'; then
	die "something already listens on 127.0.0.1:25"
fi
[ ! -e "$LMTP_SOCK" ] || die "$LMTP_SOCK exists: another Dovecot is running?"

# ---- set up; cleanup undoes exactly this ---------------------------------
T=$(mktemp -d /tmp/mp-lmtp-e2e.XXXXXX)
chmod 755 "$T"
CREATED_USER=no
PF=$T/postfix
DC=$T/dovecot
QUEUE_WAS_EMPTY=no
[ -z "$(find /var/spool/postfix/{incoming,active,deferred,hold,maildrop} \
    -type f 2>/dev/null | head -1)" ] && QUEUE_WAS_EMPTY=yes

cleanup() {
	rc=$?
	local t
	t=$(date +%s%N)
	set +e
	trap - EXIT
	if [ -f "$DC/dovecot.conf" ]; then
		doveadm -c "$DC/dovecot.conf" stop >/dev/null 2>&1
		say "doveadm stop: $(ms "$t") ms"
	fi
	if [ -f "$PF/main.cf" ]; then
		t=$(date +%s%N)
		postfix -c "$PF" stop >/dev/null 2>&1
		for _ in $(seq 50); do
			postfix -c "$PF" status >/dev/null 2>&1 || break
			sleep 0.1
		done
		say "postfix stop: $(ms "$t") ms"
		# Mail this test left queued (after a failure), and only if the
		# queue was empty before.
		[ "$QUEUE_WAS_EMPTY" = yes ] &&
		    postsuper -c "$PF" -d ALL >/dev/null 2>&1
	fi
	rm -f "$LMTP_SOCK"
	[ "$CREATED_USER" = yes ] && userdel "$VUSER" 2>/dev/null
	if [ $rc -ne 0 ] && [ -f "$T/dovecot.log" ]; then
		echo "---- dovecot.log (last 30 lines)"
		tail -30 "$T/dovecot.log"
		echo "---- postfix.log (last 15 lines)"
		tail -15 "$T/postfix.log" 2>/dev/null
	fi
	rm -rf "$T"
	say "total $(ms "$T0") ms"
	[ $rc -eq 0 ] && say "PASS" || say "FAIL"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! id "$VUSER" >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin "$VUSER"
	CREATED_USER=yes
fi
VUID=$(id -u "$VUSER")

# Dovecot loads mail plugins from one directory: Debian's modules plus the
# plugin under test, copied so that imap processes (running as $VUSER) can
# read it whatever the build directory's permissions.
mkdir -p "$T/modules" "$T/vhosts" "$T/sieve" "$T/run" "$T/state" "$DC" "$PF"
for m in /usr/lib/dovecot/modules/lib*.so; do ln -s "$m" "$T/modules/"; done
install -m 644 "$PLUGIN" "$T/modules/"
chown "$VUSER:$VUSER" "$T/vhosts"

cat > "$T/sieve/before.sieve" <<'EOF'
require "fileinto";
if header :contains "subject" "junk" {
	fileinto "Junk";
	stop;
}
EOF
sievec "$T/sieve/before.sieve"

printf '%s\n' "alice@$DOMAIN:{PLAIN}secret" "bob@$DOMAIN:{PLAIN}secret" \
    > "$DC/passwd"
IMAP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EVSOCK=$T/event.sock

# The project's snippet, with its paths pointed into $T.
sed -e "s|/run/mailpush/event.sock|$EVSOCK|" \
    "$ROOT/conf/dovecot-lmtp.conf" > "$DC/mailpush.conf"
grep -q "socket=$EVSOCK timeout=100ms events=MessageNew\$" \
    "$DC/mailpush.conf" || die "conf/dovecot-lmtp.conf: driver line not as expected"

cat > "$DC/dovecot.conf" <<EOF
# written by test/e2e/lmtp.sh
instance_name = mailpush-lmtp-e2e
base_dir = $T/run
state_dir = $T/state
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
log_path = $T/dovecot.log
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
mail_plugin_dir = $T/modules
first_valid_uid = $VUID
last_valid_uid = $VUID
lda_mailbox_autocreate = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN $DC/passwd
}
userdb {
  driver = static
  args = uid=$VUSER gid=$VUSER home=$T/vhosts/%d/%n
}
namespace inbox {
  inbox = yes
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
protocol lmtp {
  mail_plugins = \$mail_plugins sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_before = $T/sieve/before.sieve
}
!include $DC/mailpush.conf
EOF

# Postfix: the distribution's master.cf, a small main.cf, and the project's
# lines with their paths pointed into $T.
cp /etc/postfix/master.cf "$PF/master.cf"
cat > "$PF/main.cf" <<EOF
# written by test/e2e/lmtp.sh
compatibility_level = 3.6
myhostname = localhost.localdomain
mydomain = localdomain
mydestination = localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = error
relay_transport = error
alias_maps =
alias_database =
biff = no
maillog_file = $T/postfix.log
maillog_file_prefixes = /var, /dev/stdout, $T
EOF
sed -e "s|/etc/postfix/vmailbox|$PF/vmailbox|" "$ROOT/conf/postfix-lmtp.cf" |
    grep -v '^#' >> "$PF/main.cf"
grep -q "^virtual_mailbox_domains = $DOMAIN\$" "$PF/main.cf" ||
    die "conf/postfix-lmtp.cf: expected virtual_mailbox_domains = $DOMAIN"
printf '%s\n' "alice@$DOMAIN x" "bob@$DOMAIN x" > "$PF/vmailbox"
postconf -c "$PF" -F '*/*/chroot = n'

# ---- start ------------------------------------------------------------------
# the same lock as test/e2e/run.sh: one Postfix/Dovecot test at a time
exec 9>/tmp/mailpush-mta.lock
flock -w 600 9 || die "/tmp/mailpush-mta.lock still held after 600 s"
t=$(date +%s%N)
dovecot -c "$DC/dovecot.conf" 9>&-
T_DOVECOT=$(ms "$t")
postfix -c "$PF" start >/dev/null 2>&1 9>&- || die "postfix start failed"
T_POSTFIX=$(ms "$t")
python3 - "$IMAP_PORT" "$LMTP_SOCK" <<'EOF' || die "daemons did not come up in 10 s"
import socket, sys, time
end = time.monotonic() + 10
for fam, addr in ((socket.AF_INET, ("127.0.0.1", 25)),
                  (socket.AF_INET, ("127.0.0.1", int(sys.argv[1]))),
                  (socket.AF_UNIX, sys.argv[2])):
    while True:
        s = socket.socket(fam)
        try:
            s.connect(addr); s.close(); break
        except OSError:
            s.close()
            if time.monotonic() > end: sys.exit(1)
            time.sleep(0.05)
EOF
T_START=$(ms "$t")
say "install check $T_INSTALL ms; dovecot start $T_DOVECOT ms, postfix start" \
    "$((T_POSTFIX - T_DOVECOT)) ms, both answering after $T_START ms"

# ---- the checks (python3: receiver, SMTP, LMTP and IMAP clients) -----------
cat > "$T/check.py" <<'PY'
import imaplib, os, re, select, smtplib, socket, struct, sys, time, uuid

T = os.environ["T"]; DOMAIN = os.environ["DOMAIN"]
EVSOCK = os.environ["EVSOCK"]; LMTP = os.environ["LMTP_SOCK"]
IMAP_PORT = int(os.environ["IMAP_PORT"]); LOG = T + "/dovecot.log"
USER = "alice@" + DOMAIN
TIMEOUT_MS = 100	# the snippet's timeout=100ms

def now(): return time.monotonic()
def fail(msg):
    print("lmtp.sh: FAIL: " + msg, flush=True); sys.exit(1)
def ok(msg): print("lmtp.sh: ok   " + msg, flush=True)

class Receiver:
    """The event socket, with the sender's credentials (SO_PASSCRED)."""
    def __init__(self):
        if os.path.exists(EVSOCK): os.unlink(EVSOCK)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.s.bind(EVSOCK)
        os.chmod(EVSOCK, 0o666)
    def recv(self, timeout, raw=False):
        end = now() + timeout
        while True:
            left = end - now()
            if left <= 0: return None
            if not select.select([self.s], [], [], left)[0]: return None
            data, anc, _, _ = self.s.recvmsg(2048, socket.CMSG_SPACE(12))
            cred = None
            for lvl, typ, d in anc:
                if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    cred = struct.unpack("iII", d[:12])
            return (data if raw else decode(data)), cred, now()
    def close(self, unlink=True):
        self.s.close()
        if unlink: os.unlink(EVSOCK)

def decode(d):
    """shared/event.h: magic, version, flags, count, uid, ulen, mlen."""
    if len(d) < 14: fail("event shorter than 14 bytes: %r" % d)
    magic, ver, flags, count, uid, ul, ml = struct.unpack("!4sBBHIBB", d[:14])
    if magic != b"MPEV" or ver != 1 or flags != 0 or len(d) != 14 + ul + ml:
        fail("bad event datagram %r" % d)
    return dict(count=count, uid=uid, user=d[14:14 + ul].decode(),
                mailbox=d[14 + ul:].decode())

def message(token, subject):
    return ("From: e2e <e2e@localhost.localdomain>\r\nTo: %s\r\n"
            "Subject: %s %s\r\nMessage-ID: <%s@e2e>\r\n\r\nbody %s\r\n"
            % (USER, subject, token, token, token))

def smtp_send(token, subject="hello", rcpt=None):
    with smtplib.SMTP("127.0.0.1", 25, timeout=10) as s:
        s.sendmail("e2e@localhost.localdomain", [rcpt or USER],
                   message(token, subject))

def lmtp_send(token, rcpts):
    """One LMTP transaction straight to Dovecot; returns (replies, ms from
    the end of DATA to the last per-recipient reply)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10); s.connect(LMTP)
    f = s.makefile("rb")
    def reply():
        while True:
            line = f.readline().decode()
            if not line: fail("LMTP connection closed")
            if line[3:4] != "-": return line.strip()
    def cmd(c):
        s.sendall((c + "\r\n").encode()); return reply()
    reply(); cmd("LHLO localhost")
    cmd("MAIL FROM:<e2e@localhost.localdomain>")
    for r in rcpts:
        rr = cmd("RCPT TO:<%s>" % r)
        if not rr.startswith("250"): fail("LMTP RCPT %s: %s" % (r, rr))
    rr = cmd("DATA")
    if not rr.startswith("354"): fail("LMTP DATA: " + rr)
    body = message(token, "lmtp").replace("\r\n.", "\r\n..")
    t = now()
    s.sendall(body.encode() + b".\r\n")
    replies = [reply() for _ in rcpts]
    ms = (now() - t) * 1000
    cmd("QUIT"); s.close()
    return replies, ms

def maildir_has(token, mailbox="INBOX", user="alice"):
    d = "%s/vhosts/%s/%s/Maildir" % (T, DOMAIN, user)
    if mailbox != "INBOX": d += "/." + mailbox
    for sub in ("new", "cur"):
        p = os.path.join(d, sub)
        for n in os.listdir(p) if os.path.isdir(p) else []:
            with open(os.path.join(p, n), "rb") as fh:
                if token.encode() in fh.read(): return True
    return False

def imap():
    m = imaplib.IMAP4("127.0.0.1", IMAP_PORT)
    m.login(USER, "secret")
    return m

def imap_fetch(mailbox, uid):
    m = imap()
    typ, _ = m.select(mailbox, readonly=True)
    if typ != "OK": fail("IMAP SELECT %s failed" % mailbox)
    typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[])")
    m.logout()
    for part in data:
        if isinstance(part, tuple): return part[1].decode()
    return None

class Log:
    """New mailpush lines of dovecot.log since the last call."""
    def __init__(self): self.off = os.path.getsize(LOG)
    def read(self):
        with open(LOG, "rb") as fh:
            fh.seek(self.off); data = fh.read()
        data = data[:data.rfind(b"\n") + 1]	# whole lines only
        self.off += len(data)
        return [l for l in data.decode(errors="replace").splitlines()
                if ": mailpush: " in l]
    def new(self, want=0):
        """Dovecot's log process writes asynchronously: wait (at most 5 s)
        for the lines wanted, then a little longer for any extra ones."""
        lines = self.read(); end = now() + 5
        while len(lines) < want and now() < end:
            time.sleep(0.02); lines += self.read()
        time.sleep(0.1)
        return lines + self.read()

def expect_event(rx, mailbox, token, t_sent, what):
    r = rx.recv(15)
    if r is None: fail("%s: no event within 15 s" % what)
    ev, cred, t_ev = r
    # At this moment the message must already be stored...
    in_maildir = maildir_has(token, mailbox)
    if ev["user"] != USER or ev["mailbox"] != mailbox or ev["count"] != 1:
        fail("%s: event %r, wanted user %s mailbox %s count 1"
             % (what, ev, USER, mailbox))
    if not in_maildir:
        fail("%s: event arrived before the message was in the Maildir" % what)
    # ...and readable over IMAP under the UID the event gives.
    body = imap_fetch(mailbox, ev["uid"])
    if body is None or token not in body:
        fail("%s: IMAP UID FETCH %d in %s did not return the message"
             % (what, ev["uid"], mailbox))
    t_imap = now()
    ok("%s: event %s uid=%d count=%d from uid %d pid %d; in Maildir at "
       "arrival; IMAP FETCH ok (send->event %.0f ms, event->fetched %.0f ms)"
       % (what, ev["mailbox"], ev["uid"], ev["count"], cred[1], cred[0],
          (t_ev - t_sent) * 1000, (t_imap - t_ev) * 1000))
    return ev

def expect_none(rx, secs, what):
    r = rx.recv(secs)
    if r is not None: fail("%s: unexpected event %r" % (what, r[0]))

def token(): return uuid.uuid4().hex[:16]

# ---------------------------------------------------------------------------
def phase_deliver():
    log = Log(); rx = Receiver()
    tk = token(); t = now(); smtp_send(tk)
    expect_event(rx, "INBOX", tk, t, "SMTP to INBOX")
    expect_none(rx, 0.5, "SMTP to INBOX (a second event)")
    ok("exactly one event for one message")

    tk = token(); t = now(); smtp_send(tk, "junk")
    expect_event(rx, "Junk", tk, t, "Sieve fileinto Junk")
    expect_none(rx, 0.5, "Sieve fileinto Junk (a second event)")
    if maildir_has(tk, "INBOX"): fail("junk message also in INBOX")
    ok("the junk message produced one event, for Junk only")

    # IMAP APPEND: the snippet loads the driver for lmtp only.
    m = imap(); m.append("INBOX", None, None, message(token(), "append").encode())
    m.logout()
    expect_none(rx, 0.5, "IMAP APPEND with the driver in lmtp only")
    ok("IMAP APPEND: no event (driver not loaded in imap)")
    lines = log.new()
    if lines: fail("unexpected mailpush log lines: %r" % lines)
    rx.close()

def appenduid(m, tk):
    typ, data = m.append("INBOX", None, None, message(tk, "append").encode())
    mo = re.search(rb"APPENDUID \d+ (\d+)", data[0])
    if typ != "OK" or not mo: fail("APPEND: %r %r" % (typ, data))
    return int(mo.group(1))

def phase_append_off():
    rx = Receiver(); m = imap()
    appenduid(m, token()); m.logout()
    expect_none(rx, 0.5, "IMAP APPEND with driver in imap, events=MessageNew")
    ok("IMAP APPEND with events=MessageNew: no event")
    rx.close()

def phase_append_on():
    log = Log(); rx = Receiver(); m = imap()
    tk = token(); t = now(); uid = appenduid(m, tk); m.logout()
    ev = expect_event(rx, "INBOX", tk, t, "IMAP APPEND (MessageAppend)")
    if ev["uid"] != uid: fail("APPEND event uid %d, APPENDUID %d" % (ev["uid"], uid))
    expect_none(rx, 0.3, "IMAP APPEND (a second event)")
    ok("IMAP APPEND: event uid equals APPENDUID %d" % uid)
    tk = token(); t = now(); smtp_send(tk)
    ev2 = expect_event(rx, "INBOX", tk, t, "SMTP with MessageNew,MessageAppend")
    expect_none(rx, 0.5, "SMTP with both events (a second event)")
    ok("LMTP delivery with both events on: still exactly one event")
    # COPY of two messages: one transaction, so one event, count 2, and
    # the higher of the two new UIDs.
    m = imap(); m.create("Archive"); m.select("INBOX")
    typ, data = m.uid("COPY", "%d,%d" % (uid, ev2["uid"]), "Archive")
    copyuid = m.response("COPYUID")[1][0]
    m.logout()
    if typ != "OK" or not copyuid: fail("IMAP COPY: %r %r" % (typ, data))
    r = rx.recv(15)
    if r is None: fail("IMAP COPY: no event")
    e = r[0]
    if e["mailbox"] != "Archive" or e["count"] != 2 or e["uid"] != 2:
        fail("IMAP COPY of 2 messages: event %r, COPYUID %r" % (e, copyuid))
    expect_none(rx, 0.3, "IMAP COPY (a second event)")
    ok("IMAP COPY of 2 messages into Archive: one event, count 2, uid 2")
    lines = log.new()
    if lines: fail("unexpected mailpush log lines: %r" % lines)
    rx.close()

def phase_bad_config():
    # events=Bogus and an unknown setting: each is one warning, ignored;
    # the driver keeps its defaults and the event is still sent
    log = Log(); rx = Receiver(); tk = token(); t = now()
    replies, ms = lmtp_send(tk, [USER])
    if not replies[0].startswith("250"): fail("LMTP with a bad setting: %r" % replies)
    if not maildir_has(tk): fail("LMTP with a bad setting: message not stored")
    expect_event(rx, "INBOX", tk, t, "LMTP with bad driver settings")
    lines = log.new(2)
    if not any("unknown event 'Bogus' ignored" in l for l in lines) or \
            not any("unknown setting 'nosuch' ignored" in l for l in lines):
        fail("no warnings logged for events=Bogus nosuch=1: %r" % lines)
    ok("events=Bogus nosuch=1: delivery ok in %.0f ms, event sent with the "
       "defaults; logged: %s" % (ms, lines[0].split(": ", 1)[1]))
    rx.close()

def phase_no_listener():
    log = Log()
    rx = Receiver()
    tk = token(); replies, base = lmtp_send(tk, [USER])
    if not replies[0].startswith("250"): fail("LMTP baseline: %r" % replies)
    r = rx.recv(5)
    if r is None or r[0]["mailbox"] != "INBOX": fail("LMTP baseline: no event")
    ok("LMTP delivery, daemon listening: %.1f ms" % base)
    rx.close()

    def nobody(what, expect_err):
        tk = token(); replies, ms = lmtp_send(tk, [USER])
        if not replies[0].startswith("250") or not maildir_has(tk):
            fail("%s: delivery failed: %r" % (what, replies))
        lines = log.new(1)
        if len(lines) != 1 or "Warning" not in lines[0] or expect_err not in lines[0]:
            fail("%s: wanted one warning with %r, got %r" % (what, expect_err, lines))
        if ms >= 1000: fail("%s: delivery took %.0f ms" % (what, ms))
        ok("%s: delivered in %.1f ms, one warning" % (what, ms))
        return ms

    log.new()
    t_absent = nobody("no socket file", "No such file or directory")
    # The same through Postfix: stored at once, one warning.
    tk = token(); t = now(); smtp_send(tk)
    while not maildir_has(tk):
        if now() - t > 15: fail("SMTP with no socket file: not stored in 15 s")
        time.sleep(0.005)
    t_smtp = (now() - t) * 1000
    lines = log.new(1)
    if len(lines) != 1 or "No such file or directory" not in lines[0]:
        fail("SMTP with no socket file: wanted one warning, got %r" % lines)
    ok("no socket file, via Postfix: stored %.0f ms after the SMTP send, "
       "one warning" % t_smtp)
    # A socket file nobody is bound to any more (daemon killed).
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(EVSOCK)
    os.chmod(EVSOCK, 0o666); s.close()
    t_stale = nobody("stale socket file", "Connection refused")

    # Socket bound but never read: fill its queue first, so that the
    # driver's send gets EAGAIN and must wait out its timeout.
    os.unlink(EVSOCK); rx = Receiver(); fillers = []; n = 0
    for _ in range(200):
        f = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        f.connect(EVSOCK); f.setblocking(False); fillers.append(f); sent = 0
        try:
            while True: f.send(b"FILL"); sent += 1; n += 1
        except BlockingIOError:
            pass
        if sent == 0: break
    else:
        fail("could not fill the event socket's queue")
    try:
        qlen = open("/proc/sys/net/unix/max_dgram_qlen").read().strip()
    except OSError:
        qlen = "?"
    tk = token(); replies, ms = lmtp_send(tk, [USER, "bob@" + DOMAIN])
    if not all(r.startswith("250") for r in replies) or not maildir_has(tk) \
            or not maildir_has(tk, user="bob"):
        fail("queue full: delivery failed: %r" % replies)
    lines = log.new(2)
    if len(lines) != 2 or "Connection timed out (%dms)" % TIMEOUT_MS not in lines[0] \
            or "(10ms: an earlier send timed out)" not in lines[1]:
        fail("queue full: wanted a timeout warning and a short-wait (10ms) "
             "warning, got %r" % lines)
    if ms < TIMEOUT_MS + 10 or ms >= TIMEOUT_MS + 1000:
        fail("queue full: two-recipient delivery took %.0f ms" % ms)
    ok("socket present, not read (%d datagrams queued, max_dgram_qlen %s): "
       "two recipients delivered in %.1f ms, one %d ms wait and one of "
       "10 ms, two warnings"
       % (n, qlen, ms, TIMEOUT_MS))
    for f in fillers: f.close()
    # Drain; the timed-out event must not be there, and the next delivery
    # must produce an event again.
    while True:
        r = rx.recv(0.05, raw=True)
        if r is None: break
        if r[0] != b"FILL": fail("queue full: an event got through: %r" % r[0])
    tk = token(); t = now(); replies, _ = lmtp_send(tk, [USER])
    expect_event(rx, "INBOX", tk, t, "after the daemon caught up")
    lines = log.new()
    if lines: fail("log lines after recovery: %r" % lines)
    rx.close()
    print("lmtp.sh: timings: LMTP delivery %.1f ms listening, %.1f ms no socket, "
          "%.1f ms stale socket, %.1f ms (2 rcpts) queue full"
          % (base, t_absent, t_stale, ms), flush=True)

globals()["phase_" + sys.argv[1]]()
PY

export T DOMAIN EVSOCK LMTP_SOCK IMAP_PORT
check() {
	local t
	t=$(date +%s%N)
	python3 "$T/check.py" "$1"
	say "phase $1: $(ms "$t") ms"
}
set_driver() {	# set_driver EVENTS: a later plugin block overrides the snippet's
	cat >> "$DC/dovecot.conf" <<-EOF
	plugin {
	  push_notification_driver = mailpush:socket=$EVSOCK timeout=100ms events=$1
	}
	EOF
}
reload() {
	local t
	t=$(date +%s%N)
	doveadm -c "$DC/dovecot.conf" reload
	# The master re-reads its config on SIGHUP; wait until the new config
	# process answers (doveadm needs it), then a little for old processes.
	for _ in $(seq 50); do
		doveadm -c "$DC/dovecot.conf" config -h mail_plugins \
		    >/dev/null 2>&1 && break
		sleep 0.1
	done
	sleep 0.3
	say "dovecot reload: $(ms "$t") ms"
}

check deliver
check no_listener

# MessageAppend: load the driver in imap as the snippet's comment says.
cat >> "$DC/dovecot.conf" <<'EOF'
protocol imap {
  mail_plugins = $mail_plugins notify push_notification mailpush
}
EOF
reload
check append_off
set_driver MessageNew,MessageAppend
reload
check append_on

set_driver "Bogus nosuch=1"
reload
check bad_config

if grep -E 'Panic|Fatal' "$T/dovecot.log"; then
	die "Dovecot logged a panic or fatal error"
fi
