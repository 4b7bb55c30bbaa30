//! resolv.conf as glibc reads it. The `resolv-conf` crate does the line parsing; this module
//! applies glibc's rules on top: at most three nameservers, 127.0.0.1 when none, the last
//! `search`/`domain` line wins, the host name's domain when neither is present, and glibc's
//! caps on ndots/timeout/attempts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};

use protocol::{DnsConfigEvidence, Open};
use resolv_conf::ScopedIp;

/// glibc's MAXNS: nameserver lines after the third are ignored.
const MAX_NAMESERVERS: usize = 3;
/// glibc's RES_MAXNDOTS, RES_MAXRETRANS and RES_MAXRETRY caps.
const MAX_NDOTS: u32 = 15;
const MAX_TIMEOUT_S: u32 = 30;
const MAX_ATTEMPTS: u32 = 5;
const DNS_PORT: u16 = 53;

/// Resolver settings, as glibc's stub resolver would use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: u32,
    pub timeout_s: u32,
    pub attempts: u32,
    pub rotate: bool,
    /// `use-vc`: every query over TCP.
    pub use_vc: bool,
    /// `single-request` / `single-request-reopen`: A and AAAA one after the other.
    pub single_request: bool,
    /// How an application's resolver sends A and AAAA (see `app.rs`): `use-vc`, then
    /// `single-request` (which glibc lets win over `-reopen`), then `single-request-reopen`.
    pub send_mode: protocol::DnsSendMode,
    /// `no-tld-query`: a single-label name is never sent as is once searched.
    pub no_tld_query: bool,
    /// `no-aaaa`: no AAAA queries.
    pub no_aaaa: bool,
    /// `edns0`: queries carry an OPT record advertising 1200 bytes (glibc's size).
    pub edns0: bool,
    /// The hosts file, looked up before DNS.
    pub hosts: super::hosts::HostsFile,
}

impl Default for ResolverConfig {
    /// glibc's defaults when resolv.conf is absent.
    fn default() -> Self {
        ResolverConfig {
            nameservers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT)],
            search: Vec::new(),
            ndots: 1,
            timeout_s: 5,
            attempts: 2,
            rotate: false,
            use_vc: false,
            single_request: false,
            send_mode: protocol::DnsSendMode::Parallel,
            hosts: Default::default(),
            no_tld_query: false,
            no_aaaa: false,
            edns0: false,
        }
    }
}

/// Read and parse `path`; never fails: an unreadable file yields glibc's defaults and `error`.
pub fn load_config(path: &str, hosts_path: &str) -> (ResolverConfig, DnsConfigEvidence) {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let (mut config, mut evidence) = match std::fs::read(path) {
        Ok(bytes) => parse_config(path, &bytes, hostname.as_deref()),
        Err(e) => {
            let (config, mut evidence) = parse_config(path, b"", hostname.as_deref());
            evidence.error = Some(format!("cannot read {path}: {e}"));
            (config, evidence)
        }
    };
    let hosts = super::hosts::HostsFile::load(hosts_path);
    evidence.hosts_file = Some(hosts_path.to_string());
    match &hosts.error {
        None => evidence.hosts_entries = Some(hosts.len() as u32),
        Some(e) => evidence
            .notes
            .push(format!("{e}: names are looked up in DNS only")),
    }
    config.hosts = hosts;
    (config, evidence)
}

