//! What differs between a failing and a working source: typed facts read from each one's
//! evidence (resolv.conf, the DNS server that answered, interface MTUs, routes to the
//! targets, socket states, conntrack fill), compared fact by fact. Only facts that differ
//! in a way that can matter are kept: a computed difference, never a dump of both.

use std::collections::BTreeSet;
use std::net::IpAddr;

use protocol::{
    ConntrackEvidence, DnsConfigEvidence, DnsLookupEvidence, DnsOutcome, LinksEvidence, NudState,
    RouteEvidence, RouteOutcome, SocketState, SocketsEvidence,
};
use serde::Serialize;

use crate::checks::conntrack::CONNTRACK_NEAR_MAX;
use crate::checks::sockets::{CLOSE_WAIT_WORTH_REPORTING, TIME_WAIT_NEAR_RANGE};
use crate::facts::Facts;
use crate::words::joined;

/// Which fact differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The nameservers of resolv.conf, in order.
    ResolvNameservers,
    /// The search list of resolv.conf.
    ResolvSearch,
    /// `options ndots:`.
    ResolvNdots,
    /// The nameservers that answered the source's lookups (none when every query timed out).
    DnsServerReached,
    /// An interface's MTU (`about` names the interface).
    InterfaceMtu,
    /// The route to a target (`about` names the address).
    Route,
    /// TIME-WAIT sockets near the size of the ephemeral port range.
    TimeWait,
    /// CLOSE-WAIT sockets piling up.
    CloseWait,
    /// `net.ipv4.ip_local_port_range`.
    PortRange,
    /// The conntrack table near its maximum.
    ConntrackFill,
}

impl Fact {
    /// The words before the colon: `resolv.conf nameserver`.
    fn label(self) -> &'static str {
        match self {
            Fact::ResolvNameservers => "resolv.conf nameserver",
            Fact::ResolvSearch => "resolv.conf search",
            Fact::ResolvNdots => "resolv.conf ndots",
            Fact::DnsServerReached => "DNS server reached",
            Fact::InterfaceMtu => "MTU",
            Fact::Route => "route",
            Fact::TimeWait => "TIME-WAIT",
            Fact::CloseWait => "CLOSE-WAIT",
            Fact::PortRange => "ephemeral port range",
            Fact::ConntrackFill => "conntrack",
        }
    }

    /// The verb between a pod and its value: `web-2 uses 10.96.0.99`.
    fn verb(self) -> &'static str {
        match self {
            Fact::ResolvNameservers => "uses",
            Fact::Route => "goes",
            Fact::DnsServerReached => "reached",
            _ => "has",
        }
    }
}

/// One source's side of a difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// The session id (`src-2`).
    pub source: String,
    pub pod: String,
    pub node: Option<String>,
    pub value: String,
}

/// A fact that differs between a failing and a working source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub what: Fact,
    /// What the fact is about, when it is about one thing: the interface (`eth0`) of an
    /// MTU, the destination of a route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    pub failing: Side,
    pub working: Side,
}

impl Difference {
    /// `resolv.conf nameserver: web-2 uses 10.244.0.99, web-1 uses 10.96.0.10`.
    pub fn text(&self) -> String {
        let about = self
            .about
            .as_deref()
            .map(|a| match self.what {
                Fact::Route => format!(" to {a}"),
                _ => format!(" of {a}"),
            })
            .unwrap_or_default();
        format!(
            "{}{about}: {} {} {}, {} {} {}",
            self.what.label(),
            self.failing.pod,
            self.what.verb(),
            self.failing.value,
            self.working.pod,
            self.what.verb(),
            self.working.value
        )
    }
}

/// One source, as the comparison reads it.
pub(crate) struct Seen<'a> {
    pub id: &'a str,
    pub pod: &'a str,
    pub node: Option<&'a str>,
    pub facts: &'a Facts<'a>,
}

impl Seen<'_> {
    fn side(&self, value: String) -> Side {
        Side {
            source: self.id.to_string(),
            pod: self.pod.to_string(),
            node: self.node.map(str::to_string),
            value,
        }
    }
}

