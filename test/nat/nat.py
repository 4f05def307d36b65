#!/usr/bin/python3
"""test/nat/nat.py BUILD_DIR: mailpushd and mailpush-listen behind real NATs.

Run by test/nat/run.sh (`make e2e'), which checks for root and network
namespaces and installs nftables and conntrack.  Everything happens in
network namespaces this script makes (names mpnat-PID-*), joined by veth
pairs only, with documentation addresses:

  srv   mailpushd on 203.0.113.10:4650 and [2001:db8:5::10]:4650 (on its
        loopback); the "internet": one veth to each router below
  r1-r5 IPv4 home routers: nftables masquerade out of "wan",
        conntrack UDP timeouts (udp_timeout and udp_timeout_stream) 20 s;
        wan 198.51.100.x/30, lan 192.0.2.x/30 to each home device
  f6,f7 IPv6 stateful firewalls: forward policy drop, ct state
        established,related accept, new only from the lan (new inbound
        counted and dropped), the same 20 s UDP timeouts;
        wan 2001:db8:0:K::/64, lan 2001:db8:K::/64
  h*    home devices running the real mailpush-listen

Scenarios, run in parallel inside the one silence window:

  two-devices4 alice on h1a and h1b behind r1: both report every one of
               6 pushes; after h1b exits, h1a still gets the next one and
               alice has exactly one registration left
  two-devices6 the same for two devices of pair6 on h6 behind f6 (one
               IPv6 address, so one /64 as the per-address limit counts)
  roam         a device behind r4 is killed (-9, as when a laptop loses its
               network) and restarted with the same identity behind r5,
               then back behind r4: each time `mailpushctl list' shows
               exactly one registration, at the new public address, and
               the next push arrives within 1 s
  silence4/6   after a first push, SILENCE seconds (default 180) without
               mail, a push arrives within 1 s (IPv4 NAT r2 / IPv6
               firewall f6)
  flush4/6     `conntrack -F' in the router (r3 / f7), then mail: the push
               is held up (no mapping, or a new inbound flow the firewall
               drops) and arrives within 1 s of the client's next
               datagram seen by the router (conntrack -E), which must come
               within NEXT_BOUND (50) seconds; done 30 s after a first
               push and again SILENCE - 60 s after it
  testbed      the router really forgets: a one-off UDP flow through r2
               shows a conntrack timeout of at most 20 s and is gone 22 s
               later

Prints one line per check with its measurement and the total time
(about SILENCE + 20 s: 196-204 s with the default on 2 busy cores); exits
0 when every check passed, 1 otherwise.  The whole run is bounded by an
alarm at SILENCE + 150 s.  Everything started is stopped and every
namespace removed on any exit (signals included).  The environment may
shorten the silence for development (NAT_SILENCE=SECONDS; below 140 the
second flush is left out); NAT_KEEP=1 keeps the temporary directory with
the daemon's and the listeners' logs.  CI uses the defaults.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

SILENCE = int(os.environ.get("NAT_SILENCE", "180"))
NEXT_BOUND = 50         # seconds to wait for a client's next datagram
# conntrack -F this long after the flush scenarios' first push: once while
# the client may still be learning the NAT's timeout, once well after
FLUSH_AT = [30] + ([SILENCE - 60] if SILENCE >= 60 + 30 + NEXT_BOUND else [])
PUSH_BOUND = 1.0        # a push must arrive within this many seconds
NAT_TIMEOUT = 20        # conntrack UDP timeouts in every router
PORT = 4650
SRV4 = "203.0.113.10"
SRV6 = "2001:db8:5::10"
T0 = time.time()
PREFIX = "mpnat-%d-" % os.getpid()

lock = threading.Lock()
results = []            # (scenario, check, ok, detail)
procs = []              # every Popen started, for cleanup
namespaces = []         # every namespace made, for cleanup
tmpdir = None


def log(msg):
    with lock:
        print("nat: [%6.1fs] %s" % (time.time() - T0, msg), flush=True)


def check(scenario, name, ok, detail=""):
    with lock:
        results.append((scenario, name, bool(ok), detail))
    log("%s %s: %s%s" % ("ok  " if ok else "FAIL", scenario, name,
                         " (%s)" % detail if detail else ""))
    return ok


class Abort(Exception):
    pass


def sh(args, check_rc=True, timeout=30, **kw):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, text=True, **kw)
    if check_rc and r.returncode != 0:
        raise Abort("%s: exit %d: %s" % (" ".join(args), r.returncode,
                                          r.stderr.strip()))
    return r


def ns(name):
    return PREFIX + name


def nsx(name, *args, **kw):
    return sh(["ip", "netns", "exec", ns(name)] + list(args), **kw)


def start(args, netns=None, **kw):
    if netns is not None:
        args = ["ip", "netns", "exec", ns(netns)] + args
    p = subprocess.Popen(args, **kw)
    procs.append(p)
    return p


# ---- the network --------------------------------------------------------

def mkns(name):
    sh(["ip", "netns", "add", ns(name)])
    namespaces.append(ns(name))
    nsx(name, "ip", "link", "set", "lo", "up")


def veth(a, ifa, b, ifb):
    sh(["ip", "-n", ns(a), "link", "add", "name", ifa, "type", "veth", "peer",
        "name", ifb, "netns", ns(b)])
    nsx(a, "ip", "link", "set", ifa, "up")
    nsx(b, "ip", "link", "set", ifb, "up")


def addr(n, ifname, a):
    fam = "-6" if ":" in a else "-4"
    extra = ["nodad"] if ":" in a else []
    nsx(n, "ip", fam, "addr", "add", a, "dev", ifname, *extra)


def route(n, dst, via):
    fam = "-6" if ":" in via else "-4"
    nsx(n, "ip", fam, "route", "add", dst, "via", via)


def nft(n, ruleset):
    nsx(n, "nft", "-f", "-", input=ruleset)


def conntrack_timeouts(n):
    for k in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
        nsx(n, "sysctl", "-q", "-w", "net.netfilter.%s=%d" % (k, NAT_TIMEOUT))
        v = nsx(n, "sysctl", "-n", "net.netfilter." + k).stdout.strip()
        if v != str(NAT_TIMEOUT):
            raise Abort("%s in %s is %s, not %d" % (k, n, v, NAT_TIMEOUT))


NAT_RULES = """
table ip nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" masquerade
    }
}
"""

FW6_RULES = """
table inet fw {
    counter new_inbound { }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname "lan" accept
        iifname "wan" ct state new counter name new_inbound drop
    }
}
"""

# router -> (its devices); public addresses are the routers' wan ends
NAT_ROUTERS = {1: ["h1a", "h1b"], 2: ["h2"], 3: ["h3"], 4: ["h4"], 5: ["h5"]}
FW_ROUTERS = {6: ["h6"], 7: ["h7"]}
WAN4 = {}               # router -> its public IPv4 address
DEV_ADDR = {}           # device -> its own address
DEV_ROUTER = {}         # device -> its router


def build_network():
    mkns("srv")
    nsx("srv", "ip", "addr", "add", SRV4 + "/32", "dev", "lo")
    nsx("srv", "ip", "-6", "addr", "add", SRV6 + "/128", "dev", "lo")
    for k, devs in NAT_ROUTERS.items():
        r = "r%d" % k
        mkns(r)
        veth("srv", r, r, "wan")
        base = 4 * (k - 1)
        WAN4[r] = "198.51.100.%d" % (base + 1)
        addr(r, "wan", "%s/30" % WAN4[r])
        addr("srv", r, "198.51.100.%d/30" % (base + 2))
        route(r, "default", "198.51.100.%d" % (base + 2))
        nsx(r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        nft(r, NAT_RULES)
        conntrack_timeouts(r)
        for j, h in enumerate(devs):
            mkns(h)
            lan = "lan%d" % j
            veth(r, lan, h, "eth0")
            a = 16 * (k - 1) + 4 * j
            addr(r, lan, "192.0.2.%d/30" % (a + 1))
            addr(h, "eth0", "192.0.2.%d/30" % (a + 2))
            route(h, "default", "192.0.2.%d" % (a + 1))
            DEV_ADDR[h] = "192.0.2.%d" % (a + 2)
            DEV_ROUTER[h] = r
    for k, devs in FW_ROUTERS.items():
        f = "f%d" % k
        (h,) = devs
        mkns(f)
        mkns(h)
        veth("srv", f, f, "wan")
        veth(f, "lan", h, "eth0")
        addr(f, "wan", "2001:db8:0:%d::1/64" % k)
        addr("srv", f, "2001:db8:0:%d::2/64" % k)
        addr(f, "lan", "2001:db8:%d::1/64" % k)
        addr(h, "eth0", "2001:db8:%d::2/64" % k)
        route(f, "default", "2001:db8:0:%d::2" % k)
        route(h, "default", "2001:db8:%d::1" % k)
        route("srv", "2001:db8:%d::/64" % k, "2001:db8:0:%d::1" % k)
        nsx(f, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
        nft(f, FW6_RULES)
        conntrack_timeouts(f)
        DEV_ADDR[h] = "2001:db8:%d::2" % k
        DEV_ROUTER[h] = f


# ---- the daemon -----------------------------------------------------------

class Daemon:
    def __init__(self, root, build):
        self.build = build
        self.conf = os.path.join(tmpdir, "mailpushd.conf")
        with open(self.conf, "w") as fp:
            subprocess.run(
                ["sh", os.path.join(root, "test/confset.sh"),
                 os.path.join(root, "conf/mailpushd.conf"),
                 "mailpushd", "user", "",
                 "mailpushd", "listen", "%s:%d [%s]:%d" % (SRV4, PORT, SRV6,
                                                          PORT),
                 "mailpushd", "key_file", os.path.join(tmpdir, "key"),
                 "mailpushd", "state_file", os.path.join(tmpdir, "state"),
                 "mailpushd", "control_socket", os.path.join(tmpdir, "ctl"),
                 "events", "socket", os.path.join(tmpdir, "ev")],
                stdout=fp, check=True)
        sh([self.ctl_path(), "-c", self.conf, "genkey"])
        self.log = open(os.path.join(tmpdir, "mailpushd.log"), "w")
        self.p = start([os.path.join(build, "mailpushd"), "-d", "-v", "-c",
                        self.conf], netns="srv", stdout=self.log,
                       stderr=subprocess.STDOUT)
        for _ in range(200):
            if self.ctl("status", check_rc=False).returncode == 0:
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise Abort("mailpushd did not start; see %s" % self.log.name)

    def ctl_path(self):
        return os.path.join(self.build, "mailpushctl")

    def ctl(self, *args, check_rc=True):
        return sh([self.ctl_path(), "-c", self.conf] + list(args),
                  check_rc=check_rc)

    def token(self, user):
        """The user's token file, written once (listeners read it)."""
        path = os.path.join(tmpdir, user + ".token")
        if not os.path.exists(path):
            with open(path + ".new", "w") as fp:
                fp.write(self.ctl("token", user).stdout)
            os.rename(path + ".new", path)
        return path

    def regs(self, user):
        out = self.ctl("-j", "list", user).stdout
        v = json.loads(out)
        if isinstance(v, dict):
            v = v.get("registrations", [])
        return v

    def mail(self, user):
        """One event through the real hook; returns the time it was sent."""
        t = time.time()
        nsx("srv", os.path.join(self.build, "mailpush-hook"), "-c",
            self.conf, "-u", user)
        return t


