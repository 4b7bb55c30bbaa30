use super::*;
use serde_json::json;

fn policy(v: serde_json::Value) -> NetworkPolicy {
    serde_json::from_value(v).unwrap()
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod_with_ports(ports: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "dst"},
        "spec": {"containers": [{"name": "api", "ports": ports}]}
    }))
    .unwrap()
}

fn tcp(port: u16) -> PortContext<'static> {
    PortContext {
        port,
        protocol: "TCP",
        destination_pod: None,
    }
}

struct PeerFixture {
    labels: Labels,
    ns: NamespaceLabels,
    namespace: &'static str,
}

impl PeerFixture {
    fn new(namespace: &'static str, labels: &[(&str, &str)], ns: &[(&str, &str)]) -> Self {
        let mut ns_labels = l(ns);
        ns_labels.insert(NAMESPACE_NAME_LABEL.into(), namespace.into());
        PeerFixture {
            labels: l(labels),
            ns: NamespaceLabels::known(ns_labels),
            namespace,
        }
    }

    fn peer(&self, ip: Option<&str>) -> Peer<'_> {
        Peer {
            pod: Some(PeerPod {
                name: "client",
                namespace: self.namespace,
                labels: &self.labels,
                namespace_labels: &self.ns,
            }),
            ip: ip.map(|i| i.parse().unwrap()),
            host: None,
        }
    }
}

fn ingress_only_frontend() -> NetworkPolicy {
    policy(json!({
        "metadata": {"name": "payments-ingress", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "payments"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                         "ports": [{"port": 8443}]}]
        }
    }))
}

