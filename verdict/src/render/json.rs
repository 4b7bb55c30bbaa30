//! `-o json`: the verdict and all the evidence it rests on, as one pretty-printed JSON
//! document. Field names are stable; the format is documented in `verdict/OUTPUT.md`.

use protocol::Event;
use serde::Serialize;

use super::Renderer;
use crate::kube::KubeEvidence;
use crate::model::{Delivery, Inputs, PcapInfo, PeerSession, StreamEnd, Title, Verdict};

/// Format identifier and version of the JSON document (bumped on incompatible changes).
pub const JSON_FORMAT: &str = "kubectl-netdebug/verdict";
pub const JSON_VERSION: u32 = 1;

#[derive(Debug, Default)]
pub struct JsonRenderer;

impl JsonRenderer {
    pub fn new() -> JsonRenderer {
        JsonRenderer
    }
}

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    version: u32,
    title: &'a Title,
    status: crate::Status,
    exit_code: i32,
    verdict: &'a Verdict,
    kube: &'a KubeEvidence,
    probe: Probe<'a>,
    /// Both ends: each peer session, with its own events (absent for a single-ended run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    peers: Vec<Peer<'a>>,
    client_notes: &'a [String],
    pcap: Option<&'a PcapInfo>,
}

#[derive(Serialize)]
struct Probe<'a> {
    stream_end: &'a StreamEnd,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a Delivery>,
    /// Every event except `pcap_chunk` (the bytes are in the pcap file).
    events: Vec<&'a Event>,
    pcap_chunks: usize,
    ignored_events: &'a [String],
}

/// One destination end's session: where it ran and its events, like `probe`'s.
#[derive(Serialize)]
struct Peer<'a> {
    id: &'a str,
    label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<std::net::IpAddr>,
    port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
    stream_end: &'a StreamEnd,
    /// Every event except `pcap_chunk`.
    events: Vec<&'a Event>,
    pcap_chunks: usize,
}

fn peer(p: &PeerSession) -> Peer<'_> {
    Peer {
        id: &p.id,
        label: &p.label,
        node: p.node.as_deref(),
        address: p.address,
        port: p.port,
        problem: p.problem.as_deref(),
        stream_end: &p.stream_end,
        events: without_chunks(&p.events),
        pcap_chunks: p.events.len() - without_chunks(&p.events).len(),
    }
}

fn without_chunks(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::PcapChunk(_)))
        .collect()
}

fn build<'a>(inputs: &'a Inputs, verdict: &'a Verdict) -> Document<'a> {
    Document {
        format: JSON_FORMAT,
        version: JSON_VERSION,
        title: &inputs.title,
        status: verdict.status,
        exit_code: verdict.exit_code(),
        verdict,
        kube: &inputs.kube,
        probe: Probe {
            stream_end: &inputs.stream_end,
            delivery: inputs.delivery.as_ref(),
            events: inputs
                .events
                .iter()
                .filter(|e| !matches!(e, Event::PcapChunk(_)))
                .collect(),
            pcap_chunks: inputs
                .events
                .iter()
                .filter(|e| matches!(e, Event::PcapChunk(_)))
                .count(),
            ignored_events: &inputs.ignored_events,
        },
        peers: inputs.peers.iter().map(peer).collect(),
        client_notes: &inputs.client_notes,
        pcap: inputs.pcap.as_ref(),
    }
}

/// The JSON document as a value (for callers that embed it).
pub fn document(inputs: &Inputs, verdict: &Verdict) -> serde_json::Value {
    // Our own plain-data types always serialise (string keys only, no fallible impls).
    serde_json::to_value(build(inputs, verdict)).unwrap_or(serde_json::Value::Null)
}

impl Renderer for JsonRenderer {
    fn progress(&mut self, _event: &Event) -> Option<String> {
        None
    }

    fn finish(&mut self, inputs: &Inputs, verdict: &Verdict) -> String {
        // Serialised from the struct, not a Value, so fields keep their documented order.
        let mut s = serde_json::to_string_pretty(&build(inputs, verdict))
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        s.push('\n');
        s
    }
}
