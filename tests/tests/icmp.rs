//! ICMP errors that end a TCP connect, named with their type, code and sender: a client --
//! router -- server path where the router's FORWARD chain rejects one port per
//! `--reject-with`, the server rejects one port itself and resets another, and the client's
//! own OUTPUT chain rejects one. Oracles: tcpdump on the client's interface (the ICMP error
//! with that type and code, from that sender, quoting the SYN to that port, really arrived)
//! and the REJECT rules' packet counters. The verdict on each target alone must name the
//! error, "ICMP t/c" and the sender, and say where the SYN was stopped. Needs root:
//! `cargo build -p probe && cargo test -p netdebug-scenarios --test icmp`.

use std::process::Command;

use netdebug_scenarios::{
    json_plan, require_root, require_tools, run_probe, run_with_timeout, Captured, Link, Netns,
    ProbeRun, DEFAULT_TIMEOUT,
};
use netdebug_verdict::{RuleCode, Status, Verdict};
use protocol::{Event, Evidence, TcpEvidence, TcpOutcome};
use serde_json::json;

const CLIENT: &str = "10.199.86.2";
const ROUTER: &str = "10.199.86.1";
const SERVER: &str = "10.199.87.2";
const CLIENT6: &str = "fd00:199:86::2";
const ROUTER6: &str = "fd00:199:86::1";
const SERVER6: &str = "fd00:199:87::2";

struct Path {
    client: Netns,
    router: Netns,
    server: Netns,
}

/// client c0 10.199.86.2 -- r0 10.199.86.1 router r1 10.199.87.1 -- s0 10.199.87.2 server,
/// and the same in fd00:199:86::/64 and fd00:199:87::/64.
fn path() -> Path {
    require_root();
    require_tools(&["ip", "iptables", "ip6tables", "tcpdump"]);
    let client = Netns::new("ic");
    let router = Netns::new("ir");
    let server = Netns::new("is");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.86.2/24",
        &router,
        "r0",
        "10.199.86.1/24",
    );
    Link::veth_pair(
        &router,
        "r1",
        "10.199.87.1/24",
        &server,
        "s0",
        "10.199.87.2/24",
    );
    client.add_addr("c0", "fd00:199:86::2/64");
    router.add_addr("r0", "fd00:199:86::1/64");
    router.add_addr("r1", "fd00:199:87::1/64");
    server.add_addr("s0", "fd00:199:87::2/64");
    client.add_route("default via 10.199.86.1");
    client.add_route("default via fd00:199:86::1");
    server.add_route("default via 10.199.87.1");
    server.add_route("default via fd00:199:87::1");
    router.set_sysctl("net.ipv4.ip_forward", "1");
    router.set_sysctl("net.ipv6.conf.all.forwarding", "1");
    // Every rejected SYN gets its error: no per-peer ICMP rate limit (6 in a burst).
    for ns in [&client, &router, &server] {
        ns.set_sysctl("net.ipv4.icmp_ratelimit", "0");
        ns.set_sysctl("net.ipv6.icmp.ratelimit", "0");
    }
    Path {
        client,
        router,
        server,
    }
}

/// Packets the REJECT rule for `port` in `chain` matched.
fn rule_packets(ns: &Netns, v6: bool, chain: &str, port: u16) -> u64 {
    let tool = if v6 { "ip6tables" } else { "iptables" };
    let out = ns.exec(&[tool, "-L", chain, "-v", "-x", "-n"]).stdout;
    out.lines()
        .find(|l| l.contains("REJECT") && l.contains(&format!("dpt:{port} ")))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no REJECT rule for port {port} in {chain}:\n{out}"))
}

/// ICMP errors in the capture with this type and code, from `from`, quoting a TCP segment
/// to `port` (the quoted IP header is 20 bytes for IPv4, 40 for IPv6).
fn icmp_seen(cap: &Captured, v6: bool, t: u8, c: u8, from: &str, port: u16) -> usize {
    let filter = if v6 {
        format!(
            "icmp6 and src host {from} and ip6[40] = {t} and ip6[41] = {c} and ip6[48 + 40 + 2:2] = {port}"
        )
    } else {
        format!(
            "icmp and src host {from} and icmp[0] = {t} and icmp[1] = {c} and icmp[8 + 20 + 2:2] = {port}"
        )
    };
    let out = run_with_timeout(
        Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(cap.pcap.path())
            .arg(&filter),
        DEFAULT_TIMEOUT,
    );
    assert!(out.success(), "tcpdump -r '{filter}': {}", out.stderr);
    out.stdout.lines().count()
}

