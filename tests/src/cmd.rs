//! Running external commands with a deadline, capturing their output.
//!
//! Hand-written rather than a crate: the only need is "spawn, collect stdout/stderr, kill after
//! a deadline", which is a few lines over `std::process`, and it must also survive commands
//! that leave a grandchild holding the output pipes open (e.g. `bash -c 'sleep 99 &'`).

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Default deadline for one helper command (`ip`, `iptables`, `ss`, `dig`...).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The result of a finished command.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// What was run, for messages.
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with the command, its status and its stderr unless it exited 0.
    #[track_caller]
    pub fn expect_success(self) -> CmdOutput {
        assert!(
            self.status.success(),
            "`{}` failed ({}):\nstderr: {}\nstdout: {}",
            self.command,
            self.status,
            self.stderr.trim_end(),
            self.stdout.trim_end()
        );
        self
    }

    /// stdout parsed as JSON (for `ip -j ...`); panics with the text on error.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON: {e}\n{}",
                self.command, self.stdout
            )
        })
    }
}

/// Describes a command for messages: program and arguments, space separated.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` (stdin closed) to completion or until `timeout`, then kills it and panics.
/// A command that cannot be started panics with its name.
#[track_caller]
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`run_with_timeout`] but returns the failure to start or to finish in time as an
/// error instead of panicking (for cleanup code, which must not panic).
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<CmdOutput, String> {
    let command = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{command}`: {e}"))?;
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{command}` did not finish within {timeout:?} (killed)\nstdout so far: {}\nstderr so far: {}",
                    stdout.text(),
                    stderr.text()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("waiting for `{command}`: {e}")),
        }
    };
    // The pipes normally close with the process; a grandchild may keep them open, so the
    // readers get a short grace period and we take whatever they collected.
    stdout.finish(Duration::from_secs(2));
    stderr.finish(Duration::from_secs(2));
    Ok(CmdOutput {
        command,
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
    })
}

/// A background reader collecting one pipe into a buffer.
pub(crate) struct Drain {
    buf: Arc<Mutex<Vec<u8>>>,
    done: std::sync::mpsc::Receiver<()>,
}

pub(crate) fn drain(mut pipe: impl Read + Send + 'static) -> Drain {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = std::sync::mpsc::channel();
    let sink = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .expect("drain buffer")
                    .extend_from_slice(&chunk[..n]),
            }
        }
        let _ = tx.send(());
    });
    Drain { buf, done }
}

impl Drain {
    /// Waits (bounded) for the pipe to reach end of file.
    pub(crate) fn finish(&self, grace: Duration) {
        let _ = self.done.recv_timeout(grace);
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().expect("drain buffer")).into_owned()
    }
}
