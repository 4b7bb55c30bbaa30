//! `local --peer-netns`: peer probes as child processes in the destination namespaces, paced
//! through their standard input (see [`crate::ends`] for the order of a run).

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures::future::join_all;
use protocol::ControlVia;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::cli::LocalArgs;
use crate::ends::{self, PeerRun, ARM_LIMIT, REPORT_LIMIT};
use crate::error::{Error, Result};
use crate::events::EventReader;
use crate::output::Session;
use crate::pcap::PcapWriter;

/// A running peer probe.
pub struct PeerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    armed: Option<oneshot::Receiver<()>>,
    /// Reads the peer's stdout to the end; gives its run back.
    reader: JoinHandle<PeerRun>,
    id: String,
}

/// The source namespace's addresses a peer should watch for: its global ones.
pub async fn source_addresses(args: &LocalArgs) -> Result<Vec<IpAddr>> {
    let netns = match (&args.netns, args.pid) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(pid)) => Some(format!("/proc/{pid}/ns/net")),
        (None, None) => None,
    };
    let addresses = global_addresses_in(netns.as_deref()).await?;
    if addresses.is_empty() {
        return Err(Error::Local(
            "the source namespace has no global address, so no peer could tell its traffic \
             apart"
                .into(),
        ));
    }
    Ok(addresses)
}

