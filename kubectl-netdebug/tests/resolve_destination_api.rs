//! resolve_destination against a mocked API server: Services with their EndpointSlices and
//! pods, pods, addresses, and NetworkPolicies found through the API.

mod resolve_mock;

mod resolve_destination {
    use kubectl_netdebug::error::Error;
    use kubectl_netdebug::resolve::{
        parse_destination, resolve_destination, ResolvedDestination, ResolvedSource,
    };
    use netdebug_verdict::kube::{DestinationInfo, KubeFinding, KubeFindingCode, Severity};
    use protocol::TargetRole;
    use serde_json::{json, Value};

    use crate::resolve_mock::{
        get, list, namespace, not_ready, pod, scenario, service, slice, status, with_ports,
    };

    const SVC: &str = "/api/v1/namespaces/shop/services";
    const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices";
    const PODS: &str = "/api/v1/namespaces/shop/pods";
    const NETPOLS: &str = "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies";

    /// The source pod `checkout-7d9` in `shop` with `labels`.
    fn source(labels: Value) -> ResolvedSource {
        let p = pod("shop", "checkout-7d9", labels.clone(), "10.244.0.13");
        ResolvedSource {
            pod: serde_json::from_value(p).unwrap(),
            info: netdebug_verdict::kube::SourceInfo {
                namespace: "shop".into(),
                pod: "checkout-7d9".into(),
                picked_from: None,
                container: Some("app".into()),
                node: Some("node-1".into()),
                pod_ip: Some("10.244.0.13".into()),
                labels: serde_json::from_value(labels).unwrap(),
            },
            target_container: "app".into(),
        }
    }

    async fn resolve(
        to: &str,
        src: ResolvedSource,
        script: Vec<crate::resolve_mock::Exchange>,
    ) -> Result<ResolvedDestination, Error> {
        let spec = parse_destination(to).unwrap();
        scenario(script, |c| async move {
            resolve_destination(&c, "shop", &spec, &src).await
        })
        .await
    }

    fn finding(d: &ResolvedDestination, code: KubeFindingCode) -> &KubeFinding {
        d.findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code:?} finding in {:#?}", d.findings))
    }

    fn has(d: &ResolvedDestination, code: KubeFindingCode) -> bool {
        d.findings.iter().any(|f| f.code == code)
    }

