//! The application layer (`tls`, `http` evidence, protocol minor 5): one test per rule, on
//! evidence built in code, each with the near miss that must not fire it; and the text and
//! markdown of a mixed case. (Recorded fixtures of real TLS and HTTP servers come with the
//! probe's namespace tests.)

mod common;

use common::app::*;
use common::build::{self, tcp_as};
use common::*;
use netdebug_verdict::kube::KubeEvidence;
use netdebug_verdict::{
    evaluate, Inputs, Layer, Mark, MarkdownRenderer, Origin, Renderer, RuleCode, Status,
    TextRenderer, Title, Verdict,
};
use protocol::{
    Event, HttpOutcome, MtuEvidence, TargetRole, TcpOutcome, TlsOutcome, TlsStage, Verification,
};

const CLUSTER_IP: &str = "10.199.96.10:443";
const EPS: [&str; 3] = ["10.199.70.2:8443", "10.199.70.3:8443", "10.199.70.4:8443"];
const NAME: &str = "web.shop.svc.cluster.local";

/// svc/web in shop: 10.199.96.10:443 -> 8443 on web-0, web-1 (node-a) and web-2 (node-b).
fn web() -> KubeEvidence {
    let mut eps = vec![
        endpoint("10.199.70.2", 8443, true, "web-0"),
        endpoint("10.199.70.3", 8443, true, "web-1"),
        endpoint("10.199.70.4", 8443, true, "web-2"),
    ];
    for (e, node) in eps.iter_mut().zip(["node-a", "node-a", "node-b"]) {
        e.node = Some(node.into());
    }
    let svc = service("web", "shop", "10.199.96.10", 443, "https", eps);
    kube_service(source("client", "shop", "10.199.70.1"), svc, vec![])
}

fn svc_title() -> Title {
    Title {
        origin: Some(Origin::Pod {
            namespace: "shop".into(),
            name: "client".into(),
        }),
        asked: Some("--to https://svc/web/healthz".into()),
        ..k8s_title("pod/client", "https://svc/web/healthz", "shop")
    }
}

/// A run of a probe of protocol minor 5 toward svc/web.
fn run(events: Vec<Event>) -> Inputs {
    let mut i = build::inputs_from_minor(5, events, web());
    i.title = svc_title();
    i
}

/// Every target of svc/web connected in under a millisecond.
fn connects() -> Vec<Event> {
    let mut e = vec![tcp_as(
        CLUSTER_IP,
        TargetRole::ClusterIp,
        TcpOutcome::Ok,
        0.6,
    )];
    for a in EPS {
        e.push(tcp_as(a, TargetRole::Endpoint, TcpOutcome::Ok, 0.5));
    }
    e
}

fn role(addr: &str) -> TargetRole {
    if addr == CLUSTER_IP {
        TargetRole::ClusterIp
    } else {
        TargetRole::Endpoint
    }
}

/// Connects, handshakes and requests to every target; `status(addr)` for each answer.
fn https(status: impl Fn(&str) -> u16) -> Vec<Event> {
    let mut e = connects();
    for a in std::iter::once(CLUSTER_IP).chain(EPS) {
        e.push(tls_event(tls_ok(a, role(a), NAME)));
        e.push(http_event(http(a, role(a), status(a), 3.0)));
    }
    e
}

fn fired(v: &Verdict) -> String {
    format!(
        "status {:?} layer {:?} rules {:?}\ncause: {:?}\nnext: {:?}\nevidence: {:#?}",
        v.status, v.layer, v.rules_fired, v.cause, v.next, v.evidence
    )
}

#[track_caller]
fn assert_fired(v: &Verdict, status: Status, layer: Option<Layer>, rules: &[RuleCode]) {
    assert_eq!(v.status, status, "{}", fired(v));
    assert_eq!(v.layer, layer, "{}", fired(v));
    assert_eq!(v.rules_fired, rules, "{}", fired(v));
}

#[track_caller]
fn assert_cause(v: &Verdict, part: &str) {
    let cause = v.cause.as_deref().unwrap_or("");
    assert!(
        cause.contains(part),
        "{part:?} not in the cause\n{}",
        fired(v)
    );
}

