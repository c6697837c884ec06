//! media-relay: the sans-IO half of sipbridge's RTP relay.
//!
//! It decides, and the I/O layer (`sip_tokio::relay`) does: this crate owns no socket,
//! reads no clock and draws no random number (`../shared/design/ARCHITECTURE.md`).
//!
//! - [`PortPool`]: even RTP ports (RTCP = RTP + 1) from the `[media] ports` range, handed
//!   out least-recently-released first.
//! - [`Session`]: one call's two legs. Feed it every received packet with
//!   [`Session::handle_packet`] and carry out the [`Forward`] it returns; drain
//!   [`Session::poll_event`] after each; sleep until [`Session::poll_timeout`] and call
//!   [`Session::handle_timeout`]. Its docs state the latching rules (which sources are
//!   forwarded) and the inactivity rule.
//! - [`rtp`]: RFC 3550 §5.1 header parsing and RFC 5761 §4 RTP/RTCP demultiplexing.
//! - Media features that need the media in the relay (DIRECT_MEDIA.md "Re-anchoring"),
//!   per leg, fed by the session with the packets it accepts: [`Recorder`] (G.711 →
//!   16-bit PCM with gap filling, [`Session::start_recording`], the samples in
//!   [`Session::audio`]; [`g711`] and the [`wav`] header for the I/O layer to write) and
//!   [`DtmfDetector`] (RFC 4733 telephone events → [`RelayEvent::Dtmf`]), both reading
//!   payload types through the leg's [`PayloadMap`] ([`Session::set_payload_types`]).
//! - Payload-type translation: each leg numbers its codecs as its own offer/answer
//!   decided (RFC 3264 §8.3.2), so a packet forwarded from one leg to the other gets the
//!   other leg's number for its codec ([`PayloadTranslation`], built from both legs'
//!   [`Format`]s; [`Session::set_payload_translation`]; the I/O layer writes it with
//!   [`Forward::apply`]).
//!
//! Time is a [`std::time::Duration`] since an epoch the caller picks.
//!
//! ```
//! use media_relay::{Forward, Leg, Session, SessionConfig};
//! use std::time::Duration;
//!
//! let phone_a = "192.0.2.10:4000".parse().unwrap();
//! let phone_b = "198.51.100.20:5000".parse().unwrap();
//! let mut s = Session::new(Duration::ZERO, SessionConfig::default());
//! s.set_remote(Leg::A, Some(phone_a));
//! s.set_remote(Leg::B, Some(phone_b));
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
//! let out = s.handle_packet(Duration::from_millis(20), Leg::A, false, phone_a, &rtp);
//! assert_eq!(out, Some(Forward { leg: Leg::B, rtcp: false, to: phone_b, payload_type: None }));
//! assert_eq!(s.poll_timeout(), Some(Duration::from_millis(20) + Duration::from_secs(60)));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
pub mod dtmf;
pub mod g711;
mod ports;
pub mod recorder;
pub mod rtp;
mod seq;
mod session;
pub mod wav;

pub use codec::{Codec, Format, PayloadMap, PayloadTranslation, DEFAULT_TELEPHONE_EVENT};
pub use dtmf::{Dtmf, DtmfDetector};
pub use ports::PortPool;
pub use recorder::{Recorder, RecorderStats};
pub use session::{Forward, Keepalive, Leg, LegStats, RelayEvent, Session, SessionConfig, KEEPALIVE_SSRC, LATCH_PACKETS};
