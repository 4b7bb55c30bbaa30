//! Evidence constructed in code, one fact at a time: for rules whose scenario cannot be
//! recorded in a network namespace here (interface errors, a full conntrack table) and for
//! edge cases of a rule. Everything else is tested on recorded fixtures.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use protocol::*;

use netdebug_verdict::kube::KubeEvidence;
use netdebug_verdict::{Inputs, StreamEnd, Title};

pub fn inputs(events: Vec<Event>) -> Inputs {
    inputs_with(events, KubeEvidence::default())
}

pub fn inputs_with(mut events: Vec<Event>, kube: KubeEvidence) -> Inputs {
    events.insert(0, hello(&["net_raw"]));
    events.push(done());
    Inputs {
        kube,
        events,
        stream_end: StreamEnd::Done,
        title: Title {
            source: "netns/client".into(),
            destination: Some("10.199.0.2:8080".into()),
            namespace: None,
            origin: None,
            asked: None,
        },
        pcap: None,
        ignored_events: Vec::new(),
        client_notes: Vec::new(),
        delivery: None,
        peers: Vec::new(),
    }
}

pub fn hello(caps: &[&str]) -> Event {
    Event::Hello(Hello {
        probe_version: "0.1.0".into(),
        protocol_minor: 0,
        netns_inode: Some(4026532000),
        hostname: Some("client".into()),
        kernel: None,
        uid: 0,
        euid: 0,
        capabilities: caps.iter().map(|c| Open::parse(c)).collect(),
        deadline_ms: 15000,
    })
}

pub fn done() -> Event {
    Event::Done(Done {
        elapsed_ms: 100.0,
        checks_completed: 1,
        checks_failed: 0,
        checks_skipped: 0,
        deadline_exceeded: false,
    })
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test socket address")
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test ip")
}

pub fn tcp(addr: &str, outcome: TcpOutcome, latency_ms: f64) -> Event {
    Event::Evidence(Evidence::Tcp(TcpEvidence {
        target: addr.into(),
        address: sa(addr),
        role: TargetRole::Direct.into(),
        outcome: outcome.into(),
        latency_ms,
        local: None,
        errno: None,
        message: None,
        icmp: None,
        node_nat: None,
    }))
}

pub fn route(dst: &str, dev: &str, gw: Option<&str>, src: &str, neigh: Option<&str>) -> Event {
    let nh = gw.unwrap_or(dst);
    Event::Evidence(Evidence::Route(RouteEvidence {
        target: dst.into(),
        destination: ip(dst),
        role: TargetRole::Direct.into(),
        outcome: RouteOutcome::Found(RouteInfo {
            table: 254,
            route_type: RouteType::Unicast.into(),
            dev: Some(dev.into()),
            gateway: gw.map(ip),
            prefsrc: Some(ip(src)),
            mtu: None,
            neighbor: neigh.map(|state| Neighbor {
                address: ip(nh),
                state: Open::parse(state),
                lladdr: None,
            }),
        }),
    }))
}

pub fn no_route(dst: &str) -> Event {
    Event::Evidence(Evidence::Route(RouteEvidence {
        target: dst.into(),
        destination: ip(dst),
        role: TargetRole::Direct.into(),
        outcome: RouteOutcome::NoRoute {
            reason: NoRouteReason::NetworkUnreachable.into(),
            message: "Network is unreachable (os error 101)".into(),
            matched: None,
        },
    }))
}

pub fn link(name: &str, up: bool, addr: Option<&str>) -> Link {
    Link {
        index: 2,
        name: name.into(),
        kind: Some(LinkKind::Veth.into()),
        oper_state: if up { OperState::Up } else { OperState::Down }.into(),
        admin_up: up,
        lower_up: up,
        loopback: name == "lo",
        mtu: 1500,
        mac: None,
        addresses: addr
            .map(|a| {
                vec![InterfaceAddress {
                    address: ip(a),
                    prefix_len: 24,
                    scope: AddressScope::Global.into(),
                }]
            })
            .into_iter()
            .flatten()
            .collect(),
        stats: LinkStats::default(),
    }
}

pub fn links(links: Vec<Link>) -> Event {
    Event::Evidence(Evidence::Links(LinksEvidence { links }))
}

fn ev(value: serde_json::Value) -> Event {
    // Built through serde so that optional fields added to the protocol later keep their
    // defaults here, as they do for a reader of an older probe.
    Event::Evidence(serde_json::from_value(value).expect("test evidence decodes"))
}

pub fn query(cand: &str, ns: &str, outcome: DnsOutcome, latency_ms: f64) -> serde_json::Value {
    serde_json::json!({
        "candidate": cand, "qtype": "A", "nameserver": format!("{ns}:53"), "transport": "udp",
        "outcome": outcome, "latency_ms": latency_ms,
    })
}

