//! `dns_rounds` evidence (plan `rounds` with names): lookups made the way an application's
//! resolver makes them. The compact line per name ("200 lookups: 197 answered, 3 stalled
//! ≥ 5 s (AAAA lost 3); p50 1.2 ms p99 5.0 s").

use protocol::{Counter, DnsLookupOutcome, DnsRoundsEvidence, DnsSendMode};

use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::stats::{pct, power_words};
use crate::words::{latency_words, ms};

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
        .map(|l| format!("; {}", latency_words(&l)))
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

/// The rules over repeated lookups: stalls (the "5 second DNS"), intermittent failures, and
/// for a clean run what it proves.
pub fn apply(f: &Facts, r: &mut Report) {
    let insert_failed = f.counter_delta(Counter::ConntrackInsertFailed);
    for d in f.all::<DnsRoundsEvidence>() {
        if d.lookups == 0 {
            continue;
        }
        let answered = d.count(DnsLookupOutcome::Answered);
        let failed = d.lookups - answered;
        if d.stalls > 0 {
            stalls(d, insert_failed, r);
        }
        if failed > 0 && answered > 0 {
            intermittent(d, failed, r);
        }
        if failed == 0 && d.stalls == 0 {
            r.ok(
                Layer::Dns,
                format!(
                    "{} {}: no failure, no stall; {}",
                    d.name,
                    summary(d),
                    power_words(d.lookups, "a failure or stall rate")
                ),
            );
        } else if answered == 0 {
            // Every lookup failed: the single-lookup rules name the cause; the counts back it.
            r.info(Layer::Dns, format!("{} {}", d.name, summary(d)));
        }
    }
}

/// `AAAA 3, A 1`.
fn lost_words(d: &DnsRoundsEvidence) -> String {
    let mut lost: Vec<(u64, String)> = d.lost.iter().map(|(t, n)| (*n, t.to_string())).collect();
    lost.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    lost.iter()
        .map(|(n, t)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lookups that took the resolver's whole timeout. With A and AAAA sent at once from one
/// socket and one reply of a pair lost, it is the conntrack insert race on the DNS ClusterIP's
/// DNAT (insert_failed rising says so); lost pairs are a nameserver that did not answer.
fn stalls(d: &DnsRoundsEvidence, insert_failed: Option<u64>, r: &mut Report) {
    let one_of_pair = d.stall_samples.iter().filter(|s| s.lost.len() == 1).count();
    let race = d.mode == DnsSendMode::Parallel && one_of_pair * 2 >= d.stall_samples.len().max(1);
    let timeout = ms(d.timeout_ms as f64);
    let why = if race {
        format!(
            "each time one reply of the A/AAAA pair sent together from one socket never came \
             (lost: {}) and the resolver waited its full {timeout} before asking again: the \
             signature of the conntrack race on parallel queries",
            lost_words(d)
        )
    } else {
        format!(
            "queries went unanswered (lost: {}) and the resolver waited its timeout of {timeout}",
            lost_words(d)
        )
    };
    let conntrack = match insert_failed {
        Some(n) if n > 0 => format!("; conntrack insert_failed rose by {n} during the run"),
        Some(_) => "; conntrack insert_failed did not rise in this namespace (the race happens \
                    where the DNAT is, on the node)"
            .to_string(),
        None => String::new(),
    };
    let mut b = r
        .finding(
            RuleCode::DnsStalls,
            Layer::Dns,
            Severity::Warning,
            "DNS stalls",
            format!(
                "{} of {} lookups of {} took {timeout} or more ({}): {why}{conntrack}",
                d.stalls,
                d.lookups,
                d.name,
                pct(d.stalls as f64 / d.lookups as f64)
            ),
        )
        .line(format!("{} {}", d.name, summary(d)));
    if race {
        b = b
            .next("spec.dnsConfig.options: [{name: single-request-reopen}]   # in the pod template; or use-vc")
            .next("a node-local DNS cache (NodeLocal DNSCache) takes the DNAT, and the race, off the path");
    } else {
        b = b.next("kubectl -n kube-system logs -l k8s-app=kube-dns --tail=50");
    }
    b.add();
}

/// Some lookups failed, others answered.
fn intermittent(d: &DnsRoundsEvidence, failed: u64, r: &mut Report) {
    let how: Vec<String> = d
        .outcomes
        .iter()
        .filter(|(o, _)| **o != DnsLookupOutcome::Answered)
        .map(|(o, n)| format!("{} {n}", o.as_str().replace('_', " ")))
        .collect();
    r.finding(
        RuleCode::DnsIntermittent,
        Layer::Dns,
        Severity::Warning,
        "intermittent DNS failures",
        format!(
            "{failed} of {} lookups of {} failed ({}: {}); the others answered",
            d.lookups,
            d.name,
            pct(failed as f64 / d.lookups as f64),
            how.join(", ")
        ),
    )
    .line(format!("{} {}", d.name, summary(d)))
    .next("kubectl -n kube-system logs -l k8s-app=kube-dns --tail=50")
    .add();
}
