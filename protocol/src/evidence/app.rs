//! The application layer (protocol minor 5): after a target's TCP connect, a TLS handshake
//! where the plan asks for one ([`TlsEvidence`]) and one bounded HTTP/1.1 request
//! ([`HttpEvidence`]). A connect proves a listener; these say whether it is the service.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{spelled, Open, TargetRole};

/// A TLS handshake with one target address (rustls in the probe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsEvidence {
    pub target: String,
    pub address: SocketAddr,
    #[serde(default)]
    pub role: Open<TargetRole>,
    /// The name sent as SNI and checked against the certificate (the name the user gave).
    pub server_name: String,
    pub outcome: Open<TlsOutcome>,
    /// How far the handshake got: the last step completed (for `stalled`, where it stopped).
    pub reached: Open<TlsStage>,
    /// Bytes received from the server before the outcome (a stall mid-certificate shows
    /// some, not all, of the server's flight).
    #[serde(default)]
    pub bytes_received: u64,
    /// Negotiated, when the handshake completed: `TLSv1.3`, `TLS13_AES_128_GCM_SHA256`, `h2`.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub cipher_suite: Option<String>,
    #[serde(default)]
    pub alpn: Option<String>,
    pub timing: TlsTiming,
    /// The alert the server sent, or the one the probe's TLS stack would have sent (its
    /// description: `handshake_failure`, `bad_certificate`).
    #[serde(default)]
    pub alert: Option<String>,
    /// The server's chain as sent, leaf first (parsed, not verified: see `verification`).
    #[serde(default)]
    pub chain: Vec<CertificateInfo>,
    /// Whether the leaf's SANs cover `server_name` (None without a leaf).
    #[serde(default)]
    pub name_covered: Option<bool>,
    /// The chain against the bundled public roots (the image has no system store).
    #[serde(default)]
    pub verification: Option<Open<Verification>>,
    /// The first bytes the server sent when they were not TLS (an HTTP 400 page from a
    /// plaintext server), printable ASCII, at most 200 characters.
    #[serde(default)]
    pub plaintext_reply: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The handshake's time split, from the ClientHello being sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsTiming {
    /// ClientHello sent -> the server's first bytes.
    #[serde(default)]
    pub first_flight_ms: Option<f64>,
    /// ClientHello sent -> handshake finished.
    #[serde(default)]
    pub finished_ms: Option<f64>,
    /// ClientHello sent -> the outcome (the timeout for `stalled`).
    pub total_ms: f64,
}

/// One certificate of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses (`IP:10.0.0.1`) of the subjectAltName extension.
    #[serde(default)]
    pub sans: Vec<String>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// `rsa`, `ecdsa`, `ed25519`, or the algorithm's OID.
    pub key_type: String,
    /// Key size in bits (RSA modulus, EC curve size), when known.
    #[serde(default)]
    pub key_bits: Option<u32>,
    /// DER size in bytes (what a certificate flight weighs against the path MTU).
    pub der_bytes: u32,
}

spelled! {
    /// How a TLS handshake ended.
    pub enum TlsOutcome {
        /// Handshake completed (whatever the certificate's verification says).
        Ok = "ok",
        /// The server (or the probe's TLS stack) sent an alert.
        Alert = "alert",
        /// The server went silent mid-handshake until the timeout.
        Stalled = "stalled",
        /// The connection was reset or closed during the handshake.
        Closed = "closed",
        /// The server answered with something that is not TLS (plaintext HTTP).
        NotTls = "not_tls",
        /// The TCP connect itself failed (see the `tcp` evidence); no handshake was tried.
        NoConnection = "no_connection",
        Error = "error",
    }
}

spelled! {
    /// Steps of a TLS handshake, in order.
    pub enum TlsStage {
        ClientHelloSent = "client_hello_sent",
        /// The first bytes of the server's flight arrived.
        ServerHello = "server_hello",
        /// The server's certificate arrived complete.
        Certificate = "certificate",
        Finished = "finished",
    }
}

spelled! {
    /// The chain against the bundled public roots.
    pub enum Verification {
        /// Chains to a public root, valid now, for the name.
        Trusted = "trusted",
        /// Does not chain to a public root: issued by a private CA (the issuer is the
        /// chain's last `issuer`). Not a failure by itself.
        PrivateCa = "private_ca",
        SelfSigned = "self_signed",
        Expired = "expired",
        NotYetValid = "not_yet_valid",
        /// The name used is not among the leaf's SANs.
        NameMismatch = "name_mismatch",
        Invalid = "invalid",
    }
}

/// One HTTP/1.1 request to one target address (after the TLS handshake for https).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpEvidence {
    pub target: String,
    pub address: SocketAddr,
    #[serde(default)]
    pub role: Open<TargetRole>,
    /// `http` or `https`.
    pub scheme: String,
    /// Request line and Host as sent.
    pub path: String,
    pub host: String,
    pub outcome: Open<HttpOutcome>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The `Server` header.
    #[serde(default)]
    pub server: Option<String>,
    /// A redirect's `Location` (reported, not followed).
    #[serde(default)]
    pub location: Option<String>,
    /// Connect (+ handshake) done -> request sent -> first byte of the response.
    #[serde(default)]
    pub first_byte_ms: Option<f64>,
    /// Request sent -> the response read (or the outcome).
    pub total_ms: f64,
    /// Response bytes read (headers and body), at most the plan's cap.
    #[serde(default)]
    pub bytes_read: u64,
    /// The cap was reached before the response ended.
    #[serde(default)]
    pub truncated: bool,
    /// For an error status (400 and above) only: the start of the body, printable ASCII with
    /// white space collapsed, at most 200 characters: enough to recognise an error page (nginx's
    /// "The plain HTTP request was sent to HTTPS port"), never a successful answer's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_start: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

spelled! {
    /// How an HTTP request ended.
    pub enum HttpOutcome {
        /// A status line arrived (whatever the status).
        Response = "response",
        /// Nothing (or no complete status line) before the timeout.
        Timeout = "timeout",
        /// Reset or closed before a status line.
        Closed = "closed",
        /// The reply is not HTTP: a TLS alert record (plain HTTP sent to a TLS port).
        NotHttp = "not_http",
        /// No connection (TCP or TLS failed first); no request was sent.
        NoConnection = "no_connection",
        Error = "error",
    }
}
