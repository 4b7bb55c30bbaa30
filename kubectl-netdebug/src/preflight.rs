//! Preflight: everything that must hold before a probe is injected, each failure a specific
//! sentence (server too old, which permission is missing, pod not running, Windows node).

use std::collections::BTreeMap;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, PostParams};

use crate::connect::ApiTarget;
use crate::error::{api_status, Error, Result};

/// First release with the `ephemeralcontainers` subresource enabled by default (beta, 1.23).
pub const MIN_SERVER_MINOR: u32 = 23;

/// The node label that names the node's operating system.
pub const NODE_OS_LABEL: &str = "kubernetes.io/os";

/// `major.minor` of the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Parse `/version` the way kubectl does: `major`/`minor` when they are numbers (managed
/// clusters decorate the minor, `"24+"`), else the semantic version in `gitVersion`
/// (`v1.24.0`, `v1.28.3-eks-4f4795d`): servers built from source answer empty `major` and
/// `minor` and a good `gitVersion`.
pub fn parse_server_version(major: &str, minor: &str, git_version: &str) -> Option<ServerVersion> {
    let number = |s: &str| -> Option<u32> {
        let s = s.strip_suffix('+').unwrap_or(s);
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if let (Some(major), Some(minor)) = (number(major), number(minor)) {
        return Some(ServerVersion { major, minor });
    }
    let semver = git_version.strip_prefix('v').unwrap_or(git_version);
    let mut parts = semver.splitn(3, '.');
    let major = parts.next().and_then(|p| p.parse().ok())?;
    let minor = parts
        .next()
        .map(|p| p.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""))
        .and_then(|p| p.parse().ok())?;
    Some(ServerVersion { major, minor })
}

/// GET /version and refuse servers without ephemeral containers.
pub async fn check_server_version(
    client: &kube::Client,
    target: &ApiTarget,
) -> Result<ServerVersion> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| Error::from_kube("get /version", e, Some(target)))?;
    let version =
        parse_server_version(&info.major, &info.minor, &info.git_version).ok_or_else(|| {
            Error::Api {
                call: "get /version".into(),
                detail: format!(
                    "no Kubernetes version in the answer: major={:?} minor={:?} gitVersion={:?}",
                    info.major, info.minor, info.git_version
                ),
            }
        })?;
    if version
        < (ServerVersion {
            major: 1,
            minor: MIN_SERVER_MINOR,
        })
    {
        return Err(Error::ServerTooOld {
            version: info.git_version.clone(),
        });
    }
    Ok(version)
}

/// One permission the run needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    pub why: &'static str,
}

impl Access {
    /// `pods/ephemeralcontainers`, `endpointslices.discovery.k8s.io`: as `kubectl auth can-i`
    /// spells it.
    pub fn resource_name(&self) -> String {
        let mut s = self.resource.to_string();
        if !self.group.is_empty() {
            s = format!("{s}.{}", self.group);
        }
        if let Some(sub) = self.subresource {
            s = format!("{s}/{sub}");
        }
        s
    }
}

/// The namespaced permissions every run needs, checked with SelfSubjectAccessReview.
pub const POD_ACCESS: &[Access] = &[
    Access {
        verb: "get",
        group: "",
        resource: "pods",
        subresource: None,
        why: "to read the source pod",
    },
    Access {
        verb: "patch",
        group: "",
        resource: "pods",
        subresource: Some("ephemeralcontainers"),
        why: "to inject the probe as an ephemeral container",
    },
    Access {
        verb: "watch",
        group: "",
        resource: "pods",
        subresource: None,
        why: "to wait for the probe to start",
    },
    Access {
        verb: "get",
        group: "",
        resource: "pods",
        subresource: Some("log"),
        why: "to stream the probe's output",
    },
];

/// `--via-node`: the source pod is only read (its UID, IP and node); the probe runs in a
/// node probe pod ([`NODE_POD_ACCESS`], in the node namespace).
pub const VIA_NODE_SOURCE_ACCESS: &[Access] = &[Access {
    verb: "get",
    group: "",
    resource: "pods",
    subresource: None,
    why: "to read the source pod",
}];

/// Also needed when the destination is a Service.
pub const SERVICE_ACCESS: &[Access] = &[
    Access {
        verb: "get",
        group: "",
        resource: "services",
        subresource: None,
        why: "to resolve a Service destination",
    },
    Access {
        verb: "list",
        group: "discovery.k8s.io",
        resource: "endpointslices",
        subresource: None,
        why: "to find a Service's endpoints",
    },
];

pub fn access_review(access: &Access, namespace: &str) -> SelfSubjectAccessReview {
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                // "" asks about a cluster-scoped resource (nodes).
                namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
                verb: Some(access.verb.to_string()),
                group: Some(access.group.to_string()),
                resource: Some(access.resource.to_string()),
                subresource: access.subresource.map(str::to_string),
                ..Default::default()
            }),
            non_resource_attributes: None,
        },
        ..Default::default()
    }
}

