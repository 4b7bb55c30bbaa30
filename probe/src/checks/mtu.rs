//! Check `mtu`: for each target, the interface and route MTU, then a path-MTU search with DF
//! set that finds the largest packet that gets through and whether an ICMP frag-needed /
//! packet-too-big came back. A path where small packets pass, large ones vanish and no ICMP
//! error arrives is a blackhole, and is reported as one.
//!
//! Two variants:
//! - `icmp`: echo requests of chosen sizes with IP_MTU_DISCOVER=DO on a raw socket (needs
//!   NET_RAW) or an unprivileged ping socket (when `net.ipv4.ping_group_range` admits our gid);
//!   ICMP errors are read from the socket error queue (IP_RECVERR).
//! - `tcp`: unprivileged, against the target's port: one connection per size with TCP_MAXSEG
//!   clamped so a full segment is exactly that size, one full segment sent with DF, and
//!   TCP_INFO read until it is acknowledged (or the wait ends); `tcpi_pmtu` dropping below the
//!   size means an ICMP frag-needed reached the kernel.
//!
//! Without NET_RAW or ping sockets the check says so with a `skipped` event and runs `tcp`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{
    Capability, CheckKind, Evidence, Link, MtuEvidence, MtuPlan, MtuProbe, MtuProbeResult, Open,
    RouteOutcome, Skipped, TargetRole,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::Outcome;
use crate::context::Ctx;
use crate::netlink::Rtnl;
use crate::platform::pmtu::{self, PmtuMode};

/// Upper bound on probes per target (a bisection of 576..9000 needs 14).
const MAX_PROBES: usize = 18;
/// Kept free at the end of the run for emitting.
const END_MARGIN: Duration = Duration::from_millis(300);

