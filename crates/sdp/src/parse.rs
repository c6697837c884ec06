//! The parser: lenient about line ends and trailing white space, strict about
//! structure.

use crate::codec::digits;
use crate::error::{SdpError, SdpErrorKind as K};
use crate::model::{media_rank, session_rank, Attribute, Connection, Line, Media, Origin, SessionDescription};

/// One non-empty line: its 1-based number, type letter and value.
struct Row<'a> {
    number: usize,
    kind: char,
    value: &'a str,
}

/// Splits the body into rows: lines end in LF or CRLF; trailing spaces, tabs and CRs
/// are dropped; empty lines are skipped; a CR or NUL inside a line is an error.
fn rows(input: &[u8]) -> Result<Vec<Row<'_>>, SdpError> {
    // A typical description has 7 to 15 lines: one allocation instead of three as the
    // list grows (counting the lines first cost more than it saved).
    let mut out = Vec::with_capacity(16);
    // Checked as UTF-8 once as a whole (the usual case) rather than line by line; when
    // it is not, each line is checked so the error names the first bad one, as before.
    let text = std::str::from_utf8(input).ok();
    // One pass per line: where it ends, where its trailing white space starts, and its
    // first CR or NUL.
    let mut line_start = 0;
    let mut number = 0;
    loop {
        let mut j = line_start;
        let mut end = line_start;
        let mut first_bad = None;
        while let Some(&b) = input.get(j) {
            match b {
                b'\n' => break,
                b' ' | b'\t' => {}
                b'\r' => {
                    first_bad = first_bad.or(Some(j));
                }
                0 => {
                    first_bad = first_bad.or(Some(j));
                    end = j + 1;
                }
                _ => end = j + 1,
            }
            j += 1;
        }
        number += 1;
        let line = &input[line_start..end];
        if !line.is_empty() {
            // RFC 8866 §9: no value holds CR, LF or NUL. A CR inside a line would be
            // trimmed away once it ends up last on a printed line, so it is an error.
            if first_bad.is_some_and(|p| p < end) {
                return Err(SdpError::new(K::BadLine, number));
            }
            let (kind, value) = match line {
                [k @ b'a'..=b'z', b'=', rest @ ..] => (char::from(*k), rest),
                _ => return Err(SdpError::new(K::BadLine, number)),
            };
            let value = match text {
                // After `k=` and before the trimmed white space: both ends are ASCII, so
                // on character boundaries.
                Some(t) => t.get(line_start + 2..end).ok_or(SdpError::new(K::NotUtf8, number))?,
                None => std::str::from_utf8(value).map_err(|_| SdpError::new(K::NotUtf8, number))?,
            };
            out.push(Row { number, kind, value });
        }
        if j >= input.len() {
            break;
        }
        line_start = j + 1;
    }
    Ok(out)
}

/// White-space separated fields (runs of spaces or tabs count as one separator): what
/// `value.split([' ', '\t']).filter(|f| !f.is_empty())` gives, by a byte scan (the
/// `char` pattern decodes UTF-8 and was most of what an `o=` line cost).
fn fields(value: &str) -> Fields<'_> {
    Fields { rest: value }
}

struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let is_sep = |b: &u8| matches!(b, b' ' | b'\t');
        let start = self.rest.bytes().position(|b| !is_sep(&b))?;
        let rest = &self.rest[start..];
        // Both separators are ASCII, so these are character boundaries.
        let end = rest.bytes().position(|b| is_sep(&b)).unwrap_or(rest.len());
        let (field, tail) = rest.split_at(end);
        self.rest = tail;
        Some(field)
    }
}