fn tcp_of<'a>(run: &'a ProbeRun, host: &str, port: u16) -> &'a TcpEvidence {
    let label = format!("{host}:{port}");
    run.evidence::<TcpEvidence>()
        .into_iter()
        .find(|t| t.target == label)
        .unwrap_or_else(|| panic!("no tcp evidence for {label}\n{}", run.stdout))
}

/// The verdict on one target's connect alone.
fn verdict_of(p: &Path, run: &ProbeRun, t: &TcpEvidence) -> Verdict {
    run.local_verdict(&p.client, &t.target, |e| match e {
        Event::Evidence(Evidence::Tcp(other)) => other.target == t.target,
        _ => true,
    })
}

fn probe(p: &Path, targets: &[(&str, u16)]) -> (ProbeRun, Captured) {
    let targets: Vec<_> = targets
        .iter()
        .map(|(h, port)| json!({"label": format!("{h}:{port}"), "host": h, "port": port}))
        .collect();
    let plan = json_plan(json!({"v": 1, "checks": ["tcp", "links"],
        "connect_timeout_ms": 1500, "targets": targets}));
    // ICMPv6 errors only (types below 128), not neighbour discovery.
    let capture = p
        .client
        .start_tcpdump("c0", "icmp or ( icmp6 and ip6[40] < 128 )");
    let run = run_probe(&p.client, &plan);
    run.assert_ok();
    (run, capture.stop())
}

/// One rejected connect: the evidence names the ICMP error and its sender, tcpdump saw that
/// very error, and the verdict says it in words.
struct Case {
    port: u16,
    with: &'static str,
    icmp_type: u8,
    code: u8,
    meaning: &'static str,
    words: &'static str,
    outcome: TcpOutcome,
}

const ROUTER_CASES: &[Case] = &[
    case(
        9101,
        "icmp-net-unreachable",
        0,
        "net_unreachable",
        "network unreachable",
        TcpOutcome::NetworkUnreachable,
    ),
    case(
        9102,
        "icmp-host-unreachable",
        1,
        "host_unreachable",
        "host unreachable",
        TcpOutcome::HostUnreachable,
    ),
    case(
        9103,
        "icmp-port-unreachable",
        3,
        "port_unreachable",
        "port unreachable",
        TcpOutcome::Refused,
    ),
    case(
        9104,
        "icmp-proto-unreachable",
        2,
        "protocol_unreachable",
        "protocol unreachable",
        TcpOutcome::Error,
    ),
    case(
        9105,
        "icmp-net-prohibited",
        9,
        "net_prohibited",
        "network administratively prohibited",
        TcpOutcome::NetworkUnreachable,
    ),
    case(
        9106,
        "icmp-host-prohibited",
        10,
        "host_prohibited",
        "host administratively prohibited",
        TcpOutcome::HostUnreachable,
    ),
    case(
        9107,
        "icmp-admin-prohibited",
        13,
        "admin_prohibited",
        "administratively prohibited",
        TcpOutcome::HostUnreachable,
    ),
];

const fn case(
    port: u16,
    with: &'static str,
    code: u8,
    meaning: &'static str,
    words: &'static str,
    outcome: TcpOutcome,
) -> Case {
    Case {
        port,
        with,
        icmp_type: 3,
        code,
        meaning,
        words,
        outcome,
    }
}

#[track_caller]
fn assert_case(p: &Path, run: &ProbeRun, cap: &Captured, c: &Case, dst: &str, from: &str) {
    let v6 = dst.contains(':');
    let t = tcp_of(run, dst, c.port);
    assert_eq!(t.outcome, c.outcome, "{} {t:?}", c.with);
    let icmp = t
        .icmp
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no icmp in {t:?}", c.with));
    assert_eq!(
        (icmp.icmp_type, icmp.code),
        (c.icmp_type, c.code),
        "{}",
        c.with
    );
    assert_eq!(icmp.meaning.as_str(), c.meaning, "{}", c.with);
    assert_eq!(icmp.from.map(|a| a.to_string()).as_deref(), Some(from));
    assert_eq!(icmp.family.as_str(), if v6 { "inet6" } else { "inet" });
    // The oracle: that error, from that sender, about this SYN, is on the client's wire.
    assert!(
        icmp_seen(cap, v6, c.icmp_type, c.code, from, c.port) >= 1,
        "{}: tcpdump saw no ICMP {}/{} from {from} about port {}:\n{}",
        c.with,
        c.icmp_type,
        c.code,
        c.port,
        cap.text
    );
    let v = verdict_of(p, run, t);
    assert_eq!(v.status, Status::Failed, "{v:?}");
    assert_eq!(v.rules_fired, [RuleCode::TcpRejected], "{}: {v:?}", c.with);
    let family = if v6 { "ICMPv6" } else { "ICMP" };
    let named = format!(
        "{} ({family} {}/{}) from {from}",
        c.words, c.icmp_type, c.code
    );
    assert!(
        v.headline.contains(&named),
        "{}: headline {:?}",
        c.with,
        v.headline
    );
    let cause = v.cause.clone().unwrap_or_default();
    assert!(cause.contains(&named), "{}: cause {cause}", c.with);
    assert!(
        v.evidence.iter().any(|l| l.text.contains(&named)),
        "{}: evidence {:?}",
        c.with,
        v.evidence
    );
}

