//! Many sources at once: `deploy|sts|ds|rs|job/NAME --all-pods` or `-l SELECTOR`, optionally
//! `--per-node` and under `--max-sources`, resolved to the set of source pods to probe and
//! the matched pods that will not be, each with why (never silently dropped).
//!
//! ```text
//! selection --(workload GET | selector parse)--> label selector --(one pod list)--> matched
//!   matched --(not Running / terminating)--> skipped NotRunning
//!           --(node not Linux, each node read once)--> skipped WindowsNode
//!           --(--per-node: Ready first, then name)--> skipped SameNode
//!           --(--max-sources, round-robin across nodes)--> skipped OverLimit
//!           --> sources (Ready first, then name)
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::Api;
use kube::core::{Expression, Selector};
use netdebug_verdict::sources::{SkipReason, SkippedSource};

use super::error::{is_not_found, Call};
use super::source::{choose_container, resolved, workload_selector, ResolvedSource};
use super::spec::{SourceKind, SourceSpec};
use super::{api, labels, pods};
use crate::connect::ApiTarget;
use crate::error::{api_status, Error};
use crate::preflight::NODE_OS_LABEL;

/// Each API call resolution makes is bounded on its own, so a hung call is named rather than
/// only the whole run's `--timeout` expiring. Longer than the 5 s of the best-effort reads:
/// these are not optional, and a pod list can be long.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How many node reads are in flight at once (each distinct node is read once).
const NODE_READS_IN_FLIGHT: usize = 8;

/// How many pod names an error shows per reason before "and N more".
const NAMES_SHOWN: usize = 3;

/// How the source pods are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSelection {
    /// deploy|sts|ds|rs|job/NAME --all-pods: every pod of the workload (its selector)
    Workload { kind: SourceKind, name: String },
    /// -l SELECTOR: pods in the namespace that match (a label selector string as kubectl takes it)
    Selector(String),
}

/// What the user asked for; the CLI has already checked `max_sources` against its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesRequest {
    pub selection: SourceSelection,
    pub per_node: bool,
    pub max_sources: usize,
    /// `-c`: must exist in every pod that could be chosen (see [`resolve_sources`]).
    pub container: Option<String>,
}

/// The source pods to probe and the matched pods that will not be.
#[derive(Debug, Clone)]
pub struct ChosenSources {
    /// In the order they will be run: Ready first, then by name.
    pub sources: Vec<ResolvedSource>,
    /// Every matched pod not in `sources`, each with why.
    pub skipped: Vec<SkippedSource>,
    /// Pods the selection matched (`sources.len() + skipped.len()`).
    pub matched: usize,
    /// Distinct nodes of the chosen sources.
    pub nodes: usize,
}