/// Every fact that differs between `failing` and `working`, in the order a packet depends
/// on them (resolver, interfaces, routes, sockets, conntrack).
pub(crate) fn between(failing: &Seen, working: &Seen) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut differ = |what: Fact, about: Option<String>, f: String, w: String| {
        if f != w {
            out.push(Difference {
                what,
                about,
                failing: failing.side(f),
                working: working.side(w),
            });
        }
    };

    // The resolver.
    if let (Some(f), Some(w)) = (
        failing.facts.one::<DnsConfigEvidence>(),
        working.facts.one::<DnsConfigEvidence>(),
    ) {
        differ(
            Fact::ResolvNameservers,
            None,
            joined(&f.nameservers),
            joined(&w.nameservers),
        );
        differ(
            Fact::ResolvSearch,
            None,
            search_words(&f.search),
            search_words(&w.search),
        );
        differ(
            Fact::ResolvNdots,
            None,
            format!("ndots:{}", f.ndots),
            format!("ndots:{}", w.ndots),
        );
    }
    if let (Some(f), Some(w)) = (reached(failing.facts), reached(working.facts)) {
        differ(Fact::DnsServerReached, None, f, w);
    }

    // Interfaces present on both sides (pods of one template name them alike).
    if let (Some(f), Some(w)) = (
        failing.facts.one::<LinksEvidence>(),
        working.facts.one::<LinksEvidence>(),
    ) {
        for fl in f.links.iter().filter(|l| !l.loopback) {
            if let Some(wl) = w.links.iter().find(|l| l.name == fl.name) {
                differ(
                    Fact::InterfaceMtu,
                    Some(fl.name.clone()),
                    fl.mtu.to_string(),
                    wl.mtu.to_string(),
                );
            }
        }
    }

    // Routes to the same destinations. Across nodes each node has its own gateway address,
    // so only the shape of the route is compared there; on one node, the gateway too.
    let same_node = failing.node.is_some() && failing.node == working.node;
    let w_routes = working.facts.all::<RouteEvidence>();
    let mut seen_dest: BTreeSet<IpAddr> = BTreeSet::new();
    for fr in failing.facts.all::<RouteEvidence>() {
        if !seen_dest.insert(fr.destination) {
            continue;
        }
        let Some(wr) = w_routes.iter().find(|r| r.destination == fr.destination) else {
            continue;
        };
        if route_key(fr, same_node) != route_key(wr, same_node) {
            differ(
                Fact::Route,
                Some(fr.destination.to_string()),
                route_words(fr),
                route_words(wr),
            );
        }
    }

    // Sockets: only a side at a threshold the single-source rules use counts as different.
    if let (Some(f), Some(w)) = (
        failing.facts.one::<SocketsEvidence>(),
        working.facts.one::<SocketsEvidence>(),
    ) {
        let near = |s: &SocketsEvidence| s.time_wait_ratio.unwrap_or(0.0) >= TIME_WAIT_NEAR_RANGE;
        if near(f) != near(w) {
            differ(Fact::TimeWait, None, time_wait_words(f), time_wait_words(w));
        }
        let piled = |s: &SocketsEvidence| close_wait(s) >= CLOSE_WAIT_WORTH_REPORTING;
        if piled(f) != piled(w) {
            differ(
                Fact::CloseWait,
                None,
                format!("{} CLOSE-WAIT", close_wait(f)),
                format!("{} CLOSE-WAIT", close_wait(w)),
            );
        }
        if let (Some(fr), Some(wr)) = (f.local_port_range, w.local_port_range) {
            differ(
                Fact::PortRange,
                None,
                format!("{}-{}", fr.0, fr.1),
                format!("{}-{}", wr.0, wr.1),
            );
        }
    }

    if let (Some(f), Some(w)) = (
        failing.facts.one::<ConntrackEvidence>(),
        working.facts.one::<ConntrackEvidence>(),
    ) {
        let full = |c: &ConntrackEvidence| c.fill_ratio.unwrap_or(0.0) >= CONNTRACK_NEAR_MAX;
        if full(f) != full(w) {
            differ(
                Fact::ConntrackFill,
                None,
                conntrack_words(f),
                conntrack_words(w),
            );
        }
    }
    out
}

fn search_words(search: &[String]) -> String {
    if search.is_empty() {
        "no search list".into()
    } else {
        search.join(" ")
    }
}

