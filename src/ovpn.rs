//! OpenVPN client profiles (`.ovpn`): a user's certificate and key inlined into the client
//! configuration of an AWS Client VPN endpoint, or a complete profile for a plain OpenVPN
//! server.
//!
//! An endpoint's configuration is kept line for line; only `<cert>`/`<key>` (and the file
//! directives that would compete with them) are added or replaced, and, when asked,
//! `remote-random-hostname` is replaced by an explicit random label. See docs/commands-delivery.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::cert::{CertKind, CertRecord, Status};
use crate::secret::Passphrase;
use crate::store::Store;
use crate::{Error, Result};

/// The largest configuration file read (endpoint configurations are a few kB).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Blocks and directives that carry the client's own credentials: replaced by ours.
const CREDENTIAL_BLOCKS: &[&str] = &["cert", "key", "pkcs12"];

/// One piece of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A line outside any inline block, kept as it was (without its line ending).
    Line(String),
    /// An inline block `<tag>` … `</tag>`: its tag (lower case) and its lines.
    Block { tag: String, lines: Vec<String> },
}

/// A parsed OpenVPN client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    items: Vec<Item>,
    crlf: bool,
    /// Where it came from (named in errors).
    source: String,
}

impl ClientConfig {
    /// Parses a configuration. `source` names it in errors. Refuses what is not an OpenVPN
    /// text configuration: binary data, invalid UTF-8, an unterminated inline block, a file
    /// over [`MAX_CONFIG_BYTES`].
    pub fn parse(data: &[u8], source: &str) -> Result<ClientConfig> {
        let bad = |reason: String| Error::input(format!("OpenVPN configuration {source}"), reason);
        if data.len() > MAX_CONFIG_BYTES {
            return Err(bad(format!(
                "it is {} bytes; an OpenVPN configuration is at most {MAX_CONFIG_BYTES}",
                data.len()
            )));
        }
        let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
        if data.contains(&0) {
            return Err(bad(
                "it contains NUL bytes: a binary file, not a text configuration".into(),
            ));
        }
        let text = std::str::from_utf8(data)
            .map_err(|e| bad(format!("it is not UTF-8 text (byte {})", e.valid_up_to())))?;
        let crlf = text.contains("\r\n");
        let mut items = Vec::new();
        let mut open: Option<(String, Vec<String>, usize)> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim();
            if let Some((tag, lines, _)) = &mut open {
                if trimmed.eq_ignore_ascii_case(&format!("</{tag}>")) {
                    if let Some((tag, lines, _)) = open.take() {
                        items.push(Item::Block { tag, lines });
                    }
                } else {
                    lines.push(line.to_owned());
                }
                continue;
            }
            if let Some(tag) = block_start(trimmed) {
                open = Some((tag, Vec::new(), i + 1));
                continue;
            }
            if trimmed.starts_with("</") {
                return Err(bad(format!(
                    "line {}: {trimmed} closes no open block",
                    i + 1
                )));
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(bad(format!(
                    "line {}: control characters: not a text configuration",
                    i + 1
                )));
            }
            items.push(Item::Line(line.to_owned()));
        }
        if let Some((tag, _, line)) = open {
            return Err(bad(format!(
                "<{tag}> opened on line {line} is never closed"
            )));
        }
        if !items
            .iter()
            .any(|it| matches!(it, Item::Line(l) if directive(l).is_some()))
        {
            return Err(bad("it contains no OpenVPN directive".into()));
        }
        Ok(ClientConfig {
            items,
            crlf,
            source: source.to_owned(),
        })
    }

    /// The certificates (DER) of the `<ca>` block, or `None` without one.
    pub fn ca_certificates(&self) -> Option<Result<Vec<Vec<u8>>>> {
        self.block("ca").map(|lines| {
            crate::pem::decode_certificates(
                lines.join("\n").as_bytes(),
                &format!("the <ca> block of {}", self.source),
            )
        })
    }

    fn block(&self, tag: &str) -> Option<&[String]> {
        self.items.iter().find_map(|it| match it {
            Item::Block { tag: t, lines } if t == tag => Some(lines.as_slice()),
            _ => None,
        })
    }

    fn has_directive(&self, name: &str) -> bool {
        self.items
            .iter()
            .any(|it| matches!(it, Item::Line(l) if directive(l) == Some(name)))
    }

    fn render(&self) -> Zeroizing<String> {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        let mut out = Zeroizing::new(String::new());
        for it in &self.items {
            match it {
                Item::Line(l) => {
                    out.push_str(l);
                    out.push_str(eol);
                }
                Item::Block { tag, lines } => {
                    let _ = write!(out, "<{tag}>{eol}");
                    for l in lines {
                        out.push_str(l);
                        out.push_str(eol);
                    }
                    let _ = write!(out, "</{tag}>{eol}");
                }
            }
        }
        out
    }
}

