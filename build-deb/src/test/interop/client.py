#!/usr/bin/env python3
"""
client.py: an independent mailpush client, written from
mailpush-protocol(7) alone (standard library only), to show that the page is
enough to implement the protocol.

    python3 test/interop/client.py --server 127.0.0.1:4650 --user alice \
        --token-file F [--context TEXT] [--mailbox NAME]... [--timeout 10]
        [--unregister] [-v]

Registers (with the cookie round trip), waits for one PUSH, checks it,
acknowledges it, prints its fields and exits 0.  Exit 1: timeout or error;
2: usage; 3: the server refused the registration.

    python3 test/interop/client.py --selftest [man/mailpush-protocol.7]

checks this implementation against the hex dumps in the page's EXAMPLES.
"""

import argparse
import hashlib
import hmac
import os
import re
import socket
import struct
import sys
import time

MAGIC = 0x4D50
VERSION = 1
REGISTER, REFRESH, UNREGISTER, COOKIE, REGISTERED, REFUSED, PUSH, PUSH_ACK = \
    range(1, 9)
MAX_DGRAM = 1232
MAC_LEN = 32

REASONS = {
    1: "AUTH", 2: "STALE", 3: "TOO_MANY", 4: "CONTEXT_SIZE",
    5: "TABLE_FULL", 6: "ADDRESS_LIMIT", 7: "NOT_ALLOWED", 8: "UNKNOWN",
    9: "BAD_REQUEST",
}

verbose = False


def log(msg):
    if verbose:
        print("client.py: " + msg, file=sys.stderr)


def mac(token, data):
    return hmac.new(token, data, hashlib.sha256).digest()


def mac_ok(token, dgram):
    if len(dgram) < 4 + MAC_LEN:
        return False
    return hmac.compare_digest(mac(token, dgram[:-MAC_LEN]),
                               dgram[-MAC_LEN:])


def derive_token(key, user):
    return mac(key, user)


# Encoders


def encode_request(typ, token, timestamp, nonce, reg_id, cookie, user,
                   context, mailboxes):
    if typ not in (REGISTER, REFRESH, UNREGISTER):
        raise ValueError("not a request type")
    if not 1 <= len(user) <= 255 or b"\0" in user:
        raise ValueError("user name must be 1 to 255 bytes, no NUL")
    if len(context) > 1024:
        raise ValueError("context longer than 1024 bytes")
    if len(mailboxes) > 16:
        raise ValueError("more than 16 mailboxes")
    if len(cookie) != 16:
        raise ValueError("cookie must be 16 bytes")
    body = struct.pack("!HBBQII16sBBH", MAGIC, VERSION, typ, timestamp,
                       nonce, reg_id, cookie, len(user), len(mailboxes),
                       len(context))
    body += user + context
    for m in mailboxes:
        if not 1 <= len(m) <= 255 or b"\0" in m:
            raise ValueError("mailbox name must be 1 to 255 bytes, no NUL")
        body += bytes([len(m)]) + m
    dgram = body + mac(token, body)
    if len(dgram) > MAX_DGRAM:
        raise ValueError("request longer than 1232 bytes")
    return dgram


def encode_ack(token, reg_id, seq):
    body = struct.pack("!HBBII", MAGIC, VERSION, PUSH_ACK, reg_id, seq)
    return body + mac(token, body)


# Decoders: None for anything malformed (the caller drops it)


def header(dgram):
    if len(dgram) < 4 or len(dgram) > MAX_DGRAM:
        return None
    magic, version, typ = struct.unpack("!HBB", dgram[:4])
    if magic != MAGIC or version != VERSION or not 1 <= typ <= 8:
        return None
    return typ


def decode_reply(dgram):
    """COOKIE, REGISTERED, REFUSED or PUSH as a dict, or None."""
    typ = header(dgram)
    if typ == COOKIE and len(dgram) == 24:
        return {"type": COOKIE, "nonce": struct.unpack("!I", dgram[4:8])[0],
                "cookie": dgram[8:24]}
    if typ == REGISTERED and len(dgram) == 52:
        nonce, reg_id, lifetime, seq = struct.unpack("!IIII", dgram[4:20])
        return {"type": REGISTERED, "nonce": nonce, "reg_id": reg_id,
                "lifetime": lifetime, "seq": seq}
    if typ == REFUSED and len(dgram) == 56:
        nonce, reason, limit, server_time = \
            struct.unpack("!IB3xIQ", dgram[4:24])
        if not 1 <= reason <= 9:
            return None
        return {"type": REFUSED, "nonce": nonce, "reason": reason,
                "limit": limit, "server_time": server_time}
    if typ == PUSH and len(dgram) >= 64:
        reg_id, seq, count, total, server_time, ctx_len = \
            struct.unpack("!IIIIQH2x", dgram[4:32])
        if ctx_len > 1024 or len(dgram) != 64 + ctx_len:
            return None
        return {"type": PUSH, "reg_id": reg_id, "seq": seq, "count": count,
                "total": total, "server_time": server_time,
                "context": dgram[32:32 + ctx_len]}
    return None


