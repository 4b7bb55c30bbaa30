//! One test per entry of the diagnosis catalog (DESIGN.md), on probe evidence recorded from
//! real network-namespace scenarios by `tests/record-fixtures.sh` (fixtures/<scenario>.jsonl),
//! combined with the Kubernetes-level evidence the client would have produced for that
//! scenario (built here: no probe records API objects).
//!
//! The few rules whose fault cannot be produced in a namespace on any host (interface error
//! counters, a conntrack table near its global maximum) are tested on constructed evidence
//! at the end, and say so.

mod common;

use common::build;
use common::*;
use netdebug_verdict::kube::{
    DestinationInfo, KubeEvidence, KubeFindingCode, ProfileInfo, Severity as KSeverity,
};
use netdebug_verdict::{evaluate, Layer, Mark, RuleCode, Status, Verdict};

// ---- the scenario's Kubernetes view -------------------------------------------------------

/// svc/web in shop: ClusterIP 10.199.96.10:80 -> targetPort `target` on three pods.
fn web_service(target: &str, port: u16, ready: [bool; 3]) -> KubeEvidence {
    let svc = service(
        "web",
        "shop",
        "10.199.96.10",
        80,
        target,
        vec![
            endpoint("10.199.70.2", port, ready[0], "web-0"),
            endpoint("10.199.70.3", port, ready[1], "web-1"),
            endpoint("10.199.70.4", port, ready[2], "web-2"),
        ],
    );
    let mut k = kube_service(source("client", "shop", "10.199.70.1"), svc, vec![]);
    k.cluster_dns = Some("10.199.96.53".into());
    k
}

fn svc_title() -> netdebug_verdict::Title {
    k8s_title("pod/client", "svc/web:80", "shop")
}

fn direct(kube: KubeEvidence, name: &str, dest: &str) -> netdebug_verdict::Inputs {
    load(name, title("netns/vdr-client", dest), kube)
}

fn fired(v: &Verdict) -> String {
    format!(
        "status {:?} layer {:?} rules {:?}\ncause: {:?}",
        v.status, v.layer, v.rules_fired, v.cause
    )
}

fn cause(v: &Verdict) -> &str {
    v.cause.as_deref().unwrap_or("")
}

// ---- healthy -----------------------------------------------------------------------------

#[test]
fn healthy_service_says_what_it_proved() {
    let i = load(
        "healthy_service",
        svc_title(),
        web_service("8080", 8080, [true; 3]),
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Healthy, "{}", fired(&v));
    assert_eq!(v.exit_code(), 0);
    assert!(v.findings.is_empty());
    // Proven: the ClusterIP and all three endpoints connect, the Service is complete.
    let proven = v.proven.join("\n");
    assert!(proven.contains("10.199.96.10:80 connected"), "{proven}");
    assert!(proven.contains("10.199.70.4:8080 connected"), "{proven}");
    assert!(proven.contains("3/3 endpoints ready"), "{proven}");
    assert!(proven.contains("via 10.199.70.2 dev vdr-c0"), "{proven}");
    assert!(
        proven.contains("web (as web.shop.svc.cluster.local) -> 10.199.96.10"),
        "{proven}"
    );
    assert!(proven.contains("no CLOSE-WAIT build-up"), "{proven}");
    assert!(proven.contains("retransmitted segments +0"), "{proven}");
    // Not proven: what did not run is listed with the reason.
    assert!(!v.unchecked.is_empty());
    assert!(v.next[0].contains("--capture"), "{:?}", v.next);
}

// ---- DNS ---------------------------------------------------------------------------------

#[test]
fn dns_nxdomain_on_every_candidate() {
    let i = direct(KubeEvidence::default(), "dns_nxdomain", "dns web.other");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Dns));
    assert_eq!(v.rules_fired, vec![RuleCode::DnsNxdomain], "{}", fired(&v));
    assert!(
        cause(&v).contains("web.other does not exist"),
        "{}",
        cause(&v)
    );
    assert!(cause(&v).contains("4 candidates"), "{}", cause(&v));
    assert!(cause(&v).contains("wrong namespace?"), "{}", cause(&v));
}

