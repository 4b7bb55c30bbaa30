//! The Kubernetes-level findings, held against what the probe saw. Every
//! [`KubeFindingCode`] is read here (or, for a NetworkPolicy that explains a TCP timeout or a
//! silent DNS server, by the `tcp` and `dns` rules it explains).
//!
//! A finding about the API objects alone (no endpoints, endpoints not ready, a targetPort no
//! container exposes, a destination pod not Ready) carries the severity the client gave it
//! into the verdict's finding: the client judges those, once. What only the probe can add is
//! judged here: the ClusterIP failing while endpoints answer (Service dataplane), one bad
//! endpoint among good ones (targets by the role the probe echoes), a predicted deny that the
//! connects contradict.

use protocol::{TargetRole, TcpEvidence, TcpOutcome};

use crate::checks::rounds;
use crate::checks::tcp::{connected, outcome_words};
use crate::facts::Facts;
use crate::kube::{DestinationInfo, KubeFinding, KubeFindingCode, ServiceInfo};
use crate::model::{Layer, RuleCode, Severity};
use crate::report::Report;
use crate::rules::dataplane;
use crate::words::{list, ms};

/// The severity the client gave the findings with `codes` (the worst, when several), as the
/// severity of a rule's finding: at least a warning, since the rule fires on a problem.
fn rated(f: &Facts, codes: &[KubeFindingCode]) -> Option<Severity> {
    f.kube
        .findings
        .iter()
        .filter(|x| codes.contains(&x.code))
        .map(|x| x.severity.max(Severity::Warning))
        .max()
}

/// The destination (a Service or a pod), in layer order before the network rules.
pub fn service(f: &Facts, r: &mut Report) {
    destination_pod(f, r);
    let Some(svc) = f.service() else {
        return;
    };
    if external_name(f, svc, r) || no_endpoints(f, svc, r) {
        return;
    }
    if let Some(x) = f.kube_finding(KubeFindingCode::ServiceWithoutSelector) {
        r.info(Layer::Service, x.message.clone());
    }
    endpoints_not_ready(f, svc, r);
    target_port_not_exposed(f, svc, r);
    if !r.findings.iter().any(|x| x.layer == Layer::Service) {
        service_proven(f, svc, r);
    }
    dataplane(f, svc, r);
}

fn external_name(f: &Facts, svc: &ServiceInfo, r: &mut Report) -> bool {
    let finding = f.kube_finding(KubeFindingCode::ExternalNameService);
    if finding.is_none() && svc.service_type != "ExternalName" {
        return false;
    }
    r.info(
        Layer::Service,
        match finding {
            Some(x) => x.message.clone(),
            None => format!(
                "svc/{} is ExternalName: a CNAME to {}",
                svc.name,
                svc.external_name.as_deref().unwrap_or("(unset)")
            ),
        },
    );
    true
}

fn no_endpoints(f: &Facts, svc: &ServiceInfo, r: &mut Report) -> bool {
    use KubeFindingCode::{NoEndpoints, SelectorMatchesNoPod, ServiceWithoutSelector};
    let nomatch = f.kube_finding(SelectorMatchesNoPod);
    let none = f.kube_finding(NoEndpoints);
    if !svc.endpoints.is_empty() && nomatch.is_none() && none.is_none() {
        return false;
    }
    let (ns, name) = (&svc.namespace, &svc.name);
    let sel = selector_text(svc);
    let closest = nomatch.and_then(|x| x.details.get("closest_labels"));
    let cause = if svc.selector.is_empty() {
        f.kube_finding(ServiceWithoutSelector)
            .map(|x| x.message.clone())
            .unwrap_or_else(|| {
                format!(
                    "svc/{name} in {ns} has no selector and no endpoints: nothing manages its \
                     EndpointSlices"
                )
            })
    } else if let Some(closest) = closest {
        format!(
            "svc/{name} has no endpoints: its selector {sel} matches no pod in {ns}; the \
             closest pod labels are {closest}"
        )
    } else if let Some(x) = nomatch.or(none) {
        x.message.clone()
    } else {
        format!("svc/{name} has no endpoints (selector {sel})")
    };
    let severity = rated(
        f,
        &[NoEndpoints, SelectorMatchesNoPod, ServiceWithoutSelector],
    )
    .unwrap_or(Severity::Failure);
    let mut b = r
        .finding(
            RuleCode::ServiceNoEndpoints,
            Layer::Service,
            severity,
            "no endpoints",
            cause,
        )
        .line(format!("svc/{name}: 0 endpoints; selector {sel}"));
    if let Some(closest) = closest {
        b = b.line(format!("closest pod labels: {closest}"));
    }
    let pods = if svc.selector.is_empty() {
        format!("kubectl get endpointslices -n {ns} -l kubernetes.io/service-name={name}")
    } else {
        format!(
            "kubectl get pods -n {ns} -l {} --show-labels",
            selector_pairs(svc)
        )
    };
    b.next(format!(
        "kubectl get svc -n {ns} {name} -o jsonpath='{{.spec.selector}}'"
    ))
    .next(pods)
    .add();
    true
}

