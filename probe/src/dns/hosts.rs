//! /etc/hosts, read the way glibc's `files` source reads it for getaddrinfo: one address and
//! its names per line, `#` starts a comment, names compared without case and without a
//! trailing dot, no search list applied. Looked up before DNS (`hosts: files dns`, the usual
//! nsswitch order, and musl's fixed one). In a pod the file is the kubelet's: the pod's own
//! name and `hostAliases`.

use std::net::IpAddr;

/// The entries of a hosts file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFile {
    pub path: String,
    entries: Vec<(IpAddr, Vec<String>)>,
    /// Why the file could not be read, if it could not.
    pub error: Option<String>,
}

impl HostsFile {
    pub fn load(path: &str) -> HostsFile {
        match std::fs::read_to_string(path) {
            Ok(text) => HostsFile::parse(path, &text),
            Err(e) => HostsFile {
                path: path.to_string(),
                entries: Vec::new(),
                error: Some(format!("cannot read {path}: {e}")),
            },
        }
    }

    pub fn parse(path: &str, text: &str) -> HostsFile {
        let entries = text
            .lines()
            .filter_map(|line| {
                let line = line.split('#').next().unwrap_or("");
                let mut words = line.split_whitespace();
                let ip: IpAddr = words.next()?.parse().ok()?;
                let names: Vec<String> = words.map(normalise).collect();
                (!names.is_empty()).then_some((ip, names))
            })
            .collect();
        HostsFile {
            path: path.to_string(),
            entries,
            error: None,
        }
    }

    /// Lines with at least one name.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The addresses of every line that names `name`, IPv4 first (getaddrinfo's order for
    /// AF_UNSPEC with the files source), each once.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        let name = normalise(name);
        let mut found: Vec<IpAddr> = Vec::new();
        for (ip, names) in &self.entries {
            if names.contains(&name) && !found.contains(ip) {
                found.push(*ip);
            }
        }
        found.sort_by_key(|ip| ip.is_ipv6());
        found
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBELET_HOSTS: &str = "# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
10.244.0.7\tclient

# Entries added by HostAliases.
10.199.5.5\tlegacy-db.corp.example\tlegacy-db
fd00::5\tlegacy-db.corp.example
";

    #[test]
    fn names_and_aliases_match_without_case_or_trailing_dot() {
        let h = HostsFile::parse("/etc/hosts", KUBELET_HOSTS);
        assert_eq!(h.len(), 6);
        assert_eq!(
            h.lookup("client"),
            ["10.244.0.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            h.lookup("Legacy-DB.corp.example."),
            [
                "10.199.5.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
        assert_eq!(
            h.lookup("legacy-db"),
            ["10.199.5.5".parse::<IpAddr>().unwrap()]
        );
        // No search list: a short name is matched only as written.
        assert!(h.lookup("legacy-db.corp").is_empty());
        assert!(h.lookup("web").is_empty());
    }

    #[test]
    fn comments_and_malformed_lines_are_skipped() {
        let h = HostsFile::parse(
            "x",
            "not-an-ip name\n10.0.0.1\n10.0.0.2 a # b\n#10.0.0.3 c\n",
        );
        assert_eq!(h.len(), 1);
        assert_eq!(h.lookup("a").len(), 1);
        assert!(h.lookup("b").is_empty() && h.lookup("c").is_empty());
    }
}