#[test]
fn dns_cluster_dns_unreachable() {
    let k = KubeEvidence {
        cluster_dns: Some("10.199.96.53".into()),
        ..Default::default()
    };
    let i = direct(k, "dns_unreachable", "dns web");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Dns));
    assert!(v.fired(RuleCode::DnsServerUnreachable), "{}", fired(&v));
    assert!(
        cause(&v).contains("cluster DNS 10.199.96.53 answered none of"),
        "{}",
        cause(&v)
    );
    assert!(
        cause(&v).contains("each timed out after 1.0 s, retries 1.0 s apart"),
        "{}",
        cause(&v)
    );
    assert!(
        cause(&v).contains("web gave up after 4.0 s"),
        "{}",
        cause(&v)
    );
}

#[test]
fn dns_search_expansion_counts_wasted_queries() {
    let i = direct(
        KubeEvidence::default(),
        "dns_search_expansion",
        "dns api.example.test",
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::DnsSearchExpansion],
        "{}",
        fired(&v)
    );
    assert!(cause(&v).contains("ndots:5"), "{}", cause(&v));
    assert!(cause(&v).contains("6 wasted queries"), "{}", cause(&v));
    assert!(
        cause(&v).contains("use api.example.test. (trailing dot) or ndots:2"),
        "{}",
        cause(&v)
    );
    assert!(
        v.next[0].starts_with("getent hosts api.example.test. "),
        "{:?}",
        v.next
    );
}

#[test]
fn dns_resolv_conf_not_cluster_dns() {
    let mut k = web_service("8080", 8080, [true; 3]);
    k.destination = None;
    let i = direct(k, "dns_not_cluster_dns", "dns web");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert!(v.fired(RuleCode::DnsNotClusterDns), "{}", fired(&v));
    assert_eq!(
        v.findings[0].rule,
        RuleCode::DnsNotClusterDns,
        "{}",
        fired(&v)
    );
    assert!(cause(&v).contains("10.199.96.99"), "{}", cause(&v));
    assert!(
        cause(&v).contains("cluster DNS is 10.199.96.53"),
        "{}",
        cause(&v)
    );
    // The NXDOMAINs that follow are evidence, blamed on the wrong resolver, not on a namespace.
    let nx = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::DnsNxdomain)
        .unwrap();
    assert!(
        nx.cause
            .ends_with("from 10.199.96.99, which is not the cluster DNS"),
        "{}",
        nx.cause
    );
}

#[test]
fn dns_servfail_upstream() {
    let i = direct(
        KubeEvidence::default(),
        "dns_servfail",
        "dns api.upstream.test",
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.rules_fired, vec![RuleCode::DnsServfail], "{}", fired(&v));
    assert!(
        cause(&v).contains("SERVFAIL for api.upstream.test"),
        "{}",
        cause(&v)
    );
    assert!(cause(&v).contains("10.199.96.53"), "{}", cause(&v));
}

// ---- Service -----------------------------------------------------------------------------

#[test]
fn service_without_endpoints_names_selector_and_closest_labels() {
    let mut k = web_service("8080", 8080, [true; 3]);
    if let Some(DestinationInfo::Service(s)) = k.destination.as_mut() {
        s.endpoints.clear();
    }
    k.findings.push(kube_finding(
        KubeFindingCode::SelectorMatchesNoPod,
        KSeverity::Failure,
        "svc/web",
        "selector app=web matches no pod in shop",
        &[
            ("selector", "app=web"),
            ("closest_labels", "app=web-v2 (pod/web-v2-0)"),
        ],
    ));
    let i = load("service_no_endpoints", svc_title(), k);
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Service));
    assert_eq!(v.findings[0].rule, RuleCode::ServiceNoEndpoints);
    assert!(
        cause(&v).contains("selector app=web matches no pod in shop"),
        "{}",
        cause(&v)
    );
    assert!(cause(&v).contains("app=web-v2"), "{}", cause(&v));
    // The recorded refusal of the ClusterIP is shown as evidence, not as the cause.
    assert!(v
        .evidence
        .iter()
        .any(|l| l.layer == Layer::Transport && l.text.contains("10.199.96.10:80 refused")));
}

