use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::{DnsTransport, NameSource, Open, Rcode, RecordType, ResolverOption};

/// Absent on the wire when `dns`, so lines from before `source` existed read the same.
fn from_dns(source: &Open<NameSource>) -> bool {
    *source == NameSource::Dns
}

/// The resolver configuration as the pod's libc (glibc semantics) would use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsConfigEvidence {
    pub path: String,
    /// The nameservers glibc queries, in order: the first three `nameserver` lines, or
    /// 127.0.0.1 when the file names none (see `nameservers_defaulted`).
    pub nameservers: Vec<IpAddr>,
    /// The search list: the last `search` or `domain` line wins (glibc); without either, the
    /// domain part of the host name.
    pub search: Vec<String>,
    /// `options ndots:` (default 1, at most 15).
    pub ndots: u32,
    /// Per-try timeout in seconds (`options timeout:`; default 5, at most 30).
    pub timeout_s: u32,
    /// Tries per nameserver (`options attempts:`; default 2, at most 5).
    pub attempts: u32,
    /// Other options (`rotate`, `single-request`, `use-vc`, `edns0`...).
    #[serde(default)]
    pub options: Vec<Open<ResolverOption>>,
    /// Set when the file could not be read; the other fields are then glibc defaults.
    #[serde(default)]
    pub error: Option<String>,
    /// No usable `nameserver` line: glibc then queries 127.0.0.1 (listed in `nameservers`).
    #[serde(default)]
    pub nameservers_defaulted: bool,
    /// `nameserver` lines beyond the third, which glibc ignores (MAXNS = 3).
    #[serde(default)]
    pub ignored_nameservers: Vec<IpAddr>,
    /// What else a reader should know: lines glibc ignores, where the search list came from.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The hosts file looked up before DNS (`/etc/hosts`), and how many entries it has; None
    /// entries when it could not be read (protocol minor 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts_entries: Option<u32>,
}

/// Resolution of one name, the way the pod's resolver would walk it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsLookupEvidence {
    /// The name as asked.
    pub name: String,
    /// Fully-qualified candidates in the order the resolver tries them (search list vs ndots).
    pub candidates: Vec<String>,
    /// Every query sent, in order.
    pub queries: Vec<DnsQuery>,
    /// The candidate glibc stops at: the first whose A or AAAA reply is NOERROR with at least
    /// one answer record (a CNAME-only answer also stops the search, with no addresses).
    #[serde(default)]
    pub answered_by: Option<String>,
    /// Addresses of that answer (A then AAAA).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Queries sent for candidates before `answered_by` that did not help (NXDOMAIN, NODATA,
    /// SERVFAIL, timeouts on earlier candidates); every query when no candidate answered.
    pub wasted_queries: u32,
    /// Time from the first query to the end of the one that answered (or to the last when none did).
    pub elapsed_ms: f64,
    /// Why the lookup stopped without an answer when no query says it (e.g. the run's
    /// deadline was reached before the next query).
    #[serde(default)]
    pub error: Option<String>,
    /// Where the answer came from: the hosts file (then no query was sent) or DNS
    /// (protocol minor 2; absent reads as `dns`).
    #[serde(default, skip_serializing_if = "from_dns")]
    pub source: Open<NameSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsQuery {
    pub candidate: String,
    pub qtype: Open<RecordType>,
    pub nameserver: SocketAddr,
    pub transport: Open<DnsTransport>,
    pub outcome: DnsOutcome,
    pub latency_ms: f64,
    /// Which pass over the nameservers this query belongs to (1-based; glibc makes
    /// `attempts` passes).
    #[serde(default)]
    pub attempt: u32,
    /// When the query was sent, in ms since the lookup started: retry gaps show here.
    #[serde(default)]
    pub sent_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DnsOutcome {
    /// A response arrived.
    Response {
        rcode: Open<Rcode>,
        #[serde(default)]
        answers: Vec<DnsRecord>,
        /// TC bit was set (a TCP retry follows when the plan allows).
        truncated: bool,
        authoritative: bool,
    },
    /// No response before the per-query timeout.
    Timeout,
    /// The query could not be sent or the reply was unusable (ICMP port unreachable shows as
    /// `connection refused`).
    Error { message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub name: String,
    pub rtype: Open<RecordType>,
    pub ttl: u32,
    pub data: String,
}
