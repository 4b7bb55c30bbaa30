//! The event sink: numbers events and writes them as JSON lines, one write per line.
//!
//! The writing happens on a thread of its own, fed by a bounded queue. Why: stdout is a pipe
//! (the container's log, or the local client) and a reader that stops reading makes every
//! write block for as long as it does not read. Writing under a lock that the watchdog also
//! needed once let a stuck stdout keep the watchdog from ending the run. Now nothing that
//! ends the run waits on stdout without a bound: the runtime only queues events, and the
//! watchdog only queues its last line and waits a bounded time for it
//! ([`Emitter::last_words`]) before it ends the process.
//!
//! Policy when the queue is full: [`Emitter::emit`] waits for room. Events are evidence, and a
//! gap in them would change the verdict, so none is dropped while a reader is there; a slow
//! reader slows the run down as it did when the checks wrote themselves. A reader that never
//! reads stalls the emitting check, but not the watchdog, which ends the run at its deadline.
//! When the reader is gone (EPIPE) the writer discards the rest, so emitting never blocks
//! again.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use protocol::{encode_line, Envelope, Event, PROTOCOL_MAJOR};

/// Events queued ahead of the writer. Most runs emit a few hundred events in all; the capture's
/// pcap chunks can be many more, and when they outrun the reader the queue fills and the
/// capture waits (see the module's policy).
pub const QUEUE_CAPACITY: usize = 1024;

/// How often a bounded enqueue retries a full queue.
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// What travels to the writer thread.
enum Msg {
    Event(Event),
    /// The end of the stream: write this last line (if any), flush, and stop.
    End(Option<Event>),
}

/// Cheap to clone; all clones share one queue, one sequence and one output.
#[derive(Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
}

struct Shared {
    queue: SyncSender<Msg>,
    /// Set once the end of the stream is queued: later events are dropped, so nothing follows
    /// `done`, and of the runner's `done` and the watchdog's only the first is queued.
    closed: AtomicBool,
    progress: Mutex<Progress>,
    /// Signalled by the writer after each line and when it stops.
    progressed: Condvar,
}

#[derive(Default)]
struct Progress {
    /// Lines written (or discarded after the reader went away): the next sequence number.
    written: u64,
    /// The writer has stopped: the stream's end was written, or cannot be.
    stopped: bool,
}

impl Emitter {
    /// Starts the writer thread; fails only when the thread cannot be created.
    pub fn new(out: Box<dyn Write + Send>) -> std::io::Result<Emitter> {
        Emitter::with_capacity(out, QUEUE_CAPACITY)
    }

    fn with_capacity(out: Box<dyn Write + Send>, capacity: usize) -> std::io::Result<Emitter> {
        let (queue, rx) = sync_channel(capacity);
        let shared = Arc::new(Shared {
            queue,
            closed: AtomicBool::new(false),
            progress: Mutex::new(Progress::default()),
            progressed: Condvar::new(),
        });
        let writer = Writer {
            out,
            broken: false,
            seq: 0,
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || writer.run(rx))?;
        Ok(Emitter { shared })
    }

    /// Queue an event. Waits while the queue is full (see the module's policy); returns at
    /// once, dropping the event, once the stream has ended.
    pub fn emit(&self, event: Event) {
        if !self.shared.closed.load(Ordering::Acquire) {
            // Err: the writer stopped (the stream ended meanwhile); the event is not wanted.
            let _ = self.shared.queue.send(Msg::Event(event));
        }
    }

    /// Queue the stream's last line, waiting for room like [`Emitter::emit`]. False when the
    /// stream had already ended (the watchdog was first).
    pub fn emit_last(&self, event: Event) -> bool {
        self.end(Some(event), None)
    }

    /// End the stream without a last line (the run failed before it could say `done`).
    pub fn close(&self) {
        self.end(None, None);
    }

    /// The watchdog's way out: queue `event` as the last line and wait until it is written,
    /// but never past `until`. False when it was not written by then: stdout is stuck, the
    /// stream had already ended, or the line was not queued in time.
    pub fn last_words(&self, event: Event, until: Instant) -> bool {
        self.end(Some(event), Some(until)) && self.flush(Some(until))
    }

