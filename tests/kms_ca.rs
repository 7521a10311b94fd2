//! A root CA whose key lives in KMS (issue 18), through the real binary against
//! tests/aws/kms_server.py: `vpnca ca --kms-key` makes it, and every certificate and CRL it
//! signs afterwards is a KMS `Sign` (DIGEST), each checked by openssl. Faults: a disabled key
//! and a corrupt signature end in exit 3 with the store unchanged; an edited key reference in
//! the database is refused (exit 2) before anything is sent to Sign. A revocation is the
//! exception: recorded when KMS cannot sign its CRL, which is deferred (exit 3, `status`
//! reports it) until a later command signs it — for `revoke`, `revoke --batch` and `renew
//! --revoke-old` alike; CRLs are signed outside the store's lock and redone when the store
//! moved meanwhile.

mod common;

use std::process::Output;

use common::aws::{KmsServer, aws_env};
use common::{
    Env, cert_pubkey, crl_verified_text, expect_code, expect_ok, openssl_ok, openssl_verify,
    sqlite, sqlite_query,
};
use serde_json::json;

/// Runs vpnca with test credentials and KMS calls sent to `kms`.
fn run(e: &Env, kms: &KmsServer, args: &[&str]) -> Output {
    let mut c = e.cmd(args);
    aws_env(&mut c, None, None);
    c.env("AWS_ENDPOINT_URL_KMS", kms.url());
    // `ca --kms-create` asks STS who the caller is: the same server answers.
    c.env("AWS_ENDPOINT_URL_STS", kms.url());
    c.output().expect("run vpnca")
}

fn ok(e: &Env, kms: &KmsServer, args: &[&str]) -> String {
    expect_ok(args, run(e, kms, args))
}

fn fails(e: &Env, kms: &KmsServer, args: &[&str], code: i32) -> String {
    expect_code(args, run(e, kms, args), code)
}

/// A store whose root CA is on a new RSA_2048 key of `kms` (alias `alias/vpn-ca`); returns
/// the key as the server describes it (`KeyId`, `Arn`, `privateKeyPem`).
fn kms_ca(kms: &KmsServer) -> (Env, serde_json::Value) {
    let key = kms.add_key(&json!({"spec": "RSA_2048", "aliases": ["alias/vpn-ca"]}));
    let e = Env::init();
    let out = ok(
        &e,
        kms,
        &["ca", "--cn", "KMS VPN CA", "--kms-key", "alias/vpn-ca"],
    );
    let arn = key["Arn"].as_str().expect("arn");
    assert!(out.contains(arn), "the ARN is named: {out}");
    (e, key)
}

/// openssl's verdict on `cert` (under the store's parent folder) with the store's CA and CRL.
fn openssl_crl_check(e: &Env, cert: &str) -> (bool, String) {
    openssl_verify(
        e.dir.path(),
        &[
            "-crl_check",
            "-CAfile",
            "pki/ca.crt",
            "-CRLfile",
            "pki/crl.pem",
            cert,
        ],
    )
}

/// openssl, checking the store's CRL, refuses `cert` (under the store's parent folder) as
/// revoked.
fn assert_revoked_by_openssl(e: &Env, cert: &str) {
    let (verified, out) = openssl_crl_check(e, cert);
    assert!(
        !verified && out.contains("certificate revoked"),
        "{cert}: {out}"
    );
}

/// openssl verifies `cert` (under the store) against the store's CA certificate.
fn assert_verifies(e: &Env, cert: &str) {
    let (verified, out) = openssl_verify(&e.pki, &["-CAfile", "ca.crt", cert]);
    assert!(
        verified && out.contains(&format!("{cert}: OK")),
        "{cert}: {out}"
    );
}

#[test]
fn a_kms_ca_issues_and_signs_crls_that_openssl_verifies() {
    let kms = KmsServer::start();
    let (e, key) = kms_ca(&kms);
    let arn = key["Arn"].as_str().expect("arn");

    // The CA certificate carries the public key whose private half the server holds; the
    // store keeps no CA key, and the CA certificate is self-signed through KMS.
    std::fs::write(
        e.path("kms.key"),
        key["privateKeyPem"].as_str().expect("pem"),
    )
    .expect("key");
    let from_key = openssl_ok(&["pkey", "-in", "kms.key", "-pubout"], e.dir.path());
    assert_eq!(cert_pubkey(&e.pki, "ca.crt"), from_key, "CA public key");
    let (verified, out) = openssl_verify(&e.pki, &["-check_ss_sig", "-CAfile", "ca.crt", "ca.crt"]);
    assert!(verified && out.contains("ca.crt: OK"), "{out}");
    assert_eq!(
        sqlite_query(&e, "SELECT key_blob IS NULL FROM certs WHERE kind = 'ca'").trim(),
        "1",
        "the CA record has no key blob"
    );

    ok(&e, &kms, &["server", "vpn.example.com"]);
    ok(&e, &kms, &["client", "alice"]);
    ok(&e, &kms, &["client", "bob"]);
    for c in [
        "issued/vpn.example.com.crt",
        "issued/alice.crt",
        "issued/bob.crt",
    ] {
        assert_verifies(&e, c);
    }

    // An empty CRL, then one revoking alice: both verified by openssl with the CA.
    ok(&e, &kms, &["crl"]);
    let text = crl_verified_text(&e.pki, "crl.pem", "ca.crt");
    assert!(text.contains("No Revoked Certificates"), "{text}");
    // alice's certificate leaves issued/ when she is revoked: kept beside the store.
    std::fs::copy(e.pki.join("issued/alice.crt"), e.path("alice.crt")).expect("copy");
    std::fs::copy(e.pki.join("issued/bob.crt"), e.path("bob.crt")).expect("copy");
    ok(&e, &kms, &["revoke", "alice"]);
    crl_verified_text(&e.pki, "crl.pem", "ca.crt");
    let check = |cert: &str| openssl_crl_check(&e, cert);
    let (ok_bob, out) = check("bob.crt");
    assert!(ok_bob && out.contains("bob.crt: OK"), "{out}");
    let (ok_alice, out) = check("alice.crt");
    assert!(
        !ok_alice && out.contains("certificate revoked"),
        "alice is revoked: {out}"
    );

    // Every signature was a KMS Sign of a digest with that key, each request correctly signed.
    kms.assert_all_signed();
    let signs: Vec<_> = kms
        .requests()
        .into_iter()
        .filter(|r| r["op"] == "Sign")
        .collect();
    // The CA, the state-signing key's certificate, three certificates, two CRLs.
    assert_eq!(signs.len(), 7, "{signs:?}");
    for r in &signs {
        assert_eq!(r["body"]["MessageType"], "DIGEST", "{r}");
        assert_eq!(r["body"]["KeyId"], arn, "{r}");
    }

    // The store checks out (exit 0: no problem found).
    ok(&e, &kms, &["verify"]);
}