# ---- the clients ----------------------------------------------------------

PUSH_RE = re.compile(r"^push (.*)$")


def parse_time(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


class Listener:
    """One mailpush-listen in a home namespace: its pushes and its
    registrations, with the time each was seen."""

    def __init__(self, daemon, user, device, home, server):
        self.user, self.device, self.home = user, device, home
        self.pushes = []
        self.registered = []
        self.cv = threading.Condition()
        self.errlog = open(os.path.join(tmpdir, "listen-%s-%s.log" %
                                        (device, home)), "w")
        state = os.path.join(tmpdir, "home-" + home)
        os.makedirs(state, exist_ok=True)
        # the device identity is kept in a file across restarts
        args = [os.path.join(daemon.build, "mailpush-listen"), "-vv",
                "-s", server, "-u", user, "-K", daemon.token(user),
                "-D", os.path.join(tmpdir, "device-" + device)]
        self.p = start(args, netns=home, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, bufsize=1,
                       cwd=state, env=dict(os.environ, HOME=state))
        for f, fn in ((self.p.stdout, self._out), (self.p.stderr, self._err)):
            threading.Thread(target=self._read, args=(f, fn),
                             daemon=True).start()

    def _read(self, f, fn):
        for line in f:
            fn(line.rstrip("\n"), time.time())

    def _out(self, line, t):
        m = PUSH_RE.match(line)
        if not m:
            return
        f = dict(kv.split("=", 1) for kv in m.group(1).split()
                 if "=" in kv)
        f["t_read"] = t
        if "time" in f:
            f["t"] = parse_time(f["time"])
        with self.cv:
            self.pushes.append(f)
            self.cv.notify_all()

    def _err(self, line, t):
        self.errlog.write("%.3f %s\n" % (t - T0, line))
        self.errlog.flush()
        if re.search(r"(^|: )registered\b", line):
            with self.cv:
                self.registered.append(t)
                self.cv.notify_all()

    def wait(self, pred, timeout):
        with self.cv:
            return self.cv.wait_for(pred, timeout)

    def wait_registered(self, timeout=10):
        return self.wait(lambda: self.registered, timeout)

    def wait_push(self, after, timeout):
        """The first push reported at or after `after' (wall clock)."""
        def first():
            for f in self.pushes:
                if f.get("t", f["t_read"]) >= after - 0.005:
                    return f
            return None
        if self.wait(lambda: first() is not None, timeout):
            return first()
        return None

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


# ---- scenarios ------------------------------------------------------------

def push_ok(scn, what, lst, t_mail, bound=PUSH_BOUND, wait=None):
    f = lst.wait_push(t_mail, bound + 2 if wait is None else wait)
    if f is None:
        return check(scn, what, False, "no push within %.0f s" %
                     (bound + 2 if wait is None else wait))
    lat = f.get("t", f["t_read"]) - t_mail
    return check(scn, what, lat <= bound, "arrived after %.3f s, seq %s" %
                 (lat, f.get("seq")))


def sc_two_devices(d, a, b, scn):
    n = 6
    sent = []
    for _ in range(n):
        sent.append(d.mail(a.user))
        time.sleep(1.5)
    time.sleep(1.5)
    for lst in (a, b):
        got = [f for f in lst.pushes if f.get("t", f["t_read"]) >= sent[0] - 0.005]
        new = sum(int(f.get("new", f.get("count", "0"))) for f in got)
        lats = []
        for t in sent:
            f = next((f for f in got if f.get("t", f["t_read"]) >= t - 0.005),
                     None)
            lats.append(None if f is None else f.get("t", f["t_read"]) - t)
        ok = len(got) == n and new == n and all(
            x is not None and x <= PUSH_BOUND for x in lats)
        worst = max((x for x in lats if x is not None), default=None)
        check(scn, "%s got every push" % lst.device, ok,
              "%d of %d pushes, new messages %d, slowest %s" %
              (len(got), n, new, "%.3f s" % worst if worst is not None
               else "-"))
    regs = d.regs(a.user)
    check(scn, "one registration per device", len(regs) == 2,
          "%d registrations: %s" % (len(regs),
                                    " ".join(r["address"] for r in regs)))
    b.stop()
    time.sleep(0.5)
    t = d.mail(a.user)
    push_ok(scn, "%s still pushed after %s exits" % (a.device, b.device), a,
            t)
    regs = d.regs(a.user)
    check(scn, "%s's exit left %s's registration" % (b.device, a.device),
          len(regs) == 1,
          "%d registrations" % len(regs))


def sc_roam(d, server):
    scn = "roam"
    lst = Listener(d, "roam", "roam", "h4", server)
    if not lst.wait_registered():
        return check(scn, "registered behind r4", False)
    t = d.mail("roam")
    push_ok(scn, "push behind r4", lst, t)
    for home in ("h5", "h4"):
        lst.stop(signal.SIGKILL)
        lst = Listener(d, "roam", "roam", home, server)
        if not check(scn, "re-registered behind %s" % DEV_ROUTER[home],
                     lst.wait_registered(15)):
            return
        time.sleep(0.3)
        regs = d.regs("roam")
        want = WAN4[DEV_ROUTER[home]] + ":"
        check(scn, "one registration after the restart behind %s" %
              DEV_ROUTER[home],
              len(regs) == 1 and regs[0]["address"].startswith(want),
              "%d registrations: %s" %
              (len(regs), " ".join(r["address"] for r in regs)))
        t = d.mail("roam")
        push_ok(scn, "push behind %s" % DEV_ROUTER[home], lst, t)


def sc_silence(d, lst, scn):
    t = d.mail(lst.user)
    f = lst.wait_push(t, 5)
    if not check(scn, "first push", f is not None):
        return
    quiet_from = f.get("t", f["t_read"])
    time.sleep(max(0, quiet_from + SILENCE - time.time()))
    t = d.mail(lst.user)
    push_ok(scn, "push after %d s of silence" % (t - quiet_from), lst, t)


class CtMonitor:
    """conntrack -E in a router: the time of each new UDP flow whose
    original source is `src'."""

    def __init__(self, router, src):
        self.times = []
        self.cv = threading.Condition()
        self.src = src
        err = open(os.path.join(tmpdir, "conntrack-%s.err" % router), "w+")
        self.p = start(["conntrack", "-E", "-e", "NEW", "-p", "udp",
                        "-o", "timestamp"], netns=router,
                       stdout=subprocess.PIPE, stderr=err,
                       text=True, bufsize=1)
        try:
            self.p.wait(0.5)
        except subprocess.TimeoutExpired:    # running, as it should
            threading.Thread(target=self._read, daemon=True).start()
            return
        err.seek(0)
        raise Abort("conntrack -E in %s exited: %s" % (router,
                                                       err.read().strip()))

    def _read(self):
        for line in self.p.stdout:
            t = time.time()
            m = re.search(r"^\[(\d+\.\d+)\]", line)
            if m:
                t = float(m.group(1))
            m = re.search(r"src=(\S+)", line)
            if m and m.group(1) == self.src:
                with self.cv:
                    self.times.append(t)
                    self.cv.notify_all()

    def first_after(self, t0, timeout):
        def f():
            return next((t for t in self.times if t >= t0), None)
        with self.cv:
            self.cv.wait_for(lambda: f() is not None, timeout)
            return f()


def sc_flush(d, lst, scn):
    router = DEV_ROUTER[lst.home]
    mon = CtMonitor(router, DEV_ADDR[lst.home])
    t = d.mail(lst.user)
    f = lst.wait_push(t, 5)
    if not check(scn, "first push", f is not None):
        return
    t1 = f.get("t", f["t_read"])
    for n, at in enumerate(FLUSH_AT, 1):
        time.sleep(max(0, t1 + at - time.time()))
        if not flush_once(d, lst, "%s #%d (%d s)" % (scn, n, at), router,
                          mon):
            return


def flush_once(d, lst, scn, router, mon):
    tf = time.time()
    nsx(router, "conntrack", "-F")
    time.sleep(0.2)
    t = d.mail(lst.user)
    tn = mon.first_after(tf, NEXT_BOUND)
    if not check(scn, "client sends again within %d s of the flush" %
                 NEXT_BOUND, tn is not None,
                 "after %.1f s" % (tn - tf) if tn else "nothing from %s" %
                 DEV_ADDR[lst.home]):
        f = lst.wait_push(t, 0)
        return check(scn, "owed push delivered", f is not None,
                     "not delivered" if f is None else "")
    f = lst.wait_push(t, max(0.1, tn + 5 - time.time()))
    if f is None:
        return check(scn, "owed push within %.0f s of the client's next "
                     "datagram" % PUSH_BOUND, False, "no push within 5 s of it")
    ta = f.get("t", f["t_read"])
    # conntrack -E stamps an event when it reads it, which may be a few
    # milliseconds after the packet on a busy machine
    check(scn, "push held up by the router until the client sent",
          ta >= tn - 0.1, "push %.3f s after the flush" % (ta - tf))
    return check(scn, "owed push within %.0f s of the client's next datagram"
                 % PUSH_BOUND, ta - tn <= PUSH_BOUND,
                 "datagram %.1f s after the flush, push %.3f s after it"
                 % (tn - tf, ta - tn))


def sc_testbed():
    scn = "testbed"
    r, h = "r2", "h2"
    sport = 40000 + os.getpid() % 20000
    # one datagram, never answered (nothing listens on port 9)
    nsx(h, "python3", "-c",
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
        "s.bind(('', %d)); s.sendto(b'x', ('%s', 9))" % (sport, SRV4))
    out = nsx(r, "conntrack", "-L", "-p", "udp", "--orig-src", DEV_ADDR[h],
              "--orig-port-src", str(sport), check_rc=False).stdout
    m = re.search(r"^udp\s+\d+\s+(\d+)\s", out, re.M)
    check(scn, "r2 tracks a new UDP flow for at most %d s" % NAT_TIMEOUT,
          m is not None and int(m.group(1)) <= NAT_TIMEOUT,
          "timeout %s s" % (m.group(1) if m else "?"))
    time.sleep(NAT_TIMEOUT + 2)
    out = nsx(r, "conntrack", "-L", "-p", "udp", "--orig-src", DEV_ADDR[h],
              "--orig-port-src", str(sport), check_rc=False).stdout
    check(scn, "r2 forgot it %d s later" % (NAT_TIMEOUT + 2),
          not re.search(r"^udp", out, re.M))


def run_thread(fn, *args):
    def body():
        try:
            fn(*args)
        except Exception as e:     # a broken scenario is a failed one
            check(fn.__name__, "ran to the end", False, repr(e))
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


# ---- main -----------------------------------------------------------------

def cleanup():
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(5)
        except Exception:
            pass
    for n in reversed(namespaces):
        # anything still inside one of our namespaces was started by us
        r = subprocess.run(["ip", "netns", "pids", n], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", n], stderr=subprocess.DEVNULL)
    if tmpdir and os.environ.get("NAT_KEEP") is None:
        shutil.rmtree(tmpdir, ignore_errors=True)


def on_signal(sig, frame):
    raise Abort("interrupted by signal %d (or out of time)" % sig)


def reap_stale():
    """Namespaces of an earlier run of this script that died by -9."""
    r = subprocess.run(["ip", "netns", "list"], text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in r.stdout.splitlines():
        m = re.match(r"^(mpnat-(\d+)-\S+)", line)
        if m and not os.path.exists("/proc/" + m.group(2)):
            subprocess.run(["ip", "netns", "del", m.group(1)],
                           stderr=subprocess.DEVNULL)


def main():
    global tmpdir
    if len(sys.argv) != 2:
        print("usage: test/nat/nat.py BUILD_DIR", file=sys.stderr)
        return 64
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    build = os.path.abspath(sys.argv[1])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                signal.SIGALRM):
        signal.signal(sig, on_signal)
    signal.alarm(SILENCE + 150)     # the whole run is bounded
    reap_stale()
    tmpdir = tempfile.mkdtemp(prefix="mailpush-nat.")
    try:
        build_network()
        log("network: %d namespaces" % len(namespaces))
        d = Daemon(root, build)
        s4 = "%s:%d" % (SRV4, PORT)
        s6 = "[%s]:%d" % (SRV6, PORT)
        ls = {
            "h1a": Listener(d, "alice", "alice-a", "h1a", s4),
            "h1b": Listener(d, "alice", "alice-b", "h1b", s4),
            "h2": Listener(d, "silent4", "silent4", "h2", s4),
            "h3": Listener(d, "flush4", "flush4", "h3", s4),
            "h6": Listener(d, "silent6", "silent6", "h6", s6),
            "h7": Listener(d, "flush6", "flush6", "h7", s6),
            "h6a": Listener(d, "pair6", "pair6-a", "h6", s6),
            "h6b": Listener(d, "pair6", "pair6-b", "h6", s6),
        }
        for h, lst in ls.items():
            if not lst.wait_registered():
                raise Abort("the listener on %s did not register" % h)
        log("listeners registered; scenarios start")
        threads = [
            run_thread(sc_two_devices, d, ls["h1a"], ls["h1b"],
                       "two-devices4"),
            run_thread(sc_two_devices, d, ls["h6a"], ls["h6b"],
                       "two-devices6"),
            run_thread(sc_roam, d, s4),
            run_thread(sc_silence, d, ls["h2"], "silence4"),
            run_thread(sc_silence, d, ls["h6"], "silence6"),
            run_thread(sc_flush, d, ls["h3"], "flush4"),
            run_thread(sc_flush, d, ls["h7"], "flush6"),
            run_thread(sc_testbed),
        ]
        for t in threads:
            t.join()
        for f in FW_ROUTERS:
            out = nsx("f%d" % f, "nft", "list", "counter", "inet", "fw",
                      "new_inbound", check_rc=False).stdout
            m = re.search(r"packets (\d+)", out)
            log("f%d dropped %s new inbound packets" %
                (f, m.group(1) if m else "?"))
    except Abort as e:
        check("run", "completed", False, str(e))
    finally:
        signal.alarm(0)
        cleanup()
    failed = [r for r in results if not r[2]]
    print("nat: %d checks, %d failed, %.0f s (silence %d s)" %
          (len(results), len(failed), time.time() - T0, SILENCE))
    for r in failed:
        print("nat: FAILED %s: %s%s" % (r[0], r[1],
                                        " (%s)" % r[3] if r[3] else ""))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
