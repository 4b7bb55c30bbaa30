//! What the aggregate did not see, as `unchecked` entries: sources whose probe did not run,
//! pods the selection matched that were skipped (collapsed by reason when many), sources
//! whose own verdict was inconclusive, and checks that did not run in the sources.

use std::collections::BTreeMap;

use super::{SkipReason, SkippedSource, SourceRun, SourcesInputs};
use crate::model::{Unchecked, Verdict};
use crate::words::{list, plural};

/// The `check` of an entry about a whole source.
pub const SOURCE: &str = "source";
/// The `check` of an entry about matched pods that were not probed.
pub const SKIPPED: &str = "skipped";

/// What a skipped pod leaves open: its path, unless another pod of its node stands for it.
fn leaves_open(r: SkipReason) -> &'static str {
    match r {
        SkipReason::SameNode => "only pod-level differences on that node go unseen",
        _ => "their paths are not covered",
    }
}

fn pod_words(s: &SkippedSource) -> String {
    if s.detail.is_empty() {
        s.pod.clone()
    } else {
        format!("{} ({})", s.pod, s.detail)
    }
}

/// Sources with a `problem`, one entry each, and skipped pods, one entry per reason.
pub fn sources_not_run(inputs: &SourcesInputs) -> Vec<Unchecked> {
    let mut out: Vec<Unchecked> = inputs
        .sources
        .iter()
        .filter_map(|s| {
            let problem = s.problem.as_ref()?;
            let node = s
                .node
                .as_deref()
                .map(|n| format!(" on {n}"))
                .unwrap_or_default();
            Some(Unchecked {
                check: SOURCE.into(),
                reason: format!(
                    "{}{node} was not probed: {problem}; its path is not covered",
                    s.pod
                ),
                missing_capability: None,
            })
        })
        .collect();
    // Reasons in the order they first appear.
    let mut by: Vec<(SkipReason, Vec<String>)> = Vec::new();
    for s in &inputs.skipped {
        match by.iter_mut().find(|(r, _)| *r == s.reason) {
            Some((_, pods)) => pods.push(pod_words(s)),
            None => by.push((s.reason, vec![pod_words(s)])),
        }
    }
    for (reason, pods) in by {
        out.push(Unchecked {
            check: SKIPPED.into(),
            reason: format!(
                "{} {}: {}; {}",
                plural(pods.len() as u64, "pod", "pods"),
                reason.words(),
                list(&pods, 3),
                leaves_open(reason)
            ),
            missing_capability: None,
        });
    }
    out
}

/// Sources whose probe ran but whose own verdict could not judge the path.
pub fn inconclusive<'a>(ran: impl Iterator<Item = (&'a SourceRun, &'a Verdict)>) -> Vec<Unchecked> {
    ran.filter(|(_, v)| v.status == crate::Status::Inconclusive)
        .map(|(s, v)| Unchecked {
            check: SOURCE.into(),
            reason: format!(
                "{}: inconclusive ({}); it counts neither as working nor as failing",
                s.pod, v.headline
            ),
            missing_capability: None,
        })
        .collect()
}

/// Checks that did not run in the sources, one entry per check and reason, naming the
/// sources (or "every source").
pub fn checks_not_run<'a>(
    ran: impl Iterator<Item = (&'a SourceRun, &'a Verdict)>,
) -> Vec<Unchecked> {
    let ran: Vec<(&SourceRun, &Verdict)> = ran.collect();
    let mut by: BTreeMap<(&str, &str, Option<&str>), Vec<String>> = BTreeMap::new();
    for (s, v) in &ran {
        for u in &v.unchecked {
            by.entry((&u.check, &u.reason, u.missing_capability.as_deref()))
                .or_default()
                .push(s.pod.clone());
        }
    }
    by.into_iter()
        .map(|((check, reason, cap), pods)| Unchecked {
            check: check.to_string(),
            reason: if pods.len() == ran.len() && ran.len() > 1 {
                format!("{reason} (every source)")
            } else {
                format!("{reason} ({})", list(&pods, 3))
            },
            missing_capability: cap.map(str::to_string),
        })
        .collect()
}