/// The global addresses of a network namespace (a name under /var/run/netns, a path, or None
/// for this host's), read with `ip -j addr` inside it: the client itself never enters one.
async fn global_addresses_in(netns: Option<&str>) -> Result<Vec<IpAddr>> {
    let mut command = match netns {
        Some(name) if !name.contains('/') => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["-n", name]);
            c
        }
        Some(path) => nsenter(path.to_string()),
        None => tokio::process::Command::new("ip"),
    };
    command.args(["-j", "addr", "show"]).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(5), command.output())
        .await
        .map_err(|_| Error::Local("`ip -j addr show` did not answer within 5 s".into()))?
        .map_err(|e| {
            Error::Local(format!(
                "--peer-netns reads the namespaces' addresses with `ip` (iproute2): {e}"
            ))
        })?;
    if !output.status.success() {
        return Err(Error::Local(format!(
            "reading the addresses of {} failed: {}",
            netns.unwrap_or("this host"),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(global_addresses(&output.stdout))
}

fn nsenter(netns_path: String) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("nsenter");
    c.arg(format!("--net={netns_path}")).arg("ip");
    c
}

/// The global-scope addresses in `ip -j addr` output.
fn global_addresses(json: &[u8]) -> Vec<IpAddr> {
    let links: Vec<serde_json::Value> = serde_json::from_slice(json).unwrap_or_default();
    links
        .iter()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["scope"] == "global")
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .collect()
}

/// Start one peer probe per `--peer-netns`, each watching `sources` arrive on `ports`. Each
/// peer's address is the destination (`--to`) it holds, when one is its own: the verdict then
/// knows whose a connection was.
pub async fn start(
    args: &LocalArgs,
    probe: &Path,
    sources: &[IpAddr],
    targets: &[protocol::Target],
) -> Result<Vec<PeerChild>> {
    let ports: Vec<u16> = targets.iter().filter_map(|t| t.port).collect();
    let mut peers = Vec::new();
    for (i, netns) in args.peer_netns.iter().enumerate() {
        let own = global_addresses_in(Some(netns)).await?;
        let held = targets.iter().find_map(|t| {
            let ip: IpAddr = t.host.parse().ok()?;
            own.contains(&ip).then_some((ip, t.port?))
        });
        let id = format!("peer-{}", i + 1);
        let plan = ends::peer_plan(
            sources.to_vec(),
            ports.clone(),
            args.timeout,
            args.write.is_some(),
            ControlVia::Stdin,
        );
        let plan_json = serde_json::to_string(&plan).expect("a plan always serialises");
        let pcap = args
            .write
            .as_deref()
            .map(|w| PcapWriter::create(&ends::peer_pcap_path(w, &id)))
            .transpose()?;
        let port = held.map_or(ports[0], |(_, port)| port);
        let mut session = verdict::PeerSession::new(&id, format!("netns/{netns}"), port);
        session.address = held.map(|(ip, _)| ip);
        let mut child = tokio::process::Command::new(probe)
            .args(["--netns", netns.as_str(), plan_json.as_str()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Local(format!("cannot start {}: {e}", probe.display())))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut run = PeerRun::new(session, pcap);
        let armed_rx = run.armed_signal();
        let reader = tokio::spawn(read_peer(stdout, run));
        peers.push(PeerChild {
            stdin: child.stdin.take(),
            child,
            armed: Some(armed_rx),
            reader,
            id,
        });
    }
    Ok(peers)
}

/// Read a peer's events to the end of its stdout.
async fn read_peer(stdout: tokio::process::ChildStdout, mut run: PeerRun) -> PeerRun {
    let mut reader = EventReader::new();
    let input = futures::io::BufReader::new(stdout.compat());
    let read = reader
        .read_from(input, |item| {
            run.accept(item);
        })
        .await;
    if let Err(e) = read {
        run.problem(e.to_string());
    }
    if !reader.saw_done() {
        run.end_early("the peer's probe stopped before finishing its run".into());
    }
    run
}

/// Wait until every peer is armed, at most [`ARM_LIMIT`] (and never past `deadline`). A peer
/// that did not arm is left running: what it saw still counts, and the verdict says it was late.
pub async fn wait_armed(peers: &mut [PeerChild], deadline: Instant) -> Vec<String> {
    let until = deadline.min(Instant::now() + ARM_LIMIT);
    let waits = peers.iter_mut().map(|p| {
        let rx = p.armed.take();
        let id = p.id.clone();
        async move {
            match rx {
                Some(rx) => match tokio::time::timeout_at(until, rx).await {
                    Ok(Ok(())) => None,
                    Ok(Err(_)) => Some(format!("{id} ended before its capture was armed")),
                    Err(_) => Some(format!(
                        "{id}'s capture was not armed within {} s; the source went ahead without it",
                        ARM_LIMIT.as_secs()
                    )),
                },
                None => None,
            }
        }
    });
    join_all(waits).await.into_iter().flatten().collect()
}

/// Tell every peer `stop`, collect their runs (each within [`REPORT_LIMIT`]) into the session.
pub async fn stop_and_collect(peers: Vec<PeerChild>, session: &mut Session) {
    let finishing = peers.into_iter().map(stop_one);
    for (peer, notes) in join_all(finishing).await {
        session.add_peer(peer);
        notes.into_iter().for_each(|n| session.note(n));
    }
}

async fn stop_one(mut peer: PeerChild) -> (verdict::PeerSession, Vec<String>) {
    if let Some(mut stdin) = peer.stdin.take() {
        // A peer that already ended has closed its stdin: nothing to tell it.
        let _ = stdin.write_all(protocol::CONTROL_STOP.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
        // Dropping stdin closes it: a closed channel is a `stop` too.
    }
    let until = Instant::now() + REPORT_LIMIT;
    let mut late = None;
    let joined = match tokio::time::timeout_at(until, &mut peer.reader).await {
        Ok(joined) => joined,
        Err(_) => {
            // Killed, its stdout closes and the reader ends with what it had.
            let _ = peer.child.kill().await;
            late = Some(format!(
                "{} did not report within {} s of `stop` and was killed",
                peer.id,
                REPORT_LIMIT.as_secs()
            ));
            peer.reader.await
        }
    };
    let run = joined.unwrap_or_else(|e| {
        let why = format!("its reader failed: {e}");
        PeerRun::new(
            verdict::PeerSession::not_run(&peer.id, peer.id.clone(), 0, why),
            None,
        )
    });
    let _ = tokio::time::timeout(Duration::from_secs(1), peer.child.wait()).await;
    let (session, pcap_note) = run.finish();
    (session, late.into_iter().chain(pcap_note).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_addresses_are_the_sources() {
        let json = br#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","scope":"host"}]},
            {"ifname":"c0","addr_info":[{"family":"inet","local":"10.199.1.1","scope":"global"},
            {"family":"inet6","local":"fe80::1","scope":"link"}]}]"#;
        assert_eq!(
            global_addresses(json),
            vec!["10.199.1.1".parse::<IpAddr>().unwrap()]
        );
        assert!(global_addresses(b"not json").is_empty());
    }
}