/// Apply glibc's rules to the text of a resolv.conf. `hostname` is the kernel host name
/// (glibc derives the search list from it when the file has no `search` or `domain`).
pub fn parse_config(
    path: &str,
    bytes: &[u8],
    hostname: Option<&str>,
) -> (ResolverConfig, DnsConfigEvidence) {
    // glibc ignores what it does not understand, line by line; so does parse_with_errors.
    let (parsed, errors) = resolv_conf::Config::parse_with_errors(bytes);
    let mut notes: Vec<String> = errors
        .iter()
        .map(|e| format!("ignored (as glibc does): {e}"))
        .collect();

    let mut nameservers = Vec::new();
    let mut ignored_nameservers = Vec::new();
    for ns in &parsed.nameservers {
        match to_socket_addr(ns) {
            Ok(addr) if nameservers.len() < MAX_NAMESERVERS => nameservers.push(addr),
            Ok(addr) => ignored_nameservers.push(addr.ip()),
            Err(why) => notes.push(format!("ignored nameserver {ns}: {why}")),
        }
    }
    let nameservers_defaulted = nameservers.is_empty();
    if nameservers_defaulted {
        nameservers = ResolverConfig::default().nameservers;
        notes.push("no nameserver line: glibc queries 127.0.0.1".into());
    }
    if !ignored_nameservers.is_empty() {
        notes.push(format!(
            "glibc uses only the first {MAX_NAMESERVERS} nameservers; {} more ignored",
            ignored_nameservers.len()
        ));
    }

    let mut search: Vec<String> = parsed
        .get_last_search_or_domain()
        .filter(|d| !d.is_empty())
        .cloned()
        .collect();
    if parsed.get_search().is_none() && parsed.get_domain().is_none() {
        if let Some(domain) = hostname.and_then(domain_of_hostname) {
            notes.push(format!(
                "no search or domain line: search list `{domain}` from the host name"
            ));
            search.push(domain);
        }
    }

    if parsed.attempts == 0 {
        notes.push("attempts:0 leaves glibc nothing to send; the probe makes one pass".into());
    }
    let options = other_options(bytes);
    let config = ResolverConfig {
        nameservers,
        search,
        ndots: parsed.ndots.min(MAX_NDOTS),
        timeout_s: parsed.timeout.min(MAX_TIMEOUT_S),
        // `attempts:0` would leave glibc's retry loop empty; the probe still makes one pass
        // (and says so in `notes`) so the evidence shows what the nameserver does.
        attempts: parsed.attempts.clamp(1, MAX_ATTEMPTS),
        rotate: parsed.rotate,
        use_vc: parsed.use_vc,
        single_request: parsed.single_request || parsed.single_request_reopen,
        send_mode: if parsed.use_vc {
            protocol::DnsSendMode::UseVc
        } else if parsed.single_request {
            protocol::DnsSendMode::SingleRequest
        } else if parsed.single_request_reopen {
            protocol::DnsSendMode::SingleRequestReopen
        } else {
            protocol::DnsSendMode::Parallel
        },
        no_tld_query: parsed.no_tld_query,
        no_aaaa: parsed.no_aaaa,
        edns0: parsed.edns0,
        hosts: Default::default(),
    };
    let evidence = DnsConfigEvidence {
        path: path.to_string(),
        nameservers: config.nameservers.iter().map(|a| a.ip()).collect(),
        search: config.search.clone(),
        ndots: config.ndots,
        timeout_s: config.timeout_s,
        attempts: config.attempts,
        options: options.iter().map(|o| Open::parse(o)).collect(),
        error: None,
        nameservers_defaulted,
        ignored_nameservers,
        notes,
        hosts_file: None,
        hosts_entries: None,
    };
    (config, evidence)
}

fn to_socket_addr(ns: &ScopedIp) -> Result<SocketAddr, String> {
    match ns {
        ScopedIp::V4(ip) => Ok(SocketAddr::new(IpAddr::V4(*ip), DNS_PORT)),
        ScopedIp::V6(ip, None) => Ok(SocketAddr::new(IpAddr::V6(*ip), DNS_PORT)),
        ScopedIp::V6(ip, Some(scope)) => {
            // A numeric scope is an interface index already; a name is looked up through
            // if_nametoindex (an ioctl, not a resolver).
            let index = match scope.parse::<u32>() {
                Ok(index) => index,
                Err(_) => nix::net::if_::if_nametoindex(scope.as_str())
                    .map_err(|e| format!("interface `{scope}`: {e}"))?,
            };
            Ok(SocketAddr::V6(SocketAddrV6::new(*ip, DNS_PORT, 0, index)))
        }
    }
}

/// glibc: when no search/domain is configured, the part of the host name after the first dot.
fn domain_of_hostname(hostname: &str) -> Option<String> {
    let hostname = hostname.trim();
    let (_, domain) = hostname.split_once('.')?;
    (!domain.is_empty()).then(|| domain.to_string())
}

