//! The lookup against the kernel: a ClusterIP-like DNAT with two endpoints, repeated connects
//! through it, and for each connect the lookup's answer compared with two independent
//! oracles: the `conntrack -L` binary's listing of the same entry, and the endpoint whose
//! listener accepted the connection.
//!
//! Where it runs, and why: in a network namespace of the test's own, made by
//! unshare(CLONE_NEWNET) on a thread of the test. The lookup lives in the probe binary crate
//! (no library target), so the scenario crate (tests/) cannot call it, but a test here can;
//! unshare moves only the calling thread, so the rest of the test process stays where it was,
//! and the processes this thread starts (`ip`, `iptables`, `conntrack`) run in the new
//! namespace. Nothing touches the host's nat table or conntrack entries, and the namespace
//! with its interface, rules and entries is gone when the thread ends, also on a panic or a
//! killed run (nothing to clean up or sweep). The alternative, a loopback DNAT in the host's
//! namespace, would change the host's nat table, which a killed run would leave behind and
//! tests running at the same time would see. All traffic stays inside the namespace: the
//! service and endpoint addresses are on a veth pair whose both ends are in it.
//!
//! Needs root and the `ip`, `iptables`, `ip6tables` and `conntrack` tools; fails (never
//! skips) without them: CI runs as root with them installed (scripts/test).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};

use super::*;

/// A bound on everything that waits on the network inside the namespace.
const WAIT: Duration = Duration::from_secs(5);
/// Connects per family: both endpoints are chosen several times.
const CONNECTS: usize = 8;

struct Lab {
    /// The ClusterIP-like address, DNATed to one of `endpoints` per connection.
    service: SocketAddr,
    endpoints: [SocketAddr; 2],
    /// `conntrack -f` value for this family.
    family: &'static str,
}

const IPV4: Lab = Lab {
    service: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 199, 96, 10)), 80),
    endpoints: [
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 199, 1, 1)), 8080),
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 199, 1, 2)), 8080),
    ],
    family: "ipv4",
};

const IPV6: Lab = Lab {
    service: SocketAddr::new(
        IpAddr::V6(std::net::Ipv6Addr::new(
            0xfd00, 0x199, 0x96, 0, 0, 0, 0, 0x10,
        )),
        80,
    ),
    endpoints: [
        SocketAddr::new(
            IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0x199, 0, 0, 0, 0, 0, 1)),
            8080,
        ),
        SocketAddr::new(
            IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0x199, 0, 0, 0, 0, 0, 2)),
            8080,
        ),
    ],
    family: "ipv6",
};

#[test]
fn ipv4_dnat_attribution_matches_conntrack_and_the_accepting_endpoint() {
    attribution(IPV4);
}

#[test]
fn ipv6_dnat_attribution_matches_conntrack_and_the_accepting_endpoint() {
    attribution(IPV6);
}

fn attribution(lab: Lab) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it creates a network namespace and nat rules; CI runs as \
         root): run it with sudo"
    );
    for tool in ["ip", "iptables", "ip6tables", "conntrack"] {
        tool_path(tool);
    }
    in_new_netns(move || {
        lab.set_up();
        let listeners = lab.endpoints.map(|e| {
            let l = TcpListener::bind(e).unwrap_or_else(|err| panic!("listen on {e}: {err}"));
            l.set_nonblocking(true).expect("non-blocking listener");
            l
        });
        let mut lookup = ConntrackLookup::open().expect("ctnetlink socket as root");
        let mut open = Vec::new();
        let mut chosen = Vec::new();
        for _ in 0..CONNECTS {
            let client = TcpStream::connect_timeout(&lab.service, WAIT)
                .unwrap_or_else(|e| panic!("connect to {} through the DNAT: {e}", lab.service));
            let src = client
                .local_addr()
                .expect("connected socket has an address");
            let answer = lookup.reply_source(src, lab.service);
            let answer = answer.unwrap_or_else(|e| panic!("lookup {src} -> {}: {e}", lab.service));
            let accepted_by = accepting_endpoint(&lab, &listeners);
            let oracle = conntrack_reply_source(lab.family, src, lab.service);
            assert_eq!(answer, oracle, "lookup vs `conntrack -L` for {src}");
            assert_eq!(
                answer,
                Some(accepted_by),
                "lookup vs the accepting listener"
            );
            chosen.push(accepted_by);
            open.push(client);
        }
        for endpoint in lab.endpoints {
            assert!(
                chosen.contains(&endpoint),
                "the DNAT alternates, so {endpoint} was chosen too: {chosen:?}"
            );
        }
        lab.check_other_answers(&mut lookup, &listeners, &open);
    });
}

