//! Proves the scenario harness itself: namespaces appear and disappear (also on panic), veth
//! pairs and bridges carry TCP, servers behave as their options say (checked with `ss`),
//! iptables rules apply, dnsmasq answers exactly its records (checked with `dig`), and the
//! probe runner decodes a real probe run.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use netdebug_scenarios::*;
use protocol::{CheckKind, LinksEvidence};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address literal")
}

/// `bash /dev/tcp` connect from inside `ns`: Ok(()) or the shell's error text.
fn bash_connect(ns: &Netns, ip: &str, port: u16) -> Result<(), String> {
    let out = ns.try_exec_timeout(
        &[
            "timeout",
            "5",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{ip}/{port}"),
        ],
        Duration::from_secs(10),
    );
    if out.success() {
        Ok(())
    } else {
        Err(out.stderr)
    }
}

fn dig(ns: &Netns, server: &str, name: &str, qtype: &str) -> (String, Vec<String>) {
    let out = ns.exec(&[
        "dig",
        "+tries=1",
        "+time=2",
        "+noall",
        "+comments",
        "+answer",
        &format!("@{server}"),
        name,
        qtype,
    ]);
    let status = out
        .stdout
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output: {}", out.stdout))
        .to_string();
    let answers = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    (status, answers)
}

#[test]
fn namespace_has_lo_up_and_is_deleted_with_its_processes() {
    require_root();
    let ns = Netns::new("life");
    let name = ns.name().to_string();
    assert!(name.starts_with("ndt-life-"), "{name}");
    assert!(Path::new("/run/netns").join(&name).exists());
    let lo = ns.ip_json(&["link", "show", "lo"]);
    let flags = lo[0]["flags"].as_array().expect("ip -j link flags");
    assert!(flags.iter().any(|f| f == "UP"), "lo is not up: {lo}");
    // A process the harness started and one a script left in the background.
    let spawned = ns.spawn(&["sleep", "300"]);
    ns.sh("sleep 301 >/dev/null 2>&1 &");
    let pids = ns.pids();
    assert!(
        pids.contains(&spawned.pid),
        "{pids:?} lacks {}",
        spawned.pid
    );
    assert_eq!(pids.len(), 2, "{pids:?}");
    drop(ns);
    assert!(
        !Path::new("/run/netns").join(&name).exists(),
        "{name} still exists"
    );
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or at most a zombie waiting for a reaper that is not us.
        assert!(
            state.is_empty() || state.contains(") Z"),
            "process {pid} survived the namespace: {state}"
        );
    }
}

#[test]
fn namespace_is_deleted_when_the_test_panics() {
    require_root();
    let name = std::panic::catch_unwind(|| {
        let ns = Netns::new("panics");
        let name = ns.name().to_string();
        std::panic::panic_any(name);
    })
    .expect_err("the closure panics")
    .downcast::<String>()
    .expect("the panic payload is the namespace name");
    assert!(
        !Path::new("/run/netns").join(name.as_str()).exists(),
        "{name} survived a panic"
    );
}

#[test]
fn require_tools_names_the_missing_tool_and_its_package() {
    require_tools(&["ip", "ss"]);
    let message = std::panic::catch_unwind(|| require_tools(&["ip", "ndt-no-such-tool"]))
        .expect_err("a missing tool fails")
        .downcast::<String>()
        .expect("a formatted message");
    assert!(message.contains("`ndt-no-such-tool`"), "{message}");
    assert!(!message.contains("`ip`"), "{message}");
    assert_eq!(
        netdebug_scenarios::require::debian_package("dig"),
        "bind9-dnsutils"
    );
    assert_eq!(
        netdebug_scenarios::require::debian_package("dnsmasq"),
        "dnsmasq-base"
    );
}

