//! The server's chain as facts: each certificate parsed (x509-parser, no verification), whether
//! the leaf's SANs cover the name used (RFC 6125 wildcards), and one verification verdict that
//! combines validity, the name and rustls-webpki's answer against the bundled public roots.

use std::net::IpAddr;

use protocol::{CertificateInfo, Verification};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// One certificate as sent: its facts, and what the verdict needs besides.
pub struct Parsed {
    pub info: CertificateInfo,
    /// Subject and issuer are the same name (a self-issued certificate).
    pub self_issued: bool,
}

/// Parses the chain, leaf first; a certificate that does not parse is left out and named in
/// the returned problems.
pub fn parse_chain(chain: &[Vec<u8>]) -> (Vec<Parsed>, Vec<String>) {
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    for (i, der) in chain.iter().enumerate() {
        match parse(der) {
            Ok(p) => parsed.push(p),
            Err(e) => problems.push(format!("certificate {i} of the chain does not parse: {e}")),
        }
    }
    (parsed, problems)
}

pub fn parse(der: &[u8]) -> Result<Parsed, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(dns) => sans.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        sans.push(format!("IP:{ip}"));
                    }
                }
                _ => {}
            }
        }
    }
    let (key_type, key_bits) = key(&cert);
    Ok(Parsed {
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        info: CertificateInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            key_type,
            key_bits,
            der_bytes: u32::try_from(der.len()).unwrap_or(u32::MAX),
        },
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The key's algorithm and size in bits.
fn key(cert: &X509Certificate<'_>) -> (String, Option<u32>) {
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => {
            let bits = match spki.parsed() {
                Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(bit_length(rsa.modulus)),
                _ => None,
            };
            ("rsa".into(), bits)
        }
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let bits = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => Some(256),
                Some("1.3.132.0.34") => Some(384),
                Some("1.3.132.0.35") => Some(521),
                _ => None,
            };
            ("ecdsa".into(), bits)
        }
        "1.3.101.112" => ("ed25519".into(), Some(256)),
        "1.3.101.113" => ("ed448".into(), Some(456)),
        _ => (oid, None),
    }
}

/// Bits of a big-endian unsigned integer (leading zero bytes and bits not counted).
fn bit_length(be: &[u8]) -> u32 {
    let mut digits = be.iter().skip_while(|b| **b == 0);
    match digits.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros()) + 8 * digits.count() as u32,
    }
}

/// Whether `sans` (as in [`CertificateInfo::sans`]) cover `name`: an IP address against the
/// `IP:` entries, a DNS name against the DNS entries, case-insensitively, where a wildcard
/// stands for exactly one whole leftmost label (RFC 6125 6.4.3: `*.example.com` covers
/// `a.example.com`, not `example.com` nor `a.b.example.com`).
pub fn name_covered(sans: &[String], name: &str) -> bool {
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return sans
            .iter()
            .filter_map(|s| s.strip_prefix("IP:"))
            .any(|s| s.parse::<IpAddr>() == Ok(ip));
    }
    let name = normalise(name);
    sans.iter()
        .filter(|s| !s.starts_with("IP:"))
        .any(|san| dns_matches(&normalise(san), &name))
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn dns_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        // At least two labels under the wildcard: `*.com` covers nothing.
        Some(parent) if parent.contains('.') => match name.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == parent,
            None => false,
        },
        Some(_) => false,
        None => !pattern.is_empty() && pattern == name,
    }
}

/// What rustls-webpki said about the chain against the public roots, for the name.
pub type WebPki = Result<(), rustls::Error>;

/// One verdict, most specific first: validity in time (the leaf, then the rest of the chain as
/// sent), then the name, then the chain's anchor. A private CA is its own verdict, not a
/// failure. The message says what the verdict rests on.
pub fn verdict(
    chain: &[Parsed],
    name_covered: bool,
    webpki: &WebPki,
    now: i64,
) -> (Verification, Option<String>) {
    let Some(leaf) = chain.first() else {
        return (
            Verification::Invalid,
            Some("no certificate could be parsed".into()),
        );
    };
    for (i, cert) in chain.iter().enumerate() {
        let which = if i == 0 {
            "the leaf".to_string()
        } else {
            format!("chain certificate {i} ({})", cert.info.subject)
        };
        if now > cert.info.not_after {
            return (
                Verification::Expired,
                Some(format!("{which} expired at unix {}", cert.info.not_after)),
            );
        }
        if now < cert.info.not_before {
            return (
                Verification::NotYetValid,
                Some(format!(
                    "{which} is valid from unix {}",
                    cert.info.not_before
                )),
            );
        }
    }
    if !name_covered {
        return (Verification::NameMismatch, None);
    }
    use rustls::CertificateError as C;
    match webpki {
        Ok(()) => (Verification::Trusted, None),
        // Whatever webpki objects to first (an unknown issuer, or `CaUsedAsEndEntity` for the
        // CA:TRUE that `openssl req -x509` puts in), one certificate that is its own issuer
        // is self-signed.
        Err(_) if chain.len() == 1 && leaf.self_issued => (Verification::SelfSigned, None),
        Err(rustls::Error::InvalidCertificate(e)) => match e {
            C::UnknownIssuer => {
                let anchor = chain.last().unwrap_or(leaf);
                (
                    Verification::PrivateCa,
                    Some(format!("issued by a private CA: {}", anchor.info.issuer)),
                )
            }
            C::Expired | C::ExpiredContext { .. } => (Verification::Expired, Some(e.to_string())),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                (Verification::NotYetValid, Some(e.to_string()))
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                (Verification::NameMismatch, Some(e.to_string()))
            }
            other => (Verification::Invalid, Some(other.to_string())),
        },
        Err(other) => (Verification::Invalid, Some(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sans(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards_cover_one_leftmost_label() {
        let s = sans(&["*.example.com", "api.test", "IP:10.0.0.1"]);
        assert!(name_covered(&s, "a.example.com"));
        assert!(name_covered(&s, "A.Example.COM."));
        assert!(!name_covered(&s, "example.com"));
        assert!(!name_covered(&s, "a.b.example.com"));
        assert!(name_covered(&s, "api.test"));
        assert!(!name_covered(&s, "x.api.test"));
        assert!(name_covered(&s, "10.0.0.1"));
        assert!(!name_covered(&s, "10.0.0.2"));
        assert!(!name_covered(&sans(&["*.com"]), "example.com"));
        assert!(!name_covered(&[], "a"));
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[]), 0);
    }
}
