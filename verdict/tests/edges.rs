//! Edge cases of single rules and of the engine, on evidence constructed in code (one fact
//! at a time): thresholds, the tool's own failures, and the public API's small promises.
//! The catalog itself is tested on recorded evidence in `catalog.rs`.

mod common;

use common::build::*;
use common::title;
use netdebug_verdict::kube::KubeEvidence;
use netdebug_verdict::render::by_name;
use netdebug_verdict::{
    evaluate, Inputs, Origin, PcapInfo, Renderer, RuleCode, Status, StreamEnd, TextRenderer, Title,
};
use protocol::{CheckFinished, CheckKind, CheckStatus, Event, TargetRole, TcpOutcome};

fn ok_path() -> Vec<Event> {
    vec![
        route(
            "10.199.70.2",
            "eth0",
            None,
            "10.199.70.1",
            Some("REACHABLE"),
        ),
        tcp("10.199.70.2:8080", TcpOutcome::Ok, 0.5),
    ]
}

#[test]
fn close_wait_threshold() {
    let below = |n: u64| {
        let mut e = ok_path();
        e.push(sockets(serde_json::json!({
            "states": {"CLOSE-WAIT": n, "ESTAB": 3},
            "close_wait_by_peer": [{"peer": "10.199.70.2:8080", "count": n}],
        })));
        evaluate(&inputs(e))
    };
    assert_eq!(below(7).status, Status::Healthy);
    let v = below(8);
    assert_eq!(v.status, Status::Degraded);
    assert_eq!(v.rules_fired, vec![RuleCode::CloseWaitAccumulation]);
    assert!(v
        .cause
        .unwrap()
        .starts_with("8 sockets in CLOSE-WAIT from 10.199.70.2:8080"));
}

#[test]
fn time_wait_near_the_range_without_failure_is_a_warning() {
    let mut e = ok_path();
    e.push(sockets(serde_json::json!({
        "states": {"TIME-WAIT": 25000},
        "time_wait_ratio": 0.88,
        "time_wait_top_peer": {"peer": "10.199.70.2:8080", "count": 25000},
    })));
    let v = evaluate(&inputs(e));
    assert_eq!(v.status, Status::Degraded);
    assert_eq!(v.rules_fired, vec![RuleCode::EphemeralPortExhaustion]);
    assert!(v
        .cause
        .as_deref()
        .unwrap()
        .contains("fill 88% of the ephemeral port range 32768-60999"));
}

#[test]
fn eaddrnotavail_names_the_time_wait_peer() {
    let e = vec![
        tcp("10.199.70.2:8080", TcpOutcome::AddressNotAvailable, 0.1),
        sockets(serde_json::json!({
            "states": {"TIME-WAIT": 28000},
            "time_wait_ratio": 0.99,
            "time_wait_top_peer": {"peer": "10.199.70.2:8080", "count": 28000},
        })),
    ];
    let v = evaluate(&inputs(e));
    assert_eq!(v.status, Status::Failed);
    assert!(v.cause.as_deref().unwrap().contains(
        "28000 TIME-WAIT sockets toward 10.199.70.2:8080 against an ephemeral port range of 28232"
    ));
}

#[test]
fn loopback_listener_seen_from_the_destination_side() {
    let e = vec![
        tcp("10.199.70.2:8090", TcpOutcome::Refused, 0.2),
        sockets(serde_json::json!({
            "states": {"LISTEN": 1},
            "listeners": [{"local": "127.0.0.1:8090", "recv_q": 0, "send_q": 128}],
        })),
    ];
    let v = evaluate(&inputs(e));
    assert_eq!(v.rules_fired, vec![RuleCode::TcpListenerLoopbackOnly]);
    // Connecting to loopback itself is not that case.
    let e = vec![
        tcp("127.0.0.1:8091", TcpOutcome::Refused, 0.2),
        sockets(serde_json::json!({
            "listeners": [{"local": "127.0.0.1:8091", "recv_q": 0, "send_q": 128}],
        })),
    ];
    assert_eq!(
        evaluate(&inputs(e)).rules_fired,
        vec![RuleCode::TcpRefusedNoListener]
    );
}

