//! Both ends (`--both-ends`): the source's connections lined up with what the peers at the
//! destination saw, the rules that locate a failure between or inside the ends, and the
//! timelines the verdict shows. Runs after every single-ended rule: a finding that locates
//! what a single-ended one saw marks it refined (see [`crate::report::Report::refine`]), so it
//! sorts first while the single-ended evidence stays.
//!
//! ```text
//! correlate (which peer flow is which source connection)
//!   -> sight (what each end saw; the outcome)  -> rules, return_path, mtu, destination (findings)
//!   -> timeline (what the verdict shows)       -> peer::gaps (what no end could see)
//! ```

mod correlate;
mod destination;
mod lines;
mod mtu;
mod peer;
mod return_path;
mod rules;
mod sight;
mod timeline;

pub use timeline::MAX_CONNECTIONS;

use crate::connections::{ConnectionOutcome, ConnectionTimeline};
use crate::facts::Facts;
use crate::model::{Inputs, Unchecked};
use crate::report::Report;
use peer::PeerView;
use timeline::Judged;

/// What the both-ends pass adds besides findings.
#[derive(Debug, Default)]
pub struct Ends {
    pub connections: Vec<ConnectionTimeline>,
    pub unchecked: Vec<Unchecked>,
}

/// Judge the source's connections against the peers. A single-ended run (no peers) adds
/// nothing.
pub fn apply(inputs: &Inputs, f: &Facts, r: &mut Report) -> Ends {
    if inputs.peers.is_empty() {
        return Ends::default();
    }
    let peers: Vec<PeerView> = inputs
        .peers
        .iter()
        .map(|p| PeerView::new(p, inputs))
        .collect();
    let mut judged: Vec<Judged> = correlate::correlate(f, &peers, peer::released_early(f))
        .into_iter()
        .map(|conn| {
            let mtu = conn
                .source_flow
                .zip(conn.seen)
                .and_then(|(sf, (_, pf))| sight::mtu_gap(sf, pf));
            let outcome = sight::outcome(&conn, mtu);
            Judged { conn, outcome, mtu }
        })
        .collect();
    // Failures first (in the order of the outcomes), then what worked, then what no end saw.
    judged.sort_by_key(|j| j.outcome);
    rules::apply(f, &peers, &judged, r);
    notes(f, &peers, &judged, r);
    let source_node = f.kube.source.as_ref().and_then(|s| s.node.as_deref());
    let connections: Vec<ConnectionTimeline> = judged
        .iter()
        .take(MAX_CONNECTIONS)
        .map(|j| timeline::timeline(j, &peers, source_node))
        .collect();
    if judged.len() > MAX_CONNECTIONS {
        r.notes.push(format!(
            "{} more connections were correlated across the ends than the verdict keeps ({})",
            judged.len() - MAX_CONNECTIONS,
            MAX_CONNECTIONS
        ));
    }
    Ends {
        connections,
        unchecked: peer::gaps(f, &peers),
    }
}

/// What a reader of the timelines should know: times on two clocks, a source without a
/// capture.
fn notes(f: &Facts, peers: &[PeerView], judged: &[Judged], r: &mut Report) {
    let source_node = f.kube.source.as_ref().and_then(|s| s.node.as_deref());
    let other_clocks: Vec<&str> = peers
        .iter()
        .filter_map(|p| p.session.node.as_deref())
        .filter(|n| source_node.is_some_and(|s| s != *n))
        .collect();
    if !other_clocks.is_empty() && judged.iter().any(|j| j.conn.seen.is_some()) {
        r.notes.push(format!(
            "peer packet times are on their own node's clock ({}), the source's on {}: offsets \
             across the two ends are only as exact as those clocks agree",
            other_clocks.join(", "),
            source_node.unwrap_or("its node")
        ));
    }
    let source_captured = judged.iter().any(|j| j.conn.source_flow.is_some());
    if !source_captured && !judged.is_empty() {
        r.notes.push(
            "the source had no capture: its connects' outcomes stand in for its packets, so a \
             SYN that never left the source (an OUTPUT rule in its namespace) cannot be told \
             from one lost between the ends, and timelines start at the peer's first packet"
                .into(),
        );
    }
    let unseen = judged
        .iter()
        .filter(|j| j.outcome == ConnectionOutcome::Unseen)
        .count();
    if unseen > 0 {
        r.notes.push(format!(
            "{unseen} connection(s) of the source no watching peer saw (sent to an endpoint no \
             peer watched, or while a peer could not see): the other end says nothing about them"
        ));
    }
}
