//! The mtu check on a client -- router -- server path whose router->server link has MTU 1280,
//! with ICMP frag-needed dropped on the router (a blackhole) or allowed (a learned PMTU), for
//! both variants: icmp (as root) and tcp (as uid 65534 without capabilities).

mod netns_lab;
use netns_lab as ns;

use std::time::Duration;

use protocol::{Event, Evidence, MtuEvidence};
use serde_json::{json, Value};

const SERVER: &str = "10.199.62.2";

struct Path {
    client: ns::Ns,
    router: ns::Ns,
    _server: ns::Ns,
}

/// client 10.199.61.2 -- 10.199.61.1 router 10.199.62.1 (MTU 1280) -- 10.199.62.2 server
/// (MTU 1500, so the server announces MSS 1460 and the router is where big packets stop).
fn path(blackhole: bool) -> Path {
    let client = ns::Ns::new("mc");
    let router = ns::Ns::new("mr");
    let mut server = ns::Ns::new("ms");
    ns::veth(&client, "c0", &router, "r0");
    ns::veth(&router, "r1", &server, "s0");
    client.sh("ip addr add 10.199.61.2/24 dev c0 && ip route add default via 10.199.61.1");
    router.sh(
        "ip addr add 10.199.61.1/24 dev r0 && ip addr add 10.199.62.1/24 dev r1 \
         && ip link set r1 mtu 1280 && sysctl -qw net.ipv4.ip_forward=1",
    );
    server.sh("ip addr add 10.199.62.2/24 dev s0 && ip route add default via 10.199.62.1");
    if blackhole {
        router.sh(
            "iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP \
             && iptables -A FORWARD -p icmp --icmp-type fragmentation-needed -j DROP",
        );
    }
    server.spawn(
        "python3",
        &[
            "-c",
            "import socket,time\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',8080)); s.listen(128); time.sleep(60)\n",
        ],
    );
    let up = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        server.sh("ss -Htln").contains(":8080")
    });
    assert!(up, "test listener did not start");
    Path {
        client,
        router,
        _server: server,
    }
}

fn plan() -> Value {
    json!({"v": 1, "checks": ["mtu"], "deadline_ms": 20000,
        "targets": [{"label": "server", "host": SERVER, "port": 8080}],
        "mtu": {"wait_ms": 300}})
}

fn mtu_evidence(events: &[Event]) -> MtuEvidence {
    let mut all: Vec<MtuEvidence> = ns::evidence(events)
        .into_iter()
        .filter_map(|e| match e {
            Evidence::Mtu(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(all.len(), 1, "one mtu evidence: {events:?}");
    all.remove(0)
}

/// The router really generated frag-needed errors, and its firewall ate them.
fn frag_needed_dropped_on_router(router: &ns::Ns) -> u64 {
    let out = router.sh("iptables -L OUTPUT -v -x -n");
    out.lines()
        .filter(|l| l.contains("DROP"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The PMTU the client's kernel has cached for the server, per `ip route get`.
fn cached_pmtu(client: &ns::Ns) -> Option<u64> {
    let v = client.ip_json(&format!("route get {SERVER}"));
    v[0]["metrics"]
        .as_array()
        .and_then(|m| m.iter().find_map(|x| x["mtu"].as_u64()))
}

fn assert_blackhole(m: &MtuEvidence, p: &Path) {
    assert!(m.blackhole, "{m:?}");
    assert!(!m.frag_needed_seen, "{m:?}");
    assert_eq!(m.largest_ok, Some(1280), "{m:?}");
    assert_eq!(m.smallest_lost, Some(1281), "{m:?}");
    assert_eq!(m.interface_mtu, Some(1500));
    assert_eq!(m.learned_pmtu, None);
    assert!(
        frag_needed_dropped_on_router(&p.router) > 0,
        "router sent no frag-needed"
    );
    assert_eq!(
        cached_pmtu(&p.client),
        None,
        "the client's kernel learned nothing"
    );
}

fn assert_learned(m: &MtuEvidence, p: &Path) {
    assert!(!m.blackhole, "{m:?}");
    assert!(m.frag_needed_seen, "{m:?}");
    assert_eq!(m.learned_pmtu, Some(1280), "{m:?}");
    assert_eq!(m.largest_ok, Some(1280), "{m:?}");
    assert_eq!(m.smallest_lost, None, "{m:?}");
    assert_eq!(
        cached_pmtu(&p.client),
        Some(1280),
        "ip route get shows the learned PMTU"
    );
}

#[test]
fn icmp_blackhole_is_reported_at_the_right_size() {
    let p = path(true);
    let m = mtu_evidence(&p.client.probe(&plan()));
    assert_eq!(m.variant, "icmp");
    assert_blackhole(&m, &p);
}

#[test]
fn icmp_with_frag_needed_learns_the_pmtu() {
    let p = path(false);
    let m = mtu_evidence(&p.client.probe(&plan()));
    assert_eq!(m.variant, "icmp");
    assert_learned(&m, &p);
    assert_eq!(m.probes[0].result, "frag_needed", "{m:?}");
}

fn unprivileged(p: &Path) -> MtuEvidence {
    // A fresh namespace admits no gid to ping sockets ("1 0"): the tcp variant must run.
    let range = p.client.sh("sysctl -n net.ipv4.ping_group_range");
    assert_eq!(range.split_whitespace().collect::<Vec<_>>(), ["1", "0"]);
    let events = p.client.probe_unprivileged(&plan());
    let skipped = ns::skipped(&events);
    assert!(
        skipped
            .iter()
            .any(|s| s.missing_capability.as_deref() == Some("net_raw")
                && s.reason.contains("tcp variant")),
        "the icmp variant is reported skipped: {skipped:?}"
    );
    let m = mtu_evidence(&events);
    assert_eq!(m.variant, "tcp");
    m
}

#[test]
fn tcp_blackhole_is_reported_at_the_right_size() {
    let p = path(true);
    let m = unprivileged(&p);
    assert_blackhole(&m, &p);
}

#[test]
fn tcp_with_frag_needed_learns_the_pmtu() {
    let p = path(false);
    let m = unprivileged(&p);
    assert_learned(&m, &p);
}

#[test]
fn ping_sockets_give_the_icmp_variant_without_capabilities() {
    let p = path(true);
    // Admit every gid to unprivileged ICMP echo sockets in the client's namespace.
    p.client
        .sh("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
    let events = p.client.probe_unprivileged(&plan());
    assert!(
        ns::skipped(&events).is_empty(),
        "nothing skipped: {:?}",
        ns::skipped(&events)
    );
    let m = mtu_evidence(&events);
    assert_eq!(m.variant, "icmp");
    assert_blackhole(&m, &p);
}
