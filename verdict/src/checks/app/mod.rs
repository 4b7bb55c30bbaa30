//! The `app` check: TLS handshakes and HTTP requests above each target's connect (`--to
//! https://...`, `--http`, `--tls`). A connect proves a listener; these say whether it is the
//! service.
//!
//! Layered: a target whose connect failed is the TCP rules' (its `no_connection` evidence
//! adds nothing here), and so is one a lower rule already explained. Rules, lowest first:
//! `tls` (a stalled handshake, cross-checked with the MTU check; TLS sent to a plaintext
//! port; the certificate: dates, names, issuer; any other failed handshake), then `http`
//! (plaintext sent to a TLS port; error statuses on every target or on some endpoints; no
//! answer; a slow first byte after a fast connect; redirects, reported). Every target the
//! rules did not fail gets one compact `App` line (status, TLS version, first byte).

mod http;
mod tls;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use protocol::{
    HttpEvidence, HttpOutcome, Open, TargetRole, TcpEvidence, TlsEvidence, TlsOutcome, Verification,
};

use crate::facts::Facts;
use crate::kube::DestinationInfo;
use crate::model::{Layer, Mark, Origin};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::ms;

impl Progress for TlsEvidence {
    fn progress(&self) -> (Mark, String) {
        let mark = match self.outcome {
            Open::Known(TlsOutcome::Ok) => Mark::Ok,
            _ => Mark::Fail,
        };
        let how = match (&self.outcome, &self.version) {
            (Open::Known(TlsOutcome::Ok), Some(v)) => format!("TLS {v}"),
            (outcome, _) => format!("TLS {outcome} after {}", self.reached),
        };
        (mark, format!("{} {how}", self.address))
    }
}

impl Progress for HttpEvidence {
    fn progress(&self) -> (Mark, String) {
        let (mark, how) = match (&self.outcome, self.status) {
            (Open::Known(HttpOutcome::Response), Some(status)) => {
                let mark = if status < 400 { Mark::Ok } else { Mark::Fail };
                (mark, format!("HTTP {status}"))
            }
            (outcome, _) => (Mark::Fail, format!("HTTP {outcome}")),
        };
        (mark, format!("{} {} {how}", self.address, self.path))
    }
}

/// One target's application evidence, when its connect worked (or no TCP evidence says
/// otherwise).
pub struct Target<'a> {
    pub address: SocketAddr,
    pub role: Open<TargetRole>,
    /// The TCP connect's latency, when a `tcp` evidence proves the connect.
    pub connect_ms: Option<f64>,
    pub tls: Option<&'a TlsEvidence>,
    pub http: Option<&'a HttpEvidence>,
}

/// The targets the rules have failed so far (they get no `ok` line).
pub type Judged = BTreeSet<SocketAddr>;

pub fn apply(f: &Facts, r: &mut Report) {
    let targets = targets(f, r);
    if targets.is_empty() {
        return;
    }
    let mut judged = Judged::new();
    tls::apply(f, &targets, r, &mut judged);
    http::apply(f, &targets, r, &mut judged);
    for t in targets.iter().filter(|t| !judged.contains(&t.address)) {
        target_line(t, r);
    }
}

