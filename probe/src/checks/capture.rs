//! Check `capture`: a bounded packet capture alongside the traffic checks (AF_PACKET, cooked,
//! in-kernel classic BPF filter), reported as a per-flow summary plus the packets as a pcap
//! stream (`pcap_chunk` events).
//!
//! Filter: the user's tcpdump-style expression, or by default the traffic to and from the
//! plan's targets (their addresses, and their ports when they have one), DNS to the
//! resolv.conf nameservers, and ICMP errors (which can come from any router on the path).
//! Target names are resolved once the socket is capturing, so their DNS queries are in the
//! capture; until they resolve the filter takes any host on the target's port, then it is
//! replaced by one naming the addresses they resolved to.
//!
//! The socket is opened with the filter already attached and only then bound; the traffic
//! checks start once it is bound (`mark_capture_ready`), or at once when the capture cannot
//! run. Kernel drops (PACKET_STATISTICS) are reported in the summary and in a note.
//!
//! Duration: at most `max_duration_ms`, and never past the run's deadline. When the plan also
//! runs traffic checks (dns, tcp, mtu) and `stop_after_traffic` is on (the default), the
//! capture ends `LINGER` after they have all finished: late answers and retransmissions still
//! land, and a run does not sit out the whole duration once there is nothing more to see. A
//! plan with an explicit duration the user wants honoured sets `stop_after_traffic: false`.
//!
//! A peer (protocol minor 4) captures by default the TCP between its sources and its ports,
//! both directions, and ICMP errors. It has no traffic checks to follow: its capture ends at
//! the client's `stop` (with the plan's `control`; a closed channel counts), its duration, or
//! the deadline.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::{Capability, CapturePlan, CaptureSummary, CheckKind, Evidence, PeerPlan, Target};

use super::Outcome;
use crate::capture::{self, compile, filter, Capture, Limits, OpenError, StopRequest};
use crate::context::Ctx;

/// How long the capture goes on after the traffic checks finished, unless the plan says.
const LINGER: Duration = Duration::from_millis(300);
/// ICMP errors (unreachable, frag-needed, time exceeded; ICMPv6 types below 128), which
/// come from routers as well as from the targets.
const ICMP_ERRORS_V4: &str =
    "(icmp and icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply)";
const ICMP_ERRORS_V6: &str = "(icmp6 and ip6[40] < 128)";
/// The last-resort default filter.
const COARSEST: &str = "tcp or port 53 or (icmp and icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply) or (icmp6 and ip6[40] < 128)";
/// Time kept before the run's deadline to emit the summary.
const SUMMARY_MARGIN: Duration = Duration::from_millis(250);

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let outcome = capture(&ctx).await;
    // Whatever happened, the traffic checks must not wait for a capture that is not coming.
    ctx.mark_capture_ready(false);
    ctx.mark_capture_ended();
    outcome
}

