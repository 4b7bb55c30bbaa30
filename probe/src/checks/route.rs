//! Check `route`: for each address of each plan target, the kernel's own answer to
//! `ip route get` (RTM_GETROUTE with RTM_F_LOOKUP_TABLE, so the table is the one the route
//! really came from), the neighbor entry of the next hop, and once per run the policy rules
//! (`ip rule`, v4 and v6). Needs no privileges.
//!
//! The neighbor state is read when the check runs; the tcp check may be resolving the same
//! next hop at that moment, so a fresh INCOMPLETE can still turn into REACHABLE or FAILED.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use nix::errno::Errno;
use protocol::{
    CheckKind, Evidence, Family, Neighbor, NoRouteReason, NudState, Open, RouteEvidence, RouteInfo,
    RouteOutcome, Rule, RulesEvidence, Skipped, Target,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteMetric, RouteType};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::IpVersion;

use super::route_refusal::Refusals;
use super::Outcome;
use crate::context::Ctx;
use crate::netlink::{format_mac, route_address, NetlinkError, Rtnl};

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let rtnl = match Rtnl::connect() {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let names = match rtnl.link_names().await {
        Ok(n) => n,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    // Route lookups first (they are what the run is about), then one neighbour dump for all.
    let mut lookups: Vec<(&Target, IpAddr, Result<RouteMessage, NetlinkError>)> = Vec::new();
    for target in &ctx.plan.targets {
        match ctx.resolve_target(target).await {
            Ok(addresses) => {
                for destination in addresses {
                    let answer = rtnl.route_get(destination).await;
                    lookups.push((target, destination, answer));
                }
            }
            Err(why) => ctx.emit_skipped(Skipped::new(
                CheckKind::Route,
                format!("target `{}`: no route lookup: {why}", target.label),
            )),
        }
    }
    let neighbours = if lookups.is_empty() {
        Vec::new()
    } else {
        match rtnl.neighbours().await {
            Ok(n) => n,
            Err(e) => return Outcome::Failed(format!("neighbour table: {e}")),
        }
    };
    let rule_messages = match dump_rules(&rtnl).await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("policy rules: {e}")),
    };
    let mut refusals = Refusals::new(&rtnl, &rule_messages);
    for (target, destination, answer) in lookups {
        let mut outcome = match answer {
            Ok(msg) => outcome_of(&msg, destination, &names, &neighbours),
            Err(NetlinkError::Kernel { errno, .. }) => no_route_for_errno(errno),
            Err(e) => return Outcome::Failed(format!("route lookup for {destination}: {e}")),
        };
        refusals.explain(destination, &mut outcome).await;
        ctx.emit(Evidence::Route(RouteEvidence {
            target: target.label.clone(),
            destination,
            role: target.role.clone(),
            outcome,
        }));
    }
    ctx.emit(Evidence::Rules(RulesEvidence {
        rules: rule_messages.iter().map(rule).collect(),
    }));
    Outcome::Completed
}

