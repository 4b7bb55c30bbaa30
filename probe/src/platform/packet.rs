//! AF_PACKET sockets for the capture check: a cooked (SOCK_DGRAM) packet socket that receives
//! nothing until it is bound (protocol 0 at creation), so the classic BPF filter is in place
//! before the first packet is queued; a TPACKET_V3 receive ring (what libpcap uses: the kernel
//! writes packets, cut to the filter's snap length, into shared memory, and the reader walks
//! whole blocks without a system call per packet); and the kernel's drop counters
//! (PACKET_STATISTICS).

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use socket2::{Domain, SockFilter, Socket, Type};

/// ETH_P_ALL in network byte order, as sockaddr_ll and socket() want it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();
/// Where the sockaddr_ll sits after each packet's tpacket3_hdr (TPACKET_ALIGN of its size).
const SLL_OFFSET: usize = (size_of::<libc::tpacket3_hdr>() + libc::TPACKET_ALIGNMENT - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);

pub struct PacketSocket {
    sock: Socket,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// setsockopt with a plain-data value.
fn set_option<T>(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live T and its exact size is passed; T is plain data.
    check(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
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

    /// Attach (or replace, atomically) a classic BPF program (SO_ATTACH_FILTER); instructions
    /// as (code, jt, jf, k).
    pub fn attach_filter(&self, program: &[(u16, u8, u8, u32)]) -> io::Result<()> {
        let filters: Vec<SockFilter> = program
            .iter()
            .map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k))
            .collect();
        self.sock.attach_filter(&filters)
    }

    /// Set up and map a TPACKET_V3 receive ring of `blocks` blocks of `block_size` bytes (a
    /// multiple of the page size); a block goes to the reader when full or after `retire_ms`.
    pub fn rx_ring(&self, block_size: u32, blocks: u32, retire_ms: u32) -> io::Result<RxRing> {
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_option(&self.sock, libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
        // Frames do not apply to V3 (packets are packed in blocks) but must be consistent.
        let frame_size = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size,
            tp_block_nr: blocks,
            tp_frame_size: frame_size,
            tp_frame_nr: block_size / frame_size * blocks,
            tp_retire_blk_tov: retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(&self.sock, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let len = block_size as usize * blocks as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket; the mapping is
        // checked below and unmapped when the RxRing drops.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.sock.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(RxRing {
            base: NonNull::new(base.cast())
                .ok_or_else(|| io::Error::other("mmap returned null"))?,
            len,
            block_size: block_size as usize,
            blocks: blocks as usize,
            next: 0,
        })
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

    /// Wait until a block may be ready, at most `timeout`.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one live pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    /// PACKET_STATISTICS since the last call (reading resets the kernel's counters):
    /// (packets that passed the filter, packets dropped because the ring was full).
    pub fn statistics(&self) -> io::Result<(u32, u32)> {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `stats`, which is that large.
        check(unsafe {
            libc::getsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        })?;
        Ok((stats.tp_packets, stats.tp_drops))
    }
}

/// One packet in the ring, valid while the callback runs.
pub struct RingPacket<'a> {
    /// From the network header on, at most the filter's snap length.
    pub data: &'a [u8],
    /// Length on the wire from the network header on.
    pub orig_len: usize,
    /// Kernel receive time since the Unix epoch.
    pub timestamp: Duration,
    pub ifindex: i32,
    /// PACKET_HOST, PACKET_OUTGOING... (sll_pkttype).
    pub pkttype: u8,
    /// ARPHRD_* of the interface (sll_hatype).
    pub hatype: u16,
    /// Link-layer protocol (ethertype), host order.
    pub protocol: u16,
    pub addr_len: u8,
    pub addr: [u8; 8],
}

/// A mapped TPACKET_V3 receive ring.
pub struct RxRing {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    blocks: usize,
    next: usize,
}

// SAFETY: the ring is plain shared memory; the RxRing is its only user-space accessor and is
// used by one thread at a time (&mut self).
unsafe impl Send for RxRing {}

impl RxRing {
    /// If the next block is ready, hand each of its packets to `f`, then give the block back
    /// to the kernel. Returns 0 when no block was ready, else the packets handed over (at
    /// least 1, so an empty retired block still counts as progress).
    pub fn drain_block(&mut self, mut f: impl FnMut(&RingPacket<'_>)) -> usize {
        // SAFETY: `next < blocks`, so the block lies inside the mapping. The block descriptor
        // and packet headers are written by the kernel before it sets TP_STATUS_USER (read
        // with acquire ordering); until we store TP_STATUS_KERNEL the block is ours alone.
        // Every offset read from the kernel is bounds-checked against the block.
        unsafe {
            let block = self.base.as_ptr().add(self.next * self.block_size);
            let desc = block.cast::<libc::tpacket_block_desc>();
            let status_ptr = std::ptr::addr_of_mut!((*desc).hdr.bh1.block_status);
            let status = std::ptr::read_volatile(status_ptr);
            if status & libc::TP_STATUS_USER == 0 {
                return 0;
            }
            fence(Ordering::Acquire);
            let bh1 = std::ptr::read_volatile(std::ptr::addr_of!((*desc).hdr.bh1));
            let mut offset = bh1.offset_to_first_pkt as usize;
            let mut seen = 0;
            for _ in 0..bh1.num_pkts {
                if offset + SLL_OFFSET + size_of::<libc::sockaddr_ll>() > self.block_size {
                    break;
                }
                let hdr = std::ptr::read_unaligned(block.add(offset).cast::<libc::tpacket3_hdr>());
                let sll = std::ptr::read_unaligned(
                    block.add(offset + SLL_OFFSET).cast::<libc::sockaddr_ll>(),
                );
                let start = offset + usize::from(hdr.tp_net);
                let end = start + hdr.tp_snaplen as usize;
                if end > self.block_size {
                    break;
                }
                let data = std::slice::from_raw_parts(block.add(start), end - start);
                f(&RingPacket {
                    data,
                    orig_len: hdr.tp_len as usize,
                    timestamp: Duration::new(u64::from(hdr.tp_sec), hdr.tp_nsec.min(999_999_999)),
                    ifindex: sll.sll_ifindex,
                    pkttype: sll.sll_pkttype,
                    hatype: sll.sll_hatype,
                    protocol: u16::from_be(sll.sll_protocol),
                    addr_len: sll.sll_halen,
                    addr: sll.sll_addr,
                });
                seen += 1;
                if hdr.tp_next_offset == 0 {
                    break;
                }
                offset += hdr.tp_next_offset as usize;
            }
            fence(Ordering::Release);
            std::ptr::write_volatile(status_ptr, libc::TP_STATUS_KERNEL);
            self.next = (self.next + 1) % self.blocks;
            seen.max(1)
        }
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `rx_ring`, once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
