//! `route` and `rules` evidence: the kernel's route to each target and the policy routing
//! rules. Rules: no route (or a refusing route or rule, named with the policy rule and table
//! that led there when the probe found them); the route leaves by a down interface;
//! next hop FAILED or INCOMPLETE; wrong source interface; and, through `sysctls`, strict
//! rp_filter with an asymmetric route. Healthy routes are proven, one line per next hop.

use std::net::IpAddr;

use protocol::{
    AddressScope, LinksEvidence, NoRouteReason, NudState, Open, RefusedBy, RouteEvidence,
    RouteInfo, RouteOutcome, RouteType, RulesEvidence, TcpEvidence, TcpOutcome,
};

use crate::checks::links::{down_words, link_is_down, state_line};
use crate::checks::sysctls::rp_filter_asymmetric;
use crate::checks::tcp::connected;
use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::list;

impl Progress for RouteEvidence {
    fn progress(&self) -> (Mark, String) {
        match &self.outcome {
            RouteOutcome::Found(i) => (
                Mark::Info,
                format!(
                    "{}{} dev {}{}",
                    self.destination,
                    i.gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
                    i.dev.as_deref().unwrap_or("?"),
                    i.prefsrc.map(|s| format!(" src {s}")).unwrap_or_default()
                ),
            ),
            RouteOutcome::NoRoute { message, .. } => {
                (Mark::Fail, format!("{}: {message}", self.destination))
            }
        }
    }
}

impl Progress for RulesEvidence {
    fn progress(&self) -> (Mark, String) {
        (
            Mark::Info,
            format!("{} policy routing rules", self.rules.len()),
        )
    }
}

pub fn apply(f: &Facts, r: &mut Report) {
    // Healthy routes that share a next hop are shown on one line:
    // `10.96.0.10, 10.244.1.5 via 10.244.0.1 dev eth0 src 10.244.0.13`.
    let mut healthy: Vec<(String, Vec<String>)> = Vec::new();
    for route in f.all::<RouteEvidence>() {
        match &route.outcome {
            RouteOutcome::NoRoute {
                matched: Some(by),
                message,
                ..
            } => refused_by_policy(f, route, by, message, r),
            RouteOutcome::NoRoute {
                reason, message, ..
            } => no_route(f, route, reason, message, r),
            RouteOutcome::Found(info) => {
                if let Some(rest) = found(f, route, info, r) {
                    let dst = route.destination.to_string();
                    match healthy.iter_mut().find(|(k, _)| *k == rest) {
                        Some((_, dsts)) if !dsts.contains(&dst) => dsts.push(dst),
                        Some(_) => {}
                        None => healthy.push((rest, vec![dst])),
                    }
                }
            }
        }
    }
    for (rest, dsts) in healthy {
        r.ok(Layer::Network, format!("{}{rest}", list(&dsts, 3)));
    }
}

/// Did a connect toward this route's destination fail?
/// A path problem toward `ip` breaks it when a connect there failed; otherwise it is worth a
/// warning (traffic got through, or none was tried).
pub fn path_severity(f: &Facts, ip: IpAddr) -> Severity {
    if tcp_failed_to(f, ip) {
        Severity::Failure
    } else {
        Severity::Warning
    }
}

fn tcp_failed_to(f: &Facts, ip: IpAddr) -> bool {
    f.all::<TcpEvidence>()
        .iter()
        .any(|t| t.address.ip() == ip && !connected(t) && t.outcome != TcpOutcome::Unresolved)
}