/// The policy rules of both families, in the kernel's order.
async fn dump_rules(rtnl: &Rtnl) -> Result<Vec<RuleMessage>, NetlinkError> {
    let mut rules = Vec::new();
    for version in [IpVersion::V4, IpVersion::V6] {
        match rtnl.rules(version).await {
            Ok(mut msgs) => rules.append(&mut msgs),
            // A kernel without IPv6 has no v6 rules to show; v4 failing is a real error.
            Err(_) if !rules.is_empty() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rules)
}

/// A route lookup the kernel refused, by errno (what `ip route get` prints as `RTNETLINK
/// answers: ...`).
pub fn no_route_for_errno(errno: i32) -> RouteOutcome {
    let reason = match errno {
        libc::ENETUNREACH => NoRouteReason::NetworkUnreachable.into(),
        libc::EHOSTUNREACH => NoRouteReason::HostUnreachable.into(),
        libc::EACCES => NoRouteReason::Prohibited.into(),
        // A blackhole route answers lookups with EINVAL.
        libc::EINVAL => NoRouteReason::Blackhole.into(),
        // The errno name (`ENOENT`), as the evidence documents.
        other => Open::Unknown(format!("{:?}", Errno::from_raw(other))),
    };
    RouteOutcome::NoRoute {
        reason,
        message: Errno::from_raw(errno).desc().to_string(),
        matched: None,
    }
}

/// Turn the kernel's answer into evidence. IPv6 answers "no route" with a route of type
/// unreachable/prohibit/blackhole (and the errno in RTA_CACHEINFO) instead of an error.
pub fn outcome_of(
    msg: &RouteMessage,
    destination: IpAddr,
    names: &HashMap<u32, String>,
    neighbours: &[NeighbourMessage],
) -> RouteOutcome {
    let mut table = u32::from(msg.header.table);
    let mut oif = None;
    let mut gateway = None;
    let mut prefsrc = None;
    let mut mtu = None;
    let mut cache_error = 0u32;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(a) => gateway = route_address(a),
            RouteAttribute::PrefSource(a) => prefsrc = route_address(a),
            RouteAttribute::Metrics(metrics) => {
                mtu = metrics.iter().find_map(|m| match m {
                    RouteMetric::Mtu(v) if *v > 0 => Some(*v),
                    _ => None,
                })
            }
            RouteAttribute::CacheInfo(ci) => cache_error = ci.error,
            _ => {}
        }
    }
    match msg.header.kind {
        RouteType::Unreachable | RouteType::Prohibit | RouteType::BlackHole => {
            // RTA_CACHEINFO carries the error as a negative errno in an unsigned field.
            let errno = (cache_error as i32).abs();
            let errno = if errno != 0 {
                errno
            } else {
                match msg.header.kind {
                    RouteType::Unreachable => libc::EHOSTUNREACH,
                    RouteType::Prohibit => libc::EACCES,
                    _ => libc::EINVAL,
                }
            };
            return no_route_for_errno(errno);
        }
        _ => {}
    }
    let route_type = route_type_name(msg.header.kind);
    let next_hop = gateway.or(match msg.header.kind {
        RouteType::Unicast => Some(destination),
        _ => None,
    });
    let neighbor = match (next_hop, oif) {
        (Some(hop), Some(ifindex)) => Some(neighbor_of(hop, ifindex, neighbours)),
        _ => None,
    };
    RouteOutcome::Found(RouteInfo {
        table,
        route_type,
        dev: oif.map(|i| names.get(&i).cloned().unwrap_or_else(|| format!("if{i}"))),
        gateway,
        prefsrc,
        mtu,
        neighbor,
    })
}

/// The neighbour entry for `hop` on `ifindex`, `NONE` when the table has none.
pub fn neighbor_of(hop: IpAddr, ifindex: u32, neighbours: &[NeighbourMessage]) -> Neighbor {
    let entry = neighbours.iter().find(|n| {
        n.header.ifindex == ifindex
            && n.attributes.iter().any(|a| match a {
                NeighbourAttribute::Destination(d) => neighbour_ip(d) == Some(hop),
                _ => false,
            })
    });
    match entry {
        Some(n) => Neighbor {
            address: hop,
            state: nud_name(n.header.state),
            lladdr: n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(b) if !b.is_empty() => Some(format_mac(b)),
                _ => None,
            }),
        },
        None => Neighbor {
            address: hop,
            state: NudState::None.into(),
            lladdr: None,
        },
    }
}

