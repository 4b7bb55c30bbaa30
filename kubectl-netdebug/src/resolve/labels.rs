//! Label selectors: turning the API's selector shapes into kube's `Selector` (which matches
//! and renders the API query form), and finding the pod whose labels come closest to a
//! selector that matches nothing.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Expression, Selector, SelectorExt};

pub type Labels = BTreeMap<String, String>;

/// A `metav1.LabelSelector` as a `Selector`; an invalid operator is an error naming it.
pub fn from_label_selector(sel: &LabelSelector) -> Result<Selector, String> {
    Selector::try_from(sel.clone()).map_err(|e| {
        let ops: Vec<&str> = sel
            .match_expressions
            .iter()
            .flatten()
            .map(|r| r.operator.as_str())
            .collect();
        format!("{} (operators: {})", e.0, ops.join(", "))
    })
}

/// A Service's `spec.selector` (equality only) as a `Selector`.
pub fn from_map(map: &Labels) -> Selector {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn matches(sel: &Selector, labels: &Labels) -> bool {
    sel.matches(labels)
}

/// The label keys a selector looks at.
pub fn keys(sel: &Selector) -> Vec<String> {
    let mut keys: Vec<String> = sel
        .clone()
        .into_iter()
        .map(|e| match e {
            Expression::In(k, _)
            | Expression::NotIn(k, _)
            | Expression::Equal(k, _)
            | Expression::NotEqual(k, _)
            | Expression::Exists(k)
            | Expression::DoesNotExist(k) => k,
        })
        .collect();
    keys.dedup();
    keys
}

/// `a=b,c=d`, or `(none)`.
pub fn text(labels: &Labels) -> String {
    if labels.is_empty() {
        return "(none)".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A selector as the API query string writes it; `(all)` for the empty selector.
pub fn selector_text(sel: &Selector) -> String {
    if sel.selects_all() {
        "(all)".to_string()
    } else {
        sel.to_string()
    }
}

/// Labels controllers add to every pod; they never explain a selector mismatch.
const NOISE: [&str; 3] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
];

/// Labels worth showing to a person: without the per-revision hashes.
pub fn without_noise(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| !NOISE.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The pod whose labels come closest to a Service selector that matches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closest {
    pub pod: String,
    pub labels: Labels,
    /// Selector pairs the pod has with the same value.
    pub matching_pairs: usize,
    /// Selector keys the pod has (with any value).
    pub shared_keys: usize,
    /// Edit distance between the selector's values and the pod's for shared keys whose values
    /// differ: `app=wbe` is a typo of `app=web`, not of `app=checkout`.
    pub value_distance: usize,
}

/// Rank pods by the selector's key=value pairs they carry, then by the selector's keys they
/// carry at all (`app=payment` is closer to `app=payments` than a pod without `app`), then
/// by how few edits turn its values into the selector's, then by name for a stable answer. None when no pod shares even a key.
pub fn closest<'a>(
    selector: &Labels,
    pods: impl IntoIterator<Item = (&'a str, &'a Labels)>,
) -> Option<Closest> {
    pods.into_iter()
        .map(|(name, labels)| Closest {
            pod: name.to_string(),
            labels: without_noise(labels),
            matching_pairs: selector
                .iter()
                .filter(|(k, v)| labels.get(*k) == Some(*v))
                .count(),
            shared_keys: selector.keys().filter(|k| labels.contains_key(*k)).count(),
            value_distance: selector
                .iter()
                .filter_map(|(k, v)| {
                    labels
                        .get(k)
                        .map(|have| strsim::damerau_levenshtein(v, have))
                })
                .sum(),
        })
        .filter(|c| c.shared_keys > 0)
        .max_by(|a, b| {
            (a.matching_pairs, a.shared_keys)
                .cmp(&(b.matching_pairs, b.shared_keys))
                .then_with(|| b.value_distance.cmp(&a.value_distance))
                // max_by keeps the last maximum: reverse the name order so the first name wins.
                .then_with(|| b.pod.cmp(&a.pod))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn closest_prefers_matching_pairs_then_shared_keys_then_name() {
        let sel = l(&[("app", "payments"), ("tier", "api")]);
        let a = l(&[
            ("app", "payment"),
            ("tier", "api"),
            ("pod-template-hash", "x"),
        ]);
        let b = l(&[("app", "payment"), ("tier", "web")]);
        let c = l(&[("team", "pay")]);
        let d = l(&[("app", "other"), ("tier", "api")]);
        let got = closest(&sel, [("b", &b), ("a", &a), ("c", &c), ("d", &d)]).unwrap();
        // a and d both have tier=api and the app key: a comes first by name.
        assert_eq!(got.pod, "a");
        assert_eq!(got.matching_pairs, 1);
        assert_eq!(got.shared_keys, 2);
        assert_eq!(text(&got.labels), "app=payment,tier=api");
    }

    #[test]
    fn closest_is_none_without_a_shared_key() {
        let sel = l(&[("app", "payments")]);
        let c = l(&[("team", "pay")]);
        assert_eq!(closest(&sel, [("c", &c)]), None);
        assert_eq!(closest(&sel, std::iter::empty()), None);
    }

    /// Regression (e2e): `app=wbe` named pod/client (`app=checkout`) as closest rather than
    /// pod/server (`app=web`), because both share the key and ties went by name.
    #[test]
    fn closest_prefers_the_value_a_typo_away() {
        let sel = l(&[("app", "wbe")]);
        let client = l(&[("app", "checkout")]);
        let server = l(&[("app", "web")]);
        let got = closest(&sel, [("client", &client), ("server", &server)]).unwrap();
        assert_eq!(got.pod, "server");
        assert_eq!(got.value_distance, 1);
    }

    #[test]
    fn selector_forms_render_for_the_api() {
        let sel = from_map(&l(&[("app", "web"), ("tier", "fe")]));
        assert_eq!(selector_text(&sel), "app=web,tier=fe");
        assert_eq!(keys(&sel), vec!["app".to_string(), "tier".to_string()]);
        assert_eq!(selector_text(&from_map(&Labels::new())), "(all)");
    }

    #[test]
    fn invalid_operator_is_named() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
        }))
        .unwrap();
        let err = from_label_selector(&sel).unwrap_err();
        assert!(err.contains("Gt"), "{err}");
    }
}
