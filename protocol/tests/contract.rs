//! Contract test: every event type and evidence kind has a golden line in
//! `fixtures/events.jsonl`. Each line must decode to the sample value below and re-encode to the
//! same bytes, so a renamed field or changed enum spelling breaks here, not in production.
//! Regenerate after a deliberate protocol change with `NETDEBUG_BLESS=1 cargo test -p
//! netdebug-protocol --test contract` and review the diff.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use protocol::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn samples() -> Vec<Event> {
    vec![
        Event::Hello(Hello {
            probe_version: "0.1.0".into(),
            protocol_minor: 0,
            netns_inode: Some(4026532281),
            hostname: Some("checkout-7d9".into()),
            kernel: Some("6.1.0".into()),
            uid: 65534,
            euid: 65534,
            capabilities: vec![],
            deadline_ms: 15000,
        }),
        Event::CheckStarted(CheckStarted {
            check: CheckKind::Tcp.into(),
            variant: None,
        }),
        Event::Evidence(Evidence::Links(LinksEvidence {
            links: vec![Link {
                index: 2,
                name: "eth0".into(),
                kind: Some(LinkKind::Veth.into()),
                oper_state: OperState::Up.into(),
                admin_up: true,
                lower_up: true,
                loopback: false,
                mtu: 1450,
                mac: Some("02:42:0a:f4:00:0d".into()),
                addresses: vec![InterfaceAddress {
                    address: ip("10.244.0.13"),
                    prefix_len: 24,
                    scope: AddressScope::Global.into(),
                }],
                stats: LinkStats {
                    rx_packets: 10,
                    tx_packets: 12,
                    rx_bytes: 1000,
                    tx_bytes: 1200,
                    rx_errors: 0,
                    tx_errors: 0,
                    rx_dropped: 1,
                    tx_dropped: 0,
                },
            }],
        })),
        Event::Evidence(Evidence::Route(RouteEvidence {
            target: "svc/payments:443".into(),
            destination: ip("10.96.12.34"),
            role: TargetRole::ClusterIp.into(),
            outcome: RouteOutcome::Found(RouteInfo {
                table: 254,
                route_type: RouteType::Unicast.into(),
                dev: Some("eth0".into()),
                gateway: Some(ip("10.244.0.1")),
                prefsrc: Some(ip("10.244.0.13")),
                mtu: None,
                neighbor: Some(Neighbor {
                    address: ip("10.244.0.1"),
                    state: NudState::Reachable.into(),
                    lladdr: Some("aa:bb:cc:dd:ee:ff".into()),
                }),
            }),
        })),
        Event::Evidence(Evidence::Route(RouteEvidence {
            target: "10.199.9.9:80".into(),
            destination: ip("10.199.9.9"),
            role: TargetRole::Direct.into(),
            outcome: RouteOutcome::NoRoute {
                reason: NoRouteReason::NetworkUnreachable.into(),
                message: "Network is unreachable".into(),
                matched: None,
            },
        })),
        Event::Evidence(Evidence::Route(RouteEvidence {
            target: "10.199.30.5:80".into(),
            destination: ip("10.199.30.5"),
            role: TargetRole::Direct.into(),
            outcome: RouteOutcome::NoRoute {
                reason: NoRouteReason::Prohibited.into(),
                message: "Permission denied".into(),
                matched: Some(RefusedBy {
                    rule_priority: 1000,
                    rule: "from all to 10.199.30.0/24 lookup 100".into(),
                    table: Some(100),
                    route: Some("prohibit 10.199.30.0/24".into()),
                    unevaluated: vec!["rule 500 (from all lookup 200 l3mdev): l3mdev".into()],
                }),
            },
        })),
        Event::Evidence(Evidence::Rules(RulesEvidence {
            rules: vec![Rule {
                family: Family::Inet.into(),
                priority: 100,
                selector: "to 10.199.2.0/24".into(),
                action: RuleAction::Lookup.into(),
                table: Some(100),
            }],
        })),
        Event::Evidence(Evidence::DnsConfig(DnsConfigEvidence {
            path: "/etc/resolv.conf".into(),
            nameservers: vec![ip("10.96.0.10")],
            search: vec!["shop.svc.cluster.local".into(), "svc.cluster.local".into()],
            ndots: 5,
            timeout_s: 5,
            attempts: 2,
            options: vec![ResolverOption::SingleRequestReopen.into()],
            error: None,
            nameservers_defaulted: false,
            ignored_nameservers: vec![],
            notes: vec![],
            hosts_file: Some("/etc/hosts".into()),
            hosts_entries: Some(5),
        })),
        Event::Evidence(Evidence::DnsLookup(DnsLookupEvidence {
            name: "payments".into(),
            candidates: vec![
                "payments.shop.svc.cluster.local.".into(),
                "payments.".into(),
            ],
            queries: vec![
                DnsQuery {
                    candidate: "payments.shop.svc.cluster.local.".into(),
                    qtype: RecordType::A.into(),
                    nameserver: sa("10.96.0.10:53"),
                    transport: DnsTransport::Udp.into(),
                    outcome: DnsOutcome::Response {
                        rcode: Rcode::NoError.into(),
                        answers: vec![DnsRecord {
                            name: "payments.shop.svc.cluster.local.".into(),
                            rtype: RecordType::A.into(),
                            ttl: 5,
                            data: "10.96.12.34".into(),
                        }],
                        truncated: false,
                        authoritative: true,
                    },
                    latency_ms: 1.25,
                    attempt: 1,
                    sent_ms: 0.0,
                },
                DnsQuery {
                    candidate: "payments.shop.svc.cluster.local.".into(),
                    qtype: RecordType::Aaaa.into(),
                    nameserver: sa("10.96.0.10:53"),
                    transport: DnsTransport::Udp.into(),
                    outcome: DnsOutcome::Timeout,
                    latency_ms: 5000.0,
                    attempt: 1,
                    sent_ms: 0.0,
                },
            ],
            answered_by: Some("payments.shop.svc.cluster.local.".into()),
            addresses: vec![ip("10.96.12.34")],
            wasted_queries: 0,
            elapsed_ms: 1.25,
            error: None,
            source: NameSource::Dns.into(),
        })),
        Event::Evidence(Evidence::Tcp(TcpEvidence {
            target: "svc/payments:443".into(),
            address: sa("10.96.12.34:443"),
            role: TargetRole::ClusterIp.into(),
            outcome: TcpOutcome::Timeout.into(),
            latency_ms: 3000.0,
            local: Some(sa("10.244.0.13:40312")),
            errno: Some(110),
            message: Some("connection timed out".into()),
            icmp: None,
            // Minor 6: the node's conntrack entry for the connect (a node view).
            node_nat: Some(NodeNat {
                state: NatState::NotTranslated.into(),
                endpoint: None,
                reason: None,
            }),
        })),
        Event::Evidence(Evidence::Tcp(TcpEvidence {
            target: "10.199.62.2:8080".into(),
            address: sa("10.199.62.2:8080"),
            role: TargetRole::Direct.into(),
            outcome: TcpOutcome::Refused.into(),
            latency_ms: 0.6,
            local: Some(sa("10.199.61.2:40314")),
            errno: Some(111),
            message: Some("Connection refused (os error 111)".into()),
            icmp: Some(ConnectIcmp::new(false, 3, 3, Some(ip("10.199.61.1")))),
            node_nat: None,
        })),
        Event::Evidence(Evidence::Sockets(SocketsEvidence {
            states: BTreeMap::from([
                (SocketState::Established.into(), 3),
                (SocketState::TimeWait.into(), 1),
            ]),
            total: 4,
            local_port_range: Some((32768, 60999)),
            time_wait_ratio: Some(0.0000353),
            time_wait_top_peer: Some(PeerCount {
                peer: sa("10.96.12.34:443"),
                count: 1,
            }),
            close_wait_by_peer: vec![],
            syn_sent_to_targets: vec![],
            listeners: vec![Listener {
                local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
                recv_q: 0,
                send_q: 4096,
            }],
        })),
        Event::Evidence(Evidence::Counters(CountersEvidence {
            interval_ms: 3012.5,
            counters: BTreeMap::from([(
                Counter::TcpRetransSegs.into(),
                CounterValue {
                    value: 17,
                    delta: 4,
                },
            )]),
        })),
        Event::Evidence(Evidence::Conntrack(ConntrackEvidence {
            present: true,
            count: Some(120),
            max: Some(262144),
            fill_ratio: Some(0.000457763671875),
            insert_failed: Some(0),
            drop: Some(0),
            early_drop: Some(0),
            note: None,
        })),
        // Minor 6: the node's half of the path, from a node view.
        Event::Evidence(Evidence::NodePath(NodePathEvidence {
            overlays: vec![OverlayDevice {
                name: "flannel.1".into(),
                kind: LinkKind::Vxlan.into(),
                mtu: 1450,
                up: true,
            }],
            underlay: Some(NodeDevice {
                name: "eth0".into(),
                mtu: 1500,
            }),
            routes: vec![NodeRoute {
                target: "svc/payments:443".into(),
                address: ip("10.244.1.7"),
                dev: Some("flannel.1".into()),
                dev_kind: Some(LinkKind::Vxlan.into()),
                gateway: Some(ip("10.244.1.0")),
                via_default: false,
                error: None,
            }],
            rp_filter: vec![DeviceSetting {
                dev: "flannel.1".into(),
                value: 1,
            }],
            conntrack: Some(ConntrackEvidence {
                present: true,
                count: Some(4210),
                max: Some(262144),
                fill_ratio: Some(0.016059875488281),
                insert_failed: Some(0),
                drop: Some(0),
                early_drop: Some(0),
                note: None,
            }),
            counters: Some(CountersEvidence {
                interval_ms: 120.5,
                counters: BTreeMap::from([
                    (
                        Counter::IpReversePathFilter.into(),
                        CounterValue {
                            value: 12,
                            delta: 2,
                        },
                    ),
                    (
                        Counter::IpForwDatagrams.into(),
                        CounterValue {
                            value: 90210,
                            delta: 14,
                        },
                    ),
                ]),
            }),
            errors: vec![],
        })),
        Event::Evidence(Evidence::Sysctls(SysctlsEvidence {
            values: BTreeMap::from([
                (Sysctl::RpFilter(ConfScope::All), "1".to_string()),
                (Sysctl::rp_filter_of("eth0.100"), "1".to_string()),
            ]),
        })),
        Event::Evidence(Evidence::Mtu(MtuEvidence {
            target: "10.199.3.2:80".into(),
            destination: ip("10.199.3.2"),
            role: TargetRole::Endpoint.into(),
            variant: MtuVariant::Icmp.into(),
            interface_mtu: Some(1500),
            route_mtu: None,
            largest_ok: Some(1280),
            smallest_lost: Some(1281),
            frag_needed_seen: false,
            learned_pmtu: None,
            blackhole: true,
            probes: vec![MtuProbe {
                size: 1500,
                result: MtuProbeResult::Lost.into(),
                rtt_ms: None,
            }],
        })),
        Event::Evidence(Evidence::CaptureSummary(CaptureSummary {
            interface: "any".into(),
            filter: "host 10.96.12.34 and tcp port 443".into(),
            snaplen: 128,
            packets_captured: 3,
            bytes_captured: 222,
            kernel_drops: 0,
            stopped_by: CaptureStop::Duration.into(),
            tcp_flows: vec![TcpFlow {
                client: sa("10.244.0.13:40312"),
                server: sa("10.96.12.34:443"),
                handshake: Handshake::Unanswered.into(),
                syn_count: 3,
                retransmits: 2,
                rst_after_data: false,
                packets: 3,
                bytes: 222,
                handshake_ms: None,
                rst_from: None,
                marks: vec![
                    PacketMark {
                        at_us: 1_795_000_000_000_000,
                        from: FlowSide::Client.into(),
                        flags: TcpFlags(TcpFlags::SYN),
                        len: 0,
                        interface: Some("eth0".into()),
                        direction: Some(PacketDirection::Out.into()),
                    },
                    PacketMark {
                        at_us: 1_795_000_001_003_000,
                        from: FlowSide::Client.into(),
                        flags: TcpFlags(TcpFlags::SYN),
                        len: 0,
                        interface: None,
                        direction: None,
                    },
                ],
                marks_dropped: 1,
            }],
            icmp_errors: vec![],
            dns: vec![],
            kernel_received: None,
            notes: vec![],
        })),
        Event::Skipped(Skipped {
            check: CheckKind::Capture.into(),
            reason: "capture needs CAP_NET_RAW, which the restricted profile drops".into(),
            missing_capability: Some(Capability::NetRaw.into()),
        }),
        Event::PcapChunk(PcapChunk {
            index: 0,
            packets: 0,
            data: "1MOyoQIABAAAAAAAAAAAAIAAAAABAAAA".into(),
        }),
        Event::Evidence(Evidence::Tls(TlsEvidence {
            target: "svc/api:443".into(),
            address: sa("10.96.12.34:443"),
            role: TargetRole::ClusterIp.into(),
            server_name: "api.shop.svc.cluster.local".into(),
            outcome: TlsOutcome::Ok.into(),
            reached: TlsStage::Finished.into(),
            bytes_received: 2911,
            version: Some("TLSv1.3".into()),
            cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
            alpn: Some("http/1.1".into()),
            timing: TlsTiming {
                first_flight_ms: Some(1.2),
                finished_ms: Some(2.5),
                total_ms: 2.5,
            },
            alert: None,
            chain: vec![CertificateInfo {
                subject: "CN=api.shop.svc".into(),
                issuer: "CN=shop internal CA".into(),
                sans: vec!["api.shop.svc".into(), "IP:10.96.12.34".into()],
                not_before: 1_790_000_000,
                not_after: 1_820_000_000,
                key_type: "ecdsa".into(),
                key_bits: Some(256),
                der_bytes: 612,
            }],
            name_covered: Some(false),
            verification: Some(Verification::NameMismatch.into()),
            plaintext_reply: None,
            message: None,
        })),
        Event::Evidence(Evidence::Http(HttpEvidence {
            target: "10.244.2.37:8443".into(),
            address: sa("10.244.2.37:8443"),
            role: TargetRole::Endpoint.into(),
            scheme: "https".into(),
            path: "/ready".into(),
            host: "api.shop.svc.cluster.local".into(),
            outcome: HttpOutcome::Response.into(),
            status: Some(503),
            reason: Some("Service Unavailable".into()),
            server: Some("nginx".into()),
            location: None,
            first_byte_ms: Some(4.1),
            total_ms: 4.3,
            bytes_read: 210,
            truncated: false,
            body_start: Some("<html><head><title>503 Service Unavailable</title></head>".into()),
            message: None,
        })),
        Event::Evidence(Evidence::TcpRounds(TcpRoundsEvidence {
            target: "10.244.2.37:8443".into(),
            address: sa("10.244.2.37:8443"),
            role: TargetRole::Endpoint.into(),
            attempts: 8,
            outcomes: BTreeMap::from([
                (TcpOutcome::Ok.into(), 6),
                (TcpOutcome::HostUnreachable.into(), 2),
            ]),
            latency_ms: Some(LatencySummary {
                p50: 0.4,
                p90: 0.9,
                p99: 2.1,
                max: 2.1,
            }),
            first_ms: 0.0,
            last_ms: 140.0,
            failures: vec![ConnectSample {
                round: 3,
                offset_ms: 60.0,
                outcome: TcpOutcome::HostUnreachable.into(),
                latency_ms: 0.7,
                local_port: Some(40313),
                endpoint: Some(sa("10.244.1.9:8443")),
                icmp: Some(ConnectIcmp::new(false, 3, 13, Some(ip("10.244.0.1")))),
            }],
            failures_dropped: 1,
            samples: vec![ConnectSample {
                round: 0,
                offset_ms: 0.0,
                outcome: TcpOutcome::Ok.into(),
                latency_ms: 0.4,
                local_port: Some(40312),
                endpoint: None,
                icmp: None,
            }],
            samples_dropped: 7,
            stopped_early: false,
            chosen: vec![ChosenEndpoint {
                endpoint: sa("10.244.1.9:8443"),
                attempts: 3,
                failed: 2,
            }],
            unattributed: None,
        })),
        Event::Evidence(Evidence::DnsRounds(DnsRoundsEvidence {
            name: "payments".into(),
            mode: DnsSendMode::Parallel.into(),
            timeout_ms: 5000,
            attempts: 2,
            lookups: 200,
            outcomes: BTreeMap::from([(DnsLookupOutcome::Answered.into(), 200)]),
            cut_by_deadline: 0,
            queries: 1203,
            rcodes: BTreeMap::from([(Rcode::NoError.into(), 400), (Rcode::NxDomain.into(), 800)]),
            lost: BTreeMap::from([(RecordType::Aaaa.into(), 3)]),
            stalls: 3,
            latency_ms: Some(LatencySummary {
                p50: 1.2,
                p90: 2.0,
                p99: 5003.1,
                max: 5004.0,
            }),
            stall_samples: vec![DnsLookupSample {
                round: 17,
                offset_ms: 340.0,
                outcome: DnsLookupOutcome::Answered.into(),
                latency_ms: 5003.1,
                queries: 7,
                lost: vec![RecordType::Aaaa.into()],
            }],
            samples: Vec::new(),
            samples_dropped: 200,
            stopped_early: false,
        })),
        Event::Evidence(Evidence::DnsLookup(DnsLookupEvidence {
            name: "client".into(),
            candidates: vec![],
            queries: vec![],
            answered_by: Some("client".into()),
            addresses: vec![ip("10.244.0.13")],
            wasted_queries: 0,
            elapsed_ms: 0.0,
            error: None,
            source: NameSource::Files.into(),
        })),
        Event::Progress(Progress {
            check: CheckKind::Tcp.into(),
            done: 120,
            total: Some(800),
            failed: 3,
        }),
        Event::Armed(Armed {
            capture: true,
            elapsed_ms: 41.5,
        }),
        Event::Released(Released {
            by: ReleaseCause::Go.into(),
            held_ms: 212.25,
        }),
        Event::CheckFinished(CheckFinished {
            check: CheckKind::Tcp.into(),
            status: CheckStatus::Completed.into(),
            elapsed_ms: 3001.5,
            error: None,
        }),
        Event::Done(Done {
            elapsed_ms: 3020.0,
            checks_completed: 8,
            checks_failed: 0,
            checks_skipped: 1,
            deadline_exceeded: false,
        }),
    ]
}

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/events.jsonl");

