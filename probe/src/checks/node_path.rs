//! Check `node_path`: the node's half of the path, read in the node's own network namespace
//! while the other checks run in the pod's (`--via-node`), or where they run (`node/NAME`).
//!
//! Why a thread of its own: setns moves only the calling thread, and every check shares the
//! runtime's one thread (and its blocking pool), which must stay in the pod's namespace. A
//! dedicated thread enters the node's namespace (its file was opened before the probe
//! entered the pod's), runs its own small runtime for the netlink reads, and is gone after:
//! netlink sockets and /proc/sys/net reads both answer for the namespace of the thread that
//! makes them.

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::sync::Arc;

use nix::sched::{setns, CloneFlags};
use protocol::{
    DeviceSetting, Evidence, LinkKind, NodeDevice, NodePathEvidence, NodeRoute, Open, OverlayDevice,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage};
use rtnetlink::IpVersion;

use super::Outcome;
use crate::context::Ctx;
use crate::netlink::{route_address, Rtnl};

/// Kinds that encapsulate pod traffic between nodes.
const OVERLAY_KINDS: &[LinkKind] = &[
    LinkKind::Vxlan,
    LinkKind::Geneve,
    LinkKind::Ipip,
    LinkKind::Sit,
    LinkKind::Gre,
    LinkKind::Gretap,
    LinkKind::Ip6tnl,
    LinkKind::Wireguard,
];

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let Some(node) = ctx.node_netns.as_ref() else {
        if ctx.node_conntrack.is_some() {
            return Outcome::Failed(
                "the node's network namespace file (/proc/thread-self/ns/net) could not be \
                 opened before entering the pod's"
                    .into(),
            );
        }
        return Outcome::Skipped {
            reason: "the node's half of the path is read from a node view only (node/NAME or \
                     --via-node)"
                .into(),
            missing_capability: None,
        };
    };
    let netns = match node.try_clone() {
        Ok(f) => f,
        Err(e) => return Outcome::Failed(format!("the node's namespace file: {e}")),
    };
    // The addresses the pod would use (its resolver), each looked up in the node's table. A
    // ClusterIP is translated before the node routes it (its DNAT is the node_nat evidence),
    // so its own route says nothing about the path.
    let mut targets: Vec<(String, IpAddr)> = Vec::new();
    for t in ctx
        .plan
        .targets
        .iter()
        .filter(|t| t.role != protocol::TargetRole::ClusterIp)
    {
        if let Ok(ips) = ctx.resolve_target(t).await {
            targets.extend(ips.into_iter().map(|ip| (t.label.clone(), ip)));
        }
    }
    // The way back: the node's route to the pod itself (its veth or bridge), whose device's
    // rp_filter judges every reply on its way into the pod.
    if let Some(pod) = ctx.node_pod_ip {
        targets.push((protocol::RETURN_PATH_TARGET.to_string(), pod));
    }
    let t0 = std::time::Instant::now();
    let first = on_node(&ctx, &netns, move || {
        let mut evidence = empty();
        match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime.block_on(collect(&mut evidence, &targets)),
            Err(e) => evidence.errors.push(format!("node-side runtime: {e}")),
        }
        evidence.conntrack = Some(super::conntrack::read(super::conntrack::THREAD_STAT));
        let counters = super::counters::sample_at(super::counters::THREAD_NET);
        (evidence, counters)
    })
    .await;
    let (mut evidence, start) = match first {
        Ok(read) => read,
        Err(e) => return Outcome::Failed(e),
    };
    // The node's counters again once the traffic checks are done (never so late that the
    // evidence misses the deadline): what the run's own traffic did on the node.
    let _ = tokio::time::timeout(
        ctx.remaining().saturating_sub(COUNTERS_END_MARGIN),
        ctx.wait_traffic_done(),
    )
    .await;
    let end = on_node(&ctx, &netns, || {
        super::counters::sample_at(super::counters::THREAD_NET)
    })
    .await;
    match (start, end) {
        (Ok(start), Ok(Ok(end))) => {
            evidence.counters = Some(protocol::CountersEvidence {
                interval_ms: (t0.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0,
                counters: super::counters::deltas(&start, &end),
            });
        }
        (Err(e), _) | (_, Ok(Err(e))) | (_, Err(e)) => {
            evidence.errors.push(format!("node counters: {e}"))
        }
    }
    ctx.emit(Evidence::NodePath(evidence));
    Outcome::Completed
}

