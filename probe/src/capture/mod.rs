//! Bounded packet capture: a cooked AF_PACKET socket with an in-kernel classic BPF filter and
//! a TPACKET_V3 receive ring, read on a blocking thread until a limit is reached, summarised
//! per flow and written out as a pcap stream in `pcap_chunk` events.
//!
//! Cooked (SOCK_DGRAM) on purpose, as `tcpdump -i any` does: the filter sees the network
//! header at offset 0 on every interface type (veth, loopback, tunnels without a link
//! header), one socket covers all interfaces, and the pcap is LINKTYPE_LINUX_SLL.

// The filter language and its compiler are shared with the client (which validates a filter
// before injecting anything): crate netdebug-filter.
pub use bpf_filter::{bpf, compile, filter};
mod flows;
mod ifnames;
mod pcap;

#[cfg(test)]
mod oracle_tests;

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use protocol::{CaptureStop, Event, PcapChunk};

use crate::emit::Emitter;
use crate::platform::packet::{PacketSocket, RingPacket, RxRing};

pub use flows::Summary;

/// pcap bytes per `pcap_chunk` event (about 43 KiB of base64 per line).
const CHUNK_SIZE: usize = 32 * 1024;
/// How often the reading thread looks at the clock and the stop flag when no packet comes:
/// a peer told `stop` answers within this (both ends wait for it), at 100 idle wake-ups a
/// second while a bounded capture runs.
const POLL: Duration = Duration::from_millis(10);
/// The receive ring: 32 blocks of 256 KiB (8 MiB; about 40,000 packets at the default snap
/// length), each handed to the reader when full or after `RING_RETIRE_MS`. Sized so a burst
/// rides out the reader being busy emitting (BENCHMARKS.md: a 4 MiB ring dropped 0.6 % of
/// an unpaced loopback flood on a loaded 2-CPU machine, 8 MiB none); it is most of the
/// probe's resident memory while capturing.
const RING_BLOCK_SIZE: u32 = 256 << 10;
const RING_BLOCKS: u32 = 32;
const RING_RETIRE_MS: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// socket(AF_PACKET) refused: no CAP_NET_RAW in this user namespace.
    #[error("the kernel refused an AF_PACKET socket ({0}): capture needs CAP_NET_RAW")]
    NotPermitted(io::Error),
    #[error("capture: {0}")]
    Other(String),
}

/// A filtering, bound capture socket and its receive ring.
pub struct Capture {
    socket: Arc<PacketSocket>,
    ring: RxRing,
}

/// Replaces the filter of a running capture (SO_ATTACH_FILTER swaps it atomically).
pub struct FilterHandle(Arc<PacketSocket>);

impl FilterHandle {
    /// Attach the first of `programs` the kernel accepts; returns its index.
    pub fn replace(&self, programs: &[Vec<bpf::Insn>]) -> Result<usize, String> {
        attach_first(&self.0, programs)
    }
}

/// Attach the first program the kernel accepts (a long one can exceed net.core.optmem_max,
/// which bounds a socket's filter memory); the error of the last one otherwise.
fn attach_first(socket: &PacketSocket, programs: &[Vec<bpf::Insn>]) -> Result<usize, String> {
    let mut last = String::from("no filter program to attach");
    for (i, program) in programs.iter().enumerate() {
        match socket.attach_filter(&raw_program(program)) {
            Ok(()) => return Ok(i),
            Err(e) => {
                let hint = if e.raw_os_error() == Some(libc::ENOMEM) {
                    " (the program is larger than net.core.optmem_max allows)"
                } else {
                    ""
                };
                last = format!("the kernel refused the filter program: {e}{hint}");
            }
        }
    }
    Err(last)
}

fn raw_program(program: &[bpf::Insn]) -> Vec<(u16, u8, u8, u32)> {
    program.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
}

