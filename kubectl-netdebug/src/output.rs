//! One run's output: every probe event goes into the verdict's inputs and, on a terminal, a
//! progress line; pcap chunks go to the pcap file; at the end the verdict is rendered in the
//! chosen format. Shared by the Kubernetes path and local mode.

use std::io::{IsTerminal, Write};

use verdict::{Inputs, Renderer, Title};

use crate::cli::{OutputArgs, OutputFormat};
use crate::error::{Error, Result};
use crate::events::{EventReader, Item};
use crate::local::PROBE_BINARY;
use crate::pcap::PcapWriter;

/// How the probe's run ended, as the cluster path (container status, log) or the local path
/// (child process) learned it.
#[derive(Debug, Default)]
pub struct ProbeEnd {
    /// None when `done` arrived; otherwise why the stream ended early.
    pub ended_early: Option<String>,
    pub exit_code: Option<i32>,
    /// The probe's last words outside the protocol (its stderr locally; a non-protocol line of
    /// the container log in a pod).
    pub last_words: Option<String>,
}

/// What the verdict says of a probe's end, the same for every session: why its stream
/// ended early (None when `done` arrived), and notes: a complete run that still exited
/// non-zero, malformed events on the way.
pub struct EndSaid {
    pub ended_early: Option<String>,
    pub notes: Vec<String>,
}

impl ProbeEnd {
    pub fn said(self, reader: &EventReader) -> EndSaid {
        let words = self
            .last_words
            .as_deref()
            .map(|w| format!("; its last output: {w}"))
            .unwrap_or_default();
        let mut notes = Vec::new();
        let ended_early = match self.ended_early {
            Some(reason) => Some(format!("{reason}{words}")),
            None => {
                if let Some(code) = self.exit_code.filter(|c| *c != 0) {
                    notes.push(format!(
                        "the probe finished its run but exited with code {code}{words}"
                    ));
                }
                None
            }
        };
        notes.extend(
            reader
                .malformed()
                .iter()
                .map(|m| format!("the probe sent a malformed event: {m}")),
        );
        EndSaid { ended_early, notes }
    }
}

/// The error for a probe that refused to run before its first event (bad plan, no
/// permission to enter the namespace): its own words, prefixed with its name once.
pub fn probe_refused(words: &str) -> String {
    let words = words.trim();
    if words.starts_with(PROBE_BINARY) {
        words.to_string()
    } else {
        format!("{PROBE_BINARY}: {words}")
    }
}

/// Where one probe session's events go: the run's output [`Session`] for the source, a
/// [`crate::ends::PeerRun`] for a destination end. The streaming code serves both.
pub trait EventSink {
    fn accept(&mut self, item: Item);
    /// How the probe's run ended (see [`Session::record_end`]).
    fn record_end(&mut self, end: ProbeEnd, reader: &EventReader);
    fn set_delivery(&mut self, delivery: verdict::Delivery);
    fn note(&mut self, message: String);
}

impl EventSink for Session {
    fn accept(&mut self, item: Item) {
        Session::accept(self, item)
    }
    fn record_end(&mut self, end: ProbeEnd, reader: &EventReader) {
        Session::record_end(self, end, reader)
    }
    fn set_delivery(&mut self, delivery: verdict::Delivery) {
        Session::set_delivery(self, delivery)
    }
    fn note(&mut self, message: String) {
        Session::note(self, message)
    }
}

pub struct Session {
    inputs: Inputs,
    renderer: Box<dyn Renderer + Send>,
    /// Print progress lines (stderr, only when it is a terminal).
    progress: bool,
    pcap: Option<PcapWriter>,
    pcap_error: Option<Error>,
    /// The final output goes to stderr when stdout carries the pcap (`-w -`).
    final_to_stderr: bool,
    /// The live display of repeated rounds.
    bars: crate::rounds_bar::RoundsBars,
}

