//! `sockets` evidence: the namespace's TCP socket table. Rules: TIME-WAIT near the ephemeral
//! port range, CLOSE-WAIT accumulation; otherwise what the table proved. (EADDRNOTAVAIL on a
//! connect is the `tcp` rule's, the full accept queue the `counters` rule's.)

use std::net::{IpAddr, SocketAddr};

use protocol::{is_loopback_only, Listener, Open, SocketState, SocketsEvidence};

use crate::facts::Facts;
use crate::kube::ServedPort;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::{joined, list};

/// CLOSE-WAIT sockets toward one peer from which we call it accumulation (a handful is a
/// moment in a normal close; dozens mean the application never calls close()).
pub const CLOSE_WAIT_WORTH_REPORTING: u64 = 8;
/// TIME-WAIT as a fraction of the ephemeral port range that is "near the range".
pub const TIME_WAIT_NEAR_RANGE: f64 = 0.8;

impl Progress for SocketsEvidence {
    fn progress(&self) -> (Mark, String) {
        (
            Mark::Info,
            format!("{} sockets: {}", self.total, state_counts(self).join(", ")),
        )
    }
}

/// `ESTAB 3`, `TIME-WAIT 2`..., in the order of their names.
fn state_counts(s: &SocketsEvidence) -> Vec<String> {
    let mut counts: Vec<(&str, u64)> = s.states.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    counts.sort();
    counts.iter().map(|(k, v)| format!("{k} {v}")).collect()
}

fn count(s: &SocketsEvidence, state: SocketState) -> u64 {
    s.states.get(&Open::Known(state)).copied().unwrap_or(0)
}

