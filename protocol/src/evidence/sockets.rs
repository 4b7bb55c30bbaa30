use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// TCP socket table of the namespace from sock_diag (`ss -tan` equivalent), v4 and v6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketsEvidence {
    /// Count per state in `ss` spelling (`ESTAB`, `TIME-WAIT`, `CLOSE-WAIT`, `LISTEN`...).
    pub states: BTreeMap<String, u64>,
    pub total: u64,
    /// `net.ipv4.ip_local_port_range` as (low, high).
    #[serde(default)]
    pub local_port_range: Option<(u16, u16)>,
    /// TIME-WAIT sockets as a fraction of the ephemeral port range size (per destination the
    /// limit is the range; this is the namespace-wide pressure indicator).
    #[serde(default)]
    pub time_wait_ratio: Option<f64>,
    /// The destination with the most TIME-WAIT sockets and their count (ports are per
    /// destination tuple, so this is what exhausts first).
    #[serde(default)]
    pub time_wait_top_peer: Option<PeerCount>,
    /// CLOSE-WAIT grouped by remote peer, largest first (the peer closed, our app did not).
    #[serde(default)]
    pub close_wait_by_peer: Vec<PeerCount>,
    /// SYN-SENT sockets toward the plan's targets (connects waiting for an answer).
    #[serde(default)]
    pub syn_sent_to_targets: Vec<PeerCount>,
    /// Listening sockets with their accept queue: `recv_q` = connections waiting for
    /// accept(), `send_q` = the backlog limit.
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