impl Capture {
    /// Open a cooked packet socket, attach the first of `programs` the kernel accepts, then
    /// bind it to `ifindex` (0 = all interfaces). The socket is created with protocol 0, so it
    /// queues nothing before the bind and the first packet it sees has already passed the
    /// filter. Returns the capture and the index of the program in use.
    pub fn open(programs: &[Vec<bpf::Insn>], ifindex: u32) -> Result<(Capture, usize), OpenError> {
        let socket = PacketSocket::open_unbound().map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => OpenError::NotPermitted(e),
            _ => OpenError::Other(format!("cannot open an AF_PACKET socket: {e}")),
        })?;
        let chosen = attach_first(&socket, programs).map_err(OpenError::Other)?;
        let ring = socket
            .rx_ring(RING_BLOCK_SIZE, RING_BLOCKS, RING_RETIRE_MS)
            .map_err(|e| OpenError::Other(format!("cannot set up the receive ring: {e}")))?;
        socket
            .bind(ifindex)
            .map_err(|e| OpenError::Other(format!("cannot bind the capture socket: {e}")))?;
        Ok((
            Capture {
                socket: Arc::new(socket),
                ring,
            },
            chosen,
        ))
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
    /// The kernel's count of the packets that passed the filter (None: its statistics could
    /// not be read, `kernel_error` says why).
    pub kernel_received: Option<u64>,
    pub kernel_drops: u64,
    pub kernel_error: Option<String>,
    pub stopped_by: CaptureStop,
    pub summary: Summary,
}

/// An early end asked for from outside the reading thread: the traffic checks are done, or
/// the client sent `stop`. The first request counts.
#[derive(Default)]
pub struct StopRequest(AtomicU8);

const NOT_STOPPED: u8 = 0;
const STOP_TRAFFIC_DONE: u8 = 1;
const STOP_STOPPED: u8 = 2;

impl StopRequest {
    /// The traffic checks are done (and the linger has passed).
    pub fn traffic_done(&self) {
        self.request(STOP_TRAFFIC_DONE);
    }

    /// The client's `stop`.
    pub fn stopped(&self) {
        self.request(STOP_STOPPED);
    }

