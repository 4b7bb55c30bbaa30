//! `tcp_rounds` evidence (plan `rounds`, `--repeat`/`--for`): repeated connects to one address.
//! The compact line per address ("200 connects: 193 ok, 7 timeout (3.5%); p50 0.4 ms p99
//! 2.1 ms").

use protocol::{Open, TcpOutcome, TcpRoundsEvidence};

use crate::model::Mark;
use crate::progress::Progress;
use crate::words::ms;

impl Progress for TcpRoundsEvidence {
    fn progress(&self) -> (Mark, String) {
        let mark = if self.failed() == 0 {
            Mark::Ok
        } else if self.count(TcpOutcome::Ok) == 0 {
            Mark::Fail
        } else {
            Mark::Warn
        };
        (mark, format!("{} {}", self.address, summary(self)))
    }
}

/// `200 connects: 193 ok, 7 timeout (3.5%); p50 0.4 ms p90 0.8 ms p99 2.1 ms max 3.0 ms`.
pub fn summary(r: &TcpRoundsEvidence) -> String {
    let mut counts: Vec<(u64, &Open<TcpOutcome>)> =
        r.outcomes.iter().map(|(o, n)| (*n, o)).collect();
    // ok first, then the failures, most frequent first.
    counts.sort_by_key(|(n, o)| (**o != TcpOutcome::Ok, std::cmp::Reverse(*n)));
    let parts: Vec<String> = counts
        .iter()
        .map(|(n, o)| {
            if **o == TcpOutcome::Ok || r.attempts == 0 {
                format!("{n} {o}")
            } else {
                format!("{n} {o} ({})", percent(*n, r.attempts))
            }
        })
        .collect();
    let latency = r
        .latency_ms
        .map(|l| {
            format!(
                "; p50 {} p90 {} p99 {} max {}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max)
            )
        })
        .unwrap_or_default();
    format!(
        "{} connects: {}{latency}",
        r.attempts,
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    )
}

/// `3.5%`, `0.05%`: enough digits to tell a small rate from zero.
pub fn percent(n: u64, of: u64) -> String {
    if of == 0 {
        return "-".into();
    }
    let p = n as f64 * 100.0 / of as f64;
    if p >= 10.0 || p == 0.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}
