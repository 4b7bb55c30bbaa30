//! `svc/NAME[:port]` -> the ClusterIP per port, every endpoint from the Service's
//! EndpointSlices with its readiness, pod, node and resolved targetPort, the Service's DNS
//! names, and the Kubernetes-level findings: no selector, selector matching no pod (with the
//! closest labels), no endpoints, endpoints not ready (and why), a targetPort no container
//! exposes, headless and ExternalName Services.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Pod, Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use netdebug_verdict::kube::{
    DestinationInfo, KubeFinding, KubeFindingCode, ServiceInfo, Severity,
};
use protocol::{Target, TargetRole};

mod endpoints;
mod findings;
mod ports;

use endpoints::{collect_endpoints, host_port, Endpoint};
use ports::{
    describe_resolved_port, resolve_on_pod, select_ports, target_port_finding, PortUnderTest,
};

use super::policy::{self, DestinationAddress, DestinationPod};
use super::spec::PortRef;
use super::{api, labels, pods, ResolvedDestination, ResolvedSource, CLUSTER_DOMAIN};
use crate::error::Error;

/// Pods fetched one by one for a selector-less Service's endpoints, at most.
const MAX_ENDPOINT_POD_GETS: usize = 10;

pub(crate) async fn resolve(
    client: &kube::Client,
    default_namespace: &str,
    name: &str,
    namespace: Option<&str>,
    asked: Option<&PortRef>,
    source: &ResolvedSource,
) -> Result<ResolvedDestination, Error> {
    let ns = namespace.unwrap_or(default_namespace);
    let svc: Service = api::get(client, ns, name, "services", "service").await?;
    let spec = svc.spec.clone().unwrap_or_default();
    let service_type = spec
        .type_
        .clone()
        .unwrap_or_else(|| "ClusterIP".to_string());
    let svc_ports = spec.ports.clone().unwrap_or_default();
    let examined = select_ports(name, ns, &svc_ports, asked)?;
    let selector = spec.selector.clone().unwrap_or_default();
    let mut info = service_info(ns, name, &service_type, &selector, &examined);
    let fqdn = info.dns_name.clone();
    let dns_names = dns_names(name, ns, &fqdn, source);
    let object = format!("svc/{name}");
    let mut findings = Vec::new();

    if service_type == "ExternalName" {
        let external = spec.external_name.clone().unwrap_or_default();
        return Ok(external_name(client, source, info, &examined, dns_names, external).await);
    }

    let cluster_ips = cluster_ips_of(&spec);
    info.headless = spec.cluster_ip.as_deref() == Some("None");
    info.cluster_ip = cluster_ips.first().cloned();
    if info.headless {
        findings.push(KubeFinding {
            code: KubeFindingCode::HeadlessService,
            severity: Severity::Info,
            object: object.clone(),
            message: format!(
                "svc/{name} is headless (clusterIP None): {fqdn} resolves to the endpoint pod \
                 IPs directly and there is no ClusterIP translation"
            ),
            details: BTreeMap::new(),
        });
    }

    let slices: Vec<EndpointSlice> = api::list(
        client,
        ns,
        Some(&format!("kubernetes.io/service-name={name}")),
        "endpointslices.discovery.k8s.io",
    )
    .await?;

    let selected_pods = pods_behind(client, ns, &selector, &slices).await?;
    let pod_by_name: BTreeMap<&str, &Pod> =
        selected_pods.iter().map(|p| (pods::name(p), p)).collect();

    let endpoints = collect_endpoints(&slices, &examined, &pod_by_name);
    let first_tcp = examined.iter().position(PortUnderTest::is_tcp);
    info.endpoints = endpoints.iter().map(|e| e.info(first_tcp)).collect();

    findings.extend(
        findings::selector_findings(client, ns, name, &selector, &selected_pods, &endpoints)
            .await?,
    );
    findings.extend(findings::readiness_finding(name, &endpoints, &pod_by_name));

    findings.extend(port_findings(
        name,
        &object,
        &examined,
        &selected_pods,
        &endpoints,
        &findings,
    ));

    let targets = targets(&object, &examined, &cluster_ips, &endpoints);

    let policy_pods = policy_pods(
        first_tcp,
        &examined,
        &endpoints,
        &pod_by_name,
        &selected_pods,
    );
    // Always: even without a destination pod, an egress-isolated source may lack DNS.
    findings.extend(policy::findings(client, source, ns, &policy_pods, None, true).await);

    Ok(ResolvedDestination {
        info: DestinationInfo::Service(info),
        targets,
        dns_names,
        findings,
    })
}

