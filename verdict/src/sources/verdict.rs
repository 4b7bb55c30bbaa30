//! `evaluate_sources`: every source's own verdict, the matrix, the split, and the finding
//! that explains the split, with what the aggregate did not see.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::differences::{self, Difference, Seen};
use super::gaps;
use super::matrix::{self, Cell, Matrix, Row};
use super::split::{self, Judged, Outcome, Split};
use super::{SourceRun, SourcesInputs};
use crate::facts::Facts;
use crate::model::{Status, Unchecked, Verdict};
use crate::words::{list, plural};

/// At most this many failing pods (or nodes) are compared with a working source: the
/// differences of a few are the pattern, those of a hundred a dump.
const MAX_COMPARED: usize = 3;

/// One source's own verdict (only for sources whose probe ran).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceVerdict {
    /// The session id (`src-1`).
    pub id: String,
    pub pod: String,
    pub node: Option<String>,
    pub verdict: Verdict,
}

/// The outcome of [`evaluate_sources`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourcesVerdict {
    pub status: Status,
    /// Short words for the header: `no DNS answer from web-2 only (1 of 2 pods)`.
    pub headline: String,
    pub split: Split,
    /// One sentence: where the split points, with the failing sources' own cause.
    pub cause: Option<String>,
    /// What the cause rests on: per target, which sources saw what.
    pub evidence: Vec<String>,
    /// Facts that differ between failing and working sources.
    pub differences: Vec<Difference>,
    pub next: Vec<String>,
    pub matrix: Matrix,
    pub per_source: Vec<SourceVerdict>,
    /// Sources not run, skipped pods, inconclusive sources and checks that did not run.
    pub unchecked: Vec<Unchecked>,
    /// How much the verdict covers, and the client's notes about the run.
    pub notes: Vec<String>,
}

impl SourcesVerdict {
    /// 0 every judged source healthy, 1 a problem was found from some source, 2 no source
    /// produced evidence to judge by.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            Status::Healthy => 0,
            Status::Degraded | Status::Failed => 1,
            Status::Inconclusive => 2,
        }
    }
}

/// One source with what was worked out about it.
struct Judgement<'a> {
    run: &'a SourceRun,
    facts: Option<Facts<'a>>,
    verdict: Option<Verdict>,
    judged: Judged,
}

impl Judgement<'_> {
    fn node(&self) -> Option<&str> {
        self.run.node.as_deref()
    }

    fn seen(&self) -> Option<Seen<'_>> {
        Some(Seen {
            id: &self.run.id,
            pod: &self.run.pod,
            node: self.node(),
            facts: self.facts.as_ref()?,
        })
    }
}

