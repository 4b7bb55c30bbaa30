//! The application layer as the user asks for it: `--to http://svc/web/healthz`,
//! `--to https://svc/api:8443/ready`, `--to https://db.example.com/`, or `--http [PATH]` /
//! `--tls` on any `--to`; and the probe's [`AppPlan`] once the name to use is known.
//!
//! The URLs are parsed here rather than with the `url` crate on purpose: `svc/NAME` and
//! `pod/NAME` are not URL hosts (`http://svc/web/x` is a Service `web` and the path `/x`, where
//! a URL parser sees the host `svc` and the path `/web/x`).

use protocol::{AppPlan, HttpPlan, TlsPlan, DEFAULT_APP_TIMEOUT_MS, DEFAULT_MAX_RESPONSE_BYTES};

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The port a URL without one means.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// What to do above the connect, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAsk {
    /// A TLS handshake first.
    pub tls: bool,
    /// The request path, when an HTTP request is asked for.
    pub http_path: Option<String>,
}

/// A `--to` split into what the destination parser takes and what the URL asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTo {
    /// `svc/web:80`, `pod/x:8080`, `db.example.com:443`: without scheme and path, with the
    /// scheme's default port where an address had none.
    pub destination: String,
    pub url: Option<(Scheme, String)>,
}

/// Split `--to`. Text without `://` is returned as it is.
pub fn split_to(to: &str) -> Result<SplitTo, String> {
    let text = to.trim();
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok(SplitTo {
            destination: text.to_string(),
            url: None,
        });
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => {
            return Err(format!(
                "--to {text}: scheme `{other}://` is not supported (http:// or https://; for a \
                 plain TCP check give svc/NAME, pod/NAME or HOST:PORT)"
            ))
        }
    };
    if rest.contains('#') {
        return Err(format!(
            "--to {text}: a fragment (#...) is never sent to the server; leave it out"
        ));
    }
    // The object: `svc/NAME[.NS][:PORT]`, `pod/...`, or `HOST[:PORT]`; the path after it.
    let kind_len = rest
        .split_once('/')
        .filter(|(kind, _)| is_kind(kind))
        .map(|(kind, _)| kind.len() + 1)
        .unwrap_or(0);
    let (object, path) = match rest[kind_len..].find(['/', '?']) {
        Some(i) => (&rest[..kind_len + i], &rest[kind_len + i..]),
        None => (rest, ""),
    };
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    check_path(&path).map_err(|why| format!("--to {text}: {why}"))?;
    let host = &object[kind_len..];
    if host.contains('@') {
        return Err(format!(
            "--to {text}: credentials in the URL (user@host) are not sent by the probe and would \
             end up in the pod spec; leave them out"
        ));
    }
    if host.is_empty() {
        return Err(format!(
            "--to {text}: no host after {}://",
            scheme_name(scheme)
        ));
    }
    let destination = if kind_len > 0 || has_port(host) {
        object.to_string()
    } else if host.contains(':') && !host.starts_with('[') {
        // A bare IPv6 literal: brackets, then the port.
        format!("[{host}]:{}", scheme.default_port())
    } else {
        format!("{host}:{}", scheme.default_port())
    };
    Ok(SplitTo {
        destination,
        url: Some((scheme, path)),
    })
}

fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Http => "http",
        Scheme::Https => "https",
    }
}

/// A kind prefix of `--to` (`svc/`, `pod/` and their other spellings).
fn is_kind(kind: &str) -> bool {
    matches!(
        kind.to_ascii_lowercase().as_str(),
        "svc" | "service" | "services" | "pod" | "po" | "pods"
    )
}

/// `host:port` or `[v6]:port`, not a bare name or a bare IPv6 literal.
fn has_port(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").is_some(),
        None => host.matches(':').count() == 1,
    }
}

/// A request target the probe can send as it is: from `/`, printable, no spaces.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("the path `{path}` must start with /"));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "the path `{path}` holds {c:?}: encode spaces and other characters (%20)"
        ));
    }
    Ok(())
}

/// The ask from the URL and the flags (`--http [PATH]`, `--tls`); None when neither asks.
pub fn ask(
    url: Option<&(Scheme, String)>,
    http_flag: Option<&str>,
    tls_flag: bool,
) -> Result<Option<AppAsk>, String> {
    if let Some((scheme, path)) = url {
        if let Some(p) = http_flag {
            return Err(format!(
                "--http {p} and a URL in --to both give the path; keep one (the URL's is {path})"
            ));
        }
        if tls_flag && *scheme == Scheme::Http {
            return Err("--tls with an http:// URL: use https:// for TLS".into());
        }
        return Ok(Some(AppAsk {
            tls: *scheme == Scheme::Https,
            http_path: Some(path.clone()),
        }));
    }
    if let Some(p) = http_flag {
        check_path(p).map_err(|why| format!("--http {p}: {why}"))?;
    }
    Ok((http_flag.is_some() || tls_flag).then(|| AppAsk {
        tls: tls_flag,
        http_path: http_flag.map(str::to_string),
    }))
}