#[track_caller]
fn assert_next(v: &Verdict, part: &str) {
    assert!(
        v.next.iter().any(|n| n.contains(part)),
        "{part:?} not in next\n{}",
        fired(v)
    );
}

fn app_lines(v: &Verdict) -> Vec<(Mark, &str)> {
    v.evidence
        .iter()
        .filter(|l| l.layer == Layer::Application)
        .map(|l| (l.mark, l.text.as_str()))
        .collect()
}

// ---- healthy ------------------------------------------------------------------------------

#[test]
fn every_target_answering_200_is_healthy_with_one_app_line_each() {
    let v = evaluate(&run(https(|_| 200)));
    assert_fired(&v, Status::Healthy, None, &[]);
    assert_eq!(v.headline, "HTTP 200 (4/4 targets)");
    let lines = app_lines(&v);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[0],
        (
            Mark::Ok,
            "10.199.96.10:443 200 OK, TLSv1.3, first byte 3.0 ms"
        )
    );
    assert!(
        v.unchecked.iter().all(|u| u.check != "app"),
        "{:?}",
        v.unchecked
    );
}

#[test]
fn a_run_without_the_app_check_says_it_was_not_part_of_it() {
    let v = evaluate(&run(connects()));
    let app = v
        .unchecked
        .iter()
        .find(|u| u.check == "app")
        .expect("app unchecked");
    assert!(app.reason.contains("--http"), "{}", app.reason);
}

// ---- endpoints disagree / every endpoint errors ----------------------------------------------

#[test]
fn one_endpoint_answering_503_among_200s_is_degraded_and_names_its_pod() {
    let v = evaluate(&run(https(|a| if a == EPS[2] { 503 } else { 200 })));
    assert_fired(
        &v,
        Status::Degraded,
        Some(Layer::Application),
        &[RuleCode::HttpEndpointsDisagree],
    );
    assert_cause(
        &v,
        "2 of 3 endpoints answer 200 OK, 10.199.70.4:8443 (pod/web-2 on node-b) answers 503 \
         Service Unavailable",
    );
    assert_next(&v, "kubectl logs -n shop pod/web-2");
    // The endpoints that answered keep their ok lines; the one that failed has its warning.
    let lines = app_lines(&v);
    assert_eq!(
        lines.iter().filter(|l| l.0 == Mark::Ok).count(),
        3,
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.0 == Mark::Warn).count(),
        1,
        "{lines:?}"
    );
}

#[test]
fn every_endpoint_answering_503_is_the_application_not_the_network() {
    let v = evaluate(&run(https(|_| 503)));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::HttpErrorStatus],
    );
    assert_eq!(v.headline, "HTTP 503");
    assert_cause(
        &v,
        "every endpoint and the ClusterIP answers 503 Service Unavailable",
    );
    assert_cause(&v, "the application fails, not the network");
    assert_next(&v, "kubectl logs -n shop pod/web-0");
}

#[test]
fn a_404_everywhere_points_at_the_path_and_a_403_at_the_request() {
    let v = evaluate(&run(https(|_| 404)));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::HttpErrorStatus],
    );
    assert_cause(&v, "nothing at /healthz: the path is likely wrong");

    let v = evaluate(&run(https(|_| 403)));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::HttpErrorStatus],
    );
    assert_cause(&v, "answers 403 Forbidden");
    assert_cause(&v, "the application refuses the request, not the network");
}

#[test]
fn no_status_line_from_any_target_is_no_http_answer() {
    let mut e = connects();
    for a in std::iter::once(CLUSTER_IP).chain(EPS) {
        e.push(http_event(http_failed(
            a,
            role(a),
            HttpOutcome::Timeout,
            3000.0,
        )));
    }
    let v = evaluate(&run(e));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::HttpNoResponse],
    );
    assert_cause(
        &v,
        "accepts the connection but sends no status line in 3.0 s",
    );
}

// ---- the layers below ---------------------------------------------------------------------

