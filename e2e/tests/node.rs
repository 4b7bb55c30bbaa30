//! The node view against the real cluster: `kubectl netdebug node/NAME --to svc/web` runs the
//! probe in the node's own network namespace from a short-lived pod, and deletes that pod;
//! `pod/x --via-node` enters a pod's namespace from its node, adding nothing to the pod; the
//! node's conntrack shows each ClusterIP connect's translation, or its absence when
//! kube-proxy's rules for the Service are gone. Run by e2e/run.sh.

use std::process::Command;

use netdebug_e2e::{
    evidence, kubectl, TestNamespace, RESTRICTED_CLIENT_POD, RESTRICTED_WEB_SERVER_POD,
    WEB_SERVER_POD, WEB_SERVICE,
};
use serde_json::Value;

/// The first node's name.
fn a_node() -> String {
    let out = kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !name.is_empty(),
        "no node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

/// Pods the node view left in `ns` (it labels its probe pods).
fn probe_pods_left(ns: &TestNamespace) -> String {
    let out = kubectl(&[
        "-n",
        &ns.name,
        "get",
        "pods",
        "-l",
        "netdebug.io/node-probe",
        "-o",
        "name",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A namespace with pod `server` on 8080 behind Service `web`, its ClusterIP programmed.
fn serving_web(tag: &str) -> TestNamespace {
    let ns = TestNamespace::new(tag);
    ns.apply(&WEB_SERVER_POD.replace("LISTEN", "8080"));
    ns.apply(WEB_SERVICE);
    ns.wait_ready("server");
    ns.wait_cluster_ip_programmed("web");
    ns
}

/// `kubectl netdebug node/NODE --to svc/web -o json EXTRA` with the e2e probe image.
fn node_run(ns: &TestNamespace, node: &str, extra: &[&str]) -> netdebug_e2e::Run {
    let source = format!("node/{node}");
    let mut args = vec![source.as_str(), "--to", "svc/web"];
    args.extend_from_slice(extra);
    ns.netdebug_json(&args)
}

/// The one evidence of `kind` in a run's document.
#[track_caller]
fn the_evidence<'a>(v: &'a Value, kind: &str) -> &'a Value {
    match evidence(v, kind).as_slice() {
        [one] => one,
        other => panic!("{} {kind} evidence: {v}", other.len()),
    }
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn the_node_reaches_a_service_and_its_probe_pod_is_gone_after() {
    let ns = serving_web("node");
    let node = a_node();
    let run = node_run(&ns, &node, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let v = run.json();
    assert_eq!(v["title"]["source"], format!("node/{node}"), "{run:?}");
    // Both the ClusterIP (translated on this node) and the endpoint answered.
    let connected = evidence(&v, "tcp")
        .iter()
        .filter(|t| t["outcome"] == "ok")
        .count();
    assert_eq!(connected, 2, "{run:?}");
    // The node's conntrack shows the DNAT of the ClusterIP to the one endpoint.
    let server = format!("{}:8080", ns.pod_ip("server"));
    let nat = &clusterip_connect(&v)["node_nat"];
    assert_eq!(nat["state"], "translated", "{run:?}");
    assert_eq!(nat["endpoint"], server.as_str(), "{run:?}");
    // The node's half, read where the probe already is (no setns: this probe pod has no
    // SYS_ADMIN): its route to the server and its counters, without errors.
    let node_path = the_evidence(&v, "node_path");
    assert_eq!(node_path["errors"], serde_json::json!([]), "{node_path}");
    assert!(node_path["counters"].is_object(), "{node_path}");
    assert!(
        node_path["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["address"] == ns.pod_ip("server").as_str() && r["dev"].is_string()),
        "{node_path}"
    );
    assert_eq!(probe_pods_left(&ns), "", "the probe pod was deleted");
}

/// The `tcp` evidence of the connect to the ClusterIP.
fn clusterip_connect(v: &Value) -> &Value {
    evidence(v, "tcp")
        .into_iter()
        .find(|t| t["role"] == "cluster_ip")
        .unwrap_or_else(|| panic!("no ClusterIP connect in {v}"))
}

/// `--via-node` against a pod in a `restricted` namespace: the probe (from a probe pod in
/// another namespace) captures the test traffic in the pod's namespace, reads the pod's own
/// resolv.conf, sees the node translate the ClusterIP, and the pod's spec gains no ephemeral
/// container.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn via_node_captures_in_a_restricted_pod_and_leaves_its_spec_alone() {
    let ns = TestNamespace::new("via");
    ns.label("pod-security.kubernetes.io/enforce=restricted");
    let probes = TestNamespace::new("via-probe");
    ns.apply(RESTRICTED_WEB_SERVER_POD);
    ns.apply(RESTRICTED_CLIENT_POD);
    ns.apply(WEB_SERVICE);
    ns.wait_ready("server");
    ns.wait_ready("client");
    ns.wait_cluster_ip_programmed("web");
    ns.wait_dns("client", "web");
    let run = ns.netdebug_json(&[
        "pod/client",
        "--via-node",
        "--node-namespace",
        &probes.name,
        "--to",
        "svc/web",
        "--capture",
    ]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let v = run.json();
    let events = v["probe"]["events"].as_array().unwrap();
    // Root with the node probe's capabilities, not the restricted profile's nobody.
    let hello = &events[0]["data"];
    assert_eq!(hello["uid"], 0, "{run:?}");
    // In the pod's namespace: the capture saw the pod's own handshakes, from its address.
    let client_ip = ns.pod_ip("client");
    let capture = the_evidence(&v, "capture_summary");
    assert!(
        capture["packets_captured"].as_u64().unwrap_or(0) > 0,
        "{capture}"
    );
    assert!(
        capture["tcp_flows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["client"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("{client_ip}:"))),
        "flows from the pod's address {client_ip}: {capture}"
    );
    // The pod's resolver, read through one of its containers.
    let dns = the_evidence(&v, "dns_config");
    assert!(
        dns["nameservers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "10.96.0.10"),
        "{dns}"
    );
    let nat = &clusterip_connect(&v)["node_nat"];
    assert_eq!(nat["state"], "translated", "{run:?}");
    assert_eq!(
        nat["endpoint"],
        format!("{}:8080", ns.pod_ip("server")).as_str()
    );
    // The node's half, read in the node's namespace: its route to the server pod leaves by
    // the pod bridge, which `ip route get` on this machine (the node) agrees with.
    let node_path = the_evidence(&v, "node_path");
    let server_ip = ns.pod_ip("server");
    let route = node_path["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == server_ip.as_str())
        .unwrap_or_else(|| panic!("no node route to {server_ip}: {node_path}"));
    let oracle = ip(&["-o", "route", "get", &server_ip]);
    let dev = route["dev"].as_str().unwrap_or("?");
    assert!(
        oracle.contains(&format!(" dev {dev} ")),
        "node_path says {dev}, ip route get says {oracle}"
    );
    let ephemeral = kubectl(&[
        "-n",
        &ns.name,
        "get",
        "pod",
        "client",
        "-o",
        "jsonpath={.spec.ephemeralContainers}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ephemeral.stdout).trim(),
        "",
        "no ephemeral container added"
    );
    assert_eq!(probe_pods_left(&probes), "", "the probe pod was deleted");
}

/// kube-proxy paused for the length of one run (SIGSTOP, so it cannot restore what the test
/// removes), and the nat rules that send one ClusterIP to its Service chain removed; both
/// restored on drop, also when the test fails: the rules put back and kube-proxy resumed
/// (which then rewrites its rules anyway).
///
/// Without its DNAT, a connect to the ClusterIP would follow the node's default route off this
/// machine: a /32 route onto the pod bridge (found as the route to a pod) keeps it here, where
/// nothing answers ARP for it. The conntrack entry is still made (it is confirmed before the
/// neighbour lookup), untranslated, which is what the test looks for.
struct ClusterIpUnprogrammed {
    kube_proxy: String,
    removed: Vec<String>,
    contained: Option<String>,
}

impl ClusterIpUnprogrammed {
    fn new(cluster_ip: &str, a_pod_ip: &str) -> ClusterIpUnprogrammed {
        let pid = Command::new("pgrep")
            .args(["-x", "kube-proxy"])
            .output()
            .expect("pgrep");
        let kube_proxy = String::from_utf8_lossy(&pid.stdout)
            .lines()
            .next()
            .unwrap_or_else(|| {
                panic!(
                    "no kube-proxy process on this machine: this test runs on the cluster's node"
                )
            })
            .to_string();
        signal(&kube_proxy, "-STOP");
        let mut guard = ClusterIpUnprogrammed {
            kube_proxy,
            removed: Vec::new(),
            contained: None,
        };
        let bridge = ip(&["-o", "route", "get", a_pod_ip]);
        let dev = bridge
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .unwrap_or_else(|| panic!("no device in `ip route get {a_pod_ip}`: {bridge}"))
            .to_string();
        let route = format!("{cluster_ip}/32");
        ip(&["route", "add", &route, "dev", &dev]);
        guard.contained = Some(route);
        let rules = iptables_rules();
        let needle = format!("-d {cluster_ip}/32");
        guard.removed = rules
            .lines()
            .filter(|r| r.contains(&needle))
            .map(str::to_string)
            .collect();
        assert!(
            !guard.removed.is_empty(),
            "no KUBE-SERVICES rule for {cluster_ip}:\n{rules}"
        );
        // `-S` prints the rules as `-A CHAIN ...` with quoted comments, which
        // iptables-restore parses as iptables did.
        let deletes: Vec<String> = guard
            .removed
            .iter()
            .map(|r| r.replacen("-A ", "-D ", 1))
            .collect();
        nat_restore(&deletes).unwrap_or_else(|e| panic!("removing the rules: {e}"));
        guard
    }
}

impl Drop for ClusterIpUnprogrammed {
    fn drop(&mut self) {
        let present = iptables_rules();
        let missing: Vec<String> = self
            .removed
            .iter()
            .filter(|r| !present.lines().any(|l| l == r.as_str()))
            .cloned()
            .collect();
        if let Err(e) = nat_restore(&missing) {
            eprintln!("putting back the KUBE-SERVICES rules failed ({e}); kube-proxy resyncs them");
        }
        if let Some(route) = &self.contained {
            let _ = Command::new("ip").args(["route", "del", route]).status();
        }
        signal(&self.kube_proxy, "-CONT");
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn iptables_rules() -> String {
    let out = Command::new("iptables")
        .args(["-t", "nat", "-S", "KUBE-SERVICES"])
        .output()
        .expect("iptables");
    assert!(
        out.status.success(),
        "iptables -t nat -S KUBE-SERVICES: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Applies `lines` (`-A`/`-D` rules) to the nat table in one iptables-restore, keeping the
/// rest.
fn nat_restore(lines: &[String]) -> Result<(), String> {
    use std::io::Write;
    if lines.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("iptables-restore: {e}"))?;
    let input = format!("*nat\n{}\nCOMMIT\n", lines.join("\n"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "iptables-restore: {}\n{input}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn signal(pid: &str, sig: &str) {
    let ok = Command::new("kill").args([sig, pid]).status();
    assert!(ok.is_ok_and(|s| s.success()), "kill {sig} {pid}");
}

/// A namespace that enforces `baseline` forbids the host network: the error names the level
/// and the flag, and nothing is created.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_namespace_that_forbids_host_pods_is_named() {
    let ns = TestNamespace::new("node-psa");
    ns.label("pod-security.kubernetes.io/enforce=baseline");
    let node = a_node();
    let run = ns.netdebug(&[&format!("node/{node}"), "--to", "10.96.0.10:53"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("enforces Pod Security level baseline"),
        "{run:?}"
    );
    assert!(run.stderr.contains("--node-namespace"), "{run:?}");
    assert_eq!(probe_pods_left(&ns), "");
}

/// An unknown node is an error that says so.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn an_unknown_node_is_named() {
    let ns = TestNamespace::new("node-none");
    let run = ns.netdebug(&["node/no-such-node", "--to", "10.96.0.10:53"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("node \"no-such-node\" not found"),
        "{run:?}"
    );
}

/// With kube-proxy's rules for one Service gone from the node, `node/NAME --to svc/web` finds
/// the ClusterIP not translated there while the endpoint answers, and says so.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_service_kube_proxy_does_not_program_is_named_untranslated_on_the_node() {
    let ns = serving_web("node-unprog");
    let node = a_node();
    let run = {
        let _unprogrammed = ClusterIpUnprogrammed::new(&ns.cluster_ip("web"), &ns.pod_ip("server"));
        node_run(&ns, &node, &["--connect-timeout", "1s"])
    };
    // kube-proxy is back and programs the Service again.
    ns.wait_cluster_ip_programmed("web");
    assert_eq!(run.code, Some(1), "{run:?}");
    let v = run.json();
    assert_eq!(
        clusterip_connect(&v)["node_nat"]["state"],
        "not_translated",
        "{run:?}"
    );
    // The first finding; the containment route adds its own (nothing answers ARP on the
    // bridge for the ClusterIP), which a real node without the rules would not show.
    assert_eq!(
        v["verdict"]["findings"][0]["rule"], "cluster_ip_not_translated",
        "{run:?}"
    );
    let cause = v["verdict"]["cause"].as_str().unwrap();
    assert!(
        cause.contains(&format!("was not translated on node {node}")),
        "{cause}"
    );
    assert_eq!(probe_pods_left(&ns), "");
}
