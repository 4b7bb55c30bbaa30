//! The capture check against real traffic in two namespaces joined by a veth pair: a listener
//! (handshake), a closed port and an iptables REJECT tcp-reset (refused), an iptables DROP
//! (unanswered, with SYN retransmissions), DNS to a dnsmasq and to a nameserver whose queries
//! are dropped. The traffic is the probe's own tcp and dns checks run in the same plan. The
//! pcap the probe streams is decoded (coreutils `base64 -d`) into a file and read back with
//! `tcpdump -nn -r`, which must show the same packets the flow summary counts.
//! Needs root: `cargo build -p probe && cargo test -p netdebug-scenarios --test capture`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use protocol::{CaptureSummary, Evidence, TcpFlow};
use serde_json::{json, Value};

const SRV: &str = "10.199.1.1";
/// A second server address whose DNS queries iptables drops.
const SRV_SILENT: &str = "10.199.1.3";
const CLI: &str = "10.199.1.2";

/// A TCP listener that accepts and holds connections until the peer closes.
const LISTENER: &str = r#"
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
def serve(c):
    while c.recv(4096):
        pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

#[test]
fn flows_and_pcap_match_the_traffic() {
    let mut lab = Lab::new();
    lab.spawn_srv(&["python3", "-c", LISTENER, SRV, "8080"]);
    lab.wait_listening(SRV, 8080);
    // 8081: nothing listens (the kernel resets); 8082: REJECT tcp-reset; 8083: DROP.
    lab.in_srv(&[
        "iptables",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "8082",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ]);
    lab.in_srv(&[
        "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8083", "-j", "DROP",
    ]);
    lab.in_srv(&[
        "iptables", "-A", "INPUT", "-d", SRV_SILENT, "-p", "udp", "--dport", "53", "-j", "DROP",
    ]);
    lab.dnsmasq(
        SRV,
        &["--address=/capture.test/10.199.1.1", "--local=/test/"],
    );
    // The silent nameserver first: its query goes unanswered, then dnsmasq answers.
    let resolv = lab.write(
        "resolv.conf",
        &format!("nameserver {SRV_SILENT}\nnameserver {SRV}\noptions timeout:1 attempts:1\n"),
    );

    let targets: Vec<Value> = [8080, 8081, 8082, 8083]
        .iter()
        .map(|p| json!({"label": format!("{SRV}:{p}"), "host": SRV, "port": p}))
        .collect();
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "dns", "capture"],
        "targets": targets,
        // Long enough for one SYN retransmission (1 s) to the DROP port, short of the second (3 s).
        "connect_timeout_ms": 2200,
        "deadline_ms": 12000,
        "dns": {"names": ["capture.test.", "missing.test."], "resolv_conf": resolv.to_str().unwrap(), "aaaa": false},
        "capture": {"max_duration_ms": 10000, "max_packets": 10000, "max_bytes": 1000000},
    });
    let started = Instant::now();
    let run = lab.probe(&plan);
    let elapsed = started.elapsed();
    let summary = run.capture_summary();

    // The capture followed the traffic checks instead of sitting out its 10 s.
    assert_eq!(summary.stopped_by, "traffic_done", "{summary:#?}");
    assert!(elapsed < Duration::from_secs(8), "the run took {elapsed:?}");
    assert_eq!(summary.kernel_drops, 0);
    assert_eq!(summary.interface, "any");
    assert!(
        summary
            .filter
            .contains(&format!("(host {SRV} and tcp port 8083)")),
        "{}",
        summary.filter
    );
    assert!(
        summary
            .filter
            .contains(&format!("(host {SRV_SILENT} and port 53)")),
        "{}",
        summary.filter
    );

    let flows: BTreeMap<u16, &TcpFlow> = summary
        .tcp_flows
        .iter()
        .map(|f| (f.server.port(), f))
        .collect();
    let cli_ip: std::net::IpAddr = CLI.parse().unwrap();
    for f in flows.values() {
        assert_eq!(f.client.ip(), cli_ip, "{f:?}");
    }
    assert_eq!(flows[&8080].handshake, "established", "{:?}", flows[&8080]);
    assert!(flows[&8080].handshake_ms.is_some());
    for port in [8081, 8082] {
        let f = flows[&port];
        assert_eq!(f.handshake, "refused", "{f:?}");
        assert_eq!(f.rst_from.as_deref(), Some("server"));
        assert!(!f.rst_after_data);
    }
    let dropped = flows[&8083];
    assert_eq!(dropped.handshake, "unanswered", "{dropped:?}");
    assert!(
        dropped.syn_count >= 2,
        "no SYN retransmission seen: {dropped:?}"
    );
    assert_eq!(dropped.retransmits, dropped.syn_count - 1);

    let dns = |name: &str, server: &str| {
        summary
            .dns
            .iter()
            .find(|d| {
                d.name == name && d.server == format!("{server}:53").parse::<SocketAddr>().unwrap()
            })
            .unwrap_or_else(|| panic!("no DNS exchange for {name} to {server}: {:#?}", summary.dns))
    };
    let answered = dns("capture.test.", SRV);
    assert_eq!(answered.rcode.as_deref(), Some("NOERROR"));
    assert_eq!(answered.answers, Some(1));
    assert!(
        answered
            .latency_ms
            .is_some_and(|l| (0.0..1000.0).contains(&l)),
        "{answered:?}"
    );
    assert_eq!(dns("missing.test.", SRV).rcode.as_deref(), Some("NXDOMAIN"));
    let silent = dns("capture.test.", SRV_SILENT);
    assert_eq!(
        (silent.rcode.as_deref(), silent.latency_ms),
        (None, None),
        "{silent:?}"
    );

    // The same packets, as tcpdump reads them from the probe's pcap.
    let pcap = lab.dir.join("probe.pcap");
    run.write_pcap(&pcap);
    let lines = tcpdump_read(&pcap, None);
    assert_eq!(lines.len() as u64, summary.packets_captured);
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    // On the client's veth each packet is seen once (out or in).
    let syns_to = |port: u16| count(&format!("> {SRV}.{port}: Flags [S],"));
    assert_eq!(syns_to(8083) as u32, dropped.syn_count, "{lines:#?}");
    assert_eq!(
        count(&format!("{SRV}.8083 > ")),
        0,
        "the DROP port answered?"
    );
    for port in [8081, 8082] {
        assert_eq!(syns_to(port), 1);
        assert_eq!(
            count(&format!("IP {SRV}.{port} > {CLI}.")),
            1,
            "one RST from {port}"
        );
        assert!(lines
            .iter()
            .any(|l| l.contains(&format!("IP {SRV}.{port} > ")) && l.contains("Flags [R.]")));
    }
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("IP {SRV}.8080 > ")) && l.contains("Flags [S.]")));
    let silent_queries = lines
        .iter()
        .filter(|l| l.contains(&format!("> {SRV_SILENT}.53: ")) && l.contains("A? capture.test."))
        .count();
    assert_eq!(silent_queries, silent.queries.unwrap() as usize);
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("IP {SRV}.53 > ")) && l.contains("A 10.199.1.1")));
    assert!(lines
        .iter()
        .any(|l| l.contains(&format!("IP {SRV}.53 > ")) && l.contains("NXDomain")));
    // tcpdump applies the flow's own filter to the file and finds every packet of it.
    let flow_lines = tcpdump_read(&pcap, Some(&format!("tcp port {}", dropped.client.port())));
    assert_eq!(flow_lines.len() as u64, dropped.packets);
}

