//! The printer: canonical RFC 8866 order, single spaces, CRLF.
//!
//! Pieces are pushed directly rather than through `write!`: `core::fmt` costs more per
//! line than the line itself, and a call prints several descriptions.

use crate::model::{media_rank, session_rank, Attribute, Connection, Line, Media, SessionDescription};

pub(crate) fn print(sdp: &SessionDescription) -> String {
    let mut out = String::with_capacity(512);
    let o = &sdp.origin;
    out.push_str("v=0\r\no=");
    out.push_str(&o.username);
    out.push(' ');
    push_u64(&mut out, o.session_id);
    out.push(' ');
    push_u64(&mut out, o.session_version);
    out.push_str(" IN ");
    out.push_str(&o.address_type);
    out.push(' ');
    out.push_str(&o.address);
    out.push_str("\r\ns=");
    out.push_str(&sdp.session_name);
    out.push_str("\r\n");
    // The lines before `c=` keep their order, then `c=`, then the rest in order.
    let before = |l: &&Line| session_rank(l.kind).is_some_and(|r| r < 4);
    sdp.lines.iter().filter(before).for_each(|l| line(&mut out, l));
    if let Some(c) = &sdp.connection {
        connection(&mut out, c);
    }
    sdp.lines.iter().filter(|l| !before(l)).for_each(|l| line(&mut out, l));
    sdp.attributes.iter().for_each(|a| attribute(&mut out, a));
    sdp.media.iter().for_each(|m| media(&mut out, m));
    out
}

/// `v` in decimal, as `Display` prints it.
pub(crate) fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf[i..].iter().for_each(|&c| out.push(char::from(c)));
}

fn media(out: &mut String, m: &Media) {
    out.push_str("m=");
    out.push_str(&m.media_type);
    out.push(' ');
    push_u64(out, u64::from(m.port));
    if let Some(n) = m.port_count {
        out.push('/');
        push_u64(out, u64::from(n));
    }
    out.push(' ');
    out.push_str(&m.proto);
    for f in &m.formats {
        out.push(' ');
        out.push_str(f);
    }
    out.push_str("\r\n");
    let before = |l: &&Line| media_rank(l.kind).is_some_and(|r| r < 1);
    m.lines.iter().filter(before).for_each(|l| line(out, l));
    if let Some(c) = &m.connection {
        connection(out, c);
    }
    m.lines.iter().filter(|l| !before(l)).for_each(|l| line(out, l));
    m.attributes.iter().for_each(|a| attribute(out, a));
}

fn line(out: &mut String, l: &Line) {
    out.push(l.kind);
    out.push('=');
    out.push_str(&l.value);
    out.push_str("\r\n");
}

fn connection(out: &mut String, c: &Connection) {
    out.push_str("c=IN ");
    out.push_str(&c.address_type);
    out.push(' ');
    out.push_str(&c.address);
    out.push_str("\r\n");
}

fn attribute(out: &mut String, a: &Attribute) {
    out.push_str("a=");
    out.push_str(&a.name);
    if let Some(v) = &a.value {
        out.push(':');
        out.push_str(v);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_u64_is_display() {
        for v in [0u64, 7, 10, 65535, 3668685307138289340, u64::MAX] {
            let mut s = String::from("x");
            super::push_u64(&mut s, v);
            assert_eq!(s, format!("x{v}"));
        }
    }
}
