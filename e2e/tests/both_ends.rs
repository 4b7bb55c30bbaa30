//! `--both-ends` against the real cluster: the probe is injected into the client pod and into
//! the Service's endpoint pod, the endpoint's capture is armed before the client connects,
//! and the verdict says where the packets died. Faults are made inside the endpoint pod's own
//! network namespace (from the node, with nsenter) or by its app. Run by e2e/run.sh.

use netdebug_e2e::{service_account_kubeconfig, TestNamespace, WEB_SERVER_POD};
use serde_json::Value;

use netdebug_e2e::{CLIENT_POD as CLIENT, WEB_SERVICE as SERVICE};

/// A namespace with the client and the Service's one endpoint, its httpd on `listen`.
fn scenario(tag: &str, listen: &str) -> TestNamespace {
    let ns = TestNamespace::new(tag);
    ns.apply(&WEB_SERVER_POD.replace("LISTEN", listen));
    ns.apply(SERVICE);
    ns.apply(CLIENT);
    ns.wait_ready("server");
    ns.wait_ready("client");
    ns.wait_cluster_ip_programmed("web");
    ns
}

fn run(ns: &TestNamespace, extra: &[&str]) -> (Option<i32>, Value, netdebug_e2e::Run) {
    run_to(ns, "svc/web", extra)
}

/// `kubectl netdebug pod/client --to TO --both-ends` with the suite's image, `-o json`.
fn run_to(ns: &TestNamespace, to: &str, extra: &[&str]) -> (Option<i32>, Value, netdebug_e2e::Run) {
    let mut args = vec![
        "pod/client",
        "--to",
        to,
        "--both-ends",
        "--connect-timeout",
        "1500ms",
    ];
    args.extend_from_slice(extra);
    let run = ns.netdebug_json(&args);
    let json = run.json();
    (run.code, json, run)
}

fn primary(v: &Value) -> &str {
    v["verdict"]["findings"][0]["rule"].as_str().unwrap_or("")
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn endpoint_dropping_the_port_in_its_own_namespace_is_located_there() {
    let ns = scenario("ends-drop", "8080");
    ns.exec_in_pod_netns(
        "server",
        &[
            "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP",
        ],
    );
    let (code, v, run) = run(&ns, &[]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_eq!(primary(&v), "destination_firewall_drop", "{run:?}");
    let peers = v["peers"].as_array().expect("peers in the JSON document");
    assert_eq!(peers.len(), 1, "{run:?}");
    assert_eq!(peers[0]["label"], "pod/server");
    assert_eq!(peers[0]["stream_end"]["state"], "done", "{run:?}");
    // The peer saw the client's SYN arrive (the DNAT undone: the pod IP and targetPort).
    let client_ip = ns.pod_ip("client");
    let saw_syn = peers[0]["events"].as_array().unwrap().iter().any(|e| {
        e["data"]["kind"] == "capture_summary"
            && e["data"]["tcp_flows"].as_array().unwrap().iter().any(|f| {
                f["client"].as_str().unwrap_or("").starts_with(&client_ip)
                    && f["server"].as_str().unwrap_or("").ends_with(":8080")
            })
    });
    assert!(saw_syn, "{run:?}");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn app_listening_on_loopback_only_is_named_by_the_peer() {
    let ns = scenario("ends-lo", "127.0.0.1:8080");
    let (code, v, run) = run(&ns, &[]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_eq!(primary(&v), "reset_by_destination", "{run:?}");
    let said = serde_json::to_string(&v["verdict"]).unwrap();
    assert!(said.contains("127.0.0.1:8080"), "{run:?}");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn an_ip_no_pod_owns_runs_single_ended_and_says_so() {
    let ns = scenario("ends-nopod", "8080");
    // The ClusterIP answers once kube-proxy has programmed it.
    ns.wait_service_http("client", "web");
    let cluster_ip = ns.cluster_ip("web");
    let (code, v, run) = run_to(&ns, &format!("{cluster_ip}:80"), &[]);
    assert_eq!(code, Some(0), "{run:?}");
    assert!(
        v["peers"].as_array().is_none_or(|p| p.is_empty()),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("no pod owns") && run.stderr.contains("running single-ended"),
        "{run:?}"
    );
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn bad_both_ends_flags_are_refused() {
    let ns = TestNamespace::new("ends-flags");
    let run = ns.netdebug(&["pod/x", "--dns", "a.example", "--both-ends"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("--to"), "{run:?}");
    for bad in ["0", "500"] {
        let run = ns.netdebug(&[
            "pod/x",
            "--to",
            "svc/web",
            "--both-ends",
            "--max-peers",
            bad,
        ]);
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(run.stderr.contains("--max-peers takes 1 to 10"), "{run:?}");
    }
}

/// A user who may debug in the client's namespace only: the peer in the Service's namespace
/// is named with the permission it lacks, and the run goes on from the source alone.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_peer_the_user_may_not_patch_is_named_and_the_run_goes_on() {
    let servers = scenario("ends-rbac-dst", "8080");
    servers.wait_service_http("client", "web");
    let clients = TestNamespace::new("ends-rbac-src");
    clients.apply(CLIENT);
    clients.wait_ready("client");
    clients.apply(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: debugger}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: debug-here}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/ephemeralcontainers]
  verbs: [patch]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [""]
  resources: [pods/portforward]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: debugger-debugs-here}
subjects: [{kind: ServiceAccount, name: debugger}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: debug-here}
"#,
    );
    // In the Service's namespace: read the Service and its endpoints, nothing more.
    servers.apply(&format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: read-services}}
rules:
- apiGroups: [""]
  resources: [services, pods]
  verbs: [get, list]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: debugger-reads}}
