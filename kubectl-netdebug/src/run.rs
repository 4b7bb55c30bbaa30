//! The Kubernetes path, end to end: parse -> connect -> preflight -> resolve -> inject -> wait
//! -> stream -> verdict. Every step is bounded by the overall `--timeout`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::cli::{OutputFormat, RunArgs, StreamVia};
use crate::connect::{connect, ApiTarget, Cluster};
use crate::error::{Error, Result};
use crate::events::EventReader;
use crate::inject::{inject, random_container_name, ProbeContainer};
use crate::output::{probe_refused, EventSink, ProbeEnd, Session};
use crate::plan::{build_plan, check_limits, check_rounds_fit, probe_deadline, PlanOptions, Site};
use crate::resolve;
use crate::stream::{
    deadline_passed, stream_events_then, LogSource, StreamOutcome, EXIT_STATUS_WAIT,
};
use crate::wait::{wait_for_start, Started, WaitFor};
use crate::{preflight, profile, tunnel};
use verdict::{Delivery, DeliveryPath};

mod both_ends;
mod node;
mod sources;

/// Run `kubectl netdebug SOURCE ...`; returns the exit code (0 healthy, 1 problem found,
/// 2 inconclusive), or an error (exit 2).
pub async fn run(args: RunArgs) -> Result<i32> {
    // Bad input first, before any network traffic.
    let parsed = parse_input(&args)?;
    let cluster = connect(&args.kube).await?;
    run_with(cluster, &args, parsed).await
}

/// SOURCE (or -l), --to and --dns, checked.
pub struct ParsedInput {
    source: SourceChoice,
    destination: Option<resolve::DestSpec>,
    /// TLS and/or HTTP above the connect (a URL in --to, --http, --tls).
    app: Option<crate::app::AppAsk>,
}

/// One source pod, many to compare, or a node's own network namespace.
enum SourceChoice {
    One(resolve::SourceSpec),
    Many(resolve::SourcesRequest),
    Node(String),
}

pub fn parse_input(args: &RunArgs) -> Result<ParsedInput> {
    let source = parse_sources(args)?;
    let split = args
        .to
        .as_deref()
        .map(crate::app::split_to)
        .transpose()
        .map_err(Error::InvalidInput)?;
    let destination = split
        .as_ref()
        .map(|s| resolve::parse_destination(&s.destination))
        .transpose()?;
    let url = split.as_ref().and_then(|s| s.url.as_ref());
    let app = crate::app::ask(url, args.http.as_deref(), args.tls).map_err(Error::InvalidInput)?;
    for name in &args.dns {
        if name.parse::<std::net::IpAddr>().is_ok() {
            return Err(Error::InvalidInput(format!(
                "--dns {name}: an IP address, not a name (use --to {name}:PORT to test an address)"
            )));
        }
        protocol::validate_host(name)
            .map_err(|why| Error::InvalidInput(format!("--dns {name}: {why}")))?;
    }
    if let SourceChoice::Many(_) = &source {
        if args.both_ends {
            return Err(Error::InvalidInput(
                "--both-ends probes one source and its peers; with several sources (-l, \
                 --all-pods, --per-node) run it for the source you suspect"
                    .into(),
            ));
        }
        if args.write.as_deref() == Some("-") {
            return Err(Error::InvalidInput(
                "-w - writes one capture to stdout; with several sources give a file name (each \
                 source gets its own pcap beside it)"
                    .into(),
            ));
        }
    }
    if args.both_ends {
        crate::ends::check_write_target(args.write.as_deref()).map_err(Error::InvalidInput)?;
    }
    if args.to.is_none() && args.dns.is_empty() && args.rounds.plan().is_some() {
        return Err(Error::InvalidInput(
            "--repeat/--for repeat connects and lookups: give --to or --dns".into(),
        ));
    }
    check_limits(
        &plan_options(args, Vec::new(), None),
        args.timeout,
        Site::Cluster,
    )
    .map_err(Error::InvalidInput)?;
    Ok(ParsedInput {
        source,
        destination,
        app,
    })
}