#[test]
fn service_endpoints_not_ready() {
    let mut k = web_service("8080", 8080, [false; 3]);
    k.findings.push(kube_finding(
        KubeFindingCode::EndpointsNotReady,
        KSeverity::Failure,
        "svc/web",
        "readiness probe failed: HTTP probe failed with statuscode: 503",
        &[("ready", "0"), ("not_ready", "3")],
    ));
    let i = load("service_no_endpoints", svc_title(), k);
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(
        v.findings[0].rule,
        RuleCode::ServiceEndpointsNotReady,
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).contains("3 of 3 endpoints of svc/web are not ready"),
        "{}",
        cause(&v)
    );
    assert!(cause(&v).contains("statuscode: 503"), "{}", cause(&v));
}

#[test]
fn service_target_port_not_exposed() {
    let mut k = web_service("9090", 9090, [true; 3]);
    k.findings.push(kube_finding(
        KubeFindingCode::TargetPortNotExposed,
        KSeverity::Failure,
        "svc/web",
        "targetPort 9090 of svc/web is not exposed by any container of pod/web-0, pod/web-1, pod/web-2 (they expose 8080/TCP)",
        &[("container_ports", "8080/TCP")],
    ));
    let i = load("service_target_port", svc_title(), k);
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(
        v.findings[0].rule,
        RuleCode::ServiceTargetPortNotExposed,
        "{}",
        fired(&v)
    );
    assert!(cause(&v).contains("targetPort 9090"), "{}", cause(&v));
    // The probe's refusals on 9090 corroborate it.
    assert!(v.fired(RuleCode::TcpRefusedNoListener));
    let tcp = v
        .evidence
        .iter()
        .find(|l| l.rule == Some(RuleCode::TcpRefusedNoListener))
        .unwrap();
    assert!(
        tcp.text.contains("10.199.70.2:9090 refused"),
        "{}",
        tcp.text
    );
}

#[test]
fn service_dataplane_conflict_is_said_exactly() {
    let i = load(
        "service_dataplane",
        svc_title(),
        web_service("8080", 8080, [true; 3]),
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Service));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::ServiceDataplane],
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).starts_with(
            "ClusterIP 10.199.96.10:80 timed out after 1.5 s while all 3 endpoints answered"
        ),
        "{}",
        cause(&v)
    );
    assert!(
        v.notes
            .iter()
            .any(|n| n.starts_with("Conflicting evidence: the ClusterIP 10.199.96.10:80 failed")),
        "{:?}",
        v.notes
    );
    // Not double-reported as a plain transport timeout.
    assert!(!v.fired(RuleCode::TcpTimeout));
}

#[test]
fn service_one_bad_endpoint_among_good_ones() {
    let i = load(
        "service_bad_endpoint",
        svc_title(),
        web_service("8080", 8080, [true; 3]),
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(v.exit_code(), 1);
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::ServiceBadEndpoint],
        "{}",
        fired(&v)
    );
    assert!(cause(&v).contains("1 of 3 endpoints of svc/web fail: 10.199.70.4:8080 (pod/web-2 on node-1) timed out after 1.5 s; 2 answer"), "{}", cause(&v));
    assert!(cause(&v).contains("pod/web-2"), "{}", cause(&v));
}

// ---- Transport ---------------------------------------------------------------------------

