//! Code generation: a parsed filter expression to a classic BPF program for a cooked
//! (SOCK_DGRAM) packet socket, where the program sees the network header at offset 0 and the
//! link protocol through the kernel's ancillary load. This is what libpcap itself loads for
//! `tcpdump -i any` (it compiles for LINUX_SLL, then rewrites the SLL offsets the same way), so
//! the programs select exactly the packets tcpdump's would; the filter tests check that.
//!
//! Each primitive becomes a tree of single comparisons; the tree is laid out with forward
//! jumps to labels (`and`: the left side's true edge falls into the right side; `or`: the
//! false edge does), then assembled. Conditional jumps reach at most 255 instructions; the
//! few that must go further get `ja` trampolines. A load is not repeated while the
//! accumulator still holds its value on every path to it.

use std::net::IpAddr;

use crate::bpf::{self, Insn};
use crate::filter::{Dir, Expr, Primitive, Proto, RelOp};

const ETHERTYPE_IP: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const ETHERTYPE_ARP: u32 = 0x0806;
const ETHERTYPE_REVARP: u32 = 0x8035;
const IPPROTO_ICMP: u32 = 1;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPPROTO_FRAGMENT: u32 = 44;
const IPPROTO_ICMPV6: u32 = 58;
const IPPROTO_SCTP: u32 = 132;
/// IPv6 fixed header length: transport headers follow it (extension headers other than a
/// fragment header are not walked, as in libpcap).
const IPV6_HLEN: u32 = 40;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error(
        "filter: the expression compiles to {0} instructions, more than the kernel's limit of 4096"
    )]
    TooLong(usize),
}

/// Compile `expr` to a program that keeps `snaplen` bytes of each matching packet.
///
/// The program also drops the outgoing copy of every loopback packet (loopback is ifindex 1 in
/// every namespace): a packet sent over `lo` is seen leaving and arriving, and libpcap keeps
/// only the arriving one, so tcpdump and the probe see the same packets (at half the work).
pub fn compile(expr: &Expr, snaplen: u32) -> Result<Vec<Insn>, CompileError> {
    let tree = and(not(loopback_outgoing()), lower(expr));
    let mut gen = Gen::default();
    let (t, f) = (gen.label(), gen.label());
    gen.emit_node(&tree, t, f);
    gen.place(t);
    gen.stmt(Insn::stmt(bpf::RET | bpf::K, snaplen));
    gen.place(f);
    gen.stmt(Insn::stmt(bpf::RET | bpf::K, 0));
    let program = gen.assemble();
    if program.len() > bpf::MAX_INSNS {
        return Err(CompileError::TooLong(program.len()));
    }
    Ok(program)
}

/// A boolean tree of single comparisons: load (A, and maybe X), compare A with a constant.
#[derive(Debug, Clone)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Test { loads: Vec<Insn>, jump: u16, k: u32 },
}

fn and(a: Node, b: Node) -> Node {
    Node::And(Box::new(a), Box::new(b))
}
fn or(a: Node, b: Node) -> Node {
    Node::Or(Box::new(a), Box::new(b))
}
fn not(a: Node) -> Node {
    Node::Not(Box::new(a))
}
fn any(nodes: Vec<Node>) -> Node {
    nodes
        .into_iter()
        .reduce(or)
        .expect("at least one alternative")
}
fn all(nodes: Vec<Node>) -> Node {
    nodes
        .into_iter()
        .reduce(and)
        .expect("at least one condition")
}

fn load_abs(size: u16, offset: u32) -> Insn {
    Insn::stmt(bpf::LD | size | bpf::ABS, offset)
}

fn test(loads: Vec<Insn>, jump: u16, k: u32) -> Node {
    Node::Test { loads, jump, k }
}

fn eq_abs(size: u16, offset: u32, k: u32) -> Node {
    test(vec![load_abs(size, offset)], bpf::JEQ, k)
}

/// PACKET_OUTGOING on the loopback interface.
fn loopback_outgoing() -> Node {
    const PACKET_OUTGOING: u32 = 4;
    const LOOPBACK_IFINDEX: u32 = 1;
    and(
        eq_abs(
            bpf::B,
            bpf::SKF_AD_OFF + bpf::SKF_AD_PKTTYPE,
            PACKET_OUTGOING,
        ),
        eq_abs(
            bpf::W,
            bpf::SKF_AD_OFF + bpf::SKF_AD_IFINDEX,
            LOOPBACK_IFINDEX,
        ),
    )
}

