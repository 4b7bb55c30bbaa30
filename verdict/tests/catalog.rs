//! One test per entry of the diagnosis catalog (`../shared/design/DESIGN.md`), on probe
//! evidence recorded from real network-namespace scenarios by `tests/record-fixtures.sh`
//! (fixtures/<scenario>.jsonl), combined with the Kubernetes-level evidence the client would have produced for that
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

/// The verdict's status and exactly the rules that fired (messages show the whole verdict).
#[track_caller]
fn assert_fired(v: &Verdict, status: Status, rules: &[RuleCode]) {
    assert_eq!(v.status, status, "{}", fired(v));
    assert_eq!(v.rules_fired, rules, "{}", fired(v));
}

/// The verdict's cause contains `part`.
#[track_caller]
fn assert_cause(v: &Verdict, part: &str) {
    assert!(cause(v).contains(part), "{}", cause(v));
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
    assert_fired(&v, Status::Failed, &[RuleCode::DnsNxdomain]);
    assert_eq!(v.layer, Some(Layer::Dns));
    assert_cause(&v, "web.other does not exist");
    assert_cause(&v, "4 candidates");
    assert_cause(&v, "wrong namespace?");
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
    assert_cause(&v, "cluster DNS 10.199.96.53 answered none of");
    assert_cause(&v, "each timed out after 1.0 s, retries 1.0 s apart");
    assert_cause(&v, "web gave up after 4.0 s");
}

#[test]
fn dns_search_expansion_counts_wasted_queries() {
    let i = direct(
        KubeEvidence::default(),
        "dns_search_expansion",
        "dns api.example.test",
    );
    let v = evaluate(&i);
    assert_fired(&v, Status::Degraded, &[RuleCode::DnsSearchExpansion]);
    assert_cause(&v, "ndots:5");
    assert_cause(&v, "6 wasted queries");
    assert_cause(&v, "use api.example.test. (trailing dot) or ndots:2");
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
    assert_cause(&v, "10.199.96.99");
    assert_cause(&v, "cluster DNS is 10.199.96.53");
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
    assert_fired(&v, Status::Failed, &[RuleCode::DnsServfail]);
    assert_cause(&v, "SERVFAIL for api.upstream.test");
    assert_cause(&v, "10.199.96.53");
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
    assert_cause(&v, "selector app=web matches no pod in shop");
    assert_cause(&v, "app=web-v2");
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
    assert_cause(&v, "3 of 3 endpoints of svc/web are not ready");
    assert_cause(&v, "statuscode: 503");
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
    assert_cause(&v, "targetPort 9090");
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

/// Found on a real cluster (issue 16): both the ClusterIP (port 80) and the endpoint (port
/// 9090 here) refused, and the verdict said "nothing listens on port 80" with a placeholder
/// command. The port that matters is the endpoint's, and the pod is known.
#[test]
fn refused_on_a_service_names_the_endpoint_pod_its_port_and_the_exact_command() {
    // The pods declare no ports, so the client has no targetPort finding: only the probe's
    // refusals show the problem.
    let i = load(
        "service_target_port",
        svc_title(),
        web_service("9090", 9090, [true; 3]),
    );
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::TcpRefusedNoListener]);
    assert_cause(&v, "svc/web:80 -> 10.199.70.2:9090 answered with RST");
    assert_cause(&v, "pod web-0 (container app)");
    assert_cause(&v, "listens on port 9090");
    assert!(!cause(&v).contains("port 80 "), "{}", cause(&v));
    assert_eq!(
        v.next.first().map(String::as_str),
        Some("kubectl netdebug pod/web-0 -n shop --sockets   # what pod web-0 listens on, and on which addresses"),
        "{:?}",
        v.next
    );
}

