//! Interop: what vpnca writes is read by the implementations its users run — OpenSSL 3.0 and
//! GnuTLS 3.7 (Debian 12), OpenVPN 2.6 — and passes pkilint's RFC 5280 linter. Regression tests
//! for three reported defects:
//!
//! 1. Ed25519 keys were exported as PKCS#8 v2 (RFC 5958 `OneAsymmetricKey` with the `[1]` public
//!    key), which OpenSSL 3.0–3.4, GnuTLS 3.7 and Python `cryptography` cannot read: as PEM,
//!    encrypted PEM, inside a `.p12` or an `.ovpn`, so OpenVPN 2.6 on OpenSSL 3.0 could not use
//!    an Ed25519 profile. Every export path is read here by both libraries, for every `--algo`;
//! 2. EC and Ed25519 certificates carried keyEncipherment, which RFC 8813 (EC) and RFC 8410 /
//!    RFC 9295 (Ed25519) forbid: every certificate kind of every algorithm is linted by pkilint;
//! 3. a fresh CRL listed revocation dates later than its own (back-dated) thisUpdate.
//!
//! Nothing is re-parsed with vpnca's own code.
mod common;
use common::*;

use std::path::Path;

use common::openvpn::ExportedServer;

// ---------------------------------------------------------------------------------------------
// The algorithms and what the other tools print for each
// ---------------------------------------------------------------------------------------------

/// A `--algo` value and the lines each tool prints for a key of it.
struct Alg {
    name: &'static str,
    /// In `openssl pkey -noout -text`.
    openssl: &'static [&'static str],
    /// In `certtool --pubkey-info --load-privkey`.
    gnutls: &'static [&'static str],
    /// The keyUsage openssl prints for a `server` certificate (the profile asks for
    /// digitalSignature and keyEncipherment; only RSA keys may have the second).
    server_ku: &'static str,
}

/// Every value `--algo` accepts (docs/commands-certificates.md).
const ALGS: [Alg; 6] = [
    Alg {
        name: "rsa2048",
        openssl: &["Private-Key: (2048 bit, 2 primes)"],
        gnutls: &["Public Key Algorithm: RSA", "Modulus (bits 2048)"],
        server_ku: "Digital Signature, Key Encipherment",
    },
    Alg {
        name: "rsa3072",
        openssl: &["Private-Key: (3072 bit, 2 primes)"],
        gnutls: &["Public Key Algorithm: RSA", "Modulus (bits 3072)"],
        server_ku: "Digital Signature, Key Encipherment",
    },
    Alg {
        name: "rsa4096",
        openssl: &["Private-Key: (4096 bit, 2 primes)"],
        gnutls: &["Public Key Algorithm: RSA", "Modulus (bits 4096)"],
        server_ku: "Digital Signature, Key Encipherment",
    },
    Alg {
        name: "p256",
        openssl: &["Private-Key: (256 bit)", "ASN1 OID: prime256v1"],
        gnutls: &["Public Key Algorithm: EC/ECDSA", "Curve:\tSECP256R1"],
        server_ku: "Digital Signature",
    },
    Alg {
        name: "p384",
        openssl: &["Private-Key: (384 bit)", "ASN1 OID: secp384r1"],
        gnutls: &["Public Key Algorithm: EC/ECDSA", "Curve:\tSECP384R1"],
        server_ku: "Digital Signature",
    },
    Alg {
        name: "ed25519",
        openssl: &["ED25519 Private-Key:"],
        gnutls: &["Public Key Algorithm: EdDSA (Ed25519)"],
        server_ku: "Digital Signature",
    },
];

fn alg(name: &str) -> &'static Alg {
    ALGS.iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no algorithm {name}"))
}

/// The passphrase of every encrypted export here, and its file (written by [`pki`]).
const PASS: &str = "interop-pass-phrase-1";
const PASS_FILE: &str = "pf";

/// A store whose CA, server `vpn.example.com` and client `alice` all have `algo` keys, with
/// a CRL and the passphrase file.
fn pki(algo: &str) -> Env {
    let e = Env::init();
    e.ok(&["ca", "--cn", "Test VPN CA", "--algo", algo]);
    e.ok(&["server", "vpn.example.com", "--algo", algo]);
    e.ok(&["client", "alice", "--algo", algo]);
    e.ok(&["crl"]);
    std::fs::write(e.path(PASS_FILE), format!("{PASS}\n")).expect("passphrase file");
    e
}

// ---------------------------------------------------------------------------------------------
// Reading keys with OpenSSL and GnuTLS
// ---------------------------------------------------------------------------------------------

