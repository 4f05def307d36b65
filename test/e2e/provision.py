#!/usr/bin/env python3
"""The checks of test/e2e/provision.sh, against the Dovecot, Postfix and
mailpushd it started.  Every wait is bounded; the first failure ends the
run with a message that says what was expected and what came."""

import imaplib
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time

T = os.environ["E2E_T"]
B = os.environ["E2E_B"]
MPCONF = os.environ["E2E_MPCONF"]
DOMAIN = os.environ["E2E_DOMAIN"]
IMAPS_PORT = int(os.environ["E2E_IMAPS_PORT"])
IMAP_PORT = int(os.environ["E2E_IMAP_PORT"])
UDP = os.environ["E2E_UDP"]
UDP2 = os.environ["E2E_UDP2"]
CA = os.path.join(T, "tls", "ca.crt")
OTHER_CA = os.path.join(T, "tls", "other-ca.crt")
PROV_SOCK = os.path.join(T, "mp", "run", "provision.sock")
PREFIX = "/private/vendor/vendor.mailpush/"
ENTRIES = ("token", "user", "servers")
USERS = {
	"alice@" + DOMAIN: "alice-secret",
	"bob@" + DOMAIN: "bob-secret",
	"mpprovsys": "sys-secret",
}
PUSH_RE = re.compile(r"^push user=(\S+) seq=(\d+) count=(\d+) new=(\d+) "
    r"total=(\d+) time=(\S+)( restarted=1)?( exact=0)?$")
T0 = time.monotonic()
procs = []


def say(msg):
	print("e2e-provision: %6.1f s %s" % (time.monotonic() - T0, msg),
	    flush=True)


def fail(msg):
	print("e2e-provision: FAIL: " + msg, flush=True)
	for p in procs:
		if p.poll() is None:
			p.kill()
	sys.exit(1)


def check(cond, msg):
	if not cond:
		fail(msg)


def pidfile(name, pid):
	with open(os.path.join(T, "pids", name), "w") as fh:
		fh.write("%d\n" % pid)


def ctl(*args):
	r = subprocess.run([B + "/mailpushctl", "-c", MPCONF] + list(args),
	    capture_output=True, text=True, timeout=20)
	return r.returncode, r.stdout, r.stderr


# ---- IMAP METADATA --------------------------------------------------------

imaplib.Commands.setdefault("GETMETADATA", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("SETMETADATA", ("AUTH", "SELECTED"))


def tls_context(cafile):
	ctx = ssl.create_default_context(cafile=cafile)
	ctx.minimum_version = ssl.TLSVersion.TLSv1_2
	return ctx


def imap_login(user, password, starttls=False, cafile=CA):
	if starttls:
		m = imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=10)
		m.starttls(ssl_context=tls_context(cafile))
	else:
		m = imaplib.IMAP4_SSL("127.0.0.1", IMAPS_PORT,
		    ssl_context=tls_context(cafile), timeout=10)
	m.login(user, password)
	return m


def metadata(m):
	"""GETMETADATA "" of the three entries: {name: value}."""
	typ, dat = m._simple_command("GETMETADATA", '""', "(%s)" % " ".join(
	    PREFIX + e for e in ENTRIES))
	check(typ == "OK", "GETMETADATA answered %s %r" % (typ, dat))
	typ, dat = m._untagged_response(typ, dat, "METADATA")
	# imaplib hands literals over as (head, value) tuples
	flat = b""
	for d in dat:
		if isinstance(d, tuple):
			flat += re.sub(rb"\{\d+\}$", b"", d[0]) + b'"' + \
			    d[1] + b'"'
		elif d is not None:
			flat += d
	text = flat.decode()
	got = {}
	for e in ENTRIES:
		mm = re.search(re.escape(PREFIX + e) + r' (?:"([^"]*)"|(NIL))',
		    text)
		check(mm is not None, "no %s in the METADATA answer %r" %
		    (e, text))
		got[e] = mm.group(1)
	return got


def imap_entries(user, starttls=False):
	m = imap_login(user, USERS[user], starttls)
	try:
		return metadata(m)
	finally:
		m.logout()


