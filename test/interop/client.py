#!/usr/bin/env python3
"""
client.py: an independent mailpush client, written from
mailpush-protocol(7) alone (the standard library, and libsodium through
ctypes for XChaCha20-Poly1305), to show that the page is enough to
implement protocol version 2.

    python3 test/interop/client.py --server 127.0.0.1:4650 --user alice \
        --token-file F [--context TEXT] [--mailbox NAME]... [--timeout 10]
        [--unregister] [-v]

Registers (with the cookie round trip) as a new random device, waits for
one PUSH, decrypts it, acknowledges it, prints its fields and exits 0.  Exit 1: timeout or error;
2: usage; 3: the server refused the registration.

    python3 test/interop/client.py --selftest [man/mailpush-protocol.7]

checks this implementation against the hex dumps in the page's EXAMPLES.
"""

import argparse
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import re
import socket
import struct
import sys
import time

MAGIC = 0x4D50
VERSION = 2
(REGISTER, REFRESH, UNREGISTER, COOKIE, REGISTERED, REFUSED, PUSH, PUSH_ACK,
 KEEPALIVE, PROBE, PROBE_ECHO, KICK) = range(1, 13)
REQUESTS = (REGISTER, REFRESH, UNREGISTER, PUSH_ACK, PROBE)
NAMES = {REGISTER: "REGISTER", REFRESH: "REFRESH", UNREGISTER: "UNREGISTER",
         PUSH_ACK: "PUSH_ACK", PROBE: "PROBE"}
MAX_DGRAM = 1232
MAC_LEN = 32
KEY_ID = 1

REASONS = {
    1: "AUTH", 2: "STALE", 3: "TOO_MANY", 4: "CONTEXT_SIZE",
    5: "TABLE_FULL", 6: "ADDRESS_LIMIT", 7: "NOT_ALLOWED", 8: "UNKNOWN",
    9: "BAD_REQUEST", 10: "REPLAY",
}

verbose = False
_sodium = None


def log(msg):
    if verbose:
        print("client.py: " + msg, file=sys.stderr)


def sodium():
    """libsodium through ctypes, for XChaCha20-Poly1305 (the standard
    library has no such cipher)."""
    global _sodium
    if _sodium is None:
        name = ctypes.util.find_library("sodium") or "libsodium.so.23"
        _sodium = ctypes.CDLL(name)
        if _sodium.sodium_init() < 0:
            raise RuntimeError("sodium_init failed")
    return _sodium


def mac(token, data):
    return hmac.new(token, data, hashlib.sha256).digest()


def mac_ok(token, dgram):
    if len(dgram) < 4 + MAC_LEN:
        return False
    return hmac.compare_digest(mac(token, dgram[:-MAC_LEN]),
                               dgram[-MAC_LEN:])


def derive_token(key, user):
    return mac(key, user)


def push_key(token, device):
    """keyed BLAKE2b-256 of the device id, personal "mailpush-push-v2" """
    return hashlib.blake2b(device, digest_size=32, key=token,
                           person=b"mailpush-push-v2").digest()


def pad_len(context_len):
    """REGISTER, REFRESH and PROBE are padded to REGISTERED (68) plus a
    PUSH with this context (80 + context)."""
    return 68 + 80 + context_len


# Encoders


def encode_request(typ, token, device, timestamp, cookie, user, context,
                   mailboxes, seq=0, epoch=0, pad=True):
    if typ not in REQUESTS:
        raise ValueError("not a request type")
    if not 1 <= len(user) <= 255 or b"\0" in user:
        raise ValueError("user name must be 1 to 255 bytes, no NUL")
    if len(context) > 1024:
        raise ValueError("context longer than 1024 bytes")
    if len(mailboxes) > 16:
        raise ValueError("more than 16 mailboxes")
    if len(cookie) != 16 or len(device) != 16:
        raise ValueError("cookie and device must be 16 bytes")
    body = struct.pack("!HBBBBH16sQ16sB3xIQ", MAGIC, VERSION, typ, KEY_ID,
                       len(user), len(context), device, timestamp, cookie,
                       len(mailboxes), seq, epoch)
    body += user + context
    for m in mailboxes:
        if not 1 <= len(m) <= 255 or b"\0" in m:
            raise ValueError("mailbox name must be 1 to 255 bytes, no NUL")
        body += bytes([len(m)]) + m
    if pad and typ in (REGISTER, REFRESH, PROBE):
        body += bytes(max(0, pad_len(len(context)) - MAC_LEN - len(body)))
    dgram = body + mac(token, body)
    if len(dgram) > MAX_DGRAM:
        raise ValueError("request longer than 1232 bytes")
    return dgram


