//! Typed evidence, one kind per fact the probe can establish. `{"kind":"tcp", ...}` inside an
//! `evidence` event's `data`. Each kind lives in its own module.

use serde::{Deserialize, Serialize};

mod capture;
mod dns;
mod kernel;
mod links;
mod mtu;
mod route;
mod sockets;
mod tcp;

pub use capture::*;
pub use dns::*;
pub use kernel::*;
pub use links::*;
pub use mtu::*;
pub use route::*;
pub use sockets::*;
pub use tcp::*;

use crate::plan::CheckKind;

/// One piece of evidence. The `kind` tag names it; several kinds may come from one check
/// (`route` emits `route` per target and one `rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    Links(LinksEvidence),
    Route(RouteEvidence),
    Rules(RulesEvidence),
    DnsConfig(DnsConfigEvidence),
    DnsLookup(DnsLookupEvidence),
    Tcp(TcpEvidence),
    Sockets(SocketsEvidence),
    Counters(CountersEvidence),
    Conntrack(ConntrackEvidence),
    Sysctls(SysctlsEvidence),
    Mtu(MtuEvidence),
    CaptureSummary(CaptureSummary),
}

/// Evidence kinds this version knows; others are skipped by readers as a newer probe's.
pub const KNOWN_KINDS: &[&str] = &[
    "links",
    "route",
    "rules",
    "dns_config",
    "dns_lookup",
    "tcp",
    "sockets",
    "counters",
    "conntrack",
    "sysctls",
    "mtu",
    "capture_summary",
];

impl Evidence {
    /// The check that produces this kind of evidence.
    pub fn check(&self) -> CheckKind {
        match self {
            Evidence::Links(_) => CheckKind::Links,
            Evidence::Route(_) | Evidence::Rules(_) => CheckKind::Route,
            Evidence::DnsConfig(_) | Evidence::DnsLookup(_) => CheckKind::Dns,
            Evidence::Tcp(_) => CheckKind::Tcp,
            Evidence::Sockets(_) => CheckKind::Sockets,
            Evidence::Counters(_) => CheckKind::Counters,
            Evidence::Conntrack(_) => CheckKind::Conntrack,
            Evidence::Sysctls(_) => CheckKind::Sysctls,
            Evidence::Mtu(_) => CheckKind::Mtu,
            Evidence::CaptureSummary(_) => CheckKind::Capture,
        }
    }
}
