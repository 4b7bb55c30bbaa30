//! Finding a pod's network namespace from its node (`--pod-uid UID --pod-ip IP`), for a probe
//! running in a hostPID + hostNetwork pod: the pod's processes are found by the kubelet's cgroup
//! naming (the pod UID is in the path whatever the runtime), grouped by network namespace, and
//! the namespace that actually holds the pod IP is chosen. Checking the IP guards against a
//! stale UID and a recreated pod, and tells a hostNetwork pod (whose namespace is the node's).
//!
//! Everything reads below a proc root given by the caller, so the tests use a fake tree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The pod's network namespace as found through one of its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// A process of the pod inside the namespace (the lowest pid that answered: usually the
    /// sandbox's pause).
    pub pid: u32,
    /// `<proc_root>/<pid>/ns/net`.
    pub ns_path: PathBuf,
    /// The namespace's inode, to check that the file opened later is still this namespace
    /// (the pid may exit and be reused between the scan and the open).
    pub inode: u64,
    /// The root of an application container of the pod (`<proc_root>/<pid>/root`): where the
    /// pod's own resolv.conf and hosts file are read, as its applications read them. The
    /// sandbox's pause process has none (the kubelet mounts them into each application
    /// container), so the first process in the namespace with an `etc/resolv.conf`; None
    /// when no process has one.
    pub files_root: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PodNetnsError {
    #[error(
        "no process on this node is in the cgroup of pod {uid} (looked at {scanned} processes \
         under {proc_root}): is the pod running on this node? The probe's pod must have hostPID \
         to see the node's processes"
    )]
    NoProcess {
        uid: String,
        scanned: usize,
        proc_root: String,
    },
    #[error(
        "pod {uid} has processes on this node (pids {}) but none of their network namespaces \
         holds {ip}: the pod IP may have changed or the pod was recreated with a new UID or IP \
         (check `kubectl get pod -o wide` and the pod's metadata.uid){}",
        pid_list(pids),
        unreadable_note(unreadable)
    )]
    IpNotHeld {
        uid: String,
        ip: IpAddr,
        pids: Vec<u32>,
        /// Addresses files that could not be read, as `path: error`.
        unreadable: Vec<String>,
    },
    #[error(
        "pod {uid} uses hostNetwork: its network namespace is the node's own, the one the probe \
         already runs in, so there is no pod namespace to enter; debug the node instead \
         (kubectl netdebug node/<the pod's node>)"
    )]
    HostNetwork { uid: String, ip: IpAddr },
    #[error(
        "no permission to look at the network namespace of pod {uid} (pids {}): opening another \
         process's namespace needs CAP_SYS_PTRACE when that process runs as another user or has \
         capabilities the probe lacks, and entering it needs CAP_SYS_ADMIN; run the probe as \
         root with both",
        pid_list(pids)
    )]
    PermissionDenied { uid: String, pids: Vec<u32> },
    #[error("cannot list the processes in {path}: {message}")]
    ProcUnreadable { path: String, message: String },
}

fn pid_list(pids: &[u32]) -> String {
    let mut s = String::new();
    for (i, pid) in pids.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{pid}");
    }
    s
}

fn unreadable_note(unreadable: &[String]) -> String {
    if unreadable.is_empty() {
        String::new()
    } else {
        format!("; could not read {}", unreadable.join("; "))
    }
}

