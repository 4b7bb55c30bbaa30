//! Check `tcp` with plan `rounds` (`--repeat`, `--for`, `--rate`): every target address is
//! connected to again and again, each attempt a fresh socket (so a new source port and a new
//! conntrack entry), paced at `rate` attempts per second across all addresses. Partial
//! failures ("2% time out", "one replica of three") only show over many attempts.
//!
//! Each address gets the usual `tcp` evidence for its first attempt (so the single-shot rules
//! keep working) and, after the last round, one `tcp_rounds` evidence with exact counts,
//! latency percentiles of the successes and bounded samples.
//!
//! No attempt is ever cut short by the deadline and counted as a timeout: a new attempt starts
//! only when a full connect timeout still fits before the deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use protocol::{
    CheckKind, ChosenEndpoint, ConnectSample, Evidence, LatencySummary, NatState, NodeNat, Open,
    RoundsPlan, Target, TcpEvidence, TcpOutcome, TcpRoundsEvidence,
};

use super::pacing::{ms, run_paced, Finished, Pace, Ticker};
use super::tcp::connect;
use crate::context::Ctx;
use crate::node_conntrack::NodeConntrack;

/// Room kept before the deadline for the last attempts' evidence to be written.
const DEADLINE_MARGIN: Duration = Duration::from_millis(200);

/// One address to connect to, round after round.
struct Address<'a> {
    target: &'a Target,
    address: SocketAddr,
}

pub async fn run(ctx: &Ctx, rounds: &RoundsPlan, addresses: Vec<(&Target, SocketAddr)>) {
    let addresses: Vec<Address> = addresses
        .into_iter()
        .map(|(target, address)| Address { target, address })
        .collect();
    if addresses.is_empty() {
        return;
    }
    let mut tallies: Vec<Tally> = addresses
        .iter()
        .map(|_| Tally::new(rounds.sample_cap as usize))
        .collect();
    let timeout = Duration::from_millis(ctx.plan.connect_timeout_ms);
    let mut ticker = Ticker::new(ctx, CheckKind::Tcp, rounds, addresses.len());
    let mut attribution = Attribution::new(ctx, &addresses);
    let stopped_early = run_paced(
        &Pace::new(rounds, timeout + DEADLINE_MARGIN),
        addresses.len(),
        || ctx.remaining(),
        |i, _round| connect(addresses[i].target, addresses[i].address, timeout),
        |done| {
            ticker.tick(done.result.outcome != TcpOutcome::Ok);
            let nat = attribution.nat_of(&addresses[done.item], &done.result);
            let endpoint = nat.as_ref().and_then(|n| n.endpoint);
            let node_nat = nat.filter(|_| attribution.is_node());
            record(ctx, &mut tallies, done, endpoint, node_nat)
        },
    )
    .await;
    ticker.finish();
    for (a, tally) in addresses.iter().zip(tallies) {
        let why = attribution.unattributed(a);
        ctx.emit(Evidence::TcpRounds(tally.into_evidence(
            a,
            stopped_early,
            why,
        )));
    }
}

/// The first round's attempt is also the address's ordinary `tcp` evidence.
fn record(
    ctx: &Ctx,
    tallies: &mut [Tally],
    done: Finished<TcpEvidence>,
    endpoint: Option<SocketAddr>,
    node_nat: Option<NodeNat>,
) {
    tallies[done.item].add(done.round, done.offset, &done.result, endpoint);
    if done.round == 0 {
        let mut first = done.result;
        first.node_nat = node_nat;
        ctx.emit(Evidence::Tcp(first));
    }
}

/// Which endpoint a ClusterIP's DNAT chose for each attempt, read from the attempt's conntrack
/// entry (ctnetlink, CAP_NET_ADMIN). In a node view (`node/NAME`, `--via-node`) that is the
/// node's table, where a pod's translation happens; otherwise the probe's own namespace's,
/// which works where the translation happens there (`local` mode on a node). Inside a pod
/// without the node view the pod's own table has no translated entry, and the evidence says
/// so instead of guessing.
struct Attribution<'c> {
    table: Option<Table<'c>>,
    /// Why there is no table (no CAP_NET_ADMIN, no ctnetlink), once known.
    unavailable: Option<String>,
    /// Lookups that found a translated entry, and those that did not.
    translated: u64,
    untranslated: u64,
}

