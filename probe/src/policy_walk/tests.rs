use super::*;

fn p(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let address: IpAddr = a.parse().unwrap();
    let host = if address.is_ipv4() { 32 } else { 128 };
    Prefix {
        address,
        len: if l.is_empty() {
            host
        } else {
            l.parse().unwrap()
        },
    }
}

fn rule(priority: u32, text: &str, action: RuleAction) -> PolicyRule {
    PolicyRule {
        priority,
        invert: false,
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: 0,
        fwmask: 0,
        tos: 0,
        uid_range: None,
        l3mdev: false,
        proto_or_ports: false,
        suppress_prefixlen: None,
        suppress_ifgroup: false,
        action,
        text: text.into(),
    }
}

fn to(mut r: PolicyRule, prefix: &str) -> PolicyRule {
    r.to = Some(p(prefix));
    r
}

fn route(table: u32, prefix: &str, kind: RouteKind) -> TableRoute {
    TableRoute {
        table,
        destination: p(prefix),
        kind,
        tos: 0,
        metric: 0,
        dead: false,
    }
}

/// The three rules every namespace starts with.
fn defaults() -> Vec<PolicyRule> {
    vec![
        rule(0, "from all lookup local", RuleAction::Lookup(255)),
        rule(32766, "from all lookup main", RuleAction::Lookup(254)),
        rule(32767, "from all lookup default", RuleAction::Lookup(253)),
    ]
}

fn with(mut rules: Vec<PolicyRule>, extra: PolicyRule) -> Vec<PolicyRule> {
    rules.push(extra);
    rules.sort_by_key(|r| r.priority);
    rules
}

fn flow(dst: &str) -> Flow {
    Flow {
        destination: dst.parse().unwrap(),
        uid: 0,
    }
}

fn main_routes() -> Vec<TableRoute> {
    vec![
        route(255, "10.199.0.1", RouteKind::Usable),
        route(254, "10.199.0.0/24", RouteKind::Usable),
        route(254, "0.0.0.0/0", RouteKind::Usable),
    ]
}

