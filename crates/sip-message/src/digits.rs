//! Numbers, IPv4 addresses and hex identifiers printed straight into a byte buffer.
//!
//! `write!` goes through `core::fmt` (a formatter, padding checks, one virtual call per
//! piece): several hundred instructions for a port, about a thousand for an IPv4
//! address. Every message we print carries several of each, so these write the digits
//! into a small stack buffer and append it. The output is exactly what `Display` gives
//! (tests compare).

use std::net::Ipv4Addr;

/// Appends `v` in decimal.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(decimal(&mut buf, v));
}

/// `v` in decimal, in the tail of `buf`.
#[inline]
pub fn decimal(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends `v` in decimal to a `String`.
#[inline]
pub fn push_u64_str(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    for &c in decimal(&mut buf, v) {
        out.push(char::from(c));
    }
}

/// Appends the dotted quad of `a`, as `Ipv4Addr`'s `Display` prints it.
#[inline]
pub fn push_ipv4(out: &mut Vec<u8>, a: Ipv4Addr) {
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (k, o) in a.octets().into_iter().enumerate() {
        if k > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    out.extend_from_slice(&buf[..n]);
}

/// Appends `v` as 16 lower-case hex digits (`{:016x}`).
#[inline]
pub fn push_hex16(out: &mut String, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    for c in buf {
        out.push(char::from(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_display() {
        for v in [0u64, 1, 9, 10, 99, 100, 5060, 65535, 1 << 32, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
            let mut s = String::from("x");
            push_u64_str(&mut s, v);
            assert_eq!(s, format!("x{v}"));
            let mut h = String::new();
            push_hex16(&mut h, v);
            assert_eq!(h, format!("{v:016x}"));
        }
        for a in ["0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255", "192.0.2.9", "1.100.10.200"] {
            let ip: Ipv4Addr = a.parse().expect("ip");
            let mut out = Vec::new();
            push_ipv4(&mut out, ip);
            assert_eq!(out, ip.to_string().into_bytes());
        }
        for o in 0..=255u8 {
            let ip = Ipv4Addr::new(o, 255 - o, o / 3, o.wrapping_mul(7));
            let mut out = Vec::new();
            push_ipv4(&mut out, ip);
            assert_eq!(out, ip.to_string().into_bytes());
        }
    }
}
