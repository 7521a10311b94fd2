//! `vpnca passwd --rekey` (issue 17): a new data key, everything it protects moved over in one
//! transaction, and the old header (with the old passphrase) useless afterwards. Judged by
//! openssl (each exported key is the key of its certificate; the CRL still lists the revoked
//! serial; the CA certifies the new state-signing key) and by the store's own refusals of
//! what an attacker puts back. SIGKILL during a rekey: tests/crash.rs.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

const NEW_PASS: &str = "a brand new passphrase 7";

/// `vpnca ARGS` with `pass` as the store passphrase (and `new` as the new one, for `passwd`).
fn run_with(e: &Env, pass: &str, new: Option<&str>, args: &[&str]) -> Output {
    let mut c = e.cmd(args);
    c.env("VPNCA_PASSPHRASE", pass);
    if let Some(n) = new {
        c.env("VPNCA_NEW_PASSPHRASE", n);
    }
    c.output().expect("run vpnca")
}

fn ok_with(e: &Env, pass: &str, args: &[&str]) -> String {
    expect_ok(args, run_with(e, pass, None, args))
}

/// The public key of a private key file and of a certificate, by openssl: equal when the key
/// is the certificate's.
fn key_matches_cert(e: &Env, key: &Path, cert: &Path) -> bool {
    let dir = e.dir.path();
    let k = openssl_ok(&["pkey", "-in", &key.display().to_string(), "-pubout"], dir);
    let c = openssl_ok(
        &[
            "x509",
            "-in",
            &cert.display().to_string(),
            "-pubkey",
            "-noout",
        ],
        dir,
    );
    !k.is_empty() && k == c
}

/// Every key blob of the store, by serial (hex of the ciphertext), read with sqlite3.
fn blobs(e: &Env) -> Vec<(String, String)> {
    sqlite_query(
        e,
        "SELECT serial, hex(key_blob) FROM certs WHERE key_blob IS NOT NULL ORDER BY serial",
    )
    .lines()
    .map(|l| {
        let (a, b) = l.split_once('|').expect("serial|blob");
        (a.to_string(), b.to_string())
    })
    .collect()
}

/// openssl verifies the state-signing key's certificate (`hex`: `meta.state_key_cert`)
/// against the store's `ca.crt`.
fn assert_state_key_certified(e: &Env, hex: &str) {
    let der: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    std::fs::write(e.path("state.der"), der).expect("write");
    let dir = e.dir.path();
    openssl_ok(
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "state.der",
            "-out",
            "state.pem",
        ],
        dir,
    );
    let (ok, verdict) = openssl_verify(dir, &["-CAfile", "pki/ca.crt", "state.pem"]);
    assert!(ok && verdict.trim().ends_with(": OK"), "{verdict}");
}

/// A store with a CA, a server, two users (one revoked) and a CRL.
fn populated() -> Env {
    let e = Env::with_ca();
    e.ok(&["server", "vpn.example.com"]);
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["revoke", "bob"]);
    e
}

