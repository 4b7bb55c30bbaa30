//! `kubectl netdebug node/NAME --to DEST`: the node's half of the path, from its own network
//! namespace. One short-lived probe pod (see [`crate::node`] for its shape and privileges) is
//! created on the node, streamed through its log, and deleted at the end of the run: after
//! the verdict, after an error, and after Ctrl-C. The kubelet's `activeDeadlineSeconds` ends
//! it even if this client is killed first.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use tokio::time::Instant;

use super::{kube_evidence, stream_into, PodRef};
use crate::cli::RunArgs;
use crate::connect::Cluster;
use crate::error::{Error, Result};
use crate::inject::{random_container_name, ProbeContainer};
use crate::node::{self, NodeProbePod, PROBE_CONTAINER};
use crate::output::Session;
use crate::plan::{build_plan, check_rounds_fit, Site};
use crate::resolve::{self, ResolvedSource};
use crate::{preflight, profile};

/// How long deleting the probe pod may take at the end of the run.
const DELETE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) async fn run(
    cluster: Cluster,
    args: &RunArgs,
    node_name: String,
    dest_spec: Option<resolve::DestSpec>,
    app: Option<&crate::app::AppAsk>,
    deadline: Instant,
) -> Result<i32> {
    let Cluster {
        client,
        namespace,
        target,
    } = cluster;
    let pod_namespace = args
        .node_namespace
        .clone()
        .unwrap_or_else(|| namespace.clone());
    check_probe_pod_allowed(&client, &target, &pod_namespace, args, &node_name).await?;

    let pod_name = probe_pod_name();
    let source = probe_source(&pod_namespace, &pod_name, &node_name);
    let (mut kube, targets, dns_names) =
        kube_evidence(&client, &namespace, dest_spec.as_ref(), &source, args).await?;
    // The node is not a pod: nothing Kubernetes says about a source pod applies.
    kube.source = None;
    // Nor does the cluster DNS: a node resolves with its own resolver, which is not meant to
    // know Service names. Only the names asked for with --dns are looked up.
    let dns_names: Vec<String> = dns_names
        .into_iter()
        .filter(|n| args.dns.contains(n))
        .collect();
    kube.cluster_dns = None;
    let app_plan = super::app_plan_for(app, kube.destination.as_ref());
    let mut plan = build_plan(targets, &super::plan_options(args, dns_names, app_plan));
    with_node_path(&mut plan);
    plan.validate()
        .map_err(|e| Error::InvalidInput(format!("cannot build the probe plan: {e}")))?;
    check_rounds_fit(&plan, args.timeout, Site::Cluster).map_err(Error::InvalidInput)?;
    let probe_pod = probe_pod(args, &pod_name, &pod_namespace, &node_name, &plan, None);
    let title = verdict::Title {
        source: format!("node/{node_name}"),
        destination: args.to.clone(),
        namespace: None,
        origin: Some(verdict::Origin::Node {
            name: node_name.clone(),
            namespace: namespace.clone(),
            pod_namespace: pod_namespace.clone(),
        }),
        asked: crate::plan::asked_flags(args.to.as_slice(), &args.dns),
    };
    let mut session = Session::new(&args.output, title, kube, args.write.as_deref())?;
    session.note(format!(
        "the probe ran in the node's network namespace from pod {pod_namespace}/{pod_name} \
         (host network, NET_RAW and NET_ADMIN), deleted after the run"
    ));
    let container = probe_container(&args.image, &probe_pod, plan);
    run_probe_pod(session, &client, &target, &probe_pod, container, deadline).await
}

