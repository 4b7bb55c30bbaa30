//! `sockets` evidence: the namespace's TCP socket table. Rules: TIME-WAIT near the ephemeral
//! port range, CLOSE-WAIT accumulation; otherwise what the table proved. (EADDRNOTAVAIL on a
//! connect is the `tcp` rule's, the full accept queue the `counters` rule's.)

use protocol::{Open, SocketState, SocketsEvidence};

use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::list;

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