/// Every `options` token other than ndots/timeout/attempts, verbatim and in file order.
/// `resolv-conf` turns known options into booleans and drops unknown ones, so the raw tokens
/// are re-read here to show the operator exactly what the file says.
fn other_options(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if words.next() != Some("options") {
            continue;
        }
        for word in words {
            let key = word.split(':').next().unwrap_or(word);
            if !matches!(key, "ndots" | "timeout" | "attempts") && !out.iter().any(|o| o == word) {
                out.push(word.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (ResolverConfig, DnsConfigEvidence) {
        parse_config("/test/resolv.conf", text.as_bytes(), None)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn kubernetes_pod_resolv_conf() {
        let (c, e) = parse(
            "search shop.svc.cluster.local svc.cluster.local cluster.local\n\
             nameserver 10.96.0.10\noptions ndots:5\n",
        );
        assert_eq!(c.nameservers, vec![sa("10.96.0.10:53")]);
        assert_eq!(
            c.search,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!((c.ndots, c.timeout_s, c.attempts), (5, 5, 2));
        assert!(e.options.is_empty());
        assert!(!e.nameservers_defaulted);
        assert!(e.notes.is_empty(), "{:?}", e.notes);
    }

    #[test]
    fn glibc_defaults_when_empty() {
        let (c, e) = parse("");
        assert_eq!(c, ResolverConfig::default());
        assert_eq!(c.nameservers, vec![sa("127.0.0.1:53")]);
        assert!(e.nameservers_defaulted);
        assert_eq!((e.ndots, e.timeout_s, e.attempts), (1, 5, 2));
        assert!(e.search.is_empty());
    }

    #[test]
    fn only_three_nameservers_are_used() {
        let (c, e) = parse(
            "nameserver 10.199.0.1\nnameserver 10.199.0.2\nnameserver fd00:199::3\n\
             nameserver 10.199.0.4\n",
        );
        assert_eq!(
            c.nameservers,
            vec![
                sa("10.199.0.1:53"),
                sa("10.199.0.2:53"),
                sa("[fd00:199::3]:53")
            ]
        );
        assert_eq!(
            e.ignored_nameservers,
            vec!["10.199.0.4".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn last_of_search_and_domain_wins() {
        assert_eq!(
            parse("search a.example b.example\ndomain c.example\n")
                .0
                .search,
            ["c.example"]
        );
        assert_eq!(
            parse("domain c.example\nsearch a.example b.example\n")
                .0
                .search,
            ["a.example", "b.example"]
        );
        assert_eq!(parse("domain only.example\n").0.search, ["only.example"]);
    }

    #[test]
    fn search_from_hostname_only_without_search_or_domain() {
        let (c, e) = parse_config("p", b"nameserver 10.199.0.1\n", Some("node1.lab.example\n"));
        assert_eq!(c.search, ["lab.example"]);
        assert!(e.notes.iter().any(|n| n.contains("host name")));
        let (c, _) = parse_config("p", b"search x.example\n", Some("node1.lab.example"));
        assert_eq!(c.search, ["x.example"]);
        let (c, _) = parse_config("p", b"", Some("nodot"));
        assert!(c.search.is_empty());
    }

    #[test]
    fn options_are_capped_like_glibc_and_others_kept_verbatim() {
        let (c, e) = parse(
            "nameserver 10.199.0.1\noptions ndots:20 timeout:99 attempts:9 rotate\n\
             options edns0 single-request use-vc no-aaaa no-tld-query frobnicate\n",
        );
        assert_eq!((c.ndots, c.timeout_s, c.attempts), (15, 30, 5));
        assert!(c.rotate && c.edns0 && c.single_request && c.use_vc && c.no_aaaa && c.no_tld_query);
        assert_eq!(
            e.options.iter().map(Open::as_str).collect::<Vec<_>>(),
            [
                "rotate",
                "edns0",
                "single-request",
                "use-vc",
                "no-aaaa",
                "no-tld-query",
                "frobnicate"
            ]
        );
        assert!(
            e.notes.iter().any(|n| n.contains("ignored")),
            "{:?}",
            e.notes
        );
    }

    #[test]
    fn comments_and_junk_lines_are_ignored() {
        let (c, e) = parse(
            "# generated\n; another\nnameserver 10.199.0.9 # trailing\nbogus line\n\
             nameserver not-an-ip\noptions ndots:2 # x\n",
        );
        assert_eq!(c.nameservers, vec![sa("10.199.0.9:53")]);
        assert_eq!(c.ndots, 2);
        assert!(e.notes.len() >= 2, "{:?}", e.notes);
    }

    #[test]
    fn scoped_ipv6_nameserver_with_numeric_scope() {
        let (c, _) = parse("nameserver fe80::1%1\n");
        assert_eq!(c.nameservers.len(), 1);
        match c.nameservers[0] {
            SocketAddr::V6(v6) => assert_eq!(v6.scope_id(), 1),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn unreadable_file_gives_defaults_and_error() {
        let (c, e) = load_config("/nonexistent/ndt/resolv.conf", "/nonexistent/ndt/hosts");
        assert_eq!(c.nameservers, vec![sa("127.0.0.1:53")]);
        assert!(e.error.unwrap().contains("/nonexistent/ndt/resolv.conf"));
    }
}