#[test]
fn full_accept_queue_without_counter_delta_is_a_warning() {
    let mut e = ok_path();
    e.push(sockets(serde_json::json!({
        "listeners": [{"local": "0.0.0.0:8080", "recv_q": 129, "send_q": 128}],
    })));
    let v = evaluate(&inputs(e));
    assert_eq!(v.status, Status::Degraded);
    assert!(v
        .cause
        .as_deref()
        .unwrap()
        .contains("full accept queue: 0.0.0.0:8080 accept queue 129/128"));
}

#[test]
fn a_core_check_that_errors_without_evidence_is_inconclusive() {
    let e = vec![Event::CheckFinished(CheckFinished {
        check: CheckKind::Tcp.into(),
        status: CheckStatus::Error.into(),
        elapsed_ms: 1.0,
        error: Some("socket: Operation not permitted".into()),
    })];
    let v = evaluate(&inputs(e));
    assert_eq!(v.status, Status::Inconclusive);
    assert_eq!(v.exit_code(), 2);
    assert!(v.fired(RuleCode::CheckFailed));
    assert!(v
        .unchecked
        .iter()
        .any(|u| u.check == "tcp" && u.reason.contains("Operation not permitted")));
}

#[test]
fn no_evidence_about_the_destination_is_not_healthy() {
    let v = evaluate(&inputs(vec![conntrack(10, 262_144)]));
    assert_eq!(v.status, Status::Inconclusive);
    assert_eq!(v.rules_fired, vec![RuleCode::NothingProven]);
}

#[test]
fn an_empty_stream_is_inconclusive_and_says_so() {
    let mut i = Inputs::new(title("netns/x", "10.199.70.2:80"), KubeEvidence::default());
    i.end_stream("the probe container exited with code 1 before writing anything");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Inconclusive);
    let cause = v.cause.unwrap();
    assert!(cause.contains("exited with code 1"), "{cause}");
    assert!(cause.contains("no event at all was received"), "{cause}");
}

#[test]
fn a_done_event_cannot_be_undone() {
    let mut i = inputs(ok_path());
    i.end_stream("log stream closed");
    assert_eq!(i.stream_end, StreamEnd::Done);
    assert_eq!(evaluate(&i).status, Status::Healthy);
}

#[test]
fn the_pcap_file_and_its_packet_count_are_mentioned() {
    let mut i = inputs(ok_path());
    i.pcap = Some(PcapInfo {
        path: "trace.pcap".into(),
        packets: 42,
    });
    let v = evaluate(&i);
    assert!(v
        .notes
        .iter()
        .any(|n| n == "capture written to trace.pcap (42 packets)"));
    let text = TextRenderer::new(false).finish(&i, &v);
    assert!(
        text.contains("note   capture written to trace.pcap (42 packets)"),
        "{text}"
    );
}

#[test]
fn mtu_that_learns_pmtu_from_icmp_is_fine() {
    let mut e = ok_path();
    e.push(mtu("10.199.70.2", 1400, Some(1500), true));
    let v = evaluate(&inputs(e));
    assert_eq!(v.status, Status::Healthy);
    assert!(v
        .proven
        .iter()
        .any(|p| p.contains("1400-byte packets pass")));
}

#[test]
fn inputs_round_trip_through_json() {
    let i = inputs(ok_path());
    let json = serde_json::to_string(&i).unwrap();
    let back: Inputs = serde_json::from_str(&json).unwrap();
    assert_eq!(back, i);
    assert_eq!(evaluate(&back), evaluate(&i));
}

#[test]
fn renderers_by_name() {
    for name in ["text", "markdown", "md", "json"] {
        assert!(by_name(name, false).is_some(), "{name}");
    }
    assert!(by_name("yaml", false).is_none());
}

