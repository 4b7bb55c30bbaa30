//! The check registry: every check is described once, here. The check names
//! ([`CheckKind`]), the evidence kinds each check emits ([`Evidence`], [`KNOWN_KINDS`],
//! [`Evidence::check`], the [`EvidenceType`] impls readers use to ask for evidence by type) and
//! each check's properties ([`CheckInfo`]) all come from the one table at the bottom of this
//! file. Adding a check means adding one entry here, its evidence struct, and the probe's code
//! that runs it.

use serde::{Deserialize, Serialize};

use crate::evidence::*;
use crate::spelled;
use crate::values::Capability;

spelled! {
    /// Layers in the order a packet's journey depends on them; a verdict names the first one
    /// that failed.
    pub enum Layer {
        Dns = "dns",
        Service = "service",
        /// Route, neighbor, interfaces, rp_filter.
        Network = "network",
        /// TCP connect, listeners, sockets toward the targets.
        Transport = "transport",
        /// NetworkPolicy predictions (Kubernetes-level).
        Policy = "policy",
        /// Path MTU.
        Path = "path",
        /// Conntrack and socket-table pressure of the namespace.
        State = "state",
        /// TLS and HTTP above the connect: whether the listener is the service.
        Application = "application",
        /// The tool itself (probe stopped early, a check failed): not a network layer.
        Probe = "probe",
    }
}

impl Layer {
    /// Short label used in text and markdown (`DNS`, `Service`, `Route`, `TCP`, `Policy`,
    /// `MTU`, `State`, `Probe`).
    pub fn label(self) -> &'static str {
        match self {
            Layer::Dns => "DNS",
            Layer::Service => "Service",
            Layer::Network => "Route",
            Layer::Transport => "TCP",
            Layer::Policy => "Policy",
            Layer::Path => "MTU",
            Layer::State => "State",
            Layer::Application => "App",
            Layer::Probe => "Probe",
        }
    }
}

/// What is known about a check without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckInfo {
    /// The layer its evidence speaks about.
    pub layer: Layer,
    /// Runs when a plan names no checks (the core set); otherwise only when asked for.
    pub default: bool,
    /// A capability without which the check cannot run at all (it is skipped, saying so).
    pub privilege: Option<Capability>,
    /// Watches the traffic other checks make (starts first, stops after them).
    pub observer: bool,
    /// Sends packets of its own (observers wait for these to finish).
    pub generates_traffic: bool,
    /// The evidence kinds it emits.
    pub evidence: &'static [&'static str],
}

/// Evidence that can be asked for by type: `facts.all::<TcpEvidence>()`.
pub trait EvidenceType: Sized + 'static {
    /// The `kind` tag on the wire.
    const KIND: &'static str;
    /// The check that emits it.
    const CHECK: CheckKind;
    /// This evidence, if `evidence` is of this type.
    fn from_evidence(evidence: &Evidence) -> Option<&Self>;
}

