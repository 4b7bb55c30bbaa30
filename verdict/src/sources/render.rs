//! Text and markdown for a many-sources run: the aggregate first (status, headline), then
//! the matrix compactly (one line per node and group of pods that fared alike, or one line
//! when every source agrees), what differs, the cause, the next step, and what was not
//! checked. Every source's own evidence is in `-o json`.

use owo_colors::OwoColorize;

use super::matrix::{cells_words, groups, Matrix, RowGroup};
use super::{SourcesInputs, SourcesVerdict};
use crate::model::Status;
use crate::render::wrap::wrap;
use crate::render::{status_word, text::WIDTH};
use crate::words::{list, plural};

/// `  differs `: 2 + 8.
const INDENT: usize = 10;
/// Groups shown before the rest are counted (text); markdown shows fewer to stay short.
const MAX_TEXT_GROUPS: usize = 20;
const MAX_MARKDOWN_GROUPS: usize = 10;

/// `deploy/web --all-pods (shop) -> svc/web:80`.
fn title_text(inputs: &SourcesInputs) -> String {
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

/// `web-1, web-3 (2 pods)`, `web-1, web-2, web-3 and 4 more (7 pods)`.
fn pods_words(pods: &[&str]) -> String {
    let names: Vec<String> = pods.iter().map(|p| p.to_string()).collect();
    if pods.len() == 1 {
        names[0].clone()
    } else {
        format!("{} ({} pods)", list(&names, 3), pods.len())
    }
}

fn node_words(node: Option<&str>) -> &str {
    node.unwrap_or("(node unknown)")
}

/// One line when every source that ran fared alike on every target and none is missing:
/// `12 pods on 3 nodes: all ok (dns web, svc/web:80 (10.96.0.10:80))`.
fn all_alike(m: &Matrix) -> Option<String> {
    let first = m.rows.first()?;
    if !m
        .rows
        .iter()
        .all(|r| r.cells == first.cells && r.status == first.status && r.status.is_some())
    {
        return None;
    }
    let nodes: std::collections::BTreeSet<_> =
        m.rows.iter().filter_map(|r| r.node.as_ref()).collect();
    let names: Vec<String> = m.columns.iter().map(|c| c.name()).collect();
    Some(format!(
        "{} on {}: {} ({})",
        plural(m.rows.len() as u64, "pod", "pods"),
        plural(nodes.len() as u64, "node", "nodes"),
        cells_words(&m.columns, &first.cells),
        list(&names, 4)
    ))
}

fn group_words(m: &Matrix, g: &RowGroup) -> String {
    match g.status {
        // A source without a verdict has no cells worth listing.
        None => "not run".into(),
        Some(Status::Inconclusive) => format!("inconclusive; {}", cells_words(&m.columns, g.cells)),
        Some(_) => cells_words(&m.columns, g.cells),
    }
}

struct Text {
    color: bool,
    out: String,
}

impl Text {
    fn labelled(&mut self, word: &str, text: &str) {
        let label = format!("{word:<8}");
        let label = if self.color {
            label.bold().to_string()
        } else {
            label
        };
        for (i, l) in wrap(text, WIDTH - INDENT, WIDTH - INDENT)
            .iter()
            .enumerate()
        {
            if i == 0 {
                self.out.push_str(&format!("  {label}{l}\n"));
            } else {
                self.out.push_str(&format!("{}{l}\n", " ".repeat(INDENT)));
            }
        }
    }

    /// A next command stays copy-pasteable: a trailing `# comment` moves to its own line
    /// when the whole does not fit, and the command itself is never broken.
    fn next(&mut self, text: &str) {
        if INDENT + text.chars().count() <= WIDTH {
            return self.labelled("next", text);
        }
        let (command, comment) = match text.split_once("   # ") {
            Some((c, m)) => (c, Some(m)),
            None => (text, None),
        };
        let label = if self.color {
            format!("{:<8}", "next").bold().to_string()
        } else {
            format!("{:<8}", "next")
        };
        self.out.push_str(&format!("  {label}{command}\n"));
        if let Some(m) = comment {
            for l in wrap(&format!("# {m}"), WIDTH - INDENT, WIDTH - INDENT) {
                self.out.push_str(&format!("{}{l}\n", " ".repeat(INDENT)));
            }
        }
    }

    /// `    node-1  web-1, web-3 (2 pods)  all ok`, continuations under the pods.
    fn group(&mut self, node: &str, node_width: usize, rest: &str) {
        let indent = 4 + node_width + 2;
        for (i, l) in wrap(rest, WIDTH - indent, WIDTH - indent - 2)
            .iter()
            .enumerate()
        {
            if i == 0 {
                self.out
                    .push_str(&format!("    {node:<node_width$}  {l}\n"));
            } else {
                self.out
                    .push_str(&format!("{}{l}\n", " ".repeat(indent + 2)));
            }
        }
    }

    fn status(&self, s: Status) -> String {
        let word = status_word(s);
        if !self.color {
            return word.to_string();
        }
        match s {
            Status::Healthy => word.green().bold().to_string(),
            Status::Degraded => word.yellow().bold().to_string(),
            Status::Failed => word.red().bold().to_string(),
            Status::Inconclusive => word.magenta().bold().to_string(),
        }
    }
}

/// `-o text`: at most 100 columns.
pub fn render_text(inputs: &SourcesInputs, verdict: &SourcesVerdict, color: bool) -> String {
    let mut t = Text {
        color,
        out: String::new(),
    };
    let head = format!("netdebug  {}   ", title_text(inputs));
    let plain = head.chars().count() + status_word(verdict.status).len() + 2;
    let headline = wrap(
        &verdict.headline,
        WIDTH.saturating_sub(plain).max(20),
        WIDTH - INDENT,
    );
    let status = t.status(verdict.status);
    let head = if color { head.bold().to_string() } else { head };
    t.out.push_str(&format!(
        "{head}{status}  {}\n",
        headline.first().map(String::as_str).unwrap_or("")
    ));
    for l in headline.iter().skip(1) {
        t.out.push_str(&format!("{}{l}\n", " ".repeat(INDENT)));
    }

    let m = &verdict.matrix;
    if let Some(line) = all_alike(m) {
        t.labelled("matrix", &line);
    } else if !m.rows.is_empty() {
        let names: Vec<String> = m.columns.iter().map(|c| c.name()).collect();
        t.labelled(
            "matrix",
            &format!(
                "{} against {}: {}",
                plural(m.rows.len() as u64, "source", "sources"),
                plural(names.len() as u64, "target", "targets"),
                list(&names, 6)
            ),
        );
        let gs = groups(m);
        let width = gs
            .iter()
            .map(|g| node_words(g.node).chars().count())
            .max()
            .unwrap_or(0)
            .min(24);
        for g in gs.iter().take(MAX_TEXT_GROUPS) {
            let rest = format!("{}  {}", pods_words(&g.pods), group_words(m, g));
            t.group(node_words(g.node), width, &rest);
        }
        if gs.len() > MAX_TEXT_GROUPS {
            t.out.push_str(&format!(
                "    and {} more (-o json has every source)\n",
                plural((gs.len() - MAX_TEXT_GROUPS) as u64, "group", "groups")
            ));
        }
    }
    for e in &verdict.evidence {
        t.labelled("seen", e);
    }
    for d in &verdict.differences {
        t.labelled("differs", &d.text());
    }
    if let Some(c) = &verdict.cause {
        t.labelled("cause", c);
    }
    for n in &verdict.next {
        t.next(n);
    }
    for u in &verdict.unchecked {
        let text = match &u.missing_capability {
            Some(c) => format!("{}: {} (needs {c})", u.check, u.reason),
            None => format!("{}: {}", u.check, u.reason),
        };
        t.labelled("skip", &text);
    }
    for n in &verdict.notes {
        t.labelled("note", n);
    }
    t.out
}

/// Table cells cannot hold `|` or newlines.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `-o markdown`: a status line, the matrix as a small table, and one line each for what
/// differs, the cause, the next step, what was not checked and notes. Stays short for many
/// sources: pods that fared alike share a row, and rows past a few are counted.
pub fn render_markdown(inputs: &SourcesInputs, verdict: &SourcesVerdict) -> String {
    let mut out = format!(
        "**netdebug** `{}`: **{}** {}\n\n",
        title_text(inputs).replace('`', "'"),
        status_word(verdict.status),
        verdict.headline
    );
    let m = &verdict.matrix;
    if let Some(line) = all_alike(m) {
        out.push_str(&format!("{line}\n\n"));
    } else if !m.rows.is_empty() {
        out.push_str("| node | pods | outcome |\n|---|---|---|\n");
        let gs = groups(m);
        for g in gs.iter().take(MAX_MARKDOWN_GROUPS) {
            let words = group_words(m, g);
            let words = if g.status.is_some_and(|s| s != Status::Healthy) {
                format!("**{}**", cell(&words))
            } else {
                cell(&words)
            };
            out.push_str(&format!(
                "| {} | {} | {words} |\n",
                cell(node_words(g.node)),
                cell(&pods_words(&g.pods))
            ));
        }
        if gs.len() > MAX_MARKDOWN_GROUPS {
            let rest: usize = gs[MAX_MARKDOWN_GROUPS..].iter().map(|g| g.pods.len()).sum();
            out.push_str(&format!(
                "| … | {} more | see `-o json` |\n",
                plural(rest as u64, "pod", "pods")
            ));
        }
        out.push('\n');
    }
    if !verdict.evidence.is_empty() {
        out.push_str(&format!("**Seen:** {}\n", verdict.evidence.join("; ")));
    }
    if !verdict.differences.is_empty() {
        let ds: Vec<String> = verdict.differences.iter().map(|d| d.text()).collect();
        out.push_str(&format!("**Differs:** {}\n", ds.join("; ")));
    }
    if let Some(c) = &verdict.cause {
        out.push_str(&format!("**Cause:** {c}\n"));
    }
    if !verdict.next.is_empty() {
        let ns: Vec<String> = verdict.next.iter().map(|n| format!("`{n}`")).collect();
        out.push_str(&format!("**Next:** {}\n", ns.join(" ")));
    }
    if !verdict.unchecked.is_empty() {
        let us: Vec<String> = verdict
            .unchecked
            .iter()
            .map(|u| format!("{}: {}", u.check, u.reason))
            .collect();
        out.push_str(&format!("**Not checked:** {}\n", us.join("; ")));
    }
    for n in &verdict.notes {
        out.push_str(&format!("_{}_\n", n.replace('_', "\\_")));
    }
    out
}
