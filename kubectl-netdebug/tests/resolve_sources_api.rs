//! resolve_sources against a mocked API server: which calls it makes (the workload, one pod
//! list with the selector, each distinct node once), which pods it chooses and why the
//! others are skipped.

mod resolve_mock;

mod resolve_sources {
    use kubectl_netdebug::connect::ApiTarget;
    use kubectl_netdebug::error::Error;
    use kubectl_netdebug::resolve::{
        resolve_sources, ChosenSources, SourceKind, SourceSelection, SourcesRequest,
    };
    use netdebug_verdict::sources::SkipReason;
    use serde_json::{json, Value};

    use crate::resolve_mock::{get, list, namespace, not_ready, pod, scenario, status, Exchange};

    const PODS: &str = "/api/v1/namespaces/shop/pods";

    fn target() -> ApiTarget {
        ApiTarget {
            server: "https://127.0.0.1:6443".into(),
            context: "test".into(),
        }
    }

    /// A Running pod of app=web on `node`, Ready or not.
    fn web(name: &str, node: &str, ready: bool) -> Value {
        let mut p = pod("shop", name, json!({"app": "web"}), "10.244.0.9");
        p["spec"]["nodeName"] = json!(node);
        if ready {
            p
        } else {
            not_ready(p)
        }
    }

    fn node(name: &str, os: &str) -> Exchange {
        get(
            &format!("/api/v1/nodes/{name}"),
            json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/os": os}}}),
        )
    }

    fn deployment() -> Exchange {
        get(
            "/apis/apps/v1/namespaces/shop/deployments/web",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app"}]}}}}),
        )
    }

    fn request(selection: SourceSelection) -> SourcesRequest {
        SourcesRequest {
            selection,
            per_node: false,
            max_sources: 20,
            container: None,
        }
    }

    fn deploy_web() -> SourcesRequest {
        request(SourceSelection::Workload {
            kind: SourceKind::Deployment,
            name: "web".into(),
        })
    }

    fn selector(text: &str) -> SourcesRequest {
        request(SourceSelection::Selector(text.into()))
    }

    async fn run(script: Vec<Exchange>, req: SourcesRequest) -> Result<ChosenSources, Error> {
        scenario(script, |c| async move {
            resolve_sources(&c, &target(), "shop", &req).await
        })
        .await
    }

    fn chosen(got: &ChosenSources) -> Vec<&str> {
        got.sources.iter().map(|s| s.info.pod.as_str()).collect()
    }

    fn skipped(got: &ChosenSources) -> Vec<(&str, SkipReason, &str)> {
        got.skipped
            .iter()
            .map(|s| (s.pod.as_str(), s.reason, s.detail.as_str()))
            .collect()
    }

    #[tokio::test]
    async fn workload_all_pods_lists_by_its_selector_and_names_the_pods_not_running() {
        let mut pending = pod("shop", "web-c", json!({"app": "web"}), "");
        pending["status"] = json!({"phase": "Pending"});
        let mut terminating = web("web-d", "node-1", true);
        terminating["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        let got = run(
            vec![
                deployment(),
                list(
                    PODS,
                    Some("app=web"),
                    vec![
                        web("web-b", "node-2", true),
                        pending,
                        web("web-a", "node-1", false),
                        terminating,
                    ],
                ),
                node("node-1", "linux"),
                node("node-2", "linux"),
            ],
            deploy_web(),
        )
        .await
        .unwrap();
        // Ready first, then by name.
        assert_eq!(chosen(&got), vec!["web-b", "web-a"]);
        assert_eq!(
            skipped(&got),
            vec![
                ("web-c", SkipReason::NotRunning, "phase Pending"),
                ("web-d", SkipReason::NotRunning, "terminating"),
            ]
        );
        assert_eq!(got.matched, 4);
        assert_eq!(got.nodes, 2);
        let first = &got.sources[0];
        assert_eq!(first.info.picked_from.as_deref(), Some("deploy/web"));
        assert_eq!(first.info.namespace, "shop");
        assert_eq!(first.info.node.as_deref(), Some("node-2"));
        assert_eq!(first.info.container.as_deref(), Some("app"));
        assert_eq!(first.target_container, "app");
        assert_eq!(got.skipped[0].namespace, "shop");
    }

