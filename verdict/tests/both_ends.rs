//! Both ends (`--both-ends`): the source's connections lined up with what the peers at the
//! destination captured. Each rule on a synthetic scenario (see `common/ends.rs`), with the
//! cases where it must not fire, and the timelines in text, markdown and JSON.

mod common;

use common::build::{counters, route, skipped, sockets, sysctls};
use common::ends::*;
use common::kube_finding;
use netdebug_verdict::kube::{KubeFindingCode, Severity as KSeverity};
use netdebug_verdict::{
    evaluate, ConnectionOutcome, Inputs, JsonRenderer, Layer, MarkdownRenderer, PeerSession,
    Renderer, RuleCode, Severity, Status, TextRenderer, TimeBasis, Verdict,
};
use protocol::{CheckKind, Event, ReleaseCause, TcpOutcome};

fn fired(v: &Verdict) -> String {
    format!("{:?}\n{:#?}", v.rules_fired, v.findings)
}

fn primary(v: &Verdict) -> RuleCode {
    v.findings[0].rule
}

/// One of the finding's evidence lines contains `needle`.
#[track_caller]
fn assert_evidence(f: &netdebug_verdict::Finding, needle: &str) {
    assert!(
        f.evidence.iter().any(|l| l.contains(needle)),
        "no evidence line contains {needle:?}: {:#?}",
        f.evidence
    );
}

fn finding(v: &Verdict, rule: RuleCode) -> &netdebug_verdict::Finding {
    v.findings
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("{rule:?} did not fire: {}", fired(v)))
}

/// The source timed out on the ClusterIP, its capture shows the SYN leave three times.
fn source_timed_out() -> Vec<Event> {
    vec![
        connect(CLUSTER_IP, CLIENT, TcpOutcome::Timeout, 3000.0),
        capture(vec![unanswered_syns()]),
    ]
}

fn timed_out_with(peer: PeerSession) -> Inputs {
    run(
        source_timed_out(),
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![peer],
    )
}

/// The peer's view of the connection: the SYN in on eth0, then `answer` marks.
fn peer_flow(answer: &[M]) -> protocol::TcpFlow {
    let mut ms: Vec<M> = vec![(0.3, "client", "S", 0, "eth0", "in")];
    ms.extend_from_slice(answer);
    flow(CLIENT, WEB_1, &ms)
}

#[test]
fn syn_lost_between_ends_is_primary_and_refines_the_single_ended_timeout() {
    let v = evaluate(&timed_out_with(watching_peer(
        "web-1",
        "10.199.2.2",
        vec![],
        vec![],
    )));
    assert_eq!(v.status, Status::Failed);
    assert_eq!(primary(&v), RuleCode::SynLostBetweenEnds, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Network));
    let lost = finding(&v, RuleCode::SynLostBetweenEnds);
    assert!(
        lost.cause.contains("never reached web-1") || lost.cause.contains("pod/web-1"),
        "{}",
        lost.cause
    );
    assert!(
        lost.evidence
            .iter()
            .any(|l| l.starts_with("source: 10.199.1.1:41234 > 10.199.96.10:80")),
        "{:?}",
        lost.evidence
    );
    assert!(
        lost.evidence
            .iter()
            .any(|l| l.starts_with("peer pod/web-1: capture on any armed")),
        "{:?}",
        lost.evidence
    );
    assert!(
        lost.evidence.iter().any(|l| l.contains("node-1 -> node-2")),
        "{:?}",
        lost.evidence
    );
    assert!(lost.next[0].contains("tcpdump"), "{:?}", lost.next);
    // The single-ended timeout stays, refined, after it.
    let timeout = finding(&v, RuleCode::TcpTimeout);
    assert_eq!(timeout.refined_by, Some(RuleCode::SynLostBetweenEnds));
    assert!(v
        .evidence
        .iter()
        .any(|l| l.rule == Some(RuleCode::TcpTimeout)));
    assert_eq!(v.connections.len(), 1);
    assert_eq!(v.connections[0].outcome, ConnectionOutcome::LostBetween);
}

