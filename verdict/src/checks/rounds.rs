//! `tcp_rounds` evidence (plan `rounds`, `--repeat`/`--for`): repeated connects to one address.
//! The compact line per address ("200 connects: 193 ok, 7 timeout (3.5%); p50 0.4 ms p99
//! 2.1 ms"), and the rules only repeated connects can support:
//!
//! - [`service`]: one bad endpoint among good ones, by failure rate (`service_bad_endpoint`,
//!   the single-shot rule's diagnosis, measured);
//! - [`apply`]: intermittent connect failures (`tcp_intermittent`) with the pattern of the
//!   failures (every Nth attempt, a streak, flapping, a burst, spread over the run); an
//!   endpoint much slower to accept than the others (`endpoint_latency_outlier`); one line
//!   per address; for a clean run, what it proves (the smallest failure rate it would have
//!   shown).
//!
//! The probe also sends the first attempt toward each address as ordinary `tcp` evidence, so
//! the single-shot rules still run. An address that failed only part of the time is judged
//! here and claimed ([`Report::explained`]), so that its first attempt is not reported again as
//! a hard failure (`L4 timeout`); an address that failed every time is left to the
//! single-shot rules, which name the cause, and the rounds add its counts as a line.
//!
//! Flapping is not a rule of its own: it is one of the patterns of an intermittent failure
//! (`flapping: 3 failure streaks`), since the finding, its severity and its next steps are
//! the same; only the words about the pattern differ.

use std::net::SocketAddr;

use protocol::{Counter, LatencySummary, Open, TargetRole, TcpOutcome, TcpRoundsEvidence};

use crate::facts::Facts;
use crate::kube::{DestinationInfo, ServiceInfo};
use crate::model::{Layer, Mark, Origin, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::stats::{ci_words, median, pct, power_words, wilson};
use crate::words::{latency_words, list, ms, plural};

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
        .map(|l| format!("; {}", latency_words(&l)))
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
    crate::stats::pct(n as f64 / of as f64)
}

// ---- which addresses, and what they are ---------------------------------------------------

/// Every address the run made rounds toward, in stream order; one without an attempt is left
/// out (a rate over nothing says nothing).
fn all<'a>(f: &Facts<'a>) -> Vec<&'a TcpRoundsEvidence> {
    f.all::<TcpRoundsEvidence>()
        .into_iter()
        .filter(|x| x.attempts > 0)
        .collect()
}

/// Some attempts failed and some connected.
fn partial(x: &TcpRoundsEvidence) -> bool {
    x.failed() > 0 && x.failed() < x.attempts
}

/// Did the rounds toward `address` fail only part of the time? Such an address is judged by
/// the rounds rules, not by the single-shot rules reading its first attempt.
pub fn intermittent_at(f: &Facts, address: SocketAddr) -> bool {
    all(f).iter().any(|x| x.address == address && partial(x))
}

/// Did the run make rounds toward `address`? Their line (counts and latency of every attempt)
/// then stands for the address instead of its first attempt's.
pub fn has_rounds(f: &Facts, address: SocketAddr) -> bool {
    all(f).iter().any(|x| x.address == address)
}

fn rate(x: &TcpRoundsEvidence) -> f64 {
    x.failed() as f64 / x.attempts.max(1) as f64
}

fn role(f: &Facts, x: &TcpRoundsEvidence) -> Open<TargetRole> {
    f.role(&x.role, x.address.ip())
}

/// What an address stands for: `pod/web-2 on node-b` for an endpoint, `svc/web:80` for the
/// ClusterIP, `pod/web-0` for a destination pod; None for a plain address.
fn what(f: &Facts, x: &TcpRoundsEvidence) -> Option<String> {
    match f.kube.destination.as_ref()? {
        DestinationInfo::Service(svc) => {
            if role(f, x) == TargetRole::ClusterIp {
                return Some(format!("svc/{}:{}", svc.name, x.address.port()));
            }
            let ep = svc.endpoint_at(x.address)?;
            let pod = ep.pod.as_ref()?;
            Some(match &ep.node {
                Some(node) => format!("pod/{pod} on {node}"),
                None => format!("pod/{pod}"),
            })
        }
        DestinationInfo::Pod(p) => {
            p.ip.as_deref()
                .is_some_and(|ip| ip.parse() == Ok(x.address.ip()))
                .then(|| format!("pod/{}", p.name))
        }
        DestinationInfo::Address { .. } => None,
    }
}

/// `10.244.1.9:8080 (pod/web-2 on node-b)`.
fn described(f: &Facts, x: &TcpRoundsEvidence) -> String {
    match what(f, x) {
        Some(w) => format!("{} ({w})", x.address),
        None => x.address.to_string(),
    }
}

