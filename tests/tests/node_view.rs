//! The node view's proof of the Service dataplane (`--node-conntrack`): the probe starts in a
//! "node" namespace, opens that namespace's conntrack table, enters the "pod" namespace and
//! connects from there; each connect to a ClusterIP is then looked up in the node's table,
//! where the DNAT happened.
//!
//! ```text
//! pod: p0 10.199.5.2/24 <-veth-> node: n0 10.199.5.1/24   (DNAT 10.199.96.10:80 -> srv:8080)
//!                                node: n1 10.199.6.1/24 <-veth-> srv: s0 10.199.6.2/24
//! ```
//! Oracles: `conntrack -L` in the node namespace (the same entry, read by another tool), and
//! the listener that accepted the connection. Needs root, ip, iptables and conntrack; fails
//! (never skips) without them.

use std::time::Duration;

use netdebug_scenarios::cmd::run_with_timeout;
use netdebug_scenarios::link::Link;
use netdebug_scenarios::netns::Netns;
use netdebug_scenarios::probe::{decode_run, json_plan, probe_path};
use netdebug_scenarios::require::require_tools;
use netdebug_verdict::{RuleCode, Severity};
use protocol::{NatState, NodePathEvidence, TcpEvidence, TcpOutcome, TcpRoundsEvidence};
use serde_json::json;

const POD: &str = "10.199.5.2";
const ENDPOINT: &str = "10.199.6.2";
/// A ClusterIP the node translates to ENDPOINT:8080.
const SERVICE: &str = "10.199.96.10";
/// A ClusterIP nothing on the node translates: forwarded as is and lost.
const UNPROGRAMMED: &str = "10.199.97.10";
/// A ClusterIP whose packets the node does not track (NOTRACK in the raw table, as an eBPF
/// dataplane bypasses conntrack): there is no entry to find.
const UNTRACKED: &str = "10.199.98.10";

struct NodeLab {
    pod: Netns,
    node: Netns,
    srv: Netns,
}

impl NodeLab {
    fn new(tag: &str) -> NodeLab {
        require_tools(&["ip", "iptables", "conntrack"]);
        let pod = Netns::new(&format!("{tag}p"));
        let node = Netns::new(&format!("{tag}n"));
        let srv = Netns::new(&format!("{tag}s"));
        Link::veth_pair(
            &pod,
            "p0",
            &format!("{POD}/24"),
            &node,
            "n0",
            "10.199.5.1/24",
        );
        Link::veth_pair(
            &node,
            "n1",
            "10.199.6.1/24",
            &srv,
            "s0",
            &format!("{ENDPOINT}/24"),
        );
        pod.add_route("default via 10.199.5.1");
        srv.add_route("default via 10.199.6.1");
        node.set_sysctl("net.ipv4.ip_forward", "1");
        // Forwarded as is, to a namespace that does not own the address: a silent loss.
        node.add_route(&format!("{UNPROGRAMMED}/32 dev n1"));
        node.add_route(&format!("{UNTRACKED}/32 dev n1"));
        node.iptables(&[
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-d",
            SERVICE,
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            &format!("{ENDPOINT}:8080"),
        ]);
        node.iptables(&[
            "-t",
            "raw",
            "-A",
            "PREROUTING",
            "-d",
            UNTRACKED,
            "-j",
            "NOTRACK",
        ]);
        NodeLab { pod, node, srv }
    }

    /// The probe started in the node namespace, entering the pod's, with the node's table.
    fn probe(&self, plan: serde_json::Value) -> netdebug_scenarios::probe::ProbeRun {
        let plan = json_plan(plan);
        let json = serde_json::to_string(&plan).unwrap();
        let probe = probe_path();
        let mut cmd = self.node.command(&[
            probe.to_str().unwrap(),
            "--node-conntrack",
            "--netns",
            self.pod.name(),
            &json,
        ]);
        let started = std::time::Instant::now();
        let out = run_with_timeout(
            &mut cmd,
            Duration::from_millis(plan.deadline_ms) + Duration::from_secs(5),
        );
        let run = decode_run(out, started.elapsed());
        run.assert_ok();
        run
    }

