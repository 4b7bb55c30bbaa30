//! `dns_config` and `dns_lookup` evidence: resolv.conf and each name's resolution as the pod's
//! resolver walks it. Rules: name does not exist, cluster DNS unreachable, slow external names
//! through search-list expansion, resolv.conf not pointing at cluster DNS, SERVFAIL upstream, a
//! target name the probe could not resolve.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use protocol::{
    DnsConfigEvidence, DnsLookupEvidence, DnsOutcome, DnsQuery, NameSource, Open, Rcode,
    TcpEvidence, TcpOutcome,
};

use crate::facts::Facts;
use crate::kube::KubeFindingCode;
use crate::model::{Layer, Mark, RuleCode, Severity};
use crate::progress::Progress;
use crate::report::Report;
use crate::words::{joined, list, ms, plural};

/// Wasted queries before an external name answers that make the expansion worth reporting
/// (one wasted A+AAAA pair is normal for `svc.ns` names; two or more candidates is not).
const WASTED_QUERIES_WORTH_REPORTING: u32 = 4;

impl Progress for DnsConfigEvidence {
    fn progress(&self) -> (Mark, String) {
        (
            Mark::Info,
            format!(
                "{}: nameserver {}; search {}; ndots:{}",
                self.path,
                joined(&self.nameservers),
                if self.search.is_empty() {
                    "(none)".to_string()
                } else {
                    self.search.join(" ")
                },
                self.ndots
            ),
        )
    }
}

impl Progress for DnsLookupEvidence {
    fn progress(&self) -> (Mark, String) {
        let queries = plural(self.queries.len() as u64, "query", "queries");
        if self.addresses.is_empty() {
            let outcomes: BTreeSet<&str> = self
                .queries
                .iter()
                .map(|q| match &q.outcome {
                    DnsOutcome::Response { rcode, .. } => rcode.as_str(),
                    DnsOutcome::Timeout => "timeout",
                    DnsOutcome::Error { .. } => "error",
                })
                .collect();
            let outcomes: Vec<&str> = outcomes.into_iter().collect();
            (
                Mark::Fail,
                format!(
                    "{}: no address ({}; {queries})",
                    self.name,
                    outcomes.join("/")
                ),
            )
        } else if self.source == NameSource::Files {
            (
                Mark::Ok,
                format!(
                    "{} -> {}  (from the hosts file, no DNS query)",
                    self.name,
                    joined(&self.addresses)
                ),
            )
        } else {
            (
                Mark::Ok,
                format!(
                    "{} -> {}  ({queries}, {})",
                    self.name,
                    joined(&self.addresses),
                    ms(self.elapsed_ms)
                ),
            )
        }
    }
}

pub fn apply(f: &Facts, r: &mut Report) {
    not_cluster_dns(f, r);
    unreachable_nameservers(f, r);
    for lookup in f.all::<DnsLookupEvidence>() {
        lookup_rules(f, lookup, r);
    }
    unresolved_targets(f, r);
}

fn rcode(q: &DnsQuery) -> Option<&Open<Rcode>> {
    match &q.outcome {
        DnsOutcome::Response { rcode, .. } => Some(rcode),
        _ => None,
    }
}

fn is_rcode(q: &DnsQuery, codes: &[Rcode]) -> bool {
    rcode(q).is_some_and(|c| c.is_any(codes))
}

/// The server could not or would not answer (SERVFAIL, REFUSED).
fn is_server_failure(q: &DnsQuery) -> bool {
    rcode(q)
        .and_then(Open::known)
        .is_some_and(Rcode::is_server_failure)
}

fn is_cluster_name(f: &Facts, name: &str) -> bool {
    let domain = f.kube.cluster_domain.as_deref().unwrap_or("cluster.local");
    let name = name.trim_end_matches('.');
    name.ends_with(&format!(".svc.{domain}"))
        || f.service()
            .is_some_and(|s| s.dns_name.trim_end_matches('.') == name)
}

/// The nameservers a lookup asked, each once, in the order first asked.
fn nameservers(l: &DnsLookupEvidence) -> Vec<String> {
    let mut seen = Vec::new();
    for q in &l.queries {
        let ip = q.nameserver.ip().to_string();
        if !seen.contains(&ip) {
            seen.push(ip);
        }
    }
    seen
}

