//! The rules over repeated connects (plan `rounds`: `--repeat`, `--for`).
//!
//! CONSTRUCTED EVIDENCE: apart from the first test (recorded by `tests/record-fixtures.sh`,
//! scenario `rounds_bad_endpoint`), the `tcp_rounds` values here are built in code, one
//! pattern at a time (failures at chosen rounds), beside the `tcp` evidence of each address's
//! first attempt as the probe sends it. Recorded netns fixtures for the other patterns are to
//! come from the probe side.

mod common;

use common::build::{inputs_from_minor, tcp_as};
use common::*;
use netdebug_verdict::kube::{EndpointInfo, KubeEvidence};
use netdebug_verdict::{
    evaluate, Inputs, Layer, Mark, MarkdownRenderer, Origin, Renderer, RuleCode, Status,
    TextRenderer, Verdict,
};
use protocol::{
    ConnectSample, Event, Evidence, LatencySummary, Open, TargetRole, TcpOutcome, TcpRoundsEvidence,
};

// ---- constructed evidence -----------------------------------------------------------------

/// One round every 50 ms.
const ROUND_MS: f64 = 50.0;

/// CONSTRUCTED: `attempts` connects to `addr`, one per round from round 0; those at
/// `fail_at` ended with `outcome`, the others connected in `ok_ms`.
fn rounds(
    addr: &str,
    role: TargetRole,
    attempts: u32,
    fail_at: &[u32],
    outcome: TcpOutcome,
    ok_ms: f64,
) -> TcpRoundsEvidence {
    let samples: Vec<ConnectSample> = (0..attempts)
        .map(|round| {
            let failed = fail_at.contains(&round);
            ConnectSample {
                round,
                offset_ms: f64::from(round) * ROUND_MS,
                outcome: if failed { outcome } else { TcpOutcome::Ok }.into(),
                latency_ms: if failed { 400.0 } else { ok_ms },
                local_port: Some(40000 + round as u16),
                endpoint: None,
                icmp: None,
            }
        })
        .collect();
    let failures: Vec<ConnectSample> = samples
        .iter()
        .filter(|s| s.outcome != TcpOutcome::Ok)
        .cloned()
        .collect();
    let ok = u64::from(attempts) - failures.len() as u64;
    let mut outcomes = std::collections::BTreeMap::new();
    if ok > 0 {
        outcomes.insert(Open::Known(TcpOutcome::Ok), ok);
    }
    if !failures.is_empty() {
        outcomes.insert(Open::Known(outcome), failures.len() as u64);
    }
    let mut ok_latencies: Vec<f64> = vec![ok_ms; ok as usize];
    TcpRoundsEvidence {
        target: addr.into(),
        address: addr.parse().unwrap(),
        role: role.into(),
        attempts: u64::from(attempts),
        outcomes,
        latency_ms: LatencySummary::of(&mut ok_latencies),
        first_ms: 0.0,
        last_ms: f64::from(attempts.saturating_sub(1)) * ROUND_MS,
        failures,
        failures_dropped: 0,
        samples,
        samples_dropped: 0,
        stopped_early: false,
        chosen: Vec::new(),
        unattributed: None,
    }
}

/// CONSTRUCTED: the events the probe sends for one address: the `tcp` evidence of its first
/// attempt, and its `tcp_rounds`.
fn address(x: TcpRoundsEvidence) -> Vec<Event> {
    let first = &x.samples[0];
    let outcome = first.outcome.known().unwrap();
    let role = x.role.known().unwrap();
    vec![
        tcp_as(&x.target, role, outcome, first.latency_ms),
        Event::Evidence(Evidence::TcpRounds(x)),
    ]
}