/// The base64 body of the one `label` PEM block in `text` (whitespace removed), for comparing
/// what two tools print.
fn pem_body(text: &str, label: &str) -> String {
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let from = text
        .find(&begin)
        .unwrap_or_else(|| panic!("no {begin} in:\n{text}"));
    let rest = &text[from + begin.len()..];
    let to = rest
        .find(&end)
        .unwrap_or_else(|| panic!("no {end} in:\n{text}"));
    assert!(
        !rest[to + end.len()..].contains(&begin),
        "more than one {label} block in:\n{text}"
    );
    rest[..to].split_whitespace().collect()
}

/// The whole `label` PEM block of `text`, as lines ending in `\n`.
fn pem_block(text: &str, label: &str) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        pem_body(text, label)
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The public key of a certificate, as openssl extracts it (base64 of the SPKI).
fn cert_public_key(dir: &Path, cert: &str) -> String {
    let out = openssl_ok(&["x509", "-in", cert, "-noout", "-pubkey"], dir);
    pem_body(&out, "PUBLIC KEY")
}

/// The inline `<key>` block of an OpenVPN profile.
fn profile_key(profile: &str) -> String {
    let start = profile
        .find("<key>\n")
        .unwrap_or_else(|| panic!("no <key> block in:\n{profile}"));
    let body = &profile[start + "<key>\n".len()..];
    let end = body
        .find("</key>")
        .unwrap_or_else(|| panic!("<key> never closed in:\n{profile}"));
    body[..end].to_owned()
}

/// A plain PEM key is PKCS#8 v1 (RFC 5208), as openssl's DER dump shows it: the first element
/// of the PrivateKeyInfo is the version INTEGER 0, and there is no `[1]` public key (RFC 5958's
/// v2 field, which OpenSSL 3.0–3.4 and GnuTLS 3.7 refuse).
fn assert_pkcs8_v1(dir: &Path, key: &str) {
    let dump = openssl_ok(&["asn1parse", "-in", key], dir);
    let top: Vec<&str> = dump.lines().filter(|l| l.contains(":d=1 ")).collect();
    assert!(
        top.first()
            .is_some_and(|l| l.contains("prim: INTEGER") && l.trim_end().ends_with(":00")),
        "{key}: the PrivateKeyInfo version is not 0 (PKCS#8 v1):\n{dump}"
    );
    assert!(
        !top.iter().any(|l| l.contains("cont [ 1 ]")),
        "{key}: the key carries RFC 5958's [1] public key (PKCS#8 v2):\n{dump}"
    );
}

