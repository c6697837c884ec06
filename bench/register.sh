#!/usr/bin/env bash
# REGISTER with digest authentication per second over UDP with SIPp, against the release
# binary with its SQLite store.
#
#   bash bench/register.sh [RATES] [SECONDS] [USERS]   # default: 500,1000,2000,4000 for 10 s, 1000 users
#
# For each rate: a fresh sipbridge (release, log level warn, [store] sqlite in the results
# folder, USERS dynamic endpoints u0..u(USERS-1) with secrets, MD5 challenge first since
# SIPp 3.6 knows only MD5, qualify off so no OPTIONS go to SIPp) on 127.0.0.1:5072; one
# SIPp client (crates/sipbridge/tests/sipp/register.xml, the scenario the tests use)
# registering RATE times per second (REGISTER, 401, authenticated REGISTER, 200: two
# transactions, a fresh Call-ID and nonce each, one store write) for SECONDS seconds;
# then a summary line: offered rate, complete registrations, failed ones, the rate SIPp
# achieved, and sipbridge's CPU time per registration. SIPp 3.6 cannot take credentials
# from an injection file ([authentication username=[field0]] comes out empty), so all
# registrations are u0's, each with its own Call-ID: the work per REGISTER is the same,
# the other USERS only make the endpoint table realistic.
set -euo pipefail
cd "$(dirname "$0")/.."
rates=${1:-500,1000,2000,4000}
secs=${2:-10}
users=${3:-1000}
port=5072
out=bench/results/register-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$out"
cargo build -q --release -p sipbridge
bin=target/release/sipbridge
tick=$(getconf CLK_TCK)
printf '%-8s %-10s %-8s %-10s %-14s\n' rate ok failed achieved cpu_us/reg | tee "$out/summary.txt"
for rate in ${rates//,/ }; do
  total=$((rate * secs))
  cfg="$out/sipbridge-$rate.toml"
  {
    printf '[sip]\nlisten = ["udp:127.0.0.1:%s"]\n[log]\nlevel = "warn"\n[api]\nlisten = ""\n' "$port"
    printf '[store]\nurl = "sqlite:%s/store-%s.db"\n' "$out" "$rate"
    printf '[auth]\nalgorithms = ["MD5", "SHA-256"]\n'
    for i in $(seq 0 $((users - 1))); do
      printf '[[endpoint]]\nname = "u%s"\nsecret = "pw-%s"\nhost = "dynamic"\nqualify = false\n' "$i" "$i"
    done
  } > "$cfg"
  "$bin" --config "$cfg" 2> "$out/sipbridge-$rate.log" &
  pid=$!
  sleep 1
  cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  sipp -sf crates/sipbridge/tests/sipp/register.xml 127.0.0.1:$port -i 127.0.0.1 -p 5092 -au u0 -ap pw-0 -set user u0 -set expires 3600 \
       -m "$total" -r "$rate" -l 100000 \
       -timeout $((secs * 3 + 10)) -nostdin > "$out/sipp-$rate.log" 2>&1 || true
  cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  kill -TERM $pid; wait $pid || true
  ok=$(grep -a "Successful call" "$out/sipp-$rate.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
  failed=$(grep -a "Failed call" "$out/sipp-$rate.log" | tail -1 | awk -F'|' '{print $3}' | tr -d ' ')
  achieved=$(grep -a "Call Rate" "$out/sipp-$rate.log" | tail -1 | awk -F'|' '{print $3}' | awk '{print $1}')
  cpu_us=$(python3 -c "import sys; print(round((int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3])*1e6/max(1,int(sys.argv[4] or 0)),1))" "$cpu0" "$cpu1" "$tick" "${ok:-0}")
  printf '%-8s %-10s %-8s %-10s %-14s\n' "$rate" "${ok:-0}" "${failed:-0}" "${achieved:-0}" "$cpu_us" | tee -a "$out/summary.txt"
done
echo "results in $out"
