//! Facts about one pod that resolution needs: phase, readiness and why not, containers and
//! their declared ports. Pure functions over `k8s_openapi` Pods.

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::Labels;

pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

pub fn labels(pod: &Pod) -> Labels {
    pod.metadata.labels.clone().unwrap_or_default()
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Unknown")
}

pub fn is_running(pod: &Pod) -> bool {
    phase(pod) == "Running"
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's `Ready` condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

pub fn ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

pub fn node(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

pub fn containers(pod: &Pod) -> &[Container] {
    pod.spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
}

pub fn container_names(pod: &Pod) -> Vec<&str> {
    containers(pod).iter().map(|c| c.name.as_str()).collect()
}

/// Every declared port of every container (regular and restartable init "sidecar"
/// containers, which serve traffic too), with the container's name.
pub fn declared_ports(pod: &Pod) -> Vec<(&str, &ContainerPort)> {
    let spec = match pod.spec.as_ref() {
        Some(s) => s,
        None => return Vec::new(),
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten().map(move |p| (c.name.as_str(), p)))
        .collect()
}

pub fn port_protocol(p: &ContainerPort) -> &str {
    p.protocol.as_deref().unwrap_or("TCP")
}

/// The container port number a port name stands for in this pod (protocol must match).
pub fn named_port(pod: &Pod, name: &str, protocol: &str) -> Option<(String, u16)> {
    declared_ports(pod)
        .into_iter()
        .find(|(_, p)| p.name.as_deref() == Some(name) && port_protocol(p) == protocol)
        .and_then(|(c, p)| {
            u16::try_from(p.container_port)
                .ok()
                .map(|n| (c.to_string(), n))
        })
}

/// The container that serves `port`: the one declaring it, else the pod's only container
/// (declaring ports is optional). None when several containers could be listening.
pub fn container_serving(pod: &Pod, port: u16, protocol: &str) -> Option<String> {
    let declared = declared_ports(pod).into_iter().find(|(_, p)| {
        u16::try_from(p.container_port).is_ok_and(|n| n == port) && port_protocol(p) == protocol
    });
    match (declared, containers(pod)) {
        (Some((c, _)), _) => Some(c.to_string()),
        (None, [only]) => Some(only.name.clone()),
        (None, _) => None,
    }
}

/// `8080/TCP (http) in app`, for messages.
pub fn port_list(pod: &Pod) -> Vec<String> {
    declared_ports(pod)
        .into_iter()
        .map(|(c, p)| {
            let name = p
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            format!("{}/{}{name} in {c}", p.container_port, port_protocol(p))
        })
        .collect()
}

/// Why a pod is not running: `, reason Evicted: The node was low on memory` or the first
/// waiting container's reason (`, container app waiting: ImagePullBackOff: ...`), or empty.
pub fn not_running_reason(pod: &Pod) -> String {
    let status = match pod.status.as_ref() {
        Some(s) => s,
        None => return String::new(),
    };
    if let Some(reason) = status.reason.as_deref() {
        let message = status
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return format!(", reason {reason}{message}");
    }
    for cs in status.container_statuses.iter().flatten() {
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.as_deref().unwrap_or("waiting");
            let message = w
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return format!(", container {} waiting: {reason}{message}", cs.name);
        }
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let reason = t.reason.as_deref().unwrap_or("terminated");
            return format!(
                ", container {} terminated: {reason} (exit code {})",
                cs.name, t.exit_code
            );
        }
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status != "True")
    {
        let reason = c.reason.as_deref().unwrap_or("not scheduled");
        let message = c
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return format!(", {reason}{message}");
    }
    String::new()
}

