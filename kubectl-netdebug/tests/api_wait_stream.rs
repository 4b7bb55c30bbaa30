//! The wait (a watch on the single pod) and the log stream (follow, resume by seq) against a
//! mocked API server.

mod common;

use std::time::Duration;

use common::{body_of, mock_client, pod_with_probe, run_lines, target};
use http::Method;
use kubectl_netdebug::error::Error;
use kubectl_netdebug::events::{EventReader, Item};
use kubectl_netdebug::stream::{stream_events, LogSource};
use kubectl_netdebug::wait::{wait_for_start, Started, WaitFor};
use serde_json::json;
use tokio::time::Instant;

const PROBE: &str = "netdebug-abc123";

fn what() -> WaitFor<'static> {
    WaitFor {
        namespace: "shop",
        pod: "web",
        container: PROBE,
        image: "registry.invalid/probe:v0",
        spinner: false,
    }
}

fn watch_body(events: &[serde_json::Value]) -> Vec<u8> {
    let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    body_of(&lines)
}

fn assert_watch_request(call: &common::Call, rv: &str) {
    call.assert(Method::GET, "/api/v1/namespaces/shop/pods");
    assert_eq!(call.query.get("watch").map(String::as_str), Some("true"));
    assert_eq!(
        call.query.get("fieldSelector").map(String::as_str),
        Some("metadata.name=web")
    );
    assert_eq!(
        call.query.get("resourceVersion").map(String::as_str),
        Some(rv)
    );
    assert!(
        call.query.contains_key("timeoutSeconds"),
        "{:?}",
        call.query
    );
}

#[tokio::test]
async fn image_pull_backoff_fails_fast_with_the_kubelets_message() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        assert_watch_request(&call, "101");
        call.reply_bytes(
            200,
            watch_body(&[
                json!({"type": "MODIFIED", "object": pod_with_probe("shop", "web", PROBE, "102", json!({"waiting": {"reason": "ContainerCreating"}}))}),
                json!({"type": "MODIFIED", "object": pod_with_probe("shop", "web", PROBE, "103", json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.invalid/probe:v0\""}}))}),
            ]),
        );
    });
    let started = std::time::Instant::now();
    let err = wait_for_start(
        &client,
        &target(),
        &what(),
        "101",
        Instant::now() + Duration::from_secs(30),
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not fail fast"
    );
    assert!(matches!(err, Error::ContainerFailed { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "probe container netdebug-abc123 in pod shop/web cannot start: ImagePullBackOff: \
             Back-off pulling image \"registry.invalid/probe:v0\"\n{}",
            kubectl_netdebug::image_hint::pull_hint("registry.invalid/probe:v0")
        )
    );
    scenario.await.unwrap();
}

#[tokio::test]
async fn running_ends_the_wait_and_410_resyncs() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        assert_watch_request(&call, "101");
        call.reply_bytes(
            200,
            watch_body(&[json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version: 101 (150)", "reason": "Expired", "code": 410}})]),
        );
        // Resync: read the pod, then watch from its version.
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/shop/pods/web");
        call.reply(
            200,
            pod_with_probe(
                "shop",
                "web",
                PROBE,
                "150",
                json!({"waiting": {"reason": "ContainerCreating"}}),
            ),
        );
        let call = api.next().await;
        assert_watch_request(&call, "150");
        call.reply_bytes(
            200,
            watch_body(&[json!({"type": "MODIFIED", "object": pod_with_probe("shop", "web", PROBE, "151", json!({"running": {"startedAt": "2026-11-22T19:00:00Z"}}))})]),
        );
    });
    let started = wait_for_start(
        &client,
        &target(),
        &what(),
        "101",
        Instant::now() + Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(started, Started::Running);
    scenario.await.unwrap();
}

#[tokio::test]
async fn deadline_while_waiting_names_the_last_state() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        // Answer with one waiting update, then keep the watch open without more events by
        // never answering the next one.
        call.reply_bytes(
            200,
            watch_body(&[json!({"type": "MODIFIED", "object": pod_with_probe("shop", "web", PROBE, "102", json!({"waiting": {"reason": "ContainerCreating"}}))})]),
        );
        let next = api.next().await; // the re-watch after the server closed the first one
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(next);
    });
    let err = wait_for_start(
        &client,
        &target(),
        &what(),
        "101",
        Instant::now() + Duration::from_millis(500),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("probe container netdebug-abc123 in pod shop/web did not start before the deadline (last state: ContainerCreating)"), "{err}");
    scenario.await.unwrap();
}

fn log_request(call: &common::Call, follow: bool) {
    call.assert(Method::GET, "/api/v1/namespaces/shop/pods/web/log");
    assert_eq!(call.query.get("container").map(String::as_str), Some(PROBE));
    assert_eq!(
        call.query.get("follow").map(String::as_str),
        follow.then_some("true")
    );
    assert!(!call.query.contains_key("sinceTime"));
}

