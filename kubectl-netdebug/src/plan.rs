//! Building the probe's plan from what was resolved and the flags given, and parsing the
//! `HOST:PORT` destinations of local mode.

use std::time::Duration;

use protocol::{CapturePlan, CheckKind, MtuPlan, Plan, RoundsPlan, Target, TargetRole};

use crate::cli::CaptureArgs;

/// Bytes kept per packet with --full-packets: the largest jumbo frame.
const FULL_PACKET_SNAPLEN: u32 = 65_535;
/// Room the probe needs after an explicit capture duration to report and finish.
const AFTER_CAPTURE: Duration = Duration::from_secs(2);
/// Room the probe needs after its last round starts: that attempt's connect timeout is added
/// separately; this is for the other checks and the report.
const AFTER_ROUNDS: Duration = Duration::from_secs(2);

/// The probe's own deadline when the overall timeout leaves room for it.
pub const DEFAULT_PROBE_DEADLINE: Duration = Duration::from_secs(15);

/// What the flags ask the probe to do besides the targets.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub dns_names: Vec<String>,
    pub capture: CaptureArgs,
    /// Ask for pcap chunks (only when they will be written: `-w`).
    pub write_pcap: bool,
    pub mtu: bool,
    /// `--sockets`: the socket-table report. Alone (no destination, no names) it asks for the
    /// checks about the pod's own stack only.
    pub sockets: bool,
    pub deadline: Duration,
    /// `--repeat`/`--for`/`--rate`: repeated connect rounds.
    pub rounds: Option<RoundsPlan>,
    /// `--connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// TLS and/or HTTP above each connect (`--to https://...`, `--http`, `--tls`).
    pub app: Option<protocol::AppPlan>,
}

/// What `--sockets` alone runs: the namespace's own state, no traffic of the probe's.
const STACK_CHECKS: [CheckKind; 5] = [
    CheckKind::Links,
    CheckKind::Sockets,
    CheckKind::Counters,
    CheckKind::Conntrack,
    CheckKind::Sysctls,
];

pub fn build_plan(targets: Vec<Target>, options: &PlanOptions) -> Plan {
    let mut plan = Plan::new(targets);
    let mut names: Vec<String> = Vec::new();
    for n in &options.dns_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    plan.dns.names = names;
    plan.deadline_ms = options.deadline.as_millis().clamp(1, 600_000) as u64;
    if let Some(t) = options.connect_timeout {
        plan.connect_timeout_ms = t.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
    }
    // A connect attempt must finish well inside the run.
    plan.connect_timeout_ms = plan.connect_timeout_ms.min((plan.deadline_ms / 3).max(1));
    if options.capture.wanted() || options.write_pcap {
        let c = &options.capture;
        let mut capture = CapturePlan {
            pcap: options.write_pcap,
            interface: c.capture_interface.clone(),
            filter: c.capture_filter.clone(),
            ..CapturePlan::default()
        };
        if let Some(n) = c.capture_packets {
            capture.max_packets = n;
        }
        if let Some(n) = c.capture_bytes {
            capture.max_bytes = n;
        }
        if c.full_packets {
            capture.snaplen = FULL_PACKET_SNAPLEN;
        }
        match c.capture_duration {
            Some(d) => {
                // An explicit duration is a promise to watch that long: the probe's own
                // deadline grows to hold it (the caller checks it fits in --timeout).
                capture.max_duration_ms = d.as_millis() as u64;
                capture.stop_after_traffic = false;
                let needed = (d + AFTER_CAPTURE).as_millis() as u64;
                plan.deadline_ms = plan.deadline_ms.max(needed);
            }
            None => capture.max_duration_ms = capture.max_duration_ms.min(plan.deadline_ms),
        }
        plan.capture = Some(capture);
    }
    if options.mtu {
        plan.mtu = Some(MtuPlan::default());
    }
    plan.app = options.app.clone();
    if let Some(rounds) = &options.rounds {
        // The rounds are a promise like an explicit capture duration: the probe's deadline
        // grows to hold them (check_rounds_fit says when --timeout cannot).
        plan.rounds = Some(rounds.clone());
        let needed = rounds_run_time(rounds, &plan) + AFTER_ROUNDS;
        plan.deadline_ms = plan
            .deadline_ms
            .max(needed.as_millis() as u64)
            .min(protocol::MAX_DEADLINE_MS);
    }
    if options.sockets && plan.targets.is_empty() && plan.dns.names.is_empty() {
        plan.checks = STACK_CHECKS.iter().map(|&c| c.into()).collect();
        if plan.capture.is_some() {
            plan.checks.push(CheckKind::Capture.into());
        }
    }
    plan
}