/// Resolve the set of source pods in `namespace`.
///
/// Pods not Running (or terminating) and pods on nodes that do not run Linux are skipped and
/// named. With `--per-node` one pod per node is kept (Ready first, then by name). When more
/// remain than `max_sources`, they are taken round-robin across nodes so the cap keeps the
/// node diversity, and the rest are skipped as over the limit.
///
/// `-c CONTAINER` is checked against every pod that could be chosen: the pods of a workload
/// share one template, so a pod without it means the name is wrong (or the selector spans
/// unrelated pods), and [`SkipReason`] has no reason to record "lacks the container" with.
/// Rather than probe a subset chosen by accident, any such pod is an error naming them.
///
/// Errors: a selection matching no pod, or every matched pod skipped, is an error that says
/// why (exit 2 like every [`Error`]); so are a malformed selector (before any API call) and
/// `pod/NAME` as a workload.
pub async fn resolve_sources(
    client: &kube::Client,
    target: &ApiTarget,
    namespace: &str,
    request: &SourcesRequest,
) -> Result<ChosenSources, Error> {
    if request.max_sources == 0 {
        return Err(Error::InvalidInput(
            "--max-sources must be at least 1".to_string(),
        ));
    }
    let selection = Selection::new(client, namespace, &request.selection).await?;
    let query = selection.selector.to_string();
    let mut matched: Vec<Pod> = bounded(
        Call::list("pods", namespace),
        api::list::<Pod>(client, namespace, Some(&query), "pods"),
    )
    .await?
    .into_iter()
    // The server already filtered; matching again keeps a lenient server honest.
    .filter(|p| labels::matches(&selection.selector, &pods::labels(p)))
    .collect();
    if matched.is_empty() {
        return Err(selection.matches_nothing(client, namespace).await);
    }
    matched.sort_by(|a, b| pods::name(a).cmp(pods::name(b)));
    let matched_count = matched.len();

    let mut skipped = Vec::new();
    let running = skip_not_running(matched, namespace, &mut skipped);
    let node_os = read_node_os(client, target, &running).await?;
    let mut eligible = skip_not_linux(running, &node_os, namespace, &mut skipped);
    if eligible.is_empty() {
        return Err(every_pod_skipped(&selection, namespace, &skipped));
    }
    if let Some(container) = request.container.as_deref() {
        check_container(&selection, namespace, &eligible, container)?;
    }

    // Ready first, then by name (the list is already by name; the sort is stable).
    eligible.sort_by_key(|p| !pods::is_ready(p));
    if request.per_node {
        eligible = one_per_node(eligible, namespace, &mut skipped);
    }
    let mut chosen = cap_across_nodes(eligible, request.max_sources, namespace, &mut skipped);
    chosen.sort_by(|a, b| {
        (!pods::is_ready(a), pods::name(a)).cmp(&(!pods::is_ready(b), pods::name(b)))
    });

    let nodes = chosen
        .iter()
        .filter_map(|p| pods::node(p))
        .collect::<BTreeSet<_>>()
        .len();
    let sources = chosen
        .into_iter()
        .map(|pod| {
            resolved(
                pod,
                namespace,
                request.container.as_deref(),
                Some(selection.label.clone()),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChosenSources {
        sources,
        skipped,
        matched: matched_count,
        nodes,
    })
}

/// The selection made concrete: its label selector and how to name it.
struct Selection {
    selector: Selector,
    /// `deploy/web` or `-l app=web`: `picked_from` of each source, and messages.
    label: String,
    workload: bool,
}

impl Selection {
    async fn new(
        client: &kube::Client,
        namespace: &str,
        selection: &SourceSelection,
    ) -> Result<Selection, Error> {
        match selection {
            SourceSelection::Workload {
                kind: SourceKind::Pod,
                name,
            } => Err(Error::InvalidInput(format!(
                "--all-pods needs a workload (deploy/NAME, sts/NAME, ds/NAME, rs/NAME or job/NAME); \
                 pod/{name} is a single pod"
            ))),
            SourceSelection::Workload { kind, name } => {
                let spec = SourceSpec {
                    kind: *kind,
                    name: name.clone(),
                };
                let label = spec.to_string();
                let selector = bounded(
                    format!(
                        "get {} \"{name}\" in namespace \"{namespace}\"",
                        kind.singular()
                    ),
                    workload_selector(client, namespace, *kind, name),
                )
                .await?;
                let selector = workload_label_selector(selector.as_ref(), &label, namespace)?;
                Ok(Selection {
                    selector,
                    label,
                    workload: true,
                })
            }
            SourceSelection::Selector(text) => {
                let selector = parse_selector(text).map_err(|reason| {
                    Error::InvalidInput(format!("invalid label selector `{text}`: {reason}"))
                })?;
                Ok(Selection {
                    label: format!("-l {selector}"),
                    selector,
                    workload: false,
                })
            }
        }
    }

    /// The error for a selection that matched no pod. For a selector, a namespace that does
    /// not exist (the usual typo: listing there succeeds, empty) is told apart.
    async fn matches_nothing(&self, client: &kube::Client, namespace: &str) -> Error {
        if self.workload {
            return Error::NoReadyPod {
                workload: self.label.clone(),
                namespace: namespace.to_string(),
                detail: format!("its selector {} matches no pod", self.selector),
            };
        }
        let probe = tokio::time::timeout(CALL_TIMEOUT, api::namespace_labels(client, namespace));
        if let Ok(Err(e)) = probe.await {
            if is_not_found(&e) {
                return Error::NamespaceNotFound(namespace.to_string());
            }
        }
        Error::NoReadyPod {
            workload: format!("label selector {}", self.selector),
            namespace: namespace.to_string(),
            detail: "no pod there matches it".to_string(),
        }
    }

    /// `of deploy/web` or `matching -l app=web`, after "pods" in messages.
    fn what(&self) -> String {
        if self.workload {
            format!("of {}", self.label)
        } else {
            format!("matching {}", self.label)
        }
    }
}

/// A workload's `spec.selector`, refused when absent, invalid or empty (an empty selector
/// would pick every pod of the namespace), as for a single source.
fn workload_label_selector(
    selector: Option<&LabelSelector>,
    workload: &str,
    namespace: &str,
) -> Result<Selector, Error> {
    let bad_selector = |detail: String| Error::BadSelector {
        workload: workload.to_string(),
        namespace: namespace.to_string(),
        detail,
    };
    let selector = selector.ok_or_else(|| bad_selector("it has no spec.selector".to_string()))?;
    let selector = labels::from_label_selector(selector).map_err(bad_selector)?;
    if selector.selects_all() {
        return Err(bad_selector("its selector is empty".to_string()));
    }
    Ok(selector)
}

/// Run one API call (or a short sequence of them, like a GET and the namespace GET after a
/// 404) under [`CALL_TIMEOUT`].
async fn bounded<T>(
    call: impl std::fmt::Display,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Deadline(format!(
                "{call}: the API server did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            )))
        })
}

fn skip(pod: &Pod, namespace: &str, reason: SkipReason, detail: String) -> SkippedSource {
    SkippedSource {
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_string()),
        pod: pods::name(pod).to_string(),
        node: pods::node(pod).map(str::to_string),
        reason,
        detail,
    }
}

/// Keep the Running, not terminating pods; skip the others with their phase and why.
fn skip_not_running(
    matched: Vec<Pod>,
    namespace: &str,
    skipped: &mut Vec<SkippedSource>,
) -> Vec<Pod> {
    let mut running = Vec::new();
    for pod in matched {
        if pods::is_terminating(&pod) {
            skipped.push(skip(
                &pod,
                namespace,
                SkipReason::NotRunning,
                "terminating".to_string(),
            ));
        } else if !pods::is_running(&pod) {
            let detail = format!(
                "phase {}{}",
                pods::phase(&pod),
                pods::not_running_reason(&pod)
            );
            skipped.push(skip(&pod, namespace, SkipReason::NotRunning, detail));
        } else {
            running.push(pod);
        }
    }
    running
}

/// The operating system of each distinct node of `running`, each node read once: its
/// `kubernetes.io/os` label; None when the node may not be read or is gone (the pod's own
/// word is used then, as [`crate::preflight::check_linux_node`] does).
async fn read_node_os(
    client: &kube::Client,
    target: &ApiTarget,
    running: &[Pod],
) -> Result<BTreeMap<String, Option<String>>, Error> {
    let names: BTreeSet<String> = running
        .iter()
        .filter_map(|p| pods::node(p).map(str::to_string))
        .collect();
    let api: Api<Node> = Api::all(client.clone());
    let reads = futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            async move {
                let call = format!("get node {name}");
                let answer = tokio::time::timeout(CALL_TIMEOUT, api.get(&name))
                    .await
                    .map_err(|_| {
                        Error::Deadline(format!(
                            "{call}: the API server did not answer within {} s",
                            CALL_TIMEOUT.as_secs()
                        ))
                    })?;
                let os = match answer {
                    Ok(node) => node
                        .metadata
                        .labels
                        .and_then(|l| l.get(NODE_OS_LABEL).cloned()),
                    Err(e) if matches!(api_status(&e), Some(403) | Some(404)) => None,
                    Err(e) => return Err(Error::from_kube(call, e, Some(target))),
                };
                Ok::<_, Error>((name, os))
            }
        })
        .buffered(NODE_READS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    reads.into_iter().collect()
}

