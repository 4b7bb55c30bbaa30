//! Shell completion.
//!
//! - `kubectl netdebug completion bash|zsh|fish` prints a script for the `kubectl-netdebug`
//!   command (clap_complete).
//! - kubectl 1.26+ completes plugins by running `kubectl_complete-netdebug ARGS... PARTIAL`
//!   (cobra's `__complete` protocol: one candidate per line, then `:DIRECTIVE`). That helper
//!   binary, and the hidden `kubectl-netdebug __complete`, land here: they complete pod,
//!   Service and namespace names from the cluster, and flag values we know statically.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, ListParams};

use crate::cli::KubeArgs;

/// cobra: do not fall back to file completion.
const DIRECTIVE_NO_FILE: u32 = 4;
/// cobra: no space after the candidate (for `svc/` prefixes).
const DIRECTIVE_NO_SPACE: u32 = 2;
/// The cluster gets this long to answer a completion; a shell must never hang on TAB.
const COMPLETION_DEADLINE: Duration = Duration::from_secs(3);

const PROFILES: &[&str] = &["auto", "restricted", "baseline", "netadmin"];
const OUTPUTS: &[&str] = &["text", "markdown", "json"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const SOURCE_KINDS: &[&str] = &["pod/", "deploy/", "sts/", "ds/", "rs/", "job/"];
const DEST_KINDS: &[&str] = &["svc/", "pod/"];

/// What the word being completed is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Namespace,
    Source,
    Destination,
    Fixed(&'static [&'static str]),
    Flag,
    Nothing,
}

/// Decide from the words before the partial one what is being completed.
pub fn slot(words: &[String], partial: &str) -> Slot {
    if let Some(prev) = words.last() {
        match prev.as_str() {
            "-n" | "--namespace" => return Slot::Namespace,
            "--to" => return Slot::Destination,
            "--profile" => return Slot::Fixed(PROFILES),
            "-o" | "--output" => return Slot::Fixed(OUTPUTS),
            "--image-pull-policy" => return Slot::Fixed(PULL_POLICIES),
            "--context" | "--cluster" | "--user" | "--kubeconfig" | "--image" | "--timeout"
            | "--request-timeout" | "--dns" | "-c" | "--container" | "-w" | "--write" => {
                return Slot::Nothing
            }
            _ => {}
        }
    }
    if partial.starts_with('-') {
        return Slot::Flag;
    }
    if words.first().map(String::as_str) == Some("local") {
        return Slot::Nothing;
    }
    let has_source = positional(words).next().is_some();
    if has_source {
        Slot::Nothing
    } else if words.is_empty() && "local".starts_with(partial) && !partial.is_empty() {
        Slot::Fixed(&["local"])
    } else {
        Slot::Source
    }
}

/// Positional words (not flags and not flag values).
fn positional(words: &[String]) -> impl Iterator<Item = &String> {
    const WITH_VALUE: &[&str] = &[
        "-n", "--namespace", "--to", "--profile", "-o", "--output", "--image-pull-policy",
        "--context", "--cluster", "--user", "--kubeconfig", "--image", "--timeout",
        "--request-timeout", "--dns", "-c", "--container", "-w", "--write",
    ];
    let mut skip_next = false;
    words.iter().filter(move |w| {
        if skip_next {
            skip_next = false;
            return false;
        }
        if WITH_VALUE.contains(&w.as_str()) {
            skip_next = true;
            return false;
        }
        !w.starts_with('-')
    })
}

/// The connection flags among the words, so completion talks to the cluster the command will.
pub fn kube_args(words: &[String]) -> KubeArgs {
    let mut args = KubeArgs::default();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (w.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "-n" | "--namespace" => args.namespace = value(),
            "--context" => args.context = value(),
            "--cluster" => args.cluster = value(),
            "--user" => args.user = value(),
            "--kubeconfig" => args.kubeconfig = value().map(Into::into),
            _ => {}
        }
    }
    args
}

const FLAGS: &[&str] = &[
    "--to", "--dns", "--capture", "--write", "--sockets", "--mtu", "--namespace", "--context",
    "--cluster", "--user", "--kubeconfig", "--request-timeout", "--container", "--image",
    "--image-pull-policy", "--profile", "--timeout", "--output", "--no-color", "--help",
];

/// Names of one kind, listed through the API (bounded by [`COMPLETION_DEADLINE`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Names {
    pub pods: Vec<String>,
    pub services: Vec<String>,
    pub namespaces: Vec<String>,
}

/// Candidates for `partial` in `slot`, given what the cluster has.
pub fn candidates(slot: &Slot, partial: &str, names: &Names) -> (Vec<String>, u32) {
    let keep = |c: &String| c.starts_with(partial);
    match slot {
        Slot::Namespace => (
            names.namespaces.iter().filter(|c| keep(c)).cloned().collect(),
            DIRECTIVE_NO_FILE,
        ),
        Slot::Fixed(values) => (
            values.iter().map(|v| v.to_string()).filter(keep).collect(),
            DIRECTIVE_NO_FILE,
        ),
        Slot::Flag => (
            FLAGS.iter().map(|v| v.to_string()).filter(keep).collect(),
            DIRECTIVE_NO_FILE,
        ),
        Slot::Nothing => (Vec::new(), DIRECTIVE_NO_FILE),
        Slot::Source => prefixed(partial, SOURCE_KINDS, &[("pod/", &names.pods)], &names.pods),
        Slot::Destination => prefixed(
            partial,
            DEST_KINDS,
            &[("svc/", &names.services), ("pod/", &names.pods)],
            &[],
        ),
    }
}