fn neighbour_ip(a: &NeighbourAddress) -> Option<IpAddr> {
    match a {
        NeighbourAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        NeighbourAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// NUD state in `ip neigh` spelling.
pub fn nud_name(state: NeighbourState) -> Open<NudState> {
    match state {
        NeighbourState::Incomplete => NudState::Incomplete.into(),
        NeighbourState::Reachable => NudState::Reachable.into(),
        NeighbourState::Stale => NudState::Stale.into(),
        NeighbourState::Delay => NudState::Delay.into(),
        NeighbourState::Probe => NudState::Probe.into(),
        NeighbourState::Failed => NudState::Failed.into(),
        NeighbourState::Noarp => NudState::Noarp.into(),
        NeighbourState::Permanent => NudState::Permanent.into(),
        NeighbourState::None => NudState::None.into(),
        other => Open::Unknown(format!("0x{:x}", u16::from(other))),
    }
}

/// Route type in `ip route` spelling.
pub fn route_type_name(kind: RouteType) -> Open<protocol::RouteType> {
    use protocol::RouteType as T;
    match kind {
        RouteType::Unspec => T::Unspec,
        RouteType::Unicast => T::Unicast,
        RouteType::Local => T::Local,
        RouteType::Broadcast => T::Broadcast,
        RouteType::Anycast => T::Anycast,
        RouteType::Multicast => T::Multicast,
        RouteType::BlackHole => T::Blackhole,
        RouteType::Unreachable => T::Unreachable,
        RouteType::Prohibit => T::Prohibit,
        RouteType::Throw => T::Throw,
        RouteType::Nat => T::Nat,
        RouteType::ExternalResolve => T::Xresolve,
        other => return Open::Unknown(u8::from(other).to_string()),
    }
    .into()
}

/// One policy rule in `ip rule` terms.
pub fn rule(msg: &RuleMessage) -> Rule {
    let family = match msg.header.family {
        AddressFamily::Inet6 => Family::Inet6,
        _ => Family::Inet,
    };
    let mut priority = 0;
    let mut table = None;
    let mut parts: Vec<String> = Vec::new();
    if msg.header.flags.contains(RuleFlags::Invert) {
        parts.push("not".into());
    }
    let mut from = None;
    let mut to = None;
    let (mut fwmark, mut fwmask) = (None, None);
    let mut rest: Vec<String> = Vec::new();
    let mut goto = None;
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Table(t) => table = Some(*t),
            RuleAttribute::Source(a) => from = Some(prefix(a, msg.header.src_len)),
            RuleAttribute::Destination(a) => to = Some(prefix(a, msg.header.dst_len)),
            RuleAttribute::FwMark(m) => fwmark = Some(*m),
            RuleAttribute::FwMask(m) => fwmask = Some(*m),
            RuleAttribute::Iifname(n) => rest.push(format!("iif {n}")),
            RuleAttribute::Oifname(n) => rest.push(format!("oif {n}")),
            RuleAttribute::UidRange(r) => rest.push(format!("uidrange {}-{}", r.start, r.end)),
            RuleAttribute::IpProtocol(p) => rest.push(format!("ipproto {}", u8::from(*p))),
            RuleAttribute::SourcePortRange(r) => rest.push(port_range("sport", r.start, r.end)),
            RuleAttribute::DestinationPortRange(r) => {
                rest.push(port_range("dport", r.start, r.end))
            }
            RuleAttribute::L3MDev(true) => rest.push("l3mdev".into()),
            RuleAttribute::SuppressPrefixLen(n) if *n != u32::MAX => {
                rest.push(format!("suppress_prefixlength {n}"))
            }
            RuleAttribute::Goto(p) => goto = Some(*p),
            _ => {}
        }
    }
    parts.push(format!("from {}", from.unwrap_or_else(|| "all".into())));
    if let Some(to) = to {
        parts.push(format!("to {to}"));
    }
    if msg.header.tos != 0 {
        parts.push(format!("tos 0x{:02x}", msg.header.tos));
    }
    if let Some(mark) = fwmark {
        match fwmask {
            Some(mask) if mask != u32::MAX => parts.push(format!("fwmark 0x{mark:x}/0x{mask:x}")),
            _ => parts.push(format!("fwmark 0x{mark:x}")),
        }
    }
    parts.extend(rest);
    use protocol::RuleAction as A;
    let action = match msg.header.action {
        RuleAction::ToTable => A::Lookup.into(),
        RuleAction::Goto => A::Goto.into(),
        RuleAction::Nop => A::Nop.into(),
        RuleAction::Blackhole => A::Blackhole.into(),
        RuleAction::Unreachable => A::Unreachable.into(),
        RuleAction::Prohibit => A::Prohibit.into(),
        _ => Open::Unknown("unspec".into()),
    };
    let table = match msg.header.action {
        RuleAction::ToTable => table.or(Some(u32::from(msg.header.table))),
        RuleAction::Goto => goto,
        _ => None,
    };
    Rule {
        family: family.into(),
        priority,
        selector: parts.join(" "),
        action,
        table,
    }
}

/// `ip rule` spelling: a host prefix is just the address.
fn prefix(address: &IpAddr, len: u8) -> String {
    let host = if address.is_ipv4() { 32 } else { 128 };
    if len == host {
        address.to_string()
    } else {
        format!("{address}/{len}")
    }
}

