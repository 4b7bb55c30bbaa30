//! What every check gets: the plan, the event sink, the privileges, the deadline, and the
//! shared pieces checks coordinate through (name resolution, "traffic done", "capture ready").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{DnsConfigEvidence, DnsLookupEvidence, Event, Evidence, Plan, Skipped, Target};
use tokio::sync::{watch, OnceCell};
use tokio::time::Instant;

use crate::caps::Privileges;
use crate::control::Control;
use crate::dns;
use crate::emit::Emitter;
use crate::node_conntrack::NodeConntrack;

/// What a node view keeps of the node from before the probe entered a pod's namespace.
pub struct NodeView {
    pub conntrack: NodeConntrack,
    /// The node's namespace file; None when it could not be opened (node_path says so).
    pub netns: Option<std::fs::File>,
    /// The pod entered from the node (`--pod-ip`): the node's route back to it is the return
    /// direction whose device's rp_filter matters.
    pub pod_ip: Option<std::net::IpAddr>,
}

/// What the run reads from files before any check starts: who the probe runs as
/// (/proc/self/status), which network namespace it is in, and the resolver configuration
/// (resolv.conf and the hosts file).
pub struct Setup {
    pub privileges: Privileges,
    /// Inode of the network namespace (for `hello`).
    pub netns_inode: Option<u64>,
    resolver: dns::ResolverConfig,
    resolver_evidence: DnsConfigEvidence,
}

impl Setup {
    /// Reads on the blocking pool: the files are small, but a read is still a blocking call
    /// and the runtime has one thread, which every check and timer shares.
    pub async fn read(
        resolv_conf: String,
        hosts_file: String,
    ) -> Result<Setup, tokio::task::JoinError> {
        tokio::task::spawn_blocking(move || {
            let (resolver, resolver_evidence) = dns::load_config(&resolv_conf, &hosts_file);
            Setup {
                privileges: Privileges::current(),
                netns_inode: netns_inode(),
                resolver,
                resolver_evidence,
            }
        })
        .await
    }
}

fn netns_inode() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .or_else(|_| std::fs::metadata("/proc/self/ns/net"))
        .ok()
        .map(|m| m.ino())
}

pub struct Ctx {
    pub plan: Plan,
    pub privileges: Privileges,
    /// The run's hard deadline; checks must return before it.
    pub deadline: Instant,
    /// When the run started (the probe's clock for `elapsed_ms`).
    pub started: Instant,
    /// The client's control channel, when the plan has one.
    pub control: Option<Control>,
    /// The node's conntrack table, in a node view: where a ClusterIP's translation is seen.
    pub node_conntrack: Option<NodeConntrack>,
    /// The node's network namespace (opened before entering a pod's), in a node view: where
    /// the `node_path` check reads the node's half of the path.
    pub node_netns: Option<std::fs::File>,
    /// The pod entered from the node, in `--via-node` (see [`NodeView::pod_ip`]).
    pub node_pod_ip: Option<std::net::IpAddr>,
    emitter: Emitter,
    resolver: dns::ResolverConfig,
    resolver_evidence: DnsConfigEvidence,
    /// One lookup per name, shared: the dns check reports it, tcp/route/mtu use its addresses.
    lookups: Mutex<HashMap<String, Arc<OnceCell<Arc<DnsLookupEvidence>>>>>,
    traffic_done: watch::Sender<bool>,
    /// None until the capture is in place or known not to come: Some(capturing).
    capture_ready: watch::Sender<Option<bool>>,
    capture_ended: watch::Sender<bool>,
}

impl Ctx {
    pub fn new(
        plan: Plan,
        emitter: Emitter,
        setup: Setup,
        started: Instant,
        control: Option<Control>,
        node: Option<NodeView>,
    ) -> Ctx {
        let (node_conntrack, node_netns, node_pod_ip) = match node {
            Some(n) => (Some(n.conntrack), n.netns, n.pod_ip),
            None => (None, None, None),
        };
        let deadline = started + Duration::from_millis(plan.deadline_ms);
        Ctx {
            plan,
            privileges: setup.privileges,
            deadline,
            started,
            control,
            node_conntrack,
            node_netns,
            node_pod_ip,
            emitter,
            resolver: setup.resolver,
            resolver_evidence: setup.resolver_evidence,
            lookups: Mutex::new(HashMap::new()),
            traffic_done: watch::channel(false).0,
            capture_ready: watch::channel(None).0,
            capture_ended: watch::channel(false).0,
        }
    }

    pub fn emit(&self, evidence: Evidence) {
        self.emitter.emit(Event::Evidence(evidence));
    }

    /// A part of a check that cannot run (the check itself goes on).
    pub fn emit_skipped(&self, skipped: Skipped) {
        self.emitter.emit(Event::Skipped(skipped));
    }

    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// Time left before the hard deadline (zero when past it).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The pod's resolver configuration (resolv.conf read with glibc's rules).
    pub fn resolver(&self) -> &dns::ResolverConfig {
        &self.resolver
    }

    pub fn resolver_evidence(&self) -> &DnsConfigEvidence {
        &self.resolver_evidence
    }

    /// Resolve a name the way the pod's libc would (search list, ndots), once per run.
    pub async fn lookup(&self, name: &str) -> Arc<DnsLookupEvidence> {
        let cell = {
            let mut map = self.lookups.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(name.to_string()).or_default().clone()
        };
        cell.get_or_init(|| async {
            Arc::new(dns::lookup(&self.resolver, name, &self.plan.dns, self.deadline).await)
        })
        .await
        .clone()
    }

    /// The addresses a target stands for: the literal, or what the name resolves to.
    pub async fn resolve_target(&self, target: &Target) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let lookup = self.lookup(&target.host).await;
        if lookup.addresses.is_empty() {
            Err(format!("`{}` did not resolve", target.host))
        } else {
            Ok(lookup.addresses.clone())
        }
    }

    /// Signalled by the runner when every traffic-generating check has finished; checks that
    /// observe the run (counters, capture) wait for it.
    pub async fn wait_traffic_done(&self) {
        let mut rx = self.traffic_done.subscribe();
        let _ = tokio::time::timeout_at(self.deadline, rx.wait_for(|done| *done)).await;
    }

    pub fn mark_traffic_done(&self) {
        self.traffic_done.send_replace(true);
    }

    /// The capture check calls this once its socket is bound and filtering (`capturing`), or
    /// once it knows it will not capture, so traffic checks start only when their packets will
    /// be seen. The first call counts.
    pub fn mark_capture_ready(&self, capturing: bool) {
        self.capture_ready.send_if_modified(|ready| {
            let first = ready.is_none();
            if first {
                *ready = Some(capturing);
            }
            first
        });
    }

    /// Wait (bounded) for the capture to be ready; true when it is capturing.
    pub async fn wait_capture_ready(&self, limit: Duration) -> bool {
        let mut rx = self.capture_ready.subscribe();
        let waited =
            tokio::time::timeout(limit.min(self.remaining()), rx.wait_for(|r| r.is_some())).await;
        matches!(waited, Ok(Ok(ready)) if *ready == Some(true))
    }

    /// The capture check has ended (whatever its outcome).
    pub fn mark_capture_ended(&self) {
        self.capture_ended.send_replace(true);
    }

    /// Resolves once the capture check has ended.
    pub async fn capture_ended(&self) {
        let mut rx = self.capture_ended.subscribe();
        if rx.wait_for(|ended| *ended).await.is_err() {
            // The sender lives in this context, so this is not reached; never resolve early.
            std::future::pending::<()>().await;
        }
    }
}