/// SOURCE and the flags that make it many: `-l`, `--all-pods`, `--per-node`.
fn parse_sources(args: &RunArgs) -> Result<SourceChoice> {
    let container = args.container.clone();
    let max_sources = usize::from(args.max_sources);
    if args.via_node && (args.selector.is_some() || args.all_pods || args.per_node) {
        return Err(Error::InvalidInput(
            "--via-node runs from one pod's node: give one pod (or a workload, for one of its \
             pods), not -l, --all-pods or --per-node"
                .into(),
        ));
    }
    if let Some(selector) = &args.selector {
        resolve::parse_selector(selector)
            .map_err(|why| Error::InvalidInput(format!("-l {selector}: {why}")))?;
        return Ok(SourceChoice::Many(resolve::SourcesRequest {
            selection: resolve::SourceSelection::Selector(selector.clone()),
            per_node: args.per_node,
            max_sources,
            container,
        }));
    }
    let source_text = args.source.as_deref().unwrap_or_default();
    if let Some(node) = crate::node::node_source(source_text) {
        let node = node?;
        if args.all_pods
            || args.per_node
            || args.both_ends
            || args.container.is_some()
            || args.via_node
        {
            return Err(Error::InvalidInput(format!(
                "node/{node} is the node's own network namespace: --all-pods, --per-node, \
                 --both-ends, --via-node and -c are about pods"
            )));
        }
        return Ok(SourceChoice::Node(node));
    }
    if args.node_namespace.is_some() && !args.via_node {
        return Err(Error::InvalidInput(
            "--node-namespace is where node/NAME and --via-node create their probe pod; give \
             node/NAME or --via-node"
                .into(),
        ));
    }
    let spec = resolve::parse_source(source_text)?;
    if !args.all_pods && !args.per_node {
        return Ok(SourceChoice::One(spec));
    }
    let flag = if args.all_pods {
        "--all-pods"
    } else {
        "--per-node"
    };
    if spec.kind == resolve::SourceKind::Pod {
        return Err(Error::InvalidInput(format!(
            "{flag} takes a workload (deploy|sts|ds|rs|job/NAME) and {spec} is one pod; to \
             choose pods by label use -l SELECTOR"
        )));
    }
    Ok(SourceChoice::Many(resolve::SourcesRequest {
        selection: resolve::SourceSelection::Workload {
            kind: spec.kind,
            name: spec.name,
        },
        per_node: args.per_node,
        max_sources,
        container,
    }))
}

/// The plan's options from the flags (the DNS names resolution adds come in `dns_names`).
fn plan_options(
    args: &RunArgs,
    dns_names: Vec<String>,
    app: Option<protocol::AppPlan>,
) -> PlanOptions {
    PlanOptions {
        dns_names,
        capture: args.capture.clone(),
        write_pcap: args.write.is_some(),
        mtu: args.mtu,
        sockets: args.sockets,
        deadline: probe_deadline(args.timeout),
        rounds: args.rounds.plan(),
        connect_timeout: args.rounds.connect_timeout,
        app,
    }
}

/// The probe's app plan for what was asked, with the name the user gave for the destination:
/// a Service's DNS name, a pod's IP, or the host as written.
fn app_plan_for(
    ask: Option<&crate::app::AppAsk>,
    destination: Option<&verdict::kube::DestinationInfo>,
) -> Option<protocol::AppPlan> {
    use verdict::kube::DestinationInfo;
    let ask = ask?;
    let (name, port) = match destination? {
        DestinationInfo::Service(s) => {
            let port = match s.ports.as_slice() {
                [only] => Some(only.port),
                _ => None,
            };
            (s.dns_name.trim_end_matches('.').to_string(), port)
        }
        DestinationInfo::Pod(p) => (p.ip.clone().unwrap_or_else(|| p.name.clone()), p.port),
        DestinationInfo::Address { host, port } => (host.clone(), *port),
    };
    Some(crate::app::app_plan(ask, &name, port))
}

