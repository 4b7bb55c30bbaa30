//! Repeated connect rounds (plan `rounds`, `--repeat`/`--for`/`--rate`) against real servers in
//! namespaces, with iptables rules that fail a known share of the connections and the rules'
//! own packet counters as the oracle. Needs root:
//! `cargo build -p probe && cargo test -p netdebug-scenarios --test rounds`.

use std::collections::BTreeMap;

use netdebug_scenarios::link::Link;
use netdebug_scenarios::netns::Netns;
use netdebug_scenarios::pair::SRV;
use netdebug_scenarios::ClientServer as Lab;
use protocol::{Evidence, TcpEvidence, TcpOutcome, TcpRoundsEvidence};
use serde_json::json;

/// The second server namespace's address (its own veth to the client, its own subnet).
const SRV2: &str = "10.199.2.1";
const CLI2: &str = "10.199.2.2";

/// Client with two server namespaces: `lab.srv` at SRV (clean) and the returned one at SRV2.
fn two_servers(tag: &str) -> (Lab, Netns) {
    let lab = Lab::new(tag);
    let srv2 = Netns::new(&format!("{tag}t"));
    Link::veth_pair(
        &lab.cli,
        "c1",
        &format!("{CLI2}/24"),
        &srv2,
        "s1",
        &format!("{SRV2}/24"),
    );
    (lab, srv2)
}

fn rounds_by_address(evidence: Vec<&TcpRoundsEvidence>) -> BTreeMap<String, TcpRoundsEvidence> {
    evidence
        .into_iter()
        .map(|r| (r.address.ip().to_string(), r.clone()))
        .collect()
}

fn rounds_plan(targets: &[(&str, u16)], rounds: serde_json::Value) -> serde_json::Value {
    let targets: Vec<_> = targets
        .iter()
        .map(|(host, port)| json!({"label": format!("{host}:{port}"), "host": host, "port": port}))
        .collect();
    // 400 ms: shorter than the first SYN retransmission (1 s), so each attempt sends exactly
    // one SYN and the rule's counter equals the attempts it failed.
    json!({"v": 1, "checks": ["tcp"], "connect_timeout_ms": 400, "deadline_ms": 20000,
           "targets": targets, "rounds": rounds})
}

#[test]
fn every_4th_syn_dropped_gives_exactly_a_quarter_timeouts_on_that_server_only() {
    let (lab, srv2) = two_servers("rnd4");
    let _clean = lab.listen(8080);
    let _lossy = srv2.spawn_tcp_server(format!("{SRV2}:8080").parse().unwrap());
    srv2.drop_every_nth("-p tcp --syn --dport 8080", 4);

    let run = lab.probe(rounds_plan(
        &[(SRV, 8080), (SRV2, 8080)],
        json!({"repeat": 40, "rate": 200}),
    ));
    let rounds = rounds_by_address(run.evidence::<TcpRoundsEvidence>());

    let lossy = &rounds[SRV2];
    let dropped = srv2.input_rule_packets(1);
    assert_eq!(
        dropped, 10,
        "the rule's own counter: 40 SYNs, every 4th dropped"
    );
    assert_eq!(lossy.attempts, 40, "{lossy:?}");
    assert_eq!(lossy.count(TcpOutcome::Timeout), dropped, "{lossy:?}");
    assert_eq!(lossy.count(TcpOutcome::Ok), 30, "{lossy:?}");
    // The failures are every 4th round: a constant gap.
    let failed: Vec<u32> = lossy.failures.iter().map(|f| f.round).collect();
    assert_eq!(failed.len(), 10, "{failed:?}");
    assert!(failed.windows(2).all(|w| w[1] - w[0] == 4), "{failed:?}");
    assert!(lossy
        .latency_ms
        .is_some_and(|l| l.p50 < 400.0 && l.max <= l.p99.max(l.max)));

    let clean = &rounds[SRV];
    assert_eq!(
        (clean.attempts, clean.count(TcpOutcome::Ok)),
        (40, 40),
        "{clean:?}"
    );
    assert!(clean.failures.is_empty());
    assert!(!clean.stopped_early && !lossy.stopped_early);

    // Every attempt was a fresh socket: as many distinct source ports as samples.
    let mut ports: Vec<u16> = clean.samples.iter().filter_map(|s| s.local_port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 40, "a new source port per attempt");

    // The first round is also each address's ordinary tcp evidence (one per address).
    let single: Vec<&TcpEvidence> = run.evidence::<TcpEvidence>();
    assert_eq!(single.len(), 2, "{single:?}");
}

