//! What the parse benchmark and the `parse_loop` example share: the inputs and the
//! work each parser does per message. Included with `#[path]` by both.

#![allow(dead_code)]

use bytes::Bytes;
use rsip::prelude::*;
use sip_message::Message;
use std::hint::black_box;
use std::path::PathBuf;

/// A typical INVITE from a desk phone: 1 Via with branch and rport, display names,
/// an SDP offer with five payload types. Content-Length is the exact body length (checked at
/// start-up).
pub const INVITE: &[u8] = include_bytes!("../data/invite.sip");

/// A typical 200 OK to [`INVITE`] after one proxy: two Via rows (with `received`
/// and a filled-in `rport`), a Record-Route, a Contact, a To tag, and an SDP answer.
pub const OK_200: &[u8] = include_bytes!("../data/ok200.sip");

/// A heap-allocated, reference-counted buffer like the one a socket read gives the
/// server (not `Bytes::from_static`, whose clones and slices skip the reference count
/// and would flatter a zero-copy parser).
pub fn datagram(wire: &[u8]) -> Bytes {
    Bytes::copy_from_slice(wire)
}

/// What `sip-message` does per iteration: parse (which extracts the core headers),
/// then read the top Via branch and the From and To tags. Received parameter lists are
/// read in place on access, so the reads every message gets from the transaction and
/// dialog layers are counted here; rsip's typed forms hold them already parsed.
pub fn sip_message_parse(input: &Bytes) -> Result<Message, sip_message::ParseError> {
    let m = Message::parse(input.clone())?;
    black_box((m.via().branch(), m.from().tag(), m.to().tag()));
    Ok(m)
}

/// The typed headers `rsip` is asked for, the counterpart of `sip-message`'s core.
pub struct RsipCore<'a> {
    pub via: rsip::typed::Via,
    pub from: rsip::typed::From,
    pub to: rsip::typed::To,
    pub call_id: &'a str,
    pub cseq: rsip::typed::CSeq,
    pub max_forwards: Option<u32>,
    pub contacts: Vec<rsip::typed::Contact>,
    pub routes: Vec<rsip::typed::Route>,
    pub record_routes: Vec<rsip::typed::RecordRoute>,
    pub content_type: Option<rsip::typed::ContentType>,
}

/// Converts the rows `sip-message` extracts at parse time into `rsip`'s typed forms,
/// in one pass over the rows.
pub fn rsip_core(msg: &rsip::SipMessage) -> Result<RsipCore<'_>, rsip::Error> {
    use rsip::Header;
    let (mut via, mut from, mut to, mut call_id, mut cseq) = (None, None, None, None, None);
    let (mut max_forwards, mut content_type) = (None, None);
    let (mut contacts, mut routes, mut record_routes) = (Vec::new(), Vec::new(), Vec::new());
    for h in msg.headers().iter() {
        match h {
            Header::Via(v) if via.is_none() => via = Some(v.typed()?),
            Header::From(v) => from = Some(v.typed()?),
            Header::To(v) => to = Some(v.typed()?),
            Header::CallId(v) => call_id = Some(v.value()),
            Header::CSeq(v) => cseq = Some(v.typed()?),
            Header::MaxForwards(v) => max_forwards = Some(v.num()?),
            Header::Contact(v) => contacts.push(v.typed()?),
            Header::Route(v) => routes.push(v.typed()?),
            Header::RecordRoute(v) => record_routes.push(v.typed()?),
            Header::ContentType(v) => content_type = Some(v.typed()?),
            _ => {}
        }
    }
    Ok(RsipCore {
        via: via.ok_or_else(|| rsip::Error::missing_header("Via"))?,
        from: from.ok_or_else(|| rsip::Error::missing_header("From"))?,
        to: to.ok_or_else(|| rsip::Error::missing_header("To"))?,
        call_id: call_id.ok_or_else(|| rsip::Error::missing_header("Call-ID"))?,
        cseq: cseq.ok_or_else(|| rsip::Error::missing_header("CSeq"))?,
        max_forwards,
        contacts,
        routes,
        record_routes,
        content_type,
    })
}

/// What `rsip` does per iteration: parse, then convert the core headers.
pub fn rsip_parse(input: &Bytes) -> Result<(), rsip::Error> {
    let msg = rsip::SipMessage::try_from(&input[..])?;
    let core = rsip_core(&msg)?;
    black_box(&core);
    black_box(&msg);
    Ok(())
}

/// Reads RFC 4475 `longreq` from the shared conformance corpus, which lives outside
/// this repository: `$SIPBRIDGE_SHARED/conformance/rfc4475/longreq.dat`, by default
/// `../shared` beside the workspace (the same rule as `tests/rfc4475.rs`).
pub fn load_longreq() -> Bytes {
    let path = std::env::var_os("SIPBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
        .join("conformance/rfc4475/longreq.dat");
    match std::fs::read(&path) {
        Ok(data) => Bytes::from(data),
        Err(e) => panic!(
            "cannot read the RFC 4475 `longreq` message at {}: {e}. The benchmark needs the shared \
             conformance corpus (../shared/conformance/rfc4475/ beside the workspace, or set \
             SIPBRIDGE_SHARED to the shared/ folder); it is not part of this repository and must \
             not be copied into it.",
            path.display()
        ),
    }
}

/// The compact header names that occur in `longreq`, spelled in full (RFC 3261 §7.3.3).
fn full_name(name: &[u8]) -> &[u8] {
    match name {
        b"v" | b"V" => b"Via",
        b"f" | b"F" => b"From",
        b"t" | b"T" => b"To",
        b"i" | b"I" => b"Call-ID",
        b"m" | b"M" => b"Contact",
        b"l" | b"L" => b"Content-Length",
        b"c" | b"C" => b"Content-Type",
        other => other,
    }
}

/// Rewrites the header section so that `rsip` 0.4 can tokenize it: white space between
/// a header name and its colon is removed and compact names are spelled in full. The
/// start line, the header values and the body are unchanged. No folded rows are
/// expected (there are none in `longreq`).
pub fn normalize_for_rsip(msg: &[u8]) -> Bytes {
    let split = msg.windows(4).position(|w| w == b"\r\n\r\n").expect("longreq has an empty line after its headers");
    let (head, body) = msg.split_at(split + 4);
    let mut out = Vec::with_capacity(msg.len());
    for (i, line) in head[..head.len() - 4].split(|&c| c == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if i > 0 {
            let colon = line.iter().position(|&c| c == b':').expect("every header row of longreq has a colon");
            let name = line[..colon].trim_ascii_end();
            out.extend_from_slice(full_name(name));
            out.extend_from_slice(&line[colon..]);
        } else {
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}
