//! Shell completion.
//!
//! - `kubectl netdebug completion bash|zsh|fish` prints a static script for the
//!   `kubectl-netdebug` command (clap_complete; `main.rs`).
//! - kubectl 1.26+ completes plugins by running `kubectl_complete-netdebug ARGS... PARTIAL`
//!   (cobra's `__complete` protocol: one candidate per line, then `:DIRECTIVE`). That helper
//!   binary, and the hidden `kubectl-netdebug __complete`, land in [`run`]: pod, workload,
//!   Service and namespace names come from the cluster (the one `-n`/`--context`/`--kubeconfig`
//!   among the words name), kubeconfig contexts from the kubeconfig, flag names and fixed flag
//!   values from the clap definition itself.
//!
//! Completion never hangs the shell and never fails loudly: the cluster gets
//! [`COMPLETION_DEADLINE`], a watchdog ends the process soon after whatever is still running,
//! and any error just gives no candidates (the directive line alone, exit 0).

use std::fmt::Debug;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use clap::CommandFactory;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use crate::cli::{Cli, KubeArgs};

/// cobra's ShellCompDirectiveDefault: the shell may fall back to file names.
pub const DIRECTIVE_DEFAULT: u32 = 0;
/// cobra's ShellCompDirectiveNoSpace: no space after the candidate (for `svc/` prefixes).
pub const DIRECTIVE_NO_SPACE: u32 = 2;
/// cobra's ShellCompDirectiveNoFileComp: do not fall back to file names.
pub const DIRECTIVE_NO_FILE: u32 = 4;

/// The cluster (and the kubeconfig) get this long to answer a completion.
pub const COMPLETION_DEADLINE: Duration = Duration::from_secs(3);
/// After this the process ends whatever is still running (a blocking exec credential plugin,
/// a stuck DNS lookup): a shell must never hang on TAB.
const HARD_DEADLINE: Duration = Duration::from_millis(4_000);

/// Kinds SOURCE accepts, as offered (kubectl's short names).
const SOURCE_KINDS: &[&str] = &["pod/", "deploy/", "sts/", "ds/", "rs/", "job/", "node/"];
/// Kinds `--to` accepts as objects (it also takes IP:PORT and HOST:PORT).
const DEST_KINDS: &[&str] = &["svc/", "pod/"];

/// What the word being completed is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A namespace name (`-n`).
    Namespace,
    /// SOURCE: a kind prefix, `KIND/NAME` or a bare pod name; `commands`: the first word, where
    /// the subcommands are candidates too.
    Source { commands: bool },
    /// `--to`: `svc/NAME` or `pod/NAME`.
    Destination,
    /// A kubeconfig context (`--context`).
    Context,
    /// A named network namespace (`local --netns`).
    Netns,
    /// One of these fixed values (`--profile`, `-o`, `--image-pull-policy`, `completion SHELL`).
    Values(Vec<String>),
    /// A flag name.
    Flags(Vec<String>),
    /// A file name: let the shell complete it.
    Files,
    /// Free text (a port, a duration, an image...): nothing to offer.
    Nothing,
}

impl Slot {
    /// Whether the candidates come from the API server.
    pub fn needs_cluster(&self) -> bool {
        matches!(
            self,
            Slot::Namespace | Slot::Source { .. } | Slot::Destination
        )
    }
}

/// Decide from the words before the partial one what is being completed. `words` are the
/// arguments after `kubectl netdebug`, without the partial word.
pub fn slot(words: &[String], partial: &str) -> Slot {
    let mut root = Cli::command();
    root.build();
    let (cmd, rest, top) = match words.first() {
        Some(first) if !first.starts_with('-') => {
            match root
                .get_subcommands()
                .find(|s| s.get_name() == first && !s.is_hide_set())
            {
                Some(sub) => (sub.clone(), &words[1..], false),
                None => (root.clone(), words, true),
            }
        }
        _ => (root.clone(), words, true),
    };

    // Walk the words: which flag (if any) is waiting for its value, how many positionals so far.
    let mut pending: Option<&clap::Arg> = None;
    let mut positionals = 0;
    let mut only_positionals = false;
    for w in rest {
        if pending.take().is_some() {
            continue;
        }
        if only_positionals || !w.starts_with('-') || w == "-" {
            positionals += 1;
            continue;
        }
        if w == "--" {
            only_positionals = true;
            continue;
        }
        if let Some(arg) = flag_arg(&cmd, w) {
            pending = Some(arg);
        }
    }
    if let Some(arg) = pending {
        return value_slot(arg, top);
    }
    if partial.starts_with('-') && !only_positionals {
        return Slot::Flags(flag_names(&cmd));
    }
    if top {
        return if positionals == 0 {
            Slot::Source {
                commands: words.is_empty(),
            }
        } else {
            Slot::Nothing
        };
    }
    if cmd.get_name() == "help" {
        return if positionals == 0 {
            Slot::Values(
                root.get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(|s| s.get_name().to_string())
                    .collect(),
            )
        } else {
            Slot::Nothing
        };
    }
    let values = cmd
        .get_positionals()
        .nth(positionals)
        .map(possible_values)
        .unwrap_or_default();
    if values.is_empty() {
        Slot::Nothing
    } else {
        Slot::Values(values)
    }
}

