//! `kubectl netdebug image build|load`, the built binary: the refusing paths (a dynamic or
//! wrong-architecture probe, a bad --ref), a good build, and `load` against fake `kind`
//! scripts, a missing `kind`, an API server that is not there and one that answers like kind.
//! Every run ends with an exit code and a specific line, never a panic or a hang.
//! Traffic: connections to 127.0.0.1 only (a closed port, and a one-response HTTP server).

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const STATIC_COMMAND: &str = "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo install --locked --path probe --target x86_64-unknown-linux-gnu";

/// The plugin with a clean environment: PATH is `path` only (fake tools go there), no
/// NETDEBUG_PROBE, KUBECONFIG as given (never a developer's own).
fn netdebug(args: &[&str], path: &Path, kubeconfig: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-netdebug"))
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("NETDEBUG_PROBE")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_fails_with(o: &Output, expected: &str) {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stderr: {err}\nstdout: {}",
        text(&o.stdout)
    );
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A statically linked executable (linked here with `+crt-static`, as the probe is), or None
/// where the static C library is missing (the tests that need one then say so and pass).
fn static_binary(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("main.rs");
    std::fs::write(&src, "fn main() {}\n").unwrap();
    let out = dir.join("static-probe");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let ok = Command::new(rustc)
        .args(["-C", "target-feature=+crt-static", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: cannot link a static executable here (no static glibc)");
    }
    ok.then_some(out)
}

fn script(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: lab\n\
             clusters: [{{name: c, cluster: {{server: \"{server}\"}}}}]\n\
             contexts: [{{name: lab, context: {{cluster: c, user: u}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n"
        ),
    )
    .unwrap();
    p
}

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn dynamic_probe_is_refused_with_the_static_build_command() {
    let dir = tempfile::tempdir().unwrap();
    let o = netdebug(
        &["image", "build", "--probe", "/bin/true", "--out", "x.tar"],
        dir.path(),
        &dir.path().join("none"),
    );
    assert_fails_with(&o, "/bin/true cannot be the probe image's only file: it is dynamically linked (program interpreter /lib");
    assert_fails_with(&o, STATIC_COMMAND);
    // Without --probe, the lookup local mode uses: beside this binary is the debug build of the
    // probe when the workspace was built (dynamically linked, refused the same way), else
    // nothing, and PATH is empty of it.
    let o = netdebug(&["image", "build"], dir.path(), &dir.path().join("none"));
    let beside = Path::new(env!("CARGO_BIN_EXE_kubectl-netdebug")).with_file_name("netdebug-probe");
    if beside.exists() {
        assert_fails_with(
            &o,
            &format!(
                "{} cannot be the probe image's only file: it is dynamically linked",
                beside.display()
            ),
        );
    } else {
        assert_fails_with(&o, "cannot find netdebug-probe beside this program or on PATH (or set NETDEBUG_PROBE): pass --probe PATH, or build and install a static probe: ");
    }
    assert_fails_with(&o, STATIC_COMMAND);
}

#[test]
fn not_elf_missing_and_bad_references() {
    let dir = tempfile::tempdir().unwrap();
    script(dir.path(), "probe.sh", "echo hi");
    let none = dir.path().join("none");
    let probe = dir.path().join("probe.sh");
    let probe = probe.to_str().unwrap();
    let o = netdebug(&["image", "build", "--probe", probe], dir.path(), &none);
    assert_fails_with(&o, "it is not an ELF executable");
    assert_fails_with(&o, STATIC_COMMAND);
    let o = netdebug(
        &["image", "build", "--probe", "/no/such/probe"],
        dir.path(),
        &none,
    );
    assert_fails_with(&o, "cannot read the probe binary /no/such/probe: ");
    let o = netdebug(
        &[
            "image",
            "build",
            "--probe",
            probe,
            "--ref",
            "netdebug/probe:latest",
        ],
        dir.path(),
        &none,
    );
    assert_fails_with(
        &o,
        "--ref netdebug/probe:latest: the kubelet pulls a `latest` image every time",
    );
    let o = netdebug(
        &["image", "build", "--ref", "netdebug/probe"],
        dir.path(),
        &none,
    );
    assert_fails_with(&o, "--ref netdebug/probe: no tag: give NAME:TAG");
    let o = netdebug(
        &["image", "load", "--kind", "a", "--out", "b"],
        dir.path(),
        &none,
    );
    assert_fails_with(&o, "cannot be used with");
}

#[test]
fn wrong_architecture_names_the_arm64_build() {
    let dir = tempfile::tempdir().unwrap();
    let Some(probe) = static_binary(dir.path()) else {
        return;
    };
    let o = netdebug(
        &[
            "image",
            "build",
            "--probe",
            probe.to_str().unwrap(),
            "--arch",
            "arm64",
        ],
        dir.path(),
        &dir.path().join("none"),
    );
    assert_fails_with(&o, "it is built for x86-64 (amd64), not arm64");
    assert_fails_with(&o, "--target aarch64-unknown-linux-gnu");
}

#[test]
fn static_probe_builds_a_reproducible_archive_and_prints_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let Some(probe) = static_binary(dir.path()) else {
        return;
    };
    let mut archives = Vec::new();
    for name in ["a.tar", "b.tar"] {
        let out = dir.path().join(name);
        let o = netdebug(
            &[
                "image",
                "build",
                "--probe",
                probe.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            dir.path(),
            &dir.path().join("none"),
        );
        let stdout = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{}\n{stdout}", text(&o.stderr));
        assert!(
            stdout.contains(&format!("archive  {} (", out.display())),
            "{stdout}"
        );
        let run_line = stdout.lines().last().unwrap();
        let prefix = format!(
            "run with: kubectl netdebug POD --image ghcr.io/netdebug/netdebug-probe:v{}-local-",
            env!("CARGO_PKG_VERSION")
        );
        assert!(run_line.starts_with(&prefix), "{stdout}");
        let tag_digest = &run_line[prefix.len()..];
        assert_eq!(tag_digest.len(), 12, "{run_line}");
        assert!(
            stdout.contains(&format!("image sha256:{tag_digest}")),
            "{stdout}"
        );
        archives.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(archives[0], archives[1], "same binary, same archive");
}

#[test]
fn load_into_a_kind_cluster_that_does_not_exist_lists_the_ones_there_are() {
    let dir = tempfile::tempdir().unwrap();
    let probe = PathBuf::from("/bin/true"); // never read: the destination fails first
    script(
        dir.path(),
        "kind",
        "[ \"$1 $2\" = \"get clusters\" ] && { echo dev; echo e2e; exit 0; }\necho \"unexpected: $*\" >&2; exit 9",
    );
    let o = netdebug(
        &[
            "image",
            "load",
            "--kind",
            "does-not-exist",
            "--probe",
            probe.to_str().unwrap(),
        ],
        dir.path(),
        &dir.path().join("none"),
    );
    assert_fails_with(
        &o,
        "error: kind cluster \"does-not-exist\" does not exist (kind clusters here: dev, e2e)",
    );
}

#[test]
fn load_without_kind_on_path_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let probe = PathBuf::from("/bin/true"); // never read: the destination fails first
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let o = netdebug(
        &[
            "image",
            "load",
            "--kind",
            "dev",
            "--probe",
            probe.to_str().unwrap(),
        ],
        &empty,
        &dir.path().join("none"),
    );
    assert_fails_with(&o, "error: kind is not on PATH: install kind (https://kind.sigs.k8s.io), or load the image with --containerd SOCKET or --out FILE");
}

#[test]
fn load_into_kind_runs_kind_load_with_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let Some(probe) = static_binary(dir.path()) else {
        return;
    };
    let log = dir.path().join("kind.log");
    script(
        dir.path(),
        "kind",
        &format!(
            "echo \"$*\" >> {log}\n[ \"$1\" = get ] && {{ echo dev; exit 0; }}\n\
             [ \"$1 $2\" = \"load image-archive\" ] && [ -s \"$3\" ] && echo archive-there >> {log} && exit 0\nexit 9",
            log = log.display()
        ),
    );
    let o = netdebug(
        &[
            "image",
            "load",
            "--kind",
            "dev",
            "--probe",
            probe.to_str().unwrap(),
        ],
        dir.path(),
        &dir.path().join("none"),
    );
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}\n{stdout}", text(&o.stderr));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.starts_with("get clusters\nload image-archive /"),
        "{log}"
    );
    assert!(log.contains(" --name dev\n"), "{log}");
    assert!(
        log.contains("\narchive-there\n"),
        "the archive was there when kind ran: {log}"
    );
    assert!(
        stdout.contains("loaded ghcr.io/netdebug/netdebug-probe:v"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" into kind cluster dev\nrun with: kubectl netdebug POD --image ghcr.io/"),
        "{stdout}"
    );
}

#[test]
fn load_with_no_cluster_reachable_names_the_server_and_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let probe = PathBuf::from("/bin/true"); // never read: the destination fails first
    let server = format!("https://127.0.0.1:{}", closed_port());
    let config = kubeconfig(dir.path(), &server);
    let started = Instant::now();
    let o = netdebug(
        &["image", "load", "--probe", probe.to_str().unwrap()],
        dir.path(),
        &config,
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_fails_with(
        &o,
        &format!("error: cannot reach the API server at {server} (context lab) to tell how to load the image: "),
    );
    assert_fails_with(
        &o,
        "Say where to load it: --kind CLUSTER (a kind cluster), --containerd SOCKET",
    );
    assert_fails_with(&o, "or --out FILE");
    // --out needs no cluster: the archive is written and the command printed without node names.
    let Some(probe) = static_binary(dir.path()) else {
        return;
    };
    let out = dir.path().join("p.tar");
    let o = netdebug(
        &[
            "image",
            "load",
            "--out",
            out.to_str().unwrap(),
            "--probe",
            probe.to_str().unwrap(),
        ],
        dir.path(),
        &config,
    );
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(out.exists());
    assert!(
        stdout.contains(&format!("ctr -n k8s.io images import {}", out.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("the nodes are not named: cannot reach the API server"),
        "{stdout}"
    );
}

#[test]
fn load_with_a_missing_containerd_socket_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let probe = PathBuf::from("/bin/true"); // never read: the destination fails first
    let o = netdebug(
        &[
            "image",
            "load",
            "--containerd",
            "/no/such/containerd.sock",
            "--probe",
            probe.to_str().unwrap(),
        ],
        dir.path(),
        &dir.path().join("none"),
    );
    assert_fails_with(
        &o,
        "error: no containerd socket at /no/such/containerd.sock",
    );
}

/// An API server over plain HTTP that answers every request with the node list of a kind
/// cluster named `dev` (and serves at most `n` requests, so the thread ends).
fn fake_kind_api(n: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let body = r#"{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"dev-control-plane"},"spec":{"providerID":"kind://docker/dev/dev-control-plane"}}]}"#;
        for stream in listener.incoming().take(n) {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn load_detects_a_kind_cluster_from_its_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(probe) = static_binary(dir.path()) else {
        return;
    };
    let config = kubeconfig(dir.path(), &fake_kind_api(1));
    let log = dir.path().join("kind.log");
    script(
        dir.path(),
        "kind",
        &format!(
            "echo \"$*\" >> {log}\n[ \"$1\" = get ] && {{ echo dev; exit 0; }}\nexit 0",
            log = log.display()
        ),
    );
    let o = netdebug(
        &["image", "load", "--probe", probe.to_str().unwrap()],
        dir.path(),
        &config,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("load image-archive "), "{log}");
    assert!(log.trim_end().ends_with("--name dev"), "{log}");
}
