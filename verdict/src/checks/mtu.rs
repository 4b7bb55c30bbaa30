//! `mtu` evidence: the path MTU search toward each target. Rule: MTU blackhole (small packets
//! pass, large ones vanish, no ICMP frag-needed); otherwise the size proven to pass.

use protocol::MtuEvidence;

use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;

impl Progress for MtuEvidence {
    fn progress(&self) -> (Mark, String) {
        let size = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        (
            if self.blackhole {
                Mark::Fail
            } else {
                Mark::Info
            },
            format!(
                "{}: largest ok {}, smallest lost {}{}",
                self.destination,
                size(self.largest_ok),
                size(self.smallest_lost),
                if self.frag_needed_seen {
                    ", frag-needed seen"
                } else {
                    ""
                }
            ),
        )
    }
}

pub fn apply(f: &Facts, r: &mut Report) {
    for m in f.all::<MtuEvidence>() {
        let iface = m.interface_mtu.or(m.route_mtu);
        let blackhole = m.blackhole
            || (m.largest_ok.is_some() && m.smallest_lost.is_some() && !m.frag_needed_seen);
        if blackhole {
            let ok = m.largest_ok.unwrap_or(0);
            let lost = m
                .smallest_lost
                .map(|s| s.to_string())
                .unwrap_or_else(|| "larger".into());
            r.finding(
                RuleCode::MtuBlackhole,
                Layer::Path,
                Severity::Failure,
                "MTU blackhole",
                format!(
                    "packets to {} up to {ok} bytes pass but {lost}-byte packets vanish with no \
                     ICMP frag-needed ({} probes): a path MTU blackhole below the interface MTU {}",
                    m.destination,
                    m.variant,
                    iface.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
                ),
            )
            .line(format!(
                "{}: {ok} bytes ok, {lost} lost, no frag-needed (interface MTU {}, {})",
                m.destination,
                iface.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
                m.variant
            ))
            .next(format!(
                "lower the MTU to {ok} on the pod/CNI interface, or let ICMP type 3 code 4 \
                 through the firewall on the path"
            ))
            .next(format!(
                "ping -M do -s {} -c 3 {}",
                ok.saturating_sub(28),
                m.destination
            ))
            .add();
        } else if let Some(ok) = m.largest_ok {
            let learned = m
                .learned_pmtu
                .filter(|_| m.frag_needed_seen)
                .map(|p| format!("; PMTU {p} learned from ICMP frag-needed"))
                .unwrap_or_default();
            r.ok(
                Layer::Path,
                format!(
                    "{}: {ok}-byte packets pass ({}){learned}",
                    m.destination, m.variant
                ),
            );
        } else if m.smallest_lost.is_some() {
            r.info(
                Layer::Path,
                format!(
                    "{}: no probe size got through ({})",
                    m.destination, m.variant
                ),
            );
        }
    }
}
