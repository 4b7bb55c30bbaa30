//! Transport: refused (no listener; listener bound to loopback only), timeout (silent drop;
//! NetworkPolicy predicted to deny; firewall), rejected (ICMP / EPERM), EADDRNOTAVAIL with
//! TIME-WAIT near the port range, CLOSE-WAIT accumulation, listen queue overflows,
//! retransmissions.

use std::net::IpAddr;

use protocol::{
    is_loopback_only, CaptureSummary, Counter, CountersEvidence, Handshake, RouteEvidence,
    RouteOutcome, RouteType, SocketState, SocketsEvidence, TcpEvidence, TcpOutcome,
};

use crate::facts::{ms, plural, Facts};
use crate::kube::KubeFindingCode;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::rules::{list, Report};

/// CLOSE-WAIT sockets toward one peer from which we call it accumulation (a handful is a
/// moment in a normal close; dozens mean the application never calls close()).
pub const CLOSE_WAIT_WORTH_REPORTING: u64 = 8;
/// TIME-WAIT as a fraction of the ephemeral port range that is "near the range".
pub const TIME_WAIT_NEAR_RANGE: f64 = 0.8;
/// Retransmitted segments (delta over the run) and their share of sent segments that
/// suggest loss rather than noise: a healthy data-centre path retransmits well under 0.1%.
pub const RETRANS_MIN: u64 = 10;
pub const RETRANS_RATIO: f64 = 0.001;

/// `timeout 3.0 s`, `refused`, `ok 1.2 ms`.
pub fn outcome_words(t: &TcpEvidence) -> String {
    let Some(outcome) = t.outcome.known() else {
        // A newer probe's outcome: its own word, and the message if there is one.
        return format!(
            "{}{}",
            t.outcome,
            t.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    };
    match outcome {
        TcpOutcome::Ok => format!("ok {}", ms(t.latency_ms)),
        TcpOutcome::Refused => "refused".into(),
        TcpOutcome::Timeout => format!("timed out after {}", ms(t.latency_ms)),
        TcpOutcome::HostUnreachable => "host unreachable (ICMP)".into(),
        TcpOutcome::NetworkUnreachable => "network unreachable".into(),
        TcpOutcome::AddressNotAvailable => "EADDRNOTAVAIL".into(),
        TcpOutcome::PermissionDenied => "EPERM (blocked locally)".into(),
        TcpOutcome::Unresolved => "unresolved".into(),
        TcpOutcome::Error => format!("error {}", t.message.as_deref().unwrap_or("(no message)")),
    }
}

/// Short form for evidence lines (`timeout 3.0 s`).
fn short_words(t: &TcpEvidence) -> String {
    match t.outcome.known() {
        Some(TcpOutcome::Timeout) => format!("timeout {}", ms(t.latency_ms)),
        _ => outcome_words(t),
    }
}

pub fn apply(f: &Facts, r: &mut Report) {
    connects(f, r);
    time_wait(f, r);
    close_wait(f, r);
    listen_queue(f, r);
    retransmissions(f, r);
    socket_health(f, r);
    capture_overview(f, r);
}

/// What each capture saw, in one line: packets, handshakes, DNS, kernel drops. Proof when
/// everything it saw was answered; context otherwise (the failing rules say what went wrong).
fn capture_overview(f: &Facts, r: &mut Report) {
    for c in f.all::<CaptureSummary>() {
        let flows = c.tcp_flows.len();
        let answered = c
            .tcp_flows
            .iter()
            .filter(|fl| fl.handshake == Handshake::Established)
            .count();
        let dns_answered = c.dns.iter().filter(|d| d.rcode.is_some()).count();
        let mut parts = vec![format!(
            "capture on {}: {} ({})",
            c.interface,
            plural(c.packets_captured, "packet", "packets"),
            if c.snaplen <= 256 {
                "headers only"
            } else {
                "full packets"
            }
        )];
        if flows > 0 {
            parts.push(format!(
                "{answered}/{} answered by SYN-ACK",
                plural(flows as u64, "TCP handshake", "TCP handshakes")
            ));
        }
        if !c.dns.is_empty() {
            parts.push(format!(
                "{dns_answered}/{} answered",
                plural(c.dns.len() as u64, "DNS query", "DNS queries")
            ));
        }
        if !c.icmp_errors.is_empty() {
            parts.push(plural(
                c.icmp_errors.iter().map(|e| e.count as u64).sum(),
                "ICMP error",
                "ICMP errors",
            ));
        }
        parts.push(format!("kernel drops {}", c.kernel_drops));
        let text = parts.join(", ");
        let clean = answered == flows
            && dns_answered == c.dns.len()
            && c.icmp_errors.is_empty()
            && c.kernel_drops == 0;
        if clean {
            r.ok(Layer::Transport, text);
        } else {
            r.info(Layer::Transport, text);
        }
    }
}

/// When no socket or counter rule fired, what the socket table and counters proved.
fn socket_health(f: &Facts, r: &mut Report) {
    let socket_rules = [
        RuleCode::EphemeralPortExhaustion,
        RuleCode::CloseWaitAccumulation,
        RuleCode::ListenQueueOverflow,
    ];
    if let Some(s) = f.one::<SocketsEvidence>() {
        if !socket_rules.iter().any(|rule| r.has(*rule)) {
            let states: Vec<String> = s.states.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let tw = s
                .time_wait_ratio
                .map(|x| format!("TIME-WAIT {:.0}% of ports", x * 100.0))
                .unwrap_or_else(|| "TIME-WAIT ratio unknown".into());
            r.ok(
                Layer::State,
                format!(
                    "{} sockets{}: no CLOSE-WAIT build-up, {tw}, no full accept queue",
                    s.total,
                    if states.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", states.join(", "))
                    }
                ),
            );
        }
    }
    if let Some(c) = f.one::<CountersEvidence>() {
        if !r.has(RuleCode::TcpRetransmissions) && !r.has(RuleCode::ListenQueueOverflow) {
            let d = |k: Counter| f.counter_delta(k).unwrap_or(0);
            r.ok(
                Layer::Transport,
                format!(
                    "counters over {}: retransmitted segments +{} of +{}, listen overflows +{}",
                    ms(c.interval_ms),
                    d(Counter::TcpRetransSegs),
                    d(Counter::TcpOutSegs),
                    d(Counter::ListenOverflows)
                ),
            );
        }
    }
}