async fn capture(ctx: &Arc<Ctx>) -> Outcome {
    let plan = ctx.plan.capture.clone().unwrap_or_default();
    if !ctx.privileges.has(Capability::NetRaw) {
        return Outcome::skipped_for_capability(
            Capability::NetRaw,
            "capture needs CAP_NET_RAW for an AF_PACKET socket; the probe runs without it",
        );
    }
    let interface = plan.interface.clone().unwrap_or_else(|| "any".to_string());
    let ifindex = match interface_index(&interface) {
        Ok(i) => i,
        Err(outcome) => return outcome,
    };
    let mut notes = Vec::new();
    // Target names are resolved after the socket is open (so their DNS queries are captured);
    // the filter is then replaced by one with their addresses.
    let names: Vec<&Target> = match (&plan.filter, &ctx.plan.peer) {
        (Some(_), _) | (None, Some(_)) => Vec::new(),
        (None, None) => ctx
            .plan
            .targets
            .iter()
            .filter(|t| t.host.parse::<IpAddr>().is_err())
            .collect(),
    };
    let (capture, mut expression) = match open(ctx, &plan, ifindex) {
        Ok(opened) => opened,
        Err(outcome) => return outcome,
    };
    if plan.filter.is_none() {
        note_fallback(ctx, &expression, &mut notes);
    }
    ctx.mark_capture_ready(true);

    let now = std::time::Instant::now();
    let duration = Duration::from_millis(plan.max_duration_ms);
    let limits = Limits {
        snaplen: plan.snaplen,
        max_packets: plan.max_packets,
        max_bytes: plan.max_bytes,
        duration_end: now + duration,
        deadline_end: now + ctx.remaining().saturating_sub(SUMMARY_MARGIN),
        pcap: plan.pcap,
    };
    let stop = Arc::new(StopRequest::default());
    let emitter = ctx.emitter().clone();
    let filter_handle = capture.filter_handle();
    let reader = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || capture::run(capture, limits, stop, emitter))
    };
    if !names.is_empty() {
        let limit = duration.min(ctx.remaining().saturating_sub(SUMMARY_MARGIN));
        let resolved = resolve_names(ctx, &names, limit, &mut notes).await;
        if let Some(e) = retarget(ctx, &resolved, &filter_handle, plan.snaplen, &mut notes) {
            expression = e;
        }
    }
    drop(filter_handle);
    if ctx.plan.peer.is_some() {
        stop_at_the_clients_word(ctx, &stop);
    } else if plan.stop_after_traffic {
        stop_after_traffic(ctx, &stop);
    }
    let captured = match reader.await {
        Ok(Ok(c)) => c,
        Ok(Err(message)) => return Outcome::Failed(message),
        Err(e) => return Outcome::Failed(format!("the capture thread failed: {e}")),
    };
    if captured.kernel_drops > 0 {
        notes.push(format!(
            "the kernel dropped {} packets the probe did not read in time; the summary and the pcap miss them",
            captured.kernel_drops
        ));
    }
    notes.extend(captured.kernel_error);
    let mut summary_notes = captured.summary.notes;
    notes.append(&mut summary_notes);
    ctx.emit(Evidence::CaptureSummary(CaptureSummary {
        interface,
        filter: expression,
        snaplen: plan.snaplen,
        packets_captured: captured.packets,
        bytes_captured: captured.bytes,
        kernel_drops: captured.kernel_drops,
        stopped_by: captured.stopped_by.into(),
        tcp_flows: captured.summary.tcp_flows,
        icmp_errors: captured.summary.icmp_errors,
        dns: captured.summary.dns,
        kernel_received: captured.kernel_received,
        notes,
    }));
    Outcome::Completed
}

/// The capture socket with the first filter (the plan's, or a default candidate) the kernel
/// accepts, and that filter's expression.
fn open(ctx: &Ctx, plan: &CapturePlan, ifindex: u32) -> Result<(Capture, String), Outcome> {
    let candidates = match &plan.filter {
        Some(f) => build(f, plan.snaplen).map(|p| vec![(f.clone(), p)]),
        None => default_candidates(ctx, None, plan.snaplen),
    }
    .map_err(Outcome::Failed)?;
    let programs: Vec<_> = candidates.iter().map(|(_, p)| p.clone()).collect();
    match Capture::open(&programs, ifindex) {
        Ok((capture, chosen)) => Ok((capture, candidates[chosen].0.clone())),
        Err(OpenError::NotPermitted(e)) => Err(Outcome::skipped_for_capability(
            Capability::NetRaw,
            format!("the kernel refused an AF_PACKET socket ({e}): capture needs CAP_NET_RAW"),
        )),
        Err(e) => Err(Outcome::Failed(e.to_string())),
    }
}

/// The index of the interface to capture on (0 for `any`).
fn interface_index(interface: &str) -> Result<u32, Outcome> {
    if interface == "any" {
        return Ok(0);
    }
    nix::net::if_::if_nametoindex(interface).map_err(|_| {
        Outcome::Failed(format!(
            "capture: interface `{interface}` does not exist in this network namespace"
        ))
    })
}

/// Replace the filter with one naming the addresses the targets resolved to; returns its
/// expression, or None (with a note) when the filter could not be replaced.
fn retarget(
    ctx: &Ctx,
    resolved: &HashMap<String, Vec<IpAddr>>,
    filter_handle: &capture::FilterHandle,
    snaplen: u32,
    notes: &mut Vec<String>,
) -> Option<String> {
    let replaced = default_candidates(ctx, Some(resolved), snaplen).and_then(|c| {
        let programs: Vec<_> = c.iter().map(|(_, p)| p.clone()).collect();
        filter_handle.replace(&programs).map(|i| c[i].0.clone())
    });
    match replaced {
        Ok(resolved_expression) => {
            note_fallback(ctx, &resolved_expression, notes);
            Some(resolved_expression)
        }
        Err(why) => {
            notes.push(format!(
                "the filter could not be set to the resolved targets: {why}"
            ));
            None
        }
    }
}

