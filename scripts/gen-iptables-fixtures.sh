#!/usr/bin/env bash
# Regenerates test/fixtures/doctor/iptables/* from the real tools (run as root).
# For each rule set <dir>/rules.v4: load it with iptables-restore into a throw-away network
# namespace and save every format the doctor reads. Then, for every case in cases.json, send a
# real connection from a peer namespace through a veth pair and record what the kernel did
# (connected / refused / unreachable / timeout) in kernel-results.json, so the expectations are
# checked against the kernel, not only against our reading of it.
# Addresses exist only inside the namespaces made here; everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../test/fixtures/doctor/iptables"
TAG="nt-ipt-$$"
NODE="$TAG-node"; PEER="$TAG-peer"
LISTENER=""
cleanup() {
  [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null || true
  ip netns del "$NODE" 2>/dev/null || true
  ip netns del "$PEER" 2>/dev/null || true
}
trap cleanup EXIT

for rules in */rules.v4; do
  dir=$(dirname "$rules")
  ip netns add "$NODE"
  ip netns exec "$NODE" iptables-restore < "$rules"
  ip netns exec "$NODE" iptables-save > "$dir/save.txt"
  ip netns exec "$NODE" iptables-save -c > "$dir/save-c.txt"
  ip netns exec "$NODE" iptables -L --line-numbers > "$dir/list.txt"
  ip netns exec "$NODE" iptables -L -n --line-numbers > "$dir/list-n.txt"
  ip netns exec "$NODE" iptables -L -n -v --line-numbers > "$dir/list-nv.txt"
  ip netns exec "$NODE" iptables -L -v --line-numbers > "$dir/list-v.txt"
  ip netns del "$NODE"
done

PROBE='
import socket, sys, errno
src, dst, port, proto = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.bind((src, 0)); s.settimeout(1.5)
try:
    s.connect((dst, port))
    if proto == "udp":
        s.send(b"x"); s.recv(16)
    print("connected")
except socket.timeout: print("timeout")
except ConnectionRefusedError: print("refused")
except OSError as e: print("unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "error:" + errno.errorcode.get(e.errno, str(e.errno)))
'
LISTEN='
import socket, sys
port = int(sys.argv[1])
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("0.0.0.0", port)); t.listen(64)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", port))
import threading
def echo():
    while True:
        data, addr = u.recvfrom(64); u.sendto(data, addr)
threading.Thread(target=echo, daemon=True).start()
while True:
    c, _ = t.accept(); c.close()
'
node_addr=$(python3 -c 'import json;print(json.load(open("cases.json"))["node"])')
echo "{" > kernel-results.json.tmp
first=1
python3 -c 'import json
for c in json.load(open("cases.json"))["cases"]:
    f=c["flags"]; print(c["id"], c["rules"], f["source"], f["port"], f["protocol"], f["inInterface"])' |
while read -r id rules src port proto iface; do
  ip netns add "$NODE"; ip netns add "$PEER"
  ip link add "$iface" netns "$NODE" type veth peer name peer0 netns "$PEER"
  ip -n "$NODE" link set lo up; ip -n "$PEER" link set lo up
  ip -n "$NODE" addr add "$node_addr/16" dev "$iface"; ip -n "$NODE" link set "$iface" up
  ip -n "$PEER" addr add 10.250.0.2/16 dev peer0; ip -n "$PEER" link set peer0 up
  [ "$src" != "10.250.0.2" ] && ip -n "$PEER" addr add "$src/32" dev peer0
  ip -n "$NODE" route add default via 10.250.0.2 dev "$iface"
  ip netns exec "$NODE" iptables-restore < "$rules/rules.v4"
  ip netns exec "$NODE" python3 -c "$LISTEN" "$port" & LISTENER=$!
  sleep 0.3
  result=$(ip netns exec "$PEER" python3 -c "$PROBE" "$src" "$node_addr" "$port" "$proto")
  kill "$LISTENER"; wait "$LISTENER" 2>/dev/null || true; LISTENER=""
  ip netns del "$NODE"; ip netns del "$PEER"
  [ $first -eq 1 ] || echo "," >> kernel-results.json.tmp
  first=0
  printf '  "%s": "%s"' "$id" "$result" >> kernel-results.json.tmp
  echo "$id: $result"
done
echo "" >> kernel-results.json.tmp; echo "}" >> kernel-results.json.tmp
mv kernel-results.json.tmp kernel-results.json
