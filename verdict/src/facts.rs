//! The probe's events sorted by kind, and the Kubernetes evidence, in the shape the rules ask
//! questions of ("every TCP result toward the ClusterIP", "the link named eth0").

use std::net::IpAddr;

use protocol::{
    CheckFinished, CheckKind, CheckStarted, Counter, CountersEvidence, Done, Event, Evidence,
    EvidenceType, Hello, Link, LinksEvidence, Open, Skipped, Sysctl, SysctlsEvidence, TargetRole,
    TcpEvidence,
};

use crate::kube::{DestinationInfo, KubeEvidence, ServiceInfo};
use crate::model::Inputs;

/// The probe's events sorted by what they are. Evidence is kept in stream order and read by
/// type: `facts.all::<TcpEvidence>()`, `facts.one::<LinksEvidence>()`.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub hello: Option<&'a Hello>,
    pub done: Option<&'a Done>,
    pub started: Vec<&'a CheckStarted>,
    pub finished: Vec<&'a CheckFinished>,
    pub skipped: Vec<&'a Skipped>,
    pub pcap_chunks: usize,
    pub events: usize,
    pub kube: Option<&'a KubeEvidence>,
    evidence: Vec<&'a Evidence>,
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
                Event::Evidence(e) => f.evidence.push(e),
            }
        }
        f
    }

    /// Every piece of evidence of type `T`, in stream order.
    pub fn all<T: EvidenceType>(&self) -> impl Iterator<Item = &'a T> + '_ {
        self.evidence.iter().filter_map(|e| T::from_evidence(e))
    }

    /// The last piece of evidence of type `T` (for the kinds a run emits once).
    pub fn one<T: EvidenceType>(&self) -> Option<&'a T> {
        self.evidence.iter().rev().find_map(|e| T::from_evidence(e))
    }

    /// Is there any evidence of type `T`?
    pub fn has<T: EvidenceType>(&self) -> bool {
        self.one::<T>().is_some()
    }

    pub fn service(&self) -> Option<&'a ServiceInfo> {
        match self.kube?.destination.as_ref()? {
            DestinationInfo::Service(s) => Some(s),
            _ => None,
        }
    }

    /// TCP results toward targets of `role`.
    pub fn tcp_with_role(&self, role: TargetRole) -> impl Iterator<Item = &'a TcpEvidence> + '_ {
        self.all::<TcpEvidence>()
            .filter(move |t| self.role_of(&t.role, t.address.ip()) == role)
    }

    /// What a target stands for. Probes of protocol minor 1 and later echo the role the plan
    /// gave each target; for an older probe's evidence (no `role`, read as `direct`), the role
    /// is recovered from the Kubernetes evidence by address, as those versions did.
    pub fn role_of(&self, role: &Open<TargetRole>, ip: IpAddr) -> TargetRole {
        let echoed = self.hello.is_some_and(|h| h.protocol_minor >= 1);
        match role.known() {
            Some(r) if echoed || r != TargetRole::Direct => r,
            Some(_) => self.legacy_role(ip),
            // A role this version does not know: treat it as a target given directly.
            None => TargetRole::Direct,
        }
    }

    fn legacy_role(&self, ip: IpAddr) -> TargetRole {
        let Some(svc) = self.service() else {
            return TargetRole::Direct;
        };
        let ip = ip.to_string();
        if svc.cluster_ip.as_deref() == Some(ip.as_str()) {
            TargetRole::ClusterIp
        } else if svc.endpoints.iter().any(|e| e.ip == ip) {
            TargetRole::Endpoint
        } else {
            TargetRole::Direct
        }
    }

    pub fn link(&self, name: &str) -> Option<&'a Link> {
        self.one::<LinksEvidence>()?
            .links
            .iter()
            .find(|l| l.name == name)
    }

    /// The interface holding `ip`, if any.
    pub fn link_with_address(&self, ip: IpAddr) -> Option<&'a Link> {
        self.one::<LinksEvidence>()?
            .links
            .iter()
            .find(|l| l.addresses.iter().any(|a| a.address == ip))
    }

    pub fn sysctl(&self, key: &Sysctl) -> Option<&'a str> {
        self.one::<SysctlsEvidence>()?.get(key)
    }

    pub fn counter_delta(&self, counter: Counter) -> Option<u64> {
        self.one::<CountersEvidence>()?
            .counters
            .get(&Open::Known(counter))
            .map(|c| c.delta)
    }

    /// Did `check` emit any evidence at all?
    pub fn has_evidence_of(&self, check: &Open<CheckKind>) -> bool {
        self.evidence.iter().any(|e| *check == e.check())
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