/// The run against an already built client (tests pass a mocked one), bounded by `--timeout`.
pub async fn run_with(cluster: Cluster, args: &RunArgs, parsed: ParsedInput) -> Result<i32> {
    let deadline = Instant::now() + args.timeout;
    // The steps end themselves at `deadline` (streaming with a partial verdict); the outer
    // limit, a little later, only catches a step that failed to.
    let hard_stop = deadline + std::time::Duration::from_secs(2);
    match tokio::time::timeout_at(hard_stop, run_until(cluster, args, parsed, deadline)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Deadline(format!(
            "the run did not finish within --timeout {} s",
            args.timeout.as_secs_f64()
        ))),
    }
}

async fn run_until(
    cluster: Cluster,
    args: &RunArgs,
    parsed: ParsedInput,
    deadline: Instant,
) -> Result<i32> {
    let ParsedInput {
        source,
        destination: dest_spec,
        app,
    } = parsed;
    let source_spec = match source {
        SourceChoice::One(spec) => spec,
        SourceChoice::Many(request) => {
            return sources::run(cluster, args, request, dest_spec, app.as_ref(), deadline).await
        }
        SourceChoice::Node(name) => {
            return node::run(cluster, args, name, dest_spec, app.as_ref(), deadline).await
        }
    };
    let Cluster {
        client,
        namespace,
        target,
    } = cluster;

    // Preflight and the source's resolution are independent reads: they overlap, and their
    // errors are reported in this fixed order whichever answered first.
    // --via-node adds nothing to the pod: reading it is all the source's namespace needs.
    let source_access = match args.via_node {
        true => preflight::VIA_NODE_SOURCE_ACCESS,
        false => preflight::POD_ACCESS,
    };
    let (preflight, source, tunnel_allowed) = tokio::join!(
        preflight_checks(
            &client,
            &target,
            &namespace,
            dest_spec.as_ref(),
            source_access
        ),
        resolve::resolve_source(&client, &namespace, &source_spec, args.container.as_deref()),
        tunnel_allowed(&client, &namespace, args.stream),
    );
    let ns_labels = preflight?;
    let source = source?;
    preflight::check_pod_running(&source.pod)?;
    let pod_name = source.pod.metadata.name.clone().unwrap_or_default();
    let pod_namespace = source
        .pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| namespace.clone());

    let (linux, evidence, serves) = tokio::join!(
        preflight::check_linux_node(&client, &target, &source.pod),
        kube_evidence(&client, &namespace, dest_spec.as_ref(), &source, args),
        served_by(&client, &source.info),
    );
    linux?;
    let (mut kube, targets, dns_names) = evidence?;
    kube.serves = serves;
    let (probe_profile, profile_info) =
        profile::choose(args.profile, &pod_namespace, ns_labels.as_ref());
    // With --via-node no profile applies: the node probe pod's privileges are fixed (a note
    // names them).
    kube.profile = (!args.via_node).then_some(profile_info);

    let app_plan = app_plan_for(app.as_ref(), kube.destination.as_ref());
    let mut plan = build_plan(targets, &plan_options(args, dns_names, app_plan));
    // The source is looked up in `namespace`, so the port-forward review asked there covers
    // the pod the probe runs in.
    plan.tunnel = tunnel_allowed.then(tunnel::new_plan);
    plan.validate()
        .map_err(|e| Error::InvalidInput(format!("cannot build the probe plan: {e}")))?;
    check_rounds_fit(&plan, args.timeout, Site::Cluster).map_err(Error::InvalidInput)?;
    let (peers, single_ended) = match args.both_ends {
        true => peers_for(&client, &target, args, &kube, &source, &mut plan).await,
        false => (Vec::new(), None),
    };
    let container = ProbeContainer {
        name: random_container_name(),
        target_container: Some(source.target_container.clone()),
        image: args.image.clone(),
        pull_policy: args.image_pull_policy.map(|p| p.as_str().to_string()),
        profile: probe_profile,
        plan,
    };
    let title = title_of(args, &source, &pod_namespace, &pod_name);
    let mut session = Session::new(&args.output, title, kube, args.write.as_deref())?;
    if args.via_node {
        return node::via_node(
            session,
            &client,
            &target,
            &source,
            container.plan,
            args,
            deadline,
        )
        .await;
    }
    announce(args, &session, &source, &container);
    if let Some(why) = single_ended {
        session.warn(format!("--both-ends: {why}; running single-ended"));
    }

    let pod = PodRef {
        client: &client,
        target: &target,
        namespace: &pod_namespace,
        name: &pod_name,
        quiet: false,
    };
    if !peers.is_empty() {
        both_ends::run(&mut session, &pod, &container, peers, deadline).await?;
        return session.finish().await;
    }
    let injected_at = inject_probe(&pod, &container).await?;
    let reached = reach_probe(&pod, &container, &injected_at, deadline).await?;
    stream_into(
        &mut session,
        &pod,
        &container,
        reached,
        injected_at.at,
        deadline,
    )
    .await?;
    session.finish().await
}

