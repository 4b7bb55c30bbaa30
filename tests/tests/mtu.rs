//! The mtu check on a client -- router -- server path whose router->server link has MTU 1280,
//! with ICMP frag-needed dropped on the router (a blackhole) or allowed (a learned PMTU), for
//! both variants: icmp (as root) and tcp (as uid 65534 without capabilities).

use std::time::Duration;

use protocol::{Event, Evidence, MtuEvidence};
use serde_json::{json, Value};

const SERVER: &str = "10.199.62.2";

struct Path {
    client: ns::Ns,
    router: ns::Ns,
    _server: ns::Ns,
}

/// client 10.199.61.2 -- 10.199.61.1 router 10.199.62.1 (MTU 1280) -- 10.199.62.2 server
/// (MTU 1500, so the server announces MSS 1460 and the router is where big packets stop).
fn path(blackhole: bool) -> Path {
    let client = ns::Ns::new("mc");
    let router = ns::Ns::new("mr");
    let mut server = ns::Ns::new("ms");
    ns::veth(&client, "c0", &router, "r0");
    ns::veth(&router, "r1", &server, "s0");
    client.sh("ip addr add 10.199.61.2/24 dev c0 && ip route add default via 10.199.61.1");
    router.sh(
        "ip addr add 10.199.61.1/24 dev r0 && ip addr add 10.199.62.1/24 dev r1 \
         && ip link set r1 mtu 1280 && sysctl -qw net.ipv4.ip_forward=1",
    );
    server.sh("ip addr add 10.199.62.2/24 dev s0 && ip route add default via 10.199.62.1");
    if blackhole {
        router.sh(
            "iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP \
             && iptables -A FORWARD -p icmp --icmp-type fragmentation-needed -j DROP",
        );
    }
    server.spawn(
        "python3",
        &[
            "-c",
            "import socket,time\n\
             s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('0.0.0.0',8080)); s.listen(128); time.sleep(60)\n",
        ],
    );
    let up = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        server.sh("ss -Htln").contains(":8080")
    });
    assert!(up, "test listener did not start");
    Path {
        client,
        router,
        _server: server,
    }
}

fn plan() -> Value {
    json!({"v": 1, "checks": ["mtu"], "deadline_ms": 20000,
        "targets": [{"label": "server", "host": SERVER, "port": 8080}],
        "mtu": {"wait_ms": 300}})
}

fn mtu_evidence(events: &[Event]) -> MtuEvidence {
    let mut all: Vec<MtuEvidence> = ns::evidence(events)
        .into_iter()
        .filter_map(|e| match e {
            Evidence::Mtu(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(all.len(), 1, "one mtu evidence: {events:?}");
    all.remove(0)
}

/// The router really generated frag-needed errors, and its firewall ate them.
fn frag_needed_dropped_on_router(router: &ns::Ns) -> u64 {
    let out = router.sh("iptables -L OUTPUT -v -x -n");
    out.lines()
        .filter(|l| l.contains("DROP"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The PMTU the client's kernel has cached for the server, per `ip route get`.
fn cached_pmtu(client: &ns::Ns) -> Option<u64> {
    let v = client.ip_json(&format!("route get {SERVER}"));
    v[0]["metrics"]
        .as_array()
        .and_then(|m| m.iter().find_map(|x| x["mtu"].as_u64()))
}

fn assert_blackhole(m: &MtuEvidence, p: &Path) {
    assert!(m.blackhole, "{m:?}");
    assert!(!m.frag_needed_seen, "{m:?}");
    assert_eq!(m.largest_ok, Some(1280), "{m:?}");
    assert_eq!(m.smallest_lost, Some(1281), "{m:?}");
    assert_eq!(m.interface_mtu, Some(1500));
    assert_eq!(m.learned_pmtu, None);
    assert!(
        frag_needed_dropped_on_router(&p.router) > 0,
        "router sent no frag-needed"
    );
    assert_eq!(
        cached_pmtu(&p.client),
        None,
        "the client's kernel learned nothing"
    );
}

fn assert_learned(m: &MtuEvidence, p: &Path) {
    assert!(!m.blackhole, "{m:?}");
    assert!(m.frag_needed_seen, "{m:?}");
    assert_eq!(m.learned_pmtu, Some(1280), "{m:?}");
    assert_eq!(m.largest_ok, Some(1280), "{m:?}");
    assert_eq!(m.smallest_lost, None, "{m:?}");
    assert_eq!(
        cached_pmtu(&p.client),
        Some(1280),
        "ip route get shows the learned PMTU"
    );
}

#[test]
fn icmp_blackhole_is_reported_at_the_right_size() {
    let p = path(true);
    let m = mtu_evidence(&p.client.probe(&plan()));
    assert_eq!(m.variant, "icmp");
    assert_blackhole(&m, &p);
}

#[test]
fn icmp_with_frag_needed_learns_the_pmtu() {
    let p = path(false);
    let m = mtu_evidence(&p.client.probe(&plan()));
    assert_eq!(m.variant, "icmp");
    assert_learned(&m, &p);
    assert_eq!(m.probes[0].result, "frag_needed", "{m:?}");
}

fn unprivileged(p: &Path) -> MtuEvidence {
    // A fresh namespace admits no gid to ping sockets ("1 0"): the tcp variant must run.
    let range = p.client.sh("sysctl -n net.ipv4.ping_group_range");
    assert_eq!(range.split_whitespace().collect::<Vec<_>>(), ["1", "0"]);
    let events = p.client.probe_unprivileged(&plan());
    let skipped = ns::skipped(&events);
    assert!(
        skipped
            .iter()
            .any(|s| s.missing_capability.as_deref() == Some("net_raw")
                && s.reason.contains("tcp variant")),
        "the icmp variant is reported skipped: {skipped:?}"
    );
    let m = mtu_evidence(&events);
    assert_eq!(m.variant, "tcp");
    m
}

#[test]
fn tcp_blackhole_is_reported_at_the_right_size() {
    let p = path(true);
    let m = unprivileged(&p);
    assert_blackhole(&m, &p);
}

#[test]
fn tcp_with_frag_needed_learns_the_pmtu() {
    let p = path(false);
    let m = unprivileged(&p);
    assert_learned(&m, &p);
}

#[test]
fn ping_sockets_give_the_icmp_variant_without_capabilities() {
    let p = path(true);
    // Admit every gid to unprivileged ICMP echo sockets in the client's namespace.
    p.client
        .sh("sysctl -qw net.ipv4.ping_group_range='0 2147483647'");
    let events = p.client.probe_unprivileged(&plan());
    assert!(
        ns::skipped(&events).is_empty(),
        "nothing skipped: {:?}",
        ns::skipped(&events)
    );
    let m = mtu_evidence(&events);
    assert_eq!(m.variant, "icmp");
    assert_blackhole(&m, &p);
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