def encode_keepalive(reg_id):
    return struct.pack("!HBBI", MAGIC, VERSION, KEEPALIVE, reg_id)


# Decoders: None for anything malformed (the caller drops it)


def header(dgram):
    if len(dgram) < 4 or len(dgram) > MAX_DGRAM:
        return None
    magic, version, typ = struct.unpack("!HBB", dgram[:4])
    if magic != MAGIC or version != VERSION or not 1 <= typ <= 12:
        return None
    return typ


def decode_reply(dgram):
    """COOKIE, REGISTERED, REFUSED, PROBE_ECHO, KICK or PUSH (still
    sealed) as a dict, or None."""
    typ = header(dgram)
    if typ == COOKIE and len(dgram) == 28:
        return {"type": COOKIE, "timestamp": struct.unpack(
            "!Q", dgram[4:12])[0], "cookie": dgram[12:28]}
    if typ == REGISTERED and len(dgram) == 68:
        ts, epoch, reg_id, lifetime, seq, kmin, kmax = \
            struct.unpack("!QQIIIHH", dgram[4:36])
        return {"type": REGISTERED, "timestamp": ts, "epoch": epoch,
                "reg_id": reg_id, "lifetime": lifetime, "seq": seq,
                "keepalive_min": kmin, "keepalive_max": kmax}
    if typ == REFUSED and len(dgram) == 60:
        ts, reason, limit, value = struct.unpack("!QB3xIQ", dgram[4:28])
        if not 1 <= reason <= 10:
            return None
        return {"type": REFUSED, "timestamp": ts, "reason": reason,
                "limit": limit, "value": value}
    if typ == PROBE_ECHO and len(dgram) == 44:
        return {"type": PROBE_ECHO,
                "timestamp": struct.unpack("!Q", dgram[4:12])[0]}
    if typ == KICK and len(dgram) == 8:
        return {"type": KICK, "reg_id": struct.unpack("!I", dgram[4:8])[0]}
    if typ == PUSH and 80 <= len(dgram) <= 80 + 1024:
        return {"type": PUSH}
    return None


def open_push(key, dgram):
    """Decrypt and check a PUSH under the push key: a dict, or None."""
    if header(dgram) != PUSH or len(dgram) < 80:
        return None
    s = sodium()
    nonce = dgram[4:28]
    ct = dgram[28:]
    out = ctypes.create_string_buffer(len(ct))
    outlen = ctypes.c_ulonglong(0)
    if s.crypto_aead_xchacha20poly1305_ietf_decrypt(
            out, ctypes.byref(outlen), None, ct, ctypes.c_ulonglong(len(ct)),
            dgram[:4], ctypes.c_ulonglong(4), nonce, key) != 0:
        return None
    plain = out.raw[:outlen.value]
    (epoch, reg_id, seq, count, total, server_time, flags,
     clen) = struct.unpack("!QIIIIQHH", plain[:36])
    if len(plain) != 36 + clen:
        return None
    return {"type": PUSH, "epoch": epoch, "reg_id": reg_id, "seq": seq,
            "count": count, "total": total, "server_time": server_time,
            "flags": flags, "context": plain[36:]}


def seal_push(key, nonce, p):
    """For the self-test: a PUSH as the server seals it."""
    s = sodium()
    hdr = struct.pack("!HBB", MAGIC, VERSION, PUSH)
    plain = struct.pack("!QIIIIQHH", p["epoch"], p["reg_id"], p["seq"],
                        p["count"], p["total"], p["server_time"],
                        p["flags"], len(p["context"])) + p["context"]
    out = ctypes.create_string_buffer(len(plain) + 16)
    outlen = ctypes.c_ulonglong(0)
    s.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, ctypes.byref(outlen), plain, ctypes.c_ulonglong(len(plain)),
        hdr, ctypes.c_ulonglong(4), None, nonce, key)
    return hdr + nonce + out.raw[:outlen.value]