#[test]
fn prefixes() {
    assert!(p("10.9.0.0/24").contains("10.9.0.5".parse().unwrap()));
    assert!(!p("10.9.0.0/24").contains("10.9.1.5".parse().unwrap()));
    assert!(p("0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
    assert!(p("10.9.0.5").contains("10.9.0.5".parse().unwrap()));
    assert!(!p("10.9.0.0/24").contains("fd00::1".parse().unwrap()));
    assert!(p("fd00:199::/64").contains("fd00:199::9".parse().unwrap()));
    assert!(!p("fd00:199::/64").contains("fd00:198::9".parse().unwrap()));
    assert!(p("::/0").contains("fd00::1".parse().unwrap()));
}

#[test]
fn route_text_is_ip_route_spelling() {
    assert_eq!(
        route(100, "10.9.0.0/24", RouteKind::Prohibit).text(),
        "prohibit 10.9.0.0/24"
    );
    assert_eq!(
        route(100, "10.9.0.5", RouteKind::Blackhole).text(),
        "blackhole 10.9.0.5"
    );
    assert_eq!(
        route(100, "0.0.0.0/0", RouteKind::Unreachable).text(),
        "unreachable default"
    );
    assert_eq!(
        route(254, "fd00::/64", RouteKind::Usable).text(),
        "fd00::/64"
    );
}

#[test]
fn a_prohibit_route_in_the_table_a_rule_looks_up() {
    let rules = with(
        defaults(),
        to(
            rule(
                1000,
                "from all to 10.9.0.0/24 lookup 100",
                RuleAction::Lookup(100),
            ),
            "10.9.0.0/24",
        ),
    );
    let mut routes = main_routes();
    routes.push(route(100, "10.9.0.0/24", RouteKind::Prohibit));
    let w = walk(flow("10.9.0.5"), &rules, &routes);
    let Ending::Route(r, rt) = w.ending else {
        panic!("{w:?}")
    };
    assert_eq!(
        (r.priority, rt.table, rt.text()),
        (1000, 100, "prohibit 10.9.0.0/24".into())
    );
    assert_eq!(w.ending.errno(), Some(libc::EACCES));
    assert!(w.unevaluated.is_empty());
    // Outside the rule's prefix, main's default route answers.
    let w = walk(flow("10.8.0.5"), &rules, &routes);
    assert!(
        matches!(w.ending, Ending::Usable(r, _) if r.priority == 32766),
        "{w:?}"
    );
    assert_eq!(w.ending.errno(), None);
}

#[test]
fn route_types_give_the_kernels_errnos() {
    for (kind, errno) in [
        (RouteKind::Blackhole, libc::EINVAL),
        (RouteKind::Unreachable, libc::EHOSTUNREACH),
        (RouteKind::Prohibit, libc::EACCES),
    ] {
        let routes = vec![route(254, "10.9.0.0/16", kind)];
        let rules = defaults();
        let w = walk(flow("10.9.3.3"), &rules, &routes);
        assert!(matches!(w.ending, Ending::Route(r, _) if r.priority == 32766));
        assert_eq!(w.ending.errno(), Some(errno), "{kind:?}");
    }
}

#[test]
fn a_refusing_rule_is_its_own_answer() {
    let rules = with(
        defaults(),
        to(
            rule(
                900,
                "from all to 10.9.1.0/24 prohibit",
                RuleAction::Prohibit,
            ),
            "10.9.1.0/24",
        ),
    );
    let routes = main_routes();
    let w = walk(flow("10.9.1.7"), &rules, &routes);
    assert!(
        matches!(w.ending, Ending::Rule(r) if r.priority == 900),
        "{w:?}"
    );
    assert_eq!(w.ending.errno(), Some(libc::EACCES));
    for (action, errno) in [
        (RuleAction::Blackhole, libc::EINVAL),
        (RuleAction::Unreachable, libc::ENETUNREACH),
    ] {
        let rules = with(defaults(), rule(900, "from all x", action));
        assert_eq!(
            walk(flow("10.9.1.7"), &rules, &[]).ending.errno(),
            Some(errno)
        );
    }
}

#[test]
fn longest_prefix_wins_then_lowest_metric() {
    let mut specific = route(254, "10.9.0.0/24", RouteKind::Blackhole);
    specific.metric = 10;
    let mut cheaper = route(254, "10.9.0.0/24", RouteKind::Prohibit);
    cheaper.metric = 5;
    let routes = vec![
        route(254, "10.9.0.0/16", RouteKind::Usable),
        specific,
        cheaper,
        route(254, "10.9.0.0/25", RouteKind::Unreachable),
    ];
    let rules = defaults();
    let w = walk(flow("10.9.0.200"), &rules, &routes);
    assert!(
        matches!(w.ending, Ending::Route(_, rt) if rt.kind == RouteKind::Prohibit),
        "{w:?}"
    );
    let w = walk(flow("10.9.0.1"), &rules, &routes);
    assert!(matches!(w.ending, Ending::Route(_, rt) if rt.kind == RouteKind::Unreachable));
    let w = walk(flow("10.9.200.1"), &rules, &routes);
    assert!(matches!(w.ending, Ending::Usable(..)));
}

#[test]
fn dead_and_tos_routes_are_skipped() {
    let mut dead = route(254, "10.9.0.0/24", RouteKind::Usable);
    dead.dead = true;
    let mut tos = route(254, "10.9.0.0/25", RouteKind::Usable);
    tos.tos = 0x10;
    let routes = vec![dead, tos, route(254, "10.9.0.0/16", RouteKind::Prohibit)];
    let rules = defaults();
    let w = walk(flow("10.9.0.1"), &rules, &routes);
    assert!(
        matches!(w.ending, Ending::Route(_, rt) if rt.destination.len == 16),
        "{w:?}"
    );
}

#[test]
fn an_empty_table_or_throw_continues_with_the_next_rule() {
    let rules = with(
        with(
            defaults(),
            rule(100, "from all lookup 100", RuleAction::Lookup(100)),
        ),
        rule(200, "from all lookup 200", RuleAction::Lookup(200)),
    );
    let routes = vec![
        route(200, "10.9.0.0/24", RouteKind::Throw),
        route(254, "10.9.0.0/24", RouteKind::Blackhole),
    ];
    let w = walk(flow("10.9.0.1"), &rules, &routes);
    assert!(matches!(w.ending, Ending::Route(r, rt) if r.priority == 32766 && rt.table == 254));
    // Nothing anywhere: no route at all (ENETUNREACH).
    let w = walk(flow("10.77.0.1"), &rules, &routes);
    assert_eq!(w.ending, Ending::NoRoute);
    assert_eq!(w.ending.errno(), Some(libc::ENETUNREACH));
}

#[test]
fn suppress_prefixlength_skips_short_usable_routes_only() {
    let mut main_suppressed = rule(
        32000,
        "from all lookup main suppress_prefixlength 0",
        RuleAction::Lookup(254),
    );
    main_suppressed.suppress_prefixlen = Some(0);
    let rules = with(
        with(defaults(), main_suppressed),
        rule(32100, "from all lookup 51820", RuleAction::Lookup(51820)),
    );
    let routes = vec![
        route(254, "0.0.0.0/0", RouteKind::Usable),
        route(254, "10.199.0.0/24", RouteKind::Usable),
        route(254, "10.5.0.0/16", RouteKind::Prohibit),
        route(51820, "0.0.0.0/0", RouteKind::Blackhole),
    ];
    // The default route in main is suppressed: table 51820's blackhole answers.
    let w = walk(flow("192.0.2.1"), &rules, &routes);
    assert!(matches!(w.ending, Ending::Route(r, rt) if r.priority == 32100 && rt.table == 51820));
    // A longer route in main is not suppressed.
    let w = walk(flow("10.199.0.9"), &rules, &routes);
    assert!(matches!(w.ending, Ending::Usable(r, _) if r.priority == 32000));
    // A refusing route is never suppressed, even with a short prefix.
    let w = walk(flow("10.5.0.9"), &rules, &routes);
    assert!(matches!(w.ending, Ending::Route(r, _) if r.priority == 32000));
}

#[test]
fn selectors_the_lookup_flow_cannot_match() {
    let routes = vec![route(100, "0.0.0.0/0", RouteKind::Prohibit)];
    // Whether rule 10 (lookup 100, which prohibits everything) decided, and the notes.
    let prohibit_all = |f: &dyn Fn(&mut PolicyRule)| -> (bool, Vec<String>) {
        let mut r = rule(
            10,
            "from all lookup 100 (+selector)",
            RuleAction::Lookup(100),
        );
        f(&mut r);
        let rules = with(defaults(), r);
        let w = walk(flow("10.9.0.1"), &rules, &routes);
        let hit = matches!(w.ending, Ending::Route(r, _) if r.priority == 10);
        (hit, w.unevaluated)
    };
    let hits = |f: &dyn Fn(&mut PolicyRule)| prohibit_all(f).0;
    assert!(hits(&|_| {}));
    assert!(!hits(&|r| r.from = Some(p("10.199.0.0/24"))));
    assert!(hits(&|r| r.from = Some(p("0.0.0.0/0"))));
    assert!(!hits(&|r| r.iif = Some("eth0".into())));
    assert!(hits(&|r| r.iif = Some("lo".into())));
    assert!(!hits(&|r| r.oif = Some("eth0".into())));
    assert!(!hits(&|r| (r.fwmark, r.fwmask) = (1, u32::MAX)));
    assert!(hits(&|r| (r.fwmark, r.fwmask) = (0, u32::MAX)));
    assert!(!hits(&|r| r.tos = 0x10));
    assert!(!hits(&|r| r.uid_range = Some((1000, 2000))));
    assert!(hits(&|r| r.uid_range = Some((0, 10))));
    // `not`: the whole selector negated.
    assert!(hits(&|r| {
        r.invert = true;
        r.to = Some(p("10.8.0.0/16"));
    }));
    assert!(!hits(&|r| {
        r.invert = true;
        r.to = Some(p("10.9.0.0/16"));
    }));
    // Unevaluable selectors do not match and are named.
    let (hit, notes) = prohibit_all(&|r| r.l3mdev = true);
    assert!(!hit);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].starts_with("rule 10 ("), "{notes:?}");
    assert!(notes[0].contains("l3mdev"));
    let (hit, notes) = prohibit_all(&|r| r.proto_or_ports = true);
    assert!(!hit);
    assert!(notes[0].contains("ipproto/sport/dport"));
}

