//! The TCP socket table from sock_diag (NETLINK_SOCK_DIAG, `SOCK_DIAG_BY_FAMILY` dumps for
//! AF_INET and AF_INET6, every state): what `ss -tan` reads.
//!
//! Built for large tables (100,000+ sockets): one netlink socket with a large receive buffer,
//! no extensions requested (the kernel sends only the fixed `inet_diag_msg`), each message
//! parsed in place from the receive buffer (netlink-packet-core's `NetlinkBuffer` view and
//! sock-diag's zero-copy `InetResponseHeader` parse, attributes skipped), and every socket
//! handed to a visitor instead of being collected. Blocking: run it in `spawn_blocking`.

use std::net::SocketAddr;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, Parseable, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NetlinkAddr};

/// Receive buffer asked of the kernel: room for many dump batches while we parse (capped by
/// net.core.rmem_max; a smaller buffer only means more round trips).
const SOCKET_RCVBUF: i32 = 4 << 20;
/// Our read buffer. The kernel fills at most ~32 KiB per dump batch; 64 KiB leaves room.
const READ_BUF: usize = 64 << 10;
/// A dump that never ends would be a kernel bug; stop after this many reads (at 32 KiB per
/// read, room for over 100 million sockets) rather than loop forever.
const MAX_READS: usize = 4_000_000;

/// One TCP socket as the kernel reports it. Addresses are as reported (an AF_INET6 socket
/// talking IPv4 shows v4-mapped addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    /// Kernel TCP state number (`TCP_ESTABLISHED` = 1 ... `TCP_CLOSING` = 11).
    pub state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Listeners: connections waiting for accept(). Others: bytes not yet read.
    pub recv_q: u32,
    /// Listeners: the backlog. Others: bytes not yet acknowledged.
    pub send_q: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot open a NETLINK_SOCK_DIAG socket: {0}")]
    Open(std::io::Error),
    #[error("sock_diag {family} dump: {source}")]
    Io {
        family: &'static str,
        source: std::io::Error,
    },
    #[error("sock_diag {family} dump: the kernel answered {source}")]
    Kernel {
        family: &'static str,
        source: std::io::Error,
    },
    #[error("sock_diag {family} dump: malformed message: {message}")]
    Malformed {
        family: &'static str,
        message: String,
    },
    #[error("sock_diag {family} dump did not end after {MAX_READS} reads")]
    Endless { family: &'static str },
}

/// Dumps every TCP socket (IPv4 then IPv6) of the current network namespace, calling `visit`
/// once per socket. Returns the number of sockets seen.
pub fn dump_tcp(mut visit: impl FnMut(&TcpSocket)) -> Result<u64, DumpError> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(DumpError::Open)?;
    socket.bind_auto().map_err(DumpError::Open)?;
    socket
        .connect(&NetlinkAddr::new(0, 0))
        .map_err(DumpError::Open)?;
    // Best effort: a smaller buffer still works, with more reads.
    let _ = socket.set_rx_buf_sz(SOCKET_RCVBUF);
    let mut buf = vec![0u8; READ_BUF];
    let mut seen = 0;
    for (seq, family) in [(1, AF_INET), (2, AF_INET6)] {
        seen += dump_family(&socket, &mut buf, seq, family, &mut visit)?;
    }
    Ok(seen)
}

fn family_name(family: u8) -> &'static str {
    if family == AF_INET {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn request(seq: u32, family: u8) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            // Every state; the kernel adds request sockets (NEW_SYN_RECV) for SYN_RECV.
            states: StateFlags::all(),
            socket_id,
        })
        .into(),
    );
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

fn dump_family(
    socket: &Socket,
    buf: &mut [u8],
    seq: u32,
    family: u8,
    visit: &mut impl FnMut(&TcpSocket),
) -> Result<u64, DumpError> {
    let name = family_name(family);
    socket
        .send(&request(seq, family), 0)
        .map_err(|source| DumpError::Io {
            family: name,
            source,
        })?;
    let mut seen = 0;
    for _ in 0..MAX_READS {
        let len = {
            let mut window = &mut buf[..];
            match socket.recv(&mut window, 0) {
                Ok(len) => len,
                // A signal landed mid-read; nothing was consumed, read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(DumpError::Io {
                        family: name,
                        source,
                    })
                }
            }
        };
        let len = len.min(buf.len());
        match parse_batch(&buf[..len], seq, name, visit)? {
            Batch::More(n) => seen += n,
            Batch::Done(n) => return Ok(seen + n),
        }
    }
    Err(DumpError::Endless { family: name })
}

enum Batch {
    More(u64),
    Done(u64),
}

/// Parses one datagram of a dump: a run of netlink messages, each read in place.
fn parse_batch(
    mut bytes: &[u8],
    seq: u32,
    family: &'static str,
    visit: &mut impl FnMut(&TcpSocket),
) -> Result<Batch, DumpError> {
    let malformed = |message: String| DumpError::Malformed { family, message };
    let mut seen = 0;
    while !bytes.is_empty() {
        let message = NetlinkBuffer::new_checked(bytes).map_err(|e| malformed(e.to_string()))?;
        let length = message.length() as usize;
        if message.sequence_number() == seq {
            match message.message_type() {
                NLMSG_DONE => return Ok(Batch::Done(seen)),
                NLMSG_ERROR => {
                    let payload = message.payload();
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .ok_or_else(|| malformed("short error message".into()))?;
                    if code == 0 {
                        // An acknowledgement, not an error.
                        return Ok(Batch::Done(seen));
                    }
                    return Err(DumpError::Kernel {
                        family,
                        source: std::io::Error::from_raw_os_error(code.saturating_abs()),
                    });
                }
                SOCK_DIAG_BY_FAMILY => {
                    let header = InetResponseHeader::parse(message.payload())
                        .map_err(|e| malformed(e.to_string()))?;
                    let id = &header.socket_id;
                    visit(&TcpSocket {
                        state: header.state,
                        local: SocketAddr::new(id.source_address, id.source_port),
                        remote: SocketAddr::new(id.destination_address, id.destination_port),
                        recv_q: header.recv_queue,
                        send_q: header.send_queue,
                    });
                    seen += 1;
                }
                _ => {}
            }
        }
        // Messages are 4-byte aligned within a datagram.
        let advance = (length + 3) & !3;
        if advance == 0 || advance > bytes.len() {
            break;
        }
        bytes = &bytes[advance..];
    }
    Ok(Batch::More(seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_a_sock_diag_dump_for_tcp_in_every_state() {
        let bytes = request(7, AF_INET6);
        let message = NetlinkBuffer::new_checked(&bytes[..]).expect("well-formed");
        assert_eq!(message.message_type(), SOCK_DIAG_BY_FAMILY);
        assert_eq!(message.flags(), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(message.sequence_number(), 7);
        let payload = message.payload();
        assert_eq!(payload[0], AF_INET6);
        assert_eq!(payload[1], IPPROTO_TCP);
        assert_eq!(payload[2], 0, "no extensions requested");
        let states = u32::from_ne_bytes([payload[4], payload[5], payload[6], payload[7]]);
        assert_eq!(states, 0xffe, "TCP states 1..=11");
    }

    #[test]
    fn dump_reads_this_namespace_and_ends() {
        // The test process's own namespace: at least the listener we open is there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("bound").port();
        let mut found = false;
        let total = dump_tcp(|s| {
            found |= s.state == 10 && s.local.port() == port;
        })
        .expect("sock_diag works unprivileged");
        assert!(
            found,
            "our listener on port {port} is in the dump of {total}"
        );
    }
}
