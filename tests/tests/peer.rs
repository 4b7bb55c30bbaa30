//! Both ends (protocol minor 4): a *peer* probe in the destination namespace watches the
//! traffic a *source* makes from the client namespace, and the test paces them the way the
//! client does, with control words on the probe's stdin (or on its tunnel connection).
//!
//! What must hold: a peer says `armed` once its capture is bound; its capture takes the
//! source's TCP to its ports and marks each packet (flags, direction, interface, kernel time),
//! which tcpdump on the same interface must agree with; it ends at `stop`, or promptly when
//! its control channel closes, keeping the packets that came just before `stop`; a held source waits for `go` at most `hold_ms`, then says why
//! it went on (`released`) and runs its tcp check; a listener bound to loopback on a peer's
//! port shows first in its socket evidence; and the tunnel's connection carries control words
//! after the token.
//! Needs root: `cargo build -p probe && cargo test -p netdebug-scenarios --test peer`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netdebug_scenarios::pair::{CLI, SRV, SRV_DEV};
use netdebug_scenarios::*;
use protocol::{
    CaptureSummary, CheckKind, Event, RouteEvidence, SocketsEvidence, TcpEvidence, TcpFlow,
};
use serde_json::{json, Value};

/// How long a peer may take to bind its capture and say `armed`.
const ARM_WAIT: Duration = Duration::from_secs(10);

/// A peer of CLI on `ports`, paced via stdin, capturing (or not) for at most 15 s.
fn peer_plan(ports: &[u16], capture: bool) -> Value {
    let mut plan = json!({
        "v": 1,
        "deadline_ms": 20000,
        "peer": {"sources": [CLI], "ports": ports},
        "control": {"via": "stdin"},
    });
    if capture {
        plan["capture"] =
            json!({"max_duration_ms": 15000, "max_packets": 10000, "max_bytes": 1000000});
    }
    plan
}

#[track_caller]
fn armed(peer: &PacedProbe) -> protocol::Armed {
    match peer
        .wait_for("armed", ARM_WAIT, |e| matches!(e, Event::Armed(_)))
        .event
    {
        Event::Armed(a) => a,
        _ => unreachable!(),
    }
}

#[track_caller]
fn summary(run: &ProbeRun) -> &CaptureSummary {
    run.one::<CaptureSummary>()
}

/// The source's side of the traffic: one probe run in the client namespace connecting to
/// SRV:`port` (and closing).
#[track_caller]
fn source_connects(lab: &ClientServer, port: u16) -> ProbeRun {
    lab.probe(json!({
        "v": 1,
        "checks": ["tcp"],
        "targets": [{"label": format!("{SRV}:{port}"), "host": SRV, "port": port}],
        "deadline_ms": 8000,
    }))
}

#[test]
fn a_peer_marks_the_handshake_it_sees_and_tcpdump_agrees() {
    require_root();
    require_tools(&["tcpdump"]);
    let lab = ClientServer::new("peer");
    let _server = lab.listen(8080);
    let tcpdump = lab.srv.start_tcpdump(SRV_DEV, "tcp port 8080");
    let mut peer = spawn_paced_probe(&lab.srv, &json_plan(peer_plan(&[8080], true)));
    assert!(armed(&peer).capture, "the peer's capture is not running");

    let source = source_connects(&lab, 8080);
    let tcp = source.one::<TcpEvidence>();
    assert_eq!(tcp.outcome.as_str(), "ok", "{tcp:?}");
    // The source closed its connection: let the FIN exchange land, then stop the peer.
    std::thread::sleep(Duration::from_millis(300));
    peer.say("stop");
    let run = peer.finish();
    run.assert_ok();
    let captured = tcpdump.stop();

    let summary = summary(&run);
    assert_eq!(summary.stopped_by.as_str(), "stopped", "{summary:#?}");
    assert!(
        summary.filter.contains(&format!("host {CLI}")) && summary.filter.contains("port 8080"),
        "{}",
        summary.filter
    );
    let cli: IpAddr = CLI.parse().unwrap();
    let flows: Vec<&TcpFlow> = summary
        .tcp_flows
        .iter()
        .filter(|f| f.client.ip() == cli && f.server.port() == 8080)
        .collect();
    assert_eq!(flows.len(), 1, "{:#?}", summary.tcp_flows);
    let flow = flows[0];
    assert_eq!(flow.handshake.as_str(), "established", "{flow:?}");
    let marks = &flow.marks;
    assert!(marks.len() >= 3, "{flow:#?}");
    let spell = |i: usize| {
        let m = &marks[i];
        (
            m.flags.to_string(),
            m.from.as_str().to_string(),
            m.direction.as_ref().map(|d| d.as_str().to_string()),
            m.interface.clone(),
        )
    };
    let s0 = Some(SRV_DEV.to_string());
    assert_eq!(
        spell(0),
        ("S".into(), "client".into(), Some("in".into()), s0.clone())
    );
    assert_eq!(
        spell(1),
        ("S.".into(), "server".into(), Some("out".into()), s0.clone())
    );
    assert!(marks[1].at_us > marks[0].at_us, "{marks:#?}");
    assert!(
        marks.windows(2).all(|w| w[0].at_us <= w[1].at_us),
        "{marks:#?}"
    );
    assert!(marks.iter().all(|m| m.interface == s0), "{marks:#?}");
    // Microseconds since the epoch: within a minute of the test's own clock.
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    assert!(now_us.abs_diff(marks[0].at_us) < 60_000_000, "{marks:#?}");
    assert_eq!(flow.marks_dropped, 0);
    assert_eq!(marks.len() as u64, flow.packets);

    // tcpdump on the same interface saw the same packets of that flow, with the same flags.
    let port = flow.client.port();
    let lines: Vec<&str> = captured
        .packets()
        .into_iter()
        .filter(|l| {
            l.contains(&format!("{CLI}.{port} > ")) || l.contains(&format!("> {CLI}.{port}:"))
        })
        .collect();
    assert_eq!(lines.len(), marks.len(), "{lines:#?}\n{marks:#?}");
    let tcpdump_flags: Vec<&str> = lines
        .iter()
        .map(|l| {
            let at = l.find("Flags [").expect("a TCP line") + "Flags [".len();
            &l[at..at + l[at..].find(']').expect("closing bracket")]
        })
        .collect();
    let probe_flags: Vec<String> = marks.iter().map(|m| m.flags.to_string()).collect();
    assert_eq!(tcpdump_flags, probe_flags, "{lines:#?}");
}