fn ethertype(t: u32) -> Node {
    eq_abs(bpf::H, bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL, t)
}

fn ipv4_proto(p: u32) -> Node {
    and(ethertype(ETHERTYPE_IP), eq_abs(bpf::B, 9, p))
}

/// IPv6 next header `p`, directly or after a fragment header (libpcap's `ip6 proto`).
fn ipv6_proto(p: u32) -> Node {
    and(
        ethertype(ETHERTYPE_IPV6),
        or(
            eq_abs(bpf::B, 6, p),
            and(
                eq_abs(bpf::B, 6, IPPROTO_FRAGMENT),
                eq_abs(bpf::B, IPV6_HLEN, p),
            ),
        ),
    )
}

/// Not a non-first IPv4 fragment (only the first one carries the transport header).
fn ipv4_first_fragment() -> Node {
    not(test(vec![load_abs(bpf::H, 6)], bpf::JSET, 0x1fff))
}

/// Load a transport-header field of an IPv4 packet: X = IP header length, then `[x + off]`.
fn ipv4_transport_load(size: u16, offset: u32) -> Vec<Insn> {
    vec![
        Insn::stmt(bpf::LDX | bpf::B | bpf::MSH, 0),
        Insn::stmt(bpf::LD | size | bpf::IND, offset),
    ]
}

fn directional(dir: Dir, src: Node, dst: Node) -> Node {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => or(src, dst),
        Dir::SrcAndDst => and(src, dst),
    }
}

/// Compare the (masked) 32-bit words of an address at `offset` with a network.
fn addr_words(offset: u32, words: &[u32], masks: &[u32]) -> Node {
    let tests = words
        .iter()
        .zip(masks)
        .enumerate()
        .filter(|(_, (_, m))| **m != 0)
        .map(|(i, (w, m))| {
            let mut loads = vec![load_abs(bpf::W, offset + 4 * i as u32)];
            if *m != u32::MAX {
                loads.push(Insn::stmt(bpf::ALU | bpf::AND | bpf::K, *m));
            }
            test(loads, bpf::JEQ, w & m)
        })
        .collect::<Vec<_>>();
    if tests.is_empty() {
        // A /0 network: any packet of the family matches; compare A with itself trivially.
        test(vec![], bpf::JGE, 0)
    } else {
        all(tests)
    }
}

fn prefix_masks(prefix: u32, words: usize) -> Vec<u32> {
    (0..words as u32)
        .map(|i| {
            let bits = prefix.saturating_sub(32 * i).min(32);
            if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            }
        })
        .collect()
}

fn relop(loads: Vec<Insn>, op: RelOp, value: u32) -> Node {
    match op {
        RelOp::Eq => test(loads, bpf::JEQ, value),
        RelOp::Ne => not(test(loads, bpf::JEQ, value)),
        RelOp::Gt => test(loads, bpf::JGT, value),
        RelOp::Ge => test(loads, bpf::JGE, value),
        RelOp::Lt => not(test(loads, bpf::JGE, value)),
        RelOp::Le => not(test(loads, bpf::JGT, value)),
    }
}

fn lower(expr: &Expr) -> Node {
    match expr {
        Expr::And(a, b) => and(lower(a), lower(b)),
        Expr::Or(a, b) => or(lower(a), lower(b)),
        Expr::Not(a) => not(lower(a)),
        Expr::Primitive(p) => lower_primitive(p),
    }
}

