#!/usr/bin/env bash
# OPTIONS per second over UDP with SIPp against the release binary.
#
#   bash bench/options.sh [RATES] [SECONDS]     # default: 2000,5000,10000,20000 for 10 s each
#
# For each rate: a fresh sipbridge (release build, sip_debug off, log level warn) on
# 127.0.0.1:5070, one SIPp client (bench/options.xml) sending RATE OPTIONS per second for
# SECONDS seconds (so RATE × SECONDS in all, bounded), then one summary line: offered
# rate, successful and failed OPTIONS, the rate SIPp achieved, and sipbridge's CPU time
# per OPTIONS from /proc/PID/stat. Results are also written to bench/results/ (ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
rates=${1:-2000,5000,10000,20000}
secs=${2:-10}
port=5070
out=bench/results/options-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$out"
cargo build -q --release -p sipbridge
bin=target/release/sipbridge
cfg="$out/sipbridge.toml"
printf '[sip]\nlisten = ["udp:127.0.0.1:%s"]\n[log]\nlevel = "warn"\n' "$port" > "$cfg"
tick=$(getconf CLK_TCK)
printf '%-8s %-10s %-8s %-12s %-14s\n' rate ok failed achieved cpu_us/options | tee "$out/summary.txt"
for rate in ${rates//,/ }; do
  total=$((rate * secs))
  "$bin" --config "$cfg" 2> "$out/sipbridge-$rate.log" &
  pid=$!
  sleep 0.5
  cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  sipp -sf bench/options.xml 127.0.0.1:$port -i 127.0.0.1 -p 5090 -m "$total" -r "$rate" -l 100000 \
       -timeout $((secs * 3 + 10)) -nostdin -trace_stat -stf "$out/stat-$rate.csv" > "$out/sipp-$rate.log" 2>&1 || true
  cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid || true
  ok=$(grep -a "Successful call" "$out/sipp-$rate.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
  failed=$(grep -a "Failed call" "$out/sipp-$rate.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
  # SIPp's cumulative call rate (successful and failed calls per second over the run).
  achieved=$(grep -a "Call Rate" "$out/sipp-$rate.log" | tail -1 | awk -F'|' '{print $3}' | awk '{print $1}')
  cpu_us=$(python3 -c "import sys; print(round((int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3])*1e6/max(1,int(sys.argv[4] or 0)),1))" "$cpu0" "$cpu1" "$tick" "${ok:-0}")
  printf '%-8s %-10s %-8s %-12s %-14s\n' "$rate" "${ok:-0}" "${failed:-0}" "${achieved:-0}" "$cpu_us" | tee -a "$out/summary.txt"
done
echo "results in $out"