/// The key file `key` (PEM, under `dir`; encrypted with [`PASS`] when `encrypted`) is read by
/// OpenSSL (`openssl pkey`) and by GnuTLS (`certtool --pubkey-info --load-privkey`): each
/// names the algorithm `a` and derives from it the public key of the certificate `cert`. A
/// plain key is also checked to be PKCS#8 v1.
fn assert_key_is_read(dir: &Path, a: &Alg, key: &str, encrypted: bool, cert: &str) {
    let what = format!("{} key {key}", a.name);
    let text = std::fs::read_to_string(dir.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    let label = if encrypted {
        "ENCRYPTED PRIVATE KEY"
    } else {
        "PRIVATE KEY"
    };
    assert!(
        text.starts_with(&format!("-----BEGIN {label}-----\n")),
        "{what}: not a PEM {label}:\n{text}"
    );
    if !encrypted {
        assert_pkcs8_v1(dir, key);
    }
    let want = cert_public_key(dir, cert);
    let passin = format!("file:{PASS_FILE}");

    // OpenSSL.
    let mut args = vec!["pkey", "-in", key, "-noout", "-text"];
    if encrypted {
        args.extend(["-passin", passin.as_str()]);
    }
    let o = openssl(&args, dir);
    let out = format!("{}{}", s(&o.stdout), s(&o.stderr));
    assert!(o.status.success(), "OpenSSL cannot read the {what}:\n{out}");
    for line in a.openssl {
        assert!(
            out.contains(line),
            "{what}: openssl does not say {line:?}:\n{out}"
        );
    }
    let mut args = vec!["pkey", "-in", key, "-pubout"];
    if encrypted {
        args.extend(["-passin", passin.as_str()]);
    }
    let public = openssl_ok(&args, dir);
    assert_eq!(
        pem_body(&public, "PUBLIC KEY"),
        want,
        "{what}: openssl derives another public key than {cert}'s"
    );

    // GnuTLS.
    let mut args = vec!["--pubkey-info", "--load-privkey", key];
    if encrypted {
        args.extend(["--password", PASS]);
    }
    let o = certtool(&args, dir);
    let out = format!("{}{}", s(&o.stdout), s(&o.stderr));
    assert!(o.status.success(), "GnuTLS cannot read the {what}:\n{out}");
    for line in a.gnutls {
        assert!(
            out.contains(line),
            "{what}: certtool does not say {line:?}:\n{out}"
        );
    }
    assert_eq!(
        pem_body(&out, "PUBLIC KEY"),
        want,
        "{what}: certtool derives another public key than {cert}'s"
    );
}

/// The PKCS#12 file `p12` (protected by [`PASS`]) is opened by OpenSSL (`openssl pkcs12`,
/// without `-legacy`) and by GnuTLS (`certtool --p12-info` verifies the MAC and decrypts the
/// certificate bag; its key bag is then decrypted by `certtool --load-privkey`); each finds the
/// key of the certificate `cert`.
fn assert_p12_is_read(dir: &Path, a: &Alg, p12: &str, cert: &str) {
    let what = format!("{} PKCS#12 {p12}", a.name);
    let want = cert_public_key(dir, cert);
    let passin = format!("file:{PASS_FILE}");

    // OpenSSL: the key it decrypts from the bundle.
    let out_key = format!("{p12}.openssl.key");
    let o = openssl(
        &[
            "pkcs12", "-in", p12, "-passin", &passin, "-nocerts", "-nodes", "-out", &out_key,
        ],
        dir,
    );
    assert!(
        o.status.success(),
        "OpenSSL cannot read the key of the {what}:\n{}{}",
        s(&o.stdout),
        s(&o.stderr)
    );
    let o = openssl(&["pkey", "-in", &out_key, "-noout", "-text"], dir);
    let out = s(&o.stdout);
    assert!(o.status.success(), "{what}: {}", s(&o.stderr));
    for line in a.openssl {
        assert!(
            out.contains(line),
            "{what}: openssl does not say {line:?}:\n{out}"
        );
    }
    let public = openssl_ok(&["pkey", "-in", &out_key, "-pubout"], dir);
    assert_eq!(
        pem_body(&public, "PUBLIC KEY"),
        want,
        "{what}: the key openssl found is not {cert}'s"
    );

    // GnuTLS: the MAC and the bags, then the shrouded key bag itself.
    let info = certtool_ok(
        &["--p12-info", "--inder", "--infile", p12, "--password", PASS],
        dir,
    );
    for line in [
        "MAC: SHA256",
        "Type: PKCS #8 Encrypted key",
        "Type: Certificate",
    ] {
        assert!(
            info.contains(line),
            "{what}: certtool does not say {line:?}:\n{info}"
        );
    }
    let bag = format!("{p12}.bag.key");
    std::fs::write(dir.join(&bag), pem_block(&info, "ENCRYPTED PRIVATE KEY")).expect("bag");
    assert_key_is_read(dir, a, &bag, true, cert);
}

/// Writes the `<key>` block of the profile `ovpn` to `ovpn.key` and checks it like a key file.
fn assert_profile_key_is_read(dir: &Path, a: &Alg, ovpn: &str, encrypted: bool, cert: &str) {
    let profile = std::fs::read_to_string(dir.join(ovpn)).unwrap_or_else(|e| panic!("{ovpn}: {e}"));
    let key = format!("{ovpn}.key");
    std::fs::write(dir.join(&key), profile_key(&profile)).expect("key block");
    assert_key_is_read(dir, a, &key, encrypted, cert);
}

/// Every path by which a private key leaves the store, for one algorithm: `export --key`,
/// `--format pem-encrypted`, `--format p12`, `profile` (plain and `--key-passphrase-file`),
/// `client --batch --out` (NAME.key and NAME.ovpn). Each key is read by OpenSSL and GnuTLS and
/// matched with its certificate; then a real OpenVPN client connects with the plain and the
/// encrypted profile (`askpass`) to an OpenVPN server that uses the exported server key. (`acm
/// import` sends the same PEM as `export --key`, from the same `SecretKeyDer::to_pem`; the ACM
/// test double re-encodes what it receives, so it cannot show the bytes.)
fn every_key_export_is_read(algo: &str) {
    let a = alg(algo);
    let e = pki(algo);
    let dir = e.dir.path();
    let cert = "pki/issued/alice.crt";

    e.ok(&["export", "alice", "--out", "pem", "--key"]);
    assert_key_is_read(dir, a, "pem/alice.key", false, cert);

    e.ok(&[
        "export",
        "alice",
        "--format",
        "pem-encrypted",
        "--out",
        "enc",
        "--key-passphrase-file",
        PASS_FILE,
    ]);
    assert_key_is_read(dir, a, "enc/alice.key", true, cert);

    e.ok(&[
        "export",
        "alice",
        "--format",
        "p12",
        "--out",
        "p12",
        "--key-passphrase-file",
        PASS_FILE,
    ]);
    assert_p12_is_read(dir, a, "p12/alice.p12", cert);

    let remote = [
        "--remote",
        "127.0.0.1:1194",
        "--server-name",
        "vpn.example.com",
    ];
    let mut args = vec!["profile", "alice", "--out", "alice.ovpn"];
    args.extend(remote);
    e.ok(&args);
    assert_profile_key_is_read(dir, a, "alice.ovpn", false, cert);
    let mut args = vec![
        "profile",
        "alice",
        "--out",
        "alice-enc.ovpn",
        "--key-passphrase-file",
        PASS_FILE,
    ];
    args.extend(remote);
    e.ok(&args);
    assert_profile_key_is_read(dir, a, "alice-enc.ovpn", true, cert);

    std::fs::write(e.path("users.csv"), "name\nbob\n").expect("users.csv");
    let endpoint = fixture("ovpn/clientvpn-endpoint-config.ovpn");
    e.ok(&[
        "client",
        "--batch",
        "users.csv",
        "--algo",
        algo,
        "--out",
        "batch",
        "--ovpn-config",
        path_str(&endpoint),
    ]);
    assert_key_is_read(dir, a, "batch/bob.key", false, "batch/bob.crt");
    assert_profile_key_is_read(dir, a, "batch/bob.ovpn", false, "batch/bob.crt");

    // OpenVPN 2.6 (on this machine's OpenSSL) with the server key as exported and each profile.
    let server = ExportedServer::export(&e, "vpn.example.com", "srv");
    let plain = std::fs::read_to_string(e.path("alice.ovpn")).expect("profile");
    let hs = server.connect(&plain);
    assert!(hs.ok, "{algo} profile:\n{hs}");
    let enc = std::fs::read_to_string(e.path("alice-enc.ovpn")).expect("profile");
    let askpass = e.path(PASS_FILE);
    let hs = server.connect(&format!("{enc}askpass {}\n", askpass.display()));
    assert!(hs.ok, "{algo} profile with an encrypted key:\n{hs}");
}

/// Fails when: `SecretKeyDer::export_info` keeps the public key (`info.public_key = None`
/// removed; PKCS#8 v2 again). Seen on the Ed25519 test only: `asn1parse` shows the version
/// `INTEGER :01` in `pem/alice.key`; with that check skipped, `openssl pkey` says
/// "ossl_store_handle_load_result:unsupported"; with the OpenSSL checks skipped too, certtool says
/// "ASN1 parser: Error in DER parsing"; with every key check skipped, the OpenVPN server cannot
/// load the exported Ed25519 key ("Cannot load private key file"). By hand, with the same fault,
/// the encrypted PEM and the `.p12` fail in both libraries too (openssl: "unsupported", "nested
/// asn1 error: Field=attributes, Type=PKCS8_PRIV_KEY_INFO"; certtool: "Decryption has failed").
/// RSA and EC keys are v1 as generated, so their tests pass with the fault: they guard the other
/// algorithms against a fix that would break them.
#[test]
fn ed25519_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export() {
    every_key_export_is_read("ed25519");
}

/// See [`ed25519_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export`].
#[test]
fn p256_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export() {
    every_key_export_is_read("p256");
}

/// See [`ed25519_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export`].
#[test]
fn p384_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export() {
    every_key_export_is_read("p384");
}

/// See [`ed25519_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export`].
#[test]
fn rsa2048_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export() {
    every_key_export_is_read("rsa2048");
}

/// See [`ed25519_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export`].
#[test]
fn rsa3072_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export() {
    every_key_export_is_read("rsa3072");
}

/// See [`ed25519_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export`].
#[test]
fn rsa4096_keys_are_read_by_openssl_gnutls_and_openvpn_in_every_export() {
    every_key_export_is_read("rsa4096");
}

// ---------------------------------------------------------------------------------------------
// pkilint over every certificate kind and the CRL
// ---------------------------------------------------------------------------------------------

/// pkilint findings (severity NOTICE or above) that are accepted, and why. Any other finding
/// fails the test; no ERROR or FATAL finding is ever accepted.
///
/// | Severity | Code | Why it is accepted |
/// |----------|------|--------------------|
/// | NOTICE | `pkix.unknown_subject_key_identifier_calculation_method` | rcgen's key identifier (`KeyIdMethod::Sha256`) is the leftmost 160 bits of the SHA-256 of the whole DER SubjectPublicKeyInfo, none of RFC 7093's methods (which hash the subjectPublicKey BIT STRING, or keep the whole hash). RFC 5280 §4.2.1.2 allows any method that gives unique values; every leaf's authorityKeyIdentifier repeats its CA's, so changing the method would only make new leaves differ from the CRLs and leaves of existing CAs. |
///
/// No WARNING is accepted: none is reported today.
const ACCEPTED: &[(&str, &str)] = &[(
    "NOTICE",
    "pkix.unknown_subject_key_identifier_calculation_method",
)];

/// Lints a certificate (`lint_pkix_cert`) or a CRL (`lint_crl -t CRL -p PKIX`) under `dir` and
/// fails on any finding that [`ACCEPTED`] does not list.
fn assert_lints_clean(dir: &Path, what: &str, file: &str) {
    let path = dir.join(file);
    let findings = if file.ends_with("crl.pem") {
        pkilint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &path)
    } else {
        pkilint("lint_pkix_cert", &[], &path)
    };
    let bad: Vec<&LintFinding> = findings
        .iter()
        .filter(|f| {
            matches!(f.severity.as_str(), "ERROR" | "FATAL")
                || !ACCEPTED
                    .iter()
                    .any(|(sev, code)| f.severity == *sev && f.code == *code)
        })
        .collect();
    assert!(bad.is_empty(), "pkilint on the {what} ({file}): {bad:#?}");
}

