#!/usr/bin/env python3
"""
client.py: an independent mailpush client for protocol version 2, written
from mailpush-protocol(7) alone: the Python standard library, and libsodium
through ctypes for XChaCha20-Poly1305 (which Python lacks).  It shows that
the page is enough to implement the protocol.

    python3 test/interop/client.py --server HOST:PORT --user alice \
        --token-file F [--device-file F] [--context TEXT] [--mailbox NAME]...
        [--timeout SECONDS] [--skew SECONDS] [--keepalive] [--replay]
        [--probe SECONDS] [--unregister] [-v]

Registers (with the cookie round trip and a padded REGISTER), then runs
the checks asked for, waits for one PUSH, opens and checks it, acknowledges
it, prints its fields on one line and exits 0:

    --skew S       start with the clock S seconds wrong; the client must
                   correct itself from the REFUSED STALE
    --keepalive    a KEEPALIVE from the registered socket gets no answer;
                   one from another port gets an 8-byte KICK and does not
                   move the registration (the push still comes)
    --replay       the REGISTER sent again byte for byte gets a verified
                   REFUSED REPLAY on the registered socket, and only a
                   28-byte COOKIE from another port; the PUSH_ACK sent
                   again gets no answer; with --unregister, the REGISTER
                   sent again after the UNREGISTER gets REFUSED REPLAY
    --probe S      a PROBE with delay S is echoed by a verified PROBE_ECHO
                   no sooner than S seconds later and no later than S + 3
    --unregister   after the push: UNREGISTER, answered by REGISTERED with
                   reg_id 0 and lifetime 0

Exit 0: done; 1: timeout or a check failed; 2: usage; 3: the server
refused the registration.

    python3 test/interop/client.py --selftest [man/mailpush-protocol.7]

checks this implementation against the examples of the page (the hex
dumps in its EXAMPLES section, read from the page itself).
"""

import argparse
import os
import re
import select
import socket
import struct
import sys
import time

from wire import *  # noqa: F401,F403 (the protocol, wire.py)

# how long the checks listen for answers (or for their absence); loopback
# answers take well under a millisecond, under valgrind a few
WINDOW = 0.5

verbose = False


def log(msg):
    if verbose:
        print("client.py: " + msg, file=sys.stderr, flush=True)


class CheckFailed(Exception):
    pass


# ---- the client --------------------------------------------------------------

class Refused(Exception):
    def __init__(self, m):
        Exception.__init__(self, "%s (limit %d)" %
                           (REASONS[m["reason"]], m["limit"]))
        self.m = m


