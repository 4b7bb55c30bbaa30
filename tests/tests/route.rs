//! The route check against `ip -j route get`, `ip -j neigh` and `ip -j rule` in namespaces
//! this test makes: a direct route, a gateway route, a configured route MTU, a policy rule
//! sending one target to table 100, an unreachable route, no route at all, and a next hop
//! that never answers ARP.

use std::net::IpAddr;

use netdebug_scenarios::{json_plan, run_probe, Link, Netns};
use protocol::{RouteEvidence, RouteInfo, RouteOutcome, RulesEvidence};
use serde_json::{json, Value};

fn run_route(ns: &Netns, targets: Value) -> (Vec<RouteEvidence>, RulesEvidence) {
    let run = run_probe(
        ns,
        &json_plan(json!({"v": 1, "checks": ["route"], "targets": targets})),
    );
    run.assert_ok();
    let routes = run
        .evidence::<RouteEvidence>()
        .into_iter()
        .cloned()
        .collect();
    (routes, run.one::<RulesEvidence>().clone())
}

fn by_target<'a>(routes: &'a [RouteEvidence], label: &str) -> &'a RouteEvidence {
    routes
        .iter()
        .find(|r| r.target == label)
        .unwrap_or_else(|| panic!("no route evidence for {label}"))
}

fn found(r: &RouteEvidence) -> &RouteInfo {
    match &r.outcome {
        RouteOutcome::Found(info) => info,
        other => panic!("{}: expected a route, got {other:?}", r.target),
    }
}

/// Table names as `ip` prints them.
fn table_id(name: Option<&str>) -> u32 {
    match name {
        None | Some("main") => 254,
        Some("local") => 255,
        Some("default") => 253,
        Some(n) => n.parse().unwrap(),
    }
}

/// The probe's answer equals `ip -j route get DST`.
fn assert_like_ip_route_get(ns: &Netns, r: &RouteEvidence) {
    let info = found(r);
    let ip = ns.ip_json(&["route", "get", &r.destination.to_string()]);
    let ip = &ip[0];
    assert_eq!(info.dev.as_deref(), ip["dev"].as_str(), "{} dev", r.target);
    assert_eq!(
        info.gateway.map(|g| g.to_string()).as_deref(),
        ip["gateway"].as_str(),
        "{} gateway",
        r.target
    );
    assert_eq!(
        info.prefsrc.map(|g| g.to_string()).as_deref(),
        ip["prefsrc"].as_str(),
        "{} prefsrc",
        r.target
    );
    assert_eq!(
        info.table,
        table_id(ip["table"].as_str()),
        "{} table",
        r.target
    );
    let ip_mtu = ip["metrics"]
        .as_array()
        .and_then(|m| m.iter().find_map(|x| x["mtu"].as_u64()));
    assert_eq!(info.mtu.map(u64::from), ip_mtu, "{} route mtu", r.target);
}

fn assert_no_route(ns: &Netns, r: &RouteEvidence, reason: &str) {
    let RouteOutcome::NoRoute {
        reason: got,
        message,
        ..
    } = &r.outcome
    else {
        panic!("{}: expected no route, got {:?}", r.target, r.outcome);
    };
    assert_eq!(got.as_str(), reason, "{}", r.target);
    let out = ns.try_exec(&["ip", "route", "get", &r.destination.to_string()]);
    assert!(
        !out.success(),
        "ip route get {} found a route",
        r.destination
    );
    let stderr = out.stderr;
    assert!(
        stderr.contains(message.as_str()),
        "ip says `{stderr}`, the probe says `{message}`"
    );
}

/// Namespace `a` with v0 = 10.199.20.1/24 facing `b` (10.199.20.2), no default route.
fn two_namespaces() -> (Netns, Netns) {
    let a = Netns::new("rt");
    let b = Netns::new("rt");
    Link::veth_pair(&a, "v0", "10.199.20.1/24", &b, "v1", "10.199.20.2/24");
    (a, b)
}

