//! The both-ends rules, one finding per outcome on its first connection, counting the others:
//! here a SYN lost between the ends and the proof when both ends agree, and what the rules
//! share; the way back is in `return_path.rs`, the path MTU in `mtu.rs`, the inside of the
//! destination in `destination.rs`.

use protocol::TcpFlow;

use super::lines::{link_of, peer_silence_line, source_line};
use super::peer::PeerView;
use super::timeline::Judged;
use super::{destination, mtu, return_path};
use crate::connections::ConnectionOutcome;
use crate::facts::Facts;
use crate::kube::KubeFindingCode;
use crate::model::{Layer, RuleCode, Severity};
use crate::report::Report;

/// The single-ended findings a timeout located by both ends explains.
pub const TIMEOUT_RULES: &[RuleCode] = &[RuleCode::TcpTimeout, RuleCode::TcpTimeoutNetworkPolicy];

pub fn apply(f: &Facts, peers: &[PeerView], judged: &[Judged], r: &mut Report) {
    let of = |o: ConnectionOutcome| -> Vec<&Judged> {
        judged.iter().filter(|j| j.outcome == o).collect()
    };
    let lost = of(ConnectionOutcome::LostBetween);
    if !lost.is_empty() {
        lost_between(f, peers, &lost, judged, r);
    }
    let silent = of(ConnectionOutcome::NoReply);
    if !silent.is_empty() {
        destination::no_reply(f, peers, &silent, judged, r);
    }
    let back = of(ConnectionOutcome::ReplyLost);
    if !back.is_empty() {
        return_path::reply_lost(f, peers, &back, judged, r);
    }
    let reset = of(ConnectionOutcome::Reset);
    if !reset.is_empty() {
        destination::reset(peers, &reset, judged, r);
    }
    let mtu = of(ConnectionOutcome::MtuBetween);
    if !mtu.is_empty() {
        mtu::mtu_between(f, peers, &mtu, judged, r);
    }
    agreed(peers, &of(ConnectionOutcome::Worked), r);
}

/// Failure when the located connections' connects failed or nothing worked at all; a warning
/// when other connections of the run passed. Never below the single-ended findings it
/// refines, so it sorts before them.
pub fn severity(located: &[&Judged], all: &[Judged], r: &Report, refines: &[RuleCode]) -> Severity {
    let connect_failed = located.iter().any(|j| {
        j.conn
            .connect
            .is_some_and(|t| !crate::checks::tcp::connected(t))
    });
    let any_worked = all.iter().any(|j| j.outcome == ConnectionOutcome::Worked);
    let own = if connect_failed || !any_worked {
        Severity::Failure
    } else {
        Severity::Warning
    };
    r.findings
        .iter()
        .filter(|x| refines.contains(&x.rule) && x.severity <= Severity::Failure)
        .map(|x| x.severity)
        .fold(own, Severity::max)
}

/// `, and 2 more connections the same way`
pub fn more(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        2 => " (and 1 more connection the same way)".into(),
        n => format!(" (and {} more connections the same way)", n - 1),
    }
}

fn lost_between(f: &Facts, peers: &[PeerView], lost: &[&Judged], all: &[Judged], r: &mut Report) {
    let j = lost[0];
    let c = &j.conn;
    let watching: Vec<&PeerView> = c.candidates.iter().map(|&i| &peers[i]).collect();
    let names: Vec<&str> = watching.iter().map(|p| p.session.label.as_str()).collect();
    let policy = f.kube_finding(KubeFindingCode::NetworkPolicyDenies);
    // Without a policy to blame, the way between the nodes (the Route layer: routes,
    // interfaces, the CNI's forwarding).
    let layer = if policy.is_some() {
        Layer::Policy
    } else {
        Layer::Network
    };
    let severity = severity(lost, all, r, TIMEOUT_RULES);
    let where_ = match policy {
        Some(p) => format!(
            "{} ({}) predicts this drop: {}",
            p.object,
            direction(p),
            p.message
        ),
        None => format!("dropped on the way: {}", path_words(f, &watching)),
    };
    let cause = format!(
        "the SYN from {} to {} left the source and never reached {} (its capture was armed){}: \
         {where_}",
        c.client,
        c.server,
        names.join(" or "),
        more(lost.len())
    );
    let mut b = r
        .finding(
            RuleCode::SynLostBetweenEnds,
            layer,
            severity,
            "lost between the ends",
            cause,
        )
        .line(source_line(c));
    if c.source_flow.is_none() {
        b = b.line(
            "source: without its capture, a SYN that never left the source (an OUTPUT rule in \
             its namespace) looks the same",
        );
    }
    for p in &watching {
        b = b.line(peer_silence_line(p, c));
    }
    b = match policy {
        Some(p) => b
            .line_in(Layer::Policy, p.message.clone())
            .next(policy_command(p)),
        None => b
            .line(format!("path: {}", path_words(f, &watching)))
            .next(format!(
                "tcpdump -ni any 'tcp port {} and host {}'   # on each node between, from the \
                 source's outward: where the SYN stops",
                watching.first().map_or(c.server.port(), |p| p.session.port),
                c.client.ip()
            )),
    };
    b.add_refining(TIMEOUT_RULES);
}

