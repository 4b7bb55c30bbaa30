//! AF_PACKET sockets for the capture check: a cooked (SOCK_DGRAM) packet socket that receives
//! nothing until it is bound (protocol 0 at creation), so the classic BPF filter is in place
//! before the first packet is queued; receive with the kernel's timestamp, the link-layer
//! address information (for the pcap LINUX_SLL header) and the original length; and read the
//! kernel's drop counters (PACKET_STATISTICS).

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, SockFilter, Socket, Type};

/// ETH_P_ALL in network byte order, as sockaddr_ll and socket() want it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

pub struct PacketSocket {
    sock: Socket,
}

/// One received packet's metadata (the bytes are in the caller's buffer).
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Bytes stored in the buffer (at most the buffer's length and the filter's snap length).
    pub len: usize,
    /// Length of the packet on the wire (from the network header on, for a cooked socket).
    pub orig_len: usize,
    /// Interface the packet was seen on.
    pub ifindex: i32,
    /// PACKET_HOST, PACKET_OUTGOING... (sll_pkttype).
    pub pkttype: u8,
    /// ARPHRD_* of the interface (sll_hatype).
    pub hatype: u16,
    /// Link-layer protocol (ethertype), host order.
    pub protocol: u16,
    pub addr_len: u8,
    pub addr: [u8; 8],
    /// Kernel receive timestamp since the Unix epoch (SO_TIMESTAMPNS), when present.
    pub timestamp: Option<Duration>,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl PacketSocket {
    /// A cooked packet socket that receives nothing until [`PacketSocket::bind`].
    /// Fails with EPERM without CAP_NET_RAW.
    pub fn open_unbound() -> io::Result<PacketSocket> {
        // Protocol 0: no packet is queued before bind() names ETH_P_ALL, so nothing arrives
        // before the filter is attached.
        let sock = Socket::new(Domain::PACKET, Type::DGRAM, Some(0.into()))?;
        Ok(PacketSocket { sock })
    }

    /// Attach a classic BPF program (SO_ATTACH_FILTER); instructions as (code, jt, jf, k).
    pub fn attach_filter(&self, program: &[(u16, u8, u8, u32)]) -> io::Result<()> {
        let filters: Vec<SockFilter> = program
            .iter()
            .map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
            .collect();
        self.sock.attach_filter(&filters)
    }

    /// Start receiving every protocol on interface `ifindex` (0 = all interfaces).
    pub fn bind(&self, ifindex: u32) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL_BE;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: the pointer and length describe `sll`, which lives across the call.
        check(unsafe {
            libc::bind(
                self.sock.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
    }

    /// Ask for a receive queue of `bytes`: SO_RCVBUFFORCE (needs CAP_NET_ADMIN) goes past
    /// net.core.rmem_max; otherwise SO_RCVBUF, which the kernel caps. Returns the size granted.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<usize> {
        let value = bytes.min(i32::MAX as usize) as libc::c_int;
        // SAFETY: an int option with its exact size.
        let forced = unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            self.sock.set_recv_buffer_size(bytes)?;
        }
        self.sock.recv_buffer_size()
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.sock.set_read_timeout(Some(timeout))
    }

    /// Deliver the kernel's receive timestamp with each packet (SO_TIMESTAMPNS).
    pub fn enable_timestamps(&self) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: an int option with its exact size.
        check(unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        })
    }

    /// Receive one packet into `buf`. `Ok(None)` when the read timeout passed first.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        // SAFETY: plain data, zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for one SCM_TIMESTAMPNS control message (a timespec), 8-byte aligned.
        let mut control = [0u64; 8];
        // SAFETY: plain data, zero is valid.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>();
        // SAFETY: every pointer in `msg` refers to a live buffer of the stated length; MSG_TRUNC
        // makes the return value the packet's full length without writing past `buf`.
        let n = unsafe { libc::recvmsg(self.sock.as_raw_fd(), &mut msg, libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ok(None),
                io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let orig_len = n as usize;
        let mut timestamp = None;
        // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, bounded by
        // msg_controllen; the timespec is read unaligned from the message's data.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    timestamp = Some(Duration::new(
                        ts.tv_sec.max(0) as u64,
                        ts.tv_nsec.clamp(0, 999_999_999) as u32,
                    ));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok(Some(Received {
            len: orig_len.min(buf.len()),
            orig_len,
            ifindex: sll.sll_ifindex,
            pkttype: sll.sll_pkttype,
            hatype: sll.sll_hatype,
            protocol: u16::from_be(sll.sll_protocol),
            addr_len: sll.sll_halen,
            addr: sll.sll_addr,
            timestamp,
        }))
    }

    /// PACKET_STATISTICS since the last call (reading resets the kernel's counters):
    /// (packets that passed the filter, packets dropped for lack of queue space).
    pub fn statistics(&self) -> io::Result<(u32, u32)> {
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `stats`, which is that large.
        check(unsafe {
            libc::getsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        })?;
        Ok((stats.tp_packets, stats.tp_drops))
    }
}