#[test]
fn an_unresolved_target_is_a_dns_failure_once() {
    let v = evaluate(&inputs(vec![tcp(
        "10.199.70.2:80",
        TcpOutcome::Unresolved,
        0.0,
    )]));
    assert_eq!(v.rules_fired, vec![RuleCode::DnsUnresolved]);
    // With the lookup's own evidence, the NXDOMAIN rule explains it and nothing repeats it.
    let v = evaluate(&inputs(vec![
        lookup(
            "db.example.test",
            &["db.example.test."],
            vec![query(
                "db.example.test.",
                "10.199.96.53",
                response("NXDOMAIN", None),
                1.0,
            )],
            None,
            1,
        ),
        tcp("10.199.70.2:80", TcpOutcome::Unresolved, 0.0),
    ]));
    assert_eq!(v.rules_fired, vec![RuleCode::DnsNxdomain]);
}

// ---- regressions (issue 9) ---------------------------------------------------------------

/// The nameserver list of a lookup was deduplicated without sorting: queries alternating
/// between two nameservers read "SERVFAIL from 10.96.0.10, 10.96.0.11 and 2 more".
#[test]
fn dns_servfail_names_each_nameserver_once() {
    let q = |ns: &str| query("api.example.test.", ns, response("SERVFAIL", None), 2.0);
    let v = evaluate(&inputs(vec![lookup(
        "api.example.test",
        &["api.example.test."],
        vec![
            q("10.96.0.10"),
            q("10.96.0.11"),
            q("10.96.0.10"),
            q("10.96.0.11"),
        ],
        None,
        4,
    )]));
    assert_eq!(v.rules_fired, vec![RuleCode::DnsServfail]);
    let line = &v.findings[0].evidence[0];
    assert_eq!(
        line,
        "api.example.test: SERVFAIL from 10.96.0.10, 10.96.0.11 (4/4 queries), no address"
    );
}

/// A route that leaves by eth0 with the source address of the VLAN interface eth0.100,
/// whose rp_filter is strict. The probe reports it under the sysctl(8) name
/// `net.ipv4.conf.eth0/100.rp_filter`; the rule looked it up as `eth0.100` and never fired.
fn vlan_asymmetric_route(all: &str, vlan: &str) -> Vec<Event> {
    vec![
        links(vec![
            link("eth0", true, Some("10.0.0.1")),
            link("eth0.100", true, Some("10.100.0.1")),
        ]),
        route(
            "10.200.0.5",
            "eth0",
            Some("10.0.0.254"),
            "10.100.0.1",
            Some("REACHABLE"),
        ),
        sysctls(&[
            ("net.ipv4.conf.all.rp_filter", all),
            ("net.ipv4.conf.eth0.rp_filter", "0"),
            ("net.ipv4.conf.eth0/100.rp_filter", vlan),
        ]),
        tcp("10.200.0.5:80", TcpOutcome::Timeout, 1500.0),
    ]
}

#[test]
fn rp_filter_asymmetric_on_vlan_interface_fires() {
    let v = evaluate(&inputs(vlan_asymmetric_route("0", "1")));
    assert_eq!(v.findings[0].rule, RuleCode::RpFilterAsymmetric, "{v:#?}");
    assert_eq!(v.status, Status::Failed);
    let cause = v.cause.as_deref().unwrap();
    assert!(cause.contains("source 10.100.0.1 of eth0.100"), "{cause}");
    assert!(
        cause.contains("net.ipv4.conf.eth0/100.rp_filter=1 in effect"),
        "{cause}"
    );
    assert!(
        v.next[0].starts_with("sysctl -w net.ipv4.conf.eth0/100.rp_filter=2 "),
        "{:?}",
        v.next
    );
    // Loose rp_filter on the VLAN interface lets the replies in.
    let v = evaluate(&inputs(vlan_asymmetric_route("0", "2")));
    assert!(
        !v.fired(RuleCode::RpFilterAsymmetric),
        "{:?}",
        v.rules_fired
    );
}

