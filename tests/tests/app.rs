//! The app check (TLS handshake + one HTTP/1.1 request per address) against real servers in a
//! namespace: python3's `ssl` (OpenSSL) with certificates the test makes with `openssl` (a
//! private CA, a wrong SAN, expired, not yet valid, self-signed, a heavy chain), plain HTTP
//! servers answering 200, 503, a large body or nothing, and a path whose MTU drops the
//! certificate flight. Oracles on the same targets: `curl` (status) and `openssl s_client`
//! (chain, verification). Needs root:
//! `cargo build -p probe && cargo test -p netdebug-scenarios --test app`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use netdebug_scenarios::pair::SRV;
use netdebug_scenarios::pki::{Leaf, Pki, Validity};
use netdebug_scenarios::{json_plan, require_tools, run_probe, ClientServer as Lab, Link, Netns};
use protocol::{
    Evidence, HttpEvidence, HttpOutcome, TlsEvidence, TlsOutcome, TlsStage, Verification,
};
use serde_json::{json, Value};

const NAME: &str = "web.test";

/// A server on `addr port`: `mode` is what it answers to `GET` (`ok` 200, `unavailable` 503,
/// `big` a 300 kB body, `redirect` 302, `silent`: accepts and never sends a byte). With a
/// chain and key it speaks TLS first (OpenSSL through python's ssl); `alerting` TLS answers
/// bytes that are not a ClientHello with a fatal protocol_version alert record, as rustls, Go
/// and Java stacks do (OpenSSL closes without one); `nginx` TLS answers them with nginx's
/// plaintext 400 page. A request that is not `GET` (a ClientHello
/// sent to a plain port) gets a 400 page, as nginx sends. Prints `ready` once it listens.
const SERVER: &str = r#"
import socket, ssl, sys, threading
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = None
if len(sys.argv) > 5:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    ctx.set_alpn_protocols(["http/1.1"])
alerting = len(sys.argv) > 6 and sys.argv[6] == "alerting"
nginx = len(sys.argv) > 6 and sys.argv[6] == "nginx"
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(64)
print("ready", flush=True)
REASONS = {200: b"OK", 302: b"Found", 400: b"Bad Request", 503: b"Service Unavailable"}
def respond(c, status, body, extra=b""):
    head = b"HTTP/1.1 %d %s\r\nServer: ndt-app/1\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n" % (status, REASONS[status], len(body), extra)
    c.sendall(head + body)
