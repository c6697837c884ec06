//! What sipbridge does with each request neither the endpoint nor the call layer takes:
//! the endpoint itself answers OPTIONS, parse errors and the §8.2 checks, the call layer
//! ([`crate::calls`]) takes INVITEs and everything in its dialogs; what reaches this
//! layer is answered here so that every request gets an answer.
//!
//! - an INVITE (only when no call layer runs): 404 Not Found;
//! - any request with a To tag: 481 (§12.2.2: no dialog exists);
//! - other out-of-dialog requests the Allow list admits (BYE, UPDATE, INFO): 481;
//! - a CANCELled INVITE: 487 (§9.2).

use crate::config::{self, Config};
use sip_core::sip_message::Method;
use sip_core::{Endpoint, EndpointConfig, Event, Time, TimerConfig, Transport};

/// The engine configuration for `config`: timers, listeners, `Server` value, and a seed
/// the caller draws from the OS so branches and tags are not predictable across runs.
pub fn endpoint_config(config: &Config, seed: u64) -> EndpointConfig {
    let listeners = config
        .sip
        .listen
        .iter()
        .map(|l| {
            let t = match l.transport {
                config::Transport::Udp => Transport::Udp,
                config::Transport::Tcp => Transport::Tcp,
                config::Transport::Tls => Transport::Tls,
            };
            (t, l.addr)
        })
        .collect();
    EndpointConfig {
        timers: TimerConfig { t1: config.timers.t1(), t2: config.timers.t2(), t4: config.timers.t4() },
        user_agent: if config.sip.user_agent.is_empty() { "sipbridge".into() } else { config.sip.user_agent.clone() },
        listeners,
        seed,
        allow: vec![
            Method::Invite,
            Method::Ack,
            Method::Cancel,
            Method::Bye,
            Method::Options,
            Method::Update,
            Method::Info,
            Method::Register,
        ],
        supported: vec!["timer".into()],
        ..EndpointConfig::default()
    }
}

/// The status this build answers a request with (see the module docs).
pub fn answer_for(method: &Method, has_to_tag: bool) -> u16 {
    match method {
        Method::Invite if !has_to_tag => 404,
        _ => 481,
    }
}

/// Handles one engine event: answers requests, logs failures.
pub fn on_event(now: Time, endpoint: &mut Endpoint, event: Event) {
    match event {
        Event::Request { tx, request, source } => {
            let status = answer_for(request.method(), request.to().tag().is_some());
            tracing::debug!(%tx, method = %request.method(), remote = %source.remote, status, "answering");
            if let Err(e) = endpoint.reply(now, tx, status, Vec::new()) {
                tracing::warn!(%tx, error = %e, "could not answer a request");
            }
        }
        Event::Cancelled { tx } => {
            if let Err(e) = endpoint.reply(now, tx, 487, Vec::new()) {
                tracing::debug!(%tx, error = %e, "CANCEL arrived after the final response");
            }
        }
        Event::ServerFailed { tx, reason } => {
            tracing::info!(%tx, ?reason, "server transaction failed (no ACK, or the response could not be sent)")
        }
        Event::Failed { tx, reason } => tracing::info!(%tx, ?reason, status = reason.status(), "no response to a request we sent"),
        Event::Ack { source, .. } => tracing::debug!(remote = %source.remote, "ACK outside any transaction ignored (no dialogs yet)"),
        Event::Response { tx, response } => tracing::debug!(%tx, status = response.status(), "response"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        assert_eq!(answer_for(&Method::Invite, false), 404);
        assert_eq!(answer_for(&Method::Invite, true), 481);
        assert_eq!(answer_for(&Method::Bye, false), 481);
    }

    #[test]
    fn endpoint_config_follows_the_file() {
        let c = Config::from_toml(
            "[sip]\nlisten = [\"udp:127.0.0.1:5099\", \"tcp:127.0.0.1:5099\"]\nuser_agent = \"pbx 1\"\n[timers]\nt1_ms = 200\n",
            "t",
        )
        .expect("config");
        let e = endpoint_config(&c, 7);
        assert_eq!(e.timers.t1, std::time::Duration::from_millis(200));
        assert_eq!(e.listeners.len(), 2);
        assert_eq!(e.listeners[1].0, Transport::Tcp);
        assert_eq!(e.user_agent, "pbx 1");
        assert_eq!(e.seed, 7);
    }
}
