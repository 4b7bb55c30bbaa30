//! Network namespaces that clean up after themselves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::cmd::{describe, drain, run_with_timeout, try_run, CmdOutput, Drain, DEFAULT_TIMEOUT};
use crate::require::require_root;

static COUNTER: AtomicU32 = AtomicU32::new(0);
static STALE_SWEEP: Once = Once::new();

/// Prefix of every namespace the harness creates.
pub const NAME_PREFIX: &str = "ndt-";

/// A named network namespace `ndt-<tag>-<pid>-<counter>` with `lo` up.
///
/// On drop (also while a test panics) it kills every process it started and every other process
/// still inside it, then deletes the namespace, which removes its interfaces (and their veth
/// peers), routes, rules and firewall state.
pub struct Netns {
    name: String,
    children: Mutex<Vec<Child>>,
}

/// A long-running process started in a namespace with [`Netns::spawn`]. The namespace owns the
/// process (it is killed when the namespace drops); this handle can stop it earlier.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    pub command: String,
}

impl Process {
    /// Sends SIGKILL now (the namespace reaps it on drop). Idempotent.
    pub fn stop(&self) {
        let _ = try_run(
            Command::new("kill").args(["-KILL", &self.pid.to_string()]),
            DEFAULT_TIMEOUT,
        );
    }
}

impl Netns {
    /// Creates `ndt-<tag>-<pid>-<n>`. Panics when not root or when `ip netns add` fails.
    #[track_caller]
    pub fn new(tag: &str) -> Netns {
        require_root();
        STALE_SWEEP.call_once(remove_stale_namespaces);
        let name = format!(
            "{NAME_PREFIX}{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run_with_timeout(
            Command::new("ip").args(["netns", "add", &name]),
            DEFAULT_TIMEOUT,
        )
        .expect_success();
        let ns = Netns {
            name,
            children: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (what `ip netns`, `--netns NAME` and `ip -n` take).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, for tools that want a path.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// A `Command` running `argv` inside the namespace (`ip netns exec NAME argv...`), for
    /// callers who need full control (stdin, env). `argv` must not be empty.
    pub fn command(&self, argv: &[&str]) -> Command {
        assert!(!argv.is_empty(), "Netns::command needs a program");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(argv);
        cmd
    }

    /// Runs `argv` in the namespace and returns its output whatever the exit status.
    /// Panics only if it cannot start or exceeds `timeout`.
    #[track_caller]
    pub fn try_exec_timeout(&self, argv: &[&str], timeout: Duration) -> CmdOutput {
        run_with_timeout(&mut self.command(argv), timeout)
    }

    /// Runs `argv` in the namespace (20 s deadline) and returns its output whatever the exit
    /// status.
    #[track_caller]
    pub fn try_exec(&self, argv: &[&str]) -> CmdOutput {
        self.try_exec_timeout(argv, DEFAULT_TIMEOUT)
    }

    /// Runs `argv` in the namespace (20 s deadline); panics with its stderr unless it exits 0.
    #[track_caller]
    pub fn exec(&self, argv: &[&str]) -> CmdOutput {
        self.try_exec(argv).expect_success()
    }

    /// Runs `argv` in the namespace with a deadline of `timeout`; panics with its stderr
    /// unless it exits 0.
    #[track_caller]
    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> CmdOutput {
        self.try_exec_timeout(argv, timeout).expect_success()
    }

    /// Runs a bash script in the namespace; panics unless it exits 0; returns stdout.
    #[track_caller]
    pub fn sh(&self, script: &str) -> String {
        self.exec(&["bash", "-c", script]).stdout
    }

    /// `ip -n NAME args...`; panics unless it succeeds.
    #[track_caller]
    pub fn ip(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name]).args(args);
        run_with_timeout(&mut cmd, DEFAULT_TIMEOUT).expect_success()
    }

