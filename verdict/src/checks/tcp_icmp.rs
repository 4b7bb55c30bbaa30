//! `tcp` evidence whose connect ended with an ICMP error (`icmp`, from the probe's socket
//! error queue): the verdict names the error, its type/code and who sent it. The sender is a
//! claim about where the SYN was stopped: the destination itself (it got there), a hop in
//! between (it never got there), or this host (it never left). An ICMP port unreachable
//! makes connect fail with ECONNREFUSED exactly like a RST, but says something else: a
//! firewall's REJECT, not a port without a listener.

use std::net::IpAddr;

use protocol::{ConnectIcmp, Family, IcmpMeaning, Open, TargetRole, TcpEvidence};

use crate::facts::Facts;
use crate::model::{Layer, RuleCode, Severity};
use crate::report::Report;
use crate::words::{list, ms};

/// `ICMP 3/13`, `ICMPv6 1/1`.
pub fn numbers(i: &ConnectIcmp) -> String {
    let name = if i.family == Family::Inet6 {
        "ICMPv6"
    } else {
        "ICMP"
    };
    format!("{name} {}/{}", i.icmp_type, i.code)
}

/// The error in words: `administratively prohibited`; an unnamed one by its wire text.
pub fn meaning_words(meaning: &Open<IcmpMeaning>) -> String {
    use IcmpMeaning::*;
    let Open::Known(m) = meaning else {
        return meaning.to_string().replace('_', " ");
    };
    match m {
        NetUnreachable => "network unreachable",
        HostUnreachable => "host unreachable",
        ProtocolUnreachable => "protocol unreachable",
        PortUnreachable => "port unreachable",
        FragNeeded => "fragmentation needed",
        SourceRouteFailed => "source route failed",
        NetUnknown => "destination network unknown",
        HostUnknown => "destination host unknown",
        HostIsolated => "source host isolated",
        NetProhibited => "network administratively prohibited",
        HostProhibited => "host administratively prohibited",
        NetTosUnreachable => "network unreachable for TOS",
        HostTosUnreachable => "host unreachable for TOS",
        AdminProhibited => "administratively prohibited",
        HostPrecedenceViolation => "host precedence violation",
        PrecedenceCutoff => "precedence cutoff in effect",
        BeyondScope => "beyond scope of source address",
        SourcePolicyFailed => "source address failed policy",
        RejectRoute => "reject route to destination",
        TtlExceeded => "TTL exceeded in transit",
        ReassemblyTimeExceeded => "fragment reassembly time exceeded",
        ParameterProblem => "parameter problem",
    }
    .to_string()
}

/// Where the error came from, relative to the connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The destination address itself.
    Destination,
    /// An address of this host (the connect's source, or any local interface's).
    ThisHost,
    /// Anything else: a router or firewall between here and the destination.
    Hop,
    /// The kernel recorded no sender.
    Unknown,
}

pub fn sender(f: &Facts, t: &TcpEvidence, i: &ConnectIcmp) -> Sender {
    let Some(from) = i.from else {
        return Sender::Unknown;
    };
    if from == t.address.ip() {
        Sender::Destination
    } else if t.local.is_some_and(|l| l.ip() == from) || f.link_with_address(from).is_some() {
        Sender::ThisHost
    } else {
        Sender::Hop
    }
}

/// `administratively prohibited (ICMP 3/13) from 10.0.0.1`.
pub fn icmp_words(i: &ConnectIcmp) -> String {
    let from = i.from.map(|a| format!(" from {a}")).unwrap_or_default();
    format!("{} ({}){from}", meaning_words(&i.meaning), numbers(i))
}

