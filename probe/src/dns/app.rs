//! One lookup the way an application's getaddrinfo makes it through glibc, for repeated rounds
//! (`--repeat`): unlike [`super::lookup`], which keeps the A and AAAA walks apart to show each
//! type's fate, this sends them the way glibc's send_dg does, because that is what produces
//! the "DNS sometimes takes 5 s" failure:
//!
//! - default: A and AAAA back to back from **one UDP socket** (one source port). Two packets
//!   with the same 5-tuple at once race in conntrack (the DNAT to the DNS ClusterIP), and the
//!   loser of the insert race is dropped: one reply never comes, the resolver waits its whole
//!   timeout, then asks for the missing type again, alone, on the same socket;
//! - `single-request-reopen`: the same, but the missing type is asked again from a new socket;
//! - `single-request`: one after the other on one socket, so they never race;
//! - `use-vc`: over TCP, one after the other.
//!
//! The search list is walked as glibc does (NXDOMAIN and NODATA move on to the next candidate;
//! a server that fails or never answers ends the walk), with resolv.conf's timeout and attempts.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use protocol::{DnsLookupOutcome, DnsSendMode};
use tokio::net::UdpSocket;
use tokio::time::{timeout_at, Instant};

use super::candidates::{candidates, too_long};
use super::config::ResolverConfig;
use super::transport::{exchange, Exchange, Transport};
use super::wire::{build_query, match_reply, OutgoingQuery, Reply, RCODE_NOERROR, RCODE_NXDOMAIN};

/// What one application-style lookup did.
#[derive(Debug, Clone, PartialEq)]
pub struct AppLookup {
    pub outcome: DnsLookupOutcome,
    /// True when the run's deadline ended the lookup before it could end by itself.
    pub cut_by_deadline: bool,
    pub latency: Duration,
    pub queries: u32,
    /// Response codes of the replies received.
    pub rcodes: Vec<u16>,
    /// One entry per query that got no reply within its wait.
    pub lost: Vec<RecordType>,
}

/// How one candidate ended.
#[derive(Debug, Clone, PartialEq)]
enum Pair {
    Answered,
    /// NXDOMAIN or NODATA: the next candidate.
    NotFound,
    /// Every server refused or failed (SERVFAIL, REFUSED, NOTIMP).
    ServerFailure,
    Timeout,
    Error,
    Deadline,
}

/// Resolve `name` once, as an application would.
pub async fn app_lookup(config: &ResolverConfig, name: &str, deadline: Instant) -> AppLookup {
    let started = Instant::now();
    let mut l = AppLookup {
        outcome: DnsLookupOutcome::NotFound,
        cut_by_deadline: false,
        latency: Duration::ZERO,
        queries: 0,
        rcodes: Vec::new(),
        lost: Vec::new(),
    };
    // The hosts file answers first, without a query (nsswitch `files dns`).
    if !config.hosts.lookup(name).is_empty() {
        l.outcome = DnsLookupOutcome::Answered;
        l.latency = started.elapsed();
        return l;
    }
    for candidate in candidates(name, config) {
        if too_long(&candidate.fqdn) {
            continue;
        }
        let ended = match pair(config, &candidate.fqdn, &mut l, deadline).await {
            Pair::NotFound => continue,
            Pair::Answered => DnsLookupOutcome::Answered,
            Pair::ServerFailure => DnsLookupOutcome::ServerFailure,
            Pair::Timeout => DnsLookupOutcome::Timeout,
            Pair::Error => DnsLookupOutcome::Error,
            Pair::Deadline => {
                l.cut_by_deadline = true;
                DnsLookupOutcome::Timeout
            }
        };
        l.outcome = ended;
        break;
    }
    l.latency = started.elapsed();
    l
}

/// The A (and AAAA) questions for one candidate: `attempts` passes over the nameservers.
async fn pair(config: &ResolverConfig, fqdn: &str, l: &mut AppLookup, deadline: Instant) -> Pair {
    let mut types = vec![RecordType::A];
    if !config.no_aaaa {
        types.push(RecordType::AAAA);
    }
    let Ok(queries) = types
        .iter()
        .map(|t| build_query(fqdn, *t, config.edns0))
        .collect::<Result<Vec<_>, _>>()
    else {
        return Pair::Error;
    };
    let count = config.nameservers.len();
    let mut last = Pair::Timeout;
    for _pass in 0..config.attempts.max(1) {
        for (index, server) in config.nameservers.iter().enumerate() {
            if Instant::now() >= deadline {
                return Pair::Deadline;
            }
            let wait = try_timeout(config, index, count);
            let replies = match config.send_mode {
                DnsSendMode::UseVc => one_by_one_tcp(*server, &queries, wait, deadline, l).await,
                mode => udp_pair(mode, *server, &queries, wait, deadline, l).await,
            };
            let replies = match replies {
                Ok(r) => r,
                Err(Pair::Deadline) => return Pair::Deadline,
                Err(other) => {
                    last = other;
                    continue;
                }
            };
            match judge(&replies) {
                Pair::ServerFailure => last = Pair::ServerFailure,
                ended => return ended,
            }
        }
    }
    last
}