fn connects(f: &Facts, r: &mut Report) {
    let ok: Vec<&TcpEvidence> = f
        .all::<TcpEvidence>()
        .filter(|t| t.outcome == TcpOutcome::Ok)
        .collect();
    if !ok.is_empty() {
        let parts: Vec<String> = ok
            .iter()
            .map(|t| format!("{} connected {}", t.address, ms(t.latency_ms)))
            .collect();
        r.ok(Layer::Transport, list(&parts, 4));
    }
    let failing: Vec<&TcpEvidence> = f
        .all::<TcpEvidence>()
        .filter(|t| t.outcome != TcpOutcome::Ok && !r.explained.contains(&t.address))
        .collect();
    // A route rule already explained an unreachable network for these.
    let network_explains = r.has_failure_in(Layer::Network);

    let of = |o: TcpOutcome| -> Vec<&TcpEvidence> {
        failing.iter().copied().filter(|t| t.outcome == o).collect()
    };

    let refused = of(TcpOutcome::Refused);
    if !refused.is_empty() {
        refused_rules(f, &refused, r);
    }
    let timeouts = of(TcpOutcome::Timeout);
    if !timeouts.is_empty() {
        timeout_rules(f, &timeouts, r);
    }
    let mut rejected = of(TcpOutcome::HostUnreachable);
    rejected.extend(of(TcpOutcome::PermissionDenied));
    if !network_explains {
        rejected.extend(of(TcpOutcome::NetworkUnreachable));
    }
    if !rejected.is_empty() {
        let words: Vec<String> = rejected
            .iter()
            .map(|t| format!("{} {}", t.address, short_words(t)))
            .collect();
        let local = rejected
            .iter()
            .any(|t| t.outcome == TcpOutcome::PermissionDenied);
        let t0 = rejected[0];
        r.finding(
            RuleCode::TcpRejected,
            Layer::Transport,
            Severity::Failure,
            "L4 rejected",
            if local {
                format!(
                    "connect to {} was refused locally with EPERM: a firewall rule (iptables/nft \
                     OUTPUT) or LSM in the source's namespace blocks it",
                    t0.address
                )
            } else {
                format!(
                    "connect to {} got {} in {}: a router or firewall on the path rejects it \
                     (REJECT with an ICMP error)",
                    t0.address,
                    short_words(t0),
                    ms(t0.latency_ms)
                )
            },
        )
        .line(list(&words, 3))
        .next(if local {
            "iptables -S OUTPUT; nft list ruleset   # in the source's network namespace".to_string()
        } else {
            format!(
                "ip route get {}; traceroute -T -p {} {}",
                t0.address.ip(),
                t0.address.port(),
                t0.address.ip()
            )
        })
        .add();
    }
    let errors = of(TcpOutcome::Error);
    if !errors.is_empty() {
        let words: Vec<String> = errors
            .iter()
            .map(|t| {
                format!(
                    "{} errno {} {}",
                    t.address,
                    t.errno.map(|e| e.to_string()).unwrap_or_else(|| "?".into()),
                    t.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        r.finding(
            RuleCode::TcpError,
            Layer::Transport,
            Severity::Failure,
            "L4 error",
            format!("connect failed: {}", words[0].trim()),
        )
        .line(list(&words, 3))
        .add();
    }
    let eaddr = of(TcpOutcome::AddressNotAvailable);
    if !eaddr.is_empty() {
        exhaustion(f, &eaddr, r);
    }
}

fn refused_rules(f: &Facts, refused: &[&TcpEvidence], r: &mut Report) {
    let listeners = f
        .one::<SocketsEvidence>()
        .map(|s| s.listeners.as_slice())
        .unwrap_or(&[]);
    for t in refused {
        let port = t.address.port();
        let loopback_listener = listeners
            .iter()
            .find(|l| l.local.port() == port && is_loopback_only(&l.local));
        let target_is_loopback = is_loopback_only(&t.address);
        if let (Some(l), false) = (loopback_listener, target_is_loopback) {
            r.finding(
                RuleCode::TcpListenerLoopbackOnly,
                Layer::Transport,
                Severity::Failure,
                "listener on loopback only",
                format!(
                    "{} refused: the listener for port {port} is bound to {} and only accepts \
                     connections from inside its own network namespace",
                    t.address, l.local
                ),
            )
            .line(format!("{} refused ({})", t.address, ms(t.latency_ms)))
            .line(format!(
                "listening on {} only (not 0.0.0.0 or {})",
                l.local,
                t.address.ip()
            ))
            .next(format!(
                "make the server bind 0.0.0.0:{port} (or {}), e.g. --bind/--host/listen option",
                t.address
            ))
            .next(format!(
                "ss -ltnp 'sport = :{port}'   # where the server runs"
            ))
            .add();
            r.explained.insert(t.address);
        }
    }
    let rest: Vec<&&TcpEvidence> = refused
        .iter()
        .filter(|t| !r.explained.contains(&t.address))
        .collect();
    if rest.is_empty() {
        return;
    }
    let words: Vec<String> = rest
        .iter()
        .map(|t| format!("{} refused ({})", t.address, ms(t.latency_ms)))
        .collect();
    let port_note = f
        .kube
        .and_then(|k| {
            k.findings
                .iter()
                .find(|x| x.code == KubeFindingCode::TargetPortNotExposed)
        })
        .map(|_| " (the targetPort is not exposed, see Service)")
        .unwrap_or("");
    let t0 = rest[0];
    r.finding(
        RuleCode::TcpRefusedNoListener,
        Layer::Transport,
        Severity::Failure,
        "L4 refused",
        format!(
            "{} answered with RST in {}: the host is reachable but nothing listens on port {}{port_note} \
             (or a REJECT --reject-with tcp-reset rule)",
            t0.address,
            ms(t0.latency_ms),
            t0.address.port()
        ),
    )
    .line(list(&words, 3))
    .next(format!(
        "ss -ltn 'sport = :{}'   # on the destination, e.g. kubectl netdebug DEST --sockets",
        t0.address.port()
    ))
    .add();
}

/// Connects that timed out toward a listener in this very namespace while the kernel
/// counted listen-queue overflows: the full accept queue dropped their SYNs.
fn overflow_timeouts<'a>(f: &Facts<'a>) -> Vec<&'a TcpEvidence> {
    let overflows = f.counter_delta(Counter::ListenOverflows).unwrap_or(0)
        + f.counter_delta(Counter::ListenDrops).unwrap_or(0);
    if overflows == 0 {
        return Vec::new();
    }
    f.all::<TcpEvidence>()
        .filter(|t| t.outcome == TcpOutcome::Timeout)
        .filter(|t| {
            f.all::<RouteEvidence>().any(|r| {
                r.destination == t.address.ip()
                    && matches!(&r.outcome, RouteOutcome::Found(i) if i.route_type == RouteType::Local)
            }) || f.one::<SocketsEvidence>().is_some_and(|s| {
                s.listeners
                    .iter()
                    .any(|l| l.local.port() == t.address.port())
            })
        })
        .collect()
}

fn timeout_rules(f: &Facts, timeouts: &[&TcpEvidence], r: &mut Report) {
    let by_overflow = overflow_timeouts(f);
    let timeouts: Vec<&TcpEvidence> = timeouts
        .iter()
        .copied()
        .filter(|t| !by_overflow.iter().any(|o| o.address == t.address))
        .collect();
    if timeouts.is_empty() {
        return;
    }
    let words: Vec<String> = timeouts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i == 0 {
                format!("{} {}", t.address, short_words(t))
            } else {
                format!("{} timeout", t.address)
            }
        })
        .collect();
    let t0 = timeouts[0];
    // What a capture saw about these flows.
    let mut capture_lines = Vec::new();
    for c in f.all::<CaptureSummary>() {
        for flow in &c.tcp_flows {
            if timeouts.iter().any(|t| t.address == flow.server)
                && flow.handshake == Handshake::Unanswered
            {
                capture_lines.push(format!(
                    "capture: {} SYN{} to {}, no SYN-ACK, no RST, no ICMP",
                    flow.syn_count,
                    if flow.syn_count == 1 { "" } else { "s" },
                    flow.server
                ));
            }
        }
    }
    let deny = f.kube.and_then(|k| {
        k.findings
            .iter()
            .find(|x| x.code == KubeFindingCode::NetworkPolicyDenies)
    });
    if let Some(p) = deny {
        let policy = p
            .details
            .get("policy")
            .cloned()
            .unwrap_or_else(|| p.object.clone());
        let ns = p.details.get("namespace").cloned().or_else(|| {
            f.kube
                .and_then(|k| k.destination.as_ref())
                .and_then(|d| match d {
                    crate::kube::DestinationInfo::Service(s) => Some(s.namespace.clone()),
                    crate::kube::DestinationInfo::Pod(p) => Some(p.namespace.clone()),
                    crate::kube::DestinationInfo::Address { .. } => None,
                })
        });
        let short_policy = policy.rsplit('/').next().unwrap_or(&policy).to_string();
        let mut b = r
            .finding(
                RuleCode::TcpTimeoutNetworkPolicy,
                Layer::Transport,
                Severity::Failure,
                "L4 timeout",
                format!(
                    "{} ({}) drops the traffic: {}",
                    p.object,
                    p.details
                        .get("direction")
                        .map(String::as_str)
                        .unwrap_or("policy"),
                    p.message
                ),
            )
            .line(list(&words, 3));
        for c in &capture_lines {
            b = b.line(c.clone());
        }
        b.line_in(Layer::Policy, p.message.clone())
            .next(match ns {
                Some(ns) => format!("kubectl get networkpolicy -n {ns} {short_policy} -o yaml"),
                None => format!("kubectl get networkpolicy -A | grep {short_policy}"),
            })
            .add();
        return;
    }
    let mut b = r
        .finding(
            RuleCode::TcpTimeout,
            Layer::Transport,
            Severity::Failure,
            "L4 timeout",
            format!(
                "SYN to {} got no answer in {} (no SYN-ACK, no RST, no ICMP): a silent drop \
                 by a firewall or an enforced NetworkPolicy on the path",
                t0.address,
                ms(t0.latency_ms)
            ),
        )
        .line(list(&words, 3));
    for c in &capture_lines {
        b = b.line(c.clone());
    }
    let dest_ip = t0.address.ip();
    b.next(format!(
        "kubectl get networkpolicy -A   # then on the node: iptables -S | grep {dest_ip}"
    ))
    .next(capture_hint(dest_ip, t0.address.port()))
    .add();
}

