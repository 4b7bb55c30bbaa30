//! The socket error queue (IP_RECVERR / IPV6_RECVERR, `ip(7)`): the ICMP error that ended a
//! TCP connect, with its type, code and sender. connect(2) alone reports only an errno, which
//! folds different claims together: ECONNREFUSED is a RST from the destination *or* an ICMP
//! port unreachable from any firewall on the path; EHOSTUNREACH is ICMP host unreachable,
//! host prohibited, admin prohibited or a TTL expiring in a loop.
//!
//! Safe Rust through nix: the option is set before connect, and the queue is drained
//! without blocking after a failed one.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use protocol::ConnectIcmp;

/// A failed connect queues one error; a few more are read at most, so a socket that keeps
/// receiving errors cannot hold the check.
const MAX_ENTRIES: usize = 8;

/// Ask the kernel to queue ICMP errors on this socket; must be set before connect.
pub fn enable(socket: &impl AsFd, v6: bool) -> io::Result<()> {
    let set = if v6 {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true)
    };
    set.map_err(io::Error::from)
}

/// Drain the queue without waiting; the first ICMP error in it (the one that ended the
/// connect), if any. Local errors (SO_EE_ORIGIN_LOCAL) are read and ignored.
pub fn first_icmp(socket: &impl AsRawFd) -> Option<ConnectIcmp> {
    let mut first = None;
    for _ in 0..MAX_ENTRIES {
        match next_entry(socket) {
            Some(entry) => {
                if first.is_none() {
                    first = entry;
                }
            }
            None => break,
        }
    }
    first
}

/// One queued error: `Some(Some(icmp))`, `Some(None)` for a non-ICMP entry, `None` when the
/// queue is empty (EAGAIN) or cannot be read.
fn next_entry(socket: &impl AsRawFd) -> Option<Option<ConnectIcmp>> {
    // The payload is the quoted packet that caused the error; its headers are not needed,
    // and a short buffer only truncates it (MSG_TRUNC).
    let mut payload = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut control = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    let icmp = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::Ipv4RecvErr(ee, from) if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP => {
            let from = from
                .filter(|a| i32::from(a.sin_family) == libc::AF_INET)
                .map(|a| IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))));
            Some(ConnectIcmp::new(false, ee.ee_type, ee.ee_code, from))
        }
        ControlMessageOwned::Ipv6RecvErr(ee, from) if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6 => {
            let from = from
                .filter(|a| i32::from(a.sin6_family) == libc::AF_INET6)
                .map(|a| IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)));
            Some(ConnectIcmp::new(true, ee.ee_type, ee.ee_code, from))
        }
        _ => None,
    });
    Some(icmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Socket, Type};

    #[test]
    fn empty_queue_reads_as_nothing_without_blocking() {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        enable(&s, false).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(first_icmp(&s), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let s6 = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP));
        // A host without IPv6 cannot make the socket; nothing to test there.
        if let Ok(s6) = s6 {
            enable(&s6, true).unwrap();
            assert_eq!(first_icmp(&s6), None);
        }
    }

    #[test]
    fn a_rst_queues_no_icmp_error() {
        // A port bound but not listening answers a SYN with RST: ECONNREFUSED, empty queue.
        let holder = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        holder
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        let addr = holder.local_addr().unwrap();
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        enable(&s, false).unwrap();
        let err = s.connect(&addr).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
        assert_eq!(first_icmp(&s), None);
    }

    #[test]
    fn loopback_port_unreachable_is_read_with_its_sender() {
        // UDP to a closed loopback port: the kernel answers with ICMP 3/3 from 127.0.0.1,
        // queued on the sending socket. The same parsing serves a TCP connect.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = closed.local_addr().unwrap();
        drop(closed);
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        enable(&s, false).unwrap();
        s.connect(&to.into()).unwrap();
        s.send(b"x").unwrap();
        let mut icmp = None;
        for _ in 0..50 {
            icmp = first_icmp(&s);
            if icmp.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let icmp = icmp.expect("an ICMP port unreachable in the error queue");
        assert_eq!((icmp.icmp_type, icmp.code), (3, 3));
        assert_eq!(icmp.meaning, protocol::IcmpMeaning::PortUnreachable);
        assert_eq!(icmp.family, protocol::Family::Inet);
        assert_eq!(icmp.from, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(first_icmp(&s), None, "the queue was drained");
    }
}
