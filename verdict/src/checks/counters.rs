//! `counters` evidence: snmp/netstat counters over the run. Rules: listen-queue overflows
//! (and the timeouts they explain), retransmissions; otherwise what the counters proved.

use protocol::{
    Counter, CountersEvidence, Handshake, Open, RouteEvidence, RouteOutcome, RouteType,
    SocketsEvidence, TcpEvidence, TcpOutcome,
};

use crate::checks::tcp::short_words;
use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::{list, ms, plural};

/// Retransmitted segments (delta over the run) and their share of sent segments that
/// suggest loss rather than noise: a healthy data-centre path retransmits well under 0.1%.
pub const RETRANS_MIN: u64 = 10;
pub const RETRANS_RATIO: f64 = 0.001;

impl Progress for CountersEvidence {
    fn progress(&self) -> (Mark, String) {
        let delta = |c: Counter| {
            self.counters
                .get(&Open::Known(c))
                .map(|v| v.delta)
                .unwrap_or(0)
        };
        (
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

fn interval(f: &Facts) -> String {
    f.one::<CountersEvidence>()
        .map(|c| ms(c.interval_ms))
        .unwrap_or_default()
}

/// Connects that timed out toward a listener in this very namespace while the kernel
/// counted listen-queue overflows: the full accept queue dropped their SYNs. An address whose
/// repeated connects failed only part of the time is not among them: the rounds rules report
/// it (as intermittent, naming the overflows), not as a hard failure.
pub fn overflow_timeouts<'a>(f: &Facts<'a>) -> Vec<&'a TcpEvidence> {
    let overflows = f.counter_delta(Counter::ListenOverflows).unwrap_or(0)
        + f.counter_delta(Counter::ListenDrops).unwrap_or(0);
    if overflows == 0 {
        return Vec::new();
    }
    let routes = f.all::<RouteEvidence>();
    let sockets = f.one::<SocketsEvidence>();
    f.all::<TcpEvidence>()
        .into_iter()
        .filter(|t| t.outcome == TcpOutcome::Timeout)
        .filter(|t| !crate::checks::rounds::intermittent_at(f, t.address))
        .filter(|t| {
            routes.iter().any(|r| {
                r.destination == t.address.ip()
                    && matches!(&r.outcome, RouteOutcome::Found(i) if i.route_type == RouteType::Local)
            }) || sockets.is_some_and(|s| {
                s.listeners
                    .iter()
                    .any(|l| l.local.port() == t.address.port())
            })
        })
        .collect()
}

pub fn listen_queue(f: &Facts, r: &mut Report) {
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
    let interval = interval(f);
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

pub fn retransmissions(f: &Facts, r: &mut Report) {
    let Some(retrans) = f.counter_delta(Counter::TcpRetransSegs) else {
        return;
    };
    let out = f.counter_delta(Counter::TcpOutSegs).unwrap_or(0);
    let flows: Vec<String> = f
        .all::<protocol::CaptureSummary>()
        .iter()
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
    let interval = interval(f);
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

/// When no counter rule fired, what the counters proved.
pub fn health(f: &Facts, r: &mut Report) {
    let Some(c) = f.one::<CountersEvidence>() else {
        return;
    };
    if r.has(RuleCode::TcpRetransmissions) || r.has(RuleCode::ListenQueueOverflow) {
        return;
    }
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
