//! The node view's Service dataplane rule: each connect to a ClusterIP carries the node's
//! conntrack answer (`node_nat`), and a ClusterIP the node did not translate is said as such,
//! naming the node; the near misses (translated, no entry) stay what they were.

mod common;

use common::build::*;
use netdebug_verdict::{evaluate, RuleCode};
use protocol::{Event, Evidence, NatState, NodeNat, TargetRole, TcpOutcome};

fn with_nat(e: Event, state: NatState, endpoint: Option<&str>) -> Event {
    let Event::Evidence(Evidence::Tcp(mut t)) = e else {
        unreachable!("tcp evidence")
    };
    t.node_nat = Some(NodeNat {
        state: state.into(),
        endpoint: endpoint.map(sa),
        reason: None,
    });
    Event::Evidence(Evidence::Tcp(t))
}

fn kube() -> netdebug_verdict::kube::KubeEvidence {
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
    common::kube_service(common::source("client", "shop", "10.244.0.9"), svc, vec![])
}

fn endpoints_ok() -> Vec<Event> {
    vec![
        tcp_as("10.244.0.5:8080", TargetRole::Endpoint, TcpOutcome::Ok, 0.4),
        tcp_as("10.244.0.6:8080", TargetRole::Endpoint, TcpOutcome::Ok, 0.5),
    ]
}

#[test]
fn a_clusterip_the_node_did_not_translate_is_named_with_its_node() {
    let mut events = vec![with_nat(
        tcp_as(
            "10.96.0.10:80",
            TargetRole::ClusterIp,
            TcpOutcome::Timeout,
            1500.0,
        ),
        NatState::NotTranslated,
        None,
    )];
    events.extend(endpoints_ok());
    let v = evaluate(&inputs_with(events, kube()));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::ClusterIpNotTranslated],
        "{v:#?}"
    );
    let cause = v.cause.as_deref().unwrap();
    assert!(
        cause.starts_with(
            "ClusterIP 10.96.0.10:80 of Service shop/web was not translated on node node-1"
        ),
        "{cause}"
    );
    assert!(
        cause.contains("while 2 of its endpoints answered"),
        "{cause}"
    );
    let f = &v.findings[0];
    assert!(
        f.evidence
            .iter()
            .any(|l| l.contains("node conntrack: not translated on node node-1")),
        "{f:#?}"
    );
    assert!(
        f.next.iter().any(|n| n.contains("spec.nodeName=node-1")),
        "{f:#?}"
    );
}

/// Near miss: the node translated it, yet it failed: the pod-only rule stands, with the
/// node's answer as a line (the endpoint it went to).
#[test]
fn a_translated_clusterip_that_fails_keeps_the_dataplane_rule_with_the_nodes_answer() {
    let mut events = vec![with_nat(
        tcp_as(
            "10.96.0.10:80",
            TargetRole::ClusterIp,
            TcpOutcome::Timeout,
            1500.0,
        ),
        NatState::Translated,
        Some("10.244.0.5:8080"),
    )];
    events.extend(endpoints_ok());
    let v = evaluate(&inputs_with(events, kube()));
    assert_eq!(v.rules_fired, vec![RuleCode::ServiceDataplane], "{v:#?}");
    assert!(
        v.findings[0].evidence.iter().any(|l| l
            == "node conntrack for 10.96.0.10:80: translated on node node-1 to 10.244.0.5:8080"),
        "{:#?}",
        v.findings[0]
    );
}

/// No entry (an eBPF dataplane, say) concludes nothing about the translation.
#[test]
fn no_entry_is_not_read_as_untranslated() {
    let mut events = vec![with_nat(
        tcp_as(
            "10.96.0.10:80",
            TargetRole::ClusterIp,
            TcpOutcome::Timeout,
            1500.0,
        ),
        NatState::NoEntry,
        None,
    )];
    events.extend(endpoints_ok());
    let v = evaluate(&inputs_with(events, kube()));
    assert_eq!(v.rules_fired, vec![RuleCode::ServiceDataplane], "{v:#?}");
}

/// A working ClusterIP shows where the node sent it on its proven line.
#[test]
fn a_working_clusterip_shows_its_translation() {
    let mut events = vec![with_nat(
        tcp_as("10.96.0.10:80", TargetRole::ClusterIp, TcpOutcome::Ok, 0.6),
        NatState::Translated,
        Some("10.244.0.6:8080"),
    )];
    events.extend(endpoints_ok());
    let v = evaluate(&inputs_with(events, kube()));
    assert!(v.rules_fired.is_empty(), "{v:#?}");
    let text: Vec<String> = v.evidence.iter().map(|l| l.text.clone()).collect();
    assert!(
        text.iter().any(|t| t.contains(
            "10.96.0.10:80 connected 0.6 ms (translated on node node-1 to 10.244.0.6:8080)"
        )),
        "{text:#?}"
    );
}
