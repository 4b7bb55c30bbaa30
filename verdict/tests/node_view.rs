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

/// The verdict on a connect to the ClusterIP with the node's `state` (and `endpoint`), beside
/// two endpoints that answer directly.
fn judged(
    outcome: TcpOutcome,
    latency_ms: f64,
    state: NatState,
    endpoint: Option<&str>,
) -> netdebug_verdict::Verdict {
    let events = vec![
        with_nat(
            tcp_as("10.96.0.10:80", TargetRole::ClusterIp, outcome, latency_ms),
            state,
            endpoint,
        ),
        tcp_as("10.244.0.5:8080", TargetRole::Endpoint, TcpOutcome::Ok, 0.4),
        tcp_as("10.244.0.6:8080", TargetRole::Endpoint, TcpOutcome::Ok, 0.5),
    ];
    evaluate(&inputs_with(events, kube()))
}

#[test]
fn a_clusterip_the_node_did_not_translate_is_named_with_its_node() {
    let v = judged(TcpOutcome::Timeout, 1500.0, NatState::NotTranslated, None);
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
    let v = judged(
        TcpOutcome::Timeout,
        1500.0,
        NatState::Translated,
        Some("10.244.0.5:8080"),
    );
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
    let v = judged(TcpOutcome::Timeout, 1500.0, NatState::NoEntry, None);
    assert_eq!(v.rules_fired, vec![RuleCode::ServiceDataplane], "{v:#?}");
}

/// A working ClusterIP shows where the node sent it on its proven line.
#[test]
fn a_working_clusterip_shows_its_translation() {
    let v = judged(
        TcpOutcome::Ok,
        0.6,
        NatState::Translated,
        Some("10.244.0.6:8080"),
    );
    assert!(v.rules_fired.is_empty(), "{v:#?}");
    let text: Vec<String> = v.evidence.iter().map(|l| l.text.clone()).collect();
    assert!(
        text.iter().any(|t| t.contains(
            "10.96.0.10:80 connected 0.6 ms (translated on node node-1 to 10.244.0.6:8080)"
        )),
        "{text:#?}"
    );
}

fn node_path(
    overlay_up: bool,
    routes: Vec<protocol::NodeRoute>,
    conntrack: Option<(u64, u64)>,
) -> Event {
    Event::Evidence(Evidence::NodePath(protocol::NodePathEvidence {
        overlays: vec![protocol::OverlayDevice {
            name: "flannel.1".into(),
            kind: protocol::LinkKind::Vxlan.into(),
            mtu: 1450,
            up: overlay_up,
        }],
        underlay: Some(protocol::NodeDevice {
            name: "eth0".into(),
            mtu: 1500,
        }),
        routes,
        rp_filter: vec![],
        conntrack: conntrack.map(|(count, max)| protocol::ConntrackEvidence {
            present: true,
            count: Some(count),
            max: Some(max),
            fill_ratio: None,
            insert_failed: Some(3),
            drop: Some(0),
            early_drop: Some(0),
            note: None,
        }),
        counters: None,
        errors: vec![],
    }))
}

fn node_route(address: &str, dev: &str, via_default: bool) -> protocol::NodeRoute {
    protocol::NodeRoute {
        target: address.into(),
        address: ip(address),
        dev: Some(dev.into()),
        dev_kind: None,
        gateway: via_default.then(|| ip("192.0.2.1")),
        via_default,
        error: None,
    }
}

/// An endpoint on another node that the node sends by its default route, while the cluster
/// uses an overlay: the route for that node's pod CIDR is missing. Near misses: the same
/// address through the overlay, and an endpoint on the view's own node.
#[test]
fn a_remote_pod_routed_by_the_default_route_is_a_missing_pod_cidr_route() {
    let mut svc = common::service(
        "web",
        "shop",
        "10.96.0.10",
        80,
        "8080",
        vec![common::endpoint("10.244.1.5", 8080, true, "web-0")],
    );
    svc.endpoints[0].node = Some("node-2".into());
    let kube = common::kube_service(common::source("client", "shop", "10.244.0.9"), svc, vec![]);
    let v = evaluate(&inputs_with(
        vec![node_path(
            true,
            vec![node_route("10.244.1.5", "eth0", true)],
            None,
        )],
        kube.clone(),
    ));
    assert!(
        v.rules_fired.contains(&RuleCode::NodeRouteViaDefault),
        "{v:#?}"
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::NodeRouteViaDefault)
        .unwrap();
    assert!(
        f.cause.starts_with("node node-1 sends 10.244.1.5 (pod web-0 on node node-2) by its default route on eth0, not through the overlay (flannel.1)"),
        "{}",
        f.cause
    );
    assert!(
        !v.rules_fired.contains(&RuleCode::NodeRpFilterAsymmetric),
        "no rp_filter reading, no claim: {v:#?}"
    );
    // With a strict rp_filter on the overlay, the replies are named as dropped too.
    let Event::Evidence(Evidence::NodePath(mut strict)) =
        node_path(true, vec![node_route("10.244.1.5", "eth0", true)], None)
    else {
        unreachable!()
    };
    strict.rp_filter = vec![protocol::DeviceSetting {
        dev: "flannel.1".into(),
        value: 1,
    }];
    let v = evaluate(&inputs_with(
        vec![Event::Evidence(Evidence::NodePath(strict))],
        kube.clone(),
    ));
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::NodeRpFilterAsymmetric)
        .unwrap_or_else(|| panic!("{v:#?}"));
    assert!(
        f.cause.starts_with(
            "replies from 10.244.1.5 (on node node-2) reach node node-1 through flannel.1, where \
             rp_filter is strict (1), but the node's route back to 10.244.1.5 leaves by eth0"
        ),
        "{}",
        f.cause
    );
    // Regression: a dotted device's sysctl is spelled with a slash (`flannel.1` is
    // `net.ipv4.conf.flannel/1.rp_filter`); the dot would name another key.
    assert!(
        f.next
            .iter()
            .any(|n| n.contains("net.ipv4.conf.all.rp_filter net.ipv4.conf.flannel/1.rp_filter")),
        "{:?}",
        f.next
    );
    let v = evaluate(&inputs_with(
        vec![node_path(
            true,
            vec![node_route("10.244.1.5", "flannel.1", false)],
            None,
        )],
        kube.clone(),
    ));
    assert!(
        !v.rules_fired.contains(&RuleCode::NodeRouteViaDefault),
        "{v:#?}"
    );
    // A down overlay is not the cluster's path: nothing is concluded from it.
    let v = evaluate(&inputs_with(
        vec![node_path(
            false,
            vec![node_route("10.244.1.5", "eth0", true)],
            None,
        )],
        kube,
    ));
    assert!(
        !v.rules_fired.contains(&RuleCode::NodeRouteViaDefault),
        "{v:#?}"
    );
}