/// What the verdict is told about the Service before its endpoints are known.
fn service_info(
    ns: &str,
    name: &str,
    service_type: &str,
    selector: &BTreeMap<String, String>,
    examined: &[PortUnderTest],
) -> ServiceInfo {
    ServiceInfo {
        namespace: ns.to_string(),
        name: name.to_string(),
        service_type: service_type.to_string(),
        cluster_ip: None,
        headless: false,
        external_name: None,
        selector: selector.clone(),
        ports: examined.iter().map(PortUnderTest::info).collect(),
        endpoints: Vec::new(),
        dns_name: format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}"),
    }
}

/// The name an application in the source pod would use (search list and ndots apply, as
/// they do for the app), then the absolute name, which proves the record exists whatever the
/// search list says.
fn dns_names(name: &str, ns: &str, fqdn: &str, source: &ResolvedSource) -> Vec<String> {
    let app_name = if ns == source.info.namespace {
        name.to_string()
    } else {
        format!("{name}.{ns}")
    };
    vec![app_name, format!("{fqdn}.")]
}

/// An ExternalName Service: a CNAME, no ClusterIP and no endpoint; the probe connects to the
/// external name itself.
async fn external_name(
    client: &kube::Client,
    source: &ResolvedSource,
    mut info: ServiceInfo,
    examined: &[PortUnderTest],
    dns_names: Vec<String>,
    external: String,
) -> ResolvedDestination {
    let (name, ns, fqdn) = (
        info.name.clone(),
        info.namespace.clone(),
        info.dns_name.clone(),
    );
    let object = format!("svc/{name}");
    info.external_name = Some(external.clone());
    let mut findings = vec![KubeFinding {
        code: KubeFindingCode::ExternalNameService,
        severity: Severity::Info,
        object: object.clone(),
        message: format!(
            "svc/{name} is ExternalName: {fqdn} is a CNAME to {external}; there is no \
             ClusterIP and no endpoint, the probe connects to {external} itself"
        ),
        details: [("external_name".to_string(), external.clone())].into(),
    }];
    let port = examined.iter().find(|p| p.is_tcp()).map(|p| p.port);
    let mut targets = Vec::new();
    if protocol::validate_host(&external).is_ok() {
        targets.push(Target {
            label: match port {
                Some(p) => format!("{object}:{p}"),
                None => object.clone(),
            },
            host: external.clone(),
            port,
            role: TargetRole::Direct.into(),
        });
        let address = port.map(|p| DestinationAddress {
            host: &external,
            port: p,
        });
        findings.extend(policy::findings(client, source, &ns, &[], address, true).await);
    }
    ResolvedDestination {
        info: DestinationInfo::Service(info),
        targets,
        dns_names,
        findings,
    }
}

/// The Service's ClusterIPs (all families), without the `None` of a headless Service.
fn cluster_ips_of(spec: &ServiceSpec) -> Vec<String> {
    spec.cluster_ips
        .clone()
        .filter(|v| !v.is_empty())
        .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
        .unwrap_or_default()
        .into_iter()
        .filter(|ip| !ip.is_empty() && ip != "None")
        .collect()
}