/// The pod behind an address (an endpoint of the Service, or the destination pod).
fn pod_of(f: &Facts, x: &TcpRoundsEvidence) -> Option<(String, String, Option<String>)> {
    match f.kube.destination.as_ref()? {
        DestinationInfo::Service(svc) if role(f, x) == TargetRole::Endpoint => {
            let ep = svc.endpoint_at(x.address)?;
            Some((svc.namespace.clone(), ep.pod.clone()?, ep.node.clone()))
        }
        DestinationInfo::Pod(p) => what(f, x).map(|_| (p.namespace.clone(), p.name.clone(), None)),
        _ => None,
    }
}

// ---- the words about failures -------------------------------------------------------------

/// The failing outcomes, most frequent first.
fn failure_counts(x: &TcpRoundsEvidence) -> Vec<(u64, &Open<TcpOutcome>)> {
    let mut counts: Vec<(u64, &Open<TcpOutcome>)> = x
        .outcomes
        .iter()
        .filter(|(o, n)| **o != TcpOutcome::Ok && **n > 0)
        .map(|(o, n)| (*n, o))
        .collect();
    counts.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    counts
}

/// `timed out`, `were refused`; `failed` when the failures differ.
fn failed_verb(x: &TcpRoundsEvidence) -> String {
    let counts = failure_counts(x);
    let [(_, only)] = counts.as_slice() else {
        return "failed".into();
    };
    match only.known() {
        Some(TcpOutcome::Timeout) => "timed out".into(),
        Some(TcpOutcome::Refused) => "were refused".into(),
        Some(TcpOutcome::HostUnreachable) => "got host unreachable (ICMP)".into(),
        Some(TcpOutcome::NetworkUnreachable) => "got network unreachable".into(),
        Some(TcpOutcome::PermissionDenied) => "were blocked locally (EPERM)".into(),
        Some(TcpOutcome::AddressNotAvailable) => "found no free local port (EADDRNOTAVAIL)".into(),
        _ => format!("failed ({only})"),
    }
}

/// `3.5%, 95% CI 1.7-7.0%`, and when the failures differ `: 5 timeout, 2 refused`.
fn rate_words(x: &TcpRoundsEvidence) -> String {
    let counts = failure_counts(x);
    let kinds = if counts.len() > 1 {
        let each: Vec<String> = counts.iter().map(|(n, o)| format!("{n} {o}")).collect();
        format!(": {}", each.join(", "))
    } else {
        String::new()
    };
    format!(
        "{}, {}{kinds}",
        pct(rate(x)),
        ci_words(x.failed(), x.attempts)
    )
}

/// What the ICMP errors among the kept failures say (the kernel's error queue, per attempt):
/// `; every failure was administratively prohibited (ICMP 3/13) from 10.0.0.1`, or how many
/// were which. Nothing when none carried one.
fn icmp_failure_words(x: &TcpRoundsEvidence) -> String {
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for i in x.failures.iter().filter_map(|s| s.icmp.as_ref()) {
        *counts.entry(super::tcp_icmp::icmp_words(i)).or_default() += 1;
    }
    let with_icmp: u64 = counts.values().sum();
    if with_icmp == 0 {
        return String::new();
    }
    let kept = x.failures.len() as u64;
    if let [(words, _)] = counts.iter().collect::<Vec<_>>().as_slice() {
        if with_icmp == kept && x.failures_dropped == 0 {
            return format!("; every failure was {words}");
        }
    }
    let each: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    format!(
        "; of the {} kept, {} ended with an ICMP error: {}",
        plural(kept, "failure", "failures"),
        with_icmp,
        list(&each, 3)
    )
}

/// `, every 4th attempt`, or nothing when the failures were not all kept.
fn pattern_suffix(x: &TcpRoundsEvidence) -> String {
    pattern(x)
        .map(|p| format!(", {}", p.words(x.attempts)))
        .unwrap_or_default()
}

// ---- the pattern of the failures ----------------------------------------------------------

/// All failures within this share of the run's duration are a burst.
const BURST_SHARE: f64 = 0.2;
/// The fewest failures a pattern (every Nth, a burst, a streak) is claimed from: two points
/// are always a "constant gap".
const PATTERN_MIN: usize = 3;

/// How the failures of one address were spread over its attempts (attempts numbered from 1).
#[derive(Debug, Clone, PartialEq)]
enum Pattern {
    /// Too few failures for a pattern: where they were.
    Few(Vec<u64>),
    /// Failures in one unbroken streak.
    Streak {
        from: u64,
        to: u64,
    },
    /// At least two streaks of at least 3 failures each, with successes between them.
    Flapping {
        streaks: usize,
        shortest: u64,
        longest: u64,
    },
    /// A constant gap between failures, from the start of the run to its end.
    EveryNth(u64),
    /// All failures within a short window of the run.
    Burst {
        within_ms: f64,
        from: u64,
        to: u64,
    },
    Spread {
        from: u64,
        to: u64,
    },
}

