//! One name resolved the way glibc's stub resolver walks it, recording every query.
//!
//! Two glibc layers are modelled:
//! - `res_search` (resolv/res_query.c): which candidate comes next, depending on how the last
//!   one failed: NXDOMAIN, NODATA and SERVFAIL move on to the next search domain; a timeout
//!   (TRY_AGAIN without SERVFAIL) or another error ends the search list, after which the name
//!   is still tried as is if it was not yet.
//! - `res_send` (resolv/res_send.c): for one question, `attempts` passes over the nameservers,
//!   each try waiting `timeout << index` seconds (divided by the nameserver count for
//!   index > 0); SERVFAIL, NOTIMP, REFUSED, a referral, a timeout or an error move on to the
//!   next nameserver; a truncated UDP reply is asked again over TCP to the same server, and
//!   that pass is the last.
//!
//! A and AAAA are sent in parallel per candidate (glibc's default) as two independent
//! `res_send` walks; `single-request` makes them sequential. glibc sends both on one socket
//! and, when only one reply comes back, retries the pair one by one on the same server; the
//! probe keeps the walks independent, which yields the same answers and shows each type's
//! fate separately.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use protocol::{DnsLookupEvidence, DnsOutcome, DnsPlan, DnsQuery, NameSource, Open};
use tokio::time::Instant;

use super::candidates::{candidates, too_long, Role};
use super::config::ResolverConfig;
use super::transport::{exchange, Exchange, Transport};
use super::wire::{build_query, rcode_name, Reply, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_SERVFAIL};

/// How one question (one candidate, one type) ended after `res_send`'s loop.
#[derive(Debug, Clone)]
enum TypeResult {
    /// A reply glibc accepts as final.
    Final(Reply),
    /// Every try failed; the rcode of the last reply received, if any (glibc looks at it to
    /// tell SERVFAIL from a timeout).
    Exhausted { last_rcode: Option<u16> },
    /// The run's deadline came first.
    Deadline,
    /// The query could not be built.
    Invalid(String),
}

/// glibc's h_errno for one candidate (res_query's combination of the A and AAAA replies).
#[derive(Debug, Clone, PartialEq)]
enum CandidateResult {
    Answered(Vec<IpAddr>),
    /// HOST_NOT_FOUND (NXDOMAIN) or NO_DATA (NOERROR without answers): next candidate.
    NotFound,
    NoData,
    /// TRY_AGAIN with a SERVFAIL reply: next candidate.
    ServFail,
    /// TRY_AGAIN without SERVFAIL (timeouts, refused): the search list ends here.
    TryAgain,
    /// NO_RECOVERY (FORMERR, NOTIMP or REFUSED as a final reply): the search list ends.
    NoRecovery,
    /// NO_RECOVERY because no query could be built for the candidate (too long, bad label).
    Unbuildable(String),
    Deadline,
}

struct Walk<'a> {
    config: &'a ResolverConfig,
    plan: &'a DnsPlan,
    deadline: Instant,
    started: Instant,
    /// A std Mutex (never held across an await) keeps the future `Send`.
    queries: Mutex<Vec<DnsQuery>>,
}

