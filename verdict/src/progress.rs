//! The one-line reading of an event as it arrives, judged from that event alone (the verdict
//! at the end weighs everything together). The text renderer prints these while the probe
//! runs. Each evidence type says its own line ([`Progress`], implemented next to that type's
//! rules in `checks/`); the line's layer is its check's (`CheckKind::info().layer`).

use protocol::{Capability, CheckKind, CheckStatus, Event, Evidence, EvidenceType, Hello, Open};

use crate::model::{Layer, Mark};
use crate::words::ms;

/// One progress line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressLine {
    pub layer: Layer,
    pub mark: Mark,
    pub text: String,
}

/// Evidence that says what it shows as it arrives.
pub trait Progress: EvidenceType {
    fn progress(&self) -> (Mark, String);
}

fn evidence<T: Progress>(e: &T) -> ProgressLine {
    let (mark, text) = e.progress();
    ProgressLine {
        layer: T::CHECK.info().layer,
        mark,
        text,
    }
}

/// The layer of a check named in an event; a check this version does not know is the tool's.
fn layer_of(check: &Open<CheckKind>) -> Layer {
    check.known().map_or(Layer::Probe, |k| k.info().layer)
}

/// The line for `event`, or None for events that say nothing on their own.
pub fn line(event: &Event) -> Option<ProgressLine> {
    let (layer, mark, text) = match event {
        Event::Evidence(e) => return Some(evidence_line(e)),
        Event::Hello(h) => (Layer::Probe, Mark::Info, hello(h)),
        Event::Skipped(s) => (
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
        ),
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
            (layer_of(&c.check), Mark::Warn, text)
        }
        Event::Armed(a) => (
            Layer::Probe,
            Mark::Info,
            if a.capture {
                format!("capture armed after {}", ms(a.elapsed_ms))
            } else {
                "armed without a capture (see the skipped capture)".to_string()
            },
        ),
        Event::Released(r) => match r.by.known() {
            Some(protocol::ReleaseCause::Go) => return None,
            _ => (
                Layer::Probe,
                Mark::Warn,
                format!(
                    "went on without the peers' go after {} ({})",
                    ms(r.held_ms),
                    r.by
                ),
            ),
        },
        Event::CheckStarted(_) | Event::PcapChunk(_) | Event::Progress(_) | Event::Done(_) => {
            return None
        }
    };
    Some(ProgressLine { layer, mark, text })
}

fn evidence_line(e: &Evidence) -> ProgressLine {
    match e {
        Evidence::Links(x) => evidence(x),
        Evidence::Route(x) => evidence(x),
        Evidence::Rules(x) => evidence(x),
        Evidence::DnsConfig(x) => evidence(x),
        Evidence::DnsLookup(x) => evidence(x),
        Evidence::DnsRounds(x) => evidence(x),
        Evidence::Tcp(x) => evidence(x),
        Evidence::TcpRounds(x) => evidence(x),
        Evidence::Sockets(x) => evidence(x),
        Evidence::Counters(x) => evidence(x),
        Evidence::Conntrack(x) => evidence(x),
        Evidence::Sysctls(x) => evidence(x),
        Evidence::Mtu(x) => evidence(x),
        Evidence::NodePath(x) => evidence(x),
        Evidence::CaptureSummary(x) => evidence(x),
        Evidence::Tls(x) => evidence(x),
        Evidence::Http(x) => evidence(x),
    }
}

fn hello(h: &Hello) -> String {
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
    )
}

/// The capabilities that matter to the checks (net_raw, net_admin, sys_admin), and how many
/// others.
fn network_capabilities(caps: &[Open<Capability>]) -> String {
    const RELEVANT: [Capability; 3] = [
        Capability::NetRaw,
        Capability::NetAdmin,
        Capability::SysAdmin,
    ];
    let relevant: Vec<&str> = caps
        .iter()
        .filter(|c| c.is_any(&RELEVANT))
        .map(|c| c.as_str())
        .collect();
    let others = caps.len() - relevant.len();
    match (relevant.is_empty(), others) {
        (true, 0) => "none".to_string(),
        (true, n) => format!("no net_raw/net_admin ({n} others)"),
        (false, 0) => relevant.join(", "),
        (false, n) => format!("{} (+{n} others)", relevant.join(", ")),
    }
}
