//! Privilege awareness: the probe run as uid 65534 with every capability dropped (setpriv,
//! inside a namespace the test made) reports who it is in `hello`, skips the capture check
//! naming the missing capability, and still gathers the evidence of every check that needs no
//! privilege. The kernel's view of a process started the same way (/proc/self/status under
//! the same setpriv) is the oracle for the uid and capabilities.
//! Needs root: `cargo build -p probe && cargo test -p netdebug-scenarios --test privilege`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use netdebug_scenarios::{probe_path, run_probe_command, Netns, ProbeRun};
use protocol::{CheckKind, CheckStatus, DnsLookupEvidence, Event, Plan, TcpEvidence, TcpOutcome};
use serde_json::json;

const UNPRIVILEGED: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
];

/// Checks that need no capability: each must complete with evidence of its own kinds.
const UNPRIVILEGED_CHECKS: &[(CheckKind, &[&str])] = &[
    (CheckKind::Dns, &["dns_config", "dns_lookup"]),
    (CheckKind::Tcp, &["tcp"]),
    (CheckKind::Links, &["links"]),
    (CheckKind::Route, &["route", "rules"]),
    (CheckKind::Sockets, &["sockets"]),
    (CheckKind::Sysctls, &["sysctls"]),
    (CheckKind::Counters, &["counters"]),
    (CheckKind::Conntrack, &["conntrack"]),
];

#[test]
fn without_privileges_capture_is_skipped_and_the_rest_still_runs() {
    let ns = Netns::new("priv");
    // A dnsmasq and a listener inside the namespace: the unprivileged lookup and connect get
    // real answers.
    let _dns = ns.spawn_dnsmasq("127.0.0.1".parse().unwrap(), &[("priv.test", "127.0.0.9")]);
    let server = ns.spawn_tcp_server("127.0.0.1:0".parse().unwrap());
    // Everything the unprivileged probe reads must be readable by uid 65534.
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let probe = dir.path().join("netdebug-probe");
    std::fs::copy(probe_path(), &probe).unwrap();
    for (path, mode) in [(dir.path(), 0o755), (&probe, 0o755), (&resolv, 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    let mut checks = vec!["capture"];
    checks.extend(UNPRIVILEGED_CHECKS.iter().map(|(c, _)| c.as_str()));
    let plan: Plan = serde_json::from_value(json!({
        "v": 1,
        "checks": checks,
        "targets": [{"label": "server", "host": "127.0.0.1", "port": server.addr.port()}],
        "deadline_ms": 8000,
        "dns": {"names": ["priv.test."], "resolv_conf": resolv.to_str().unwrap(), "aaaa": false},
        "capture": {"max_duration_ms": 2000, "max_packets": 100, "max_bytes": 100000},
    }))
    .unwrap();
    // Enter the namespace first (ip netns exec), then drop privileges, then run the probe.
    let mut argv: Vec<String> = UNPRIVILEGED.iter().map(|s| s.to_string()).collect();
    argv.push(probe.to_str().unwrap().to_string());
    argv.push(serde_json::to_string(&plan).unwrap());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let run = run_probe_command(&mut ns.command(&argv), Duration::from_secs(20));
    run.assert_ok();

    // hello: who the probe is, as the kernel sees a process started the same way.
    let hello = run.hello();
    assert_eq!((hello.uid, hello.euid), (65534, 65534));
    assert!(hello.capabilities.is_empty(), "{:?}", hello.capabilities);
    let mut oracle = UNPRIVILEGED.to_vec();
    oracle.extend(["grep", "-E", "^(Uid|CapEff):", "/proc/self/status"]);
    let status = ns.exec(&oracle).stdout;
    assert!(status.contains("Uid:\t65534\t65534"), "{status}");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");

    // capture: skipped, naming the capability, never an error, no packets.
    let skipped = run.skipped(CheckKind::Capture);
    assert_eq!(skipped.len(), 1, "{skipped:#?}");
    assert_eq!(
        skipped[0].missing_capability,
        Some(protocol::Capability::NetRaw.into())
    );
    assert!(
        skipped[0].reason.contains("CAP_NET_RAW"),
        "{}",
        skipped[0].reason
    );
    assert_eq!(
        run.finished(CheckKind::Capture).status,
        CheckStatus::Skipped
    );
    assert!(!run
        .events
        .iter()
        .any(|e| matches!(e.event, Event::PcapChunk(_))));

    // Every unprivileged check completed with its own evidence.
    assert_evidence_of_every_unprivileged_check(&run);
    // And the evidence is real: the lookup was answered, the connect succeeded.
    let lookup = run.one::<DnsLookupEvidence>();
    assert_eq!(
        lookup.addresses,
        vec!["127.0.0.9".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(run.one::<TcpEvidence>().outcome, TcpOutcome::Ok);
    let done = run.done();
    assert_eq!((done.checks_skipped, done.checks_failed), (1, 0));

    // The same plan as root captures: the skip was about privilege, not the plan.
    let root = run_probe_command(
        Command::new(probe_path()).args([
            "--netns",
            ns.name(),
            &serde_json::to_string(&plan).unwrap(),
        ]),
        Duration::from_secs(20),
    );
    root.assert_ok();
    assert_eq!(
        root.finished(CheckKind::Capture).status,
        CheckStatus::Completed
    );
}

#[track_caller]
fn assert_evidence_of_every_unprivileged_check(run: &ProbeRun) {
    let kinds: Vec<String> = run
        .all_evidence()
        .map(|e| {
            serde_json::to_value(e).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut missing = Vec::new();
    for (check, expected) in UNPRIVILEGED_CHECKS {
        let finished = run.finished(*check);
        if finished.status != CheckStatus::Completed {
            missing.push(format!(
                "{check}: {:?} {:?}",
                finished.status, finished.error
            ));
        }
        for kind in *expected {
            if !kinds.iter().any(|k| k == kind) {
                missing.push(format!("{check}: no `{kind}` evidence"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "unprivileged checks without evidence: {missing:#?}"
    );
}