fn capture_hint(ip: IpAddr, port: u16) -> String {
    format!(
        "tcpdump -ni any 'host {ip} and port {port}'   # on both ends, or --capture -w trace.pcap"
    )
}

fn exhaustion(f: &Facts, eaddr: &[&TcpEvidence], r: &mut Report) {
    let s = f.one::<SocketsEvidence>();
    let tw = s
        .and_then(|s| s.states.get(&SocketState::TimeWait.into()).copied())
        .unwrap_or(0);
    let range = s.and_then(|s| s.local_port_range);
    let size = range.map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1);
    let top = s.and_then(|s| s.time_wait_top_peer.as_ref());
    let t0 = eaddr[0];
    let pressure = match (size, top) {
        (Some(size), Some(top)) => format!(
            "; {} TIME-WAIT sockets toward {} against an ephemeral port range of {size} ({}-{})",
            top.count,
            top.peer,
            range.map(|r| r.0).unwrap_or(0),
            range.map(|r| r.1).unwrap_or(0)
        ),
        (Some(size), None) => {
            format!("; {tw} TIME-WAIT sockets against an ephemeral port range of {size}")
        }
        _ => format!("; {tw} TIME-WAIT sockets"),
    };
    r.finding(
        RuleCode::EphemeralPortExhaustion,
        Layer::Transport,
        Severity::Failure,
        "ephemeral ports exhausted",
        format!(
            "connect to {} failed with EADDRNOTAVAIL: no free local port{pressure}",
            t0.address
        ),
    )
    .line(format!("{} EADDRNOTAVAIL", t0.address))
    .line(format!(
        "TIME-WAIT {tw}{}",
        match (size, range) {
            (Some(size), Some((lo, hi))) => format!(" of {size} ports ({lo}-{hi})"),
            _ => String::new(),
        }
    ))
    .next("reuse connections (keep-alive / pooling); sysctl net.ipv4.tcp_tw_reuse=1")
    .next("ss -tan state time-wait | awk '{print $4}' | sort | uniq -c | sort -rn | head")
    .add();
}