subjects: [{{kind: ServiceAccount, name: debugger, namespace: {}}}]
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-services}}
"#,
        clients.name
    ));
    let kubeconfig = service_account_kubeconfig(&clients, "debugger");
    let to = format!("svc/web.{}", servers.name);
    let (code, v, run) = run_to(&clients, &to, &["--kubeconfig", kubeconfig.path()]);
    assert_eq!(code, Some(0), "{run:?}");
    assert_eq!(v["status"], "healthy", "{run:?}");
    let peer = &v["peers"][0];
    let problem = peer["problem"].as_str().unwrap_or("");
    assert!(
        problem.contains("pods/ephemeralcontainers") && problem.contains(&servers.name),
        "{run:?}"
    );
    let said = serde_json::to_string(&v["verdict"]).unwrap();
    assert!(
        said.contains("pod/server"),
        "the verdict names the peer it lacks: {run:?}"
    );
}

/// A NetworkPolicy that denies the client: on a cluster that enforces it on the node, the SYN
/// leaves the client and never reaches the endpoint, and the verdict locates the loss between
/// the ends and names the policy; on one that does not, both ends see the connection work.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_denying_network_policy_is_named_where_the_syn_is_lost() {
    let ns = scenario("ends-netpol", "8080");
    ns.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-ingress}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{port: 8080}]
"#,
    );
    // The node's policy engine re-syncs every 2 s.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (code, v, run) = run(&ns, &[]);
    let server = format!("{}:8080", ns.pod_ip("server"));
    let outcome = v["probe"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["kind"] == "tcp" && e["data"]["address"] == server)
        .map(|e| e["data"]["outcome"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert_eq!(code, Some(1), "{run:?}");
    match outcome.as_str() {
        "timeout" => {
            assert_eq!(primary(&v), "syn_lost_between_ends", "{run:?}");
            let cause = v["verdict"]["cause"].as_str().unwrap_or("");
            assert!(cause.contains("web-ingress"), "{run:?}");
        }
        "ok" => {
            assert_eq!(primary(&v), "network_policy_not_enforced", "{run:?}");
            let said = serde_json::to_string(&v["verdict"]).unwrap();
            assert!(said.contains("both ends agree"), "{run:?}");
        }
        other => panic!("unexpected outcome {other:?}: {run:?}"),
    }
}

/// Each end gets the profile its own namespace admits: a peer in a namespace that enforces
/// restricted runs without NET_RAW, cannot capture, and the verdict says what that leaves open
/// instead of concluding from its silence.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_peer_in_a_restricted_namespace_says_it_could_not_capture() {
    let servers = TestNamespace::new("ends-pss-dst");
    servers.label("pod-security.kubernetes.io/enforce=restricted");
    servers.apply(netdebug_e2e::RESTRICTED_WEB_SERVER_POD);
    servers.apply(SERVICE);
    servers.wait_ready("server");
    servers.wait_cluster_ip_programmed("web");
    let clients = TestNamespace::new("ends-pss-src");
    clients.apply(CLIENT);
    clients.wait_ready("client");
    let to = format!("svc/web.{}", servers.name);
    let (code, v, run) = run_to(&clients, &to, &[]);
    assert_eq!(
        v["kube"]["profile"]["name"], "netadmin",
        "the source's own: {run:?}"
    );
    let peer = &v["peers"][0];
    assert_eq!(peer["label"], "pod/server", "{run:?}");
    let skipped = peer["events"].as_array().unwrap().iter().any(|e| {
        e["type"] == "skipped"
            && e["data"]["check"] == "capture"
            && e["data"]["missing_capability"] == "net_raw"
    });
    assert!(skipped, "the peer ran restricted, without NET_RAW: {run:?}");
    assert!(code.is_some(), "{run:?}");
    let unchecked = serde_json::to_string(&v["verdict"]["unchecked"]).unwrap();
    assert!(
        unchecked.contains("pod/server") && unchecked.contains("net_raw"),
        "the verdict says which end could not capture: {run:?}"
    );
}

/// The pod that owns the destination IP is not Running (its image cannot be pulled, its
/// sandbox and IP exist): it cannot be a peer; the verdict says so and the source's own
/// evidence still stands.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_peer_pod_not_running_is_named_and_the_run_goes_on() {
    let ns = scenario("ends-pending", "8080");
    ns.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: broken}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: main, image: local/no-such-image:1, imagePullPolicy: IfNotPresent}
"#,
    );
    netdebug_e2e::wait_until(
        std::time::Duration::from_secs(60),
        "pod broken to get an IP",
        || !ns.pod_ip("broken").is_empty(),
    );
    let to = format!("{}:8080", ns.pod_ip("broken"));
    let (code, v, run) = run_to(&ns, &to, &[]);
    assert!(code == Some(1) || code == Some(0), "{run:?}");
    let problem = v["peers"][0]["problem"].as_str().unwrap_or("");
    assert!(
        problem.contains("broken") && problem.contains("not running"),
        "{run:?}"
    );
    assert!(v["probe"]["stream_end"]["state"] == "done", "{run:?}");
    let unchecked = serde_json::to_string(&v["verdict"]["unchecked"]).unwrap();
    assert!(unchecked.contains("pod/broken"), "{run:?}");
}
