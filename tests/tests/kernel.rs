//! The sysctls, conntrack and counters checks against `sysctl -n`, /proc + `conntrack -C`, and
//! `nstat`, in namespaces this test makes.

use std::collections::HashMap;
use std::time::Duration;

use protocol::{ConntrackEvidence, CountersEvidence, Event, Evidence, SysctlsEvidence};
use serde_json::json;

fn only<T>(events: &[Event], pick: impl Fn(Evidence) -> Option<T>) -> T {
    let mut found: Vec<T> = ns::evidence(events).into_iter().filter_map(pick).collect();
    assert_eq!(found.len(), 1, "exactly one piece of evidence of the kind");
    found.remove(0)
}

#[test]
fn sysctls_agree_with_sysctl() {
    let a = ns::Ns::new("sc");
    let b = ns::Ns::new("sc");
    ns::veth(&a, "v0", &b, "v1");
    a.sh("ip addr add 10.199.30.1/24 dev v0 \
         && sysctl -qw net.ipv4.conf.v0.rp_filter=1 net.ipv4.conf.all.rp_filter=2 \
         && sysctl -qw net.ipv4.ip_local_port_range='20000 29999' net.core.somaxconn=77");
    let events = a.probe(&json!({"v": 1, "checks": ["sysctls"],
        "targets": [{"label": "peer", "host": "10.199.30.2", "port": 80}]}));
    let ev: SysctlsEvidence = only(&events, |e| match e {
        Evidence::Sysctls(s) => Some(s),
        _ => None,
    });
    assert_eq!(
        ev.values["net.ipv4.conf.v0.rp_filter"], "1",
        "the target's interface"
    );
    assert_eq!(ev.values["net.ipv4.conf.all.rp_filter"], "2");
    assert_eq!(ev.values["net.core.somaxconn"], "77");
    assert_eq!(
        ev.values["net.ipv4.ip_local_port_range"]
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
        assert!(ev.values.contains_key(key), "{key} missing");
    }
    // lo is on no target's route.
    assert!(!ev.values.contains_key("net.ipv4.conf.lo.rp_filter"));
    for (name, value) in &ev.values {
        let want = a.sh(&format!("sysctl -n {name}"));
        assert_eq!(value, want.trim_end_matches('\n'), "{name}");
    }
}

