//! SOURCE and --to parsing: every accepted form, and a specific reason for each malformed one.

mod resolve_parse {
    use kubectl_netdebug::resolve::{
        parse_destination, parse_source, DestSpec, PortRef, SourceKind, SourceSpec,
    };

    fn src(kind: SourceKind, name: &str) -> SourceSpec {
        SourceSpec {
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn source_forms() {
        let cases = [
            ("pod/web-1", SourceKind::Pod),
            ("po/web-1", SourceKind::Pod),
            ("pods/web-1", SourceKind::Pod),
            ("web-1", SourceKind::Pod),
            ("deploy/web-1", SourceKind::Deployment),
            ("deployment/web-1", SourceKind::Deployment),
            ("deployments/web-1", SourceKind::Deployment),
            ("sts/web-1", SourceKind::StatefulSet),
            ("statefulset/web-1", SourceKind::StatefulSet),
            ("ds/web-1", SourceKind::DaemonSet),
            ("daemonset/web-1", SourceKind::DaemonSet),
            ("rs/web-1", SourceKind::ReplicaSet),
            ("replicaset/web-1", SourceKind::ReplicaSet),
            ("job/web-1", SourceKind::Job),
        ];
        for (input, kind) in cases {
            assert_eq!(parse_source(input).unwrap(), src(kind, "web-1"), "{input}");
        }
        assert_eq!(
            parse_source("deploy/checkout").unwrap().to_string(),
            "deploy/checkout"
        );
        // Pod names are DNS subdomains: dots are fine.
        assert_eq!(
            parse_source("pod/a.b").unwrap(),
            src(SourceKind::Pod, "a.b")
        );
    }

    #[test]
    fn source_errors_are_specific() {
        let err = |s: &str| parse_source(s).unwrap_err().to_string();
        assert_eq!(
            err("cronjob/x"),
            "invalid SOURCE `cronjob/x`: unknown kind `cronjob`; expected pod/NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME, job/NAME or a bare pod name"
        );
        assert!(err("svc/payments").contains("a Service cannot be a source"));
        assert_eq!(err("pod/"), "invalid SOURCE `pod/`: no name after `pod/`");
        assert!(err("").contains("SOURCE is empty"));
        assert!(err("pod/Web").contains("may only contain lowercase letters"));
        assert!(err("pod/web_1").contains("may only contain lowercase letters"));
        assert!(err("pod/-web").contains("must start and end with a letter or digit"));
        assert!(err(&format!("pod/{}", "a".repeat(254))).contains("longer than 253"));
    }

    #[test]
    fn service_forms() {
        let svc = |name: &str, ns: Option<&str>, port: Option<PortRef>| DestSpec::Service {
            name: name.into(),
            namespace: ns.map(Into::into),
            port,
        };
        assert_eq!(
            parse_destination("svc/payments").unwrap(),
            svc("payments", None, None)
        );
        assert_eq!(
            parse_destination("service/payments:443").unwrap(),
            svc("payments", None, Some(PortRef::Number(443)))
        );
        assert_eq!(
            parse_destination("services/payments.shop:https").unwrap(),
            svc(
                "payments",
                Some("shop"),
                Some(PortRef::Name("https".into()))
            )
        );
        assert_eq!(
            parse_destination("svc/payments.shop.svc.cluster.local:443").unwrap(),
            svc("payments", Some("shop"), Some(PortRef::Number(443)))
        );
        assert_eq!(
            parse_destination("svc/payments.shop.svc").unwrap(),
            svc("payments", Some("shop"), None)
        );
    }

    #[test]
    fn pod_and_address_forms() {
        assert_eq!(
            parse_destination("pod/web-1.shop:8080").unwrap(),
            DestSpec::Pod {
                name: "web-1".into(),
                namespace: Some("shop".into()),
                port: Some(8080)
            }
        );
        assert_eq!(
            parse_destination("po/web-1").unwrap(),
            DestSpec::Pod {
                name: "web-1".into(),
                namespace: None,
                port: None
            }
        );
        let addr = |h: &str, p: u16| DestSpec::Address {
            host: h.into(),
            port: p,
        };
        assert_eq!(
            parse_destination("10.244.2.37:5432").unwrap(),
            addr("10.244.2.37", 5432)
        );
        assert_eq!(
            parse_destination("[fd00:199::5]:443").unwrap(),
            addr("fd00:199::5", 443)
        );
        assert_eq!(
            parse_destination("db.example.com:5432").unwrap(),
            addr("db.example.com", 5432)
        );
        assert_eq!(
            parse_destination("localhost:1").unwrap(),
            addr("localhost", 1)
        );
        assert_eq!(parse_destination("h:65535").unwrap(), addr("h", 65535));
    }

    #[test]
    fn destination_errors_are_specific() {
        let err = |s: &str| parse_destination(s).unwrap_err().to_string();
        assert_eq!(
            err("10.0.0.1"),
            "invalid --to `10.0.0.1`: missing port: use 10.0.0.1:PORT"
        );
        assert_eq!(
            err("fd00::1"),
            "invalid --to `fd00::1`: missing port: an IPv6 address takes its port after brackets: [fd00::1]:PORT"
        );
        assert_eq!(
            err("db.example.com"),
            "invalid --to `db.example.com`: missing port: use db.example.com:PORT (or svc/db.example.com for a Service)"
        );
        assert_eq!(
            err("10.0.0.1:0"),
            "invalid --to `10.0.0.1:0`: port 0 is not a port (use 1-65535)"
        );
        assert_eq!(
            err("10.0.0.1:70000"),
            "invalid --to `10.0.0.1:70000`: port 70000 is out of range (use 1-65535)"
        );
        assert_eq!(
            err("svc/x:99999"),
            "invalid --to `svc/x:99999`: port 99999 is out of range (use 1-65535)"
        );
        assert_eq!(
            err("host:abc"),
            "invalid --to `host:abc`: port `abc` is not a number"
        );
        assert_eq!(
            err("svc/x:"),
            "invalid --to `svc/x:`: the port after `:` is empty"
        );
        assert_eq!(err("svc/"), "invalid --to `svc/`: the name is empty");
        assert_eq!(err("svc/:80"), "invalid --to `svc/:80`: the name is empty");
        assert!(err("svc/Payments").contains("Service name `Payments`"));
        assert!(err("svc/1payments").contains("must start with a lowercase letter"));
        assert!(err("svc/x:Https_port").contains("neither a number nor a port name"));
        assert!(err("svc/x.Shop").contains("namespace `Shop`"));
        assert!(err("svc/a.b.c").contains("is not NAME or NAME.NAMESPACE"));
        assert!(err("pod/x:http").contains("port `http` is not a number"));
        assert!(err("deploy/x").contains("is not a destination"));
        assert!(err("foo/x").contains("unknown kind `foo`"));
        assert_eq!(
            err("fd00::1:80"),
            "invalid --to `fd00::1:80`: missing port: an IPv6 address takes its port after brackets: [fd00::1:80]:PORT"
        );
        assert!(err("[fd00::1]").contains("missing port: use [fd00::1]:PORT"));
        assert_eq!(
            err("fd00::zz:80"),
            "invalid --to `fd00::zz:80`: an IPv6 address with a port needs brackets: [ADDRESS]:PORT"
        );
        assert!(err("[not-v6]:80").contains("`not-v6` is not an IPv6 address"));
        assert!(err("bad host!:80").contains("is not an IP address or a DNS name"));
        assert_eq!(
            err("10.0.0.300:80"),
            "invalid --to `10.0.0.300:80`: `10.0.0.300` is not a valid IPv4 address"
        );
        assert_eq!(
            err(":80"),
            "invalid --to `:80`: the host before `:` is empty"
        );
        assert!(err("").contains("it is empty"));
    }
}
