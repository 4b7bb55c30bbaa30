//! Many sources at once: the same plan runs from every chosen source pod, each its own probe
//! session (injected at most `--max-parallel` at a time, streamed in parallel under the run's
//! one deadline), and the aggregate verdict compares them.
//!
//! What is read once for the whole run: preflight (server, namespace, rights), the chosen
//! pods and their nodes, the EndpointSlices a source may serve; the destination is resolved
//! once per distinct set of source labels (NetworkPolicies select sources by label, so pods
//! of one workload share one resolution). What is per source: one patch, one watch, one
//! port-forward (or log) stream.
//!
//! Ctrl-C stops starting new injections, cuts the streams that are running, and renders what
//! has arrived; a second Ctrl-C is the shell's.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use verdict::sources::{SkipReason, SkippedSource, SourceRun, SourcesInputs};
use verdict::{Inputs, Title};

use super::{
    inject_probe, kube_evidence, preflight_checks, reach_probe, stream_into, tunnel_allowed, PodRef,
};
use crate::cli::{OutputFormat, RunArgs};
use crate::connect::Cluster;
use crate::error::{Error, Result};
use crate::inject::{random_container_name, ProbeContainer};
use crate::output::use_color;
use crate::pcap::PcapWriter;
use crate::plan::{build_plan, check_rounds_fit, Site};
use crate::resolve::{self, ChosenSources, ResolvedSource, SourcesRequest};
use crate::sources::SourceSink;
use crate::sources_bar::{SourceState, SourcesBars};
use crate::{ends, profile, tunnel};

/// Run from every source `request` chooses; returns the aggregate's exit code.
pub(super) async fn run(
    cluster: Cluster,
    args: &RunArgs,
    request: SourcesRequest,
    dest_spec: Option<resolve::DestSpec>,
    app: Option<&crate::app::AppAsk>,
    deadline: Instant,
) -> Result<i32> {
    let Cluster {
        client,
        namespace,
        target,
    } = cluster;
    let (preflight, chosen, tunnel_allowed) = tokio::join!(
        preflight_checks(
            &client,
            &target,
            &namespace,
            dest_spec.as_ref(),
            crate::preflight::POD_ACCESS,
        ),
        resolve::resolve_sources(&client, &target, &namespace, &request),
        tunnel_allowed(&client, &namespace, args.stream),
    );
    let ns_labels = preflight?;
    let ChosenSources {
        sources, skipped, ..
    } = chosen?;
    let profile = profile::choose(args.profile, &namespace, ns_labels.as_ref());
    let evidence = evidence_per_source(&client, &namespace, dest_spec.as_ref(), &sources, args);
    let (evidence, slices) = tokio::join!(evidence, endpoint_slices(&client, &namespace));
    let prepared = prepare(
        args,
        &sources,
        evidence?,
        slices,
        profile,
        tunnel_allowed,
        app,
    )?;

    let labels: Vec<String> = prepared.iter().map(Prepared::label).collect();
    let bars = SourcesBars::new(&labels);
    let (interrupt_tx, interrupted) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(usize::from(args.max_parallel)));
    let runs = prepared.into_iter().enumerate().map(|(index, p)| {
        let client = &client;
        let target = &target;
        let bars = &bars;
        let gate = gate.clone();
        let interrupted = interrupted.clone();
        async move {
            let (namespace, name) = (p.source.info.namespace.clone(), p.source.info.pod.clone());
            let pod = PodRef {
                client,
                target,
                namespace: &namespace,
                name: &name,
                quiet: true,
            };
            run_one(p, &pod, index, bars, gate, interrupted, deadline).await
        }
    });
    let finished = tokio::select! {
        done = join_all(runs) => done,
        never = watch_interrupts(interrupt_tx) => match never {},
    };
    bars.clear();

    let mut skipped = skipped;
    let mut runs = Vec::new();
    for f in finished {
        match f {
            Finished::Ran(run) => runs.push(*run),
            Finished::NotStarted(s) => skipped.push(s),
        }
    }
    let mut notes = Vec::new();
    if *interrupted.borrow() {
        notes.push(
            "interrupted (Ctrl-C): no probe was started after it, and the streams still running \
             were cut; the verdict is drawn from what had arrived"
                .to_string(),
        );
    }
    let inputs = SourcesInputs {
        title: many_title(args, &namespace, &request),
        sources: runs,
        skipped,
        notes,
    };
    write_verdict(args, inputs).await
}

