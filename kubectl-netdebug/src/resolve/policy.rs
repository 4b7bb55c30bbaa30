//! NetworkPolicies through the API: read the policies of the source's and the destination's
//! namespaces (and those namespaces' labels, only when a policy needs them), evaluate egress at
//! the source and ingress at each destination pod with `netpol`, and turn the decisions into
//! findings that name the deciding policy.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use netdebug_verdict::kube::{KubeFinding, KubeFindingCode, Severity};

use super::labels::Labels;
use super::netpol::{self, Decision, Direction, NamespaceLabels, Peer, PeerPod, PortContext};
use super::{api, pods, ResolvedSource};

/// One destination pod and the port the connection reaches it on (the resolved targetPort).
pub struct DestinationPod<'a> {
    pub pod: &'a Pod,
    pub port: u16,
}

/// A destination that is not a known pod: an IP or a host name, and its port.
pub struct DestinationAddress<'a> {
    pub host: &'a str,
    pub port: u16,
}

/// Policies and namespace labels, each read once.
struct Cache<'c> {
    client: &'c kube::Client,
    policies: BTreeMap<String, Result<Vec<NetworkPolicy>, String>>,
    namespaces: BTreeMap<String, NamespaceLabels>,
}

impl<'c> Cache<'c> {
    async fn policies(&mut self, ns: &str) -> &Result<Vec<NetworkPolicy>, String> {
        if !self.policies.contains_key(ns) {
            let got = api::list::<NetworkPolicy>(
                self.client,
                ns,
                None,
                "networkpolicies.networking.k8s.io",
            )
            .await
            .map_err(|e| e.to_string());
            self.policies.insert(ns.to_string(), got);
        }
        &self.policies[ns]
    }

    /// Labels of a namespace; without read access only its name label is known.
    async fn namespace(&mut self, ns: &str) -> NamespaceLabels {
        if let Some(l) = self.namespaces.get(ns) {
            return l.clone();
        }
        let labels = match api::namespace_labels(self.client, ns).await {
            Ok(l) => NamespaceLabels::known(l),
            Err(_) => NamespaceLabels::name_only(ns),
        };
        self.namespaces.insert(ns.to_string(), labels.clone());
        labels
    }
}

/// Evaluate NetworkPolicies for source -> each destination pod (or the address).
pub async fn findings(
    client: &kube::Client,
    source: &ResolvedSource,
    destination_namespace: &str,
    destination_pods: &[DestinationPod<'_>],
    address: Option<DestinationAddress<'_>>,
    needs_dns: bool,
) -> Vec<KubeFinding> {
    // NetworkPolicies select pods by label; a pod in the host's network namespace (the node
    // view's probe pod, a hostNetwork source) is not one they govern, so they predict nothing.
    if source
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
    {
        return Vec::new();
    }
    let mut cache = Cache {
        client,
        policies: BTreeMap::new(),
        namespaces: BTreeMap::new(),
    };
    let destination = Destination {
        namespace: destination_namespace,
        pods: destination_pods,
        address,
    };
    let mut out = egress_findings(&mut cache, source, &destination, needs_dns).await;
    out.extend(ingress_findings(&mut cache, source, &destination).await);
    out
}

/// Where the connection goes: pods in a namespace, or an address.
struct Destination<'d> {
    namespace: &'d str,
    pods: &'d [DestinationPod<'d>],
    address: Option<DestinationAddress<'d>>,
}