/// Where the probe runs, for the time a run needs around the probe itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// An ephemeral container: injection, the image starting and the log stream take time
    /// besides the probe's own run.
    Cluster,
    /// A child process on this host: it starts at once and its stdout is the stream.
    Local,
}

impl Site {
    fn overhead(self) -> Duration {
        match self {
            Site::Cluster => Duration::from_secs(20),
            Site::Local => Duration::ZERO,
        }
    }
}

/// Every limit of the plan the flags describe, checked the same way for local and cluster
/// runs and before any network or API call: a bad limit is the user's input, not something
/// to find out after a pod was patched.
///
/// An explicit capture duration is a promise to watch that long, and the probe needs
/// `AFTER_CAPTURE` more to report and finish; the cluster adds its own overhead. (The local
/// path used to accept any duration shorter than --timeout, which left the probe no time to
/// finish; the cluster path forgot the probe's own margin.)
pub fn check_limits(options: &PlanOptions, timeout: Duration, site: Site) -> Result<(), String> {
    if let Some(expression) = &options.capture.capture_filter {
        // The probe's own compiler: a filter it would refuse is refused here, before any
        // API write.
        let snaplen = build_plan(Vec::new(), options)
            .capture
            .map_or(FULL_PACKET_SNAPLEN, |c| c.snaplen);
        bpf_filter::check(expression, snaplen)
            .map_err(|why| format!("--capture-filter '{expression}': {why}"))?;
    }
    if let Some(rounds) = &options.rounds {
        if let Some(ms) = rounds.for_ms {
            let d = Duration::from_millis(ms);
            let connect = options
                .connect_timeout
                .unwrap_or(Duration::from_millis(protocol::DEFAULT_CONNECT_TIMEOUT_MS));
            let needed = d + connect + AFTER_ROUNDS + site.overhead();
            if needed > timeout {
                return Err(format!(
                    "--for {} does not fit in --timeout {}: raise --timeout to at least {}",
                    crate::duration::format_duration(d),
                    crate::duration::format_duration(timeout),
                    crate::duration::format_duration(needed)
                ));
            }
        }
    }
    if let Some(d) = options.capture.capture_duration {
        let longest = Duration::from_millis(protocol::MAX_DEADLINE_MS) - AFTER_CAPTURE;
        if d > longest {
            return Err(format!(
                "--capture-duration {} is longer than a probe may run: at most {}",
                crate::duration::format_duration(d),
                crate::duration::format_duration(longest)
            ));
        }
        let needed = d + AFTER_CAPTURE + site.overhead();
        if needed > timeout {
            return Err(format!(
                "--capture-duration {} does not fit in --timeout {}: raise --timeout to at least {}",
                crate::duration::format_duration(d),
                crate::duration::format_duration(timeout),
                crate::duration::format_duration(needed)
            ));
        }
    }
    // The same plan as the run builds, without the targets it cannot know yet: every limit
    // the probe would refuse (deadline, capture sizes) is refused here instead.
    build_plan(Vec::new(), options)
        .validate()
        .map_err(|e| format!("the flags ask for a plan the probe cannot run: {e}"))
}

/// Attempts a round makes in each of its two paced streams: connects (one per target with a
/// port; a name that resolves to several addresses makes more, the probe's deadline still
/// bounds them) and lookups (one per name). The two run side by side.
fn per_round(plan: &Plan) -> (u32, u32) {
    let connects = plan.targets.iter().filter(|t| t.port.is_some()).count() as u32;
    let names = plan.dns.names.len() as u32;
    (connects, names)
}

