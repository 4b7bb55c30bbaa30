//! A mocked API server for the node view (`node/NAME`): namespace `ops` (its Pod Security
//! level chosen by the test), node `vm` (Ready or not, Linux), and the node probe pod's life:
//! created, started (or its image not pulled), its log, its deletion.

use std::sync::{Arc, Mutex};

use http::Method;
use kubectl_netdebug::error::Error;
use serde_json::{json, Value};

use crate::common::{body_of, run_cli_against, MockApi};

/// How the fake cluster behaves.
#[derive(Clone, Copy)]
pub struct Cluster {
    /// `pod-security.kubernetes.io/enforce` of namespace ops (None: no label).
    pub level: Option<&'static str>,
    pub node_exists: bool,
    pub node_ready: bool,
    /// The kubelet cannot pull the probe image.
    pub image_fails: bool,
    /// When the client starts watching the probe pod, the watch is never answered and the
    /// process gets SIGINT (what Ctrl-C sends).
    pub interrupt: bool,
    /// `pod-security.kubernetes.io/enforce` of namespace shop, where pod `web` runs (the
    /// `--via-node` source).
    pub shop_level: Option<&'static str>,
    /// Pod shop/web is on the host network.
    pub source_host_network: bool,
    /// Node vm's `kubernetes.io/os`.
    pub node_os: &'static str,
    /// The user may not get nodes (a Role in the namespace, no ClusterRole).
    pub nodes_forbidden: bool,
    /// The kubelet refuses the probe pod (phase Failed, OutOfpods) before it runs anything.
    pub kubelet_rejects: bool,
    /// The probe refuses to run (exit 2, its reason as the termination message).
    pub probe_refuses: bool,
}

impl Default for Cluster {
    fn default() -> Cluster {
        Cluster {
            level: None,
            node_exists: true,
            node_ready: true,
            image_fails: false,
            interrupt: false,
            shop_level: None,
            source_host_network: false,
            node_os: "linux",
            nodes_forbidden: false,
            kubelet_rejects: false,
            probe_refuses: false,
        }
    }
}

/// What the fake cluster saw.
#[derive(Default)]
pub struct Seen {
    pub requests: Vec<String>,
    /// The probe pod as created.
    pub created: Option<Value>,
    pub deleted: Vec<String>,
}

/// The UID of pod shop/web.
pub const SOURCE_UID: &str = "0b5c1f2e-1111-2222-3333-444455556666";