#[test]
fn a_rekey_moves_every_key_and_the_old_header_no_longer_opens_the_store() {
    let e = populated();
    let before = blobs(&e);
    let old_header = sqlite_query(&e, "SELECT v FROM meta WHERE k = 'header'");
    let old_state_cert = sqlite_query(&e, "SELECT v FROM meta WHERE k = 'state_key_cert'");
    let bob = sqlite_query(&e, "SELECT serial FROM certs WHERE name = 'bob'");

    let args = ["--json", "passwd", "--rekey"];
    let out = expect_ok(&args, run_with(&e, PASS, Some(NEW_PASS), &args));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["rekey"]["keys_reencrypted"], 4, "{v}");
    assert_eq!(v["rekey"]["state_key_certified"], true, "{v}");
    assert!(v["state_head"].is_string(), "the new head for scripts: {v}");

    // Every key blob is new ciphertext, and each key is still its certificate's key.
    let after = blobs(&e);
    assert_eq!(before.len(), after.len());
    for ((s1, b1), (s2, b2)) in before.iter().zip(&after) {
        assert_eq!(s1, s2);
        assert_ne!(b1, b2, "the key of {s1} was not re-encrypted");
    }
    for name in ["alice", "vpn.example.com"] {
        ok_with(&e, NEW_PASS, &["export", name, "--key", "--out", "keys"]);
        assert!(
            key_matches_cert(
                &e,
                &e.path(&format!("keys/{name}.key")),
                &e.pki.join(format!("issued/{name}.crt"))
            ),
            "{name}: the re-encrypted key is not the certificate's key"
        );
    }
    // The old passphrase no longer opens it; the new one does, and the store is intact.
    expect_code(&["verify"], run_with(&e, PASS, None, &["verify"]), 2);
    assert!(ok_with(&e, NEW_PASS, &["verify"]).contains("OK: the store is intact"));

    // The revoked set came along: the next CRL still lists bob (openssl reads it).
    ok_with(&e, NEW_PASS, &["crl"]);
    let (_, revoked) = crl_by_openssl(&e);
    assert!(revoked.contains_key(&norm_serial(&bob)), "{revoked:?}");

    // A new state-signing key, certified by the CA (openssl), and the readers without the
    // passphrase verify the signed head with it.
    let new_state_cert = sqlite_query(&e, "SELECT v FROM meta WHERE k = 'state_key_cert'");
    assert_ne!(old_state_cert, new_state_cert);
    assert_state_key_certified(&e, &new_state_cert);
    let status = e.run(&["status"]);
    assert!(
        s(&status.stdout).contains("state: checked against the signed head"),
        "{}",
        s(&status.stdout)
    );

    // The audit log: one `rekey` entry recording the log before it; nothing rewritten.
    let log = e.json_lines(&["log", "--json"]);
    let rekey: Vec<_> = log.iter().filter(|l| l["action"] == "rekey").collect();
    assert_eq!(rekey.len(), 1, "{log:?}");
    assert_eq!(
        rekey[0]["detail"]["entries"].as_i64(),
        Some(rekey[0]["seq"].as_i64().expect("seq") - 1)
    );

    // The old header put back (what a copy of the store from before holds), opened with the
    // old passphrase: no key comes out, nothing is written, `verify` finds it.
    sqlite(
        &e,
        &format!(
            "UPDATE meta SET v = '{}' WHERE k = 'header'",
            old_header.replace('\'', "''")
        ),
    );
    let snap = e.snapshot();
    let o = run_with(
        &e,
        PASS,
        None,
        &["export", "alice", "--key", "--out", "stolen"],
    );
    let err = expect_code(&["export"], o, 2);
    assert!(err.contains("outside vpnca"), "{err}");
    assert!(!e.path("stolen/alice.key").exists());
    let o = run_with(&e, PASS, None, &["client", "mallory"]);
    expect_code(&["client"], o, 2);
    assert_eq!(snap, e.snapshot(), "a refused command changed the store");
    let o = run_with(&e, PASS, None, &["verify"]);
    expect_code(&["verify"], o, 1);
}

