//! The event stream served on the network namespace's loopback (the plan's `tunnel`), so the
//! client can read it through the API server's port-forward as soon as the probe starts rather
//! than when the kubelet next reports the container (see `protocol::TunnelPlan` for why).
//!
//! Two parts: a [`Journal`] that keeps a copy of every line the writer thread writes (the
//! writer's output is wrapped in a [`Tee`]), and a serving thread that hands the whole journal,
//! from its first line, to the first peer that sends the token, then follows it to its end.
//! Plain threads and blocking sockets with timeouts: the serving never touches the async
//! runtime the checks run on, and every wait in it is bounded.
//!
//! With the plan's `control` via `tunnel`, the lines that peer sends after its token are the
//! control words: a second thread reads them from the same connection while the first writes
//! (the connection's end, as the peer closes it, closes the channel).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use protocol::{Plan, TunnelPlan};

use crate::control;

/// How often the accept loop looks for a peer (the listener is non-blocking).
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// A peer has this long to send its token line.
const TOKEN_WAIT: Duration = Duration::from_millis(1000);
/// A peer that stops reading for this long is dropped (the log still has everything).
const WRITE_WAIT: Duration = Duration::from_millis(2000);
/// Peers with a wrong token before the tunnel stops accepting: whoever it is gets nothing, and
/// must not keep the probe busy.
const MAX_WRONG_PEERS: u32 = 16;
/// The longest a token line may be.
const MAX_TOKEN_LINE: u64 = 128;

/// Every line written so far, and whether the writer has finished.
#[derive(Default)]
pub struct Journal {
    state: Mutex<JournalState>,
    changed: Condvar,
}

#[derive(Default)]
struct JournalState {
    bytes: Vec<u8>,
    ended_at: Option<Instant>,
}

impl Journal {
    pub fn new() -> Arc<Journal> {
        Arc::new(Journal::default())
    }

    fn append(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if state.ended_at.is_none() {
            state.bytes.extend_from_slice(bytes);
            self.changed.notify_all();
        }
    }

    /// No more lines will come. Idempotent.
    pub fn end(&self) {
        let mut state = self.lock();
        if state.ended_at.is_none() {
            state.ended_at = Some(Instant::now());
            self.changed.notify_all();
        }
    }

