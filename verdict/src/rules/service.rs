//! Service: no endpoints (selector vs labels), endpoints not ready, targetPort not exposed,
//! ClusterIP fails while endpoints work (Service dataplane), one bad endpoint among good ones.
//! Kubernetes-level facts come from the client's findings; the dataplane rules compare the
//! probe's TCP results toward the ClusterIP and toward each endpoint.

use protocol::{TargetRole, TcpEvidence, TcpOutcome};

use crate::facts::Facts;
use crate::kube::{DestinationInfo, KubeFinding, KubeFindingCode, ServiceInfo};
use crate::model::{Layer, RuleCode, Severity};
use crate::rules::transport::outcome_words;
use crate::rules::{list, Report};

pub fn apply(f: &Facts, r: &mut Report) {
    destination_pod(f, r);
    let Some(svc) = f.service() else {
        return;
    };
    let findings: &[KubeFinding] = f.kube.map(|k| k.findings.as_slice()).unwrap_or(&[]);
    let find = |code: KubeFindingCode| findings.iter().find(|x| x.code == code);
    let ns = &svc.namespace;
    let name = &svc.name;

    if svc.service_type == "ExternalName" {
        r.info(
            Layer::Service,
            format!(
                "svc/{name} is ExternalName: a CNAME to {}",
                svc.external_name.as_deref().unwrap_or("(unset)")
            ),
        );
        return;
    }

    let ready = svc.endpoints.iter().filter(|e| e.ready).count();
    let total = svc.endpoints.len();
    let no_endpoints = total == 0
        || find(KubeFindingCode::NoEndpoints).is_some()
        || find(KubeFindingCode::SelectorMatchesNoPod).is_some();
    if no_endpoints {
        let sel = selector_text(svc);
        let nomatch = find(KubeFindingCode::SelectorMatchesNoPod);
        let closest = nomatch.and_then(|x| x.details.get("closest_labels"));
        let cause = if svc.selector.is_empty() {
            format!(
                "svc/{name} in {ns} has no selector and no endpoints: nothing manages its \
                 EndpointSlices"
            )
        } else if let Some(closest) = closest {
            format!(
                "svc/{name} has no endpoints: its selector {sel} matches no pod in {ns}; the \
                 closest pod labels are {closest}"
            )
        } else if let Some(x) = nomatch.or(find(KubeFindingCode::NoEndpoints)) {
            x.message.clone()
        } else {
            format!("svc/{name} has no endpoints (selector {sel})")
        };
        let mut b = r
            .finding(
                RuleCode::ServiceNoEndpoints,
                Layer::Service,
                Severity::Failure,
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
                svc.selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        b.next(format!(
            "kubectl get svc -n {ns} {name} -o jsonpath='{{.spec.selector}}'"
        ))
        .next(pods)
        .add();
        return;
    }

    if ready < total || find(KubeFindingCode::EndpointsNotReady).is_some() {
        let not_ready: Vec<String> = svc
            .endpoints
            .iter()
            .filter(|e| !e.ready)
            .map(|e| match &e.pod {
                Some(p) => format!("{} (pod/{p})", e.ip),
                None => e.ip.clone(),
            })
            .collect();
        let why = find(KubeFindingCode::EndpointsNotReady)
            .map(|x| format!(": {}", x.message))
            .unwrap_or_default();
        let severity = if ready == 0 {
            Severity::Failure
        } else {
            Severity::Warning
        };
        let first_pod = svc
            .endpoints
            .iter()
            .find(|e| !e.ready)
            .and_then(|e| e.pod.clone());
        r.finding(
            RuleCode::ServiceEndpointsNotReady,
            Layer::Service,
            severity,
            if ready == 0 {
                "no ready endpoints"
            } else {
                "endpoints not ready"
            },
            format!(
                "{} of {total} endpoints of svc/{name} are not ready ({}){why}",
                total - ready,
                list(&not_ready, 3)
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

    if let Some(x) = find(KubeFindingCode::TargetPortNotExposed) {
        let port = svc.ports.first();
        r.finding(
            RuleCode::ServiceTargetPortNotExposed,
            Layer::Service,
            Severity::Failure,
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
            "kubectl get svc -n {ns} {name} -o jsonpath='{{.spec.ports}}'"
        ))
        .add();
    }

    if !r.findings.iter().any(|x| x.layer == Layer::Service) {
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
        let detail = find(KubeFindingCode::ServiceHealthy)
            .map(|x| format!("; {}", x.message))
            .unwrap_or(port);
        if svc.headless {
            r.info(
                Layer::Service,
                format!("svc/{name} is headless: the name resolves to pod IPs"),
            );
        }
        r.ok(
            Layer::Service,
            format!("{ready}/{total} endpoints ready{detail}"),
        );
    }

    dataplane(f, svc, r);
}

fn selector_text(svc: &ServiceInfo) -> String {
    if svc.selector.is_empty() {
        "(none)".into()
    } else {
        svc.selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Outcomes that a Service-side rule can compare (name resolution and local port exhaustion
/// are not about the Service).
fn comparable(t: &TcpEvidence) -> bool {
    !t.outcome
        .is_any(&[TcpOutcome::Unresolved, TcpOutcome::AddressNotAvailable])
}

/// ClusterIP vs endpoints, and one bad endpoint among good ones.
fn dataplane(f: &Facts, svc: &ServiceInfo, r: &mut Report) {
    let cluster: Vec<&TcpEvidence> = f
        .tcp_with_role(TargetRole::ClusterIp)
        .filter(|t| comparable(t))
        .collect();
    let endpoints: Vec<&TcpEvidence> = f
        .tcp_with_role(TargetRole::Endpoint)
        .filter(|t| comparable(t))
        .collect();
    let good: Vec<&TcpEvidence> = endpoints
        .iter()
        .copied()
        .filter(|t| t.outcome == TcpOutcome::Ok)
        .collect();
    let bad: Vec<&TcpEvidence> = endpoints
        .iter()
        .copied()
        .filter(|t| t.outcome != TcpOutcome::Ok)
        .collect();
    let cluster_bad: Vec<&TcpEvidence> = cluster
        .iter()
        .copied()
        .filter(|t| t.outcome != TcpOutcome::Ok)
        .collect();
    let ns = &svc.namespace;
    let name = &svc.name;

    if !cluster_bad.is_empty() && !endpoints.is_empty() && bad.is_empty() {
        let c = cluster_bad[0];
        let nodes: Vec<String> = f
            .kube
            .and_then(|k| k.source.as_ref())
            .and_then(|s| s.node.clone())
            .into_iter()
            .collect();
        let node = nodes
            .first()
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default();
        let ep_list: Vec<String> = good
            .iter()
            .map(|t| format!("{} ok {}", t.address, crate::facts::ms(t.latency_ms)))
            .collect();
        r.finding(
            RuleCode::ServiceDataplane,
            Layer::Service,
            Severity::Failure,
            "Service dataplane",
            format!(
                "ClusterIP {} {} while all {} endpoints answered directly: the Service \
                 translation (kube-proxy or the CNI's service handling){node} is broken, not \
                 the pods",
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
        .next("kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide")
        .next(format!(
            "iptables-save -t nat | grep {}   # on the node; or: nft list ruleset",
            c.address.ip()
        ))
        .add();
        r.notes.push(format!(
            "Conflicting evidence: the ClusterIP {} failed ({}) while {} of {} endpoints \
             answered when connected to directly.",
            c.address,
            outcome_words(c),
            good.len(),
            endpoints.len()
        ));
        for t in cluster_bad {
            r.explained.insert(t.address);
        }
        return;
    }

    if !bad.is_empty() && !good.is_empty() {
        let describe = |t: &TcpEvidence| {
            let ip = t.address.ip().to_string();
            let ep = svc.endpoints.iter().find(|e| e.ip == ip);
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
        let bad_text: Vec<String> = bad.iter().map(|t| describe(t)).collect();
        let first_pod = bad.iter().find_map(|t| {
            let ip = t.address.ip().to_string();
            svc.endpoints
                .iter()
                .find(|e| e.ip == ip)
                .and_then(|e| e.pod.clone())
        });
        r.finding(
            RuleCode::ServiceBadEndpoint,
            Layer::Service,
            Severity::Warning,
            "bad endpoint",
            format!(
                "{} of {} endpoints of svc/{name} fail: {}; {} answer, so about {} in {} \
                 connections through the ClusterIP will fail",
                bad.len(),
                endpoints.len(),
                list(&bad_text, 2),
                good.len(),
                bad.len(),
                endpoints.len()
            ),
        )
        .line(format!(
            "{} of {} endpoints fail: {}",
            bad.len(),
            endpoints.len(),
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
}

fn destination_pod(f: &Facts, r: &mut Report) {
    let Some(kube) = f.kube else { return };
    let Some(DestinationInfo::Pod(pod)) = kube.destination.as_ref() else {
        return;
    };
    let finding = kube
        .findings
        .iter()
        .find(|x| x.code == KubeFindingCode::DestinationPodNotReady);
    if !pod.ready || finding.is_some() {
        r.finding(
            RuleCode::DestinationPodNotReady,
            Layer::Service,
            Severity::Warning,
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
    } else {
        r.ok(
            Layer::Service,
            format!(
                "pod/{} Ready at {}",
                pod.name,
                pod.ip.as_deref().unwrap_or("(no IP)")
            ),
        );
    }
}
