#!/usr/bin/env bash
# Calls per second through the release binary with ../shared/bench's harness: SIPp UAC
# 127.0.0.1:5080 -> sipbridge 127.0.0.1:5060 (bench/b2bua.toml) -> SIPp UAS
# 127.0.0.1:5070; INVITE/180/200/ACK, 1 s hold, BYE/200; every call relayed.
#
#   bash bench/cps.sh [RATES=200,500,1000,1500,2000,3500] [DURATION=10] [extra run_bench.py args]
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${1:-200,500,1000,1500,2000,3500}
DURATION=${2:-10}
shift $(( $# > 2 ? 2 : $# ))
cargo build --release -p sipbridge -q
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/sipbridge")
CFG=$(realpath bench/b2bua.toml)
OUT=$(realpath -m "bench/results/cps-$(date +%Y%m%d-%H%M%S)")
cd "${SIPBRIDGE_SHARED:-../shared}/bench"
./run_bench.py 127.0.0.1:5060 --element-cmd "$BIN --config $CFG" --rates "$RATES" --duration "$DURATION" \
  --label sipbridge --out "$OUT" "$@"