/// What one probe of one size showed.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeResult {
    /// Answered (echo reply / acknowledged).
    Ok { rtt_ms: f64 },
    /// No answer within the wait, and no error.
    Lost,
    /// An ICMP frag-needed / packet-too-big came back (with the MTU it named, if any).
    FragNeeded { mtu: Option<u32> },
    /// The kernel refused to send it (EMSGSIZE): larger than the interface MTU or than a path
    /// MTU it already learned.
    TooBigLocally { mtu: Option<u32> },
    /// This size cannot be tested (e.g. the peer's MSS is smaller); test at most `max`.
    Capped { max: u32, why: String },
    /// The probe could not be made (connection refused, host unreachable...): stop.
    Failed(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResult {
    pub probes: Vec<MtuProbe>,
    pub largest_ok: Option<u32>,
    pub smallest_lost: Option<u32>,
    pub frag_needed_seen: bool,
    pub learned_pmtu: Option<u32>,
    pub note: Option<String>,
}

impl SearchResult {
    pub fn blackhole(&self) -> bool {
        self.largest_ok.is_some() && self.smallest_lost.is_some() && !self.frag_needed_seen
    }
}

/// Find the largest size in `min..=max` that gets through: try `max`, then `min`, then bisect.
/// `link_mtu` tells a locally refused size caused by a learned path MTU (an earlier ICMP)
/// from one that is simply above the interface MTU.
pub fn search(
    min: u32,
    max: u32,
    link_mtu: Option<u32>,
    deadline: Instant,
    mut probe: impl FnMut(u32) -> ProbeResult,
) -> SearchResult {
    let mut r = SearchResult::default();
    let mut hi = max;
    let mut pending: Option<u32> = Some(max);
    let mut min_tried = false;
    loop {
        let next = pending.take().or_else(|| match r.largest_ok {
            None if !min_tried => {
                min_tried = true;
                Some(min.min(hi))
            }
            None => None,
            Some(lo) if lo >= hi => None,
            Some(lo) => Some(lo + (hi - lo).div_ceil(2)),
        });
        let Some(size) = next else { break };
        if r.probes.len() >= MAX_PROBES || Instant::now() >= deadline {
            r.note = Some(format!(
                "search stopped after {} probes (probe limit or deadline)",
                r.probes.len()
            ));
            break;
        }
        if size == 0 {
            break;
        }
        let result = probe(size);
        r.probes.push(probe_record(size, &result));
        match result {
            ProbeResult::Ok { .. } => {
                r.largest_ok = Some(r.largest_ok.map_or(size, |v| v.max(size)));
            }
            ProbeResult::Lost => {
                r.smallest_lost = Some(r.smallest_lost.map_or(size, |v| v.min(size)));
                hi = hi.min(size - 1);
            }
            ProbeResult::FragNeeded { mtu } => {
                r.frag_needed_seen = true;
                if let Some(m) = mtu.filter(|m| *m > 0) {
                    r.learned_pmtu = Some(m);
                }
                hi = hi
                    .min(size - 1)
                    .min(mtu.filter(|m| *m > 0).unwrap_or(u32::MAX));
                // Go straight to the size the router named.
                pending = mtu.filter(|m| *m > r.largest_ok.unwrap_or(0) && *m <= hi);
            }
            ProbeResult::TooBigLocally { mtu } => {
                if let Some(m) = mtu.filter(|m| *m > 0) {
                    if link_mtu.is_some_and(|l| m < l) {
                        // Below the interface MTU: a path MTU learned from an ICMP error.
                        r.frag_needed_seen = true;
                        r.learned_pmtu = Some(m);
                    }
                    hi = hi.min(m);
                    pending = Some(m).filter(|m| *m > r.largest_ok.unwrap_or(0) && *m < size);
                }
                hi = hi.min(size - 1);
            }
            ProbeResult::Capped { max, why } => {
                hi = hi.min(max).min(size - 1);
                r.note = Some(why);
                pending = Some(hi).filter(|h| *h > r.largest_ok.unwrap_or(0));
            }
            ProbeResult::Failed(why) => {
                r.note = Some(why);
                break;
            }
        }
        if r.largest_ok.is_none() && min_tried && r.smallest_lost.is_some_and(|l| l <= min) {
            break;
        }
    }
    confirm_blackhole(&mut r, deadline, probe);
    r
}

/// One loss is thin evidence for a blackhole: repeat the smallest lost size once. Lost again
/// confirms it; an ICMP error now explains it; anything else was packet loss.
fn confirm_blackhole(
    r: &mut SearchResult,
    deadline: Instant,
    mut probe: impl FnMut(u32) -> ProbeResult,
) {
    if !r.blackhole() || r.probes.len() >= MAX_PROBES || Instant::now() >= deadline {
        return;
    }
    let size = r.smallest_lost.unwrap_or_default();
    let result = probe(size);
    r.probes.push(probe_record(size, &result));
    match result {
        ProbeResult::Lost => {}
        ProbeResult::FragNeeded { mtu } => {
            r.frag_needed_seen = true;
            r.learned_pmtu = mtu.or(r.learned_pmtu);
        }
        _ => {
            r.note = Some(format!(
                "{size} bytes were lost once and not on retry: packet loss, not an MTU limit"
            ));
            r.smallest_lost = None;
        }
    }
}

/// The evidence line for one probe of `size`.
fn probe_record(size: u32, result: &ProbeResult) -> MtuProbe {
    MtuProbe {
        size,
        result: result_name(result).into(),
        rtt_ms: match result {
            ProbeResult::Ok { rtt_ms } => Some(*rtt_ms),
            _ => None,
        },
    }
}

fn result_name(r: &ProbeResult) -> MtuProbeResult {
    match r {
        ProbeResult::Ok { .. } => MtuProbeResult::Ok,
        ProbeResult::Lost => MtuProbeResult::Lost,
        ProbeResult::FragNeeded { .. } => MtuProbeResult::FragNeeded,
        ProbeResult::TooBigLocally { .. } => MtuProbeResult::TooBigLocally,
        ProbeResult::Capped { .. } => MtuProbeResult::Capped,
        ProbeResult::Failed(_) => MtuProbeResult::Failed,
    }
}

/// ICMP echo on a raw socket (NET_RAW) or a ping socket (ping_group_range), or TCP.
use protocol::MtuVariant as Variant;

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    if ctx.plan.targets.is_empty() {
        return Outcome::Skipped {
            reason: "the plan has no targets to probe".into(),
            missing_capability: None,
        };
    }
    let variant = choose_variant(&ctx).await;
    let rtnl = match Rtnl::connect() {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let links = match rtnl.links().await {
        Ok(l) => crate::checks::links::build(&l, &[]).links,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let jobs = jobs(&ctx, variant).await;
    let mut ran = 0;
    let total = jobs.len();
    for (i, job) in jobs.into_iter().enumerate() {
        if job.variant == Variant::Tcp && job.port.is_none() {
            ctx.emit_skipped(Skipped::for_capability(
                CheckKind::Mtu,
                Capability::NetRaw,
                format!(
                    "target `{}`: the tcp variant needs a port and the icmp variant needs \
                     net_raw",
                    job.label
                ),
            ));
            continue;
        }
        let Some(path) = local_path(&ctx, &rtnl, &links, &job).await else {
            continue;
        };
        // The time left is shared evenly by the targets still to probe.
        let budget = ctx.remaining().saturating_sub(END_MARGIN) / (total - i) as u32;
        if let Err(why) = probe_path(&ctx, job, path, budget).await {
            return Outcome::Failed(why);
        }
        ran += 1;
    }
    if ran == 0 && total > 0 {
        return Outcome::Skipped {
            reason: "no target could be probed (see the skipped events)".into(),
            missing_capability: match variant {
                Variant::Icmp => None,
                Variant::Tcp => Some(Capability::NetRaw),
            },
        };
    }
    Outcome::Completed
}

/// The plan's variant; else `icmp` when this process can send echo requests; else `tcp`, said
/// with a `skipped` event.
async fn choose_variant(ctx: &Ctx) -> Variant {
    let asked = ctx.plan.mtu.as_ref().and_then(|m| m.variant.as_ref());
    if let Some(Variant::Tcp) = asked.and_then(|v| v.known()) {
        return Variant::Tcp;
    }
    if icmp_available() {
        return Variant::Icmp;
    }
    // A /proc read: through tokio::fs, off the runtime's only thread.
    let range = tokio::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .await
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".into());
    ctx.emit_skipped(Skipped::for_capability(
        CheckKind::Mtu,
        Capability::NetRaw,
        format!(
            "icmp variant needs net_raw, or net.ipv4.ping_group_range ({range}) to include \
             gid {}; running the tcp variant instead",
            ctx.privileges.gid
        ),
    ));
    Variant::Tcp
}

/// One thing to probe: a target's first address (and port, for the tcp variant).
struct Job {
    label: String,
    role: Open<TargetRole>,
    destination: IpAddr,
    port: Option<u16>,
    variant: Variant,
}

/// One job per distinct destination (and port, for tcp); targets that do not resolve are
/// reported as skipped.
async fn jobs(ctx: &Ctx, variant: Variant) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut seen = HashSet::new();
    for target in &ctx.plan.targets {
        let addrs = match ctx.resolve_target(target).await {
            Ok(addrs) => addrs,
            Err(why) => {
                skip_target(ctx, &target.label, why);
                continue;
            }
        };
        // One address per target: a search costs seconds; the route check covers all.
        let destination = addrs[0];
        let key_port = match variant {
            Variant::Icmp => None,
            Variant::Tcp => target.port,
        };
        if !seen.insert((destination, key_port)) {
            continue;
        }
        jobs.push(Job {
            label: target.label.clone(),
            role: target.role.clone(),
            destination,
            port: target.port,
            variant,
        });
    }
    jobs
}

fn skip_target(ctx: &Ctx, label: &str, why: impl std::fmt::Display) {
    ctx.emit_skipped(Skipped::new(
        CheckKind::Mtu,
        format!("target `{label}`: {why}"),
    ));
}

/// What this host says about the way to a destination before any probe is sent.
struct LocalPath {
    /// The route's MTU: configured, or a PMTU the kernel learned (see `cached`).
    route_mtu: Option<u32>,
    interface_mtu: Option<u32>,
    /// The route MTU is a cached exception (it expires): learned from an ICMP error.
    cached: bool,
}

/// `ip route get` toward the job's destination and the MTU of the interface it leaves by;
/// None (after a `skipped` event) when there is no route.
async fn local_path(ctx: &Ctx, rtnl: &Rtnl, links: &[Link], job: &Job) -> Option<LocalPath> {
    let destination = job.destination;
    let names = links.iter().map(|l| (l.index, l.name.clone())).collect();
    let (route_mtu, dev, cached) = match rtnl.route_get(destination).await {
        Ok(msg) => match super::route::outcome_of(&msg, destination, &names, &[]) {
            RouteOutcome::Found(info) => (info.mtu, info.dev, is_cached_exception(&msg)),
            RouteOutcome::NoRoute { message, .. } => {
                skip_target(
                    ctx,
                    &job.label,
                    format!("no route to {destination}: {message}"),
                );
                return None;
            }
        },
        Err(e) => {
            skip_target(ctx, &job.label, format!("no route to {destination}: {e}"));
            return None;
        }
    };
    let interface_mtu = dev
        .as_ref()
        .and_then(|d| links.iter().find(|l| &l.name == d))
        .map(|l| l.mtu);
    Some(LocalPath {
        route_mtu,
        interface_mtu,
        cached,
    })
}

/// Run the search for one job on the blocking pool (its sockets block) within `budget`, and
/// emit its evidence. Err only when the search task itself failed.
async fn probe_path(ctx: &Ctx, job: Job, path: LocalPath, budget: Duration) -> Result<(), String> {
    let destination = job.destination;
    let params = Params {
        destination,
        port: job.port,
        plan: ctx.plan.mtu.clone().unwrap_or_default(),
        interface_mtu: path.interface_mtu,
        // A route MTU with an expiry is a PMTU the kernel learned from an ICMP error;
        // without one it is configured (`ip route ... mtu N`).
        configured_route_mtu: path.route_mtu.filter(|_| !path.cached),
        learned_before: path.route_mtu.filter(|_| path.cached),
        connect_timeout: Duration::from_millis(ctx.plan.connect_timeout_ms),
        deadline: Instant::now() + budget,
    };
    let learned_before = params.learned_before;
    let variant = job.variant;
    let mut result = tokio::task::spawn_blocking(move || match variant {
        Variant::Icmp => run_icmp(&params),
        Variant::Tcp => run_tcp(&params),
    })
    .await
    .map_err(|e| format!("mtu search for {destination}: {e}"))?;
    if let Some(before) = learned_before {
        // The kernel had already learned this PMTU from an ICMP error before the run.
        result.frag_needed_seen = true;
        result.learned_pmtu = result.learned_pmtu.or(Some(before));
    }
    // The evidence has no free-text field: a search that got nowhere says why here.
    if let (None, Some(note)) = (result.largest_ok, result.note.as_ref()) {
        skip_target(
            ctx,
            &job.label,
            format!("mtu search toward {destination}: {note}"),
        );
    }
    ctx.emit(Evidence::Mtu(evidence(job, &path, result)));
    Ok(())
}

fn evidence(job: Job, path: &LocalPath, result: SearchResult) -> MtuEvidence {
    MtuEvidence {
        target: job.label,
        destination: job.destination,
        role: job.role,
        variant: job.variant.into(),
        interface_mtu: path.interface_mtu,
        route_mtu: path.route_mtu,
        largest_ok: result.largest_ok,
        smallest_lost: result.smallest_lost,
        frag_needed_seen: result.frag_needed_seen,
        learned_pmtu: result.learned_pmtu,
        blackhole: result.blackhole(),
        probes: result.probes,
    }
}

struct Params {
    destination: IpAddr,
    port: Option<u16>,
    plan: MtuPlan,
    interface_mtu: Option<u32>,
    configured_route_mtu: Option<u32>,
    /// A path MTU already in the kernel's route cache when the check started.
    learned_before: Option<u32>,
    connect_timeout: Duration,
    deadline: Instant,
}

impl Params {
    fn ipv6(&self) -> bool {
        self.destination.is_ipv6()
    }
    /// The largest size this host itself allows: a configured route MTU, else the interface's.
    fn local_mtu(&self) -> Option<u32> {
        self.configured_route_mtu.or(self.interface_mtu)
    }

    /// The search range. The top is the local MTU, not a cached PMTU: probing above a cached
    /// value shows whether the kernel still refuses it (EMSGSIZE) because of an earlier ICMP.
    fn bounds(&self) -> (u32, u32) {
        let max = self.plan.max_size.or(self.local_mtu()).unwrap_or(1500);
        let floor = if self.ipv6() { 1280 } else { 576 };
        let min = self.plan.min_size.unwrap_or(floor).min(max);
        (min, max)
    }
    fn wait(&self) -> Duration {
        Duration::from_millis(self.plan.wait_ms.max(1))
    }
}

/// Does the route lookup answer carry a cached exception (a learned PMTU, which expires)?
fn is_cached_exception(msg: &rtnetlink::packet_route::route::RouteMessage) -> bool {
    use rtnetlink::packet_route::route::RouteAttribute;
    msg.attributes
        .iter()
        .any(|a| matches!(a, RouteAttribute::CacheInfo(ci) if ci.expires != 0))
}

/// Can this process send ICMP echo: a raw socket, or failing that a ping socket?
fn icmp_available() -> bool {
    open_icmp(false).is_ok()
}

/// A raw ICMP socket if allowed (returns true for raw), else an unprivileged ping socket.
fn open_icmp(ipv6: bool) -> std::io::Result<(Socket, bool)> {
    let (domain, proto) = if ipv6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    match Socket::new(domain, Type::RAW, Some(proto)) {
        Ok(s) => Ok((s, true)),
        Err(_) => Socket::new(domain, Type::DGRAM, Some(proto)).map(|s| (s, false)),
    }
}

fn run_icmp(p: &Params) -> SearchResult {
    let (min, max) = p.bounds();
    let failed = |why: String| SearchResult {
        note: Some(why),
        ..Default::default()
    };
    let (sock, raw) = match open_icmp(p.ipv6()) {
        Ok(s) => s,
        Err(e) => return failed(format!("cannot open an ICMP socket: {e}")),
    };
    let setup = || -> std::io::Result<()> {
        pmtu::set_mtu_discover(&sock, p.ipv6(), PmtuMode::Do)?;
        pmtu::set_recv_errors(&sock, p.ipv6())?;
        sock.connect(&SockAddr::from(SocketAddr::new(p.destination, 0)))
    };
    if let Err(e) = setup() {
        return failed(format!("cannot prepare the ICMP socket: {e}"));
    }
    let mut prober = IcmpProber {
        sock: &sock,
        raw,
        ipv6: p.ipv6(),
        destination: p.destination,
        id: (std::process::id() & 0xffff) as u16,
        seq: 0,
        wait: p.wait(),
        deadline: p.deadline,
    };
    let mut r = search(min, max, p.local_mtu(), p.deadline, |size| {
        prober.probe(size)
    });
    // What the kernel now believes about the path (lower than the local MTU: learned).
    if let Ok(now) = pmtu::path_mtu(&sock, p.ipv6()) {
        if p.local_mtu().is_some_and(|l| now > 0 && now < l) {
            r.learned_pmtu = Some(now);
        }
    }
    r
}

struct IcmpProber<'a> {
    sock: &'a Socket,
    raw: bool,
    ipv6: bool,
    destination: IpAddr,
    id: u16,
    seq: u16,
    wait: Duration,
    deadline: Instant,
}

