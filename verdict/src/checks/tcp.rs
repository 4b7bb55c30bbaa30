//! `tcp` evidence: a connect to each target. Rules: refused (no listener; listener bound to
//! loopback only), timeout (silent drop; NetworkPolicy predicted to deny; firewall), rejected
//! (by a named ICMP error and its sender, see `tcp_icmp`; or by errno alone: ICMP / EPERM),
//! EADDRNOTAVAIL (ephemeral ports exhausted), any other error.

use std::net::IpAddr;

use protocol::{is_loopback_only, Open, SocketState, SocketsEvidence, TcpEvidence, TcpOutcome};

use crate::checks::capture::unanswered_syn_lines;
use crate::checks::counters::overflow_timeouts;
use crate::checks::rounds;
use crate::checks::tcp_icmp;
use crate::facts::Facts;
use crate::kube::{DestinationInfo, KubeFinding, KubeFindingCode};
use crate::model::{Layer, Mark, Origin, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::{list, ms};

impl Progress for TcpEvidence {
    fn progress(&self) -> (Mark, String) {
        let mark = if connected(self) {
            Mark::Ok
        } else {
            Mark::Fail
        };
        (mark, format!("{} {}", self.address, outcome_words(self)))
    }
}

pub fn connected(t: &TcpEvidence) -> bool {
    t.outcome == TcpOutcome::Ok
}

/// `timed out after 3.0 s`, `refused`, `ok 1.2 ms`, `port unreachable (ICMP 3/3) from
/// 10.0.0.1`; an outcome this version does not know is shown by its name.
pub fn outcome_words(t: &TcpEvidence) -> String {
    if let (false, Some(icmp)) = (connected(t), &t.icmp) {
        return tcp_icmp::icmp_words(icmp);
    }
    let Open::Known(outcome) = &t.outcome else {
        return format!("{} {}", t.outcome, t.message.as_deref().unwrap_or(""))
            .trim_end()
            .to_string();
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
pub fn short_words(t: &TcpEvidence) -> String {
    if t.outcome == TcpOutcome::Timeout {
        format!("timeout {}", ms(t.latency_ms))
    } else {
        outcome_words(t)
    }
}

/// The connects: proven ones on one line, failing ones by outcome.
pub fn apply(f: &Facts, r: &mut Report) {
    let tcp = f.all::<TcpEvidence>();
    // An address with repeated connects has its own line (the counts of every attempt).
    let ok: Vec<String> = tcp
        .iter()
        .filter(|t| connected(t) && !rounds::has_rounds(f, t.address))
        .map(|t| match crate::rules::dataplane::nat_words(f, t) {
            Some(nat) => format!("{} connected {} ({nat})", t.address, ms(t.latency_ms)),
            None => format!("{} connected {}", t.address, ms(t.latency_ms)),
        })
        .collect();
    if !ok.is_empty() {
        r.ok(Layer::Transport, list(&ok, 4));
    }
    let failing: Vec<&TcpEvidence> = tcp
        .iter()
        .copied()
        .filter(|t| !connected(t) && !r.explained.contains(&t.address))
        .collect();
    // An ICMP error names what stopped the SYN and where: that, not the errno, is judged.
    let (by_icmp, failing): (Vec<&TcpEvidence>, Vec<&TcpEvidence>) =
        failing.into_iter().partition(|t| t.icmp.is_some());
    if !by_icmp.is_empty() {
        tcp_icmp::rejected_by_icmp(f, &by_icmp, r);
    }
    // A route rule already explained an unreachable network for these.
    let network_explains = r.has_failure_in(Layer::Network);
    let of = |outcomes: &[TcpOutcome]| -> Vec<&TcpEvidence> {
        failing
            .iter()
            .copied()
            .filter(|t| t.outcome.is_any(outcomes))
            .collect()
    };

    let refused = of(&[TcpOutcome::Refused]);
    if !refused.is_empty() {
        refused_rules(f, &refused, r);
    }
    let timeouts = of(&[TcpOutcome::Timeout]);
    if !timeouts.is_empty() {
        timeout_rules(f, &timeouts, r);
    }
    let mut rejected = of(&[TcpOutcome::HostUnreachable, TcpOutcome::PermissionDenied]);
    if !network_explains {
        rejected.extend(of(&[TcpOutcome::NetworkUnreachable]));
    }
    if !rejected.is_empty() {
        rejected_rule(&rejected, r);
    }
    // Errors, and outcomes of a newer probe this version cannot judge.
    let errors: Vec<&TcpEvidence> = failing
        .iter()
        .copied()
        .filter(|t| t.outcome == TcpOutcome::Error || t.outcome.known().is_none())
        .collect();
    if !errors.is_empty() {
        error_rule(&errors, r);
    }
    let eaddr = of(&[TcpOutcome::AddressNotAvailable]);
    if !eaddr.is_empty() {
        exhaustion(f.one::<SocketsEvidence>(), &eaddr, r);
    }
}

fn rejected_rule(rejected: &[&TcpEvidence], r: &mut Report) {
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

fn error_rule(errors: &[&TcpEvidence], r: &mut Report) {
    let words: Vec<String> = errors
        .iter()
        .map(|t| {
            let unknown = match &t.outcome {
                Open::Unknown(name) => format!("{name} "),
                Open::Known(_) => String::new(),
            };
            format!(
                "{} {unknown}errno {} {}",
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
    if let Some(t0) = rest.first() {
        no_listener(f, t0, &rest, r);
    }
}

fn no_listener(f: &Facts, t0: &TcpEvidence, rest: &[&&TcpEvidence], r: &mut Report) {
    let words: Vec<String> = rest
        .iter()
        .map(|t| format!("{} refused ({})", t.address, ms(t.latency_ms)))
        .collect();
    let port_note = f
        .kube_finding(KubeFindingCode::TargetPortNotExposed)
        .map(|_| " (the targetPort is not exposed, see Service)")
        .unwrap_or("");
    // Through a Service, the port that matters is the endpoint's, and the pod is known.
    let destination = refusing_pod(f, rest);
    let (shown, port) = match &destination {
        Some(d) => (d.address, d.address.port()),
        None => (t0.address, t0.address.port()),
    };
    let cause = match &destination {
        Some(d) => format!(
            "{}{} answered with RST in {}: pod {}{} is reachable but nothing in it listens on \
             port {port}{port_note} (or a REJECT --reject-with tcp-reset rule)",
            d.via_service
                .as_deref()
                .map(|svc| format!("{svc} -> "))
                .unwrap_or_default(),
            d.address,
            ms(d.latency_ms),
            d.pod,
            d.container
                .as_deref()
                .map(|c| format!(" (container {c})"))
                .unwrap_or_default(),
        ),
        None => format!(
            "{shown} answered with RST in {}: the host is reachable but nothing listens on port \
             {port}{port_note} (or a REJECT --reject-with tcp-reset rule)",
            ms(t0.latency_ms),
        ),
    };
    let mut b = r
        .finding(
            RuleCode::TcpRefusedNoListener,
            Layer::Transport,
            Severity::Failure,
            "L4 refused",
            cause,
        )
        .line(list(&words, 3));
    b = match &destination {
        Some(d) if !f.is_local() => b.next(format!(
            "{}   # what pod {} listens on, and on which addresses",
            Origin::Pod {
                namespace: d.namespace.clone(),
                name: d.pod.clone(),
            }
            .command(None, "--sockets"),
            d.pod
        )),
        _ if f.is_local() => b.next(format!("ss -ltn 'sport = :{port}'   # on the destination")),
        _ => b.next(format!(
            "ss -ltn 'sport = :{port}'   # on the destination ({shown})"
        )),
    };
    b.add();
}

/// The pod that refused: an endpoint of the Service (or the destination pod) whose own
/// address answered with RST.
struct RefusingPod {
    namespace: String,
    pod: String,
    container: Option<String>,
    /// The endpoint's own address and port (not the Service's).
    address: std::net::SocketAddr,
    latency_ms: f64,
    /// `svc/web:80` when the ClusterIP refused too.
    via_service: Option<String>,
}

fn refusing_pod(f: &Facts, refused: &[&&TcpEvidence]) -> Option<RefusingPod> {
    match f.kube.destination.as_ref()? {
        DestinationInfo::Service(svc) => {
            let (t, ep) = refused.iter().find_map(|t| {
                svc.endpoints
                    .iter()
                    .find(|e| e.ip.parse::<IpAddr>().is_ok_and(|ip| ip == t.address.ip()))
                    .filter(|e| e.port.is_none_or(|p| p == t.address.port()))
                    .map(|e| (t, e))
            })?;
            let cluster_ip = refused
                .iter()
                .find(|c| f.role(&c.role, c.address.ip()) == protocol::TargetRole::ClusterIp);
            Some(RefusingPod {
                namespace: svc.namespace.clone(),
                pod: ep.pod.clone()?,
                container: ep.container.clone(),
                address: t.address,
                latency_ms: t.latency_ms,
                via_service: cluster_ip.map(|c| format!("svc/{}:{}", svc.name, c.address.port())),
            })
        }
        DestinationInfo::Pod(p) => {
            let t = refused.iter().find(|t| {
                p.ip.as_deref()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .is_some_and(|ip| ip == t.address.ip())
            })?;
            Some(RefusingPod {
                namespace: p.namespace.clone(),
                pod: p.name.clone(),
                container: None,
                address: t.address,
                latency_ms: t.latency_ms,
                via_service: None,
            })
        }
        DestinationInfo::Address { .. } => None,
    }
}

fn timeout_rules(f: &Facts, timeouts: &[&TcpEvidence], r: &mut Report) {
    let by_overflow = overflow_timeouts(f);
    let timeouts: Vec<&TcpEvidence> = timeouts
        .iter()
        .copied()
        .filter(|t| !by_overflow.iter().any(|o| o.address == t.address))
        .collect();
    let Some(t0) = timeouts.first().copied() else {
        return;
    };
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
    // What a capture saw about these flows.
    let servers: Vec<_> = timeouts.iter().map(|t| t.address).collect();
    let capture_lines = unanswered_syn_lines(f, &servers);
    if let Some(deny) = f.kube_finding(KubeFindingCode::NetworkPolicyDenies) {
        return policy_timeout(f, deny, &words, &capture_lines, r);
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
    b.next(if f.is_local() {
        format!("iptables -S | grep {dest_ip}; nft list ruleset   # on each host on the path")
    } else {
        format!("kubectl get networkpolicy -A   # then on the node: iptables -S | grep {dest_ip}")
    })
    .next(capture_hint(f, t0.address))
    .add();
}

/// Timeouts the client's NetworkPolicy prediction explains.
fn policy_timeout(
    f: &Facts,
    p: &KubeFinding,
    words: &[String],
    capture_lines: &[String],
    r: &mut Report,
) {
    let policy = p
        .details
        .get("policy")
        .cloned()
        .unwrap_or_else(|| p.object.clone());
    let ns = p
        .details
        .get("namespace")
        .cloned()
        .or_else(|| match f.kube.destination.as_ref()? {
            DestinationInfo::Service(s) => Some(s.namespace.clone()),
            DestinationInfo::Pod(p) => Some(p.namespace.clone()),
            DestinationInfo::Address { .. } => None,
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
        .line(list(words, 3));
    for c in capture_lines {
        b = b.line(c.clone());
    }
    b.line_in(Layer::Policy, p.message.clone())
        .next(match ns {
            Some(ns) => format!("kubectl get networkpolicy -n {ns} {short_policy} -o yaml"),
            None => format!("kubectl get networkpolicy -A | grep {short_policy}"),
        })
        .add();
}

/// Capture on both ends; `--capture` only when this run's profile could capture.
fn capture_hint(f: &Facts, to: std::net::SocketAddr) -> String {
    let filter = crate::steps::host_port_filter(to);
    match crate::steps::not_granted(f, protocol::CheckKind::Capture) {
        None => format!("tcpdump -ni any '{filter}'   # on both ends, or --capture -w trace.pcap"),
        Some(missing) => format!(
            "tcpdump -ni any '{filter}'   # on both ends' nodes, in the pods' network namespaces \
             (--capture needs {}, which {} does not grant)",
            missing.capability.as_str().to_uppercase(),
            missing.by
        ),
    }
}

fn exhaustion(s: Option<&SocketsEvidence>, eaddr: &[&TcpEvidence], r: &mut Report) {
    let tw = s
        .and_then(|s| s.states.get(&Open::Known(SocketState::TimeWait)).copied())
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
