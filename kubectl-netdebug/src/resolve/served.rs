//! The Services a pod serves: the EndpointSlices of its namespace that name it, and the port
//! each sends to it. Lets `--sockets` say when the pod does not accept a Service's traffic on
//! its pod IP (an app bound to 127.0.0.1, or listening on another port).

use k8s_openapi::api::discovery::v1::EndpointSlice;
use netdebug_verdict::kube::ServedPort;

use super::api;
use crate::error::Error;

/// The label EndpointSlices carry with their Service's name.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Every (Service, port) whose EndpointSlices list `pod` as an endpoint, sorted and without
/// duplicates (a Service has one slice per address family).
pub async fn served_ports(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
) -> Result<Vec<ServedPort>, Error> {
    let slices: Vec<EndpointSlice> = api::list(client, namespace, None, "endpointslices").await?;
    Ok(ports_serving(&slices, pod))
}

/// The pure part of [`served_ports`].
pub fn ports_serving(slices: &[EndpointSlice], pod: &str) -> Vec<ServedPort> {
    let mut out: Vec<ServedPort> = Vec::new();
    for slice in slices {
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let names_pod = slice.endpoints.iter().any(|e| {
            e.target_ref
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some("Pod") && r.name.as_deref() == Some(pod))
        });
        if !names_pod {
            continue;
        }
        for p in slice.ports.iter().flatten() {
            let Some(port) = p.port.and_then(|n| u16::try_from(n).ok()) else {
                continue;
            };
            out.push(ServedPort {
                service: service.clone(),
                name: p.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            });
        }
    }
    out.sort_by(|a, b| (&a.service, a.port, &a.protocol).cmp(&(&b.service, b.port, &b.protocol)));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(service: &str, pods: &[&str], ports: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-abc"), "labels": {SERVICE_NAME_LABEL: service}},
            "addressType": "IPv4",
            "endpoints": pods.iter().map(|p| json!({
                "addresses": ["10.244.0.6"],
                "targetRef": {"kind": "Pod", "name": p, "namespace": "shop"}
            })).collect::<Vec<_>>(),
            "ports": ports,
        }))
        .unwrap()
    }

    #[test]
    fn the_slices_naming_the_pod_give_their_services_and_ports() {
        let slices = vec![
            slice(
                "web",
                &["web-0", "web-1"],
                json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            ),
            slice("other", &["other-0"], json!([{"name": "", "port": 9000}])),
            slice("metrics", &["web-0"], json!([{"name": "", "port": 9090}])),
            // A second address family's slice of the same Service: one entry, not two.
            slice(
                "web",
                &["web-0"],
                json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            ),
        ];
        let got = ports_serving(&slices, "web-0");
        assert_eq!(
            got,
            vec![
                ServedPort {
                    service: "metrics".into(),
                    name: None,
                    port: 9090,
                    protocol: "TCP".into()
                },
                ServedPort {
                    service: "web".into(),
                    name: Some("http".into()),
                    port: 8080,
                    protocol: "TCP".into()
                },
            ]
        );
        assert!(ports_serving(&slices, "nobody").is_empty());
    }
}