/// The node's table, shared with the single connects, or one opened for these rounds.
enum Table<'c> {
    Node(&'c NodeConntrack),
    Own(NodeConntrack),
}

impl Table<'_> {
    fn get(&self) -> &NodeConntrack {
        match self {
            Table::Node(t) => t,
            Table::Own(t) => t,
        }
    }
}

impl<'c> Attribution<'c> {
    fn new(ctx: &'c Ctx, addresses: &[Address]) -> Attribution<'c> {
        let wanted = addresses
            .iter()
            .any(|a| a.target.role == protocol::TargetRole::ClusterIp);
        let mut a = Attribution {
            table: None,
            unavailable: None,
            translated: 0,
            untranslated: 0,
        };
        if !wanted {
            return a;
        }
        if let Some(node) = &ctx.node_conntrack {
            a.table = Some(Table::Node(node));
            return a;
        }
        if !ctx.privileges.has(protocol::Capability::NetAdmin) {
            a.unavailable = Some(
                "reading conntrack entries needs CAP_NET_ADMIN, which this profile does not grant"
                    .into(),
            );
            return a;
        }
        a.table = Some(Table::Own(NodeConntrack::open()));
        a
    }

    /// What the table says about this attempt to a ClusterIP (None for other targets or
    /// without a table).
    fn nat_of(&mut self, a: &Address, t: &TcpEvidence) -> Option<NodeNat> {
        if a.target.role != protocol::TargetRole::ClusterIp {
            return None;
        }
        let nat = self.table.as_ref()?.get().nat_of(t.local, a.address)?;
        match nat.state.known() {
            Some(NatState::Translated) => self.translated += 1,
            Some(NatState::Unavailable) => {
                self.untranslated += 1;
                if let Some(why) = &nat.reason {
                    self.unavailable.get_or_insert_with(|| why.clone());
                }
            }
            _ => self.untranslated += 1,
        }
        Some(nat)
    }

    /// Whether the table is the node's (its answers go on the `tcp` evidence too).
    fn is_node(&self) -> bool {
        matches!(self.table, Some(Table::Node(_)))
    }

    /// Why a ClusterIP's rounds carry no (or not every) chosen endpoint.
    fn unattributed(&self, a: &Address) -> Option<String> {
        if a.target.role != protocol::TargetRole::ClusterIp {
            return None;
        }
        if let Some(why) = &self.unavailable {
            return Some(why.clone());
        }
        let whose = if self.is_node() {
            "the node's table: the node did not translate them (see the `tcp` evidence's \
             node_nat)"
        } else {
            "this network namespace: the ClusterIP is translated elsewhere (kube-proxy's DNAT \
             is on the node)"
        };
        (self.untranslated > 0).then(|| {
            format!(
                "{} of {} attempts had no translated conntrack entry in {whose}",
                self.untranslated,
                self.untranslated + self.translated
            )
        })
    }
}

/// Exact counts and bounded samples for one address.
struct Tally {
    cap: usize,
    attempts: u64,
    outcomes: BTreeMap<Open<TcpOutcome>, u64>,
    /// Every success's latency: percentiles are exact, not estimated (8 bytes an attempt).
    ok_latencies: Vec<f64>,
    first_ms: Option<f64>,
    last_ms: f64,
    failures: Vec<ConnectSample>,
    failures_dropped: u64,
    samples: Vec<ConnectSample>,
    samples_dropped: u64,
    /// Per endpoint the conntrack entries showed (ClusterIP targets only).
    chosen: BTreeMap<SocketAddr, (u64, u64)>,
}

impl Tally {
    fn new(cap: usize) -> Tally {
        Tally {
            cap,
            attempts: 0,
            outcomes: BTreeMap::new(),
            ok_latencies: Vec::new(),
            first_ms: None,
            last_ms: 0.0,
            failures: Vec::new(),
            failures_dropped: 0,
            samples: Vec::new(),
            samples_dropped: 0,
            chosen: BTreeMap::new(),
        }
    }