#[test]
fn refused_without_listener() {
    let i = direct(KubeEvidence::default(), "tcp_refused", "10.199.70.2:8081");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Transport));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::TcpRefusedNoListener],
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).contains("nothing listens on port 8081"),
        "{}",
        cause(&v)
    );
    // Route and neighbor were proven on the way.
    assert!(
        v.proven
            .iter()
            .any(|p| p.contains("10.199.70.2 dev vdr-c0 src 10.199.70.1 (next hop REACHABLE)")),
        "{:?}",
        v.proven
    );
}

#[test]
fn refused_because_listener_is_loopback_only() {
    let i = direct(
        KubeEvidence::default(),
        "listener_loopback_only",
        "10.199.70.2:8090",
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::TcpListenerLoopbackOnly],
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).contains("bound to 127.0.0.1:8090"),
        "{}",
        cause(&v)
    );
}

#[test]
fn timeout_is_a_silent_drop() {
    let i = direct(KubeEvidence::default(), "tcp_timeout", "10.199.70.2:8080");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.rules_fired, vec![RuleCode::TcpTimeout], "{}", fired(&v));
    assert_eq!(v.headline, "L4 timeout");
    // The bounded capture recorded with it saw the SYN and its retransmission go unanswered.
    assert!(
        v.evidence
            .iter()
            .any(|l| l.text == "capture: 2 SYNs to 10.199.70.2:8080, no SYN-ACK, no RST, no ICMP"),
        "{:?}",
        v.evidence
    );
    assert!(
        cause(&v).contains("SYN to 10.199.70.2:8080 got no answer in 1.5 s"),
        "{}",
        cause(&v)
    );
}

#[test]
fn timeout_explained_by_network_policy() {
    let mut k = web_service("8080", 8080, [true; 3]);
    k.destination = Some(DestinationInfo::Pod(
        netdebug_verdict::kube::PodDestination {
            namespace: "shop".into(),
            name: "web-0".into(),
            ip: Some("10.199.70.2".into()),
            port: Some(8080),
            ready: true,
        },
    ));
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
    let i = load(
        "tcp_timeout",
        k8s_title("pod/client", "pod/web-0:8080", "shop"),
        k,
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Transport));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::TcpTimeoutNetworkPolicy],
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).contains("networkpolicy/shop/web-ingress (ingress) drops the traffic"),
        "{}",
        cause(&v)
    );
    assert!(v
        .evidence
        .iter()
        .any(|l| l.layer == Layer::Policy && l.mark == Mark::Fail));
    assert_eq!(
        v.next[0],
        "kubectl get networkpolicy -n shop web-ingress -o yaml"
    );
}

#[test]
fn rejected_by_firewall_with_icmp() {
    let i = direct(KubeEvidence::default(), "tcp_rejected", "10.199.70.2:8080");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.rules_fired, vec![RuleCode::TcpRejected], "{}", fired(&v));
    assert!(
        cause(&v).contains("host unreachable (ICMP)"),
        "{}",
        cause(&v)
    );
    assert!(cause(&v).contains("firewall"), "{}", cause(&v));
}

#[test]
fn eaddrnotavail_with_time_wait_near_the_port_range() {
    let i = direct(
        KubeEvidence::default(),
        "port_exhaustion",
        "10.199.70.2:8080",
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::EphemeralPortExhaustion],
        "{}",
        fired(&v)
    );
    assert!(cause(&v).contains("EADDRNOTAVAIL"), "{}", cause(&v));
    assert!(
        cause(&v).contains(
            "2 TIME-WAIT sockets toward 10.199.70.2:8080 against an ephemeral port range of 2 \
             (40000-40001)"
        ),
        "{}",
        cause(&v)
    );
}

#[test]
fn close_wait_accumulation() {
    let i = direct(KubeEvidence::default(), "close_wait", "10.199.70.2:8080");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::CloseWaitAccumulation],
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).contains("12 sockets in CLOSE-WAIT from 10.199.70.2:8080"),
        "{}",
        cause(&v)
    );
}

