//! TLS handshakes: a stall while the connect passed (cross-checked with the MTU check: the
//! TLS-MTU trap), a ClientHello answered in plaintext, the certificate (dates, names, issuer)
//! and any other failed handshake.

use protocol::{
    CertificateInfo, MtuEvidence, Open, TlsEvidence, TlsOutcome, TlsStage, Verification,
};

use super::{described, logs_step, rerun, s_client, verification, Judged, Target};
use crate::facts::Facts;
use crate::model::{Layer, RuleCode, Severity};
use crate::report::Report;
use crate::words::{list, ms};

pub fn apply(f: &Facts, targets: &[Target], r: &mut Report, judged: &mut Judged) {
    stalls(f, targets, r, judged);
    plaintext_port(f, targets, r, judged);
    certificates(f, targets, r, judged);
    failed(f, targets, r, judged);
}

fn tls<'a>(t: &Target<'a>) -> Option<&'a TlsEvidence> {
    t.tls
}

// ---- stalls ---------------------------------------------------------------------------------

/// How a stalled handshake reads against the MTU check.
enum Against<'a> {
    /// The MTU check shows a blackhole below the size the flight needs.
    Agrees(&'a MtuEvidence),
    /// The MTU check passes what the flight needs (or ICMP frag-needed works).
    Disagrees(&'a MtuEvidence),
    /// No MTU evidence toward that address.
    NoMtu,
    /// The certificate arrived complete: the large packets passed.
    AfterCertificate,
}

/// The MTU check's blackhole, as `checks/mtu.rs` judges it.
fn blackhole(m: &MtuEvidence) -> bool {
    m.blackhole || (m.largest_ok.is_some() && m.smallest_lost.is_some() && !m.frag_needed_seen)
}

/// What the server's certificate flight weighs: its own chain when one was parsed, else the
/// chain another target with the same name sent in full (the same certificate), with who
/// sent it.
fn flight<'a>(f: &Facts<'a>, t: &TlsEvidence) -> Option<(u64, usize, Option<&'a TlsEvidence>)> {
    let weigh =
        |chain: &[CertificateInfo]| -> u64 { chain.iter().map(|c| u64::from(c.der_bytes)).sum() };
    if !t.chain.is_empty() {
        return Some((weigh(&t.chain), t.chain.len(), None));
    }
    f.all::<TlsEvidence>()
        .into_iter()
        .find(|o| o.server_name == t.server_name && !o.chain.is_empty())
        .map(|o| (weigh(&o.chain), o.chain.len(), Some(o)))
}

fn against<'a>(f: &Facts<'a>, t: &TlsEvidence) -> Against<'a> {
    if !t
        .reached
        .is_any(&[TlsStage::ClientHelloSent, TlsStage::ServerHello])
    {
        return Against::AfterCertificate;
    }
    let Some(m) = f
        .all::<MtuEvidence>()
        .into_iter()
        .find(|m| m.destination == t.address.ip())
    else {
        return Against::NoMtu;
    };
    let fits = match (flight(f, t), m.largest_ok) {
        (Some((bytes, _, _)), Some(ok)) => bytes <= u64::from(ok),
        _ => false,
    };
    if blackhole(m) && !fits {
        Against::Agrees(m)
    } else {
        Against::Disagrees(m)
    }
}

/// `after the ClientHello (no byte of the server's flight arrived)`.
fn where_words(t: &TlsEvidence) -> String {
    match t.reached.known() {
        Some(TlsStage::ClientHelloSent) => {
            "after the ClientHello (no byte of the server's flight arrived)".into()
        }
        Some(TlsStage::ServerHello) => format!(
            "mid-certificate ({} bytes of the server's flight arrived, then nothing)",
            t.bytes_received
        ),
        Some(TlsStage::Certificate) => format!(
            "after the server's certificate arrived complete ({} bytes)",
            t.bytes_received
        ),
        _ => format!("after {} ({} bytes received)", t.reached, t.bytes_received),
    }
}

/// `4812 bytes in 3 certificates` (`, as 10.0.0.2:443 sent it`).
fn flight_words(f: &Facts, t: &TlsEvidence) -> Option<String> {
    let (bytes, n, from) = flight(f, t)?;
    Some(format!(
        "{bytes} bytes in {n} certificate{}{}",
        if n == 1 { "" } else { "s" },
        from.map(|o| format!(", as {} sent it", o.address))
            .unwrap_or_default()
    ))
}