#[test]
fn refused_by_a_destination_pod_names_it() {
    let mut k = web_service("8081", 8081, [true; 3]);
    k.destination = Some(DestinationInfo::Pod(
        netdebug_verdict::kube::PodDestination {
            namespace: "shop".into(),
            name: "web-0".into(),
            ip: Some("10.199.70.2".into()),
            port: Some(8081),
            ready: true,
        },
    ));
    let i = load(
        "tcp_refused",
        k8s_title("pod/client", "pod/web-0:8081", "shop"),
        k,
    );
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::TcpRefusedNoListener]);
    assert_cause(
        &v,
        "pod web-0 is reachable but nothing in it listens on port 8081",
    );
    assert!(
        v.next[0].starts_with("kubectl netdebug pod/web-0 -n shop --sockets"),
        "{:?}",
        v.next
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
    assert_fired(&v, Status::Failed, &[RuleCode::ServiceDataplane]);
    assert_eq!(v.layer, Some(Layer::Service));
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
    assert_fired(&v, Status::Degraded, &[RuleCode::ServiceBadEndpoint]);
    assert_eq!(v.exit_code(), 1);
    assert_cause(&v, "1 of 3 endpoints of svc/web fail: 10.199.70.4:8080 (pod/web-2 on node-1) timed out after 1.5 s; 2 answer");
    assert_cause(&v, "pod/web-2");
}

// ---- Transport ---------------------------------------------------------------------------

#[test]
fn refused_without_listener() {
    let i = direct(KubeEvidence::default(), "tcp_refused", "10.199.70.2:8081");
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::TcpRefusedNoListener]);
    assert_eq!(v.layer, Some(Layer::Transport));
    assert_cause(&v, "nothing listens on port 8081");
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
    assert_fired(&v, Status::Failed, &[RuleCode::TcpListenerLoopbackOnly]);
    assert_cause(&v, "bound to 127.0.0.1:8090");
}

#[test]
fn timeout_is_a_silent_drop() {
    let i = direct(KubeEvidence::default(), "tcp_timeout", "10.199.70.2:8080");
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::TcpTimeout]);
    assert_eq!(v.headline, "L4 timeout");
    // The bounded capture recorded with it saw the SYN and its retransmission go unanswered.
    assert!(
        v.evidence
            .iter()
            .any(|l| l.text == "capture: 2 SYNs to 10.199.70.2:8080, no SYN-ACK, no RST, no ICMP"),
        "{:?}",
        v.evidence
    );
    assert_cause(&v, "SYN to 10.199.70.2:8080 got no answer in 1.5 s");
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
    assert_fired(&v, Status::Failed, &[RuleCode::TcpTimeoutNetworkPolicy]);
    assert_eq!(v.layer, Some(Layer::Transport));
    assert_cause(
        &v,
        "networkpolicy/shop/web-ingress (ingress) drops the traffic",
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
    // The destination's own INPUT chain: REJECT --reject-with icmp-admin-prohibited.
    let i = direct(KubeEvidence::default(), "tcp_rejected", "10.199.70.2:8080");
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::TcpRejected]);
    assert_eq!(
        v.headline,
        "L4 rejected: administratively prohibited (ICMP 3/13) from 10.199.70.2"
    );
    assert_cause(
        &v,
        "got administratively prohibited (ICMP 3/13) from 10.199.70.2 in",
    );
    assert_cause(
        &v,
        "10.199.70.2 itself sent it, so the SYN reached the destination and was stopped there",
    );
    assert_cause(
        &v,
        "a firewall on the destination prohibits it (--reject-with icmp-admin-prohibited)",
    );
    assert_eq!(
        v.next,
        ["iptables -S INPUT; nft list ruleset   # on 10.199.70.2, the destination"]
    );
}

#[test]
fn icmp_port_unreachable_from_a_router_is_not_a_refusal_by_the_destination() {
    // ECONNREFUSED, as for a RST; the error queue shows ICMP 3/3 from the router.
    let i = direct(
        KubeEvidence::default(),
        "tcp_rejected_by_router",
        "10.199.71.2:8080",
    );
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::TcpRejected]);
    assert_eq!(
        v.headline,
        "L4 rejected: port unreachable (ICMP 3/3) from 10.199.70.254"
    );
    assert_cause(
        &v,
        "10.199.70.254, a hop before 10.199.71.2, sent it, so the SYN was stopped there and \
         never reached the destination",
    );
    assert_cause(&v, "connect reports ECONNREFUSED as for a RST");
    assert_cause(&v, "not a missing listener");
    let line = v
        .evidence
        .iter()
        .find(|l| l.mark == Mark::Fail)
        .expect("a failing line");
    assert!(
        line.text
            .starts_with("10.199.71.2:8080 port unreachable (ICMP 3/3) from 10.199.70.254 in ")
            && line.text.ends_with("(a hop before the destination)"),
        "{}",
        line.text
    );
    assert_eq!(
        v.next[0],
        "iptables -S FORWARD | grep 10.199.71.2; nft list ruleset   # on 10.199.70.254"
    );
}

