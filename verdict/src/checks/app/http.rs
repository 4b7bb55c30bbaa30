//! HTTP requests: plaintext sent to a TLS port, error statuses (on every target: the
//! application; on some endpoints: they disagree), no answer at all, a slow first byte after a
//! fast connect. Redirects are reported on the target's line, not judged.

use protocol::{HttpEvidence, HttpOutcome, TargetRole};

use super::{described, is_redirect, logs_step, rerun, status_words, Judged, Target};
use crate::facts::Facts;
use crate::model::{Layer, RuleCode, Severity};
use crate::report::Report;
use crate::words::{list, ms};

/// A first byte this late is slow: a person waiting notices it, and the usual client and
/// health-check timeouts (1 to 5 s) start to bite. A healthy API or health endpoint answers
/// in milliseconds.
pub const SLOW_FIRST_BYTE_MS: f64 = 1000.0;
/// A connect at most this slow is fast: it is one round trip, and even a path across a
/// continent stays under it. A first byte ten times later than such a connect is the server
/// working, not packets travelling (the request and its answer are one more round trip).
pub const FAST_CONNECT_MS: f64 = 100.0;

pub fn apply(f: &Facts, targets: &[Target], r: &mut Report, judged: &mut Judged) {
    // Targets whose TLS failed sent no request: the TLS rules said why.
    let http: Vec<(&Target, &HttpEvidence)> = targets
        .iter()
        .filter(|t| !judged.contains(&t.address))
        .filter_map(|t| t.http.map(|h| (t, h)))
        .collect();
    if http.is_empty() {
        return;
    }
    let (not_http, http): (Vec<_>, Vec<_>) = http
        .into_iter()
        .partition(|(_, h)| h.outcome == HttpOutcome::NotHttp || plain_http_page(h).is_some());
    tls_port(f, &not_http, r, judged);
    statuses(f, &http, r, judged);
    slow_first_byte(f, &http, r, judged);
}

/// A success (2xx) or a redirect (3xx, reported): the application answered.
fn good(h: &HttpEvidence) -> bool {
    h.outcome == HttpOutcome::Response && h.status.is_some_and(|s| s < 400)
}

fn error_status(h: &HttpEvidence) -> bool {
    h.outcome == HttpOutcome::Response && h.status.is_some_and(|s| s >= 400)
}

/// `answers 503 Service Unavailable`, `sends no status line in 3.0 s`.
fn answer_words(h: &HttpEvidence) -> String {
    match h.outcome.known() {
        Some(HttpOutcome::Response) => format!("answers {}", status_words(h)),
        Some(HttpOutcome::Timeout) => format!("sends no status line in {}", ms(h.total_ms)),
        Some(HttpOutcome::Closed) => {
            format!("closes without a status line after {}", ms(h.total_ms))
        }
        _ => format!(
            "fails: {}{}",
            h.outcome,
            h.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ),
    }
}

// ---- plaintext HTTP sent to a TLS port ------------------------------------------------------

/// What TLS servers that answer plain HTTP with a page of their own put in it (nginx, Go's
/// net/http, Apache), lower-cased.
const PLAIN_HTTP_ON_TLS_PAGES: &[&str] = &[
    "plain http request was sent to https port",
    "http request to an https server",
    "speaking plain http to an ssl-enabled server",
];

/// The words of a 400 page that says the request was plain HTTP sent to a TLS port.
fn plain_http_page(h: &HttpEvidence) -> Option<&str> {
    let body = h.body_start.as_deref()?;
    let lower = body.to_ascii_lowercase();
    (h.status == Some(400) && PLAIN_HTTP_ON_TLS_PAGES.iter().any(|p| lower.contains(p)))
        .then_some(body)
}

/// How the TLS port answered the plain request: an alert record, or its 400 page.
fn tls_port_reply(h: &HttpEvidence) -> String {
    match plain_http_page(h) {
        Some(page) => format!("with its 400 page for plain HTTP on a TLS port (\"{page}\")"),
        None => "with a TLS alert record".into(),
    }
}

