//! One HTTP/1.1 request (`GET`, `Connection: close`) over a plain or TLS connection, and its
//! response read up to the plan's cap: status line and headers parsed with httparse, redirects
//! reported and never followed.

use std::io;

use protocol::{HttpEvidence, HttpOutcome, HttpPlan};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::tls::{printable, Session};
use crate::checks::pacing::ms;

/// The connection a request goes over.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<Session>),
}

impl Conn {
    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data).await,
            Conn::Tls(s) => s.send(data).await,
        }
    }

    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.recv(buf).await,
        }
    }
}

/// The request as sent.
pub fn request_bytes(plan: &HttpPlan) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kubectl-netdebug-probe/{}\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        plan.path,
        plan.host,
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// Headers parsed at most.
const MAX_HEADERS: usize = 64;
/// Bytes read at once.
const CHUNK: usize = 16 * 1024;

/// Sends the request and reads the response until the server closes, the response is
/// complete (Content-Length), the cap, or `deadline`; fills `ev`.
pub async fn exchange(conn: &mut Conn, plan: &HttpPlan, deadline: Instant, ev: &mut HttpEvidence) {
    let started = Instant::now();
    match tokio::time::timeout_at(deadline, conn.send(&request_bytes(plan))).await {
        Err(_) => {
            ev.outcome = HttpOutcome::Timeout.into();
            ev.message = Some("the request could not be sent before the timeout".into());
            ev.total_ms = ms(started.elapsed());
            return;
        }
        Ok(Err(e)) => {
            ev.outcome = io_outcome(&e).into();
            ev.message = Some(format!("sending the request: {e}"));
            ev.total_ms = ms(started.elapsed());
            return;
        }
        Ok(Ok(())) => {}
    }
    let sent = Instant::now();
    let cap = usize::try_from(plan.max_response_bytes).unwrap_or(usize::MAX);
    let mut data: Vec<u8> = Vec::with_capacity(cap.min(CHUNK));
    let mut chunk = vec![0u8; CHUNK.min(cap)];
    // Header length and Content-Length, once the head is parsed.
    let mut head: Option<(usize, Option<u64>)> = None;
    let mut end = End::Eof;
    let mut complete = false;
    while data.len() < cap {
        let want = chunk.len().min(cap - data.len());
        let n = match tokio::time::timeout_at(deadline, conn.recv(&mut chunk[..want])).await {
            Err(_) => {
                end = End::Timeout;
                break;
            }
            Ok(Err(e)) => {
                end = End::Io(e);
                break;
            }
            Ok(Ok(0)) => {
                complete = head.is_some();
                break;
            }
            Ok(Ok(n)) => n,
        };
        if data.is_empty() {
            ev.first_byte_ms = Some(ms(sent.elapsed()));
            if let Some(what) = tls_record(&chunk[..n]) {
                data.extend_from_slice(&chunk[..n]);
                end = End::NotHttp(what);
                break;
            }
        }
        data.extend_from_slice(&chunk[..n]);
        if head.is_none() {
            match parse_head(&data, ev) {
                Ok(Some(parsed)) => head = Some(parsed),
                Ok(None) => continue,
                Err(why) => {
                    end = End::NotHttp(why);
                    break;
                }
            }
        }
        if let Some((len, Some(body))) = head {
            if (data.len() as u64) >= len as u64 + body {
                complete = true;
                break;
            }
        }
    }
    ev.total_ms = ms(sent.elapsed());
    ev.bytes_read = data.len() as u64;
    let capped = data.len() >= cap && !complete;
    match (head, end) {
        (_, End::NotHttp(why)) => {
            ev.outcome = HttpOutcome::NotHttp.into();
            ev.message = Some(why);
        }
        (Some((len, _)), end) => {
            ev.outcome = HttpOutcome::Response.into();
            ev.truncated = capped;
            // Only an error page's start is kept: a successful answer's data is not evidence.
            if ev.status.is_some_and(|s| s >= 400) {
                ev.body_start = body_start(&data[len.min(data.len())..]);
            }
            ev.message = match end {
                _ if capped => Some(format!(
                    "the response is longer than the cap of {cap} bytes: read no further"
                )),
                End::Timeout if !complete => {
                    Some("the body was still arriving at the timeout".into())
                }
                End::Io(e) => Some(format!("reading the body: {e}")),
                _ => None,
            };
        }
        (None, End::Timeout) => {
            ev.outcome = HttpOutcome::Timeout.into();
            let waited = deadline.saturating_duration_since(sent).as_millis();
            ev.message = Some(if data.is_empty() {
                format!("no response byte within {waited} ms of the request")
            } else {
                format!(
                    "no complete status line and headers within {waited} ms ({} bytes)",
                    data.len()
                )
            });
        }
        (None, End::Io(e)) => {
            ev.outcome = io_outcome(&e).into();
            ev.message = Some(format!("before a status line: {e}"));
        }
        (None, End::Eof) if capped => {
            ev.outcome = HttpOutcome::NotHttp.into();
            ev.truncated = true;
            ev.message = Some(format!("no end of headers within the cap of {cap} bytes"));
        }
        (None, End::Eof) => {
            ev.outcome = HttpOutcome::Closed.into();
            ev.message = Some(if data.is_empty() {
                "the server closed the connection without a response".into()
            } else {
                format!(
                    "the server closed the connection after {} bytes, before the end of the \
                     headers",
                    data.len()
                )
            });
        }
    }
}

