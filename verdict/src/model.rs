//! The engine's input (everything the client gathered) and output (the verdict). Plain data,
//! serialisable: `-o json` prints both (see `verdict/OUTPUT.md`).

use serde::{Deserialize, Serialize};

use crate::kube::KubeEvidence;

/// Everything the verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// Kubernetes-level evidence gathered by the client.
    pub kube: KubeEvidence,
    /// Probe events in stream order (`pcap_chunk` events may be left out by the client once
    /// written to the file: the verdict only needs [`PcapInfo`]).
    pub events: Vec<protocol::Event>,
    /// How the probe's stream ended.
    pub stream_end: StreamEnd,
    /// What was asked: used for the header line.
    pub title: Title,
    /// The pcap file written from the capture, if one was asked for (`-w`).
    pub pcap: Option<PcapInfo>,
    /// Event types (or `evidence/<kind>`) from a newer probe that this version ignored,
    /// one entry per line. Mentioned in the verdict so nobody wonders where they went.
    #[serde(default)]
    pub ignored_events: Vec<String>,
    /// What the client noticed about the run that the verdict should repeat (events lost
    /// from the stream, a log reconnect): shown as notes.
    #[serde(default)]
    pub client_notes: Vec<String>,
    /// How the probe's events reached the client (a pod run; None for `local`).
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// The destination ends probed alongside the source (`--both-ends`, `--peer-netns`): one
    /// session each, with its own events. Empty for a single-ended run. The source's own
    /// events stay in [`Inputs::events`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerSession>,
}

/// One destination end's probe session (`--both-ends`): where it ran and what it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSession {
    /// Stable within the run (`peer-1`, `peer-2`...): evidence lines cite it.
    pub id: String,
    /// What a reader calls it: `pod/web-1`, `netns/dst`.
    pub label: String,
    /// The node it runs on, when known (a pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The address the source's traffic is meant to reach it on (a pod IP), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<std::net::IpAddr>,
    /// The port the source's traffic arrives on at this end (a Service's targetPort).
    pub port: u16,
    /// Why this end has no (or partial) evidence: a peer the user may not patch, a pod not
    /// Running, a probe that never armed. None when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The peer probe's events in stream order (`pcap_chunk` left out once written).
    #[serde(default)]
    pub events: Vec<protocol::Event>,
    pub stream_end: StreamEnd,
}

impl PeerSession {
    /// A session about to start: no events yet.
    pub fn new(id: impl Into<String>, label: impl Into<String>, port: u16) -> PeerSession {
        PeerSession {
            id: id.into(),
            label: label.into(),
            node: None,
            address: None,
            port,
            problem: None,
            events: Vec::new(),
            stream_end: StreamEnd::EndedEarly {
                reason: "the peer's stream has not ended yet".into(),
            },
        }
    }

    /// A peer that was not probed, and why.
    pub fn not_run(
        id: impl Into<String>,
        label: impl Into<String>,
        port: u16,
        why: impl Into<String>,
    ) -> PeerSession {
        let why = why.into();
        PeerSession {
            problem: Some(why.clone()),
            stream_end: StreamEnd::EndedEarly { reason: why },
            ..PeerSession::new(id, label, port)
        }
    }

    /// Add one decoded line (unknown event types are dropped: the source's count is the one
    /// the verdict reports).
    pub fn record(&mut self, decoded: protocol::Decoded) {
        if let protocol::Decoded::Event(envelope) = decoded {
            if matches!(envelope.event, protocol::Event::Done(_)) {
                self.stream_end = StreamEnd::Done;
            }
            self.events.push(envelope.event);
        }
    }
}

/// How the probe's events reached the client: not evidence about the network, but what a
/// reader of a slow run (or of the benchmark) wants to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub via: DeliveryPath,
    /// From the injection to the first event, in milliseconds.
    pub first_event_ms: Option<f64>,
    /// Why the log was read when a port-forward was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward_unused: Option<String>,
    /// Port-forward requests made to reach the probe: one per attempt while it was not
    /// listening yet (absent when no port-forward was planned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward_requests: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryPath {
    /// Through the API server's port-forward to the probe's loopback listener.
    PortForward,
    /// From the container log.
    Log,
    /// Through the port-forward until it broke, then the rest from the log.
    PortForwardThenLog,
}

