//! Check `node_path`: the node's half of the path, read in the node's own network namespace
//! while the other checks run in the pod's (`--via-node`), or where they run (`node/NAME`).
//!
//! Why a thread of its own: setns moves only the calling thread, and every check shares the
//! runtime's one thread (and its blocking pool), which must stay in the pod's namespace. A
//! dedicated thread enters the node's namespace (its file was opened before the probe
//! entered the pod's), runs its own small runtime for the netlink reads, and is gone after:
//! netlink sockets and /proc/sys/net reads both answer for the namespace of the thread that
//! makes them.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::net::IpAddr;
use std::sync::Arc;

use nix::sched::{setns, CloneFlags};
use protocol::{
    ConfScope, DeviceSetting, Evidence, LinkKind, NodeDevice, NodePathEvidence, NodeRoute, Open,
    OverlayDevice, RouteOutcome, Sysctl,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::IpVersion;

use super::route_refusal::table_route;
use super::{route, Outcome};
use crate::context::Ctx;
use crate::netlink::{NetlinkError, Rtnl};
use crate::policy_walk::{RouteKind, TableRoute};

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
    let Some(netns) = ctx.node_netns.as_ref() else {
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
    // The node's counters first, as the traffic checks start beside this observer: the
    // interval then holds the run's own traffic (the rp_filter drops among it).
    let start = on_node(&ctx, netns, || {
        super::counters::sample_at(super::counters::THREAD_NET)
    })
    .await;
    let t0 = std::time::Instant::now();
    let mut errors = Vec::new();
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
        match ctx.resolve_target(t).await {
            Ok(ips) => targets.extend(ips.into_iter().map(|ip| (t.label.clone(), ip))),
            Err(why) => errors.push(format!("target `{}`: no node route lookup: {why}", t.label)),
        }
    }
    // The way back: the node's route to the pod itself (its veth or bridge), whose device's
    // rp_filter judges every reply on its way into the pod.
    if let Some(pod) = ctx.node_pod_ip {
        targets.push((protocol::RETURN_PATH_TARGET.to_string(), pod));
    }
    let read = on_node(&ctx, netns, move || {
        let mut evidence = NodePathEvidence {
            errors,
            ..NodePathEvidence::default()
        };
        match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime.block_on(collect(&mut evidence, &targets)),
            Err(e) => evidence.errors.push(format!("node-side runtime: {e}")),
        }
        evidence.conntrack = Some(super::conntrack::read(super::conntrack::THREAD_STAT));
        evidence
    })
    .await;
    let mut evidence = match read {
        Ok(evidence) => evidence,
        Err(e) => return Outcome::Failed(e),
    };
    // The node's counters again once the traffic checks are done (never so late that the
    // evidence misses the deadline): what the run's own traffic did on the node.
    let _ = tokio::time::timeout(
        ctx.remaining().saturating_sub(COUNTERS_END_MARGIN),
        ctx.wait_traffic_done(),
    )
    .await;
    let end = on_node(&ctx, netns, || {
        super::counters::sample_at(super::counters::THREAD_NET)
    })
    .await;
    match (start, end) {
        (Ok(Ok(start)), Ok(Ok(end))) => {
            evidence.counters = Some(protocol::CountersEvidence {
                interval_ms: super::pacing::ms(t0.elapsed()),
                counters: super::counters::deltas(&start, &end),
            });
        }
        (Err(e) | Ok(Err(e)), _) | (_, Err(e) | Ok(Err(e))) => {
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
    let devs: BTreeMap<u32, Dev> = match rtnl.links().await {
        Ok(links) => links.iter().map(|l| (l.header.index, dev(l))).collect(),
        Err(e) => {
            evidence.errors.push(format!("links: {e}"));
            BTreeMap::new()
        }
    };
    evidence.overlays = devs
        .values()
        .filter(|d| d.kind.as_ref().is_some_and(|k| k.is_any(OVERLAY_KINDS)))
        .map(|d| OverlayDevice {
            name: d.name.clone(),
            kind: d.kind.clone().expect("filtered on kind"),
            mtu: d.mtu,
            up: d.up,
        })
        .collect();
    let mut dumped = match rtnl.routes(IpVersion::V4).await {
        Ok(v4) => v4,
        Err(e) => {
            evidence.errors.push(format!("routes: {e}"));
            Vec::new()
        }
    };
    // A kernel without IPv6 has no v6 routes to show.
    if let Ok(v6) = rtnl.routes(IpVersion::V6).await {
        dumped.extend(v6);
    }
    let tables: Vec<TableRoute> = dumped.iter().filter_map(table_route).collect();
    evidence.underlay = dumped
        .iter()
        .filter(|r| r.header.address_family == AddressFamily::Inet)
        .find(|r| {
            table_route(r).is_some_and(|t| {
                t.table == MAIN_TABLE && t.destination.len == 0 && t.kind == RouteKind::Usable
            })
        })
        .and_then(oif)
        .and_then(|i| devs.get(&i))
        .map(|d| NodeDevice {
            name: d.name.clone(),
            mtu: d.mtu,
        });
    // The route check's own reading of each answer: IPv6 answers "no route" with a route of
    // an unreachable type, not an error.
    let names: HashMap<u32, String> = devs.iter().map(|(i, d)| (*i, d.name.clone())).collect();
    for (label, address) in targets {
        let outcome = match rtnl.route_get(*address).await {
            Ok(answer) => route::outcome_of(&answer, *address, &names, &[]),
            Err(NetlinkError::Kernel { errno, .. }) => route::no_route_for_errno(errno),
            Err(e) => RouteOutcome::NoRoute {
                reason: Open::Unknown("lookup failed".into()),
                message: e.to_string(),
                matched: None,
            },
        };
        let mut route = NodeRoute {
            target: label.clone(),
            address: *address,
            dev: None,
            dev_kind: None,
            gateway: None,
            via_default: false,
            error: None,
        };
        match outcome {
            RouteOutcome::Found(info) => {
                route.dev_kind = devs
                    .values()
                    .find(|d| Some(&d.name) == info.dev.as_ref())
                    .and_then(|d| d.kind.clone());
                route.dev = info.dev;
                route.gateway = info.gateway;
                route.via_default = covering_prefix_len(&tables, info.table, *address) == Some(0);
            }
            RouteOutcome::NoRoute { message, .. } => route.error = Some(message),
        }
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
    // The effective value is the larger of `all` and the device's own.
    let all = match read_setting(&Sysctl::RpFilter(ConfScope::All)) {
        Ok(v) => v,
        Err(e) => {
            evidence.errors.push(e);
            0
        }
    };
    for dev in names {
        match read_setting(&Sysctl::rp_filter_of(&dev)) {
            Ok(own) => evidence.rp_filter.push(DeviceSetting {
                value: own.max(all),
                dev,
            }),
            Err(e) => evidence.errors.push(e),
        }
    }
}

/// `main` (RT_TABLE_MAIN): where the CNI's pod routes and the default route live.
const MAIN_TABLE: u32 = 254;

fn oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// The prefix length of the most specific usable route in `table` covering `address` (0:
/// only the default route does): the table the kernel's answer came from.
fn covering_prefix_len(routes: &[TableRoute], table: u32, address: IpAddr) -> Option<u8> {
    routes
        .iter()
        .filter(|r| r.table == table && r.kind == RouteKind::Usable)
        .filter(|r| r.destination.contains(address))
        .map(|r| r.destination.len)
        .max()
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

/// One numeric setting, read in this thread's namespace (its /proc path spells a dotted
/// device name's dot as it must).
fn read_setting(setting: &Sysctl) -> Result<u32, String> {
    let path = setting.proc_path();
    std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_walk::Prefix;

    fn route(table: u32, address: &str, len: u8) -> TableRoute {
        TableRoute {
            table,
            destination: Prefix {
                address: address.parse().unwrap(),
                len,
            },
            kind: RouteKind::Usable,
            tos: 0,
            metric: 0,
            dead: false,
        }
    }

    #[test]
    fn the_most_specific_route_of_the_answering_table_covers() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let routes = [
            route(MAIN_TABLE, "10.244.1.0", 24),
            route(MAIN_TABLE, "0.0.0.0", 0),
            route(100, "10.244.2.0", 24),
            route(MAIN_TABLE, "fd00:244::", 64),
        ];
        assert_eq!(
            covering_prefix_len(&routes, MAIN_TABLE, ip("10.244.1.7")),
            Some(24)
        );
        // Only the default route of main covers it; the /24 is another table's.
        assert_eq!(
            covering_prefix_len(&routes, MAIN_TABLE, ip("10.244.2.7")),
            Some(0)
        );
        assert_eq!(
            covering_prefix_len(&routes, 100, ip("10.244.2.7")),
            Some(24)
        );
        assert_eq!(
            covering_prefix_len(&routes, MAIN_TABLE, ip("fd00:244::7")),
            Some(64)
        );
        // No IPv4 route covers an IPv6 address, and main has no IPv6 default.
        assert_eq!(
            covering_prefix_len(&routes, MAIN_TABLE, ip("fd00::1")),
            None
        );
        let mut blackhole = route(MAIN_TABLE, "10.244.9.0", 24);
        blackhole.kind = RouteKind::Blackhole;
        assert_eq!(
            covering_prefix_len(&[blackhole], MAIN_TABLE, ip("10.244.9.1")),
            None
        );
    }
}