impl IcmpProber<'_> {
    fn ip_header(&self) -> u32 {
        if self.ipv6 {
            40
        } else {
            20
        }
    }

    fn probe(&mut self, size: u32) -> ProbeResult {
        let overhead = self.ip_header() + 8;
        if size < overhead {
            return ProbeResult::Failed(format!(
                "size {size} is below the {overhead}-byte headers"
            ));
        }
        // Errors from earlier probes would otherwise be reported by this send.
        while let Ok(Some(_)) = pmtu::read_error_queue(self.sock) {}
        self.seq = self.seq.wrapping_add(1);
        let packet = echo_request(self.ipv6, self.id, self.seq, (size - overhead) as usize);
        let t0 = Instant::now();
        match self.sock.send(&packet) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                return ProbeResult::TooBigLocally {
                    mtu: pmtu::path_mtu(self.sock, self.ipv6).ok(),
                }
            }
            // The local stack dropped the packet on its way out: a veth whose peer has a
            // smaller MTU refuses larger frames this way (NET_XMIT_DROP), as does a full
            // queue. Either way this size did not get through; a transient drop is caught by
            // the confirmation of the smallest lost size.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return ProbeResult::Lost,
            Err(e) => return ProbeResult::Failed(format!("sending ICMP echo: {e}")),
        }
        let until = (t0 + self.wait).min(self.deadline);
        let mut buf = [0u8; 65536];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return ProbeResult::Lost;
            }
            if self.sock.set_read_timeout(Some(left)).is_err() {
                return ProbeResult::Failed("cannot set a receive timeout".into());
            }
            match (&*self.sock).read(&mut buf) {
                Ok(n) => {
                    if let Some(result) = self.classify_packet(&buf[..n], t0) {
                        return result;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return ProbeResult::Lost
                }
                // A pending socket error: the ICMP error (or local error) is on the queue.
                Err(_) => {
                    if let Some(result) = self.classify_queued() {
                        return result;
                    }
                }
            }
        }
    }

    fn classify_queued(&self) -> Option<ProbeResult> {
        let e = pmtu::read_error_queue(self.sock).ok()??;
        Some(classify_error(&e))
    }

    /// An echo reply to this probe, or an ICMP error a raw socket received as a packet.
    fn classify_packet(&self, data: &[u8], t0: Instant) -> Option<ProbeResult> {
        let icmp = if self.raw && !self.ipv6 {
            let ihl = usize::from(*data.first()? & 0x0f) * 4;
            data.get(ihl..)?
        } else {
            data
        };
        let (kind, _code) = (*icmp.first()?, *icmp.get(1)?);
        let reply = if self.ipv6 { 129 } else { 0 };
        if kind == reply && icmp.len() >= 8 {
            let id = u16::from_be_bytes([icmp[4], icmp[5]]);
            let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
            // Ping sockets rewrite the id (the kernel demultiplexes by it).
            if seq == self.seq && (!self.raw || id == self.id) {
                return Some(ProbeResult::Ok {
                    rtt_ms: (t0.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0,
                });
            }
            return None;
        }
        // A raw socket also sees the ICMP error itself; the error queue carries the same.
        let too_big = if self.ipv6 {
            kind == 2
        } else {
            kind == 3 && icmp.get(1) == Some(&4)
        };
        if too_big && self.raw && self.quotes_destination(icmp) {
            let mtu = if self.ipv6 {
                u32::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?, *icmp.get(6)?, *icmp.get(7)?])
            } else {
                u32::from(u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]))
            };
            return Some(ProbeResult::FragNeeded {
                mtu: Some(mtu).filter(|m| *m > 0),
            });
        }
        None
    }

    /// Does this ICMP error quote a packet of ours to the destination?
    fn quotes_destination(&self, icmp: &[u8]) -> bool {
        match self.destination {
            IpAddr::V4(d) => icmp.get(24..28) == Some(&d.octets()[..]),
            IpAddr::V6(d) => icmp.get(32..48) == Some(&d.octets()[..]),
        }
    }
}