fn tls_port(f: &Facts, found: &[(&Target, &HttpEvidence)], r: &mut Report, judged: &mut Judged) {
    let Some((t0, h0)) = found.first() else {
        return;
    };
    let mut b = r.finding(
        RuleCode::HttpToTlsPort,
        Layer::Application,
        Severity::Failure,
        "HTTP to a TLS port",
        format!(
            "{} answered a plain HTTP request to {}{} {}: the port speaks TLS; use https:// for \
             it",
            described(f, t0),
            h0.host,
            h0.path,
            tls_port_reply(h0)
        ),
    );
    for (t, h) in found {
        b = b.line(match plain_http_page(h) {
            Some(page) => format!(
                "{} GET {} answered 400: \"{page}\"",
                described(f, t),
                h.path
            ),
            None => format!(
                "{} GET {} answered with TLS, not HTTP{}",
                described(f, t),
                h.path,
                h.message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ),
        });
        judged.insert(t.address);
    }
    let step = rerun(
        f,
        |asked| {
            if asked.contains("http://") {
                asked.replacen("http://", "https://", 1)
            } else {
                format!("{asked} --tls")
            }
        },
        "the same request over TLS",
    );
    match step {
        Some(s) => b.next(s),
        None => b.next(format!(
            "curl -v https://{}{}   # from the source",
            h0.host, h0.path
        )),
    }
    .add();
}

// ---- statuses ------------------------------------------------------------------------------

fn statuses(f: &Facts, http: &[(&Target, &HttpEvidence)], r: &mut Report, judged: &mut Judged) {
    let bad: Vec<(&Target, &HttpEvidence)> =
        http.iter().copied().filter(|(_, h)| !good(h)).collect();
    if bad.is_empty() {
        return;
    }
    let ok: Vec<(&Target, &HttpEvidence)> = http.iter().copied().filter(|(_, h)| good(h)).collect();
    if ok.is_empty() {
        let (with_status, silent): (Vec<_>, Vec<_>) =
            bad.into_iter().partition(|(_, h)| error_status(h));
        every_error(f, &with_status, r, judged);
        no_response(f, &silent, r, judged);
    } else {
        disagree(f, http, &ok, &bad, r, judged);
    }
}

/// `every endpoint`, `every target`, `the endpoint` (what a set of targets is, for a reader).
fn every(f: &Facts, found: &[(&Target, &HttpEvidence)]) -> &'static str {
    let has = |role: TargetRole| found.iter().any(|(t, _)| t.role == role);
    match (
        found.len(),
        has(TargetRole::Endpoint),
        has(TargetRole::ClusterIp),
    ) {
        (1, _, _) => "the target",
        (_, true, true) if f.service().is_some() => "every endpoint and the ClusterIP",
        (_, true, _) => "every endpoint",
        _ => "every target",
    }
}