fn no_route(
    f: &Facts,
    route: &RouteEvidence,
    reason: &Open<NoRouteReason>,
    message: &str,
    r: &mut Report,
) {
    let dst = route.destination;
    // Interfaces that carry a global address but are down: the routes through them vanished.
    let down: Vec<&protocol::Link> = f
        .one::<LinksEvidence>()
        .map(|l| {
            l.links
                .iter()
                .filter(|l| {
                    !l.loopback
                        && link_is_down(l)
                        && l.addresses.iter().any(|a| a.scope == AddressScope::Global)
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(l) = down.first() {
        r.finding(
            RuleCode::InterfaceDown,
            Layer::Network,
            Severity::Failure,
            "interface down",
            format!(
                "no route to {dst}: {} (address {}), so its routes are gone",
                down_words(l),
                l.addresses
                    .iter()
                    .find(|a| a.scope == AddressScope::Global)
                    .map(|a| format!("{}/{}", a.address, a.prefix_len))
                    .unwrap_or_default()
            ),
        )
        .line(format!("{dst}: no route ({reason})"))
        .line(state_line(l))
        .next(format!(
            "ip link show {}; ip -s link show {}",
            l.name, l.name
        ))
        .add();
        return;
    }
    let kind = match reason.known() {
        Some(NoRouteReason::NetworkUnreachable) => {
            "no matching route and no default route".to_string()
        }
        Some(
            NoRouteReason::Blackhole | NoRouteReason::Prohibited | NoRouteReason::HostUnreachable,
        ) => format!("a `{reason}` route or rule covers it"),
        None => reason.to_string(),
    };
    let rule_note = f
        .one::<RulesEvidence>()
        .and_then(|rs| {
            rs.rules
                .iter()
                .find(|x| x.action.known().is_some_and(|a| a.refuses()))
        })
        .map(|x| format!(" (ip rule {}: {} {})", x.priority, x.selector, x.action))
        .unwrap_or_default();
    r.finding(
        RuleCode::NoRoute,
        Layer::Network,
        Severity::Failure,
        "no route",
        format!("the kernel has no route to {dst}: {kind}{rule_note}"),
    )
    .line(format!("{dst}: {message}"))
    .next(format!("ip route get {dst}; ip route show table all"))
    .next("ip rule show")
    .add();
}

/// A refused lookup whose rule (and table and route) the probe named: the cause is that
/// rule, not a guess among the refusing rules.
fn refused_by_policy(
    f: &Facts,
    route: &RouteEvidence,
    by: &RefusedBy,
    message: &str,
    r: &mut Report,
) {
    let dst = route.destination;
    let rule = format!("policy rule {} (`{}`)", by.rule_priority, by.rule);
    let (hit, chain) = match (&by.route, by.table) {
        (Some(rt), Some(table)) => (
            format!("`{rt}` in table {table}, chosen by {rule}"),
            format!(
                "rule {}: {} -> table {table}: {rt}",
                by.rule_priority, by.rule
            ),
        ),
        _ => (rule, format!("rule {}: {}", by.rule_priority, by.rule)),
    };
    let effect = match by.route.as_deref().or(by.rule.rsplit(' ').next()) {
        Some(x) if x.starts_with("prohibit") => {
            ": the kernel refuses it at once (EACCES), before any packet leaves"
        }
        Some(x) if x.starts_with("blackhole") => {
            ": the kernel discards it (EINVAL), before any packet leaves"
        }
        Some(x) if x.starts_with("unreachable") => {
            ": the kernel answers unreachable at once, before any packet leaves"
        }
        _ => "",
    };
    // The connects to this destination failed for the same reason: not a firewall's doing.
    for t in f.all::<TcpEvidence>() {
        if t.address.ip() == dst && !connected(t) && t.icmp.is_none() {
            r.explained.insert(t.address);
        }
    }
    let mut b = r
        .finding(
            RuleCode::NoRoute,
            Layer::Network,
            Severity::Failure,
            "no route",
            format!("the route lookup for {dst} hit {hit}{effect}"),
        )
        .line(format!("{dst}: {message}"))
        .line(chain);
    if !by.unevaluated.is_empty() {
        b = b.line(format!(
            "not evaluated, taken as not matching: {}",
            by.unevaluated.join("; ")
        ));
    }
    let table = by
        .table
        .map(|t| format!("; ip route show table {t}"))
        .unwrap_or_default();
    b.next(format!("ip rule show{table}"))
        .next(format!("ip route get {dst}"))
        .add();
}

/// Rules about a route the kernel found. Returns the healthy line's text after the
/// destination (` via GW dev DEV src SRC (next hop REACHABLE)`) when nothing is wrong.
fn found(f: &Facts, route: &RouteEvidence, info: &RouteInfo, r: &mut Report) -> Option<String> {
    let dst = route.destination;
    let mut rest = String::new();
    if let Some(gw) = info.gateway {
        rest.push_str(&format!(" via {gw}"));
    }
    rest.push_str(&format!(" dev {}", info.dev.as_deref().unwrap_or("?")));
    if let Some(src) = info.prefsrc {
        rest.push_str(&format!(" src {src}"));
    }
    if info.table != 254 {
        rest.push_str(&format!(" table {}", info.table));
    }
    if let Some(mtu) = info.mtu {
        rest.push_str(&format!(" mtu {mtu}"));
    }
    let line = format!("{dst}{rest}");
    let mut bad = leaves_by_down_interface(f, route, info, &line, r);
    // A next hop behind a down interface cannot answer: the interface is the cause.
    if !bad {
        bad = next_hop_unreachable(info, &line, r);
    }
    bad |= wrong_source_interface(f, route, info, &line, r);
    bad |= rp_filter_asymmetric(f, route, info, &line, r);
    if bad {
        return None;
    }
    let neigh = info
        .neighbor
        .as_ref()
        .map(|n| format!(" (next hop {})", n.state))
        .unwrap_or_default();
    Some(format!("{rest}{neigh}"))
}

fn leaves_by_down_interface(
    f: &Facts,
    route: &RouteEvidence,
    info: &RouteInfo,
    line: &str,
    r: &mut Report,
) -> bool {
    let link = info.dev.as_deref().and_then(|d| f.link(d));
    let Some(l) = link.filter(|l| link_is_down(l) && !l.loopback) else {
        return false;
    };
    r.finding(
        RuleCode::InterfaceDown,
        Layer::Network,
        Severity::Failure,
        "interface down",
        format!(
            "the route to {} leaves via {}, and {}",
            route.destination,
            l.name,
            down_words(l)
        ),
    )
    .line(line)
    .line(state_line(l))
    .next(format!("ip link show {}", l.name))
    .add();
    true
}

fn next_hop_unreachable(info: &RouteInfo, line: &str, r: &mut Report) -> bool {
    let Some(n) = info
        .neighbor
        .as_ref()
        .filter(|n| n.state.is_any(&[NudState::Failed, NudState::Incomplete]))
    else {
        return false;
    };
    let dev = info.dev.as_deref().unwrap_or("?");
    let hop = if info.gateway.is_some() {
        "gateway"
    } else {
        "on-link destination"
    };
    r.finding(
        RuleCode::NeighborUnreachable,
        Layer::Network,
        Severity::Failure,
        "next hop unreachable",
        format!(
            "next hop {} ({hop}) on {dev} is {}: nothing answers ARP/NDP for it",
            n.address, n.state
        ),
    )
    .line(line)
    .line(format!("neighbor {} {} on {dev}", n.address, n.state))
    .next(format!("ip neigh show dev {dev}"))
    .next(format!("arping -I {dev} -c 3 {}", n.address))
    .add();
    true
}

/// The pod's own IP is on another interface than the one the route uses.
fn wrong_source_interface(
    f: &Facts,
    route: &RouteEvidence,
    info: &RouteInfo,
    line: &str,
    r: &mut Report,
) -> bool {
    let dst = route.destination;
    let pod_ip: Option<IpAddr> = f
        .kube
        .source
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    let (Some(pod_ip), Some(src)) = (pod_ip, info.prefsrc) else {
        return false;
    };
    if src == pod_ip
        || info.route_type == RouteType::Local
        || dst.is_loopback()
        || pod_ip.is_ipv4() != src.is_ipv4()
    {
        return false;
    }
    let dev = info.dev.as_deref().unwrap_or("?");
    let pod_dev = f.link_with_address(pod_ip).map(|l| l.name.clone());
    let severity = path_severity(f, dst);
    r.finding(
        RuleCode::WrongSourceInterface,
        Layer::Network,
        severity,
        "wrong interface",
        format!(
            "traffic to {dst} leaves via {dev} with source {src}, not the pod IP \
             {pod_ip}{}: replies will not come back to the pod",
            pod_dev.map(|d| format!(" (on {d})")).unwrap_or_default()
        ),
    )
    .line(line)
    .next(format!("ip route get {dst}; ip route show table all"))
    .add();
    true
}
