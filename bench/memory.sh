#!/usr/bin/env bash
# Memory per established call: N calls set up at RATE calls/s through the release
# binary (SIPp UAC 127.0.0.1:5080 -> sipbridge 127.0.0.1:5060 -> SIPp UAS
# 127.0.0.1:5070, the shared bench scenarios), all held until every one is up; the
# binary's resident memory with them all up, minus its memory idle, divided by N. The
# sample is taken 40 s after the last call was set up: the INVITE transactions have
# ended (Timer L, 64·T1 = 32 s) and what is left is what an established call costs.
# Every call is relayed (two RTP/RTCP port pairs, four sockets, one relay task).
#
#   bash bench/memory.sh [CALLS=10000] [RATE=500]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
RATE=${2:-500}
SCEN=${SIPBRIDGE_SHARED:-../shared}/bench/scenarios
BIN=${CARGO_TARGET_DIR:-target}/release/sipbridge
OUT=bench/results/memory-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --release -p sipbridge -q
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
"$BIN" --config bench/b2bua.toml 2>"$OUT/sipbridge.log" &
SB=$!
trap 'kill $SB $UAS $UAC 2>/dev/null || true' EXIT
sleep 1
IDLE=$(rss $SB)
SETUP_S=$(( N / RATE ))
HOLD_MS=$(( (SETUP_S + 55) * 1000 ))
sipp -sf "$SCEN/uas.xml" -i 127.0.0.1 -p 5070 -mi 127.0.0.1 -mp 16000 -cp 18881 -nostdin -m "$N" \
  -default_behaviors all,-abortunexp -timeout $(( SETUP_S + 120 ))s >"$OUT/uas.out" 2>&1 &
UAS=$!
sleep 0.5
sipp 127.0.0.1:5060 -sf "$SCEN/uac.xml" -i 127.0.0.1 -p 5080 -mi 127.0.0.1 -mp 16100 -cp 18882 -nostdin \
  -m "$N" -r "$RATE" -d "$HOLD_MS" -timeout $(( SETUP_S + 120 ))s >"$OUT/uac.out" 2>&1 &
UAC=$!
# All calls are up SETUP_S seconds after the start; their INVITE transactions end 32 s
# later; sample the plateau after that.
sleep $(( SETUP_S + 40 ))
PEAK=0
for _ in 1 2 3 4 5; do r=$(rss $SB); [ "$r" -gt "$PEAK" ] && PEAK=$r; sleep 1; done
FDS=$(ls /proc/$SB/fd | wc -l)
wait $UAC || true
wait $UAS || true
OK=$(grep 'Successful call' "$OUT/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
FAILED=$(grep 'Failed call' "$OUT/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
echo "calls=$N rate=$RATE ok=$OK failed=$FAILED idle_rss_kib=$IDLE peak_rss_kib=$PEAK open_fds=$FDS" \
     "per_call_bytes=$(( (PEAK - IDLE) * 1024 / N ))" | tee "$OUT/summary.txt"