/// Colour only on a terminal, and never with `--no-color` or `NO_COLOR` set (no-color.org).
pub fn use_color(args: &OutputArgs, to_stderr: bool) -> bool {
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    terminal && !args.no_color && !no_color_env
}

impl Session {
    pub fn new(
        output: &OutputArgs,
        title: Title,
        kube: verdict::kube::KubeEvidence,
        pcap_path: Option<&str>,
    ) -> Result<Session> {
        let final_to_stderr = pcap_path == Some("-");
        let renderer: Box<dyn Renderer + Send> = match output.format {
            OutputFormat::Text => Box::new(verdict::TextRenderer::new(use_color(
                output,
                final_to_stderr,
            ))),
            OutputFormat::Markdown => Box::new(verdict::MarkdownRenderer::new()),
            OutputFormat::Json => Box::new(verdict::JsonRenderer::new()),
        };
        let pcap = pcap_path.map(PcapWriter::create).transpose()?;
        Ok(Session {
            inputs: Inputs::new(title, kube),
            renderer,
            progress: output.format == OutputFormat::Text && std::io::stderr().is_terminal(),
            pcap,
            pcap_error: None,
            final_to_stderr,
            bars: crate::rounds_bar::RoundsBars::new(),
        })
    }

    /// Take one item from the event reader.
    pub fn accept(&mut self, item: Item) {
        match item {
            Item::Gap { from, to } => {
                let w = if from == to {
                    format!("event {from} of the probe's stream was lost; the verdict lacks it")
                } else {
                    format!("events {from}..{to} of the probe's stream were lost; the verdict lacks them")
                };
                self.warn(w);
            }
            Item::Event(protocol::Decoded::Event(envelope)) => {
                if let protocol::Event::PcapChunk(chunk) = &envelope.event {
                    if let (Some(w), None) = (self.pcap.as_mut(), &self.pcap_error) {
                        if let Err(e) = w.write_chunk(chunk) {
                            self.pcap_error = Some(e);
                        }
                    }
                    // Written to the file; the verdict only needs the PcapInfo.
                    return;
                }
                if let protocol::Event::Progress(p) = &envelope.event {
                    // For the live display only: not evidence, not kept.
                    self.bars.update(p);
                    return;
                }
                if self.progress {
                    if let Some(line) = self.renderer.progress(&envelope.event) {
                        eprintln!("{line}");
                    }
                }
                self.inputs.record(protocol::Decoded::Event(envelope));
            }
            Item::Event(unknown) => self.inputs.record(unknown),
        }
    }

    /// A problem of the run worth telling now (stderr) without stopping it; the verdict
    /// repeats it as a note, so a pasted verdict carries it too.
    pub fn warn(&mut self, message: String) {
        eprintln!("warning: {message}");
        self.inputs.client_notes.push(message);
    }

    /// How the events reached the client (JSON `probe.delivery`).
    pub fn set_delivery(&mut self, delivery: verdict::Delivery) {
        self.inputs.delivery = Some(delivery);
    }

    /// A destination end's session (both ends).
    pub fn add_peer(&mut self, peer: verdict::PeerSession) {
        self.inputs.peers.push(peer);
    }

    /// Something about the run the verdict should say (not worth a warning now).
    pub fn note(&mut self, message: String) {
        self.inputs.client_notes.push(message);
    }

    /// How the probe's run ended, the same way for a pod and for `local`: a stream cut short,
    /// a complete run that still exited non-zero, and any malformed events on the way.
    pub fn record_end(&mut self, end: ProbeEnd, reader: &EventReader) {
        let said = end.said(reader);
        if let Some(reason) = said.ended_early {
            self.end_early(reason);
        }
        for note in said.notes {
            self.warn(note);
        }
    }

