//! The sockets check against `ss` in the same namespace: a client namespace with established
//! connections, CLOSE-WAIT left by servers that closed first (IPv4 and IPv6), TIME-WAIT from
//! its own active closes, a connect stuck in SYN-SENT behind a DROP rule, accepted connections
//! whose clients went away, and a listener (backlog 2) that never accepts with 3 connections
//! queued. Every count the probe reports is compared with `ss -tan` / `ss -ltn` output.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netdebug_scenarios::*;
use protocol::{CheckKind, Listener, PeerCount, SocketState, SocketsEvidence};

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

/// An `ss` address column (`10.0.0.1:80`, `[fd00::1]:80`, `[::ffff:10.0.0.1]:80`, `*:80`) as
/// a socket address with IPv4-mapped addresses shown as IPv4.
fn ss_addr(text: &str) -> SocketAddr {
    let text = text.replace('*', "[::]");
    let addr: SocketAddr = text
        .parse()
        .unwrap_or_else(|_| panic!("ss address `{text}`"));
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Rows of `ss -H -tan [filter]`: (local, peer). With a `state` filter ss leaves out the
/// State column, so the addresses are the last two columns.
fn ss_rows(ns: &Netns, filter: &[&str]) -> Vec<(SocketAddr, SocketAddr)> {
    let mut argv = vec!["ss", "-H", "-tan"];
    argv.extend_from_slice(filter);
    ns.exec(&argv)
        .stdout
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let n = cols.len();
            (ss_addr(cols[n - 2]), ss_addr(cols[n - 1]))
        })
        .collect()
}

/// `ss -H -ltn`: every listener with its queues.
fn ss_listeners(ns: &Netns) -> Vec<Listener> {
    let mut out: Vec<Listener> = ns
        .exec(&["ss", "-H", "-ltn"])
        .stdout
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Listener {
                local: ss_addr(cols[3]),
                recv_q: cols[1].parse().expect("Recv-Q"),
                send_q: cols[2].parse().expect("Send-Q"),
            }
        })
        .collect();
    out.sort_by_key(|l| l.local);
    out
}

/// CLOSE-WAIT grouped from `ss` output with the documented rule: accepted connections (local
/// port is a listening port) by client address with port 0, others by peer `ip:port`.
fn ss_close_wait_by_peer(ns: &Netns) -> Vec<PeerCount> {
    let listen_ports: HashSet<u16> = ss_listeners(ns).iter().map(|l| l.local.port()).collect();
    let mut counts: BTreeMap<SocketAddr, u64> = BTreeMap::new();
    for (local, peer) in ss_rows(ns, &["state", "close-wait"]) {
        let key = if listen_ports.contains(&local.port()) {
            SocketAddr::new(peer.ip(), 0)
        } else {
            peer
        };
        *counts.entry(key).or_default() += 1;
    }
    let mut out: Vec<PeerCount> = counts
        .into_iter()
        .map(|(peer, count)| PeerCount { peer, count })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.peer.cmp(&b.peer)));
    out
}

/// Polls `ss -tan` until `want` holds for every listed state (bounded: 10 s).
fn wait_for_states(ns: &Netns, want: &[(&str, u64)]) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = ns.ss_tcp_state_counts();
        if want
            .iter()
            .all(|(s, n)| counts.get(*s).copied().unwrap_or(0) == *n)
        {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "states never reached {want:?}: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Scenario {
    client: Netns,
    // Kept alive for the sockets' peers.
    _server: Netns,
}

