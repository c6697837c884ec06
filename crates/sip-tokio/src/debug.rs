//! `sip set debug on`: every message in and out, whole, with its peer.

use sip_core::{ConnectionId, Transport};
use std::net::SocketAddr;

/// Which way a message went.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    In,
    Out,
}

/// Logs one message (or, on a stream, one chunk as read: framing is the engine's job)
/// at `info` on the `sip` target. Lossy UTF-8, so a broken message is still shown.
pub(crate) fn log(direction: Direction, transport: Transport, peer: SocketAddr, connection: Option<ConnectionId>, data: &[u8]) {
    let conn = connection.map(|c| format!(" conn {}", c.0)).unwrap_or_default();
    let head = match direction {
        Direction::In => format!("<--- SIP read from {transport}:{peer}{conn} ({} bytes) --->", data.len()),
        Direction::Out => format!("<--- Transmitting to {transport}:{peer}{conn} ({} bytes) --->", data.len()),
    };
    let dir = match direction {
        Direction::In => "in",
        Direction::Out => "out",
    };
    if data.iter().all(|&c| c == b'\r' || c == b'\n') {
        tracing::info!(target: "sip", direction = dir, %transport, %peer, "{head}\n(keep-alive)");
        return;
    }
    let text = String::from_utf8_lossy(data);
    tracing::info!(target: "sip", direction = dir, %transport, %peer, "{head}\n{text}\n<------------->");
}
