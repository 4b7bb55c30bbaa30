//! `capture_summary` evidence: what a bounded packet capture saw. Its rule says what each
//! capture saw in one line; the TCP rules quote its unanswered SYNs.

use std::net::SocketAddr;

use protocol::{CaptureSummary, Handshake};

use crate::facts::Facts;
use crate::model::{Layer, Mark};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::plural;

impl Progress for CaptureSummary {
    fn progress(&self) -> (Mark, String) {
        (
            Mark::Info,
            format!(
                "capture on {}: {} packets, {} flows, stopped by {}",
                self.interface,
                self.packets_captured,
                self.tcp_flows.len(),
                self.stopped_by
            ),
        )
    }
}

/// `capture: 2 SYNs to 10.0.0.2:80, no SYN-ACK, no RST, no ICMP` for each captured handshake
/// toward one of `servers` that nothing answered.
pub fn unanswered_syn_lines(f: &Facts, servers: &[SocketAddr]) -> Vec<String> {
    f.all::<CaptureSummary>()
        .iter()
        .flat_map(|c| c.tcp_flows.iter())
        .filter(|flow| servers.contains(&flow.server) && flow.handshake == Handshake::Unanswered)
        .map(|flow| {
            format!(
                "capture: {} SYN{} to {}, no SYN-ACK, no RST, no ICMP",
                flow.syn_count,
                if flow.syn_count == 1 { "" } else { "s" },
                flow.server
            )
        })
        .collect()
}

/// What each capture saw, in one line: packets, handshakes, DNS, kernel drops. Proof when
/// everything it saw was answered; context otherwise (the failing rules say what went wrong).
pub fn apply(f: &Facts, r: &mut Report) {
    for c in f.all::<CaptureSummary>() {
        let flows = c.tcp_flows.len();
        let answered = c
            .tcp_flows
            .iter()
            .filter(|fl| fl.handshake == Handshake::Established)
            .count();
        let dns_answered = c.dns.iter().filter(|d| d.rcode.is_some()).count();
        let mut parts = vec![format!(
            "capture on {}: {} ({})",
            c.interface,
            plural(c.packets_captured, "packet", "packets"),
            if c.snaplen <= 256 {
                "headers only"
            } else {
                "full packets"
            }
        )];
        if flows > 0 {
            parts.push(format!(
                "{answered}/{} answered by SYN-ACK",
                plural(flows as u64, "TCP handshake", "TCP handshakes")
            ));
        }
        if !c.dns.is_empty() {
            parts.push(format!(
                "{dns_answered}/{} answered",
                plural(c.dns.len() as u64, "DNS query", "DNS queries")
            ));
        }
        if !c.icmp_errors.is_empty() {
            parts.push(plural(
                c.icmp_errors.iter().map(|e| e.count as u64).sum(),
                "ICMP error",
                "ICMP errors",
            ));
        }
        parts.push(format!("kernel drops {}", c.kernel_drops));
        let text = parts.join(", ");
        let clean = answered == flows
            && dns_answered == c.dns.len()
            && c.icmp_errors.is_empty()
            && c.kernel_drops == 0;
        if clean {
            r.ok(Layer::Transport, text);
        } else {
            r.info(Layer::Transport, text);
        }
    }
}
