#!/bin/bash
# test/nat/run.sh BUILD_DIR: `make nat' (and part of `make e2e'): the real
# mailpushd and mailpush-listen behind Linux NATs and an IPv6 stateful
# firewall in network namespaces; the scenarios are described in nat.py
# beside this file.  Needs root and network namespaces, and skips (exit 0)
# with a message saying so when either is missing.  Installs nftables,
# conntrack and python3 when they are missing.  Takes about NAT_SILENCE
# (default 180) + 20 seconds: every scenario runs inside the one silence
# window.
set -euo pipefail

say() { printf 'nat: %s\n' "$*"; }
[ $# -eq 1 ] || { echo "usage: bash test/nat/run.sh BUILD_DIR" >&2; exit 64; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "$1" && pwd) || { say "FAIL: no build directory $1"; exit 1; }
for p in mailpushd mailpushctl mailpush-hook mailpush-listen; do
	[ -x "$B/$p" ] || { say "FAIL: $B/$p missing (run make first)"; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
	say "SKIPPED: needs root (network namespaces, nftables, conntrack)"
	exit 0
fi

missing=""
for p in nftables conntrack python3 iproute2; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	apt-get update -qq
	# shellcheck disable=SC2086	# a list of names
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $missing >/dev/null
fi

probe=mpnat-$$-probe
if ! ip netns add "$probe" 2>/dev/null; then
	say "SKIPPED: network namespaces unavailable (ip netns add failed)"
	exit 0
fi
ok=1
ip -n "$probe" link add name va type veth peer name vb 2>/dev/null || ok=0
ip netns exec "$probe" nft add table ip t 2>/dev/null || ok=0
ip netns del "$probe"
if [ $ok -eq 0 ]; then
	say "SKIPPED: no veth or nftables inside a network namespace"
	exit 0
fi

exec python3 "$ROOT/test/nat/nat.py" "$B"
