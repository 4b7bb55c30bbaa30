//! Both ends (`kubectl-netdebug local --netns SRC --peer-netns DST`): the client runs a peer
//! probe in the destination namespace, arms its capture, releases the source, stops the peer,
//! and the verdict says where the packets died. Each fault is made for real on a
//!
//!     source s0 10.199.94.2 -- r0 10.199.94.1 router r1 10.199.95.1 -- d0 10.199.95.2 dest
//!
//! path (and, for the asymmetric return, a second link r2 10.199.96.1 -- d1 10.199.96.2), and
//! tcpdump on the same interfaces is the oracle for what crossed where. Needs root and the
//! workspace built (`cargo build --workspace`: the client and the probe).

use std::process::Command;
use std::time::Duration;

use netdebug_scenarios::*;
use serde_json::Value;

const SRC: &str = "10.199.94.2";
const DST: &str = "10.199.95.2";
const PORT: u16 = 8080;

struct Ends {
    src: Netns,
    router: Netns,
    dst: Netns,
}

/// The three namespaces, routed, with nothing listening yet.
fn ends(tag: &str) -> Ends {
    require_root();
    require_tools(&["ip", "iptables", "tcpdump", "sysctl"]);
    let src = Netns::new(&format!("{tag}s"));
    let router = Netns::new(&format!("{tag}r"));
    let dst = Netns::new(&format!("{tag}d"));
    Link::veth_pair(
        &src,
        "s0",
        "10.199.94.2/24",
        &router,
        "r0",
        "10.199.94.1/24",
    );
    Link::veth_pair(
        &router,
        "r1",
        "10.199.95.1/24",
        &dst,
        "d0",
        "10.199.95.2/24",
    );
    src.add_route("default via 10.199.94.1");
    dst.add_route("default via 10.199.95.1");
    router.set_sysctl("net.ipv4.ip_forward", "1");
    Ends { src, router, dst }
}

impl Ends {
    /// A server on DST:PORT that accepts and holds every connection.
    fn serve(&self) {
        self.dst
            .spawn_tcp_server(format!("{DST}:{PORT}").parse().unwrap());
    }
}

fn client_path() -> std::path::PathBuf {
    let path = netdebug_scenarios::probe::target_dir().join("kubectl-netdebug");
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// `kubectl-netdebug local --netns SRC --peer-netns DST --to DST:PORT -o json` and `extra`.
fn both_ends(e: &Ends, extra: &[&str]) -> (Value, CmdOutput) {
    both_ends_with(e, "1500ms", extra)
}

/// [`both_ends`] with its connects waiting `connect_timeout`.
fn both_ends_with(e: &Ends, connect_timeout: &str, extra: &[&str]) -> (Value, CmdOutput) {
    let to = format!("{DST}:{PORT}");
    let mut argv = vec![
        "local",
        "--netns",
        e.src.name(),
        "--peer-netns",
        e.dst.name(),
        "--to",
        &to,
        "--connect-timeout",
        connect_timeout,
        "--timeout",
        "12s",
        "-o",
        "json",
    ];
    argv.extend_from_slice(extra);
    let mut command = Command::new(client_path());
    command
        .args(&argv)
        .env("NETDEBUG_PROBE", probe_path())
        .env("NO_COLOR", "1");
    let out = run_with_timeout(&mut command, Duration::from_secs(40));
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}):\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        )
    });
    (doc, out)
}

