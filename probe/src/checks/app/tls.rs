//! The TLS handshake, driven by hand over a connected socket (rustls with ring) so that each
//! step is seen: ClientHello sent, the server's first bytes, its certificate, finished. The
//! certificate is recorded and judged, never refused: the handshake completes whatever the
//! chain is, so that a request can follow and the evidence is complete.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use protocol::{TlsOutcome, TlsPlan, TlsStage};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::certs::WebPki;

/// What every handshake of a run shares: the crypto provider and the public roots' verifier.
pub struct Client {
    provider: Arc<CryptoProvider>,
    public_roots: Arc<WebPkiServerVerifier>,
}

impl Client {
    pub fn new() -> Result<Client, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let public_roots =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("the bundled public roots: {e}"))?;
        Ok(Client {
            provider,
            public_roots,
        })
    }

    fn config(&self, plan: &TlsPlan, seen: Arc<Mutex<Seen>>) -> Result<ClientConfig, String> {
        let verifier = Arc::new(Recorder {
            public_roots: self.public_roots.clone(),
            provider: self.provider.clone(),
            seen,
        });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = plan.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        // Every address gets a full handshake: no session resumed from another.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(config)
    }
}

/// What the verifier saw.
#[derive(Default)]
struct Seen {
    /// The chain as sent, leaf first (DER).
    chain: Vec<Vec<u8>>,
    webpki: Option<WebPki>,
    /// A handshake signature that did not verify (recorded, not refused).
    bad_signature: Option<String>,
}

/// Records the chain and rustls-webpki's verdict on it, and accepts: the verdict is evidence,
/// not a reason to stop.
#[derive(Debug)]
struct Recorder {
    public_roots: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Seen>>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("chain", &self.chain.len())
            .finish()
    }
}

