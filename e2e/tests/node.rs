//! The node view against the real cluster: `kubectl netdebug node/NAME --to svc/web` runs the
//! probe in the node's own network namespace from a short-lived pod, and deletes that pod.
//! Run by e2e/run.sh.

use netdebug_e2e::{kubectl, probe_image, TestNamespace, WEB_SERVER_POD, WEB_SERVICE};

/// The first node's name.
fn a_node() -> String {
    let out = kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !name.is_empty(),
        "no node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

/// Pods the node view left in `ns` (it labels its probe pods).
fn probe_pods_left(ns: &TestNamespace) -> String {
    let out = kubectl(&[
        "-n",
        &ns.name,
        "get",
        "pods",
        "-l",
        "netdebug.io/node-probe",
        "-o",
        "name",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn the_node_reaches_a_service_and_its_probe_pod_is_gone_after() {
    let ns = TestNamespace::new("node");
    ns.apply(&WEB_SERVER_POD.replace("LISTEN", "8080"));
    ns.apply(WEB_SERVICE);
    ns.wait_ready("server");
    ns.wait_cluster_ip_programmed("web");
    let node = a_node();
    let image = probe_image();
    let run = ns.netdebug(&[
        &format!("node/{node}"),
        "--to",
        "svc/web",
        "--image",
        image.as_str(),
        "--image-pull-policy",
        "IfNotPresent",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let v = run.json();
    assert_eq!(v["title"]["source"], format!("node/{node}"), "{run:?}");
    // Both the ClusterIP (translated on this node) and the endpoint answered.
    let connected = v["probe"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["kind"] == "tcp" && e["data"]["outcome"] == "ok")
        .count();
    assert_eq!(connected, 2, "{run:?}");
    assert_eq!(probe_pods_left(&ns), "", "the probe pod was deleted");
}

/// A namespace that enforces `baseline` forbids the host network: the error names the level
/// and the flag, and nothing is created.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_namespace_that_forbids_host_pods_is_named() {
    let ns = TestNamespace::new("node-psa");
    ns.label("pod-security.kubernetes.io/enforce=baseline");
    let node = a_node();
    let run = ns.netdebug(&[&format!("node/{node}"), "--to", "10.96.0.10:53"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("enforces Pod Security level baseline"),
        "{run:?}"
    );
    assert!(run.stderr.contains("--node-namespace"), "{run:?}");
    assert_eq!(probe_pods_left(&ns), "");
}

/// An unknown node is an error that says so.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn an_unknown_node_is_named() {
    let ns = TestNamespace::new("node-none");
    let run = ns.netdebug(&["node/no-such-node", "--to", "10.96.0.10:53"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("node \"no-such-node\" not found"),
        "{run:?}"
    );
}