/// Egress at the source: when a policy isolates it, the decision toward each destination
/// (and toward cluster DNS when names are looked up).
async fn egress_findings(
    cache: &mut Cache<'_>,
    source: &ResolvedSource,
    destination: &Destination<'_>,
    needs_dns: bool,
) -> Vec<KubeFinding> {
    let src_ns = source.info.namespace.as_str();
    let src_labels = &source.info.labels;
    let policies = match cache.policies(src_ns).await.clone() {
        Err(e) => return vec![unreadable(Direction::Egress, src_ns, &e)],
        Ok(policies) => policies,
    };
    let isolated = policies
        .iter()
        .any(|p| netpol::selects(p, src_ns, src_labels, Direction::Egress));
    if !isolated {
        return Vec::new();
    }
    let decide = |peer: &Peer, port: &PortContext| {
        netpol::decide(&policies, Direction::Egress, src_ns, src_labels, peer, port)
    };
    let mut decisions = Vec::new();
    if !destination.pods.is_empty() {
        let dst_ns_labels = cache.namespace(destination.namespace).await;
        for d in destination.pods {
            let labels = pods::labels(d.pod);
            let peer = Peer {
                pod: Some(PeerPod {
                    name: pods::name(d.pod),
                    namespace: destination.namespace,
                    labels: &labels,
                    namespace_labels: &dst_ns_labels,
                }),
                ip: pods::ip(d.pod).and_then(|i| i.parse().ok()),
                host: None,
            };
            let decision = decide(&peer, &tcp_port(d.port, Some(d.pod)));
            decisions.push((format!("pod/{}", pods::name(d.pod)), d.port, decision));
        }
    }
    if let Some(a) = &destination.address {
        let peer = Peer {
            pod: None,
            ip: a.host.parse().ok(),
            host: Some(a.host),
        };
        let decision = decide(&peer, &tcp_port(a.port, None));
        decisions.push((a.host.to_string(), a.port, decision));
    }
    let mut out = summarize(
        Direction::Egress,
        src_ns,
        &format!("pod/{}", source.info.pod),
        decisions,
    );
    if needs_dns {
        out.extend(dns_egress(cache, &policies, source).await);
    }
    out
}

/// Ingress at each destination pod a policy selects: the decision for the source pod.
async fn ingress_findings(
    cache: &mut Cache<'_>,
    source: &ResolvedSource,
    destination: &Destination<'_>,
) -> Vec<KubeFinding> {
    if destination.pods.is_empty() {
        return Vec::new();
    }
    let dst_ns = destination.namespace;
    let policies = match cache.policies(dst_ns).await.clone() {
        Err(e) => return vec![unreadable(Direction::Ingress, dst_ns, &e)],
        Ok(policies) => policies,
    };
    let selected: Vec<&DestinationPod> = destination
        .pods
        .iter()
        .filter(|d| {
            let labels = pods::labels(d.pod);
            policies
                .iter()
                .any(|p| netpol::selects(p, dst_ns, &labels, Direction::Ingress))
        })
        .collect();
    if selected.is_empty() {
        return Vec::new();
    }
    let src_ns = source.info.namespace.as_str();
    let src_ns_labels = cache.namespace(src_ns).await;
    let peer = Peer {
        pod: Some(PeerPod {
            name: &source.info.pod,
            namespace: src_ns,
            labels: &source.info.labels,
            namespace_labels: &src_ns_labels,
        }),
        ip: source.info.pod_ip.as_deref().and_then(|i| i.parse().ok()),
        host: None,
    };
    let decisions = selected
        .iter()
        .map(|d| {
            let labels: Labels = pods::labels(d.pod);
            let decision = netpol::decide(
                &policies,
                Direction::Ingress,
                dst_ns,
                &labels,
                &peer,
                &tcp_port(d.port, Some(d.pod)),
            );
            (format!("pod/{}", pods::name(d.pod)), d.port, decision)
        })
        .collect();
    summarize(
        Direction::Ingress,
        dst_ns,
        &format!("pod/{}", source.info.pod),
        decisions,
    )
}

/// A TCP connection to `port` (of `pod`, when the destination is one: named ports).
fn tcp_port(port: u16, pod: Option<&Pod>) -> PortContext<'_> {
    PortContext {
        port,
        protocol: "TCP",
        destination_pod: pod,
    }
}

/// Where cluster DNS runs: CoreDNS and kube-dns both carry this label.
const DNS_NAMESPACE: &str = "kube-system";
const DNS_SELECTOR: &str = "k8s-app=kube-dns";

