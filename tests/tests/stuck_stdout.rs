//! The probe's stdout is a pipe, and the process reading it may stop reading (a stuck client, a
//! log pipeline that stalls). The probe must still end at its plan's deadline: its watchdog
//! may not wait on stdout. And a reader that is only late must still get every event.
//!
//! Both tests hand the probe a pipe that is already full (shrunk to one page, then filled with
//! newlines, which readers of the stream skip as blank lines), so its very first write blocks.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use netdebug_scenarios::*;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use protocol::{CheckKind, Event, Plan};

/// Plan deadline of these runs.
const DEADLINE: Duration = Duration::from_millis(2000);
/// What the probe may take beyond its deadline before the test calls it stuck: the watchdog's
/// grace and last-words wait are 2.5 s together; the rest is slack for a busy machine.
const GRACE: Duration = Duration::from_secs(10);

/// A pipe (read end, write end) of one page whose buffer is already full.
fn full_pipe() -> (OwnedFd, OwnedFd) {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    // The smallest capacity the kernel allows (one page): quick to fill.
    fcntl(&write, FcntlArg::F_SETPIPE_SZ(4096)).expect("F_SETPIPE_SZ");
    let flags = OFlag::from_bits_truncate(fcntl(&write, FcntlArg::F_GETFL).expect("F_GETFL"));
    fcntl(&write, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).expect("F_SETFL");
    let newlines = [b'\n'; 512];
    loop {
        match nix::unistd::write(write.as_fd(), &newlines) {
            Ok(_) => {}
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
    }
    // The flag belongs to the open file the probe inherits: its writes must block, as on a
    // real stuck pipe.
    fcntl(&write, FcntlArg::F_SETFL(flags)).expect("F_SETFL");
    (read, write)
}

fn stuck_plan() -> Plan {
    let mut plan = plan(&[CheckKind::Links, CheckKind::Route], Vec::new());
    plan.deadline_ms = DEADLINE.as_millis() as u64;
    plan
}

/// Starts the probe in `ns` with `stdout` as its standard output.
fn spawn_probe(ns: &Netns, plan: &Plan, stdout: OwnedFd) -> Child {
    let json = serde_json::to_string(plan).expect("a plan serialises");
    Command::new(probe_path())
        .args(["--netns", ns.name(), &json])
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the probe")
}

/// Waits for `child` until `limit` after `started`; kills it and panics past that.
fn wait_bounded(child: &mut Child, started: Instant, limit: Duration) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().expect("wait for the probe") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the probe was still running {:?} after it started (deadline {DEADLINE:?}): \
                 a stdout nobody reads stalled it",
                started.elapsed()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stuck_stdout_does_not_stall_the_watchdog() {
    let ns = Netns::new("stuck");
    let (read, write) = full_pipe();
    let started = Instant::now();
    let mut child = spawn_probe(&ns, &stuck_plan(), write);
    // `read` stays open and is never read: the probe's writes block, they do not fail.
    let status = wait_bounded(&mut child, started, DEADLINE + GRACE);
    assert_eq!(
        status.code(),
        Some(0),
        "the watchdog ends the run with exit code 0 ({status})"
    );
    drop(read);
}

#[test]
fn a_late_reader_gets_every_event_in_order() {
    let ns = Netns::new("late");
    let (read, write) = full_pipe();
    let started = Instant::now();
    let mut child = spawn_probe(&ns, &stuck_plan(), write);
    // Start reading well before the deadline, once the probe has had to queue its events.
    thread::sleep(DEADLINE / 2);
    let reader = thread::spawn(move || {
        let mut out = String::new();
        File::from(read)
            .read_to_string(&mut out)
            .expect("read the probe's stdout");
        out
    });
    let status = wait_bounded(&mut child, started, DEADLINE + GRACE);
    let stdout = reader.join().expect("the reader thread");
    let run = decode_run(
        CmdOutput {
            command: "netdebug-probe (late reader)".into(),
            status,
            stdout,
            stderr: String::new(),
        },
        started.elapsed(),
    );
    // Exit 0, `hello` first, `done` last, increasing sequence numbers.
    run.assert_ok();
    let seqs: Vec<u64> = run.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "no gaps");
    match run.events.last().map(|e| &e.event) {
        Some(Event::Done(done)) => assert!(!done.deadline_exceeded, "{done:?}"),
        other => panic!("the last event is not `done`: {other:?}"),
    }
    assert_eq!(run.evidence::<protocol::LinksEvidence>().len(), 1);
}