/// The node's conntrack: full is a failure naming the node, 95% a warning, 50% a proven line.
#[test]
fn the_nodes_conntrack_fill_is_judged_and_named() {
    let fill = |count| {
        evaluate(&inputs_with(
            vec![node_path(true, vec![], Some((count, 1000)))],
            kube(),
        ))
    };
    let v = fill(1000);
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::NodeConntrackFull)
        .expect("full");
    assert_eq!(f.severity, netdebug_verdict::Severity::Failure);
    assert!(
        f.cause
            .starts_with("node node-1's conntrack table holds 1000 of 1000 entries (100%)"),
        "{}",
        f.cause
    );
    let v = fill(950);
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::NodeConntrackFull)
        .expect("near");
    assert_eq!(f.severity, netdebug_verdict::Severity::Warning);
    let v = fill(500);
    assert!(
        !v.rules_fired.contains(&RuleCode::NodeConntrackFull),
        "{v:#?}"
    );
    // From node/NAME the conntrack check judges that same table: not judged twice.
    let mut own = inputs_with(vec![node_path(true, vec![], Some((1000, 1000)))], kube());
    own.title.origin = Some(netdebug_verdict::Origin::Node {
        name: "node-1".into(),
        namespace: "default".into(),
        pod_namespace: "default".into(),
    });
    let judged_once = evaluate(&own);
    assert!(
        !judged_once
            .rules_fired
            .contains(&RuleCode::NodeConntrackFull),
        "{judged_once:#?}"
    );
    assert!(
        v.evidence.iter().any(|l| l.text
            == "node node-1 conntrack 500/1000 (50%); insert_failed 3, drop 0, early_drop 0 \
                    since boot"),
        "{v:#?}"
    );
}

/// The node's own count of rp_filter drops during the run is a finding (a warning: a busy
/// node's other traffic counts too), naming the strict devices; no drops, no finding, and the
/// counters line says so.
#[test]
fn rp_filter_drops_counted_on_the_node_are_named() {
    let with_drops = |dropped: u64| {
        let Event::Evidence(Evidence::NodePath(mut n)) = node_path(true, vec![], None) else {
            unreachable!()
        };
        n.rp_filter = vec![protocol::DeviceSetting {
            dev: "flannel.1".into(),
            value: 1,
        }];
        n.counters = Some(protocol::CountersEvidence {
            interval_ms: 120.0,
            counters: std::collections::BTreeMap::from([(
                protocol::Counter::IpReversePathFilter.into(),
                protocol::CounterValue {
                    value: 10 + dropped,
                    delta: dropped,
                },
            )]),
        });
        evaluate(&inputs_with(
            vec![Event::Evidence(Evidence::NodePath(n))],
            kube(),
        ))
    };
    let v = with_drops(4);
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::NodeRpFilterAsymmetric)
        .unwrap_or_else(|| panic!("{v:#?}"));
    assert_eq!(f.severity, netdebug_verdict::Severity::Warning);
    assert!(
        f.cause
            .starts_with("node node-1's reverse-path filter dropped 4 packets during this run")
            && f.cause.ends_with("with rp_filter strict (1 on flannel.1)"),
        "{}",
        f.cause
    );
    let v = with_drops(0);
    assert!(
        !v.rules_fired.contains(&RuleCode::NodeRpFilterAsymmetric),
        "{v:#?}"
    );
    assert!(
        v.evidence
            .iter()
            .any(|l| l.text
                == "node node-1 counters over 120 ms: no drops, discards or rp_filter drops"),
        "{v:#?}"
    );
}

/// The node's half is said unchecked only where a node view could add it: from a pod
/// (`--via-node`). Not from a local namespace, nor when the client did not say where it ran.
#[test]
fn the_nodes_half_is_said_unchecked_only_for_a_pod() {
    let listed = |origin: Option<netdebug_verdict::Origin>| {
        let mut inputs = inputs_with(vec![], kube());
        inputs.title.origin = origin;
        evaluate(&inputs)
            .unchecked
            .iter()
            .any(|u| u.check == "node_path" && u.reason.contains("--via-node"))
    };
    assert!(listed(Some(netdebug_verdict::Origin::Pod {
        namespace: "shop".into(),
        name: "web-0".into(),
    })));
    assert!(!listed(Some(netdebug_verdict::Origin::LocalNetns {
        name: "blue".into(),
    })));
    assert!(!listed(None));
}
