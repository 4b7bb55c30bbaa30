//! The probe's stub resolver against dnsmasq in a namespace, with dig as the oracle for every
//! rcode and answer the probe reports, and resolv.conf(5)/glibc semantics as the oracle for
//! the order of candidates. Needs root: `cargo build -p probe && cargo test -p
//! netdebug-scenarios --test dns`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netdebug_scenarios::pair::{SRV, SRV6};
use netdebug_scenarios::{ClientServer as Lab, Dnsmasq};
use protocol::{DnsConfigEvidence, DnsLookupEvidence, DnsOutcome, DnsQuery, Evidence};
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP address literal")
}

/// A dnsmasq that knows web.corp.test (A and AAAA), says NXDOMAIN for anything else in
/// corp.test and, with `--address=/#/`, for every other name too.
fn lab_with_dnsmasq(extra: &[&str]) -> Lab {
    let lab = Lab::new("dns");
    let mut args = vec![
        "--local=/corp.test/",
        "--address=/#/",
        "--host-record=web.corp.test,10.199.60.5,fd00:199::5",
        "--host-record=dns.corp.test,10.199.1.1",
    ];
    args.extend_from_slice(extra);
    lab.srv.spawn_dnsmasq_with(ip(SRV), &args);
    lab
}

struct DnsRun {
    config: DnsConfigEvidence,
    lookups: Vec<DnsLookupEvidence>,
}