impl Inputs {
    /// Empty inputs for a run about to start: no events yet, and a stream that has not (yet)
    /// ended with `done`.
    pub fn new(title: Title, kube: KubeEvidence) -> Inputs {
        Inputs {
            kube,
            events: Vec::new(),
            stream_end: StreamEnd::EndedEarly {
                reason: "the probe's stream has not ended yet".into(),
            },
            title,
            pcap: None,
            ignored_events: Vec::new(),
            client_notes: Vec::new(),
            delivery: None,
            peers: Vec::new(),
        }
    }

    /// Add one decoded line: events are kept, a `done` event marks the stream complete,
    /// unknown event types are counted in [`Inputs::ignored_events`].
    pub fn record(&mut self, decoded: protocol::Decoded) {
        match decoded {
            protocol::Decoded::Event(envelope) => {
                if matches!(envelope.event, protocol::Event::Done(_)) {
                    self.stream_end = StreamEnd::Done;
                }
                self.events.push(envelope.event);
            }
            protocol::Decoded::Unknown { event_type, .. } => self.ignored_events.push(event_type),
        }
    }

    /// Mark the stream as ended without `done`, unless a `done` event was seen.
    /// `reason` says how the client knows (`container terminated: OOMKilled (exit 137)`,
    /// `log stream closed after seq 41`).
    pub fn end_stream(&mut self, reason: impl Into<String>) {
        if self.stream_end != StreamEnd::Done {
            self.stream_end = StreamEnd::EndedEarly {
                reason: reason.into(),
            };
        }
    }
}

/// How the probe's event stream ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StreamEnd {
    /// The last event was `done`.
    Done,
    /// The stream ended without `done`; `reason` is how the client knows (exit status,
    /// log closed, deadline of the client itself).
    EndedEarly { reason: String },
}

/// The header: `pod/checkout-7d9 (shop) -> svc/payments:443`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Title {
    /// `pod/checkout-7d9`, `deploy/checkout (pod/checkout-7d9-abc)`, `local`, `netns/blue`.
    pub source: String,
    /// `svc/payments:443`, `10.244.2.37:5432`, `dns api.example.com`; None for `--sockets`.
    pub destination: Option<String>,
    pub namespace: Option<String>,
    /// Where the probe ran, as data: the commands the verdict suggests are built from it (a
    /// display label such as `source` is never parsed). None in inputs from a client older
    /// than this field; see [`Title::origin_or`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The flags that named the destination, as the user gave them (`--to svc/web:80`,
    /// `--dns a.example --dns b.example`, `--to 10.0.0.1:80 --to 10.0.0.2:80`): commands that
    /// re-run from the same place repeat them. None in inputs from an older client; see
    /// [`Title::asked_flags`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked: Option<String>,
}

/// Where the probe ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// In a pod's network namespace (`kubectl netdebug pod/NAME -n NAMESPACE`).
    Pod { namespace: String, name: String },
    /// A node's own network namespace (`kubectl netdebug node/NAME -n NAMESPACE`), from a
    /// probe pod with the host network in `pod_namespace` (`--node-namespace`).
    Node {
        name: String,
        namespace: String,
        pod_namespace: String,
    },
    /// `kubectl-netdebug local`: this host's own namespace.
    Local,
    /// `kubectl-netdebug local --netns NAME`.
    LocalNetns { name: String },
    /// `kubectl-netdebug local --pid PID`.
    LocalPid { pid: u32 },
}

impl Origin {
    /// A run without Kubernetes: no suggestion may name Kubernetes objects or commands.
    pub fn is_local(&self) -> bool {
        !matches!(self, Origin::Pod { .. } | Origin::Node { .. })
    }

