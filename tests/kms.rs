//! A CA key in KMS (issue 18), the foundation: `vpnca::aws::kms` against
//! tests/aws/kms_server.py (every request's SigV4 checked by botocore). Certificates and CRLs
//! signed through `KmsSigner` with rcgen are checked by the openssl CLI; each fault (throttling,
//! key state, key usage, a corrupt signature, an unreachable endpoint, a digest of the wrong
//! length) ends in a clear error and no signature. The server's own checks are proven with an
//! independent client (boto3).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::aws::{ACCESS_KEY, KmsServer, REGION, SECRET_KEY};
use common::{cert_pubkey, crl_verified_text, openssl_ok, openssl_verify, s};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use serde_json::{Value, json};
use vpnca::Error;
use vpnca::aws::kms::{KeySpec, Kms, KmsKey, KmsSigner, RetryPolicy, StaticCredentials};

/// Quick retries, so the throttling and unreachable cases take milliseconds.
const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(40),
    call_timeout: Duration::from_secs(20),
};

fn client_for(url: &str) -> Kms {
    let creds = StaticCredentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.to_owned().into(),
        session_token: None,
    };
    Kms::with_credentials(url, REGION, creds)
        .expect("client")
        .with_policy(FAST)
}

fn client(server: &KmsServer) -> Kms {
    client_for(&server.url())
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name
        .push(DnType::CommonName, "KMS Test VPN CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.serial_number = Some(SerialNumber::from_slice(&[0x01, 0x18]));
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(365);
    p
}

/// Builds the CA certificate, a leaf and a CRL revoking the leaf (and 200 others: the CRL
/// is larger than KMS's 4,096-byte RAW limit) with `signer`; writes `ca.crt`, `leaf.crt`,
/// `crl.pem` to `dir`. rcgen's errors come back as vpnca's (`KmsSigner::explain`).
fn ca_leaf_crl(signer: &KmsSigner<'_>, dir: &Path) -> Result<usize, Error> {
    let ca = ca_params()
        .self_signed(signer)
        .map_err(|e| signer.explain(e))?;
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write ca.crt");
    let issuer = Issuer::new(ca_params(), signer);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut lp = CertificateParams::new(vec!["alice".to_owned()]).expect("leaf params");
    lp.distinguished_name.push(DnType::CommonName, "alice");
    lp.is_ca = IsCa::ExplicitNoCa;
    lp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    lp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    lp.use_authority_key_identifier_extension = true;
    lp.serial_number = Some(SerialNumber::from_slice(&[0x42, 0x42]));
    let now = time::OffsetDateTime::now_utc();
    lp.not_before = now - time::Duration::minutes(30);
    lp.not_after = now + time::Duration::days(30);
    let leaf = lp
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| signer.explain(e))?;
    std::fs::write(dir.join("leaf.crt"), leaf.pem()).expect("write leaf.crt");
    let mut revoked: Vec<RevokedCertParams> = (0..200u32)
        .map(|i| RevokedCertParams {
            serial_number: SerialNumber::from_slice(&(0x1000_0000 + i).to_be_bytes()),
            revocation_time: now - time::Duration::minutes(10),
            reason_code: Some(RevocationReason::Superseded),
            invalidity_date: None,
        })
        .collect();
    revoked.push(RevokedCertParams {
        serial_number: SerialNumber::from_slice(&[0x42, 0x42]),
        revocation_time: now - time::Duration::minutes(5),
        reason_code: Some(RevocationReason::KeyCompromise),
        invalidity_date: None,
    });
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::minutes(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from_slice(&[7]),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .map_err(|e| signer.explain(e))?;
    std::fs::write(dir.join("crl.pem"), crl.pem().expect("CRL PEM")).expect("write crl.pem");
    Ok(crl.der().len())
}

/// The Sign requests the server received: (MessageType, message length, error code).
fn sign_requests(server: &KmsServer) -> Vec<(String, usize, Option<String>)> {
    server
        .requests()
        .iter()
        .filter(|r| r["op"] == "Sign")
        .map(|r| {
            let msg = r["body"]["Message"].as_str().unwrap_or("");
            let len = msg.len() / 4 * 3 - msg.matches('=').count();
            (
                r["body"]["MessageType"]
                    .as_str()
                    .unwrap_or("RAW")
                    .to_owned(),
                len,
                r["error"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

// Fails when: the signer's algorithm does not match the key (planted: RSA announced as
// PKCS_RSA_SHA384) — openssl's verify reports a signature failure; or the public key is not
// KMS's (planted: P-256 announced as P-384, the certificate's key does not decode).
#[test]
fn ca_leaf_and_crl_signed_in_kms_verify_with_openssl() {
    for (spec, sig_name, digest_len) in [
        ("RSA_2048", "sha256WithRSAEncryption", 32),
        ("ECC_NIST_P256", "ecdsa-with-SHA256", 32),
        ("ECC_NIST_P384", "ecdsa-with-SHA384", 48),
    ] {
        let server = KmsServer::start();
        let key = server.add_key(&json!({"spec": spec, "aliases": ["alias/vpnca-ca"]}));
        let kms = client(&server);
        let signer = kms.signer("alias/vpnca-ca").expect("signer");
        assert_eq!(signer.key().arn(), key["Arn"].as_str().expect("arn"));
        assert_eq!(signer.key().spec(), KeySpec::from_kms(spec).expect("spec"));

        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let crl_len = ca_leaf_crl(&signer, d).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert!(
            crl_len > 4096,
            "{spec}: the CRL ({crl_len} bytes) should exceed the RAW limit"
        );

        // The CA's public key is the one the server holds the private half of.
        std::fs::write(
            d.join("kms.key"),
            key["privateKeyPem"].as_str().expect("pem"),
        )
        .expect("write key");
        let from_key = openssl_ok(&["pkey", "-in", "kms.key", "-pubout"], d);
        assert_eq!(cert_pubkey(d, "ca.crt"), from_key, "{spec}: CA public key");

        // openssl's verdicts, read as text.
        let (ok, out) = openssl_verify(d, &["-check_ss_sig", "-CAfile", "ca.crt", "ca.crt"]);
        assert!(ok && out.contains("ca.crt: OK"), "{spec}: {out}");
        let (ok, out) = openssl_verify(d, &["-CAfile", "ca.crt", "leaf.crt"]);
        assert!(ok && out.contains("leaf.crt: OK"), "{spec}: {out}");
        let crl = crl_verified_text(d, "crl.pem", "ca.crt");
        assert!(crl.contains("4242"), "{spec}: the leaf is listed: {crl}");
        let (ok, out) = openssl_verify(
            d,
            &[
                "-crl_check",
                "-CAfile",
                "ca.crt",
                "-CRLfile",
                "crl.pem",
                "leaf.crt",
            ],
        );
        assert!(
            !ok && out.contains("certificate revoked"),
            "{spec}: openssl should refuse the revoked leaf: {out}"
        );
        let text = openssl_ok(&["x509", "-in", "ca.crt", "-noout", "-text"], d);
        assert!(text.contains(sig_name), "{spec}: {text}");

        // One DescribeKey, one GetPublicKey, three Signs, each with a DIGEST of the hash's
        // length, all signed requests for the test region.
        server.assert_all_signed();
        assert_eq!(
            server.ops(),
            ["DescribeKey", "GetPublicKey", "Sign", "Sign", "Sign"],
            "{spec}"
        );
        for (mtype, len, err) in sign_requests(&server) {
            assert_eq!(
                (mtype.as_str(), len, err),
                ("DIGEST", digest_len, None),
                "{spec}"
            );
        }
        let stats = kms.stats();
        assert_eq!((stats.signatures, stats.throttled), (3, 0), "{spec}");
    }
}

// Fails when: ThrottlingException is not retried (planted: removed from the retryable
// codes) — the batch stops at the first throttled call.
#[test]
fn throttled_every_third_call_succeeds_and_counts_the_throttling() {
    let server = KmsServer::start();
    server.add_key(&json!({"spec": "ECC_NIST_P256", "aliases": ["alias/ca"]}));
    let kms = client(&server);
    let signer = kms.signer("alias/ca").expect("signer");
    server.control("throttle", &json!({"every": 3}));
    let dir = tempfile::tempdir().expect("tempdir");
    ca_leaf_crl(&signer, dir.path()).expect("signed despite throttling");
    let key = signer.key().clone();
    for i in 0..6u8 {
        kms.sign_digest(&key, &[i; 100]).expect("sign");
    }
    let throttled = server
        .requests()
        .iter()
        .filter(|r| r["error"] == "ThrottlingException")
        .count() as u64;
    let stats = kms.stats();
    assert!(throttled >= 3, "the server throttled {throttled} calls");
    assert_eq!(stats.throttled, throttled, "{stats:?}");
    assert_eq!(stats.signatures, 9, "{stats:?}");
    crl_verified_text(dir.path(), "crl.pem", "ca.crt");
}

// Fails when: retries never stop (the error below needs the attempts to run out), or the
// error does not name the key and the code.
#[test]
fn throttled_past_the_retries_is_a_clear_error() {
    let server = KmsServer::start();
    server.add_key(&json!({"spec": "RSA_2048", "aliases": ["alias/ca"]}));
    let kms = client(&server);
    let signer = kms.signer("alias/ca").expect("signer");
    server.control("throttle", &json!({"every": 1}));
    let e = kms
        .sign_digest(signer.key(), b"tbs")
        .expect_err("always throttled");
    let arn = signer.key().arn();
    assert_eq!(
        e.to_string(),
        format!(
            "KMS key {arn} is throttled: KMS refused the calls for their rate (ThrottlingException from Sign): Rate exceeded (after 4 attempts)"
        )
    );
    assert_eq!(kms.stats().throttled, 4);
}

/// Signing with a signer made while the key was enabled, after the key moved to `state`:
/// the error, and no signature.
fn sign_after_state_change(spec: &str, state: &str) -> (String, String, KmsServer) {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": spec}));
    let arn = key["Arn"].as_str().expect("arn").to_owned();
    let kms = client(&server);
    let signer = kms
        .signer(key["KeyId"].as_str().expect("id"))
        .expect("signer");
    server.set_state(&arn, state);
    let dir = tempfile::tempdir().expect("tempdir");
    let e = ca_leaf_crl(&signer, dir.path()).expect_err("the key cannot sign");
    assert!(!dir.path().join("ca.crt").exists(), "nothing was signed");
    assert_eq!(kms.stats().signatures, 0);
    (e.to_string(), arn, server)
}

// Fails when: the server signs with a disabled key (planted: `usable()` skipped in
// kms_server.py) — a CA certificate is written.
#[test]
fn disabled_key_is_refused_by_kms_and_by_the_client() {
    let (msg, arn, server) = sign_after_state_change("RSA_2048", "Disabled");
    assert_eq!(
        msg,
        format!("KMS key {arn} is disabled (DisabledException from Sign): {arn} is disabled.")
    );
    assert_eq!(
        sign_requests(&server).len(),
        1,
        "one Sign, refused, not retried"
    );
    // A signer is not even made for a disabled key: DescribeKey says so.
    let e = client(&server).signer(&arn).expect_err("disabled");
    assert_eq!(
        e.to_string(),
        format!(
            "KMS key {arn} is disabled (DisabledException from DescribeKey): the key cannot sign in this state; nothing was sent to Sign"
        )
    );
}

// Fails when: the server signs with a key pending deletion (planted as above).
#[test]
fn key_pending_deletion_is_refused() {
    let (msg, arn, server) = sign_after_state_change("ECC_NIST_P256", "PendingDeletion");
    assert_eq!(
        msg,
        format!(
            "KMS key {arn} is in a key state that does not allow this (KMSInvalidStateException from Sign): {arn} is PendingDeletion (operation Sign)."
        )
    );
    let e = client(&server).signer(&arn).expect_err("pending deletion");
    assert!(
        e.to_string()
            .starts_with(&format!("KMS key {arn} is pending deletion (")),
        "{e}"
    );
    assert!(matches!(e, Error::Kms { .. }), "{e:?}");
}

// Fails when: the usage check of `Kms::signing_key` is removed (planted: the key is then
// refused by the signing-algorithm check, with another message); or the server signs with
// an ENCRYPT_DECRYPT key (planted in kms_server.py).
#[test]
fn key_of_the_wrong_usage_is_refused() {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": "RSA_2048", "usage": "ENCRYPT_DECRYPT"}));
    let arn = key["Arn"].as_str().expect("arn");
    let kms = client(&server);
    let e = kms.signer(arn).expect_err("wrong usage");
    assert_eq!(
        e.to_string(),
        format!(
            "KMS key {arn} cannot sign for vpnca: its key usage is ENCRYPT_DECRYPT; a CA key needs SIGN_VERIFY"
        )
    );
    assert!(matches!(e, Error::KmsKeyUnsuitable { .. }));
    // KMS itself refuses too: a key rebuilt from recorded parts, as if its usage changed.
    let spki = kms.get_public_key(arn).expect("public key").spki_der;
    let k = KmsKey::from_parts(arn, KeySpec::Rsa2048, &spki).expect("parts");
    let e = kms.sign_digest(&k, b"tbs").expect_err("server refuses");
    assert_eq!(
        e.to_string(),
        format!(
            "KMS key {arn} cannot sign this way (its key usage or key spec does not allow the algorithm) (InvalidKeyUsageException from Sign): {arn} key usage is ENCRYPT_DECRYPT which is not valid for Sign."
        )
    );
    assert_eq!(kms.stats().signatures, 0);
}

// Fails when: the local verification is removed (planted: `Kms::verified` returns the
// signature unchecked) — the corrupt CA certificate is written.
#[test]
fn corrupt_signature_is_refused_by_local_verification() {
    for spec in ["RSA_2048", "ECC_NIST_P256"] {
        let server = KmsServer::start();
        let key = server.add_key(&json!({"spec": spec}));
        let arn = key["Arn"].as_str().expect("arn");
        let kms = client(&server);
        let signer = kms.signer(arn).expect("signer");
        server.control("corrupt", &json!({"times": 1}));
        let dir = tempfile::tempdir().expect("tempdir");
        let e = ca_leaf_crl(&signer, dir.path()).expect_err("corrupt signature");
        let alg = signer.key().spec().signing_algorithm();
        assert_eq!(
            e.to_string(),
            format!(
                "KMS key {arn} returned a {alg} signature that does not verify with the key's public key; it was refused and nothing was signed with it"
            )
        );
        assert!(
            !dir.path().join("ca.crt").exists(),
            "{spec}: nothing written"
        );
        assert_eq!(sign_requests(&server).len(), 1, "{spec}: KMS answered once");
        // The next signature is good again.
        ca_leaf_crl(&signer, dir.path()).expect("signs again");
        let (ok, out) = openssl_verify(dir.path(), &["-CAfile", "ca.crt", "leaf.crt"]);
        assert!(ok && out.contains("leaf.crt: OK"), "{spec}: {out}");
    }
}

// Fails when: network failures are not retried (planted: `retry` false for `Network`) — the
// message then has no "(after 4 attempts)"; or the error does not name the key.
#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}");
    let kms = client_for(&url);
    let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let arn = "arn:aws:kms:eu-west-1:111122223333:key/0f0e0d0c-0b0a-4908-a706-050403020100";
    let spki = rcgen::PublicKeyData::subject_public_key_info(&kp);
    let key = KmsKey::from_parts(arn, KeySpec::EccNistP256, &spki).expect("parts");
    let e = kms.sign_digest(&key, b"tbs").expect_err("unreachable");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "KMS key {arn} cannot be reached (Network from Sign): cannot reach {url}/: "
        )) && msg.ends_with("(after 4 attempts)"),
        "{msg}"
    );
    assert_eq!(kms.stats().requests, 4);
    let e = kms.describe_key("alias/ca").expect_err("unreachable");
    assert!(
        e.to_string()
            .starts_with("KMS key alias/ca cannot be reached (Network from DescribeKey)"),
        "{e}"
    );
}

// Fails when: `sign_prehashed` does not check the digest's length (planted) — the server's
// ValidationException comes back instead, after a request.
#[test]
fn digest_of_the_wrong_length_is_never_sent() {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": "ECC_NIST_P384"}));
    let kms = client(&server);
    let signer = kms
        .signer(key["KeyId"].as_str().expect("id"))
        .expect("signer");
    let before = server.requests().len();
    let e = kms
        .sign_prehashed(signer.key(), &[7u8; 32])
        .expect_err("a SHA-256 digest for a P-384 key");
    assert_eq!(
        e.to_string(),
        format!(
            "invalid digest: 32 bytes; KMS key {} signs ECDSA_SHA_384 digests of 48 bytes (nothing was sent)",
            signer.key().arn()
        )
    );
    assert!(matches!(e, Error::InvalidInput { .. }));
    assert_eq!(server.requests().len(), before, "nothing was sent");
    // The right length is signed, and verified against the digest.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, b"tbs");
    kms.sign_prehashed(signer.key(), digest.as_ref())
        .expect("a 48-byte digest");
    assert_eq!(sign_requests(&server), [("DIGEST".into(), 48, None)]);
}

/// Runs a boto3 script against the KMS server (an independent client); it prints JSON.
/// `code(f)` in the script calls `f` and gives `OK` or the AWS error code.
fn boto3_kms(server: &KmsServer, script: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    boto3_kms_in(server, script, dir.path())
}

/// [`boto3_kms`] run in `dir`.
fn boto3_kms_in(server: &KmsServer, script: &str, dir: &Path) -> Value {
    let prelude = format!(
        "import boto3, json, botocore\n\
         kms = boto3.client('kms', region_name='{REGION}', endpoint_url='{}', aws_access_key_id='{ACCESS_KEY}', aws_secret_access_key='{SECRET_KEY}', config=botocore.config.Config(retries={{'max_attempts': 1}}))\n\
         def code(f):\n    try:\n        f()\n        return 'OK'\n    except botocore.exceptions.ClientError as e:\n        return e.response['Error']['Code']\n",
        server.url()
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .current_dir(dir)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "boto3 script failed:\n{}\n{}",
        s(&o.stdout),
        s(&o.stderr)
    );
    serde_json::from_str(&s(&o.stdout)).expect("the script prints JSON")
}

// Fails when: the server accepts a RAW message over 4,096 bytes (planted: MAX_RAW raised in
// kms_server.py), or any other check below is removed — moto 5.2.1 fails the first three.
#[test]
fn server_refuses_what_kms_refuses() {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": "ECC_NIST_P256", "aliases": ["alias/ca"]}));
    let off = server.add_key(&json!({"spec": "RSA_2048", "state": "Disabled"}));
    let gone = server.add_key(&json!({"spec": "RSA_2048", "state": "PendingDeletion"}));
    let enc = server.add_key(&json!({"spec": "RSA_2048", "usage": "ENCRYPT_DECRYPT"}));
    let script = format!(
        "k, off, gone, enc = {}, {}, {}, {}\n\
         d = bytes(32)\n\
         sign = lambda key, m, t, a='ECDSA_SHA_256': (lambda: kms.sign(KeyId=key, Message=m, MessageType=t, SigningAlgorithm=a))\n\
         print(json.dumps({{\n\
         'raw_4097': code(sign(k, b'x' * 4097, 'RAW')),\n\
         'raw_4096': code(sign(k, b'x' * 4096, 'RAW')),\n\
         'digest_31': code(sign(k, bytes(31), 'DIGEST')),\n\
         'digest_32': code(sign(k, d, 'DIGEST')),\n\
         'alg_for_spec': code(sign(k, d, 'DIGEST', 'ECDSA_SHA_384')),\n\
         'rsa_alg_on_ec': code(sign(k, d, 'DIGEST', 'RSASSA_PKCS1_V1_5_SHA_256')),\n\
         'disabled': code(sign(off, d, 'DIGEST', 'RSASSA_PKCS1_V1_5_SHA_256')),\n\
         'disabled_pub': code(lambda: kms.get_public_key(KeyId=off)),\n\
         'disabled_describe': code(lambda: kms.describe_key(KeyId=off)),\n\
         'pending_deletion': code(sign(gone, d, 'DIGEST', 'RSASSA_PKCS1_V1_5_SHA_256')),\n\
         'encrypt_usage': code(sign(enc, d, 'DIGEST', 'RSASSA_PKCS1_V1_5_SHA_256')),\n\
         'unknown_key': code(lambda: kms.describe_key(KeyId='0f0e0d0c-0b0a-4908-a706-050403020100')),\n\
         'unknown_alias': code(lambda: kms.describe_key(KeyId='alias/nope')),\n\
         'bad_arn': code(lambda: kms.describe_key(KeyId='arn:aws:kms:eu-west-1:123:key/x')),\n\
         'other_region': code(lambda: kms.describe_key(KeyId=k.replace('{REGION}', 'us-east-1'))),\n\
         'by_alias_arn': code(lambda: kms.describe_key(KeyId='arn:aws:kms:{REGION}:111122223333:alias/ca')),\n\
         }}))\n",
        key["Arn"], off["Arn"], gone["KeyId"], enc["Arn"]
    );
    let got = boto3_kms(&server, &script);
    assert_eq!(
        got,
        json!({
            "raw_4097": "ValidationException",
            "raw_4096": "OK",
            "digest_31": "ValidationException",
            "digest_32": "OK",
            "alg_for_spec": "InvalidKeyUsageException",
            "rsa_alg_on_ec": "InvalidKeyUsageException",
            "disabled": "DisabledException",
            "disabled_pub": "DisabledException",
            "disabled_describe": "OK",
            "pending_deletion": "KMSInvalidStateException",
            "encrypt_usage": "InvalidKeyUsageException",
            "unknown_key": "NotFoundException",
            "unknown_alias": "NotFoundException",
            "bad_arn": "InvalidArnException",
            "other_region": "NotFoundException",
            "by_alias_arn": "OK",
        })
    );
    // botocore signed every request; the server checked each signature with botocore too.
    server.assert_all_signed();
    let raw = server
        .requests()
        .into_iter()
        .find(|r| r["error"] == "ValidationException")
        .expect("the RAW refusal");
    assert!(
        raw["message"]
            .as_str()
            .unwrap_or("")
            .ends_with("Member must have length less than or equal to 4096"),
        "{raw}"
    );
}

// Fails when: a request is not signed for service `kms` (the server answers
// InvalidSignatureException) — proves the server's SigV4 check is live for our client too.
#[test]
fn server_checks_the_signature() {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": "ECC_NIST_P256"}));
    let creds = StaticCredentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: "not-the-secret".to_owned().into(),
        session_token: None,
    };
    let kms = Kms::with_credentials(&server.url(), REGION, creds)
        .expect("client")
        .with_policy(FAST);
    let arn = key["Arn"].as_str().expect("arn");
    let e = kms.describe_key(arn).expect_err("wrong secret");
    assert!(
        e.to_string().starts_with(&format!(
            "KMS key {arn} cannot be used: KMS refused the credentials (InvalidSignatureException from DescribeKey): The request signature we calculated does not match"
        )),
        "{e}"
    );
    assert_eq!(server.requests()[0]["signature_ok"], false);
}

// Fails when: the per-attempt timeout is not applied (planted: `tokio::time::timeout`
// removed) — the call waits out the server's 3 s and succeeds, or is not retried.
#[test]
fn slow_kms_times_out_and_is_retried() {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": "ECC_NIST_P256"}));
    let slow = RetryPolicy {
        max_attempts: 2,
        call_timeout: Duration::from_millis(400),
        ..FAST
    };
    let kms = client(&server).with_policy(slow);
    let signer = kms
        .signer(key["Arn"].as_str().expect("arn"))
        .expect("signer");
    // One slow answer: the retry gets the signature.
    server.control("delay", &json!({"seconds": 3, "times": 1}));
    kms.sign_digest(signer.key(), b"tbs")
        .expect("the retry answers");
    // Two slow answers: both attempts time out.
    server.control("delay", &json!({"seconds": 3, "times": 2}));
    let started = std::time::Instant::now();
    let e = kms.sign_digest(signer.key(), b"tbs").expect_err("too slow");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout did not cut the wait"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "KMS key {} did not answer in time (Timeout from Sign): no answer from {}/ within 400 ms (after 2 attempts)",
            signer.key().arn(),
            server.url()
        )
    );
    assert_eq!(kms.stats().signatures, 1);
}