/// `<tag>` (lower-cased) when the line opens an inline block.
fn block_start(trimmed: &str) -> Option<String> {
    let inner = trimmed.strip_prefix('<')?.strip_suffix('>')?;
    if inner.is_empty() || inner.starts_with('/') {
        return None;
    }
    inner
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        .then(|| inner.to_ascii_lowercase())
}

/// The directive a line starts with (`None` for blank lines and comments).
fn directive(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    t.split_whitespace().next()
}

/// Where a profile's connection settings come from.
#[derive(Debug, Clone)]
pub enum ProfileBase {
    /// The client configuration downloaded from an AWS Client VPN endpoint (console, or
    /// `aws ec2 export-client-vpn-client-configuration`).
    Endpoint {
        /// The parsed configuration.
        config: ClientConfig,
        /// Replace `remote-random-hostname` with an explicit random label on each `remote`
        /// host (AWS's workaround for clients that lack the directive).
        random_hostname_prefix: bool,
    },
    /// A plain OpenVPN server.
    Plain {
        /// Server host name or address.
        host: String,
        /// Port (1194 by default).
        port: u16,
        /// `udp` or `tcp`.
        proto: Proto,
        /// Adds `verify-x509-name NAME name` so the client accepts only this server name.
        server_name: Option<String>,
    },
}

/// The transport of a plain OpenVPN profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// UDP (OpenVPN's default).
    Udp,
    /// TCP.
    Tcp,
}

impl std::str::FromStr for Proto {
    type Err = Error;
    fn from_str(s: &str) -> Result<Proto> {
        match s {
            s if s.eq_ignore_ascii_case("udp") => Ok(Proto::Udp),
            s if s.eq_ignore_ascii_case("tcp") => Ok(Proto::Tcp),
            _ => Err(Error::input("--proto", format!("{s:?} is not udp or tcp"))),
        }
    }
}

/// Parses `HOST[:PORT]` (IPv6 as `[ADDR]:PORT`).
pub fn parse_remote(s: &str) -> Result<(String, u16)> {
    let bad = |r: &str| Error::input("--remote", format!("{s:?}: {r}"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("expected :PORT after ']'")),
        };
        (h.to_owned(), port)
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').ok_or_else(|| bad("bad HOST:PORT"))?;
        (h.to_owned(), Some(p))
    } else {
        (s.to_owned(), None)
    };
    let port = match port {
        None => 1194,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("the port must be 1–65535")),
        },
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.parse::<std::net::IpAddr>().is_err() {
        crate::name::validate_dns_name(&host)?;
    }
    Ok((host, port))
}

/// A profile that was written.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileReport {
    /// The user's name.
    pub name: String,
    /// The certificate's serial.
    pub serial: String,
    /// The file written.
    pub path: PathBuf,
    /// Whether the key inside is encrypted.
    pub key_encrypted: bool,
    /// Things the admin should know (foreign `<ca>`, replaced credentials, …).
    pub warnings: Vec<String>,
}