#[test]
fn eaddrnotavail_with_time_wait_near_the_port_range() {
    let i = direct(
        KubeEvidence::default(),
        "port_exhaustion",
        "10.199.70.2:8080",
    );
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::EphemeralPortExhaustion]);
    assert_cause(&v, "EADDRNOTAVAIL");
    assert_cause(
        &v,
        "2 TIME-WAIT sockets toward 10.199.70.2:8080 against an ephemeral port range of 2 \
         (40000-40001)",
    );
}

#[test]
fn close_wait_accumulation() {
    let i = direct(KubeEvidence::default(), "close_wait", "10.199.70.2:8080");
    let v = evaluate(&i);
    assert_fired(&v, Status::Degraded, &[RuleCode::CloseWaitAccumulation]);
    assert_cause(&v, "12 sockets in CLOSE-WAIT from 10.199.70.2:8080");
}

#[test]
fn listen_queue_overflow_explains_the_timeout() {
    let i = direct(
        KubeEvidence::default(),
        "listen_overflow",
        "10.199.70.2:8080",
    );
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::ListenQueueOverflow]);
    // The count depends on how many client SYN retries fell into the probe's run.
    assert_cause(&v, "incoming connections during the run");
    assert_cause(&v, "ListenOverflows +");
    // The socket table shows the accept queue itself, full.
    assert_cause(&v, "full accept queue: 10.199.70.2:8080 accept queue 2/1");
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
    assert_fired(&v, Status::Degraded, &[RuleCode::TcpRetransmissions]);
    assert_cause(&v, "TCP segments");
    assert_cause(&v, "were retransmitted");
}

// ---- Network -----------------------------------------------------------------------------

#[test]
fn no_route_and_no_default_route() {
    let i = direct(KubeEvidence::default(), "no_route", "10.199.99.9:80");
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::NoRoute]);
    assert_eq!(v.layer, Some(Layer::Network));
    assert_cause(
        &v,
        "no route to 10.199.99.9: no matching route and no default route",
    );
}