/// The flag `word` is, if it takes its value from the next word (`--to`, `-n`; not `--to=x`,
/// not `-nshop`, not `--sockets`).
fn flag_arg<'a>(cmd: &'a clap::Command, word: &str) -> Option<&'a clap::Arg> {
    let arg = if let Some(long) = word.strip_prefix("--") {
        if long.contains('=') {
            return None;
        }
        cmd.get_arguments().find(|a| {
            a.get_long() == Some(long)
                || a.get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&long))
        })?
    } else {
        let mut chars = word[1..].chars();
        let short = chars.next()?;
        if chars.next().is_some() {
            return None; // `-nshop`: the value is inline
        }
        cmd.get_arguments().find(|a| a.get_short() == Some(short))?
    };
    arg.get_action().takes_values().then_some(arg)
}

fn value_slot(arg: &clap::Arg, top: bool) -> Slot {
    match arg.get_id().as_str() {
        "namespace" => Slot::Namespace,
        "to" if top => Slot::Destination,
        "context" => Slot::Context,
        "kubeconfig" | "write" => Slot::Files,
        "netns" => Slot::Netns,
        _ => match possible_values(arg) {
            v if !v.is_empty() => Slot::Values(v),
            _ => Slot::Nothing,
        },
    }
}

fn possible_values(arg: &clap::Arg) -> Vec<String> {
    arg.get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect()
}

fn flag_names(cmd: &clap::Command) -> Vec<String> {
    let visible = || cmd.get_arguments().filter(|a| !a.is_hide_set());
    let mut out: Vec<String> = visible()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    out.extend(visible().filter_map(|a| a.get_short().map(|s| format!("-{s}"))));
    out
}

/// The connection flags among the words, so completion talks to the cluster the command will.
pub fn kube_args(words: &[String]) -> KubeArgs {
    let mut args = KubeArgs::default();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => match w.strip_prefix("-n") {
                Some(v) if !v.is_empty() && !w.starts_with("--") => ("-n", Some(v.to_string())),
                _ => (w.as_str(), None),
            },
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
    args.request_timeout = Some(COMPLETION_DEADLINE);
    args
}

/// An API list a completion needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Namespaces,
    Pods,
    Services,
    Deployments,
    StatefulSets,
    DaemonSets,
    ReplicaSets,
    Jobs,
    Nodes,
}

/// What to list for `partial` in `slot`, if anything: a bare SOURCE lists pods, `deploy/che`
/// lists Deployments, `--to svc/` lists Services, a bare `--to` word lists nothing (it offers
/// the kinds, or is a HOST:PORT).
pub fn listing(slot: &Slot, partial: &str) -> Option<Listing> {
    let kind = partial.split_once('/').map(|(k, _)| k);
    match slot {
        Slot::Namespace => Some(Listing::Namespaces),
        Slot::Source { .. } => match kind {
            None => Some(Listing::Pods),
            Some("pod" | "po" | "pods") => Some(Listing::Pods),
            Some("deploy" | "deployment" | "deployments" | "deployment.apps") => {
                Some(Listing::Deployments)
            }
            Some("sts" | "statefulset" | "statefulsets" | "statefulset.apps") => {
                Some(Listing::StatefulSets)
            }
            Some("ds" | "daemonset" | "daemonsets" | "daemonset.apps") => Some(Listing::DaemonSets),
            Some("rs" | "replicaset" | "replicasets" | "replicaset.apps") => {
                Some(Listing::ReplicaSets)
            }
            Some("job" | "jobs" | "job.batch") => Some(Listing::Jobs),
            Some("node" | "no" | "nodes") => Some(Listing::Nodes),
            Some(_) => None,
        },
        Slot::Destination => match kind {
            Some("svc" | "service" | "services") => Some(Listing::Services),
            Some("pod" | "po" | "pods") => Some(Listing::Pods),
            _ => None,
        },
        _ => None,
    }
}