fn endpoints_not_ready(f: &Facts, svc: &ServiceInfo, r: &mut Report) {
    let Some(x) = f.kube_finding(KubeFindingCode::EndpointsNotReady) else {
        return;
    };
    let (ns, name) = (&svc.namespace, &svc.name);
    let total = svc.endpoints.len();
    let ready = svc.endpoints.iter().filter(|e| e.ready).count();
    let not_ready: Vec<String> = svc
        .endpoints
        .iter()
        .filter(|e| !e.ready)
        .map(|e| match &e.pod {
            Some(p) => format!("{} (pod/{p})", e.ip),
            None => e.ip.clone(),
        })
        .collect();
    let first_pod = svc
        .endpoints
        .iter()
        .find(|e| !e.ready)
        .and_then(|e| e.pod.clone());
    r.finding(
        RuleCode::ServiceEndpointsNotReady,
        Layer::Service,
        rated(f, &[KubeFindingCode::EndpointsNotReady]).unwrap_or(Severity::Warning),
        if ready == 0 {
            "no ready endpoints"
        } else {
            "endpoints not ready"
        },
        format!(
            "{} of {total} endpoints of svc/{name} are not ready ({}): {}",
            total - ready,
            list(&not_ready, 3),
            x.message
        ),
    )
    .line(format!(
        "{ready}/{total} endpoints ready; not ready: {}",
        list(&not_ready, 3)
    ))
    .next(match first_pod {
        Some(p) => format!("kubectl describe pod -n {ns} {p}"),
        None => format!(
            "kubectl get endpointslices -n {ns} -l kubernetes.io/service-name={name} -o yaml"
        ),
    })
    .add();
}

fn target_port_not_exposed(f: &Facts, svc: &ServiceInfo, r: &mut Report) {
    let Some(x) = f.kube_finding(KubeFindingCode::TargetPortNotExposed) else {
        return;
    };
    let port = svc.ports.first();
    r.finding(
        RuleCode::ServiceTargetPortNotExposed,
        Layer::Service,
        rated(f, &[KubeFindingCode::TargetPortNotExposed]).unwrap_or(Severity::Warning),
        "targetPort not exposed",
        x.message.clone(),
    )
    .line(match port {
        Some(p) => format!(
            "port {} -> targetPort {}: {}",
            p.port,
            p.target_port,
            x.details
                .get("container_ports")
                .map(|c| format!("containers expose {c}"))
                .unwrap_or_else(|| "no container exposes it".into())
        ),
        None => x.message.clone(),
    })
    .next(format!(
        "kubectl get svc -n {} {} -o jsonpath='{{.spec.ports}}'",
        svc.namespace, svc.name
    ))
    .add();
}

/// No Service-level problem: what was proven about it.
fn service_proven(f: &Facts, svc: &ServiceInfo, r: &mut Report) {
    let total = svc.endpoints.len();
    let ready = svc.endpoints.iter().filter(|e| e.ready).count();
    let port = svc
        .ports
        .first()
        .map(|p| {
            let resolved = svc.endpoints.iter().find_map(|e| e.port);
            match resolved {
                Some(rp) if p.target_port != rp.to_string() => {
                    format!("; port {} -> targetPort {} ({rp})", p.port, p.target_port)
                }
                _ => format!("; port {} -> targetPort {}", p.port, p.target_port),
            }
        })
        .unwrap_or_default();
    // The client's own healthy finding names the container port too; prefer it to the
    // port line computed here so the mapping is said once.
    let detail = f
        .kube_finding(KubeFindingCode::ServiceHealthy)
        .map(|x| format!("; {}", x.message))
        .unwrap_or(port);
    let headless = f.kube_finding(KubeFindingCode::HeadlessService);
    if svc.headless || headless.is_some() {
        r.info(
            Layer::Service,
            headless.map(|x| x.message.clone()).unwrap_or_else(|| {
                format!("svc/{} is headless: the name resolves to pod IPs", svc.name)
            }),
        );
    }
    r.ok(
        Layer::Service,
        format!("{ready}/{total} endpoints ready{detail}"),
    );
}