fn every_error(f: &Facts, found: &[(&Target, &HttpEvidence)], r: &mut Report, judged: &mut Judged) {
    let Some((_, h0)) = found.first() else {
        return;
    };
    let mut codes: Vec<u16> = found.iter().filter_map(|(_, h)| h.status).collect();
    codes.sort_unstable();
    codes.dedup();
    let server_error = codes.iter().any(|c| *c >= 500);
    let all_404 = codes == [404];
    let answered = if codes.len() == 1 {
        status_words(h0)
    } else {
        codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let server = h0
        .server
        .as_deref()
        .map(|s| format!(" (Server: {s})"))
        .unwrap_or_default();
    let who = every(f, found);
    let tls_ok = if found.iter().any(|(t, _)| t.tls.is_some()) {
        "connect and TLS handshake worked"
    } else {
        "the connect worked"
    };
    let why = if all_404 {
        format!(
            "the server is up and answering, but has nothing at {}: the path is likely wrong \
             (a route the app does not serve, or a prefix an ingress strips)",
            h0.path
        )
    } else if server_error {
        "the application fails, not the network: a 5xx is the server's own error (a failing \
         handler, a dependency down, not ready, or a proxy in the pod that cannot reach its \
         upstream)"
            .to_string()
    } else {
        format!(
            "the application refuses the request, not the network: a 4xx is about the request \
             (authentication, the Host header {}, the method or the path)",
            h0.host
        )
    };
    let headline = if codes.len() == 1 {
        format!("HTTP {}", codes[0])
    } else if server_error {
        "HTTP 5xx".to_string()
    } else {
        "HTTP 4xx".to_string()
    };
    let mut b = r.finding(
        RuleCode::HttpErrorStatus,
        Layer::Application,
        Severity::Failure,
        headline,
        format!(
            "{who} answers {answered}{server} to GET {}{} ({tls_ok}): {why}",
            h0.host, h0.path
        ),
    );
    let lines: Vec<String> = found
        .iter()
        .map(|(t, h)| format!("{} {}", described(f, t), answer_words(h)))
        .collect();
    b = b.line(format!("GET {}: {}", h0.path, list(&lines, 4)));
    for (t, _) in found {
        judged.insert(t.address);
    }
    let targets: Vec<&Target> = found.iter().map(|(t, _)| *t).collect();
    if let Some(step) = logs_step(f, &targets, "what the application says about the request") {
        b = b.next(step);
    }
    let scheme = &h0.scheme;
    b.next(format!(
        "curl -v {scheme}://{}{}   # from the source: the whole answer",
        h0.host, h0.path
    ))
    .add();
}

fn no_response(f: &Facts, found: &[(&Target, &HttpEvidence)], r: &mut Report, judged: &mut Judged) {
    let Some((t0, h0)) = found.first() else {
        return;
    };
    let lines: Vec<String> = found
        .iter()
        .map(|(t, h)| format!("{} {}", described(f, t), answer_words(h)))
        .collect();
    let mut b = r
        .finding(
            RuleCode::HttpNoResponse,
            Layer::Application,
            Severity::Failure,
            "no HTTP answer",
            format!(
                "{} accepts the connection but {} to GET {}: the application does not \
                 answer (hung, overloaded, or not speaking HTTP on that port)",
                if found.len() == 1 {
                    described(f, t0)
                } else {
                    every(f, found).to_string()
                },
                answer_words(h0),
                h0.path
            ),
        )
        .line(format!("GET {}: {}", h0.path, list(&lines, 4)));
    for (t, _) in found {
        judged.insert(t.address);
    }
    let targets: Vec<&Target> = found.iter().map(|(t, _)| *t).collect();
    if let Some(step) = logs_step(f, &targets, "is the application stuck?") {
        b = b.next(step);
    }
    b.next(format!(
        "curl -v --max-time 10 {}://{}{}   # from the source",
        h0.scheme, h0.host, h0.path
    ))
    .add();
}

/// Some targets answer well, others an error or nothing: through the Service, a share of the
/// requests fail. Counted over the endpoints when the targets include some.
fn disagree(
    f: &Facts,
    all: &[(&Target, &HttpEvidence)],
    ok: &[(&Target, &HttpEvidence)],
    bad: &[(&Target, &HttpEvidence)],
    r: &mut Report,
    judged: &mut Judged,
) {
    let is_endpoint = |t: &Target| t.role == TargetRole::Endpoint;
    let endpoints = all.iter().filter(|(t, _)| is_endpoint(t)).count();
    let (noun, total, good_n) = if endpoints > 0 {
        (
            "endpoints",
            endpoints,
            ok.iter().filter(|(t, _)| is_endpoint(t)).count(),
        )
    } else {
        ("targets", all.len(), ok.len())
    };
    let mut good_codes: Vec<String> = ok.iter().map(|(_, h)| status_words(h)).collect();
    good_codes.sort();
    good_codes.dedup();
    let bad_words: Vec<String> = bad
        .iter()
        .map(|(t, h)| format!("{} {}", described(f, t), answer_words(h)))
        .collect();
    let summary = format!(
        "{good_n} of {total} {noun} answer {}, {}",
        good_codes.join(" or "),
        list(&bad_words, 3)
    );
    let h0 = bad[0].1;
    let mut b = r
        .finding(
            RuleCode::HttpEndpointsDisagree,
            Layer::Application,
            Severity::Warning,
            format!("{noun} disagree"),
            format!(
                "{summary} to GET {}: the same request gets different answers, so some requests \
                 through the Service fail; the network carries them all (every connect worked)",
                h0.path
            ),
        )
        .line(format!("GET {}: {summary}", h0.path));
    for (t, _) in bad {
        judged.insert(t.address);
    }
    let targets: Vec<&Target> = bad.iter().map(|(t, _)| *t).collect();
    if let Some(step) = logs_step(f, &targets, "why this one answers differently") {
        b = b.next(step);
    }
    b.next(straight_to(bad[0].0, h0)).add();
}

/// `curl -v --resolve NAME:PORT:IP https://NAME:PORT/PATH`: the same request (name, SNI and
/// Host as the probe sent them) to that one target; `-k` when its chain is not a public
/// root's (the request is the point, not the certificate).
fn straight_to(t: &Target, h: &HttpEvidence) -> String {
    let name = match h.host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.contains(':') => {
            name
        }
        _ => h.host.as_str(),
    };
    let port = t.address.port();
    let ip = match t.address.ip() {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let insecure = t
        .tls
        .is_some_and(|x| super::verification(x) != Some(protocol::Verification::Trusted));
    format!(
        "curl -v{} --resolve {name}:{port}:{ip} {}://{name}:{port}{}   # from the source, \
         straight to that endpoint",
        if insecure { "k" } else { "" },
        h.scheme,
        h.path
    )
}

// ---- slow first byte -----------------------------------------------------------------------

fn slow_first_byte(
    f: &Facts,
    http: &[(&Target, &HttpEvidence)],
    r: &mut Report,
    judged: &mut Judged,
) {
    let slow: Vec<(&Target, &HttpEvidence, f64, f64)> = http
        .iter()
        .filter(|(_, h)| h.outcome == HttpOutcome::Response)
        .filter_map(|(t, h)| Some((*t, *h, h.first_byte_ms?, t.connect_ms?)))
        .filter(|(_, _, fb, connect)| *fb >= SLOW_FIRST_BYTE_MS && *connect <= FAST_CONNECT_MS)
        .collect();
    let Some((t0, h0, fb0, c0)) = slow.first().copied() else {
        return;
    };
    let handshake = t0
        .tls
        .and_then(|x| x.timing.finished_ms)
        .map(|hs| format!(" and a {} TLS handshake", ms(hs)))
        .unwrap_or_default();
    let lines: Vec<String> = slow
        .iter()
        .map(|(t, h, fb, c)| {
            format!(
                "{} {}, first byte {} after a {} connect",
                described(f, t),
                status_words(h),
                ms(*fb),
                ms(*c)
            )
        })
        .collect();
    let mut b = r
        .finding(
            RuleCode::HttpSlowFirstByte,
            Layer::Application,
            Severity::Warning,
            "slow first byte",
            format!(
                "{} took {} to send the first byte of its answer to GET {} after a {} \
                 connect{handshake}: the network carried the connect quickly, so the wait is \
                 the application's (a slow handler, a cold cache, a slow dependency)",
                described(f, t0),
                ms(fb0),
                h0.path,
                ms(c0)
            ),
        )
        .line(list(&lines, 3));
    for (t, h, _, _) in &slow {
        // A slow error was said by the status rules; a slow success gets this line instead.
        if good(h) || is_redirect(h) {
            judged.insert(t.address);
        }
    }
    let targets: Vec<&Target> = slow.iter().map(|(t, _, _, _)| *t).collect();
    if let Some(step) = logs_step(f, &targets, "what the handler waits for") {
        b = b.next(step);
    }
    b.next(format!(
        "curl -o /dev/null -s -w 'connect %{{time_connect}} first byte %{{time_starttransfer}}\\n' \
         {}://{}{}   # from the source, a few times",
        h0.scheme, h0.host, h0.path
    ))
    .add();
}
