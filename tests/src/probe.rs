//! Running `netdebug-probe` in a namespace and reading its event stream.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use protocol::{
    decode_line, CheckFinished, CheckKind, Decoded, Done, Envelope, Event, Evidence, Hello, Plan,
    Skipped, Target,
};

use crate::cmd::{describe, drain, run_with_timeout, CmdOutput, Drain};
use crate::netns::Netns;

/// Extra time the probe gets beyond its plan deadline before the harness kills it (process
/// start, namespace entry, writing the last lines).
const DEADLINE_GRACE: Duration = Duration::from_secs(10);

/// The cargo target profile directory of the running test or bench (`target/debug` for
/// `target/debug/deps/<test>-<hash>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running test");
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .expect("test executable lives in target/<profile>/deps")
}

/// The probe binary: env `NETDEBUG_PROBE`, else `netdebug-probe` in this profile's target
/// directory (build it first: `cargo build -p probe`).
pub fn probe_path() -> PathBuf {
    if let Ok(p) = std::env::var("NETDEBUG_PROBE") {
        return PathBuf::from(p);
    }
    let path = target_dir().join("netdebug-probe");
    assert!(
        path.is_file(),
        "{} not found: run `cargo build -p probe` first (or set NETDEBUG_PROBE)",
        path.display()
    );
    path
}

/// A target `ip:port` labelled with its own text.
pub fn tcp_target(addr: SocketAddr) -> Target {
    Target {
        label: addr.to_string(),
        host: addr.ip().to_string(),
        port: Some(addr.port()),
        role: Default::default(),
    }
}

/// A plan running exactly `checks` against `targets` (protocol defaults otherwise).
pub fn plan(checks: &[CheckKind], targets: Vec<Target>) -> Plan {
    let mut plan = Plan::new(targets);
    plan.checks = checks.iter().map(|&c| c.into()).collect();
    plan
}

/// A plan written as JSON the way the client sends it (protocol defaults for what it leaves
/// out), e.g. `json_plan(json!({"v": 1, "checks": ["tcp"], "connect_timeout_ms": 800}))`.
/// Panics with the JSON when it is not a valid plan.
#[track_caller]
pub fn json_plan(plan: serde_json::Value) -> Plan {
    serde_json::from_value(plan.clone()).unwrap_or_else(|e| panic!("not a valid plan: {e}\n{plan}"))
}

/// One finished probe run: every decoded event in order, plus the raw output.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    pub events: Vec<Envelope>,
    /// Event types (or `evidence/<kind>`) this protocol version does not know.
    pub unknown: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
    /// Wall time of the probe process, start to exit.
    pub elapsed: Duration,
}

/// Runs the probe with `--netns <ns>` and `plan`, bounded by the plan's deadline plus a
/// grace period. Every stdout line must decode (a bad line panics with the line); the exit
/// status is not asserted here (see [`ProbeRun::assert_ok`]).
#[track_caller]
pub fn run_probe(ns: &Netns, plan: &Plan) -> ProbeRun {
    run_probe_args(&["--netns", ns.name()], plan)
}

/// Runs the probe with `args` before the plan JSON (e.g. `["--pid", "1234"]`, or nothing to
/// probe the current namespace).
#[track_caller]
pub fn run_probe_args(args: &[&str], plan: &Plan) -> ProbeRun {
    let json = serde_json::to_string(plan).expect("a plan serialises");
    let mut cmd = Command::new(probe_path());
    cmd.args(args).arg(&json);
    let timeout = Duration::from_millis(plan.deadline_ms) + DEADLINE_GRACE;
    run_probe_command(&mut cmd, timeout)
}

/// Runs a prepared probe command line (for wrappers like `setpriv ... netdebug-probe`).
#[track_caller]
pub fn run_probe_command(cmd: &mut Command, timeout: Duration) -> ProbeRun {
    let started = Instant::now();
    let out = run_with_timeout(cmd, timeout);
    decode_run(out, started.elapsed())
}

/// Decodes the output of a finished probe process (however it was run) into a [`ProbeRun`].
/// Every non-empty stdout line must be a valid event of this protocol major: a bad line
/// panics with the line and the probe's stderr.
#[track_caller]
pub fn decode_run(out: CmdOutput, elapsed: Duration) -> ProbeRun {
    let mut events = Vec::new();
    let mut unknown = Vec::new();
    for (n, line) in out.stdout.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match decode_line(line) {
            Ok(Decoded::Event(e)) => events.push(*e),
            Ok(Decoded::Unknown { event_type, .. }) => unknown.push(event_type),
            Err(e) => panic!(
                "`{}`: stdout line {} is not a valid event: {e}\nline: {line}\nstderr: {}",
                out.command,
                n + 1,
                out.stderr
            ),
        }
    }
    ProbeRun {
        events,
        unknown,
        stdout: out.stdout,
        stderr: out.stderr,
        status: out.status,
        elapsed,
    }
}

