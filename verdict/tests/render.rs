//! The three renderers on recorded scenarios: insta snapshots (colours off) of a healthy
//! case and failure cases, plus the properties the output promises (100 columns for text,
//! under 25 lines of markdown for a Service with three endpoints, JSON field names, colours
//! only when asked, tolerance of a newer probe's unknown fields).

mod common;

use common::*;
use netdebug_verdict::kube::{
    DestinationInfo, KubeEvidence, KubeFindingCode, PodDestination, Severity as KSeverity,
};
use netdebug_verdict::{
    evaluate, Inputs, JsonRenderer, MarkdownRenderer, Renderer, Status, TextRenderer,
};

fn web_service() -> KubeEvidence {
    let svc = service(
        "web",
        "shop",
        "10.199.96.10",
        80,
        "http",
        vec![
            endpoint("10.199.70.2", 8080, true, "web-0"),
            endpoint("10.199.70.3", 8080, true, "web-1"),
            endpoint("10.199.70.4", 8080, true, "web-2"),
        ],
    );
    let mut k = kube_service(source("client", "shop", "10.199.70.1"), svc, vec![]);
    k.cluster_dns = Some("10.199.96.53".into());
    k
}

fn policy_denies() -> KubeEvidence {
    let mut k = web_service();
    k.destination = Some(DestinationInfo::Pod(PodDestination {
        namespace: "shop".into(),
        name: "web-0".into(),
        ip: Some("10.199.70.2".into()),
        port: Some(8080),
        ready: true,
    }));
    k.findings.push(kube_finding(
        KubeFindingCode::NetworkPolicyDenies,
        KSeverity::Failure,
        "networkpolicy/shop/web-ingress",
        "networkpolicy/web-ingress admits app=frontend only; source has app=checkout",
        &[
            ("policy", "shop/web-ingress"),
            ("direction", "ingress"),
            ("namespace", "shop"),
        ],
    ));
    k
}

/// (snapshot name, inputs) for every rendered case.
fn cases() -> Vec<(&'static str, Inputs)> {
    let svc = || k8s_title("pod/client", "svc/web:80", "shop");
    let netns = |d: &str| title("netns/vdr-client", d);
    vec![
        (
            "healthy_service",
            load("healthy_service", svc(), web_service()),
        ),
        (
            "timeout_network_policy",
            load(
                "tcp_timeout",
                k8s_title("pod/client", "pod/web-0:8080", "shop"),
                policy_denies(),
            ),
        ),
        (
            "service_dataplane",
            load("service_dataplane", svc(), web_service()),
        ),
        (
            "service_bad_endpoint",
            load("service_bad_endpoint", svc(), web_service()),
        ),
        (
            "no_route",
            load("no_route", netns("10.199.99.9:80"), KubeEvidence::default()),
        ),
        (
            "policy_prohibit",
            load(
                "policy_prohibit",
                netns("10.199.75.5:80"),
                KubeEvidence::default(),
            ),
        ),
        (
            "tcp_rejected_by_router",
            load(
                "tcp_rejected_by_router",
                netns("10.199.71.2:8080"),
                KubeEvidence::default(),
            ),
        ),
        (
            "mtu_blackhole",
            load(
                "mtu_blackhole",
                netns("10.199.71.2:8080"),
                KubeEvidence::default(),
            ),
        ),
        (
            "listen_overflow",
            load(
                "listen_overflow",
                netns("10.199.70.2:8080"),
                KubeEvidence::default(),
            ),
        ),
        (
            "dns_nxdomain",
            load(
                "dns_nxdomain",
                netns("dns web.other"),
                KubeEvidence::default(),
            ),
        ),
        (
            "dns_search_expansion",
            load(
                "dns_search_expansion",
                netns("dns api.example.test"),
                KubeEvidence::default(),
            ),
        ),
        (
            "stopped_early",
            load(
                "stopped_early",
                netns("10.199.70.2:8080"),
                KubeEvidence::default(),
            ),
        ),
    ]
}

