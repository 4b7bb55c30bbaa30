//! Entering another network namespace (node and host use: `--netns`, `--pid`).

use std::fs::File;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsTarget {
    /// A bind-mounted namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`...).
    Path(PathBuf),
    /// A name as `ip netns` uses it, under /run/netns.
    Name(String),
    Pid(u32),
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

    pub fn path(&self) -> PathBuf {
        match self {
            NetnsTarget::Path(p) => p.clone(),
            NetnsTarget::Name(n) => PathBuf::from("/run/netns").join(n),
            NetnsTarget::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
        }
    }

    fn describe(&self) -> String {
        match self {
            NetnsTarget::Path(p) => format!("network namespace {}", p.display()),
            NetnsTarget::Name(n) => format!("network namespace `{n}` (/run/netns/{n})"),
            NetnsTarget::Pid(pid) => format!("network namespace of pid {pid}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("no permission to enter {0} (needs root or CAP_SYS_ADMIN)")]
    PermissionDenied(String),
    #[error("cannot enter {what}: {message}")]
    Other { what: String, message: String },
}

/// Move the calling thread into the namespace. Must run before any other thread exists.
pub fn enter(target: &NetnsTarget) -> Result<(), NetnsError> {
    let what = target.describe();
    let file = File::open(target.path()).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => NetnsError::NotFound(what.clone()),
        std::io::ErrorKind::PermissionDenied => NetnsError::PermissionDenied(what.clone()),
        _ => NetnsError::Other {
            what: what.clone(),
            message: e.to_string(),
        },
    })?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| match errno {
        nix::errno::Errno::EPERM => NetnsError::PermissionDenied(what.clone()),
        nix::errno::Errno::EINVAL => NetnsError::Other {
            what: what.clone(),
            message: "not a network namespace file".into(),
        },
        e => NetnsError::Other {
            what: what.clone(),
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
            PathBuf::from("/run/netns/blue")
        );
        assert_eq!(
            NetnsTarget::from_arg("/proc/1/ns/net").path(),
            PathBuf::from("/proc/1/ns/net")
        );
        assert_eq!(
            NetnsTarget::Pid(42).path(),
            PathBuf::from("/proc/42/ns/net")
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
}