#[test]
fn a_name_target_is_resolved_while_capturing() {
    let mut lab = Lab::new();
    lab.spawn_srv(&["python3", "-c", LISTENER, SRV, "8080"]);
    lab.wait_listening(SRV, 8080);
    lab.dnsmasq(SRV, &["--address=/capture.test/10.199.1.1"]);
    let resolv = lab.write("resolv.conf", &format!("nameserver {SRV}\n"));
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "capture"],
        "targets": [{"label": "web", "host": "web.capture.test", "port": 8080}],
        "deadline_ms": 8000,
        "dns": {"resolv_conf": resolv.to_str().unwrap(), "aaaa": false},
        "capture": {"max_duration_ms": 5000, "max_packets": 1000, "max_bytes": 1000000},
    });
    let run = lab.probe(&plan);
    let summary = run.capture_summary();
    assert!(
        summary.filter.starts_with(&format!(
            "(host {SRV} and tcp port 8080) or (host {SRV} and port 53)"
        )),
        "{}",
        summary.filter
    );
    // The lookup the probe made for the target is in the capture, and so is the connect.
    let query = summary
        .dns
        .iter()
        .find(|d| d.name == "web.capture.test.")
        .expect("the target's lookup");
    assert_eq!(
        (query.qtype.as_str(), query.rcode.as_deref()),
        ("A", Some("NOERROR"))
    );
    assert_eq!(summary.tcp_flows.len(), 1, "{:#?}", summary.tcp_flows);
    assert_eq!(summary.tcp_flows[0].handshake, "established");
    let pcap = lab.dir.join("name.pcap");
    run.write_pcap(&pcap);
    let lines = tcpdump_read(&pcap, None);
    assert!(
        lines.iter().any(|l| l.contains("A? web.capture.test.")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("> {SRV}.8080: Flags [S],"))),
        "{lines:#?}"
    );
}