/// An egress-isolated source must also be allowed to reach cluster DNS (UDP 53 at the DNS
/// pods, after the kube-dns ClusterIP's translation), or every name lookup times out: the
/// classic side effect of a default-deny egress policy. Reported with its own code so a
/// DNS deny is never taken as the cause of a TCP timeout.
async fn dns_egress(
    cache: &mut Cache<'_>,
    policies: &[NetworkPolicy],
    source: &ResolvedSource,
) -> Vec<KubeFinding> {
    let src_ns = source.info.namespace.as_str();
    let dns_pods: Vec<Pod> =
        match api::list::<Pod>(cache.client, DNS_NAMESPACE, Some(DNS_SELECTOR), "pods").await {
            Ok(p) => p,
            // Not ours to read (a namespaced user): nothing to evaluate against.
            Err(_) => return Vec::new(),
        };
    let Some(dns_pod) = dns_pods.iter().find(|p| pods::ip(p).is_some()) else {
        return Vec::new();
    };
    let ns_labels = cache.namespace(DNS_NAMESPACE).await;
    let labels = pods::labels(dns_pod);
    let peer = Peer {
        pod: Some(PeerPod {
            name: pods::name(dns_pod),
            namespace: DNS_NAMESPACE,
            labels: &labels,
            namespace_labels: &ns_labels,
        }),
        ip: pods::ip(dns_pod).and_then(|i| i.parse().ok()),
        host: None,
    };
    let port = PortContext {
        port: 53,
        protocol: "UDP",
        destination_pod: Some(dns_pod),
    };
    let decision = netpol::decide(
        policies,
        Direction::Egress,
        src_ns,
        &source.info.labels,
        &peer,
        &port,
    );
    let dests = [format!("pod/{}", pods::name(dns_pod))];
    match decision {
        Decision::Denied { selecting } => {
            let each = denial_lines(&selecting);
            let first = selecting[0].policy.clone();
            vec![KubeFinding {
                code: KubeFindingCode::NetworkPolicyDeniesDns,
                severity: Severity::Failure,
                object: format!("networkpolicy/{first}"),
                message: format!(
                    "{}; so pod/{} cannot reach cluster DNS ({DNS_NAMESPACE}/{} on UDP 53): \
                     name lookups will time out",
                    each.join(" | "),
                    source.info.pod,
                    pods::name(dns_pod)
                ),
                details: details(Direction::Egress, src_ns, &first, &selecting, &dests),
            }]
        }
        Decision::Admitted { by, selecting } => vec![KubeFinding {
            code: KubeFindingCode::NetworkPolicyAdmits,
            severity: Severity::Info,
            object: format!("networkpolicy/{by}"),
            message: format!(
                "networkpolicy/{by} admits DNS from pod/{} to {DNS_NAMESPACE}/{} on UDP 53 (egress)",
                source.info.pod,
                pods::name(dns_pod)
            ),
            details: details(Direction::Egress, src_ns, &by, &selecting, &dests),
        }],
        Decision::NotIsolated | Decision::Undetermined { .. } => Vec::new(),
    }
}

fn unreadable(direction: Direction, ns: &str, error: &str) -> KubeFinding {
    KubeFinding {
        code: KubeFindingCode::NetworkPolicyUndetermined,
        severity: Severity::Info,
        object: format!("networkpolicies/{ns}"),
        message: format!(
            "NetworkPolicies in namespace {ns} were not evaluated ({} side): {error}",
            direction.as_str()
        ),
        details: [
            ("direction".to_string(), direction.as_str().to_string()),
            ("namespace".to_string(), ns.to_string()),
        ]
        .into(),
    }
}

