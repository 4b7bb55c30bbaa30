use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{AddressScope, LinkKind, Open, OperState};

/// All interfaces of the namespace (`ip -s addr` equivalent, from rtnetlink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinksEvidence {
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Link kind from IFLA_INFO_KIND (`veth`, `bridge`, `vxlan`...), when present.
    #[serde(default)]
    pub kind: Option<Open<LinkKind>>,
    /// Operational state as the kernel reports it.
    pub oper_state: Open<OperState>,
    /// IFF_UP: administratively up.
    pub admin_up: bool,
    /// IFF_LOWER_UP: carrier present.
    pub lower_up: bool,
    pub loopback: bool,
    pub mtu: u32,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub addresses: Vec<InterfaceAddress>,
    #[serde(default)]
    pub stats: LinkStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub scope: Open<AddressScope>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}
