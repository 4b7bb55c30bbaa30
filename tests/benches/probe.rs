//! Probe performance (issue 2, Performance): nothing is asserted, the numbers go to
//! BENCHMARKS.md.
//!
//! (a) the core run (links, route, dns, tcp, sockets) against 3 named targets in a healthy
//!     namespace: dnsmasq answers the names, three listeners accept; median of N runs of
//!     the probe's own elapsed time (hello to done) and of the process wall time;
//! (b) the sockets check on 100,000 TCP sockets (50,000 established loopback pairs made by
//!     the bench in its own namespace) against `ss -tan | wc -l` in the same namespace, one
//!     run each, as a ratio;
//! (c) the size of the static release probe (built with the command from DEVELOPERS.md when
//!     it is not there yet), as built and after `strip --strip-all`.
//!
//! Run as root: `cargo build --release -p probe && cargo bench -p netdebug-scenarios --bench probe`
//! Env: NETDEBUG_PROBE (probe binary for (a) and (b); default: the static build if present,
//! else target/release/netdebug-probe), PROBE_BENCH_RUNS (default 21), PROBE_BENCH_PAIRS
//! (default 50000).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use netdebug_scenarios::*;
use protocol::{CheckKind, SocketsEvidence, Target, TargetRole};

const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo test` asks benches for their names; there are none.
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // Built and run by `cargo test --benches`: do not build 100,000 sockets there.
        println!("probe bench: run it with `cargo bench -p netdebug-scenarios --bench probe`");
        return;
    }
    require_root();
    require_tools(&["ip", "ss", "dnsmasq", "prlimit", "bash"]);
    let runs: usize = env_number("PROBE_BENCH_RUNS", 21).clamp(1, 1000);
    let pairs: usize = env_number("PROBE_BENCH_PAIRS", 50_000).clamp(1, 200_000);
    let workspace = workspace_root();
    let static_probe = workspace
        .join("target")
        .join(STATIC_TARGET)
        .join("release/netdebug-probe");
    let probe = std::env::var("NETDEBUG_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            if static_probe.is_file() {
                static_probe.clone()
            } else {
                probe_path()
            }
        });
    // run_probe() reads NETDEBUG_PROBE; make it use the same binary.
    std::env::set_var("NETDEBUG_PROBE", &probe);
    println!("machine: {}", machine());
    println!("probe:   {}", probe.display());
    println!();

    let core = core_run(runs);
    let sockets = many_sockets(pairs);
    let size = static_size(&workspace, &static_probe);

    println!("| measurement | result |");
    println!("|---|---|");
    println!(
        "| core run, 3 targets (links, route, dns, tcp, sockets): probe elapsed hello->done, median of {runs} | {:.1} ms (min {:.1}, max {:.1}) |",
        core.elapsed.median, core.elapsed.min, core.elapsed.max
    );
    println!(
        "| same, probe process wall time (exec, setns, run, exit), median of {runs} | {:.1} ms (min {:.1}, max {:.1}) |",
        core.wall.median, core.wall.min, core.wall.max
    );
    let ms = |t: f64| t * 1000.0;
    println!(
        "| sockets check on {} sockets, one run: the check's own elapsed time | {:.0} ms |",
        sockets.probe_total, sockets.check_ms
    );
    println!(
        "| same run: whole probe process (exec, setns, dump, JSON): wall / CPU user+sys | {:.0} ms / {:.0}+{:.0} ms |",
        ms(sockets.probe.wall),
        ms(sockets.probe.user),
        ms(sockets.probe.sys)
    );
    println!(
        "| `ss -tan \\| wc -l` in the same namespace ({} lines), one run: wall / CPU user+sys | {:.0} ms / {:.0}+{:.0} ms |",
        sockets.ss_lines,
        ms(sockets.ss.wall),
        ms(sockets.ss.user),
        ms(sockets.ss.sys)
    );
    println!(
        "| ratio ss / probe, that run: wall / CPU (>1: probe faster) | {:.2} / {:.2} |",
        sockets.ss.wall / sockets.probe.wall,
        sockets.ss.cpu() / sockets.probe.cpu()
    );
    println!(
        "| ratio ss / probe, median of {} alternating runs: wall / CPU | {:.2} / {:.2} |",
        sockets.rounds, sockets.median_wall_ratio, sockets.median_cpu_ratio
    );
    match size {
        Some((built, stripped)) => println!(
            "| static release probe size: as built / after strip --strip-all | {} / {} bytes ({:.2} / {:.2} MiB) |",
            built,
            stripped,
            built as f64 / 1048576.0,
            stripped as f64 / 1048576.0
        ),
        None => println!("| static release probe size | not available (build failed, see above) |"),
    }
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

struct CoreRun {
    elapsed: Stats,
    wall: Stats,
}

/// (a) A healthy namespace: veth to a server namespace with dnsmasq and three listeners.
fn core_run(runs: usize) -> CoreRun {
    let client = Netns::new("bcore");
    let server = Netns::new("bcores");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.40.1/24",
        &server,
        "s0",
        "10.199.40.2/24",
    );
    client.add_route("default via 10.199.40.2");
    let names = ["a.bench.test", "b.bench.test", "c.bench.test"];
    let ips = ["10.199.40.2", "10.199.40.3", "10.199.40.4"];
    server.add_addr("s0", "10.199.40.3/24");
    server.add_addr("s0", "10.199.40.4/24");
    let records: Vec<(&str, &str)> = names.iter().copied().zip(ips).collect();
    let _dns = server.spawn_dnsmasq("10.199.40.2".parse().unwrap(), &records);
    for ip in ips {
        server.spawn_tcp_server(SocketAddr::new(ip.parse().unwrap(), 8080));
    }
    let resolv = tempfile::NamedTempFile::new().expect("temp resolv.conf");
    std::fs::write(
        resolv.path(),
        "nameserver 10.199.40.2\noptions timeout:1 attempts:1\n",
    )
    .expect("write resolv.conf");
    let targets: Vec<Target> = names
        .iter()
        .map(|n| Target {
            label: format!("{n}:8080"),
            host: n.to_string(),
            port: Some(8080),
            role: TargetRole::Direct.into(),
        })
        .collect();
    let mut plan = plan(
        &[
            CheckKind::Links,
            CheckKind::Route,
            CheckKind::Dns,
            CheckKind::Tcp,
            CheckKind::Sockets,
        ],
        targets,
    );
    plan.dns.resolv_conf = resolv.path().to_string_lossy().into_owned();
    plan.deadline_ms = 10_000;

    // One warm-up run, checked: every target must connect, or the numbers mean nothing.
    let warm = run_probe(&client, &plan);
    warm.assert_ok();
    let tcp = warm.evidence::<protocol::TcpEvidence>();
    assert!(
        tcp.len() == 3 && tcp.iter().all(|t| t.outcome == protocol::TcpOutcome::Ok),
        "the healthy scenario is not healthy: {}",
        warm.stdout
    );
    let mut elapsed = Vec::with_capacity(runs);
    let mut wall = Vec::with_capacity(runs);
    for _ in 0..runs {
        let run = run_probe(&client, &plan);
        run.assert_ok();
        elapsed.push(run.done().elapsed_ms);
        wall.push(run.elapsed.as_secs_f64() * 1000.0);
    }
    CoreRun {
        elapsed: stats(elapsed),
        wall: stats(wall),
    }
}

struct ManySockets {
    probe_total: u64,
    /// The sockets check's own elapsed time (first round).
    check_ms: f64,
    /// First round.
    probe: Times,
    ss_lines: u64,
    ss: Times,
    median_wall_ratio: f64,
    median_cpu_ratio: f64,
    rounds: usize,
}

/// (b) 2 x `pairs` established loopback sockets plus their listener, in a namespace of their own.
fn many_sockets(pairs: usize) -> ManySockets {
    let ns = Netns::new("b100k");
    // Listeners use 7000+, below the ephemeral range, so no client port takes them.
    ns.set_sysctl("net.ipv4.ip_local_port_range", "10000 65535");
    let helper = ndt_sock_path();
    // Without CAP_SYS_RESOURCE (containers) the hard RLIMIT_NOFILE cannot be raised, so the
    // pairs are spread over as many helper processes as that limit requires.
    let hard = hard_nofile_limit();
    let per_process = ((hard.saturating_sub(128)) / 2).max(1) as usize;
    let processes = pairs.div_ceil(per_process);
    let nofile = format!("--nofile={hard}");
    let started = Instant::now();
    for i in 0..processes {
        let count = per_process.min(pairs - i * per_process);
        let listen = format!("127.0.0.1:{}", 7000 + i);
        ns.spawn_ready(
            &[
                "prlimit",
                &nofile,
                "--",
                &helper.to_string_lossy(),
                "pairs",
                &listen,
                &count.to_string(),
            ],
            Duration::from_secs(300),
        );
    }
    println!(
        "made {pairs} loopback connection pairs in {processes} processes (RLIMIT_NOFILE {hard}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut plan = plan(&[CheckKind::Sockets], vec![]);
    plan.deadline_ms = 60_000;
    let plan_file = tempfile::NamedTempFile::new().expect("temp plan file");
    std::fs::write(
        plan_file.path(),
        serde_json::to_string(&plan).expect("plan json"),
    )
    .expect("write plan file");
    let out_file = tempfile::NamedTempFile::new().expect("temp output file");
    // Both timed by bash's `time` (wall, user, sys) around exactly the work: the probe
    // entering the namespace itself (--netns), ss already inside it (ip netns exec).
    let probe_script = format!(
        "TIMEFORMAT='%R %U %S'; time ('{}' --netns {} --plan-file '{}' > '{}')",
        probe_path().display(),
        ns.name(),
        plan_file.path().display(),
        out_file.path().display()
    );
    let ss_script = "TIMEFORMAT='%R %U %S'; time (ss -tan | wc -l)";
    let rounds = env_number("PROBE_BENCH_SOCKET_ROUNDS", 5).clamp(1, 100);
    let mut probe_times = Vec::new();
    let mut ss_times = Vec::new();
    let mut first = None;
    // Warm-up of both, unmeasured (page cache, dentries, slab).
    timed(run_with_timeout(
        Command::new("bash").args(["-c", &probe_script]),
        Duration::from_secs(120),
    ));
    timed(ns.exec_timeout(&["bash", "-c", ss_script], Duration::from_secs(120)));
    for _ in 0..rounds {
        let (probe_out, probe_time) = timed(run_with_timeout(
            Command::new("bash").args(["-c", &probe_script]),
            Duration::from_secs(120),
        ));
        let (ss_out, ss_time) =
            timed(ns.exec_timeout(&["bash", "-c", ss_script], Duration::from_secs(120)));
        let stdout = std::fs::read_to_string(out_file.path()).expect("probe output");
        let run = decode_run(
            CmdOutput {
                stdout,
                ..probe_out
            },
            Duration::from_secs_f64(probe_time.wall),
        );
        run.assert_ok();
        let evidence: &SocketsEvidence = run.one();
        let ss_lines: u64 = ss_out.stdout.trim().parse().expect("wc -l prints a number");
        if first.is_none() {
            println!(
                "probe counted {} sockets ({:?}); ss -tan printed {ss_lines} lines (1 header)",
                evidence.total, evidence.states
            );
            first = Some(ManySockets {
                probe_total: evidence.total,
                check_ms: run.finished(CheckKind::Sockets).elapsed_ms,
                probe: probe_time,
                ss_lines,
                ss: ss_time,
                median_wall_ratio: 0.0,
                median_cpu_ratio: 0.0,
                rounds,
            });
        }
        probe_times.push(probe_time);
        ss_times.push(ss_time);
    }
    let wall_ratios: Vec<f64> = ss_times
        .iter()
        .zip(&probe_times)
        .map(|(s, p)| s.wall / p.wall)
        .collect();
    let cpu_ratios: Vec<f64> = ss_times
        .iter()
        .zip(&probe_times)
        .map(|(s, p)| s.cpu() / p.cpu())
        .collect();
    let mut result = first.expect("at least one round");
    result.median_wall_ratio = stats(wall_ratios).median;
    result.median_cpu_ratio = stats(cpu_ratios).median;
    result
}

/// Seconds from bash's `time` with TIMEFORMAT='%R %U %S' (the last stderr line).
#[derive(Debug, Clone, Copy)]
struct Times {
    wall: f64,
    user: f64,
    sys: f64,
}

impl Times {
    fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

fn timed(out: CmdOutput) -> (CmdOutput, Times) {
    let out = out.expect_success();
    let line = out.stderr.lines().last().unwrap_or_default();
    let v: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert!(v.len() == 3, "no `time` line in: {}", out.stderr);
    let times = Times {
        wall: v[0],
        user: v[1],
        sys: v[2],
    };
    (out, times)
}

/// (c) Size of the static release probe, building it when absent.
fn static_size(workspace: &Path, binary: &Path) -> Option<(u64, u64)> {
    if !binary.is_file() {
        println!(
            "building the static probe (not found at {})",
            binary.display()
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = run_with_timeout(
            Command::new(cargo)
                .current_dir(workspace)
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .args([
                    "build",
                    "--release",
                    "-p",
                    "probe",
                    "--target",
                    STATIC_TARGET,
                ]),
            Duration::from_secs(1800),
        );
        if !out.success() {
            println!("static build failed: {}", out.stderr);
            return None;
        }
    }
    let built = std::fs::metadata(binary).ok()?.len();
    let copy = tempfile::NamedTempFile::new().ok()?;
    std::fs::copy(binary, copy.path()).ok()?;
    let stripped = run_with_timeout(
        Command::new("strip").arg("--strip-all").arg(copy.path()),
        DEFAULT_TIMEOUT,
    );
    let stripped = if stripped.success() {
        std::fs::metadata(copy.path()).ok()?.len()
    } else {
        built
    };
    let file = run_with_timeout(Command::new("file").arg(binary), DEFAULT_TIMEOUT);
    println!("{}", file.stdout.trim());
    Some((built, stripped))
}

/// The hard open-files limit of this process ("Max open files" in /proc/self/limits).
fn hard_nofile_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(1024)
}

fn workspace_root() -> PathBuf {
    // tests/ is one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {:.0} GiB RAM, Linux {}",
        mem_kb as f64 / 1048576.0,
        kernel.trim()
    )
}
