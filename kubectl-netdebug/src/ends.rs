//! Both ends (`--both-ends`, `local --peer-netns`): what the client needs to run peer probes
//! at the destination end beside the source probe, the same way for pods and for local
//! namespaces. A peer watches the source's traffic arrive (its capture armed before the source
//! makes any), reads its own end's state, and stops when told; the verdict lines the two ends'
//! packets up ([`verdict::PeerSession`]).
//!
//! Order of a run: peers start and arm; the source starts (or is released) once every peer is
//! armed or [`ARM_LIMIT`] passed; when the source is done, every peer is told `stop`; their
//! reports are collected within [`REPORT_LIMIT`].

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use protocol::{CapturePlan, ControlPlan, ControlVia, PeerPlan, Plan};
use verdict::PeerSession;

use crate::events::Item;
use crate::pcap::PcapWriter;

/// How long the source waits for every peer's capture to be armed. A peer later than this
/// misses the traffic; the verdict says which and what that leaves open.
pub const ARM_LIMIT: Duration = Duration::from_secs(10);
/// How long a peer gets after `stop` to report its capture and finish.
pub const REPORT_LIMIT: Duration = Duration::from_secs(5);
/// How long the source's capture, and the peers' after the source's traffic checks ended, go
/// on for the last packets of the connections (FIN exchanges, a late retransmission). Shorter
/// than a single-ended capture's 300 ms: the two ends see each other's late packets, and a
/// connect that is still retrying has not finished its check yet.
pub const SOURCE_LINGER: Duration = Duration::from_millis(50);
/// The most peers `--max-peers` accepts: each is one more container and capture.
pub const MAX_PEERS: u8 = 10;

/// The plan of a peer probe watching `sources` arrive on `ports`, told `stop` through `via`.
/// Its capture runs until `stop`, at most `deadline` (the whole run's); it writes pcap chunks
/// only when the user asked for the capture (`-w`).
pub fn peer_plan(
    sources: Vec<IpAddr>,
    ports: Vec<u16>,
    deadline: Duration,
    write_pcap: bool,
    via: ControlVia,
) -> Plan {
    let mut plan = Plan::new(Vec::new());
    plan.deadline_ms = deadline
        .as_millis()
        .clamp(1, u128::from(protocol::MAX_DEADLINE_MS)) as u64;
    plan.peer = Some(PeerPlan { sources, ports });
    plan.control = Some(ControlPlan {
        via: via.into(),
        hold_ms: None,
    });
    plan.capture = Some(CapturePlan {
        // The summary needs time before the deadline; `stop` normally comes much earlier.
        max_duration_ms: plan.deadline_ms.saturating_sub(1_000).max(1),
        pcap: write_pcap,
        stop_after_traffic: false,
        ..CapturePlan::default()
    });
    plan
}

/// The source's plan for both ends. It needs its own capture (the SYN leaving, the answer
/// arriving): one is added (without pcap unless `-w` asked) when the flags did not. Its MTU
/// search (`--mtu`) uses TCP segments to the destination's port, which the peer's capture
/// sees arrive or not, rather than echo requests it does not watch.
pub fn source_for_both_ends(plan: &mut Plan) {
    if let Some(mtu) = plan.mtu.as_mut() {
        mtu.variant = Some(protocol::MtuVariant::Tcp.into());
    }
    if plan.capture.is_none() {
        plan.capture = Some(CapturePlan {
            pcap: false,
            max_duration_ms: plan.deadline_ms,
            ..CapturePlan::default()
        });
    }
    if let Some(capture) = plan.capture.as_mut() {
        capture.linger_ms = Some(SOURCE_LINGER.as_millis() as u64);
    }
    let has_capture = plan
        .checks
        .iter()
        .any(|c| c.known() == Some(protocol::CheckKind::Capture));
    if !plan.checks.is_empty() && !has_capture {
        plan.checks.push(protocol::CheckKind::Capture.into());
    }
}

