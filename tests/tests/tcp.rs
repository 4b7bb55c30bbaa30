//! The tcp check's classification against real listeners, iptables REJECT/DROP rules and
//! routes in namespaces, each cross-checked with bash's /dev/tcp connect (the kernel's
//! error text for the same connect), ss, and the server's own log. Needs root:
//! `cargo build -p probe && cargo test -p netdebug-scenarios --test tcp`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use netdebug_scenarios::pair::{CLI, CLI6, SRV, SRV6};
use netdebug_scenarios::ClientServer as Lab;
use protocol::{
    CheckKind, CheckStatus, Evidence, MtuEvidence, Open, RouteEvidence, TargetRole, TcpEvidence,
    TcpOutcome,
};
use serde_json::json;

/// A TCP server that accepts, reads until EOF and logs `peer bytes-received` per connection.
/// It prints `ready` once it listens.
const LISTENER: &str = r#"
import socket, sys, threading
addr, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(128)
print("ready", flush=True)
def serve(c, peer):
    n = 0
    while True:
        d = c.recv(4096)
        if not d:
            break
        n += len(d)
    with open(log, "a") as f:
        f.write("%s:%d %d\n" % (peer[0], peer[1], n))
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"#;

fn start_listener(lab: &Lab, addr: &str, port: u16) -> std::path::PathBuf {
    let log = lab.file(&format!("listener-{port}.log"));
    let port_s = port.to_string();
    let (_, ready) = lab.srv.spawn_ready(
        &[
            "python3",
            "-c",
            LISTENER,
            addr,
            &port_s,
            log.to_str().unwrap(),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(ready, "ready");
    log
}

fn probe_tcp(lab: &Lab, targets: &[(&str, u16)], timeout_ms: u64) -> BTreeMap<String, TcpEvidence> {
    let targets: Vec<_> = targets
        .iter()
        .map(|(host, port)| json!({"label": format!("{host}:{port}"), "host": host, "port": port}))
        .collect();
    let plan =
        json!({"v": 1, "checks": ["tcp"], "connect_timeout_ms": timeout_ms, "targets": targets});
    lab.probe(plan)
        .all_evidence()
        .map(|e| match e {
            Evidence::Tcp(t) => (t.target.clone(), t.clone()),
            other => panic!("unexpected evidence from the tcp check: {other:?}"),
        })
        .collect()
}

/// The kernel's answer to the same connect, through bash: its error text, or "connected".
fn bash_connect(lab: &Lab, host: &str, port: u16) -> String {
    let script = format!("exec 3<>/dev/tcp/{host}/{port} && echo connected");
    let out = lab.cli.try_exec(&["timeout", "2", "bash", "-c", &script]);
    if out.status.code() == Some(124) {
        return "timed out".into();
    }
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn server_side_outcomes_are_told_apart() {
    let lab = Lab::new("tcpsrv");
    let log = start_listener(&lab, SRV, 8080);
    for (port, with) in [
        (8082, "tcp-reset"),
        (8084, "icmp-host-unreachable"),
        (8085, "icmp-admin-prohibited"),
        (8086, "icmp-net-unreachable"),
    ] {
        lab.srv.reject_tcp_port(port, with);
    }
    lab.srv.drop_tcp_port(8083);

    let ports = [8080, 8081, 8082, 8083, 8084, 8085, 8086];
    let targets: Vec<(&str, u16)> = ports.iter().map(|p| (SRV, *p)).collect();
    let started = Instant::now();
    let ev = probe_tcp(&lab, &targets, 800);
    let wall = started.elapsed();
    let get = |port: u16| &ev[&format!("{SRV}:{port}")];
    let expected = [
        (8080, TcpOutcome::Ok, None, "connected"),
        (8081, TcpOutcome::Refused, Some(111), "Connection refused"),
        (8082, TcpOutcome::Refused, Some(111), "Connection refused"),
        (8083, TcpOutcome::Timeout, None, "timed out"),
        (
            8084,
            TcpOutcome::HostUnreachable,
            Some(113),
            "No route to host",
        ),
        (
            8085,
            TcpOutcome::HostUnreachable,
            Some(113),
            "No route to host",
        ),
        (
            8086,
            TcpOutcome::NetworkUnreachable,
            Some(101),
            "Network is unreachable",
        ),
    ];
    for (port, outcome, errno, bash_says) in expected {
        let e = get(port);
        assert_eq!(e.outcome, outcome, "port {port}: {e:?}");
        assert_eq!(e.errno, errno, "port {port}: {e:?}");
        assert_eq!(e.address.to_string(), format!("{SRV}:{port}"));
        assert_eq!(
            e.local.map(|l| l.ip().to_string()).as_deref(),
            Some(CLI),
            "{e:?}"
        );
        let oracle = bash_connect(&lab, SRV, port);
        assert!(
            oracle.contains(bash_says),
            "port {port}: bash says {oracle:?}"
        );
    }
    // The timeout was honoured: not shorter, not much longer.
    let dropped = get(8083);
    assert!((800.0..1800.0).contains(&dropped.latency_ms), "{dropped:?}");
    // All targets were tried at once: seven connects took about one timeout, not the sum.
    assert!(
        wall < Duration::from_millis(800 * 3),
        "connects ran concurrently: {wall:?}"
    );

    // The ok connection was closed without data: the server logged 0 bytes from that port.
    let ok = get(8080);
    assert!(ok.latency_ms > 0.0);
    let local = ok.local.unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with(&format!("{local} "))) {
            assert_eq!(line, format!("{local} 0"), "no data sent before the close");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the listener never saw {local} close: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn client_side_firewall_and_routes() {
    let lab = Lab::new("tcpcli");
    start_listener(&lab, SRV, 8080);
    let out = |args: &[&str]| {
        let mut full = vec!["-A", "OUTPUT", "-p", "tcp"];
        full.extend_from_slice(args);
        lab.cli.iptables(&full);
    };
    out(&["--dport", "9001", "-j", "REJECT"]);
    out(&[
        "--dport",
        "9002",
        "-j",
        "REJECT",
        "--reject-with",
        "icmp-admin-prohibited",
    ]);
    out(&["--dport", "9003", "-j", "DROP"]);
    for (kind, net) in [
        ("prohibit", "10.199.71.0/24"),
        ("unreachable", "10.199.73.0/24"),
        ("blackhole", "10.199.72.0/24"),
    ] {
        lab.cli.ip(&["route", "add", kind, net]);
    }
    let targets = [
        (SRV, 9001),
        (SRV, 9002),
        (SRV, 9003),
        ("10.199.71.1", 80),
        ("10.199.73.1", 80),
        ("10.199.72.1", 80),
        // Not covered by any route in the client namespace.
        ("10.199.74.1", 80),
    ];
    let ev = probe_tcp(&lab, &targets, 700);
    let expected = [
        // OUTPUT REJECT's default ICMP port-unreachable reaches the socket as ECONNREFUSED.
        (
            SRV,
            9001,
            TcpOutcome::Refused,
            Some(111),
            "Connection refused",
        ),
        (
            SRV,
            9002,
            TcpOutcome::HostUnreachable,
            Some(113),
            "No route to host",
        ),
        // A local OUTPUT DROP is invisible to connect: TCP retries the SYN, as for a remote drop.
        (SRV, 9003, TcpOutcome::Timeout, None, "timed out"),
        (
            "10.199.71.1",
            80,
            TcpOutcome::PermissionDenied,
            Some(13),
            "Permission denied",
        ),
        (
            "10.199.73.1",
            80,
            TcpOutcome::HostUnreachable,
            Some(113),
            "No route to host",
        ),
        (
            "10.199.72.1",
            80,
            TcpOutcome::Error,
            Some(22),
            "Invalid argument",
        ),
        (
            "10.199.74.1",
            80,
            TcpOutcome::NetworkUnreachable,
            Some(101),
            "Network is unreachable",
        ),
    ];
    for (host, port, outcome, errno, bash_says) in expected {
        let e = &ev[&format!("{host}:{port}")];
        assert_eq!(
            (e.outcome.known(), e.errno),
            (Some(outcome), errno),
            "{e:?}"
        );
        let oracle = bash_connect(&lab, host, port);
        assert!(
            oracle.contains(bash_says),
            "{host}:{port}: bash says {oracle:?}"
        );
    }
    // The route check's oracle agrees on the routes that failed before any packet left.
    let route = lab.cli.try_exec(&["ip", "route", "get", "10.199.71.1"]);
    assert!(route.stderr.contains("Permission denied"), "{route:?}");
}

#[test]
fn ephemeral_port_exhaustion_is_address_not_available() {
    let lab = Lab::new("tcpeph");
    start_listener(&lab, SRV, 8080);
    lab.cli
        .set_sysctl("net.ipv4.ip_local_port_range", "40000 40001");
    // Two connections hold both ports toward the same destination.
    let hold =
        format!("exec 3<>/dev/tcp/{SRV}/8080 && exec 4<>/dev/tcp/{SRV}/8080 && exec sleep 60");
    lab.cli.spawn(&["bash", "-c", &hold]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let held = loop {
        let text = lab
            .cli
            .exec(&["ss", "-H", "-tn", "state", "established", "dst", SRV])
            .stdout;
        if text.lines().count() == 2 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the two holding connections never came up: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(held.contains(":40000") && held.contains(":40001"), "{held}");

    let ev = probe_tcp(&lab, &[(SRV, 8080)], 1000);
    let e = &ev[&format!("{SRV}:8080")];
    assert_eq!(e.outcome, TcpOutcome::AddressNotAvailable, "{e:?}");
    assert_eq!(e.errno, Some(99));
    let oracle = bash_connect(&lab, SRV, 8080);
    assert!(
        oracle.contains("Cannot assign requested address"),
        "bash says {oracle:?}"
    );
}

#[test]
fn unresolvable_name_is_reported_as_unresolved() {
    let lab = Lab::new("tcpname");
    // The only nameserver is an address in the server namespace where nothing listens.
    let conf = lab.write(
        "resolv.conf",
        &format!("nameserver {SRV}\noptions timeout:1\n"),
    );
    let plan = json!({
        "v": 1,
        "checks": ["tcp"],
        "targets": [{"label": "db", "host": "db.corp.test", "port": 5432}],
        "dns": {"resolv_conf": conf.to_str().unwrap()},
    });
    let run = lab.probe(plan);
    let ev: Vec<&Evidence> = run.all_evidence().collect();
    let [Evidence::Tcp(t)] = ev.as_slice() else {
        panic!("one tcp evidence expected: {ev:?}")
    };
    assert_eq!(t.outcome, TcpOutcome::Unresolved);
    assert_eq!(t.address.port(), 5432);
    assert!(
        t.message.as_deref().unwrap().contains("db.corp.test"),
        "{t:?}"
    );
}

#[test]
fn ipv6_targets_are_connected_too() {
    let lab = Lab::new("tcp6");
    lab.enable_v6();
    start_listener(&lab, SRV6, 8080);
    let ev = probe_tcp(&lab, &[(SRV6, 8080), (SRV6, 8081)], 1000);
    let ok = &ev[&format!("{SRV6}:8080")];
    assert_eq!(ok.outcome, TcpOutcome::Ok, "{ok:?}");
    assert_eq!(ok.address.to_string(), format!("[{SRV6}]:8080"));
    assert_eq!(ok.local.unwrap().ip().to_string(), CLI6);
    let refused = &ev[&format!("{SRV6}:8081")];
    assert_eq!(refused.outcome, TcpOutcome::Refused, "{refused:?}");
    let oracle = bash_connect(&lab, SRV6, 8081);
    assert!(
        oracle.contains("Connection refused"),
        "bash says {oracle:?}"
    );
}

/// The plan's role for each target comes back in the evidence about it (tcp, route, mtu), so
/// the verdict never re-derives it from addresses.
#[test]
fn target_role_is_echoed_in_tcp_route_and_mtu_evidence() {
    let lab = Lab::new("tcprole");
    let _server = lab.listen(8080);
    let target = |label: &str, port: u16, role: &str| json!({"label": label, "host": SRV, "port": port, "role": role});
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "route", "mtu"],
        "connect_timeout_ms": 2000,
        "mtu": {"wait_ms": 200},
        "targets": [
            target("svc/web:80", 8080, "cluster_ip"),
            target("10.199.1.1:8080", 8080, "endpoint"),
            target("direct", 8081, "direct"),
        ],
    });
    let run = lab.probe(plan);
    let roles_of = |evidence: Vec<(String, Open<TargetRole>)>| -> BTreeMap<String, String> {
        evidence
            .into_iter()
            .map(|(label, role)| (label, role.to_string()))
            .collect()
    };
    let tcp = roles_of(
        run.evidence::<TcpEvidence>()
            .into_iter()
            .map(|t| (t.target.clone(), t.role.clone()))
            .collect(),
    );
    let want: BTreeMap<String, String> = [
        ("svc/web:80", "cluster_ip"),
        ("10.199.1.1:8080", "endpoint"),
        ("direct", "direct"),
    ]
    .into_iter()
    .map(|(l, r)| (l.to_string(), r.to_string()))
    .collect();
    assert_eq!(tcp, want, "tcp evidence");
    let route = roles_of(
        run.evidence::<RouteEvidence>()
            .into_iter()
            .map(|r| (r.target.clone(), r.role.clone()))
            .collect(),
    );
    assert_eq!(route, want, "route evidence");
    // The MTU search probes each destination once: the first target naming it carries it.
    let mtu = run.evidence::<MtuEvidence>();
    assert!(!mtu.is_empty(), "an mtu result");
    for m in mtu {
        assert_eq!(Some(&m.role.to_string()), want.get(&m.target), "{m:?}");
    }
}

/// A newer client may name a check this probe does not have: the probe says so with a
/// `skipped` event for it and runs the others.
#[test]
fn unknown_check_in_plan_is_skipped_and_the_rest_runs() {
    let lab = Lab::new("tcpunk");
    let _server = lab.listen(8080);
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "quic"],
        "targets": [{"label": "web", "host": SRV, "port": 8080}],
    });
    let run = lab.probe(plan);
    let skipped = run.all_skipped();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].check, Open::Unknown("quic".into()));
    assert!(
        skipped[0].reason.contains("does not know the check `quic`"),
        "{}",
        skipped[0].reason
    );
    let tcp = run.evidence::<TcpEvidence>();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0].outcome, TcpOutcome::Ok);
    assert_eq!(run.done().checks_completed, 1);
    assert_eq!(
        run.done().checks_skipped,
        1,
        "the unknown check is counted as skipped"
    );
    let finished = run.finished(CheckKind::Tcp);
    assert_eq!(finished.status, CheckStatus::Completed);
}
