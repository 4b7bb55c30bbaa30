//! The `matched` of a refused route lookup: which policy rule, and which route of which
//! table, refused it. The policy rules (already dumped for the `rules` evidence) and every
//! route of the destination's family (dumped once, on the first refusal) are turned into the
//! plain data [`crate::policy_walk`] walks.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use protocol::{NoRouteReason, Open, RefusedBy, RouteOutcome};
use rtnetlink::packet_route::route::{RouteAttribute, RouteFlags, RouteMessage, RouteType};
use rtnetlink::packet_route::rule::{self, RuleAttribute, RuleFlags, RuleMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::IpVersion;

use super::route::{no_route_for_errno, rule as rule_evidence};
use crate::netlink::{route_address, Rtnl};
use crate::policy_walk::{
    walk, Ending, Flow, PolicyRule, Prefix, RouteKind, RuleAction, TableRoute,
};

/// The rules of both families, and each family's routes once dumped.
pub struct Refusals<'a> {
    rtnl: &'a Rtnl,
    rules: Vec<(bool, PolicyRule)>,
    /// Per family (`true` for IPv6); `None` when the dump failed (no `matched` then).
    routes: HashMap<bool, Option<Vec<TableRoute>>>,
    uid: u32,
}

impl<'a> Refusals<'a> {
    pub fn new(rtnl: &'a Rtnl, rules: &[RuleMessage]) -> Refusals<'a> {
        Refusals {
            rtnl,
            rules: rules
                .iter()
                .map(|m| (m.header.family == AddressFamily::Inet6, policy_rule(m)))
                .collect(),
            routes: HashMap::new(),
            // RTM_GETROUTE without RTA_UID matches uid rules against the caller's uid.
            uid: nix::unistd::getuid().as_raw(),
        }
    }

    /// Fill in `matched` of a `no_route` outcome, when the walk agrees with the kernel.
    pub async fn explain(&mut self, destination: IpAddr, outcome: &mut RouteOutcome) {
        if let RouteOutcome::NoRoute {
            reason, matched, ..
        } = outcome
        {
            *matched = self.refused_by(destination, reason).await;
        }
    }

    async fn refused_by(
        &mut self,
        destination: IpAddr,
        reason: &Open<NoRouteReason>,
    ) -> Option<RefusedBy> {
        let v6 = destination.is_ipv6();
        if !self.routes.contains_key(&v6) {
            let version = if v6 { IpVersion::V6 } else { IpVersion::V4 };
            let dumped = self.rtnl.routes(version).await.ok();
            let routes = dumped.map(|msgs| msgs.iter().filter_map(table_route).collect());
            self.routes.insert(v6, routes);
        }
        let routes = self.routes.get(&v6)?.as_ref()?;
        let rules: Vec<PolicyRule> = self
            .rules
            .iter()
            .filter(|(family_v6, _)| *family_v6 == v6)
            .map(|(_, r)| r.clone())
            .collect();
        let flow = Flow {
            destination,
            uid: self.uid,
        };
        let walked = walk(flow, &rules, routes);
        let mut by = refused_by(&walked.ending, reason)?;
        by.unevaluated = walked.unevaluated;
        Some(by)
    }
}

/// The evidence for a walk's ending, claimed only when it refuses with the errno the kernel
/// answered (the reason): otherwise something the walk did not model decided the lookup.
fn refused_by(ending: &Ending, reason: &Open<NoRouteReason>) -> Option<RefusedBy> {
    let RouteOutcome::NoRoute { reason: walked, .. } = no_route_for_errno(ending.errno()?) else {
        return None;
    };
    if walked != *reason {
        return None;
    }
    match ending {
        Ending::Rule(rule) => Some(RefusedBy {
            rule_priority: rule.priority,
            rule: rule.text.clone(),
            table: None,
            route: None,
            unevaluated: Vec::new(),
        }),
        Ending::Route(rule, route) => Some(RefusedBy {
            rule_priority: rule.priority,
            rule: rule.text.clone(),
            table: Some(route.table),
            route: Some(route.text()),
            unevaluated: Vec::new(),
        }),
        // No route at all: nothing refused it.
        _ => None,
    }
}

/// A rule message as the walk's plain data; its text is `ip rule`'s spelling.
pub fn policy_rule(msg: &RuleMessage) -> PolicyRule {
    let shown = rule_evidence(msg);
    let mut r = PolicyRule {
        priority: shown.priority,
        invert: msg.header.flags.contains(RuleFlags::Invert),
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: 0,
        fwmask: u32::MAX,
        tos: msg.header.tos,
        uid_range: None,
        l3mdev: false,
        proto_or_ports: false,
        suppress_prefixlen: None,
        suppress_ifgroup: false,
        action: RuleAction::Other,
        text: String::new(),
    };
    for attr in &msg.attributes {
        match attr {
            RuleAttribute::Source(a) => r.from = Some(prefix(*a, msg.header.src_len)),
            RuleAttribute::Destination(a) => r.to = Some(prefix(*a, msg.header.dst_len)),
            RuleAttribute::Iifname(n) => r.iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => r.oif = Some(n.clone()),
            RuleAttribute::FwMark(m) => r.fwmark = *m,
            RuleAttribute::FwMask(m) => r.fwmask = *m,
            RuleAttribute::UidRange(u) => r.uid_range = Some((u.start, u.end)),
            RuleAttribute::L3MDev(on) => r.l3mdev = *on,
            RuleAttribute::IpProtocol(_)
            | RuleAttribute::SourcePortRange(_)
            | RuleAttribute::DestinationPortRange(_) => r.proto_or_ports = true,
            RuleAttribute::SuppressPrefixLen(n) if *n != u32::MAX => {
                r.suppress_prefixlen = Some(*n)
            }
            RuleAttribute::SuppressIfGroup(g) if *g != u32::MAX => r.suppress_ifgroup = true,
            _ => {}
        }
    }
    r.action = match msg.header.action {
        rule::RuleAction::ToTable => RuleAction::Lookup(shown.table.unwrap_or(0)),
        rule::RuleAction::Goto => shown.table.map_or(RuleAction::Other, RuleAction::Goto),
        rule::RuleAction::Nop => RuleAction::Nop,
        rule::RuleAction::Prohibit => RuleAction::Prohibit,
        rule::RuleAction::Blackhole => RuleAction::Blackhole,
        rule::RuleAction::Unreachable => RuleAction::Unreachable,
        _ => RuleAction::Other,
    };
    r.text = format!("{} {}", shown.selector, action_text(r.action));
    r
}

/// `ip rule`'s spelling of the action: `lookup main`, `lookup 100`, `goto 1500`, `prohibit`.
fn action_text(action: RuleAction) -> String {
    match action {
        RuleAction::Lookup(255) => "lookup local".into(),
        RuleAction::Lookup(254) => "lookup main".into(),
        RuleAction::Lookup(253) => "lookup default".into(),
        RuleAction::Lookup(t) => format!("lookup {t}"),
        RuleAction::Goto(p) => format!("goto {p}"),
        RuleAction::Nop => "nop".into(),
        RuleAction::Prohibit => "prohibit".into(),
        RuleAction::Blackhole => "blackhole".into(),
        RuleAction::Unreachable => "unreachable".into(),
        RuleAction::Other => "(unknown action)".into(),
    }
}

fn prefix(address: IpAddr, len: u8) -> Prefix {
    Prefix { address, len }
}

/// A dumped route as the walk's plain data (None for a non-IP destination).
pub fn table_route(msg: &RouteMessage) -> Option<TableRoute> {
    let v6 = msg.header.address_family == AddressFamily::Inet6;
    let mut table = u32::from(msg.header.table);
    let mut destination = None;
    let mut metric = 0;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => destination = Some(route_address(a)?),
            RouteAttribute::Priority(p) => metric = *p,
            _ => {}
        }
    }
    let address = destination.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    Some(TableRoute {
        table,
        destination: prefix(address, msg.header.destination_prefix_length),
        kind: match msg.header.kind {
            RouteType::Prohibit => RouteKind::Prohibit,
            RouteType::BlackHole => RouteKind::Blackhole,
            RouteType::Unreachable => RouteKind::Unreachable,
            RouteType::Throw => RouteKind::Throw,
            _ => RouteKind::Usable,
        },
        tos: msg.header.tos,
        metric,
        dead: msg.header.flags.contains(RouteFlags::Dead),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::route::RouteAddress;

    #[test]
    fn rule_message_becomes_the_walks_rule_with_ip_rule_text() {
        let mut msg = RuleMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.action = rule::RuleAction::ToTable;
        msg.header.dst_len = 24;
        msg.header.flags = RuleFlags::Invert;
        msg.attributes = vec![
            RuleAttribute::Priority(1000),
            RuleAttribute::Destination("10.9.0.0".parse().unwrap()),
            RuleAttribute::Table(100),
            RuleAttribute::SuppressPrefixLen(u32::MAX),
        ];
        let r = policy_rule(&msg);
        assert_eq!(r.priority, 1000);
        assert!(r.invert);
        assert_eq!(r.to, Some(prefix("10.9.0.0".parse().unwrap(), 24)));
        assert_eq!(r.action, RuleAction::Lookup(100));
        assert_eq!(r.suppress_prefixlen, None);
        assert_eq!(r.text, "not from all to 10.9.0.0/24 lookup 100");

        let mut msg = RuleMessage::default();
        msg.header.action = rule::RuleAction::ToTable;
        msg.header.table = 254;
        msg.attributes = vec![RuleAttribute::Priority(32766)];
        assert_eq!(policy_rule(&msg).text, "from all lookup main");
        msg.header.action = rule::RuleAction::Prohibit;
        assert_eq!(policy_rule(&msg).action, RuleAction::Prohibit);
        assert_eq!(policy_rule(&msg).text, "from all prohibit");
    }

    #[test]
    fn route_message_becomes_the_walks_route() {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.kind = RouteType::Prohibit;
        msg.header.table = 252;
        msg.header.destination_prefix_length = 24;
        msg.attributes = vec![
            RouteAttribute::Table(100),
            RouteAttribute::Destination(RouteAddress::Inet("10.9.0.0".parse().unwrap())),
            RouteAttribute::Priority(7),
        ];
        let r = table_route(&msg).unwrap();
        assert_eq!((r.table, r.metric, r.kind), (100, 7, RouteKind::Prohibit));
        assert_eq!(r.text(), "prohibit 10.9.0.0/24");
        // A default route has no destination attribute.
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.kind = RouteType::Unicast;
        msg.header.table = 254;
        let r = table_route(&msg).unwrap();
        assert_eq!(
            (r.table, r.kind, r.text()),
            (254, RouteKind::Usable, "default".into())
        );
    }

    #[test]
    fn a_walk_is_claimed_only_when_it_agrees_with_the_kernels_errno() {
        let rule = PolicyRule {
            action: RuleAction::Prohibit,
            text: "from all to 10.9.0.0/24 prohibit".into(),
            ..policy_rule(&RuleMessage::default())
        };
        let ending = Ending::Rule(&rule);
        let prohibited: Open<NoRouteReason> = NoRouteReason::Prohibited.into();
        let by = refused_by(&ending, &prohibited).expect("agrees");
        assert_eq!((by.table, by.route), (None, None));
        assert_eq!(by.rule, "from all to 10.9.0.0/24 prohibit");
        let blackhole: Open<NoRouteReason> = NoRouteReason::Blackhole.into();
        assert_eq!(refused_by(&ending, &blackhole), None);
        let none: Open<NoRouteReason> = NoRouteReason::NetworkUnreachable.into();
        assert_eq!(refused_by(&Ending::NoRoute, &none), None);
    }
}