def check_entries():
	servers = "%s %s" % (UDP, UDP2)
	seen = {}
	for user in USERS:
		got = imap_entries(user)
		rc, out, err = ctl("token", user)
		check(rc == 0, "mailpushctl token %s: %s" % (user, err))
		check(got["token"] == out.strip(), "%s: METADATA token %r, "
		    "mailpushctl token %r" % (user, got["token"], out.strip()))
		check(re.fullmatch(r"1:[0-9a-f]{64}", got["token"]) is not None,
		    "%s: token %r is not ID:HEX" % (user, got["token"]))
		check(got["user"] == user, "%s: user entry %r" % (user,
		    got["user"]))
		check(got["servers"] == servers, "%s: servers %r, want %r" %
		    (user, got["servers"], servers))
		seen[user] = got["token"]
	check(len(set(seen.values())) == len(seen), "two users got the "
	    "same token: %r" % seen)
	# STARTTLS on the plain port gives the same
	got = imap_entries("bob@" + DOMAIN, starttls=True)
	check(got["token"] == seen["bob@" + DOMAIN], "STARTTLS: another token")
	say("METADATA over imaps and STARTTLS: token, user and servers of "
	    "alice, bob (vmail) and mpprovsys (system user) as mailpushctl "
	    "prints them")
	return seen


def check_isolation(tokens):
	alice, bob = "alice@" + DOMAIN, "bob@" + DOMAIN
	m = imap_login(alice, USERS[alice])
	try:
		got = metadata(m)
		check(got["token"] == tokens[alice] and got["token"] !=
		    tokens[bob], "Alice's session answered %r" % got)
		# the entries are read-only, and setting one changes nothing
		typ, dat = m._simple_command("SETMETADATA", '""',
		    '(%stoken "%s")' % (PREFIX, tokens[bob]))
		check(typ != "OK", "SETMETADATA on the token entry succeeded")
		got = metadata(m)
		check(got["token"] == tokens[alice], "after SETMETADATA: %r" %
		    got)
		# another mailbox's private entries hold nothing of mailpush's
		typ, dat = m._simple_command("GETMETADATA", "INBOX",
		    "(%stoken)" % PREFIX)
		check(typ == "OK" and tokens[alice] not in str(dat),
		    "INBOX entry: %s %r" % (typ, dat))
	finally:
		m.logout()
	# a wrong password gets nothing
	try:
		imap_login(alice, "wrong")
		fail("login with a wrong password succeeded")
	except imaplib.IMAP4.error:
		pass
	# nor does a client that does not trust the certificate
	try:
		imap_login(alice, USERS[alice], cafile=OTHER_CA)
		fail("a client trusting another CA accepted the server")
	except ssl.SSLCertVerificationError:
		pass
	say("Alice's session gives only Alice's token; SETMETADATA refused; "
	    "wrong password and wrong CA get nothing")


def ask_socket_as(who, user):
	"""What the provisioning socket answers `who' asking for `user'."""
	code = ("import socket,sys\n"
	    "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
	    "s.settimeout(5); s.connect(sys.argv[1])\n"
	    "s.send(('token '+sys.argv[2]).encode())\n"
	    "sys.stdout.write(s.recv(4096).decode())\n")
	r = subprocess.run(["runuser", "-u", who, "--", "python3", "-c", code,
	    PROV_SOCK, user], capture_output=True, text=True, timeout=20)
	check(r.returncode == 0, "asking as %s: %s" % (who, r.stderr))
	return r.stdout


def check_socket_trust(tokens):
	alice = "alice@" + DOMAIN
	out = ask_socket_as("mpprovx", alice)
	check(out.startswith("error: permission denied"), "uid mpprovx asking "
	    "for %s got %r" % (alice, out))
	check(tokens[alice].split(":")[1] not in out, "token leaked")
	out = ask_socket_as("mpprovx", "mpprovsys")
	check(out.startswith("error: permission denied"), "uid mpprovx asking "
	    "for mpprovsys got %r" % out)
	out = ask_socket_as("mpprovx", "mpprovx")
	check(out.startswith("ok\ntoken 1:"), "uid mpprovx asking for itself "
	    "got %r" % out)
	out = ask_socket_as("vmail", alice)
	check(("token %s\n" % tokens[alice]) in out, "vmail (trusted) asking "
	    "for %s got %r" % (alice, out))
	say("provisioning socket: an untrusted uid gets only its own token, "
	    "vmail (trusted) any")