#[test]
fn user_filter_on_one_interface_with_full_packets() {
    let mut lab = Lab::new();
    lab.spawn_srv(&["python3", "-c", LISTENER, SRV, "8080"]);
    lab.wait_listening(SRV, 8080);
    let targets: Vec<Value> = [8080, 8081]
        .iter()
        .map(|p| json!({"label": format!("{SRV}:{p}"), "host": SRV, "port": p}))
        .collect();
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "capture"],
        "targets": targets,
        "deadline_ms": 8000,
        "capture": {"interface": lab.cli_dev, "filter": "tcp dst port 8080 or src port 8080",
                    "snaplen": 65535, "max_duration_ms": 5000, "max_packets": 1000, "max_bytes": 1000000},
    });
    let run = lab.probe(&plan);
    let summary = run.capture_summary();
    assert_eq!(summary.interface, lab.cli_dev);
    assert_eq!(summary.filter, "tcp dst port 8080 or src port 8080");
    assert_eq!(
        summary.tcp_flows.len(),
        1,
        "only the 8080 flow passes: {:#?}",
        summary.tcp_flows
    );
    assert_eq!(summary.tcp_flows[0].handshake, "established");

    let pcap = lab.dir.join("user.pcap");
    run.write_pcap(&pcap);
    let lines = tcpdump_read(&pcap, None);
    assert_eq!(lines.len() as u64, summary.packets_captured);
    assert!(lines.iter().all(|l| l.contains(".8080")), "{lines:#?}");
    // Full packets: every record kept whole.
    for (incl, orig) in pcap_records(&pcap) {
        assert_eq!(incl, orig);
    }
}

#[test]
fn headers_only_by_default() {
    let mut lab = Lab::new();
    lab.dnsmasq(SRV, &["--address=/capture.test/10.199.1.1"]);
    let resolv = lab.write("resolv.conf", &format!("nameserver {SRV}\n"));
    // A long name makes the DNS packets longer than 128 bytes.
    let long = format!("{}.capture.test.", "a".repeat(60));
    let plan = json!({
        "v": 1,
        "checks": ["dns", "capture"],
        "deadline_ms": 8000,
        "dns": {"names": [long], "resolv_conf": resolv.to_str().unwrap()},
        "capture": {"max_duration_ms": 5000, "max_packets": 1000, "max_bytes": 1000000},
    });
    let run = lab.probe(&plan);
    let summary = run.capture_summary();
    assert_eq!(summary.snaplen, 128);
    let pcap = lab.dir.join("snap.pcap");
    run.write_pcap(&pcap);
    let records = pcap_records(&pcap);
    assert!(!records.is_empty());
    assert!(records.iter().all(|(incl, _)| *incl <= 16 + 128));
    assert!(
        records.iter().any(|(incl, orig)| incl < orig),
        "nothing was cut: {records:?}"
    );
    // The question still fits in the kept part: the summary names the query.
    assert!(
        summary
            .dns
            .iter()
            .any(|d| d.name == long && d.rcode.as_deref() == Some("NOERROR")),
        "{:#?}",
        summary.dns
    );
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("snapshot length 144"));
}

