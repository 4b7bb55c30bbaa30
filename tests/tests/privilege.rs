//! Privilege awareness: the probe run as uid 65534 with every capability dropped (setpriv,
//! inside a namespace the test made) reports who it is in `hello`, skips the capture check
//! naming the missing capability, and still gathers the evidence of every check that needs no
//! privilege. The kernel's view of the same process (/proc/PID/status through `setpriv -d`)
//! is the oracle for the uid and capabilities.
//! Needs root: `cargo build -p probe && cargo test -p netdebug-scenarios --test privilege`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const UNPRIVILEGED: &[&str] = &[
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
];

/// Checks that need no capability: each must finish `completed` with evidence of its own.
const UNPRIVILEGED_CHECKS: &[(&str, &[&str])] = &[
    ("dns", &["dns_config", "dns_lookup"]),
    ("tcp", &["tcp"]),
    ("links", &["links"]),
    ("route", &["route", "rules"]),
    ("sockets", &["sockets"]),
    ("sysctls", &["sysctls"]),
    ("counters", &["counters"]),
    ("conntrack", &["conntrack"]),
];

#[test]
fn without_privileges_capture_is_skipped_and_the_rest_still_runs() {
    let mut ns = Netns::new();
    // A dnsmasq inside the namespace, so the unprivileged DNS lookup gets a real answer.
    let pid_file = format!("--pid-file={}", ns.dir.join("dnsmasq.pid").display());
    ns.spawn(&[
        "dnsmasq",
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--address=/priv.test/127.0.0.9",
        &pid_file,
    ]);
    ns.wait_udp_listening("127.0.0.1:53");
    // A listener the tcp check can reach.
    ns.spawn(&["python3", "-c", LISTENER, "127.0.0.1", "8080"]);
    ns.wait_tcp_listening("127.0.0.1:8080");
    // Everything the unprivileged probe reads must be readable by uid 65534.
    let resolv = ns.dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let probe = ns.dir.join("netdebug-probe");
    std::fs::copy(probe_path(), &probe).unwrap();
    for (path, mode) in [(&ns.dir, 0o755), (&probe, 0o755), (&resolv, 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    let mut checks = vec!["capture"];
    checks.extend(UNPRIVILEGED_CHECKS.iter().map(|(c, _)| *c));
    let plan = json!({
        "v": 1,
        "checks": checks,
        "targets": [{"label": "lo:8080", "host": "127.0.0.1", "port": 8080}],
        "deadline_ms": 8000,
        "dns": {"names": ["priv.test."], "resolv_conf": resolv.to_str().unwrap(), "aaaa": false},
        "capture": {"max_duration_ms": 2000, "max_packets": 100, "max_bytes": 100000},
    });
    let mut args = vec!["setpriv"];
    args.extend_from_slice(UNPRIVILEGED);
    let plan_text = plan.to_string();
    args.extend([probe.to_str().unwrap(), plan_text.as_str()]);
    let out = ns.exec(&args);
    assert!(
        out.status.success(),
        "probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();

    // hello: who the probe is, as the kernel sees a process started the same way.
    let hello = &events[0]["data"];
    assert_eq!(events[0]["type"], "hello");
    assert_eq!(
        (hello["uid"].as_u64(), hello["euid"].as_u64()),
        (Some(65534), Some(65534))
    );
    assert_eq!(hello["capabilities"], json!([]));
    let mut oracle_args = vec!["setpriv"];
    oracle_args.extend_from_slice(UNPRIVILEGED);
    oracle_args.extend(["grep", "-E", "^(Uid|CapEff):", "/proc/self/status"]);
    let oracle = String::from_utf8(ns.exec(&oracle_args).stdout).unwrap();
    assert!(oracle.contains("Uid:\t65534\t65534"), "{oracle}");
    assert!(oracle.contains("CapEff:\t0000000000000000"), "{oracle}");

    // capture: skipped, naming the capability, and never an error.
    let skipped: Vec<&Value> = events.iter().filter(|e| e["type"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "{skipped:#?}");
    assert_eq!(skipped[0]["data"]["check"], "capture");
    assert_eq!(skipped[0]["data"]["missing_capability"], "net_raw");
    assert!(skipped[0]["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("CAP_NET_RAW"));
    assert_eq!(finished(&events, "capture")["status"], "skipped");
    assert!(!events.iter().any(|e| e["type"] == "pcap_chunk"));

    // Every unprivileged check completed with its own evidence.
    let mut missing = Vec::new();
    for (check, kinds) in UNPRIVILEGED_CHECKS {
        let status = &finished(&events, check)["status"];
        if status != "completed" {
            missing.push(format!("{check}: {}", finished(&events, check)));
        }
        for kind in *kinds {
            if !events
                .iter()
                .any(|e| e["type"] == "evidence" && e["data"]["kind"] == *kind)
            {
                missing.push(format!("{check}: no `{kind}` evidence"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "unprivileged checks without evidence: {missing:#?}"
    );
    // And the evidence is real: the lookup was answered, the connect succeeded.
    let lookup = evidence(&events, "dns_lookup");
    assert_eq!(lookup["addresses"], json!(["127.0.0.9"]), "{lookup}");
    assert_eq!(evidence(&events, "tcp")["outcome"], "ok");
    let done = &events.last().unwrap()["data"];
    assert_eq!(done["checks_skipped"], 1);
    assert_eq!(done["checks_failed"], 0);
}

const LISTENER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.close()
"#;

fn finished<'a>(events: &'a [Value], check: &str) -> &'a Value {
    &events
        .iter()
        .find(|e| e["type"] == "check_finished" && e["data"]["check"] == check)
        .unwrap_or_else(|| panic!("no check_finished for {check}"))["data"]
}

fn evidence<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    &events
        .iter()
        .find(|e| e["type"] == "evidence" && e["data"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} evidence"))["data"]
}

/// NETDEBUG_PROBE, else target/<profile>/netdebug-probe beside this test's deps directory.
fn probe_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NETDEBUG_PROBE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let probe = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("netdebug-probe");
    assert!(
        probe.exists(),
        "{} not found: run `cargo build -p probe` first or set NETDEBUG_PROBE",
        probe.display()
    );
    probe
}

/// One network namespace with loopback up and a temp dir; both removed on Drop.
struct Netns {
    name: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Netns {
    fn new() -> Netns {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        assert!(
            status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")),
            "the privilege test creates a network namespace and must run as root"
        );
        let id = std::process::id();
        let ns = Netns {
            name: format!("ndt-priv{id:x}"),
            dir: std::env::temp_dir().join(format!("ndt-priv{id:x}")),
            children: Vec::new(),
        };
        std::fs::create_dir_all(&ns.dir).unwrap();
        let ok = |out: Output| {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            )
        };
        ok(Command::new("ip")
            .args(["netns", "add", &ns.name])
            .output()
            .unwrap());
        ok(Command::new("ip")
            .args(["-n", &ns.name, "link", "set", "lo", "up"])
            .output()
            .unwrap());
        ns
    }

    fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
    }

    /// Start a long-running process in the namespace; killed on Drop.
    fn spawn(&mut self, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        self.children.push(child);
    }

    fn wait_listening(&self, flag: &str, needle: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&self.exec(&["ss", "-H", flag]).stdout).contains(needle) {
            assert!(Instant::now() < until, "nothing listens on {needle}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_udp_listening(&self, addr: &str) {
        self.wait_listening("-uln", addr)
    }

    fn wait_tcp_listening(&self, addr: &str) {
        self.wait_listening("-tln", addr)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
