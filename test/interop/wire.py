"""
wire.py: mailpush protocol version 2 for the interoperability client
(client.py), from mailpush-protocol(7) alone: the constants, the token,
MAC and push key, the request encoders, the server datagram decoder and
the PUSH opener (XChaCha20-Poly1305 through libsodium with ctypes).
"""

import ctypes
import ctypes.util
import hashlib
import hmac
import struct

MAGIC = 0x4D50
VERSION = 2
(REGISTER, REFRESH, UNREGISTER, COOKIE, REGISTERED, REFUSED, PUSH, PUSH_ACK,
 KEEPALIVE, PROBE, PROBE_ECHO, KICK) = range(1, 13)
NAMES = {1: "REGISTER", 2: "REFRESH", 3: "UNREGISTER", 4: "COOKIE",
         5: "REGISTERED", 6: "REFUSED", 7: "PUSH", 8: "PUSH_ACK",
         9: "KEEPALIVE", 10: "PROBE", 11: "PROBE_ECHO", 12: "KICK"}
AUTH_REQUESTS = (REGISTER, REFRESH, UNREGISTER, PUSH_ACK, PROBE)
MAX_DGRAM = 1232
MAC_LEN = 32
REQ_FIXED = 64
FIXED_LEN = {COOKIE: 28, REGISTERED: 68, REFUSED: 60, PROBE_ECHO: 44,
             KICK: 8, KEEPALIVE: 8}
PUSH_MIN = 80
PUSH_PLAIN = 36
NONCE_LEN = 24
TAG_LEN = 16
MAX_CONTEXT = 1024
MAX_MAILBOXES = 16
PERSONAL = b"mailpush-push-v2"
REASONS = {1: "AUTH", 2: "STALE", 3: "TOO_MANY", 4: "CONTEXT_SIZE",
           5: "TABLE_FULL", 6: "ADDRESS_LIMIT", 7: "NOT_ALLOWED",
           8: "UNKNOWN", 9: "BAD_REQUEST", 10: "REPLAY"}
ZERO_MAC = bytes(MAC_LEN)
class Malformed(Exception):
    pass


# ---- cryptography --------------------------------------------------------

def hmac256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def derive_token(key, user):
    return hmac256(key, user)


def push_key(token):
    return hashlib.blake2b(b"", digest_size=32, key=token,
                           person=PERSONAL).digest()


def mac_ok(token, dgram):
    return hmac.compare_digest(hmac256(token, dgram[:-MAC_LEN]),
                               dgram[-MAC_LEN:])


class Sodium:
    """crypto_aead_xchacha20poly1305_ietf through ctypes."""

    def __init__(self):
        name = ctypes.util.find_library("sodium") or "libsodium.so.23"
        lib = ctypes.CDLL(name)
        if lib.sodium_init() < 0:
            raise OSError("sodium_init failed")
        ull, p = ctypes.c_ulonglong, ctypes.c_char_p
        pull = ctypes.POINTER(ull)
        # (c, clen_p, m, mlen, ad, adlen, nsec, npub, k) and
        # (m, mlen_p, nsec, c, clen, ad, adlen, npub, k)
        enc = lib.crypto_aead_xchacha20poly1305_ietf_encrypt
        enc.argtypes = [p, pull, p, ull, p, ull, p, p, p]
        dec = lib.crypto_aead_xchacha20poly1305_ietf_decrypt
        dec.argtypes = [p, pull, p, p, ull, p, ull, p, p]
        enc.restype = dec.restype = ctypes.c_int
        self.lib = lib

    def seal(self, key, nonce, ad, plain):
        out = ctypes.create_string_buffer(len(plain) + TAG_LEN)
        olen = ctypes.c_ulonglong()
        if self.lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
                out, ctypes.byref(olen), plain, len(plain), ad, len(ad),
                None, nonce, key) != 0:
            raise OSError("encrypt failed")
        return out.raw[:olen.value]

    def open(self, key, nonce, ad, sealed):
        if len(sealed) < TAG_LEN:
            return None
        out = ctypes.create_string_buffer(max(1, len(sealed) - TAG_LEN))
        olen = ctypes.c_ulonglong()
        if self.lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
                out, ctypes.byref(olen), None, sealed, len(sealed), ad,
                len(ad), nonce, key) != 0:
            return None
        return out.raw[:olen.value]


_sodium = None


def sodium():
    global _sodium
    if _sodium is None:
        _sodium = Sodium()
    return _sodium


# ---- encoders ------------------------------------------------------------

def header(typ):
    return struct.pack(">HBB", MAGIC, VERSION, typ)


def min_padded(context_len):
    """REGISTER, REFRESH and PROBE: room for a REGISTERED and a PUSH."""
    return 68 + 80 + context_len


