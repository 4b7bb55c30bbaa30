//! `--both-ends` on a cluster: the source probe and its peers (destination pods) run as
//! probe sessions injected together. Each peer is paced through its tunnel: it arms its
//! capture, the source (held by its plan's `control`) is sent `go` once every peer is armed,
//! and every peer is sent `stop` when the source is done (the order in [`crate::ends`]).
//!
//! A peer that cannot be probed (not Running, a namespace the user may not patch or
//! port-forward in, an image that does not start) never stops the run: it becomes a
//! [`verdict::PeerSession`] with its `problem`, and the verdict says what it leaves open.

use std::net::IpAddr;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use protocol::ControlVia;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use verdict::kube::DestinationInfo;
use verdict::PeerSession;

use super::{inject_probe, reach_probe, stream_into, Injected, PodRef};
use crate::cli::RunArgs;
use crate::connect::ApiTarget;
use crate::ends::{self, PeerCandidate, PeerRun, ARM_LIMIT, REPORT_LIMIT};
use crate::error::Result;
use crate::inject::{random_container_name, ProbeContainer};
use crate::output::Session;
use crate::pcap::PcapWriter;
use crate::{preflight, profile, resolve, tunnel};

/// How long a held source waits for `go` before it goes on anyway (its plan's `hold_ms`).
pub const SOURCE_HOLD: std::time::Duration = ARM_LIMIT;

/// A peer ready to inject, or one that will not run (its session says why).
pub(super) struct Peer {
    run: PeerRun,
    pod: Option<(String, String, ProbeContainer)>,
}

/// The peers for this run: picked from the destination, each checked (Running, RBAC, the
/// port-forward that paces it) and given the profile its own namespace admits. Err says why
/// there is no peer at all (the run goes on single-ended and says so).
pub(super) async fn prepare(
    client: &kube::Client,
    target: &ApiTarget,
    args: &RunArgs,
    destination: Option<&DestinationInfo>,
    source_ips: &[IpAddr],
    source_deadline_ms: u64,
) -> std::result::Result<Vec<Peer>, String> {
    let destination = destination.ok_or("there is no destination to find a peer for")?;
    let candidates = match ends::pick_peers(destination, args.max_peers) {
        Ok(c) => c,
        Err(why) => match destination {
            DestinationInfo::Address { host, port } => pod_owning(client, host, *port)
                .await
                .map_err(|w| format!("{why}; {w}"))?,
            _ => return Err(why),
        },
    };
    if source_ips.is_empty() {
        return Err("the source pod has no IP for a peer to watch for".into());
    }
    // The peer must outlive the source's hold and run, and report after `stop`.
    let deadline =
        std::time::Duration::from_millis(source_deadline_ms) + SOURCE_HOLD + REPORT_LIMIT;
    // What depends on the namespace only (rights, Pod Security level) is asked once for each:
    // a Service's peers usually share one.
    let mut namespaces: Vec<&str> = candidates.iter().map(|c| c.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let checked = join_all(
        namespaces
            .iter()
            .map(|ns| namespace_profile(client, target, args, ns)),
    )
    .await;
    let profiles: Vec<(&str, NamespaceCheck)> = namespaces.into_iter().zip(checked).collect();
    let prepared = candidates.iter().enumerate().map(|(i, c)| {
        let profile = profiles
            .iter()
            .find(|(ns, _)| *ns == c.namespace)
            .map(|(_, p)| p.clone())
            .expect("every candidate's namespace was checked");
        prepare_one(
            client,
            args,
            c.clone(),
            profile,
            format!("peer-{}", i + 1),
            source_ips,
            deadline,
        )
    });
    Ok(join_all(prepared).await)
}

/// The pod whose IP the destination address is, across the namespaces the user may list.
async fn pod_owning(
    client: &kube::Client,
    host: &str,
    port: Option<u16>,
) -> std::result::Result<Vec<PeerCandidate>, String> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("{host} is a name, not a pod IP"))?;
    let port = port.ok_or("the destination has no port to watch")?;
    let api: Api<Pod> = Api::all(client.clone());
    let params = ListParams::default().fields(&format!("status.podIP={ip}"));
    let pods = tokio::time::timeout(std::time::Duration::from_secs(5), api.list(&params))
        .await
        .map_err(|_| "listing pods by IP did not answer within 5 s".to_string())?
        .map_err(|e| format!("cannot list pods to find the one with IP {ip}: {e}"))?;
    let pod = pods
        .items
        .into_iter()
        // Host-network pods share the node's IP: not a peer of their own.
        .find(|p| {
            !p.spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false)
        })
        .ok_or_else(|| format!("no pod owns {ip}"))?;
    Ok(vec![PeerCandidate {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ip: Some(ip),
        port,
        container: None,
    }])
}

