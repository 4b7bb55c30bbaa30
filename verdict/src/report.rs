//! What the rules have concluded so far: findings (with their evidence lines), lines proven
//! healthy, context lines and notes. Rules run in layer order; a later one can see which
//! targets an earlier one explained (e.g. the Service rules claim a ClusterIP that failed while
//! endpoints worked, so the TCP rules do not report it a second time).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::model::{EvidenceLine, Finding, Layer, Mark, RuleCode, Severity};

/// What the rules have concluded so far.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub lines: Vec<EvidenceLine>,
    pub proven: Vec<String>,
    pub notes: Vec<String>,
    /// TCP targets already explained by a rule (not to be reported again).
    pub explained: BTreeSet<SocketAddr>,
}

/// A finding under construction: `Report::finding(...).line(..).next(..).add()`.
pub struct FindingBuilder<'r> {
    report: &'r mut Report,
    finding: Finding,
    lines: Vec<EvidenceLine>,
}

impl Report {
    pub fn finding(
        &mut self,
        rule: RuleCode,
        layer: Layer,
        severity: Severity,
        headline: impl Into<String>,
        cause: impl Into<String>,
    ) -> FindingBuilder<'_> {
        FindingBuilder {
            report: self,
            finding: Finding {
                rule,
                layer,
                severity,
                headline: headline.into(),
                cause: cause.into(),
                evidence: Vec::new(),
                next: Vec::new(),
                refined_by: None,
            },
            lines: Vec::new(),
        }
    }

    /// A line proven healthy: shown as `ok` and listed in `proven`.
    pub fn ok(&mut self, layer: Layer, text: impl Into<String>) {
        let text = text.into();
        self.proven.push(format!("{}: {text}", layer.label()));
        self.lines.push(EvidenceLine {
            layer,
            mark: Mark::Ok,
            text,
            rule: None,
        });
    }

    /// Context that is neither good nor bad.
    pub fn info(&mut self, layer: Layer, text: impl Into<String>) {
        self.lines.push(EvidenceLine {
            layer,
            mark: Mark::Info,
            text: text.into(),
            rule: None,
        });
    }

    pub fn has(&self, rule: RuleCode) -> bool {
        self.findings.iter().any(|f| f.rule == rule)
    }

    /// Mark the findings of `rules` as refined by `by` (a both-ends finding that located what
    /// they saw from one end): they keep their lines and sort after it.
    pub fn refine(&mut self, rules: &[RuleCode], by: RuleCode) {
        for f in self.findings.iter_mut().filter(|f| rules.contains(&f.rule)) {
            f.refined_by.get_or_insert(by);
        }
    }

    pub fn has_failure_in(&self, layer: Layer) -> bool {
        self.findings
            .iter()
            .any(|f| f.layer == layer && f.severity == Severity::Failure)
    }
}

impl FindingBuilder<'_> {
    /// An evidence line under the finding's own layer.
    pub fn line(self, text: impl Into<String>) -> Self {
        let layer = self.finding.layer;
        self.line_in(layer, text)
    }

    /// An evidence line when there is one to say.
    pub fn line_opt(self, text: Option<String>) -> Self {
        match text {
            Some(t) => self.line(t),
            None => self,
        }
    }

    /// An evidence line under another layer (a Policy line explaining a TCP timeout).
    pub fn line_in(mut self, layer: Layer, text: impl Into<String>) -> Self {
        let text = text.into();
        let mark = match self.finding.severity {
            Severity::Failure => Mark::Fail,
            Severity::Warning => Mark::Warn,
            Severity::Inconclusive => Mark::Skip,
            Severity::Info => Mark::Info,
        };
        self.finding.evidence.push(text.clone());
        self.lines.push(EvidenceLine {
            layer,
            mark,
            text,
            rule: Some(self.finding.rule),
        });
        self
    }

    /// Evidence that supports the finding but is not shown as its own line.
    pub fn detail(mut self, text: impl Into<String>) -> Self {
        self.finding.evidence.push(text.into());
        self
    }

    pub fn next(mut self, command: impl Into<String>) -> Self {
        self.finding.next.push(command.into());
        self
    }

    pub fn add(self) {
        self.report.lines.extend(self.lines);
        self.report.findings.push(self.finding);
    }

    /// Add a finding that located what the single-ended findings of `rules` saw from one end
    /// (see [`Report::refine`]).
    pub fn add_refining(self, rules: &[RuleCode]) {
        let by = self.finding.rule;
        let report = self.report;
        report.lines.extend(self.lines);
        report.findings.push(self.finding);
        report.refine(rules, by);
    }
}
