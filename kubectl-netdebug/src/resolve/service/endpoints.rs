//! A Service's endpoints from its EndpointSlices, merged by address, each with its port per
//! examined Service port.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use netdebug_verdict::kube::EndpointInfo;

use super::ports::{resolve_on_pod, PortUnderTest};
use crate::resolve::pods;

/// One endpoint address, merged across slices.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) ip: String,
    pub(super) ready: bool,
    pub(super) serving: bool,
    pub(super) terminating: bool,
    pub(super) pod: Option<String>,
    pub(super) node: Option<String>,
    /// Resolved port per examined Service port (index into the examined ports).
    pub(super) ports: Vec<Option<u16>>,
    /// The container serving each of those ports, when the pod tells (see
    /// [`pods::container_serving`]).
    pub(super) containers: Vec<Option<String>>,
}

impl Endpoint {
    /// What the verdict is told about this endpoint: its port is the one for the first TCP
    /// port examined (else the first resolved one).
    pub(super) fn info(&self, first_tcp: Option<usize>) -> EndpointInfo {
        let index = first_tcp
            .filter(|i| self.ports[*i].is_some())
            .or_else(|| self.ports.first().map(|_| 0));
        EndpointInfo {
            ip: self.ip.clone(),
            port: index.and_then(|i| self.ports[i]),
            container: index.and_then(|i| self.containers[i].clone()),
            ready: self.ready,
            serving: self.serving,
            terminating: self.terminating,
            pod: self.pod.clone(),
            node: self.node.clone(),
        }
    }
}

/// Merge the slices' endpoints by address; each endpoint's port per examined Service port is
/// its slice's port of the same name and protocol (what kube-proxy uses), else the targetPort
/// resolved on its pod.
pub(super) fn collect_endpoints(
    slices: &[EndpointSlice],
    examined: &[PortUnderTest],
    pods_by_name: &BTreeMap<&str, &Pod>,
) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = Vec::new();
    for slice in slices {
        let slice_ports = slice.ports.clone().unwrap_or_default();
        for ep in &slice.endpoints {
            let cond = ep.conditions.clone().unwrap_or_default();
            // The API: unset `ready` and `serving` are read as true, `terminating` as false.
            let ready = cond.ready.unwrap_or(true);
            let serving = cond.serving.unwrap_or(true);
            let terminating = cond.terminating.unwrap_or(false);
            let pod = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            let pod_obj = pod.as_deref().and_then(|n| pods_by_name.get(n)).copied();
            let ports: Vec<Option<u16>> = examined
                .iter()
                .map(|p| {
                    let want_name = p.name.as_deref().unwrap_or("");
                    slice_ports
                        .iter()
                        .find(|sp| {
                            sp.name.as_deref().unwrap_or("") == want_name
                                && sp.protocol.as_deref().unwrap_or("TCP") == p.protocol
                        })
                        .and_then(|sp| sp.port)
                        .and_then(|n| u16::try_from(n).ok())
                        .or_else(|| match (&p.target, pod_obj) {
                            (IntOrString::Int(n), _) => u16::try_from(*n).ok(),
                            (IntOrString::String(_), Some(pod)) => resolve_on_pod(p, pod),
                            (IntOrString::String(_), None) => None,
                        })
                })
                .collect();
            let containers: Vec<Option<String>> = examined
                .iter()
                .zip(&ports)
                .map(|(p, port)| {
                    pod_obj
                        .zip(*port)
                        .and_then(|(pod, port)| pods::container_serving(pod, port, &p.protocol))
                })
                .collect();
            for ip in &ep.addresses {
                if out.iter().any(|e| &e.ip == ip) {
                    continue;
                }
                out.push(Endpoint {
                    ip: ip.clone(),
                    ready,
                    serving,
                    terminating,
                    pod: pod.clone(),
                    node: ep.node_name.clone(),
                    ports: ports.clone(),
                    containers: containers.clone(),
                });
            }
        }
    }
    out
}

pub(super) fn host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}