fn lower_primitive(p: &Primitive) -> Node {
    match p {
        Primitive::Proto(proto) => match proto {
            Proto::Ip => ethertype(ETHERTYPE_IP),
            Proto::Ip6 => ethertype(ETHERTYPE_IPV6),
            Proto::Arp => ethertype(ETHERTYPE_ARP),
            Proto::Tcp => or(ipv4_proto(IPPROTO_TCP), ipv6_proto(IPPROTO_TCP)),
            Proto::Udp => or(ipv4_proto(IPPROTO_UDP), ipv6_proto(IPPROTO_UDP)),
            Proto::Icmp => ipv4_proto(IPPROTO_ICMP),
            Proto::Icmp6 => ipv6_proto(IPPROTO_ICMPV6),
        },
        Primitive::IpProto { ip6: false, number } => ipv4_proto(u32::from(*number)),
        Primitive::IpProto { ip6: true, number } => ipv6_proto(u32::from(*number)),
        Primitive::Net {
            qualifier,
            dir,
            addr,
            prefix,
        } => lower_net(*qualifier, *dir, *addr, u32::from(*prefix)),
        Primitive::Port {
            proto,
            dir,
            low,
            high,
        } => lower_port(*proto, *dir, u32::from(*low), u32::from(*high)),
        Primitive::Bytes {
            proto,
            offset,
            size,
            mask,
            op,
            value,
        } => {
            let size = match size {
                4 => bpf::W,
                2 => bpf::H,
                _ => bpf::B,
            };
            let with_mask = |mut loads: Vec<Insn>| {
                if let Some(m) = mask {
                    loads.push(Insn::stmt(bpf::ALU | bpf::AND | bpf::K, *m));
                }
                loads
            };
            let transport = |ipproto: u32| {
                all(vec![
                    ipv4_proto(ipproto),
                    ipv4_first_fragment(),
                    relop(with_mask(ipv4_transport_load(size, *offset)), *op, *value),
                ])
            };
            match proto {
                Proto::Ip => and(
                    ethertype(ETHERTYPE_IP),
                    relop(with_mask(vec![load_abs(size, *offset)]), *op, *value),
                ),
                Proto::Ip6 => and(
                    ethertype(ETHERTYPE_IPV6),
                    relop(with_mask(vec![load_abs(size, *offset)]), *op, *value),
                ),
                Proto::Arp => and(
                    ethertype(ETHERTYPE_ARP),
                    relop(with_mask(vec![load_abs(size, *offset)]), *op, *value),
                ),
                // As in libpcap, tcp[]/udp[]/icmp[] address IPv4 packets only.
                Proto::Tcp => transport(IPPROTO_TCP),
                Proto::Udp => transport(IPPROTO_UDP),
                Proto::Icmp => transport(IPPROTO_ICMP),
                Proto::Icmp6 => all(vec![
                    ethertype(ETHERTYPE_IPV6),
                    eq_abs(bpf::B, 6, IPPROTO_ICMPV6),
                    relop(
                        with_mask(vec![load_abs(size, IPV6_HLEN + offset)]),
                        *op,
                        *value,
                    ),
                ]),
            }
        }
    }
}