#[test]
fn listen_queue_overflow_explains_the_timeout() {
    let i = direct(
        KubeEvidence::default(),
        "listen_overflow",
        "10.199.70.2:8080",
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::ListenQueueOverflow],
        "{}",
        fired(&v)
    );
    // The count depends on how many client SYN retries fell into the probe's run.
    assert!(
        cause(&v).contains("incoming connections during the run"),
        "{}",
        cause(&v)
    );
    assert!(cause(&v).contains("ListenOverflows +"), "{}", cause(&v));
    // The socket table shows the accept queue itself, full.
    assert!(
        cause(&v).contains("full accept queue: 10.199.70.2:8080 accept queue 2/1"),
        "{}",
        cause(&v)
    );
    let line = v
        .evidence
        .iter()
        .find(|l| l.text.contains("SYN dropped by the full accept queue"));
    assert!(
        line.is_some_and(|l| l.text.starts_with("10.199.70.2:8080 timeout 1.5 s")),
        "{:?}",
        v.evidence
    );
}

#[test]
fn retransmissions_on_a_lossy_path() {
    let i = direct(
        KubeEvidence::default(),
        "retransmissions",
        "10.199.70.3:8080",
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::TcpRetransmissions],
        "{}",
        fired(&v)
    );
    assert!(cause(&v).contains("TCP segments"), "{}", cause(&v));
    assert!(cause(&v).contains("were retransmitted"), "{}", cause(&v));
}

// ---- Network -----------------------------------------------------------------------------

#[test]
fn no_route_and_no_default_route() {
    let i = direct(KubeEvidence::default(), "no_route", "10.199.99.9:80");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Network));
    assert_eq!(v.rules_fired, vec![RuleCode::NoRoute], "{}", fired(&v));
    assert!(
        cause(&v).contains("no route to 10.199.99.9: no matching route and no default route"),
        "{}",
        cause(&v)
    );
}

#[test]
fn interface_down_without_carrier() {
    let i = direct(
        KubeEvidence::default(),
        "interface_down",
        "10.199.72.2:8080",
    );
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Network));
    assert_eq!(v.findings[0].rule, RuleCode::InterfaceDown, "{}", fired(&v));
    assert!(cause(&v).contains("vdr-c1 has no carrier"), "{}", cause(&v));
}

#[test]
fn next_hop_failed() {
    let i = direct(KubeEvidence::default(), "neighbor_failed", "10.199.99.9:80");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Network));
    assert_eq!(
        v.findings[0].rule,
        RuleCode::NeighborUnreachable,
        "{}",
        fired(&v)
    );
    // Recorded while the probe's own connect re-triggered ARP: INCOMPLETE (FAILED between
    // attempts); both mean nothing answers for the gateway.
    let c = cause(&v);
    assert!(
        c.contains("next hop 10.199.70.254 (gateway) on vdr-c0 is "),
        "{c}"
    );
    assert!(c.contains("INCOMPLETE") || c.contains("FAILED"), "{c}");
}

#[test]
fn rp_filter_strict_with_asymmetric_route() {
    let i = direct(KubeEvidence::default(), "rp_filter", "10.199.73.2:8080");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Network));
    assert_eq!(
        v.findings[0].rule,
        RuleCode::RpFilterAsymmetric,
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).contains("net.ipv4.conf.vdr-c1.rp_filter=1"),
        "{}",
        cause(&v)
    );
}

#[test]
fn wrong_source_interface() {
    let k = KubeEvidence {
        source: Some(source("client", "shop", "10.199.70.1")),
        ..Default::default()
    };
    let i = direct(k, "wrong_interface", "10.199.73.2:8080");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(
        v.findings[0].rule,
        RuleCode::WrongSourceInterface,
        "{}",
        fired(&v)
    );
    assert!(
        cause(&v).contains("with source 10.199.72.1, not the pod IP 10.199.70.1 (on vdr-c0)"),
        "{}",
        cause(&v)
    );
}