fn direction(p: &crate::kube::KubeFinding) -> &str {
    p.details.get("direction").map_or("policy", String::as_str)
}

fn policy_command(p: &crate::kube::KubeFinding) -> String {
    let policy = p.details.get("policy").cloned().unwrap_or(p.object.clone());
    let short = policy.rsplit('/').next().unwrap_or(&policy).to_string();
    match p.details.get("namespace") {
        Some(ns) => format!("kubectl get networkpolicy -n {ns} {short} -o yaml"),
        None => format!("kubectl get networkpolicy -A | grep {short}"),
    }
}

/// `node-1 -> node-2 (the CNI's overlay between nodes); MTU source eth0 1450, peer pod/web-1
/// eth0 1450`
fn path_words(f: &Facts, peers: &[&PeerView]) -> String {
    let source_node = f.kube.source.as_ref().and_then(|s| s.node.as_deref());
    let peer_nodes: Vec<&str> = peers
        .iter()
        .filter_map(|p| p.session.node.as_deref())
        .collect();
    let nodes = match (source_node, peer_nodes.as_slice()) {
        (Some(s), [one]) if s == *one => format!(
            "both ends on {s}: the node's own forwarding (veth, bridge, iptables FORWARD, the \
             CNI's policy)"
        ),
        (Some(s), []) => {
            format!("from {s} to the destination's node (the CNI, firewalls on the nodes)")
        }
        (s, ps) => format!(
            "{} -> {} (the CNI between the nodes, firewalls on the nodes)",
            s.unwrap_or("the source's node"),
            if ps.is_empty() {
                "the destination's node".to_string()
            } else {
                ps.join(", ")
            }
        ),
    };
    let mut mtus = Vec::new();
    if let Some(l) = link_of(f, None) {
        mtus.push(format!("source {} {}", l.name, l.mtu));
    }
    for p in peers {
        if let Some(l) = link_of(&p.facts, None) {
            mtus.push(format!("{} {} {}", p.cite(), l.name, l.mtu));
        }
    }
    if mtus.is_empty() {
        nodes
    } else {
        format!("{nodes}; MTU {}", mtus.join(", "))
    }
}

/// Both ends saw the handshake: proven.
fn agreed(peers: &[PeerView], worked: &[&Judged], r: &mut Report) {
    let Some(first) = worked.first() else {
        return;
    };
    let mut by_peer: Vec<(String, usize)> = Vec::new();
    for j in worked {
        let label = j
            .peer(peers)
            .map_or("?".into(), |p| p.session.label.clone());
        match by_peer.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => by_peer.push((label, 1)),
        }
    }
    let text = if worked.len() == 1 {
        format!(
            "both ends agree: {} -> {} reached {} and was answered",
            first.conn.client, first.conn.server, by_peer[0].0
        )
    } else {
        let per: Vec<String> = by_peer.iter().map(|(l, n)| format!("{l} {n}")).collect();
        format!(
            "both ends agree: {} connections reached their end and were answered ({})",
            worked.len(),
            per.join(", ")
        )
    };
    r.ok(Layer::Transport, text);
}

/// The peer's flow of a judged connection (for callers that checked it was seen).
pub fn seen_flow<'a>(j: &Judged<'a>) -> Option<&'a TcpFlow> {
    j.conn.seen.map(|(_, pf)| pf)
}
