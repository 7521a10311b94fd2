//! Documented behaviours that no other test exercised, each through the real binary and
//! checked with an independent tool (the `openssl` CLI, the `sqlite3` CLI, a real terminal
//! driven by Python's `pty` module). The page and section each test pins is named above it,
//! with the planted fault it was seen failing on.
mod common;
use common::oldpki::openssl_pki_with_expired;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An initialised store with a P-256 root CA (cheap; RSA does not matter for these tests).
fn p256_ca(days: Option<&str>) -> Env {
    let e = Env::init();
    let mut args = vec!["ca", "--cn", "Test VPN CA", "--algo", "p256"];
    if let Some(d) = days {
        args.extend(["--days", d]);
    }
    e.ok(&args);
    e
}

/// `vpnca client NAME --algo p256 EXTRA…`; returns the new record.
fn client(e: &Env, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["client", name, "--algo", "p256"];
    args.extend_from_slice(extra);
    e.json(&args)
}

/// `--json ARGS` that print JSON lines (`list`, `log`, the `--batch` forms).
fn json_lines(e: &Env, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    e.ok(&a)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("{args:?}: {err}: {l}")))
        .collect()
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string field {k:?} in {v}"))
}

/// Serial → stored status, from `vpnca --json list`.
fn statuses(e: &Env) -> BTreeMap<String, String> {
    json_lines(e, &["list"])
        .iter()
        .map(|r| {
            (
                str_of(r, "serial").to_owned(),
                str_of(r, "status").to_owned(),
            )
        })
        .collect()
}

/// Writes the certificate with SERIAL (from `vpnca --json show --serial`) to `<env>/FILE`.
fn pem_of(e: &Env, serial: &str, file: &str) -> String {
    let v = e.json(&["show", "--serial", serial]);
    std::fs::write(e.path(file), str_of(&v, "pem")).expect("write pem");
    file.to_owned()
}

/// One line of `openssl x509 -noout FLAG` (e.g. `-enddate` → the text after `notAfter=`).
fn x509_field(e: &Env, cert: &str, flag: &str) -> String {
    let out = openssl_ok(&["x509", "-in", cert, "-noout", flag], e.dir.path());
    let line = out.trim();
    match line.split_once('=') {
        Some((_, v)) if flag != "-pubkey" => v.to_owned(),
        _ => line.to_owned(),
    }
}

/// openssl's serial of a PEM certificate, normalized.
fn x509_serial(e: &Env, cert: &str) -> String {
    norm_serial(&x509_field(e, cert, "-serial"))
}

/// `openssl x509 -checkend SECONDS`: true when openssl says the certificate expires within
/// that time ("Certificate will expire"), false for "Certificate will not expire".
fn expires_within(e: &Env, cert: &str, seconds: u64) -> bool {
    let o = openssl(
        &[
            "x509",
            "-in",
            cert,
            "-noout",
            "-checkend",
            &seconds.to_string(),
        ],
        e.dir.path(),
    );
    match s(&o.stdout).trim() {
        "Certificate will expire" => true,
        "Certificate will not expire" => false,
        other => panic!("openssl x509 -checkend on {cert}: unexpected {other:?}"),
    }
}

/// `openssl verify -CAfile pki/ca.crt CERT` succeeds with openssl's "CERT: OK" verdict.
fn assert_openssl_verifies(e: &Env, cert: &str) {
    let out = openssl_ok(&["verify", "-CAfile", "pki/ca.crt", cert], e.dir.path());
    assert_eq!(out.trim(), format!("{cert}: OK"), "openssl verify {cert}");
}

/// The serials (normalized) and reasons of `pki/crl.pem`, after openssl checked its signature.
fn crl_entries(e: &Env) -> BTreeMap<String, String> {
    crl_by_openssl(e).1
}

const DAY: u64 = 86_400;

// ---------------------------------------------------------------------------------------------
// 1. The 20,000-entry CRL limit (commands-revocation.md, "The 20,000-entry limit")
// ---------------------------------------------------------------------------------------------