#[test]
fn a_policy_route_and_a_policy_rule_are_named() {
    // Rule 1000 sends 10.199.75.0/24 to table 100, where `prohibit 10.199.75.0/24` is;
    // rule 900 prohibits 10.199.76.0/24 itself.
    let i = direct(KubeEvidence::default(), "policy_prohibit", "10.199.75.5:80");
    let v = evaluate(&i);
    // Both connects failed with EACCES: the routes explain them, no firewall rule is blamed.
    assert_fired(&v, Status::Failed, &[RuleCode::NoRoute]);
    assert_cause(
        &v,
        "the route lookup for 10.199.75.5 hit `prohibit 10.199.75.0/24` in table 100, chosen \
         by policy rule 1000 (`from all to 10.199.75.0/24 lookup 100`)",
    );
    assert_cause(&v, "the kernel refuses it at once (EACCES)");
    let rule = v
        .findings
        .iter()
        .find_map(|f| Some(f.cause.as_str()).filter(|c| c.contains("10.199.76.5")))
        .expect("a finding about 10.199.76.5");
    assert!(
        rule.starts_with(
            "the route lookup for 10.199.76.5 hit policy rule 900 (`from all to \
             10.199.76.0/24 prohibit`)"
        ),
        "{rule}"
    );
    assert_eq!(v.next[0], "ip rule show; ip route show table 100");
    // Local mode: nothing Kubernetes is suggested.
    assert!(
        v.next.iter().all(|n| !n.contains("kubectl")),
        "{:?}",
        v.next
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
    assert_cause(&v, "vdr-c1 has no carrier");
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
    assert_cause(&v, "net.ipv4.conf.vdr-c1.rp_filter=1");
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
    assert_cause(
        &v,
        "with source 10.199.72.1, not the pod IP 10.199.70.1 (on vdr-c0)",
    );
}

// ---- Path --------------------------------------------------------------------------------

#[test]
fn mtu_blackhole() {
    let i = direct(KubeEvidence::default(), "mtu_blackhole", "10.199.71.2:8080");
    let v = evaluate(&i);
    assert_fired(&v, Status::Failed, &[RuleCode::MtuBlackhole]);
    assert_eq!(v.layer, Some(Layer::Path));
    assert_cause(&v, "up to 1280 bytes pass but 1281-byte packets vanish");
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
    assert_cause(&v, "killed");
    assert_cause(&v, "without the final `done` event");
    assert_cause(&v, "still running: counters, dns");
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
    assert_fired(&v, Status::Degraded, &[RuleCode::NetworkPolicyNotEnforced]);
    assert_cause(&v, "yet 10.199.96.10:80");
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
    assert_cause(&v, "eth0 counts 120 rx / 3 tx errors");
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
    assert_cause(&v, "249000 of 262144 entries (95%)");

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
    assert_cause(&v, "networkpolicy/shop/default-deny-egress blocks it");
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

// ---- `--sockets` on a pod that serves a Service (issue 16 item 3) ------------------------

/// `kubectl netdebug pod/web-0 --sockets`, recorded in a namespace whose app listens on
/// 127.0.0.1:8080 only and a sidecar on 0.0.0.0:9090; `serves` is what the EndpointSlices
/// naming the pod say.
fn sockets_run(serves: Option<Vec<netdebug_verdict::kube::ServedPort>>) -> Verdict {
    let kube = KubeEvidence {
        source: Some(source("web-0", "shop", "10.199.70.2")),
        serves,
        ..Default::default()
    };
    let mut title = k8s_title("pod/web-0", "-", "shop");
    title.destination = None;
    evaluate(&load("sockets_loopback_listener", title, kube))
}

fn served(service: &str, name: &str, port: u16) -> netdebug_verdict::kube::ServedPort {
    netdebug_verdict::kube::ServedPort {
        service: service.into(),
        name: Some(name.into()),
        port,
        protocol: "TCP".into(),
    }
}

fn evidence_text(v: &Verdict) -> String {
    v.evidence
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Found on a real cluster: `--sockets` said "1 sockets (LISTEN 1) ... no problem found" and
/// never showed what listened where.
#[test]
fn sockets_lists_every_listener_with_its_bind_address_and_backlog() {
    let v = sockets_run(None);
    assert_eq!(v.status, Status::Healthy, "{}", fired(&v));
    assert!(
        evidence_text(&v)
            .contains("listening on 0.0.0.0:9090 (backlog 5), 127.0.0.1:8080 (backlog 5)"),
        "{}",
        evidence_text(&v)
    );
}

#[test]
fn sockets_on_an_endpoint_listening_on_loopback_only_names_the_service() {
    let v = sockets_run(Some(vec![served("web", "http", 8080)]));
    assert_fired(&v, Status::Failed, &[RuleCode::TcpListenerLoopbackOnly]);
    assert_cause(&v, "svc/web (port http) sends TCP port 8080 to this pod");
    assert_cause(&v, "bound to 127.0.0.1:8080 only");
    assert_cause(&v, "connections to 10.199.70.2:8080");
    assert!(v.next[0].contains("bind 0.0.0.0:8080"), "{:?}", v.next);
}

#[test]
fn sockets_on_an_endpoint_listening_on_every_address_proves_the_service_port() {
    let v = sockets_run(Some(vec![served("metrics", "m", 9090)]));
    assert_eq!(v.status, Status::Healthy, "{}", fired(&v));
    assert!(
        v.proven
            .iter()
            .any(|p| p
                .contains("svc/metrics (port m) sends port 9090 here: accepted on 0.0.0.0:9090")),
        "{:?}",
        v.proven
    );
}

#[test]
fn sockets_on_an_endpoint_without_the_service_port_says_what_it_listens_on() {
    let v = sockets_run(Some(vec![served("web", "http", 7070)]));
    assert_fired(&v, Status::Failed, &[RuleCode::ServedPortNotListening]);
    assert_cause(
        &v,
        "nothing in it (container app and its siblings) listens on port 7070",
    );
    assert_cause(&v, "it listens on 0.0.0.0:9090, 127.0.0.1:8080");
}

// ---- next steps the profile can run (issue 16 item 4) ------------------------------------

fn restricted() -> Option<ProfileInfo> {
    Some(ProfileInfo {
        name: "restricted".into(),
        reason: "namespace shop enforces restricted".into(),
    })
}

fn pod_origin(title: &mut netdebug_verdict::Title) {
    title.origin = Some(netdebug_verdict::Origin::Pod {
        namespace: "shop".into(),
        name: "client".into(),
    });
}

/// Found on a real cluster: in a namespace enforcing `restricted` the capture was skipped for
/// lack of NET_RAW, and the healthy verdict then suggested `--capture -w trace.pcap` in the
/// same namespace, which would be skipped again.
#[test]
fn healthy_run_without_net_raw_suggests_a_capture_that_can_run() {
    let mut k = web_service("8080", 8080, [true; 3]);
    k.profile = restricted();
    let mut title = svc_title();
    pod_origin(&mut title);
    let v = evaluate(&load("healthy_service_no_net_raw", title, k));
    assert_eq!(v.status, Status::Healthy, "{}", fired(&v));
    assert!(
        v.unchecked
            .iter()
            .any(|u| u.check == "capture" && u.missing_capability.as_deref() == Some("net_raw")),
        "{:?}",
        v.unchecked
    );
    let step = v.next.last().unwrap();
    // The capture from the pod's node, which its profile does not bind (issue 14).
    assert!(
        step.starts_with("kubectl netdebug pod/client --to svc/web:80 -n shop --via-node --node-namespace NS --capture -w trace.pcap"),
        "{step}"
    );
    assert!(
        step.contains("from node node-1, NS a namespace that admits privileged pods"),
        "{step}"
    );
    assert!(
        step.contains("capture needs NET_RAW, which profile restricted (namespace shop enforces restricted) does not grant"),
        "{step}"
    );
}

#[test]
fn healthy_run_with_net_raw_suggests_the_capture_flag() {
    let mut title = svc_title();
    pod_origin(&mut title);
    let v = evaluate(&load(
        "healthy_service",
        title,
        web_service("8080", 8080, [true; 3]),
    ));
    assert_eq!(
        v.next.last().map(String::as_str),
        Some("kubectl netdebug pod/client --to svc/web:80 -n shop --capture -w trace.pcap   # if the app still fails")
    );
}

#[test]
fn timeout_without_net_raw_does_not_suggest_the_capture_flag_again() {
    let mut k = KubeEvidence {
        source: Some(source("client", "shop", "10.199.70.1")),
        ..Default::default()
    };
    k.profile = restricted();
    let mut title = k8s_title("pod/client", "10.199.70.2:8080", "shop");
    pod_origin(&mut title);
    let v = evaluate(&load("tcp_timeout_no_net_raw", title, k));
    assert_fired(&v, Status::Failed, &[RuleCode::TcpTimeout]);
    let hint = v
        .next
        .iter()
        .find(|n| n.starts_with("tcpdump"))
        .unwrap_or_else(|| panic!("{:?}", v.next));
    assert!(!hint.contains("or --capture"), "{hint}");
    assert!(
        hint.contains("--capture needs NET_RAW, which profile restricted"),
        "{hint}"
    );
    // With NET_RAW (the same drop, recorded as root) the flag is the easy way.
    let v = evaluate(&load("tcp_timeout", svc_title(), KubeEvidence::default()));
    assert!(
        v.next
            .iter()
            .any(|n| n.contains("or --capture -w trace.pcap")),
        "{:?}",
        v.next
    );
}

// ---- repeated lookups (issue 10) ---------------------------------------------------------

/// 20 rounds of lookups through a nameserver that drops every 4th UDP query (recorded):
/// one reply of a parallel A/AAAA pair goes missing, the lookup waits the resolver's timeout.
#[test]
fn dns_rounds_with_lost_replies_are_stalls_with_the_race_signature() {
    let mut k = KubeEvidence {
        source: Some(source("client", "shop", "10.199.70.1")),
        ..Default::default()
    };
    k.cluster_dns = Some("10.199.96.53".into());
    let mut title = k8s_title("pod/client", "dns web.shop.svc.cluster.local.", "shop");
    title.asked = Some("--dns web.shop.svc.cluster.local. --repeat 20".into());
    let v = evaluate(&load("dns_stalls", title, k));
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert!(v.fired(RuleCode::DnsStalls), "{}", fired(&v));
    let stalls = v
        .findings
        .iter()
        .find(|x| x.rule == RuleCode::DnsStalls)
        .unwrap();
    assert!(
        stalls
            .cause
            .contains("of 20 lookups of web.shop.svc.cluster.local. took 1.0 s or more"),
        "{}",
        stalls.cause
    );
    assert!(stalls.cause.contains("lost: AAAA"), "{}", stalls.cause);
    assert!(
        stalls
            .cause
            .contains("the signature of the conntrack race on parallel queries"),
        "{}",
        stalls.cause
    );
    assert!(
        stalls.next[0].contains("single-request-reopen"),
        "{:?}",
        stalls.next
    );
    // The compact line: one per name, with the counts.
    assert!(
        v.evidence.iter().any(|l| l
            .text
            .starts_with("web.shop.svc.cluster.local. 20 lookups (parallel): 20 answered")),
        "{:#?}",
        v.evidence
    );
}

/// Clean lookups over 20 rounds (recorded beside a Service with a lossy endpoint): the
/// verdict says what 20 lookups can prove, computed, not "DNS is fine".
#[test]
fn clean_dns_rounds_state_their_power() {
    let v = evaluate(&load(
        "rounds_bad_endpoint",
        svc_title(),
        web_service("8080", 8080, [true; 3]),
    ));
    assert!(
        v.proven
            .iter()
            .any(|p| p.contains("web 20 lookups (parallel): 20 answered")
                && p.contains(
                    "a failure or stall rate of 14% or more would have shown with 95% confidence"
                )),
        "{:#?}",
        v.proven
    );
}

/// Issue 15: a slow-but-answering DNS is not "DNS unreachable". The first nameserver never
/// answers, the second does (recorded): the name resolves after one timeout.
#[test]
fn a_silent_first_nameserver_is_slow_dns_not_dns_down() {
    let k = KubeEvidence {
        source: Some(source("client", "shop", "10.199.70.1")),
        ..Default::default()
    };
    let v = evaluate(&load(
        "dns_first_nameserver_silent",
        k8s_title("pod/client", "dns web.shop.svc.cluster.local.", "shop"),
        k,
    ));
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert_eq!(v.headline, "slow DNS: a nameserver never answers");
    assert_cause(&v, "nameserver 10.199.96.54 answered none of");
    assert_cause(&v, "another nameserver answered, after that wait");
}

/// Recorded: kube-proxy-style DNAT in the probe's namespace alternating between two endpoints,
/// one dropping every 4th SYN: the ClusterIP's failures are attributed through conntrack to
/// the endpoint (and its pod) that received them.
#[test]
fn clusterip_failures_are_attributed_to_the_endpoint_conntrack_chose() {
    let v = evaluate(&load(
        "rounds_clusterip_attributed",
        svc_title(),
        web_service("8080", 8080, [true; 3]),
    ));
    assert_eq!(v.status, Status::Degraded, "{}", fired(&v));
    assert!(v.fired(RuleCode::TcpIntermittent), "{}", fired(&v));
    assert_cause(
        &v,
        "5 of 40 connects to 10.199.96.10:80 (svc/web:80) timed out",
    );
    assert_cause(
        &v,
        "every one when conntrack chose 10.199.70.4:8080 (pod/web-2 on node-1) (5 of its 20), \
         none of the 20 sent to the others",
    );
}

/// Recorded: from inside a "pod" whose ClusterIP DNAT is elsewhere, the rounds toward the
/// ClusterIP are not attributed; the verdict says so when they failed.
#[test]
fn unattributed_clusterip_failures_say_why() {
    let mut inputs = load(
        "rounds_clusterip_attributed",
        svc_title(),
        web_service("8080", 8080, [true; 3]),
    );
    // CONSTRUCTED from the recording: the same rounds as a pod would report them.
    for e in &mut inputs.events {
        if let protocol::Event::Evidence(protocol::Evidence::TcpRounds(r)) = e {
            r.chosen.clear();
            r.unattributed = Some(
                "40 of 40 attempts had no translated conntrack entry in this network namespace: \
                 the ClusterIP is translated elsewhere (kube-proxy's DNAT is on the node)"
                    .into(),
            );
        }
    }
    let v = evaluate(&inputs);
    assert!(!cause(&v).contains("conntrack chose"), "{}", cause(&v));
    assert!(
        v.notes.iter().any(|n| n.starts_with(
            "which endpoint served each failed attempt to 10.199.96.10:80 is not known: 40 of 40"
        )),
        "{:?}",
        v.notes
    );
}