fn source<'a>(
    client: &'a kube::Client,
    t: &'a kubectl_netdebug::connect::ApiTarget,
) -> LogSource<'a> {
    LogSource {
        client,
        target: t,
        namespace: "shop",
        pod: "web",
        container: PROBE,
    }
}

fn seqs(items: &[Item]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Event(d) => Some(d.seq()),
            Item::Gap { .. } => None,
        })
        .collect()
}

/// The log drops after three events while the probe still runs: the client reconnects, re-reads
/// from the start and delivers each event exactly once, then reads the exit code.
#[tokio::test]
async fn dropped_log_is_resumed_without_loss_or_duplicates() {
    let lines = run_lines();
    let (client, mut api) = mock_client();
    let first = lines[..3].to_vec();
    let all = lines.clone();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        log_request(&call, true);
        call.reply_bytes(200, body_of(&first));
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/shop/pods/web");
        call.reply(
            200,
            pod_with_probe("shop", "web", PROBE, "200", json!({"running": {}})),
        );
        let call = api.next().await;
        log_request(&call, true);
        call.reply_bytes(200, body_of(&all));
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/shop/pods/web");
        call.reply(
            200,
            pod_with_probe(
                "shop",
                "web",
                PROBE,
                "201",
                json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
            ),
        );
    });
    let t = target();
    let mut reader = EventReader::new();
    let mut items = Vec::new();
    let outcome = stream_events(
        &source(&client, &t),
        &mut reader,
        Instant::now() + Duration::from_secs(20),
        |i| items.push(i),
    )
    .await
    .unwrap();
    scenario.await.unwrap();
    assert_eq!(seqs(&items), [0, 1, 2, 3, 4]);
    assert_eq!(outcome.reconnects, 1);
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.ended_early, None);
    assert_eq!(reader.duplicates_skipped(), 3);
    assert!(reader.gaps().is_empty());
}

/// The probe was killed mid-run: the complete log is read once more without follow, and the
/// outcome says how it ended (exit code, reason, last seq).
#[tokio::test]
async fn probe_killed_mid_run_is_reported() {
    let lines = run_lines();
    let (client, mut api) = mock_client();
    let partial = lines[..2].to_vec();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        log_request(&call, true);
        call.reply_bytes(200, body_of(&partial));
        let call = api.next().await;
        call.reply(
            200,
            pod_with_probe(
                "shop",
                "web",
                PROBE,
                "200",
                json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
            ),
        );
        let call = api.next().await;
        log_request(&call, false);
        call.reply_bytes(200, body_of(&partial));
        let call = api.next().await;
        call.reply(
            200,
            pod_with_probe(
                "shop",
                "web",
                PROBE,
                "200",
                json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
            ),
        );
    });
    let t = target();
    let mut reader = EventReader::new();
    let mut items = Vec::new();
    let outcome = stream_events(
        &source(&client, &t),
        &mut reader,
        Instant::now() + Duration::from_secs(20),
        |i| items.push(i),
    )
    .await
    .unwrap();
    scenario.await.unwrap();
    assert_eq!(seqs(&items), [0, 1]);
    assert_eq!(outcome.exit_code, Some(137));
    assert_eq!(
        outcome.ended_early.as_deref(),
        Some("the probe stopped without finishing: container terminated with exit code 137, reason OOMKilled (last event seq 1)")
    );
}

#[tokio::test]
async fn unknown_major_in_the_log_is_an_error() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.reply_bytes(
            200,
            b"{\"v\":2,\"seq\":0,\"type\":\"hello\",\"data\":{}}\n".to_vec(),
        );
    });
    let t = target();
    let mut reader = EventReader::new();
    let err = stream_events(
        &source(&client, &t),
        &mut reader,
        Instant::now() + Duration::from_secs(5),
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("probe speaks protocol version 2, this client understands version 1"),
        "{err}"
    );
    scenario.await.unwrap();
}

/// Regression: a refused log request (RBAC) was retried as a dropped stream and ended as
/// "probe stopped early", an inconclusive verdict; it is the client's error, naming the call.
#[tokio::test]
async fn log_stream_forbidden_is_a_client_error_not_probe_stopped_early() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        log_request(&call, true);
        call.reply_status(
            403,
            "Forbidden",
            "pods \"web\" is forbidden: User \"dev\" cannot get resource \"pods/log\" in the namespace \"shop\"",
        );
    });
    let t = target();
    let mut reader = EventReader::new();
    let err = stream_events(
        &source(&client, &t),
        &mut reader,
        Instant::now() + Duration::from_secs(20),
        |_| {},
    )
    .await
    .unwrap_err();
    scenario.await.unwrap();
    assert!(matches!(err, Error::RbacDenied { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "RBAC denied: cannot get pods/log in namespace \"shop\" (pod web, container "
        ),
        "{text}"
    );
    assert!(text.contains("cannot get resource \"pods/log\""), "{text}");
}