fn stalls(f: &Facts, targets: &[Target], r: &mut Report, judged: &mut Judged) {
    // A stall is judged against the path only when the connect proves that small packets
    // pass; without it, it is one more failed handshake (`failed`).
    // Each stall read against the MTU check once.
    let stalled: Vec<(&Target, &TlsEvidence, Against)> = targets
        .iter()
        .filter(|t| t.connect_ms.is_some())
        .filter_map(|t| tls(t).map(|x| (t, x)))
        .filter(|(_, x)| x.outcome == TlsOutcome::Stalled)
        .map(|(t, x)| (t, x, against(f, x)))
        .collect();
    let (mtu, other): (Vec<_>, Vec<_>) = stalled
        .into_iter()
        .partition(|(_, _, a)| matches!(a, Against::Agrees(_)));
    if let Some((t0, x0, Against::Agrees(m))) = mtu.first() {
        let ok = m.largest_ok.unwrap_or(0);
        let lost = m
            .smallest_lost
            .map(|s| format!("{s}-byte packets vanish"))
            .unwrap_or_else(|| "larger packets vanish".into());
        let weighs = flight_words(f, x0)
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        let mut b = r.finding(
            RuleCode::TlsStallMtu,
            Layer::Path,
            Severity::Failure,
            "TLS stalls: MTU",
            format!(
                "the TLS handshake with {} stalls {} while the connect passed in {}: the \
                 server's certificate flight{weighs} travels in packets larger than the {ok} \
                 bytes the path passes ({lost} with no ICMP frag-needed, MTU check): the TLS-MTU \
                 trap",
                described(f, t0),
                where_words(x0),
                ms(t0.connect_ms.unwrap_or(0.0)),
            ),
        );
        for (t, x, _) in &mtu {
            b = b.line(format!(
                "{} TLS stalled {} after {}; small packets pass (connect {})",
                described(f, t),
                where_words(x),
                ms(x.timing.total_ms),
                ms(t.connect_ms.unwrap_or(0.0))
            ));
            judged.insert(t.address);
        }
        b.line(format!(
            "{}: {ok}-byte packets pass, {lost}, no frag-needed ({})",
            m.destination, m.variant
        ))
        .next(format!(
            "lower the MTU to {ok} on the pod/CNI interface, or let ICMP type 3 code 4 through \
             the firewall on the path"
        ))
        .next(s_client(
            t0.address,
            &x0.server_name,
            "   # stalls the same way until the MTU is fixed",
        ))
        .add();
    }
    let Some((t0, x0, a0)) = other.first() else {
        return;
    };
    let why = match a0 {
        Against::NoMtu => format!(
            "small packets pass and the server's certificate flight{} does not arrive: most \
             likely a path MTU blackhole (the TLS-MTU trap); the MTU was not probed, `--mtu` \
             would confirm it",
            flight_words(f, x0)
                .map(|w| format!(" ({w})"))
                .unwrap_or_default()
        ),
        Against::Disagrees(m) => format!(
            "not the MTU: the MTU check passes {}-byte packets toward {}{}; the server (or a \
             middlebox inspecting TLS) stops answering mid-handshake",
            m.largest_ok
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into()),
            m.destination,
            match flight_words(f, x0) {
                Some(w) => format!(" and the certificate flight weighs {w}"),
                None if m.frag_needed_seen => ", and ICMP frag-needed comes back".into(),
                None => String::new(),
            }
        ),
        Against::AfterCertificate | Against::Agrees(_) => {
            "not the MTU (the large certificate flight passed); the server stops answering \
             mid-handshake (it may expect a client certificate, or hangs)"
                .into()
        }
    };
    let mut b = r.finding(
        RuleCode::TlsHandshakeStalled,
        Layer::Application,
        Severity::Failure,
        "TLS handshake stalls",
        format!(
            "the TLS handshake with {} stalls {} while the connect passed in {}: {why}",
            described(f, t0),
            where_words(x0),
            ms(t0.connect_ms.unwrap_or(0.0)),
        ),
    );
    for (t, x, _) in &other {
        b = b.line(format!(
            "{} TLS stalled {} after {} (connect {})",
            described(f, t),
            where_words(x),
            ms(x.timing.total_ms),
            ms(t.connect_ms.unwrap_or(0.0))
        ));
        judged.insert(t.address);
    }
    if matches!(a0, Against::NoMtu) {
        if let Some(step) = rerun(
            f,
            |asked| format!("{asked} --mtu"),
            "the path MTU toward the same targets",
        ) {
            b = b.next(step);
        }
    }
    b.next(s_client(t0.address, &x0.server_name, "")).add();
}

