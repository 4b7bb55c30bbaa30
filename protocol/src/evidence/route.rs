use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{Family, NoRouteReason, NudState, Open, RouteType, RuleAction, TargetRole};

/// The kernel's own answer to `ip route get DST` (RTM_GETROUTE with RTM_F_LOOKUP_TABLE), for
/// one target, plus the next hop's neighbor entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteEvidence {
    /// The plan target's label.
    pub target: String,
    pub destination: IpAddr,
    /// What the target stands for (echoed from the plan).
    #[serde(default)]
    pub role: Open<TargetRole>,
    pub outcome: RouteOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RouteOutcome {
    /// A route was found.
    Found(RouteInfo),
    /// The kernel refused: no route (ENETUNREACH), or an unreachable/prohibit/blackhole route.
    NoRoute {
        /// Which refusal; an errno this version does not name travels as its name.
        reason: Open<NoRouteReason>,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// Routing table id the answer came from (254 = main, 255 = local).
    pub table: u32,
    pub route_type: Open<RouteType>,
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub prefsrc: Option<IpAddr>,
    /// Route MTU (RTAX_MTU metric or cached PMTU), when the kernel reports one.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The neighbor entry of the next hop (gateway, or the destination when on-link).
    #[serde(default)]
    pub neighbor: Option<Neighbor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbor {
    pub address: IpAddr,
    /// NUD state in `ip neigh` spelling (`NONE` when there is no entry).
    pub state: Open<NudState>,
    #[serde(default)]
    pub lladdr: Option<String>,
}

/// Policy routing rules (`ip rule` equivalent), v4 and v6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesEvidence {
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub family: Open<Family>,
    pub priority: u32,
    /// `ip rule` style selector, e.g. `from 10.0.0.0/24 to 10.1.0.5 fwmark 0x1 iif eth0`, or `all`.
    pub selector: String,
    pub action: Open<RuleAction>,
    #[serde(default)]
    pub table: Option<u32>,
}