    /// `ip -j -n NAME args...` parsed (e.g. `ns.ip_json(&["route", "get", "10.199.1.2"])`).
    #[track_caller]
    pub fn ip_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        self.ip(&all).json()
    }

    /// Adds an address (`10.199.1.1/24` or `fd00:199::1/64`) to `dev`. IPv6 addresses skip
    /// duplicate address detection so they are usable at once.
    #[track_caller]
    pub fn add_addr(&self, dev: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(&["addr", "add", cidr, "dev", dev, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", dev]);
        }
    }

    /// `ip route add <spec>`, e.g. `ns.add_route("default via 10.199.1.1")` or
    /// `ns.add_route("10.199.5.0/24 via 10.199.1.1 table 100")`.
    #[track_caller]
    pub fn add_route(&self, spec: &str) {
        let mut args = vec!["route", "add"];
        args.extend(spec.split_whitespace());
        self.ip(&args);
    }

    /// `ip rule add <spec>`, e.g. `ns.add_rule("to 10.199.5.7 lookup 100 priority 100")`.
    #[track_caller]
    pub fn add_rule(&self, spec: &str) {
        let mut args = vec!["rule", "add"];
        args.extend(spec.split_whitespace());
        self.ip(&args);
    }

    /// Sets `dev`'s MTU.
    #[track_caller]
    pub fn set_mtu(&self, dev: &str, mtu: u32) {
        self.ip(&["link", "set", "dev", dev, "mtu", &mtu.to_string()]);
    }

    /// Brings `dev` up.
    #[track_caller]
    pub fn link_up(&self, dev: &str) {
        self.ip(&["link", "set", "dev", dev, "up"]);
    }

    /// Runs `iptables -w 5 args...` in the namespace (nf_tables backend on Debian 12); panics
    /// unless it succeeds. E.g. `ns.iptables(&["-A", "INPUT", "-p", "tcp", "--dport", "81",
    /// "-j", "REJECT", "--reject-with", "tcp-reset"])`.
    #[track_caller]
    pub fn iptables(&self, args: &[&str]) {
        let mut argv = vec!["iptables", "-w", "5"];
        argv.extend_from_slice(args);
        self.exec(&argv);
    }

    /// `iptables -A INPUT MATCH -m statistic --mode nth --every N --packet 0 -j DROP`: drop
    /// exactly every Nth packet `matching` selects (e.g. `-p tcp --syn --dport 8080`), a
    /// partial failure whose size the rule's own counter tells ([`Netns::input_rule_packets`]).
    #[track_caller]
    pub fn drop_every_nth(&self, matching: &str, n: u32) {
        self.every_nth("INPUT", matching, n, "DROP");
    }

    /// `iptables -A CHAIN MATCH -m statistic --mode nth --every N --packet 0 -j TARGET`: apply
    /// `target` (e.g. `REJECT --reject-with icmp-admin-prohibited`) to exactly every Nth
    /// packet `matching` selects in `chain`.
    #[track_caller]
    pub fn every_nth(&self, chain: &str, matching: &str, n: u32, target: &str) {
        let n = n.to_string();
        let mut args = vec!["-A", chain];
        args.extend(matching.split_whitespace());
        args.extend(["-m", "statistic", "--mode", "nth", "--every", &n]);
        args.extend(["--packet", "0", "-j"]);
        args.extend(target.split_whitespace());
        self.iptables(&args);
    }

    /// Packets the `rule`-th rule (from 1) of the INPUT chain matched (`iptables -L INPUT -v
    /// -x -n`): the oracle for a rule-made fault.
    #[track_caller]
    pub fn input_rule_packets(&self, rule: usize) -> u64 {
        let out = self
            .exec(&["iptables", "-L", "INPUT", "-v", "-x", "-n"])
            .stdout;
        out.lines()
            .nth(rule + 1)
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no packet count for INPUT rule {rule} in:\n{out}"))
    }

    /// `iptables -A INPUT -p tcp --dport PORT -j REJECT --reject-with WITH`: connects to the
    /// port from outside are answered by `with` (`tcp-reset`, `icmp-port-unreachable`,
    /// `icmp-admin-prohibited`...).
    #[track_caller]
    pub fn reject_tcp_port(&self, port: u16, with: &str) {
        self.reject_tcp(false, "INPUT", port, with);
    }

    /// Appends `-p tcp --dport PORT -j REJECT --reject-with WITH` to `chain` of iptables (or
    /// ip6tables with `v6`).
    #[track_caller]
    pub fn reject_tcp(&self, v6: bool, chain: &str, port: u16, with: &str) {
        let port = port.to_string();
        let args = [
            "-A",
            chain,
            "-p",
            "tcp",
            "--dport",
            &port,
            "-j",
            "REJECT",
            "--reject-with",
            with,
        ];
        if v6 {
            self.ip6tables(&args);
        } else {
            self.iptables(&args);
        }
    }

    /// `iptables -A INPUT -p tcp --dport PORT -j DROP`: connects to the port time out.
    #[track_caller]
    pub fn drop_tcp_port(&self, port: u16) {
        let port = port.to_string();
        self.iptables(&["-A", "INPUT", "-p", "tcp", "--dport", &port, "-j", "DROP"]);
    }

    /// Same as [`Netns::iptables`] for IPv6.
    #[track_caller]
    pub fn ip6tables(&self, args: &[&str]) {
        let mut argv = vec!["ip6tables", "-w", "5"];
        argv.extend_from_slice(args);
        self.exec(&argv);
    }

    /// Writes a per-namespace sysctl (`net.ipv4.ip_local_port_range`, `net.ipv4.conf.all.rp_filter`...).
    #[track_caller]
    pub fn set_sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-q", "-w", &format!("{key}={value}")]);
    }

    /// Reads a sysctl as seen inside the namespace, trimmed.
    #[track_caller]
    pub fn sysctl(&self, key: &str) -> String {
        self.exec(&["sysctl", "-n", key]).stdout.trim().to_string()
    }

    /// Starts a long-running `argv` inside the namespace with stdin kept open (a pipe from
    /// this process; helpers that watch stdin exit when the test process dies), stdout and
    /// stderr discarded. It is killed when the namespace drops.
    #[track_caller]
    pub fn spawn(&self, argv: &[&str]) -> Process {
        let mut cmd = self.command(argv);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", describe(&cmd)));
        self.adopt(child, describe(&cmd))
    }

    /// Starts `argv` in the namespace with the given stdin and stdout and its stderr
    /// collected in the background; panics if it cannot start.
    #[track_caller]
    pub(crate) fn start(&self, argv: &[&str], stdin: Stdio, stdout: Stdio) -> Started {
        let mut cmd = self.command(argv);
        cmd.stdin(stdin).stdout(stdout).stderr(Stdio::piped());
        let command = describe(&cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        Started {
            child,
            command,
            stderr,
        }
    }

    /// Starts `argv` in the namespace (stdin and stdout closed, stderr collected) and polls
    /// `ready` with what it has written to stderr so far until it holds. Panics with that
    /// stderr if the program exits first or is not ready within 10 s (then it is killed); in
    /// the panic message it is said to have failed to `what`, e.g. "bind 10.199.1.1:53". The
    /// caller owns the returned child (see [`Netns::adopt`]).
    #[track_caller]
    pub(crate) fn spawn_until_ready(
        &self,
        argv: &[&str],
        what: &str,
        mut ready: impl FnMut(&Drain) -> bool,
    ) -> Started {
        let Started {
            mut child,
            command,
            stderr,
        } = self.start(argv, Stdio::null(), Stdio::null());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                stderr.finish(Duration::from_secs(1));
                panic!(
                    "`{command}` in {} exited ({status}): {}",
                    self.name,
                    stderr.text()
                );
            }
            if ready(&stderr) {
                return Started {
                    child,
                    command,
                    stderr,
                };
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{command}` in {} did not {what} within 10 s: {}",
                    self.name,
                    stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Takes ownership of a child started in this namespace so it is killed on drop.
    pub fn adopt(&self, child: Child, command: String) -> Process {
        let process = Process {
            pid: child.id(),
            command,
        };
        self.children.lock().expect("children list").push(child);
        process
    }

    /// `ss -tan` run inside the namespace, as a count per state in ss spelling
    /// (`ESTAB`, `TIME-WAIT`...): the independent oracle for the sockets check.
    #[track_caller]
    pub fn ss_tcp_state_counts(&self) -> BTreeMap<String, u64> {
        let out = self.exec(&["ss", "-H", "-tan"]);
        let mut counts = BTreeMap::new();
        for line in out.stdout.lines() {
            if let Some(state) = line.split_whitespace().next() {
                *counts.entry(state.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Process ids inside the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        namespace_pids(&self.name)
    }
}

/// A program started in a namespace by [`Netns::start`] or [`Netns::spawn_until_ready`].
pub(crate) struct Started {
    pub child: Child,
    /// Its command line, for messages.
    pub command: String,
    /// Its stderr, still being collected.
    pub stderr: Drain,
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Never panic here: this runs while a failing test unwinds.
        if let Ok(mut children) = self.children.lock() {
            for child in children.iter_mut() {
                let _ = child.kill();
            }
            for mut child in children.drain(..) {
                let _ = child.wait();
            }
        }
        destroy(&self.name);
    }
}

/// Kills everything inside `name` and deletes it. Bounded: a few rounds of SIGKILL.
fn destroy(name: &str) {
    for _ in 0..5 {
        let pids = namespace_pids(name);
        if pids.is_empty() {
            break;
        }
        let mut kill = Command::new("kill");
        kill.arg("-KILL").args(pids.iter().map(u32::to_string));
        let _ = try_run(&mut kill, DEFAULT_TIMEOUT);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = try_run(
        Command::new("ip").args(["netns", "del", name]),
        DEFAULT_TIMEOUT,
    );
}

fn namespace_pids(name: &str) -> Vec<u32> {
    try_run(
        Command::new("ip").args(["netns", "pids", name]),
        DEFAULT_TIMEOUT,
    )
    .map(|o| {
        o.stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

/// Deletes `ndt-*-<pid>-<n>` namespaces whose creating process is gone (a test run that was
/// killed before its destructors ran), so they do not pile up across runs.
fn remove_stale_namespaces() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = creator_pid(&name) {
            if !PathBuf::from(format!("/proc/{pid}")).exists() {
                destroy(&name);
            }
        }
    }
}

/// The creator's pid encoded in a harness namespace name, `ndt-<tag>-<pid>-<n>`.
fn creator_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let mut parts = rest.rsplit('-');
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?.parse().ok()
}

/// Reads the first line a child prints, waiting at most `timeout`; the rest of its stdout is
/// drained in the background so it never blocks on a full pipe.
pub(crate) fn read_ready_line(
    child: &mut Child,
    timeout: Duration,
) -> Result<String, &'static str> {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().ok_or("stdout is not piped")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let ok = reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false);
        let _ = tx.send(ok.then(|| line.trim_end().to_string()));
        // Keep draining until the process exits.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    match rx.recv_timeout(timeout) {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err("it exited before reporting ready"),
        Err(_) => Err("it did not report ready in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::creator_pid;

    #[test]
    fn creator_pid_is_parsed_from_names_with_dashes_in_the_tag() {
        assert_eq!(creator_pid("ndt-client-42-0"), Some(42));
        assert_eq!(creator_pid("ndt-tw-many-7-13"), Some(7));
        assert_eq!(creator_pid("ndt-client-x-0"), None);
        assert_eq!(creator_pid("other-1-2"), None);
    }
}