/// The recorded scenario's evidence line showed `vdr-c1=?` while the cause stated a value:
/// the line and the cause now show the same values, and say which one was not reported.
#[test]
fn rp_filter_evidence_shows_the_values_the_cause_uses() {
    let rp_line = |v: &netdebug_verdict::Verdict| -> String {
        v.evidence
            .iter()
            .find(|l| {
                l.rule == Some(RuleCode::RpFilterAsymmetric) && l.text.starts_with("rp_filter:")
            })
            .map(|l| l.text.clone())
            .unwrap_or_else(|| panic!("no rp_filter line: {:#?}", v.evidence))
    };
    // Both values reported.
    let v = evaluate(&inputs(vlan_asymmetric_route("1", "0")));
    let line = rp_line(&v);
    assert_eq!(
        line,
        "rp_filter: all=1, eth0.100=0: in effect 1 (strict); source 10.100.0.1 is on eth0.100"
    );
    assert!(v
        .cause
        .as_deref()
        .unwrap()
        .contains("the larger of all=1, eth0.100=0"));
    // Evidence of a probe that read rp_filter only of the interfaces routes leave by (no
    // value for the source interface): the missing value is said to be missing.
    let mut events = vlan_asymmetric_route("1", "0");
    events[2] = sysctls(&[
        ("net.ipv4.conf.all.rp_filter", "1"),
        ("net.ipv4.conf.eth0.rp_filter", "0"),
    ]);
    let v = evaluate(&inputs(events));
    let line = rp_line(&v);
    assert!(!line.contains('?'), "{line}");
    assert!(
        line.starts_with("rp_filter: all=1, eth0.100 not reported (taken as 0): in effect 1"),
        "{line}"
    );
    assert!(
        v.cause
            .as_deref()
            .unwrap()
            .contains("the larger of all=1, eth0.100 not reported (taken as 0)"),
        "{:?}",
        v.cause
    );
    // Recorded by the probe, which reads rp_filter of every interface: both values shown.
    let i = common::load(
        "rp_filter",
        title("netns/vdr-client", "10.199.73.2:8080"),
        KubeEvidence::default(),
    );
    let line = rp_line(&evaluate(&i));
    assert!(
        line.starts_with("rp_filter: all=1, vdr-c1=1: in effect 1 (strict)"),
        "{line}"
    );
}

fn local_title(source: &str, origin: Origin) -> Title {
    Title {
        source: source.into(),
        destination: Some("10.199.70.2:8080".into()),
        namespace: None,
        origin: Some(origin),
        asked: None,
    }
}

/// No next step of a local run may name Kubernetes (`kubectl netdebug`, kubectl, kube-*).
#[track_caller]
fn assert_no_kubernetes(next: &[String]) {
    for n in next {
        assert!(
            !n.contains("kubectl ") && !n.contains("kube-") && !n.contains("pod/"),
            "{n}"
        );
    }
}

/// `local --pid 4242` was suggested as `kubectl netdebug pid/4242` (from the title's text).
#[test]
fn local_pid_next_step_keeps_pid() {
    let mut i = inputs(ok_path());
    i.title = local_title("pid/4242", Origin::LocalPid { pid: 4242 });
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Healthy);
    assert_eq!(
        v.next,
        vec![
            "kubectl-netdebug local --pid 4242 --to 10.199.70.2:8080 --capture -w trace.pcap   \
             # if the app still fails"
        ]
    );
    assert_no_kubernetes(&v.next);
    // Without a destination: the socket table, from the same process's namespace.
    i.title.destination = None;
    let v = evaluate(&i);
    assert!(
        v.next[0].starts_with("kubectl-netdebug local --pid 4242 --sockets"),
        "{:?}",
        v.next
    );
}

/// `local --netns blue` was suggested as plain `kubectl-netdebug local` (`--netns` dropped).
#[test]
fn local_netns_next_step_keeps_netns() {
    let mut i = inputs(ok_path());
    i.title = local_title(
        "netns/blue",
        Origin::LocalNetns {
            name: "blue".into(),
        },
    );
    let v = evaluate(&i);
    assert_eq!(
        v.next,
        vec![
            "kubectl-netdebug local --netns blue --to 10.199.70.2:8080 --capture -w trace.pcap   \
             # if the app still fails"
        ]
    );
    assert_no_kubernetes(&v.next);
}