/// What the pod itself says about its OS when its node could not be read: `spec.os.name`,
/// else a `kubernetes.io/os` nodeSelector.
fn pod_os(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    spec.os.as_ref().map(|o| o.name.clone()).or_else(|| {
        spec.node_selector
            .as_ref()
            .and_then(|s| s.get(NODE_OS_LABEL).cloned())
    })
}

/// Skip the pods whose node does not run Linux (unknown counts as Linux).
fn skip_not_linux(
    running: Vec<Pod>,
    node_os: &BTreeMap<String, Option<String>>,
    namespace: &str,
    skipped: &mut Vec<SkippedSource>,
) -> Vec<Pod> {
    let mut linux = Vec::new();
    for pod in running {
        let node = pods::node(&pod).unwrap_or_default();
        let os = node_os
            .get(node)
            .cloned()
            .flatten()
            .or_else(|| pod_os(&pod));
        match os.as_deref() {
            None | Some("linux") => linux.push(pod),
            Some(other) => {
                let detail = format!("node {node} runs {other}");
                skipped.push(skip(&pod, namespace, SkipReason::WindowsNode, detail));
            }
        }
    }
    linux
}

/// `-c CONTAINER` must name a container of every pod that could be chosen.
fn check_container(
    selection: &Selection,
    namespace: &str,
    eligible: &[Pod],
    container: &str,
) -> Result<(), Error> {
    let lacking: Vec<&Pod> = eligible
        .iter()
        .filter(|p| !pods::container_names(p).contains(&container))
        .collect();
    match lacking.as_slice() {
        [] => Ok(()),
        // One candidate: the single-source error says it best.
        [only] if eligible.len() == 1 => choose_container(only, Some(container)).map(|_| ()),
        _ => {
            let shown: Vec<String> = lacking
                .iter()
                .take(NAMES_SHOWN)
                .map(|p| {
                    format!(
                        "{} (containers: {})",
                        pods::name(p),
                        pods::container_names(p).join(", ")
                    )
                })
                .collect();
            let have = eligible.len() - lacking.len();
            Err(Error::InvalidInput(format!(
                "container \"{container}\" is not in {} of the {} pods {} that could be probed in \
                 namespace \"{namespace}\": {}{}; {}",
                lacking.len(),
                eligible.len(),
                selection.what(),
                shown.join("; "),
                more(lacking.len()),
                if have == 0 {
                    "no pod has it".to_string()
                } else {
                    format!("{have} have it: narrow the selection or drop -c")
                }
            )))
        }
    }
}

