//! `node_path` evidence: the node's half of the path, read in the node's namespace (a node
//! view). Rules: an overlay device whose MTU leaves no room for its own encapsulation on the
//! underlay; a pod interface MTU larger than the overlay carries (the overlay MTU trap: small
//! packets pass, full-size ones die between nodes); a pod on another node routed by the node's
//! default route while the cluster's pod traffic goes through an overlay (the route for that
//! node's pod CIDR is missing); the node's conntrack table full.

use protocol::{
    ConfScope, Counter, LinkKind, LinksEvidence, NodePathEvidence, NodeRoute, Open, OverlayDevice,
    Sysctl,
};

use super::conntrack::{CONNTRACK_FULL, CONNTRACK_NEAR_MAX};
use crate::facts::Facts;
use crate::model::{Layer, Mark, Origin, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::rules::dataplane::view_node;
use crate::words;

impl Progress for NodePathEvidence {
    fn progress(&self) -> (Mark, String) {
        let overlays: Vec<String> = self
            .overlays
            .iter()
            .map(|o| format!("{} ({}) mtu {}", o.name, o.kind, o.mtu))
            .collect();
        let overlays = match overlays.is_empty() {
            true => "no overlay device".to_string(),
            false => overlays.join(", "),
        };
        (
            Mark::Info,
            format!(
                "node: {overlays}; {} route(s) read{}",
                self.routes.len(),
                self.underlay
                    .as_ref()
                    .map(|u| format!("; underlay {} mtu {}", u.name, u.mtu))
                    .unwrap_or_default()
            ),
        )
    }
}

/// Bytes an encapsulation adds to each packet (outer IPv4 headers; IPv6 underlays add 20
/// more): what the overlay's MTU must leave free on the underlay.
pub fn overhead(kind: LinkKind) -> Option<u32> {
    Some(match kind {
        // outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
        LinkKind::Vxlan => 50,
        // the same with an empty options field
        LinkKind::Geneve => 50,
        LinkKind::Ipip | LinkKind::Sit => 20,
        LinkKind::Gre => 24,
        LinkKind::Gretap => 38,
        LinkKind::Ip6tnl => 40,
        // outer IPv4 20 + UDP 8 + WireGuard 32
        LinkKind::Wireguard => 60,
        _ => return None,
    })
}

pub fn apply(f: &Facts, r: &mut Report) {
    let Some(n) = f.one::<NodePathEvidence>() else {
        return;
    };
    let node = view_node(f).unwrap_or("the node").to_string();
    // The node's name for comparisons (None: not known), apart from the words above.
    let node_name = view_node(f);
    for e in &n.errors {
        r.info(Layer::Network, format!("node {node}: {e}"));
    }
    for route in &n.routes {
        r.info(Layer::Network, route_words(&node, route));
    }
    let rp: Vec<String> = n
        .rp_filter
        .iter()
        .map(|s| format!("{} {}", s.dev, s.value))
        .collect();
    if !rp.is_empty() {
        r.info(
            Layer::Network,
            format!("node {node} rp_filter (effective): {}", rp.join(", ")),
        );
    }
    // From node/NAME the probe's own counters and conntrack checks already read the node's
    // namespace: the same table judged twice would be two findings for one cause.
    let own_namespace = matches!(f.origin, Some(Origin::Node { .. }));
    if !own_namespace {
        counter_lines(n, &node, r);
    }
    overlay_headroom(n, &node, r);
    pod_mtu_over_overlay(f, n, &node, r);
    route_via_default(f, n, &node, node_name, r);
    rp_filter_drops(n, &node, r);
    if !own_namespace {
        conntrack_full(n, &node, r);
    }
}

fn route_words(node: &str, route: &NodeRoute) -> String {
    let what = match route.target == protocol::RETURN_PATH_TARGET {
        true => format!("replies to the pod ({})", route.address),
        false => route.address.to_string(),
    };
    match (&route.dev, &route.error) {
        (Some(dev), _) => format!(
            "node {node} sends {what} by {dev}{}{}{}",
            route
                .dev_kind
                .as_ref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default(),
            route
                .gateway
                .map(|g| format!(" via {g}"))
                .unwrap_or_default(),
            if route.via_default {
                " (default route)"
            } else {
                ""
            }
        ),
        (None, Some(e)) => format!("node {node} has no route for {what}: {e}"),
        (None, None) => format!("node {node} has no route for {what}"),
    }
}

/// The node's counters that moved during the run and speak about the path.
const PATH_COUNTERS: &[Counter] = &[
    Counter::IpReversePathFilter,
    Counter::IpInDiscards,
    Counter::IpOutNoRoutes,
    Counter::IpOutDiscards,
    Counter::IcmpOutDestUnreachs,
    Counter::ConntrackInsertFailed,
    Counter::ConntrackDrop,
];

/// How much `counter` grew on the node during the run (None without the node's counters).
fn node_delta(n: &NodePathEvidence, counter: Counter) -> Option<u64> {
    n.counters
        .as_ref()?
        .counters
        .get(&Open::Known(counter))
        .map(|v| v.delta)
}

fn counter_lines(n: &NodePathEvidence, node: &str, r: &mut Report) {
    let Some(c) = &n.counters else {
        return;
    };
    let moved: Vec<String> = PATH_COUNTERS
        .iter()
        .filter_map(|k| {
            node_delta(n, *k)
                .filter(|d| *d > 0)
                .map(|d| format!("{k} +{d}"))
        })
        .collect();
    let over = format!("over {}", words::ms(c.interval_ms));
    r.info(
        Layer::Network,
        match moved.is_empty() {
            true => format!("node {node} counters {over}: no drops, discards or rp_filter drops"),
            false => format!("node {node} counters {over}: {}", moved.join(", ")),
        },
    );
}

/// The node's reverse-path filter dropped packets during the run: an asymmetric path with a
/// strict rp_filter, proven by the kernel's own count (unless the route rule already said
/// why).
fn rp_filter_drops(n: &NodePathEvidence, node: &str, r: &mut Report) {
    let Some(dropped) = node_delta(n, Counter::IpReversePathFilter).filter(|d| *d > 0) else {
        return;
    };
    if r.has(RuleCode::NodeRpFilterAsymmetric) {
        return;
    }
    let strict: Vec<&str> = n
        .rp_filter
        .iter()
        .filter(|s| s.value == 1)
        .map(|s| s.dev.as_str())
        .collect();
    r.finding(
        RuleCode::NodeRpFilterAsymmetric,
        Layer::Network,
        Severity::Warning,
        "rp_filter drops on the node",
        format!(
            "node {node}'s reverse-path filter dropped {} during this run: a packet arrived \
             on another device than the node's route back to its source, with rp_filter \
             strict{}",
            words::plural(dropped, "packet", "packets"),
            match strict.is_empty() {
                true => String::new(),
                false => format!(" (1 on {})", strict.join(", ")),
            }
        ),
    )
    .line(format!(
        "node {node}: {} +{dropped} during the run",
        Counter::IpReversePathFilter
    ))
    .next(format!(
        "ip route get <source> iif <device>   # on node {node}, for the flow that fails: the \
         route back should leave by the device it came in on"
    ))
    .add();
}

/// Whether some target's node route leaves by this overlay (its traffic crosses it).
fn carries_targets(n: &NodePathEvidence, o: &OverlayDevice) -> bool {
    n.routes.iter().any(|r| r.dev.as_deref() == Some(&o.name))
}

/// The overlay's MTU plus its own encapsulation does not fit the underlay's.
fn overlay_headroom(n: &NodePathEvidence, node: &str, r: &mut Report) {
    let Some(under) = &n.underlay else {
        return;
    };
    for o in n.overlays.iter().filter(|o| o.name != under.name) {
        let Some(extra) = o.kind.known().and_then(overhead) else {
            continue;
        };
        if o.mtu + extra <= under.mtu {
            continue;
        }
        let carries = carries_targets(n, o);
        r.finding(
            RuleCode::OverlayMtuExceedsUnderlay,
            Layer::Path,
            if carries {
                Severity::Failure
            } else {
                Severity::Warning
            },
            "overlay MTU trap",
            format!(
                "on node {node}, {} ({}) has MTU {} but its encapsulation adds {extra} bytes \
                 on {} (MTU {}): packets over {} bytes inside the overlay are dropped or \
                 fragmented between nodes, while small ones pass{}",
                o.name,
                o.kind,
                o.mtu,
                under.name,
                under.mtu,
                under.mtu.saturating_sub(extra),
                if carries {
                    "; this run's traffic crosses it"
                } else {
                    ""
                }
            ),
        )
        .line(format!(
            "node {node}: {} mtu {} + {extra} > {} mtu {}",
            o.name, o.mtu, under.name, under.mtu
        ))
        .next(format!(
            "ip -d link show {}   # on node {node}; the CNI's MTU setting should be {} or less",
            o.name,
            under.mtu.saturating_sub(extra)
        ))
        .add();
    }
}

/// The pod's interface MTU is larger than the overlay's: full-size packets to pods on other
/// nodes cannot cross it. Only where the links evidence is the pod's (`--via-node`).
fn pod_mtu_over_overlay(f: &Facts, n: &NodePathEvidence, node: &str, r: &mut Report) {
    if matches!(f.origin, Some(Origin::Node { .. })) {
        return;
    }
    let Some(links) = f.one::<LinksEvidence>() else {
        return;
    };
    // The pod's own interface: the non-loopback one that is up with the largest MTU.
    let Some(pod_if) = links
        .links
        .iter()
        .filter(|l| !l.loopback && l.admin_up)
        .max_by_key(|l| l.mtu)
    else {
        return;
    };
    let Some(o) = n
        .overlays
        .iter()
        .filter(|o| o.up)
        .min_by_key(|o| o.mtu)
        .filter(|o| pod_if.mtu > o.mtu)
    else {
        return;
    };
    let carries = carries_targets(n, o);
    r.finding(
        RuleCode::PodMtuOverOverlay,
        Layer::Path,
        if carries {
            Severity::Failure
        } else {
            Severity::Warning
        },
        "pod MTU larger than the overlay",
        format!(
            "the pod's {} has MTU {} but node {node}'s overlay {} ({}) carries {}: packets \
             between {} and {} bytes to pods on other nodes are dropped (or need PMTU \
             discovery that often fails), while small ones pass{}",
            pod_if.name,
            pod_if.mtu,
            o.name,
            o.kind,
            o.mtu,
            o.mtu + 1,
            pod_if.mtu,
            if carries {
                "; this run's traffic crosses it"
            } else {
                ""
            }
        ),
    )
    .line(format!(
        "pod {} mtu {} > node {node} {} mtu {}",
        pod_if.name, pod_if.mtu, o.name, o.mtu
    ))
    .next(format!(
        "set the CNI's pod MTU to {} or less (then recreate the pods)",
        o.mtu
    ))
    .add();
}

/// A pod on another node routed by the node's default route while pod traffic between nodes
/// goes through an overlay: the node has no route for that node's pod CIDR.
fn route_via_default(
    f: &Facts,
    n: &NodePathEvidence,
    node: &str,
    node_name: Option<&str>,
    r: &mut Report,
) {
    if n.overlays.iter().all(|o| !o.up) {
        return;
    }
    let Some(svc) = f.service() else {
        return;
    };
    for route in n.routes.iter().filter(|r| r.via_default) {
        let Some(ep) = svc.endpoints.iter().find(|e| {
            e.ip.parse()
                .is_ok_and(|ip: std::net::IpAddr| ip == route.address)
        }) else {
            continue;
        };
        // Remote only when both nodes are known and differ.
        let Some(ep_node) = ep
            .node
            .as_deref()
            .filter(|ep_node| node_name.is_some_and(|me| me != *ep_node))
        else {
            continue;
        };
        let overlays: Vec<&str> = n
            .overlays
            .iter()
            .filter(|o| o.up)
            .map(|o| o.name.as_str())
            .collect();
        r.finding(
            RuleCode::NodeRouteViaDefault,
            Layer::Network,
            Severity::Failure,
            "no route to a remote pod CIDR",
            format!(
                "node {node} sends {} (pod {} on node {ep_node}) by its default route{}, not \
                 through the overlay ({}): the route for node {ep_node}'s pod CIDR is missing \
                 on {node}",
                route.address,
                ep.pod.as_deref().unwrap_or("?"),
                route
                    .dev
                    .as_deref()
                    .map(|d| format!(" on {d}"))
                    .unwrap_or_default(),
                overlays.join(", ")
            ),
        )
        .line(route_words(node, route))
        .next(format!(
            "ip route get {}; ip route show dev {}   # on node {node}; and the CNI agent's logs \
             there",
            route.address,
            overlays.first().copied().unwrap_or("vxlan")
        ))
        .add();
        let strict = strict_overlays(n, &overlays);
        if !strict.is_empty() {
            rp_filter_asymmetric(node, route, &strict, ep_node, r);
        }
    }
}

/// The remote pod's replies come back through the overlay, but the node's route to it leaves
/// by another device: a strict reverse-path check on the overlay drops them.
fn rp_filter_asymmetric(
    node: &str,
    route: &NodeRoute,
    devs: &[&str],
    ep_node: &str,
    r: &mut Report,
) {
    let names = devs.join(", ");
    r.finding(
        RuleCode::NodeRpFilterAsymmetric,
        Layer::Network,
        Severity::Failure,
        "rp_filter strict on an asymmetric path",
        format!(
            "replies from {} (on node {ep_node}) reach node {node} through {names}, where \
             rp_filter is strict (1), but the node's route back to {} leaves by {}: the \
             reverse-path check fails and drops them",
            route.address,
            route.address,
            route.dev.as_deref().unwrap_or("another device")
        ),
    )
    .line(format!(
        "node {node} rp_filter {names} = 1; {}",
        route_words(node, route)
    ))
    .next(format!(
        "sysctl {} {}   # on node {node}; loose (2) tolerates the asymmetry, the missing route \
         is the cause",
        Sysctl::RpFilter(ConfScope::All).name(),
        Sysctl::rp_filter_of(devs.first().copied().unwrap_or("all")).name()
    ))
    .add();
}

/// The overlays among `names` whose effective rp_filter is strict (1).
fn strict_overlays<'a>(n: &'a NodePathEvidence, names: &[&str]) -> Vec<&'a str> {
    n.rp_filter
        .iter()
        .filter(|s| s.value == 1 && names.contains(&s.dev.as_str()))
        .map(|s| s.dev.as_str())
        .collect()
}

