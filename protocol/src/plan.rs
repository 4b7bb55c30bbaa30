//! The plan: what the client asks the probe to do. Passed as one JSON argument (or a file).

use serde::{Deserialize, Serialize};

use crate::{CheckKind, Open, TargetRole};

/// One destination to examine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Stable name used in every evidence line about this target, e.g. `svc/payments:443`
    /// or `10.244.2.37:8443`.
    pub label: String,
    /// An IP address literal or a DNS name. A name is resolved by the probe's own resolver
    /// (resolv.conf + search/ndots), never by libc.
    pub host: String,
    /// TCP port; `None` means route/MTU-only (no connect).
    #[serde(default)]
    pub port: Option<u16>,
    /// What the target stands for; the probe echoes it in the evidence about the target.
    #[serde(default)]
    pub role: Open<TargetRole>,
}

/// DNS check options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsPlan {
    /// Names to resolve as the pod's resolver would (search list and ndots applied).
    #[serde(default)]
    pub names: Vec<String>,
    /// resolv.conf to read. Default `/etc/resolv.conf` (in a pod: the target container's view
    /// is the pod's, since ephemeral containers share it through the kubelet's mount).
    #[serde(default = "default_resolv_conf")]
    pub resolv_conf: String,
    /// The hosts file looked up before DNS (default `/etc/hosts`: in a pod, the kubelet's, with
    /// the pod's own name and its `hostAliases`). Protocol minor 2.
    #[serde(default = "default_hosts_file")]
    pub hosts_file: String,
    /// Query over TCP as well as UDP (TCP is always used when a UDP answer is truncated).
    #[serde(default)]
    pub tcp: bool,
    /// Per-query timeout; `None` uses resolv.conf's `timeout` option (default 5 s), capped by
    /// the run deadline.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Also query AAAA (default true).
    #[serde(default = "yes")]
    pub aaaa: bool,
}

impl Default for DnsPlan {
    fn default() -> Self {
        DnsPlan {
            names: Vec::new(),
            resolv_conf: default_resolv_conf(),
            hosts_file: default_hosts_file(),
            tcp: false,
            timeout_ms: None,
            aaaa: true,
        }
    }
}

fn default_resolv_conf() -> String {
    "/etc/resolv.conf".to_string()
}

fn default_hosts_file() -> String {
    "/etc/hosts".to_string()
}

fn yes() -> bool {
    true
}

/// Capture options (check `capture`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapturePlan {
    /// Interface name; `None` captures on all interfaces.
    #[serde(default)]
    pub interface: Option<String>,
    /// tcpdump-style filter expression; `None` = traffic to/from the targets and DNS to the
    /// nameservers.
    #[serde(default)]
    pub filter: Option<String>,
    pub max_duration_ms: u64,
    pub max_packets: u64,
    pub max_bytes: u64,
    /// Bytes kept per packet. Headers only by default.
    #[serde(default = "default_snaplen")]
    pub snaplen: u32,
    /// Emit pcap_chunk events (the client writes them to a file).
    #[serde(default = "yes")]
    pub pcap: bool,
    /// When the plan also runs traffic checks (dns, tcp, mtu), stop ~300 ms after they have
    /// all finished instead of waiting out `max_duration_ms` (default true). Set it to false
    /// when the user asked for an explicit capture duration, or to watch other traffic.
    #[serde(default = "yes")]
    pub stop_after_traffic: bool,
    /// With `stop_after_traffic`: how long the capture goes on after the traffic checks
    /// finished, for late answers and retransmissions (protocol minor 4; None: 300 ms). Both
    /// ends shorten it: the peers' captures see what the source's would have waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linger_ms: Option<u64>,
}

/// The longest run a plan may ask for.
pub const MAX_DEADLINE_MS: u64 = 600_000;

/// Packets a capture keeps when the plan sets no limit.
pub const DEFAULT_CAPTURE_PACKETS: u64 = 10_000;
/// Bytes a capture keeps when the plan sets no limit (16 MiB).
pub const DEFAULT_CAPTURE_BYTES: u64 = 16 << 20;

fn default_snaplen() -> u32 {
    128
}

impl Default for CapturePlan {
    fn default() -> Self {
        CapturePlan {
            interface: None,
            filter: None,
            max_duration_ms: 5_000,
            max_packets: DEFAULT_CAPTURE_PACKETS,
            max_bytes: DEFAULT_CAPTURE_BYTES,
            snaplen: default_snaplen(),
            pcap: true,
            stop_after_traffic: true,
            linger_ms: None,
        }
    }
}

