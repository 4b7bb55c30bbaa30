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
        /// The policy rule, and the table and route it led to, that refused (minor 3): the
        /// kernel's answer is only an errno, so the probe walks the rules and tables it
        /// dumped the way the kernel does for this destination. Absent when the walk found
        /// no refusing rule or route that agrees with the errno (no route at all, or a
        /// selector the walk cannot evaluate decided it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        matched: Option<RefusedBy>,
    },
}

/// Where a refused route lookup was refused: a rule whose action refuses
/// (`prohibit`, `blackhole`, `unreachable`), or a refusing route in the table a rule looked up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedBy {
    pub rule_priority: u32,
    /// The rule in `ip rule` spelling: `from all to 10.9.0.0/24 lookup 100`.
    pub rule: String,
    /// The table the rule looked up; absent when the rule's own action refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// The route that matched in that table, `ip route` style: `prohibit 10.9.0.0/24`;
    /// absent when the rule's own action refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Selectors of earlier rules the walk could not evaluate and treated as not matching
    /// (`rule 500: l3mdev`): if one of them did match, the kernel went elsewhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unevaluated: Vec<String>,
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