// ---- TLS sent to a plaintext port -------------------------------------------------------------

fn plaintext_port(f: &Facts, targets: &[Target], r: &mut Report, judged: &mut Judged) {
    let not_tls: Vec<(&Target, &TlsEvidence)> = targets
        .iter()
        .filter_map(|t| tls(t).map(|x| (t, x)))
        .filter(|(_, x)| x.outcome == TlsOutcome::NotTls)
        .collect();
    let Some((t0, x0)) = not_tls.first() else {
        return;
    };
    let reply = |x: &TlsEvidence| match x.plaintext_reply.as_deref() {
        Some(text) => format!(
            "`{}`",
            text.lines()
                .next()
                .unwrap_or(text)
                .trim()
                .chars()
                .take(60)
                .collect::<String>()
        ),
        None => "bytes that are not TLS".into(),
    };
    let mut b = r.finding(
        RuleCode::TlsToPlaintextPort,
        Layer::Application,
        Severity::Failure,
        "TLS to a plaintext port",
        format!(
            "{} answered the TLS ClientHello in plaintext ({}): the port speaks plain HTTP, not \
             TLS; use http:// for it (or point https:// at the port that serves TLS)",
            described(f, t0),
            reply(x0)
        ),
    );
    for (t, x) in &not_tls {
        b = b.line(format!(
            "{} answered the ClientHello with {}",
            described(f, t),
            reply(x)
        ));
        judged.insert(t.address);
    }
    let step = rerun(
        f,
        |asked| {
            if asked.contains("https://") {
                asked.replacen("https://", "http://", 1)
            } else {
                asked.replace(" --tls", "")
            }
        },
        "the same request in plain HTTP",
    );
    match step {
        Some(s) => b.next(s),
        None => b.next(format!(
            "curl -v http://{}/   # from the source: the port's plaintext answer",
            t0.address
        )),
    }
    .add();
}

// ---- certificates ---------------------------------------------------------------------------

/// The leaf's names, for a reader: `web.example.com, *.example.com`.
fn names(leaf: &CertificateInfo) -> String {
    if leaf.sans.is_empty() {
        format!(
            "no subjectAltName at all (subject {}; clients ignore the CN)",
            leaf.subject
        )
    } else {
        list(&leaf.sans, 6)
    }
}

fn certificates(f: &Facts, targets: &[Target], r: &mut Report, judged: &mut Judged) {
    let with_chain: Vec<(&Target, &TlsEvidence)> = targets
        .iter()
        .filter_map(|t| tls(t).map(|x| (t, x)))
        .filter(|(_, x)| {
            x.outcome.is_any(&[TlsOutcome::Ok, TlsOutcome::Alert]) || !x.chain.is_empty()
        })
        .collect();
    let of = |v: Verification| -> Vec<(&Target, &TlsEvidence)> {
        with_chain
            .iter()
            .copied()
            .filter(|(_, x)| verification(x) == Some(v))
            .collect()
    };
    dates(f, &of(Verification::Expired), true, r, judged);
    dates(f, &of(Verification::NotYetValid), false, r, judged);
    let uncovered: Vec<(&Target, &TlsEvidence)> = with_chain
        .iter()
        .copied()
        .filter(|(_, x)| {
            x.name_covered == Some(false) || verification(x) == Some(Verification::NameMismatch)
        })
        .collect();
    name_not_covered(f, &uncovered, r, judged);
    invalid(f, &of(Verification::Invalid), r, judged);
    self_signed(f, &of(Verification::SelfSigned), r);
    private_ca(&of(Verification::PrivateCa), r);
}