#[test]
fn conntrack_agrees_with_proc_and_conntrack_tool() {
    let a = ns::Ns::new("ct");
    let count_file = "/proc/sys/net/netfilter/nf_conntrack_count";
    let loaded = a
        .sh_output(&format!("test -e {count_file}"))
        .status
        .success();
    if !loaded {
        let events = a.probe(&json!({"v": 1, "checks": ["conntrack"]}));
        let ev: ConntrackEvidence = only(&events, |e| match e {
            Evidence::Conntrack(c) => Some(c),
            _ => None,
        });
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
    let events = a.probe(&json!({"v": 1, "checks": ["conntrack"]}));
    let ev: ConntrackEvidence = only(&events, |e| match e {
        Evidence::Conntrack(c) => Some(c),
        _ => None,
    });
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
    let tool = a.sh_output("conntrack -C");
    if tool.status.success() {
        let n: u64 = String::from_utf8_lossy(&tool.stdout)
            .trim()
            .parse()
            .unwrap();
        assert_eq!(Some(n), ev.count, "conntrack -C");
    }
    if a.sh_output("test -r /proc/net/stat/nf_conntrack")
        .status
        .success()
    {
        assert!(ev.insert_failed.is_some() && ev.drop.is_some() && ev.early_drop.is_some());
    }
}

/// `nstat -asz -j` in the namespace: absolute values, history untouched.
fn nstat(ns: &ns::Ns) -> HashMap<String, u64> {
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
    let mut a = ns::Ns::new("cn");
    // 127.0.0.1:9001: backlog 1, never accepts. 127.0.0.1:9002: accepts and reads.
    a.spawn(
        "python3",
        &[
            "-c",
            "import socket,threading,time\n\
             a=socket.socket(); a.bind(('127.0.0.1',9001)); a.listen(1)\n\
             b=socket.socket(); b.bind(('127.0.0.1',9002)); b.listen(16)\n\
             def serve(c):\n    while c.recv(65536): pass\n\
             def loop():\n    while True:\n        c,_=b.accept(); threading.Thread(target=serve,args=(c,),daemon=True).start()\n\
             threading.Thread(target=loop,daemon=True).start()\n\
             time.sleep(60)\n",
        ],
    );
    let up = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        a.sh("ss -Htln").contains("127.0.0.1:9002")
    });
    assert!(up, "test listeners did not start");
    // Segments with payload toward 9002 vanish after the handshake: the sender retransmits.
    a.sh("iptables -A INPUT -i lo -p tcp --dport 9002 -m length --length 200:65535 -j DROP");
    // Fill the accept queue of 9001 (backlog 1 holds two).
    a.sh("for i in 1 2 3; do timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9001' || true; done");

    let before = nstat(&a);
    // The tcp check toward the full listener keeps the run open for 2.5 s (its SYNs overflow
    // the queue); meanwhile more traffic runs beside it.
    let probe = a.start_probe(&json!({"v": 1, "checks": ["counters", "tcp"],
        "connect_timeout_ms": 2500,
        "targets": [{"label": "full-listener", "host": "127.0.0.1", "port": 9001}]}));
    std::thread::sleep(Duration::from_millis(300));
    a.sh("exec 3<>/dev/tcp/127.0.0.1/9002; head -c 4000 /dev/zero >&3; sleep 1.2");
    let events = ns::finish_probe(probe);
    let after = nstat(&a);

    let ev: CountersEvidence = only(&events, |e| match e {
        Evidence::Counters(c) => Some(c),
        _ => None,
    });
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
        let c = ev.counters[ours];
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
        assert!(ev.counters.contains_key(name), "{name} reported");
    }
}

#[test]
fn these_checks_need_no_privileges() {
    let a = ns::Ns::new("np");
    let b = ns::Ns::new("np");
    ns::veth(&a, "v0", &b, "v1");
    a.sh("ip addr add 10.199.31.1/24 dev v0");
    let events = a.probe_unprivileged(&json!({"v": 1,
        "checks": ["links", "route", "sysctls", "counters", "conntrack"],
        "targets": [{"label": "peer", "host": "10.199.31.2", "port": 80}]}));
    let hello = events
        .iter()
        .find_map(|e| match e {
            Event::Hello(h) => Some(h.clone()),
            _ => None,
        })
        .expect("hello");
    assert_eq!(
        (hello.euid, hello.capabilities.len()),
        (65534, 0),
        "{hello:?}"
    );
    assert!(
        ns::skipped(&events).is_empty(),
        "{:?}",
        ns::skipped(&events)
    );
    let kinds: Vec<&str> = ns::evidence(&events)
        .iter()
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
    let finished_ok = events
        .iter()
        .filter(|e| matches!(e, Event::CheckFinished(f) if f.status == protocol::CheckStatus::Completed))
        .count();
    assert_eq!(finished_ok, 5, "{events:?}");
}

/// Minimal namespace helper private to this file (the shared harness in tests/src was not
/// available when these tests were written).
#[allow(dead_code)]
mod ns {
    use std::path::PathBuf;
    use std::process::{Command, Output, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    use protocol::{decode_line, Decoded, Envelope, Event, Evidence, Skipped};

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// Fails (never skips) when not root: CI runs these as root.
    pub fn require_root() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_default();
        assert_eq!(
            uid, "0",
            "these tests create network namespaces and must run as root (uid 0)"
        );
    }

    /// A network namespace named `ndt-<tag>-<pid>-<n>`, deleted (with its processes' sockets
    /// and interfaces) on drop.
    pub struct Ns {
        pub name: String,
        children: Vec<std::process::Child>,
    }

    impl Ns {
        pub fn new(tag: &str) -> Ns {
            require_root();
            let name = format!(
                "ndt-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::SeqCst)
            );
            run(Command::new("ip").args(["netns", "add", &name]));
            let ns = Ns {
                name,
                children: Vec::new(),
            };
            ns.sh("ip link set lo up");
            ns
        }

