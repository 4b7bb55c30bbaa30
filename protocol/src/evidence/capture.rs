use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{
    CaptureStop, FlowSide, Handshake, IcmpKind, Open, PacketDirection, Rcode, RecordType, TcpFlags,
};

/// What a bounded capture saw, summarised per flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptureSummary {
    /// Interface captured on, or `any`.
    pub interface: String,
    /// The filter expression used (the default one spelled out).
    pub filter: String,
    /// Bytes kept per packet, from the network header on (the pcap records add the 16-byte
    /// LINUX_SLL header).
    pub snaplen: u32,
    /// Packets read and recorded (in the pcap when pcap output is on).
    pub packets_captured: u64,
    /// Bytes recorded (the kept part of each packet).
    pub bytes_captured: u64,
    /// PACKET_STATISTICS: packets the kernel dropped because we did not read fast enough.
    pub kernel_drops: u64,
    /// Which limit ended the capture.
    pub stopped_by: Open<CaptureStop>,
    #[serde(default)]
    pub tcp_flows: Vec<TcpFlow>,
    #[serde(default)]
    pub icmp_errors: Vec<IcmpError>,
    #[serde(default)]
    pub dns: Vec<DnsExchange>,
    /// PACKET_STATISTICS: packets that passed the filter in the kernel (captured + dropped +
    /// still queued at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_received: Option<u64>,
    /// What a reader should know about this capture (targets left out of the default filter,
    /// a flow table that filled up...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpFlow {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub handshake: Open<Handshake>,
    /// SYNs sent, counting retransmissions.
    pub syn_count: u32,
    /// Retransmitted segments in either direction: repeated SYNs and SYN-ACKs, and data
    /// segments that carry no byte beyond what that direction had already sent.
    pub retransmits: u32,
    /// A RST came after payload had flowed (a reset connection, not a refused one).
    pub rst_after_data: bool,
    pub packets: u64,
    /// Bytes on the wire from the network header on (original lengths, not the kept part).
    pub bytes: u64,
    /// Time from the first SYN to the SYN-ACK (established) or the RST (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_ms: Option<f64>,
    /// Who sent the first RST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rst_from: Option<Open<FlowSide>>,
    /// The flow's first packets, one mark each, in capture order (protocol minor 4): what
    /// both-ends correlation lines up across two captures. At most [`MAX_MARKS_PER_FLOW`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<PacketMark>,
    /// Packets of the flow past the marks kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub marks_dropped: u64,
}

/// Marks kept per flow: a handshake with its retransmissions and the first data segments.
pub const MAX_MARKS_PER_FLOW: usize = 32;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One captured packet of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketMark {
    /// The kernel's capture timestamp, microseconds since the Unix epoch (the node's clock:
    /// two ends on different nodes are only as comparable as their clocks).
    pub at_us: u64,
    /// Which side of the flow sent it.
    pub from: Open<FlowSide>,
    pub flags: TcpFlags,
    /// TCP payload bytes.
    pub len: u32,
    /// The interface it was seen on, when the capture had one (capture on `any`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Received or sent by this namespace, when the capture said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Open<PacketDirection>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcmpError {
    /// Who sent the ICMP error.
    pub from: std::net::IpAddr,
    /// Which error; one this version does not name travels as `type/code`.
    pub kind: Open<IcmpKind>,
    /// The flow the error is about, from the quoted header: `tcp 10.0.0.1:40000 > 10.0.0.2:80`.
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
    pub qtype: Open<RecordType>,
    /// Response code, or `None` when no answer was seen.
    #[serde(default)]
    pub rcode: Option<Open<Rcode>>,
    /// From the first query to the first response.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Records in the response's answer section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<u32>,
    /// Times the query (same id, name and type) was sent; more than 1 means retransmitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<u32>,
}