#[test]
fn syn_lost_between_ends_names_the_network_policy_that_predicts_the_drop() {
    let deny = kube_finding(
        KubeFindingCode::NetworkPolicyDenies,
        KSeverity::Failure,
        "networkpolicy/shop/web-ingress",
        "networkpolicy/web-ingress admits app=frontend only; source has app=checkout",
        &[
            ("policy", "shop/web-ingress"),
            ("direction", "ingress"),
            ("namespace", "shop"),
        ],
    );
    let inputs = run(
        source_timed_out(),
        web_kube(&[("web-1", "10.199.2.2")], vec![deny]),
        vec![watching_peer("web-1", "10.199.2.2", vec![], vec![])],
    );
    let v = evaluate(&inputs);
    assert_eq!(primary(&v), RuleCode::SynLostBetweenEnds, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Policy));
    let lost = finding(&v, RuleCode::SynLostBetweenEnds);
    assert!(
        lost.cause
            .contains("networkpolicy/shop/web-ingress (ingress) predicts this drop"),
        "{}",
        lost.cause
    );
    assert_eq!(
        v.next[0],
        "kubectl get networkpolicy -n shop web-ingress -o yaml"
    );
    assert_eq!(
        finding(&v, RuleCode::TcpTimeoutNetworkPolicy).refined_by,
        Some(RuleCode::SynLostBetweenEnds)
    );
}

#[test]
fn peer_that_never_armed_proves_nothing_and_is_unchecked() {
    let p = peer("web-1", "10.199.2.2", "node-2", vec![capture(vec![])]);
    let v = evaluate(&timed_out_with(p));
    assert!(!v.fired(RuleCode::SynLostBetweenEnds), "{}", fired(&v));
    assert_eq!(primary(&v), RuleCode::TcpTimeout);
    let u = v
        .unchecked
        .iter()
        .find(|u| u.check == "peer")
        .expect("a peer gap");
    assert!(
        u.reason.contains("pod/web-1: its probe never armed"),
        "{}",
        u.reason
    );
    assert!(u
        .reason
        .contains("cannot be told from a drop inside the destination"));
}

#[test]
fn peer_whose_capture_was_skipped_proves_nothing_and_says_which_capability() {
    let p = peer(
        "web-1",
        "10.199.2.2",
        "node-2",
        vec![
            armed(false),
            skipped(
                CheckKind::Capture,
                "capture needs CAP_NET_RAW",
                Some("net_raw"),
            ),
        ],
    );
    let v = evaluate(&timed_out_with(p));
    assert!(!v.fired(RuleCode::SynLostBetweenEnds), "{}", fired(&v));
    let u = v
        .unchecked
        .iter()
        .find(|u| u.check == "peer")
        .expect("a peer gap");
    assert!(u.reason.contains("capture skipped"), "{}", u.reason);
    assert_eq!(u.missing_capability.as_deref(), Some("net_raw"));
}

#[test]
fn peer_not_run_is_unchecked_with_its_reason() {
    let p = PeerSession::not_run(
        "peer-1",
        "pod/web-1",
        8080,
        "RBAC: cannot patch pods/ephemeralcontainers in shop",
    );
    let v = evaluate(&timed_out_with(p));
    assert!(!v.fired(RuleCode::SynLostBetweenEnds));
    assert_eq!(primary(&v), RuleCode::TcpTimeout);
    let u = v
        .unchecked
        .iter()
        .find(|u| u.check == "peer")
        .expect("a peer gap");
    assert!(u.reason.contains("not run (RBAC"), "{}", u.reason);
}