/// TIME-WAIT close to the range without a failed connect yet.
fn time_wait(f: &Facts, r: &mut Report) {
    if r.has(RuleCode::EphemeralPortExhaustion) {
        return;
    }
    let Some(s) = f.one::<SocketsEvidence>() else {
        return;
    };
    let (Some(ratio), Some((lo, hi))) = (s.time_wait_ratio, s.local_port_range) else {
        return;
    };
    if ratio < TIME_WAIT_NEAR_RANGE {
        return;
    }
    let tw = s
        .states
        .get(&SocketState::TimeWait.into())
        .copied()
        .unwrap_or(0);
    r.finding(
        RuleCode::EphemeralPortExhaustion,
        Layer::Transport,
        Severity::Warning,
        "ephemeral ports nearly exhausted",
        format!(
            "{tw} TIME-WAIT sockets fill {:.0}% of the ephemeral port range {lo}-{hi}: new \
             connections will soon fail with EADDRNOTAVAIL",
            ratio * 100.0
        ),
    )
    .line(format!(
        "TIME-WAIT {tw} ({:.0}% of ports {lo}-{hi})",
        ratio * 100.0
    ))
    .next("reuse connections (keep-alive / pooling); sysctl net.ipv4.tcp_tw_reuse=1")
    .add();
}

