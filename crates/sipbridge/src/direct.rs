//! The direct-media policy of `[[endpoint]]`s as [`sip_core::media_policy`] reads it:
//! `direct_media`, `direct_media_permit`/`deny`, `dtmf_mode`, and the facts of a call the
//! binary knows (relay observations, `[media] verify_media`).

use crate::calls::LegCounters;
use crate::config::{self, DirectMedia, DtmfMode};
use sip_core::media_policy::{DirectMode, IpNet, LegPolicy};

/// `[[endpoint]]`'s direct-media settings for the decision.
pub fn leg_policy(e: &config::Endpoint) -> LegPolicy {
    let nets = |v: &[config::Cidr]| v.iter().filter_map(|c| IpNet::new(c.addr(), c.prefix())).collect();
    LegPolicy {
        name: e.name.clone(),
        mode: match e.direct_media {
            DirectMedia::Yes => DirectMode::Yes,
            DirectMedia::No => DirectMode::No,
            DirectMedia::Nonat => DirectMode::NoNat,
            DirectMedia::Outgoing => DirectMode::Outgoing,
        },
        permit: nets(&e.direct_media_permit),
        deny: nets(&e.direct_media_deny),
        // SIP INFO carries DTMF in signalling, which still passes through us.
        dtmf_rtp: e.dtmf_mode != DtmfMode::Info,
    }
}

/// Whether the relay has heard the leg's endpoint, and from where.
pub fn heard(c: &LegCounters) -> (bool, Option<std::net::SocketAddr>) {
    (c.packets_in > 0, c.latched)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_maps_to_the_decision_inputs() {
        let c = config::Config::from_toml(
            "[[endpoint]]\nname = \"a\"\nhost = \"127.0.0.1:5062\"\ndirect_media = \"nonat\"\ndirect_media_deny = [\"10.0.0.0/8\"]\ndtmf_mode = \"info\"\n\
             [[endpoint]]\nname = \"b\"\nhost = \"127.0.0.1:5064\"\ndirectmedia = \"update,nonat\"\n",
            "t",
        )
        .unwrap();
        let a = leg_policy(&c.endpoints[0]);
        assert_eq!(a.mode, DirectMode::NoNat);
        assert!(a.deny[0].contains("10.1.2.3".parse().unwrap()));
        assert!(a.permit.is_empty());
        assert!(!a.dtmf_rtp);
        let b = leg_policy(&c.endpoints[1]);
        assert_eq!(b.mode, DirectMode::NoNat);
        assert!(b.dtmf_rtp);
    }
}