    /// The command line that runs netdebug from the same place again, toward what `asked`
    /// names (see [`Title::asked_flags`]), with `flags`: `kubectl netdebug pod/web-0 --to
    /// svc/db:5432 -n shop --capture`, `kubectl-netdebug local --netns blue --sockets`.
    pub fn command(&self, asked: Option<&str>, flags: &str) -> String {
        let to = asked.map(|d| format!(" {d}")).unwrap_or_default();
        match self {
            Origin::Pod { namespace, name } => {
                format!("kubectl netdebug pod/{name}{to} -n {namespace} {flags}")
            }
            Origin::Node {
                name,
                namespace,
                pod_namespace,
            } => {
                let elsewhere = if pod_namespace != namespace {
                    format!(" --node-namespace {pod_namespace}")
                } else {
                    String::new()
                };
                format!("kubectl netdebug node/{name}{to} -n {namespace}{elsewhere} {flags}")
            }
            Origin::Local => format!("kubectl-netdebug local{to} {flags}"),
            Origin::LocalNetns { name } => {
                format!("kubectl-netdebug local --netns {name}{to} {flags}")
            }
            Origin::LocalPid { pid } => format!("kubectl-netdebug local --pid {pid}{to} {flags}"),
        }
    }
}

impl Title {
    /// The flags that name the destination again: [`Title::asked`], or for inputs from an
    /// older client `--to DESTINATION`.
    pub fn asked_flags(&self) -> Option<String> {
        self.asked
            .clone()
            .or_else(|| self.destination.as_ref().map(|d| format!("--to {d}")))
    }

    /// [`Title::origin`], or for inputs from an older client that did not fill it, what the
    /// Kubernetes evidence says: a pod when the client resolved a source pod, else a local run.
    pub fn origin_or(&self, kube: &KubeEvidence) -> Origin {
        if let Some(o) = &self.origin {
            return o.clone();
        }
        match &kube.source {
            Some(s) => Origin::Pod {
                namespace: s.namespace.clone(),
                name: s.pod.clone(),
            },
            None => Origin::Local,
        }
    }
}

/// The pcap file the client wrote from `pcap_chunk` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcapInfo {
    /// File path, or `-` for stdout.
    pub path: String,
    pub packets: u64,
}

/// Overall result. Exit codes: see [`Verdict::exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every check that ran found the path working, and something was proven.
    Healthy,
    /// Traffic gets through, but something is wrong enough to matter (a bad endpoint among
    /// good ones, slow DNS expansion, conntrack near full, retransmissions...).
    Degraded,
    /// The path is broken at [`Verdict::layer`].
    Failed,
    /// The tool could not establish enough to judge (probe stopped early, checks errored).
    Inconclusive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Failed => "failed",
            Status::Inconclusive => "inconclusive",
        }
    }
}

/// Layers in the order a packet's journey depends on them (defined with the check registry in
/// `protocol`, so a check's layer is said once: `CheckKind::info().layer`).
pub use protocol::Layer;

/// How one evidence line reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Proven working.
    Ok,
    /// Worth attention, not breaking.
    Warn,
    /// Broken.
    Fail,
    /// Not checked (see `unchecked`).
    Skip,
    /// Context, neither good nor bad.
    Info,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Ok => "ok",
            Mark::Warn => "WARN",
            Mark::Fail => "FAIL",
            Mark::Skip => "skip",
            Mark::Info => "info",
        }
    }
}

/// One line of the layered evidence block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceLine {
    pub layer: Layer,
    pub mark: Mark,
    pub text: String,
    /// The rule that produced the line, for failures and warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleCode>,
}

/// A check that did not run or did not finish, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchecked {
    /// The check (`mtu`, `capture`...), or `kubernetes` for client-side gaps.
    pub check: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_capability: Option<String>,
}

/// How bad something is: of a finding of the verdict, and of a Kubernetes-level fact the
/// client reports ([`crate::kube::KubeFinding`]). One scale for both, so a rule about a
/// Kubernetes fact carries the fact's severity into its finding instead of judging it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Context: worth knowing, neither good nor bad (Kubernetes facts only; no rule's
    /// finding has it).
    Info,
    /// Degrades but does not break the path.
    Warning,
    /// Breaks the path.
    Failure,
    /// The tool could not do its job.
    Inconclusive,
}