/// The keyUsage line openssl prints for a certificate (`None` without the extension).
fn key_usage(dir: &Path, cert: &str) -> Option<String> {
    let text = openssl_ok(&["x509", "-in", cert, "-noout", "-ext", "keyUsage"], dir);
    let mut lines = text.lines();
    lines.find(|l| l.contains("X509v3 Key Usage"))?;
    lines.next().map(|l| l.trim().to_owned())
}

/// Every certificate kind vpnca makes for `algo` keys, by every path that picks the key usage
/// — the CA, `server` (with an IP SAN), `client` (with an e-mail SAN), the `server-client`
/// profile, a `client --batch` user (key made by a batch worker), a `renew --reuse-key` server
/// (a key read back from the store) — and the CRL listing a revoked client, all linted by
/// pkilint; the server's keyUsage as openssl prints it follows the key type.
fn every_certificate_lints_clean(algo: &str) {
    let a = alg(algo);
    let e = Env::init();
    let dir = e.dir.path();
    e.ok(&["ca", "--cn", "Test VPN CA", "--algo", algo]);
    e.ok(&[
        "server",
        "vpn.example.com",
        "--algo",
        algo,
        "--san",
        "IP:10.0.0.1",
    ]);
    e.ok(&[
        "client",
        "alice",
        "--algo",
        algo,
        "--email",
        "alice@example.com",
    ]);
    e.ok(&[
        "server",
        "peer.example.com",
        "--algo",
        algo,
        "--profile",
        "server-client",
    ]);
    std::fs::write(e.path("users.csv"), "name\nbob\n").expect("users.csv");
    e.ok(&["client", "--batch", "users.csv", "--algo", algo]);
    std::fs::copy(e.pki.join("issued/alice.crt"), e.path("alice.crt")).expect("copy");
    std::fs::copy(
        e.pki.join("issued/vpn.example.com.crt"),
        e.path("server.crt"),
    )
    .expect("copy");
    e.ok(&["renew", "vpn.example.com", "--reuse-key"]);
    e.ok(&["revoke", "alice", "--reason", "keyCompromise"]);

    for (what, file) in [
        ("CA", "pki/ca.crt"),
        ("server", "server.crt"),
        ("renewed server", "pki/issued/vpn.example.com.crt"),
        ("client", "alice.crt"),
        ("server-client", "pki/issued/peer.example.com.crt"),
        ("batch client", "pki/issued/bob.crt"),
        ("CRL", "pki/crl.pem"),
    ] {
        assert_lints_clean(dir, &format!("{algo} {what}"), file);
    }
    for (what, file, want) in [
        ("CA", "pki/ca.crt", "Certificate Sign, CRL Sign"),
        ("server", "server.crt", a.server_ku),
        (
            "renewed server",
            "pki/issued/vpn.example.com.crt",
            a.server_ku,
        ),
        (
            "server-client",
            "pki/issued/peer.example.com.crt",
            a.server_ku,
        ),
        ("client", "alice.crt", "Digital Signature"),
        ("batch client", "pki/issued/bob.crt", "Digital Signature"),
    ] {
        assert_eq!(
            key_usage(dir, file).as_deref(),
            Some(want),
            "{algo} {what}: keyUsage"
        );
    }
}