fn lookup_rules(f: &Facts, l: &DnsLookupEvidence, r: &mut Report) {
    if l.answered_by.is_some() && !l.addresses.is_empty() {
        return answered(f, l, r);
    }
    // No answer. Classify what came back.
    let total = l.queries.len();
    let timeouts = l
        .queries
        .iter()
        .filter(|q| matches!(q.outcome, DnsOutcome::Timeout | DnsOutcome::Error { .. }))
        .count();
    let servfail = l.queries.iter().filter(|q| is_server_failure(q)).count();
    let nx_or_nodata = l
        .queries
        .iter()
        .filter(|q| is_rcode(q, &[Rcode::NxDomain, Rcode::NoError]))
        .count();
    if total == 0 {
        r.finding(
            RuleCode::DnsServerUnreachable,
            Layer::Dns,
            Severity::Failure,
            "DNS not configured",
            format!(
                "{} could not be looked up: no query was sent (no nameserver in resolv.conf?)",
                l.name
            ),
        )
        .line(format!("{}: no query sent", l.name))
        .next(if f.is_local() {
            "cat /etc/resolv.conf"
        } else {
            "cat /etc/resolv.conf   # in the pod: kubectl exec POD -- cat /etc/resolv.conf"
        })
        .add();
    } else if timeouts == total {
        // Reported per nameserver by `unreachable_nameservers`; add the name's line there.
        r.info(
            Layer::Dns,
            format!(
                "{}: no answer to any of {} ({} elapsed)",
                l.name,
                plural(total as u64, "query", "queries"),
                ms(l.elapsed_ms)
            ),
        );
    } else if servfail > 0 && nx_or_nodata < total - timeouts {
        server_failure(f, l, servfail, r);
    } else {
        nxdomain(f, l, nx_or_nodata, r);
    }
}

/// The name resolved: proven, unless the answer came only after a costly search-list walk.
fn answered(f: &Facts, l: &DnsLookupEvidence, r: &mut Report) {
    let addrs: Vec<String> = l.addresses.iter().map(|a| a.to_string()).collect();
    let asked = l.name.trim_end_matches('.');
    let answered_as = l
        .answered_by
        .as_deref()
        .unwrap_or(&l.name)
        .trim_end_matches('.');
    // Say which search-list candidate answered when it is not the name asked.
    let shown = if asked == answered_as {
        asked.to_string()
    } else {
        format!("{asked} (as {answered_as})")
    };
    if l.source == NameSource::Files {
        // The hosts file answered: DNS was never asked, so it proves nothing about DNS.
        return r.ok(
            Layer::Dns,
            format!(
                "{shown} -> {}  (from the hosts file, no DNS query: DNS was not tested for it)",
                list(&addrs, 3)
            ),
        );
    }
    let line = format!(
        "{shown} -> {}  ({}, {})",
        list(&addrs, 3),
        plural(l.queries.len() as u64, "query", "queries"),
        ms(l.elapsed_ms)
    );
    let last = l.candidates.last().map(|c| c.trim_end_matches('.'));
    let external_via_expansion = l.candidates.len() > 1
        && last == Some(answered_as)
        && l.wasted_queries >= WASTED_QUERIES_WORTH_REPORTING;
    if external_via_expansion {
        search_expansion(f, l, line, r);
    } else {
        r.ok(Layer::Dns, line);
    }
}

fn search_expansion(f: &Facts, l: &DnsLookupEvidence, line: String, r: &mut Report) {
    let ndots = f.one::<DnsConfigEvidence>().map(|c| c.ndots).unwrap_or(1);
    let dots = l.name.trim_end_matches('.').matches('.').count();
    // glibc tries a name as-is first once it has at least ndots dots.
    let suggested = dots.max(1);
    let fqdn = format!("{}.", l.name.trim_end_matches('.'));
    let wasted_on: Vec<String> = l.candidates[..l.candidates.len() - 1]
        .iter()
        .map(|c| c.trim_end_matches('.').to_string())
        .collect();
    r.finding(
        RuleCode::DnsSearchExpansion,
        Layer::Dns,
        Severity::Warning,
        "slow DNS (search expansion)",
        format!(
            "{} has {dots} dot{} (fewer than ndots:{ndots}), so {} search-list candidates were \
             tried first: {} wasted queries before the answer ({}); use {fqdn} (trailing dot) \
             or ndots:{suggested}",
            l.name,
            if dots == 1 { "" } else { "s" },
            l.candidates.len() - 1,
            l.wasted_queries,
            ms(l.elapsed_ms)
        ),
    )
    .line(line)
    .line(format!(
        "{} wasted on {}",
        plural(u64::from(l.wasted_queries), "query", "queries"),
        list(&wasted_on, 3)
    ))
    .next(format!(
        "getent hosts {fqdn}   # with the trailing dot: no search-list queries"
    ))
    .next(match f.kube.source.as_ref().filter(|_| !f.is_local()) {
        Some(src) => format!(
            "kubectl get pod -n {} {} -o jsonpath='{{.spec.dnsConfig}}'   # set options \
             ndots:{suggested}",
            src.namespace, src.pod
        ),
        None => format!("grep ndots /etc/resolv.conf   # ndots:{suggested} would do"),
    })
    .add();
}