impl Pattern {
    fn words(&self, attempts: u64) -> String {
        match self {
            Pattern::Few(at) if at.len() == 1 => format!("at attempt {} of {attempts}", at[0]),
            Pattern::Few(at) => format!(
                "at attempts {} of {attempts}",
                at.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Pattern::Streak { from: 1, to } => {
                format!("the first {to} attempts, then none: it recovered during the run")
            }
            Pattern::Streak { from, to } if *to == attempts => format!(
                "every attempt from the {} on: it broke during the run and had not recovered",
                ordinal(*from)
            ),
            Pattern::Streak { from, to } => format!(
                "in one burst: {} in a row (attempts {from}-{to} of {attempts})",
                to - from + 1
            ),
            Pattern::Flapping {
                streaks,
                shortest,
                longest,
            } => {
                let lengths = if shortest == longest {
                    format!("of {shortest} attempts each")
                } else {
                    format!("of {shortest}-{longest} attempts")
                };
                format!("flapping: {streaks} failure streaks {lengths}, with successes between")
            }
            Pattern::EveryNth(n) => format!("every {} attempt", ordinal(*n)),
            Pattern::Burst {
                within_ms,
                from,
                to,
            } => format!(
                "in a burst: all within {} (attempts {from}-{to} of {attempts})",
                ms(*within_ms)
            ),
            Pattern::Spread { from, to } => {
                format!("spread over the run (attempts {from} to {to} of {attempts})")
            }
        }
    }
}

/// `1st`, `2nd`, `3rd`, `4th`, `11th`, `21st`.
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The pattern of the failures, from the failure samples. None when there is none, or when the
/// probe kept only the first of them (`failures_dropped`): a pattern of a part would mislead.
fn pattern(x: &TcpRoundsEvidence) -> Option<Pattern> {
    let failed = x.failed();
    if failed == 0 || x.failures.len() as u64 != failed || x.failures_dropped > 0 {
        return None;
    }
    // Rounds count from the first round that reached this address: one attempt per round.
    let base = x
        .samples
        .first()
        .map_or(0, |s| s.round)
        .min(x.failures[0].round);
    let at: Vec<u64> = x
        .failures
        .iter()
        .map(|s| u64::from(s.round.saturating_sub(base)) + 1)
        .collect();
    if at.len() < PATTERN_MIN {
        return Some(Pattern::Few(at));
    }
    let (first, last) = (at[0], at[at.len() - 1]);
    let streaks = streaks(&at);
    if streaks.len() == 1 {
        return Some(Pattern::Streak {
            from: first,
            to: last,
        });
    }
    let lengths: Vec<u64> = streaks.iter().map(|(a, b)| b - a + 1).collect();
    if lengths.iter().all(|n| *n as usize >= PATTERN_MIN) {
        return Some(Pattern::Flapping {
            streaks: streaks.len(),
            shortest: lengths.iter().copied().min().unwrap_or(0),
            longest: lengths.iter().copied().max().unwrap_or(0),
        });
    }
    // Every Nth: the same gap throughout, and the run no longer than a gap before the first
    // failure and after the last (else it is every Nth within a part of the run).
    let gap = at[1] - at[0];
    if at.windows(2).all(|w| w[1] - w[0] == gap) && first <= gap && x.attempts - last < gap {
        return Some(Pattern::EveryNth(gap));
    }
    let within_ms = x.failures[x.failures.len() - 1].offset_ms - x.failures[0].offset_ms;
    let run_ms = x.last_ms - x.first_ms;
    let burst = if run_ms > 0.0 {
        within_ms < BURST_SHARE * run_ms
    } else {
        ((last - first + 1) as f64) < BURST_SHARE * x.attempts as f64
    };
    Some(if burst {
        Pattern::Burst {
            within_ms,
            from: first,
            to: last,
        }
    } else {
        Pattern::Spread {
            from: first,
            to: last,
        }
    })
}

/// Runs of consecutive attempt numbers: (first, last) of each.
fn streaks(at: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &n in at {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == n => *last = n,
            _ => out.push((n, n)),
        }
    }
    out
}

// ---- one bad endpoint among good ones -----------------------------------------------------

/// How much above the others' failure rate a bad endpoint's must be, besides being clearly
/// apart from it.
const BAD_ENDPOINT_FACTOR: f64 = 3.0;

/// One bad endpoint (or a minority) among good ones, by failure rate: the diagnosis of the
/// single-shot `service_bad_endpoint`, measured. Runs after `kube::service`: when that rule
/// already named an endpoint that failed every attempt, this one stays silent (one finding
/// per diagnosis) and any partial failure elsewhere is reported as intermittent.
pub fn service(f: &Facts, r: &mut Report) {
    let Some(svc) = f.service() else {
        return;
    };
    let endpoints: Vec<&TcpRoundsEvidence> = all(f)
        .into_iter()
        .filter(|x| role(f, x) == TargetRole::Endpoint)
        .collect();
    if r.has(RuleCode::ServiceBadEndpoint) {
        // The single-shot rule named the endpoints that failed every attempt: say whether
        // they account for the ClusterIP's failures (and claim it when they do).
        let (bad, good): Split = endpoints
            .iter()
            .partition(|x| r.explained.contains(&x.address));
        if !bad.is_empty() {
            let words = cluster_ip_words(f, &bad, &good, r);
            if !words.is_empty() {
                r.info(Layer::Service, words.trim_start_matches("; ").to_string());
            }
        }
        return;
    }
    if let Some((bad, good)) = outliers(&endpoints) {
        bad_endpoint(f, svc, &bad, &good, r);
    }
}