#[test]
fn a_refused_connect_is_the_tcp_rules_and_its_app_evidence_adds_nothing() {
    let addr = EPS[0];
    let mut tls = tls_stalled(addr, NAME, TlsStage::ClientHelloSent, 0);
    tls.outcome = TlsOutcome::NoConnection.into();
    let e = vec![
        tcp_as(addr, TargetRole::Endpoint, TcpOutcome::Refused, 0.3),
        tls_event(tls),
        http_event(http_failed(
            addr,
            TargetRole::Endpoint,
            HttpOutcome::NoConnection,
            0.0,
        )),
    ];
    let v = evaluate(&run(e));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Transport),
        &[RuleCode::TcpRefusedNoListener],
    );
    assert!(app_lines(&v).is_empty(), "{:?}", app_lines(&v));
}

// ---- a stalled handshake ------------------------------------------------------------------

/// One direct target, connected in 0.4 ms, whose handshake stalled mid-certificate.
fn stalled(extra: Vec<Event>) -> Inputs {
    let addr = "10.199.0.2:8443";
    let mut e = vec![
        build::tcp(addr, TcpOutcome::Ok, 0.4),
        tls_event(tls_stalled(
            addr,
            "api.example.com",
            TlsStage::ServerHello,
            1180,
        )),
    ];
    e.extend(extra);
    let mut i = build::inputs_from_minor(5, e, KubeEvidence::default());
    i.title.asked = Some("--to https://10.199.0.2:8443/".into());
    i.title.origin = Some(Origin::LocalNetns {
        name: "client".into(),
    });
    i
}

fn mtu_to(dst: &str, largest_ok: u32, smallest_lost: Option<u32>) -> Event {
    let Event::Evidence(protocol::Evidence::Mtu(m)) =
        build::mtu(dst, largest_ok, smallest_lost, false)
    else {
        unreachable!("mtu() builds mtu evidence")
    };
    Event::Evidence(protocol::Evidence::Mtu(MtuEvidence { ..m }))
}

#[test]
fn a_stall_mid_certificate_with_an_mtu_blackhole_is_the_tls_mtu_trap() {
    let v = evaluate(&stalled(vec![mtu_to("10.199.0.2", 1400, Some(1500))]));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Path),
        &[RuleCode::TlsStallMtu, RuleCode::MtuBlackhole],
    );
    assert_eq!(v.findings[0].rule, RuleCode::TlsStallMtu, "{}", fired(&v));
    assert_cause(
        &v,
        "stalls mid-certificate (1180 bytes of the server's flight arrived",
    );
    assert_cause(&v, "larger than the 1400 bytes the path passes");
    assert_cause(&v, "the TLS-MTU trap");
    assert_next(&v, "lower the MTU to 1400");
}

#[test]
fn a_stall_without_mtu_evidence_names_the_mtu_as_likely_and_asks_for_mtu() {
    let v = evaluate(&stalled(vec![]));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::TlsHandshakeStalled],
    );
    assert_cause(&v, "most likely a path MTU blackhole (the TLS-MTU trap)");
    assert_cause(&v, "`--mtu` would confirm it");
    assert_next(
        &v,
        "kubectl-netdebug local --netns client --to https://10.199.0.2:8443/ --mtu",
    );
    assert_next(
        &v,
        "openssl s_client -connect 10.199.0.2:8443 -servername api.example.com",
    );
}

#[test]
fn a_stall_the_mtu_check_does_not_explain_stays_at_the_application() {
    let v = evaluate(&stalled(vec![mtu_to("10.199.0.2", 1500, None)]));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::TlsHandshakeStalled],
    );
    assert_cause(&v, "not the MTU: the MTU check passes 1500-byte packets");
}

#[test]
fn a_stall_without_a_successful_connect_is_not_judged_against_the_path() {
    let addr = "10.199.0.2:8443";
    let e = vec![
        build::tcp(addr, TcpOutcome::Timeout, 3000.0),
        tls_event(tls_stalled(
            addr,
            "api.example.com",
            TlsStage::ClientHelloSent,
            0,
        )),
        mtu_to("10.199.0.2", 1400, Some(1500)),
    ];
    let v = evaluate(&build::inputs_from_minor(5, e, KubeEvidence::default()));
    assert!(!v.fired(RuleCode::TlsStallMtu), "{}", fired(&v));
    assert!(!v.fired(RuleCode::TlsHandshakeStalled), "{}", fired(&v));
    assert!(v.fired(RuleCode::TcpTimeout), "{}", fired(&v));
}

