//! `vpnca sign-req` on the committed fixtures in tests/data/ (made by tests/data/generate.sh):
//! valid requests are signed with vpnca's own profile and checked with openssl; every malformed
//! request in tests/data/bad-csr/ is refused with exit 2, a specific message, and no change to
//! the store.
mod common;
use common::*;

use std::path::Path;

/// Every file in tests/data/bad-csr/, with the phrase `sign-req` must refuse it with, and
/// whether the message names the file. Problems found while reading the request name the file;
/// problems with the name it asks for are reported like a bad `--name`, without the file.
const BAD_CSRS: &[(&str, &str, bool)] = &[
    (
        "flipped-signature.csr",
        "its signature does not verify",
        true,
    ),
    (
        "wrong-signer.csr",
        "its signature does not verify (corrupted, or not signed by its own key)",
        true,
    ),
    (
        "truncated.csr",
        "its PEM block has no END line (truncated?)",
        true,
    ),
    ("truncated-body.csr", "not a valid PKCS#10 request", true),
    (
        "certificate.pem",
        "no PEM CERTIFICATE REQUEST block found",
        true,
    ),
    ("junk.bin", "no PEM CERTIFICATE REQUEST block found", true),
    ("empty.csr", "the file is empty", true),
    (
        "trailing-garbage.der",
        "trailing data after the request",
        true,
    ),
    (
        "slash-in-cn.csr",
        r#"its CN cannot name a certificate (invalid name a/b: it contains '/' or '\'); give a name with --name"#,
        false,
    ),
    (
        "empty-subject.csr",
        "it has no CN to name the certificate; give a name with --name",
        false,
    ),
];

/// Runs `sign-req FILE --type client`; asserts exit 2, `phrase` in stderr, nothing on stdout,
/// no panic, and a byte-for-byte unchanged store. Returns stderr.
fn refused(e: &Env, file: &Path, phrase: &str) -> String {
    let before = e.snapshot();
    let o = e.run(&["sign-req", path_str(file), "--type", "client"]);
    let (out, err) = (s(&o.stdout), s(&o.stderr));
    let what = file.display();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{what}: expected exit 2\nstdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains(phrase),
        "{what}: expected {phrase:?} in the message, got:\n{err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(out.is_empty(), "{what}: printed on stdout: {out}");
    assert_eq!(e.snapshot(), before, "{what}: the store changed");
    err
}