// ---- Path --------------------------------------------------------------------------------

#[test]
fn mtu_blackhole() {
    let i = direct(KubeEvidence::default(), "mtu_blackhole", "10.199.71.2:8080");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Path));
    assert_eq!(v.rules_fired, vec![RuleCode::MtuBlackhole], "{}", fired(&v));
    assert!(
        cause(&v).contains("up to 1280 bytes pass but 1281-byte packets vanish"),
        "{}",
        cause(&v)
    );
    // TCP connect works: small packets pass, so the connect alone would have looked healthy.
    assert!(v
        .proven
        .iter()
        .any(|p| p.contains("10.199.71.2:8080 connected")));
}

// ---- the tool itself ---------------------------------------------------------------------

#[test]
fn stream_without_done_is_inconclusive_and_says_why() {
    let i = direct(KubeEvidence::default(), "stopped_early", "10.199.70.2:8080");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Inconclusive, "{}", fired(&v));
    assert_eq!(v.exit_code(), 2);
    assert_eq!(v.findings[0].rule, RuleCode::ProbeStoppedEarly);
    assert!(cause(&v).contains("killed"), "{}", cause(&v));
    assert!(
        cause(&v).contains("without the final `done` event"),
        "{}",
        cause(&v)
    );
    assert!(
        cause(&v).contains("still running: counters, dns"),
        "{}",
        cause(&v)
    );
}

#[test]
fn profile_and_skips_are_reported() {
    let mut k = web_service("8080", 8080, [true; 3]);
    k.profile = Some(ProfileInfo {
        name: "restricted".into(),
        reason: "namespace shop enforces restricted".into(),
    });
    let i = load("healthy_service", svc_title(), k);
    let v = evaluate(&i);
    assert!(v
        .notes
        .iter()
        .any(|n| n == "profile restricted: namespace shop enforces restricted"));
    assert!(v.unchecked.iter().any(|u| u.check == "mtu"));
}

#[test]
fn policy_predicted_deny_but_connect_succeeds_is_a_conflict() {
    let mut k = web_service("8080", 8080, [true; 3]);
    k.findings.push(kube_finding(
        KubeFindingCode::NetworkPolicyDenies,
        KSeverity::Failure,
        "networkpolicy/shop/web-ingress",
        "networkpolicy/web-ingress admits app=frontend only; source has app=checkout",
        &[("policy", "shop/web-ingress"), ("direction", "ingress")],
    ));
    let i = load("healthy_service", svc_title(), k);
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(
        v.rules_fired,
        vec![RuleCode::NetworkPolicyNotEnforced],
        "{}",
        fired(&v)
    );
    assert!(cause(&v).contains("yet 10.199.96.10:80"), "{}", cause(&v));
}

// ---- constructed evidence (faults no namespace here can produce) -------------------------

/// Interface error counters only grow on real hardware or drivers that count errors; veth
/// never does. Constructed: eth0 with rx errors.
#[test]
fn interface_errors_constructed() {
    let mut l = build::link("eth0", true, Some("10.199.70.1"));
    l.stats.rx_packets = 10_000;
    l.stats.rx_errors = 120;
    l.stats.tx_errors = 3;
    let i = build::inputs(vec![
        build::links(vec![l]),
        build::route(
            "10.199.70.2",
            "eth0",
            None,
            "10.199.70.1",
            Some("REACHABLE"),
        ),
        build::tcp("10.199.70.2:8080", protocol::TcpOutcome::Ok, 0.5),
    ]);
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(v.rules_fired, vec![RuleCode::InterfaceErrors]);
    assert!(
        cause(&v).contains("eth0 counts 120 rx / 3 tx errors"),
        "{}",
        cause(&v)
    );
}