# ---- listeners and mail ------------------------------------------------------

class Listener:
	def __init__(self, tag, args, env=None, runas=None):
		self.tag = tag
		self.out = os.path.join(T, "listen-%s.out" % tag)
		self.err = os.path.join(T, "listen-%s.err" % tag)
		o, e = open(self.out, "wb"), open(self.err, "wb")
		cmd = [B + "/mailpush-listen", "-v"] + args
		full = dict(os.environ)
		full.pop("XDG_STATE_HOME", None)
		if env:
			full.update(env)
		if runas is not None:
			cmd = ["runuser", "-u", runas, "--", "env",
			    "HOME=" + full["HOME"]] + cmd
		self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
		    stdout=o, stderr=e, env=full)
		o.close()
		e.close()
		procs.append(self.p)
		pidfile("listen-" + tag, self.p.pid)
		self.pushes = []
		self.pos = 0

	def poll(self):
		with open(self.out) as fh:
			fh.seek(self.pos)
			data = fh.read()
		while "\n" in data:
			line, data = data.split("\n", 1)
			self.pos += len(line) + 1
			m = PUSH_RE.match(line)
			check(m is not None, "%s printed %r" % (self.tag, line))
			self.pushes.append(line)
		return len(self.pushes)

	def stderr(self):
		with open(self.err) as fh:
			return fh.read()

	def alive(self):
		if self.p.poll() is not None:
			fail("%s exited %d: %s" % (self.tag, self.p.returncode,
			    self.stderr()))

	def wait_stderr(self, needle, secs):
		end = time.monotonic() + secs
		while time.monotonic() < end:
			if needle in self.stderr():
				return True
			self.alive()
			time.sleep(0.05)
		return False

	def wait_pushes(self, n, secs):
		end = time.monotonic() + secs
		while time.monotonic() < end:
			if self.poll() >= n:
				return True
			self.alive()
			time.sleep(0.05)
		return False

	def stop(self):
		if self.p.poll() is None:
			self.p.terminate()
			try:
				self.p.wait(5)
			except subprocess.TimeoutExpired:
				self.p.kill()
				self.p.wait(5)


def send_mail(rcpt, n):
	msg = ("From: e2e@localhost\r\nTo: %s\r\nSubject: provision test %d"
	    "\r\n\r\nbody %d\r\n" % (rcpt, n, n))
	with smtplib.SMTP("127.0.0.1", 25, timeout=20) as s:
		s.sendmail("e2e@localhost", [rcpt], msg)


def write_secret(path, text, owner=None):
	fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
	os.write(fd, text.encode())
	os.close(fd)
	if owner is not None:
		subprocess.run(["chown", owner, path], check=True)


def check_token_works(tokens):
	"""The token read over IMAP registers, and pushes come for SMTP mail."""
	ls = []
	for user in ("alice@" + DOMAIN, "mpprovsys"):
		tag = "manual-" + user.split("@")[0]
		path = os.path.join(T, tag + ".token")
		write_secret(path, tokens[user] + "\n")
		ls.append((user, Listener(tag, ["-s", UDP, "-u", user, "-K",
		    path])))
	for user, l in ls:
		check(l.wait_stderr("registered", 10), "%s: not registered: %s" %
		    (user, l.stderr()))
	for i, (user, l) in enumerate(ls):
		rcpt = user if "@" in user else user + "@localhost"
		send_mail(rcpt, i)
		check(l.wait_pushes(1, 15), "%s: no push within 15 s of the "
		    "mail: %s" % (user, l.stderr()))
	for _, l in ls:
		l.stop()
	say("tokens read over IMAP register (vmail and system user) and "
	    "bring the push for mail sent over SMTP")


