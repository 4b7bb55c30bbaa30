//! What each end saw of one connection, read from its packet marks (or, for a flow without
//! marks, from the flow's handshake), and the outcome the two sights together give.

use protocol::{FlowSide, Handshake, PacketMark, TcpFlags, TcpFlow};

use super::correlate::Connection;
use crate::checks::tcp::connected;
use crate::connections::ConnectionOutcome;

/// Linux's smallest retransmission timeout: a segment of the same length sent again at least
/// about this long after the previous one is a retransmission, not the next segment of a
/// burst (marks carry no sequence numbers).
const RTO_MIN_US: u64 = 180_000;

/// How the server answered a SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    SynAck,
    Rst,
}

/// Large segments the source sent again and again that never showed at the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtuGap {
    /// The largest client segment the peer saw (None: only the handshake arrived).
    pub largest_arrived: Option<u32>,
    /// The smallest retransmitted segment the peer never saw.
    pub smallest_lost: u32,
    /// How often the source sent that one.
    pub times_sent: usize,
}

fn from(m: &PacketMark, side: FlowSide) -> bool {
    m.from == side
}

fn answer_of(flags: TcpFlags) -> Option<Answer> {
    if flags.has(TcpFlags::RST) {
        Some(Answer::Rst)
    } else if flags.is_syn_ack() {
        Some(Answer::SynAck)
    } else {
        None
    }
}

/// The first SYN the client sent, as this end's capture saw it.
pub fn first_syn(flow: &TcpFlow) -> Option<&PacketMark> {
    flow.marks
        .iter()
        .find(|m| from(m, FlowSide::Client) && m.flags.is_syn())
}

/// Did this end see the client's SYN?
pub fn saw_syn(flow: &TcpFlow) -> bool {
    first_syn(flow).is_some() || (flow.marks.is_empty() && flow.syn_count > 0)
}

/// The first answer to the SYN this end saw (the server's SYN-ACK or RST).
pub fn first_answer(flow: &TcpFlow) -> Option<(Answer, Option<&PacketMark>)> {
    if let Some((a, m)) = flow
        .marks
        .iter()
        .filter(|m| from(m, FlowSide::Server))
        .find_map(|m| answer_of(m.flags).map(|a| (a, m)))
    {
        return Some((a, Some(m)));
    }
    if !flow.marks.is_empty() {
        return None;
    }
    // A flow without marks (capture of an older probe): its handshake says as much.
    match flow.handshake.known()? {
        Handshake::Established => Some((Answer::SynAck, None)),
        Handshake::Refused
            if flow
                .rst_from
                .as_ref()
                .is_some_and(|s| *s == FlowSide::Server) =>
        {
            Some((Answer::Rst, None))
        }
        _ => None,
    }
}

/// For each mark: is it a retransmission (the same SYN or SYN-ACK again, or a segment of the
/// same length as that side's previous one, a retransmission timeout later)?
pub fn retransmits(marks: &[PacketMark]) -> Vec<bool> {
    marks
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut earlier = marks[..i].iter().filter(|e| e.from == m.from);
            if m.flags.is_syn() || m.flags.is_syn_ack() {
                return earlier.any(|e| e.flags == m.flags);
            }
            m.len > 0
                && earlier.rfind(|e| e.len > 0).is_some_and(|prev| {
                    prev.len == m.len && m.at_us.saturating_sub(prev.at_us) >= RTO_MIN_US
                })
        })
        .collect()
}

/// Large client segments the source retransmitted that the peer never saw, while smaller ones
/// (or at least the handshake) arrived. Only when the peer's marks hold the whole flow.
pub fn mtu_gap(source: &TcpFlow, peer: &TcpFlow) -> Option<MtuGap> {
    if peer.marks_dropped > 0 || !saw_syn(peer) {
        return None;
    }
    let arrived: Vec<u32> = peer
        .marks
        .iter()
        .filter(|m| from(m, FlowSide::Client) && m.len > 0)
        .map(|m| m.len)
        .collect();
    let largest_arrived = arrived.iter().copied().max();
    let again = retransmits(&source.marks);
    let smallest_lost = source
        .marks
        .iter()
        .zip(&again)
        .filter(|(m, re)| **re && from(m, FlowSide::Client) && m.len > 0)
        .map(|(m, _)| m.len)
        .filter(|len| !arrived.contains(len) && *len > largest_arrived.unwrap_or(0))
        .min()?;
    Some(MtuGap {
        largest_arrived,
        smallest_lost,
        times_sent: source
            .marks
            .iter()
            .filter(|m| from(m, FlowSide::Client) && m.len == smallest_lost)
            .count(),
    })
}

/// What the two ends together show about the connection.
pub fn outcome(c: &Connection, mtu: Option<MtuGap>) -> ConnectionOutcome {
    let connect_ok = c.connect.map(connected);
    let source_answer = c.source_flow.and_then(first_answer).map(|(a, _)| a);
    let Some((_, pf)) = c.seen else {
        // An ICMP error ended it on the way: its sender located it, not the peers' silence.
        if c.connect.is_some_and(|t| t.icmp.is_some()) {
            return ConnectionOutcome::RejectedOnTheWay;
        }
        // Nothing at the peers: lost between only if the SYN left and nothing came back.
        let left = match c.source_flow {
            Some(flow) => saw_syn(flow) && source_answer.is_none(),
            None => c
                .connect
                .is_some_and(|t| t.outcome == protocol::TcpOutcome::Timeout),
        };
        return if c.watched && left {
            ConnectionOutcome::LostBetween
        } else {
            ConnectionOutcome::Unseen
        };
    };
    let answered_source = source_answer == Some(Answer::SynAck) || connect_ok == Some(true);
    match first_answer(pf).map(|(a, _)| a) {
        Some(Answer::Rst) => ConnectionOutcome::Reset,
        None if !saw_syn(pf) => ConnectionOutcome::Unseen,
        // The peer's capture missed its own answer, the source has it.
        None if answered_source => ConnectionOutcome::Worked,
        None => ConnectionOutcome::NoReply,
        Some(Answer::SynAck) if !answered_source => ConnectionOutcome::ReplyLost,
        Some(Answer::SynAck) if mtu.is_some() => ConnectionOutcome::MtuBetween,
        Some(Answer::SynAck) => ConnectionOutcome::Worked,
    }
}