/// The client namespace's socket table described in the module docs.
fn build() -> Scenario {
    require_root();
    require_tools(&["ip", "ss", "iptables"]);
    let client = Netns::new("sockc");
    let server = Netns::new("socks");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.20.1/24",
        &server,
        "s0",
        "10.199.20.2/24",
    );
    client.add_addr("c0", "fd00:199::20:1/64");
    server.add_addr("s0", "fd00:199::20:2/64");
    client.set_sysctl("net.ipv4.ip_local_port_range", "40000 40999");

    let holds = server.spawn_tcp_server(sa("10.199.20.2:8080"));
    client.connect_clients(holds.addr, 6, ClientClose::Hold);

    let close = |addr: &str| {
        server.spawn_tcp_server_with(
            sa(addr),
            TcpServerOptions {
                accept: Accept::Close,
                ..Default::default()
            },
        )
    };
    let closes_v4 = close("10.199.20.2:8081");
    client.connect_clients(closes_v4.addr, 4, ClientClose::Hold);
    let closes_v6 = close("[fd00:199::20:2]:8082");
    client.connect_clients(closes_v6.addr, 2, ClientClose::Hold);

    let drains = server.spawn_tcp_server_with(
        sa("10.199.20.2:8083"),
        TcpServerOptions {
            accept: Accept::Drain,
            ..Default::default()
        },
    );
    client.connect_clients(drains.addr, 3, ClientClose::Close);

    // A listener in the client namespace that never accepts: 3 queued on a backlog of 2.
    let stuck = client.spawn_tcp_server_with(
        sa("10.199.20.1:9000"),
        TcpServerOptions {
            backlog: 2,
            accept: Accept::Never,
        },
    );
    server.connect_clients(stuck.addr, 3, ClientClose::Hold);
    // Accepted connections whose clients close: CLOSE-WAIT on the accepting side.
    let accepted = client.spawn_tcp_server(sa("10.199.20.1:9001"));
    server.connect_clients(accepted.addr, 2, ClientClose::Close);

    // A connect that can never complete: SYN-SENT toward a target.
    server.drop_tcp_port(8090);
    client.spawn(&["bash", "-c", "exec 3<>/dev/tcp/10.199.20.2/8090"]);

    wait_for_states(
        &client,
        &[
            ("CLOSE-WAIT", 4 + 2 + 2),
            ("TIME-WAIT", 3),
            ("SYN-SENT", 1),
            ("LISTEN", 2),
        ],
    );
    Scenario {
        client,
        _server: server,
    }
}

fn sockets_plan(top: u32) -> protocol::Plan {
    let mut p = plan(
        &[CheckKind::Sockets],
        vec![tcp_target(sa("10.199.20.2:8090"))],
    );
    p.sockets_top = top;
    p.deadline_ms = 5_000;
    p
}

#[test]
fn sockets_check_matches_ss_in_the_same_namespace() {
    let s = build();
    let before = s.client.ss_tcp_state_counts();
    let run = run_probe(&s.client, &sockets_plan(10));
    run.assert_ok();
    let after = s.client.ss_tcp_state_counts();
    assert_eq!(before, after, "the socket table changed during the run");
    let e: &SocketsEvidence = run.one();

    // Counts per state and total: ss -tan.
    assert_eq!(state_text(&e.states), after, "probe vs ss -tan");
    assert_eq!(e.total, after.values().sum::<u64>());
    assert_eq!(
        e.states.get(&SocketState::Established.into()),
        Some(&(6 + 3)),
        "{:?}",
        e.states
    );
    assert_eq!(e.states.get(&SocketState::CloseWait.into()), Some(&8));

    // CLOSE-WAIT by peer: grouped from ss output, and as built.
    assert_eq!(e.close_wait_by_peer, ss_close_wait_by_peer(&s.client));
    assert_eq!(
        e.close_wait_by_peer,
        vec![
            PeerCount {
                peer: sa("10.199.20.2:8081"),
                count: 4
            },
            PeerCount {
                peer: sa("10.199.20.2:0"),
                count: 2
            },
            PeerCount {
                peer: sa("[fd00:199::20:2]:8082"),
                count: 2
            },
        ]
    );

    // TIME-WAIT against the port range the namespace has (sysctl is the oracle).
    assert_eq!(
        s.client.sysctl("net.ipv4.ip_local_port_range"),
        "40000\t40999"
    );
    assert_eq!(e.local_port_range, Some((40000, 40999)));
    assert_eq!(e.time_wait_ratio, Some(3.0 / 1000.0));
    let tw_peers: Vec<SocketAddr> = ss_rows(&s.client, &["state", "time-wait"])
        .into_iter()
        .map(|(_, peer)| peer)
        .collect();
    assert_eq!(tw_peers, vec![sa("10.199.20.2:8083"); 3]);
    assert_eq!(
        e.time_wait_top_peer,
        Some(PeerCount {
            peer: sa("10.199.20.2:8083"),
            count: 3
        })
    );

    // SYN-SENT toward the target.
    let syn_sent = ss_rows(&s.client, &["state", "syn-sent"]);
    assert_eq!(syn_sent.len(), 1);
    assert_eq!(syn_sent[0].1, sa("10.199.20.2:8090"));
    assert_eq!(
        e.syn_sent_to_targets,
        vec![PeerCount {
            peer: sa("10.199.20.2:8090"),
            count: 1
        }]
    );

    // Listeners and their queues: ss -ltn.
    let mut listeners = e.listeners.clone();
    listeners.sort_by_key(|l| l.local);
    assert_eq!(listeners, ss_listeners(&s.client));
    assert_eq!(
        e.listeners[0],
        Listener {
            local: sa("10.199.20.1:9000"),
            recv_q: 3,
            send_q: 2
        },
        "the full accept queue comes first"
    );
    assert_eq!(
        run.finished(CheckKind::Sockets).status,
        protocol::CheckStatus::Completed
    );
}