class Client:
    def __init__(self, server, user, token, device, context, mailboxes,
                 skew=0.0):
        self.addr = server
        self.user, self.token, self.device = user, token, device
        self.pkey = push_key(token)
        self.context, self.mailboxes = context, mailboxes
        self.offset = int(skew * 1000)  # ms added to the local clock
        self.last_ts = 0
        self.cookie = bytes(16)
        self.sock = self.socket()
        self.reg_id = None
        self.epoch = None
        self.prev_epoch = None
        self.last_seq = None
        self.last_total = None
        self.pushes = []        # pushes reported, in order
        self.acks = 0
        self.kicks = []
        self.sent = {}          # last datagram sent per request type

    def socket(self):
        s = socket.socket(self.addr[0], socket.SOCK_DGRAM)
        s.connect(self.addr[4])
        return s

    def timestamp(self):
        self.last_ts = max(int(time.time() * 1000) + self.offset,
                           self.last_ts + 1)
        return self.last_ts

    def request(self, typ, pad=False, seq=0, epoch=0, ts=None):
        d = encode_request(
            typ, self.token, user=self.user, device=self.device,
            timestamp=self.timestamp() if ts is None else ts,
            cookie=self.cookie, context=self.context,
            mailboxes=self.mailboxes if typ == REGISTER else (),
            seq=seq, epoch=epoch,
            pad_to=min_padded(len(self.context)) if pad else 0)
        return d

    def send(self, d, sock=None):
        (sock or self.sock).send(d)
        log("sent %s, %d bytes" % (NAMES[d[3]], len(d)))

    # Every datagram goes through here, whatever is being waited for:
    # pushes are handled (and acknowledged) at any time, then returned
    # like any other datagram.
    def receive(self, deadline, sock=None):
        sock = sock or self.sock
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                return None
            d = sock.recv(65536)
            try:
                m = decode(d)
            except Malformed as e:
                log("dropped %d bytes: %s" % (len(d), e))
                continue
            if m["type"] == PUSH and sock is self.sock:
                self.on_push(m)     # and tell the caller it came
                return m
            if m["type"] == KICK:
                if m["reg_id"] == self.reg_id:
                    self.kicks.append(m)
                else:
                    log("dropped KICK for another reg_id")
            return m

    def transact(self, typ, timeout, pad=False, seq=0, epoch=0):
        """Send an authenticated request until it is answered; returns the
        verified REGISTERED or REFUSED (raises Refused for refusals the
        client cannot correct)."""
        deadline = time.monotonic() + timeout
        sent_ts = set()
        cookies = 0
        corrected = False
        wait = 1.0
        d = self.request(typ, pad, seq, epoch)
        while True:
            sent_ts.add(struct.unpack_from(">Q", d, 24)[0])
            self.sent[typ] = d
            self.send(d)
            retry = min(deadline, time.monotonic() + wait)
            again = False
            while not again:
                m = self.receive(retry)
                if m is None:
                    if time.monotonic() >= deadline:
                        raise TimeoutError("no answer to %s" % NAMES[typ])
                    wait = min(wait * 2, 30.0)
                    again = True
                    d = self.request(typ, pad, seq, epoch)
                    break
                if m["type"] not in (COOKIE, REGISTERED, REFUSED) or \
                        m["timestamp"] not in sent_ts:
                    if m["type"] not in (KICK, PUSH):
                        log("dropped %s: not an answer" % NAMES[m["type"]])
                    continue
                if m["type"] == COOKIE:
                    cookies += 1
                    if cookies > 3:
                        raise TimeoutError("%s: a COOKIE every time" %
                                           NAMES[typ])
                    self.cookie = m["cookie"]
                    log("cookie %s" % m["cookie"].hex())
                    d = self.request(typ, pad, seq, epoch)
                    again = True
                    continue
                if not mac_ok(self.token, m["raw"]):
                    if m["type"] == REFUSED and m["reason"] == 1:
                        raise Refused(m)    # token probably wrong
                    if m["type"] == REFUSED and m["reason"] == 9 and \
                            m["raw"][-MAC_LEN:] == ZERO_MAC:
                        raise Refused(m)    # user name refused
                    log("dropped %s: MAC does not verify" %
                        NAMES[m["type"]])
                    continue
                if m["type"] == REGISTERED:
                    return m
                reason = REASONS[m["reason"]]
                if reason in ("STALE", "REPLAY") and not corrected:
                    corrected = True
                    if reason == "STALE":
                        # offset = value - local time at sending
                        self.offset = m["value"] - (m["timestamp"] -
                                                    self.offset)
                        self.last_ts = 0
                        log("clock corrected by %+d ms" % self.offset)
                    else:
                        self.last_ts = max(self.last_ts, m["value"])
                        log("replay: continuing above %d" % m["value"])
                    d = self.request(typ, pad, seq, epoch)
                    again = True
                    continue
                raise Refused(m)

    def register(self, timeout):
        m = self.transact(REGISTER, timeout, pad=True)
        self.reg_id = m["reg_id"]
        if self.epoch is not None and m["epoch"] != self.epoch:
            self.prev_epoch = self.epoch
        self.epoch = m["epoch"]
        self.lifetime = m["lifetime"]
        self.ka = (m["keepalive_min"], m["keepalive_max"])
        log("registered reg_id=%08x lifetime=%d seq=%d keepalive=%d-%d "
            "epoch=%016x" % (self.reg_id, m["lifetime"], m["seq"],
                             m["keepalive_min"], m["keepalive_max"],
                             m["epoch"]))
        if self.reg_id == 0 or self.lifetime == 0:
            raise CheckFailed("REGISTERED with reg_id or lifetime 0")
        if not 0 < self.ka[0] <= self.ka[1]:
            raise CheckFailed("keep-alive bounds %d-%d" % self.ka)
        return m

    def on_push(self, m):
        p = open_push(self.pkey, m["raw"])
        if p is None:
            log("dropped PUSH: does not open under the push key")
            return
        if p["reg_id"] != self.reg_id or p["context"] != self.context:
            log("dropped PUSH: another registration or context")
            return
        d = self.request(PUSH_ACK, seq=p["seq"], epoch=p["epoch"])
        self.send(d)
        self.last_ack = d
        self.acks += 1
        if p["epoch"] == self.prev_epoch and p["epoch"] != self.epoch:
            log("late PUSH of the previous epoch, acknowledged")
            return
        if p["epoch"] != self.epoch or self.last_seq is None:
            if self.epoch is not None and p["epoch"] != self.epoch:
                self.prev_epoch = self.epoch
            self.epoch = p["epoch"]
            new = p["count"]
        else:
            if p["seq"] <= self.last_seq or p["total"] == self.last_total:
                log("PUSH seq %d again, acknowledged" % p["seq"])
                return
            new = (p["total"] - self.last_total) % (1 << 32)
            if new > p["count"]:
                new = p["count"]
        self.last_seq, self.last_total = p["seq"], p["total"]
        p["new"] = new
        self.pushes.append(p)

    def wait_push(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.pushes:
            if self.receive(deadline) is None and \
                    time.monotonic() >= deadline:
                return None
        return self.pushes[0]


# ---- checks asked for on the command line -------------------------------

def silence(c, sock, seconds):
    """Every datagram on sock within seconds (pushes on the main socket
    are handled as usual and not counted)."""
    got = []
    deadline = time.monotonic() + seconds
    while True:
        m = c.receive(deadline, sock)
        if m is None:
            return got
        if m["type"] != PUSH or sock is not c.sock:
            got.append(m)


def check_keepalive(c):
    c.send(encode_keepalive(c.reg_id))
    got = [m for m in silence(c, c.sock, WINDOW) if m["type"] != KICK] + \
        c.kicks
    if got:
        raise CheckFailed("KEEPALIVE from the registered socket answered "
                          "with %s" % NAMES[got[0]["type"]])
    other = c.socket()
    try:
        ka = encode_keepalive(c.reg_id)
        c.send(ka, other)
        got = silence(c, other, WINDOW)
    finally:
        other.close()
    if len(got) != 1 or got[0]["type"] != KICK or \
            len(got[0]["raw"]) > len(ka):
        raise CheckFailed("KEEPALIVE from another port: %s, not one KICK" %
                          ([NAMES[m["type"]] for m in got] or "nothing"))
    log("KEEPALIVE: no answer on the registered socket, a KICK on another")


def check_replay(c):
    d = c.sent[REGISTER]
    c.send(d)
    got = silence(c, c.sock, WINDOW)
    if len(got) != 1 or got[0]["type"] != REFUSED or \
            REASONS[got[0]["reason"]] != "REPLAY" or \
            not mac_ok(c.token, got[0]["raw"]):
        raise CheckFailed("replayed REGISTER: %s, not one verified REFUSED "
                          "REPLAY" % [NAMES[m["type"]] for m in got])
    if got[0]["value"] < struct.unpack_from(">Q", d, 24)[0]:
        raise CheckFailed("REFUSED REPLAY value %d below the REGISTER's "
                          "timestamp" % got[0]["value"])
    other = c.socket()
    try:
        c.send(d, other)
        got = silence(c, other, WINDOW)
    finally:
        other.close()
    if len(got) != 1 or got[0]["type"] != COOKIE:
        raise CheckFailed("replayed REGISTER from another port: %s, not "
                          "one COOKIE" % [NAMES[m["type"]] for m in got])
    log("replay: REFUSED REPLAY on the registered socket, COOKIE elsewhere")


def check_replay_ack(c):
    """A PUSH_ACK sent again is dropped: no answer (the server's counters
    show whether it had an effect)."""
    c.send(c.last_ack)
    got = silence(c, c.sock, WINDOW)
    if got:
        raise CheckFailed("replayed PUSH_ACK answered with %s" %
                          NAMES[got[0]["type"]])
    log("replay: PUSH_ACK again, no answer")


def check_replay_after_unregister(c):
    """The REGISTER replayed after UNREGISTER, with its cookie still
    valid, meets the device's tombstone."""
    d = c.sent[REGISTER]
    c.send(d)
    got = silence(c, c.sock, WINDOW)
    if len(got) != 1 or got[0]["type"] != REFUSED or \
            REASONS[got[0]["reason"]] != "REPLAY" or \
            not mac_ok(c.token, got[0]["raw"]):
        raise CheckFailed("REGISTER replayed after UNREGISTER: %s, not one "
                          "verified REFUSED REPLAY" %
                          [NAMES[m["type"]] if m["type"] != REFUSED else
                           "REFUSED " + REASONS[m["reason"]] for m in got])
    log("replay: REGISTER after UNREGISTER refused REPLAY")


def check_probe(c, delay):
    d = c.request(PROBE, pad=True, seq=delay)
    ts = struct.unpack_from(">Q", d, 24)[0]
    t0 = time.monotonic()
    c.send(d)
    deadline = t0 + delay + 3
    while True:
        m = c.receive(deadline)
        if m is None:
            raise CheckFailed("no PROBE_ECHO within %d s" % (delay + 3))
        if m["type"] == COOKIE and m["timestamp"] == ts:
            raise CheckFailed("PROBE from the registered socket needed a "
                              "cookie")
        if m["type"] == PROBE_ECHO and m["timestamp"] == ts:
            if not mac_ok(c.token, m["raw"]):
                raise CheckFailed("PROBE_ECHO MAC does not verify")
            took = time.monotonic() - t0
            if took < delay - 0.05:
                raise CheckFailed("PROBE_ECHO after %.2f s, asked %d" %
                                  (took, delay))
            log("PROBE_ECHO after %.2f s" % took)
            return


def read_token(path):
    with open(path, "rb") as fp:
        s = fp.read()
    m = re.fullmatch(rb"([0-9a-fA-F]{64})(\r?\n)?", s)
    if not m:
        raise ValueError("%s: not 64 hexadecimal digits" % path)
    return bytes.fromhex(m.group(1).decode())


def load_device(path):
    """The device id kept in path (32 hex digits), made on first use."""
    if path is None:
        return os.urandom(16)
    try:
        with open(path) as fp:
            return bytes.fromhex(fp.read().strip())
    except FileNotFoundError:
        dev = os.urandom(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fp:
            fp.write(dev.hex() + "\n")
        return dev


def parse_server(s):
    m = re.fullmatch(r"\[([^]]+)\](?::(\d+))?|([^:]+)(?::(\d+))?", s)
    if not m:
        raise ValueError("bad server %s" % s)
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4) or 4650)
    return socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]


