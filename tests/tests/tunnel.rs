//! The probe's tunnel (the plan's `tunnel`): the event stream served on the namespace's
//! loopback, which the client reaches through the API server's port-forward. A peer inside
//! the namespace (python3, standing where the kubelet's port-forward dials) must get exactly
//! the lines the probe wrote to stdout; a peer without the token gets nothing; and the probe's
//! own listener never shows in its socket evidence while a real one does (ss is the oracle).

use std::net::SocketAddr;
use std::time::Duration;

use netdebug_scenarios::*;
use protocol::{CheckKind, SocketsEvidence, TunnelPlan};

const TOKEN: &str = "tunnelTokenForTheTest0123456789";

fn tunnel_plan(port: u16, server: SocketAddr) -> protocol::Plan {
    let mut plan = plan(
        &[CheckKind::Tcp, CheckKind::Sockets],
        vec![tcp_target(server)],
    );
    plan.deadline_ms = 8000;
    plan.tunnel = Some(TunnelPlan {
        port,
        token: TOKEN.into(),
        linger_ms: 5000,
    });
    plan
}

/// Runs the probe in `ns` while `peer_token` is sent by a peer in the same namespace; returns
/// the probe's run and what the peer printed.
fn run_with_peer(ns: &Netns, plan: &protocol::Plan, peer_token: &str) -> (ProbeRun, CmdOutput) {
    let port = plan
        .tunnel
        .as_ref()
        .expect("a tunnel plan")
        .port
        .to_string();
    std::thread::scope(|scope| {
        let peer = scope.spawn(|| {
            ns.try_exec_timeout(
                &["python3", "-c", TUNNEL_PEER, &port, peer_token],
                Duration::from_secs(20),
            )
        });
        let run = run_probe(ns, plan);
        (run, peer.join().expect("peer thread"))
    })
}

#[test]
fn the_peer_with_the_token_gets_exactly_what_stdout_got() {
    require_tools(&["python3", "ss"]);
    let ns = Netns::new("tunnel");
    let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let _server = ns.spawn_tcp_server(server);
    let plan = tunnel_plan(52001, server);
    let (run, peer) = run_with_peer(&ns, &plan, TOKEN);
    run.assert_ok();
    assert!(peer.success(), "peer: {}", peer.stderr);
    assert!(!run.stdout.is_empty());
    assert_eq!(
        peer.stdout, run.stdout,
        "the tunnel carried other bytes than stdout"
    );
    // The probe's own listener is not the pod's: left out, while the real one is there.
    let sockets = run.one::<SocketsEvidence>();
    let ports: Vec<u16> = sockets.listeners.iter().map(|l| l.local.port()).collect();
    assert!(ports.contains(&8080), "{ports:?}");
    assert!(!ports.contains(&52001), "{ports:?}");
}

#[test]
fn a_peer_without_the_token_gets_nothing() {
    require_tools(&["python3"]);
    let ns = Netns::new("tunnel-token");
    let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let _server = ns.spawn_tcp_server(server);
    let mut plan = tunnel_plan(52002, server);
    // No peer with the token comes: the probe lingers this long after `done` (long enough for
    // the stranger to start and try), then exits.
    plan.tunnel.as_mut().unwrap().linger_ms = 3000;
    let (run, peer) = run_with_peer(&ns, &plan, "notTheTokenAtAll0000");
    run.assert_ok();
    assert!(peer.success(), "peer: {}", peer.stderr);
    assert_eq!(peer.stdout, "", "a stranger got events");
    assert!(run.stdout.contains("\"type\":\"done\""));
}

#[test]
fn a_taken_port_costs_only_the_tunnel() {
    require_tools(&["ss"]);
    let ns = Netns::new("tunnel-taken");
    let server: SocketAddr = "127.0.0.1:52003".parse().unwrap();
    let _server = ns.spawn_tcp_server(server);
    // The plan's tunnel port is the one the server holds.
    assert!(ns
        .exec(&["ss", "-H", "-ltn"])
        .stdout
        .contains("127.0.0.1:52003"));
    let run = run_probe(&ns, &tunnel_plan(52003, server));
    run.assert_ok();
    assert!(
        run.stderr
            .contains("cannot serve the event stream on 127.0.0.1:52003"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("\"type\":\"done\""));
    // The port is the server's, so the sockets check shows its listener.
    let sockets = run.one::<SocketsEvidence>();
    assert!(
        sockets.listeners.iter().any(|l| l.local == server),
        "{:?}",
        sockets.listeners
    );
}