/// Failures seen in a local run suggest host commands only.
#[test]
fn local_failures_suggest_no_kubernetes_commands() {
    let origin = Origin::LocalNetns {
        name: "blue".into(),
    };
    for events in [
        vec![tcp("10.199.70.2:8080", TcpOutcome::Timeout, 1500.0)],
        vec![tcp("10.199.70.2:8080", TcpOutcome::Refused, 0.2)],
        vec![
            tcp("10.199.70.2:8080", TcpOutcome::Ok, 0.5),
            conntrack(262_144, 262_144),
        ],
        vec![lookup(
            "web.other",
            &["web.other.shop.svc.cluster.local.", "web.other."],
            vec![
                query(
                    "web.other.shop.svc.cluster.local.",
                    "10.96.0.10",
                    response("NXDOMAIN", None),
                    1.0,
                ),
                query("web.other.", "10.96.0.10", response("NXDOMAIN", None), 1.0),
            ],
            None,
            2,
        )],
        vec![lookup(
            "api.example.test",
            &["api.example.test."],
            vec![query(
                "api.example.test.",
                "10.96.0.10",
                response("SERVFAIL", None),
                1.0,
            )],
            None,
            1,
        )],
    ] {
        let mut i = inputs(events);
        i.title = local_title("netns/blue", origin.clone());
        let v = evaluate(&i);
        assert_ne!(v.status, Status::Healthy, "{v:#?}");
        let all_next: Vec<String> = v.findings.iter().flat_map(|f| f.next.clone()).collect();
        assert_no_kubernetes(&all_next);
    }
}

/// The role the probe echoes decides which connects are the ClusterIP and which are
/// endpoints, also for an address the Kubernetes evidence does not list (a second ClusterIP
/// of a dual-stack Service, say).
#[test]
fn roles_echoed_by_the_probe_decide_the_service_rules() {
    let svc = common::service(
        "web",
        "shop",
        "10.96.0.10",
        80,
        "8080",
        vec![
            common::endpoint("10.244.0.5", 8080, true, "web-0"),
            common::endpoint("10.244.0.6", 8080, true, "web-1"),
        ],
    );
    let kube = common::kube_service(common::source("client", "shop", "10.244.0.9"), svc, vec![]);
    let events = vec![
        tcp_as(
            "10.96.0.99:80",
            TargetRole::ClusterIp,
            TcpOutcome::Timeout,
            1500.0,
        ),
        tcp_as("10.244.0.5:8080", TargetRole::Endpoint, TcpOutcome::Ok, 0.4),
        tcp_as("10.244.0.6:8080", TargetRole::Endpoint, TcpOutcome::Ok, 0.5),
    ];
    let v = evaluate(&inputs_from_minor(1, events, kube.clone()));
    assert_eq!(v.rules_fired, vec![RuleCode::ServiceDataplane], "{v:#?}");
    assert!(v
        .cause
        .as_deref()
        .unwrap()
        .starts_with("ClusterIP 10.96.0.99:80 timed out"));
    // An old probe sends no roles (read as direct): they are worked out from the Service's
    // addresses, where 10.96.0.99 is not listed, so it is a plain timeout.
    let old = vec![
        tcp("10.96.0.99:80", TcpOutcome::Timeout, 1500.0),
        tcp("10.244.0.5:8080", TcpOutcome::Ok, 0.4),
        tcp("10.244.0.6:8080", TcpOutcome::Ok, 0.5),
    ];
    let v = evaluate(&inputs_from_minor(0, old, kube));
    assert_eq!(v.rules_fired, vec![RuleCode::TcpTimeout], "{v:#?}");
}

