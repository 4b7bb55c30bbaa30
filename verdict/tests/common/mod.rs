//! Shared helpers for the verdict tests: loading recorded probe fixtures
//! (`tests/fixtures/<scenario>.jsonl`, recorded by `tests/record-fixtures.sh` from real
//! network-namespace scenarios) and building Kubernetes-level evidence (which no probe
//! records: the client produces it from API objects).

#![allow(dead_code)]

pub mod app;
pub mod build;
pub mod ends;

use std::collections::BTreeMap;
use std::path::PathBuf;

use netdebug_verdict::kube::{
    DestinationInfo, EndpointInfo, KubeEvidence, KubeFinding, KubeFindingCode, ServiceInfo,
    ServicePortInfo, Severity, SourceInfo,
};
use netdebug_verdict::{Inputs, StreamEnd, Title};

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.jsonl"))
}

/// Decode a recorded fixture line by line, as the client does.
pub fn load(name: &str, title: Title, kube: KubeEvidence) -> Inputs {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    inputs_from_lines(&text, title, kube)
}

pub fn inputs_from_lines(text: &str, title: Title, kube: KubeEvidence) -> Inputs {
    let mut inputs = Inputs::new(title, kube);
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let decoded =
            protocol::decode_line(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", n + 1));
        inputs.record(decoded);
    }
    if inputs.stream_end != StreamEnd::Done {
        inputs.end_stream("the probe process exited (status 137, killed) before `done`");
    }
    inputs
}

pub fn title(source: &str, destination: &str) -> Title {
    Title {
        source: source.to_string(),
        destination: Some(destination.to_string()),
        namespace: None,
        origin: None,
        asked: None,
    }
}

pub fn k8s_title(source: &str, destination: &str, ns: &str) -> Title {
    Title {
        source: source.to_string(),
        destination: Some(destination.to_string()),
        namespace: Some(ns.to_string()),
        origin: None,
        asked: None,
    }
}

pub fn source(pod: &str, ns: &str, ip: &str) -> SourceInfo {
    SourceInfo {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        picked_from: None,
        container: Some("app".into()),
        node: Some("node-1".into()),
        pod_ip: Some(ip.to_string()),
        labels: BTreeMap::from([("app".to_string(), "checkout".to_string())]),
    }
}

pub fn endpoint(ip: &str, port: u16, ready: bool, pod: &str) -> EndpointInfo {
    EndpointInfo {
        ip: ip.to_string(),
        port: Some(port),
        ready,
        serving: ready,
        terminating: false,
        pod: Some(pod.to_string()),
        container: Some("app".into()),
        node: Some("node-1".into()),
    }
}

/// A Service with one port and the given endpoints.
pub fn service(
    name: &str,
    ns: &str,
    cluster_ip: &str,
    port: u16,
    target_port: &str,
    endpoints: Vec<EndpointInfo>,
) -> ServiceInfo {
    ServiceInfo {
        namespace: ns.to_string(),
        name: name.to_string(),
        service_type: "ClusterIP".into(),
        cluster_ip: Some(cluster_ip.to_string()),
        headless: false,
        external_name: None,
        selector: BTreeMap::from([("app".to_string(), name.to_string())]),
        ports: vec![ServicePortInfo {
            name: Some("http".into()),
            port,
            protocol: "TCP".into(),
            target_port: target_port.to_string(),
        }],
        endpoints,
        dns_name: format!("{name}.{ns}.svc.cluster.local"),
    }
}

pub fn kube_service(src: SourceInfo, svc: ServiceInfo, findings: Vec<KubeFinding>) -> KubeEvidence {
    KubeEvidence {
        source: Some(src),
        destination: Some(DestinationInfo::Service(svc)),
        profile: None,
        findings,
        cluster_dns: None,
        cluster_domain: Some("cluster.local".into()),
        serves: None,
    }
}

pub fn kube_finding(
    code: KubeFindingCode,
    severity: Severity,
    object: &str,
    message: &str,
    details: &[(&str, &str)],
) -> KubeFinding {
    KubeFinding {
        code,
        severity,
        object: object.to_string(),
        message: message.to_string(),
        details: details
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}