#[test]
fn a_sibling_that_completed_gives_the_flight_its_weight() {
    let e = vec![
        build::tcp("10.199.0.3:8443", TcpOutcome::Ok, 0.4),
        tls_event(tls_ok(
            "10.199.0.3:8443",
            TargetRole::Direct,
            "api.example.com",
        )),
        mtu_to("10.199.0.2", 1400, Some(1500)),
    ];
    let v = evaluate(&stalled(e));
    assert_cause(
        &v,
        "(2700 bytes in 2 certificates, as 10.199.0.3:8443 sent it)",
    );
}

// ---- certificates -------------------------------------------------------------------------

/// One endpoint's handshake with `change` applied, and a 200 behind it.
fn with_tls(change: impl Fn(&mut protocol::TlsEvidence)) -> Verdict {
    let a = EPS[0];
    let mut t = tls_ok(a, TargetRole::Endpoint, NAME);
    change(&mut t);
    let e = vec![
        tcp_as(a, TargetRole::Endpoint, TcpOutcome::Ok, 0.5),
        tls_event(t),
        http_event(http(a, TargetRole::Endpoint, 200, 3.0)),
    ];
    evaluate(&run(e))
}

#[test]
fn an_expired_certificate_says_when_it_expired() {
    let v = with_tls(|t| {
        t.verification = Some(Verification::Expired.into());
        t.chain[0].not_after = 1_704_067_200; // 2024-01-01
        t.chain[0].not_before = 1_672_531_200;
    });
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::TlsCertificateExpired],
    );
    assert_cause(&v, "10.199.70.2:8443 (pod/web-0 on node-a) presents a certificate that expired on 2024-01-01 00:00 UTC");
    assert_next(&v, "openssl x509 -noout -subject -issuer -dates");
}

#[test]
fn a_certificate_not_yet_valid_says_from_when() {
    let v = with_tls(|t| t.verification = Some(Verification::NotYetValid.into()));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::TlsCertificateNotYetValid],
    );
    assert_cause(&v, "not valid before 2025-01-01 00:00 UTC");
    assert_cause(&v, "the source's clock is behind");
}

#[test]
fn a_name_not_covered_says_which_names_are_and_which_was_used() {
    let v = with_tls(|t| {
        t.chain[0].sans = vec!["web.example.com".into(), "*.example.com".into()];
        t.name_covered = Some(false);
        t.verification = Some(Verification::NameMismatch.into());
    });
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::TlsNameNotCovered],
    );
    assert_cause(
        &v,
        "a certificate for web.example.com, *.example.com; the name used was \
         web.shop.svc.cluster.local",
    );
    assert_next(&v, "-ext subjectAltName");
}

#[test]
fn a_private_ca_alone_is_context_not_a_failure() {
    let v = with_tls(|t| {
        t.chain[1].issuer = "CN=shop-internal-ca".into();
        t.verification = Some(Verification::PrivateCa.into());
    });
    assert_fired(&v, Status::Healthy, None, &[]);
    assert!(
        app_lines(&v).contains(&(
            Mark::Info,
            "web.shop.svc.cluster.local: issued by a private CA: CN=shop-internal-ca (not a \
             public root; fine for clients that trust it)"
        )),
        "{:?}",
        app_lines(&v)
    );
}

#[test]
fn a_self_signed_certificate_is_a_warning() {
    let v = with_tls(|t| {
        t.chain.truncate(1);
        t.chain[0].issuer = t.chain[0].subject.clone();
        t.verification = Some(Verification::SelfSigned.into());
    });
    assert_fired(
        &v,
        Status::Degraded,
        Some(Layer::Application),
        &[RuleCode::TlsSelfSigned],
    );
    assert_cause(
        &v,
        "self-signed certificate (CN=web.shop.svc.cluster.local)",
    );
}