    fn payments_svc(target_port: Value) -> Value {
        service(
            "shop",
            "payments",
            json!({
                "type": "ClusterIP", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
                "selector": {"app": "payments"},
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": target_port},
                          {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090}]
            }),
        )
    }

    fn payments_pod(name: &str, ip: &str) -> Value {
        with_ports(
            pod(
                "shop",
                name,
                json!({"app": "payments", "pod-template-hash": "5d8"}),
                ip,
            ),
            json!([{"name": "https", "containerPort": 8443}, {"name": "metrics", "containerPort": 9090}]),
        )
    }

    #[tokio::test]
    async fn service_with_three_endpoints_one_not_ready_and_named_target_port() {
        let ports = json!([{"name": "https", "port": 8443, "protocol": "TCP"}, {"name": "metrics", "port": 9090, "protocol": "TCP"}]);
        let d = resolve(
            "svc/payments:https",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/payments"), payments_svc(json!("https"))),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=payments"),
                    vec![slice(
                        "shop",
                        "payments",
                        ports,
                        &[
                            ("10.244.2.37", "payments-a", true),
                            ("10.244.3.9", "payments-b", true),
                            ("10.244.1.5", "payments-c", false),
                        ],
                    )],
                ),
                list(
                    PODS,
                    Some("app=payments"),
                    vec![
                        payments_pod("payments-a", "10.244.2.37"),
                        payments_pod("payments-b", "10.244.3.9"),
                        not_ready(payments_pod("payments-c", "10.244.1.5")),
                    ],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();

        let labels: Vec<(&str, &str, Option<u16>, TargetRole)> = d
            .targets
            .iter()
            .map(|t| {
                (
                    t.label.as_str(),
                    t.host.as_str(),
                    t.port,
                    t.role.known().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            labels,
            vec![
                (
                    "svc/payments:443",
                    "10.96.12.34",
                    Some(443),
                    TargetRole::ClusterIp
                ),
                (
                    "10.244.2.37:8443",
                    "10.244.2.37",
                    Some(8443),
                    TargetRole::Endpoint
                ),
                (
                    "10.244.3.9:8443",
                    "10.244.3.9",
                    Some(8443),
                    TargetRole::Endpoint
                ),
                (
                    "10.244.1.5:8443",
                    "10.244.1.5",
                    Some(8443),
                    TargetRole::Endpoint
                ),
            ]
        );
        assert_eq!(
            d.dns_names,
            // The name an app in the namespace uses, then the absolute name.
            vec!["payments", "payments.shop.svc.cluster.local."]
        );
        let DestinationInfo::Service(info) = &d.info else {
            panic!("not a service")
        };
        assert_eq!(info.cluster_ip.as_deref(), Some("10.96.12.34"));
        assert_eq!(info.ports.len(), 1, "only the asked port is examined");
        assert_eq!(info.ports[0].target_port, "https");
        assert_eq!(info.endpoints.len(), 3);
        let c = info
            .endpoints
            .iter()
            .find(|e| e.ip == "10.244.1.5")
            .unwrap();
        assert!(!c.ready && !c.serving && !c.terminating);
        assert_eq!(
            (c.pod.as_deref(), c.node.as_deref(), c.port),
            (Some("payments-c"), Some("node-1"), Some(8443))
        );
        // The container that declares the port, so a refusal can name it.
        assert_eq!(c.container.as_deref(), Some("app"));

        let nr = finding(&d, KubeFindingCode::EndpointsNotReady);
        assert_eq!(nr.severity, Severity::Warning);
        assert_eq!(nr.details["ready"], "2");
        assert_eq!(nr.details["total"], "3");
        assert_eq!(nr.details["not_ready_pods"], "payments-c");
        assert!(nr.message.starts_with("1 of 3 endpoints not ready: 10.244.1.5 (pod/payments-c: Ready=False ContainersNotReady"), "{}", nr.message);
        assert!(
            nr.message
                .contains("readiness probe (HTTP GET :https/healthz) has not passed"),
            "{}",
            nr.message
        );
        assert!(!has(&d, KubeFindingCode::TargetPortNotExposed));
        assert!(
            !has(&d, KubeFindingCode::ServiceHealthy),
            "one endpoint is not ready"
        );
        assert!(!has(&d, KubeFindingCode::NetworkPolicyDenies));
    }

    #[tokio::test]
    async fn all_ports_when_none_asked_and_healthy_summary() {
        let ports = json!([{"name": "https", "port": 8443, "protocol": "TCP"}, {"name": "metrics", "port": 9090, "protocol": "TCP"}]);
        let d = resolve(
            "svc/payments",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/payments"), payments_svc(json!("https"))),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=payments"),
                    vec![slice(
                        "shop",
                        "payments",
                        ports,
                        &[("10.244.2.37", "payments-a", true)],
                    )],
                ),
                list(
                    PODS,
                    Some("app=payments"),
                    vec![payments_pod("payments-a", "10.244.2.37")],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let labels: Vec<&str> = d.targets.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "svc/payments:443",
                "svc/payments:9090",
                "10.244.2.37:8443",
                "10.244.2.37:9090"
            ]
        );
        let ok = finding(&d, KubeFindingCode::ServiceHealthy);
        assert_eq!(ok.message, "port 443 -> targetPort https (8443, container app); port 9090 -> targetPort 9090 (container app)");
    }

    #[tokio::test]
    async fn named_target_port_no_container_defines_is_a_failure() {
        // The EndpointSlice controller publishes the pods without a port for that name.
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/payments"), payments_svc(json!("https"))),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=payments"),
                    vec![slice(
                        "shop",
                        "payments",
                        json!([]),
                        &[("10.244.2.37", "payments-a", true)],
                    )],
                ),
                list(
                    PODS,
                    Some("app=payments"),
                    vec![with_ports(
                        pod(
                            "shop",
                            "payments-a",
                            json!({"app": "payments"}),
                            "10.244.2.37",
                        ),
                        json!([{"name": "http", "containerPort": 8080}]),
                    )],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::TargetPortNotExposed);
        assert_eq!(f.severity, Severity::Failure);
        assert_eq!(
            f.message,
            "svc/payments port 443 targets port name \"https\" (TCP), which no container of its pods defines: the containers declare 8080/TCP (http) in app"
        );
        assert_eq!(f.details["container_ports"], "8080/TCP (http) in app");
        // No port for the endpoint: only the ClusterIP can be probed.
        let labels: Vec<&str> = d.targets.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, vec!["svc/payments:443"]);
        assert!(!has(&d, KubeFindingCode::ServiceHealthy));
    }

    #[tokio::test]
    async fn numeric_target_port_not_declared_is_a_warning_only_when_ports_are_declared() {
        let ports = json!([{"name": "https", "port": 9443, "protocol": "TCP"}]);
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/payments"), payments_svc(json!(9443))),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=payments"),
                    vec![slice(
                        "shop",
                        "payments",
                        ports.clone(),
                        &[("10.244.2.37", "payments-a", true)],
                    )],
                ),
                list(
                    PODS,
                    Some("app=payments"),
                    vec![payments_pod("payments-a", "10.244.2.37")],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::TargetPortNotExposed);
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.message.starts_with("svc/payments port 443 targets port 9443/TCP, which no container of its pods declares"), "{}", f.message);
        assert!(d.targets.iter().any(|t| t.label == "10.244.2.37:9443"));

        // Pods that declare no ports at all: nothing to say.
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/payments"), payments_svc(json!(9443))),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=payments"),
                    vec![slice(
                        "shop",
                        "payments",
                        ports,
                        &[("10.244.2.37", "payments-a", true)],
                    )],
                ),
                list(
                    PODS,
                    Some("app=payments"),
                    vec![pod(
                        "shop",
                        "payments-a",
                        json!({"app": "payments"}),
                        "10.244.2.37",
                    )],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        assert!(!has(&d, KubeFindingCode::TargetPortNotExposed));
        assert!(has(&d, KubeFindingCode::ServiceHealthy));
    }

    #[tokio::test]
    async fn service_without_selector() {
        let d = resolve(
            "svc/legacy-db.shop:5432",
            source(json!({"app": "checkout"})),
            vec![
                get(
                    &format!("{SVC}/legacy-db"),
                    service(
                        "shop",
                        "legacy-db",
                        json!({
                    "clusterIP": "10.96.40.1", "ports": [{"port": 5432, "targetPort": 5432}]}),
                    ),
                ),
                list(SLICES, Some("kubernetes.io/service-name=legacy-db"), vec![]),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::ServiceWithoutSelector);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.message, "svc/legacy-db has no selector and its EndpointSlices list no endpoint: nothing manages its endpoints");
        assert_eq!(
            finding(&d, KubeFindingCode::NoEndpoints).message,
            "svc/legacy-db has no endpoints"
        );
        assert!(!has(&d, KubeFindingCode::SelectorMatchesNoPod));
        assert_eq!(d.targets.len(), 1);
        assert_eq!(d.targets[0].role, TargetRole::ClusterIp);
    }

    #[tokio::test]
    async fn selector_matching_no_pod_names_the_closest_labels() {
        let svc = service(
            "shop",
            "payments",
            json!({
            "clusterIP": "10.96.12.34", "selector": {"app": "payments", "tier": "api"},
            "ports": [{"port": 443, "targetPort": 8443}]}),
        );
        let d = resolve(
            "svc/payments",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/payments"), svc),
                list(SLICES, Some("kubernetes.io/service-name=payments"), vec![]),
                list(PODS, Some("app=payments,tier=api"), vec![]),
                list(
                    PODS,
                    None,
                    vec![
                        pod(
                            "shop",
                            "checkout-7d9",
                            json!({"app": "checkout"}),
                            "10.244.0.13",
                        ),
                        pod(
                            "shop",
                            "payment-6f4-x",
                            json!({"app": "payment", "tier": "api", "pod-template-hash": "6f4"}),
                            "10.244.0.14",
                        ),
                        pod("shop", "redis-0", json!({"tier": "cache"}), "10.244.0.15"),
                    ],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::SelectorMatchesNoPod);
        assert_eq!(f.severity, Severity::Failure);
        assert_eq!(f.details["selector"], "app=payments,tier=api");
        assert_eq!(f.details["closest_labels"], "app=payment,tier=api");
        assert_eq!(f.details["closest_pod"], "payment-6f4-x");
        assert_eq!(
            f.message,
            "svc/payments selector app=payments,tier=api matches no pod in namespace shop; the closest is pod/payment-6f4-x with app=payment,tier=api (1 of 2 selector labels match)"
        );
        assert!(has(&d, KubeFindingCode::NoEndpoints));
    }

    #[tokio::test]
    async fn headless_service_targets_endpoints_only() {
        let svc = service(
            "shop",
            "db",
            json!({
            "clusterIP": "None", "selector": {"app": "db"},
            "ports": [{"name": "pg", "port": 5432, "targetPort": 5432}]}),
        );
        let ports = json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]);
        let d = resolve(
            "svc/db",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/db"), svc),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=db"),
                    vec![slice(
                        "shop",
                        "db",
                        ports,
                        &[("10.244.4.1", "db-0", true), ("10.244.4.2", "db-1", true)],
                    )],
                ),
                list(
                    PODS,
                    Some("app=db"),
                    vec![
                        pod("shop", "db-0", json!({"app": "db"}), "10.244.4.1"),
                        pod("shop", "db-1", json!({"app": "db"}), "10.244.4.2"),
                    ],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let roles: Vec<(&str, TargetRole)> = d
            .targets
            .iter()
            .map(|t| (t.label.as_str(), t.role.known().unwrap()))
            .collect();
        assert_eq!(
            roles,
            vec![
                ("10.244.4.1:5432", TargetRole::Endpoint),
                ("10.244.4.2:5432", TargetRole::Endpoint)
            ]
        );
        let f = finding(&d, KubeFindingCode::HeadlessService);
        assert!(
            f.message.contains("no ClusterIP translation"),
            "{}",
            f.message
        );
        let DestinationInfo::Service(info) = &d.info else {
            panic!()
        };
        assert!(info.headless);
        assert_eq!(info.cluster_ip, None);
    }

    #[tokio::test]
    async fn external_name_service_is_a_cname_target() {
        let svc = service(
            "shop",
            "billing",
            json!({"type": "ExternalName", "externalName": "billing.example.com"}),
        );
        let d = resolve(
            "svc/billing:443",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/billing"), svc),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        assert_eq!(d.targets.len(), 1);
        let t = &d.targets[0];
        assert_eq!(
            (
                t.label.as_str(),
                t.host.as_str(),
                t.port,
                t.role.known().unwrap()
            ),
            (
                "svc/billing:443",
                "billing.example.com",
                Some(443),
                TargetRole::Direct
            )
        );
        let f = finding(&d, KubeFindingCode::ExternalNameService);
        assert!(f.message.starts_with("svc/billing is ExternalName: billing.shop.svc.cluster.local is a CNAME to billing.example.com"), "{}", f.message);
        assert_eq!(
            d.dns_names,
            vec!["billing", "billing.shop.svc.cluster.local."]
        );
    }

    #[tokio::test]
    async fn other_namespace_service_is_looked_up_as_name_dot_namespace() {
        let svc = service(
            "pay",
            "api",
            json!({"type": "ExternalName", "externalName": "api.example.com"}),
        );
        let spec = parse_destination("svc/api.pay:443").unwrap();
        let src = source(json!({"app": "checkout"}));
        let d = scenario(
            vec![
                get("/api/v1/namespaces/pay/services/api", svc),
                list(NETPOLS, None, vec![]),
            ],
            |c| async move { resolve_destination(&c, "shop", &spec, &src).await },
        )
        .await
        .unwrap();
        // An app in `shop` reaches it as `api.pay` (the search list completes it).
        assert_eq!(d.dns_names, vec!["api.pay", "api.pay.svc.cluster.local."]);
    }

    #[tokio::test]
    async fn unknown_service_and_unknown_port() {
        let err = resolve(
            "svc/nope",
            source(json!({})),
            vec![
                status(
                    &format!("{SVC}/nope"),
                    404,
                    "NotFound",
                    "services \"nope\" not found",
                ),
                get("/api/v1/namespaces/shop", namespace("shop", json!({}))),
            ],
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "service \"nope\" not found in namespace \"shop\""
        );

        let err = resolve(
            "svc/payments:8080",
            source(json!({})),
            vec![get(
                &format!("{SVC}/payments"),
                payments_svc(json!("https")),
            )],
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "service \"payments\" in namespace \"shop\" has no port 8080 (its ports: 443/TCP (https), 9090/TCP (metrics))"
        );
    }

    #[tokio::test]
    async fn forbidden_endpointslices_is_an_rbac_error() {
        let err = resolve(
            "svc/payments",
            source(json!({})),
            vec![
                get(&format!("{SVC}/payments"), payments_svc(json!("https"))),
                status(
                    SLICES,
                    403,
                    "Forbidden",
                    "endpointslices.discovery.k8s.io is forbidden",
                )
                .with_selector("kubernetes.io/service-name=payments"),
            ],
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "RBAC denied: cannot list endpointslices.discovery.k8s.io in namespace \"shop\" (the server said: endpointslices.discovery.k8s.io is forbidden)"
        );
    }

    fn payments_ingress_policy() -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "payments-ingress", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "payments"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"port": "https"}]}]}})
    }

    fn one_endpoint_script(policies: Vec<Value>) -> Vec<crate::resolve_mock::Exchange> {
        let ports = json!([{"name": "https", "port": 8443, "protocol": "TCP"}]);
        vec![
            get(&format!("{SVC}/payments"), payments_svc(json!("https"))),
            list(
                SLICES,
                Some("kubernetes.io/service-name=payments"),
                vec![slice(
                    "shop",
                    "payments",
                    ports,
                    &[("10.244.2.37", "payments-a", true)],
                )],
            ),
            list(
                PODS,
                Some("app=payments"),
                vec![payments_pod("payments-a", "10.244.2.37")],
            ),
            // Egress at the source first (read once: the same namespace), then ingress at the
            // destination pod, which needs the source namespace's labels.
            list(NETPOLS, None, policies),
            get("/api/v1/namespaces/shop", namespace("shop", json!({}))),
        ]
    }

    #[tokio::test]
    async fn network_policy_denies_naming_what_it_admits() {
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "checkout"})),
            one_endpoint_script(vec![payments_ingress_policy()]),
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::NetworkPolicyDenies);
        assert_eq!(f.severity, Severity::Failure);
        assert_eq!(f.object, "networkpolicy/shop/payments-ingress");
        assert_eq!(f.details["direction"], "ingress");
        assert_eq!(f.details["namespace"], "shop");
        assert_eq!(f.details["policy"], "shop/payments-ingress");
        assert_eq!(
            f.message,
            "networkpolicy/shop/payments-ingress admits only pods app=frontend in namespace shop on TCP https; source pod/checkout-7d9 in namespace shop has app=checkout; so ingress pod/checkout-7d9 -> pod/payments-a:8443 is not admitted"
        );
        assert!(!has(&d, KubeFindingCode::NetworkPolicyAdmits));
    }

    #[tokio::test]
    async fn network_policy_admits_naming_the_policy() {
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "frontend"})),
            one_endpoint_script(vec![payments_ingress_policy()]),
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::NetworkPolicyAdmits);
        assert_eq!(f.object, "networkpolicy/shop/payments-ingress");
        assert_eq!(
            f.message,
            "networkpolicy/shop/payments-ingress admits pod/checkout-7d9 -> pod/payments-a:8443 (ingress; it admits pods app=frontend in namespace shop on TCP https)"
        );
        assert!(!has(&d, KubeFindingCode::NetworkPolicyDenies));
    }

    #[tokio::test]
    async fn egress_policy_on_the_source_toward_another_namespace() {
        let egress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "checkout-egress", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "checkout"}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "payments"}}}]}]}});
        let spec = parse_destination("pod/api-0.pay:8080").unwrap();
        let src = source(json!({"app": "checkout"}));
        let d = scenario(
            vec![
                get(
                    "/api/v1/namespaces/pay/pods/api-0",
                    pod("pay", "api-0", json!({"app": "api"}), "10.244.5.5"),
                ),
                list(NETPOLS, None, vec![egress]),
                get(
                    "/api/v1/namespaces/pay",
                    namespace("pay", json!({"team": "billing"})),
                ),
                list(
                    "/apis/networking.k8s.io/v1/namespaces/pay/networkpolicies",
                    None,
                    vec![],
                ),
            ],
            |c| async move { resolve_destination(&c, "shop", &spec, &src).await },
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::NetworkPolicyDenies);
        assert_eq!(f.details["direction"], "egress");
        assert_eq!(
            f.message,
            "networkpolicy/shop/checkout-egress admits only all pods in namespaces team=payments; destination pod/api-0 in namespace pay has app=api; so egress pod/checkout-7d9 -> pod/api-0:8080 is not admitted"
        );
        assert_eq!(d.targets[0].label, "pod/api-0:8080");
        assert_eq!(d.targets[0].host, "10.244.5.5");
        assert_eq!(d.targets[0].role, TargetRole::Pod);
    }

    #[tokio::test]
    async fn unreadable_network_policies_are_said_not_fatal() {
        let mut script = one_endpoint_script(vec![]);
        script.truncate(3);
        script.push(status(
            NETPOLS,
            403,
            "Forbidden",
            "networkpolicies.networking.k8s.io is forbidden",
        ));
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "checkout"})),
            script,
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::NetworkPolicyUndetermined);
        assert!(f.message.starts_with("NetworkPolicies in namespace shop were not evaluated (egress side): RBAC denied: cannot list networkpolicies.networking.k8s.io"), "{}", f.message);
        // Read once: the ingress side reports the same failure without a second request.
        assert_eq!(
            d.findings
                .iter()
                .filter(|f| f.code == KubeFindingCode::NetworkPolicyUndetermined)
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn pod_destination_ready_and_not_running() {
        let d = resolve(
            "pod/web-1:8080",
            source(json!({"app": "checkout"})),
            vec![
                get(
                    &format!("{PODS}/web-1"),
                    not_ready(pod("shop", "web-1", json!({"app": "web"}), "10.244.0.40")),
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let DestinationInfo::Pod(p) = &d.info else {
            panic!()
        };
        assert_eq!(
            (p.ip.as_deref(), p.port, p.ready),
            (Some("10.244.0.40"), Some(8080), false)
        );
        let f = finding(&d, KubeFindingCode::DestinationPodNotReady);
        assert!(
            f.message.starts_with(
                "pod/web-1 in namespace shop is not Ready: Ready=False ContainersNotReady"
            ),
            "{}",
            f.message
        );

        let mut pending = pod("shop", "web-2", json!({}), "");
        pending["status"] = json!({"phase": "Pending", "containerStatuses": [{"name": "app", "image": "img", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"img\""}}}]});
        let err = resolve(
            "pod/web-2:8080",
            source(json!({})),
            vec![get(&format!("{PODS}/web-2"), pending)],
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "pod \"web-2\" in namespace \"shop\" is not running (phase Pending, container app waiting: ImagePullBackOff: Back-off pulling image \"img\")"
        );
    }

    #[tokio::test]
    async fn pod_destination_without_port_uses_its_only_declared_port() {
        let d = resolve(
            "pod/web-1",
            source(json!({"app": "checkout"})),
            vec![
                get(
                    &format!("{PODS}/web-1"),
                    with_ports(
                        pod("shop", "web-1", json!({"app": "web"}), "10.244.0.40"),
                        json!([{"containerPort": 8080}]),
                    ),
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        assert_eq!(d.targets[0].label, "pod/web-1:8080");
        assert!(d.findings.is_empty(), "{:?}", d.findings);
    }

    #[tokio::test]
    async fn address_destinations_are_direct_and_egress_ip_blocks_are_evaluated() {
        let egress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "to-db-subnet", "namespace": "shop"},
            "spec": {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.9.0/24"]}}], "ports": [{"port": 5000, "endPort": 6000}]}]}});
        let d = resolve(
            "10.244.2.37:5432",
            source(json!({"app": "checkout"})),
            vec![list(NETPOLS, None, vec![egress.clone()])],
        )
        .await
        .unwrap();
        assert_eq!(d.targets.len(), 1);
        assert_eq!(
            (
                d.targets[0].label.as_str(),
                d.targets[0].role.known().unwrap()
            ),
            ("10.244.2.37:5432", TargetRole::Direct)
        );
        assert!(d.dns_names.is_empty());
        let f = finding(&d, KubeFindingCode::NetworkPolicyAdmits);
        assert_eq!(f.object, "networkpolicy/shop/to-db-subnet");

        let d = resolve(
            "10.244.9.7:5432",
            source(json!({"app": "checkout"})),
            vec![list(NETPOLS, None, vec![egress])],
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::NetworkPolicyDenies);
        assert_eq!(
            f.message,
            "networkpolicy/shop/to-db-subnet admits only 10.244.0.0/16 except 10.244.9.0/24 on TCP 5000-6000; destination is 10.244.9.7, not a pod this policy names; so egress pod/checkout-7d9 -> 10.244.9.7:5432 is not admitted"
        );

        let d = resolve(
            "db.example.com:5432",
            source(json!({})),
            vec![list(NETPOLS, None, vec![])],
        )
        .await
        .unwrap();
        assert_eq!(d.dns_names, vec!["db.example.com"]);
        assert_eq!(d.targets[0].host, "db.example.com");
        assert!(d.findings.is_empty());
    }

    fn default_deny_egress_except(to: Value) -> Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "checkout-egress", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "checkout"}}, "policyTypes": ["Egress"], "egress": to}})
    }

    fn dns_pod() -> Value {
        with_ports(
            pod(
                "kube-system",
                "coredns-1",
                json!({"k8s-app": "kube-dns"}),
                "10.244.0.2",
            ),
            json!([{"name": "dns", "containerPort": 53, "protocol": "UDP"}, {"name": "dns-tcp", "containerPort": 53}]),
        )
    }

    #[tokio::test]
    async fn egress_isolated_source_without_dns_is_reported_apart() {
        // Egress only to the payments pods: the Service connect is admitted, DNS is not.
        let rules = json!([{"to": [{"podSelector": {"matchLabels": {"app": "payments"}}}]}]);
        let mut script = one_endpoint_script(vec![]);
        script.truncate(3);
        script.extend([
            list(NETPOLS, None, vec![default_deny_egress_except(rules)]),
            get("/api/v1/namespaces/shop", namespace("shop", json!({}))),
            list(
                "/api/v1/namespaces/kube-system/pods",
                Some("k8s-app=kube-dns"),
                vec![dns_pod()],
            ),
            get(
                "/api/v1/namespaces/kube-system",
                namespace("kube-system", json!({})),
            ),
        ]);
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "checkout"})),
            script,
        )
        .await
        .unwrap();
        let admits = finding(&d, KubeFindingCode::NetworkPolicyAdmits);
        assert_eq!(admits.details["direction"], "egress");
        assert!(
            !has(&d, KubeFindingCode::NetworkPolicyDenies),
            "{:#?}",
            d.findings
        );
        let dns = finding(&d, KubeFindingCode::NetworkPolicyDeniesDns);
        assert_eq!(dns.severity, Severity::Failure);
        assert_eq!(
            dns.message,
            "networkpolicy/shop/checkout-egress admits only pods app=payments in namespace shop; destination pod/coredns-1 in namespace kube-system has no app label; so pod/checkout-7d9 cannot reach cluster DNS (kube-system/coredns-1 on UDP 53): name lookups will time out"
        );
    }

    #[tokio::test]
    async fn egress_isolated_source_with_dns_allowed() {
        let rules = json!([
            {"to": [{"podSelector": {"matchLabels": {"app": "payments"}}}]},
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                     "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
             "ports": [{"port": "dns", "protocol": "UDP"}]}
        ]);
        let mut script = one_endpoint_script(vec![]);
        script.truncate(3);
        script.extend([
            list(NETPOLS, None, vec![default_deny_egress_except(rules)]),
            get("/api/v1/namespaces/shop", namespace("shop", json!({}))),
            list(
                "/api/v1/namespaces/kube-system/pods",
                Some("k8s-app=kube-dns"),
                vec![dns_pod()],
            ),
            get(
                "/api/v1/namespaces/kube-system",
                namespace("kube-system", json!({})),
            ),
        ]);
        let d = resolve(
            "svc/payments:443",
            source(json!({"app": "checkout"})),
            script,
        )
        .await
        .unwrap();
        assert!(
            !has(&d, KubeFindingCode::NetworkPolicyDeniesDns),
            "{:#?}",
            d.findings
        );
        let dns_ok = d
            .findings
            .iter()
            .find(|f| f.code == KubeFindingCode::NetworkPolicyAdmits && f.message.contains("DNS"))
            .expect("a DNS admit");
        assert_eq!(dns_ok.message, "networkpolicy/shop/checkout-egress admits DNS from pod/checkout-7d9 to kube-system/coredns-1 on UDP 53 (egress)");
    }

    #[tokio::test]
    async fn hand_managed_endpoints_and_a_portless_headless_service() {
        let svc = service(
            "shop",
            "legacy-db",
            json!({"clusterIP": "10.96.40.1", "ports": [{"name": "pg", "port": 5432, "targetPort": 5432}]}),
        );
        let ports = json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]);
        let d = resolve(
            "svc/legacy-db",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/legacy-db"), svc),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=legacy-db"),
                    vec![slice(
                        "shop",
                        "legacy-db",
                        ports,
                        &[("10.244.0.60", "db-manual", true)],
                    )],
                ),
                // The endpoint's pod, read for its ports and labels.
                get(
                    &format!("{PODS}/db-manual"),
                    pod("shop", "db-manual", json!({"role": "db"}), "10.244.0.60"),
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        let f = finding(&d, KubeFindingCode::ServiceWithoutSelector);
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.message, "svc/legacy-db has no selector: its 1 endpoint(s) are managed by hand or by another controller");
        let labels: Vec<&str> = d.targets.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, vec!["svc/legacy-db:5432", "10.244.0.60:5432"]);
        assert!(has(&d, KubeFindingCode::ServiceHealthy));

        let svc = service(
            "shop",
            "peers",
            json!({"clusterIP": "None", "selector": {"app": "peer"}}),
        );
        let d = resolve(
            "svc/peers",
            source(json!({"app": "checkout"})),
            vec![
                get(&format!("{SVC}/peers"), svc),
                list(
                    SLICES,
                    Some("kubernetes.io/service-name=peers"),
                    vec![slice(
                        "shop",
                        "peers",
                        json!([]),
                        &[("10.244.0.70", "peer-0", true)],
                    )],
                ),
                list(
                    PODS,
                    Some("app=peer"),
                    vec![pod("shop", "peer-0", json!({"app": "peer"}), "10.244.0.70")],
                ),
                list(NETPOLS, None, vec![]),
            ],
        )
        .await
        .unwrap();
        assert_eq!(d.targets.len(), 1);
        assert_eq!(
            (
                d.targets[0].label.as_str(),
                d.targets[0].port,
                d.targets[0].role.known().unwrap()
            ),
            ("10.244.0.70", None, TargetRole::Endpoint)
        );
        assert_eq!(
            finding(&d, KubeFindingCode::ServiceHealthy).message,
            "the Service defines no ports"
        );
    }
}
