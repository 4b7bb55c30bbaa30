//! Many sources at once (issue 12): the aggregate verdict over several source pods, each
//! given a recorded fixture (real probe output, `tests/record-fixtures.sh`) and a pod and
//! node in the test. Covers every split, the "what differs" computation on pairs of
//! fixtures recorded to differ in one fact (resolv.conf nameserver, interface MTU, a route),
//! the compact renderings (insta snapshots, markdown length for 20 sources), the JSON
//! document, and exit codes.

mod common;

use common::*;
use netdebug_verdict::kube::KubeEvidence;
use netdebug_verdict::sources::{
    evaluate_sources, render_json, render_markdown, render_text, Cell, Fact, SkipReason,
    SkippedSource, SourceRun, SourcesInputs, SourcesVerdict, Split,
};
use netdebug_verdict::{Status, Title};

/// A source pod that ran `fixture`.
fn run(n: usize, pod: &str, node: &str, fixture: &str) -> SourceRun {
    SourceRun {
        id: format!("src-{n}"),
        namespace: "shop".into(),
        pod: pod.into(),
        node: Some(node.into()),
        problem: None,
        inputs: load(
            fixture,
            k8s_title(&format!("pod/{pod}"), "svc/web:80", "shop"),
            KubeEvidence::default(),
        ),
    }
}

/// A source pod whose probe never ran.
fn not_run(n: usize, pod: &str, node: &str, problem: &str) -> SourceRun {
    let mut r = run(n, pod, node, "healthy_service");
    r.inputs.events.clear();
    r.inputs.end_stream(problem);
    r.problem = Some(problem.into());
    r
}

/// Sources named (pod, node, fixture), numbered in order.
fn runs(specs: &[(&str, &str, &str)]) -> Vec<SourceRun> {
    specs
        .iter()
        .enumerate()
        .map(|(i, (pod, node, fixture))| run(i + 1, pod, node, fixture))
        .collect()
}

fn inputs(sources: Vec<SourceRun>, skipped: Vec<SkippedSource>) -> SourcesInputs {
    SourcesInputs {
        title: Title {
            source: "pods -l app=web".into(),
            destination: Some("svc/web:80".into()),
            namespace: Some("shop".into()),
            origin: None,
            asked: None,
        },
        sources,
        skipped,
        notes: Vec::new(),
    }
}

fn skipped(pod: &str, reason: SkipReason, detail: &str) -> SkippedSource {
    SkippedSource {
        namespace: "shop".into(),
        pod: pod.into(),
        node: Some("node-1".into()),
        reason,
        detail: detail.into(),
    }
}

/// The matrix cell of `pod` in the column whose name contains `column`.
fn cell(v: &SourcesVerdict, pod: &str, column: &str) -> Cell {
    let i = v
        .matrix
        .columns
        .iter()
        .position(|c| c.name().contains(column))
        .unwrap_or_else(|| panic!("no column {column}: {:?}", v.matrix.columns));
    let row = v.matrix.rows.iter().find(|r| r.pod == pod).unwrap();
    row.cells[i]
}

fn dns_pair() -> SourcesInputs {
    inputs(
        runs(&[
            ("web-1", "node-1", "sources_dns_ok"),
            ("web-2", "node-1", "sources_dns_silent_nameserver"),
        ]),
        vec![],
    )
}

fn route_nodes() -> SourcesInputs {
    inputs(
        runs(&[
            ("web-1", "node-a", "sources_route_wrong_gateway"),
            ("web-2", "node-a", "sources_route_wrong_gateway"),
            ("web-3", "node-b", "sources_route_ok"),
            ("web-4", "node-b", "sources_route_ok"),
            ("web-5", "node-c", "sources_route_ok"),
        ]),
        vec![],
    )
}

fn everywhere_ok() -> SourcesInputs {
    let specs: Vec<(String, String)> = (1..=12)
        .map(|i| (format!("web-{i}"), format!("node-{}", i % 3 + 1)))
        .collect();
    let specs: Vec<(&str, &str, &str)> = specs
        .iter()
        .map(|(p, n)| (p.as_str(), n.as_str(), "healthy_service"))
        .collect();
    inputs(runs(&specs), vec![])
}

