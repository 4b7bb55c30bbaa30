//! The node's view (`kubectl netdebug node/NAME --to DEST`): the probe runs in a short-lived pod
//! on that node, in the node's own network namespace (hostNetwork), instead of an ephemeral
//! container in a pod. This module holds the pure parts: recognising `node/NAME`, checking the
//! node and the namespace the pod is created in, and the pod's shape. The run is in
//! `run/node.rs`.
//!
//! The probe pod's privileges, and why each:
//! - `hostNetwork: true`: the node's network namespace is what is being looked at (and where
//!   the node's conntrack table is read from, for both uses);
//! - uid 0 with only `NET_RAW` (capture, ICMP for the MTU search) and `NET_ADMIN` (conntrack
//!   over netlink) added, every other capability dropped: Kubernetes gives added
//!   capabilities to root only; no `privileged`, no privilege escalation, read-only root
//!   filesystem, no service account token;
//! - with `--via-node` only (entering a pod's namespace from the node): `hostPID: true` to
//!   see the pod's processes (found by the pod's UID in their cgroup paths), `SYS_PTRACE` to
//!   open another process's namespace file (the kernel asks for it when that process holds
//!   capabilities the probe lacks, as a pod's processes do), and `SYS_ADMIN`, which setns
//!   requires to enter a network namespace;
//! - `activeDeadlineSeconds`: the kubelet kills it even if this client dies mid-run, and the
//!   client deletes it at the end of the run (also after an error or Ctrl-C).
//!
//! Host namespaces are forbidden by the Pod Security levels `baseline` and `restricted`, so
//! the pod goes to a namespace that admits privileged pods (`--node-namespace`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::error::Error;
use crate::profile::PSS_ENFORCE_LABEL;

/// The probe container's name in the node probe pod.
pub const PROBE_CONTAINER: &str = "probe";
/// The label every node probe pod carries (to find leftovers: `kubectl get pods -l ...`).
pub const NODE_PROBE_LABEL: &str = "netdebug.io/node-probe";
/// How long the kubelet lets the pod live past the client's own `--timeout`.
pub const ACTIVE_DEADLINE_MARGIN_SECS: i64 = 30;

/// `node/NAME` (`no/`, `nodes/`): the node's name; None for any other SOURCE.
pub fn node_source(text: &str) -> Option<Result<String, Error>> {
    let (kind, name) = text.trim().split_once('/')?;
    if !matches!(kind.to_ascii_lowercase().as_str(), "node" | "no" | "nodes") {
        return None;
    }
    let bad = |reason: String| Error::InvalidSource {
        input: text.to_string(),
        reason,
    };
    if name.is_empty() {
        return Some(Err(bad("no node name after `node/`".into())));
    }
    // Node names are DNS subdomains: lowercase letters, digits, `-` and `.`.
    let valid = name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.']);
    if !valid {
        return Some(Err(bad(format!(
            "`{name}` is not a node name (lowercase letters, digits, `-` and `.`)"
        ))));
    }
    Some(Ok(name.to_string()))
}

/// The node must be Ready and run Linux.
pub fn check_node(node: &Node) -> Result<(), Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let os = node
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(crate::preflight::NODE_OS_LABEL))
        .cloned();
    if let Some(os) = os.filter(|os| os != "linux") {
        return Err(Error::InvalidInput(format!(
            "node {name} runs {os}; the probe needs a Linux node"
        )));
    }
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => Err(Error::InvalidInput(format!(
            "node {name} is not Ready (Ready={}{}): a probe pod would not start there",
            c.status,
            c.reason
                .as_deref()
                .map(|r| format!(", {r}: {}", c.message.as_deref().unwrap_or_default()))
                .unwrap_or_default()
        ))),
        None => Err(Error::InvalidInput(format!(
            "node {name} reports no Ready condition: a probe pod would not start there"
        ))),
    }
}