    /// Bytes from `offset` on (empty when there are none yet), whether the journal has ended,
    /// waiting up to `wait` for either.
    fn read_from(&self, offset: usize, wait: Duration) -> (Vec<u8>, bool) {
        let mut state = self.lock();
        if state.bytes.len() <= offset && state.ended_at.is_none() {
            state = self
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let fresh = state.bytes.get(offset..).unwrap_or_default().to_vec();
        (fresh, state.ended_at.is_some())
    }

    fn ended_at(&self) -> Option<Instant> {
        self.lock().ended_at
    }

    fn lock(&self) -> MutexGuard<'_, JournalState> {
        // A poisoned lock means a panic elsewhere; the bytes are still whole lines.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer's output, copied into the journal. The copy is made first and whatever the
/// output does: a peer still gets the lines when stdout has gone away.
pub struct Tee {
    out: Box<dyn Write + Send>,
    journal: Arc<Journal>,
}

impl Tee {
    pub fn new(out: Box<dyn Write + Send>, journal: Arc<Journal>) -> Tee {
        Tee { out, journal }
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.journal.append(buf);
        self.out.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for Tee {
    /// The writer thread drops its output when it stops: the stream has ended.
    fn drop(&mut self) {
        self.journal.end();
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot serve the event stream on 127.0.0.1:{port}: {source}")]
pub struct TunnelError {
    port: u16,
    source: io::Error,
}

/// The serving thread and the journal it serves.
pub struct Tunnel {
    thread: JoinHandle<()>,
    journal: Arc<Journal>,
}

/// Where the events go: stdout, and with the plan's `tunnel` also a copy served on loopback.
/// A tunnel that cannot listen costs only speed (the client reads the log), so it is said on
/// stderr, dropped from the plan (the port is someone else's: the sockets check shows it),
/// and the run goes on.
/// `control`: where the peer's lines after the token go (control via tunnel).
pub fn output(
    plan: &mut Plan,
    control: Option<control::Feed>,
) -> (Box<dyn Write + Send>, Option<Tunnel>) {
    let stdout = Box::new(io::stdout());
    let Some(tunnel_plan) = &plan.tunnel else {
        return (stdout, None);
    };
    let journal = Journal::new();
    let hard_stop = Instant::now() + Duration::from_millis(plan.deadline_ms);
    match start(tunnel_plan, journal.clone(), hard_stop, control) {
        Ok(tunnel) => (Box::new(Tee::new(stdout, journal)), Some(tunnel)),
        Err(e) => {
            eprintln!("netdebug-probe: {e}; the events go to the log only");
            plan.tunnel = None;
            (stdout, None)
        }
    }
}

/// Listen on `127.0.0.1:plan.port` and serve the journal to the first peer with the token,
/// until the journal ends and that peer has it all, or `linger_ms` after the end when no peer
/// came, and never past `hard_stop`. With `control`, that peer's later lines are fed to it.
pub fn start(
    plan: &TunnelPlan,
    journal: Arc<Journal>,
    hard_stop: Instant,
    control: Option<control::Feed>,
) -> Result<Tunnel, TunnelError> {
    let port = plan.port;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| TunnelError { port, source })?;
    let server = Server {
        listener,
        token: plan.token.clone(),
        linger: Duration::from_millis(plan.linger_ms),
        journal: journal.clone(),
        hard_stop,
        control,
    };
    let thread = std::thread::Builder::new()
        .name("tunnel".into())
        .spawn(move || server.run())
        .map_err(|source| TunnelError { port, source })?;
    Ok(Tunnel { thread, journal })
}

impl Tunnel {
    /// Call once every line is written: the journal ends, and the serving ends by itself (see
    /// [`start`]); this waits for it.
    pub fn finish(self) {
        self.journal.end();
        // A panic in the serving thread only loses the faster copy: the log has every line.
        let _ = self.thread.join();
    }
}

struct Server {
    listener: TcpListener,
    token: String,
    linger: Duration,
    journal: Arc<Journal>,
    hard_stop: Instant,
    control: Option<control::Feed>,
}

impl Server {
    fn run(self) {
        let mut wrong = 0;
        while let Some(peer) = self.next_peer() {
            if let Some(rest) = self.read_token(&peer) {
                self.listen_for_words(rest);
                self.serve(peer);
                return;
            }
            wrong += 1;
            if wrong >= MAX_WRONG_PEERS {
                return;
            }
        }
    }

    /// The next connection, or None once no peer is worth waiting for any more.
    fn next_peer(&self) -> Option<TcpStream> {
        loop {
            let now = Instant::now();
            let lingered = self
                .journal
                .ended_at()
                .is_some_and(|end| now >= end + self.linger);
            if lingered || now >= self.hard_stop {
                return None;
            }
            match self.listener.accept() {
                Ok((stream, _)) => return Some(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ECONNABORTED and the like: that peer is gone, the listener is not.
                Err(_) => std::thread::sleep(ACCEPT_POLL),
            }
        }
    }

    /// The peer's first line, when it is the token: then the reader, which may hold bytes the
    /// peer sent after it (control words), for the control thread.
    fn read_token(&self, peer: &TcpStream) -> Option<BufReader<TcpStream>> {
        let ready =
            peer.set_nonblocking(false).is_ok() && peer.set_read_timeout(Some(TOKEN_WAIT)).is_ok();
        if !ready {
            return None;
        }
        let mut reader = BufReader::new(peer.try_clone().ok()?);
        let mut line = String::new();
        let read = io::Read::take(&mut reader, MAX_TOKEN_LINE).read_line(&mut line);
        (read.is_ok() && line.trim_end_matches(['\n', '\r']) == self.token).then_some(reader)
    }

    /// Control via the tunnel: read the peer's next lines on a thread of their own, which
    /// ends when the peer closes the connection (or the process exits).
    fn listen_for_words(&self, reader: BufReader<TcpStream>) {
        let Some(feed) = self.control.clone() else {
            return;
        };
        // Words may be minutes apart; the token's timeout no longer applies. A socket that
        // cannot wait without one closes the channel (counted as every word).
        if reader.get_ref().set_read_timeout(None).is_err() {
            feed.closed();
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("tunnel-control".into())
            .spawn({
                let feed = feed.clone();
                move || feed.read_from(reader)
            });
        if spawned.is_err() {
            feed.closed();
        }
    }

    /// Everything from the first line, then each new one, until the end or a stuck peer.
    fn serve(&self, mut peer: TcpStream) {
        if peer.set_write_timeout(Some(WRITE_WAIT)).is_err() {
            return;
        }
        let mut offset = 0;
        while Instant::now() < self.hard_stop {
            let (fresh, ended) = self.journal.read_from(offset, ACCEPT_POLL * 10);
            if !fresh.is_empty() {
                if peer.write_all(&fresh).is_err() {
                    return;
                }
                offset += fresh.len();
            } else if ended {
                let _ = peer.shutdown(std::net::Shutdown::Write);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn plan(port: u16) -> TunnelPlan {
        TunnelPlan {
            port,
            token: "abcdefghijklmnop1234".into(),
            linger_ms: 2000,
        }
    }

    /// The tunnel on `port` for the journal's lines, under a 10 s deadline.
    fn serving(port: u16, journal: Arc<Journal>, control: Option<control::Feed>) -> Tunnel {
        start(
            &plan(port),
            journal,
            Instant::now() + Duration::from_secs(10),
            control,
        )
        .unwrap()
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn read_all(mut s: TcpStream) -> String {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_peer_with_the_token_gets_every_line_from_the_first_then_the_end() {
        let port = free_port();
        let journal = Journal::new();
        let mut tee = Tee::new(Box::new(io::sink()), journal.clone());
        tee.write_all(b"{\"seq\":0}\n").unwrap();
        let tunnel = serving(port, journal, None);
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        peer.write_all(b"abcdefghijklmnop1234\n").unwrap();
        tee.write_all(b"{\"seq\":1}\n").unwrap();
        drop(tee);
        assert_eq!(read_all(peer), "{\"seq\":0}\n{\"seq\":1}\n");
        tunnel.finish();
    }

    #[tokio::test]
    async fn the_peers_lines_after_the_token_are_control_words() {
        let port = free_port();
        let journal = Journal::new();
        let (control, feed) = control::channel();
        let tunnel = serving(port, journal.clone(), Some(feed));
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // In one segment with the token: the bytes after it must not be lost to its reader.
        peer.write_all(b"abcdefghijklmnop1234\nstop\n").unwrap();
        let came = tokio::time::timeout(Duration::from_secs(5), control.stop()).await;
        assert_eq!(came, Ok(control::Came::Word));
        // `go` was not said; the peer closing its side says everything.
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let came = tokio::time::timeout(Duration::from_secs(5), control.go()).await;
        assert_eq!(came, Ok(control::Came::Closed));
        journal.end();
        assert_eq!(read_all(peer), "");
        tunnel.finish();
    }

    #[test]
    fn a_peer_without_the_token_gets_nothing_and_the_right_one_still_does() {
        let port = free_port();
        let journal = Journal::new();
        let mut tee = Tee::new(Box::new(io::sink()), journal.clone());
        tee.write_all(b"line\n").unwrap();
        let tunnel = serving(port, journal, None);
        let mut stranger = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stranger.write_all(b"guess\n").unwrap();
        assert_eq!(read_all(stranger), "");
        let mut peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
        peer.write_all(b"abcdefghijklmnop1234\n").unwrap();
        drop(tee);
        assert_eq!(read_all(peer), "line\n");
        tunnel.finish();
    }

    #[test]
    fn without_a_peer_the_tunnel_ends_after_lingering_past_the_end() {
        let port = free_port();
        let journal = Journal::new();
        let mut p = plan(port);
        p.linger_ms = 50;
        let tunnel = start(
            &p,
            journal.clone(),
            Instant::now() + Duration::from_secs(10),
            None,
        )
        .unwrap();
        journal.end();
        let t0 = Instant::now();
        tunnel.finish();
        // Bounded by the linger (plus polling), not by the far-away hard stop.
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn a_port_in_use_is_an_error_naming_it() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = start(&plan(port), Journal::new(), Instant::now(), None)
            .err()
            .expect("bind must fail");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[test]
    fn stdout_failing_does_not_lose_the_copy() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let journal = Journal::new();
        let mut tee = Tee::new(Box::new(Broken), journal.clone());
        assert!(tee.write_all(b"x\n").is_err());
        assert_eq!(
            journal.read_from(0, Duration::ZERO),
            (b"x\n".to_vec(), false)
        );
    }
}
