//! The control channel (protocol minor 4, `protocol::ends`): one-word lines from the client,
//! `go` (a held source may start its traffic checks) and `stop` (a peer may end its capture).
//! They arrive on standard input or on the tunnel's connection after the token line; a
//! reading thread feeds them in through a [`Feed`], and the async side waits on [`Control`].
//!
//! A closed channel (end of input, a read error) counts as both words: a client that died must
//! never leave a probe holding. A word this version does not know is ignored (a newer client's).
//! Each word counts once: a second `go` changes nothing.

use std::io::{self, BufRead};
use std::sync::Arc;

use protocol::{ControlVia, Plan, ReleaseCause, CONTROL_GO, CONTROL_STOP};
use tokio::sync::watch;
use tokio::time::Instant;

/// The longest control line read whole; a longer one is not a word this version knows, and
/// is skipped without keeping it in memory.
const MAX_LINE: u64 = 256;

/// How a word came: sent, or implied by the channel closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Came {
    Word,
    Closed,
}

/// What the channel has said so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Heard {
    go: Option<Came>,
    stop: Option<Came>,
}

/// The async side: wait for a word.
#[derive(Clone)]
pub struct Control {
    heard: watch::Receiver<Heard>,
}

/// The reading side (any thread): hand in each line, then say the channel closed.
#[derive(Clone)]
pub struct Feed {
    heard: Arc<watch::Sender<Heard>>,
}

/// A new channel. A [`Feed`] dropped without [`Feed::closed`] does not close it: a tunnel no
/// peer ever reached leaves the probe on its own limits (hold_ms, the capture's duration).
pub fn channel() -> (Control, Feed) {
    let (tx, rx) = watch::channel(Heard::default());
    (
        Control { heard: rx },
        Feed {
            heard: Arc::new(tx),
        },
    )
}

impl Control {
    /// Resolves once `go` came (or the channel closed).
    pub async fn go(&self) -> Came {
        self.wait(|h| h.go).await
    }

    /// Resolves once `stop` came (or the channel closed).
    pub async fn stop(&self) -> Came {
        self.wait(|h| h.stop).await
    }

    /// A held source: wait for `go`, never past `until` (the hold limit, or the deadline when
    /// that comes first). Why it went on, and how long it held.
    pub async fn hold(&self, until: Instant) -> (ReleaseCause, std::time::Duration) {
        let t0 = Instant::now();
        let by = tokio::select! {
            came = self.go() => match came {
                Came::Word => ReleaseCause::Go,
                Came::Closed => ReleaseCause::ChannelClosed,
            },
            () = tokio::time::sleep_until(until) => ReleaseCause::HoldLimit,
        };
        (by, t0.elapsed())
    }

    async fn wait(&self, pick: impl Fn(&Heard) -> Option<Came>) -> Came {
        let mut rx = self.heard.clone();
        let heard = rx.wait_for(|h| pick(h).is_some()).await.map(|h| pick(&h));
        match heard {
            Ok(came) => came.unwrap_or(Came::Closed),
            // Every feed is gone without saying more: nothing will come. Wait for the caller's
            // own limit (the feed holder ended without closing, see `channel`).
            Err(_) => std::future::pending().await,
        }
    }
}

impl Feed {
    /// One line from the client.
    pub fn line(&self, line: &str) {
        let came = Some(Came::Word);
        match line.trim() {
            CONTROL_GO => self.heard.send_if_modified(|h| set(&mut h.go, came)),
            CONTROL_STOP => self.heard.send_if_modified(|h| set(&mut h.stop, came)),
            _ => false,
        };
    }

    /// The channel ended: whatever was not said yet counts as said.
    pub fn closed(&self) {
        let came = Some(Came::Closed);
        self.heard
            .send_if_modified(|h| set(&mut h.go, came) | set(&mut h.stop, came));
    }

    /// Read lines from `reader` until it ends, then close. Blocking: run it on its own thread.
    pub fn read_from(&self, mut reader: impl BufRead) {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match io::Read::take(&mut reader, MAX_LINE).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.ends_with(b"\n") => self.line(&String::from_utf8_lossy(&buf)),
                Ok(_) if buf.len() as u64 == MAX_LINE => {
                    if skip_line(&mut reader).is_err() {
                        break;
                    }
                }
                // The last line, without a newline: still a word.
                Ok(_) => self.line(&String::from_utf8_lossy(&buf)),
            }
        }
        self.closed();
    }
}

/// The first value is kept: a word counts once, and a close after a word does not change how
/// it came.
fn set(slot: &mut Option<Came>, came: Option<Came>) -> bool {
    if slot.is_none() {
        *slot = came;
        true
    } else {
        false
    }
}

