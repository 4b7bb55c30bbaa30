//! Helpers for the e2e suite: a throw-away namespace per test, manifests applied with kubectl,
//! bounded waits, and the plugin run the way a user runs it (`kubectl netdebug ...`, found by
//! kubectl's plugin discovery on PATH).
//!
//! Every test is `#[ignore]`d so `cargo test --workspace` stays cluster-free; `e2e/run.sh` runs
//! them with `--ignored` once it has found a reachable cluster and loaded the probe image.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The probe image the suite injects (loaded into the cluster by e2e/run.sh).
pub fn probe_image() -> String {
    std::env::var("NETDEBUG_E2E_IMAGE")
        .unwrap_or_else(|_| "ghcr.io/netdebug/netdebug-probe:e2e".to_string())
}

/// The workload image the scenarios run (busybox with httpd, nc, sleep).
pub fn workload_image() -> String {
    std::env::var("NETDEBUG_E2E_WORKLOAD_IMAGE").unwrap_or_else(|_| "local/busybox:1".to_string())
}

/// Run kubectl; true when it exits 0 before `limit` (else it is killed).
pub fn kubectl_succeeds_within(args: &[&str], limit: Duration) -> bool {
    let Ok(mut child) = Command::new("kubectl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

pub fn kubectl(args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .output()
        .expect("kubectl must be on PATH")
}

fn ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace that exists for one test and is deleted (without waiting) when dropped.
pub struct TestNamespace {
    pub name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestNamespace {
    pub fn new(tag: &str) -> TestNamespace {
        let name = format!(
            "ndt-e2e-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        ok(&["create", "namespace", &name]);
        // Pods need the default ServiceAccount, which the controller creates asynchronously.
        wait_until(Duration::from_secs(30), "default serviceaccount", || {
            kubectl(&["-n", &name, "get", "serviceaccount", "default"])
                .status
                .success()
        });
        TestNamespace { name }
    }

    pub fn label(&self, label: &str) {
        ok(&["label", "namespace", &self.name, label, "--overwrite"]);
    }

    /// Apply a manifest (YAML). `{image}` is replaced by the workload image.
    pub fn apply(&self, yaml: &str) {
        let yaml = yaml.replace("{image}", &workload_image());
        let mut child = Command::new("kubectl")
            .args(["-n", &self.name, "apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run `argv` in the network namespace of `pod`'s first container, from the node (the
    /// suite runs on the single node of ../shared/cluster, as root): how a test puts a fault
    /// (an iptables rule) inside one pod without giving the pod's own image the tools. Finds
    /// the container's process through containerd (`ctr task ls`) and enters with nsenter.
    /// Panics with what is missing on a cluster whose node is not this machine.
    pub fn exec_in_pod_netns(&self, pod: &str, argv: &[&str]) -> Output {
        let id = ok(&[
            "-n",
            &self.name,
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID}",
        ]);
        let id = id.trim().trim_start_matches("containerd://").to_string();
        let sock = std::env::var("CONTAINERD_SOCK")
            .unwrap_or_else(|_| "/run/containerd-k8s/containerd.sock".to_string());
        let tasks = Command::new("ctr")
            .args(["-a", &sock, "-n", "k8s.io", "task", "ls"])
            .output()
            .expect("ctr (containerd's client) must be on PATH: this test needs the node");
        let tasks = String::from_utf8_lossy(&tasks.stdout).into_owned();
        let pid = tasks
            .lines()
            .find(|l| l.starts_with(&id))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| {
                panic!(
                    "container {id} of pod {pod} is not a task of the containerd at {sock}: \
                     this test runs on the cluster's node (../shared/cluster)\n{tasks}"
                )
            })
            .to_string();
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n", "--"])
            .args(argv)
            .output()
            .expect("nsenter");
        assert!(
            out.status.success(),
            "nsenter -t {pid} -n {argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Service `svc`'s ClusterIP, as the API server reports it.
    pub fn cluster_ip(&self, svc: &str) -> String {
        let out = kubectl(&[
            "-n",
            &self.name,
            "get",
            "svc",
            svc,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Wait until kube-proxy has programmed Service `svc`'s ClusterIP toward its endpoints (its
    /// address in the nat table's KUBE-SERVICES chain on this machine, the node of
    /// ../shared/cluster): before that, a connect to it is rejected by the node (ICMP port
    /// unreachable), which a scenario about the endpoint must not meet. Where this machine
    /// has no such chain (not the node, or another proxy mode), a short pause stands in.
    pub fn wait_cluster_ip_programmed(&self, svc: &str) {
        let ip = self.cluster_ip(svc);
        let rules = || {
            Command::new("iptables")
                .args(["-t", "nat", "-S", "KUBE-SERVICES"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        if rules().is_none() {
            std::thread::sleep(Duration::from_secs(3));
            return;
        }
        let needle = format!("-d {ip}/32");
        wait_until(
            Duration::from_secs(30),
            &format!("kube-proxy to program {ip} (svc/{svc})"),
            || rules().is_some_and(|r| r.contains(&needle)),
        );
    }

    pub fn wait_running(&self, pod: &str) {
        wait_until(
            Duration::from_secs(90),
            &format!("pod {pod} Running"),
            || self.pod_field(pod, "{.status.phase}") == "Running",
        );
    }

    /// The pod's IP address, as the API server reports it.
    pub fn pod_ip(&self, pod: &str) -> String {
        self.pod_field(pod, "{.status.podIP}")
    }

    /// One field of the pod (`kubectl get pod -o jsonpath=PATH`), trimmed.
    fn pod_field(&self, pod: &str, path: &str) -> String {
        let jsonpath = format!("jsonpath={path}");
        let out = kubectl(&["-n", &self.name, "get", "pod", pod, "-o", &jsonpath]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn wait_ready(&self, pod: &str) {
        ok(&[
            "-n",
            &self.name,
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=90s",
        ]);
    }

    /// Wait until cluster DNS answers for Service `svc`, asked from inside `pod` (a Service's
    /// record may lag its creation: test the plugin, not the DNS server's sync).
    pub fn wait_dns(&self, pod: &str, svc: &str) {
        let fqdn = format!("{svc}.{}.svc.cluster.local", self.name);
        wait_until(Duration::from_secs(60), &format!("DNS for {fqdn}"), || {
            kubectl(&["-n", &self.name, "exec", pod, "--", "nslookup", &fqdn])
                .status
                .success()
        });
    }

    /// Wait until an HTTP GET from `pod` to Service `svc` succeeds: the Service proxy
    /// (kube-proxy's rules) is programmed some time after the Service and its endpoints exist.
    pub fn wait_service_http(&self, pod: &str, svc: &str) {
        let url = format!("http://{svc}.{}.svc.cluster.local/", self.name);
        wait_until(Duration::from_secs(60), &format!("HTTP to {url}"), || {
            // busybox has no `timeout`: the deadline is kept on this side.
            kubectl_succeeds_within(
                &[
                    "-n",
                    &self.name,
                    "exec",
                    pod,
                    "--",
                    "wget",
                    "-q",
                    "-O",
                    "/dev/null",
                    &url,
                ],
                Duration::from_secs(5),
            )
        });
    }

    /// Run the plugin as a user would: `kubectl netdebug ARGS -n NS`.
    pub fn netdebug(&self, args: &[&str]) -> Run {
        let mut full = args.to_vec();
        full.extend_from_slice(&["-n", &self.name]);
        netdebug_raw(&full)
    }

    /// The same with the suite's probe image, already on the node (`--image`,
    /// `--image-pull-policy IfNotPresent`).
    pub fn netdebug_with_image(&self, args: &[&str]) -> Run {
        let image = probe_image();
        let mut full = args.to_vec();
        full.extend_from_slice(&["--image", &image, "--image-pull-policy", "IfNotPresent"]);
        self.netdebug(&full)
    }

    /// The same with `-o json`, the form every scenario asserts on (verdict/OUTPUT.md).
    pub fn netdebug_json(&self, args: &[&str]) -> Run {
        let mut full = args.to_vec();
        full.extend_from_slice(&["-o", "json"]);
        self.netdebug_with_image(&full)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// The data of the probe's evidence events of one `kind` in a run's `-o json` document.
pub fn evidence<'a>(v: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    v["probe"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["type"] == "evidence" && e["data"]["kind"] == kind)
                .map(|e| &e["data"])
                .collect()
        })
        .unwrap_or_default()
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "output is not JSON ({e}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
                self.code, self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A JSON run's probe events are long; the verdict and the Kubernetes evidence are
        // what a failure needs.
        let stdout = match serde_json::from_str::<serde_json::Value>(&self.stdout) {
            Ok(v) => serde_json::to_string_pretty(&serde_json::json!({
                "verdict": v["verdict"], "kube": v["kube"], "stream_end": v["probe"]["stream_end"],
            }))
            .unwrap_or_default(),
            Err(_) => self.stdout.clone(),
        };
        write!(
            f,
            "exit {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.elapsed, stdout, self.stderr
        )
    }
}

/// Poll `cond` every 500 ms until it holds or `limit` passes (then panic naming `what`).
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Run the plugin with exactly these arguments (no namespace appended).
pub fn netdebug_raw(args: &[&str]) -> Run {
    let mut full = vec!["netdebug"];
    full.extend_from_slice(args);
    let started = Instant::now();
    let out = kubectl(&full);
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// A kubeconfig file written for one test, removed when dropped.
pub struct Kubeconfig {
    path: std::path::PathBuf,
}

impl Kubeconfig {
    pub fn write(ns: &TestNamespace, tag: &str, yaml: &str) -> Kubeconfig {
        let path = std::env::temp_dir().join(format!("{}-{tag}.kubeconfig", ns.name));
        std::fs::write(&path, yaml).expect("write kubeconfig");
        Kubeconfig { path }
    }

    pub fn path(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }
}

impl Drop for Kubeconfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A kubeconfig for the current cluster that authenticates as a ServiceAccount of `ns`
/// (a token from the TokenRequest API), to test what the plugin does with fewer rights.
pub fn service_account_kubeconfig(ns: &TestNamespace, account: &str) -> Kubeconfig {
    let view = |path: &str| {
        ok(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            &format!("jsonpath={{{path}}}"),
        ])
    };
    let server = view(".clusters[0].cluster.server");
    let ca = view(".clusters[0].cluster.certificate-authority-data");
    let token = ok(&["-n", &ns.name, "create", "token", account, "--duration=10m"]);
    let yaml = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters: [{{name: c, cluster: {{server: \"{server}\", certificate-authority-data: \"{ca}\"}}}}]\n\
         users: [{{name: {account}, user: {{token: \"{}\"}}}}]\n\
         contexts: [{{name: c, context: {{cluster: c, user: {account}, namespace: {}}}}}]\n\
         current-context: c\n",
        token.trim(),
        ns.name
    );
    Kubeconfig::write(ns, account, &yaml)
}

/// Pod `server` (labels app=web): busybox httpd serving `ok` on LISTEN (a port, or an
/// address:port) with the container port named `http` = 8080. Replace LISTEN before applying.
pub const WEB_SERVER_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p LISTEN -h /www"]
    ports: [{name: http, containerPort: 8080}]
"#;

/// Service `web`: port 80 (`http`) to the pods labelled app=web, targetPort `http`.
pub const WEB_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

/// Pod `server` (labels app=web) serving HTTP on 8080 as a namespace that enforces Pod
/// Security `restricted` admits it (non-root, no capabilities, its files in an emptyDir).
pub const RESTRICTED_WEB_SERVER_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: web
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    volumeMounts: [{name: www, mountPath: /www}]
  volumes: [{name: www, emptyDir: {}}]
"#;

/// Pod `client`, sleeping, as a namespace that enforces Pod Security `restricted` admits it
/// (non-root, no capabilities, no privilege escalation, the runtime's seccomp profile).
pub const RESTRICTED_CLIENT_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"#;

/// Pod `client` (labels app=checkout), sleeping: the pod the probe is injected into.
pub const CLIENT_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: checkout}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#;
