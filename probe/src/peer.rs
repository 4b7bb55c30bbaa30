//! A peer (protocol minor 4, `protocol::PeerPlan`): the probe at the destination end of
//! another probe's traffic. It makes no traffic of its own (the plan's default checks leave
//! out dns, tcp and mtu); it watches the sources: a route back to each (targets of role
//! `source` when the plan names none), a capture of their TCP to the local ports (the default
//! filter, see the capture check), and the listeners on those ports first in the socket
//! evidence.

use protocol::{Plan, Target, TargetRole};

/// A peer plan without targets gets one per source: label `source <ip>`, no port (the route
/// check looks up the way back; no connect is made), role `source`.
pub fn add_source_targets(plan: &mut Plan) {
    let Some(peer) = &plan.peer else { return };
    if !plan.targets.is_empty() {
        return;
    }
    plan.targets = peer
        .sources
        .iter()
        .map(|ip| Target {
            label: format!("source {ip}"),
            host: ip.to_string(),
            port: None,
            role: TargetRole::Source.into(),
        })
        .collect();
}

/// The peer's local ports (none for a probe that is not a peer).
pub fn ports(plan: &Plan) -> &[u16] {
    plan.peer.as_ref().map_or(&[], |p| p.ports.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{CheckKind, PeerPlan};

    fn peer_plan() -> Plan {
        let mut plan = Plan::new(Vec::new());
        plan.peer = Some(PeerPlan {
            sources: vec![
                "10.199.1.2".parse().unwrap(),
                "fd00:199::2".parse().unwrap(),
            ],
            ports: vec![8080],
        });
        plan
    }

    #[test]
    fn a_peer_without_targets_targets_its_sources() {
        let mut plan = peer_plan();
        add_source_targets(&mut plan);
        let targets: Vec<(&str, &str, Option<u16>, &str)> = plan
            .targets
            .iter()
            .map(|t| (t.label.as_str(), t.host.as_str(), t.port, t.role.as_str()))
            .collect();
        assert_eq!(
            targets,
            vec![
                ("source 10.199.1.2", "10.199.1.2", None, "source"),
                ("source fd00:199::2", "fd00:199::2", None, "source"),
            ]
        );
        plan.validate().unwrap();
        assert_eq!(ports(&plan), [8080]);
    }

    #[test]
    fn a_peer_with_targets_keeps_them_and_others_are_untouched() {
        let mut plan = peer_plan();
        plan.targets = vec![Target {
            label: "x".into(),
            host: "10.199.1.9".into(),
            port: Some(1),
            role: Default::default(),
        }];
        add_source_targets(&mut plan);
        assert_eq!(plan.targets.len(), 1);
        let mut plain = Plan::new(Vec::new());
        add_source_targets(&mut plain);
        assert!(plain.targets.is_empty());
        assert!(ports(&plain).is_empty());
    }

    #[test]
    fn a_peers_default_checks_make_no_traffic() {
        let mut plan = peer_plan();
        plan.capture = Some(Default::default());
        plan.mtu = Some(Default::default());
        let checks = plan.effective_checks();
        assert!(checks.contains(&CheckKind::Capture), "{checks:?}");
        for kind in [CheckKind::Links, CheckKind::Route, CheckKind::Sockets] {
            assert!(checks.contains(&kind), "{checks:?}");
        }
        assert!(
            checks.iter().all(|k| !k.info().generates_traffic),
            "{checks:?}"
        );
    }
}
