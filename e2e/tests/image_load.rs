//! `kubectl netdebug image load` against the real cluster: the probe image built from a static
//! probe binary is loaded where the nodes run it (this machine's containerd for the local
//! cluster of ../shared/cluster, else the kind cluster the context points at), and a run with
//! the `--image` it prints succeeds without any registry. A run whose image cannot be pulled
//! ends with the hint to do exactly that.

use std::path::PathBuf;

use netdebug_e2e::{kubectl, netdebug_raw, TestNamespace};

/// The statically linked probe: NETDEBUG_E2E_STATIC_PROBE, else where
/// `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p probe --target
/// x86_64-unknown-linux-gnu` puts it (e2e/run.sh builds it).
fn static_probe() -> PathBuf {
    if let Some(p) = std::env::var_os("NETDEBUG_E2E_STATIC_PROBE") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("x86_64-unknown-linux-gnu/release/netdebug-probe");
    assert!(
        p.exists(),
        "{} is missing: build the static probe (e2e/run.sh does) or set NETDEBUG_E2E_STATIC_PROBE",
        p.display()
    );
    p
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: server}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#;

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn image_load_then_a_run_with_the_printed_image_succeeds() {
    let probe = static_probe();
    let probe = probe.to_str().unwrap();
    let socket = std::env::var("CONTAINERD_SOCK")
        .unwrap_or_else(|_| "/run/containerd-k8s/containerd.sock".to_string());
    // The local cluster's containerd is this machine's; otherwise (kind in CI) the command
    // finds the kind cluster from the context's nodes by itself.
    let mut args = vec!["image", "load", "--probe", probe];
    if std::path::Path::new(&socket).exists() {
        args.extend(["--containerd", &socket]);
    }
    let load = netdebug_raw(&args);
    assert_eq!(load.code, Some(0), "{load:?}");
    let last = load.stdout.lines().last().unwrap_or_default();
    let image = last
        .strip_prefix("run with: kubectl netdebug POD --image ")
        .unwrap_or_else(|| panic!("no run line: {load:?}"))
        .to_string();
    assert!(
        image.starts_with("ghcr.io/netdebug/netdebug-probe:v") && image.contains("-local-"),
        "{image}"
    );

    let ns = TestNamespace::new("imgload");
    ns.apply(PODS);
    ns.wait_ready("server");
    ns.wait_ready("client");
    let to = format!("{}:8080", ns.pod_ip("server"));
    // No --image-pull-policy: the kubelet's default for a non-`latest` tag (IfNotPresent) is
    // what must run the loaded copy.
    let run = ns.netdebug(&["pod/client", "--to", &to, "--image", &image, "-o", "json"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let v = run.json();
    assert_eq!(v["status"], "healthy", "{run:?}");
    let policy = kubectl(&[
        "-n",
        &ns.name,
        "get",
        "pod",
        "client",
        "-o",
        "jsonpath={.spec.ephemeralContainers[0].image} {.spec.ephemeralContainers[0].imagePullPolicy}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&policy.stdout),
        format!("{image} IfNotPresent")
    );
}

#[test]
#[ignore = "needs a cluster: run e2e/run.sh"]
fn a_run_whose_image_cannot_be_pulled_ends_with_the_load_hint() {
    let ns = TestNamespace::new("nopull");
    ns.apply(PODS);
    ns.wait_running("client");
    let image = "registry.invalid/netdebug/netdebug-probe:v0-none";
    let run = ns.netdebug(&[
        "pod/client",
        "--dns",
        "localhost",
        "--image",
        image,
        "--timeout",
        "45s",
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.trim_end().ends_with(&format!(
            "this cluster cannot pull {image}. Without a registry, load it: kubectl netdebug \
             image load --kind CLUSTER (or --containerd SOCKET / --out FILE), then rerun with \
             the --image it prints."
        )),
        "{run:?}"
    );
    assert!(run.elapsed < std::time::Duration::from_secs(45), "{run:?}");
}
