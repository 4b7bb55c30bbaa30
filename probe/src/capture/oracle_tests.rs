//! The filter compiler against libpcap itself: a pcap of varied packets (IPv4 with and without
//! options, fragments, IPv6 with a fragment header, TCP/UDP/SCTP/ICMP/ICMPv6/GRE, ARP, RARP,
//! truncated headers) is filtered by `tcpdump -r FILE EXPR`, and the same packets are run
//! through our compiled program in a cBPF interpreter with the kernel's cooked-socket
//! semantics. The selections must be identical. The interpreter itself is checked by running
//! tcpdump's own program (`tcpdump -ddd -y LINUX_SLL`) through it on the same packets.

use std::collections::BTreeSet;
use std::process::Command;

use super::bpf::{self, Insn};
use super::compile::compile;
use super::filter::parse;
use super::pcap::{LinkInfo, PcapStream, SLL_HEADER_LEN};

const IP: u16 = 0x0800;
const IP6: u16 = 0x86dd;

fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    frag: u16,
    options: usize,
    transport: &[u8],
) -> Vec<u8> {
    let ihl = 20 + options;
    let total = ihl + transport.len();
    let mut p = vec![0x40 | (ihl / 4) as u8, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend(std::iter::repeat_n(1u8, options));
    p.extend_from_slice(transport);
    p
}

fn ipv6(src: &str, dst: &str, next: u8, transport: &[u8]) -> Vec<u8> {
    let src: std::net::Ipv6Addr = src.parse().unwrap();
    let dst: std::net::Ipv6Addr = dst.parse().unwrap();
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(transport.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(transport);
    p
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(payload);
    t
}

fn icmp(kind: u8, code: u8) -> Vec<u8> {
    vec![kind, code, 0, 0, 0, 0, 0x05, 0xdc, 0x45, 0, 0, 28]
}

fn arp(spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1];
    p.extend_from_slice(&spa);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&tpa);
    p
}

/// (link protocol, network-layer bytes)
fn packets() -> Vec<(u16, Vec<u8>)> {
    let a = [10, 199, 0, 1];
    let b = [10, 199, 0, 2];
    let c = [10, 1, 2, 3];
    let d = [192, 168, 7, 9];
    let mut v = vec![
        (IP, ipv4(a, b, 6, 0x4000, 0, &tcp(40000, 80, 0x02))),
        (IP, ipv4(b, a, 6, 0x4000, 0, &tcp(80, 40000, 0x12))),
        (IP, ipv4(b, a, 6, 0, 0, &tcp(80, 40000, 0x14))),
        (IP, ipv4(a, b, 6, 0, 0, &tcp(40001, 443, 0x10))),
        (IP, ipv4(a, b, 6, 0, 0, &tcp(40002, 8080, 0x18))),
        (IP, ipv4(c, d, 6, 0, 8, &tcp(53, 1024, 0x01))),
        (IP, ipv4(d, c, 6, 0, 4, &tcp(20, 22, 0x04))),
        // A non-first fragment whose payload bytes look like port 80.
        (IP, ipv4(a, b, 6, 0x0010, 0, &tcp(80, 80, 0x02))),
        (IP, ipv4(a, b, 6, 0x2000, 0, &tcp(80, 80, 0x02))),
        (
            IP,
            ipv4(
                a,
                [10, 199, 0, 53],
                17,
                0,
                0,
                &udp(5353, 53, b"\x12\x34\x01\x00\x00\x01"),
            ),
        ),
        (
            IP,
            ipv4(
                [10, 199, 0, 53],
                a,
                17,
                0,
                0,
                &udp(53, 5353, b"\x12\x34\x81\x80\x00\x01"),
            ),
        ),
        (IP, ipv4(c, d, 17, 0, 0, &udp(10, 20, b"x"))),
        (IP, ipv4(c, d, 17, 0, 0, &udp(21, 9, b"x"))),
        (IP, ipv4(c, d, 17, 0, 0, &udp(15, 65535, b"x"))),
        (IP, ipv4(a, b, 132, 0, 0, &udp(7777, 53, b""))),
        (IP, ipv4(a, b, 1, 0, 0, &icmp(8, 0))),
        (IP, ipv4(b, a, 1, 0, 0, &icmp(0, 0))),
        (IP, ipv4([10, 199, 9, 254], a, 1, 0, 0, &icmp(3, 4))),
        (IP, ipv4([10, 199, 9, 254], a, 1, 0, 0, &icmp(11, 0))),
        (IP, ipv4(a, b, 47, 0, 0, &[0, 0, 8, 0])),
        (
            IP,
            ipv4(
                [255, 255, 255, 255],
                [0, 0, 0, 0],
                17,
                0,
                0,
                &udp(68, 67, b"dhcp"),
            ),
        ),
        (IP, ipv4(a, b, 6, 0, 0, &[0x9c, 0x40])),
        (IP, ipv4(a, a, 17, 0, 0, &udp(1, 2, b""))),
        (0x0806, arp(a, b)),
        (0x0806, arp(c, d)),
        (0x8035, arp(d, a)),
        (0x0806, vec![0, 1, 8, 0]),
    ];
    let v6 = [
        ipv6("fd00:199::1", "fd00:199::2", 6, &tcp(40000, 80, 0x02)),
        ipv6("fd00:199::2", "fd00:199::1", 6, &tcp(80, 40000, 0x12)),
        ipv6(
            "fd00:199::1",
            "fd00:199::2",
            17,
            &udp(40000, 53, b"\x00\x01\x01\x00"),
        ),
        ipv6(
            "fd00:199::2",
            "fd00:199::1",
            17,
            &udp(53, 40000, b"\x00\x01\x81\x83"),
        ),
        ipv6("fd00:1::5", "fd00:199::2", 58, &[128, 0, 0, 0, 0, 1, 0, 1]),
        ipv6("fd00:199::2", "fd00:1::5", 58, &[129, 0, 0, 0, 0, 1, 0, 1]),
        ipv6("fe80::1", "ff02::1:ff00:2", 58, &[135, 0, 0, 0, 0, 0, 0, 0]),
        ipv6("fd00:199::fe", "fd00:199::1", 58, &[2, 0, 0, 0, 0, 0, 5, 0]),
        ipv6("fd00:199::fe", "fd00:199::1", 58, &[1, 4, 0, 0, 0, 0, 0, 0]),
        // A fragment header (first fragment) carrying TCP, and one carrying ICMPv6.
        ipv6(
            "fd00:199::1",
            "fd00:199::2",
            44,
            &[[6u8, 0, 0, 0, 0, 0, 0, 1].as_slice(), &tcp(1, 2, 0x02)].concat(),
        ),
        ipv6(
            "fd00:199::1",
            "fd00:199::2",
            44,
            &[[58u8, 0, 0, 0, 0, 0, 0, 1].as_slice(), &[128, 0, 0, 0]].concat(),
        ),
        ipv6("2001:db8::1", "fd00:199::1", 6, &tcp(443, 50000, 0x11)),
        ipv6("::1", "::1", 132, &udp(9, 9, b"")),
        ipv6("fd00:199::1", "fd00:199::2", 6, &[0, 80]),
    ];
    v.extend(v6.into_iter().map(|p| (IP6, p)));
    v
}

