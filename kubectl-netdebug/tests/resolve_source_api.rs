//! resolve_source against a mocked API server: request shapes and the answers' use.

mod resolve_mock;

mod resolve_source {
    use kubectl_netdebug::error::Error;
    use kubectl_netdebug::resolve::{parse_source, resolve_source};
    use serde_json::json;

    use crate::resolve_mock::{get, list, pod, scenario, status};

    #[tokio::test]
    async fn pod_source_uses_default_container_annotation() {
        let mut p = pod(
            "shop",
            "checkout-1",
            json!({"app": "checkout"}),
            "10.244.0.13",
        );
        p["spec"]["containers"] = json!([{"name": "istio-proxy"}, {"name": "app"}]);
        p["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/default-container": "app"});
        let spec = parse_source("pod/checkout-1").unwrap();
        let got = scenario(
            vec![get("/api/v1/namespaces/shop/pods/checkout-1", p)],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap();
        assert_eq!(got.target_container, "app");
        assert_eq!(got.info.pod, "checkout-1");
        assert_eq!(got.info.namespace, "shop");
        assert_eq!(got.info.picked_from, None);
        assert_eq!(got.info.container.as_deref(), Some("app"));
        assert_eq!(got.info.node.as_deref(), Some("node-1"));
        assert_eq!(got.info.pod_ip.as_deref(), Some("10.244.0.13"));
        assert_eq!(
            got.info.labels.get("app").map(String::as_str),
            Some("checkout")
        );
    }

