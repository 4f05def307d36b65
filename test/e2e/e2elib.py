#!/usr/bin/env python3
# test/e2e/e2elib.py: what the end-to-end checks (e2e.py) work with: the
# environment run.sh gives, mailpushd and mailpush-listen processes, IMAP
# IDLE connections and fetches, the /dev/log catcher, the SMTP client and
# the Postfix queue and log.  Python standard library only.

import datetime
import email.utils
import imaplib
import json
import os
import pwd
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

T = os.environ["E2E_T"]
B = os.environ["E2E_B"]
MPCONF = os.environ["E2E_MPCONF"]
UDP = os.environ["E2E_UDP"]
IMAP_PORT = int(os.environ["E2E_IMAP_PORT"])
STATE_FILE = os.environ["E2E_STATE_FILE"]
EVSOCK = os.environ["E2E_EVSOCK"]
PFLOG = os.environ["E2E_POSTFIX_LOG"]
LIFETIME = int(os.environ["E2E_LIFETIME"])
LMTP = os.environ.get("E2E_LMTP", "")	# script that switches to LMTP, or ""
PER_USER = int(os.environ.get("E2E_PER_USER", "4"))
TARGET = 20.0				# push at least this much sooner than IDLE
# E2E_CLUSTER: the daemon is a [cluster] notifier fed through Redis by a
# relay that run.sh started on the event socket; only the start and the
# timed deliveries run (mailpush-cluster(7))
CLUSTER = os.environ.get("E2E_CLUSTER", "")
SENDER = "mailpush-e2e@localhost.localdomain"

with open(os.path.join(T, "users.json")) as fh:
	USERS = json.load(fh)		# [{name, kind, login, maildir, addrs}]



def say(msg):
	print("e2e: " + msg, flush=True)


def ok(msg):
	say("ok   " + msg)


class Fail(Exception):
	pass


def fail(msg):
	raise Fail(msg)


def now():
	return time.time()


def run(cmd, check=True, timeout=60):
	p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
	    text=True, timeout=timeout)
	if check and p.returncode != 0:
		fail("%s exited %d: %s" % (" ".join(cmd), p.returncode,
		    p.stdout.strip()))
	return p.stdout