#[test]
fn source_released_by_hold_limit_does_not_conclude_lost_between() {
    let mut events = vec![released(ReleaseCause::HoldLimit)];
    events.extend(source_timed_out());
    let inputs = run(
        events,
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![watching_peer("web-1", "10.199.2.2", vec![], vec![])],
    );
    let v = evaluate(&inputs);
    assert!(!v.fired(RuleCode::SynLostBetweenEnds), "{}", fired(&v));
    assert!(v
        .unchecked
        .iter()
        .any(|u| u.check == "peer" && u.reason.contains("a peer may have missed the traffic")));
}

#[test]
fn connection_to_an_endpoint_no_peer_watched_proves_nothing() {
    // Two endpoints, only web-1 watched: the DNAT may have sent the SYN to web-2.
    let inputs = run(
        source_timed_out(),
        web_kube(&[("web-1", "10.199.2.2"), ("web-2", "10.199.2.3")], vec![]),
        vec![watching_peer("web-1", "10.199.2.2", vec![], vec![])],
    );
    let v = evaluate(&inputs);
    assert!(!v.fired(RuleCode::SynLostBetweenEnds), "{}", fired(&v));
    assert_eq!(v.connections[0].outcome, ConnectionOutcome::Unseen);
    assert!(v.notes.iter().any(|n| n.contains("no watching peer saw")));
}

#[test]
fn connection_through_the_service_belongs_to_the_peer_that_saw_it() {
    let reply = peer_flow(&[(0.4, "server", "S.", 0, "eth0", "out")]);
    let reply = protocol::TcpFlow {
        server: addr(WEB_2),
        ..reply
    };
    let inputs = run(
        source_timed_out(),
        web_kube(&[("web-1", "10.199.2.2"), ("web-2", "10.199.2.3")], vec![]),
        vec![
            watching_peer("web-1", "10.199.2.2", vec![], vec![]),
            watching_peer("web-2", "10.199.2.3", vec![reply], vec![]),
        ],
    );
    let v = evaluate(&inputs);
    assert_eq!(
        primary(&v),
        RuleCode::ReplyLostOnReturnPath,
        "{}",
        fired(&v)
    );
    assert_eq!(v.connections[0].peer.as_deref(), Some("pod/web-2"));
    assert_eq!(v.connections[0].peer_server, Some(addr(WEB_2)));
    // web-1 saw nothing of a connection that went to web-2: no lost-between.
    assert!(!v.fired(RuleCode::SynLostBetweenEnds));
}

#[test]
fn syn_reached_and_full_accept_queue_is_named_at_the_destination() {
    let queue = sockets(serde_json::json!({
        "listeners": [{"local": "0.0.0.0:8080", "recv_q": 129, "send_q": 128}],
    }));
    let p = watching_peer("web-1", "10.199.2.2", vec![peer_flow(&[])], vec![queue]);
    let v = evaluate(&timed_out_with(p));
    assert_eq!(
        primary(&v),
        RuleCode::DestinationAcceptQueueFull,
        "{}",
        fired(&v)
    );
    assert_eq!(v.layer, Some(Layer::Transport));
    let f = finding(&v, RuleCode::DestinationAcceptQueueFull);
    assert!(
        f.evidence
            .iter()
            .any(|l| l
                == "peer pod/web-1: listener 0.0.0.0:8080 accept queue 129/128 (waiting/backlog)"),
        "{:?}",
        f.evidence
    );
    assert!(!v.fired(RuleCode::DestinationFirewallDrop));
    assert_eq!(
        finding(&v, RuleCode::TcpTimeout).refined_by,
        Some(RuleCode::DestinationAcceptQueueFull)
    );
}

#[test]
fn syn_reached_and_listen_overflow_counters_mean_a_full_accept_queue() {
    let p = watching_peer(
        "web-1",
        "10.199.2.2",
        vec![peer_flow(&[])],
        vec![counters(&[("TcpExt.ListenOverflows", 12)])],
    );
    let v = evaluate(&timed_out_with(p));
    let f = finding(&v, RuleCode::DestinationAcceptQueueFull);
    assert_evidence(f, "TcpExt.ListenOverflows +12");
}