/// `svc/<TAB>` lists Services; a bare word lists the kinds (and bare pod names for SOURCE).
fn prefixed(
    partial: &str,
    kinds: &[&str],
    lists: &[(&str, &Vec<String>)],
    bare: &[String],
) -> (Vec<String>, u32) {
    for (prefix, list) in lists {
        if let Some(rest) = partial.strip_prefix(prefix) {
            let out = list
                .iter()
                .filter(|n| n.starts_with(rest))
                .map(|n| format!("{prefix}{n}"))
                .collect();
            return (out, DIRECTIVE_NO_FILE);
        }
    }
    let mut out: Vec<String> = kinds
        .iter()
        .filter(|k| k.starts_with(partial))
        .map(|k| k.to_string())
        .collect();
    let only_kinds = !out.is_empty();
    out.extend(bare.iter().filter(|n| n.starts_with(partial)).cloned());
    let directive = if only_kinds && out.len() == kinds.iter().filter(|k| k.starts_with(partial)).count() {
        DIRECTIVE_NO_FILE | DIRECTIVE_NO_SPACE
    } else {
        DIRECTIVE_NO_FILE
    };
    (out, directive)
}

/// List what `slot` needs from the cluster. Errors and slowness give no names, never a hang.
pub async fn fetch(client: &kube::Client, namespace: &str, slot: &Slot) -> Names {
    let work = async {
        let mut names = Names::default();
        let lp = ListParams::default();
        match slot {
            Slot::Namespace => {
                if let Ok(list) = Api::<Namespace>::all(client.clone()).list_metadata(&lp).await {
                    names.namespaces = list.items.into_iter().filter_map(|n| n.metadata.name).collect();
                }
            }
            Slot::Source | Slot::Destination => {
                if let Ok(list) = Api::<Pod>::namespaced(client.clone(), namespace).list_metadata(&lp).await {
                    names.pods = list.items.into_iter().filter_map(|n| n.metadata.name).collect();
                }
                if *slot == Slot::Destination {
                    if let Ok(list) =
                        Api::<Service>::namespaced(client.clone(), namespace).list_metadata(&lp).await
                    {
                        names.services = list.items.into_iter().filter_map(|n| n.metadata.name).collect();
                    }
                }
            }
            _ => {}
        }
        names
    };
    tokio::time::timeout(COMPLETION_DEADLINE, work)
        .await
        .unwrap_or_default()
}

/// The `__complete` protocol: `args` are the words after `kubectl netdebug`, the last one being
/// the partial word (possibly empty). Returns the lines to print.
pub async fn complete(args: &[String]) -> Vec<String> {
    let (partial, words) = match args.split_last() {
        Some((p, w)) => (p.as_str(), w),
        None => ("", &[][..]),
    };
    let slot = slot(words, partial);
    let needs_cluster = matches!(slot, Slot::Namespace | Slot::Source | Slot::Destination);
    let names = if needs_cluster {
        match crate::connect::load_config(&kube_args(words)).await {
            Ok((config, _)) => {
                let namespace = config.default_namespace.clone();
                match kube::Client::try_from(config) {
                    Ok(client) => fetch(&client, &namespace, &slot).await,
                    Err(_) => Names::default(),
                }
            }
            Err(_) => Names::default(),
        }
    } else {
        Names::default()
    };
    let (mut lines, directive) = candidates(&slot, partial, &names);
    lines.push(format!(":{directive}"));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn names() -> Names {
        Names {
            pods: w(&["checkout-7d9", "web-0"]),
            services: w(&["payments", "web"]),
            namespaces: w(&["default", "shop"]),
        }
    }

    #[test]
    fn slots_follow_the_previous_word() {
        assert_eq!(slot(&w(&["pod/x", "-n"]), ""), Slot::Namespace);
        assert_eq!(slot(&w(&["pod/x", "--to"]), "sv"), Slot::Destination);
        assert_eq!(slot(&w(&[]), ""), Slot::Source);
        assert_eq!(slot(&w(&["-n", "shop"]), "ch"), Slot::Source);
        assert_eq!(slot(&w(&["pod/x"]), "--t"), Slot::Flag);
        assert_eq!(slot(&w(&["pod/x", "--profile"]), ""), Slot::Fixed(PROFILES));
        assert_eq!(slot(&w(&["pod/x"]), "y"), Slot::Nothing);
    }

    #[test]
    fn destination_candidates_use_kind_prefixes() {
        let (c, _) = candidates(&Slot::Destination, "svc/p", &names());
        assert_eq!(c, w(&["svc/payments"]));
        let (c, d) = candidates(&Slot::Destination, "", &names());
        assert_eq!(c, w(&["svc/", "pod/"]));
        assert_eq!(d, DIRECTIVE_NO_FILE | DIRECTIVE_NO_SPACE);
        let (c, _) = candidates(&Slot::Destination, "pod/w", &names());
        assert_eq!(c, w(&["pod/web-0"]));
    }

    #[test]
    fn source_candidates_include_bare_pod_names() {
        let (c, d) = candidates(&Slot::Source, "c", &names());
        assert_eq!(c, w(&["checkout-7d9"]));
        assert_eq!(d, DIRECTIVE_NO_FILE);
        let (c, _) = candidates(&Slot::Source, "pod/", &names());
        assert_eq!(c, w(&["pod/checkout-7d9", "pod/web-0"]));
    }

    #[test]
    fn connection_flags_are_honoured() {
        let a = kube_args(&w(&["pod/x", "-n", "shop", "--context=prod", "--kubeconfig", "/k"]));
        assert_eq!(a.namespace.as_deref(), Some("shop"));
        assert_eq!(a.context.as_deref(), Some("prod"));
        assert_eq!(a.kubeconfig, Some("/k".into()));
    }
}