/// When the plan runs traffic checks, stop the capture `LINGER` after they have all finished.
fn stop_after_traffic(ctx: &Arc<Ctx>, stop: &Arc<StopRequest>) {
    let follows_traffic = ctx
        .plan
        .effective_checks()
        .into_iter()
        .any(|k| k != CheckKind::Capture && k.info().generates_traffic);
    if follows_traffic {
        let ctx = ctx.clone();
        let stop = stop.clone();
        let linger = ctx
            .plan
            .capture
            .as_ref()
            .and_then(|c| c.linger_ms)
            .map_or(LINGER, Duration::from_millis);
        tokio::spawn(async move {
            ctx.wait_traffic_done().await;
            tokio::time::sleep(linger.min(ctx.remaining())).await;
            stop.traffic_done();
        });
    }
}

/// A paced peer: stop at the client's `stop` (or when its channel closes). The task ends with
/// the runtime when no word comes; the capture's own limits end the capture then.
fn stop_at_the_clients_word(ctx: &Arc<Ctx>, stop: &Arc<StopRequest>) {
    let Some(control) = ctx.control.clone() else {
        return;
    };
    let stop = stop.clone();
    tokio::spawn(async move {
        control.stop().await;
        stop.stopped();
    });
}

/// Parse and compile; the program keeps `snaplen` bytes of each packet (the receive ring
/// still records each packet's length on the wire).
fn build(expression: &str, snaplen: u32) -> Result<Vec<capture::bpf::Insn>, String> {
    let expr = filter::parse(expression).map_err(|e| e.to_string())?;
    compile::compile(&expr, snaplen).map_err(|e| e.to_string())
}

/// The default filter and its fallbacks, in order, compiled: per address; every host on the
/// targets' ports; all TCP. Many targets can make a program longer than the kernel takes
/// (4096 instructions, or the socket's net.core.optmem_max): the capture then uses the first
/// one that fits, and says so.
fn default_candidates(
    ctx: &Ctx,
    resolved: Option<&HashMap<String, Vec<IpAddr>>>,
    snaplen: u32,
) -> Result<Vec<(String, Vec<capture::bpf::Insn>)>, String> {
    let expressions = match &ctx.plan.peer {
        Some(peer) => vec![peer_filter(peer), COARSEST.to_string()],
        None => vec![
            default_filter(ctx, resolved),
            coarse_filter(ctx),
            COARSEST.to_string(),
        ],
    };
    let mut out: Vec<(String, Vec<capture::bpf::Insn>)> = Vec::new();
    let mut first_error = None;
    for e in expressions {
        if out.iter().any(|(x, _)| *x == e) {
            continue;
        }
        match build(&e, snaplen) {
            Ok(p) => out.push((e, p)),
            Err(why) => {
                first_error.get_or_insert(why);
            }
        }
    }
    if out.is_empty() {
        return Err(first_error.unwrap_or_else(|| "no default filter".to_string()));
    }
    Ok(out)
}