def start_dovecot():
	# It forks into the background: no pipe for its output, which its
	# children would keep open.
	p = subprocess.run(["dovecot"], stdin=subprocess.DEVNULL,
	    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
	if p.returncode != 0:
		fail("dovecot exited %d at start" % p.returncode)


def process_named(name):
	for p in os.listdir("/proc"):
		try:
			if p.isdigit() and open("/proc/%s/comm" % p).read() == \
			    name + "\n":
				return True
		except OSError:
			pass
	return False


def dovecot_running():
	"""The master answers on the IMAP port."""
	if not process_named("dovecot"):
		return False
	s = socket.socket()
	s.settimeout(1)
	r = s.connect_ex(("127.0.0.1", IMAP_PORT))
	s.close()
	return r == 0


def wait_until(pred, timeout, what, step=0.002):
	end = time.monotonic() + timeout
	while True:
		r = pred()
		if r:
			return r
		if time.monotonic() > end:
			fail("%s: not within %g s" % (what, timeout))
		time.sleep(step)


def pidfile(name, pid):
	d = os.path.join(T, "pids")
	os.makedirs(d, exist_ok=True)
	with open(os.path.join(d, name), "w") as fh:
		fh.write("%d\n" % pid)


def ctl(*args):
	return run([B + "/mailpushctl", "-c", MPCONF] + list(args))


def ctlj(*args):
	return json.loads(ctl("-j", *args))


# ---- mailpushd ------------------------------------------------------------

class Daemon:
	def __init__(self):
		self.p = None
		self.log = os.path.join(T, "mailpushd.log")

	def start(self):
		errf = open(self.log, "a")
		self.p = subprocess.Popen([B + "/mailpushd", "-d", "-c", MPCONF],
		    stdin=subprocess.DEVNULL, stdout=errf, stderr=errf)
		errf.close()
		pidfile("mailpushd", self.p.pid)

		def up():
			if self.p.poll() is not None:
				fail("mailpushd exited %d at start; its log:\n%s"
				    % (self.p.returncode, open(self.log).read()))
			return subprocess.run([B + "/mailpushctl", "-c", MPCONF,
			    "status"], stdout=subprocess.DEVNULL,
			    stderr=subprocess.DEVNULL).returncode == 0
		wait_until(up, 10, "mailpushd answering on its control socket",
		    0.02)
		st = os.stat("/proc/%d" % self.p.pid)
		return st.st_uid

	def kill(self):
		self.p.kill()
		self.p.wait(10)

	def stop(self):
		if self.p is None or self.p.poll() is not None:
			return
		self.p.send_signal(signal.SIGTERM)
		try:
			self.p.wait(10)
		except subprocess.TimeoutExpired:
			self.p.kill()
			self.p.wait(5)
			fail("mailpushd did not exit within 10 s of SIGTERM")
		if self.p.returncode != 0:
			fail("mailpushd exited %d on SIGTERM" % self.p.returncode)


# ---- mailpush-listen ---------------------------------------------------------

PUSH_RE = re.compile(r"^push user=(\S+) seq=(\d+) count=(\d+) new=(\d+) "
    r"total=(\d+) time=(\S+)( restarted=1)?( exact=0)?$")


class Listener:
	def __init__(self, user):
		self.user = user
		self.tag = user.split("@")[0]
		self.token = os.path.join(T, "tokens", self.tag)
		self.out = os.path.join(T, "listen-%s.out" % self.tag)
		self.err = os.path.join(T, "listen-%s.err" % self.tag)
		self.pushes = []	# dicts: seq count new total t (epoch) seen
		self.buf = b""
		self.fh = None
		self.p = None

	def start(self):
		out = open(self.out, "wb")
		err = open(self.err, "wb")
		self.p = subprocess.Popen([B + "/mailpush-listen", "-v", "-s", UDP,
		    "-u", self.user, "-K", self.token], stdin=subprocess.DEVNULL,
		    stdout=out, stderr=err)
		out.close()
		err.close()
		pidfile("listen-" + self.tag, self.p.pid)
		self.fh = open(self.out, "rb")

	def poll(self):
		if self.p.poll() is not None:
			fail("mailpush-listen for %s exited %d: %s" % (self.user,
			    self.p.returncode, open(self.err).read().strip()))
		data = self.fh.read()
		if data:
			self.buf += data
		seen = now()
		while b"\n" in self.buf:
			line, self.buf = self.buf.split(b"\n", 1)
			line = line.decode()
			m = PUSH_RE.match(line)
			if not m:
				fail("mailpush-listen %s printed %r" % (self.user, line))
			if m.group(1) != self.user:
				fail("listener %s reported user %s" % (self.user,
				    m.group(1)))
			t = datetime.datetime.strptime(m.group(6),
			    "%Y-%m-%dT%H:%M:%S.%fZ").replace(
			    tzinfo=datetime.timezone.utc).timestamp()
			self.pushes.append(dict(seq=int(m.group(2)),
			    count=int(m.group(3)), new=int(m.group(4)),
			    total=int(m.group(5)), t=t, seen=seen, line=line))
		return len(self.pushes)

	def new_total(self):
		return sum(p["new"] for p in self.pushes)

	def stderr(self):
		with open(self.err) as fh:
			return fh.read()

	def stop(self):
		if self.p is not None and self.p.poll() is None:
			self.p.terminate()
			try:
				self.p.wait(5)
			except subprocess.TimeoutExpired:
				self.p.kill()
				self.p.wait(5)


# ---- IMAP -------------------------------------------------------------------

class Idle:
	"""One IMAP connection in IDLE on INBOX; a thread timestamps every
	'* N EXISTS' the moment it arrives."""

	def __init__(self, login):
		self.login = login
		self.exists = 0
		self.when = {}		# N -> time.time() of "* N EXISTS"
		self.lines = []
		self.closed = False
		s = socket.create_connection(("127.0.0.1", IMAP_PORT), timeout=10)
		self.s = s
		self.f = s.makefile("rb")
		self._line("greeting")
		self._cmd(b"a1 LOGIN \"%s\" \"secret\"" % login.encode(), b"a1 ")
		self._cmd(b"a2 SELECT INBOX", b"a2 ")
		s.sendall(b"a3 IDLE\r\n")
		while True:
			line = self._line("IDLE")
			if line.startswith(b"+"):
				break
			self._note(line)
		s.settimeout(None)
		self.th = threading.Thread(target=self._loop, daemon=True)
		self.th.start()

	def _line(self, what):
		line = self.f.readline()
		if not line:
			fail("IMAP %s: connection closed during %s" % (self.login, what))
		return line

	def _cmd(self, cmd, tag):
		self.s.sendall(cmd + b"\r\n")
		while True:
			line = self._line(cmd.decode())
			if line.startswith(tag):
				if not line[len(tag):].startswith(b"OK"):
					fail("IMAP %s: %r -> %r" % (self.login, cmd, line))
				return
			self._note(line)

	def _note(self, line):
		m = re.match(rb"\* (\d+) EXISTS", line)
		if m:
			n = int(m.group(1))
			self.when.setdefault(n, now())
			self.exists = max(self.exists, n)

	def _loop(self):
		try:
			while True:
				line = self.f.readline()
				if not line:
					break
				self.lines.append(line)
				self._note(line)
		except OSError:
			pass
		self.closed = True

	def close(self):
		try:
			self.s.sendall(b"DONE\r\na4 LOGOUT\r\n")
		except OSError:
			pass
		try:
			self.s.shutdown(socket.SHUT_RDWR)
		except OSError:
			pass
		self.s.close()


class Fetcher:
	"""A second IMAP connection of the same user, used at the moment a push
	arrives to find and read the message."""

	def __init__(self, login):
		self.login = login
		self.m = imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=10)
		self.m.login(login, "secret")

	def fetch(self, token):
		typ, _ = self.m.select("INBOX", readonly=True)
		if typ != "OK":
			fail("IMAP %s: EXAMINE INBOX failed" % self.login)
		typ, data = self.m.uid("SEARCH", None, "HEADER", "Message-ID",
		    token)
		uids = data[0].split() if typ == "OK" and data[0] else []
		if len(uids) != 1:
			return None
		typ, data = self.m.uid("FETCH", uids[0], "(BODY.PEEK[])")
		for part in data:
			if isinstance(part, tuple):
				return part[1]
		return None

	def close(self):
		try:
			self.m.logout()
		except Exception:
			pass