#[test]
fn goto_jumps_forward_and_nop_passes() {
    let rules = with(
        with(
            with(
                with(
                    defaults(),
                    rule(10, "from all goto 30", RuleAction::Goto(30)),
                ),
                rule(20, "from all prohibit", RuleAction::Prohibit),
            ),
            rule(30, "from all nop", RuleAction::Nop),
        ),
        rule(40, "from all blackhole", RuleAction::Blackhole),
    );
    let w = walk(flow("10.9.0.1"), &rules, &[]);
    assert!(
        matches!(w.ending, Ending::Rule(r) if r.priority == 40),
        "{w:?}"
    );
    // A goto to a priority nobody has is passed over.
    let rules = with(
        with(
            defaults(),
            rule(10, "from all goto 15", RuleAction::Goto(15)),
        ),
        rule(20, "from all prohibit", RuleAction::Prohibit),
    );
    let w = walk(flow("10.9.0.1"), &rules, &[]);
    assert!(matches!(w.ending, Ending::Rule(r) if r.priority == 20));
}

#[test]
fn ipv6_walks_the_same_way() {
    let rules = with(
        defaults(),
        to(
            rule(
                1000,
                "from all to fd00:9::/64 lookup 100",
                RuleAction::Lookup(100),
            ),
            "fd00:9::/64",
        ),
    );
    let routes = vec![
        route(100, "fd00:9::/64", RouteKind::Unreachable),
        route(254, "::/0", RouteKind::Usable),
    ];
    let w = walk(flow("fd00:9::5"), &rules, &routes);
    assert!(
        matches!(w.ending, Ending::Route(r, rt) if r.priority == 1000 && rt.text() == "unreachable fd00:9::/64")
    );
    let w = walk(flow("fd00:8::5"), &rules, &routes);
    assert!(matches!(w.ending, Ending::Usable(..)));
}

#[test]
fn unknown_actions_stop_the_walk_unanswered() {
    let rules = with(defaults(), rule(5, "from all action 9", RuleAction::Other));
    let w = walk(flow("10.9.0.1"), &rules, &[]);
    assert!(matches!(w.ending, Ending::Unknown(r) if r.priority == 5));
    assert_eq!(w.ending.errno(), None);
}
