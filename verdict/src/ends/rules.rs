//! The both-ends rules about the way between the ends: a SYN lost between them, a reply lost
//! on the way back, an MTU blackhole between them; and the proof when both ends agree. The
//! rules about the inside of the destination are in `destination.rs`. One finding per
//! outcome, on its first connection, counting the others.

use protocol::{FlowSide, PacketMark, RouteEvidence, RouteOutcome, Sysctl, TargetRole, TcpFlow};

use super::destination;
use super::lines::{link_of, mark_words, peer_seen_line, peer_silence_line, source_line, zero_us};
use super::peer::PeerView;
use super::sight::first_syn;
use super::timeline::Judged;
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
        reply_lost(f, peers, &back, judged, r);
    }
    let reset = of(ConnectionOutcome::Reset);
    if !reset.is_empty() {
        destination::reset(peers, &reset, judged, r);
    }
    let mtu = of(ConnectionOutcome::MtuBetween);
    if !mtu.is_empty() {
        mtu_between(f, peers, &mtu, judged, r);
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

fn reply_lost(f: &Facts, peers: &[PeerView], back: &[&Judged], all: &[Judged], r: &mut Report) {
    let j = back[0];
    let (Some(p), Some((_, pf))) = (j.peer(peers), j.conn.seen) else {
        return;
    };
    let zero = zero_us(&j.conn);
    let syn_in = first_syn(pf);
    let reply = pf
        .marks
        .iter()
        .find(|m| m.from == FlowSide::Server && m.flags.is_syn_ack());
    let route = route_back(&p.facts, j.conn.client.ip());
    let in_dev = syn_in.and_then(|m| m.interface.as_deref());
    let out_dev = reply
        .and_then(|m| m.interface.as_deref())
        .or(route.and_then(|(dev, _)| dev));
    let label = &p.session.label;
    let (cause_end, next) = match (in_dev, out_dev) {
        (Some(i), Some(o)) if i != o => (
            format!(
                "the SYN came in on {i}, the reply to {} leaves by {o}{}: an asymmetric route, \
                 where a strict rp_filter on the way back (or a stateful firewall that saw only \
                 one direction) drops it",
                j.conn.client.ip(),
                route
                    .and_then(|(_, gw)| gw)
                    .map(|g| format!(" via {g}"))
                    .unwrap_or_default()
            ),
            format!(
                "ip route get {}; ip rule show   # in {label}: the way back should leave by {i}",
                j.conn.client.ip()
            ),
        ),
        _ => (
            format!(
                "the reply left the way the SYN came in{}: it was dropped on the way back, by \
                 conntrack (a reply that matches no DNAT/SNAT entry is INVALID) or a filter",
                in_dev.map(|i| format!(" ({i})")).unwrap_or_default()
            ),
            format!(
                "conntrack -L -p tcp --sport {}   # on the source's and the destination's nodes; \
                 then iptables -S | grep -i invalid",
                j.conn.client.port()
            ),
        ),
    };
    let cause = format!(
        "{label} answered the SYN from {} with S., which never reached the source{}: {cause_end}",
        j.conn.client,
        more(back.len())
    );
    let severity = severity(back, all, r, TIMEOUT_RULES);
    let mut b = r
        .finding(
            RuleCode::ReplyLostOnReturnPath,
            Layer::Network,
            severity,
            "reply lost on the way back",
            cause,
        )
        .line(source_line(&j.conn))
        .line(peer_seen_line(p, pf, zero));
    if let Some(rp) = rp_filter_words(f, p, in_dev, out_dev) {
        b = b.line(rp);
    }
    b.next(next).add_refining(TIMEOUT_RULES);
}

/// The peer's route back to the source: its device and gateway.
fn route_back<'a>(
    f: &Facts<'a>,
    source: std::net::IpAddr,
) -> Option<(Option<&'a str>, Option<std::net::IpAddr>)> {
    let routes = f.all::<RouteEvidence>();
    let route = routes
        .iter()
        .find(|x| x.destination == source)
        .or_else(|| routes.iter().find(|x| x.role == TargetRole::Source))?;
    match &route.outcome {
        RouteOutcome::Found(info) => Some((info.dev.as_deref(), info.gateway)),
        RouteOutcome::NoRoute { .. } => None,
    }
}

