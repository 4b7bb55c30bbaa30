//! Request shapes of preflight and injection against a mocked API server.

mod common;

use common::{mock_client, running_pod, target};
use http::Method;
use k8s_openapi::api::core::v1::Pod;
use kubectl_netdebug::error::Error;
use kubectl_netdebug::inject::{inject, ProbeContainer};
use kubectl_netdebug::preflight::{self, required_access};
use kubectl_netdebug::profile::Profile;
use serde_json::json;

#[tokio::test]
async fn server_version_is_read_and_accepted() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, "/version");
        call.reply(200, json!({"major": "1", "minor": "33+", "gitVersion": "v1.33.1", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"}));
    });
    let v = preflight::check_server_version(&client, &target())
        .await
        .unwrap();
    assert_eq!((v.major, v.minor), (1, 33));
    scenario.await.unwrap();
}

/// The forms `/version` takes: plain, decorated by a managed cluster, empty with a good
/// gitVersion (a server built from source), and garbage everywhere.
async fn version_from(major: &str, minor: &str, git: &str) -> Result<(u32, u32), String> {
    let (client, mut api) = mock_client();
    let body = json!({"major": major, "minor": minor, "gitVersion": git, "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"});
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, "/version");
        call.reply(200, body);
    });
    let result = preflight::check_server_version(&client, &target())
        .await
        .map(|v| (v.major, v.minor))
        .map_err(|e| e.to_string());
    scenario.await.unwrap();
    result
}

#[tokio::test]
async fn server_version_forms() {
    assert_eq!(version_from("1", "24", "v1.24.3").await, Ok((1, 24)));
    assert_eq!(
        version_from("1", "24+", "v1.24.3-gke.100").await,
        Ok((1, 24))
    );
    assert_eq!(version_from("", "", "v1.24.0").await, Ok((1, 24)));
    let garbage = version_from("x", "y", "z").await.unwrap_err();
    assert!(
        garbage.contains(r#"major="x" minor="y" gitVersion="z""#),
        "says what was received: {garbage}"
    );
}

#[tokio::test]
async fn old_server_is_refused_plainly() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, "/version");
        call.reply(200, json!({"major": "1", "minor": "22", "gitVersion": "v1.22.17", "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"}));
    });
    let err = preflight::check_server_version(&client, &target())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ServerTooOld { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "the API server runs Kubernetes v1.22.17; ephemeral containers need 1.23 or newer"
        ),
        "{msg}"
    );
    scenario.await.unwrap();
}

#[tokio::test]
async fn unreachable_server_names_url_and_context() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        api.next().await.fail_transport("connection refused");
    });
    let err = preflight::check_server_version(&client, &target())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot reach the API server at https://mock:6443 (context mock): "),
        "{err}"
    );
    assert!(err.contains("connection refused"), "{err}");
    scenario.await.unwrap();
}

/// Every required permission is asked with a SelfSubjectAccessReview of the exact shape; the
/// error names each permission that was denied, with its verb and resource.
#[tokio::test]
async fn rbac_reviews_name_what_is_missing() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let mut asked = Vec::new();
        for _ in 0..6 {
            let call = api.next().await;
            call.assert(
                Method::POST,
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            );
            assert_eq!(call.body["kind"], "SelfSubjectAccessReview");
            assert_eq!(call.body["apiVersion"], "authorization.k8s.io/v1");
            let attrs = call.body["spec"]["resourceAttributes"].clone();
            assert_eq!(attrs["namespace"], "shop");
            let key = format!(
                "{} {}/{}{}",
                attrs["verb"].as_str().unwrap(),
                attrs["group"].as_str().unwrap(),
                attrs["resource"].as_str().unwrap(),
                attrs["subresource"]
                    .as_str()
                    .map(|s| format!("/{s}"))
                    .unwrap_or_default()
            );
            let denied = key == "patch /pods/ephemeralcontainers" || key == "get /pods/log";
            asked.push(key);
            let mut answer = call.body.clone();
            answer["status"] = json!({"allowed": !denied, "reason": if denied { "no RBAC policy matched" } else { "" }});
            call.reply(201, answer);
        }
        asked.sort();
        asked
    });
    let err = preflight::check_rbac(&client, &target(), "shop", &required_access(true))
        .await
        .unwrap_err();
    let asked = scenario.await.unwrap();
    assert_eq!(
        asked,
        [
            "get /pods",
            "get /pods/log",
            "get /services",
            "list discovery.k8s.io/endpointslices",
            "patch /pods/ephemeralcontainers",
            "watch /pods",
        ]
    );
    assert!(matches!(err, Error::PermissionsMissing(_)));
    assert_eq!(
        err.to_string(),
        "RBAC: you may not patch pods/ephemeralcontainers (to inject the probe as an ephemeral \
         container): no RBAC policy matched; nor get pods/log (to stream the probe's output): no \
         RBAC policy matched in namespace shop (context mock); ask for a Role granting it"
    );
}

#[tokio::test]
async fn rbac_without_a_service_destination_asks_only_about_pods() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        for _ in 0..4 {
            let call = api.next().await;
            assert_eq!(call.body["spec"]["resourceAttributes"]["resource"], "pods");
            let mut answer = call.body.clone();
            answer["status"] = json!({"allowed": true});
            call.reply(201, answer);
        }
    });
    preflight::check_rbac(&client, &target(), "shop", &required_access(false))
        .await
        .unwrap();
    scenario.await.unwrap();
}