fn dates(
    f: &Facts,
    found: &[(&Target, &TlsEvidence)],
    expired: bool,
    r: &mut Report,
    judged: &mut Judged,
) {
    let Some((t0, x0)) = found.first() else {
        return;
    };
    // Without the time of the run, which certificate is out of its window is read from the
    // chain: the one ending first has expired; the one starting last is not yet valid.
    let cert = if expired {
        x0.chain.iter().min_by_key(|c| c.not_after)
    } else {
        x0.chain.iter().max_by_key(|c| c.not_before)
    };
    let (code, headline) = if expired {
        (RuleCode::TlsCertificateExpired, "certificate expired")
    } else {
        (
            RuleCode::TlsCertificateNotYetValid,
            "certificate not yet valid",
        )
    };
    let window = |c: &CertificateInfo| {
        format!(
            "{} valid {} to {}",
            c.subject,
            super::date(c.not_before),
            super::date(c.not_after)
        )
    };
    let cause = match cert {
        Some(c) if expired => format!(
            "{} presents a certificate that expired on {} ({}): every client that verifies \
             refuses it",
            described(f, t0),
            super::date(c.not_after),
            window(c)
        ),
        Some(c) => format!(
            "{} presents a certificate not valid before {} ({}): issued in the future, or the \
             source's clock is behind",
            described(f, t0),
            super::date(c.not_before),
            window(c)
        ),
        None => format!(
            "{} presents a certificate the probe found {} (no dates reported)",
            described(f, t0),
            if expired { "expired" } else { "not yet valid" }
        ),
    };
    let addresses: Vec<String> = found.iter().map(|(t, _)| described(f, t)).collect();
    let mut b = r
        .finding(code, Layer::Application, Severity::Failure, headline, cause)
        .line(format!(
            "{}: {}",
            list(&addresses, 3),
            cert.map(window).unwrap_or_else(|| headline.to_string())
        ));
    for (t, _) in found {
        judged.insert(t.address);
    }
    b = b.next(s_client(
        t0.address,
        &x0.server_name,
        " 2>/dev/null | openssl x509 -noout -subject -issuer -dates",
    ));
    if expired && !f.is_local() {
        b = b.next("kubectl get certificates -A   # cert-manager: which one failed to renew");
    }
    b.add();
}

fn name_not_covered(
    f: &Facts,
    found: &[(&Target, &TlsEvidence)],
    r: &mut Report,
    judged: &mut Judged,
) {
    let Some((t0, x0)) = found.first() else {
        return;
    };
    let covers = x0
        .chain
        .first()
        .map(names)
        .unwrap_or_else(|| "names the probe did not report".into());
    let addresses: Vec<String> = found.iter().map(|(t, _)| described(f, t)).collect();
    r.finding(
        RuleCode::TlsNameNotCovered,
        Layer::Application,
        Severity::Failure,
        "certificate name mismatch",
        format!(
            "{} presents a certificate for {covers}; the name used was {}, which it does not \
             cover: clients that verify refuse it (use a name it covers, or add {} to its SANs)",
            described(f, t0),
            x0.server_name,
            x0.server_name
        ),
    )
    .line(format!(
        "{}: certificate covers {covers}; name used {}",
        list(&addresses, 3),
        x0.server_name
    ))
    .next(s_client(
        t0.address,
        &x0.server_name,
        " 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName",
    ))
    .add();
    for (t, _) in found {
        judged.insert(t.address);
    }
}

fn invalid(f: &Facts, found: &[(&Target, &TlsEvidence)], r: &mut Report, judged: &mut Judged) {
    let Some((t0, x0)) = found.first() else {
        return;
    };
    let why = x0
        .message
        .clone()
        .or_else(|| x0.alert.clone())
        .unwrap_or_else(|| "no reason given".into());
    let addresses: Vec<String> = found.iter().map(|(t, _)| described(f, t)).collect();
    r.finding(
        RuleCode::TlsCertificateInvalid,
        Layer::Application,
        Severity::Failure,
        "certificate invalid",
        format!(
            "the certificate chain {} presents does not verify: {why}",
            described(f, t0)
        ),
    )
    .line(format!("{}: chain invalid ({why})", list(&addresses, 3)))
    .next(s_client(t0.address, &x0.server_name, " -showcerts"))
    .add();
    for (t, _) in found {
        judged.insert(t.address);
    }
}

/// Self-signed: the connection works, but only for clients told to trust that certificate.
fn self_signed(f: &Facts, found: &[(&Target, &TlsEvidence)], r: &mut Report) {
    let Some((t0, x0)) = found.first() else {
        return;
    };
    let subject = x0
        .chain
        .first()
        .map(|c| c.subject.clone())
        .unwrap_or_else(|| "(no subject reported)".into());
    let addresses: Vec<String> = found.iter().map(|(t, _)| described(f, t)).collect();
    r.finding(
        RuleCode::TlsSelfSigned,
        Layer::Application,
        Severity::Warning,
        "self-signed certificate",
        format!(
            "{} presents a self-signed certificate ({subject}): clients that verify (curl \
             without -k, browsers, most HTTP libraries) refuse it unless they trust it \
             explicitly",
            described(f, t0)
        ),
    )
    .line(format!(
        "{}: self-signed certificate {subject}",
        list(&addresses, 3)
    ))
    .next(s_client(
        t0.address,
        &x0.server_name,
        " 2>/dev/null | openssl x509 -noout -subject -issuer",
    ))
    .add();
}

