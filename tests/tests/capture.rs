//! The capture check against real traffic in two namespaces joined by a veth pair: a listener
//! (handshake), a closed port and an iptables REJECT tcp-reset (refused), an iptables DROP
//! (unanswered, with SYN retransmissions), DNS to a dnsmasq and to a nameserver whose queries
//! are dropped. The traffic is the probe's own tcp and dns checks run in the same plan. The
//! pcap the probe streams is decoded (coreutils `base64 -d`) into a file and read back with
//! `tcpdump -nn -r`, which must show the same packets the flow summary counts.
//! Needs root: `cargo build -p probe && cargo test -p netdebug-scenarios --test capture`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netdebug_scenarios::pair::{CLI, CLI6, CLI_DEV, SRV, SRV6};
use netdebug_scenarios::{probe_path, ClientServer, ProbeRun};
use protocol::{CaptureSummary, CheckKind, CheckStatus, Event, TcpFlow};
use serde_json::{json, Value};

/// A second server address whose DNS queries iptables drops.
const SRV_SILENT: &str = "10.199.1.3";

#[test]
fn flows_and_pcap_match_the_traffic() {
    let lab = capture_lab();
    lab.listen(8080);
    // 8081: nothing listens (the kernel resets); 8082: REJECT tcp-reset; 8083: DROP;
    // 8084: REJECT with an ICMP port unreachable.
    lab.srv.reject_tcp_port(8082, "tcp-reset");
    lab.srv.drop_tcp_port(8083);
    lab.srv.reject_tcp_port(8084, "icmp-port-unreachable");
    lab.srv.iptables(&[
        "-A", "INPUT", "-d", SRV_SILENT, "-p", "udp", "--dport", "53", "-j", "DROP",
    ]);
    // Names without a record are NXDOMAIN.
    lab.srv
        .spawn_dnsmasq(SRV.parse().unwrap(), &[("capture.test", SRV)]);
    // The silent nameserver first: its query goes unanswered, then dnsmasq answers.
    let resolv = lab.write(
        "resolv.conf",
        &format!("nameserver {SRV_SILENT}\nnameserver {SRV}\noptions timeout:1 attempts:1\n"),
    );

    let mut targets: Vec<Value> = [8080, 8081, 8082, 8083, 8084]
        .iter()
        .map(|p| json!({"label": format!("{SRV}:{p}"), "host": SRV, "port": p}))
        .collect();
    // IPv6: nothing listens on 8085.
    targets.push(json!({"label": format!("[{SRV6}]:8085"), "host": SRV6, "port": 8085}));
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "dns", "capture"],
        "targets": targets,
        // Long enough for one SYN retransmission (1 s) to the DROP port, short of the second (3 s).
        "connect_timeout_ms": 2200,
        "deadline_ms": 12000,
        "dns": {"names": ["capture.test.", "missing.test."], "resolv_conf": resolv.to_str().unwrap(), "aaaa": false},
        "capture": {"max_duration_ms": 10000, "max_packets": 10000, "max_bytes": 1000000},
    });
    let started = Instant::now();
    let run = lab.probe(plan);
    let elapsed = started.elapsed();
    let summary = summary(&run);

    // The capture followed the traffic checks instead of sitting out its 10 s.
    assert_eq!(summary.stopped_by.as_str(), "traffic_done", "{summary:#?}");
    assert!(elapsed < Duration::from_secs(8), "the run took {elapsed:?}");
    assert_eq!(summary.kernel_drops, 0);
    assert_eq!(summary.interface, "any");
    assert!(
        summary
            .filter
            .contains(&format!("(ip host {SRV} and tcp port 8083)")),
        "{}",
        summary.filter
    );
    assert!(
        summary
            .filter
            .contains(&format!("(host {SRV_SILENT} and port 53)")),
        "{}",
        summary.filter
    );

    let flows: BTreeMap<u16, &TcpFlow> = summary
        .tcp_flows
        .iter()
        .map(|f| (f.server.port(), f))
        .collect();
    let (cli4, cli6): (std::net::IpAddr, std::net::IpAddr) =
        (CLI.parse().unwrap(), CLI6.parse().unwrap());
    for f in flows.values() {
        assert!(f.client.ip() == cli4 || f.client.ip() == cli6, "{f:?}");
    }
    let v6 = flows[&8085];
    assert_eq!(
        (v6.client.ip(), v6.handshake.as_str()),
        (cli6, "refused"),
        "{v6:?}"
    );
    assert_eq!(
        flows[&8080].handshake.as_str(),
        "established",
        "{:?}",
        flows[&8080]
    );
    assert!(flows[&8080].handshake_ms.is_some());
    for port in [8081, 8082] {
        let f = flows[&port];
        assert_eq!(f.handshake.as_str(), "refused", "{f:?}");
        assert_eq!(f.rst_from.as_ref().map(|v| v.as_str()), Some("server"));
        assert!(!f.rst_after_data);
    }
    let dropped = flows[&8083];
    assert_eq!(dropped.handshake.as_str(), "unanswered", "{dropped:?}");
    assert!(
        dropped.syn_count >= 2,
        "no SYN retransmission seen: {dropped:?}"
    );
    assert_eq!(dropped.retransmits, dropped.syn_count - 1);
    let rejected = flows[&8084];
    assert_eq!(rejected.handshake.as_str(), "unreachable", "{rejected:?}");
    let about = format!("tcp {} > {}", rejected.client, rejected.server);
    let icmp = summary
        .icmp_errors
        .iter()
        .find(|e| e.about.as_deref() == Some(about.as_str()))
        .unwrap_or_else(|| panic!("no ICMP error about {about}: {:#?}", summary.icmp_errors));
    assert_eq!(icmp.kind.as_str(), "port_unreachable");
    assert_eq!(icmp.from, SRV.parse::<std::net::IpAddr>().unwrap());

    let dns = |name: &str, server: &str| {
        summary
            .dns
            .iter()
            .find(|d| {
                d.name == name && d.server == format!("{server}:53").parse::<SocketAddr>().unwrap()
            })
            .unwrap_or_else(|| panic!("no DNS exchange for {name} to {server}: {:#?}", summary.dns))
    };
    let answered = dns("capture.test.", SRV);
    assert_eq!(answered.rcode.as_ref().map(|v| v.as_str()), Some("NOERROR"));
    assert_eq!(answered.answers, Some(1));
    assert!(
        answered
            .latency_ms
            .is_some_and(|l| (0.0..1000.0).contains(&l)),
        "{answered:?}"
    );
    assert_eq!(
        dns("missing.test.", SRV).rcode.as_ref().map(|v| v.as_str()),
        Some("NXDOMAIN")
    );
    let silent = dns("capture.test.", SRV_SILENT);
    assert_eq!(
        (silent.rcode.as_ref().map(|v| v.as_str()), silent.latency_ms),
        (None, None),
        "{silent:?}"
    );

    // The same packets, as tcpdump reads them from the probe's pcap.
    let pcap = lab.file("probe.pcap");
    write_pcap(&run, &pcap);
    let lines = tcpdump_read(&pcap, None);
    assert_eq!(lines.len() as u64, summary.packets_captured);
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    // On the client's veth each packet is seen once (out or in).
    // Some packet line contains both `a` and `b`.
    let has_line = |a: &str, b: &str| lines.iter().any(|l| l.contains(a) && l.contains(b));
    let syns_to = |port: u16| count(&format!("> {SRV}.{port}: Flags [S],"));
    assert_eq!(syns_to(8083) as u32, dropped.syn_count, "{lines:#?}");
    assert_eq!(
        count(&format!("{SRV}.8083 > ")),
        0,
        "the DROP port answered?"
    );
    for port in [8081, 8082] {
        assert_eq!(syns_to(port), 1);
        assert_eq!(
            count(&format!("IP {SRV}.{port} > {CLI}.")),
            1,
            "one RST from {port}"
        );
        assert!(has_line(&format!("IP {SRV}.{port} > "), "Flags [R.]"));
    }
    assert!(has_line(&format!("IP {SRV}.8080 > "), "Flags [S.]"));
    assert_eq!(
        count(&format!("IP6 {SRV6}.8085 > {CLI6}.")),
        1,
        "one RST over IPv6"
    );
    // tcpdump prints the quoted flow of each ICMP error.
    let icmp_lines = count(&format!("{SRV} tcp port 8084 unreachable"));
    assert_eq!(icmp_lines as u32, icmp.count, "{lines:#?}");
    let silent_queries = lines
        .iter()
        .filter(|l| l.contains(&format!("> {SRV_SILENT}.53: ")) && l.contains("A? capture.test."))
        .count();
    assert_eq!(silent_queries, silent.queries.unwrap() as usize);
    assert!(has_line(&format!("IP {SRV}.53 > "), "A 10.199.1.1"));
    assert!(has_line(&format!("IP {SRV}.53 > "), "NXDomain"));
    // tcpdump applies the flow's own filter to the file and finds every packet of it.
    let flow_lines = tcpdump_read(&pcap, Some(&format!("tcp port {}", dropped.client.port())));
    assert_eq!(flow_lines.len() as u64, dropped.packets);
}

