//! The built binary with bad input: malformed flags are clap's usage errors (exit 2), bad
//! values get one specific line (exit 2), never a panic.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_kubectl-netdebug"))
        .args(args)
        // Never read a developer's real kubeconfig.
        .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_usage_error(args: &[&str], expected: &str) {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(expected),
        "{args:?}: expected {expected:?} in:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn no_arguments() {
    assert_usage_error(&[], "the following required arguments were not provided");
}

#[test]
fn nothing_to_check() {
    assert_usage_error(&["pod/x"], "<--to <DEST>|--dns <NAME>|--sockets>");
}

#[test]
fn bad_duration() {
    assert_usage_error(
        &["pod/x", "--to", "10.96.0.10:53", "--timeout", "soon"],
        "invalid value 'soon' for '--timeout <DURATION>': invalid duration `soon`",
    );
    assert_usage_error(
        &["pod/x", "--to", "10.96.0.10:53", "--request-timeout", "5x"],
        "invalid value '5x' for '--request-timeout <DURATION>'",
    );
}

#[test]
fn bad_enums() {
    assert_usage_error(
        &["pod/x", "--to", "a:1", "-o", "yaml"],
        "invalid value 'yaml' for '--output <FORMAT>'",
    );
    assert_usage_error(
        &["pod/x", "--to", "a:1", "--profile", "root"],
        "invalid value 'root' for '--profile <PROFILE>'",
    );
    assert_usage_error(
        &["pod/x", "--to", "a:1", "--image-pull-policy", "sometimes"],
        "invalid value 'sometimes'",
    );
}

#[test]
fn unknown_flag() {
    assert_usage_error(
        &["pod/x", "--to", "a:1", "--bogus"],
        "unexpected argument '--bogus'",
    );
}

#[test]
fn local_netns_and_pid_conflict() {
    assert_usage_error(
        &[
            "local",
            "--to",
            "127.0.0.1:80",
            "--netns",
            "a",
            "--pid",
            "1",
        ],
        "cannot be used with",
    );
}

