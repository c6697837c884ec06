//! The printer: canonical RFC 8866 order, single spaces, CRLF.

use std::fmt::Write;

use crate::model::{media_rank, session_rank, Attribute, Connection, Line, Media, SessionDescription};

pub(crate) fn print(sdp: &SessionDescription) -> String {
    let mut out = String::with_capacity(512);
    let o = &sdp.origin;
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
        o.username, o.session_id, o.session_version, o.address_type, o.address, sdp.session_name
    );
    let (before, after): (Vec<&Line>, Vec<&Line>) = sdp.lines.iter().partition(|l| session_rank(l.kind).is_some_and(|r| r < 4));
    before.iter().for_each(|l| line(&mut out, l));
    if let Some(c) = &sdp.connection {
        connection(&mut out, c);
    }
    after.iter().for_each(|l| line(&mut out, l));
    sdp.attributes.iter().for_each(|a| attribute(&mut out, a));
    sdp.media.iter().for_each(|m| media(&mut out, m));
    out
}

fn media(out: &mut String, m: &Media) {
    let _ = write!(out, "m={} {}", m.media_type, m.port);
    if let Some(n) = m.port_count {
        let _ = write!(out, "/{n}");
    }
    let _ = write!(out, " {}", m.proto);
    for f in &m.formats {
        let _ = write!(out, " {f}");
    }
    out.push_str("\r\n");
    let (before, after): (Vec<&Line>, Vec<&Line>) = m.lines.iter().partition(|l| media_rank(l.kind).is_some_and(|r| r < 1));
    before.iter().for_each(|l| line(out, l));
    if let Some(c) = &m.connection {
        connection(out, c);
    }
    after.iter().for_each(|l| line(out, l));
    m.attributes.iter().for_each(|a| attribute(out, a));
}

fn line(out: &mut String, l: &Line) {
    let _ = write!(out, "{}={}\r\n", l.kind, l.value);
}

fn connection(out: &mut String, c: &Connection) {
    let _ = write!(out, "c=IN {} {}\r\n", c.address_type, c.address);
}

fn attribute(out: &mut String, a: &Attribute) {
    match &a.value {
        Some(v) => {
            let _ = write!(out, "a={}:{}\r\n", a.name, v);
        }
        None => {
            let _ = write!(out, "a={}\r\n", a.name);
        }
    }
}