#[test]
fn syn_reached_with_a_free_accept_queue_is_a_firewall_inside_the_destination() {
    let listener = sockets(serde_json::json!({
        "listeners": [{"local": "0.0.0.0:8080", "recv_q": 0, "send_q": 128}],
    }));
    let p = watching_peer("web-1", "10.199.2.2", vec![peer_flow(&[])], vec![listener]);
    let v = evaluate(&timed_out_with(p));
    assert_eq!(
        primary(&v),
        RuleCode::DestinationFirewallDrop,
        "{}",
        fired(&v)
    );
    assert_eq!(v.layer, Some(Layer::Policy));
    assert!(!v.fired(RuleCode::DestinationAcceptQueueFull));
    let f = finding(&v, RuleCode::DestinationFirewallDrop);
    assert_evidence(f, "a listener on 0.0.0.0:8080 exists");
    assert!(f.next[0].starts_with("iptables -S INPUT"), "{:?}", f.next);
}

#[test]
fn firewall_inside_the_destination_says_when_no_listener_exists() {
    let none = sockets(serde_json::json!({"listeners": []}));
    let p = watching_peer("web-1", "10.199.2.2", vec![peer_flow(&[])], vec![none]);
    let v = evaluate(&timed_out_with(p));
    let f = finding(&v, RuleCode::DestinationFirewallDrop);
    assert_evidence(f, "no listener on port 8080");
}

#[test]
fn reply_lost_on_an_asymmetric_return_route() {
    let back = route(
        "10.199.1.1",
        "eth1",
        Some("10.199.9.1"),
        "10.199.2.2",
        Some("REACHABLE"),
    );
    let rp = sysctls(&[
        ("net.ipv4.conf.all.rp_filter", "1"),
        ("net.ipv4.conf.eth0.rp_filter", "1"),
    ]);
    let seen = peer_flow(&[(0.4, "server", "S.", 0, "eth1", "out")]);
    let p = watching_peer("web-1", "10.199.2.2", vec![seen], vec![back, rp]);
    let v = evaluate(&timed_out_with(p));
    assert_eq!(
        primary(&v),
        RuleCode::ReplyLostOnReturnPath,
        "{}",
        fired(&v)
    );
    assert_eq!(v.layer, Some(Layer::Network));
    let f = finding(&v, RuleCode::ReplyLostOnReturnPath);
    assert!(
        f.cause.contains(
            "the SYN came in on eth0, the reply to 10.199.1.1 leaves by eth1 via 10.199.9.1"
        ),
        "{}",
        f.cause
    );
    assert!(
        f.evidence
            .iter()
            .any(|l| l.contains("rp_filter") && l.contains("peer pod/web-1 all=1 eth0=1")),
        "{:?}",
        f.evidence
    );
    assert_evidence(f, "S. out eth1 at +0.4 ms");
}

#[test]
fn reply_lost_on_the_same_interface_points_at_conntrack_or_a_filter() {
    let seen = peer_flow(&[(0.4, "server", "S.", 0, "eth0", "out")]);
    let v = evaluate(&timed_out_with(watching_peer(
        "web-1",
        "10.199.2.2",
        vec![seen],
        vec![],
    )));
    let f = finding(&v, RuleCode::ReplyLostOnReturnPath);
    assert!(
        f.cause.contains("left the way the SYN came in (eth0)"),
        "{}",
        f.cause
    );
    assert!(f.next[0].starts_with("conntrack -L"), "{:?}", f.next);
}