    fn add(&mut self, round: u32, offset: Duration, t: &TcpEvidence, endpoint: Option<SocketAddr>) {
        let offset_ms = ms(offset);
        self.attempts += 1;
        *self.outcomes.entry(t.outcome.clone()).or_default() += 1;
        self.first_ms = Some(self.first_ms.map_or(offset_ms, |f| f.min(offset_ms)));
        self.last_ms = self.last_ms.max(offset_ms);
        let sample = ConnectSample {
            round,
            offset_ms,
            outcome: t.outcome.clone(),
            latency_ms: t.latency_ms,
            local_port: t.local.map(|l| l.port()),
            endpoint,
            // Already read from the attempt's own socket: keeping it costs nothing.
            icmp: t.icmp.clone(),
        };
        if let Some(e) = endpoint {
            let share = self.chosen.entry(e).or_default();
            share.0 += 1;
            share.1 += u64::from(t.outcome != TcpOutcome::Ok);
        }
        if t.outcome == TcpOutcome::Ok {
            self.ok_latencies.push(t.latency_ms);
        } else if self.failures.len() < self.cap {
            self.failures.push(sample.clone());
        } else {
            self.failures_dropped += 1;
        }
        if self.samples.len() < self.cap {
            self.samples.push(sample);
        } else {
            self.samples_dropped += 1;
        }
    }

    fn into_evidence(
        mut self,
        a: &Address,
        stopped_early: bool,
        unattributed: Option<String>,
    ) -> TcpRoundsEvidence {
        // Attempts finish out of order; samples are reported in the order they started.
        let by_start = |x: &ConnectSample, y: &ConnectSample| x.offset_ms.total_cmp(&y.offset_ms);
        self.samples.sort_by(by_start);
        self.failures.sort_by(by_start);
        TcpRoundsEvidence {
            target: a.target.label.clone(),
            address: a.address,
            role: a.target.role.clone(),
            attempts: self.attempts,
            outcomes: self.outcomes,
            latency_ms: LatencySummary::of(&mut self.ok_latencies),
            first_ms: self.first_ms.unwrap_or(0.0),
            last_ms: self.last_ms,
            failures: self.failures,
            failures_dropped: self.failures_dropped,
            samples: self.samples,
            samples_dropped: self.samples_dropped,
            stopped_early,
            chosen: self
                .chosen
                .into_iter()
                .map(|(endpoint, (attempts, failed))| ChosenEndpoint {
                    endpoint,
                    attempts,
                    failed,
                })
                .collect(),
            unattributed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::TargetRole;

    fn evidence(outcome: TcpOutcome, latency_ms: f64) -> TcpEvidence {
        TcpEvidence {
            target: "t".into(),
            address: "127.0.0.1:1".parse().unwrap(),
            role: TargetRole::Direct.into(),
            outcome: outcome.into(),
            latency_ms,
            local: Some("127.0.0.1:40000".parse().unwrap()),
            errno: None,
            message: None,
            icmp: None,
            node_nat: None,
        }
    }

    #[test]
    fn counts_stay_exact_past_the_sample_cap_and_failures_are_kept_first() {
        let target = Target {
            label: "t".into(),
            host: "127.0.0.1".into(),
            port: Some(1),
            role: TargetRole::Direct.into(),
        };
        let a = Address {
            target: &target,
            address: "127.0.0.1:1".parse().unwrap(),
        };
        let mut tally = Tally::new(3);
        for round in 0..10u32 {
            let outcome = if round % 4 == 3 {
                TcpOutcome::Timeout
            } else {
                TcpOutcome::Ok
            };
            let offset = Duration::from_millis(u64::from(round) * 20);
            tally.add(round, offset, &evidence(outcome, f64::from(round)), None);
        }
        let e = tally.into_evidence(&a, false, None);
        assert_eq!(e.attempts, 10);
        assert_eq!(e.count(TcpOutcome::Ok), 8);
        assert_eq!(e.count(TcpOutcome::Timeout), 2);
        assert_eq!((e.samples.len(), e.samples_dropped), (3, 7));
        let failed_rounds: Vec<u32> = e.failures.iter().map(|f| f.round).collect();
        assert_eq!(failed_rounds, [3, 7]);
        assert_eq!(e.failures_dropped, 0);
        assert_eq!((e.first_ms, e.last_ms), (0.0, 180.0));
        // Successes at rounds 0,1,2,4,5,6,8,9 with latency = round.
        let l = e.latency_ms.unwrap();
        assert_eq!((l.p50, l.p90, l.max), (4.0, 9.0, 9.0));
    }
}