impl DnsRun {
    fn lookup(&self, name: &str) -> &DnsLookupEvidence {
        self.lookups
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no lookup for {name}: {:#?}", self.lookups))
    }
}

fn probe_dns(
    lab: &Lab,
    resolv_conf: &str,
    names: &[&str],
    extra_plan: serde_json::Value,
) -> DnsRun {
    let path = lab.write("resolv.conf", resolv_conf);
    let mut plan = json!({
        "v": 1,
        "checks": ["dns"],
        "dns": {"names": names, "resolv_conf": path.to_str().unwrap()},
    });
    if let (Some(plan), Some(extra)) = (plan.as_object_mut(), extra_plan.as_object()) {
        for (k, v) in extra {
            if k == "dns" {
                for (dk, dv) in v.as_object().unwrap() {
                    plan["dns"][dk] = dv.clone();
                }
            } else {
                plan.insert(k.clone(), v.clone());
            }
        }
    }
    let mut config = None;
    let mut lookups = Vec::new();
    for evidence in lab.probe(plan).all_evidence() {
        match evidence {
            Evidence::DnsConfig(c) => {
                assert!(config.is_none(), "dns_config is emitted once");
                config = Some(c.clone());
            }
            Evidence::DnsLookup(l) => lookups.push(l.clone()),
            other => panic!("unexpected evidence from the dns check: {other:?}"),
        }
    }
    DnsRun {
        config: config.expect("a dns_config evidence"),
        lookups,
    }
}

/// (name, ttl, type, data) of each answer record.
type Records = BTreeSet<(String, u32, String, String)>;

/// What dig says for one question, asked the way the probe asks (RD set, no EDNS).
#[derive(Debug)]
struct Dig {
    status: String,
    flags: BTreeSet<String>,
    answers: Records,
    text: String,
}

fn dig(lab: &Lab, server: &str, name: &str, qtype: &str, extra: &[&str]) -> Dig {
    let at = format!("@{server}");
    let mut args = vec!["dig", "+noedns", "+tries=1", "+time=2", &at, name, qtype];
    args.extend_from_slice(extra);
    let text = lab.cli.try_exec(&args).stdout;
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap().to_string())
        .unwrap_or_default();
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .map(|l| {
            l.split(';')
                .next()
                .unwrap()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut answers = BTreeSet::new();
    let mut in_answer = false;
    for line in text.lines() {
        if line.starts_with(";; ANSWER SECTION:") {
            in_answer = true;
            continue;
        }
        if in_answer {
            if line.trim().is_empty() {
                break;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            answers.insert((
                f[0].to_lowercase(),
                f[1].parse().unwrap(),
                f[3].to_string(),
                f[4].to_string(),
            ));
        }
    }
    Dig {
        status,
        flags,
        answers,
        text,
    }
}

fn response(q: &DnsQuery) -> (&str, Records, bool) {
    match &q.outcome {
        DnsOutcome::Response {
            rcode,
            answers,
            truncated,
            ..
        } => (
            rcode.as_str(),
            answers
                .iter()
                .map(|a| {
                    (
                        a.name.to_lowercase(),
                        a.ttl,
                        a.rtype.to_string(),
                        a.data.clone(),
                    )
                })
                .collect(),
            *truncated,
        ),
        other => panic!("expected a response for {q:?}, got {other:?}"),
    }
}

/// (nameserver, rcode) of every query, in order.
fn servers_and_rcodes(l: &DnsLookupEvidence) -> Vec<(String, &str)> {
    l.queries
        .iter()
        .map(|q| (q.nameserver.to_string(), response(q).0))
        .collect()
}

/// Every query's rcode and answers equal what dig gets for the same question.
fn assert_matches_dig(lab: &Lab, lookup: &DnsLookupEvidence) {
    for q in &lookup.queries {
        let (rcode, answers, _) = response(q);
        let mut extra = vec![];
        if q.transport.as_str() == "tcp" {
            extra.push("+tcp");
        }
        let d = dig(
            lab,
            &q.nameserver.ip().to_string(),
            &q.candidate,
            q.qtype.as_str(),
            &extra,
        );
        assert_eq!(
            rcode, d.status,
            "rcode of {} {} vs dig:\n{}",
            q.candidate, q.qtype, d.text
        );
        assert_eq!(
            answers, d.answers,
            "answers of {} {} vs dig",
            q.candidate, q.qtype
        );
    }
}

const K8S_LIKE: &str =
    "search ns1.corp.test corp.test\nnameserver 10.199.1.1\noptions ndots:5 timeout:2\n";

#[test]
fn search_walk_follows_ndots_and_matches_dig() {
    let lab = lab_with_dnsmasq(&[]);
    let run = probe_dns(
        &lab,
        K8S_LIKE,
        &["web", "web.corp.test.", "a.b.c.d.e.f"],
        json!({}),
    );

    assert_eq!(
        run.config.nameservers,
        vec!["10.199.1.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(run.config.search, ["ns1.corp.test", "corp.test"]);
    assert_eq!(
        (run.config.ndots, run.config.timeout_s, run.config.attempts),
        (5, 2, 2)
    );
    assert!(!run.config.nameservers_defaulted);

    // resolv.conf(5): fewer than ndots dots -> search list first, then the name as is.
    let web = run.lookup("web");
    assert_eq!(
        web.candidates,
        ["web.ns1.corp.test.", "web.corp.test.", "web."]
    );
    assert_eq!(web.answered_by.as_deref(), Some("web.corp.test."));
    let addrs: BTreeSet<String> = web.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        addrs,
        BTreeSet::from(["10.199.60.5".into(), "fd00:199::5".into()])
    );
    // A and AAAA for the first candidate, NXDOMAIN both: two wasted queries.
    assert_eq!(web.wasted_queries, 2, "{:#?}", web.queries);
    let walked: Vec<(&str, &str)> = web
        .queries
        .iter()
        .map(|q| (q.candidate.as_str(), q.qtype.as_str()))
        .collect();
    let walked: BTreeSet<_> = walked.into_iter().collect();
    assert_eq!(
        walked,
        BTreeSet::from([
            ("web.ns1.corp.test.", "A"),
            ("web.ns1.corp.test.", "AAAA"),
            ("web.corp.test.", "A"),
            ("web.corp.test.", "AAAA"),
        ]),
        "stops at the first candidate that answers"
    );
    assert_eq!(web.queries.len(), 4);
    assert!(web
        .queries
        .iter()
        .all(|q| q.transport.as_str() == "udp" && q.attempt == 1));
    assert_matches_dig(&lab, web);

    // A trailing dot: only the name itself.
    let fq = run.lookup("web.corp.test.");
    assert_eq!(fq.candidates, ["web.corp.test."]);
    assert_eq!(fq.wasted_queries, 0);
    assert_eq!(fq.queries.len(), 2);
    assert_matches_dig(&lab, fq);

    // At least ndots dots -> the name as is first, then the search list.
    let deep = run.lookup("a.b.c.d.e.f");
    assert_eq!(
        deep.candidates,
        [
            "a.b.c.d.e.f.",
            "a.b.c.d.e.f.ns1.corp.test.",
            "a.b.c.d.e.f.corp.test."
        ]
    );
    assert_eq!(deep.queries.first().unwrap().candidate, "a.b.c.d.e.f.");
    assert_matches_dig(&lab, deep);
}

#[test]
fn unknown_name_is_nxdomain_on_every_candidate() {
    let lab = lab_with_dnsmasq(&[]);
    let run = probe_dns(&lab, K8S_LIKE, &["nope"], json!({}));
    let nope = run.lookup("nope");
    assert_eq!(
        nope.candidates,
        ["nope.ns1.corp.test.", "nope.corp.test.", "nope."]
    );
    assert_eq!(nope.answered_by, None);
    assert!(nope.addresses.is_empty());
    assert_eq!(nope.queries.len(), 6, "A and AAAA for each of 3 candidates");
    for q in &nope.queries {
        assert_eq!(response(q).0, "NXDOMAIN", "{q:?}");
    }
    assert_eq!(nope.wasted_queries, 6);
    let tried: BTreeSet<&str> = nope.queries.iter().map(|q| q.candidate.as_str()).collect();
    assert_eq!(tried.len(), 3, "every candidate was tried");
    assert_matches_dig(&lab, nope);
}

#[test]
fn dead_nameservers_refused_then_silent_then_answer() {
    let lab = lab_with_dnsmasq(&[]);
    // .3: an address where nothing listens (the kernel answers ICMP port unreachable);
    // .5: an address whose packets are dropped.
    lab.add_srv_addr("10.199.1.3");
    lab.add_srv_addr("10.199.1.5");
    lab.srv
        .iptables(&["-A", "INPUT", "-d", "10.199.1.5", "-j", "DROP"]);
    let conf = "nameserver 10.199.1.3\nnameserver 10.199.1.5\nnameserver 10.199.1.1\n\
                options timeout:1 attempts:1\n";
    let run = probe_dns(&lab, conf, &["web.corp.test."], json!({}));
    let l = run.lookup("web.corp.test.");
    assert_eq!(l.answered_by.as_deref(), Some("web.corp.test."), "{l:#?}");
    for qtype in ["A", "AAAA"] {
        let qs: Vec<&DnsQuery> = l
            .queries
            .iter()
            .filter(|q| q.qtype.as_str() == qtype)
            .collect();
        let servers: Vec<String> = qs.iter().map(|q| q.nameserver.to_string()).collect();
        assert_eq!(
            servers,
            ["10.199.1.3:53", "10.199.1.5:53", "10.199.1.1:53"],
            "resolver order"
        );
        match &qs[0].outcome {
            DnsOutcome::Error { message } => assert!(message.contains("refused"), "{message}"),
            other => panic!("expected connection refused, got {other:?}"),
        }
        assert_eq!(qs[1].outcome, DnsOutcome::Timeout);
        // glibc: the second of three servers waits (timeout << 1) / 3 seconds, at least 1.
        assert!(
            (950.0..2000.0).contains(&qs[1].latency_ms),
            "the per-try timeout was honoured: {} ms",
            qs[1].latency_ms
        );
        assert!(
            qs[2].sent_ms >= qs[1].sent_ms + 950.0,
            "sent after the timeout"
        );
        assert_eq!(response(qs[2]).0, "NOERROR");
    }
    // Oracles: dig sees the same refused and silent servers.
    let refused = dig(&lab, "10.199.1.3", "web.corp.test.", "A", &[]);
    assert!(
        refused.text.contains("connection refused"),
        "{}",
        refused.text
    );
    let silent = dig(&lab, "10.199.1.5", "web.corp.test.", "A", &["+time=1"]);
    assert!(silent.text.contains("timed out"), "{}", silent.text);
}

#[test]
fn plan_timeout_and_deadline_bound_a_silent_nameserver() {
    let lab = Lab::new("dnsdrop");
    lab.srv
        .iptables(&["-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "DROP"]);
    let conf = "nameserver 10.199.1.1\noptions timeout:5 attempts:2\n";
    // The plan's per-query timeout caps resolv.conf's 5 s.
    let run = probe_dns(
        &lab,
        conf,
        &["web.corp.test."],
        json!({"dns": {"timeout_ms": 300}}),
    );
    let l = run.lookup("web.corp.test.");
    assert_eq!(l.queries.len(), 4, "A and AAAA, two attempts each: {l:#?}");
    for q in &l.queries {
        assert_eq!(q.outcome, DnsOutcome::Timeout);
        assert!((290.0..1500.0).contains(&q.latency_ms), "{q:?}");
    }
    let attempts: BTreeSet<u32> = l.queries.iter().map(|q| q.attempt).collect();
    assert_eq!(attempts, BTreeSet::from([1, 2]));
    assert_eq!(l.answered_by, None);

    // The run's deadline cuts resolv.conf's 5 s tries short, and the lookup says so.
    let started = std::time::Instant::now();
    let run = probe_dns(
        &lab,
        conf,
        &["web.corp.test."],
        json!({"deadline_ms": 1200}),
    );
    let l = run.lookup("web.corp.test.");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the deadline was honoured"
    );
    assert!(
        l.error.as_deref().unwrap_or("").contains("deadline"),
        "{l:#?}"
    );
    assert!(l.queries.iter().all(|q| q.latency_ms < 1300.0), "{l:#?}");
}

#[test]
fn truncated_udp_answer_is_asked_again_over_tcp() {
    let lab = Lab::new("dnstc");
    let hosts: String = (1..=40)
        .map(|i| format!("10.199.61.{i} big.corp.test\n"))
        .collect();
    let hosts_path = lab.write("hosts", &hosts);
    let addn = format!("--addn-hosts={}", hosts_path.display());
    lab.srv
        .spawn_dnsmasq_with(ip(SRV), &["--local=/corp.test/", "--address=/#/", &addn]);

    // Oracle: 40 A records do not fit in 512 bytes; dig over UDP sees TC.
    let udp = dig(&lab, SRV, "big.corp.test.", "A", &["+notcp", "+ignore"]);
    assert!(udp.flags.contains("tc"), "{}", udp.text);

    let conf = "nameserver 10.199.1.1\noptions timeout:2\n";
    let run = probe_dns(&lab, conf, &["big.corp.test."], json!({}));
    let l = run.lookup("big.corp.test.");
    let a: Vec<&DnsQuery> = l
        .queries
        .iter()
        .filter(|q| q.qtype.as_str() == "A")
        .collect();
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(a[0].transport.as_str(), "udp");
    assert!(response(a[0]).2, "the UDP answer is marked truncated");
    assert_eq!(a[1].transport.as_str(), "tcp");
    assert_eq!(a[1].nameserver, a[0].nameserver, "TCP to the same server");
    let (rcode, answers, truncated) = response(a[1]);
    assert_eq!((rcode, truncated), ("NOERROR", false));
    assert_eq!(answers.len(), 40);
    let tcp = dig(&lab, SRV, "big.corp.test.", "A", &["+tcp"]);
    assert_eq!(answers, tcp.answers, "same records as dig +tcp");
    assert_eq!(l.addresses.len(), 40);
}

#[test]
fn refused_everywhere_ends_the_search_list_then_tries_as_is() {
    let lab = Lab::new("dnsref");
    // A dnsmasq without any data or upstream refuses every query.
    lab.srv.spawn_dnsmasq_with(ip(SRV), &[]);
    let d = dig(&lab, SRV, "web.corp.test.", "A", &[]);
    assert_eq!(d.status, "REFUSED", "{}", d.text);

    let conf = "search corp.test other.test\nnameserver 10.199.1.1\noptions timeout:1 attempts:2\n";
    let run = probe_dns(&lab, conf, &["web"], json!({}));
    let l = run.lookup("web");
    assert_eq!(l.candidates, ["web.corp.test.", "web.other.test.", "web."]);
    // glibc: REFUSED -> next server (none left) for each of 2 attempts; TRY_AGAIN without
    // SERVFAIL ends the search list; the name is still tried as is.
    let tried: Vec<&str> = l.queries.iter().map(|q| q.candidate.as_str()).collect();
    assert!(!tried.contains(&"web.other.test."), "{tried:?}");
    assert_eq!(tried.iter().filter(|c| **c == "web.corp.test.").count(), 4);
    assert_eq!(tried.iter().filter(|c| **c == "web.").count(), 4);
    for q in &l.queries {
        assert_eq!(response(q).0, "REFUSED");
    }
    assert_eq!(l.answered_by, None);
    assert_matches_dig(&lab, l);
}

#[test]
fn server_rejection_moves_on_to_the_next_nameserver() {
    let lab = lab_with_dnsmasq(&[]);
    lab.add_srv_addr("10.199.1.4");
    lab.srv.spawn_dnsmasq_with(ip("10.199.1.4"), &[]);
    let conf = "nameserver 10.199.1.4\nnameserver 10.199.1.1\n";
    let run = probe_dns(
        &lab,
        conf,
        &["web.corp.test."],
        json!({"dns": {"aaaa": false}}),
    );
    let l = run.lookup("web.corp.test.");
    assert_eq!(
        servers_and_rcodes(l),
        [
            ("10.199.1.4:53".to_string(), "REFUSED"),
            ("10.199.1.1:53".to_string(), "NOERROR")
        ]
    );
    assert_eq!(l.answered_by.as_deref(), Some("web.corp.test."));
    assert_matches_dig(&lab, l);
}

#[test]
fn plan_tcp_sends_every_query_over_tcp() {
    let lab = lab_with_dnsmasq(&[]);
    let run = probe_dns(&lab, K8S_LIKE, &["web"], json!({"dns": {"tcp": true}}));
    let l = run.lookup("web");
    assert!(!l.queries.is_empty());
    assert!(
        l.queries.iter().all(|q| q.transport.as_str() == "tcp"),
        "{l:#?}"
    );
    assert_eq!(l.answered_by.as_deref(), Some("web.corp.test."));
    assert_matches_dig(&lab, l);
}

#[test]
fn no_nameserver_line_means_loopback_and_says_so() {
    let lab = Lab::new("dnslo");
    let run = probe_dns(&lab, "search corp.test\n", &["web.corp.test."], json!({}));
    assert!(run.config.nameservers_defaulted);
    assert_eq!(
        run.config.nameservers,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    let l = run.lookup("web.corp.test.");
    assert!(!l.queries.is_empty());
    for q in &l.queries {
        assert_eq!(q.nameserver.to_string(), "127.0.0.1:53");
        match &q.outcome {
            DnsOutcome::Error { message } => assert!(message.contains("refused"), "{message}"),
            other => panic!("nothing listens on the client's loopback: {other:?}"),
        }
    }
    let d = dig(&lab, "127.0.0.1", "web.corp.test.", "A", &[]);
    assert!(d.text.contains("connection refused"), "{}", d.text);
}

#[test]
fn target_host_names_are_looked_up_once_and_reused_by_tcp() {
    let lab = Lab::new("dnsonce");
    let dnsmasq = lab.srv.spawn_dnsmasq_with(
        ip(SRV),
        &[
            "--local=/corp.test/",
            "--address=/#/",
            "--host-record=dns.corp.test,10.199.1.1",
        ],
    );
    let path = lab.write("resolv.conf", K8S_LIKE);
    let plan = json!({
        "v": 1,
        "checks": ["dns", "tcp"],
        "connect_timeout_ms": 1000,
        "targets": [{"label": "dns", "host": "dns", "port": 53}],
        "dns": {"resolv_conf": path.to_str().unwrap(), "aaaa": false},
    });
    let run = lab.probe(plan);
    let evidence: Vec<&Evidence> = run.all_evidence().collect();
    let lookups: Vec<&DnsLookupEvidence> = evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::DnsLookup(l) => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(lookups.len(), 1, "one lookup for the target's name");
    assert_eq!(lookups[0].name, "dns");
    assert_eq!(
        lookups[0].addresses,
        vec!["10.199.1.1".parse::<std::net::IpAddr>().unwrap()]
    );
    // tcp connects to what the lookup found: dnsmasq's own TCP port 53.
    let tcp: Vec<_> = evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Tcp(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(tcp.len(), 1);
    assert_eq!(tcp[0].address.to_string(), "10.199.1.1:53");
    assert_eq!(tcp[0].outcome, protocol::TcpOutcome::Ok, "{:?}", tcp[0]);
    // Oracle: the server saw each question once although both checks needed the name.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let text = loop {
        // dnsmasq logs asynchronously: wait for the answered question to show up.
        let text = dnsmasq.log();
        if text.contains("query[A] dns.corp.test from") || std::time::Instant::now() > until {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let asked = |q: &str| text.lines().filter(|l| l.contains(q)).count();
    assert_eq!(asked("query[A] dns.ns1.corp.test from"), 1, "{text}");
    assert_eq!(asked("query[A] dns.corp.test from"), 1, "{text}");
}

/// A forwarder that validates DNSSEC with a trust anchor the upstream cannot satisfy answers
/// SERVFAIL for every forwarded name (dnsmasq: "validation ... is BOGUS"), while answering
/// its own local names. A dnsmasq whose upstream is merely dead does not answer at all.
fn servfail_forwarder(lab: &Lab, at: &str, upstream: &str) -> [Dnsmasq; 2] {
    lab.add_srv_addr(upstream);
    let upstream_dns = lab.srv.spawn_dnsmasq_with(
        ip(upstream),
        &["--address=/fail.test/10.199.62.1", "--address=/#/"],
    );
    lab.add_srv_addr(at);
    let server = format!("--server={upstream}");
    let forwarder = lab.srv.spawn_dnsmasq_with(
        ip(at),
        &[
            "--local=/corp.test/",
            "--host-record=web.corp.test,10.199.60.5",
            &server,
            "--dnssec",
            "--trust-anchor=.,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
            "--dnssec-check-unsigned",
        ],
    );
    [forwarder, upstream_dns]
}

#[test]
fn servfail_moves_on_to_the_next_nameserver_and_the_next_search_domain() {
    let lab = lab_with_dnsmasq(&[]);
    let [forwarder, upstream] = servfail_forwarder(&lab, "10.199.1.7", "10.199.1.6");
    let d = dig(&lab, "10.199.1.7", "web.fail.test.", "A", &[]);
    assert_eq!(
        d.status,
        "SERVFAIL",
        "{}\nforwarder: {}\nupstream: {}",
        d.text,
        forwarder.log(),
        upstream.log()
    );

    // Next nameserver: .7 fails, .1 answers (NXDOMAIN, it knows no fail.test).
    let conf = "nameserver 10.199.1.7\nnameserver 10.199.1.1\noptions timeout:2 attempts:1\n";
    let run = probe_dns(
        &lab,
        conf,
        &["web.fail.test."],
        json!({"dns": {"aaaa": false}}),
    );
    let l = run.lookup("web.fail.test.");
    assert_eq!(
        servers_and_rcodes(l),
        [
            ("10.199.1.7:53".to_string(), "SERVFAIL"),
            ("10.199.1.1:53".to_string(), "NXDOMAIN")
        ]
    );
    assert_matches_dig(&lab, l);

    // Next search domain: unlike REFUSED or a timeout, SERVFAIL on every server does not end
    // the search list (glibc's got_servfail).
    let conf = "search fail.test corp.test\nnameserver 10.199.1.7\noptions timeout:2 attempts:2\n";
    let run = probe_dns(&lab, conf, &["web"], json!({"dns": {"aaaa": false}}));
    let l = run.lookup("web");
    assert_eq!(l.candidates, ["web.fail.test.", "web.corp.test.", "web."]);
    let walked: Vec<(&str, &str, u32)> = l
        .queries
        .iter()
        .map(|q| (q.candidate.as_str(), response(q).0, q.attempt))
        .collect();
    assert_eq!(
        walked,
        [
            ("web.fail.test.", "SERVFAIL", 1),
            ("web.fail.test.", "SERVFAIL", 2),
            ("web.corp.test.", "NOERROR", 1)
        ]
    );
    assert_eq!(l.answered_by.as_deref(), Some("web.corp.test."));
    assert_eq!(l.wasted_queries, 2);
    assert_matches_dig(&lab, l);
}

#[test]
fn ipv6_nameserver_is_queried_over_ipv6() {
    let lab = Lab::new("dns6");
    lab.enable_v6();
    lab.srv.spawn_dnsmasq_with(
        ip(SRV6),
        &[
            "--local=/corp.test/",
            "--host-record=web.corp.test,10.199.60.5,fd00:199::5",
        ],
    );
    let conf = format!("nameserver {SRV6}\noptions timeout:2\n");
    let run = probe_dns(&lab, &conf, &["web.corp.test."], json!({}));
    let l = run.lookup("web.corp.test.");
    assert_eq!(l.answered_by.as_deref(), Some("web.corp.test."), "{l:#?}");
    assert!(l
        .queries
        .iter()
        .all(|q| q.nameserver.to_string() == format!("[{SRV6}]:53")));
    assert_matches_dig(&lab, l);
}

/// Found as a gap on a real cluster: a name only in /etc/hosts (the pod's own name, a
/// `hostAliases` entry) was reported unresolved. The hosts file answers first, as nsswitch
/// `files dns` does, without a query (oracle: dnsmasq's query log), and the evidence says
/// which source answered; other names still go to DNS.
#[test]
fn hosts_file_answers_before_dns_without_a_query() {
    let lab = Lab::new("dnshosts");
    let dnsmasq = lab.srv.spawn_dnsmasq(
        ip(SRV),
        &[
            ("web.corp.test", "10.199.60.5"),
            ("legacy-db", "10.199.99.99"),
        ],
    );
    let hosts = lab.write(
        "hosts",
        "127.0.0.1 localhost\n# HostAliases\n10.199.5.5\tlegacy-db.corp.example legacy-db\n",
    );
    let resolv = lab.write("resolv.conf", &format!("nameserver {SRV}\n"));
    let run = lab.probe(json!({
        "v": 1, "checks": ["dns"],
        "dns": {"names": ["legacy-db", "web.corp.test"],
                "resolv_conf": resolv.to_str().unwrap(),
                "hosts_file": hosts.to_str().unwrap()},
    }));
    let lookups: Vec<&DnsLookupEvidence> = run.evidence::<DnsLookupEvidence>();
    let db = lookups.iter().find(|l| l.name == "legacy-db").unwrap();
    assert_eq!(db.source, protocol::NameSource::Files, "{db:?}");
    assert_eq!(
        db.addresses,
        [ip("10.199.5.5")],
        "the hosts file's, not DNS's 10.199.99.99"
    );
    assert!(db.queries.is_empty(), "{db:?}");
    let web = lookups.iter().find(|l| l.name == "web.corp.test").unwrap();
    assert_eq!(web.source, protocol::NameSource::Dns);
    assert_eq!(web.addresses, [ip("10.199.60.5")]);
    let config = run.one::<DnsConfigEvidence>();
    assert_eq!(config.hosts_file.as_deref(), hosts.to_str());
    assert_eq!(config.hosts_entries, Some(2));
    // Oracle: DNS was asked about web.corp.test and never about legacy-db.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let text = loop {
        let text = dnsmasq.log();
        if text.contains("query[A] web.corp.test from") || std::time::Instant::now() > until {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(text.contains("query[A] web.corp.test from"), "{text}");
    assert!(!text.contains("legacy-db"), "{text}");
}
