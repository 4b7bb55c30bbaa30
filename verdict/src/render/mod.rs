//! Renderers behind one interface. The client feeds every event to [`Renderer::progress`] as
//! it arrives (a line to print on a terminal, or nothing), then calls [`Renderer::finish`]
//! once with the inputs and the verdict.

use protocol::{CheckStatus, DnsOutcome, Event, Evidence, RouteOutcome, TcpOutcome};

use crate::model::{Inputs, Layer, Mark, Verdict};
use crate::rules::probe::layer_of;

mod json;
mod markdown;
mod text;
mod wrap;

pub use json::{document as json_document, JsonRenderer, JSON_FORMAT, JSON_VERSION};
pub use markdown::MarkdownRenderer;
pub use text::TextRenderer;

/// One output format.
pub trait Renderer {
    /// The line to print as this event arrives (no trailing newline), or None. Text on a
    /// terminal shows evidence progressively; markdown and json print only at the end.
    fn progress(&mut self, event: &Event) -> Option<String>;
    /// The complete output for the end of the run (ends with a newline).
    fn finish(&mut self, inputs: &Inputs, verdict: &Verdict) -> String;
}

/// The output formats by name, for `-o text|markdown|json`.
pub fn by_name(name: &str, color: bool) -> Option<Box<dyn Renderer>> {
    match name {
        "text" => Some(Box::new(TextRenderer::new(color))),
        "markdown" | "md" => Some(Box::new(MarkdownRenderer::new())),
        "json" => Some(Box::new(JsonRenderer::new())),
        _ => None,
    }
}

