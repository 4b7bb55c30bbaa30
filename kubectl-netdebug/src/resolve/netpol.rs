//! Static NetworkPolicy evaluation (networking.k8s.io/v1): does the policy set admit this
//! peer and port, and which policy decides? Pure functions over `k8s_openapi` types, so every
//! rule of the API's semantics is unit tested:
//! - a policy applies to a pod in its own namespace whose labels its `podSelector` matches
//!   (empty selector: every pod), for each direction in `policyTypes`; unset `policyTypes`
//!   means Ingress, plus Egress when the policy has egress rules (the API server's default);
//! - a pod selected for a direction is isolated in it: only what some rule of some selecting
//!   policy admits is allowed (rules are a union; no rule at all admits nothing);
//! - a rule admits a connection when a peer matches (no peers: every peer) and a port matches
//!   (no ports: every port);
//! - a peer is an `ipBlock` (CIDR minus `except`), or pods by `podSelector` in the policy's
//!   namespace, or every pod of the namespaces a `namespaceSelector` matches, or both
//!   selectors together (pods matching in matching namespaces);
//! - a port matches by protocol (default TCP) and number, a range with `endPort`, or a name
//!   looked up in the destination pod's container ports; no port: every port.
//!
//! What cannot be known statically (a host name's IP, a namespace's labels we may not read,
//! a named port without the destination pod) makes a match `Unknown`, never a guess.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels::{self, Labels};
use super::pods;

/// The label every namespace carries with its own name (Kubernetes 1.21+).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    fn policy_type(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    /// The peer's role in messages: the source for ingress, the destination for egress.
    fn peer_word(self) -> &'static str {
        match self {
            Direction::Ingress => "source",
            Direction::Egress => "destination",
        }
    }
}

/// A three-valued match: statically unknowable facts stay unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Yes,
    No,
    Unknown,
}

impl Match {
    fn from_bool(b: bool) -> Match {
        if b {
            Match::Yes
        } else {
            Match::No
        }
    }

    /// Logical and: No wins, then Unknown.
    fn and(self, other: Match) -> Match {
        match (self, other) {
            (Match::No, _) | (_, Match::No) => Match::No,
            (Match::Unknown, _) | (_, Match::Unknown) => Match::Unknown,
            _ => Match::Yes,
        }
    }

    /// Logical or over many: Yes wins, then Unknown.
    fn any(items: impl IntoIterator<Item = Match>) -> Match {
        let mut out = Match::No;
        for m in items {
            match m {
                Match::Yes => return Match::Yes,
                Match::Unknown => out = Match::Unknown,
                Match::No => {}
            }
        }
        out
    }
}

/// A namespace's labels; `complete` is false when they could not be read and only the
/// always-present `kubernetes.io/metadata.name` is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceLabels {
    pub labels: Labels,
    pub complete: bool,
}

impl NamespaceLabels {
    pub fn known(labels: Labels) -> Self {
        NamespaceLabels {
            labels,
            complete: true,
        }
    }

    /// Only the name label, which the API server sets on every namespace.
    pub fn name_only(namespace: &str) -> Self {
        NamespaceLabels {
            labels: [(NAMESPACE_NAME_LABEL.to_string(), namespace.to_string())].into(),
            complete: false,
        }
    }
}

/// A pod at the other end of the connection.
#[derive(Debug, Clone)]
pub struct PeerPod<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub labels: &'a Labels,
    pub namespace_labels: &'a NamespaceLabels,
}

/// What is known of the other end: its pod (if it is one we know) and its IP.
#[derive(Debug, Clone, Default)]
pub struct Peer<'a> {
    pub pod: Option<PeerPod<'a>>,
    pub ip: Option<IpAddr>,
    /// When the peer is neither a known pod nor an IP: its host name, for messages.
    pub host: Option<&'a str>,
}

/// The connection's destination port. Named policy ports are container port names of the
/// destination pod (for ingress the selected pod, for egress the peer).
#[derive(Debug, Clone, Copy)]
pub struct PortContext<'a> {
    pub port: u16,
    pub protocol: &'a str,
    pub destination_pod: Option<&'a Pod>,
}

/// `policyTypes`, with the API server's defaulting when unset.
pub fn policy_types(policy: &NetworkPolicy) -> BTreeSet<Direction> {
    let Some(spec) = policy.spec.as_ref() else {
        return [Direction::Ingress].into();
    };
    match spec.policy_types.as_ref().filter(|t| !t.is_empty()) {
        Some(types) => [Direction::Ingress, Direction::Egress]
            .into_iter()
            .filter(|d| types.iter().any(|t| t == d.policy_type()))
            .collect(),
        None => {
            let mut set: BTreeSet<Direction> = [Direction::Ingress].into();
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                set.insert(Direction::Egress);
            }
            set
        }
    }
}