/// What one rule concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: RuleCode,
    pub layer: Layer,
    pub severity: Severity,
    /// Short words for the header: `L4 timeout`, `DNS NXDOMAIN`, `MTU blackhole`.
    pub headline: String,
    /// One sentence naming the object or number that proves it.
    pub cause: String,
    /// Evidence lines the finding rests on (shown under its layer).
    pub evidence: Vec<String>,
    /// One or two commands to run next.
    pub next: Vec<String>,
    /// A both-ends finding that located what this single-ended one saw (a timeout the peer's
    /// capture shows lost between the ends): this one stays, sorted after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refined_by: Option<RuleCode>,
}

/// Every rule of the diagnosis catalog, by a stable code (tests and `-o json` use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleCode {
    // DNS (a misconfigured resolv.conf explains what follows from it, so it comes first)
    DnsNotClusterDns,
    DnsServerUnreachable,
    DnsNxdomain,
    DnsServfail,
    DnsSearchExpansion,
    /// A target name the probe could not resolve, with no other DNS evidence.
    DnsUnresolved,
    /// Repeated lookups (`--repeat`) that took the resolver's whole timeout.
    DnsStalls,
    /// Repeated lookups of which some failed and others answered.
    DnsIntermittent,
    // Service
    ServiceNoEndpoints,
    ServiceEndpointsNotReady,
    ServiceTargetPortNotExposed,
    ServiceDataplane,
    /// The node's conntrack entry for a connect to a ClusterIP shows no DNAT (node view).
    ClusterIpNotTranslated,
    ServiceBadEndpoint,
    DestinationPodNotReady,
    // Network
    NoRoute,
    InterfaceDown,
    WrongSourceInterface,
    NeighborUnreachable,
    InterfaceErrors,
    RpFilterAsymmetric,
    /// Node view: a pod on another node routed by the node's default route, not the overlay.
    NodeRouteViaDefault,
    /// Node view: a strict rp_filter on the overlay while the route back leaves by another
    /// device (with `NodeRouteViaDefault`).
    NodeRpFilterAsymmetric,
    // Transport
    TcpRefusedNoListener,
    TcpListenerLoopbackOnly,
    /// The pod is an endpoint of a Service, and nothing listens on the port the Service sends
    /// to it (on any address that accepts connections to the pod IP).
    ServedPortNotListening,
    TcpTimeout,
    TcpTimeoutNetworkPolicy,
    TcpRejected,
    /// A connect error that is none of the above (see errno).
    TcpError,
    EphemeralPortExhaustion,
    /// Repeated connects (`--repeat`, `--for`) to one address of which some failed and
    /// others connected.
    TcpIntermittent,
    /// Among a Service's endpoints, one much slower to accept a connect than the others
    /// (repeated connects: p50 against the others' median).
    EndpointLatencyOutlier,
    CloseWaitAccumulation,
    ListenQueueOverflow,
    TcpRetransmissions,
    /// A NetworkPolicy is predicted to deny, yet the connect succeeded.
    NetworkPolicyNotEnforced,
    // Path
    /// A TLS handshake stalled after the ClientHello or mid-certificate while the connect
    /// passed, and the MTU check agrees: the server's certificate flight needs packets larger
    /// than the path passes (the TLS-MTU trap). Before `MtuBlackhole`: when both fire, the
    /// symptom asked about leads, and its cause names the MTU evidence.
    TlsStallMtu,
    MtuBlackhole,
    /// Node view: an overlay device whose MTU leaves no room for its encapsulation.
    OverlayMtuExceedsUnderlay,
    /// Node view: the pod's interface MTU is larger than the node's overlay carries.
    PodMtuOverOverlay,
    // State
    ConntrackNearMax,
    /// Node view: the node's conntrack table near or at its maximum.
    NodeConntrackFull,
    // Application (TLS and HTTP above a connect that worked)
    /// A TLS handshake stalled while the connect passed, not confirmed as the MTU (no MTU
    /// evidence: `--mtu` would confirm it; or the MTU check passes the flight).
    TlsHandshakeStalled,
    /// A TLS ClientHello answered in plaintext (an HTTP 400 page): the port speaks HTTP.
    TlsToPlaintextPort,
    /// A plain HTTP request answered with a TLS alert record: the port speaks TLS.
    HttpToTlsPort,
    TlsCertificateExpired,
    TlsCertificateNotYetValid,
    /// The name used (SNI) is not among the leaf certificate's SANs.
    TlsNameNotCovered,
    /// The chain does not verify for another reason (the probe's words).
    TlsCertificateInvalid,
    /// A handshake that ended with an alert, a reset or an error no certificate rule explains.
    TlsHandshakeFailed,
    /// Every target answers an error status (4xx or 5xx): the application, not the network.
    HttpErrorStatus,
    /// Every target accepted the connect (and the handshake) and sent no status line.
    HttpNoResponse,
    /// Some endpoints answer a success status, others an error (or nothing).
    HttpEndpointsDisagree,
    /// The first byte of the answer came slowly after a fast connect.
    HttpSlowFirstByte,
    /// The certificate is self-signed: clients that verify refuse it.
    TlsSelfSigned,
    // Both ends (`--both-ends`): a connection lined up across the source's and a peer's capture
    /// The SYN left the source and never reached the destination's interface, while the
    /// peer's capture was armed.
    SynLostBetweenEnds,
    /// The SYN reached the destination, nothing answered: its listener's accept queue is full.
    DestinationAcceptQueueFull,
    /// The SYN reached the destination, nothing answered, and its accept queue was not full:
    /// a firewall rule in the destination's network namespace dropped it.
    DestinationFirewallDrop,
    /// The destination sent a SYN-ACK that never reached the source.
    ReplyLostOnReturnPath,
    /// The destination answered the SYN with a RST: nothing listens on that port there.
    ResetByDestination,
    /// Large segments left the source and never reached the destination while small ones did.
    MtuBlackholeBetweenEnds,
    // The tool itself
    ProbeStoppedEarly,
    CheckFailed,
    NothingProven,
}