/// Finds the network namespace of pod `uid` that holds `ip`, looking at the processes under
/// `proc_root` (`/proc` in use). `<proc_root>/self/ns/net`, when present, is the probe's own
/// namespace: a pod found there is a hostNetwork pod.
pub fn find(proc_root: &Path, uid: &str, ip: IpAddr) -> Result<Found, PodNetnsError> {
    let uid = uid.to_ascii_lowercase();
    let entries = std::fs::read_dir(proc_root).map_err(|e| PodNetnsError::ProcUnreadable {
        path: proc_root.display().to_string(),
        message: e.to_string(),
    })?;
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let scanned = pids.len();

    // The pod's processes by namespace inode; those whose namespace we may not look at apart.
    let mut by_ns: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut denied = Vec::new();
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        // A process that exits while we scan is simply not there any more.
        let Ok(cgroup) = std::fs::read_to_string(dir.join("cgroup")) else {
            continue;
        };
        if !cgroup.lines().any(|l| cgroup_line_is_pod(l, &uid)) {
            continue;
        }
        match std::fs::metadata(dir.join("ns/net")) {
            Ok(m) => by_ns.entry(m.ino()).or_default().push(pid),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => denied.push(pid),
            // Gone (ENOENT, ESRCH) or a zombie without namespaces.
            Err(_) => {}
        }
    }
    if by_ns.is_empty() {
        if !denied.is_empty() {
            return Err(PodNetnsError::PermissionDenied { uid, pids: denied });
        }
        return Err(PodNetnsError::NoProcess {
            uid,
            scanned,
            proc_root: proc_root.display().to_string(),
        });
    }

    let own = std::fs::metadata(proc_root.join("self/ns/net"))
        .ok()
        .map(|m| m.ino());
    let mut unreadable = Vec::new();
    let mut own_holds = false;
    for (&inode, members) in &by_ns {
        // Any member tells; the first that answers (one may have exited) is the one named.
        let Some(&pid) = members
            .iter()
            .find(|&&pid| holds_ip(proc_root, pid, ip, &mut unreadable))
        else {
            continue;
        };
        if Some(inode) == own {
            own_holds = true;
            continue;
        }
        let files_root = members
            .iter()
            .map(|p| proc_root.join(p.to_string()).join("root"))
            .find(|root| root.join("etc/resolv.conf").exists());
        return Ok(Found {
            pid,
            ns_path: proc_root.join(pid.to_string()).join("ns/net"),
            inode,
            files_root,
        });
    }
    // The pod's processes share the probe's namespace (which is the node's: the probe runs
    // with hostNetwork): whether or not it holds the IP, entering it would change nothing.
    if own_holds || by_ns.keys().all(|&inode| Some(inode) == own) {
        return Err(PodNetnsError::HostNetwork { uid, ip });
    }
    let mut pids: Vec<u32> = by_ns.into_values().flatten().collect();
    pids.sort_unstable();
    Err(PodNetnsError::IpNotHeld {
        uid,
        ip,
        pids,
        unreadable,
    })
}

/// True when one line of `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH`, v1 or v2) puts the process
/// in pod `uid`. Whole path components are compared so that no other pod's UID can match:
/// the cgroupfs driver names the pod's cgroup `pod<uid>`, the systemd driver
/// `kubepods[-<qos>]-pod<uid with dashes as underscores>.slice` (with a `kubelet-` prefix
/// on kind nodes).
fn cgroup_line_is_pod(line: &str, uid: &str) -> bool {
    let Some(path) = line.splitn(3, ':').nth(2) else {
        return false;
    };
    let cgroupfs = format!("pod{uid}");
    let systemd = format!("-pod{}.slice", uid.replace('-', "_"));
    path.split('/').any(|c| {
        let c = c.to_ascii_lowercase();
        c == cgroupfs || c.ends_with(&systemd)
    })
}

/// True when the namespace of `pid` holds `ip` as a local address. `/proc/PID/net` shows the
/// network namespace of that process, so no namespace has to be entered to look. Files that
/// cannot be read for another reason than the process having gone are noted in `unreadable`.
fn holds_ip(proc_root: &Path, pid: u32, ip: IpAddr, unreadable: &mut Vec<String>) -> bool {
    let file = match ip {
        IpAddr::V4(_) => "net/fib_trie",
        IpAddr::V6(_) => "net/if_inet6",
    };
    let path = proc_root.join(pid.to_string()).join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => match ip {
            IpAddr::V4(v4) => fib_trie_has_local(&text, &v4.to_string()),
            IpAddr::V6(v6) => if_inet6_has(&text, &format!("{:032x}", u128::from(v6))),
        },
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => false,
        Err(e) => {
            unreadable.push(format!("{}: {e}", path.display()));
            false
        }
    }
}

