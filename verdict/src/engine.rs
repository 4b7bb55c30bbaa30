//! `evaluate`: run the rules in layer order and turn their report into a verdict.

use protocol::{DnsLookupEvidence, MtuEvidence, RouteEvidence, TcpEvidence, TcpOutcome};

use crate::facts::Facts;
use crate::model::{Inputs, Layer, Mark, RuleCode, Severity, Status, Vantage, Verdict};
use crate::rules::{self, Report};

/// Judge all evidence. Pure: the same inputs always give the same verdict.
pub fn evaluate(inputs: &Inputs) -> Verdict {
    let facts = Facts::gather(inputs);
    let mut report = Report::default();

    rules::probe::stopped_early(inputs, &facts, &mut report);
    rules::dns::apply(&facts, &mut report);
    rules::service::apply(&facts, &mut report);
    rules::network::apply(&facts, &mut report);
    rules::transport::apply(&facts, &mut report);
    rules::policy::apply(&facts, &mut report);
    rules::path::apply(&facts, &mut report);
    rules::state::apply(&facts, &mut report);
    let unchecked = rules::probe::check_failures(&facts, &mut report);

    // A destination was asked about, but no check said anything about it: a healthy
    // verdict would rest on nothing (e.g. the DNS check ended without a lookup).
    let about_destination = facts.has::<TcpEvidence>()
        || facts.has::<DnsLookupEvidence>()
        || facts.has::<RouteEvidence>()
        || facts.has::<MtuEvidence>();
    let nothing_about_destination = inputs.title.destination.is_some() && !about_destination;
    if report.findings.is_empty() && (report.proven.is_empty() || nothing_about_destination) {
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

    // Most important first: inconclusive stream end, then failures by layer, then
    // inconclusive checks, then warnings by layer. Rule order breaks ties (catalog order).
    let rank = |s: Severity, rule: RuleCode| -> u8 {
        match (s, rule) {
            (Severity::Inconclusive, RuleCode::ProbeStoppedEarly) => 0,
            (Severity::Failure, _) => 1,
            (Severity::Inconclusive, _) => 2,
            (Severity::Warning, _) => 3,
        }
    };
    report
        .findings
        .sort_by_key(|x| (rank(x.severity, x.rule), x.layer, x.rule));

    let primary = report.findings.first();
    let status = match primary.map(|p| p.severity) {
        None => Status::Healthy,
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
    let mut cause = primary.map(|p| p.cause.clone());
    // Stopped early: say what the partial evidence already showed, without concluding.
    if primary.is_some_and(|p| p.rule == RuleCode::ProbeStoppedEarly) {
        if let (Some(c), Some(f)) = (
            cause.as_mut(),
            report
                .findings
                .iter()
                .find(|x| x.severity == Severity::Failure),
        ) {
            c.push_str(&format!(
                "; the partial evidence already shows {} ({})",
                f.headline,
                f.layer.label()
            ));
        }
    }
    let mut next: Vec<String> = primary.map(|p| p.next.clone()).unwrap_or_default();
    if next.is_empty() {
        if let Some(second) = report.findings.iter().skip(1).find(|x| !x.next.is_empty()) {
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
            _ => capture_command(inputs),
        });
    }
    next.truncate(2);

    let mut notes = report.notes;
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

    // Evidence block in layer order; failing lines after the proven ones of the same layer.
    let mut evidence = report.lines;
    let mark_rank = |m: Mark| match m {
        Mark::Ok => 0,
        Mark::Info => 1,
        Mark::Warn => 2,
        Mark::Fail => 3,
        Mark::Skip => 4,
    };
    evidence.sort_by_key(|l| (l.layer, mark_rank(l.mark)));

    let mut rules_fired: Vec<RuleCode> = report.findings.iter().map(|x| x.rule).collect();
    rules_fired.sort();
    rules_fired.dedup();

    Verdict {
        status,
        layer,
        headline,
        cause,
        evidence,
        proven: report.proven,
        unchecked,
        next,
        findings: report.findings,
        rules_fired,
        notes,
    }
}

fn healthy_headline(f: &Facts) -> String {
    let tcp: Vec<&TcpEvidence> = f.all::<TcpEvidence>().collect();
    let ok_tcp = tcp.iter().filter(|t| t.outcome == TcpOutcome::Ok).count();
    if ok_tcp > 0 {
        format!("reachable ({ok_tcp}/{} connects ok)", tcp.len())
    } else if f.has::<DnsLookupEvidence>() {
        "resolves".into()
    } else {
        "no problem found".into()
    }
}

/// The command that looks further when everything checked was fine, run from the same place.
fn capture_command(inputs: &Inputs) -> String {
    let t = &inputs.title;
    // `kubectl netdebug pod/NAME --to D -n NS`: the pod the probe ran in (a workload's pick
    // included), and the namespace flag after the destination as the user typed it.
    let (again, ns) = match (&t.vantage, inputs.kube.source.as_ref()) {
        (Vantage::Pod, Some(src)) => (
            format!("kubectl netdebug pod/{}", src.pod),
            format!(" -n {}", src.namespace),
        ),
        (vantage, _) => (vantage.command(None), String::new()),
    };
    match t.destination.as_deref() {
        Some(d) => {
            format!("{again} --to {d}{ns} --capture -w trace.pcap   # if the app still fails")
        }
        None if t.vantage == Vantage::Pod => {
            format!("{again}{ns} --sockets   # socket-table health of the pod")
        }
        None => format!("{again} --sockets   # socket-table health of the namespace"),
    }
}
