use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{MtuProbeResult, MtuVariant, Open, TargetRole};

/// Path MTU search toward one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtuEvidence {
    pub target: String,
    pub destination: IpAddr,
    /// What the target stands for (echoed from the plan).
    #[serde(default)]
    pub role: Open<TargetRole>,
    /// `icmp` (echo with DF, needs NET_RAW or ping sockets) or `tcp` (unprivileged, DF
    /// segments toward the target's port, acknowledged bytes read from TCP_INFO).
    pub variant: Open<MtuVariant>,
    #[serde(default)]
    pub interface_mtu: Option<u32>,
    #[serde(default)]
    pub route_mtu: Option<u32>,
    /// Largest IP packet size that got through.
    #[serde(default)]
    pub largest_ok: Option<u32>,
    /// Smallest IP packet size that was lost.
    #[serde(default)]
    pub smallest_lost: Option<u32>,
    /// An ICMP frag-needed / packet-too-big came back (the kernel learned a PMTU).
    pub frag_needed_seen: bool,
    /// PMTU the kernel learned, when one was reported.
    #[serde(default)]
    pub learned_pmtu: Option<u32>,
    /// Small packets pass, large ones vanish, and no ICMP error came back.
    pub blackhole: bool,
    /// Each size tried, in order.
    #[serde(default)]
    pub probes: Vec<MtuProbe>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtuProbe {
    pub size: u32,
    pub result: Open<MtuProbeResult>,
    #[serde(default)]
    pub rtt_ms: Option<f64>,
}
