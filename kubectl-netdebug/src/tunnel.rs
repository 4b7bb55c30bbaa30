//! Reading the probe's events through the API server's port-forward to the probe's loopback
//! listener (the plan's `tunnel`), which answers as soon as the probe starts. The container
//! log only answers once the kubelet reports the container, at its next relist: one to two
//! seconds later on a typical node (measured in BENCHMARKS.md). The log stays the record the
//! client falls back to; the tunnel is the faster copy of the same lines.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Portforwarder};
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio::time::Instant;

use crate::error::api_status;
use protocol::TunnelPlan;

/// Pauses between attempts while the probe is not listening yet: short for the first
/// `QUICK_PHASE` (the probe usually starts within a second, and a doubling pause there cost
/// 125 ms on average, which both ends paid once per probe), then doubling up to the longest,
/// so that a container the kubelet is slow to start does not cost the API server, the
/// kubelet and the runtime twenty dials a second.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LONGEST_RETRY: Duration = Duration::from_millis(250);
const QUICK_PHASE: Duration = Duration::from_secs(1);
/// One attempt: the API server, the kubelet and the runtime dialling the pod's loopback.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(3);
/// The ports the probe may listen on: the dynamic range, where a server rarely binds.
const PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// A fresh port and token for one run.
pub fn new_plan() -> TunnelPlan {
    TunnelPlan {
        port: rand::rng().random_range(PORTS),
        token: Alphanumeric.sample_string(&mut rand::rng(), 32),
        linger_ms: protocol::DEFAULT_TUNNEL_LINGER_MS,
    }
}

/// Why the tunnel will not be used; the run reads the log instead.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The API server refused the port-forward (RBAC, an admission policy, a proxy).
    #[error("the API server refused the port-forward (HTTP {0})")]
    Refused(u16),
    #[error("the probe did not answer on 127.0.0.1:{port} before the deadline")]
    NoAnswer { port: u16 },
    /// Something answered on the port without the probe's first line: not our probe.
    #[error("something else answers on 127.0.0.1:{port} in the pod")]
    NotTheProbe { port: u16 },
}

/// The open tunnel: the byte stream from the probe, the way back to it for control words
/// (both ends), and the port-forward that carries them (dropping it closes the connection).
pub struct Tunnel {
    pub reader: BufReader<ReadHalf<DuplexStream>>,
    control: Option<Control>,
    _forwarder: Portforwarder,
}

impl Tunnel {
    /// The control channel, for the one task that paces the probe.
    pub fn take_control(&mut self) -> Option<Control> {
        self.control.take()
    }
}

/// The client's half of a probe's control channel (the plan's `control` via `tunnel`).
pub struct Control(WriteHalf<DuplexStream>);

impl Control {
    /// Send one control word (`go`, `stop`). A probe that already finished has closed the
    /// connection; that is not an error of the run, so the result only says whether it went.
    pub async fn send(&mut self, word: &str) -> bool {
        self.0
            .write_all(format!("{word}\n").as_bytes())
            .await
            .is_ok()
            && self.0.flush().await.is_ok()
    }
}

/// Connect to the probe through port-forward, retrying while it is not listening yet, until
/// it sends its first line or `until` passes. Each attempt is one port-forward request to the
/// API server, counted in `requests` as it is made (the run reports them: how much a probe
/// that is slow to start cost the API server, even when the log was read in the end).
pub async fn open(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    plan: &TunnelPlan,
    until: Instant,
    requests: &AtomicU32,
) -> Result<Tunnel, TunnelError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut pause = FIRST_RETRY;
    let quick_until = Instant::now() + QUICK_PHASE;
    loop {
        let limit = until.min(Instant::now() + ATTEMPT_LIMIT);
        requests.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout_at(limit, attempt(&api, pod, plan)).await {
            Ok(Ok(Some(tunnel))) => return Ok(tunnel),
            Ok(Err(e)) => return Err(e),
            // Not listening yet (the runtime's dial was refused), or an attempt that hung.
            Ok(Ok(None)) | Err(_) => {}
        }
        if Instant::now() + pause >= until {
            return Err(TunnelError::NoAnswer { port: plan.port });
        }
        tokio::time::sleep(pause).await;
        if Instant::now() >= quick_until {
            pause = (pause * 2).min(LONGEST_RETRY);
        }
    }
}

/// One port-forward: Some when the probe answered, None when nothing listens yet.
async fn attempt(
    api: &Api<Pod>,
    pod: &str,
    plan: &TunnelPlan,
) -> Result<Option<Tunnel>, TunnelError> {
    let mut forwarder = match api.portforward(pod, &[plan.port]).await {
        Ok(f) => f,
        Err(e) => match api_status(&e) {
            Some(code) => return Err(TunnelError::Refused(code)),
            // A transport failure is retried like a probe not yet listening.
            None => return Ok(None),
        },
    };
    let Some(mut stream) = forwarder.take_stream(plan.port) else {
        return Ok(None);
    };
    if stream
        .write_all(format!("{}\n", plan.token).as_bytes())
        .await
        .is_err()
    {
        return Ok(None);
    }
    let (read, write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    // A refused dial shows as the stream ending at once (the reason goes to the error
    // channel, which says no more than "connection refused").
    let first = match reader.fill_buf().await {
        Ok(bytes) if !bytes.is_empty() => bytes,
        _ => return Ok(None),
    };
    if !looks_like_an_event(first) {
        return Err(TunnelError::NotTheProbe { port: plan.port });
    }
    Ok(Some(Tunnel {
        reader,
        control: Some(Control(write)),
        _forwarder: forwarder,
    }))
}

/// The probe's every line is a JSON envelope: `{"v":`.
fn looks_like_an_event(first: &[u8]) -> bool {
    let prefix = b"{\"v\":";
    // The first read may hold only part of the prefix.
    first.starts_with(prefix) || prefix.starts_with(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_fresh_valid_and_in_the_dynamic_range() {
        let a = new_plan();
        let b = new_plan();
        a.validate().unwrap();
        assert_ne!(a.token, b.token);
        assert!(PORTS.contains(&a.port));
    }

    #[test]
    fn only_an_envelope_is_the_probe() {
        assert!(looks_like_an_event(b"{\"v\":1,\"seq\":0"));
        assert!(looks_like_an_event(b"{\"v"));
        assert!(!looks_like_an_event(b"HTTP/1.1 400 Bad Request"));
        assert!(!looks_like_an_event(b"SSH-2.0-OpenSSH"));
    }
}
