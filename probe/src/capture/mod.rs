//! Bounded packet capture: a cooked AF_PACKET socket with an in-kernel classic BPF filter,
//! read on a blocking thread until a limit is reached, summarised per flow and written out as
//! a pcap stream in `pcap_chunk` events.
//!
//! Cooked (SOCK_DGRAM) on purpose, as `tcpdump -i any` does: the filter sees the network
//! header at offset 0 on every interface type (veth, loopback, tunnels without a link
//! header), one socket covers all interfaces, and the pcap is LINKTYPE_LINUX_SLL.

pub mod bpf;
pub mod compile;
pub mod filter;
mod flows;
mod pcap;

#[cfg(test)]
mod oracle_tests;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use protocol::{Event, PcapChunk};

use crate::emit::Emitter;
use crate::platform::packet::PacketSocket;

pub use flows::Summary;

/// pcap bytes per `pcap_chunk` event (about 43 KiB of base64 per line).
const CHUNK_SIZE: usize = 32 * 1024;
/// How often the reading thread looks at the clock and the stop flag when no packet comes.
const POLL: Duration = Duration::from_millis(50);
/// Receive queue asked for, so a burst does not overflow while the thread is busy emitting.
const RECV_BUFFER: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// socket(AF_PACKET) refused: no CAP_NET_RAW in this user namespace.
    #[error("the kernel refused an AF_PACKET socket ({0}): capture needs CAP_NET_RAW")]
    NotPermitted(io::Error),
    #[error("capture: {0}")]
    Other(String),
}

/// A filtering, bound capture socket.
pub struct Capture {
    socket: Arc<PacketSocket>,
}

/// Replaces the filter of a running capture (SO_ATTACH_FILTER swaps it atomically).
pub struct FilterHandle(Arc<PacketSocket>);

impl FilterHandle {
    pub fn replace(&self, program: &[bpf::Insn]) -> Result<(), String> {
        self.0
            .attach_filter(&raw_program(program))
            .map_err(|e| format!("the kernel refused the filter program: {e}"))
    }
}

fn raw_program(program: &[bpf::Insn]) -> Vec<(u16, u8, u8, u32)> {
    program.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
}

impl Capture {
    /// Open a cooked packet socket, attach `program`, then bind it to `ifindex` (0 = all
    /// interfaces). The socket is created with protocol 0, so it queues nothing before the
    /// bind and the first packet it sees has already passed the filter.
    pub fn open(program: &[bpf::Insn], ifindex: u32) -> Result<Capture, OpenError> {
        let socket = PacketSocket::open_unbound().map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => OpenError::NotPermitted(e),
            _ => OpenError::Other(format!("cannot open an AF_PACKET socket: {e}")),
        })?;
        socket
            .attach_filter(&raw_program(program))
            .map_err(|e| OpenError::Other(format!("the kernel refused the filter program: {e}")))?;
        // Without a kernel timestamp the reader's clock is used instead.
        let _ = socket.enable_timestamps();
        let _ = socket.set_recv_buffer(RECV_BUFFER);
        socket
            .set_read_timeout(POLL)
            .map_err(|e| OpenError::Other(format!("cannot set a read timeout: {e}")))?;
        socket
            .bind(ifindex)
            .map_err(|e| OpenError::Other(format!("cannot bind the capture socket: {e}")))?;
        Ok(Capture {
            socket: Arc::new(socket),
        })
    }

    pub fn filter_handle(&self) -> FilterHandle {
        FilterHandle(self.socket.clone())
    }
}

/// Limits of one capture run.
pub struct Limits {
    pub snaplen: u32,
    pub max_packets: u64,
    pub max_bytes: u64,
    /// When the plan's duration ends.
    pub duration_end: Instant,
    /// When the run's deadline forces the end (a little before it, to emit the summary).
    pub deadline_end: Instant,
    /// Emit the packets as pcap_chunk events.
    pub pcap: bool,
}

/// What one run saw.
pub struct Captured {
    pub packets: u64,
    pub bytes: u64,
    pub kernel_received: u64,
    pub kernel_drops: u64,
    pub stopped_by: &'static str,
    pub summary: Summary,
}

/// Read until a limit or `stop` (set when the traffic checks are done). Blocking: run it on
/// a blocking thread.
pub fn run(
    capture: Capture,
    limits: Limits,
    stop: Arc<AtomicBool>,
    emitter: Emitter,
) -> Result<Captured, String> {
    let socket = capture.socket;
    let mut buf = vec![0u8; limits.snaplen as usize];
    let mut table = flows::FlowTable::default();
    let mut stream = limits
        .pcap
        .then(|| pcap::PcapStream::new(limits.snaplen, CHUNK_SIZE));
    let mut chunk_index = 0u32;
    let mut emit_chunk = |chunk: pcap::Chunk| {
        emitter.emit(Event::PcapChunk(PcapChunk {
            index: chunk_index,
            packets: chunk.packets,
            data: base64::engine::general_purpose::STANDARD.encode(&chunk.bytes),
        }));
        chunk_index += 1;
    };
    let (mut packets, mut bytes) = (0u64, 0u64);
    let stopped_by = loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) {
            break "traffic_done";
        }
        if now >= limits.deadline_end {
            break "deadline";
        }
        if now >= limits.duration_end {
            break "duration";
        }
        let received = match socket.recv(&mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => return Err(format!("reading the capture socket failed: {e}")),
        };
        let timestamp = received.timestamp.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
        });
        let data = &buf[..received.len];
        packets += 1;
        bytes += received.len as u64;
        let origin = (received.ifindex, received.pkttype);
        table.add(
            timestamp,
            origin,
            received.protocol,
            data,
            received.orig_len,
        );
        if let Some(stream) = stream.as_mut() {
            let link = pcap::LinkInfo {
                pkttype: received.pkttype,
                hatype: received.hatype,
                protocol: received.protocol,
                addr_len: received.addr_len,
                addr: received.addr,
            };
            if let Some(chunk) = stream.push(timestamp, &link, data, received.orig_len) {
                emit_chunk(chunk);
            }
        }
        if packets >= limits.max_packets {
            break "packets";
        }
        if bytes >= limits.max_bytes {
            break "bytes";
        }
    };
    let (received, drops) = socket.statistics().unwrap_or((0, 0));
    drop(socket);
    if let Some(chunk) = stream.and_then(pcap::PcapStream::finish) {
        emit_chunk(chunk);
    }
    Ok(Captured {
        packets,
        bytes,
        kernel_received: u64::from(received),
        kernel_drops: u64::from(drops),
        stopped_by,
        summary: table.summary(),
    })
}