fn refused_with(listeners: serde_json::Value) -> Verdict {
    let rst = peer_flow(&[(0.4, "server", "R.", 0, "eth0", "out")]);
    let source_rst = flow(
        CLIENT,
        CLUSTER_IP,
        &[
            (0.0, "client", "S", 0, "eth0", "out"),
            (0.9, "server", "R.", 0, "eth0", "in"),
        ],
    );
    let p = watching_peer(
        "web-1",
        "10.199.2.2",
        vec![rst],
        vec![sockets(serde_json::json!({ "listeners": listeners }))],
    );
    let inputs = run(
        vec![
            connect(CLUSTER_IP, CLIENT, TcpOutcome::Refused, 0.9),
            capture(vec![source_rst]),
        ],
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![p],
    );
    evaluate(&inputs)
}

#[test]
fn reset_by_destination_names_a_loopback_only_listener() {
    let v =
        refused_with(serde_json::json!([{"local": "127.0.0.1:8080", "recv_q": 0, "send_q": 128}]));
    assert_eq!(primary(&v), RuleCode::ResetByDestination, "{}", fired(&v));
    assert_eq!(v.layer, Some(Layer::Transport));
    let f = finding(&v, RuleCode::ResetByDestination);
    assert!(
        f.cause.contains("the app listens on 127.0.0.1:8080 only"),
        "{}",
        f.cause
    );
    assert!(v.next[0].contains("bind 0.0.0.0:8080"), "{:?}", v.next);
    assert_eq!(
        finding(&v, RuleCode::TcpRefusedNoListener).refined_by,
        Some(RuleCode::ResetByDestination)
    );
}

#[test]
fn reset_by_destination_names_the_port_the_app_listens_on_instead() {
    let v =
        refused_with(serde_json::json!([{"local": "0.0.0.0:8081", "recv_q": 0, "send_q": 128}]));
    let f = finding(&v, RuleCode::ResetByDestination);
    assert!(
        f.cause.contains("the app listens on 8081, not 8080"),
        "{}",
        f.cause
    );
}

#[test]
fn reset_by_destination_with_nothing_listening_at_all() {
    let v = refused_with(serde_json::json!([]));
    let f = finding(&v, RuleCode::ResetByDestination);
    assert!(
        f.cause
            .contains("nothing listens on 8080, nor on any other port"),
        "{}",
        f.cause
    );
}

/// The handshake and a small request pass; a 1400-byte segment is retransmitted and never
/// arrives unless `arrives`.
fn data_run(arrives: bool) -> Verdict {
    let source = flow(
        CLIENT,
        CLUSTER_IP,
        &[
            (0.0, "client", "S", 0, "eth0", "out"),
            (0.9, "server", "S.", 0, "eth0", "in"),
            (1.0, "client", ".", 0, "eth0", "out"),
            (1.1, "client", "P.", 100, "eth0", "out"),
            (2.0, "server", ".", 0, "eth0", "in"),
            (2.1, "client", ".", 1400, "eth0", "out"),
            (210.0, "client", ".", 1400, "eth0", "out"),
            (630.0, "client", ".", 1400, "eth0", "out"),
        ],
    );
    let mut at_peer: Vec<M> = vec![
        (0.4, "server", "S.", 0, "eth0", "out"),
        (1.3, "client", ".", 0, "eth0", "in"),
        (1.4, "client", "P.", 100, "eth0", "in"),
        (1.5, "server", ".", 0, "eth0", "out"),
    ];
    if arrives {
        at_peer.push((2.4, "client", ".", 1400, "eth0", "in"));
    }
    let p = watching_peer("web-1", "10.199.2.2", vec![peer_flow(&at_peer)], vec![]);
    let inputs = run(
        vec![
            connect(CLUSTER_IP, CLIENT, TcpOutcome::Ok, 0.9),
            capture(vec![source]),
        ],
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![p],
    );
    evaluate(&inputs)
}