def encode_request(typ, token, *, user, device, timestamp, key_id=1,
                   cookie=bytes(16), context=b"", mailboxes=(), seq=0,
                   epoch=0, pad_to=0):
    if typ not in AUTH_REQUESTS:
        raise ValueError("not an authenticated request type")
    if not 1 <= len(user) <= 255 or b"\0" in user:
        raise ValueError("user name must be 1 to 255 bytes without NUL")
    if len(context) > MAX_CONTEXT:
        raise ValueError("context longer than %d bytes" % MAX_CONTEXT)
    if len(mailboxes) > MAX_MAILBOXES:
        raise ValueError("more than %d mailboxes" % MAX_MAILBOXES)
    if len(device) != 16 or len(cookie) != 16:
        raise ValueError("device and cookie are 16 bytes")
    d = header(typ) + struct.pack(
        ">BBH16sQ16sB3xIQ", key_id, len(user), len(context), device,
        timestamp, cookie, len(mailboxes), seq, epoch)
    assert len(d) == REQ_FIXED
    d += user + context
    for m in mailboxes:
        if not 1 <= len(m) <= 255 or b"\0" in m:
            raise ValueError("mailbox name must be 1 to 255 bytes")
        d += bytes([len(m)]) + m
    if len(d) + MAC_LEN < pad_to:
        d += bytes(pad_to - MAC_LEN - len(d))
    d += hmac256(token, d)
    if len(d) > MAX_DGRAM:
        raise ValueError("request longer than %d bytes" % MAX_DGRAM)
    return d


def encode_keepalive(reg_id):
    return header(KEEPALIVE) + struct.pack(">I", reg_id)


def seal_push(token, nonce, *, epoch, reg_id, seq, count, total,
              server_time, flags, context):
    """What a server does; used by the self-test only."""
    plain = struct.pack(">QIIIIQHH", epoch, reg_id, seq, count, total,
                        server_time, flags, len(context)) + context
    hdr = header(PUSH)
    return hdr + nonce + sodium().seal(push_key(token), nonce, hdr, plain)


# ---- decoders --------------------------------------------------------------

def decode(dgram):
    """Parse a server-to-client datagram; raises Malformed."""
    if len(dgram) > MAX_DGRAM:
        raise Malformed("longer than %d bytes" % MAX_DGRAM)
    if len(dgram) < 4:
        raise Malformed("shorter than a header")
    magic, version, typ = struct.unpack_from(">HBB", dgram)
    if magic != MAGIC:
        raise Malformed("magic 0x%04x" % magic)
    if version != VERSION:
        raise Malformed("version %d" % version)
    if typ not in (COOKIE, REGISTERED, REFUSED, PUSH, PROBE_ECHO, KICK):
        raise Malformed("type %d is not server to client" % typ)
    if typ == PUSH:
        if not PUSH_MIN <= len(dgram) <= PUSH_MIN + MAX_CONTEXT:
            raise Malformed("PUSH of %d bytes" % len(dgram))
    elif len(dgram) != FIXED_LEN[typ]:
        raise Malformed("%s of %d bytes, not %d" %
                        (NAMES[typ], len(dgram), FIXED_LEN[typ]))
    m = {"type": typ, "raw": dgram}
    if typ == COOKIE:
        m["timestamp"], m["cookie"] = struct.unpack_from(">Q16s", dgram, 4)
    elif typ == REGISTERED:
        (m["timestamp"], m["epoch"], m["reg_id"], m["lifetime"], m["seq"],
         m["keepalive_min"], m["keepalive_max"]) = struct.unpack_from(
            ">QQIIIHH", dgram, 4)
    elif typ == REFUSED:
        (m["timestamp"], m["reason"], zero, m["limit"], m["value"]) = \
            struct.unpack_from(">QB3sIQ", dgram, 4)
        if zero != bytes(3):
            raise Malformed("REFUSED with non-zero bytes at 13-15")
        if m["reason"] not in REASONS:
            raise Malformed("REFUSED reason %d" % m["reason"])
    elif typ == PROBE_ECHO:
        (m["timestamp"],) = struct.unpack_from(">Q", dgram, 4)
    elif typ == KICK:
        (m["reg_id"],) = struct.unpack_from(">I", dgram, 4)
    return m


def open_push(pkey, dgram):
    """The plaintext fields of a PUSH, or None if it does not open."""
    nonce = dgram[4:4 + NONCE_LEN]
    plain = sodium().open(pkey, nonce, dgram[:4], dgram[4 + NONCE_LEN:])
    if plain is None:
        return None
    if len(plain) < PUSH_PLAIN:
        raise Malformed("PUSH plaintext of %d bytes" % len(plain))
    p = dict(zip(("epoch", "reg_id", "seq", "count", "total", "server_time",
                  "flags", "context_len"),
                 struct.unpack_from(">QIIIIQHH", plain)))
    if p["context_len"] != len(plain) - PUSH_PLAIN:
        raise Malformed("PUSH context_len %d in %d bytes" %
                        (p["context_len"], len(plain)))
    if p["flags"] & ~0x0001:
        raise Malformed("PUSH flags 0x%04x" % p["flags"])
    p["context"] = plain[PUSH_PLAIN:]
    return p