/// nf_conntrack_max is global and read-only inside a non-initial namespace: filling it for
/// a test would disturb the whole host. Constructed: 95% full, then full with drops.
#[test]
fn conntrack_near_max_constructed() {
    let near = build::inputs(vec![
        build::tcp("10.199.70.2:8080", protocol::TcpOutcome::Ok, 0.5),
        build::conntrack(249_000, 262_144),
    ]);
    let v = evaluate(&near);
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::State));
    assert_eq!(v.rules_fired, vec![RuleCode::ConntrackNearMax]);
    assert!(
        cause(&v).contains("249000 of 262144 entries (95%)"),
        "{}",
        cause(&v)
    );

    let full = build::inputs(vec![
        build::tcp("10.199.70.2:8080", protocol::TcpOutcome::Timeout, 3000.0),
        build::conntrack(262_144, 262_144),
    ]);
    let v = evaluate(&full);
    assert_eq!(v.status, Status::Failed);
    assert!(v.fired(RuleCode::ConntrackNearMax));
    let ct = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::ConntrackNearMax)
        .unwrap();
    assert_eq!(ct.severity, netdebug_verdict::Severity::Failure);
}

/// Below the threshold, conntrack is proven fine (recorded: the healthy run's table).
#[test]
fn conntrack_low_fill_is_proven() {
    let i = load(
        "healthy_service",
        svc_title(),
        web_service("8080", 8080, [true; 3]),
    );
    let v = evaluate(&i);
    assert!(
        v.proven
            .iter()
            .any(|p| p.starts_with("State: conntrack ") && p.contains("/262144")),
        "{:?}",
        v.proven
    );
}

/// The API knows the Service but cluster DNS answers NXDOMAIN for it: said as a conflict
/// between the two sources, not as a typo.
#[test]
fn dns_nxdomain_for_an_existing_service() {
    let mut k = web_service("8080", 8080, [true; 3]);
    if let Some(DestinationInfo::Service(s)) = k.destination.as_mut() {
        s.namespace = "other".into();
        s.dns_name = "web.other.svc.cluster.local".into();
    }
    let i = load(
        "dns_nxdomain",
        k8s_title("pod/client", "svc/web", "other"),
        k,
    );
    let v = evaluate(&i);
    assert_eq!(v.findings[0].rule, RuleCode::DnsNxdomain, "{}", fired(&v));
    assert!(
        cause(&v)
            .ends_with("yet svc/web exists in namespace other (cluster DNS does not serve it)"),
        "{}",
        cause(&v)
    );
    assert!(v.next[0].contains("k8s-app=kube-dns"), "{:?}", v.next);
}

/// DNS timeouts while the client predicted an egress policy without UDP 53: the policy is
/// named in the cause and shown on a Policy line.
#[test]
fn dns_unreachable_explained_by_egress_policy() {
    let mut k = KubeEvidence {
        cluster_dns: Some("10.199.96.53".into()),
        ..Default::default()
    };
    k.findings.push(kube_finding(
        KubeFindingCode::NetworkPolicyDeniesDns,
        KSeverity::Failure,
        "networkpolicy/shop/default-deny-egress",
        "networkpolicy/default-deny-egress isolates the source for egress and admits no UDP 53",
        &[
            ("policy", "shop/default-deny-egress"),
            ("namespace", "shop"),
            ("direction", "egress"),
        ],
    ));
    let i = direct(k, "dns_unreachable", "dns web");
    let v = evaluate(&i);
    assert_eq!(v.status, Status::Failed, "{}", fired(&v));
    assert_eq!(v.findings[0].rule, RuleCode::DnsServerUnreachable);
    assert!(
        cause(&v).contains("networkpolicy/shop/default-deny-egress blocks it"),
        "{}",
        cause(&v)
    );
    assert!(v
        .evidence
        .iter()
        .any(|l| l.layer == Layer::Policy && l.mark == Mark::Fail));
    assert!(
        v.next
            .iter()
            .any(|n| n == "kubectl get networkpolicy -n shop default-deny-egress -o yaml"),
        "{:?}",
        v.next
    );
}