    /// `conntrack -L` in the node namespace for connections to `dst`.
    fn conntrack_listing(&self, dst: &str) -> String {
        self.node
            .try_exec(&["conntrack", "-L", "-p", "tcp", "--orig-dst", dst])
            .stdout
    }
}

fn cluster_ip(host: &str, port: u16) -> serde_json::Value {
    json!({"label": format!("svc/{host}"), "host": host, "port": port, "role": "cluster_ip"})
}

#[test]
fn each_clusterip_connect_shows_the_nodes_translation_or_its_absence() {
    let lab = NodeLab::new("nv");
    let _srv = lab
        .srv
        .spawn_tcp_server(format!("{ENDPOINT}:8080").parse().unwrap());
    let run = lab.probe(json!({"v": 1, "checks": ["tcp"], "connect_timeout_ms": 600,
        "deadline_ms": 8000, "targets": [cluster_ip(SERVICE, 80), cluster_ip(UNPROGRAMMED, 80),
        cluster_ip(UNTRACKED, 80)]}));
    // The checks ran in the pod's namespace, not the node's.
    let pod_inode = std::fs::metadata(lab.pod.path()).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    });
    assert_eq!(run.hello().netns_inode, pod_inode.ok());

    let of = |ip: &str| -> TcpEvidence {
        run.evidence::<TcpEvidence>()
            .into_iter()
            .find(|t| t.address.ip().to_string() == ip)
            .unwrap_or_else(|| panic!("no tcp evidence for {ip}"))
            .clone()
    };
    // Translated: the endpoint is the one conntrack -L lists for the same local port.
    let t = of(SERVICE);
    assert_eq!(t.outcome, TcpOutcome::Ok, "{t:?}");
    let nat = t.node_nat.clone().expect("node_nat on a ClusterIP connect");
    assert_eq!(nat.state, NatState::Translated, "{nat:?}");
    assert_eq!(
        nat.endpoint.unwrap().to_string(),
        format!("{ENDPOINT}:8080")
    );
    let listing = lab.conntrack_listing(SERVICE);
    let sport = t.local.unwrap().port();
    let entry = listing
        .lines()
        .find(|l| l.contains(&format!("sport={sport} ")))
        .unwrap_or_else(|| panic!("conntrack -L has no entry for port {sport}:\n{listing}"));
    assert!(
        entry.contains(&format!(
            "src={ENDPOINT} dst={POD} sport=8080 dport={sport}"
        )),
        "{entry}"
    );

    // Not translated: the entry's reply comes from the ClusterIP itself, as conntrack -L says.
    let t = of(UNPROGRAMMED);
    assert_eq!(t.outcome, TcpOutcome::Timeout, "{t:?}");
    assert_eq!(t.node_nat.as_ref().unwrap().state, NatState::NotTranslated);
    let sport = t.local.unwrap().port();
    let listing = lab.conntrack_listing(UNPROGRAMMED);
    assert!(
        listing.contains(&format!(
            "src={UNPROGRAMMED} dst={POD} sport=80 dport={sport}"
        )),
        "{listing}"
    );

    // Untracked: no entry, said as such (conntrack -L agrees: nothing listed).
    let t = of(UNTRACKED);
    assert_eq!(
        t.node_nat.as_ref().unwrap().state,
        NatState::NoEntry,
        "{t:?}"
    );
    assert!(
        !lab.conntrack_listing(UNTRACKED).contains(UNTRACKED),
        "the oracle lists an entry for the untracked address"
    );
}