fn expected_lines() -> Vec<String> {
    samples()
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            encode_line(&Envelope {
                v: PROTOCOL_MAJOR,
                seq: i as u64,
                event,
            })
        })
        .collect()
}

#[test]
fn golden_fixture_matches_the_types() {
    let expected = expected_lines();
    if std::env::var_os("NETDEBUG_BLESS").is_some() {
        std::fs::write(FIXTURE, expected.join("\n") + "\n").unwrap();
    }
    let golden = std::fs::read_to_string(FIXTURE).unwrap();
    let golden: Vec<&str> = golden.lines().collect();
    assert_eq!(golden.len(), expected.len(), "one golden line per sample");
    for (i, (g, e)) in golden.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "line {i} differs: the wire format changed");
        let Decoded::Event(env) = decode_line(g).unwrap() else {
            panic!("line {i} decoded as unknown")
        };
        assert_eq!(env.seq, i as u64);
        assert_eq!(env.event, samples()[i], "line {i} decodes to its sample");
    }
}

#[test]
fn every_event_type_and_evidence_kind_has_a_golden_line() {
    let golden = std::fs::read_to_string(FIXTURE).unwrap();
    let mut types = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for line in golden.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        types.insert(v["type"].as_str().unwrap().to_string());
        if let Some(k) = v["data"]["kind"].as_str() {
            kinds.insert(k.to_string());
        }
    }
    for t in [
        "hello",
        "check_started",
        "evidence",
        "skipped",
        "pcap_chunk",
        "check_finished",
        "progress",
        "done",
    ] {
        assert!(types.contains(t), "no golden line of type {t}");
    }
    for k in KNOWN_KINDS {
        assert!(kinds.contains(*k), "no golden line of evidence kind {k}");
    }
}