/// The resolver's default per-try timeout (glibc's 5 s): the wait a last lookup may need
/// (the pod's resolv.conf is read by the probe; the client cannot know it).
const RESOLVER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the rounds keep starting attempts, plus the wait of the last one.
pub fn rounds_run_time(rounds: &RoundsPlan, plan: &Plan) -> Duration {
    let (connects, names) = per_round(plan);
    let paced = |items: u32| {
        let attempts = u64::from(rounds.repeat) * u64::from(items);
        let d = Duration::from_secs_f64(attempts as f64 / f64::from(rounds.rate.max(1)));
        match rounds.for_ms {
            Some(ms) => d.min(Duration::from_millis(ms)),
            None => d,
        }
    };
    let tcp = if connects > 0 {
        paced(connects) + Duration::from_millis(plan.connect_timeout_ms)
    } else {
        Duration::ZERO
    };
    let dns = if names > 0 {
        paced(names) + RESOLVER_TIMEOUT
    } else {
        Duration::ZERO
    };
    tcp.max(dns)
}

/// Once the targets are known: do the rounds fit in --timeout? A clear error before anything
/// is injected, with what would fit, rather than rounds cut short by the deadline.
pub fn check_rounds_fit(plan: &Plan, timeout: Duration, site: Site) -> Result<(), String> {
    let Some(rounds) = &plan.rounds else {
        return Ok(());
    };
    let needed = rounds_run_time(rounds, plan) + AFTER_ROUNDS + site.overhead();
    if needed <= timeout {
        return Ok(());
    }
    let fmt = crate::duration::format_duration;
    let (connects, names) = per_round(plan);
    let what = match rounds.for_ms {
        Some(ms) => format!("--for {}", fmt(Duration::from_millis(ms))),
        None => format!(
            "--repeat {} toward {connects} address(es) and {names} name(s) at --rate {}/s",
            rounds.repeat, rounds.rate
        ),
    };
    Err(format!(
        "{what} needs about {} with the connect timeout and the probe's start: it does not fit \
         in --timeout {}; raise --timeout to at least {}, or lower --repeat or raise --rate",
        fmt(needed),
        fmt(timeout),
        fmt(needed)
    ))
}

/// The probe deadline for a run limited to `overall`: at most 15 s, and at most half of the
/// overall time so that injection, image start and log streaming fit in the rest.
pub fn probe_deadline(overall: Duration) -> Duration {
    DEFAULT_PROBE_DEADLINE
        .min(overall / 2)
        .max(Duration::from_secs(1))
}

