//! The event reader: turns the probe's JSON lines (from a pod log or a child's stdout) into
//! decoded events, with the sequence-number bookkeeping that lets a dropped log stream be
//! re-read from the start without delivering any event twice, and that notices lost lines.
//!
//! One reader is fed by one or more byte streams in turn (`read_from` once per (re)connection);
//! its state survives between them.

use futures::io::{AsyncBufRead, AsyncBufReadExt};
use protocol::{decode_line, DecodeError, Decoded};

/// Longest line accepted; a protocol line is far shorter (pcap chunks are the largest, ~64 KiB of
/// base64). Guards memory against a container that logs something else without newlines.
const MAX_LINE_BYTES: usize = 4 << 20;

/// Lines of non-protocol output kept for error messages (the probe's stderr shares a pod log).
const MAX_KEPT_OTHER_LINES: usize = 20;

/// What one accepted line turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A new event (or an unknown type of our major, to be ignored but counted).
    Event(Decoded),
    /// Lines `from..=to` never arrived: the next line had a higher `seq` than expected.
    Gap { from: u64, to: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Another protocol major: nothing after this can be trusted.
    #[error(transparent)]
    Protocol(#[from] DecodeError),
    #[error("reading the probe's output failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the probe wrote a line longer than {MAX_LINE_BYTES} bytes; not a protocol line")]
    LineTooLong,
}

/// Sequence bookkeeping and diagnostics across (re)connections.
#[derive(Debug, Default)]
pub struct EventReader {
    /// Highest `seq` delivered so far.
    last_seq: Option<u64>,
    done: bool,
    duplicates_skipped: u64,
    gaps: Vec<(u64, u64)>,
    /// Lines that are not protocol lines (probe stderr, kubelet notes), newest last.
    other_lines: Vec<String>,
    /// Known-type lines that failed to decode (a contract bug): `seq` and message.
    malformed: Vec<String>,
}

impl EventReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once a `done` event was delivered.
    pub fn saw_done(&self) -> bool {
        self.done
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    pub fn duplicates_skipped(&self) -> u64 {
        self.duplicates_skipped
    }

    /// Ranges of `seq` numbers that never arrived.
    pub fn gaps(&self) -> &[(u64, u64)] {
        &self.gaps
    }

    /// Non-protocol lines seen (at most the last 20), e.g. the probe's own error message.
    pub fn other_lines(&self) -> &[String] {
        &self.other_lines
    }

    pub fn malformed(&self) -> &[String] {
        &self.malformed
    }

    /// Feed one line. Returns what to deliver (nothing for duplicates, blank and non-protocol
    /// lines). A gap yields the `Gap` item before the event that revealed it.
    pub fn accept_line(&mut self, line: &str) -> Result<Vec<Item>, ReadError> {
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            return Ok(Vec::new());
        }
        let decoded = match decode_line(line) {
            Ok(d) => d,
            Err(e @ DecodeError::UnsupportedMajor { .. }) => return Err(e.into()),
            Err(DecodeError::NotJson(_)) | Err(DecodeError::MissingField(_)) => {
                self.keep_other_line(line);
                return Ok(Vec::new());
            }
            Err(DecodeError::Malformed {
                seq,
                event_type,
                message,
            }) => {
                // A contract bug, not a reason to lose the rest: note it, keep the numbering.
                let mut items = Vec::new();
                if self.admit_seq(seq, &mut items) {
                    self.malformed
                        .push(format!("seq {seq} ({event_type}): {message}"));
                }
                return Ok(items);
            }
        };
        let mut items = Vec::new();
        if !self.admit_seq(decoded.seq(), &mut items) {
            return Ok(items);
        }
        if let Decoded::Event(envelope) = &decoded {
            if matches!(envelope.event, protocol::Event::Done(_)) {
                self.done = true;
            }
        }
        items.push(Item::Event(decoded));
        Ok(items)
    }

    /// Decide whether `seq` is new; record a gap when lines were skipped.
    fn admit_seq(&mut self, seq: u64, items: &mut Vec<Item>) -> bool {
        let expected = self.last_seq.map_or(0, |s| s + 1);
        if seq < expected {
            self.duplicates_skipped += 1;
            return false;
        }
        if seq > expected {
            self.gaps.push((expected, seq - 1));
            items.push(Item::Gap {
                from: expected,
                to: seq - 1,
            });
        }
        self.last_seq = Some(seq);
        true
    }

    fn keep_other_line(&mut self, line: &str) {
        if self.other_lines.len() == MAX_KEPT_OTHER_LINES {
            self.other_lines.remove(0);
        }
        self.other_lines.push(line.chars().take(500).collect());
    }

    /// Read `input` to its end (or until `done`), calling `deliver` for each item as it arrives.
    /// Call again with a fresh stream after a drop: already-seen events are skipped.
    pub async fn read_from<R, F>(&mut self, input: R, mut deliver: F) -> Result<(), ReadError>
    where
        R: AsyncBufRead + Unpin,
        F: FnMut(Item),
    {
        let mut input = input;
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            let n = read_line_bounded(&mut input, &mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            // Lossy: a stray non-UTF-8 byte from some other writer must not end the stream.
            let line = String::from_utf8_lossy(&buf);
            for item in self.accept_line(&line)? {
                deliver(item);
            }
            if self.done {
                return Ok(());
            }
        }
    }
}

/// `read_until(b'\n')` with a length limit.
async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    input: &mut R,
    buf: &mut Vec<u8>,
) -> Result<usize, ReadError> {
    let mut total = 0;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        if buf.len() + used > MAX_LINE_BYTES {
            return Err(ReadError::LineTooLong);
        }
        buf.extend_from_slice(chunk);
        input.consume_unpin(used);
        total += used;
        if found {
            return Ok(total);
        }
    }
}
