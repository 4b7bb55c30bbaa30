//! Ctrl-C while the node probe pod starts (its own test binary: the signal goes to the whole
//! process): the pod is deleted before the run ends.

mod common;
mod node_mock;

use node_mock::{run_node, Cluster};

#[tokio::test]
async fn ctrl_c_deletes_the_node_probe_pod() {
    let (result, seen) = run_node(
        &[],
        Cluster {
            interrupt: true,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    let created = seen
        .created
        .expect("the pod was created before the interrupt");
    assert_eq!(
        seen.deleted,
        [created["metadata"]["name"].as_str().unwrap()],
        "{:#?}",
        seen.requests
    );
}
