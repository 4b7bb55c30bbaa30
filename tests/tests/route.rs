//! The route check against `ip -j route get`, `ip -j neigh` and `ip -j rule` in namespaces
//! this test makes: a direct route, a gateway route, a configured route MTU, a policy rule
//! sending one target to table 100, an unreachable route, no route at all, and a next hop
//! that never answers ARP.

use std::net::IpAddr;

use protocol::{Evidence, RouteEvidence, RouteInfo, RouteOutcome, RulesEvidence};
use serde_json::{json, Value};

fn run_route(ns: &ns::Ns, targets: Value) -> (Vec<RouteEvidence>, RulesEvidence) {
    let events = ns.probe(&json!({"v": 1, "checks": ["route"], "targets": targets}));
    let mut routes = Vec::new();
    let mut rules = None;
    for e in ns::evidence(&events) {
        match e {
            Evidence::Route(r) => routes.push(r),
            Evidence::Rules(r) => rules = Some(r),
            _ => {}
        }
    }
    (routes, rules.expect("rules evidence once per run"))
}

fn by_target<'a>(routes: &'a [RouteEvidence], label: &str) -> &'a RouteEvidence {
    routes
        .iter()
        .find(|r| r.target == label)
        .unwrap_or_else(|| panic!("no route evidence for {label}"))
}

fn found(r: &RouteEvidence) -> &RouteInfo {
    match &r.outcome {
        RouteOutcome::Found(info) => info,
        other => panic!("{}: expected a route, got {other:?}", r.target),
    }
}

/// Table names as `ip` prints them.
fn table_id(name: Option<&str>) -> u32 {
    match name {
        None | Some("main") => 254,
        Some("local") => 255,
        Some("default") => 253,
        Some(n) => n.parse().unwrap(),
    }
}

/// The probe's answer equals `ip -j route get DST`.
fn assert_like_ip_route_get(ns: &ns::Ns, r: &RouteEvidence) {
    let info = found(r);
    let ip = ns.ip_json(&format!("route get {}", r.destination));
    let ip = &ip[0];
    assert_eq!(info.dev.as_deref(), ip["dev"].as_str(), "{} dev", r.target);
    assert_eq!(
        info.gateway.map(|g| g.to_string()).as_deref(),
        ip["gateway"].as_str(),
        "{} gateway",
        r.target
    );
    assert_eq!(
        info.prefsrc.map(|g| g.to_string()).as_deref(),
        ip["prefsrc"].as_str(),
        "{} prefsrc",
        r.target
    );
    assert_eq!(
        info.table,
        table_id(ip["table"].as_str()),
        "{} table",
        r.target
    );
    let ip_mtu = ip["metrics"]
        .as_array()
        .and_then(|m| m.iter().find_map(|x| x["mtu"].as_u64()));
    assert_eq!(info.mtu.map(u64::from), ip_mtu, "{} route mtu", r.target);
}

fn assert_no_route(ns: &ns::Ns, r: &RouteEvidence, reason: &str) {
    let RouteOutcome::NoRoute {
        reason: got,
        message,
    } = &r.outcome
    else {
        panic!("{}: expected no route, got {:?}", r.target, r.outcome);
    };
    assert_eq!(got, reason, "{}", r.target);
    let out = ns.sh_output(&format!("ip route get {}", r.destination));
    assert!(
        !out.status.success(),
        "ip route get {} found a route",
        r.destination
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(message.as_str()),
        "ip says `{stderr}`, the probe says `{message}`"
    );
}

/// Namespace `a` with v0 = 10.199.20.1/24 facing `b` (10.199.20.2), no default route.
fn two_namespaces() -> (ns::Ns, ns::Ns) {
    let a = ns::Ns::new("rt");
    let b = ns::Ns::new("rt");
    ns::veth(&a, "v0", &b, "v1");
    a.sh("ip addr add 10.199.20.1/24 dev v0");
    b.sh("ip addr add 10.199.20.2/24 dev v1");
    (a, b)
}

#[test]
fn routes_agree_with_ip_route_get() {
    let (a, _b) = two_namespaces();
    a.sh("ip route add 10.199.21.0/24 via 10.199.20.2 \
         && ip route add 10.199.25.0/24 via 10.199.20.2 mtu 1300 \
         && ip route add 10.199.22.0/24 via 10.199.20.2 dev v0 table 100 \
         && ip rule add to 10.199.22.5 lookup 100 pref 100 \
         && ip route add unreachable 10.199.23.0/24 \
         && ip route add prohibit 10.199.27.0/24 \
         && ip route add blackhole 10.199.28.0/24");
    let (routes, _) = run_route(
        &a,
        json!([
            {"label": "direct", "host": "10.199.20.2", "port": 80},
            {"label": "gw", "host": "10.199.21.5"},
            {"label": "mtu", "host": "10.199.25.5"},
            {"label": "policy", "host": "10.199.22.5", "port": 443},
            {"label": "unreachable", "host": "10.199.23.5"},
            {"label": "prohibit", "host": "10.199.27.5"},
            {"label": "blackhole", "host": "10.199.28.5"},
            {"label": "none", "host": "10.199.24.5", "port": 80},
        ]),
    );
    for label in ["direct", "gw", "mtu", "policy"] {
        assert_like_ip_route_get(&a, by_target(&routes, label));
    }
    let direct = found(by_target(&routes, "direct"));
    assert_eq!((direct.table, direct.gateway), (254, None));
    assert_eq!(direct.route_type, "unicast");
    let gw = found(by_target(&routes, "gw"));
    assert_eq!(gw.gateway, Some("10.199.20.2".parse::<IpAddr>().unwrap()));
    assert_eq!(found(by_target(&routes, "mtu")).mtu, Some(1300));
    let policy = found(by_target(&routes, "policy"));
    assert_eq!(policy.table, 100, "the policy rule sends it to table 100");
    assert_no_route(&a, by_target(&routes, "unreachable"), "host_unreachable");
    assert_no_route(&a, by_target(&routes, "prohibit"), "prohibited");
    assert_no_route(&a, by_target(&routes, "blackhole"), "blackhole");
    assert_no_route(&a, by_target(&routes, "none"), "network_unreachable");
}

