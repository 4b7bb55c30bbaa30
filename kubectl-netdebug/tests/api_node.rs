//! The node view (`node/NAME`) against a mocked API server: the probe pod's shape, its life
//! (created, watched, read, deleted), its deletion after an error, and what is refused before
//! anything is created.

mod common;
mod node_mock;

use node_mock::{run_node, Cluster};

/// The probe pod: on the node, in its network namespace, least privilege, a kubelet-enforced
/// deadline; then its log is read and the pod deleted.
#[tokio::test]
async fn the_node_probe_pod_is_shaped_run_and_deleted() {
    let (result, seen) = run_node(&[], Cluster::default()).await;
    let requests = &seen.requests;
    let code = result.unwrap_or_else(|e| panic!("{e}\n{requests:#?}"));
    assert_eq!(code, 0, "{requests:#?}");
    let pod = seen.created.expect("the probe pod was created");
    let spec = &pod["spec"];
    assert_eq!(spec["nodeName"], "vm");
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(
        spec["activeDeadlineSeconds"],
        20 + 30,
        "--timeout plus the margin"
    );
    let c = &spec["containers"][0];
    assert_eq!(c["image"], "registry.invalid/probe:v0");
    assert_eq!(c["securityContext"]["privileged"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(
        c["securityContext"]["capabilities"]["add"],
        serde_json::json!(["NET_RAW", "NET_ADMIN"])
    );
    assert_eq!(
        c["command"][1], "--node-conntrack",
        "the Service dataplane's proof"
    );
    let plan = protocol::Plan::from_json(c["command"][2].as_str().unwrap()).unwrap();
    assert!(
        plan.targets.iter().any(|t| t.host == "10.96.0.10"),
        "{plan:?}"
    );
    assert_eq!(
        plan.tunnel, None,
        "the log is read: a port on the node's loopback could collide"
    );
    let name = pod["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("netdebug-node-"), "{name}");
    assert_eq!(seen.deleted, [name], "{requests:#?}");
    let pos = |needle: &str| {
        requests
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {requests:#?}"))
    };
    assert!(pos("GET /api/v1/nodes/vm") < pos("POST /api/v1/namespaces/ops/pods"));
    assert!(pos("/log") < pos("DELETE"));
}

/// The image cannot be pulled: the run fails with the kubelet's reason, and the pod is
/// deleted all the same.
#[tokio::test]
async fn the_probe_pod_is_deleted_after_an_error() {
    let (result, seen) = run_node(
        &[],
        Cluster {
            image_fails: true,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("ErrImagePull"), "{err}");
    assert_eq!(seen.deleted.len(), 1, "{:#?}", seen.requests);
}

/// The kubelet refuses the probe pod (a full node): the run fails with the kubelet's reason
/// and message (not a deadline error), and the pod is deleted. (Taints cannot keep it
/// away: it is bound by nodeName and tolerates them all.)
#[tokio::test]
async fn a_probe_pod_the_kubelet_refuses_is_named_with_its_reason() {
    let (result, seen) = run_node(
        &[],
        Cluster {
            kubelet_rejects: true,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("OutOfpods") && err.contains("Node didn't have enough resource: pods"),
        "{err}"
    );
    assert_eq!(seen.deleted.len(), 1, "{:#?}", seen.requests);
}

/// Refused before anything is created: a namespace whose Pod Security level forbids the host
/// network (the level and the flag named), an unknown node, a node that is not Ready.
#[tokio::test]
async fn what_cannot_run_is_refused_before_a_pod_is_created() {
    let (result, seen) = run_node(
        &[],
        Cluster {
            level: Some("baseline"),
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("enforces Pod Security level baseline"),
        "{err}"
    );
    assert!(err.contains("--node-namespace"), "{err}");
    assert!(seen.created.is_none());

    let (result, seen) = run_node(
        &[],
        Cluster {
            node_exists: false,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("node \"vm\" not found"), "{err}");
    assert!(seen.created.is_none());

    let (result, seen) = run_node(
        &[],
        Cluster {
            node_ready: false,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("node vm is not Ready (Ready=False, KubeletNotReady"),
        "{err}"
    );
    assert!(seen.created.is_none());

    // Reading nodes is asked cluster-wide, and its absence named with what grants it.
    let (result, seen) = run_node(
        &[],
        Cluster {
            nodes_forbidden: true,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains(
            "you may not get nodes (to check the node is Ready and runs Linux) cluster-wide"
        ) && err.contains("ask for a ClusterRole"),
        "{err}"
    );
    assert!(seen.created.is_none());
}

/// Flags about pods make no sense with a node.
#[test]
fn pod_flags_with_a_node_are_refused() {
    use clap::Parser;
    let parse = |args: &[&str]| {
        let cli = kubectl_netdebug::cli::Cli::try_parse_from(args).unwrap();
        kubectl_netdebug::run::parse_input(&cli.run)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let e = parse(&[
        "kubectl-netdebug",
        "node/vm",
        "--to",
        "svc/web",
        "--both-ends",
    ]);
    assert!(e.contains("are about pods"), "{e}");
    let e = parse(&[
        "kubectl-netdebug",
        "pod/web",
        "--to",
        "svc/web",
        "--node-namespace",
        "ops",
    ]);
    assert!(e.contains("give node/NAME or --via-node"), "{e}");
    let e = parse(&["kubectl-netdebug", "node/Bad_Node", "--to", "svc/web"]);
    assert!(e.contains("is not a node name"), "{e}");
}