/// Runs the probe inside `ns` as uid/gid 65534 with no capabilities (`ip netns exec NS
/// setpriv --reuid 65534 --regid 65534 --clear-groups -- netdebug-probe PLAN`): what a pod
/// under the `restricted` Pod Security profile grants.
#[track_caller]
pub fn run_probe_unprivileged(ns: &Netns, plan: &Plan) -> ProbeRun {
    let json = serde_json::to_string(plan).expect("a plan serialises");
    let probe = probe_path();
    let probe = probe.to_string_lossy();
    let mut cmd = ns.command(&[
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
        &probe,
        &json,
    ]);
    let timeout = Duration::from_millis(plan.deadline_ms) + DEADLINE_GRACE;
    run_probe_command(&mut cmd, timeout)
}

/// A probe running in the background with its stdin piped, for plans whose `control` is
/// `via: stdin`: the test writes the control words ([`PacedProbe::say`]), watches the events
/// as they come ([`PacedProbe::wait_for`]), and collects the finished run
/// ([`PacedProbe::finish`]). Killed on drop if still running.
pub struct PacedProbe {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Drain,
    stderr: Drain,
    command: String,
    started: Instant,
    /// The plan's deadline plus the grace period: the probe is killed past it.
    limit: Instant,
}

/// Starts the probe with `--netns <ns>` and `plan`, its stdin a pipe the test writes to.
#[track_caller]
pub fn spawn_paced_probe(ns: &Netns, plan: &Plan) -> PacedProbe {
    let json = serde_json::to_string(plan).expect("a plan serialises");
    let mut cmd = Command::new(probe_path());
    cmd.args(["--netns", ns.name()])
        .arg(&json)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = describe(&cmd);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    PacedProbe {
        stdin: child.stdin.take(),
        stdout: drain(child.stdout.take().expect("piped stdout")),
        stderr: drain(child.stderr.take().expect("piped stderr")),
        child: Some(child),
        command,
        started,
        limit: started + Duration::from_millis(plan.deadline_ms) + DEADLINE_GRACE,
    }
}

impl PacedProbe {
    /// Writes one control word (and a newline) to the probe's stdin.
    #[track_caller]
    pub fn say(&mut self, word: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin
            .write_all(format!("{word}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write `{word}` to the probe: {e}"));
    }

    /// Closes the probe's stdin (end of the control channel).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The events written so far (a partial last line is left for later).
    pub fn events(&self) -> Vec<Envelope> {
        let text = self.stdout.text();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n') && !l.trim().is_empty())
            .filter_map(|l| match decode_line(l.trim_end()) {
                Ok(Decoded::Event(e)) => Some(*e),
                _ => None,
            })
            .collect()
    }

    /// Waits (at most `timeout`) for the first event that `matches`; panics naming `what`,
    /// with the stream so far, when none comes.
    #[track_caller]
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Event) -> bool,
    ) -> Envelope {
        let until = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| matches(&e.event)) {
                return e;
            }
            assert!(
                Instant::now() < until,
                "no {what} from `{}` within {timeout:?}\nstdout: {}\nstderr: {}",
                self.command,
                self.stdout.text(),
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the probe to exit by itself (killing it past its deadline and grace, which
    /// the decoded run then shows as cut short), and decodes its stream.
    #[track_caller]
    pub fn finish(mut self) -> ProbeRun {
        let mut child = self.child.take().expect("a running probe");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= self.limit => {
                    let _ = child.kill();
                    break child.wait().expect("wait for the killed probe");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("waiting for `{}`: {e}", self.command),
            }
        };
        let elapsed = self.started.elapsed();
        self.stdout.finish(Duration::from_secs(2));
        self.stderr.finish(Duration::from_secs(2));
        let out = CmdOutput {
            command: self.command.clone(),
            status,
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
        };
        decode_run(out, elapsed)
    }
}