fn fails_everywhere() -> SourcesInputs {
    inputs(
        runs(&[
            ("web-1", "node-a", "tcp_timeout"),
            ("web-2", "node-a", "tcp_timeout"),
            ("web-3", "node-b", "tcp_timeout"),
        ]),
        vec![],
    )
}

// ---------------------------------------------------------------------------------------
// Splits and differences

/// The e2e case: two pods by one label on one node, one with a dnsConfig pointing at a
/// nameserver that does not answer. The aggregate names that pod and its nameserver, and
/// the other pod as working.
#[test]
fn a_pod_whose_resolver_points_elsewhere_is_the_pod_level_split() {
    let i = dns_pair();
    let v = evaluate_sources(&i);
    assert_eq!(
        v.split,
        Split::FailsInSomePods {
            pods: vec!["web-2".into()]
        }
    );
    assert_ne!(v.status, Status::Healthy);
    assert_eq!(v.exit_code(), 1);
    assert!(
        v.headline.contains("from web-2 only (1 of 2 pods)"),
        "{}",
        v.headline
    );
    assert!(v.headline.contains("web-1 works"), "{}", v.headline);
    let cause = v.cause.as_deref().unwrap();
    assert!(cause.contains("network namespace of web-2"), "{cause}");
    assert!(cause.contains("same node"), "{cause}");

    // The nameserver each pod's resolv.conf names, as read from the recorded evidence.
    let ns = v
        .differences
        .iter()
        .find(|d| d.what == Fact::ResolvNameservers)
        .expect("a nameserver difference");
    assert_eq!(
        (ns.failing.pod.as_str(), ns.failing.value.as_str()),
        ("web-2", "10.199.96.99")
    );
    assert_eq!(
        (ns.working.pod.as_str(), ns.working.value.as_str()),
        ("web-1", "10.199.96.53")
    );
    assert_eq!(
        ns.text(),
        "resolv.conf nameserver: web-2 uses 10.199.96.99, web-1 uses 10.199.96.53"
    );
    let reached = v
        .differences
        .iter()
        .find(|d| d.what == Fact::DnsServerReached)
        .expect("the server that answered differs");
    assert_eq!(reached.failing.value, "none (10.199.96.99 did not answer)");
    assert_eq!(reached.working.value, "10.199.96.53");
    // Only what differs: both files share the search list and ndots, both pods one
    // interface MTU and route.
    assert!(
        v.differences
            .iter()
            .all(|d| matches!(d.what, Fact::ResolvNameservers | Fact::DnsServerReached)),
        "{:#?}",
        v.differences
    );

    // The matrix: the name failed from web-2 only, the ClusterIP worked from both.
    assert_eq!(cell(&v, "web-2", "dns web"), Cell::DnsNoAnswer);
    assert_eq!(cell(&v, "web-1", "dns web"), Cell::Ok);
    assert_eq!(cell(&v, "web-2", "10.199.96.10:80"), Cell::Ok);
    assert_eq!(v.per_source.len(), 2);
    assert!(v.next.iter().any(|n| n.contains("get pod web-2 ")
        && n.contains("dnsConfig")
        && n.ends_with("compare with web-1")));
}

