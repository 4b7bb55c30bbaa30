//! Many sources against the real cluster: `-l SELECTOR` runs the probe from every matching pod
//! and the aggregate verdict explains the split between them. Run by e2e/run.sh.

use netdebug_e2e::{TestNamespace, WEB_SERVER_POD, WEB_SERVICE};
use serde_json::Value;

/// A caller pod labelled role=caller; `DNS` is replaced by its pod-level DNS settings.
const CALLER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: NAME, labels: {role: caller}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
DNS"#;

/// `kubectl netdebug -l role=caller --to svc/web ...` with the suite's image, `-o json`.
fn run(ns: &TestNamespace, extra: &[&str]) -> (Option<i32>, Value, netdebug_e2e::Run) {
    let mut args = vec![
        "-l",
        "role=caller",
        "--to",
        "svc/web",
        "--connect-timeout",
        "1500ms",
    ];
    args.extend_from_slice(extra);
    let run = ns.netdebug_json(&args);
    let json = run.json();
    (run.code, json, run)
}

/// Two callers selected by one label, one of them with a pod-level dnsConfig whose only
/// nameserver is an address that does not answer DNS (the web pod, which drops port 53):
/// the aggregate names that pod and its nameserver, and the other pod as working.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_pod_with_its_own_silent_nameserver_is_named_and_its_sibling_works() {
    let ns = TestNamespace::new("src-dns");
    ns.apply(&WEB_SERVER_POD.replace("LISTEN", "8080"));
    ns.apply(WEB_SERVICE);
    ns.wait_ready("server");
    let server_ip = ns.pod_ip("server");
    // The nameserver that does not answer: port 53 dropped in the server pod's own namespace.
    ns.exec_in_pod_netns(
        "server",
        &[
            "iptables", "-I", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP",
        ],
    );
    ns.apply(&CALLER.replace("NAME", "caller-ok").replace("DNS", ""));
    let dns = format!(
        "  dnsPolicy: None\n  dnsConfig:\n    nameservers: [\"{server_ip}\"]\n    searches: [\"{0}.svc.cluster.local\", \"svc.cluster.local\", \"cluster.local\"]\n    options: [{{name: ndots, value: \"5\"}}]\n",
        ns.name
    );
    ns.apply(&CALLER.replace("NAME", "caller-bad").replace("DNS", &dns));
    ns.wait_ready("caller-ok");
    ns.wait_ready("caller-bad");
    ns.wait_cluster_ip_programmed("web");

    let (code, v, run) = run(&ns, &[]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_eq!(v["format"], "kubectl-netdebug/sources", "{run:?}");
    assert_eq!(v["split"]["kind"], "fails_in_some_pods", "{run:?}");
    assert_eq!(
        v["split"]["pods"],
        serde_json::json!(["caller-bad"]),
        "{run:?}"
    );
    // The differences and the cause: what the aggregate says, without the sources' evidence.
    let said = format!("{} {} {}", v["headline"], v["differences"], v["cause"]);
    assert!(
        said.contains("caller-bad"),
        "the failing pod is named: {run:?}"
    );
    assert!(
        said.contains(&server_ip),
        "its nameserver is named: {run:?}"
    );
    let sources = v["sources"].as_array().expect("every source's evidence");
    assert_eq!(sources.len(), 2, "{run:?}");
    let status_of = |pod: &str| {
        sources
            .iter()
            .find(|s| s["pod"] == pod)
            .map(|s| s["document"]["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no source {pod}: {run:?}"))
    };
    assert_eq!(status_of("caller-ok"), "healthy", "{run:?}");
    assert_ne!(status_of("caller-bad"), "healthy", "{run:?}");
}

/// `--per-node` with every pod on one node: one source runs, the other is skipped and named,
/// and the verdict says one node.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn per_node_on_one_node_runs_one_pod_and_says_so() {
    let ns = TestNamespace::new("src-node");
    ns.apply(&WEB_SERVER_POD.replace("LISTEN", "8080"));
    ns.apply(WEB_SERVICE);
    for name in ["caller-a", "caller-b"] {
        ns.apply(&CALLER.replace("NAME", name).replace("DNS", ""));
    }
    for pod in ["server", "caller-a", "caller-b"] {
        ns.wait_ready(pod);
    }
    ns.wait_cluster_ip_programmed("web");
    let (code, v, run) = run(&ns, &["--per-node"]);
    assert_eq!(code, Some(0), "{run:?}");
    assert_eq!(v["sources"].as_array().map(Vec::len), Some(1), "{run:?}");
    let skipped = v["skipped"].as_array().expect("the skipped pod is named");
    assert_eq!(skipped.len(), 1, "{run:?}");
    assert_eq!(skipped[0]["reason"], "same_node", "{run:?}");
    assert_eq!(v["split"]["kind"], "works_everywhere", "{run:?}");
    let said = format!("{} {}", v["headline"], v["notes"]);
    assert!(said.contains("1 node"), "{run:?}");
}

/// A selector that matches nothing is an error that names it, exit 2, nothing injected.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_selector_matching_nothing_is_named() {
    let ns = TestNamespace::new("src-none");
    let run = ns.netdebug(&["-l", "role=nobody", "--to", "svc/web"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("role=nobody"), "{run:?}");
}