def run(a):
    global verbose
    verbose = a.verbose
    token = read_token(a.token_file)
    c = Client(parse_server(a.server), a.user.encode(), token,
               load_device(a.device_file), a.context.encode(),
               [m.encode() for m in a.mailbox], a.skew)
    try:
        c.register(a.timeout)
    except Refused as e:
        print("client.py: registration refused: %s" % e, file=sys.stderr)
        return 3
    if a.skew and c.offset == int(a.skew * 1000):
        raise CheckFailed("registered with a clock %+g s wrong without "
                          "a correction" % a.skew)
    if a.replay:
        check_replay(c)
    if a.keepalive:
        check_keepalive(c)
    if a.probe:
        check_probe(c, a.probe)
    p = c.wait_push(a.timeout)
    if p is None:
        print("client.py: no push within %d s" % a.timeout, file=sys.stderr)
        return 1
    print("push user=%s reg_id=%08x epoch=%016x seq=%d count=%d new=%d "
          "total=%d flags=%d context=%s" %
          (a.user, p["reg_id"], p["epoch"], p["seq"], p["count"], p["new"],
           p["total"], p["flags"], p["context"].decode(errors="replace")),
          flush=True)
    # acknowledgements may be lost too: answer retransmissions for a moment
    silence(c, c.sock, 0.3)
    if a.replay:
        check_replay_ack(c)
    if a.unregister:
        m = c.transact(UNREGISTER, 10)
        if m["reg_id"] != 0 or m["lifetime"] != 0:
            raise CheckFailed("UNREGISTER answered with reg_id %08x "
                              "lifetime %d" % (m["reg_id"], m["lifetime"]))
        log("unregistered")
        if a.replay:
            check_replay_after_unregister(c)
    return 0