#[test]
fn unknown_event_type_of_known_major_is_ignored() {
    let d = decode_line(r#"{"v":1,"seq":7,"type":"flow_sample","data":{"x":1}}"#).unwrap();
    assert_eq!(
        d,
        Decoded::Unknown {
            seq: 7,
            event_type: "flow_sample".into()
        }
    );
}

#[test]
fn unknown_evidence_kind_is_ignored() {
    let d =
        decode_line(r#"{"v":1,"seq":3,"type":"evidence","data":{"kind":"quic","rtt":1}}"#).unwrap();
    assert_eq!(d.seq(), 3);
    assert!(matches!(d, Decoded::Unknown { event_type, .. } if event_type == "evidence/quic"));
}

#[test]
fn unknown_fields_from_a_newer_probe_are_ignored() {
    let line = r#"{"v":1,"seq":9,"type":"evidence","data":{"kind":"tcp","target":"t","address":"10.1.2.3:80","outcome":"ok","latency_ms":1.5,"tcp_fastopen":true},"trace_id":"abc"}"#;
    let Decoded::Event(env) = decode_line(line).unwrap() else {
        panic!("should decode")
    };
    let Event::Evidence(Evidence::Tcp(t)) = env.event else {
        panic!("tcp evidence")
    };
    assert_eq!(t.outcome, TcpOutcome::Ok);
    assert_eq!(t.local, None);
}

#[test]
fn unknown_major_is_a_clear_error() {
    let err = decode_line(r#"{"v":2,"seq":0,"type":"hello","data":{}}"#).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::UnsupportedMajor {
            found: 2,
            expected: 1
        }
    ));
    assert!(err.to_string().contains("protocol version 2"), "{err}");
}