#[test]
fn policy_types_default_ingress_always_egress_only_with_rules() {
    let none =
        policy(json!({"metadata": {"name": "a", "namespace": "x"}, "spec": {"podSelector": {}}}));
    assert_eq!(policy_types(&none), [Direction::Ingress].into());
    let with_egress = policy(json!({"metadata": {"name": "a", "namespace": "x"},
        "spec": {"podSelector": {}, "egress": [{}]}}));
    assert_eq!(
        policy_types(&with_egress),
        [Direction::Ingress, Direction::Egress].into()
    );
    let empty_egress_list = policy(json!({"metadata": {"name": "a", "namespace": "x"},
        "spec": {"podSelector": {}, "egress": []}}));
    assert_eq!(
        policy_types(&empty_egress_list),
        [Direction::Ingress].into()
    );
    let egress_only = policy(json!({"metadata": {"name": "a", "namespace": "x"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}));
    assert_eq!(policy_types(&egress_only), [Direction::Egress].into());
}

#[test]
fn selects_by_namespace_labels_and_direction() {
    let p = ingress_only_frontend();
    assert!(selects(
        &p,
        "shop",
        &l(&[("app", "payments")]),
        Direction::Ingress
    ));
    assert!(!selects(
        &p,
        "shop",
        &l(&[("app", "payments")]),
        Direction::Egress
    ));
    assert!(!selects(
        &p,
        "other",
        &l(&[("app", "payments")]),
        Direction::Ingress
    ));
    assert!(!selects(
        &p,
        "shop",
        &l(&[("app", "web")]),
        Direction::Ingress
    ));
    let all = policy(
        json!({"metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}),
    );
    assert!(selects(&all, "shop", &Labels::new(), Direction::Ingress));
}

#[test]
fn deny_names_what_the_policy_admits_and_what_the_source_has() {
    let src = PeerFixture::new(
        "shop",
        &[("app", "checkout"), ("pod-template-hash", "abc")],
        &[],
    );
    let d = decide(
        &[ingress_only_frontend()],
        Direction::Ingress,
        "shop",
        &l(&[("app", "payments")]),
        &src.peer(Some("10.244.0.5")),
        &tcp(8443),
    );
    let Decision::Denied { selecting } = d else {
        panic!("expected a deny, got {d:?}")
    };
    assert_eq!(selecting.len(), 1);
    assert_eq!(selecting[0].policy, "shop/payments-ingress");
    assert_eq!(
        selecting[0].admits_text,
        "pods app=frontend in namespace shop on TCP 8443"
    );
    assert_eq!(
        selecting[0].mismatch,
        "source pod/client in namespace shop has app=checkout"
    );
}

#[test]
fn admit_names_the_admitting_policy_among_several() {
    let src = PeerFixture::new("shop", &[("app", "frontend")], &[]);
    let deny_all = policy(
        json!({"metadata": {"name": "a-deny-all", "namespace": "shop"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    );
    let d = decide(
        &[deny_all, ingress_only_frontend()],
        Direction::Ingress,
        "shop",
        &l(&[("app", "payments")]),
        &src.peer(None),
        &tcp(8443),
    );
    match d {
        Decision::Admitted { by, selecting } => {
            assert_eq!(by, "shop/payments-ingress");
            assert_eq!(selecting.len(), 2);
            assert_eq!(selecting[0].admits_text, "no ingress at all");
        }
        other => panic!("expected admitted, got {other:?}"),
    }
}

#[test]
fn not_isolated_without_a_selecting_policy() {
    let src = PeerFixture::new("shop", &[("app", "x")], &[]);
    let d = decide(
        &[ingress_only_frontend()],
        Direction::Ingress,
        "shop",
        &l(&[("app", "web")]),
        &src.peer(None),
        &tcp(80),
    );
    assert_eq!(d, Decision::NotIsolated);
}

#[test]
fn port_mismatch_is_said_as_such() {
    let src = PeerFixture::new("shop", &[("app", "frontend")], &[]);
    let d = decide(
        &[ingress_only_frontend()],
        Direction::Ingress,
        "shop",
        &l(&[("app", "payments")]),
        &src.peer(None),
        &tcp(8080),
    );
    let Decision::Denied { selecting } = d else {
        panic!("expected deny")
    };
    assert_eq!(selecting[0].mismatch, "the connection is to TCP 8080");
}

#[test]
fn namespace_selector_alone_and_with_pod_selector() {
    let peer_in_team = PeerFixture::new("web", &[("app", "frontend")], &[("team", "web")]);
    let peer_elsewhere = PeerFixture::new("batch", &[("app", "frontend")], &[("team", "batch")]);
    let ns_only = NetworkPolicyPeer {
        namespace_selector: Some(
            serde_json::from_value(json!({"matchLabels": {"team": "web"}})).unwrap(),
        ),
        ..Default::default()
    };
    assert_eq!(
        peer_matches(&ns_only, "shop", &peer_in_team.peer(None)),
        Match::Yes
    );
    assert_eq!(
        peer_matches(&ns_only, "shop", &peer_elsewhere.peer(None)),
        Match::No
    );

    let both = NetworkPolicyPeer {
        namespace_selector: Some(
            serde_json::from_value(json!({"matchLabels": {"team": "web"}})).unwrap(),
        ),
        pod_selector: Some(
            serde_json::from_value(json!({"matchLabels": {"app": "admin"}})).unwrap(),
        ),
        ..Default::default()
    };
    // Right namespace, wrong pod: both must hold.
    assert_eq!(
        peer_matches(&both, "shop", &peer_in_team.peer(None)),
        Match::No
    );

    // A lone podSelector only covers the policy's own namespace.
    let pods_only = NetworkPolicyPeer {
        pod_selector: Some(
            serde_json::from_value(json!({"matchLabels": {"app": "frontend"}})).unwrap(),
        ),
        ..Default::default()
    };
    assert_eq!(
        peer_matches(&pods_only, "shop", &peer_in_team.peer(None)),
        Match::No
    );
    assert_eq!(
        peer_matches(&pods_only, "web", &peer_in_team.peer(None)),
        Match::Yes
    );

    // Empty selectors mean all.
    let all_everywhere = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector::default()),
        pod_selector: Some(LabelSelector::default()),
        ..Default::default()
    };
    assert_eq!(
        peer_matches(&all_everywhere, "shop", &peer_elsewhere.peer(None)),
        Match::Yes
    );
    let all_here = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..Default::default()
    };
    assert_eq!(
        peer_matches(&all_here, "batch", &peer_elsewhere.peer(None)),
        Match::Yes
    );
    assert_eq!(
        peer_matches(&all_here, "shop", &peer_elsewhere.peer(None)),
        Match::No
    );
}

#[test]
fn match_expressions_in_notin_exists_doesnotexist() {
    let peer = PeerFixture::new("shop", &[("app", "frontend"), ("tier", "web")], &[]);
    let check = |exprs: serde_json::Value| {
        let entry = NetworkPolicyPeer {
            pod_selector: Some(serde_json::from_value(json!({"matchExpressions": exprs})).unwrap()),
            ..Default::default()
        };
        peer_matches(&entry, "shop", &peer.peer(None))
    };
    assert_eq!(
        check(json!([{"key": "app", "operator": "In", "values": ["frontend", "admin"]}])),
        Match::Yes
    );
    assert_eq!(
        check(json!([{"key": "app", "operator": "In", "values": ["admin"]}])),
        Match::No
    );
    assert_eq!(
        check(json!([{"key": "app", "operator": "NotIn", "values": ["admin"]}])),
        Match::Yes
    );
    assert_eq!(
        check(json!([{"key": "app", "operator": "NotIn", "values": ["frontend"]}])),
        Match::No
    );
    assert_eq!(
        check(json!([{"key": "missing", "operator": "NotIn", "values": ["x"]}])),
        Match::Yes
    );
    assert_eq!(
        check(json!([{"key": "tier", "operator": "Exists"}])),
        Match::Yes
    );
    assert_eq!(
        check(json!([{"key": "missing", "operator": "Exists"}])),
        Match::No
    );
    assert_eq!(
        check(json!([{"key": "missing", "operator": "DoesNotExist"}])),
        Match::Yes
    );
    assert_eq!(
        check(json!([{"key": "tier", "operator": "DoesNotExist"}])),
        Match::No
    );
    // All requirements must hold.
    assert_eq!(
        check(
            json!([{"key": "tier", "operator": "Exists"}, {"key": "app", "operator": "In", "values": ["admin"]}])
        ),
        Match::No
    );
}

#[test]
fn ip_block_with_except() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let except = vec!["10.244.1.0/24".to_string()];
    assert_eq!(
        ip_block_contains("10.244.0.0/16", Some(&except), ip("10.244.0.9")),
        Match::Yes
    );
    assert_eq!(
        ip_block_contains("10.244.0.0/16", Some(&except), ip("10.244.1.9")),
        Match::No
    );
    assert_eq!(
        ip_block_contains("10.244.0.0/16", None, ip("10.96.0.1")),
        Match::No
    );
    assert_eq!(
        ip_block_contains("fd00:199::/64", None, ip("fd00:199::5")),
        Match::Yes
    );
    assert_eq!(
        ip_block_contains("fd00:199::/64", None, ip("10.244.0.1")),
        Match::No
    );
    // Host bits set are accepted, as the API server does.
    assert_eq!(
        ip_block_contains("10.244.0.7/24", None, ip("10.244.0.1")),
        Match::Yes
    );
    // An ipBlock cannot be judged without the peer's IP.
    let entry = NetworkPolicyPeer {
        ip_block: Some(k8s_openapi::api::networking::v1::IPBlock {
            cidr: "10.244.0.0/16".into(),
            except: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        peer_matches(&entry, "shop", &Peer::default()),
        Match::Unknown
    );
}

#[test]
fn ports_numeric_ranges_named_and_protocol() {
    let port = |v: serde_json::Value| -> NetworkPolicyPort { serde_json::from_value(v).unwrap() };
    assert_eq!(
        port_matches(&port(json!({"port": 80})), &tcp(80)),
        Match::Yes
    );
    assert_eq!(
        port_matches(&port(json!({"port": 80})), &tcp(81)),
        Match::No
    );
    assert_eq!(
        port_matches(&port(json!({"port": 8000, "endPort": 9000})), &tcp(8443)),
        Match::Yes
    );
    assert_eq!(
        port_matches(&port(json!({"port": 8000, "endPort": 9000})), &tcp(9000)),
        Match::Yes
    );
    assert_eq!(
        port_matches(&port(json!({"port": 8000, "endPort": 9000})), &tcp(9001)),
        Match::No
    );
    assert_eq!(
        port_matches(&port(json!({"protocol": "UDP", "port": 53})), &tcp(53)),
        Match::No
    );
    assert_eq!(
        port_matches(&port(json!({"protocol": "TCP"})), &tcp(1)),
        Match::Yes
    );
    assert_eq!(port_matches(&port(json!({})), &tcp(65535)), Match::Yes);

    let dst = pod_with_ports(
        json!([{"name": "https", "containerPort": 8443}, {"name": "dns", "containerPort": 8443, "protocol": "UDP"}]),
    );
    let with_pod = |p: u16| PortContext {
        port: p,
        protocol: "TCP",
        destination_pod: Some(&dst),
    };
    assert_eq!(
        port_matches(&port(json!({"port": "https"})), &with_pod(8443)),
        Match::Yes
    );
    assert_eq!(
        port_matches(&port(json!({"port": "https"})), &with_pod(443)),
        Match::No
    );
    assert_eq!(
        port_matches(&port(json!({"port": "dns"})), &with_pod(8443)),
        Match::No
    );
    assert_eq!(
        port_matches(&port(json!({"port": "metrics"})), &with_pod(8443)),
        Match::No
    );
    // Without the destination pod a named port is unknowable.
    assert_eq!(
        port_matches(&port(json!({"port": "https"})), &tcp(8443)),
        Match::Unknown
    );
}

#[test]
fn egress_rules_with_ip_block_and_unknown_host() {
    let egress = policy(json!({
        "metadata": {"name": "egress-db", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "checkout"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.9.0/24"]}}], "ports": [{"port": 5432}]}]
        }
    }));
    let ip_peer = |s: &str| Peer {
        pod: None,
        ip: Some(s.parse().unwrap()),
        host: None,
    };
    let src = l(&[("app", "checkout")]);
    let admitted = decide(
        std::slice::from_ref(&egress),
        Direction::Egress,
        "shop",
        &src,
        &ip_peer("10.244.2.3"),
        &tcp(5432),
    );
    assert!(
        matches!(admitted, Decision::Admitted { ref by, .. } if by == "shop/egress-db"),
        "{admitted:?}"
    );
    let excepted = decide(
        std::slice::from_ref(&egress),
        Direction::Egress,
        "shop",
        &src,
        &ip_peer("10.244.9.3"),
        &tcp(5432),
    );
    let Decision::Denied { selecting } = excepted else {
        panic!("expected deny")
    };
    assert_eq!(
        selecting[0].admits_text,
        "10.244.0.0/16 except 10.244.9.0/24 on TCP 5432"
    );
    assert_eq!(
        selecting[0].mismatch,
        "destination is 10.244.9.3, not a pod this policy names"
    );
    let host = Peer {
        pod: None,
        ip: None,
        host: Some("db.example.com"),
    };
    let unknown = decide(
        std::slice::from_ref(&egress),
        Direction::Egress,
        "shop",
        &src,
        &host,
        &tcp(5432),
    );
    assert!(
        matches!(unknown, Decision::Undetermined { .. }),
        "{unknown:?}"
    );
}

#[test]
fn incomplete_namespace_labels_make_other_keys_unknown() {
    let labels = l(&[("app", "frontend")]);
    let ns = NamespaceLabels::name_only("web");
    let peer = Peer {
        pod: Some(PeerPod {
            name: "c",
            namespace: "web",
            labels: &labels,
            namespace_labels: &ns,
        }),
        ip: None,
        host: None,
    };
    let by_team = NetworkPolicyPeer {
        namespace_selector: Some(
            serde_json::from_value(json!({"matchLabels": {"team": "web"}})).unwrap(),
        ),
        ..Default::default()
    };
    assert_eq!(peer_matches(&by_team, "shop", &peer), Match::Unknown);
    let by_name = NetworkPolicyPeer {
        namespace_selector: Some(
            serde_json::from_value(json!({"matchLabels": {NAMESPACE_NAME_LABEL: "web"}})).unwrap(),
        ),
        ..Default::default()
    };
    assert_eq!(peer_matches(&by_name, "shop", &peer), Match::Yes);
    let wrong_name_and_team = NetworkPolicyPeer {
        namespace_selector: Some(
            serde_json::from_value(
                json!({"matchLabels": {NAMESPACE_NAME_LABEL: "api", "team": "web"}}),
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    assert_eq!(peer_matches(&wrong_name_and_team, "shop", &peer), Match::No);
}

#[test]
fn empty_rule_admits_everything_and_empty_peer_list_is_every_peer() {
    let allow_all = policy(json!({
        "metadata": {"name": "allow-all", "namespace": "shop"},
        "spec": {"podSelector": {}, "ingress": [{}]}
    }));
    let src = PeerFixture::new("other", &[("x", "y")], &[]);
    let d = decide(
        &[allow_all],
        Direction::Ingress,
        "shop",
        &Labels::new(),
        &src.peer(None),
        &tcp(1234),
    );
    assert!(matches!(d, Decision::Admitted { .. }), "{d:?}");
    assert_eq!(
        describe_rules(&[(None, None)], "shop", Direction::Ingress),
        "every source"
    );
}
