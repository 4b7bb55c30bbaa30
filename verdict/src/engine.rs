//! `evaluate`: run the rules in layer order and turn their report into a verdict.

use protocol::CheckKind;

use crate::checks::{
    app, capture, conntrack, counters, dns, dns_rounds, links, mtu, node_path, rounds, route,
    sockets, tcp,
};
use crate::ends;
use crate::facts::Facts;
use crate::model::{
    EvidenceLine, Finding, Inputs, Layer, Mark, RuleCode, Severity, Status, Verdict,
};
use crate::report::Report;
use crate::rules::{kube, probe};

/// A rule: reads the facts, adds to the report.
type Rule = fn(&Facts, &mut Report);

/// Every rule, in the order they run: layer by layer (DNS, Service, Network, Transport,
/// Policy, Path, State, Application), so a later rule sees what an earlier one explained. Within a layer
/// the order decides which of two rules claims a target, and the order of proven lines.
const RULES: &[Rule] = &[
    dns::apply,
    dns_rounds::apply,
    kube::service,
    rounds::service,
    route::apply,
    links::apply,
    node_path::apply,
    rounds::apply,
    tcp::apply,
    sockets::served_ports,
    sockets::time_wait,
    sockets::close_wait,
    counters::listen_queue,
    counters::retransmissions,
    sockets::health,
    sockets::listeners,
    counters::health,
    capture::apply,
    kube::policy,
    mtu::apply,
    conntrack::apply,
    // Above every connect: a target a lower rule explained is not judged again. Its TLS-MTU
    // stall is a Path finding, cross-checked with the MTU evidence read above.
    app::apply,
];

/// Judge all evidence. Pure: the same inputs always give the same verdict.
pub fn evaluate(inputs: &Inputs) -> Verdict {
    let facts = Facts::gather(inputs);
    let mut report = Report::default();

    probe::stopped_early(inputs, &facts, &mut report);
    for rule in RULES {
        rule(&facts, &mut report);
    }
    // After every single-ended rule: a finding located by both ends refines theirs.
    let ends = ends::apply(inputs, &facts, &mut report);
    let mut unchecked = probe::check_failures(&facts, &mut report);
    unchecked.extend(ends.unchecked);
    nothing_proven(inputs, &facts, &mut report);

    let Report {
        mut findings,
        lines,
        proven,
        notes,
        ..
    } = report;
    sort_findings(&mut findings);
    let primary = findings.first();
    let status = match primary.map(|p| p.severity) {
        None | Some(Severity::Info) => Status::Healthy,
        Some(Severity::Failure) => Status::Failed,
        Some(Severity::Inconclusive) => Status::Inconclusive,
        Some(Severity::Warning) => Status::Degraded,
    };
    let layer = primary
        .filter(|p| p.layer != Layer::Probe && status != Status::Inconclusive)
        .map(|p| p.layer);
    let headline = match primary {
        Some(p) => p.headline.clone(),
        None => healthy_headline(&facts),
    };
    let mut rules_fired: Vec<RuleCode> = findings.iter().map(|x| x.rule).collect();
    rules_fired.sort();
    rules_fired.dedup();

    Verdict {
        status,
        layer,
        headline,
        cause: cause(&findings),
        evidence: evidence_block(lines),
        proven,
        unchecked,
        next: next_steps(inputs, &facts, &findings, status),
        notes: all_notes(inputs, notes),
        findings,
        rules_fired,
        connections: ends.connections,
    }
}

/// A destination was asked about, but no check said anything about it: a healthy verdict
/// would rest on nothing (e.g. the DNS check ended without a lookup).
fn nothing_proven(inputs: &Inputs, f: &Facts, report: &mut Report) {
    let about_destination = [
        CheckKind::Tcp,
        CheckKind::Dns,
        CheckKind::Route,
        CheckKind::Mtu,
        CheckKind::App,
    ]
    .into_iter()
    .any(|k| f.about_destination(k));
    let nothing_about_destination = inputs.title.destination.is_some() && !about_destination;
    if !report.findings.is_empty() || !(report.proven.is_empty() || nothing_about_destination) {
        return;
    }
    let why = if nothing_about_destination {
        "the probe produced no evidence about the destination (no DNS lookup, route or TCP \
         result), so nothing about it is proven"
    } else {
        "no check produced a result that proves or disproves the path"
    };
    report
        .finding(
            RuleCode::NothingProven,
            Layer::Probe,
            Severity::Inconclusive,
            "nothing proven",
            why,
        )
        .add();
}

