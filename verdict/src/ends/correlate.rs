//! Which connection of the source is which flow at a peer. Both ends see the source's address
//! and ephemeral port alike; the server side may differ (the source sends to a ClusterIP:port,
//! the peer sees its own podIP:targetPort after the DNAT), so a flow is matched on its client
//! address plus the peer's own port.

use std::net::{IpAddr, SocketAddr};

use protocol::{CaptureSummary, TcpEvidence, TcpFlow};

use super::peer::PeerView;
use crate::facts::Facts;
use crate::kube::DestinationInfo;

/// One connection the source attempted, and what each end has of it.
#[derive(Debug)]
pub struct Connection<'a> {
    /// The source's address and port (unspecified when neither end saw them).
    pub client: SocketAddr,
    /// Where the source sent it.
    pub server: SocketAddr,
    /// The source's capture of it, when the source captured.
    pub source_flow: Option<&'a TcpFlow>,
    /// The source's connect that made it, when it is one of the TCP check's.
    pub connect: Option<&'a TcpEvidence>,
    /// The peer (index into the peers) that saw it, and its flow.
    pub seen: Option<(usize, &'a TcpFlow)>,
    /// The peers it could have reached (indices): the one at its address, else all.
    pub candidates: Vec<usize>,
    /// Every end it could have reached watched, with a complete capture, while the source
    /// sent: a connection none of them saw never reached the destination.
    pub watched: bool,
}

/// Every connection the source attempted toward the peers, with the peer flow that is it.
pub fn correlate<'a>(
    source: &Facts<'a>,
    peers: &[PeerView<'a>],
    released_early: bool,
) -> Vec<Connection<'a>> {
    let captured = source.all::<CaptureSummary>();
    let connects = source.all::<TcpEvidence>();
    let mut out = Vec::new();
    if captured.is_empty() {
        // No capture at the source: its connects are all it knows of its traffic.
        for t in connects {
            out.push(connect_only(source, peers, t, released_early));
        }
        return out;
    }
    let targets: Vec<SocketAddr> = connects.iter().map(|t| t.address).collect();
    for flow in captured.iter().flat_map(|c| c.tcp_flows.iter()) {
        let toward_peer = peers.iter().any(|p| p.session.port == flow.server.port());
        if !targets.contains(&flow.server) && !toward_peer {
            continue;
        }
        let candidates = candidates(peers, flow.server);
        let seen = candidates
            .peers
            .iter()
            .find_map(|&i| peer_flow(&peers[i], |pf| pf.client == flow.client).map(|pf| (i, pf)));
        out.push(Connection {
            client: flow.client,
            server: flow.server,
            source_flow: Some(flow),
            connect: connects
                .iter()
                .copied()
                .find(|t| t.local == Some(flow.client) && t.address == flow.server),
            seen,
            watched: watched(&candidates, peers, released_early),
            candidates: candidates.peers,
        });
    }
    out
}

/// A connect the source made without capturing: matched on its local address when the
/// evidence has one, else on the source's address alone (any port).
fn connect_only<'a>(
    source: &Facts<'a>,
    peers: &[PeerView<'a>],
    t: &'a TcpEvidence,
    released_early: bool,
) -> Connection<'a> {
    let source_ip = source_ip(source);
    let candidates = candidates(peers, t.address);
    let seen = candidates.peers.iter().find_map(|&i| {
        peer_flow(&peers[i], |pf| match t.local {
            Some(local) => pf.client == local,
            None => source_ip.is_none_or(|ip| pf.client.ip() == ip),
        })
        .map(|pf| (i, pf))
    });
    let client = t
        .local
        .or(seen.map(|(_, pf)| pf.client))
        .unwrap_or_else(|| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
    Connection {
        client,
        server: t.address,
        source_flow: None,
        connect: Some(t),
        seen,
        watched: watched(&candidates, peers, released_early),
        candidates: candidates.peers,
    }
}

/// The first flow of a watching peer's capture on its own port that `is_it`.
fn peer_flow<'a>(p: &PeerView<'a>, is_it: impl Fn(&TcpFlow) -> bool) -> Option<&'a TcpFlow> {
    p.capture()?
        .tcp_flows
        .iter()
        .find(|pf| pf.server.port() == p.session.port && is_it(pf))
}

/// The peers a connection to `server` could have reached: the one at that address, else
/// (a ClusterIP, a name) every peer.
struct Candidates {
    peers: Vec<usize>,
    /// The source sent to a peer's own address (no DNAT chose among endpoints).
    by_address: bool,
}

fn candidates(peers: &[PeerView], server: SocketAddr) -> Candidates {
    match peers
        .iter()
        .position(|p| p.session.address == Some(server.ip()))
    {
        Some(i) => Candidates {
            peers: vec![i],
            by_address: true,
        },
        None => Candidates {
            peers: (0..peers.len()).collect(),
            by_address: false,
        },
    }
}

/// Could the candidates together have seen every packet sent their way? Each must watch
/// completely, the source must not have gone on before they were armed, and when the
/// connection went through a Service, every ready endpoint must be one of them (a
/// connection the DNAT sent to an endpoint nobody watched proves nothing).
fn watched(c: &Candidates, peers: &[PeerView], released_early: bool) -> bool {
    !released_early
        && !c.peers.is_empty()
        && c.peers.iter().all(|&i| peers[i].proves_absence())
        && (c.by_address || endpoints_covered(peers))
}

/// Every ready endpoint of the destination Service is the address of a peer (true when the
/// destination is not a Service, or its endpoints are unknown).
fn endpoints_covered(peers: &[PeerView]) -> bool {
    let Some(DestinationInfo::Service(svc)) = peers
        .first()
        .and_then(|p| p.facts.kube.destination.as_ref())
    else {
        return true;
    };
    svc.endpoints.iter().filter(|e| e.ready).all(|e| {
        e.ip.parse::<IpAddr>()
            .is_ok_and(|ip| peers.iter().any(|p| p.session.address == Some(ip)))
    })
}

/// The source's own address, as the Kubernetes evidence gives it.
fn source_ip(source: &Facts) -> Option<IpAddr> {
    source.kube.source.as_ref()?.pod_ip.as_deref()?.parse().ok()
}