# ---- self-test against the page's EXAMPLES -----------------------------------

def page_examples(path):
    """{n: bytes} for each numbered example's hex dump, and the key,
    token, device and push key of the preamble."""
    with open(path) as fp:
        text = fp.read()
    ex = text[text.index(".Sh EXAMPLES"):]
    ex = ex[:ex.index("\n.Sh ", 1)]
    blocks = re.findall(r"^\.Bd -literal[^\n]*\n(.*?)^\.Ed$", ex, re.M | re.S)
    named = {}
    for b in blocks[:2]:
        name = None
        for line in b.splitlines():
            m = re.match(r"^([a-z][a-z ]*?)\s+([0-9a-f]+)$", line)
            if m:
                name = m.group(1)
                named[name] = bytes.fromhex(m.group(2))
            elif re.match(r"^\s+[0-9a-f]+$", line) and name:
                named[name] += bytes.fromhex(line.strip())
    dumps = {}
    for m in re.finditer(r"^\.Sy (\d+) \.\n(.*?)^\.Bd -literal[^\n]*\n(.*?)"
                         r"^\.Ed$", ex, re.M | re.S):
        data = b""
        for line in m.group(3).splitlines():
            h = re.match(r"^[0-9a-f]{4}: ((?:[0-9a-f]{2} ?)+)$", line)
            if not h:
                raise Malformed("example %s: line %r" % (m.group(1), line))
            data += bytes.fromhex(h.group(1).replace(" ", ""))
        dumps[int(m.group(1))] = data
    return named, dumps


