//! The both-ends rules about the inside of the destination, told from the peer's own evidence:
//! a SYN that arrived and got no answer (a full accept queue, else a firewall in the
//! destination's namespace), and a SYN answered with a RST (what the app listens on instead).

use protocol::{is_loopback_only, Counter, Listener, SocketsEvidence};

use super::lines::{peer_seen_line, source_line, zero_us};
use super::peer::PeerView;
use super::rules::{more, seen_flow, severity, TIMEOUT_RULES};
use super::timeline::Judged;
use crate::facts::Facts;
use crate::kube::KubeFindingCode;
use crate::model::{Layer, RuleCode};
use crate::report::Report;

/// The single-ended findings a RST located at the destination explains.
const REFUSED_RULES: &[RuleCode] = &[
    RuleCode::TcpRefusedNoListener,
    RuleCode::TcpListenerLoopbackOnly,
];

/// The listener on `port` the peer's socket table shows, if any.
fn listener_on<'a>(f: &Facts<'a>, port: u16) -> Option<&'a Listener> {
    f.one::<SocketsEvidence>()?
        .listeners
        .iter()
        .find(|l| l.local.port() == port && !is_loopback_only(&l.local))
}

/// The SYN reached the destination and nothing answered.
pub fn no_reply(f: &Facts, peers: &[PeerView], silent: &[&Judged], all: &[Judged], r: &mut Report) {
    let j = silent[0];
    let (Some(p), Some(pf)) = (j.peer(peers), seen_flow(j)) else {
        return;
    };
    let port = p.session.port;
    let listener = listener_on(&p.facts, port);
    let full = listener.filter(|l| l.send_q > 0 && l.recv_q >= l.send_q);
    let overflows: Vec<String> = [Counter::ListenOverflows, Counter::BacklogDrop]
        .into_iter()
        .filter_map(|c| {
            let d = p.facts.counter_delta(c).filter(|d| *d > 0)?;
            Some(format!("{} +{d}", c.as_str()))
        })
        .collect();
    let label = &p.session.label;
    let severity = severity(silent, all, r, TIMEOUT_RULES);
    let arrived = format!(
        "the SYN from {} reached {label} and nothing answered (no SYN-ACK, no RST){}",
        j.conn.client,
        more(silent.len())
    );
    let seen = peer_seen_line(p, pf, zero_us(&j.conn));
    if full.is_some() || !overflows.is_empty() {
        let mut b = r
            .finding(
                RuleCode::DestinationAcceptQueueFull,
                Layer::Transport,
                severity,
                "accept queue full at the destination",
                format!(
                    "{arrived}: its listener's accept queue is full, so the kernel drops new \
                     SYNs until the app accepts the waiting connections"
                ),
            )
            .line(source_line(&j.conn))
            .line(seen);
        if let Some(l) = full {
            b = b.line(format!(
                "{}: listener {} accept queue {}/{} (waiting/backlog)",
                p.cite(),
                l.local,
                l.recv_q,
                l.send_q
            ));
        }
        if !overflows.is_empty() {
            b = b.line(format!("{}: {}", p.cite(), overflows.join(", ")));
        }
        return b
            .next(format!(
                "ss -ltn 'sport = :{port}'   # in {label}: Recv-Q at Send-Q means the app accepts \
                 too slowly (more workers, a larger backlog)"
            ))
            .add_refining(TIMEOUT_RULES);
    }
    let listening = match (p.facts.one::<SocketsEvidence>(), listener) {
        (None, _) => "its socket table was not read".to_string(),
        (Some(_), Some(l)) => format!(
            "a listener on {} exists, its accept queue {}/{} not full",
            l.local, l.recv_q, l.send_q
        ),
        (Some(_), None) => {
            format!("no listener on port {port}, yet no RST came either: the drop is before TCP")
        }
    };
    let mut b = r
        .finding(
            RuleCode::DestinationFirewallDrop,
            Layer::Policy,
            severity,
            "dropped inside the destination",
            format!(
                "{arrived}: its accept queue was not full, so a firewall rule in its network \
                 namespace (INPUT) dropped it"
            ),
        )
        .line(source_line(&j.conn))
        .line(seen)
        .line(format!("{}: {listening}", p.cite()));
    if let Some(deny) = f.kube_finding(KubeFindingCode::NetworkPolicyDenies) {
        b = b.line(format!(
            "{} predicts a deny: a CNI that enforces it inside the pod's namespace drops it there",
            deny.object
        ));
    }
    b.next(format!(
        "iptables -S INPUT; nft list ruleset   # in {label}'s network namespace (nsenter -n -t \
         PID on {})",
        p.session.node.as_deref().unwrap_or("its node")
    ))
    .add_refining(TIMEOUT_RULES);
}

/// The destination answered with a RST: what it listens on instead.
pub fn reset(peers: &[PeerView], reset: &[&Judged], all: &[Judged], r: &mut Report) {
    let j = reset[0];
    let (Some(p), Some(pf)) = (j.peer(peers), seen_flow(j)) else {
        return;
    };
    let port = p.session.port;
    let (words, next) = listening_instead(&p.facts, port, &p.session.label);
    let severity = severity(reset, all, r, REFUSED_RULES);
    r.finding(
        RuleCode::ResetByDestination,
        Layer::Transport,
        severity,
        "reset by the destination",
        format!(
            "{} answered the SYN from {} to port {port} with R.: {words}{}",
            p.session.label,
            j.conn.client,
            more(reset.len())
        ),
    )
    .line(source_line(&j.conn))
    .line(peer_seen_line(p, pf, zero_us(&j.conn)))
    .line(format!("{}: {words}", p.cite()))
    .next(next)
    .add_refining(REFUSED_RULES);
}

/// What listens at the destination instead of `port`, and the command that fixes or shows it.
fn listening_instead(f: &Facts, port: u16, label: &str) -> (String, String) {
    let show = format!("ss -ltnp   # in {label}: what listens, on which address and port");
    let Some(sockets) = f.one::<SocketsEvidence>() else {
        return (
            format!("nothing listens on {port} there (its socket table was not read)"),
            show,
        );
    };
    let on_port: Vec<&Listener> = sockets
        .listeners
        .iter()
        .filter(|l| l.local.port() == port)
        .collect();
    if let Some(l) = on_port.iter().find(|l| is_loopback_only(&l.local)) {
        return (
            format!(
                "the app listens on {} only, which accepts nothing from outside its namespace",
                l.local
            ),
            format!("make the server bind 0.0.0.0:{port} (its --bind/--host/listen option)"),
        );
    }
    if let Some(l) = on_port.first() {
        return (
            format!(
                "a listener on {} exists, so a REJECT --reject-with tcp-reset rule in its \
                 namespace answers instead",
                l.local
            ),
            format!("iptables -S INPUT | grep -i reject   # in {label}'s network namespace"),
        );
    }
    let mut others: Vec<u16> = sockets.listeners.iter().map(|l| l.local.port()).collect();
    others.sort_unstable();
    others.dedup();
    match others.as_slice() {
        [] => (
            format!("nothing listens on {port}, nor on any other port, there"),
            show,
        ),
        ports => (
            format!(
                "nothing listens on {port}: the app listens on {}, not {port}",
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "kubectl get svc,endpointslices -o wide   # the targetPort should be one of {}",
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}