/// Whether `policy` selects the pod (namespace + labels) for `direction`.
pub fn selects(
    policy: &NetworkPolicy,
    pod_namespace: &str,
    pod_labels: &Labels,
    direction: Direction,
) -> bool {
    if policy.metadata.namespace.as_deref() != Some(pod_namespace) {
        return false;
    }
    if !policy_types(policy).contains(&direction) {
        return false;
    }
    let selector = policy.spec.as_ref().and_then(|s| s.pod_selector.clone());
    selector_matches(selector.as_ref(), pod_labels) == Match::Yes
}

/// A label selector against labels; absent or empty selects everything; an invalid
/// operator matches nothing (the API server would have refused it).
fn selector_matches(selector: Option<&LabelSelector>, labels: &Labels) -> Match {
    match selector {
        None => Match::Yes,
        Some(sel) => match labels::from_label_selector(sel) {
            Ok(s) => Match::from_bool(labels::matches(&s, labels)),
            Err(_) => Match::No,
        },
    }
}

/// A namespaceSelector against a namespace whose labels may be incomplete: when only the name
/// label is known, a selector on other keys is Unknown (unless it already fails on the name).
fn namespace_selector_matches(sel: &LabelSelector, ns: &NamespaceLabels) -> Match {
    let Ok(selector) = labels::from_label_selector(sel) else {
        return Match::No;
    };
    let matched = labels::matches(&selector, &ns.labels);
    if ns.complete {
        return Match::from_bool(matched);
    }
    let only_name = labels::keys(&selector)
        .iter()
        .all(|k| k == NAMESPACE_NAME_LABEL);
    if only_name {
        return Match::from_bool(matched);
    }
    // Requirements on the name label alone can still rule the namespace out.
    let name_part: LabelSelector = LabelSelector {
        match_labels: sel.match_labels.as_ref().map(|m| {
            m.iter()
                .filter(|(k, _)| *k == NAMESPACE_NAME_LABEL)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        match_expressions: sel.match_expressions.as_ref().map(|e| {
            e.iter()
                .filter(|r| r.key == NAMESPACE_NAME_LABEL)
                .cloned()
                .collect()
        }),
    };
    match labels::from_label_selector(&name_part) {
        Ok(s) if !labels::matches(&s, &ns.labels) => Match::No,
        _ => Match::Unknown,
    }
}

/// One peer entry of a rule against the peer. `policy_namespace` scopes a lone podSelector.
pub fn peer_matches(entry: &NetworkPolicyPeer, policy_namespace: &str, peer: &Peer) -> Match {
    if let Some(block) = &entry.ip_block {
        return match peer.ip {
            Some(ip) => ip_block_contains(&block.cidr, block.except.as_deref(), ip),
            None => Match::Unknown,
        };
    }
    if entry.pod_selector.is_none() && entry.namespace_selector.is_none() {
        // An empty peer entry is invalid in the API; it admits nothing.
        return Match::No;
    }
    let Some(pod) = &peer.pod else {
        // An IP that may or may not be a pod, or a host name: selectors cannot be judged.
        return Match::Unknown;
    };
    let namespace_ok = match &entry.namespace_selector {
        None => Match::from_bool(pod.namespace == policy_namespace),
        Some(sel) => namespace_selector_matches(sel, pod.namespace_labels),
    };
    let pod_ok = selector_matches(entry.pod_selector.as_ref(), pod.labels);
    namespace_ok.and(pod_ok)
}

/// `cidr` minus `except`; an unparsable CIDR matches nothing (the API validates them).
pub fn ip_block_contains(cidr: &str, except: Option<&[String]>, ip: IpAddr) -> Match {
    let Ok(net) = cidr.parse::<ipnet::IpNet>() else {
        return Match::No;
    };
    if !net.contains(&ip) {
        return Match::No;
    }
    let excluded = except
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.parse::<ipnet::IpNet>().ok())
        .any(|e| e.contains(&ip));
    Match::from_bool(!excluded)
}

/// One port entry against the connection's port.
pub fn port_matches(entry: &NetworkPolicyPort, ctx: &PortContext) -> Match {
    let protocol = entry.protocol.as_deref().unwrap_or("TCP");
    if !protocol.eq_ignore_ascii_case(ctx.protocol) {
        return Match::No;
    }
    match &entry.port {
        None => Match::Yes,
        Some(IntOrString::Int(start)) => {
            let end = entry.end_port.unwrap_or(*start);
            let p = i32::from(ctx.port);
            Match::from_bool(*start <= p && p <= end)
        }
        Some(IntOrString::String(name)) => match ctx.destination_pod {
            Some(pod) => Match::from_bool(
                pods::named_port(pod, name, protocol).is_some_and(|(_, n)| n == ctx.port),
            ),
            None => Match::Unknown,
        },
    }
}

/// One rule: (peers, ports); absent or empty lists admit every peer / every port.
fn rule_matches(
    peers: Option<&Vec<NetworkPolicyPeer>>,
    ports: Option<&Vec<NetworkPolicyPort>>,
    policy_namespace: &str,
    peer: &Peer,
    port: &PortContext,
) -> RuleMatch {
    let peer_ok = match peers.filter(|p| !p.is_empty()) {
        None => Match::Yes,
        Some(list) => Match::any(list.iter().map(|e| peer_matches(e, policy_namespace, peer))),
    };
    let port_ok = match ports.filter(|p| !p.is_empty()) {
        None => Match::Yes,
        Some(list) => Match::any(list.iter().map(|e| port_matches(e, port))),
    };
    RuleMatch { peer_ok, port_ok }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RuleMatch {
    peer_ok: Match,
    port_ok: Match,
}

/// One selecting policy's answer for this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyResult {
    /// `namespace/name`.
    pub policy: String,
    pub admits: Match,
    /// What the policy admits in this direction, in words: `pods app=frontend on TCP 8080`.
    pub admits_text: String,
    /// Why it does not admit this connection (empty when it does).
    pub mismatch: String,
}

/// The outcome for one direction at one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No policy selects the pod for this direction: everything is allowed.
    NotIsolated,
    /// `by` admits it (the first admitting policy by name); `selecting` lists all policies
    /// that select the pod.
    Admitted {
        by: String,
        selecting: Vec<PolicyResult>,
    },
    /// Selected, and no policy admits: every selecting policy with what it admits.
    Denied { selecting: Vec<PolicyResult> },
    /// Selected, none admits for sure, and at least one might.
    Undetermined { selecting: Vec<PolicyResult> },
}