/// TIME-WAIT close to the range without a failed connect yet.
pub fn time_wait(f: &Facts, r: &mut Report) {
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
    let tw = count(s, SocketState::TimeWait);
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

pub fn close_wait(f: &Facts, r: &mut Report) {
    let Some(s) = f.one::<SocketsEvidence>() else {
        return;
    };
    let total = count(s, SocketState::CloseWait);
    let top = s.close_wait_by_peer.first();
    let worst = top.map(|p| p.count).unwrap_or(total);
    if worst < CLOSE_WAIT_WORTH_REPORTING {
        return;
    }
    let peer = top.map(|p| format!(" from {}", p.peer)).unwrap_or_default();
    let by_peer: Vec<String> = s
        .close_wait_by_peer
        .iter()
        .map(|p| format!("{} x{}", p.peer, p.count))
        .collect();
    r.finding(
        RuleCode::CloseWaitAccumulation,
        Layer::Transport,
        Severity::Warning,
        "CLOSE-WAIT accumulation",
        format!(
            "{worst} sockets in CLOSE-WAIT{peer}: the peer closed but the application never \
             called close() (a connection or file-descriptor leak)"
        ),
    )
    .line(format!(
        "CLOSE-WAIT {total}{}",
        if by_peer.is_empty() {
            String::new()
        } else {
            format!("; by peer: {}", list(&by_peer, 3))
        }
    ))
    .next("ss -tanp state close-wait   # which process holds them")
    .add();
}

/// When no socket rule fired, what the socket table proved.
pub fn health(f: &Facts, r: &mut Report) {
    let socket_rules = [
        RuleCode::EphemeralPortExhaustion,
        RuleCode::CloseWaitAccumulation,
        RuleCode::ListenQueueOverflow,
    ];
    let Some(s) = f.one::<SocketsEvidence>() else {
        return;
    };
    if socket_rules.iter().any(|rule| r.has(*rule)) {
        return;
    }
    let states = state_counts(s);
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

/// The listening sockets, with their bind address and accept queue: the most useful part of a
/// socket report (what the pod accepts, and from where). Shown when the run is about the pod
/// itself (no connect was made) or the pod serves a Service; a run that connects toward a
/// destination is about the pod as a client, and its listeners would only be noise.
pub fn listeners(f: &Facts, r: &mut Report) {
    let Some(s) = f.one::<SocketsEvidence>() else {
        return;
    };
    let serves = f.kube.serves.as_ref().is_some_and(|v| !v.is_empty());
    if f.one::<protocol::TcpEvidence>().is_some() && !serves {
        return;
    }
    let listening = count(s, SocketState::Listen);
    if listening == 0 && s.listeners.is_empty() {
        // Worth saying only when the run is about the stack alone (not a name lookup).
        if f.one::<protocol::DnsLookupEvidence>().is_none() {
            r.info(Layer::Transport, "no listening TCP socket");
        }
        return;
    }
    let shown: Vec<String> = s.listeners.iter().map(listener_words).collect();
    let more = listening.saturating_sub(s.listeners.len() as u64);
    r.info(
        Layer::Transport,
        format!(
            "listening on {}{}",
            joined(&shown),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    );
}

/// `127.0.0.1:8080 (backlog 4096)`, with the queue when connections wait in it.
fn listener_words(l: &Listener) -> String {
    if l.recv_q > 0 {
        format!("{} (queue {}/{})", l.local, l.recv_q, l.send_q)
    } else {
        format!("{} (backlog {})", l.local, l.send_q)
    }
}

/// Whether a listener bound to `local` accepts connections sent to the pod's own address:
/// a wildcard or that exact address does, loopback or any other address does not.
fn accepts_on(local: &SocketAddr, pod_ip: Option<IpAddr>) -> bool {
    match local.ip() {
        ip if ip.is_unspecified() => true,
        // IPv4-mapped wildcard and addresses: `::ffff:10.0.0.5` is the pod's IPv4 address.
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            pod_ip.is_some_and(|p| Some(p) == v6.to_ipv4_mapped().map(IpAddr::V4))
        }
        ip => pod_ip.is_some_and(|p| p == ip),
    }
}

/// The pod is an endpoint of Services (the client read the EndpointSlices naming it): does it
/// accept, on its pod IP, every TCP port they send to it? A listener bound to loopback only,
/// or none on that port, means every connection through the Service is refused.
pub fn served_ports(f: &Facts, r: &mut Report) {
    let (Some(s), Some(serves)) = (f.one::<SocketsEvidence>(), f.kube.serves.as_ref()) else {
        return;
    };
    let pod_ip = f
        .kube
        .source
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    // The list is capped (fullest queue first): a port missing from an incomplete list
    // proves nothing.
    let complete = s.listeners.len() as u64 >= count(s, SocketState::Listen);
    for served in serves.iter().filter(|p| p.protocol == "TCP") {
        let on_port: Vec<&Listener> = s
            .listeners
            .iter()
            .filter(|l| l.local.port() == served.port)
            .collect();
        if on_port.iter().any(|l| accepts_on(&l.local, pod_ip)) {
            r.ok(
                Layer::Transport,
                format!(
                    "{} sends port {} here: accepted on {}",
                    service_words(served),
                    served.port,
                    joined(on_port.iter().map(|l| l.local))
                ),
            );
        } else if !on_port.is_empty() {
            bound_elsewhere(served, &on_port, pod_ip, r);
        } else if complete {
            not_listening(f, served, s, r);
        }
    }
}

/// `svc/web (port http)`.
fn service_words(p: &ServedPort) -> String {
    match &p.name {
        Some(name) if !name.is_empty() => format!("svc/{} (port {name})", p.service),
        _ => format!("svc/{}", p.service),
    }
}

fn bound_elsewhere(
    served: &ServedPort,
    on_port: &[&Listener],
    pod_ip: Option<IpAddr>,
    r: &mut Report,
) {
    let port = served.port;
    let bound = joined(on_port.iter().map(|l| l.local));
    let loopback = on_port.iter().all(|l| is_loopback_only(&l.local));
    let pod_ip_text = pod_ip
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "the pod IP".into());
    r.finding(
        RuleCode::TcpListenerLoopbackOnly,
        Layer::Transport,
        Severity::Failure,
        if loopback {
            "listener on loopback only"
        } else {
            "listener on another address"
        },
        format!(
            "{} sends TCP port {port} to this pod, but the listener on {port} is bound to \
             {bound} only: connections to {pod_ip_text}:{port}, the ones the Service \
             delivers, are refused",
            service_words(served)
        ),
    )
    .line(format!(
        "{} -> port {port}; listening on {bound} (not 0.0.0.0 or {pod_ip_text})",
        service_words(served)
    ))
    .next(format!(
        "make the server bind 0.0.0.0:{port} (e.g. its --bind/--host/listen option)"
    ))
    .add();
}

fn not_listening(f: &Facts, served: &ServedPort, s: &SocketsEvidence, r: &mut Report) {
    let port = served.port;
    let others: Vec<String> = s.listeners.iter().map(|l| l.local.to_string()).collect();
    let container = f
        .kube
        .source
        .as_ref()
        .and_then(|s| s.container.as_deref())
        .map(|c| format!(" (container {c} and its siblings)"))
        .unwrap_or_default();
    r.finding(
        RuleCode::ServedPortNotListening,
        Layer::Transport,
        Severity::Failure,
        "Service port not listened on",
        format!(
            "{} sends TCP port {port} to this pod, but nothing in it{container} listens on \
             port {port}: connections through the Service are refused{}",
            service_words(served),
            if others.is_empty() {
                " (nothing listens at all)".to_string()
            } else {
                format!(" (it listens on {})", list(&others, 4))
            }
        ),
    )
    .line(format!(
        "{} -> port {port}; no listener on {port}",
        service_words(served)
    ))
    .next(format!(
        "kubectl get svc {} -o jsonpath='{{.spec.ports}}'   # the targetPort, against the port the app listens on",
        served.service
    ))
    .add();
}

#[cfg(test)]
mod tests {
    use super::accepts_on;

    #[test]
    fn which_bind_addresses_accept_connections_to_the_pod_ip() {
        let pod = Some("10.244.0.6".parse().unwrap());
        let accepts = |bind: &str| accepts_on(&bind.parse().unwrap(), pod);
        assert!(accepts("0.0.0.0:8080"));
        assert!(accepts("[::]:8080"));
        assert!(accepts("10.244.0.6:8080"));
        assert!(accepts("[::ffff:10.244.0.6]:8080"));
        assert!(!accepts("127.0.0.1:8080"));
        assert!(!accepts("[::1]:8080"));
        assert!(!accepts("10.244.0.7:8080"));
        assert!(!accepts("[::ffff:127.0.0.1]:8080"));
        // Without the pod IP only a wildcard is known to accept.
        assert!(!accepts_on(&"10.244.0.6:8080".parse().unwrap(), None));
    }
}