// Fails when: the server imports key material it should refuse (planted: the spec check of
// ImportKeyMaterial removed — a P-256 key imported into an RSA_2048 key), or signs with the
// wrong key after an import. The import is what `vpnca ca --move-to-kms` will do.
#[test]
fn imported_key_material_signs_what_the_old_key_verifies() {
    let server = KmsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // The "old" CA key, made by openssl, imported into a new EXTERNAL key by boto3.
    openssl_ok(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "old.key",
        ],
        d,
    );
    openssl_ok(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.key",
        ],
        d,
    );
    let script = "import os\n\
         from cryptography.hazmat.primitives import hashes, serialization\n\
         from cryptography.hazmat.primitives.asymmetric import padding\n\
         from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding\n\
         def wrapped(pem_path, params):\n    \
             key = serialization.load_pem_private_key(open(pem_path, 'rb').read(), None)\n    \
             der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())\n    \
             aes = os.urandom(32)\n    \
             pub = serialization.load_der_public_key(params['PublicKey'])\n    \
             return pub.encrypt(aes, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)) + aes_key_wrap_with_padding(aes, der)\n\
         out = {}\n\
         out['bad_policy'] = code(lambda: kms.create_key(KeySpec='RSA_2048', KeyUsage='SIGN_VERIFY', Policy='not json'))\n\
         md = kms.create_key(KeySpec='RSA_2048', KeyUsage='SIGN_VERIFY', Origin='EXTERNAL', Description='vpnca CA', Policy=json.dumps({'Version': '2012-10-17', 'Statement': []}))['KeyMetadata']\n\
         out['state'] = md['KeyState']\n\
         out['sign_before_import'] = code(lambda: kms.sign(KeyId=md['Arn'], Message=bytes(32), MessageType='DIGEST', SigningAlgorithm='RSASSA_PKCS1_V1_5_SHA_256'))\n\
         kms.create_alias(AliasName='alias/vpnca-moved', TargetKeyId=md['KeyId'])\n\
         out['alias_taken'] = code(lambda: kms.create_alias(AliasName='alias/vpnca-moved', TargetKeyId=md['KeyId']))\n\
         out['alias_reserved'] = code(lambda: kms.create_alias(AliasName='alias/aws/vpnca', TargetKeyId=md['KeyId']))\n\
         out['oaep_for_rsa'] = code(lambda: kms.get_parameters_for_import(KeyId=md['KeyId'], WrappingAlgorithm='RSAES_OAEP_SHA_256', WrappingKeySpec='RSA_4096'))\n\
         p = kms.get_parameters_for_import(KeyId='alias/vpnca-moved', WrappingAlgorithm='RSA_AES_KEY_WRAP_SHA_256', WrappingKeySpec='RSA_4096')\n\
         imp = lambda pem, **kw: (lambda: kms.import_key_material(KeyId=md['KeyId'], ImportToken=p['ImportToken'], EncryptedKeyMaterial=wrapped(pem, p), **kw))\n\
         out['expiring'] = code(imp('old.key', ExpirationModel='KEY_MATERIAL_EXPIRES', ValidTo=2000000000))\n\
         out['wrong_spec'] = code(imp('ec.key', ExpirationModel='KEY_MATERIAL_DOES_NOT_EXPIRE'))\n\
         out['import'] = code(imp('old.key', ExpirationModel='KEY_MATERIAL_DOES_NOT_EXPIRE'))\n\
         out['token_reused'] = code(imp('old.key', ExpirationModel='KEY_MATERIAL_DOES_NOT_EXPIRE'))\n\
         out['state_after'] = kms.describe_key(KeyId='alias/vpnca-moved')['KeyMetadata']['KeyState']\n\
         print(json.dumps(out))\n";
    let got = boto3_kms_in(&server, script, d);
    assert_eq!(
        got,
        json!({
            "bad_policy": "MalformedPolicyDocumentException",
            "state": "PendingImport",
            "sign_before_import": "KMSInvalidStateException",
            "alias_taken": "AlreadyExistsException",
            "alias_reserved": "InvalidAliasNameException",
            "oaep_for_rsa": "ValidationException",
            "expiring": "ValidationException",
            "wrong_spec": "IncorrectKeyMaterialException",
            "import": "OK",
            "token_reused": "InvalidImportTokenException",
            "state_after": "Enabled",
        })
    );
    // vpnca signs with the imported key through the alias; the certificate carries the old
    // key, and verifies.
    let kms = client(&server);
    let signer = kms.signer("alias/vpnca-moved").expect("signer");
    ca_leaf_crl(&signer, d).expect("signed with the imported key");
    let old = openssl_ok(&["pkey", "-in", "old.key", "-pubout"], d);
    assert_eq!(cert_pubkey(d, "ca.crt"), old);
    let (ok, out) = openssl_verify(d, &["-check_ss_sig", "-CAfile", "ca.crt", "leaf.crt"]);
    assert!(ok && out.contains("leaf.crt: OK"), "{out}");
    server.assert_all_signed();
}