/// Most important first: inconclusive stream end, then failures by layer, then inconclusive
/// checks, then warnings by layer. Within a severity, a finding that both ends located comes
/// before the single-ended ones it refined. Rule order breaks ties (catalog order).
fn sort_findings(findings: &mut [Finding]) {
    let rank = |s: Severity, rule: RuleCode| -> u8 {
        match (s, rule) {
            (Severity::Inconclusive, RuleCode::ProbeStoppedEarly) => 0,
            (Severity::Failure, _) => 1,
            (Severity::Inconclusive, _) => 2,
            (Severity::Warning, _) => 3,
            (Severity::Info, _) => 4,
        }
    };
    findings.sort_by_key(|x| {
        (
            rank(x.severity, x.rule),
            x.refined_by.is_some(),
            x.layer,
            x.rule,
        )
    });
}

/// The primary finding's cause. When the probe stopped early: what the partial evidence
/// already showed, without concluding.
fn cause(findings: &[Finding]) -> Option<String> {
    let primary = findings.first()?;
    let mut cause = primary.cause.clone();
    if primary.rule == RuleCode::ProbeStoppedEarly {
        if let Some(f) = findings.iter().find(|x| x.severity == Severity::Failure) {
            cause.push_str(&format!(
                "; the partial evidence already shows {} ({})",
                f.headline,
                f.layer.label()
            ));
        }
    }
    Some(cause)
}

/// One or two commands: the primary finding's, else the next finding's that has any; when
/// healthy, how to look further.
fn next_steps(inputs: &Inputs, f: &Facts, findings: &[Finding], status: Status) -> Vec<String> {
    let mut next: Vec<String> = findings.first().map(|p| p.next.clone()).unwrap_or_default();
    if next.is_empty() {
        if let Some(second) = findings.iter().skip(1).find(|x| !x.next.is_empty()) {
            next.extend(second.next.iter().cloned());
        }
    }
    if status == Status::Healthy {
        next.push(match &inputs.pcap {
            // A capture already ran: look at it, or watch longer while the app misbehaves.
            Some(p) if p.path != "-" => format!(
                "tcpdump -nn -r {}   # or open it in Wireshark; --capture-duration 60s watches the app's own traffic",
                p.path
            ),
            _ => capture_command(inputs, f),
        });
    }
    next.truncate(2);
    next
}

/// The rules' notes, then the client's, the profile, the pcap file and ignored events.
fn all_notes(inputs: &Inputs, mut notes: Vec<String>) -> Vec<String> {
    notes.extend(inputs.client_notes.iter().cloned());
    if let Some(p) = inputs.kube.profile.as_ref() {
        notes.push(format!("profile {}: {}", p.name, p.reason));
    }
    if let Some(p) = inputs.pcap.as_ref() {
        notes.push(format!(
            "capture written to {} ({} packets)",
            if p.path == "-" {
                "stdout"
            } else {
                p.path.as_str()
            },
            p.packets
        ));
    }
    if !inputs.ignored_events.is_empty() {
        let mut kinds = inputs.ignored_events.clone();
        kinds.sort();
        kinds.dedup();
        notes.push(format!(
            "ignored {} event(s) of a newer probe this version does not know: {}",
            inputs.ignored_events.len(),
            kinds.join(", ")
        ));
    }
    notes
}

/// Evidence block in layer order; failing lines after the proven ones of the same layer.
fn evidence_block(mut lines: Vec<EvidenceLine>) -> Vec<EvidenceLine> {
    let mark_rank = |m: Mark| match m {
        Mark::Ok => 0,
        Mark::Info => 1,
        Mark::Warn => 2,
        Mark::Fail => 3,
        Mark::Skip => 4,
    };
    lines.sort_by_key(|l| (l.layer, mark_rank(l.mark)));
    lines
}

fn healthy_headline(f: &Facts) -> String {
    if let Some(h) = rounds::healthy_headline(f) {
        return h;
    }
    if let Some(h) = app::healthy_headline(f) {
        return h;
    }
    let tcp = f.all::<protocol::TcpEvidence>();
    let ok_tcp = tcp.iter().filter(|t| tcp::connected(t)).count();
    if ok_tcp > 0 {
        format!("reachable ({ok_tcp}/{} connects ok)", tcp.len())
    } else if f.about_destination(CheckKind::Dns) {
        "resolves".into()
    } else {
        "no problem found".into()
    }
}

/// The command that looks further when everything checked was fine, run from the same place
/// (built from [`crate::Title::origin`], never from the display label).
fn capture_command(inputs: &Inputs, f: &Facts) -> String {
    let origin = inputs.title.origin_or(&inputs.kube);
    match inputs.title.asked_flags() {
        Some(d) => crate::steps::capture(f, &origin, Some(&d), "if the app still fails"),
        None => format!(
            "{}   # socket-table health of {}",
            origin.command(None, "--sockets"),
            if origin.is_local() {
                "this namespace"
            } else {
                "the pod"
            }
        ),
    }
}
