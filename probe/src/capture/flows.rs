//! The per-flow summary of a capture: TCP handshake outcomes, retransmissions and resets; ICMP
//! errors with the flow they quote and the MTU they announce; DNS queries and whether and
//! when they were answered (over UDP; DNS over TCP is in the pcap but not summarised: that
//! would need stream reassembly). Works on cooked packets (network header at offset 0), which
//! may be cut at the snap length: lengths come from the IP headers, not from what was kept.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Header, MessageType, Query};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use protocol::{
    DnsExchange, FlowSide, Handshake, IcmpError, Open, PacketDirection, PacketMark, Rcode,
    RecordType, TcpFlags, TcpFlow, MAX_MARKS_PER_FLOW,
};

use super::ifnames::InterfaceNames;

const ETHERTYPE_IP: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Bounds on what the summary keeps, so a flood cannot grow the probe's memory.
const MAX_TCP_FLOWS: usize = 4096;
const MAX_DNS: usize = 4096;
const MAX_ICMP: usize = 256;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
/// sll_pkttype of a packet this host sent.
const PACKET_OUTGOING: u8 = 4;

/// A network-layer packet, parsed as far as the summary needs.
struct Packet<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// Transport header and payload as captured (possibly cut by the snap length).
    transport: &'a [u8],
    /// Transport length on the wire, from the IP header.
    transport_len: usize,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn ipv4(b: &[u8], at: usize) -> Option<IpAddr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(o)))
}

fn ipv6(b: &[u8], at: usize) -> Option<IpAddr> {
    let o: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(o)))
}

/// Parse an IPv4 or IPv6 header (`version` picks which); None for non-first fragments and
/// anything too short.
fn parse_ip(b: &[u8], v6: bool) -> Option<Packet<'_>> {
    if !v6 {
        if b.first()? >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        let total = usize::from(be16(b, 2)?);
        if be16(b, 6)? & 0x1fff != 0 || ihl < 20 {
            return None;
        }
        Some(Packet {
            src: ipv4(b, 12)?,
            dst: ipv4(b, 16)?,
            proto: *b.get(9)?,
            transport: b.get(ihl..)?,
            transport_len: total.saturating_sub(ihl),
        })
    } else {
        if b.first()? >> 4 != 6 {
            return None;
        }
        let payload = usize::from(be16(b, 4)?);
        let (mut next, mut at) = (*b.get(6)?, 40usize);
        // Walk the extension headers that can precede a transport header.
        loop {
            match next {
                0 | 43 | 60 => {
                    let len = (usize::from(*b.get(at + 1)?) + 1) * 8;
                    next = *b.get(at)?;
                    at += len;
                }
                44 => {
                    if be16(b, at + 2)? & 0xfff8 != 0 {
                        return None;
                    }
                    next = *b.get(at)?;
                    at += 8;
                }
                _ => break,
            }
        }
        Some(Packet {
            src: ipv6(b, 8)?,
            dst: ipv6(b, 24)?,
            proto: next,
            transport: b.get(at..)?,
            transport_len: (payload + 40).saturating_sub(at),
        })
    }
}

#[derive(Debug)]
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    first_syn: Option<Duration>,
    syn_count: u32,
    syn_ack: Option<Duration>,
    syn_ack_count: u32,
    /// First RST: (sent by the client, when).
    rst: Option<(bool, Duration)>,
    data_seen: bool,
    rst_after_data: bool,
    /// Per direction (0 = from the client): the sequence number after the highest byte sent.
    next_seq: [Option<u32>; 2],
    retransmits: u32,
    packets: u64,
    bytes: u64,
    /// The first packets, one mark each (both-ends correlation lines them up).
    marks: Vec<PacketMark>,
    marks_dropped: u64,
}