/// Why a pod is not Ready, from what the API shows: the Ready condition's reason and
/// message, then per unready container its state and, for a running one, the readiness
/// probe that has not passed (the probe's failure output itself is only in Events).
pub fn not_ready_reason(pod: &Pod) -> String {
    let mut parts = Vec::new();
    if !is_running(pod) {
        parts.push(format!("phase {}{}", phase(pod), not_running_reason(pod)));
        return parts.join("; ");
    }
    if let Some(c) = ready_condition(pod) {
        let mut s = format!("Ready={}", c.status);
        if let Some(r) = &c.reason {
            s.push_str(&format!(" {r}"));
        }
        if let Some(m) = &c.message {
            s.push_str(&format!(" ({m})"));
        }
        parts.push(s);
    } else {
        parts.push("no Ready condition yet".to_string());
    }
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    for cs in statuses.into_iter().flatten().filter(|cs| !cs.ready) {
        let state = cs.state.as_ref();
        let restarts = if cs.restart_count > 0 {
            format!(", {} restarts", cs.restart_count)
        } else {
            String::new()
        };
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            parts.push(format!(
                "container {} waiting: {}{}{restarts}",
                cs.name,
                w.reason.as_deref().unwrap_or("unknown reason"),
                w.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            parts.push(format!(
                "container {} terminated: {} (exit code {}){restarts}",
                cs.name,
                t.reason.as_deref().unwrap_or("unknown reason"),
                t.exit_code
            ));
        } else {
            let probe = containers(pod)
                .iter()
                .find(|c| c.name == cs.name)
                .and_then(|c| c.readiness_probe.as_ref());
            parts.push(match probe {
                Some(p) => format!(
                    "container {} running but its readiness probe ({}) has not passed{restarts}",
                    cs.name,
                    describe_probe(p)
                ),
                None if cs.started == Some(false) => {
                    format!(
                        "container {} running, its startup probe has not passed{restarts}",
                        cs.name
                    )
                }
                None => format!("container {} running but not ready{restarts}", cs.name),
            });
        }
    }
    parts.join("; ")
}

/// `HTTP GET :8080/healthz`, `TCP :5432`, `exec cat /tmp/ready`, `gRPC :9090`.
fn describe_probe(p: &Probe) -> String {
    let port = |p: &IntOrString| match p {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    if let Some(h) = &p.http_get {
        format!(
            "{} GET :{}{}",
            h.scheme.as_deref().unwrap_or("HTTP"),
            port(&h.port),
            h.path.as_deref().unwrap_or("/")
        )
    } else if let Some(t) = &p.tcp_socket {
        format!("TCP :{}", port(&t.port))
    } else if let Some(g) = &p.grpc {
        format!("gRPC :{}", g.port)
    } else if let Some(e) = &p.exec {
        format!("exec {}", e.command.clone().unwrap_or_default().join(" "))
    } else {
        "unknown kind".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn not_ready_names_condition_and_readiness_probe() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "readinessProbe": {"httpGet": {"port": 8080, "path": "/healthz"}}}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [app]"}],
                "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "started": true, "state": {"running": {}}}]}
        }));
        assert!(!is_ready(&p));
        assert_eq!(
            not_ready_reason(&p),
            "Ready=False ContainersNotReady (containers with unready status: [app]); container app running but its readiness probe (HTTP GET :8080/healthz) has not passed"
        );
    }

    #[test]
    fn not_running_prefers_pod_reason_then_container_waiting() {
        let evicted = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Failed", "reason": "Evicted", "message": "low on memory"}
        }));
        assert_eq!(
            not_running_reason(&evicted),
            ", reason Evicted: low on memory"
        );
        let pulling = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "back-off pulling image"}}}]}
        }));
        assert_eq!(
            not_running_reason(&pulling),
            ", container app waiting: ImagePullBackOff: back-off pulling image"
        );
    }

    #[test]
    fn named_ports_include_sidecars_and_respect_protocol() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "containers": [{"name": "app", "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
                "initContainers": [
                    {"name": "proxy", "restartPolicy": "Always", "ports": [{"name": "https", "containerPort": 8443}]},
                    {"name": "init", "ports": [{"name": "setup", "containerPort": 9999}]}
                ]
            }
        }));
        assert_eq!(named_port(&p, "https", "TCP"), Some(("proxy".into(), 8443)));
        assert_eq!(named_port(&p, "dns", "TCP"), None);
        assert_eq!(named_port(&p, "dns", "UDP"), Some(("app".into(), 53)));
        assert_eq!(named_port(&p, "setup", "TCP"), None);
        assert_eq!(
            port_list(&p),
            vec!["53/UDP (dns) in app", "8443/TCP (https) in proxy"]
        );
    }
}