/// Ctrl-C tells every source to stop (`interrupt`); a second one quits at once. Never ends:
/// the run drops it when it is done.
async fn watch_interrupts(interrupt: watch::Sender<bool>) -> std::convert::Infallible {
    if tokio::signal::ctrl_c().await.is_ok() {
        let _ = interrupt.send(true);
        // Once a handler is installed the default action is gone: a second Ctrl-C means
        // "stop now", as it would have without us.
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    }
    std::future::pending().await
}

/// Each source's probe container and sink: the shared plan with the source's own evidence,
/// tunnel (port and token) and pcap file.
fn prepare(
    args: &RunArgs,
    sources: &[ResolvedSource],
    evidence: Vec<super::KubeEvidence>,
    slices: Option<Vec<k8s_openapi::api::discovery::v1::EndpointSlice>>,
    (probe_profile, profile_info): (profile::Profile, verdict::kube::ProfileInfo),
    tunnel_allowed: bool,
    app: Option<&crate::app::AppAsk>,
) -> Result<Vec<Prepared>> {
    let mut prepared = Vec::with_capacity(sources.len());
    for (i, (source, evidence)) in sources.iter().zip(evidence).enumerate() {
        let (mut kube, targets, dns_names) = evidence;
        kube.profile = Some(profile_info.clone());
        kube.serves = slices
            .as_ref()
            .map(|s| resolve::ports_serving(s, &source.info.pod));
        let app_plan = super::app_plan_for(app, kube.destination.as_ref());
        let mut plan = build_plan(targets, &super::plan_options(args, dns_names, app_plan));
        // Each probe listens with its own port and token.
        plan.tunnel = tunnel_allowed.then(tunnel::new_plan);
        plan.validate()
            .map_err(|e| Error::InvalidInput(format!("cannot build the probe plan: {e}")))?;
        check_rounds_fit(&plan, args.timeout, Site::Cluster).map_err(Error::InvalidInput)?;
        let id = format!("src-{}", i + 1);
        let title = super::title_of(args, source, &source.info.namespace, &source.info.pod);
        let pcap = args
            .write
            .as_deref()
            .map(|w| PcapWriter::create(&ends::peer_pcap_path(w, &id)))
            .transpose()?;
        prepared.push(Prepared {
            id,
            source: source.clone(),
            container: ProbeContainer {
                name: random_container_name(),
                target_container: Some(source.target_container.clone()),
                image: args.image.clone(),
                pull_policy: args.image_pull_policy.map(|p| p.as_str().to_string()),
                profile: probe_profile,
                plan,
            },
            sink: SourceSink::new(Inputs::new(title, kube), pcap),
        });
    }

    Ok(prepared)
}

/// One source ready to run.
struct Prepared {
    id: String,
    source: ResolvedSource,
    container: ProbeContainer,
    sink: SourceSink,
}

impl Prepared {
    fn label(&self) -> String {
        let node = self.source.info.node.as_deref().unwrap_or("no node");
        format!("{}  {} ({node})", self.id, self.source.info.pod)
    }
}

/// A source's end: its session (with its evidence, or its problem), or never started.
enum Finished {
    Ran(Box<SourceRun>),
    NotStarted(SkippedSource),
}

