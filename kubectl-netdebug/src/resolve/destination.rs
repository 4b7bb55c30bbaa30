//! `--to` -> targets, DNS names and findings. Services are in `service`; pods and plain
//! addresses here.

use k8s_openapi::api::core::v1::Pod;
use netdebug_verdict::kube::{
    DestinationInfo, KubeFinding, KubeFindingCode, PodDestination, Severity,
};
use protocol::{Target, TargetRole};

use super::policy::{self, DestinationAddress, DestinationPod};
use super::spec::DestSpec;
use super::{api, pods, service, ResolvedSource};
use crate::error::Error;

/// What `--to` resolved to.
#[derive(Debug, Clone)]
pub struct ResolvedDestination {
    pub info: DestinationInfo,
    /// ClusterIP first (role ClusterIp), then every endpoint (role Endpoint); or the pod
    /// (role Pod); or the address (role Direct).
    pub targets: Vec<Target>,
    /// Names for the probe's DNS check: a Service's FQDN, and its short name when the
    /// source is in the same namespace (that is how applications call it); a host name.
    pub dns_names: Vec<String>,
    pub findings: Vec<KubeFinding>,
}

/// Resolve `--to`; `default_namespace` applies when the spec names none.
pub async fn resolve_destination(
    client: &kube::Client,
    default_namespace: &str,
    spec: &DestSpec,
    source: &ResolvedSource,
) -> Result<ResolvedDestination, Error> {
    match spec {
        DestSpec::Service {
            name,
            namespace,
            port,
        } => {
            service::resolve(
                client,
                default_namespace,
                name,
                namespace.as_deref(),
                port.as_ref(),
                source,
            )
            .await
        }
        DestSpec::Pod {
            name,
            namespace,
            port,
        } => {
            let ns = namespace.as_deref().unwrap_or(default_namespace);
            resolve_pod(client, ns, name, *port, source).await
        }
        DestSpec::Address { host, port } => Ok(resolve_address(client, host, *port, source).await),
    }
}

async fn resolve_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    port: Option<u16>,
    source: &ResolvedSource,
) -> Result<ResolvedDestination, Error> {
    let pod: Pod = api::get(client, ns, name, "pods", "pod").await?;
    if !pods::is_running(&pod) {
        return Err(Error::PodNotRunning {
            namespace: ns.to_string(),
            pod: name.to_string(),
            phase: pods::phase(&pod).to_string(),
            reason: pods::not_running_reason(&pod),
        });
    }
    let ip = pods::ip(&pod)
        .ok_or_else(|| Error::PodWithoutIp {
            namespace: ns.to_string(),
            pod: name.to_string(),
            phase: pods::phase(&pod).to_string(),
        })?
        .to_string();
    // Without a port, the pod's only declared TCP port is the obvious one.
    let port = port.or_else(|| {
        let tcp: Vec<u16> = pods::declared_ports(&pod)
            .into_iter()
            .filter(|(_, p)| pods::port_protocol(p) == "TCP")
            .filter_map(|(_, p)| u16::try_from(p.container_port).ok())
            .collect();
        match tcp.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    });
    let ready = pods::is_ready(&pod);
    let mut findings = Vec::new();
    if !ready {
        findings.push(KubeFinding {
            code: KubeFindingCode::DestinationPodNotReady,
            severity: Severity::Warning,
            object: format!("pod/{name}"),
            message: format!(
                "pod/{name} in namespace {ns} is not Ready: {}",
                pods::not_ready_reason(&pod)
            ),
            details: Default::default(),
        });
    }
    let target = Target {
        label: match port {
            Some(p) => format!("pod/{name}:{p}"),
            None => format!("pod/{name}"),
        },
        host: ip.clone(),
        port,
        role: TargetRole::Pod.into(),
    };
    if let Some(p) = port {
        findings.extend(
            policy::findings(
                client,
                source,
                ns,
                &[DestinationPod { pod: &pod, port: p }],
                None,
                false,
            )
            .await,
        );
    }
    Ok(ResolvedDestination {
        info: DestinationInfo::Pod(PodDestination {
            namespace: ns.to_string(),
            name: name.to_string(),
            ip: Some(ip),
            port,
            ready,
        }),
        targets: vec![target],
        dns_names: Vec::new(),
        findings,
    })
}

async fn resolve_address(
    client: &kube::Client,
    host: &str,
    port: u16,
    source: &ResolvedSource,
) -> ResolvedDestination {
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let label = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let findings = policy::findings(
        client,
        source,
        &source.info.namespace,
        &[],
        Some(DestinationAddress { host, port }),
        !is_ip,
    )
    .await;
    ResolvedDestination {
        info: DestinationInfo::Address {
            host: host.to_string(),
            port: Some(port),
        },
        targets: vec![Target {
            label,
            host: host.to_string(),
            port: Some(port),
            role: TargetRole::Direct.into(),
        }],
        dns_names: if is_ip {
            Vec::new()
        } else {
            vec![host.to_string()]
        },
        findings,
    }
}