/// SERVFAIL or REFUSED: the nameserver could not get an answer.
fn server_failure(f: &Facts, l: &DnsLookupEvidence, servfail: usize, r: &mut Report) {
    let Some(q) = l.queries.iter().find(|q| is_server_failure(q)) else {
        return;
    };
    let total = l.queries.len();
    let cand = q.candidate.trim_end_matches('.');
    let code = rcode(q).map_or("SERVFAIL", |c| c.as_str());
    let ns = q.nameserver.ip();
    let mut b = r
        .finding(
            RuleCode::DnsServfail,
            Layer::Dns,
            Severity::Failure,
            format!("DNS {code}"),
            format!(
                "nameserver {ns} answered {code} for {cand} ({servfail} of {total} queries): it \
                 could not get an answer from upstream"
            ),
        )
        .line(format!(
            "{}: {code} from {} ({servfail}/{total} queries), no address",
            l.name,
            list(&nameservers(l), 2)
        ));
    if !f.is_local() {
        b = b.next("kubectl -n kube-system logs -l k8s-app=kube-dns --tail=50");
    }
    b.next(format!("dig @{ns} {cand}")).add();
}

/// Every candidate came back NXDOMAIN (or without an address).
fn nxdomain(f: &Facts, l: &DnsLookupEvidence, nx_or_nodata: usize, r: &mut Report) {
    let nx = l
        .queries
        .iter()
        .filter(|q| is_rcode(q, &[Rcode::NxDomain]))
        .count();
    let cands: Vec<String> = l
        .candidates
        .iter()
        .map(|c| c.trim_end_matches('.').to_string())
        .collect();
    let mut cause = format!(
        "{} does not exist: {} for all {} ({}) from {}",
        l.name,
        if nx == nx_or_nodata {
            "NXDOMAIN"
        } else {
            "NXDOMAIN or no address"
        },
        plural(cands.len() as u64, "candidate", "candidates"),
        list(&cands, 3),
        list(&nameservers(l), 2),
    );
    let next = nxdomain_context(f, l, &mut cause, r);
    let mut b = r
        .finding(
            RuleCode::DnsNxdomain,
            Layer::Dns,
            Severity::Failure,
            "DNS NXDOMAIN",
            cause,
        )
        .line(format!(
            "{}: NXDOMAIN on every candidate ({}, {})",
            l.name,
            plural(l.queries.len() as u64, "query", "queries"),
            ms(l.elapsed_ms)
        ));
    for n in next.into_iter().take(2) {
        b = b.next(n);
    }
    b.add();
}

/// What else explains an NXDOMAIN (added to the cause), and the next commands.
fn nxdomain_context(
    f: &Facts,
    l: &DnsLookupEvidence,
    cause: &mut String,
    r: &Report,
) -> Vec<String> {
    let mut next = Vec::new();
    let short = l.name.trim_end_matches('.');
    let first_label = short.split('.').next().unwrap_or(short);
    if r.has(RuleCode::DnsNotClusterDns) {
        cause.push_str(", which is not the cluster DNS");
    } else if let Some(svc) = f.service() {
        if is_cluster_name(f, &l.name)
            || short.starts_with(&format!("{}.", svc.name))
            || short == svc.name
        {
            cause.push_str(&format!(
                "; yet svc/{} exists in namespace {} (cluster DNS does not serve it)",
                svc.name, svc.namespace
            ));
            next.push("kubectl -n kube-system logs -l k8s-app=kube-dns --tail=50".to_string());
        }
    } else if short.matches('.').count() <= 1 && !l.name.ends_with('.') {
        let own_ns = f
            .kube
            .source
            .as_ref()
            .map(|s| s.namespace.clone())
            .or_else(|| {
                f.one::<DnsConfigEvidence>()
                    .and_then(|c| c.search.first())
                    .and_then(|s| s.split('.').next().map(str::to_string))
            });
        if let Some(ns) = own_ns {
            cause.push_str(&format!(
                "; a short name resolves in the pod's namespace ({ns}) only: wrong namespace?"
            ));
        }
        if !f.is_local() {
            let labels: Vec<&str> = short.split('.').collect();
            if let [svc, ns] = labels.as_slice() {
                next.push(format!("kubectl get svc -n {ns} {svc}"));
            }
            next.push(format!(
                "kubectl get svc -A --field-selector metadata.name={first_label}"
            ));
        }
    }
    if next.is_empty() {
        next.push(format!("dig {short}"));
    }
    next
}

