use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The resolver configuration as the pod's libc would read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsConfigEvidence {
    pub path: String,
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub ndots: u32,
    /// Per-try timeout in seconds (`options timeout:`; default 5).
    pub timeout_s: u32,
    /// Tries per nameserver (`options attempts:`; default 2).
    pub attempts: u32,
    /// Other options verbatim (`rotate`, `single-request`, `use-vc`, `edns0`...).
    #[serde(default)]
    pub options: Vec<String>,
    /// Set when the file could not be read or parsed; the other fields are then glibc defaults.
    #[serde(default)]
    pub error: Option<String>,
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
    /// The candidate a libc resolver would stop at (first with a NOERROR answer containing
    /// addresses), if any.
    #[serde(default)]
    pub answered_by: Option<String>,
    /// Addresses of that answer (A then AAAA).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Queries that a resolver would have sent before reaching `answered_by` and that did not
    /// help (NXDOMAIN / NODATA on earlier candidates).
    pub wasted_queries: u32,
    /// Time from the first query to the one that answered (or to the last when none did).
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsQuery {
    pub candidate: String,
    /// `A` or `AAAA`.
    pub qtype: String,
    pub nameserver: SocketAddr,
    /// `udp` or `tcp`.
    pub transport: String,
    pub outcome: DnsOutcome,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DnsOutcome {
    /// A response arrived.
    Response {
        /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`...
        rcode: String,
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
    /// `A`, `AAAA`, `CNAME`...
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
}