type Split<'a> = (Vec<&'a TcpRoundsEvidence>, Vec<&'a TcpRoundsEvidence>);

/// The endpoints whose failure rate stands clearly above the others', and the others.
/// "Clearly" is kept simple and conservative: each one's 95% interval lies wholly above the
/// 95% interval of the others' pooled rate (the intervals do not overlap), and its rate is at
/// least 3 times theirs. They must be a minority (one of two counts): when half the endpoints
/// fail, it is not one bad endpoint. When no set passes, each failing address is reported as
/// an intermittent failure instead.
fn outliers<'a>(endpoints: &[&'a TcpRoundsEvidence]) -> Option<Split<'a>> {
    if endpoints.len() < 2 {
        return None;
    }
    let mut sorted = endpoints.to_vec();
    sorted.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
    let most = if sorted.len() == 2 {
        1
    } else {
        (sorted.len() - 1) / 2
    };
    // The largest minority that passes: with two bad endpoints of five, naming only the worst
    // would leave the second among the "good" ones and fail the test.
    (1..=most).rev().find_map(|k| {
        let (bad, good) = sorted.split_at(k);
        let failed: u64 = good.iter().map(|x| x.failed()).sum();
        let attempts: u64 = good.iter().map(|x| x.attempts).sum();
        let (_, good_high) = wilson(failed, attempts)?;
        let good_rate = failed as f64 / attempts as f64;
        let clear = bad.iter().all(|x| {
            wilson(x.failed(), x.attempts).is_some_and(|(low, _)| low > good_high)
                && rate(x) >= BAD_ENDPOINT_FACTOR * good_rate
        });
        clear.then(|| (bad.to_vec(), good.to_vec()))
    })
}

fn bad_endpoint(
    f: &Facts,
    svc: &ServiceInfo,
    bad: &[&TcpRoundsEvidence],
    good: &[&TcpRoundsEvidence],
    r: &mut Report,
) {
    let each: Vec<String> = bad
        .iter()
        .map(|x| {
            format!(
                "{} failed {} of {} connects ({}){}",
                described(f, x),
                pct(rate(x)),
                x.attempts,
                ci_and_kinds(x),
                pattern_suffix(x)
            )
        })
        .collect();
    let good_failed: u64 = good.iter().map(|x| x.failed()).sum();
    let good_attempts: u64 = good.iter().map(|x| x.attempts).sum();
    let others = if good.len() == 1 {
        format!(
            "the other endpoint of svc/{} {good_failed} of {good_attempts}",
            svc.name
        )
    } else {
        format!(
            "the other {} endpoints of svc/{} {good_failed} of {good_attempts}",
            good.len(),
            svc.name
        )
    };
    let cluster = cluster_ip_words(f, bad, good, r);
    let mut b = r.finding(
        RuleCode::ServiceBadEndpoint,
        Layer::Service,
        Severity::Warning,
        "bad endpoint",
        format!("{}; {others}{cluster}", each.join("; ")),
    );
    // The counts are a TCP line, beside the other addresses' lines.
    for x in bad {
        b = b.line_in(Layer::Transport, format!("{} {}", x.address, summary(x)));
    }
    for step in next_steps(f, bad[0]) {
        b = b.next(step);
    }
    b.add();
    for x in bad {
        r.explained.insert(x.address);
    }
}

/// `95% CI 11-47%, 5 timeout`.
fn ci_and_kinds(x: &TcpRoundsEvidence) -> String {
    let kinds: Vec<String> = failure_counts(x)
        .iter()
        .map(|(n, o)| format!("{n} {o}"))
        .collect();
    format!("{}, {}", ci_words(x.failed(), x.attempts), kinds.join(", "))
}