# ---- syslog catcher ----------------------------------------------------------

class DevLog:
	"""Datagrams sent to /dev/log while the test runs (there is no syslog
	daemon on these machines); only when /dev/log did not exist."""

	def __init__(self):
		self.s = None
		self.lines = []
		if os.environ.get("E2E_DEVLOG") != "capture":
			return
		if os.path.exists("/dev/log"):
			say("note: /dev/log exists now; hook log lines not checked")
			return
		self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		self.s.bind("/dev/log")
		os.chmod("/dev/log", 0o666)
		open(os.path.join(T, "devlog-ours"), "w").close()
		self.th = threading.Thread(target=self._loop, daemon=True)
		self.th.start()

	def _loop(self):
		while True:
			try:
				data = self.s.recv(8192)
			except OSError:
				return
			self.lines.append(data.decode(errors="replace").rstrip("\n\0"))

	def hook_lines(self):
		return [l for l in self.lines if "mailpush-hook" in l]

	def close(self):
		if self.s is None:
			return
		self.s.close()
		try:
			os.unlink("/dev/log")
		except OSError:
			pass
		self.s = None


# ---- mail -----------------------------------------------------------------

def make_message(user, rcpt, n, tag):
	token = uuid.uuid4().hex
	body = ("Hello %s, message %d (%s).\r\n"
	    ".a line that starts with a dot\r\n"
	    "trailing blanks  \t \r\n"
	    "\r\n"
	    "tab\there, and the token %s\r\n" % (user["name"], n, tag, token))
	msg = ("From: mailpush e2e <%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: e2e %s %d %s\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s@e2e.mailpush>\r\n"
	    "\r\n" % (SENDER, rcpt, tag, n, token,
	    email.utils.formatdate(localtime=False), token)) + body
	return token, msg