/// MTU search options (check `mtu`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtuPlan {
    /// Largest IP packet size to try; default: the route MTU.
    #[serde(default)]
    pub max_size: Option<u32>,
    /// Smallest size to try (IPv4 minimum MTU is 576 per RFC 791 practice, 1280 for IPv6).
    #[serde(default)]
    pub min_size: Option<u32>,
    /// Per-probe wait for an answer.
    #[serde(default = "default_mtu_wait")]
    pub wait_ms: u64,
    /// The variant to run (protocol minor 4); None: `icmp` when the probe can send echo
    /// requests, else `tcp`. Both ends ask for `tcp`: its segments go to the destination's
    /// port, where the peer's capture sees which sizes arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<crate::Open<crate::MtuVariant>>,
}

fn default_mtu_wait() -> u64 {
    1_000
}

impl Default for MtuPlan {
    fn default() -> Self {
        MtuPlan {
            max_size: None,
            min_size: None,
            wait_ms: default_mtu_wait(),
            variant: None,
        }
    }
}

/// Repeated connect rounds (check `tcp`): every target address is connected to again, round
/// after round, each attempt a fresh socket (a new source port), paced at `rate` attempts per
/// second across all addresses, under the plan's one deadline. Without it every address gets
/// one connect, all at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundsPlan {
    /// Rounds to run (with `for_ms`: at most this many).
    pub repeat: u32,
    /// Keep starting rounds until this long after the first (`--for`).
    #[serde(default)]
    pub for_ms: Option<u64>,
    /// Attempts per second across all addresses.
    #[serde(default = "default_rate")]
    pub rate: u32,
    /// Samples kept per address (counts stay exact past it; failures are kept before
    /// successes).
    #[serde(default = "default_sample_cap")]
    pub sample_cap: u32,
}

/// Attempts per second when the plan sets no rate (`--rate`).
pub const DEFAULT_RATE: u32 = 50;
/// The highest rate a plan may ask for.
pub const MAX_RATE: u32 = 500;
/// The most rounds a plan may ask for (`--repeat`).
pub const MAX_REPEAT: u32 = 100_000;
/// Samples kept per address when the plan sets no cap.
pub const DEFAULT_SAMPLE_CAP: u32 = 1_000;
/// The most samples per address a plan may ask to keep.
pub const MAX_SAMPLE_CAP: u32 = 100_000;

fn default_rate() -> u32 {
    DEFAULT_RATE
}
fn default_sample_cap() -> u32 {
    DEFAULT_SAMPLE_CAP
}

impl RoundsPlan {
    /// `repeat` rounds at the default rate and sample cap.
    pub fn new(repeat: u32) -> RoundsPlan {
        RoundsPlan {
            repeat,
            for_ms: None,
            rate: DEFAULT_RATE,
            sample_cap: DEFAULT_SAMPLE_CAP,
        }
    }

    /// Why these rounds cannot run, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if self.repeat == 0 || self.repeat > MAX_REPEAT {
            return Some(format!(
                "rounds.repeat {} out of range (1..={MAX_REPEAT})",
                self.repeat
            ));
        }
        if self.rate == 0 || self.rate > MAX_RATE {
            return Some(format!(
                "rounds.rate {} out of range (1..={MAX_RATE} attempts per second)",
                self.rate
            ));
        }
        if self.for_ms == Some(0) {
            return Some("rounds.for_ms must be > 0".into());
        }
        if self.sample_cap == 0 || self.sample_cap > MAX_SAMPLE_CAP {
            return Some(format!(
                "rounds.sample_cap {} out of range (1..={MAX_SAMPLE_CAP})",
                self.sample_cap
            ));
        }
        None
    }
}

/// Everything the probe is asked to do in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Protocol major the plan was written for; the probe refuses another.
    pub v: u32,
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Checks to run. Empty means the default set for the targets given (a peer's: those that
    /// make no traffic, see [`Plan::effective_checks`]). A check this probe
    /// does not know (a newer client's) is reported as skipped, not refused.
    #[serde(default)]
    pub checks: Vec<Open<CheckKind>>,
    /// Hard deadline for the whole run; the probe never outlives it.
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
    /// Per-target TCP connect timeout.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default)]
    pub dns: DnsPlan,
    #[serde(default)]
    pub capture: Option<CapturePlan>,
    #[serde(default)]
    pub mtu: Option<MtuPlan>,
    /// How many peers/listeners to list in socket evidence.
    #[serde(default = "default_top")]
    pub sockets_top: u32,
    /// Repeated connect rounds; `None`: one connect per address (protocol minor 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<RoundsPlan>,
    /// Also serve the event stream on the network namespace's loopback (protocol minor 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelPlan>,
    /// This probe watches the destination end of another probe's traffic (protocol minor 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<crate::PeerPlan>,
    /// The client paces this probe with control words (protocol minor 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<crate::ControlPlan>,
    /// The application layer above each target's connect (minor 5): TLS and/or HTTP. Runs
    /// the `app` check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppPlan>,
}

