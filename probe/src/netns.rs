//! Entering another network namespace (node and host use: `--netns`, `--pid`; a pod's from its
//! node: `--pod-uid` with `--pod-ip`, see pod_netns.rs).

use std::fs::File;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::pod_netns::{self, PodNetnsError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsTarget {
    /// A bind-mounted namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`...).
    Path(PathBuf),
    /// A name as `ip netns` uses it, under /run/netns.
    Name(String),
    Pid(u32),
    /// The namespace of the pod with this UID that holds this IP, found through the node's
    /// processes (the probe runs in a hostPID pod on the pod's node).
    Pod {
        uid: String,
        ip: IpAddr,
    },
}

impl NetnsTarget {
    /// A value containing `/` is a path; anything else a name under /run/netns.
    pub fn from_arg(value: &str) -> NetnsTarget {
        if value.contains('/') {
            NetnsTarget::Path(PathBuf::from(value))
        } else {
            NetnsTarget::Name(value.to_string())
        }
    }

    /// The namespace file; `None` for a pod, whose namespace is only found when entering.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            NetnsTarget::Path(p) => Some(p.clone()),
            NetnsTarget::Name(n) => Some(PathBuf::from("/run/netns").join(n)),
            NetnsTarget::Pid(pid) => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
            NetnsTarget::Pod { .. } => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            NetnsTarget::Path(p) => format!("network namespace {}", p.display()),
            NetnsTarget::Name(n) => format!("network namespace `{n}` (/run/netns/{n})"),
            NetnsTarget::Pid(pid) => format!("network namespace of pid {pid}"),
            NetnsTarget::Pod { uid, ip } => {
                format!("network namespace of pod {uid} (holding {ip})")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("no permission to enter {0} (needs root or CAP_SYS_ADMIN)")]
    PermissionDenied(String),
    /// Opening `/proc/PID/ns/net` is a ptrace access check, apart from entering (setns).
    #[error(
        "no permission to open {0} (opening another process's namespace needs CAP_SYS_PTRACE \
         when that process runs as another user or has capabilities the probe lacks)"
    )]
    OpenDenied(String),
    #[error("cannot enter {what}: {message}")]
    Other { what: String, message: String },
    #[error(transparent)]
    Pod(#[from] PodNetnsError),
}

/// Move the calling thread into the namespace. Must run before any other thread exists.
/// Returns, for a pod entered from its node, the root its resolv.conf and hosts file are read
/// under: one of its application containers (see [`pod_netns::Found::files_root`]), else
/// the sandbox's, where reading them fails visibly.
pub fn enter(target: &NetnsTarget) -> Result<Option<PathBuf>, NetnsError> {
    if let NetnsTarget::Pod { uid, ip } = target {
        return enter_pod(Path::new("/proc"), uid, *ip);
    }
    let what = target.describe();
    let of_process = matches!(target, NetnsTarget::Pid(_));
    setns_file(&open(target.path(), &what, of_process)?, &what).map(|()| None)
}

/// Finds the pod's namespace under `proc_root` and enters it.
fn enter_pod(proc_root: &Path, uid: &str, ip: IpAddr) -> Result<Option<PathBuf>, NetnsError> {
    // The process found may exit between the scan and the open, and its pid be reused by a
    // process elsewhere: the opened file's inode must be the one found, else scan again (a
    // pod's namespace outlives any one of its processes but the sandbox's).
    let mut attempts = 0;
    loop {
        attempts += 1;
        let found = pod_netns::find(proc_root, uid, ip)?;
        let what = format!(
            "network namespace of pod {uid} (pid {}, holds {ip})",
            found.pid
        );
        let file = match open(Some(found.ns_path), &what, true) {
            Ok(file) => file,
            Err(NetnsError::NotFound(_)) if attempts < 3 => continue,
            Err(e) => return Err(e),
        };
        match file.metadata() {
            Ok(m) if m.ino() == found.inode => {
                // No application container with a resolv.conf: the pod's files are read
                // where they are not (the sandbox's root), so the DNS evidence says it could
                // not read them, rather than the probe silently using the node's.
                let root = found
                    .files_root
                    .unwrap_or_else(|| proc_root.join(found.pid.to_string()).join("root"));
                return setns_file(&file, &what).map(|()| Some(root));
            }
            _ if attempts < 3 => continue,
            _ => {
                return Err(NetnsError::Other {
                    what,
                    message: "the pod's processes kept exiting while the probe looked for them"
                        .into(),
                })
            }
        }
    }
}

/// Opens a namespace file. `of_process`: the file is a process's (`/proc/PID/ns/net`), whose
/// opening is a ptrace check rather than file permissions.
fn open(path: Option<PathBuf>, what: &str, of_process: bool) -> Result<File, NetnsError> {
    let Some(path) = path else {
        return Err(NetnsError::NotFound(what.to_string()));
    };
    File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NetnsError::NotFound(what.to_string()),
        std::io::ErrorKind::PermissionDenied if of_process => {
            NetnsError::OpenDenied(what.to_string())
        }
        std::io::ErrorKind::PermissionDenied => NetnsError::PermissionDenied(what.to_string()),
        _ => NetnsError::Other {
            what: what.to_string(),
            message: e.to_string(),
        },
    })
}

fn setns_file(file: &File, what: &str) -> Result<(), NetnsError> {
    setns(file, CloneFlags::CLONE_NEWNET).map_err(|errno| match errno {
        nix::errno::Errno::EPERM => NetnsError::PermissionDenied(what.to_string()),
        nix::errno::Errno::EINVAL => NetnsError::Other {
            what: what.to_string(),
            message: "not a network namespace file".into(),
        },
        e => NetnsError::Other {
            what: what.to_string(),
            message: e.desc().to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(
            NetnsTarget::from_arg("blue").path(),
            Some(PathBuf::from("/run/netns/blue"))
        );
        assert_eq!(
            NetnsTarget::from_arg("/proc/1/ns/net").path(),
            Some(PathBuf::from("/proc/1/ns/net"))
        );
        assert_eq!(
            NetnsTarget::Pid(42).path(),
            Some(PathBuf::from("/proc/42/ns/net"))
        );
        let pod = NetnsTarget::Pod {
            uid: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(),
            ip: "10.244.0.7".parse().unwrap(),
        };
        assert_eq!(pod.path(), None);
        assert_eq!(
            pod.describe(),
            "network namespace of pod 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 (holding 10.244.0.7)"
        );
    }

    #[test]
    fn missing_namespace_is_named() {
        let err = enter(&NetnsTarget::Name("netdebug-does-not-exist".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "network namespace `netdebug-does-not-exist` (/run/netns/netdebug-does-not-exist) does not exist"
        );
    }

    #[test]
    fn unknown_pod_is_named() {
        // A fake, empty proc root: no process of any pod.
        let root = std::env::temp_dir().join(format!("probe-netns-empty-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let err = enter_pod(
            &root,
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
            "10.244.0.7".parse().unwrap(),
        )
        .unwrap_err();
        let _ = std::fs::remove_dir_all(&root);
        assert!(
            matches!(err, NetnsError::Pod(PodNetnsError::NoProcess { .. })),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("cgroup of pod 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            "{err}"
        );
    }
}