impl Drop for PacedProbe {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A resolv.conf with `contents` in a temporary file (deleted on drop), for
/// `plan.dns.resolv_conf`: the probe reads that path in the test's mount namespace.
pub fn resolv_conf(contents: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("create a temporary resolv.conf");
    std::fs::write(file.path(), contents).expect("write the temporary resolv.conf");
    file
}

/// Evidence structs that can be picked out of an [`Evidence`] by type.
/// Evidence asked for by type: the protocol's registry says which variant holds it.
pub use protocol::EvidenceType as EvidenceKind;

impl ProbeRun {
    /// Panics (with stderr and stdout) unless the probe exited 0 and the stream starts with
    /// `hello`, ends with `done`, and has contiguous sequence numbers from 0.
    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "probe exited {}\nstderr: {}\nstdout: {}",
            self.status,
            self.stderr,
            self.stdout
        );
        assert!(
            matches!(self.events.first().map(|e| &e.event), Some(Event::Hello(_))),
            "first event is not hello:\n{}",
            self.stdout
        );
        assert!(
            matches!(self.events.last().map(|e| &e.event), Some(Event::Done(_))),
            "last event is not done (probe cut short?):\n{}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        let total = self.events.len() + self.unknown.len();
        for (i, e) in self.events.iter().enumerate() {
            assert!(
                (e.seq as usize) < total && (i == 0 || e.seq > self.events[i - 1].seq),
                "sequence numbers are not increasing from 0:\n{}",
                self.stdout
            );
        }
        self
    }

    /// Every evidence event, in order.
    pub fn all_evidence(&self) -> impl Iterator<Item = &Evidence> {
        self.events.iter().filter_map(|e| match &e.event {
            Event::Evidence(ev) => Some(ev),
            _ => None,
        })
    }

    /// Every evidence of one kind, e.g. `run.evidence::<TcpEvidence>()`.
    pub fn evidence<T: EvidenceKind>(&self) -> Vec<&T> {
        self.all_evidence().filter_map(T::from_evidence).collect()
    }

    /// The single evidence of one kind; panics (showing the stream) unless there is exactly one.
    #[track_caller]
    pub fn one<T: EvidenceKind>(&self) -> &T {
        let all = self.evidence::<T>();
        assert!(
            all.len() == 1,
            "expected exactly one {} evidence, found {}\nstdout: {}\nstderr: {}",
            std::any::type_name::<T>(),
            all.len(),
            self.stdout,
            self.stderr
        );
        all[0]
    }

    /// The `check_finished` event of `check`; panics if there is none.
    #[track_caller]
    pub fn finished(&self, check: CheckKind) -> &CheckFinished {
        self.events
            .iter()
            .find_map(|e| match &e.event {
                Event::CheckFinished(f) if f.check == check => Some(f),
                _ => None,
            })
            .unwrap_or_else(|| {
                panic!(
                    "no check_finished for {check}\nstdout: {}\nstderr: {}",
                    self.stdout, self.stderr
                )
            })
    }

    /// Every `skipped` event, whatever its check.
    pub fn all_skipped(&self) -> Vec<&Skipped> {
        self.events
            .iter()
            .filter_map(|e| match &e.event {
                Event::Skipped(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The `skipped` events of `check`.
    pub fn skipped(&self, check: CheckKind) -> Vec<&Skipped> {
        self.all_skipped()
            .into_iter()
            .filter(|s| s.check == check)
            .collect()
    }

    /// The `hello` event; panics if missing.
    #[track_caller]
    pub fn hello(&self) -> &Hello {
        self.events
            .iter()
            .find_map(|e| match &e.event {
                Event::Hello(h) => Some(h),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no hello event\nstdout: {}", self.stdout))
    }

    /// The `done` event; panics if missing.
    #[track_caller]
    pub fn done(&self) -> &Done {
        self.events
            .iter()
            .find_map(|e| match &e.event {
                Event::Done(d) => Some(d),
                _ => None,
            })
            .unwrap_or_else(|| {
                panic!(
                    "no done event (probe cut short?)\nstdout: {}\nstderr: {}",
                    self.stdout, self.stderr
                )
            })
    }
}

/// A peer of the probe's tunnel, for `python3 -c TUNNEL_PEER PORT TOKEN [MARK WORD]`: connects
/// to 127.0.0.1:PORT until it answers (at most 10 s), sends TOKEN and a newline, and with MARK
/// and WORD sends WORD once the stream contains MARK (a control word after `armed`, say); then
/// prints every byte it got until the probe closes the connection. It stands where the
/// kubelet's port-forward dials, inside the probe's namespace.
pub const TUNNEL_PEER: &str = r#"
import socket, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
mark, word = (sys.argv[3].encode(), sys.argv[4].encode()) if len(sys.argv) > 4 else (None, None)
deadline = time.time() + 10
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("nothing listened on %d" % port)
        time.sleep(0.01)
s.sendall((token + "\n").encode())
out = b""
while mark is not None and mark not in out:
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("the stream ended before %r: %r" % (mark, out))
    out += chunk
if word is not None:
    s.sendall(word + b"\n")
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode())
"#;
