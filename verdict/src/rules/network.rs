//! Network: no route / wrong interface / missing default route; next hop FAILED or
//! INCOMPLETE; interface down or erroring; rp_filter strict with an asymmetric route.

use std::net::IpAddr;

use protocol::{
    AddressScope, ConfScope, Link, LinksEvidence, NoRouteReason, Open, OperState, RouteEvidence,
    RouteInfo, RouteOutcome, RouteType, RuleAction, RulesEvidence, Sysctl, SysctlsEvidence,
    TcpEvidence, TcpOutcome,
};

use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::rules::{list, Report};

/// Link errors+drops as a share of packets that make an interface "erroring" (a few drops of
/// unknown protocols are normal on every veth).
const LINK_DROP_RATIO: f64 = 0.01;
const LINK_MIN_PACKETS: u64 = 100;

pub fn apply(f: &Facts, r: &mut Report) {
    // Healthy routes that share a next hop are shown on one line:
    // `10.96.0.10, 10.244.1.5 via 10.244.0.1 dev eth0 src 10.244.0.13`.
    let mut healthy: Vec<(String, Vec<String>)> = Vec::new();
    for route in f.all::<RouteEvidence>() {
        match &route.outcome {
            RouteOutcome::NoRoute { reason, message } => no_route(f, route, reason, message, r),
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
    interface_errors(f, r);
}

fn link_is_down(l: &Link) -> bool {
    !l.admin_up
        || !l.lower_up
        || l.oper_state
            .is_any(&[OperState::Down, OperState::LowerLayerDown])
}

fn down_words(l: &Link) -> String {
    if !l.admin_up {
        format!("{} is administratively down", l.name)
    } else if !l.lower_up {
        format!("{} has no carrier (oper state {})", l.name, l.oper_state)
    } else {
        format!("{} is {}", l.name, l.oper_state)
    }
}

/// Did a connect toward this route's destination fail?
fn tcp_failed_to(f: &Facts, ip: IpAddr) -> bool {
    f.all::<TcpEvidence>().any(|t| {
        t.address.ip() == ip && t.outcome != TcpOutcome::Ok && t.outcome != TcpOutcome::Unresolved
    })
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
    let down: Vec<&Link> = f
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
        .line(format!(
            "{}: admin {}, carrier {}, state {}",
            l.name,
            if l.admin_up { "up" } else { "down" },
            if l.lower_up { "yes" } else { "no" },
            l.oper_state
        ))
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
        ) => {
            format!("a `{reason}` route or rule covers it")
        }
        None => reason.to_string(),
    };
    let rule_note = f
        .one::<RulesEvidence>()
        .and_then(|rs| {
            rs.rules
                .iter()
                .find(|x| x.action.known().is_some_and(RuleAction::refuses))
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

/// Rules about a route the kernel found. Returns the healthy line's text after the
/// destination (` via GW dev DEV src SRC (next hop REACHABLE)`) when nothing is wrong.
fn found(f: &Facts, route: &RouteEvidence, info: &RouteInfo, r: &mut Report) -> Option<String> {
    let dst = route.destination;
    let dev = info.dev.as_deref().unwrap_or("?");
    let link = info.dev.as_deref().and_then(|d| f.link(d));
    let mut rest = String::new();
    if let Some(gw) = info.gateway {
        rest.push_str(&format!(" via {gw}"));
    }
    rest.push_str(&format!(" dev {dev}"));
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
    let mut bad = false;

    if let Some(l) = link.filter(|l| link_is_down(l) && !l.loopback) {
        r.finding(
            RuleCode::InterfaceDown,
            Layer::Network,
            Severity::Failure,
            "interface down",
            format!(
                "the route to {dst} leaves via {}, and {}",
                l.name,
                down_words(l)
            ),
        )
        .line(line.clone())
        .line(format!(
            "{}: admin {}, carrier {}, state {}",
            l.name,
            if l.admin_up { "up" } else { "down" },
            if l.lower_up { "yes" } else { "no" },
            l.oper_state
        ))
        .next(format!("ip link show {}", l.name))
        .add();
        bad = true;
    }

    // A next hop behind a down interface cannot answer: the interface is the cause.
    if let Some(n) = info.neighbor.as_ref().filter(|_| !bad) {
        if matches!(n.state.as_str(), "FAILED" | "INCOMPLETE") {
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
            .line(line.clone())
            .line(format!("neighbor {} {} on {dev}", n.address, n.state))
            .next(format!("ip neigh show dev {dev}"))
            .next(format!("arping -I {dev} -c 3 {}", n.address))
            .add();
            bad = true;
        }
    }

    // Wrong interface: the pod's own IP is on another interface than the one the route uses.
    let pod_ip: Option<IpAddr> = f
        .kube
        .and_then(|k| k.source.as_ref())
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    if let (Some(pod_ip), Some(src)) = (pod_ip, info.prefsrc) {
        if src != pod_ip
            && info.route_type != RouteType::Local
            && !dst.is_loopback()
            && pod_ip.is_ipv4() == src.is_ipv4()
        {
            let pod_dev = f.link_with_address(pod_ip).map(|l| l.name.clone());
            let severity = if tcp_failed_to(f, dst) {
                Severity::Failure
            } else {
                Severity::Warning
            };
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
            .line(line.clone())
            .next(format!("ip route get {dst}; ip route show table all"))
            .add();
            bad = true;
        }
    }

    if rp_filter_asymmetric(f, route, info, &line, r) {
        bad = true;
    }

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

/// rp_filter of one interface as the probe read it: the kernel applies
/// max(conf.all, conf.DEV).
struct RpFilter {
    all: Option<u32>,
    own: Option<u32>,
}

impl RpFilter {
    fn of(f: &Facts, dev: &str) -> RpFilter {
        let read = |key: &Sysctl| f.sysctl(key).and_then(|v| v.trim().parse::<u32>().ok());
        RpFilter {
            all: read(&Sysctl::RpFilter(ConfScope::All)),
            own: read(&Sysctl::rp_filter_of(dev)),
        }
    }

    fn effective(&self) -> Option<u32> {
        match (self.all, self.own) {
            (None, None) => None,
            (a, o) => Some(a.unwrap_or(0).max(o.unwrap_or(0))),
        }
    }

    /// `all=0, eth0.100=1`: the values the effective one came from.
    fn words(&self, dev: &str) -> String {
        let v = |x: Option<u32>| x.map_or("not reported".to_string(), |v| v.to_string());
        format!("all={}, {dev}={}", v(self.all), v(self.own))
    }
}

/// Strict reverse-path filtering with an asymmetric route: packets to the destination leave
/// via one interface with the address of another, so the replies come in on the other one,
/// where a strict rp_filter (1) drops them because the route back to the sender is not
/// through it.
fn rp_filter_asymmetric(
    f: &Facts,
    route: &RouteEvidence,
    info: &RouteInfo,
    line: &str,
    r: &mut Report,
) -> bool {
    let (Some(dev), Some(src)) = (info.dev.as_deref(), info.prefsrc) else {
        return false;
    };
    if !src.is_ipv4() || info.route_type == RouteType::Local {
        return false;
    }
    let Some(src_link) = f.link_with_address(src) else {
        return false;
    };
    if src_link.name == dev || src_link.loopback {
        return false;
    }
    let rp = RpFilter::of(f, &src_link.name);
    if rp.effective() != Some(1) {
        return false;
    }
    let key = Sysctl::rp_filter_of(&src_link.name).name();
    let dst = route.destination;
    let severity = if tcp_failed_to(f, dst) {
        Severity::Failure
    } else {
        Severity::Warning
    };
    r.finding(
        RuleCode::RpFilterAsymmetric,
        Layer::Network,
        severity,
        "rp_filter drops replies",
        format!(
            "packets to {dst} leave via {dev} with source {src} of {}, so replies arrive on {} \
             where strict rp_filter (effective 1: {}) drops them: the route back is via {dev}",
            src_link.name,
            src_link.name,
            rp.words(&src_link.name)
        ),
    )
    .line(line.to_string())
    .line(format!(
        "rp_filter: {} (strict); source {src} is on {}",
        rp.words(&src_link.name),
        src_link.name
    ))
    .next(format!(
        "sysctl -w {key}=2 net.ipv4.conf.all.rp_filter=2   # loose, or fix the route"
    ))
    .next(format!("ip route get {dst}; ip rule show"))
    .add();
    true
}

fn interface_errors(f: &Facts, r: &mut Report) {
    let Some(links) = f.one::<LinksEvidence>() else {
        return;
    };
    let route_devs: Vec<&str> = f
        .all::<RouteEvidence>()
        .filter_map(|rt| match &rt.outcome {
            RouteOutcome::Found(i) => i.dev.as_deref(),
            _ => None,
        })
        .collect();
    for l in &links.links {
        if l.loopback {
            continue;
        }
        // Only interfaces traffic uses: the routes' devices, or every one when no route ran.
        if !route_devs.is_empty() && !route_devs.contains(&l.name.as_str()) {
            continue;
        }
        let s = &l.stats;
        let errors = s.rx_errors + s.tx_errors;
        let drops = s.rx_dropped + s.tx_dropped;
        let packets = s.rx_packets + s.tx_packets;
        let drop_ratio = if packets == 0 {
            0.0
        } else {
            drops as f64 / packets as f64
        };
        if errors == 0 && (drop_ratio < LINK_DROP_RATIO || packets < LINK_MIN_PACKETS) {
            continue;
        }
        r.finding(
            RuleCode::InterfaceErrors,
            Layer::Network,
            Severity::Warning,
            "interface errors",
            format!(
                "{} counts {} rx / {} tx errors and {} rx / {} tx drops over {} packets since it \
                 came up",
                l.name, s.rx_errors, s.tx_errors, s.rx_dropped, s.tx_dropped, packets
            ),
        )
        .line(format!(
            "{}: rx_errors {} tx_errors {} rx_dropped {} tx_dropped {} ({packets} packets)",
            l.name, s.rx_errors, s.tx_errors, s.rx_dropped, s.tx_dropped
        ))
        .next(format!(
            "ip -s -s link show {}   # run twice: are they growing?",
            l.name
        ))
        .add();
    }
}

impl Progress for LinksEvidence {
    fn progress(&self) -> (Layer, Mark, String) {
        let up = self
            .links
            .iter()
            .filter(|x| x.lower_up && x.admin_up)
            .count();
        let each: Vec<String> = self
            .links
            .iter()
            .map(|x| format!("{} mtu {}", x.name, x.mtu))
            .collect();
        (
            Layer::Network,
            Mark::Info,
            format!(
                "{} interfaces ({up} up): {}",
                self.links.len(),
                each.join(", ")
            ),
        )
    }
}

impl Progress for RouteEvidence {
    fn progress(&self) -> (Layer, Mark, String) {
        match &self.outcome {
            RouteOutcome::Found(i) => (
                Layer::Network,
                Mark::Info,
                format!(
                    "{}{} dev {}{}",
                    self.destination,
                    i.gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
                    i.dev.as_deref().unwrap_or("?"),
                    i.prefsrc.map(|s| format!(" src {s}")).unwrap_or_default()
                ),
            ),
            RouteOutcome::NoRoute { message, .. } => (
                Layer::Network,
                Mark::Fail,
                format!("{}: {message}", self.destination),
            ),
        }
    }
}

impl Progress for RulesEvidence {
    fn progress(&self) -> (Layer, Mark, String) {
        (
            Layer::Network,
            Mark::Info,
            format!("{} policy routing rules", self.rules.len()),
        )
    }
}

impl Progress for SysctlsEvidence {
    fn progress(&self) -> (Layer, Mark, String) {
        (
            Layer::Network,
            Mark::Info,
            format!("{} sysctls read", self.values.len()),
        )
    }
}
