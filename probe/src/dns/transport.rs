//! One DNS exchange with one server over UDP or TCP, bounded by a deadline. Hand-written on
//! tokio sockets rather than a resolver crate's client because the probe must see every
//! packet-level outcome (ICMP port unreachable, a reply with the wrong id, a timeout) instead
//! of a resolver's retry policy.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use super::wire::{match_reply, OutgoingQuery, Reply};

/// What came of one query.
#[derive(Debug, Clone, PartialEq)]
pub enum Exchange {
    Reply(Reply),
    Timeout,
    Error(String),
}

/// UDP or TCP: the protocol's own vocabulary, so the evidence needs no translation.
pub use protocol::DnsTransport as Transport;

pub async fn exchange(
    transport: Transport,
    server: SocketAddr,
    query: &OutgoingQuery,
    until: Instant,
) -> Exchange {
    let result = match transport {
        Transport::Udp => timeout_at(until, udp(server, query)).await,
        Transport::Tcp => timeout_at(until, tcp(server, query)).await,
    };
    match result {
        Err(_elapsed) => Exchange::Timeout,
        Ok(Ok(reply)) => Exchange::Reply(reply),
        Ok(Err(e)) => Exchange::Error(describe(&e)),
    }
}

/// A connected UDP socket, as glibc uses: an ICMP port unreachable then surfaces as
/// ECONNREFUSED on receive instead of a silent timeout. Replies that are not ours (id or
/// question differ) are ignored and the wait goes on.
async fn udp(server: SocketAddr, query: &OutgoingQuery) -> io::Result<Reply> {
    let socket = UdpSocket::bind(unspecified_for(server)).await?;
    socket.connect(server).await?;
    socket.send(&query.bytes).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await?;
        if let Some(reply) = match_reply(query, &buf[..n]) {
            return Ok(reply);
        }
    }
}

/// RFC 1035 4.2.2: each message is preceded by its length in two bytes.
async fn tcp(server: SocketAddr, query: &OutgoingQuery) -> io::Result<Reply> {
    let mut stream = TcpStream::connect(server).await?;
    let len = u16::try_from(query.bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too large"))?;
    let mut framed = Vec::with_capacity(query.bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&query.bytes);
    stream.write_all(&framed).await?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).await?;
        if let Some(reply) = match_reply(query, &buf) {
            return Ok(reply);
        }
    }
}

fn unspecified_for(server: SocketAddr) -> SocketAddr {
    match server.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (ICMP port unreachable or TCP reset: nothing listens on port 53)"
                .into()
        }
        io::ErrorKind::UnexpectedEof => "connection closed by the server before a reply".into(),
        _ => e.to_string(),
    }
}