/// Expressions covering every construct the compiler supports.
const EXPRESSIONS: &[&str] = &[
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "ip",
    "ip6",
    "arp",
    "port 53",
    "tcp port 80",
    "udp dst port 53",
    "src port 80",
    "dst port 80 or src port 443",
    "portrange 10-20",
    "udp portrange 20-10",
    "tcp src portrange 1-1024",
    "host 10.199.0.1",
    "src host 10.199.0.1",
    "dst host 10.199.0.2",
    "src and dst host 10.199.0.1",
    "ip host 10.199.0.2",
    "arp host 10.199.0.2",
    "net 10.1.0.0/16",
    "dst net 192.168.0.0/16",
    "src or dst net 10.0.0.0/8",
    "net 0.0.0.0/0",
    "host fd00:199::1",
    "src host fd00:199::2",
    "net fd00:199::/64",
    "ip6 net fd00::/16",
    "net fd00:199::fe/127",
    "dst fd00:199::1",
    "src 10.199.9.254",
    "ip proto 47",
    "ip6 proto 6",
    "ip6 proto 58",
    "not tcp",
    "! (udp or icmp6)",
    "tcp and not port 80",
    "host 10.199.0.1 and (tcp port 80 or udp port 53)",
    "(host 10.199.0.1 and tcp port 8080) or (host fd00:199::2 and port 53) or icmp",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
    "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0",
    "tcp[13] = 0x12",
    "tcp[0:2] > 1000",
    "tcp[2:2] <= 443",
    "udp[8:2] = 0x1234",
    "icmp[icmptype] = icmp-unreach and icmp[icmpcode] = 4",
    "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
    "icmp6 and ip6[40] < 128",
    "icmp6[icmp6type] == icmp6-echo",
    "ip[8] >= 64",
    "ip[9] = 17 && ip[16:4] = 0xc0a80709",
    "ip6[6] == 17 || arp",
    "arp[7] = 1",
    "ip6[8:4] & 0xffff0000 = 0xfd000000",
    "(icmp and icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply) or (icmp6 and ip6[40] < 128)",
    // A peer's default (both ends): its sources' TCP on its ports, and ICMP errors.
    "(tcp and (host 10.199.0.1 or host fd00:199::1) and (port 80 or port 8080)) or (icmp and icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply) or (icmp6 and ip6[40] < 128)",
];