fn conntrack_full(n: &NodePathEvidence, node: &str, r: &mut Report) {
    let Some(c) = &n.conntrack else {
        return;
    };
    if !c.present {
        r.info(Layer::State, format!("node {node}: conntrack not active"));
        return;
    }
    let (Some(count), Some(max)) = (c.count, c.max) else {
        return;
    };
    if max == 0 {
        return;
    }
    let ratio = count as f64 / max as f64;
    let drops = c.drop.unwrap_or(0) + c.early_drop.unwrap_or(0) + c.insert_failed.unwrap_or(0);
    let counters = format!(
        "insert_failed {}, drop {}, early_drop {} since boot",
        c.insert_failed.unwrap_or(0),
        c.drop.unwrap_or(0),
        c.early_drop.unwrap_or(0)
    );
    if ratio < CONNTRACK_NEAR_MAX {
        let text = format!(
            "node {node} conntrack {count}/{max} ({:.0}%)",
            ratio * 100.0
        );
        match drops {
            0 => r.ok(Layer::State, text),
            _ => r.info(Layer::State, format!("{text}; {counters}")),
        }
        return;
    }
    let full = ratio >= CONNTRACK_FULL;
    r.finding(
        RuleCode::NodeConntrackFull,
        Layer::State,
        if full {
            Severity::Failure
        } else {
            Severity::Warning
        },
        if full {
            "node conntrack full"
        } else {
            "node conntrack near its maximum"
        },
        format!(
            "node {node}'s conntrack table holds {count} of {max} entries ({:.0}%): {}",
            ratio * 100.0,
            if full {
                "new connections through the node are dropped (\"nf_conntrack: table full\" in \
                 its kernel log)"
            } else {
                "new connections through the node will be dropped once it fills"
            }
        ),
    )
    .line(format!(
        "node {node}: nf_conntrack_count {count} / nf_conntrack_max {max}; {counters}"
    ))
    .next(format!(
        "conntrack -S; dmesg | grep conntrack   # on node {node}; raise nf_conntrack_max or find \
         what opens so many flows"
    ))
    .add();
}