/// What the ClusterIP's own rate says beside the bad endpoints, if the run made rounds toward
/// it. Connections through it are expected to spread evenly over the endpoints (kube-proxy
/// picks one at random), so its expected rate is the mean of theirs; when that lies within
/// the 95% interval of its own rate, the bad endpoints explain it and it is claimed.
fn cluster_ip_words(
    f: &Facts,
    bad: &[&TcpRoundsEvidence],
    good: &[&TcpRoundsEvidence],
    r: &mut Report,
) -> String {
    let Some(c) = all(f)
        .into_iter()
        .find(|x| role(f, x) == TargetRole::ClusterIp)
    else {
        return String::new();
    };
    let Some((low, high)) = wilson(c.failed(), c.attempts) else {
        return String::new();
    };
    let n = bad.len() + good.len();
    let expected = bad.iter().chain(good).map(|x| rate(x)).sum::<f64>() / n as f64;
    let rates: Vec<f64> = bad.iter().map(|x| rate(x)).collect();
    let (lowest, highest) = (
        rates.iter().copied().fold(f64::INFINITY, f64::min),
        rates.iter().copied().fold(0.0, f64::max),
    );
    let failing = if pct(lowest) == pct(highest) {
        pct(highest)
    } else {
        format!("{}-{}", pct(lowest).trim_end_matches('%'), pct(highest))
    };
    let share = format!("{} of {n} endpoints failing {failing}", bad.len());
    let own = format!("{} ({} of {})", pct(rate(c)), c.failed(), c.attempts);
    if (low..=high).contains(&expected) {
        if partial(c) {
            r.explained.insert(c.address);
        }
        format!(
            "; the ClusterIP's {own} is consistent with {share} (about {} expected)",
            pct(expected)
        )
    } else if c.failed() == 0 {
        format!(
            "; yet no connect through the ClusterIP failed ({own}, where about {} would be \
             expected if it spread connections evenly): it may not send to the failing \
             endpoints (session affinity, topology-aware routing)",
            pct(expected)
        )
    } else {
        format!(
            "; the ClusterIP's {own} is more than {share} explains (about {}): it also fails \
             on its own",
            pct(expected)
        )
    }
}

// ---- intermittent failures, slow endpoints, the lines, the power of a clean run ---------

/// The rounds rules of the Transport layer, before the single-shot TCP rules so that a partial
/// failure claims its address ([`Report::explained`]) before its first attempt is read.
pub fn apply(f: &Facts, r: &mut Report) {
    let rounds = all(f);
    if rounds.is_empty() {
        return;
    }
    let intermittent: Vec<&TcpRoundsEvidence> = rounds
        .iter()
        .copied()
        .filter(|x| partial(x) && !r.explained.contains(&x.address))
        .collect();
    if !intermittent.is_empty() {
        intermittent_rule(f, &intermittent, r);
    }
    latency_outliers(f, &rounds, r);
    lines(f, &rounds, r);
    notes(f, r);
}

/// Some but not all attempts toward an address failed. One finding: the worst address in
/// the cause, every such address as a line.
fn intermittent_rule(f: &Facts, xs: &[&TcpRoundsEvidence], r: &mut Report) {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
    let x0 = xs[0];
    let mut cause = format!(
        "{} of {} connects to {} {} ({}){}{}{}",
        x0.failed(),
        x0.attempts,
        described(f, x0),
        failed_verb(x0),
        rate_words(x0),
        pattern_suffix(x0),
        icmp_failure_words(x0),
        context(f, x0)
    );
    if xs.len() > 1 {
        let others: Vec<String> = xs[1..]
            .iter()
            .map(|x| format!("{} {} of {}", described(f, x), x.failed(), x.attempts))
            .collect();
        cause.push_str(&format!("; also {}", list(&others, 3)));
    }
    let mut b = r.finding(
        RuleCode::TcpIntermittent,
        Layer::Transport,
        Severity::Warning,
        "intermittent connect failures",
        cause,
    );
    for x in &xs {
        b = b.line(format!("{} {}", x.address, summary(x)));
    }
    for step in next_steps(f, x0) {
        b = b.next(step);
    }
    b.add();
    for x in xs {
        r.explained.insert(x.address);
    }
}

/// What the other evidence says about where the losses are.
fn context(f: &Facts, x: &TcpRoundsEvidence) -> String {
    let endpoints: Vec<&TcpRoundsEvidence> = all(f)
        .into_iter()
        .filter(|e| role(f, e) == TargetRole::Endpoint)
        .collect();
    let mut out = String::new();
    if role(f, x) == TargetRole::ClusterIp
        && !endpoints.is_empty()
        && endpoints.iter().all(|e| e.failed() == 0)
    {
        let n: u64 = endpoints.iter().map(|e| e.attempts).sum();
        out.push_str(&format!(
            "; every endpoint answered all its connects directly ({n} of {n}), so the losses \
             are in the Service translation on the path (kube-proxy's rules, conntrack)"
        ));
    }
    out.push_str(&chosen_words(f, x));
    let overflows = f.counter_delta(Counter::ListenOverflows).unwrap_or(0)
        + f.counter_delta(Counter::ListenDrops).unwrap_or(0);
    if overflows > 0 && x.count(TcpOutcome::Timeout) > 0 {
        out.push_str(&format!(
            "; the kernel counted {} in this namespace during the run (see listen queue \
             overflow)",
            plural(overflows, "listen-queue drop", "listen-queue drops")
        ));
    }
    out
}