#[test]
fn mtu_blackhole_between_ends_names_the_largest_that_arrived_and_smallest_that_did_not() {
    let v = data_run(false);
    assert_eq!(
        primary(&v),
        RuleCode::MtuBlackholeBetweenEnds,
        "{}",
        fired(&v)
    );
    assert_eq!(v.layer, Some(Layer::Path));
    let f = finding(&v, RuleCode::MtuBlackholeBetweenEnds);
    assert!(
        f.cause
            .contains("segments of 1400 bytes left the source 3 times"),
        "{}",
        f.cause
    );
    assert!(
        f.cause.contains("segments of up to 100 bytes did"),
        "{}",
        f.cause
    );
    assert!(v.connections[0]
        .packets
        .iter()
        .any(|p| p.len == 1400 && p.retransmit));
}

#[test]
fn large_segments_that_arrive_are_no_mtu_blackhole() {
    let v = data_run(true);
    assert!(!v.fired(RuleCode::MtuBlackholeBetweenEnds), "{}", fired(&v));
    assert_eq!(v.status, Status::Healthy, "{}", fired(&v));
    assert_eq!(v.connections[0].outcome, ConnectionOutcome::Worked);
    assert!(
        v.proven.iter().any(|p| p
            .contains("both ends agree: 10.199.1.1:41234 -> 10.199.96.10:80 reached pod/web-1")),
        "{:?}",
        v.proven
    );
}

#[test]
fn source_without_capture_falls_back_to_its_connect_and_says_what_that_leaves_open() {
    let seen = peer_flow(&[(0.4, "server", "S.", 0, "eth0", "out")]);
    let inputs = run(
        vec![
            connect(CLUSTER_IP, CLIENT, TcpOutcome::Timeout, 3000.0),
            skipped(
                CheckKind::Capture,
                "capture needs CAP_NET_RAW",
                Some("net_raw"),
            ),
        ],
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![watching_peer("web-1", "10.199.2.2", vec![seen], vec![])],
    );
    let v = evaluate(&inputs);
    assert_eq!(
        primary(&v),
        RuleCode::ReplyLostOnReturnPath,
        "{}",
        fired(&v)
    );
    assert_eq!(v.connections[0].basis, TimeBasis::PeerFirstPacket);
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("the source had no capture")),
        "{:?}",
        v.notes
    );
}

#[test]
fn source_without_capture_and_a_silent_peer_is_lost_between_with_a_caveat() {
    let inputs = run(
        vec![connect(CLUSTER_IP, CLIENT, TcpOutcome::Timeout, 3000.0)],
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![watching_peer("web-1", "10.199.2.2", vec![], vec![])],
    );
    let v = evaluate(&inputs);
    let f = finding(&v, RuleCode::SynLostBetweenEnds);
    assert_evidence(f, "no capture at the source");
}

#[test]
fn single_ended_run_has_no_connections_and_no_peers_in_json() {
    let inputs = run(
        source_timed_out(),
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![],
    );
    let v = evaluate(&inputs);
    assert!(v.connections.is_empty());
    assert_eq!(primary(&v), RuleCode::TcpTimeout);
    assert!(v.findings.iter().all(|f| f.refined_by.is_none()));
    let json = JsonRenderer::new().finish(&inputs, &v);
    assert!(
        !json.contains("\"peers\"")
            && !json.contains("\"connections\"")
            && !json.contains("refined_by")
    );
}

fn reply_lost_inputs() -> Inputs {
    let seen = peer_flow(&[(0.4, "server", "S.", 0, "eth0", "out")]);
    timed_out_with(watching_peer("web-1", "10.199.2.2", vec![seen], vec![]))
}

#[test]
fn text_shows_each_connection_timeline_under_the_evidence() {
    let inputs = reply_lost_inputs();
    let v = evaluate(&inputs);
    let text = TextRenderer::new(false).finish(&inputs, &v);
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    let expected = "\
  connection 10.199.1.1:41234 -> 10.199.96.10:80 (peer pod/web-1 sees 10.199.2.2:8080; peer times on
      node-2's clock)
    +0.0 ms    source S   out eth0
    +0.3 ms    peer   S   in  eth0
    +0.4 ms    peer   S.  out eth0
    +1003.1 ms source S   out eth0 (retransmit)
    +3011.0 ms source S   out eth0 (retransmit)
    no S. reached the source
";
    assert!(text.contains(expected), "{text}");
    let cause = text.find("  cause").expect("a cause line");
    assert!(text.find("  connection").unwrap() < cause);
}