async fn run_one(
    p: Prepared,
    pod: &PodRef<'_>,
    index: usize,
    bars: &SourcesBars,
    gate: Arc<Semaphore>,
    mut interrupted: watch::Receiver<bool>,
    deadline: Instant,
) -> Finished {
    let Prepared {
        id,
        source,
        container,
        mut sink,
    } = p;
    let session = |sink: SourceSink, problem: Option<String>| SourceRun {
        id: id.clone(),
        namespace: source.info.namespace.clone(),
        pod: source.info.pod.clone(),
        node: source.info.node.clone(),
        problem,
        inputs: sink.finish(),
    };
    // Queued behind --max-parallel: an interrupt or the deadline while waiting means this
    // source never starts.
    let permit = tokio::select! {
        permit = gate.acquire_owned() => permit.ok(),
        _ = interrupted.wait_for(|i| *i) => None,
        _ = tokio::time::sleep_until(deadline) => None,
    };
    let Some(permit) = permit.filter(|_| !*interrupted.borrow()) else {
        bars.set(index, &SourceState::NotStarted);
        let why = match *interrupted.borrow() {
            true => (
                SkipReason::Interrupted,
                "the run was interrupted (Ctrl-C) before its turn",
            ),
            false => (
                SkipReason::DeadlinePassed,
                "the run's deadline passed before its turn (raise --timeout or --max-parallel)",
            ),
        };
        return Finished::NotStarted(SkippedSource {
            namespace: source.info.namespace.clone(),
            pod: source.info.pod.clone(),
            node: source.info.node.clone(),
            reason: why.0,
            detail: why.1.to_string(),
        });
    };
    bars.set(index, &SourceState::Injecting);
    let started = async {
        let injected = inject_probe(pod, &container).await?;
        let reached = reach_probe(pod, &container, &injected, deadline).await?;
        Ok::<_, Error>((injected, reached))
    };
    let started = tokio::select! {
        s = started => Some(s),
        _ = interrupted.wait_for(|i| *i) => None,
    };
    // The API server's share of this source is done once its probe answers.
    drop(permit);
    let (injected, reached) = match started {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            let reason = e.to_string();
            bars.set(
                index,
                &SourceState::Failed {
                    reason: first_line(&reason),
                },
            );
            return Finished::Ran(Box::new(session(sink, Some(reason))));
        }
        None => {
            bars.set(index, &SourceState::NotStarted);
            let reason = "the run was interrupted (Ctrl-C) while its probe was starting";
            return Finished::Ran(Box::new(session(sink, Some(reason.into()))));
        }
    };
    bars.set(index, &SourceState::Running { checks_done: 0 });
    let streamed = {
        let mut watched = Watched {
            sink: &mut sink,
            bars,
            index,
        };
        let stream = stream_into(
            &mut watched,
            pod,
            &container,
            reached,
            injected.at,
            deadline,
        );
        tokio::select! {
            s = stream => Some(s),
            _ = interrupted.wait_for(|i| *i) => None,
        }
    };
    match streamed {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            let reason = e.to_string();
            bars.set(
                index,
                &SourceState::Failed {
                    reason: first_line(&reason),
                },
            );
            return Finished::Ran(Box::new(session(sink, Some(reason))));
        }
        None => sink.cut("the run was interrupted (Ctrl-C) before the probe finished"),
    }
    let verdict = verdict::evaluate(&sink.inputs);
    bars.set(
        index,
        &SourceState::Done {
            status: verdict::render::status_word(verdict.status),
            headline: verdict.headline.clone(),
        },
    );
    Finished::Ran(Box::new(session(sink, None)))
}

/// A source's sink that also moves its progress line.
struct Watched<'a> {
    sink: &'a mut SourceSink,
    bars: &'a SourcesBars,
    index: usize,
}

