//! `links` evidence: the namespace's interfaces. Rule: an interface traffic uses counts
//! errors or drops. (An interface that is down is the route rules' finding: they know which
//! route it breaks.)

use protocol::{Link, LinksEvidence, OperState, RouteEvidence, RouteOutcome};

use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;

/// Link errors+drops as a share of packets that make an interface "erroring" (a few drops of
/// unknown protocols are normal on every veth).
const LINK_DROP_RATIO: f64 = 0.01;
const LINK_MIN_PACKETS: u64 = 100;

impl Progress for LinksEvidence {
    fn progress(&self) -> (Mark, String) {
        let up = self
            .links
            .iter()
            .filter(|x| x.lower_up && x.admin_up)
            .count();
        (
            Mark::Info,
            format!(
                "{} interfaces ({} up): {}",
                self.links.len(),
                up,
                self.links
                    .iter()
                    .map(|x| format!("{} mtu {}", x.name, x.mtu))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    }
}

pub fn link_is_down(l: &Link) -> bool {
    !l.admin_up
        || !l.lower_up
        || l.oper_state
            .is_any(&[OperState::Down, OperState::LowerLayerDown])
}

pub fn down_words(l: &Link) -> String {
    if !l.admin_up {
        format!("{} is administratively down", l.name)
    } else if !l.lower_up {
        format!("{} has no carrier (oper state {})", l.name, l.oper_state)
    } else {
        format!("{} is {}", l.name, l.oper_state)
    }
}

/// `eth0: admin up, carrier no, state down`.
pub fn state_line(l: &Link) -> String {
    format!(
        "{}: admin {}, carrier {}, state {}",
        l.name,
        if l.admin_up { "up" } else { "down" },
        if l.lower_up { "yes" } else { "no" },
        l.oper_state
    )
}

pub fn apply(f: &Facts, r: &mut Report) {
    let Some(links) = f.one::<LinksEvidence>() else {
        return;
    };
    let routes = f.all::<RouteEvidence>();
    let route_devs: Vec<&str> = routes
        .iter()
        .filter_map(|rt| match &rt.outcome {
            RouteOutcome::Found(i) => i.dev.as_deref(),
            _ => None,
        })
        .collect();
    for l in &links.links {
        if l.loopback {
            continue;
        }
        // Only interfaces traffic uses: the routes' devices, or every one when no route ran.
        if !route_devs.is_empty() && !route_devs.contains(&l.name.as_str()) {
            continue;
        }
        let s = &l.stats;
        let errors = s.rx_errors + s.tx_errors;
        let drops = s.rx_dropped + s.tx_dropped;
        let packets = s.rx_packets + s.tx_packets;
        let drop_ratio = if packets == 0 {
            0.0
        } else {
            drops as f64 / packets as f64
        };
        if errors == 0 && (drop_ratio < LINK_DROP_RATIO || packets < LINK_MIN_PACKETS) {
            continue;
        }
        r.finding(
            RuleCode::InterfaceErrors,
            Layer::Network,
            Severity::Warning,
            "interface errors",
            format!(
                "{} counts {} rx / {} tx errors and {} rx / {} tx drops over {} packets since it \
                 came up",
                l.name, s.rx_errors, s.tx_errors, s.rx_dropped, s.tx_dropped, packets
            ),
        )
        .line(format!(
            "{}: rx_errors {} tx_errors {} rx_dropped {} tx_dropped {} ({packets} packets)",
            l.name, s.rx_errors, s.tx_errors, s.rx_dropped, s.tx_dropped
        ))
        .next(format!(
            "ip -s -s link show {}   # run twice: are they growing?",
            l.name
        ))
        .add();
    }
}