/// glibc send_dg's wait for try `index` of `count` nameservers.
fn try_timeout(config: &ResolverConfig, index: usize, count: usize) -> Duration {
    let mut seconds = u64::from(config.timeout_s) << index.min(16);
    if index > 0 {
        seconds /= count.max(1) as u64;
    }
    Duration::from_secs(seconds.max(1))
}

/// The answer for one candidate from the replies one server gave (both types, or what came).
fn judge(replies: &[Reply]) -> Pair {
    if replies
        .iter()
        .any(|r| r.rcode == RCODE_NOERROR && r.answer_count > 0)
    {
        return Pair::Answered;
    }
    if replies.iter().any(Reply::server_rejected) {
        return Pair::ServerFailure;
    }
    if replies
        .iter()
        .any(|r| r.rcode == RCODE_NXDOMAIN || r.rcode == RCODE_NOERROR)
    {
        return Pair::NotFound;
    }
    Pair::ServerFailure
}

/// `Ok(replies)` when every question got one; `Err` with how the try failed otherwise.
type Replies = Result<Vec<Reply>, Pair>;

async fn udp_pair(
    mode: DnsSendMode,
    server: SocketAddr,
    queries: &[OutgoingQuery],
    wait: Duration,
    deadline: Instant,
    l: &mut AppLookup,
) -> Replies {
    let mut socket = connected_udp(server).await.map_err(|_| Pair::Error)?;
    let mut replies: Vec<Option<Reply>> = vec![None; queries.len()];
    if mode == DnsSendMode::SingleRequest {
        for (i, q) in queries.iter().enumerate() {
            let got = ask(&socket, &[q], wait, deadline, l).await?;
            replies[i] = got.into_iter().next().flatten();
            if replies[i].is_none() {
                return Err(Pair::Timeout);
            }
        }
    } else {
        let all: Vec<&OutgoingQuery> = queries.iter().collect();
        replies = ask(&socket, &all, wait, deadline, l).await?;
        let missing: Vec<usize> = (0..queries.len())
            .filter(|i| replies[*i].is_none())
            .collect();
        if missing.len() == queries.len() {
            return Err(Pair::Timeout);
        }
        // One reply came, the other did not: ask for the missing one again, alone.
        if !missing.is_empty() {
            if mode == DnsSendMode::SingleRequestReopen {
                socket = connected_udp(server).await.map_err(|_| Pair::Error)?;
            }
            for i in missing {
                let got = ask(&socket, &[&queries[i]], wait, deadline, l).await?;
                replies[i] = got.into_iter().next().flatten();
            }
        }
    }
    let replies: Vec<Reply> = replies.into_iter().flatten().collect();
    if replies.len() < queries.len() {
        return Err(Pair::Timeout);
    }
    Ok(replies)
}

/// Send `queries` back to back on `socket` and collect the replies until each has one or the
/// wait ends. Unanswered queries are counted as lost.
async fn ask(
    socket: &UdpSocket,
    queries: &[&OutgoingQuery],
    wait: Duration,
    deadline: Instant,
    l: &mut AppLookup,
) -> Result<Vec<Option<Reply>>, Pair> {
    for q in queries {
        l.queries += 1;
        if socket.send(&q.bytes).await.is_err() {
            return Err(Pair::Error);
        }
    }
    let until = (Instant::now() + wait).min(deadline);
    let mut replies: Vec<Option<Reply>> = vec![None; queries.len()];
    let mut buf = vec![0u8; 65_535];
    while replies.iter().any(Option::is_none) {
        let n = match timeout_at(until, socket.recv(&mut buf)).await {
            Err(_elapsed) => break,
            Ok(Err(_)) => return Err(Pair::Error),
            Ok(Ok(n)) => n,
        };
        for (i, q) in queries.iter().enumerate() {
            if replies[i].is_none() {
                if let Some(reply) = match_reply(q, &buf[..n]) {
                    l.rcodes.push(reply.rcode);
                    replies[i] = Some(reply);
                    break;
                }
            }
        }
    }
    // A wait the run's deadline cut short proves no loss.
    if replies.iter().any(Option::is_none) && Instant::now() >= deadline {
        return Err(Pair::Deadline);
    }
    for (i, q) in queries.iter().enumerate() {
        if replies[i].is_none() {
            l.lost.push(q.qtype());
        }
    }
    Ok(replies)
}

/// `use-vc`: each question over TCP, one after the other.
async fn one_by_one_tcp(
    server: SocketAddr,
    queries: &[OutgoingQuery],
    wait: Duration,
    deadline: Instant,
    l: &mut AppLookup,
) -> Replies {
    let mut replies = Vec::new();
    for q in queries {
        l.queries += 1;
        let until = (Instant::now() + wait).min(deadline);
        match exchange(Transport::Tcp, server, q, until).await {
            Exchange::Reply(r) => {
                l.rcodes.push(r.rcode);
                replies.push(r);
            }
            Exchange::Timeout => {
                l.lost.push(q.qtype());
                return Err(if Instant::now() >= deadline {
                    Pair::Deadline
                } else {
                    Pair::Timeout
                });
            }
            Exchange::Error(_) => return Err(Pair::Error),
        }
    }
    Ok(replies)
}

async fn connected_udp(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    Ok(socket)
}