#[test]
fn samples_are_bounded_and_the_counts_stay_exact() {
    let lab = Lab::new("rndcap");
    let _srv = lab.listen(8080);
    let run = lab.probe(rounds_plan(
        &[(SRV, 8080)],
        json!({"repeat": 60, "rate": 300, "sample_cap": 10}),
    ));
    let r = &run.evidence::<TcpRoundsEvidence>()[0];
    assert_eq!(r.attempts, 60);
    assert_eq!(r.count(TcpOutcome::Ok), 60);
    assert_eq!((r.samples.len(), r.samples_dropped), (10, 50));
    // Kept samples are the first ones, in the order they started.
    let rounds: Vec<u32> = r.samples.iter().map(|s| s.round).collect();
    assert_eq!(rounds, (0..10).collect::<Vec<u32>>());
    // The server saw every connection: each one it accepted and holds is closed by the
    // probe (so it sits in CLOSE-WAIT on the server, which never reads), counted by ss.
    let states = lab.srv.ss_tcp_state_counts();
    let held: u64 = states
        .iter()
        .filter(|(state, _)| state.as_str() != "LISTEN")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(held, 60, "connections on the server: {states:?}");
    // The live display's events: the last one says every attempt is done.
    let last = run
        .events
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            protocol::Event::Progress(p) => Some(p),
            _ => None,
        })
        .expect("progress events while the rounds run");
    assert_eq!((last.done, last.total, last.failed), (60, Some(60), 0));
}

#[test]
fn rounds_end_before_the_deadline_and_no_attempt_is_cut_into_a_timeout() {
    let lab = Lab::new("rnddl");
    let _srv = lab.listen(8080);
    // 1000 rounds at 100/s would take 10 s; the deadline is 2 s.
    let mut plan = rounds_plan(&[(SRV, 8080)], json!({"repeat": 1000, "rate": 100}));
    plan["deadline_ms"] = json!(2000);
    let run = lab.probe(plan);
    let r = &run.evidence::<TcpRoundsEvidence>()[0];
    assert!(r.stopped_early, "{r:?}");
    assert!(r.attempts > 0 && r.attempts < 1000, "{}", r.attempts);
    assert_eq!(r.count(TcpOutcome::Ok), r.attempts, "{r:?}");
}

#[test]
fn for_duration_stops_starting_rounds_after_it() {
    let lab = Lab::new("rndfor");
    let _srv = lab.listen(8080);
    let run = lab.probe(rounds_plan(
        &[(SRV, 8080)],
        json!({"repeat": 100000, "rate": 50, "for_ms": 500}),
    ));
    let r = &run.evidence::<TcpRoundsEvidence>()[0];
    assert!(
        !r.stopped_early,
        "the duration ended the rounds, not the deadline"
    );
    assert!(r.last_ms < 500.0 + 100.0, "{r:?}");
    assert!(r.attempts >= 2 && r.attempts < 100, "{}", r.attempts);
    let only_tcp = run
        .all_evidence()
        .all(|e| matches!(e, Evidence::Tcp(_) | Evidence::TcpRounds(_)));
    assert!(only_tcp);
}

/// `nstat -asz -j` in the namespace: absolute values, history untouched.
fn nstat(ns: &Netns, counter: &str) -> u64 {
    let out = ns.sh("nstat -asz -j");
    let v: serde_json::Value = serde_json::from_str(&out).expect("nstat json");
    v["kernel"][counter].as_u64().unwrap_or(0)
}

/// A flood of rounds against a server with a tiny accept queue that never accepts: once the
/// queue holds backlog + 1 connections, the kernel drops further SYNs and counts them as
/// listen overflows (nstat in the server's namespace is the oracle). With a connect timeout
/// under the SYN retransmission, each dropped SYN is one timed-out attempt.
#[test]
fn a_full_accept_queue_turns_the_rest_of_the_rounds_into_timeouts() {
    let lab = Lab::new("rndq");
    let _server = lab.srv.spawn_tcp_server_with(
        format!("{SRV}:8080").parse().unwrap(),
        netdebug_scenarios::TcpServerOptions {
            backlog: 1,
            accept: netdebug_scenarios::Accept::Never,
        },
    );
    let before = nstat(&lab.srv, "TcpExtListenOverflows");
    let run = lab.probe(rounds_plan(
        &[(SRV, 8080)],
        json!({"repeat": 20, "rate": 200}),
    ));
    let overflows = nstat(&lab.srv, "TcpExtListenOverflows") - before;
    let r = &run.evidence::<TcpRoundsEvidence>()[0];
    let (ok, timeouts) = (r.count(TcpOutcome::Ok), r.count(TcpOutcome::Timeout));
    assert_eq!(ok + timeouts, 20, "{r:?}");
    // The queue takes backlog + 1 = 2 connections; everything after is dropped.
    assert_eq!(ok, 2, "{r:?}");
    // Every timed-out attempt's SYN was an overflow (the kernel may count a late final ACK
    // too, so at least as many).
    assert!(
        timeouts > 0 && overflows >= timeouts,
        "overflows {overflows}, {r:?}"
    );
    // The failures are the tail of the run: every attempt after the queue filled.
    let first_failed = r.failures.first().map(|f| f.round).unwrap_or(0);
    assert_eq!(first_failed, 2, "{r:?}");
}