/// The table covers the folder exactly: a fixture added without an expectation fails here.
#[test]
fn the_table_covers_every_bad_csr_fixture() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture("bad-csr"))
        .expect("tests/data/bad-csr")
        .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = BAD_CSRS.iter().map(|(f, _, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn bad_csrs_are_refused_with_a_specific_message_and_change_nothing() {
    let e = Env::with_ca();
    let start = e.snapshot();
    for (file, phrase, names_file) in BAD_CSRS {
        let path = fixture(&format!("bad-csr/{file}"));
        let err = refused(&e, &path, phrase);
        if *names_file {
            assert!(
                err.contains(&format!(
                    "bad certificate signing request {}: ",
                    path.display()
                )),
                "{file}: the message does not name the file:\n{err}"
            );
        }
    }
    assert_eq!(e.snapshot(), start);
    // Nothing was issued along the way: the CA is the only certificate.
    assert_eq!(e.ok(&["--json", "list"]).lines().count(), 1);
}

/// The signature fixtures are well-formed requests that openssl parses but whose signatures
/// openssl rejects too; the name fixtures are validly self-signed. So vpnca's refusals above
/// are about the signature and the name, not about the encoding.
#[test]
fn signature_and_name_fixtures_are_what_they_claim() {
    let dir = fixture("bad-csr");
    for (file, verifies) in [
        ("flipped-signature.csr", false),
        ("wrong-signer.csr", false),
        ("slash-in-cn.csr", true),
        ("empty-subject.csr", true),
    ] {
        let o = openssl(&["req", "-in", file, "-noout", "-verify"], &dir);
        let all = format!("{}{}", s(&o.stdout), s(&o.stderr));
        // OpenSSL 3.0 exits 0 even when the self-signature fails: read the verdict.
        assert_eq!(all.contains("verify OK"), verifies, "{file}: {all}");
        if !verifies {
            assert!(all.contains("verify failure"), "{file}: {all}");
        }
    }
    let subject = |f: &str| openssl_ok(&["req", "-in", f, "-noout", "-subject"], &dir);
    assert_eq!(subject("slash-in-cn.csr").trim(), "subject=CN = a/b");
    assert_eq!(subject("empty-subject.csr").trim(), "subject=");
}

/// A request signed by a key other than the one it carries is refused, and that holds
/// whatever name or type is asked for.
#[test]
fn a_request_signed_by_another_key_is_refused() {
    let e = Env::with_ca();
    let file = fixture("bad-csr/wrong-signer.csr");
    refused(&e, &file, "not signed by its own key");
    for args in [
        &["--type", "server", "--name", "vpn.example.com"][..],
        &["--type", "client", "--name", "victim2"][..],
    ] {
        let before = e.snapshot();
        let mut a = vec!["sign-req", path_str(&file)];
        a.extend_from_slice(args);
        let err = e.fails(&a, 2);
        assert!(err.contains("its signature does not verify"), "{err}");
        assert_eq!(e.snapshot(), before, "{args:?}: the store changed");
    }
}

/// The empty-subject request was refused only for want of a name: with --name it is signed.
#[test]
fn a_request_without_cn_is_signed_with_an_explicit_name() {
    let e = Env::with_ca();
    e.ok(&[
        "sign-req",
        path_str(&fixture("bad-csr/empty-subject.csr")),
        "--type",
        "client",
        "--name",
        "carol",
    ]);
    let t = openssl_ok(
        &["x509", "-in", "pki/issued/carol.crt", "-noout", "-subject"],
        e.dir.path(),
    );
    assert_eq!(t.trim(), "subject=CN = carol");
}

/// `openssl verify -x509_strict -CAfile pki/ca.crt ARGS`; returns (success, output).
fn ossl_verify(e: &Env, args: &[&str]) -> (bool, String) {
    let mut a = vec!["-CAfile", "pki/ca.crt"];
    a.extend_from_slice(args);
    openssl_verify(e.dir.path(), &a)
}

/// The public key of a request, as openssl prints it (PEM).
fn csr_pubkey(csr: &Path) -> String {
    openssl_ok(
        &["req", "-in", path_str(csr), "-noout", "-pubkey"],
        Path::new("."),
    )
}

/// The value line under "X509v3 NAME:" in `openssl x509 -text` output, if present.
fn ext_value(text: &str, name: &str) -> Option<String> {
    let header = format!("X509v3 {name}:");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim().starts_with(&header) {
            return lines.next().map(|v| v.trim().to_owned());
        }
    }
    None
}

/// Checks a client certificate made from a request: it chains to the store's CA under strict
/// RFC 5280 checks, is usable for clients only, is not a CA, and carries the request's key.
fn assert_client_cert_from(e: &Env, name: &str, csr: &Path) -> String {
    let cert = format!("pki/issued/{name}.crt");
    let (ok, out) = ossl_verify(e, &["-purpose", "sslclient", &cert]);
    assert!(ok && out.contains(": OK"), "{name}: openssl verify:\n{out}");
    let (ok, out) = ossl_verify(e, &["-purpose", "sslserver", &cert]);
    assert!(
        !ok,
        "{name}: a client certificate verifies for servers:\n{out}"
    );
    let t = openssl_ok(&["x509", "-in", &cert, "-noout", "-text"], e.dir.path());
    assert!(t.contains(&format!("Subject: CN = {name}\n")), "{t}");
    assert!(t.contains("Issuer: CN = Test VPN CA\n"), "{t}");
    assert_eq!(
        ext_value(&t, "Basic Constraints").as_deref(),
        Some("CA:FALSE"),
        "{t}"
    );
    assert_eq!(
        ext_value(&t, "Extended Key Usage").as_deref(),
        Some("TLS Web Client Authentication"),
        "{t}"
    );
    let ku = ext_value(&t, "Key Usage").expect("keyUsage");
    assert!(
        !ku.contains("Certificate Sign") && !ku.contains("CRL Sign"),
        "{t}"
    );
    assert_eq!(
        cert_pubkey(e.dir.path(), &cert),
        csr_pubkey(csr),
        "{name}: not the request's key"
    );
    // And nothing vpnca issues chains to the foreign root.
    let o = openssl(
        &[
            "verify",
            "-CAfile",
            path_str(&fixture("foreign-ca.crt")),
            &cert,
        ],
        e.dir.path(),
    );
    assert!(!o.status.success(), "{name} verifies under the foreign CA");
    t
}

/// RSA-2048, P-256 and Ed25519 requests are signed. None of them gets the AWS Client VPN
/// warning that `vpnca client --algo p256|ed25519` prints (pinned as found: sign-req does not
/// look at the key type beyond refusing unsupported ones).
#[test]
fn valid_requests_are_signed_with_the_client_profile() {
    let e = Env::with_ca();
    for (file, name, key_text) in [
        ("csr/alice.csr", "alice", "Public-Key: (2048 bit)"),
        ("csr/bob-p256.csr", "bob", "NIST CURVE: P-256"),
        ("csr/ed25519.csr", "edward", "Public Key Algorithm: ED25519"),
    ] {
        let csr = fixture(file);
        let o = e.run(&["sign-req", path_str(&csr), "--type", "client"]);
        let (out, err) = (s(&o.stdout), s(&o.stderr));
        assert_eq!(o.status.code(), Some(0), "{file}: {out}\n{err}");
        assert!(
            out.starts_with(&format!("Issued client certificate {name} (serial ")),
            "{file}: {out}"
        );
        // Non-RSA keys get the AWS Client VPN warning (OpenVPN accepts them).
        assert!(
            err.is_empty() || err.starts_with("warning: AWS Client VPN accepts only RSA-2048"),
            "{file}: unexpected stderr {err}"
        );
        assert_eq!(err.is_empty(), file == "csr/alice.csr", "{file}: {err}");
        let t = assert_client_cert_from(&e, name, &csr);
        assert!(t.contains(key_text), "{file}: {t}");
        let show = e.ok(&["show", name]);
        assert!(
            show.contains("key stored:  no (signed from a CSR)"),
            "{show}"
        );
    }
    let show = e.ok(&["show", "edward"]);
    assert!(show.contains("key:         ed25519"), "{show}");
}

/// The request asks for CA:TRUE, keyCertSign, serverAuth and a DNS SAN; vpnca ignores all of
/// it and applies its client profile.
#[test]
fn requested_extensions_are_ignored() {
    let e = Env::with_ca();
    let csr = fixture("csr/mallory-wants-ca.csr");
    let asked = openssl_ok(
        &["req", "-in", path_str(&csr), "-noout", "-text"],
        Path::new("."),
    );
    assert!(
        asked.contains("CA:TRUE") && asked.contains("evil.example.com"),
        "the fixture no longer asks for what this test is about:\n{asked}"
    );
    e.ok(&["sign-req", path_str(&csr), "--type", "client"]);
    let t = assert_client_cert_from(&e, "mallory", &csr);
    assert!(!t.contains("CA:TRUE"), "{t}");
    assert!(!t.contains("TLS Web Server Authentication"), "{t}");
    assert!(!t.contains("evil.example.com"), "{t}");
}

/// RSA-1024 is refused for its key size (AWS Client VPN would accept it; vpnca does not sign
/// keys under 2048 bits), naming the file and the supported keys; the store is unchanged.
#[test]
fn an_rsa_1024_request_is_refused() {
    let e = Env::with_ca();
    let csr = fixture("csr/rsa1024.csr");
    let t = openssl_ok(
        &["req", "-in", path_str(&csr), "-noout", "-text"],
        Path::new("."),
    );
    assert!(t.contains("Public-Key: (1024 bit)"), "{t}");
    let err = refused(
        &e,
        &csr,
        "unsupported public key: vpnca signs RSA 2048/3072/4096, P-256, P-384 and Ed25519 keys (RSA-1024 is too weak, even though AWS Client VPN would accept it)",
    );
    assert!(err.contains(path_str(&csr)), "{err}");
}

/// A vpnca sub-CA request (`sub.csr`, CN "Sub CA") signed by the foreign root into `sub.crt`
/// (not imported yet); returns the root's certificate.
fn foreign_root_signs_a_sub_ca(e: &Env) -> std::path::PathBuf {
    let dir = e.dir.path();
    e.ok(&["ca", "--sub-ca", "--csr-out", "sub.csr", "--cn", "Sub CA"]);
    std::fs::write(
        dir.join("sub.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .expect("write ext");
    foreign_ca_signs(dir, "sub.csr", "sub.ext", "sub.crt", &[]);
    fixture("foreign-ca.crt")
}

/// The foreign root signs a vpnca sub-CA request; clients of that sub-CA then verify under
/// the foreign root, and a request the root never saw cannot be imported.
#[test]
fn a_sub_ca_under_the_foreign_root() {
    let e = Env::init();
    let dir = e.dir.path();
    let root_crt = foreign_root_signs_a_sub_ca(&e);
    // The root's own certificate is not a certificate for the pending request's key.
    let before = e.snapshot();
    let root = path_str(&root_crt);
    let err = e.fails(&["ca", "--import-cert", root, "--chain", root], 2);
    assert!(
        err.contains("its public key is not the one in the pending request"),
        "{err}"
    );
    assert_eq!(e.snapshot(), before, "a refused import changed the store");

    e.ok(&["ca", "--import-cert", "sub.crt", "--chain", root]);
    e.ok(&[
        "sign-req",
        path_str(&fixture("csr/alice.csr")),
        "--type",
        "client",
    ]);
    let (ok, out) = openssl_verify(
        dir,
        &[
            "-CAfile",
            root,
            "-untrusted",
            "pki/ca.crt",
            "-purpose",
            "sslclient",
            "pki/issued/alice.crt",
        ],
    );
    assert!(ok, "{out}");
}

/// A sub-CA's parent chain is an item of the state (format 2): rows removed from it — the
/// foreign root taken out of the `chain` table — are refused with exit 2 wherever the chain
/// is read (a profile's `<ca>`, `export`), nothing written, and `verify` reports the missing
/// state entries.
///
/// Fails when (seen with a planted fault): `Store::parent_chain` reading the rows without
/// proving `Item::Chain` (the profile was refused by its whole-state check alone, not naming
/// the chain).
#[test]
fn rows_removed_from_a_sub_ca_chain_are_refused() {
    let e = Env::init();
    let dir = e.dir.path();
    let root_crt = foreign_root_signs_a_sub_ca(&e);
    e.ok(&[
        "ca",
        "--import-cert",
        "sub.crt",
        "--chain",
        path_str(&root_crt),
    ]);
    e.ok(&["client", "alice"]);
    assert_eq!(sqlite_query(&e, "SELECT COUNT(*) FROM chain").trim(), "1");

    sqlite(&e, "DELETE FROM chain");
    let before = e.snapshot();
    for args in [
        &[
            "profile",
            "alice",
            "--remote",
            "vpn.example.com",
            "--out",
            "alice.ovpn",
        ][..],
        &["export", "alice", "--out", "out"][..],
    ] {
        let err = e.fails(args, 2);
        // `profile` checks the whole state first (its server pin), `export` proves the chain.
        assert!(
            err.contains("the CA's parent chain") || err.contains("the tables no longer hold"),
            "{args:?}: {err}"
        );
    }
    assert!(
        e.snapshot() == before,
        "a refused command changed the store"
    );
    assert!(!dir.join("alice.ovpn").exists() && !dir.join("out").exists());
    let o = e.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    let out = s(&o.stdout);
    assert!(
        out.contains("state has entries the tables no longer hold"),
        "{out}"
    );
}