/// Resolve `name` as the pod's resolver would, recording every query.
pub async fn lookup(
    config: &ResolverConfig,
    name: &str,
    plan: &DnsPlan,
    deadline: Instant,
) -> DnsLookupEvidence {
    let started = Instant::now();
    let mut evidence = DnsLookupEvidence {
        name: name.to_string(),
        candidates: Vec::new(),
        queries: Vec::new(),
        answered_by: None,
        addresses: Vec::new(),
        wasted_queries: 0,
        elapsed_ms: 0.0,
        error: None,
        source: NameSource::Dns.into(),
    };
    // getaddrinfo never asks DNS about an address literal.
    if let Ok(ip) = name.parse::<IpAddr>() {
        evidence.answered_by = Some(name.to_string());
        evidence.addresses = vec![ip];
        return evidence;
    }
    // nsswitch `hosts: files dns`: the hosts file first, and no query when it knows the name.
    let from_files = config.hosts.lookup(name);
    if !from_files.is_empty() {
        evidence.answered_by = Some(name.to_string());
        evidence.addresses = from_files;
        evidence.source = NameSource::Files.into();
        return evidence;
    }
    let list = candidates(name, config);
    evidence.candidates = list.iter().map(|c| c.fqdn.clone()).collect();

    let walk = Walk {
        config,
        plan,
        deadline,
        started,
        queries: Mutex::new(Vec::new()),
    };
    let mut search_ended = false;
    for (index, candidate) in list.iter().enumerate() {
        if candidate.role == Role::Search && search_ended {
            continue;
        }
        if Instant::now() >= deadline {
            evidence.error = Some(format!(
                "the run's deadline was reached before querying `{}`",
                candidate.fqdn
            ));
            break;
        }
        let result = if too_long(&candidate.fqdn) {
            CandidateResult::Unbuildable(format!(
                "`{}` is longer than a domain name can be; glibc does not send it",
                candidate.fqdn
            ))
        } else {
            walk.candidate(&candidate.fqdn, index).await
        };
        match result {
            CandidateResult::Answered(addresses) => {
                evidence.answered_by = Some(candidate.fqdn.clone());
                evidence.addresses = addresses;
                break;
            }
            CandidateResult::Deadline => {
                evidence.error = Some(format!(
                    "the run's deadline was reached while querying `{}`",
                    candidate.fqdn
                ));
                break;
            }
            CandidateResult::NotFound | CandidateResult::NoData | CandidateResult::ServFail => {}
            CandidateResult::Unbuildable(why) => {
                evidence.error.get_or_insert(why);
                if candidate.role == Role::Search {
                    search_ended = true;
                }
            }
            CandidateResult::TryAgain | CandidateResult::NoRecovery => {
                if candidate.role == Role::Search {
                    search_ended = true;
                }
            }
        }
    }
    evidence.elapsed_ms = ms(started.elapsed());

    let mut queries = walk.queries.into_inner().unwrap_or_else(|p| p.into_inner());
    queries.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
    evidence.wasted_queries = match &evidence.answered_by {
        Some(fqdn) => queries.iter().filter(|q| &q.candidate != fqdn).count() as u32,
        None => queries.len() as u32,
    };
    evidence.queries = queries;
    evidence
}