/// Whether the calling thread is already in the namespace `netns` refers to.
fn in_namespace_of(netns: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    let here = std::fs::metadata("/proc/thread-self/ns/net").map(|m| (m.dev(), m.ino()));
    let there = netns.metadata().map(|m| (m.dev(), m.ino()));
    matches!((here, there), (Ok(a), Ok(b)) if a == b)
}

/// Room kept before the deadline for the end sample and the evidence.
const COUNTERS_END_MARGIN: std::time::Duration = std::time::Duration::from_millis(300);

/// Runs `work` on a thread of its own inside the node's namespace (`netns`), bounded by the
/// run's deadline.
async fn on_node<T: Send + 'static>(
    ctx: &Ctx,
    netns: &File,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let netns = netns
        .try_clone()
        .map_err(|e| format!("the node's namespace file: {e}"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("node-path".into())
        .spawn(move || {
            // In the node's own namespace already (node/NAME): setns would need CAP_SYS_ADMIN
            // even to stay, which that probe pod does not have.
            let entered = match in_namespace_of(&netns) {
                true => Ok(()),
                false => setns(&netns, CloneFlags::CLONE_NEWNET).map_err(|e| {
                    format!("cannot enter the node's network namespace: {}", e.desc())
                }),
            };
            let _ = tx.send(entered.map(|()| work()));
        })
        .map_err(|e| format!("cannot start the node-side thread: {e}"))?;
    match tokio::time::timeout(ctx.remaining(), rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err("the node-side thread ended without an answer".into()),
        Err(_) => Err("the node's half of the path was not read in time".into()),
    }
}

fn empty() -> NodePathEvidence {
    NodePathEvidence {
        overlays: Vec::new(),
        underlay: None,
        routes: Vec::new(),
        rp_filter: Vec::new(),
        conntrack: None,
        counters: None,
        errors: Vec::new(),
    }
}

/// A link as this check needs it.
struct Dev {
    name: String,
    kind: Option<Open<LinkKind>>,
    mtu: u32,
    up: bool,
}

async fn collect(evidence: &mut NodePathEvidence, targets: &[(String, IpAddr)]) {
    let rtnl = match Rtnl::connect() {
        Ok(r) => r,
        Err(e) => {
            evidence.errors.push(format!("rtnetlink: {e}"));
            return;
        }
    };
    let devs: HashMap<u32, Dev> = match rtnl.links().await {
        Ok(links) => links.iter().map(|l| (l.header.index, dev(l))).collect(),
        Err(e) => {
            evidence.errors.push(format!("links: {e}"));
            HashMap::new()
        }
    };
    let mut indexes: Vec<&u32> = devs.keys().collect();
    indexes.sort();
    evidence.overlays = indexes
        .iter()
        .filter_map(|i| devs.get(i))
        .filter(|d| d.kind.as_ref().is_some_and(|k| k.is_any(OVERLAY_KINDS)))
        .map(|d| OverlayDevice {
            name: d.name.clone(),
            kind: d.kind.clone().expect("filtered on kind"),
            mtu: d.mtu,
            up: d.up,
        })
        .collect();
    let main_routes = match rtnl.routes(IpVersion::V4).await {
        Ok(mut v4) => {
            if let Ok(v6) = rtnl.routes(IpVersion::V6).await {
                v4.extend(v6);
            }
            v4.retain(|r| table_of(r) == MAIN_TABLE);
            v4
        }
        Err(e) => {
            evidence.errors.push(format!("routes: {e}"));
            Vec::new()
        }
    };
    evidence.underlay = main_routes
        .iter()
        .find(|r| {
            r.header.destination_prefix_length == 0
                && r.header.address_family == rtnetlink::packet_route::AddressFamily::Inet
        })
        .and_then(oif)
        .and_then(|i| devs.get(&i))
        .map(|d| NodeDevice {
            name: d.name.clone(),
            mtu: d.mtu,
        });
    for (label, address) in targets {
        let route = match rtnl.route_get(*address).await {
            Ok(answer) => {
                let dev = oif(&answer).and_then(|i| devs.get(&i));
                NodeRoute {
                    target: label.clone(),
                    address: *address,
                    dev: dev.map(|d| d.name.clone()),
                    dev_kind: dev.and_then(|d| d.kind.clone()),
                    gateway: gateway(&answer),
                    via_default: longest_prefix(&main_routes, *address) == Some(0),
                    error: None,
                }
            }
            Err(e) => NodeRoute {
                target: label.clone(),
                address: *address,
                dev: None,
                dev_kind: None,
                gateway: None,
                via_default: false,
                error: Some(e.to_string()),
            },
        };
        evidence.routes.push(route);
    }
    // rp_filter where it matters: each device a route leaves by, and each overlay.
    let mut names: Vec<String> = evidence
        .routes
        .iter()
        .filter_map(|r| r.dev.clone())
        .chain(evidence.overlays.iter().map(|o| o.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    let all = read_rp_filter("all");
    evidence.rp_filter = names
        .into_iter()
        .filter_map(|dev| {
            let own = read_rp_filter(&dev)?;
            Some(DeviceSetting {
                value: own.max(all.unwrap_or(0)),
                dev,
            })
        })
        .collect();
}

/// `main` (RT_TABLE_MAIN): where the CNI's pod routes and the default route live.
const MAIN_TABLE: u32 = 254;

/// A route's table: RTA_TABLE when present (ids above 255), else the header's.
fn table_of(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

fn oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

fn gateway(r: &RouteMessage) -> Option<IpAddr> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => route_address(g),
        _ => None,
    })
}

/// The prefix length of the main table's most specific route covering `address` (0: only
/// the default route does).
fn longest_prefix(routes: &[RouteMessage], address: IpAddr) -> Option<u8> {
    routes
        .iter()
        .filter_map(|r| {
            let len = r.header.destination_prefix_length;
            let dst = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(d) => route_address(d),
                _ => None,
            });
            let covers = match (dst, address) {
                (None, IpAddr::V4(_)) => {
                    len == 0
                        && r.header.address_family == rtnetlink::packet_route::AddressFamily::Inet
                }
                (None, IpAddr::V6(_)) => {
                    len == 0
                        && r.header.address_family == rtnetlink::packet_route::AddressFamily::Inet6
                }
                (Some(net), _) => in_prefix(net, len, address),
            };
            covers.then_some(len)
        })
        .max()
}