fn render(r: &mut dyn Renderer, inputs: &Inputs) -> String {
    let v = evaluate(inputs);
    r.finish(inputs, &v)
}

#[test]
fn text_snapshots() {
    for (name, inputs) in cases() {
        insta::assert_snapshot!(
            format!("text_{name}"),
            render(&mut TextRenderer::new(false), &inputs)
        );
    }
}

#[test]
fn markdown_snapshots() {
    for (name, inputs) in cases() {
        insta::assert_snapshot!(
            format!("markdown_{name}"),
            render(&mut MarkdownRenderer::new(), &inputs)
        );
    }
}

#[test]
fn json_snapshots() {
    for (name, inputs) in cases() {
        insta::assert_snapshot!(
            format!("json_{name}"),
            render(&mut JsonRenderer::new(), &inputs)
        );
    }
}

#[test]
fn text_fits_100_columns_for_every_recorded_scenario() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let inputs = load(
            &name,
            k8s_title("pod/client", "svc/web:80", "shop"),
            web_service(),
        );
        let out = render(&mut TextRenderer::new(false), &inputs);
        for line in out.lines() {
            assert!(
                line.chars().count() <= 100,
                "{name}: {} columns: {line}",
                line.chars().count()
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures");
}

#[test]
fn markdown_is_compact_for_a_service_with_three_endpoints() {
    for (name, inputs) in cases() {
        let md = render(&mut MarkdownRenderer::new(), &inputs);
        assert!(
            md.lines().count() < 25,
            "{name}: {} lines\n{md}",
            md.lines().count()
        );
        assert!(md.starts_with("**netdebug** "), "{md}");
    }
}

#[test]
fn json_has_the_documented_fields() {
    let (_, inputs) = cases().remove(1);
    let out = render(&mut JsonRenderer::new(), &inputs);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["format"], "kubectl-netdebug/verdict");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["title"]["destination"], "pod/web-0:8080");
    assert_eq!(doc["verdict"]["layer"], "transport");
    assert_eq!(doc["verdict"]["headline"], "L4 timeout");
    assert_eq!(
        doc["verdict"]["rules_fired"][0],
        "tcp_timeout_network_policy"
    );
    assert!(doc["verdict"]["cause"]
        .as_str()
        .unwrap()
        .contains("web-ingress"));
    assert!(doc["verdict"]["evidence"][0]["mark"].is_string());
    assert!(doc["verdict"]["unchecked"].is_array());
    assert!(doc["verdict"]["next"].is_array());
    assert_eq!(doc["kube"]["findings"][0]["code"], "network_policy_denies");
    assert_eq!(doc["probe"]["stream_end"]["state"], "done");
    // pcap_chunk events are counted, their bytes are not repeated (they are in the file).
    let chunks = inputs
        .events
        .iter()
        .filter(|e| matches!(e, protocol::Event::PcapChunk(_)))
        .count();
    assert_eq!(chunks, 1);
    assert_eq!(doc["probe"]["pcap_chunks"], 1);
    assert_eq!(
        doc["probe"]["events"].as_array().unwrap().len(),
        inputs.events.len() - chunks
    );
    assert_eq!(doc["probe"]["events"][0]["type"], "hello");
}