fn port_range(name: &str, start: u16, end: u16) -> String {
    if start == end {
        format!("{name} {start}")
    } else {
        format!("{name} {start}-{end}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::route::RouteAddress;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn errno_reasons() {
        let reason = |e| match no_route_for_errno(e) {
            RouteOutcome::NoRoute { reason, .. } => reason,
            _ => unreachable!(),
        };
        assert_eq!(reason(libc::ENETUNREACH), NoRouteReason::NetworkUnreachable);
        assert_eq!(reason(libc::EHOSTUNREACH), NoRouteReason::HostUnreachable);
        assert_eq!(reason(libc::EACCES), NoRouteReason::Prohibited);
        assert_eq!(reason(libc::EINVAL), NoRouteReason::Blackhole);
        assert_eq!(reason(libc::ENOENT), Open::Unknown("ENOENT".into()));
        match no_route_for_errno(libc::ENETUNREACH) {
            RouteOutcome::NoRoute { message, .. } => assert_eq!(message, "Network is unreachable"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn gateway_route_with_neighbor() {
        let mut msg = RouteMessage::default();
        msg.header.kind = RouteType::Unicast;
        msg.header.table = 254;
        msg.attributes = vec![
            RouteAttribute::Table(100),
            RouteAttribute::Oif(3),
            RouteAttribute::Gateway(RouteAddress::from(ip("10.199.0.1"))),
            RouteAttribute::PrefSource(RouteAddress::from(ip("10.199.0.2"))),
            RouteAttribute::Metrics(vec![RouteMetric::Mtu(1280)]),
        ];
        let mut n = NeighbourMessage::default();
        n.header.ifindex = 3;
        n.header.state = NeighbourState::Failed;
        n.attributes = vec![NeighbourAttribute::Destination(NeighbourAddress::Inet(
            "10.199.0.1".parse().unwrap(),
        ))];
        let names = HashMap::from([(3, "veth0".to_string())]);
        let RouteOutcome::Found(info) = outcome_of(&msg, ip("10.199.9.9"), &names, &[n]) else {
            panic!("expected a route");
        };
        assert_eq!(info.table, 100);
        assert_eq!(info.dev.as_deref(), Some("veth0"));
        assert_eq!(info.gateway, Some(ip("10.199.0.1")));
        assert_eq!(info.prefsrc, Some(ip("10.199.0.2")));
        assert_eq!(info.mtu, Some(1280));
        let neigh = info.neighbor.unwrap();
        assert_eq!(
            (neigh.address, neigh.state.as_str()),
            (ip("10.199.0.1"), "FAILED")
        );
    }

    #[test]
    fn on_link_destination_without_entry_is_none() {
        let mut msg = RouteMessage::default();
        msg.header.kind = RouteType::Unicast;
        msg.attributes = vec![RouteAttribute::Oif(2)];
        let RouteOutcome::Found(info) = outcome_of(&msg, ip("10.199.0.7"), &HashMap::new(), &[])
        else {
            panic!("expected a route");
        };
        assert_eq!(info.dev.as_deref(), Some("if2"));
        let neigh = info.neighbor.unwrap();
        assert_eq!(
            (neigh.address, neigh.state.as_str()),
            (ip("10.199.0.7"), "NONE")
        );
    }

    #[test]
    fn ipv6_unreachable_answer_is_no_route() {
        let mut msg = RouteMessage::default();
        msg.header.kind = RouteType::Unreachable;
        let RouteOutcome::NoRoute { reason, .. } =
            outcome_of(&msg, ip("fd00:199::9"), &HashMap::new(), &[])
        else {
            panic!("expected no route");
        };
        assert_eq!(reason, NoRouteReason::HostUnreachable);
    }

    #[test]
    fn rule_selector() {
        let mut msg = RuleMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.action = RuleAction::ToTable;
        msg.header.dst_len = 32;
        msg.attributes = vec![
            RuleAttribute::Priority(100),
            RuleAttribute::Destination(ip("10.199.2.5")),
            RuleAttribute::Table(100),
            RuleAttribute::FwMark(1),
        ];
        let r = rule(&msg);
        assert_eq!(r.priority, 100);
        assert_eq!(r.selector, "from all to 10.199.2.5 fwmark 0x1");
        assert_eq!((r.action.as_str(), r.table), ("lookup", Some(100)));
    }
}