fn in_prefix(net: IpAddr, len: u8, address: IpAddr) -> bool {
    match (net, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

fn dev(l: &LinkMessage) -> Dev {
    let mut d = Dev {
        name: String::new(),
        kind: None,
        mtu: 0,
        up: l.header.flags.contains(LinkFlags::Up),
    };
    for a in &l.attributes {
        match a {
            LinkAttribute::IfName(n) => d.name = n.clone(),
            LinkAttribute::Mtu(m) => d.mtu = *m,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        d.kind = Some(Open::parse(&k.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    d
}

/// rp_filter of one device (or `all`), read in this thread's namespace.
fn read_rp_filter(dev: &str) -> Option<u32> {
    let path = format!(
        "/proc/sys/net/ipv4/conf/{}/rp_filter",
        dev.replace('.', "/")
    );
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_what_they_should() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_prefix(ip("10.244.1.0"), 24, ip("10.244.1.7")));
        assert!(!in_prefix(ip("10.244.1.0"), 24, ip("10.244.2.7")));
        assert!(in_prefix(ip("0.0.0.0"), 0, ip("10.244.2.7")));
        assert!(in_prefix(ip("fd00:244::"), 64, ip("fd00:244::7")));
        assert!(!in_prefix(ip("10.0.0.0"), 8, ip("fd00::1")));
    }
}
