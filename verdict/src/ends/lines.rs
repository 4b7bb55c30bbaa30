//! Evidence lines of the both-ends findings: each cites its end (`source`, `peer pod/web-1`)
//! and the packets that prove it, timed from the connection's zero (the source's first SYN).

use protocol::{FlowSide, Link, LinksEvidence, PacketMark, TcpFlow};

use super::correlate::Connection;
use super::peer::PeerView;
use super::sight::first_syn;
use crate::checks::tcp::short_words;
use crate::facts::Facts;
use crate::words::ms;

/// Packets of one end quoted on one evidence line.
const MARKS_PER_LINE: usize = 4;

/// The connection's zero: the source's first SYN, else the peer's first packet.
pub fn zero_us(c: &Connection) -> u64 {
    c.source_flow
        .and_then(first_syn)
        .or_else(|| c.seen.and_then(|(_, pf)| pf.marks.first()))
        .map_or(0, |m| m.at_us)
}

/// `+0.3 ms`
pub fn offset(m: &PacketMark, zero_us: u64) -> String {
    let ms_ = (m.at_us as f64 - zero_us as f64) / 1000.0;
    format!("{}{}", if ms_ < 0.0 { "-" } else { "+" }, ms(ms_.abs()))
}

/// `S. out eth0 at +0.4 ms`
pub fn mark_words(m: &PacketMark, zero_us: u64) -> String {
    let mut s = m.flags.to_string();
    if m.len > 0 {
        s.push_str(&format!(" {} bytes", m.len));
    }
    if let Some(d) = &m.direction {
        s.push_str(&format!(" {d}"));
    }
    if let Some(i) = &m.interface {
        s.push_str(&format!(" {i}"));
    }
    format!("{s} at {}", offset(m, zero_us))
}

/// `source: S 10.0.0.1:41234 > 10.96.0.10:80 out eth0, sent 3 times (last at +3.0 s), no
/// answer came back`, or the connect alone when the source did not capture.
pub fn source_line(c: &Connection) -> String {
    let Some(flow) = c.source_flow else {
        let words = c.connect.map(short_words).unwrap_or_default();
        return format!(
            "source: connect {} -> {} {words} (no capture at the source)",
            c.client, c.server
        );
    };
    let zero = zero_us(c);
    let syns: Vec<&PacketMark> = flow
        .marks
        .iter()
        .filter(|m| m.from == FlowSide::Client && m.flags.is_syn())
        .collect();
    let answer = flow
        .marks
        .iter()
        .find(|m| m.from == FlowSide::Server)
        .map(|m| format!(", {} came back at {}", m.flags, offset(m, zero)));
    let (first, last) = match (syns.first(), syns.last()) {
        (Some(a), Some(b)) => (mark_words(a, zero), offset(b, zero)),
        _ => (format!("{} SYNs", flow.syn_count), String::new()),
    };
    let times = if syns.len() > 1 {
        format!(", sent {} times (last at {last})", syns.len())
    } else {
        String::new()
    };
    format!(
        "source: {} > {}: {first}{times}{}",
        c.client,
        c.server,
        answer.unwrap_or_else(|| ", nothing came back".into())
    )
}

/// `peer pod/web-1: S in eth0 at +0.3 ms, S. out eth0 at +0.4 ms`
pub fn peer_seen_line(p: &PeerView, pf: &TcpFlow, zero_us: u64) -> String {
    let marks: Vec<String> = pf
        .marks
        .iter()
        .take(MARKS_PER_LINE)
        .map(|m| mark_words(m, zero_us))
        .collect();
    let more = pf.marks.len().saturating_sub(MARKS_PER_LINE) as u64 + pf.marks_dropped;
    let body = if marks.is_empty() {
        format!("{} SYNs, handshake {}", pf.syn_count, pf.handshake)
    } else if more > 0 {
        format!("{} and {more} more", marks.join(", "))
    } else {
        marks.join(", ")
    };
    format!("{}: {} > {}: {body}", p.cite(), pf.client, pf.server)
}

/// `peer pod/web-1: capture on any armed, 12 packets, nothing from 10.0.0.1:41234`
pub fn peer_silence_line(p: &PeerView, c: &Connection) -> String {
    let seen = p
        .capture()
        .map(|cap| {
            format!(
                "capture on {} armed, {} packets",
                cap.interface, cap.packets_captured
            )
        })
        .unwrap_or_else(|| "no capture".into());
    format!(
        "{}: {seen}, nothing from {} to port {}",
        p.cite(),
        c.client,
        p.session.port
    )
}

/// The link a packet mark names at one end, for its MTU.
pub fn link_of<'a>(f: &Facts<'a>, m: Option<&PacketMark>) -> Option<&'a Link> {
    let links = f.one::<LinksEvidence>()?;
    match m.and_then(|m| m.interface.as_deref()) {
        Some(name) => links.links.iter().find(|l| l.name == name),
        // Without a named interface: the one non-loopback link a pod usually has.
        None => links.links.iter().find(|l| !l.loopback),
    }
}