/// The namespace must admit a pod with host namespaces: Pod Security `privileged`, or no
/// level enforced. `labels` None: the namespace could not be read (the API server decides).
pub fn check_admits_host_pods(
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
    flag_given: bool,
) -> Result<(), Error> {
    let level = labels
        .and_then(|l| l.get(PSS_ENFORCE_LABEL))
        .map(String::as_str);
    match level {
        None | Some("privileged") => Ok(()),
        Some(level) => {
            let hint = if flag_given {
                "choose another"
            } else {
                "give --node-namespace NS, a namespace"
            };
            Err(Error::InvalidInput(format!(
                "namespace {namespace} enforces Pod Security level {level}, which forbids the \
                 host network namespace the node probe runs in; {hint} that admits privileged \
                 pods (no pod-security.kubernetes.io/enforce label, or `privileged`)"
            )))
        }
    }
}

/// What `--via-node` needs of the pod: its UID and IP, and a namespace of its own (a pod on
/// the host network has none to enter: its namespace is the node's).
pub fn enter_pod(pod: &Pod) -> Result<EnterPod, Error> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "NODE".into());
        return Err(Error::InvalidInput(format!(
            "pod {name} uses the host network: its network namespace is node {node}'s; run \
             kubectl netdebug node/{node} instead of --via-node"
        )));
    }
    let uid = pod.metadata.uid.clone().ok_or_else(|| {
        Error::InvalidInput(format!(
            "pod {name} has no UID: --via-node finds the pod by it"
        ))
    })?;
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "pod {name} has no IP yet: --via-node checks the namespace it enters holds it"
            ))
        })?;
    Ok(EnterPod { uid, ip })
}

/// The node probe pod.
#[derive(Debug, Clone)]
pub struct NodeProbePod {
    pub name: String,
    pub namespace: String,
    pub node: String,
    pub image: String,
    pub pull_policy: Option<String>,
    pub plan_json: String,
    /// The kubelet's limit on the pod's life.
    pub active_deadline_secs: i64,
    /// `--via-node`: the pod whose network namespace the probe enters from the node.
    pub enter: Option<EnterPod>,
}

/// A pod's network namespace as the probe finds it from the node: by the pod's UID in its
/// processes' cgroup paths, checked to hold the pod's IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterPod {
    pub uid: String,
    pub ip: String,
}

impl NodeProbePod {
    /// The probe's command line: the node's conntrack table always (the Service dataplane's
    /// proof), and the pod to enter for `--via-node`.
    fn command(&self) -> Vec<String> {
        let mut command = vec![
            crate::image::PROBE_PATH_IN_IMAGE.to_string(),
            "--node-conntrack".to_string(),
        ];
        if let Some(pod) = &self.enter {
            command.extend([
                "--pod-uid".to_string(),
                pod.uid.clone(),
                "--pod-ip".to_string(),
                pod.ip.clone(),
            ]);
        }
        command.push(self.plan_json.clone());
        command
    }

    /// The capabilities added to the probe container (see the module's comment for why).
    pub fn capabilities(&self) -> Vec<&'static str> {
        let mut caps = vec!["NET_RAW", "NET_ADMIN"];
        if self.enter.is_some() {
            caps.extend(["SYS_ADMIN", "SYS_PTRACE"]);
        }
        caps
    }
}