/// The peers of `--both-ends`, with the source's plan made to wait for them; or why the run
/// goes on single-ended.
async fn peers_for(
    client: &kube::Client,
    target: &ApiTarget,
    args: &RunArgs,
    kube: &verdict::kube::KubeEvidence,
    source: &resolve::ResolvedSource,
    plan: &mut protocol::Plan,
) -> (Vec<both_ends::Peer>, Option<String>) {
    if plan.tunnel.is_none() {
        let why = match args.stream {
            StreamVia::Logs => "--stream logs leaves no channel to pace the probes".to_string(),
            StreamVia::Auto => "both ends pace the probes through a port-forward, and creating                                 pods/portforward in the source's namespace is not allowed"
                .to_string(),
        };
        return (Vec::new(), Some(why));
    }
    let source_ips = source_ips(&source.pod);
    match both_ends::prepare(
        client,
        target,
        args,
        kube.destination.as_ref(),
        &source_ips,
        plan.deadline_ms,
    )
    .await
    {
        Ok(peers) => {
            both_ends::hold_source(plan, &peers);
            (peers, None)
        }
        Err(why) => (Vec::new(), Some(why)),
    }
}

/// The pod's IPs (both families on a dual-stack cluster).
fn source_ips(pod: &k8s_openapi::api::core::v1::Pod) -> Vec<std::net::IpAddr> {
    let status = pod.status.as_ref();
    let mut ips: Vec<std::net::IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|list| list.iter().filter_map(|p| p.ip.parse().ok()).collect())
        .unwrap_or_default();
    if ips.is_empty() {
        ips.extend(
            status
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok()),
        );
    }
    ips
}

/// With `--stream auto`, whether the user may port-forward to pods in `namespace`.
async fn tunnel_allowed(client: &kube::Client, namespace: &str, via: StreamVia) -> bool {
    via == StreamVia::Auto
        && preflight::allowed(client, namespace, &preflight::PORT_FORWARD_ACCESS).await
}

/// The pod the probe runs in, and how to reach its API server.
struct PodRef<'a> {
    client: &'a kube::Client,
    target: &'a ApiTarget,
    namespace: &'a str,
    name: &'a str,
    /// No spinner while waiting: another display owns stderr (many sources).
    quiet: bool,
}

/// Before anything is resolved: a server with ephemeral containers, the namespace, and the
/// permissions the run needs (the Service's namespace too). Returns the namespace's labels.
async fn preflight_checks(
    client: &kube::Client,
    target: &ApiTarget,
    namespace: &str,
    dest_spec: Option<&resolve::DestSpec>,
    source_access: &[preflight::Access],
) -> Result<Option<std::collections::BTreeMap<String, String>>> {
    preflight::check_server_version(client, target).await?;
    let ns_labels = preflight::namespace_labels(client, target, namespace).await?;
    preflight::check_rbac(client, target, namespace, source_access).await?;
    if let Some(resolve::DestSpec::Service {
        namespace: service_namespace,
        ..
    }) = dest_spec
    {
        let service_namespace = service_namespace.as_deref().unwrap_or(namespace);
        preflight::check_rbac(client, target, service_namespace, preflight::SERVICE_ACCESS).await?;
    }
    Ok(ns_labels)
}

