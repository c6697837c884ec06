//! `/metrics` in the Prometheus text exposition format, version 0.0.4.

use crate::calls::RelayTotals;
use sip_core::b2bua::CallStats;
use std::fmt::Write as _;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A snapshot of the engine's counters, taken on the engine task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Calls that have not ended.
    pub calls_active: u64,
    /// The call layer's counters.
    pub calls: CallStats,
    /// Calls refused by policy (403, 404, 480) before a leg was set up.
    pub calls_refused: u64,
    /// Live transactions.
    pub transactions: u64,
    /// `Endpoint::stats`: messages received.
    pub received: u64,
    /// Retransmitted requests absorbed by a server transaction.
    pub retransmissions_absorbed: u64,
    /// Requests answered 400 (or similar) because they did not parse.
    pub parse_errors: u64,
    /// Responses dropped (unparseable, or matching no transaction).
    pub responses_dropped: u64,
    /// The RTP relay's totals.
    pub relay: RelayTotals,
    /// Digest authentication and the guard.
    pub auth: AuthCounters,
    /// Registered contacts now.
    pub registrations: u64,
    /// Qualified endpoints by state: reachable, lagged, unreachable, unknown.
    pub endpoints: [u64; 4],
    /// Calls not ended by media path now: relayed, moving, direct.
    pub media_paths: [u64; 3],
    /// Decisions that kept a call relayed, by blocker label.
    pub blocked: Vec<(&'static str, u64)>,
}

/// Authentication counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthCounters {
    /// Requests that authenticated.
    pub authenticated: u64,
    /// Requests whose credentials failed (wrong password or unknown user alike).
    pub failures: u64,
    /// Answers held back for a throttled source.
    pub throttled: u64,
    /// Requests refused from a banned source.
    pub refused: u64,
    /// Bans imposed.
    pub bans: u64,
    /// Sources banned now.
    pub banned_now: u64,
}

