//! The probe's events sorted by kind, and the Kubernetes evidence, in the shape the rules ask
//! questions of ("every TCP result toward the ClusterIP", "the link named eth0").

use std::net::{IpAddr, SocketAddr};

use protocol::{
    CaptureSummary, CheckFinished, CheckKind, CheckStarted, ConntrackEvidence, CountersEvidence,
    DnsConfigEvidence, DnsLookupEvidence, Done, Event, Evidence, Hello, Link, LinksEvidence,
    MtuEvidence, RouteEvidence, RulesEvidence, Skipped, SocketsEvidence, SysctlsEvidence,
    TcpEvidence,
};

use crate::kube::{DestinationInfo, KubeEvidence, ServiceInfo};
use crate::model::Inputs;

/// What a TCP target stands for, worked out from the Kubernetes evidence (the probe only
/// knows labels and addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    ClusterIp,
    Endpoint,
    Other,
}

#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub hello: Option<&'a Hello>,
    pub done: Option<&'a Done>,
    pub started: Vec<&'a CheckStarted>,
    pub finished: Vec<&'a CheckFinished>,
    pub skipped: Vec<&'a Skipped>,
    pub links: Option<&'a LinksEvidence>,
    pub routes: Vec<&'a RouteEvidence>,
    pub rules: Option<&'a RulesEvidence>,
    pub dns_config: Option<&'a DnsConfigEvidence>,
    pub dns_lookups: Vec<&'a DnsLookupEvidence>,
    pub tcp: Vec<&'a TcpEvidence>,
    pub sockets: Option<&'a SocketsEvidence>,
    pub counters: Option<&'a CountersEvidence>,
    pub conntrack: Option<&'a ConntrackEvidence>,
    pub sysctls: Option<&'a SysctlsEvidence>,
    pub mtu: Vec<&'a MtuEvidence>,
    pub captures: Vec<&'a CaptureSummary>,
    pub pcap_chunks: usize,
    pub events: usize,
    pub kube: Option<&'a KubeEvidence>,
}

impl<'a> Facts<'a> {
    pub fn gather(inputs: &'a Inputs) -> Facts<'a> {
        let mut f = Facts {
            kube: Some(&inputs.kube),
            events: inputs.events.len(),
            ..Facts::default()
        };
        for event in &inputs.events {
            match event {
                Event::Hello(h) => f.hello = Some(h),
                Event::Done(d) => f.done = Some(d),
                Event::CheckStarted(s) => f.started.push(s),
                Event::CheckFinished(c) => f.finished.push(c),
                Event::Skipped(s) => f.skipped.push(s),
                Event::PcapChunk(_) => f.pcap_chunks += 1,
                Event::Evidence(e) => match e {
                    // Later evidence of a one-per-run kind replaces earlier (there is one).
                    Evidence::Links(l) => f.links = Some(l),
                    Evidence::Route(r) => f.routes.push(r),
                    Evidence::Rules(r) => f.rules = Some(r),
                    Evidence::DnsConfig(c) => f.dns_config = Some(c),
                    Evidence::DnsLookup(l) => f.dns_lookups.push(l),
                    Evidence::Tcp(t) => f.tcp.push(t),
                    Evidence::Sockets(s) => f.sockets = Some(s),
                    Evidence::Counters(c) => f.counters = Some(c),
                    Evidence::Conntrack(c) => f.conntrack = Some(c),
                    Evidence::Sysctls(s) => f.sysctls = Some(s),
                    Evidence::Mtu(m) => f.mtu.push(m),
                    Evidence::CaptureSummary(c) => f.captures.push(c),
                },
            }
        }
        f
    }

    pub fn service(&self) -> Option<&'a ServiceInfo> {
        match self.kube?.destination.as_ref()? {
            DestinationInfo::Service(s) => Some(s),
            _ => None,
        }
    }

    pub fn target_kind(&self, addr: &SocketAddr) -> TargetKind {
        let Some(svc) = self.service() else {
            return TargetKind::Other;
        };
        let ip = addr.ip().to_string();
        if svc.cluster_ip.as_deref() == Some(ip.as_str()) {
            TargetKind::ClusterIp
        } else if svc.endpoints.iter().any(|e| e.ip == ip) {
            TargetKind::Endpoint
        } else {
            TargetKind::Other
        }
    }

    pub fn link(&self, name: &str) -> Option<&'a Link> {
        self.links?.links.iter().find(|l| l.name == name)
    }

    /// The interface holding `ip`, if any.
    pub fn link_with_address(&self, ip: IpAddr) -> Option<&'a Link> {
        self.links?
            .links
            .iter()
            .find(|l| l.addresses.iter().any(|a| a.address == ip))
    }

    pub fn sysctl(&self, name: &str) -> Option<&'a str> {
        self.sysctls?.values.get(name).map(String::as_str)
    }

    pub fn counter_delta(&self, name: &str) -> Option<u64> {
        self.counters?.counters.get(name).map(|c| c.delta)
    }

    pub fn check_ran(&self, kind: CheckKind) -> bool {
        self.started.iter().any(|s| s.check == kind)
            || self.finished.iter().any(|f| f.check == kind)
    }
}

/// `1.2 ms`, `38 ms`, `3.0 s`.
pub fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.1} s", value / 1000.0)
    } else if value >= 10.0 {
        format!("{value:.0} ms")
    } else {
        format!("{value:.1} ms")
    }
}

/// `1 query`, `3 queries`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