/// The profile a namespace admits for a peer's probe, or why no peer may run there.
type NamespaceCheck = std::result::Result<crate::profile::Profile, String>;

/// The user's rights in `namespace` (the probe's own, and the port-forward that paces it)
/// and the profile its Pod Security level admits.
async fn namespace_profile(
    client: &kube::Client,
    target: &ApiTarget,
    args: &RunArgs,
    namespace: &str,
) -> NamespaceCheck {
    let (rbac, forward, labels) = tokio::join!(
        preflight::check_rbac(client, target, namespace, preflight::POD_ACCESS),
        preflight::allowed(client, namespace, &preflight::PORT_FORWARD_ACCESS),
        preflight::namespace_labels(client, target, namespace),
    );
    rbac.map_err(|e| e.to_string())?;
    if !forward {
        return Err(format!(
            "both ends pace the peer through a port-forward, and creating pods/portforward in \
             namespace {namespace} is not allowed"
        ));
    }
    let labels = labels.map_err(|e| e.to_string())?;
    Ok(profile::choose(args.profile, namespace, labels.as_ref()).0)
}

async fn prepare_one(
    client: &kube::Client,
    args: &RunArgs,
    c: PeerCandidate,
    profile: NamespaceCheck,
    id: String,
    source_ips: &[IpAddr],
    deadline: std::time::Duration,
) -> Peer {
    let label = format!("pod/{}", c.pod);
    let mut session = PeerSession::new(&id, &label, c.port);
    session.node = c.node.clone();
    session.address = c.ip;
    let container = match profile {
        Ok(profile) => checked_container(client, args, &c, profile, source_ips, deadline).await,
        Err(why) => Err(why),
    };
    match container {
        Ok(container) => {
            let pcap = args
                .write
                .as_deref()
                .map(|w| PcapWriter::create(&ends::peer_pcap_path(w, &id)))
                .transpose();
            match pcap {
                Ok(pcap) => Peer {
                    run: PeerRun::new(session, pcap),
                    pod: Some((c.namespace, c.pod, container)),
                },
                Err(e) => not_run(session, e.to_string()),
            }
        }
        Err(why) => not_run(session, why),
    }
}

fn not_run(session: PeerSession, why: String) -> Peer {
    Peer {
        // Where it is stays known: the verdict names its node and address.
        run: PeerRun::new(
            PeerSession {
                node: session.node,
                address: session.address,
                ..PeerSession::not_run(session.id, session.label, session.port, why)
            },
            None,
        ),
        pod: None,
    }
}

