//! The one-line reading of each event as it arrives (the text renderer shows it on a terminal),
//! judged from that event alone: the verdict at the end weighs everything together. Each
//! evidence type's line is written beside its rules (`impl Progress for ...` in the rule
//! modules); this module only routes an event to it, so renderers need not know the rules.

use protocol::{Capability, CheckStatus, Event, Evidence, Hello, Open, Skipped};

use crate::facts::ms;
use crate::model::{Layer, Mark};
use crate::rules::probe::layer_of;

/// How one kind of evidence reads the moment it arrives.
pub(crate) trait Progress {
    fn progress(&self) -> (Layer, Mark, String);
}

impl Progress for Evidence {
    fn progress(&self) -> (Layer, Mark, String) {
        // One arm per evidence kind: the compiler asks for a line when a kind is added.
        match self {
            Evidence::Links(e) => e.progress(),
            Evidence::Route(e) => e.progress(),
            Evidence::Rules(e) => e.progress(),
            Evidence::DnsConfig(e) => e.progress(),
            Evidence::DnsLookup(e) => e.progress(),
            Evidence::Tcp(e) => e.progress(),
            Evidence::Sockets(e) => e.progress(),
            Evidence::Counters(e) => e.progress(),
            Evidence::Conntrack(e) => e.progress(),
            Evidence::Sysctls(e) => e.progress(),
            Evidence::Mtu(e) => e.progress(),
            Evidence::CaptureSummary(e) => e.progress(),
        }
    }
}

/// The line for `event`, or None for events that say nothing on their own.
pub(crate) fn line(event: &Event) -> Option<(Layer, Mark, String)> {
    match event {
        Event::Hello(h) => Some(hello(h)),
        Event::Skipped(s) => Some(skipped(s)),
        Event::CheckFinished(c) => {
            let text = match c.status.known()? {
                CheckStatus::Error => format!(
                    "{} check failed: {}",
                    c.check,
                    c.error.as_deref().unwrap_or("no message")
                ),
                CheckStatus::DeadlineExceeded => format!(
                    "{} check cut by the deadline after {}",
                    c.check,
                    ms(c.elapsed_ms)
                ),
                CheckStatus::Completed | CheckStatus::Skipped => return None,
            };
            Some((layer_of(&c.check), Mark::Warn, text))
        }
        Event::Evidence(e) => Some(e.progress()),
        Event::CheckStarted(_) | Event::PcapChunk(_) | Event::Done(_) => None,
    }
}

fn hello(h: &Hello) -> (Layer, Mark, String) {
    (
        Layer::Probe,
        Mark::Info,
        format!(
            "probe {} started{}{}, uid {}, capabilities: {}",
            h.probe_version,
            h.hostname
                .as_deref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default(),
            h.netns_inode
                .map(|i| format!(" (netns {i})"))
                .unwrap_or_default(),
            h.uid,
            network_capabilities(&h.capabilities)
        ),
    )
}

fn skipped(s: &Skipped) -> (Layer, Mark, String) {
    (
        layer_of(&s.check),
        Mark::Skip,
        format!(
            "{}: {}{}",
            s.check,
            s.reason,
            s.missing_capability
                .as_ref()
                .map(|c| format!(" (needs {c})"))
                .unwrap_or_default()
        ),
    )
}

/// The capabilities that matter to the checks (net_raw, net_admin), and how many others.
fn network_capabilities(caps: &[Open<Capability>]) -> String {
    let relevant: Vec<&str> = caps
        .iter()
        .filter(|c| {
            c.is_any(&[
                Capability::NetRaw,
                Capability::NetAdmin,
                Capability::SysAdmin,
            ])
        })
        .map(Open::as_str)
        .collect();
    let others = caps.len() - relevant.len();
    match (relevant.is_empty(), others) {
        (true, 0) => "none".to_string(),
        (true, n) => format!("no net_raw/net_admin ({n} others)"),
        (false, 0) => relevant.join(", "),
        (false, n) => format!("{} (+{n} others)", relevant.join(", ")),
    }
}
