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
/// When some connection failed, the ones that worked are one line each: the reader's eye
/// belongs on the packets that did not arrive.
pub fn lines(connections: &[ConnectionTimeline]) -> Vec<String> {
    let mut out = Vec::new();
    let any_failed = connections.iter().any(|c| c.outcome.is_located_failure());
    for c in connections.iter().take(MAX_SHOWN) {
        out.push(header(c));
        if any_failed && !c.outcome.is_located_failure() {
            out.push(format!("  {}", c.summary));
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::{ConnectionOutcome, End};
    use protocol::{FlowSide, TcpFlags};

    fn connection(port: u16, outcome: ConnectionOutcome, summary: &str) -> ConnectionTimeline {
        let syn = TimelinePacket {
            end: End::Source,
            offset_ms: 0.0,
            from: FlowSide::Client.into(),
            flags: TcpFlags(TcpFlags::SYN),
            len: 0,
            direction: None,
            interface: Some("eth0".into()),
            retransmit: false,
        };
        ConnectionTimeline {
            client: format!("10.0.0.1:{port}").parse().unwrap(),
            server: "10.0.0.2:80".parse().unwrap(),
            peer: Some("pod/web-1".into()),
            peer_server: None,
            basis: TimeBasis::SourceSyn,
            peer_clock: None,
            packets: vec![syn.clone(), syn],
            packets_dropped: 0,
            outcome,
            summary: summary.into(),
        }
    }

    /// Regression: on a Service with one bad endpoint the healthy connections' full
    /// handshakes pushed the failing one's packets off the screen.
    #[test]
    fn connections_that_worked_are_one_line_when_another_failed() {
        let shown = lines(&[
            connection(1, ConnectionOutcome::NoReply, "nothing came back"),
            connection(2, ConnectionOutcome::Worked, "both ends saw the handshake"),
        ]);
        assert_eq!(
            shown.iter().filter(|l| l.contains("source S")).count(),
            2,
            "only the failed connection's packets: {shown:#?}"
        );
        assert!(shown.contains(&"  both ends saw the handshake".to_string()));
        // All healthy: the packets are the evidence, and are shown.
        let healthy = lines(&[connection(2, ConnectionOutcome::Worked, "both ends saw it")]);
        assert_eq!(healthy.iter().filter(|l| l.contains("source S")).count(), 2);
    }
}