        /// Run a shell script inside the namespace; panics with its stderr on failure.
        pub fn sh(&self, script: &str) -> String {
            let out = self.sh_output(script);
            assert!(
                out.status.success(),
                "in {}: `{script}` failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        pub fn sh_output(&self, script: &str) -> Output {
            Command::new("ip")
                .args(["netns", "exec", &self.name, "bash", "-c", script])
                .output()
                .expect("run ip netns exec")
        }

        /// `ip -j ...` inside the namespace, parsed.
        pub fn ip_json(&self, args: &str) -> serde_json::Value {
            let out = self.sh(&format!("ip -j {args}"));
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args}: {e}: {out}"))
        }

        /// Start a long-running process in the namespace; killed on drop.
        pub fn spawn(&mut self, program: &str, args: &[&str]) {
            let child = Command::new("ip")
                .args(["netns", "exec", &self.name, program])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn in namespace");
            self.children.push(child);
        }

        /// Run the probe in this namespace with `plan`; returns every event.
        pub fn probe(&self, plan: &serde_json::Value) -> Vec<Event> {
            let out = Command::new(probe_path())
                .args(["--netns", &self.name, &plan.to_string()])
                .output()
                .expect("run the probe");
            assert!(
                out.status.success(),
                "probe failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            parse_events(&String::from_utf8_lossy(&out.stdout))
        }

        /// Run the probe in this namespace as uid/gid 65534 with no capabilities.
        pub fn probe_unprivileged(&self, plan: &serde_json::Value) -> Vec<Event> {
            let probe = probe_path();
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.name,
                    "setpriv",
                    "--reuid",
                    "65534",
                    "--regid",
                    "65534",
                    "--clear-groups",
                    "--",
                ])
                .arg(&probe)
                .arg(plan.to_string())
                .output()
                .expect("run the probe unprivileged");
            assert!(
                out.status.success(),
                "probe failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            parse_events(&String::from_utf8_lossy(&out.stdout))
        }

        /// Start the probe without waiting; read its events with `finish_probe`.
        pub fn start_probe(&self, plan: &serde_json::Value) -> std::process::Child {
            Command::new(probe_path())
                .args(["--netns", &self.name, &plan.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the probe")
        }
    }

    impl Drop for Ns {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name])
                .output();
        }
    }

    pub fn finish_probe(child: std::process::Child) -> Vec<Event> {
        let out = child.wait_with_output().expect("wait for the probe");
        assert!(
            out.status.success(),
            "probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_events(&String::from_utf8_lossy(&out.stdout))
    }

    /// A veth pair `a_if` (in `a`) <-> `b_if` (in `b`), both up.
    pub fn veth(a: &Ns, a_if: &str, b: &Ns, b_if: &str) {
        run(Command::new("ip").args([
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ]));
        a.sh(&format!("ip link set {a_if} up"));
        b.sh(&format!("ip link set {b_if} up"));
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().expect("run command");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn probe_path() -> PathBuf {
        if let Ok(p) = std::env::var("NETDEBUG_PROBE") {
            return PathBuf::from(p);
        }
        // target/debug/deps/<test> -> target/debug/netdebug-probe
        let exe = std::env::current_exe().expect("test executable path");
        let path = exe
            .parent()
            .and_then(|deps| deps.parent())
            .map(|dir| dir.join("netdebug-probe"))
            .expect("target directory");
        assert!(
            path.exists(),
            "{} not found: run `cargo build -p probe` first or set NETDEBUG_PROBE",
            path.display()
        );
        path
    }

    pub fn parse_events(stdout: &str) -> Vec<Event> {
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match decode_line(l).expect("probe line decodes") {
                Decoded::Event(e) => Some(Envelope::clone(&e).event),
                Decoded::Unknown { .. } => None,
            })
            .collect()
    }

    pub fn evidence(events: &[Event]) -> Vec<Evidence> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Evidence(ev) => Some(ev.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn skipped(events: &[Event]) -> Vec<Skipped> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Skipped(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}
