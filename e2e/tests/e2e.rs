//! The plugin against a real cluster: `kubectl netdebug ...` found by kubectl's plugin
//! discovery, against pods, Services, EndpointSlices and NetworkPolicies this suite creates in
//! its own namespaces. Run by e2e/run.sh (`cargo test -p netdebug-e2e -- --ignored`).
//!
//! Every scenario asserts on `-o json` (verdict/OUTPUT.md): the exit code, the rule that fired,
//! and the probe evidence behind it, so a wrong verdict or missing evidence fails the test.

use std::time::Duration;

use netdebug_e2e::{evidence, kubectl, TestNamespace};
use serde_json::Value;

/// The pod behind Service `web`: labels app=web, declares container port 8080 named `http`,
/// runs `command` (a YAML list); `extra` is more of the container spec (indented 4).
fn server_pod(command: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: server, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: {{image}}
    imagePullPolicy: IfNotPresent
    command: {command}
    ports: [{{name: http, containerPort: 8080}}]
{extra}"#
    )
}

/// A busybox httpd on :8080 serving an index page.
const HTTPD: &str = r#"["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]"#;

const SERVICE: &str = netdebug_e2e::WEB_SERVICE;

/// The pod the probe is injected into.
const CLIENT: &str = netdebug_e2e::CLIENT_POD;

fn run_json(ns: &TestNamespace, args: &[&str]) -> (Option<i32>, Value, netdebug_e2e::Run) {
    let run = ns.netdebug_json(args);
    let json = run.json();
    (run.code, json, run)
}

fn rules(v: &Value) -> Vec<String> {
    v["verdict"]["rules_fired"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The verdict's rules include `rule`.
fn assert_fired(v: &Value, rule: &str, run: &netdebug_e2e::Run) {
    assert!(
        rules(v).iter().any(|r| r == rule),
        "rule {rule} did not fire: {run:?}"
    );
}

fn tcp_outcome<'a>(v: &'a Value, address: &str) -> &'a str {
    evidence(v, "tcp")
        .into_iter()
        .find(|e| e["address"] == address)
        .and_then(|e| e["outcome"].as_str())
        .unwrap_or_else(|| panic!("no tcp evidence for {address}: {v:#}"))
}

