//! The certificate lifecycle (issue, export, revoke, renew, CSR, sub-CA) checked with
//! independent implementations: the `openssl` CLI, rustls-webpki and a real OpenVPN handshake.
mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::openvpn::{ClientFiles, ServerFiles, handshake};
use rustls_pki_types::ServerName;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `openssl x509 -noout -text` of a PEM certificate (path relative to the env dir).
fn x509_text(e: &Env, cert: &str) -> String {
    openssl_ok(&["x509", "-in", cert, "-noout", "-text"], e.dir.path())
}

/// `openssl crl -noout -text` of `pki/crl.pem`, after checking its signature with the CA.
fn crl_text(e: &Env, ca: &str) -> String {
    crl_verified_text(e.dir.path(), "pki/crl.pem", ca)
}

/// Extension `name` (e.g. "Key Usage") in openssl's text output: (critical, value line).
fn ext(text: &str, name: &str) -> Option<(bool, String)> {
    let header = format!("X509v3 {name}:");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.trim().strip_prefix(&header) {
            let critical = rest.trim() == "critical";
            let value = lines.next()?.trim();
            let value = value.strip_prefix("keyid:").unwrap_or(value);
            return Some((critical, value.to_owned()));
        }
    }
    None
}

/// Like [`ext`], but the extension must be present.
fn ext_req(text: &str, name: &str, what: &str) -> (bool, String) {
    ext(text, name).unwrap_or_else(|| panic!("{what}: no X509v3 {name} extension in:\n{text}"))
}

/// The comma-separated items of an extension value ("Digital Signature, Key Encipherment").
fn items(value: &str) -> Vec<String> {
    value.split(',').map(|i| i.trim().to_owned()).collect()
}

/// `openssl x509 -serial` as upper-case hex without leading zeros.
fn serial_of(e: &Env, cert: &str) -> String {
    openssl_serial(e.dir.path(), cert)
}

/// One CRL entry as openssl prints it.
#[derive(Debug, Clone, PartialEq)]
struct CrlEntry {
    serial: String,
    reason: Option<String>,
}

/// The CRL number and the revoked entries from `openssl crl -text`.
fn parse_crl(text: &str) -> (u64, Vec<CrlEntry>) {
    let mut number = None;
    let mut entries: Vec<CrlEntry> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim();
        if t.starts_with("X509v3 CRL Number:") {
            let v = lines.next().expect("CRL number value").trim();
            number = Some(v.parse::<u64>().unwrap_or_else(|_| {
                panic!("CRL number {v:?} is not a small decimal number:\n{text}")
            }));
        } else if let Some(serial) = t.strip_prefix("Serial Number:") {
            entries.push(CrlEntry {
                serial: norm_serial(serial.trim()),
                reason: None,
            });
        } else if t.starts_with("X509v3 CRL Reason Code:") {
            let v = lines.next().expect("reason value").trim().to_owned();
            entries.last_mut().expect("reason outside an entry").reason = Some(v);
        }
    }
    (
        number.unwrap_or_else(|| panic!("no CRL Number in:\n{text}")),
        entries,
    )
}

fn crl_entry<'a>(entries: &'a [CrlEntry], serial: &str) -> Option<&'a CrlEntry> {
    entries.iter().find(|en| en.serial == serial)
}

/// `-CAfile pki/ca.crt -crl_check -CRLfile pki/crl.pem CERT`.
fn with_crl(cert: &str) -> [String; 6] {
    [
        "-CAfile",
        "pki/ca.crt",
        "-crl_check",
        "-CRLfile",
        "pki/crl.pem",
        cert,
    ]
    .map(str::to_owned)
}

fn assert_verifies<S: AsRef<str> + std::fmt::Debug>(e: &Env, args: &[S]) {
    let (ok, out) = openssl_verify(e.dir.path(), args);
    assert!(
        ok && out.contains(": OK"),
        "openssl verify {args:?}:\n{out}"
    );
}

fn assert_revoked<S: AsRef<str> + std::fmt::Debug>(e: &Env, args: &[S]) {
    let (ok, out) = openssl_verify(e.dir.path(), args);
    assert!(
        !ok && out.contains("certificate revoked"),
        "openssl verify {args:?} should say the certificate is revoked:\n{out}"
    );
}

/// Copies a file (path relative to the env dir) to `dir/<to>`; returns the new relative path.
fn keep(e: &Env, from: &str, to: &str) -> String {
    std::fs::copy(e.path(from), e.path(to)).unwrap_or_else(|err| panic!("copy {from}: {err}"));
    to.to_owned()
}

/// `vpnca --json list` (JSON lines) parsed.
fn list(e: &Env) -> Vec<serde_json::Value> {
    e.json_lines(&["list"])
}

fn by_serial<'a>(rows: &'a [serde_json::Value], serial: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["serial"].as_str().map(norm_serial).as_deref() == Some(serial))
        .unwrap_or_else(|| panic!("serial {serial} not in list: {rows:#?}"))
}

/// `vpnca export NAME --out DIR --key`; returns DIR (absolute).
fn export_key(e: &Env, name: &str, dir: &str) -> PathBuf {
    e.ok(&["export", name, "--out", dir, "--key"]);
    e.path(dir)
}

/// PEM hygiene: LF only, lines of at most 64 characters, no trailing blanks, final newline.
fn assert_clean_pem(p: &Path) {
    let text = std::fs::read_to_string(p).expect("PEM is UTF-8");
    let name = p.display();
    assert!(!text.contains('\r'), "{name}: contains CR");
    assert!(text.ends_with('\n'), "{name}: no final newline");
    assert!(
        text.starts_with("-----BEGIN "),
        "{name}: does not start with BEGIN"
    );
    for (i, line) in text.lines().enumerate() {
        assert!(line.len() <= 64, "{name}:{}: {} chars", i + 1, line.len());
        assert_eq!(line, line.trim_end(), "{name}:{}: trailing blanks", i + 1);
        assert!(!line.is_empty(), "{name}:{}: empty line", i + 1);
    }
}

