//! The probe's events and the Kubernetes evidence, in the shape the rules ask questions of:
//! evidence by type (`facts.all::<TcpEvidence>()`, `facts.one::<LinksEvidence>()`), the
//! events about checks, and a few lookups ("the link named eth0", "rp_filter of eth0.100").

use std::net::IpAddr;

use protocol::{
    CheckFinished, CheckKind, CheckStarted, Counter, DnsLookupEvidence, Done, Event, Evidence,
    EvidenceType, Hello, Link, LinksEvidence, MtuEvidence, Open, RouteEvidence, Skipped, Sysctl,
    SysctlsEvidence, TargetRole, TcpEvidence,
};

use crate::kube::{DestinationInfo, KubeEvidence, KubeFinding, KubeFindingCode, ServiceInfo};
use crate::model::{Inputs, Origin, Title};

/// The protocol minor version from which the probe echoes each target's role in its
/// evidence (`route`, `tcp`, `mtu`).
const ROLE_ECHOED_SINCE_MINOR: u32 = 1;

#[derive(Debug)]
pub struct Facts<'a> {
    pub hello: Option<&'a Hello>,
    pub done: Option<&'a Done>,
    /// A paced probe's `armed` (a peer's capture in place).
    pub armed: Option<&'a protocol::Armed>,
    /// A held source's `released`.
    pub released: Option<&'a protocol::Released>,
    pub started: Vec<&'a CheckStarted>,
    pub finished: Vec<&'a CheckFinished>,
    pub skipped: Vec<&'a Skipped>,
    /// Every piece of evidence, in stream order.
    evidence: Vec<&'a Evidence>,
    pub pcap_chunks: usize,
    pub events: usize,
    pub kube: &'a KubeEvidence,
    /// Where the probe ran, when the client said so ([`crate::Title::origin`]).
    pub origin: Option<&'a Origin>,
    /// What was asked: next steps that re-run from the same place repeat its flags
    /// ([`Title::asked_flags`], e.g. `--to svc/web:80 --repeat 200`).
    pub title: &'a Title,
}

impl<'a> Facts<'a> {
    pub fn gather(inputs: &'a Inputs) -> Facts<'a> {
        Facts::of_events(&inputs.events, &inputs.kube, &inputs.title)
    }

    /// The facts of one event stream: the source's, or a peer's (`--both-ends`), read with
    /// the same lookups.
    pub fn of_events(events: &'a [Event], kube: &'a KubeEvidence, title: &'a Title) -> Facts<'a> {
        let mut f = Facts {
            hello: None,
            done: None,
            armed: None,
            released: None,
            started: Vec::new(),
            finished: Vec::new(),
            skipped: Vec::new(),
            evidence: Vec::new(),
            pcap_chunks: 0,
            events: events.len(),
            kube,
            origin: title.origin.as_ref(),
            title,
        };
        for event in events {
            match event {
                Event::Hello(h) => f.hello = Some(h),
                Event::Done(d) => f.done = Some(d),
                Event::CheckStarted(s) => f.started.push(s),
                Event::CheckFinished(c) => f.finished.push(c),
                Event::Skipped(s) => f.skipped.push(s),
                Event::PcapChunk(_) => f.pcap_chunks += 1,
                Event::Evidence(e) => f.evidence.push(e),
                Event::Armed(a) => f.armed = Some(a),
                Event::Released(r) => f.released = Some(r),
                // A live display's, not evidence.
                Event::Progress(_) => {}
            }
        }
        f
    }

    /// Every piece of evidence of type `T`, in stream order.
    pub fn all<T: EvidenceType>(&self) -> Vec<&'a T> {
        self.evidence
            .iter()
            .filter_map(|e| T::from_evidence(e))
            .collect()
    }

    /// The evidence of a one-per-run type (links, sockets, counters...): the last one, should
    /// a probe ever send two.
    pub fn one<T: EvidenceType>(&self) -> Option<&'a T> {
        self.evidence.iter().rev().find_map(|e| T::from_evidence(e))
    }

    /// Did `check` say anything about the destination itself (a lookup of its name, its
    /// route, a connect, its path MTU, a TLS handshake or an HTTP request)?
    pub fn about_destination(&self, check: CheckKind) -> bool {
        match check {
            CheckKind::Dns => self.one::<DnsLookupEvidence>().is_some(),
            CheckKind::Route => self.one::<RouteEvidence>().is_some(),
            CheckKind::Tcp => self.one::<TcpEvidence>().is_some(),
            CheckKind::Mtu => self.one::<MtuEvidence>().is_some(),
            CheckKind::App => {
                self.one::<protocol::TlsEvidence>().is_some()
                    || self.one::<protocol::HttpEvidence>().is_some()
            }
            _ => false,
        }
    }

    pub fn service(&self) -> Option<&'a ServiceInfo> {
        match self.kube.destination.as_ref()? {
            DestinationInfo::Service(s) => Some(s),
            _ => None,
        }
    }

    /// The client's Kubernetes-level finding with `code`, if it reported one.
    pub fn kube_finding(&self, code: KubeFindingCode) -> Option<&'a KubeFinding> {
        self.kube.finding(code)
    }

    /// A run without Kubernetes (`kubectl-netdebug local`): no next step may name Kubernetes
    /// objects or commands. Inputs from a client older than [`crate::Title::origin`] do not
    /// say, and keep the suggestions they always had.
    pub fn is_local(&self) -> bool {
        self.origin.is_some_and(Origin::is_local)
    }

    /// What a target stands for. The probe echoes the role the plan gave it; a probe older
    /// than that sends none, which reads as `direct`: only then is the role worked out from
    /// the Kubernetes evidence, by comparing the address with the Service's ClusterIP and
    /// endpoints.
    pub fn role(&self, role: &Open<TargetRole>, ip: IpAddr) -> Open<TargetRole> {
        let echoed = self
            .hello
            .is_some_and(|h| h.protocol_minor >= ROLE_ECHOED_SINCE_MINOR);
        if echoed || *role != TargetRole::Direct {
            return role.clone();
        }
        self.service()
            .and_then(|s| s.role_of(ip))
            .map(Open::Known)
            .unwrap_or_else(|| role.clone())
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
        self.one::<protocol::CountersEvidence>()?
            .counters
            .get(&Open::Known(counter))
            .map(|c| c.delta)
    }

    pub fn check_ran(&self, kind: CheckKind) -> bool {
        self.started.iter().any(|s| s.check == kind)
            || self.finished.iter().any(|f| f.check == kind)
    }
}