def decode_request(dgram):
    """For the self-test: a request as a dict, or None."""
    typ = header(dgram)
    if typ not in REQUESTS or len(dgram) < 97:
        return None
    (key_id, ulen, clen, device, timestamp, cookie, nmb, seq,
     epoch) = struct.unpack("!BBH16sQ16sB3xIQ", dgram[4:64])
    end = len(dgram) - MAC_LEN
    off = 64
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
    if any(dgram[off:end]) or b"\0" in user or \
            any(b"\0" in m for m in mailboxes):
        return None
    return {"type": typ, "key_id": key_id, "device": device,
            "timestamp": timestamp, "cookie": cookie, "user": user,
            "context": context, "mailboxes": mailboxes, "seq": seq,
            "epoch": epoch}


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
    def __init__(self, server, user, token, context, mailboxes, skew=0,
                 device=None):
        host, port = server
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
        family, _, _, _, addr = infos[0]
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        # connected: the kernel passes only the server's datagrams
        self.sock.connect(addr)
        self.user = user
        self.token = token
        self.device = device or os.urandom(16)
        self.key = push_key(token, self.device)
        self.context = context
        self.mailboxes = mailboxes
        self.skew = skew          # testing: a wrong local clock (s)
        self.offset = 0           # ms, learnt from STALE
        self.last_ts = 0
        self.cookie = bytes(16)
        self.reg_id = 0
        self.epoch = None
        self.lifetime = 0
        self.refresh_at = None
        self.last_seq = None
        self.last_total = None
        self.pending = None

    def timestamp(self):
        """Milliseconds, strictly increasing for this device."""
        t = int(time.time() * 1000) + self.skew * 1000 + self.offset
        self.last_ts = max(t, self.last_ts + 1)
        return self.last_ts

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
        fixed = False
        while time.monotonic() < deadline:
            ts = self.timestamp()
            dgram = encode_request(typ, self.token, self.device, ts,
                                   self.cookie, self.user, self.context,
                                   self.mailboxes)
            self.sock.send(dgram)
            log("sent %s, %d bytes, timestamp %d" % (NAMES[typ], len(dgram),
                                                     ts))
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
                    self.handle_push(d)
                    continue
                if r["type"] in (KICK, PROBE_ECHO) or r["timestamp"] != ts:
                    log("dropped a reply to another request")
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
                    if r["reason"] in (2, 10) and not fixed:
                        fixed = True
                        if r["reason"] == 2:
                            self.offset += r["value"] - ts
                            log("clock offset now %d ms" % self.offset)
                        else:
                            self.last_ts = max(self.last_ts, r["value"])
                        resend = True
                        continue
                    raise Refused(r, True)
                return r
            if not resend:
                wait = min(wait * 2, 30.0)
        raise TimeoutError("no answer from the server")

    def registered(self, r):
        if r["epoch"] != self.epoch:
            self.last_seq = r["seq"]
            self.last_total = None
        self.epoch = r["epoch"]
        self.reg_id = r["reg_id"]
        self.lifetime = r["lifetime"]
        self.refresh_at = time.monotonic() + max(1, self.lifetime / 2)

    def register(self, deadline):
        r = self.request(REGISTER, deadline)
        self.registered(r)
        log("registered: reg_id %08x, lifetime %d s, seq %d, epoch %016x" % (
            self.reg_id, self.lifetime, r["seq"], r["epoch"]))

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
        self.registered(r)
        log("refreshed: lifetime %d s" % self.lifetime)

    def unregister(self, deadline):
        try:
            r = self.request(UNREGISTER, deadline)
            log("unregistered (lifetime %d)" % r["lifetime"])
        except Refused as e:
            if e.reply["reason"] != 8:
                raise
        self.reg_id = 0

    def handle_push(self, d):
        """Decrypt and acknowledge a PUSH; return it if it is new."""
        p = open_push(self.key, d)
        if p is None:
            log("dropped a PUSH that does not decrypt under our key")
            return None
        if p["reg_id"] != self.reg_id or p["context"] != self.context:
            log("dropped a PUSH for another registration or context")
            return None
        self.sock.send(encode_request(PUSH_ACK, self.token, self.device,
                                      self.timestamp(), bytes(16),
                                      self.user, b"", [], p["seq"],
                                      p["epoch"]))
        log("acknowledged PUSH seq %d" % p["seq"])
        if p["epoch"] == self.epoch and self.last_seq is not None and \
                p["seq"] <= self.last_seq:
            return None
        if p["epoch"] != self.epoch or self.last_total is None:
            p["new"] = p["count"]
        else:
            p["new"] = (p["total"] - self.last_total) % 2**32
        self.epoch = p["epoch"]
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
            self.handle_push(d)
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


