//! `dns_rounds` evidence (plan `rounds` with names): lookups made the way an application's
//! resolver makes them. The compact line per name ("200 lookups: 197 answered, 3 stalled
//! ≥ 5 s (AAAA lost 3); p50 1.2 ms p99 5.0 s").

use protocol::{DnsLookupOutcome, DnsRoundsEvidence};

use crate::model::Mark;
use crate::progress::Progress;
use crate::words::ms;

impl Progress for DnsRoundsEvidence {
    fn progress(&self) -> (Mark, String) {
        let answered = self.count(DnsLookupOutcome::Answered);
        let mark = if answered == 0 && self.lookups > 0 {
            Mark::Fail
        } else if self.stalls > 0 || answered < self.lookups {
            Mark::Warn
        } else {
            Mark::Ok
        };
        (mark, format!("{} {}", self.name, summary(self)))
    }
}

/// `200 lookups (parallel A+AAAA): 200 answered, 3 stalled >= 5.0 s (lost: AAAA 3); p50 1.2 ms
/// p90 2.0 ms p99 5.0 s max 5.0 s`.
pub fn summary(r: &DnsRoundsEvidence) -> String {
    let mut outcomes: Vec<String> = r
        .outcomes
        .iter()
        .map(|(o, n)| format!("{n} {}", o.as_str().replace('_', " ")))
        .collect();
    outcomes.sort_by_key(|w| !w.ends_with("answered"));
    let stalls = if r.stalls > 0 {
        let lost: Vec<String> = r.lost.iter().map(|(t, n)| format!("{t} {n}")).collect();
        format!(
            ", {} stalled >= {} (lost: {})",
            r.stalls,
            ms(r.timeout_ms as f64),
            lost.join(", ")
        )
    } else {
        String::new()
    };
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
        "{} lookups ({}): {}{stalls}{latency}",
        r.lookups,
        r.mode.as_str().replace('_', "-"),
        if outcomes.is_empty() {
            "none".to_string()
        } else {
            outcomes.join(", ")
        }
    )
}
