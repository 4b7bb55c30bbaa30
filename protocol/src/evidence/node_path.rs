//! The node's half of a pod's path, read from the node's own network namespace while the other
//! checks run in the pod's (`--via-node`), or in the node's (`node/NAME`): the devices that
//! encapsulate pod traffic and their MTU against the underlay's, the node's route to each
//! target, rp_filter on those devices, and the node's conntrack fill (minor 6).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{ConntrackEvidence, CountersEvidence, LinkKind, Open};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodePathEvidence {
    /// Devices of an encapsulating kind (vxlan, geneve, ipip, sit, gre, gretap, ip6tnl,
    /// wireguard), in interface order.
    #[serde(default)]
    pub overlays: Vec<OverlayDevice>,
    /// The device of the node's default route (the underlay pod traffic is encapsulated onto)
    /// and its MTU, when there is a default route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlay: Option<NodeDevice>,
    /// The node's route to each target address; with `--via-node`, also its route back to the
    /// pod (target `the pod (return path)`), the device replies enter the pod by.
    #[serde(default)]
    pub routes: Vec<NodeRoute>,
    /// rp_filter as the kernel applies it (the larger of `all` and the device's own) on each
    /// device a route leaves by, and on each overlay device.
    #[serde(default)]
    pub rp_filter: Vec<DeviceSetting>,
    /// The node's conntrack table: fill and statistics, as the `conntrack` check reads them
    /// (`present: false` when nf_conntrack is not loaded on the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<ConntrackEvidence>,
    /// The node's counters, sampled when the check starts and again when the traffic checks
    /// are done (`TcpExt.IPReversePathFilter`: packets rp_filter dropped; `Ip.ForwDatagrams`;
    /// the drops and discards), as the `counters` check reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<CountersEvidence>,
    /// What could not be read (each piece is independent of the others).
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverlayDevice {
    pub name: String,
    pub kind: Open<LinkKind>,
    pub mtu: u32,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDevice {
    pub name: String,
    pub mtu: u32,
}

/// The `target` of the node's route back to the pod entered from it (`--via-node`).
pub const RETURN_PATH_TARGET: &str = "the pod (return path)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRoute {
    /// The target's label (from the plan).
    pub target: String,
    pub address: IpAddr,
    /// The device the node sends it by; None when the node has no route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_kind: Option<Open<LinkKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The route that matched is the default route (no more specific one covers the address).
    #[serde(default)]
    pub via_default: bool,
    /// Why there is no route, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSetting {
    pub dev: String,
    pub value: u32,
}
