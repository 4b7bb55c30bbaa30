use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A TCP connect to one target address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpEvidence {
    pub target: String,
    pub address: SocketAddr,
    pub outcome: TcpOutcome,
    /// Time until the outcome was known (the timeout itself for `timeout`).
    pub latency_ms: f64,
    /// Local address the kernel chose, when the socket got one.
    #[serde(default)]
    pub local: Option<SocketAddr>,
    /// errno of the failure, when there was one.
    #[serde(default)]
    pub errno: Option<i32>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpOutcome {
    /// SYN-ACK received; connection established.
    Ok,
    /// RST received (ECONNREFUSED): reachable, nothing listening or a REJECT with tcp-reset.
    Refused,
    /// No answer before the timeout: silent drop somewhere.
    Timeout,
    /// ICMP host unreachable / admin prohibited (EHOSTUNREACH).
    HostUnreachable,
    /// ICMP net unreachable or no route (ENETUNREACH).
    NetworkUnreachable,
    /// EADDRNOTAVAIL: no local address/port available (ephemeral port exhaustion, bad source).
    AddressNotAvailable,
    /// EPERM/EACCES: a local firewall or LSM refused the send.
    PermissionDenied,
    /// The name could not be resolved to an address (host targets only).
    Unresolved,
    /// Anything else; see `errno` and `message`.
    Error,
}

impl TcpOutcome {
    pub fn is_ok(self) -> bool {
        self == TcpOutcome::Ok
    }
}
