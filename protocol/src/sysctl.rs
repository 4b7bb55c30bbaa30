//! Sysctl names as typed keys. The probe writes and the verdict reads the same key, so the one
//! place that spells a name is [`Sysctl::name`]: an interface whose name has a dot (a VLAN,
//! `eth0.100`) is written `net.ipv4.conf.eth0/100.rp_filter`, as `sysctl(8)` writes it, and a
//! reader asks for `Sysctl::RpFilter(ConfScope::Interface("eth0.100"))` without knowing that.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::spelled;

/// A sysctl the probe reports. Ordered by its dotted name (the JSON map's order).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sysctl {
    /// `net.ipv4.conf.<scope>.rp_filter`: reverse path filtering (0 off, 1 strict, 2 loose;
    /// the kernel applies max(all, interface)).
    RpFilter(ConfScope),
    /// A namespace-wide setting.
    Setting(Setting),
    /// A name this version does not know (a newer probe's), kept verbatim.
    Unknown(String),
}

/// Which `net.ipv4.conf` directory a per-interface setting is read from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfScope {
    All,
    Default,
    /// An interface, by its kernel name (dots and all).
    Interface(String),
}

spelled! {
    /// Namespace-wide settings the probe reads, by their dotted names.
    pub enum Setting {
        IpLocalPortRange = "net.ipv4.ip_local_port_range",
        IpForward = "net.ipv4.ip_forward",
        PingGroupRange = "net.ipv4.ping_group_range",
        TcpTwReuse = "net.ipv4.tcp_tw_reuse",
        TcpFinTimeout = "net.ipv4.tcp_fin_timeout",
        TcpKeepaliveTime = "net.ipv4.tcp_keepalive_time",
        TcpKeepaliveIntvl = "net.ipv4.tcp_keepalive_intvl",
        TcpKeepaliveProbes = "net.ipv4.tcp_keepalive_probes",
        TcpSynRetries = "net.ipv4.tcp_syn_retries",
        TcpSynackRetries = "net.ipv4.tcp_synack_retries",
        TcpMaxSynBacklog = "net.ipv4.tcp_max_syn_backlog",
        TcpSyncookies = "net.ipv4.tcp_syncookies",
        TcpMtuProbing = "net.ipv4.tcp_mtu_probing",
        IpNoPmtuDisc = "net.ipv4.ip_no_pmtu_disc",
        Somaxconn = "net.core.somaxconn",
        Ipv6DisableAll = "net.ipv6.conf.all.disable_ipv6",
    }
}

const RP_PREFIX: &str = "net.ipv4.conf.";
const RP_SUFFIX: &str = ".rp_filter";

impl Sysctl {
    /// rp_filter of one interface.
    pub fn rp_filter_of(interface: &str) -> Sysctl {
        Sysctl::RpFilter(ConfScope::Interface(interface.to_string()))
    }

    /// The dotted name, as `sysctl(8)` prints it (dots inside an interface name become `/`).
    pub fn name(&self) -> String {
        match self {
            Sysctl::RpFilter(scope) => {
                let dir = match scope {
                    ConfScope::All => "all".to_string(),
                    ConfScope::Default => "default".to_string(),
                    ConfScope::Interface(name) => name.replace('.', "/"),
                };
                format!("{RP_PREFIX}{dir}{RP_SUFFIX}")
            }
            Sysctl::Setting(s) => s.as_str().to_string(),
            Sysctl::Unknown(name) => name.clone(),
        }
    }

    /// Read a dotted name.
    pub fn parse(name: &str) -> Sysctl {
        if let Some(dir) = name
            .strip_prefix(RP_PREFIX)
            .and_then(|rest| rest.strip_suffix(RP_SUFFIX))
        {
            if !dir.is_empty() && !dir.contains('.') {
                return Sysctl::RpFilter(match dir {
                    "all" => ConfScope::All,
                    "default" => ConfScope::Default,
                    dev => ConfScope::Interface(dev.replace('/', ".")),
                });
            }
        }
        match name.parse::<Setting>() {
            Ok(s) => Sysctl::Setting(s),
            Err(_) => Sysctl::Unknown(name.to_string()),
        }
    }

    /// The file under /proc/sys: the dotted name with `.` as the separator, and the interface
    /// name (which may hold dots) kept whole.
    pub fn proc_path(&self) -> String {
        match self {
            Sysctl::RpFilter(ConfScope::Interface(name)) => {
                format!("/proc/sys/net/ipv4/conf/{name}/rp_filter")
            }
            other => format!("/proc/sys/{}", other.name().replace('.', "/")),
        }
    }
}

impl Ord for Sysctl {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(&other.name())
    }
}

impl PartialOrd for Sysctl {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Sysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Sysctl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Sysctl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Sysctl::parse(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: rp_filter of a VLAN interface was written under `eth0/100` and looked up
    /// under `eth0.100`, so the asymmetric-route rule could never fire on it.
    #[test]
    fn rp_filter_of_vlan_interface_round_trips_through_its_sysctl_name() {
        let key = Sysctl::rp_filter_of("eth0.100");
        assert_eq!(key.name(), "net.ipv4.conf.eth0/100.rp_filter");
        assert_eq!(
            key.proc_path(),
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"
        );
        assert_eq!(Sysctl::parse(&key.name()), key);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(serde_json::from_str::<Sysctl>(&json).unwrap(), key);
    }

    #[test]
    fn settings_and_unknown_names() {
        assert_eq!(
            Sysctl::parse("net.core.somaxconn"),
            Sysctl::Setting(Setting::Somaxconn)
        );
        assert_eq!(
            Sysctl::parse("net.ipv4.conf.all.rp_filter"),
            Sysctl::RpFilter(ConfScope::All)
        );
        assert_eq!(
            Sysctl::Setting(Setting::IpLocalPortRange).proc_path(),
            "/proc/sys/net/ipv4/ip_local_port_range"
        );
        let unknown = Sysctl::parse("net.ipv4.tcp_new_thing");
        assert_eq!(unknown, Sysctl::Unknown("net.ipv4.tcp_new_thing".into()));
        assert_eq!(unknown.name(), "net.ipv4.tcp_new_thing");
    }
}
