//! The probe image archive read back by an independent OCI implementation (skopeo): the layout
//! parses, every blob matches its digest when copied, the config says what we meant.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn probe_binary() -> PathBuf {
    // The build this test belongs to: CARGO_TARGET_DIR when set, else the repository's target/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let p = target.join("debug/netdebug-probe");
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (scripts/test does)",
        p.display()
    );
    p
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is needed for this test (Debian package skopeo; scripts/test installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn build_image(dir: &std::path::Path, name: &str) -> (PathBuf, String) {
    let out_path = dir.join(name);
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["image", "--probe"])
        .arg(probe_binary())
        .arg("--out")
        .arg(&out_path)
        .args(["--ref", "registry.test/netdebug-probe:v9.9.9"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let digest = stdout.trim().rsplit('@').next().unwrap().to_string();
    (out_path, digest)
}

#[test]
fn skopeo_reads_and_verifies_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, digest) = build_image(dir.path(), "probe.tar");
    let src = format!("oci-archive:{}", archive.display());

    let manifest: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--raw", &src])).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--config", &src])).unwrap();
    assert_eq!(config["config"]["User"], "65534:65534");
    assert_eq!(config["config"]["Entrypoint"][0], "/netdebug-probe");
    assert_eq!(config["os"], "linux");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.title"],
        "netdebug-probe"
    );
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &src])).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());

    // Copying verifies every blob against its digest.
    let copy = dir.path().join("copy");
    skopeo(&["copy", &src, &format!("dir:{}", copy.display())]);
    assert!(copy.join("manifest.json").exists());
}

#[test]
fn same_binary_gives_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (a_path, a) = build_image(dir.path(), "a.tar");
    let (b_path, b) = build_image(dir.path(), "b.tar");
    assert_eq!(a, b);
    assert_eq!(
        std::fs::read(a_path).unwrap(),
        std::fs::read(b_path).unwrap()
    );
}
