//! Next steps that ask for a check needing a privilege: one the user can run. When the run's
//! profile did not grant the privilege (a namespace enforcing Pod Security `restricted`
//! forbids NET_RAW), suggesting the same flag again in the same place is a dead end; the step
//! says why and gives what works instead (the same capture from the pod's node: --via-node).

use std::net::SocketAddr;

use protocol::{Capability, CheckKind};

use crate::facts::Facts;
use crate::model::Origin;

/// Why this run could not run a check: the capability it needs, and the profile that did not
/// grant it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotGranted {
    pub capability: Capability,
    /// `profile restricted (namespace shop enforces restricted)`, or `this process` for a
    /// local run.
    pub by: String,
}

/// Whether the place this run looked from can run `check`. Unknown (no hello, no skip) reads
/// as runnable: only evidence of a missing privilege turns a step into its alternative.
pub fn not_granted(f: &Facts, check: CheckKind) -> Option<NotGranted> {
    let capability = check.info().privilege?;
    let skipped = f.skipped.iter().any(|s| {
        s.check == check
            && s.missing_capability
                .as_ref()
                .is_some_and(|c| *c == capability)
    });
    let lacking = f
        .hello
        .is_some_and(|h| !h.capabilities.iter().any(|c| *c == capability));
    if !(skipped || lacking) {
        return None;
    }
    let by = match (&f.kube.profile, f.is_local()) {
        (Some(p), false) => format!("profile {} ({})", p.name, p.reason),
        (None, false) => "the probe's profile".to_string(),
        (_, true) => "this process".to_string(),
    };
    Some(NotGranted { capability, by })
}

/// `kubectl netdebug ... --capture -w trace.pcap` from the same place, when the run could
/// capture; otherwise the capture that works: for a pod, the same run entered from its node
/// (`--via-node`: nothing is added to the pod, and the pod's profile does not bind the probe
/// pod, which goes to a namespace NS that admits privileged pods); for a local run, the same
/// command as root. `purpose` is the comment the step ends with (`if the app still fails`).
pub fn capture(f: &Facts, origin: &Origin, asked: Option<&str>, purpose: &str) -> String {
    let flags = "--capture -w trace.pcap";
    let Some(missing) = not_granted(f, CheckKind::Capture) else {
        return format!("{}   # {purpose}", origin.command(asked, flags));
    };
    let why = format!(
        "capture needs {}, which {} does not grant",
        missing.capability.as_str().to_uppercase(),
        missing.by
    );
    match origin {
        Origin::Pod { .. } => {
            let node = f
                .kube
                .source
                .as_ref()
                .and_then(|s| s.node.as_deref())
                .map(|n| format!("node {n}"))
                .unwrap_or_else(|| "the pod's node".into());
            format!(
                "{}   # {purpose}: from {node}, NS a namespace that admits privileged pods \
                 ({why} in the pod)",
                origin.command(asked, &format!("--via-node --node-namespace NS {flags}"))
            )
        }
        _ => format!(
            "sudo {}   # {purpose} ({why})",
            origin.command(asked, flags)
        ),
    }
}

pub fn host_port_filter(a: SocketAddr) -> String {
    format!("host {} and port {}", a.ip(), a.port())
}