impl Walk<'_> {
    async fn candidate(&self, fqdn: &str, index: usize) -> CandidateResult {
        let mut types = vec![RecordType::A];
        if self.plan.aaaa && !self.config.no_aaaa {
            types.push(RecordType::AAAA);
        }
        // `rotate`: glibc starts each res_send at the next nameserver.
        let offset = if self.config.rotate { index } else { 0 };
        let results: Vec<TypeResult> = if self.config.single_request {
            let mut out = Vec::new();
            for t in &types {
                out.push(self.question(fqdn, *t, offset).await);
            }
            out
        } else {
            futures::future::join_all(types.iter().map(|t| self.question(fqdn, *t, offset))).await
        };
        combine(&results)
    }

    /// glibc's res_send loop for one question.
    async fn question(&self, fqdn: &str, qtype: RecordType, offset: usize) -> TypeResult {
        let query = match build_query(fqdn, qtype, self.config.edns0) {
            Ok(q) => q,
            Err(e) => return TypeResult::Invalid(e),
        };
        let servers = &self.config.nameservers;
        let count = servers.len();
        if count == 0 {
            return TypeResult::Exhausted { last_rcode: None };
        }
        let mut transport = if self.config.use_vc || self.plan.tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let attempts = self.config.attempts.max(1);
        let mut last_rcode = None;
        let mut last_pass = false;
        for pass in 0..attempts {
            for shift in 0..count {
                let index = (shift + offset) % count;
                let server = servers[index];
                loop {
                    let now = Instant::now();
                    if now >= self.deadline {
                        return TypeResult::Deadline;
                    }
                    // glibc: "Use VC; at most one attempt per server": a TCP query makes
                    // this pass the last.
                    last_pass |= transport == Transport::Tcp;
                    // glibc waits on TCP without a timer of its own (blocking I/O); the
                    // probe bounds TCP by the same per-try timeout as UDP.
                    let until = (now + self.try_timeout(index, count)).min(self.deadline);
                    let sent_ms = ms(now - self.started);
                    let outcome = exchange(transport, server, &query, until).await;
                    let latency_ms = ms(now.elapsed());
                    self.record(DnsQuery {
                        candidate: fqdn.to_string(),
                        qtype: Open::parse(&qtype.to_string()),
                        nameserver: server,
                        transport: transport.into(),
                        outcome: present(&outcome),
                        latency_ms,
                        attempt: pass + 1,
                        sent_ms,
                    });
                    let Exchange::Reply(reply) = outcome else {
                        break; // timeout or error: next nameserver
                    };
                    // Only send_dg (UDP) second-guesses a reply; send_vc returns it as is.
                    if transport == Transport::Udp {
                        if reply.server_rejected() || reply.is_referral() {
                            last_rcode = Some(reply.rcode);
                            break;
                        }
                        if reply.truncated {
                            // Same server again over TCP (glibc's `goto same_ns`).
                            transport = Transport::Tcp;
                            continue;
                        }
                    }
                    return TypeResult::Final(reply);
                }
            }
            if last_pass {
                break;
            }
        }
        TypeResult::Exhausted { last_rcode }
    }

    /// glibc send_dg: `seconds = retrans << ns; if (ns > 0) seconds /= nscount; >= 1`,
    /// then capped by the plan's per-query timeout.
    fn try_timeout(&self, index: usize, count: usize) -> Duration {
        let shift = index.min(16) as u32;
        let mut seconds = u64::from(self.config.timeout_s) << shift;
        if index > 0 {
            seconds /= count as u64;
        }
        let glibc = Duration::from_secs(seconds.max(1));
        match self.plan.timeout_ms {
            Some(ms) => glibc.min(Duration::from_millis(ms.max(1))),
            None => glibc,
        }
    }

    fn record(&self, query: DnsQuery) {
        self.queries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(query);
    }
}

/// res_query's verdict for A and AAAA together: success when either reply is NOERROR with
/// answers; otherwise the A reply's rcode unless it is NOERROR, then the AAAA reply's.
fn combine(results: &[TypeResult]) -> CandidateResult {
    let finals: Vec<&Reply> = results
        .iter()
        .filter_map(|r| match r {
            TypeResult::Final(reply) => Some(reply),
            _ => None,
        })
        .collect();
    if finals
        .iter()
        .any(|r| r.rcode == RCODE_NOERROR && r.answer_count > 0)
    {
        let addresses = finals
            .iter()
            .filter(|r| r.rcode == RCODE_NOERROR)
            .flat_map(|r| r.addresses.iter().copied())
            .collect();
        return CandidateResult::Answered(addresses);
    }
    if results.iter().any(|r| matches!(r, TypeResult::Deadline)) {
        return CandidateResult::Deadline;
    }
    if let Some(TypeResult::Invalid(why)) =
        results.iter().find(|r| matches!(r, TypeResult::Invalid(_)))
    {
        return CandidateResult::Unbuildable(why.clone());
    }
    if let Some(first) = finals.first() {
        let rcode = if first.rcode != RCODE_NOERROR {
            first.rcode
        } else {
            finals.get(1).map_or(RCODE_NOERROR, |r| r.rcode)
        };
        return match rcode {
            RCODE_NXDOMAIN => CandidateResult::NotFound,
            RCODE_NOERROR => CandidateResult::NoData,
            RCODE_SERVFAIL => CandidateResult::ServFail,
            _ => CandidateResult::NoRecovery,
        };
    }
    let servfail = results.iter().any(|r| {
        matches!(
            r,
            TypeResult::Exhausted {
                last_rcode: Some(RCODE_SERVFAIL)
            }
        )
    });
    if servfail {
        CandidateResult::ServFail
    } else {
        CandidateResult::TryAgain
    }
}

