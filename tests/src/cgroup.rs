//! Pod cgroups the way the kubelet's cgroupfs driver names them, for finding a pod's processes
//! from the node (`netdebug-probe --pod-uid`): `<hierarchy>/netdebug-test-<pid>-<n>/kubepods/
//! <qos>/pod<UID>`, created under a directory the test owns so nothing of the host's is
//! touched. Processes are moved back to the root cgroup and the directories removed on drop,
//! also when a test panics; trees left by a killed run are swept by the next run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::require::require_root;

static COUNTER: AtomicU32 = AtomicU32::new(0);
static STALE_SWEEP: Once = Once::new();

/// Prefix of the top directory of every tree this module creates.
pub const CGROUP_PREFIX: &str = "netdebug-test-";

/// A pod's cgroup `kubepods/<qos>/pod<uid>` in a tree the test owns.
pub struct PodCgroup {
    /// The hierarchy's root (`/sys/fs/cgroup` on cgroup v2, `/sys/fs/cgroup/pids` on v1).
    hierarchy: PathBuf,
    /// `<hierarchy>/netdebug-test-<pid>-<n>`.
    top: PathBuf,
    /// `<top>/kubepods/<qos>/pod<uid>`.
    leaf: PathBuf,
    pub uid: String,
}

impl PodCgroup {
    /// Creates the pod cgroup for `uid` in QoS class `qos` (`besteffort`, `burstable`).
    /// Panics when not root or when no usable cgroup hierarchy is mounted.
    #[track_caller]
    pub fn new(uid: &str, qos: &str) -> PodCgroup {
        require_root();
        let hierarchy = hierarchy();
        STALE_SWEEP.call_once(|| remove_stale(&hierarchy));
        let top = hierarchy.join(format!(
            "{CGROUP_PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let leaf = top.join("kubepods").join(qos).join(format!("pod{uid}"));
        std::fs::create_dir_all(&leaf)
            .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", leaf.display()));
        PodCgroup {
            hierarchy,
            top,
            leaf,
            uid: uid.to_string(),
        }
    }

    /// Moves process `pid` into the pod's cgroup (as the runtime does with a container).
    #[track_caller]
    pub fn add(&self, pid: u32) {
        let procs = self.leaf.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string())
            .unwrap_or_else(|e| panic!("cannot move pid {pid} into {}: {e}", procs.display()));
    }

    /// The pod cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.leaf
    }
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        // Never panic here: this runs while a failing test unwinds.
        remove_tree(&self.hierarchy, &self.top);
    }
}

/// A pod UID for a test: a random-looking UUID (time, pid and a counter; uniqueness is all
/// that matters).
pub fn pod_uid() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = nanos
        ^ (u128::from(std::process::id()) << 64)
        ^ (u128::from(COUNTER.fetch_add(1, Ordering::SeqCst)) << 96);
    let h = format!("{mixed:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The hierarchy to create pod cgroups in: the unified one when `/sys/fs/cgroup` is cgroup v2,
/// else the v1 `pids` controller (any v1 hierarchy shows up in `/proc/PID/cgroup`).
#[track_caller]
fn hierarchy() -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").is_file() {
        return root.to_path_buf();
    }
    for v1 in ["pids", "systemd", "memory"] {
        let dir = root.join(v1);
        if dir.join("cgroup.procs").is_file() {
            return dir;
        }
    }
    panic!(
        "no cgroup hierarchy to create a pod cgroup in: neither cgroup v2 at /sys/fs/cgroup nor \
         a v1 pids/systemd/memory hierarchy under it (mount one)"
    )
}

/// Moves every process of every cgroup under `top` back to the hierarchy's root and removes
/// the directories, leaves first. Bounded retries: a killed process may take a moment to leave.
fn remove_tree(hierarchy: &Path, top: &Path) {
    let mut dirs = Vec::new();
    collect_dirs(top, &mut dirs);
    // Deepest first: children before parents.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let root_procs = hierarchy.join("cgroup.procs");
    for dir in dirs {
        for _ in 0..50 {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.split_whitespace() {
                    let _ = std::fs::write(&root_procs, pid);
                }
            }
            if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

/// Removes `netdebug-test-<pid>-<n>` trees whose creating process is gone.
fn remove_stale(hierarchy: &Path) {
    let Ok(entries) = std::fs::read_dir(hierarchy) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(CGROUP_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_tree(hierarchy, &e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pod_uids_look_like_uuids_and_differ() {
        let a = super::pod_uid();
        let b = super::pod_uid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
    }
}