/// Server, Service and client, all Ready.
fn healthy_namespace(tag: &str) -> TestNamespace {
    let ns = TestNamespace::new(tag);
    ns.apply(&server_pod(HTTPD, ""));
    ns.apply(SERVICE);
    ns.apply(CLIENT);
    ns.wait_ready("server");
    ns.wait_ready("client");
    ns.wait_dns("client", "web");
    ns.wait_service_http("client", "web");
    ns
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn healthy_service_is_proven_end_to_end() {
    let ns = healthy_namespace("healthy");
    let (code, v, run) = run_json(&ns, &["pod/client", "--to", "svc/web"]);
    assert_eq!(code, Some(0), "{run:?}");
    assert_eq!(v["status"], "healthy", "{run:?}");

    // Kubernetes evidence: the Service, its one ready endpoint, the named targetPort resolved.
    let dest = &v["kube"]["destination"];
    assert_eq!(dest["type"], "service");
    let cip = ns.cluster_ip("web");
    assert_eq!(dest["cluster_ip"], cip.as_str());
    let server_ip = ns.pod_ip("server");
    let endpoints = dest["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{dest:#}");
    assert_eq!(endpoints[0]["ip"], server_ip.as_str());
    assert_eq!(endpoints[0]["port"], 8080);
    assert_eq!(endpoints[0]["ready"], true);
    assert_eq!(endpoints[0]["pod"], "server");

    // Probe evidence from inside the client's network namespace.
    let hello = &v["probe"]["events"][0];
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["data"]["hostname"], "client");
    assert_eq!(tcp_outcome(&v, &format!("{cip}:80")), "ok");
    assert_eq!(tcp_outcome(&v, &format!("{server_ip}:8080")), "ok");
    // The name an app in this namespace would use resolves, through the search list, to the
    // ClusterIP.
    let lookups = evidence(&v, "dns_lookup");
    let web = lookups
        .iter()
        .find(|l| l["name"] == "web")
        .unwrap_or_else(|| panic!("no lookup of `web`: {lookups:#?}"));
    assert!(
        web["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == cip.as_str()),
        "{web:#}"
    );
    let routes = evidence(&v, "route");
    assert!(
        routes
            .iter()
            .any(|r| r["destination"] == cip.as_str() && r["outcome"]["result"] == "found"),
        "{routes:#?}"
    );
    assert_eq!(v["probe"]["stream_end"]["state"], "done");
    // The events came through port-forward, from the probe itself, before the kubelet
    // reported the container.
    assert_eq!(
        v["probe"]["delivery"]["via"], "port-forward",
        "{:#}",
        v["probe"]["delivery"]
    );
    assert!(v["probe"]["delivery"]["first_event_ms"].as_f64().is_some());
    // Each port-forward attempt is a request: at least the one that answered, and no more than
    // one per 50 ms pause (the quick phase) while the probe was starting, plus that one.
    let delivery = &v["probe"]["delivery"];
    let requests = delivery["port_forward_requests"].as_u64().unwrap_or(0);
    let first_event_ms = delivery["first_event_ms"].as_f64().unwrap_or(0.0);
    assert!(
        requests >= 1 && requests as f64 <= first_event_ms / 50.0 + 1.0,
        "{delivery:#}"
    );

    // The same run for a human: a one-line OK header and the evidence block.
    let text = ns.netdebug_with_image(&["client", "--to", "svc/web"]);
    assert_eq!(text.code, Some(0), "{text:?}");
    let header = text.stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("pod/client") && header.contains("OK"),
        "{text:?}"
    );
    assert!(text.stdout.contains("1/1 endpoints ready"), "{text:?}");

    // And for the incident channel.
    let md = ns.netdebug_with_image(&["client", "--to", "svc/web", "-o", "markdown"]);
    assert_eq!(md.code, Some(0), "{md:?}");
    assert!(md.stdout.contains('|'), "a table: {md:?}");
    assert!(md.stdout.lines().count() < 25, "{md:?}");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn source_from_a_deployment_picks_a_ready_pod_and_says_which() {
    let ns = TestNamespace::new("deploy");
    ns.apply(&server_pod(HTTPD, ""));
    ns.apply(SERVICE);
    ns.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: {image}
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
"#,
    );
    ns.wait_ready("server");
    let out = kubectl(&[
        "-n",
        &ns.name,
        "rollout",
        "status",
        "deploy/shop",
        "--timeout=90s",
    ]);
    assert!(out.status.success(), "{out:?}");
    ns.wait_dns("deploy/shop", "web");
    ns.wait_service_http("deploy/shop", "web");
    let (code, v, run) = run_json(&ns, &["deploy/shop", "--to", "svc/web:http"]);
    assert_eq!(code, Some(0), "{run:?}");
    let source = &v["kube"]["source"];
    assert!(
        source["pod"].as_str().unwrap().starts_with("shop-"),
        "{source:#}"
    );
    assert!(
        source["picked_from"]
            .as_str()
            .unwrap_or_default()
            .contains("shop"),
        "says which workload the pod was picked from: {source:#}"
    );
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn pod_destination_by_name_and_port() {
    let ns = healthy_namespace("poddest");
    let (code, v, run) = run_json(&ns, &["client", "--to", "pod/server:8080"]);
    assert_eq!(code, Some(0), "{run:?}");
    assert_eq!(v["kube"]["destination"]["type"], "pod");
    let server_ip = ns.pod_ip("server");
    assert_eq!(tcp_outcome(&v, &format!("{server_ip}:8080")), "ok");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn selector_matching_no_pod_names_the_selector_and_the_closest_labels() {
    let ns = healthy_namespace("selector");
    ns.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web-typo}
spec:
  selector: {app: wbe}
  ports: [{port: 80, targetPort: 8080}]
"#,
    );
    ns.wait_dns("client", "web-typo");
    let (code, v, run) = run_json(&ns, &["client", "--to", "svc/web-typo"]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_eq!(v["status"], "failed", "{run:?}");
    assert_eq!(v["verdict"]["layer"], "service", "{run:?}");
    assert_fired(&v, "service_no_endpoints", &run);
    let cause = v["verdict"]["cause"].as_str().unwrap();
    assert!(cause.contains("app=wbe"), "{cause}");
    let findings = v["kube"]["findings"].to_string();
    assert!(
        findings.contains("app=web"),
        "closest labels shown: {findings}"
    );
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn target_port_no_container_exposes_is_named() {
    let ns = healthy_namespace("tport");
    ns.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web-badport}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 9090}]
