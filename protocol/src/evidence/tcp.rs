use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::{spelled, Family, IcmpMeaning, Open, TargetRole};

/// A TCP connect to one target address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpEvidence {
    pub target: String,
    /// The address connected to; for `unresolved`, the unspecified address with the port.
    pub address: SocketAddr,
    /// What the target stands for (echoed from the plan).
    #[serde(default)]
    pub role: Open<TargetRole>,
    pub outcome: Open<TcpOutcome>,
    /// Time until the outcome was known (the timeout itself for `timeout`).
    pub latency_ms: f64,
    /// Local address the kernel chose, when the socket got one.
    #[serde(default)]
    pub local: Option<SocketAddr>,
    /// errno of the failure, when there was one.
    #[serde(default)]
    pub errno: Option<i32>,
    #[serde(default)]
    pub message: Option<String>,
    /// The ICMP error that ended the connect, read from the socket's error queue
    /// (IP_RECVERR / IPV6_RECVERR): which error and who sent it (minor 3). Absent when the
    /// connect did not end with an ICMP error: a RST (so `refused` without `icmp` is a RST
    /// from the destination, `refused` with `icmp` an ICMP port unreachable), a timeout, a
    /// local refusal, or a probe older than minor 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<ConnectIcmp>,
    /// What the node's conntrack table showed for this connect (minor 6): where the
    /// ClusterIP's DNAT happens, looked up right after the connect by its original tuple.
    /// Only in a node view (`node/NAME`, `--via-node`) and only for ClusterIP targets; absent
    /// otherwise and from older probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_nat: Option<NodeNat>,
}

/// One connect's conntrack entry on the node: did the dataplane translate the ClusterIP, and
/// to which endpoint?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeNat {
    pub state: Open<NatState>,
    /// `translated`: the endpoint the DNAT chose (the reply direction's source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SocketAddr>,
    /// `unavailable`: why the table could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

spelled! {
    /// What the node's conntrack entry for a connect to a ClusterIP said.
    pub enum NatState {
        /// The entry's reply comes from another address: the ClusterIP was DNATed to it.
        Translated = "translated",
        /// The entry exists and its reply comes from the ClusterIP itself: nothing on the
        /// node translated it (kube-proxy or its replacement does not program the Service).
        NotTranslated = "not_translated",
        /// No entry for the connect: the dataplane does not use conntrack (an eBPF service
        /// implementation), or the entry is in another zone; nothing is concluded.
        NoEntry = "no_entry",
        /// The table could not be read (no CAP_NET_ADMIN, no ctnetlink): `reason` says why.
        Unavailable = "unavailable",
    }
}

/// An ICMP or ICMPv6 error queued on a connecting socket (`sock_extended_err` with origin
/// SO_EE_ORIGIN_ICMP/ICMP6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectIcmp {
    /// `inet` for ICMP, `inet6` for ICMPv6.
    pub family: Open<Family>,
    pub icmp_type: u8,
    pub code: u8,
    /// The address that sent the error (SO_EE_OFFENDER): the destination itself, a router
    /// or firewall on the path, or this host (a local REJECT, or a next hop that did not
    /// answer ARP/ND). Absent when the kernel did not record one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IpAddr>,
    /// What type/code mean; `icmp_T_C` / `icmp6_T_C` for one this version does not name.
    pub meaning: Open<IcmpMeaning>,
}

impl ConnectIcmp {
    /// The error as the kernel queued it: `v6` for ICMPv6.
    pub fn new(v6: bool, icmp_type: u8, code: u8, from: Option<IpAddr>) -> ConnectIcmp {
        ConnectIcmp {
            family: if v6 { Family::Inet6 } else { Family::Inet }.into(),
            icmp_type,
            code,
            from,
            meaning: IcmpMeaning::spelling_of(v6, icmp_type, code),
        }
    }
}

spelled! {
    /// How a TCP connect ended.
    pub enum TcpOutcome {
        /// SYN-ACK received; connection established.
        Ok = "ok",
        /// RST received (ECONNREFUSED): reachable, nothing listening or a REJECT with
        /// tcp-reset.
        Refused = "refused",
        /// No answer before the timeout: silent drop somewhere (`errno` unset: the probe's own
        /// timer), or the kernel gave up (ETIMEDOUT).
        Timeout = "timeout",
        /// EHOSTUNREACH: ICMP host unreachable or administratively prohibited (a REJECT on the
        /// path, local or remote), an `unreachable` route, or the next hop never answered
        /// ARP/ND.
        HostUnreachable = "host_unreachable",
        /// ENETUNREACH: no route to the destination, or ICMP net unreachable.
        NetworkUnreachable = "network_unreachable",
        /// EADDRNOTAVAIL: no local address/port available (ephemeral port exhaustion, bad
        /// source).
        AddressNotAvailable = "address_not_available",
        /// EPERM/EACCES: the connect was refused locally: a `prohibit` route, an LSM or a cgroup
        /// BPF hook. (An iptables OUTPUT DROP is not seen by connect: TCP retries the SYN, which
        /// shows as `timeout`; an OUTPUT REJECT shows as `refused` or `host_unreachable`.)
        /// Linux also reports an ICMPv6 administratively prohibited from the path as EACCES:
        /// `icmp` tells that one apart.
        PermissionDenied = "permission_denied",
        /// The name could not be resolved to an address (host targets only).
        Unresolved = "unresolved",
        /// Anything else; see `errno` and `message`.
        Error = "error",
    }
}

impl TcpOutcome {
    pub fn is_ok(self) -> bool {
        self == TcpOutcome::Ok
    }
}