fn probe_lines() -> Vec<String> {
    [
        json!({"v":1,"seq":0,"type":"hello","data":{"probe_version":"0.1.0","protocol_minor":5,"netns_inode":4026531840u64,"hostname":"vm","uid":0,"euid":0,"capabilities":["net_raw","net_admin"],"deadline_ms":10000}}),
        json!({"v":1,"seq":1,"type":"check_started","data":{"check":"tcp"}}),
        json!({"v":1,"seq":2,"type":"evidence","data":{"kind":"tcp","target":"10.96.0.10:53","address":"10.96.0.10:53","outcome":"ok","latency_ms":0.8,"local":"192.168.1.10:40000","errno":null,"message":null}}),
        json!({"v":1,"seq":3,"type":"check_finished","data":{"check":"tcp","status":"completed","elapsed_ms":1.0}}),
        json!({"v":1,"seq":4,"type":"done","data":{"elapsed_ms":3.0,"checks_completed":1,"checks_failed":0,"checks_skipped":0,"deadline_exceeded":false}}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

fn probe_pod(name: &str, rv: &str, state: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ops", "resourceVersion": rv},
        "spec": {"nodeName": "vm", "hostNetwork": true, "containers": [{"name": "probe", "image": "probe"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "probe", "image": "probe", "imageID": "", "ready": true, "restartCount": 0,
            "state": state
        }]}
    })
}

async fn fake_cluster(mut api: MockApi, cluster: Cluster, seen: Arc<Mutex<Seen>>) {
    let mut name = String::new();
    let mut held = Vec::new();
    while let Some(call) = api.try_next().await {
        let path = call.path.clone();
        seen.lock()
            .unwrap()
            .requests
            .push(format!("{} {path}", call.method));
        match (call.method.clone(), path.as_str()) {
            (Method::GET, "/api/v1/namespaces/ops") => {
                let labels = match cluster.level {
                    Some(l) => json!({"pod-security.kubernetes.io/enforce": l}),
                    None => json!({}),
                };
                call.reply(200, json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ops","labels":labels}}))
            }
            (Method::GET, "/version") => call.reply(
                200,
                json!({"major": "1", "minor": "30", "gitVersion": "v1.30.0"}),
            ),
            (Method::GET, "/api/v1/namespaces/shop") => {
                let labels = match cluster.shop_level {
                    Some(l) => json!({"pod-security.kubernetes.io/enforce": l}),
                    None => json!({}),
                };
                call.reply(200, json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":labels}}))
            }
            (Method::GET, "/api/v1/namespaces/shop/pods/web") => call.reply(200, json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "namespace": "shop", "uid": SOURCE_UID, "resourceVersion": "7", "labels": {"app": "web"}},
                "spec": {"nodeName": "vm", "hostNetwork": cluster.source_host_network, "containers": [{"name": "app", "image": "nginx"}]},
                "status": {"phase": "Running", "podIP": "10.244.0.7", "containerStatuses": [{
                    "name": "app", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}
            })),
            (Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
                let mut a = call.body.clone();
                let attributes = &a["spec"]["resourceAttributes"];
                let nodes = attributes["resource"] == "nodes";
                // Nodes are cluster-scoped: the review must not name a namespace.
                assert!(!nodes || attributes["namespace"].is_null(), "{attributes}");
                a["status"] = json!({"allowed": !(nodes && cluster.nodes_forbidden)});
                call.reply(201, a);
            }
            (Method::GET, "/api/v1/nodes/vm") if cluster.node_exists => {
                let ready = if cluster.node_ready { "True" } else { "False" };
                call.reply(200, json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"vm","labels":{"kubernetes.io/os":cluster.node_os}},
                    "status":{"conditions":[{"type":"Ready","status":ready,"reason":"KubeletNotReady","message":"container runtime is down"}]}}))
            }
            (Method::POST, "/api/v1/namespaces/ops/pods") => {
                name = call.body["metadata"]["name"].as_str().unwrap().to_string();
                seen.lock().unwrap().created = Some(call.body.clone());
                let mut reply = call.body.clone();
                reply["metadata"]["resourceVersion"] = "201".into();
                call.reply(201, reply);
            }
            (Method::GET, "/api/v1/namespaces/ops/pods") if call.query.contains_key("watch") => {
                if cluster.interrupt {
                    held.push(call);
                    let pid = std::process::id().to_string();
                    let sent = std::process::Command::new("kill").args(["-INT", &pid]).status();
                    assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
                    continue;
                }
                let state = match (cluster.image_fails, cluster.probe_refuses) {
                    (true, _) => json!({"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}),
                    (_, true) => json!({"terminated": {"exitCode": 2, "reason": "Error",
                        "message": "netdebug-probe: pod 0b5c1f2e-1111-2222-3333-444455556666 has processes on this node (pids 4242) but none of their network namespaces holds 10.244.0.7"}}),
                    _ => json!({"running": {}}),
                };
                let mut pod = probe_pod(&name, "202", state);
                if cluster.kubelet_rejects {
                    pod["status"] = json!({"phase": "Failed", "reason": "OutOfpods",
                        "message": "Node didn't have enough resource: pods, requested: 1, used: 110, capacity: 110"});
                }
                let ev = json!({"type": "MODIFIED", "object": pod});
                call.reply_bytes(200, body_of(&[ev.to_string()]));
            }
            (Method::GET, p) if p.ends_with("/log") => {
                assert_eq!(call.query["container"], "probe");
                call.reply_bytes(200, body_of(&probe_lines()));
            }
            (Method::GET, p) if p.starts_with("/api/v1/namespaces/ops/pods/") => call.reply(
                200,
                probe_pod(&name, "203", json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
            ),
            (Method::DELETE, p) if p.starts_with("/api/v1/namespaces/ops/pods/") => {
                seen.lock().unwrap().deleted.push(p.rsplit('/').next().unwrap().to_string());
                call.reply(200, probe_pod(&name, "204", json!({"running": {}})));
            }
            (Method::GET, _) if !call.query.contains_key("watch") && !path.contains("/nodes/") => call.reply(
                200,
                json!({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}),
            ),
            _ => call.reply_status(404, "NotFound", &format!("{path} not found (mock)")),
        }
    }
}

/// `kubectl-netdebug node/vm --to 10.96.0.10:53 -n ops -o json EXTRA` against the fake cluster.
// Each test file compiles this module on its own; the --via-node tests do not use it.
#[allow(dead_code)]
pub async fn run_node(extra: &[&str], cluster: Cluster) -> (Result<i32, Error>, Seen) {
    run_with(&["node/vm", "-n", "ops"], "ops", extra, cluster).await
}

/// `kubectl-netdebug pod/web -n shop --via-node --to 10.96.0.10:53 -o json EXTRA` against
/// the fake cluster.
// Each test file compiles this module on its own; the interrupt test does not use it.
#[allow(dead_code)]
pub async fn run_via_node(extra: &[&str], cluster: Cluster) -> (Result<i32, Error>, Seen) {
    run_with(
        &["pod/web", "--via-node", "-n", "shop"],
        "shop",
        extra,
        cluster,
    )
    .await
}

/// `kubectl-netdebug SOURCE_ARGS --to 10.96.0.10:53 -o json --timeout 20s --image ... EXTRA`.
async fn run_with(
    source: &[&str],
    namespace: &str,
    extra: &[&str],
    cluster: Cluster,
) -> (Result<i32, Error>, Seen) {
    let common = [
        "--to",
        "10.96.0.10:53",
        "-o",
        "json",
        "--timeout",
        "20s",
        "--image",
        "registry.invalid/probe:v0",
    ];
    let argv: Vec<&str> = ["kubectl-netdebug"]
        .iter()
        .chain(source)
        .chain(&common)
        .chain(extra)
        .copied()
        .collect();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let watched = seen.clone();
    let result = run_cli_against(&argv, namespace, move |api| {
        fake_cluster(api, cluster, watched)
    })
    .await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (result, seen)
}
