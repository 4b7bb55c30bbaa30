//! The both-ends rule about the path MTU: the handshake passed, and large segments the source
//! retransmitted never showed at the destination while smaller ones did.

use protocol::{FlowSide, PacketMark};

use super::lines::{link_of, mark_words, zero_us};
use super::peer::PeerView;
use super::rules::{more, severity};
use super::sight::first_syn;
use super::timeline::Judged;
use crate::facts::Facts;
use crate::model::{Layer, RuleCode};
use crate::report::Report;

/// The single-ended findings an MTU blackhole located by both ends explains.
const MTU_RULES: &[RuleCode] = &[RuleCode::MtuBlackhole, RuleCode::TcpRetransmissions];

pub fn mtu_between(f: &Facts, peers: &[PeerView], mtu: &[&Judged], all: &[Judged], r: &mut Report) {
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