/// A one-line reading of an event as it arrives, judged from that event alone (the verdict
/// at the end weighs everything together).
pub(crate) fn summarize(event: &Event) -> Option<(Layer, Mark, String)> {
    use crate::facts::{ms, plural};
    match event {
        Event::Hello(h) => Some((
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
        )),
        Event::Skipped(s) => Some((
            layer_of(s.check),
            Mark::Skip,
            format!(
                "{}: {}{}",
                s.check,
                s.reason,
                s.missing_capability
                    .as_deref()
                    .map(|c| format!(" (needs {c})"))
                    .unwrap_or_default()
            ),
        )),
        Event::CheckFinished(c) => match c.status {
            CheckStatus::Error => Some((
                layer_of(c.check),
                Mark::Warn,
                format!(
                    "{} check failed: {}",
                    c.check,
                    c.error.as_deref().unwrap_or("no message")
                ),
            )),
            CheckStatus::DeadlineExceeded => Some((
                layer_of(c.check),
                Mark::Warn,
                format!(
                    "{} check cut by the deadline after {}",
                    c.check,
                    ms(c.elapsed_ms)
                ),
            )),
            _ => None,
        },
        Event::Evidence(e) => Some(match e {
            Evidence::Links(l) => {
                let up = l.links.iter().filter(|x| x.lower_up && x.admin_up).count();
                (
                    Layer::Network,
                    Mark::Info,
                    format!(
                        "{} interfaces ({} up): {}",
                        l.links.len(),
                        up,
                        l.links
                            .iter()
                            .map(|x| format!("{} mtu {}", x.name, x.mtu))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
            Evidence::Route(r) => match &r.outcome {
                RouteOutcome::Found(i) => (
                    Layer::Network,
                    Mark::Info,
                    format!(
                        "{}{} dev {}{}",
                        r.destination,
                        i.gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
                        i.dev.as_deref().unwrap_or("?"),
                        i.prefsrc.map(|s| format!(" src {s}")).unwrap_or_default()
                    ),
                ),
                RouteOutcome::NoRoute { message, .. } => (
                    Layer::Network,
                    Mark::Fail,
                    format!("{}: {message}", r.destination),
                ),
            },
            Evidence::Rules(r) => (
                Layer::Network,
                Mark::Info,
                format!("{} policy routing rules", r.rules.len()),
            ),
            Evidence::DnsConfig(c) => (
                Layer::Dns,
                Mark::Info,
                format!(
                    "{}: nameserver {}; search {}; ndots:{}",
                    c.path,
                    c.nameservers
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if c.search.is_empty() {
                        "(none)".to_string()
                    } else {
                        c.search.join(" ")
                    },
                    c.ndots
                ),
            ),
            Evidence::DnsLookup(l) => {
                if l.addresses.is_empty() {
                    let rcodes: Vec<String> = l
                        .queries
                        .iter()
                        .map(|q| match &q.outcome {
                            DnsOutcome::Response { rcode, .. } => rcode.clone(),
                            DnsOutcome::Timeout => "timeout".into(),
                            DnsOutcome::Error { .. } => "error".into(),
                        })
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    (
                        Layer::Dns,
                        Mark::Fail,
                        format!(
                            "{}: no address ({}; {})",
                            l.name,
                            rcodes.join("/"),
                            plural(l.queries.len() as u64, "query", "queries")
                        ),
                    )
                } else {
                    (
                        Layer::Dns,
                        Mark::Ok,
                        format!(
                            "{} -> {}  ({}, {})",
                            l.name,
                            l.addresses
                                .iter()
                                .map(|a| a.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            plural(l.queries.len() as u64, "query", "queries"),
                            ms(l.elapsed_ms)
                        ),
                    )
                }
            }
            Evidence::Tcp(t) => (
                Layer::Transport,
                if t.outcome == TcpOutcome::Ok {
                    Mark::Ok
                } else {
                    Mark::Fail
                },
                format!(
                    "{} {}",
                    t.address,
                    crate::rules::transport::outcome_words(t)
                ),
            ),
            Evidence::Sockets(s) => (
                Layer::Transport,
                Mark::Info,
                format!(
                    "{} sockets: {}",
                    s.total,
                    s.states
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Evidence::Counters(c) => (
                Layer::Transport,
                Mark::Info,
                format!(
                    "counters over {}: retransmits +{}, listen overflows +{}",
                    ms(c.interval_ms),
                    c.counters
                        .get("Tcp.RetransSegs")
                        .map(|v| v.delta)
                        .unwrap_or(0),
                    c.counters
                        .get("TcpExt.ListenOverflows")
                        .map(|v| v.delta)
                        .unwrap_or(0)
                ),
            ),
            Evidence::Conntrack(c) => (
                Layer::State,
                Mark::Info,
                match (c.present, c.count, c.max) {
                    (true, Some(n), Some(m)) => format!("conntrack {n}/{m}"),
                    _ => "conntrack not visible".to_string(),
                },
            ),
            Evidence::Sysctls(s) => (
                Layer::Network,
                Mark::Info,
                format!("{} sysctls read", s.values.len()),
            ),
            Evidence::Mtu(m) => (
                Layer::Path,
                if m.blackhole { Mark::Fail } else { Mark::Info },
                format!(
                    "{}: largest ok {}, smallest lost {}{}",
                    m.destination,
                    m.largest_ok
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    m.smallest_lost
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if m.frag_needed_seen {
                        ", frag-needed seen"
                    } else {
                        ""
                    }
                ),
            ),
            Evidence::CaptureSummary(c) => (
                Layer::Transport,
                Mark::Info,
                format!(
                    "capture on {}: {} packets, {} flows, stopped by {}",
                    c.interface,
                    c.packets_captured,
                    c.tcp_flows.len(),
                    c.stopped_by
                ),
            ),
        }),
        Event::CheckStarted(_) | Event::PcapChunk(_) | Event::Done(_) => None,
    }
}

/// The capabilities that matter to the checks (net_raw, net_admin), and how many others.
fn network_capabilities(caps: &[String]) -> String {
    let relevant: Vec<&str> = caps
        .iter()
        .map(String::as_str)
        .filter(|c| matches!(*c, "net_raw" | "net_admin" | "sys_admin"))
        .collect();
    let others = caps.len() - relevant.len();
    match (relevant.is_empty(), others) {
        (true, 0) => "none".to_string(),
        (true, n) => format!("no net_raw/net_admin ({n} others)"),
        (false, 0) => relevant.join(", "),
        (false, n) => format!("{} (+{n} others)", relevant.join(", ")),
    }
}

/// Status words for headers.
pub(crate) fn status_word(status: crate::Status) -> &'static str {
    match status {
        crate::Status::Healthy => "OK",
        crate::Status::Degraded => "DEGRADED",
        crate::Status::Failed => "FAIL",
        crate::Status::Inconclusive => "INCONCLUSIVE",
    }
}

/// `pod/x (ns) -> svc/y:443`
pub(crate) fn title_text(inputs: &Inputs) -> String {
    let t = &inputs.title;
    let mut s = t.source.clone();
    if let Some(ns) = &t.namespace {
        s.push_str(&format!(" ({ns})"));
    }
    if let Some(d) = &t.destination {
        s.push_str(&format!(" -> {d}"));
    }
    s
}