/// Repeated connects from the pod's namespace are attributed to endpoints by the node's
/// table (a pod alone cannot see its ClusterIP's translation).
#[test]
fn rounds_from_the_pod_are_attributed_by_the_nodes_table() {
    let lab = NodeLab::new("nvr");
    let _srv = lab
        .srv
        .spawn_tcp_server(format!("{ENDPOINT}:8080").parse().unwrap());
    let run = lab.probe(json!({"v": 1, "checks": ["tcp"], "connect_timeout_ms": 600,
        "deadline_ms": 10000, "targets": [cluster_ip(SERVICE, 80)],
        "rounds": {"repeat": 6, "rate": 50}}));
    let r = run.evidence::<TcpRoundsEvidence>()[0].clone();
    assert_eq!(r.unattributed, None, "{r:?}");
    assert_eq!(r.chosen.len(), 1, "{r:?}");
    assert_eq!(r.chosen[0].endpoint.to_string(), format!("{ENDPOINT}:8080"));
    assert_eq!(r.chosen[0].attempts, 6);
    // The round-0 connect carries the node's answer too.
    let t = run.evidence::<TcpEvidence>()[0].clone();
    assert_eq!(t.node_nat.unwrap().state, NatState::Translated);
}

/// Targets for the node's routes: a "remote pod" behind the overlay, and one only the default
/// route covers. The node_path check sends nothing; its routes are lookups.
const REMOTE_POD: &str = "10.199.77.5";
const UNROUTED_POD: &str = "10.199.88.5";
/// The overlay device, named as flannel names its own: a dotted name, whose sysctl and /proc
/// paths spell the dot as a slash (regression: the probe once read no rp_filter for it).
const OVERLAY: &str = "flannel.1";

/// The node with a VXLAN overlay on n1 (its default route's device) carrying 10.199.77.0/24.
fn overlay_lab(tag: &str, overlay_mtu: Option<&str>) -> NodeLab {
    let lab = NodeLab::new(tag);
    match overlay_mtu {
        // Bound to n1, the kernel sizes it (and caps it) to n1's MTU less VXLAN's 50 bytes.
        None => lab.node.ip(&[
            "link", "add", OVERLAY, "type", "vxlan", "id", "42", "dev", "n1", "dstport", "4789",
        ]),
        // Unbound (as some CNIs create it), nothing stops a size the underlay cannot carry.
        Some(mtu) => {
            lab.node.ip(&[
                "link",
                "add",
                OVERLAY,
                "type",
                "vxlan",
                "id",
                "42",
                "dstport",
                "4789",
                "local",
                "10.199.6.1",
            ]);
            lab.node.ip(&["link", "set", OVERLAY, "mtu", mtu])
        }
    };
    lab.node.link_up(OVERLAY);
    lab.node.add_route(&format!("10.199.77.0/24 dev {OVERLAY}"));
    lab.node.add_route(&format!("default via {ENDPOINT}"));
    lab
}

fn node_path_plan() -> serde_json::Value {
    json!({"v": 1, "checks": ["node_path", "links"], "deadline_ms": 5000, "targets": [
        {"label": "pod/remote", "host": REMOTE_POD, "port": 8080, "role": "endpoint"},
        {"label": "pod/lost", "host": UNROUTED_POD, "port": 8080, "role": "endpoint"}]})
}