fn rules(doc: &Value) -> Vec<String> {
    doc["verdict"]["rules_fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// The primary finding's rule code.
fn primary(doc: &Value) -> String {
    doc["verdict"]["findings"][0]["rule"]
        .as_str()
        .unwrap_or_else(|| panic!("no finding:\n{:#}", doc["verdict"]))
        .to_string()
}

/// The primary finding is `rule`.
#[track_caller]
fn assert_primary(doc: &Value, rule: &str) {
    assert_eq!(primary(doc), rule, "{:#}", doc["verdict"]);
}

/// Every `text` a reader sees: headline, cause, evidence lines, findings' evidence.
fn words(doc: &Value) -> String {
    serde_json::to_string(&doc["verdict"]).unwrap()
}

/// The peer's capture summary (the first peer's), as JSON.
fn peer_capture(doc: &Value) -> Value {
    let events = doc["peers"][0]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no peer events:\n{:#}", doc["peers"]));
    events
        .iter()
        .find(|e| e["type"] == "evidence" && e["data"]["kind"] == "capture_summary")
        .unwrap_or_else(|| panic!("the peer sent no capture summary: {events:#?}"))["data"]
        .clone()
}

/// The flags of every mark the peer's capture kept of flows from SRC, as `from:flags`.
fn peer_marks(doc: &Value) -> Vec<String> {
    let capture = peer_capture(doc);
    let mut marks = Vec::new();
    for flow in capture["tcp_flows"].as_array().unwrap() {
        if !flow["client"].as_str().unwrap().starts_with(SRC) {
            continue;
        }
        for m in flow["marks"].as_array().cloned().unwrap_or_default() {
            marks.push(format!(
                "{}:{}",
                m["from"].as_str().unwrap(),
                m["flags"].as_str().unwrap()
            ));
        }
    }
    marks
}

/// tcpdump lines of TCP between SRC and DST:PORT on `iface` in `ns`.
fn tcpdump_lines(captured: &Captured) -> Vec<String> {
    captured.packets().iter().map(|l| l.to_string()).collect()
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// Oracle: the SYN arrived on the captured interface, and no SYN-ACK left it.
#[track_caller]
fn assert_syn_in_nothing_out(lines: &[String]) {
    assert!(count(lines, "Flags [S]") >= 1, "{lines:#?}");
    assert_eq!(count(lines, "Flags [S.]"), 0, "{lines:#?}");
}

fn filter() -> String {
    format!("tcp and host {SRC} and port {PORT}")
}

#[test]
fn syn_dropped_on_the_router_is_lost_between_the_ends() {
    let e = ends("ba");
    e.serve();
    e.router.iptables(&[
        "-A", "FORWARD", "-p", "tcp", "--syn", "-d", DST, "--dport", "8080", "-j", "DROP",
    ]);
    let at_src = e.src.start_tcpdump("s0", &filter());
    let at_dst = e.dst.start_tcpdump("d0", &filter());
    let (doc, _) = both_ends(&e, &[]);
    let (src_lines, dst_lines) = (tcpdump_lines(&at_src.stop()), tcpdump_lines(&at_dst.stop()));
    // Oracle: SYNs left the source; nothing reached the destination's interface.
    assert!(count(&src_lines, "Flags [S]") >= 1, "{src_lines:#?}");
    assert_eq!(dst_lines.len(), 0, "{dst_lines:#?}");
    assert!(peer_marks(&doc).is_empty(), "the peer saw nothing either");
    assert_primary(&doc, "syn_lost_between_ends");
    // The source's own finding stays, under the one that locates it.
    assert!(
        rules(&doc).contains(&"tcp_timeout".to_string()),
        "{:?}",
        rules(&doc)
    );
}

#[test]
fn syn_dropped_in_the_destination_namespace_reached_it_and_got_no_reply() {
    let e = ends("bb");
    e.serve();
    e.dst
        .iptables(&["-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"]);
    let at_dst = e.dst.start_tcpdump("d0", &filter());
    let (doc, _) = both_ends(&e, &[]);
    let dst_lines = tcpdump_lines(&at_dst.stop());
    // Oracle: the SYN arrived on d0, and no SYN-ACK left it.
    assert_syn_in_nothing_out(&dst_lines);
    let marks = peer_marks(&doc);
    assert!(marks.contains(&"client:S".to_string()), "{marks:?}");
    assert!(!marks.iter().any(|m| m.starts_with("server:")), "{marks:?}");
    assert_primary(&doc, "destination_firewall_drop");
    assert!(words(&doc).contains("firewall"), "{:#}", doc["verdict"]);
}

#[test]
fn syn_ack_dropped_on_the_way_back_is_the_return_path() {
    let e = ends("bc");
    e.serve();
    e.router.iptables(&[
        "-A", "FORWARD", "-p", "tcp", "-s", DST, "--sport", "8080", "-j", "DROP",
    ]);
    let at_src = e.src.start_tcpdump("s0", &filter());
    let at_dst = e.dst.start_tcpdump("d0", &filter());
    let (doc, _) = both_ends(&e, &[]);
    let (src_lines, dst_lines) = (tcpdump_lines(&at_src.stop()), tcpdump_lines(&at_dst.stop()));
    // Oracle: the SYN-ACK left the destination and never reached the source.
    assert!(count(&dst_lines, "Flags [S.]") >= 1, "{dst_lines:#?}");
    assert_eq!(count(&src_lines, "Flags [S.]"), 0, "{src_lines:#?}");
    assert!(peer_marks(&doc).contains(&"server:S.".to_string()));
    assert_primary(&doc, "reply_lost_on_return_path");
}

#[test]
fn reply_routed_back_another_way_and_dropped_by_rp_filter_is_the_return_path() {
    let e = ends("bd");
    e.serve();
    // A second link; the destination routes its replies to the source over it, and the
    // router's strict reverse-path filter drops what arrives there from 10.199.95.2.
    Link::veth_pair(
        &e.router,
        "r2",
        "10.199.96.1/24",
        &e.dst,
        "d1",
        "10.199.96.2/24",
    );
    e.dst.add_route("10.199.94.0/24 via 10.199.96.1 dev d1");
    // The destination itself takes the SYN on d0 although its way back is d1, and asks for
    // the router's address on d1 as 10.199.96.2 (else the router's strict filter drops the
    // ARP request, sent as 10.199.95.2, before any SYN-ACK can leave).
    e.dst.set_sysctl("net.ipv4.conf.all.rp_filter", "0");
    e.dst.set_sysctl("net.ipv4.conf.d0.rp_filter", "0");
    e.dst.set_sysctl("net.ipv4.conf.d1.arp_announce", "2");
    e.router.set_sysctl("net.ipv4.conf.all.rp_filter", "1");
    e.router.set_sysctl("net.ipv4.conf.r2.rp_filter", "1");
    let at_src = e.src.start_tcpdump("s0", &filter());
    let at_d1 = e.dst.start_tcpdump("d1", &filter());
    let (doc, _) = both_ends(&e, &[]);
    let (src_lines, d1_lines) = (tcpdump_lines(&at_src.stop()), tcpdump_lines(&at_d1.stop()));
    // Oracle: the SYN-ACK left by d1 (not d0, where the SYN came in) and never arrived.
    assert!(
        count(&d1_lines, "Flags [S.]") >= 1,
        "{d1_lines:#?}\n{:#}\n{:?}",
        doc["verdict"]["headline"],
        peer_marks(&doc)
    );
    assert_eq!(count(&src_lines, "Flags [S.]"), 0, "{src_lines:#?}");
    assert_primary(&doc, "reply_lost_on_return_path");
    let said = words(&doc);
    assert!(said.contains("d1") && said.contains("d0"), "{said}");
    assert!(said.contains("rp_filter"), "{said}");
}

#[test]
fn listener_on_loopback_only_is_named_by_the_reset() {
    let e = ends("be");
    e.dst
        .spawn_tcp_server(format!("127.0.0.1:{PORT}").parse().unwrap());
    let at_dst = e.dst.start_tcpdump("d0", &filter());
    let (doc, _) = both_ends(&e, &[]);
    let dst_lines = tcpdump_lines(&at_dst.stop());
    // Oracle: the destination answered the SYN with a RST.
    assert!(count(&dst_lines, "Flags [R.]") >= 1, "{dst_lines:#?}");
    assert!(peer_marks(&doc).iter().any(|m| m.starts_with("server:R")));
    assert_primary(&doc, "reset_by_destination");
    assert!(
        words(&doc).contains(&format!("127.0.0.1:{PORT}")),
        "{:#}",
        doc["verdict"]
    );
}

#[test]
fn full_accept_queue_drops_the_syn_inside_the_destination() {
    let e = ends("bf");
    let server = e.dst.spawn_tcp_server_with(
        format!("{DST}:{PORT}").parse().unwrap(),
        TcpServerOptions {
            backlog: 1,
            accept: Accept::Never,
        },
    );
    // backlog 1 holds 2 connections; the 3rd handshake fills the SYN's way in.
    let _held = e.router.connect_clients(server.addr, 2, ClientClose::Hold);
    let at_dst = e.dst.start_tcpdump("d0", &filter());
    let (doc, _) = both_ends(&e, &[]);
    let dst_lines = tcpdump_lines(&at_dst.stop());
    // Oracle: the source's SYN arrived and nothing answered it.
    assert_syn_in_nothing_out(&dst_lines);
    assert_primary(&doc, "destination_accept_queue_full");
    assert!(words(&doc).contains("accept queue"), "{:#}", doc["verdict"]);
}

#[test]
fn mtu_lowered_in_the_middle_with_icmp_suppressed_is_located_between_the_ends() {
    let e = ends("bg");
    e.serve();
    // Only the router's side is lowered: the destination still announces MSS 1460, so full
    // segments are too large for the router, which says nothing.
    e.router.set_mtu("r1", 1280);
    e.router.iptables(&[
        "-A",
        "FORWARD",
        "-p",
        "icmp",
        "--icmp-type",
        "fragmentation-needed",
        "-j",
        "DROP",
    ]);
    e.router.iptables(&[
        "-A",
        "OUTPUT",
        "-p",
        "icmp",
        "--icmp-type",
        "fragmentation-needed",
        "-j",
        "DROP",
    ]);
    let at_dst = e.dst.start_tcpdump("d0", &filter());
    let (doc, _) = both_ends(&e, &["--mtu"]);
    let dst_lines = tcpdump_lines(&at_dst.stop());
    // Oracle: some data arrived at the destination, none of it larger than the 1280 link.
    let lengths: Vec<u32> = dst_lines
        .iter()
        .filter(|l| l.contains(&format!("> {DST}.{PORT}")))
        .filter_map(|l| {
            let after = l.rsplit("length ").next()?;
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    assert!(lengths.iter().any(|&n| n > 0), "{dst_lines:#?}");
    assert!(lengths.iter().all(|&n| n <= 1240), "{lengths:?}");
    assert_primary(&doc, "mtu_blackhole_between_ends");
}

#[test]
fn a_healthy_path_agrees_at_both_ends() {
    let e = ends("bh");
    e.serve();
    let (doc, out) = both_ends(&e, &[]);
    assert_eq!(doc["status"], "healthy", "{:#}", doc["verdict"]);
    assert_eq!(out.status.code(), Some(0));
    let marks = peer_marks(&doc);
    for m in ["client:S", "server:S.", "client:."] {
        assert!(marks.contains(&m.to_string()), "{m} missing from {marks:?}");
    }
    assert_eq!(doc["peers"][0]["label"], format!("netns/{}", e.dst.name()));
}

#[test]
fn both_ends_writes_one_pcap_per_end() {
    let e = ends("bi");
    e.serve();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.pcap");
    let (_, out) = both_ends(&e, &["-w", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    for file in ["trace.pcap", "trace.peer-1.pcap"] {
        let file = dir.path().join(file);
        // Oracle: tcpdump reads each file and finds the handshake's SYN in it.
        let read = run_with_timeout(
            Command::new("tcpdump").args(["-nn", "-r", file.to_str().unwrap()]),
            Duration::from_secs(10),
        );
        let text = &read.stdout;
        assert!(text.contains("Flags [S]"), "{}: {text}", file.display());
    }
}

#[test]
fn a_peer_namespace_that_does_not_exist_is_refused_before_anything_runs() {
    let e = ends("bj");
    let mut command = Command::new(client_path());
    command
        .args([
            "local",
            "--netns",
            e.src.name(),
            "--peer-netns",
            "ndt-no-such-namespace",
            "--to",
            &format!("{DST}:{PORT}"),
        ])
        .env("NETDEBUG_PROBE", probe_path());
    let out = run_with_timeout(&mut command, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.contains("ndt-no-such-namespace"),
        "{}",
        out.stderr
    );
}

/// Two destinations, a peer in each (`--peer-netns` twice): each connection is judged by the
/// end that holds its address, so the one dropping its port is named and the other is not.
#[test]
fn two_peers_each_judge_the_connections_to_their_own_address() {
    let e = ends("bk");
    e.serve();
    let other = Netns::new("bk2");
    Link::veth_pair(
        &e.router,
        "r3",
        "10.199.97.1/24",
        &other,
        "e0",
        "10.199.97.2/24",
    );
    other.add_route("default via 10.199.97.1");
    other.spawn_tcp_server("10.199.97.2:8080".parse().unwrap());
    other.iptables(&["-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"]);
    let mut command = Command::new(client_path());
    command
        .args([
            "local",
            "--netns",
            e.src.name(),
            "--peer-netns",
            e.dst.name(),
            "--peer-netns",
            other.name(),
            "--to",
            &format!("{DST}:{PORT}"),
            "--to",
            "10.199.97.2:8080",
            "--connect-timeout",
            "1500ms",
            "-o",
            "json",
        ])
        .env("NETDEBUG_PROBE", probe_path());
    let out = run_with_timeout(&mut command, Duration::from_secs(40));
    let doc: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}\n{}", out.stdout, out.stderr));
    assert_eq!(doc["peers"][0]["address"], DST, "{:#}", doc["peers"]);
    assert_eq!(doc["peers"][1]["address"], "10.199.97.2");
    assert_primary(&doc, "destination_firewall_drop");
    let cause = doc["verdict"]["cause"].as_str().unwrap_or("");
    assert!(cause.contains(other.name()), "{cause}");
    assert!(!cause.contains(e.dst.name()), "{cause}");
    let connections = doc["verdict"]["connections"].as_array().unwrap();
    let worked = connections
        .iter()
        .find(|c| c["server"] == format!("{DST}:{PORT}"))
        .expect("the connection to the healthy destination");
    assert_eq!(worked["outcome"], "worked", "{worked:#}");
}

/// "Some requests time out": rounds of connects while the destination drops every 5th SYN in
/// its own namespace. Every failed attempt is located (the SYN arrived, nothing answered) and
/// the rest agree at both ends; the DROP rule's counter is the oracle for how many.
#[test]
fn intermittent_drops_inside_the_destination_are_located_for_every_failed_attempt() {
    let e = ends("bl");
    e.serve();
    e.dst
        .every_nth("INPUT", "-p tcp --syn --dport 8080", 5, "DROP");
    // Below the kernel's 1 s SYN retransmission: a dropped SYN is one failed attempt.
    let (doc, _) = both_ends_with(&e, "500ms", &["--repeat", "20", "--rate", "50"]);
    let dropped = e.dst.input_rule_packets(1);
    assert_eq!(dropped, 4, "every 5th of 20 SYNs");
    assert_primary(&doc, "destination_firewall_drop");
    assert!(
        rules(&doc).contains(&"tcp_intermittent".to_string()),
        "{:?}",
        rules(&doc)
    );
    let connections = doc["verdict"]["connections"].as_array().unwrap();
    let outcomes = |o: &str| connections.iter().filter(|c| c["outcome"] == o).count() as u64;
    assert_eq!(outcomes("no_reply"), dropped, "{connections:#?}");
    assert_eq!(outcomes("worked"), 20 - dropped, "{connections:#?}");
}