/// Candidates for `partial` in `slot`, given the names listed for it, and cobra's directive.
pub fn candidates(slot: &Slot, partial: &str, names: &[String]) -> (Vec<String>, u32) {
    let starts = |c: &&String| c.starts_with(partial);
    let out: Vec<String> = match slot {
        Slot::Files => return (Vec::new(), DIRECTIVE_DEFAULT),
        Slot::Nothing => Vec::new(),
        Slot::Namespace | Slot::Context | Slot::Netns => {
            names.iter().filter(starts).cloned().collect()
        }
        Slot::Values(values) | Slot::Flags(values) => {
            values.iter().filter(starts).cloned().collect()
        }
        Slot::Source { commands } => match partial.split_once('/') {
            Some((kind, rest)) => prefixed(kind, rest, names),
            None => {
                let mut out = kinds(SOURCE_KINDS, partial);
                out.extend(names.iter().filter(starts).cloned());
                if *commands {
                    let root = Cli::command();
                    out.extend(
                        root.get_subcommands()
                            .filter(|s| !s.is_hide_set())
                            .map(|s| s.get_name().to_string())
                            .filter(|s| s.starts_with(partial)),
                    );
                }
                out
            }
        },
        Slot::Destination => match partial.split_once('/') {
            Some((kind, rest)) => prefixed(kind, rest, names),
            None => kinds(DEST_KINDS, partial),
        },
    };
    // Only kind prefixes left: keep the cursor after the `/` so the next TAB lists names.
    let directive = if !out.is_empty() && out.iter().all(|c| c.ends_with('/')) {
        DIRECTIVE_NO_FILE | DIRECTIVE_NO_SPACE
    } else {
        DIRECTIVE_NO_FILE
    };
    (out, directive)
}

fn kinds(kinds: &[&str], partial: &str) -> Vec<String> {
    kinds
        .iter()
        .filter(|k| k.starts_with(partial))
        .map(|k| k.to_string())
        .collect()
}

/// `KIND/NAME` candidates, keeping the kind as the user typed it (`deployment/`, `svc/`).
fn prefixed(kind: &str, rest: &str, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| n.starts_with(rest))
        .map(|n| format!("{kind}/{n}"))
        .collect()
}

