//! `kubectl-netdebug local`: run `netdebug-probe` on this Linux host (optionally entering a
//! network namespace by name or through a process), read its stdout with the same event reader
//! the Kubernetes path uses on the pod log, and render the same verdict. No Kubernetes.

use std::path::PathBuf;

use crate::cli::LocalArgs;
use crate::error::{Error, Result};

/// Name of the probe binary.
pub const PROBE_BINARY: &str = "netdebug-probe";

/// Environment variable naming the probe binary explicitly (tests, unusual installs).
pub const PROBE_ENV: &str = "NETDEBUG_PROBE";

/// Find the probe: `$NETDEBUG_PROBE`, else beside this executable (how release archives ship
/// both), else on `PATH`. Hand-written (not the `which` crate): it is three lookups.
pub fn find_probe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(PROBE_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Local(format!(
                "{PROBE_ENV}={} does not name a file",
                p.display()
            )))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(PROBE_BINARY)));
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(PROBE_BINARY))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Local(format!(
                "cannot find {PROBE_BINARY} beside this program or on PATH (or set {PROBE_ENV})"
            ))
        })
}

/// The header line's source: `local`, `netns/blue`, `pid/1234`.
pub fn source_label(args: &LocalArgs) -> String {
    match (&args.netns, args.pid) {
        (Some(n), _) => format!("netns/{n}"),
        (None, Some(pid)) => format!("pid/{pid}"),
        _ => "local".into(),
    }
}

/// Where the probe looks from, for the verdict's next steps.
pub fn origin(args: &LocalArgs) -> verdict::Origin {
    match (&args.netns, args.pid) {
        (Some(name), _) => verdict::Origin::LocalNetns { name: name.clone() },
        (None, Some(pid)) => verdict::Origin::LocalPid { pid },
        _ => verdict::Origin::Local,
    }
}

/// The header line's destination: the `--to` list, else the DNS names.
pub fn destination_label(args: &LocalArgs) -> Option<String> {
    if !args.to.is_empty() {
        Some(args.to.join(", "))
    } else if !args.dns.is_empty() {
        Some(format!("dns {}", args.dns.join(", ")))
    } else {
        None
    }
}

/// The probe's command line (after the program name).
pub fn probe_args(args: &LocalArgs, plan_json: &str) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(n) = &args.netns {
        v.push("--netns".to_string());
        v.push(n.clone());
    }
    if let Some(pid) = args.pid {
        v.push("--pid".to_string());
        v.push(pid.to_string());
    }
    v.push(plan_json.to_string());
    v
}

#[cfg(not(target_os = "linux"))]
pub async fn run(_args: LocalArgs) -> Result<i32> {
    Err(Error::Local(
        "local mode runs the probe in a Linux network namespace and works only on Linux; \
         on this system use `kubectl netdebug POD --to DEST` against a cluster"
            .into(),
    ))
}

#[cfg(target_os = "linux")]
pub async fn run(args: LocalArgs) -> Result<i32> {
    imp::run(args).await
}

#[cfg(target_os = "linux")]
mod imp {
    use std::path::Path;
    use std::process::Stdio;
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    use super::*;
    use crate::events::{EventReader, ReadError};
    use crate::output::{probe_refused, ProbeEnd, Session};
    use crate::plan::{
        build_plan, check_limits, check_rounds_fit, parse_host_port, PlanOptions, Site,
    };

    /// Time the probe gets beyond its own deadline to write `done` and exit.
    const GRACE: Duration = Duration::from_secs(5);

