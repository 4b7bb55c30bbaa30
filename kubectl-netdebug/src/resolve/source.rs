//! SOURCE -> one pod and the container whose network namespace the probe joins. A workload
//! resolves to one of its Ready, Running pods, and the choice is reported.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use netdebug_verdict::kube::SourceInfo;

use super::spec::{SourceKind, SourceSpec};
use super::{api, labels, pods};
use crate::error::Error;

/// The source pod, what the verdict says about it, and the container to target.
#[derive(Debug, Clone)]
pub struct ResolvedSource {
    pub pod: Pod,
    pub info: SourceInfo,
    pub target_container: String,
}

/// kubectl's annotation naming the container commands default to.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// Resolve SOURCE in `namespace`. Whether the pod is Running is checked by preflight, which
/// also needs it for a plain pod; here a workload only ever yields a Running, Ready pod.
pub async fn resolve_source(
    client: &kube::Client,
    namespace: &str,
    spec: &SourceSpec,
    container: Option<&str>,
) -> Result<ResolvedSource, Error> {
    let (pod, picked_from) = match spec.kind {
        SourceKind::Pod => (
            api::get::<Pod>(client, namespace, &spec.name, "pods", "pod").await?,
            None,
        ),
        kind => {
            let selector = workload_selector(client, namespace, kind, &spec.name).await?;
            let pod = pick_pod(client, namespace, spec, &selector).await?;
            (pod, Some(spec.to_string()))
        }
    };
    resolved(pod, namespace, container, picked_from)
}

/// A pod as a source: the container to target (`-c`, else the default) and what the verdict
/// says about it. `picked_from`: the workload or selector it was chosen from.
pub(super) fn resolved(
    pod: Pod,
    namespace: &str,
    container: Option<&str>,
    picked_from: Option<String>,
) -> Result<ResolvedSource, Error> {
    let target_container = choose_container(&pod, container)?;
    let info = SourceInfo {
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_string()),
        pod: pods::name(&pod).to_string(),
        picked_from,
        container: Some(target_container.clone()),
        node: pods::node(&pod).map(str::to_string),
        pod_ip: pods::ip(&pod).map(str::to_string),
        labels: pods::labels(&pod),
    };
    Ok(ResolvedSource {
        pod,
        info,
        target_container,
    })
}

pub(super) async fn workload_selector(
    client: &kube::Client,
    namespace: &str,
    kind: SourceKind,
    name: &str,
) -> Result<Option<LabelSelector>, Error> {
    let singular = kind.singular();
    Ok(match kind {
        SourceKind::Deployment => {
            api::get::<Deployment>(client, namespace, name, "deployments.apps", singular)
                .await?
                .spec
                .map(|s| s.selector)
        }
        SourceKind::StatefulSet => {
            api::get::<StatefulSet>(client, namespace, name, "statefulsets.apps", singular)
                .await?
                .spec
                .map(|s| s.selector)
        }
        SourceKind::DaemonSet => {
            api::get::<DaemonSet>(client, namespace, name, "daemonsets.apps", singular)
                .await?
                .spec
                .map(|s| s.selector)
        }
        SourceKind::ReplicaSet => {
            api::get::<ReplicaSet>(client, namespace, name, "replicasets.apps", singular)
                .await?
                .spec
                .map(|s| s.selector)
        }
        SourceKind::Job => api::get::<Job>(client, namespace, name, "jobs.batch", singular)
            .await?
            .spec
            .and_then(|s| s.selector),
        // Pods are fetched by name by the caller; a pod has no selector of its own.
        SourceKind::Pod => None,
    })
}

/// One Ready, Running, not terminating pod the selector matches; the first by name, so the
/// same command picks the same pod while nothing changes.
async fn pick_pod(
    client: &kube::Client,
    namespace: &str,
    spec: &SourceSpec,
    selector: &Option<LabelSelector>,
) -> Result<Pod, Error> {
    let workload = spec.to_string();
    let bad_selector = |detail: String| Error::BadSelector {
        workload: workload.clone(),
        namespace: namespace.to_string(),
        detail,
    };
    let selector = selector
        .as_ref()
        .ok_or_else(|| bad_selector("it has no spec.selector".to_string()))?;
    let selector = labels::from_label_selector(selector).map_err(bad_selector)?;
    if selector.selects_all() {
        // An empty selector would pick any pod of the namespace: refuse rather than guess.
        return Err(bad_selector("its selector is empty".to_string()));
    }
    let query = selector.to_string();
    let mut candidates: Vec<Pod> = api::list::<Pod>(client, namespace, Some(&query), "pods")
        .await?
        .into_iter()
        // The server already filtered; matching again keeps a lenient server honest.
        .filter(|p| labels::matches(&selector, &pods::labels(p)))
        .collect();
    candidates.sort_by(|a, b| pods::name(a).cmp(pods::name(b)));
    if let Some(i) = candidates
        .iter()
        .position(|p| pods::is_running(p) && pods::is_ready(p) && !pods::is_terminating(p))
    {
        return Ok(candidates.swap_remove(i));
    }
    let detail = if candidates.is_empty() {
        format!("its selector {query} matches no pod")
    } else {
        let shown: Vec<String> = candidates
            .iter()
            .take(3)
            .map(|p| {
                let state = if pods::is_terminating(p) {
                    "terminating".to_string()
                } else {
                    pods::not_ready_reason(p)
                };
                format!("{} ({state})", pods::name(p))
            })
            .collect();
        let more = candidates.len().saturating_sub(3);
        format!(
            "{} pod{} matched, none Ready: {}{}",
            candidates.len(),
            if candidates.len() == 1 { "" } else { "s" },
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        )
    };
    Err(Error::NoReadyPod {
        workload,
        namespace: namespace.to_string(),
        detail,
    })
}

/// `--container` when given (it must exist), else kubectl's default-container annotation
/// when it names a container, else the first container.
pub fn choose_container(pod: &Pod, asked: Option<&str>) -> Result<String, Error> {
    let names = pods::container_names(pod);
    if let Some(asked) = asked {
        if names.contains(&asked) {
            return Ok(asked.to_string());
        }
        return Err(Error::ContainerNotFound {
            pod: pods::name(pod).to_string(),
            container: asked.to_string(),
            available: if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
        });
    }
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CONTAINER_ANNOTATION))
        .filter(|c| names.contains(&c.as_str()));
    match annotated.map(String::as_str).or(names.first().copied()) {
        Some(c) => Ok(c.to_string()),
        None => Err(Error::ContainerNotFound {
            pod: pods::name(pod).to_string(),
            container: "(any)".to_string(),
            available: "none".to_string(),
        }),
    }
}
