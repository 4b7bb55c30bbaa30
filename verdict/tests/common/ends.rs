//! Both-ends scenarios built in code: a source pod `client` (10.199.1.1, node-1) connecting to
//! `svc/web` (10.199.96.10:80) whose endpoint `web-1` (10.199.2.2:8080, node-2) a peer probe
//! watched. Packet marks are written the way a reader thinks of them: `(ms, "client", "S",
//! len, "eth0", "out")`.

use std::net::SocketAddr;

use protocol::*;

use netdebug_verdict::kube::{KubeEvidence, KubeFinding};
use netdebug_verdict::{Inputs, PeerSession};

use super::build::{done, inputs_from_minor, sa};
use super::{endpoint, kube_service, service, source};

pub const CLIENT: &str = "10.199.1.1:41234";
pub const CLUSTER_IP: &str = "10.199.96.10:80";
pub const WEB_1: &str = "10.199.2.2:8080";
pub const WEB_2: &str = "10.199.2.3:8080";
/// The source's first SYN, microseconds since the epoch.
pub const T0: u64 = 1_700_000_000_000_000;

/// One packet: at `ms` after T0, sent by `from` (`client`/`server`), tcpdump flags, payload
/// length, interface and direction at the capturing end.
pub type M<'a> = (f64, &'a str, &'a str, u32, &'a str, &'a str);

pub fn marks(ms: &[M]) -> Vec<PacketMark> {
    ms.iter()
        .map(|(at, from, flags, len, iface, dir)| PacketMark {
            at_us: T0 + (at * 1000.0) as u64,
            from: Open::parse(from),
            flags: flags.parse().expect("infallible"),
            len: *len,
            interface: Some(iface.to_string()),
            direction: Some(Open::parse(dir)),
        })
        .collect()
}

/// A flow with its marks; the summary fields follow from them.
pub fn flow(client: &str, server: &str, ms: &[M]) -> TcpFlow {
    let marks = marks(ms);
    let syn_count = marks
        .iter()
        .filter(|m| m.from == FlowSide::Client && m.flags.is_syn())
        .count() as u32;
    let from_server = |f: fn(TcpFlags) -> bool| {
        marks
            .iter()
            .any(|m| m.from == FlowSide::Server && f(m.flags))
    };
    let handshake = if from_server(|f| f.has(TcpFlags::RST)) {
        Handshake::Refused
    } else if from_server(TcpFlags::is_syn_ack) {
        Handshake::Established
    } else {
        Handshake::Unanswered
    };
    TcpFlow {
        client: sa(client),
        server: sa(server),
        handshake: handshake.into(),
        syn_count,
        retransmits: syn_count.saturating_sub(1),
        rst_after_data: false,
        packets: marks.len() as u64,
        bytes: 0,
        handshake_ms: None,
        rst_from: (handshake == Handshake::Refused).then(|| FlowSide::Server.into()),
        marks,
        marks_dropped: 0,
    }
}

pub fn capture(flows: Vec<TcpFlow>) -> Event {
    Event::Evidence(Evidence::CaptureSummary(CaptureSummary {
        interface: "any".into(),
        filter: "tcp".into(),
        snaplen: 128,
        packets_captured: flows.iter().map(|f| f.packets).sum(),
        bytes_captured: 0,
        kernel_drops: 0,
        stopped_by: CaptureStop::Stopped.into(),
        tcp_flows: flows,
        icmp_errors: vec![],
        dns: vec![],
        kernel_received: None,
        notes: vec![],
    }))
}

pub fn armed(capture: bool) -> Event {
    Event::Armed(Armed {
        capture,
        elapsed_ms: 40.0,
    })
}

pub fn released(by: ReleaseCause) -> Event {
    Event::Released(Released {
        by: by.into(),
        held_ms: 5000.0,
    })
}

/// A connect with the local address the kernel chose.
pub fn connect(to: &str, local: &str, outcome: TcpOutcome, latency_ms: f64) -> Event {
    Event::Evidence(Evidence::Tcp(TcpEvidence {
        target: to.into(),
        address: sa(to),
        role: TargetRole::ClusterIp.into(),
        outcome: outcome.into(),
        latency_ms,
        local: Some(sa(local)),
        errno: None,
        message: None,
        icmp: None,
        node_nat: None,
    }))
}

/// The source's SYN to the ClusterIP, sent three times, never answered.
pub fn unanswered_syns() -> TcpFlow {
    flow(
        CLIENT,
        CLUSTER_IP,
        &[
            (0.0, "client", "S", 0, "eth0", "out"),
            (1003.1, "client", "S", 0, "eth0", "out"),
            (3011.0, "client", "S", 0, "eth0", "out"),
        ],
    )
}

/// A peer session that ran to `done`, protocol minor 4, with `events` after its hello.
pub fn peer(label: &str, address: &str, node: &str, events: Vec<Event>) -> PeerSession {
    let mut p = PeerSession::new(format!("peer-{label}"), format!("pod/{label}"), 8080);
    p.address = Some(address.parse().expect("test ip"));
    p.node = Some(node.into());
    let mut hello = super::build::hello(&["net_raw"]);
    if let Event::Hello(h) = &mut hello {
        h.protocol_minor = 4;
    }
    p.events.push(hello);
    p.events.extend(events);
    p.events.push(done());
    p.stream_end = netdebug_verdict::StreamEnd::Done;
    p
}

/// A peer that armed its capture and saw `flows`, plus `more` evidence.
pub fn watching_peer(
    label: &str,
    address: &str,
    flows: Vec<TcpFlow>,
    more: Vec<Event>,
) -> PeerSession {
    let mut events = vec![armed(true)];
    events.extend(more);
    events.push(capture(flows));
    peer(label, address, "node-2", events)
}

/// `svc/web` with the given endpoints (pod, ip) on node-2, the source on node-1.
pub fn web_kube(endpoints: &[(&str, &str)], findings: Vec<KubeFinding>) -> KubeEvidence {
    let eps = endpoints
        .iter()
        .map(|(pod, ip)| {
            let mut e = endpoint(ip, 8080, true, pod);
            e.node = Some("node-2".into());
            e
        })
        .collect();
    let svc = service("web", "shop", "10.199.96.10", 80, "8080", eps);
    kube_service(source("client", "shop", "10.199.1.1"), svc, findings)
}

/// A source run (minor 4) with `events`, and the peers.
pub fn run(events: Vec<Event>, kube: KubeEvidence, peers: Vec<PeerSession>) -> Inputs {
    let mut i = inputs_from_minor(4, events, kube);
    i.title = super::k8s_title("pod/client", "svc/web:80", "shop");
    i.peers = peers;
    i
}

pub fn addr(s: &str) -> SocketAddr {
    sa(s)
}