// ---- scheme mismatches ----------------------------------------------------------------------

#[test]
fn plain_http_to_a_tls_port_says_use_https() {
    let a = EPS[0];
    let mut h = http_failed(a, TargetRole::Endpoint, HttpOutcome::NotHttp, 1.0);
    h.scheme = "http".into();
    let mut i = run(vec![
        tcp_as(a, TargetRole::Endpoint, TcpOutcome::Ok, 0.5),
        http_event(h),
    ]);
    i.title.asked = Some("--to http://svc/web/healthz".into());
    let v = evaluate(&i);
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::HttpToTlsPort],
    );
    assert_cause(
        &v,
        "with a TLS alert record: the port speaks TLS; use https://",
    );
    assert_next(
        &v,
        "kubectl netdebug pod/client --to https://svc/web/healthz -n shop",
    );
}

/// nginx (and Go, Apache) answer plain HTTP on a TLS port with a 400 page of their own, not
/// an alert: the page says it, and so does the verdict, instead of "every endpoint answers 400".
#[test]
fn plain_http_to_a_tls_port_answered_with_nginx_400_page_says_use_https() {
    let a = EPS[0];
    let mut h = http(a, TargetRole::Endpoint, 400, 1.0);
    h.scheme = "http".into();
    h.reason = Some("Bad Request".into());
    h.body_start = Some(
        "<html> <head><title>400 The plain HTTP request was sent to HTTPS port</title></head>"
            .into(),
    );
    let v = evaluate(&run(vec![
        tcp_as(a, TargetRole::Endpoint, TcpOutcome::Ok, 0.5),
        http_event(h.clone()),
    ]));
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::HttpToTlsPort],
    );
    assert_cause(&v, "with its 400 page for plain HTTP on a TLS port");
    assert_cause(&v, "The plain HTTP request was sent to HTTPS port");
    // Near miss: a 400 page that says something else is an error status, not a scheme.
    h.body_start = Some("<html><body>missing parameter id</body></html>".into());
    let v = evaluate(&run(vec![
        tcp_as(a, TargetRole::Endpoint, TcpOutcome::Ok, 0.5),
        http_event(h),
    ]));
    assert!(!v.fired(RuleCode::HttpToTlsPort), "{}", fired(&v));
    assert!(v.fired(RuleCode::HttpErrorStatus), "{}", fired(&v));
}

#[test]
fn tls_to_a_plaintext_port_quotes_the_servers_400_and_says_use_http() {
    let v = with_tls(|t| {
        *t = protocol::TlsEvidence {
            outcome: TlsOutcome::NotTls.into(),
            reached: TlsStage::ClientHelloSent.into(),
            plaintext_reply: Some(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nClient sent an HTTP \
                 request to an HTTPS server."
                    .into(),
            ),
            ..tls_stalled(EPS[0], NAME, TlsStage::ClientHelloSent, 120)
        };
    });
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::TlsToPlaintextPort],
    );
    assert_cause(
        &v,
        "answered the TLS ClientHello in plaintext (`HTTP/1.1 400 Bad Request`)",
    );
    assert_cause(&v, "use http://");
    assert_next(
        &v,
        "kubectl netdebug pod/client --to http://svc/web/healthz -n shop",
    );
}

#[test]
fn another_failed_handshake_names_the_alert() {
    let v = with_tls(|t| {
        t.outcome = TlsOutcome::Alert.into();
        t.reached = TlsStage::ClientHelloSent.into();
        t.alert = Some("handshake_failure".into());
        t.chain.clear();
        t.verification = None;
    });
    assert_fired(
        &v,
        Status::Failed,
        Some(Layer::Application),
        &[RuleCode::TlsHandshakeFailed],
    );
    assert_cause(
        &v,
        "failed: alert handshake_failure after client_hello_sent: no protocol version",
    );
}

// ---- timing and redirects -----------------------------------------------------------------

