//! Capture throughput: the probe and tcpdump capture the same bounded UDP flood on loopback in
//! a namespace, at the same time, with the same filter; each reports what it saw and what the
//! kernel dropped for it, and the probe's peak RSS (VmHWM) is read while it captures.
//!
//! Run as root, against the release probe:
//! `cargo build --release -p probe && cargo bench -p netdebug-scenarios --bench capture`
//! (`NETDEBUG_PROBE=/path/to/netdebug-probe` overrides the binary; `CAPTURE_BENCH_PACKETS`
//! the flood size, default 200000). Numbers go to BENCHMARKS.md; nothing is asserted.

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PORT: u16 = 9999;
const FILTER: &str = "udp port 9999";
const PAYLOAD: usize = 32;
/// The flood stops after this long even if not all packets are out.
const SEND_LIMIT: Duration = Duration::from_secs(20);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Re-executed inside the namespace as the sender.
    if args.get(1).map(String::as_str) == Some("--send") {
        let count: u64 = args[2].parse().expect("packet count");
        let pps: u64 = args[3].parse().expect("packets per second, 0 = unpaced");
        send(count, pps);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        // `cargo test` asks benches for their names; there are no tests here.
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // Built and run by `cargo test --benches`: do not flood anything.
        println!("capture bench: run it with `cargo bench -p netdebug-scenarios --bench capture`");
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")),
        "the capture bench creates a network namespace and must run as root"
    );
    let count: u64 = std::env::var("CAPTURE_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let probe = probe_path();
    println!("probe: {}", probe.display());
    println!("flood: {count} UDP packets of {PAYLOAD} bytes to 127.0.0.1:{PORT}; both keep only the incoming copy on lo");
    println!("| flood | sender rate | probe seen | probe kernel drops | tcpdump seen | tcpdump kernel drops | probe peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    // The third run reads the probe's output slowly (a stalled log reader): the probe blocks
    // on stdout, its ring overflows, and the kernel's drop count must account for the rest.
    for (pps, slow_reader) in [(0u64, false), (100_000, false), (0, true)] {
        let r = one_run(&probe, count, pps, slow_reader);
        let how = match (pps, slow_reader) {
            (_, true) => "unpaced, slow reader",
            (0, false) => "unpaced",
            _ => "paced",
        };
        println!(
            "| {count} pkts {how} | {:.0} pkt/s | {} | {} | {} | {} | {:.1} MiB |",
            r.send_rate,
            r.probe_seen,
            r.probe_drops,
            r.tcpdump_seen,
            r.tcpdump_drops,
            r.probe_hwm_kib as f64 / 1024.0
        );
    }
}

struct Result {
    send_rate: f64,
    probe_seen: u64,
    probe_drops: u64,
    tcpdump_seen: u64,
    tcpdump_drops: u64,
    probe_hwm_kib: u64,
}

fn one_run(probe: &Path, count: u64, pps: u64, slow_reader: bool) -> Result {
    let ns = format!("ndt-bcap{:x}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    ok(Command::new("ip").args(["netns", "add", &ns]).output());
    let _cleanup = Cleanup(ns.clone());
    ok(Command::new("ip")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .output());

    // tcpdump on lo with the filter, writing nowhere; its counters come on stderr at SIGINT.
    let mut tcpdump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "tcpdump",
            "-i",
            "lo",
            "-w",
            "/dev/null",
            "-nn",
            FILTER,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let mut tcpdump_err = BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    tcpdump_err.read_line(&mut line).unwrap();
    assert!(line.contains("listening on lo"), "tcpdump: {line}");

    // The probe: capture only, same interface and filter, pcap output on (its real cost). It
    // runs for its duration: the flood's expected length plus a margin.
    let send_ms = count * 1000 / if pps == 0 { 50_000 } else { pps };
    let plan = json!({
        "v": 1,
        "checks": ["capture"],
        "deadline_ms": 60000,
        "capture": {"interface": "lo", "filter": FILTER, "max_duration_ms": 3000 + send_ms,
                    "max_packets": count * 2, "max_bytes": 1u64 << 30},
    });
    let mut child = Command::new(probe)
        .args(["--netns", &ns, &plan.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("probe");
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    // Read (and discard) the event stream as a client would, keeping the summary.
    let started = Arc::new(AtomicU64::new(0));
    let reader = {
        let started = started.clone();
        std::thread::spawn(move || {
            let mut summary = Value::Null;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"check_started\"") {
                    started.store(1, Ordering::SeqCst);
                }
                if line.contains("\"capture_summary\"") {
                    summary = serde_json::from_str::<Value>(&line).unwrap()["data"].clone();
                }
                if slow_reader && line.contains("\"pcap_chunk\"") {
                    // About 4 MB/s of pcap.
                    std::thread::sleep(Duration::from_millis(8));
                }
            }
            summary
        })
    };
    let until = Instant::now() + Duration::from_secs(5);
    while started.load(Ordering::SeqCst) == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The socket is bound right after check_started; leave a margin.
    std::thread::sleep(Duration::from_millis(300));

    // Peak RSS sampler.
    let hwm = Arc::new(AtomicU64::new(0));
    let sampler = {
        let hwm = hwm.clone();
        // Until the process is reaped and its status file is gone.
        std::thread::spawn(move || {
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kib) = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    hwm.fetch_max(kib, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let send_started = Instant::now();
    let sender = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--send", &count.to_string(), &pps.to_string()])
        .output()
        .expect("sender");
    ok(Ok(sender));
    let send_rate = count as f64 / send_started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));

    // Stop tcpdump (we started it) and read its counters.
    ok(Command::new("kill")
        .args(["-INT", &tcpdump.id().to_string()])
        .output());
    let mut rest = String::new();
    tcpdump_err.read_to_string(&mut rest).unwrap();
    let _ = tcpdump.wait();
    let stat = |what: &str| {
        rest.lines()
            .find(|l| l.ends_with(what))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("tcpdump did not report `{what}`: {rest}"))
    };
    let (tcpdump_seen, tcpdump_drops) =
        (stat("packets captured"), stat("packets dropped by kernel"));

    // The probe ends by itself at the end of its duration.
    let status = child.wait().expect("probe exit");
    assert!(status.success(), "probe failed");
    let summary = reader.join().unwrap();
    let _ = sampler.join();
    Result {
        send_rate,
        probe_seen: summary["packets_captured"]
            .as_u64()
            .expect("packets_captured"),
        probe_drops: summary["kernel_drops"].as_u64().expect("kernel_drops"),
        tcpdump_seen,
        tcpdump_drops,
        probe_hwm_kib: hwm.load(Ordering::SeqCst),
    }
}

fn send(count: u64, pps: u64) {
    // A bound receiver that never reads: no ICMP port-unreachable per packet, and the UDP
    // layer drops what overflows its buffer (after the packet sockets have seen it).
    let _sink = UdpSocket::bind(("127.0.0.1", PORT)).expect("bind sink");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", PORT)).unwrap();
    let payload = [0x5au8; PAYLOAD];
    let started = Instant::now();
    for i in 0..count {
        if pps > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / pps as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let _ = socket.send(&payload);
        if i % 1024 == 0 && started.elapsed() > SEND_LIMIT {
            break;
        }
    }
}

fn ok(out: std::io::Result<std::process::Output>) {
    let out = out.expect("command runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// NETDEBUG_PROBE, else target/release/netdebug-probe beside this bench's deps directory.
fn probe_path() -> PathBuf {
    if let Some(p) = std::env::var_os("NETDEBUG_PROBE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("bench executable path");
    let probe = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("netdebug-probe");
    assert!(
        probe.exists(),
        "{} not found: run `cargo build --release -p probe` first or set NETDEBUG_PROBE",
        probe.display()
    );
    probe
}