def selftest(path):
    named, ex = page_examples(path)
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append("%s: got %r, want %r" % (what, got, want))

    key = named["key"]
    expect("key", key, bytes(range(32)))
    token = derive_token(key, b"alice")
    expect("token", token, named["token"])
    device = named["device"]
    expect("device", device, bytes(range(0xd0, 0xe0)))
    expect("push key", push_key(token), named["push key"])
    pkey = push_key(token)
    ts = 1700000000000
    common = dict(user=b"alice", device=device, context=b"ctx")

    expect("1 REGISTER", encode_request(
        REGISTER, token, timestamp=ts, pad_to=min_padded(3), **common), ex[1])
    m = decode(ex[2])
    expect("2 COOKIE", (m["type"], m["timestamp"], m["cookie"]),
           (COOKIE, ts, bytes(range(0xa0, 0xb0))))
    expect("3 REGISTER", encode_request(
        REGISTER, token, timestamp=ts + 1, cookie=m["cookie"],
        mailboxes=[b"INBOX"], pad_to=min_padded(3), **common), ex[3])
    m = decode(ex[4])
    expect("4 REGISTERED", {k: m[k] for k in (
        "type", "timestamp", "epoch", "reg_id", "lifetime", "seq",
        "keepalive_min", "keepalive_max")},
        dict(type=REGISTERED, timestamp=ts + 1, epoch=0x0123456789abcdef,
             reg_id=0x2a, lifetime=600, seq=0, keepalive_min=15,
             keepalive_max=300))
    expect("4 REGISTERED MAC", mac_ok(token, ex[4]), True)
    bad = bytearray(ex[4])
    bad[20] ^= 1
    expect("4 REGISTERED altered MAC", mac_ok(token, bytes(bad)), False)
    m = decode(ex[5])
    p = open_push(pkey, ex[5])
    expect("5 PUSH opens", p is not None, True)
    if p is not None:
        expect("5 PUSH", p, dict(
            epoch=0x0123456789abcdef, reg_id=0x2a, seq=1, count=2, total=2,
            server_time=1700000060, flags=0, context_len=3, context=b"ctx"))
    expect("5 PUSH sealed", seal_push(
        token, bytes(range(0x40, 0x58)), epoch=0x0123456789abcdef,
        reg_id=0x2a, seq=1, count=2, total=2, server_time=1700000060,
        flags=0, context=b"ctx"), ex[5])
    expect("5 PUSH under a wrong token",
           open_push(push_key(derive_token(key, b"bob")), ex[5]), None)
    expect("5 PUSH under the token itself", open_push(token, ex[5]), None)
    expect("6 PUSH_ACK", encode_request(
        PUSH_ACK, token, user=b"alice", device=device,
        timestamp=1700000060500, seq=1, epoch=0x0123456789abcdef), ex[6])
    expect("7 KEEPALIVE", encode_keepalive(0x2a), ex[7])
    expect("8 PROBE", encode_request(
        PROBE, token, timestamp=1700000070000, seq=30, pad_to=min_padded(3),
        **common), ex[8])
    m = decode(ex[9])
    expect("9 PROBE_ECHO", (m["type"], m["timestamp"], mac_ok(token, ex[9])),
           (PROBE_ECHO, 1700000070000, True))
    m = decode(ex[10])
    expect("10 KICK", (m["type"], m["reg_id"]), (KICK, 0x2a))
    m = decode(ex[11])
    expect("11 REFUSED", (m["type"], m["timestamp"], REASONS[m["reason"]],
                          m["limit"], m["value"], mac_ok(token, ex[11])),
           (REFUSED, 1700000300000, "TOO_MANY", 8, 0, True))
    # the receivers' rules
    for what, d in (("version 1", ex[4][:2] + b"\x01" + ex[4][3:]),
                    ("one byte short", ex[4][:-1]),
                    ("one byte long", ex[4] + b"\0"),
                    ("a request type", ex[7]),
                    ("REFUSED reason 11", ex[11][:12] + b"\x0b" + ex[11][13:]),
                    ("PUSH of 79 bytes", ex[5][:79])):
        try:
            decode(d)
            failures.append("decoded a datagram with %s" % what)
        except Malformed:
            pass
    for f in failures:
        print("selftest: " + f, file=sys.stderr)
    if not failures:
        print("selftest: %d examples of %s match" % (len(ex), path))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description="mailpush v2 test client")
    ap.add_argument("--selftest", nargs="?", const="man/mailpush-protocol.7")
    ap.add_argument("--server")
    ap.add_argument("--user")
    ap.add_argument("--token-file")
    ap.add_argument("--device-file")
    ap.add_argument("--context", default="client.py")
    ap.add_argument("--mailbox", action="append", default=[])
    ap.add_argument("--timeout", type=int, default=10)
    ap.add_argument("--skew", type=float, default=0.0)
    ap.add_argument("--keepalive", action="store_true")
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--probe", type=int, default=0)
    ap.add_argument("--unregister", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.selftest:
        return selftest(a.selftest)
    if not (a.server and a.user and a.token_file):
        ap.error("--server, --user and --token-file are needed")
    try:
        return run(a)
    except (CheckFailed, TimeoutError, Malformed, ValueError, OSError,
            Refused) as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
