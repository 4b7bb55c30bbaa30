use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// What a bounded capture saw, summarised per flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureSummary {
    /// Interface captured on, or `any`.
    pub interface: String,
    /// The filter expression used (the default one spelled out).
    pub filter: String,
    pub snaplen: u32,
    pub packets_captured: u64,
    pub bytes_captured: u64,
    /// PACKET_STATISTICS: packets the kernel dropped because we did not read fast enough.
    pub kernel_drops: u64,
    /// Which limit ended the capture: `duration`, `packets`, `bytes`, `deadline`.
    pub stopped_by: String,
    #[serde(default)]
    pub tcp_flows: Vec<TcpFlow>,
    #[serde(default)]
    pub icmp_errors: Vec<IcmpError>,
    #[serde(default)]
    pub dns: Vec<DnsExchange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpFlow {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// `established` (SYN answered by SYN-ACK), `refused` (SYN answered by RST),
    /// `unanswered` (SYN never answered), `midstream` (no SYN seen).
    pub handshake: String,
    /// SYNs sent, counting retransmissions.
    pub syn_count: u32,
    pub retransmits: u32,
    pub rst_after_data: bool,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcmpError {
    /// Who sent the ICMP error.
    pub from: std::net::IpAddr,
    /// `frag_needed`, `packet_too_big`, `port_unreachable`, `host_unreachable`,
    /// `net_unreachable`, `admin_prohibited`, `time_exceeded`, or `type/code`.
    pub kind: String,
    /// The flow the error is about, from the quoted header.
    #[serde(default)]
    pub about: Option<String>,
    /// Next-hop MTU for frag-needed / packet-too-big.
    #[serde(default)]
    pub mtu: Option<u32>,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsExchange {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub name: String,
    pub qtype: String,
    /// Response code, or `None` when no answer was seen.
    #[serde(default)]
    pub rcode: Option<String>,
    #[serde(default)]
    pub latency_ms: Option<f64>,
}