impl crate::output::EventSink for Watched<'_> {
    fn accept(&mut self, item: crate::events::Item) {
        let before = self.sink.checks_done;
        self.sink.accept(item);
        if self.sink.checks_done != before {
            self.bars.set(
                self.index,
                &SourceState::Running {
                    checks_done: self.sink.checks_done,
                },
            );
        }
    }
    fn record_end(&mut self, end: crate::output::ProbeEnd, reader: &crate::events::EventReader) {
        self.sink.record_end(end, reader)
    }
    fn set_delivery(&mut self, delivery: verdict::Delivery) {
        self.sink.set_delivery(delivery)
    }
    fn note(&mut self, message: String) {
        self.sink.note(message)
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

/// Kubernetes evidence for each source: the destination resolved once per distinct label set
/// of the sources (what NetworkPolicies select on), then made the source's own.
async fn evidence_per_source(
    client: &kube::Client,
    namespace: &str,
    dest_spec: Option<&resolve::DestSpec>,
    sources: &[ResolvedSource],
    args: &RunArgs,
) -> Result<Vec<super::KubeEvidence>> {
    let mut groups: BTreeMap<&BTreeMap<String, String>, Vec<usize>> = BTreeMap::new();
    for (i, s) in sources.iter().enumerate() {
        groups.entry(&s.info.labels).or_default().push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_values().collect();
    let resolved = join_all(
        groups
            .iter()
            .map(|g| kube_evidence(client, namespace, dest_spec, &sources[g[0]], args)),
    )
    .await;
    let mut out: Vec<Option<super::KubeEvidence>> = vec![None; sources.len()];
    for (group, evidence) in groups.iter().zip(resolved) {
        let evidence = evidence?;
        for &i in group {
            let mut own = evidence.clone();
            own.0.source = Some(sources[i].info.clone());
            out[i] = Some(own);
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// The namespace's EndpointSlices, read once: which Services each source serves. Best
/// effort, like the single-source run: without read access, the verdict says nothing of it.
async fn endpoint_slices(
    client: &kube::Client,
    namespace: &str,
) -> Option<Vec<k8s_openapi::api::discovery::v1::EndpointSlice>> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let api: kube::Api<EndpointSlice> = kube::Api::namespaced(client.clone(), namespace);
    let list = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        api.list(&Default::default()),
    )
    .await
    .ok()?
    .ok()?;
    Some(list.items)
}

/// "deploy/web --all-pods -> svc/api" or "-l app=web --per-node -> ...".
fn many_title(args: &RunArgs, namespace: &str, request: &SourcesRequest) -> Title {
    let mut source = match &request.selection {
        resolve::SourceSelection::Workload { kind, name } => {
            format!("{}/{name} --all-pods", kind.short())
        }
        resolve::SourceSelection::Selector(s) => format!("pods -l {s}"),
    };
    if request.per_node {
        source.push_str(" --per-node");
    }
    Title {
        source,
        destination: args
            .to
            .clone()
            .or_else(|| (!args.dns.is_empty()).then(|| format!("dns {}", args.dns.join(", ")))),
        namespace: Some(namespace.to_string()),
        origin: None,
        asked: crate::plan::asked_flags(args.to.as_slice(), &args.dns),
    }
}

/// Evaluate, render, print (on the blocking pool); the aggregate's exit code.
async fn write_verdict(args: &RunArgs, inputs: SourcesInputs) -> Result<i32> {
    let format = args.output.format;
    let color = use_color(&args.output, false);
    tokio::task::spawn_blocking(move || {
        let verdict = verdict::sources::evaluate_sources(&inputs);
        let text = match format {
            OutputFormat::Text => verdict::sources::render_text(&inputs, &verdict, color),
            OutputFormat::Markdown => verdict::sources::render_markdown(&inputs, &verdict),
            OutputFormat::Json => verdict::sources::render_json(&inputs, &verdict),
        };
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Error::Output(format!("writing the output: {e}")));
            }
        }
        Ok(verdict.exit_code())
    })
    .await
    .map_err(|e| Error::Output(format!("writing the output: {e}")))?
}