/// Where a peer's capture goes with `-w FILE`: one pcap per end, the peer's beside the
/// source's, named after the peer (`trace.pcap` -> `trace.peer-1.pcap`).
pub fn peer_pcap_path(source_path: &str, peer_id: &str) -> String {
    let path = Path::new(source_path);
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("capture");
    let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("pcap");
    let name = format!("{stem}.{peer_id}.{ext}");
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join(name).to_string_lossy().into_owned(),
        None => name,
    }
}

/// `-w -` writes one stream: both ends need files.
pub fn check_write_target(write: Option<&str>) -> Result<(), String> {
    if write == Some("-") {
        return Err(
            "-w - writes one capture to stdout; with both ends give a file name (each end gets \
             its own pcap beside it)"
                .into(),
        );
    }
    Ok(())
}

/// `--max-peers N`: at least one, at most [`MAX_PEERS`].
pub fn parse_max_peers(text: &str) -> Result<u8, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of peers"))?;
    if n == 0 || n > u32::from(MAX_PEERS) {
        return Err(format!(
            "{n} is out of range: --max-peers takes 1 to {MAX_PEERS} (each peer is one more probe \
             container and capture)"
        ));
    }
    Ok(n as u8)
}

/// One peer's stream as it arrives: events into its session, pcap chunks into its file, and
/// whether it has armed.
pub struct PeerRun {
    pub session: PeerSession,
    pcap: Option<PcapWriter>,
    pcap_error: Option<String>,
    /// Told once, when the peer arms.
    armed_signal: Option<tokio::sync::oneshot::Sender<()>>,
}

impl PeerRun {
    pub fn new(session: PeerSession, pcap: Option<PcapWriter>) -> PeerRun {
        PeerRun {
            session,
            pcap,
            pcap_error: None,
            armed_signal: None,
        }
    }

    /// The receiver is told when the peer arms (dropped unsent if it never does).
    pub fn armed_signal(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.armed_signal = Some(tx);
        rx
    }

    /// Take one item of the peer's stream: events into its session, pcap chunks into its file;
    /// its first `armed` tells the armed signal.
    pub fn accept(&mut self, item: Item) {
        let envelope = match item {
            Item::Gap { from, to } => {
                self.problem(format!("events {from}..{to} of its stream were lost"));
                return;
            }
            Item::Event(protocol::Decoded::Event(envelope)) => envelope,
            Item::Event(other) => return self.session.record(other),
        };
        match &envelope.event {
            protocol::Event::PcapChunk(chunk) => {
                if let (Some(w), None) = (self.pcap.as_mut(), &self.pcap_error) {
                    if let Err(e) = w.write_chunk(chunk) {
                        self.pcap_error = Some(e.to_string());
                    }
                }
                return;
            }
            protocol::Event::Progress(_) => return,
            protocol::Event::Armed(_) => {
                if let Some(tx) = self.armed_signal.take() {
                    let _ = tx.send(());
                }
            }
            _ => {}
        }
        self.session.record(protocol::Decoded::Event(envelope));
    }

    /// Something that went wrong with this peer, kept for the verdict.
    pub fn problem(&mut self, what: String) {
        self.session.problem = Some(match self.session.problem.take() {
            Some(before) => format!("{before}; {what}"),
            None => what,
        });
    }

    /// The stream ended without `done`, for this reason.
    pub fn end_early(&mut self, reason: String) {
        if self.session.stream_end != verdict::StreamEnd::Done {
            self.session.stream_end = verdict::StreamEnd::EndedEarly { reason };
        }
    }

    /// The session, with the pcap file finished; a note for the verdict about the file.
    pub fn finish(mut self) -> (PeerSession, Option<String>) {
        self.armed_signal = None;
        let note = match (self.pcap.take(), self.pcap_error.take()) {
            (_, Some(e)) => Some(format!(
                "{}'s capture could not be written: {e}",
                self.session.id
            )),
            (Some(w), None) => match w.finish() {
                Ok(Some(info)) => Some(format!(
                    "{} ({})'s capture written to {} ({} packets)",
                    self.session.id, self.session.label, info.path, info.packets
                )),
                Ok(None) => None,
                Err(e) => Some(format!(
                    "{}'s capture could not be written: {e}",
                    self.session.id
                )),
            },
            (None, None) => None,
        };
        (self.session, note)
    }
}