impl NodeProbePod {
    pub fn to_pod(&self) -> Result<Pod, Error> {
        let mut container = serde_json::json!({
            "name": PROBE_CONTAINER,
            "image": self.image,
            "command": self.command(),
            "securityContext": {
                "runAsUser": 0,
                "runAsNonRoot": false,
                "privileged": false,
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"], "add": self.capabilities()},
            },
            "terminationMessagePolicy": "FallbackToLogsOnError",
        });
        if let Some(p) = &self.pull_policy {
            container["imagePullPolicy"] = p.clone().into();
        }
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {NODE_PROBE_LABEL: "true", "app.kubernetes.io/name": "netdebug-probe"},
            },
            "spec": {
                // Bound to the node directly: no scheduler, and taints that only keep new
                // pods away (NoSchedule) do not apply; NoExecute ones are tolerated below.
                "nodeName": self.node,
                "hostNetwork": true,
                "hostPID": self.enter.is_some(),
                // The node's own resolver: the node's view of DNS, not the cluster's.
                "dnsPolicy": "Default",
                "restartPolicy": "Never",
                "activeDeadlineSeconds": self.active_deadline_secs,
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "tolerations": [{"operator": "Exists"}],
                "containers": [container],
            },
        });
        serde_json::from_value(pod)
            .map_err(|e| Error::InvalidInput(format!("cannot build the node probe pod: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_sources_are_recognised_and_checked() {
        assert_eq!(node_source("node/vm").unwrap().unwrap(), "vm");
        assert_eq!(
            node_source("nodes/ip-10-0-1-2.ec2.internal")
                .unwrap()
                .unwrap(),
            "ip-10-0-1-2.ec2.internal"
        );
        assert!(node_source("pod/web").is_none());
        assert!(node_source("web").is_none());
        assert!(node_source("node/").unwrap().is_err());
        assert!(node_source("node/Bad_Name").unwrap().is_err());
    }

    fn node(labels: serde_json::Value, ready: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletNotReady", "message": "PLEG is not healthy"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_node_must_be_ready_and_linux() {
        assert!(check_node(&node(
            serde_json::json!({"kubernetes.io/os": "linux"}),
            "True"
        ))
        .is_ok());
        let e = check_node(&node(serde_json::json!({}), "False"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node n1 is not Ready (Ready=False, KubeletNotReady: PLEG"),
            "{e}"
        );
        let e = check_node(&node(
            serde_json::json!({"kubernetes.io/os": "windows"}),
            "True",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("runs windows"), "{e}");
    }

    #[test]
    fn only_privileged_namespaces_admit_the_node_probe() {
        let level = |l: &str| BTreeMap::from([(PSS_ENFORCE_LABEL.to_string(), l.to_string())]);
        assert!(check_admits_host_pods("ops", None, false).is_ok());
        assert!(check_admits_host_pods("ops", Some(&level("privileged")), true).is_ok());
        let e = check_admits_host_pods("shop", Some(&level("baseline")), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("enforces Pod Security level baseline"), "{e}");
        assert!(e.contains("--node-namespace"), "{e}");
    }

    #[test]
    fn the_probe_pod_has_the_least_privilege_that_works() {
        let pod = NodeProbePod {
            name: "netdebug-node-abc".into(),
            namespace: "ops".into(),
            node: "vm".into(),
            image: "probe:v1".into(),
            pull_policy: Some("IfNotPresent".into()),
            plan_json: "{}".into(),
            active_deadline_secs: 90,
            enter: None,
        }
        .to_pod()
        .unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("vm"));
        assert_eq!(spec.host_network, Some(true));
        assert_eq!(
            spec.host_pid,
            Some(false),
            "the node's own namespace needs no host PIDs"
        );
        assert_eq!(
            spec.containers[0].command.clone().unwrap(),
            ["/netdebug-probe", "--node-conntrack", "{}"]
        );
        assert_eq!(spec.active_deadline_seconds, Some(90));
        assert_eq!(spec.automount_service_account_token, Some(false));
        let sc = spec.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.privileged, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.drop.unwrap(), ["ALL"]);
        assert_eq!(caps.add.unwrap(), ["NET_RAW", "NET_ADMIN"]);
    }

    #[test]
    fn entering_a_pod_adds_host_pids_and_the_capabilities_setns_needs() {
        let pod = NodeProbePod {
            name: "netdebug-node-abc".into(),
            namespace: "ops".into(),
            node: "vm".into(),
            image: "probe:v1".into(),
            pull_policy: None,
            plan_json: "{}".into(),
            active_deadline_secs: 90,
            enter: Some(EnterPod {
                uid: "0b5c1f2e-1111-2222-3333-444455556666".into(),
                ip: "10.244.0.7".into(),
            }),
        }
        .to_pod()
        .unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.host_pid, Some(true));
        assert_eq!(spec.host_network, Some(true));
        let c = &spec.containers[0];
        assert_eq!(
            c.command.clone().unwrap(),
            [
                "/netdebug-probe",
                "--node-conntrack",
                "--pod-uid",
                "0b5c1f2e-1111-2222-3333-444455556666",
                "--pod-ip",
                "10.244.0.7",
                "{}"
            ]
        );
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.privileged, Some(false));
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.drop.unwrap(), ["ALL"]);
        assert_eq!(
            caps.add.unwrap(),
            ["NET_RAW", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"]
        );
    }
}
