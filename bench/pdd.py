#!/usr/bin/env python3
"""Post-dial delay added by sipbridge, from a capture made by bench/pdd.sh.

The capture holds only INVITEs and 180s on sipbridge's port (5060), so that capturing
costs little at thousands of calls per second. For every call:

  A = caller's INVITE reaching sipbridge -> 180 leaving sipbridge to the caller (port 5080)
  B = sipbridge's INVITE leaving to the callee -> the callee's 180 reaching sipbridge (5070)
  added = A - B: what sipbridge's two passes (the INVITE out, the 180 back) cost the call,
          also shown split into the two passes

The two legs have different Call-IDs (a B2BUA's own dialog on each side), so the legs are
paired in order of their first INVITE: one engine thread forwards INVITEs in the order
they arrive. A pairing is counted only if B's INVITE leaves after A's arrives and B's 180
arrives before A's 180 leaves; the others are reported as unpaired. The percentiles of A
and B on their own are printed too, as a check that needs no pairing.

    python3 bench/pdd.py CAPTURE.pcapng [--caller-port 5080] [--callee-port 5070]

Needs tshark. Python 3 standard library only.
"""

import argparse
import subprocess
import sys


def pct(vals, q):
    if not vals:
        return float("nan")
    vals = sorted(vals)
    k = max(0, min(len(vals) - 1, int(round(q / 100.0 * len(vals) + 0.5)) - 1))
    return vals[k]


def legs(capture, port):
    """Per Call-ID on the leg whose far end is `port`: first INVITE time, first 180 time."""
    cmd = ["tshark", "-r", capture, "-Y", "sip && udp.port == %d" % port, "-T", "fields", "-E", "separator=\t",
           "-e", "frame.time_epoch", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.Call-ID"]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
    invite, ringing = {}, {}
    for line in out.decode(errors="replace").splitlines():
        p = line.split("\t")
        if len(p) < 4 or not p[3]:
            continue
        t, method, status, cid = float(p[0]), p[1], p[2], p[3]
        if method == "INVITE":
            invite.setdefault(cid, t)
        elif status == "180":
            ringing.setdefault(cid, t)
    return [(invite[c], ringing[c]) for c in invite if c in ringing]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--caller-port", type=int, default=5080)
    ap.add_argument("--callee-port", type=int, default=5070)
    args = ap.parse_args()
    a = sorted(legs(args.capture, args.caller_port))
    b = sorted(legs(args.capture, args.callee_port))
    if not a or not b:
        sys.exit("no complete INVITE/180 pairs in %s" % args.capture)
    added, invite_pass, ringing_pass, unpaired = [], [], [], 0
    for (ai, ar), (bi, br) in zip(a, b):
        if bi >= ai and br <= ar:
            added.append((ar - ai) - (br - bi))
            invite_pass.append(bi - ai)
            ringing_pass.append(ar - br)
        else:
            unpaired += 1
    unpaired += abs(len(a) - len(b))
    ms = lambda v: "%.3f" % (v * 1000.0)
    da = [r - i for i, r in a]
    db = [r - i for i, r in b]
    print("calls caller_leg=%d callee_leg=%d paired=%d unpaired=%d" % (len(a), len(b), len(added), unpaired))
    rows = (("caller INVITE->180 (A)", da), ("callee INVITE->180 (B)", db), ("added by sipbridge (A-B)", added),
            ("  of which INVITE in->out", invite_pass), ("  of which 180 in->out", ringing_pass))
    for name, vals in rows:
        print("%-26s ms p50 %s  p90 %s  p95 %s  p99 %s  max %s" % (
            name, ms(pct(vals, 50)), ms(pct(vals, 90)), ms(pct(vals, 95)), ms(pct(vals, 99)), ms(max(vals) if vals else float("nan"))))


if __name__ == "__main__":
    main()