/// Fails when: `KeyType::permits` allows every bit (the defect): seen failing on P-256, P-384
/// (`pkix.key_usage_value_prohibited_for_ec` on the server) and Ed25519
/// (`pkix.key_usage_value_prohibited_for_edwards_curve`); the RSA tests pass with it.
#[test]
fn ed25519_certificates_and_crl_lint_clean() {
    every_certificate_lints_clean("ed25519");
}

/// See [`ed25519_certificates_and_crl_lint_clean`].
#[test]
fn p256_certificates_and_crl_lint_clean() {
    every_certificate_lints_clean("p256");
}

/// See [`ed25519_certificates_and_crl_lint_clean`].
#[test]
fn p384_certificates_and_crl_lint_clean() {
    every_certificate_lints_clean("p384");
}

/// See [`ed25519_certificates_and_crl_lint_clean`].
#[test]
fn rsa2048_certificates_and_crl_lint_clean() {
    every_certificate_lints_clean("rsa2048");
}

/// See [`ed25519_certificates_and_crl_lint_clean`].
#[test]
fn rsa3072_certificates_and_crl_lint_clean() {
    every_certificate_lints_clean("rsa3072");
}

/// See [`ed25519_certificates_and_crl_lint_clean`].
#[test]
fn rsa4096_certificates_and_crl_lint_clean() {
    every_certificate_lints_clean("rsa4096");
}

