//! Socket options for path-MTU probing that neither socket2 nor nix wrap: IP(V6)_MTU_DISCOVER,
//! IPV6_MTU (nix has IP_MTU only) and TCP_INFO; plus reading the socket error queue
//! (IP_RECVERR) through nix, so the ICMP errors the kernel matched to our packets can be read.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};

/// How the kernel treats DF and the learned path MTU for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmtuMode {
    /// Set DF; refuse (EMSGSIZE) sends larger than the known path MTU, so a size the kernel
    /// already learned is too big shows as such instead of being sent again.
    Do,
}

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and its exact size is passed; the fd is borrowed, so open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// IP_MTU_DISCOVER / IPV6_MTU_DISCOVER.
pub fn set_mtu_discover(fd: impl AsFd, ipv6: bool, mode: PmtuMode) -> io::Result<()> {
    let fd = fd.as_fd();
    if ipv6 {
        let v = match mode {
            PmtuMode::Do => libc::IPV6_PMTUDISC_DO,
        };
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, v)
    } else {
        let v = match mode {
            PmtuMode::Do => libc::IP_PMTUDISC_DO,
        };
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, v)
    }
}

/// IP_MTU / IPV6_MTU: the path MTU the kernel currently uses for a connected socket.
pub fn path_mtu(fd: impl AsFd, ipv6: bool) -> io::Result<u32> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU)
    };
    getsockopt_int(fd.as_fd(), level, name).map(|v| v.max(0) as u32)
}

/// IP_RECVERR / IPV6_RECVERR: queue ICMP errors (and local send errors) on the error queue.
pub fn set_recv_errors(fd: impl AsFd, ipv6: bool) -> io::Result<()> {
    let fd = fd.as_fd();
    if ipv6 {
        setsockopt(&fd, sockopt::Ipv6RecvErr, &true).map_err(io::Error::from)
    } else {
        setsockopt(&fd, sockopt::Ipv4RecvErr, &true).map_err(io::Error::from)
    }
}

/// One entry of the socket error queue (`struct sock_extended_err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    pub errno: u32,
    /// SO_EE_ORIGIN_LOCAL (1), _ICMP (2), _ICMP6 (3).
    pub origin: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// For frag-needed / packet-too-big and local EMSGSIZE: the MTU.
    pub info: u32,
}

pub const ORIGIN_LOCAL: u8 = libc::SO_EE_ORIGIN_LOCAL;
pub const ORIGIN_ICMP: u8 = libc::SO_EE_ORIGIN_ICMP;
pub const ORIGIN_ICMP6: u8 = libc::SO_EE_ORIGIN_ICMP6;

/// Read one entry from the error queue without blocking; `None` when it is empty.
pub fn read_error_queue(fd: impl AsFd) -> io::Result<Option<QueuedError>> {
    let fd = fd.as_fd();
    let mut buf = [0u8; 2048];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = match recvmsg::<SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Ok(cmsgs) = msg.cmsgs() else {
        return Ok(None);
    };
    for c in cmsgs {
        let err = match c {
            ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => e,
            _ => continue,
        };
        return Ok(Some(QueuedError {
            errno: err.ee_errno,
            origin: err.ee_origin,
            icmp_type: err.ee_type,
            icmp_code: err.ee_code,
            info: err.ee_info,
        }));
    }
    Ok(None)
}

/// The TCP_INFO fields the MTU search reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpProgress {
    pub state: u8,
    pub retransmits: u8,
    /// TCPI_OPT_* bits (1 = timestamps).
    pub options: u8,
    pub snd_mss: u32,
    pub unacked: u32,
    pub pmtu: u32,
    pub total_retrans: u32,
    pub bytes_acked: u64,
}

pub const TCPI_OPT_TIMESTAMPS: u8 = 1;

/// getsockopt(TCP_INFO). Older kernels fill a shorter struct; the rest stays zero.
pub fn tcp_progress(fd: impl AsFd) -> io::Result<TcpProgress> {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpProgress {
        state: info.tcpi_state,
        retransmits: info.tcpi_retransmits,
        options: info.tcpi_options,
        snd_mss: info.tcpi_snd_mss,
        unacked: info.tcpi_unacked,
        pmtu: info.tcpi_pmtu,
        total_retrans: info.tcpi_total_retrans,
        bytes_acked: info.tcpi_bytes_acked,
    })
}

/// TCP_MAXSEG: clamp the MSS (set before connect, it is also what the SYN announces).
pub fn set_tcp_maxseg(fd: impl AsFd, mss: u32) -> io::Result<()> {
    setsockopt_int(
        fd.as_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_MAXSEG,
        mss as libc::c_int,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Socket, Type};

    #[test]
    fn loopback_tcp_progress_and_pmtu() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        set_tcp_maxseg(&s, 1000).unwrap();
        set_mtu_discover(&s, false, PmtuMode::Do).unwrap();
        set_recv_errors(&s, false).unwrap();
        s.connect(&addr.into()).unwrap();
        let p = tcp_progress(&s).unwrap();
        assert_eq!(p.state, 1, "ESTABLISHED");
        assert!(p.snd_mss <= 1000 && p.snd_mss > 0, "{p:?}");
        // The path MTU over loopback is the loopback interface's MTU, capped at the largest
        // IPv4 packet (IP_MAX_MTU, 65535).
        let lo_mtu: u32 = std::fs::read_to_string("/sys/class/net/lo/mtu")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(path_mtu(&s, false).unwrap(), lo_mtu.min(65535));
        assert_eq!(read_error_queue(&s).unwrap(), None);
    }
}