pub fn response(rcode: &str, answer: Option<&str>) -> DnsOutcome {
    DnsOutcome::Response {
        rcode: Open::parse(rcode),
        answers: answer
            .map(|a| DnsRecord {
                name: "x".into(),
                rtype: RecordType::A.into(),
                ttl: 30,
                data: a.into(),
            })
            .into_iter()
            .collect(),
        truncated: false,
        authoritative: false,
    }
}

pub fn lookup(
    name: &str,
    candidates: &[&str],
    queries: Vec<serde_json::Value>,
    answered: Option<(&str, &str)>,
    wasted: u32,
) -> Event {
    let elapsed: f64 = queries
        .iter()
        .filter_map(|q| q["latency_ms"].as_f64())
        .sum();
    ev(serde_json::json!({
        "kind": "dns_lookup", "name": name, "candidates": candidates, "queries": queries,
        "answered_by": answered.map(|a| a.0), "addresses": answered.map(|a| vec![a.1]).unwrap_or_default(),
        "wasted_queries": wasted, "elapsed_ms": elapsed,
    }))
}

pub fn dns_config(ns: &[&str], search: &[&str], ndots: u32) -> Event {
    ev(serde_json::json!({
        "kind": "dns_config", "path": "/etc/resolv.conf", "nameservers": ns, "search": search,
        "ndots": ndots, "timeout_s": 5, "attempts": 2,
    }))
}

/// Socket-table evidence: `fields` (JSON) over an empty table with the default port range.
pub fn sockets(fields: serde_json::Value) -> Event {
    let mut v = serde_json::json!({
        "kind": "sockets", "states": {}, "total": 0, "local_port_range": [32768, 60999],
    });
    for (k, x) in fields.as_object().expect("an object").iter() {
        v[k] = x.clone();
    }
    ev(v)
}

pub fn counters(values: &[(&str, u64)]) -> Event {
    Event::Evidence(Evidence::Counters(CountersEvidence {
        interval_ms: 2000.0,
        counters: values
            .iter()
            .map(|(k, d)| {
                (
                    Open::parse(k),
                    CounterValue {
                        value: 1000 + d,
                        delta: *d,
                    },
                )
            })
            .collect(),
    }))
}

pub fn conntrack(count: u64, max: u64) -> Event {
    Event::Evidence(Evidence::Conntrack(ConntrackEvidence {
        present: true,
        count: Some(count),
        max: Some(max),
        fill_ratio: Some(count as f64 / max as f64),
        insert_failed: None,
        drop: None,
        early_drop: None,
        note: None,
    }))
}

pub fn sysctls(values: &[(&str, &str)]) -> Event {
    Event::Evidence(Evidence::Sysctls(SysctlsEvidence {
        values: values
            .iter()
            .map(|(k, v)| (Sysctl::parse(k), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }))
}

pub fn mtu(dst: &str, largest_ok: u32, smallest_lost: Option<u32>, frag_needed: bool) -> Event {
    Event::Evidence(Evidence::Mtu(MtuEvidence {
        target: dst.into(),
        destination: ip(dst),
        role: TargetRole::Direct.into(),
        variant: MtuVariant::Icmp.into(),
        interface_mtu: Some(1500),
        route_mtu: None,
        largest_ok: Some(largest_ok),
        smallest_lost,
        frag_needed_seen: frag_needed,
        learned_pmtu: None,
        blackhole: smallest_lost.is_some() && !frag_needed,
        probes: vec![],
    }))
}

pub fn skipped(check: CheckKind, reason: &str, cap: Option<&str>) -> Event {
    Event::Skipped(Skipped {
        check: check.into(),
        reason: reason.into(),
        missing_capability: cap.map(Open::parse),
    })
}

/// A TCP result with the role a probe of protocol minor 1 or later echoes.
pub fn tcp_as(addr: &str, role: TargetRole, outcome: TcpOutcome, latency_ms: f64) -> Event {
    let Event::Evidence(Evidence::Tcp(mut t)) = tcp(addr, outcome, latency_ms) else {
        unreachable!("tcp() builds tcp evidence")
    };
    t.role = role.into();
    Event::Evidence(Evidence::Tcp(t))
}

/// Inputs from a probe that speaks protocol minor `minor` (roles are echoed from minor 1).
pub fn inputs_from_minor(minor: u32, events: Vec<Event>, kube: KubeEvidence) -> Inputs {
    let mut i = inputs_with(events, kube);
    if let Some(Event::Hello(h)) = i.events.first_mut() {
        h.protocol_minor = minor;
    }
    i
}

/// Evidence given as its JSON (for values this version of the protocol does not know).
pub fn evidence_json(value: serde_json::Value) -> Event {
    ev(value)
}