#[tokio::test]
async fn namespace_labels_found_missing_and_forbidden() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/shop");
        call.reply(200, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}));
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/nope");
        call.reply_status(404, "NotFound", "namespaces \"nope\" not found");
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/locked");
        call.reply_status(403, "Forbidden", "namespaces \"locked\" is forbidden");
    });
    let t = target();
    let labels = preflight::namespace_labels(&client, &t, "shop")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    let err = preflight::namespace_labels(&client, &t, "nope")
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "namespace \"nope\" not found");
    assert_eq!(
        preflight::namespace_labels(&client, &t, "locked")
            .await
            .unwrap(),
        None
    );
    scenario.await.unwrap();
}

#[tokio::test]
async fn windows_node_is_refused() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/nodes/win-1");
        call.reply(200, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "win-1", "labels": {"kubernetes.io/os": "windows"}}}));
        // Nodes not readable: the pod's own nodeSelector decides.
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/nodes/win-1");
        call.reply_status(403, "Forbidden", "nodes \"win-1\" is forbidden");
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/nodes/linux-1");
        call.reply(200, json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "linux-1", "labels": {"kubernetes.io/os": "linux"}}}));
    });
    let t = target();
    let pod: Pod = serde_json::from_value(running_pod("shop", "web", "win-1")).unwrap();
    let err = preflight::check_linux_node(&client, &t, &pod)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("pod \"web\" in namespace \"shop\" runs on windows node win-1; the probe needs a Linux node"),
        "{err}"
    );
    let mut selected = running_pod("shop", "web", "win-1");
    selected["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "windows"});
    let pod: Pod = serde_json::from_value(selected).unwrap();
    assert!(preflight::check_linux_node(&client, &t, &pod)
        .await
        .is_err());
    let pod: Pod = serde_json::from_value(running_pod("shop", "web", "linux-1")).unwrap();
    preflight::check_linux_node(&client, &t, &pod)
        .await
        .unwrap();
    scenario.await.unwrap();
}

fn probe_container(profile: Profile) -> ProbeContainer {
    let mut plan = protocol::Plan::new(vec![protocol::Target {
        label: "svc/payments:443".into(),
        host: "10.96.12.34".into(),
        port: Some(443),
        role: protocol::TargetRole::ClusterIp.into(),
    }]);
    plan.dns.names = vec!["payments.shop.svc.cluster.local".into()];
    ProbeContainer {
        name: "netdebug-a1b2c3".into(),
        target_container: Some("app".into()),
        image: "ghcr.io/netdebug/netdebug-probe:v0.1.0".into(),
        pull_policy: Some("IfNotPresent".into()),
        profile,
        plan,
    }
}

/// The patch is a strategic-merge patch on the ephemeralcontainers subresource whose body adds
/// exactly one container: name, image, pull policy, target container, the security context of
/// the profile, the plan as one argument, no stdin/tty and no resources.
#[tokio::test]
async fn inject_patch_shape() {
    let (client, mut api) = mock_client();
    let container = probe_container(Profile::Restricted);
    let plan_json = serde_json::to_string(&container.plan).unwrap();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(
            Method::PATCH,
            "/api/v1/namespaces/shop/pods/web/ephemeralcontainers",
        );
        assert_eq!(
            call.content_type.as_deref(),
            Some("application/strategic-merge-patch+json")
        );
        assert!(call.query.is_empty(), "unexpected query {:?}", call.query);
        assert_eq!(
            call.body,
            json!({"spec": {"ephemeralContainers": [{
                "name": "netdebug-a1b2c3",
                "image": "ghcr.io/netdebug/netdebug-probe:v0.1.0",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/netdebug-probe", plan_json],
                "targetContainerName": "app",
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534,
                    "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"}
                },
                "stdin": false,
                "tty": false,
                "terminationMessagePolicy": "FallbackToLogsOnError"
            }]}})
        );
        // The plan argument is a valid plan the probe will accept.
        let arg = call.body["spec"]["ephemeralContainers"][0]["command"][1]
            .as_str()
            .unwrap();
        protocol::Plan::from_json(arg).unwrap();
        let mut pod = running_pod("shop", "web", "node-1");
        pod["metadata"]["resourceVersion"] = "101".into();
        call.reply(200, pod);
    });
    let pod = inject(&client, &target(), "shop", "web", &container)
        .await
        .unwrap();
    assert_eq!(pod.metadata.resource_version.as_deref(), Some("101"));
    scenario.await.unwrap();
}

#[tokio::test]
async fn inject_netadmin_adds_capabilities() {
    let (client, mut api) = mock_client();
    let container = probe_container(Profile::NetAdmin);
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        assert_eq!(
            call.body["spec"]["ephemeralContainers"][0]["securityContext"]["capabilities"],
            json!({"add": ["NET_RAW", "NET_ADMIN"], "drop": ["ALL"]})
        );
        call.reply(200, running_pod("shop", "web", "node-1"));
    });
    inject(&client, &target(), "shop", "web", &container)
        .await
        .unwrap();
    scenario.await.unwrap();
}

#[tokio::test]
async fn inject_rejected_by_pod_security_says_why() {
    let (client, mut api) = mock_client();
    let container = probe_container(Profile::NetAdmin);
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.reply_status(
            403,
            "Forbidden",
            "pods \"web\" is forbidden: violates PodSecurity \"baseline:latest\": non-default capabilities (container \"netdebug-a1b2c3\" must not include \"NET_ADMIN\", \"NET_RAW\" in securityContext.capabilities.add)",
        );
    });
    let err = inject(&client, &target(), "shop", "web", &container)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("injecting the probe into pod shop/web failed: pods \"web\" is forbidden: violates PodSecurity"), "{err}");
    assert!(
        err.ends_with("(choose a weaker --profile, e.g. restricted)"),
        "{err}"
    );
    scenario.await.unwrap();
}
