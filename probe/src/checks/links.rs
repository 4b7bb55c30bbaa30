//! Check `links`: every interface of the namespace (`ip -s addr` equivalent) from rtnetlink:
//! oper state, IFF_UP / IFF_LOWER_UP / IFF_LOOPBACK, MTU, MAC, kind, addresses and the 64-bit
//! rx/tx counters. Needs no privileges.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use protocol::{
    AddressScope as Scope, Evidence, InterfaceAddress, Link, LinkStats, LinksEvidence, Open,
    OperState,
};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State};

use super::Outcome;
use crate::context::Ctx;
use crate::netlink::{format_mac, Rtnl};

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    match collect().await {
        Ok(evidence) => {
            ctx.emit(Evidence::Links(evidence));
            Outcome::Completed
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

async fn collect() -> Result<LinksEvidence, crate::netlink::NetlinkError> {
    let rtnl = Rtnl::connect()?;
    let links = rtnl.links().await?;
    let addresses = rtnl.addresses().await?;
    Ok(build(&links, &addresses))
}

/// Join links with their addresses, in interface-index order.
pub fn build(links: &[LinkMessage], addresses: &[AddressMessage]) -> LinksEvidence {
    let mut by_index: HashMap<u32, Vec<InterfaceAddress>> = HashMap::new();
    for a in addresses {
        if let Some(addr) = interface_address(a) {
            by_index.entry(a.header.index).or_default().push(addr);
        }
    }
    let mut out: Vec<Link> = links
        .iter()
        .map(|l| link(l, by_index.remove(&l.header.index).unwrap_or_default()))
        .collect();
    out.sort_by_key(|l| l.index);
    LinksEvidence { links: out }
}

fn link(msg: &LinkMessage, addresses: Vec<InterfaceAddress>) -> Link {
    let flags = msg.header.flags;
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        oper_state: OperState::Unknown.into(),
        admin_up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        loopback: flags.contains(LinkFlags::Loopback),
        mtu: 0,
        mac: None,
        addresses,
        stats: LinkStats::default(),
    };
    let mut have_stats64 = false;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::OperState(s) => link.oper_state = oper_state(*s),
            LinkAttribute::Address(a) if !a.is_empty() => link.mac = Some(format_mac(a)),
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.iter().find_map(|i| match i {
                    LinkInfo::Kind(k) => Some(Open::parse(&k.to_string())),
                    _ => None,
                })
            }
            LinkAttribute::Stats64(s) => {
                have_stats64 = true;
                link.stats = LinkStats {
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                    rx_dropped: s.rx_dropped,
                    tx_dropped: s.tx_dropped,
                };
            }
            // Old kernels only send the 32-bit block; use it when there is no 64-bit one.
            LinkAttribute::Stats(s) if !have_stats64 => {
                link.stats = LinkStats {
                    rx_packets: s.rx_packets.into(),
                    tx_packets: s.tx_packets.into(),
                    rx_bytes: s.rx_bytes.into(),
                    tx_bytes: s.tx_bytes.into(),
                    rx_errors: s.rx_errors.into(),
                    tx_errors: s.tx_errors.into(),
                    rx_dropped: s.rx_dropped.into(),
                    tx_dropped: s.tx_dropped.into(),
                };
            }
            _ => {}
        }
    }
    link
}

/// The kernel's operational state (its lower-case name is the wire spelling).
fn oper_state(state: State) -> Open<OperState> {
    Open::parse(&state.to_string().to_ascii_lowercase())
}

/// The interface's own address. For IPv4, IFA_LOCAL is the local address and IFA_ADDRESS the
/// peer on point-to-point links, so IFA_LOCAL wins when present.
fn interface_address(msg: &AddressMessage) -> Option<InterfaceAddress> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address: IpAddr = local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    Some(InterfaceAddress {
        address,
        prefix_len: msg.header.prefix_len,
        scope: scope_name(msg.header.scope),
    })
}

/// Address scope in `ip addr` spelling.
pub fn scope_name(scope: AddressScope) -> Open<Scope> {
    match scope {
        AddressScope::Universe => Scope::Global.into(),
        AddressScope::Site => Scope::Site.into(),
        AddressScope::Link => Scope::Link.into(),
        AddressScope::Host => Scope::Host.into(),
        AddressScope::Nowhere => Scope::Nowhere.into(),
        AddressScope::Other(v) => Open::Unknown(v.to_string()),
        // The enum is non-exhaustive upstream; a new scope keeps its number.
        #[allow(unreachable_patterns)]
        other => Open::Unknown(u8::from(other).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::Stats64;

    #[test]
    fn builds_a_link_with_addresses_and_stats() {
        let mut l = LinkMessage::default();
        l.header.index = 2;
        l.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        let mut stats = Stats64::default();
        stats.rx_packets = 5;
        stats.rx_dropped = 1;
        stats.tx_errors = 2;
        l.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Mtu(1450),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Address(vec![2, 0x42, 10, 0xf4, 0, 13]),
            LinkAttribute::Stats64(stats),
        ];
        let mut a = AddressMessage::default();
        a.header.index = 2;
        a.header.prefix_len = 24;
        a.attributes = vec![
            AddressAttribute::Address("10.244.0.1".parse().unwrap()),
            AddressAttribute::Local("10.244.0.13".parse().unwrap()),
        ];
        let mut other = AddressMessage::default();
        other.header.index = 9;
        other.attributes = vec![AddressAttribute::Address("10.0.0.1".parse().unwrap())];
        let ev = build(&[l], &[a, other]);
        let link = &ev.links[0];
        assert_eq!(link.name, "eth0");
        assert_eq!(link.oper_state, OperState::Up);
        assert!(link.admin_up && link.lower_up && !link.loopback);
        assert_eq!(link.mtu, 1450);
        assert_eq!(link.mac.as_deref(), Some("02:42:0a:f4:00:0d"));
        assert_eq!(link.addresses.len(), 1);
        assert_eq!(link.addresses[0].address.to_string(), "10.244.0.13");
        assert_eq!(link.addresses[0].scope, Scope::Global);
        assert_eq!(
            (
                link.stats.rx_packets,
                link.stats.rx_dropped,
                link.stats.tx_errors
            ),
            (5, 1, 2)
        );
    }
}
