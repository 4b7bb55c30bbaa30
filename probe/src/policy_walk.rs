//! Which policy rule, and which route of which table, refused a route lookup. The kernel's
//! answer to RTM_GETROUTE in that case is only an errno (EACCES, EINVAL, EHOSTUNREACH,
//! ENETUNREACH), so this walks the rules and tables the probe dumped the way
//! `fib_rules_lookup` does, for the flow that lookup used: destination `dst`, no source
//! address, input interface `lo` (a locally generated lookup), no output interface, mark 0,
//! TOS 0, no protocol or ports, the probe's uid.
//!
//! Plain data in, plain data out: no netlink here. Selectors that cannot be decided for that
//! flow are treated as the kernel treats them for it (they do not match) and, where a real
//! connect could differ (protocol and ports, VRF devices, interface groups), listed as
//! unevaluated so a reader knows the answer rests on them.

use std::net::IpAddr;

/// An address prefix (`10.9.0.0/24`); length 0 is every address of the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub address: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) => masked(
                u128::from(u32::from(p)),
                u128::from(u32::from(a)),
                self.len,
                32,
            ),
            (IpAddr::V6(p), IpAddr::V6(a)) => masked(u128::from(p), u128::from(a), self.len, 128),
            _ => false,
        }
    }
}

/// Do the first `len` of `bits` bits of `a` and `b` agree?
fn masked(a: u128, b: u128, len: u8, bits: u32) -> bool {
    let len = u32::from(len).min(bits);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Lookup(u32),
    /// Continue at the first rule with this priority.
    Goto(u32),
    Nop,
    Prohibit,
    Blackhole,
    Unreachable,
    /// An action this walk does not know: the walk stops there, unanswered.
    Other,
}

/// One policy rule of one family, with the selectors the kernel matches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    pub priority: u32,
    pub invert: bool,
    pub from: Option<Prefix>,
    pub to: Option<Prefix>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: u32,
    pub fwmask: u32,
    pub tos: u8,
    pub uid_range: Option<(u32, u32)>,
    pub l3mdev: bool,
    /// `ipproto`, `sport` or `dport` is set.
    pub proto_or_ports: bool,
    pub suppress_prefixlen: Option<u32>,
    pub suppress_ifgroup: bool,
    pub action: RuleAction,
    /// The rule in `ip rule` spelling, for the evidence.
    pub text: String,
}

/// Route types, as far as the walk cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Any type that delivers (unicast, local, broadcast, multicast...).
    Usable,
    Prohibit,
    Blackhole,
    Unreachable,
    /// Ends the lookup in this table without a result: the next rule is tried.
    Throw,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRoute {
    pub table: u32,
    pub destination: Prefix,
    pub kind: RouteKind,
    pub tos: u8,
    pub metric: u32,
    /// Every next hop is dead (RTNH_F_DEAD): the kernel skips it.
    pub dead: bool,
}

impl TableRoute {
    /// `ip route` spelling of the route's type and prefix: `prohibit 10.9.0.0/24`.
    pub fn text(&self) -> String {
        let kind = match self.kind {
            RouteKind::Prohibit => "prohibit ",
            RouteKind::Blackhole => "blackhole ",
            RouteKind::Unreachable => "unreachable ",
            RouteKind::Throw => "throw ",
            RouteKind::Usable => "",
        };
        let host = if self.destination.address.is_ipv4() {
            32
        } else {
            128
        };
        let prefix = match self.destination.len {
            0 => "default".to_string(),
            l if l == host => self.destination.address.to_string(),
            l => format!("{}/{l}", self.destination.address),
        };
        format!("{kind}{prefix}")
    }
}

/// Where the walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending<'a> {
    /// A rule's own action refused (`prohibit`, `blackhole`, `unreachable`).
    Rule(&'a PolicyRule),
    /// A refusing route in the table the rule looked up.
    Route(&'a PolicyRule, &'a TableRoute),
    /// A usable route: the walk does not explain a refusal.
    Usable(&'a PolicyRule, &'a TableRoute),
    /// No rule led to a route: no route at all.
    NoRoute,
    /// A rule this walk cannot follow (an unknown action).
    Unknown(&'a PolicyRule),
}

impl Ending<'_> {
    /// The errno the kernel answers the lookup with, for an ending that refuses.
    pub fn errno(&self) -> Option<i32> {
        let refusal = match self {
            Ending::Rule(rule) => match rule.action {
                RuleAction::Prohibit => libc::EACCES,
                RuleAction::Blackhole => libc::EINVAL,
                RuleAction::Unreachable => libc::ENETUNREACH,
                _ => return None,
            },
            Ending::Route(_, route) => match route.kind {
                RouteKind::Prohibit => libc::EACCES,
                RouteKind::Blackhole => libc::EINVAL,
                RouteKind::Unreachable => libc::EHOSTUNREACH,
                _ => return None,
            },
            Ending::NoRoute => libc::ENETUNREACH,
            Ending::Usable(..) | Ending::Unknown(_) => return None,
        };
        Some(refusal)
    }
}