def serve(c):
    try:
        c.settimeout(20)
        if mode == "silent":
            while c.recv(4096):
                pass
            return
        if ctx:
            if alerting and c.recv(1, socket.MSG_PEEK) != b"\x16":
                c.sendall(bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]))
                return
            if nginx and c.recv(1, socket.MSG_PEEK) != b"\x16":
                respond(c, 400, b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n</body>\r\n</html>\r\n")
                return
            c = ctx.wrap_socket(c, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            d = c.recv(4096)
            if not d:
                return
            data += d
            if not data[:1].isalpha():
                break
        if not data.startswith(b"GET "):
            respond(c, 400, b"<html><head><title>400 Bad Request</title></head><body><center><h1>400 Bad Request</h1></center></body></html>")
        elif mode == "ok":
            respond(c, 200, b"ok\n")
        elif mode == "unavailable":
            respond(c, 503, b"unavailable\n")
        elif mode == "big":
            respond(c, 200, b"x" * 300000)
        elif mode == "redirect":
            respond(c, 302, b"", b"Location: https://web.test/login\r\n")
    except Exception:
        pass
    finally:
        try:
            c.close()
        except Exception:
            pass
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

fn serve(ns: &Netns, addr: &str, port: u16, mode: &str, tls: Option<(&Leaf, &str)>) {
    let port_s = port.to_string();
    let mut argv = vec!["python3", "-c", SERVER, addr, &port_s, mode];
    let (chain, key);
    if let Some((leaf, flavour)) = tls {
        chain = leaf.chain.to_string_lossy().into_owned();
        key = leaf.key.to_string_lossy().into_owned();
        argv.extend([chain.as_str(), key.as_str(), flavour]);
    }
    let (_, ready) = ns.spawn_ready(&argv, Duration::from_secs(10));
    assert_eq!(ready, "ready");
}

/// Targets `(label, host, port)`; `tls` and `http` as in the plan's `app`.
fn app_plan(targets: &[(&str, &str, u16)], tls: bool, http: Option<u64>, timeout_ms: u64) -> Value {
    let targets: Vec<_> = targets
        .iter()
        .map(|(label, host, port)| json!({"label": label, "host": host, "port": port, "role": "endpoint"}))
        .collect();
    let mut app = json!({"timeout_ms": timeout_ms});
    if tls {
        app["tls"] = json!({"server_name": NAME, "alpn": ["http/1.1"]});
    }
    if let Some(cap) = http {
        app["http"] = json!({"path": "/healthz", "host": NAME, "max_response_bytes": cap});
    }
    json!({"v": 1, "checks": ["app"], "connect_timeout_ms": 1000, "deadline_ms": 12000,
           "targets": targets, "app": app})
}

/// The evidence of one run, by target label.
struct App {
    tls: BTreeMap<String, TlsEvidence>,
    http: BTreeMap<String, HttpEvidence>,
}

fn app_evidence<'a>(all: impl Iterator<Item = &'a Evidence>) -> App {
    let mut app = App {
        tls: BTreeMap::new(),
        http: BTreeMap::new(),
    };
    for e in all {
        match e {
            Evidence::Tls(t) => assert!(app.tls.insert(t.target.clone(), t.clone()).is_none()),
            Evidence::Http(h) => assert!(app.http.insert(h.target.clone(), h.clone()).is_none()),
            other => panic!("unexpected evidence from the app check: {other:?}"),
        }
    }
    app
}

fn probe(ns: &Netns, plan: Value) -> App {
    let run = run_probe(ns, &json_plan(plan));
    run.assert_ok();
    app_evidence(run.all_evidence())
}

/// curl's status code for `scheme://web.test:port/healthz` at `ip` (`000`: no HTTP answer).
fn curl_status(ns: &Netns, scheme: &str, ip: &str, port: u16) -> String {
    let url = format!("{scheme}://{NAME}:{port}/healthz");
    let resolve = format!("{NAME}:{port}:{ip}");
    let out = ns.try_exec(&[
        "curl",
        "-sk",
        "--max-time",
        "3",
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    out.stdout.trim().to_string()
}

/// `openssl s_client` on the same target: the chain's subjects (leaf first, `CN=...`) and the
/// verification line, trusting `ca` when given and checking `web.test`.
fn s_client(ns: &Netns, ip: &str, port: u16, ca: Option<&Path>) -> (Vec<String>, String) {
    let connect = format!("{ip}:{port}");
    let mut argv = vec![
        "timeout",
        "5",
        "openssl",
        "s_client",
        "-connect",
        &connect,
        "-servername",
        NAME,
        "-verify_hostname",
        NAME,
        "-showcerts",
    ];
    let ca_s;
    if let Some(ca) = ca {
        ca_s = ca.to_string_lossy().into_owned();
        argv.extend(["-CAfile", ca_s.as_str()]);
    }
    let out = ns.try_exec(&argv);
    let subjects = out
        .stdout
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .split_once(" s:")
                .map(|(_, s)| s.replace(" = ", "="))
        })
        .collect();
    let verify = out
        .stdout
        .lines()
        .find(|l| l.contains("Verify return code"))
        .unwrap_or_default()
        .trim()
        .to_string();
    (subjects, verify)
}

fn pki(lab: &Lab) -> Pki {
    require_tools(&["openssl", "curl", "python3", "timeout"]);
    Pki::new(&lab.file("pki"), "ndt test CA")
}

#[test]
fn certificates_are_described_and_judged() {
    let lab = Lab::new("appcrt");
    let pki = pki(&lab);
    let sans = ["DNS:web.test", "DNS:*.web.test", &format!("IP:{SRV}")];
    let valid = pki.leaf("valid", NAME, &sans, Validity::Now);
    let wrong = pki.leaf(
        "wrong",
        "other.test",
        &["DNS:other.test", "DNS:*.web.test"],
        Validity::Now,
    );
    let expired = pki.leaf("expired", NAME, &sans, Validity::Expired);
    let future = pki.leaf("future", NAME, &sans, Validity::NotYetValid);
    let own = pki.self_signed("own", NAME, &["DNS:web.test"]);
    let cases: [(&str, u16, &Leaf); 5] = [
        ("valid", 8443, &valid),
        ("wrong", 8444, &wrong),
        ("expired", 8445, &expired),
        ("future", 8446, &future),
        ("own", 8447, &own),
    ];
    for (_, port, leaf) in cases {
        serve(&lab.srv, SRV, port, "ok", Some((leaf, "openssl")));
    }
    let targets: Vec<(&str, &str, u16)> = cases.iter().map(|(l, p, _)| (*l, SRV, *p)).collect();
    let app = probe(&lab.cli, app_plan(&targets, true, Some(65536), 3000));

    for (label, port, _) in cases {
        let t = &app.tls[label];
        let h = &app.http[label];
        // Every handshake completed, whatever the certificate: the request went through.
        assert_eq!(t.outcome, TlsOutcome::Ok, "{label}: {t:?}");
        assert_eq!(t.reached, TlsStage::Finished, "{label}: {t:?}");
        assert_eq!(t.server_name, NAME);
        assert_eq!(t.address.to_string(), format!("{SRV}:{port}"));
        assert_eq!(t.version.as_deref(), Some("TLSv1.3"), "{t:?}");
        assert_eq!(t.alpn.as_deref(), Some("http/1.1"), "{t:?}");
        assert!(
            t.cipher_suite
                .as_deref()
                .unwrap_or("")
                .starts_with("TLS13_"),
            "{t:?}"
        );
        let timing = &t.timing;
        let first = timing.first_flight_ms.expect("first flight timed");
        let finished = timing.finished_ms.expect("finished timed");
        assert!(
            first > 0.0 && first <= finished && finished <= timing.total_ms,
            "{t:?}"
        );
        assert!(t.bytes_received > t.chain.iter().map(|c| c.der_bytes as u64).sum::<u64>());
        assert_eq!(h.outcome, HttpOutcome::Response, "{label}: {h:?}");
        assert_eq!(h.scheme, "https");
        assert_eq!(h.status, Some(200), "{h:?}");
        assert_eq!(h.server.as_deref(), Some("ndt-app/1"));
        assert_eq!(
            curl_status(&lab.cli, "https", SRV, port),
            "200",
            "curl on {label}"
        );
        let leaf = &t.chain[0];
        assert_eq!(leaf.key_type, "rsa");
        assert_eq!(leaf.key_bits, Some(2048));
        assert!(leaf.der_bytes > 500, "{leaf:?}");
        // The oracle: the chain as sent, subject by subject.
        let (subjects, _) = s_client(&lab.cli, SRV, port, Some(pki.ca_pem()));
        let ours: Vec<&str> = t.chain.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(
            subjects, ours,
            "{label}: openssl s_client saw another chain"
        );
    }

    let valid = &app.tls["valid"];
    assert_eq!(valid.name_covered, Some(true));
    assert_eq!(
        valid.verification,
        Some(Verification::PrivateCa.into()),
        "{valid:?}"
    );
    assert!(
        valid
            .message
            .as_deref()
            .unwrap_or("")
            .contains("CN=ndt test CA"),
        "{valid:?}"
    );
    assert_eq!(valid.chain[0].issuer, "CN=ndt test CA");
    assert_eq!(
        valid.chain[0].sans,
        ["web.test", "*.web.test", &format!("IP:{SRV}")]
    );
    let (_, verify) = s_client(&lab.cli, SRV, 8443, Some(pki.ca_pem()));
    assert!(
        verify.contains("0 (ok)"),
        "trusting the test CA it verifies: {verify}"
    );
    let (_, verify) = s_client(&lab.cli, SRV, 8443, None);
    assert!(
        !verify.contains("0 (ok)"),
        "not against the public roots: {verify}"
    );

    let wrong = &app.tls["wrong"];
    assert_eq!(wrong.name_covered, Some(false), "{wrong:?}");
    assert_eq!(wrong.verification, Some(Verification::NameMismatch.into()));
    assert_eq!(wrong.chain[0].sans, ["other.test", "*.web.test"]);
    let (_, verify) = s_client(&lab.cli, SRV, 8444, Some(pki.ca_pem()));
    assert!(verify.contains("hostname mismatch"), "{verify}");

    let expired = &app.tls["expired"];
    assert_eq!(
        expired.verification,
        Some(Verification::Expired.into()),
        "{expired:?}"
    );
    assert_eq!(
        expired.chain[0].not_after, 1_580_515_200,
        "2020-02-01T00:00:00Z"
    );
    let (_, verify) = s_client(&lab.cli, SRV, 8445, Some(pki.ca_pem()));
    assert!(verify.contains("expired"), "{verify}");

    let future = &app.tls["future"];
    assert_eq!(
        future.verification,
        Some(Verification::NotYetValid.into()),
        "{future:?}"
    );
    let (_, verify) = s_client(&lab.cli, SRV, 8446, Some(pki.ca_pem()));
    assert!(verify.contains("not yet valid"), "{verify}");

    let own = &app.tls["own"];
    assert_eq!(own.name_covered, Some(true));
    assert_eq!(
        own.verification,
        Some(Verification::SelfSigned.into()),
        "{own:?}"
    );
    assert_eq!(own.chain.len(), 1);
    assert_eq!(own.chain[0].subject, own.chain[0].issuer);
    let (_, verify) = s_client(&lab.cli, SRV, 8447, None);
    assert!(
        verify.contains("self-signed") || verify.contains("self signed"),
        "{verify}"
    );
}

#[test]
fn endpoints_answer_each_with_its_status() {
    let lab = Lab::new("appsts");
    require_tools(&["curl", "python3"]);
    let second = "10.199.1.11";
    lab.add_srv_addr(second);
    serve(&lab.srv, SRV, 8080, "ok", None);
    serve(&lab.srv, second, 8080, "unavailable", None);
    serve(&lab.srv, SRV, 8081, "redirect", None);
    let app = probe(
        &lab.cli,
        app_plan(
            &[
                ("ep1", SRV, 8080),
                ("ep2", second, 8080),
                ("moved", SRV, 8081),
            ],
            false,
            Some(65536),
            3000,
        ),
    );
    assert!(
        app.tls.is_empty(),
        "no tls evidence without tls in the plan"
    );
    let ok = &app.http["ep1"];
    let bad = &app.http["ep2"];
    for (h, ip, status, reason) in [
        (ok, SRV, 200, "OK"),
        (bad, second, 503, "Service Unavailable"),
    ] {
        assert_eq!(h.outcome, HttpOutcome::Response, "{h:?}");
        assert_eq!(h.status, Some(status), "{h:?}");
        assert_eq!(h.reason.as_deref(), Some(reason));
        assert_eq!(h.address.to_string(), format!("{ip}:8080"));
        assert_eq!(
            (h.path.as_str(), h.host.as_str(), h.scheme.as_str()),
            ("/healthz", NAME, "http")
        );
        assert!(!h.truncated);
        let first = h.first_byte_ms.expect("first byte timed");
        assert!(first <= h.total_ms, "{h:?}");
        assert_eq!(curl_status(&lab.cli, "http", ip, 8080), status.to_string());
    }
    assert_eq!(
        ok.bytes_read,
        u64::try_from(ok_response_len("OK", 3)).unwrap()
    );
    let moved = &app.http["moved"];
    assert_eq!(moved.status, Some(302), "{moved:?}");
    assert_eq!(
        moved.location.as_deref(),
        Some("https://web.test/login"),
        "reported, not followed"
    );
    assert_eq!(curl_status(&lab.cli, "http", SRV, 8081), "302");
}

/// The test server's response length for a reason and body length.
fn ok_response_len(reason: &str, body: usize) -> usize {
    format!(
        "HTTP/1.1 200 {reason}\r\nServer: ndt-app/1\r\nContent-Type: text/html\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n"
    )
    .len()
        + body
}

#[test]
fn plaintext_and_tls_crossed() {
    let lab = Lab::new("appx");
    let pki = pki(&lab);
    let leaf = pki.leaf("valid", NAME, &["DNS:web.test"], Validity::Now);
    serve(&lab.srv, SRV, 8443, "ok", Some((&leaf, "alerting")));
    serve(&lab.srv, SRV, 9443, "ok", Some((&leaf, "openssl")));
    serve(&lab.srv, SRV, 8080, "ok", None);
    serve(&lab.srv, SRV, 7443, "ok", Some((&leaf, "nginx")));

    // Plain HTTP to a TLS port that answers with its own 400 page (nginx): the page's start
    // is kept, and the verdict reads it as the scheme mismatch it is; curl sees the 400.
    let run = run_probe(
        &lab.cli,
        &json_plan(app_plan(&[("nginx", SRV, 7443)], false, Some(65536), 3000)),
    );
    run.assert_ok();
    let nginx = app_evidence(run.all_evidence()).http["nginx"].clone();
    assert_eq!(nginx.status, Some(400), "{nginx:?}");
    let page = nginx.body_start.as_deref().unwrap_or("");
    assert!(
        page.contains("The plain HTTP request was sent to HTTPS port"),
        "{nginx:?}"
    );
    assert_eq!(curl_status(&lab.cli, "http", SRV, 7443), "400");
    let verdict = run.local_verdict(&lab.cli, &format!("http://{SRV}:7443/healthz"), |_| true);
    assert!(
        verdict.fired(netdebug_verdict::RuleCode::HttpToTlsPort),
        "{:?}: {}",
        verdict.rules_fired,
        verdict.headline
    );

    // Plain HTTP to TLS ports.
    let app = probe(
        &lab.cli,
        app_plan(
            &[("alerting", SRV, 8443), ("openssl", SRV, 9443)],
            false,
            Some(65536),
            3000,
        ),
    );
    let alerting = &app.http["alerting"];
    assert_eq!(alerting.outcome, HttpOutcome::NotHttp, "{alerting:?}");
    let why = alerting.message.as_deref().unwrap_or("");
    assert!(
        why.contains("TLS alert") && why.contains("protocol_version"),
        "{alerting:?}"
    );
    assert_eq!(alerting.status, None);
    // OpenSSL drops a plaintext request without an alert: closed, as curl says.
    let openssl = &app.http["openssl"];
    assert_eq!(openssl.outcome, HttpOutcome::Closed, "{openssl:?}");
    assert_eq!(curl_status(&lab.cli, "http", SRV, 9443), "000");
    let curl = lab.cli.try_exec(&[
        "curl",
        "-s",
        "--max-time",
        "3",
        &format!("http://{SRV}:9443/"),
    ]);
    // 52: empty reply; 56: reset (OpenSSL closed with the request unread).
    assert!(
        matches!(curl.status.code(), Some(52 | 56)),
        "curl: no reply from the server: {curl:?}"
    );

    // TLS to a plain HTTP port: the server's 400 page comes back as the reply.
    let app = probe(
        &lab.cli,
        app_plan(&[("plain", SRV, 8080)], true, Some(65536), 3000),
    );
    let t = &app.tls["plain"];
    assert_eq!(t.outcome, TlsOutcome::NotTls, "{t:?}");
    assert_eq!(t.reached, TlsStage::ServerHello);
    let reply = t.plaintext_reply.as_deref().unwrap_or("");
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request"), "{t:?}");
    assert!(reply.len() <= 200 && reply.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
    assert!(t.chain.is_empty() && t.verification.is_none());
    let h = &app.http["plain"];
    assert_eq!(
        h.outcome,
        HttpOutcome::NoConnection,
        "no request after a failed handshake: {h:?}"
    );
    let curl = lab.cli.try_exec(&[
        "curl",
        "-sk",
        "--max-time",
        "3",
        &format!("https://{SRV}:8080/"),
    ]);
    assert_eq!(
        curl.status.code(),
        Some(35),
        "curl: TLS connect error: {curl:?}"
    );
}

#[test]
fn silence_and_size_are_bounded() {
    let lab = Lab::new("appsil");
    let pki = pki(&lab);
    let leaf = pki.leaf("valid", NAME, &["DNS:web.test"], Validity::Now);
    serve(&lab.srv, SRV, 8080, "silent", None);
    serve(&lab.srv, SRV, 8081, "big", None);
    serve(&lab.srv, SRV, 8443, "big", Some((&leaf, "openssl")));
    let cap = 10_000;
    let started = std::time::Instant::now();
    let app = probe(
        &lab.cli,
        app_plan(
            &[("silent", SRV, 8080), ("big", SRV, 8081)],
            false,
            Some(cap),
            800,
        ),
    );
    let silent = &app.http["silent"];
    assert_eq!(silent.outcome, HttpOutcome::Timeout, "{silent:?}");
    assert_eq!((silent.bytes_read, silent.first_byte_ms), (0, None));
    assert!(
        (780.0..1300.0).contains(&silent.total_ms),
        "the per-target timeout: {silent:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let big = &app.http["big"];
    assert_eq!(big.outcome, HttpOutcome::Response, "{big:?}");
    assert_eq!(big.status, Some(200));
    assert!(big.truncated, "{big:?}");
    assert_eq!(big.bytes_read, cap);

    // The same over TLS, and a TLS handshake with a server that never answers.
    let app = probe(
        &lab.cli,
        app_plan(
            &[("silent", SRV, 8080), ("big", SRV, 8443)],
            true,
            Some(cap),
            800,
        ),
    );
    let silent = &app.tls["silent"];
    assert_eq!(silent.outcome, TlsOutcome::Stalled, "{silent:?}");
    assert_eq!(silent.reached, TlsStage::ClientHelloSent);
    assert_eq!(silent.bytes_received, 0);
    assert!(
        (780.0..1300.0).contains(&silent.timing.total_ms),
        "{silent:?}"
    );
    let big = &app.http["big"];
    assert_eq!(
        (
            big.outcome.clone(),
            big.status,
            big.truncated,
            big.bytes_read
        ),
        (HttpOutcome::Response.into(), Some(200), true, cap),
        "{big:?}"
    );
}

/// client 10.199.81.2 -- 10.199.81.1 router 10.199.82.1 -- 10.199.82.2 server: the router's
/// link towards the client has MTU 1280 and the router drops the frag-needed errors it would
/// send the server, so the server's full-size segments (the certificate flight) vanish while
/// small ones (a short HTTP answer) pass.
#[test]
fn tls_stalls_when_the_certificate_flight_exceeds_the_path_mtu() {
    require_tools(&["openssl", "curl", "python3", "iptables"]);
    let client = Netns::new("amc");
    let router = Netns::new("amr");
    let server = Netns::new("ams");
    Link::veth_pair(
        &client,
        "c0",
        "10.199.81.2/24",
        &router,
        "r0",
        "10.199.81.1/24",
    );
    Link::veth_pair(
        &router,
        "r1",
        "10.199.82.1/24",
        &server,
        "s0",
        "10.199.82.2/24",
    );
    client.add_route("default via 10.199.81.1");
    server.add_route("default via 10.199.82.1");
    router.set_sysctl("net.ipv4.ip_forward", "1");
    router.set_mtu("r0", 1280);
    router.sh(
        "iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP \
         && iptables -A FORWARD -p icmp --icmp-type fragmentation-needed -j DROP",
    );
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "ndt test CA").with_intermediates(3, 4096);
    let leaf = pki.leaf("heavy", NAME, &["DNS:web.test"], Validity::Now);
    let srv = "10.199.82.2";
    serve(&server, srv, 8443, "ok", Some((&leaf, "openssl")));
    serve(&server, srv, 8080, "ok", None);
    let chain_bytes: u64 = std::fs::read_to_string(&leaf.chain).unwrap().len() as u64 * 3 / 4;

    let app = probe(
        &client,
        app_plan(&[("heavy", srv, 8443)], true, Some(65536), 2000),
    );
    let t = &app.tls["heavy"];
    assert_eq!(t.outcome, TlsOutcome::Stalled, "{t:?}");
    assert!(
        matches!(
            t.reached.known(),
            Some(TlsStage::ClientHelloSent | TlsStage::ServerHello)
        ),
        "{t:?}"
    );
    assert!(
        t.bytes_received < chain_bytes / 2,
        "less than the chain arrived: {t:?}"
    );
    assert!(t.chain.is_empty());
    assert_eq!(app.http["heavy"].outcome, HttpOutcome::NoConnection);
    // Small exchanges on the same path pass.
    let app = probe(
        &client,
        app_plan(&[("small", srv, 8080)], false, Some(65536), 2000),
    );
    assert_eq!(
        app.http["small"].status,
        Some(200),
        "{:?}",
        app.http["small"]
    );
    // With the MTU check in the same run, the verdict names the path MTU as the cause: the
    // search finds the blackhole the certificate flight fell into.
    let mut plan = app_plan(&[("heavy", srv, 8443)], true, Some(65536), 2000);
    plan["checks"] = json!(["tcp", "mtu", "app"]);
    plan["mtu"] = json!({});
    let run = run_probe(&client, &json_plan(plan));
    run.assert_ok();
    let verdict = run.local_verdict(&client, &format!("https://{srv}:8443/healthz"), |_| true);
    assert!(
        verdict.fired(netdebug_verdict::RuleCode::TlsStallMtu),
        "{:?}: {}; mtu evidence: {:?}",
        verdict.rules_fired,
        verdict.headline,
        run.all_evidence()
            .filter(|e| matches!(e, Evidence::Mtu(_) | Evidence::Tcp(_)))
            .collect::<Vec<_>>()
    );
    // The oracles agree: curl gets the plain answer and no TLS one.
    assert_eq!(curl_status(&client, "http", srv, 8080), "200");
    assert_eq!(curl_status(&client, "https", srv, 8443), "000");
    let dropped = router.sh("iptables -L OUTPUT -v -x -n");
    assert!(
        dropped
            .lines()
            .any(|l| l.contains("DROP") && l.split_whitespace().next() != Some("0")),
        "the router generated frag-needed errors and dropped them: {dropped}"
    );
}