#[test]
fn veth_pair_carries_tcp_to_a_server_and_ss_sees_the_connections() {
    require_root();
    let client = Netns::new("vc");
    let server = Netns::new("vs");
    let pair = Link::veth_pair(
        &client,
        "c0",
        "10.199.1.1/24",
        &server,
        "s0",
        "10.199.1.2/24",
    );
    assert_eq!(pair.b.ip(), Some("10.199.1.2".parse().unwrap()));
    let srv = server.spawn_tcp_server(addr("10.199.1.2:0"));
    assert_eq!(srv.addr.ip(), pair.b.ip().unwrap());
    assert_ne!(srv.addr.port(), 0, "port 0 resolves to the bound port");
    bash_connect(&client, "10.199.1.2", srv.addr.port()).expect("connect over the veth");

    let clients = client.connect_clients(srv.addr, 5, ClientClose::Hold);
    assert_eq!(clients.count, 5);
    // Established on both sides (the bash connection above is closed by now).
    assert_eq!(client.ss_tcp_state_counts().get("ESTAB"), Some(&5));
    let server_states = server.ss_tcp_state_counts();
    assert_eq!(server_states.get("ESTAB"), Some(&5), "{server_states:?}");
    assert_eq!(server_states.get("LISTEN"), Some(&1), "{server_states:?}");

    srv.process.stop();
    let refused = bash_connect(&client, "10.199.1.2", srv.addr.port());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("Connection refused")),
        "{refused:?}"
    );
}

#[test]
fn server_accept_modes_produce_close_wait_and_a_full_accept_queue() {
    require_root();
    let ns = Netns::new("modes");
    // The server closes at once; the clients never close: CLOSE-WAIT on the client side.
    let closer = ns.spawn_tcp_server_with(
        addr("127.0.0.1:7001"),
        TcpServerOptions {
            accept: Accept::Close,
            ..Default::default()
        },
    );
    ns.connect_clients(closer.addr, 4, ClientClose::Hold);
    // A listener that never accepts, backlog 2: the queue holds 3.
    let stuck = ns.spawn_tcp_server_with(
        addr("127.0.0.1:7002"),
        TcpServerOptions {
            backlog: 2,
            accept: Accept::Never,
        },
    );
    ns.connect_clients(stuck.addr, 3, ClientClose::Hold);

    let mut close_wait = 0;
    for _ in 0..100 {
        close_wait = ns
            .ss_tcp_state_counts()
            .get("CLOSE-WAIT")
            .copied()
            .unwrap_or(0);
        if close_wait == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(close_wait, 4, "{:?}", ns.ss_tcp_state_counts());
    let listen = ns.exec(&["ss", "-H", "-ltn", "sport", "= :7002"]).stdout;
    let cols: Vec<&str> = listen.split_whitespace().collect();
    assert_eq!(cols.get(1..3), Some(&["3", "2"][..]), "ss -ltn: {listen}");
}

#[test]
fn iptables_reject_refuses_and_drop_times_out() {
    require_root();
    require_tools(&["iptables"]);
    let client = Netns::new("fwc");
    let server = Netns::new("fws");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.3.1/24",
        &server,
        "s0",
        "10.199.3.2/24",
    );
    let srv = server.spawn_tcp_server(addr("10.199.3.2:8080"));
    server.reject_tcp_port(8080, "tcp-reset");
    let refused = bash_connect(&client, "10.199.3.2", srv.addr.port());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("Connection refused")),
        "{refused:?}"
    );
    server.iptables(&["-F", "INPUT"]);
    server.drop_tcp_port(8080);
    let out = client.try_exec(&[
        "timeout",
        "1",
        "bash",
        "-c",
        "exec 3<>/dev/tcp/10.199.3.2/8080",
    ]);
    assert_eq!(out.status.code(), Some(124), "expected a timeout: {out:?}");
}

#[test]
fn dnsmasq_answers_its_records_and_nxdomain_otherwise() {
    require_root();
    require_tools(&["dnsmasq", "dig"]);
    let ns = Netns::new("dns");
    let peer = Netns::new("dnsc");
    Link::veth_pair(&ns, "d0", "10.199.4.1/24", &peer, "q0", "10.199.4.2/24");
    ns.add_addr("d0", "fd00:199::41/64");
    let dns = ns.spawn_dnsmasq(
        "10.199.4.1".parse().unwrap(),
        &[
            ("web.test", "10.199.4.10"),
            ("web.test", "fd00:199::10"),
            ("db.test", "10.199.4.11"),
        ],
    );
    assert_eq!(
        dig(&peer, "10.199.4.1", "web.test", "A"),
        ("NOERROR".into(), vec!["10.199.4.10".to_string()]),
        "{}",
        dns.log()
    );
    assert_eq!(
        dig(&peer, "10.199.4.1", "web.test", "AAAA"),
        ("NOERROR".into(), vec!["fd00:199::10".to_string()])
    );
    assert_eq!(
        dig(&peer, "10.199.4.1", "db.test", "A"),
        ("NOERROR".into(), vec!["10.199.4.11".to_string()])
    );
    assert_eq!(dig(&peer, "10.199.4.1", "nope.test", "A").0, "NXDOMAIN");
    assert_eq!(dig(&peer, "10.199.4.1", "sub.web.test", "A").0, "NXDOMAIN");
    assert!(dns.log().contains("query[A] nope.test"), "{}", dns.log());
    // An address where nothing listens: dig times out.
    let silent = peer.try_exec(&["dig", "+tries=1", "+time=1", "@10.199.4.3", "web.test"]);
    assert!(
        !silent.success() && silent.stdout.contains("timed out"),
        "{silent:?}"
    );
}