/// List one kind's names through the API (metadata only). Errors and slowness give no names,
/// never a hang or a message.
pub async fn fetch(
    client: &kube::Client,
    namespace: &str,
    listing: Listing,
    deadline: Duration,
) -> Vec<String> {
    let c = client.clone();
    let work = async move {
        match listing {
            Listing::Namespaces => names(Api::<Namespace>::all(c)).await,
            Listing::Pods => names(Api::<Pod>::namespaced(c, namespace)).await,
            Listing::Services => names(Api::<Service>::namespaced(c, namespace)).await,
            Listing::Deployments => names(Api::<Deployment>::namespaced(c, namespace)).await,
            Listing::StatefulSets => names(Api::<StatefulSet>::namespaced(c, namespace)).await,
            Listing::DaemonSets => names(Api::<DaemonSet>::namespaced(c, namespace)).await,
            Listing::ReplicaSets => names(Api::<ReplicaSet>::namespaced(c, namespace)).await,
            Listing::Jobs => names(Api::<Job>::namespaced(c, namespace)).await,
            Listing::Nodes => names(Api::<Node>::all(c)).await,
        }
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_default()
}

async fn names<K>(api: Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug,
{
    match api.list_metadata(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Split cobra's arguments into the complete words and the partial word (the last, maybe empty).
fn split(args: &[String]) -> (&[String], &str) {
    match args.split_last() {
        Some((partial, words)) => (words, partial.as_str()),
        None => (&[], ""),
    }
}

/// `--profile=re`: complete the value as if after `--profile`, then put `--profile=` back.
fn inline_flag(words: &[String], partial: &str) -> (Vec<String>, String, String) {
    if let Some((flag, value)) = partial.split_once('=') {
        if flag.starts_with("--") {
            let mut w = words.to_vec();
            w.push(flag.to_string());
            return (w, format!("{flag}="), value.to_string());
        }
    }
    (words.to_vec(), String::new(), partial.to_string())
}

/// Candidates that need no cluster: kubeconfig contexts and network namespaces.
fn local_names(slot: &Slot, words: &[String]) -> Vec<String> {
    match slot {
        Slot::Context => {
            let args = kube_args(words);
            let kubeconfig = match &args.kubeconfig {
                Some(path) => kube::config::Kubeconfig::read_from(path),
                None => kube::config::Kubeconfig::read(),
            };
            kubeconfig
                .map(|k| k.contexts.into_iter().map(|c| c.name).collect())
                .unwrap_or_default()
        }
        Slot::Netns => ["/run/netns", "/var/run/netns"]
            .iter()
            .find_map(|d| std::fs::read_dir(d).ok())
            .map(|entries| {
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The cobra protocol against a given client (or none: then cluster names are just absent).
/// `args` are the words after `kubectl netdebug`, the last being the partial word. Returns the
/// lines to print: candidates, then `:DIRECTIVE`. The namespace is `-n` among the words, else
/// the client's default.
pub async fn complete_with(
    client: Option<&kube::Client>,
    args: &[String],
    deadline: Duration,
) -> Vec<String> {
    let (words, partial) = split(args);
    let (words, prefix, partial) = inline_flag(words, partial);
    let slot = slot(&words, &partial);
    let names = match (client, listing(&slot, &partial)) {
        (Some(client), Some(what)) => {
            let namespace = kube_args(&words)
                .namespace
                .unwrap_or_else(|| client.default_namespace().to_string());
            fetch(client, &namespace, what, deadline).await
        }
        _ => local_names(&slot, &words),
    };
    let (candidates, directive) = candidates(&slot, &partial, &names);
    let mut lines: Vec<String> = candidates
        .into_iter()
        .map(|c| format!("{prefix}{c}"))
        .collect();
    lines.push(format!(":{directive}"));
    lines
}

/// The cobra protocol against the cluster the words name (kubeconfig, context, namespace),
/// all within [`COMPLETION_DEADLINE`].
pub async fn complete(args: &[String]) -> Vec<String> {
    let work = async {
        let (words, partial) = split(args);
        let (words, _, partial) = inline_flag(words, partial);
        let slot = slot(&words, &partial);
        let client = if slot.needs_cluster() && listing(&slot, &partial).is_some() {
            match crate::connect::load_config(&kube_args(&words)).await {
                Ok((config, _)) => kube::Client::try_from(config).ok(),
                Err(_) => None,
            }
        } else {
            None
        };
        complete_with(client.as_ref(), args, COMPLETION_DEADLINE).await
    };
    match tokio::time::timeout(COMPLETION_DEADLINE, work).await {
        Ok(lines) => lines,
        Err(_) => vec![format!(":{DIRECTIVE_NO_FILE}")],
    }
}

/// Whoever prints first (the answer or the watchdog) prints alone.
static STDOUT: Mutex<()> = Mutex::new(());

fn print_and_exit(lines: &[String]) -> ! {
    let _guard = STDOUT.lock();
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
    // exit, not return: no waiting for a blocking task the runtime may still be running.
    std::process::exit(0)
}

/// The entry of `kubectl_complete-netdebug` and `kubectl-netdebug __complete`: print the
/// completion of `args` and exit 0, within a few seconds whatever happens.
pub fn run(args: &[String]) -> ! {
    std::thread::spawn(|| {
        std::thread::sleep(HARD_DEADLINE);
        print_and_exit(&[format!(":{DIRECTIVE_NO_FILE}")]);
    });
    let lines = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(complete(args)),
        Err(_) => vec![format!(":{DIRECTIVE_NO_FILE}")],
    };
    print_and_exit(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn values(v: &[&str]) -> Slot {
        Slot::Values(w(v))
    }

    #[test]
    fn slots_follow_the_previous_word() {
        assert_eq!(slot(&w(&["pod/x", "-n"]), ""), Slot::Namespace);
        assert_eq!(slot(&w(&["pod/x", "--namespace"]), "s"), Slot::Namespace);
        assert_eq!(slot(&w(&["pod/x", "--to"]), "sv"), Slot::Destination);
        assert_eq!(slot(&w(&["--to"]), ""), Slot::Destination);
        assert_eq!(slot(&w(&["pod/x", "--context"]), ""), Slot::Context);
        assert_eq!(slot(&w(&["pod/x", "--kubeconfig"]), "/e"), Slot::Files);
        assert_eq!(slot(&w(&["pod/x", "-w"]), ""), Slot::Files);
        assert_eq!(
            slot(&w(&["pod/x", "--profile"]), ""),
            values(&["auto", "restricted", "baseline", "netadmin"])
        );
        assert_eq!(
            slot(&w(&["pod/x", "-o"]), "j"),
            values(&["text", "markdown", "json"])
        );
        assert_eq!(
            slot(&w(&["pod/x", "--image-pull-policy"]), ""),
            values(&["Always", "IfNotPresent", "Never"])
        );
        // Free-text values: nothing to offer, and not mistaken for SOURCE.
        assert_eq!(slot(&w(&["--timeout"]), ""), Slot::Nothing);
        assert_eq!(slot(&w(&["pod/x", "--dns"]), ""), Slot::Nothing);
        assert_eq!(slot(&w(&["pod/x", "--image"]), "reg"), Slot::Nothing);
    }

    #[test]
    fn slots_of_positionals() {
        assert_eq!(slot(&w(&[]), ""), Slot::Source { commands: true });
        assert_eq!(slot(&w(&[]), "ch"), Slot::Source { commands: true });
        // Flags before SOURCE, their values are not SOURCE.
        assert_eq!(
            slot(&w(&["-n", "shop"]), "ch"),
            Slot::Source { commands: false }
        );
        assert_eq!(
            slot(&w(&["--namespace=shop", "--sockets"]), ""),
            Slot::Source { commands: false }
        );
        assert_eq!(slot(&w(&["pod/x"]), "y"), Slot::Nothing);
        assert_eq!(slot(&w(&["pod/x", "--to", "svc/y"]), ""), Slot::Nothing);
        assert_eq!(slot(&w(&["pod/x", "--sockets"]), ""), Slot::Nothing);
        let Slot::Values(shells) = slot(&w(&["completion"]), "") else {
            panic!("expected the shells");
        };
        for sh in ["bash", "zsh", "fish"] {
            assert!(shells.contains(&sh.to_string()), "{shells:?}");
        }
        assert_eq!(slot(&w(&["completion", "bash"]), ""), Slot::Nothing);
        assert_eq!(slot(&w(&["version"]), ""), Slot::Nothing);
        assert_eq!(slot(&w(&["local"]), ""), Slot::Nothing);
        assert_eq!(slot(&w(&["local", "--netns"]), "b"), Slot::Netns);
        // `local --to` is HOST:PORT, not a cluster object.
        assert_eq!(slot(&w(&["local", "--to"]), ""), Slot::Nothing);
    }

    #[test]
    fn flag_names_come_from_the_command() {
        let Slot::Flags(top) = slot(&w(&["pod/x"]), "--") else {
            panic!("expected flags");
        };
        for f in [
            "--to",
            "--namespace",
            "--profile",
            "--image-pull-policy",
            "-n",
            "-o",
        ] {
            assert!(top.contains(&f.to_string()), "{f} missing from {top:?}");
        }
        assert!(!top.contains(&"--netns".to_string()));
        let Slot::Flags(local) = slot(&w(&["local"]), "--n") else {
            panic!("expected flags");
        };
        assert!(local.contains(&"--netns".to_string()), "{local:?}");
        assert!(!local.contains(&"--namespace".to_string()), "{local:?}");
        let (c, d) = candidates(&Slot::Flags(local), "--n", &[]);
        assert_eq!(c, w(&["--netns", "--no-color"]));
        assert_eq!(d, DIRECTIVE_NO_FILE);
    }

    #[test]
    fn listings_follow_the_kind_prefix() {
        let src = Slot::Source { commands: false };
        assert_eq!(listing(&src, ""), Some(Listing::Pods));
        assert_eq!(listing(&src, "deploy/che"), Some(Listing::Deployments));
        assert_eq!(listing(&src, "deployment/"), Some(Listing::Deployments));
        assert_eq!(listing(&src, "sts/"), Some(Listing::StatefulSets));
        assert_eq!(listing(&src, "ds/"), Some(Listing::DaemonSets));
        assert_eq!(listing(&src, "rs/"), Some(Listing::ReplicaSets));
        assert_eq!(listing(&src, "job/"), Some(Listing::Jobs));
        assert_eq!(listing(&src, "node/v"), Some(Listing::Nodes));
        assert_eq!(listing(&src, "cm/"), None);
        assert_eq!(
            listing(&Slot::Destination, "svc/p"),
            Some(Listing::Services)
        );
        assert_eq!(listing(&Slot::Destination, "pod/"), Some(Listing::Pods));
        assert_eq!(listing(&Slot::Destination, "db.example.com:5432"), None);
        assert_eq!(listing(&Slot::Namespace, ""), Some(Listing::Namespaces));
        assert_eq!(listing(&values(&["a"]), ""), None);
    }

    #[test]
    fn destination_candidates_use_kind_prefixes() {
        let services = w(&["payments", "web"]);
        let (c, d) = candidates(&Slot::Destination, "svc/p", &services);
        assert_eq!(c, w(&["svc/payments"]));
        assert_eq!(d, DIRECTIVE_NO_FILE);
        let (c, d) = candidates(&Slot::Destination, "", &[]);
        assert_eq!(c, w(&["svc/", "pod/"]));
        assert_eq!(d, DIRECTIVE_NO_FILE | DIRECTIVE_NO_SPACE);
        let (c, _) = candidates(&Slot::Destination, "pod/w", &w(&["web-0", "api-0"]));
        assert_eq!(c, w(&["pod/web-0"]));
    }

    #[test]
    fn source_candidates_include_bare_pod_names_and_commands() {
        let pods = w(&["checkout-7d9", "web-0", "loader-1"]);
        let src = Slot::Source { commands: false };
        let (c, d) = candidates(&src, "c", &pods);
        assert_eq!(c, w(&["checkout-7d9"]));
        assert_eq!(d, DIRECTIVE_NO_FILE);
        let (c, _) = candidates(&src, "pod/", &pods);
        assert_eq!(c, w(&["pod/checkout-7d9", "pod/web-0", "pod/loader-1"]));
        let (c, _) = candidates(&src, "deploy/ch", &w(&["checkout", "web"]));
        assert_eq!(c, w(&["deploy/checkout"]));
        let (c, d) = candidates(&src, "d", &pods);
        assert_eq!(c, w(&["deploy/", "ds/"]));
        assert_eq!(d, DIRECTIVE_NO_FILE | DIRECTIVE_NO_SPACE);
        let first = Slot::Source { commands: true };
        let (c, d) = candidates(&first, "l", &pods);
        assert_eq!(c, w(&["loader-1", "local"]));
        assert_eq!(d, DIRECTIVE_NO_FILE);
        let (c, _) = candidates(&first, "", &[]);
        assert!(c.contains(&"completion".to_string()), "{c:?}");
        assert!(!c.iter().any(|c| c.starts_with("__")), "{c:?}");
    }

    #[test]
    fn files_fall_back_to_the_shell() {
        assert_eq!(
            candidates(&Slot::Files, "/etc/k", &[]),
            (vec![], DIRECTIVE_DEFAULT)
        );
        assert_eq!(
            candidates(&Slot::Nothing, "x", &[]),
            (vec![], DIRECTIVE_NO_FILE)
        );
    }

    #[tokio::test]
    async fn inline_flag_values_keep_their_flag() {
        let lines = complete_with(None, &w(&["pod/x", "--profile=re"]), COMPLETION_DEADLINE).await;
        assert_eq!(lines, w(&["--profile=restricted", ":4"]));
        let lines = complete_with(None, &w(&["pod/x", "-o", ""]), COMPLETION_DEADLINE).await;
        assert_eq!(lines, w(&["text", "markdown", "json", ":4"]));
    }

    #[tokio::test]
    async fn contexts_come_from_the_kubeconfig_named_in_the_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n\
             - name: prod\n  context: {cluster: a, user: b}\n\
             - name: staging\n  context: {cluster: a, user: b}\n",
        )
        .unwrap();
        let args = w(&[
            "--kubeconfig",
            path.to_str().unwrap(),
            "pod/x",
            "--context",
            "p",
        ]);
        let lines = complete_with(None, &args, COMPLETION_DEADLINE).await;
        assert_eq!(lines, w(&["prod", ":4"]));
    }

    #[test]
    fn connection_flags_are_honoured() {
        let a = kube_args(&w(&[
            "pod/x",
            "-n",
            "shop",
            "--context=prod",
            "--kubeconfig",
            "/k",
            "--user",
            "u",
        ]));
        assert_eq!(a.namespace.as_deref(), Some("shop"));
        assert_eq!(a.context.as_deref(), Some("prod"));
        assert_eq!(a.kubeconfig, Some("/k".into()));
        assert_eq!(a.user.as_deref(), Some("u"));
        assert_eq!(a.request_timeout, Some(COMPLETION_DEADLINE));
        assert_eq!(
            kube_args(&w(&["-nshop"])).namespace.as_deref(),
            Some("shop")
        );
        assert_eq!(
            kube_args(&w(&["--namespace=shop"])).namespace.as_deref(),
            Some("shop")
        );
    }
}