/// The rule: every failed connect that ended with an ICMP error, cause from the first.
pub fn rejected_by_icmp(f: &Facts, failed: &[&TcpEvidence], r: &mut Report) {
    let Some((t0, i0)) = failed.iter().find_map(|t| Some((*t, t.icmp.as_ref()?))) else {
        return;
    };
    let words: Vec<String> = failed
        .iter()
        .filter_map(|t| {
            let i = t.icmp.as_ref()?;
            Some(format!(
                "{} {} in {} ({})",
                t.address,
                icmp_words(i),
                ms(t.latency_ms),
                sender_words(sender(f, t, i))
            ))
        })
        .collect();
    let from = sender(f, t0, i0);
    let headline = format!(
        "L4 rejected: {} ({}){}",
        meaning_words(&i0.meaning),
        numbers(i0),
        i0.from.map(|a| format!(" from {a}")).unwrap_or_default()
    );
    let mut b = r
        .finding(
            RuleCode::TcpRejected,
            Layer::Transport,
            Severity::Failure,
            headline,
            cause(f, t0, i0, from),
        )
        .line(list(&words, 3));
    for next in next_commands(t0, i0, from) {
        b = b.next(next);
    }
    b.add();
}

/// Who sent it, relative to the connect.
fn sender_words(s: Sender) -> &'static str {
    match s {
        Sender::Destination => "the destination itself",
        Sender::ThisHost => "this host",
        Sender::Hop => "a hop before the destination",
        Sender::Unknown => "sender not recorded",
    }
}

fn cause(f: &Facts, t: &TcpEvidence, i: &ConnectIcmp, from: Sender) -> String {
    let dst = t.address.ip();
    let sender = i.from.map(|a| a.to_string()).unwrap_or_else(|| "?".into());
    let place = match from {
        Sender::Destination if f.role(&t.role, dst) == TargetRole::ClusterIp => {
            ": the sender shows as the ClusterIP because conntrack rewrites the source of \
             errors about a translated connection, so the endpoint or a hop before it sent it"
                .to_string()
        }
        Sender::Destination => {
            format!(
                ": {dst} itself sent it, so the SYN reached the destination and was stopped there"
            )
        }
        Sender::ThisHost => {
            format!(": this host ({sender}) sent it to itself, so the SYN was stopped here, before it left")
        }
        Sender::Hop => format!(
            ": {sender}, a hop before {dst}, sent it, so the SYN was stopped there and never \
             reached the destination"
        ),
        Sender::Unknown => String::new(),
    };
    format!(
        "connect to {} got {} in {}{place}; {}",
        t.address,
        icmp_words(i),
        ms(t.latency_ms),
        what_it_means(i, from)
    )
}

/// The likely reason for this error, in the words an operator acts on.
fn what_it_means(i: &ConnectIcmp, from: Sender) -> String {
    use IcmpMeaning::*;
    let with = reject_with(i)
        .map(|w| format!("--reject-with {w}"))
        .unwrap_or_else(|| "REJECT".into());
    let at = match from {
        Sender::ThisHost => " in this network namespace's OUTPUT chain",
        Sender::Destination => " on the destination",
        Sender::Hop => " there",
        Sender::Unknown => "",
    };
    match i.meaning.known() {
        Some(PortUnreachable) => format!(
            "connect reports ECONNREFUSED as for a RST, but a TCP host answers a closed port \
             with RST: this is a firewall's REJECT{at} ({with}, iptables' default), not a \
             missing listener"
        ),
        Some(NetProhibited | HostProhibited | AdminProhibited | SourcePolicyFailed) => {
            format!("a firewall{at} prohibits it ({with})")
        }
        Some(ProtocolUnreachable) => format!("a firewall{at} refuses TCP ({with})"),
        Some(HostUnreachable) if from == Sender::ThisHost => {
            format!("the next hop did not answer ARP/ND, or a firewall{at} rejects it ({with})")
        }
        Some(HostUnreachable) => format!(
            "the sender could not deliver to the destination, which did not answer ARP/ND on \
             its link (down or gone), or a firewall{at} rejects it ({with})"
        ),
        Some(NetUnreachable | RejectRoute | NetUnknown | HostUnknown) => {
            format!("the sender has no route onward, or a firewall{at} rejects it ({with})")
        }
        Some(TtlExceeded) => "a routing loop, or a path longer than the packet's TTL".into(),
        Some(FragNeeded) => "a link on the path has a smaller MTU than this packet".into(),
        _ => format!("a router or firewall{at} rejects it"),
    }
}