#[test]
fn colours_only_when_asked() {
    let (_, inputs) = cases().remove(1);
    let plain = render(&mut TextRenderer::new(false), &inputs);
    let coloured = render(&mut TextRenderer::new(true), &inputs);
    assert!(!plain.contains('\u{1b}'));
    assert!(coloured.contains("\u{1b}["), "{coloured}");
    // Same text once the escapes are gone.
    let stripped = strip_ansi(&coloured);
    assert_eq!(stripped, plain);
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn progress_lines_on_text_only() {
    let (_, inputs) = cases().remove(0);
    let mut text = TextRenderer::new(false);
    let lines: Vec<String> = inputs
        .events
        .iter()
        .filter_map(|e| text.progress(e))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  ok    TCP       10.199.96.10:80 ok")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("probe 0.1.0 started")),
        "{lines:#?}"
    );
    for l in lines.iter().flat_map(|l| l.lines()) {
        assert!(
            l.chars().count() <= 100,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    for e in &inputs.events {
        assert_eq!(MarkdownRenderer::new().progress(e), None);
        assert_eq!(JsonRenderer::new().progress(e), None);
    }
}

/// A newer probe adds fields everywhere, a new event type and a new evidence kind: the
/// verdict is the same and the output says what was ignored.
#[test]
fn evidence_from_a_newer_probe_still_renders() {
    let text = std::fs::read_to_string(fixture_path("tcp_timeout")).unwrap();
    let mut newer = Vec::new();
    for line in text.lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["trace_id"] = "abc".into();
        if let Some(data) = v["data"].as_object_mut() {
            data.insert("future_field".into(), serde_json::json!({"x": [1, 2]}));
            if let Some(outcome) = data.get_mut("outcome").and_then(|o| o.as_object_mut()) {
                outcome.insert("future_detail".into(), "y".into());
            }
        }
        newer.push(v.to_string());
    }
    let seq = newer.len();
    newer.insert(
        2,
        format!(r#"{{"v":1,"seq":{seq},"type":"ebpf_trace","data":{{"drops":3}}}}"#),
    );
    newer.insert(
        3,
        format!(
            r#"{{"v":1,"seq":{},"type":"evidence","data":{{"kind":"qdisc","drops":7}}}}"#,
            seq + 1
        ),
    );
    let kube = policy_denies;
    let t = || k8s_title("pod/client", "pod/web-0:8080", "shop");
    let old = inputs_from_lines(&text, t(), kube());
    let new = inputs_from_lines(&newer.join("\n"), t(), kube());
    let (vo, vn) = (evaluate(&old), evaluate(&new));
    assert_eq!(vn.status, Status::Failed);
    assert_eq!(vn.rules_fired, vo.rules_fired);
    assert_eq!(vn.cause, vo.cause);
    assert!(
        vn.notes
            .iter()
            .any(|n| n.contains("ignored 2 event(s) of a newer probe")
                && n.contains("ebpf_trace")
                && n.contains("evidence/qdisc")),
        "{:?}",
        vn.notes
    );
    for r in [
        &mut TextRenderer::new(false) as &mut dyn Renderer,
        &mut MarkdownRenderer::new(),
        &mut JsonRenderer::new(),
    ] {
        let out = r.finish(&new, &vn);
        assert!(out.contains("web-ingress"), "{out}");
    }
}

/// Repeated connects (recorded: 20 rounds toward svc/web, one endpoint dropping every 4th
/// SYN): text and markdown show one line per address, never one per connect; JSON keeps the
/// raw `tcp_rounds` evidence with every sample, as it keeps all evidence.
#[test]
fn rounds_show_one_line_per_address_and_keep_the_samples_in_json() {
    let inputs = load(
        "rounds_bad_endpoint",
        k8s_title("pod/client", "svc/web:80", "shop"),
        web_service(),
    );
    insta::assert_snapshot!(
        "text_rounds_bad_endpoint",
        render(&mut TextRenderer::new(false), &inputs)
    );
    let md = render(&mut MarkdownRenderer::new(), &inputs);
    assert!(md.lines().count() < 25, "{md}");
    insta::assert_snapshot!("markdown_rounds_bad_endpoint", md);

    let doc: serde_json::Value =
        serde_json::from_str(&render(&mut JsonRenderer::new(), &inputs)).unwrap();
    assert_eq!(doc["verdict"]["rules_fired"][0], "service_bad_endpoint");
    let rounds: Vec<&serde_json::Value> = doc["probe"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["kind"] == "tcp_rounds")
        .collect();
    assert_eq!(rounds.len(), 4);
    assert!(rounds
        .iter()
        .all(|r| r["data"]["samples"].as_array().unwrap().len() == 20));
}
