//! Encoding and decoding against byte layouts written out by hand from the kernel's ABI
//! (include/uapi/linux/netfilter/nfnetlink_conntrack.h): netlink and attribute headers in host
//! byte order, addresses and ports in network byte order, attributes padded to 4 bytes.

use super::*;

const NESTED: u16 = 0x8000;

/// struct nlmsghdr: length, type, flags, sequence number, port id (0: from/to the kernel).
fn nlmsghdr(length: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
    [
        &length.to_ne_bytes()[..],
        &kind.to_ne_bytes(),
        &flags.to_ne_bytes(),
        &seq.to_ne_bytes(),
        &0u32.to_ne_bytes(),
    ]
    .concat()
}

/// struct nlattr: length (header included, padding not), type.
fn nla(length: u16, kind: u16) -> Vec<u8> {
    [length.to_ne_bytes(), kind.to_ne_bytes()].concat()
}

/// CTA_TUPLE_{ORIG,REPLY} body for TCP between two IPv4 addresses (48 bytes).
fn v4_tuple(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    [
        nla(20, 1 | NESTED), // CTA_TUPLE_IP
        nla(8, 1),           // CTA_IP_V4_SRC
        src.to_vec(),
        nla(8, 2), // CTA_IP_V4_DST
        dst.to_vec(),
        nla(28, 2 | NESTED), // CTA_TUPLE_PROTO
        nla(5, 1),           // CTA_PROTO_NUM, 1 byte + 3 padding
        vec![6, 0, 0, 0],
        nla(6, 2), // CTA_PROTO_SRC_PORT, 2 bytes + 2 padding
        sport.to_be_bytes().to_vec(),
        vec![0, 0],
        nla(6, 3), // CTA_PROTO_DST_PORT
        dport.to_be_bytes().to_vec(),
        vec![0, 0],
    ]
    .concat()
}