/// Evaluate `direction` at the pod (`pod_namespace`, `pod_labels`) against every policy in
/// `policies` (any namespace; only those selecting the pod count).
pub fn decide(
    policies: &[NetworkPolicy],
    direction: Direction,
    pod_namespace: &str,
    pod_labels: &Labels,
    peer: &Peer,
    port: &PortContext,
) -> Decision {
    let mut selecting: Vec<PolicyResult> = policies
        .iter()
        .filter(|p| selects(p, pod_namespace, pod_labels, direction))
        .map(|p| evaluate(p, direction, peer, port))
        .collect();
    selecting.sort_by(|a, b| a.policy.cmp(&b.policy));
    if selecting.is_empty() {
        return Decision::NotIsolated;
    }
    if let Some(by) = selecting.iter().find(|r| r.admits == Match::Yes) {
        return Decision::Admitted {
            by: by.policy.clone(),
            selecting,
        };
    }
    if selecting.iter().any(|r| r.admits == Match::Unknown) {
        Decision::Undetermined { selecting }
    } else {
        Decision::Denied { selecting }
    }
}

/// One policy's rules for `direction` against the connection.
pub fn evaluate(
    policy: &NetworkPolicy,
    direction: Direction,
    peer: &Peer,
    port: &PortContext,
) -> PolicyResult {
    let ns = policy.metadata.namespace.as_deref().unwrap_or_default();
    let name = format!(
        "{ns}/{}",
        policy.metadata.name.as_deref().unwrap_or_default()
    );
    let rules = rules_of(policy, direction);
    let results: Vec<RuleMatch> = rules
        .iter()
        .map(|(peers, ports)| rule_matches(*peers, *ports, ns, peer, port))
        .collect();
    let admits = Match::any(results.iter().map(|r| r.peer_ok.and(r.port_ok)));
    let admits_text = describe_rules(&rules, ns, direction);
    let mismatch = if admits == Match::Yes {
        String::new()
    } else if rules.is_empty() {
        format!("it has no {} rule", direction.as_str())
    } else if results.iter().any(|r| r.peer_ok != Match::No) {
        // Some rule takes this peer: the port is what it lacks.
        format!("the connection is to {} {}", port.protocol, port.port)
    } else {
        describe_peer(peer, direction, &selector_keys(&rules))
    };
    PolicyResult {
        policy: name,
        admits,
        admits_text,
        mismatch,
    }
}

type Rule<'a> = (
    Option<&'a Vec<NetworkPolicyPeer>>,
    Option<&'a Vec<NetworkPolicyPort>>,
);

