//! Service ports: which ones `--to` asks for, what their targetPort is on each pod, and
//! whether the pods' containers expose it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Pod, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use netdebug_verdict::kube::{KubeFinding, KubeFindingCode, ServicePortInfo, Severity};

use super::endpoints::Endpoint;
use crate::error::Error;
use crate::resolve::pods;
use crate::resolve::spec::PortRef;

/// A Service port being examined, with its targetPort as written.
#[derive(Debug, Clone)]
pub(super) struct PortUnderTest {
    pub(super) name: Option<String>,
    pub(super) port: u16,
    pub(super) protocol: String,
    pub(super) target: IntOrString,
}

impl PortUnderTest {
    pub(super) fn from_service_port(p: &ServicePort) -> Option<Self> {
        let port = u16::try_from(p.port).ok()?;
        Some(PortUnderTest {
            name: p.name.clone().filter(|n| !n.is_empty()),
            port,
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
            target: p
                .target_port
                .clone()
                .unwrap_or(IntOrString::Int(i32::from(port))),
        })
    }

    pub(super) fn target_text(&self) -> String {
        match &self.target {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        }
    }

    pub(super) fn is_tcp(&self) -> bool {
        self.protocol == "TCP"
    }

    pub(super) fn info(&self) -> ServicePortInfo {
        ServicePortInfo {
            name: self.name.clone(),
            port: self.port,
            protocol: self.protocol.clone(),
            target_port: self.target_text(),
        }
    }
}