/// The source's sink in a both-ends run: passes every item on, and says when the source's
/// traffic checks (those that make packets: dns, tcp, mtu) have all finished, so that the
/// peers can be told to stop while the source's own capture lingers.
pub struct TrafficWatch<'a, S> {
    inner: &'a mut S,
    pending: Vec<protocol::CheckKind>,
    done: tokio::sync::watch::Sender<bool>,
}

impl<'a, S: crate::output::EventSink> TrafficWatch<'a, S> {
    pub fn new(inner: &'a mut S, plan: &Plan, done: tokio::sync::watch::Sender<bool>) -> Self {
        let pending: Vec<_> = plan
            .effective_checks()
            .into_iter()
            .filter(|k| k.info().generates_traffic)
            .collect();
        if pending.is_empty() {
            done.send_replace(true);
        }
        TrafficWatch {
            inner,
            pending,
            done,
        }
    }
}

impl<S: crate::output::EventSink> crate::output::EventSink for TrafficWatch<'_, S> {
    fn accept(&mut self, item: Item) {
        if let Item::Event(protocol::Decoded::Event(envelope)) = &item {
            let finished = match &envelope.event {
                protocol::Event::CheckFinished(f) => f.check.known(),
                // The run is over: nothing more will come.
                protocol::Event::Done(_) => {
                    self.pending.clear();
                    None
                }
                _ => None,
            };
            self.pending.retain(|k| Some(*k) != finished);
            if self.pending.is_empty() {
                self.done.send_replace(true);
            }
        }
        self.inner.accept(item);
    }
    fn record_end(&mut self, end: crate::output::ProbeEnd, reader: &crate::events::EventReader) {
        self.done.send_replace(true);
        self.inner.record_end(end, reader);
    }
    fn set_delivery(&mut self, delivery: verdict::Delivery) {
        self.inner.set_delivery(delivery);
    }
    fn note(&mut self, message: String) {
        self.inner.note(message);
    }
}

impl crate::output::EventSink for PeerRun {
    fn accept(&mut self, item: Item) {
        PeerRun::accept(self, item)
    }

    fn record_end(&mut self, end: crate::output::ProbeEnd, reader: &crate::events::EventReader) {
        if let Some(reason) = end.ended_early {
            let words = end
                .last_words
                .map(|w| format!("; its last output: {w}"))
                .unwrap_or_default();
            self.end_early(format!("{reason}{words}"));
        }
        for m in reader.malformed() {
            self.problem(format!("it sent a malformed event: {m}"));
        }
    }

    /// How a peer's events came is the run's business, not the verdict's.
    fn set_delivery(&mut self, _delivery: verdict::Delivery) {}

    /// Notes about a peer's stream (a resumed log) say nothing about the network.
    fn note(&mut self, _message: String) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_plan_watches_the_sources_until_told_to_stop() {
        let plan = peer_plan(
            vec!["10.199.1.1".parse().unwrap()],
            vec![8080],
            Duration::from_secs(15),
            false,
            ControlVia::Stdin,
        );
        plan.validate().unwrap();
        let capture = plan.capture.as_ref().unwrap();
        assert!(!capture.stop_after_traffic && !capture.pcap);
        assert!(capture.max_duration_ms < plan.deadline_ms);
        assert_eq!(plan.peer.as_ref().unwrap().ports, [8080]);
        assert!(
            plan.targets.is_empty(),
            "the probe makes the way-back targets itself"
        );
    }

    #[test]
    fn each_end_gets_its_own_pcap_beside_the_source_one() {
        assert_eq!(peer_pcap_path("trace.pcap", "peer-1"), "trace.peer-1.pcap");
        assert_eq!(
            peer_pcap_path("/tmp/x/run.pcap", "peer-2"),
            "/tmp/x/run.peer-2.pcap"
        );
        assert_eq!(peer_pcap_path("dump", "peer-1"), "dump.peer-1.pcap");
        assert!(check_write_target(Some("-")).is_err());
        assert!(check_write_target(Some("a.pcap")).is_ok());
    }