/// Inputs from a probe of protocol minor 2 (roles echoed) with these addresses.
fn run(xs: Vec<TcpRoundsEvidence>, kube: KubeEvidence, destination: &str) -> Inputs {
    let events = xs.into_iter().flat_map(address).collect();
    let mut i = inputs_from_minor(2, events, kube);
    i.title.destination = Some(destination.into());
    if let Some(src) = &i.kube.source {
        i.title.source = format!("pod/{}", src.pod);
        i.title.origin = Some(Origin::Pod {
            namespace: src.namespace.clone(),
            name: src.pod.clone(),
        });
    }
    i.title.asked = Some(format!("--to {destination} --repeat 200"));
    i
}

fn ep(ip: &str, pod: &str, node: &str) -> EndpointInfo {
    EndpointInfo {
        node: Some(node.into()),
        ..endpoint(ip, 8080, true, pod)
    }
}

/// svc/web in shop: ClusterIP 10.199.96.10:80 -> 8080 on web-0 (node-a), web-1 (node-a),
/// web-2 (node-b).
fn web() -> KubeEvidence {
    let svc = service(
        "web",
        "shop",
        "10.199.96.10",
        80,
        "8080",
        vec![
            ep("10.199.70.2", "web-0", "node-a"),
            ep("10.199.70.3", "web-1", "node-a"),
            ep("10.199.70.4", "web-2", "node-b"),
        ],
    );
    kube_service(source("client", "shop", "10.199.70.1"), svc, vec![])
}

const CLUSTER_IP: &str = "10.199.96.10:80";
const WEB: [&str; 3] = ["10.199.70.2:8080", "10.199.70.3:8080", "10.199.70.4:8080"];

/// The ClusterIP and the three endpoints, `attempts` rounds each; endpoint `i` fails at
/// `fail[i]`, the ClusterIP at `cluster_fail`.
fn service_rounds(
    attempts: u32,
    cluster_fail: &[u32],
    fail: [&[u32]; 3],
    outcome: TcpOutcome,
) -> Vec<TcpRoundsEvidence> {
    let mut xs = vec![rounds(
        CLUSTER_IP,
        TargetRole::ClusterIp,
        attempts,
        cluster_fail,
        outcome,
        0.3,
    )];
    for (addr, at) in WEB.iter().zip(fail) {
        xs.push(rounds(
            addr,
            TargetRole::Endpoint,
            attempts,
            at,
            outcome,
            0.2,
        ));
    }
    xs
}

/// A single address without Kubernetes evidence (a `local` run toward an IP).
fn direct(attempts: u32, fail_at: &[u32], outcome: TcpOutcome) -> Verdict {
    let x = rounds(
        "10.199.0.2:8080",
        TargetRole::Direct,
        attempts,
        fail_at,
        outcome,
        0.2,
    );
    evaluate(&run(vec![x], KubeEvidence::default(), "10.199.0.2:8080"))
}

// ---- helpers ------------------------------------------------------------------------------

fn fired(v: &Verdict) -> String {
    format!(
        "status {:?} rules {:?}\ncause: {:?}\nevidence: {:#?}",
        v.status, v.rules_fired, v.cause, v.evidence
    )
}

#[track_caller]
fn assert_fired(v: &Verdict, status: Status, rules: &[RuleCode]) {
    assert_eq!(v.status, status, "{}", fired(v));
    assert_eq!(v.rules_fired, rules, "{}", fired(v));
}

#[track_caller]
fn assert_cause(v: &Verdict, part: &str) {
    let cause = v.cause.as_deref().unwrap_or("");
    assert!(cause.contains(part), "missing {part:?} in\n{cause}");
}

fn every(from: u32, step: u32, below: u32) -> Vec<u32> {
    (from..below).step_by(step as usize).collect()
}

// ---- recorded: one lossy endpoint of three -------------------------------------------------