/// Regression: a peer told `stop` right after the traffic must still report the packets in
/// the ring block the kernel was filling (it hands that block over only when its retire
/// timer fires). The capture waits for them when the kernel's count says they are there.
#[test]
fn a_stop_right_after_the_traffic_keeps_the_last_packets() {
    require_root();
    require_tools(&["tcpdump"]);
    let lab = ClientServer::new("peerlast");
    let _server = lab.listen(8080);
    // Whether the retire timer fired before the stop is chance: four rounds.
    for round in 0..4 {
        let tcpdump = lab.srv.start_tcpdump(SRV_DEV, "tcp port 8080");
        let mut peer = spawn_paced_probe(&lab.srv, &json_plan(peer_plan(&[8080], true)));
        assert!(armed(&peer).capture, "the peer's capture is not running");
        let source = source_connects(&lab, 8080);
        assert_eq!(source.one::<TcpEvidence>().outcome.as_str(), "ok");
        // No pause: the last packets are a few milliseconds old when the peer hears `stop`.
        peer.say("stop");
        let run = peer.finish();
        run.assert_ok();
        let captured = tcpdump.stop();
        let summary = summary(&run);
        let seen_by_tcpdump = captured
            .packets()
            .into_iter()
            .filter(|l| l.contains(&format!("{CLI}.")))
            .count() as u64;
        let flows: u64 = summary.tcp_flows.iter().map(|f| f.packets).sum();
        // tcpdump ran before the peer armed and after it stopped: it saw at least as much.
        assert!(
            (3..=seen_by_tcpdump).contains(&flows),
            "the peer kept {flows} of {seen_by_tcpdump} packets, round {round}: {summary:#?}\n{:#?}",
            captured.packets()
        );
        assert_eq!(
            Some(flows),
            summary.kernel_received,
            "every packet the kernel queued was read: round {round}: {summary:#?}"
        );
    }
}

#[test]
fn a_peer_ends_at_stop_and_promptly_when_its_stdin_closes() {
    require_root();
    let lab = ClientServer::new("peerstop");
    for close in [false, true] {
        let mut peer = spawn_paced_probe(&lab.srv, &json_plan(peer_plan(&[8080], true)));
        assert!(armed(&peer).capture);
        if close {
            peer.close_stdin();
        } else {
            peer.say("stop");
        }
        let run = peer.finish();
        run.assert_ok();
        // Far short of the capture's 15 s.
        assert!(
            run.elapsed < Duration::from_secs(5),
            "close={close}: {:?}",
            run.elapsed
        );
        assert_eq!(
            summary(&run).stopped_by.as_str(),
            "stopped",
            "close={close}"
        );
        assert!(!run.done().deadline_exceeded);
        // A peer makes no traffic of its own.
        for check in [CheckKind::Tcp, CheckKind::Dns, CheckKind::Mtu] {
            assert!(
                !run.events.iter().any(|e| matches!(&e.event,
                    Event::CheckStarted(s) if s.check == check)),
                "{check} ran in a peer"
            );
        }
    }
}