#[test]
fn neighbor_states_agree_with_ip_neigh() {
    let (a, b) = two_namespaces();
    // A gateway on the link that nobody answers ARP for.
    a.sh("ip route add 10.199.26.0/24 via 10.199.20.77");
    // Resolve the real neighbour and try the dead gateway (the connect cannot succeed).
    a.sh("exec 3<>/dev/tcp/10.199.20.2/9 || true");
    b.sh("true");
    a.sh("timeout 1 bash -c 'exec 3<>/dev/tcp/10.199.26.5/80' || true");
    let state_of = |addr: &str| -> Option<String> {
        let v = a.ip_json(&format!("neigh show {addr} dev v0"));
        v[0]["state"][0].as_str().map(str::to_string)
    };
    let dead_before = state_of("10.199.20.77");
    let (routes, _) = run_route(
        &a,
        json!([
            {"label": "dead-gw", "host": "10.199.26.5", "port": 80},
            {"label": "peer", "host": "10.199.20.2", "port": 9},
        ]),
    );
    let dead_after = state_of("10.199.20.77");
    let n = found(by_target(&routes, "dead-gw"))
        .neighbor
        .clone()
        .expect("a next hop");
    assert_eq!(n.address.to_string(), "10.199.20.77");
    assert!(
        matches!(n.state.as_str(), "INCOMPLETE" | "FAILED"),
        "dead gateway is {}",
        n.state
    );
    // INCOMPLETE turns into FAILED after the ARP retries: the probe saw one of ip's states.
    assert!(
        Some(&n.state) == dead_before.as_ref() || Some(&n.state) == dead_after.as_ref(),
        "probe {} vs ip {dead_before:?} / {dead_after:?}",
        n.state
    );
    assert_eq!(n.lladdr, None);

    let peer = found(by_target(&routes, "peer"))
        .neighbor
        .clone()
        .expect("next hop");
    let ip = a.ip_json("neigh show 10.199.20.2 dev v0");
    assert_eq!(Some(peer.state.as_str()), ip[0]["state"][0].as_str());
    assert_eq!(peer.lladdr.as_deref(), ip[0]["lladdr"].as_str());
    let mac = b.ip_json("link show v1")[0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(peer.lladdr.as_deref(), Some(mac.as_str()), "the peer's MAC");

    // No entry at all reads NONE, and `ip neigh` has nothing for it either.
    a.sh("ip neigh flush dev v0");
    let (routes, _) = run_route(&a, json!([{"label": "fresh", "host": "10.199.20.9"}]));
    let n = found(by_target(&routes, "fresh")).neighbor.clone().unwrap();
    assert_eq!(n.state, "NONE");
    assert!(a
        .ip_json("neigh show 10.199.20.9 dev v0")
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn rules_agree_with_ip_rule() {
    let (a, _b) = two_namespaces();
    a.sh("ip rule add to 10.199.22.0/24 lookup 100 pref 100 \
         && ip rule add from 10.199.20.0/24 fwmark 0x1 lookup 200 pref 200 \
         && ip rule add to 10.199.29.9 unreachable pref 300 \
         && ip -6 rule add to fd00:199::/64 lookup 100 pref 150");
    let (_, rules) = run_route(&a, json!([]));
    for (family, flag) in [("inet", "-4"), ("inet6", "-6")] {
        let ip = a.ip_json(&format!("{flag} rule show"));
        let ip = ip.as_array().unwrap();
        let ours: Vec<_> = rules.rules.iter().filter(|r| r.family == family).collect();
        assert_eq!(ours.len(), ip.len(), "{family}: {ours:?} vs {ip:?}");
        for (r, i) in ours.iter().zip(ip) {
            assert_eq!(u64::from(r.priority), i["priority"].as_u64().unwrap());
            match i["table"].as_str() {
                Some(t) => {
                    assert_eq!(r.action, "lookup");
                    assert_eq!(r.table, Some(table_id(Some(t))), "{r:?} vs {i}");
                }
                None => assert_eq!(
                    Some(r.action.as_str()),
                    i["action"].as_str(),
                    "{r:?} vs {i}"
                ),
            }
            let src = i["src"].as_str().unwrap();
            let src = match i["srclen"].as_u64() {
                Some(len) => format!("{src}/{len}"),
                None => src.to_string(),
            };
            assert!(
                r.selector.starts_with(&format!("from {src}")),
                "{r:?} vs {i}"
            );
            if let Some(dst) = i["dst"].as_str() {
                let dst = match i["dstlen"].as_u64() {
                    Some(len) => format!("{dst}/{len}"),
                    None => dst.to_string(),
                };
                assert!(r.selector.contains(&format!("to {dst}")), "{r:?} vs {i}");
            }
            if let Some(mark) = i["fwmark"].as_str() {
                assert!(
                    r.selector.contains(&format!("fwmark {mark}")),
                    "{r:?} vs {i}"
                );
            }
        }
    }
    let unreachable = rules.rules.iter().find(|r| r.priority == 300).unwrap();
    assert_eq!(
        (unreachable.action.as_str(), unreachable.table),
        ("unreachable", None)
    );
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
