use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::{Open, SocketState};

/// TCP socket table of the namespace from sock_diag (`ss -tan` equivalent), v4 and v6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketsEvidence {
    /// Count per state, keyed in `ss` spelling (`ESTAB`, `TIME-WAIT`, `CLOSE-WAIT`...).
    pub states: BTreeMap<Open<SocketState>, u64>,
    pub total: u64,
    /// `net.ipv4.ip_local_port_range` as (low, high).
    #[serde(default)]
    pub local_port_range: Option<(u16, u16)>,
    /// TIME-WAIT sockets as a fraction of the ephemeral port range size (per destination the
    /// limit is the range; this is the namespace-wide pressure indicator).
    #[serde(default)]
    pub time_wait_ratio: Option<f64>,
    /// The destination with the most TIME-WAIT sockets and their count (ports are per
    /// destination tuple, so this is what exhausts first). Only outgoing connections count
    /// here: TIME-WAIT on a port we listen on uses no ephemeral port.
    #[serde(default)]
    pub time_wait_top_peer: Option<PeerCount>,
    /// CLOSE-WAIT grouped by remote peer, largest first, at most `plan.sockets_top` entries
    /// (the peer closed, our app did not). Outgoing connections group by the remote
    /// `ip:port` (the service); connections accepted by one of our listeners group by the
    /// client's address with port 0 (each client uses its own ephemeral port).
    /// IPv4-mapped IPv6 peers are shown as IPv4.
    #[serde(default)]
    pub close_wait_by_peer: Vec<PeerCount>,
    /// SYN-SENT sockets toward the plan's targets (connects waiting for an answer), one entry
    /// per target address that has any; port 0 stands for a target without a port (any port).
    #[serde(default)]
    pub syn_sent_to_targets: Vec<PeerCount>,
    /// Listening sockets with their accept queue: `recv_q` = connections waiting for
    /// accept(), `send_q` = the backlog limit. At most `plan.sockets_top`, fullest queue
    /// first, then listeners on a target's port, then by address.
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerCount {
    pub peer: SocketAddr,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub local: SocketAddr,
    pub recv_q: u32,
    pub send_q: u32,
}

/// Helper for callers that want the loopback-only listeners (bound to 127.0.0.1 / ::1).
pub fn is_loopback_only(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}
