use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{spelled, Open, TargetRole};

/// A TCP connect to one target address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpEvidence {
    pub target: String,
    /// The address connected to; for `unresolved`, the unspecified address with the port.
    pub address: SocketAddr,
    /// What the target stands for (echoed from the plan).
    #[serde(default)]
    pub role: Open<TargetRole>,
    pub outcome: Open<TcpOutcome>,
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

spelled! {
    /// How a TCP connect ended.
    pub enum TcpOutcome {
        /// SYN-ACK received; connection established.
        Ok = "ok",
        /// RST received (ECONNREFUSED): reachable, nothing listening or a REJECT with
        /// tcp-reset.
        Refused = "refused",
        /// No answer before the timeout: silent drop somewhere (`errno` unset: the probe's own
        /// timer), or the kernel gave up (ETIMEDOUT).
        Timeout = "timeout",
        /// EHOSTUNREACH: ICMP host unreachable or administratively prohibited (a REJECT on the
        /// path, local or remote), an `unreachable` route, or the next hop never answered
        /// ARP/ND.
        HostUnreachable = "host_unreachable",
        /// ENETUNREACH: no route to the destination, or ICMP net unreachable.
        NetworkUnreachable = "network_unreachable",
        /// EADDRNOTAVAIL: no local address/port available (ephemeral port exhaustion, bad
        /// source).
        AddressNotAvailable = "address_not_available",
        /// EPERM/EACCES: the connect was refused locally: a `prohibit` route, an LSM or a cgroup
        /// BPF hook. (An iptables OUTPUT DROP is not seen by connect: TCP retries the SYN, which
        /// shows as `timeout`; an OUTPUT REJECT shows as `refused` or `host_unreachable`.)
        PermissionDenied = "permission_denied",
        /// The name could not be resolved to an address (host targets only).
        Unresolved = "unresolved",
        /// Anything else; see `errno` and `message`.
        Error = "error",
    }
}

impl TcpOutcome {
    pub fn is_ok(self) -> bool {
        self == TcpOutcome::Ok
    }
}
