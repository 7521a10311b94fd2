//! Validation of certificate names, DNS names, e-mail addresses and SAN arguments.

use std::net::IpAddr;

use unicode_normalization::UnicodeNormalization;
use unicode_security::GeneralSecurityProfile;
use unicode_security::general_security_profile::IdentifierType;

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
    if let Some(c) = name
        .chars()
        .find(|&c| c.identifier_type() == Some(IdentifierType::Default_Ignorable))
    {
        return bad(&format!(
            "it contains U+{:04X}, an invisible formatting character (it would make look-alike names)",
            u32::from(c)
        ));
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

/// `name` in Unicode Normalization Form C (composed: `e` + U+0301 becomes `é`), the form vpnca
/// keeps every name in (docs/commands-certificates.md#names).
pub fn nfc(name: &str) -> String {
    match unicode_normalization::is_nfc_quick(name.chars()) {
        unicode_normalization::IsNormalized::Yes => name.to_string(),
        _ => name.nfc().collect(),
    }
}

/// Whether `name` is in Normalization Form C already.
pub fn is_nfc(name: &str) -> bool {
    unicode_normalization::is_nfc(name)
}

/// A name given to vpnca (command line, batch file, CSR, easy-rsa import), in NFC and checked
/// with [`validate_name`]: the name vpnca records. Two spellings of one name (NFC, and NFD as a
/// macOS file gives it) are thus one name.
pub fn normalize_name(name: &str) -> Result<String> {
    let n = nfc(name);
    validate_name(&n)?;
    if n.eq_ignore_ascii_case(crate::ca::STATE_KEY_CN) {
        // Readers without the passphrase accept a state head signed by the certificate of
        // that name (docs/store-format.md#the-state-signing-key): no other may carry it.
        return Err(Error::input(
            "name",
            format!("{n:?} is reserved for the store's state-signing key"),
        ));
    }
    Ok(n)
}

/// The key under which names that look alike meet: the UTS #39 skeleton of the NFKC form,
/// lower-cased, then skeletonized again (the skeleton maps `0` to `O`, lower-casing maps `O` to
/// `o`). `bob`, `Bob`, `b0b`, `bоb` (Cyrillic о), `ｂｏｂ` and `bo\u{200B}b` share one key.
pub fn look_alike_key(name: &str) -> String {
    // Most names are ASCII: their key is the keys of their characters, one after the other,
    // when each of those is ASCII too (no combining mark can then reorder across them). A
    // table of the 95 printable characters makes `issue` in a store of 100,000 names cheap.
    static ASCII: std::sync::OnceLock<Vec<Option<String>>> = std::sync::OnceLock::new();
    let table = ASCII.get_or_init(|| {
        (0u8..128)
            .map(|b| {
                let k = slow_look_alike_key(&char::from(b).to_string());
                (b.is_ascii_graphic() || b == b' ')
                    .then_some(k)
                    .filter(|k| k.is_ascii())
            })
            .collect()
    });
    let mut key = String::with_capacity(name.len());
    for b in name.bytes() {
        match table.get(usize::from(b)).and_then(Option::as_deref) {
            Some(k) => key.push_str(k),
            None => return slow_look_alike_key(name),
        }
    }
    key
}

/// [`look_alike_key`] by its definition, for any text.
fn slow_look_alike_key(name: &str) -> String {
    let nfkc: String = name.nfkc().collect();
    let once: String = unicode_security::skeleton(&nfkc).collect();
    unicode_security::skeleton(&once.to_lowercase()).collect()
}

/// Whether two different names look alike ([`look_alike_key`]). A name does not look like
/// itself; two spellings of one name (NFC and NFD) do look alike.
pub fn looks_alike(a: &str, b: &str) -> bool {
    a != b && look_alike_key(a) == look_alike_key(b)
}

/// Up to three of `known` that `name` may have meant ("did you mean …?"): the names that look
/// like it, then those a typo or two away (case-insensitive edit distance up to 1 for names of
/// up to 4 characters, up to 2 for longer ones), nearest first.
pub fn suggestions<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let key = look_alike_key(name);
    let lower = nfc(name).to_lowercase();
    let limit = if lower.chars().count() <= 4 { 1 } else { 2 };
    let mut near: Vec<(usize, &str)> = known
        .into_iter()
        .filter(|k| *k != name)
        .filter_map(|k| {
            if look_alike_key(k) == key {
                return Some((0, k));
            }
            let d = edit_distance(&lower, &nfc(k).to_lowercase());
            (d <= limit).then_some((d, k))
        })
        .collect();
    near.sort();
    near.dedup();
    near.into_iter()
        .take(3)
        .map(|(_, k)| k.to_string())
        .collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
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
            "bo\u{200B}b",
            "alice\u{202E}",
            "a\u{FEFF}",
            long.as_str(),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nfc_makes_one_name_of_two_spellings() {
        let nfd = "Jose\u{301}";
        assert_eq!(normalize_name(nfd).expect("nfd"), "Jos\u{e9}");
        assert_eq!(nfc("Jos\u{e9}"), "Jos\u{e9}");
        assert!(!is_nfc(nfd));
        assert!(normalize_name("bo\u{200B}b").is_err());
    }

    #[test]
    fn look_alikes() {
        for (a, b) in [
            ("bob", "Bob"),
            ("bob", "BOB"),
            ("bob", "b0b"),
            ("bob", "b\u{43E}b"),                // Cyrillic o
            ("bob", "\u{FF42}\u{FF4F}\u{FF42}"), // fullwidth
            ("Il", "ll"),
            ("bill1", "billl"),
            ("Jos\u{e9}", "Jose\u{301}"),
            ("paypal", "p\u{430}yp\u{430}l"), // Cyrillic a
            ("admin", "\u{430}dmin"),
        ] {
            assert!(looks_alike(a, b), "{a:?} ~ {b:?}");
        }
        for (a, b) in [
            ("bob", "bob"),
            ("bob", "rob"),
            ("alice", "alicia"),
            ("Zo\u{eb}", "Zoe"),
        ] {
            assert!(!looks_alike(a, b), "{a:?} !~ {b:?}");
        }
    }

    #[test]
    fn the_ascii_table_gives_the_defined_keys() {
        let all: String = (b' '..=b'~').map(char::from).collect();
        for s in [
            all.as_str(),
            "bob",
            "Bob.Smith",
            "arnie",
            "clara",
            "user_01@corp",
            "I1l|",
            "W w",
        ] {
            assert_eq!(look_alike_key(s), slow_look_alike_key(s), "{s:?}");
        }
        // Fails when the table's keys are wrong: `m` looks like `rn`, `0` like `o`.
        assert_eq!(look_alike_key("m0"), slow_look_alike_key("rno"));
    }

    #[test]
    fn did_you_mean() {
        let known = ["alice", "Alice.Smith", "bob", "b0b", "carol", "Jos\u{e9}"];
        assert_eq!(suggestions("alcie", known), ["alice"]);
        assert_eq!(suggestions("BOB", known), ["b0b", "bob"]);
        assert_eq!(suggestions("Jose", known), ["Jos\u{e9}"]);
        assert_eq!(suggestions("bob", known), ["b0b"]);
        assert!(suggestions("zed", known).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
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