fn lower_net(qualifier: Option<Proto>, dir: Dir, addr: IpAddr, prefix: u32) -> Node {
    match addr {
        IpAddr::V4(a) => {
            let words = [u32::from(a)];
            let masks = prefix_masks(prefix, 1);
            let ip = || {
                and(
                    ethertype(ETHERTYPE_IP),
                    directional(
                        dir,
                        addr_words(12, &words, &masks),
                        addr_words(16, &words, &masks),
                    ),
                )
            };
            // ARP/RARP: sender and target protocol addresses (Ethernet/IPv4 layout).
            let arp = |types: Vec<u32>| {
                and(
                    any(types.into_iter().map(ethertype).collect()),
                    directional(
                        dir,
                        addr_words(14, &words, &masks),
                        addr_words(24, &words, &masks),
                    ),
                )
            };
            match qualifier {
                Some(Proto::Ip) => ip(),
                Some(Proto::Arp) => arp(vec![ETHERTYPE_ARP]),
                _ => or(ip(), arp(vec![ETHERTYPE_ARP, ETHERTYPE_REVARP])),
            }
        }
        IpAddr::V6(a) => {
            let octets = a.octets();
            let words: Vec<u32> = octets
                .chunks(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let masks = prefix_masks(prefix, 4);
            and(
                ethertype(ETHERTYPE_IPV6),
                directional(
                    dir,
                    addr_words(8, &words, &masks),
                    addr_words(24, &words, &masks),
                ),
            )
        }
    }
}

fn lower_port(proto: Option<Proto>, dir: Dir, low: u32, high: u32) -> Node {
    let protos: Vec<u32> = match proto {
        Some(Proto::Tcp) => vec![IPPROTO_TCP],
        Some(Proto::Udp) => vec![IPPROTO_UDP],
        // Unqualified `port` means SCTP, TCP or UDP, as in libpcap.
        _ => vec![IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP],
    };
    let in_range = |loads: Vec<Insn>| {
        if low == high {
            test(loads, bpf::JEQ, low)
        } else {
            and(
                test(loads.clone(), bpf::JGE, low),
                not(test(loads, bpf::JGT, high)),
            )
        }
    };
    let v6 = all(vec![
        ethertype(ETHERTYPE_IPV6),
        any(protos.iter().map(|p| eq_abs(bpf::B, 6, *p)).collect()),
        directional(
            dir,
            in_range(vec![load_abs(bpf::H, IPV6_HLEN)]),
            in_range(vec![load_abs(bpf::H, IPV6_HLEN + 2)]),
        ),
    ]);
    let v4 = all(vec![
        ethertype(ETHERTYPE_IP),
        any(protos.iter().map(|p| eq_abs(bpf::B, 9, *p)).collect()),
        ipv4_first_fragment(),
        directional(
            dir,
            in_range(ipv4_transport_load(bpf::H, 0)),
            in_range(ipv4_transport_load(bpf::H, 2)),
        ),
    ]);
    or(v6, v4)
}

/// Layout with labels, before jump offsets are known.
#[derive(Debug, Clone)]
enum Op {
    Stmt(Insn),
    Cond {
        jump: u16,
        k: u32,
        t: usize,
        f: usize,
    },
    Place(usize),
}

#[derive(Default)]
struct Gen {
    ops: Vec<Op>,
    /// Per label, what the registers hold on every jump to it (None: not known to agree).
    label_states: Vec<Option<Registers>>,
    /// What the accumulator and X hold here, so a repeated load can be skipped.
    regs: Registers,
}

/// The load sequence whose result is in A, and the X load in effect.
#[derive(Debug, Clone, Default, PartialEq)]
struct Registers {
    a: Option<Vec<Insn>>,
    x: Option<Insn>,
}

impl Gen {
    fn label(&mut self) -> usize {
        self.label_states.push(None);
        self.label_states.len() - 1
    }

    /// Record the registers on a jump to `label`; different states meet as "unknown".
    fn note_jump(&mut self, label: usize) {
        let here = self.regs.clone();
        match &mut self.label_states[label] {
            slot @ None => *slot = Some(here),
            Some(known) => {
                if known.a != here.a {
                    known.a = None;
                }
                if known.x != here.x {
                    known.x = None;
                }
            }
        }
    }

    /// Code at a label is reached only by jumps (no instruction falls through into it), all
    /// of them emitted already: the registers hold what every one of them agrees on.
    fn place(&mut self, label: usize) {
        self.ops.push(Op::Place(label));
        self.regs = self.label_states[label].clone().unwrap_or_default();
    }

    fn stmt(&mut self, insn: Insn) {
        self.ops.push(Op::Stmt(insn));
    }

    fn emit_loads(&mut self, loads: &[Insn]) {
        if self.regs.a.as_deref() == Some(loads) {
            return;
        }
        for insn in loads {
            if insn.class() == bpf::LDX {
                // X only ever holds the IPv4 header length; sequences that read through it
                // carry the X load, so equal sequences mean equal values.
                if self.regs.x == Some(*insn) {
                    continue;
                }
                self.regs.x = Some(*insn);
            }
            self.stmt(*insn);
        }
        self.regs.a = Some(loads.to_vec());
    }

    fn emit_node(&mut self, node: &Node, t: usize, f: usize) {
        match node {
            Node::And(a, b) => {
                let next = self.label();
                self.emit_node(a, next, f);
                self.place(next);
                self.emit_node(b, t, f);
            }
            Node::Or(a, b) => {
                let next = self.label();
                self.emit_node(a, t, next);
                self.place(next);
                self.emit_node(b, t, f);
            }
            Node::Not(a) => self.emit_node(a, f, t),
            Node::Test { loads, jump, k } => {
                self.emit_loads(loads);
                self.note_jump(t);
                self.note_jump(f);
                self.ops.push(Op::Cond {
                    jump: *jump,
                    k: *k,
                    t,
                    f,
                });
            }
        }
    }

    /// Resolve labels. A conditional jump reaches at most 255 instructions ahead; one that
    /// must go further becomes `jcond +0/+1; ja true; ja false`. Making a jump long moves
    /// later code, so this repeats until nothing more needs it (positions only grow, so it
    /// ends).
    fn assemble(&self) -> Vec<Insn> {
        let mut long = vec![false; self.ops.len()];
        let (starts, positions) = loop {
            let mut starts = vec![0usize; self.ops.len()];
            let mut positions = vec![0usize; self.label_states.len()];
            let mut at = 0;
            for (i, op) in self.ops.iter().enumerate() {
                starts[i] = at;
                match op {
                    Op::Stmt(_) => at += 1,
                    Op::Cond { .. } => at += if long[i] { 3 } else { 1 },
                    Op::Place(l) => positions[*l] = at,
                }
            }
            let mut changed = false;
            for (i, op) in self.ops.iter().enumerate() {
                if let Op::Cond { t, f, .. } = op {
                    let reach = |label: &usize| positions[*label] - (starts[i] + 1);
                    if !long[i] && (reach(t) > 255 || reach(f) > 255) {
                        long[i] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break (starts, positions);
            }
        };
        let mut out = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Stmt(insn) => out.push(*insn),
                Op::Place(_) => {}
                Op::Cond { jump, k, t, f } => {
                    let code = bpf::JMP | jump | bpf::K;
                    let here = starts[i];
                    if long[i] {
                        out.push(Insn::jump(code, *k, 0, 1));
                        out.push(Insn::stmt(
                            bpf::JMP | bpf::JA,
                            (positions[*t] - (here + 2)) as u32,
                        ));
                        out.push(Insn::stmt(
                            bpf::JMP | bpf::JA,
                            (positions[*f] - (here + 3)) as u32,
                        ));
                    } else {
                        let jt = (positions[*t] - (here + 1)) as u8;
                        let jf = (positions[*f] - (here + 1)) as u8;
                        out.push(Insn::jump(code, *k, jt, jf));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::parse;

    fn program(text: &str) -> Vec<Insn> {
        compile(&parse(text).unwrap(), 128).unwrap()
    }

    #[test]
    fn tcp_port_matches_the_hand_assembled_program() {
        // What libpcap produces for `ip and tcp dst port 80` on a cooked socket
        // (tcpdump -d -y LINUX_SLL, with SLL offsets rewritten as pcap-linux.c does).
        let p = program("ip and tcp dst port 80");
        let listing = bpf::Listing(&p).to_string();
        assert!(listing.contains("ldh      [proto]"), "{listing}");
        assert!(listing.contains("jset     #0x1fff"), "{listing}");
        assert!(listing.contains("ldxb     4*([0]&0xf)"), "{listing}");
        assert!(listing.contains("ldh      [x + 2]"), "{listing}");
        assert_eq!(p.last().unwrap().k, 0);
    }

    #[test]
    fn repeated_loads_are_not_reemitted() {
        // `ip6 and icmp6`: the protocol is loaded once for `ip6` and, after a label, once more
        // for `icmp6`'s own test; the next-header byte is loaded once for both comparisons
        // (58, then 44) that follow each other without a label in between.
        let p = program("ip6 and icmp6");
        let proto_loads = p
            .iter()
            .filter(|i| i.k == bpf::SKF_AD_OFF + bpf::SKF_AD_PROTOCOL)
            .count();
        assert!(proto_loads <= 2, "{}", bpf::Listing(&p));
        let next_header_loads = p
            .iter()
            .filter(|i| i.code == bpf::LD | bpf::B | bpf::ABS && i.k == 6)
            .count();
        assert_eq!(next_header_loads, 1, "{}", bpf::Listing(&p));
    }

    #[test]
    fn the_outgoing_copy_of_loopback_packets_is_dropped() {
        let p = program("ip");
        let packet = [0x45u8, 0, 0, 20];
        // (pkttype, ifindex): outgoing on lo is dropped; incoming on lo and outgoing elsewhere kept.
        assert_eq!(bpf::run(&p, &packet, 0x0800, 4, 1), 0);
        assert_eq!(bpf::run(&p, &packet, 0x0800, 0, 1), 128);
        assert_eq!(bpf::run(&p, &packet, 0x0800, 4, 2), 128);
    }

    #[test]
    fn long_programs_use_trampolines() {
        let many: Vec<String> = (1..=60).map(|i| format!("host 10.0.{i}.1")).collect();
        let p = program(&format!("tcp and ({})", many.join(" or ")));
        assert!(p.len() > 256);
        assert!(p.iter().any(|i| i.code == bpf::JMP | bpf::JA));
        // Every jump stays inside the program.
        for (i, insn) in p.iter().enumerate() {
            if insn.code & 0x07 == bpf::JMP {
                let far = if insn.code == bpf::JMP | bpf::JA {
                    insn.k as usize
                } else {
                    usize::from(insn.jt.max(insn.jf))
                };
                assert!(i + 1 + far < p.len());
            }
        }
    }
}