/// Map a socket error-queue entry onto a probe result.
fn classify_error(e: &pmtu::QueuedError) -> ProbeResult {
    let mtu = Some(e.info).filter(|m| *m > 0);
    match (e.origin, e.icmp_type, e.icmp_code) {
        (pmtu::ORIGIN_ICMP, 3, 4) | (pmtu::ORIGIN_ICMP6, 2, _) => ProbeResult::FragNeeded { mtu },
        (pmtu::ORIGIN_LOCAL, _, _) if e.errno == libc::EMSGSIZE as u32 => {
            ProbeResult::TooBigLocally { mtu }
        }
        (origin, t, c) => ProbeResult::Failed(format!(
            "ICMP error on the path (origin {origin}, type {t}, code {c}): {}",
            std::io::Error::from_raw_os_error(e.errno as i32)
        )),
    }
}

/// An ICMP(v6) echo request with `payload` bytes of data. The v4 checksum is ours to fill;
/// for ICMPv6 the kernel computes it (it covers the pseudo-header).
fn echo_request(ipv6: bool, id: u16, seq: u16, payload: usize) -> Vec<u8> {
    let mut p = vec![0u8; 8 + payload];
    p[0] = if ipv6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in p[8..].iter_mut().enumerate() {
        *b = (i & 0xff) as u8;
    }
    if !ipv6 {
        let sum = internet_checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// RFC 1071 checksum (a dozen lines; not worth a dependency).
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn run_tcp(p: &Params) -> SearchResult {
    let (min, max) = p.bounds();
    let Some(port) = p.port else {
        return SearchResult {
            note: Some("the tcp variant needs the target's port".into()),
            ..Default::default()
        };
    };
    let dest = SocketAddr::new(p.destination, port);
    search(min, max, p.local_mtu(), p.deadline, |size| {
        tcp_probe(p, dest, size)
    })
}

/// One TCP probe: a connection whose full-size segments are exactly `size` bytes on the wire,
/// one such segment sent with DF, then TCP_INFO until it is acknowledged or the wait ends.
fn tcp_probe(p: &Params, dest: SocketAddr, size: u32) -> ProbeResult {
    let headers = if p.ipv6() { 40 + 20 } else { 20 + 20 };
    // 88 bytes is the kernel's minimum MSS (TCP_MIN_MSS).
    if size < headers + 88 {
        return ProbeResult::Failed(format!("size {size} is too small for a TCP probe"));
    }
    let domain = if p.ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let sock = match Socket::new(domain, Type::STREAM, Some(Protocol::TCP)) {
        Ok(s) => s,
        Err(e) => return ProbeResult::Failed(format!("cannot open a TCP socket: {e}")),
    };
    // The MSS excludes IP and TCP headers; options (timestamps) come out of it, so a full
    // segment is exactly MSS + headers bytes.
    let setup = || -> std::io::Result<()> {
        pmtu::set_tcp_maxseg(&sock, size - headers)?;
        pmtu::set_mtu_discover(&sock, p.ipv6(), PmtuMode::Do)?;
        sock.set_tcp_nodelay(true)?;
        // Close with RST: no FIN handshake, no TIME-WAIT left behind per probe.
        sock.set_linger(Some(Duration::ZERO))
    };
    if let Err(e) = setup() {
        return ProbeResult::Failed(format!("cannot prepare the TCP socket: {e}"));
    }
    let left = p.deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return ProbeResult::Failed("deadline reached".into());
    }
    if let Err(e) = sock.connect_timeout(&SockAddr::from(dest), p.connect_timeout.min(left)) {
        return ProbeResult::Failed(format!("connect to {dest}: {e}"));
    }
    let info = match pmtu::tcp_progress(&sock) {
        Ok(i) => i,
        Err(e) => return ProbeResult::Failed(format!("TCP_INFO: {e}")),
    };
    if info.pmtu > 0 && info.pmtu < size {
        return ProbeResult::TooBigLocally {
            mtu: Some(info.pmtu),
        };
    }
    let options = if info.options & pmtu::TCPI_OPT_TIMESTAMPS != 0 {
        12
    } else {
        0
    };
    let on_wire = info.snd_mss + headers + options;
    if on_wire < size {
        return ProbeResult::Capped {
            max: on_wire,
            why: format!(
                "the peer's MSS limits segments to {on_wire} bytes; larger sizes were not tested"
            ),
        };
    }
    let payload = vec![0x5au8; info.snd_mss as usize];
    let before = info.bytes_acked;
    let t0 = Instant::now();
    if let Err(e) = (&sock).write_all(&payload) {
        return ProbeResult::Failed(format!("send to {dest}: {e}"));
    }
    let until = (t0 + p.wait()).min(p.deadline);
    loop {
        let now = match pmtu::tcp_progress(&sock) {
            Ok(i) => i,
            Err(e) => return ProbeResult::Failed(format!("TCP_INFO: {e}")),
        };
        if now.pmtu > 0 && now.pmtu < size {
            return ProbeResult::FragNeeded {
                mtu: Some(now.pmtu),
            };
        }
        if now.bytes_acked.saturating_sub(before) >= payload.len() as u64 {
            return ProbeResult::Ok {
                rtt_ms: (t0.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0,
            };
        }
        if Instant::now() >= until {
            return ProbeResult::Lost;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    /// A path that passes up to `limit` and loses the rest (no ICMP).
    fn blackhole(limit: u32) -> impl FnMut(u32) -> ProbeResult {
        move |size| {
            if size <= limit {
                ProbeResult::Ok { rtt_ms: 0.1 }
            } else {
                ProbeResult::Lost
            }
        }
    }

    #[test]
    fn finds_a_blackhole_at_the_exact_size() {
        let r = search(576, 1500, Some(1500), far(), blackhole(1280));
        assert_eq!(r.largest_ok, Some(1280));
        assert_eq!(r.smallest_lost, Some(1281));
        assert!(!r.frag_needed_seen);
        assert!(r.blackhole());
        assert!(r.probes.len() <= MAX_PROBES);
        // The decisive loss was repeated.
        assert_eq!(r.probes.iter().filter(|p| p.size == 1281).count(), 2);
    }

    #[test]
    fn a_clean_path_needs_one_probe() {
        let r = search(576, 1500, Some(1500), far(), blackhole(9000));
        assert_eq!(
            (r.largest_ok, r.smallest_lost, r.probes.len()),
            (Some(1500), None, 1)
        );
        assert!(!r.blackhole());
    }

    #[test]
    fn frag_needed_goes_to_the_named_mtu() {
        let mut learned = None;
        let r = search(576, 1500, Some(1500), far(), |size| match learned {
            Some(m) if size > m => ProbeResult::TooBigLocally { mtu: Some(m) },
            _ if size > 1280 => {
                learned = Some(1280);
                ProbeResult::FragNeeded { mtu: Some(1280) }
            }
            _ => ProbeResult::Ok { rtt_ms: 0.2 },
        });
        assert!(r.frag_needed_seen);
        assert_eq!(
            (r.largest_ok, r.learned_pmtu, r.smallest_lost),
            (Some(1280), Some(1280), None)
        );
        assert!(!r.blackhole());
        assert_eq!(r.probes.len(), 2);
    }

    #[test]
    fn nothing_passes_is_not_a_blackhole() {
        let r = search(576, 1500, Some(1500), far(), |_| ProbeResult::Lost);
        assert_eq!((r.largest_ok, r.smallest_lost), (None, Some(576)));
        assert!(!r.blackhole());
        assert_eq!(r.probes.len(), 2);
    }

    #[test]
    fn random_loss_is_not_a_blackhole() {
        let mut n = 0;
        let r = search(576, 1500, Some(1500), far(), |_| {
            n += 1;
            if n == 1 {
                ProbeResult::Lost
            } else {
                ProbeResult::Ok { rtt_ms: 1.0 }
            }
        });
        assert!(!r.blackhole(), "{r:?}");
        assert!(r.note.is_some());
    }

    #[test]
    fn checksum_of_an_echo_request_verifies() {
        let p = echo_request(false, 0x1234, 7, 33);
        assert_eq!(internet_checksum(&p), 0);
        assert_eq!(p.len(), 41);
    }

    #[test]
    fn queued_errors() {
        let e = pmtu::QueuedError {
            errno: libc::EMSGSIZE as u32,
            origin: pmtu::ORIGIN_ICMP,
            icmp_type: 3,
            icmp_code: 4,
            info: 1280,
        };
        assert_eq!(
            classify_error(&e),
            ProbeResult::FragNeeded { mtu: Some(1280) }
        );
        let local = pmtu::QueuedError {
            origin: pmtu::ORIGIN_LOCAL,
            ..e
        };
        assert_eq!(
            classify_error(&local),
            ProbeResult::TooBigLocally { mtu: Some(1280) }
        );
    }
}
