//! Delivering credentials to users: `vpnca profile` (an AWS Client VPN endpoint's configuration
//! or a plain OpenVPN profile with the user's certificate and key inline) and `vpnca export
//! --format p12|pem-encrypted`.
//!
//! Everything vpnca writes here is checked with independent tools: the `openssl` CLI reads the
//! keys, certificates and PKCS#12 files, and a real OpenVPN client connects with the profiles
//! to an OpenVPN server (tests/common/openvpn.rs). Nothing is re-parsed with vpnca's own code.
mod common;
use common::*;

use std::path::{Path, PathBuf};

use common::openvpn::{ExportedServer, Handshake};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A configuration file kept for these tests: `tests/data/ovpn/<name>` (see its README.md).
fn ovpn_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ovpn")
        .join(name)
}

/// The AWS Client VPN endpoint configuration whose `<ca>` is a foreign CA.
const ENDPOINT: &str = "clientvpn-endpoint-config.ovpn";

/// The endpoint configuration's DNS name (its `remote` host).
const ENDPOINT_HOST: &str =
    "cvpn-endpoint-0a1b2c3d4e5f60718.prod.clientvpn.us-east-1.amazonaws.com";

/// The lines of a text split at `\n` only: a CR stays part of its line, and a final newline
/// shows as a last empty element, so comparing these compares the bytes.
fn raw_lines(text: &str) -> Vec<String> {
    text.split('\n').map(str::to_owned).collect()
}

/// The body of every `<tag>`…`</tag>` block of a configuration, as lines without CR.
fn blocks(text: &str, tag: &str) -> Vec<Vec<String>> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        match &mut current {
            Some(body) if line == close => {
                found.push(std::mem::take(body));
                current = None;
            }
            Some(body) => body.push(line.to_owned()),
            None if line == open => current = Some(Vec::new()),
            None => {}
        }
    }
    assert!(current.is_none(), "<{tag}> never closed in:\n{text}");
    found
}

/// The body of the one `<tag>` block, as PEM text with a final newline.
fn block_pem(text: &str, tag: &str) -> String {
    let all = blocks(text, tag);
    assert_eq!(
        all.len(),
        1,
        "expected exactly one <{tag}> block in:\n{text}"
    );
    all[0].join("\n") + "\n"
}