/// `pod/x --via-node`: the pod's own network namespace, entered from its node by a probe pod
/// there, so nothing is added to the pod. Everything a pod run does (its plan, the Kubernetes
/// evidence, the session) is already built by the caller; this checks where the probe pod may
/// go, then runs it.
pub(super) async fn via_node(
    mut session: Session,
    client: &kube::Client,
    target: &crate::connect::ApiTarget,
    source: &ResolvedSource,
    mut plan: protocol::Plan,
    args: &RunArgs,
    deadline: Instant,
) -> Result<i32> {
    let pod = &source.pod;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let pod_ns = source.info.namespace.clone();
    let enter = node::enter_pod(pod)?;
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "pod {pod_ns}/{pod_name} is not scheduled on a node yet: --via-node needs its node"
            ))
        })?;
    let probe_ns = args
        .node_namespace
        .clone()
        .unwrap_or_else(|| pod_ns.clone());
    check_probe_pod_allowed(client, target, &probe_ns, args, &node_name).await?;
    with_node_path(&mut plan);
    // The tunnel would listen in the pod's namespace, where no port-forward to the probe
    // pod (in the node's) can reach it: the log carries the events.
    plan.tunnel = None;
    let probe_name = probe_pod_name();
    let probe_pod = probe_pod(args, &probe_name, &probe_ns, &node_name, &plan, Some(enter));
    session.note(format!(
        "--via-node: the probe entered pod {pod_ns}/{pod_name}'s network namespace from node \
         {node_name}, from pod {probe_ns}/{probe_name} (host network and PIDs; {}), deleted \
         after the run; no ephemeral container was added to the pod",
        probe_pod.capabilities().join(", ")
    ));
    let container = probe_container(&args.image, &probe_pod, plan);
    run_probe_pod(session, client, target, &probe_pod, container, deadline).await
}

/// Whether a node's probe pod may run: `namespace` admits host pods (the error names
/// `--node-namespace` unless the user chose it), the user may create the pod there and read
/// nodes, and the node is Ready and runs Linux.
async fn check_probe_pod_allowed(
    client: &kube::Client,
    target: &crate::connect::ApiTarget,
    namespace: &str,
    args: &RunArgs,
    node_name: &str,
) -> Result<()> {
    let labels = preflight::namespace_labels(client, target, namespace).await?;
    node::check_admits_host_pods(namespace, labels.as_ref(), args.node_namespace.is_some())?;
    preflight::check_rbac(client, target, namespace, preflight::NODE_POD_ACCESS).await?;
    preflight::check_rbac(client, target, "", preflight::NODE_READ_ACCESS).await?;
    let node = read_node(client, target, node_name).await?;
    node::check_node(&node)
}

/// A fresh name for a node's probe pod.
fn probe_pod_name() -> String {
    random_container_name().replacen("netdebug-", "netdebug-node-", 1)
}

/// The probe pod that runs `plan` on `node`, living at most `--timeout` and a margin.
fn probe_pod(
    args: &RunArgs,
    name: &str,
    namespace: &str,
    node: &str,
    plan: &protocol::Plan,
    enter: Option<node::EnterPod>,
) -> NodeProbePod {
    NodeProbePod {
        name: name.to_string(),
        namespace: namespace.to_string(),
        node: node.to_string(),
        image: args.image.clone(),
        pull_policy: args.image_pull_policy.map(|p| p.as_str().to_string()),
        plan_json: serde_json::to_string(plan).expect("a plan always serialises"),
        active_deadline_secs: args.timeout.as_secs() as i64 + node::ACTIVE_DEADLINE_MARGIN_SECS,
        enter,
    }
}

/// A node view reads the node's half of the path too (the `node_path` check), beside
/// whatever the flags asked for.
fn with_node_path(plan: &mut protocol::Plan) {
    let mut checks = plan.effective_checks();
    checks.push(protocol::CheckKind::NodePath);
    plan.checks = checks.into_iter().map(Into::into).collect();
}

fn probe_container(image: &str, probe_pod: &NodeProbePod, plan: protocol::Plan) -> ProbeContainer {
    ProbeContainer {
        name: PROBE_CONTAINER.to_string(),
        // The probe is its pod's own container (see ProbeContainer::in_own_pod).
        target_container: None,
        image: image.to_string(),
        pull_policy: probe_pod.pull_policy.clone(),
        profile: profile::Profile::NetAdmin,
        plan,
    }
}