/// Recorded: 20 rounds toward svc/web whose third endpoint drops every 4th SYN (its first
/// attempt among them). One finding, the measured bad endpoint: not an `L4 timeout` of its
/// first attempt, and not a second finding about the ClusterIP.
#[test]
fn recorded_lossy_endpoint_is_one_bad_endpoint_with_its_rate_and_pattern() {
    let mut k = web();
    k.cluster_dns = Some("10.199.96.53".into());
    let i = load(
        "rounds_bad_endpoint",
        k8s_title("pod/client", "svc/web:80", "shop"),
        k,
    );
    let v = evaluate(&i);
    assert_fired(&v, Status::Degraded, &[RuleCode::ServiceBadEndpoint]);
    assert_eq!(v.layer, Some(Layer::Service));
    assert_cause(
        &v,
        "10.199.70.4:8080 (pod/web-2 on node-b) failed 25% of 20 connects (95% CI 11-47%, 5 \
         timeout), every 4th attempt",
    );
    assert_cause(&v, "the other 2 endpoints of svc/web 0 of 40");
    assert_cause(
        &v,
        "the ClusterIP's 0% (0 of 20) is consistent with 1 of 3 endpoints failing 25%",
    );
    assert!(v.next[1].starts_with("kubectl netdebug pod/web-2 -n shop --sockets"));
}

// ---- intermittent failures and their pattern ----------------------------------------------

#[test]
fn failures_at_a_constant_gap_are_every_nth_attempt() {
    let v = direct(20, &[3, 7, 11, 15, 19], TcpOutcome::Timeout);
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpIntermittent]);
    assert_eq!(v.layer, Some(Layer::Transport));
    assert_eq!(v.headline, "intermittent connect failures");
    assert_cause(
        &v,
        "5 of 20 connects to 10.199.0.2:8080 timed out (25%, 95% CI 11-47%), every 4th attempt",
    );
    // The evidence line is the compact summary.
    assert!(
        v.evidence.iter().any(|l| l.mark == Mark::Warn
            && l.text == "10.199.0.2:8080 20 connects: 15 ok, 5 timeout (25%); p50 0.2 ms p90 0.2 ms p99 0.2 ms max 0.2 ms"),
        "{}",
        fired(&v)
    );
}

/// The first attempt timed out, the rounds show 3.5%: reported once, as intermittent, with
/// the interval saying how sure the rate is; no `L4 timeout`.
#[test]
fn a_failed_first_attempt_with_partial_rounds_is_reported_once() {
    let v = direct(200, &[0, 37, 52, 90, 141, 170, 199], TcpOutcome::Timeout);
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpIntermittent]);
    assert_cause(
        &v,
        "7 of 200 connects to 10.199.0.2:8080 timed out (3.5%, 95% CI 1.7-7.0%), spread over \
         the run (attempts 1 to 200 of 200)",
    );
    assert!(!v.fired(RuleCode::TcpTimeout));
}

#[test]
fn failures_close_together_are_a_burst() {
    let v = direct(200, &[100, 101, 103, 104, 106], TcpOutcome::Timeout);
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpIntermittent]);
    assert_cause(
        &v,
        "in a burst: all within 300 ms (attempts 101-107 of 200)",
    );
}

#[test]
fn failures_far_apart_are_spread_over_the_run() {
    let v = direct(100, &[5, 31, 48, 77, 93], TcpOutcome::Refused);
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpIntermittent]);
    assert_cause(
        &v,
        "5 of 100 connects to 10.199.0.2:8080 were refused (5.0%",
    );
    assert_cause(&v, "spread over the run (attempts 6 to 94 of 100)");
    // Refusals: the listener first (no pod known in a local run: ss on the destination).
    assert!(
        v.next[0].starts_with("ss -ltn 'sport = :8080'"),
        "{:?}",
        v.next
    );
}

/// Flapping is a pattern of the intermittent finding, not a rule of its own.
#[test]
fn failure_streaks_with_successes_between_are_flapping() {
    let mut at: Vec<u32> = (10..14).collect();
    at.extend(30..35);
    at.extend(60..63);
    let v = direct(100, &at, TcpOutcome::Timeout);
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpIntermittent]);
    assert_cause(
        &v,
        "flapping: 3 failure streaks of 3-5 attempts, with successes between",
    );
}

