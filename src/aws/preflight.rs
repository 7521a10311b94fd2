//! What real ACM (and Client VPN) require of an import, checked before anything is sent.
//!
//! The emulators accept much that AWS rejects (moto takes a key that does not match, two
//! certificates in one field, a chain in any order), so vpnca checks every documented rule
//! itself and names the one broken. The rules, and where they come from, are in docs/aws.md.

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::prelude::*;
use zeroize::Zeroizing;

use crate::x509;

/// ACM's limit on the size of the private key PEM, in bytes.
pub const MAX_KEY_PEM_BYTES: usize = 5120;

/// The three fields of an ACM ImportCertificate call, exactly as they would be sent.
pub struct ImportBundle {
    /// The certificate field: one PEM certificate.
    pub certificate: String,
    /// The private key field: an unencrypted PEM key (never logged, zeroized on drop).
    pub private_key: Zeroizing<String>,
    /// The chain field: the issuer, then its issuer, up to the root; never the leaf.
    pub chain: String,
}

impl std::fmt::Debug for ImportBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportBundle")
            .field("certificate", &self.certificate)
            .field("private_key", &"<redacted>")
            .field("chain", &self.chain)
            .finish()
    }
}

/// Which kind of certificate is imported: the endpoint's server certificate, or a client
/// certificate whose chain is the endpoint's client root chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportRole {
    /// `acm import --server`.
    Server,
    /// `acm import --client`.
    Client,
}

impl ImportRole {
    /// `server` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportRole::Server => "server",
            ImportRole::Client => "client",
        }
    }

    /// Parses `server` / `client`.
    pub fn parse(s: &str) -> Option<ImportRole> {
        match s {
            "server" => Some(ImportRole::Server),
            "client" => Some(ImportRole::Client),
            _ => None,
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule's short name (stable, for scripts): `key-matches`, `key-algorithm`,
    /// `key-unencrypted`, `key-size`, `one-certificate`, `chain-order`, `chain-without-leaf`,
    /// `valid-now`, `domain-name`, `clean-pem`.
    pub rule: &'static str,
    /// What is wrong, for humans.
    pub message: String,
    /// Whether `--force` may override it (only the Client VPN key-type rule).
    pub overridable: bool,
}

fn v(rule: &'static str, message: impl Into<String>) -> Violation {
    Violation {
        rule,
        message: message.into(),
        overridable: false,
    }
}

/// Checks an import against every rule; returns all violations (empty: ACM will take it).
pub fn check(bundle: &ImportBundle, role: ImportRole, now: OffsetDateTime) -> Vec<Violation> {
    let mut out = Vec::new();
    for (field, text) in [
        ("certificate", bundle.certificate.as_str()),
        ("private key", bundle.private_key.as_str()),
        ("chain", bundle.chain.as_str()),
    ] {
        if let Some(problem) = pem_problem(text) {
            out.push(v("clean-pem", format!("the {field} PEM {problem}")));
        }
    }
    if bundle.private_key.len() > MAX_KEY_PEM_BYTES {
        out.push(v(
            "key-size",
            format!(
                "the private key PEM is {} bytes; ACM accepts at most {MAX_KEY_PEM_BYTES}",
                bundle.private_key.len()
            ),
        ));
    }

    let cert_blocks = match crate::pem::decode_all(bundle.certificate.as_bytes(), "certificate") {
        Ok(b) => b,
        Err(e) => {
            out.push(v("one-certificate", e.to_string()));
            return out;
        }
    };
    if cert_blocks.len() != 1 || cert_blocks[0].label != "CERTIFICATE" {
        out.push(v(
            "one-certificate",
            format!(
                "the certificate field must hold exactly one CERTIFICATE block; it holds {}",
                describe_blocks(cert_blocks.iter().map(|b| b.label.as_str()))
            ),
        ));
        return out;
    }
    let leaf_der = &cert_blocks[0].der;
    let leaf = match x509::parse_cert(leaf_der, "the certificate") {
        Ok(c) => c,
        Err(e) => {
            out.push(v("one-certificate", e.to_string()));
            return out;
        }
    };

    check_key(bundle, &leaf, &mut out);
    check_algorithm(&leaf, &mut out);
    check_validity("the certificate", &leaf, now, &mut out);
    check_names(&leaf, role, &mut out);
    check_chain(bundle, leaf_der, &leaf, now, &mut out);
    out
}

/// "none", or the number of blocks and their labels.
fn describe_blocks<'a>(labels: impl IntoIterator<Item = &'a str>) -> String {
    let labels: Vec<&str> = labels.into_iter().collect();
    if labels.is_empty() {
        return "none".into();
    }
    format!("{} ({})", labels.len(), labels.join(", "))
}

