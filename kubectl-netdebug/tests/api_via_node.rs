//! `pod/x --via-node` against a mocked API server: the pod's namespace entered from its node
//! by a probe pod there, with nothing added to the pod; what is refused before anything is
//! created.

mod common;
mod node_mock;

use node_mock::{run_via_node, Cluster, SOURCE_UID};

/// The probe pod goes to the source pod's node with host PIDs, the capabilities setns needs,
/// and the pod's UID and IP to find its namespace; the source pod is only read (no ephemeral
/// container patch, no ephemeral-container RBAC asked), and the probe pod is deleted.
#[tokio::test]
async fn the_pod_is_entered_from_its_node_and_left_untouched() {
    let (result, seen) = run_via_node(&["--node-namespace", "ops"], Cluster::default()).await;
    let requests = &seen.requests;
    let code = result.unwrap_or_else(|e| panic!("{e}\n{requests:#?}"));
    assert_eq!(code, 0, "{requests:#?}");
    let pod = seen.created.expect("the probe pod was created");
    assert_eq!(pod["metadata"]["namespace"], "ops");
    let spec = &pod["spec"];
    assert_eq!(spec["nodeName"], "vm", "the source pod's node");
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(spec["hostPID"], true);
    let c = &spec["containers"][0];
    assert_eq!(
        c["securityContext"]["capabilities"]["add"],
        serde_json::json!(["NET_RAW", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"])
    );
    assert_eq!(c["securityContext"]["privileged"], false);
    let command: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        command[..6],
        [
            "/netdebug-probe",
            "--node-conntrack",
            "--pod-uid",
            SOURCE_UID,
            "--pod-ip",
            "10.244.0.7"
        ]
    );
    let plan = protocol::Plan::from_json(command[6]).unwrap();
    assert_eq!(
        plan.tunnel, None,
        "a tunnel in the pod's namespace is unreachable"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("ephemeralcontainers") || r.starts_with("PATCH")),
        "the source pod must not be changed: {requests:#?}"
    );
    assert_eq!(seen.deleted.len(), 1, "{requests:#?}");
}

/// A `restricted` source namespace cannot hold the probe pod: the level and the flag are
/// named, and nothing is created. A pod on the host network has no namespace of its own.
#[tokio::test]
async fn what_via_node_cannot_do_is_refused_before_a_pod_is_created() {
    let (result, seen) = run_via_node(
        &[],
        Cluster {
            shop_level: Some("restricted"),
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("namespace shop enforces Pod Security level restricted"),
        "{err}"
    );
    assert!(err.contains("--node-namespace"), "{err}");
    assert!(seen.created.is_none());

    let (result, seen) = run_via_node(
        &["--node-namespace", "ops"],
        Cluster {
            source_host_network: true,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("pod web uses the host network") && err.contains("node/vm"),
        "{err}"
    );
    assert!(seen.created.is_none());

    let (result, seen) = run_via_node(
        &["--node-namespace", "ops"],
        Cluster {
            node_ready: false,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("node vm is not Ready"), "{err}");
    assert!(seen.created.is_none());

    let (result, seen) = run_via_node(
        &["--node-namespace", "ops"],
        Cluster {
            node_os: "windows",
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("windows"), "{err}");
    assert!(seen.created.is_none());
}

/// The probe refuses to enter (the pod's IP is not where its UID is): the run fails with the
/// probe's own words, and the probe pod is deleted.
#[tokio::test]
async fn a_probe_that_refuses_to_enter_is_named_in_its_own_words() {
    let (result, seen) = run_via_node(
        &["--node-namespace", "ops"],
        Cluster {
            probe_refuses: true,
            ..Cluster::default()
        },
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("none of their network namespaces holds 10.244.0.7"),
        "{err}"
    );
    assert_eq!(seen.deleted.len(), 1, "{:#?}", seen.requests);
}

/// --via-node is about one pod: the other sources and --both-ends are refused.
#[test]
fn via_node_with_other_sources_is_refused() {
    use clap::Parser;
    let parse = |args: &[&str]| -> String {
        match kubectl_netdebug::cli::Cli::try_parse_from(args) {
            Err(e) => e.to_string(),
            Ok(cli) => kubectl_netdebug::run::parse_input(&cli.run)
                .map(|_| ())
                .unwrap_err()
                .to_string(),
        }
    };
    let e = parse(&[
        "kubectl-netdebug",
        "node/vm",
        "--to",
        "svc/web",
        "--via-node",
    ]);
    assert!(e.contains("are about pods"), "{e}");
    let e = parse(&[
        "kubectl-netdebug",
        "-l",
        "app=web",
        "--to",
        "svc/web",
        "--via-node",
    ]);
    assert!(e.contains("--via-node runs from one pod's node"), "{e}");
    let e = parse(&[
        "kubectl-netdebug",
        "pod/web",
        "--to",
        "svc/web",
        "--via-node",
        "--both-ends",
    ]);
    assert!(e.contains("cannot be used with"), "{e}");
}