#[test]
fn every_reject_with_on_a_router_is_named_with_its_sender() {
    let p = path();
    for c in ROUTER_CASES {
        p.router.reject_tcp(false, "FORWARD", c.port, c.with);
    }
    let targets: Vec<(&str, u16)> = ROUTER_CASES.iter().map(|c| (SERVER, c.port)).collect();
    let (run, cap) = probe(&p, &targets);
    for c in ROUTER_CASES {
        assert_eq!(
            rule_packets(&p.router, false, "FORWARD", c.port),
            1,
            "{}",
            c.with
        );
        assert_case(&p, &run, &cap, c, SERVER, ROUTER);
        let t = tcp_of(&run, SERVER, c.port);
        let cause = verdict_of(&p, &run, t).cause.unwrap_or_default();
        assert!(
            cause.contains(&format!(
                "{ROUTER}, a hop before {SERVER}, sent it, so the SYN was stopped there and \
                 never reached the destination"
            )),
            "{}: {cause}",
            c.with
        );
    }
    // ECONNREFUSED from an ICMP port unreachable is not a missing listener.
    let t = tcp_of(&run, SERVER, 9103);
    let cause = verdict_of(&p, &run, t).cause.unwrap_or_default();
    assert!(
        cause.contains("connect reports ECONNREFUSED as for a RST"),
        "{cause}"
    );
    assert!(cause.contains("not a missing listener"), "{cause}");
    assert!(
        cause.contains("--reject-with icmp-port-unreachable"),
        "{cause}"
    );
}

#[test]
fn a_reset_is_refused_by_rst_and_the_destination_and_this_host_are_told_apart() {
    let p = path();
    // The server resets one port with a REJECT, leaves one closed, and prohibits one itself;
    // the client's own OUTPUT rejects one.
    p.server.reject_tcp(false, "INPUT", 9201, "tcp-reset");
    p.server
        .reject_tcp(false, "INPUT", 9203, "icmp-admin-prohibited");
    p.client
        .reject_tcp(false, "OUTPUT", 9204, "icmp-host-prohibited");
    let (run, cap) = probe(
        &p,
        &[
            (SERVER, 9201),
            (SERVER, 9202),
            (SERVER, 9203),
            (SERVER, 9204),
        ],
    );
    assert_eq!(rule_packets(&p.server, false, "INPUT", 9201), 1);
    for port in [9201, 9202] {
        let t = tcp_of(&run, SERVER, port);
        assert_eq!(t.outcome, TcpOutcome::Refused, "{t:?}");
        assert_eq!(t.errno, Some(111), "ECONNREFUSED");
        assert_eq!(t.icmp, None, "a RST is not an ICMP error: {t:?}");
        let v = verdict_of(&p, &run, t);
        assert_eq!(v.rules_fired, [RuleCode::TcpRefusedNoListener], "{v:?}");
        let cause = v.cause.unwrap_or_default();
        assert!(
            cause.contains(&format!("{SERVER}:{port} answered with RST")),
            "{cause}"
        );
        assert!(!cause.contains("ICMP"), "{cause}");
    }
    assert_eq!(
        cap.packets().len(),
        1,
        "one ICMP error (9203) on the wire:\n{}",
        cap.text
    );

    let from_server = Case {
        port: 9203,
        with: "icmp-admin-prohibited on the server",
        icmp_type: 3,
        code: 13,
        meaning: "admin_prohibited",
        words: "administratively prohibited",
        outcome: TcpOutcome::HostUnreachable,
    };
    assert_case(&p, &run, &cap, &from_server, SERVER, SERVER);
    let cause = verdict_of(&p, &run, tcp_of(&run, SERVER, 9203))
        .cause
        .unwrap_or_default();
    assert!(
        cause.contains(&format!(
            "{SERVER} itself sent it, so the SYN reached the destination"
        )),
        "{cause}"
    );

    // The client's own REJECT: the error never crosses c0, so the rule counter is the oracle.
    assert_eq!(rule_packets(&p.client, false, "OUTPUT", 9204), 1);
    let t = tcp_of(&run, SERVER, 9204);
    let icmp = t
        .icmp
        .as_ref()
        .expect("an icmp error from the local REJECT");
    assert_eq!((icmp.icmp_type, icmp.code), (3, 10));
    assert_eq!(icmp.from.map(|a| a.to_string()).as_deref(), Some(CLIENT));
    let v = verdict_of(&p, &run, t);
    let cause = v.cause.unwrap_or_default();
    assert!(
        cause.contains(&format!("this host ({CLIENT}) sent it to itself")),
        "{cause}"
    );
    assert!(
        v.next.iter().any(|n| n.contains("iptables -S OUTPUT")),
        "{:?}",
        v.next
    );
}