/// A newer probe's outcome this version does not know is kept, shown by its name, and does
/// not pass for a success.
#[test]
fn an_unknown_tcp_outcome_is_shown_by_its_name() {
    let e = evidence_json(serde_json::json!({
        "kind": "tcp", "target": "10.199.70.2:8080", "address": "10.199.70.2:8080",
        "outcome": "reset_by_middlebox", "latency_ms": 3.0, "errno": 104,
    }));
    let line = TextRenderer::new(false).progress(&e).unwrap();
    assert!(
        line.starts_with("  FAIL  TCP       10.199.70.2:8080 reset_by_middlebox"),
        "{line}"
    );
    let v = evaluate(&inputs(vec![e]));
    assert_eq!(v.rules_fired, vec![RuleCode::TcpError]);
    assert!(
        v.cause
            .as_deref()
            .unwrap()
            .contains("reset_by_middlebox errno 104"),
        "{:?}",
        v.cause
    );
}

/// Every code the client can report changes the verdict: none is emitted for nothing.
#[test]
fn every_kube_finding_code_is_read_by_a_rule() {
    use netdebug_verdict::kube::{DestinationInfo, KubeFindingCode::*, PodDestination, Severity};
    let codes = [
        ServiceWithoutSelector,
        SelectorMatchesNoPod,
        NoEndpoints,
        EndpointsNotReady,
        TargetPortNotExposed,
        HeadlessService,
        ExternalNameService,
        NetworkPolicyDenies,
        NetworkPolicyAdmits,
        ServiceHealthy,
        DestinationPodNotReady,
        NetworkPolicyUndetermined,
        NetworkPolicyDeniesDns,
    ];
    // A new code must be added above (this match stops compiling otherwise).
    for c in codes {
        match c {
            ServiceWithoutSelector
            | SelectorMatchesNoPod
            | NoEndpoints
            | EndpointsNotReady
            | TargetPortNotExposed
            | HeadlessService
            | ExternalNameService
            | NetworkPolicyDenies
            | NetworkPolicyAdmits
            | ServiceHealthy
            | DestinationPodNotReady
            | NetworkPolicyUndetermined
            | NetworkPolicyDeniesDns => {}
        }
    }
    for code in codes {
        let svc = common::service(
            "web",
            "shop",
            "10.199.96.10",
            80,
            "8080",
            vec![common::endpoint("10.199.70.2", 8080, true, "web-0")],
        );
        let mut kube =
            common::kube_service(common::source("client", "shop", "10.199.70.1"), svc, vec![]);
        if code == DestinationPodNotReady {
            kube.destination = Some(DestinationInfo::Pod(PodDestination {
                namespace: "shop".into(),
                name: "web-0".into(),
                ip: Some("10.199.70.2".into()),
                port: Some(8080),
                ready: true,
            }));
        }
        let without = evaluate(&inputs_with(ok_path(), kube.clone()));
        kube.findings.push(common::kube_finding(
            code,
            Severity::Warning,
            "svc/web",
            "what the client saw",
            &[],
        ));
        let with = evaluate(&inputs_with(ok_path(), kube));
        assert!(
            with.evidence != without.evidence || with.findings != without.findings,
            "{code:?} changes nothing"
        );
    }
}

/// A Kubernetes-only fact keeps the severity the client gave it (judged once): a targetPort
/// no container declares is a warning when something may listen there undeclared.
#[test]
fn kube_finding_severity_is_carried_not_judged_again() {
    use netdebug_verdict::kube::{KubeFindingCode, Severity};
    let svc = common::service(
        "web",
        "shop",
        "10.199.96.10",
        80,
        "8080",
        vec![common::endpoint("10.199.70.2", 8080, true, "web-0")],
    );
    for (severity, status) in [
        (Severity::Warning, Status::Degraded),
        (Severity::Failure, Status::Failed),
    ] {
        let kube = common::kube_service(
            common::source("client", "shop", "10.199.70.1"),
            svc.clone(),
            vec![common::kube_finding(
                KubeFindingCode::TargetPortNotExposed,
                severity,
                "svc/web",
                "svc/web port 80 targets port 8080/TCP, which no container of its pods declares",
                &[],
            )],
        );
        let v = evaluate(&inputs_with(ok_path(), kube));
        assert_eq!(v.status, status);
        assert_eq!(v.findings[0].severity, severity);
    }
}
