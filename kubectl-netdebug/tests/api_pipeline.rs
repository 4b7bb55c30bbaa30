//! The whole Kubernetes path (preflight, resolution, injection, wait, log stream, verdict)
//! against a mocked API server that answers like a small cluster: one running pod `web` in
//! namespace `shop` (Pod Security level restricted) on a Linux node. Resolution's own requests
//! are answered generically (the pod by name, empty lists), so these tests pin the pipeline's
//! requests, not resolution's.

mod common;

use std::sync::{Arc, Mutex};

use clap::Parser;
use common::{body_of, pod_with_probe, run_cli_against, running_pod, MockApi};
use http::Method;
use kubectl_netdebug::cli::Cli;
use kubectl_netdebug::error::Error;
use kubectl_netdebug::run::parse_input;
use serde_json::{json, Value};

fn probe_lines() -> Vec<String> {
    [
        json!({"v":1,"seq":0,"type":"hello","data":{"probe_version":"0.1.0","protocol_minor":0,"netns_inode":4026532456u64,"hostname":"web","uid":65534,"euid":65534,"capabilities":[],"deadline_ms":10000}}),
        json!({"v":1,"seq":1,"type":"check_started","data":{"check":"tcp"}}),
        json!({"v":1,"seq":2,"type":"evidence","data":{"kind":"tcp","target":"10.96.0.10:53","address":"10.96.0.10:53","outcome":"ok","latency_ms":0.8,"local":"10.244.0.7:40000","errno":null,"message":null}}),
        json!({"v":1,"seq":3,"type":"check_finished","data":{"check":"tcp","status":"completed","elapsed_ms":1.0}}),
        json!({"v":1,"seq":4,"type":"done","data":{"elapsed_ms":3.0,"checks_completed":1,"checks_failed":0,"checks_skipped":0,"deadline_exceeded":false}}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect()
}

/// How the probe container fares once injected.
#[derive(Clone, Copy)]
enum Probe {
    /// Runs, reports a healthy TCP connect, exits 0.
    Healthy,
    /// The kubelet cannot pull the image.
    ImagePullFails,
    /// The probe exits 2 at once, with its error as the termination message.
    Refuses,
}

/// What the fake cluster saw.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    patch: Option<Value>,
    /// The resource attributes of each access review, in order.
    reviews: Vec<Value>,
}

/// Serve the client's requests until it is done.
async fn fake_cluster(mut api: MockApi, probe: Probe, seen: Arc<Mutex<Seen>>) {
    let mut container = String::new();
    while let Some(call) = api.try_next().await {
        let path = call.path.clone();
        seen.lock()
            .unwrap()
            .requests
            .push(format!("{} {path}", call.method));
        match (call.method.clone(), path.as_str()) {
            (Method::GET, "/version") => call.reply(
                200,
                json!({"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}),
            ),
            (Method::GET, "/api/v1/namespaces/shop") => call.reply(
                200,
                json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}),
            ),
            (Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
                seen.lock()
                    .unwrap()
                    .reviews
                    .push(call.body["spec"]["resourceAttributes"].clone());
                let mut a = call.body.clone();
                a["status"] = json!({"allowed": true});
                call.reply(201, a);
            }
            (Method::GET, "/api/v1/nodes/node-1") => call.reply(
                200,
                json!({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1","labels":{"kubernetes.io/os":"linux"}}}),
            ),
            (Method::PATCH, "/api/v1/namespaces/shop/pods/web/ephemeralcontainers") => {
                container = call.body["spec"]["ephemeralContainers"][0]["name"]
                    .as_str()
                    .unwrap()
                    .to_string();
                seen.lock().unwrap().patch = Some(call.body.clone());
                call.reply(
                    200,
                    pod_with_probe("shop", "web", &container, "101", json!({"waiting": {"reason": "ContainerCreating"}})),
                );
            }
            (Method::GET, "/api/v1/namespaces/shop/pods") if call.query.contains_key("watch") => {
                assert_eq!(call.query["fieldSelector"], "metadata.name=web");
                assert_eq!(call.query["resourceVersion"], "101");
                let state = match probe {
                    Probe::Healthy => json!({"running": {}}),
                    Probe::ImagePullFails => json!({"waiting": {"reason": "ErrImagePull", "message": "failed to pull and unpack image \"registry.invalid/probe:v0\": not found"}}),
                    Probe::Refuses => json!({"terminated": {"exitCode": 2, "reason": "Error", "message": "netdebug-probe: plan does not parse: missing field `v`\n"}}),
                };
                let ev = json!({"type":"MODIFIED","object": pod_with_probe("shop", "web", &container, "102", state)});
                call.reply_bytes(200, body_of(&[ev.to_string()]));
            }
            (Method::GET, "/api/v1/namespaces/shop/pods/web/log") => {
                assert_eq!(call.query["container"], container);
                assert_eq!(call.query["follow"], "true");
                call.reply_bytes(200, body_of(&probe_lines()));
            }
            (Method::GET, "/api/v1/namespaces/shop/pods/web") if !container.is_empty() => call
                .reply(
                    200,
                    pod_with_probe("shop", "web", &container, "103", json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
                ),
            (Method::GET, "/api/v1/namespaces/shop/pods/web") => {
                call.reply(200, running_pod("shop", "web", "node-1"))
            }
            (Method::GET, _) if !call.query.contains_key("watch") && is_collection(&path) => call
                .reply(
                    200,
                    json!({"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}),
                ),
            _ => call.reply_status(404, "NotFound", &format!("{path} not found (mock)")),
        }
    }
}

async fn run_against(probe: Probe) -> (Result<i32, Error>, Seen) {
    run_with_flags(probe, &[]).await
}

async fn run_with_flags(probe: Probe, extra: &[&str]) -> (Result<i32, Error>, Seen) {
    let base = [
        "kubectl-netdebug",
        "pod/web",
        "--to",
        "10.96.0.10:53",
        "-n",
        "shop",
        "-o",
        "json",
        "--timeout",
        "20s",
        "--image",
        "registry.invalid/probe:v0",
    ];
    let argv: Vec<&str> = base.iter().chain(extra).copied().collect();
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let watched = seen.clone();
    let result = run_cli_against(&argv, "shop", move |api| fake_cluster(api, probe, watched)).await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (result, seen)
}

#[tokio::test]
async fn healthy_run_request_order_and_patch() {
    let (result, seen) = run_against(Probe::Healthy).await;
    let requests = seen.requests;
    let code = result.unwrap_or_else(|e| panic!("{e}\nrequests: {requests:#?}"));
    assert_eq!(code, 0, "requests: {requests:#?}");

    let body = seen.patch.expect("the probe was injected");
    let c = &body["spec"]["ephemeralContainers"][0];
    assert_eq!(c["targetContainerName"], "app");
    assert_eq!(c["image"], "registry.invalid/probe:v0");
    assert_eq!(
        c["securityContext"]["runAsNonRoot"], true,
        "restricted namespace -> restricted profile"
    );
    let plan = protocol::Plan::from_json(c["command"][1].as_str().unwrap()).unwrap();
    assert!(
        plan.targets
            .iter()
            .any(|t| t.host == "10.96.0.10" && t.port == Some(53)),
        "{plan:?}"
    );
    // Preflight before injection; the watch and the log after it.
    let pos = |needle: &str| {
        requests
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {requests:#?}"))
    };
    assert!(pos("GET /version") < pos("PATCH"));
    assert!(pos("selfsubjectaccessreviews") < pos("PATCH"));
    assert!(pos("GET /api/v1/nodes/node-1") < pos("PATCH"));
    assert!(pos("PATCH") < pos("GET /api/v1/namespaces/shop/pods/web/log"));
    // The Services the pod serves are read before injection, for the socket rules.
    assert!(pos("GET /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices") < pos("PATCH"));
    // An IP destination needs no Service permissions: four reviews about pods, and one
    // about port-forward, which would make the events come sooner.
    assert_eq!(seen.reviews.len(), 5, "{:#?}", seen.reviews);
    assert!(seen.reviews.iter().all(|r| r["resource"] == "pods"));
    let port_forward: Vec<_> = seen
        .reviews
        .iter()
        .filter(|r| r["subresource"] == "portforward")
        .collect();
    assert_eq!(port_forward.len(), 1, "{:#?}", seen.reviews);
    assert_eq!(port_forward[0]["verb"], "create");
    assert_eq!(port_forward[0]["namespace"], "shop");
    // Allowed: the plan asks the probe to serve its events on the pod's loopback, and the
    // client tried to reach it; this server has no port-forward, so the log was read.
    let tunnel = plan.tunnel.expect("a tunnel was planned");
    assert!(tunnel.port >= 49152, "{tunnel:?}");
    assert_eq!(tunnel.token.len(), 32);
    assert!(pos("PATCH") < pos("GET /api/v1/namespaces/shop/pods/web/portforward"));
}

/// `--stream logs`: nothing asked about port-forward, no tunnel in the plan, none tried.
#[tokio::test]
async fn stream_logs_reads_only_the_log() {
    let (result, seen) = run_with_flags(Probe::Healthy, &["--stream", "logs"]).await;
    assert_eq!(result.unwrap(), 0, "{:#?}", seen.requests);
    assert_eq!(seen.reviews.len(), 4, "{:#?}", seen.reviews);
    assert!(!seen
        .reviews
        .iter()
        .any(|r| r["subresource"] == "portforward"));
    let body = seen.patch.expect("the probe was injected");
    let plan = protocol::Plan::from_json(
        body["spec"]["ephemeralContainers"][0]["command"][1]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(plan.tunnel, None);
    assert!(!seen.requests.iter().any(|r| r.contains("/portforward")));
    assert!(seen.requests.iter().any(|r| r.ends_with("/pods/web/log")));
}

#[tokio::test]
async fn image_pull_failure_is_a_tool_failure_with_the_kubelets_message() {
    let (result, seen) = run_against(Probe::ImagePullFails).await;
    let err = result.unwrap_err();
    assert!(matches!(err, Error::ContainerFailed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("probe container netdebug-"), "{msg}");
    assert!(
        msg.contains(" in pod shop/web cannot start: ErrImagePull: failed to pull and unpack image \"registry.invalid/probe:v0\": not found\n"),
        "{msg}"
    );
    // The run ends with what to do without a registry.
    assert!(
        msg.ends_with(
            "\nthis cluster cannot pull registry.invalid/probe:v0. Without a registry, load it: \
             kubectl netdebug image load --kind CLUSTER (or --containerd SOCKET / --out FILE), \
             then rerun with the --image it prints."
        ),
        "{msg}"
    );
    assert!(!seen.requests.iter().any(|r| r.ends_with("/log")));
}

#[tokio::test]
async fn probe_refusing_its_plan_reports_the_probes_words() {
    let (result, _) = run_against(Probe::Refuses).await;
    let msg = result.unwrap_err().to_string();
    assert_eq!(
        msg,
        "netdebug-probe: plan does not parse: missing field `v`"
    );
}

/// `/api/v1/namespaces/NS/KIND` or `/apis/G/V/namespaces/NS/KIND`: a list request.
fn is_collection(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["api", _, "namespaces", _, _]
            | ["apis", _, _, "namespaces", _, _]
            | ["api", _, _]
            | ["apis", _, _, _]
    )
}

/// Rounds that cannot fit in --timeout once the targets are known: a clear error, and the
/// pod is never patched.
#[tokio::test]
async fn rounds_that_do_not_fit_are_refused_before_injection() {
    let (result, seen) =
        run_with_flags(Probe::Healthy, &["--repeat", "1000", "--rate", "10"]).await;
    let err = result.expect_err("the rounds cannot fit in 20s");
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    assert!(
        err.to_string().contains(
            "--repeat 1000 toward 1 address(es) and 0 name(s) at --rate 10/s needs about"
        ),
        "{err}"
    );
    assert!(
        seen.patch.is_none(),
        "nothing injected: {:#?}",
        seen.requests
    );
}

/// `--http /ready --tls`: the plan asks the probe for a TLS handshake and one request to
/// every target, named as the user named the destination (here an address).
#[tokio::test]
async fn http_and_tls_flags_put_the_app_check_in_the_plan() {
    let (result, seen) = run_with_flags(Probe::Healthy, &["--http", "/ready", "--tls"]).await;
    assert_eq!(result.unwrap(), 0, "{:#?}", seen.requests);
    let body = seen.patch.expect("the probe was injected");
    let plan = protocol::Plan::from_json(
        body["spec"]["ephemeralContainers"][0]["command"][1]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let app = plan.app.expect("an app plan");
    assert_eq!(app.tls.unwrap().server_name, "10.96.0.10");
    let http = app.http.unwrap();
    assert_eq!(
        (http.path.as_str(), http.host.as_str()),
        ("/ready", "10.96.0.10:53")
    );
}

/// URLs and the app flags: what cannot be sent is refused before any request.
#[test]
fn bad_urls_and_app_flags_are_refused_before_any_request() {
    let parse = |to: &str, extra: &[&str]| {
        let base = ["kubectl-netdebug", "pod/web", "--to", to];
        let cli = Cli::try_parse_from(base.iter().chain(extra)).unwrap();
        parse_input(&cli.run).map(|_| ()).unwrap_err().to_string()
    };
    assert!(parse("ftp://svc/web", &[]).contains("scheme `ftp://` is not supported"));
    assert!(parse("https://u:p@db.example.com/", &[]).contains("credentials in the URL"));
    assert!(parse("svc/web:80", &["--http", "healthz"]).contains("must start with /"));
    assert!(parse("http://svc/web/", &["--tls"]).contains("use https://"));
    assert!(parse("http://svc/web/x", &["--http", "/y"]).contains("both give the path"));
    let ok = Cli::try_parse_from([
        "kubectl-netdebug",
        "pod/web",
        "--to",
        "https://svc/api:8443/ready",
    ])
    .unwrap();
    assert!(parse_input(&ok.run).is_ok());
    assert!(
        Cli::try_parse_from([
            "kubectl-netdebug",
            "pod/web",
            "--dns",
            "x.example",
            "--http"
        ])
        .is_err(),
        "--http needs --to"
    );
}
