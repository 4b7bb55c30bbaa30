//! Text for a terminal, aligned like the example in the design (`../shared/design/DESIGN.md`)
//! and wrapped to 100 columns:
//!
//! ```text
//! netdebug  pod/checkout-7d9 (shop) -> svc/payments:443   FAIL  L4 timeout
//!   ok    DNS       payments.shop.svc.cluster.local -> 10.96.12.34  (1 query, 3 ms)
//!   FAIL  TCP       10.96.12.34:443 timeout 3.0 s; 10.244.2.37:8443 timeout
//!   cause  networkpolicy shop/payments-ingress drops pod/checkout-7d9 -> payments:8443
//!   next   kubectl get networkpolicy -n shop payments-ingress -o yaml
//! ```
//!
//! Colours (owo-colors) only when the caller says so: the client decides from NO_COLOR and
//! whether stdout is a terminal.

use owo_colors::OwoColorize;
use protocol::Event;

use super::timeline;
use super::wrap::wrap;
use super::{status_word, title_text, Renderer};
use crate::model::{Inputs, Layer, Mark, Status, Verdict};
use crate::progress;

/// Output width the text fits in.
pub const WIDTH: usize = 100;
/// `  ok    DNS       `: 2 + 6 + 10.
const LINE_INDENT: usize = 18;
/// `  cause  `.
const TAIL_INDENT: usize = 9;

pub struct TextRenderer {
    color: bool,
}

impl TextRenderer {
    pub fn new(color: bool) -> TextRenderer {
        TextRenderer { color }
    }

    fn paint_mark(&self, mark: Mark) -> String {
        let word = format!("{:<6}", mark.as_str());
        if !self.color {
            return word;
        }
        match mark {
            Mark::Ok => word.green().to_string(),
            Mark::Warn => word.yellow().bold().to_string(),
            Mark::Fail => word.red().bold().to_string(),
            Mark::Skip | Mark::Info => word.dimmed().to_string(),
        }
    }

    fn paint_status(&self, status: Status) -> String {
        let word = status_word(status);
        if !self.color {
            return word.to_string();
        }
        match status {
            Status::Healthy => word.green().bold().to_string(),
            Status::Degraded => word.yellow().bold().to_string(),
            Status::Failed => word.red().bold().to_string(),
            Status::Inconclusive => word.magenta().bold().to_string(),
        }
    }

    fn evidence_line(&self, out: &mut String, layer: Layer, mark: Mark, text: &str) {
        let lines = wrap(text, WIDTH - LINE_INDENT, WIDTH - LINE_INDENT);
        for (i, l) in lines.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!(
                    "  {}{:<10}{l}\n",
                    self.paint_mark(mark),
                    layer.label()
                ));
            } else {
                out.push_str(&format!("{}{l}\n", " ".repeat(LINE_INDENT)));
            }
        }
    }

    /// `  skip  sockets   reason`: the check's own name in the label column.
    fn skip_line(&self, out: &mut String, check: &str, text: &str) {
        for (i, l) in wrap(text, WIDTH - LINE_INDENT, WIDTH - LINE_INDENT)
            .iter()
            .enumerate()
        {
            if i == 0 {
                out.push_str(&format!(
                    "  {}{check:<10}{l}\n",
                    self.paint_mark(Mark::Skip)
                ));
            } else {
                out.push_str(&format!("{}{l}\n", " ".repeat(LINE_INDENT)));
            }
        }
    }

    fn tail_line(&self, out: &mut String, word: &str, text: &str) {
        let label = format!("{word:<7}");
        let label = if self.color {
            label.bold().to_string()
        } else {
            label
        };
        for (i, l) in wrap(text, WIDTH - TAIL_INDENT, WIDTH - TAIL_INDENT)
            .iter()
            .enumerate()
        {
            if i == 0 {
                out.push_str(&format!("  {label}{l}\n"));
            } else {
                out.push_str(&format!("{}{l}\n", " ".repeat(TAIL_INDENT)));
            }
        }
    }
}

impl TextRenderer {
    /// A next command is never broken inside the command (it must stay copy-pasteable):
    /// a trailing `# comment` moves to its own line when the whole does not fit.
    fn next_line(&self, out: &mut String, text: &str) {
        let fits = TAIL_INDENT + text.chars().count() <= WIDTH;
        match text.split_once("   # ") {
            Some((command, comment)) if !fits => {
                self.tail_line(out, "next", command);
                for l in wrap(
                    &format!("# {comment}"),
                    WIDTH - TAIL_INDENT,
                    WIDTH - TAIL_INDENT,
                ) {
                    out.push_str(&format!("{}{l}\n", " ".repeat(TAIL_INDENT)));
                }
            }
            _ => self.tail_line(out, "next", text),
        }
    }
}

impl Renderer for TextRenderer {
    fn progress(&mut self, event: &Event) -> Option<String> {
        let line = progress::line(event)?;
        let mut out = String::new();
        self.evidence_line(&mut out, line.layer, line.mark, &line.text);
        Some(out.trim_end_matches('\n').to_string())
    }

    fn finish(&mut self, inputs: &Inputs, verdict: &Verdict) -> String {
        let mut out = String::new();
        let head = format!("netdebug  {}   ", title_text(inputs));
        let status = self.paint_status(verdict.status);
        let plain_len = head.chars().count() + status_word(verdict.status).len() + 2;
        let headline_lines = wrap(
            &verdict.headline,
            WIDTH.saturating_sub(plain_len).max(20),
            WIDTH - TAIL_INDENT,
        );
        let head = if self.color {
            head.bold().to_string()
        } else {
            head
        };
        out.push_str(&format!("{head}{status}  {}\n", headline_lines[0]));
        for l in &headline_lines[1..] {
            out.push_str(&format!("{}{l}\n", " ".repeat(TAIL_INDENT)));
        }
        for line in &verdict.evidence {
            self.evidence_line(&mut out, line.layer, line.mark, &line.text);
        }
        for u in &verdict.unchecked {
            let text = format!(
                "{}{}",
                u.reason,
                u.missing_capability
                    .as_deref()
                    .map(|c| format!(" (needs {c})"))
                    .unwrap_or_default()
            );
            self.skip_line(&mut out, &u.check, &text);
        }
        // Both ends: each connection's timeline, under the evidence block.
        for l in timeline::lines(&verdict.connections) {
            // Continuations hang under the line's own text.
            let text = l.trim_start();
            let indent = 2 + l.len() - text.len();
            for (i, part) in wrap(text, WIDTH - indent, WIDTH - indent - 4)
                .iter()
                .enumerate()
            {
                let pad = if i == 0 { indent } else { indent + 4 };
                out.push_str(&format!("{}{part}\n", " ".repeat(pad)));
            }
        }
        if let Some(cause) = &verdict.cause {
            self.tail_line(&mut out, "cause", cause);
        }
        for n in &verdict.next {
            self.next_line(&mut out, n);
        }
        for n in &verdict.notes {
            self.tail_line(&mut out, "note", n);
        }
        out
    }
}