    /// The stream ended without `done`, for this reason.
    pub fn end_early(&mut self, reason: impl Into<String>) {
        self.inputs.end_stream(reason);
    }

    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// Evaluate, render, print; returns the exit code (0 healthy, 1 problem, 2 inconclusive).
    ///
    /// Waiting for the pcap writer and writing the verdict are blocking I/O: they run on the
    /// blocking pool, not on the runtime that keeps the deadlines.
    pub async fn finish(mut self) -> Result<i32> {
        if let Some(e) = self.pcap_error.take() {
            return Err(e);
        }
        tokio::task::spawn_blocking(move || self.write_out())
            .await
            .map_err(|e| Error::Output(format!("writing the output: {e}")))?
    }

    fn write_out(mut self) -> Result<i32> {
        self.bars.clear();
        if let Some(w) = self.pcap.take() {
            let path = w.path().to_string();
            self.inputs.pcap = w.finish()?;
            if self.inputs.pcap.is_none() {
                self.warn(format!(
                    "the probe sent no capture data (see the capture line), so {path} was not written"
                ));
            }
        }
        let verdict = verdict::evaluate(&self.inputs);
        let text = self.renderer.finish(&self.inputs, &verdict);
        let written = if self.final_to_stderr {
            std::io::stderr().write_all(text.as_bytes())
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|_| out.flush())
        };
        if let Err(e) = written {
            // A closed pipe (`| head`) is not the tool failing.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Error::Output(format!("writing the output: {e}")));
            }
        }
        Ok(verdict.exit_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OutputFormat;

    fn session() -> Session {
        let title = Title {
            source: "local".into(),
            destination: None,
            namespace: None,
            origin: Some(verdict::Origin::Local),
            asked: None,
        };
        let output = OutputArgs {
            format: OutputFormat::Json,
            no_color: true,
        };
        Session::new(&output, title, Default::default(), None).unwrap()
    }

    /// Progress events feed the live display only: the verdict's inputs (and `-o json`)
    /// never carry them.
    #[test]
    fn progress_events_are_not_kept() {
        let mut s = session();
        let line = r#"{"v":1,"seq":3,"type":"progress","data":{"check":"tcp","done":5,"total":10,"failed":1}}"#;
        s.accept(Item::Event(protocol::decode_line(line).unwrap()));
        assert!(s.inputs().events.is_empty());
        assert!(s.inputs().ignored_events.is_empty());
    }

    /// Regression: the probe's end (cut short, or complete with a non-zero exit) and its
    /// malformed events were written twice, once per path, with different words; one place
    /// says them now, for local and cluster runs alike.
    #[tokio::test]
    async fn probe_end_is_said_once_the_same_way_for_both_paths() {
        let mut reader = EventReader::new();
        let lines = [r#"{"v":1,"seq":0,"type":"check_started","data":{"check":42}}"#.to_string()];
        let input = futures::io::Cursor::new(lines.join("\n").into_bytes());
        reader.read_from(input, |_| {}).await.unwrap();

        let mut cut = session();
        cut.record_end(
            ProbeEnd {
                ended_early: Some("the probe exited with code 137 before finishing".into()),
                exit_code: Some(137),
                last_words: Some("netdebug-probe: out of memory".into()),
            },
            &reader,
        );
        assert_eq!(
            cut.inputs().stream_end,
            verdict::StreamEnd::EndedEarly {
                reason: "the probe exited with code 137 before finishing; its last output: \
                         netdebug-probe: out of memory"
                    .into()
            }
        );
        assert_eq!(cut.inputs().client_notes.len(), 1, "the malformed event");
        assert!(cut.inputs().client_notes[0].starts_with("the probe sent a malformed event: "));

        let mut complete = session();
        complete.record_end(
            ProbeEnd {
                ended_early: None,
                exit_code: Some(3),
                last_words: None,
            },
            &EventReader::new(),
        );
        assert_eq!(
            complete.inputs().client_notes,
            ["the probe finished its run but exited with code 3"]
        );
        assert_eq!(
            probe_refused("cannot enter netns blue: EPERM"),
            "netdebug-probe: cannot enter netns blue: EPERM"
        );
        assert_eq!(
            probe_refused("netdebug-probe: bad plan"),
            "netdebug-probe: bad plan"
        );
    }
}