def client_home(tag, owner=None):
	home = os.path.join(T, "client-" + tag)
	os.makedirs(home, mode=0o700, exist_ok=True)
	if owner is not None:
		subprocess.run(["chown", owner, home], check=True)
	return home


def listen_provisioned(tag, url, pwfile, cafile=CA, runas=None, extra=()):
	"""mailpush-listen -I URL -P FILE (or extra's -E) [-A CA], with its
	own HOME."""
	home = client_home(tag, runas)
	args = ["-I", url] + (["-P", pwfile] if pwfile else []) + \
	    (["-A", cafile] if cafile else []) + list(extra)
	l = Listener(tag, args, env={"HOME": home}, runas=runas)
	return l, home


def check_client(tokens):
	alice = "alice@" + DOMAIN
	pw_alice = os.path.join(T, "alice.pw")
	write_secret(pw_alice, USERS[alice] + "\n")
	url = "imaps://alice%%40%s@127.0.0.1:%d/" % (DOMAIN, IMAPS_PORT)
	la, home = listen_provisioned("prov-alice", url, pw_alice)
	check(la.wait_stderr("registered", 15), "alice -I: not registered: %s"
	    % la.stderr())
	cache = os.path.join(home, ".local", "state", "mailpush",
	    "provision-alice%%40%s@127.0.0.1" % DOMAIN)
	if not os.path.exists(cache):
		cache = os.path.join(home, ".local", "state", "mailpush",
		    "provision-%s@127.0.0.1" % alice)
	check(os.path.exists(cache), "no cache file under %s: %r" % (home,
	    os.listdir(os.path.join(home, ".local", "state", "mailpush"))))
	st = os.stat(cache)
	check(st.st_mode & 0o777 == 0o600, "cache mode %o" % (st.st_mode &
	    0o777))
	check(("token %s\n" % tokens[alice]) in open(cache).read(),
	    "cache does not hold Alice's token")
	# the system user, over STARTTLS, as itself, password from a command
	pw_sys = os.path.join(T, "sys.pw")
	write_secret(pw_sys, USERS["mpprovsys"] + "\n", owner="mpprovsys")
	urls = "imap://mpprovsys@127.0.0.1:%d/" % IMAP_PORT
	ls, _ = listen_provisioned("prov-sys", urls, None,
	    runas="mpprovsys", extra=["-E", "cat " + pw_sys])
	check(ls.wait_stderr("registered", 15), "mpprovsys -I: not "
	    "registered: %s" % ls.stderr())
	send_mail(alice, 10)
	send_mail("mpprovsys@localhost", 11)
	check(la.wait_pushes(1, 15), "alice -I: no push: %s" % la.stderr())
	check(ls.wait_pushes(1, 15), "mpprovsys -I: no push: %s" % ls.stderr())
	for l, secret in ((la, USERS[alice]), (ls, USERS["mpprovsys"])):
		with open("/proc/%d/cmdline" % l.p.pid, "rb") as fh:
			check(secret.encode() not in fh.read(), "%s: the password "
			    "is on the command line" % l.tag)
	la.stop()
	ls.stop()
	say("mailpush-listen -I imaps:// (vmail user, password file) and "
	    "imap:// STARTTLS (system user, password command) register with "
	    "only the URL and report pushes; cache mode 0600")
	# a certificate the client does not trust: refused, nothing cached
	for tag, ca in (("wrongca", OTHER_CA), ("systemstore", None)):
		lw, home = listen_provisioned(tag, url, pw_alice, cafile=ca)
		try:
			lw.p.wait(30)
		except subprocess.TimeoutExpired:
			fail("-I with an untrusted certificate still runs")
		err = lw.stderr()
		check(lw.p.returncode != 0 and "provisioning failed" in err and
		    ("certificate" in err.lower() or "ssl" in err.lower()),
		    "%s: exit %d, %r" % (tag, lw.p.returncode, err))
		check(not os.path.exists(os.path.join(home, ".local", "state",
		    "mailpush")) or not os.listdir(os.path.join(home, ".local",
		    "state", "mailpush")), "%s: something was cached" % tag)
	say("a server certificate from another CA, or not in the system "
	    "store, is refused by the client")