    fn request(&self, code: u8) {
        let _ = self
            .0
            .compare_exchange(NOT_STOPPED, code, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn requested(&self) -> Option<CaptureStop> {
        match self.0.load(Ordering::Relaxed) {
            STOP_TRAFFIC_DONE => Some(CaptureStop::TrafficDone),
            STOP_STOPPED => Some(CaptureStop::Stopped),
            _ => None,
        }
    }
}

/// Read until a limit or a `stop` request. Blocking: run it on a blocking thread.
pub fn run(
    capture: Capture,
    limits: Limits,
    stop: Arc<StopRequest>,
    emitter: Emitter,
) -> Result<Captured, String> {
    let Capture { socket, mut ring } = capture;
    let mut rec = Recorder {
        table: flows::FlowTable::default(),
        stream: limits
            .pcap
            .then(|| pcap::PcapStream::new(limits.snaplen, CHUNK_SIZE)),
        emitter,
        chunk_index: 0,
        packets: 0,
        bytes: 0,
        max_packets: limits.max_packets,
        max_bytes: limits.max_bytes,
        limit_reached: None,
    };
    let stopped_by = loop {
        if let Some(limit) = rec.limit_reached {
            break limit;
        }
        let now = Instant::now();
        if let Some(why) = stop.requested() {
            break why;
        }
        if now >= limits.deadline_end {
            break CaptureStop::Deadline;
        }
        if now >= limits.duration_end {
            break CaptureStop::Duration;
        }
        if ring.drain_block(|p| rec.record(p)) == 0 {
            let wait = POLL
                .min(limits.deadline_end.saturating_duration_since(now))
                .min(limits.duration_end.saturating_duration_since(now));
            socket
                .wait_readable(wait)
                .map_err(|e| format!("waiting for packets failed: {e}"))?;
        }
    };
    // Stopped by time: the kernel hands over the block it was filling when its retire timer
    // fires; collect it (and any other ready block) so the last packets are not lost. The
    // kernel's count says whether that block holds any: when every packet it queued has been
    // read, there is nothing to wait for (the wait cost every capture, and each end of a
    // both-ends run, up to two retire periods).
    let mut kernel = KernelCount::default();
    if rec.limit_reached.is_none() {
        let until = Instant::now() + Duration::from_millis(u64::from(RING_RETIRE_MS) * 2);
        loop {
            while rec.limit_reached.is_none() && ring.drain_block(|p| rec.record(p)) > 0 {}
            kernel.read(&socket);
            if rec.limit_reached.is_some()
                || kernel.all_read(rec.packets)
                || Instant::now() >= until
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    } else {
        kernel.read(&socket);
    }
    drop(ring);
    drop(socket);
    Ok(rec.finish(kernel, stopped_by))
}

/// The kernel's count of the packets that passed the filter, summed over reads: reading
/// `PACKET_STATISTICS` resets it. `received` includes the `drops` (a full ring).
#[derive(Debug, Default, PartialEq)]
struct KernelCount {
    received: u64,
    drops: u64,
    /// Why a read failed: the count is incomplete, and cannot say that nothing is pending.
    failed: Option<String>,
}

impl KernelCount {
    fn read(&mut self, socket: &PacketSocket) {
        match socket.statistics() {
            Ok((received, drops)) => self.add(received, drops),
            Err(e) => self.failed = Some(format!("the kernel's packet statistics: {e}")),
        }
    }

    fn add(&mut self, received: u32, drops: u32) {
        self.received += u64::from(received);
        self.drops += u64::from(drops);
    }

    /// Whether every packet the kernel put in the ring has been read (`read` of them).
    fn all_read(&self, read: u64) -> bool {
        self.failed.is_none() && read >= self.received.saturating_sub(self.drops)
    }
}

/// Accounts each packet: flow table, pcap stream (emitting full chunks), limits.
struct Recorder {
    table: flows::FlowTable,
    stream: Option<pcap::PcapStream>,
    emitter: Emitter,
    chunk_index: u32,
    packets: u64,
    bytes: u64,
    max_packets: u64,
    max_bytes: u64,
    limit_reached: Option<CaptureStop>,
}

impl Recorder {
    fn record(&mut self, p: &RingPacket<'_>) {
        if self.limit_reached.is_some() {
            // The rest of a block after a limit: not recorded.
            return;
        }
        self.packets += 1;
        self.bytes += p.data.len() as u64;
        self.table.add(
            p.timestamp,
            (p.ifindex, p.pkttype),
            p.protocol,
            p.data,
            p.orig_len,
        );
        if let Some(stream) = self.stream.as_mut() {
            let link = pcap::LinkInfo {
                pkttype: p.pkttype,
                hatype: p.hatype,
                protocol: p.protocol,
                addr_len: p.addr_len,
                addr: p.addr,
            };
            if let Some(chunk) = stream.push(p.timestamp, &link, p.data, p.orig_len) {
                self.emit_chunk(chunk);
            }
        }
        if self.packets >= self.max_packets {
            self.limit_reached = Some(CaptureStop::Packets);
        } else if self.bytes >= self.max_bytes {
            self.limit_reached = Some(CaptureStop::Bytes);
        }
    }

    fn emit_chunk(&mut self, chunk: pcap::Chunk) {
        self.emitter.emit(Event::PcapChunk(PcapChunk {
            index: self.chunk_index,
            packets: chunk.packets,
            data: base64::engine::general_purpose::STANDARD.encode(&chunk.bytes),
        }));
        self.chunk_index += 1;
    }

    fn finish(mut self, kernel: KernelCount, stopped_by: CaptureStop) -> Captured {
        if let Some(chunk) = self.stream.take().and_then(pcap::PcapStream::finish) {
            self.emit_chunk(chunk);
        }
        Captured {
            packets: self.packets,
            bytes: self.bytes,
            // A partial sum is no count: unknown rather than too small.
            kernel_received: kernel.failed.is_none().then_some(kernel.received),
            kernel_drops: kernel.drops,
            kernel_error: kernel.failed,
            stopped_by,
            summary: self.table.summary(),
        }
    }
}

#[cfg(test)]
mod stop_tests {
    use super::*;

    #[test]
    fn the_kernel_count_sums_its_resetting_reads_and_leaves_out_drops() {
        let mut k = KernelCount::default();
        k.add(10, 0);
        k.add(5, 2);
        assert_eq!((k.received, k.drops), (15, 2));
        // 13 were queued in the ring: 12 read means one waits in the block being filled.
        assert!(!k.all_read(12));
        assert!(k.all_read(13));
    }

    #[test]
    fn a_failed_read_never_says_nothing_is_pending() {
        let mut k = KernelCount::default();
        k.add(3, 0);
        k.failed = Some("EBADF".into());
        assert!(!k.all_read(3));
    }

    #[test]
    fn the_first_stop_request_counts() {
        let stop = StopRequest::default();
        assert_eq!(stop.requested(), None);
        stop.stopped();
        stop.traffic_done();
        assert_eq!(stop.requested(), Some(CaptureStop::Stopped));
    }
}