#[test]
fn version_subcommand() {
    let o = run(&["version"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(&format!("kubectl-netdebug {}\n", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("protocol 1."), "{out}");
    assert!(
        out.contains("default probe image ghcr.io/netdebug/netdebug-probe:v"),
        "{out}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn local_malformed_to() {
    for (to, why) in [
        ("127.0.0.1", "missing `:PORT`"),
        ("127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("::1:80", "IPv6 addresses go in brackets"),
        (
            "bad host:80",
            "`bad host` is not an IP address or a DNS name",
        ),
    ] {
        let o = run(&["local", "--to", to]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert_eq!(
            err.trim_end(),
            format!(
                "error: --to {to}: {why} (expected HOST:PORT, e.g. 10.0.0.5:8080 or [fd00::1]:80)"
            )
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn local_unknown_netns() {
    let o = run(&[
        "local",
        "--to",
        "127.0.0.1:80",
        "--netns",
        "ndt-no-such-namespace",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim_end(),
        "error: network namespace `ndt-no-such-namespace` does not exist (/var/run/netns/ndt-no-such-namespace not found; see `ip netns list`)"
    );
}

#[cfg(not(target_os = "linux"))]
#[test]
fn local_is_linux_only() {
    let o = run(&["local", "--to", "127.0.0.1:80"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("works only on Linux"));
}

fn run_with_kubeconfig(args: &[&str], kubeconfig: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-netdebug"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("the binary runs")
}

#[test]
fn malformed_destination_fails_before_any_api_call() {
    // The kubeconfig does not exist: the error must be about --to, found first.
    for (to, expected) in [
        ("svc/", "error: invalid --to `svc/`: "),
        ("10.0.0.1", "error: invalid --to `10.0.0.1`: "),
    ] {
        let o = run(&["pod/x", "--to", to]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.starts_with(expected), "{to}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn missing_kubeconfig_is_named() {
    let o = run(&["pod/x", "--to", "10.96.0.10:53"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: cannot read the kubeconfig: "),
        "{err}"
    );
    assert!(err.contains("no-kubeconfig"), "{err}");
}

/// Traffic: one connection attempt to 127.0.0.1 port 1, where nothing listens.
#[test]
fn unreachable_api_server_names_server_and_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         contexts: [{name: lab, context: {cluster: c, user: u}}]\n\
         users: [{name: u, user: {token: t}}]\n",
    )
    .unwrap();
    let o = run_with_kubeconfig(&["pod/x", "--to", "10.96.0.10:53"], &path);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(
            "error: cannot reach the API server at https://127.0.0.1:1 (context lab): "
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let o = run_with_kubeconfig(
        &["pod/x", "--to", "10.96.0.10:53", "--context", "nope"],
        &path,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: cannot use kubeconfig context nope: "),
        "{err}"
    );
}

#[test]
fn bad_dns_names_fail_before_any_api_call() {
    for (name, expected) in [
        ("10.96.0.10", "error: --dns 10.96.0.10: an IP address, not a name (use --to 10.96.0.10:PORT to test an address)"),
        ("bad name", "error: --dns bad name: is not an IP address or a DNS name"),
    ] {
        let o = run(&["pod/x", "--dns", name]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(stderr(&o).trim_end(), expected);
    }
}

/// Regression: limits the probe would refuse (its deadline at most 600 s) were found only
/// after the API calls; `--capture-duration 599s --timeout 700s` fits in --timeout but asks
/// the probe for a 601 s deadline. The kubeconfig does not exist: the limit error comes first.
#[test]
fn plan_limits_rejected_before_any_api_call() {
    let o = run(&[
        "pod/x",
        "--to",
        "svc/web",
        "--capture-duration",
        "599s",
        "--timeout",
        "700s",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: --capture-duration 599s is longer than a probe may run: at most 598s"
    );
    assert!(!err.contains("kubeconfig"), "{err}");
}

/// Regression: local mode accepted a capture as long as --timeout itself (no time left for
/// the probe to report), the cluster path asked for the probe's margin too: one rule now,
/// the cluster adding its own overhead.
#[test]
fn capture_fits_timeout_same_rule_local_and_cluster() {
    let local = run(&[
        "local",
        "--to",
        "127.0.0.1:1",
        "--capture-duration",
        "10s",
        "--timeout",
        "11s",
    ]);
    let err = stderr(&local);
    assert_eq!(local.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: --capture-duration 10s does not fit in --timeout 11s: raise --timeout to at least 12s"
    );
    let cluster = run(&[
        "pod/x",
        "--to",
        "svc/web",
        "--capture-duration",
        "10s",
        "--timeout",
        "31s",
    ]);
    let err = stderr(&cluster);
    assert_eq!(cluster.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: --capture-duration 10s does not fit in --timeout 31s: raise --timeout to at least 32s"
    );
}

/// Regression: help texts repeated the capture limits' defaults by hand; they are read from
/// the protocol's constants, which the plan's defaults use too.
#[test]
fn help_shows_the_protocols_capture_defaults() {
    let o = run(&["pod/x", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains(&format!("[default: {}]", protocol::DEFAULT_CAPTURE_PACKETS)),
        "{help}"
    );
    assert!(
        help.contains(&format!(
            "[default: {} MiB]",
            protocol::DEFAULT_CAPTURE_BYTES >> 20
        )),
        "{help}"
    );
    let plan = protocol::CapturePlan::default();
    assert_eq!(plan.max_packets, protocol::DEFAULT_CAPTURE_PACKETS);
    assert_eq!(plan.max_bytes, protocol::DEFAULT_CAPTURE_BYTES);
}

/// Repeated rounds: every bad value is one line and exit 2, before any API call (the
/// kubeconfig does not exist: a limit error comes first).
#[test]
fn rounds_flags_bad_input() {
    let base = ["pod/x", "--to", "svc/web"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let check = |extra: &[&str], expected: &str| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_usage_error(&args, expected);
        assert!(!stderr(&run(&args)).contains("kubeconfig"));
    };
    check(
        &["--repeat", "0"],
        "invalid value '0' for '--repeat <N>': 0 is not in 1..=100000",
    );
    check(
        &["--repeat", "100001"],
        "invalid value '100001' for '--repeat <N>': 100001 is not in 1..=100000",
    );
    check(
        &["--rate", "0"],
        "invalid value '0' for '--rate <R>': 0 is not in 1..=500",
    );
    check(
        &["--rate", "501"],
        "invalid value '501' for '--rate <R>': 501 is not in 1..=500",
    );
    check(
        &["--for", "0s"],
        "invalid value '0s' for '--for <DURATION>'",
    );
    check(
        &["--for", "60s"],
        "error: --for 60s does not fit in --timeout 60s: raise --timeout to at least 85s",
    );
    check(
        &[
            "--repeat",
            "10",
            "--capture-duration",
            "10s",
            "--timeout",
            "31s",
        ],
        "error: --capture-duration 10s does not fit in --timeout 31s",
    );
    let o = run(&["pod/x", "--sockets", "--repeat", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--repeat/--for repeat connects and lookups: give --to or --dns"),
        "{}",
        stderr(&o)
    );
    // Local mode: the same flags, the same rules (its probe starts at once: no overhead).
    let o = run(&[
        "local",
        "--to",
        "127.0.0.1:1",
        "--for",
        "20s",
        "--timeout",
        "20s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim_end(),
        "error: --for 20s does not fit in --timeout 20s: raise --timeout to at least 25s"
    );
    let o = run(&[
        "local",
        "--to",
        "127.0.0.1:1",
        "--to",
        "127.0.0.1:2",
        "--repeat",
        "1000",
        "--timeout",
        "20s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            "--repeat 1000 toward 2 address(es) and 0 name(s) at --rate 50/s needs about 45s"
        ),
        "{}",
        stderr(&o)
    );
}

/// A capture filter the probe's compiler refuses is a usage error before any API call (the
/// kubeconfig does not exist: the filter error comes first), in both modes.
#[test]
fn capture_filter_that_does_not_compile_is_refused_before_anything() {
    let o = run(&[
        "pod/x",
        "--to",
        "svc/web",
        "--capture-filter",
        "tcp port eighty",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: --capture-filter 'tcp port eighty': "),
        "{err}"
    );
    assert!(err.contains("column"), "{err}");
    assert!(!err.contains("kubeconfig"), "{err}");
    let o = run(&[
        "local",
        "--to",
        "127.0.0.1:1",
        "--capture-filter",
        "host not-an-address",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("error: --capture-filter 'host not-an-address': "),
        "{err}"
    );
    // A good filter passes this check (and then fails on the missing kubeconfig).
    let o = run(&[
        "pod/x",
        "--to",
        "svc/web",
        "--capture-filter",
        "tcp port 80 and host 10.0.0.1",
    ]);
    assert!(stderr(&o).contains("kubeconfig"), "{}", stderr(&o));
}