/// Discard the rest of an over-long line.
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let (done, used) = {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|b| *b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, available.len()),
            }
        };
        reader.consume(used);
        if done {
            return Ok(());
        }
    }
}

/// The plan's control channel, if it has one: the async side, and the feed the tunnel must
/// hand the peer's lines to (control via tunnel). Via stdin, the reading thread starts here.
pub fn open(plan: &Plan) -> io::Result<(Option<Control>, Option<Feed>)> {
    let Some(plan) = &plan.control else {
        return Ok((None, None));
    };
    let (control, feed) = channel();
    match plan.via.known() {
        Some(ControlVia::Stdin) => {
            read_stdin(feed).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start the control thread: {e}"))
            })?;
            Ok((Some(control), None))
        }
        Some(ControlVia::Tunnel) => Ok((Some(control), Some(feed))),
        // The plan's validation refused any other; nothing would ever feed it.
        None => Ok((None, None)),
    }
}

/// Read the words from standard input on a thread of their own. The thread blocks in read
/// until input ends; the process does not wait for it when it exits.
pub fn read_stdin(feed: Feed) -> io::Result<()> {
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || feed.read_from(io::stdin().lock()))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn now_or_never<F: std::future::Future>(f: F) -> Option<F::Output> {
        futures::FutureExt::now_or_never(Box::pin(f))
    }

    #[tokio::test]
    async fn words_are_heard_and_unknown_ones_ignored() {
        let (control, feed) = channel();
        feed.read_from(&b"hello\n  go \r\n"[..]);
        assert_eq!(now_or_never(control.go()), Some(Came::Word));
        // The input ended after `go`: `stop` counts as said by the close.
        assert_eq!(now_or_never(control.stop()), Some(Came::Closed));
    }

    #[tokio::test]
    async fn nothing_heard_means_waiting() {
        let (control, feed) = channel();
        feed.line("later");
        assert_eq!(now_or_never(control.go()), None);
        assert_eq!(now_or_never(control.stop()), None);
        feed.line("stop");
        assert_eq!(now_or_never(control.stop()), Some(Came::Word));
        assert_eq!(now_or_never(control.go()), None);
    }

    #[tokio::test]
    async fn a_closed_channel_is_both_words() {
        let (control, feed) = channel();
        feed.read_from(&b""[..]);
        assert_eq!(now_or_never(control.go()), Some(Came::Closed));
        assert_eq!(now_or_never(control.stop()), Some(Came::Closed));
    }

    #[tokio::test]
    async fn the_last_line_needs_no_newline_and_long_lines_are_skipped() {
        let (control, feed) = channel();
        let mut input = vec![b'x'; 3 * MAX_LINE as usize];
        input.extend_from_slice(b"go\nstop");
        feed.read_from(&input[..]);
        // `go` glued to the long line is part of it, not a word.
        assert_eq!(now_or_never(control.go()), Some(Came::Closed));
        assert_eq!(now_or_never(control.stop()), Some(Came::Word));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_ends_at_go_at_its_limit_or_when_the_channel_closes() {
        let limit = Duration::from_millis(300);
        let (control, _feed) = channel();
        let (by, held) = control.hold(Instant::now() + limit).await;
        assert_eq!((by, held), (ReleaseCause::HoldLimit, limit));

        let (control, feed) = channel();
        let later = feed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(120)).await;
            later.line("go");
        });
        let (by, held) = control.hold(Instant::now() + limit).await;
        assert_eq!((by, held), (ReleaseCause::Go, Duration::from_millis(120)));
        // Released once, released for good: a later hold returns at once.
        let (by, held) = control.hold(Instant::now() + limit).await;
        assert_eq!((by, held), (ReleaseCause::Go, Duration::ZERO));
        drop(feed);

        let (control, feed) = channel();
        feed.closed();
        let (by, _) = control.hold(Instant::now() + limit).await;
        assert_eq!(by, ReleaseCause::ChannelClosed);
    }

    #[tokio::test]
    async fn a_dropped_feed_closes_nothing() {
        let (control, feed) = channel();
        drop(feed);
        let waited = tokio::time::timeout(Duration::from_millis(20), control.go()).await;
        assert!(waited.is_err(), "a dropped feed released the wait");
    }

    #[tokio::test]
    async fn a_word_from_another_thread_wakes_the_waiter() {
        let (control, feed) = channel();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            feed.line("go");
        });
        let came = tokio::time::timeout(Duration::from_secs(5), control.go()).await;
        assert_eq!(came, Ok(Came::Word));
        reader.join().unwrap();
    }
}