pub(crate) fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
    let rows = rows(input)?;
    let mut it = rows.iter().peekable();
    let last_line = rows.last().map_or(0, |r| r.number);

    let v = it.next().ok_or(SdpError::new(K::Empty, 0))?;
    if v.kind != 'v' {
        return Err(SdpError::new(K::MissingVersion, v.number));
    }
    if v.value.trim() != "0" {
        return Err(SdpError::new(K::BadVersion, v.number));
    }
    let o = it.next().ok_or(SdpError::new(K::MissingOrigin, last_line + 1))?;
    if o.kind != 'o' {
        return Err(SdpError::new(K::MissingOrigin, o.number));
    }
    let origin = parse_origin(o.value).ok_or(SdpError::new(K::BadOrigin, o.number))?;
    let s = it.next().ok_or(SdpError::new(K::MissingSessionName, last_line + 1))?;
    if s.kind != 's' {
        return Err(SdpError::new(K::MissingSessionName, s.number));
    }

    let mut sdp = SessionDescription {
        origin,
        session_name: s.value.to_owned(),
        lines: Vec::new(),
        connection: None,
        attributes: Vec::new(),
        media: Vec::new(),
    };
    while let Some(row) = it.next_if(|r| r.kind != 'm') {
        match row.kind {
            'c' if sdp.connection.is_some() => return Err(SdpError::new(K::Misplaced, row.number)),
            'c' => sdp.connection = Some(parse_connection(row)?),
            'a' => sdp.attributes.push(parse_attribute(row)?),
            'v' | 'o' | 's' => return Err(SdpError::new(K::Misplaced, row.number)),
            k if session_rank(k).is_some() => sdp.lines.push(Line::new(k, row.value)),
            _ => return Err(SdpError::new(K::UnknownType, row.number)),
        }
    }
    sdp.lines.sort_by_key(|l| session_rank(l.kind));

    let mut m_lines = Vec::new();
    while let Some(m) = it.next() {
        // Only `m=` rows are left at the top of this loop.
        let mut media = parse_media_line(m)?;
        m_lines.push(m.number);
        while let Some(row) = it.next_if(|r| r.kind != 'm') {
            match row.kind {
                'c' if media.connection.is_some() => return Err(SdpError::new(K::Misplaced, row.number)),
                'c' => media.connection = Some(parse_connection(row)?),
                'a' => media.attributes.push(parse_attribute(row)?),
                k if media_rank(k).is_some() => media.lines.push(Line::new(k, row.value)),
                k if session_rank(k).is_some() || matches!(k, 'v' | 'o' | 's') => return Err(SdpError::new(K::Misplaced, row.number)),
                _ => return Err(SdpError::new(K::UnknownType, row.number)),
            }
        }
        media.lines.sort_by_key(|l| media_rank(l.kind));
        sdp.media.push(media);
    }

    // RFC 8866 §5.7: every active stream needs a c=, its own or the session's.
    if sdp.connection.is_none() {
        for (media, &number) in sdp.media.iter().zip(&m_lines) {
            if media.is_active() && media.connection.is_none() {
                return Err(SdpError::new(K::MissingConnection, number));
            }
        }
    }
    Ok(sdp)
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`.
fn parse_origin(value: &str) -> Option<Origin> {
    let mut f = fields(value);
    let username = f.next()?.to_owned();
    let session_id = digits(f.next()?)?;
    let session_version = digits(f.next()?)?;
    if f.next()? != "IN" {
        return None;
    }
    let address_type = f.next()?.to_owned();
    let address = f.next()?.to_owned();
    if f.next().is_some() {
        return None;
    }
    Some(Origin { username, session_id, session_version, address_type, address })
}

/// `c=IN <addrtype> <address>`.
fn parse_connection(row: &Row<'_>) -> Result<Connection, SdpError> {
    let bad = SdpError::new(K::BadConnection, row.number);
    let mut f = fields(row.value);
    if f.next() != Some("IN") {
        return Err(bad);
    }
    let address_type = f.next().ok_or(bad)?.to_owned();
    let address = f.next().ok_or(bad)?.to_owned();
    if f.next().is_some() {
        return Err(bad);
    }
    Ok(Connection { address_type, address })
}

/// `a=<name>[:<value>]`.
fn parse_attribute(row: &Row<'_>) -> Result<Attribute, SdpError> {
    let attr = match row.value.split_once(':') {
        Some((name, value)) => Attribute { name: name.to_owned(), value: Some(value.to_owned()) },
        None => Attribute { name: row.value.to_owned(), value: None },
    };
    if attr.name.is_empty() {
        return Err(SdpError::new(K::BadAttribute, row.number));
    }
    Ok(attr)
}

/// `m=<media> <port>[/<count>] <proto> <fmt>…` (formats may be absent, a leniency).
fn parse_media_line(row: &Row<'_>) -> Result<Media, SdpError> {
    let bad = SdpError::new(K::BadMedia, row.number);
    let mut f = fields(row.value);
    let media_type = f.next().ok_or(bad)?;
    let port_field = f.next().ok_or(bad)?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (digits(p).ok_or(bad)?, Some(digits(n).ok_or(bad)?)),
        None => (digits(port_field).ok_or(bad)?, None),
    };
    let proto = f.next().ok_or(bad)?;
    let mut media = Media::new(media_type, port, proto, f.map(str::to_owned).collect());
    media.port_count = port_count;
    Ok(media)
}
