use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Counter, Open, Sysctl};

/// /proc/net/snmp and /proc/net/netstat counters sampled at the start and end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountersEvidence {
    /// Interval between the two samples.
    pub interval_ms: f64,
    /// Counters that matter for diagnosis, keyed `Group.Name` (`Tcp.RetransSegs`,
    /// `TcpExt.ListenOverflows`, `Udp.RcvbufErrors`...): value at the end and delta.
    pub counters: BTreeMap<Open<Counter>, CounterValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterValue {
    pub value: u64,
    pub delta: u64,
}

/// Connection tracking table fill, as visible from the namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConntrackEvidence {
    /// False when conntrack is not loaded or not visible: then the numbers are absent, not zero.
    pub present: bool,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub max: Option<u64>,
    #[serde(default)]
    pub fill_ratio: Option<f64>,
    /// Insert failures / drops / early drops summed over CPUs, when /proc/net/stat/nf_conntrack
    /// is readable.
    #[serde(default)]
    pub insert_failed: Option<u64>,
    #[serde(default)]
    pub drop: Option<u64>,
    #[serde(default)]
    pub early_drop: Option<u64>,
    #[serde(default)]
    pub note: Option<String>,
}

/// Sysctls that change how traffic behaves, keyed by their dotted names as `sysctl(8)` prints
/// them (`net.ipv4.conf.eth0/100.rp_filter` for the VLAN interface `eth0.100`; see
/// [`Sysctl`]). A value the namespace cannot read is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SysctlsEvidence {
    pub values: BTreeMap<Sysctl, String>,
}

impl SysctlsEvidence {
    pub fn get(&self, key: &Sysctl) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}