#[test]
fn a_disabled_key_is_refused_and_nothing_is_stored() {
    let kms = KmsServer::start();
    // `ca --kms-key` on a disabled key.
    let key = kms.add_key(&json!({"spec": "RSA_2048", "state": "Disabled"}));
    let arn = key["Arn"].as_str().expect("arn");
    let e = Env::init();
    let before = e.snapshot();
    let err = fails(&e, &kms, &["ca", "--kms-key", arn], 3);
    assert!(err.contains(arn) && err.contains("is disabled"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused `ca` changed the store");

    // A KMS CA whose key is disabled afterwards: `client` stores nothing.
    let (e, key) = kms_ca(&kms);
    let arn = key["Arn"].as_str().expect("arn");
    kms.set_state(arn, "Disabled");
    let before = e.snapshot();
    let err = fails(&e, &kms, &["client", "carol"], 3);
    assert!(err.contains(arn) && err.contains("is disabled"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused `client` changed the store");
    let err = fails(&e, &kms, &["crl"], 3);
    assert!(err.contains(arn), "{err}");
    assert_eq!(e.snapshot(), before, "a refused `crl` changed the store");
    // Enabled again, it signs again.
    kms.set_state(arn, "Enabled");
    ok(&e, &kms, &["client", "carol"]);
    assert_verifies(&e, "issued/carol.crt");
}

#[test]
fn a_corrupt_signature_is_refused_and_nothing_is_stored() {
    let kms = KmsServer::start();
    kms.add_key(&json!({"spec": "RSA_2048", "aliases": ["alias/corrupt"]}));
    let e = Env::init();
    let before = e.snapshot();
    kms.control("corrupt", &json!({"times": 1}));
    let err = fails(&e, &kms, &["ca", "--kms-key", "alias/corrupt"], 3);
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused `ca` changed the store");

    let (e, _) = kms_ca(&kms);
    let before = e.snapshot();
    kms.control("corrupt", &json!({"times": 1}));
    let err = fails(&e, &kms, &["client", "dave"], 3);
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused `client` changed the store");
}

#[test]
fn an_edited_key_reference_is_refused_before_anything_is_signed() {
    let kms = KmsServer::start();
    let (e, key) = kms_ca(&kms);
    let arn = key["Arn"].as_str().expect("arn");
    // The attacker's own key: the edit points the CA at it.
    let theirs = kms.add_key(&json!({"spec": "RSA_2048"}));
    let their_arn = theirs["Arn"].as_str().expect("arn");
    sqlite(
        &e,
        &format!("UPDATE meta SET v = replace(v, '{arn}', '{their_arn}') WHERE k = 'ca_kms_key'"),
    );
    assert!(sqlite_query(&e, "SELECT v FROM meta WHERE k = 'ca_kms_key'").contains(their_arn));
    let signs_before = kms.ops().iter().filter(|o| *o == "Sign").count();
    let before = e.snapshot();
    let err = fails(&e, &kms, &["client", "eve"], 2);
    assert!(
        err.contains("the reference to the CA's key in KMS"),
        "the edited item is named: {err}"
    );
    assert_eq!(e.snapshot(), before, "a refused `client` changed the store");
    let err = fails(&e, &kms, &["crl"], 2);
    assert!(
        err.contains("the reference to the CA's key in KMS"),
        "{err}"
    );
    assert_eq!(
        kms.ops().iter().filter(|o| *o == "Sign").count(),
        signs_before,
        "nothing was sent to Sign"
    );

    // A reference planted into a store whose CA key is local is refused the same way.
    let local = Env::with_ca();
    sqlite(
        &local,
        &format!(
            "INSERT INTO meta (k, v) VALUES ('ca_kms_key', '{}')",
            sqlite_query(&e, "SELECT v FROM meta WHERE k = 'ca_kms_key'").trim()
        ),
    );
    let err = fails(&local, &kms, &["client", "eve"], 2);
    assert!(
        err.contains("the reference to the CA's key in KMS"),
        "{err}"
    );
}

/// Starts `vpnca ARGS` with its first KMS call answered only after `seconds` (the server's
/// `delay` fault) and returns once that call has reached the server: the command is then
/// inside that call, and other commands run meanwhile.
fn spawn_delayed(e: &Env, kms: &KmsServer, args: &[&str], seconds: u64) -> std::process::Child {
    kms.control("delay", &json!({"seconds": seconds, "times": 1}));
    let mut c = e.cmd(args);
    aws_env(&mut c, None, None);
    c.env("AWS_ENDPOINT_URL_KMS", kms.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().expect("spawn");
    let t0 = std::time::Instant::now();
    while !kms.requests().iter().any(|r| r["delayed"].is_number()) {
        assert!(
            t0.elapsed().as_secs() < 30,
            "{args:?}: the delayed call never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

/// Fails when: `Store::issue` signs inside `Store::write` again (bob waited for alice's slow
/// Sign to end before he could lock the store).
#[test]
fn a_slow_kms_sign_does_not_hold_the_store_lock() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    // alice's Sign is answered after 4 s; bob's at once.
    let mut alice = spawn_delayed(&e, &kms, &["client", "alice"], 4);
    ok(&e, &kms, &["client", "bob"]);
    assert!(
        alice.try_wait().expect("try_wait").is_none(),
        "bob's certificate was made only after alice's slow Sign ended: the store was locked meanwhile"
    );
    assert!(alice.wait().expect("wait").success(), "alice");
    assert_verifies(&e, "issued/alice.crt");
    assert_verifies(&e, "issued/bob.crt");
}

/// Fails when: `status` does not ask KMS about the CA key (`Store::kms_key_findings` not
/// called): exit 0 with the key disabled.
#[test]
fn status_reports_a_kms_key_that_cannot_sign() {
    let kms = KmsServer::start();
    let (e, key) = kms_ca(&kms);
    let arn = key["Arn"].as_str().expect("arn");
    ok(&e, &kms, &["crl"]);
    ok(&e, &kms, &["status"]);
    for (state, problem) in [
        ("Disabled", "disabled"),
        ("PendingDeletion", "pending-deletion"),
    ] {
        kms.set_state(arn, state);
        let o = run(&e, &kms, &["--json", "status"]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{state}: {}",
            common::s(&o.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status --json");
        let f = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["subject"] == "ca-key")
            .unwrap_or_else(|| panic!("{state}: no ca-key finding: {report}"));
        assert_eq!(f["problem"], problem, "{f}");
        assert_eq!(f["name"], arn, "{f}");
        // verify reports it too (exit 1), naming the key.
        let o = run(&e, &kms, &["verify"]);
        assert_eq!(o.status.code(), Some(1), "{state}: verify");
        let text = format!("{}{}", common::s(&o.stdout), common::s(&o.stderr));
        assert!(text.contains(arn), "{state}: verify names the key: {text}");
    }
    kms.set_state(arn, "Enabled");
    ok(&e, &kms, &["status"]);
    ok(&e, &kms, &["verify"]);
}

/// Every other command that signs, with a KMS CA: `sign-req` (an openssl request), `renew`,
/// `client --batch` (parallel workers over one KMS client) and `renew --revoke-old`'s CRL;
/// each result verified by openssl.
#[test]
fn sign_req_renew_and_batch_sign_with_kms() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    common::openssl_req(
        e.dir.path(),
        common::RSA_2048,
        "carol",
        "carol.key",
        "carol.csr",
        &[],
    );
    ok(&e, &kms, &["sign-req", "carol.csr", "--type", "client"]);
    assert_verifies(&e, "issued/carol.crt");
    ok(&e, &kms, &["client", "dave"]);
    ok(&e, &kms, &["renew", "dave"]);
    assert_verifies(&e, "issued/dave.crt");
    std::fs::write(e.path("users.csv"), "name\nu1\nu2\nu3\nu4\n").expect("csv");
    ok(&e, &kms, &["client", "--batch", "users.csv", "--jobs", "2"]);
    for u in ["u1", "u2", "u3", "u4"] {
        assert_verifies(&e, &format!("issued/{u}.crt"));
    }
    ok(&e, &kms, &["renew", "u1", "--revoke-old"]);
    assert_verifies(&e, "issued/u1.crt");
    crl_verified_text(&e.pki, "crl.pem", "ca.crt");
    kms.assert_all_signed();
}

/// The key `id` as the server holds it (`KeyState`, `Origin`, `privateKeyPem`, …).
fn server_key(kms: &KmsServer, id: &str) -> serde_json::Value {
    let (st, body) = common::aws::http(kms.port, "GET", &format!("/_test/key?id={id}"), "");
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).expect("key JSON")
}

/// The CA record's sealed key blob, hex (empty when there is none).
fn ca_key_blob(e: &Env) -> String {
    sqlite_query(
        e,
        "SELECT coalesce(hex(key_blob), '') FROM certs WHERE kind = 'ca'",
    )
    .trim()
    .to_owned()
}

/// `ca --move-to-kms`: a store's own CA key moves into an EXTERNAL KMS key, the CA certificate
/// stays. Refusals first (exit 2) and KMS failures (exit 3), each leaving the store unchanged;
/// then the move, after which KMS signs a client that openssl verifies with the unchanged CA
/// certificate, and the store holds no CA key (not even in the file's free pages).
///
/// Fails when: the origin, spec or state check is left out of `Store::move_ca_key_to_kms`
/// (the refusals pass), or `drop_ca_key` keeps the blob.
#[test]
fn move_to_kms_keeps_the_ca_certificate_and_forgets_the_key() {
    let kms = KmsServer::start();
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let ca_before = std::fs::read(e.pki.join("ca.crt")).expect("ca.crt");
    let blob = ca_key_blob(&e);
    assert!(blob.len() > 1000, "the store holds the CA key: {blob}");

    // Keys that cannot take the CA key: refused (exit 2), nothing sent to import, store
    // unchanged.
    for (cfg, says) in [
        (json!({"spec": "RSA_2048"}), "its origin is AWS_KMS"),
        (
            json!({"spec": "RSA_3072", "origin": "EXTERNAL", "state": "PendingImport"}),
            "its key spec is RSA_3072; the CA key is RSA_2048",
        ),
        (
            json!({"spec": "RSA_2048", "usage": "ENCRYPT_DECRYPT", "origin": "EXTERNAL", "state": "PendingImport"}),
            "its key usage is ENCRYPT_DECRYPT",
        ),
        (
            json!({"spec": "RSA_2048", "origin": "EXTERNAL", "state": "Disabled"}),
            "its key state is Disabled",
        ),
    ] {
        let k = kms.add_key(&cfg);
        let arn = k["Arn"].as_str().expect("arn");
        let before = e.snapshot();
        let err = fails(&e, &kms, &["ca", "--move-to-kms", arn], 2);
        assert!(err.contains(arn) && err.contains(says), "{cfg}: {err}");
        assert_eq!(
            e.snapshot(),
            before,
            "{cfg}: a refused move changed the store"
        );
    }
    assert!(
        !kms.ops()
            .iter()
            .any(|o| o == "GetParametersForImport" || o == "ImportKeyMaterial"),
        "a refused key was sent key material: {:?}",
        kms.ops()
    );

    // KMS failures: exit 3, store unchanged. The import fails; then the import succeeds but
    // the test signature comes back corrupt.
    let key = kms.add_key(
        &json!({"spec": "RSA_2048", "origin": "EXTERNAL", "state": "PendingImport", "aliases": ["alias/moved"]}),
    );
    let arn = key["Arn"].as_str().expect("arn");
    let before = e.snapshot();
    kms.control(
        "fail",
        &json!({"op": "ImportKeyMaterial", "code": "KMSInternalException", "status": 500, "times": 8}),
    );
    let err = fails(&e, &kms, &["ca", "--move-to-kms", "alias/moved"], 3);
    assert!(err.contains("ImportKeyMaterial"), "{err}");
    assert_eq!(e.snapshot(), before, "a failed import changed the store");
    assert_eq!(server_key(&kms, arn)["KeyState"], "PendingImport");
    kms.control("corrupt", &json!({"times": 1}));
    let err = fails(&e, &kms, &["ca", "--move-to-kms", "alias/moved"], 3);
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(
        e.snapshot(),
        before,
        "a corrupt test signature changed the store"
    );
    // The key now holds the CA key (the import went through): the next run takes it as it is.
    assert_eq!(server_key(&kms, arn)["KeyState"], "Enabled");

    let out = ok(&e, &kms, &["ca", "--move-to-kms", "alias/moved"]);
    assert!(out.contains(arn) && out.contains("unchanged"), "{out}");

    // What KMS received: RSA_AES_KEY_WRAP_SHA_256 with a 4096-bit wrapping key, material that
    // never expires; the server unwrapped it (cryptography) into the CA's private key.
    let reqs = kms.requests();
    let gp = reqs
        .iter()
        .find(|r| r["op"] == "GetParametersForImport" && r["status"] == 200)
        .expect("GetParametersForImport");
    assert_eq!(gp["body"]["WrappingAlgorithm"], "RSA_AES_KEY_WRAP_SHA_256");
    assert_eq!(gp["body"]["WrappingKeySpec"], "RSA_4096");
    let imp = reqs
        .iter()
        .find(|r| r["op"] == "ImportKeyMaterial" && r["status"] == 200)
        .expect("ImportKeyMaterial");
    assert_eq!(
        imp["body"]["ExpirationModel"],
        "KEY_MATERIAL_DOES_NOT_EXPIRE"
    );
    std::fs::write(
        e.path("kms.key"),
        server_key(&kms, arn)["privateKeyPem"]
            .as_str()
            .expect("imported key"),
    )
    .expect("key");
    let from_key = openssl_ok(&["pkey", "-in", "kms.key", "-pubout"], e.dir.path());
    assert_eq!(
        cert_pubkey(&e.pki, "ca.crt"),
        from_key,
        "KMS holds the CA key"
    );

    // The CA certificate is the same bytes; the store holds no CA key, and the sealed blob is
    // not left in the file either.
    assert_eq!(
        std::fs::read(e.pki.join("ca.crt")).expect("ca.crt"),
        ca_before
    );
    assert_eq!(ca_key_blob(&e), "", "the CA record still has a key blob");
    let db = std::fs::read(e.pki.join("vpnca.db")).expect("db");
    let sealed: Vec<u8> = (0..blob.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&blob[i..i + 2], 16).expect("hex"))
        .collect();
    assert!(
        !db.windows(64).any(|w| w == &sealed[..64]),
        "the sealed CA key is still in the database file"
    );

    // KMS signs from now on: a new client verifies with the unchanged CA certificate, and so
    // does the one issued before the move.
    let signs_before = kms.ops().iter().filter(|o| *o == "Sign").count();
    ok(&e, &kms, &["client", "bob"]);
    assert_verifies(&e, "issued/bob.crt");
    assert_verifies(&e, "issued/alice.crt");
    let signs: Vec<_> = kms
        .requests()
        .into_iter()
        .filter(|r| r["op"] == "Sign")
        .collect();
    assert!(signs.len() > signs_before, "bob was not signed by KMS");
    assert!(signs.iter().all(|r| r["body"]["KeyId"] == arn), "{signs:?}");
    kms.assert_all_signed();

    // The audit log says what happened; the store checks out; a second move is refused.
    let log = e.ok(&["log"]);
    assert!(log.contains("move-to-kms"), "{log}");
    ok(&e, &kms, &["verify"]);
    let before = e.snapshot();
    let other =
        kms.add_key(&json!({"spec": "RSA_2048", "origin": "EXTERNAL", "state": "PendingImport"}));
    let err = fails(
        &e,
        &kms,
        &["ca", "--move-to-kms", other["Arn"].as_str().expect("arn")],
        2,
    );
    assert!(err.contains("in KMS already"), "{err}");
    assert_eq!(e.snapshot(), before);
}

/// `ca --move-to-kms` with no CA key to move: a sub-CA request pending, or no CA. Refused
/// (exit 2) before any KMS call.
#[test]
fn move_to_kms_refuses_a_store_without_a_ca_key() {
    let kms = KmsServer::start();
    let key =
        kms.add_key(&json!({"spec": "RSA_2048", "origin": "EXTERNAL", "state": "PendingImport"}));
    let arn = key["Arn"].as_str().expect("arn");
    let e = Env::init();
    let before = e.snapshot();
    fails(&e, &kms, &["ca", "--move-to-kms", arn], 2);
    assert_eq!(e.snapshot(), before);
    e.ok(&["ca", "--sub-ca", "--csr-out", "sub.csr"]);
    let before = e.snapshot();
    let err = fails(&e, &kms, &["ca", "--move-to-kms", arn], 2);
    assert!(err.contains("sub-CA"), "{err}");
    assert_eq!(e.snapshot(), before);
    assert!(kms.ops().is_empty(), "KMS was called: {:?}", kms.ops());
}

/// `ca --kms-create --kms-alias`: STS GetCallerIdentity, CreateKey with the printed key policy
/// (the account's root administers, the caller signs), CreateAlias, then the CA on the new key,
/// verified by openssl. A store that cannot take a CA, or a bad alias, creates no key.
///
/// Fails when: the policy sent differs from the one printed, or names other actions for the
/// caller than Sign, GetPublicKey, DescribeKey.
#[test]
fn kms_create_makes_a_key_with_the_printed_policy() {
    let kms = KmsServer::start();
    let e = Env::init();
    let args = [
        "ca",
        "--cn",
        "Created VPN CA",
        "--kms-create",
        "--kms-alias",
        "alias/vpnca-new",
    ];
    let o = run(&e, &kms, &args);
    let err = common::s(&o.stderr);
    let out = expect_ok(&args, o);
    let reqs = kms.requests();
    let ops: Vec<_> = reqs
        .iter()
        .map(|r| r["op"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        &ops[..3],
        ["sts:GetCallerIdentity", "CreateKey", "CreateAlias"],
        "{ops:?}"
    );
    // Each correctly signed (botocore's check), STS's for service "sts".
    assert!(reqs.iter().all(|r| r["signature_ok"] == true), "{reqs:?}");
    let create = &reqs[1]["body"];
    assert_eq!(create["KeySpec"], "RSA_2048");
    assert_eq!(create["KeyUsage"], "SIGN_VERIFY");
    let sent = create["Policy"].as_str().expect("a key policy");
    assert!(err.contains(sent), "the policy sent is printed: {err}");
    let policy: serde_json::Value = serde_json::from_str(sent).expect("policy JSON");
    let st = policy["Statement"].as_array().expect("statements");
    assert_eq!(st.len(), 2, "{policy}");
    assert_eq!(st[0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
    assert_eq!(st[0]["Action"], "kms:*");
    assert_eq!(
        st[1]["Principal"]["AWS"],
        "arn:aws:iam::111122223333:user/vpnca-test"
    );
    assert_eq!(
        st[1]["Action"],
        json!(["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"])
    );
    let key = server_key(&kms, "alias/vpnca-new");
    let arn = key["Arn"].as_str().expect("arn");
    assert_eq!(reqs[2]["body"]["TargetKeyId"], arn);
    assert!(out.contains(arn), "{out}");
    assert_eq!(key["Policy"].as_str(), Some(sent));

    std::fs::write(
        e.path("kms.key"),
        key["privateKeyPem"].as_str().expect("pem"),
    )
    .expect("key");
    let from_key = openssl_ok(&["pkey", "-in", "kms.key", "-pubout"], e.dir.path());
    assert_eq!(cert_pubkey(&e.pki, "ca.crt"), from_key, "CA public key");
    let (verified, text) =
        openssl_verify(&e.pki, &["-check_ss_sig", "-CAfile", "ca.crt", "ca.crt"]);
    assert!(verified && text.contains("ca.crt: OK"), "{text}");
    ok(&e, &kms, &["client", "alice"]);
    assert_verifies(&e, "issued/alice.crt");

    // No key is created for a store that cannot take the CA, nor with a bad alias.
    let creates = || kms.ops().iter().filter(|o| *o == "CreateKey").count();
    let before = (e.snapshot(), creates());
    fails(&e, &kms, &["ca", "--kms-create"], 2);
    let e2 = Env::init();
    fails(
        &e2,
        &kms,
        &["ca", "--kms-create", "--kms-alias", "alias/aws/x"],
        2,
    );
    fails(&e2, &kms, &["ca", "--kms-create", "--algo", "ed25519"], 2);
    assert_eq!(
        (e.snapshot(), creates()),
        before,
        "a refused --kms-create created a key"
    );

    // --algo p384 makes an ECC_NIST_P384 key.
    ok(&e2, &kms, &["ca", "--kms-create", "--algo", "p384"]);
    let last = kms
        .requests()
        .into_iter()
        .rfind(|r| r["op"] == "CreateKey")
        .expect("CreateKey");
    assert_eq!(last["body"]["KeySpec"], "ECC_NIST_P384");
}

/// rustls-webpki's path validation of `cert` for `usage`, anchored at the store's CA, with the
/// store's CRL when `with_crl`.
fn webpki_verify(
    e: &Env,
    cert: &str,
    usage: webpki::KeyUsage,
    with_crl: bool,
) -> Result<(), webpki::Error> {
    let crl = with_crl.then(|| e.pki.join("crl.pem"));
    common::webpki_verify(
        &e.pki.join("ca.crt"),
        &[],
        &e.pki.join(cert),
        crl.as_deref(),
        usage,
    )
}

/// pkilint findings accepted on a KMS CA's output: the same one as tests/interop.rs's
/// `ACCEPTED` (rcgen's key identifier method), nothing else.
fn assert_lints_clean(e: &Env, file: &str) {
    let path = e.pki.join(file);
    let findings = if file.ends_with("crl.pem") {
        common::pkilint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &path)
    } else {
        common::pkilint("lint_pkix_cert", &[], &path)
    };
    let bad: Vec<_> = findings
        .iter()
        .filter(|f| {
            !(f.severity == "NOTICE"
                && f.code == "pkix.unknown_subject_key_identifier_calculation_method")
        })
        .collect();
    assert!(bad.is_empty(), "pkilint on {file}: {bad:#?}");
}

/// `ca --kms-switch`: a KMS CA whose key's region is out of reach (here: its key disabled)
/// switches to a replica of its key in another region, keeps signing there with the same CA
/// certificate, and switches back. A key with other material, the key in use and a disabled
/// key are refused with the store unchanged; openssl verifies what the replica signs against
/// the unchanged ca.crt; the server's log shows each Sign in the region and key expected.
///
/// Fails when: the public-key check of `switch_ca_kms_key` is left out (the key with other
/// material is taken, exit 0); the reference is not recorded (the client after the switch is
/// signed in eu-west-1 again: exit 3 with the key disabled).
#[test]
fn kms_switch_signs_with_a_replica_and_back() {
    let kms = KmsServer::start();
    let (e, key) = kms_ca(&kms);
    let home = key["Arn"].as_str().expect("arn").to_owned();
    let replica = kms.add_key(&json!({"spec": "RSA_2048", "region": "us-east-1",
        "aliases": ["alias/vpn-ca"], "privateKeyPem": key["privateKeyPem"]}));
    let replica_arn = replica["Arn"].as_str().expect("arn").to_owned();
    let other = kms.add_key(&json!({"spec": "RSA_2048", "region": "us-east-1"}));
    let ca_before = std::fs::read(e.pki.join("ca.crt")).expect("ca.crt");
    let east = ["--region", "us-east-1"];
    let switch = |k: &str, region: &[&str]| -> Vec<String> {
        let mut a = vec!["ca".to_string(), "--kms-switch".into(), k.into()];
        a.extend(region.iter().map(|s| s.to_string()));
        a
    };
    let refused = |args: Vec<String>, code: i32, what: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = e.snapshot();
        let err = fails(&e, &kms, &args, code);
        assert!(err.contains(what), "{args:?}: {err}");
        assert!(e.snapshot() == before, "{args:?} changed the store");
    };
    refused(
        switch(other["Arn"].as_str().expect("arn"), &east),
        2,
        "its public key is not the CA certificate's",
    );
    refused(switch(&home, &[]), 2, "nothing to switch");
    kms.set_state(&replica_arn, "Disabled");
    refused(switch("alias/vpn-ca", &east), 3, "is disabled");
    kms.set_state(&replica_arn, "Enabled");

    // The home region is out of reach: nothing can be signed there.
    kms.set_state(&home, "Disabled");
    fails(&e, &kms, &["client", "alice"], 3);
    let out = ok(
        &e,
        &kms,
        &switch("alias/vpn-ca", &east)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        out.contains(&replica_arn) && out.contains("the CA certificate is unchanged"),
        "{out}"
    );
    let signs_before = kms.requests().len();
    ok(&e, &kms, &["client", "alice"]);
    e.ok(&["export", "alice", "--out", "alice"]);
    ok(&e, &kms, &["revoke", "alice"]);
    let signs: Vec<serde_json::Value> = kms
        .requests()
        .into_iter()
        .skip(signs_before)
        .filter(|r| r["op"] == "Sign")
        .collect();
    assert_eq!(signs.len(), 2, "the certificate and the CRL: {signs:?}");
    for s in &signs {
        assert_eq!(s["region"], "us-east-1", "{s}");
        assert_eq!(s["body"]["KeyId"], replica_arn.as_str(), "{s}");
        assert_eq!(s["status"], 200, "{s}");
    }
    assert_eq!(
        std::fs::read(e.pki.join("ca.crt")).expect("ca.crt"),
        ca_before,
        "ca.crt changed"
    );
    assert_revoked_by_openssl(&e, "alice/alice.crt");
    let log = e.ok(&["log"]);
    assert!(log.contains("kms-switch"), "{log}");

    // Back home once the region is reachable again.
    kms.set_state(&home, "Enabled");
    ok(
        &e,
        &kms,
        &switch(&home, &["--region", "eu-west-1"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let n = kms.requests().len();
    ok(&e, &kms, &["client", "bob"]);
    let sign = kms
        .requests()
        .into_iter()
        .skip(n)
        .find(|r| r["op"] == "Sign")
        .expect("a Sign");
    assert_eq!(sign["region"], "eu-west-1", "{sign}");
    assert_verifies(&e, "issued/bob.crt");
    let v = ok(&e, &kms, &["verify"]);
    assert!(v.contains("OK: the store is intact"), "{v}");
}

/// Independent verdicts on what a KMS CA signs: rustls-webpki validates the server and a
/// client (and sees the revocation in the KMS-signed CRL), pkilint finds nothing in the CA
/// certificate, the leaves and the CRL, and a real OpenVPN server accepts a KMS-CA client,
/// then refuses it as revoked after `vpnca revoke`.
#[test]
fn kms_ca_output_passes_webpki_pkilint_and_openvpn() {
    use common::openvpn::{ClientFiles, ExportedServer, handshake};
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    ok(&e, &kms, &["server", "vpn.example.com"]);
    ok(&e, &kms, &["client", "alice"]);
    ok(&e, &kms, &["client", "bob"]);
    ok(&e, &kms, &["crl"]);

    let server_auth = webpki::KeyUsage::server_auth;
    let client_auth = webpki::KeyUsage::client_auth;
    webpki_verify(&e, "issued/vpn.example.com.crt", server_auth(), true).expect("server");
    webpki_verify(&e, "issued/alice.crt", client_auth(), true).expect("alice");
    for f in [
        "ca.crt",
        "issued/vpn.example.com.crt",
        "issued/alice.crt",
        "crl.pem",
    ] {
        assert_lints_clean(&e, f);
    }

    let server = ExportedServer::export(&e, "vpn.example.com", "srv");
    let client = |name: &str| {
        e.ok(&["export", name, "--out", name, "--key"]);
        (
            e.path(&format!("{name}/{name}.crt")),
            e.path(&format!("{name}/{name}.key")),
        )
    };
    let ca = e.pki.join("ca.crt");
    let connect = |(cert, key): &(std::path::PathBuf, std::path::PathBuf)| {
        handshake(&server.files(), &ClientFiles { ca: &ca, cert, key })
    };
    let alice = client("alice");
    let bob = client("bob");
    let hs = connect(&alice);
    assert!(hs.ok, "alice before revocation:\n{hs}");

    ok(&e, &kms, &["revoke", "alice"]);
    let hs = connect(&alice);
    assert!(!hs.ok && hs.client_cert_revoked(), "alice revoked:\n{hs}");
    let hs = connect(&bob);
    assert!(hs.ok, "bob is not revoked:\n{hs}");
    assert_lints_clean(&e, "crl.pem");
    // webpki reads the KMS-signed CRL the same way (alice's certificate kept by export).
    assert!(
        matches!(
            webpki_verify(&e, "../alice/alice.crt", client_auth(), true),
            Err(webpki::Error::CertRevoked)
        ),
        "webpki: alice is revoked"
    );
    webpki_verify(&e, "issued/bob.crt", client_auth(), true).expect("bob");
}

/// moto 5.2.1's KMS as the happy path is not possible: it signs a `MessageType=DIGEST` message
/// as if it were RAW (hashing the digest again), so the signature vpnca asks for never
/// verifies. This pins that: boto3 shows moto's DIGEST signature is one over SHA-256 of the
/// digest, and `ca --kms-key` on a moto key is refused by vpnca's local verification (exit 3,
/// nothing stored) — the check that keeps a wrong KMS from publishing a bad CA. When a moto
/// release fixes DIGEST, this test fails: then moto can serve the happy path
/// (docs/testing.md).
#[test]
fn moto_signs_digest_messages_wrongly_and_vpnca_refuses_its_signatures() {
    let (moto, _guard) = common::aws::Moto::get();
    let found = common::aws::boto3(
        moto,
        &format!(
            r#"
import base64, hashlib
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
kms = boto3.client('kms', region_name='{region}', endpoint_url='{url}', aws_access_key_id='{ak}', aws_secret_access_key='{sk}')
k = kms.create_key(KeyUsage='SIGN_VERIFY', KeySpec='RSA_2048')['KeyMetadata']
pub = serialization.load_der_public_key(kms.get_public_key(KeyId=k['KeyId'])['PublicKey'])
digest = hashlib.sha256(b'tbs').digest()
sig = kms.sign(KeyId=k['KeyId'], Message=digest, MessageType='DIGEST', SigningAlgorithm='RSASSA_PKCS1_V1_5_SHA_256')['Signature']
def ok(msg):
    try:
        pub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256()); return True
    except Exception:
        return False
print(json.dumps({{"arn": k['Arn'], "signs_tbs": ok(b'tbs'), "signs_digest_as_raw": ok(digest)}}))
"#,
            region = common::aws::REGION,
            url = moto.url(),
            ak = common::aws::ACCESS_KEY,
            sk = common::aws::SECRET_KEY,
        ),
    );
    assert_eq!(
        found["signs_tbs"], false,
        "moto signs DIGEST correctly now: {found}"
    );
    assert_eq!(found["signs_digest_as_raw"], true, "{found}");

    let e = Env::init();
    let before = e.snapshot();
    let arn = found["arn"].as_str().expect("arn");
    let mut c = e.cmd(&["ca", "--kms-key", arn]);
    aws_env(&mut c, Some(moto), None);
    c.env("AWS_ENDPOINT_URL_KMS", moto.url());
    let err = expect_code(&["ca", "--kms-key", arn], c.output().expect("run"), 3);
    assert!(err.contains("does not verify"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused `ca` changed the store");
}

/// The serial of `cert` (under the store folder) as openssl prints it, normalized.
fn serial_of(e: &Env, cert: &str) -> String {
    common::norm_serial(&common::openssl_serial(&e.pki, cert))
}

/// `status --json`: its exit code and the `crl` `deferred` findings' serials (normalized).
fn deferred_findings(e: &Env, kms: &KmsServer) -> (Option<i32>, Vec<String>) {
    let o = run(e, kms, &["--json", "status"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("status --json");
    let serials = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["subject"] == "crl" && f["problem"] == "deferred")
        .map(|f| common::norm_serial(f["serial"].as_str().expect("serial")))
        .collect();
    (o.status.code(), serials)
}

/// Fails when: `Store::revoke` gives up the revocation when KMS cannot sign its CRL (exit 3,
/// alice still valid), or `status` does not report the deferred CRL (exit 0 meanwhile), or
/// `crl`/`push-crl` publish the CRL that omits alice.
#[test]
fn a_revocation_is_recorded_when_its_crl_cannot_be_signed() {
    let kms = KmsServer::start();
    let (e, key) = kms_ca(&kms);
    let arn = key["Arn"].as_str().expect("arn");
    ok(&e, &kms, &["client", "alice"]);
    ok(&e, &kms, &["client", "bob"]);
    ok(&e, &kms, &["crl"]);
    let alice = serial_of(&e, "issued/alice.crt");
    std::fs::copy(e.pki.join("issued/alice.crt"), e.path("alice.crt")).expect("copy");
    let crl_before = std::fs::read(e.pki.join("crl.pem")).expect("crl.pem");

    // The key is disabled: the revocation is recorded, no CRL is signed, exit 3.
    kms.set_state(arn, "Disabled");
    let o = run(&e, &kms, &["--json", "revoke", "alice"]);
    let err = common::s(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("NO CRL WAS SIGNED") && err.contains("vpnca crl") && err.contains(arn),
        "the warning says what happened, why and what to run: {err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("revoke --json");
    assert!(v["crl"].is_null(), "{v}");
    assert_eq!(v["revoked"][0]["status"], "revoked", "{v}");
    let deferred: Vec<String> = v["crl_deferred"]["serials"]
        .as_array()
        .expect("crl_deferred.serials")
        .iter()
        .map(|s| common::norm_serial(s.as_str().expect("serial")))
        .collect();
    assert_eq!(deferred, std::slice::from_ref(&alice), "{v}");
    assert!(err.contains(v["crl_deferred"]["serials"][0].as_str().expect("serial")));
    // Recorded and audited: alice is revoked, the log has the revocation and the deferral.
    let show = ok(&e, &kms, &["--json", "list", "--status", "revoked"]);
    assert!(show.contains("alice"), "{show}");
    let log = ok(&e, &kms, &["log"]);
    assert!(
        log.contains("revoke") && log.contains("crl-deferred"),
        "{log}"
    );
    // crl.pem is the CRL of before (openssl: CRL #1, no entry), not a new one.
    assert_eq!(
        std::fs::read(e.pki.join("crl.pem")).expect("crl.pem"),
        crl_before
    );
    let (number, entries) = common::crl_by_openssl(&e);
    assert_eq!(number, 1);
    assert!(entries.is_empty(), "{entries:?}");

    // Until a CRL lists alice: status reports it (exit 1), naming her serial.
    assert_eq!(deferred_findings(&e, &kms), (Some(1), vec![alice.clone()]));
    // `crl --out` with the key still disabled: exit 3, nothing written anywhere.
    let err = fails(&e, &kms, &["crl", "--out", "out.pem"], 3);
    assert!(err.contains(arn), "{err}");
    assert!(!e.path("out.pem").exists(), "no CRL was written to --out");
    // push-crl cannot sign the CRL that lists alice: nothing is uploaded.
    assert_push_crl_uploads_nothing(&e, &kms);

    // KMS signs again: status still reports it (nothing signed yet); verify finds no
    // integrity problem and says so; `vpnca crl` signs CRL #2, which lists alice.
    kms.set_state(arn, "Enabled");
    assert_eq!(deferred_findings(&e, &kms), (Some(1), vec![alice.clone()]));
    let o = run(&e, &kms, &["verify"]);
    let text = format!("{}{}", common::s(&o.stdout), common::s(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("the CRL was deferred"),
        "verify says so: {text}"
    );
    ok(&e, &kms, &["crl", "--out", "out.pem"]);
    let (number, entries) = common::crl_by_openssl(&e);
    assert_eq!(number, 2);
    assert_eq!(entries.keys().collect::<Vec<_>>(), [&alice]);
    let text = common::crl_verified_text(&e.pki, "../out.pem", "ca.crt");
    assert!(text.contains(&format!("Serial Number: {alice}")), "{text}");
    assert_revoked_by_openssl(&e, "alice.crt");
    assert_eq!(deferred_findings(&e, &kms), (Some(0), vec![]));
    ok(&e, &kms, &["verify"]);
}

/// Fails when: a revocation made while KMS cannot be reached is not recorded, or the next
/// revocation that reaches KMS does not sign a CRL listing both.
#[test]
fn kms_unreachable_at_revoke_then_the_next_revoke_signs_both() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    ok(&e, &kms, &["client", "alice"]);
    ok(&e, &kms, &["client", "bob"]);
    ok(&e, &kms, &["crl"]);
    let (alice, bob) = (
        serial_of(&e, "issued/alice.crt"),
        serial_of(&e, "issued/bob.crt"),
    );
    // Nothing listens there: every attempt fails to connect, and is retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut c = e.cmd(&["revoke", "alice"]);
    aws_env(&mut c, None, None);
    c.env("AWS_ENDPOINT_URL_KMS", format!("http://127.0.0.1:{port}"));
    let o = c.output().expect("run");
    let err = common::s(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("NO CRL WAS SIGNED"), "{err}");
    assert_eq!(deferred_findings(&e, &kms), (Some(1), vec![alice.clone()]));
    let (number, entries) = common::crl_by_openssl(&e);
    assert!(number == 1 && entries.is_empty(), "{entries:?}");

    // KMS is back: bob's revocation signs the CRL, which lists alice too.
    ok(&e, &kms, &["revoke", "bob"]);
    let (number, entries) = common::crl_by_openssl(&e);
    assert_eq!(number, 2);
    let mut want = vec![alice, bob];
    want.sort();
    assert_eq!(entries.into_keys().collect::<Vec<_>>(), want);
    assert_eq!(deferred_findings(&e, &kms), (Some(0), vec![]));
}

/// [`kms_ca`] with a client certificate for each of `users`.
fn kms_ca_with_clients(kms: &KmsServer, users: &[&str]) -> (Env, serde_json::Value) {
    let (e, key) = kms_ca(kms);
    for u in users {
        ok(&e, kms, &["client", u]);
    }
    (e, key)
}

/// The serials of `users`' certificates as openssl reads them, normalized and sorted.
fn serials_of(e: &Env, users: &[&str]) -> Vec<String> {
    let mut serials: Vec<String> = users
        .iter()
        .map(|u| serial_of(e, &format!("issued/{u}.crt")))
        .collect();
    serials.sort();
    serials
}

/// `push-crl` to a fresh endpoint with `kms` as KMS: exit 3 and nothing uploaded (it cannot
/// sign the CRL that lists the deferred revocations).
fn assert_push_crl_uploads_nothing(e: &Env, kms: &KmsServer) {
    let endpoint = "cvpn-endpoint-0123456789abcdef0";
    let ec2 = common::aws::Ec2Server::with_state(&json!({"endpoints": [{"id": endpoint}]}));
    let mut c = e.cmd(&["clientvpn", "push-crl", "--endpoint", endpoint]);
    aws_env(&mut c, None, Some(&ec2));
    c.env("AWS_ENDPOINT_URL_KMS", kms.url());
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(3), "{}", common::s(&o.stderr));
    assert!(
        ec2.crl(endpoint).is_none(),
        "push-crl uploaded a CRL that does not list the deferred revocations"
    );
}

/// The serials (normalized, sorted) of a JSON `crl_deferred` object.
fn deferred_serials(v: &serde_json::Value) -> Vec<String> {
    let mut serials: Vec<String> = v["crl_deferred"]["serials"]
        .as_array()
        .unwrap_or_else(|| panic!("no crl_deferred.serials in {v}"))
        .iter()
        .map(|s| common::norm_serial(s.as_str().expect("serial")))
        .collect();
    serials.sort();
    serials
}

/// `vpnca crl` with KMS healthy: CRL #`number`, whose openssl text (its signature verified
/// against ca.crt: `verify OK`) lists exactly `serials`; then `status` is clean.
fn assert_crl_signs_the_deferred(e: &Env, kms: &KmsServer, number: u64, serials: &[String]) {
    let out = ok(e, kms, &["crl"]);
    assert!(out.contains(&format!("Wrote CRL #{number}")), "{out}");
    let text = crl_verified_text(&e.pki, "crl.pem", "ca.crt");
    for s in serials {
        assert!(text.contains(&format!("Serial Number: {s}")), "{s}: {text}");
    }
    let (n, entries) = common::crl_by_openssl(e);
    assert_eq!(n, number);
    assert_eq!(entries.into_keys().collect::<Vec<_>>(), serials);
    assert_eq!(deferred_findings(e, kms), (Some(0), vec![]));
    ok(e, kms, &["verify"]);
}

/// Fails when: `revoke --batch` of a KMS CA signs its CRL inside the transaction again (a
/// disabled key: exit 3 with nothing revoked), or does not defer its CRL (no `crl_deferred`,
/// status clean), or `crl` later misses one of the batch's serials.
#[test]
fn a_batch_revocation_is_recorded_when_its_crl_cannot_be_signed() {
    let kms = KmsServer::start();
    let (e, key) = kms_ca_with_clients(&kms, &["alice", "bob", "carol", "dave"]);
    let arn = key["Arn"].as_str().expect("arn");
    ok(&e, &kms, &["crl"]);
    let crl_before = std::fs::read(e.pki.join("crl.pem")).expect("crl.pem");
    let want = serials_of(&e, &["alice", "bob", "carol"]);
    let carol = serial_of(&e, "issued/carol.crt");
    std::fs::write(
        e.path("leavers.csv"),
        format!("name,serial\nalice,\nbob,\n,{carol}\nnobody,\n"),
    )
    .expect("csv");

    kms.set_state(arn, "Disabled");
    let o = run(&e, &kms, &["--json", "revoke", "--batch", "leavers.csv"]);
    let err = common::s(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("NO CRL WAS SIGNED") && err.contains("vpnca crl") && err.contains(arn),
        "the warning says what happened, why and what to run: {err}"
    );
    let stdout = common::s(&o.stdout);
    let last: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a last line")).expect("json");
    assert!(last["crl"].is_null(), "{last}");
    assert_eq!((&last["revoked"], &last["unknown"]), (&json!(3), &json!(1)));
    assert_eq!(deferred_serials(&last), want, "{last}");
    // Recorded and audited: the three are revoked, dave is not.
    let list = ok(&e, &kms, &["--json", "list", "--status", "revoked"]);
    for u in ["alice", "bob", "carol"] {
        assert!(list.contains(&format!("\"{u}\"")), "{u}: {list}");
    }
    assert!(!list.contains("dave"), "{list}");
    let log = ok(&e, &kms, &["log"]);
    assert!(log.contains("crl-deferred"), "{log}");
    assert_eq!(
        std::fs::read(e.pki.join("crl.pem")).expect("crl.pem"),
        crl_before,
        "crl.pem is the CRL of before"
    );
    let (status, mut findings) = deferred_findings(&e, &kms);
    findings.sort();
    assert_eq!((status, findings), (Some(1), want.clone()));
    assert_push_crl_uploads_nothing(&e, &kms);

    kms.set_state(arn, "Enabled");
    assert_crl_signs_the_deferred(&e, &kms, 2, &want);
}

/// Fails when: `renew --revoke-old` of a KMS CA gives up the renewal when KMS cannot sign the
/// CRL (a corrupt signature: exit 3, alice's old certificate still valid, no new one), or
/// does not defer the CRL (no `crl_deferred`, status clean).
#[test]
fn renew_revoke_old_keeps_the_renewal_when_its_crl_cannot_be_signed() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca_with_clients(&kms, &["alice"]);
    ok(&e, &kms, &["crl"]);
    let old = serial_of(&e, "issued/alice.crt");

    // The new certificate's Sign is correct; the CRL's comes back corrupt.
    kms.control("corrupt", &json!({"times": 1, "after": 1}));
    let o = run(&e, &kms, &["--json", "renew", "alice", "--revoke-old"]);
    let err = common::s(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("renew --json");
    assert!(
        err.contains("NO CRL WAS SIGNED")
            && err.contains(v["crl_deferred"]["serials"][0].as_str().expect("serial"))
            && err.contains("vpnca crl"),
        "{err}"
    );
    assert!(v["crl"].is_null(), "{v}");
    assert_eq!(deferred_serials(&v), std::slice::from_ref(&old), "{v}");
    assert_eq!(
        (&v["old"]["status"], &v["new"]["status"]),
        (&json!("revoked"), &json!("valid")),
        "{v}"
    );
    // The new certificate is issued (openssl verifies it); the old one is revoked.
    let new = serial_of(&e, "issued/alice.crt");
    assert_ne!(new, old);
    assert_verifies(&e, "issued/alice.crt");
    let list = ok(&e, &kms, &["--json", "list", "--status", "revoked"]);
    assert!(list.contains(&v["old"]["serial"].as_str().expect("serial").to_string()));
    assert_eq!(deferred_findings(&e, &kms), (Some(1), vec![old.clone()]));
    let (number, entries) = common::crl_by_openssl(&e);
    assert!(number == 1 && entries.is_empty(), "{entries:?}");

    assert_crl_signs_the_deferred(&e, &kms, 2, &[old]);
}

/// Fails when: `revoke --batch` of a KMS CA signs its CRL inside the store's write lock (carol
/// cannot be issued until the batch's slow Sign ends: the batch's CRL is then signed once,
/// not dropped and redone), or commits a CRL signed against a state that moved meanwhile.
#[test]
fn a_batch_crl_is_signed_outside_the_lock_and_redone_when_the_store_moved() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca_with_clients(&kms, &["alice", "bob"]);
    let want = serials_of(&e, &["alice", "bob"]);
    std::fs::write(e.path("leavers.csv"), "name\nalice\nbob\n").expect("csv");
    // The batch's first KMS call is its CRL's Sign (the revocations need none): answered
    // after 6 s; carol's at once.
    let slow = spawn_delayed(&e, &kms, &["revoke", "--batch", "leavers.csv"], 6);
    ok(&e, &kms, &["client", "carol"]);
    let o = slow.wait_with_output().expect("wait");
    let out = common::s(&o.stdout);
    assert!(o.status.success(), "{}", common::s(&o.stderr));
    assert!(out.contains("2 certificate(s) revoked"), "{out}");
    // The CRL signed before carol was issued was dropped and signed again: the CA, the
    // state-signing key, alice, bob, the slow CRL, carol, the CRL redone.
    let signs = kms.ops().iter().filter(|o| *o == "Sign").count();
    assert_eq!(
        signs, 7,
        "the batch's CRL was signed once: carol waited for the batch's lock"
    );
    let (number, entries) = common::crl_by_openssl(&e);
    assert_eq!(number, 1);
    assert_eq!(entries.into_keys().collect::<Vec<_>>(), want);
    assert_verifies(&e, "issued/carol.crt");
    ok(&e, &kms, &["verify"]);
}

/// Fails when: `vpnca crl` signs inside the store's write lock for a KMS CA (bob's revoke
/// waits for its slow Sign), or commits a CRL signed against a state that moved meanwhile
/// (CRL #1 twice, or a CRL #2 that does not list bob).
#[test]
fn a_slow_crl_sign_does_not_hold_the_lock_and_is_redone_when_the_store_moved() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    ok(&e, &kms, &["client", "alice"]);
    ok(&e, &kms, &["client", "bob"]);
    let bob = serial_of(&e, "issued/bob.crt");
    // The `crl`'s Sign is answered after 4 s; bob's revocation's at once.
    let mut slow = spawn_delayed(&e, &kms, &["crl"], 4);
    let out = ok(&e, &kms, &["revoke", "bob"]);
    assert!(out.contains("Wrote CRL #1"), "{out}");
    assert!(
        slow.try_wait().expect("try_wait").is_none(),
        "bob's revocation was made only after the slow CRL Sign ended: the store was locked meanwhile"
    );
    let o = slow.wait_with_output().expect("wait");
    let out = common::s(&o.stdout);
    assert!(o.status.success(), "{}", common::s(&o.stderr));
    // Signed against the state before bob's revocation: dropped, made again as CRL #2.
    assert!(out.contains("Wrote CRL #2 with 1 entries"), "{out}");
    let (number, entries) = common::crl_by_openssl(&e);
    assert_eq!(number, 2);
    assert_eq!(entries.into_keys().collect::<Vec<_>>(), [bob]);
    let signs = kms.ops().iter().filter(|o| *o == "Sign").count();
    // The CA, the state-signing key, alice, bob, the slow CRL, bob's CRL, the CRL redone.
    assert_eq!(signs, 7);
    ok(&e, &kms, &["verify"]);
}

/// A batch with the CA key in KMS keeps more `Sign` calls in flight than there are cores by
/// default (each thread waits for its Sign's round trip; the others generate keys meanwhile):
/// with every Sign answered after 1 s, the test server sees more calls at once than this
/// machine's cores, and every certificate verifies with openssl. `--jobs 1` still means one.
///
/// Fails when: the default is one thread per core, as before 2026-12-04 (at most as many
/// calls at once as cores; the idle benchmark's KMS batch was then 73 % of the local rate).
#[test]
fn a_kms_batch_overlaps_its_sign_round_trips_by_default() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let users: Vec<String> = (1..=2 * cores + 2).map(|i| format!("u{i}")).collect();
    let most_at_once = |args: &[&str]| -> i64 {
        control_clear(&kms);
        kms.control("delay", &json!({"seconds": 1.0, "times": 1000}));
        ok(&e, &kms, args);
        kms.control("delay", &json!({"seconds": 0, "times": 0}));
        let signs: Vec<serde_json::Value> = kms
            .requests()
            .into_iter()
            .filter(|r| r["op"] == "Sign")
            .collect();
        assert!(signs.iter().all(|r| r["status"] == 200), "{signs:?}");
        signs
            .iter()
            .map(|r| r["in_flight"].as_i64().expect("in_flight"))
            .max()
            .expect("Sign calls")
    };
    std::fs::write(e.path("a.csv"), format!("name\n{}\n", users.join("\n"))).expect("csv");
    let most = most_at_once(&["client", "--batch", "a.csv", "--algo", "p256"]);
    assert!(
        most > cores as i64 && most <= (2 * cores).min(16) as i64,
        "{most} Sign calls at once with {cores} core(s)"
    );
    for u in &users {
        assert_verifies(&e, &format!("issued/{u}.crt"));
    }
    std::fs::write(e.path("b.csv"), "name\nv1\nv2\nv3\n").expect("csv");
    let most = most_at_once(&[
        "client", "--batch", "b.csv", "--algo", "p256", "--jobs", "1",
    ]);
    assert_eq!(most, 1, "--jobs 1");
}

/// A batch against a KMS that throttles every third Sign: every certificate is issued (each
/// verified by openssl), and the summary counts the throttled attempts exactly as the test
/// server answered them (its request log), with one signature per certificate.
///
/// Fails when: the batch summary leaves out the KMS line, or counts from another client than
/// the one that signed (seen with `CaKey::kms` connecting its own client: "0 signature(s)").
#[test]
fn a_batch_under_throttling_issues_everything_and_counts_the_throttling() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    kms.control("throttle", &json!({"every": 3, "ops": ["Sign"]}));
    std::fs::write(e.path("team.csv"), "name\nt1\nt2\nt3\nt4\nt5\nt6\n").expect("csv");
    let out = ok(&e, &kms, &["client", "--batch", "team.csv", "--jobs", "2"]);
    for u in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        assert_verifies(&e, &format!("issued/{u}.crt"));
    }
    let throttled = kms
        .requests()
        .iter()
        .filter(|r| r["op"] == "Sign" && r["error"] == "ThrottlingException")
        .count();
    assert!(throttled >= 2, "the server throttled: {throttled}");
    let line = out
        .lines()
        .find(|l| l.starts_with("KMS: "))
        .unwrap_or_else(|| panic!("no KMS line in:\n{out}"));
    assert!(
        line.starts_with("KMS: 6 signature(s) in ")
            && line.contains(&format!("; {throttled} throttled and retried")),
        "{line} (the server throttled {throttled})"
    );
}

// ---- A sub-CA whose key is in KMS (`ca --sub-ca --csr-out FILE --kms-key/--kms-create`) ----

/// The extensions a corporate root gives the sub-CA it signs.
const CORP_SUB_CA_EXT: &str = "basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
";

/// A corporate root made with the openssl CLI in `dir` (`root.crt`, `root.key`) and the
/// extension file it signs sub-CAs with (`subca.ext`).
fn corporate_root(dir: &std::path::Path) {
    common::openssl_req(
        dir,
        common::RSA_2048,
        "Corp Root",
        "root.key",
        "root.crt",
        &[
            "-x509",
            "-days",
            "30",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    std::fs::write(dir.join("subca.ext"), CORP_SUB_CA_EXT).expect("write ext");
}

/// The corporate root of [`corporate_root`] signs the request `csr` into `out`.
fn corporate_root_signs(dir: &std::path::Path, csr: &str, out: &str) {
    let args = [
        "-set_serial",
        "0x2001",
        "-days",
        "30",
        "-extfile",
        "subca.ext",
    ];
    common::openssl_sign_req(dir, csr, "root.crt", "root.key", out, &args);
}

/// The public key (PEM) of the private key the server holds for `key`.
fn server_public_key(e: &Env, key: &serde_json::Value) -> String {
    std::fs::write(
        e.path("kms.key"),
        key["privateKeyPem"].as_str().expect("pem"),
    )
    .expect("key");
    openssl_ok(&["pkey", "-in", "kms.key", "-pubout"], e.dir.path())
}

/// Forgets the server's request log.
fn control_clear(kms: &KmsServer) {
    let (st, body) = common::aws::http(kms.port, "DELETE", "/_test/requests", "");
    assert_eq!(st, 200, "{body}");
}

/// The base64 SHA-256 of the TBSCertificate of `cert` (in `dir`): the digest KMS is asked to
/// sign for it.
fn tbs_digest_b64(dir: &std::path::Path, cert: &str) -> String {
    openssl_ok(
        &[
            "asn1parse",
            "-in",
            cert,
            "-strparse",
            "4",
            "-noout",
            "-out",
            "tbs.der",
        ],
        dir,
    );
    openssl_ok(
        &[
            "dgst",
            "-sha256",
            "-binary",
            "-out",
            "tbs.sha256",
            "tbs.der",
        ],
        dir,
    );
    openssl_ok(&["base64", "-A", "-in", "tbs.sha256"], dir)
        .trim()
        .to_owned()
}

/// `ca --sub-ca --csr-out FILE --kms-key KEY`: one KMS Sign makes the CSR, which openssl
/// verifies and whose key is the KMS key; a corporate root made with openssl signs it; a
/// certificate for another key and an edited pending reference are refused (exit 2, store
/// bytes unchanged); the import checks the key in KMS (GetPublicKey) and the sub-CA signs a
/// client (its TBS digest is what the server was asked to Sign) that `openssl verify` chains to
/// the root, and a CRL that verifies.
///
/// Fails when: `import_sub_ca_cert` skips its public-key check for a KMS request (other.crt
/// is imported), or the pending reference is not sealed (the edit is imported).
#[test]
fn a_kms_sub_ca_signed_by_a_corporate_root_issues_through_kms() {
    let kms = KmsServer::start();
    let key = kms.add_key(&json!({"spec": "RSA_2048", "aliases": ["alias/vpn-sub"]}));
    let arn = key["Arn"].as_str().expect("arn");
    let e = Env::init();
    let dir = e.dir.path();
    corporate_root(dir);

    let args = [
        "ca",
        "--sub-ca",
        "--csr-out",
        "sub.csr",
        "--cn",
        "KMS Sub CA",
        "--kms-key",
        "alias/vpn-sub",
    ];
    // A signature that does not verify: refused (exit 3), no request recorded or written.
    kms.control("corrupt", &json!({"times": 1}));
    let before = e.snapshot();
    fails(&e, &kms, &args, 3);
    assert_eq!(e.snapshot(), before, "a refused request changed the store");
    assert!(!e.path("sub.csr").exists(), "no request file");
    control_clear(&kms);
    ok(&e, &kms, &args);
    let signs = |kms: &KmsServer| -> Vec<serde_json::Value> {
        kms.requests()
            .into_iter()
            .filter(|r| r["op"] == "Sign")
            .collect()
    };
    assert_eq!(
        signs(&kms).len(),
        1,
        "one Sign makes the CSR: {:?}",
        kms.ops()
    );
    assert_eq!(common::mode(&e.path("sub.csr")) & 0o777, 0o644);
    let o = common::openssl(
        &["req", "-in", "sub.csr", "-noout", "-verify", "-subject"],
        dir,
    );
    let said = format!("{}{}", common::s(&o.stdout), common::s(&o.stderr));
    assert!(
        o.status.success()
            && said.lines().any(|l| {
                let l = l.trim();
                l == "verify OK" || l == "Certificate request self-signature verify OK"
            })
            && said.contains("CN = KMS Sub CA"),
        "{said}"
    );
    let csr_key = openssl_ok(&["req", "-in", "sub.csr", "-noout", "-pubkey"], dir);
    assert_eq!(
        csr_key,
        server_public_key(&e, &key),
        "the CSR's key is KMS's"
    );
    // The request file is never clobbered.
    let csr = std::fs::read(e.path("sub.csr")).expect("csr");
    fails(&e, &kms, &args, 2);
    assert_eq!(std::fs::read(e.path("sub.csr")).expect("csr"), csr);

    corporate_root_signs(dir, "sub.csr", "sub.crt");
    // A certificate for another key: refused, the store's files unchanged byte for byte.
    common::openssl_req(
        dir,
        common::RSA_2048,
        "KMS Sub CA",
        "other.key",
        "other.csr",
        &[],
    );
    corporate_root_signs(dir, "other.csr", "other.crt");
    let before = e.snapshot();
    let err = fails(
        &e,
        &kms,
        &["ca", "--import-cert", "other.crt", "--chain", "root.crt"],
        2,
    );
    assert!(err.contains("not the one in the pending request"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused import changed the store");

    // The pending request's key reference is sealed: an edit is refused.
    let blob = sqlite_query(&e, "SELECT hex(key_blob) FROM pending_ca")
        .trim()
        .to_owned();
    let mut edited = blob.clone().into_bytes();
    let last = edited.len() - 1;
    edited[last] = if edited[last] == b'0' { b'1' } else { b'0' };
    let edited = String::from_utf8(edited).expect("hex");
    sqlite(&e, &format!("UPDATE pending_ca SET key_blob = X'{edited}'"));
    let edited_store = e.snapshot();
    fails(
        &e,
        &kms,
        &["ca", "--import-cert", "sub.crt", "--chain", "root.crt"],
        2,
    );
    assert_eq!(
        e.snapshot(),
        edited_store,
        "a refused import changed the store"
    );
    sqlite(&e, &format!("UPDATE pending_ca SET key_blob = X'{blob}'"));

    let before_import = kms.requests().len();
    ok(
        &e,
        &kms,
        &["ca", "--import-cert", "sub.crt", "--chain", "root.crt"],
    );
    let import_ops: Vec<_> = kms.ops().split_off(before_import);
    assert!(
        import_ops.iter().any(|o| o == "GetPublicKey"),
        "the import asks KMS for the key: {import_ops:?}"
    );
    assert_eq!(
        sqlite_query(&e, "SELECT key_blob IS NULL FROM certs WHERE kind = 'ca'").trim(),
        "1",
        "the CA record has no key blob"
    );
    assert_eq!(cert_pubkey(dir, "sub.crt"), csr_key);

    ok(&e, &kms, &["client", "alice"]);
    let (verified, out) = openssl_verify(
        dir,
        &[
            "-CAfile",
            "root.crt",
            "-untrusted",
            "sub.crt",
            "pki/issued/alice.crt",
        ],
    );
    assert!(
        verified && out.contains("pki/issued/alice.crt: OK"),
        "{out}"
    );
    // alice's certificate was signed by KMS: the server was asked to sign its TBS digest.
    let digest = tbs_digest_b64(dir, "pki/issued/alice.crt");
    let last_sign = signs(&kms).pop().expect("a Sign");
    assert_eq!(last_sign["body"]["Message"], digest, "{last_sign}");
    assert_eq!(last_sign["body"]["KeyId"], arn);
    assert_eq!(last_sign["body"]["MessageType"], "DIGEST");

    ok(&e, &kms, &["crl"]);
    crl_verified_text(dir, "pki/crl.pem", "sub.crt");
    kms.assert_all_signed();
}

/// The key policy `--kms-create` gave the key, as the `--json` output's `key_policy`: the
/// caller may Sign, GetPublicKey and DescribeKey; and it is the policy CreateKey was sent.
fn assert_json_key_policy(doc: &serde_json::Value, kms: &KmsServer) {
    let policy = &doc["key_policy"];
    let caller = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .find(|s| s["Principal"]["AWS"] == "arn:aws:iam::111122223333:user/vpnca-test")
        .unwrap_or_else(|| panic!("no statement for the caller: {policy}"));
    let actions = caller["Action"].as_array().expect("actions");
    for a in ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"] {
        assert!(actions.contains(&json!(a)), "{a} in {caller}");
    }
    let sent = kms
        .requests()
        .into_iter()
        .rfind(|r| r["op"] == "CreateKey")
        .expect("CreateKey");
    let sent: serde_json::Value =
        serde_json::from_str(sent["body"]["Policy"].as_str().expect("policy")).expect("JSON");
    assert_eq!(policy, &sent, "the policy sent to CreateKey");
}

/// `ca --kms-create --json` (root) and `ca --sub-ca --csr-out FILE --kms-create --json` put
/// the key policy in the JSON document; the sub-CA's request is signed by the new key.
///
/// Fails when: `key_policy` is left out of either document.
#[test]
fn kms_create_json_carries_the_key_policy_for_a_root_and_a_sub_ca() {
    let kms = KmsServer::start();
    let e = Env::init();
    let o = run(&e, &kms, &["--json", "ca", "--kms-create"]);
    let out = expect_ok(&["--json", "ca", "--kms-create"], o);
    let doc: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_json_key_policy(&doc, &kms);
    assert!(doc["kms_key"]["arn"].is_string(), "{doc}");

    let e2 = Env::init();
    let args = [
        "--json",
        "ca",
        "--sub-ca",
        "--csr-out",
        "sub.csr",
        "--kms-create",
        "--kms-alias",
        "alias/vpn-sub-new",
    ];
    let out = expect_ok(&args, run(&e2, &kms, &args));
    let doc: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_json_key_policy(&doc, &kms);
    let key = server_key(&kms, "alias/vpn-sub-new");
    assert_eq!(doc["kms_key"]["arn"], key["Arn"], "{doc}");
    let csr_key = openssl_ok(
        &["req", "-in", "sub.csr", "-noout", "-pubkey"],
        e2.dir.path(),
    );
    assert_eq!(csr_key, server_public_key(&e2, &key));
}
