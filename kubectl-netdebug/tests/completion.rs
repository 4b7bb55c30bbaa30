//! Shell completion end to end: the cluster lists behind completion (mocked API server), the
//! `kubectl_complete-netdebug` helper and `kubectl-netdebug __complete` as processes (never hang,
//! never fail) and the `completion` scripts. Unix-only parts (the helper as a symlink, kubectl's
//! own plugin completion) are in `completion_unix.rs`.
//!
//! Traffic: TCP to 127.0.0.1 only (a closed port, and a listener that never answers).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::mock_client;
use http::Method;
use kubectl_netdebug::complete::{complete_with, COMPLETION_DEADLINE};
use serde_json::json;

const HELPER: &str = env!("CARGO_BIN_EXE_kubectl_complete-netdebug");
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-netdebug");

fn w(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

/// A metadata-only list, as the API server answers `list_metadata`.
fn metadata_list(names: &[&str]) -> serde_json::Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "1"},
        "items": names.iter().map(|n| json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": n, "namespace": "x"}
        })).collect::<Vec<_>>(),
    })
}

/// Complete `args` against the mock, answering the one list request it must make at `path`.
async fn complete_listing(args: &[&str], path: &str, names: &[&str]) -> Vec<String> {
    let (client, mut api) = mock_client();
    let path = path.to_string();
    let names: Vec<String> = w(names);
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, &path);
        // The whole list (no selector, no limit): completion filters by prefix itself.
        assert!(call.query.is_empty(), "unexpected query {:?}", call.query);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        call.reply(200, metadata_list(&refs));
        // Exactly one request per completion.
        assert!(api.try_next().await.is_none(), "a second request was made");
    });
    let lines = complete_with(Some(&client), &w(args), COMPLETION_DEADLINE).await;
    drop(client);
    scenario.await.unwrap();
    lines
}

#[tokio::test]
async fn services_of_the_named_namespace_become_svc_candidates() {
    let lines = complete_listing(
        &["pod/x", "-n", "shop", "--to", "svc/p"],
        "/api/v1/namespaces/shop/services",
        &["payments", "payroll", "web"],
    )
    .await;
    assert_eq!(lines, w(&["svc/payments", "svc/payroll", ":4"]));
}

#[tokio::test]
async fn bare_source_lists_pods_of_the_default_namespace_with_kinds() {
    let lines = complete_listing(
        &["c"],
        "/api/v1/namespaces/default/pods",
        &["checkout-7d9", "web-0"],
    )
    .await;
    // Kinds starting with `c`: none; pods: one; subcommands: `completion` (first word).
    assert_eq!(lines, w(&["checkout-7d9", "completion", ":4"]));
}

#[tokio::test]
async fn workload_prefix_lists_that_kind() {
    let lines = complete_listing(
        &["--namespace=shop", "deploy/"],
        "/apis/apps/v1/namespaces/shop/deployments",
        &["checkout", "payments"],
    )
    .await;
    assert_eq!(lines, w(&["deploy/checkout", "deploy/payments", ":4"]));
    let lines = complete_listing(
        &["-n", "shop", "sts/"],
        "/apis/apps/v1/namespaces/shop/statefulsets",
        &["db"],
    )
    .await;
    assert_eq!(lines, w(&["sts/db", ":4"]));
    let lines = complete_listing(
        &["job/"],
        "/apis/batch/v1/namespaces/default/jobs",
        &["migrate"],
    )
    .await;
    assert_eq!(lines, w(&["job/migrate", ":4"]));
    let lines = complete_listing(
        &["pod/x", "--to", "pod/"],
        "/api/v1/namespaces/default/pods",
        &["web-0"],
    )
    .await;
    assert_eq!(lines, w(&["pod/web-0", ":4"]));
}

#[tokio::test]
async fn namespaces_are_listed_cluster_wide() {
    let lines = complete_listing(
        &["pod/x", "-n", "kube-"],
        "/api/v1/namespaces",
        &["default", "kube-public", "kube-system"],
    )
    .await;
    assert_eq!(lines, w(&["kube-public", "kube-system", ":4"]));
}

#[tokio::test]
async fn static_values_and_kind_prefixes_need_no_request() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        assert!(api.try_next().await.is_none(), "no request expected");
    });
    let lines = complete_with(
        Some(&client),
        &w(&["pod/x", "--profile", ""]),
        COMPLETION_DEADLINE,
    )
    .await;
    assert_eq!(
        lines,
        w(&["auto", "restricted", "baseline", "netadmin", ":4"])
    );
    let lines = complete_with(
        Some(&client),
        &w(&["pod/x", "--image-pull-policy", "I"]),
        COMPLETION_DEADLINE,
    )
    .await;
    assert_eq!(lines, w(&["IfNotPresent", ":4"]));
    let lines = complete_with(
        Some(&client),
        &w(&["pod/x", "--to", ""]),
        COMPLETION_DEADLINE,
    )
    .await;
    assert_eq!(lines, w(&["svc/", "pod/", ":6"]));
    drop(client);
    scenario.await.unwrap();
}