impl Recorder {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn signature(
        &self,
        verified: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if let Err(e) = verified {
            self.seen().bad_signature = Some(e.to_string());
        }
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .public_roots
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        let mut seen = self.seen();
        seen.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        seen.webpki = Some(verdict);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How a handshake went.
pub struct Handshake {
    pub outcome: TlsOutcome,
    pub reached: TlsStage,
    pub bytes_received: u64,
    pub version: Option<String>,
    pub cipher_suite: Option<String>,
    pub alpn: Option<String>,
    /// ClientHello sent -> first server bytes, -> finished, -> the outcome.
    pub first_flight_ms: Option<f64>,
    pub finished_ms: Option<f64>,
    pub total_ms: f64,
    pub alert: Option<String>,
    /// The chain as sent, leaf first (DER), once the certificate arrived.
    pub chain: Vec<Vec<u8>>,
    pub webpki: Option<WebPki>,
    pub bad_signature: Option<String>,
    pub plaintext_reply: Option<String>,
    pub message: Option<String>,
}

/// A completed handshake's connection, for the request that follows.
pub struct Session {
    conn: ClientConnection,
    sock: TcpStream,
    eof: bool,
}

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// The most of a non-TLS reply kept (printable ASCII).
const PLAINTEXT_MAX: usize = 200;

/// The handshake with `sock`, bounded by `deadline`. The session comes back only when the
/// handshake completed.
pub async fn handshake(
    client: &Client,
    plan: &TlsPlan,
    mut sock: TcpStream,
    deadline: Instant,
) -> (Handshake, Option<Session>) {
    let started = Instant::now();
    let mut h = Handshake {
        outcome: TlsOutcome::Error,
        reached: TlsStage::ClientHelloSent,
        bytes_received: 0,
        version: None,
        cipher_suite: None,
        alpn: None,
        first_flight_ms: None,
        finished_ms: None,
        total_ms: 0.0,
        alert: None,
        chain: Vec::new(),
        webpki: None,
        bad_signature: None,
        plaintext_reply: None,
        message: None,
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let name = plan
        .server_name
        .trim_start_matches('[')
        .trim_end_matches(']');
    let prepared = ServerName::try_from(name.to_string())
        .map_err(|e| format!("`{}` is not a server name: {e}", plan.server_name))
        .and_then(|name| {
            let config = client.config(plan, seen.clone())?;
            ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())
        });
    let mut conn = match prepared {
        Ok(conn) => conn,
        Err(why) => {
            h.message = Some(why);
            return (h, None);
        }
    };
    let mut hello_sent = started;
    let result = drive(
        &mut conn,
        &mut sock,
        deadline,
        &mut h,
        &mut hello_sent,
        &seen,
    )
    .await;
    h.total_ms = ms_since(hello_sent);
    {
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        h.chain = std::mem::take(&mut seen.chain);
        h.webpki = seen.webpki.take();
        h.bad_signature = seen.bad_signature.take();
    }
    match result {
        Ok(()) => {
            h.outcome = TlsOutcome::Ok;
            h.reached = TlsStage::Finished;
            h.version = conn.protocol_version().map(version_name);
            h.cipher_suite = conn.negotiated_cipher_suite().map(|s| {
                let suite = s.suite();
                suite
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{suite:?}"))
            });
            h.alpn = conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let session = Session {
                conn,
                sock,
                eof: false,
            };
            (h, Some(session))
        }
        Err(end) => {
            end.apply(&mut h, deadline, started);
            (h, None)
        }
    }
}

/// Why a handshake did not complete.
enum End {
    Stalled,
    Closed(String),
    NotTls(String),
    Rustls(rustls::Error),
    Io(io::Error),
}

impl End {
    fn apply(self, h: &mut Handshake, deadline: Instant, started: Instant) {
        match self {
            End::Stalled => {
                h.outcome = TlsOutcome::Stalled;
                let waited = deadline.saturating_duration_since(started).as_millis();
                h.message = Some(format!(
                    "the server sent nothing more for {waited} ms after {} bytes; the handshake \
                     reached {}",
                    h.bytes_received,
                    stage_name(h.reached)
                ));
            }
            End::Closed(why) => {
                h.outcome = TlsOutcome::Closed;
                h.message = Some(why);
            }
            End::NotTls(reply) => {
                h.outcome = TlsOutcome::NotTls;
                h.message = Some("the server answered with bytes that are not a TLS record".into());
                h.plaintext_reply = Some(reply);
            }
            End::Rustls(e) => {
                let (alert, from_server) = alert_of(&e);
                h.outcome = if alert.is_some() {
                    TlsOutcome::Alert
                } else {
                    TlsOutcome::Error
                };
                h.alert = alert;
                h.message = Some(if from_server {
                    format!("the server sent an alert: {e}")
                } else {
                    format!("the probe's TLS stack refused the handshake: {e}")
                });
            }
            End::Io(e) => match e.kind() {
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => {
                    h.outcome = TlsOutcome::Closed;
                    h.message = Some(format!("the connection was reset: {e}"));
                }
                _ => {
                    h.outcome = TlsOutcome::Error;
                    h.message = Some(e.to_string());
                }
            },
        }
    }
}

async fn drive(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
    h: &mut Handshake,
    hello_sent: &mut Instant,
    seen: &Mutex<Seen>,
) -> Result<(), End> {
    flush(conn, sock, deadline).await?;
    *hello_sent = Instant::now();
    h.reached = TlsStage::ClientHelloSent;
    let mut buf = vec![0u8; READ_CHUNK];
    while conn.is_handshaking() {
        let n = read(sock, &mut buf, deadline).await?;
        if n == 0 {
            return Err(End::Closed(format!(
                "the server closed the connection after {} bytes",
                h.bytes_received
            )));
        }
        if h.bytes_received == 0 {
            h.first_flight_ms = Some(ms_since(*hello_sent));
            h.reached = TlsStage::ServerHello;
            if !looks_like_tls(&buf[..n]) {
                h.bytes_received = n as u64;
                let reply = plaintext(sock, buf[..n].to_vec(), deadline, h).await;
                return Err(End::NotTls(reply));
            }
        }
        h.bytes_received += n as u64;
        if let Err(end) = feed(conn, &buf[..n]) {
            // The alert rustls queued goes out (best effort), as a client's would.
            let _ = flush(conn, sock, deadline).await;
            return Err(end);
        }
        if seen.lock().map(|s| s.webpki.is_some()).unwrap_or(false) {
            h.reached = TlsStage::Certificate;
        }
        flush(conn, sock, deadline).await?;
    }
    h.finished_ms = Some(ms_since(*hello_sent));
    Ok(())
}

/// Hands received bytes to rustls.
fn feed(conn: &mut ClientConnection, mut bytes: &[u8]) -> Result<(), End> {
    while !bytes.is_empty() {
        conn.read_tls(&mut bytes).map_err(End::Io)?;
        if let Err(e) = conn.process_new_packets() {
            return Err(End::Rustls(e));
        }
    }
    Ok(())
}

async fn flush(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    deadline: Instant,
) -> Result<(), End> {
    while conn.wants_write() {
        let mut out = Vec::new();
        conn.write_tls(&mut out).map_err(End::Io)?;
        match tokio::time::timeout_at(deadline, sock.write_all(&out)).await {
            Err(_) => return Err(End::Stalled),
            Ok(r) => r.map_err(End::Io)?,
        }
    }
    Ok(())
}

async fn read(sock: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<usize, End> {
    match tokio::time::timeout_at(deadline, sock.read(buf)).await {
        Err(_) => Err(End::Stalled),
        Ok(r) => r.map_err(End::Io),
    }
}

/// A TLS record starts with its content type (20 to 24) and a major version of 3.
fn looks_like_tls(bytes: &[u8]) -> bool {
    (0x14..=0x18).contains(&bytes[0]) && bytes.get(1).is_none_or(|v| *v == 0x03)
}

/// The start of a non-TLS reply, read on briefly (a plaintext server sends its 400 page and
/// closes), as printable ASCII.
async fn plaintext(
    sock: &mut TcpStream,
    mut got: Vec<u8>,
    deadline: Instant,
    h: &mut Handshake,
) -> String {
    let until = deadline.min(Instant::now() + std::time::Duration::from_millis(200));
    let mut buf = [0u8; 1024];
    while got.len() < 4 * PLAINTEXT_MAX {
        match tokio::time::timeout_at(until, sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                got.extend_from_slice(&buf[..n]);
                h.bytes_received += n as u64;
            }
            _ => break,
        }
    }
    printable(&got, PLAINTEXT_MAX)
}

/// Bytes as printable ASCII: runs of anything else (line ends included) become one space.
pub fn printable(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes {
        if out.len() >= max {
            break;
        }
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_string()
}

/// The alert for a rustls error (snake case, as in RFC 8446), and whether the server sent it.
fn alert_of(e: &rustls::Error) -> (Option<String>, bool) {
    use rustls::Error as E;
    let ours = |s: &str| (Some(s.to_string()), false);
    match e {
        E::AlertReceived(d) => (Some(snake(&format!("{d:?}"))), true),
        E::InvalidMessage(_) => ours("decode_error"),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            ours("unexpected_message")
        }
        E::PeerIncompatible(p) => match p {
            rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13
            | rustls::PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | rustls::PeerIncompatible::SupportedVersionsExtensionRequired => {
                ours("protocol_version")
            }
            _ => ours("handshake_failure"),
        },
        E::PeerMisbehaved(_) => ours("illegal_parameter"),
        E::DecryptError => ours("decrypt_error"),
        E::InvalidCertificate(_) => ours("bad_certificate"),
        E::NoApplicationProtocol => ours("no_application_protocol"),
        _ => (None, false),
    }
}

/// `HandshakeFailure` -> `handshake_failure`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

fn stage_name(s: TlsStage) -> &'static str {
    match s {
        TlsStage::ClientHelloSent => "client_hello_sent",
        TlsStage::ServerHello => "server_hello",
        TlsStage::Certificate => "certificate",
        TlsStage::Finished => "finished",
    }
}

fn ms_since(t: Instant) -> f64 {
    super::super::pacing::ms(t.elapsed())
}

impl Session {
    /// Sends application data (encrypted), bounded by `deadline` by the caller.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(data)?;
        while self.conn.wants_write() {
            let mut out = Vec::new();
            self.conn.write_tls(&mut out)?;
            self.sock.write_all(&out).await?;
        }
        Ok(())
    }

    /// Application data into `buf`; 0 at the end (close_notify, or the peer closing without
    /// one, which HTTP/1.1 with `Connection: close` tolerates).
    pub async fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut raw = vec![0u8; READ_CHUNK];
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            let n = self.sock.read(&mut raw).await?;
            if n == 0 {
                self.eof = true;
                // An empty read tells rustls the transport ended.
                self.conn.read_tls(&mut &raw[..0])?;
                continue;
            }
            let mut bytes = &raw[..n];
            while !bytes.is_empty() {
                self.conn.read_tls(&mut bytes)?;
                self.conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_plaintext() {
        assert!(looks_like_tls(&[0x16, 0x03, 0x03]));
        assert!(looks_like_tls(&[0x15]));
        assert!(!looks_like_tls(b"HTTP/1.1 400"));
        assert!(!looks_like_tls(&[0x16, 0x02]));
        assert_eq!(
            printable(b"HTTP/1.1 400 Bad\r\n\r\n<html>\x00x", 200),
            "HTTP/1.1 400 Bad <html> x"
        );
        assert_eq!(printable(b"abcdef", 3), "abc");
        assert_eq!(snake("HandshakeFailure"), "handshake_failure");
        assert_eq!(snake("DecodeError"), "decode_error");
    }
}