"#,
    );
    ns.wait_dns("client", "web-badport");
    let (code, v, run) = run_json(&ns, &["client", "--to", "svc/web-badport"]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_fired(&v, "service_target_port_not_exposed", &run);
    // The probe proves it too: nothing listens on 9090, so the endpoint refuses.
    let server_ip = ns.pod_ip("server");
    assert_eq!(tcp_outcome(&v, &format!("{server_ip}:9090")), "refused");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn no_listener_is_refused_not_timeout() {
    let ns = TestNamespace::new("nolisten");
    // Declares the port, runs nothing on it.
    ns.apply(&server_pod(r#"["sleep", "3600"]"#, ""));
    ns.apply(SERVICE);
    ns.apply(CLIENT);
    ns.wait_ready("server");
    ns.wait_ready("client");
    ns.wait_dns("client", "web");
    let (code, v, run) = run_json(&ns, &["client", "--to", "svc/web"]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_eq!(v["verdict"]["layer"], "transport", "{run:?}");
    assert_fired(&v, "tcp_refused_no_listener", &run);
    let server_ip = ns.pod_ip("server");
    assert_eq!(tcp_outcome(&v, &format!("{server_ip}:8080")), "refused");
    let cip = ns.cluster_ip("web");
    assert_eq!(tcp_outcome(&v, &format!("{cip}:80")), "refused");
    // The port that matters is the endpoint's, and the pod is known (issue 16).
    let cause = v["verdict"]["cause"].as_str().unwrap_or("");
    assert!(
        cause.contains(&format!("svc/web:80 -> {server_ip}:8080 answered with RST"))
            && cause.contains("pod server (container web)")
            && cause.contains("listens on port 8080"),
        "{run:?}"
    );
    assert_eq!(
        v["verdict"]["next"][0].as_str().unwrap_or(""),
        format!(
            "kubectl netdebug pod/server -n {} --sockets   # what pod server listens on, and on which addresses",
            ns.name
        ),
        "{run:?}"
    );
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn sockets_on_an_endpoint_listening_on_loopback_only_names_the_service() {
    let ns = TestNamespace::new("loopback");
    ns.apply(&server_pod(
        r#"["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"]"#,
        "",
    ));
    ns.apply(SERVICE);
    ns.wait_ready("server");
    let (code, v, run) = run_json(&ns, &["pod/server", "--sockets"]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_fired(&v, "tcp_listener_loopback_only", &run);
    assert_eq!(
        v["kube"]["serves"],
        serde_json::json!([{"service": "web", "name": "http", "port": 8080, "protocol": "TCP"}]),
        "{run:?}"
    );
    let cause = v["verdict"]["cause"].as_str().unwrap_or("");
    assert!(
        cause.contains("svc/web (port http) sends TCP port 8080 to this pod")
            && cause.contains("bound to 127.0.0.1:8080 only"),
        "{run:?}"
    );
    let listeners = evidence(&v, "sockets")[0]["listeners"].clone();
    assert_eq!(listeners[0]["local"], "127.0.0.1:8080", "{run:?}");
    assert!(
        v["verdict"]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("listening on 127.0.0.1:8080 (backlog ")),
        "{run:?}"
    );
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn endpoints_not_ready_are_reported_as_such() {
    let ns = TestNamespace::new("notready");
    // Serves, but its readiness probe never passes.
    ns.apply(&server_pod(
        HTTPD,
        "    readinessProbe:\n      exec: {command: [\"false\"]}\n      periodSeconds: 2\n",
    ));
    ns.apply(SERVICE);
    ns.apply(CLIENT);
    ns.wait_running("server");
    ns.wait_ready("client");
    ns.wait_dns("client", "web");
    // The EndpointSlice lists the pod as not ready once the readiness probe has run.
    netdebug_e2e::wait_until(Duration::from_secs(60), "a not-ready endpoint", || {
        let out = kubectl(&[
            "-n",
            &ns.name,
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].conditions.ready}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim() == "false"
    });
    let (code, v, run) = run_json(&ns, &["client", "--to", "svc/web"]);
    assert_eq!(code, Some(1), "{run:?}");
    assert_fired(&v, "service_endpoints_not_ready", &run);
    let endpoints = v["kube"]["destination"]["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{run:?}");
    assert_eq!(endpoints[0]["ready"], false);
    assert_eq!(endpoints[0]["pod"], "server");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn network_policy_that_would_deny_is_named() {
    let ns = healthy_namespace("netpol");
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
    let (code, v, run) = run_json(&ns, &["client", "--to", "svc/web"]);
    let findings = v["kube"]["findings"].to_string();
    assert!(
        findings.contains("web-ingress"),
        "the deciding policy is named: {findings}"
    );
    // This cluster's CNI does not enforce policy: the connect succeeds although the policy
    // denies it, and the verdict must say that rather than call the path healthy.
    let server_ip = ns.pod_ip("server");
    match tcp_outcome(&v, &format!("{server_ip}:8080")) {
        "ok" => {
            assert_eq!(code, Some(1), "{run:?}");
            assert_fired(&v, "network_policy_not_enforced", &run);
        }
        "timeout" => {
            assert_fired(&v, "tcp_timeout_network_policy", &run);
        }
        other => panic!("unexpected outcome {other}: {run:?}"),
    }
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn capture_writes_a_pcap_that_tcpdump_reads() {
    let ns = healthy_namespace("capture");
    let dir = std::env::temp_dir().join(format!("ndt-e2e-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("trace.pcap");
    let pcap_arg = pcap.to_string_lossy().to_string();
    let (code, v, run) = run_json(
        &ns,
        &[
            "client",
            "--to",
            "svc/web",
            "--profile",
            "netadmin",
            "--capture",
            "-w",
            &pcap_arg,
        ],
    );
    assert_eq!(code, Some(0), "{run:?}");
    // netadmin: root with exactly the two capabilities it asks for (capabilities only take
    // effect for uid 0 in Kubernetes).
    let hello = &v["probe"]["events"][0]["data"];
    assert_eq!(hello["uid"], 0, "{run:?}");
    assert_eq!(
        hello["capabilities"],
        serde_json::json!(["net_admin", "net_raw"]),
        "{run:?}"
    );
    let packets = v["pcap"]["packets"].as_u64().unwrap_or(0);
    assert!(packets > 0, "{run:?}");
    let proven = v["verdict"]["proven"].to_string();
    assert!(
        proven.contains("TCP handshakes answered by SYN-ACK"),
        "the capture's own summary proves the handshakes: {proven}"
    );
    let server_ip = ns.pod_ip("server");
    let tcpdump = std::process::Command::new("tcpdump")
        .args(["-nn", "-r", &pcap_arg])
        .output()
        .expect("tcpdump (scripts/test installs it)");
    assert!(tcpdump.status.success(), "{tcpdump:?}");
    let text = String::from_utf8_lossy(&tcpdump.stdout);
    assert_eq!(text.lines().count() as u64, packets, "{text}");
    assert!(
        text.contains(&format!("{server_ip}.8080")),
        "the endpoint's handshake is in the file: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn restricted_namespace_runs_the_restricted_profile() {
    let ns = TestNamespace::new("pss");
    ns.label("pod-security.kubernetes.io/enforce=restricted");
    ns.apply(netdebug_e2e::RESTRICTED_CLIENT_POD);
    ns.wait_ready("client");
    let (code, v, run) = run_json(&ns, &["client", "--dns", "kubernetes.default", "--capture"]);
    assert_eq!(v["kube"]["profile"]["name"], "restricted", "{run:?}");
    let hello = &v["probe"]["events"][0]["data"];
    assert_eq!(hello["uid"], 65534, "{run:?}");
    assert_eq!(hello["capabilities"], serde_json::json!([]), "{run:?}");
    assert_eq!(code, Some(0), "{run:?}");
    // The capture cannot run here, so the next step is one that can (issue 16): the same
    // run entered from the node (--via-node, issue 14), not `--capture` again in the pod.
    assert!(
        v["verdict"]["unchecked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["check"] == "capture" && u["missing_capability"] == "net_raw"),
        "{run:?}"
    );
    let next: Vec<&str> = v["verdict"]["next"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        next.iter()
            .all(|n| !n.contains("--capture") || n.contains("--via-node")),
        "{run:?}"
    );
    let step = next.last().copied().unwrap_or("");
    assert!(
        step.contains(&format!(
            "kubectl netdebug pod/client --dns kubernetes.default -n {} --via-node \
             --node-namespace NS --capture",
            ns.name
        )) && step.contains("capture needs NET_RAW, which profile restricted"),
        "{run:?}"
    );
}

// ---- bad input: one clear line, exit 2 ----

fn expect_error(ns: &TestNamespace, args: &[&str], needle: &str) -> netdebug_e2e::Run {
    let run = ns.netdebug_with_image(args);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains(needle), "want `{needle}`: {run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    run
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn bad_inputs_get_one_clear_error_and_exit_2() {
    let ns = healthy_namespace("badinput");
    expect_error(
        &ns,
        &["nosuch", "--to", "svc/web"],
        "pod \"nosuch\" not found",
    );
    expect_error(
        &ns,
        &["client", "--to", "svc/nosuch"],
        "service \"nosuch\" not found",
    );
    expect_error(&ns, &["client", "--to", "svc/web:9999"], "has no port 9999");
    expect_error(&ns, &["client", "--to", "svc/web:"], "invalid --to");
    expect_error(&ns, &["client", "--to", "pod/"], "invalid --to");

    // A pod that never started: its phase and the kubelet's reason.
    ns.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: pending}
spec:
  containers:
  - {name: main, image: local/does-not-exist:0, imagePullPolicy: Never}
"#,
    );
    netdebug_e2e::wait_until(Duration::from_secs(60), "ErrImageNeverPull", || {
        let out = kubectl(&["-n", &ns.name, "get", "pod", "pending", "-o", "json"]);
        String::from_utf8_lossy(&out.stdout).contains("ErrImageNeverPull")
    });
    expect_error(&ns, &["pending", "--to", "svc/web"], "not running");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn unknown_namespace_is_named() {
    let ns = TestNamespace::new("nsref");
    // The namespace flag the suite appends names a namespace that exists; point the source at
    // one that does not through --to's namespace form and the pod itself through -n.
    let run = netdebug_e2e::netdebug_raw(&[
        "client",
        "--to",
        "svc/web",
        "-n",
        &format!("{}-missing", ns.name),
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("not found"), "{run:?}");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn image_that_cannot_be_pulled_fails_within_30s_with_the_kubelets_message() {
    let ns = healthy_namespace("pull");
    let run = ns.netdebug(&[
        "client",
        "--to",
        "svc/web",
        "--image",
        "local/netdebug-probe-missing:0",
        "--image-pull-policy",
        "Never",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("ErrImageNeverPull"), "{run:?}");
    assert!(
        run.stderr.contains("local/netdebug-probe-missing:0"),
        "{run:?}"
    );
    assert!(run.elapsed < Duration::from_secs(30), "{run:?}");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn rbac_denied_names_what_is_missing() {
    let ns = healthy_namespace("rbac");
    // A ServiceAccount that may read pods and nothing else.
    ns.apply(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-reads-pods}
subjects: [{kind: ServiceAccount, name: reader}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
"#,
    );
    let kubeconfig = netdebug_e2e::service_account_kubeconfig(&ns, "reader");
    let run = ns.netdebug(&[
        "client",
        "--to",
        "svc/web",
        "--kubeconfig",
        kubeconfig.path(),
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    // What it may not do, as verb and resource, and where.
    assert!(
        run.stderr
            .contains("may not patch pods/ephemeralcontainers"),
        "{run:?}"
    );
    assert!(run.stderr.contains(&ns.name), "{run:?}");
    assert_eq!(run.stderr.trim().lines().count(), 1, "{run:?}");
}

/// A user who may run the probe but not port-forward: the run is the same, its events come
/// from the container log, and nothing is said about port-forward as if it were a problem.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn without_port_forward_the_events_come_from_the_log() {
    let ns = healthy_namespace("nopf");
    ns.apply(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: debugger}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: netdebug-without-port-forward}
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
  resources: [services]
  verbs: [get]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: debugger-debugs}
subjects: [{kind: ServiceAccount, name: debugger}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: netdebug-without-port-forward}
"#,
    );
    let kubeconfig = netdebug_e2e::service_account_kubeconfig(&ns, "debugger");
    let (code, v, run) = run_json(
        &ns,
        &[
            "pod/client",
            "--to",
            "svc/web",
            "--kubeconfig",
            kubeconfig.path(),
        ],
    );
    assert_eq!(code, Some(0), "{run:?}");
    assert_eq!(v["status"], "healthy", "{run:?}");
    assert_eq!(v["probe"]["stream_end"]["state"], "done");
    assert_eq!(
        v["probe"]["delivery"]["via"], "log",
        "{:#}",
        v["probe"]["delivery"]
    );
    let plan = &v["probe"]["delivery"]["port_forward_unused"];
    assert!(plan.is_null(), "no tunnel was planned: {plan}");
    let requests = &v["probe"]["delivery"]["port_forward_requests"];
    assert!(requests.is_null(), "no port-forward was made: {requests}");
    assert!(!run.stderr.contains("port-forward"), "{run:?}");
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn api_server_unreachable_names_the_server() {
    let ns = TestNamespace::new("unreach");
    let kubeconfig = netdebug_e2e::Kubeconfig::write(
        &ns,
        "unreachable",
        r#"
apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: nobody, user: {token: x}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]
current-context: nowhere
"#,
    );
    let run = ns.netdebug(&[
        "client",
        "--to",
        "svc/web",
        "--kubeconfig",
        kubeconfig.path(),
        "--request-timeout",
        "5s",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("127.0.0.1:1"), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(30), "{run:?}");
}

/// One of three endpoints loses every 4th connection: an iptables rule inside that pod's
/// network namespace drops every 4th SYN to 8080 (put there from the node). That is what a
/// pod-level firewall or an overloaded pod dropping SYNs does, and it is faithful to the
/// ClusterIP path too: the packets die inside the endpoint, after kube-proxy's DNAT and the
/// bridge, so attempts through the Service that land on that pod lose the same SYNs. A
/// connect timeout under the kernel's 1 s SYN retransmission makes each dropped SYN a timeout.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn repeat_finds_the_one_endpoint_that_loses_a_quarter_of_its_connections() {
    let ns = TestNamespace::new("lossy");
    for name in ["web-0", "web-1", "web-2"] {
        ns.apply(&server_pod(HTTPD, "").replace("name: server", &format!("name: {name}")));
    }
    ns.apply(SERVICE);
    ns.apply(CLIENT);
    for name in ["web-0", "web-1", "web-2", "client"] {
        ns.wait_ready(name);
    }
    ns.wait_dns("client", "web");
    ns.wait_service_http("client", "web");
    ns.exec_in_pod_netns(
        "web-2",
        &[
            "iptables",
            "-A",
            "INPUT",
            "-p",
            "tcp",
            "--syn",
            "--dport",
            "8080",
            "-m",
            "statistic",
            "--mode",
            "nth",
            "--every",
            "4",
            "--packet",
            "0",
            "-j",
            "DROP",
        ],
    );
    let (code, v, run) = run_json(
        &ns,
        &[
            "client",
            "--to",
            "svc/web",
            "--repeat",
            "40",
            "--rate",
            "100",
            "--connect-timeout",
            "500ms",
        ],
    );
    let rounds: Vec<&Value> = evidence(&v, "tcp_rounds");
    assert_eq!(
        rounds.len(),
        4,
        "the ClusterIP and three endpoints: {run:?}"
    );
    let of = |ip: &str| -> &Value {
        rounds
            .iter()
            .find(|r| {
                r["address"]
                    .as_str()
                    .is_some_and(|a| a.starts_with(&format!("{ip}:")))
            })
            .unwrap_or_else(|| panic!("no rounds for {ip}: {run:?}"))
    };
    let timeouts = |r: &Value| r["outcomes"]["timeout"].as_u64().unwrap_or(0);
    let lossy = of(&ns.pod_ip("web-2"));
    let clean = [of(&ns.pod_ip("web-0")), of(&ns.pod_ip("web-1"))];
    let via_service = of(&ns.cluster_ip("web"));
    for r in rounds.iter() {
        assert_eq!(r["attempts"], 40, "{run:?}");
    }
    for r in clean {
        assert_eq!(r["outcomes"]["ok"], 40, "{r:#}");
    }
    // Oracle: the rule's own counter, read in the pod's namespace. Every SYN it dropped was
    // one attempt's only SYN: to web-2 directly, or through the ClusterIP to web-2.
    let listing = ns.exec_in_pod_netns("web-2", &["iptables", "-L", "INPUT", "-v", "-x", "-n"]);
    let listing = String::from_utf8_lossy(&listing.stdout);
    let dropped: u64 = listing
        .lines()
        .nth(2)
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rule counter: {listing}"));
    assert!(dropped >= 10, "{listing}");
    assert_eq!(timeouts(lossy) + timeouts(via_service), dropped, "{run:?}");
    assert!(timeouts(lossy) >= 7, "about a quarter of 40: {lossy:#}");
    // The verdict: degraded (traffic passes), and it names the pod.
    assert_eq!(code, Some(1), "{run:?}");
    assert_eq!(v["verdict"]["status"], "degraded", "{run:?}");
    let cause = v["verdict"]["cause"].as_str().unwrap_or("");
    assert!(cause.contains("web-2"), "{run:?}");
}

/// The pod's own name is in the kubelet's /etc/hosts, not in DNS: the lookup is answered from
/// the hosts file without a query, and the verdict says DNS was not tested for it.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_name_in_the_pods_hosts_file_is_answered_from_it() {
    let ns = TestNamespace::new("hosts");
    ns.apply(CLIENT);
    ns.wait_ready("client");
    let (code, v, run) = run_json(&ns, &["client", "--dns", "client"]);
    assert_eq!(code, Some(0), "{run:?}");
    let lookup = evidence(&v, "dns_lookup")
        .into_iter()
        .find(|l| l["name"] == "client")
        .unwrap_or_else(|| panic!("no lookup of the pod's name: {run:?}"));
    assert_eq!(lookup["source"], "files", "{run:?}");
    assert_eq!(
        lookup["addresses"][0],
        ns.pod_ip("client").as_str(),
        "{run:?}"
    );
    assert!(
        v["verdict"]["proven"].as_array().unwrap().iter().any(|p| p
            .as_str()
            .unwrap_or("")
            .contains("from the hosts file, no DNS query")),
        "{run:?}"
    );
}