/// For a ClusterIP whose attempts conntrack attributed (the DNAT in the probe's namespace, as
/// on a node): where the failures went. "; every one when conntrack chose 10.244.1.9:8080
/// (pod/web-2 on node-b), 0 of 20 to the others".
fn chosen_words(f: &Facts, x: &TcpRoundsEvidence) -> String {
    let failing: Vec<_> = x.chosen.iter().filter(|c| c.failed > 0).collect();
    if failing.is_empty() {
        return String::new();
    }
    let name = |addr: std::net::SocketAddr| {
        let pod = f
            .service()
            .and_then(|s| {
                s.endpoints
                    .iter()
                    .find(|e| e.ip.parse().ok() == Some(addr.ip()))
            })
            .and_then(|e| {
                e.pod.as_ref().map(|p| match &e.node {
                    Some(n) => format!(" (pod/{p} on {n})"),
                    None => format!(" (pod/{p})"),
                })
            })
            .unwrap_or_default();
        format!("{addr}{pod}")
    };
    let to_others: u64 = x
        .chosen
        .iter()
        .filter(|c| c.failed == 0)
        .map(|c| c.attempts)
        .sum();
    if let [only] = failing.as_slice() {
        if only.failed == x.failed() {
            return format!(
                "; every one when conntrack chose {} ({} of its {}), none of the {to_others} \
                 sent to the others",
                name(only.endpoint),
                only.failed,
                only.attempts
            );
        }
    }
    let each: Vec<String> = failing
        .iter()
        .map(|c| format!("{} {} of {}", name(c.endpoint), c.failed, c.attempts))
        .collect();
    format!("; by the endpoint conntrack chose: {}", each.join(", "))
}

/// Notes about the rounds: which endpoint served a ClusterIP's attempts is unknown, and why.
pub fn notes(f: &Facts, r: &mut Report) {
    for x in all(f) {
        if let (Some(why), true) = (&x.unattributed, x.failed() > 0) {
            r.notes.push(format!(
                "which endpoint served each failed attempt to {} is not known: {why}; the \
                 endpoints' own rounds are what tell them apart",
                x.address
            ));
        }
    }
}

/// What to run next about a failing address: for timeouts the same rounds again with a
/// capture (where the run may capture; otherwise the capture that works), the socket health
/// of the pod behind the address, and a capture on that pod's node; for refusals the pod's
/// sockets first.
fn next_steps(f: &Facts, x: &TcpRoundsEvidence) -> Vec<String> {
    let refused_only = x.count(TcpOutcome::Refused) == x.failed();
    let origin = f.title.origin_or(f.kube);
    let asked = rounds_again(f, x);
    let capture = crate::steps::capture(
        f,
        &origin,
        asked.as_deref(),
        &if refused_only {
            format!(
                "the rounds again, captured: which connects to {} get a RST",
                x.address
            )
        } else {
            format!(
                "the rounds again, captured: which SYNs to {} go unanswered",
                x.address
            )
        },
    );
    let pod = pod_of(f, x).filter(|_| !f.is_local());
    let sockets = match &pod {
        Some((namespace, name, _)) => format!(
            "{}   # what pod/{name} listens on, its accept queue and drops",
            Origin::Pod {
                namespace: namespace.clone(),
                name: name.clone(),
            }
            .command(None, "--sockets"),
        ),
        None if role(f, x) == TargetRole::ClusterIp => {
            "conntrack -S   # on the source's node: insert_failed or drop rising with the failures"
                .to_string()
        }
        None => format!(
            "ss -ltn 'sport = :{}'   # on the destination: the listener and its accept queue",
            x.address.port()
        ),
    };
    if refused_only {
        return vec![sockets, capture];
    }
    let mut next = vec![capture, sockets];
    if let Some((_, _, Some(node))) = &pod {
        next.push(format!(
            "tcpdump -ni any '{}'   # on {node} while the rounds run: do the lost SYNs arrive?",
            crate::steps::host_port_filter(x.address)
        ));
    }
    next
}

/// The flags that make the same rounds again: the asked ones, with `--repeat N` added when a
/// client did not pass them on (a capture of one connect would likely miss the failure).
fn rounds_again(f: &Facts, x: &TcpRoundsEvidence) -> Option<String> {
    let asked = f.title.asked_flags()?;
    if asked.contains("--repeat") || asked.contains("--for") {
        Some(asked)
    } else {
        Some(format!("{asked} --repeat {}", x.attempts))
    }
}

/// An endpoint's p50 this many times the others' median p50, and at least [`SLOW_MIN_MS`]
/// above it, is an outlier: the ratio alone would flag 0.5 ms against 0.1 ms, the difference
/// alone 45 ms against 40 ms on a slow network.
const SLOW_FACTOR: f64 = 5.0;
const SLOW_MIN_MS: f64 = 5.0;

