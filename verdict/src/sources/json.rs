//! `-o json` for a many-sources run: one document with the aggregate (status, split,
//! matrix, differences, what was skipped) and beside it every source's full single-source
//! document (`crate::render::json_document`), so no source's evidence is lost. The format
//! is documented in `verdict/OUTPUT.md` ("Many sources").

use serde::Serialize;

use super::differences::Difference;
use super::matrix::Matrix;
use super::split::Split;
use super::{SkippedSource, SourcesInputs, SourcesVerdict};
use crate::model::{Status, Title, Unchecked};

/// Format identifier and version of the many-sources document (bumped on incompatible
/// changes; independent of the single-source document's).
pub const SOURCES_JSON_FORMAT: &str = "kubectl-netdebug/sources";
pub const SOURCES_JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    version: u32,
    title: &'a Title,
    status: Status,
    exit_code: i32,
    headline: &'a str,
    split: &'a Split,
    cause: Option<&'a str>,
    evidence: &'a [String],
    differences: &'a [Difference],
    next: &'a [String],
    matrix: &'a Matrix,
    unchecked: &'a [Unchecked],
    notes: &'a [String],
    skipped: &'a [SkippedSource],
    sources: Vec<Source<'a>>,
}

/// One source: who it is and, when its probe ran, its single-source document.
#[derive(Serialize)]
struct Source<'a> {
    id: &'a str,
    namespace: &'a str,
    pod: &'a str,
    node: Option<&'a str>,
    problem: Option<&'a str>,
    /// `kubectl-netdebug/verdict` document; null when the probe did not run.
    document: Option<serde_json::Value>,
}

/// The whole document, pretty-printed, ending with a newline.
pub fn render_json(inputs: &SourcesInputs, verdict: &SourcesVerdict) -> String {
    let sources = inputs
        .sources
        .iter()
        .map(|run| Source {
            id: &run.id,
            namespace: &run.namespace,
            pod: &run.pod,
            node: run.node.as_deref(),
            problem: run.problem.as_deref(),
            document: verdict
                .per_source
                .iter()
                .find(|s| s.id == run.id)
                .map(|s| crate::render::json_document(&run.inputs, &s.verdict)),
        })
        .collect();
    let doc = Document {
        format: SOURCES_JSON_FORMAT,
        version: SOURCES_JSON_VERSION,
        title: &inputs.title,
        status: verdict.status,
        exit_code: verdict.exit_code(),
        headline: &verdict.headline,
        split: &verdict.split,
        cause: verdict.cause.as_deref(),
        evidence: &verdict.evidence,
        differences: &verdict.differences,
        next: &verdict.next,
        matrix: &verdict.matrix,
        unchecked: &verdict.unchecked,
        notes: &verdict.notes,
        skipped: &inputs.skipped,
        sources,
    };
    // Serialised from the struct, not a Value, so fields keep their documented order.
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
