//! Many sources at once (`--all-pods`, `-l SELECTOR`, `--per-node`): the flags' limits, and
//! one source's stream as it arrives ([`SourceSink`]). The run itself is in
//! `run/sources.rs`; the pods are chosen by [`crate::resolve::resolve_sources`]; the
//! aggregate verdict is [`verdict::sources`].

use verdict::{Inputs, StreamEnd};

use crate::events::Item;
use crate::output::{EventSink, ProbeEnd};
use crate::pcap::PcapWriter;

/// `--max-sources` when not given.
pub const DEFAULT_MAX_SOURCES: u16 = 20;
/// `--max-sources` above this is refused: each source is one more container in a pod that
/// stays in its spec for the pod's life, and one more stream.
pub const MAX_SOURCES_HARD_CAP: u16 = 200;
/// `--max-parallel` above this is refused: the limit exists to spare the API server.
pub const MAX_PARALLEL_CAP: u16 = 50;

/// `--max-sources N`: 1 to [`MAX_SOURCES_HARD_CAP`].
pub fn parse_max_sources(text: &str) -> Result<u16, String> {
    parse_count(text, "--max-sources", MAX_SOURCES_HARD_CAP, "source pods")
}

/// `--max-parallel N`: 1 to [`MAX_PARALLEL_CAP`].
pub fn parse_max_parallel(text: &str) -> Result<u16, String> {
    parse_count(
        text,
        "--max-parallel",
        MAX_PARALLEL_CAP,
        "injections at once",
    )
}

fn parse_count(text: &str, flag: &str, cap: u16, what: &str) -> Result<u16, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of {what}"))?;
    if n == 0 || n > u64::from(cap) {
        return Err(format!("{n} is out of range: {flag} takes 1 to {cap}"));
    }
    Ok(n as u16)
}

/// One source's probe session as it streams: its events into its own verdict inputs, its
/// pcap chunks into its own file (`-w FILE` -> `FILE.src-N.pcap`). Nothing is printed while
/// many streams interleave: the progress display shows states, the verdict comes at the end.
pub struct SourceSink {
    pub inputs: Inputs,
    pcap: Option<PcapWriter>,
    pcap_error: Option<String>,
    /// Checks finished so far, for the progress display.
    pub checks_done: usize,
}

impl SourceSink {
    pub fn new(inputs: Inputs, pcap: Option<PcapWriter>) -> SourceSink {
        SourceSink {
            inputs,
            pcap,
            pcap_error: None,
            checks_done: 0,
        }
    }

    /// The inputs, with the pcap file finished and said in a note.
    pub fn finish(mut self) -> Inputs {
        match (self.pcap.take(), self.pcap_error.take()) {
            (_, Some(e)) => self
                .inputs
                .client_notes
                .push(format!("the capture could not be written: {e}")),
            (Some(w), None) => match w.finish() {
                Ok(info) => self.inputs.pcap = info,
                Err(e) => self
                    .inputs
                    .client_notes
                    .push(format!("the capture could not be written: {e}")),
            },
            (None, None) => {}
        }
        self.inputs
    }

    /// Stop now: the run was interrupted, or its deadline passed, before this stream ended.
    pub fn cut(&mut self, reason: &str) {
        if self.inputs.stream_end != StreamEnd::Done {
            self.inputs.end_stream(reason);
        }
    }
}

impl EventSink for SourceSink {
    fn accept(&mut self, item: Item) {
        match item {
            Item::Gap { from, to } => self.inputs.client_notes.push(format!(
                "events {from}..{to} of the probe's stream were lost; the verdict lacks them"
            )),
            Item::Event(protocol::Decoded::Event(envelope)) => match &envelope.event {
                protocol::Event::PcapChunk(chunk) => {
                    if let (Some(w), None) = (self.pcap.as_mut(), &self.pcap_error) {
                        if let Err(e) = w.write_chunk(chunk) {
                            self.pcap_error = Some(e.to_string());
                        }
                    }
                }
                // The live display of rounds is per run, not per source: not kept.
                protocol::Event::Progress(_) => {}
                event => {
                    if matches!(event, protocol::Event::CheckFinished(_)) {
                        self.checks_done += 1;
                    }
                    self.inputs.record(protocol::Decoded::Event(envelope));
                }
            },
            Item::Event(unknown) => self.inputs.record(unknown),
        }
    }

    /// As [`crate::output::Session::record_end`], kept in this source's inputs (nothing is
    /// printed while many streams interleave).
    fn record_end(&mut self, end: ProbeEnd, reader: &crate::events::EventReader) {
        let said = end.said(reader);
        if let Some(reason) = said.ended_early {
            self.inputs.end_stream(reason);
        }
        self.inputs.client_notes.extend(said.notes);
    }

    fn set_delivery(&mut self, delivery: verdict::Delivery) {
        self.inputs.delivery = Some(delivery);
    }

    fn note(&mut self, message: String) {
        self.inputs.client_notes.push(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded_with_the_flag_named() {
        assert_eq!(parse_max_sources("20"), Ok(20));
        assert_eq!(parse_max_sources("200"), Ok(200));
        let zero = parse_max_sources("0").unwrap_err();
        assert!(zero.contains("--max-sources takes 1 to 200"), "{zero}");
        let above = parse_max_sources("201").unwrap_err();
        assert!(above.contains("201 is out of range"), "{above}");
        assert!(parse_max_sources("99999999999999999999").is_err());
        assert!(parse_max_sources("ten").unwrap_err().contains("`ten`"));
        assert_eq!(parse_max_parallel("10"), Ok(10));
        assert!(parse_max_parallel("51")
            .unwrap_err()
            .contains("--max-parallel takes 1 to 50"));
    }
}