/// True when `/proc/net/fib_trie` text has `addr` as a leaf (`|-- 10.244.0.7`) carrying a
/// `/32 host LOCAL` entry: an address assigned to an interface of the namespace.
fn fib_trie_has_local(text: &str, addr: &str) -> bool {
    let mut leaf: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(a) = line.strip_prefix("|-- ") {
            leaf = Some(a.trim());
        } else if line.starts_with('/') {
            let mut words = line.split_whitespace();
            if leaf == Some(addr) && words.next() == Some("/32") && words.last() == Some("LOCAL") {
                return true;
            }
        } else {
            // A prefix node (`+-- `) or a table header (`Main:`) ends the leaf.
            leaf = None;
        }
    }
    false
}

/// True when `/proc/net/if_inet6` text lists `hex` (32 lowercase hex digits) in its first
/// column.
fn if_inet6_has(text: &str, hex: &str) -> bool {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|a| a.eq_ignore_ascii_case(hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    const CID: &str = "3a2003a99fa321de817438c516183bdd";

    /// A fake proc tree in a temporary directory, removed on drop. Each namespace is a plain
    /// file (its inode is what tells namespaces apart); a process's `ns/net` is a symlink to
    /// its namespace's file, which `metadata` follows as it follows the real nsfs links.
    struct FakeProc {
        root: PathBuf,
    }

    impl FakeProc {
        fn new() -> FakeProc {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let root = std::env::temp_dir().join(format!(
                "probe-pod-netns-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("namespaces")).unwrap();
            FakeProc { root }
        }

        /// A namespace `name` whose interfaces hold `v4` (fib_trie) and `v6` (if_inet6).
        fn netns(&self, name: &str, v4: &[&str], v6: &[&str]) {
            let dir = self.root.join("namespaces").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("inode"), name).unwrap();
            let mut trie = String::from(
                "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n",
            );
            for a in v4 {
                // The subnet's own entry comes first, as in a real trie, and must not match.
                trie.push_str(&format!(
                    "     +-- {a}/24 2 0 2\n        |-- {a}\n           /24 link UNICAST\n"
                ));
                trie.push_str(&format!("        |-- {a}\n           /32 host LOCAL\n"));
            }
            std::fs::write(dir.join("fib_trie"), trie).unwrap();
            let mut inet6 = String::from("00000000000000000000000000000001 01 80 10 80       lo\n");
            for a in v6 {
                let ip: std::net::Ipv6Addr = a.parse().unwrap();
                inet6.push_str(&format!("{:032x} 02 40 00 80     eth0\n", u128::from(ip)));
            }
            std::fs::write(dir.join("if_inet6"), inet6).unwrap();
        }

        /// Process `pid` with `/proc/PID/cgroup` text `cgroup`, in namespace `ns`.
        fn process(&self, pid: &str, cgroup: &str, ns: &str) {
            let dir = self.root.join(pid);
            std::fs::create_dir_all(dir.join("ns")).unwrap();
            std::fs::write(dir.join("cgroup"), cgroup).unwrap();
            let target = self.root.join("namespaces").join(ns);
            std::os::unix::fs::symlink(target.join("inode"), dir.join("ns/net")).unwrap();
            // /proc/PID/net is the process's namespace's view.
            std::os::unix::fs::symlink(&target, dir.join("net")).unwrap();
        }

        fn inode(&self, ns: &str) -> u64 {
            std::fs::metadata(self.root.join("namespaces").join(ns).join("inode"))
                .unwrap()
                .ino()
        }

        fn find(&self, uid: &str, ip: &str) -> Result<Found, PodNetnsError> {
            find(&self.root, uid, ip.parse().unwrap())
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    fn underscored(uid: &str) -> String {
        uid.replace('-', "_")
    }

    /// A node: the host namespace with the probe (`self`) and a host process, pod UID's
    /// processes in namespace `pod` holding 10.244.0.7 and fd00:244::7.
    fn node(pod_cgroup: &str) -> FakeProc {
        let p = FakeProc::new();
        p.netns("host", &["192.0.2.2"], &["fd00::2"]);
        p.netns("pod", &["10.244.0.7"], &["fd00:244::7"]);
        p.process("1", "0::/init.scope\n", "host");
        p.process("self", "0::/\n", "host");
        p.process("700", pod_cgroup, "pod");
        p.process("701", pod_cgroup, "pod");
        p
    }

    fn assert_found(p: &FakeProc, ip: &str) {
        let found = p.find(UID, ip).unwrap();
        assert_eq!(found.pid, 700);
        assert_eq!(found.ns_path, p.root.join("700/ns/net"));
        assert_eq!(found.inode, p.inode("pod"));
    }

    /// The pause process (700) has no resolv.conf of its own; the application container's
    /// process (701), in the same namespace, has the one the kubelet mounted.
    #[test]
    fn the_pods_files_are_read_from_an_application_container() {
        let p = node(&format!("4:pids:/kubepods/besteffort/pod{UID}/c1\n"));
        assert_eq!(p.find(UID, "10.244.0.7").unwrap().files_root, None);
        let etc = p.root.join("701/root/etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 10.96.0.10\n").unwrap();
        let found = p.find(UID, "10.244.0.7").unwrap();
        assert_eq!(
            found.pid, 700,
            "the namespace is still named by the first pid"
        );
        assert_eq!(found.files_root, Some(p.root.join("701/root")));
    }

    #[test]
    fn cgroupfs_v1_lines() {
        let p = node(&format!(
            "12:pids:/kubepods/besteffort/pod{UID}/{CID}\n4:memory:/kubepods/besteffort/pod{UID}/{CID}\n1:name=systemd:/kubepods/besteffort/pod{UID}/{CID}\n"
        ));
        assert_found(&p, "10.244.0.7");
    }

    #[test]
    fn cgroup_v2_line_and_guaranteed_pods() {
        let p = node(&format!("0::/kubepods/burstable/pod{UID}/{CID}\n"));
        assert_found(&p, "10.244.0.7");
        // Guaranteed pods sit right under kubepods; a cgroup namespace shows `..` components.
        let p = node(&format!("0::/../../kubepods/pod{UID}/{CID}\n"));
        assert_found(&p, "10.244.0.7");
    }

    #[test]
    fn systemd_driver_slices() {
        let u = underscored(UID);
        let p = node(&format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{CID}.scope\n"
        ));
        assert_found(&p, "10.244.0.7");
        // kind nodes nest the kubelet's slices under kubelet.slice.
        let p = node(&format!(
            "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{u}.slice/crio-{CID}.scope\n"
        ));
        assert_found(&p, "10.244.0.7");
    }

    #[test]
    fn ipv6_via_if_inet6() {
        let p = node(&format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"));
        assert_found(&p, "fd00:244::7");
        assert_found(&p, "FD00:244:0::7");
    }

    #[test]
    fn another_pods_uid_that_contains_this_one_does_not_match() {
        let u = underscored(UID);
        let p = FakeProc::new();
        p.netns("host", &["192.0.2.2"], &[]);
        p.netns("other", &["10.244.0.7"], &[]);
        p.process("self", "0::/\n", "host");
        // The UID with something before or after it, in both drivers' forms.
        p.process("10", &format!("0::/kubepods/pod{UID}0/{CID}\n"), "other");
        p.process("11", &format!("0::/kubepods/xpod{UID}/{CID}\n"), "other");
        p.process(
            "12",
            &format!("0::/kubepods/besteffort/pod{UID}.bak\n"),
            "other",
        );
        p.process(
            "13",
            &format!("0::/kubepods.slice/kubepods-pod{u}_1.slice/x.scope\n"),
            "other",
        );
        p.process(
            "14",
            &format!("0::/kubepods.slice/kubepods-xpod{u}.slice/x.scope\n"),
            "other",
        );
        // The UID in a container id, not a pod component.
        p.process("15", &format!("0::/kubepods/podabc/{UID}\n"), "other");
        let err = p.find(UID, "10.244.0.7").unwrap_err();
        assert!(
            matches!(err, PodNetnsError::NoProcess { scanned: 6, .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with(&format!(
                "no process on this node is in the cgroup of pod {UID}"
            )),
            "{err}"
        );
        assert!(err.to_string().contains("hostPID"), "{err}");
    }

    #[test]
    fn the_namespace_holding_the_ip_is_chosen() {
        // An init container's leftover namespace or a debug container in another namespace:
        // only the one holding the pod IP counts.
        let p = FakeProc::new();
        p.netns("host", &["192.0.2.2"], &[]);
        p.netns("stale", &["10.244.0.9"], &[]);
        p.netns("pod", &["10.244.0.7"], &[]);
        p.process("self", "0::/\n", "host");
        let cg = format!("0::/kubepods/besteffort/pod{UID}/{CID}\n");
        p.process("50", &cg, "stale");
        p.process("60", &cg, "pod");
        let found = p.find(UID, "10.244.0.7").unwrap();
        assert_eq!((found.pid, found.inode), (60, p.inode("pod")));
    }

    #[test]
    fn ip_not_held_names_the_pids_and_the_ip() {
        let p = node(&format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"));
        let err = p.find(UID, "10.244.0.8").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "pod {UID} has processes on this node (pids 700, 701) but none of their network \
                 namespaces holds 10.244.0.8: the pod IP may have changed or the pod was \
                 recreated with a new UID or IP (check `kubectl get pod -o wide` and the pod's \
                 metadata.uid)"
            )
        );
        // A subnet entry (`/24 link UNICAST`) is not an address of the namespace.
        assert!(matches!(
            p.find(UID, "10.244.0.0"),
            Err(PodNetnsError::IpNotHeld { .. })
        ));
        // Nor is an address of the node.
        assert!(matches!(
            p.find(UID, "192.0.2.2"),
            Err(PodNetnsError::IpNotHeld { .. })
        ));
    }

    #[test]
    fn host_network_pod_is_told() {
        let p = FakeProc::new();
        p.netns("host", &["192.0.2.2"], &[]);
        p.process("self", "0::/\n", "host");
        p.process(
            "80",
            &format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"),
            "host",
        );
        for ip in ["192.0.2.2", "192.0.2.3"] {
            let err = p.find(UID, ip).unwrap_err();
            assert!(matches!(err, PodNetnsError::HostNetwork { .. }), "{err}");
            assert!(err.to_string().contains("uses hostNetwork"), "{err}");
            assert!(err.to_string().contains("node/"), "{err}");
        }
    }

    #[test]
    fn uid_case_does_not_matter() {
        let p = node(&format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"));
        let found = find(&p.root, &UID.to_uppercase(), "10.244.0.7".parse().unwrap()).unwrap();
        assert_eq!(found.pid, 700);
    }

    #[test]
    fn vanished_processes_are_skipped() {
        let p = node(&format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"));
        // A process dir without files: it exited between the listing and the reads.
        std::fs::create_dir_all(p.root.join("5")).unwrap();
        // In the pod's cgroup but its namespace is gone (a zombie).
        std::fs::create_dir_all(p.root.join("6")).unwrap();
        std::fs::write(
            p.root.join("6/cgroup"),
            format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"),
        )
        .unwrap();
        assert_found(&p, "10.244.0.7");
    }

    #[test]
    fn a_member_that_exits_after_the_scan_is_not_the_one_named() {
        let p = node(&format!("0::/kubepods/besteffort/pod{UID}/{CID}\n"));
        // 700's /proc/PID/net is gone by the time its addresses are read.
        std::fs::remove_file(p.root.join("700/net")).unwrap();
        let found = p.find(UID, "10.244.0.7").unwrap();
        assert_eq!((found.pid, found.inode), (701, p.inode("pod")));
    }

    #[test]
    fn missing_proc_root_is_said() {
        let err = find(
            Path::new("/nonexistent/proc"),
            UID,
            "10.244.0.7".parse().unwrap(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot list the processes in /nonexistent/proc:"),
            "{err}"
        );
    }

    #[test]
    fn real_fib_trie_format() {
        let text = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.244.0.0/24 2 0 2
        |-- 10.244.0.7
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
";
        assert!(fib_trie_has_local(text, "10.244.0.7"));
        assert!(fib_trie_has_local(text, "127.0.0.1"));
        assert!(!fib_trie_has_local(text, "127.0.0.0"));
        assert!(!fib_trie_has_local(text, "127.255.255.255"));
        assert!(!fib_trie_has_local(text, "0.0.0.0"));
        assert!(!fib_trie_has_local(text, "10.244.0.70"));
    }

    #[test]
    fn this_machines_loopback_is_found_in_its_own_fib_trie() {
        // The real kernel format, read where this test runs.
        let text = std::fs::read_to_string("/proc/self/net/fib_trie").unwrap();
        assert!(fib_trie_has_local(&text, "127.0.0.1"), "{text}");
    }
}