impl Store {
    /// Builds the text of a user's profile; nothing is written. Returns the profile and the
    /// warnings.
    pub fn build_profile(
        &self,
        rec: &CertRecord,
        base: &ProfileBase,
        key_pass: Option<&Passphrase>,
    ) -> Result<(Zeroizing<String>, Vec<String>)> {
        self.check_record(rec)?;
        if rec.kind != CertKind::Client {
            return Err(Error::Refused {
                reason: format!(
                    "{} is a {} certificate; a VPN profile carries a client certificate",
                    crate::shell::quote(&rec.name),
                    rec.kind.as_str()
                ),
            });
        }
        let status = rec.status(crate::store::now());
        if status != Status::Valid {
            return Err(Error::Refused {
                reason: format!(
                    "the certificate of {} (serial {}) is {}; a profile with it cannot connect",
                    crate::shell::quote(&rec.name),
                    rec.serial,
                    status.as_str()
                ),
            });
        }
        if !rec.has_key {
            return Err(Error::Refused {
                reason: format!(
                    "{} was signed from a CSR: its private key is with the user, not in the store, so vpnca cannot build the profile",
                    crate::shell::quote(&rec.name)
                ),
            });
        }
        if let Some(p) = key_pass {
            p.check_new()?;
        }
        let key = self.private_key(rec)?;
        let key_pem = match key_pass {
            Some(p) => crate::export::encrypt_pkcs8(&key, p)?,
            None => key.to_pem()?,
        };
        let ctx = ProfileContext::new(self)?;
        ctx.compose(base, &rec.pem(), &key_pem)
    }

    /// Builds a profile and writes it to `out` (created new, mode 0600); the write is
    /// recorded in the audit log.
    pub fn write_profile(
        &self,
        rec: &CertRecord,
        base: &ProfileBase,
        key_pass: Option<&Passphrase>,
        out: &Path,
    ) -> Result<ProfileReport> {
        let (text, warnings) = self.build_profile(rec, base, key_pass)?;
        let kind = match base {
            ProfileBase::Endpoint { .. } => "endpoint",
            ProfileBase::Plain { .. } => "plain",
        };
        let bytes = Zeroizing::new(text.as_bytes().to_vec());
        let written = self.write_new_files(
            &[(out.to_path_buf(), bytes, 0o600)],
            "profile",
            rec,
            &serde_json::json!({"base": kind, "key": if key_pass.is_some() { "encrypted" } else { "plain" }}),
        )?;
        Ok(ProfileReport {
            name: rec.name.clone(),
            serial: rec.serial.hex(),
            path: written
                .into_iter()
                .next()
                .unwrap_or_else(|| out.to_path_buf()),
            key_encrypted: key_pass.is_some(),
            warnings,
        })
    }
}

/// What a profile needs from the store besides the user's certificate and key: the CA chain.
/// Built once for a batch of profiles.
pub struct ProfileContext {
    chain: Vec<Vec<u8>>,
    chain_pem: String,
    ca_name: String,
}

impl ProfileContext {
    /// Reads the CA chain from the store.
    pub fn new(store: &Store) -> Result<ProfileContext> {
        Ok(ProfileContext {
            chain: store.ca_chain()?,
            chain_pem: store.ca_chain_pem()?,
            ca_name: store.ca()?.name,
        })
    }

