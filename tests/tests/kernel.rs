//! The sysctls, conntrack and counters checks against `sysctl -n`, /proc + `conntrack -C`, and
//! `nstat`, in namespaces this test makes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use netdebug_scenarios::{
    json_plan, run_probe, run_probe_unprivileged, Accept, Link, Netns, ProbeRun, TcpServerOptions,
};
use protocol::{
    CheckStatus, ConntrackEvidence, CountersEvidence, Event, Evidence, Open, Sysctl,
    SysctlsEvidence,
};
use serde_json::{json, Value};

/// The probe run in `ns` as root with a JSON plan; it must exit 0 with a complete stream.
fn probe(ns: &Netns, plan: Value) -> ProbeRun {
    let run = run_probe(ns, &json_plan(plan));
    run.assert_ok();
    run
}

#[test]
fn sysctls_agree_with_sysctl() {
    let a = Netns::new("sc");
    let b = Netns::new("sc");
    Link::veth_pair(&a, "v0", "10.199.30.1/24", &b, "v1", "");
    a.sh(
        "sysctl -qw net.ipv4.conf.v0.rp_filter=1 net.ipv4.conf.all.rp_filter=2 \
         && sysctl -qw net.ipv4.ip_local_port_range='20000 29999' net.core.somaxconn=77",
    );
    let run = probe(
        &a,
        json!({"v": 1, "checks": ["sysctls"],
            "targets": [{"label": "peer", "host": "10.199.30.2", "port": 80}]}),
    );
    let ev = run.one::<SysctlsEvidence>();
    assert_eq!(
        ev.values[&Sysctl::parse("net.ipv4.conf.v0.rp_filter")],
        "1",
        "the target's interface"
    );
    assert_eq!(
        ev.values[&Sysctl::parse("net.ipv4.conf.all.rp_filter")],
        "2"
    );
    assert_eq!(ev.values[&Sysctl::parse("net.core.somaxconn")], "77");
    assert_eq!(
        ev.values[&Sysctl::parse("net.ipv4.ip_local_port_range")]
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["20000", "29999"]
    );
    for key in [
        "net.ipv4.conf.default.rp_filter",
        "net.ipv4.tcp_tw_reuse",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_syn_retries",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_forward",
        "net.ipv4.tcp_max_syn_backlog",
    ] {
        assert!(ev.values.contains_key(&Sysctl::parse(key)), "{key} missing");
    }
    // Every interface's rp_filter is read, not only the ones a target's route leaves by: the
    // asymmetric-route rule needs the interface that holds the source address.
    assert!(ev.values.contains_key(&Sysctl::rp_filter_of("lo")));
    for (name, value) in &ev.values {
        let want = a.sh(&format!("sysctl -n {name}"));
        assert_eq!(value, want.trim_end_matches('\n'), "{name}");
    }
}

/// Regression: rp_filter of an interface whose name has a dot (a VLAN, `eth0.100`) was
/// written under `eth0/100` and looked up under `eth0.100`. This kernel has no VLAN support,
/// so the dotted name is a veth's: the sysctl spelling is the same.
#[test]
fn rp_filter_of_a_dotted_interface_name_is_read_under_its_real_name() {
    let a = Netns::new("sd");
    a.sh("ip link add v0.7 type veth peer name v1.7 \
         && sysctl -qw net.ipv4.conf.v0/7.rp_filter=2 net.ipv4.conf.v1/7.rp_filter=1");
    let run = probe(&a, json!({"v": 1, "checks": ["sysctls"]}));
    let ev = run.one::<SysctlsEvidence>();
    assert_eq!(ev.get(&Sysctl::rp_filter_of("v0.7")), Some("2"));
    assert_eq!(ev.get(&Sysctl::rp_filter_of("v1.7")), Some("1"));
    // On the wire the key is spelled as sysctl(8) spells it: the oracle lists the same name.
    let wire = serde_json::to_value(ev).unwrap();
    assert_eq!(wire["values"]["net.ipv4.conf.v0/7.rp_filter"], "2");
    let listed = a.sh("sysctl -a 2>/dev/null | grep rp_filter");
    assert!(
        listed.contains("net.ipv4.conf.v0/7.rp_filter = 2"),
        "sysctl -a lists {listed}"
    );
}

#[test]
fn conntrack_agrees_with_proc_and_conntrack_tool() {
    let a = Netns::new("ct");
    let count_file = "/proc/sys/net/netfilter/nf_conntrack_count";
    let loaded = a.try_exec(&["test", "-e", count_file]).success();
    if !loaded {
        let run = probe(&a, json!({"v": 1, "checks": ["conntrack"]}));
        let ev = run.one::<ConntrackEvidence>();
        assert!(
            !ev.present && ev.count.is_none() && ev.max.is_none(),
            "{ev:?}"
        );
        assert!(ev.note.is_some());
        return;
    }
    // A conntrack match makes this namespace track connections; three UDP flows follow.
    a.sh("iptables -A INPUT -m conntrack --ctstate INVALID -j DROP \
         && for p in 5001 5002 5003; do echo x > /dev/udp/127.0.0.1/$p; done");
    let run = probe(&a, json!({"v": 1, "checks": ["conntrack"]}));
    let ev = run.one::<ConntrackEvidence>();
    let count: u64 = a.sh(&format!("cat {count_file}")).trim().parse().unwrap();
    let max: u64 = a
        .sh("cat /proc/sys/net/netfilter/nf_conntrack_max")
        .trim()
        .parse()
        .unwrap();
    assert!(ev.present);
    assert_eq!(ev.count, Some(count));
    assert!(count >= 3, "three UDP flows tracked, /proc says {count}");
    assert_eq!(ev.max, Some(max));
    let ratio = ev.fill_ratio.unwrap();
    assert!((ratio - count as f64 / max as f64).abs() < 1e-12);
    let tool = a.try_exec(&["conntrack", "-C"]);
    if tool.success() {
        let n: u64 = tool.stdout.trim().parse().unwrap();
        assert_eq!(Some(n), ev.count, "conntrack -C");
    }
    if a.try_exec(&["test", "-r", "/proc/net/stat/nf_conntrack"])
        .success()
    {
        assert!(ev.insert_failed.is_some() && ev.drop.is_some() && ev.early_drop.is_some());
    }
}