fn present(outcome: &Exchange) -> DnsOutcome {
    match outcome {
        Exchange::Reply(reply) => DnsOutcome::Response {
            rcode: rcode_name(reply.rcode),
            answers: reply.answers.clone(),
            truncated: reply.truncated,
            authoritative: reply.authoritative,
        },
        Exchange::Timeout => DnsOutcome::Timeout,
        Exchange::Error(message) => DnsOutcome::Error {
            message: message.clone(),
        },
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(rcode: u16, addresses: &[&str]) -> Reply {
        Reply {
            rcode,
            truncated: false,
            authoritative: true,
            recursion_available: true,
            answers: Vec::new(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            answer_count: addresses.len() as u16,
            additional_count: 0,
        }
    }

    #[test]
    fn either_type_with_answers_is_success() {
        let r = combine(&[
            TypeResult::Final(reply(RCODE_NOERROR, &[])),
            TypeResult::Final(reply(RCODE_NOERROR, &["fd00:199::1"])),
        ]);
        assert_eq!(
            r,
            CandidateResult::Answered(vec!["fd00:199::1".parse().unwrap()])
        );
        let r = combine(&[
            TypeResult::Final(reply(RCODE_NOERROR, &["10.199.0.1"])),
            TypeResult::Exhausted { last_rcode: None },
        ]);
        assert!(matches!(r, CandidateResult::Answered(_)));
    }

    #[test]
    fn failures_map_to_glibc_h_errno() {
        let nx = || TypeResult::Final(reply(RCODE_NXDOMAIN, &[]));
        let nodata = || TypeResult::Final(reply(RCODE_NOERROR, &[]));
        assert_eq!(combine(&[nx(), nx()]), CandidateResult::NotFound);
        assert_eq!(combine(&[nodata(), nodata()]), CandidateResult::NoData);
        assert_eq!(combine(&[nodata(), nx()]), CandidateResult::NotFound);
        assert_eq!(
            combine(&[
                TypeResult::Exhausted {
                    last_rcode: Some(RCODE_SERVFAIL)
                },
                TypeResult::Exhausted {
                    last_rcode: Some(RCODE_SERVFAIL)
                },
            ]),
            CandidateResult::ServFail
        );
        assert_eq!(
            combine(&[
                TypeResult::Exhausted { last_rcode: None },
                TypeResult::Exhausted {
                    last_rcode: Some(5)
                },
            ]),
            CandidateResult::TryAgain
        );
        assert_eq!(
            combine(&[TypeResult::Final(reply(1, &[]))]),
            CandidateResult::NoRecovery
        );
    }

    #[test]
    fn glibc_try_timeouts() {
        let config = ResolverConfig {
            timeout_s: 5,
            ..ResolverConfig::default()
        };
        let plan = DnsPlan::default();
        let walk = Walk {
            config: &config,
            plan: &plan,
            deadline: Instant::now(),
            started: Instant::now(),
            queries: Mutex::new(Vec::new()),
        };
        assert_eq!(walk.try_timeout(0, 1), Duration::from_secs(5));
        assert_eq!(walk.try_timeout(0, 3), Duration::from_secs(5));
        assert_eq!(walk.try_timeout(1, 3), Duration::from_secs(3));
        assert_eq!(walk.try_timeout(2, 3), Duration::from_secs(6));
        let plan = DnsPlan {
            timeout_ms: Some(200),
            ..DnsPlan::default()
        };
        let walk = Walk {
            plan: &plan,
            ..walk
        };
        assert_eq!(walk.try_timeout(2, 3), Duration::from_millis(200));
    }
}
