//! `sysctls` evidence: settings that change how traffic behaves. Rule: strict rp_filter on the
//! interface holding a route's source address while the route leaves by another interface
//! (the replies come in where rp_filter drops them). The route rules call it per route.

use std::net::IpAddr;

use protocol::{ConfScope, RouteEvidence, RouteInfo, RouteType, Sysctl, SysctlsEvidence};

use crate::checks::route::path_severity;
use crate::facts::Facts;
use crate::model::{Layer, Mark, RuleCode};
use crate::progress::Progress;
use crate::report::Report;

impl Progress for SysctlsEvidence {
    fn progress(&self) -> (Mark, String) {
        (Mark::Info, format!("{} sysctls read", self.values.len()))
    }
}

/// rp_filter as it applies to one interface: the kernel uses max(conf.all, conf.DEV).
struct RpFilter<'a> {
    dev: &'a str,
    all: Option<u32>,
    own: Option<u32>,
}

impl<'a> RpFilter<'a> {
    fn of(f: &Facts, dev: &'a str) -> RpFilter<'a> {
        let read = |key: &Sysctl| f.sysctl(key).and_then(|v| v.trim().parse::<u32>().ok());
        RpFilter {
            dev,
            all: read(&Sysctl::RpFilter(ConfScope::All)),
            own: read(&Sysctl::rp_filter_of(dev)),
        }
    }

    /// The mode in effect, when either value was reported (a missing one counts as 0).
    fn effective(&self) -> Option<u32> {
        match (self.all, self.own) {
            (None, None) => None,
            (a, o) => Some(a.unwrap_or(0).max(o.unwrap_or(0))),
        }
    }

    /// The values the effective mode was computed from: `all=1, eth0.100=0`, or
    /// `all=1, vdr-c1 not reported (taken as 0)`.
    fn values(&self) -> String {
        let one = |name: &str, v: Option<u32>| match v {
            Some(v) => format!("{name}={v}"),
            None => format!("{name} not reported (taken as 0)"),
        };
        format!("{}, {}", one("all", self.all), one(self.dev, self.own))
    }
}

/// Strict reverse-path filtering with an asymmetric route: packets to the destination leave
/// via one interface with the address of another, so the replies come in on the other one,
/// where a strict rp_filter (1) drops them because the route back to the sender is not
/// through it. The rp_filter that matters is the one of the interface holding the source
/// address, looked up by its name (a VLAN's `eth0.100` included).
pub fn rp_filter_asymmetric(
    f: &Facts,
    route: &RouteEvidence,
    info: &RouteInfo,
    line: &str,
    r: &mut Report,
) -> bool {
    let (Some(dev), Some(src)) = (info.dev.as_deref(), info.prefsrc) else {
        return false;
    };
    if !src.is_ipv4() || info.route_type == RouteType::Local {
        return false;
    }
    let Some(src_link) = f.link_with_address(src) else {
        return false;
    };
    if src_link.name == dev || src_link.loopback {
        return false;
    }
    let rp = RpFilter::of(f, &src_link.name);
    if rp.effective() != Some(1) {
        return false;
    }
    report(f, route.destination, dev, src, &rp, line, r);
    true
}

fn report(
    f: &Facts,
    dst: IpAddr,
    dev: &str,
    src: IpAddr,
    rp: &RpFilter,
    line: &str,
    r: &mut Report,
) {
    let src_dev = rp.dev;
    let own_key = Sysctl::rp_filter_of(src_dev).name();
    let all_key = Sysctl::RpFilter(ConfScope::All).name();
    let values = rp.values();
    let severity = path_severity(f, dst);
    r.finding(
        RuleCode::RpFilterAsymmetric,
        Layer::Network,
        severity,
        "rp_filter drops replies",
        format!(
            "packets to {dst} leave via {dev} with source {src} of {src_dev}, so replies arrive \
             on {src_dev} where strict rp_filter drops them ({own_key}=1 in effect, the larger \
             of {values}): the route back is via {dev}"
        ),
    )
    .line(line)
    .line(format!(
        "rp_filter: {values}: in effect 1 (strict); source {src} is on {src_dev}"
    ))
    .next(format!(
        "sysctl -w {own_key}=2 {all_key}=2   # loose, or fix the route"
    ))
    .next(format!("ip route get {dst}; ip rule show"))
    .add();
}
