//! OpenVPN client profiles (`.ovpn`): a user's certificate and key inlined into the client
//! configuration of an AWS Client VPN endpoint, or a complete profile for a plain OpenVPN
//! server.
//!
//! An endpoint's configuration is kept line for line; only `<cert>`/`<key>` (and the file
//! directives that would compete with them) are added or replaced, `verify-x509-name` is added
//! when the remote host is a server certificate of the store, and, when asked,
//! `remote-random-hostname` is replaced by an explicit random label. What such a foreign
//! configuration may carry into every user's profile is an allow-list
//! ([`ALLOWED_DIRECTIVES`], [`ALLOWED_BLOCKS`]); anything else is refused unless named in a
//! [`DirectivePolicy`]. See docs/commands-delivery.md.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::cert::{CertKind, CertRecord, Status};
use crate::secret::Passphrase;
use crate::store::{ListFilter, Store};
use crate::{Error, Result};

/// The largest configuration file read (endpoint configurations are a few kB).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The longest line read, line ending included but for its `\n`: OpenVPN 2 reads lines into
/// a 256-byte buffer (`OPTION_LINE_SIZE`, with the `\n` and a NUL).
const MAX_LINE_BYTES: usize = 254;

/// Blocks and directives that carry the client's own credentials: replaced by ours.
const CREDENTIAL_BLOCKS: &[&str] = &["cert", "key", "pkcs12"];

/// The directives a foreign client configuration may carry into every user's profile: client
/// settings that neither run programs nor read, write or load files on the user's machine
/// (sorted; docs/commands-delivery.md#allowed-directives). `cert`, `key` and `pkcs12` lines are
/// accepted too and replaced by the user's credentials. `auth-user-pass` is allowed only
/// without an argument (a prompt), and `none` is refused as a data cipher.
pub const ALLOWED_DIRECTIVES: &[&str] = &[
    "auth",
    "auth-federate",
    "auth-nocache",
    "auth-retry",
    "auth-user-pass",
    "cipher",
    "client",
    "connect-retry",
    "connect-retry-max",
    "connect-timeout",
    "data-ciphers",
    "data-ciphers-fallback",
    "dev",
    "dev-type",
    "explicit-exit-notify",
    "float",
    "keepalive",
    "key-direction",
    "mssfix",
    "mute",
    "mute-replay-warnings",
    "ncp-ciphers",
    "nobind",
    "persist-key",
    "persist-tun",
    "ping",
    "ping-restart",
    "proto",
    "pull",
    "rcvbuf",
    "remote",
    "remote-cert-eku",
    "remote-cert-ku",
    "remote-cert-tls",
    "remote-random",
    "remote-random-hostname",
    "reneg-sec",
    "resolv-retry",
    "server-poll-timeout",
    "sndbuf",
    "static-challenge",
    "tls-cipher",
    "tls-ciphersuites",
    "tls-client",
    "tls-version-max",
    "tls-version-min",
    "tun-mtu",
    "verb",
    "verify-x509-name",
];

/// The inline blocks a foreign configuration may carry (`<cert>`, `<key>` and `<pkcs12>` are
/// replaced by the user's own).
pub const ALLOWED_BLOCKS: &[&str] = &["ca", "cert", "key", "pkcs12", "tls-auth", "tls-crypt"];

/// The data-cipher directives whose value `none` would turn encryption off.
const CIPHER_DIRECTIVES: &[&str] = &[
    "cipher",
    "data-ciphers",
    "data-ciphers-fallback",
    "ncp-ciphers",
];

/// What a foreign configuration may carry beyond the allow-list (`--allow-directive`,
/// `--allow-foreign-ca`). The default lets nothing more through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectivePolicy {
    allow: Vec<String>,
    allow_foreign_ca: bool,
}

