//! The event sink: numbers events and writes them as JSON lines, one write per line.

use std::io::Write;
use std::sync::{Arc, Mutex};

use protocol::{encode_line, Envelope, Event, PROTOCOL_MAJOR};

/// Cheap to clone; all clones share one sequence counter and one output.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    out: Box<dyn Write + Send>,
    next_seq: u64,
    /// Set when the reader went away (EPIPE): later events are dropped rather than failing
    /// every check.
    broken: bool,
}

impl Emitter {
    pub fn stdout() -> Emitter {
        Emitter::new(Box::new(std::io::stdout()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> Emitter {
        Emitter {
            inner: Arc::new(Mutex::new(Inner {
                out,
                next_seq: 0,
                broken: false,
            })),
        }
    }

    pub fn emit(&self, event: Event) {
        // A poisoned lock means a panic while writing; keep emitting what we can.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.broken {
            return;
        }
        let envelope = Envelope {
            v: PROTOCOL_MAJOR,
            seq: inner.next_seq,
            event,
        };
        inner.next_seq += 1;
        let mut line = encode_line(&envelope);
        line.push('\n');
        // One write + flush per line so a log reader never sees half an event and every event
        // leaves the container as soon as it is known.
        if inner.out.write_all(line.as_bytes()).is_err() || inner.out.flush().is_err() {
            inner.broken = true;
        }
    }

    /// How many events went out (the next sequence number).
    #[cfg(test)]
    pub fn emitted(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_seq
    }
}

#[cfg(test)]
pub mod testing {
    use super::*;

    /// A buffer shared with an Emitter, for tests.
    #[derive(Clone, Default)]
    pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuf {
        pub fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::SharedBuf;
    use super::*;
    use protocol::{decode_line, Decoded};

    #[test]
    fn clones_share_one_sequence_and_every_line_is_one_event() {
        let buf = SharedBuf::default();
        let emitter = Emitter::new(Box::new(buf.clone()));
        let clone = emitter.clone();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let e = clone.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        e.emit(Event::Done(protocol::Done {
                            elapsed_ms: 1.0,
                            checks_completed: 0,
                            checks_failed: 0,
                            checks_skipped: 0,
                            deadline_exceeded: false,
                        }));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(emitter.emitted(), 200);
        let mut seqs: Vec<u64> = buf
            .lines()
            .iter()
            .map(|l| match decode_line(l).expect("each line decodes") {
                Decoded::Event(env) => env.seq,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    }
}