#[test]
fn a_name_target_is_resolved_while_capturing() {
    let lab = capture_lab();
    lab.listen(8080);
    lab.srv
        .spawn_dnsmasq(SRV.parse().unwrap(), &[("web.capture.test", SRV)]);
    let resolv = lab.write("resolv.conf", &format!("nameserver {SRV}\n"));
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "capture"],
        "targets": [{"label": "web", "host": "web.capture.test", "port": 8080}],
        "deadline_ms": 8000,
        "dns": {"resolv_conf": resolv.to_str().unwrap(), "aaaa": false},
        "capture": {"max_duration_ms": 5000, "max_packets": 1000, "max_bytes": 1000000},
    });
    let run = lab.probe(plan);
    let summary = summary(&run);
    assert!(
        summary.filter.starts_with(&format!(
            "(ip host {SRV} and tcp port 8080) or (host {SRV} and port 53)"
        )),
        "{}",
        summary.filter
    );
    // The lookup the probe made for the target is in the capture, and so is the connect.
    let query = summary
        .dns
        .iter()
        .find(|d| d.name == "web.capture.test.")
        .expect("the target's lookup");
    assert_eq!(
        (
            query.qtype.as_str(),
            query.rcode.as_ref().map(|v| v.as_str())
        ),
        ("A", Some("NOERROR"))
    );
    assert_eq!(summary.tcp_flows.len(), 1, "{:#?}", summary.tcp_flows);
    assert_eq!(summary.tcp_flows[0].handshake.as_str(), "established");
    let pcap = lab.file("name.pcap");
    write_pcap(&run, &pcap);
    let lines = tcpdump_read(&pcap, None);
    assert!(
        lines.iter().any(|l| l.contains("A? web.capture.test.")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("> {SRV}.8080: Flags [S],"))),
        "{lines:#?}"
    );
}

