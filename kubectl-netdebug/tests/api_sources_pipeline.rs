//! Many sources (`-l`, `--all-pods`) through the whole Kubernetes path against a mocked API
//! server that answers like a small cluster: pods `web-1`, `web-2` (node-1) and `web-3`
//! (node-2) labelled app=web in namespace `shop`, plus `web-4` still Pending. These tests pin
//! what is read once for the run, what is asked per source, the injection limit, and that a
//! source the user may not patch is named while the others run.

mod common;
mod sources_mock;

use std::collections::BTreeSet;

use clap::Parser;
use kubectl_netdebug::cli::Cli;
use kubectl_netdebug::run::parse_input;
use sources_mock::{run_sources, Cluster as Fake};

fn count(requests: &[String], needle: &str) -> usize {
    requests.iter().filter(|r| r.contains(needle)).count()
}

/// The selection is listed once, every Running pod gets one probe, and the Pending one none;
/// what does not depend on the source (the node of each pod, the EndpointSlices, the
/// destination) is read once per node or once per run, not once per source.
#[tokio::test]
async fn selector_runs_every_running_pod_once_and_shares_the_reads() {
    let (result, seen) = run_sources(&["-l", "app=web"], Fake::default()).await;
    let requests = &seen.requests;
    let code = result.unwrap_or_else(|e| panic!("{e}\nrequests: {requests:#?}"));
    assert_eq!(code, 0, "{requests:#?}");
    let patched: BTreeSet<&str> = seen.patched.iter().map(String::as_str).collect();
    assert_eq!(
        patched,
        BTreeSet::from(["web-1", "web-2", "web-3"]),
        "{requests:#?}"
    );
    assert_eq!(seen.patched.len(), 3, "one probe per source: {requests:#?}");
    assert_eq!(
        count(requests, "/pods/web-4/"),
        0,
        "the Pending pod is left alone"
    );
    assert_eq!(
        count(requests, "GET /api/v1/nodes/node-1"),
        1,
        "{requests:#?}"
    );
    assert_eq!(
        count(requests, "GET /api/v1/nodes/node-2"),
        1,
        "{requests:#?}"
    );
    assert_eq!(count(requests, "/endpointslices"), 1, "{requests:#?}");
    assert_eq!(count(requests, "GET /version"), 1);
    for p in ["web-1", "web-2", "web-3"] {
        assert_eq!(
            count(requests, &format!("/pods/{p}/log")),
            1,
            "{p}: {requests:#?}"
        );
    }
}

/// `--max-parallel 1`: never two injections in flight (patched and not yet started), while
/// the default lets all three start together.
#[tokio::test]
async fn the_injection_limit_is_honoured() {
    let (result, seen) =
        run_sources(&["-l", "app=web", "--max-parallel", "1"], Fake::default()).await;
    assert_eq!(result.unwrap(), 0, "{:#?}", seen.requests);
    assert_eq!(seen.patched.len(), 3);
    assert_eq!(seen.most_in_flight, 1, "{:#?}", seen.requests);

    let (result, seen) = run_sources(&["-l", "app=web"], Fake::default()).await;
    assert_eq!(result.unwrap(), 0);
    assert!(
        seen.most_in_flight > 1,
        "the default limit (10) lets them overlap: {:#?}",
        seen.requests
    );
}

/// RBAC denied on one pod only: that source is named with the API server's refusal, the
/// others run, and the run is not "nothing could be run".
#[tokio::test]
async fn a_pod_the_user_may_not_patch_is_named_and_the_others_run() {
    let (result, seen) = run_sources(
        &["-l", "app=web"],
        Fake {
            forbidden: &["web-2"],
            ..Fake::default()
        },
    )
    .await;
    let code = result.unwrap_or_else(|e| panic!("{e}\n{:#?}", seen.requests));
    assert_ne!(code, 2, "two sources ran: {:#?}", seen.requests);
    let patched: BTreeSet<&str> = seen.patched.iter().map(String::as_str).collect();
    assert_eq!(patched, BTreeSet::from(["web-1", "web-3"]));
    assert_eq!(count(&seen.requests, "/pods/web-2/log"), 0);
}

/// Every source refused: nothing could be run, exit 2.
#[tokio::test]
async fn nothing_could_be_run_exits_2() {
    let (result, seen) = run_sources(
        &["-l", "app=web"],
        Fake {
            forbidden: &["web-1", "web-2", "web-3"],
            ..Fake::default()
        },
    )
    .await;
    assert_eq!(result.unwrap(), 2, "{:#?}", seen.requests);
    assert!(seen.patched.is_empty());
}

/// Flags that cannot make a many-sources run are refused before any request.
#[tokio::test]
async fn bad_source_flags_are_refused_before_any_request() {
    let parse = |extra: &[&str]| {
        let base = ["kubectl-netdebug", "--to", "10.96.0.10:53"];
        Cli::try_parse_from(base.iter().chain(extra)).map(|c| parse_input(&c.run).map(|_| ()))
    };
    let bare = parse(&["pod/web-1", "--all-pods"])
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(bare.contains("--all-pods takes a workload"), "{bare}");
    let both = parse(&["-l", "app=web", "--both-ends"])
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(both.contains("--both-ends probes one source"), "{both}");
    let stdout = parse(&["-l", "app=web", "-w", "-"])
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(stdout.contains("each source gets its own pcap"), "{stdout}");
    assert!(parse(&["-l", "app=web", "--max-sources", "0"]).is_err());
    let above = parse(&["-l", "app=web", "--max-sources", "201"])
        .unwrap_err()
        .to_string();
    assert!(above.contains("--max-sources takes 1 to 200"), "{above}");
    assert!(
        parse(&["pod/x", "-l", "app=web"]).is_err(),
        "SOURCE and -l are one or the other"
    );
    assert!(parse(&[]).is_err(), "a source or -l is required");
    let selector = parse(&["-l", "app in (web"])
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(selector.starts_with("-l app in (web: "), "{selector}");
}

/// The API requests a run costs (BENCHMARKS.md quotes these): four per source with
/// `--stream logs` (the patch, the watch until it starts, its log, its exit status), and a
/// fixed set for the whole run that grows only with the nodes (one read each).
#[tokio::test]
async fn api_requests_per_source_and_per_run() {
    let (result, seen) = run_sources(&["-l", "app=web"], Fake::default()).await;
    assert_eq!(result.unwrap(), 0);
    let requests = &seen.requests;
    for pod in ["web-1", "web-2", "web-3"] {
        let own: Vec<&String> = requests
            .iter()
            .filter(|r| {
                r.contains(&format!("/pods/{pod}/")) || r.ends_with(&format!("/pods/{pod}"))
            })
            .collect();
        // The watch names the pod in its field selector, not its path.
        assert_eq!(own.len(), 3, "patch, log, status of {pod}: {own:#?}");
    }
    let watches = requests
        .iter()
        .filter(|r| r.as_str() == "GET /api/v1/namespaces/shop/pods")
        .count();
    assert_eq!(
        watches,
        1 + 3,
        "one list of the selection, one watch per source: {requests:#?}"
    );
    let per_source = 4 * 3;
    let shared = requests.len() - per_source;
    // /version, the namespace, 4 access reviews, the pod list, 2 nodes, the EndpointSlices,
    // the NetworkPolicies, the cluster DNS Service.
    assert_eq!(shared, 12, "{requests:#?}");
}