def decode_request(dgram):
    """For the self-test: a request as a dict, or None."""
    typ = header(dgram)
    if typ not in (REGISTER, REFRESH, UNREGISTER) or len(dgram) < 73:
        return None
    (timestamp, nonce, reg_id, cookie, ulen, nmb,
     clen) = struct.unpack("!QII16sBBH", dgram[4:40])
    end = len(dgram) - MAC_LEN
    off = 40
    if ulen == 0 or clen > 1024 or nmb > 16 or off + ulen + clen > end:
        return None
    user = dgram[off:off + ulen]
    off += ulen
    context = dgram[off:off + clen]
    off += clen
    mailboxes = []
    for _ in range(nmb):
        if off >= end:
            return None
        ml = dgram[off]
        off += 1
        if ml == 0 or off + ml > end:
            return None
        mailboxes.append(dgram[off:off + ml])
        off += ml
    if off != end or b"\0" in user or any(b"\0" in m for m in mailboxes):
        return None
    return {"type": typ, "timestamp": timestamp, "nonce": nonce,
            "reg_id": reg_id, "cookie": cookie, "user": user,
            "context": context, "mailboxes": mailboxes}


# The client


class Refused(Exception):
    def __init__(self, reply, verified):
        self.reply = reply
        self.verified = verified
        name = REASONS.get(reply["reason"], "?")
        msg = "refused: %s (reason %d, limit %d)" % (
            name, reply["reason"], reply["limit"])
        if reply["reason"] == 1 and not verified:
            msg += ": token probably wrong"
        elif reply["reason"] == 9 and not verified:
            msg += ": user name refused"
        super().__init__(msg)


