#!/usr/bin/env bash
# RTP relay load: N relayed G.711 calls (50 packets/s of 172 bytes each way per call)
# from loopback phones (127.0.0.2/127.0.0.3) through a relay on 127.0.0.1, ports
# 40000-43999, for SECONDS seconds per N (bounded: at most 900 calls, 120 s).
#
#   bash bench/relay_load.sh [CALLS] [SECONDS]     # default: 100,200,400 for 20 s each
#
# The relay's call tasks run on their own current-thread runtime, on one thread; its CPU
# time is that thread's /proc/thread-self/schedstat. One Markdown table row per N; the
# table is also written to bench/results/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-100,200,400}
secs=${2:-20}
out=bench/results/relay-$(date -u +%Y%m%d-%H%M%S).md
mkdir -p bench/results
cargo build -q --release -p sip-tokio --example relay_load
target=${CARGO_TARGET_DIR:-target}
"$target/release/examples/relay_load" --calls "$calls" --seconds "$secs" | tee "$out"
