//! One target address: the TCP connect, the TLS handshake where asked, the HTTP request where
//! asked, all after the connect bounded by `app.timeout_ms` (and the run's deadline).

use std::net::SocketAddr;
use std::time::Duration;

use protocol::{
    AppPlan, HttpEvidence, HttpOutcome, Target, TlsEvidence, TlsOutcome, TlsPlan, TlsStage,
    TlsTiming,
};
use tokio::time::Instant;

use super::certs;
use super::http::{self, Conn};
use super::tls;
use crate::checks::tcp;

/// The evidence of one address: `tls` when the plan asks for a handshake, `http` when it asks
/// for a request.
pub struct Evidence {
    pub tls: Option<TlsEvidence>,
    pub http: Option<HttpEvidence>,
}

/// Limits of one exchange.
pub struct Limits {
    pub connect_timeout: Duration,
    /// No exchange goes past this (the run's deadline, less room to report).
    pub run_deadline: Instant,
}

pub async fn run(
    app: &AppPlan,
    client: Option<&tls::Client>,
    target: &Target,
    address: SocketAddr,
    limits: Limits,
) -> Evidence {
    let mut ev = Evidence {
        tls: app.tls.as_ref().map(|p| tls_evidence(target, address, p)),
        http: app
            .http
            .as_ref()
            .map(|p| http_evidence(target, address, p, app.tls.is_some())),
    };
    let connect = tcp::open(address, limits.connect_timeout).await;
    let stream = match connect {
        Ok(Some(stream)) => stream,
        Ok(None) => {
            ev.no_connection(format!(
                "the TCP connect timed out after {} ms",
                limits.connect_timeout.as_millis()
            ));
            return ev;
        }
        Err(e) => {
            ev.no_connection(format!(
                "the TCP connect failed ({}): {e}",
                tcp::classify(&e).as_str()
            ));
            return ev;
        }
    };
    let deadline =
        (Instant::now() + Duration::from_millis(app.timeout_ms)).min(limits.run_deadline);
    let mut conn = match (&app.tls, client) {
        (Some(plan), Some(client)) => {
            let (handshake, session) = tls::handshake(client, plan, stream, deadline).await;
            let outcome = handshake.outcome;
            if let Some(t) = ev.tls.as_mut() {
                fill_tls(t, handshake);
            }
            match session {
                Some(session) => Conn::Tls(Box::new(session)),
                None => {
                    if let Some(h) = ev.http.as_mut() {
                        h.message = Some(format!(
                            "no request: the TLS handshake ended `{}`",
                            outcome.as_str()
                        ));
                    }
                    return ev;
                }
            }
        }
        _ => Conn::Plain(stream),
    };
    if let (Some(plan), Some(h)) = (&app.http, ev.http.as_mut()) {
        let alpn = ev.tls.as_ref().and_then(|t| t.alpn.as_deref());
        if alpn.is_some_and(|p| p != "http/1.1") {
            h.outcome = HttpOutcome::Error.into();
            h.message = Some(format!(
                "ALPN chose {:?}; the probe speaks HTTP/1.1 only",
                alpn.unwrap_or_default()
            ));
            return ev;
        }
        http::exchange(&mut conn, plan, deadline, h).await;
    }
    ev
}

impl Evidence {
    fn no_connection(&mut self, why: String) {
        if let Some(t) = self.tls.as_mut() {
            t.outcome = TlsOutcome::NoConnection.into();
            t.message = Some(why.clone());
        }
        if let Some(h) = self.http.as_mut() {
            h.outcome = HttpOutcome::NoConnection.into();
            h.message = Some(why);
        }
    }
}

/// The evidence of an address that was not reached (no handshake tried).
pub fn tls_evidence(target: &Target, address: SocketAddr, plan: &TlsPlan) -> TlsEvidence {
    TlsEvidence {
        target: target.label.clone(),
        address,
        role: target.role.clone(),
        server_name: plan.server_name.clone(),
        outcome: TlsOutcome::NoConnection.into(),
        reached: TlsStage::ClientHelloSent.into(),
        bytes_received: 0,
        version: None,
        cipher_suite: None,
        alpn: None,
        timing: TlsTiming::default(),
        alert: None,
        chain: Vec::new(),
        name_covered: None,
        verification: None,
        plaintext_reply: None,
        message: None,
    }
}

/// The evidence of an address where no request was sent.
pub fn http_evidence(
    target: &Target,
    address: SocketAddr,
    plan: &protocol::HttpPlan,
    tls: bool,
) -> HttpEvidence {
    HttpEvidence {
        target: target.label.clone(),
        address,
        role: target.role.clone(),
        scheme: if tls { "https" } else { "http" }.into(),
        path: plan.path.clone(),
        host: plan.host.clone(),
        outcome: HttpOutcome::NoConnection.into(),
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

fn fill_tls(t: &mut TlsEvidence, h: tls::Handshake) {
    t.outcome = h.outcome.into();
    t.reached = h.reached.into();
    t.bytes_received = h.bytes_received;
    t.version = h.version;
    t.cipher_suite = h.cipher_suite;
    t.alpn = h.alpn;
    t.timing = TlsTiming {
        first_flight_ms: h.first_flight_ms,
        finished_ms: h.finished_ms,
        total_ms: h.total_ms,
    };
    t.alert = h.alert;
    t.plaintext_reply = h.plaintext_reply;
    let mut notes: Vec<String> = h.message.into_iter().collect();
    if !h.chain.is_empty() {
        let (chain, problems) = certs::parse_chain(&h.chain);
        notes.extend(problems);
        if let Some(leaf) = chain.first() {
            let covered = certs::name_covered(&leaf.info.sans, &t.server_name);
            t.name_covered = Some(covered);
            let webpki = h
                .webpki
                .unwrap_or_else(|| Err(rustls::Error::General("not verified".into())));
            let (verdict, why) = certs::verdict(&chain, covered, &webpki, unix_now());
            t.verification = Some(verdict.into());
            notes.extend(why);
        }
        if let Some(bad) = h.bad_signature {
            t.verification = Some(protocol::Verification::Invalid.into());
            notes.push(format!("the handshake signature does not verify: {bad}"));
        }
        t.chain = chain.into_iter().map(|c| c.info).collect();
    }
    if !notes.is_empty() {
        t.message = Some(notes.join("; "));
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
