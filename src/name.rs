//! Validation of certificate names, DNS names, e-mail addresses and SAN arguments.

use std::net::IpAddr;

use crate::{Error, Result};

/// Longest accepted name, in characters (X.520 `ub-common-name`).
pub const MAX_NAME_CHARS: usize = 64;
/// Longest accepted name in UTF-8 bytes: `issued/NAME.crt` must fit a 255-byte file name.
pub const MAX_NAME_BYTES: usize = 200;

/// Checks a certificate name (the CN, and the file name of its public mirror).
///
/// Rules: not empty, at most 64 characters, no control characters, no `/` or `\`, does not
/// start with `.` or `-`, no leading or trailing white space.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad(&format!("it is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.len() > MAX_NAME_BYTES {
        return bad(&format!(
            "it is longer than {MAX_NAME_BYTES} bytes in UTF-8 (it names files too)"
        ));
    }
    if name.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("it contains '/' or '\\'");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("it starts with '.' or '-'");
    }
    if name.trim() != name {
        return bad("it starts or ends with white space");
    }
    Ok(())
}

/// Checks a DNS name for a server certificate's SAN (RFC 5280 §4.2.1.6, RFC 1034 preferred
/// syntax): letters, digits and hyphens in labels of 1–63 characters, no leading or trailing
/// hyphen, at most 253 characters, at least two labels. A leading `*.` wildcard label is allowed.
pub fn validate_dns_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: format!("not a valid DNS name: {reason}"),
        })
    };
    let host = name.strip_prefix("*.").unwrap_or(name);
    if host.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 && name.starts_with("*.") {
        return bad("a wildcard needs at least two labels after '*.'");
    }
    for label in &labels {
        if label.is_empty() {
            return bad("it has an empty label (two dots, or a leading or trailing dot)");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad(
                "only letters, digits, '-' and '.' are allowed (use punycode for international names)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("the last label is all digits (an IP address belongs in --san IP:…)");
    }
    Ok(())
}

/// Checks an e-mail address for an rfc822Name SAN: ASCII, one `@`, a non-empty local part
/// without spaces, a valid DNS domain.
pub fn validate_email(addr: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::input(
            "e-mail address",
            format!("{addr:?}: {reason}"),
        ))
    };
    let Some((local, domain)) = addr.split_once('@') else {
        return bad("it has no '@'");
    };
    if local.is_empty() || domain.contains('@') {
        return bad("it needs exactly one '@' with text before it");
    }
    if !addr.is_ascii()
        || local
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'<' || b == b'>')
    {
        return bad("the local part must be printable ASCII without spaces");
    }
    validate_dns_name(domain).or_else(|_| bad("the domain is not a valid DNS name"))
}

/// A subject alternative name requested on the command line (`DNS:…`, `IP:…`, `email:…`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum San {
    /// A DNS name.
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
    /// An e-mail address (rfc822Name).
    Email(String),
}

impl San {
    /// Parses `DNS:name`, `IP:addr` or `email:addr` (type case-insensitive), validating the value.
    pub fn parse(s: &str) -> Result<San> {
        let Some((ty, value)) = s.split_once(':') else {
            return Err(Error::input(
                "SAN",
                format!("{s:?}: expected DNS:name, IP:address or email:address"),
            ));
        };
        match ty.to_ascii_lowercase().as_str() {
            "dns" => {
                validate_dns_name(value)?;
                Ok(San::Dns(value.to_ascii_lowercase()))
            }
            "ip" => value
                .parse()
                .map(San::Ip)
                .map_err(|_| Error::input("SAN", format!("{s:?}: {value:?} is not an IP address"))),
            "email" => {
                validate_email(value)?;
                Ok(San::Email(value.to_string()))
            }
            _ => Err(Error::input(
                "SAN",
                format!("{s:?}: unknown type {ty:?}; use DNS:, IP: or email:"),
            )),
        }
    }

    /// The kind, as used in profiles (`dns`, `ip`, `email`).
    pub fn kind(&self) -> &'static str {
        match self {
            San::Dns(_) => "dns",
            San::Ip(_) => "ip",
            San::Email(_) => "email",
        }
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(v) => write!(f, "DNS:{v}"),
            San::Ip(v) => write!(f, "IP:{v}"),
            San::Email(v) => write!(f, "email:{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "alice",
            "Alice Smith",
            "vpn.example.com",
            "user_1@corp",
            "Zoë",
        ] {
            validate_name(ok).expect(ok);
        }
        let long = "x".repeat(65);
        for bad in [
            "",
            "a/b",
            "a\\b",
            "a\nb",
            "..",
            ".hidden",
            "-rf",
            " x",
            "x ",
            "a\u{7}",
            long.as_str(),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_names() {
        for ok in [
            "vpn.example.com",
            "*.example.com",
            "a-b.c0.io",
            "xn--bcher-kva.example",
        ] {
            validate_dns_name(ok).expect(ok);
        }
        for bad in [
            "",
            "localhost-",
            "a..b",
            ".a.b",
            "a.b.",
            "-a.b",
            "a_b.com",
            "1.2.3.4",
            "*.com",
            "a b.com",
            "ü.com",
        ] {
            assert!(validate_dns_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sans() {
        assert_eq!(
            San::parse("DNS:Vpn.Example.com").expect("dns"),
            San::Dns("vpn.example.com".into())
        );
        assert!(matches!(San::parse("ip:10.0.0.1"), Ok(San::Ip(_))));
        assert!(matches!(
            San::parse("email:a@example.com"),
            Ok(San::Email(_))
        ));
        for bad in [
            "vpn",
            "URI:x",
            "IP:300.1.1.1",
            "email:nope",
            "DNS:bad_name.com",
        ] {
            assert!(San::parse(bad).is_err(), "{bad}");
        }
    }
}
