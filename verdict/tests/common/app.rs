//! Application-layer evidence built in code (`tls`, `http`, protocol minor 5): a handshake
//! or a request to one target, with the fields a test changes afterwards.

use protocol::*;

use super::build::sa;

/// 2025-01-01 00:00 UTC and a year later: the validity of the certificates built here.
pub const JAN_2025: i64 = 1_735_689_600;
pub const JAN_2026: i64 = JAN_2025 + 365 * 86_400;

pub fn cert(subject: &str, issuer: &str, sans: &[&str], der_bytes: u32) -> CertificateInfo {
    CertificateInfo {
        subject: subject.into(),
        issuer: issuer.into(),
        sans: sans.iter().map(|s| s.to_string()).collect(),
        not_before: JAN_2025,
        not_after: JAN_2026,
        key_type: "ecdsa".into(),
        key_bits: Some(256),
        der_bytes,
    }
}

/// A completed handshake with `server_name`, a two-certificate chain covering it, trusted.
pub fn tls_ok(addr: &str, role: TargetRole, server_name: &str) -> TlsEvidence {
    TlsEvidence {
        target: addr.into(),
        address: sa(addr),
        role: role.into(),
        server_name: server_name.into(),
        outcome: TlsOutcome::Ok.into(),
        reached: TlsStage::Finished.into(),
        bytes_received: 3200,
        version: Some("TLSv1.3".into()),
        cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
        alpn: Some("http/1.1".into()),
        timing: TlsTiming {
            first_flight_ms: Some(1.2),
            finished_ms: Some(2.4),
            total_ms: 2.4,
        },
        alert: None,
        chain: vec![
            cert(&format!("CN={server_name}"), "CN=R11", &[server_name], 1300),
            cert("CN=R11", "CN=ISRG Root X1", &[], 1400),
        ],
        name_covered: Some(true),
        verification: Some(Verification::Trusted.into()),
        plaintext_reply: None,
        message: None,
    }
}

/// A handshake that stalled at `reached` after `bytes` of the server's flight (no chain).
pub fn tls_stalled(addr: &str, server_name: &str, reached: TlsStage, bytes: u64) -> TlsEvidence {
    TlsEvidence {
        outcome: TlsOutcome::Stalled.into(),
        reached: reached.into(),
        bytes_received: bytes,
        version: None,
        cipher_suite: None,
        alpn: None,
        timing: TlsTiming {
            first_flight_ms: None,
            finished_ms: None,
            total_ms: 3000.0,
        },
        chain: vec![],
        name_covered: None,
        verification: None,
        ..tls_ok(addr, TargetRole::Direct, server_name)
    }
}

/// An answered request: `status`, first byte after `first_byte_ms`.
pub fn http(addr: &str, role: TargetRole, status: u16, first_byte_ms: f64) -> HttpEvidence {
    let reason = match status {
        200 => "OK",
        301 => "Moved Permanently",
        403 => "Forbidden",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "",
    };
    HttpEvidence {
        target: addr.into(),
        address: sa(addr),
        role: role.into(),
        scheme: "https".into(),
        path: "/healthz".into(),
        host: "web.shop.svc.cluster.local".into(),
        outcome: HttpOutcome::Response.into(),
        status: Some(status),
        reason: Some(reason.into()).filter(|r: &String| !r.is_empty()),
        server: None,
        location: None,
        first_byte_ms: Some(first_byte_ms),
        total_ms: first_byte_ms + 0.5,
        bytes_read: 120,
        truncated: false,
        body_start: None,
        message: None,
    }
}

/// A request that got no status line: `outcome` after `total_ms`.
pub fn http_failed(
    addr: &str,
    role: TargetRole,
    outcome: HttpOutcome,
    total_ms: f64,
) -> HttpEvidence {
    HttpEvidence {
        outcome: outcome.into(),
        status: None,
        reason: None,
        first_byte_ms: None,
        total_ms,
        bytes_read: 0,
        ..http(addr, role, 200, 0.0)
    }
}

pub fn tls_event(t: TlsEvidence) -> Event {
    Event::Evidence(Evidence::Tls(t))
}

pub fn http_event(h: HttpEvidence) -> Event {
    Event::Evidence(Evidence::Http(h))
}