#[test]
fn one_streak_to_the_end_says_it_broke_during_the_run() {
    let v = direct(100, &(80..100).collect::<Vec<_>>(), TcpOutcome::Timeout);
    assert_cause(
        &v,
        "every attempt from the 81st on: it broke during the run and had not recovered",
    );
}

#[test]
fn two_failures_are_placed_not_patterned() {
    let v = direct(50, &[9, 40], TcpOutcome::Timeout);
    assert_cause(&v, "(4.0%, 95% CI 1.1-13%), at attempts 10 and 41 of 50");
}

/// The ClusterIP loses connects while every endpoint answers all of its: the cause says the
/// losses are in the Service translation.
#[test]
fn clusterip_losses_with_clean_endpoints_point_at_the_translation() {
    let xs = service_rounds(
        200,
        &every(5, 25, 200),
        [&[], &[], &[]],
        TcpOutcome::Timeout,
    );
    let v = evaluate(&run(xs, web(), "svc/web:80"));
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpIntermittent]);
    assert_cause(
        &v,
        "8 of 200 connects to 10.199.96.10:80 (svc/web:80) timed out (4.0%",
    );
    assert_cause(&v, "every 25th attempt");
    assert_cause(
        &v,
        "every endpoint answered all its connects directly (600 of 600), so the losses are in \
         the Service translation",
    );
}

// ---- one bad endpoint among good ones ------------------------------------------------------

#[test]
fn one_bad_endpoint_of_three_is_named_with_its_rate_against_the_others() {
    let xs = service_rounds(
        40,
        &[4, 17, 30],
        [&[], &[], &every(0, 4, 40)],
        TcpOutcome::Timeout,
    );
    let v = evaluate(&run(xs, web(), "svc/web:80"));
    assert_fired(&v, Status::Degraded, &[RuleCode::ServiceBadEndpoint]);
    assert_eq!(v.headline, "bad endpoint");
    assert_cause(
        &v,
        "10.199.70.4:8080 (pod/web-2 on node-b) failed 25% of 40 connects (95% CI 14-40%, 10 \
         timeout), every 4th attempt; the other 2 endpoints of svc/web 0 of 80",
    );
    // The ClusterIP's own failures are explained by the bad endpoint, not reported again.
    assert_cause(
        &v,
        "the ClusterIP's 7.5% (3 of 40) is consistent with 1 of 3 endpoints failing 25% (about \
         8.3% expected)",
    );
    // Timeouts: the rounds again with a capture, then the bad pod's sockets, then its node.
    assert!(
        v.next[0].contains("--repeat 200 -n shop --capture -w trace.pcap"),
        "{:?}",
        v.next
    );
    let finding = &v.findings[0];
    assert!(finding.next[1].starts_with("kubectl netdebug pod/web-2 -n shop --sockets"));
    assert!(
        finding.next[2].contains("# on node-b"),
        "{:?}",
        finding.next
    );
}

/// 5 of 20 against 0 of 20 is not clearly apart (the 95% intervals overlap): no bad-endpoint
/// claim, the failing address is intermittent.
#[test]
fn a_rate_not_clearly_above_the_others_is_not_a_bad_endpoint() {
    let svc = service(
        "web",
        "shop",
        "10.199.96.10",
        80,
        "8080",
        vec![
            ep("10.199.70.2", "web-0", "node-a"),
            ep("10.199.70.3", "web-1", "node-b"),
        ],
    );
    let k = kube_service(source("client", "shop", "10.199.70.1"), svc, vec![]);
    let xs = vec![
        rounds(
            WEB[0],
            TargetRole::Endpoint,
            20,
            &[],
            TcpOutcome::Timeout,
            0.2,
        ),
        rounds(
            WEB[1],
            TargetRole::Endpoint,
            20,
            &[2, 6, 10, 14, 18],
            TcpOutcome::Timeout,
            0.2,
        ),
    ];
    let v = evaluate(&run(xs, k, "svc/web:80"));
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpIntermittent]);
    assert_cause(
        &v,
        "5 of 20 connects to 10.199.70.3:8080 (pod/web-1 on node-b) timed out",
    );
}