#[test]
fn routes_agree_with_ip_route_get() {
    let (a, _b) = two_namespaces();
    a.sh("ip route add 10.199.21.0/24 via 10.199.20.2 \
         && ip route add 10.199.25.0/24 via 10.199.20.2 mtu 1300 \
         && ip route add 10.199.22.0/24 via 10.199.20.2 dev v0 table 100 \
         && ip rule add to 10.199.22.5 lookup 100 pref 100 \
         && ip route add unreachable 10.199.23.0/24 \
         && ip route add prohibit 10.199.27.0/24 \
         && ip route add blackhole 10.199.28.0/24");
    let (routes, _) = run_route(
        &a,
        json!([
            {"label": "direct", "host": "10.199.20.2", "port": 80},
            {"label": "gw", "host": "10.199.21.5"},
            {"label": "mtu", "host": "10.199.25.5"},
            {"label": "policy", "host": "10.199.22.5", "port": 443},
            {"label": "unreachable", "host": "10.199.23.5"},
            {"label": "prohibit", "host": "10.199.27.5"},
            {"label": "blackhole", "host": "10.199.28.5"},
            {"label": "none", "host": "10.199.24.5", "port": 80},
        ]),
    );
    for label in ["direct", "gw", "mtu", "policy"] {
        assert_like_ip_route_get(&a, by_target(&routes, label));
    }
    let direct = found(by_target(&routes, "direct"));
    assert_eq!((direct.table, direct.gateway), (254, None));
    assert_eq!(direct.route_type.as_str(), "unicast");
    let gw = found(by_target(&routes, "gw"));
    assert_eq!(gw.gateway, Some("10.199.20.2".parse::<IpAddr>().unwrap()));
    assert_eq!(found(by_target(&routes, "mtu")).mtu, Some(1300));
    let policy = found(by_target(&routes, "policy"));
    assert_eq!(policy.table, 100, "the policy rule sends it to table 100");
    assert_no_route(&a, by_target(&routes, "unreachable"), "host_unreachable");
    assert_no_route(&a, by_target(&routes, "prohibit"), "prohibited");
    assert_no_route(&a, by_target(&routes, "blackhole"), "blackhole");
    assert_no_route(&a, by_target(&routes, "none"), "network_unreachable");
}

