//! The tool itself: a stream that ended without `done`, checks that errored or were cut by
//! the deadline, checks that were skipped or not part of the plan (the `unchecked` list).

use protocol::{CheckKind, CheckStatus, Open};

use crate::facts::{ms, Facts};
use crate::model::{Inputs, Layer, RuleCode, Severity, StreamEnd, Unchecked};
use crate::rules::Report;

/// The layer a check's evidence belongs to (from the registry); a check this version does not
/// know is the tool's own business.
pub fn layer_of(check: &Open<CheckKind>) -> Layer {
    check.known().map_or(Layer::Probe, |k| k.info().layer)
}

/// Stream end and check failures, before any network rule: they decide whether the rest can
/// be trusted.
pub fn stopped_early(inputs: &Inputs, f: &Facts, r: &mut Report) {
    let StreamEnd::EndedEarly { reason } = &inputs.stream_end else {
        return;
    };
    let last = if f.events == 0 {
        "no event at all was received".to_string()
    } else {
        format!(
            "the stream ended after {} events without the final `done` event",
            f.events
        )
    };
    let running: Vec<String> = f
        .started
        .iter()
        .filter(|s| !f.finished.iter().any(|x| x.check == s.check))
        .map(|s| s.check.to_string())
        .collect();
    let running_text = if running.is_empty() {
        String::new()
    } else {
        format!("; still running: {}", running.join(", "))
    };
    r.finding(
        RuleCode::ProbeStoppedEarly,
        Layer::Probe,
        Severity::Inconclusive,
        "probe stopped early",
        format!("the probe stopped before finishing ({reason}): {last}{running_text}"),
    )
    .detail(format!("{last}{running_text}"))
    .next(match f.kube.and_then(|k| k.source.as_ref()) {
        Some(s) => format!(
            "kubectl get pod -n {} {} -o jsonpath='{{.status.ephemeralContainerStatuses}}'",
            s.namespace, s.pod
        ),
        None => "dmesg | tail   # OOM kills; or rerun with a longer deadline".to_string(),
    })
    .add();
}

pub fn check_failures(f: &Facts, r: &mut Report) -> Vec<Unchecked> {
    let mut unchecked = Vec::new();
    for s in &f.skipped {
        unchecked.push(Unchecked {
            check: s.check.to_string(),
            reason: s.reason.clone(),
            missing_capability: s.missing_capability.as_ref().map(|c| c.to_string()),
        });
    }
    for c in &f.finished {
        let why = match c.status.known() {
            Some(CheckStatus::Error) => format!(
                "failed: {}",
                c.error.as_deref().unwrap_or("no error message")
            ),
            Some(CheckStatus::DeadlineExceeded) => format!(
                "cut short by the run's deadline after {} (evidence so far is used)",
                ms(c.elapsed_ms)
            ),
            _ => continue,
        };
        if unchecked
            .iter()
            .any(|u: &Unchecked| u.check == c.check.as_str())
        {
            continue;
        }
        unchecked.push(Unchecked {
            check: c.check.to_string(),
            reason: why.clone(),
            missing_capability: None,
        });
        if c.status == CheckStatus::Error
            && c.check
                .is_any(&[CheckKind::Dns, CheckKind::Tcp, CheckKind::Route])
        {
            // A check the destination's verdict rests on produced nothing: it cannot stand.
            if !f.has_evidence_of(&c.check) {
                r.finding(
                    RuleCode::CheckFailed,
                    layer_of(&c.check),
                    Severity::Inconclusive,
                    format!("{} check failed", c.check),
                    format!(
                        "the {} check could not run: {}",
                        c.check,
                        c.error.as_deref().unwrap_or("no error message")
                    ),
                )
                .detail(why)
                .add();
            }
        }
    }
    // Optional checks (not in the registry's default set) that were not part of this run.
    for kind in CheckKind::ALL.iter().copied().filter(|k| !k.info().default) {
        let hint = match kind {
            CheckKind::Mtu => "path MTU not probed in this run".to_string(),
            CheckKind::Capture => "no packet capture in this run".to_string(),
            other => format!("the {other} check was not part of this run"),
        };
        let mentioned = f.check_ran(kind) || unchecked.iter().any(|u| u.check == kind.as_str());
        if !mentioned && f.hello.is_some() {
            unchecked.push(Unchecked {
                check: kind.to_string(),
                reason: hint,
                missing_capability: None,
            });
        }
    }
    unchecked
}