impl Flow {
    /// One more mark, while the flow has room for it (both-ends correlation lines them up).
    fn mark(
        &mut self,
        at: Duration,
        pkttype: u8,
        from_client: bool,
        flags: u8,
        payload: usize,
        interface: Option<String>,
    ) {
        if self.marks.len() >= MAX_MARKS_PER_FLOW {
            self.marks_dropped += 1;
            return;
        }
        let from = if from_client {
            FlowSide::Client
        } else {
            FlowSide::Server
        };
        let direction = if pkttype == PACKET_OUTGOING {
            PacketDirection::Out
        } else {
            PacketDirection::In
        };
        self.marks.push(PacketMark {
            at_us: u64::try_from(at.as_micros()).unwrap_or(u64::MAX),
            from: from.into(),
            flags: TcpFlags(flags),
            len: u32::try_from(payload).unwrap_or(u32::MAX),
            interface,
            direction: Some(direction.into()),
        });
    }
}

#[derive(Debug)]
struct Dns {
    client: SocketAddr,
    server: SocketAddr,
    name: String,
    qtype: Open<RecordType>,
    first_query: Duration,
    queries: u32,
    rcode: Option<Open<Rcode>>,
    answers: Option<u32>,
    latency_ms: Option<f64>,
}

/// Copies of one packet seen more than once by an `any` capture: on loopback (outgoing, then
/// incoming) and on each interface a forwarded packet crosses. They arrive microseconds
/// apart from a different interface or direction; a real retransmission comes after at least
/// one retransmission timeout (200 ms), so a short window tells them apart.
const ECHO_WINDOW: Duration = Duration::from_millis(5);
const ECHO_MEMORY: usize = 64;

/// Where a packet was seen: (interface index, packet type).
pub type Origin = (i32, u8);

#[derive(Default)]
struct EchoFilter {
    recent: std::collections::VecDeque<(u64, Duration, Origin)>,
}

impl EchoFilter {
    /// True when the same packet was just seen from another interface or direction.
    fn is_copy(&mut self, signature: u64, at: Duration, origin: Origin) -> bool {
        let copy = self.recent.iter().any(|(s, t, o)| {
            *s == signature && *o != origin && at.saturating_sub(*t) <= ECHO_WINDOW
        });
        if self.recent.len() == ECHO_MEMORY {
            self.recent.pop_front();
        }
        self.recent.push_back((signature, at, origin));
        copy
    }
}

/// What identifies a packet across its copies: addresses, protocol, and the first transport
/// bytes (ports, sequence numbers, flags, checksum), not the TTL a router decrements.
fn signature(p: &Packet<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (p.src, p.dst, p.proto, p.transport_len).hash(&mut h);
    p.transport[..p.transport.len().min(24)].hash(&mut h);
    h.finish()
}

#[derive(Default)]
pub struct FlowTable {
    echoes: EchoFilter,
    interfaces: InterfaceNames,
    tcp: Vec<Flow>,
    tcp_index: HashMap<(SocketAddr, SocketAddr), usize>,
    dns: Vec<Dns>,
    dns_index: HashMap<(SocketAddr, SocketAddr, u16), usize>,
    icmp: Vec<IcmpError>,
    tcp_overflow: u64,
    dns_overflow: u64,
}

/// The summary parts of the evidence.
pub struct Summary {
    pub tcp_flows: Vec<TcpFlow>,
    pub icmp_errors: Vec<IcmpError>,
    pub dns: Vec<DnsExchange>,
    pub notes: Vec<String>,
}