/// The outcome of [`crate::evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: Status,
    /// The first failing layer (for `failed`), or the layer of the first warning (for
    /// `degraded`).
    pub layer: Option<Layer>,
    /// Short words for the header line: `L4 timeout`, `all checks passed`.
    pub headline: String,
    /// One sentence naming the object or number that proves it.
    pub cause: Option<String>,
    /// The layered evidence block, in layer order.
    pub evidence: Vec<EvidenceLine>,
    /// What was proven working.
    pub proven: Vec<String>,
    /// What could not be checked, and why.
    pub unchecked: Vec<Unchecked>,
    /// One or two commands to run next.
    pub next: Vec<String>,
    /// Every finding, most important first.
    pub findings: Vec<Finding>,
    /// Codes of the rules that fired, sorted (for tests and scripts).
    pub rules_fired: Vec<RuleCode>,
    /// Things worth knowing that are not evidence lines (conflicting evidence, the profile,
    /// the pcap file, ignored events of a newer probe).
    pub notes: Vec<String>,
    /// Both ends: each connection the source attempted, lined up with the peer that saw it
    /// (failures first, at most [`crate::MAX_CONNECTIONS`]). Empty for a single-ended run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<crate::ConnectionTimeline>,
}

impl Verdict {
    /// 0 healthy, 1 a problem was found (degraded or failed), 2 the tool could not do its
    /// job (inconclusive).
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::Healthy => 0,
            Status::Degraded | Status::Failed => 1,
            Status::Inconclusive => 2,
        }
    }

    pub fn fired(&self, rule: RuleCode) -> bool {
        self.rules_fired.contains(&rule)
    }
}

#[cfg(test)]
mod origin_tests {
    use super::Origin;

    /// The node view's suggested re-run keeps the destination's namespace, and the probe pod's
    /// namespace only when it is another one.
    #[test]
    fn a_node_origin_runs_again_from_the_same_node() {
        let same = Origin::Node {
            name: "vm".into(),
            namespace: "shop".into(),
            pod_namespace: "shop".into(),
        };
        assert_eq!(
            same.command(Some("--to svc/web"), "--capture"),
            "kubectl netdebug node/vm --to svc/web -n shop --capture"
        );
        let other = Origin::Node {
            name: "vm".into(),
            namespace: "shop".into(),
            pod_namespace: "ops".into(),
        };
        assert_eq!(
            other.command(Some("--to svc/web"), "--mtu"),
            "kubectl netdebug node/vm --to svc/web -n shop --node-namespace ops --mtu"
        );
        assert!(!other.is_local());
    }
}
