//! Injection: the probe as an ephemeral container, added with a strategic-merge patch on the
//! pod's `ephemeralcontainers` subresource (the list merges by `name`, so the patch appends).

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod};
use kube::api::{Api, Patch, PatchParams};
use rand::distr::{Alphanumeric, SampleString};

use crate::connect::ApiTarget;
use crate::error::{api_status, error_chain, Error, Result};
use crate::image::PROBE_PATH_IN_IMAGE;
use crate::profile::Profile;

/// Everything that goes into the ephemeral container.
#[derive(Debug, Clone)]
pub struct ProbeContainer {
    /// `netdebug-<6 random lowercase alphanumerics>`.
    pub name: String,
    /// The container whose namespaces (process view; the network one is the pod's) are shared;
    /// None for a probe that is the container of a pod of its own (the node views').
    pub target_container: Option<String>,
    pub image: String,
    pub pull_policy: Option<String>,
    pub profile: Profile,
    pub plan: protocol::Plan,
}

impl ProbeContainer {
    /// The probe is the container of a pod of its own (the node views' probe pod, which has
    /// no target container), not an ephemeral container added to the source pod.
    pub fn in_own_pod(&self) -> bool {
        self.target_container.is_none()
    }
}

/// A fresh container name; random so that repeated runs never collide (ephemeral containers
/// cannot be removed from a pod, and names must be unique within it).
pub fn random_container_name() -> String {
    let suffix = Alphanumeric
        .sample_string(&mut rand::rng(), 6)
        .to_ascii_lowercase();
    format!("netdebug-{suffix}")
}

impl ProbeContainer {
    pub fn to_ephemeral_container(&self) -> EphemeralContainer {
        EphemeralContainer {
            name: self.name.clone(),
            image: Some(self.image.clone()),
            image_pull_policy: self.pull_policy.clone(),
            // One argument: the whole plan as JSON, so no shell or quoting is involved.
            command: Some(vec![
                PROBE_PATH_IN_IMAGE.to_string(),
                serde_json::to_string(&self.plan).expect("a plan always serialises"),
            ]),
            target_container_name: self.target_container.clone(),
            security_context: Some(self.profile.security_context()),
            // No `resources`: the API rejects them on ephemeral containers ("Resources are not
            // allowed for ephemeral containers. Ephemeral containers use spare resources already
            // allocated to the pod." — core/v1 EphemeralContainerCommon). The probe is small and
            // bounded by its own deadline instead.
            resources: None,
            stdin: Some(false),
            tty: Some(false),
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            ..Default::default()
        }
    }

    /// The strategic-merge patch body.
    pub fn patch_body(&self) -> serde_json::Value {
        serde_json::json!({
            "spec": { "ephemeralContainers": [ self.to_ephemeral_container() ] }
        })
    }
}

/// Add the probe to the pod. Returns the pod as the API server stored it (its
/// `resourceVersion` is where the wait's watch starts).
pub async fn inject(
    client: &kube::Client,
    target: &ApiTarget,
    namespace: &str,
    pod: &str,
    container: &ProbeContainer,
) -> Result<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = Patch::Strategic(container.patch_body());
    api.patch_subresource("ephemeralcontainers", pod, &PatchParams::default(), &patch)
        .await
        .map_err(|e| inject_error(e, target, namespace, pod))
}

fn inject_error(e: kube::Error, target: &ApiTarget, namespace: &str, pod: &str) -> Error {
    let fail = |detail: String| Error::Inject {
        namespace: namespace.into(),
        pod: pod.into(),
        detail,
    };
    match (&e, api_status(&e)) {
        (kube::Error::Api(s), Some(404)) if s.message.contains("the server could not find") => {
            // The pod exists (resolution read it), so the subresource is what is missing.
            Error::ServerTooOld {
                version: "without the ephemeralcontainers subresource".into(),
            }
        }
        (kube::Error::Api(_), Some(404)) => fail("the pod no longer exists".into()),
        (kube::Error::Api(s), Some(403)) if s.message.contains("PodSecurity") => fail(format!(
            "{} (choose a weaker --profile, e.g. restricted)",
            s.message
        )),
        (kube::Error::Api(s), Some(_)) => fail(s.message.clone()),
        (kube::Error::HyperError(_) | kube::Error::Service(_), _) => {
            Error::from_kube("patch pods/ephemeralcontainers", e, Some(target))
        }
        _ => fail(error_chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_random_lowercase() {
        let a = random_container_name();
        let b = random_container_name();
        assert_ne!(a, b);
        let suffix = a.strip_prefix("netdebug-").unwrap();
        assert_eq!(suffix.len(), 6);
        assert!(suffix
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