/// A nameserver that refuses (ICMP port unreachable: the probe's `connection refused`) is
/// not one that stays silent: the difference says which. The recorded silent run's queries
/// are turned into refusals; nothing else changes.
#[test]
fn a_refusing_nameserver_is_told_from_a_silent_one() {
    let mut i = dns_pair();
    let mut refused = 0;
    for event in &mut i.sources[1].inputs.events {
        if let protocol::Event::Evidence(protocol::Evidence::DnsLookup(lookup)) = event {
            for q in &mut lookup.queries {
                q.outcome = protocol::DnsOutcome::Error {
                    message: "connection refused".into(),
                };
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the fixture has queries to rewrite");
    let v = evaluate_sources(&i);
    let reached = v
        .differences
        .iter()
        .find(|d| d.what == Fact::DnsServerReached)
        .expect("the server that answered differs");
    assert_eq!(
        reached.failing.value,
        "none (10.199.96.99 failed: connection refused)"
    );
}

/// The app check's answer per source (`--to http://...` from many pods): a connect that
/// worked but a 503 is its own cell, and the pod that got it is the split. The second
/// source's recorded run is given the HTTP answer a 503 endpoint would have sent it.
#[test]
fn an_http_error_from_one_pod_is_its_cell_and_the_split() {
    let mut i = inputs(
        runs(&[
            ("web-1", "node-1", "sources_mtu_fits"),
            ("web-2", "node-1", "sources_mtu_fits"),
        ]),
        vec![],
    );
    let answer = |inputs: &netdebug_verdict::Inputs, status: u16| {
        let tcp = inputs
            .events
            .iter()
            .find_map(|e| match e {
                protocol::Event::Evidence(protocol::Evidence::Tcp(t)) => Some(t.clone()),
                _ => None,
            })
            .expect("the recorded run connected");
        protocol::Event::Evidence(protocol::Evidence::Http(protocol::HttpEvidence {
            target: tcp.target.clone(),
            address: tcp.address,
            role: tcp.role.clone(),
            scheme: "http".into(),
            path: "/ready".into(),
            host: "web".into(),
            outcome: protocol::HttpOutcome::Response.into(),
            status: Some(status),
            reason: None,
            server: None,
            location: None,
            first_byte_ms: Some(1.0),
            total_ms: 1.2,
            bytes_read: 90,
            truncated: false,
            body_start: None,
            message: None,
        }))
    };
    let ok = answer(&i.sources[0].inputs, 200);
    let unavailable = answer(&i.sources[1].inputs, 503);
    i.sources[0].inputs.events.push(ok);
    i.sources[1].inputs.events.push(unavailable);
    let v = evaluate_sources(&i);
    assert_eq!(
        v.split,
        Split::FailsInSomePods {
            pods: vec!["web-2".into()]
        }
    );
    assert_eq!(cell(&v, "web-2", "10.199.71.2:8080"), Cell::HttpError);
    assert_eq!(cell(&v, "web-1", "10.199.71.2:8080"), Cell::Ok);
    let text = render_text(&i, &v, false);
    assert!(text.contains("HTTP error status"), "{text}");
}

#[test]
fn an_interface_mtu_is_the_difference_between_two_pods() {
    let i = inputs(
        runs(&[
            ("web-1", "node-1", "sources_mtu_fits"),
            ("web-2", "node-1", "sources_mtu_blackhole"),
        ]),
        vec![],
    );
    let v = evaluate_sources(&i);
    assert_eq!(
        v.split,
        Split::FailsInSomePods {
            pods: vec!["web-2".into()]
        }
    );
    assert_eq!(cell(&v, "web-2", "10.199.71.2:8080"), Cell::MtuBlackhole);
    assert_eq!(cell(&v, "web-1", "10.199.71.2:8080"), Cell::Ok);
    let mtu = v
        .differences
        .iter()
        .find(|d| d.what == Fact::InterfaceMtu)
        .expect("an MTU difference");
    assert_eq!(mtu.about.as_deref(), Some("vdr-c0"));
    assert_eq!(mtu.failing.value, "1500");
    assert_eq!(mtu.working.value, "1280");
    assert_eq!(mtu.text(), "MTU of vdr-c0: web-2 has 1500, web-1 has 1280");
    assert!(!v
        .differences
        .iter()
        .any(|d| d.what == Fact::ResolvNameservers));
}

#[test]
fn the_pods_of_one_node_failing_is_the_node_level_split_and_names_the_route() {
    let v = evaluate_sources(&route_nodes());
    assert_eq!(
        v.split,
        Split::FailsOnSomeNodes {
            nodes: vec!["node-a".into()]
        }
    );
    assert_eq!(v.status, Status::Failed);
    assert!(
        v.headline
            .contains("from the pods of node-a only (2 of 5 pods)"),
        "{}",
        v.headline
    );
    let cause = v.cause.as_deref().unwrap();
    assert!(cause.contains("node-level problem on node-a"), "{cause}");
    assert!(cause.contains("node-b, node-c"), "{cause}");
    let route = v
        .differences
        .iter()
        .find(|d| d.what == Fact::Route)
        .expect("a route difference");
    assert_eq!(route.about.as_deref(), Some("10.199.73.2"));
    assert_eq!(route.failing.node.as_deref(), Some("node-a"));
    assert_ne!(route.working.node.as_deref(), Some("node-a"));
    assert!(
        route.failing.value.contains("via 10.199.70.254"),
        "{}",
        route.failing.value
    );
    assert!(
        route.failing.value.contains("(next hop INCOMPLETE)"),
        "{}",
        route.failing.value
    );
    assert!(
        route.working.value.contains("via 10.199.70.2 "),
        "{}",
        route.working.value
    );
    assert!(v.next.iter().any(|n| n == "kubectl describe node node-a"));
    for pod in ["web-1", "web-2"] {
        assert_eq!(cell(&v, pod, "10.199.73.2:8080"), Cell::Timeout);
    }
    assert_eq!(cell(&v, "web-5", "10.199.73.2:8080"), Cell::Ok);
}

#[test]
fn every_source_failing_points_at_the_destination_with_per_target_evidence() {
    let v = evaluate_sources(&fails_everywhere());
    assert_eq!(v.split, Split::FailsEverywhere);
    assert_eq!(v.exit_code(), 1);
    assert!(v.headline.starts_with("L4 timeout"), "{}", v.headline);
    assert!(
        v.headline
            .ends_with("from every source (3 pods on 2 nodes)"),
        "{}",
        v.headline
    );
    assert!(v
        .cause
        .as_deref()
        .unwrap()
        .starts_with("the destination side"));
    assert!(
        v.evidence
            .iter()
            .any(|e| e == "10.199.70.2:8080: timeout from every source"),
        "{:?}",
        v.evidence
    );
    // Nothing works to compare with.
    assert!(v.differences.is_empty());
}

#[test]
fn works_everywhere_says_from_how_many_pods_on_how_many_nodes() {
    let i = everywhere_ok();
    let v = evaluate_sources(&i);
    assert_eq!(v.split, Split::WorksEverywhere);
    assert_eq!(v.status, Status::Healthy);
    assert_eq!(v.exit_code(), 0);
    assert_eq!(v.headline, "works from 12 pods on 3 nodes");
    assert!(v.cause.is_none() && v.differences.is_empty());
    let text = render_text(&i, &v, false);
    assert!(text.contains("12 pods on 3 nodes: all ok"), "{text}");
    // The checks no source ran are said once, for every source.
    assert!(
        v.unchecked
            .iter()
            .any(|u| u.check == "mtu" && u.reason.ends_with("(every source)")),
        "{:?}",
        v.unchecked
    );
}

#[test]
fn nothing_ran_is_inconclusive_and_names_every_pod() {
    let i = inputs(
        vec![
            not_run(1, "web-1", "node-1", "injection refused: forbidden"),
            not_run(2, "web-2", "node-2", "image pull failed"),
        ],
        vec![skipped("web-3", SkipReason::NotRunning, "phase Pending")],
    );
    let v = evaluate_sources(&i);
    assert_eq!(v.split, Split::NothingRan);
    assert_eq!(v.status, Status::Inconclusive);
    assert_eq!(v.exit_code(), 2);
    assert!(v.per_source.is_empty());
    let reasons: Vec<&str> = v.unchecked.iter().map(|u| u.reason.as_str()).collect();
    assert!(reasons
        .iter()
        .any(|r| r.contains("web-1 on node-1 was not probed: injection refused")));
    assert!(reasons
        .iter()
        .any(|r| r.contains("web-2 on node-2 was not probed: image pull failed")));
    assert!(reasons
        .iter()
        .any(|r| r.contains("1 pod not running: web-3 (phase Pending)")));
    assert!(v
        .matrix
        .rows
        .iter()
        .all(|r| r.cells.iter().all(|c| *c == Cell::NotRun)));
}

#[test]
fn an_inconclusive_source_counts_neither_way_and_is_said() {
    let i = inputs(
        runs(&[
            ("web-1", "node-1", "healthy_service"),
            ("web-2", "node-1", "stopped_early"),
        ]),
        vec![],
    );
    let v = evaluate_sources(&i);
    assert_eq!(v.split, Split::WorksEverywhere);
    assert!(
        v.unchecked
            .iter()
            .any(|u| u.check == "source" && u.reason.starts_with("web-2: inconclusive")),
        "{:?}",
        v.unchecked
    );
    assert!(
        v.notes[0].contains("1 pod on 1 node (of 2 pods matched)"),
        "{:?}",
        v.notes
    );
}

#[test]
fn skipped_pods_are_named_and_collapsed_by_reason() {
    let mut i = dns_pair();
    i.skipped = vec![
        skipped("web-4", SkipReason::NotRunning, "phase Pending"),
        skipped("web-5", SkipReason::NotRunning, "phase Pending"),
        skipped("web-6", SkipReason::NotRunning, "phase Failed"),
        skipped("web-7", SkipReason::NotRunning, "terminating"),
        skipped("web-8", SkipReason::OverLimit, ""),
    ];
    let v = evaluate_sources(&i);
    let not_running = v
        .unchecked
        .iter()
        .find(|u| u.check == "skipped" && u.reason.contains("not running"))
        .expect("not running pods are said");
    assert_eq!(
        not_running.reason,
        "4 pods not running: web-4 (phase Pending), web-5 (phase Pending), web-6 (phase \
         Failed) and 1 more; their paths are not covered"
    );
    let text = render_text(&i, &v, false);
    assert!(
        text.contains("skip    skipped: 4 pods not running: web-4 (phase Pending)"),
        "{text}"
    );
    let over = v
        .unchecked
        .iter()
        .find(|u| u.check == "skipped" && u.reason.contains("over --max-sources"))
        .expect("over the limit is said");
    assert!(over.reason.contains("web-8"));
    let md = render_markdown(&i, &v);
    assert!(md.contains("web-8") && md.contains("web-4"), "{md}");
}

// ---------------------------------------------------------------------------------------
// Rendering

#[test]
fn text_snapshots() {
    for (name, i) in [
        ("pods_dns", dns_pair()),
        ("nodes_route", route_nodes()),
        ("everywhere_ok", everywhere_ok()),
        ("fails_everywhere", fails_everywhere()),
    ] {
        let v = evaluate_sources(&i);
        let text = render_text(&i, &v, false);
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{name}: {line}");
        }
        insta::assert_snapshot!(format!("sources_text_{name}"), text);
    }
}

#[test]
fn markdown_snapshots() {
    for (name, i) in [
        ("pods_dns", dns_pair()),
        ("nodes_route", route_nodes()),
        ("everywhere_ok", everywhere_ok()),
    ] {
        let v = evaluate_sources(&i);
        insta::assert_snapshot!(format!("sources_markdown_{name}"), render_markdown(&i, &v));
    }
}

/// 20 sources on 4 nodes, failing in several ways, plus skipped pods: the markdown block
/// stays under 30 lines.
#[test]
fn markdown_stays_under_30_lines_for_20_sources() {
    let fixtures = [
        "healthy_service",
        "healthy_service",
        "healthy_service",
        "service_bad_endpoint",
        "healthy_service",
        "service_dataplane",
        "tcp_timeout",
        "healthy_service",
        "dns_nxdomain",
        "healthy_service",
    ];
    let specs: Vec<(String, String, &str)> = (0..20)
        .map(|i| {
            (
                format!("web-{i}"),
                format!("node-{}", i % 4),
                fixtures[(i * 7) % fixtures.len()],
            )
        })
        .collect();
    let specs: Vec<(&str, &str, &str)> = specs
        .iter()
        .map(|(p, n, f)| (p.as_str(), n.as_str(), *f))
        .collect();
    let mut i = inputs(runs(&specs), vec![]);
    i.skipped = (20..26)
        .map(|n| skipped(&format!("web-{n}"), SkipReason::OverLimit, ""))
        .collect();
    let v = evaluate_sources(&i);
    assert!(
        matches!(v.split, Split::FailsInSomePods { .. }),
        "{:?}",
        v.split
    );
    let md = render_markdown(&i, &v);
    let lines = md.lines().count();
    assert!(lines < 30, "{lines} lines:\n{md}");
    // Every source is in the table: in a row of its own, in a row of pods that fared alike
    // (`(3 pods)`), or counted in the last row (`| … | 5 pods more |`).
    let counted: usize = md
        .lines()
        .filter(|l| l.starts_with("| node-") || l.starts_with("| …"))
        .map(|l| {
            let pods = l.split('|').nth(2).unwrap().trim();
            if let Some(n) = pods.strip_suffix(" pods more") {
                n.parse::<usize>().unwrap()
            } else if let Some((_, n)) = pods.rsplit_once(" (") {
                n.trim_end_matches(" pods)").parse::<usize>().unwrap()
            } else {
                1
            }
        })
        .sum();
    assert_eq!(counted, 20, "{md}");
    assert!(md.contains("6 pods over --max-sources"), "{md}");
}

#[test]
fn json_keeps_every_source_document_beside_the_aggregate() {
    let mut i = dns_pair();
    i.sources.push(not_run(
        3,
        "web-3",
        "node-2",
        "injection refused: forbidden",
    ));
    i.skipped = vec![skipped("web-4", SkipReason::NotRunning, "phase Pending")];
    let v = evaluate_sources(&i);
    let out = render_json(&i, &v);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["format"], "kubectl-netdebug/sources");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["split"]["kind"], "fails_in_some_pods");
    assert_eq!(doc["split"]["pods"][0], "web-2");
    assert_eq!(doc["differences"][0]["what"], "resolv_nameservers");
    assert_eq!(doc["differences"][0]["failing"]["pod"], "web-2");
    assert_eq!(doc["differences"][0]["failing"]["value"], "10.199.96.99");
    assert_eq!(doc["matrix"]["columns"][0]["kind"], "dns");
    assert_eq!(doc["matrix"]["columns"][1]["label"], "svc/web:80");
    assert_eq!(doc["matrix"]["rows"][0]["node"], "node-1");
    assert!(doc["matrix"]["rows"][0]["cells"][0].is_string());
    assert_eq!(doc["skipped"][0]["reason"], "not_running");
    assert!(doc["unchecked"].as_array().unwrap().len() >= 2);
    let sources = doc["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    for (s, run) in sources.iter().zip(&i.sources) {
        assert_eq!(s["id"], run.id.as_str());
        if run.problem.is_some() {
            assert!(s["document"].is_null());
            assert_eq!(s["problem"], "injection refused: forbidden");
        } else {
            // The single-source document, with every event of its probe.
            assert_eq!(s["document"]["format"], "kubectl-netdebug/verdict");
            assert_eq!(
                s["document"]["probe"]["events"].as_array().unwrap().len(),
                run.inputs.events.len()
            );
        }
    }
}