#[test]
fn neighbor_states_agree_with_ip_neigh() {
    let (a, b) = two_namespaces();
    // A gateway on the link that nobody answers ARP for.
    a.sh("ip route add 10.199.26.0/24 via 10.199.20.77");
    // Resolve the real neighbour and try the dead gateway (the connect cannot succeed).
    a.sh("exec 3<>/dev/tcp/10.199.20.2/9 || true");
    b.sh("true");
    a.sh("timeout 1 bash -c 'exec 3<>/dev/tcp/10.199.26.5/80' || true");
    let state_of = |addr: &str| -> Option<String> {
        let v = a.ip_json(&["neigh", "show", addr, "dev", "v0"]);
        v[0]["state"][0].as_str().map(str::to_string)
    };
    let dead_before = state_of("10.199.20.77");
    let (routes, _) = run_route(
        &a,
        json!([
            {"label": "dead-gw", "host": "10.199.26.5", "port": 80},
            {"label": "peer", "host": "10.199.20.2", "port": 9},
        ]),
    );
    let dead_after = state_of("10.199.20.77");
    let n = found(by_target(&routes, "dead-gw"))
        .neighbor
        .clone()
        .expect("a next hop");
    assert_eq!(n.address.to_string(), "10.199.20.77");
    assert!(
        matches!(n.state.as_str(), "INCOMPLETE" | "FAILED"),
        "dead gateway is {}",
        n.state
    );
    // INCOMPLETE turns into FAILED after the ARP retries: the probe saw one of ip's states.
    assert!(
        Some(n.state.as_str()) == dead_before.as_deref()
            || Some(n.state.as_str()) == dead_after.as_deref(),
        "probe {} vs ip {dead_before:?} / {dead_after:?}",
        n.state
    );
    assert_eq!(n.lladdr, None);

    let peer = found(by_target(&routes, "peer"))
        .neighbor
        .clone()
        .expect("next hop");
    let ip = a.ip_json(&["neigh", "show", "10.199.20.2", "dev", "v0"]);
    assert_eq!(Some(peer.state.as_str()), ip[0]["state"][0].as_str());
    assert_eq!(peer.lladdr.as_deref(), ip[0]["lladdr"].as_str());
    let mac = b.ip_json(&["link", "show", "v1"])[0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(peer.lladdr.as_deref(), Some(mac.as_str()), "the peer's MAC");

    // No entry at all reads NONE, and `ip neigh` has nothing for it either.
    a.sh("ip neigh flush dev v0");
    let (routes, _) = run_route(&a, json!([{"label": "fresh", "host": "10.199.20.9"}]));
    let n = found(by_target(&routes, "fresh")).neighbor.clone().unwrap();
    assert_eq!(n.state.as_str(), "NONE");
    assert!(a
        .ip_json(&["neigh", "show", "10.199.20.9", "dev", "v0"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn rules_agree_with_ip_rule() {
    let (a, _b) = two_namespaces();
    a.sh("ip rule add to 10.199.22.0/24 lookup 100 pref 100 \
         && ip rule add from 10.199.20.0/24 fwmark 0x1 lookup 200 pref 200 \
         && ip rule add to 10.199.29.9 unreachable pref 300 \
         && ip -6 rule add to fd00:199::/64 lookup 100 pref 150");
    let (_, rules) = run_route(&a, json!([]));
    for (family, flag) in [("inet", "-4"), ("inet6", "-6")] {
        let ip = a.ip_json(&[flag, "rule", "show"]);
        let ip = ip.as_array().unwrap();
        let ours: Vec<_> = rules
            .rules
            .iter()
            .filter(|r| r.family.as_str() == family)
            .collect();
        assert_eq!(ours.len(), ip.len(), "{family}: {ours:?} vs {ip:?}");
        for (r, i) in ours.iter().zip(ip) {
            assert_eq!(u64::from(r.priority), i["priority"].as_u64().unwrap());
            match i["table"].as_str() {
                Some(t) => {
                    assert_eq!(r.action.as_str(), "lookup");
                    assert_eq!(r.table, Some(table_id(Some(t))), "{r:?} vs {i}");
                }
                None => assert_eq!(
                    Some(r.action.as_str()),
                    i["action"].as_str(),
                    "{r:?} vs {i}"
                ),
            }
            let src = i["src"].as_str().unwrap();
            let src = match i["srclen"].as_u64() {
                Some(len) => format!("{src}/{len}"),
                None => src.to_string(),
            };
            assert!(
                r.selector.starts_with(&format!("from {src}")),
                "{r:?} vs {i}"
            );
            if let Some(dst) = i["dst"].as_str() {
                let dst = match i["dstlen"].as_u64() {
                    Some(len) => format!("{dst}/{len}"),
                    None => dst.to_string(),
                };
                assert!(r.selector.contains(&format!("to {dst}")), "{r:?} vs {i}");
            }
            if let Some(mark) = i["fwmark"].as_str() {
                assert!(
                    r.selector.contains(&format!("fwmark {mark}")),
                    "{r:?} vs {i}"
                );
            }
        }
    }
    let unreachable = rules.rules.iter().find(|r| r.priority == 300).unwrap();
    assert_eq!(
        (unreachable.action.as_str(), unreachable.table),
        ("unreachable", None)
    );
}

/// `matched` of a refused lookup: the policy rule, table and route the kernel's walk ended
/// at, against `ip rule show` and `ip route show table 100` (what was configured) and `ip
/// route get` (that the kernel refuses with the same error), and the verdict's words.
#[test]
fn refusing_policy_routes_and_rules_are_named() {
    let (a, _b) = two_namespaces();
    a.add_rule("to 10.199.30.0/24 table 100 prio 1000");
    a.add_route("prohibit 10.199.30.0/24 table 100");
    a.add_rule("to 10.199.31.0/24 table 100 prio 1001");
    a.add_route("blackhole 10.199.31.0/24 table 100");
    a.add_rule("to 10.199.32.0/24 table 100 prio 1002");
    a.add_route("unreachable 10.199.32.0/24 table 100");
    a.add_rule("to 10.199.33.0/24 prohibit prio 900");
    // Table 100 has nothing for 10.199.20.0/24: its lookup falls through to main.
    a.add_rule("to 10.199.20.0/24 table 100 prio 800");
    let rules = a.exec(&["ip", "rule", "show"]).stdout;
    let table = a.exec(&["ip", "route", "show", "table", "100"]).stdout;
    let run = run_probe(
        &a,
        &json_plan(json!({"v": 1, "checks": ["route"], "targets": [
            {"label": "prohibit", "host": "10.199.30.5", "port": 80},
            {"label": "blackhole", "host": "10.199.31.5", "port": 80},
            {"label": "unreachable", "host": "10.199.32.5", "port": 80},
            {"label": "rule", "host": "10.199.33.5", "port": 80},
            {"label": "through", "host": "10.199.20.2", "port": 80},
        ]})),
    );
    run.assert_ok();
    let routes: Vec<RouteEvidence> = run
        .evidence::<RouteEvidence>()
        .into_iter()
        .cloned()
        .collect();
    let verdict = run.local_verdict(&a, "10.199.30.5:80", |_| true);
    let causes: Vec<&str> = verdict.findings.iter().map(|f| f.cause.as_str()).collect();
    let said = |text: &str| {
        assert!(
            causes.iter().any(|c| c.contains(text)),
            "no finding says `{text}`: {causes:#?}"
        )
    };
    said(
        "the route lookup for 10.199.30.5 hit `prohibit 10.199.30.0/24` in table 100, chosen by \
         policy rule 1000 (`from all to 10.199.30.0/24 lookup 100`)",
    );
    said("hit `blackhole 10.199.31.0/24` in table 100, chosen by policy rule 1001");
    said("hit `unreachable 10.199.32.0/24` in table 100, chosen by policy rule 1002");
    said("the route lookup for 10.199.33.5 hit policy rule 900 (`from all to 10.199.33.0/24 prohibit`)");
    assert!(
        verdict.next.iter().all(|n| !n.contains("kubectl")),
        "{:?}",
        verdict.next
    );
    let cases = [
        ("prohibit", "prohibited", 1000, "prohibit 10.199.30.0/24"),
        ("blackhole", "blackhole", 1001, "blackhole 10.199.31.0/24"),
        (
            "unreachable",
            "host_unreachable",
            1002,
            "unreachable 10.199.32.0/24",
        ),
    ];
    for (label, reason, priority, route) in cases {
        let r = by_target(&routes, label);
        assert_no_route(&a, r, reason);
        let by = matched(r);
        assert_eq!(by.rule_priority, priority, "{label}");
        assert_eq!((by.table, by.route.as_deref()), (Some(100), Some(route)));
        // The oracles: `ip rule show` has this very rule, `ip route show table 100` the route.
        assert!(
            rules.contains(&format!("{priority}:\t{}", by.rule)),
            "{label}: `{}` not in ip rule show:\n{rules}",
            by.rule
        );
        assert!(
            table.lines().any(|l| l.trim() == route),
            "{route} not in:\n{table}"
        );
        assert!(by.unevaluated.is_empty(), "{by:?}");
    }
    let r = by_target(&routes, "rule");
    assert_no_route(&a, r, "prohibited");
    let by = matched(r);
    assert_eq!(
        (by.rule_priority, by.table, by.route.as_deref()),
        (900, None, None)
    );
    assert!(rules.contains(&format!("900:\t{}", by.rule)), "{rules}");
    assert_eq!(by.rule, "from all to 10.199.33.0/24 prohibit");
    assert_like_ip_route_get(&a, by_target(&routes, "through"));
}

fn matched(r: &RouteEvidence) -> &protocol::RefusedBy {
    match &r.outcome {
        RouteOutcome::NoRoute {
            matched: Some(by), ..
        } => by,
        other => panic!("{}: expected a named refusal, got {other:?}", r.target),
    }
}