/// Longest [`HttpEvidence::body_start`].
const BODY_START_CHARS: usize = 200;

/// The start of an error page: printable ASCII, white space collapsed, bounded; None when
/// nothing printable is there.
fn body_start(body: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for &b in body {
        if out.len() >= BODY_START_CHARS {
            break;
        }
        if b.is_ascii_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if !b.is_ascii_graphic() {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(b as char);
    }
    out.truncate(BODY_START_CHARS);
    (!out.is_empty()).then_some(out)
}

enum End {
    Eof,
    Timeout,
    Io(io::Error),
    NotHttp(String),
}

fn io_outcome(e: &io::Error) -> HttpOutcome {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => HttpOutcome::Closed,
        _ => HttpOutcome::Error,
    }
}

/// The status line and headers: `Ok(None)` while incomplete, the head's length and the
/// Content-Length once complete, an error when the bytes are not an HTTP response.
fn parse_head(data: &[u8], ev: &mut HttpEvidence) -> Result<Option<(usize, Option<u64>)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(data) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => {
            ev.status = response.code;
            ev.reason = response.reason.map(str::to_string);
            let header = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| printable(h.value, 500))
            };
            ev.server = header("server");
            ev.location = header("location");
            let length = header("content-length").and_then(|v| v.trim().parse().ok());
            // A response to GET with no body by definition.
            let length = match response.code {
                Some(204 | 304) | Some(100..=199) => Some(0),
                _ => length,
            };
            Ok(Some((len, length)))
        }
        Err(e) => Err(format!(
            "the reply is not an HTTP response ({e}): {:?}",
            printable(&data[..data.len().min(60)], 60)
        )),
    }
}

/// A TLS record in reply to plaintext: plain HTTP sent to a TLS port. Says which.
fn tls_record(bytes: &[u8]) -> Option<String> {
    let (&kind, rest) = bytes.split_first()?;
    if rest.first() != Some(&0x03) {
        return None;
    }
    match kind {
        0x15 => {
            let alert = match (bytes.get(5), bytes.get(6)) {
                (Some(level), Some(desc)) => format!(
                    " ({} {})",
                    if *level == 2 { "fatal" } else { "warning" },
                    alert_name(*desc)
                ),
                _ => String::new(),
            };
            Some(format!(
                "the reply is a TLS alert record{alert}: plain HTTP was sent to a TLS port"
            ))
        }
        0x16 => Some(
            "the reply is a TLS handshake record: plain HTTP was sent to a TLS port".to_string(),
        ),
        _ => None,
    }
}

fn alert_name(code: u8) -> String {
    match code {
        0 => "close_notify".into(),
        10 => "unexpected_message".into(),
        20 => "bad_record_mac".into(),
        22 => "record_overflow".into(),
        40 => "handshake_failure".into(),
        47 => "illegal_parameter".into(),
        50 => "decode_error".into(),
        70 => "protocol_version".into(),
        80 => "internal_error".into(),
        other => format!("alert {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev() -> HttpEvidence {
        HttpEvidence {
            target: "t".into(),
            address: "10.0.0.1:80".parse().unwrap(),
            role: Default::default(),
            scheme: "http".into(),
            path: "/".into(),
            host: "h".into(),
            outcome: HttpOutcome::Error.into(),
            status: None,
            reason: None,
            server: None,
            location: None,
            first_byte_ms: None,
            total_ms: 0.0,
            bytes_read: 0,
            truncated: false,
            body_start: None,
            message: None,
        }
    }

    #[test]
    fn the_request_names_the_tool() {
        let plan = HttpPlan {
            path: "/healthz".into(),
            host: "web.test:8080".into(),
            max_response_bytes: 10,
        };
        let req = String::from_utf8(request_bytes(&plan)).unwrap();
        assert!(req.starts_with("GET /healthz HTTP/1.1\r\nHost: web.test:8080\r\n"));
        assert!(req.contains("\r\nUser-Agent: kubectl-netdebug-probe/"));
        assert!(req.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn heads_are_parsed() {
        let mut e = ev();
        let head =
            b"HTTP/1.1 301 Moved\r\nServer: x\r\nLocation: /new\r\nContent-Length: 3\r\n\r\nab";
        assert_eq!(parse_head(&head[..20], &mut e), Ok(None));
        assert_eq!(
            parse_head(head, &mut e),
            Ok(Some((head.len() - 2, Some(3))))
        );
        assert_eq!(e.status, Some(301));
        assert_eq!(e.reason.as_deref(), Some("Moved"));
        assert_eq!(e.server.as_deref(), Some("x"));
        assert_eq!(e.location.as_deref(), Some("/new"));
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n", &mut e).is_err());
    }

    #[test]
    fn an_error_page_start_is_printable_collapsed_and_bounded() {
        assert_eq!(
            body_start(b"<html>\r\n<head><title>400 Bad Request</title></head>\r\n\t<body>\x00x"),
            Some("<html> <head><title>400 Bad Request</title></head> <body>x".into())
        );
        assert_eq!(body_start(&[b'a'; 500]).map(|s| s.len()), Some(200));
        assert_eq!(body_start(b" \r\n\x01"), None);
    }

    #[test]
    fn tls_replies_are_recognised() {
        let alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];
        assert!(tls_record(&alert)
            .unwrap()
            .contains("fatal protocol_version"));
        assert!(tls_record(&[0x16, 0x03, 0x01]).is_some());
        assert!(tls_record(b"HTTP/1.1").is_none());
    }
}