fn one_answer(connect_ms: f64, change: impl Fn(&mut protocol::HttpEvidence)) -> Verdict {
    let a = EPS[1];
    let mut h = http(a, TargetRole::Endpoint, 200, 3.0);
    change(&mut h);
    evaluate(&run(vec![
        tcp_as(a, TargetRole::Endpoint, TcpOutcome::Ok, connect_ms),
        tls_event(tls_ok(a, TargetRole::Endpoint, NAME)),
        http_event(h),
    ]))
}

#[test]
fn a_slow_first_byte_after_a_fast_connect_is_the_application() {
    let v = one_answer(0.5, |h| h.first_byte_ms = Some(2400.0));
    assert_fired(
        &v,
        Status::Degraded,
        Some(Layer::Application),
        &[RuleCode::HttpSlowFirstByte],
    );
    assert_cause(
        &v,
        "10.199.70.3:8443 (pod/web-1 on node-a) took 2.4 s to send the first byte of its answer \
         to GET /healthz after a 0.5 ms connect and a 2.4 ms TLS handshake",
    );
    assert_next(&v, "kubectl logs -n shop pod/web-1");
}

#[test]
fn a_first_byte_under_the_threshold_or_after_a_slow_connect_is_not_slow() {
    let v = one_answer(0.5, |h| h.first_byte_ms = Some(900.0));
    assert_fired(&v, Status::Healthy, None, &[]);
    let v = one_answer(250.0, |h| h.first_byte_ms = Some(2400.0));
    assert_fired(&v, Status::Healthy, None, &[]);
}

#[test]
fn a_redirect_alone_is_reported_not_failed() {
    let v = one_answer(0.5, |h| {
        h.status = Some(301);
        h.reason = Some("Moved Permanently".into());
        h.location = Some("https://web.example.com/healthz".into());
    });
    assert_fired(&v, Status::Healthy, None, &[]);
    assert_eq!(
        app_lines(&v),
        [(
            Mark::Info,
            "10.199.70.3:8443 301 Moved Permanently -> https://web.example.com/healthz (not \
             followed), TLSv1.3, first byte 3.0 ms"
        )]
    );
}

/// A response larger than the cap: judged on what was read, and the line says it was cut.
#[test]
fn a_truncated_response_says_so() {
    let v = one_answer(0.5, |h| {
        h.bytes_read = 65536;
        h.truncated = true;
    });
    assert_fired(&v, Status::Healthy, None, &[]);
    assert_eq!(
        app_lines(&v),
        [(
            Mark::Ok,
            "10.199.70.3:8443 200 OK, TLSv1.3, first byte 3.0 ms, response truncated: the first \
             65536 bytes read (the cap)"
        )]
    );
}

// ---- rendering ----------------------------------------------------------------------------

/// svc/web over https: the ClusterIP and two endpoints answer 200 (one of them slowly), web-2
/// answers 503; the chain is a private CA's.
fn mixed() -> Inputs {
    let mut e = connects();
    for a in std::iter::once(CLUSTER_IP).chain(EPS) {
        let mut t = tls_ok(a, role(a), NAME);
        t.chain[1].issuer = "CN=shop-internal-ca".into();
        t.verification = Some(Verification::PrivateCa.into());
        e.push(tls_event(t));
        let (status, first_byte) = match a {
            _ if a == EPS[2] => (503, 1.8),
            _ if a == EPS[1] => (200, 1350.0),
            _ => (200, 3.1),
        };
        let mut h = http(a, role(a), status, first_byte);
        h.server = Some("envoy".into());
        e.push(http_event(h));
    }
    run(e)
}

fn render(r: &mut dyn Renderer, inputs: &Inputs) -> String {
    r.finish(inputs, &evaluate(inputs))
}

#[test]
fn mixed_case_text_and_markdown() {
    let i = mixed();
    let v = evaluate(&i);
    assert_fired(
        &v,
        Status::Degraded,
        Some(Layer::Application),
        &[RuleCode::HttpEndpointsDisagree, RuleCode::HttpSlowFirstByte],
    );
    let text = render(&mut TextRenderer::new(false), &i);
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    insta::assert_snapshot!("app_text_mixed", text);
    insta::assert_snapshot!(
        "app_markdown_mixed",
        render(&mut MarkdownRenderer::new(), &i)
    );
}
