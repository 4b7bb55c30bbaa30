//! Parsing SOURCE and `--to` as a kubectl user writes them. Pure: no API calls; every
//! malformed input gets its own specific reason.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::error::Error;

/// The kinds of object a source pod can be picked from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    Job,
}

impl SourceKind {
    /// kubectl's short name, used in messages: `deploy/checkout`.
    pub fn short(self) -> &'static str {
        match self {
            SourceKind::Pod => "pod",
            SourceKind::Deployment => "deploy",
            SourceKind::StatefulSet => "sts",
            SourceKind::DaemonSet => "ds",
            SourceKind::ReplicaSet => "rs",
            SourceKind::Job => "job",
        }
    }

    /// The resource's singular name as the API server says it in "not found" messages.
    pub fn singular(self) -> &'static str {
        match self {
            SourceKind::Pod => "pod",
            SourceKind::Deployment => "deployment",
            SourceKind::StatefulSet => "statefulset",
            SourceKind::DaemonSet => "daemonset",
            SourceKind::ReplicaSet => "replicaset",
            SourceKind::Job => "job",
        }
    }

    fn from_prefix(prefix: &str) -> Option<SourceKind> {
        Some(match prefix {
            "pod" | "po" | "pods" => SourceKind::Pod,
            "deploy" | "deployment" | "deployments" | "deployment.apps" => SourceKind::Deployment,
            "sts" | "statefulset" | "statefulsets" | "statefulset.apps" => SourceKind::StatefulSet,
            "ds" | "daemonset" | "daemonsets" | "daemonset.apps" => SourceKind::DaemonSet,
            "rs" | "replicaset" | "replicasets" | "replicaset.apps" => SourceKind::ReplicaSet,
            "job" | "jobs" | "job.batch" => SourceKind::Job,
            _ => return None,
        })
    }
}

/// SOURCE: a pod, or a workload to pick one Ready pod from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub name: String,
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.short(), self.name)
    }
}

/// A Service port as asked for: by number (`:443`) or by name (`:https`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => write!(f, "\"{s}\""),
        }
    }
}

/// `--to`: a Service, a pod, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestSpec {
    Service {
        name: String,
        namespace: Option<String>,
        port: Option<PortRef>,
    },
    Pod {
        name: String,
        namespace: Option<String>,
        port: Option<u16>,
    },
    /// An IP literal (IPv6 without brackets) or a DNS name, and a port.
    Address { host: String, port: u16 },
}

const SOURCE_KINDS: &str =
    "pod/NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME, job/NAME or a bare pod name";
const DEST_FORMS: &str =
    "svc/NAME[.NAMESPACE][:PORT], pod/NAME[.NAMESPACE][:PORT], IP:PORT, [IPv6]:PORT or HOST:PORT";

/// Parse SOURCE: `pod/NAME` (`po/`, `pods/`), `deploy/NAME`, `sts/`, `ds/`, `rs/`, `job/`
/// (singular and plural long forms too), or a bare pod name.
pub fn parse_source(s: &str) -> Result<SourceSpec, Error> {
    let bad = |reason: String| Error::InvalidSource {
        input: s.to_string(),
        reason,
    };
    let s_trimmed = s.trim();
    if s_trimmed.is_empty() {
        return Err(bad(format!("SOURCE is empty; expected {SOURCE_KINDS}")));
    }
    let (kind, name) = match s_trimmed.split_once('/') {
        None => (SourceKind::Pod, s_trimmed),
        Some((prefix, name)) => {
            let kind = SourceKind::from_prefix(&prefix.to_ascii_lowercase()).ok_or_else(|| {
                bad(match prefix {
                    "svc" | "service" | "services" => format!(
                        "a Service cannot be a source (traffic starts in a pod); use {SOURCE_KINDS}, and svc/ with --to"
                    ),
                    _ => format!("unknown kind `{prefix}`; expected {SOURCE_KINDS}"),
                })
            })?;
            (kind, name)
        }
    };
    if name.is_empty() {
        return Err(bad(format!("no name after `{}/`", kind.short())));
    }
    // Pods may have DNS-subdomain names; workload names are the same or stricter, and the
    // API server is the final judge: here only what can never be a name is refused.
    check_subdomain(name).map_err(|why| bad(format!("`{name}` {why}")))?;
    Ok(SourceSpec {
        kind,
        name: name.to_string(),
    })
}