/// The nameservers that answered any query, or `none (X did not answer)` (or `failed:
/// connection refused`); None without
/// lookups (nothing to compare).
fn reached(f: &Facts) -> Option<String> {
    let lookups = f.all::<DnsLookupEvidence>();
    let queries: Vec<_> = lookups.iter().flat_map(|l| &l.queries).collect();
    if queries.is_empty() {
        return None;
    }
    let answered: BTreeSet<IpAddr> = queries
        .iter()
        .filter(|q| matches!(q.outcome, DnsOutcome::Response { .. }))
        .map(|q| q.nameserver.ip())
        .collect();
    if !answered.is_empty() {
        return Some(joined(&answered));
    }
    let asked: BTreeSet<IpAddr> = queries.iter().map(|q| q.nameserver.ip()).collect();
    // Silence and an error (an ICMP port unreachable reads as `connection refused`) are
    // different claims about the nameserver: say which.
    let failed: Vec<&str> = queries
        .iter()
        .filter_map(|q| match &q.outcome {
            DnsOutcome::Error { message } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    let every_query_failed = failed.len() == queries.len();
    let errors: BTreeSet<&str> = failed.into_iter().collect();
    let how = match (errors.len(), every_query_failed) {
        (0, _) => "did not answer".to_string(),
        (_, true) => format!(
            "failed: {}",
            errors.into_iter().collect::<Vec<_>>().join(", ")
        ),
        (_, false) => format!(
            "did not answer, or failed: {}",
            errors.into_iter().collect::<Vec<_>>().join(", ")
        ),
    };
    Some(format!("none ({} {how})", joined(&asked)))
}

/// What makes two routes the same for the comparison: type, table, device, MTU, whether a
/// next hop answered; the gateway address only between sources of one node.
fn route_key(r: &RouteEvidence, with_gateway: bool) -> String {
    match &r.outcome {
        RouteOutcome::Found(i) => format!(
            "{} {} {:?} {:?} {} {}",
            i.route_type,
            i.table,
            i.dev,
            i.mtu,
            if with_gateway {
                format!("{:?}", i.gateway)
            } else {
                i.gateway.is_some().to_string()
            },
            next_hop_failed(r)
        ),
        RouteOutcome::NoRoute { reason, .. } => format!("no route {reason}"),
    }
}

fn next_hop_failed(r: &RouteEvidence) -> bool {
    match &r.outcome {
        RouteOutcome::Found(i) => i
            .neighbor
            .as_ref()
            .is_some_and(|n| n.state.is_any(&[NudState::Failed, NudState::Incomplete])),
        RouteOutcome::NoRoute { .. } => false,
    }
}

/// `via 10.0.0.1 dev eth0 (next hop FAILED)`, `no route (unreachable)`.
fn route_words(r: &RouteEvidence) -> String {
    match &r.outcome {
        RouteOutcome::Found(i) => {
            let mut s = String::new();
            if let Some(g) = i.gateway {
                s.push_str(&format!("via {g} "));
            }
            if let Some(d) = &i.dev {
                s.push_str(&format!("dev {d} "));
            }
            if i.table != 254 {
                s.push_str(&format!("table {} ", i.table));
            }
            if let Some(m) = i.mtu {
                s.push_str(&format!("mtu {m} "));
            }
            if next_hop_failed(r) {
                if let Some(n) = &i.neighbor {
                    s.push_str(&format!("(next hop {}) ", n.state));
                }
            }
            s.trim_end().to_string()
        }
        RouteOutcome::NoRoute { reason, .. } => format!("no route ({reason})"),
    }
}

fn close_wait(s: &SocketsEvidence) -> u64 {
    s.states
        .get(&protocol::Open::Known(SocketState::CloseWait))
        .copied()
        .unwrap_or(0)
}

fn time_wait_words(s: &SocketsEvidence) -> String {
    let tw = s
        .states
        .get(&protocol::Open::Known(SocketState::TimeWait))
        .copied()
        .unwrap_or(0);
    match s.time_wait_ratio {
        Some(r) => format!("{tw} ({:.0}% of the ephemeral port range)", r * 100.0),
        None => tw.to_string(),
    }
}

fn conntrack_words(c: &ConntrackEvidence) -> String {
    match (c.count, c.max, c.fill_ratio) {
        (Some(n), Some(m), Some(r)) => format!("{n}/{m} ({:.0}%)", r * 100.0),
        _ => "not visible".into(),
    }
}