/// What Kubernetes says about a source and its destination, the probe's targets and the
/// names it resolves.
type KubeEvidence = (
    verdict::kube::KubeEvidence,
    Vec<protocol::Target>,
    Vec<String>,
);

/// What Kubernetes says about the source and the destination, the probe's targets and the
/// names it resolves (the Services the source serves are read beside it: [`served_by`]).
async fn kube_evidence(
    client: &kube::Client,
    namespace: &str,
    dest_spec: Option<&resolve::DestSpec>,
    source: &resolve::ResolvedSource,
    args: &RunArgs,
) -> Result<KubeEvidence> {
    let mut kube = verdict::kube::KubeEvidence {
        source: Some(source.info.clone()),
        ..Default::default()
    };
    let mut targets = Vec::new();
    let mut dns_names = Vec::new();
    // Independent reads: the destination's resolution and the two best-effort lookups overlap.
    let destination = async {
        match dest_spec {
            Some(spec) => resolve::resolve_destination(client, namespace, spec, source)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (destination, cluster_dns) = tokio::join!(destination, cluster_dns(client));
    if let Some(dest) = destination? {
        kube.destination = Some(dest.info);
        kube.findings = dest.findings;
        targets = dest.targets;
        dns_names = dest.dns_names;
    }
    dns_names.extend(args.dns.iter().cloned());
    kube.cluster_dns = cluster_dns;
    Ok((kube, targets, dns_names))
}

fn title_of(
    args: &RunArgs,
    source: &resolve::ResolvedSource,
    pod_namespace: &str,
    pod_name: &str,
) -> verdict::Title {
    verdict::Title {
        source: match &source.info.picked_from {
            Some(from) => format!("{from} (pod/{pod_name})"),
            None => format!("pod/{pod_name}"),
        },
        destination: args
            .to
            .clone()
            .or_else(|| (!args.dns.is_empty()).then(|| format!("dns {}", args.dns.join(", ")))),
        namespace: Some(pod_namespace.to_string()),
        origin: Some(verdict::Origin::Pod {
            namespace: pod_namespace.to_string(),
            name: pod_name.to_string(),
        }),
        // A re-run from the same place keeps entering from the node.
        asked: crate::plan::asked_flags(args.to.as_slice(), &args.dns).map(|asked| {
            match (args.via_node, &args.node_namespace) {
                (false, _) => asked,
                (true, None) => format!("{asked} --via-node"),
                (true, Some(ns)) => format!("{asked} --via-node --node-namespace {ns}"),
            }
        }),
    }
}

/// On a terminal, say which pod was picked and how the probe is injected.
fn announce(
    args: &RunArgs,
    session: &Session,
    source: &resolve::ResolvedSource,
    container: &ProbeContainer,
) {
    let chatty = args.output.format == OutputFormat::Text && std::io::stderr().is_terminal();
    if !chatty {
        return;
    }
    if let (Some(from), Some(pod)) = (&source.info.picked_from, &session.inputs().kube.source) {
        eprintln!(
            "using pod {}/{} (a Ready pod of {from})",
            pod.namespace, pod.pod
        );
    }
    if let Some(p) = &session.inputs().kube.profile {
        eprintln!(
            "injecting {} as {} (profile {}: {})",
            container.image, container.name, p.name, p.reason
        );
    }
}

/// The probe as the API server stored it after the injection.
struct Injected {
    resource_version: String,
    at: Instant,
}

async fn inject_probe(pod: &PodRef<'_>, container: &ProbeContainer) -> Result<Injected> {
    let injected = inject(pod.client, pod.target, pod.namespace, pod.name, container).await?;
    Ok(Injected {
        resource_version: injected.metadata.resource_version.unwrap_or_default(),
        at: Instant::now(),
    })
}

/// Where the events will be read from, and what reaching the probe cost.
struct Reached {
    via: ReachedVia,
    /// Port-forward requests made while waiting for the probe (None: no tunnel was planned).
    port_forward_requests: Option<u32>,
}

enum ReachedVia {
    /// The probe answered through port-forward.
    Tunnel(tunnel::Tunnel),
    /// The kubelet reported the container first (or the tunnel could not be used: why).
    Log(Option<String>),
}

impl Reached {
    /// The control channel of a paced probe reached through its tunnel.
    fn take_control(&mut self) -> Option<tunnel::Control> {
        match &mut self.via {
            ReachedVia::Tunnel(t) => t.take_control(),
            ReachedVia::Log(_) => None,
        }
    }
}

/// Wait until the probe can be read: its tunnel answers, or the kubelet reports the container
/// started, whichever comes first. A container that cannot start fails the run either way.
async fn reach_probe(
    pod: &PodRef<'_>,
    container: &ProbeContainer,
    injected: &Injected,
    deadline: Instant,
) -> Result<Reached> {
    // Starting may take at most what is left after the probe's own run and a moment to
    // collect its output.
    let probe_run = std::time::Duration::from_millis(container.plan.deadline_ms);
    let start_deadline = deadline
        .checked_sub(probe_run + std::time::Duration::from_secs(3))
        .filter(|d| *d > Instant::now())
        .unwrap_or(deadline);
    let started = wait_started(pod, container, &injected.resource_version, start_deadline);
    let Some(plan) = &container.plan.tunnel else {
        started.await?;
        return Ok(Reached {
            via: ReachedVia::Log(None),
            port_forward_requests: None,
        });
    };
    let requests = AtomicU32::new(0);
    let via = {
        let tunnel = tunnel::open(
            pod.client,
            pod.namespace,
            pod.name,
            plan,
            start_deadline,
            &requests,
        );
        tokio::pin!(started, tunnel);
        tokio::select! {
            opened = &mut tunnel => match opened {
                Ok(t) => ReachedVia::Tunnel(t),
                Err(why) => {
                    started.await?;
                    ReachedVia::Log(Some(why.to_string()))
                }
            },
            s = &mut started => {
                s?;
                // A paced probe (both ends) waits for words only the tunnel carries: it is
                // worth a moment more, since the probe is running now.
                if container.plan.control.is_some() {
                    let limit = start_deadline.max(Instant::now() + PACED_TUNNEL_GRACE);
                    match tokio::time::timeout_at(limit, &mut tunnel).await {
                        Ok(Ok(t)) => ReachedVia::Tunnel(t),
                        Ok(Err(why)) => ReachedVia::Log(Some(why.to_string())),
                        Err(_) => ReachedVia::Log(Some(
                            "the probe's tunnel did not answer after the container started".into(),
                        )),
                    }
                } else {
                    ReachedVia::Log(Some(
                        "the kubelet reported the container before the probe answered".into(),
                    ))
                }
            }
        }
    };
    Ok(Reached {
        via,
        port_forward_requests: Some(requests.load(Ordering::Relaxed)),
    })
}

/// How long a paced probe's tunnel is still tried after the kubelet reported it started.
const PACED_TUNNEL_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Wait for the kubelet to report the container; a probe that refused to run at all is an
/// error in its own words.
async fn wait_started(
    pod: &PodRef<'_>,
    container: &ProbeContainer,
    resource_version: &str,
    until: Instant,
) -> Result<()> {
    let what = WaitFor {
        namespace: pod.namespace,
        pod: pod.name,
        container: &container.name,
        image: &container.image,
        spinner: !pod.quiet,
    };
    let started = wait_for_start(pod.client, pod.target, &what, resource_version, until).await?;
    if let Started::Terminated {
        exit_code: 2,
        message,
        ..
    } = &started
    {
        // The probe refused to run at all; its last words are the termination message.
        if let Some(m) = message.as_deref().and_then(|m| m.lines().last()) {
            if !m.contains("\"v\"") {
                return Err(Error::Stream(probe_refused(m)));
            }
        }
    }
    Ok(())
}

/// Stream the probe's events into the session (through the tunnel when it answered, the rest
/// from the log if it broke), then how its run ended.
async fn stream_into<S: EventSink>(
    session: &mut S,
    pod: &PodRef<'_>,
    container: &ProbeContainer,
    reached: Reached,
    injected_at: Instant,
    deadline: Instant,
) -> Result<()> {
    let mut reader = EventReader::new();
    let mut first_event: Option<Instant> = None;
    let mut deliver = |item| {
        first_event.get_or_insert_with(Instant::now);
        session.accept(item)
    };
    let mut outcome = StreamOutcome {
        exit_code: None,
        ended_early: None,
        reconnects: 0,
    };
    let port_forward_requests = reached.port_forward_requests;
    let (mut via, unused) = match reached.via {
        ReachedVia::Tunnel(t) => {
            let read = reader.read_from(t.reader.compat(), &mut deliver);
            // An error or an early end of the tunnel is not the probe's: the log has every
            // line, and is read below. Only the deadline ends the stream here.
            if tokio::time::timeout_at(deadline, read).await.is_err() {
                outcome = deadline_passed(&reader, 0);
            }
            (DeliveryPath::PortForward, None)
        }
        ReachedVia::Log(why) => (DeliveryPath::Log, why),
    };
    if !reader.saw_done() && outcome.ended_early.is_none() {
        if via == DeliveryPath::PortForward {
            via = DeliveryPath::PortForwardThenLog;
            wait_started(pod, container, "", deadline).await?;
        }
        let source_log = LogSource {
            client: pod.client,
            target: pod.target,
            namespace: pod.namespace,
            pod: pod.name,
            container: &container.name,
        };
        // A probe serving a tunnel lingers after `done` for its peer, and a node probe pod is
        // deleted right after the run: for neither is the exit code worth a wait after `done`
        // (the kubelet reports it only at its next status update, up to a second later).
        let exit_wait = if container.plan.tunnel.is_some() || container.in_own_pod() {
            std::time::Duration::ZERO
        } else {
            EXIT_STATUS_WAIT
        };
        outcome =
            stream_events_then(&source_log, &mut reader, deadline, exit_wait, &mut deliver).await?;
    }
    let first_event_ms = first_event.map(|t| (t - injected_at).as_secs_f64() * 1000.0);
    session.set_delivery(Delivery {
        via,
        first_event_ms: first_event_ms.map(|ms| (ms * 10.0).round() / 10.0),
        port_forward_unused: unused,
        port_forward_requests,
    });
    session.record_end(
        ProbeEnd {
            last_words: reader.other_lines().last().cloned(),
            ended_early: outcome.ended_early.clone(),
            exit_code: outcome.exit_code,
        },
        &reader,
    );
    if outcome.reconnects > 0 {
        session.note(format!(
            "the log stream was resumed {} time(s); {} repeated event(s) skipped",
            outcome.reconnects,
            reader.duplicates_skipped()
        ));
    }
    Ok(())
}

/// The Services the source pod is an endpoint of. Best effort, like [`cluster_dns`]: without
/// read access to EndpointSlices, None, and the verdict says nothing about them.
async fn served_by(
    client: &kube::Client,
    source: &verdict::kube::SourceInfo,
) -> Option<Vec<verdict::kube::ServedPort>> {
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        resolve::served_ports(client, &source.namespace, &source.pod),
    )
    .await
    .ok()?
    .ok()
}

/// The cluster DNS Service's ClusterIP (`kube-system/kube-dns`, the name CoreDNS keeps for
/// compatibility), so the verdict can tell whether the pod's resolv.conf points at it. Best
/// effort: without read access to kube-system, or on clusters that name it otherwise, None.
async fn cluster_dns(client: &kube::Client) -> Option<String> {
    use k8s_openapi::api::core::v1::Service;
    let api: kube::Api<Service> = kube::Api::namespaced(client.clone(), "kube-system");
    let svc = tokio::time::timeout(std::time::Duration::from_secs(5), api.get_opt("kube-dns"))
        .await
        .ok()?
        .ok()??;
    svc.spec?
        .cluster_ip
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
}