impl DirectivePolicy {
    /// Lets the directives (or inline blocks) named in `allow` through although they are not
    /// on the allow-list, and, with `allow_foreign_ca`, a `<ca>` block that holds certificates
    /// besides the store's CA chain. Refuses a name that is not an OpenVPN directive name
    /// (lower-case letters, digits and `-`).
    pub fn new(allow: &[String], allow_foreign_ca: bool) -> Result<DirectivePolicy> {
        for name in allow {
            let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(Error::input(
                    "--allow-directive",
                    format!(
                        "{}: a directive is named by lower-case letters, digits and '-', without \
                         leading dashes or brackets (e.g. route-nopull, or connection for a \
                         <connection> block)",
                        crate::shell::quote(name)
                    ),
                ));
            }
        }
        Ok(DirectivePolicy {
            allow: allow.to_vec(),
            allow_foreign_ca,
        })
    }

    fn allows(&self, name: &str) -> bool {
        self.allow.iter().any(|a| a == name)
    }
}

/// Why the directive `name` (with the words `args` after it) may not go into users' profiles;
/// `None` when it may.
fn refusal(name: &str, args: &[&str]) -> Option<String> {
    if CREDENTIAL_BLOCKS.contains(&name) {
        return None;
    }
    if ALLOWED_DIRECTIVES.contains(&name) {
        return match name {
            "auth-user-pass" if !args.is_empty() => Some(danger(name).unwrap_or_default().into()),
            _ if CIPHER_DIRECTIVES.contains(&name)
                && args
                    .iter()
                    .any(|a| a.split(':').any(|c| c.eq_ignore_ascii_case("none"))) =>
            {
                Some("`none` turns the encryption of the tunnel off".into())
            }
            "auth" if args.iter().any(|a| a.eq_ignore_ascii_case("none")) => {
                Some("`auth none` turns the authentication of tunnel packets off".into())
            }
            "tls-cipher" | "tls-ciphersuites"
                if args.iter().any(|a| {
                    let a = a.to_ascii_uppercase();
                    a.contains("NULL") || a.contains("EXPORT") || a.contains("SECLEVEL=0")
                }) =>
            {
                Some("it lets TLS use ciphers without encryption or authentication, or export-grade ones".into())
            }
            "tls-version-min"
                if args
                    .first()
                    .is_some_and(|v| matches!(*v, "1.0" | "1.1")) =>
            {
                Some("TLS 1.0 and 1.1 are broken; the minimum is 1.2".into())
            }
            _ => None,
        };
    }
    Some(
        danger(name)
            .unwrap_or("it is not on vpnca's allow-list of client directives")
            .into(),
    )
}

/// Why a directive or inline block that is not on the allow-list is dangerous, for those
/// known to be.
fn danger(name: &str) -> Option<&'static str> {
    Some(match name {
        "script-security" => "it lets the configuration run programs on the user's machine",
        "up"
        | "down"
        | "route-up"
        | "route-pre-down"
        | "ipchange"
        | "tls-verify"
        | "client-connect"
        | "client-disconnect"
        | "learn-address"
        | "auth-user-pass-verify"
        | "iproute" => "it runs a program on the user's machine",
        "plugin" => "it loads a shared library into the VPN client",
        "providers" | "engine" => {
            "it loads OpenSSL code (a provider or an engine) into the VPN client"
        }
        n if n.starts_with("pkcs11-") => {
            "it loads a PKCS#11 module or picks a key outside the profile"
        }
        "config" => "it reads another configuration file from the user's machine",
        n if n == "management" || n.starts_with("management-") => {
            "it opens a control interface to the VPN client"
        }
        "setenv" | "setenv-safe" => {
            "it sets environment variables for scripts, and `setenv opt` carries a directive past this check"
        }
        "cd" | "chroot" => "it changes the client's directory on the user's machine",
        "log" | "log-append" | "writepid" | "status" | "tmp-dir" | "replay-persist" => {
            "it writes files on the user's machine"
        }
        "daemon" => "it detaches the VPN client into the background",
        "askpass" => "it reads a passphrase from a file on the user's machine",
        "auth-user-pass" => {
            "with an argument it reads (or, inline, carries) one username and password for every user"
        }
        "ca" | "capath" | "tls-auth" | "tls-crypt" | "tls-crypt-v2" | "crl-verify" | "dh"
        | "secret" | "extra-certs" => {
            "it reads a file from the user's machine (the inline <ca>, <tls-auth> and <tls-crypt> blocks are allowed)"
        }
        "comp-lzo" | "compress" | "allow-compression" => {
            "it turns compression on, which leaks tunnel data to an observer (VORACLE)"
        }
        "connection" => "a <connection> block carries directives this check does not read",
        "peer-fingerprint" => {
            "it makes the client trust a server that the <ca> block does not vouch for"
        }
        _ => return None,
    })
}