#[test]
fn garbage_and_half_lines_are_errors_not_panics() {
    assert!(matches!(
        decode_line("Error: container not found"),
        Err(DecodeError::NotJson(_))
    ));
    assert!(matches!(
        decode_line(r#"{"v":1,"seq":0,"type":"hel"#),
        Err(DecodeError::NotJson(_))
    ));
    assert!(matches!(
        decode_line(r#"{"seq":0,"type":"hello"}"#),
        Err(DecodeError::MissingField("v"))
    ));
    let err =
        decode_line(r#"{"v":1,"seq":4,"type":"done","data":{"elapsed_ms":"soon"}}"#).unwrap_err();
    assert!(
        matches!(err, DecodeError::Malformed { seq: 4, .. }),
        "{err}"
    );
}

#[test]
fn plan_round_trips_and_defaults_apply() {
    let plan =
        Plan::from_json(r#"{"v":1,"targets":[{"label":"db","host":"db.shop","port":5432}]}"#)
            .unwrap();
    assert_eq!(plan.deadline_ms, 15_000);
    assert_eq!(plan.dns.resolv_conf, "/etc/resolv.conf");
    assert_eq!(plan.targets[0].role, TargetRole::Direct);
    assert!(plan.effective_checks().contains(&CheckKind::Tcp));
    assert!(!plan.effective_checks().contains(&CheckKind::Capture));
    let again = Plan::from_json(&serde_json::to_string(&plan).unwrap()).unwrap();
    assert_eq!(plan, again);
}

/// Minor 3: a plan may ask for the tunnel; one that does not (an older client's) has none.
#[test]
fn plan_tunnel_defaults_and_round_trips() {
    let plan =
        Plan::from_json(r#"{"v":1,"tunnel":{"port":50000,"token":"abcdefghijklmnop"}}"#).unwrap();
    let tunnel = plan.tunnel.clone().expect("tunnel");
    assert_eq!(tunnel.port, 50000);
    assert_eq!(tunnel.linger_ms, DEFAULT_TUNNEL_LINGER_MS);
    assert_eq!(
        Plan::from_json(&serde_json::to_string(&plan).unwrap()).unwrap(),
        plan
    );
    let older = Plan::from_json(r#"{"v":1}"#).unwrap();
    assert_eq!(older.tunnel, None);
    assert!(!serde_json::to_string(&older).unwrap().contains("tunnel"));
}

/// Minor 4: a peer plan and a control channel round-trip; an older client's plan has neither.
#[test]
fn plan_peer_and_control_round_trip() {
    let plan = Plan::from_json(
        r#"{"v":1,"peer":{"sources":["10.244.1.5"],"ports":[8080]},"control":{"via":"stdin"}}"#,
    )
    .unwrap();
    let peer = plan.peer.clone().expect("peer");
    assert_eq!(peer.sources, vec![ip("10.244.1.5")]);
    assert_eq!(peer.ports, vec![8080]);
    let control = plan.control.clone().expect("control");
    assert_eq!(control.via, ControlVia::Stdin);
    assert_eq!(control.hold_ms, None);
    assert_eq!(
        Plan::from_json(&serde_json::to_string(&plan).unwrap()).unwrap(),
        plan
    );
    let older = serde_json::to_string(&Plan::from_json(r#"{"v":1}"#).unwrap()).unwrap();
    assert!(!older.contains("peer") && !older.contains("control"));
}

#[test]
fn bad_plans_name_the_fault() {
    let cases = [
        (r#"{"v":2}"#, "protocol version 2"),
        (r#"{"v":1,"deadline_ms":0}"#, "deadline_ms 0"),
        (
            r#"{"v":1,"targets":[{"label":"x","host":"a b","port":1}]}"#,
            "host `a b` is not an IP address or a DNS name",
        ),
        (
            r#"{"v":1,"targets":[{"label":"x","host":"10.0.0.1","port":0}]}"#,
            "port 0",
        ),
        (
            r#"{"v":1,"capture":{"max_duration_ms":0,"max_packets":1,"max_bytes":1}}"#,
            "greater than zero",
        ),
        (
            r#"{"v":1,"capture":{"max_duration_ms":1,"max_packets":1,"max_bytes":1,"snaplen":1}}"#,
            "snaplen 1",
        ),
        (
            r#"{"v":1,"dns":{"names":["10.0.0.1"]}}"#,
            "is an IP address",
        ),
        (r#"{"v":1,"rounds":{"repeat":0}}"#, "rounds.repeat 0"),
        (
            r#"{"v":1,"rounds":{"repeat":5,"rate":501}}"#,
            "rounds.rate 501",
        ),
        (r#"{"v":1,"rounds":{"repeat":5,"rate":0}}"#, "rounds.rate 0"),
        (
            r#"{"v":1,"rounds":{"repeat":5,"for_ms":0}}"#,
            "rounds.for_ms",
        ),
        (
            r#"{"v":1,"tunnel":{"port":0,"token":"abcdefghijklmnop"}}"#,
            "tunnel.port",
        ),
        (
            r#"{"v":1,"tunnel":{"port":50000,"token":"short"}}"#,
            "tunnel.token",
        ),
        (
            r#"{"v":1,"tunnel":{"port":50000,"token":"abcdefgh/ijklmnop"}}"#,
            "tunnel.token",
        ),
        (
            r#"{"v":1,"tunnel":{"port":50000,"token":"abcdefghijklmnop","linger_ms":10001}}"#,
            "tunnel.linger_ms 10001",
        ),
        (
            r#"{"v":1,"peer":{"sources":[],"ports":[80]}}"#,
            "peer.sources",
        ),
        (
            r#"{"v":1,"peer":{"sources":["10.0.0.1"],"ports":[0]}}"#,
            "peer.ports",
        ),
        (
            r#"{"v":1,"control":{"via":"tunnel"}}"#,
            "needs the plan's `tunnel`",
        ),
        (
            r#"{"v":1,"control":{"via":"pigeon"}}"#,
            "control.via `pigeon`",
        ),
        (
            r#"{"v":1,"control":{"via":"stdin","hold_ms":60001}}"#,
            "control.hold_ms",
        ),
    ];
    for (json, needle) in cases {
        let err = Plan::from_json(json).unwrap_err().to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
}

/// The compatibility promise: a line from a newer probe with a check, an outcome or an enum
/// value this version does not know is kept (decoded, its text preserved), not dropped.
#[test]
fn older_reader_keeps_lines_with_unknown_check_outcome_and_enum_values() {
    let started =
        r#"{"v":1,"seq":1,"type":"check_started","data":{"check":"quic","variant":"zero_rtt"}}"#;
    let Decoded::Event(env) = decode_line(started).unwrap() else {
        panic!("an unknown check name must not drop the line")
    };
    let Event::CheckStarted(s) = &env.event else {
        panic!("check_started")
    };
    assert_eq!(s.check, Open::Unknown("quic".into()));
    assert_eq!(s.variant, Some(Open::Unknown("zero_rtt".into())));
    assert_eq!(encode_line(&env), started, "re-encodes to the same text");

    let tcp = r#"{"v":1,"seq":2,"type":"evidence","data":{"kind":"tcp","target":"t","address":"10.1.2.3:80","role":"gateway","outcome":"reset_by_middlebox","latency_ms":1.5}}"#;
    let Decoded::Event(env) = decode_line(tcp).unwrap() else {
        panic!("an unknown outcome must not drop the line")
    };
    let Event::Evidence(Evidence::Tcp(t)) = env.event else {
        panic!("tcp evidence")
    };
    assert_eq!(t.outcome, Open::Unknown("reset_by_middlebox".into()));
    assert_eq!(t.outcome.known(), None);
    assert_eq!(t.role.as_str(), "gateway");

    let route = r#"{"v":1,"seq":3,"type":"evidence","data":{"kind":"route","target":"t","destination":"10.1.2.3","outcome":{"result":"found","table":254,"route_type":"unicast","neighbor":{"address":"10.1.2.1","state":"ARCHIVED"}}}}"#;
    let Decoded::Event(env) = decode_line(route).unwrap() else {
        panic!("an unknown enum value must not drop the line")
    };
    let Event::Evidence(Evidence::Route(r)) = env.event else {
        panic!("route evidence")
    };
    assert_eq!(r.role, TargetRole::Direct, "a probe that predates roles");
    let RouteOutcome::Found(info) = r.outcome else {
        panic!("found")
    };
    assert_eq!(info.neighbor.unwrap().state.as_str(), "ARCHIVED");

    let finished = r#"{"v":1,"seq":4,"type":"check_finished","data":{"check":"tcp","status":"paused","elapsed_ms":1.0}}"#;
    let Decoded::Event(env) = decode_line(finished).unwrap() else {
        panic!("an unknown status must not drop the line")
    };
    let Event::CheckFinished(f) = env.event else {
        panic!("check_finished")
    };
    assert_eq!(f.check, CheckKind::Tcp);
    assert_eq!(f.status.as_str(), "paused");
}

#[test]
fn plan_with_a_check_this_probe_does_not_know_runs_the_others() {
    let plan = Plan::from_json(r#"{"v":1,"checks":["tcp","quic"]}"#).unwrap();
    assert_eq!(plan.effective_checks(), vec![CheckKind::Tcp]);
    assert_eq!(plan.unknown_checks(), vec!["quic"]);
}

#[test]
fn a_peers_default_checks_make_no_traffic() {
    let plan = Plan::from_json(
        r#"{"v":1,"peer":{"sources":["10.0.0.1"],"ports":[8080]},"capture":{"max_duration_ms":1000,"max_packets":10,"max_bytes":1000},"mtu":{}}"#,
    )
    .unwrap();
    let checks = plan.effective_checks();
    assert!(checks.contains(&CheckKind::Capture), "{checks:?}");
    assert!(checks.contains(&CheckKind::Sockets), "{checks:?}");
    for traffic in [CheckKind::Dns, CheckKind::Tcp, CheckKind::Mtu] {
        assert!(!checks.contains(&traffic), "{checks:?}");
    }
    // Checks the plan names are run as named, peer or not.
    let named =
        Plan::from_json(r#"{"v":1,"peer":{"sources":["10.0.0.1"],"ports":[1]},"checks":["tcp"]}"#)
            .unwrap();
    assert_eq!(named.effective_checks(), vec![CheckKind::Tcp]);
}

#[test]
fn registry_describes_every_check_once() {
    for kind in CheckKind::ALL {
        let info = kind.info();
        assert!(!info.evidence.is_empty(), "{kind} emits no evidence kind");
        assert_eq!(kind.as_str().parse::<CheckKind>().unwrap(), *kind);
    }
    let defaults: Vec<CheckKind> = CheckKind::defaults().collect();
    assert!(defaults.contains(&CheckKind::Tcp));
    assert!(!defaults.contains(&CheckKind::Capture));
    assert_eq!(
        CheckKind::Capture.info().privilege,
        Some(Capability::NetRaw)
    );
    assert_eq!(
        <TcpEvidence as EvidenceType>::CHECK,
        CheckKind::Tcp,
        "evidence type to check"
    );
    assert_eq!(<CaptureSummary as EvidenceType>::KIND, "capture_summary");
}
