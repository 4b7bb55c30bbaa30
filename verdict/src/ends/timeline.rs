//! A judged connection as the verdict shows it: both ends' packets on one time line, from the
//! source's first SYN (or, when the source had no capture, the peer's first packet).

use protocol::{PacketMark, TcpFlow};

use super::correlate::Connection;
use super::peer::PeerView;
use super::sight::{first_syn, retransmits, MtuGap};
use crate::checks::tcp::short_words;
use crate::connections::{ConnectionOutcome, ConnectionTimeline, End, TimeBasis, TimelinePacket};

/// Connections kept in the verdict (failures first); the rest are counted in a note.
pub const MAX_CONNECTIONS: usize = 20;

/// One connection, its outcome, and (when the source captured it) its MTU gap.
#[derive(Debug)]
pub struct Judged<'a> {
    pub conn: Connection<'a>,
    pub outcome: ConnectionOutcome,
    pub mtu: Option<MtuGap>,
}

impl Judged<'_> {
    /// The peer that saw it.
    pub fn peer<'p, 'a>(&self, peers: &'p [PeerView<'a>]) -> Option<&'p PeerView<'a>> {
        self.conn.seen.map(|(i, _)| &peers[i])
    }
}

pub fn timeline(j: &Judged, peers: &[PeerView], source_node: Option<&str>) -> ConnectionTimeline {
    let c = &j.conn;
    let peer_flow = c.seen.map(|(_, pf)| pf);
    let peer = j.peer(peers);
    let zero = c
        .source_flow
        .and_then(first_syn)
        .map(|m| (TimeBasis::SourceSyn, m.at_us))
        .or_else(|| {
            peer_flow
                .and_then(|pf| pf.marks.first())
                .map(|m| (TimeBasis::PeerFirstPacket, m.at_us))
        });
    let (basis, zero_us) = zero.unwrap_or((TimeBasis::NoPackets, 0));
    let mut packets = Vec::new();
    if let Some(flow) = c.source_flow {
        packets.extend(packets_of(End::Source, flow, zero_us));
    }
    if let Some(pf) = peer_flow {
        packets.extend(packets_of(End::Peer, pf, zero_us));
    }
    // Stable: at the same offset the source's packet stays first.
    packets.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
    let peer_node = peer.and_then(|p| p.session.node.as_deref());
    ConnectionTimeline {
        client: c.client,
        server: c.server,
        peer: peer.map(|p| p.session.label.clone()),
        peer_server: peer_flow.map(|pf| pf.server),
        basis,
        peer_clock: peer_node
            .filter(|n| source_node != Some(*n))
            .map(str::to_string),
        packets,
        packets_dropped: c.source_flow.map_or(0, |f| f.marks_dropped)
            + peer_flow.map_or(0, |f| f.marks_dropped),
        outcome: j.outcome,
        summary: summary(j, peer.map(|p| p.session.label.as_str())),
    }
}

fn packets_of(end: End, flow: &TcpFlow, zero_us: u64) -> Vec<TimelinePacket> {
    let again = retransmits(&flow.marks);
    flow.marks
        .iter()
        .zip(again)
        .map(|(m, retransmit)| packet(end, m, zero_us, retransmit))
        .collect()
}

fn packet(end: End, m: &PacketMark, zero_us: u64, retransmit: bool) -> TimelinePacket {
    TimelinePacket {
        end,
        offset_ms: (m.at_us as f64 - zero_us as f64) / 1000.0,
        from: m.from.clone(),
        flags: m.flags,
        len: m.len,
        direction: m.direction.clone(),
        interface: m.interface.clone(),
        retransmit,
    }
}

/// The timeline's last line: what it shows.
fn summary(j: &Judged, peer: Option<&str>) -> String {
    let c = &j.conn;
    let connect = c
        .connect
        .filter(|_| c.source_flow.is_none())
        .map(|t| {
            format!(
                "the source's connect: {} (no capture at the source); ",
                short_words(t)
            )
        })
        .unwrap_or_default();
    let peer = peer.unwrap_or("the peer");
    let what = match j.outcome {
        ConnectionOutcome::LostBetween => "the SYN never reached any watching peer".to_string(),
        ConnectionOutcome::RejectedOnTheWay => match c.connect.and_then(|t| t.icmp.as_ref()) {
            Some(icmp) => format!(
                "an ICMP {} from {} ended it before {peer}",
                icmp.meaning,
                icmp.from.map_or("a hop".to_string(), |f| f.to_string())
            ),
            None => format!("an ICMP error ended it before {peer}"),
        },
        ConnectionOutcome::NoReply => format!("the SYN reached {peer}, which sent nothing back"),
        ConnectionOutcome::ReplyLost => "no S. reached the source".to_string(),
        ConnectionOutcome::Reset => format!("{peer} answered R."),
        ConnectionOutcome::MtuBetween => match j.mtu {
            Some(g) => format!(
                "segments of {} bytes never reached {peer} ({})",
                g.smallest_lost,
                match g.largest_arrived {
                    Some(n) => format!("the largest that did: {n}"),
                    None => "only the handshake did".into(),
                }
            ),
            None => "large segments never reached the peer".to_string(),
        },
        ConnectionOutcome::Worked => format!("both ends saw the handshake ({peer})"),
        ConnectionOutcome::Unseen => "no watching peer saw it: the other end says nothing".into(),
    };
    format!("{connect}{what}")
}