fn close_wait(f: &Facts, r: &mut Report) {
    let Some(s) = f.one::<SocketsEvidence>() else {
        return;
    };
    let total = s
        .states
        .get(&SocketState::CloseWait.into())
        .copied()
        .unwrap_or(0);
    let top = s.close_wait_by_peer.first();
    let worst = top.map(|p| p.count).unwrap_or(total);
    if worst < CLOSE_WAIT_WORTH_REPORTING {
        return;
    }
    let peer = top.map(|p| format!(" from {}", p.peer)).unwrap_or_default();
    r.finding(
        RuleCode::CloseWaitAccumulation,
        Layer::Transport,
        Severity::Warning,
        "CLOSE-WAIT accumulation",
        format!(
            "{} sockets in CLOSE-WAIT{peer}: the peer closed but the application never called \
             close() (a connection or file-descriptor leak)",
            worst
        ),
    )
    .line(format!(
        "CLOSE-WAIT {total}{}",
        if s.close_wait_by_peer.is_empty() {
            String::new()
        } else {
            format!(
                "; by peer: {}",
                list(
                    &s.close_wait_by_peer
                        .iter()
                        .map(|p| format!("{} x{}", p.peer, p.count))
                        .collect::<Vec<_>>(),
                    3
                )
            )
        }
    ))
    .next("ss -tanp state close-wait   # which process holds them")
    .add();
}