pub(super) fn port_list_text(ports: &[ServicePort]) -> String {
    if ports.is_empty() {
        return "none".to_string();
    }
    ports
        .iter()
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            match p.name.as_deref().filter(|n| !n.is_empty()) {
                Some(n) => format!("{}/{proto} ({n})", p.port),
                None => format!("{}/{proto}", p.port),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn select_ports(
    svc_name: &str,
    namespace: &str,
    ports: &[ServicePort],
    asked: Option<&PortRef>,
) -> Result<Vec<PortUnderTest>, Error> {
    let all: Vec<PortUnderTest> = ports
        .iter()
        .filter_map(PortUnderTest::from_service_port)
        .collect();
    let Some(asked) = asked else {
        return Ok(all);
    };
    let found: Vec<PortUnderTest> = all
        .iter()
        .filter(|p| match asked {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(s) => p.name.as_deref() == Some(s.as_str()),
        })
        .cloned()
        .collect();
    if !found.is_empty() {
        return Ok(found);
    }
    // A Service without ports (headless or ExternalName) takes any numeric port as is.
    if let (true, PortRef::Number(n)) = (ports.is_empty(), asked) {
        return Ok(vec![PortUnderTest {
            name: None,
            port: *n,
            protocol: "TCP".to_string(),
            target: IntOrString::Int(i32::from(*n)),
        }]);
    }
    Err(Error::PortNotFound {
        service: svc_name.to_string(),
        namespace: namespace.to_string(),
        asked: asked.to_string(),
        available: port_list_text(ports),
    })
}

/// The targetPort as a number on this pod (a name through its container ports).
pub(super) fn resolve_on_pod(p: &PortUnderTest, pod: &Pod) -> Option<u16> {
    match &p.target {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => pods::named_port(pod, name, &p.protocol).map(|(_, n)| n),
    }
}

/// A named targetPort no pod has is a failure (kube-proxy has nowhere to send the traffic);
/// one only some pods have, a warning. A numeric targetPort is only suspicious when the pods
/// declare ports and none is that number (declaring ports is optional).
pub(super) fn target_port_finding(
    svc: &str,
    p: &PortUnderTest,
    pods_: &[Pod],
) -> Option<KubeFinding> {
    if pods_.is_empty() {
        return None;
    }
    let declared: Vec<String> = {
        let mut all: Vec<String> = pods_.iter().flat_map(pods::port_list).collect();
        all.sort();
        all.dedup();
        all
    };
    let mut details: BTreeMap<String, String> = [
        ("port".to_string(), p.port.to_string()),
        ("target_port".to_string(), p.target_text()),
    ]
    .into();
    if !declared.is_empty() {
        details.insert("container_ports".to_string(), declared.join(", "));
    }
    let exposes = |pod: &Pod| match &p.target {
        IntOrString::String(name) => pods::named_port(pod, name, &p.protocol).is_some(),
        IntOrString::Int(n) => pods::declared_ports(pod)
            .iter()
            .any(|(_, cp)| cp.container_port == *n && pods::port_protocol(cp) == p.protocol),
    };
    let lacking: Vec<&str> = pods_
        .iter()
        .filter(|pod| !exposes(pod))
        .map(pods::name)
        .collect();
    if lacking.is_empty() {
        return None;
    }
    let exposed_text = if declared.is_empty() {
        "its pods declare no container ports".to_string()
    } else {
        format!("the containers declare {}", declared.join(", "))
    };
    match &p.target {
        IntOrString::String(name) => {
            let all = lacking.len() == pods_.len();
            details.insert("pods".to_string(), lacking.join(","));
            Some(KubeFinding {
                code: KubeFindingCode::TargetPortNotExposed,
                severity: if all {
                    Severity::Failure
                } else {
                    Severity::Warning
                },
                object: format!("svc/{svc}"),
                message: if all {
                    format!(
                        "svc/{svc} port {} targets port name \"{name}\" ({}), which no container \
                         of its pods defines: {exposed_text}",
                        p.port, p.protocol
                    )
                } else {
                    format!(
                        "svc/{svc} port {} targets port name \"{name}\", which {} of {} pods do \
                         not define ({})",
                        p.port,
                        lacking.len(),
                        pods_.len(),
                        lacking.join(", ")
                    )
                },
                details,
            })
        }
        IntOrString::Int(n) => {
            // Only when every pod declares ports and none declares this one.
            let all_declare = pods_
                .iter()
                .all(|pod| !pods::declared_ports(pod).is_empty());
            if !(all_declare && lacking.len() == pods_.len()) {
                return None;
            }
            details.insert("pods".to_string(), lacking.join(","));
            Some(KubeFinding {
                code: KubeFindingCode::TargetPortNotExposed,
                severity: Severity::Warning,
                object: format!("svc/{svc}"),
                message: format!(
                    "svc/{svc} port {} targets port {n}/{}, which no container of its pods \
                     declares ({exposed_text}); unless something listens there undeclared, \
                     connections will be refused",
                    p.port, p.protocol
                ),
                details,
            })
        }
    }
}

/// `port 443 -> targetPort https (8443, container api)` for the healthy summary.
pub(super) fn describe_resolved_port(
    p: &PortUnderTest,
    pods_: &[Pod],
    endpoints: &[Endpoint],
    examined: &[PortUnderTest],
) -> String {
    let i = examined
        .iter()
        .position(|x| x.port == p.port && x.protocol == p.protocol)
        .unwrap_or(0);
    let resolved: BTreeSet<u16> = endpoints.iter().filter_map(|e| e.ports[i]).collect();
    let container = match &p.target {
        IntOrString::String(name) => pods_
            .iter()
            .find_map(|pod| pods::named_port(pod, name, &p.protocol))
            .map(|(c, _)| c),
        IntOrString::Int(n) => pods_.iter().find_map(|pod| {
            pods::declared_ports(pod)
                .into_iter()
                .find(|(_, cp)| cp.container_port == *n)
                .map(|(c, _)| c.to_string())
        }),
    };
    let numbers: Vec<String> = resolved.iter().map(u16::to_string).collect();
    let mut s = format!("port {} -> targetPort {}", p.port, p.target_text());
    let mut extra = Vec::new();
    if matches!(p.target, IntOrString::String(_)) && !numbers.is_empty() {
        extra.push(numbers.join("/"));
    }
    if let Some(c) = container {
        extra.push(format!("container {c}"));
    }
    if !extra.is_empty() {
        s.push_str(&format!(" ({})", extra.join(", ")));
    }
    s
}
