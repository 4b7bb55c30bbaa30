//! `build.rs` (the probe image digest pin) as a program: compiled on its own with rustc and run
//! the way cargo runs it, against a scratch crate directory, so every source of the digest and
//! every malformed digest is covered without rebuilding the crate. What the crate itself was
//! built with is checked by the unit test of `image::DEFAULT_PROBE_IMAGE`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// The build script compiled into `dir` (once per test: each test has its own directory).
fn build_script(dir: &Path) -> PathBuf {
    let exe = dir.join(format!("build-script{}", std::env::consts::EXE_SUFFIX));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--edition", "2021", "--crate-name", "build_script"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs"))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("rustc runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// A workspace with `crate/` (the manifest directory) and, if given, `images/probe.digest`.
fn workspace(dir: &Path, pin_file: Option<&str>) -> PathBuf {
    let manifest_dir = dir.join("crate");
    std::fs::create_dir_all(&manifest_dir).unwrap();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    if let Some(text) = pin_file {
        std::fs::write(dir.join("images").join("probe.digest"), text).unwrap();
    }
    manifest_dir
}

fn run(exe: &Path, manifest_dir: &Path, env_digest: Option<&str>) -> Output {
    let mut cmd = Command::new(exe);
    cmd.env("CARGO_MANIFEST_DIR", manifest_dir)
        .env_remove("NETDEBUG_PROBE_DIGEST");
    if let Some(d) = env_digest {
        cmd.env("NETDEBUG_PROBE_DIGEST", d);
    }
    cmd.output().unwrap()
}

/// The `cargo:rustc-env=KEY=VALUE` values the script printed.
fn rustc_env(out: &Output, key: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("cargo:rustc-env={key}=");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
        .to_string()
}

fn assert_pinned(out: &Output, digest: &str, source_contains: &str) {
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        rustc_env(out, "NETDEBUG_PROBE_DIGEST_SUFFIX"),
        format!("@{digest}")
    );
    assert_eq!(rustc_env(out, "NETDEBUG_PROBE_DIGEST_VALUE"), digest);
    let source = rustc_env(out, "NETDEBUG_PROBE_DIGEST_SOURCE");
    assert!(source.contains(source_contains), "{source}");
}

fn assert_fails_saying(out: &Output, words: &[&str]) {
    assert!(!out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("cargo:rustc-env="),
        "a failed pin must not emit values: {stdout}"
    );
    // cargo shows the warning line even in a long log, and stderr when the script fails.
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("cargo:warning="))
        .unwrap_or_else(|| panic!("no cargo:warning in {stdout}"));
    for w in words {
        assert!(warning.contains(w), "{w:?} not in {warning}");
        assert!(stderr.contains(w), "{w:?} not in {stderr}");
    }
}

#[test]
fn no_digest_anywhere_is_an_unpinned_development_build() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_script(dir.path());
    let out = run(&exe, &workspace(dir.path(), None), None);
    assert!(out.status.success(), "{out:?}");
    for key in [
        "NETDEBUG_PROBE_DIGEST_SUFFIX",
        "NETDEBUG_PROBE_DIGEST_VALUE",
        "NETDEBUG_PROBE_DIGEST_SOURCE",
    ] {
        assert_eq!(rustc_env(&out, key), "", "{key}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cargo:rerun-if-env-changed=NETDEBUG_PROBE_DIGEST"),
        "{stdout}"
    );
    // The images directory is watched, so `cargo xtask image --pin` creating the file rebuilds.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("cargo:rerun-if-changed=") && l.ends_with("images")),
        "{stdout}"
    );
}

#[test]
fn the_environment_pins_and_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_script(dir.path());
    let manifest_dir = workspace(dir.path(), Some(&format!("{OTHER}\n")));
    let out = run(&exe, &manifest_dir, Some(DIGEST));
    assert_pinned(&out, DIGEST, "NETDEBUG_PROBE_DIGEST");
    // Surrounding whitespace (a trailing newline from a shell) is not part of the digest.
    let out = run(&exe, &manifest_dir, Some(&format!(" {DIGEST}\n")));
    assert_pinned(&out, DIGEST, "NETDEBUG_PROBE_DIGEST");
}

#[test]
fn the_pin_file_written_by_xtask_pins() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_script(dir.path());
    // `cargo xtask image --pin` writes the digest and a newline.
    let out = run(
        &exe,
        &workspace(dir.path(), Some(&format!("{DIGEST}\n"))),
        None,
    );
    assert_pinned(&out, DIGEST, "probe.digest");
}

#[test]
fn malformed_digests_fail_the_build_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_script(dir.path());
    let bare = workspace(dir.path(), None);
    let cases: &[(&str, &[&str])] = &[
        ("", &["NETDEBUG_PROBE_DIGEST", "empty"]),
        ("sha256:abc", &["malformed", "3 characters, not 64"]),
        (&DIGEST[7..], &["malformed", "sha256:"]),
        (
            "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            &["malformed", "sha256:"],
        ),
        (
            "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            &["malformed", "lowercase hex"],
        ),
        (
            "ghcr.io/netdebug/netdebug-probe@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            &["malformed", "not an image reference"],
        ),
    ];
    for (digest, words) in cases {
        let out = run(&exe, &bare, Some(digest));
        assert_fails_saying(&out, words);
    }
    // A malformed file fails too, naming the file.
    let dir2 = tempfile::tempdir().unwrap();
    let out = run(&exe, &workspace(dir2.path(), Some("latest\n")), None);
    assert_fails_saying(&out, &["malformed", "probe.digest"]);
}

#[test]
fn version_names_the_default_image_and_whether_it_is_pinned() {
    use kubectl_netdebug::image::{pin_status, DEFAULT_PROBE_IMAGE, PROBE_IMAGE_DIGEST};
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-netdebug"))
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // The release workflow greps for exactly this line.
    let image_line = format!("default probe image {DEFAULT_PROBE_IMAGE}");
    assert!(lines.contains(&image_line.as_str()), "{text}");
    assert!(lines.contains(&pin_status().as_str()), "{text}");
    match PROBE_IMAGE_DIGEST {
        None => assert!(
            text.contains("not digest-pinned (development build"),
            "{text}"
        ),
        Some(d) => assert!(text.contains(&format!("@{d}")), "{text}"),
    }
}