fn rules_of(policy: &NetworkPolicy, direction: Direction) -> Vec<Rule<'_>> {
    let Some(spec) = policy.spec.as_ref() else {
        return Vec::new();
    };
    match direction {
        Direction::Ingress => spec
            .ingress
            .iter()
            .flatten()
            .map(|r| (r.from.as_ref(), r.ports.as_ref()))
            .collect(),
        Direction::Egress => spec
            .egress
            .iter()
            .flatten()
            .map(|r| (r.to.as_ref(), r.ports.as_ref()))
            .collect(),
    }
}

/// The label keys the rules' selectors look at, to show the peer's values for exactly those.
fn selector_keys(rules: &[Rule]) -> Vec<String> {
    let mut keys = Vec::new();
    for (peers, _) in rules {
        for entry in peers.iter().copied().flatten() {
            if let Some(sel) = entry
                .pod_selector
                .as_ref()
                .and_then(|s| labels::from_label_selector(s).ok())
            {
                for k in labels::keys(&sel) {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
        }
    }
    keys
}

/// `source pod/checkout-7d9 has app=checkout` (its values for the keys the policy looks at),
/// `destination 10.0.0.5`, `source has no app label`.
fn describe_peer(peer: &Peer, direction: Direction, keys: &[String]) -> String {
    let who = direction.peer_word();
    match (&peer.pod, peer.ip, peer.host) {
        (Some(pod), _, _) => {
            let shown: Vec<String> = keys
                .iter()
                .map(|k| match pod.labels.get(k) {
                    Some(v) => format!("{k}={v}"),
                    None => format!("no {k} label"),
                })
                .collect();
            let shown = if shown.is_empty() {
                labels::text(&labels::without_noise(pod.labels))
            } else {
                shown.join(", ")
            };
            format!(
                "{who} pod/{} in namespace {} has {shown}",
                pod.name, pod.namespace
            )
        }
        (None, Some(ip), _) => format!("{who} is {ip}, not a pod this policy names"),
        (None, None, Some(host)) => format!("{who} is {host}"),
        (None, None, None) => format!("the {who} is unknown"),
    }
}

fn describe_rules(rules: &[Rule], policy_namespace: &str, direction: Direction) -> String {
    if rules.is_empty() {
        return format!("no {} at all", direction.as_str());
    }
    let texts: Vec<String> = rules
        .iter()
        .map(|(peers, ports)| {
            let peers_text = match peers.filter(|p| !p.is_empty()) {
                None => match direction {
                    Direction::Ingress => "every source".to_string(),
                    Direction::Egress => "every destination".to_string(),
                },
                Some(list) => list
                    .iter()
                    .map(|e| describe_peer_entry(e, policy_namespace))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            let ports_text = match ports.filter(|p| !p.is_empty()) {
                None => String::new(),
                Some(list) => format!(
                    " on {}",
                    list.iter()
                        .map(describe_port)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            format!("{peers_text}{ports_text}")
        })
        .collect();
    texts.join("; or ")
}

fn describe_selector(sel: &LabelSelector) -> String {
    match labels::from_label_selector(sel) {
        Ok(s) => labels::selector_text(&s),
        Err(e) => format!("(invalid selector: {e})"),
    }
}

fn describe_peer_entry(entry: &NetworkPolicyPeer, policy_namespace: &str) -> String {
    if let Some(b) = &entry.ip_block {
        return match b.except.as_deref().filter(|e| !e.is_empty()) {
            Some(except) => format!("{} except {}", b.cidr, except.join(", ")),
            None => b.cidr.clone(),
        };
    }
    let pods = entry.pod_selector.as_ref().map(|s| {
        let t = describe_selector(s);
        if t == "(all)" {
            "all pods".to_string()
        } else {
            format!("pods {t}")
        }
    });
    match (&entry.namespace_selector, pods) {
        (None, Some(pods)) => format!("{pods} in namespace {policy_namespace}"),
        (Some(ns), pods) => {
            let ns_text = describe_selector(ns);
            let where_ = if ns_text == "(all)" {
                "in all namespaces".to_string()
            } else {
                format!("in namespaces {ns_text}")
            };
            format!(
                "{} {where_}",
                pods.unwrap_or_else(|| "all pods".to_string())
            )
        }
        (None, None) => "nothing (empty peer)".to_string(),
    }
}

fn describe_port(p: &NetworkPolicyPort) -> String {
    let proto = p.protocol.as_deref().unwrap_or("TCP");
    match (&p.port, p.end_port) {
        (None, _) => format!("{proto} any port"),
        (Some(IntOrString::Int(a)), Some(b)) => format!("{proto} {a}-{b}"),
        (Some(IntOrString::Int(a)), None) => format!("{proto} {a}"),
        (Some(IntOrString::String(n)), _) => format!("{proto} {n}"),
    }
}

#[cfg(test)]
mod tests;
