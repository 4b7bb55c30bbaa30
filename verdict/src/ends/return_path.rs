//! The both-ends rule about the way back: the destination answered the SYN with a SYN-ACK
//! that never reached the source. An asymmetric route (the reply leaves by another interface
//! than the SYN came in on) is told from a drop by conntrack or a filter on the way back.

use protocol::{FlowSide, RouteEvidence, RouteOutcome, Sysctl, TargetRole};

use super::lines::{link_of, peer_seen_line, source_line, zero_us};
use super::peer::PeerView;
use super::rules::{more, severity, TIMEOUT_RULES};
use super::sight::first_syn;
use super::timeline::Judged;
use crate::facts::Facts;
use crate::model::{Layer, RuleCode};
use crate::report::Report;

pub fn reply_lost(f: &Facts, peers: &[PeerView], back: &[&Judged], all: &[Judged], r: &mut Report) {
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