#[test]
fn markdown_shows_the_timelines_in_one_code_block() {
    let inputs = reply_lost_inputs();
    let v = evaluate(&inputs);
    let md = MarkdownRenderer::new().finish(&inputs, &v);
    assert!(
        md.contains("```text\nconnection 10.199.1.1:41234 -> 10.199.96.10:80"),
        "{md}"
    );
    assert!(md.contains("  no S. reached the source\n```"), "{md}");
}

#[test]
fn timelines_are_bounded_and_say_how_many_more() {
    let flows: Vec<protocol::TcpFlow> = (0..7)
        .map(|i| {
            let client = format!("10.199.1.1:{}", 41000 + i);
            let ms: Vec<M> = (0..14)
                .map(|k| (k as f64 * 1000.0, "client", "S", 0, "eth0", "out"))
                .collect();
            flow(&client, CLUSTER_IP, &ms)
        })
        .collect();
    let inputs = run(
        vec![
            connect(CLUSTER_IP, "10.199.1.1:41000", TcpOutcome::Timeout, 3000.0),
            capture(flows),
        ],
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![watching_peer("web-1", "10.199.2.2", vec![], vec![])],
    );
    let v = evaluate(&inputs);
    assert_eq!(v.connections.len(), 7);
    let text = TextRenderer::new(false).finish(&inputs, &v);
    assert_eq!(text.matches("  connection ").count(), 5, "{text}");
    assert!(text.contains("... 4 more packets"), "{text}");
    assert!(text.contains("... 2 more connections"), "{text}");
    let f = finding(&v, RuleCode::SynLostBetweenEnds);
    assert!(
        f.cause.contains("(and 6 more connections the same way)"),
        "{}",
        f.cause
    );
}

#[test]
fn json_carries_the_peers_events_and_the_connections_and_round_trips() {
    let inputs = reply_lost_inputs();
    let v = evaluate(&inputs);
    let doc = netdebug_verdict::render::json_document(&inputs, &v);
    assert_eq!(doc["peers"][0]["label"], "pod/web-1");
    assert!(doc["peers"][0]["events"]
        .as_array()
        .is_some_and(|e| e.iter().any(|x| x["type"] == "armed")));
    assert_eq!(doc["verdict"]["connections"][0]["outcome"], "reply_lost");
    assert_eq!(doc["verdict"]["connections"][0]["packets"][0]["flags"], "S");
    let timeout = doc["verdict"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "tcp_timeout")
        .expect("the single-ended finding");
    assert_eq!(timeout["refined_by"], "reply_lost_on_return_path");
    let back: Verdict = serde_json::from_value(doc["verdict"].clone()).expect("verdict decodes");
    assert_eq!(back, v);
    let inputs_back: Inputs =
        serde_json::from_str(&serde_json::to_string(&inputs).unwrap()).unwrap();
    assert_eq!(inputs_back, inputs);
    assert_eq!(v.findings[0].severity, Severity::Failure);
}

