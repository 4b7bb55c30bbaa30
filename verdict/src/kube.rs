//! Kubernetes-level evidence, gathered by the client before the probe runs (resolution of the
//! source pod, the destination Service/EndpointSlices/pods, NetworkPolicies, preflight). Pure
//! data: the client fills it, the verdict engine reads it, `-o json` prints it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeEvidence {
    pub source: Option<SourceInfo>,
    pub destination: Option<DestinationInfo>,
    /// The security profile the probe ran under, and why it was chosen.
    pub profile: Option<ProfileInfo>,
    /// Everything Kubernetes-level worth saying, good or bad.
    #[serde(default)]
    pub findings: Vec<KubeFinding>,
    /// The cluster DNS Service IP (`kube-system/kube-dns` ClusterIP, e.g. `10.96.0.10`), when
    /// the client could read it. The DNS rules compare it with the pod's resolv.conf.
    #[serde(default)]
    pub cluster_dns: Option<String>,
    /// The cluster domain (`cluster.local`), when known (from the Service DNS name or the
    /// kubelet configuration).
    #[serde(default)]
    pub cluster_domain: Option<String>,
    /// The Services the source pod is an endpoint of, with the port each sends to it (from
    /// the EndpointSlices that name the pod). None when the client did not read them
    /// (not asked, or not allowed): then nothing is said about them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serves: Option<Vec<ServedPort>>,
}

/// One port a Service sends to the source pod: `svc/web` port `http` -> 8080/TCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedPort {
    /// The Service's name (in the source pod's namespace).
    pub service: String,
    /// The EndpointSlice port's name (the Service port's), when it has one.
    #[serde(default)]
    pub name: Option<String>,
    /// The pod's port the traffic is sent to (the resolved targetPort).
    pub port: u16,
    /// `TCP`, `UDP`, `SCTP`.
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub namespace: String,
    pub pod: String,
    /// `deploy/checkout` when the pod was picked from a workload.
    #[serde(default)]
    pub picked_from: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub pod_ip: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DestinationInfo {
    Service(ServiceInfo),
    Pod(PodDestination),
    /// An IP or host name given directly, with its port.
    Address {
        host: String,
        port: Option<u16>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodDestination {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    /// `ClusterIP`, `NodePort`, `LoadBalancer`, `ExternalName`.
    pub service_type: String,
    /// None for headless (`None`) and ExternalName Services.
    #[serde(default)]
    pub cluster_ip: Option<String>,
    pub headless: bool,
    #[serde(default)]
    pub external_name: Option<String>,
    /// Empty when the Service has no selector (endpoints managed by hand).
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Ports examined (the one asked for, or all).
    #[serde(default)]
    pub ports: Vec<ServicePortInfo>,
    #[serde(default)]
    pub endpoints: Vec<EndpointInfo>,
    /// `NAME.NS.svc.<cluster domain>`.
    pub dns_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePortInfo {
    #[serde(default)]
    pub name: Option<String>,
    pub port: u16,
    pub protocol: String,
    /// As written in the Service: a number or a port name.
    pub target_port: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub ip: String,
    /// Resolved port for the Service port examined.
    #[serde(default)]
    pub port: Option<u16>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    #[serde(default)]
    pub pod: Option<String>,
    /// The container of `pod` that serves `port`: the one declaring it, else the pod's only
    /// container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileInfo {
    /// `restricted`, `baseline` or `netadmin`.
    pub name: String,
    /// Why: `namespace enforces restricted`, `--profile netadmin`...
    pub reason: String,
}

/// The one severity scale (see [`crate::Severity`]), re-exported here for the client.
pub use crate::model::Severity;

/// One Kubernetes-level fact with a stable code the verdict rules match on.
///
/// Judged once: the client, which sees the API objects, rates the fact from them alone
/// (`severity`); the verdict's rule for the code carries that rating into its finding and
/// judges only what the probe's evidence adds (a predicted deny that a connect contradicts, a
/// timeout a deny explains). Every code is read by a rule (see `rules/kube.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeFinding {
    pub code: KubeFindingCode,
    /// `info` for context, `warning` or `failure` for a problem the API objects show.
    pub severity: Severity,
    /// The object the finding is about: `svc/payments`, `networkpolicy/shop/deny-all`.
    pub object: String,
    /// One sentence, with the numbers or names that prove it.
    pub message: String,
    /// Structured details (selector, closest labels, ports...), stable keys.
    #[serde(default)]
    pub details: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KubeFindingCode {
    /// The Service has no selector (and so endpoints only if managed by hand).
    ServiceWithoutSelector,
    /// The selector matches no pod in the namespace; details carry `selector` and
    /// `closest_labels`.
    SelectorMatchesNoPod,
    /// No endpoints at all.
    NoEndpoints,
    /// Some or all endpoints are not ready; details carry the counts and readiness reasons.
    EndpointsNotReady,
    /// The targetPort (named or numeric) is not exposed by any container of the endpoint pods.
    TargetPortNotExposed,
    /// The Service is headless: the name resolves to pod IPs, there is no ClusterIP DNAT.
    HeadlessService,
    /// ExternalName: the name is a CNAME to `external_name`.
    ExternalNameService,
    /// A NetworkPolicy is predicted to deny this peer and port; details carry `policy`,
    /// `direction` (ingress/egress).
    NetworkPolicyDenies,
    /// NetworkPolicies select the pods and admit this peer and port.
    NetworkPolicyAdmits,
    /// All endpoints ready and the port resolves: the Kubernetes side looks right.
    ServiceHealthy,
    /// The destination pod is not Ready.
    DestinationPodNotReady,
    /// NetworkPolicies select the pod for a direction but whether they admit this connection
    /// cannot be told statically (a host name, namespace labels not readable, policies not
    /// readable); details carry `direction` and, when known, `policies`.
    NetworkPolicyUndetermined,
    /// The source is egress-isolated and no policy admits UDP 53 to the cluster DNS pods:
    /// name lookups will time out. Kept apart from `NetworkPolicyDenies` (which is about the
    /// destination's TCP port); details carry `policy`, `namespace`, `direction`.
    NetworkPolicyDeniesDns,
}

impl ServiceInfo {
    /// What `ip` is to this Service: its ClusterIP or one of its endpoints. Addresses are
    /// compared as addresses (`::1` and `0:0::1` are the same), not as text.
    pub fn role_of(&self, ip: IpAddr) -> Option<protocol::TargetRole> {
        let same = |text: &str| text.parse::<IpAddr>().is_ok_and(|a| a == ip);
        if self.cluster_ip.as_deref().is_some_and(same) {
            Some(protocol::TargetRole::ClusterIp)
        } else if self.endpoints.iter().any(|e| same(&e.ip)) {
            Some(protocol::TargetRole::Endpoint)
        } else {
            None
        }
    }

    /// The endpoint at `address` (its IP, and its port when the client resolved one).
    pub fn endpoint_at(&self, address: std::net::SocketAddr) -> Option<&EndpointInfo> {
        self.endpoints.iter().find(|e| {
            e.ip.parse::<IpAddr>().is_ok_and(|ip| ip == address.ip())
                && e.port.is_none_or(|p| p == address.port())
        })
    }
}

impl KubeEvidence {
    /// The first finding with `code`.
    pub fn finding(&self, code: KubeFindingCode) -> Option<&KubeFinding> {
        self.findings.iter().find(|f| f.code == code)
    }
}