/// Creates the probe pod, streams its events into the session and deletes the pod: after the
/// verdict, after an error, and after Ctrl-C.
async fn run_probe_pod(
    mut session: Session,
    client: &kube::Client,
    target: &crate::connect::ApiTarget,
    probe_pod: &NodeProbePod,
    container: ProbeContainer,
    deadline: Instant,
) -> Result<i32> {
    let (pod_namespace, pod_name) = (&probe_pod.namespace, &probe_pod.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), pod_namespace);
    let created = pods
        .create(&PostParams::default(), &probe_pod.to_pod()?)
        .await
        .map_err(|e| {
            Error::from_kube(
                format!("create the node probe pod in namespace {pod_namespace}"),
                e,
                Some(target),
            )
        })?;
    // From here on the pod exists: whatever happens, it is deleted before returning.
    let pod = PodRef {
        client,
        target,
        namespace: pod_namespace,
        name: pod_name,
        quiet: false,
    };
    let rv = created.metadata.resource_version.unwrap_or_default();
    let ran = tokio::select! {
        r = observe(&mut session, &pod, &container, &rv, deadline) => r.map(Some),
        _ = tokio::signal::ctrl_c() => Ok(None),
    };
    let deleted = delete(&pods, pod_name).await;
    match (ran, deleted) {
        (Err(e), Err(d)) => Err(Error::Stream(format!("{e}; and {d}"))),
        (Err(e), Ok(())) => Err(e),
        (Ok(None), _) => Err(Error::Interrupted(format!(
            "interrupted (Ctrl-C); the node probe pod {pod_namespace}/{pod_name} was deleted"
        ))),
        (Ok(Some(())), deleted) => {
            if let Err(d) = deleted {
                session.warn(d);
            }
            session.finish().await
        }
    }
}

/// Wait for the probe pod's container, then stream its events into the session: the pod
/// path's own steps (the plan has no tunnel, so the log carries the events, and a probe that
/// refused to run is an error in its own words).
async fn observe(
    session: &mut Session,
    pod: &PodRef<'_>,
    container: &ProbeContainer,
    resource_version: &str,
    deadline: Instant,
) -> Result<()> {
    let created = super::Injected {
        resource_version: resource_version.to_string(),
        at: Instant::now(),
    };
    let reached = super::reach_probe(pod, container, &created, deadline).await?;
    stream_into(session, pod, container, reached, created.at, deadline).await
}

/// Delete the probe pod now (no grace period), bounded; Err says how to do it by hand.
async fn delete(pods: &Api<Pod>, name: &str) -> std::result::Result<(), String> {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let by_hand = |why: String| {
        format!(
            "the node probe pod {name} could not be deleted ({why}); it ends by its \
             activeDeadlineSeconds, or: kubectl delete pod {name} -n {}",
            pods.namespace().unwrap_or_default()
        )
    };
    match tokio::time::timeout(DELETE_LIMIT, pods.delete(name, &params)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if resolve::is_not_found(&e) => Ok(()),
        Ok(Err(e)) => Err(by_hand(e.to_string())),
        Err(_) => Err(by_hand(format!(
            "no answer within {} s",
            DELETE_LIMIT.as_secs()
        ))),
    }
}

/// The node, or a clear error when there is no such node.
async fn read_node(
    client: &kube::Client,
    target: &crate::connect::ApiTarget,
    name: &str,
) -> Result<Node> {
    let api: Api<Node> = Api::all(client.clone());
    match api.get(name).await {
        Ok(node) => Ok(node),
        Err(e) if resolve::is_not_found(&e) => Err(Error::InvalidInput(format!(
            "node \"{name}\" not found (kubectl get nodes lists them)"
        ))),
        Err(e) => Err(Error::from_kube(
            format!("get node {name}"),
            e,
            Some(target),
        )),
    }
}

/// The probe pod as a source for resolving the destination: in the host's network namespace,
/// so no NetworkPolicy is taken to govern it.
fn probe_source(namespace: &str, pod_name: &str, node_name: &str) -> ResolvedSource {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": pod_name, "namespace": namespace},
        "spec": {"nodeName": node_name, "hostNetwork": true, "containers": [{"name": PROBE_CONTAINER}]},
    }))
    .expect("a literal pod");
    ResolvedSource {
        info: verdict::kube::SourceInfo {
            namespace: namespace.to_string(),
            pod: pod_name.to_string(),
            picked_from: None,
            container: Some(PROBE_CONTAINER.to_string()),
            node: Some(node_name.to_string()),
            pod_ip: None,
            labels: Default::default(),
        },
        pod,
        target_container: PROBE_CONTAINER.to_string(),
    }
}
