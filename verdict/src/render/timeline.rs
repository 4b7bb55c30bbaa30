//! The per-connection timelines of a both-ends run, as plain lines shared by the text and
//! markdown renderers: bounded, so a run of many connects stays readable.
//!
//! ```text
//! connection 10.199.1.1:41234 -> 10.199.2.2:8080 (peer netns/dst)
//!   +0.0 ms    source S   out eth0
//!   +0.3 ms    peer   S   in  eth0
//!   no S. reached the source
//! ```

use crate::connections::{ConnectionTimeline, TimeBasis, TimelinePacket};

/// Connections shown; the rest are counted.
pub const MAX_SHOWN: usize = 5;
/// Packet lines shown per connection (with its header and summary, about 12 lines).
pub const MAX_PACKETS: usize = 10;

/// Every line of the timelines block, unindented connection headers, packets indented by 2.
pub fn lines(connections: &[ConnectionTimeline]) -> Vec<String> {
    let mut out = Vec::new();
    for c in connections.iter().take(MAX_SHOWN) {
        out.push(header(c));
        for p in c.packets.iter().take(MAX_PACKETS) {
            out.push(format!("  {}", packet_line(p)));
        }
        let hidden = c.packets.len().saturating_sub(MAX_PACKETS) as u64 + c.packets_dropped;
        if hidden > 0 {
            out.push(format!("  ... {hidden} more packets"));
        }
        out.push(format!("  {}", c.summary));
    }
    if connections.len() > MAX_SHOWN {
        out.push(format!(
            "... {} more connections (all in -o json)",
            connections.len() - MAX_SHOWN
        ));
    }
    out
}

/// `connection 10.0.0.1:41234 -> 10.96.0.10:80 (peer pod/web-1 sees 10.244.2.7:8080; peer
/// times on node-2's clock)`
fn header(c: &ConnectionTimeline) -> String {
    let mut about = Vec::new();
    match (&c.peer, c.peer_server) {
        (Some(p), Some(s)) if s != c.server => about.push(format!("peer {p} sees {s}")),
        (Some(p), _) => about.push(format!("peer {p}")),
        (None, _) => about.push("no peer saw it".to_string()),
    }
    if let Some(node) = &c.peer_clock {
        about.push(format!("peer times on {node}'s clock"));
    }
    if c.basis == TimeBasis::PeerFirstPacket {
        about.push("times from the peer's first packet".to_string());
    }
    format!(
        "connection {} -> {} ({})",
        c.client,
        c.server,
        about.join("; ")
    )
}

/// `+1003.1 ms  source S    out eth0 (retransmit)`
fn packet_line(p: &TimelinePacket) -> String {
    let mut rest = String::new();
    if let Some(d) = &p.direction {
        rest.push_str(&format!("{:<4}", d.as_str()));
    }
    if let Some(i) = &p.interface {
        rest.push_str(i);
    }
    if p.len > 0 {
        rest.push_str(&format!(" {} bytes", p.len));
    }
    if p.retransmit {
        rest.push_str(" (retransmit)");
    }
    format!(
        "{:<11}{:<7}{:<4}{}",
        format!("{:+.1} ms", p.offset_ms),
        p.end.as_str(),
        p.flags.to_string(),
        rest.trim_start()
    )
    .trim_end()
    .to_string()
}