#[test]
fn json_snapshot() {
    let i = dns_pair();
    let v = evaluate_sources(&i);
    insta::assert_snapshot!("sources_json_pods_dns", render_json(&i, &v));
}

#[test]
fn colours_only_when_asked() {
    let i = dns_pair();
    let v = evaluate_sources(&i);
    assert!(!render_text(&i, &v, false).contains('\u{1b}'));
    assert!(render_text(&i, &v, true).contains('\u{1b}'));
}

/// Socket facts count as a difference only past the thresholds the single-source rules use:
/// CLOSE-WAIT piling up in one pod, TIME-WAIT filling another's (narrowed) port range.
#[test]
fn socket_states_and_port_ranges_differ_only_past_their_thresholds() {
    let i = inputs(
        runs(&[
            ("web-1", "node-1", "close_wait"),
            ("web-2", "node-1", "port_exhaustion"),
            ("web-3", "node-1", "healthy_service"),
        ]),
        vec![],
    );
    let v = evaluate_sources(&i);
    assert_eq!(
        v.split,
        Split::FailsInSomePods {
            pods: vec!["web-1".into(), "web-2".into()]
        }
    );
    let of = |pod: &str, what: Fact| {
        v.differences
            .iter()
            .find(|d| d.failing.pod == pod && d.what == what)
    };
    let cw = of("web-1", Fact::CloseWait).expect("web-1's CLOSE-WAIT differs");
    assert_eq!(cw.working.pod, "web-3");
    assert_eq!(cw.working.value, "0 CLOSE-WAIT");
    assert!(cw.failing.value.ends_with(" CLOSE-WAIT") && cw.failing.value != "0 CLOSE-WAIT");
    assert!(of("web-1", Fact::TimeWait).is_none());
    let tw = of("web-2", Fact::TimeWait).expect("web-2's TIME-WAIT differs");
    assert!(
        tw.failing
            .value
            .contains("100% of the ephemeral port range"),
        "{}",
        tw.failing.value
    );
    let range = of("web-2", Fact::PortRange).expect("web-2's port range differs");
    assert_eq!(range.failing.value, "40000-40001");
    assert!(of("web-2", Fact::CloseWait).is_none());
}