/// `; and 4 more` when more than [`NAMES_SHOWN`] were listed.
fn more(total: usize) -> String {
    match total.saturating_sub(NAMES_SHOWN) {
        0 => String::new(),
        n => format!("; and {n} more"),
    }
}

/// `--per-node`: the first pod of each node in `ordered` is kept, the others skipped.
fn one_per_node(ordered: Vec<Pod>, namespace: &str, skipped: &mut Vec<SkippedSource>) -> Vec<Pod> {
    let mut chosen_for: BTreeMap<Option<String>, String> = BTreeMap::new();
    let mut kept = Vec::new();
    for pod in ordered {
        let node = pods::node(&pod).map(str::to_string);
        match chosen_for.get(&node) {
            Some(chosen) => {
                let detail = match &node {
                    Some(n) => format!("pod/{chosen} is the one for node {n}"),
                    None => format!("pod/{chosen} is the one for pods without a node"),
                };
                skipped.push(skip(&pod, namespace, SkipReason::SameNode, detail));
            }
            None => {
                chosen_for.insert(node, pods::name(&pod).to_string());
                kept.push(pod);
            }
        }
    }
    kept
}

/// At most `max` pods of `ordered`, taken round-robin across nodes (nodes in the order of
/// their first pod, each node's pods in order) so the cap keeps node diversity; the rest
/// skipped as over the limit, in their order.
fn cap_across_nodes(
    ordered: Vec<Pod>,
    max: usize,
    namespace: &str,
    skipped: &mut Vec<SkippedSource>,
) -> Vec<Pod> {
    if ordered.len() <= max {
        return ordered;
    }
    let mut by_node: Vec<(Option<String>, VecDeque<Pod>)> = Vec::new();
    for pod in ordered {
        let node = pods::node(&pod).map(str::to_string);
        match by_node.iter_mut().find(|(n, _)| *n == node) {
            Some((_, queue)) => queue.push_back(pod),
            None => by_node.push((node, VecDeque::from([pod]))),
        }
    }
    let mut chosen = Vec::with_capacity(max);
    'rounds: loop {
        let mut took = false;
        for (_, queue) in by_node.iter_mut() {
            if chosen.len() == max {
                break 'rounds;
            }
            if let Some(pod) = queue.pop_front() {
                chosen.push(pod);
                took = true;
            }
        }
        if !took {
            break;
        }
    }
    let mut rest: Vec<Pod> = by_node.into_iter().flat_map(|(_, q)| q).collect();
    rest.sort_by(|a, b| {
        (!pods::is_ready(a), pods::name(a)).cmp(&(!pods::is_ready(b), pods::name(b)))
    });
    skipped.extend(rest.iter().map(|pod| {
        skip(
            pod,
            namespace,
            SkipReason::OverLimit,
            format!("over --max-sources {max}"),
        )
    }));
    chosen
}