fn write_pcap(path: &std::path::Path, packets: &[(u16, Vec<u8>)]) {
    let mut stream = PcapStream::new(65535, usize::MAX);
    for (i, (protocol, data)) in packets.iter().enumerate() {
        let link = LinkInfo {
            pkttype: if i % 2 == 0 { 4 } else { 0 },
            hatype: 1,
            protocol: *protocol,
            addr_len: 6,
            addr: [2, 0, 0, 0, 0, i as u8, 0, 0],
        };
        stream.push(
            std::time::Duration::from_secs(1_700_000_000 + i as u64),
            &link,
            data,
            data.len(),
        );
    }
    std::fs::write(path, stream.finish().expect("header and packets").bytes).unwrap();
}

/// Packet numbers (1-based) tcpdump selects from `file` with `expr`. Packet i was written with
/// the timestamp 1700000000 + i seconds, which `-tt` prints first on each line.
fn tcpdump_selects(file: &std::path::Path, expr: &str) -> BTreeSet<usize> {
    let out = Command::new("tcpdump")
        .args(["-tt", "-nn", "-r"])
        .arg(file)
        .arg(expr)
        .output()
        .expect("tcpdump must be installed for the filter tests (apt-get install tcpdump)");
    assert!(
        out.status.success(),
        "tcpdump refused `{expr}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let secs: u64 = l
                .split_whitespace()
                .next()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            Some((secs - 1_700_000_000) as usize + 1)
        })
        .collect()
}

/// tcpdump's own program for LINUX_SLL (`-ddd`: a count line, then `code jt jf k` lines).
fn tcpdump_program(expr: &str) -> Vec<Insn> {
    let out = Command::new("tcpdump")
        .args(["-ddd", "-y", "LINUX_SLL", expr])
        .output()
        .expect("tcpdump must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let n: Vec<u32> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            Insn::jump(n[0] as u16, n[3], n[1] as u8, n[2] as u8)
        })
        .collect()
}

#[test]
fn compiled_filters_select_what_tcpdump_selects() {
    let dir = tempdir();
    let file = dir.join("varied.pcap");
    let packets = packets();
    write_pcap(&file, &packets);
    let mut failures = Vec::new();
    for expr in EXPRESSIONS {
        let expected = tcpdump_selects(&file, expr);
        let program = compile(&parse(expr).unwrap(), 65535).unwrap();
        // The kernel's view of a cooked packet: the network header at 0, the protocol and
        // packet type through ancillary loads.
        let ours: BTreeSet<usize> = packets
            .iter()
            .enumerate()
            .filter(|(i, (proto, data))| {
                {
                    // Not on loopback (ifindex 2): tcpdump -r applies no loopback rule.
                    bpf::run(&program, data, *proto, if i % 2 == 0 { 4 } else { 0 }, 2) > 0
                }
            })
            .map(|(i, _)| i + 1)
            .collect();
        // The interpreter is itself checked: tcpdump's program over the SLL records.
        let theirs_program = tcpdump_program(expr);
        let theirs: BTreeSet<usize> = packets
            .iter()
            .enumerate()
            .filter(|(i, (proto, data))| {
                let mut record = vec![0u8; SLL_HEADER_LEN];
                record[1] = if i % 2 == 0 { 4 } else { 0 };
                record[14..16].copy_from_slice(&proto.to_be_bytes());
                record.extend_from_slice(data);
                bpf::run(&theirs_program, &record, 0, 0, 0) > 0
            })
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(
            theirs, expected,
            "the interpreter disagrees with tcpdump on its own program for `{expr}`"
        );
        assert!(
            !expected.is_empty(),
            "`{expr}` selects nothing: a weak test"
        );
        if ours != expected {
            failures.push(format!(
                "`{expr}`: tcpdump selects {expected:?}, ours {ours:?}\n{}",
                bpf::Listing(&program)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn snap_length_is_what_the_filter_returns() {
    let program = compile(&parse("tcp").unwrap(), 96).unwrap();
    let (proto, data) = &packets()[0];
    assert_eq!(bpf::run(&program, data, *proto, 0, 2), 96);
    let (proto, data) = &packets()[9];
    assert_eq!(bpf::run(&program, data, *proto, 0, 2), 0);
}

#[test]
fn tcpdump_reads_the_pcap_stream_back() {
    let dir = tempdir();
    let file = dir.join("stream.pcap");
    let packets = packets();
    write_pcap(&file, &packets);
    let all = tcpdump_selects(&file, "");
    assert_eq!(all.len(), packets.len());
}

/// A scratch directory removed on drop (also when an assertion fails).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("ndt-capture-filter-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}