fn ms_between(from: Duration, to: Duration) -> f64 {
    let d = to.saturating_sub(from);
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

impl FlowTable {
    /// Account one packet (once, however many interfaces it was seen on): `protocol` is the
    /// link protocol, `data` starts at the network
    /// header, `wire_len` is the packet's length from the network header on.
    pub fn add(
        &mut self,
        at: Duration,
        origin: Origin,
        protocol: u16,
        data: &[u8],
        wire_len: usize,
    ) {
        let packet = match protocol {
            ETHERTYPE_IP => parse_ip(data, false),
            ETHERTYPE_IPV6 => parse_ip(data, true),
            _ => None,
        };
        let Some(p) = packet else { return };
        let summarised = match p.proto {
            6 | 1 | 58 => true,
            17 => be16(p.transport, 0) == Some(53) || be16(p.transport, 2) == Some(53),
            _ => false,
        };
        if !summarised || self.echoes.is_copy(signature(&p), at, origin) {
            return;
        }
        match p.proto {
            6 => self.tcp(at, origin, &p, wire_len),
            17 => self.udp(at, &p),
            1 => self.icmp(&p, false),
            58 => self.icmp(&p, true),
            _ => {}
        }
    }

    fn tcp(&mut self, at: Duration, origin: Origin, p: &Packet<'_>, wire_len: usize) {
        let t = p.transport;
        let (Some(sport), Some(dport), Some(seq), Some(&offset), Some(&flags)) =
            (be16(t, 0), be16(t, 2), be32(t, 4), t.get(12), t.get(13))
        else {
            return;
        };
        let payload = p.transport_len.saturating_sub(usize::from(offset >> 4) * 4);
        let src = SocketAddr::new(p.src, sport);
        let dst = SocketAddr::new(p.dst, dport);
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        let Some(index) = self.flow_index(key, src, dst, sport, dport, flags) else {
            return;
        };
        let flow = &mut self.tcp[index];
        let from_client = src == flow.client;
        flow.packets += 1;
        flow.bytes += wire_len as u64;
        let interface = self.interfaces.name(origin.0);
        let flow = &mut self.tcp[index];
        flow.mark(at, origin.1, from_client, flags, payload, interface);
        if flags & TCP_SYN != 0 && flags & TCP_ACK == 0 && from_client {
            flow.syn_count += 1;
            if flow.syn_count > 1 {
                flow.retransmits += 1;
            }
            flow.first_syn.get_or_insert(at);
        }
        if flags & TCP_SYN != 0 && flags & TCP_ACK != 0 && !from_client {
            flow.syn_ack_count += 1;
            if flow.syn_ack_count > 1 {
                flow.retransmits += 1;
            }
            flow.syn_ack.get_or_insert(at);
        }
        if flags & TCP_RST != 0 {
            if flow.data_seen {
                flow.rst_after_data = true;
            }
            flow.rst.get_or_insert((from_client, at));
        }
        if payload > 0 {
            flow.data_seen = true;
            let dir = usize::from(!from_client);
            // SYN and FIN take one sequence number each.
            let start = seq.wrapping_add(u32::from(flags & TCP_SYN != 0));
            let end = start.wrapping_add(payload as u32);
            match flow.next_seq[dir] {
                // Nothing beyond what this direction already sent: a retransmission.
                Some(high) if (end.wrapping_sub(high) as i32) <= 0 => flow.retransmits += 1,
                _ => {}
            }
            let end = end.wrapping_add(u32::from(flags & TCP_FIN != 0));
            let high = flow.next_seq[dir].map_or(end, |h| {
                if (end.wrapping_sub(h) as i32) > 0 {
                    end
                } else {
                    h
                }
            });
            flow.next_seq[dir] = Some(high);
        }
    }

    /// The flow of a TCP packet, added when new (None once the table is full).
    fn flow_index(
        &mut self,
        key: (SocketAddr, SocketAddr),
        src: SocketAddr,
        dst: SocketAddr,
        sport: u16,
        dport: u16,
        flags: u8,
    ) -> Option<usize> {
        if let Some(i) = self.tcp_index.get(&key) {
            return Some(*i);
        }
        if self.tcp.len() >= MAX_TCP_FLOWS {
            self.tcp_overflow += 1;
            return None;
        }
        // The SYN's sender is the client; without a SYN, the SYN-ACK's receiver; on a flow
        // already running, the side with the higher (ephemeral) port.
        let src_is_client = if flags & TCP_SYN != 0 {
            flags & TCP_ACK == 0
        } else {
            sport >= dport
        };
        let (client, server) = if src_is_client {
            (src, dst)
        } else {
            (dst, src)
        };
        self.tcp.push(Flow {
            client,
            server,
            first_syn: None,
            syn_count: 0,
            syn_ack: None,
            syn_ack_count: 0,
            rst: None,
            data_seen: false,
            rst_after_data: false,
            next_seq: [None, None],
            retransmits: 0,
            packets: 0,
            bytes: 0,
            marks: Vec::new(),
            marks_dropped: 0,
        });
        self.tcp_index.insert(key, self.tcp.len() - 1);
        Some(self.tcp.len() - 1)
    }

    fn udp(&mut self, at: Duration, p: &Packet<'_>) {
        let t = p.transport;
        let (Some(sport), Some(dport)) = (be16(t, 0), be16(t, 2)) else {
            return;
        };
        if sport != 53 && dport != 53 {
            return;
        }
        let Some(message) = t.get(8..) else { return };
        let mut decoder = BinDecoder::new(message);
        let Ok(header) = Header::read(&mut decoder) else {
            return;
        };
        let src = SocketAddr::new(p.src, sport);
        let dst = SocketAddr::new(p.dst, dport);
        match header.message_type {
            MessageType::Query if dport == 53 => {
                let key = (src, dst, header.id);
                if let Some(i) = self.dns_index.get(&key) {
                    self.dns[*i].queries += 1;
                    return;
                }
                if self.dns.len() >= MAX_DNS {
                    self.dns_overflow += 1;
                    return;
                }
                // The question is within the first bytes; a snap length that cut it leaves
                // the name unknown rather than the query uncounted.
                let (name, qtype) = match Query::read(&mut decoder) {
                    Ok(q) => (
                        q.name().to_string(),
                        Open::parse(&q.query_type().to_string()),
                    ),
                    Err(_) => ("?".to_string(), Open::Unknown("?".to_string())),
                };
                self.dns.push(Dns {
                    client: src,
                    server: dst,
                    name,
                    qtype,
                    first_query: at,
                    queries: 1,
                    rcode: None,
                    answers: None,
                    latency_ms: None,
                });
                self.dns_index.insert(key, self.dns.len() - 1);
            }
            MessageType::Response if sport == 53 => {
                if let Some(i) = self.dns_index.get(&(dst, src, header.id)) {
                    let q = &mut self.dns[*i];
                    if q.rcode.is_none() {
                        q.rcode = Some(crate::dns::rcode_name(u16::from(header.response_code)));
                        q.answers = Some(u32::from(header.counts.answers));
                        q.latency_ms = Some(ms_between(q.first_query, at));
                    }
                }
            }
            _ => {}
        }
    }

    fn icmp(&mut self, p: &Packet<'_>, v6: bool) {
        let t = p.transport;
        let (Some(&kind), Some(&code)) = (t.first(), t.get(1)) else {
            return;
        };
        let (name, mtu) = if !v6 {
            match (kind, code) {
                (3, 0) => (Open::parse("net_unreachable"), None),
                (3, 1) => (Open::parse("host_unreachable"), None),
                (3, 2) => (Open::parse("protocol_unreachable"), None),
                (3, 3) => (Open::parse("port_unreachable"), None),
                (3, 4) => (Open::parse("frag_needed"), be16(t, 6).map(u32::from)),
                (3, 9 | 10 | 13) => (Open::parse("admin_prohibited"), None),
                (11, _) => (Open::parse("time_exceeded"), None),
                (3 | 4 | 5 | 12, _) => (Open::Unknown(format!("{kind}/{code}")), None),
                _ => return,
            }
        } else {
            match (kind, code) {
                (1, 0) => (Open::parse("net_unreachable"), None),
                (1, 1 | 5 | 6) => (Open::parse("admin_prohibited"), None),
                (1, 3) => (Open::parse("host_unreachable"), None),
                (1, 4) => (Open::parse("port_unreachable"), None),
                (2, _) => (Open::parse("packet_too_big"), be32(t, 4)),
                (3, _) => (Open::parse("time_exceeded"), None),
                (1 | 4, _) => (Open::Unknown(format!("{kind}/{code}")), None),
                _ => return,
            }
        };
        let about = t.get(8..).and_then(|quoted| quoted_flow(quoted, v6));
        if let Some(e) = self
            .icmp
            .iter_mut()
            .find(|e| e.from == p.src && e.kind == name && e.about == about && e.mtu == mtu)
        {
            e.count += 1;
        } else if self.icmp.len() < MAX_ICMP {
            self.icmp.push(IcmpError {
                from: p.src,
                kind: name,
                about,
                mtu,
                count: 1,
            });
        }
    }

    pub fn summary(self) -> Summary {
        let mut notes = Vec::new();
        if self.tcp_overflow > 0 {
            notes.push(format!(
                "the TCP flow table was full ({MAX_TCP_FLOWS} flows): {} packets of later flows are in the pcap but not summarised",
                self.tcp_overflow
            ));
        }
        if self.dns_overflow > 0 {
            notes.push(format!(
                "{} DNS queries beyond the first {MAX_DNS} are in the pcap but not summarised",
                self.dns_overflow
            ));
        }
        let icmp = &self.icmp;
        let tcp_flows = self
            .tcp
            .into_iter()
            .map(|f| {
                // An ICMP error quoting the flow's packets answered its SYN.
                let about = format!("tcp {} > {}", f.client, f.server);
                let icmp_answered = icmp
                    .iter()
                    .any(|e| e.about.as_deref() == Some(about.as_str()));
                let (handshake, handshake_ms) = match (f.first_syn, f.syn_ack, f.rst) {
                    (first, Some(ack), _) => {
                        (Handshake::Established, first.map(|s| ms_between(s, ack)))
                    }
                    (Some(first), None, Some((false, rst))) => {
                        (Handshake::Refused, Some(ms_between(first, rst)))
                    }
                    (Some(_), None, _) if icmp_answered => (Handshake::Unreachable, None),
                    (Some(_), None, _) => (Handshake::Unanswered, None),
                    (None, None, _) => (Handshake::Midstream, None),
                };
                TcpFlow {
                    client: f.client,
                    server: f.server,
                    handshake: handshake.into(),
                    syn_count: f.syn_count,
                    retransmits: f.retransmits,
                    rst_after_data: f.rst_after_data,
                    packets: f.packets,
                    bytes: f.bytes,
                    handshake_ms,
                    rst_from: f.rst.map(|(by_client, _)| {
                        if by_client {
                            FlowSide::Client
                        } else {
                            FlowSide::Server
                        }
                        .into()
                    }),
                    marks: f.marks,
                    marks_dropped: f.marks_dropped,
                }
            })
            .collect();
        let dns = self
            .dns
            .into_iter()
            .map(|d| DnsExchange {
                client: d.client,
                server: d.server,
                name: d.name,
                qtype: d.qtype,
                rcode: d.rcode,
                latency_ms: d.latency_ms,
                answers: d.answers,
                queries: Some(d.queries),
            })
            .collect();
        Summary {
            tcp_flows,
            icmp_errors: self.icmp,
            dns,
            notes,
        }
    }
}

/// `tcp 10.0.0.1:40000 > 10.0.0.2:80` from the header an ICMP error quotes.
fn quoted_flow(quoted: &[u8], v6: bool) -> Option<String> {
    let (src, dst, proto, transport) = if v6 {
        (
            ipv6(quoted, 8)?,
            ipv6(quoted, 24)?,
            *quoted.get(6)?,
            quoted.get(40..)?,
        )
    } else {
        let ihl = usize::from(quoted.first()? & 0x0f) * 4;
        (
            ipv4(quoted, 12)?,
            ipv4(quoted, 16)?,
            *quoted.get(9)?,
            quoted.get(ihl..)?,
        )
    };
    let ports = be16(transport, 0).zip(be16(transport, 2));
    Some(match (proto, ports) {
        (6, Some((s, d))) => format!(
            "tcp {} > {}",
            SocketAddr::new(src, s),
            SocketAddr::new(dst, d)
        ),
        (17, Some((s, d))) => format!(
            "udp {} > {}",
            SocketAddr::new(src, s),
            SocketAddr::new(dst, d)
        ),
        (1, _) => format!("icmp {src} > {dst}"),
        (58, _) => format!("icmp6 {src} > {dst}"),
        (n, _) => format!("proto {n} {src} > {dst}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        seq: u32,
        flags: u8,
        payload: usize,
    ) -> Vec<u8> {
        let total = 20 + 20 + payload;
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend(std::iter::repeat_n(0u8, payload));
        p
    }

    const ORIGIN: Origin = (1, 0);
    /// The same packets as seen leaving on loopback.
    const LOOPBACK_OUT: Origin = (1, 4);

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn handshake_outcomes() {
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut t = FlowTable::default();
        // Established in 2 ms, then data, a retransmission of it, and a reset.
        t.add(
            at(0),
            LOOPBACK_OUT,
            ETHERTYPE_IP,
            &ipv4_tcp(c, s, 40000, 80, 100, TCP_SYN, 0),
            40,
        );
        // The incoming copy of the same SYN is not a retransmission.
        t.add(
            at(0),
            ORIGIN,
            ETHERTYPE_IP,
            &ipv4_tcp(c, s, 40000, 80, 100, TCP_SYN, 0),
            40,
        );
        t.add(
            at(2),
            ORIGIN,
            ETHERTYPE_IP,
            &ipv4_tcp(s, c, 80, 40000, 900, TCP_SYN | TCP_ACK, 0),
            40,
        );
        t.add(
            at(3),
            ORIGIN,
            ETHERTYPE_IP,
            &ipv4_tcp(c, s, 40000, 80, 101, TCP_ACK, 10),
            50,
        );
        t.add(
            at(9),
            ORIGIN,
            ETHERTYPE_IP,
            &ipv4_tcp(c, s, 40000, 80, 101, TCP_ACK, 10),
            50,
        );
        t.add(
            at(10),
            ORIGIN,
            ETHERTYPE_IP,
            &ipv4_tcp(s, c, 80, 40000, 901, TCP_RST, 0),
            40,
        );
        // Refused.
        t.add(
            at(20),
            ORIGIN,
            ETHERTYPE_IP,
            &ipv4_tcp(c, s, 40001, 81, 5, TCP_SYN, 0),
            40,
        );
        t.add(
            at(21),
            ORIGIN,
            ETHERTYPE_IP,
            &ipv4_tcp(s, c, 81, 40001, 0, TCP_RST | TCP_ACK, 0),
            40,
        );
        // Unanswered, with two retransmitted SYNs.
        for ms in [30, 1030, 3030] {
            t.add(
                at(ms),
                ORIGIN,
                ETHERTYPE_IP,
                &ipv4_tcp(c, s, 40002, 82, 7, TCP_SYN, 0),
                40,
            );
        }
        let flows = t.summary().tcp_flows;
        assert_eq!(flows.len(), 3);
        assert_eq!(flows[0].handshake, Handshake::Established);
        assert_eq!(flows[0].handshake_ms, Some(2.0));
        assert_eq!(flows[0].retransmits, 1);
        assert!(flows[0].rst_after_data);
        assert_eq!(flows[0].rst_from, Some(FlowSide::Server.into()));
        assert_eq!(flows[0].client, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(flows[1].handshake, Handshake::Refused);
        assert!(!flows[1].rst_after_data);
        assert_eq!(flows[2].handshake, Handshake::Unanswered);
        assert_eq!((flows[2].syn_count, flows[2].retransmits), (3, 2));
    }

    #[test]
    fn marks_record_the_first_packets_of_each_flow() {
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut t = FlowTable::default();
        t.interfaces.seed(7, "eth0");
        let at_us = |us: u64| Duration::from_micros(1_700_000_000_000_000 + us);
        let incoming: Origin = (7, 0);
        let outgoing: Origin = (7, PACKET_OUTGOING);
        t.add(
            at_us(0),
            incoming,
            ETHERTYPE_IP,
            &ipv4_tcp(c, s, 40000, 80, 100, TCP_SYN, 0),
            40,
        );
        t.add(
            at_us(150),
            outgoing,
            ETHERTYPE_IP,
            &ipv4_tcp(s, c, 80, 40000, 900, TCP_SYN | TCP_ACK, 0),
            40,
        );
        // Payload from the IP total length, not from the bytes kept (cut at 60 here).
        let data = ipv4_tcp(c, s, 40000, 80, 101, TCP_ACK | 0x08, 1000);
        t.add(at_us(300), incoming, ETHERTYPE_IP, &data[..60], 1040);
        let flows = t.summary().tcp_flows;
        let marks = &flows[0].marks;
        assert_eq!(marks.len(), 3);
        let spelled: Vec<(String, &str, &str, u32)> = marks
            .iter()
            .map(|m| {
                (
                    m.flags.to_string(),
                    m.from.as_str(),
                    m.direction.as_ref().map_or("?", |d| d.as_str()),
                    m.len,
                )
            })
            .collect();
        assert_eq!(
            spelled,
            vec![
                ("S".to_string(), "client", "in", 0),
                ("S.".to_string(), "server", "out", 0),
                ("P.".to_string(), "client", "in", 1000),
            ]
        );
        assert_eq!(marks[0].at_us, 1_700_000_000_000_000);
        assert_eq!(marks[1].at_us - marks[0].at_us, 150);
        assert!(marks.iter().all(|m| m.interface.as_deref() == Some("eth0")));
        assert_eq!(flows[0].marks_dropped, 0);
        // The summary is what it was without marks.
        assert_eq!(flows[0].handshake, Handshake::Established);
        assert_eq!(flows[0].packets, 3);
    }

    #[test]
    fn marks_stop_at_the_limit_and_count_the_rest() {
        let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut t = FlowTable::default();
        let extra = 5;
        for i in 0..(MAX_MARKS_PER_FLOW + extra) {
            // Each a new segment, 1 s apart: neither an echo nor a retransmission.
            t.add(
                at(1000 * i as u64),
                ORIGIN,
                ETHERTYPE_IP,
                &ipv4_tcp(c, s, 40000, 80, 1 + 10 * i as u32, TCP_ACK, 10),
                50,
            );
        }
        let flows = t.summary().tcp_flows;
        assert_eq!(flows[0].marks.len(), MAX_MARKS_PER_FLOW);
        assert_eq!(flows[0].marks_dropped, extra as u64);
        assert_eq!(flows[0].packets, (MAX_MARKS_PER_FLOW + extra) as u64);
        assert_eq!(flows[0].retransmits, 0);
    }

    #[test]
    fn icmp_frag_needed_names_the_quoted_flow_and_mtu() {
        let quoted = ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80, 1, TCP_ACK, 0);
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 254, 10, 0, 0, 1,
        ];
        let total = 20 + 8 + 28;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[3, 4, 0, 0, 0, 0, 0x05, 0x00]);
        p.extend_from_slice(&quoted[..28]);
        let mut t = FlowTable::default();
        t.add(at(0), ORIGIN, ETHERTYPE_IP, &p, p.len());
        t.add(at(1), ORIGIN, ETHERTYPE_IP, &p, p.len());
        let s = t.summary();
        assert_eq!(s.icmp_errors.len(), 1);
        let e = &s.icmp_errors[0];
        assert_eq!(
            (e.kind.as_str(), e.mtu, e.count),
            ("frag_needed", Some(1280), 2)
        );
        assert_eq!(e.about.as_deref(), Some("tcp 10.0.0.1:40000 > 10.0.0.2:80"));
        assert_eq!(e.from, "10.0.0.254".parse::<IpAddr>().unwrap());
    }
}
