//! Ctrl-C during a many-sources run (its own test binary: the signal goes to the whole
//! process). Injections one at a time: web-1 has run, web-2's probe is starting when SIGINT
//! arrives. No probe may be started after it, and the run must end at once with a verdict
//! drawn from what had arrived, not wait for its deadline.

mod common;
mod sources_mock;

use sources_mock::{run_sources, Cluster};

#[tokio::test]
async fn ctrl_c_stops_new_injections_and_renders_what_arrived() {
    let started = std::time::Instant::now();
    let (result, seen) = run_sources(
        &["-l", "app=web", "--max-parallel", "1"],
        Cluster {
            interrupt_at: Some("web-2"),
            ..Cluster::default()
        },
    )
    .await;
    let code = result.unwrap_or_else(|e| panic!("{e}\n{:#?}", seen.requests));
    assert_eq!(
        seen.patched,
        ["web-1", "web-2"],
        "nothing is injected after the interrupt: {:#?}",
        seen.requests
    );
    assert!(
        !seen.requests.iter().any(|r| r.contains("/pods/web-3/")),
        "{:#?}",
        seen.requests
    );
    // web-1's evidence arrived: the verdict has something to say, so not "nothing ran".
    assert_ne!(code, 2, "{:#?}", seen.requests);
    // Not a speed assertion: the run (--timeout 20s) must not have sat out its deadline.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "the run waited for its deadline after Ctrl-C"
    );
}