/// A private CA is not a failure: clients in the cluster usually trust it. Said once per
/// issuer, as context.
fn private_ca(found: &[(&Target, &TlsEvidence)], r: &mut Report) {
    let mut issuers: Vec<(String, String)> = Vec::new();
    for (_, x) in found {
        let issuer = x
            .chain
            .last()
            .map(|c| c.issuer.clone())
            .unwrap_or_else(|| "(issuer not reported)".into());
        if !issuers.iter().any(|(i, _)| *i == issuer) {
            issuers.push((issuer, x.server_name.clone()));
        }
    }
    for (issuer, name) in issuers {
        r.info(
            Layer::Application,
            format!("{name}: issued by a private CA: {issuer} (not a public root; fine for clients that trust it)"),
        );
    }
}

// ---- any other failed handshake -------------------------------------------------------------

/// An alert the probe's own TLS stack raises only because the chain is not a public root's:
/// not a failure when the verification says private CA or self-signed.
fn only_untrusted(x: &TlsEvidence) -> bool {
    x.outcome == TlsOutcome::Alert
        && x.alert
            .as_deref()
            .is_some_and(|a| a == "unknown_ca" || a == "bad_certificate")
        && matches!(
            verification(x),
            Some(Verification::PrivateCa | Verification::SelfSigned)
        )
}

fn failed(f: &Facts, targets: &[Target], r: &mut Report, judged: &mut Judged) {
    let failed: Vec<(&Target, &TlsEvidence)> = targets
        .iter()
        .filter(|t| !judged.contains(&t.address))
        .filter_map(|t| tls(t).map(|x| (t, x)))
        .filter(|(_, x)| x.outcome != TlsOutcome::Ok && !only_untrusted(x))
        .collect();
    let Some((t0, x0)) = failed.first() else {
        return;
    };
    let words = |x: &TlsEvidence| -> String {
        let at = format!("after {}", x.reached);
        match &x.outcome {
            Open::Known(TlsOutcome::Alert) => {
                format!("alert {} {at}", x.alert.as_deref().unwrap_or("(unnamed)"))
            }
            Open::Known(TlsOutcome::Closed) => format!("connection closed {at}"),
            Open::Known(TlsOutcome::Stalled) => {
                format!("stalled {at} ({} bytes received)", x.bytes_received)
            }
            other => format!(
                "{other} {at}{}",
                x.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        }
    };
    let hint = match (&x0.outcome, x0.alert.as_deref()) {
        (Open::Known(TlsOutcome::Alert), Some("handshake_failure" | "protocol_version")) => {
            ": no protocol version or cipher suite in common, or the server wants a client \
             certificate"
        }
        (Open::Known(TlsOutcome::Alert), Some("unrecognized_name")) => {
            ": the server has no certificate for that name (SNI)"
        }
        (Open::Known(TlsOutcome::Closed), _) => {
            ": the server (or a proxy in front of it) drops the handshake, e.g. an SNI it does \
             not route, or no TLS on that port"
        }
        _ => "",
    };
    let mut b = r.finding(
        RuleCode::TlsHandshakeFailed,
        Layer::Application,
        Severity::Failure,
        "TLS handshake failed",
        format!(
            "the TLS handshake with {} for {} failed: {}{hint}",
            described(f, t0),
            x0.server_name,
            words(x0)
        ),
    );
    let lines: Vec<String> = failed
        .iter()
        .map(|(t, x)| format!("{} TLS {}", described(f, t), words(x)))
        .collect();
    b = b.line(list(&lines, 3));
    for (t, _) in &failed {
        judged.insert(t.address);
    }
    b = b.next(s_client(t0.address, &x0.server_name, ""));
    let refs: Vec<&Target> = failed.iter().map(|(t, _)| *t).collect();
    if let Some(step) = logs_step(f, &refs, "the server's side of the handshake") {
        b = b.next(step);
    }
    b.add();
}