#[test]
fn a_filter_that_does_not_compile_names_the_column() {
    let lab = Lab::new();
    let plan = json!({
        "v": 1, "checks": ["capture"], "deadline_ms": 3000,
        "capture": {"filter": "tcp port http", "max_duration_ms": 1000, "max_packets": 10, "max_bytes": 10000},
    });
    let run = lab.probe(&plan);
    let finished = run.finished("capture");
    assert_eq!(finished["status"], "error");
    assert_eq!(
        finished["error"],
        "filter: expected a port number, found `http` at column 10"
    );
    assert!(run.pcap_chunks().is_empty());
}

#[test]
fn an_interface_that_does_not_exist_is_named() {
    let lab = Lab::new();
    let plan = json!({
        "v": 1, "checks": ["capture"], "deadline_ms": 3000,
        "capture": {"interface": "ndt-nosuch0", "max_duration_ms": 1000, "max_packets": 10, "max_bytes": 10000},
    });
    let run = lab.probe(&plan);
    let finished = run.finished("capture");
    assert_eq!(finished["status"], "error");
    let error = finished["error"].as_str().unwrap();
    assert!(error.contains("`ndt-nosuch0` does not exist"), "{error}");
    // The kernel agrees.
    assert!(!lab
        .in_cli_any(&["ip", "link", "show", "ndt-nosuch0"])
        .status
        .success());
}