// ---- a latency outlier ---------------------------------------------------------------------

#[test]
fn an_endpoint_much_slower_to_accept_is_a_latency_outlier() {
    let mut xs = service_rounds(100, &[], [&[], &[], &[]], TcpOutcome::Timeout);
    xs[3] = rounds(
        WEB[2],
        TargetRole::Endpoint,
        100,
        &[],
        TcpOutcome::Timeout,
        40.0,
    );
    let v = evaluate(&run(xs, web(), "svc/web:80"));
    assert_fired(&v, Status::Degraded, &[RuleCode::EndpointLatencyOutlier]);
    assert_eq!(v.headline, "slow endpoint");
    assert_cause(
        &v,
        "10.199.70.4:8080 (pod/web-2 on node-b) takes 40 ms to accept a connect (p50 of 100 \
         connects) while the other 2 endpoints take 0.2 ms (median p50)",
    );
    assert!(v.next[0].starts_with("kubectl netdebug pod/web-2 -n shop --sockets"));
}

/// 1 ms against 0.2 ms is 5 times, but 0.8 ms is nothing to report.
#[test]
fn a_fast_endpoint_a_few_times_slower_is_not_an_outlier() {
    let mut xs = service_rounds(100, &[], [&[], &[], &[]], TcpOutcome::Timeout);
    xs[3] = rounds(
        WEB[2],
        TargetRole::Endpoint,
        100,
        &[],
        TcpOutcome::Timeout,
        1.0,
    );
    let v = evaluate(&run(xs, web(), "svc/web:80"));
    assert_fired(&v, Status::Healthy, &[]);
}

// ---- a clean run ---------------------------------------------------------------------------

/// 200 clean rounds toward a Service: healthy, the headline counts every connect, one line per
/// address (not one per connect), and the computed power of the run.
#[test]
fn a_clean_run_says_what_it_proves() {
    let xs = service_rounds(200, &[], [&[], &[], &[]], TcpOutcome::Timeout);
    let i = run(xs, web(), "svc/web:80");
    let v = evaluate(&i);
    assert_fired(&v, Status::Healthy, &[]);
    assert_eq!(
        v.headline,
        "reachable (800/800 connects ok over 200 rounds)"
    );
    assert!(
        v.proven.iter().any(|p| p
            == "TCP: svc/web: 800/800 connects ok over 200 rounds to 4 addresses; a failure \
                rate of 1.5% or more at any one of them would have shown with 95% confidence"),
        "{:#?}",
        v.proven
    );
    let per_address: Vec<&str> = v
        .evidence
        .iter()
        .filter(|l| l.text.contains("200 connects: 200 ok"))
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(per_address.len(), 4, "{per_address:#?}");
    // The single-shot line is not repeated beside the rounds' lines.
    assert!(!v.evidence.iter().any(|l| l.text.contains("connected")));
    // What the user sees: a handful of lines, not 800.
    let text = TextRenderer::new(false).finish(&i, &v);
    assert!(text.lines().count() < 20, "{text}");
    let md = MarkdownRenderer::new().finish(&i, &v);
    assert!(md.lines().count() < 25, "{md}");
}

#[test]
fn a_clean_single_address_states_its_power() {
    let v = direct(10_000, &[], TcpOutcome::Timeout);
    assert_eq!(
        v.headline,
        "reachable (10000/10000 connects ok over 10000 rounds)"
    );
    assert!(
        v.proven.iter().any(|p| p.ends_with(
            "10.199.0.2:8080: 10000/10000 connects ok over 10000 rounds; a failure rate of \
             0.03% or more would have shown with 95% confidence"
        )),
        "{:#?}",
        v.proven
    );
}

// ---- an address that failed every time ---------------------------------------------------