/// The permissions a run needs: always those on pods, and those on Services and
/// EndpointSlices when the destination is a Service.
pub fn required_access(service_destination: bool) -> Vec<Access> {
    let mut v = POD_ACCESS.to_vec();
    if service_destination {
        v.extend_from_slice(SERVICE_ACCESS);
    }
    v
}

/// Ask the API server, for each permission in `needed`, whether the current user has it. All
/// missing permissions are named in one error.
pub async fn check_rbac(
    client: &kube::Client,
    target: &ApiTarget,
    namespace: &str,
    needed: &[Access],
) -> Result<()> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = needed.iter().map(|access| {
        let api = api.clone();
        async move {
            let answer = api
                .create(&PostParams::default(), &access_review(access, namespace))
                .await
                .map_err(|e| Error::from_kube("create selfsubjectaccessreview", e, Some(target)))?;
            let status = answer.status.unwrap_or_default();
            Ok::<_, Error>((access, status.allowed, status.reason))
        }
    });
    let answers = futures::future::try_join_all(reviews).await?;
    let missing: Vec<String> = answers
        .into_iter()
        .filter(|(_, allowed, _)| !allowed)
        .map(|(a, _, reason)| {
            let mut s = format!("{} {} ({})", a.verb, a.resource_name(), a.why);
            if let Some(r) = reason.filter(|r| !r.is_empty()) {
                s.push_str(&format!(": {r}"));
            }
            s
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let (scope, grant) = match namespace {
        "" => ("cluster-wide".to_string(), "a ClusterRole"),
        ns => (format!("in namespace {ns}"), "a Role"),
    };
    Err(Error::PermissionsMissing(format!(
        "RBAC: you may not {} {scope} (context {}); ask for {grant} granting it",
        missing.join("; nor "),
        target.context
    )))
}

/// What the node view needs in the namespace its probe pod runs in.
pub const NODE_POD_ACCESS: &[Access] = &[
    Access {
        verb: "create",
        group: "",
        resource: "pods",
        subresource: None,
        why: "to start the node probe pod",
    },
    Access {
        verb: "delete",
        group: "",
        resource: "pods",
        subresource: None,
        why: "to remove the node probe pod after the run",
    },
    Access {
        verb: "get",
        group: "",
        resource: "pods",
        subresource: None,
        why: "to watch the node probe pod start",
    },
    Access {
        verb: "get",
        group: "",
        resource: "pods",
        subresource: Some("log"),
        why: "to read the probe's events",
    },
];

/// The node views read the node (Ready, Linux) before creating their probe pod: nodes are
/// cluster-scoped, so this is asked cluster-wide (`check_rbac` with namespace "").
pub const NODE_READ_ACCESS: &[Access] = &[Access {
    verb: "get",
    group: "",
    resource: "nodes",
    subresource: None,
    why: "to check the node is Ready and runs Linux",
}];

/// Reading the probe's events through port-forward: not needed (the log is read without it),
/// only faster.
pub const PORT_FORWARD_ACCESS: Access = Access {
    verb: "create",
    group: "",
    resource: "pods",
    subresource: Some("portforward"),
    why: "to read the probe's events as soon as it starts",
};

/// Whether the current user has `access` in `namespace`. A review that fails counts as no:
/// callers use this for what the run can do without.
pub async fn allowed(client: &kube::Client, namespace: &str, access: &Access) -> bool {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    api.create(&PostParams::default(), &access_review(access, namespace))
        .await
        .ok()
        .and_then(|answer| answer.status)
        .is_some_and(|status| status.allowed)
}

/// Read the namespace: unknown namespace is an error; a namespace we may not read yields
/// `None` (its Pod Security labels are then unknown).
pub async fn namespace_labels(
    client: &kube::Client,
    target: &ApiTarget,
    namespace: &str,
) -> Result<Option<BTreeMap<String, String>>> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.get(namespace).await {
        Ok(ns) => Ok(Some(ns.metadata.labels.unwrap_or_default())),
        Err(e) if api_status(&e) == Some(404) => Err(Error::NamespaceNotFound(namespace.into())),
        Err(e) if api_status(&e) == Some(403) => Ok(None),
        Err(e) => Err(Error::from_kube(
            format!("get namespace {namespace}"),
            e,
            Some(target),
        )),
    }
}