    #[tokio::test]
    async fn workload_matching_nothing_names_its_selector_and_namespace() {
        let err = run(
            vec![deployment(), list(PODS, Some("app=web"), vec![])],
            deploy_web(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::NoReadyPod { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "deploy/web in namespace \"shop\" has no Ready, Running pod: its selector app=web matches no pod"
        );
    }

    #[tokio::test]
    async fn missing_workload_is_told_apart_from_a_missing_namespace() {
        let err = run(
            vec![
                status(
                    "/apis/apps/v1/namespaces/shop/deployments/web",
                    404,
                    "NotFound",
                    "deployments.apps \"web\" not found",
                ),
                get("/api/v1/namespaces/shop", namespace("shop", json!({}))),
            ],
            deploy_web(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployment \"web\" not found in namespace \"shop\""
        );
    }

    #[tokio::test]
    async fn a_pod_is_not_a_workload_for_all_pods() {
        let err = run(
            vec![],
            request(SourceSelection::Workload {
                kind: SourceKind::Pod,
                name: "web-a".into(),
            }),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains("pod/web-a"), "{err}");
    }

    #[tokio::test]
    async fn selector_lists_pods_of_the_namespace_with_it() {
        let got = run(
            vec![
                list(
                    PODS,
                    Some("app=web,tier!=db"),
                    vec![web("web-1", "node-1", true), web("web-2", "node-1", true)],
                ),
                node("node-1", "linux"),
            ],
            selector(" app = web, tier!=db"),
        )
        .await
        .unwrap();
        assert_eq!(chosen(&got), vec!["web-1", "web-2"]);
        assert!(got.skipped.is_empty());
        assert_eq!((got.matched, got.nodes), (2, 1));
        assert_eq!(
            got.sources[1].info.picked_from.as_deref(),
            Some("-l app=web,tier!=db")
        );
    }

    #[tokio::test]
    async fn malformed_selector_is_refused_before_any_request() {
        for (text, why) in [
            ("app=web,", "stray comma"),
            ("app in (a", "without `)`"),
            ("", "empty"),
        ] {
            let err = run(vec![], selector(text)).await.unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("invalid label selector `{text}`: ")) && msg.contains(why),
                "{msg}"
            );
        }
    }

    #[tokio::test]
    async fn selector_matching_nothing_names_it_and_the_namespace() {
        let err = run(
            vec![
                list(PODS, Some("app=wbe"), vec![]),
                get("/api/v1/namespaces/shop", namespace("shop", json!({}))),
            ],
            selector("app=wbe"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::NoReadyPod { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "label selector app=wbe in namespace \"shop\" has no Ready, Running pod: no pod there matches it"
        );

        // A namespace that does not exist lists empty: that is what is said.
        let err = run(
            vec![
                list(PODS, Some("app=web"), vec![]),
                status(
                    "/api/v1/namespaces/shop",
                    404,
                    "NotFound",
                    "namespaces \"shop\" not found",
                ),
            ],
            selector("app=web"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "namespace \"shop\" not found");
    }

    #[tokio::test]
    async fn per_node_keeps_one_pod_per_node_ready_first() {
        let got = run(
            vec![
                list(
                    PODS,
                    Some("app=web"),
                    vec![
                        web("a", "node-1", false),
                        web("b", "node-1", true),
                        web("c", "node-1", true),
                        web("d", "node-2", false),
                        web("e", "node-2", false),
                    ],
                ),
                node("node-1", "linux"),
                node("node-2", "linux"),
            ],
            SourcesRequest {
                per_node: true,
                ..selector("app=web")
            },
        )
        .await
        .unwrap();
        assert_eq!(chosen(&got), vec!["b", "d"]);
        assert_eq!(
            skipped(&got),
            vec![
                (
                    "c",
                    SkipReason::SameNode,
                    "pod/b is the one for node node-1"
                ),
                (
                    "a",
                    SkipReason::SameNode,
                    "pod/b is the one for node node-1"
                ),
                (
                    "e",
                    SkipReason::SameNode,
                    "pod/d is the one for node node-2"
                ),
            ]
        );
        assert_eq!((got.matched, got.nodes), (5, 2));
        assert_eq!(got.skipped[0].node.as_deref(), Some("node-1"));
    }

    #[tokio::test]
    async fn per_node_with_every_pod_on_one_node_is_one_source() {
        let got = run(
            vec![
                list(
                    PODS,
                    Some("app=web"),
                    vec![
                        web("x", "node-1", true),
                        web("y", "node-1", true),
                        web("z", "node-1", true),
                    ],
                ),
                node("node-1", "linux"),
            ],
            SourcesRequest {
                per_node: true,
                ..selector("app=web")
            },
        )
        .await
        .unwrap();
        assert_eq!(chosen(&got), vec!["x"]);
        assert_eq!((got.matched, got.nodes, got.skipped.len()), (3, 1, 2));
    }

    #[tokio::test]
    async fn cap_keeps_node_diversity() {
        let got = run(
            vec![
                list(
                    PODS,
                    Some("app=web"),
                    vec![
                        web("p1", "node-1", true),
                        web("p2", "node-1", true),
                        web("p3", "node-1", true),
                        web("p4", "node-2", true),
                        web("p5", "node-2", true),
                        web("p6", "node-3", true),
                        web("p7", "node-3", true),
                    ],
                ),
                node("node-1", "linux"),
                node("node-2", "linux"),
                node("node-3", "linux"),
            ],
            SourcesRequest {
                max_sources: 4,
                ..selector("app=web")
            },
        )
        .await
        .unwrap();
        assert_eq!(chosen(&got), vec!["p1", "p2", "p4", "p6"]);
        assert_eq!(got.nodes, 3);
        assert_eq!(
            skipped(&got),
            vec![
                ("p3", SkipReason::OverLimit, "over --max-sources 4"),
                ("p5", SkipReason::OverLimit, "over --max-sources 4"),
                ("p7", SkipReason::OverLimit, "over --max-sources 4"),
            ]
        );
    }

    #[tokio::test]
    async fn windows_node_pods_are_skipped_and_the_node_read_once() {
        let got = run(
            vec![
                list(
                    PODS,
                    Some("app=web"),
                    vec![
                        web("w1", "win-1", true),
                        web("l1", "node-1", true),
                        web("w2", "win-1", true),
                    ],
                ),
                node("node-1", "linux"),
                node("win-1", "windows"),
            ],
            selector("app=web"),
        )
        .await
        .unwrap();
        assert_eq!(chosen(&got), vec!["l1"]);
        assert_eq!(
            skipped(&got),
            vec![
                ("w1", SkipReason::WindowsNode, "node win-1 runs windows"),
                ("w2", SkipReason::WindowsNode, "node win-1 runs windows"),
            ]
        );
        assert_eq!((got.matched, got.nodes), (3, 1));
    }

    #[tokio::test]
    async fn unreadable_node_falls_back_to_what_the_pod_says() {
        let mut w = web("w1", "win-1", true);
        w["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "windows"});
        let got = run(
            vec![
                list(PODS, Some("app=web"), vec![w, web("l1", "node-1", true)]),
                status(
                    "/api/v1/nodes/node-1",
                    403,
                    "Forbidden",
                    "nodes is forbidden",
                ),
                status(
                    "/api/v1/nodes/win-1",
                    403,
                    "Forbidden",
                    "nodes is forbidden",
                ),
            ],
            selector("app=web"),
        )
        .await
        .unwrap();
        assert_eq!(chosen(&got), vec!["l1"]);
        assert_eq!(got.skipped[0].reason, SkipReason::WindowsNode);
    }

    #[tokio::test]
    async fn every_pod_skipped_is_an_error_that_says_why() {
        let mut pending = pod("shop", "web-p", json!({"app": "web"}), "");
        pending["status"] = json!({"phase": "Pending", "containerStatuses": [{"name": "app",
            "image": "img", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff"}}}]});
        let err = run(
            vec![
                deployment(),
                list(
                    PODS,
                    Some("app=web"),
                    vec![
                        pending,
                        web("web-w1", "win-1", true),
                        web("web-w2", "win-1", true),
                    ],
                ),
                node("win-1", "windows"),
            ],
            deploy_web(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "none of the 3 pods of deploy/web in namespace \"shop\" can be probed: \
             1 not running (web-p: phase Pending, container app waiting: ImagePullBackOff); \
             2 on a node that does not run Linux (web-w1: node win-1 runs windows; \
             web-w2: node win-1 runs windows)"
        );
    }

    #[tokio::test]
    async fn container_flag_is_checked_against_every_candidate() {
        let script = || {
            vec![
                list(
                    PODS,
                    Some("app=web"),
                    vec![web("web-1", "node-1", true), web("web-2", "node-1", true)],
                ),
                node("node-1", "linux"),
            ]
        };
        let got = run(
            script(),
            SourcesRequest {
                container: Some("app".into()),
                ..selector("app=web")
            },
        )
        .await
        .unwrap();
        assert!(got.sources.iter().all(|s| s.target_container == "app"));

        let err = run(
            script(),
            SourcesRequest {
                container: Some("sidecar".into()),
                ..selector("app=web")
            },
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("container \"sidecar\" is not in 2 of the 2 pods matching -l app=web that could be probed")
                && msg.contains("web-1 (containers: app)")
                && msg.contains("no pod has it"),
            "{msg}"
        );
    }
}