/// The peer's probe container, once the pod (Running) allows one.
async fn checked_container(
    client: &kube::Client,
    args: &RunArgs,
    c: &PeerCandidate,
    probe_profile: crate::profile::Profile,
    source_ips: &[IpAddr],
    deadline: std::time::Duration,
) -> std::result::Result<ProbeContainer, String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &c.namespace);
    let pod = api
        .get(&c.pod)
        .await
        .map_err(|e| format!("cannot read pod/{} in {}: {e}", c.pod, c.namespace))?;
    preflight::check_pod_running(&pod).map_err(|e| e.to_string())?;
    let target_container =
        resolve::choose_container(&pod, c.container.as_deref()).map_err(|e| e.to_string())?;
    let mut plan = ends::peer_plan(
        source_ips.to_vec(),
        vec![c.port],
        deadline,
        args.write.is_some(),
        ControlVia::Tunnel,
    );
    plan.tunnel = Some(tunnel::new_plan());
    Ok(ProbeContainer {
        name: random_container_name(),
        target_container: Some(target_container),
        image: args.image.clone(),
        pull_policy: args.image_pull_policy.map(|p| p.as_str().to_string()),
        profile: probe_profile,
        plan,
    })
}

/// Hold the source until its peers are armed: its plan waits for `go` on its tunnel, and its
/// deadline grows by the hold so that its checks keep their time. Without a peer that will
/// run, there is nothing to wait for: the source only gets its capture.
pub(super) fn hold_source(plan: &mut protocol::Plan, peers: &[Peer]) {
    ends::source_for_both_ends(plan);
    if plan.tunnel.is_some() && peers.iter().any(|p| p.pod.is_some()) {
        let hold_ms = SOURCE_HOLD.as_millis() as u64;
        plan.control = Some(protocol::ControlPlan {
            via: ControlVia::Tunnel.into(),
            hold_ms: Some(hold_ms),
        });
        plan.deadline_ms = (plan.deadline_ms + hold_ms).min(protocol::MAX_DEADLINE_MS);
    }
}

/// Inject every probe, run them in the order of both ends, stream each into its sink.
pub(super) async fn run(
    session: &mut Session,
    source: &PodRef<'_>,
    container: &ProbeContainer,
    peers: Vec<Peer>,
    deadline: Instant,
) -> Result<()> {
    let source_injection = inject_probe(source, container);
    let peer_injections = join_all(peers.into_iter().map(|p| inject_peer(source, p)));
    let (injected, peers) = tokio::join!(source_injection, peer_injections);
    let injected = injected?;

    let (done_tx, done_rx) = watch::channel(false);
    let mut peers = peers;
    let armed: Vec<(String, oneshot::Receiver<()>)> = peers
        .iter_mut()
        .filter(|p| p.peer.pod.is_some())
        .map(|p| (p.peer.run.session.label.clone(), p.peer.run.armed_signal()))
        .collect();
    let peer_runs = join_all(
        peers
            .into_iter()
            .map(|p| run_peer(source, p, done_rx.clone(), deadline)),
    );
    let source_run = async {
        let late = run_source(
            session,
            source,
            container,
            &injected,
            armed,
            done_tx.clone(),
            deadline,
        )
        .await;
        let _ = done_tx.send(true);
        late
    };
    let (late, peer_runs) = tokio::join!(source_run, peer_runs);
    for peer in peer_runs {
        let (peer_session, note) = peer.finish();
        session.add_peer(peer_session);
        note.into_iter().for_each(|n| session.note(n));
    }
    for l in late? {
        session.warn(l);
    }
    Ok(())
}

/// A peer with its probe injected (or its reason not to run).
struct InjectedPeer {
    peer: Peer,
    injected: Option<Injected>,
}

async fn inject_peer(source: &PodRef<'_>, mut peer: Peer) -> InjectedPeer {
    let Some((namespace, name, container)) = &peer.pod else {
        return InjectedPeer {
            peer,
            injected: None,
        };
    };
    let pod = PodRef {
        client: source.client,
        target: source.target,
        namespace,
        name,
        // The source's spinner speaks for the run; the peers start beside it.
        quiet: true,
    };
    match inject_probe(&pod, container).await {
        Ok(injected) => InjectedPeer {
            peer,
            injected: Some(injected),
        },
        Err(e) => {
            peer.run
                .problem(format!("its probe could not be injected: {e}"));
            peer.pod = None;
            InjectedPeer {
                peer,
                injected: None,
            }
        }
    }
}

