//! Renderers behind one interface. The client feeds every event to [`Renderer::progress`] as
//! it arrives (a line to print on a terminal, or nothing), then calls [`Renderer::finish`]
//! once with the inputs and the verdict.

use protocol::Event;

use crate::model::{Inputs, Verdict};

mod json;
mod markdown;
pub(crate) mod text;
mod timeline;
pub(crate) mod wrap;

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

/// Status words for headers (`OK`, `FAIL`...), also for the client's live display.
pub fn status_word(status: crate::Status) -> &'static str {
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