    #[test]
    fn max_peers_is_bounded() {
        assert_eq!(parse_max_peers("3"), Ok(3));
        assert!(parse_max_peers("0").unwrap_err().contains("1 to 10"));
        assert!(parse_max_peers("5000")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_max_peers("many").is_err());
    }

    #[test]
    fn the_source_always_captures_for_both_ends() {
        let mut plan = Plan::new(Vec::new());
        source_for_both_ends(&mut plan);
        assert!(plan.capture.as_ref().is_some_and(|c| !c.pcap));
    }

    #[test]
    fn the_peers_may_stop_once_the_sources_traffic_checks_finished() {
        struct Nothing;
        impl crate::output::EventSink for Nothing {
            fn accept(&mut self, _: Item) {}
            fn record_end(&mut self, _: crate::output::ProbeEnd, _: &crate::events::EventReader) {}
            fn set_delivery(&mut self, _: verdict::Delivery) {}
            fn note(&mut self, _: String) {}
        }
        let line = |seq: u64, check: &str| {
            let text = format!(
                r#"{{"v":1,"seq":{seq},"type":"check_finished","data":{{"check":"{check}","status":"completed","elapsed_ms":1.0}}}}"#
            );
            Item::Event(protocol::decode_line(&text).unwrap())
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        let plan = Plan::new(vec![protocol::Target {
            label: "x".into(),
            host: "10.0.0.1".into(),
            port: Some(80),
            role: Default::default(),
        }]);
        let mut inner = Nothing;
        let mut watch = TrafficWatch::new(&mut inner, &plan, tx);
        use crate::output::EventSink;
        watch.accept(line(0, "links"));
        watch.accept(line(1, "tcp"));
        assert!(!*rx.borrow(), "dns still runs");
        watch.accept(line(2, "dns"));
        assert!(*rx.borrow(), "every traffic check finished");
    }

    #[test]
    fn a_peer_arms_once_and_keeps_its_events() {
        let mut run = PeerRun::new(PeerSession::new("peer-1", "netns/dst", 8080), None);
        let mut armed_rx = run.armed_signal();
        let armed = r#"{"v":1,"seq":0,"type":"armed","data":{"capture":true,"elapsed_ms":3.0}}"#;
        run.accept(Item::Event(protocol::decode_line(armed).unwrap()));
        assert_eq!(
            armed_rx.try_recv(),
            Ok(()),
            "the first armed tells the signal"
        );
        let done = r#"{"v":1,"seq":1,"type":"done","data":{"elapsed_ms":9.0,"checks_completed":1,"checks_failed":0,"checks_skipped":0,"deadline_exceeded":false}}"#;
        run.accept(Item::Event(protocol::decode_line(done).unwrap()));
        let (session, note) = run.finish();
        assert_eq!(session.events.len(), 2);
        assert_eq!(session.stream_end, verdict::StreamEnd::Done);
        assert_eq!(note, None);
    }
}

/// A destination pod to probe as a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCandidate {
    pub namespace: String,
    pub pod: String,
    pub node: Option<String>,
    pub ip: Option<IpAddr>,
    /// The port the traffic arrives on there (the resolved targetPort).
    pub port: u16,
    /// The container whose port it is, when known (the probe's target container).
    pub container: Option<String>,
}

