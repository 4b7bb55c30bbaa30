//! Waiting for the probe container to start: a watch on the single pod (field selector
//! `metadata.name`), starting at the resourceVersion the injection returned, that ends when the
//! ephemeral container is Running or Terminated, and fails fast with the kubelet's own reason
//! and message when the container cannot start.

use std::io::IsTerminal;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ContainerState, Pod};
use kube::api::{Api, WatchEvent, WatchParams};
use tokio::time::Instant;

use crate::connect::ApiTarget;
use crate::error::{Error, Result};

/// Waiting reasons that mean the container will not start by itself soon. The kubelet retries
/// pulls with back-off, but a wrong image name or a missing credential does not fix itself:
/// failing at the first `ErrImagePull` keeps image failures well within 30 s.
pub const FATAL_WAITING_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// How the probe container stood when the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Running,
    Terminated {
        exit_code: i32,
        reason: Option<String>,
        message: Option<String>,
    },
}

/// What one pod update says about the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Started(Started),
    /// Still waiting; the reason (`ContainerCreating`, `PodInitializing`) if the kubelet gave one.
    Waiting(Option<String>),
    Failed {
        reason: String,
        message: String,
    },
}

/// Read a container's state from a pod: the probe's ephemeral container, or the container of
/// a probe pod (node mode). Names are unique across a pod's containers of every kind. A pod
/// that failed before its containers ran (the kubelet refused it: OutOfcpu, NodeAffinity...)
/// is a failure with the kubelet's reason.
pub fn observe(pod: &Pod, container: &str) -> Observation {
    let pod_status = pod.status.as_ref();
    let status = pod_status.and_then(|s| {
        s.ephemeral_container_statuses
            .iter()
            .flatten()
            .chain(s.container_statuses.iter().flatten())
            .find(|c| c.name == container)
    });
    let Some(state) = status.and_then(|s| s.state.as_ref()) else {
        return match pod_status.filter(|s| s.phase.as_deref() == Some("Failed")) {
            Some(s) => Observation::Failed {
                reason: s.reason.clone().unwrap_or_else(|| "Failed".into()),
                message: s
                    .message
                    .clone()
                    .unwrap_or_else(|| "(the kubelet gave no message)".into()),
            },
            None => Observation::Waiting(None),
        };
    };
    observe_state(state)
}

fn observe_state(state: &ContainerState) -> Observation {
    if state.running.is_some() {
        return Observation::Started(Started::Running);
    }
    if let Some(t) = &state.terminated {
        return Observation::Started(Started::Terminated {
            exit_code: t.exit_code,
            reason: t.reason.clone(),
            message: t.message.clone(),
        });
    }
    let waiting = state.waiting.as_ref();
    let reason = waiting.and_then(|w| w.reason.clone());
    match reason {
        Some(r) if FATAL_WAITING_REASONS.contains(&r.as_str()) => Observation::Failed {
            message: waiting
                .and_then(|w| w.message.clone())
                .unwrap_or_else(|| "(the kubelet gave no message)".into()),
            reason: r,
        },
        other => Observation::Waiting(other),
    }
}

/// Identifies the container being waited for (for messages).
#[derive(Debug, Clone)]
pub struct WaitFor<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
    pub image: &'a str,
    /// Show a spinner (on a terminal); off when another display owns stderr.
    pub spinner: bool,
}

/// Watch the pod until the container started or failed, or the deadline passes.
pub async fn wait_for_start(
    client: &kube::Client,
    target: &ApiTarget,
    what: &WaitFor<'_>,
    resource_version: &str,
    deadline: Instant,
) -> Result<Started> {
    let spinner = Spinner::start(
        format!(
            "starting probe {} in pod {}/{}",
            what.container, what.namespace, what.pod
        ),
        what.spinner,
    );
    let result = tokio::time::timeout_at(
        deadline,
        watch_until_started(client, target, what, resource_version, &spinner),
    )
    .await;
    spinner.finish();
    match result {
        Ok(r) => r,
        Err(_) => Err(Error::Deadline(format!(
            "probe container {} in pod {}/{} did not start before the deadline (last state: {}); \
             is image {} reachable from the node? (raise --timeout if the pull is just slow)",
            what.container,
            what.namespace,
            what.pod,
            spinner.last_state(),
            what.image
        ))),
    }
}

