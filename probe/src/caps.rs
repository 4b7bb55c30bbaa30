//! Who the probe runs as: uid and effective capabilities, read from /proc/self/status.
//! Parsing the CapEff mask is a few lines; the `caps` crate would add a dependency for the same.

/// Capability bit numbers to names, in `capabilities(7)` order.
const CAP_NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileges {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    /// Effective capability names (`net_raw`...).
    pub capabilities: Vec<String>,
}

impl Privileges {
    pub fn current() -> Privileges {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        Privileges::from_status(&status)
    }

    pub fn from_status(status: &str) -> Privileges {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
        };
        let ids = |name: &str| -> (u32, u32) {
            let mut it = field(name)
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(u32::MAX));
            (it.next().unwrap_or(u32::MAX), it.next().unwrap_or(u32::MAX))
        };
        let (uid, euid) = ids("Uid:");
        let (gid, _) = ids("Gid:");
        let mask = u64::from_str_radix(field("CapEff:"), 16).unwrap_or(0);
        Privileges {
            uid,
            euid,
            gid,
            capabilities: names_of(mask),
        }
    }

    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }
}

fn names_of(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| {
            CAP_NAMES
                .get(bit)
                .map(|n| n.to_string())
                .unwrap_or_else(|| format!("cap_{bit}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let status = "Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000003000\n";
        let p = Privileges::from_status(status);
        assert_eq!((p.uid, p.euid, p.gid), (0, 0, 65534));
        assert_eq!(p.capabilities, vec!["net_admin", "net_raw"]);
        assert!(p.has("net_raw"));
    }

    #[test]
    fn no_capabilities() {
        let p = Privileges::from_status(
            "Uid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\n",
        );
        assert!(p.capabilities.is_empty());
        assert_eq!(p.uid, 65534);
    }
}