/// Clean PEM: LF only, 64-column base64 lines, no trailing spaces, nothing outside blocks,
/// a final newline. Returns what is wrong.
fn pem_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    if text.contains('\r') {
        return Some("has CR (Windows) line endings; ACM wants LF".into());
    }
    if !text.ends_with('\n') {
        return Some("does not end with a newline".into());
    }
    let mut in_block = false;
    let mut last_short = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line != line.trim_end() {
            return Some(format!("has trailing whitespace on line {n}"));
        }
        if line.starts_with("-----BEGIN ") && line.ends_with("-----") {
            if in_block {
                return Some(format!("opens a block inside another on line {n}"));
            }
            in_block = true;
            last_short = false;
        } else if line.starts_with("-----END ") && line.ends_with("-----") {
            if !in_block {
                return Some(format!("has an END line without BEGIN on line {n}"));
            }
            in_block = false;
        } else if in_block {
            if last_short {
                return Some(format!(
                    "has a base64 line shorter than 64 columns before line {n} (not the last of its block)"
                ));
            }
            if line.len() > 64 {
                return Some(format!(
                    "has a base64 line of {} columns on line {n}; the limit is 64",
                    line.len()
                ));
            }
            if line.contains(':') {
                return Some(format!(
                    "has a header line on line {n} (an encrypted traditional key?)"
                ));
            }
            last_short = line.len() < 64;
        } else {
            return Some(format!("has text outside the PEM blocks on line {n}"));
        }
    }
    if in_block {
        return Some("ends inside a block (no END line)".into());
    }
    None
}

fn check_key(bundle: &ImportBundle, leaf: &X509Certificate<'_>, out: &mut Vec<Violation>) {
    let blocks = match crate::pem::decode_secret(bundle.private_key.as_bytes(), "private key") {
        Ok(b) => b,
        Err(_) => {
            out.push(v("key-matches", "the private key field is not PEM"));
            return;
        }
    };
    let Some(block) = blocks.first().filter(|_| blocks.len() == 1) else {
        out.push(v(
            "key-matches",
            format!(
                "the private key field must hold exactly one key; it holds {}",
                describe_blocks(blocks.iter().map(|b| b.label.as_str()))
            ),
        ));
        return;
    };
    match block.label.as_str() {
        "ENCRYPTED PRIVATE KEY" => {
            out.push(v(
                "key-unencrypted",
                "the private key is encrypted; ACM needs it unencrypted",
            ));
            return;
        }
        "PRIVATE KEY" => {}
        other => {
            out.push(v(
                "key-matches",
                format!("the private key is a {other:?} block; vpnca sends PKCS#8 (PRIVATE KEY)"),
            ));
            return;
        }
    }
    let matches = x509::key_matches_cert(&block.der, leaf);
    match matches {
        Some(true) => {}
        Some(false) => out.push(v(
            "key-matches",
            "the private key does not belong to the certificate (their public keys differ)",
        )),
        None => out.push(v(
            "key-matches",
            "the private key cannot be read (not an RSA, ECDSA or Ed25519 PKCS#8 key)",
        )),
    }
}

fn check_algorithm(leaf: &X509Certificate<'_>, out: &mut Vec<Violation>) {
    use x509_parser::public_key::PublicKey;
    let what = match leaf.public_key().parsed() {
        Ok(PublicKey::RSA(k)) if matches!(k.key_size(), 1024 | 2048) => return,
        Ok(PublicKey::RSA(k)) => format!("RSA {}-bit", k.key_size()),
        // x509-parser sizes a P-521 point by its 66-byte coordinates.
        Ok(PublicKey::EC(p)) if p.key_size() == 528 => "ECDSA 521-bit".to_string(),
        Ok(PublicKey::EC(p)) => format!("ECDSA {}-bit", p.key_size()),
        _ => match leaf
            .public_key()
            .algorithm
            .algorithm
            .to_id_string()
            .as_str()
        {
            "1.3.101.112" => "Ed25519".to_string(),
            "1.3.101.113" => "Ed448".to_string(),
            other => format!("of algorithm {other}"),
        },
    };
    out.push(Violation {
        rule: "key-algorithm",
        message: format!(
            "the key is {what}; AWS Client VPN accepts only RSA 1024 or 2048-bit keys (ACM would import it, but the endpoint could not use it; --force imports anyway)"
        ),
        overridable: true,
    });
}

fn check_validity(
    what: &str,
    cert: &X509Certificate<'_>,
    now: OffsetDateTime,
    out: &mut Vec<Violation>,
) {
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    if now < nb {
        out.push(v(
            "valid-now",
            format!(
                "{what} is not valid yet (notBefore {})",
                crate::fmt_time(nb)
            ),
        ));
    } else if now > na {
        out.push(v(
            "valid-now",
            format!("{what} has expired (notAfter {})", crate::fmt_time(na)),
        ));
    }
}