fn listen_queue(f: &Facts, r: &mut Report) {
    let overflows = f.counter_delta(Counter::ListenOverflows).unwrap_or(0);
    let drops = f.counter_delta(Counter::ListenDrops).unwrap_or(0);
    let full: Vec<String> = f
        .one::<SocketsEvidence>()
        .map(|s| {
            s.listeners
                .iter()
                .filter(|l| l.send_q > 0 && l.recv_q >= l.send_q)
                .map(|l| format!("{} accept queue {}/{}", l.local, l.recv_q, l.send_q))
                .collect()
        })
        .unwrap_or_default();
    if overflows == 0 && drops == 0 && full.is_empty() {
        return;
    }
    let interval = f
        .one::<CountersEvidence>()
        .map(|c| ms(c.interval_ms))
        .unwrap_or_default();
    let mut cause = String::new();
    if overflows > 0 || drops > 0 {
        cause.push_str(&format!(
            "the kernel dropped {} during the run ({interval}; ListenOverflows +{overflows}, \
             ListenDrops +{drops})",
            plural(
                overflows.max(drops),
                "incoming connection",
                "incoming connections"
            )
        ));
    }
    if !full.is_empty() {
        if !cause.is_empty() {
            cause.push_str("; ");
        }
        cause.push_str(&format!("full accept queue: {}", list(&full, 2)));
    }
    let victims = overflow_timeouts(f);
    let severity = if victims.is_empty() {
        Severity::Warning
    } else {
        Severity::Failure
    };
    let mut b = r.finding(
        RuleCode::ListenQueueOverflow,
        Layer::Transport,
        severity,
        "listen queue overflow",
        format!("{cause}: the server does not accept() fast enough or its backlog is too small"),
    );
    for t in &victims {
        b = b.line(format!(
            "{} {}: SYN dropped by the full accept queue",
            t.address,
            short_words(t)
        ));
    }
    if overflows > 0 || drops > 0 {
        b = b.line(format!(
            "ListenOverflows +{overflows}, ListenDrops +{drops} in {interval}"
        ));
    }
    for l in full.iter().take(3) {
        b = b.line(l.clone());
    }
    b.next("ss -ltn   # Recv-Q = waiting connections, Send-Q = backlog")
        .next("raise the listen backlog and net.core.somaxconn, or add server workers")
        .add();
}

