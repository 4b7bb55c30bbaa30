//! Which sources fail and which work, and what that pattern points at: the destination
//! (every source fails), some nodes (every source of those nodes fails, the others work), or
//! some pods (failing and working sources share a node, or all sources are on one node).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::Status;

/// The pattern of failures across the sources that were judged (ran, and got a healthy,
/// degraded or failed verdict; inconclusive ones count neither way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Split {
    /// Every judged source fails: the destination side.
    FailsEverywhere,
    /// Every judged source on these nodes fails, every one on the other nodes works: a
    /// node-level problem.
    FailsOnSomeNodes { nodes: Vec<String> },
    /// These pods fail while others on the same node work (or all sources share one node):
    /// something in those pods' own network namespaces.
    FailsInSomePods { pods: Vec<String> },
    /// Every judged source works.
    WorksEverywhere,
    /// No source produced a verdict to judge by.
    NothingRan,
}

/// How one source came out, for the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judged {
    Works,
    Fails,
    /// Not run, or inconclusive.
    Unknown,
}

impl Judged {
    pub fn of(status: Option<Status>) -> Judged {
        match status {
            Some(Status::Healthy) => Judged::Works,
            Some(Status::Degraded | Status::Failed) => Judged::Fails,
            Some(Status::Inconclusive) | None => Judged::Unknown,
        }
    }
}

/// One source as the split sees it.
pub(crate) struct Outcome<'a> {
    pub pod: &'a str,
    pub node: Option<&'a str>,
    pub judged: Judged,
}

pub(crate) fn split(sources: &[Outcome]) -> Split {
    let judged: Vec<&Outcome> = sources
        .iter()
        .filter(|s| s.judged != Judged::Unknown)
        .collect();
    let failing: Vec<&Outcome> = judged
        .iter()
        .copied()
        .filter(|s| s.judged == Judged::Fails)
        .collect();
    if judged.is_empty() {
        return Split::NothingRan;
    }
    if failing.is_empty() {
        return Split::WorksEverywhere;
    }
    if failing.len() == judged.len() {
        return Split::FailsEverywhere;
    }
    // Per node: does any source fail, does any work? A node is only known by name: a source
    // without one cannot show a node-level pattern.
    let mut by_node: BTreeMap<&str, (bool, bool)> = BTreeMap::new();
    let mut all_known = true;
    for s in &judged {
        let Some(node) = s.node else {
            all_known = false;
            continue;
        };
        let e = by_node.entry(node).or_default();
        match s.judged {
            Judged::Fails => e.0 = true,
            _ => e.1 = true,
        }
    }
    let mixed = by_node.values().any(|(fails, works)| *fails && *works);
    if all_known && by_node.len() > 1 && !mixed {
        let nodes = by_node
            .iter()
            .filter(|(_, (fails, _))| *fails)
            .map(|(n, _)| n.to_string())
            .collect();
        return Split::FailsOnSomeNodes { nodes };
    }
    let pods: BTreeSet<String> = failing.iter().map(|s| s.pod.to_string()).collect();
    Split::FailsInSomePods {
        pods: pods.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o<'a>(pod: &'a str, node: Option<&'a str>, judged: Judged) -> Outcome<'a> {
        Outcome { pod, node, judged }
    }

    #[test]
    fn unknown_sources_count_neither_way() {
        let s = [
            o("a", Some("n1"), Judged::Fails),
            o("b", Some("n1"), Judged::Unknown),
        ];
        assert_eq!(split(&s), Split::FailsEverywhere);
        assert_eq!(split(&[o("b", None, Judged::Unknown)]), Split::NothingRan);
    }

    #[test]
    fn one_node_with_a_failing_and_a_working_pod_is_the_pods() {
        let s = [
            o("a", Some("n1"), Judged::Fails),
            o("b", Some("n1"), Judged::Works),
        ];
        assert_eq!(
            split(&s),
            Split::FailsInSomePods {
                pods: vec!["a".into()]
            }
        );
    }

    #[test]
    fn whole_nodes_failing_is_the_nodes_unless_a_node_is_unknown() {
        let s = [
            o("a", Some("n1"), Judged::Fails),
            o("b", Some("n1"), Judged::Fails),
            o("c", Some("n2"), Judged::Works),
        ];
        assert_eq!(
            split(&s),
            Split::FailsOnSomeNodes {
                nodes: vec!["n1".into()]
            }
        );
        let s = [
            o("a", Some("n1"), Judged::Fails),
            o("c", None, Judged::Works),
            o("d", Some("n2"), Judged::Works),
        ];
        assert!(matches!(split(&s), Split::FailsInSomePods { .. }));
    }
}