macro_rules! checks {
    ($(
        $(#[$doc:meta])*
        $check:ident = $name:literal {
            layer: $layer:ident,
            default: $default:expr,
            privilege: $privilege:expr,
            observer: $observer:expr,
            traffic: $traffic:expr,
            evidence: { $( $(#[$edoc:meta])* $ev:ident($ty:ident) = $kind:literal ),+ $(,)? } $(,)?
        }
    ),+ $(,)?) => {
        spelled! {
            /// Every check the probe knows. The name is used in events and on the command line.
            pub enum CheckKind { $( $(#[$doc])* $check = $name ),+ }
        }

        impl CheckKind {
            /// What is known about this check (see the registry table).
            pub fn info(self) -> CheckInfo {
                match self {
                    $(CheckKind::$check => CheckInfo {
                        layer: Layer::$layer,
                        default: $default,
                        privilege: $privilege,
                        observer: $observer,
                        generates_traffic: $traffic,
                        evidence: &[$($kind),+],
                    },)+
                }
            }
        }

        /// One piece of evidence. The `kind` tag names it; several kinds may come from one
        /// check (`route` emits `route` per target and one `rules`).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum Evidence {
            $($( $(#[$edoc])* #[serde(rename = $kind)] $ev($ty), )+)+
        }

        /// Evidence kinds this version knows; readers skip others as a newer probe's.
        pub const KNOWN_KINDS: &[&str] = &[$($($kind,)+)+];

        impl Evidence {
            /// The check that produces this kind of evidence.
            pub fn check(&self) -> CheckKind {
                match self {
                    $($(Evidence::$ev(_) => CheckKind::$check,)+)+
                }
            }

            /// The `kind` tag.
            pub fn kind(&self) -> &'static str {
                match self {
                    $($(Evidence::$ev(_) => $kind,)+)+
                }
            }
        }

        $($(
            impl EvidenceType for $ty {
                const KIND: &'static str = $kind;
                const CHECK: CheckKind = CheckKind::$check;
                fn from_evidence(evidence: &Evidence) -> Option<&Self> {
                    match evidence {
                        Evidence::$ev(e) => Some(e),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )+)+
    };
}

checks! {
    /// Interfaces, their addresses, state, MTU and error counters.
    Links = "links" {
        layer: Network, default: true, privilege: None, observer: false, traffic: false,
        evidence: { Links(LinksEvidence) = "links" },
    },
    /// The kernel's route for each target, its next hop's neighbor entry, policy rules.
    Route = "route" {
        layer: Network, default: true, privilege: None, observer: false, traffic: false,
        evidence: { Route(RouteEvidence) = "route", Rules(RulesEvidence) = "rules" },
    },
    /// resolv.conf and every query the pod's resolver would send for the names.
    Dns = "dns" {
        layer: Dns, default: true, privilege: None, observer: false, traffic: true,
        evidence: {
            DnsConfig(DnsConfigEvidence) = "dns_config",
            DnsLookup(DnsLookupEvidence) = "dns_lookup",
            DnsRounds(DnsRoundsEvidence) = "dns_rounds",
        },
    },
    /// A TCP connect to each target (and, with plan `rounds`, repeated connects).
    Tcp = "tcp" {
        layer: Transport, default: true, privilege: None, observer: false, traffic: true,
        evidence: { Tcp(TcpEvidence) = "tcp", TcpRounds(TcpRoundsEvidence) = "tcp_rounds" },
    },
    /// The namespace's TCP socket table (sock_diag).
    Sockets = "sockets" {
        layer: Transport, default: true, privilege: None, observer: false, traffic: false,
        evidence: { Sockets(SocketsEvidence) = "sockets" },
    },
    /// snmp/netstat counters sampled before and after the traffic checks.
    Counters = "counters" {
        layer: Transport, default: true, privilege: None, observer: true, traffic: false,
        evidence: { Counters(CountersEvidence) = "counters" },
    },
    /// Connection tracking table fill and statistics.
    Conntrack = "conntrack" {
        layer: State, default: true, privilege: None, observer: false, traffic: false,
        evidence: { Conntrack(ConntrackEvidence) = "conntrack" },
    },
    /// Sysctls that change how traffic behaves (rp_filter, port range...).
    Sysctls = "sysctls" {
        layer: Network, default: true, privilege: None, observer: false, traffic: false,
        evidence: { Sysctls(SysctlsEvidence) = "sysctls" },
    },
    /// Path MTU search toward each target (ICMP with NET_RAW or ping sockets, else TCP).
    Mtu = "mtu" {
        layer: Path, default: false, privilege: None, observer: false, traffic: true,
        evidence: { Mtu(MtuEvidence) = "mtu" },
    },
    /// After each target's connect: a TLS handshake where asked, then one HTTP/1.1 request
    /// (plan `app`, protocol minor 5).
    App = "app" {
        layer: Application, default: false, privilege: None, observer: false, traffic: true,
        evidence: { Tls(TlsEvidence) = "tls", Http(HttpEvidence) = "http" },
    },
    /// The node's half of the path, from the node's own network namespace: overlay devices
    /// and their MTU, the node's routes to the targets, rp_filter, conntrack fill (a node
    /// view only: `node/NAME`, `--via-node`; protocol minor 6). An observer: the node's
    /// counters are sampled before the traffic checks start and again when they are done.
    NodePath = "node_path" {
        layer: Network, default: false, privilege: None, observer: true, traffic: false,
        evidence: { NodePath(NodePathEvidence) = "node_path" },
    },
    /// A bounded packet capture while the other checks run.
    Capture = "capture" {
        layer: Transport, default: false, privilege: Some(Capability::NetRaw), observer: true, traffic: false,
        evidence: { CaptureSummary(CaptureSummary) = "capture_summary" },
    },
}

impl CheckKind {
    /// Every check, in registry order.
    pub const ALL: &'static [CheckKind] = <CheckKind as crate::Spelled>::ALL;

    /// The checks that run when a plan names none.
    pub fn defaults() -> impl Iterator<Item = CheckKind> {
        Self::ALL.iter().copied().filter(|k| k.info().default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_evidence_kind_belongs_to_exactly_one_check() {
        let mut listed: Vec<&str> = CheckKind::ALL
            .iter()
            .flat_map(|k| k.info().evidence.iter().copied())
            .collect();
        listed.sort();
        let mut known = KNOWN_KINDS.to_vec();
        known.sort();
        assert_eq!(listed, known);
    }

    #[test]
    fn observers_generate_no_traffic_of_their_own() {
        for k in CheckKind::ALL {
            let info = k.info();
            assert!(
                !(info.observer && info.generates_traffic),
                "{k} both observes and generates traffic"
            );
        }
    }
}
