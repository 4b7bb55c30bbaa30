//! A mocked API server for resolution tests, the kube-rs way: a `tower_test` service pair
//! behind a real `kube::Client`. A scenario is the ordered list of requests the client must
//! make (method, path, label selector) with the answer to each; the scenario task asserts
//! every request, and after the call no further request may arrive.

#![allow(dead_code)] // each test binary uses a different part of this helper

use std::collections::BTreeMap;
use std::future::Future;

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request and its answer.
pub struct Exchange {
    pub method: Method,
    pub path: String,
    /// Expected query parameters (others, like kube's empty `&`, are ignored).
    pub query: Vec<(String, String)>,
    /// Query parameters that must be absent.
    pub absent: Vec<String>,
    pub status: u16,
    pub body: Value,
}

pub fn get(path: &str, body: Value) -> Exchange {
    Exchange {
        method: Method::GET,
        path: path.to_string(),
        query: Vec::new(),
        absent: vec!["labelSelector".into()],
        status: 200,
        body,
    }
}

/// A list call: expects `labelSelector` exactly when `selector` is Some.
pub fn list(path: &str, selector: Option<&str>, items: Vec<Value>) -> Exchange {
    let mut e = get(
        path,
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
    );
    if let Some(s) = selector {
        e.absent.clear();
        e.query.push(("labelSelector".into(), s.into()));
    }
    e
}

/// A Kubernetes `Status` failure for `path`.
pub fn status(path: &str, code: u16, reason: &str, message: &str) -> Exchange {
    let mut e = get(
        path,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code
        }),
    );
    e.status = code;
    e.absent.clear();
    e
}

impl Exchange {
    pub fn with_selector(mut self, selector: &str) -> Self {
        self.absent.clear();
        self.query.push(("labelSelector".into(), selector.into()));
        self
    }
}

/// Run `call` against a mocked API server that must see exactly `script`, in order.
pub async fn scenario<T, F, Fut>(script: Vec<Exchange>, call: F) -> T
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: Future<Output = T>,
{
    let (service, mut handle): (_, Handle) =
        tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let server = tokio::spawn(async move {
        for (i, want) in script.into_iter().enumerate() {
            let (request, send) =
                tokio::time::timeout(std::time::Duration::from_secs(5), handle.next_request())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("request #{i} ({} {}) never came", want.method, want.path)
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "client gone before request #{i} ({} {})",
                            want.method, want.path
                        )
                    });
            let query: BTreeMap<String, String> = request
                .uri()
                .query()
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .filter(|(k, _)| !k.is_empty())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(
                (request.method(), request.uri().path()),
                (&want.method, want.path.as_str()),
                "request #{i}: unexpected {} {}",
                request.method(),
                request.uri()
            );
            for (k, v) in &want.query {
                assert_eq!(
                    query.get(k),
                    Some(v),
                    "request #{i} {}: query {k}",
                    request.uri()
                );
            }
            for k in &want.absent {
                assert!(
                    !query.contains_key(k),
                    "request #{i} {}: unexpected query {k}",
                    request.uri()
                );
            }
            send.send_response(
                Response::builder()
                    .status(want.status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(serde_json::to_vec(&want.body).unwrap()))
                    .unwrap(),
            );
        }
        // Anything after the script is unexpected: answer nothing (the client sees an
        // error at once instead of waiting) and report it. None: the client is gone.
        let extra = tokio::time::timeout(std::time::Duration::from_secs(10), handle.next_request())
            .await
            .ok()
            .flatten()
            .map(|(r, _)| format!("{} {}", r.method(), r.uri()));
        extra
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), call(client))
        .await
        .expect("the resolution did not finish within 10 s");
    let extra = match server.await {
        Ok(extra) => extra,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    if let Some(extra) = extra {
        panic!("unexpected extra request {extra}");
    }
    out
}

// ---- fixtures ----

pub fn pod(ns: &str, name: &str, labels: Value, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "img"}]},
        "status": {"phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "image": "img", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}
    })
}

/// Set the first container's ports.
pub fn with_ports(mut pod: Value, ports: Value) -> Value {
    pod["spec"]["containers"][0]["ports"] = ports;
    pod
}

/// Make a pod not Ready: its readiness probe has not passed.
pub fn not_ready(mut pod: Value) -> Value {
    pod["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"port": "https", "path": "/healthz"}});
    pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False",
        "reason": "ContainersNotReady", "message": "containers with unready status: [app]"}]);
    pod["status"]["containerStatuses"][0]["ready"] = json!(false);
    pod
}

pub fn service(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// One EndpointSlice for `svc` with (ip, pod, ready) endpoints and `ports`.
pub fn slice(ns: &str, svc: &str, ports: Value, endpoints: &[(&str, &str, bool)]) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, pod, ready)| {
            json!({"addresses": [ip], "nodeName": "node-1",
                "conditions": {"ready": ready, "serving": ready, "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod}})
        })
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{svc}-abc"), "namespace": ns,
            "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "ports": ports, "endpoints": eps})
}

pub fn namespace(name: &str, labels: Value) -> Value {
    let mut labels = labels;
    labels["kubernetes.io/metadata.name"] = json!(name);
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}