/// Parse `--to`: `svc/NAME[.NS][:port|:portname]` (`service/`, `services/`),
/// `pod/NAME[.NS][:port]` (`po/`, `pods/`), `IP:port`, `[v6]:port`, `host:port`.
pub fn parse_destination(s: &str) -> Result<DestSpec, Error> {
    let bad = |reason: String| Error::InvalidDestination {
        input: s.to_string(),
        reason,
    };
    let text = s.trim();
    if text.is_empty() {
        return Err(bad(format!("it is empty; expected {DEST_FORMS}")));
    }
    if let Some((prefix, rest)) = text.split_once('/') {
        // `/` never appears in an address with a port, so this is a kind prefix.
        return match prefix.to_ascii_lowercase().as_str() {
            "svc" | "service" | "services" => parse_service(rest).map_err(bad),
            "pod" | "po" | "pods" => parse_pod(rest).map_err(bad),
            other if SourceKind::from_prefix(other).is_some() => Err(bad(format!(
                "`{prefix}/` is not a destination: traffic goes to a Service or a pod; use svc/NAME or pod/NAME"
            ))),
            _ => Err(bad(format!(
                "unknown kind `{prefix}`; expected {DEST_FORMS}"
            ))),
        };
    }
    parse_address(text).map_err(bad)
}

fn parse_service(rest: &str) -> Result<DestSpec, String> {
    let (object, port) = split_port(rest);
    let port = match port {
        None => None,
        Some(p) => Some(parse_port_ref(p)?),
    };
    let (name, namespace) = split_namespace(object, true)?;
    check_dns1035_label(name).map_err(|why| format!("Service name `{name}` {why}"))?;
    Ok(DestSpec::Service {
        name: name.to_string(),
        namespace,
        port,
    })
}

fn parse_pod(rest: &str) -> Result<DestSpec, String> {
    let (object, port) = split_port(rest);
    let port = match port {
        None => None,
        Some(p) => Some(parse_port_number(p)?),
    };
    let (name, namespace) = split_namespace(object, false)?;
    check_subdomain(name).map_err(|why| format!("pod name `{name}` {why}"))?;
    Ok(DestSpec::Pod {
        name: name.to_string(),
        namespace,
        port,
    })
}

/// `NAME[:PORT]` -> (NAME, PORT); a trailing `:` gives an empty port, reported by the caller.
fn split_port(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once(':') {
        Some((object, port)) => (object, Some(port)),
        None => (s, None),
    }
}

/// `NAME` or `NAME.NS`; for Services also the DNS forms `NAME.NS.svc` and
/// `NAME.NS.svc.<cluster domain>`. Pod names may contain dots themselves, so for pods the
/// namespace is the last dot-separated part.
fn split_namespace(object: &str, service: bool) -> Result<(&str, Option<String>), String> {
    if object.is_empty() {
        return Err("the name is empty".to_string());
    }
    let (name, ns) = if service {
        let mut parts = object.splitn(3, '.');
        let name = parts.next().unwrap_or_default();
        let ns = parts.next();
        match parts.next() {
            Some(tail) if tail == "svc" || tail.starts_with("svc.") => {}
            Some(_) => {
                return Err(format!(
                    "`{object}` is not NAME or NAME.NAMESPACE (or NAME.NAMESPACE.svc[.DOMAIN])"
                ))
            }
            None => {}
        }
        (name, ns)
    } else {
        match object.rsplit_once('.') {
            Some((name, ns)) => (name, Some(ns)),
            None => (object, None),
        }
    };
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    let ns = match ns {
        None => None,
        Some(ns) => {
            check_dns1123_label(ns).map_err(|why| format!("namespace `{ns}` {why}"))?;
            Some(ns.to_string())
        }
    };
    Ok((name, ns))
}