/// The event stream served on `127.0.0.1:port` inside the probe's network namespace, for a
/// client that reaches it through the API server's port-forward. Why: the kubelet reports a
/// new container (and only then serves its log) at its next relist, one to two seconds after
/// the container started; port-forward reaches the pod's loopback as soon as the probe
/// listens. The log still gets every line: the tunnel is a faster copy, never the only one.
///
/// The first peer that sends `token` and a newline gets every line from `seq` 0, then each
/// new line as it is written, and the connection closes after the last one. After `done` the
/// probe waits up to `linger_ms` for that peer (never past its deadline), then exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelPlan {
    pub port: u16,
    /// Random per run (16 to 64 ASCII letters and digits): a peer that does not know it gets
    /// nothing, and a client that reached something else on that port can tell.
    pub token: String,
    #[serde(default = "default_linger")]
    pub linger_ms: u64,
}

/// How long the probe waits after `done` for its tunnel's peer when the plan sets nothing.
pub const DEFAULT_TUNNEL_LINGER_MS: u64 = 3_000;
/// The longest wait after `done` a plan may ask for.
pub const MAX_TUNNEL_LINGER_MS: u64 = 10_000;

fn default_linger() -> u64 {
    DEFAULT_TUNNEL_LINGER_MS
}

impl TunnelPlan {
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.port == 0 {
            return Err(PlanError::Invalid("tunnel.port must be > 0".into()));
        }
        let token_ok = (16..=64).contains(&self.token.len())
            && self.token.bytes().all(|b| b.is_ascii_alphanumeric());
        if !token_ok {
            return Err(PlanError::Invalid(
                "tunnel.token must be 16 to 64 ASCII letters and digits".into(),
            ));
        }
        if self.linger_ms > MAX_TUNNEL_LINGER_MS {
            return Err(PlanError::Invalid(format!(
                "tunnel.linger_ms {} out of range (0..={MAX_TUNNEL_LINGER_MS})",
                self.linger_ms
            )));
        }
        Ok(())
    }
}

/// What to do above each target's TCP connect (every target with a port: the ClusterIP and
/// each endpoint). At least one of `tls` and `http`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPlan {
    /// A TLS handshake after the connect (https, or `--tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsPlan>,
    /// One HTTP/1.1 request after the connect (and the handshake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpPlan>,
    /// The whole exchange with one target (handshake + request + reading), after its connect.
    #[serde(default = "default_app_timeout")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPlan {
    /// SNI and the name checked against the certificate: the name the user gave (a Service's
    /// DNS name, the URL's host).
    pub server_name: String,
    /// ALPN protocols offered, in order (`http/1.1` when a request follows).
    #[serde(default)]
    pub alpn: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPlan {
    /// Request target, starting with `/`.
    pub path: String,
    /// The Host header: the name the user gave (with its port when not the scheme's default).
    pub host: String,
    /// Response bytes read at most (headers and body); the rest is not read.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

/// Per-target application exchange limit when the plan sets none.
pub const DEFAULT_APP_TIMEOUT_MS: u64 = 3_000;
/// Response bytes read at most when the plan sets no cap.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// The largest response cap a plan may ask for.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

fn default_app_timeout() -> u64 {
    DEFAULT_APP_TIMEOUT_MS
}
fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}

impl AppPlan {
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.tls.is_none() && self.http.is_none() {
            return Err(PlanError::Invalid("app needs tls, http or both".into()));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_DEADLINE_MS {
            return Err(PlanError::Invalid(format!(
                "app.timeout_ms {} out of range (1..={MAX_DEADLINE_MS})",
                self.timeout_ms
            )));
        }
        if let Some(tls) = &self.tls {
            if tls.server_name.is_empty() {
                return Err(PlanError::Invalid("app.tls.server_name is empty".into()));
            }
        }
        if let Some(http) = &self.http {
            let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
            if !http.path.starts_with('/') || !printable(&http.path) {
                return Err(PlanError::Invalid(format!(
                    "app.http.path {:?} must start with / and hold no spaces or control bytes",
                    http.path
                )));
            }
            if http.host.is_empty() || !printable(&http.host) {
                return Err(PlanError::Invalid(format!(
                    "app.http.host {:?} is not a host",
                    http.host
                )));
            }
            if http.max_response_bytes == 0 || http.max_response_bytes > MAX_RESPONSE_BYTES {
                return Err(PlanError::Invalid(format!(
                    "app.http.max_response_bytes {} out of range (1..={MAX_RESPONSE_BYTES})",
                    http.max_response_bytes
                )));
            }
        }
        Ok(())
    }
}

fn default_deadline() -> u64 {
    15_000
}
/// A connect's wait when the plan sets none.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;

fn default_connect_timeout() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_top() -> u32 {
    10
}

