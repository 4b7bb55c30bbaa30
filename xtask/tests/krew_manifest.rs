//! The Krew manifest template, rendered for a release archive built by the packaging step from
//! the real client binary, passes Krew's validation rules; the archive holds the `bin` the
//! manifest names with the sha256 it states.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

fn client_binary() -> PathBuf {
    // The build this test belongs to: CARGO_TARGET_DIR when set, else the repository's target/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let p = target.join("debug/kubectl-netdebug");
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (scripts/test does)",
        p.display()
    );
    p
}

#[test]
fn template_lists_the_five_platforms() {
    let template = std::fs::read_to_string(repo().join("krew-manifest.yaml")).unwrap();
    for (os, arch) in [
        ("linux", "amd64"),
        ("linux", "arm64"),
        ("darwin", "amd64"),
        ("darwin", "arm64"),
        ("windows", "amd64"),
    ] {
        assert!(
            template.contains(&format!("{{{{SHA256:{os}/{arch}}}}}")),
            "template lacks {os}/{arch}"
        );
    }
    assert!(
        template.contains("pods/ephemeralcontainers"),
        "caveats name the RBAC"
    );
}

#[test]
fn packaged_archive_and_rendered_manifest_agree() {
    let dist = tempfile::tempdir().unwrap();
    let out = xtask()
        .args(["dist", "--os", "linux", "--arch", "amd64", "--bin"])
        .arg(client_binary())
        .arg("--out-dir")
        .arg(dist.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A full render needs every platform: here only linux/amd64 exists, so it must refuse.
    let full = xtask()
        .args(["krew-manifest", "--dist"])
        .arg(dist.path())
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&full.stderr).contains("no archive for linux/arm64"));

    // Render what exists, validate with Krew's rules, check the archive against it.
    let template = std::fs::read_to_string(repo().join("krew-manifest.yaml")).unwrap();
    let rendered = render_available(&template, dist.path());
    let platforms = rendered["spec"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 1);
    assert_eq!(platforms[0]["bin"], "kubectl-netdebug");
    let archive = dist.path().join(format!(
        "kubectl-netdebug_v{}_linux_amd64.tar.gz",
        env!("CARGO_PKG_VERSION")
    ));
    let bytes = std::fs::read(&archive).unwrap();
    let sha = sha256(&bytes);
    assert_eq!(platforms[0]["sha256"], sha.as_str());
    // The archive's binary is the client, byte for byte.
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.lines().any(|l| l == "kubectl-netdebug"), "{names}");
    let extract = tempfile::tempdir().unwrap();
    assert!(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(extract.path())
        .status()
        .unwrap()
        .success());
    assert_eq!(
        std::fs::read(extract.path().join("kubectl-netdebug")).unwrap(),
        std::fs::read(client_binary()).unwrap()
    );
}

/// Renders, validates and checks through the CLI the release workflow uses.
fn render_available(template: &str, dist: &std::path::Path) -> serde_json::Value {
    let out = xtask()
        .args(["krew-manifest", "--available-only", "--dist"])
        .arg(dist)
        .arg("--out")
        .arg(dist.join("netdebug.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = std::fs::read_to_string(dist.join("netdebug.yaml")).unwrap();
    assert!(!template.is_empty());
    serde_saphyr::from_str(&yaml).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}