#[test]
fn bridge_connects_namespaces_and_routes_reach_beyond_it() {
    require_root();
    let hub = Netns::new("hub");
    let a = Netns::new("ba");
    let b = Netns::new("bb");
    let br = Bridge::new(&hub, "br0", "10.199.5.1/24");
    br.attach(&a, "e0", "10.199.5.10/24");
    br.attach(&b, "e0", "10.199.5.20/24");
    let srv = b.spawn_tcp_server(addr("10.199.5.20:9000"));
    bash_connect(&a, "10.199.5.20", srv.addr.port()).expect("a -> b across the bridge");
    // A route through the hub to a prefix only the hub owns.
    hub.add_addr("lo", "10.199.6.1/32");
    a.add_route("10.199.6.0/24 via 10.199.5.1");
    let got = a.ip_json(&["route", "get", "10.199.6.1"]);
    assert_eq!(got[0]["gateway"], "10.199.5.1", "{got}");
    assert_eq!(got[0]["dev"], "e0", "{got}");
    let hub_srv = hub.spawn_tcp_server(addr("10.199.6.1:9001"));
    bash_connect(&a, "10.199.6.1", hub_srv.addr.port()).expect("a -> hub via the route");
    a.set_mtu("e0", 1400);
    assert_eq!(a.ip_json(&["link", "show", "e0"])[0]["mtu"], 1400);
    a.set_sysctl("net.ipv4.ip_local_port_range", "40000 40100");
    assert_eq!(a.sysctl("net.ipv4.ip_local_port_range"), "40000\t40100");
}

#[test]
fn tcpdump_sees_the_handshake_of_a_connection() {
    require_root();
    require_tools(&["tcpdump"]);
    let client = Netns::new("tdc");
    let server = Netns::new("tds");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.8.1/24",
        &server,
        "s0",
        "10.199.8.2/24",
    );
    let srv = server.spawn_tcp_server(addr("10.199.8.2:8088"));
    let capture = client.start_tcpdump("c0", "tcp port 8088");
    bash_connect(&client, "10.199.8.2", srv.addr.port()).expect("connect");
    let captured = capture.stop();
    let packets = captured.packets();
    let syn = packets
        .iter()
        .find(|p| p.contains("10.199.8.1.") && p.contains("> 10.199.8.2.8088: Flags [S]"));
    let syn_ack = packets
        .iter()
        .find(|p| p.contains("10.199.8.2.8088 > 10.199.8.1.") && p.contains("Flags [S.]"));
    assert!(
        syn.is_some() && syn_ack.is_some(),
        "{}\n{}",
        captured.text,
        captured.summary
    );
    assert!(
        captured.summary.contains("packets captured"),
        "{}",
        captured.summary
    );
    assert!(std::fs::metadata(captured.pcap.path()).unwrap().len() > 24);
}

#[test]
fn run_probe_decodes_a_real_run() {
    require_root();
    let ns = Netns::new("probe");
    let other = Netns::new("probep");
    Link::veth_pair(&ns, "x0", "10.199.7.1/24", &other, "y0", "10.199.7.2/24");
    let run = run_probe(&ns, &plan(&[CheckKind::Links], vec![]));
    run.assert_ok();
    assert_eq!(run.hello().uid, 0);
    let links = run.one::<LinksEvidence>();
    let mut names: Vec<&str> = links.links.iter().map(|l| l.name.as_str()).collect();
    names.sort();
    // Oracle: ip -j link in the same namespace.
    let ip = ns.ip_json(&["link", "show"]);
    let mut expected: Vec<&str> = ip
        .as_array()
        .expect("ip -j link array")
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(run.finished(CheckKind::Links).check, CheckKind::Links);
    assert!(run.skipped(CheckKind::Links).is_empty());
    assert_eq!(run.done().checks_completed, 1);
}