/// `rp_filter: source all=1 eth0=1; peer pod/web-1 all=0 eth1=2`: the settings that drop a
/// reply arriving where the route back does not point.
fn rp_filter_words(
    f: &Facts,
    p: &PeerView,
    in_dev: Option<&str>,
    out_dev: Option<&str>,
) -> Option<String> {
    let read = |facts: &Facts, dev: Option<&str>| -> Option<String> {
        let all = facts.sysctl(&Sysctl::RpFilter(protocol::ConfScope::All));
        let own = dev.and_then(|d| facts.sysctl(&Sysctl::rp_filter_of(d)).map(|v| (d, v)));
        match (all, own) {
            (None, None) => None,
            (a, o) => Some(format!(
                "all={}{}",
                a.unwrap_or("?").trim(),
                o.map(|(d, v)| format!(" {d}={}", v.trim()))
                    .unwrap_or_default()
            )),
        }
    };
    let source_dev = link_of(f, None).map(|l| l.name.as_str());
    let parts: Vec<String> = [
        read(f, source_dev).map(|s| format!("source {s}")),
        read(&p.facts, in_dev.or(out_dev)).map(|s| format!("{} {s}", p.cite())),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "rp_filter (1 = strict drops asymmetric replies): {}",
            parts.join("; ")
        )
    })
}

const MTU_RULES: &[RuleCode] = &[RuleCode::MtuBlackhole, RuleCode::TcpRetransmissions];

fn mtu_between(f: &Facts, peers: &[PeerView], mtu: &[&Judged], all: &[Judged], r: &mut Report) {
    let j = mtu[0];
    let (Some(p), Some(gap), Some(sf), Some((_, pf))) =
        (j.peer(peers), j.mtu, j.conn.source_flow, j.conn.seen)
    else {
        return;
    };
    let arrived = match gap.largest_arrived {
        Some(n) => format!("segments of up to {n} bytes did"),
        None => "the handshake did".into(),
    };
    let cause = format!(
        "segments of {} bytes left the source {} times and never reached {}, while {arrived}: \
         an MTU blackhole between the two ends (no ICMP frag-needed came back to lower the \
         path MTU){}",
        gap.smallest_lost,
        gap.times_sent,
        p.session.label,
        more(mtu.len())
    );
    let big = sf
        .marks
        .iter()
        .find(|m| m.from == FlowSide::Client && m.len == gap.smallest_lost);
    let mut b = r
        .finding(
            RuleCode::MtuBlackholeBetweenEnds,
            Layer::Path,
            severity(mtu, all, r, MTU_RULES),
            "MTU blackhole between the ends",
            cause,
        )
        .line(format!(
            "source: {} > {}: {} bytes sent {} times{}",
            j.conn.client,
            j.conn.server,
            gap.smallest_lost,
            gap.times_sent,
            big.map(|m| format!(", first {}", mark_words(m, zero_us(&j.conn))))
                .unwrap_or_default()
        ))
        .line(format!(
            "{}: {}; none of {} bytes",
            p.cite(),
            match gap.largest_arrived {
                Some(n) => format!("largest client segment seen {n} bytes"),
                None => "the handshake arrived, no data segment".into(),
            },
            gap.smallest_lost
        ));
    if let Some(words) = mtu_words(f, p, big, first_syn(pf)) {
        b = b.line(words);
    }
    let b = b
        .next(format!(
            "tracepath -n {}   # from the source: where the path MTU drops",
            pf.server.ip()
        ))
        .next("ip link show   # on both nodes: MTU of the overlay and the underlay (encapsulation overhead)");
    b.add_refining(MTU_RULES);
}

fn mtu_words(
    f: &Facts,
    p: &PeerView,
    out: Option<&PacketMark>,
    into: Option<&PacketMark>,
) -> Option<String> {
    let s = link_of(f, out).map(|l| format!("source {} {}", l.name, l.mtu));
    let d = link_of(&p.facts, into).map(|l| format!("{} {} {}", p.cite(), l.name, l.mtu));
    let parts: Vec<String> = [s, d].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| format!("interface MTU: {}", parts.join(", ")))
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