def smtp_send(rcpt, msg):
	"""Send over SMTP to 127.0.0.1:25; return (time of the DATA reply,
	queue id)."""
	with smtplib.SMTP("127.0.0.1", 25, timeout=15) as s:
		s.ehlo("e2e.localhost")
		code, resp = s.mail(SENDER)
		if code != 250:
			fail("MAIL FROM: %d %s" % (code, resp))
		code, resp = s.rcpt(rcpt)
		if code not in (250, 251):
			fail("RCPT TO:<%s>: %d %s" % (rcpt, code, resp))
		code, resp = s.data(msg.encode())
		t = now()
		if code != 250:
			fail("DATA for %s: %d %s" % (rcpt, code, resp))
		m = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
		if not m:
			fail("no queue id in %r" % resp)
		return t, m.group(1).decode()


def maildir_files(user):
	out = []
	for sub in ("new", "cur"):
		d = os.path.join(user["maildir"], sub)
		if os.path.isdir(d):
			out += [os.path.join(d, n) for n in os.listdir(d)]
	return out


def find_token(token):
	"""{user name: [paths]} of every Maildir file holding token."""
	found = {}
	for u in USERS:
		for p in maildir_files(u):
			try:
				with open(p, "rb") as fh:
					if token.encode() in fh.read():
						found.setdefault(u["name"], []).append(p)
			except FileNotFoundError:
				pass	# renamed new -> cur meanwhile
	return found


ADDED = re.compile(rb"^(Return-Path|Delivered-To|X-Original-To|Received):")


def check_stored(user, token, msg, what):
	"""The message is in the user's Maildir only, once, and is the message
	sent byte for byte after the trace headers the MTA and LDA put on
	top."""
	found = find_token(token)
	if list(found) != [user["name"]] or len(found[user["name"]]) != 1:
		fail("%s: message %s stored in %r, wanted once in %s's Maildir"
		    % (what, token, found, user["name"]))
	with open(found[user["name"]][0], "rb") as fh:
		data = fh.read()
	sent = msg.replace("\r\n", "\n").encode()
	if not data.endswith(sent):
		fail("%s: stored message differs from the one sent:\n--- sent\n"
		    "%s--- stored\n%s" % (what, sent.decode(), data.decode()))
	for line in data[:len(data) - len(sent)].split(b"\n")[:-1]:
		if not ADDED.match(line) and not line[:1] in (b" ", b"\t"):
			fail("%s: unexpected line added on top: %r" % (what, line))
	return data


def stored(token):
	return find_token(token)


def postfix_log():
	with open(PFLOG, errors="replace") as fh:
		return fh.read()


def log_status(qid):
	"""[(relay, status, dsn)] of the delivery attempts logged for qid."""
	out = []
	for m in re.finditer(r" %s: to=<[^>]*>,(?: orig_to=<[^>]*>,)? "
	    r"relay=([^,]+),.*? dsn=([0-9.]+), status=(\w+)" % qid,
	    postfix_log()):
		out.append((m.group(1), m.group(3), m.group(2)))
	return out


def wait_log_status(qid, what, timeout=15):
	return wait_until(lambda: log_status(qid), timeout,
	    "%s: Postfix log line with the status of %s" % (what, qid), 0.01)


def queue():
	"""postqueue -j: one dict per queued message."""
	out = run(["postqueue", "-j"])
	return [json.loads(l) for l in out.splitlines() if l.strip()]


def queue_empty(what):
	q = queue()
	if q:
		fail("%s: the Postfix queue is not empty: %r" % (what, q))
	out = run(["postqueue", "-p"]).strip()
	if out != "Mail queue is empty":
		fail("%s: postqueue -p: %s" % (what, out))
