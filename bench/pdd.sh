#!/usr/bin/env bash
# Post-dial delay added by sipbridge at a given rate: bench/cps.sh's load (the shared
# harness, SIPp UAC 127.0.0.1:5080 -> sipbridge 127.0.0.1:5060 -> SIPp UAS 127.0.0.1:5070,
# every call relayed), with dumpcap capturing only the INVITEs and 180s on port 5060.
# The kernel filter drops everything else, so the capture costs little even at
# thousands of calls per second (a full capture of the run saturates this machine and
# measures itself). bench/pdd.py then gives, per call, the caller leg's INVITE->180
# minus the callee leg's: the time sipbridge added.
#
#   bash bench/pdd.sh [RATE=2000] [DURATION=10]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-2000}
DURATION=${2:-10}
OUT=$(realpath -m "bench/results/pdd-$(date +%Y%m%d-%H%M%S)")
mkdir -p "$OUT"
PCAP=$OUT/invite-180.pcapng
# UDP payload starting "INVI" (a request INVITE) or with "180 " after "SIP/2.0 ".
FILTER='udp port 5060 and (udp[8:4] = 0x494e5649 or udp[16:4] = 0x31383020)'
dumpcap -q -i lo -s 1500 -B 64 -f "$FILTER" -w "$PCAP" 2>"$OUT/dumpcap.log" &
CAP=$!
trap 'kill $CAP 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$PCAP" ] && break; sleep 0.1; done
bash bench/cps.sh "$RATE" "$DURATION" --out "$OUT/cps" | tee "$OUT/cps.txt"
sleep 1
kill -INT $CAP; wait $CAP || true
grep -E "dropped|Packets" "$OUT/dumpcap.log" || true
python3 bench/pdd.py "$PCAP" | tee "$OUT/pdd.txt"