/// 20,000 revoked certificates make a CRL (openssl reads exactly those 20,000 serials); the
/// 20,001st revocation is refused by `revoke NAME`, `revoke --serial`, `revoke --batch` and
/// `renew --revoke-old` with the documented message, exit 2 and nothing changed; `crl` still
/// writes the 20,000-entry CRL, and so does a CA key moved into KMS (one DIGEST Sign, checked
/// by openssl). About 20 s in a debug build (batch issue + batch revoke).
///
/// Fails when: `n_revoked` is 19,999 instead of 20,000 (the next `revoke` then succeeds with a
/// 20,000-entry CRL, and `e.fails(…, 2)` sees exit 0).
#[test]
fn crl_limit_is_20000_entries() {
    let e = p256_ca(None);
    // Revoked before the attempts: the limit itself.
    let n_revoked: usize = 20_000;
    let names: Vec<String> = (1..=20_001).map(|i| format!("u{i:05}")).collect();
    let csv = |ns: &[String]| format!("name\n{}\n", ns.join("\n"));
    std::fs::write(e.path("users.csv"), csv(&names)).expect("write users.csv");
    std::fs::write(e.path("leavers.csv"), csv(&names[..n_revoked])).expect("write leavers.csv");
    let last = &names[20_000];

    let issued = json_lines(&e, &["client", "--batch", "users.csv", "--algo", "p256"]);
    let issued: BTreeSet<&str> = issued
        .iter()
        .filter(|r| str_of(r, "status") == "issued")
        .map(|r| str_of(r, "serial"))
        .collect();
    assert_eq!(issued.len(), 20_001, "certificates issued");
    // Kept for rustls-webpki below (a revoked certificate's public copy is removed).
    for n in ["u00001", "u20000"] {
        std::fs::copy(
            e.pki.join(format!("issued/{n}.crt")),
            e.path(&format!("{n}.crt")),
        )
        .expect("keep a certificate");
    }
    let mut lines = json_lines(&e, &["revoke", "--batch", "leavers.csv", "--strict"]);
    let summary = lines.pop().expect("the summary line");
    assert_eq!(summary["revoked"], n_revoked, "{summary}");
    assert_eq!(summary["crl"]["entries"], n_revoked, "{summary}");
    let mut by_batch = BTreeSet::new();
    for l in &lines {
        assert_eq!(str_of(l, "status"), "revoked", "{l}");
        for s in l["serials"].as_array().expect("serials") {
            by_batch.insert(norm_serial(s.as_str().expect("serial")));
        }
    }
    assert_eq!(
        by_batch.len(),
        n_revoked,
        "serials the batch says it revoked"
    );

    // Exactly the 20,000 revoked serials, in a CRL whose signature openssl accepts.
    let listed = json_lines(&e, &["list", "--status", "revoked"]);
    assert_eq!(listed.len(), n_revoked, "lines of list --status revoked");
    let revoked: BTreeSet<String> = listed
        .iter()
        .map(|r| norm_serial(str_of(r, "serial")))
        .collect();
    assert_eq!(revoked, by_batch);
    let (number, entries) = crl_by_openssl(&e);
    assert_eq!(entries.len(), n_revoked, "entries in the CRL openssl read");
    assert_eq!(entries.keys().cloned().collect::<BTreeSet<_>>(), revoked);

    // One more is refused, by every command that revokes, and nothing changes.
    let live = e.json(&["show", last]);
    let live_serial = str_of(&live, "serial").to_owned();
    std::fs::write(e.path("one.csv"), format!("name\n{last}\n")).expect("write one.csv");
    let before = e.snapshot();
    let attempts: [&[&str]; 4] = [
        &["revoke", last],
        &["revoke", "--serial", &live_serial],
        &["revoke", "--batch", "one.csv"],
        &["renew", last, "--revoke-old"],
    ];
    for args in attempts {
        let err = e.fails(args, 2);
        assert!(
            err.contains(
                "the CRL would hold 20001 entries, more than the 20000 that AWS Client VPN accepts"
            ),
            "{args:?}: {err}"
        );
        assert!(e.snapshot() == before, "{args:?} changed the store");
    }
    assert_eq!(str_of(&e.json(&["show", last]), "status"), "valid");

    // At the limit, `crl` still writes: 20,000 entries, the next number.
    let info = e.json(&["crl"]);
    assert_eq!(info["entries"], 20_000);
    let (number2, entries2) = crl_by_openssl(&e);
    assert_eq!(number2, number + 1);
    assert_eq!(entries2.len(), 20_000);

    // The same 20,000 entries signed by a CA key in KMS (issue 18: a CRL far over KMS's 4,096
    // bytes of RAW message): the CA key moved into an EXTERNAL key of the KMS test server, then
    // `crl` signs through KMS with one DIGEST Sign, and openssl verifies the CRL against the
    // unchanged ca.crt and lists exactly the revoked serials.
    let kms = common::aws::KmsServer::start();
    kms.add_key(&serde_json::json!({
        "spec": "ECC_NIST_P256", "origin": "EXTERNAL", "state": "PendingImport",
        "aliases": ["alias/moved"]
    }));
    let with_kms = |args: &[&str]| {
        let mut c = e.cmd(args);
        common::aws::aws_env(&mut c, None, None);
        c.env("AWS_ENDPOINT_URL_KMS", kms.url());
        expect_ok(args, c.output().expect("run vpnca"))
    };
    with_kms(&["ca", "--move-to-kms", "alias/moved"]);
    let signs_before = kms.requests().iter().filter(|r| r["op"] == "Sign").count();
    with_kms(&["crl"]);
    let signs: Vec<serde_json::Value> = kms
        .requests()
        .into_iter()
        .filter(|r| r["op"] == "Sign")
        .skip(signs_before)
        .collect();
    assert_eq!(signs.len(), 1, "one Sign for the CRL: {signs:?}");
    assert_eq!(signs[0]["status"], 200, "{:?}", signs[0]);
    assert_eq!(signs[0]["body"]["MessageType"], "DIGEST", "{:?}", signs[0]);
    let (number3, entries3) = crl_by_openssl(&e);
    assert_eq!(number3, number2 + 1);
    assert_eq!(entries3.keys().cloned().collect::<BTreeSet<_>>(), revoked);

    // rustls-webpki, a second implementation, reads the same KMS-signed CRL (its signature,
    // its nextUpdate enforced): the first and the last revoked users are refused as revoked, the
    // one live user validates with it.
    let (anchor, crl) = (e.pki.join("ca.crt"), e.pki.join("crl.pem"));
    let webpki = |cert: &std::path::Path| {
        common::webpki_verify(
            &anchor,
            &[],
            cert,
            Some(&crl),
            webpki::KeyUsage::client_auth(),
        )
    };
    for n in ["u00001", "u20000"] {
        let verdict = webpki(&e.path(&format!("{n}.crt")));
        assert!(
            matches!(verdict, Err(webpki::Error::CertRevoked)),
            "webpki on {n} with the 20,000-entry KMS CRL: {verdict:?}"
        );
    }
    webpki(&e.pki.join(format!("issued/{last}.crt")))
        .expect("webpki: the live user with the 20,000-entry KMS CRL");
}

// ---------------------------------------------------------------------------------------------
// 2. crl --omit-expired (commands-revocation.md, "crl")
// ---------------------------------------------------------------------------------------------