def page_hex(path, label, lines_=2):
    """A `key', `token' or `push key' value of the EXAMPLES section: 32
    hex digits a line, on one or two lines."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines[:-1]):
        m = re.fullmatch(label + r"\s+([0-9a-f]{32})", line)
        if not m:
            continue
        if lines_ == 1:
            return bytes.fromhex(m.group(1))
        n = re.fullmatch(r"\s+([0-9a-f]{32})", lines[i + 1])
        if n:
            return bytes.fromhex(m.group(1) + n.group(1))
    raise ValueError("no %s in the page" % label)


def selftest(path):
    key = page_hex(path, "key")
    token = page_hex(path, "token")
    device = page_hex(path, "device", 1)
    pkey = page_hex(path, "push key")
    dumps = page_dumps(path)
    checks = []
    epoch = 0x0123456789abcdef

    def check(what, ok):
        checks.append((what, ok))
        print("%s %s" % ("ok  " if ok else "FAIL", what))

    check("key is the bytes 0x00..0x1f", key == bytes(range(32)))
    check("token of alice", derive_token(key, b"alice") == token)
    check("device is d0..df", device == bytes(range(0xd0, 0xe0)))
    check("push key of alice's device", push_key(token, device) == pkey)
    check("11 hex dumps in EXAMPLES", len(dumps) == 11)
    if len(dumps) != 11:
        return 1
    (reg1, cookie, reg2, registered, push, ack, keepalive, probe, echo,
     kick, refused) = dumps
    t0 = 1700000000000
    check("1 REGISTER encodes byte for byte",
          encode_request(REGISTER, token, device, t0, bytes(16), b"alice",
                         b"ctx", []) == reg1)
    c = decode_reply(cookie)
    check("2 COOKIE decodes", c is not None and c["type"] == COOKIE and
          c["timestamp"] == t0 and c["cookie"] == bytes(range(0xa0, 0xb0)))
    check("3 REGISTER with cookie encodes byte for byte",
          encode_request(REGISTER, token, device, t0 + 1, c["cookie"],
                         b"alice", b"ctx", [b"INBOX"]) == reg2)
    rq = decode_request(reg2)
    check("3 REGISTER decodes", rq is not None and
          rq["mailboxes"] == [b"INBOX"] and rq["user"] == b"alice" and
          rq["device"] == device)
    r = decode_reply(registered)
    check("4 REGISTERED decodes and verifies", r is not None and
          r["type"] == REGISTERED and r["reg_id"] == 0x2a and
          r["lifetime"] == 600 and r["seq"] == 0 and r["epoch"] == epoch and
          r["keepalive_min"] == 15 and r["keepalive_max"] == 300 and
          mac_ok(token, registered))
    p = open_push(pkey, push)
    check("5 PUSH decrypts", p is not None and p["epoch"] == epoch and
          p["seq"] == 1 and p["count"] == 2 and p["total"] == 2 and
          p["server_time"] == 1700000060 and p["context"] == b"ctx")
    check("5 PUSH seals byte for byte",
          p is not None and seal_push(pkey, push[4:28], p) == push)
    check("5 PUSH does not open under bob's token",
          open_push(push_key(derive_token(key, b"bob"), device),
                    push) is None)
    check("6 PUSH_ACK encodes byte for byte",
          encode_request(PUSH_ACK, token, device, 1700000060500, bytes(16),
                         b"alice", b"", [], 1, epoch) == ack)
    check("7 KEEPALIVE encodes byte for byte",
          encode_keepalive(0x2a) == keepalive)
    check("8 PROBE encodes byte for byte",
          encode_request(PROBE, token, device, 1700000070000, bytes(16),
                         b"alice", b"ctx", [], 30) == probe)
    e = decode_reply(echo)
    check("9 PROBE_ECHO decodes and verifies", e is not None and
          e["timestamp"] == 1700000070000 and mac_ok(token, echo))
    k = decode_reply(kick)
    check("10 KICK decodes", k is not None and k["reg_id"] == 0x2a)
    f = decode_reply(refused)
    check("11 REFUSED decodes and verifies", f is not None and
          f["reason"] == 3 and f["limit"] == 8 and
          f["timestamp"] == 1700000300000 and mac_ok(token, refused))
    bad = bytearray(push)
    bad[40] ^= 1
    check("a PUSH with a flipped bit does not open",
          open_push(pkey, bytes(bad)) is None)
    check("a truncated PUSH does not open", open_push(pkey, push[:-1]) is None)
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
              "server_time=%d epoch=%016x context=%s" % (
                  p["reg_id"], p["seq"], p["count"], p["total"], p["new"],
                  p["server_time"], p["epoch"],
                  p["context"].decode("utf-8", "replace")))
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