/// Every matched pod was skipped: say how many for each reason, and a few names.
fn every_pod_skipped(selection: &Selection, namespace: &str, skipped: &[SkippedSource]) -> Error {
    let mut groups: Vec<(SkipReason, Vec<&SkippedSource>)> = Vec::new();
    for s in skipped {
        match groups.iter_mut().find(|(r, _)| *r == s.reason) {
            Some((_, v)) => v.push(s),
            None => groups.push((s.reason, vec![s])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(reason, pods)| {
            let what = reason.words();
            let shown: Vec<String> = pods
                .iter()
                .take(NAMES_SHOWN)
                .map(|s| format!("{}: {}", s.pod, s.detail))
                .collect();
            format!(
                "{} {what} ({}{})",
                pods.len(),
                shown.join("; "),
                more(pods.len())
            )
        })
        .collect();
    Error::InvalidInput(format!(
        "none of the {} pod{} {} in namespace \"{namespace}\" can be probed: {}",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        selection.what(),
        parts.join("; ")
    ))
}

// ---- label selector text, as kubectl takes it ----

/// Parse a label selector as `kubectl -l` takes it: requirements separated by commas, each
/// `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)` or
/// `key notin (v1,v2)`; keys and values checked the way the API server checks them. An
/// empty selector is refused: it would pick every pod of the namespace.
pub fn parse_selector(text: &str) -> Result<Selector, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(
            "it is empty (it would select every pod of the namespace); write one like app=web"
                .to_string(),
        );
    }
    let mut expressions = Vec::new();
    for requirement in split_requirements(text)? {
        expressions.push(parse_requirement(requirement.trim())?);
    }
    Ok(expressions.into_iter().collect())
}

/// Split at the commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth > 0 => return Err("nested parentheses".to_string()),
            '(' => depth = 1,
            ')' if depth == 0 => return Err("`)` without `(`".to_string()),
            ')' => depth = 0,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth > 0 {
        return Err("`(` without `)`".to_string());
    }
    parts.push(&text[start..]);
    if let Some(i) = parts.iter().position(|p| p.trim().is_empty()) {
        return Err(format!("requirement {} is empty (a stray comma?)", i + 1));
    }
    Ok(parts)
}

