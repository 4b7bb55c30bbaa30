//! The links check against `ip -j -s -d link` and `ip -j addr` in namespaces this test makes.

use std::collections::BTreeSet;

use netdebug_scenarios::{plan, run_probe, Netns};
use protocol::{CheckKind, Link, LinksEvidence};
use serde_json::Value;

fn links(ns: &Netns) -> LinksEvidence {
    let run = run_probe(ns, &plan(&[CheckKind::Links], vec![]));
    run.assert_ok();
    run.one::<LinksEvidence>().clone()
}

fn find<'a>(ev: &'a LinksEvidence, name: &str) -> &'a Link {
    ev.links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no link {name} in {ev:?}"))
}

fn has_flag(link: &Value, flag: &str) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

/// Every link the probe saw agrees with `ip` (read after the probe, so packet counts may
/// only have grown; errors and drops in these quiet namespaces are equal).
fn assert_matches_ip(ns: &Netns, ev: &LinksEvidence) {
    let ip_links = ns.ip_json(&["-s", "-d", "link", "show"]);
    let ip_links = ip_links.as_array().expect("ip link array");
    assert_eq!(ip_links.len(), ev.links.len(), "same number of links");
    let ip_addrs = ns.ip_json(&["addr", "show"]);
    for il in ip_links {
        let name = il["ifname"].as_str().unwrap();
        let l = find(ev, name);
        assert_eq!(
            u64::from(l.index),
            il["ifindex"].as_u64().unwrap(),
            "{name} index"
        );
        assert_eq!(u64::from(l.mtu), il["mtu"].as_u64().unwrap(), "{name} mtu");
        assert_eq!(
            l.oper_state.as_str(),
            il["operstate"].as_str().unwrap().to_ascii_lowercase(),
            "{name} oper state"
        );
        assert_eq!(l.admin_up, has_flag(il, "UP"), "{name} admin up");
        assert_eq!(l.lower_up, has_flag(il, "LOWER_UP"), "{name} lower up");
        assert_eq!(l.loopback, has_flag(il, "LOOPBACK"), "{name} loopback");
        assert_eq!(l.mac.as_deref(), il["address"].as_str(), "{name} mac");
        assert_eq!(
            l.kind.as_ref().map(|v| v.as_str()),
            il["linkinfo"]["info_kind"].as_str(),
            "{name} kind"
        );
        let s = &il["stats64"];
        let n = |v: &Value| v.as_u64().unwrap();
        assert_eq!(l.stats.rx_errors, n(&s["rx"]["errors"]), "{name} rx errors");
        assert_eq!(l.stats.tx_errors, n(&s["tx"]["errors"]), "{name} tx errors");
        assert_eq!(
            l.stats.rx_dropped,
            n(&s["rx"]["dropped"]),
            "{name} rx dropped"
        );
        assert_eq!(
            l.stats.tx_dropped,
            n(&s["tx"]["dropped"]),
            "{name} tx dropped"
        );
        assert!(
            l.stats.rx_packets <= n(&s["rx"]["packets"]),
            "{name} rx packets"
        );
        assert!(
            l.stats.tx_packets <= n(&s["tx"]["packets"]),
            "{name} tx packets"
        );
        assert!(l.stats.rx_bytes <= n(&s["rx"]["bytes"]), "{name} rx bytes");
        assert!(l.stats.tx_bytes <= n(&s["tx"]["bytes"]), "{name} tx bytes");

        let ia = ip_addrs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["ifname"] == name)
            .expect("ip addr entry");
        let want: BTreeSet<(String, u64, String)> = ia["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["local"].as_str().unwrap().to_string(),
                    a["prefixlen"].as_u64().unwrap(),
                    a["scope"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let got: BTreeSet<(String, u64, String)> = l
            .addresses
            .iter()
            .map(|a| {
                (
                    a.address.to_string(),
                    u64::from(a.prefix_len),
                    a.scope.to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "{name} addresses");
    }
}

#[test]
fn links_agree_with_ip_and_show_drops_and_down_links() {
    let a = Netns::new("lk");
    let b = Netns::new("lk");
    netdebug_scenarios::Link::veth_pair(&a, "v0", "", &b, "v1", "");
    a.sh(
        "ip link set v0 mtu 1400 && ip addr add 10.199.10.1/24 dev v0 \
         && ip addr add fd00:199::1/64 dev v0 nodad \
         && ip link add d0 type veth peer name d1 && ip link set d0 up \
         && ip addr add 10.199.11.1/24 dev d1",
    );
    b.sh("ip link set v1 mtu 1280 && ip addr add 10.199.10.2/24 dev v1");
    // Datagrams larger than the peer's MTU: the veth drops them (tx_dropped on v0).
    a.sh("for i in 1 2 3; do head -c 1350 /dev/zero > /dev/udp/10.199.10.2/9; done");

    let ev = links(&a);
    assert_matches_ip(&a, &ev);
    let v0 = find(&ev, "v0");
    assert_eq!(
        (v0.mtu, v0.kind.as_ref().map(|v| v.as_str())),
        (1400, Some("veth"))
    );
    assert!(v0.admin_up && v0.lower_up && v0.oper_state.as_str() == "up");
    assert_eq!(v0.stats.tx_dropped, 3, "three oversize datagrams dropped");
    assert!(v0
        .addresses
        .iter()
        .any(|x| x.address.to_string() == "fd00:199::1" && x.prefix_len == 64));
    let lo = find(&ev, "lo");
    assert!(lo.loopback && lo.admin_up);
    let d1 = find(&ev, "d1");
    assert!(!d1.admin_up && !d1.lower_up, "d1 was never set up: {d1:?}");
    assert_eq!(d1.oper_state.as_str(), "down");
    let d0 = find(&ev, "d0");
    assert!(
        d0.admin_up && !d0.lower_up,
        "d0 is up but its peer is not: {d0:?}"
    );

    // The peer goes down: v0 loses its carrier; v1 is administratively down.
    b.sh("ip link set v1 down");
    // The oper state follows the carrier asynchronously (linkwatch): wait for `ip` to see it.
    let settled = (0..50).any(|_| {
        let v = a.ip_json(&["link", "show", "v0"]);
        if v[0]["operstate"] != "UP" {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        false
    });
    assert!(settled, "v0 still reported UP 5 s after its peer went down");
    let ev = links(&a);
    assert_matches_ip(&a, &ev);
    let v0 = find(&ev, "v0");
    assert!(v0.admin_up && !v0.lower_up, "{v0:?}");
    assert_ne!(v0.oper_state.as_str(), "up");
    let ev_b = links(&b);
    assert_matches_ip(&b, &ev_b);
    let v1 = find(&ev_b, "v1");
    assert!(!v1.admin_up && v1.oper_state.as_str() == "down", "{v1:?}");
    assert_eq!(
        v1.stats.rx_dropped, 3,
        "the peer counts the same drops on receive"
    );
}