/// Judge every source, then all of them together. Pure.
pub fn evaluate_sources(inputs: &SourcesInputs) -> SourcesVerdict {
    let judgements: Vec<Judgement> = inputs
        .sources
        .iter()
        .map(|run| {
            // A source with a problem has no probe evidence: its verdict would only say so.
            let ran = run.problem.is_none();
            let verdict = ran.then(|| crate::evaluate(&run.inputs));
            Judgement {
                run,
                facts: ran.then(|| Facts::gather(&run.inputs)),
                judged: Judged::of(verdict.as_ref().map(|v| v.status)),
                verdict,
            }
        })
        .collect();

    let matrix = build_matrix(&judgements);
    let outcomes: Vec<Outcome> = judgements
        .iter()
        .map(|j| Outcome {
            pod: &j.run.pod,
            node: j.node(),
            judged: j.judged,
        })
        .collect();
    let split = split::split(&outcomes);
    let failing: Vec<&Judgement> = judgements
        .iter()
        .filter(|j| j.judged == Judged::Fails)
        .collect();
    let working: Vec<&Judgement> = judgements
        .iter()
        .filter(|j| j.judged == Judged::Works)
        .collect();

    let status = match &split {
        Split::NothingRan => Status::Inconclusive,
        Split::WorksEverywhere => Status::Healthy,
        _ if failing
            .iter()
            .any(|j| j.verdict.as_ref().map(|v| v.status) == Some(Status::Failed)) =>
        {
            Status::Failed
        }
        _ => Status::Degraded,
    };
    let differences = differences_for(&split, &failing, &working);
    let primary = primary_failure(&failing);
    let headline = headline(&split, &judgements, &failing, &working, primary);
    let cause = cause(&split, &failing, &working, primary);
    let evidence = evidence(&matrix, &failing);
    let next = next_steps(&split, &failing, &working, &differences);

    let mut unchecked = gaps::sources_not_run(inputs);
    unchecked.extend(gaps::inconclusive(
        judgements
            .iter()
            .filter_map(|j| Some((j.run, j.verdict.as_ref()?))),
    ));
    unchecked.extend(gaps::checks_not_run(
        judgements
            .iter()
            .filter_map(|j| Some((j.run, j.verdict.as_ref()?))),
    ));
    let mut notes = vec![coverage(inputs, &judgements)];
    if let Split::FailsOnSomeNodes { nodes } = &split {
        let alone = nodes.iter().all(|n| {
            judgements
                .iter()
                .filter(|j| j.node() == Some(n.as_str()) && j.judged != Judged::Unknown)
                .count()
                == 1
        });
        if alone {
            notes.push(
                "one pod per failing node: a problem in that pod's own namespace would look \
                 the same; a second pod on the node would tell them apart"
                    .into(),
            );
        }
    }
    notes.extend(inputs.notes.iter().cloned());

    SourcesVerdict {
        status,
        headline,
        split,
        cause,
        evidence,
        differences,
        next,
        matrix,
        per_source: judgements
            .iter()
            .filter_map(|j| {
                Some(SourceVerdict {
                    id: j.run.id.clone(),
                    pod: j.run.pod.clone(),
                    node: j.run.node.clone(),
                    verdict: j.verdict.clone()?,
                })
            })
            .collect(),
        unchecked,
        notes,
    }
}

fn build_matrix(judgements: &[Judgement]) -> Matrix {
    let ran: Vec<&Facts> = judgements.iter().filter_map(|j| j.facts.as_ref()).collect();
    let columns = matrix::columns(&ran);
    let mut rows: Vec<Row> = judgements
        .iter()
        .map(|j| Row {
            source: j.run.id.clone(),
            pod: j.run.pod.clone(),
            node: j.run.node.clone(),
            status: j.verdict.as_ref().map(|v| v.status),
            cells: match &j.facts {
                Some(f) => matrix::cells(f, &columns),
                None => vec![Cell::NotRun; columns.len()],
            },
        })
        .collect();
    // Grouped by node (unknown last), then by pod name.
    rows.sort_by(|a, b| {
        (a.node.is_none(), &a.node, &a.pod).cmp(&(b.node.is_none(), &b.node, &b.pod))
    });
    Matrix { columns, rows }
}

/// The failing source whose verdict stands for the others: the one whose headline most
/// failing sources share (the first of them).
fn primary_failure<'a>(failing: &[&'a Judgement<'a>]) -> Option<&'a Judgement<'a>> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for j in failing {
        if let Some(v) = &j.verdict {
            *counts.entry(&v.headline).or_default() += 1;
        }
    }
    let most = counts.values().copied().max()?;
    failing.iter().copied().find(|j| {
        j.verdict
            .as_ref()
            .is_some_and(|v| counts.get(v.headline.as_str()) == Some(&most))
    })
}

fn nodes_of<'a>(js: impl IntoIterator<Item = &'a &'a Judgement<'a>>) -> BTreeSet<&'a str> {
    js.into_iter().filter_map(|j| j.node()).collect()
}

/// `4 pods on 2 nodes`.
fn pods_on_nodes(pods: usize, nodes: usize) -> String {
    if nodes == 0 {
        plural(pods as u64, "pod", "pods")
    } else {
        format!(
            "{} on {}",
            plural(pods as u64, "pod", "pods"),
            plural(nodes as u64, "node", "nodes")
        )
    }
}

fn pod_list(js: &[&Judgement]) -> String {
    let names: Vec<String> = js.iter().map(|j| j.run.pod.clone()).collect();
    list(&names, 3)
}