impl Metrics {
    /// The text format: a `# HELP` and `# TYPE` line per metric, then its samples.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let c = &self.calls;
        gauge(&mut out, "sipbridge_calls_active", "Calls in progress (not yet ended).", self.calls_active);
        family(
            &mut out,
            "sipbridge_calls_total",
            "Calls ended, by outcome: completed (answered, then hung up), failed (rejected or not answered), \
             cancelled (by the caller), no_reply (a critical request got no answer).",
            "counter",
            &[
                ("outcome=\"completed\"", c.completed),
                ("outcome=\"failed\"", c.failed),
                ("outcome=\"cancelled\"", c.cancelled),
                ("outcome=\"no_reply\"", c.no_reply),
            ],
        );
        counter(&mut out, "sipbridge_calls_started_total", "Calls the B2BUA created (INVITEs that started a call).", c.calls);
        counter(&mut out, "sipbridge_calls_answered_total", "Calls answered by the called side.", c.answered);
        counter(
            &mut out,
            "sipbridge_calls_refused_total",
            "Calls refused by policy (403, 404, 480) before the outbound leg.",
            self.calls_refused,
        );
        counter(
            &mut out,
            "sipbridge_glare_491_sent_total",
            "491 Request Pending answers sent (re-INVITE glare, RFC 3261 §14.2).",
            c.glare_491_sent,
        );
        counter(
            &mut out,
            "sipbridge_glare_491_received_total",
            "491 answers received to our media-path re-INVITEs and UPDATEs.",
            c.glare_491_received,
        );
        let p = &self.media_paths;
        family(
            &mut out,
            "sipbridge_calls_media",
            "Calls in progress by media path: through the relay, moving, or direct between the endpoints.",
            "gauge",
            &[("path=\"relayed\"", p[0]), ("path=\"moving\"", p[1]), ("path=\"direct\"", p[2])],
        );
        counter(&mut out, "sipbridge_direct_media_switches_total", "Calls whose media went direct (each time).", c.direct_switches);
        counter(&mut out, "sipbridge_media_reanchors_total", "Media brought back to the relay from direct.", c.re_anchors);
        counter(&mut out, "sipbridge_media_requests_total", "re-INVITEs and UPDATEs sent to move media.", c.media_requests);
        let blocked: Vec<(String, u64)> = self.blocked.iter().map(|(l, n)| (format!("reason=\"{l}\""), *n)).collect();
        let samples: Vec<(&str, u64)> = blocked.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        family(
            &mut out,
            "sipbridge_direct_media_blocked_total",
            "Media-path decisions that kept a call relayed, by blocker.",
            "counter",
            &samples,
        );
        gauge(&mut out, "sipbridge_transactions", "Live SIP transactions.", self.transactions);
        counter(&mut out, "sipbridge_sip_messages_received_total", "SIP messages received, parsed or not.", self.received);
        counter(
            &mut out,
            "sipbridge_sip_retransmissions_absorbed_total",
            "Retransmitted requests absorbed by a server transaction.",
            self.retransmissions_absorbed,
        );
        counter(
            &mut out,
            "sipbridge_sip_parse_errors_total",
            "Requests answered statelessly because they did not parse.",
            self.parse_errors,
        );
        counter(
            &mut out,
            "sipbridge_sip_responses_dropped_total",
            "Responses dropped: unparseable, or matching no client transaction.",
            self.responses_dropped,
        );
        let r = &self.relay;
        family(
            &mut out,
            "sipbridge_relay_packets_total",
            "RTP/RTCP packets on relay ports: received from endpoints (in) and forwarded (out).",
            "counter",
            &[("direction=\"in\"", r.packets_in), ("direction=\"out\"", r.packets_out)],
        );
        counter(
            &mut out,
            "sipbridge_relay_lost_packets_total",
            "RTP packets missing from the senders' sequence numbers (RFC 3550 A.3).",
            r.lost,
        );
        gauge(&mut out, "sipbridge_relay_calls", "Calls with relay ports open.", r.open_calls);
        gauge(&mut out, "sipbridge_relay_free_port_pairs", "RTP/RTCP port pairs left in [media] ports.", r.free_pairs);
        let a = &self.auth;
        family(
            &mut out,
            "sipbridge_auth_total",
            "Digest authentications, by result: ok, or failed (wrong password and unknown user alike).",
            "counter",
            &[("result=\"ok\"", a.authenticated), ("result=\"failed\"", a.failures)],
        );
        counter(
            &mut out,
            "sipbridge_auth_throttled_total",
            "Answers held back [auth] throttle_ms for a source that keeps failing.",
            a.throttled,
        );
        counter(&mut out, "sipbridge_auth_refused_total", "Requests refused with 403 from a banned source.", a.refused);
        counter(&mut out, "sipbridge_auth_bans_total", "Sources banned after [auth] ban_after failures.", a.bans);
        gauge(&mut out, "sipbridge_auth_banned_sources", "Sources refused now.", a.banned_now);
        gauge(&mut out, "sipbridge_registrations", "Registered contacts.", self.registrations);
        let e = &self.endpoints;
        family(
            &mut out,
            "sipbridge_endpoints",
            "Qualified endpoints (qualify = true, with a contact) by OPTIONS state.",
            "gauge",
            &[("state=\"reachable\"", e[0]), ("state=\"lagged\"", e[1]), ("state=\"unreachable\"", e[2]), ("state=\"unknown\"", e[3])],
        );
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, help, "counter", &[("", value)]);
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, help, "gauge", &[("", value)]);
}

/// One metric family; each sample is `(labels without braces, value)`.
fn family(out: &mut String, name: &str, help: &str, kind: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_has_help_and_type_before_it() {
        let m = Metrics { calls_active: 2, received: 7, calls: CallStats { completed: 3, ..CallStats::default() }, ..Metrics::default() };
        let text = m.render();
        assert!(text.contains("\nsipbridge_calls_active 2\n"), "{text}");
        assert!(text.contains("\nsipbridge_calls_total{outcome=\"completed\"} 3\n"), "{text}");
        assert!(text.contains("\nsipbridge_sip_messages_received_total 7\n"), "{text}");
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap_or_default();
                assert!(matches!(parts.next(), Some("counter" | "gauge")), "{line}");
                declared.push(name.to_owned());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                assert_eq!(declared.last().map(String::as_str), Some(name), "sample before its TYPE: {line}");
                assert!(line.rsplit(' ').next().is_some_and(|v| v.parse::<u64>().is_ok()), "{line}");
            }
        }
        assert!(declared.iter().filter(|n| n.ends_with("_total")).count() >= 8);
    }
}
