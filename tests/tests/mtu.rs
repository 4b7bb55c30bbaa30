//! The mtu check on a client -- router -- server path whose router->server link has MTU 1280,
//! with ICMP frag-needed dropped on the router (a blackhole) or allowed (a learned PMTU), for
//! both variants: icmp (as root) and tcp (as uid 65534 without capabilities).

use netdebug_scenarios::{
    json_plan, run_probe, run_probe_unprivileged, Accept, Link, Netns, ProbeRun, TcpServerOptions,
};
use protocol::{MtuEvidence, Plan};
use serde_json::json;

const SERVER: &str = "10.199.62.2";

struct Path {
    client: Netns,
    router: Netns,
    _server: Netns,
}

/// client 10.199.61.2 -- 10.199.61.1 router 10.199.62.1 (MTU 1280) -- 10.199.62.2 server
/// (MTU 1500, so the server announces MSS 1460 and the router is where big packets stop).
fn path(blackhole: bool) -> Path {
    let client = Netns::new("mc");
    let router = Netns::new("mr");
    let server = Netns::new("ms");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.61.2/24",
        &router,
        "r0",
        "10.199.61.1/24",
    );
    Link::veth_pair(
        &router,
        "r1",
        "10.199.62.1/24",
        &server,
        "s0",
        "10.199.62.2/24",
    );
    client.add_route("default via 10.199.61.1");
    router.set_mtu("r1", 1280);
    router.set_sysctl("net.ipv4.ip_forward", "1");
    server.add_route("default via 10.199.62.1");
    if blackhole {
        router.sh(
            "iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP \
             && iptables -A FORWARD -p icmp --icmp-type fragmentation-needed -j DROP",
        );
    }
    // A listener that never accepts: the handshakes and data of the tcp variant complete in
    // the kernel.
    server.spawn_tcp_server_with(
        "0.0.0.0:8080".parse().unwrap(),
        TcpServerOptions {
            backlog: 128,
            accept: Accept::Never,
        },
    );
    Path {
        client,
        router,
        _server: server,
    }
}

fn plan() -> Plan {
    json_plan(json!({"v": 1, "checks": ["mtu"], "deadline_ms": 20000,
        "targets": [{"label": "server", "host": SERVER, "port": 8080}],
        "mtu": {"wait_ms": 300}}))
}

fn mtu_evidence(run: &ProbeRun) -> MtuEvidence {
    run.assert_ok();
    run.one::<MtuEvidence>().clone()
}

/// The router really generated frag-needed errors, and its firewall ate them.
fn frag_needed_dropped_on_router(router: &Netns) -> u64 {
    let out = router.sh("iptables -L OUTPUT -v -x -n");
    out.lines()
        .filter(|l| l.contains("DROP"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The PMTU the client's kernel has cached for the server, per `ip route get`.
fn cached_pmtu(client: &Netns) -> Option<u64> {
    let v = client.ip_json(&["route", "get", SERVER]);
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
    let m = mtu_evidence(&run_probe(&p.client, &plan()));
    assert_eq!(m.variant.as_str(), "icmp");
    assert_blackhole(&m, &p);
}

#[test]
fn icmp_with_frag_needed_learns_the_pmtu() {
    let p = path(false);
    let m = mtu_evidence(&run_probe(&p.client, &plan()));
    assert_eq!(m.variant.as_str(), "icmp");
    assert_learned(&m, &p);
    assert_eq!(m.probes[0].result.as_str(), "frag_needed", "{m:?}");
}

fn unprivileged(p: &Path) -> MtuEvidence {
    // A fresh namespace admits no gid to ping sockets ("1 0"): the tcp variant must run.
    let range = p.client.sysctl("net.ipv4.ping_group_range");
    assert_eq!(range.split_whitespace().collect::<Vec<_>>(), ["1", "0"]);
    let run = run_probe_unprivileged(&p.client, &plan());
    let skipped = run.all_skipped();
    assert!(
        skipped
            .iter()
            .any(
                |s| s.missing_capability.as_ref().map(|v| v.as_str()) == Some("net_raw")
                    && s.reason.contains("tcp variant")
            ),
        "the icmp variant is reported skipped: {skipped:?}"
    );
    let m = mtu_evidence(&run);
    assert_eq!(m.variant.as_str(), "tcp");
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
        .set_sysctl("net.ipv4.ping_group_range", "0 2147483647");
    let run = run_probe_unprivileged(&p.client, &plan());
    assert!(
        run.all_skipped().is_empty(),
        "nothing skipped: {:?}",
        run.all_skipped()
    );
    let m = mtu_evidence(&run);
    assert_eq!(m.variant.as_str(), "icmp");
    assert_blackhole(&m, &p);
}

/// Regression: when the smaller MTU is on the router's interface facing the client (a veth
/// whose peer is the client's), the client's own kernel refuses frames larger than the peer
/// accepts, and sendto() fails with ENOBUFS. The search counted that as a failed probe and
/// stopped, so it never found the blackhole (and the TLS-MTU verdict had nothing to agree
/// with). Such a size did not get through: it is lost, and the search goes on.
#[test]
fn a_veth_peer_with_a_smaller_mtu_is_a_lost_size_not_a_failed_search() {
    let client = Netns::new("mvc");
    let router = Netns::new("mvr");
    let server = Netns::new("mvs");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.63.2/24",
        &router,
        "r0",
        "10.199.63.1/24",
    );
    Link::veth_pair(
        &router,
        "r1",
        "10.199.64.1/24",
        &server,
        "s0",
        "10.199.64.2/24",
    );
    client.add_route("default via 10.199.63.1");
    server.add_route("default via 10.199.64.1");
    router.set_sysctl("net.ipv4.ip_forward", "1");
    router.set_mtu("r0", 1280);
    router.sh(
        "iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP \
         && iptables -A FORWARD -p icmp --icmp-type fragmentation-needed -j DROP",
    );
    let run = run_probe(
        &client,
        &json_plan(json!({"v": 1, "checks": ["mtu"], "deadline_ms": 20000,
            "targets": [{"label": "server", "host": "10.199.64.2"}],
            "mtu": {"wait_ms": 300}})),
    );
    let m = mtu_evidence(&run);
    assert!(m.blackhole, "{m:?}");
    let ok = m.largest_ok.expect("a size got through");
    assert!((1200..1300).contains(&ok), "{m:?}");
    assert!(
        !m.probes
            .iter()
            .any(|p| p.result == protocol::MtuProbeResult::Failed),
        "no probe failed: {m:?}"
    );
    // Oracle: the client's kernel refuses a 1500-byte datagram with DF set on this path with
    // ENOBUFS (once the router's address is resolved), and sends a 1200-byte one. UDP hides
    // ENOBUFS unless IP_RECVERR is set; the server's port-unreachable answers it then also
    // reports are not what is asked.
    let script = "import socket,time\n\
        s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
        s.setsockopt(socket.IPPROTO_IP,10,2)\n\
        s.setsockopt(socket.IPPROTO_IP,11,1)\n\
        d=('10.199.64.2',9)\n\
        small=s.sendto(b'x'*1172,d)\n\
        big='sent'\n\
        for _ in range(5):\n\
        \x20   time.sleep(0.05)\n\
        \x20   try: s.sendto(b'x'*1472,d)\n\
        \x20   except OSError as e:\n\
        \x20       if e.errno==105: big=e.strerror; break\n\
        print(small, big)\n";
    let out = client.exec(&["python3", "-c", script]);
    assert_eq!(
        out.stdout.trim(),
        "1172 No buffer space available",
        "{out:?}"
    );
}
