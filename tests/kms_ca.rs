//! A root CA whose key lives in KMS (issue 18), through the real binary against
//! tests/aws/kms_server.py: `vpnca ca --kms-key` makes it, and every certificate and CRL it
//! signs afterwards is a KMS `Sign` (DIGEST), each checked by openssl. Faults: a disabled key
//! and a corrupt signature end in exit 3 with the store unchanged; an edited key reference in
//! the database is refused (exit 2) before anything is sent to Sign. A revocation is the
//! exception: recorded when KMS cannot sign its CRL, which is deferred (exit 3, `status`
//! reports it) until a later command signs it; CRLs are signed outside the store's lock and
//! redone when the store moved meanwhile.

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
    let check = |cert: &str| {
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
    };
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

/// Fails when: `Store::issue` signs inside `Store::write` again (bob waited for alice's slow
/// Sign to end before he could lock the store).
#[test]
fn a_slow_kms_sign_does_not_hold_the_store_lock() {
    let kms = KmsServer::start();
    let (e, _) = kms_ca(&kms);
    // alice's Sign is answered after 4 s; bob's at once.
    kms.control("delay", &json!({"seconds": 4, "times": 1}));
    let mut c = e.cmd(&["client", "alice"]);
    aws_env(&mut c, None, None);
    c.env("AWS_ENDPOINT_URL_KMS", kms.url());
    let mut alice = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Until alice's Sign is on its way (the server logs it when it arrives).
    let t0 = std::time::Instant::now();
    while !kms.requests().iter().any(|r| r["delayed"].is_number()) {
        assert!(t0.elapsed().as_secs() < 30, "alice's Sign never arrived");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
    let ec2 = common::aws::Ec2Server::with_state(
        &json!({"endpoints": [{"id": "cvpn-endpoint-0123456789abcdef0"}]}),
    );
    let mut c = e.cmd(&[
        "clientvpn",
        "push-crl",
        "--endpoint",
        "cvpn-endpoint-0123456789abcdef0",
    ]);
    aws_env(&mut c, None, Some(&ec2));
    c.env("AWS_ENDPOINT_URL_KMS", kms.url());
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(3), "{}", common::s(&o.stderr));
    assert!(
        ec2.crl("cvpn-endpoint-0123456789abcdef0").is_none(),
        "push-crl uploaded a CRL that does not list alice"
    );

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
    let (verified, out) = openssl_verify(
        e.dir.path(),
        &[
            "-crl_check",
            "-CAfile",
            "pki/ca.crt",
            "-CRLfile",
            "pki/crl.pem",
            "alice.crt",
        ],
    );
    assert!(!verified && out.contains("certificate revoked"), "{out}");
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
    kms.control("delay", &json!({"seconds": 4, "times": 1}));
    let mut c = e.cmd(&["crl"]);
    aws_env(&mut c, None, None);
    c.env("AWS_ENDPOINT_URL_KMS", kms.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut slow = c.spawn().expect("spawn");
    let t0 = std::time::Instant::now();
    while !kms.requests().iter().any(|r| r["delayed"].is_number()) {
        assert!(t0.elapsed().as_secs() < 30, "the CRL's Sign never arrived");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
