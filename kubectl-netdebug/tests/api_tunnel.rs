//! Reaching the probe through port-forward, against a mocked API server: every attempt is one
//! request and is counted as it is made (the run reports the count in `probe.delivery`); a
//! transport failure is retried like a probe that is not listening yet; the API server's
//! refusal ends the attempts at once.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::mock_client;
use http::Method;
use kubectl_netdebug::tunnel::{self, TunnelError};
use tokio::time::Instant;

const PORTFORWARD: &str = "/api/v1/namespaces/shop/pods/web/portforward";

#[tokio::test]
async fn every_port_forward_attempt_is_counted_until_the_refusal() {
    let (client, mut api) = mock_client();
    let plan = tunnel::new_plan();
    let port = plan.port.to_string();
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let call = api.next().await;
            call.assert(Method::GET, PORTFORWARD);
            assert_eq!(call.query.get("ports"), Some(&port), "{:?}", call.query);
            call.fail_transport("connection reset by peer");
        }
        let call = api.next().await;
        call.assert(Method::GET, PORTFORWARD);
        call.reply_status(403, "Forbidden", "pods \"web\" is forbidden: portforward");
        // Nothing after the refusal.
        assert!(
            api.try_next().await.is_none(),
            "a request after the refusal"
        );
    });
    let requests = AtomicU32::new(0);
    let until = Instant::now() + Duration::from_secs(10);
    let result = tunnel::open(&client, "shop", "web", &plan, until, &requests).await;
    drop(client);
    server.await.unwrap();
    assert!(
        matches!(result, Err(TunnelError::Refused(403))),
        "{:?}",
        result.err()
    );
    assert_eq!(requests.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn attempts_stop_at_the_deadline_and_are_all_counted() {
    let (client, mut api) = mock_client();
    let plan = tunnel::new_plan();
    let seen = std::sync::Arc::new(AtomicU32::new(0));
    let server = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(call) = api.try_next().await {
                call.assert(Method::GET, PORTFORWARD);
                seen.fetch_add(1, Ordering::Relaxed);
                call.fail_transport("connection refused");
            }
        })
    };
    let requests = AtomicU32::new(0);
    let until = Instant::now() + Duration::from_millis(400);
    let result = tunnel::open(&client, "shop", "web", &plan, until, &requests).await;
    drop(client);
    server.await.unwrap();
    assert!(
        matches!(result, Err(TunnelError::NoAnswer { port }) if port == plan.port),
        "{:?}",
        result.err()
    );
    let made = requests.load(Ordering::Relaxed);
    // Retried every 50 ms for the first second: more than one attempt in 400 ms, and every
    // one the server saw was counted.
    assert!(made > 1, "{made}");
    assert_eq!(made, seen.load(Ordering::Relaxed));
}
