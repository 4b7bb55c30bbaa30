//! Interfaces between namespaces: veth pairs and a Linux bridge. They live inside the
//! namespaces, so deleting a namespace removes them (a veth dies with either end).

use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::cmd::{run_with_timeout, DEFAULT_TIMEOUT};
use crate::netns::Netns;

/// One end of a link: which namespace, which interface, which address (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub netns: String,
    pub name: String,
    /// The address in CIDR form, as given (`10.199.1.1/24`).
    pub cidr: Option<String>,
}

impl Iface {
    /// The interface address without its prefix length.
    pub fn ip(&self) -> Option<IpAddr> {
        self.cidr
            .as_deref()
            .and_then(|c| c.split('/').next())
            .and_then(|a| a.parse().ok())
    }
}

/// Both ends of a veth pair.
#[derive(Debug, Clone)]
pub struct VethPair {
    pub a: Iface,
    pub b: Iface,
}

/// Link constructors.
pub struct Link;

impl Link {
    /// A veth pair with `a_if` in `a` and `b_if` in `b`, both up, each with an address unless
    /// its address is `""` (IPv6 addresses are added without DAD). Interface names are at most
    /// 15 characters and only need to be unique within their namespace.
    #[track_caller]
    pub fn veth_pair(
        a: &Netns,
        a_if: &str,
        a_addr: &str,
        b: &Netns,
        b_if: &str,
        b_addr: &str,
    ) -> VethPair {
        create_veth(a.name(), a_if, b.name(), b_if);
        VethPair {
            a: configure(a, a_if, a_addr),
            b: configure(b, b_if, b_addr),
        }
    }
}

/// A Linux bridge inside a namespace; [`Bridge::attach`] plugs other namespaces into it
/// through veth pairs (the bridge-side end is named `<bridge>p<n>`).
pub struct Bridge {
    netns: String,
    pub name: String,
    pub cidr: Option<String>,
    ports: AtomicU32,
}

impl Bridge {
    /// Creates bridge `name` in `ns`, up, with `addr` unless it is `""`.
    #[track_caller]
    pub fn new(ns: &Netns, name: &str, addr: &str) -> Bridge {
        ns.ip(&["link", "add", name, "type", "bridge"]);
        let iface = configure(ns, name, addr);
        Bridge {
            netns: ns.name().to_string(),
            name: name.to_string(),
            cidr: iface.cidr,
            ports: AtomicU32::new(0),
        }
    }

    /// The bridge's own address without prefix length, if it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.cidr
            .as_deref()
            .and_then(|c| c.split('/').next())
            .and_then(|a| a.parse().ok())
    }

    /// Connects `ns` to the bridge: interface `if_name` in `ns` (address `addr` unless `""`),
    /// its peer enslaved to the bridge. Returns the interface in `ns`.
    #[track_caller]
    pub fn attach(&self, ns: &Netns, if_name: &str, addr: &str) -> Iface {
        let n = self.ports.fetch_add(1, Ordering::SeqCst);
        let mut port = format!("{}p{n}", self.name);
        port.truncate(15);
        create_veth(&self.netns, &port, ns.name(), if_name);
        ip_in(
            &self.netns,
            &["link", "set", &port, "master", &self.name, "up"],
        );
        configure(ns, if_name, addr)
    }
}

#[track_caller]
fn create_veth(a_ns: &str, a_if: &str, b_ns: &str, b_if: &str) {
    assert!(
        a_if.len() <= 15 && b_if.len() <= 15,
        "interface names are at most 15 characters: {a_if}, {b_if}"
    );
    run_with_timeout(
        Command::new("ip").args([
            "link", "add", a_if, "netns", a_ns, "type", "veth", "peer", "name", b_if, "netns", b_ns,
        ]),
        DEFAULT_TIMEOUT,
    )
    .expect_success();
}

#[track_caller]
fn configure(ns: &Netns, dev: &str, addr: &str) -> Iface {
    if !addr.is_empty() {
        ns.add_addr(dev, addr);
    }
    ns.link_up(dev);
    Iface {
        netns: ns.name().to_string(),
        name: dev.to_string(),
        cidr: (!addr.is_empty()).then(|| addr.to_string()),
    }
}

#[track_caller]
fn ip_in(ns: &str, args: &[&str]) {
    run_with_timeout(
        Command::new("ip").args(["-n", ns]).args(args),
        DEFAULT_TIMEOUT,
    )
    .expect_success();
}