#[test]
fn too_many_targets_fall_back_to_their_ports_and_say_so() {
    let lab = capture_lab();
    lab.listen(8080);
    // One real target and 1000 route-only ones: a filter naming each address would be far
    // longer than the kernel's 4096 instructions.
    let mut targets = vec![json!({"label": "web", "host": SRV, "port": 8080})];
    for i in 0..1000u32 {
        let host = format!("10.199.{}.{}", 2 + i / 250, 1 + i % 250);
        targets.push(json!({"label": host, "host": host}));
    }
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "capture"],
        "targets": targets,
        "deadline_ms": 8000,
        "capture": {"max_duration_ms": 5000, "max_packets": 1000, "max_bytes": 1000000},
    });
    let run = lab.probe(plan);
    assert_eq!(
        run.finished(CheckKind::Capture).status,
        CheckStatus::Completed
    );
    let summary = summary(&run);
    assert!(
        summary.filter.starts_with("tcp port 8080 or "),
        "{}",
        summary.filter
    );
    assert!(
        summary
            .notes
            .iter()
            .any(|n| n.contains("1001 targets is too large for the kernel")),
        "{:?}",
        summary.notes
    );
    assert_eq!(summary.tcp_flows.len(), 1, "{:#?}", summary.tcp_flows);
    assert_eq!(summary.tcp_flows[0].handshake.as_str(), "established");
}