fn headline(
    split: &Split,
    all: &[Judgement],
    failing: &[&Judgement],
    working: &[&Judgement],
    primary: Option<&Judgement>,
) -> String {
    let what = primary
        .and_then(|p| p.verdict.as_ref())
        .map(|v| v.headline.clone())
        .unwrap_or_else(|| "fails".into());
    let judged = failing.len() + working.len();
    match split {
        Split::FailsEverywhere => format!(
            "{what} from every source ({})",
            pods_on_nodes(failing.len(), nodes_of(failing).len())
        ),
        Split::FailsOnSomeNodes { nodes } => format!(
            "{what} from the pods of {} only ({} of {judged} pods); {} work",
            list(nodes, 3),
            failing.len(),
            list(
                &nodes_of(working)
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>(),
                3
            )
        ),
        Split::FailsInSomePods { .. } => format!(
            "{what} from {} only ({} of {judged} pods); {}",
            pod_list(failing),
            failing.len(),
            if working.len() == 1 {
                format!("{} works", working[0].run.pod)
            } else {
                format!("{} others work", working.len())
            }
        ),
        Split::WorksEverywhere => format!(
            "works from {}",
            pods_on_nodes(working.len(), nodes_of(working).len())
        ),
        Split::NothingRan => format!(
            "no source could be judged ({} chosen)",
            plural(all.len() as u64, "pod", "pods")
        ),
    }
}

fn cause(
    split: &Split,
    failing: &[&Judgement],
    working: &[&Judgement],
    primary: Option<&Judgement>,
) -> Option<String> {
    let own = primary
        .and_then(|p| Some((p, p.verdict.as_ref()?.cause.as_ref()?)))
        .map(|(p, c)| format!(" ({}: {c})", p.run.pod))
        .unwrap_or_default();
    match split {
        Split::FailsEverywhere => Some(format!(
            "the destination side: every source fails alike, so what they share, the \
             destination and the way to it, is where to look{own}"
        )),
        Split::FailsOnSomeNodes { nodes } => Some(format!(
            "a node-level problem on {}: every pod there fails, while the pods of {} work{own}",
            list(nodes, 3),
            list(
                &nodes_of(working)
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>(),
                3
            )
        )),
        Split::FailsInSomePods { .. } => {
            let shares_node = failing
                .iter()
                .any(|f| f.node().is_some() && working.iter().any(|w| w.node() == f.node()));
            let context = if shares_node {
                "pods on the same node work"
            } else {
                "other pods work"
            };
            Some(format!(
                "something in the network namespace of {}: {context}, so the node and the \
                 destination are not the cause{own}",
                pod_list(failing)
            ))
        }
        Split::WorksEverywhere | Split::NothingRan => None,
    }
}

/// Per target that failed from some source: who saw what (`svc/web:80 (10.96.0.10:80):
/// timeout from web-2, web-5; ok from 10`).
fn evidence(m: &Matrix, failing: &[&Judgement]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, col) in m.columns.iter().enumerate() {
        let mut by: Vec<(Cell, Vec<String>)> = Vec::new();
        for r in &m.rows {
            let Some(c) = r.cells.get(i).copied() else {
                continue;
            };
            match by.iter_mut().find(|(x, _)| *x == c) {
                Some((_, pods)) => pods.push(r.pod.clone()),
                None => by.push((c, vec![r.pod.clone()])),
            }
        }
        if !by.iter().any(|(c, _)| c.failed()) {
            continue;
        }
        by.sort_by_key(|(c, _)| !c.failed());
        // Gaps are in the matrix and under not checked: here only what was seen.
        let parts: Vec<String> = by
            .iter()
            .filter(|(c, _)| *c != Cell::NotRun)
            .map(|(c, pods)| {
                if pods.len() == m.rows.len() {
                    format!("{} from every source", c.as_str())
                } else if pods.len() > 3 {
                    format!("{} from {} pods", c.as_str(), pods.len())
                } else {
                    format!("{} from {}", c.as_str(), list(pods, 3))
                }
            })
            .collect();
        out.push(format!("{}: {}", col.name(), parts.join("; ")));
    }
    // Failures the matrix has no column for (MTU of the whole path, CLOSE-WAIT, conntrack):
    // each failing source's own primary finding.
    if out.is_empty() {
        for j in failing.iter().take(MAX_COMPARED) {
            if let Some(v) = &j.verdict {
                out.push(format!("{}: {}", j.run.pod, v.headline));
            }
        }
    }
    out
}

