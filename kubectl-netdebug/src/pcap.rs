//! Writing the capture's `pcap_chunk` events to a file (or stdout for `-w -`), in order.
//!
//! The events arrive on the async runtime (the log stream's callback); the writes happen on a
//! thread of their own, fed through a channel, so a slow disk or a stdout pipe nobody drains
//! never stalls the runtime that reads the stream and keeps the deadline. The file is created
//! up front, before anything is injected, so a bad path fails the run at once.

use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;

use base64::Engine;

use crate::error::{Error, Result};

pub struct PcapWriter {
    path: String,
    /// Decoded chunks for the writer thread; closed by `finish`.
    chunks: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
    next_index: u32,
    packets: u64,
}

impl PcapWriter {
    /// Open `path` for writing; `-` is stdout.
    pub fn create(path: &str) -> Result<PcapWriter> {
        let out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .map_err(|e| Error::Output(format!("cannot create pcap file {path}: {e}")))?,
            ))
        };
        // Unbounded: the capture itself is bounded (packets, bytes, duration), so is this.
        let (chunks, received) = mpsc::channel::<Vec<u8>>();
        let writer = std::thread::Builder::new()
            .name("pcap-writer".into())
            .spawn(move || write_all(out, received))
            .map_err(|e| Error::Output(format!("cannot start the pcap writer: {e}")))?;
        Ok(PcapWriter {
            path: path.to_string(),
            chunks: Some(chunks),
            writer: Some(writer),
            next_index: 0,
            packets: 0,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Append one chunk. Chunks must come in index order (the reader already guarantees stream
    /// order); a chunk out of order means lost data and is refused rather than written wrongly.
    /// Never blocks: the bytes go to the writer thread.
    pub fn write_chunk(&mut self, chunk: &protocol::PcapChunk) -> Result<()> {
        if chunk.index != self.next_index {
            return Err(Error::Output(format!(
                "pcap chunk {} arrived where chunk {} was expected; {} would be corrupt",
                chunk.index, self.next_index, self.path
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(chunk.data.as_bytes())
            .map_err(|e| Error::Output(format!("pcap chunk {} is not base64: {e}", chunk.index)))?;
        let sent = self.chunks.as_ref().map(|c| c.send(bytes));
        if !matches!(sent, Some(Ok(()))) {
            // The thread is gone: it stopped on a write error, which `finish` reports.
            return self.finish_writer().map(|_| ());
        }
        self.next_index += 1;
        self.packets += u64::from(chunk.packets);
        Ok(())
    }

    /// Close the channel and wait for the thread's last write and flush.
    fn finish_writer(&mut self) -> Result<()> {
        drop(self.chunks.take());
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        match writer.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Output(format!("writing {}: {e}", self.path))),
            Err(_) => Err(Error::Output(format!(
                "the writer of {} panicked",
                self.path
            ))),
        }
    }

    /// Flush and describe the file. With no chunk received (capture skipped or failed) there is
    /// no pcap to offer: the empty file is removed (a 0-byte file is not a valid pcap) and
    /// `None` returned. Called once the stream has ended; waits for the last write.
    pub fn finish(mut self) -> Result<Option<verdict::PcapInfo>> {
        self.finish_writer()?;
        if self.next_index == 0 {
            if self.path != "-" {
                let _ = std::fs::remove_file(&self.path);
            }
            return Ok(None);
        }
        Ok(Some(verdict::PcapInfo {
            path: std::mem::take(&mut self.path),
            packets: self.packets,
        }))
    }
}

/// The writer thread: every chunk in order, then a flush.
fn write_all(
    mut out: Box<dyn Write + Send>,
    chunks: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    for bytes in chunks {
        out.write_all(&bytes)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_concatenated_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let path = path.to_str().unwrap();
        let mut w = PcapWriter::create(path).unwrap();
        let chunk = |index, data: &[u8], packets| protocol::PcapChunk {
            index,
            packets,
            data: base64::engine::general_purpose::STANDARD.encode(data),
        };
        w.write_chunk(&chunk(0, b"head", 0)).unwrap();
        w.write_chunk(&chunk(1, b"body", 3)).unwrap();
        assert!(w.write_chunk(&chunk(3, b"x", 1)).is_err());
        let info = w.finish().unwrap().unwrap();
        assert_eq!(info.packets, 3);
        assert_eq!(std::fs::read(path).unwrap(), b"headbody");
    }

    #[test]
    fn no_chunks_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.pcap");
        let w = PcapWriter::create(path.to_str().unwrap()).unwrap();
        assert!(
            path.exists(),
            "created early so a bad path fails before the run"
        );
        assert_eq!(w.finish().unwrap(), None);
        assert!(!path.exists());
    }

    #[test]
    fn unwritable_path_is_refused() {
        let err = PcapWriter::create("/nonexistent-dir/x.pcap").err().unwrap();
        assert!(err
            .to_string()
            .starts_with("cannot create pcap file /nonexistent-dir/x.pcap: "));
    }
}