GRACE = 20	# [mailpushd] key_grace in provision.sh


def check_rollover(tokens):
	"""mailpushctl key rotate: old tokens work during the grace period;
	after it the provisioned client provisions anew by itself and keeps
	getting pushes, the hand-made token's client is refused clearly."""
	alice, bob = "alice@" + DOMAIN, "bob@" + DOMAIN
	pw = os.path.join(T, "alice.pw")
	url = "imaps://alice%%40%s@127.0.0.1:%d/" % (DOMAIN, IMAPS_PORT)
	lp, home = listen_provisioned("roll-prov", url, pw)
	path = os.path.join(T, "roll-bob.token")
	write_secret(path, tokens[bob] + "\n")
	lm = Listener("roll-manual", ["-s", UDP, "-u", bob, "-K", path])
	for l in (lp, lm):
		check(l.wait_stderr("registered", 15), "%s: not registered: %s" %
		    (l.tag, l.stderr()))
	rc, out, err = ctl("key", "rotate")
	check(rc == 0 and "key 2 is now current" in out, "key rotate: %d %s%s"
	    % (rc, out, err))
	t_rot = time.monotonic()
	got = imap_entries(alice)
	check(got["token"].startswith("2:") and got["token"] !=
	    tokens[alice], "after the rotation IMAP gives %r" % got["token"])
	rc, out, _ = ctl("token", alice)
	check(out.strip() == got["token"], "mailpushctl token after rotate")
	# during the grace period, both old tokens still bring pushes
	send_mail(alice, 20)
	send_mail(bob, 21)
	check(lp.wait_pushes(1, 10), "provisioned client: no push during "
	    "the grace period: %s" % lp.stderr())
	check(lm.wait_pushes(1, 10), "manual client: no push during the "
	    "grace period: %s" % lm.stderr())
	check(time.monotonic() - t_rot < GRACE, "the grace part took longer "
	    "than the grace")
	say("key rotated: tokens of key 1 still registered and pushed during "
	    "the %d s grace; IMAP and mailpushctl give key 2" % GRACE)
	# after the grace: the provisioned client fetches key 2 itself
	end = t_rot + GRACE + 30
	while time.monotonic() < end and lm.p.poll() is None:
		time.sleep(0.2)
	check(lm.p.poll() == 2, "manual client after the grace: %r, %s" %
	    (lm.p.poll(), lm.stderr()))
	check("may belong to a retired key" in lm.stderr() and
	    "mailpushctl token" in lm.stderr(), "manual client's message: %s"
	    % lm.stderr())
	check(lp.wait_stderr("provisioning anew over IMAP", max(1, end -
	    time.monotonic())), "provisioned client never re-provisioned: %s"
	    % lp.stderr())
	check(lp.wait_stderr("key 2", 15), "no key 2 after re-provisioning: "
	    "%s" % lp.stderr())
	n = lp.poll()
	t = time.monotonic()
	while time.monotonic() < t + 15 and lp.stderr().count("registered "
	    "id=") < 2:
		time.sleep(0.1)
	send_mail(alice, 22)
	check(lp.wait_pushes(n + 1, 15), "provisioned client: no push after "
	    "re-provisioning: %s" % lp.stderr())
	cache = [os.path.join(dp, f) for dp, _, fs in os.walk(home)
	    for f in fs if f.startswith("provision-")]
	check(len(cache) == 1 and ("token %s\n" % got["token"]) in
	    open(cache[0]).read(), "cache not updated to key 2")
	lp.stop()
	say("after the grace: the provisioned client provisioned key 2 by "
	    "itself and got the next push; the hand-made token's client exited "
	    "2 saying the token may belong to a retired key")


def main():
	tokens = check_entries()
	check_isolation(tokens)
	check_socket_trust(tokens)
	check_token_works(tokens)
	check_client(tokens)
	check_rollover(tokens)
	say("all provisioning checks passed")


main()