/// The targets with application evidence worth judging, in stream order: not those whose
/// connect failed (the TCP rules said it) or that a lower rule explained.
fn targets<'a>(f: &Facts<'a>, r: &Report) -> Vec<Target<'a>> {
    let tcp = f.all::<TcpEvidence>();
    let tls = f.all::<TlsEvidence>();
    let http = f.all::<HttpEvidence>();
    let mut addresses: Vec<(SocketAddr, Open<TargetRole>)> = Vec::new();
    let roles = tls
        .iter()
        .map(|t| (t.address, &t.role))
        .chain(http.iter().map(|h| (h.address, &h.role)));
    for (address, role) in roles {
        if !addresses.iter().any(|(a, _)| *a == address) {
            addresses.push((address, f.role(role, address.ip())));
        }
    }
    addresses
        .into_iter()
        .filter_map(|(address, role)| {
            let connect = tcp.iter().find(|t| t.address == address);
            if connect.is_some_and(|c| !crate::checks::tcp::connected(c))
                || r.explained.contains(&address)
            {
                return None;
            }
            let tls = tls
                .iter()
                .copied()
                .find(|t| t.address == address)
                .filter(|t| t.outcome != TlsOutcome::NoConnection);
            let http = http
                .iter()
                .copied()
                .find(|h| h.address == address)
                .filter(|h| h.outcome != HttpOutcome::NoConnection);
            if tls.is_none() && http.is_none() {
                return None;
            }
            Some(Target {
                address,
                role,
                connect_ms: connect.map(|c| c.latency_ms),
                tls,
                http,
            })
        })
        .collect()
}

/// `10.199.70.2:8443 200 OK, TLSv1.3, first byte 3.1 ms`; a redirect is context (`info`),
/// not proof: where it points was not followed.
fn target_line(t: &Target, r: &mut Report) {
    let mut parts: Vec<String> = Vec::new();
    let mut redirect = false;
    if let Some(h) = t.http.filter(|h| h.outcome == HttpOutcome::Response) {
        parts.push(status_words(h));
        if let Some(location) = h.location.as_deref().filter(|_| is_redirect(h)) {
            redirect = true;
            parts[0].push_str(&format!(" -> {location} (not followed)"));
        }
    }
    if let Some(tls) = t.tls.filter(|x| x.outcome == TlsOutcome::Ok) {
        let version = tls.version.clone().unwrap_or_else(|| "TLS".into());
        parts.push(match (t.http, tls.timing.finished_ms) {
            (None, Some(hs)) => format!(
                "{version} {}, handshake {}",
                tls.cipher_suite.as_deref().unwrap_or(""),
                ms(hs)
            )
            .replace("  ", " "),
            _ => version,
        });
    }
    if let Some(fb) = t.http.and_then(|h| h.first_byte_ms) {
        parts.push(format!("first byte {}", ms(fb)));
    }
    // The probe stops reading at the plan's cap: what was judged is the start of the answer.
    if let Some(h) = t.http.filter(|h| h.truncated) {
        parts.push(format!(
            "response truncated: the first {} bytes read (the cap)",
            h.bytes_read
        ));
    }
    if parts.is_empty() {
        return;
    }
    let text = format!("{} {}", t.address, parts.join(", "));
    if redirect {
        r.info(Layer::Application, text);
    } else {
        r.ok(Layer::Application, text);
    }
}

pub fn is_redirect(h: &HttpEvidence) -> bool {
    h.status.is_some_and(|s| (300..400).contains(&s))
}

/// `503 Service Unavailable`, `200` (the reason phrase when the server sent one).
pub fn status_words(h: &HttpEvidence) -> String {
    match (h.status, h.reason.as_deref().filter(|r| !r.is_empty())) {
        (Some(s), Some(reason)) => format!("{s} {reason}"),
        (Some(s), None) => s.to_string(),
        (None, _) => h.outcome.to_string(),
    }
}

/// What an address stands for: `pod/web-2 on node-b` for an endpoint, `svc/web` for the
/// ClusterIP, `pod/web-0` for a destination pod; None for a plain address.
fn what(f: &Facts, t: &Target) -> Option<String> {
    match f.kube.destination.as_ref()? {
        DestinationInfo::Service(svc) => {
            if t.role == TargetRole::ClusterIp {
                return Some(format!("svc/{}", svc.name));
            }
            let ep = svc.endpoint_at(t.address)?;
            let pod = ep.pod.as_ref()?;
            Some(match &ep.node {
                Some(node) => format!("pod/{pod} on {node}"),
                None => format!("pod/{pod}"),
            })
        }
        DestinationInfo::Pod(p) => {
            p.ip.as_deref()
                .is_some_and(|ip| ip.parse() == Ok(t.address.ip()))
                .then(|| format!("pod/{}", p.name))
        }
        DestinationInfo::Address { .. } => None,
    }
}