/// openssl checks the private key file `key` (`pkey -check`; decrypted with the passphrase in
/// the file `passfile`, if given) and finds in it the public key of the certificate `cert`.
fn assert_valid_key_of(dir: &Path, key: &str, cert: &str, passfile: Option<&str>) {
    let passin = passfile.map(|f| format!("file:{f}"));
    let mut args = vec!["pkey", "-in", key, "-noout", "-check"];
    if let Some(p) = &passin {
        args.extend(["-passin", p.as_str()]);
    }
    let o = openssl_ok(&args, dir);
    assert!(o.contains("Key is valid"), "{o}");
    assert_key_matches_cert(dir, key, cert, passfile);
}

/// Whether openssl finds the certificate still valid `secs` seconds from now (`-checkend`).
fn valid_in(e: &Env, cert: &str, secs: &str) -> bool {
    let o = openssl(
        &["x509", "-in", cert, "-noout", "-checkend", secs],
        e.dir.path(),
    );
    o.status.success()
}

/// Subjects of every certificate in a PEM bundle, in file order (each block read by openssl).
fn bundle_subjects(dir: &Path, bundle: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(bundle)).expect("read bundle");
    let end = "-----END CERTIFICATE-----";
    let mut subjects = Vec::new();
    for (i, chunk) in text.split_inclusive(end).enumerate() {
        let Some(start) = chunk.find("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        let file = format!("bundle-part-{i}.pem");
        std::fs::write(dir.join(&file), format!("{}\n", &chunk[start..])).expect("write part");
        let out = openssl_ok(
            &[
                "x509", "-in", &file, "-noout", "-subject", "-nameopt", "oneline",
            ],
            dir,
        );
        let _ = std::fs::remove_file(dir.join(&file));
        subjects.push(
            out.trim()
                .strip_prefix("subject=")
                .unwrap_or_else(|| panic!("unexpected subject output {out}"))
                .trim()
                .to_owned(),
        );
    }
    subjects
}

/// Seconds since the epoch of openssl's ISO 8601 date (`2026-11-21 05:27:08Z`).
fn unix_time(iso: &str) -> i64 {
    let num = |x: &str| -> i64 {
        x.parse()
            .unwrap_or_else(|_| panic!("unexpected date {iso:?}"))
    };
    let trimmed = iso.trim().trim_end_matches('Z');
    let (date, time) = trimmed
        .split_once([' ', 'T'])
        .unwrap_or_else(|| panic!("unexpected date {iso:?}"));
    let d: Vec<i64> = date.split('-').map(num).collect();
    let t: Vec<i64> = time.split(':').map(num).collect();
    assert!(d.len() == 3 && t.len() == 3, "unexpected date {iso:?}");
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]
}

/// (notBefore, notAfter) of a certificate in seconds since the epoch, read by openssl.
fn validity(e: &Env, cert: &str) -> (i64, i64) {
    let out = openssl_ok(
        &[
            "x509", "-in", cert, "-noout", "-dates", "-dateopt", "iso_8601",
        ],
        e.dir.path(),
    );
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(unix_time)
            .unwrap_or_else(|| panic!("no {k} in {out}"))
    };
    (get("notBefore="), get("notAfter="))
}

fn now_unix() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    )
    .expect("time fits i64")
}

/// The content octets of the serialNumber INTEGER of a DER certificate (minimal DER walk).
fn der_serial(cert: &[u8]) -> Vec<u8> {
    fn header(d: &[u8], i: &mut usize, tag: u8) -> usize {
        assert_eq!(d[*i], tag, "unexpected DER tag at {i}");
        *i += 1;
        let first = d[*i];
        *i += 1;
        if first < 0x80 {
            return usize::from(first);
        }
        let n = usize::from(first & 0x7f);
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | usize::from(d[*i]);
            *i += 1;
        }
        len
    }
    let mut i = 0;
    header(cert, &mut i, 0x30); // Certificate
    header(cert, &mut i, 0x30); // TBSCertificate
    if cert[i] == 0xa0 {
        let l = header(cert, &mut i, 0xa0); // [0] version
        i += l;
    }
    let l = header(cert, &mut i, 0x02); // serialNumber
    cert[i..i + l].to_vec()
}

// ---------------------------------------------------------------------------------------------
// 1. openssl: verify, revoke, CRL contents
// ---------------------------------------------------------------------------------------------