fn retransmissions(f: &Facts, r: &mut Report) {
    let Some(retrans) = f.counter_delta(Counter::TcpRetransSegs) else {
        return;
    };
    let out = f.counter_delta(Counter::TcpOutSegs).unwrap_or(0);
    let flows: Vec<String> = f
        .all::<CaptureSummary>()
        .flat_map(|c| c.tcp_flows.iter())
        .filter(|fl| fl.retransmits > 0 && fl.handshake == Handshake::Established)
        .map(|fl| {
            format!(
                "{} -> {} {} retransmits",
                fl.client, fl.server, fl.retransmits
            )
        })
        .collect();
    let ratio = if out == 0 {
        0.0
    } else {
        retrans as f64 / out as f64
    };
    // SYN retransmissions of a timed-out connect are the timeout, not loss on a working path.
    let timeouts_explain = r.has(RuleCode::TcpTimeout) || r.has(RuleCode::TcpTimeoutNetworkPolicy);
    if retrans < RETRANS_MIN || ratio < RETRANS_RATIO || timeouts_explain {
        return;
    }
    let interval = f
        .one::<CountersEvidence>()
        .map(|c| ms(c.interval_ms))
        .unwrap_or_default();
    let mut b = r
        .finding(
            RuleCode::TcpRetransmissions,
            Layer::Transport,
            Severity::Warning,
            "retransmissions",
            format!(
                "{retrans} of {out} TCP segments ({:.2}%) were retransmitted during the run \
                 ({interval}): packets are lost on the path",
                ratio * 100.0
            ),
        )
        .line(format!(
            "Tcp.RetransSegs +{retrans} of OutSegs +{out} ({:.2}%) in {interval}",
            ratio * 100.0
        ));
    for fl in flows.iter().take(2) {
        b = b.line(format!("capture: {fl}"));
    }
    b.next("ip -s link; tc -s qdisc   # interface drops and qdisc losses on both ends")
        .next("netstat -s | grep -i retrans")
        .add();
}

impl Progress for TcpEvidence {
    fn progress(&self) -> (Layer, Mark, String) {
        let mark = if self.outcome == TcpOutcome::Ok {
            Mark::Ok
        } else {
            Mark::Fail
        };
        (
            Layer::Transport,
            mark,
            format!("{} {}", self.address, outcome_words(self)),
        )
    }
}

impl Progress for SocketsEvidence {
    fn progress(&self) -> (Layer, Mark, String) {
        let states: Vec<String> = self
            .states
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        (
            Layer::Transport,
            Mark::Info,
            format!("{} sockets: {}", self.total, states.join(", ")),
        )
    }
}

impl Progress for CountersEvidence {
    fn progress(&self) -> (Layer, Mark, String) {
        let delta = |c: Counter| self.counters.get(&c.into()).map(|v| v.delta).unwrap_or(0);
        (
            Layer::Transport,
            Mark::Info,
            format!(
                "counters over {}: retransmits +{}, listen overflows +{}",
                ms(self.interval_ms),
                delta(Counter::TcpRetransSegs),
                delta(Counter::ListenOverflows)
            ),
        )
    }
}

impl Progress for CaptureSummary {
    fn progress(&self) -> (Layer, Mark, String) {
        (
            Layer::Transport,
            Mark::Info,
            format!(
                "capture on {}: {} packets, {} flows, stopped by {}",
                self.interface,
                self.packets_captured,
                self.tcp_flows.len(),
                self.stopped_by
            ),
        )
    }
}
