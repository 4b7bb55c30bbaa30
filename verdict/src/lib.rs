//! Verdict engine and renderers for kubectl-netdebug. Pure functions from evidence to a verdict
//! ([`evaluate`]) and from a verdict to text, markdown or JSON ([`render`]); no I/O.
//!
//! ```text
//! Inputs { kube, events, stream_end, title, pcap }  --evaluate-->  Verdict
//! Renderer::progress(event) per event (text only), Renderer::finish(inputs, verdict) at the end
//! ```
//!
//! Exit codes ([`Verdict::exit_code`]): 0 healthy, 1 a problem was found (degraded or
//! failed), 2 the tool could not do its job (inconclusive). The JSON output format is
//! documented in `verdict/OUTPUT.md`.

mod engine;
mod facts;
pub mod kube;
mod model;
mod progress;
pub mod render;
mod rules;

pub use engine::evaluate;
pub use model::*;
pub use render::{JsonRenderer, MarkdownRenderer, Renderer, TextRenderer};