#[test]
fn openssl_verifies_clients_and_sees_revocations_in_the_crl() {
    let e = Env::with_ca();
    let ca_text = x509_text(&e, "pki/ca.crt");
    let (_, ca_ski) = ext_req(&ca_text, "Subject Key Identifier", "CA");

    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    let alice = keep(&e, "pki/issued/alice.crt", "alice.crt");
    let bob = keep(&e, "pki/issued/bob.crt", "bob.crt");
    let alice_serial = serial_of(&e, &alice);
    let bob_serial = serial_of(&e, &bob);
    assert_verifies(&e, &["-CAfile", "pki/ca.crt", &alice]);
    assert_verifies(&e, &["-CAfile", "pki/ca.crt", &bob]);

    // First revocation: CRL #1 with alice, reason keyCompromise.
    e.ok(&["revoke", "alice", "--reason", "keyCompromise"]);
    assert_revoked(&e, &with_crl(&alice));
    assert_verifies(&e, &with_crl(&bob));

    let text = crl_text(&e, "pki/ca.crt");
    assert!(text.contains("Version 2"), "CRL must be v2:\n{text}");
    let (_, aki) = ext_req(&text, "Authority Key Identifier", "CRL");
    assert_eq!(aki, ca_ski, "CRL AKI must be the CA's SKI:\n{text}");
    let (n1, entries) = parse_crl(&text);
    assert_eq!(n1, 1, "first CRL number:\n{text}");
    assert_eq!(entries.len(), 1, "{text}");
    let a = crl_entry(&entries, &alice_serial).expect("alice in the CRL");
    assert_eq!(a.reason.as_deref(), Some("Key Compromise"), "{text}");

    // Second revocation: CRL #2 with both.
    e.ok(&["revoke", "bob", "--reason", "affiliationChanged"]);
    assert_revoked(&e, &with_crl(&bob));
    assert_revoked(&e, &with_crl(&alice));
    let text = crl_text(&e, "pki/ca.crt");
    let (n2, entries) = parse_crl(&text);
    assert_eq!(n2, 2, "second CRL number:\n{text}");
    assert_eq!(entries.len(), 2, "{text}");
    assert_eq!(
        crl_entry(&entries, &alice_serial).and_then(|x| x.reason.clone()),
        Some("Key Compromise".to_owned()),
        "{text}"
    );
    assert_eq!(
        crl_entry(&entries, &bob_serial).and_then(|x| x.reason.clone()),
        Some("Affiliation Changed".to_owned()),
        "{text}"
    );

    // A plain `crl` rewrite keeps increasing the number and keeps both entries.
    e.ok(&["crl"]);
    let (n3, entries) = parse_crl(&crl_text(&e, "pki/ca.crt"));
    assert_eq!(n3, 3);
    assert_eq!(entries.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// 2. RFC 5280 profile, read with openssl
// ---------------------------------------------------------------------------------------------

#[test]
fn certificates_follow_the_rfc5280_profile() {
    let e = Env::with_ca();
    let start = now_unix();
    e.ok(&[
        "server",
        "vpn.example.com",
        "--san",
        "IP:10.0.0.1",
        "--san",
        "DNS:alt.example.com",
    ]);
    e.ok(&["client", "alice", "--email", "alice@example.com"]);

    // CA
    let ca = x509_text(&e, "pki/ca.crt");
    assert!(ca.contains("Version: 3 (0x2)"), "{ca}");
    let (crit, bc) = ext_req(&ca, "Basic Constraints", "CA");
    assert!(crit, "CA basicConstraints must be critical:\n{ca}");
    assert!(items(&bc).contains(&"CA:TRUE".to_owned()), "{ca}");
    let (crit, ku) = ext_req(&ca, "Key Usage", "CA");
    assert!(crit, "CA keyUsage must be critical:\n{ca}");
    let ku = items(&ku);
    assert!(
        ku.contains(&"Certificate Sign".to_owned()) && ku.contains(&"CRL Sign".to_owned()),
        "{ca}"
    );
    let (crit, ca_ski) = ext_req(&ca, "Subject Key Identifier", "CA");
    assert!(!crit, "SKI must not be critical");
    assert!(ca_ski.len() >= 8, "{ca}");
    assert_eq!(
        openssl_ok(
            &["x509", "-in", "pki/ca.crt", "-noout", "-subject"],
            e.dir.path()
        )
        .replace("subject=", ""),
        openssl_ok(
            &["x509", "-in", "pki/ca.crt", "-noout", "-issuer"],
            e.dir.path()
        )
        .replace("issuer=", ""),
        "root CA must be self-issued"
    );

    // Server and client: common end-entity rules.
    for (cert, what) in [
        ("pki/issued/vpn.example.com.crt", "server"),
        ("pki/issued/alice.crt", "client"),
    ] {
        let t = x509_text(&e, cert);
        assert!(t.contains("Version: 3 (0x2)"), "{what}: {t}");
        // basicConstraints is present, critical and CA:FALSE (docs/defaults.md, "Extensions").
        // Fails when: src/ca.rs wrote leaves with `IsCa::NoCa` instead of
        // `IsCa::ExplicitNoCa` (seen: "server: no X509v3 Basic Constraints extension").
        let (crit, bc) = ext_req(&t, "Basic Constraints", what);
        assert!(crit, "{what}: basicConstraints must be critical:\n{t}");
        assert_eq!(items(&bc), ["CA:FALSE"], "{what}: {t}");
        let (_, aki) = ext_req(&t, "Authority Key Identifier", what);
        assert_eq!(aki, ca_ski, "{what}: AKI must be the CA's SKI");
        let (_, ski) = ext_req(&t, "Subject Key Identifier", what);
        assert_ne!(ski, ca_ski, "{what}: SKI must be its own");
        let (crit, _) = ext_req(&t, "Key Usage", what);
        assert!(crit, "{what}: keyUsage should be critical");
        // Serial: positive, at least 64 bits, at most 20 octets (read from the DER).
        let serial = der_serial(&cert_der(&e.path(cert)));
        assert!(serial.len() <= 20, "{what}: serial longer than 20 octets");
        assert!(serial[0] & 0x80 == 0, "{what}: serial is negative");
        let significant: Vec<u8> = serial.iter().copied().skip_while(|b| *b == 0).collect();
        assert!(!significant.is_empty(), "{what}: serial is zero");
        let bits = (significant.len() - 1) * 8 + (8 - significant[0].leading_zeros() as usize);
        assert!(bits >= 64, "{what}: serial has only {bits} bits");
        // Validity: notBefore back-dated before the command ran, not expired.
        let (nb, na) = validity(&e, cert);
        assert!(
            nb + 60 <= start,
            "{what}: notBefore {nb} is not back-dated (command started at {start})"
        );
        assert!(na > now_unix(), "{what}: already expired");
        assert!(valid_in(&e, cert, "0"), "{what}: -checkend 0");
        assert_verifies(&e, &["-CAfile", "pki/ca.crt", cert]);
    }

    // Server specifics.
    let srv = x509_text(&e, "pki/issued/vpn.example.com.crt");
    assert!(srv.contains("Subject: CN = vpn.example.com"), "{srv}");
    let (_, san) = ext_req(&srv, "Subject Alternative Name", "server");
    let san = items(&san);
    for want in [
        "DNS:vpn.example.com",
        "IP Address:10.0.0.1",
        "DNS:alt.example.com",
    ] {
        assert!(
            san.contains(&want.to_owned()),
            "server SAN lacks {want}: {san:?}"
        );
    }
    let (_, eku) = ext_req(&srv, "Extended Key Usage", "server");
    assert!(
        items(&eku).contains(&"TLS Web Server Authentication".to_owned()),
        "{srv}"
    );
    let (_, ku) = ext_req(&srv, "Key Usage", "server");
    let ku = items(&ku);
    assert!(
        ku.contains(&"Digital Signature".to_owned()) && ku.contains(&"Key Encipherment".to_owned()),
        "{srv}"
    );
    let o = openssl(
        &[
            "verify",
            "-CAfile",
            "pki/ca.crt",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "alt.example.com",
            "pki/issued/vpn.example.com.crt",
        ],
        e.dir.path(),
    );
    assert!(o.status.success(), "{}{}", s(&o.stdout), s(&o.stderr));

    // Client specifics.
    let cli = x509_text(&e, "pki/issued/alice.crt");
    assert!(cli.contains("Subject: CN = alice"), "{cli}");
    let (_, eku) = ext_req(&cli, "Extended Key Usage", "client");
    assert!(
        items(&eku).contains(&"TLS Web Client Authentication".to_owned()),
        "{cli}"
    );
    let (_, ku) = ext_req(&cli, "Key Usage", "client");
    assert!(
        items(&ku).contains(&"Digital Signature".to_owned()),
        "{cli}"
    );
    let (_, san) = ext_req(&cli, "Subject Alternative Name", "client");
    assert!(
        items(&san).contains(&"email:alice@example.com".to_owned()),
        "{cli}"
    );
    assert_verifies(
        &e,
        &[
            "-CAfile",
            "pki/ca.crt",
            "-purpose",
            "sslclient",
            "pki/issued/alice.crt",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 3. rustls-webpki
// ---------------------------------------------------------------------------------------------

#[test]
fn webpki_validates_paths_usages_names_and_revocation() {
    let e = Env::with_ca();
    e.ok(&["server", "vpn.example.com", "--san", "IP:10.0.0.1"]);
    e.ok(&["client", "alice"]);
    e.ok(&["crl"]);
    let ca = e.path("pki/ca.crt");
    let crl = e.path("pki/crl.pem");
    let alice = e.path(&keep(&e, "pki/issued/alice.crt", "alice.crt"));
    let srv = e.path("pki/issued/vpn.example.com.crt");
    let client_auth = webpki::KeyUsage::client_auth;
    let server_auth = webpki::KeyUsage::server_auth;

    assert_eq!(webpki_verify(&ca, &[], &alice, None, client_auth()), Ok(()));
    assert_eq!(
        webpki_verify(&ca, &[], &alice, Some(&crl), client_auth()),
        Ok(()),
        "valid client with the (empty) CRL"
    );
    assert!(
        webpki_verify(&ca, &[], &alice, None, server_auth()).is_err(),
        "a client certificate must not be accepted for serverAuth"
    );

    // Server: path, usage, names.
    assert_eq!(
        webpki_verify(&ca, &[], &srv, Some(&crl), server_auth()),
        Ok(())
    );
    assert!(webpki_verify(&ca, &[], &srv, None, client_auth()).is_err());
    let srv_der = cert_der(&srv);
    let srv_cert = webpki::EndEntityCert::try_from(&srv_der).expect("parse server cert");
    let name = ServerName::try_from("vpn.example.com").expect("dns name");
    assert_eq!(srv_cert.verify_is_valid_for_subject_name(&name), Ok(()));
    let ip = ServerName::try_from("10.0.0.1").expect("ip");
    assert_eq!(srv_cert.verify_is_valid_for_subject_name(&ip), Ok(()));
    let other = ServerName::try_from("other.example.com").expect("dns name");
    assert!(srv_cert.verify_is_valid_for_subject_name(&other).is_err());

    // Revocation.
    e.ok(&["revoke", "alice"]);
    assert_eq!(
        webpki_verify(&ca, &[], &alice, Some(&crl), client_auth()),
        Err(webpki::Error::CertRevoked)
    );
    assert_eq!(
        webpki_verify(&ca, &[], &srv, Some(&crl), server_auth()),
        Ok(()),
        "the server stays valid"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Real OpenVPN handshake
// ---------------------------------------------------------------------------------------------

struct Exported {
    dir: PathBuf,
    name: String,
}

impl Exported {
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }
    fn key(&self) -> PathBuf {
        self.dir.join(format!("{}.key", self.name))
    }
}

fn exported(e: &Env, name: &str, dir: &str) -> Exported {
    Exported {
        dir: export_key(e, name, dir),
        name: name.to_owned(),
    }
}

fn ovpn(e: &Env, server: &Exported, client: &Exported) -> openvpn::Handshake {
    let crl = e.path("pki/crl.pem");
    let (sca, scert, skey) = (server.ca(), server.cert(), server.key());
    let (cca, ccert, ckey) = (client.ca(), client.cert(), client.key());
    handshake(
        &ServerFiles {
            ca: &sca,
            cert: &scert,
            key: &skey,
            crl: Some(&crl),
        },
        &ClientFiles {
            ca: &cca,
            cert: &ccert,
            key: &ckey,
        },
    )
}

#[test]
fn openvpn_accepts_clients_until_revoked() {
    let e = Env::with_ca();
    e.ok(&["server", "vpn.example.com"]);
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["crl"]);
    let server = exported(&e, "vpn.example.com", "srv");
    let alice = exported(&e, "alice", "alice");
    let bob = exported(&e, "bob", "bob");

    let hs = ovpn(&e, &server, &alice);
    assert!(hs.ok, "alice before revocation:\n{hs}");

    e.ok(&["revoke", "alice"]);
    let hs = ovpn(&e, &server, &alice);
    assert!(!hs.ok, "revoked alice must be refused:\n{hs}");
    assert!(
        hs.client_cert_revoked(),
        "refused, but not as revoked:\n{hs}"
    );

    let hs = ovpn(&e, &server, &bob);
    assert!(hs.ok, "bob is not revoked:\n{hs}");
}

// ---------------------------------------------------------------------------------------------
// 5. Export
// ---------------------------------------------------------------------------------------------

#[test]
fn export_writes_clean_pem_keys_and_never_overwrites() {
    let e = Env::with_ca();
    e.ok(&["server", "vpn.example.com"]);
    let out = export_key(&e, "vpn.example.com", "out");
    assert_eq!(mode(&out), 0o700, "export dir mode");
    let key = out.join("vpn.example.com.key");
    assert_eq!(mode(&key), 0o600, "unencrypted key mode");
    let key_pem = std::fs::read_to_string(&key).expect("key");
    assert!(
        key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{key_pem}"
    );
    assert_valid_key_of(&out, "vpn.example.com.key", "vpn.example.com.crt", None);
    assert_verifies(&e, &["-CAfile", "out/ca.crt", "out/vpn.example.com.crt"]);
    assert_eq!(
        std::fs::read(out.join("ca.crt")).expect("ca"),
        std::fs::read(e.path("pki/ca.crt")).expect("ca"),
        "exported chain of a root-CA store is ca.crt"
    );

    // A second export into the same directory fails and changes nothing.
    let before = dir_files(&out);
    let err = e.fails(&["export", "vpn.example.com", "--out", "out", "--key"], 2);
    assert!(err.contains("exists"), "{err}");
    let passfile = e.path("kp.txt");
    std::fs::write(&passfile, "export-pass-123\n").expect("write passphrase");
    e.fails(
        &[
            "export",
            "vpn.example.com",
            "--out",
            "out",
            "--key-passphrase-file",
            "kp.txt",
        ],
        2,
    );
    assert_eq!(
        dir_files(&out),
        before,
        "a failed export changed the directory"
    );

    // Encrypted key.
    e.ok(&[
        "export",
        "vpn.example.com",
        "--out",
        "enc",
        "--key-passphrase-file",
        "kp.txt",
    ]);
    let enc = e.path("enc");
    let ekey = enc.join("vpn.example.com.key");
    assert_eq!(mode(&ekey), 0o600, "encrypted key mode");
    let ekey_pem = std::fs::read_to_string(&ekey).expect("key");
    assert!(
        ekey_pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
        "{ekey_pem}"
    );
    let passfile = passfile.display().to_string();
    assert_valid_key_of(
        &enc,
        "vpn.example.com.key",
        "vpn.example.com.crt",
        Some(&passfile),
    );
    std::fs::write(e.path("wrong.txt"), "not-the-passphrase\n").expect("write");
    let wrong = e.path("wrong.txt").display().to_string();
    assert_wrong_passphrase_fails(&enc, "vpn.example.com.key", &wrong);
    let asn1 = openssl_ok(&["asn1parse", "-in", "vpn.example.com.key"], &enc);
    for alg in [":PBES2", ":PBKDF2", ":hmacWithSHA256", ":aes-256-cbc"] {
        assert!(asn1.contains(alg), "encrypted key lacks {alg}:\n{asn1}");
    }

    // PEM hygiene of every exported file.
    for dir in [&out, &enc] {
        for file in dir_files(dir).keys() {
            assert_clean_pem(file);
        }
    }
}

#[test]
fn export_refuses_an_empty_key_passphrase() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    // An empty file, and a file whose first line is empty: both mean "no passphrase".
    std::fs::write(e.path("empty.txt"), "").expect("write");
    std::fs::write(e.path("blank-line.txt"), "\nsecond line is ignored\n").expect("write");
    for (i, file) in ["empty.txt", "blank-line.txt"].into_iter().enumerate() {
        let out = format!("out{i}");
        let err = e.fails(
            &[
                "export",
                "alice",
                "--out",
                &out,
                "--key-passphrase-file",
                file,
            ],
            2,
        );
        assert!(err.to_lowercase().contains("passphrase"), "{file}: {err}");
        assert!(
            !e.path(&out).join("alice.key").exists(),
            "{file}: a key protected by an empty passphrase was written"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. CSR flow
// ---------------------------------------------------------------------------------------------

/// openssl verifies `pki/issued/<name>.crt` as a client certificate of the store's CA, for
/// `CN = <name>`; returns its text.
fn signed_client_text(e: &Env, name: &str) -> String {
    let cert = format!("pki/issued/{name}.crt");
    assert_verifies(
        e,
        &["-CAfile", "pki/ca.crt", "-purpose", "sslclient", &cert],
    );
    let t = x509_text(e, &cert);
    assert!(t.contains(&format!("Subject: CN = {name}")), "{t}");
    t
}

/// An RSA-2048 key `<cn>.key` and a request for it, `csr`, made by openssl in `dir`.
fn make_csr(dir: &Path, cn: &str, csr: &str, extra: &[&str]) {
    openssl_req(dir, RSA_2048, cn, &format!("{cn}.key"), csr, extra);
}

#[test]
fn sign_req_ignores_request_extensions_and_rejects_corrupt_requests() {
    let e = Env::with_ca();
    let dir = e.dir.path();
    make_csr(
        dir,
        "carol",
        "carol.csr",
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    e.ok(&["sign-req", "carol.csr", "--type", "client"]);
    let t = signed_client_text(&e, "carol");
    // Fails when: src/ca.rs wrote leaves with `IsCa::NoCa` (seen: "signed CSR: no X509v3
    // Basic Constraints extension").
    let (crit, bc) = ext_req(&t, "Basic Constraints", "signed CSR");
    assert!(crit, "signed CSR: basicConstraints must be critical:\n{t}");
    assert_eq!(items(&bc), ["CA:FALSE"], "CSR's CA:TRUE leaked:\n{t}");
    let (_, eku) = ext_req(&t, "Extended Key Usage", "signed CSR");
    assert!(
        items(&eku).contains(&"TLS Web Client Authentication".to_owned()),
        "{t}"
    );
    let (_, ku) = ext_req(&t, "Key Usage", "signed CSR");
    assert!(!ku.contains("Certificate Sign"), "{t}");
    assert_key_matches_cert(dir, "carol.key", "pki/issued/carol.crt", None);

    // Corrupted requests: exit 2, clear message, store untouched.
    make_csr(dir, "eve", "eve.csr", &[]);
    let pem = std::fs::read_to_string(e.path("eve.csr")).expect("csr");
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    // Flip one base64 character in the middle of the body (inside the public key / signature).
    let mid = lines.len() / 2;
    let mut chars: Vec<char> = lines[mid].chars().collect();
    chars[10] = if chars[10] == 'A' { 'B' } else { 'A' };
    lines[mid] = chars.into_iter().collect();
    std::fs::write(e.path("flipped.csr"), lines.join("\n") + "\n").expect("write");
    let full: Vec<&str> = pem.lines().collect();
    let truncated = [&full[..4], &full[full.len() - 1..]].concat().join("\n") + "\n";
    std::fs::write(e.path("truncated.csr"), truncated).expect("write");
    std::fs::write(e.path("garbage.csr"), "this is not a CSR\n").expect("write");

    let before = e.snapshot();
    for bad in ["flipped.csr", "truncated.csr", "garbage.csr"] {
        let err = e.fails(&["sign-req", bad, "--type", "client"], 2);
        assert!(
            err.contains(bad) && err.to_lowercase().contains("request"),
            "{bad}: unclear message: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(e.snapshot(), before, "{bad}: the store changed");
    }
    assert!(!e.path("pki/issued/eve.crt").exists());

    // easy-rsa form: pki/reqs/NAME.req.
    std::fs::create_dir_all(e.path("pki/reqs")).expect("mkdir reqs");
    make_csr(dir, "dave", "pki/reqs/dave.req", &[]);
    e.ok(&["sign-req", "client", "dave"]);
    signed_client_text(&e, "dave");
    assert_key_matches_cert(dir, "dave.key", "pki/issued/dave.crt", None);

    // A server request gets its DNS SAN and serverAuth.
    make_csr(dir, "vpn2.example.com", "srv.csr", &[]);
    e.ok(&["sign-req", "srv.csr", "--type", "server"]);
    let t = x509_text(&e, "pki/issued/vpn2.example.com.crt");
    let (_, san) = ext_req(&t, "Subject Alternative Name", "signed server CSR");
    assert!(
        items(&san).contains(&"DNS:vpn2.example.com".to_owned()),
        "{t}"
    );
    let (_, eku) = ext_req(&t, "Extended Key Usage", "signed server CSR");
    assert!(
        items(&eku).contains(&"TLS Web Server Authentication".to_owned()),
        "{t}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Sub-CA signed by an openssl root
// ---------------------------------------------------------------------------------------------

const SUB_CA_EXT: &str = "basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
";

/// The root `CN=Corp Root` (`root.crt`, `root.key`), made by openssl in `dir`, and the
/// extensions it gives a sub-CA (`subca.ext`).
fn openssl_root(dir: &Path) {
    let ca = [
        "-x509",
        "-days",
        "3650",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    openssl_req(dir, RSA_2048, "Corp Root", "root.key", "root.crt", &ca);
    std::fs::write(dir.join("subca.ext"), SUB_CA_EXT).expect("write ext");
}

/// The root of [`openssl_root`] signs the request `csr` with the extensions of `subca.ext`.
fn openssl_sign_sub(dir: &Path, csr: &str, out: &str) {
    let args = ["-CAcreateserial", "-days", "1825", "-extfile", "subca.ext"];
    openssl_sign_req(dir, csr, "root.crt", "root.key", out, &args);
}

#[test]
fn sub_ca_signed_by_an_external_root_issues_verifiable_certificates() {
    let e = Env::init();
    let dir = e.dir.path();
    openssl_root(dir);

    e.ok(&["ca", "--sub-ca", "--csr-out", "sub.csr", "--cn", "Sub CA"]);
    let v = openssl_ok(
        &["req", "-in", "sub.csr", "-noout", "-verify", "-subject"],
        dir,
    );
    assert!(v.contains("CN = Sub CA"), "{v}");
    openssl_sign_sub(dir, "sub.csr", "sub.crt");

    // Refused imports (exit 2, store unchanged): a certificate for another key, one that is
    // not a CA, one without keyCertSign, and a chain that did not sign it.
    make_csr(dir, "Sub CA", "other.csr", &[]);
    openssl_sign_sub(dir, "other.csr", "other.crt");
    std::fs::write(
        dir.join("subca.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
    .expect("write ext");
    openssl_sign_sub(dir, "sub.csr", "sub-not-ca.crt");
    std::fs::write(
        dir.join("subca.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,digitalSignature\n",
    )
    .expect("write ext");
    openssl_sign_sub(dir, "sub.csr", "sub-no-certsign.crt");
    std::fs::write(dir.join("subca.ext"), SUB_CA_EXT).expect("write ext");
    openssl_req(
        dir,
        RSA_2048,
        "Other Root",
        "root2.key",
        "root2.crt",
        &["-x509", "-days", "30"],
    );
    let before = e.snapshot();
    for (cert, chain) in [
        ("other.crt", "root.crt"),
        ("sub-not-ca.crt", "root.crt"),
        ("sub-no-certsign.crt", "root.crt"),
        ("sub.crt", "root2.crt"),
    ] {
        let err = e.fails(&["ca", "--import-cert", cert, "--chain", chain], 2);
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            e.snapshot(),
            before,
            "refused import of {cert} changed the store"
        );
    }

    // Import with a chain file as some tools write it: CRLF line ends, text before the PEM.
    let root_text = openssl_ok(&["x509", "-in", "root.crt", "-text"], dir);
    std::fs::write(dir.join("chain-crlf.pem"), root_text.replace('\n', "\r\n")).expect("write");
    e.ok(&[
        "ca",
        "--import-cert",
        "sub.crt",
        "--chain",
        "chain-crlf.pem",
    ]);
    assert_clean_pem(&e.path("pki/ca.crt"));
    e.fails(
        &["ca", "--import-cert", "sub.crt", "--chain", "root.crt"],
        2,
    );
    assert_eq!(
        bundle_subjects(dir, "pki/ca.crt"),
        vec!["CN = Sub CA".to_owned(), "CN = Corp Root".to_owned()],
        "pki/ca.crt must hold the sub-CA then the root"
    );

    e.ok(&["client", "alice"]);
    let alice = keep(&e, "pki/issued/alice.crt", "alice.crt");
    assert_verifies(
        &e,
        &[
            "-CAfile",
            "root.crt",
            "-untrusted",
            "pki/ca.crt",
            "-purpose",
            "sslclient",
            &alice,
        ],
    );
    let sub_ski = ext_req(&x509_text(&e, "sub.crt"), "Subject Key Identifier", "sub").1;
    let alice_aki = ext_req(&x509_text(&e, &alice), "Authority Key Identifier", "alice").1;
    assert_eq!(alice_aki, sub_ski, "client AKI must be the sub-CA's SKI");

    // rustls-webpki agrees, with the sub-CA as intermediate.
    let intermediates = vec![cert_der(&e.path("sub.crt"))];
    assert_eq!(
        webpki_verify(
            &e.path("root.crt"),
            &intermediates,
            &e.path(&alice),
            None,
            webpki::KeyUsage::client_auth()
        ),
        Ok(())
    );

    // The export carries the chain.
    e.ok(&["export", "alice", "--out", "out"]);
    assert_eq!(
        bundle_subjects(dir, "out/ca.crt"),
        vec!["CN = Sub CA".to_owned(), "CN = Corp Root".to_owned()],
    );
    assert_verifies(
        &e,
        &[
            "-CAfile",
            "root.crt",
            "-untrusted",
            "out/ca.crt",
            "out/alice.crt",
        ],
    );
    for f in ["out/ca.crt", "out/alice.crt"] {
        assert_clean_pem(&e.path(f));
    }

    // Revocation by the sub-CA: its CRL is signed by it and names its key.
    e.ok(&["revoke", "alice"]);
    let text = openssl_ok(&["crl", "-in", "pki/crl.pem", "-noout", "-text"], dir);
    let aki = ext_req(&text, "Authority Key Identifier", "sub-CA CRL").1;
    assert_eq!(aki, sub_ski);
    openssl_ok(&["x509", "-in", "sub.crt", "-out", "subonly.crt"], dir);
    crl_verified_text(dir, "pki/crl.pem", "subonly.crt");
    assert_revoked(
        &e,
        &[
            "-CAfile",
            "root.crt",
            "-untrusted",
            "pki/ca.crt",
            "-crl_check",
            "-CRLfile",
            "pki/crl.pem",
            &alice,
        ],
    );
    // Regression: verify checked the sub-CA against itself and always reported a problem.
    e.ok(&["verify"]);
}

// ---------------------------------------------------------------------------------------------
// 8. Renew
// ---------------------------------------------------------------------------------------------

#[test]
fn renew_supersedes_and_revoke_covers_every_generation() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let g1 = keep(&e, "pki/issued/alice.crt", "alice-1.crt");
    let s1 = serial_of(&e, &g1);

    e.ok(&["renew", "alice"]);
    let g2 = keep(&e, "pki/issued/alice.crt", "alice-2.crt");
    let s2 = serial_of(&e, &g2);
    assert_ne!(s1, s2, "renew must give a new serial");
    assert_ne!(
        openssl_ok(&["x509", "-in", &g1, "-noout", "-pubkey"], e.dir.path()),
        openssl_ok(&["x509", "-in", &g2, "-noout", "-pubkey"], e.dir.path()),
        "renew makes a new key by default"
    );
    let rows = list(&e);
    assert_eq!(by_serial(&rows, &s1)["status"], "superseded", "{rows:#?}");
    assert_eq!(
        by_serial(&rows, &s1)["superseded_by"]
            .as_str()
            .map(norm_serial),
        Some(s2.clone()),
        "{rows:#?}"
    );
    assert_eq!(by_serial(&rows, &s2)["status"], "valid", "{rows:#?}");
    assert_verifies(&e, &["-CAfile", "pki/ca.crt", &g2]);

    // --revoke-old: generation 2 goes to the CRL as superseded.
    e.ok(&["renew", "alice", "--revoke-old"]);
    let g3 = keep(&e, "pki/issued/alice.crt", "alice-3.crt");
    let s3 = serial_of(&e, &g3);
    assert!(s3 != s1 && s3 != s2);
    let text = crl_text(&e, "pki/ca.crt");
    let (n_renew, entries) = parse_crl(&text);
    assert_eq!(
        crl_entry(&entries, &s2).map(|x| x.reason.clone()),
        Some(Some("Superseded".to_owned())),
        "{text}"
    );
    assert!(crl_entry(&entries, &s1).is_none(), "{text}");
    assert!(crl_entry(&entries, &s3).is_none(), "{text}");
    assert_revoked(&e, &with_crl(&g2));
    assert_verifies(&e, &with_crl(&g3));
    let rows = list(&e);
    assert_eq!(by_serial(&rows, &s2)["status"], "revoked", "{rows:#?}");
    assert_eq!(by_serial(&rows, &s1)["status"], "superseded", "{rows:#?}");

    // revoke NAME: every generation not yet revoked, the superseded one too.
    e.ok(&["revoke", "alice", "--reason", "keyCompromise"]);
    let text = crl_text(&e, "pki/ca.crt");
    let (n_revoke, entries) = parse_crl(&text);
    assert!(
        n_revoke > n_renew,
        "CRL number must increase: {n_renew} then {n_revoke}"
    );
    assert_eq!(entries.len(), 3, "{text}");
    for serial in [&s1, &s3] {
        assert_eq!(
            crl_entry(&entries, serial).map(|x| x.reason.clone()),
            Some(Some("Key Compromise".to_owned())),
            "{serial}: {text}"
        );
    }
    assert_eq!(
        crl_entry(&entries, &s2).map(|x| x.reason.clone()),
        Some(Some("Superseded".to_owned())),
        "the earlier revocation keeps its reason: {text}"
    );
    for g in [&g1, &g2, &g3] {
        assert_revoked(&e, &with_crl(g));
    }
    let rows = list(&e);
    for serial in [&s1, &s2, &s3] {
        assert_eq!(by_serial(&rows, serial)["status"], "revoked", "{rows:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Short TTL
// ---------------------------------------------------------------------------------------------

#[test]
fn ttl_gives_hours_of_validity_plus_backdating() {
    let e = Env::with_ca();
    e.ok(&["client", "temp", "--ttl", "8h"]);
    let (nb, na) = validity(&e, "pki/issued/temp.crt");
    let expected = 8 * 3600 + 5 * 60;
    assert!(
        (na - nb - expected).abs() <= 60,
        "notAfter - notBefore = {} s, expected about {expected} s",
        na - nb
    );
    assert!(valid_in(&e, "pki/issued/temp.crt", "0"), "valid now");
    assert!(
        !valid_in(&e, "pki/issued/temp.crt", "86400"),
        "an 8h certificate must expire within a day"
    );
    // The store agrees with the certificate.
    let rows = list(&e);
    let serial = serial_of(&e, "pki/issued/temp.crt");
    let row = by_serial(&rows, &serial);
    let store_na = unix_time(
        &row["not_after"]
            .as_str()
            .expect("not_after")
            .replace('T', " "),
    );
    assert_eq!(store_na, na, "{row}");
}

// ---------------------------------------------------------------------------------------------
// 10. Non-RSA client
// ---------------------------------------------------------------------------------------------

#[test]
fn p256_client_works_with_openvpn_and_warns_about_client_vpn() {
    let e = Env::with_ca();
    e.ok(&["server", "vpn.example.com"]);
    let o = e.run(&["client", "ecuser", "--algo", "p256"]);
    assert!(o.status.success(), "{}", s(&o.stderr));
    let err = s(&o.stderr);
    assert!(
        err.contains("AWS Client VPN") || err.contains("Client VPN"),
        "no Client VPN warning on stderr: {err}"
    );
    assert!(err.to_lowercase().contains("warning"), "{err}");
    let t = x509_text(&e, "pki/issued/ecuser.crt");
    assert!(t.contains("id-ecPublicKey"), "{t}");
    assert!(t.contains("prime256v1") || t.contains("P-256"), "{t}");
    e.ok(&["crl"]);

    let server = exported(&e, "vpn.example.com", "srv");
    let client = exported(&e, "ecuser", "ec");
    assert_valid_key_of(&client.dir, "ecuser.key", "ecuser.crt", None);
    assert_eq!(
        webpki_verify(
            &e.path("pki/ca.crt"),
            &[],
            &client.cert(),
            Some(&e.path("pki/crl.pem")),
            webpki::KeyUsage::client_auth()
        ),
        Ok(())
    );
    let hs = ovpn(&e, &server, &client);
    assert!(hs.ok, "p256 client:\n{hs}");
}

/// Regression: the CRL's thisUpdate was "now", so a VPN server whose clock lagged a little
/// rejected the CRL as not yet valid, and with it every client.
#[test]
fn crl_this_update_is_back_dated() {
    let e = Env::with_ca();
    e.ok(&["crl"]);
    let out = openssl_ok(
        &["crl", "-in", "pki/crl.pem", "-noout", "-lastupdate"],
        e.dir.path(),
    );
    let last = openssl_time(out.trim().trim_start_matches("lastUpdate="));
    let age = time::OffsetDateTime::now_utc() - last;
    assert!(
        age >= time::Duration::minutes(4),
        "thisUpdate {last} is not back-dated (age {age})"
    );
}