/// Queries a nameserver got, across all lookups.
#[derive(Default)]
struct Tally {
    sent: usize,
    silent: usize,
    refused: usize,
    max_latency: f64,
    /// Largest gap between a query and its retry (same candidate and type).
    retry_gap: f64,
}

fn tally_by_nameserver(lookups: &[&DnsLookupEvidence]) -> BTreeMap<SocketAddr, Tally> {
    let mut by_ns: BTreeMap<SocketAddr, Tally> = BTreeMap::new();
    for l in lookups {
        for q in &l.queries {
            let t = by_ns.entry(q.nameserver).or_default();
            t.sent += 1;
            match &q.outcome {
                DnsOutcome::Timeout => {
                    t.silent += 1;
                    t.max_latency = t.max_latency.max(q.latency_ms);
                }
                DnsOutcome::Error { .. } => {
                    t.silent += 1;
                    t.refused += 1;
                }
                DnsOutcome::Response { .. } => {}
            }
            if q.attempt > 1 {
                let earlier = l.queries.iter().find(|p| {
                    p.attempt + 1 == q.attempt
                        && p.candidate == q.candidate
                        && p.qtype == q.qtype
                        && p.nameserver == q.nameserver
                });
                if let Some(p) = earlier {
                    t.retry_gap = t.retry_gap.max(q.sent_ms - p.sent_ms);
                }
            }
        }
    }
    by_ns
}

/// A nameserver that answered none of its queries, across all lookups.
fn unreachable_nameservers(f: &Facts, r: &mut Report) {
    let lookups = f.all::<DnsLookupEvidence>();
    let slowest = lookups
        .iter()
        .filter(|l| l.addresses.is_empty())
        .map(|l| (l.name.as_str(), l.elapsed_ms))
        .fold(None, |acc: Option<(&str, f64)>, x| match acc {
            Some(a) if a.1 >= x.1 => Some(a),
            _ => Some(x),
        });
    let any_answered = lookups
        .iter()
        .any(|l| l.answered_by.is_some() && !l.addresses.is_empty());
    for (ns, t) in tally_by_nameserver(&lookups) {
        if t.sent == 0 || t.silent < t.sent {
            continue;
        }
        let how = if t.refused == t.silent {
            "each failed (ICMP port unreachable: nothing listens on port 53)".to_string()
        } else {
            let mut how = format!("each timed out after {}", ms(t.max_latency));
            if t.retry_gap > 0.0 {
                how.push_str(&format!(", retries {} apart", ms(t.retry_gap)));
            }
            if let Some((name, elapsed)) = slowest {
                how.push_str(&format!("; {name} gave up after {}", ms(elapsed)));
            }
            how
        };
        silent_nameserver(f, ns, &t, &how, any_answered, r);
    }
}

fn silent_nameserver(
    f: &Facts,
    ns: SocketAddr,
    t: &Tally,
    how: &str,
    any_answered: bool,
    r: &mut Report,
) {
    let cluster = f.kube.cluster_dns.as_deref().and_then(|c| c.parse().ok()) == Some(ns.ip());
    let who = if cluster {
        format!("cluster DNS {}", ns.ip())
    } else {
        format!("nameserver {}", ns.ip())
    };
    let severity = if any_answered {
        Severity::Warning
    } else {
        Severity::Failure
    };
    // The client predicted that an egress policy blocks DNS: that is the likely cause.
    let policy = f.kube_finding(KubeFindingCode::NetworkPolicyDeniesDns);
    let mut b = r
        .finding(
            RuleCode::DnsServerUnreachable,
            Layer::Dns,
            severity,
            // Names still resolved (through another nameserver, after the wait): the headline
            // must not say DNS is down when it answers, only slowly.
            if any_answered {
                "slow DNS: a nameserver never answers"
            } else {
                "DNS unreachable"
            },
            format!(
                "{who} answered none of {}: {how}{}{}",
                plural(t.sent as u64, "query", "queries"),
                if any_answered {
                    "; another nameserver answered, after that wait"
                } else {
                    ""
                },
                policy
                    .map(|p| format!("; {} blocks it: {}", p.object, p.message))
                    .unwrap_or_default()
            ),
        )
        .line(format!(
            "{who}:{}: 0 of {} answered ({how})",
            ns.port(),
            t.sent
        ));
    if let Some(p) = policy {
        let name = p
            .details
            .get("policy")
            .cloned()
            .unwrap_or_else(|| p.object.clone());
        let short = name.rsplit('/').next().unwrap_or(&name).to_string();
        b = b
            .line_in(Layer::Policy, p.message.clone())
            .next(match p.details.get("namespace") {
                Some(ns) => format!("kubectl get networkpolicy -n {ns} {short} -o yaml"),
                None => format!("kubectl get networkpolicy -A | grep {short}"),
            });
    }
    let kubernetes = cluster || f.kube.source.is_some();
    b.next(if kubernetes && !f.is_local() {
        "kubectl -n kube-system get pods,endpointslices -l k8s-app=kube-dns -o wide".to_string()
    } else {
        format!(
            "dig @{} +time=2 +tries=1 kubernetes.default.svc.cluster.local",
            ns.ip()
        )
    })
    .add();
}