/// The source's stream; its `go` once every armed signal came (or [`ARM_LIMIT`] passed).
/// Returns what the run should warn about late peers.
async fn run_source(
    session: &mut Session,
    pod: &PodRef<'_>,
    container: &ProbeContainer,
    injected: &Injected,
    armed: Vec<(String, oneshot::Receiver<()>)>,
    traffic_done: watch::Sender<bool>,
    deadline: Instant,
) -> Result<Vec<String>> {
    let mut reached = reach_probe(pod, container, injected, deadline).await?;
    let control = reached.take_control();
    let held = container.plan.control.is_some();
    let release = async move {
        let until = deadline.min(Instant::now() + ARM_LIMIT);
        let waits = armed.into_iter().map(|(label, rx)| async move {
            let arrived = matches!(tokio::time::timeout_at(until, rx).await, Ok(Ok(())));
            (!arrived).then_some(label)
        });
        let unarmed: Vec<String> = join_all(waits).await.into_iter().flatten().collect();
        let mut late = Vec::new();
        if !unarmed.is_empty() {
            late.push(format!(
                "{} did not arm its capture within {} s; the source went ahead without it",
                unarmed.join(", "),
                ARM_LIMIT.as_secs()
            ));
        }
        match control {
            // Not held: nothing to release.
            _ if !held => {}
            // Dropping our half closes nothing: the stream's reader holds the connection.
            Some(mut c) => {
                c.send(protocol::CONTROL_GO).await;
            }
            None => late.push(format!(
                "the source's probe could not be reached to release it; it went on after its \
                 {} s hold",
                SOURCE_HOLD.as_secs()
            )),
        }
        late
    };
    let mut sink = ends::TrafficWatch::new(session, &container.plan, traffic_done);
    let (streamed, late) = tokio::join!(
        stream_into(&mut sink, pod, container, reached, injected.at, deadline),
        release
    );
    streamed?;
    Ok(late)
}

/// A peer's stream, and its `stop` once the source's traffic is done and a moment passed.
async fn run_peer(
    source: &PodRef<'_>,
    p: InjectedPeer,
    mut source_done: watch::Receiver<bool>,
    deadline: Instant,
) -> PeerRun {
    let InjectedPeer { mut peer, injected } = p;
    let (Some((namespace, name, container)), Some(injected)) = (peer.pod.take(), injected) else {
        return peer.run;
    };
    let pod = PodRef {
        client: source.client,
        target: source.target,
        namespace: &namespace,
        name: &name,
        quiet: true,
    };
    let mut reached = match reach_probe(&pod, &container, &injected, deadline).await {
        Ok(r) => r,
        Err(e) => {
            peer.run.problem(format!("its probe did not start: {e}"));
            peer.run.end_early(e.to_string());
            return peer.run;
        }
    };
    let mut control = reached.take_control();
    if control.is_none() {
        peer.run.problem(
            "its probe could not be reached through the port-forward to stop it; its capture \
             ran to its own limit"
                .into(),
        );
    }
    let stopper = async {
        let _ = source_done.wait_for(|done| *done).await;
        tokio::time::sleep(ends::SOURCE_LINGER).await;
        if let Some(c) = control.as_mut() {
            c.send(protocol::CONTROL_STOP).await;
        }
        tokio::time::sleep(REPORT_LIMIT).await;
    };
    let streamed = {
        let stream = stream_into(
            &mut peer.run,
            &pod,
            &container,
            reached,
            injected.at,
            deadline,
        );
        tokio::select! {
            r = stream => Some(r),
            _ = stopper => None,
        }
    };
    match streamed {
        Some(Ok(())) => {}
        Some(Err(e)) => peer.run.problem(format!("its stream failed: {e}")),
        None => peer.run.problem(format!(
            "it did not report within {} s of `stop`",
            REPORT_LIMIT.as_secs()
        )),
    }
    peer.run
}
