//! Edge cases of single rules and of the engine, on evidence constructed in code (one fact
//! at a time): thresholds, the tool's own failures, and the public API's small promises.
//! The catalog itself is tested on recorded evidence in `catalog.rs`.

mod common;

use common::build::*;
use common::title;
use netdebug_verdict::kube::KubeEvidence;
use netdebug_verdict::render::by_name;
use netdebug_verdict::{
    evaluate, Inputs, PcapInfo, Renderer, RuleCode, Status, StreamEnd, TextRenderer,
};
use protocol::{CheckFinished, CheckKind, CheckStatus, Event, TcpOutcome};

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

/// Regression: the nameservers of a lookup were deduplicated with `dedup` on an unsorted
/// list, so queries alternating between two servers read "SERVFAIL from 10.96.0.10,
/// 10.96.0.11 and 2 more" although only two servers were asked.
#[test]
fn dns_servfail_names_each_nameserver_once() {
    let servfail = || response("SERVFAIL", None);
    let cand = "api.example.com.";
    let events = vec![
        dns_config(&["10.96.0.10", "10.96.0.11"], &[], 1),
        lookup(
            "api.example.com",
            &[cand],
            vec![
                query(cand, "10.96.0.10", servfail(), 1.0),
                query(cand, "10.96.0.11", servfail(), 1.0),
                query(cand, "10.96.0.10", servfail(), 1.0),
                query(cand, "10.96.0.11", servfail(), 1.0),
            ],
            None,
            4,
        ),
    ];
    let v = evaluate(&inputs(events));
    assert!(v.fired(RuleCode::DnsServfail), "{:?}", v.rules_fired);
    let line = v
        .evidence
        .iter()
        .find(|l| l.text.contains("SERVFAIL from"))
        .expect("the SERVFAIL line");
    assert!(
        line.text
            .contains("SERVFAIL from 10.96.0.10, 10.96.0.11 (4/4 queries)"),
        "{}",
        line.text
    );
    assert!(!line.text.contains("more"), "{}", line.text);
}

fn next_steps_from(vantage: netdebug_verdict::Vantage, destination: Option<&str>) -> Vec<String> {
    let mut i = inputs(ok_path());
    i.title.destination = destination.map(str::to_string);
    i.title.source = "local".into();
    i.title.vantage = vantage;
    evaluate(&i).next
}

/// Regression: the next step in local mode was derived from the title's prefix and suggested
/// `kubectl netdebug pid/4242 ...` for `local --pid 4242`.
#[test]
fn local_pid_next_step_keeps_pid() {
    let next = next_steps_from(
        netdebug_verdict::Vantage::Pid { pid: 4242 },
        Some("10.199.70.2:8080"),
    );
    assert_eq!(
        next,
        ["kubectl-netdebug local --pid 4242 --to 10.199.70.2:8080 --capture -w trace.pcap   # if the app still fails"]
    );
}

/// Regression: the same next step dropped `--netns`.
#[test]
fn local_netns_next_step_keeps_netns() {
    let next = next_steps_from(
        netdebug_verdict::Vantage::Netns {
            name: "blue".into(),
        },
        None,
    );
    assert_eq!(
        next,
        ["kubectl-netdebug local --netns blue --sockets   # socket-table health of the namespace"]
    );
    let host = next_steps_from(netdebug_verdict::Vantage::Host, Some("10.199.70.2:8080"));
    assert!(
        host[0].starts_with("kubectl-netdebug local --to "),
        "{host:?}"
    );
    assert!(!host[0].contains("kubectl netdebug"), "{host:?}");
}