fn v4(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

#[test]
fn ipv4_request_bytes() {
    let bytes = get_request(7, v4("10.199.1.1:40000"), v4("10.199.96.10:80"));
    let expected = [
        // 16 header + 4 nfgenmsg + 52 CTA_TUPLE_ORIG; CT_GET; NLM_F_REQUEST only.
        nlmsghdr(72, 0x0101, 0x0001, 7),
        vec![2, 0, 0, 0], // nfgenmsg: AF_INET, NFNETLINK_V0, res_id 0
        nla(52, 1 | NESTED),
        v4_tuple([10, 199, 1, 1], [10, 199, 96, 10], 40000, 80),
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn ipv6_request_bytes() {
    let src: SocketAddr = "[fd00:199::1]:40000".parse().unwrap();
    let dst: SocketAddr = "[fd00:199:96::10]:80".parse().unwrap();
    let bytes = get_request(0x0102_0304, src, dst);
    let octets = |a: SocketAddr| match a.ip() {
        IpAddr::V6(ip) => ip.octets().to_vec(),
        IpAddr::V4(_) => unreachable!(),
    };
    let expected = [
        // 16 + 4 + (4 + 44 IP + 28 proto)
        nlmsghdr(96, 0x0101, 0x0001, 0x0102_0304),
        vec![10, 0, 0, 0], // AF_INET6
        nla(76, 1 | NESTED),
        nla(44, 1 | NESTED),
        nla(20, 3), // CTA_IP_V6_SRC
        octets(src),
        nla(20, 4), // CTA_IP_V6_DST
        octets(dst),
        nla(28, 2 | NESTED),
        nla(5, 1),
        vec![6, 0, 0, 0],
        nla(6, 2),
        vec![0x9c, 0x40, 0, 0], // 40000 big-endian
        nla(6, 3),
        vec![0, 80, 0, 0],
    ]
    .concat();
    assert_eq!(bytes, expected);
}

/// An entry as the kernel sends it for a DNATed connection 10.199.1.1:40000 ->
/// 10.199.96.10:80 whose endpoint is 10.199.1.1:8080, with attributes around the tuples
/// that the lookup must skip (one of a type this crate version does not know).
fn v4_entry(seq: u32, kind: u16) -> Vec<u8> {
    let orig = v4_tuple([10, 199, 1, 1], [10, 199, 96, 10], 40000, 80);
    let reply = v4_tuple([10, 199, 1, 1], [10, 199, 1, 1], 8080, 40000);
    let body = [
        vec![2, 0, 0, 0],
        nla(52, 1 | NESTED),
        orig,
        nla(52, 2 | NESTED),
        reply,
        nla(8, 3), // CTA_STATUS
        0x18eu32.to_be_bytes().to_vec(),
        nla(8, 7), // CTA_TIMEOUT
        431_999u32.to_be_bytes().to_vec(),
        nla(8, 0x7f), // unknown to us
        vec![1, 2, 3, 4],
    ]
    .concat();
    let length = 16 + body.len() as u32;
    [nlmsghdr(length, kind, 0, seq), body].concat()
}

fn error_message(seq: u32, errno: i32) -> Vec<u8> {
    // struct nlmsgerr: the negative errno, then the offending request's header.
    [
        nlmsghdr(36, NLMSG_ERROR, 0, seq),
        (-errno).to_ne_bytes().to_vec(),
        nlmsghdr(72, 0x0101, 0x0001, seq),
    ]
    .concat()
}

/// Answers captured from this kernel (6.18) by the namespace test (netns_tests.rs): the GET for
/// 10.199.1.1:35198 -> 10.199.96.10:80 and for [fd00:199::2]:47014 -> [fd00:199:96::10]:80,
/// both DNATed to port 8080 of the first endpoint. Besides the tuples they carry CTA_STATUS,
/// CTA_MARK, CTA_ID, CTA_USE, CTA_TIMEOUT and CTA_PROTOINFO, which the lookup skips. The kernel
/// labels them IPCTNL_MSG_CT_NEW. Netlink headers are host byte order: little-endian here.
const CAPTURED_V4: &str = concat!(
    "d40000000001020001000000914a000002000000340001801400018008000100",
    "0ac70101080002000ac7600a1c000280050001000600000006000200897e0000",
    "06000300005000003400028014000180080001000ac70101080002000ac70101",
    "1c0002800500010006000000060002001f90000006000300897e000008000300",
    "000001ae080008000000000008000c00c45b159508000b000000000208000700",
    "00069780300004802c0001800500010003000000050002000a00000005000300",
    "0a00000006000400230000000600050023000000",
);
const CAPTURED_V6: &str = concat!(
    "040100000001020001000000914a00000a0000004c0001802c00018014000300",
    "fd00019900000000000000000000000214000400fd0001990096000000000000",
    "000000101c000280050001000600000006000200b7a600000600030000500000",
    "4c0002802c00018014000300fd00019900000000000000000000000114000400",
    "fd0001990000000000000000000000021c000280050001000600000006000200",
    "1f90000006000300b7a6000008000300000001ae080008000000000008000c00",
    "df2af87208000b00000000020800070000069780300004802c00018005000100",
    "03000000050002000a000000050003000a000000060004002300000006000500",
    "23000000",
);

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[cfg(target_endian = "little")]
#[test]
fn captured_kernel_answers_decode() {
    let v4_answer = hex(CAPTURED_V4);
    assert_eq!(v4_answer.len(), 212);
    assert_eq!(
        parse_datagram(&v4_answer, 1).unwrap(),
        Answer::Found(v4("10.199.1.1:8080"))
    );
    // Our own request for the same entry is what the kernel echoes back as the original tuple.
    let request = get_request(1, v4("10.199.1.1:35198"), v4("10.199.96.10:80"));
    assert_eq!(&request[16..], &v4_answer[16..72]);
    let v6_answer = hex(CAPTURED_V6);
    assert_eq!(
        parse_datagram(&v6_answer, 1).unwrap(),
        Answer::Found("[fd00:199::1]:8080".parse().unwrap())
    );
    assert_eq!(parse_datagram(&v6_answer, 2).unwrap(), Answer::NotOurs);
}

#[test]
fn entry_gives_the_reply_source() {
    for kind in [CT_NEW, CT_GET] {
        assert_eq!(
            parse_datagram(&v4_entry(5, kind), 5).unwrap(),
            Answer::Found(v4("10.199.1.1:8080"))
        );
    }
}

#[test]
fn answers_to_other_requests_are_skipped() {
    // A late answer to lookup 4 (which timed out), then ours in the same datagram.
    let datagram = [v4_entry(4, CT_NEW), error_message(5, libc::ENOENT)].concat();
    assert_eq!(parse_datagram(&datagram, 5).unwrap(), Answer::NoEntry);
    assert_eq!(
        parse_datagram(&v4_entry(4, CT_NEW), 5).unwrap(),
        Answer::NotOurs
    );
}

#[test]
fn kernel_errors_are_sorted() {
    let answer = |errno| parse_datagram(&error_message(9, errno), 9);
    assert_eq!(answer(libc::ENOENT).unwrap(), Answer::NoEntry);
    assert!(matches!(
        answer(libc::EPERM),
        Err(LookupError::Unavailable(Unavailable::Permission))
    ));
    for errno in [libc::EINVAL, libc::EOPNOTSUPP] {
        let error = answer(errno).unwrap_err();
        assert!(
            matches!(error, LookupError::Unavailable(Unavailable::NoCtnetlink(_))),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("nf_conntrack_netlink"),
            "{error}"
        );
    }
    assert!(matches!(answer(libc::ENOMEM), Err(LookupError::Kernel(_))));
    // An acknowledgement (code 0) is not the answer.
    assert_eq!(answer(0).unwrap(), Answer::NotOurs);
}

#[test]
fn open_errors_are_unavailable() {
    let open = |errno| open_error(std::io::Error::from_raw_os_error(errno));
    assert!(matches!(
        open(libc::EPROTONOSUPPORT),
        LookupError::Unavailable(Unavailable::NoNfnetlink)
    ));
    assert!(matches!(
        open(libc::EPERM),
        LookupError::Unavailable(Unavailable::Permission)
    ));
    assert!(matches!(
        open(libc::EMFILE),
        LookupError::Unavailable(Unavailable::Socket(_))
    ));
    assert!(open(libc::EPERM).to_string().contains("CAP_NET_ADMIN"));
}

#[test]
fn malformed_answers_are_errors_not_panics() {
    let entry = v4_entry(5, CT_NEW);
    // Cut inside the netlink header, the nfgenmsg, the original tuple, the reply tuple.
    for cut in [3, 17, 30, 100] {
        let mut truncated = entry[..cut].to_vec();
        if cut >= 16 {
            // Keep the header's length consistent with what is there.
            truncated[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
        }
        let result = parse_datagram(&truncated, 5);
        assert!(
            matches!(result, Err(LookupError::Malformed(_))),
            "cut at {cut}: {result:?}"
        );
    }
    // An entry without a reply tuple.
    let no_reply = [nlmsghdr(20, CT_NEW, 0, 5), vec![2, 0, 0, 0]].concat();
    assert!(matches!(
        parse_datagram(&no_reply, 5),
        Err(LookupError::Malformed(_))
    ));
}

#[test]
fn mapped_addresses_are_looked_up_as_ipv4_and_mixed_families_refused() {
    let mapped: SocketAddr = "[::ffff:10.199.96.10]:80".parse().unwrap();
    assert_eq!(unmapped(mapped), v4("10.199.96.10:80"));
    let v6: SocketAddr = "[fd00:199::1]:80".parse().unwrap();
    assert_eq!(unmapped(v6), v6);
    // No socket is needed to refuse a mixed pair; a lookup struct is, so only as root.
    if let Ok(mut lookup) = ConntrackLookup::open() {
        assert!(matches!(
            lookup.reply_source(v4("10.199.1.1:1"), v6),
            Err(LookupError::MixedFamilies { .. })
        ));
    }
}

#[test]
fn a_missing_answer_times_out_instead_of_hanging() {
    // Opening needs no privilege; nothing was sent, so no answer for this number will come.
    let mut lookup = ConntrackLookup::open().expect("NETLINK_NETFILTER socket");
    lookup.set_timeout(Duration::from_millis(50));
    let started = Instant::now();
    let result = lookup.receive(12345);
    let waited = started.elapsed();
    assert!(
        matches!(result, Err(LookupError::Timeout(t)) if t == Duration::from_millis(50)),
        "{result:?}"
    );
    assert!(
        waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
        "waited {waited:?}"
    );
}

#[test]
fn a_lookup_can_move_to_a_blocking_thread() {
    // Async callers hand it to spawn_blocking.
    fn send<T: Send + 'static>() {}
    send::<ConntrackLookup>();
}