    #[tokio::test]
    async fn bare_name_defaults_to_first_container_and_container_flag_is_checked() {
        let mut p = pod("shop", "web", json!({}), "10.244.0.2");
        p["spec"]["containers"] = json!([{"name": "nginx"}, {"name": "sidecar"}]);
        let spec = parse_source("web").unwrap();
        let p2 = p.clone();
        let got = scenario(
            vec![get("/api/v1/namespaces/shop/pods/web", p)],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap();
        assert_eq!(got.target_container, "nginx");

        let spec = parse_source("web").unwrap();
        let err = scenario(
            vec![get("/api/v1/namespaces/shop/pods/web", p2)],
            |c| async move { resolve_source(&c, "shop", &spec, Some("api")).await },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "container \"api\" not found in pod \"web\" (containers: nginx, sidecar)"
        );
    }

    #[tokio::test]
    async fn deploy_source_picks_a_ready_running_pod() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "checkout"}},
                "template": {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [{"name": "app"}]}}}});
        let mut pending = pod("shop", "checkout-a", json!({"app": "checkout"}), "");
        pending["status"] = json!({"phase": "Pending"});
        let unready = crate::resolve_mock::not_ready(pod(
            "shop",
            "checkout-b",
            json!({"app": "checkout"}),
            "10.244.0.21",
        ));
        let ready = pod(
            "shop",
            "checkout-c",
            json!({"app": "checkout"}),
            "10.244.0.22",
        );
        let spec = parse_source("deploy/checkout").unwrap();
        let got = scenario(
            vec![
                get("/apis/apps/v1/namespaces/shop/deployments/checkout", deploy),
                list(
                    "/api/v1/namespaces/shop/pods",
                    Some("app=checkout"),
                    vec![ready, pending, unready],
                ),
            ],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap();
        assert_eq!(got.info.pod, "checkout-c");
        assert_eq!(got.info.picked_from.as_deref(), Some("deploy/checkout"));
        assert_eq!(got.target_container, "app");
    }

    #[tokio::test]
    async fn statefulset_with_match_expressions_and_no_ready_pod() {
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"serviceName": "db", "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg"}]}}}});
        let unready = crate::resolve_mock::not_ready(pod(
            "shop",
            "db-0",
            json!({"app": "db"}),
            "10.244.0.30",
        ));
        let spec = parse_source("sts/db").unwrap();
        let err = scenario(
            vec![
                get("/apis/apps/v1/namespaces/shop/statefulsets/db", sts),
                list(
                    "/api/v1/namespaces/shop/pods",
                    Some("app in (db)"),
                    vec![unready],
                ),
            ],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("sts/db in namespace \"shop\" has no Ready, Running pod: 1 pod matched, none Ready: db-0 (Ready=False ContainersNotReady"),
            "{text}"
        );
        assert!(
            text.contains("readiness probe (HTTP GET :https/healthz) has not passed"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn workload_selector_matching_nothing_says_so() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/job-name": "migrate"}},
                "template": {"spec": {"containers": [{"name": "m"}], "restartPolicy": "Never"}}}});
        let spec = parse_source("job/migrate").unwrap();
        let err = scenario(
            vec![
                get("/apis/batch/v1/namespaces/shop/jobs/migrate", job),
                list(
                    "/api/v1/namespaces/shop/pods",
                    Some("batch.kubernetes.io/job-name=migrate"),
                    vec![],
                ),
            ],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "job/migrate in namespace \"shop\" has no Ready, Running pod: its selector batch.kubernetes.io/job-name=migrate matches no pod"
        );
    }

    #[tokio::test]
    async fn unknown_pod_and_unknown_namespace_are_told_apart() {
        let spec = parse_source("pod/nope").unwrap();
        let err = scenario(
            vec![
                status(
                    "/api/v1/namespaces/shop/pods/nope",
                    404,
                    "NotFound",
                    "pods \"nope\" not found",
                ),
                get(
                    "/api/v1/namespaces/shop",
                    crate::resolve_mock::namespace("shop", json!({})),
                ),
            ],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::NotFound { kind: "pod", .. }));
        assert_eq!(
            err.to_string(),
            "pod \"nope\" not found in namespace \"shop\""
        );

        let spec = parse_source("deploy/web").unwrap();
        let err = scenario(
            vec![
                status(
                    "/apis/apps/v1/namespaces/shp/deployments/web",
                    404,
                    "NotFound",
                    "deployments.apps \"web\" not found",
                ),
                status(
                    "/api/v1/namespaces/shp",
                    404,
                    "NotFound",
                    "namespaces \"shp\" not found",
                ),
            ],
            |c| async move { resolve_source(&c, "shp", &spec, None).await },
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "namespace \"shp\" not found");
    }

    #[tokio::test]
    async fn forbidden_is_an_rbac_error_naming_verb_and_resource() {
        let spec = parse_source("pod/x").unwrap();
        let err = scenario(
            vec![status(
                "/api/v1/namespaces/shop/pods/x",
                403,
                "Forbidden",
                "pods \"x\" is forbidden: User \"dev\" cannot get resource \"pods\" in API group \"\" in the namespace \"shop\"",
            )],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("RBAC denied: cannot get pods in namespace \"shop\" (the server said: pods \"x\" is forbidden"),
            "{text}"
        );

        let spec = parse_source("ds/agent").unwrap();
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "ops"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let err = scenario(
            vec![
                get("/apis/apps/v1/namespaces/ops/daemonsets/agent", ds),
                status(
                    "/api/v1/namespaces/ops/pods",
                    403,
                    "Forbidden",
                    "cannot list pods",
                )
                .with_selector("app=agent"),
            ],
            |c| async move { resolve_source(&c, "ops", &spec, None).await },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "RBAC denied: cannot list pods in namespace \"ops\" (the server said: cannot list pods)"
        );
    }

    #[tokio::test]
    async fn other_api_errors_keep_the_call_and_the_status() {
        let spec = parse_source("rs/web-5d8").unwrap();
        let err = scenario(
            vec![status(
                "/apis/apps/v1/namespaces/shop/replicasets/web-5d8",
                500,
                "InternalError",
                "etcdserver: request timed out",
            )],
            |c| async move { resolve_source(&c, "shop", &spec, None).await },
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot get replicasets.apps in namespace \"shop\": etcdserver: request timed out (500 InternalError)"
        );
    }
}