/// Say so when the default filter in use is a fallback.
fn note_fallback(ctx: &Ctx, expression: &str, notes: &mut Vec<String>) {
    if let Some(peer) = &ctx.plan.peer {
        if expression == COARSEST {
            notes.push(format!(
                "a filter naming each of the peer's {} sources is too large for the kernel; capturing all TCP, DNS and ICMP errors instead",
                peer.sources.len()
            ));
        }
        return;
    }
    let what = if expression == COARSEST {
        "all TCP, DNS and ICMP errors"
    } else if expression == coarse_filter(ctx) {
        "every host on the targets' ports"
    } else {
        return;
    };
    let note = format!(
        "a filter naming each of the {} targets is too large for the kernel; capturing {what} instead",
        ctx.plan.targets.len()
    );
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// The targets' ports (any host), DNS to the nameservers, ICMP errors.
fn coarse_filter(ctx: &Ctx) -> String {
    let mut clauses: Vec<String> = Vec::new();
    for port in ctx.plan.targets.iter().filter_map(|t| t.port) {
        let clause = format!("tcp port {port}");
        if !clauses.contains(&clause) {
            clauses.push(clause);
        }
    }
    for ns in &ctx.resolver_evidence().nameservers {
        clauses.push(format!("(host {} and port 53)", filter::addr_text(*ns)));
    }
    clauses.push(ICMP_ERRORS_V4.to_string());
    clauses.push(ICMP_ERRORS_V6.to_string());
    clauses.join(" or ")
}

/// A peer's default: TCP between any of its sources and any of its local ports (either
/// direction: `port` matches source or destination), and ICMP errors.
fn peer_filter(peer: &PeerPlan) -> String {
    let hosts: Vec<String> = peer
        .sources
        .iter()
        .map(|ip| format!("host {}", filter::addr_text(*ip)))
        .collect();
    let ports: Vec<String> = peer.ports.iter().map(|p| format!("port {p}")).collect();
    format!(
        "(tcp and ({}) and ({})) or {ICMP_ERRORS_V4} or {ICMP_ERRORS_V6}",
        hosts.join(" or "),
        ports.join(" or ")
    )
}

/// Resolve the name targets (each once, concurrently), within `limit`.
async fn resolve_names(
    ctx: &Ctx,
    names: &[&Target],
    limit: Duration,
    notes: &mut Vec<String>,
) -> HashMap<String, Vec<IpAddr>> {
    let lookups = names
        .iter()
        .map(|t| async move { (*t, tokio::time::timeout(limit, ctx.resolve_target(t)).await) });
    let mut resolved = HashMap::new();
    for (target, result) in futures::future::join_all(lookups).await {
        match result {
            Ok(Ok(addresses)) => {
                resolved.insert(target.host.clone(), addresses);
            }
            Ok(Err(why)) => notes.push(format!(
                "target {} left out of the filter: {why}",
                target.label
            )),
            Err(_) => notes.push(format!(
                "target {} left out of the filter: `{}` did not resolve within {} ms",
                target.label,
                target.host,
                limit.as_millis()
            )),
        }
    }
    resolved
}

/// The targets' traffic, DNS to the nameservers, and ICMP errors, as a filter expression, so
/// the evidence shows exactly what was captured. Name targets: their addresses once
/// `resolved`; before that (None), any host on their port, so a connect that follows the
/// lookup at once is not missed while the filter is being widened.
fn default_filter(ctx: &Ctx, resolved: Option<&HashMap<String, Vec<IpAddr>>>) -> String {
    let mut clauses: Vec<String> = Vec::new();
    let mut push = |clause: String| {
        if !clauses.contains(&clause) {
            clauses.push(clause);
        }
    };
    // Targets grouped by port, so a Service with many endpoints on one targetPort costs one
    // port test and an address test per endpoint (the kernel takes 4096 instructions at most).
    let mut by_port: Vec<(Option<u16>, Vec<String>)> = Vec::new();
    for target in &ctx.plan.targets {
        let addresses = match (target.host.parse::<IpAddr>(), resolved) {
            (Ok(ip), _) => vec![ip],
            (Err(_), Some(resolved)) => resolved.get(&target.host).cloned().unwrap_or_default(),
            (Err(_), None) => {
                if let Some(port) = target.port {
                    push(format!("tcp port {port}"));
                }
                continue;
            }
        };
        let group = match by_port.iter_mut().find(|(p, _)| *p == target.port) {
            Some(g) => g,
            None => {
                by_port.push((target.port, Vec::new()));
                by_port.last_mut().expect("just pushed")
            }
        };
        for addr in addresses {
            // With a port the packet is IP anyway: `ip host` skips libpcap's ARP alternative.
            let host = match (target.port, addr) {
                (None, _) => format!("host {}", filter::addr_text(addr)),
                (Some(_), IpAddr::V4(_)) => format!("ip host {}", filter::addr_text(addr)),
                (Some(_), IpAddr::V6(_)) => format!("ip6 host {}", filter::addr_text(addr)),
            };
            if !group.1.contains(&host) {
                group.1.push(host);
            }
        }
    }
    for (port, hosts) in by_port.into_iter().filter(|(_, h)| !h.is_empty()) {
        match port {
            Some(port) if hosts.len() == 1 => push(format!("({} and tcp port {port})", hosts[0])),
            Some(port) => push(format!("(tcp port {port} and ({}))", hosts.join(" or "))),
            None => hosts.into_iter().for_each(&mut push),
        }
    }
    for ns in &ctx.resolver_evidence().nameservers {
        push(format!("(host {} and port 53)", filter::addr_text(*ns)));
    }
    push(ICMP_ERRORS_V4.to_string());
    push(ICMP_ERRORS_V6.to_string());
    clauses.join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_filter_takes_its_sources_tcp_on_its_ports_and_compiles() {
        let peer = PeerPlan {
            sources: vec![
                "10.199.1.2".parse().unwrap(),
                "fd00:199::2".parse().unwrap(),
            ],
            ports: vec![8080, 8443],
        };
        let expression = peer_filter(&peer);
        assert_eq!(
            expression,
            format!(
                "(tcp and (host 10.199.1.2 or host fd00:199::2) and (port 8080 or port 8443)) \
                 or {ICMP_ERRORS_V4} or {ICMP_ERRORS_V6}"
            )
        );
        assert!(build(&expression, 262_144).is_ok());
    }
}
