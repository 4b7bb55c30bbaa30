//! Check `sysctls`: the kernel settings that change how this namespace's traffic behaves, read
//! from /proc/sys (net.* sysctls are per network namespace, so this is the pod's view). Reverse
//! path filtering is read for `all`, `default` and every interface a target's route leaves by.
//! A value the namespace cannot read is absent, never guessed. Needs no privileges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use protocol::{Evidence, RouteOutcome, SysctlsEvidence};

use super::Outcome;
use crate::context::Ctx;
use crate::netlink::Rtnl;

/// Namespace-wide settings, by dotted name.
const SETTINGS: &[&str] = &[
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_forward",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_synack_retries",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_mtu_probing",
    "net.ipv4.ip_no_pmtu_disc",
    "net.core.somaxconn",
    "net.ipv6.conf.all.disable_ipv6",
];

pub async fn run(ctx: Arc<Ctx>) -> Outcome {
    let devices = route_devices(&ctx).await;
    let mut names: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
    for dev in &devices {
        names.push(format!("net.ipv4.conf.{}.rp_filter", dev.replace('.', "/")));
    }
    let values = match tokio::task::spawn_blocking(move || read_all(&names)).await {
        Ok(v) => v,
        Err(e) => return Outcome::Failed(format!("reading /proc/sys: {e}")),
    };
    ctx.emit(Evidence::Sysctls(SysctlsEvidence { values }));
    Outcome::Completed
}

/// Interfaces the targets' routes leave by. Lookups that fail just add no interface: the
/// route check reports them.
async fn route_devices(ctx: &Ctx) -> BTreeSet<String> {
    let mut devices = BTreeSet::new();
    if ctx.plan.targets.is_empty() {
        return devices;
    }
    let Ok(rtnl) = Rtnl::connect() else {
        return devices;
    };
    let Ok(names) = rtnl.link_names().await else {
        return devices;
    };
    for target in &ctx.plan.targets {
        let Ok(addresses) = ctx.resolve_target(target).await else {
            continue;
        };
        for destination in addresses {
            if let Ok(msg) = rtnl.route_get(destination).await {
                if let RouteOutcome::Found(info) =
                    super::route::outcome_of(&msg, destination, &names, &[])
                {
                    devices.extend(info.dev);
                }
            }
        }
    }
    devices
}

/// Read each sysctl; unreadable ones (absent, or hidden in this namespace) are left out.
fn read_all(names: &[String]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| {
            let value = std::fs::read_to_string(proc_path(name)).ok()?;
            Some((name.clone(), value.trim_end_matches('\n').to_string()))
        })
        .collect()
}

/// `net.ipv4.conf.eth0/100.rp_filter` -> `/proc/sys/net/ipv4/conf/eth0.100/rp_filter`: dots
/// separate levels and a `/` stands for a dot inside a name, as sysctl(8) spells it.
pub fn proc_path(name: &str) -> PathBuf {
    let mut path = PathBuf::from("/proc/sys");
    for part in name.split('.') {
        path.push(part.replace('/', "."));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_to_paths() {
        assert_eq!(
            proc_path("net.ipv4.conf.all.rp_filter"),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/rp_filter")
        );
        assert_eq!(
            proc_path("net.ipv4.conf.eth0/100.rp_filter"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/rp_filter")
        );
    }

    #[test]
    fn unreadable_values_are_absent() {
        let values = read_all(&[
            "net.core.somaxconn".to_string(),
            "net.ipv4.conf.ndt-no-such-dev.rp_filter".to_string(),
        ]);
        assert!(values.contains_key("net.core.somaxconn"));
        assert!(!values.contains_key("net.ipv4.conf.ndt-no-such-dev.rp_filter"));
    }
}
