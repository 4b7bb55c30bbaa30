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

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protocol::{CaptureSummary, CheckKind, Evidence, Target};

use super::Outcome;
use crate::capture::{self, compile, filter, Capture, Limits, OpenError};
use crate::context::Ctx;

/// What the filter returns for a matching packet: keep it whole. A filter that returned the
/// snap length would make the kernel trim the packet, and recvmsg could no longer tell its
/// original length; the reader keeps `snaplen` bytes instead (as libpcap does without a ring).
const KERNEL_ACCEPT: u32 = 262_144;
/// How long the capture goes on after the traffic checks finished.
const LINGER: Duration = Duration::from_millis(300);
/// Time kept before the run's deadline to emit the summary.
const SUMMARY_MARGIN: Duration = Duration::from_millis(250);

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let outcome = capture(&ctx).await;
    // Whatever happened, the traffic checks must not wait for a capture that is not coming.
    ctx.mark_capture_ready();
    outcome
}

async fn capture(ctx: &Arc<Ctx>) -> Outcome {
    let plan = ctx.plan.capture.clone().unwrap_or_default();
    if !ctx.privileges.has("net_raw") {
        return Outcome::skipped_for_capability(
            "net_raw",
            "capture needs CAP_NET_RAW for an AF_PACKET socket; the probe runs without it",
        );
    }
    let interface = plan.interface.clone().unwrap_or_else(|| "any".to_string());
    let ifindex = if interface == "any" {
        0
    } else {
        match nix::net::if_::if_nametoindex(interface.as_str()) {
            Ok(i) => i,
            Err(_) => {
                return Outcome::Failed(format!(
                    "capture: interface `{interface}` does not exist in this network namespace"
                ))
            }
        }
    };
    let mut notes = Vec::new();
    // Target names are resolved after the socket is open (so their DNS queries are captured),
    // then the filter is widened to their addresses.
    let names: Vec<&Target> = match plan.filter {
        Some(_) => Vec::new(),
        None => ctx
            .plan
            .targets
            .iter()
            .filter(|t| t.host.parse::<IpAddr>().is_err())
            .collect(),
    };
    let mut expression = match &plan.filter {
        Some(f) => f.clone(),
        None => default_filter(ctx, None),
    };
    let program = match build(&expression) {
        Ok(p) => p,
        Err(message) => return Outcome::Failed(message),
    };
    let opened = Capture::open(&program, ifindex);
    let capture = match opened {
        Ok(c) => c,
        Err(OpenError::NotPermitted(e)) => {
            return Outcome::skipped_for_capability(
                "net_raw",
                format!("the kernel refused an AF_PACKET socket ({e}): capture needs CAP_NET_RAW"),
            )
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    ctx.mark_capture_ready();

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
    let stop = Arc::new(AtomicBool::new(false));
    let emitter = ctx.emitter().clone();
    let filter_handle = capture.filter_handle();
    let reader = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || capture::run(capture, limits, stop, emitter))
    };
    if !names.is_empty() {
        let limit = duration.min(ctx.remaining().saturating_sub(SUMMARY_MARGIN));
        let resolved = resolve_names(ctx, &names, limit, &mut notes).await;
        let resolved_filter = default_filter(ctx, Some(&resolved));
        match build(&resolved_filter).and_then(|p| filter_handle.replace(&p)) {
            Ok(()) => expression = resolved_filter,
            Err(why) => notes.push(format!(
                "the filter could not be set to the resolved targets: {why}"
            )),
        }
    }
    drop(filter_handle);
    let follows_traffic = plan.stop_after_traffic
        && ctx
            .plan
            .effective_checks()
            .into_iter()
            .any(|k| k != CheckKind::Capture && super::generates_traffic(k));
    if follows_traffic {
        let ctx = ctx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            ctx.wait_traffic_done().await;
            tokio::time::sleep(LINGER.min(ctx.remaining())).await;
            stop.store(true, Ordering::Relaxed);
        });
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
    let mut summary_notes = captured.summary.notes;
    notes.append(&mut summary_notes);
    ctx.emit(Evidence::CaptureSummary(CaptureSummary {
        interface,
        filter: expression,
        snaplen: plan.snaplen,
        packets_captured: captured.packets,
        bytes_captured: captured.bytes,
        kernel_drops: captured.kernel_drops,
        stopped_by: captured.stopped_by.to_string(),
        tcp_flows: captured.summary.tcp_flows,
        icmp_errors: captured.summary.icmp_errors,
        dns: captured.summary.dns,
        kernel_received: Some(captured.kernel_received),
        notes,
    }));
    Outcome::Completed
}

fn build(expression: &str) -> Result<Vec<capture::bpf::Insn>, String> {
    let expr = filter::parse(expression).map_err(|e| e.to_string())?;
    compile::compile(&expr, KERNEL_ACCEPT).map_err(|e| e.to_string())
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
        for addr in addresses {
            let host = filter::addr_text(addr);
            push(match target.port {
                Some(port) => format!("(host {host} and tcp port {port})"),
                None => format!("host {host}"),
            });
        }
    }
    for ns in &ctx.resolver_evidence().nameservers {
        push(format!("(host {} and port 53)", filter::addr_text(*ns)));
    }
    // ICMP errors (unreachable, frag-needed, time exceeded; IPv6 types below 128) come from
    // routers as well as from the targets.
    push("(icmp and icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply)".to_string());
    push("(icmp6 and ip6[40] < 128)".to_string());
    clauses.join(" or ")
}
