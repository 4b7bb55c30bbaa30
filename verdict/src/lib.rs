//! Verdict engine and renderers for kubectl-netdebug. Pure functions from evidence to a verdict
//! ([`evaluate`]) and from a verdict to text, markdown or JSON ([`render`]); no I/O.
//!
//! ```text
//! Inputs { kube, events, stream_end, title, pcap }  --evaluate-->  Verdict
//! Renderer::progress(event) per event (text only), Renderer::finish(inputs, verdict) at the end
//! ```
//!
//! Layout: `checks/` has one module per check of the probe, holding the progress line and the
//! rules of the evidence that check emits (read by type: `facts.all::<TcpEvidence>()`);
//! `rules/` the rules about Kubernetes findings and about the tool itself; `ends/` lines up
//! the source's connections with the peers' captures (`--both-ends`) and locates failures
//! between or inside the ends; `engine.rs` runs them in layer order; `render/` only formats a
//! verdict and progress lines.
//!
//! Many sources at once: [`sources::evaluate_sources`] judges each source pod with
//! [`evaluate`] and puts an aggregate on top (a matrix, the split, what differs between a
//! failing and a working source); `sources::render_*` print it.
//!
//! Exit codes ([`Verdict::exit_code`]): 0 healthy, 1 a problem was found (degraded or
//! failed), 2 the tool could not do its job (inconclusive). The JSON output format is
//! documented in `verdict/OUTPUT.md`.

mod checks;
mod connections;
mod ends;
mod engine;
mod facts;
pub mod kube;
mod model;
pub mod progress;
pub mod render;
mod report;
mod rules;
pub mod sources;
mod stats;
mod steps;
mod words;

pub use connections::*;
pub use ends::MAX_CONNECTIONS;
pub use engine::evaluate;
pub use model::*;
pub use progress::ProgressLine;
pub use render::{JsonRenderer, MarkdownRenderer, Renderer, TextRenderer};