#[tokio::test]
async fn api_errors_give_only_the_directive() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/shop/services");
        call.reply_status(403, "Forbidden", "services is forbidden");
    });
    let lines = complete_with(
        Some(&client),
        &w(&["pod/x", "-n", "shop", "--to", "svc/"]),
        COMPLETION_DEADLINE,
    )
    .await;
    assert_eq!(lines, w(&[":4"]));
    scenario.await.unwrap();
}

#[tokio::test]
async fn a_silent_api_server_is_cut_off_at_the_deadline() {
    let (client, mut api) = mock_client();
    let scenario = tokio::spawn(async move {
        let call = api.next().await;
        call.assert(Method::GET, "/api/v1/namespaces/default/pods");
        // Never answer: hold the call until the client gives up.
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(call);
    });
    let started = Instant::now();
    let lines = complete_with(Some(&client), &w(&["pod/"]), Duration::from_millis(300)).await;
    assert_eq!(lines, w(&[":4"]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    scenario.await.unwrap();
}

// ---- the processes ----

fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: lab\n\
             clusters:\n- name: lab\n  cluster: {{server: \"{server}\", insecure-skip-tls-verify: true}}\n\
             contexts:\n- name: lab\n  context: {{cluster: lab, user: lab}}\n\
             users:\n- name: lab\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    path
}

fn run(bin: &str, args: &[&str], kubeconfig: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (out, started.elapsed())
}

fn assert_only_directive(out: &Output, took: Duration, limit: Duration) {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), ":4\n", "{out:?}");
    assert!(took < limit, "took {took:?}");
}

#[test]
fn helper_with_a_refused_api_server_prints_only_the_directive_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), "https://127.0.0.1:1");
    for args in [&["pod/x", "--to", "svc/"][..], &["-n", ""], &[""]] {
        let (out, took) = run(HELPER, args, &config);
        let (out, took) = match args {
            // Bare SOURCE offers the kind prefixes and subcommands even without a cluster.
            [""] => {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                assert_eq!(out.status.code(), Some(0));
                assert!(text.starts_with("pod/\ndeploy/\n"), "{text}");
                assert!(text.ends_with("completion\n:4\n"), "{text}");
                assert!(took < Duration::from_secs(2), "took {took:?}");
                continue;
            }
            _ => (out, took),
        };
        assert_only_directive(&out, took, Duration::from_secs(2));
    }
    // The hidden entry of the plugin itself behaves the same.
    let (out, took) = run(PLUGIN, &["__complete", "pod/x", "--to", "svc/"], &config);
    assert_only_directive(&out, took, Duration::from_secs(2));
}

#[test]
fn helper_with_a_silent_api_server_gives_up_within_the_deadline() {
    // Accepts TCP connections (the kernel's backlog) and never says a word: the TLS handshake hangs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("https://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &server);
    let (out, took) = run(HELPER, &["pod/x", "-n", "shop", "--to", "svc/"], &config);
    assert_only_directive(&out, took, COMPLETION_DEADLINE + Duration::from_secs(3));
    drop(listener);
}

#[test]
fn helper_with_a_broken_kubeconfig_prints_only_the_directive() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "this: [is not a kubeconfig").unwrap();
    let (out, took) = run(HELPER, &["pod/"], &config);
    assert_only_directive(&out, took, Duration::from_secs(2));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = dir.path().join("missing");
    let (out, took) = run(
        HELPER,
        &["--kubeconfig", missing.to_str().unwrap(), "pod/"],
        &config,
    );
    assert_only_directive(&out, took, Duration::from_secs(2));
}

#[test]
fn helper_answers_static_values_without_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("none");
    let (out, _) = run(HELPER, &["pod/x", "--profile", ""], &config);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "auto\nrestricted\nbaseline\nnetadmin\n:4\n"
    );
    let (out, _) = run(HELPER, &["pod/x", "-o", ""], &config);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "text\nmarkdown\njson\n:4\n"
    );
}

// ---- completion scripts ----

fn script(shell: &str) -> String {
    let out = Command::new(PLUGIN)
        .args(["completion", shell])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("netdebug"), "{text}");
    assert!(
        !text.contains("__complete"),
        "the hidden entry leaked into the {shell} script"
    );
    text
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    let bash = script("bash");
    assert!(bash.contains("complete -F _kubectl__netdebug"), "{bash}");
    assert!(bash.contains("--profile"), "{bash}");
    assert!(
        bash.contains("restricted"),
        "profile values are in the script"
    );
    // bash itself accepts it, when bash is here (not on Windows, where `bash` may be WSL's
    // launcher in System32 rather than a shell).
    let bash_here = cfg!(unix).then(|| {
        Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .spawn()
    });
    if let Some(Ok(mut child)) = bash_here {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(bash.as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "bash -n rejected the script"
        );
    }

    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef kubectl-netdebug"), "{zsh}");
    assert!(zsh.contains("--image-pull-policy"), "{zsh}");

    let fish = script("fish");
    assert!(fish.contains("complete -c kubectl-netdebug"), "{fish}");
    assert!(fish.contains("netadmin"), "{fish}");

    let out = Command::new(PLUGIN)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
