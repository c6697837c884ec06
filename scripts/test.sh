#!/usr/bin/env bash
# The whole sipbridge test suite: what a developer runs, and what CI runs (.ci/run).
#
#   bash scripts/test.sh
#
# Needs a Rust toolchain (rustup, Rust >= 1.80) and the shared test data beside the
# checkout (../shared, or SIPBRIDGE_SHARED=/path/to/shared). Installs the Debian packages
# the tests use when run as root and they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

shared=${SIPBRIDGE_SHARED:-$(cd .. && pwd)/shared}
export SIPBRIDGE_SHARED=$shared

step() { printf '\n=== %s\n' "$*"; }

# Debian packages the tests need: SIPp (sip-tester) drives the built binary in
# crates/sipbridge/tests/{e2e,calls}.rs; baresip, sox and its formats are the phones of
# crates/sipbridge/tests/interop.rs (../shared/interop drives them); postgresql is the
# real server crates/sipbridge/tests/common/pg.rs starts for the postgres:// store tests
# (they fail, not skip, without it); sipvicious (svwar, svcrack) attacks the binary in
# crates/sipbridge/tests/security.rs; linphone-cli (linphonec, which lists UPDATE in its
# Allow) is the UPDATE-method phone of tests/interop.rs; tshark brings dumpcap, with which
# ../shared/interop/capture.sh tells direct from relayed RTP in tests/interop.rs.
need_pkgs=(sip-tester baresip-core sox libsox-fmt-all postgresql sipvicious tshark linphone-cli)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "missing Debian packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
fi

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2; exit 1; }

step "RFC 4475 corpus integrity ($shared/conformance/rfc4475)"
[ -f "$shared/conformance/rfc4475/SHA256SUMS" ] || { echo "shared test data not found at $shared" >&2; exit 1; }
(cd "$shared/conformance/rfc4475" && sha256sum --quiet -c SHA256SUMS)

step "formatting"
cargo fmt --all -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "layering: core crates do not depend on tokio"
for c in sip-message sip-core testkit; do
  if cargo tree -p "$c" --edges normal --locked | grep -q '\btokio\b'; then
    echo "$c depends on tokio" >&2
    exit 1
  fi
done

step "docs (rustdoc warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "fuzz targets compile (running them needs cargo-fuzz on nightly: docs/FUZZING.md)"
cargo check --manifest-path fuzz/Cargo.toml --bins --locked --quiet

step "tests"
cargo test --workspace --locked