/// Certificates signed from requests (`sign-req --type server`, the key usage chosen from the
/// request's public key) and from a sub-CA: the foreign root signs vpnca's sub-CA request with
/// the request's own extensions (`-copy_extensions copyall`, so the sub-CA certificate carries
/// what vpnca asked for), then the sub-CA issues a server and a client and writes a CRL. All
/// are linted by pkilint, for an RSA, an EC and an Ed25519 sub-CA.
///
/// Fails when: `KeyType::permits` allows every bit: the P-256 and Ed25519 requests signed as
/// servers get keyEncipherment (pkilint: `key_usage_value_prohibited_for_ec`,
/// `…_for_edwards_curve`), as do the sub-CAs' servers.
#[test]
fn requests_and_sub_ca_certificates_lint_clean() {
    let e = Env::with_ca();
    let dir = e.dir.path();
    for (csr, name, want) in [
        (
            "csr/alice.csr",
            "rsa.example.com",
            "Digital Signature, Key Encipherment",
        ),
        ("csr/bob-p256.csr", "p256.example.com", "Digital Signature"),
        ("csr/ed25519.csr", "ed.example.com", "Digital Signature"),
    ] {
        e.ok(&[
            "sign-req",
            path_str(&fixture(csr)),
            "--type",
            "server",
            "--name",
            name,
        ]);
        let cert = format!("pki/issued/{name}.crt");
        assert_lints_clean(dir, &format!("server signed from {csr}"), &cert);
        assert_eq!(key_usage(dir, &cert).as_deref(), Some(want), "{csr}");
    }

    let root_crt = fixture("foreign-ca.crt");
    for (algo, server_ku) in [
        ("rsa2048", "Digital Signature, Key Encipherment"),
        ("p256", "Digital Signature"),
        ("ed25519", "Digital Signature"),
    ] {
        let e = Env::init();
        let dir = e.dir.path();
        e.ok(&[
            "ca",
            "--sub-ca",
            "--csr-out",
            "sub.csr",
            "--cn",
            "Sub CA",
            "--algo",
            algo,
        ]);
        std::fs::write(
            e.path("sub.ext"),
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .expect("sub.ext");
        let copy = ["-copy_extensions", "copyall"];
        foreign_ca_signs(dir, "sub.csr", "sub.ext", "sub.crt", &copy);
        e.ok(&[
            "ca",
            "--import-cert",
            "sub.crt",
            "--chain",
            path_str(&root_crt),
        ]);
        e.ok(&["server", "vpn.example.com", "--algo", algo]);
        e.ok(&["client", "alice", "--algo", algo]);
        e.ok(&["revoke", "alice"]);
        for (what, file) in [
            ("sub-CA", "sub.crt"),
            ("server", "pki/issued/vpn.example.com.crt"),
            ("CRL", "pki/crl.pem"),
        ] {
            assert_lints_clean(dir, &format!("{algo} sub-CA's {what}"), file);
        }
        assert_eq!(
            key_usage(dir, "sub.crt").as_deref(),
            Some("Certificate Sign, CRL Sign"),
            "{algo} sub-CA"
        );
        assert_eq!(
            key_usage(dir, "pki/issued/vpn.example.com.crt").as_deref(),
            Some(server_ku),
            "{algo} sub-CA's server"
        );
    }
}

/// A user template's keyUsage is adapted to the key: the bits the key type forbids are left
/// out (RSA: keyAgreement; EC: keyEncipherment, dataEncipherment; Ed25519: all but
/// digitalSignature, nonRepudiation, keyCertSign, cRLSign), and a template that leaves no bit
/// for the key is refused (exit 2, nothing written) before a key is made.
///
/// Fails when: the "no bit left" refusal in `Profile::key_usages_for` is removed (seen: the
/// P-256 client with `key_usage = ["keyEncipherment"]` was issued, exit 0).
#[test]
fn user_templates_keep_the_key_usage_bits_the_key_may_carry() {
    let e = Env::with_ca();
    let dir = e.dir.path();
    adopt_template(
        &e,
        "server",
        "description = \"Everything\"\nca = false\ndays = 90\n\
         key_usage = [\"digitalSignature\", \"nonRepudiation\", \"keyEncipherment\", \
         \"dataEncipherment\", \"keyAgreement\"]\n\
         extended_key_usage = [\"serverAuth\"]\n\
         [san]\ndns_from_name = true\nallow = [\"dns\"]\n",
    );
    for (algo, want) in [
        (
            "rsa2048",
            "Digital Signature, Non Repudiation, Key Encipherment, Data Encipherment",
        ),
        ("p256", "Digital Signature, Non Repudiation, Key Agreement"),
        ("ed25519", "Digital Signature, Non Repudiation"),
    ] {
        let name = format!("{algo}.example.com");
        e.ok(&["server", &name, "--algo", algo]);
        let cert = format!("pki/issued/{name}.crt");
        assert_eq!(key_usage(dir, &cert).as_deref(), Some(want), "{algo}");
        assert_lints_clean(dir, &format!("{algo} server of the template"), &cert);
    }

    for (bits, refused, issued) in [
        (
            "\"keyEncipherment\"",
            ["p256", "ed25519"],
            ("rsa2048", "Key Encipherment"),
        ),
        (
            "\"keyAgreement\"",
            ["rsa2048", "ed25519"],
            ("p256", "Key Agreement"),
        ),
    ] {
        adopt_template(
            &e,
            "client",
            &format!(
                "description = \"Odd\"\nca = false\ndays = 90\nkey_usage = [{bits}]\n\
                 extended_key_usage = [\"clientAuth\"]\n\
                 [san]\ndns_from_name = false\nallow = []\n"
            ),
        );
        for algo in refused {
            let before = e.snapshot();
            let err = e.fails(&["client", &format!("u-{algo}"), "--algo", algo], 2);
            let key_type = match algo {
                "rsa2048" => "RSA",
                "p256" => "EC",
                _ => "Ed25519",
            };
            assert!(
                err.contains("bad certificate profile")
                    && err.contains("adopted profile client")
                    && err.contains(&format!(
                        "key_usage = [{}] leaves no bit that a certificate for an {key_type} key may carry",
                        bits.trim_matches('"')
                    )),
                "{algo} with key_usage = [{bits}]: {err}"
            );
            assert_eq!(e.snapshot(), before, "a refused issue changed the store");
        }
        // In a batch, such a line is invalid like any other: nothing is issued.
        std::fs::write(e.path("users.csv"), "name\nann\nbob\n").expect("users.csv");
        let before = e.snapshot();
        let err = e.fails(&["client", "--batch", "users.csv", "--algo", refused[0]], 2);
        assert!(
            err.contains("line 3")
                && err.contains("leaves no bit")
                && err.contains("nothing was issued"),
            "{} batch with key_usage = [{bits}]: {err}",
            refused[0]
        );
        assert_eq!(e.snapshot(), before, "a refused batch changed the store");
        let (algo, want) = issued;
        let name = format!("ok-{algo}-{}", bits.trim_matches('"'));
        e.ok(&["client", &name, "--algo", algo]);
        let cert = format!("pki/issued/{name}.crt");
        assert_eq!(key_usage(dir, &cert).as_deref(), Some(want), "{algo}");
        assert_lints_clean(dir, &format!("{algo} client of the template"), &cert);
    }
}

// ---------------------------------------------------------------------------------------------
// CRL dates
// ---------------------------------------------------------------------------------------------

/// The notBefore of a certificate file, as openssl prints it.
fn not_before(dir: &Path, cert: &str) -> time::OffsetDateTime {
    let out = openssl_ok(&["x509", "-in", cert, "-noout", "-startdate"], dir);
    openssl_time(out.trim().trim_start_matches("notBefore="))
}

/// The CRL at `pki/crl.pem`, signature checked by openssl: its Last Update and each entry's
/// serial and Revocation Date, as openssl prints them.
fn crl_dates(e: &Env) -> (time::OffsetDateTime, Vec<(String, time::OffsetDateTime)>) {
    let text = crl_verified_text(e.dir.path(), "pki/crl.pem", "pki/ca.crt");
    let mut last = None;
    let mut entries = Vec::new();
    let mut serial = None;
    for l in text.lines().map(str::trim) {
        if let Some(t) = l.strip_prefix("Last Update: ") {
            last = Some(openssl_time(t));
        } else if let Some(sn) = l.strip_prefix("Serial Number: ") {
            serial = Some(norm_serial(sn));
        } else if let Some(t) = l.strip_prefix("Revocation Date: ") {
            let sn = serial
                .take()
                .expect("a Revocation Date follows its Serial Number");
            entries.push((sn, openssl_time(t)));
        }
    }
    (last.expect("the CRL has a Last Update"), entries)
}

/// Every CRL written right after revocations — by `revoke`, by `renew --revoke-old` and by
/// `crl` — lists each revocation with a Revocation Date no later than its own Last Update
/// (thisUpdate, back-dated 5 minutes; docs/defaults.md), and no earlier than the revoked
/// certificate's notBefore (so the back-dating never dates a revocation before the certificate
/// existed). Dates as openssl prints them from the signature-checked CRL.
///
/// Fails when: the entry's date is `revoked_at` again instead of `min(revoked_at, thisUpdate)`
/// (src/crl.rs; seen: alice revoked 5 minutes after the first CRL's Last Update), and when it is
/// `min(revoked_at, thisUpdate - 1 hour)` (seen: alice revoked before her notBefore).
#[test]
fn a_fresh_crl_dates_no_revocation_after_its_this_update() {
    let e = Env::with_ca();
    let dir = e.dir.path();
    let mut revoked: Vec<(String, time::OffsetDateTime)> = Vec::new();
    let remember = |e: &Env, name: &str| {
        let copy = format!("{name}.crt");
        std::fs::copy(e.pki.join(format!("issued/{name}.crt")), e.path(&copy)).expect("copy");
        (openssl_serial(dir, &copy), not_before(dir, &copy))
    };
    let check = |e: &Env, revoked: &[(String, time::OffsetDateTime)], step: &str| {
        let (last, entries) = crl_dates(e);
        assert_eq!(
            entries.len(),
            revoked.len(),
            "{step}: the CRL lists {entries:?}, expected {revoked:?}"
        );
        for (serial, nb) in revoked {
            let (_, date) = entries
                .iter()
                .find(|(sn, _)| sn == serial)
                .unwrap_or_else(|| panic!("{step}: {serial} is not in the CRL: {entries:?}"));
            assert!(
                *date <= last,
                "{step}: {serial} revoked at {date}, after the CRL's Last Update {last}"
            );
            assert!(
                *date >= *nb,
                "{step}: {serial} revoked at {date}, before its notBefore {nb}"
            );
        }
        assert_lints_clean(e.dir.path(), step, "pki/crl.pem");
    };

    for name in ["alice", "bob", "carol"] {
        e.ok(&["client", name]);
    }
    revoked.push(remember(&e, "alice"));
    e.ok(&["revoke", "alice"]);
    check(&e, &revoked, "revoke alice");

    revoked.push(remember(&e, "bob"));
    e.ok(&["revoke", "bob", "--reason", "keyCompromise"]);
    check(&e, &revoked, "revoke bob");

    revoked.push(remember(&e, "carol"));
    e.ok(&["renew", "carol", "--revoke-old"]);
    check(&e, &revoked, "renew carol --revoke-old");

    e.ok(&["crl"]);
    check(&e, &revoked, "crl");
}