impl Lab {
    /// The namespace as a node with a two-endpoint ClusterIP: `ctl0`, one end of a veth pair
    /// whose other end `ctl1` stays in the namespace too (no `dummy` driver needed), holds the
    /// endpoint addresses, the service range is routed to it, and nat OUTPUT DNATs
    /// service:80 to the endpoints in turn (kube-proxy uses `--mode random`; `nth` is the
    /// same rule shape, deterministic), as kube-proxy does for connections from the node.
    fn set_up(&self) {
        let (iptables, service_net, ep_len, nodad) = match self.family {
            "ipv4" => ("iptables", "10.199.96.0/24", "24", None),
            _ => ("ip6tables", "fd00:199:96::/64", "64", Some("nodad")),
        };
        run("ip", &["link", "set", "lo", "up"]);
        run(
            "ip",
            &[
                "link", "add", "ctl0", "type", "veth", "peer", "name", "ctl1",
            ],
        );
        run("ip", &["link", "set", "ctl0", "up"]);
        run("ip", &["link", "set", "ctl1", "up"]);
        for endpoint in self.endpoints {
            let address = format!("{}/{ep_len}", endpoint.ip());
            let mut args = vec!["address", "add", &address, "dev", "ctl0"];
            args.extend(nodad);
            run("ip", &args);
        }
        run("ip", &["route", "add", service_net, "dev", "ctl0"]);
        let service = self.service.ip().to_string();
        let [first, second] = self.endpoints.map(|e| e.to_string());
        let rule = |extra: &[&str], to: &str| {
            let mut args = vec!["-t", "nat", "-A", "OUTPUT", "-d", &service, "-p", "tcp"];
            args.extend(["--dport", "80"]);
            args.extend(extra);
            args.extend(["-j", "DNAT", "--to-destination", to]);
            run(iptables, &args);
        };
        let nth = [
            "-m",
            "statistic",
            "--mode",
            "nth",
            "--every",
            "2",
            "--packet",
            "0",
        ];
        rule(&nth, &first);
        rule(&[], &second);
    }

    /// Lookups other than through the service: a direct (un-NATed) connection, a tuple with
    /// no connection, the one-shot function, and many lookups on the one socket.
    fn check_other_answers(
        &self,
        lookup: &mut ConntrackLookup,
        listeners: &[TcpListener; 2],
        open: &[TcpStream],
    ) {
        let endpoint = self.endpoints[1];
        let direct = TcpStream::connect_timeout(&endpoint, WAIT).expect("direct connect");
        let src = direct.local_addr().expect("address");
        accepting_endpoint(self, listeners);
        let answer = lookup.reply_source(src, endpoint).expect("direct lookup");
        assert_eq!(
            answer,
            Some(endpoint),
            "un-NATed: the reply comes from the destination"
        );
        let oracle = conntrack_reply_source(self.family, src, endpoint);
        assert_eq!(answer, oracle, "un-NATed: `conntrack -L` agrees");

        let unused = SocketAddr::new(src.ip(), 1);
        let none = lookup.reply_source(unused, self.service).expect("lookup");
        assert_eq!(none, None, "no connection from {unused}: no entry");
        assert_eq!(
            conntrack_reply_source(self.family, unused, self.service),
            None
        );

        let first = open[0].local_addr().expect("address");
        let expected = lookup.reply_source(first, self.service).expect("lookup");
        // A late answer (here: to a request whose lookup gave up) waits in the socket; the
        // next lookup must skip it and return its own answer.
        let stale = get_request(u32::MAX, unused, self.service);
        lookup.socket.send(&stale, 0).expect("send");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            lookup.reply_source(first, self.service).expect("lookup"),
            expected
        );
        assert_eq!(
            reply_source(first, self.service).expect("one-shot"),
            expected
        );
        let started = Instant::now();
        for _ in 0..2000 {
            assert_eq!(
                lookup.reply_source(first, self.service).expect("repeat"),
                expected
            );
        }
        eprintln!(
            "{}: 2000 lookups on one socket in {:?}",
            self.family,
            started.elapsed()
        );
    }
}

/// The endpoint whose listener has the connection just made (and accepts it).
fn accepting_endpoint(lab: &Lab, listeners: &[TcpListener; 2]) -> SocketAddr {
    let deadline = Instant::now() + WAIT;
    loop {
        for (listener, endpoint) in listeners.iter().zip(lab.endpoints) {
            if listener.accept().is_ok() {
                return endpoint;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no listener accepted within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The oracle: `conntrack -L` lists this namespace's TCP entries; the one whose original
/// tuple is `src -> dst` gives the reply direction's source (the second `src=`/`sport=`).
/// A line: `tcp 6 431999 ESTABLISHED src=A dst=B sport=P dport=Q src=C dst=D sport=R dport=S
/// [ASSURED] mark=0 use=1`.
fn conntrack_reply_source(family: &str, src: SocketAddr, dst: SocketAddr) -> Option<SocketAddr> {
    let listing = run("conntrack", &["-L", "-f", family, "-p", "tcp"]);
    let mut found = None;
    for line in listing.lines() {
        let fields: Vec<(&str, &str)> = line
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .collect();
        let values = |key: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .collect()
        };
        let (addrs, dsts, sports, dports) = (
            values("src"),
            values("dst"),
            values("sport"),
            values("dport"),
        );
        if addrs.len() < 2 || sports.len() < 2 || dsts.is_empty() || dports.is_empty() {
            continue;
        }
        let at = |a: &str, p: &str| -> Option<SocketAddr> {
            Some(SocketAddr::new(a.parse().ok()?, p.parse().ok()?))
        };
        if at(addrs[0], sports[0]) == Some(src) && at(dsts[0], dports[0]) == Some(dst) {
            assert!(
                found.is_none(),
                "two entries for {src} -> {dst}:\n{listing}"
            );
            found = at(addrs[1], sports[1]);
        }
    }
    found
}

/// Runs `f` on a thread of its own in a new, empty network namespace. The namespace lives as
/// long as something in it does: the thread, its sockets, processes it started.
fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET) as root");
        f()
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs a tool (started from this thread, so in its namespace) and returns its stdout; fails
/// the test with its stderr when it fails.
fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool_path(tool))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Where `tool` is: `$PATH`, then the sbin directories (a user's PATH under sudo may lack
/// them). Fails naming the Debian package when it is nowhere.
fn tool_path(tool: &str) -> PathBuf {
    let package = match tool {
        "ip" => "iproute2",
        "ip6tables" => "iptables",
        other => other,
    };
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("`{tool}` is needed by this test and missing: apt-get install {package}")
    })
}
