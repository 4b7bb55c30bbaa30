//! Which endpoint did the dataplane pick? One conntrack entry, looked up by its original
//! tuple over ctnetlink (NETLINK_NETFILTER, `IPCTNL_MSG_CT_GET`): the reply direction's source
//! is where a DNAT (kube-proxy's ClusterIP rules, or any other) really sent the connection.
//!
//! Repeated connects to a ClusterIP then say which backend each attempt reached, where the
//! DNAT happens in the probe's own network namespace: on a node (`kubectl-netdebug local`,
//! where kube-proxy's entries live) or in a namespace with its own DNAT. In a pod's namespace
//! the DNAT usually happens on the node, so there is no entry to find and the answer is
//! `Ok(None)`.
//!
//! Why ctnetlink and not the `conntrack` binary: the probe is one static binary that may run
//! where no tools are installed, and a lookup per connect attempt (thousands per run) must be
//! cheap: one request and one answer on a socket kept open, no process per attempt.
//!
//! Why `netlink-packet-netfilter`: it is maintained with the other rust-netlink crates the
//! probe uses (same netlink-packet-core) and it encodes and decodes the ctnetlink tuple
//! attributes. Only the CTA_TUPLE_REPLY attribute of an answer is decoded with it; the rest
//! is skipped unparsed, so a kernel that adds or changes other attributes cannot break us.
//!
//! Blocking: every wait is bounded by the lookup's timeout. Async callers run it in
//! `spawn_blocking`. Needs CAP_NET_ADMIN in the namespace (the kernel checks it for every
//! nfnetlink message); without it [`LookupError::Unavailable`] says so.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlaBuffer, NlasIterator,
    Parseable, NLMSG_ERROR, NLM_F_REQUEST,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple,
};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr as NetlinkAddr};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW`: how the kernel labels a conntrack entry.
const CT_NEW: u16 = 1 << 8;
/// `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET`: the request, and the label of the answer
/// to a single-entry GET on current kernels.
const CT_GET: u16 = (1 << 8) | 1;
/// The `nfgenmsg` header (family, version, resource id) that starts every nfnetlink payload.
const NFGENMSG_LEN: usize = 4;
/// `CTA_TUPLE_REPLY`: the tuple of the reply direction, after NAT.
const CTA_TUPLE_REPLY: u16 = 2;
/// One conntrack entry is a few hundred bytes; room for several messages in one datagram.
const READ_BUF: usize = 16 << 10;

/// Why lookups cannot work here at all. Each lookup would fail the same way, so a caller says
/// "cannot attribute: {this}" once and stops asking.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// The kernel checks CAP_NET_ADMIN (in the namespace's user namespace) for every
    /// nfnetlink message, reads included.
    #[error("reading conntrack entries needs CAP_NET_ADMIN, which the probe does not have here")]
    Permission,
    /// socket(AF_NETLINK, NETLINK_NETFILTER) was refused: nfnetlink is not built or loaded.
    #[error(
        "the kernel has no netfilter netlink (NETLINK_NETFILTER sockets are not supported: \
         nfnetlink is not loaded)"
    )]
    NoNfnetlink,
    /// nfnetlink is there but has no ctnetlink subsystem: it answers EINVAL (older kernels
    /// and batch paths EOPNOTSUPP) to a well-formed request when `nf_conntrack_netlink`
    /// is not loaded and cannot be autoloaded.
    #[error(
        "the kernel's conntrack netlink interface is missing (nf_conntrack_netlink is not \
         loaded; the kernel answered: {0})"
    )]
    NoCtnetlink(std::io::Error),
    /// Any other failure to open or bind the socket (out of file descriptors, seccomp...).
    #[error("cannot open a NETLINK_NETFILTER socket: {0}")]
    Socket(std::io::Error),
}

/// A failed lookup. Only [`LookupError::Unavailable`] is permanent; the others concern one
/// lookup and the next may work.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// No answer within the lookup's timeout (the kernel answers from memory at once, so
    /// this means something is badly wrong, but it must not hang a round).
    #[error("no answer from ctnetlink within {0:?}")]
    Timeout(Duration),
    #[error("ctnetlink socket: {0}")]
    Io(std::io::Error),
    /// The kernel refused the request for another reason than "no entry".
    #[error("ctnetlink answered: {0}")]
    Kernel(std::io::Error),
    #[error("malformed ctnetlink answer: {0}")]
    Malformed(String),
    /// A conntrack tuple is IPv4 or IPv6 on both ends.
    #[error("cannot look up {src} -> {dst}: one is IPv4, the other IPv6")]
    MixedFamilies { src: SocketAddr, dst: SocketAddr },
}

/// A NETLINK_NETFILTER socket kept open for many lookups in the current network namespace
/// (the one of the thread that calls [`ConntrackLookup::open`]).
pub struct ConntrackLookup {
    socket: Socket,
    sequence: u32,
    timeout: Duration,
    buf: Vec<u8>,
}

impl ConntrackLookup {
    /// Bound on one lookup: the kernel answers at once, so this only matters when it does not.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// Opens and binds the socket. Fails with [`LookupError::Unavailable`] when the kernel has
    /// no NETLINK_NETFILTER; missing permission or a missing ctnetlink module only show at the
    /// first lookup (the kernel checks them per message).
    pub fn open() -> Result<ConntrackLookup, LookupError> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(open_error)?;
        socket.bind_auto().map_err(open_error)?;
        socket
            .connect(&NetlinkAddr::new(0, 0))
            .map_err(open_error)?;
        Ok(ConntrackLookup {
            socket,
            sequence: 0,
            timeout: Self::DEFAULT_TIMEOUT,
            buf: vec![0; READ_BUF],
        })
    }

    /// Changes the bound on each later lookup.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The reply-direction source of the TCP connection `original_src -> original_dst`, as
    /// the kernel tracks it: the endpoint a DNAT chose, or `original_dst` itself when the
    /// connection was not DNATed. `Ok(None)` when there is no such entry (expired, never
    /// tracked, or NATed elsewhere). IPv4-mapped IPv6 addresses are looked up as IPv4 (that is
    /// how the kernel tracks them), so the answer is then IPv4.
    pub fn reply_source(
        &mut self,
        original_src: SocketAddr,
        original_dst: SocketAddr,
    ) -> Result<Option<SocketAddr>, LookupError> {
        let (src, dst) = (unmapped(original_src), unmapped(original_dst));
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(LookupError::MixedFamilies { src, dst });
        }
        // Never 0, and different from the previous lookup's: a late answer to a lookup that
        // timed out is recognised and skipped.
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let seq = self.sequence;
        self.socket
            .send(&get_request(seq, src, dst), 0)
            .map_err(LookupError::Io)?;
        self.receive(seq)
    }

    /// Reads until the answer to `seq` arrives or the timeout passes.
    fn receive(&mut self, seq: u32) -> Result<Option<SocketAddr>, LookupError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(LookupError::Timeout(self.timeout));
            }
            if !self.wait_readable(remaining)? {
                continue;
            }
            let len = match self.socket.recv(&mut &mut self.buf[..], libc::MSG_DONTWAIT) {
                Ok(len) => len.min(self.buf.len()),
                Err(e) => match e.kind() {
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock => continue,
                    _ => return Err(LookupError::Io(e)),
                },
            };
            match parse_datagram(&self.buf[..len], seq)? {
                Answer::Found(source) => return Ok(Some(source)),
                Answer::NoEntry => return Ok(None),
                Answer::NotOurs => continue,
            }
        }
    }

    /// Waits up to `remaining` for a datagram; `false` on timeout or a signal.
    fn wait_readable(&self, remaining: Duration) -> Result<bool, LookupError> {
        // Rounded up: a sub-millisecond rest must not become a 0 ms busy poll.
        let millis = remaining.as_micros().div_ceil(1000);
        let timeout = PollTimeout::from(u16::try_from(millis).unwrap_or(u16::MAX));
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(ready) => Ok(ready > 0),
            Err(Errno::EINTR) => Ok(false),
            Err(e) => Err(LookupError::Io(e.into())),
        }
    }
}

/// One lookup on a socket of its own. For a single question (the tests'); repeated lookups
/// keep a [`ConntrackLookup`] instead of opening a socket each time.
#[cfg(test)]
pub fn reply_source(
    original_src: SocketAddr,
    original_dst: SocketAddr,
) -> Result<Option<SocketAddr>, LookupError> {
    ConntrackLookup::open()?.reply_source(original_src, original_dst)
}

fn open_error(e: std::io::Error) -> LookupError {
    let reason = match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
        Errno::EPROTONOSUPPORT | Errno::EAFNOSUPPORT => Unavailable::NoNfnetlink,
        Errno::EPERM | Errno::EACCES => Unavailable::Permission,
        _ => Unavailable::Socket(e),
    };
    LookupError::Unavailable(reason)
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from a dual-stack socket) as IPv4.
fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// IPCTNL_MSG_CT_GET for the TCP entry whose original tuple is `src -> dst` (same family):
/// nfgenmsg { family, NFNETLINK_V0, res_id 0 }, then CTA_TUPLE_ORIG { CTA_TUPLE_IP { src,
/// dst }, CTA_TUPLE_PROTO { CTA_PROTO_NUM 6, source port, destination port } }, addresses and
/// ports in network byte order. No NLM_F_ACK: the answer is the entry or an error, never both.
fn get_request(seq: u32, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() {
        NetfilterProtoFamily::IPv4
    } else {
        NetfilterProtoFamily::IPv6
    };
    let tuple = vec![
        Tuple::Ip(vec![
            IPTuple::SourceAddress(src.ip()),
            IPTuple::DestinationAddress(dst.ip()),
        ]),
        Tuple::Proto(vec![
            ProtoTuple::Protocol(Protocol::Tcp),
            ProtoTuple::SourcePort(src.port()),
            ProtoTuple::DestinationPort(dst.port()),
        ]),
    ];
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(
        header,
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(family, 0, 0),
            ConntrackMessage::Get(vec![ConntrackAttribute::CtaTupleOrig(tuple)]),
        )),
    );
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// What one datagram said about the request with sequence number `seq`.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The entry; its reply-direction source.
    Found(SocketAddr),
    /// ENOENT: no entry with that original tuple.
    NoEntry,
    /// Nothing for `seq` (a late answer to an earlier lookup that timed out).
    NotOurs,
}

/// Parses one datagram: a run of netlink messages, 4-byte aligned.
fn parse_datagram(mut bytes: &[u8], seq: u32) -> Result<Answer, LookupError> {
    while !bytes.is_empty() {
        let message = NetlinkBuffer::new_checked(bytes).map_err(malformed)?;
        if message.sequence_number() == seq {
            match message.message_type() {
                NLMSG_ERROR => {
                    let code = message
                        .payload()
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .ok_or_else(|| malformed("short error message"))?;
                    // 0 would be an acknowledgement, which we did not ask for; keep reading.
                    if code != 0 {
                        return kernel_error(code.saturating_abs());
                    }
                }
                CT_NEW | CT_GET => return reply_tuple_source(message.payload()).map(Answer::Found),
                _ => {}
            }
        }
        let advance = (message.length() as usize + 3) & !3;
        if advance == 0 || advance > bytes.len() {
            break;
        }
        bytes = &bytes[advance..];
    }
    Ok(Answer::NotOurs)
}

/// The kernel's refusal, sorted into "no entry", "cannot work here" and "this one failed".
fn kernel_error(errno: i32) -> Result<Answer, LookupError> {
    let error = std::io::Error::from_raw_os_error(errno);
    match Errno::from_raw(errno) {
        Errno::ENOENT => Ok(Answer::NoEntry),
        Errno::EPERM | Errno::EACCES => Err(Unavailable::Permission.into()),
        // Our request is well-formed (see the tests), so EINVAL means what nfnetlink answers
        // for a subsystem it does not have.
        Errno::EINVAL | Errno::EOPNOTSUPP | Errno::EPROTONOSUPPORT => {
            Err(Unavailable::NoCtnetlink(error).into())
        }
        _ => Err(LookupError::Kernel(error)),
    }
}

/// The source address and port of CTA_TUPLE_REPLY in a conntrack message's payload (after
/// the nfgenmsg header). Other attributes are skipped without being parsed.
fn reply_tuple_source(payload: &[u8]) -> Result<SocketAddr, LookupError> {
    let attributes = payload
        .get(NFGENMSG_LEN..)
        .ok_or_else(|| malformed("no nfgenmsg header"))?;
    for attribute in NlasIterator::new(attributes) {
        let attribute: NlaBuffer<&[u8]> = attribute.map_err(malformed)?;
        if attribute.kind() != CTA_TUPLE_REPLY {
            continue;
        }
        return match ConntrackAttribute::parse(&attribute).map_err(malformed)? {
            ConntrackAttribute::CtaTupleReply(tuple) => tuple_source(&tuple),
            other => Err(malformed(format!("CTA_TUPLE_REPLY parsed as {other:?}"))),
        };
    }
    Err(malformed("the entry has no CTA_TUPLE_REPLY"))
}

fn tuple_source(tuple: &[Tuple]) -> Result<SocketAddr, LookupError> {
    let mut address = None;
    let mut port = None;
    for part in tuple {
        match part {
            Tuple::Ip(ips) => {
                for ip in ips {
                    if let IPTuple::SourceAddress(a) = ip {
                        address = Some(*a);
                    }
                }
            }
            Tuple::Proto(protos) => {
                for proto in protos {
                    if let ProtoTuple::SourcePort(p) = proto {
                        port = Some(*p);
                    }
                }
            }
            _ => {}
        }
    }
    match (address, port) {
        (Some(address), Some(port)) => Ok(SocketAddr::new(address, port)),
        _ => Err(malformed(format!(
            "CTA_TUPLE_REPLY without a source address and port: {tuple:?}"
        ))),
    }
}

fn malformed(e: impl std::fmt::Display) -> LookupError {
    LookupError::Malformed(e.to_string())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod netns_tests;