#[test]
fn user_filter_on_one_interface_with_full_packets() {
    let lab = capture_lab();
    lab.listen(8080);
    let targets: Vec<Value> = [8080, 8081]
        .iter()
        .map(|p| json!({"label": format!("{SRV}:{p}"), "host": SRV, "port": p}))
        .collect();
    let plan = json!({
        "v": 1,
        "checks": ["tcp", "capture"],
        "targets": targets,
        "deadline_ms": 8000,
        "capture": {"interface": CLI_DEV, "filter": "tcp dst port 8080 or src port 8080",
                    "snaplen": 65535, "max_duration_ms": 5000, "max_packets": 1000, "max_bytes": 1000000},
    });
    let run = lab.probe(plan);
    let summary = summary(&run);
    assert_eq!(summary.interface, CLI_DEV);
    assert_eq!(summary.filter, "tcp dst port 8080 or src port 8080");
    assert_eq!(
        summary.tcp_flows.len(),
        1,
        "only the 8080 flow passes: {:#?}",
        summary.tcp_flows
    );
    assert_eq!(summary.tcp_flows[0].handshake.as_str(), "established");

    let pcap = lab.file("user.pcap");
    write_pcap(&run, &pcap);
    let lines = tcpdump_read(&pcap, None);
    assert_eq!(lines.len() as u64, summary.packets_captured);
    assert!(lines.iter().all(|l| l.contains(".8080")), "{lines:#?}");
    // Full packets: every record kept whole.
    for (incl, orig) in pcap_records(&pcap) {
        assert_eq!(incl, orig);
    }
}

#[test]
fn headers_only_by_default() {
    let lab = capture_lab();
    // A long name makes the DNS packets longer than 128 bytes.
    let long = format!("{}.capture.test.", "a".repeat(60));
    lab.srv
        .spawn_dnsmasq(SRV.parse().unwrap(), &[(long.trim_end_matches('.'), SRV)]);
    let resolv = lab.write("resolv.conf", &format!("nameserver {SRV}\n"));
    let plan = json!({
        "v": 1,
        "checks": ["dns", "capture"],
        "deadline_ms": 8000,
        "dns": {"names": [long], "resolv_conf": resolv.to_str().unwrap()},
        "capture": {"max_duration_ms": 5000, "max_packets": 1000, "max_bytes": 1000000},
    });
    let run = lab.probe(plan);
    let summary = summary(&run);
    assert_eq!(summary.snaplen, 128);
    let pcap = lab.file("snap.pcap");
    write_pcap(&run, &pcap);
    let records = pcap_records(&pcap);
    assert!(!records.is_empty());
    assert!(records.iter().all(|(incl, _)| *incl <= 16 + 128));
    assert!(
        records.iter().any(|(incl, orig)| incl < orig),
        "nothing was cut: {records:?}"
    );
    // The question still fits in the kept part: the summary names the query.
    assert!(
        summary
            .dns
            .iter()
            .any(|d| d.name == long && d.rcode.as_ref().map(|v| v.as_str()) == Some("NOERROR")),
        "{:#?}",
        summary.dns
    );
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("snapshot length 144"));
}

#[test]
fn a_filter_that_does_not_compile_names_the_column() {
    let lab = capture_lab();
    let (run, error) = failed_capture(&lab, json!({"filter": "tcp port http"}));
    assert_eq!(
        error,
        "filter: expected a port number, found `http` at column 10"
    );
    assert!(pcap_chunks(&run).is_empty());
}