// Fails when: every error is retried (planted: `retry` true for every code) — the refused
// Sign is sent again and succeeds; or a KMS internal error is not retried.
#[test]
fn internal_errors_are_retried_refusals_are_not() {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": "RSA_2048"}));
    let arn = key["Arn"].as_str().expect("arn");
    let kms = client(&server);
    let signer = kms.signer(arn).expect("signer");
    server.control(
        "fail",
        &json!({"op": "Sign", "code": "KMSInternalException", "status": 500, "times": 2}),
    );
    kms.sign_digest(signer.key(), b"tbs")
        .expect("the third attempt");
    server.control(
        "fail",
        &json!({"op": "Sign", "code": "AccessDeniedException", "message": "not allowed: kms:Sign"}),
    );
    let e = kms.sign_digest(signer.key(), b"tbs").expect_err("denied");
    assert_eq!(
        e.to_string(),
        format!(
            "KMS key {arn} may not be used with these credentials (access denied) (AccessDeniedException from Sign): not allowed: kms:Sign"
        )
    );
    let errors: Vec<_> = sign_requests(&server).into_iter().map(|r| r.2).collect();
    assert_eq!(
        errors,
        [
            Some("KMSInternalException".to_owned()),
            Some("KMSInternalException".to_owned()),
            None,
            Some("AccessDeniedException".to_owned()),
        ]
    );
}

// Fails when: a `Kms` shared by threads serializes their calls (the four slow answers would
// take 4 s), or loses one.
#[test]
fn threads_sharing_one_client_sign_concurrently() {
    let server = KmsServer::start();
    let key = server.add_key(&json!({"spec": "ECC_NIST_P256"}));
    let kms = client(&server);
    let signer = kms
        .signer(key["Arn"].as_str().expect("arn"))
        .expect("signer");
    server.control("delay", &json!({"seconds": 1, "times": 4}));
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let (kms, key) = (&kms, signer.key());
            scope.spawn(move || {
                for i in 0..3u8 {
                    kms.sign_digest(key, &[t, i]).expect("sign");
                }
            });
        }
    });
    let took = started.elapsed();
    assert_eq!(kms.stats().signatures, 12);
    assert!(
        took < Duration::from_millis(2500),
        "four 1 s answers took {took:?}: the calls did not overlap"
    );
}