fn is_domain_name(s: &str) -> bool {
    s.contains('.')
        && crate::name::validate_dns_name(s.trim_start_matches("*.")).is_ok()
        && s.parse::<std::net::IpAddr>().is_err()
}

fn check_names(leaf: &X509Certificate<'_>, role: ImportRole, out: &mut Vec<Violation>) {
    let sans = x509::sans(leaf);
    let dns: Vec<String> = sans
        .iter()
        .filter_map(|s| match s {
            crate::name::San::Dns(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    match role {
        ImportRole::Server => {
            if !dns.iter().any(|d| is_domain_name(d)) {
                out.push(v(
                    "domain-name",
                    if dns.is_empty() {
                        "the server certificate has no DNS name in its subjectAltName; Client VPN needs a domain name (reissue with `vpnca server vpn.example.com`)".to_string()
                    } else {
                        format!(
                            "the server certificate's DNS names ({}) are not fully qualified domain names; Client VPN needs one like vpn.example.com",
                            dns.join(", ")
                        )
                    },
                ));
            }
        }
        ImportRole::Client => {
            let cn = x509::common_name(leaf.subject()).unwrap_or_default();
            if !is_domain_name(&cn) && !dns.iter().any(|d| is_domain_name(d)) {
                out.push(v(
                    "domain-name",
                    format!(
                        "ACM imports only certificates that name a domain; the client certificate's CN {} is not one and it has no DNS name (issue one for the import, e.g. `vpnca client clientvpn.example.com`)",
                        crate::shell::quote(&cn)
                    ),
                ));
            }
        }
    }
}

fn check_chain(
    bundle: &ImportBundle,
    leaf_der: &[u8],
    leaf: &X509Certificate<'_>,
    now: OffsetDateTime,
    out: &mut Vec<Violation>,
) {
    let blocks = match crate::pem::decode_all(bundle.chain.as_bytes(), "chain") {
        Ok(b) => b,
        Err(e) => {
            out.push(v("chain-order", e.to_string()));
            return;
        }
    };
    if blocks.is_empty() {
        out.push(v(
            "chain-order",
            "the chain is empty; Client VPN needs the issuing CA chain up to the root",
        ));
        return;
    }
    if let Some(b) = blocks.iter().find(|b| b.label != "CERTIFICATE") {
        out.push(v(
            "chain-order",
            format!(
                "the chain holds a {:?} block; only certificates belong there",
                b.label
            ),
        ));
        return;
    }
    if blocks.iter().any(|b| b.der == leaf_der) {
        out.push(v(
            "chain-without-leaf",
            "the chain contains the certificate itself; ACM wants the chain without the leaf",
        ));
        return;
    }
    let mut parsed = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        match x509::parse_cert(&b.der, &format!("chain certificate {}", i + 1)) {
            Ok(c) => parsed.push(c),
            Err(e) => {
                out.push(v("chain-order", e.to_string()));
                return;
            }
        }
    }
    let mut child = leaf;
    for (i, issuer) in parsed.iter().enumerate() {
        if !x509::signed_by(child, issuer) {
            let child_name = if i == 0 {
                "the certificate".to_string()
            } else {
                format!("chain certificate {i}")
            };
            out.push(v(
                "chain-order",
                format!(
                    "chain certificate {} ({}) did not sign {child_name}; the chain must run issuer first, then each issuer's issuer, up to the root",
                    i + 1,
                    x509::common_name(issuer.subject()).unwrap_or_default()
                ),
            ));
            return;
        }
        check_validity(&format!("chain certificate {}", i + 1), issuer, now, out);
        child = issuer;
    }
    let top = &parsed[parsed.len() - 1];
    if !(top.subject() == top.issuer() && x509::signed_by(top, top)) {
        out.push(v(
            "chain-order",
            "the chain does not end at a self-signed root; include every CA up to the root",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::pem_problem;

    #[test]
    fn pem_rules() {
        let line = "A".repeat(64);
        let good = format!("-----BEGIN X-----\n{line}\nAAAA\n-----END X-----\n");
        assert_eq!(pem_problem(&good), None);
        assert!(pem_problem(&good.replace('\n', "\r\n")).is_some());
        assert!(pem_problem(good.trim_end()).is_some());
        assert!(pem_problem(&good.replace("AAAA\n", "AAAA \n")).is_some());
        let wide = format!("-----BEGIN X-----\n{line}AAAA\n-----END X-----\n");
        assert!(pem_problem(&wide).is_some_and(|p| p.contains("68 columns")));
        let short_first = format!("-----BEGIN X-----\nAAAA\n{line}\n-----END X-----\n");
        assert!(pem_problem(&short_first).is_some());
        assert!(pem_problem(&format!("junk\n{good}")).is_some());
    }
}