/// One piece of a configuration file.
#[derive(Clone, PartialEq, Eq)]
enum Item {
    /// A line outside any inline block, kept as it was (without its line ending).
    Line(String),
    /// An inline block `<tag>` … `</tag>`: its tag (lower case) and its lines, zeroized on
    /// drop: `<key>` holds a private key, `<tls-auth>`/`<tls-crypt>` the endpoint's shared
    /// secret.
    Block { tag: String, lines: BlockLines },
}

/// The lines of an inline block; every line is zeroized when the block is dropped.
type BlockLines = Zeroizing<Vec<String>>;

/// The lines of a block as [`BlockLines`], copied out of `text`.
fn block_lines(text: &str) -> BlockLines {
    Zeroizing::new(text.lines().map(str::to_owned).collect())
}

/// Blocks print their tag and line count only: `<key>` and `<tls-crypt>` hold secrets.
impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Line(l) => f.debug_tuple("Line").field(l).finish(),
            Item::Block { tag, lines } => f
                .debug_struct("Block")
                .field("tag", tag)
                .field("lines", &format_args!("<{} lines>", lines.len()))
                .finish(),
        }
    }
}

/// A parsed OpenVPN client configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    items: Vec<Item>,
    crlf: bool,
    /// Where it came from (named in errors).
    source: String,
    /// What it was allowed to carry beyond the allow-list.
    policy: DirectivePolicy,
    /// The lines the policy let through although they are not on the allow-list (warned about
    /// in each profile).
    let_through: Vec<String>,
}

impl ClientConfig {
    /// Parses a configuration with the default [`DirectivePolicy`]: see
    /// [`ClientConfig::parse_with`].
    pub fn parse(data: &[u8], source: &str) -> Result<ClientConfig> {
        ClientConfig::parse_with(data, source, &DirectivePolicy::default())
    }