/// Endpoints much slower to accept a connect than the others (the median of the others' p50,
/// so that one slow endpoint does not hide another).
fn latency_outliers(f: &Facts, rounds: &[&TcpRoundsEvidence], r: &mut Report) {
    let endpoints: Vec<(&TcpRoundsEvidence, LatencySummary)> = rounds
        .iter()
        .filter(|x| role(f, x) == TargetRole::Endpoint)
        .filter_map(|x| x.latency_ms.map(|l| (*x, l)))
        .collect();
    if endpoints.len() < 2 {
        return;
    }
    let slow: Vec<(&TcpRoundsEvidence, LatencySummary, f64)> = endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, (x, l))| {
            let others: Vec<f64> = endpoints
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, o))| o.p50)
                .collect();
            let m = median(&others)?;
            (l.p50 >= SLOW_FACTOR * m && l.p50 - m >= SLOW_MIN_MS).then_some((*x, *l, m))
        })
        .collect();
    let Some((x0, l0, m0)) = slow.first().copied() else {
        return;
    };
    let others = endpoints.len() - 1;
    let through = f
        .service()
        .map(|s| {
            format!(
                ": about {} in {} connections through svc/{} wait that long",
                slow.len(),
                endpoints.len(),
                s.name
            )
        })
        .unwrap_or_default();
    let mut b = r.finding(
        RuleCode::EndpointLatencyOutlier,
        Layer::Transport,
        Severity::Warning,
        "slow endpoint",
        format!(
            "{} takes {} to accept a connect (p50 of {}) while the other {others} endpoints \
             take {} (median p50){through}",
            described(f, x0),
            ms(l0.p50),
            plural(x0.count(TcpOutcome::Ok), "connect", "connects"),
            ms(m0)
        ),
    );
    for (x, l, m) in &slow {
        b = b.line(format!(
            "{} connect p50 {} p90 {} p99 {}; the other endpoints' median p50 {}",
            x.address,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(*m)
        ));
    }
    if let Some((namespace, name, node)) = pod_of(f, x0).filter(|_| !f.is_local()) {
        b = b
            .next(format!(
                "{}   # the slow pod's accept queue and socket health",
                Origin::Pod {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }
                .command(None, "--sockets")
            ))
            .next(match node {
                Some(node) => format!(
                    "kubectl top pod -n {namespace} {name}; kubectl describe node {node}   # CPU \
                     pressure on the pod or its node delays the SYN-ACK"
                ),
                None => format!("kubectl top pod -n {namespace} {name}"),
            });
    }
    b.add();
}

/// One line per address: ok for a clean one, context for one that failed every attempt (the
/// single-shot rules name the cause). A partial failure's line is in its finding. Then, when
/// every address was clean, what the run proves.
fn lines(f: &Facts, rounds: &[&TcpRoundsEvidence], r: &mut Report) {
    for x in rounds {
        if x.failed() == 0 {
            r.ok(Layer::Transport, format!("{} {}", x.address, summary(x)));
        } else if x.failed() == x.attempts {
            r.info(Layer::Transport, format!("{} {}", x.address, summary(x)));
        }
        if x.stopped_early {
            r.notes.push(format!(
                "the rounds toward {} stopped after {}: the run's deadline left no room for \
                 another attempt",
                x.address,
                plural(x.attempts, "attempt", "attempts")
            ));
        }
    }
    if rounds.iter().all(|x| x.failed() == 0) {
        r.ok(Layer::Transport, power_line(f, rounds));
    }
}

/// `svc/web: 800/800 connects ok over 200 rounds to 4 addresses; a failure rate of 1.5% or
/// more at any one of them would have shown with 95% confidence`: computed from the address
/// with the fewest attempts, so it holds for each.
fn power_line(f: &Facts, rounds: &[&TcpRoundsEvidence]) -> String {
    let total: u64 = rounds.iter().map(|x| x.attempts).sum();
    let fewest = rounds.iter().map(|x| x.attempts).min().unwrap_or(0);
    let most = rounds.iter().map(|x| x.attempts).max().unwrap_or(0);
    let service = f.service().filter(|_| {
        rounds
            .iter()
            .any(|x| role(f, x).is_any(&[TargetRole::ClusterIp, TargetRole::Endpoint]))
    });
    let subject = match (service, rounds) {
        (Some(s), _) => format!("svc/{}", s.name),
        (None, [x]) => x.address.to_string(),
        (None, _) => "every address".to_string(),
    };
    let over = format!(
        "{total}/{total} connects ok over {}",
        plural(most, "round", "rounds")
    );
    let rate = pct(crate::stats::detectable_rate(fewest));
    if rounds.len() == 1 {
        format!(
            "{subject}: {over}; {}",
            power_words(fewest, "a failure rate")
        )
    } else {
        format!(
            "{subject}: {over} to {} addresses; a failure rate of {rate} or more at any one \
             of them would have shown with 95% confidence",
            rounds.len()
        )
    }
}