/// resolv.conf lists no cluster DNS: Service names cannot resolve.
fn not_cluster_dns(f: &Facts, r: &mut Report) {
    let Some(cfg) = f.one::<DnsConfigEvidence>() else {
        return;
    };
    let Some(cluster_dns) = f.kube.cluster_dns.as_deref() else {
        return;
    };
    let cluster_ip = cluster_dns.parse().ok();
    if cfg.nameservers.iter().any(|n| Some(*n) == cluster_ip) {
        let domain = f.kube.cluster_domain.as_deref().unwrap_or("cluster.local");
        r.ok(
            Layer::Dns,
            format!(
                "{} points at cluster DNS {cluster_dns}; search {}, ndots:{}",
                cfg.path,
                if cfg.search.iter().any(|s| s.ends_with(domain)) {
                    cfg.search.first().cloned().unwrap_or_default()
                } else {
                    "(no cluster domain)".into()
                },
                cfg.ndots
            ),
        );
        return;
    }
    let listed = if cfg.nameservers.is_empty() {
        "(none)".to_string()
    } else {
        joined(&cfg.nameservers)
    };
    let cluster_lookup_failed = f.all::<DnsLookupEvidence>().iter().any(|l| {
        // A single-label name is a Service name in the pod's namespace.
        let short = !l.name.trim_end_matches('.').contains('.');
        (is_cluster_name(f, &l.name) || short) && l.addresses.is_empty()
    });
    let severity = if cluster_lookup_failed {
        Severity::Failure
    } else {
        Severity::Warning
    };
    let pod = f
        .kube
        .source
        .as_ref()
        .map(|s| format!("pod {} -n {}", s.pod, s.namespace))
        .unwrap_or_else(|| "pod POD".into());
    r.finding(
        RuleCode::DnsNotClusterDns,
        Layer::Dns,
        severity,
        "resolv.conf bypasses cluster DNS",
        format!(
            "{} lists nameserver {listed} but the cluster DNS is {cluster_dns}: Service names \
             will not resolve (dnsPolicy or dnsConfig overrides it)",
            cfg.path,
        ),
    )
    .line(format!(
        "{}: nameserver {listed}; cluster DNS {cluster_dns} not listed",
        cfg.path,
    ))
    .next(format!(
        "kubectl get {pod} -o jsonpath='{{.spec.dnsPolicy}} {{.spec.dnsConfig}}'"
    ))
    .add();
}

/// TCP targets given as names that the probe could not resolve, when no DNS rule explains it.
fn unresolved_targets(f: &Facts, r: &mut Report) {
    let tcp = f.all::<TcpEvidence>();
    let unresolved = tcp.iter().filter(|t| t.outcome == TcpOutcome::Unresolved);
    let dns_explains = r
        .findings
        .iter()
        .any(|x| x.layer == Layer::Dns && x.severity == Severity::Failure);
    for t in unresolved {
        r.explained.insert(t.address);
        if dns_explains {
            continue;
        }
        r.finding(
            RuleCode::DnsUnresolved,
            Layer::Dns,
            Severity::Failure,
            "name not resolved",
            format!(
                "{} could not be resolved by the probe: {}",
                t.target,
                t.message.as_deref().unwrap_or("no address")
            ),
        )
        .line(format!("{}: unresolved", t.target))
        .next(format!(
            "dig {}",
            t.target.split(':').next().unwrap_or(&t.target)
        ))
        .add();
    }
}