/// Parse `HOST:PORT` (`[v6]:PORT` for IPv6 literals) into a direct target.
pub fn parse_host_port(input: &str) -> Result<Target, String> {
    let bad = |why: &str| {
        format!("--to {input}: {why} (expected HOST:PORT, e.g. 10.0.0.5:8080 or [fd00::1]:80)")
    };
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing `]`"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing `:PORT` after the address"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address inside [ ]"));
        }
        (host, port)
    } else {
        let (host, port) = input
            .rsplit_once(':')
            .ok_or_else(|| bad("missing `:PORT`"))?;
        if host.contains(':') {
            return Err(bad("IPv6 addresses go in brackets"));
        }
        (host, port)
    };
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
    protocol::validate_host(host).map_err(|why| bad(&format!("`{host}` {why}")))?;
    Ok(Target {
        label: input.to_string(),
        host: host.to_string(),
        port: Some(port),
        role: TargetRole::Direct.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let t = parse_host_port("127.0.0.1:8080").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", Some(8080)));
        let t = parse_host_port("[::1]:443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(443)));
        let t = parse_host_port("db.example.com:5432").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("db.example.com", Some(5432)));
        assert_eq!(t.role, TargetRole::Direct);
        for bad in [
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "::1:80",
            "[::1]80",
            "bad host:1",
            ":80",
            "[1.2.3.4]:80",
        ] {
            let err = parse_host_port(bad).unwrap_err();
            assert!(err.starts_with(&format!("--to {bad}: ")), "{err}");
        }
    }

    #[test]
    fn capture_flags_reach_the_plan() {
        let t = parse_host_port("127.0.0.1:80").unwrap();
        let options = PlanOptions {
            capture: CaptureArgs {
                capture_filter: Some("tcp port 80".into()),
                capture_interface: Some("eth0".into()),
                capture_duration: Some(Duration::from_secs(30)),
                capture_packets: Some(50),
                capture_bytes: Some(4096),
                full_packets: true,
                ..CaptureArgs::default()
            },
            deadline: Duration::from_secs(15),
            ..PlanOptions::default()
        };
        assert!(
            options.capture.wanted(),
            "any capture flag implies --capture"
        );
        let plan = build_plan(vec![t], &options);
        let c = plan.capture.clone().unwrap();
        assert_eq!(c.filter.as_deref(), Some("tcp port 80"));
        assert_eq!(c.interface.as_deref(), Some("eth0"));
        assert_eq!((c.max_packets, c.max_bytes), (50, 4096));
        assert_eq!(c.snaplen, FULL_PACKET_SNAPLEN);
        // An explicit duration is watched in full, and the probe's deadline makes room for it.
        assert_eq!(c.max_duration_ms, 30_000);
        assert!(!c.stop_after_traffic);
        assert_eq!(plan.deadline_ms, 32_000);
        plan.validate().unwrap();
    }

    #[test]
    fn plan_from_flags() {
        let t = parse_host_port("127.0.0.1:80").unwrap();
        let plan = build_plan(
            vec![t],
            &PlanOptions {
                dns_names: vec!["a.example".into(), "a.example".into(), "b.example".into()],
                capture: CaptureArgs {
                    capture: true,
                    ..CaptureArgs::default()
                },
                write_pcap: false,
                mtu: true,
                sockets: false,
                deadline: Duration::from_secs(6),
                rounds: None,
                connect_timeout: None,
                app: Some(crate::app::app_plan(
                    &crate::app::AppAsk {
                        tls: true,
                        http_path: Some("/ready".into()),
                    },
                    "a.example",
                    Some(80),
                )),
            },
        );
        plan.validate().unwrap();
        assert_eq!(
            plan.app
                .as_ref()
                .and_then(|a| a.http.as_ref())
                .map(|h| h.host.as_str()),
            Some("a.example:80"),
            "https on port 80: the port is not the scheme's default, so Host carries it"
        );
        assert!(plan.effective_checks().contains(&protocol::CheckKind::App));
        assert_eq!(plan.dns.names, ["a.example", "b.example"]);
        assert_eq!(plan.deadline_ms, 6000);
        assert_eq!(plan.connect_timeout_ms, 2000);
        let capture = plan.capture.clone().unwrap();
        assert!(!capture.pcap);
        assert_eq!(capture.max_duration_ms, 5000);
        assert!(plan.mtu.is_some());
        let checks = plan.effective_checks();
        assert!(checks.contains(&protocol::CheckKind::Capture));
        assert!(checks.contains(&protocol::CheckKind::Mtu));
        // Round trip through the one JSON argument the probe receives.
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(Plan::from_json(&json).unwrap(), plan);
    }

    #[test]
    fn probe_deadline_leaves_room() {
        assert_eq!(
            probe_deadline(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(
            probe_deadline(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        assert_eq!(
            probe_deadline(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }

    /// Regression: `--sockets` was parsed and never read; alone it now asks for the checks
    /// about the pod's own stack, with a destination it leaves the default set alone.
    #[test]
    fn sockets_flag_alone_runs_the_stack_checks() {
        let options = PlanOptions {
            sockets: true,
            deadline: Duration::from_secs(10),
            ..PlanOptions::default()
        };
        let plan = build_plan(Vec::new(), &options);
        plan.validate().unwrap();
        assert_eq!(plan.effective_checks(), {
            let mut c = STACK_CHECKS.to_vec();
            c.sort();
            c
        });
        assert!(!plan.effective_checks().contains(&CheckKind::Tcp));
        let with_target = build_plan(vec![parse_host_port("10.0.0.1:80").unwrap()], &options);
        assert!(
            with_target.checks.is_empty(),
            "the default set for a destination"
        );
        assert!(with_target.effective_checks().contains(&CheckKind::Sockets));
    }
}

/// The flags that named the destination, for the verdict's re-run commands: `--to X` for each
/// destination, else `--dns NAME` for each name. Values with shell metacharacters are quoted.
pub fn asked_flags(to: &[String], dns: &[String]) -> Option<String> {
    let (flag, values) = if !to.is_empty() {
        ("--to", to)
    } else if !dns.is_empty() {
        ("--dns", dns)
    } else {
        return None;
    };
    Some(
        values
            .iter()
            .map(|v| format!("{flag} {}", shell_word(v)))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `v` as one shell word: as is when it is made of safe characters, else single-quoted
/// (`[::1]:80` too: brackets are a glob).
fn shell_word(v: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !v.is_empty() && v.chars().all(safe) {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod rounds_tests {
    use super::*;

    fn targets(n: usize) -> Vec<Target> {
        (0..n)
            .map(|i| parse_host_port(&format!("10.0.0.{}:80", i + 1)).unwrap())
            .collect()
    }

    fn options(rounds: RoundsPlan) -> PlanOptions {
        PlanOptions {
            deadline: Duration::from_secs(15),
            rounds: Some(rounds),
            ..PlanOptions::default()
        }
    }

    #[test]
    fn the_deadline_grows_to_hold_the_rounds() {
        // 200 rounds x 4 addresses at 50/s: 16 s of attempts, + 3 s connect timeout + 2 s.
        let plan = build_plan(targets(4), &options(RoundsPlan::new(200)));
        assert_eq!(plan.rounds.as_ref().unwrap().repeat, 200);
        assert_eq!(plan.deadline_ms, 21_000);
        assert!(check_rounds_fit(&plan, Duration::from_secs(41), Site::Cluster).is_ok());
        let err = check_rounds_fit(&plan, Duration::from_secs(40), Site::Cluster).unwrap_err();
        assert_eq!(
            err,
            "--repeat 200 toward 4 address(es) and 0 name(s) at --rate 50/s needs about 41s with \
             the connect timeout and the probe's start: it does not fit in --timeout 40s; raise \
             --timeout to at least 41s, or lower --repeat or raise --rate"
        );
        // One round is the single-shot default: its deadline is not touched.
        let plan = build_plan(
            targets(4),
            &PlanOptions {
                deadline: Duration::from_secs(15),
                ..PlanOptions::default()
            },
        );
        assert_eq!((plan.rounds, plan.deadline_ms), (None, 15_000));
    }

    #[test]
    fn connect_timeout_flag_reaches_the_plan() {
        let mut o = options(RoundsPlan::new(10));
        o.connect_timeout = Some(Duration::from_millis(500));
        let plan = build_plan(targets(1), &o);
        assert_eq!(plan.connect_timeout_ms, 500);
        // 10 attempts at 50/s (0.2 s) + the last attempt's 0.5 s + 2 s is under 15 s.
        assert_eq!(plan.deadline_ms, 15_000);
    }

    #[test]
    fn for_bounds_the_rounds_whatever_the_repeat() {
        let mut r = RoundsPlan::new(protocol::MAX_REPEAT);
        r.for_ms = Some(10_000);
        let plan = build_plan(targets(2), &options(r));
        assert_eq!(plan.deadline_ms, 15_000, "10 s + 3 s + 2 s");
    }
}

#[cfg(test)]
mod asked_tests {
    use super::asked_flags;

    #[test]
    fn the_destination_flags_are_repeated_as_given() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            asked_flags(&s(&["svc/web:80"]), &[]).as_deref(),
            Some("--to svc/web:80")
        );
        assert_eq!(
            asked_flags(&[], &s(&["kubernetes.default", "a.example."])).as_deref(),
            Some("--dns kubernetes.default --dns a.example.")
        );
        assert_eq!(
            asked_flags(&s(&["10.0.0.1:80", "[::1]:8080"]), &[]).as_deref(),
            Some("--to 10.0.0.1:80 --to '[::1]:8080'")
        );
        assert_eq!(
            asked_flags(&s(&["a b"]), &[]).as_deref(),
            Some("--to 'a b'")
        );
        assert_eq!(asked_flags(&[], &[]), None);
    }
}