/// The source pod must be Running: an ephemeral container joins a live network namespace.
pub fn check_pod_running(pod: &Pod) -> Result<()> {
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Unknown".into());
    if phase == "Running" {
        return Ok(());
    }
    let mut reason = String::new();
    if let Some(r) = status.reason.as_deref().filter(|r| !r.is_empty()) {
        reason = format!(", reason {r}");
        if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
            reason.push_str(&format!(": {m}"));
        }
    } else {
        // Pending pods say why in their containers' waiting states or their conditions.
        let waiting = status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .find_map(|cs| {
                let w = cs.state.as_ref()?.waiting.as_ref()?;
                Some((cs.name.clone(), w.reason.clone()?, w.message.clone()))
            });
        if let Some((container, r, m)) = waiting {
            reason = format!(", container {container} waiting: {r}");
            if let Some(m) = m.filter(|m| !m.is_empty()) {
                reason.push_str(&format!(": {m}"));
            }
        } else if let Some(c) = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.status == "False" && c.reason.as_deref().is_some_and(|r| !r.is_empty()))
        {
            reason = format!(
                ", {} {}: {}",
                c.type_,
                c.reason.as_deref().unwrap_or_default(),
                c.message.as_deref().unwrap_or_default()
            );
        }
    }
    Err(Error::PodNotRunning {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        phase,
        reason,
    })
}

/// The pod's node must run Linux. Reads the node's `kubernetes.io/os` label; when nodes may not
/// be read (common for namespace-scoped users), falls back to what the pod itself says
/// (`spec.os.name`, a `kubernetes.io/os` nodeSelector), else assumes Linux.
pub async fn check_linux_node(client: &kube::Client, target: &ApiTarget, pod: &Pod) -> Result<()> {
    let spec = pod.spec.clone().unwrap_or_default();
    let Some(node_name) = spec.node_name.clone() else {
        return Ok(()); // not scheduled: check_pod_running already refused it
    };
    let api: Api<Node> = Api::all(client.clone());
    let os = match api.get(&node_name).await {
        Ok(node) => node
            .metadata
            .labels
            .and_then(|l| l.get(NODE_OS_LABEL).cloned()),
        Err(e) if matches!(api_status(&e), Some(403) | Some(404)) => None,
        Err(e) => {
            return Err(Error::from_kube(
                format!("get node {node_name}"),
                e,
                Some(target),
            ))
        }
    };
    let os = os
        .or_else(|| spec.os.as_ref().map(|o| o.name.clone()))
        .or_else(|| {
            spec.node_selector
                .as_ref()
                .and_then(|s| s.get(NODE_OS_LABEL).cloned())
        });
    match os.as_deref() {
        None | Some("linux") => Ok(()),
        Some(other) => Err(Error::NotLinuxNode {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            node: node_name,
            os: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32) -> Option<ServerVersion> {
        Some(ServerVersion { major, minor })
    }

    #[test]
    fn version_parsing() {
        assert_eq!(parse_server_version("1", "23+", "v1.23.4"), v(1, 23));
        assert_eq!(parse_server_version("1", "33", "v1.33.0"), v(1, 33));
        // Numeric fields win over gitVersion, as in kubectl.
        assert_eq!(parse_server_version("1", "24", "v1.99.0"), v(1, 24));
        // Not numbers: gitVersion decides.
        assert_eq!(parse_server_version("", "33", "v1.33.2"), v(1, 33));
        assert_eq!(
            parse_server_version("1", "x", "v1.28.3-eks-4f4795d"),
            v(1, 28)
        );
        assert_eq!(parse_server_version("", "", "v1.24.0-alpha.1"), v(1, 24));
        assert_eq!(parse_server_version("", "", "1.26.0"), v(1, 26));
        assert_eq!(parse_server_version("", "", ""), None);
        assert_eq!(parse_server_version("one", "two", "vX.Y"), None);
    }

    /// Regression: a server built from source answers `major: ""`, `minor: ""` and
    /// `gitVersion: v1.24.0`; it was refused as "unrecognised" although the version was there.
    #[test]
    fn empty_major_minor_with_git_version_is_accepted() {
        assert_eq!(parse_server_version("", "", "v1.24.0"), v(1, 24));
    }

    #[test]
    fn resource_names_as_kubectl_spells_them() {
        let names: Vec<String> = required_access(true)
            .iter()
            .map(Access::resource_name)
            .collect();
        assert!(names.contains(&"pods/ephemeralcontainers".to_string()));
        assert!(names.contains(&"pods/log".to_string()));
        assert!(names.contains(&"endpointslices.discovery.k8s.io".to_string()));
    }

    #[test]
    fn pending_pod_names_the_waiting_reason() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}
            }]}
        }))
        .unwrap();
        let err = check_pod_running(&pod).unwrap_err().to_string();
        assert_eq!(
            err,
            "pod \"web\" in namespace \"shop\" is not running (phase Pending, container app waiting: ImagePullBackOff: Back-off pulling image \"x\")"
        );
        let evicted: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory"}
        }))
        .unwrap();
        assert_eq!(
            check_pod_running(&evicted).unwrap_err().to_string(),
            "pod \"web\" in namespace \"shop\" is not running (phase Failed, reason Evicted: low on memory)"
        );
    }
}