/// `10.244.1.9:8080 (pod/web-2 on node-b)`.
pub fn described(f: &Facts, t: &Target) -> String {
    match what(f, t) {
        Some(w) => format!("{} ({w})", t.address),
        None => t.address.to_string(),
    }
}

/// The pod behind a target (an endpoint of the Service, or the destination pod): namespace
/// and name.
pub fn pod_of(f: &Facts, t: &Target) -> Option<(String, String)> {
    match f.kube.destination.as_ref()? {
        DestinationInfo::Service(svc) if t.role == TargetRole::Endpoint => {
            let ep = svc.endpoint_at(t.address)?;
            Some((svc.namespace.clone(), ep.pod.clone()?))
        }
        DestinationInfo::Pod(p) => what(f, t).map(|_| (p.namespace.clone(), p.name.clone())),
        _ => None,
    }
}

/// `kubectl logs -n shop pod/web-2   # what the application says` for the first target with a
/// pod behind it (never in a local run).
pub fn logs_step(f: &Facts, targets: &[&Target], why: &str) -> Option<String> {
    if f.is_local() {
        return None;
    }
    let (ns, pod) = targets.iter().find_map(|t| pod_of(f, t))?;
    Some(format!("kubectl logs -n {ns} pod/{pod}   # {why}"))
}

/// The netdebug command from the same place with the asked flags changed by `change` (a
/// scheme swapped, a flag added): None when the run's flags are not known.
pub fn rerun(f: &Facts, change: impl Fn(&str) -> String, why: &str) -> Option<String> {
    let asked = change(&f.title.asked_flags()?);
    let origin: Origin = f.title.origin_or(f.kube);
    Some(format!(
        "{}   # {why}",
        origin.command(Some(&asked), "").trim_end()
    ))
}

/// `openssl s_client -connect 10.0.0.1:443 -servername web.example </dev/null` with `then`
/// piped after it (`| openssl x509 -noout -dates`).
pub fn s_client(address: SocketAddr, server_name: &str, then: &str) -> String {
    format!("openssl s_client -connect {address} -servername {server_name} </dev/null{then}")
}

/// The verification of a handshake's chain, when it said one this version knows.
pub fn verification(t: &TlsEvidence) -> Option<Verification> {
    t.verification.as_ref().and_then(|v| v.known())
}

/// `2025-01-31 12:00 UTC` from seconds since the Unix epoch (a certificate's validity).
pub fn date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// A healthy run's headline when application evidence proves the service answers:
/// `HTTP 200 (3/3 targets)`, `TLS ok (3/3 handshakes)`.
pub fn healthy_headline(f: &Facts) -> Option<String> {
    let http = f.all::<HttpEvidence>();
    let answered: Vec<u16> = http
        .iter()
        .filter(|h| h.outcome == HttpOutcome::Response)
        .filter_map(|h| h.status)
        .collect();
    if !http.is_empty() {
        if answered.is_empty() {
            return None;
        }
        let mut statuses = answered.clone();
        statuses.sort_unstable();
        statuses.dedup();
        let statuses: Vec<String> = statuses.iter().map(u16::to_string).collect();
        return Some(format!(
            "HTTP {} ({}/{} targets)",
            statuses.join(", "),
            answered.len(),
            http.len()
        ));
    }
    let tls = f.all::<TlsEvidence>();
    let ok = tls.iter().filter(|t| t.outcome == TlsOutcome::Ok).count();
    (ok > 0).then(|| format!("TLS ok ({ok}/{} handshakes)", tls.len()))
}

#[cfg(test)]
mod tests {
    use super::date;

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(date(1_735_689_600 + 3_660), "2025-01-01 01:01 UTC");
        assert_eq!(date(-86_400), "1969-12-31 00:00 UTC");
    }
}
