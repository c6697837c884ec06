#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/, gitignored: never commit them) with
# the 49 RFC 4475 torture-test messages from the shared conformance suite.
#
#   bash fuzz/seed.sh            # from the repo root (or from anywhere)
#
# - datagram: each message as is, one datagram per file.
# - endpoint: each message as a datagram op, repeated, answered, and sent again over
#   TCP (see fuzz_targets/endpoint.rs for the op encoding).
# - stream:   the target reads its first bytes as the cutting pattern (see
#   fuzz_targets/stream.rs), so each message is written with a few prefixes:
#   0x00 (one-byte chunks), 0x01 0x07 (8-byte chunks), 0x03 0x10 0x00 0x3f
#   (chunks of 17, 1, 64) and 0x40 0x00 (one-byte chunks, 256-octet size bound);
#   plus, per message, the message twice with keep-alives in between, since a stream
#   carries several messages.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
src="${RFC4475_DIR:-$root/../shared/conformance/rfc4475}"

shopt -s nullglob
files=("$src"/*.dat)
if [ "${#files[@]}" -eq 0 ]; then
    echo "seed.sh: no .dat files in $src" >&2
    exit 1
fi

mkdir -p "$here/corpus/datagram" "$here/corpus/stream" "$here/corpus/endpoint"
for f in "${files[@]}"; do
    name="$(basename "$f" .dat)"
    cp "$f" "$here/corpus/datagram/rfc4475-$name"
    { printf '\x00'; cat "$f"; } > "$here/corpus/stream/rfc4475-$name-b1"
    { printf '\x01\x07'; cat "$f"; } > "$here/corpus/stream/rfc4475-$name-b8"
    { printf '\x03\x10\x00\x3f'; cat "$f"; } > "$here/corpus/stream/rfc4475-$name-mix"
    { printf '\x40\x00'; cat "$f"; } > "$here/corpus/stream/rfc4475-$name-max256"
    { printf '\x02\x04\x20'; cat "$f"; printf '\r\n\r\n\r\n'; cat "$f"; } > "$here/corpus/stream/rfc4475-$name-two"
    # endpoint: op 0 (datagram, 2-byte length), twice (a retransmission), then answer
    # (op 4), jump the clock (op 2), and the same message over TCP (op 1) in one chunk.
    len=$(stat -c %s "$f")
    hi=$(printf '\\x%02x' $((len >> 8 & 255))); lo=$(printf '\\x%02x' $((len & 255)))
    { printf "\x00$hi$lo"; cat "$f"; printf "\x00$hi$lo"; cat "$f"; printf '\x04\x64\x02\x0a'; printf "\x01\x01$hi$lo"; cat "$f"; printf '\x04\x40\x02\xff'; } > "$here/corpus/endpoint/rfc4475-$name"
done
echo "seed.sh: ${#files[@]} messages from $src -> $here/corpus/{datagram,stream}"
echo "  datagram: $(ls "$here/corpus/datagram" | wc -l) files, stream: $(ls "$here/corpus/stream" | wc -l) files, endpoint: $(ls "$here/corpus/endpoint" | wc -l) files"

# b2bua: a few whole calls in the op encoding of fuzz_targets/b2bua.rs.
mkdir -p "$here/corpus/b2bua"
python3 - "$here/corpus/b2bua" <<'PY'
import sys, os
d = sys.argv[1]
sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
hold = sdp.replace(b"sendrecv", b"sendonly")
inv = lambda body: bytes([6, len(body)]) + body
ans = lambda peer, status, body=b"": bytes([2 if peer == "callee" else 3, (status - 100) >> 8, (status - 100) & 255, len(body)]) + body
req = lambda peer, m, body=b"": bytes([5 if peer == "callee" else 4, m, len(body)]) + body
wait = lambda n: bytes([1, n])
seeds = {
    "basic": inv(sdp) + ans("callee", 180) + ans("callee", 200, sdp) + wait(20) + req("caller", 0) + wait(255),
    "cancel": inv(sdp) + ans("callee", 180) + req("caller", 5) + wait(255),
    "busy": inv(sdp) + ans("callee", 486) + wait(255),
    "hold": inv(sdp) + ans("callee", 200, sdp) + req("callee", 1, hold) + ans("caller", 200, sdp) + req("callee", 0) + wait(255),
    "update": inv(sdp) + ans("callee", 200, sdp) + req("caller", 2, sdp) + ans("callee", 200, sdp) + wait(255),
    "offerless": inv(b"") + ans("callee", 200, sdp) + wait(255),
    "hangup": inv(sdp) + ans("callee", 200, sdp) + bytes([7]) + wait(255),
}
for name, data in seeds.items():
    open(os.path.join(d, name), "wb").write(data)
PY