class Client:
    def __init__(self, server, user, token, context, mailboxes, skew=0):
        host, port = server
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
        family, _, _, _, addr = infos[0]
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        # connected: the kernel passes only the server's datagrams
        self.sock.connect(addr)
        self.user = user
        self.token = token
        self.context = context
        self.mailboxes = mailboxes
        self.skew = skew          # testing: a wrong local clock
        self.offset = 0
        self.cookie = bytes(16)
        self.reg_id = 0
        self.lifetime = 0
        self.refresh_at = None
        self.last_seq = None
        self.last_total = None
        self.pending = None

    def local_time(self):
        return int(time.time()) + self.skew

    def now(self):
        return self.local_time() + self.offset

    def recv(self, deadline):
        """One datagram before the deadline (monotonic), or None."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(MAX_DGRAM + 1)
        except socket.timeout:
            return None
        except ConnectionRefusedError:
            # an ICMP error from an earlier send: retransmission copes
            return b""

    def request(self, typ, deadline):
        """Send a request until it is answered.  Returns the REGISTERED
        reply; raises Refused, or TimeoutError at the deadline."""
        wait = 1.0
        cookies = 0
        stale_fixed = False
        while time.monotonic() < deadline:
            nonce = struct.unpack("!I", os.urandom(4))[0]
            dgram = encode_request(typ, self.token, self.now(), nonce,
                                   self.reg_id if typ != REGISTER else 0,
                                   self.cookie, self.user, self.context,
                                   self.mailboxes)
            self.sock.send(dgram)
            log("sent %s, %d bytes, nonce %08x" % (
                {1: "REGISTER", 2: "REFRESH", 3: "UNREGISTER"}[typ],
                len(dgram), nonce))
            until = min(deadline, time.monotonic() + wait)
            resend = False
            while not resend:
                d = self.recv(until)
                if d is None:
                    break
                r = decode_reply(d)
                if r is None:
                    log("dropped a malformed datagram of %d bytes" % len(d))
                    continue
                if r["type"] == PUSH:
                    self.handle_push(d, r)
                    continue
                if r["nonce"] != nonce:
                    log("dropped a reply to another nonce")
                    continue
                if r["type"] == COOKIE:
                    cookies += 1
                    if cookies > 3:
                        raise RuntimeError("server keeps answering COOKIE")
                    self.cookie = r["cookie"]
                    log("got COOKIE %s" % self.cookie.hex())
                    resend = True
                    continue
                verified = mac_ok(self.token, d)
                if r["type"] == REFUSED and r["reason"] == 1:
                    raise Refused(r, verified)
                if r["type"] == REFUSED and r["reason"] == 9 and \
                        d[-MAC_LEN:] == bytes(MAC_LEN):
                    raise Refused(r, False)
                if not verified:
                    log("dropped a reply whose MAC does not verify")
                    continue
                if r["type"] == REFUSED:
                    if r["reason"] == 2 and not stale_fixed:
                        stale_fixed = True
                        self.offset = r["server_time"] - self.local_time()
                        log("clock offset now %d s" % self.offset)
                        resend = True
                        continue
                    raise Refused(r, True)
                return r
            if not resend:
                wait = min(wait * 2, 30.0)
        raise TimeoutError("no answer from the server")

    def register(self, deadline):
        r = self.request(REGISTER, deadline)
        self.reg_id = r["reg_id"]
        self.lifetime = r["lifetime"]
        self.refresh_at = time.monotonic() + max(1, self.lifetime / 2)
        log("registered: reg_id %08x, lifetime %d s, seq %d" % (
            self.reg_id, self.lifetime, r["seq"]))

    def refresh(self, deadline):
        try:
            r = self.request(REFRESH, deadline)
        except Refused as e:
            if e.reply["reason"] != 8:
                raise
            log("server forgot the registration: registering anew")
            self.reg_id = 0
            self.register(deadline)
            return
        self.lifetime = r["lifetime"]
        self.refresh_at = time.monotonic() + max(1, self.lifetime / 2)
        log("refreshed: lifetime %d s" % self.lifetime)

    def unregister(self, deadline):
        try:
            r = self.request(UNREGISTER, deadline)
            log("unregistered (lifetime %d)" % r["lifetime"])
        except Refused as e:
            if e.reply["reason"] != 8:
                raise
        self.reg_id = 0

    def handle_push(self, d, p):
        """Check and acknowledge a PUSH; return it if it is new."""
        if not mac_ok(self.token, d):
            log("dropped a PUSH whose MAC does not verify")
            return None
        if p["reg_id"] != self.reg_id or p["context"] != self.context:
            log("dropped a PUSH for another registration or context")
            return None
        self.sock.send(encode_ack(self.token, p["reg_id"], p["seq"]))
        log("acknowledged PUSH seq %d" % p["seq"])
        if p["seq"] == self.last_seq:
            return None
        if self.last_total is None:
            p["new"] = p["count"]
        else:
            p["new"] = (p["total"] - self.last_total) % 2**32
        self.last_seq = p["seq"]
        self.last_total = p["total"]
        self.pending = p
        return p

    def wait_push(self, deadline):
        self.pending = None
        while self.pending is None:
            if time.monotonic() >= deadline:
                raise TimeoutError("no push before the timeout")
            if self.refresh_at is not None and \
                    time.monotonic() >= self.refresh_at:
                self.refresh(deadline)
                continue
            until = deadline if self.refresh_at is None else \
                min(deadline, self.refresh_at)
            d = self.recv(until)
            if not d:
                continue
            r = decode_reply(d)
            if r is None or r["type"] != PUSH:
                log("dropped a datagram that is not a PUSH")
                continue
            self.handle_push(d, r)
        return self.pending


def read_token(path):
    with open(path, "rb") as f:
        data = f.read(200)
    text = data.rstrip(b"\r\n")
    if not re.fullmatch(rb"[0-9A-Fa-f]{64}", text):
        raise ValueError("%s: not 64 hexadecimal digits" % path)
    return bytes.fromhex(text.decode())


def parse_server(s):
    m = re.fullmatch(r"\[([^]]+)\](?::(\d+))?", s)
    if m:
        return m.group(1), int(m.group(2) or 4650)
    if s.count(":") == 1:
        host, port = s.split(":")
        return host, int(port)
    return s, 4650


# Self-test against the page's EXAMPLES


def page_dumps(path):
    """The hex dumps of the EXAMPLES section, in order."""
    dumps, cur = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]{4}):((?: [0-9a-f]{2})+)\s*$", line)
            if m:
                if cur is None:
                    cur = bytearray()
                if int(m.group(1), 16) != len(cur):
                    raise ValueError("dump offsets out of order")
                cur += bytes.fromhex(m.group(2).replace(" ", ""))
            elif cur is not None:
                dumps.append(bytes(cur))
                cur = None
    return dumps


def page_hex(path, label):
    """A two-line `key' or `token' value of the EXAMPLES section."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines[:-1]):
        m = re.fullmatch(label + r"\s+([0-9a-f]{32})", line)
        n = re.fullmatch(r"\s+([0-9a-f]{32})", lines[i + 1])
        if m and n:
            return bytes.fromhex(m.group(1) + n.group(1))
    raise ValueError("no %s in the page" % label)


