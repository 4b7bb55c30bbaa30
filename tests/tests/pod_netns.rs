//! Entering a pod's network namespace from its node (`netdebug-probe --pod-uid UID --pod-ip
//! IP`, what `kubectl netdebug pod/x --via-node` runs in a hostPID + hostNetwork pod). A "pod"
//! here is a namespace the test made, its veth's node side in a second one, and `sleep`
//! processes ("containers") in it moved into a cgroup named as the kubelet's cgroupfs driver
//! names a pod's (`.../kubepods/besteffort/pod<UID>`, in a tree the test owns). The oracles:
//! the namespace file's inode (`/run/netns/NAME`) against `hello.netns_inode`, `ip route get`
//! inside the pod's namespace against the route evidence, and the pids the test started
//! against the ones the errors name.
//! Needs root: `cargo build -p probe && cargo test -p netdebug-scenarios --test pod_netns`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netdebug_scenarios::{
    json_plan, pod_uid, probe_path, require_tools, run_probe_args, run_probe_command, Link, Netns,
    PodCgroup, ProbeRun,
};
use protocol::{Plan, RouteEvidence, RouteOutcome};
use serde_json::json;

/// The pod IP, and the node side of the pod's veth (its gateway).
const POD_IP: &str = "10.199.60.2";
const POD_IP6: &str = "fd00:199::60:2";
const NODE_SIDE: &str = "10.199.60.1";

/// A pod as the node sees it. Fields drop in order: the namespaces first (killing the
/// "containers"), then the cgroup (moving anything left back to the root and removing it).
struct Pod {
    ns: Netns,
    node_side: Netns,
    cgroup: PodCgroup,
    /// The "containers", lowest first.
    pids: Vec<u32>,
}

impl Pod {
    /// A pod with `containers` processes in a namespace whose interface `if_name` holds
    /// POD_IP/24 and POD_IP6/64.
    fn new(if_name: &str, containers: usize) -> Pod {
        Pod::with_files(if_name, containers, None)
    }

    /// A pod whose "containers" see `resolv_conf` as their /etc/resolv.conf: `ip netns exec`
    /// bind-mounts /etc/netns/NAME/resolv.conf over it in the process's own mount namespace,
    /// as the kubelet mounts the pod's into each container.
    fn with_files(if_name: &str, containers: usize, resolv_conf: Option<&str>) -> Pod {
        Pod::running(if_name, containers, resolv_conf, &["sleep", "30"])
    }

    /// The same with each "container" running `argv`.
    fn running(if_name: &str, containers: usize, resolv_conf: Option<&str>, argv: &[&str]) -> Pod {
        require_tools(&["ip", argv[0]]);
        let ns = Netns::new("pod");
        let etc = std::path::PathBuf::from("/etc/netns").join(ns.name());
        if let Some(text) = resolv_conf {
            std::fs::create_dir_all(&etc).unwrap();
            std::fs::write(etc.join("resolv.conf"), text).unwrap();
        }
        let node_side = Netns::new("node");
        Link::veth_pair(
            &ns,
            if_name,
            &format!("{POD_IP}/24"),
            &node_side,
            "veth0",
            &format!("{NODE_SIDE}/24"),
        );
        ns.add_addr(if_name, &format!("{POD_IP6}/64"));
        let cgroup = PodCgroup::new(&pod_uid(), "besteffort");
        let mut pids: Vec<u32> = (0..containers)
            .map(|_| {
                let p = ns.spawn(argv);
                wait_until_in(p.pid, &ns);
                cgroup.add(p.pid);
                p.pid
            })
            .collect();
        pids.sort_unstable();
        if let Some(text) = resolv_conf {
            // `ip netns exec` enters the namespace, then bind-mounts the file, then execs:
            // wait until each process sees it before the node's copy goes.
            for pid in &pids {
                wait_until_sees(*pid, text);
            }
            let _ = std::fs::remove_dir_all(&etc);
        }
        Pod {
            ns,
            node_side,
            cgroup,
            pids,
        }
    }