/// `reachable (800/800 connects ok over 200 rounds)`: the healthy headline of a run with
/// rounds; None without rounds (or without a connect that worked).
pub fn healthy_headline(f: &Facts) -> Option<String> {
    let rounds = all(f);
    let ok: u64 = rounds.iter().map(|x| x.count(TcpOutcome::Ok)).sum();
    if ok == 0 {
        return None;
    }
    let total: u64 = rounds.iter().map(|x| x.attempts).sum();
    let most = rounds.iter().map(|x| x.attempts).max().unwrap_or(0);
    Some(format!(
        "reachable ({ok}/{total} connects ok over {})",
        plural(most, "round", "rounds")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ConnectSample;

    /// `attempts` connects, one per round every 50 ms, failing (timeout) at `fail_at`.
    fn run(attempts: u32, fail_at: &[u32]) -> TcpRoundsEvidence {
        let samples: Vec<ConnectSample> = (0..attempts)
            .map(|round| ConnectSample {
                round,
                offset_ms: f64::from(round) * 50.0,
                outcome: if fail_at.contains(&round) {
                    TcpOutcome::Timeout
                } else {
                    TcpOutcome::Ok
                }
                .into(),
                latency_ms: 1.0,
                local_port: None,
                endpoint: None,
                icmp: None,
            })
            .collect();
        let failures: Vec<ConnectSample> = samples
            .iter()
            .filter(|s| s.outcome != TcpOutcome::Ok)
            .cloned()
            .collect();
        TcpRoundsEvidence {
            target: "10.0.0.1:80".into(),
            address: "10.0.0.1:80".parse().unwrap(),
            role: TargetRole::Direct.into(),
            attempts: u64::from(attempts),
            outcomes: [
                (
                    Open::Known(TcpOutcome::Ok),
                    u64::from(attempts) - failures.len() as u64,
                ),
                (Open::Known(TcpOutcome::Timeout), failures.len() as u64),
            ]
            .into(),
            latency_ms: None,
            first_ms: 0.0,
            last_ms: f64::from(attempts - 1) * 50.0,
            failures,
            failures_dropped: 0,
            samples,
            samples_dropped: 0,
            stopped_early: false,
            chosen: Vec::new(),
            unattributed: None,
        }
    }

    fn admin_prohibited(from: &str) -> protocol::ConnectIcmp {
        protocol::ConnectIcmp {
            family: protocol::Family::Inet.into(),
            icmp_type: 3,
            code: 13,
            from: Some(from.parse().unwrap()),
            meaning: protocol::IcmpMeaning::AdminProhibited.into(),
        }
    }

    #[test]
    fn icmp_errors_among_the_failures_are_named() {
        let mut x = run(20, &[3, 7, 11, 15]);
        assert_eq!(icmp_failure_words(&x), "");
        for s in &mut x.failures {
            s.icmp = Some(admin_prohibited("10.0.0.254"));
        }
        assert_eq!(
            icmp_failure_words(&x),
            "; every failure was administratively prohibited (ICMP 3/13) from 10.0.0.254"
        );
        x.failures[0].icmp = None;
        x.failures[1].icmp = Some(admin_prohibited("10.0.0.253"));
        assert_eq!(
            icmp_failure_words(&x),
            "; of the 4 failures kept, 3 ended with an ICMP error: 1 administratively \
             prohibited (ICMP 3/13) from 10.0.0.253, 2 administratively prohibited \
             (ICMP 3/13) from 10.0.0.254"
        );
    }

    #[test]
    fn ordinals() {
        let words: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            words,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd",
                "101st", "111th"
            ]
        );
    }

    #[test]
    fn streaks_group_consecutive_attempts() {
        assert_eq!(streaks(&[1, 2, 3, 7, 9, 10]), [(1, 3), (7, 7), (9, 10)]);
    }

    #[test]
    fn every_nth_must_cover_the_run() {
        assert_eq!(
            pattern(&run(20, &[3, 7, 11, 15, 19])),
            Some(Pattern::EveryNth(4))
        );
        // Every 4th, but only in the first fifth of 200 rounds: a burst, not "every 4th".
        assert!(matches!(
            pattern(&run(200, &[3, 7, 11, 15])),
            Some(Pattern::Burst {
                from: 4,
                to: 16,
                ..
            })
        ));
        // A constant gap that stops half way is spread over the run.
        assert_eq!(
            pattern(&run(100, &[10, 30, 50])),
            Some(Pattern::Spread { from: 11, to: 51 })
        );
    }

    #[test]
    fn one_short_streak_is_not_flapping() {
        // Two streaks, one of them too short: spread, not flapping.
        assert!(matches!(
            pattern(&run(100, &[10, 11, 12, 70, 71])),
            Some(Pattern::Spread { .. })
        ));
        assert_eq!(
            pattern(&run(100, &[10, 11, 12, 70, 71, 72])),
            Some(Pattern::Flapping {
                streaks: 2,
                shortest: 3,
                longest: 3
            })
        );
        assert_eq!(
            pattern(&run(100, &[0, 1, 2])).map(|p| p.words(100)),
            Some("the first 3 attempts, then none: it recovered during the run".to_string())
        );
    }

    /// With failures past the sample cap the pattern of the kept ones could mislead: none.
    #[test]
    fn no_pattern_from_a_part_of_the_failures() {
        let mut x = run(100, &[3, 7, 11, 15]);
        x.failures.truncate(2);
        x.failures_dropped = 2;
        assert_eq!(pattern(&x), None);
        assert_eq!(pattern_suffix(&x), "");
        assert_eq!(pattern(&run(100, &[])), None);
    }
}
