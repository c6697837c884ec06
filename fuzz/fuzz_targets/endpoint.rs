//! The whole sans-IO engine driven by arbitrary input: datagrams, stream chunks on a few
//! connections, connection closes, clock jumps and layer-above answers, interleaved as
//! the input says. Checks: no panic; after `handle_timeout(now)` nothing is due at or
//! before `now` (no busy loop); once every request is answered and 200 s pass, every
//! transaction has ended (nothing leaks).
//!
//! Input: a sequence of ops, each one opcode byte then its operands:
//!   0 len_hi len_lo bytes…   datagram from peer (opcode's high bits pick one of 4 peers)
//!   1 conn len_hi len_lo …   stream chunk on connection conn % 4
//!   2 n                      advance the clock by n × 50 ms and fire timers
//!   3 conn                   the driver closed connection conn % 4
//!   4 code                   answer the oldest unanswered request with 100 + code % 600
//!   5                        cancel the oldest client INVITE we sent
//!   6                        send an INVITE or OPTIONS to peer 0
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_core::sip_message::bytes::Bytes;
use sip_core::sip_message::{Host, Method, NameAddr, RequestBuilder, Transport as MsgTransport, Uri};
use sip_core::{ConnectionId, Endpoint, EndpointConfig, Event, Flow, Time, TransactionId, Transport};
use std::time::Duration;

fn peer(i: u8) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 10 + (i % 4)], 5060))
}

fn local() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 5060))
}

struct Harness {
    ep: Endpoint,
    now: Time,
    pending: Vec<TransactionId>,
    invites: Vec<TransactionId>,
}

impl Harness {
    fn drain(&mut self) {
        loop {
            let mut any = false;
            while self.ep.poll_transmit().is_some() {
                any = true;
            }
            while let Some(e) = self.ep.poll_event() {
                any = true;
                match e {
                    Event::Request { tx, .. } => self.pending.push(tx),
                    Event::Cancelled { tx } => {
                        let _ = self.ep.reply(self.now, tx, 487, vec![]);
                    }
                    _ => {}
                }
            }
            if !any {
                return;
            }
        }
        }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        while let Some(t) = self.ep.poll_timeout() {
            if t > self.now {
                break;
            }
            self.ep.handle_timeout(self.now);
            self.drain();
            assert!(self.ep.poll_timeout().is_none_or(|t| t > self.now), "a deadline at or before now survived handle_timeout");
        }
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (a, b) = data.split_at(n);
    *data = b;
    a
}

fuzz_target!(|input: &[u8]| {
    let config = EndpointConfig { listeners: vec![(Transport::Udp, local()), (Transport::Tcp, local())], ..Default::default() };
    let mut h = Harness { ep: Endpoint::new(config), now: Time::ZERO, pending: Vec::new(), invites: Vec::new() };
    let mut data = input;
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        match op & 0x0f {
            0 => {
                let len = take(&mut data, 2);
                let len = len.iter().fold(0usize, |a, &b| a << 8 | b as usize);
                let bytes = Bytes::copy_from_slice(take(&mut data, len));
                let flow = Flow { transport: Transport::Udp, local: local(), remote: peer(op >> 4), connection: None };
                h.ep.handle_datagram(h.now, flow, bytes);
            }
            1 => {
                let conn = take(&mut data, 1).first().copied().unwrap_or(0) % 4;
                let len = take(&mut data, 2).iter().fold(0usize, |a, &b| a << 8 | b as usize);
                let chunk = take(&mut data, len);
                let flow = Flow { transport: Transport::Tcp, local: local(), remote: peer(conn), connection: Some(ConnectionId(conn as u64)) };
                h.ep.handle_stream(h.now, flow, chunk);
            }
            2 => {
                let n = take(&mut data, 1).first().copied().unwrap_or(1);
                h.advance(Duration::from_millis(50 * n as u64));
            }
            3 => {
                let conn = take(&mut data, 1).first().copied().unwrap_or(0) % 4;
                h.ep.handle_connection_closed(h.now, ConnectionId(conn as u64));
            }
            4 => {
                let code = take(&mut data, 1).first().copied().unwrap_or(0);
                if !h.pending.is_empty() {
                    let tx = h.pending.remove(0);
                    let status = 100 + (code as u16 * 7) % 600;
                    let _ = h.ep.reply(h.now, tx, status, vec![]);
                    if status < 200 {
                        h.pending.push(tx);
                    }
                }
            }
            5 => {
                if let Some(tx) = h.invites.first().copied() {
                    let _ = h.ep.cancel(h.now, tx);
                }
            }
            _ => {
                let method = if op & 0x10 == 0 { Method::Invite } else { Method::Options };
                let uri = Uri::parse_str("sip:peer@127.0.0.10:5060").expect("static URI");
                let from = NameAddr::new(Uri::parse_str("sip:sipbridge@127.0.0.1").expect("static URI"));
                let req = RequestBuilder::new(method.clone(), uri).from(from).via(MsgTransport::Udp, Host::Ipv4([127, 0, 0, 1].into()), Some(5060)).build(h.ep.ids());
                if let Ok(req) = req {
                    let flow = Flow { transport: Transport::Udp, local: local(), remote: peer(0), connection: None };
                    if let Ok(tx) = h.ep.send_request(h.now, req, flow) {
                        if method == Method::Invite {
                            h.invites.push(tx);
                        }
                    }
                }
            }
        }
        h.drain();
    }
    // Answer everything still open, then let every timer run out.
    for tx in std::mem::take(&mut h.pending) {
        let _ = h.ep.reply(h.now, tx, 500, vec![]);
    }
    h.drain();
    for _ in 0..40 {
        h.advance(Duration::from_secs(5));
        for tx in std::mem::take(&mut h.pending) {
            let _ = h.ep.reply(h.now, tx, 500, vec![]);
        }
        h.drain();
    }
    assert_eq!(h.ep.transaction_count(), 0, "transactions leaked");
});
