//! A mocked API server for request-shape tests: a `tower_test` service pair behind a real
//! `kube::Client`. The test's scenario task takes each request the client makes, asserts its
//! method, path, query and body, and answers it.

#![allow(dead_code)] // each test binary uses a different part of this helper

use std::collections::BTreeMap;
use std::pin::Pin;

use http::{Method, Request, Response};
use kube::client::Body;
use kubectl_netdebug::connect::ApiTarget;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

pub struct MockApi {
    handle: Pin<Box<Handle>>,
}

/// One request the client made, decoded for assertions, with its responder.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The body as JSON (`Null` when empty).
    pub body: serde_json::Value,
    send: tower_test::mock::SendResponse<Response<Body>>,
}

pub fn mock_client() -> (kube::Client, MockApi) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(service, "default"),
        MockApi {
            handle: Box::pin(handle),
        },
    )
}

pub fn target() -> ApiTarget {
    ApiTarget {
        server: "https://mock:6443".into(),
        context: "mock".into(),
    }
}

impl MockApi {
    /// The next request, or None once the client is gone (or silent for 5 s): for scenario
    /// tasks that serve whatever the client asks until it is done.
    pub async fn try_next(&mut self) -> Option<Call> {
        let (request, send) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.handle.as_mut().next_request(),
        )
        .await
        .ok()??;
        Some(Call::decode(request, send).await)
    }

    /// The next request; panics (failing the test) if the client made none within 5 s.
    pub async fn next(&mut self) -> Call {
        let (request, send) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.handle.as_mut().next_request(),
        )
        .await
        .expect("the client made no further request within 5 s")
        .expect("the client was dropped before making the expected request");
        Call::decode(request, send).await
    }
}

impl Call {
    async fn decode(
        request: Request<Body>,
        send: tower_test::mock::SendResponse<Response<Body>>,
    ) -> Call {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body readable");
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        let query = parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Call {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
            send,
        }
    }
}

impl Call {
    pub fn reply(self, status: u16, json: serde_json::Value) {
        self.reply_bytes(status, serde_json::to_vec(&json).unwrap());
    }

    pub fn reply_bytes(self, status: u16, bytes: Vec<u8>) {
        self.send.send_response(
            Response::builder()
                .status(status)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(bytes))
                .unwrap(),
        );
    }

    /// A Kubernetes `Status` error response.
    pub fn reply_status(self, code: u16, reason: &str, message: &str) {
        self.reply(
            code,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code
            }),
        );
    }

    pub fn assert(&self, method: Method, path: &str) {
        assert_eq!(
            (&self.method, self.path.as_str()),
            (&method, path),
            "unexpected request {} {}",
            self.method,
            self.path
        );
    }
}

/// A running pod on `node`, with one container `app`.
pub fn running_pod(ns: &str, name: &str, node: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "100", "labels": {"app": "web"}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": "Running", "podIP": "10.244.0.7"}
    })
}

/// The same pod with the probe container in `state`.
pub fn pod_with_probe(
    ns: &str,
    name: &str,
    container: &str,
    rv: &str,
    state: serde_json::Value,
) -> serde_json::Value {
    let mut pod = running_pod(ns, name, "node-1");
    pod["metadata"]["resourceVersion"] = rv.into();
    pod["status"]["ephemeralContainerStatuses"] = serde_json::json!([{
        "name": container, "image": "probe", "imageID": "", "ready": false, "restartCount": 0,
        "state": state
    }]);
    pod
}

impl Call {
    /// Answer with a transport failure (the server cannot be reached).
    pub fn fail_transport(self, message: &str) {
        self.send.send_error(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            message.to_string(),
        ));
    }
}

/// Protocol lines for a small complete run: hello, check_started/finished for links, done.
pub fn run_lines() -> Vec<String> {
    use protocol::*;
    let events = vec![
        Event::Hello(Hello {
            probe_version: "0.1.0".into(),
            protocol_minor: PROTOCOL_MINOR,
            netns_inode: Some(4026531840),
            hostname: Some("web".into()),
            kernel: None,
            uid: 0,
            euid: 0,
            capabilities: vec![Capability::NetRaw.into()],
            deadline_ms: 15000,
        }),
        Event::CheckStarted(CheckStarted {
            check: CheckKind::Links.into(),
            variant: None,
        }),
        Event::Skipped(Skipped {
            check: CheckKind::Capture.into(),
            reason: "not asked".into(),
            missing_capability: None,
        }),
        Event::CheckFinished(CheckFinished {
            check: CheckKind::Links.into(),
            status: CheckStatus::Completed.into(),
            elapsed_ms: 1.5,
            error: None,
        }),
        Event::Done(Done {
            elapsed_ms: 3.0,
            checks_completed: 1,
            checks_failed: 0,
            checks_skipped: 1,
            deadline_exceeded: false,
        }),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| {
            encode_line(&Envelope {
                v: PROTOCOL_MAJOR,
                seq: seq as u64,
                event,
            })
        })
        .collect()
}

/// Lines joined with newlines (a log body).
pub fn body_of(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\n");
    s.push('\n');
    s.into_bytes()
}

/// Run `kubectl-netdebug ARGV...` (the program name first) in namespace `namespace` against a
/// mocked API server whose requests `serve` answers until the client is done; the run's
/// result. What the scenario saw is the caller's to keep (share it with `serve`).
pub async fn run_cli_against<F, Fut>(
    argv: &[&str],
    namespace: &str,
    serve: F,
) -> Result<i32, kubectl_netdebug::error::Error>
where
    F: FnOnce(MockApi) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use clap::Parser;
    let cli = kubectl_netdebug::cli::Cli::try_parse_from(argv).unwrap();
    let args = cli.run;
    let parsed = kubectl_netdebug::run::parse_input(&args).unwrap();
    let (client, api) = mock_client();
    let scenario = tokio::spawn(serve(api));
    let cluster = kubectl_netdebug::connect::Cluster {
        client,
        namespace: namespace.into(),
        target: target(),
    };
    let result = kubectl_netdebug::run::run_with(cluster, &args, parsed).await;
    scenario.await.unwrap();
    result
}
