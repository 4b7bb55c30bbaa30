//! Repeated rounds and many targets (issue 10, Performance): nothing is asserted, the numbers
//! go to BENCHMARKS.md.
//!
//! (a) 500 targets in one namespace (addresses this bench puts on the server's veth, one
//!     listener on all of them), each connect-checked once: the tcp check's elapsed time and
//!     the probe's, against the target "connect timeout + 0.5 s";
//! (b) 200 rounds x 4 targets at the default rate (50 attempts/s): the tcp check's elapsed
//!     time, against "16 s + 0.5 s";
//! (c) the probe's peak RSS (GNU time's maximum resident set size) with `--repeat 10000` toward
//!     one target at the highest rate (500/s), against "under 20 MB".
//!
//! Run as root: `cargo build --release -p probe && cargo bench -p netdebug-scenarios --bench rounds`
//! Env: NETDEBUG_PROBE (probe binary; default: the static build if present, else
//! target/release/netdebug-probe).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use netdebug_scenarios::*;
use protocol::{CheckFinished, CheckKind, Event, RoundsPlan, Target, TargetRole, TcpOutcome};

const STATIC_PROBE: &str = "target/x86_64-unknown-linux-gnu/release/netdebug-probe";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("rounds bench: run it with `cargo bench -p netdebug-scenarios --bench rounds`");
        return;
    }
    require_root();
    require_tools(&["ip", "/usr/bin/time"]);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let probe = std::env::var("NETDEBUG_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let s = root.join(STATIC_PROBE);
            if s.is_file() {
                s
            } else {
                probe_path()
            }
        });
    std::env::set_var("NETDEBUG_PROBE", &probe);
    println!("probe: {}", probe.display());

    let lab = Lab::new();
    let (many_check, many_wall, many_ok) = many_targets(&lab, 500);
    let (rounds_check, rounds_attempts) = paced_rounds(&lab);
    let (rss_kib, rss_attempts) = peak_rss(&lab, &probe);

    println!();
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!(
        "| 500 targets, one connect each ({many_ok} ok): tcp check elapsed / probe wall time | {many_check:.0} ms / {:.0} ms | connect timeout (3 s) + 0.5 s |",
        many_wall.as_secs_f64() * 1000.0
    );
    println!(
        "| 200 rounds x 4 targets at 50/s ({rounds_attempts} attempts): tcp check elapsed | {:.2} s | 16 s + 0.5 s |",
        rounds_check / 1000.0
    );
    println!(
        "| --repeat 10000 toward 1 target at 500/s ({rss_attempts} attempts): probe peak RSS | {:.1} MB | < 20 MB |",
        rss_kib as f64 / 1024.0
    );
}

/// A client namespace and a server namespace with many addresses and one listener on all.
struct Lab {
    cli: Netns,
    /// Kept for its lifetime: the server namespace goes when it drops.
    _srv: Netns,
    _server: TcpServer,
}

impl Lab {
    fn new() -> Lab {
        let cli = Netns::new("brndc");
        let srv = Netns::new("brnds");
        Link::veth_pair(&cli, "c0", "10.198.255.254/16", &srv, "s0", "10.198.0.1/16");
        for i in 1..500u32 {
            srv.add_addr("s0", &format!("{}/16", address(i)));
        }
        // Accept and close: 10,000 connections must not pile up in the server.
        let server = srv.spawn_tcp_server_with(
            "0.0.0.0:8080".parse().unwrap(),
            TcpServerOptions {
                backlog: 4096,
                accept: Accept::Drain,
            },
        );
        Lab {
            cli,
            _srv: srv,
            _server: server,
        }
    }
}

/// The i-th server address: 10.198.0.1, 10.198.0.2, ... (250 per /24).
fn address(i: u32) -> String {
    format!("10.198.{}.{}", i / 250, i % 250 + 1)
}

fn targets(n: u32) -> Vec<Target> {
    (0..n)
        .map(|i| Target {
            label: format!("{}:8080", address(i)),
            host: address(i),
            port: Some(8080),
            role: TargetRole::Direct.into(),
        })
        .collect()
}

fn tcp_elapsed(run: &ProbeRun) -> f64 {
    run.events
        .iter()
        .find_map(|e| match &e.event {
            Event::CheckFinished(CheckFinished {
                check, elapsed_ms, ..
            }) if *check == CheckKind::Tcp => Some(*elapsed_ms),
            _ => None,
        })
        .expect("the tcp check finished")
}

fn many_targets(lab: &Lab, n: u32) -> (f64, Duration, usize) {
    let mut p = plan(&[CheckKind::Tcp], targets(n));
    p.deadline_ms = 20_000;
    let run = run_probe(&lab.cli, &p);
    run.assert_ok();
    let ok = run
        .evidence::<protocol::TcpEvidence>()
        .iter()
        .filter(|t| t.outcome == TcpOutcome::Ok)
        .count();
    (tcp_elapsed(&run), run.elapsed, ok)
}

fn paced_rounds(lab: &Lab) -> (f64, u64) {
    let mut p = plan(&[CheckKind::Tcp], targets(4));
    p.deadline_ms = 40_000;
    p.rounds = Some(RoundsPlan::new(200));
    let run = run_probe(&lab.cli, &p);
    run.assert_ok();
    let attempts = run
        .evidence::<protocol::TcpRoundsEvidence>()
        .iter()
        .map(|r| r.attempts)
        .sum();
    (tcp_elapsed(&run), attempts)
}

/// GNU time's "maximum resident set size" (KiB) of the probe itself.
fn peak_rss(lab: &Lab, probe: &std::path::Path) -> (u64, u64) {
    let mut p = plan(&[CheckKind::Tcp], targets(1));
    p.deadline_ms = 60_000;
    p.rounds = Some(RoundsPlan {
        rate: protocol::MAX_RATE,
        ..RoundsPlan::new(10_000)
    });
    let json = serde_json::to_string(&p).unwrap();
    let out = run_with_timeout(
        Command::new("/usr/bin/time")
            .args(["-f", "maxrss_kib=%M"])
            .arg(probe)
            .args(["--netns", lab.cli.name()])
            .arg(&json),
        Duration::from_secs(90),
    );
    let rss = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss from GNU time: {}", out.stderr));
    let run = decode_run(out, Duration::ZERO);
    let attempts = run
        .evidence::<protocol::TcpRoundsEvidence>()
        .iter()
        .map(|r| r.attempts)
        .sum();
    (rss, attempts)
}