    /// The profile text for a certificate and key (PEM), and the warnings.
    pub fn compose(
        &self,
        base: &ProfileBase,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<(Zeroizing<String>, Vec<String>)> {
        let cert_lines: Vec<String> = cert_pem.lines().map(str::to_owned).collect();
        let key_lines: Vec<String> = key_pem.lines().map(str::to_owned).collect();
        let mut warnings = Vec::new();
        let config = match base {
            ProfileBase::Endpoint {
                config,
                random_hostname_prefix,
            } => {
                let mut c = config.clone();
                self.check_ca_block(&c, &mut warnings)?;
                strip_credentials(&mut c, &mut warnings);
                if *random_hostname_prefix {
                    replace_random_hostname(&mut c, &mut warnings)?;
                }
                insert_credentials(&mut c, cert_lines, key_lines);
                c
            }
            ProfileBase::Plain {
                host,
                port,
                proto,
                server_name,
            } => plain_config(
                host,
                *port,
                *proto,
                server_name.as_deref(),
                &self.chain_pem,
                cert_lines,
                key_lines,
            )?,
        };
        Ok((config.render(), warnings))
    }

    /// The endpoint configuration's `<ca>` must exist; a `<ca>` without this PKI's CA gets a
    /// warning (the endpoint's server certificate comes from another CA: a wrong endpoint,
    /// or a deliberate split between server and client CAs).
    fn check_ca_block(&self, c: &ClientConfig, warnings: &mut Vec<String>) -> Result<()> {
        let certs = match c.ca_certificates() {
            None => {
                return Err(Error::input(
                    format!("OpenVPN configuration {}", c.source),
                    "it has no <ca> block: the client could not verify the server. Use the file \
                     the endpoint exports (aws ec2 export-client-vpn-client-configuration), or \
                     `vpnca profile NAME --remote HOST` for a plain OpenVPN server",
                ));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(certs)) => certs,
        };
        if !certs.iter().any(|c| self.chain.contains(c)) {
            warnings.push(format!(
                "the configuration's <ca> block does not contain this PKI's CA ({}): the endpoint's server certificate was issued by another CA. Is this the right endpoint's file? (Ignore this if the endpoint's server certificate really comes from a different CA.)",
                crate::shell::quote(&self.ca_name)
            ));
        }
        Ok(())
    }
}

fn strip_credentials(c: &mut ClientConfig, warnings: &mut Vec<String>) {
    let mut removed = Vec::new();
    c.items.retain(|it| match it {
        Item::Block { tag, .. } if CREDENTIAL_BLOCKS.contains(&tag.as_str()) => {
            removed.push(format!("<{tag}>"));
            false
        }
        Item::Line(l) => match directive(l) {
            Some(d) if CREDENTIAL_BLOCKS.contains(&d) || d == "askpass" => {
                removed.push(format!("`{}`", l.trim()));
                false
            }
            _ => true,
        },
        _ => true,
    });
    if !removed.is_empty() {
        warnings.push(format!(
            "the configuration already had client credentials ({}): replaced by this user's certificate and key. Was it another user's profile?",
            removed.join(", ")
        ));
    }
}

fn replace_random_hostname(c: &mut ClientConfig, warnings: &mut Vec<String>) -> Result<()> {
    if !c.has_directive("remote-random-hostname") {
        warnings.push(
            "--random-hostname-prefix: the configuration has no remote-random-hostname; left as it was"
                .into(),
        );
        return Ok(());
    }
    let label: [u8; 6] = crate::store::crypto::random()?;
    let label: String = label.iter().map(|b| format!("{b:02x}")).collect();
    let mut items = Vec::with_capacity(c.items.len());
    for it in std::mem::take(&mut c.items) {
        match &it {
            Item::Line(l) if directive(l) == Some("remote-random-hostname") => {}
            Item::Line(l) if directive(l) == Some("remote") => {
                let indent = &l[..l.len() - l.trim_start().len()];
                let mut words: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
                if let Some(host) = words
                    .get_mut(1)
                    .filter(|h| h.parse::<std::net::IpAddr>().is_err())
                {
                    *host = format!("{label}.{host}");
                }
                items.push(Item::Line(format!("{indent}{}", words.join(" "))));
            }
            _ => items.push(it),
        }
    }
    c.items = items;
    Ok(())
}

/// `<cert>` and `<key>` go right after `<ca>` (or at the end).
fn insert_credentials(c: &mut ClientConfig, cert: Vec<String>, key: Vec<String>) {
    let at = c
        .items
        .iter()
        .position(|it| matches!(it, Item::Block { tag, .. } if tag == "ca"))
        .map_or(c.items.len(), |i| i + 1);
    c.items.splice(
        at..at,
        [
            Item::Block {
                tag: "cert".into(),
                lines: cert,
            },
            Item::Block {
                tag: "key".into(),
                lines: key,
            },
        ],
    );
}

fn plain_config(
    host: &str,
    port: u16,
    proto: Proto,
    server_name: Option<&str>,
    chain_pem: &str,
    cert: Vec<String>,
    key: Vec<String>,
) -> Result<ClientConfig> {
    let mut lines = vec![
        "# OpenVPN client profile written by vpnca".to_owned(),
        "client".into(),
        "dev tun".into(),
        format!(
            "proto {}",
            match proto {
                Proto::Udp => "udp",
                Proto::Tcp => "tcp",
            }
        ),
        format!("remote {host} {port}"),
        "resolv-retry infinite".into(),
        "nobind".into(),
        "persist-key".into(),
        "persist-tun".into(),
        "remote-cert-tls server".into(),
    ];
    if let Some(n) = server_name {
        let n = &crate::name::normalize_name(n)?;
        if n.contains(char::is_whitespace) || n.contains('\'') || n.contains('"') {
            return Err(Error::input(
                "--server-name",
                format!(
                    "{}: spaces and quotes cannot go into verify-x509-name",
                    crate::shell::quote(n)
                ),
            ));
        }
        lines.push(format!("verify-x509-name {n} name"));
    }
    lines.push("verb 3".into());
    let mut items: Vec<Item> = lines.into_iter().map(Item::Line).collect();
    items.push(Item::Block {
        tag: "ca".into(),
        lines: chain_pem.lines().map(str::to_owned).collect(),
    });
    items.push(Item::Block {
        tag: "cert".into(),
        lines: cert,
    });
    items.push(Item::Block {
        tag: "key".into(),
        lines: key,
    });
    Ok(ClientConfig {
        items,
        crlf: false,
        source: "the generated profile".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_every_line() {
        let text = "client\n# comment\nremote a.example 443\n<ca>\nX\n</ca>\n\nreneg-sec 0\n";
        let c = ClientConfig::parse(text.as_bytes(), "t").expect("parse");
        assert_eq!(c.render().as_str(), text);
        let crlf = text.replace('\n', "\r\n");
        let c = ClientConfig::parse(crlf.as_bytes(), "t").expect("parse");
        assert_eq!(c.render().as_str(), crlf);
    }

    #[test]
    fn parse_refuses_broken_files() {
        for (data, phrase) in [
            (&b"client\n<ca>\nX\n"[..], "never closed"),
            (b"client\n</ca>\n", "closes no open block"),
            (b"\x00\x01binary", "NUL"),
            (b"\xff\xfeclient", "not UTF-8"),
            (b"# only a comment\n", "no OpenVPN directive"),
            (b"", "no OpenVPN directive"),
        ] {
            let e = ClientConfig::parse(data, "t")
                .expect_err("must fail")
                .to_string();
            assert!(e.contains(phrase), "{e}");
        }
    }

    #[test]
    fn remotes() {
        assert_eq!(
            parse_remote("vpn.example.com").expect("ok"),
            ("vpn.example.com".into(), 1194)
        );
        assert_eq!(parse_remote("vpn.example.com:443").expect("ok").1, 443);
        assert_eq!(
            parse_remote("[::1]:1195").expect("ok"),
            ("::1".into(), 1195)
        );
        assert_eq!(parse_remote("10.0.0.1").expect("ok").1, 1194);
        for bad in [
            "",
            ":1",
            "host:0",
            "host:99999",
            "bad host",
            "[::1",
            "a_b.example",
        ] {
            assert!(parse_remote(bad).is_err(), "{bad}");
        }
    }
}