def selftest(path):
    key = page_hex(path, "key")
    token = page_hex(path, "token")
    dumps = page_dumps(path)
    checks = []

    def check(what, ok):
        checks.append((what, ok))
        print("%s %s" % ("ok  " if ok else "FAIL", what))

    check("key is the bytes 0x00..0x1f", key == bytes(range(32)))
    check("token of alice", derive_token(key, b"alice") == token)
    check("8 hex dumps in EXAMPLES", len(dumps) == 8)
    if len(dumps) != 8:
        return 1
    reg1, cookie, reg2, registered, push, ack, refresh, refused = dumps
    check("1 REGISTER encodes byte for byte",
          encode_request(REGISTER, token, 1700000000, 0x01020304, 0,
                         bytes(16), b"alice", b"ctx", []) == reg1)
    c = decode_reply(cookie)
    check("2 COOKIE decodes", c is not None and c["type"] == COOKIE and
          c["nonce"] == 0x01020304 and
          c["cookie"] == bytes(range(0xa0, 0xb0)))
    check("3 REGISTER with cookie encodes byte for byte",
          encode_request(REGISTER, token, 1700000001, 0x05060708, 0,
                         c["cookie"], b"alice", b"ctx", [b"INBOX"]) == reg2)
    rq = decode_request(reg2)
    check("3 REGISTER decodes", rq is not None and
          rq["mailboxes"] == [b"INBOX"] and rq["user"] == b"alice")
    r = decode_reply(registered)
    check("4 REGISTERED decodes and verifies", r is not None and
          r["type"] == REGISTERED and r["reg_id"] == 0x2a and
          r["lifetime"] == 600 and r["seq"] == 0 and
          mac_ok(token, registered))
    p = decode_reply(push)
    check("5 PUSH decodes and verifies", p is not None and
          p["type"] == PUSH and p["seq"] == 1 and p["count"] == 2 and
          p["total"] == 2 and p["server_time"] == 1700000060 and
          p["context"] == b"ctx" and mac_ok(token, push))
    check("6 PUSH_ACK encodes byte for byte",
          encode_ack(token, 0x2a, 1) == ack)
    check("7 REFRESH encodes byte for byte",
          encode_request(REFRESH, token, 1700000300, 0x090a0b0c, 0x2a,
                         bytes(16), b"alice", b"ctx", [b"INBOX"]) == refresh)
    f = decode_reply(refused)
    check("8 REFUSED decodes and verifies", f is not None and
          f["reason"] == 3 and f["limit"] == 8 and
          f["server_time"] == 1700000300 and mac_ok(token, refused))
    bad = bytearray(push)
    bad[12] ^= 1
    check("a PUSH with a flipped bit does not verify",
          not mac_ok(token, bytes(bad)))
    check("a truncated PUSH is malformed", decode_reply(push[:-1]) is None)
    return 0 if all(ok for _, ok in checks) else 1


def main():
    global verbose
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="minimal mailpush client")
    ap.add_argument("--server", help="HOST:PORT or [IPv6]:PORT")
    ap.add_argument("--user")
    ap.add_argument("--token-file")
    ap.add_argument("--context", default="interop",
                    help="context text (default: interop)")
    ap.add_argument("--mailbox", action="append", default=[],
                    help="mailbox to be told about (repeatable; "
                    "default all)")
    ap.add_argument("--timeout", type=float, default=10,
                    help="seconds to wait for a push (default 10)")
    ap.add_argument("--unregister", action="store_true",
                    help="unregister after the push")
    ap.add_argument("--skew", type=int, default=0,
                    help="testing: pretend the local clock is off by "
                    "this many seconds")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--selftest", nargs="?", metavar="PAGE",
                    const=os.path.join(here, "..", "..", "man",
                                       "mailpush-protocol.7"))
    a = ap.parse_args()
    verbose = a.verbose
    if a.selftest:
        return selftest(a.selftest)
    if not (a.server and a.user and a.token_file):
        ap.error("--server, --user and --token-file are required")
    try:
        token = read_token(a.token_file)
        c = Client(parse_server(a.server), a.user.encode(), token,
                   a.context.encode(), [m.encode() for m in a.mailbox],
                   a.skew)
    except (OSError, ValueError) as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 1
    deadline = time.monotonic() + a.timeout
    try:
        c.register(deadline)
        p = c.wait_push(deadline)
        print("push reg_id=%08x seq=%d count=%d total=%d new=%d "
              "server_time=%d context=%s" % (
                  p["reg_id"], p["seq"], p["count"], p["total"], p["new"],
                  p["server_time"], p["context"].decode("utf-8", "replace")))
        sys.stdout.flush()
        if a.unregister:
            c.unregister(time.monotonic() + 5)
    except Refused as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 3
    except (TimeoutError, RuntimeError, OSError) as e:
        print("client.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