fn parse_requirement(r: &str) -> Result<Expression, String> {
    if let Some(key) = r.strip_prefix('!') {
        let key = key.trim();
        check_key(key, r)?;
        return Ok(Expression::DoesNotExist(key.to_string()));
    }
    if let Some((key, value)) = r.split_once("!=") {
        let (key, value) = (key.trim(), value.trim());
        check_key(key, r)?;
        check_value(value, r)?;
        return Ok(Expression::NotEqual(key.to_string(), value.to_string()));
    }
    if let Some((key, value)) = r.split_once('=') {
        let key = key.trim();
        let value = value.strip_prefix('=').unwrap_or(value).trim();
        check_key(key, r)?;
        check_value(value, r)?;
        return Ok(Expression::Equal(key.to_string(), value.to_string()));
    }
    if let Some((head, rest)) = r.split_once('(') {
        let values = rest
            .trim_end()
            .strip_suffix(')')
            .ok_or_else(|| format!("`{r}`: nothing may follow the `)`"))?;
        let mut words = head.split_whitespace();
        let (key, op) = match (words.next(), words.next(), words.next()) {
            (Some(key), Some(op), None) => (key, op),
            _ => {
                return Err(format!(
                    "`{r}`: expected `KEY in (VALUES)` or `KEY notin (VALUES)`"
                ))
            }
        };
        check_key(key, r)?;
        let values: BTreeSet<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.len() == 1 && values.contains("") {
            return Err(format!("`{r}`: the set of values is empty"));
        }
        for v in &values {
            check_value(v, r)?;
        }
        return match op {
            "in" => Ok(Expression::In(key.to_string(), values)),
            "notin" => Ok(Expression::NotIn(key.to_string(), values)),
            other => Err(format!(
                "`{r}`: unknown operator `{other}` (expected in or notin)"
            )),
        };
    }
    if r.contains(['<', '>']) {
        return Err(format!(
            "`{r}`: the operators < and > are for node selectors, not pod label selectors"
        ));
    }
    if r.contains(char::is_whitespace) {
        return Err(format!(
            "`{r}`: expected KEY, !KEY, KEY=VALUE, KEY!=VALUE, KEY in (VALUES) or KEY notin (VALUES)"
        ));
    }
    check_key(r, r)?;
    Ok(Expression::Exists(r.to_string()))
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name of up to 63
/// characters (alphanumerics, `-`, `_`, `.`, beginning and ending with an alphanumeric).
fn check_key(key: &str, requirement: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "`{requirement}`: key prefix `{prefix}` is not a DNS subdomain (like example.com)"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!("`{requirement}`: the key is empty"));
    }
    if !is_label_name(name) {
        return Err(format!(
            "`{requirement}`: key `{key}` is not a valid label key (up to 63 letters, digits, \
             `-`, `_` or `.`, beginning and ending with a letter or digit, optionally after a \
             DNS prefix and `/`)"
        ));
    }
    Ok(())
}

/// A label value: empty, or up to 63 characters like a key's name.
fn check_value(value: &str, requirement: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        return Ok(());
    }
    Err(format!(
        "`{requirement}`: value `{value}` is not a valid label value (up to 63 letters, \
         digits, `-`, `_` or `.`, beginning and ending with a letter or digit)"
    ))
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        parse_selector(text).unwrap().to_string()
    }

    #[test]
    fn selector_forms_kubectl_takes() {
        assert_eq!(ok("app=web"), "app=web");
        assert_eq!(ok(" app == web , tier!=db "), "app=web,tier!=db");
        assert_eq!(
            ok("env in (prod, staging),!canary"),
            "env in (prod,staging),!canary"
        );
        assert_eq!(
            ok("app.kubernetes.io/name notin (a)"),
            "app.kubernetes.io/name notin (a)"
        );
        assert_eq!(ok("tier"), "tier");
        assert_eq!(ok("app="), "app=");
    }

    #[test]
    fn malformed_selectors_say_why() {
        for (text, why) in [
            ("", "empty"),
            ("app=web,", "stray comma"),
            ("app=we b", "not a valid label value"),
            ("-app=web", "not a valid label key"),
            ("app in (a,b", "`(` without `)`"),
            ("app in ()", "empty"),
            ("app within (a)", "unknown operator `within`"),
            ("replicas>3", "node selectors"),
            ("app web", "expected KEY"),
            ("Example.com/app=web", "DNS subdomain"),
            ("app=web=x", "not a valid label value"),
        ] {
            let err = parse_selector(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