/// `nstat -asz -j` in the namespace: absolute values, history untouched.
fn nstat(ns: &Netns) -> HashMap<String, u64> {
    let out = ns.sh("nstat -asz -j");
    let v: serde_json::Value = serde_json::from_str(&out).expect("nstat json");
    v["kernel"]
        .as_object()
        .expect("nstat kernel object")
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
        .collect()
}

#[test]
fn counters_see_retransmissions_and_listen_overflows() {
    let a = Netns::new("cn");
    // 127.0.0.1:9001: backlog 1, never accepts. 127.0.0.1:9002: accepts and reads.
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    a.spawn_tcp_server_with(
        addr("127.0.0.1:9001"),
        TcpServerOptions {
            backlog: 1,
            accept: Accept::Never,
        },
    );
    a.spawn_tcp_server_with(
        addr("127.0.0.1:9002"),
        TcpServerOptions {
            backlog: 16,
            accept: Accept::Drain,
        },
    );
    // Segments with payload toward 9002 vanish after the handshake: the sender retransmits.
    a.sh("iptables -A INPUT -i lo -p tcp --dport 9002 -m length --length 200:65535 -j DROP");
    // Fill the accept queue of 9001 (backlog 1 holds two).
    a.sh("for i in 1 2 3; do timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9001' || true; done");

    let before = nstat(&a);
    // The tcp check toward the full listener keeps the run open for 2.5 s (its SYNs overflow
    // the queue); meanwhile more traffic runs beside it.
    let plan = json!({"v": 1, "checks": ["counters", "tcp"],
        "connect_timeout_ms": 2500,
        "targets": [{"label": "full-listener", "host": "127.0.0.1", "port": 9001}]});
    let run = std::thread::scope(|scope| {
        let probe = scope.spawn(|| probe(&a, plan));
        std::thread::sleep(Duration::from_millis(300));
        a.sh("exec 3<>/dev/tcp/127.0.0.1/9002; head -c 4000 /dev/zero >&3; sleep 1.2");
        probe.join().expect("the probe thread")
    });
    let after = nstat(&a);

    let ev = run.one::<CountersEvidence>();
    assert!(
        ev.interval_ms >= 2000.0,
        "sampled across the run: {}",
        ev.interval_ms
    );
    for (ours, theirs) in [
        ("Tcp.RetransSegs", "TcpRetransSegs"),
        ("TcpExt.ListenOverflows", "TcpExtListenOverflows"),
        ("TcpExt.ListenDrops", "TcpExtListenDrops"),
        ("Tcp.ActiveOpens", "TcpActiveOpens"),
    ] {
        let c = ev.counters[&Open::parse(ours)];
        assert!(c.delta > 0, "{ours} did not move: {c:?}");
        let (b, a) = (before[theirs], after[theirs]);
        // nstat read just before and just after the probe: the probe's samples lie between.
        assert!(
            b <= c.value - c.delta && c.value <= a,
            "{ours}: nstat {b}..{a}, probe {c:?}"
        );
        assert!(
            c.delta <= a - b,
            "{ours}: delta {} > nstat's {}",
            c.delta,
            a - b
        );
    }
    for name in [
        "Udp.RcvbufErrors",
        "TcpExt.TCPTimeWaitOverflow",
        "Ip.InDiscards",
    ] {
        assert!(
            ev.counters.contains_key(&Open::parse(name)),
            "{name} reported"
        );
    }
}

#[test]
fn these_checks_need_no_privileges() {
    let a = Netns::new("np");
    let b = Netns::new("np");
    Link::veth_pair(&a, "v0", "10.199.31.1/24", &b, "v1", "");
    let run = run_probe_unprivileged(
        &a,
        &json_plan(json!({"v": 1,
            "checks": ["links", "route", "sysctls", "counters", "conntrack"],
            "targets": [{"label": "peer", "host": "10.199.31.2", "port": 80}]})),
    );
    run.assert_ok();
    let hello = run.hello();
    assert_eq!(
        (hello.euid, hello.capabilities.len()),
        (65534, 0),
        "{hello:?}"
    );
    assert!(run.all_skipped().is_empty(), "{:?}", run.all_skipped());
    let kinds: Vec<&str> = run
        .all_evidence()
        .map(|e| match e {
            Evidence::Links(_) => "links",
            Evidence::Route(_) => "route",
            Evidence::Rules(_) => "rules",
            Evidence::Sysctls(_) => "sysctls",
            Evidence::Counters(_) => "counters",
            Evidence::Conntrack(_) => "conntrack",
            _ => "other",
        })
        .collect();
    for kind in [
        "links",
        "route",
        "rules",
        "sysctls",
        "counters",
        "conntrack",
    ] {
        assert!(
            kinds.contains(&kind),
            "no {kind} evidence without privileges: {kinds:?}"
        );
    }
    let finished_ok = run
        .events
        .iter()
        .filter(
            |e| matches!(&e.event, Event::CheckFinished(f) if f.status == CheckStatus::Completed),
        )
        .count();
    assert_eq!(finished_ok, 5, "{:?}", run.events);
}