/// The probe's plan for `ask`, with `name` the name the user gave (SNI, the certificate
/// check and the Host header) and `port` the port when one applies to every target (added to
/// Host when it is not the scheme's default).
pub fn app_plan(ask: &AppAsk, name: &str, port: Option<u16>) -> AppPlan {
    let scheme = if ask.tls { Scheme::Https } else { Scheme::Http };
    let host = match port.filter(|p| *p != scheme.default_port()) {
        Some(p) if name.contains(':') => format!("[{name}]:{p}"),
        Some(p) => format!("{name}:{p}"),
        None if name.contains(':') => format!("[{name}]"),
        None => name.to_string(),
    };
    AppPlan {
        tls: ask.tls.then(|| TlsPlan {
            server_name: name.to_string(),
            alpn: match ask.http_path {
                Some(_) => vec!["http/1.1".to_string()],
                None => Vec::new(),
            },
        }),
        http: ask.http_path.as_ref().map(|path| HttpPlan {
            path: path.clone(),
            host,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }),
        timeout_ms: DEFAULT_APP_TIMEOUT_MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(to: &str) -> SplitTo {
        split_to(to).unwrap_or_else(|e| panic!("{to}: {e}"))
    }

    #[test]
    fn urls_split_into_destination_and_path() {
        let s = split("http://svc/web/healthz");
        assert_eq!(s.destination, "svc/web");
        assert_eq!(s.url, Some((Scheme::Http, "/healthz".into())));
        let s = split("https://svc/api.shop:8443/ready");
        assert_eq!(s.destination, "svc/api.shop:8443");
        assert_eq!(s.url, Some((Scheme::Https, "/ready".into())));
        let s = split("https://db.example.com/");
        assert_eq!(s.destination, "db.example.com:443");
        assert_eq!(s.url, Some((Scheme::Https, "/".into())));
        let s = split("HTTP://10.0.0.5:8080");
        assert_eq!(s.destination, "10.0.0.5:8080");
        assert_eq!(s.url, Some((Scheme::Http, "/".into())));
        let s = split("http://pod/web-1:8080?probe=1");
        assert_eq!(s.destination, "pod/web-1:8080");
        assert_eq!(s.url, Some((Scheme::Http, "/?probe=1".into())));
        let s = split("https://[fd00::1]:8443/x");
        assert_eq!(s.destination, "[fd00::1]:8443");
        assert_eq!(split("http://fd00::1").destination, "[fd00::1]:80");
        assert_eq!(split("svc/web:80").url, None, "no scheme: as it was");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let e = split_to("ftp://svc/web").unwrap_err();
        assert!(e.contains("scheme `ftp://` is not supported"), "{e}");
        let e = split_to("https://admin:secret@db.example.com/").unwrap_err();
        assert!(e.contains("credentials in the URL"), "{e}");
        let e = split_to("http://svc/web/a b").unwrap_err();
        assert!(e.contains("encode spaces"), "{e}");
        let e = split_to("http://svc/web/#top").unwrap_err();
        assert!(e.contains("fragment"), "{e}");
        let e = split_to("https:///x").unwrap_err();
        assert!(e.contains("no host"), "{e}");
    }

    #[test]
    fn flags_and_urls_make_one_ask() {
        let url = (Scheme::Https, "/ready".to_string());
        assert_eq!(
            ask(Some(&url), None, false).unwrap(),
            Some(AppAsk {
                tls: true,
                http_path: Some("/ready".into())
            })
        );
        assert!(ask(Some(&url), Some("/x"), false).is_err());
        let http = (Scheme::Http, "/".to_string());
        assert!(ask(Some(&http), None, true)
            .unwrap_err()
            .contains("use https://"));
        assert_eq!(
            ask(None, None, true).unwrap(),
            Some(AppAsk {
                tls: true,
                http_path: None
            })
        );
        assert!(ask(None, Some("healthz"), false)
            .unwrap_err()
            .contains("must start with /"));
        assert_eq!(ask(None, None, false).unwrap(), None);
    }

    #[test]
    fn the_plan_uses_the_name_given_and_a_non_default_port() {
        let ask = AppAsk {
            tls: true,
            http_path: Some("/ready".into()),
        };
        let plan = app_plan(&ask, "api.shop.svc.cluster.local", Some(8443));
        assert_eq!(
            plan.tls.as_ref().unwrap().server_name,
            "api.shop.svc.cluster.local"
        );
        assert_eq!(plan.tls.as_ref().unwrap().alpn, ["http/1.1"]);
        let http = plan.http.as_ref().unwrap();
        assert_eq!(http.host, "api.shop.svc.cluster.local:8443");
        assert_eq!(http.path, "/ready");
        plan.validate().unwrap();
        let plain = app_plan(
            &AppAsk {
                tls: false,
                http_path: Some("/".into()),
            },
            "web",
            Some(80),
        );
        assert_eq!(plain.http.unwrap().host, "web");
        assert!(plain.tls.is_none());
    }
}
