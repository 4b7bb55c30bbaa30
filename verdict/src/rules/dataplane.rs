//! The node view's proof of the Service dataplane: each connect to a ClusterIP looked up in
//! the node's conntrack table (`node_nat` on `tcp` evidence, from `node/NAME` and
//! `--via-node` runs). Where a pod-only run can only infer "the translation is broken" from a
//! failing ClusterIP beside answering endpoints, the node's entry says it: translated to an
//! endpoint, not translated at all, or not tracked (nothing concluded).

use protocol::{NatState, TcpEvidence};

use crate::checks::tcp::outcome_words;
use crate::facts::Facts;
use crate::kube::ServiceInfo;
use crate::model::{Layer, Origin, RuleCode, Severity};
use crate::report::Report;
use crate::words::{list, ms};

/// The node whose table was read: the node view's node, or the source pod's.
pub fn view_node<'a>(f: &Facts<'a>) -> Option<&'a str> {
    match f.origin {
        Some(Origin::Node { name, .. }) => Some(name),
        _ => f.kube.source.as_ref().and_then(|s| s.node.as_deref()),
    }
}

fn on_node(f: &Facts) -> String {
    view_node(f)
        .map(|n| format!(" on node {n}"))
        .unwrap_or_else(|| " on the node".into())
}

/// What the node's table said about one connect, for evidence lines (None without a node
/// view).
pub fn nat_words(f: &Facts, t: &TcpEvidence) -> Option<String> {
    let nat = t.node_nat.as_ref()?;
    let node = on_node(f);
    Some(match nat.state.known() {
        Some(NatState::Translated) => match nat.endpoint {
            Some(e) => format!("translated{node} to {e}"),
            None => format!("translated{node}"),
        },
        Some(NatState::NotTranslated) => format!("not translated{node}"),
        Some(NatState::NoEntry) => format!("no conntrack entry{node}"),
        Some(NatState::Unavailable) => format!(
            "node conntrack unreadable: {}",
            nat.reason.as_deref().unwrap_or("no reason given")
        ),
        None => format!("node conntrack state `{}`", nat.state),
    })
}

/// Whether the node's entry for this connect shows no translation.
pub fn not_translated(t: &TcpEvidence) -> bool {
    t.node_nat
        .as_ref()
        .is_some_and(|n| n.state == NatState::NotTranslated)
}

/// A ClusterIP the node did not translate: kube-proxy (or its replacement) does not program
/// the Service on that node. Proven by the node's own conntrack entry, not inferred.
pub fn clusterip_not_translated(
    f: &Facts,
    svc: &ServiceInfo,
    untranslated: &[&TcpEvidence],
    good: &[&TcpEvidence],
    r: &mut Report,
) {
    let c = untranslated[0];
    let node = on_node(f);
    let answered = if good.is_empty() {
        String::new()
    } else {
        format!(
            ", while {} of its endpoints answered when connected to directly",
            good.len()
        )
    };
    let mut b = r
        .finding(
            RuleCode::ClusterIpNotTranslated,
            Layer::Service,
            Severity::Failure,
            "ClusterIP not translated on the node",
            format!(
                "ClusterIP {} of Service {}/{} was not translated{node}: the node's conntrack \
                 entry for the connect has no DNAT (its reply is expected from the ClusterIP \
                 itself){answered}; kube-proxy (or the CNI's service handling) is not \
                 programming this Service there",
                c.address, svc.namespace, svc.name
            ),
        )
        .line(format!(
            "{} {}, node conntrack: {}",
            c.address,
            outcome_words(c),
            nat_words(f, c).unwrap_or_default()
        ));
    if !good.is_empty() {
        let eps: Vec<String> = good
            .iter()
            .map(|t| format!("{} ok {}", t.address, ms(t.latency_ms)))
            .collect();
        b = b.line(format!("endpoints connect directly: {}", list(&eps, 3)));
    }
    let node_name = view_node(f).unwrap_or("NODE");
    b.next(format!(
        "kubectl -n kube-system get pods -l k8s-app=kube-proxy \
         --field-selector spec.nodeName={node_name}   # then its logs"
    ))
    .next(format!(
        "iptables-save -t nat | grep -e {} -e {}/{}   # on node {node_name}: the Service's \
         KUBE-SERVICES rule should be there",
        c.address.ip(),
        svc.namespace,
        svc.name
    ))
    .add();
    for t in untranslated {
        r.explained.insert(t.address);
    }
}