#[test]
fn zero_and_absurd_limits_are_refused_before_anything_runs() {
    let cases = [
        (
            json!({"max_duration_ms": 0, "max_packets": 10, "max_bytes": 10}),
            "greater than zero",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 0, "max_bytes": 10}),
            "greater than zero",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 10, "max_bytes": 0}),
            "greater than zero",
        ),
        (
            json!({"max_duration_ms": 700000, "max_packets": 10, "max_bytes": 10}),
            "too large",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 10, "max_bytes": 2147483648u64}),
            "too large",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 10, "max_bytes": 10, "snaplen": 10}),
            "snaplen 10 out of range",
        ),
    ];
    for (capture, message) in cases {
        let plan = json!({"v": 1, "checks": ["capture"], "capture": capture});
        let out = Command::new(probe_path())
            .arg(plan.to_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{plan}: {stderr}");
        assert!(stderr.contains(message), "{plan}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(out.stdout.is_empty(), "no events for a refused plan");
    }
}

// ---- helpers -------------------------------------------------------------------------------

/// One probe run's events.
struct Run(Vec<Value>);

impl Run {
    fn capture_summary(&self) -> CaptureSummary {
        let data = self
            .0
            .iter()
            .find(|e| e["type"] == "evidence" && e["data"]["kind"] == "capture_summary")
            .unwrap_or_else(|| panic!("no capture_summary: {:#?}", self.0))["data"]
            .clone();
        match serde_json::from_value::<Evidence>(data).expect("typed evidence") {
            Evidence::CaptureSummary(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn finished(&self, check: &str) -> &Value {
        &self
            .0
            .iter()
            .find(|e| e["type"] == "check_finished" && e["data"]["check"] == check)
            .unwrap_or_else(|| panic!("no check_finished for {check}: {:#?}", self.0))["data"]
    }

    fn pcap_chunks(&self) -> Vec<&Value> {
        self.0
            .iter()
            .filter(|e| e["type"] == "pcap_chunk")
            .map(|e| &e["data"])
            .collect()
    }

    /// Decode the chunks in order (each is padded base64 of its own) with coreutils.
    fn write_pcap(&self, path: &Path) {
        let mut file = std::fs::File::create(path).unwrap();
        for (i, chunk) in self.pcap_chunks().into_iter().enumerate() {
            assert_eq!(chunk["index"], i, "chunks in order");
            let mut child = Command::new("base64")
                .arg("-d")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(chunk["data"].as_str().unwrap().as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "chunk {i} is not base64");
            file.write_all(&out.stdout).unwrap();
        }
    }
}

/// `tcpdump -nn -r FILE [EXPR]`, one line per packet.
fn tcpdump_read(file: &Path, expr: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new("tcpdump");
    cmd.args(["-nn", "-r"]).arg(file);
    if let Some(e) = expr {
        cmd.arg(e);
    }
    let out = cmd.output().expect("tcpdump is installed");
    assert!(
        out.status.success(),
        "tcpdump cannot read the probe's pcap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// (incl_len, orig_len) of every record of a classic little-endian pcap file.
fn pcap_records(file: &Path) -> Vec<(u32, u32)> {
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "microsecond pcap, little-endian"
    );
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let (incl, orig) = (u32_at(at + 8), u32_at(at + 12));
        records.push((incl, orig));
        at += 16 + incl as usize;
    }
    assert_eq!(at, bytes.len(), "records fill the file exactly");
    records
}

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "the capture scenario tests create network namespaces and must run as root"
    );
}

fn run_cmd(args: &[&str]) -> Output {
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

/// Two namespaces joined by a veth pair (SRV and SRV_SILENT on one side, CLI on the other);
/// servers are child processes; everything is removed on Drop.
struct Lab {
    srv: String,
    cli: String,
    cli_dev: String,
    dir: PathBuf,
    servers: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        require_root();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{:x}{}",
            std::process::id() & 0xfffff,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(format!("ndt-cap{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let lab = Lab {
            srv: format!("ndt-cs{id}"),
            cli: format!("ndt-cc{id}"),
            cli_dev: format!("ndt-ec{id}"),
            dir,
            servers: Vec::new(),
        };
        let srv_dev = format!("ndt-es{id}");
        run_cmd(&["ip", "netns", "add", &lab.srv]);
        run_cmd(&["ip", "netns", "add", &lab.cli]);
        run_cmd(&[
            "ip",
            "link",
            "add",
            &srv_dev,
            "netns",
            &lab.srv,
            "type",
            "veth",
            "peer",
            "name",
            &lab.cli_dev,
            "netns",
            &lab.cli,
        ]);
        for (ns, dev, addrs) in [
            (&lab.srv, &srv_dev, vec![SRV, SRV_SILENT]),
            (&lab.cli, &lab.cli_dev, vec![CLI]),
        ] {
            run_cmd(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            for a in addrs {
                run_cmd(&[
                    "ip",
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{a}/24"),
                    "dev",
                    dev,
                ]);
            }
            run_cmd(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    fn in_ns(&self, ns: &str, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run_cmd(&full)
    }

    fn in_srv(&self, args: &[&str]) -> Output {
        self.in_ns(&self.srv, args)
    }

    fn in_cli_any(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.cli])
            .args(args)
            .output()
            .unwrap()
    }

    fn spawn_srv(&mut self, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.srv])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        self.servers.push(child);
    }

    fn wait_listening(&self, addr: &str, port: u16) {
        let until = Instant::now() + Duration::from_secs(10);
        let needle = format!("{addr}:{port} ");
        while !String::from_utf8_lossy(&self.in_srv(&["ss", "-H", "-tuln"]).stdout)
            .contains(&needle)
        {
            assert!(Instant::now() < until, "nothing listens on {addr}:{port}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn dnsmasq(&mut self, addr: &str, extra: &[&str]) {
        let pid = self.dir.join("dnsmasq.pid");
        let mut args: Vec<String> = vec![
            "dnsmasq".into(),
            "--keep-in-foreground".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--bind-interfaces".into(),
            format!("--listen-address={addr}"),
            format!("--pid-file={}", pid.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn_srv(&args);
        self.wait_listening(addr, 53);
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Run the probe in the client namespace (its own --netns); every event in order.
    fn probe(&self, plan: &Value) -> Run {
        let out = run_cmd(&[
            probe_path().to_str().unwrap(),
            "--netns",
            &self.cli,
            &plan.to_string(),
        ]);
        Run(String::from_utf8(out.stdout)
            .expect("utf-8 events")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("one JSON event per line"))
            .collect())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace removes its end of the veth pair, which removes the other.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.srv])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.cli])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