/// The pods behind the Service: by its selector, or (no selector) by the endpoints'
/// targetRefs.
async fn pods_behind(
    client: &kube::Client,
    ns: &str,
    selector: &BTreeMap<String, String>,
    slices: &[EndpointSlice],
) -> Result<Vec<Pod>, Error> {
    if !selector.is_empty() {
        let sel = labels::from_map(selector);
        return Ok(api::list::<Pod>(client, ns, Some(&sel.to_string()), "pods")
            .await?
            .into_iter()
            .filter(|p| labels::matches(&sel, &pods::labels(p)))
            .collect());
    }
    let mut names: Vec<String> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter_map(|e| e.target_ref.as_ref())
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .filter(|r| r.namespace.as_deref().unwrap_or(ns) == ns)
        .filter_map(|r| r.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.truncate(MAX_ENDPOINT_POD_GETS);
    let mut selected = Vec::new();
    for pod_name in names {
        // Only to learn ports and labels: a pod we cannot read is skipped, not fatal.
        if let Some(p) = api::get_quiet::<Pod>(client, ns, &pod_name).await {
            selected.push(p);
        }
    }
    Ok(selected)
}

/// targetPorts against the pods' declared container ports; when every endpoint is ready and
/// every port resolves, the Service's healthy finding with the port mapping.
fn port_findings(
    name: &str,
    object: &str,
    examined: &[PortUnderTest],
    selected_pods: &[Pod],
    endpoints: &[Endpoint],
    earlier: &[KubeFinding],
) -> Vec<KubeFinding> {
    let mut findings = Vec::new();
    let mut port_ok_text = Vec::new();
    for p in examined {
        match target_port_finding(name, p, selected_pods) {
            Some(f) => findings.push(f),
            None => port_ok_text.push(describe_resolved_port(
                p,
                selected_pods,
                endpoints,
                examined,
            )),
        }
    }
    let ready = endpoints.iter().filter(|e| e.ready).count();
    let port_problem = findings
        .iter()
        .chain(earlier)
        .any(|f| f.code == KubeFindingCode::TargetPortNotExposed);
    if !endpoints.is_empty() && ready == endpoints.len() && !port_problem {
        findings.push(KubeFinding {
            code: KubeFindingCode::ServiceHealthy,
            severity: Severity::Info,
            object: object.to_string(),
            message: if port_ok_text.is_empty() {
                "the Service defines no ports".to_string()
            } else {
                port_ok_text.join("; ")
            },
            details: BTreeMap::new(),
        });
    }
    findings
}

/// The pods NetworkPolicies are evaluated toward: the endpoint pods, or the selected pods
/// when no endpoint is published.
fn policy_pods<'p>(
    first_tcp: Option<usize>,
    examined: &[PortUnderTest],
    endpoints: &[Endpoint],
    pod_by_name: &BTreeMap<&str, &'p Pod>,
    selected_pods: &'p [Pod],
) -> Vec<DestinationPod<'p>> {
    let mut policy_pods: Vec<DestinationPod> = Vec::new();
    let Some(i) = first_tcp else {
        return policy_pods;
    };
    for e in endpoints {
        if let (Some(pod), Some(port)) = (
            e.pod.as_deref().and_then(|n| pod_by_name.get(n)),
            e.ports[i],
        ) {
            if !policy_pods
                .iter()
                .any(|d| pods::name(d.pod) == pods::name(pod))
            {
                policy_pods.push(DestinationPod { pod, port });
            }
        }
    }
    if endpoints.is_empty() {
        for pod in selected_pods {
            if let Some(port) = resolve_on_pod(&examined[i], pod) {
                policy_pods.push(DestinationPod { pod, port });
            }
        }
    }
    policy_pods
}

/// The ClusterIP(s) per examined port, then every endpoint per TCP port (labels unique).
fn targets(
    object: &str,
    examined: &[PortUnderTest],
    cluster_ips: &[String],
    endpoints: &[endpoints::Endpoint],
) -> Vec<Target> {
    // Targets: the ClusterIP(s) per port, then every endpoint per port.
    let mut targets: Vec<Target> = Vec::new();
    let mut push = |t: Target| {
        if !targets.iter().any(|x| x.label == t.label) {
            targets.push(t);
        }
    };
    for p in examined {
        let port = p.is_tcp().then_some(p.port);
        for (i, ip) in cluster_ips.iter().enumerate() {
            let mut label = format!("{object}:{}", p.port);
            if i > 0 {
                label.push_str(&format!(" ({ip})"));
            }
            push(Target {
                label,
                host: ip.clone(),
                port,
                role: TargetRole::ClusterIp.into(),
            });
        }
    }
    for (i, p) in examined.iter().enumerate() {
        if !p.is_tcp() {
            continue;
        }
        for e in endpoints {
            if let Some(port) = e.ports[i] {
                push(Target {
                    label: host_port(&e.ip, port),
                    host: e.ip.clone(),
                    port: Some(port),
                    role: TargetRole::Endpoint.into(),
                });
            }
        }
    }
    if examined.is_empty() {
        // A Service without ports (headless, used for DNS only): the endpoints can still be
        // routed to, just not connected to.
        for e in endpoints {
            push(Target {
                label: e.ip.clone(),
                host: e.ip.clone(),
                port: None,
                role: TargetRole::Endpoint.into(),
            });
        }
    }

    targets
}