/// A capture-only run with small limits plus `options`: the check must end in error, whose
/// message is returned with the run.
fn failed_capture(lab: &ClientServer, options: Value) -> (ProbeRun, String) {
    let mut capture = json!({"max_duration_ms": 1000, "max_packets": 10, "max_bytes": 10000});
    for (k, v) in options.as_object().expect("capture options") {
        capture[k] = v.clone();
    }
    let run = lab.probe(json!({
        "v": 1, "checks": ["capture"], "deadline_ms": 3000, "capture": capture,
    }));
    let finished = run.finished(CheckKind::Capture);
    assert_eq!(finished.status, CheckStatus::Error, "{finished:?}");
    let error = finished.error.clone().unwrap_or_default();
    (run, error)
}

#[test]
fn an_interface_that_does_not_exist_is_named() {
    let lab = capture_lab();
    let (_, error) = failed_capture(&lab, json!({"interface": "ndt-nosuch0"}));
    assert!(error.contains("`ndt-nosuch0` does not exist"), "{error}");
    // The kernel agrees.
    assert!(!lab
        .cli
        .try_exec(&["ip", "link", "show", "ndt-nosuch0"])
        .success());
}

#[test]
fn zero_and_absurd_limits_are_refused_before_anything_runs() {
    let cases = [
        (
            json!({"max_duration_ms": 0, "max_packets": 10, "max_bytes": 10}),
            "greater than zero",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 0, "max_bytes": 10}),
            "greater than zero",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 10, "max_bytes": 0}),
            "greater than zero",
        ),
        (
            json!({"max_duration_ms": 700000, "max_packets": 10, "max_bytes": 10}),
            "too large",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 10, "max_bytes": 2147483648u64}),
            "too large",
        ),
        (
            json!({"max_duration_ms": 1000, "max_packets": 10, "max_bytes": 10, "snaplen": 10}),
            "snaplen 10 out of range",
        ),
    ];
    for (capture, message) in cases {
        let plan = json!({"v": 1, "checks": ["capture"], "capture": capture});
        let out = Command::new(probe_path())
            .arg(plan.to_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{plan}: {stderr}");
        assert!(stderr.contains(message), "{plan}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(out.stdout.is_empty(), "no events for a refused plan");
    }
}

// ---- helpers -------------------------------------------------------------------------------

/// The client and server pair (IPv4 and IPv6), with SRV_SILENT on the server side too.
fn capture_lab() -> ClientServer {
    let lab = ClientServer::new("cap");
    lab.add_srv_addr(SRV_SILENT);
    lab.enable_v6();
    lab
}

fn summary(run: &ProbeRun) -> CaptureSummary {
    run.one::<CaptureSummary>().clone()
}

fn pcap_chunks(run: &ProbeRun) -> Vec<&protocol::PcapChunk> {
    run.events
        .iter()
        .filter_map(|e| match &e.event {
            Event::PcapChunk(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Decode the chunks in order (each is padded base64 of its own) with coreutils.
fn write_pcap(run: &ProbeRun, path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for (i, chunk) in pcap_chunks(run).into_iter().enumerate() {
        assert_eq!(chunk.index as usize, i, "chunks in order");
        let mut child = Command::new("base64")
            .arg("-d")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(chunk.data.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "chunk {i} is not base64");
        file.write_all(&out.stdout).unwrap();
    }
}

/// `tcpdump -nn -r FILE [EXPR]`, one line per packet.
fn tcpdump_read(file: &Path, expr: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new("tcpdump");
    cmd.args(["-nn", "-r"]).arg(file);
    if let Some(e) = expr {
        cmd.arg(e);
    }
    let out = cmd.output().expect("tcpdump is installed");
    assert!(
        out.status.success(),
        "tcpdump cannot read the probe's pcap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// (incl_len, orig_len) of every record of a classic little-endian pcap file.
fn pcap_records(file: &Path) -> Vec<(u32, u32)> {
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "microsecond pcap, little-endian"
    );
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let (incl, orig) = (u32_at(at + 8), u32_at(at + 12));
        records.push((incl, orig));
        at += 16 + incl as usize;
    }
    assert_eq!(at, bytes.len(), "records fill the file exactly");
    records
}