#[test]
fn a_checkpoint_from_before_the_rekey_is_accepted_and_old_entries_stay_checked() {
    let e = populated();
    // The checkpoint as a crash right after the rekey's commit leaves it: before the rekey.
    let checkpoint = std::fs::read(e.pki.join("vpnca.checkpoint")).expect("checkpoint");
    let args = ["passwd", "--rekey"];
    expect_ok(&args, run_with(&e, PASS, Some(NEW_PASS), &args));
    std::fs::write(e.pki.join("vpnca.checkpoint"), &checkpoint).expect("put back");
    ok_with(&e, NEW_PASS, &["client", "carol"]);
    assert!(ok_with(&e, NEW_PASS, &["verify"]).contains("OK: the store is intact"));

    // An entry from before the rekey edited (its MAC is under the old key, which the new one
    // cannot check): the digest the rekey entry recorded finds it.
    sqlite(&e, "UPDATE audit SET name = 'nobody' WHERE seq = 2");
    let o = run_with(&e, NEW_PASS, None, &["verify"]);
    let out = s(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", s(&o.stderr));
    assert!(
        out.contains("(rekey) are not the ones it recorded"),
        "{out}"
    );
    // And with the checkpoint behind the rekey again, a write is refused.
    std::fs::write(e.pki.join("vpnca.checkpoint"), &checkpoint).expect("put back");
    let snap = e.snapshot();
    let o = run_with(&e, NEW_PASS, None, &["client", "dave"]);
    let err = expect_code(&["client"], o, 2);
    assert!(err.contains("rekey"), "{err}");
    assert_eq!(snap, e.snapshot());
}

#[test]
fn a_store_that_does_not_check_out_is_not_rekeyed() {
    let e = populated();
    // bob's revocation undone with SQL: re-keying would vouch for it under the new key.
    sqlite(
        &e,
        "UPDATE certs SET state = 'valid', revoked_at = NULL, reason = NULL WHERE name = 'bob'",
    );
    let snap = e.snapshot();
    let args = ["passwd", "--rekey"];
    let err = expect_code(&args, run_with(&e, PASS, Some(NEW_PASS), &args), 2);
    assert!(
        err.contains("cannot be re-keyed") && err.contains("vpnca verify"),
        "{err}"
    );
    assert_eq!(snap, e.snapshot(), "a refused rekey changed the store");
    // The old passphrase still opens it: nothing was re-keyed.
    let o = run_with(&e, PASS, None, &["verify"]);
    expect_code(&["verify"], o, 1);
}

#[test]
fn a_weak_new_passphrase_is_refused_by_a_rekey_too() {
    let e = populated();
    let snap = e.snapshot();
    let args = ["passwd", "--rekey"];
    let err = expect_code(&args, run_with(&e, PASS, Some("password123"), &args), 2);
    assert!(err.contains("weak") || err.contains("common"), "{err}");
    assert_eq!(snap, e.snapshot());
}

/// A rekey of a store whose CA key is in KMS: the new state-signing key is certified with a
/// KMS `Sign` (the test KMS server counts it), openssl verifies that certificate against
/// `ca.crt`, and readers without the passphrase verify the new signed head.
#[test]
fn a_kms_ca_certifies_the_new_state_key_through_kms() {
    use common::aws::{KmsServer, aws_env};
    let kms = KmsServer::start();
    kms.add_key(&serde_json::json!({"spec": "RSA_2048", "aliases": ["alias/vpn-ca"]}));
    let e = Env::init();
    let with_kms = |pass: &str, new: Option<&str>, args: &[&str]| {
        let mut c = e.cmd(args);
        aws_env(&mut c, None, None);
        c.env("AWS_ENDPOINT_URL_KMS", kms.url())
            .env("VPNCA_PASSPHRASE", pass);
        if let Some(n) = new {
            c.env("VPNCA_NEW_PASSPHRASE", n);
        }
        expect_ok(args, c.output().expect("run vpnca"))
    };
    with_kms(
        PASS,
        None,
        &["ca", "--cn", "KMS VPN CA", "--kms-key", "alias/vpn-ca"],
    );
    with_kms(PASS, None, &["client", "alice"]);
    let signs = |ops: Vec<String>| ops.iter().filter(|o| *o == "Sign").count();
    let before = signs(kms.ops());
    let out = with_kms(PASS, Some(NEW_PASS), &["--json", "passwd", "--rekey"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["rekey"]["state_key_certified"], true, "{v}");
    assert_eq!(v["rekey"]["keys_reencrypted"], 1, "alice's key only: {v}");
    assert_eq!(
        signs(kms.ops()),
        before + 1,
        "one KMS Sign for the state key"
    );
    let hex = sqlite_query(&e, "SELECT v FROM meta WHERE k = 'state_key_cert'");
    assert_state_key_certified(&e, &hex);
    let mut status = e.cmd(&["status"]);
    status.env_remove("VPNCA_PASSPHRASE");
    let o = status.output().expect("status");
    assert!(
        s(&o.stdout).contains("state: checked against the signed head"),
        "{}",
        s(&o.stdout)
    );
}
