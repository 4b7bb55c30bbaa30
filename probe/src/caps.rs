//! Who the probe runs as: uid and effective capabilities, read from /proc/self/status.
//! Parsing the CapEff mask is a few lines; the `caps` crate would add a dependency for the same.
//! Bit numbers map to names through the protocol's [`Capability`], in `capabilities(7)` order.

use protocol::{Capability, Open};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privileges {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    /// Effective capabilities; a bit this version has no name for is `cap_N`.
    pub capabilities: Vec<Open<Capability>>,
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

    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities.iter().any(|c| *c == cap)
    }
}

fn names_of(mask: u64) -> Vec<Open<Capability>> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match Capability::from_bit(bit) {
            Some(c) => Open::Known(c),
            None => Open::Unknown(format!("cap_{bit}")),
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
        assert_eq!(
            p.capabilities,
            vec![
                Open::Known(Capability::NetAdmin),
                Open::Known(Capability::NetRaw)
            ]
        );
        assert!(p.has(Capability::NetRaw));
        assert!(!p.has(Capability::SysAdmin));
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