/// With an expired revoked certificate (imported from an openssl-made PKI, because vpnca
/// cannot back-date) and an expired one revoked by `revoke --serial`: `crl` lists both,
/// `crl --omit-expired` leaves both out and keeps the unexpired revoked ones, the omission
/// sticks as the policy for the CRL a later `revoke` writes, and `--keep-expired` lists them
/// again. Every CRL is read by openssl after checking its signature.
///
/// Fails when: `crl --omit-expired` is replaced by a plain `crl` (the CRL then has 3 entries,
/// not 1).
#[test]
fn crl_omit_expired_leaves_out_expired_entries() {
    let e = Env::init();
    let pki = openssl_pki_with_expired(e.dir.path());
    e.ok(&["import-easyrsa", pki.to_str().expect("utf-8 path")]);
    let st = statuses(&e);
    // openssl ca numbered them 1000 (expired_revoked), 1001 (expired_valid), 1002 (current).
    assert_eq!(
        st.get("1000").map(String::as_str),
        Some("revoked"),
        "{st:?}"
    );
    assert_eq!(
        st.get("1001").map(String::as_str),
        Some("expired"),
        "{st:?}"
    );
    assert!(
        expires_within(&e, "old/expired_valid.crt", 0),
        "not expired by openssl"
    );

    // An expired certificate can be revoked by serial; a live one is revoked too.
    e.ok(&["revoke", "--serial", "1001"]);
    e.ok(&["revoke", "current"]);
    let alice = client(&e, "alice", &[]);
    let alice = norm_serial(str_of(&alice, "serial"));

    let all: BTreeSet<String> = ["1000", "1001", "1002"].map(String::from).into();
    e.ok(&["crl"]);
    assert_eq!(crl_entries(&e).into_keys().collect::<BTreeSet<_>>(), all);

    let info = e.json(&["crl", "--omit-expired"]);
    assert_eq!(info["entries"], 1);
    let live_only: BTreeSet<String> = ["1002"].map(String::from).into();
    assert_eq!(
        crl_entries(&e).into_keys().collect::<BTreeSet<_>>(),
        live_only
    );

    // The omission is now the policy: the CRL `revoke` writes omits them too.
    e.ok(&["revoke", "alice"]);
    let mut expected = live_only.clone();
    expected.insert(alice.clone());
    assert_eq!(
        crl_entries(&e).into_keys().collect::<BTreeSet<_>>(),
        expected
    );

    e.ok(&["crl", "--keep-expired"]);
    let mut everything = all.clone();
    everything.insert(alice);
    assert_eq!(
        crl_entries(&e).into_keys().collect::<BTreeSet<_>>(),
        everything
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Leaf notAfter clamped to the CA's notAfter (defaults.md)
// ---------------------------------------------------------------------------------------------

/// A CA valid 10 days: a client asked for 100 days (and its renewal for 200) ends exactly when
/// the CA ends, as `openssl x509 -enddate` prints both; a client asked for 3 days is not
/// touched (it expires within 4 days by openssl, the CA does not).
///
/// Fails when: the CA is made with `--days 1000` instead of 10 (the 100-day client then ends
/// before the CA, and the end dates differ).
#[test]
fn leaf_not_after_is_clamped_to_the_ca() {
    let e = p256_ca(Some("10"));
    let ca_end = x509_field(&e, "pki/ca.crt", "-enddate");
    client(&e, "long", &["--days", "100"]);
    assert_eq!(x509_field(&e, "pki/issued/long.crt", "-enddate"), ca_end);
    e.ok(&["renew", "long", "--days", "200"]);
    assert_eq!(x509_field(&e, "pki/issued/long.crt", "-enddate"), ca_end);
    assert_openssl_verifies(&e, "pki/issued/long.crt");

    client(&e, "short", &["--days", "3"]);
    assert_ne!(x509_field(&e, "pki/issued/short.crt", "-enddate"), ca_end);
    assert!(expires_within(&e, "pki/issued/short.crt", 4 * DAY));
    assert!(!expires_within(&e, "pki/ca.crt", 4 * DAY));
}

// ---------------------------------------------------------------------------------------------
// 4. revoke --serial HEX (commands-revocation.md, "Revoking by serial")
// ---------------------------------------------------------------------------------------------

/// `revoke --serial` in lower case with `:` separators revokes exactly that certificate (a
/// superseded one here, while the live one of the same name stays valid); `0x…` works too;
/// the CRL openssl reads lists exactly those serials with their reasons. The CA's own serial
/// and an already revoked serial are refused (exit 2, CRL unchanged).
///
/// Fails when: the colon-separated serial is built from alice's live certificate instead of the
/// superseded one (the command's output then names another serial).
#[test]
fn revoke_by_serial_revokes_exactly_that_certificate() {
    let e = p256_ca(None);
    let old = client(&e, "alice", &[]);
    let old = str_of(&old, "serial").to_owned();
    let renewed = e.json(&["renew", "alice"]);
    let new = str_of(&renewed["new"], "serial").to_owned();
    let bob = client(&e, "bob", &[]);
    let bob = str_of(&bob, "serial").to_owned();

    // Lower case, colon-separated, as `openssl x509 -serial` does not print it.
    let colons = old
        .to_ascii_lowercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let out = e.ok(&["revoke", "--serial", &colons, "--reason", "keyCompromise"]);
    assert!(out.contains(&old), "{out}");
    let st = statuses(&e);
    assert_eq!(st[&old], "revoked");
    assert_eq!(st[&new], "valid");
    assert_eq!(st[&bob], "valid");
    let expected: BTreeMap<String, String> =
        [(norm_serial(&old), "Key Compromise".to_owned())].into();
    assert_eq!(crl_entries(&e), expected);
    // alice's live certificate is still the public mirror.
    assert_eq!(x509_serial(&e, "pki/issued/alice.crt"), norm_serial(&new));

    e.ok(&[
        "revoke",
        "--serial",
        &format!("0x{}", bob.to_ascii_lowercase()),
    ]);
    let mut expected = expected;
    expected.insert(norm_serial(&bob), String::new());
    assert_eq!(crl_entries(&e), expected);
    assert!(!e.pki.join("issued/bob.crt").exists());

    let crl = std::fs::read(e.pki.join("crl.pem")).expect("crl.pem");
    let ca = e.json(&["show", "ca"]);
    e.fails(&["revoke", "--serial", str_of(&ca, "serial")], 2);
    e.fails(&["revoke", "--serial", &old], 2);
    assert_eq!(std::fs::read(e.pki.join("crl.pem")).expect("crl.pem"), crl);
}

// ---------------------------------------------------------------------------------------------
// 5. renew --reuse-key (commands-certificates.md, "renew")
// ---------------------------------------------------------------------------------------------

/// `renew --reuse-key` certifies the same public key (openssl's `-pubkey` of the old and the new
/// certificate are identical) under a new serial; the new certificate verifies with the CA and
/// is the public mirror; the old one is `superseded` by the new serial, not revoked (no CRL),
/// and still verifies. A plain renew then does change the key (the comparison can tell), and
/// `--algo` with `--reuse-key` is refused.
///
/// Fails when: `--reuse-key` is dropped from the renew (openssl's public keys then differ).
#[test]
fn renew_reuse_key_keeps_the_public_key() {
    let e = p256_ca(None);
    let old = client(&e, "carol", &[]);
    let old = str_of(&old, "serial").to_owned();
    let old_key = x509_field(&e, "pki/issued/carol.crt", "-pubkey");

    let r = e.json(&["renew", "carol", "--reuse-key"]);
    let new = str_of(&r["new"], "serial").to_owned();
    assert_ne!(new, old);
    assert!(r["crl"].is_null(), "{r}");
    assert_eq!(str_of(&r["old"], "state"), "superseded");
    assert_eq!(str_of(&r["old"], "superseded_by"), new);

    assert_eq!(x509_serial(&e, "pki/issued/carol.crt"), norm_serial(&new));
    assert_eq!(x509_field(&e, "pki/issued/carol.crt", "-pubkey"), old_key);
    assert_openssl_verifies(&e, "pki/issued/carol.crt");
    let old_pem = pem_of(&e, &old, "old.pem");
    assert_eq!(x509_field(&e, &old_pem, "-pubkey"), old_key);
    assert_openssl_verifies(&e, &old_pem);
    let st = statuses(&e);
    assert_eq!(st[&old], "superseded");
    assert_eq!(st[&new], "valid");
    assert!(!e.pki.join("crl.pem").exists(), "renew wrote a CRL");

    e.fails(&["renew", "carol", "--reuse-key", "--algo", "p384"], 2);
    e.ok(&["renew", "carol"]);
    assert_ne!(x509_field(&e, "pki/issued/carol.crt", "-pubkey"), old_key);
}

// ---------------------------------------------------------------------------------------------
// 6. A per-PKI profile override (profiles.md, "Per-PKI overrides")
// ---------------------------------------------------------------------------------------------

/// `pki/templates/client.toml`, adopted, replaces the built-in client profile: 90 days, keyUsage
/// digitalSignature + keyAgreement, DNS SANs allowed, all visible in
/// `openssl x509 -text`; after the file is removed, the next client is built-in again (825
/// days, digitalSignature only, clientAuth only, DNS SANs refused) once it is reset.
///
/// Fails when: the override's `days = 90` is changed to `days = 825` (openssl then says the
/// certificate will not expire within 91 days).
#[test]
fn profile_override_takes_effect() {
    let e = p256_ca(None);
    adopt_template(
        &e,
        "client",
        "description = \"Short-lived VPN user\"\nca = false\ndays = 90\n\
         key_usage = [\"digitalSignature\", \"keyAgreement\"]\n\
         extended_key_usage = [\"clientAuth\"]\n\
         [san]\ndns_from_name = false\nallow = [\"email\", \"dns\"]\n",
    );
    client(&e, "yan", &["--san", "DNS:yan.example.com"]);
    let text = openssl_ok(
        &["x509", "-in", "pki/issued/yan.crt", "-noout", "-text"],
        e.dir.path(),
    );
    let after = |header: &str| -> String {
        let mut lines = text.lines();
        lines.find(|l| l.trim().starts_with(header));
        lines.next().unwrap_or("").trim().to_owned()
    };
    assert_eq!(
        after("X509v3 Key Usage: critical"),
        "Digital Signature, Key Agreement",
        "{text}"
    );
    assert_eq!(
        after("X509v3 Extended Key Usage"),
        "TLS Web Client Authentication",
        "{text}"
    );
    assert_eq!(
        after("X509v3 Subject Alternative Name"),
        "DNS:yan.example.com",
        "{text}"
    );
    assert!(expires_within(&e, "pki/issued/yan.crt", 91 * DAY));
    assert!(!expires_within(&e, "pki/issued/yan.crt", 89 * DAY));
    assert_openssl_verifies(&e, "pki/issued/yan.crt");

    std::fs::remove_file(e.pki.join("templates/client.toml")).expect("rm override");
    e.ok(&["template", "reset", "client"]);
    let err = e.fails(
        &[
            "client",
            "zoe",
            "--algo",
            "p256",
            "--san",
            "DNS:zoe.example.com",
        ],
        2,
    );
    assert!(err.contains("does not allow dns SANs"), "{err}");
    client(&e, "zoe", &[]);
    let text = openssl_ok(
        &["x509", "-in", "pki/issued/zoe.crt", "-noout", "-text"],
        e.dir.path(),
    );
    assert!(text.contains("Digital Signature\n"), "{text}");
    assert!(!text.contains("Key Agreement"), "{text}");
    assert!(!text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!expires_within(&e, "pki/issued/zoe.crt", 824 * DAY));
    assert!(expires_within(&e, "pki/issued/zoe.crt", 826 * DAY));
}

// ---------------------------------------------------------------------------------------------
// 7. verify: the CRL signature and duplicate live names (commands-store.md, "verify")
// ---------------------------------------------------------------------------------------------

/// A stored CRL (the `crls` table, which no MAC covers) whose signature has one byte flipped:
/// openssl rejects the tampered DER, and `verify` reports `CRL 1: its signature does not verify
/// with the CA key`, exit 1, and repairs no mirror.
///
/// Fails when: the byte flip (with openssl's check that it breaks the signature) is left out:
/// verify then exits 0.
#[test]
fn verify_reports_a_bad_crl_signature() {
    let e = p256_ca(None);
    client(&e, "alice", &[]);
    e.ok(&["revoke", "alice"]);
    let db = rusqlite::Connection::open(e.pki.join("vpnca.db")).expect("open db");
    let mut der: Vec<u8> = db
        .query_row("SELECT der FROM crls WHERE number = 1", [], |r| r.get(0))
        .expect("CRL 1");
    // The last byte is inside the signature BIT STRING (the signature closes the CRL).
    let last = der.len() - 1;
    der[last] ^= 0x01;
    db.execute("UPDATE crls SET der = ?1 WHERE number = 1", [&der])
        .expect("tamper");
    drop(db);
    // openssl agrees the planted CRL no longer verifies.
    std::fs::write(e.path("tampered.der"), &der).expect("write");
    let o = openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "tampered.der",
            "-CAfile",
            "pki/ca.crt",
            "-noout",
        ],
        e.dir.path(),
    );
    assert!(s(&o.stderr).contains("verify failure"), "{}", s(&o.stderr));

    std::fs::remove_file(e.pki.join("crl.pem")).expect("rm crl.pem");
    let o = e.run(&["verify"]);
    let out = s(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", s(&o.stderr));
    assert!(
        out.contains("PROBLEM: CRL 1: its signature does not verify with the CA key"),
        "{out}"
    );
    assert!(
        !e.pki.join("crl.pem").exists(),
        "verify repaired a mirror: {out}"
    );
    let o = e.run(&["--json", "verify"]);
    let rep: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(o.status.code(), Some(1));
    // Format 2 also names the edited row against the authenticated state.
    assert_eq!(
        rep["problems"],
        serde_json::json!([
            "CRL number 1 in the database is not the one the store's authenticated state records (its content differs): it was edited, deleted or put back outside vpnca",
            "CRL 1: its signature does not verify with the CA key"
        ])
    );
}

/// `crl.pem` is a mirror: a copy with a broken signature is not a store problem; `verify`
/// exits 0, lists it as repaired, and openssl then accepts the rewritten file.
///
/// Fails when: the good `crl.pem` is put back before `verify` (it then lists no repaired
/// mirror).
#[test]
fn verify_rewrites_a_tampered_crl_mirror() {
    let e = p256_ca(None);
    client(&e, "alice", &[]);
    e.ok(&["revoke", "alice"]);
    let good = std::fs::read_to_string(e.pki.join("crl.pem")).expect("crl.pem");
    // Flip one bit of the last byte: the end of the signature, which closes the CRL.
    let mut der = pem::parse(&good).expect("PEM").into_contents();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    std::fs::write(
        e.pki.join("crl.pem"),
        pem::encode(&pem::Pem::new("X509 CRL", der)),
    )
    .expect("tamper");
    let o = openssl(
        &[
            "crl",
            "-in",
            "pki/crl.pem",
            "-CAfile",
            "pki/ca.crt",
            "-noout",
        ],
        e.dir.path(),
    );
    assert!(s(&o.stderr).contains("verify failure"), "{}", s(&o.stderr));

    let out = e.ok(&["verify"]);
    assert!(out.contains("repaired public mirror"), "{out}");
    assert!(out.contains("crl.pem"), "{out}");
    assert!(out.contains("OK: the store is intact"), "{out}");
    crl_by_openssl(&e);
    assert_eq!(
        std::fs::read_to_string(e.pki.join("crl.pem")).expect("crl.pem"),
        good
    );
}

/// Two live certificates with one name cannot be made through vpnca; a row put back to its
/// earlier, validly MAC'd state (the certificate before `renew` superseded it) makes one.
/// openssl accepts both certificates (CN=alice, signed by the CA, unexpired); `verify` reports
/// exactly `alice: 2 valid certificates with the same name`, exit 1.
///
/// Fails when: the old row is not put back (with the check that both list as `valid` dropped):
/// verify then exits 0 with no problem.
#[test]
fn verify_reports_two_live_certificates_with_one_name() {
    let e = p256_ca(None);
    let old = client(&e, "alice", &[]);
    let old = str_of(&old, "serial").to_owned();
    let db_path = e.pki.join("vpnca.db");
    let saved: (String, Option<String>, Vec<u8>) = rusqlite::Connection::open(&db_path)
        .expect("open db")
        .query_row(
            "SELECT state, superseded_by, mac FROM certs WHERE serial = ?1",
            [&old],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    let r = e.json(&["renew", "alice"]);
    let new = str_of(&r["new"], "serial").to_owned();
    e.ok(&["verify"]);

    let db = rusqlite::Connection::open(&db_path).expect("open db");
    db.execute(
        "UPDATE certs SET state = ?1, superseded_by = ?2, mac = ?3 WHERE serial = ?4",
        rusqlite::params![saved.0, saved.1, saved.2, old],
    )
    .expect("put the old row back");
    drop(db);
    // (`list` refuses the row put back: the readers check the signed state head.)
    let state_of = |serial: &str| {
        sqlite_query(
            &e,
            &format!("SELECT state FROM certs WHERE serial = '{serial}'"),
        )
    };
    assert_eq!(
        (state_of(&old), state_of(&new)),
        ("valid".into(), "valid".into())
    );
    let o = e.run(&["list"]);
    assert_eq!(o.status.code(), Some(2), "{}", s(&o.stdout));
    for (serial, file) in [(&old, "old.pem"), (&new, "new.pem")] {
        let der: Vec<u8> = rusqlite::Connection::open(&db_path)
            .expect("open db")
            .query_row(
                "SELECT cert_der FROM certs WHERE serial = ?1",
                [serial],
                |r| r.get(0),
            )
            .expect("certificate");
        std::fs::write(e.path("c.der"), der).expect("write der");
        openssl_ok(
            &["x509", "-inform", "der", "-in", "c.der", "-out", file],
            e.dir.path(),
        );
        assert_openssl_verifies(&e, file);
        assert_eq!(x509_field(&e, file, "-subject"), "CN = alice");
        assert!(!expires_within(&e, file, DAY));
    }

    let o = e.run(&["--json", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    let rep: Value = serde_json::from_slice(&o.stdout).expect("json");
    // Format 2 also names the row put back against the authenticated state.
    assert_eq!(
        rep["problems"],
        serde_json::json!([
            "alice: 2 valid certificates with the same name",
            format!(
                "the record of certificate {old} (alice) in the database is not the one the store's authenticated state records (its content differs): it was edited, deleted or put back outside vpnca"
            )
        ])
    );
    let out = s(&e.run(&["verify"]).stdout);
    assert!(
        out.contains("PROBLEM: alice: 2 valid certificates with the same name"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. list --expiring-within (commands-certificates.md, "list")
// ---------------------------------------------------------------------------------------------

/// Certificates of 5, 20 and 100 days, a server of 7 days, a revoked one of 10 days and a
/// 15-day one renewed for 15 days: `list --expiring-within N` lists exactly the `valid` ones
/// that openssl says expire within N days (`-checkend`), never the revoked, superseded or CA
/// certificates; `--kind` combines with it.
///
/// Fails when: the window 30 expects only the 5-day certificate (the 20-day one is listed
/// too, and openssl agrees it expires within 30 days).
#[test]
fn list_expiring_within_lists_exactly_those() {
    let e = p256_ca(None);
    let mut serial = BTreeMap::new();
    for (name, days) in [
        ("d5", "5"),
        ("d20", "20"),
        ("d100", "100"),
        ("rev10", "10"),
        ("ren15", "15"),
    ] {
        let r = client(&e, name, &["--days", days]);
        serial.insert(name.to_owned(), str_of(&r, "serial").to_owned());
    }
    let r = e.json(&["server", "gw7.example.com", "--algo", "p256", "--days", "7"]);
    serial.insert("gw7".into(), str_of(&r, "serial").to_owned());
    e.ok(&["revoke", "rev10"]);
    let r = e.json(&["renew", "ren15", "--days", "15"]);
    serial.insert("ren15-new".into(), str_of(&r["new"], "serial").to_owned());

    let listed = |args: &[&str]| -> BTreeSet<String> {
        let mut a = vec!["list"];
        a.extend_from_slice(args);
        json_lines(&e, &a)
            .iter()
            .map(|r| str_of(r, "serial").to_owned())
            .collect()
    };
    let names =
        |ns: &[&str]| -> BTreeSet<String> { ns.iter().map(|n| serial[*n].clone()).collect() };
    // What openssl says of the valid certificates' PEMs.
    let valid = ["d5", "d20", "d100", "gw7", "ren15-new"];
    for n in valid {
        pem_of(&e, &serial[n], &format!("{n}.pem"));
    }
    let by_openssl = |days: u64| -> BTreeSet<String> {
        valid
            .iter()
            .filter(|n| expires_within(&e, &format!("{n}.pem"), days * DAY))
            .map(|n| serial[*n].clone())
            .collect()
    };

    let w10 = listed(&["--expiring-within", "10"]);
    assert_eq!(w10, names(&["d5", "gw7"]));
    assert_eq!(w10, by_openssl(10));
    let w30 = listed(&["--expiring-within", "30"]);
    assert_eq!(w30, names(&["d5", "d20", "gw7", "ren15-new"]));
    assert_eq!(w30, by_openssl(30));
    let w365 = listed(&["--expiring-within", "365"]);
    assert_eq!(w365, names(&["d5", "d20", "d100", "gw7", "ren15-new"]));
    assert_eq!(w365, by_openssl(365));
    assert!(listed(&["--expiring-within", "0"]).is_empty());
    assert_eq!(
        listed(&["--expiring-within", "30", "--kind", "client"]),
        names(&["d5", "d20", "ren15-new"])
    );
    // The human form lists the same certificates.
    let human = e.ok(&["list", "--expiring-within", "30"]);
    let lines: Vec<&str> = human.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 4, "{human}");
    for s in &w30 {
        assert!(human.contains(s.as_str()), "{human}");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. crl --out FILE replaces an existing file atomically (commands-revocation.md, "crl")
// ---------------------------------------------------------------------------------------------

/// An existing regular file (mode 0600, with a hard link to it) is replaced by a rename: a new
/// inode, mode 0644, the new CRL (openssl verifies it; the same bytes as `pki/crl.pem`); the
/// hard link still holds the old content; no temporary file is left in the directory.
///
/// Fails when: `--out` is left out (the file keeps its inode).
#[test]
fn crl_out_replaces_an_existing_file_atomically() {
    let e = p256_ca(None);
    client(&e, "alice", &[]);
    e.ok(&["revoke", "alice"]);
    let dir = e.path("openvpn");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = dir.join("crl.pem");
    std::fs::write(&out, "old content\n").expect("write");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::hard_link(&out, e.path("old-link")).expect("link");
    let old_ino = std::fs::metadata(&out).expect("stat").ino();

    e.ok(&["crl", "--out", "openvpn/crl.pem"]);
    let meta = std::fs::metadata(&out).expect("stat");
    assert_ne!(meta.ino(), old_ino, "the file was rewritten in place");
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    crl_verified_text(e.dir.path(), "openvpn/crl.pem", "pki/ca.crt");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        std::fs::read(e.pki.join("crl.pem")).expect("read")
    );
    assert_eq!(
        std::fs::read_to_string(e.path("old-link")).expect("read"),
        "old content\n"
    );
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("read_dir")
        .map(|d| d.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["crl.pem"]);
}

// ---------------------------------------------------------------------------------------------
// 10. The audit log's OS user (commands-store.md, "log")
// ---------------------------------------------------------------------------------------------

/// `$USER` with the numeric uid, else `$LOGNAME`, else `uid N`, in `log` and `--json log`; the
/// uid is the one `id -u` prints. Run as root, the same is checked for a command run as uid
/// 65534 (so a uid that is always 0 would be caught).
///
/// Fails when: the expected user of `ca` (run with only `$LOGNAME` set) is `init`'s `$USER`.
#[test]
fn audit_log_records_the_os_user() {
    let e = Env::new();
    let uid = {
        let o = Command::new("id").arg("-u").output().expect("id -u");
        s(&o.stdout).trim().to_owned()
    };
    let run = |args: &[&str], user: Option<&str>, logname: Option<&str>| {
        let mut c = e.cmd(args);
        c.env_remove("USER").env_remove("LOGNAME");
        if let Some(u) = user {
            c.env("USER", u);
        }
        if let Some(l) = logname {
            c.env("LOGNAME", l);
        }
        expect_ok(args, c.output().expect("run vpnca"));
    };
    run(
        &["init", "--kdf-memory-mib", "8", "--kdf-time", "1"],
        Some("ops-user"),
        Some("ignored-logname"),
    );
    run(&["ca", "--algo", "p256"], None, Some("login-name"));
    run(&["client", "alice", "--algo", "p256"], None, None);
    let mut expected = vec![
        format!("ops-user (uid {uid})"),
        // `ca`, and the certification of the state-signing key in the same transaction.
        format!("login-name (uid {uid})"),
        format!("login-name (uid {uid})"),
        format!("uid {uid}"),
    ];

    if uid == "0" {
        // Another uid: the store must be usable by it.
        for p in [
            e.dir.path().to_path_buf(),
            e.pki.clone(),
            e.pki.join("issued"),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        for f in ["vpnca.db", "vpnca.checkpoint", "ca.crt", "issued/alice.crt"] {
            std::fs::set_permissions(e.pki.join(f), std::fs::Permissions::from_mode(0o666))
                .expect("chmod");
        }
        use std::os::unix::process::CommandExt;
        let args = ["client", "bob", "--algo", "p256"];
        let mut c = e.cmd(&args);
        c.env("USER", "nobody-user").uid(65534).gid(65534);
        expect_ok(&args, c.output().expect("run vpnca as 65534"));
        expected.push("nobody-user (uid 65534)".into());
    }

    let log = json_lines(&e, &["log"]);
    let users: Vec<&str> = log.iter().map(|l| str_of(l, "user")).collect();
    assert_eq!(users, expected);
    let human = e.ok(&["log"]);
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{human}");
    for (line, user) in lines.iter().zip(&expected) {
        assert!(
            line.ends_with(&format!(" {user}")),
            "{line:?} does not end with {user:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 11. The default KDF: Argon2id 64 MiB, 3 passes, 1 lane (defaults.md, store-format.md)
// ---------------------------------------------------------------------------------------------

/// Peak resident memory (KiB) of `vpnca ARGS`, as the kernel reports it to Python's
/// `resource.getrusage(RUSAGE_CHILDREN)`.
fn peak_rss_kib(e: &Env, args: &[&str]) -> u64 {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n\
                  print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let o = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_vpnca"), "--pki"])
        .arg(&e.pki)
        .args(args)
        .env("VPNCA_PASSPHRASE", PASS)
        .output()
        .expect("python3 is required (apt-get install python3)");
    let out = s(&o.stdout);
    let (code, rss) = out.trim().split_once(' ').expect("code and rss");
    assert_eq!(code, "0", "vpnca {args:?}: {}", s(&o.stderr));
    rss.parse().expect("rss")
}

/// `init` without KDF options records `{"m_kib":65536,"t":3,"p":1}` in the store header, as the
/// `sqlite3` CLI reads it (and `--json init` prints it); unlocking such a store really uses the
/// memory: its peak RSS is at least 64 MiB and at least 50 MiB above the same command on an
/// 8 MiB store.
///
/// Fails when: `init` is given `--kdf-memory-mib 32` (`--json init` then prints 32768 KiB).
#[test]
fn init_defaults_to_argon2id_64_mib() {
    let e = Env::new();
    let printed = e.json(&["init"]);
    assert_eq!(
        printed["kdf"],
        serde_json::json!({"m_kib": 65536, "t": 3, "p": 1})
    );
    let o = Command::new("sqlite3")
        .arg(e.pki.join("vpnca.db"))
        .arg("SELECT v FROM meta WHERE k = 'header'")
        .output()
        .expect("the sqlite3 CLI is required (apt-get install sqlite3)");
    assert!(o.status.success(), "sqlite3: {}", s(&o.stderr));
    let header: Value = serde_json::from_slice(&o.stdout).expect("header JSON");
    assert_eq!(header["kdf_algorithm"], "argon2id");
    assert_eq!(
        header["kdf"],
        serde_json::json!({"m_kib": 65536, "t": 3, "p": 1})
    );

    let cheap = Env::init();
    let big = peak_rss_kib(&e, &["verify"]);
    let small = peak_rss_kib(&cheap, &["verify"]);
    assert!(big >= 64 * 1024, "peak RSS {big} KiB with a 64 MiB KDF");
    assert!(
        big >= small + 50 * 1024,
        "peak RSS {big} KiB (64 MiB KDF) vs {small} KiB (8 MiB KDF)"
    );
}

// ---------------------------------------------------------------------------------------------
// 12. The passphrase prompt on a terminal (commands-store.md, "Where the passphrase comes from")
// ---------------------------------------------------------------------------------------------

/// Runs a program on a new pseudo-terminal (Python's `pty.fork`: the terminal is its
/// controlling terminal and its stdin/stdout/stderr). For each (prompt, answer) step it waits
/// for the prompt, then for the terminal's echo to be switched off, then types the answer and
/// Enter. Prints JSON: `failure` (null, or what never happened), `code`, `transcript`.
const PTY_DRIVER: &str = r#"
import json, os, pty, select, sys, termios, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.chdir(spec["cwd"])
    os.execve(spec["argv"][0], spec["argv"], spec["env"])
deadline = time.monotonic() + 120
buf = b""
def more():
    global buf
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    r, _, _ = select.select([fd], [], [], left)
    if not r:
        return False
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        chunk = b""
    if not chunk:
        return False
    buf += chunk
    return True
pos = 0
failure = None
for prompt, answer in spec["steps"]:
    pat = prompt.encode()
    while buf.find(pat, pos) < 0:
        if not more():
            failure = "the prompt %r never came" % prompt
            break
    if failure:
        break
    pos = buf.find(pat, pos) + len(pat)
    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.monotonic() > deadline:
            failure = "echo was never switched off after %r" % prompt
            break
        time.sleep(0.01)
    if failure:
        break
    os.write(fd, answer.encode() + b"\n")
if failure:
    os.kill(pid, 9)
while more():
    pass
_, status = os.waitpid(pid, 0)
print(json.dumps({"failure": failure, "code": os.waitstatus_to_exitcode(status),
                  "transcript": buf.decode("utf-8", "replace")}))
"#;

/// `vpnca --pki <pki> ARGS` on a terminal, without `$VPNCA_PASSPHRASE`, answering `steps`.
/// Returns (exit code, transcript); panics if a prompt never came.
fn on_terminal(e: &Env, args: &[&str], steps: &[(&str, &str)]) -> (i32, String) {
    let mut argv = vec![
        env!("CARGO_BIN_EXE_vpnca").to_owned(),
        "--pki".to_owned(),
        e.pki.to_str().expect("utf-8 path").to_owned(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("VPNCA_"))
        .collect();
    let spec = serde_json::json!({
        "argv": argv,
        "env": env,
        "cwd": e.dir.path(),
        "steps": steps,
    });
    let o = Command::new("python3")
        .args(["-c", PTY_DRIVER, &spec.to_string()])
        .output()
        .expect("python3 is required (apt-get install python3)");
    assert!(
        o.status.success(),
        "pty driver: {}{}",
        s(&o.stdout),
        s(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).expect("driver JSON");
    let transcript = str_of(&r, "transcript").to_owned();
    assert!(
        r["failure"].is_null(),
        "vpnca {args:?} on a terminal: {}\n{transcript}",
        r["failure"]
    );
    (r["code"].as_i64().expect("code") as i32, transcript)
}

/// With no passphrase file or variable, `init` asks on the terminal twice (echo off: the
/// passphrase never appears in the transcript) and `ca` asks once; the store then opens with
/// the typed passphrase and not with another, and openssl reads the CA certificate made.
///
/// Fails when: the second `init` answer differs from the first (init exits 2, "the two
/// passphrases differ").
#[test]
fn passphrase_prompt_on_a_terminal() {
    let e = Env::new();
    let pass = "typed-on-a-tty-1";
    let (code, t) = on_terminal(
        &e,
        &["init", "--kdf-memory-mib", "8", "--kdf-time", "1"],
        &[
            ("new store passphrase: ", pass),
            ("new store passphrase (again): ", pass),
        ],
    );
    assert_eq!(code, 0, "{t}");
    assert!(t.contains("Initialised an encrypted vpnca store"), "{t}");
    assert!(!t.contains(pass), "the passphrase was echoed:\n{t}");

    let (code, t) = on_terminal(
        &e,
        &["ca", "--cn", "Terminal CA", "--algo", "p256"],
        &[("store passphrase: ", pass)],
    );
    assert_eq!(code, 0, "{t}");
    assert!(!t.contains(pass), "the passphrase was echoed:\n{t}");
    assert_eq!(x509_field(&e, "pki/ca.crt", "-subject"), "CN = Terminal CA");

    let mut c = e.cmd(&["verify"]);
    c.env("VPNCA_PASSPHRASE", pass);
    expect_ok(&["verify"], c.output().expect("run"));
    let err = e.fails(&["verify"], 2);
    assert!(err.contains("wrong passphrase"), "{err}");
}

/// Two different answers to `init`'s prompts: exit 2, `the two passphrases differ`, no store.
///
/// Fails when: both answers are the same (init then succeeds).
#[test]
fn passphrase_prompt_mismatch_creates_nothing() {
    let e = Env::new();
    let (code, t) = on_terminal(
        &e,
        &["init", "--kdf-memory-mib", "8", "--kdf-time", "1"],
        &[
            ("new store passphrase: ", "typed-on-a-tty-1"),
            ("new store passphrase (again): ", "typed-on-a-tty-2"),
        ],
    );
    assert_eq!(code, 2, "{t}");
    assert!(t.contains("the two passphrases differ"), "{t}");
    assert!(!e.pki.join("vpnca.db").exists());
}