/// The lines of a file without line endings.
fn file_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|err| panic!("{}: {err}", p.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `text` to `<env dir>/<name>`; returns the absolute path.
fn write(e: &Env, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let p = e.path(name);
    std::fs::write(&p, text).unwrap_or_else(|err| panic!("{name}: {err}"));
    p
}

/// stdout and stderr of a run, for messages and for tools that report on stderr.
fn both(o: &std::process::Output) -> String {
    format!("{}{}", s(&o.stdout), s(&o.stderr))
}

/// Writes a PEM text (a profile's `<key>` block, say) to `<env dir>/<name>` and checks with
/// openssl that it is the key of `cert`.
fn assert_pem_key_matches_cert(e: &Env, pem: &str, name: &str, cert: &str, pass: Option<&str>) {
    write(e, name, pem);
    assert_key_matches_cert(e.dir.path(), name, cert, pass);
}

/// DER of the first certificate of a PEM file, converted by openssl.
fn cert_der(dir: &Path, pem: &str) -> Vec<u8> {
    let o = openssl(&["x509", "-in", pem, "-outform", "DER"], dir);
    assert!(o.status.success(), "openssl x509 {pem}: {}", both(&o));
    assert!(!o.stdout.is_empty(), "openssl x509 {pem}: no output");
    o.stdout
}

/// Runs `vpnca ARGS`, asserts exit 0 and no warning; returns stdout.
fn ok_quiet(e: &Env, args: &[&str]) -> String {
    let o = e.run(args);
    assert!(
        o.status.success(),
        "vpnca {args:?} failed ({:?}):\n{}",
        o.status.code(),
        both(&o)
    );
    assert!(
        !s(&o.stderr).contains("warning"),
        "vpnca {args:?}: unexpected warning:\n{}",
        s(&o.stderr)
    );
    s(&o.stdout)
}

/// The endpoint configuration with its `<ca>` body replaced by this store's `ca.crt`: an
/// endpoint whose server certificate vpnca issued.
fn endpoint_with_our_ca(e: &Env) -> String {
    let fixture = std::fs::read_to_string(ovpn_fixture(ENDPOINT)).expect("endpoint fixture");
    let ca = std::fs::read_to_string(e.pki.join("ca.crt")).expect("ca.crt");
    let mut out = String::new();
    let mut in_ca = false;
    for line in fixture.lines() {
        match line {
            "<ca>" => {
                in_ca = true;
                out.push_str("<ca>\n");
                out.push_str(&ca);
            }
            "</ca>" => {
                in_ca = false;
                out.push_str("</ca>\n");
            }
            _ if in_ca => {}
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert!(out.contains(&ca), "the fixture has no <ca> block");
    out
}

/// A store with a CA, a server certificate `vpn.example.com` (exported with its key to `srv/`),
/// a CRL, and the client `alice`.
struct Pki {
    e: Env,
    server: ExportedServer,
}

impl Pki {
    fn new() -> Pki {
        let e = Env::with_ca();
        e.ok(&["server", "vpn.example.com"]);
        let server = ExportedServer::export(&e, "vpn.example.com", "srv");
        e.ok(&["client", "alice"]);
        e.ok(&["crl"]);
        Pki { e, server }
    }

    /// An OpenVPN server with our server certificate, trusting our CA, checking our CRL.
    fn connect(&self, profile: &str) -> Handshake {
        self.server.connect(profile)
    }

    /// `vpnca profile NAME ARGS --out OUT`, asserting exit 0 and no warning; returns the profile.
    fn profile(&self, name: &str, args: &[&str], out: &str) -> String {
        let mut a = vec!["profile", name];
        a.extend_from_slice(args);
        a.extend(["--out", out]);
        ok_quiet(&self.e, &a);
        std::fs::read_to_string(self.e.path(out)).expect("profile written")
    }
}

/// The profile without its inline `<cert>` and `<key>` blocks (vpnca writes them one after
/// the other).
fn without_credentials(profile: &str) -> String {
    let cert = block_pem(profile, "cert");
    let key = block_pem(profile, "key");
    profile.replace(&format!("<cert>\n{cert}</cert>\n<key>\n{key}</key>\n"), "")
}

// ---------------------------------------------------------------------------------------------
// 1–2. An endpoint's configuration + the user's credentials, through a real OpenVPN handshake
// ---------------------------------------------------------------------------------------------

/// Checks the profile made from `input`: the input's lines, byte for byte, with exactly a
/// `<cert>` block (alice's certificate) and a `<key>` block inserted after `</ca>`; the key is
/// the certificate's (openssl).
fn assert_is_input_plus_credentials(e: &Env, input: &str, profile: &str) {
    let in_lines = raw_lines(input);
    let out_lines = raw_lines(profile);
    let eol = if input.contains("\r\n") { "\r" } else { "" };
    let at = in_lines
        .iter()
        .position(|l| l.trim_end_matches('\r') == "</ca>")
        .expect("input has </ca>")
        + 1;
    let key = blocks(profile, "key");
    assert_eq!(key.len(), 1, "one <key> block expected:\n{profile}");
    let key = &key[0];
    assert_eq!(
        key.first().map(String::as_str),
        Some("-----BEGIN PRIVATE KEY-----"),
        "{profile}"
    );
    assert_eq!(
        key.last().map(String::as_str),
        Some("-----END PRIVATE KEY-----"),
        "{profile}"
    );
    let tagged = |tag: &str, body: &[String]| -> Vec<String> {
        let mut v = vec![format!("<{tag}>{eol}")];
        v.extend(body.iter().map(|l| format!("{l}{eol}")));
        v.push(format!("</{tag}>{eol}"));
        v
    };
    let mut expected = in_lines[..at].to_vec();
    expected.extend(tagged("cert", &file_lines(&e.pki.join("issued/alice.crt"))));
    expected.extend(tagged("key", key));
    expected.extend_from_slice(&in_lines[at..]);
    assert_eq!(
        out_lines, expected,
        "the profile must be the input with <cert> and <key> inserted after </ca>"
    );
    let key_pem = key.join("\n") + "\n";
    assert_pem_key_matches_cert(e, &key_pem, "profile-key.pem", "pki/issued/alice.crt", None);
}

#[test]
fn endpoint_profile_connects_to_a_real_openvpn_server() {
    let pki = Pki::new();
    let e = &pki.e;
    let input = endpoint_with_our_ca(e);
    write(e, "endpoint.ovpn", &input);

    let profile = pki.profile("alice", &["--config", "endpoint.ovpn"], "alice.ovpn");
    assert_eq!(mode(&e.path("alice.ovpn")), 0o600, "profile mode");
    assert_is_input_plus_credentials(e, &input, &profile);
    assert_eq!(
        block_pem(&profile, "cert"),
        std::fs::read_to_string(e.pki.join("issued/alice.crt")).expect("alice.crt"),
        "<cert> must be issued/alice.crt"
    );

    let hs = pki.connect(&profile);
    assert!(hs.ok, "alice's endpoint profile must connect:\n{hs}");
}

#[test]
fn a_revoked_users_profile_is_refused_and_no_new_one_is_written() {
    let pki = Pki::new();
    let e = &pki.e;
    write(e, "endpoint.ovpn", endpoint_with_our_ca(e));
    let profile = pki.profile("alice", &["--config", "endpoint.ovpn"], "alice.ovpn");
    let hs = pki.connect(&profile);
    assert!(hs.ok, "before revocation:\n{hs}");

    e.ok(&["revoke", "alice"]);
    let hs = pki.connect(&profile);
    assert!(!hs.ok, "a revoked user's profile must be refused:\n{hs}");
    assert!(hs.refused_by_server(), "not refused by the server:\n{hs}");
    assert!(
        hs.client_cert_revoked(),
        "refused, but not as revoked:\n{hs}"
    );

    let before = e.snapshot();
    let err = e.fails(
        &[
            "profile",
            "alice",
            "--config",
            "endpoint.ovpn",
            "--out",
            "alice2.ovpn",
        ],
        2,
    );
    assert!(err.contains("revoked"), "unclear message: {err}");
    assert!(!e.path("alice2.ovpn").exists(), "a profile was written");
    assert_eq!(e.snapshot(), before, "the store changed");
}

#[test]
fn endpoint_profile_keeps_crlf_line_endings() {
    let pki = Pki::new();
    let e = &pki.e;
    let input = endpoint_with_our_ca(e).replace('\n', "\r\n");
    write(e, "endpoint-crlf.ovpn", &input);
    let profile = pki.profile("alice", &["--config", "endpoint-crlf.ovpn"], "crlf.ovpn");
    assert_is_input_plus_credentials(e, &input, &profile);
}

// ---------------------------------------------------------------------------------------------
// 3. Plain OpenVPN profiles (--remote)
// ---------------------------------------------------------------------------------------------

#[test]
fn plain_profile_connects_checks_the_server_name_and_does_tcp() {
    let pki = Pki::new();
    let e = &pki.e;
    e.ok(&["client", "bob"]);
    let remote = ["--remote", "127.0.0.1:1194"];

    let good = pki.profile(
        "bob",
        &[&remote[..], &["--server-name", "vpn.example.com"]].concat(),
        "bob.ovpn",
    );
    assert_eq!(mode(&e.path("bob.ovpn")), 0o600, "profile mode");
    assert_eq!(
        block_pem(&good, "ca"),
        std::fs::read_to_string(e.pki.join("ca.crt")).expect("ca.crt"),
        "<ca> must be the store's CA"
    );
    assert_eq!(
        block_pem(&good, "cert"),
        std::fs::read_to_string(e.pki.join("issued/bob.crt")).expect("bob.crt"),
        "<cert> must be issued/bob.crt"
    );
    assert_pem_key_matches_cert(
        e,
        &block_pem(&good, "key"),
        "bob-key.pem",
        "pki/issued/bob.crt",
        None,
    );
    let hs = pki.connect(&good);
    assert!(hs.ok, "plain profile with the right server name:\n{hs}");

    let wrong = pki.profile(
        "bob",
        &[&remote[..], &["--server-name", "wrong.example.com"]].concat(),
        "bob-wrong.ovpn",
    );
    let hs = pki.connect(&wrong);
    assert!(!hs.ok, "a wrong server name must be refused:\n{hs}");
    // `Handshake::refused_by_client()` does not know OpenVPN's "VERIFY X509NAME ERROR" line
    // (the name check comes after the chain, KU and EKU checks), so look for it directly.
    assert!(
        hs.client_log
            .contains("VERIFY X509NAME ERROR: CN=vpn.example.com, must be wrong.example.com"),
        "not refused by the client's verify-x509-name:\n{hs}"
    );
    assert!(
        !hs.server_log.contains("Peer Connection Initiated"),
        "the server accepted the connection:\n{hs}"
    );

    let tcp = pki.profile(
        "bob",
        &[&remote[..], &["--proto", "tcp"]].concat(),
        "bob-tcp.ovpn",
    );
    assert!(
        tcp.lines().any(|l| l.trim() == "proto tcp"),
        "no `proto tcp` line:\n{tcp}"
    );
    let hs = pki.connect(&tcp);
    assert!(hs.ok, "plain profile over TCP:\n{hs}");
    assert!(
        hs.server_log
            .contains("Listening for incoming TCP connection"),
        "the server did not run over TCP:\n{hs}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4–5. Warnings and --random-hostname-prefix
// ---------------------------------------------------------------------------------------------

#[test]
fn a_foreign_ca_in_the_endpoint_configuration_is_a_warning() {
    let pki = Pki::new();
    let e = &pki.e;
    let config = ovpn_fixture(ENDPOINT);
    let config = config.to_str().expect("UTF-8 path");
    let phrase = "does not contain this PKI's CA";

    let o = e.run(&["profile", "alice", "--config", config, "--out", "a.ovpn"]);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let err = s(&o.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: ") && l.contains(phrase)),
        "no warning about the foreign <ca> on stderr:\n{err}"
    );
    assert!(e.path("a.ovpn").is_file(), "no profile written");

    let v = e.json(&["profile", "alice", "--config", config, "--out", "b.ovpn"]);
    let warnings = v["warnings"].as_array().expect("warnings array");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains(phrase))),
        "no warning about the foreign <ca> in the JSON: {v:#}"
    );
    assert!(e.path("b.ovpn").is_file(), "no profile written");
}

#[test]
fn random_hostname_prefix_labels_the_endpoint_name() {
    let pki = Pki::new();
    let e = &pki.e;
    let input = endpoint_with_our_ca(e);
    write(e, "endpoint.ovpn", &input);

    let mut labels = Vec::new();
    for out in ["r1.ovpn", "r2.ovpn"] {
        let profile = pki.profile(
            "alice",
            &["--config", "endpoint.ovpn", "--random-hostname-prefix"],
            out,
        );
        let remote = profile
            .lines()
            .find(|l| l.starts_with("remote "))
            .unwrap_or_else(|| panic!("no remote line:\n{profile}"));
        let words: Vec<&str> = remote.split_whitespace().collect();
        assert_eq!(words.len(), 3, "{remote}");
        assert_eq!(words[2], "443", "the port changed: {remote}");
        let label = words[1]
            .strip_suffix(&format!(".{ENDPOINT_HOST}"))
            .unwrap_or_else(|| panic!("the host is not LABEL.{ENDPOINT_HOST}: {remote}"));
        assert!(
            label.len() == 12
                && label
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "the label is not 12 lower-case hex characters: {remote}"
        );

        // Every other line is unchanged.
        let expected: String = input
            .lines()
            .filter(|l| *l != "remote-random-hostname")
            .map(|l| {
                if l.starts_with("remote ") {
                    format!("{remote}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert_eq!(without_credentials(&profile), expected);
        labels.push(label.to_owned());
    }
    assert_ne!(labels[0], labels[1], "the label is not random");
}

// ---------------------------------------------------------------------------------------------
// 6. Negative cases, as data
// ---------------------------------------------------------------------------------------------

enum Expect {
    /// Exit 2 with this phrase in the error; no file, store unchanged.
    Error(&'static str),
    /// Exit 0 with a `warning:` containing this phrase.
    Warning(&'static str),
}

#[test]
fn broken_and_odd_configurations_are_data() {
    let pki = Pki::new();
    let e = &pki.e;
    let cases = [
        ("no-ca.ovpn", Expect::Error("no <ca> block")),
        ("binary.ovpn", Expect::Error("binary")),
        ("unterminated.ovpn", Expect::Error("never closed")),
        ("ca-not-a-certificate.ovpn", Expect::Error("<ca>")),
        ("stray-close.ovpn", Expect::Error("closes no open block")),
        (
            "already-has-credentials.ovpn",
            Expect::Warning("already had client credentials"),
        ),
    ];
    let mut problems = Vec::new();
    for (file, expect) in cases {
        let config = ovpn_fixture(file);
        let out = format!("out-{file}");
        let before = e.snapshot();
        let o = e.run(&[
            "profile",
            "alice",
            "--config",
            config.to_str().expect("UTF-8 path"),
            "--out",
            &out,
        ]);
        let err = s(&o.stderr);
        if err.contains("panicked") {
            problems.push(format!("{file}: panic:\n{err}"));
        }
        match expect {
            Expect::Error(phrase) => {
                if o.status.code() != Some(2) {
                    problems.push(format!(
                        "{file}: exit {:?}, not 2:\n{}",
                        o.status.code(),
                        both(&o)
                    ));
                }
                if !err.contains(phrase) {
                    problems.push(format!("{file}: the error lacks {phrase:?}:\n{err}"));
                }
                if !err.contains(file) {
                    problems.push(format!("{file}: the error does not name the file:\n{err}"));
                }
                if e.path(&out).exists() {
                    problems.push(format!("{file}: {out} was written"));
                }
                if e.snapshot() != before {
                    problems.push(format!("{file}: the store changed"));
                }
            }
            Expect::Warning(phrase) => {
                if o.status.code() != Some(0) {
                    problems.push(format!(
                        "{file}: exit {:?}, not 0:\n{}",
                        o.status.code(),
                        both(&o)
                    ));
                    continue;
                }
                if !err
                    .lines()
                    .any(|l| l.starts_with("warning: ") && l.contains(phrase))
                {
                    problems.push(format!("{file}: no warning with {phrase:?}:\n{err}"));
                }
                let profile = std::fs::read_to_string(e.path(&out)).expect("profile written");
                assert_eq!(
                    block_pem(&profile, "cert"),
                    std::fs::read_to_string(e.pki.join("issued/alice.crt")).expect("alice.crt"),
                    "{file}: the <cert> block is not alice's"
                );
                assert_pem_key_matches_cert(
                    e,
                    &block_pem(&profile, "key"),
                    "creds-key.pem",
                    "pki/issued/alice.crt",
                    None,
                );
                if profile.lines().any(|l| l.trim() == "cert client.crt") {
                    problems.push(format!("{file}: `cert client.crt` kept:\n{profile}"));
                }
                if profile.contains("this is not") {
                    problems.push(format!("{file}: the old credentials kept:\n{profile}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Users a profile cannot be written for, and an existing output file.
#[test]
fn profiles_are_refused_for_servers_csr_users_unknown_names_and_existing_files() {
    let pki = Pki::new();
    let e = &pki.e;
    // carol's key stays with her: her certificate is signed from a CSR made by openssl.
    openssl_req(
        e.dir.path(),
        RSA_2048,
        "carol",
        "carol.key",
        "carol.csr",
        &[],
    );
    e.ok(&["sign-req", "carol.csr", "--type", "client"]);
    write(e, "taken.ovpn", "do not overwrite\n");

    let cases: [(&str, &str, &str); 4] = [
        ("vpn.example.com", "new1.ovpn", "server certificate"),
        ("carol", "new2.ovpn", "CSR"),
        ("nobody", "new3.ovpn", "nobody"),
        ("alice", "taken.ovpn", "taken.ovpn"),
    ];
    let mut problems = Vec::new();
    for (name, out, phrase) in cases {
        let before = e.snapshot();
        let out_before = std::fs::read(e.path(out)).ok();
        let o = e.run(&["profile", name, "--remote", "vpn.example.com", "--out", out]);
        let err = s(&o.stderr);
        if o.status.code() != Some(2) {
            problems.push(format!(
                "{name}: exit {:?}, not 2:\n{}",
                o.status.code(),
                both(&o)
            ));
        }
        if !err.contains(phrase) || err.contains("panicked") {
            problems.push(format!("{name}: the error lacks {phrase:?}:\n{err}"));
        }
        if std::fs::read(e.path(out)).ok() != out_before {
            problems.push(format!("{name}: {out} was written"));
        }
        if e.snapshot() != before {
            problems.push(format!("{name}: the store changed"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The options of one base are refused with the other, not silently ignored: a `--server-name`
/// dropped from an endpoint profile would leave the admin believing the name is pinned.
#[test]
fn options_of_the_other_base_are_refused() {
    let pki = Pki::new();
    let e = &pki.e;
    write(e, "endpoint.ovpn", endpoint_with_our_ca(e));
    let config = ["--config", "endpoint.ovpn"];
    let remote = ["--remote", "vpn.example.com"];
    let cases: [(&[&str], &[&str], &str); 3] = [
        (
            &config,
            &["--server-name", "vpn.example.com"],
            "--server-name",
        ),
        (&config, &["--proto", "tcp"], "--proto"),
        (
            &remote,
            &["--random-hostname-prefix"],
            "--random-hostname-prefix",
        ),
    ];
    let mut problems = Vec::new();
    for (i, (base, extra, flag)) in cases.into_iter().enumerate() {
        let out = format!("other-{i}.ovpn");
        let mut args = vec!["profile", "alice"];
        args.extend_from_slice(base);
        args.extend_from_slice(extra);
        args.extend(["--out", out.as_str()]);
        let before = e.snapshot();
        let o = e.run(&args);
        if o.status.code() != Some(2) || !s(&o.stderr).contains(flag) {
            problems.push(format!(
                "{args:?}: exit {:?}, expected 2 with a message naming {flag}:\n{}",
                o.status.code(),
                both(&o)
            ));
        }
        if e.path(&out).exists() {
            problems.push(format!(
                "{args:?}: {out} was written (the option was ignored)"
            ));
        }
        if e.snapshot() != before {
            problems.push(format!("{args:?}: the store changed"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// 7–8. Encrypted key in the profile; the audit log
// ---------------------------------------------------------------------------------------------

#[test]
fn key_passphrase_file_encrypts_the_key_in_the_profile() {
    let pki = Pki::new();
    let e = &pki.e;
    write(e, "endpoint.ovpn", endpoint_with_our_ca(e));
    let pf = write(e, "key-pass", "profile-key-pass-1\n");
    write(e, "wrong-pass", "not-the-passphrase\n");

    let profile = pki.profile(
        "alice",
        &[
            "--config",
            "endpoint.ovpn",
            "--key-passphrase-file",
            "key-pass",
        ],
        "enc.ovpn",
    );
    let key = block_pem(&profile, "key");
    assert!(
        key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
            && key.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"),
        "the <key> block is not an encrypted PKCS#8 key:\n{key}"
    );
    assert_pem_key_matches_cert(
        e,
        &key,
        "enc-key.pem",
        "pki/issued/alice.crt",
        Some("key-pass"),
    );
    assert_wrong_passphrase_fails(e.dir.path(), "enc-key.pem", "wrong-pass");

    // OpenVPN itself decrypts the key (askpass reads the passphrase from the file).
    let hs = pki.connect(&format!("{profile}askpass {}\n", pf.display()));
    assert!(hs.ok, "profile with an encrypted key:\n{hs}");
}

#[test]
fn the_audit_log_records_each_profile() {
    let pki = Pki::new();
    let e = &pki.e;
    pki.profile("alice", &["--remote", "vpn.example.com"], "alice.ovpn");
    let log = e.json_lines(&["log"]);
    let entry = log
        .iter()
        .find(|v| v["action"] == "profile" && v["name"] == "alice")
        .unwrap_or_else(|| panic!("no profile entry for alice: {log:#?}"));
    let files = entry["detail"]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {entry:#}"));
    assert!(
        files
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.ends_with("alice.ovpn"))),
        "the entry does not name alice.ovpn: {entry:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 9–11. export --format p12 | pem-encrypted
// ---------------------------------------------------------------------------------------------

/// `openssl pkcs12 -in P12 -passin file:PASS ARGS` (without -legacy): (success, stdout+stderr).
fn pkcs12(dir: &Path, p12: &str, pass: &str, args: &[&str]) -> (bool, String) {
    let passin = format!("file:{pass}");
    let mut a = vec!["pkcs12", "-in", p12, "-passin", passin.as_str()];
    a.extend_from_slice(args);
    let o = openssl(&a, dir);
    (o.status.success(), both(&o))
}

/// Like [`pkcs12`], but must succeed.
fn pkcs12_ok(dir: &Path, p12: &str, pass: &str, args: &[&str]) -> String {
    let (ok, out) = pkcs12(dir, p12, pass, args);
    assert!(ok, "openssl pkcs12 {p12} {args:?} failed:\n{out}");
    out
}

#[test]
fn p12_export_is_read_by_openssl_without_legacy() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let dir = e.dir.path();
    write(&e, "pf", "p12-pass-phrase-1\n");
    write(&e, "wrong", "not-the-pass-phrase\n");
    e.ok(&[
        "export",
        "alice",
        "--format",
        "p12",
        "--out",
        "p12",
        "--p12-passphrase-file",
        "pf",
    ]);
    let files: Vec<PathBuf> = dir_files(&e.path("p12")).into_keys().collect();
    assert_eq!(files, vec![e.path("p12/alice.p12")], "only alice.p12");
    assert_eq!(mode(&e.path("p12/alice.p12")), 0o600, "p12 mode");

    let info = pkcs12_ok(dir, "p12/alice.p12", "pf", &["-info", "-noout"]);
    for want in [
        "PBES2, PBKDF2, AES-256-CBC",
        "hmacWithSHA256",
        "MAC: sha256",
    ] {
        assert!(info.contains(want), "no {want:?} in:\n{info}");
    }
    for legacy in ["RC2", "3DES", "TripleDES", "sha1"] {
        assert!(!info.contains(legacy), "{legacy:?} in:\n{info}");
    }

    pkcs12_ok(
        dir,
        "p12/alice.p12",
        "pf",
        &["-nokeys", "-clcerts", "-out", "leaf.pem"],
    );
    let leaf_text = std::fs::read_to_string(e.path("leaf.pem")).expect("leaf.pem");
    assert!(
        leaf_text.contains("friendlyName: alice"),
        "the certificate's friendlyName is not alice:\n{leaf_text}"
    );
    assert_eq!(
        leaf_text.matches("BEGIN CERTIFICATE").count(),
        1,
        "{leaf_text}"
    );
    assert_eq!(
        cert_der(dir, "leaf.pem"),
        cert_der(dir, "pki/issued/alice.crt"),
        "the p12's certificate is not issued/alice.crt"
    );

    pkcs12_ok(
        dir,
        "p12/alice.p12",
        "pf",
        &["-nokeys", "-cacerts", "-out", "cas.pem"],
    );
    let cas = std::fs::read_to_string(e.path("cas.pem")).expect("cas.pem");
    assert_eq!(cas.matches("BEGIN CERTIFICATE").count(), 1, "{cas}");
    assert_eq!(
        cert_der(dir, "cas.pem"),
        cert_der(dir, "pki/ca.crt"),
        "the p12's CA is not ca.crt"
    );

    pkcs12_ok(
        dir,
        "p12/alice.p12",
        "pf",
        &["-nocerts", "-nodes", "-out", "p12key.pem"],
    );
    let key_text = std::fs::read_to_string(e.path("p12key.pem")).expect("p12key.pem");
    assert!(
        key_text.contains("friendlyName: alice"),
        "the key's friendlyName is not alice:\n{key_text}"
    );
    assert_key_matches_cert(dir, "p12key.pem", "pki/issued/alice.crt", None);

    let (ok, out) = pkcs12(dir, "p12/alice.p12", "wrong", &["-info", "-noout"]);
    assert!(!ok, "a wrong passphrase opened the p12:\n{out}");
    assert!(out.contains("Mac verify error"), "not a MAC error:\n{out}");

    // No passphrase file and no terminal: one is generated and shown once.
    let v = e.json(&["export", "alice", "--format", "p12", "--out", "gen"]);
    let generated = v["passphrase"]
        .as_str()
        .unwrap_or_else(|| panic!("no passphrase in {v:#}"));
    assert!(
        generated.len() >= 16,
        "weak generated passphrase {generated:?}"
    );
    write(&e, "gen-pass", format!("{generated}\n"));
    pkcs12_ok(dir, "gen/alice.p12", "gen-pass", &["-info", "-noout"]);
    pkcs12_ok(
        dir,
        "gen/alice.p12",
        "gen-pass",
        &["-nocerts", "-nodes", "-out", "genkey.pem"],
    );
    assert_key_matches_cert(dir, "genkey.pem", "pki/issued/alice.crt", None);
    let log = e.ok(&["--json", "log"]);
    assert!(
        !log.contains(generated),
        "the generated passphrase is in the audit log"
    );
}

#[test]
fn p12_with_a_non_ascii_passphrase_opens_in_openssl() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let dir = e.dir.path();
    write(&e, "pf", "pässwörd-ünïcode-1\n");
    e.ok(&[
        "export",
        "alice",
        "--format",
        "p12",
        "--out",
        "p12",
        "--key-passphrase-file",
        "pf",
    ]);
    pkcs12_ok(
        dir,
        "p12/alice.p12",
        "pf",
        &["-nocerts", "-nodes", "-out", "k.pem"],
    );
    assert_key_matches_cert(dir, "k.pem", "pki/issued/alice.crt", None);
}

#[test]
fn pem_encrypted_export_is_read_by_openssl_and_never_overwritten() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let dir = e.dir.path();
    write(&e, "pf", "pem-key-pass-1\n");
    write(&e, "wrong", "not-the-pass-phrase\n");
    let args = [
        "export",
        "alice",
        "--format",
        "pem-encrypted",
        "--out",
        "pe",
        "--key-passphrase-file",
        "pf",
    ];
    e.ok(&args);
    let files: Vec<PathBuf> = dir_files(&e.path("pe")).into_keys().collect();
    assert_eq!(
        files,
        vec![
            e.path("pe/alice.crt"),
            e.path("pe/alice.key"),
            e.path("pe/ca.crt")
        ]
    );
    let key = std::fs::read_to_string(e.path("pe/alice.key")).expect("alice.key");
    assert!(
        key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
        "not an encrypted PKCS#8 key:\n{key}"
    );
    assert_eq!(mode(&e.path("pe/alice.key")), 0o600, "key mode");
    assert_key_matches_cert(dir, "pe/alice.key", "pe/alice.crt", Some("pf"));
    assert_eq!(
        cert_der(dir, "pe/alice.crt"),
        cert_der(dir, "pki/issued/alice.crt")
    );
    assert_eq!(cert_der(dir, "pe/ca.crt"), cert_der(dir, "pki/ca.crt"));
    assert_wrong_passphrase_fails(dir, "pe/alice.key", "wrong");

    let files_before = dir_files(&e.path("pe"));
    let store_before = e.snapshot();
    let err = e.fails(&args, 2);
    assert!(
        err.contains("exists") && err.contains("pe/"),
        "unclear message: {err}"
    );
    assert_eq!(dir_files(&e.path("pe")), files_before, "files changed");
    assert_eq!(e.snapshot(), store_before, "the store changed");
}

#[test]
fn openvpn_connects_with_the_p12_and_askpass() {
    let pki = Pki::new();
    let e = &pki.e;
    let pf = write(e, "pf", "p12-pass-phrase-1\n");
    e.ok(&[
        "export",
        "alice",
        "--format",
        "p12",
        "--out",
        "p12",
        "--p12-passphrase-file",
        "pf",
    ]);
    let plain = pki.profile(
        "alice",
        &[
            "--remote",
            "127.0.0.1:1194",
            "--server-name",
            "vpn.example.com",
        ],
        "alice.ovpn",
    );
    // Drop the inline <cert> and <key>; keep <ca>.
    let without = without_credentials(&plain);
    assert!(
        !without.contains("<cert>") && !without.contains("<key>") && without.contains("<ca>"),
        "{without}"
    );
    let profile = format!(
        "{without}pkcs12 {}\naskpass {}\n",
        e.path("p12/alice.p12").display(),
        pf.display()
    );
    let hs = pki.connect(&profile);
    assert!(hs.ok, "OpenVPN with the PKCS#12 file:\n{hs}");
}

// ---------------------------------------------------------------------------------------------
// Issue 15: `export` into a folder that holds files already
// ---------------------------------------------------------------------------------------------

/// The paths of an `export --json` field, as strings.
fn paths(v: &serde_json::Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p.as_str().expect("path").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The store opened and unlocked through the library: `Store::export_with` with
/// `ExportOptions { force: true }` is what `export --force` calls.
fn unlocked(e: &Env) -> vpnca::Store {
    let mut store = vpnca::Store::open(&e.pki).expect("open the store");
    store
        .unlock(&vpnca::Passphrase::new(PASS.to_string()))
        .expect("unlock");
    store
}

/// `export NAME --out DIR` with `force` through the library.
fn export_forced(
    e: &Env,
    name: &str,
    dir: &str,
    key: vpnca::KeyExport,
) -> vpnca::Result<vpnca::ExportReport> {
    let store = unlocked(e);
    let rec = store.current(name).expect("the record");
    store.export_with(
        &rec,
        &e.path(dir),
        &key,
        &vpnca::export::ExportOptions { force: true },
    )
}

/// Two users exported into one folder share one `ca.crt`: the second export finds it
/// identical and leaves it (`unchanged`); openssl verifies both certificates with it and
/// matches both keys. Exporting again what is there changes nothing (folder and store byte
/// for byte: no file written, no audit entry); a key already there is still refused.
///
/// Fails when: `compare_public` (src/export.rs) reports every existing file as different
/// (seen: bob's export exits 2, `team/ca.crt: it exists and differs`); when an export that
/// wrote nothing still writes its audit entry (seen: "the store changed").
#[test]
fn two_users_export_into_one_folder_and_an_identical_reexport_changes_nothing() {
    let e = Env::with_ca();
    e.ok(&["client", "alice", "--algo", "p256"]);
    e.ok(&["client", "bob", "--algo", "p256"]);
    let a = e.json(&["export", "alice", "--out", "team", "--key"]);
    assert_eq!(
        paths(&a, "files"),
        ["team/alice.crt", "team/ca.crt", "team/alice.key"]
    );
    let b = e.json(&["export", "bob", "--out", "team", "--key"]);
    assert_eq!(paths(&b, "files"), ["team/bob.crt", "team/bob.key"]);
    assert_eq!(paths(&b, "unchanged"), ["team/ca.crt"]);
    let dir = e.dir.path();
    let (ok, out) = openssl_verify(
        dir,
        &["-CAfile", "team/ca.crt", "team/alice.crt", "team/bob.crt"],
    );
    assert!(ok, "openssl verify with the shared ca.crt: {out}");
    assert_key_matches_cert(dir, "team/alice.key", "team/alice.crt", None);
    assert_key_matches_cert(dir, "team/bob.key", "team/bob.crt", None);

    let files_before = dir_files(&e.path("team"));
    let store_before = e.snapshot();
    let again = e.json(&["export", "bob", "--out", "team"]);
    assert_eq!(paths(&again, "files"), Vec::<String>::new());
    assert_eq!(paths(&again, "unchanged"), ["team/bob.crt", "team/ca.crt"]);
    assert_eq!(dir_files(&e.path("team")), files_before, "files changed");
    assert_eq!(e.snapshot(), store_before, "the store changed");

    let err = e.fails(&["export", "bob", "--out", "team", "--key"], 2);
    assert!(err.contains("team/bob.key exists already"), "{err}");
    assert_eq!(dir_files(&e.path("team")), files_before, "files changed");
    assert_eq!(e.snapshot(), store_before, "the store changed");
}

/// After `renew`, the certificate in the folder differs: the export is refused naming that
/// file and saying it differs (folder and store unchanged), while the identical `ca.crt` is
/// no conflict. With force, the certificate is replaced (openssl: the renewed one), `ca.crt`
/// left as it is, the key never touched; a key export with force is refused because the key
/// is there, before anything is replaced.
///
/// Fails when: `export_with` treats a different public file as identical (seen: exit 0,
/// d/alice.crt still the old certificate); when force also replaces key files (seen:
/// d/alice.key in `replaced`); when key files are not checked first (seen: the refusal of
/// `export --key` names d/alice.crt, not the key that --force cannot replace).
#[test]
fn a_reexport_after_renew_names_the_file_that_differs_and_never_replaces_keys() {
    let e = Env::with_ca();
    e.ok(&["client", "alice", "--algo", "p256"]);
    e.ok(&["export", "alice", "--out", "d", "--key"]);
    let old_key = std::fs::read(e.path("d/alice.key")).expect("key");
    e.ok(&["renew", "alice"]);

    let files_before = dir_files(&e.path("d"));
    let store_before = e.snapshot();
    for args in [
        &["export", "alice", "--out", "d"][..],
        &["export", "alice", "--out", "d", "--key"],
    ] {
        let err = e.fails(args, 2);
        if args.contains(&"--key") {
            assert!(err.contains("d/alice.key exists already"), "{err}");
        } else {
            assert!(
                err.contains("cannot write d/alice.crt: it exists and differs")
                    && err.contains("--force")
                    && !err.contains("ca.crt"),
                "{err}"
            );
        }
        assert_eq!(
            dir_files(&e.path("d")),
            files_before,
            "{args:?}: files changed"
        );
        assert_eq!(e.snapshot(), store_before, "{args:?}: the store changed");
    }

    // Force does not lift the refusal of a key file, and nothing is replaced first.
    let err = export_forced(&e, "alice", "d", vpnca::KeyExport::Plain).expect_err("key there");
    assert!(
        matches!(err, vpnca::Error::FileExists { ref path } if path.ends_with("alice.key")),
        "{err}"
    );
    assert_eq!(dir_files(&e.path("d")), files_before, "files changed");

    let rep = export_forced(&e, "alice", "d", vpnca::KeyExport::None).expect("forced");
    assert_eq!(rep.files, [e.path("d/alice.crt")]);
    assert_eq!(rep.replaced, [e.path("d/alice.crt")]);
    assert_eq!(rep.unchanged, [e.path("d/ca.crt")]);
    let dir = e.dir.path();
    assert_eq!(
        cert_der(dir, "d/alice.crt"),
        cert_der(dir, "pki/issued/alice.crt")
    );
    assert_eq!(std::fs::read(e.path("d/alice.key")).expect("key"), old_key);
    let log = e.json_lines(&["log"]);
    let last = log.last().expect("audit");
    assert_eq!(last["action"], "export", "{last}");
    assert!(
        last["detail"]["replaced"][0]
            .as_str()
            .is_some_and(|p| p.ends_with("/d/alice.crt")),
        "{last}"
    );
}

/// A `ca.crt` of another CA in the folder is refused by `export` and by `client --batch
/// --out` alike, each naming `ca.crt` and saying that it differs from this store's chain
/// (folder and store unchanged, nothing issued). Force replaces it with this store's chain.
/// A symbolic link at `ca.crt` is never written through, even to an identical file, even
/// with force.
///
/// Fails when: `export_with` treats a different file as identical (seen: export exit 0, `wrote
/// d/alice.crt` beside the other CA's ca.crt); when `issue_stream` (src/batch.rs) accepts a
/// different ca.crt (seen: exit 0, bob issued); when `compare_public` follows a link (seen:
/// exit 0, `wrote l/alice.crt` beside the link).
#[test]
fn a_different_ca_crt_is_refused_naming_it_and_a_link_is_never_followed() {
    let e = Env::with_ca();
    e.ok(&["client", "alice", "--algo", "p256"]);
    let other = Env::init();
    other.ok(&["ca", "--cn", "Other CA", "--algo", "p256"]);
    std::fs::create_dir(e.path("d")).expect("mkdir");
    std::fs::copy(other.pki.join("ca.crt"), e.path("d/ca.crt")).expect("copy");
    write(&e, "users.csv", "name\nbob\n");

    let files_before = dir_files(&e.path("d"));
    let store_before = e.snapshot();
    for args in [
        &["export", "alice", "--out", "d"][..],
        &[
            "client",
            "--batch",
            "users.csv",
            "--out",
            "d",
            "--algo",
            "p256",
        ],
    ] {
        let err = e.fails(args, 2);
        assert!(
            err.contains("cannot write d/ca.crt: it exists and differs from this store's CA chain"),
            "{args:?}: {err}"
        );
        assert_eq!(
            dir_files(&e.path("d")),
            files_before,
            "{args:?}: files changed"
        );
        assert_eq!(e.snapshot(), store_before, "{args:?}: the store changed");
    }

    let rep = export_forced(&e, "alice", "d", vpnca::KeyExport::None).expect("forced");
    assert_eq!(rep.replaced, [e.path("d/ca.crt")]);
    assert_eq!(
        std::fs::read(e.path("d/ca.crt")).expect("ca.crt"),
        std::fs::read(e.pki.join("ca.crt")).expect("pki ca.crt")
    );
    let (ok, out) = openssl_verify(e.dir.path(), &["-CAfile", "d/ca.crt", "d/alice.crt"]);
    assert!(ok, "{out}");

    std::fs::create_dir(e.path("l")).expect("mkdir");
    std::os::unix::fs::symlink(e.pki.join("ca.crt"), e.path("l/ca.crt")).expect("symlink");
    let store_before = e.snapshot();
    let err = e.fails(&["export", "alice", "--out", "l"], 2);
    assert!(
        err.contains("l/ca.crt") && err.contains("symbolic link"),
        "{err}"
    );
    let err = export_forced(&e, "alice", "l", vpnca::KeyExport::None).expect_err("a link");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_link(e.path("l/ca.crt")).expect("still a link"),
        e.pki.join("ca.crt")
    );
    assert!(
        !e.path("l/alice.crt").exists(),
        "nothing written beside the link"
    );
    assert_eq!(e.snapshot(), store_before, "the store changed");
}
