//! Check `dns` with plan `rounds`: every name looked up again and again the way an
//! application's resolver does it (see `dns/app.rs`: A and AAAA from one socket unless
//! resolv.conf says otherwise, the search list, the resolver's timeout and attempts), paced
//! like the connect rounds. One `dns_rounds` evidence per name: exact outcome and rcode
//! counts, the replies lost per record type, and the stalls (lookups that took at least the
//! resolver's timeout: the "DNS sometimes takes 5 s" signature).

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::{
    CheckKind, DnsLookupOutcome, DnsLookupSample, DnsRoundsEvidence, Evidence, LatencySummary,
    Open, RoundsPlan,
};

use super::pacing::{ms, run_paced, Finished, Pace, Ticker};
use crate::context::Ctx;
use crate::dns::{app_lookup, AppLookup};

/// A lookup needs at least one of the resolver's waits before the deadline to tell a stall.
const DEADLINE_MARGIN: Duration = Duration::from_millis(200);

pub async fn run(ctx: &Ctx, rounds: &RoundsPlan, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let config = ctx.resolver();
    let timeout = Duration::from_secs(u64::from(config.timeout_s.max(1)));
    let mut tallies: Vec<Tally> = names
        .iter()
        .map(|_| Tally::new(rounds.sample_cap as usize, timeout))
        .collect();
    let deadline = ctx.deadline;
    let mut ticker = Ticker::new(ctx, CheckKind::Dns, rounds, names.len());
    let stopped_early = run_paced(
        &Pace::new(rounds, timeout + DEADLINE_MARGIN),
        names.len(),
        || ctx.remaining(),
        |i, _round| app_lookup(config, &names[i], deadline),
        |done| {
            let l = &done.result;
            ticker.tick(l.outcome != DnsLookupOutcome::Answered || l.latency >= timeout);
            tallies[done.item].add(done)
        },
    )
    .await;
    ticker.finish();
    for (name, tally) in names.iter().zip(tallies) {
        ctx.emit(Evidence::DnsRounds(tally.into_evidence(
            name,
            ctx,
            timeout,
            stopped_early,
        )));
    }
}

/// Exact counts and bounded samples for one name.
struct Tally {
    cap: usize,
    stall_at: Duration,
    lookups: u64,
    outcomes: BTreeMap<Open<DnsLookupOutcome>, u64>,
    cut_by_deadline: u64,
    queries: u64,
    rcodes: BTreeMap<Open<protocol::Rcode>, u64>,
    lost: BTreeMap<Open<protocol::RecordType>, u64>,
    stalls: u64,
    answered_latencies: Vec<f64>,
    stall_samples: Vec<DnsLookupSample>,
    samples: Vec<DnsLookupSample>,
    samples_dropped: u64,
}

impl Tally {
    fn new(cap: usize, stall_at: Duration) -> Tally {
        Tally {
            cap,
            stall_at,
            lookups: 0,
            outcomes: BTreeMap::new(),
            cut_by_deadline: 0,
            queries: 0,
            rcodes: BTreeMap::new(),
            lost: BTreeMap::new(),
            stalls: 0,
            answered_latencies: Vec::new(),
            stall_samples: Vec::new(),
            samples: Vec::new(),
            samples_dropped: 0,
        }
    }

    fn add(&mut self, done: Finished<AppLookup>) {
        let l = done.result;
        self.queries += u64::from(l.queries);
        for rcode in &l.rcodes {
            *self
                .rcodes
                .entry(crate::dns::rcode_name(*rcode))
                .or_default() += 1;
        }
        for t in &l.lost {
            *self.lost.entry(Open::parse(&t.to_string())).or_default() += 1;
        }
        // A lookup the deadline cut short is neither a success nor a failure.
        if l.cut_by_deadline {
            self.cut_by_deadline += 1;
            return;
        }
        self.lookups += 1;
        *self.outcomes.entry(l.outcome.into()).or_default() += 1;
        if l.outcome == DnsLookupOutcome::Answered {
            self.answered_latencies.push(ms(l.latency));
        }
        let mut lost: Vec<Open<protocol::RecordType>> =
            l.lost.iter().map(|t| Open::parse(&t.to_string())).collect();
        // Each type once, whatever order the losses came in.
        lost.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        lost.dedup();
        let sample = DnsLookupSample {
            round: done.round,
            offset_ms: ms(done.offset),
            outcome: l.outcome.into(),
            latency_ms: ms(l.latency),
            queries: l.queries,
            lost,
        };
        if l.latency >= self.stall_at {
            self.stalls += 1;
            if self.stall_samples.len() < self.cap {
                self.stall_samples.push(sample.clone());
            }
        }
        if self.samples.len() < self.cap {
            self.samples.push(sample);
        } else {
            self.samples_dropped += 1;
        }
    }

    fn into_evidence(
        mut self,
        name: &str,
        ctx: &Ctx,
        timeout: Duration,
        stopped_early: bool,
    ) -> DnsRoundsEvidence {
        let by_start =
            |x: &DnsLookupSample, y: &DnsLookupSample| x.offset_ms.total_cmp(&y.offset_ms);
        self.samples.sort_by(by_start);
        self.stall_samples.sort_by(by_start);
        let config = ctx.resolver();
        DnsRoundsEvidence {
            name: name.to_string(),
            mode: config.send_mode.into(),
            timeout_ms: timeout.as_millis() as u64,
            attempts: config.attempts,
            lookups: self.lookups,
            outcomes: self.outcomes,
            cut_by_deadline: self.cut_by_deadline,
            queries: self.queries,
            rcodes: self.rcodes,
            lost: self.lost,
            stalls: self.stalls,
            latency_ms: LatencySummary::of(&mut self.answered_latencies),
            stall_samples: self.stall_samples,
            samples: self.samples,
            samples_dropped: self.samples_dropped,
            stopped_early,
        }
    }
}
