#!/usr/bin/env python3
# test/e2e/e2e.py: the checks of the end-to-end test, run by test/e2e/run.sh
# after it has configured and started Postfix and Dovecot.  This script owns
# mailpushd, the mailpush-listen clients, the IMAP IDLE connections, the SMTP
# client and the /dev/log catcher.  Python standard library only.
#
# Everything it needs comes from the environment (see run.sh) and
# $E2E_T/users.json.  Every wait is bounded; the first failed assertion
# prints "e2e: FAIL: ..." and exits 1.

import sys

from e2elib import *	# noqa: F403 (the helpers and the environment)


# ---- the test ---------------------------------------------------------------

class E2E:
	def __init__(self):
		self.d = Daemon()
		self.lis = {u["name"]: Listener(u["listen"]) for u in USERS}
		self.expect = {u["name"]: 0 for u in USERS}	# pushed messages
		self.idle = {}
		self.fetch = {}
		self.rows = []			# (pipeline, user, push ms, idle ms)
		self.devlog = DevLog()
		self.reregistered = {}		# user -> index of its first push
		self.n = 0

	def pump(self):
		for l in self.lis.values():
			l.poll()

	def counts(self):
		self.pump()
		return {k: len(l.pushes) for k, l in self.lis.items()}

	def wait_push(self, user, before, timeout, what):
		"""Wait for a push to user's listener; any other listener's
		push meanwhile is a failure at once."""
		def pred():
			c = self.counts()
			for k in c:
				if k != user["name"] and c[k] != before[k]:
					fail("%s: listener %s got a push: %s" % (what,
					    self.lis[k].user, self.lis[k].pushes[-1]["line"]))
			return c[user["name"]] > before[user["name"]]
		wait_until(pred, timeout, what + ": push to " +
		    self.lis[user["name"]].user)

	def quiet(self, before, secs, what):
		"""No listener gets a push for secs seconds."""
		end = time.monotonic() + secs
		while time.monotonic() < end:
			c = self.counts()
			if c != before:
				fail("%s: unexpected push(es): %r" % (what, {k:
				    self.lis[k].pushes[before[k]:] for k in c
				    if c[k] != before[k]}))
			time.sleep(0.01)

	def check_counts(self, what):
		self.pump()
		for u in USERS:
			l = self.lis[u["name"]]
			got = l.new_total()
			if got != self.expect[u["name"]]:
				fail("%s: listener %s: pushes report %d new messages "
				    "(%s), %d were delivered for it" % (what, l.user,
				    got, "; ".join(p["line"] for p in l.pushes),
				    self.expect[u["name"]]))
			# totals grow with each push of one registration; a
			# registration made anew starts again
			cut = self.reregistered.get(u["name"], len(l.pushes))
			for seg in (l.pushes[:cut], l.pushes[cut:]):
				tot = [p["total"] for p in seg]
				if tot != sorted(tot) or len(set(tot)) != len(tot):
					fail("%s: %s: totals not increasing: %r" % (what,
					    l.user, [p["total"] for p in l.pushes]))
		ok("%s: each listener's pushes add up to its own user's "
		    "messages (%s)" % (what, ", ".join("%s %d" % (k, v)
		    for k, v in self.expect.items())))

	def open_imap(self, users):
		for u in users:
			if u["name"] in self.idle:
				self.idle[u["name"]].close()
				self.fetch[u["name"]].close()
			self.idle[u["name"]] = Idle(u["login"])
			self.fetch[u["name"]] = Fetcher(u["login"])

	def close_imap(self):
		for i in self.idle.values():
			i.close()
		for f in self.fetch.values():
			f.close()
		self.idle = {}
		self.fetch = {}

	def wait_registered(self, timeout, what):
		"""Until the daemon holds exactly one registration per listener."""
		want = sorted(l.user for l in self.lis.values())

		def reg():
			self.pump()
			users = sorted(r["user"] for r in ctlj("list"))
			return users if users == want else None
		return wait_until(reg, timeout, what, 0.1)

	# -- one message, timed against IDLE ------------------------------
	def timed(self, user, rcpt, pipeline, relay):
		self.n += 1
		token, msg = make_message(user, rcpt, self.n, pipeline)
		l = self.lis[user["name"]]
		idle = self.idle[user["name"]]
		before = self.counts()
		exists0 = idle.exists
		t_reply, qid = smtp_send(rcpt, msg)
		what = "%s message %d to %s" % (pipeline, self.n, rcpt)
		self.wait_push(user, before, 10, what)
		# At this moment the message must be readable over IMAP.
		t_f = now()
		got = self.fetch[user["name"]].fetch(token)
		t_f2 = now()
		if got is None:
			fail("%s: push arrived but IMAP has no such message yet"
			    % what)
		sent = msg.encode()
		if not got.endswith(sent):
			fail("%s: IMAP returned other bytes than were sent:\n%r"
			    % (what, got))
		p = l.pushes[-1]
		self.expect[user["name"]] += 1
		after = self.counts()
		for k in after:
			if k != user["name"] and after[k] != before[k]:
				fail("%s: listener %s got a push too: %s" % (what, k,
				    self.lis[k].pushes[-1]["line"]))
		if p["new"] != 1 or after[user["name"]] != before[
		    user["name"]] + 1:
			fail("%s: wanted one push with new=1, got %r" % (what,
			    l.pushes[before[user["name"]]:]))
		wait_until(lambda: idle.exists > exists0 or idle.closed, 10,
		    what + ": IMAP IDLE * EXISTS")
		if idle.closed:
			fail("%s: the IDLE connection closed" % what)
		t_idle = idle.when[exists0 + 1]
		check_stored(user, token, msg, what)
		st = wait_log_status(qid, what)
		if (st[0][0] != relay and not st[0][0].endswith("[%s]" % relay))\
		    or st[0][1] != "sent":
			fail("%s: Postfix logged %r, wanted relay=%s status=sent"
			    % (what, st, relay))
		push_ms = (p["t"] - t_reply) * 1000
		if push_ms < 0:		# the listener's time is in whole ms
			push_ms = (p["seen"] - t_reply) * 1000
		idle_ms = (t_idle - t_reply) * 1000
		self.rows.append((pipeline, user["name"], push_ms, idle_ms))
		say("%-7s %-3d %-26s push %7.1f ms   IDLE %7.1f ms   %5.0fx   "
		    "IMAP fetch at push: ok (%.1f ms)" % (pipeline, self.n, rcpt,
		    push_ms, idle_ms, idle_ms / max(push_ms, 1.0),
		    (t_f2 - t_f) * 1000))

	def summary(self, rows, label):
		push = statistics.median(r[2] for r in rows)
		idle = statistics.median(r[3] for r in rows)
		ratio = statistics.median(r[3] / max(r[2], 1.0) for r in rows)
		say("%s: %d messages: median push %.1f ms, median IDLE %.1f ms, "
		    "median ratio %.0fx (ratio of medians %.0fx)" % (label,
		    len(rows), push, idle, ratio, idle / max(push, 1.0)))
		return ratio

	# -- phases ---------------------------------------------------------
	def phase_start(self):
		uid = self.d.start()
		want = pwd.getpwnam("mailpush").pw_uid
		if uid != want:
			fail("mailpushd runs as uid %d, not as mailpush (%d)"
			    % (uid, want))
		ok("mailpushd started as root, now running as mailpush (uid %d)"
		    % uid)
		if CLUSTER:
			wait_until(lambda: ctlj("status")["cluster"][
			    "subscribe_link"] == "ready", 10,
			    "the notifier subscribed to Redis", 0.05)
			ok("notifier subscribed to the Redis channel")
		for l in self.lis.values():
			l.start()
		users = self.wait_registered(15,
		    "all listeners registered")
		ok("%d listeners registered: %s" % (len(users), " ".join(users)))

	def phase_timed(self):
		self.open_imap(USERS)
		ok("IMAP IDLE and fetch connections open for %d users"
		    % len(USERS))
		for i in range(PER_USER):
			for u in USERS:
				rcpt = u["addrs"][i % len(u["addrs"])]
				self.timed(u, rcpt, u["kind"], u["relay"])
		self.quiet(self.counts(), 0.7, "after the timed messages")
		self.check_counts("timed deliveries")
		ok("every message stored once, in the right Maildir, byte for "
		    "byte; readable over IMAP when its push arrived")

	def phase_cluster(self):
		"""The timed deliveries through a relay and Redis; virtual users
		through Dovecot LMTP and its driver when the first pass switched
		Postfix to it (E2E_LMTP), else through pipe(8)."""
		self.open_imap(USERS)
		for i in range(PER_USER):
			for u in USERS:
				kind, relay = u["kind"], u["relay"]
				if LMTP and kind == "pipe":
					kind, relay = "lmtp", "private/dovecot-lmtp"
				self.timed(u, u["addrs"][i % len(u["addrs"])], kind,
				    relay)
		self.quiet(self.counts(), 0.7, "after the messages through Redis")
		self.check_counts("deliveries through Redis")

	def phase_daemon_down(self, kill):
		"""mailpushd stopped (its socket removed: ENOENT) or killed (a
		socket file nobody reads: ECONNREFUSED): mail is delivered as
		ever, the hook logs one line per message, nobody gets a push."""
		self.ids_before_stop = self.reg_ids()
		if kill:
			self.d.kill()
			if not os.path.exists(EVSOCK):
				fail("event socket %s gone after SIGKILL" % EVSOCK)
			label, err = "mailpushd killed", "Connection refused"
		else:
			self.d.stop()
			if os.path.exists(EVSOCK):
				fail("event socket %s still there after mailpushd "
				    "stopped" % EVSOCK)
			label, err = "mailpushd stopped", "No such file or directory"
		ok("%s (event socket %s)" % (label, "left behind" if kill else
		    "removed"))
		nlog = len(self.devlog.hook_lines())
		before = self.counts()
		sent = []
		for u in USERS:
			self.n += 1
			rcpt = u["addrs"][1 % len(u["addrs"])]
			token, msg = make_message(u, rcpt, self.n, "down")
			t0 = now()
			_, qid = smtp_send(rcpt, msg)
			sent.append((u, rcpt, token, msg, qid, t0))
		for u, rcpt, token, msg, qid, t0 in sent:
			what = "%s: %s" % (label, rcpt)
			t = wait_until(lambda: stored(token) and now(), 15,
			    what + ": delivered to the Maildir")
			check_stored(u, token, msg, what)
			st = wait_log_status(qid, what)
			if [s[1] for s in st] != ["sent"]:
				fail("%s: Postfix logged %r, wanted one status=sent"
				    % (what, st))
			ok("%s: stored %.0f ms after the send, status=sent, dsn %s"
			    % (what, (t - t0) * 1000, st[0][2]))
		queue_empty(label)
		ok("%s: Postfix queue empty (nothing deferred), nothing bounced"
		    % label)
		if self.devlog.s is not None:
			want = len(USERS)
			wait_until(lambda: len(self.devlog.hook_lines()) >= nlog +
			    want, 5, "%s: one hook log line per message" % label)
			time.sleep(0.2)
			lines = self.devlog.hook_lines()[nlog:]
			if len(lines) != want:
				fail("%s: %d hook log lines for %d messages: %r"
				    % (label, len(lines), want, lines))
			for u in USERS:
				mine = [l for l in lines if " for %s: " % u[
				    "hookuser"] in l]
				if len(mine) != 1 or "cannot notify mailpushd at %s "\
				    "for %s: %s (mail delivered, no push)" % (EVSOCK,
				    u["hookuser"], err) not in mine[0]:
					fail("%s: wanted one hook line for %s saying %r, "
					    "got %r" % (label, u["hookuser"], err, lines))
			say("     syslog: %s" % lines[0])
			ok("%s: the hook logged exactly one line per message (%d), "
			    "each naming its user" % (label, want))
		self.quiet(before, 0.3, label)
		ok("%s: no push" % label)

	def send_expect_push(self, what, users=None, timeout=10):
		for u in users or USERS:
			self.n += 1
			rcpt = u["addrs"][2 % len(u["addrs"])]
			token, msg = make_message(u, rcpt, self.n, "resume")
			before = self.counts()
			t, _ = smtp_send(rcpt, msg)
			self.wait_push(u, before, timeout, "%s: %s" % (what, rcpt))
			got = self.fetch[u["name"]].fetch(token) \
			    if u["name"] in self.fetch else b""
			if got is None:
				fail("%s: %s: push arrived, message not over IMAP"
				    % (what, rcpt))
			self.expect[u["name"]] += 1
			after = self.counts()
			for k in after:
				if k != u["name"] and after[k] != before[k]:
					fail("%s: %s got a push for %s" % (what, k, rcpt))
			check_stored(u, token, msg, what)
			ok("%s: push for %s after %.0f ms" % (what, rcpt,
			    (self.lis[u["name"]].pushes[-1]["seen"] - t) * 1000))

	def reg_ids(self):
		return sorted((r["user"], r["id"]) for r in ctlj("list"))

	def phase_restart_with_state(self):
		# at once, before any listener could have registered anew
		self.d.start()
		ids = self.reg_ids()
		if ids != self.ids_before_stop:
			fail("after the restart the registrations are %r, before the "
			    "stop they were %r" % (ids, self.ids_before_stop))
		ok("mailpushd restarted: the %d registrations were restored from "
		    "%s (same ids)" % (len(ids), STATE_FILE))
		self.send_expect_push("after restart")
		self.check_counts("after restart")

	def phase_restart_without_state(self):
		# The daemon was killed: it left its socket file behind and saved
		# no state since its start; the state file is from the stop
		# before, and removed to have the registrations lost.
		os.unlink(STATE_FILE)
		self.reregistered = self.counts()
		self.d.start()
		if ctlj("list"):
			fail("registrations present after a start without state")
		t = time.monotonic()
		# The listeners learn it at their next refresh (half the
		# lifetime), and register anew.
		users = self.wait_registered(LIFETIME + 20,
		    "listeners registered anew after the state was lost")
		ok("mailpushd restarted (after SIGKILL) without its state file: all %d "
		    "listeners registered anew within %.1f s (lifetime %d s)"
		    % (len(users), time.monotonic() - t, LIFETIME))
		for l in self.lis.values():
			if "re-registering" not in l.stderr():
				fail("listener %s: no re-registration reported:\n%s"
				    % (l.user, l.stderr()))
		self.send_expect_push("after re-registration")
		self.check_counts("after re-registration")

	def deferred(self, u, what, setup, undo):
		before = self.counts()
		ev0 = ctlj("stats")["events_in"]
		self.n += 1
		rcpt = u["addrs"][0]
		token, msg = make_message(u, rcpt, self.n, "deferred")
		setup()
		try:
			_, qid = smtp_send(rcpt, msg)
			st = wait_log_status(qid, what)
			if st[0][1] != "deferred" or not st[0][2].startswith("4."):
				fail("%s: Postfix logged %r, wanted status=deferred "
				    "with a 4.x.x code" % (what, st))
			q = [m for m in queue() if m["queue_id"] == qid]
			if not q or q[0]["queue_name"] != "deferred":
				fail("%s: %s not in the deferred queue: %r"
				    % (what, qid, queue()))
			reason = q[0]["recipients"][0].get("delay_reason", "")
			if len(reason) > 110:
				reason = reason[:110] + "..."
			pq = run(["postqueue", "-p"])
			if qid not in pq:
				fail("%s: postqueue -p does not show %s" % (what, qid))
			if stored(token):
				fail("%s: message stored although deferred" % what)
			self.quiet(before, 0.5, what)
			if ctlj("stats")["events_in"] != ev0:
				fail("%s: mailpushd got an event" % what)
			ok("%s: queued as %s, deferred (dsn %s: %s); not stored; "
			    "no event, no push" % (what, qid, st[0][2], reason))
		finally:
			undo()
		return u, token, msg, qid

	def phase_deferred(self):
		vu = [u for u in USERS if u["kind"] == "pipe"][0]
		su = [u for u in USERS if u["kind"] == "local"][0]
		self.close_imap()
		out = []

		def dovecot_down():
			run(["doveadm", "stop"])
			wait_until(lambda: not dovecot_running(), 10,
			    "Dovecot stopped", 0.05)

		def dovecot_up():
			start_dovecot()
			wait_until(dovecot_running, 10, "Dovecot up again", 0.05)
		out.append(self.deferred(vu, "pipe(8), Dovecot not running "
		    "(dovecot-lda -d exits 75)", dovecot_down, dovecot_up))
		md = su["maildir"]
		mode = os.stat(md).st_mode & 0o7777

		def ro():
			os.chmod(md, 0)

		def rw():
			os.chmod(md, mode)
		out.append(self.deferred(su, "local(8), Maildir not accessible "
		    "(dovecot-lda exits 75)", ro, rw))
		before = self.counts()
		run(["postqueue", "-f"])
		for u, token, msg, qid in out:
			wait_until(lambda: stored(token), 15, "%s delivered after "
			    "postqueue -f" % qid)
			check_stored(u, token, msg, "after the retry")
			self.expect[u["name"]] += 1
		for u, token, msg, qid in out:
			wait_until(lambda: self.counts()[u["name"]] > before[
			    u["name"]], 10, "push after the retry of %s" % qid)
		wait_until(lambda: not queue(), 10, "queue empty after the retry")
		self.quiet(self.counts(), 0.7, "after the retry")
		self.check_counts("deferred mail retried")
		ok("after the fault was fixed, postqueue -f delivered both, "
		    "one push each, queue empty")

	def phase_lmtp(self):
		lu = [u for u in USERS if u["kind"] == "pipe"]
		run(["bash", LMTP])
		ok("Postfix switched to LMTP: conf/postfix-lmtp.cf applied, "
		    "postfix reload")
		self.open_imap(lu)
		for i in range(PER_USER):
			for u in lu:
				self.timed(u, u["addrs"][i % len(u["addrs"])], "lmtp",
				    "private/dovecot-lmtp")
		self.quiet(self.counts(), 0.7, "after the LMTP messages")
		self.check_counts("LMTP deliveries")

	def main(self):
		say("users: " + ", ".join("%s (%s)" % (u["listen"], u["kind"])
		    for u in USERS))
		try:
			self.phase_start()
			if CLUSTER:
				self.phase_cluster()
				# events for names nobody registered (mail Postfix
				# delivered to a local account meanwhile) add up too
				st = ctlj("stats")
				other = st["events_no_registration"]
				if st["cluster_received"] != len(self.rows) + other \
				    or st["cluster_malformed"] or st["cluster_gaps"]:
					fail("notifier: %d events from Redis for %d "
					    "messages and %d for nobody registered, %d "
					    "malformed, %d gaps" % (st["cluster_received"],
					    len(self.rows), other,
					    st["cluster_malformed"], st["cluster_gaps"]))
				ok("through the relay and Redis: %d events received, "
				    "one per message%s" % (st["cluster_received"],
				    " (and %d for nobody registered)" % other if other
				    else ""))
				# the speed target is the first pass's; here push
				# must only beat IDLE
				ratio = self.summary(self.rows, "through Redis")
				if ratio < 1:
					fail("through Redis, push slower than IDLE "
					    "(median ratio %.1fx)" % ratio)
				return
			self.phase_daemon_down(kill=False)
			self.phase_restart_with_state()
			self.phase_daemon_down(kill=True)
			self.phase_restart_without_state()
			self.phase_deferred()
			if LMTP:
				self.phase_lmtp()
			else:
				say("skip LMTP pipeline: no Dovecot plugin built "
				    "or dovecot-lmtpd missing")
			for f in [self.d.log] + [l.err for l in self.lis.values()]:
				with open(f, errors="replace") as fh:
					bad = [x for x in fh if re.search(r"Sanitizer|runtime "
					    r"error:|fatal:", x)]
				if bad:
					fail("%s: %s" % (f, bad[0].strip()))
			with open(os.path.join(T, "dovecot.log"), errors="replace") as fh:
				bad = [x.strip() for x in fh if re.search(
				    r": (Panic|Fatal|Error|Warning): ", x)]
			for x in bad:
				say("dovecot.log: " + x)
			if any(re.search(r": (Panic|Fatal): ", x) for x in bad):
				fail("Dovecot logged a panic or a fatal error")
			lines = self.devlog.hook_lines()
			say("hook log lines in the whole run: %d" % len(lines))
			for pl in ("pipe", "local", "lmtp"):
				rows = [r for r in self.rows if r[0] == pl]
				if rows:
					self.summary(rows, pl)
			ratio = self.summary(self.rows, "all pipelines")
			if ratio < TARGET:
				fail("median ratio %.1fx below the target of %.0fx"
				    % (ratio, TARGET))
			ok("push arrives %.0fx sooner than IMAP IDLE (median; "
			    "target %.0fx)" % (ratio, TARGET))
		finally:
			self.close_imap()
			for l in self.lis.values():
				l.stop()
			try:
				self.d.stop()
			except Fail as e:
				say("FAIL: " + str(e))
			self.devlog.close()


if __name__ == "__main__":
	try:
		E2E().main()
	except Fail as e:
		print("e2e: FAIL: %s" % e, flush=True)
		sys.exit(1)
	except Exception as e:
		import traceback
		traceback.print_exc()
		print("e2e: FAIL: %s: %s" % (type(e).__name__, e), flush=True)
		sys.exit(1)
