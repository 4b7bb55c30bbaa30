//! Many sources at once (`--all-pods`, `-l SELECTOR`, `--per-node`): every source pod runs the
//! same plan as its own probe session, each gets its single-source verdict, and an aggregate
//! verdict on top explains the split between the sources that fail and those that work.
//!
//! ```text
//! SourcesInputs { title, sources: [SourceRun { inputs: Inputs, .. }], skipped, notes }
//!     --evaluate_sources-->  SourcesVerdict { matrix, split, differences, per_source, .. }
//! ```
//!
//! Modules, one job each: `matrix` (cells from each source's evidence), `split` (the pattern
//! of failing and working sources), `differences` (typed facts compared between a failing
//! and a working source), `gaps` (what was not run or skipped), `verdict` (the aggregate),
//! `render` (text, markdown) and `json` (the one document with every source's evidence).

use serde::{Deserialize, Serialize};

use crate::model::{Inputs, Title};

mod differences;
mod gaps;
mod json;
mod matrix;
mod render;
mod split;
mod verdict;

pub use differences::{Difference, Fact, Side};
pub use json::{render_json, SOURCES_JSON_FORMAT, SOURCES_JSON_VERSION};
pub use matrix::{Cell, Column, Matrix, Row, TargetKind};
pub use render::{render_markdown, render_text};
pub use split::Split;
pub use verdict::{evaluate_sources, SourceVerdict, SourcesVerdict};

/// Everything the aggregate verdict rests on: one [`SourceRun`] per source pod that was
/// chosen (whether or not its probe ran), and the pods that were not chosen, each with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcesInputs {
    /// What was asked: `source` says how the sources were chosen ("deploy/web --all-pods",
    /// "pods -l app=web", "... --per-node").
    pub title: Title,
    pub sources: Vec<SourceRun>,
    #[serde(default)]
    pub skipped: Vec<SkippedSource>,
    /// What the client noticed about the whole run (an interrupt, a cap applied).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One source pod's probe session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRun {
    /// Session id, "src-1".."src-N", in the order the sources were chosen.
    pub id: String,
    pub namespace: String,
    pub pod: String,
    pub node: Option<String>,
    /// Why this source has no probe evidence (its injection was refused, its image did not
    /// start, the run was interrupted before its turn...). None when its probe ran, even if
    /// it ended early (that is in `inputs.stream_end`).
    #[serde(default)]
    pub problem: Option<String>,
    /// Its own single-source inputs: Kubernetes evidence with this pod as the source, its
    /// probe's events, how its stream ended.
    pub inputs: Inputs,
}

/// A pod the selection matched that was not probed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedSource {
    pub namespace: String,
    pub pod: String,
    pub node: Option<String>,
    pub reason: SkipReason,
    /// The specifics, in words ("phase Pending", "node win-1 runs windows", "pod/web-2 is
    /// the one for node a").
    pub detail: String,
}

/// Why a matched pod was not probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not Running (Pending, Succeeded, Failed, terminating).
    NotRunning,
    /// Its node does not run Linux: the probe cannot run there.
    WindowsNode,
    /// `--per-node`: another pod was chosen for its node.
    SameNode,
    /// Beyond `--max-sources`.
    OverLimit,
    /// The run was interrupted (Ctrl-C) before its probe was started.
    Interrupted,
    /// The run's deadline passed while it waited for its turn (`--max-parallel`).
    DeadlinePassed,
}

impl SkipReason {
    /// Why, in words that follow a pod's name ("web-4: not running").
    pub fn words(self) -> &'static str {
        match self {
            SkipReason::NotRunning => "not running",
            SkipReason::WindowsNode => "on a node that does not run Linux",
            SkipReason::SameNode => "another pod stands for its node (--per-node)",
            SkipReason::OverLimit => "over --max-sources",
            SkipReason::Interrupted => "interrupted before its turn",
            SkipReason::DeadlinePassed => "the run's deadline passed before its turn",
        }
    }
}