    /// Parses a configuration. `source` names it in errors. Refuses what is not an OpenVPN
    /// text configuration: binary data, invalid UTF-8, an unterminated inline block, a file
    /// over [`MAX_CONFIG_BYTES`]; and a configuration with a directive or inline block that is
    /// not on the allow-list ([`ALLOWED_DIRECTIVES`], [`ALLOWED_BLOCKS`]) and not let through
    /// by `policy`, naming each with its line.
    pub fn parse_with(data: &[u8], source: &str, policy: &DirectivePolicy) -> Result<ClientConfig> {
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
        let mut open: Option<(String, BlockLines, usize)> = None;
        let mut refused = Vec::new();
        let mut let_through = Vec::new();
        let mut judge = |line_no: usize, shown: &str, name: &str, why: Option<String>| {
            let Some(why) = why else { return };
            let shown = shorten(shown.trim());
            if policy.allows(name) {
                let_through.push(format!(
                    "line {line_no}: `{shown}` is not on vpnca's allow-list ({why}); it is in this profile because of --allow-directive {name}"
                ));
            } else {
                refused.push(format!("line {line_no}: `{shown}`: {why}"));
            }
        };
        for (i, raw) in text.lines().enumerate() {
            // OpenVPN reads a file in pieces of at most 255 bytes (OPTION_LINE_SIZE): the rest
            // of a longer line would be read as a line of its own, which this check never saw.
            if raw.len() > MAX_LINE_BYTES {
                return Err(bad(format!(
                    "line {}: {} bytes; OpenVPN reads at most {MAX_LINE_BYTES} per line and would \
                     take the rest for another line",
                    i + 1,
                    raw.len()
                )));
            }
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim();
            if let Some((tag, lines, _)) = &mut open {
                // OpenVPN ends a block at the first line that starts with `</tag>` (after
                // spaces), whatever follows it: text after the tag would hide lines from this
                // check that OpenVPN reads as directives.
                let close = format!("</{tag}>");
                let start = line.trim_start();
                let closes = start
                    .get(..close.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(&close));
                if closes && !start[close.len()..].trim().is_empty() {
                    return Err(bad(format!(
                        "line {}: text after {close}: OpenVPN ends the block there and reads the \
                         lines after it differently",
                        i + 1
                    )));
                }
                if closes {
                    if let Some((tag, lines, _)) = open.take() {
                        items.push(Item::Block { tag, lines });
                    }
                } else {
                    lines.push(line.to_owned());
                }
                continue;
            }
            if let Some(tag) = block_start(trimmed) {
                let why = (!ALLOWED_BLOCKS.contains(&tag.as_str())).then(|| {
                    danger(&tag)
                        .unwrap_or("this inline block is not on vpnca's allow-list")
                        .to_owned()
                });
                judge(i + 1, trimmed, &tag, why);
                open = Some((tag, Zeroizing::new(Vec::new()), i + 1));
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
            if let Some(name) = directive(line) {
                let args: Vec<&str> = line.split_whitespace().skip(1).collect();
                judge(i + 1, line, name, refusal(name, &args));
            }
            items.push(Item::Line(line.to_owned()));
        }
        if let Some((tag, _, line)) = open {
            return Err(bad(format!(
                "<{tag}> opened on line {line} is never closed"
            )));
        }
        if !refused.is_empty() {
            return Err(bad(format!(
                "{}. vpnca copies this configuration into every user's profile, so it keeps only \
                 directives known to be safe for a client (docs/commands-delivery.md#allowed-directives): \
                 remove the line, or let a directive through with --allow-directive NAME",
                refused.join("; ")
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
            policy: policy.clone(),
            let_through,
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

    /// The host of each `remote` line.
    fn remote_hosts(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter_map(|it| match it {
                Item::Line(l) if directive(l) == Some("remote") => l.split_whitespace().nth(1),
                _ => None,
            })
            .collect()
    }

    /// Inserts `line` after the last line with directive `after`, else after the last
    /// `remote`, else at the top.
    fn insert_line_after(&mut self, after: &str, line: String) {
        let last = |name: &str| {
            self.items
                .iter()
                .rposition(|it| matches!(it, Item::Line(l) if directive(l) == Some(name)))
        };
        let at = last(after).or_else(|| last("remote")).map_or(0, |i| i + 1);
        self.items.insert(at, Item::Line(line));
    }

    fn render(&self) -> Zeroizing<String> {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        // Sized up front: a growing String would leave copies of the key behind in the
        // buffers it gives up.
        let len: usize = self
            .items
            .iter()
            .map(|it| match it {
                Item::Line(l) => l.len() + eol.len(),
                Item::Block { tag, lines } => {
                    2 * tag.len()
                        + 5
                        + 2 * eol.len()
                        + lines.iter().map(|l| l.len() + eol.len()).sum::<usize>()
                }
            })
            .sum();
        let mut out = Zeroizing::new(String::with_capacity(len));
        for it in &self.items {
            match it {
                Item::Line(l) => {
                    out.push_str(l);
                    out.push_str(eol);
                }
                Item::Block { tag, lines } => {
                    let _ = write!(out, "<{tag}>{eol}");
                    for l in lines.iter() {
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

/// The directive a line starts with (`None` for blank lines and comments), as OpenVPN reads
/// it: a leading `--` is dropped (OpenVPN accepts `--up CMD` in a file as `up CMD`).
fn directive(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
        return None;
    }
    t.split_whitespace()
        .next()
        .map(|w| w.strip_prefix("--").unwrap_or(w))
}

/// A configuration line as shown in messages: at most 80 characters.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
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
        /// Without it, the name is that of the store's live server certificate whose name or
        /// SAN is the host, when there is exactly one.
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

/// What a profile needs from the store besides the user's certificate and key: the CA chain
/// and the live server certificates. Built once for a batch of profiles.
pub struct ProfileContext {
    chain: Vec<Vec<u8>>,
    chain_pem: String,
    ca_name: String,
    servers: Vec<ServerCert>,
}

/// A live server certificate of the store: the names a remote host is matched with.
struct ServerCert {
    /// The subject CN (what `verify-x509-name NAME name` compares).
    cn: String,
    /// DNS SANs, lower case.
    dns: Vec<String>,
    /// IP SANs.
    ips: Vec<std::net::IpAddr>,
}

impl ProfileContext {
    /// Reads the CA chain and the live (valid) server certificates from the store; each server
    /// record's MAC is checked, so the names pinned in profiles are the store's own, and the
    /// whole state first ([`Store::require_whole_state`]): a server record deleted outside vpnca
    /// would otherwise leave profiles without their `verify-x509-name` pin.
    pub fn new(store: &Store) -> Result<ProfileContext> {
        store.require_whole_state()?;
        let filter = ListFilter {
            kind: Some(CertKind::Server),
            status: Some(Status::Valid),
            ..ListFilter::default()
        };
        let mut servers = Vec::new();
        for rec in store.list(&filter)? {
            store.check_record(&rec)?;
            let source = format!("the certificate of {}", crate::shell::quote(&rec.name));
            let cert = crate::x509::parse_cert(&rec.der, &source)?;
            let Some(cn) = crate::x509::common_name(cert.subject()) else {
                continue;
            };
            let (mut dns, mut ips) = (Vec::new(), Vec::new());
            for san in crate::x509::sans(&cert) {
                match san {
                    crate::name::San::Dns(d) => dns.push(d.to_ascii_lowercase()),
                    crate::name::San::Ip(ip) => ips.push(ip),
                    crate::name::San::Email(_) => {}
                }
            }
            servers.push(ServerCert { cn, dns, ips });
        }
        Ok(ProfileContext {
            chain: store.ca_chain()?,
            chain_pem: store.ca_chain_pem()?,
            ca_name: store.ca()?.name,
            servers,
        })
    }

    /// The CNs of the live server certificates whose CN or SAN is `host` (distinct, sorted).
    fn servers_named(&self, host: &str) -> Vec<&str> {
        let ip = host.parse::<std::net::IpAddr>().ok();
        let mut cns: Vec<&str> = self
            .servers
            .iter()
            .filter(|s| match ip {
                Some(ip) => s.ips.contains(&ip),
                None => {
                    s.cn.eq_ignore_ascii_case(host)
                        || s.dns.iter().any(|d| d.eq_ignore_ascii_case(host))
                }
            })
            .map(|s| s.cn.as_str())
            .collect();
        cns.sort_unstable();
        cns.dedup();
        cns
    }

    /// The server name to pin for a profile whose remote hosts are `hosts`: the CN of the one
    /// live server certificate they all name. Several candidates, or a CN that cannot be
    /// written into `verify-x509-name`, give a warning and no name.
    fn known_server_name(&self, hosts: &[&str], warnings: &mut Vec<String>) -> Option<String> {
        let mut found: Option<&str> = None;
        for host in hosts {
            match self.servers_named(host)[..] {
                [cn] if found.is_none_or(|f| f == cn) => found = Some(cn),
                [] => return None,
                ref several => {
                    let mut names: Vec<&str> = several.to_vec();
                    names.extend(found);
                    names.sort_unstable();
                    names.dedup();
                    warnings.push(format!(
                        "the remote host {} matches the server certificates {}: no verify-x509-name added (pass --server-name NAME with --remote)",
                        crate::shell::quote(host),
                        names
                            .iter()
                            .map(|n| crate::shell::quote(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    return None;
                }
            }
        }
        let cn = found?;
        match x509_name(cn, "the server certificate") {
            Ok(n) if n == cn => Some(n),
            _ => {
                warnings.push(format!(
                    "the server certificate {} has a CN that verify-x509-name cannot express: no verify-x509-name added",
                    crate::shell::quote(cn)
                ));
                None
            }
        }
    }

    /// The checks of `base` that do not depend on the user (an endpoint configuration's `<ca>`
    /// block against the policy it was read with), so that a batch can refuse it before it
    /// issues anything. Returns the warnings [`ProfileContext::compose`] will repeat.
    pub fn check_base(&self, base: &ProfileBase) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if let ProfileBase::Endpoint { config, .. } = base {
            self.check_ca_block(config, &mut warnings)?;
        }
        Ok(warnings)
    }

    /// The profile text for a certificate and key (PEM), and the warnings.
    pub fn compose(
        &self,
        base: &ProfileBase,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<(Zeroizing<String>, Vec<String>)> {
        let cert_lines = block_lines(cert_pem);
        let key_lines = block_lines(key_pem);
        let mut warnings = Vec::new();
        let config = match base {
            ProfileBase::Endpoint {
                config,
                random_hostname_prefix,
            } => {
                let mut c = config.clone();
                self.check_ca_block(&c, &mut warnings)?;
                warnings.extend(c.let_through.iter().cloned());
                strip_credentials(&mut c, &mut warnings);
                let pinned = c.has_directive("verify-x509-name")
                    || c.items
                        .iter()
                        .any(|it| matches!(it, Item::Block { tag, .. } if tag == "connection"));
                if !pinned {
                    let hosts = c.remote_hosts();
                    if !hosts.is_empty()
                        && let Some(n) = self.known_server_name(&hosts, &mut warnings)
                    {
                        c.insert_line_after(
                            "remote-cert-tls",
                            format!("verify-x509-name {n} name"),
                        );
                    }
                }
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
            } => {
                let name = match server_name {
                    Some(n) => Some(x509_name(n, "--server-name")?),
                    None => self.known_server_name(&[host.as_str()], &mut warnings),
                };
                plain_config(
                    host,
                    *port,
                    *proto,
                    name.as_deref(),
                    &self.chain_pem,
                    cert_lines,
                    key_lines,
                )
            }
        };
        Ok((config.render(), warnings))
    }

    /// The endpoint configuration's `<ca>` must exist. A `<ca>` without this PKI's CA gets a
    /// warning (the endpoint's server certificate comes from another CA: a wrong endpoint,
    /// or a deliberate split between server and client CAs). A `<ca>` with this PKI's CA and
    /// other certificates besides is refused unless the policy allows a foreign CA (then a
    /// warning): every user's client would also trust the servers those certify.
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
        let foreign: Vec<String> = certs
            .iter()
            .filter(|der| !self.chain.contains(der))
            .map(|der| describe_cert(der.as_slice()))
            .collect();
        if !foreign.is_empty() && foreign.len() < certs.len() {
            let what = format!(
                "this PKI's CA ({}) and {} other certificate(s) ({})",
                crate::shell::quote(&self.ca_name),
                foreign.len(),
                foreign.join(", ")
            );
            if !c.policy.allow_foreign_ca {
                return Err(Error::input(
                    format!("OpenVPN configuration {}", c.source),
                    format!(
                        "its <ca> block holds {what}: every user's client would also trust any \
                         server those certify. Remove them from the block, or pass \
                         --allow-foreign-ca if the server really needs them"
                    ),
                ));
            }
            warnings.push(format!(
                "the configuration's <ca> block holds {what}, let through by --allow-foreign-ca: users' clients also trust any server those certify"
            ));
        } else if !foreign.is_empty() {
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
            Some(d) if CREDENTIAL_BLOCKS.contains(&d) => {
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
fn insert_credentials(c: &mut ClientConfig, cert: BlockLines, key: BlockLines) {
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

/// A subject for messages: its CN, else the whole subject.
fn describe_cert(der: &[u8]) -> String {
    match crate::x509::parse_cert(der, "a <ca> certificate") {
        Ok(c) => crate::shell::quote(
            &crate::x509::common_name(c.subject()).unwrap_or_else(|| c.subject().to_string()),
        )
        .into_owned(),
        Err(_) => "(unreadable)".into(),
    }
}

/// A server name as it goes into `verify-x509-name NAME name`; `what` names its source in
/// errors.
fn x509_name(n: &str, what: &str) -> Result<String> {
    let n = crate::name::normalize_name(n)?;
    if n.contains(char::is_whitespace) || n.contains('\'') || n.contains('"') {
        return Err(Error::input(
            what,
            format!(
                "{}: spaces and quotes cannot go into verify-x509-name",
                crate::shell::quote(&n)
            ),
        ));
    }
    Ok(n)
}

/// A complete profile; `server_name` is already checked ([`x509_name`]).
fn plain_config(
    host: &str,
    port: u16,
    proto: Proto,
    server_name: Option<&str>,
    chain_pem: &str,
    cert: BlockLines,
    key: BlockLines,
) -> ClientConfig {
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
        lines.push(format!("verify-x509-name {n} name"));
    }
    lines.push("verb 3".into());
    let mut items: Vec<Item> = lines.into_iter().map(Item::Line).collect();
    items.push(Item::Block {
        tag: "ca".into(),
        lines: block_lines(chain_pem),
    });
    items.push(Item::Block {
        tag: "cert".into(),
        lines: cert,
    });
    items.push(Item::Block {
        tag: "key".into(),
        lines: key,
    });
    ClientConfig {
        items,
        crlf: false,
        source: "the generated profile".into(),
        policy: DirectivePolicy::default(),
        let_through: Vec::new(),
    }
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

    /// The key lines are held in zeroizing buffers, `Debug` does not show them, and the
    /// rendered profile is written into one buffer of its final size (a growing `String`
    /// leaves copies of the key in the buffers it gives up).
    ///
    /// Fails when: the size estimate is off (seen with the closing tag's `</` left out: the
    /// buffer grew), or blocks are printed by `Debug`.
    #[test]
    fn key_lines_are_zeroizing_and_not_printed() {
        let text = "client\nremote a.example 443\n<ca>\nCA-LINE\n</ca>\n<key>\nKEY-LINE-1\nKEY-LINE-2\n</key>\n";
        for t in [text.to_owned(), text.replace('\n', "\r\n")] {
            let c = ClientConfig::parse(t.as_bytes(), "t").expect("parse");
            let lines: &BlockLines = match &c.items[2] {
                Item::Block { lines, .. } => lines,
                Item::Line(_) => panic!("not a block"),
            };
            assert_eq!(lines.len(), 1);
            let debug = format!("{c:?}");
            assert!(
                !debug.contains("KEY-LINE") && debug.contains("<2 lines>"),
                "{debug}"
            );
            let r = c.render();
            assert_eq!(r.as_str(), t);
            assert_eq!(r.capacity(), r.len(), "the profile buffer grew");
        }
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

    /// Fails when: a line is judged by anything but its first word as OpenVPN reads it (a
    /// `--up` or an indented `up` slips through), an allowed directive is refused, a refusal
    /// does not name the line, or a `DirectivePolicy` name does not let exactly its directive
    /// through (seen with `directive` not dropping `--`, and with `allows` always false).
    #[test]
    fn directives_outside_the_allow_list_are_refused_by_line() {
        let base = "client\nremote vpn.example.com 443\n<ca>\nX\n</ca>\n";
        let with = |line: &str| format!("{base}{line}\n");
        for ok in [
            "verb 3",
            "  persist-key",
            "auth-user-pass",
            "cipher AES-256-GCM",
            "cert client.crt",
            "# up /bin/sh",
            "; script-security 2",
            "<tls-crypt>\nX\n</tls-crypt>",
        ] {
            ClientConfig::parse(with(ok).as_bytes(), "t")
                .unwrap_or_else(|e| panic!("{ok:?} refused: {e}"));
        }
        for (bad, name) in [
            ("script-security 2", "script-security"),
            ("  up /bin/sh", "up"),
            ("--up /bin/sh", "up"),
            ("\"up\" /bin/sh", "\"up\""),
            ("auth-user-pass creds.txt", "auth-user-pass"),
            ("data-ciphers AES-256-GCM:none", "data-ciphers"),
            // Fails when: `refusal` lets these weakening values through.
            ("auth none", "auth"),
            ("tls-cipher DEFAULT:@SECLEVEL=0", "tls-cipher"),
            ("tls-cipher aNULL", "tls-cipher"),
            ("tls-version-min 1.0", "tls-version-min"),
            ("management-hold", "management-hold"),
            ("<connection>\nremote x\n</connection>", "connection"),
        ] {
            let e = ClientConfig::parse(with(bad).as_bytes(), "t")
                .expect_err(bad)
                .to_string();
            assert!(e.contains("line 6:") && e.contains(name), "{bad}: {e}");
            let policy = DirectivePolicy::new(&[name.trim_matches('"').to_owned()], false)
                .expect("a directive name");
            let parsed = ClientConfig::parse_with(with(bad).as_bytes(), "t", &policy);
            if name.starts_with('"') {
                assert!(parsed.is_err(), "{bad}: a quoted name let through");
            } else {
                let c = parsed.unwrap_or_else(|e| panic!("{bad} with --allow-directive: {e}"));
                assert_eq!(c.let_through.len(), 1, "{bad}");
                assert_eq!(c.render().as_str(), with(bad), "{bad}: not kept as it was");
            }
        }
        let many = format!("{base}up a\nverb 3\ndown b\n");
        let e = ClientConfig::parse(many.as_bytes(), "t")
            .expect_err("two refusals")
            .to_string();
        assert!(
            e.contains("line 6: `up a`") && e.contains("line 8: `down b`"),
            "{e}"
        );
        for bad in ["", "--up", "<ca>", "Up", "up down"] {
            assert!(
                DirectivePolicy::new(&[bad.to_owned()], false).is_err(),
                "{bad:?}"
            );
        }
    }

    /// Lines OpenVPN would read otherwise than this parser, so that a directive could hide
    /// from the allow-list: a block closed by a line with more after `</tag>` (OpenVPN ends
    /// the block there; the `up` below would be a directive to it), and a line longer than
    /// OpenVPN's buffer (the rest becomes a line of its own).
    ///
    /// Fails when: the block ends only at an exact `</tag>` line, as before issue 17 (seen:
    /// the first file parsed, its `up` inside the `<ca>` block), or long lines are read whole
    /// (seen: the second file parsed).
    #[test]
    fn lines_openvpn_reads_differently_are_refused() {
        let hidden = "client\n<ca>\nX\n</ca> trailing\nup /bin/sh\n</ca>\n";
        let e = ClientConfig::parse(hidden.as_bytes(), "t")
            .expect_err("text after </ca>")
            .to_string();
        assert!(e.contains("line 4: text after </ca>"), "{e}");
        let long = format!("client\nverb 3{}up /bin/sh\n", " ".repeat(250));
        let e = ClientConfig::parse(long.as_bytes(), "t")
            .expect_err("a long line")
            .to_string();
        assert!(e.contains("line 2:") && e.contains("at most 254"), "{e}");
        let fits = format!("client\nverb 3{}\r\n", " ".repeat(247));
        ClientConfig::parse(fits.as_bytes(), "t").expect("254 bytes with the CR");
        ClientConfig::parse(b"client\n<ca>\nX\n  </CA>  \n", "t").expect("a plain closing tag");
    }

    #[test]
    fn the_allow_lists_are_sorted_and_name_nothing_dangerous() {
        assert!(ALLOWED_DIRECTIVES.windows(2).all(|w| w[0] < w[1]));
        // (The `ca`, `tls-auth` and `tls-crypt` lines read files; their inline blocks do not.)
        for name in ALLOWED_DIRECTIVES {
            assert!(
                danger(name).is_none() || *name == "auth-user-pass",
                "{name} is allowed and dangerous"
            );
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