/// The destination pods to probe, at most `max`: for a Service its endpoints with a pod that
/// serve (ready, or serving while terminating), the ones Kubernetes already calls failing
/// (serving but not ready) first, then one per node (a node-level fault then shows on the
/// first peers), then the rest, by pod name; for a pod, that pod. Err says why there is none.
pub fn pick_peers(
    destination: &verdict::kube::DestinationInfo,
    max: u8,
) -> Result<Vec<PeerCandidate>, String> {
    use verdict::kube::DestinationInfo;
    let all: Vec<PeerCandidate> = match destination {
        DestinationInfo::Service(s) => {
            let mut endpoints: Vec<_> = s
                .endpoints
                .iter()
                .filter(|e| e.ready || e.serving)
                .collect();
            // Failing first; the sort is stable, so pod names order each group.
            endpoints.sort_by_key(|e| (e.ready, e.pod.clone()));
            endpoints
                .into_iter()
                .filter_map(|e| {
                    Some(PeerCandidate {
                        namespace: s.namespace.clone(),
                        pod: e.pod.clone()?,
                        node: e.node.clone(),
                        ip: e.ip.parse().ok(),
                        port: e.port?,
                        container: e.container.clone(),
                    })
                })
                .collect()
        }
        DestinationInfo::Pod(p) => match p.port {
            Some(port) => vec![PeerCandidate {
                namespace: p.namespace.clone(),
                pod: p.name.clone(),
                node: None,
                ip: p.ip.as_deref().and_then(|ip| ip.parse().ok()),
                port,
                container: None,
            }],
            None => return Err("the destination pod has no port to watch".into()),
        },
        DestinationInfo::Address { host, .. } => {
            return Err(format!(
                "{host} is not a Service or a pod; a peer is found for a pod IP only"
            ))
        }
    };
    if all.is_empty() {
        return Err("the Service has no ready endpoint backed by a pod".into());
    }
    let mut picked: Vec<PeerCandidate> = Vec::new();
    // One per node first.
    for c in &all {
        if picked.len() < usize::from(max) && !picked.iter().any(|p| p.node == c.node) {
            picked.push(c.clone());
        }
    }
    for c in &all {
        if picked.len() < usize::from(max) && !picked.contains(c) {
            picked.push(c.clone());
        }
    }
    Ok(picked)
}

#[cfg(test)]
mod pick_tests {
    use super::*;
    use verdict::kube::{DestinationInfo, EndpointInfo, ServiceInfo};

    fn endpoint(pod: &str, node: &str, ready: bool) -> EndpointInfo {
        EndpointInfo {
            ip: format!("10.244.{}.{}", node.len(), pod.len()),
            port: Some(8080),
            ready,
            serving: ready,
            terminating: false,
            pod: Some(pod.into()),
            container: None,
            node: Some(node.into()),
        }
    }

    fn service(endpoints: Vec<EndpointInfo>) -> DestinationInfo {
        DestinationInfo::Service(ServiceInfo {
            namespace: "shop".into(),
            name: "web".into(),
            service_type: "ClusterIP".into(),
            cluster_ip: Some("10.96.0.20".into()),
            headless: false,
            external_name: None,
            selector: Default::default(),
            ports: Vec::new(),
            endpoints,
            dns_name: "web.shop.svc.cluster.local".into(),
        })
    }

    #[test]
    fn one_peer_per_node_first_then_the_rest_up_to_the_limit() {
        let dest = service(vec![
            endpoint("web-a", "n1", true),
            endpoint("web-b", "n1", true),
            endpoint("web-c", "n2", true),
            endpoint("web-d", "n3", false),
        ]);
        let picked = pick_peers(&dest, 2).unwrap();
        let names: Vec<&str> = picked.iter().map(|p| p.pod.as_str()).collect();
        assert_eq!(
            names,
            ["web-a", "web-c"],
            "one per node; the unready one never"
        );
        let picked = pick_peers(&dest, 3).unwrap();
        assert_eq!(picked.len(), 3);
        assert_eq!(picked[2].pod, "web-b");
    }

    #[test]
    fn endpoints_kubernetes_calls_failing_come_first() {
        let mut failing = endpoint("web-z", "n2", false);
        failing.serving = true;
        let dest = service(vec![endpoint("web-a", "n1", true), failing]);
        let picked = pick_peers(&dest, 1).unwrap();
        assert_eq!(picked[0].pod, "web-z");
    }

    #[test]
    fn no_peer_says_why() {
        assert!(pick_peers(&service(vec![]), 3)
            .unwrap_err()
            .contains("no ready endpoint"));
        let addr = DestinationInfo::Address {
            host: "example.test".into(),
            port: Some(80),
        };
        assert!(pick_peers(&addr, 3)
            .unwrap_err()
            .contains("not a Service or a pod"));
    }
}