#[test]
fn sockets_top_limits_peers_and_listeners() {
    let s = build();
    let run = run_probe(&s.client, &sockets_plan(1));
    run.assert_ok();
    let e: &SocketsEvidence = run.one();
    assert_eq!(
        e.close_wait_by_peer,
        vec![PeerCount {
            peer: sa("10.199.20.2:8081"),
            count: 4
        }]
    );
    assert_eq!(e.listeners.len(), 1);
    assert_eq!(e.listeners[0].local, sa("10.199.20.1:9000"));
    // Counts are never truncated.
    assert_eq!(state_text(&e.states), s.client.ss_tcp_state_counts());
}

#[test]
fn an_empty_namespace_has_an_empty_table() {
    require_root();
    let ns = Netns::new("sockempty");
    let run = run_probe(&ns, &plan(&[CheckKind::Sockets], vec![]));
    run.assert_ok();
    let e: &SocketsEvidence = run.one();
    assert_eq!(ns.exec(&["ss", "-H", "-tan"]).stdout, "");
    assert_eq!(e.total, 0);
    assert!(e.states.is_empty() && e.listeners.is_empty() && e.close_wait_by_peer.is_empty());
    assert_eq!(e.time_wait_top_peer, None);
    assert_eq!(e.time_wait_ratio, Some(0.0));
}

#[test]
fn a_target_name_that_does_not_resolve_does_not_hold_back_the_table() {
    require_root();
    let ns = Netns::new("socknodns");
    let peer = Netns::new("socknodnsp");
    Link::veth_pair(&ns, "n0", "10.199.21.1/24", &peer, "p0", "10.199.21.2/24");
    let srv = peer.spawn_tcp_server(sa("10.199.21.2:8080"));
    ns.connect_clients(srv.addr, 2, ClientClose::Hold);
    // A nameserver where nothing answers (no host has that address).
    let resolv = resolv_conf("nameserver 10.199.21.9\noptions timeout:5 attempts:1\n");
    let mut p = plan(
        &[CheckKind::Sockets],
        vec![protocol::Target {
            label: "web.test:80".into(),
            host: "web.test".into(),
            port: Some(80),
            role: Default::default(),
        }],
    );
    p.dns.resolv_conf = resolv.path().to_string_lossy().into_owned();
    p.deadline_ms = 8_000;
    let run = run_probe(&ns, &p);
    run.assert_ok();
    let finished = run.finished(CheckKind::Sockets);
    assert_eq!(finished.status, protocol::CheckStatus::Completed);
    assert!(
        finished.elapsed_ms < 4_000.0,
        "the table waited for DNS: {} ms",
        finished.elapsed_ms
    );
    let e: &SocketsEvidence = run.one();
    assert_eq!(state_text(&e.states), ns.ss_tcp_state_counts());
    assert_eq!(e.states.get(&SocketState::Established.into()), Some(&2));
    assert!(e.syn_sent_to_targets.is_empty());
}

/// The probe's state counts keyed by their `ss` spelling, to compare with `ss -tan`.
fn state_text(
    states: &std::collections::BTreeMap<protocol::Open<SocketState>, u64>,
) -> std::collections::BTreeMap<String, u64> {
    states.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