/// A ClusterIP made the way kube-proxy makes it (DNAT in the nat table, alternating between
/// two endpoints with the statistic match) in the probe's own namespace, as on a node: each
/// attempt's conntrack entry says which endpoint it went to, and the failures of the lossy
/// endpoint are attributed to it. Oracles: the DNAT rules' and the drop rule's counters.
#[test]
fn clusterip_attempts_are_attributed_to_the_endpoint_conntrack_shows() {
    let (lab, srv2) = two_servers("rndct");
    let _a = lab.listen(8080);
    let _b = srv2.spawn_tcp_server(format!("{SRV2}:8080").parse().unwrap());
    srv2.drop_every_nth("-p tcp --syn --dport 8080", 4);
    lab.cli.add_route("10.199.96.0/24 dev c0");
    // The source address is picked before the DNAT (on c0's subnet): the second endpoint
    // answers it through the client's other veth, which the client accepts.
    srv2.add_route("10.199.1.0/24 via 10.199.2.2");
    for key in ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.c1.rp_filter"] {
        lab.cli.set_sysctl(key, "0");
    }
    for rule in [
        "-A OUTPUT -d 10.199.96.10 -p tcp --dport 80 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.199.1.1:8080",
        "-A OUTPUT -d 10.199.96.10 -p tcp --dport 80 -j DNAT --to-destination 10.199.2.1:8080",
    ] {
        let mut args = vec!["-t", "nat"];
        args.extend(rule.split_whitespace());
        lab.cli.iptables(&args);
    }
    let plan = json!({"v": 1, "checks": ["tcp"], "connect_timeout_ms": 400, "deadline_ms": 20000,
        "targets": [{"label": "svc/web:80", "host": "10.199.96.10", "port": 80, "role": "cluster_ip"}],
        "rounds": {"repeat": 40, "rate": 200}});
    let run = lab.probe(plan);
    let r = &run.evidence::<TcpRoundsEvidence>()[0];
    assert_eq!(r.unattributed, None, "{r:?}");
    let chosen: BTreeMap<String, (u64, u64)> = r
        .chosen
        .iter()
        .map(|c| (c.endpoint.to_string(), (c.attempts, c.failed)))
        .collect();
    let dropped = srv2.input_rule_packets(1);
    assert_eq!(
        chosen,
        BTreeMap::from([
            ("10.199.1.1:8080".to_string(), (20, 0)),
            ("10.199.2.1:8080".to_string(), (20, dropped)),
        ]),
        "{r:?}"
    );
    assert_eq!(r.count(TcpOutcome::Timeout), dropped);
    assert!(dropped >= 4, "every 4th of 20 SYNs: {dropped}");
    // Every failure sample names the lossy endpoint.
    assert!(r
        .failures
        .iter()
        .all(|f| f.endpoint.map(|e| e.to_string()) == Some("10.199.2.1:8080".into())));
}

/// Inside a pod the ClusterIP is translated on the node, not in the pod's namespace: the
/// probe finds no translated entry and says so rather than guessing an endpoint.
#[test]
fn clusterip_translated_elsewhere_is_said_not_guessed() {
    let lab = Lab::new("rndnt");
    let _srv = lab.listen(8080);
    let plan = json!({"v": 1, "checks": ["tcp"], "connect_timeout_ms": 400, "deadline_ms": 20000,
        "targets": [{"label": "svc/web:8080", "host": SRV, "port": 8080, "role": "cluster_ip"}],
        "rounds": {"repeat": 5, "rate": 100}});
    let r = lab.probe(plan).evidence::<TcpRoundsEvidence>()[0].clone();
    assert!(r.chosen.is_empty(), "{r:?}");
    assert_eq!(
        r.unattributed.as_deref(),
        Some(
            "5 of 5 attempts had no translated conntrack entry in this network namespace: the \
             ClusterIP is translated elsewhere (kube-proxy's DNAT is on the node)"
        )
    );
}
