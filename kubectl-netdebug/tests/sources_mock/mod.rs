//! A mocked API server that answers like a small cluster for the many-sources tests: pods
//! `web-1`, `web-2` (node-1) and `web-3` (node-2) labelled app=web in namespace `shop`, plus
//! `web-4` still Pending; every probe reports one healthy connect.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use http::Method;
use kubectl_netdebug::error::Error;
use serde_json::{json, Value};

use crate::common::{body_of, run_cli_against, MockApi};

/// How the fake cluster behaves.
#[derive(Clone, Copy, Default)]
pub struct Cluster {
    /// Pods whose ephemeral containers the user may not patch.
    pub forbidden: &'static [&'static str],
    /// When the client starts watching this pod's probe, the watch is never answered and the
    /// process gets SIGINT (what Ctrl-C sends).
    pub interrupt_at: Option<&'static str>,
}

const PODS: [(&str, &str, &str); 4] = [
    ("web-1", "node-1", "Running"),
    ("web-2", "node-1", "Running"),
    ("web-3", "node-2", "Running"),
    ("web-4", "node-2", "Pending"),
];

fn pod(name: &str, node: &str, phase: &str, rv: &str) -> Value {
    let ip = format!(
        "10.244.0.{}",
        10 + name.trim_start_matches("web-").parse::<u8>().unwrap()
    );
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "resourceVersion": rv, "labels": {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": phase, "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn pod_named(name: &str) -> Value {
    let (n, node, phase) = PODS.iter().find(|p| p.0 == name).unwrap();
    pod(n, node, phase, "100")
}

fn probe_lines(pod: &str) -> Vec<String> {
    [
        json!({"v":1,"seq":0,"type":"hello","data":{"probe_version":"0.1.0","protocol_minor":0,"netns_inode":4026532456u64,"hostname":pod,"uid":65534,"euid":65534,"capabilities":[],"deadline_ms":10000}}),
        json!({"v":1,"seq":1,"type":"check_started","data":{"check":"tcp"}}),
        json!({"v":1,"seq":2,"type":"evidence","data":{"kind":"tcp","target":"10.96.0.10:53","address":"10.96.0.10:53","outcome":"ok","latency_ms":0.8,"local":"10.244.0.7:40000","errno":null,"message":null}}),
        json!({"v":1,"seq":3,"type":"check_finished","data":{"check":"tcp","status":"completed","elapsed_ms":1.0}}),
        json!({"v":1,"seq":4,"type":"done","data":{"elapsed_ms":3.0,"checks_completed":1,"checks_failed":0,"checks_skipped":0,"deadline_exceeded":false}}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

/// What the fake cluster saw.
#[derive(Default)]
pub struct Seen {
    pub requests: Vec<String>,
    /// Pods whose probe was patched in, in order.
    pub patched: Vec<String>,
    /// The most injections in flight at once (patched, not yet reported started).
    pub most_in_flight: usize,
}

/// Serve the client's requests until it is done.
async fn fake_cluster(mut api: MockApi, cluster: Cluster, seen: Arc<Mutex<Seen>>) {
    let forbidden = cluster.forbidden;
    // Calls held unanswered until the client gives up on them.
    let mut held = Vec::new();
    let mut containers: std::collections::BTreeMap<String, String> = Default::default();
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    while let Some(call) = api.try_next().await {
        let path = call.path.clone();
        seen.lock()
            .unwrap()
            .requests
            .push(format!("{} {path}", call.method));
        let pod_of = |p: &str| p.split('/').nth(6).unwrap_or_default().to_string();
        match (call.method.clone(), path.as_str()) {
            (Method::GET, "/version") => call.reply(
                200,
                json!({"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}),
            ),
            (Method::GET, "/api/v1/namespaces/shop") => call.reply(
                200,
                json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"pod-security.kubernetes.io/enforce":"baseline"}}}),
            ),
            (Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
                let mut a = call.body.clone();
                a["status"] = json!({"allowed": true});
                call.reply(201, a);
            }
            (Method::GET, p) if p.starts_with("/api/v1/nodes/") => {
                let name = p.rsplit('/').next().unwrap();
                call.reply(
                    200,
                    json!({"apiVersion":"v1","kind":"Node","metadata":{"name":name,"labels":{"kubernetes.io/os":"linux"}}}),
                )
            }
            (Method::GET, "/api/v1/namespaces/shop/pods")
                if call.query.get("labelSelector").map(String::as_str) == Some("app=web") =>
            {
                let items: Vec<Value> = PODS.iter().map(|(n, node, phase)| pod(n, node, phase, "100")).collect();
                call.reply(200, json!({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"100"},"items":items}))
            }
            (Method::PATCH, p) if p.ends_with("/ephemeralcontainers") => {
                let name = pod_of(p);
                if forbidden.contains(&name.as_str()) {
                    call.reply_status(403, "Forbidden", &format!("pods \"{name}\" is forbidden: User \"dev\" cannot patch resource \"pods/ephemeralcontainers\""));
                    continue;
                }
                let container = call.body["spec"]["ephemeralContainers"][0]["name"].as_str().unwrap().to_string();
                containers.insert(name.clone(), container.clone());
                in_flight.insert(name.clone());
                {
                    let mut s = seen.lock().unwrap();
                    s.patched.push(name.clone());
                    s.most_in_flight = s.most_in_flight.max(in_flight.len());
                }
                let mut reply = pod_named(&name);
                reply["metadata"]["resourceVersion"] = "101".into();
                reply["status"]["ephemeralContainerStatuses"] = json!([{"name": container, "image": "probe", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]);
                call.reply(200, reply);
            }
            (Method::GET, "/api/v1/namespaces/shop/pods") if call.query.contains_key("watch") => {
                let name = call.query["fieldSelector"].trim_start_matches("metadata.name=").to_string();
                if cluster.interrupt_at == Some(name.as_str()) {
                    held.push(call);
                    let pid = std::process::id().to_string();
                    let sent = std::process::Command::new("kill").args(["-INT", &pid]).status();
                    assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
                    continue;
                }
                let container = containers[&name].clone();
                in_flight.remove(&name);
                let mut p = pod_named(&name);
                p["metadata"]["resourceVersion"] = "102".into();
                p["status"]["ephemeralContainerStatuses"] = json!([{"name": container, "image": "probe", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}]);
                let ev = json!({"type":"MODIFIED","object": p});
                call.reply_bytes(200, body_of(&[ev.to_string()]));
            }
            (Method::GET, p) if p.ends_with("/log") => {
                let name = pod_of(p);
                assert_eq!(call.query["container"], containers[&name]);
                call.reply_bytes(200, body_of(&probe_lines(&name)));
            }
            (Method::GET, p) if p.starts_with("/api/v1/namespaces/shop/pods/") => {
                let name = pod_of(p);
                let mut reply = pod_named(&name);
                if let Some(c) = containers.get(&name) {
                    reply["status"]["ephemeralContainerStatuses"] = json!([{"name": c, "image": "probe", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
                }
                call.reply(200, reply)
            }
            (Method::GET, _) if !call.query.contains_key("watch") => call.reply(
                200,
                json!({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}),
            ),
            _ => call.reply_status(404, "NotFound", &format!("{path} not found (mock)")),
        }
    }
}

/// `kubectl-netdebug -l ... --to 10.96.0.10:53 -n shop -o json --stream logs EXTRA` against
/// the fake cluster.
pub async fn run_sources(extra: &[&str], cluster: Cluster) -> (Result<i32, Error>, Seen) {
    let base = [
        "kubectl-netdebug",
        "--to",
        "10.96.0.10:53",
        "-n",
        "shop",
        "-o",
        "json",
        "--timeout",
        "20s",
        "--stream",
        "logs",
        "--image",
        "registry.invalid/probe:v0",
    ];
    let argv: Vec<&str> = base.iter().chain(extra).copied().collect();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let watched = seen.clone();
    let result = run_cli_against(&argv, "shop", move |api| {
        fake_cluster(api, cluster, watched)
    })
    .await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (result, seen)
}