/// One finding per direction and outcome: denies, admits, undetermined; each names the
/// policies and, when only some destination pods share the outcome, which ones.
fn summarize(
    direction: Direction,
    policy_ns: &str,
    source: &str,
    decisions: Vec<(String, u16, Decision)>,
) -> Vec<KubeFinding> {
    let total = decisions.len();
    let mut denied = Vec::new();
    let mut admitted = Vec::new();
    let mut undetermined = Vec::new();
    for (dest, port, d) in decisions {
        match d {
            Decision::NotIsolated => {}
            Decision::Denied { selecting } => denied.push((dest, port, selecting)),
            Decision::Admitted { by, selecting } => admitted.push((dest, port, by, selecting)),
            Decision::Undetermined { selecting } => undetermined.push((dest, port, selecting)),
        }
    }
    let scope = |n: usize, list: &[String]| {
        if total > 1 && n < total {
            format!(
                " (for {n} of {total} destination pods: {})",
                list.join(", ")
            )
        } else {
            String::new()
        }
    };
    let side = match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    };
    let mut out = Vec::new();
    if let Some((dest, port, selecting)) = denied.first() {
        let dests: Vec<String> = denied.iter().map(|(d, ..)| d.clone()).collect();
        let each = denial_lines(selecting);
        let first = &selecting[0].policy;
        out.push(KubeFinding {
            code: KubeFindingCode::NetworkPolicyDenies,
            severity: Severity::Failure,
            object: format!("networkpolicy/{first}"),
            message: format!(
                "{}; so {side} {source} -> {dest}:{port} is not admitted{}",
                each.join(" | "),
                scope(denied.len(), &dests),
            ),
            details: details(direction, policy_ns, first, selecting, &dests),
        });
    }
    if let Some((dest, port, by, selecting)) = admitted.first() {
        let dests: Vec<String> = admitted.iter().map(|(d, ..)| d.clone()).collect();
        let what = selecting
            .iter()
            .find(|r| &r.policy == by)
            .map(|r| r.admits_text.clone())
            .unwrap_or_default();
        out.push(KubeFinding {
            code: KubeFindingCode::NetworkPolicyAdmits,
            severity: Severity::Info,
            object: format!("networkpolicy/{by}"),
            message: format!(
                "networkpolicy/{by} admits {source} -> {dest}:{port} ({side}; it admits {what}){}",
                scope(admitted.len(), &dests)
            ),
            details: details(direction, policy_ns, by, selecting, &dests),
        });
    }
    if let Some((dest, port, selecting)) = undetermined.first() {
        let dests: Vec<String> = undetermined.iter().map(|(d, ..)| d.clone()).collect();
        let names: Vec<String> = selecting
            .iter()
            .map(|r| format!("networkpolicy/{} (admits {})", r.policy, r.admits_text))
            .collect();
        let first = &selecting[0].policy;
        out.push(KubeFinding {
            code: KubeFindingCode::NetworkPolicyUndetermined,
            severity: Severity::Info,
            object: format!("networkpolicy/{first}"),
            message: format!(
                "whether {source} -> {dest}:{port} is admitted ({side}) cannot be told statically{}: {}",
                scope(undetermined.len(), &dests),
                names.join("; ")
            ),
            details: details(direction, policy_ns, first, selecting, &dests),
        });
    }
    out
}

fn details(
    direction: Direction,
    ns: &str,
    policy: &str,
    selecting: &[netpol::PolicyResult],
    dests: &[String],
) -> BTreeMap<String, String> {
    [
        ("direction", direction.as_str().to_string()),
        ("namespace", ns.to_string()),
        ("policy", policy.to_string()),
        (
            "policies",
            selecting
                .iter()
                .map(|r| r.policy.clone())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("destinations", dests.join(",")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One line per policy that selects the pod but admits nothing matching: what it admits and
/// why this peer and port miss it.
fn denial_lines(selecting: &[netpol::PolicyResult]) -> Vec<String> {
    selecting
        .iter()
        .map(|r| {
            format!(
                "networkpolicy/{} admits only {}; {}",
                r.policy, r.admits_text, r.mismatch
            )
        })
        .collect()
}