/// Failing sources compared with working ones: per failing pod (a working pod of the same
/// node when there is one), or per failing node (its first pod against a working node's).
fn differences_for(
    split: &Split,
    failing: &[&Judgement],
    working: &[&Judgement],
) -> Vec<Difference> {
    let pick_working = |f: &Judgement| -> Option<&Judgement> {
        working
            .iter()
            .copied()
            .find(|w| w.node().is_some() && w.node() == f.node())
            .or_else(|| working.first().copied())
    };
    let pairs: Vec<(&Judgement, &Judgement)> = match split {
        Split::FailsInSomePods { .. } => failing
            .iter()
            .take(MAX_COMPARED)
            .filter_map(|f| Some((*f, pick_working(f)?)))
            .collect(),
        Split::FailsOnSomeNodes { nodes } => nodes
            .iter()
            .take(MAX_COMPARED)
            .filter_map(|n| {
                let f = failing.iter().find(|f| f.node() == Some(n.as_str()))?;
                Some((*f, *working.first()?))
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<Difference> = Vec::new();
    for (f, w) in pairs {
        if let (Some(fs), Some(ws)) = (f.seen(), w.seen()) {
            out.extend(differences::between(&fs, &ws));
        }
    }
    out
}

fn next_steps(
    split: &Split,
    failing: &[&Judgement],
    working: &[&Judgement],
    differences: &[Difference],
) -> Vec<String> {
    let mut out = Vec::new();
    let dns = differences.iter().any(|d| {
        matches!(
            d.what,
            differences::Fact::ResolvNameservers
                | differences::Fact::ResolvSearch
                | differences::Fact::ResolvNdots
                | differences::Fact::DnsServerReached
        )
    });
    match split {
        Split::FailsInSomePods { .. } if dns => {
            if let (Some(f), Some(w)) = (failing.first(), working.first()) {
                out.push(format!(
                    "kubectl get pod {} -n {} -o jsonpath='{{.spec.dnsPolicy}} {{.spec.dnsConfig}}'   \
                     # compare with {}",
                    f.run.pod, f.run.namespace, w.run.pod
                ));
            }
        }
        Split::FailsOnSomeNodes { nodes } => {
            if let Some(n) = nodes.first() {
                out.push(format!("kubectl describe node {n}"));
            }
        }
        _ => {}
    }
    // The failing sources' own next step, from the one that stands for them.
    if let Some(v) = primary_failure(failing).and_then(|p| p.verdict.as_ref()) {
        for n in &v.next {
            if out.len() >= 2 {
                break;
            }
            // The same command with a comment of ours is the same step.
            let command = |s: &str| s.split('#').next().unwrap_or_default().trim().to_string();
            if !out.iter().any(|o| command(o) == command(n)) {
                out.push(n.clone());
            }
        }
    }
    out
}

/// `judged from 4 of 6 chosen pods on 2 nodes; 2 not judged (see unchecked)`.
fn coverage(inputs: &SourcesInputs, js: &[Judgement]) -> String {
    let judged: Vec<&Judgement> = js.iter().filter(|j| j.judged != Judged::Unknown).collect();
    let chosen = js.len() + inputs.skipped.len();
    let nodes: BTreeSet<&str> = judged.iter().filter_map(|j| j.node()).collect();
    let mut s = format!(
        "judged from {} (of {} matched)",
        pods_on_nodes(judged.len(), nodes.len()),
        plural(chosen as u64, "pod", "pods")
    );
    let gap = chosen - judged.len();
    if gap > 0 {
        s.push_str(&format!(
            "; {} not judged (see not checked)",
            plural(gap as u64, "pod", "pods")
        ));
    }
    s
}