/// Each failing pod is compared with a working pod of its own node; one alone on its node
/// with a working pod of another.
#[test]
fn failing_pods_are_compared_with_a_working_pod_of_their_own_node_first() {
    let i = inputs(
        runs(&[
            ("web-1", "node-1", "sources_dns_silent_nameserver"),
            ("web-2", "node-1", "sources_dns_ok"),
            ("web-3", "node-2", "sources_dns_silent_nameserver"),
            ("web-4", "node-2", "sources_dns_ok"),
            ("web-5", "node-3", "sources_dns_silent_nameserver"),
        ]),
        vec![],
    );
    let v = evaluate_sources(&i);
    assert_eq!(
        v.split,
        Split::FailsInSomePods {
            pods: vec!["web-1".into(), "web-3".into(), "web-5".into()]
        }
    );
    let pairs: Vec<(&str, &str)> = v
        .differences
        .iter()
        .filter(|d| d.what == Fact::ResolvNameservers)
        .map(|d| (d.failing.pod.as_str(), d.working.pod.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![("web-1", "web-2"), ("web-3", "web-4"), ("web-5", "web-2")]
    );
}

/// Odd input: no source chosen at all, or only skipped pods. Nothing panics, and the
/// verdict says nothing was judged.
#[test]
fn no_sources_at_all_is_nothing_ran() {
    for skipped_pods in [
        vec![],
        vec![skipped(
            "web-1",
            SkipReason::WindowsNode,
            "node win-1 runs windows",
        )],
    ] {
        let i = inputs(vec![], skipped_pods.clone());
        let v = evaluate_sources(&i);
        assert_eq!(v.split, Split::NothingRan);
        assert_eq!(v.exit_code(), 2);
        assert!(v.matrix.rows.is_empty() && v.matrix.columns.is_empty());
        let text = render_text(&i, &v, false);
        assert!(text.contains("no source could be judged"), "{text}");
        if !skipped_pods.is_empty() {
            assert!(
                text.contains(
                    "1 pod on a node that does not run Linux: web-1 (node win-1 runs windows)"
                ),
                "{text}"
            );
        }
        let doc: serde_json::Value = serde_json::from_str(&render_json(&i, &v)).unwrap();
        assert_eq!(doc["split"]["kind"], "nothing_ran");
        assert!(render_markdown(&i, &v).lines().count() < 10);
    }
}