impl Plan {
    pub fn new(targets: Vec<Target>) -> Self {
        Plan {
            v: crate::PROTOCOL_MAJOR,
            targets,
            checks: Vec::new(),
            deadline_ms: default_deadline(),
            connect_timeout_ms: default_connect_timeout(),
            dns: DnsPlan::default(),
            capture: None,
            mtu: None,
            sockets_top: default_top(),
            rounds: None,
            tunnel: None,
            peer: None,
            control: None,
            app: None,
        }
    }

    /// The checks this plan runs, in a stable order. A peer's defaults (protocol minor 4) are
    /// only the checks that make no traffic: the traffic it watches is the source's.
    pub fn effective_checks(&self) -> Vec<CheckKind> {
        let mut checks: Vec<CheckKind> = if self.checks.is_empty() {
            let peer = self.peer.is_some();
            let mut c: Vec<CheckKind> = CheckKind::defaults()
                .filter(|k| !(peer && k.info().generates_traffic))
                .collect();
            if self.capture.is_some() {
                c.push(CheckKind::Capture);
            }
            if self.mtu.is_some() && !peer {
                c.push(CheckKind::Mtu);
            }
            if self.app.is_some() && !peer {
                c.push(CheckKind::App);
            }
            c
        } else {
            self.checks.iter().filter_map(Open::known).collect()
        };
        checks.sort();
        checks.dedup();
        checks
    }

    /// Checks the plan names that this version does not know, as given.
    pub fn unknown_checks(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| c.known().is_none())
            .map(Open::as_str)
            .collect()
    }

    /// Parse and validate a plan. Errors name the field at fault.
    pub fn from_json(json: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(json).map_err(|e| PlanError::Parse(e.to_string()))?;
        plan.validate()?;
        Ok(plan)
    }

    pub fn validate(&self) -> Result<(), PlanError> {
        if self.v != crate::PROTOCOL_MAJOR {
            return Err(PlanError::Version(self.v));
        }
        if self.deadline_ms == 0 || self.deadline_ms > MAX_DEADLINE_MS {
            return Err(PlanError::Invalid(format!(
                "deadline_ms {} out of range (1..={MAX_DEADLINE_MS})",
                self.deadline_ms
            )));
        }
        if self.connect_timeout_ms == 0 {
            return Err(PlanError::Invalid("connect_timeout_ms must be > 0".into()));
        }
        if let Some(tunnel) = &self.tunnel {
            tunnel.validate()?;
        }
        if let Some(app) = &self.app {
            app.validate()?;
        }
        if let Some(peer) = &self.peer {
            peer.validate()?;
        }
        if let Some(control) = &self.control {
            control.validate(self.tunnel.is_some())?;
        }
        for t in &self.targets {
            validate_host(&t.host).map_err(|why| {
                PlanError::Invalid(format!("target `{}`: host `{}` {why}", t.label, t.host))
            })?;
            if t.port == Some(0) {
                return Err(PlanError::Invalid(format!(
                    "target `{}`: port 0 is not a port",
                    t.label
                )));
            }
        }
        for n in &self.dns.names {
            if n.parse::<std::net::IpAddr>().is_ok() {
                return Err(PlanError::Invalid(format!(
                    "dns name `{n}` is an IP address, not a name"
                )));
            }
            validate_host(n).map_err(|why| PlanError::Invalid(format!("dns name `{n}` {why}")))?;
        }
        if let Some(why) = self.rounds.as_ref().and_then(RoundsPlan::problem) {
            return Err(PlanError::Invalid(why));
        }
        if let Some(c) = &self.capture {
            if c.max_duration_ms == 0 || c.max_packets == 0 || c.max_bytes == 0 {
                return Err(PlanError::Invalid(
                    "capture limits must be greater than zero".into(),
                ));
            }
            if c.max_duration_ms > 600_000 || c.max_packets > 10_000_000 || c.max_bytes > 1 << 30 {
                return Err(PlanError::Invalid(
                    "capture limits too large (at most 600 s, 10,000,000 packets, 1 GiB)".into(),
                ));
            }
            if c.snaplen < 64 || c.snaplen > 262_144 {
                return Err(PlanError::Invalid(format!(
                    "capture snaplen {} out of range (64..=262144)",
                    c.snaplen
                )));
            }
        }
        Ok(())
    }
}

/// A host is an IP literal or a syntactically valid DNS name (RFC 1123 labels, optional
/// trailing dot).
pub fn validate_host(host: &str) -> Result<(), &'static str> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Err("is not an IP address or a DNS name");
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err("is not an IP address or a DNS name");
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("plan does not parse: {0}")]
    Parse(String),
    #[error("plan is for protocol version {0}, this probe speaks version {major}", major = crate::PROTOCOL_MAJOR)]
    Version(u32),
    #[error("invalid plan: {0}")]
    Invalid(String),
}