    /// Wait until the writer has stopped (the end of the stream is written, or cannot be),
    /// or until `until`. True when it has stopped.
    pub fn flush(&self, until: Option<Instant>) -> bool {
        let mut progress = self.lock_progress();
        while !progress.stopped {
            progress = match until {
                None => self
                    .shared
                    .progressed
                    .wait(progress)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.shared
                        .progressed
                        .wait_timeout(progress, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        true
    }

    /// How many events went out (the next sequence number).
    #[cfg(test)]
    pub fn emitted(&self) -> u64 {
        self.lock_progress().written
    }

    /// Queue the end of the stream once; with `until`, give up on a full queue at `until`.
    fn end(&self, last: Option<Event>, until: Option<Instant>) -> bool {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        let msg = Msg::End(last);
        let Some(until) = until else {
            return self.shared.queue.send(msg).is_ok();
        };
        // SyncSender has no send with a timeout: retry until there is room or time is up.
        let mut msg = msg;
        loop {
            match self.shared.queue.try_send(msg) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= until {
                        return false;
                    }
                    msg = back;
                    std::thread::sleep(RETRY_EVERY);
                }
            }
        }
    }

    fn lock_progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        // A poisoned lock means a panic elsewhere; the counters are still meaningful.
        self.shared
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer thread's state: the only owner of the output.
struct Writer {
    out: Box<dyn Write + Send>,
    /// Set when the reader went away (EPIPE): later events are discarded rather than failing
    /// every check, and the queue keeps draining so emitting never blocks.
    broken: bool,
    seq: u64,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        // Ends at the end of the stream, or when every Emitter is gone.
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Event(event) => self.write(event),
                Msg::End(last) => {
                    if let Some(event) = last {
                        self.write(event);
                    }
                    break;
                }
            }
        }
        // Dropping the receiver wakes any emitter still waiting for room (its send fails).
        drop(rx);
        let mut progress = self
            .shared
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        progress.stopped = true;
        self.shared.progressed.notify_all();
    }

    /// Number, encode and write one event. The sequence follows the order of the lines.
    fn write(&mut self, event: Event) {
        let envelope = Envelope {
            v: PROTOCOL_MAJOR,
            seq: self.seq,
            event,
        };
        self.seq += 1;
        if !self.broken {
            let mut line = encode_line(&envelope);
            line.push('\n');
            // One write + flush per line so a log reader never sees half an event and every
            // event leaves the container as soon as it is known.
            if self.out.write_all(line.as_bytes()).is_err() || self.out.flush().is_err() {
                self.broken = true;
            }
        }
        let mut progress = self
            .shared
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        progress.written = self.seq;
        self.shared.progressed.notify_all();
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

    fn done() -> Event {
        Event::Done(protocol::Done {
            elapsed_ms: 1.0,
            checks_completed: 0,
            checks_failed: 0,
            checks_skipped: 0,
            deadline_exceeded: false,
        })
    }

    fn seqs(buf: &SharedBuf) -> Vec<u64> {
        buf.lines()
            .iter()
            .map(|l| match decode_line(l).expect("each line decodes") {
                Decoded::Event(env) => env.seq,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn clones_share_one_sequence_and_every_line_is_one_event() {
        let buf = SharedBuf::default();
        let emitter = Emitter::new(Box::new(buf.clone())).unwrap();
        let clone = emitter.clone();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let e = clone.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        e.emit(done());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        emitter.close();
        assert!(emitter.flush(None));
        assert_eq!(emitter.emitted(), 200);
        // Numbered by the writer: in order on the wire, no gaps.
        assert_eq!(seqs(&buf), (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn nothing_follows_the_last_line_and_it_is_queued_once() {
        let buf = SharedBuf::default();
        let emitter = Emitter::new(Box::new(buf.clone())).unwrap();
        emitter.emit(done());
        assert!(emitter.emit_last(done()));
        emitter.emit(done());
        assert!(!emitter.emit_last(done()), "a second end is refused");
        assert!(!emitter.last_words(done(), Instant::now() + Duration::from_secs(5)));
        assert!(emitter.flush(None));
        assert_eq!(seqs(&buf), vec![0, 1]);
    }

    /// An output whose writes block until the test lets go (then fail, like EPIPE).
    struct Stuck(Mutex<std::sync::mpsc::Receiver<()>>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.lock().unwrap().recv();
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_output_bounds_the_last_words_and_the_writer_drains_after_epipe() {
        let (release, stuck) = std::sync::mpsc::channel();
        let emitter = Emitter::with_capacity(Box::new(Stuck(Mutex::new(stuck))), 4).unwrap();
        // Fill the queue behind the blocked write; this thread then waits for room.
        let filler = {
            let e = emitter.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    e.emit(done());
                }
            })
        };
        let t0 = Instant::now();
        assert!(!emitter.last_words(done(), Instant::now() + Duration::from_millis(200)));
        let waited = t0.elapsed();
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
        // The reader "goes away": the blocked write fails, the writer discards the rest and
        // the filler is not left waiting for room.
        drop(release);
        filler.join().unwrap();
    }
}
