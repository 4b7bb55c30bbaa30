//! A minimal network-namespace lab shared by the links, route, kernel and mtu tests (written
//! before the shared harness in tests/src existed): namespaces that delete themselves, veth
//! pairs, commands and long-running processes inside a namespace, and the probe run inside
//! one (as root, or as uid 65534 without capabilities) with its events decoded.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use protocol::{decode_line, Decoded, Envelope, Event, Evidence, Skipped};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Fails (never skips) when not root: CI runs these as root.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "these tests create network namespaces and must run as root (uid 0)"
    );
}

/// A network namespace named `ndt-<tag>-<pid>-<n>`, deleted (with its processes' sockets
/// and interfaces) on drop.
pub struct Ns {
    pub name: String,
    children: Vec<std::process::Child>,
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        require_root();
        let name = format!(
            "ndt-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Ns {
            name,
            children: Vec::new(),
        };
        ns.sh("ip link set lo up");
        ns
    }

    /// Run a shell script inside the namespace; panics with its stderr on failure.
    pub fn sh(&self, script: &str) -> String {
        let out = self.sh_output(script);
        assert!(
            out.status.success(),
            "in {}: `{script}` failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn sh_output(&self, script: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "bash", "-c", script])
            .output()
            .expect("run ip netns exec")
    }

    /// `ip -j ...` inside the namespace, parsed.
    pub fn ip_json(&self, args: &str) -> serde_json::Value {
        let out = self.sh(&format!("ip -j {args}"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args}: {e}: {out}"))
    }

    /// Start a long-running process in the namespace; killed on drop.
    pub fn spawn(&mut self, program: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in namespace");
        self.children.push(child);
    }

    /// Run the probe in this namespace with `plan`; returns every event.
    pub fn probe(&self, plan: &serde_json::Value) -> Vec<Event> {
        let out = Command::new(probe_path())
            .args(["--netns", &self.name, &plan.to_string()])
            .output()
            .expect("run the probe");
        assert!(
            out.status.success(),
            "probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_events(&String::from_utf8_lossy(&out.stdout))
    }

    /// Run the probe in this namespace as uid/gid 65534 with no capabilities.
    pub fn probe_unprivileged(&self, plan: &serde_json::Value) -> Vec<Event> {
        let probe = probe_path();
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "--",
            ])
            .arg(&probe)
            .arg(plan.to_string())
            .output()
            .expect("run the probe unprivileged");
        assert!(
            out.status.success(),
            "probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_events(&String::from_utf8_lossy(&out.stdout))
    }

    /// Start the probe without waiting; read its events with `finish_probe`.
    pub fn start_probe(&self, plan: &serde_json::Value) -> std::process::Child {
        Command::new(probe_path())
            .args(["--netns", &self.name, &plan.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the probe")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub fn finish_probe(child: std::process::Child) -> Vec<Event> {
    let out = child.wait_with_output().expect("wait for the probe");
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_events(&String::from_utf8_lossy(&out.stdout))
}

/// A veth pair `a_if` (in `a`) <-> `b_if` (in `b`), both up.
pub fn veth(a: &Ns, a_if: &str, b: &Ns, b_if: &str) {
    run(Command::new("ip").args([
        "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]));
    a.sh(&format!("ip link set {a_if} up"));
    b.sh(&format!("ip link set {b_if} up"));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn probe_path() -> PathBuf {
    if let Ok(p) = std::env::var("NETDEBUG_PROBE") {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test> -> target/debug/netdebug-probe
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("netdebug-probe"))
        .expect("target directory");
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p probe` first or set NETDEBUG_PROBE",
        path.display()
    );
    path
}

pub fn parse_events(stdout: &str) -> Vec<Event> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match decode_line(l).expect("probe line decodes") {
            Decoded::Event(e) => Some(Envelope::clone(&e).event),
            Decoded::Unknown { .. } => None,
        })
        .collect()
}

pub fn evidence(events: &[Event]) -> Vec<Evidence> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Evidence(ev) => Some(ev.clone()),
            _ => None,
        })
        .collect()
}

pub fn skipped(events: &[Event]) -> Vec<Skipped> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Skipped(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}
