//! Preconditions: root and the external tools the scenarios drive. These FAIL (never skip) with
//! a message saying what to do, because CI runs the suite as root with the tools installed and
//! a silently skipped test proves nothing.

use std::path::Path;

/// Panics unless the effective uid is 0.
#[track_caller]
pub fn require_root() {
    assert!(
        effective_uid() == Some(0),
        "these tests need root (CI runs them as root): run with sudo"
    );
}

/// The effective uid from /proc/self/status (no libc call needed).
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Panics naming every missing tool and the Debian package that provides it.
#[track_caller]
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| find_in_path(t).is_none())
        .map(|t| format!("`{t}` (apt-get install {})", debian_package(t)))
        .collect();
    assert!(
        missing.is_empty(),
        "missing tools needed by this test: {}",
        missing.join(", ")
    );
}

/// The Debian package providing `tool`, for error messages.
pub fn debian_package(tool: &str) -> &'static str {
    match tool {
        "ip" | "ss" | "bridge" | "tc" => "iproute2",
        "iptables" | "ip6tables" | "iptables-save" => "iptables",
        "nft" => "nftables",
        "dnsmasq" => "dnsmasq-base",
        "dig" | "nslookup" => "bind9-dnsutils",
        "tcpdump" => "tcpdump",
        "conntrack" => "conntrack",
        "nstat" => "iproute2",
        "sysctl" => "procps",
        "prlimit" | "setpriv" | "nsenter" => "util-linux",
        "python3" => "python3",
        "bash" => "bash",
        "sleep" => "coreutils",
        _ => "the package that provides it",
    }
}

/// Searches `$PATH` plus the sbin directories (tests may run with a user's PATH under sudo).
pub fn find_in_path(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file());
    found
}
