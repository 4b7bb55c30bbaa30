//! Real kubectl finds the built binary through plugin discovery and runs it: `kubectl plugin
//! list`, `kubectl netdebug --help`, `kubectl netdebug version`. No cluster needed.
//! Unix only: the plugin is copied under its bare name and found through a `:`-joined PATH.
#![cfg(unix)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let built = PathBuf::from(env!("CARGO_BIN_EXE_kubectl-netdebug"));
    std::fs::copy(&built, dir.path().join("kubectl-netdebug")).unwrap();
    dir
}

fn kubectl(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    // Only our directory and the system's: other plugins on a developer's PATH must not matter.
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", dir.path().display());
    Command::new("kubectl")
        .args(args)
        .env("PATH", path)
        // No cluster is contacted; make sure no real kubeconfig is read either.
        .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
        .output()
        .expect("kubectl is needed for this test (Debian package kubernetes-client; scripts/test installs it)")
}

#[test]
fn kubectl_plugin_list_finds_the_binary() {
    let dir = plugin_dir();
    let out = kubectl(&dir, &["plugin", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = dir.path().join("kubectl-netdebug");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim() == expected.to_str().unwrap()),
        "plugin list did not name {}:\n{stdout}\n{}",
        expected.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubectl_netdebug_help_and_version_run_the_plugin() {
    let dir = plugin_dir();
    let help = kubectl(&dir, &["netdebug", "--help"]);
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--to"), "{text}");
    assert!(text.contains("kubectl netdebug"), "{text}");

    let version = kubectl(&dir, &["netdebug", "version"]);
    assert!(
        version.status.success(),
        "{}",
        String::from_utf8_lossy(&version.stderr)
    );
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
}
