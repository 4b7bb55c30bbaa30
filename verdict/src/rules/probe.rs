//! The tool itself: a stream that ended without `done`, checks that errored or were cut by
//! the deadline, checks that were skipped or not part of the plan (the `unchecked` list).

use protocol::{CheckFinished, CheckKind, CheckStatus};

use crate::facts::Facts;
use crate::model::{Inputs, Layer, Origin, RuleCode, Severity, StreamEnd, Unchecked};
use crate::report::Report;
use crate::words::ms;

/// The checks whose evidence is about the destination itself: one that errored without any
/// evidence leaves the verdict nothing to rest on.
const CORE: [CheckKind; 3] = [CheckKind::Dns, CheckKind::Tcp, CheckKind::Route];

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
    .next(match f.kube.source.as_ref().filter(|_| !f.is_local()) {
        Some(s) => format!(
            "kubectl get pod -n {} {} -o jsonpath='{{.status.ephemeralContainerStatuses}}'",
            s.namespace, s.pod
        ),
        None => "dmesg | tail   # OOM kills; or rerun with a longer deadline".to_string(),
    })
    .add();
}

pub fn check_failures(f: &Facts, r: &mut Report) -> Vec<Unchecked> {
    let mut unchecked: Vec<Unchecked> = f
        .skipped
        .iter()
        .map(|s| Unchecked {
            check: s.check.to_string(),
            reason: s.reason.clone(),
            missing_capability: s.missing_capability.as_ref().map(|c| c.to_string()),
        })
        .collect();
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
        if unchecked.iter().any(|u| u.check == c.check.as_str()) {
            continue;
        }
        unchecked.push(Unchecked {
            check: c.check.to_string(),
            reason: why.clone(),
            missing_capability: None,
        });
        core_check_failed(f, c, why, r);
    }
    // Optional checks (not run unless asked for) that were not part of this run at all.
    for kind in CheckKind::ALL.iter().copied().filter(|k| !k.info().default) {
        // Only a pod has a node view to run it from (`--via-node`): anywhere else (a node view
        // runs it always, a local run has no node) there is nothing to point at.
        if kind == CheckKind::NodePath && !matches!(f.origin, Some(Origin::Pod { .. })) {
            continue;
        }
        // Its evidence says it ran, even without its start and finish events.
        let mentioned = f.check_ran(kind)
            || f.about_destination(kind)
            || unchecked.iter().any(|u| u.check == kind.as_str());
        if !mentioned && f.hello.is_some() {
            unchecked.push(Unchecked {
                check: kind.to_string(),
                reason: not_run(kind),
                missing_capability: None,
            });
        }
    }
    unchecked
}

/// A core check that errored and produced nothing: the verdict cannot rest on it.
fn core_check_failed(f: &Facts, c: &CheckFinished, why: String, r: &mut Report) {
    let Some(kind) = c.check.known().filter(|k| CORE.contains(k)) else {
        return;
    };
    if c.status != CheckStatus::Error || f.about_destination(kind) {
        return;
    }
    r.finding(
        RuleCode::CheckFailed,
        kind.info().layer,
        Severity::Inconclusive,
        format!("{kind} check failed"),
        format!(
            "the {kind} check could not run: {}",
            c.error.as_deref().unwrap_or("no error message")
        ),
    )
    .detail(why)
    .add();
}

/// Why an optional check has no evidence when it was not asked for.
fn not_run(kind: CheckKind) -> String {
    match kind {
        CheckKind::Mtu => "path MTU not probed in this run".to_string(),
        CheckKind::Capture => "no packet capture in this run".to_string(),
        CheckKind::App => {
            "no TLS or HTTP request in this run: --http, --tls or an https:// URL asks for one"
                .to_string()
        }
        CheckKind::NodePath => {
            "the node's side not read: --via-node or node/NAME reads the node's DNAT, routes, \
             overlay MTU and conntrack"
                .to_string()
        }
        other => format!("{other} not part of this run"),
    }
}
