//! The Service's Kubernetes-level findings about its selector, its endpoints and their
//! readiness.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use netdebug_verdict::kube::{KubeFinding, KubeFindingCode, Severity};

use super::endpoints::Endpoint;
use crate::error::Error;
use crate::resolve::labels::{self, Labels};
use crate::resolve::{api, pods};

static EMPTY_LABELS: Labels = Labels::new();

/// No selector; a selector matching no pod (with the closest labels, which costs one list of
/// the namespace's pods); no endpoints at all.
pub(super) async fn selector_findings(
    client: &kube::Client,
    ns: &str,
    name: &str,
    selector: &Labels,
    selected_pods: &[Pod],
    endpoints: &[Endpoint],
) -> Result<Vec<KubeFinding>, Error> {
    let object = format!("svc/{name}");
    let mut findings = Vec::new();
    // Selector and endpoints.
    if selector.is_empty() {
        findings.push(KubeFinding {
            code: KubeFindingCode::ServiceWithoutSelector,
            severity: if endpoints.is_empty() {
                Severity::Warning
            } else {
                Severity::Info
            },
            object: object.clone(),
            message: if endpoints.is_empty() {
                format!(
                    "svc/{name} has no selector and its EndpointSlices list no endpoint: \
                     nothing manages its endpoints"
                )
            } else {
                format!(
                    "svc/{name} has no selector: its {} endpoint(s) are managed by hand or by \
                     another controller",
                    endpoints.len()
                )
            },
            details: BTreeMap::new(),
        });
    } else if selected_pods.is_empty() {
        findings.push(selector_matches_no_pod(client, ns, name, selector).await?);
    }
    if endpoints.is_empty() {
        let why = if !selector.is_empty() && !selected_pods.is_empty() {
            let states: Vec<String> = selected_pods
                .iter()
                .take(3)
                .map(|p| format!("pod/{} ({})", pods::name(p), pods::not_ready_reason(p)))
                .collect();
            format!(
                "; its selector matches {} pod(s), none published: {}",
                selected_pods.len(),
                states.join("; ")
            )
        } else {
            String::new()
        };
        findings.push(KubeFinding {
            code: KubeFindingCode::NoEndpoints,
            severity: Severity::Failure,
            object: object.clone(),
            message: format!("svc/{name} has no endpoints{why}"),
            details: [("selector".to_string(), labels::text(selector))].into(),
        });
    }

    Ok(findings)
}

/// A selector that matches no pod: the pod whose labels come closest, to show the typo.
async fn selector_matches_no_pod(
    client: &kube::Client,
    ns: &str,
    name: &str,
    selector: &Labels,
) -> Result<KubeFinding, Error> {
    let all_pods: Vec<Pod> = api::list(client, ns, None, "pods").await?;
    let closest = labels::closest(
        selector,
        all_pods.iter().map(|p| {
            (
                pods::name(p),
                p.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS),
            )
        }),
    );
    let sel_text = labels::text(selector);
    let mut details: BTreeMap<String, String> = [("selector".to_string(), sel_text.clone())].into();
    let message = match &closest {
        Some(c) => {
            details.insert("closest_labels".into(), labels::text(&c.labels));
            details.insert("closest_pod".into(), c.pod.clone());
            format!(
                "svc/{name} selector {sel_text} matches no pod in namespace {ns}; the \
                 closest is pod/{} with {} ({} of {} selector labels match)",
                c.pod,
                labels::text(&c.labels),
                c.matching_pairs,
                selector.len()
            )
        }
        None if all_pods.is_empty() => {
            format!("svc/{name} selector {sel_text} matches no pod: namespace {ns} has no pods")
        }
        None => format!(
            "svc/{name} selector {sel_text} matches no pod in namespace {ns}; none of its \
             {} pods has any of the selector's label keys",
            all_pods.len()
        ),
    };
    Ok(KubeFinding {
        code: KubeFindingCode::SelectorMatchesNoPod,
        severity: Severity::Failure,
        object: format!("svc/{name}"),
        message,
        details,
    })
}

/// Endpoints not ready: counts, and per endpoint its pod's reason.
pub(super) fn readiness_finding(
    name: &str,
    endpoints: &[Endpoint],
    pod_by_name: &BTreeMap<&str, &Pod>,
) -> Option<KubeFinding> {
    let ready = endpoints.iter().filter(|e| e.ready).count();
    if endpoints.is_empty() || ready == endpoints.len() {
        return None;
    }
    let not_ready: Vec<String> = endpoints
        .iter()
        .filter(|e| !e.ready)
        .map(|e| {
            let why = e
                .pod
                .as_deref()
                .and_then(|p| pod_by_name.get(p))
                .map(|p| {
                    if pods::is_terminating(p) {
                        "terminating".to_string()
                    } else {
                        pods::not_ready_reason(p)
                    }
                })
                .unwrap_or_else(|| {
                    if e.terminating {
                        "terminating".to_string()
                    } else {
                        "not ready".to_string()
                    }
                });
            match &e.pod {
                Some(p) => format!("{} (pod/{p}: {why})", e.ip),
                None => format!("{} ({why})", e.ip),
            }
        })
        .collect();
    Some(KubeFinding {
        code: KubeFindingCode::EndpointsNotReady,
        severity: if ready == 0 {
            Severity::Failure
        } else {
            Severity::Warning
        },
        object: format!("svc/{name}"),
        message: format!(
            "{} of {} endpoints not ready: {}",
            endpoints.len() - ready,
            endpoints.len(),
            not_ready.join("; ")
        ),
        details: [
            ("ready".to_string(), ready.to_string()),
            ("total".to_string(), endpoints.len().to_string()),
            (
                "not_ready_pods".to_string(),
                endpoints
                    .iter()
                    .filter(|e| !e.ready)
                    .filter_map(|e| e.pod.clone())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
        .into(),
    })
}