    pub async fn run(args: LocalArgs) -> Result<i32> {
        let mut plan = local_plan(&args)?;
        for n in args.netns.iter().chain(&args.peer_netns) {
            check_netns_exists(n)?;
        }
        let both_ends = !args.peer_netns.is_empty();
        if both_ends {
            crate::ends::check_write_target(args.write.as_deref()).map_err(Error::Local)?;
            crate::ends::source_for_both_ends(&mut plan);
        }
        let probe = find_probe()?;
        let plan_json = serde_json::to_string(&plan).expect("a plan always serialises");
        let mut session = session_for(&args)?;
        let deadline = tokio::time::Instant::now() + args.timeout + GRACE;
        if !both_ends {
            run_probe(&args, &probe, &plan_json, &mut session, deadline).await?;
            return session.finish().await;
        }
        // Peers first, and the source only once their captures are armed.
        let sources = crate::local_peers::source_addresses(&args).await?;
        let mut peers = crate::local_peers::start(&args, &probe, &sources, &plan.targets).await?;
        for late in crate::local_peers::wait_armed(&mut peers, deadline).await {
            session.warn(late);
        }
        let ran = run_probe(&args, &probe, &plan_json, &mut session, deadline).await;
        crate::local_peers::stop_and_collect(peers, &mut session).await;
        ran?;
        session.finish().await
    }