fn parse_port_ref(p: &str) -> Result<PortRef, String> {
    if p.is_empty() {
        return Err("the port after `:` is empty".to_string());
    }
    if p.bytes().all(|b| b.is_ascii_digit()) {
        return parse_port_number(p).map(PortRef::Number);
    }
    check_port_name(p)?;
    Ok(PortRef::Name(p.to_string()))
}

fn parse_port_number(p: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Err("the port after `:` is empty".to_string());
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port `{p}` is not a number"));
    }
    match p.parse::<u64>() {
        Ok(0) => Err("port 0 is not a port (use 1-65535)".to_string()),
        Ok(n) if n <= 65535 => Ok(n as u16),
        _ => Err(format!("port {p} is out of range (use 1-65535)")),
    }
}

/// Kubernetes port names (IANA_SVC_NAME): at most 15 lowercase letters, digits and `-`, at
/// least one letter, no leading, trailing or double `-`.
fn check_port_name(p: &str) -> Result<(), String> {
    let valid = p.len() <= 15
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && p.bytes().any(|b| b.is_ascii_lowercase())
        && !p.starts_with('-')
        && !p.ends_with('-')
        && !p.contains("--");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "port `{p}` is neither a number nor a port name (up to 15 lowercase letters, digits and '-')"
        ))
    }
}

fn parse_address(text: &str) -> Result<DestSpec, String> {
    // [v6]:port
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| "`[` without a closing `]`".to_string())?;
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("`{ip}` is not an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port_number(p)?,
            None if after.is_empty() => {
                return Err(format!("missing port: use [{ip}]:PORT"));
            }
            None => return Err(format!("unexpected `{after}` after `]`; use [{ip}]:PORT")),
        };
        return Ok(DestSpec::Address {
            host: ip.to_string(),
            port,
        });
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Err(match ip {
            IpAddr::V4(_) => format!("missing port: use {ip}:PORT"),
            IpAddr::V6(_) => {
                format!("missing port: an IPv6 address takes its port after brackets: [{ip}]:PORT")
            }
        });
    }
    if text.matches(':').count() > 1 {
        return Err("an IPv6 address with a port needs brackets: [ADDRESS]:PORT".to_string());
    }
    let Some((host, port)) = text.split_once(':') else {
        return Err(format!(
            "missing port: use {text}:PORT (or svc/{text} for a Service)"
        ));
    };
    let port = parse_port_number(port)?;
    if host.is_empty() {
        return Err("the host before `:` is empty".to_string());
    }
    if host.parse::<IpAddr>().is_err() {
        protocol::validate_host(host).map_err(|why| format!("`{host}` {why}"))?;
        if looks_like_bad_ipv4(host) {
            return Err(format!("`{host}` is not a valid IPv4 address"));
        }
    }
    Ok(DestSpec::Address {
        host: host.to_string(),
        port,
    })
}

/// `10.0.0.300` passes as a DNS name syntactically; an all-numeric dotted host is meant as
/// an IPv4 address, so refusing it is clearer than a failing lookup.
fn looks_like_bad_ipv4(host: &str) -> bool {
    host.split('.').count() == 4
        && host
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// RFC 1123 subdomain (pod and workload names): lowercase alphanumerics, `-` and `.`, at
/// most 253 characters, starting and ending alphanumeric.
fn check_subdomain(name: &str) -> Result<(), &'static str> {
    if name.len() > 253 {
        return Err("is longer than 253 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err("may only contain lowercase letters, digits, '-' and '.'");
    }
    for part in name.split('.') {
        if part.is_empty() || part.starts_with('-') || part.ends_with('-') {
            return Err("must start and end with a letter or digit, with no empty part");
        }
    }
    Ok(())
}

/// RFC 1123 label (namespaces).
fn check_dns1123_label(name: &str) -> Result<(), &'static str> {
    if name.len() > 63 {
        return Err("is longer than 63 characters");
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err("must be lowercase letters, digits and '-', starting and ending alphanumeric");
    }
    Ok(())
}

/// RFC 1035 label (Service names): an RFC 1123 label that starts with a letter.
fn check_dns1035_label(name: &str) -> Result<(), &'static str> {
    check_dns1123_label(name)?;
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter");
    }
    Ok(())
}
