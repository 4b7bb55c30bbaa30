//! Shell completion, Unix-only parts: the plugin binary symlinked under the helper's name (what
//! a Krew user does), and real kubectl's plugin completion (`kubectl __complete netdebug ...`)
//! finding `kubectl_complete-netdebug` on a `:`-joined PATH, when kubectl 1.26+ is here.
//! No cluster: only fixed flag values are completed.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HELPER: &str = env!("CARGO_BIN_EXE_kubectl_complete-netdebug");
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-netdebug");

/// Run `bin` with `KUBECONFIG` pointing at `kubeconfig` (absent: nothing to read).
fn run(bin: &str, args: &[&str], kubeconfig: &Path) -> Output {
    Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
}

#[test]
fn the_plugin_binary_renamed_as_the_helper_is_the_helper() {
    // Krew installs only kubectl-netdebug; a symlink named kubectl_complete-netdebug is enough.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl_complete-netdebug");
    std::os::unix::fs::symlink(PLUGIN, &link).unwrap();
    let out = run(
        link.to_str().unwrap(),
        &["pod/x", "--image-pull-policy", ""],
        &dir.path().join("none"),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Always\nIfNotPresent\nNever\n:4\n"
    );
}

// ---- kubectl's plugin completion ----

/// kubectl's client minor version, if kubectl runs here.
fn kubectl_minor(kubectl: &Path) -> Option<u32> {
    let out = Command::new(kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let minor = v["clientVersion"]["minor"].as_str()?;
    minor.trim_end_matches('+').parse().ok()
}

/// kubectl's absolute path, looked up on this process's PATH.
fn kubectl_path() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

#[test]
fn kubectl_plugin_completion_runs_the_helper() {
    let Some(kubectl) = kubectl_path() else {
        println!("SKIPPED: kubectl is not on PATH (Debian: kubernetes-client)");
        return;
    };
    match kubectl_minor(&kubectl) {
        None => {
            println!("SKIPPED: {} does not say its version", kubectl.display());
            return;
        }
        Some(m) if m < 26 => {
            println!("SKIPPED: kubectl 1.{m} has no plugin completion (1.26+)");
            return;
        }
        Some(_) => {}
    }
    // Our binaries first (target/debug holds both), then kubectl's directory and the system's.
    let bin_dir = PathBuf::from(HELPER).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:/usr/bin:/bin",
        bin_dir.display(),
        kubectl.parent().unwrap().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(&kubectl)
        .args(["__complete", "netdebug", "--profile", ""])
        .env("PATH", path)
        .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["auto", "restricted", "baseline", "netadmin", ":4"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