/// iptables' / ip6tables' `--reject-with` that sends this error, when one does.
fn reject_with(i: &ConnectIcmp) -> Option<&'static str> {
    use IcmpMeaning::*;
    let v6 = i.family == Family::Inet6;
    Some(match (i.meaning.known()?, v6) {
        (NetUnreachable, false) => "icmp-net-unreachable",
        (HostUnreachable, false) => "icmp-host-unreachable",
        (PortUnreachable, false) => "icmp-port-unreachable",
        (ProtocolUnreachable, false) => "icmp-proto-unreachable",
        (NetProhibited, false) => "icmp-net-prohibited",
        (HostProhibited, false) => "icmp-host-prohibited",
        (AdminProhibited, false) => "icmp-admin-prohibited",
        (NetUnreachable, true) => "icmp6-no-route",
        (AdminProhibited, true) => "icmp6-adm-prohibited",
        (HostUnreachable, true) => "icmp6-addr-unreachable",
        (PortUnreachable, true) => "icmp6-port-unreachable",
        _ => return None,
    })
}

/// Where to look: the firewall of whoever sent the error.
fn next_commands(t: &TcpEvidence, i: &ConnectIcmp, from: Sender) -> Vec<String> {
    let dst = t.address.ip();
    let port = t.address.port();
    let tables = if dst.is_ipv6() {
        "ip6tables"
    } else {
        "iptables"
    };
    let sender = i.from.map(|a: IpAddr| a.to_string()).unwrap_or_default();
    match from {
        Sender::Destination => vec![format!(
            "{tables} -S INPUT; nft list ruleset   # on {dst}, the destination"
        )],
        Sender::ThisHost => vec![
            format!("{tables} -S OUTPUT; nft list ruleset   # in the source's network namespace"),
            format!("ip route get {dst}; ip neigh show"),
        ],
        Sender::Hop => vec![
            format!("{tables} -S FORWARD | grep {dst}; nft list ruleset   # on {sender}"),
            format!("traceroute -T -p {port} {dst}"),
        ],
        Sender::Unknown => vec![format!("traceroute -T -p {port} {dst}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_errors_in_words() {
        let admin = ConnectIcmp::new(false, 3, 13, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            icmp_words(&admin),
            "administratively prohibited (ICMP 3/13) from 10.0.0.1"
        );
        assert_eq!(reject_with(&admin), Some("icmp-admin-prohibited"));
        let v6 = ConnectIcmp::new(true, 1, 1, None);
        assert_eq!(icmp_words(&v6), "administratively prohibited (ICMPv6 1/1)");
        assert_eq!(reject_with(&v6), Some("icmp6-adm-prohibited"));
        // A type/code this version does not name keeps its numbers.
        let odd = ConnectIcmp::new(false, 3, 42, None);
        assert_eq!(icmp_words(&odd), "icmp 3 42 (ICMP 3/42)");
        assert_eq!(reject_with(&odd), None);
        let ttl = ConnectIcmp::new(false, 11, 0, None);
        assert_eq!(
            what_it_means(&ttl, Sender::Hop),
            "a routing loop, or a path longer than the packet's TTL"
        );
    }

    #[test]
    fn port_unreachable_is_told_apart_from_a_reset() {
        let port = ConnectIcmp::new(false, 3, 3, Some("10.0.0.1".parse().unwrap()));
        let words = what_it_means(&port, Sender::Hop);
        assert!(words.contains("ECONNREFUSED as for a RST"), "{words}");
        assert!(
            words.contains("--reject-with icmp-port-unreachable"),
            "{words}"
        );
        assert!(words.contains("not a missing listener"), "{words}");
        let local = what_it_means(&port, Sender::ThisHost);
        assert!(
            local.contains("in this network namespace's OUTPUT chain"),
            "{local}"
        );
    }
}
