//! `conntrack` evidence: the connection tracking table. Rule: conntrack near its maximum (new
//! flows get dropped when the table is full); otherwise its fill, proven.

use protocol::ConntrackEvidence;

use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;

/// Fill ratio from which conntrack is "near its maximum".
pub const CONNTRACK_NEAR_MAX: f64 = 0.9;
/// Fill ratio from which new flows are being dropped in practice.
pub const CONNTRACK_FULL: f64 = 0.99;

impl Progress for ConntrackEvidence {
    fn progress(&self) -> (Mark, String) {
        (
            Mark::Info,
            match (self.present, self.count, self.max) {
                (true, Some(n), Some(m)) => format!("conntrack {n}/{m}"),
                _ => "conntrack not visible".to_string(),
            },
        )
    }
}

pub fn apply(f: &Facts, r: &mut Report) {
    let Some(c) = f.one::<ConntrackEvidence>() else {
        return;
    };
    if !c.present {
        r.info(
            Layer::State,
            format!(
                "conntrack not visible here{}",
                c.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
        );
        return;
    }
    let (Some(count), Some(max)) = (c.count, c.max) else {
        return;
    };
    let ratio = c.fill_ratio.unwrap_or(if max == 0 {
        0.0
    } else {
        count as f64 / max as f64
    });
    let drops = c.drop.unwrap_or(0) + c.early_drop.unwrap_or(0) + c.insert_failed.unwrap_or(0);
    if ratio < CONNTRACK_NEAR_MAX {
        r.ok(
            Layer::State,
            format!("conntrack {count}/{max} ({:.0}%)", ratio * 100.0),
        );
        return;
    }
    let severity = if ratio >= CONNTRACK_FULL || drops > 0 {
        Severity::Failure
    } else {
        Severity::Warning
    };
    let drop_text = if drops > 0 {
        format!(
            "; drop {} early_drop {} insert_failed {}",
            c.drop.unwrap_or(0),
            c.early_drop.unwrap_or(0),
            c.insert_failed.unwrap_or(0)
        )
    } else {
        String::new()
    };
    r.finding(
        RuleCode::ConntrackNearMax,
        Layer::State,
        severity,
        "conntrack full",
        format!(
            "the conntrack table holds {count} of {max} entries ({:.0}%){drop_text}: new flows \
             are dropped when it is full",
            ratio * 100.0
        ),
    )
    .line(format!(
        "nf_conntrack_count {count} / nf_conntrack_max {max} ({:.0}%){drop_text}",
        ratio * 100.0
    ))
    .next(if f.is_local() {
        "conntrack -S; sysctl net.netfilter.nf_conntrack_max"
    } else {
        "conntrack -S; sysctl net.netfilter.nf_conntrack_max   # on the node"
    })
    .next(format!(
        "raise nf_conntrack_max{} or find the flow source: conntrack -L | awk '{{print $5}}' | \
         sort | uniq -c | sort -rn | head",
        if f.is_local() {
            ""
        } else {
            " (kube-proxy --conntrack-max-per-core)"
        }
    ))
    .add();
}