fn selector_pairs(svc: &ServiceInfo) -> String {
    svc.selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn selector_text(svc: &ServiceInfo) -> String {
    if svc.selector.is_empty() {
        "(none)".into()
    } else {
        selector_pairs(svc)
    }
}

/// Outcomes that a Service-side rule can compare (name resolution and local port exhaustion
/// are not about the Service).
fn comparable(t: &TcpEvidence) -> bool {
    !t.outcome
        .is_any(&[TcpOutcome::Unresolved, TcpOutcome::AddressNotAvailable])
}

/// The connects toward targets of `role` that a Service rule can compare.
fn connects_of<'a>(f: &Facts<'a>, role: TargetRole) -> Vec<&'a TcpEvidence> {
    f.all::<TcpEvidence>()
        .into_iter()
        .filter(|t| comparable(t) && f.role(&t.role, t.address.ip()) == role)
        .collect()
}

/// Did the target answer? With repeated connects, one that answered part of the time counts as
/// answering here: its failures are judged by the rounds rules (a rate, not a broken
/// endpoint), whatever its first attempt did.
fn answered(f: &Facts, t: &TcpEvidence) -> bool {
    connected(t) || rounds::intermittent_at(f, t.address)
}

/// ClusterIP vs endpoints, and one bad endpoint among good ones.
fn dataplane(f: &Facts, svc: &ServiceInfo, r: &mut Report) {
    let cluster = connects_of(f, TargetRole::ClusterIp);
    let endpoints = connects_of(f, TargetRole::Endpoint);
    let (good, bad): (Vec<&TcpEvidence>, Vec<&TcpEvidence>) =
        endpoints.iter().copied().partition(|t| answered(f, t));
    let cluster_bad: Vec<&TcpEvidence> = cluster.into_iter().filter(|t| !answered(f, t)).collect();
    // The node's own conntrack entry proves what a pod-only run can only infer.
    let untranslated: Vec<&TcpEvidence> = cluster_bad
        .iter()
        .copied()
        .filter(|t| dataplane::not_translated(t))
        .collect();
    if !untranslated.is_empty() {
        dataplane::clusterip_not_translated(f, svc, &untranslated, &good, r);
    } else if !cluster_bad.is_empty() && !endpoints.is_empty() && bad.is_empty() {
        service_dataplane(f, &cluster_bad, &good, r);
    } else if !bad.is_empty() && !good.is_empty() {
        bad_endpoint(svc, &bad, &good, r);
    }
}

/// The ClusterIP fails while every endpoint answers when connected to directly.
fn service_dataplane(
    f: &Facts,
    cluster_bad: &[&TcpEvidence],
    good: &[&TcpEvidence],
    r: &mut Report,
) {
    let c = cluster_bad[0];
    let node = f
        .kube
        .source
        .as_ref()
        .and_then(|s| s.node.as_deref())
        .map(|n| format!(" on node {n}"))
        .unwrap_or_default();
    let ep_list: Vec<String> = good
        .iter()
        .map(|t| format!("{} ok {}", t.address, ms(t.latency_ms)))
        .collect();
    r.finding(
        RuleCode::ServiceDataplane,
        Layer::Service,
        Severity::Failure,
        "Service dataplane",
        format!(
            "ClusterIP {} {} while all {} endpoints answered directly: the Service translation \
             (kube-proxy or the CNI's service handling){node} is broken, not the pods",
            c.address,
            outcome_words(c),
            good.len()
        ),
    )
    .line(format!(
        "conflicting evidence: ClusterIP {} {}, yet every endpoint connects: {}",
        c.address,
        outcome_words(c),
        list(&ep_list, 3)
    ))
    .line_opt(dataplane::nat_words(f, c).map(|w| format!("node conntrack for {}: {w}", c.address)))
    .next("kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide")
    .next(format!(
        "iptables-save -t nat | grep {}   # on the node; or: nft list ruleset",
        c.address.ip()
    ))
    .add();
    r.notes.push(format!(
        "Conflicting evidence: the ClusterIP {} failed ({}) while {} of {} endpoints answered \
         when connected to directly.",
        c.address,
        outcome_words(c),
        good.len(),
        good.len()
    ));
    for t in cluster_bad {
        r.explained.insert(t.address);
    }
}

