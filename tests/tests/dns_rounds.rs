//! Repeated application-style lookups (plan `rounds` with DNS names) against dnsmasq in a
//! namespace, with an iptables rule that drops a known share of the queries, its packet
//! counter and tcpdump as oracles. Needs root:
//! `cargo build -p probe && cargo test -p netdebug-scenarios --test dns_rounds`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use netdebug_scenarios::pair::SRV;
use netdebug_scenarios::ClientServer as Lab;
use protocol::{
    DnsLookupEvidence, DnsLookupOutcome, DnsOutcome, DnsRoundsEvidence, DnsSendMode, Open,
    RecordType,
};
use serde_json::json;

/// dnsmasq that knows web.corp.test (A and AAAA).
fn lab_with_dnsmasq(tag: &str) -> Lab {
    let lab = Lab::new(tag);
    let srv: IpAddr = SRV.parse().unwrap();
    lab.srv.spawn_dnsmasq_with(
        srv,
        &[
            "--local=/corp.test/",
            "--host-record=web.corp.test,10.199.60.5,fd00:199::5",
        ],
    );
    lab
}

/// The probe's lookups of `name`, `repeat` rounds at `rate`, with this resolv.conf.
fn rounds(
    lab: &Lab,
    resolv_conf: &str,
    name: &str,
    repeat: u32,
    rate: u32,
) -> (DnsLookupEvidence, DnsRoundsEvidence) {
    let path = lab.write("resolv.conf", resolv_conf);
    let run = lab.probe(json!({
        "v": 1, "checks": ["dns"], "deadline_ms": 40000,
        "dns": {"names": [name], "resolv_conf": path.to_str().unwrap()},
        "rounds": {"repeat": repeat, "rate": rate},
    }));
    let first = run.one::<DnsLookupEvidence>().clone();
    let rounds = run.one::<DnsRoundsEvidence>().clone();
    (first, rounds)
}

fn lost(r: &DnsRoundsEvidence, t: RecordType) -> u64 {
    r.lost.get(&Open::Known(t)).copied().unwrap_or(0)
}

#[test]
fn every_4th_query_dropped_shows_as_stalls_with_the_lost_type() {
    let lab = lab_with_dnsmasq("dnr4");
    lab.srv.drop_every_nth("-p udp --dport 53", 4);
    let (first, r) = rounds(
        &lab,
        &format!("nameserver {SRV}\noptions timeout:1 attempts:2\n"),
        "web.corp.test.",
        12,
        20,
    );
    assert_eq!(r.mode, DnsSendMode::Parallel, "glibc's default");
    assert_eq!((r.timeout_ms, r.attempts), (1000, 2));
    // Every lookup ends answered: the lost type is asked again.
    assert_eq!(r.lookups, 12, "{r:#?}");
    assert_eq!(r.count(DnsLookupOutcome::Answered), 12, "{r:#?}");
    // Oracle: the rule's own counter. Every query it dropped is a reply the probe lost: in
    // the first (detailed) lookup a query that timed out, in the rounds a lost reply.
    let dropped = lab.srv.input_rule_packets(1);
    let first_timeouts = first
        .queries
        .iter()
        .filter(|q| q.outcome == DnsOutcome::Timeout)
        .count() as u64;
    let lost_in_rounds = lost(&r, RecordType::A) + lost(&r, RecordType::Aaaa);
    assert!(
        dropped >= 6,
        "12 lookups send at least 24 queries: {dropped}"
    );
    assert_eq!(
        first_timeouts + lost_in_rounds,
        dropped,
        "{r:#?}\n{first:#?}"
    );
    // Each lookup that lost a reply waited the resolver's whole timeout: a stall.
    let with_loss = r.samples.iter().filter(|s| !s.lost.is_empty()).count() as u64;
    assert_eq!(r.stalls, with_loss, "{r:#?}");
    assert!(r.stalls > 0);
    for s in &r.stall_samples {
        assert!(s.latency_ms >= 1000.0, "{s:?}");
        assert!(!s.lost.is_empty(), "{s:?}");
    }
    // The replies received: NOERROR for every answered question.
    assert_eq!(
        r.rcodes.get(&Open::parse("NOERROR")).copied(),
        Some(r.queries - lost_in_rounds)
    );
}

#[test]
fn parallel_mode_sends_a_and_aaaa_from_one_source_port() {
    let lab = lab_with_dnsmasq("dnrpar");
    let capture = lab.srv.start_tcpdump("s0", "udp dst port 53");
    let (_, r) = rounds(
        &lab,
        &format!("nameserver {SRV}\n"),
        "web.corp.test.",
        5,
        50,
    );
    let captured = capture.stop();
    assert_eq!(r.count(DnsLookupOutcome::Answered), 5, "{r:#?}");
    assert_eq!(r.stalls, 0);
    // tcpdump: `IP 10.199.1.2.PORT > 10.199.1.1.53: ID+ A? web...`; group types by port.
    let mut by_port: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for line in captured.packets() {
        let port = line
            .split_whitespace()
            .nth(2)
            .and_then(|src| src.rsplit('.').next())
            .unwrap_or_default()
            .to_string();
        let qtype = if line.contains(" AAAA? ") {
            "AAAA"
        } else {
            "A"
        };
        by_port.entry(port).or_default().push(qtype);
    }
    // The first (detailed) lookup uses a socket per type; every round's lookup one for both.
    let pairs = by_port.values().filter(|t| t.len() == 2).count();
    assert_eq!(pairs, 5, "{by_port:#?}\n{}", captured.text);
    for types in by_port.values().filter(|t| t.len() == 2) {
        let mut t = types.clone();
        t.sort();
        assert_eq!(t, ["A", "AAAA"]);
    }
}

#[test]
fn use_vc_lookups_go_over_tcp_and_survive_a_udp_block() {
    let lab = lab_with_dnsmasq("dnrvc");
    lab.srv
        .iptables(&["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP"]);
    let (_, r) = rounds(
        &lab,
        &format!("nameserver {SRV}\noptions use-vc timeout:1 attempts:1\n"),
        "web.corp.test.",
        4,
        20,
    );
    assert_eq!(r.mode, DnsSendMode::UseVc);
    assert_eq!(r.count(DnsLookupOutcome::Answered), 4, "{r:#?}");
    assert_eq!(r.stalls, 0, "{r:#?}");
    assert!(r.lost.is_empty(), "{r:#?}");
    assert_eq!(lab.srv.input_rule_packets(1), 0, "no UDP query was sent");
}

#[test]
fn a_silent_nameserver_is_a_timeout_every_time() {
    let lab = lab_with_dnsmasq("dnrto");
    lab.srv
        .iptables(&["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP"]);
    let (_, r) = rounds(
        &lab,
        &format!("nameserver {SRV}\noptions timeout:1 attempts:1 single-request-reopen\n"),
        "web.corp.test.",
        3,
        20,
    );
    assert_eq!(r.mode, DnsSendMode::SingleRequestReopen);
    assert_eq!(r.count(DnsLookupOutcome::Timeout), 3, "{r:#?}");
    assert_eq!(r.stalls, 3);
    // Both types were lost in every lookup, and nothing else was sent (no reply, no retry).
    assert_eq!(
        (lost(&r, RecordType::A), lost(&r, RecordType::Aaaa)),
        (3, 3)
    );
    assert_eq!(r.queries, 6);
    assert!(r.latency_ms.is_none(), "no lookup answered");
}