async fn watch_until_started(
    client: &kube::Client,
    target: &ApiTarget,
    what: &WaitFor<'_>,
    resource_version: &str,
    spinner: &Spinner,
) -> Result<Started> {
    let api: Api<Pod> = Api::namespaced(client.clone(), what.namespace);
    let fields = format!("metadata.name={}", what.pod);
    let mut version = resource_version.to_string();
    // Bounded: each round either sees an event or ends with the server's watch timeout; the
    // caller's deadline bounds the total.
    loop {
        let params = WatchParams::default().fields(&fields).timeout(60);
        let stream = api
            .watch(&params, &version)
            .await
            .map_err(|e| Error::from_kube(format!("watch pod {}", what.pod), e, Some(target)))?;
        let mut stream = stream.boxed();
        let mut resync = false;
        loop {
            let event = match stream.try_next().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                // A watch interrupted mid-way (a read timeout from --request-timeout, a proxy
                // closing idle connections) is not a failure: watch again from the last
                // version seen, after a pause so a broken connection cannot spin. The
                // caller's deadline bounds the retries.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    break;
                }
            };
            let pod = match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => p,
                WatchEvent::Deleted(_) => {
                    return Err(Error::Stream(format!(
                        "pod {}/{} was deleted while the probe was starting",
                        what.namespace, what.pod
                    )))
                }
                WatchEvent::Bookmark(b) => {
                    version = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(status) if status.code == 410 => {
                    // Our resourceVersion is too old: read the pod afresh, then watch again.
                    resync = true;
                    break;
                }
                WatchEvent::Error(status) => {
                    return Err(Error::Api {
                        call: format!("watch pod {}", what.pod),
                        detail: format!("{} ({})", status.message, status.code),
                    })
                }
            };
            if let Some(v) = pod.metadata.resource_version.clone() {
                version = v;
            }
            if let Some(done) = decide(&pod, what, spinner)? {
                return Ok(done);
            }
        }
        if resync {
            let pod = api
                .get(what.pod)
                .await
                .map_err(|e| Error::from_kube(format!("get pod {}", what.pod), e, Some(target)))?;
            version = pod.metadata.resource_version.clone().unwrap_or_default();
            if let Some(done) = decide(&pod, what, spinner)? {
                return Ok(done);
            }
        }
    }
}

fn decide(pod: &Pod, what: &WaitFor<'_>, spinner: &Spinner) -> Result<Option<Started>> {
    match observe(pod, what.container) {
        Observation::Started(s) => Ok(Some(s)),
        Observation::Waiting(reason) => {
            spinner.set_state(reason.as_deref().unwrap_or("waiting for the kubelet"));
            Ok(None)
        }
        Observation::Failed { reason, message } => Err(Error::ContainerFailed {
            namespace: what.namespace.into(),
            pod: what.pod.into(),
            container: what.container.into(),
            message: crate::image_hint::with_pull_hint(&reason, message, what.image),
            reason,
        }),
    }
}

/// A spinner on stderr, shown only when stderr is a terminal.
struct Spinner {
    bar: Option<indicatif::ProgressBar>,
    base: String,
    state: std::sync::Mutex<String>,
}

impl Spinner {
    fn start(message: String, shown: bool) -> Spinner {
        let bar = (shown && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message(message.clone());
            bar
        });
        Spinner {
            bar,
            base: message,
            state: std::sync::Mutex::new("not yet scheduled by the kubelet".into()),
        }
    }

    fn set_state(&self, state: &str) {
        if let Ok(mut s) = self.state.lock() {
            *s = state.to_string();
        }
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} ({state})", self.base));
        }
    }

    fn last_state(&self) -> String {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_with(state: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "status": {"phase": "Running", "ephemeralContainerStatuses": [{
                "name": "netdebug-abc123", "image": "probe", "imageID": "", "ready": false,
                "restartCount": 0, "state": state
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn states() {
        assert_eq!(
            observe(
                &pod_with(serde_json::json!({"running": {}})),
                "netdebug-abc123"
            ),
            Observation::Started(Started::Running)
        );
        assert_eq!(
            observe(&pod_with(serde_json::json!({"running": {}})), "other"),
            Observation::Waiting(None)
        );
        // A node probe pod: its regular container, and the pod refused by the kubelet.
        let probe_pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "netdebug-node-x", "namespace": "ops"},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "probe", "image": "probe", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {}}
            }]}
        }))
        .unwrap();
        assert_eq!(
            observe(&probe_pod, "probe"),
            Observation::Started(Started::Running)
        );
        let refused: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "netdebug-node-x", "namespace": "ops"},
            "status": {"phase": "Failed", "reason": "OutOfpods", "message": "Node didn't have enough resource: pods"}
        }))
        .unwrap();
        assert_eq!(
            observe(&refused, "probe"),
            Observation::Failed {
                reason: "OutOfpods".into(),
                message: "Node didn't have enough resource: pods".into()
            }
        );
        assert_eq!(
            observe(
                &pod_with(serde_json::json!({"terminated": {"exitCode": 2, "reason": "Error"}})),
                "netdebug-abc123"
            ),
            Observation::Started(Started::Terminated {
                exit_code: 2,
                reason: Some("Error".into()),
                message: None
            })
        );
        assert_eq!(
            observe(
                &pod_with(serde_json::json!({"waiting": {"reason": "ContainerCreating"}})),
                "netdebug-abc123"
            ),
            Observation::Waiting(Some("ContainerCreating".into()))
        );
        assert_eq!(
            observe(
                &pod_with(
                    serde_json::json!({"waiting": {"reason": "ErrImagePull", "message": "not found"}})
                ),
                "netdebug-abc123"
            ),
            Observation::Failed {
                reason: "ErrImagePull".into(),
                message: "not found".into()
            }
        );
    }
}