/// Some endpoints fail while others answer: a share of the ClusterIP's connections fail.
fn bad_endpoint(svc: &ServiceInfo, bad: &[&TcpEvidence], good: &[&TcpEvidence], r: &mut Report) {
    let (ns, name) = (&svc.namespace, &svc.name);
    let endpoint_of = |t: &TcpEvidence| {
        svc.endpoints.iter().find(|e| {
            e.ip.parse()
                .is_ok_and(|ip: std::net::IpAddr| ip == t.address.ip())
        })
    };
    let describe = |t: &TcpEvidence| {
        let ep = endpoint_of(t);
        let mut s = t.address.to_string();
        if let Some(p) = ep.and_then(|e| e.pod.as_ref()) {
            s.push_str(&format!(" (pod/{p}"));
            if let Some(n) = ep.and_then(|e| e.node.as_ref()) {
                s.push_str(&format!(" on {n}"));
            }
            s.push(')');
        }
        format!("{s} {}", outcome_words(t))
    };
    let total = bad.len() + good.len();
    let bad_text: Vec<String> = bad.iter().map(|t| describe(t)).collect();
    let first_pod = bad
        .iter()
        .find_map(|t| endpoint_of(t).and_then(|e| e.pod.clone()));
    r.finding(
        RuleCode::ServiceBadEndpoint,
        Layer::Service,
        Severity::Warning,
        "bad endpoint",
        format!(
            "{} of {total} endpoints of svc/{name} fail: {}; {} answer, so about {} in {total} \
             connections through the ClusterIP will fail",
            bad.len(),
            list(&bad_text, 2),
            good.len(),
            bad.len(),
        ),
    )
    .line(format!(
        "{} of {total} endpoints fail: {}",
        bad.len(),
        list(&bad_text, 3)
    ))
    .next(match first_pod {
        Some(p) => format!("kubectl describe pod -n {ns} {p}"),
        None => format!(
            "kubectl get endpointslices -n {ns} -l kubernetes.io/service-name={name} -o wide"
        ),
    })
    .add();
    for t in bad {
        r.explained.insert(t.address);
    }
}

fn destination_pod(f: &Facts, r: &mut Report) {
    let Some(DestinationInfo::Pod(pod)) = f.kube.destination.as_ref() else {
        return;
    };
    let finding = f.kube_finding(KubeFindingCode::DestinationPodNotReady);
    if pod.ready && finding.is_none() {
        r.ok(
            Layer::Service,
            format!(
                "pod/{} Ready at {}",
                pod.name,
                pod.ip.as_deref().unwrap_or("(no IP)")
            ),
        );
        return;
    }
    r.finding(
        RuleCode::DestinationPodNotReady,
        Layer::Service,
        rated(f, &[KubeFindingCode::DestinationPodNotReady]).unwrap_or(Severity::Warning),
        "destination pod not ready",
        finding
            .map(|x| x.message.clone())
            .unwrap_or_else(|| format!("pod/{} in {} is not Ready", pod.name, pod.namespace)),
    )
    .line(format!(
        "pod/{} ({}) not Ready",
        pod.name,
        pod.ip.as_deref().unwrap_or("no IP")
    ))
    .next(format!(
        "kubectl describe pod -n {} {}",
        pod.namespace, pod.name
    ))
    .add();
}

/// NetworkPolicy predictions, after the TCP rules: admits (proven lines), undetermined
/// (context), and a predicted deny the connects contradict (the CNI does not enforce
/// policies). A deny that explains a timeout was reported by the TCP rules, one that explains
/// a silent DNS server by the DNS rules.
pub fn policy(f: &Facts, r: &mut Report) {
    for x in &f.kube.findings {
        match x.code {
            KubeFindingCode::NetworkPolicyAdmits => r.ok(Layer::Policy, x.message.clone()),
            KubeFindingCode::NetworkPolicyDenies if !r.has(RuleCode::TcpTimeoutNetworkPolicy) => {
                policy_denies(f, x, r)
            }
            KubeFindingCode::NetworkPolicyUndetermined => {
                r.info(Layer::Policy, format!("undetermined: {}", x.message))
            }
            // With DNS timeouts the DNS rule names the policy; otherwise say the prediction.
            KubeFindingCode::NetworkPolicyDeniesDns if !r.has(RuleCode::DnsServerUnreachable) => {
                r.info(Layer::Policy, format!("predicted: {}", x.message));
            }
            _ => {}
        }
    }
}

fn policy_denies(f: &Facts, x: &KubeFinding, r: &mut Report) {
    // Connects that should have been dropped and were not.
    let contradicted: Vec<String> = f
        .all::<TcpEvidence>()
        .iter()
        .filter(|t| connected(t))
        .map(|t| t.address.to_string())
        .collect();
    if contradicted.is_empty() {
        // No connect evidence either way: show the prediction.
        r.info(Layer::Policy, format!("predicted: {}", x.message));
        return;
    }
    r.finding(
        RuleCode::NetworkPolicyNotEnforced,
        Layer::Policy,
        Severity::Warning,
        "policy not enforced",
        format!(
            "{} is predicted to deny this traffic, yet {} connected: the network plugin does \
             not enforce NetworkPolicy (or the prediction is wrong)",
            x.object,
            contradicted.join(", ")
        ),
    )
    .line(format!(
        "conflicting evidence: {} ; yet connects succeed",
        x.message
    ))
    .next(
        "kubectl get pods -n kube-system -o wide   # which CNI runs; does it enforce \
         NetworkPolicy?",
    )
    .add();
}
