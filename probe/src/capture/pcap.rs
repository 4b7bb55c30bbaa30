//! The capture as a classic pcap stream (LINKTYPE_LINUX_SLL, what `tcpdump -i any -w` writes),
//! built in memory with pcap-file and handed out in chunks, so the `pcap_chunk` events
//! concatenate into a file Wireshark and tcpdump read.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

/// The LINUX_SLL pseudo-header in front of every record.
pub const SLL_HEADER_LEN: usize = 16;

/// Link-layer information of a cooked packet, for the SLL header.
#[derive(Debug, Clone, Copy)]
pub struct LinkInfo {
    pub pkttype: u8,
    pub hatype: u16,
    pub protocol: u16,
    pub addr_len: u8,
    pub addr: [u8; 8],
}

pub struct PcapStream {
    writer: PcapWriter<Sink>,
    buf: Arc<Mutex<Vec<u8>>>,
    packets_in_buf: u32,
    chunk_size: usize,
    /// One record (SLL header + packet), reused.
    scratch: Vec<u8>,
}

/// One piece of the stream, ready to emit.
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub packets: u32,
}

/// pcap-file writes into an owned writer it gives back only at the end; this one shares its
/// buffer so full chunks can be taken out while the capture runs.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lock(buf: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    buf.lock().unwrap_or_else(|p| p.into_inner())
}

impl PcapStream {
    /// `snaplen` counts from the network header; the file's snaplen adds the SLL header.
    pub fn new(snaplen: u32, chunk_size: usize) -> PcapStream {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: snaplen + SLL_HEADER_LEN as u32,
            datalink: DataLink::LINUX_SLL,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
        };
        let buf = Arc::new(Mutex::new(Vec::with_capacity(
            chunk_size.min(1 << 16) + 512,
        )));
        let writer = PcapWriter::with_header(Sink(buf.clone()), header)
            .expect("writing to memory cannot fail");
        PcapStream {
            writer,
            buf,
            packets_in_buf: 0,
            chunk_size,
            scratch: Vec::with_capacity(SLL_HEADER_LEN + snaplen as usize),
        }
    }

    /// Append one packet (`data` from the network header on, `orig_len` its length on the
    /// wire). Returns a full chunk when the buffer reached the chunk size.
    pub fn push(
        &mut self,
        timestamp: Duration,
        link: &LinkInfo,
        data: &[u8],
        orig_len: usize,
    ) -> Option<Chunk> {
        let record = &mut self.scratch;
        record.clear();
        record.extend_from_slice(&u16::from(link.pkttype).to_be_bytes());
        record.extend_from_slice(&link.hatype.to_be_bytes());
        record.extend_from_slice(&u16::from(link.addr_len).to_be_bytes());
        record.extend_from_slice(&link.addr);
        record.extend_from_slice(&link.protocol.to_be_bytes());
        record.extend_from_slice(data);
        let packet = PcapPacket::new(timestamp, (orig_len + SLL_HEADER_LEN) as u32, record);
        // Only a record longer than the snaplen can fail, and the kernel never returns more
        // than the filter's snap length.
        if self.writer.write_packet(&packet).is_ok() {
            self.packets_in_buf += 1;
        }
        let full = lock(&self.buf).len() >= self.chunk_size;
        full.then(|| self.take())
    }

    /// Whatever is still buffered (the header alone for an empty capture).
    pub fn finish(mut self) -> Option<Chunk> {
        let pending = !lock(&self.buf).is_empty();
        pending.then(|| self.take())
    }

    fn take(&mut self) -> Chunk {
        let bytes = std::mem::replace(
            &mut *lock(&self.buf),
            Vec::with_capacity(self.chunk_size.min(1 << 16) + 512),
        );
        Chunk {
            bytes,
            packets: std::mem::take(&mut self.packets_in_buf),
        }
    }
}
