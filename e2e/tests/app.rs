//! The application layer against the real cluster: `--to http(s)://svc/...` makes one request
//! to the ClusterIP and to every endpoint after the connect (and a TLS handshake for https),
//! so "connected" is not mistaken for "working". Run by e2e/run.sh.

use std::process::Command;

use netdebug_e2e::{evidence, TestNamespace, CLIENT_POD};
use serde_json::Value;

/// An httpd pod whose CGI `/cgi-bin/ready` answers STATUS.
const WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: NAME, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\nprintf \"Status: STATUS\\\\r\\\\nContent-Type: text/plain\\\\r\\\\n\\\\r\\\\nready\\\\n\"\\n' > /www/cgi-bin/ready && chmod +x /www/cgi-bin/ready && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
"#;

const WEB_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

/// `openssl s_server` on 8443 with the certificate of Secret `cert`: the node's own openssl
/// binary and libraries, mounted read-only (the suite runs on the cluster's node; the
/// workload image has no TLS server).
const TLS_SERVER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: secure, labels: {app: secure}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: tls
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["/host/openssl", "s_server", "-accept", "8443", "-cert", "/certs/tls.crt", "-key", "/certs/tls.key", "-www", "-quiet"]
    ports: [{name: https, containerPort: 8443}]
    volumeMounts:
    - {name: openssl, mountPath: /host/openssl, readOnly: true}
    - {name: libs, mountPath: /lib/x86_64-linux-gnu, readOnly: true}
    - {name: lib64, mountPath: /lib64, readOnly: true}
    - {name: certs, mountPath: /certs, readOnly: true}
  volumes:
  - {name: openssl, hostPath: {path: /usr/bin/openssl, type: File}}
  - {name: libs, hostPath: {path: /usr/lib/x86_64-linux-gnu, type: Directory}}
  - {name: lib64, hostPath: {path: /usr/lib64, type: Directory}}
  - {name: certs, secret: {secretName: cert}}
---
apiVersion: v1
kind: Service
metadata: {name: secure}
spec:
  selector: {app: secure}
  ports: [{name: https, port: 443, targetPort: https}]
"#;

/// `kubectl netdebug pod/client --to TO` with the suite's image, `-o json`.
fn run(ns: &TestNamespace, to: &str) -> (Option<i32>, Value, netdebug_e2e::Run) {
    let run = ns.netdebug_json(&["pod/client", "--to", to]);
    let json = run.json();
    (run.code, json, run)
}

/// Two endpoints behind one Service, one answering 503: the verdict names that pod, and the
/// other endpoint and the ClusterIP answered.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn the_endpoint_answering_503_is_named() {
    let ns = TestNamespace::new("app-503");
    ns.apply(&WEB.replace("NAME", "web-ok").replace("STATUS", "200 OK"));
    ns.apply(
        &WEB.replace("NAME", "web-bad")
            .replace("STATUS", "503 Service Unavailable"),
    );
    ns.apply(WEB_SERVICE);
    ns.apply(CLIENT_POD);
    for pod in ["web-ok", "web-bad", "client"] {
        ns.wait_ready(pod);
    }
    ns.wait_cluster_ip_programmed("web");
    let bad_ip = ns.pod_ip("web-bad");
    let (code, v, run) = run(&ns, "http://svc/web/cgi-bin/ready");
    assert_eq!(code, Some(1), "{run:?}");
    let http = evidence(&v, "http");
    let status_of = |ip: &str| {
        http.iter()
            .find(|h| {
                h["address"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(&format!("{ip}:"))
            })
            .and_then(|h| h["status"].as_u64())
    };
    assert_eq!(status_of(&bad_ip), Some(503), "{run:?}");
    assert_eq!(status_of(&ns.pod_ip("web-ok")), Some(200), "{run:?}");
    assert!(
        http.iter().all(|h| h["path"] == "/cgi-bin/ready"),
        "{run:?}"
    );
    let said = v["verdict"].to_string();
    assert!(said.contains("503"), "{run:?}");
    assert!(
        said.contains(&bad_ip) || said.contains("web-bad"),
        "the 503 endpoint is named: {run:?}"
    );
}

/// An HTTPS endpoint whose certificate covers another name: the handshake completes, the
/// verdict says the Service's name is not covered, and which name is.
#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_certificate_that_does_not_cover_the_service_name_is_said() {
    let ns = TestNamespace::new("app-tls");
    let dir = std::env::temp_dir().join(format!("{}-cert", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=wrong.example",
            "-addext",
            "subjectAltName=DNS:wrong.example",
        ])
        .arg("-keyout")
        .arg(dir.join("tls.key"))
        .arg("-out")
        .arg(dir.join("tls.crt"))
        .output()
        .expect("openssl must be on PATH: this test makes its certificate with it");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let secret = netdebug_e2e::kubectl(&[
        "-n",
        &ns.name,
        "create",
        "secret",
        "generic",
        "cert",
        &format!("--from-file={}", dir.join("tls.crt").display()),
        &format!("--from-file={}", dir.join("tls.key").display()),
    ]);
    assert!(
        secret.status.success(),
        "{}",
        String::from_utf8_lossy(&secret.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    ns.apply(TLS_SERVER);
    ns.apply(CLIENT_POD);
    ns.wait_ready("secure");
    ns.wait_ready("client");
    ns.wait_cluster_ip_programmed("secure");
    let (code, v, run) = run(&ns, "https://svc/secure/");
    assert_eq!(code, Some(1), "{run:?}");
    let service_name = format!("secure.{}.svc.cluster.local", ns.name);
    let tls = evidence(&v, "tls");
    assert!(!tls.is_empty(), "{run:?}");
    for t in &tls {
        assert_eq!(t["server_name"], service_name.as_str(), "{run:?}");
        assert_eq!(t["outcome"], "ok", "the handshake completes: {run:?}");
        assert_eq!(t["name_covered"], false, "{run:?}");
        assert_eq!(
            t["chain"][0]["sans"],
            serde_json::json!(["wrong.example"]),
            "{run:?}"
        );
    }
    let said = v["verdict"].to_string();
    assert!(
        said.contains("wrong.example"),
        "the names it covers: {run:?}"
    );
    assert!(said.contains(&service_name), "the name used: {run:?}");
}
