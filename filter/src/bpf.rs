//! Classic BPF instructions (the `struct sock_filter` the kernel runs on AF_PACKET sockets),
//! their opcode constants, and a `tcpdump -d`-style listing. The test build adds an
//! interpreter so compiled programs can be run over recorded packets and compared with what
//! libpcap selects from the same packets.

#[cfg(any(test, feature = "interpreter"))]
use std::fmt;

// Instruction classes, sizes, modes, operations (linux/filter.h, linux/bpf_common.h).
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MSH: u16 = 0xa0;
pub const AND: u16 = 0x50;
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;
pub const K: u16 = 0x00;

/// Start of the kernel's "ancillary data" load offsets (SKF_AD_OFF).
pub const SKF_AD_OFF: u32 = 0xffff_f000;
/// Ancillary load: the packet's link-layer protocol (ethertype), in host order.
pub const SKF_AD_PROTOCOL: u32 = 0;
/// Ancillary load: the packet type (PACKET_HOST, PACKET_OUTGOING...).
pub const SKF_AD_PKTTYPE: u32 = 4;
/// Ancillary load: the index of the interface the packet is on.
pub const SKF_AD_IFINDEX: u32 = 8;

/// Most instructions the kernel accepts in one program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    pub fn class(&self) -> u16 {
        self.code & 0x07
    }
}

/// A program in the `tcpdump -d` listing format, one instruction a line (for test failures).
#[cfg(any(test, feature = "interpreter"))]
pub struct Listing<'a>(pub &'a [Insn]);

#[cfg(any(test, feature = "interpreter"))]
impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, insn) in self.0.iter().enumerate() {
            writeln!(f, "({i:03}) {}", describe(insn, i))?;
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "interpreter"))]
fn describe(insn: &Insn, at: usize) -> String {
    let size = |code: u16| match code & 0x18 {
        W => "ld",
        H => "ldh",
        _ => "ldb",
    };
    let addr = |k: u32| {
        if k >= SKF_AD_OFF {
            match k - SKF_AD_OFF {
                SKF_AD_PROTOCOL => "proto".to_string(),
                SKF_AD_PKTTYPE => "type".to_string(),
                SKF_AD_IFINDEX => "ifidx".to_string(),
                other => format!("ad+{other}"),
            }
        } else {
            k.to_string()
        }
    };
    match insn.class() {
        LD => match insn.code & 0xe0 {
            ABS => format!("{:<8} [{}]", size(insn.code), addr(insn.k)),
            IND => format!("{:<8} [x + {}]", size(insn.code), insn.k),
            _ => format!("ld       #{:#x}", insn.k),
        },
        LDX => format!("ldxb     4*([{}]&0xf)", insn.k),
        ALU => format!("and      #{:#x}", insn.k),
        RET => format!("ret      #{}", insn.k),
        _ => {
            let name = match insn.code & 0xf0 {
                JEQ => "jeq",
                JGT => "jgt",
                JGE => "jge",
                JSET => "jset",
                _ => return format!("ja       {}", at + 1 + insn.k as usize),
            };
            format!(
                "{name:<8} #{:<#14x} jt {}\tjf {}",
                insn.k,
                at + 1 + insn.jt as usize,
                at + 1 + insn.jf as usize
            )
        }
    }
}

/// A user-space classic BPF interpreter for the instructions this module emits, with the
/// kernel's semantics for a cooked (SOCK_DGRAM) packet socket: loads are relative to the
/// network header, ancillary loads give the link protocol and packet type, and an
/// out-of-bounds load rejects the packet.
#[cfg(any(test, feature = "interpreter"))]
pub fn run(prog: &[Insn], packet: &[u8], protocol: u16, pkttype: u16, ifindex: u32) -> u32 {
    let load = |offset: u32, code: u16| -> Option<u32> {
        if offset >= SKF_AD_OFF {
            return match offset - SKF_AD_OFF {
                SKF_AD_PROTOCOL => Some(u32::from(protocol)),
                SKF_AD_PKTTYPE => Some(u32::from(pkttype)),
                SKF_AD_IFINDEX => Some(ifindex),
                _ => None,
            };
        }
        let at = offset as usize;
        let bytes = match code & 0x18 {
            W => packet.get(at..at + 4)?,
            H => packet.get(at..at + 2)?,
            _ => packet.get(at..at + 1)?,
        };
        Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    };
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    while let Some(insn) = prog.get(pc) {
        pc += 1;
        match insn.class() {
            LD => {
                let offset = match insn.code & 0xe0 {
                    ABS => insn.k,
                    IND => x.wrapping_add(insn.k),
                    _ => {
                        a = insn.k;
                        continue;
                    }
                };
                match load(offset, insn.code) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            LDX => match packet.get(insn.k as usize) {
                Some(b) => x = u32::from(b & 0x0f) * 4,
                None => return 0,
            },
            ALU => a &= insn.k,
            RET => return insn.k,
            _ => {
                let taken = match insn.code & 0xf0 {
                    JEQ => a == insn.k,
                    JGT => a > insn.k,
                    JGE => a >= insn.k,
                    JSET => a & insn.k != 0,
                    _ => {
                        pc += insn.k as usize;
                        continue;
                    }
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
        }
    }
    0
}
