use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{
    ConnectIcmp, DnsLookupOutcome, DnsSendMode, Open, Rcode, RecordType, TargetRole, TcpOutcome,
};

/// Repeated connects to one target address (plan `rounds`): exact counts per outcome, the
/// connect latency of the successes, and bounded samples of individual attempts. Emitted once
/// per address after the last round, beside the `tcp` evidence of its first attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpRoundsEvidence {
    pub target: String,
    pub address: SocketAddr,
    #[serde(default)]
    pub role: Open<TargetRole>,
    /// Connect attempts made (one per round that reached this address).
    pub attempts: u64,
    /// Attempts per outcome; every attempt is counted, also past the sample cap.
    pub outcomes: BTreeMap<Open<TcpOutcome>, u64>,
    /// Connect latency of the successful attempts; None when none succeeded.
    #[serde(default)]
    pub latency_ms: Option<LatencySummary>,
    /// When the first and the last attempt started, from the start of the first round.
    pub first_ms: f64,
    pub last_ms: f64,
    /// Failed attempts, in order, at most `rounds.sample_cap`; `failures_dropped` more.
    #[serde(default)]
    pub failures: Vec<ConnectSample>,
    #[serde(default)]
    pub failures_dropped: u64,
    /// Every attempt, in order, at most `rounds.sample_cap`; `samples_dropped` more.
    #[serde(default)]
    pub samples: Vec<ConnectSample>,
    #[serde(default)]
    pub samples_dropped: u64,
    /// The rounds stopped before the plan's `repeat`/`for_ms` because the run's deadline left
    /// no room for another full attempt (no attempt is ever cut short and counted a timeout).
    #[serde(default)]
    pub stopped_early: bool,
    /// For a ClusterIP: where its connections went, per endpoint the dataplane chose, from each
    /// attempt's conntrack entry (the DNAT's reply tuple). Empty when not looked up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chosen: Vec<ChosenEndpoint>,
    /// For a ClusterIP: why the chosen endpoints are not known, when they are not (no
    /// CAP_NET_ADMIN; no translation in this network namespace, kube-proxy's DNAT being on
    /// the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unattributed: Option<String>,
}

/// Attempts to a ClusterIP that conntrack shows were sent to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenEndpoint {
    pub endpoint: SocketAddr,
    pub attempts: u64,
    pub failed: u64,
}

impl TcpRoundsEvidence {
    /// Attempts that ended with `outcome`.
    pub fn count(&self, outcome: TcpOutcome) -> u64 {
        self.outcomes
            .get(&Open::Known(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Attempts that did not connect.
    pub fn failed(&self) -> u64 {
        self.attempts.saturating_sub(self.count(TcpOutcome::Ok))
    }
}

/// Exact percentiles (nearest rank) over every successful attempt, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencySummary {
    /// Nearest-rank percentiles of `values`; None when empty. Sorts `values`.
    pub fn of(values: &mut [f64]) -> Option<LatencySummary> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let n = values.len();
            let k = ((p / 100.0) * n as f64).ceil() as usize;
            values[k.clamp(1, n) - 1]
        };
        Some(LatencySummary {
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: values[values.len() - 1],
        })
    }
}

/// One connect attempt of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectSample {
    /// The round, from 0.
    pub round: u32,
    /// When the attempt started, from the start of the first round.
    pub offset_ms: f64,
    pub outcome: Open<TcpOutcome>,
    /// Time until the outcome was known.
    pub latency_ms: f64,
    /// The source port the kernel chose, when it chose one.
    #[serde(default)]
    pub local_port: Option<u16>,
    /// The endpoint the dataplane translated this attempt to (a ClusterIP's DNAT, from the
    /// conntrack entry), when it could be looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SocketAddr>,
    /// The ICMP error that ended this attempt, as in `tcp` evidence (minor 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<ConnectIcmp>,
}

/// Repeated lookups of one name the way an application's resolver makes them (plan
/// `rounds`): A and AAAA sent as resolv.conf's options say (`mode`), the search list walked,
/// the resolver's own timeout and attempts. Emitted once per name after the last round,
/// beside the detailed `dns_lookup` of its first lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsRoundsEvidence {
    pub name: String,
    pub mode: Open<DnsSendMode>,
    /// The resolver's per-try timeout and passes, as used.
    pub timeout_ms: u64,
    pub attempts: u32,
    /// Lookups made, and how each ended (exact counts).
    pub lookups: u64,
    pub outcomes: BTreeMap<Open<DnsLookupOutcome>, u64>,
    /// Lookups the run's deadline cut short: in no other count.
    #[serde(default)]
    pub cut_by_deadline: u64,
    /// Queries sent, and the replies received per response code.
    pub queries: u64,
    pub rcodes: BTreeMap<Open<Rcode>, u64>,
    /// Queries that got no reply within their wait, per record type: the type a stall lost.
    pub lost: BTreeMap<Open<RecordType>, u64>,
    /// Lookups that took at least the resolver's timeout (the "5 second DNS" signature).
    pub stalls: u64,
    /// Time of the answered lookups, from the first query to the answer.
    #[serde(default)]
    pub latency_ms: Option<LatencySummary>,
    /// Stalled lookups, in order, at most `rounds.sample_cap`.
    #[serde(default)]
    pub stall_samples: Vec<DnsLookupSample>,
    /// Every lookup, in order, at most `rounds.sample_cap`; `samples_dropped` more.
    #[serde(default)]
    pub samples: Vec<DnsLookupSample>,
    #[serde(default)]
    pub samples_dropped: u64,
    #[serde(default)]
    pub stopped_early: bool,
}

impl DnsRoundsEvidence {
    /// Lookups that ended with `outcome`.
    pub fn count(&self, outcome: DnsLookupOutcome) -> u64 {
        self.outcomes
            .get(&Open::Known(outcome))
            .copied()
            .unwrap_or(0)
    }
}

/// One application-style lookup of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsLookupSample {
    pub round: u32,
    pub offset_ms: f64,
    pub outcome: Open<DnsLookupOutcome>,
    pub latency_ms: f64,
    pub queries: u32,
    /// The record types whose query went unanswered at least once in this lookup.
    #[serde(default)]
    pub lost: Vec<Open<RecordType>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        v.reverse();
        let s = LatencySummary::of(&mut v).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        let s = LatencySummary::of(&mut [7.0]).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (7.0, 7.0, 7.0));
        assert_eq!(LatencySummary::of(&mut []), None);
    }
}
