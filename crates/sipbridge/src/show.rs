//! `sipbridge show calls|endpoints|registrations [--api URL]`: asks a running instance's
//! HTTP API and prints a table.
//!
//! The client is a few lines of HTTP/1.1 over a std `TcpStream` (one GET, `Connection:
//! close`, read to the end): one request per run does not justify an HTTP client crate.
//! `https://` URLs are refused with a clear message until the API itself speaks TLS.

use crate::cli::ShowWhat;
use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The bound on connecting to, and on each read from, the API.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Queries the API at `api` (`http://HOST:PORT[/prefix]`) and returns the table to print.
pub fn show(what: ShowWhat, api: &str) -> anyhow::Result<String> {
    let path = match what {
        ShowWhat::Calls => "/api/calls",
        ShowWhat::Endpoints | ShowWhat::Registrations => "/api/endpoints",
    };
    let body = get(api, path).with_context(|| format!("cannot reach the sipbridge API at {api}"))?;
    let json: Value = serde_json::from_str(&body).with_context(|| format!("the sipbridge API at {api} sent something that is not JSON"))?;
    let rows = json.as_array().ok_or_else(|| anyhow!("the sipbridge API at {api} sent no list for {path}"))?;
    Ok(match what {
        ShowWhat::Calls => calls_table(rows),
        ShowWhat::Endpoints => endpoints_table(rows),
        ShowWhat::Registrations => registrations_table(rows),
    })
}

/// `GET base+path`; the body of a 200, an error for anything else.
pub fn get(base: &str, path: &str) -> anyhow::Result<String> {
    let rest = match base.strip_prefix("http://") {
        Some(rest) => rest,
        None if base.starts_with("https://") => bail!("https is not supported by `show` yet; use http://"),
        None => bail!("the API URL must start with http://"),
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let hostport = if authority.contains(':') && !authority.ends_with(']') { authority.to_owned() } else { format!("{authority}:80") };
    let addr = hostport
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {hostport}"))?
        .next()
        .ok_or_else(|| anyhow!("{hostport} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let request = format!("GET {prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: sipbridge-show\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let (status, body) = parse_response(&response)?;
    if status != 200 {
        bail!("{path} answered {status}: {}", body.trim());
    }
    Ok(body)
}

/// The status and body of an HTTP/1.1 response read to its end (Content-Length or
/// chunked, or simply everything after the headers).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, String)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow!("an incomplete HTTP response"))?;
    let head = std::str::from_utf8(&raw[..split]).context("HTTP response headers are not UTF-8")?;
    let mut body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status =
        status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow!("not an HTTP response: {status_line}"))?;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            if let Ok(n) = value.parse::<usize>() {
                body = &body[..n.min(body.len())];
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("a broken chunked body"))?;
        let size = std::str::from_utf8(&raw[..eol]).ok().and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let size = size.ok_or_else(|| anyhow!("a broken chunk size"))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = raw.get(..size).ok_or_else(|| anyhow!("a truncated chunk"))?;
        out.extend_from_slice(chunk);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `65` → `1m05s`.
fn age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn calls_table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no calls\n".into();
    }
    let body = rows
        .iter()
        .map(|c| {
            vec![
                c.get("id").map(ToString::to_string).unwrap_or_default(),
                text(c, "from").to_owned(),
                text(c, "to").to_owned(),
                text(c, "state").to_owned(),
                text(c, "media_path").to_owned(),
                c.get("age_s").and_then(Value::as_u64).map(age).unwrap_or_default(),
            ]
        })
        .collect();
    table(&["ID", "FROM", "TO", "STATE", "MEDIA", "AGE"], body) + &format!("{} call(s)\n", rows.len())
}

fn endpoints_table(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "no endpoints configured\n".into();
    }
    let body = rows
        .iter()
        .map(|e| {
            let rtt = e.get("rtt_ms").and_then(Value::as_u64).map(|r| format!("{r} ms")).unwrap_or_else(|| "-".into());
            let regs = e.get("registrations").and_then(Value::as_array).map_or(0, Vec::len);
            vec![text(e, "name").to_owned(), text(e, "host").to_owned(), text(e, "state").to_owned(), rtt, regs.to_string()]
        })
        .collect();
    table(&["NAME", "HOST", "STATE", "RTT", "REGISTRATIONS"], body)
}

fn registrations_table(rows: &[Value]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .flat_map(|e| {
            let name = text(e, "name").to_owned();
            e.get("registrations").and_then(Value::as_array).into_iter().flatten().map(move |r| {
                vec![name.clone(), text(r, "contact").to_owned(), text(r, "expires_at").to_owned(), text(r, "source").to_owned()]
            })
        })
        .collect();
    if body.is_empty() {
        return "no registrations\n".into();
    }
    table(&["ENDPOINT", "CONTACT", "EXPIRES", "SOURCE"], body)
}

/// Left-aligned columns, two spaces apart, header first.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_with_length_or_chunks() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]junk";
        assert_eq!(parse_response(r).ok(), Some((200, "[]".into())));
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n2\r\n\"}\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).ok(), Some((404, "{\"a\"}".into())));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn tables() {
        let calls: Value =
            serde_json::json!([{"id": 3, "from": "sip:a@x", "to": "sip:b@y", "state": "answered", "media_path": "relayed", "age_s": 65}]);
        let t = calls_table(calls.as_array().map(Vec::as_slice).unwrap_or_default());
        assert_eq!(t, "ID  FROM     TO       STATE     MEDIA    AGE\n3   sip:a@x  sip:b@y  answered  relayed  1m05s\n1 call(s)\n");
        assert_eq!(calls_table(&[]), "no calls\n");
        let eps = serde_json::json!([{"name": "alice", "host": "dynamic", "state": "unknown", "rtt_ms": null, "registrations": []}]);
        let eps = eps.as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(endpoints_table(eps).contains("alice  dynamic  unknown  -    0"), "{}", endpoints_table(eps));
        assert_eq!(registrations_table(eps), "no registrations\n");
    }

    #[test]
    fn https_and_bad_urls_are_refused() {
        assert!(get("https://127.0.0.1:1", "/").is_err_and(|e| e.to_string().contains("https is not supported")));
    }
}