    fn uid(&self) -> &str {
        &self.cgroup.uid
    }

    fn inode(&self) -> u64 {
        std::fs::metadata(self.ns.path()).unwrap().ino()
    }
}

/// `ip netns exec` enters the namespace and then execs: wait until the process is inside,
/// so the probe never sees it half-way.
fn wait_until_in(pid: u32, ns: &Netns) {
    let want = std::fs::metadata(ns.path()).unwrap().ino();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = std::fs::metadata(format!("/proc/{pid}/ns/net")).map(|m| m.ino());
        if now.as_ref().ok() == Some(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pid {pid} did not enter {} within 5 s ({now:?})",
            ns.name()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (5 s at most) until process `pid` reads `text` as its /etc/resolv.conf.
fn wait_until_sees(pid: u32, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let path = format!("/proc/{pid}/root/etc/resolv.conf");
    while std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} did not see its resolv.conf within 5 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `sleep 30` in the test's own namespace, killed on drop.
struct HostProcess(Child);

impl HostProcess {
    fn spawn() -> HostProcess {
        let child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sleep");
        HostProcess(child)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The route check to the pod's gateway: answered from the pod's routing table only.
fn route_plan() -> Plan {
    json_plan(json!({
        "v": 1,
        "checks": ["route"],
        "targets": [{"label": "gateway", "host": NODE_SIDE}],
    }))
}

fn run_pod(uid: &str, ip: &str) -> ProbeRun {
    run_probe_args(&["--pod-uid", uid, "--pod-ip", ip], &route_plan())
}

/// The probe refused to start: exit 2, nothing on stdout, its one-line reason on stderr.
#[track_caller]
fn refused(run: &ProbeRun) -> String {
    assert_eq!(
        run.status.code(),
        Some(2),
        "expected exit 2\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.events.is_empty(),
        "events before refusing: {}",
        run.stdout
    );
    let stderr = run.stderr.trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line of stderr: {stderr}");
    stderr
}

fn pid_list(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn the_probe_enters_the_namespace_of_the_pod_with_that_uid() {
    let pod = Pod::new("eth0", 2);
    // Another pod with the same IP (a second node's pod CIDR, in effect): only the UID tells
    // them apart.
    let other = Pod::new("net1", 1);

    let run = run_pod(pod.uid(), POD_IP);
    run.assert_ok();
    assert_eq!(run.hello().netns_inode, Some(pod.inode()));
    assert_ne!(pod.inode(), other.inode());
    // The route evidence is the pod namespace's: `ip route get` there is the oracle.
    let route = run.one::<RouteEvidence>();
    let RouteOutcome::Found(info) = &route.outcome else {
        panic!("no route to the gateway: {route:?}");
    };
    let ip = &pod.ns.ip_json(&["route", "get", NODE_SIDE])[0];
    assert_eq!(info.dev.as_deref(), ip["dev"].as_str());
    assert_eq!(info.dev.as_deref(), Some("eth0"));
    assert_eq!(
        info.prefsrc.map(|a| a.to_string()).as_deref(),
        ip["prefsrc"].as_str()
    );
    assert_eq!(info.prefsrc, Some(POD_IP.parse().unwrap()));

    let run = run_pod(other.uid(), POD_IP);
    run.assert_ok();
    assert_eq!(run.hello().netns_inode, Some(other.inode()));
    let route = run.one::<RouteEvidence>();
    let RouteOutcome::Found(info) = &route.outcome else {
        panic!("no route to the gateway: {route:?}");
    };
    assert_eq!(info.dev.as_deref(), Some("net1"));

    // By its IPv6 address (if_inet6), and with the UID in capitals.
    let run = run_pod(&pod.uid().to_uppercase(), POD_IP6);
    run.assert_ok();
    assert_eq!(run.hello().netns_inode, Some(pod.inode()));
}

/// The probe pod's own /etc is the node's: a pod entered from its node is resolved with the
/// pod's resolv.conf, read through one of its containers (`/proc/PID/root`). Oracle: the
/// file the test gave the "containers".
#[test]
fn the_pods_own_resolv_conf_is_read_not_the_nodes() {
    let pod = Pod::with_files(
        "eth0",
        1,
        Some("nameserver 10.199.60.53\nsearch shop.svc.cluster.local svc.cluster.local\noptions ndots:5\n"),
    );
    let plan = json_plan(json!({"v": 1, "checks": ["dns"], "deadline_ms": 4000}));
    let run = run_probe_args(&["--pod-uid", pod.uid(), "--pod-ip", POD_IP], &plan);
    run.assert_ok();
    let config = run.one::<protocol::DnsConfigEvidence>();
    assert_eq!(
        config.path,
        format!("/proc/{}/root/etc/resolv.conf", pod.pids[0])
    );
    assert_eq!(config.error, None, "{config:?}");
    assert_eq!(
        config.nameservers,
        ["10.199.60.53".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        config.search,
        ["shop.svc.cluster.local", "svc.cluster.local"]
    );
    assert_eq!(config.ndots, 5);
}

/// Regression: a pod none of whose processes has a resolv.conf (only its sandbox left, say)
/// was resolved with the probe pod's own, the node's, as if it were the pod's. Now the DNS
/// evidence says the pod's could not be read. The "container" mounts an empty /etc in a
/// mount namespace of its own.
#[test]
fn a_pod_without_a_resolv_conf_is_said_so_not_given_the_nodes() {
    let pod = Pod::running(
        "eth0",
        1,
        None,
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs none /etc && exec sleep 30",
        ],
    );
    let pid = pod.pids[0];
    let path = format!("/proc/{pid}/root/etc/resolv.conf");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&path).exists() {
        assert!(Instant::now() < deadline, "{path} still there after 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let plan = json_plan(json!({"v": 1, "checks": ["dns"], "deadline_ms": 4000}));
    let run = run_probe_args(&["--pod-uid", pod.uid(), "--pod-ip", POD_IP], &plan);
    run.assert_ok();
    let config = run.one::<protocol::DnsConfigEvidence>();
    assert_eq!(config.path, path);
    assert!(
        config
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with(&format!("cannot read {path}"))),
        "{config:?}"
    );
    // No file, so no nameserver of the node's: glibc's default, said as one.
    assert!(config.nameservers_defaulted, "{config:?}");
}

#[test]
fn a_pod_ip_its_namespace_does_not_hold_is_refused_naming_the_ip_and_pids() {
    let pod = Pod::new("eth0", 2);
    let stderr = refused(&run_pod(pod.uid(), "10.199.60.3"));
    assert_eq!(
        stderr,
        format!(
            "netdebug-probe: pod {} has processes on this node (pids {}) but none of their \
             network namespaces holds 10.199.60.3: the pod IP may have changed or the pod was \
             recreated with a new UID or IP (check `kubectl get pod -o wide` and the pod's \
             metadata.uid)",
            pod.uid(),
            pid_list(&pod.pids)
        )
    );
    // The node side's address is not the pod's either.
    let stderr = refused(&run_pod(pod.uid(), NODE_SIDE));
    assert!(stderr.contains(&format!("holds {NODE_SIDE}:")), "{stderr}");
}

#[test]
fn an_unknown_pod_uid_is_refused_naming_the_uid() {
    // A pod exists, but not this one.
    let _pod = Pod::new("eth0", 1);
    let uid = pod_uid();
    let stderr = refused(&run_pod(&uid, POD_IP));
    assert!(
        stderr.starts_with(&format!(
            "netdebug-probe: no process on this node is in the cgroup of pod {uid} (looked at "
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "is the pod running on this node? The probe's pod must have hostPID to see the \
             node's processes"
        ),
        "{stderr}"
    );
}

#[test]
fn a_host_network_pod_is_told_not_entered() {
    require_tools(&["sleep"]);
    let cgroup = PodCgroup::new(&pod_uid(), "burstable");
    // Its process shares the namespace the probe starts in, which holds 127.0.0.1.
    let host = HostProcess::spawn();
    cgroup.add(host.0.id());
    let stderr = refused(&run_pod(&cgroup.uid, "127.0.0.1"));
    assert_eq!(
        stderr,
        format!(
            "netdebug-probe: pod {} uses hostNetwork: its network namespace is the node's own, \
             the one the probe already runs in, so there is no pod namespace to enter; debug \
             the node instead (kubectl netdebug node/<the pod's node>)",
            cgroup.uid
        )
    );
    drop(host);
}

#[test]
fn without_ptrace_rights_the_missing_capabilities_are_named() {
    require_tools(&["setpriv"]);
    let pod = Pod::new("eth0", 1);
    // The probe as uid 65534 without capabilities: it may read the pod's cgroup (world
    // readable) but not look at a root process's namespace.
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("netdebug-probe");
    std::fs::copy(probe_path(), &probe).unwrap();
    for path in [dir.path(), probe.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let plan = serde_json::to_string(&route_plan()).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ])
    .arg(&probe)
    .args(["--pod-uid", pod.uid(), "--pod-ip", POD_IP])
    .arg(plan);
    let run = run_probe_command(&mut cmd, Duration::from_secs(20));
    let stderr = refused(&run);
    assert!(
        stderr.starts_with(&format!(
            "netdebug-probe: no permission to look at the network namespace of pod {} (pids {}):",
            pod.uid(),
            pid_list(&pod.pids)
        )),
        "{stderr}"
    );
    assert!(stderr.contains("CAP_SYS_PTRACE"), "{stderr}");
    assert!(stderr.contains("CAP_SYS_ADMIN"), "{stderr}");
}

/// From the node (`--node-conntrack`, as --via-node runs it): the node's half of the path
/// includes its route back to the pod, the direction replies enter the pod by, with that
/// device's rp_filter. Oracles: `ip route get` and the sysctl in the node's namespace.
#[test]
fn the_nodes_route_back_to_the_pod_and_its_rp_filter_are_read() {
    let pod = Pod::new("eth0", 1);
    pod.node_side
        .set_sysctl("net.ipv4.conf.veth0.rp_filter", "1");
    let plan = json_plan(json!({"v": 1, "checks": ["node_path"], "deadline_ms": 4000}));
    let json = serde_json::to_string(&plan).unwrap();
    let probe = probe_path();
    let mut cmd = pod.node_side.command(&[
        probe.to_str().unwrap(),
        "--node-conntrack",
        "--pod-uid",
        pod.uid(),
        "--pod-ip",
        POD_IP,
        &json,
    ]);
    let run = run_probe_command(&mut cmd, Duration::from_secs(10));
    run.assert_ok();
    // The checks ran in the pod's namespace; the node's half in the node's.
    assert_eq!(run.hello().netns_inode, Some(pod.inode()));
    let n = run.one::<protocol::NodePathEvidence>();
    let back = n
        .routes
        .iter()
        .find(|r| r.target == protocol::RETURN_PATH_TARGET)
        .unwrap_or_else(|| panic!("no return path: {n:?}"));
    let oracle = &pod.node_side.ip_json(&["route", "get", POD_IP])[0];
    assert_eq!(back.dev.as_deref(), oracle["dev"].as_str());
    assert_eq!(back.dev.as_deref(), Some("veth0"));
    let rp = n
        .rp_filter
        .iter()
        .find(|s| s.dev == "veth0")
        .unwrap_or_else(|| panic!("no rp_filter for veth0: {n:?}"));
    assert_eq!(rp.value, 1, "{n:?}");
}