/// The node's half of the path, read in the node's namespace while the links check runs in
/// the pod's. Oracles: `ip -d link`, `ip route get` and the sysctls in the node namespace.
#[test]
fn the_nodes_overlay_routes_and_settings_are_read_in_the_nodes_namespace() {
    let lab = overlay_lab("nvp", None);
    let run = lab.probe(node_path_plan());
    let n = run.one::<NodePathEvidence>().clone();
    assert_eq!(n.errors, Vec::<String>::new());
    let link = &lab.node.ip_json(&["-d", "link", "show", OVERLAY])[0];
    assert_eq!(n.overlays.len(), 1, "{n:?}");
    assert_eq!(n.overlays[0].name, OVERLAY);
    assert_eq!(
        n.overlays[0].kind.as_str(),
        link["linkinfo"]["info_kind"].as_str().unwrap()
    );
    assert_eq!(u64::from(n.overlays[0].mtu), link["mtu"].as_u64().unwrap());
    assert_eq!(
        n.overlays[0].mtu, 1450,
        "the kernel's VXLAN default on a 1500 device"
    );
    let underlay = n.underlay.clone().expect("the default route's device");
    assert_eq!((underlay.name.as_str(), underlay.mtu), ("n1", 1500));
    for (address, via_default) in [(REMOTE_POD, false), (UNROUTED_POD, true)] {
        let route = n
            .routes
            .iter()
            .find(|r| r.address.to_string() == address)
            .unwrap_or_else(|| panic!("no node route for {address}: {n:?}"));
        let oracle = &lab.node.ip_json(&["route", "get", address])[0];
        assert_eq!(route.dev.as_deref(), oracle["dev"].as_str(), "{route:?}");
        assert_eq!(
            route.gateway.map(|g| g.to_string()).as_deref(),
            oracle["gateway"].as_str()
        );
        assert_eq!(route.via_default, via_default, "{route:?}");
    }
    let vx0 = n
        .rp_filter
        .iter()
        .find(|s| s.dev == OVERLAY)
        .expect("the overlay's rp_filter");
    let sysctl = |k: &str| lab.node.sysctl(k).trim().parse::<u32>().unwrap();
    assert_eq!(
        vx0.value,
        sysctl("net.ipv4.conf.all.rp_filter").max(sysctl("net.ipv4.conf.flannel/1.rp_filter"))
    );
    let ct = n.conntrack.clone().expect("the node's conntrack");
    assert!(ct.present, "nf_conntrack is loaded (the DNAT rule): {ct:?}");
    assert_eq!(
        ct.max,
        Some(sysctl("net.netfilter.nf_conntrack_max") as u64)
    );
    assert!(ct.insert_failed.is_some(), "the node's statistics: {ct:?}");
    // The node's counters, read in the node's namespace (the same file the oracle reads).
    let counters = n.counters.clone().expect("the node's counters");
    let forwarded = counters
        .counters
        .get(&protocol::Counter::IpForwDatagrams.into())
        .expect("Ip.ForwDatagrams");
    let snmp = lab.node.exec(&["cat", "/proc/net/snmp"]).stdout;
    let oracle: u64 = {
        let lines: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Ip:")).collect();
        let names: Vec<&str> = lines[0].split_whitespace().collect();
        let values: Vec<&str> = lines[1].split_whitespace().collect();
        let i = names.iter().position(|n| *n == "ForwDatagrams").unwrap();
        values[i].parse().unwrap()
    };
    // Read after the probe: the node forwarded nothing since (no traffic in this run).
    assert_eq!(forwarded.value, oracle, "{counters:?}");
    // The pod's own links came from the pod's namespace: p0, not the node's overlay.
    let links = run.one::<protocol::LinksEvidence>();
    assert!(links.links.iter().any(|l| l.name == "p0"));
    assert!(!links.links.iter().any(|l| l.name == OVERLAY));

    // The pod's MTU (1500) is larger than the overlay's (1450) and the remote pod's route
    // crosses it: the overlay MTU trap, named with both devices.
    let v = run.local_verdict(&lab.pod, "pod/remote", |_| true);
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::PodMtuOverOverlay)
        .unwrap_or_else(|| panic!("{v:#?}"));
    assert_eq!(f.severity, Severity::Failure, "{f:#?}");
    assert!(
        f.cause.contains("p0 has MTU 1500")
            && f.cause.contains(&format!("{OVERLAY} (vxlan) carries 1450")),
        "{}",
        f.cause
    );
}

/// An overlay set to the underlay's own MTU leaves no room for VXLAN's 50 bytes.
#[test]
fn an_overlay_as_large_as_its_underlay_is_the_mtu_trap() {
    let lab = overlay_lab("nvo", Some("1500"));
    let run = lab.probe(node_path_plan());
    let v = run.local_verdict(&lab.pod, "pod/remote", |_| true);
    let f = v
        .findings
        .iter()
        .find(|f| f.rule == RuleCode::OverlayMtuExceedsUnderlay)
        .unwrap_or_else(|| panic!("{v:#?}"));
    assert!(
        f.cause.contains(&format!(
            "{OVERLAY} (vxlan) has MTU 1500 but its encapsulation adds 50 bytes on n1 (MTU 1500)"
        )),
        "{}",
        f.cause
    );
    assert!(
        !v.rules_fired.contains(&RuleCode::PodMtuOverOverlay),
        "the pod's 1500 fits the overlay's 1500: {v:#?}"
    );
}
