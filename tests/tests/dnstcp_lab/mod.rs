//! A two-namespace lab shared by the dns and tcp scenario tests: a `srv` namespace and a `cli`
//! namespace joined by a veth pair (10.199.1.1/24 <-> 10.199.1.2/24, optionally fd00:199::1/64
//! <-> fd00:199::2/64), servers run in `srv`
//! as child processes, the probe runs in `cli` through its own `--netns`. Everything is
//! removed on Drop. Names are `ndt-` + a per-lab suffix so parallel tests never collide.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SRV: &str = "10.199.1.1";
pub const CLI: &str = "10.199.1.2";
pub const SRV6: &str = "fd00:199::1";
pub const CLI6: &str = "fd00:199::2";

pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "these scenario tests create network namespaces and must run as root (CI runs them as root)"
    );
}

/// Run a command; panic with its output when it fails.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run a command and return its output whatever the exit status.
pub fn run_any(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Lab {
    pub srv: String,
    pub cli: String,
    pub dir: tempfile::TempDir,
    servers: Vec<Server>,
}

impl Lab {
    pub fn new() -> Lab {
        require_root();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{:x}{}",
            std::process::id() & 0xfffff,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab {
            srv: format!("ndt-s{id}"),
            cli: format!("ndt-c{id}"),
            dir: tempfile::tempdir().expect("temp dir"),
            servers: Vec::new(),
        };
        let (veth_s, veth_c) = (format!("ndt-vs{id}"), format!("ndt-vc{id}"));
        run(&["ip", "netns", "add", &lab.srv]);
        run(&["ip", "netns", "add", &lab.cli]);
        run(&[
            "ip", "link", "add", &veth_s, "type", "veth", "peer", "name", &veth_c,
        ]);
        run(&["ip", "link", "set", &veth_s, "netns", &lab.srv]);
        run(&["ip", "link", "set", &veth_c, "netns", &lab.cli]);
        for (ns, dev, addr) in [(&lab.srv, &veth_s, SRV), (&lab.cli, &veth_c, CLI)] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                dev,
            ]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    /// IPv6 on the veth: SRV6 on the server side, CLI6 on the client side (no DAD wait).
    pub fn enable_v6(&self) {
        let cli_dev = format!("ndt-vc{}", &self.cli["ndt-c".len()..]);
        for (ns, dev, addr) in [
            (&self.srv, self.srv_dev(), SRV6),
            (&self.cli, cli_dev, CLI6),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                &dev,
                "nodad",
            ]);
        }
    }

    /// Another address on the server side of the veth (same /24).
    pub fn add_srv_addr(&self, addr: &str) {
        let dev = self.srv_dev();
        run(&[
            "ip",
            "-n",
            &self.srv,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &dev,
        ]);
    }

    fn srv_dev(&self) -> String {
        format!("ndt-vs{}", &self.srv["ndt-s".len()..])
    }

    pub fn in_srv(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", self.srv.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    pub fn in_cli(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", self.cli.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    pub fn in_cli_any(&self, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", self.cli.as_str()];
        full.extend_from_slice(args);
        run_any(&full)
    }

    /// Start a long-running process in the server namespace; killed when the lab drops.
    pub fn spawn_srv(&mut self, args: &[&str]) {
        let ns = self.srv.clone();
        self.spawn_in(&ns, args);
    }

    /// Start a long-running process in the client namespace; killed when the lab drops.
    pub fn spawn_cli(&mut self, args: &[&str]) {
        let ns = self.cli.clone();
        self.spawn_in(&ns, args);
    }

    fn spawn_in(&mut self, ns: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        self.servers.push(Server(child));
    }

    /// Wait until something in the server namespace listens on `proto` (tcp/udp) `addr:port`.
    pub fn wait_listening(&self, proto: &str, addr: &str, port: u16) {
        let flag = if proto == "udp" { "-uln" } else { "-tln" };
        let needle = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.in_srv(&["ss", "-H", flag]);
            if String::from_utf8_lossy(&out.stdout).contains(&needle) {
                return;
            }
            assert!(
                Instant::now() < until,
                "nothing listens on {proto} {needle}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// dnsmasq on `addr` (UDP and TCP 53), with `extra` options; no upstream unless given.
    pub fn dnsmasq(&mut self, addr: &str, extra: &[&str]) {
        let pid = self.file(&format!("dnsmasq-{addr}.pid"));
        let mut args = vec![
            "dnsmasq".to_string(),
            "--keep-in-foreground".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={addr}"),
            "--port=53".into(),
            format!("--pid-file={}", pid.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn_srv(&args);
        self.wait_listening("udp", addr, 53);
        self.wait_listening("tcp", addr, 53);
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.file(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }

    /// Run the probe in the client namespace; every evidence `data` in order.
    pub fn probe(&self, plan: &Value) -> Vec<Value> {
        let out = run(&[
            probe_path().to_str().unwrap(),
            "--netns",
            &self.cli,
            &plan.to_string(),
        ]);
        String::from_utf8(out.stdout)
            .expect("utf-8 events")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("one JSON event per line"))
            .filter(|e| e["type"] == "evidence")
            .map(|e| e["data"].clone())
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.servers.clear();
        // Deleting a namespace removes its end of the veth pair, which removes the other.
        let _ = run_any(&["ip", "netns", "del", &self.srv]);
        let _ = run_any(&["ip", "netns", "del", &self.cli]);
        // Only left in the root namespace when setup failed before moving it.
        let veth = self.srv_dev();
        if Path::new("/sys/class/net").join(&veth).exists() {
            let _ = run_any(&["ip", "link", "del", &veth]);
        }
    }
}

/// NETDEBUG_PROBE, else target/<profile>/netdebug-probe beside this test's deps directory.
pub fn probe_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NETDEBUG_PROBE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let probe = profile_dir.join("netdebug-probe");
    assert!(
        probe.exists(),
        "{} not found: run `cargo build -p probe` first or set NETDEBUG_PROBE",
        probe.display()
    );
    probe
}