    /// The plan the flags describe, with every limit checked before anything runs.
    fn local_plan(args: &LocalArgs) -> Result<protocol::Plan> {
        let split = args
            .to
            .iter()
            .map(|t| crate::app::split_to(t))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::Local)?;
        let targets = split
            .iter()
            .map(|t| parse_host_port(&t.destination))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::Local)?;
        let app = local_app_plan(args, &split, &targets)?;
        let options = PlanOptions {
            dns_names: args.dns.clone(),
            capture: args.capture.clone(),
            write_pcap: args.write.is_some(),
            mtu: args.mtu,
            sockets: args.sockets,
            deadline: args.timeout,
            rounds: args.rounds.plan(),
            connect_timeout: args.rounds.connect_timeout,
            app,
        };
        if args.to.is_empty() && args.dns.is_empty() && options.rounds.is_some() {
            return Err(Error::Local(
                "--repeat/--for repeat connects and lookups: give --to or --dns".into(),
            ));
        }
        check_limits(&options, args.timeout, Site::Local).map_err(Error::Local)?;
        let plan = build_plan(targets, &options);
        plan.validate().map_err(|e| Error::Local(format!("{e}")))?;
        check_rounds_fit(&plan, args.timeout, Site::Local).map_err(Error::Local)?;
        Ok(plan)
    }

    /// TLS/HTTP for local mode: one ask and one name for the run (the plan has one server
    /// name and Host), so the `--to`s must agree on them.
    fn local_app_plan(
        args: &LocalArgs,
        split: &[crate::app::SplitTo],
        targets: &[protocol::Target],
    ) -> Result<Option<protocol::AppPlan>> {
        let urls: Vec<_> = split.iter().map(|s| s.url.clone()).collect();
        if urls.iter().any(|u| *u != urls[0]) {
            return Err(Error::Local(
                "every --to must be the same kind (all URLs with one scheme and path, or none): \
                 the TLS and HTTP exchange is one per run"
                    .into(),
            ));
        }
        let ask = crate::app::ask(
            urls.first().and_then(|u| u.as_ref()),
            args.http.as_deref(),
            args.tls,
        )
        .map_err(Error::Local)?;
        let Some(ask) = ask else {
            return Ok(None);
        };
        let mut hosts: Vec<&str> = targets.iter().map(|t| t.host.as_str()).collect();
        hosts.dedup();
        let [host] = hosts.as_slice() else {
            return Err(Error::Local(
                "with TLS or HTTP, give one host (its name is the one the certificate and the \
                 Host header are checked against)"
                    .into(),
            ));
        };
        let ports: Vec<Option<u16>> = targets.iter().map(|t| t.port).collect();
        let port = ports
            .iter()
            .all(|p| *p == ports[0])
            .then_some(ports[0])
            .flatten();
        Ok(Some(crate::app::app_plan(&ask, host, port)))
    }

    /// Run the probe as a child, stream its events into the session, and say how it ended.
    async fn run_probe(
        args: &LocalArgs,
        probe: &Path,
        plan_json: &str,
        session: &mut Session,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let mut child = tokio::process::Command::new(probe)
            .args(probe_args(args, plan_json))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Local(format!("cannot start {}: {e}", probe.display())))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        // Collect stderr concurrently so a chatty probe never blocks on a full pipe.
        let stderr_task = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut buf).await;
            // Drain the rest without keeping it.
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            String::from_utf8_lossy(&buf).into_owned()
        });

        let mut reader = EventReader::new();
        let input = futures::io::BufReader::new(stdout.compat());
        let read = reader.read_from(input, |item| session.accept(item));
        let read_result = tokio::time::timeout_at(deadline, read).await;
        let timed_out = read_result.is_err();
        if let Ok(Err(e)) = read_result {
            let _ = child.kill().await;
            return Err(match e {
                ReadError::Protocol(p) => Error::Local(format!("{}: {p}", probe.display())),
                other => Error::Local(other.to_string()),
            });
        }
        let status = match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(e)) => return Err(Error::Local(format!("waiting for the probe: {e}"))),
            Err(_) => {
                let _ = child.kill().await;
                None
            }
        };
        let stderr_text = stderr_task.await.unwrap_or_default();
        let last_stderr = stderr_text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();

        let ended_early = if reader.saw_done() {
            None
        } else {
            let code = status.and_then(|s| s.code());
            // Exit 2 before any event: the probe refused to run (bad netns, no permission to
            // setns, a plan it rejects). That is the tool failing, with the probe's own words.
            if code == Some(2) && reader.last_seq().is_none() {
                return Err(Error::Local(if last_stderr.is_empty() {
                    format!("{} failed (exit code 2) without a message", probe.display())
                } else {
                    probe_refused(&last_stderr)
                }));
            }
            Some(cut_short(timed_out, status, args.timeout + GRACE))
        };
        session.record_end(
            ProbeEnd {
                ended_early,
                exit_code: status.and_then(|s| s.code()),
                last_words: (!last_stderr.is_empty()).then_some(last_stderr),
            },
            &reader,
        );
        Ok(())
    }

    /// The output session, titled with where the probe looks from.
    fn session_for(args: &LocalArgs) -> Result<Session> {
        let title = verdict::Title {
            source: source_label(args),
            destination: destination_label(args),
            namespace: None,
            origin: Some(origin(args)),
            asked: crate::plan::asked_flags(&args.to, &args.dns),
        };
        Session::new(
            &args.output,
            title,
            verdict::kube::KubeEvidence::default(),
            args.write.as_deref(),
        )
    }

    /// Why a probe that did not send `done` stopped, from its exit status.
    fn cut_short(
        timed_out: bool,
        status: Option<std::process::ExitStatus>,
        limit: Duration,
    ) -> String {
        match status.filter(|_| !timed_out) {
            None => format!(
                "the probe did not finish within {} s and was stopped",
                limit.as_secs()
            ),
            Some(s) => match s.code() {
                Some(c) => format!("the probe exited with code {c} before finishing"),
                None => "the probe was killed by a signal before finishing".into(),
            },
        }
    }

    /// A name (not a path) must exist under /var/run/netns, as `ip netns` keeps them; saying
    /// so here gives a better message than the probe's setns error.
    fn check_netns_exists(name: &str) -> Result<()> {
        if name.contains('/') {
            return Ok(()); // a path: the probe opens it and reports
        }
        let p = Path::new("/var/run/netns").join(name);
        if p.exists() {
            Ok(())
        } else {
            Err(Error::Local(format!(
                "network namespace `{name}` does not exist ({} not found; see `ip netns list`)",
                p.display()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn local(args: &[&str]) -> LocalArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["kubectl-netdebug", "local"]
                .iter()
                .chain(args.iter())
                .copied(),
        )
        .unwrap();
        match cli.command {
            Some(crate::cli::Command::Local(l)) => *l,
            _ => unreachable!("parsed as local"),
        }
    }

    #[test]
    fn labels_and_probe_arguments() {
        let a = local(&["--to", "10.199.0.2:80", "--netns", "blue"]);
        assert_eq!(source_label(&a), "netns/blue");
        assert_eq!(destination_label(&a).as_deref(), Some("10.199.0.2:80"));
        assert_eq!(probe_args(&a, "{}"), ["--netns", "blue", "{}"]);
        let a = local(&["--dns", "example.test", "--pid", "42"]);
        assert_eq!(source_label(&a), "pid/42");
        assert_eq!(destination_label(&a).as_deref(), Some("dns example.test"));
        assert_eq!(probe_args(&a, "{}"), ["--pid", "42", "{}"]);
    }
}