/// The `released` event of a run and the seq of its tcp check's start.
#[track_caller]
fn released(run: &ProbeRun) -> (&protocol::Released, u64, u64) {
    let (seq, released) = run
        .events
        .iter()
        .find_map(|e| match &e.event {
            Event::Released(r) => Some((e.seq, r)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no released event\n{}", run.stdout));
    let tcp_started = run
        .events
        .iter()
        .find_map(|e| match &e.event {
            Event::CheckStarted(s) if s.check == CheckKind::Tcp => Some(e.seq),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the tcp check never started\n{}", run.stdout));
    (released, seq, tcp_started)
}

#[test]
fn a_held_source_goes_on_at_go_at_its_hold_limit_or_when_stdin_closes() {
    require_root();
    let lab = ClientServer::new("held");
    let server = lab.listen(8080);
    let plan = json_plan(json!({
        "v": 1,
        "checks": ["tcp", "links"],
        "targets": [{"label": "srv", "host": SRV, "port": 8080}],
        "deadline_ms": 10000,
        "control": {"via": "stdin", "hold_ms": 300},
    }));
    for how in ["nothing", "go", "close"] {
        let mut source = spawn_paced_probe(&lab.cli, &plan);
        let armed = armed(&source);
        assert!(!armed.capture, "no capture in this plan");
        match how {
            "go" => source.say("go"),
            "close" => source.close_stdin(),
            _ => {}
        }
        let run = source.finish();
        run.assert_ok();
        let (released, seq, tcp_started) = released(&run);
        assert!(
            seq < tcp_started,
            "{how}: released after the tcp check started"
        );
        match how {
            "nothing" => {
                assert_eq!(released.by.as_str(), "hold_limit");
                assert!(released.held_ms >= 300.0, "{released:?}");
            }
            "go" => assert_eq!(released.by.as_str(), "go"),
            _ => assert_eq!(released.by.as_str(), "channel_closed"),
        }
        assert!(released.held_ms < 2000.0, "{how}: {released:?}");
        // The check that makes no traffic did not wait for the release.
        let links_started = run
            .events
            .iter()
            .find_map(|e| match &e.event {
                Event::CheckStarted(s) if s.check == CheckKind::Links => Some(e.seq),
                _ => None,
            })
            .expect("links started");
        assert!(links_started < seq, "{how}: links waited for the release");
        let tcp = run.one::<TcpEvidence>();
        assert_eq!(tcp.outcome.as_str(), "ok", "{how}: {tcp:?}");
        assert_eq!(tcp.address, server.addr);
    }
}

#[test]
fn a_loopback_listener_on_a_peer_port_is_listed_first() {
    require_root();
    let lab = ClientServer::new("peersock");
    let _visible = lab.listen(8080);
    let loopback: SocketAddr = "127.0.0.1:9090".parse().unwrap();
    let _hidden = lab.srv.spawn_tcp_server(loopback);
    // One listener shown: by address 10.199.1.1:8080 would come first; the peer's port wins.
    let mut plan = peer_plan(&[9090], false);
    plan["sockets_top"] = json!(1);
    plan.as_object_mut().unwrap().remove("control");
    let run = run_probe(&lab.srv, &json_plan(plan));
    run.assert_ok();
    let sockets = run.one::<SocketsEvidence>();
    assert_eq!(
        sockets
            .listeners
            .iter()
            .map(|l| l.local)
            .collect::<Vec<_>>(),
        vec![loopback],
        "{sockets:#?}"
    );
    // Without targets the peer made one per source: its route check looked up the way back.
    let routes = run.evidence::<RouteEvidence>();
    assert_eq!(routes.len(), 1, "{routes:#?}");
    assert_eq!(routes[0].target, format!("source {CLI}"));
    assert_eq!(routes[0].role.as_str(), "source");
    // No control and no capture: nothing to wait for.
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    assert!(!run.stdout.contains("\"type\":\"armed\""));
}

const TOKEN: &str = "peerTunnelTokenForTheTest012345";

#[test]
fn control_words_come_through_the_tunnel_after_the_token() {
    require_root();
    require_tools(&["python3"]);
    let lab = ClientServer::new("peertun");
    let port = 52011u16;
    let mut plan = peer_plan(&[8080], true);
    plan["control"] = json!({"via": "tunnel"});
    plan["tunnel"] = json!({"port": port, "token": TOKEN, "linger_ms": 3000});
    let plan = json_plan(plan);
    let (run, client) = std::thread::scope(|scope| {
        let client = scope.spawn(|| {
            lab.srv.try_exec_timeout(
                &[
                    "python3",
                    "-c",
                    TUNNEL_PEER,
                    &port.to_string(),
                    TOKEN,
                    "\"type\":\"armed\"",
                    "stop",
                ],
                Duration::from_secs(30),
            )
        });
        let run = run_probe(&lab.srv, &plan);
        (run, client.join().expect("tunnel client thread"))
    });
    run.assert_ok();
    assert!(client.success(), "tunnel client: {}", client.stderr);
    assert_eq!(client.stdout, run.stdout);
    assert_eq!(summary(&run).stopped_by.as_str(), "stopped");
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
}