#[test]
fn connection_sent_to_one_endpoints_address_is_judged_by_that_peer_alone() {
    // The source connects to web-2's own address: web-1, which never armed, has no say.
    let syns = flow(
        CLIENT,
        WEB_2,
        &[
            (0.0, "client", "S", 0, "eth0", "out"),
            (1003.1, "client", "S", 0, "eth0", "out"),
        ],
    );
    let inputs = run(
        vec![
            connect(WEB_2, CLIENT, TcpOutcome::Timeout, 3000.0),
            capture(vec![syns]),
        ],
        web_kube(&[("web-1", "10.199.2.2"), ("web-2", "10.199.2.3")], vec![]),
        vec![
            peer("web-1", "10.199.2.2", "node-2", vec![]),
            watching_peer("web-2", "10.199.2.3", vec![], vec![]),
        ],
    );
    let v = evaluate(&inputs);
    assert_eq!(primary(&v), RuleCode::SynLostBetweenEnds, "{}", fired(&v));
    let f = finding(&v, RuleCode::SynLostBetweenEnds);
    assert!(
        f.cause.contains("never reached pod/web-2 (its capture"),
        "{}",
        f.cause
    );
    assert!(
        !f.evidence.iter().any(|l| l.contains("pod/web-1")),
        "{:?}",
        f.evidence
    );
    // web-1's gap is still said.
    assert!(v
        .unchecked
        .iter()
        .any(|u| u.check == "peer" && u.reason.starts_with("pod/web-1")));
}

#[test]
fn peer_capture_with_kernel_drops_cannot_prove_a_packet_never_came() {
    let mut p = watching_peer("web-1", "10.199.2.2", vec![], vec![]);
    for e in &mut p.events {
        if let Event::Evidence(protocol::Evidence::CaptureSummary(c)) = e {
            c.kernel_drops = 7;
        }
    }
    let v = evaluate(&timed_out_with(p));
    assert!(!v.fired(RuleCode::SynLostBetweenEnds), "{}", fired(&v));
    assert!(v
        .unchecked
        .iter()
        .any(|u| u.reason.contains("its capture dropped 7 packets")));
}

#[test]
fn service_connection_no_watched_endpoint_saw_is_lost_between_when_every_endpoint_watched() {
    let inputs = run(
        source_timed_out(),
        web_kube(&[("web-1", "10.199.2.2"), ("web-2", "10.199.2.3")], vec![]),
        vec![
            watching_peer("web-1", "10.199.2.2", vec![], vec![]),
            watching_peer("web-2", "10.199.2.3", vec![], vec![]),
        ],
    );
    let v = evaluate(&inputs);
    assert_eq!(primary(&v), RuleCode::SynLostBetweenEnds, "{}", fired(&v));
    let f = finding(&v, RuleCode::SynLostBetweenEnds);
    assert!(
        f.cause.contains("never reached pod/web-1 or pod/web-2"),
        "{}",
        f.cause
    );
}

/// Regression: a ClusterIP kube-proxy had not programmed yet answered the SYN with an ICMP
/// port unreachable from the node, and the verdict called it "lost between the ends"
/// although the ICMP error's sender had already said where it was stopped.
#[test]
fn a_connect_ended_by_an_icmp_error_on_the_way_is_not_lost_between_the_ends() {
    let mut refused = connect(CLUSTER_IP, CLIENT, TcpOutcome::Refused, 0.5);
    if let Event::Evidence(protocol::Evidence::Tcp(t)) = &mut refused {
        t.icmp = Some(protocol::ConnectIcmp {
            family: protocol::Family::Inet.into(),
            icmp_type: 3,
            code: 3,
            from: Some("10.199.1.254".parse().unwrap()),
            meaning: protocol::IcmpMeaning::PortUnreachable.into(),
        });
    }
    let syn = flow(
        CLIENT,
        CLUSTER_IP,
        &[(0.0, "client", "S", 0, "eth0", "out")],
    );
    let inputs = run(
        vec![refused, capture(vec![syn])],
        web_kube(&[("web-1", "10.199.2.2")], vec![]),
        vec![watching_peer("web-1", "10.199.2.2", vec![], vec![])],
    );
    let v = evaluate(&inputs);
    assert!(!v.fired(RuleCode::SynLostBetweenEnds), "{}", fired(&v));
    assert_eq!(
        v.connections[0].outcome,
        ConnectionOutcome::RejectedOnTheWay
    );
    assert!(
        v.connections[0].summary.contains("from 10.199.1.254"),
        "{}",
        v.connections[0].summary
    );
}