/// The walk's result: where it ended, and the rules it passed whose selectors it could not
/// evaluate (`rule 500 (from all l3mdev lookup 1000): l3mdev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk<'a> {
    pub ending: Ending<'a>,
    pub unevaluated: Vec<String>,
}

/// The lookup's flow: what RTM_GETROUTE for `destination` alone uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub destination: IpAddr,
    pub uid: u32,
}

/// A goto can only jump forward, so a walk visits each rule at most once; this bounds it
/// anyway.
const MAX_STEPS: usize = 10_000;

/// Walk `rules` (one family, in the kernel's order: by priority, ties in insertion order, as
/// the rule dump lists them) for `flow`, looking up `routes` (every table of that family).
pub fn walk<'a>(flow: Flow, rules: &'a [PolicyRule], routes: &'a [TableRoute]) -> Walk<'a> {
    let mut unevaluated = Vec::new();
    let mut i = 0;
    for _ in 0..MAX_STEPS {
        let Some(rule) = rules.get(i) else { break };
        i += 1;
        if !matches(rule, flow, &mut unevaluated) {
            continue;
        }
        let table = match rule.action {
            RuleAction::Lookup(table) => table,
            RuleAction::Goto(target) => {
                // An unresolved goto (no rule with that priority) is passed over.
                if let Some(j) = rules[i..].iter().position(|r| r.priority == target) {
                    i += j;
                }
                continue;
            }
            RuleAction::Nop => continue,
            RuleAction::Prohibit | RuleAction::Blackhole | RuleAction::Unreachable => {
                return Walk {
                    ending: Ending::Rule(rule),
                    unevaluated,
                }
            }
            RuleAction::Other => {
                return Walk {
                    ending: Ending::Unknown(rule),
                    unevaluated,
                }
            }
        };
        let Some(route) = longest_match(flow.destination, table, routes) else {
            continue;
        };
        let ending = match route.kind {
            RouteKind::Throw => continue,
            RouteKind::Usable if suppressed(rule, route, &mut unevaluated) => continue,
            RouteKind::Usable => Ending::Usable(rule, route),
            _ => Ending::Route(rule, route),
        };
        return Walk {
            ending,
            unevaluated,
        };
    }
    Walk {
        ending: Ending::NoRoute,
        unevaluated,
    }
}

/// `fib_rule_match` and the family's match for the lookup's flow; `invert` (`not`) negates
/// all of it, as in the kernel.
fn matches(rule: &PolicyRule, flow: Flow, unevaluated: &mut Vec<String>) -> bool {
    let note = |why: &str| format!("rule {} ({}): {why}", rule.priority, rule.text);
    let selected = (|| {
        // A locally generated lookup comes in on `lo` and has no output interface.
        if rule.iif.as_deref().is_some_and(|i| i != "lo") || rule.oif.is_some() {
            return false;
        }
        if rule.fwmark & rule.fwmask != 0 {
            return false;
        }
        if rule
            .uid_range
            .is_some_and(|(lo, hi)| flow.uid < lo || flow.uid > hi)
        {
            return false;
        }
        if rule.l3mdev {
            unevaluated.push(note("l3mdev (matches only through a VRF device)"));
            return false;
        }
        if rule.proto_or_ports {
            unevaluated.push(note(
                "ipproto/sport/dport (the lookup has none; a connect has them)",
            ));
            return false;
        }
        // No source address: only `from all` (length 0) matches.
        if rule.from.is_some_and(|p| p.len > 0) {
            return false;
        }
        if rule.to.is_some_and(|p| !p.contains(flow.destination)) {
            return false;
        }
        rule.tos == 0
    })();
    selected != rule.invert
}

/// The route a table lookup finds: the longest prefix containing `destination`, then the
/// lowest metric; routes with a TOS (the flow has none) and dead ones are skipped.
fn longest_match(destination: IpAddr, table: u32, routes: &[TableRoute]) -> Option<&TableRoute> {
    routes
        .iter()
        .filter(|r| {
            r.table == table && r.tos == 0 && !r.dead && r.destination.contains(destination)
        })
        .min_by_key(|r| (std::cmp::Reverse(r.destination.len), r.metric))
}

/// `suppress_prefixlength N`: a route found with a prefix of N bits or fewer is ignored and
/// the next rule is tried (only for a route that delivers; errors are never suppressed).
fn suppressed(rule: &PolicyRule, route: &TableRoute, unevaluated: &mut Vec<String>) -> bool {
    if rule.suppress_ifgroup {
        unevaluated.push(format!(
            "rule {} ({}): suppress_ifgroup (the route's device group is not read)",
            rule.priority, rule.text
        ));
    }
    rule.suppress_prefixlen
        .is_some_and(|n| u32::from(route.destination.len) <= n)
}

#[cfg(test)]
mod tests;