#[test]
fn icmpv6_adm_prohibited_on_a_router() {
    let p = path();
    p.router
        .reject_tcp(true, "FORWARD", 9301, "icmp6-adm-prohibited");
    p.router
        .reject_tcp(true, "FORWARD", 9302, "icmp6-port-unreachable");
    let (run, cap) = probe(&p, &[(SERVER6, 9301), (SERVER6, 9302)]);
    let cases = [
        Case {
            port: 9301,
            with: "icmp6-adm-prohibited",
            icmp_type: 1,
            code: 1,
            meaning: "admin_prohibited",
            words: "administratively prohibited",
            // Linux turns ICMPv6 1/1 into EACCES, the errno of a local refusal: only the
            // error queue shows it came from the router.
            outcome: TcpOutcome::PermissionDenied,
        },
        Case {
            port: 9302,
            with: "icmp6-port-unreachable",
            icmp_type: 1,
            code: 4,
            meaning: "port_unreachable",
            words: "port unreachable",
            outcome: TcpOutcome::Refused,
        },
    ];
    for c in &cases {
        assert_eq!(rule_packets(&p.router, true, "FORWARD", c.port), 1);
        assert_case(&p, &run, &cap, c, SERVER6, ROUTER6);
        let local = tcp_of(&run, SERVER6, c.port)
            .local
            .map(|l| l.ip().to_string());
        assert_eq!(local.as_deref(), Some(CLIENT6));
    }
}

/// Repeated connects where the router rejects every 4th SYN with admin-prohibited: each
/// failure sample carries the error and its sender, the count equals the rule's counter, and
/// the intermittent finding says what every failure was.
#[test]
fn rounds_name_the_icmp_error_behind_every_failure() {
    let p = path();
    p.router.every_nth(
        "FORWARD",
        "-p tcp --dport 9401 --syn",
        4,
        "REJECT --reject-with icmp-admin-prohibited",
    );
    let _server = p
        .server
        .spawn_tcp_server(format!("{SERVER}:9401").parse().unwrap());
    let plan = json_plan(
        json!({"v": 1, "checks": ["tcp", "links"], "connect_timeout_ms": 1500,
        "rounds": {"repeat": 20, "rate": 100},
        "targets": [{"label": format!("{SERVER}:9401"), "host": SERVER, "port": 9401}]}),
    );
    let run = run_probe(&p.client, &plan);
    run.assert_ok();
    let rounds = run.one::<protocol::TcpRoundsEvidence>();
    let rejected = rule_packets(&p.router, false, "FORWARD", 9401);
    assert_eq!(rejected, 5, "every 4th of 20 SYNs");
    assert_eq!(rounds.failed(), rejected, "{rounds:?}");
    for s in &rounds.failures {
        let icmp = s
            .icmp
            .as_ref()
            .expect("each failure carries its ICMP error");
        assert_eq!((icmp.icmp_type, icmp.code), (3, 13), "{s:?}");
        assert_eq!(icmp.from, Some(ROUTER.parse().unwrap()), "{s:?}");
    }
    let v = run.local_verdict(&p.client, &format!("{SERVER}:9401"), |_| true);
    let finding = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::TcpIntermittent)
        .unwrap_or_else(|| panic!("no intermittent finding: {v:#?}"));
    assert!(
        finding.cause.contains(&format!(
            "every failure was administratively prohibited (ICMP 3/13) from {ROUTER}"
        )),
        "{}",
        finding.cause
    );
}