/// Every attempt timed out: the single-shot rule names the cause; the rounds add the counts.
#[test]
fn an_address_failing_every_time_keeps_the_single_shot_rule() {
    let v = direct(20, &(0..20).collect::<Vec<_>>(), TcpOutcome::Timeout);
    assert_fired(&v, Status::Failed, &[RuleCode::TcpTimeout]);
    assert_eq!(v.headline, "L4 timeout");
    assert!(
        v.evidence
            .iter()
            .any(|l| l.mark == Mark::Info
                && l.text == "10.199.0.2:8080 20 connects: 20 timeout (100%)"),
        "{}",
        fired(&v)
    );
}

/// One endpoint refuses every connect: the single-shot bad endpoint names it; the ClusterIP's
/// partial failures are consistent with it and are not reported a second time.
#[test]
fn an_endpoint_failing_every_time_explains_the_clusterips_share() {
    let xs = service_rounds(
        30,
        &every(1, 3, 30),
        [&[], &[], &(0..30).collect::<Vec<_>>()],
        TcpOutcome::Refused,
    );
    let v = evaluate(&run(xs, web(), "svc/web:80"));
    assert_fired(&v, Status::Degraded, &[RuleCode::ServiceBadEndpoint]);
    assert_cause(
        &v,
        "1 of 3 endpoints of svc/web fail: 10.199.70.4:8080 (pod/web-2 on node-b) refused",
    );
    assert!(
        v.evidence.iter().any(|l| l.text
            == "the ClusterIP's 33% (10 of 30) is consistent with 1 of 3 endpoints failing 100% \
                (about 33% expected)"),
        "{}",
        fired(&v)
    );
}

// ---- next steps and neighbouring rules ------------------------------------------------------

/// Without NET_RAW the capture step is the one that works (the same rounds entered from the
/// source's node with --via-node), not `--capture` again from inside the pod.
#[test]
fn without_net_raw_the_capture_step_is_from_the_node() {
    let xs = service_rounds(
        40,
        &[4, 17, 30],
        [&[], &[], &every(0, 4, 40)],
        TcpOutcome::Timeout,
    );
    let mut i = run(xs, web(), "svc/web:80");
    if let Some(Event::Hello(h)) = i.events.first_mut() {
        h.capabilities.clear();
    }
    let v = evaluate(&i);
    assert!(
        v.next[0].starts_with(
            "kubectl netdebug pod/client --to svc/web:80 --repeat 200 -n shop --via-node \
             --node-namespace NS --capture -w trace.pcap"
        ),
        "{:?}",
        v.next
    );
    assert!(v.next[0].contains("from node node-1"), "{:?}", v.next);
}

/// Timeouts toward a local listener whose accept queue overflowed, some of the time: the
/// intermittent finding (which names the overflows) and the overflow as a warning; not a hard
/// failure read from the first attempt.
#[test]
fn partial_timeouts_with_listen_overflows_are_not_a_hard_failure() {
    let x = rounds(
        "10.199.0.2:8080",
        TargetRole::Direct,
        100,
        &every(0, 10, 100),
        TcpOutcome::Timeout,
        0.2,
    );
    let mut events = address(x);
    events.push(common::build::sockets(serde_json::json!({
        "listeners": [{"local": "0.0.0.0:8080", "recv_q": 0, "send_q": 128}],
    })));
    events.push(common::build::counters(&[("TcpExt.ListenOverflows", 10)]));
    let mut i = inputs_from_minor(2, events, KubeEvidence::default());
    i.title.asked = Some("--to 10.199.0.2:8080 --repeat 100".into());
    let v = evaluate(&i);
    assert_fired(
        &v,
        Status::Degraded,
        &[RuleCode::TcpIntermittent, RuleCode::ListenQueueOverflow],
    );
    assert_cause(&v, "every 10th attempt");
    assert_cause(
        &v,
        "the kernel counted 10 listen-queue drops in this namespace",
    );
}
