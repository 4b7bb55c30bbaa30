//! A compact block to paste into Slack or an incident document: a status line, a small table
//! (one row per layer and mark, same-layer lines joined), the cause and the next step.

use protocol::Event;

use super::{status_word, timeline, title_text, Renderer};
use crate::model::{Inputs, Layer, Mark, Verdict};

#[derive(Debug, Default)]
pub struct MarkdownRenderer;

impl MarkdownRenderer {
    pub fn new() -> MarkdownRenderer {
        MarkdownRenderer
    }
}

/// Table cells cannot hold `|` or newlines.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Inline code that survives backticks in the text.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

impl Renderer for MarkdownRenderer {
    fn progress(&mut self, _event: &Event) -> Option<String> {
        None
    }

    fn finish(&mut self, inputs: &Inputs, verdict: &Verdict) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "**netdebug** {}: **{}** {}\n\n",
            code(&title_text(inputs)),
            status_word(verdict.status),
            verdict.headline
        ));
        // Merge lines of the same layer and mark into one row.
        let mut rows: Vec<(Layer, Mark, Vec<String>)> = Vec::new();
        for l in &verdict.evidence {
            match rows.last_mut() {
                Some((layer, mark, texts)) if *layer == l.layer && *mark == l.mark => {
                    texts.push(l.text.clone())
                }
                _ => rows.push((l.layer, l.mark, vec![l.text.clone()])),
            }
        }
        if !rows.is_empty() {
            out.push_str("| | layer | evidence |\n|---|---|---|\n");
            for (layer, mark, texts) in rows {
                let m = match mark {
                    Mark::Fail | Mark::Warn => format!("**{}**", mark.as_str()),
                    _ => mark.as_str().to_string(),
                };
                out.push_str(&format!(
                    "| {m} | {} | {} |\n",
                    layer.label(),
                    cell(&texts.join("; "))
                ));
            }
            out.push('\n');
        }
        // Both ends: each connection's timeline, in one code block.
        let timelines = timeline::lines(&verdict.connections);
        if !timelines.is_empty() {
            out.push_str("```text\n");
            for l in timelines {
                out.push_str(&format!("{l}\n"));
            }
            out.push_str("```\n\n");
        }
        if let Some(cause) = &verdict.cause {
            out.push_str(&format!("**Cause:** {cause}\n"));
        }
        match verdict.next.as_slice() {
            [] => {}
            [one] => out.push_str(&format!("**Next:** {}\n", code(one))),
            many => {
                out.push_str("**Next:**\n");
                for n in many {
                    out.push_str(&format!("- {}\n", code(n)));
                }
            }
        }
        if !verdict.unchecked.is_empty() {
            let parts: Vec<String> = verdict
                .unchecked
                .iter()
                .map(|u| match &u.missing_capability {
                    Some(c) => format!("{} ({}; needs {c})", u.check, u.reason),
                    None => format!("{} ({})", u.check, u.reason),
                })
                .collect();
            out.push_str(&format!("**Not checked:** {}\n", parts.join("; ")));
        }
        if !verdict.notes.is_empty() {
            out.push_str(&format!("_{}_\n", verdict.notes.join(" · ")));
        }
        out
    }
}
