//! Check `sysctls`: the kernel settings that change how this namespace's traffic behaves, read
//! from /proc/sys (net.* sysctls are per network namespace, so this is the pod's view). Reverse
//! path filtering is read for `all`, `default` and every interface of the namespace: the
//! asymmetric-route rule needs the interface that holds the source address, which need not be
//! the one a target's route leaves by. A value the namespace cannot read is absent, never
//! guessed. Needs no privileges.

use std::collections::BTreeMap;
use std::sync::Arc;

use protocol::{ConfScope, Evidence, Setting, Spelled, Sysctl, SysctlsEvidence};

use super::Outcome;
use crate::context::Ctx;
use crate::netlink::Rtnl;

/// A pod has a handful of interfaces; a node may have hundreds of veths. Past this many, the
/// per-interface values are left out (the namespace-wide ones are always read).
const MAX_INTERFACES: usize = 256;

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let mut keys: Vec<Sysctl> = vec![
        Sysctl::RpFilter(ConfScope::All),
        Sysctl::RpFilter(ConfScope::Default),
    ];
    keys.extend(Setting::ALL.iter().copied().map(Sysctl::Setting));
    keys.extend(interfaces().await.iter().map(|i| Sysctl::rp_filter_of(i)));
    let values = match tokio::task::spawn_blocking(move || read_all(&keys)).await {
        Ok(v) => v,
        Err(e) => return Outcome::Failed(format!("reading /proc/sys: {e}")),
    };
    ctx.emit(Evidence::Sysctls(SysctlsEvidence { values }));
    Outcome::Completed
}

/// The namespace's interface names (none when rtnetlink is unavailable: the links check
/// reports that).
async fn interfaces() -> Vec<String> {
    let Ok(rtnl) = Rtnl::connect() else {
        return Vec::new();
    };
    let Ok(names) = rtnl.link_names().await else {
        return Vec::new();
    };
    let mut names: Vec<String> = names.into_values().collect();
    names.sort();
    names.truncate(MAX_INTERFACES);
    names
}

/// Read each sysctl; unreadable ones (absent, or hidden in this namespace) are left out.
fn read_all(keys: &[Sysctl]) -> BTreeMap<Sysctl, String> {
    keys.iter()
        .filter_map(|key| {
            let value = std::fs::read_to_string(key.proc_path()).ok()?;
            Some((key.clone(), value.trim_end_matches('\n').to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_values_are_absent() {
        let somaxconn = Sysctl::Setting(Setting::Somaxconn);
        let missing = Sysctl::rp_filter_of("ndt-no-such-dev");
        let values = read_all(&[somaxconn.clone(), missing.clone()]);
        assert!(values.contains_key(&somaxconn));
        assert!(!values.contains_key(&missing));
    }
}
