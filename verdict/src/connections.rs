//! Both ends (`--both-ends`): the per-connection timelines the verdict shows, one per connection
//! the source attempted, lined up from the source's capture and the peer's that saw it. Plain
//! data, serialised under `verdict.connections` (see `verdict/OUTPUT.md`).

use std::net::SocketAddr;

use protocol::{FlowSide, Open, PacketDirection, TcpFlags};
use serde::{Deserialize, Serialize};

/// One connection the source attempted, as both ends saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionTimeline {
    /// The source's address and ephemeral port: what both ends see alike.
    pub client: SocketAddr,
    /// The address the source sent to (a ClusterIP before the DNAT, or a pod IP).
    pub server: SocketAddr,
    /// The peer session that saw the connection (its label, `pod/web-1`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The server address as that peer saw it (the pod IP and targetPort after the DNAT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_server: Option<SocketAddr>,
    /// What the times are relative to.
    pub basis: TimeBasis,
    /// The node whose clock the peer's times are on, when it is not the source's: offsets
    /// across two nodes are only as good as the two clocks agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_clock: Option<String>,
    /// Both ends' packets of the connection, by time.
    pub packets: Vec<TimelinePacket>,
    /// Packets of the connection past the marks either capture kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub packets_dropped: u64,
    pub outcome: ConnectionOutcome,
    /// What the timeline shows, in a few words: `no S. reached the source`.
    pub summary: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The zero of a timeline's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    /// The source's first SYN, as its capture saw it.
    SourceSyn,
    /// The peer's first packet of the connection: the source had no capture (only its
    /// connect's outcome is known).
    PeerFirstPacket,
    /// No packet at all: neither end captured the connection.
    NoPackets,
}

/// Which end saw a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    Source,
    Peer,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::Source => "source",
            End::Peer => "peer",
        }
    }
}

/// One captured packet on a timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePacket {
    pub end: End,
    /// Milliseconds since the timeline's [`TimeBasis`] (on the capturing node's clock; may be
    /// negative when two nodes' clocks disagree).
    pub offset_ms: f64,
    /// Which side of the connection sent it.
    pub from: Open<FlowSide>,
    pub flags: TcpFlags,
    /// TCP payload bytes.
    pub len: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Open<PacketDirection>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The same SYN, SYN-ACK or segment length sent again by the same side at the same end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retransmit: bool,
}

/// What the two ends together show about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionOutcome {
    /// The SYN left the source and never reached the destination's interface.
    LostBetween,
    /// An ICMP error from a hop before the destination ended the connect: the sender says
    /// where (the source's own ICMP finding names it), no silence to locate.
    RejectedOnTheWay,
    /// The SYN reached the destination, which sent nothing back.
    NoReply,
    /// The destination sent a SYN-ACK that never reached the source.
    ReplyLost,
    /// The destination answered with a RST.
    Reset,
    /// The handshake passed, large segments never reached the destination.
    MtuBetween,
    /// Both ends saw the handshake complete.
    Worked,
    /// No peer that watched could have seen it (it went to an endpoint nobody watched, or
    /// the watching end missed the time): the other end says nothing.
    Unseen,
}

impl ConnectionOutcome {
    /// Did the two ends locate a failure of this connection?
    pub fn is_located_failure(self) -> bool {
        !matches!(self, ConnectionOutcome::Worked | ConnectionOutcome::Unseen)
    }
}
