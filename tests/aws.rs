//! `vpnca acm`, `vpnca clientvpn`, `status --aws`: ACM against moto (checked with boto3 and
//! openssl), the Client VPN calls against tests/aws/ec2_server.py (every request's SigV4
//! signature checked by botocore), profiles through a real OpenVPN handshake, and every
//! pre-flight rule on inputs made by openssl.

mod common;

use common::aws::{Ec2Server, Moto, REGION, boto3, newer_copy_crl};
use common::openvpn::ExportedServer;
use common::{
    Env, RSA_2048, copy_dir, crl_verified_text, expect_code, fixture, mode, openssl_ok,
    openssl_req, s, snapshot_of, sqlite,
};
use serde_json::{Value, json};

const EP1: &str = "cvpn-endpoint-0123456789abcdef0";
const EP2: &str = "cvpn-endpoint-0123456789abcdef1";
const EP3: &str = "cvpn-endpoint-0123456789abcdef2";
const EP4: &str = "cvpn-endpoint-0123456789abcdef3";

/// A store with a CA, the server vpn.example.com, users alice and bob, and a CRL.
fn pki() -> Env {
    let e = Env::with_ca();
    e.ok(&["server", "vpn.example.com"]);
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["crl"]);
    e
}

/// The serial of a PEM certificate file, as openssl prints it (upper-case hex).
fn openssl_serial(e: &Env, file: &str) -> String {
    openssl_ok(&["x509", "-in", file, "-noout", "-serial"], e.dir.path())
        .trim()
        .trim_start_matches("serial=")
        .to_owned()
}

fn hex_eq(a: &str, b: &str) -> bool {
    let n = |x: &str| {
        x.chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>()
            .to_ascii_lowercase()
            .trim_start_matches('0')
            .to_owned()
    };
    n(a) == n(b)
}

fn import_server(e: &Env, moto: &Moto, extra: &[&str]) -> Value {
    let mut args = vec!["acm", "import", "--server", "vpn.example.com"];
    args.extend_from_slice(extra);
    e.aws_json(Some(moto), None, &args, 0).0
}

/// Imports the server certificate; returns the ARN.
fn server_arn(e: &Env, moto: &Moto) -> String {
    import_server(e, moto, &[])["arn"]
        .as_str()
        .expect("arn")
        .to_owned()
}

fn describe(moto: &Moto, arn: &str) -> Value {
    boto3(
        moto,
        &format!(
            "c = acm.describe_certificate(CertificateArn='{arn}')['Certificate']\n\
             g = acm.get_certificate(CertificateArn='{arn}')\n\
             t = acm.list_tags_for_certificate(CertificateArn='{arn}')['Tags']\n\
             print(json.dumps({{'domain': c['DomainName'], 'alg': c['KeyAlgorithm'], 'serial': (c['Serial'].replace(':', '') if ':' in c['Serial'] else format(int(c['Serial']), 'x')), \
             'cert': g['Certificate'], 'chain': g.get('CertificateChain'), 'tags': {{x['Key']: x.get('Value') for x in t}}, \
             'count': len(acm.list_certificates()['CertificateSummaryList'])}}))"
        ),
    )
}

/// DER of the first PEM block of `label` in `text`, via openssl (independent of our PEM code).
fn openssl_der(e: &Env, kind: &str, pem: &str) -> Vec<u8> {
    let f = e.path("openssl-in.pem");
    std::fs::write(&f, pem).expect("write");
    let out = e.path("openssl-out.der");
    openssl_ok(
        &[
            kind,
            "-in",
            f.to_str().unwrap_or(""),
            "-outform",
            "DER",
            "-out",
            out.to_str().unwrap_or(""),
        ],
        e.dir.path(),
    );
    std::fs::read(out).expect("read der")
}

#[test]
fn acm_import_sends_the_certificate_key_and_chain_and_records_the_arn() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let rep = import_server(&e, moto, &["--tag", "team=network"]);
    let arn = rep["arn"].as_str().expect("arn").to_owned();
    assert!(arn.starts_with(&format!("arn:aws:acm:{REGION}:")), "{arn}");
    assert_eq!(rep["reimported"], false);

    let d = describe(moto, &arn);
    assert_eq!(d["domain"], "vpn.example.com");
    assert_eq!(d["alg"], "RSA_2048");
    let crt = e.pki.join("issued/vpn.example.com.crt");
    assert!(hex_eq(
        d["serial"].as_str().unwrap_or(""),
        &openssl_serial(&e, crt.to_str().unwrap_or(""))
    ));
    // GetCertificate round trip: ACM holds exactly our certificate and our CA as the chain.
    assert_eq!(
        openssl_der(&e, "x509", d["cert"].as_str().unwrap_or("")),
        openssl_der(&e, "x509", &std::fs::read_to_string(&crt).expect("crt"))
    );
    // The chain starts with our CA (moto, like ACM, appends its own root after it) and
    // never holds the leaf.
    let chain = d["chain"].as_str().unwrap_or("");
    assert_eq!(
        openssl_der(&e, "x509", chain),
        openssl_der(
            &e,
            "x509",
            &std::fs::read_to_string(e.pki.join("ca.crt")).expect("ca")
        )
    );
    let leaf_b64: String = std::fs::read_to_string(&crt)
        .expect("crt")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let chain_b64: String = chain.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        !chain_b64.contains(&leaf_b64),
        "the leaf is not in the chain"
    );
    // Default tags name the tool, the CN and the serial; --tag adds one.
    assert_eq!(d["tags"]["vpnca:managed-by"], "vpnca");
    assert_eq!(d["tags"]["vpnca:cn"], "vpn.example.com");
    assert_eq!(d["tags"]["vpnca:serial"], rep["serial"]);
    assert_eq!(d["tags"]["team"], "network");

    // Recorded (offline list) and audited.
    let list = e.json(&["acm", "list"]);
    assert_eq!(list["imports"][0]["arn"], arn.as_str());
    assert_eq!(list["imports"][0]["role"], "server");
    assert!(e.ok(&["log"]).contains("acm-import"));
    // No key file was written anywhere: only the store holds the key.
    for (p, text) in snapshot_of(e.dir.path()) {
        assert!(
            !s(&text).contains("PRIVATE KEY-----"),
            "{} holds a key",
            p.display()
        );
    }
}

#[test]
fn renewal_reimports_into_the_same_arn_and_retags() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let first = import_server(&e, moto, &[]);
    let arn = first["arn"].as_str().expect("arn").to_owned();
    e.ok(&["renew", "vpn.example.com"]);
    let second = import_server(&e, moto, &[]);
    assert_eq!(second["arn"], arn.as_str(), "a renewal keeps the ARN");
    assert_eq!(second["reimported"], true);
    assert_eq!(second["previous_serial"], first["serial"]);
    assert_ne!(second["serial"], first["serial"]);
    let d = describe(moto, &arn);
    assert_eq!(d["count"], 1, "no second ACM certificate");
    let crt = e.pki.join("issued/vpn.example.com.crt");
    assert!(hex_eq(
        d["serial"].as_str().unwrap_or(""),
        &openssl_serial(&e, crt.to_str().unwrap_or(""))
    ));
    assert_eq!(
        d["tags"]["vpnca:serial"], second["serial"],
        "serial tag follows the re-import"
    );

    // --new forces a new ARN; --arn targets one explicitly.
    let third = import_server(&e, moto, &["--new"]);
    assert_ne!(third["arn"], arn.as_str());
    let fourth = import_server(&e, moto, &["--arn", &arn]);
    assert_eq!(fourth["arn"], arn.as_str());
    assert_eq!(describe(moto, &arn)["count"], 2);
}

#[test]
fn acm_import_refuses_bad_arns_and_tags_before_any_call() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let before = e.snapshot();
    for (args, phrase) in [
        (
            vec!["--arn", "arn:aws:s3:::bucket"],
            "not an ACM certificate ARN",
        ),
        (
            vec![
                "--arn",
                "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            ],
            "region us-east-1",
        ),
        (vec!["--tag", "novalue"], "KEY=VALUE"),
        (vec!["--tag", "aws:name=x"], "reserved"),
        (vec!["--tag", "k=a;b"], "not allowed"),
        (
            vec!["--arn", "arn:aws:acm:eu-west-1:1:certificate/x", "--new"],
            "cannot be used with",
        ),
    ] {
        let mut a = vec!["acm", "import", "--server", "vpn.example.com"];
        a.extend(args);
        let err = e.aws_fails(Some(moto), None, &a, 2);
        assert!(err.contains(phrase), "{a:?}: {err}");
    }
    assert_eq!(e.snapshot(), before, "the store is unchanged");
    assert_eq!(describe_count(moto), 0, "nothing reached ACM");
}

fn describe_count(moto: &Moto) -> u64 {
    boto3(
        moto,
        "print(len(acm.list_certificates()['CertificateSummaryList']))",
    )
    .as_u64()
    .unwrap_or(99)
}

#[test]
fn acm_import_of_a_client_certificate_for_a_separate_client_ca() {
    let e = pki();
    e.ok(&["client", "clientvpn.example.com"]);
    let (moto, _g) = Moto::get();
    let (rep, _) = e.aws_json(
        Some(moto),
        None,
        &["acm", "import", "--client", "clientvpn.example.com"],
        0,
    );
    assert_eq!(rep["role"], "client");
    let d = describe(moto, rep["arn"].as_str().unwrap_or(""));
    assert_eq!(d["domain"], "clientvpn.example.com");
    // A client named like a user is no domain: ACM would refuse it.
    let err = e.aws_fails(Some(moto), None, &["acm", "import", "--client", "alice"], 2);
    assert!(err.contains("[domain-name]"), "{err}");
    // Roles are checked.
    let err = e.aws_fails(Some(moto), None, &["acm", "import", "--server", "alice"], 2);
    assert!(err.contains("client certificate"), "{err}");
}

#[test]
fn preflight_refuses_what_client_vpn_cannot_use_unless_forced() {
    let e = pki();
    e.ok(&["server", "big.example.com", "--algo", "rsa4096"]);
    e.ok(&["server", "vpn"]);
    let (moto, _g) = Moto::get();
    let before = e.snapshot();
    let err = e.aws_fails(
        Some(moto),
        None,
        &["acm", "import", "--server", "big.example.com"],
        2,
    );
    assert!(
        err.contains("[key-algorithm]") && err.contains("RSA 4096"),
        "{err}"
    );
    let err = e.aws_fails(Some(moto), None, &["acm", "import", "--server", "vpn"], 2);
    assert!(err.contains("[domain-name]"), "{err}");
    assert_eq!(e.snapshot(), before);
    assert_eq!(describe_count(moto), 0);
    let (rep, err) = e.aws_json(
        Some(moto),
        None,
        &["acm", "import", "--server", "big.example.com", "--force"],
        0,
    );
    assert!(err.contains("--force"));
    assert_eq!(
        describe(moto, rep["arn"].as_str().unwrap_or(""))["alg"],
        "RSA_4096"
    );
}

#[test]
fn missing_region_or_credentials_fail_before_any_work() {
    let e = pki();
    let before = e.snapshot();
    // No credentials: the message says so; the passphrase is never asked for.
    let mut c = e.cmd(&["acm", "import", "--server", "vpn.example.com"]);
    common::aws::aws_env(&mut c, None, None);
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("VPNCA_PASSPHRASE");
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", s(&o.stderr));
    assert!(
        s(&o.stderr).contains("no usable AWS credentials"),
        "{}",
        s(&o.stderr)
    );
    // No region.
    let mut c = e.cmd(&["clientvpn", "push-crl", "--endpoint", EP1]);
    common::aws::aws_env(&mut c, None, None);
    c.env_remove("AWS_REGION");
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(s(&o.stderr).contains("no AWS region"), "{}", s(&o.stderr));
    // A bad endpoint URL, a bad region, a bad endpoint id.
    for (extra, phrase) in [
        (
            &["--endpoint", EP1, "--endpoint-url", "ftp://x"][..],
            "endpoint URL",
        ),
        (&["--endpoint", EP1, "--region", "eu west"][..], "region"),
        (&["--endpoint", "vpn-1"][..], "not a Client VPN endpoint id"),
    ] {
        let mut args = vec!["clientvpn", "push-crl"];
        args.extend_from_slice(extra);
        let err = e.aws_fails(None, None, &args, 2);
        assert!(err.contains(phrase), "{args:?}: {err}");
    }
    assert_eq!(e.snapshot(), before);
}

#[test]
fn an_aws_error_is_reported_with_its_code_and_leaves_the_store_unchanged() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let before = e.snapshot();
    // ACM does not know this ARN.
    let err = e.aws_fails(
        Some(moto),
        None,
        &[
            "acm",
            "import",
            "--server",
            "vpn.example.com",
            "--arn",
            "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
        ],
        3,
    );
    assert!(err.contains("ImportCertificate failed"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY"),
        "no key material in errors: {err}"
    );
    assert_eq!(e.snapshot(), before);
    // Nothing listening: a network error, exit 3.
    let mut c = e.cmd(&["acm", "import", "--server", "vpn.example.com"]);
    common::aws::aws_env(&mut c, None, None);
    c.env("AWS_ENDPOINT_URL_ACM", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1");
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(3), "{}", s(&o.stderr));
    assert_eq!(e.snapshot(), before);
}

// ---- Client VPN -----------------------------------------------------------------------

fn endpoints_state(server_arn: &str, foreign_arn: &str) -> Value {
    json!({
        "pageSize": 2,
        "endpoints": [
            {"id": EP1, "serverCertificateArn": server_arn, "clientRootCertificateChainArn": server_arn,
             "authType": "certificate-authentication", "dnsName": "*.cvpn-endpoint-1.prod.clientvpn.eu-west-1.amazonaws.com"},
            {"id": EP2, "serverCertificateArn": server_arn, "clientRootCertificateChainArn": null,
             "authType": "federated-authentication", "dnsName": "*.cvpn-endpoint-2.prod.clientvpn.eu-west-1.amazonaws.com"},
            {"id": EP3, "serverCertificateArn": foreign_arn, "clientRootCertificateChainArn": foreign_arn,
             "authType": "certificate-authentication", "dnsName": "*.cvpn-endpoint-3.prod.clientvpn.eu-west-1.amazonaws.com"},
            {"id": EP4, "serverCertificateArn": server_arn, "clientRootCertificateChainArn": foreign_arn,
             "authType": "certificate-authentication", "dnsName": "*.cvpn-endpoint-4.prod.clientvpn.eu-west-1.amazonaws.com"},
        ]
    })
}

/// Imports a certificate of another CA (made by openssl) into moto; returns its ARN.
fn foreign_arn(e: &Env, moto: &Moto) -> String {
    let d = e.dir.path();
    let x509 = [
        "-x509",
        "-days",
        "30",
        "-addext",
        "subjectAltName=DNS:other.example.com",
    ];
    openssl_req(d, RSA_2048, "other.example.com", "f.key", "f.crt", &x509);
    let v = boto3(
        moto,
        &format!(
            "r = acm.import_certificate(Certificate=open('{0}/f.crt','rb').read(), PrivateKey=open('{0}/f.key','rb').read())\nprint(json.dumps(r['CertificateArn']))",
            d.display()
        ),
    );
    std::fs::remove_file(d.join("f.key")).ok();
    v.as_str().expect("arn").to_owned()
}

#[test]
fn push_crl_uploads_reads_back_and_records() {
    let e = pki();
    let ec2 = Ec2Server::with_state(
        &json!({"endpoints": [{"id": EP1, "serverCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x"}]}),
    );
    let bob = openssl_serial(&e, e.pki.join("issued/bob.crt").to_str().unwrap_or(""));
    e.ok(&["revoke", "bob"]);
    let (rep, err) = e.aws_json(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
        0,
    );
    assert!(err.contains("resets the current connections"));
    assert_eq!(rep["pushed"][0]["endpoint"], EP1);
    assert_eq!(rep["pushed"][0]["confirmed"], true);
    // Check before any change: the endpoint exists, and what it holds (a witness of a newer
    // CRL); then, after the commit: the witness again, upload, read back.
    assert_eq!(
        ec2.actions(),
        [
            "DescribeClientVpnEndpoints",
            "ExportClientVpnClientCertificateRevocationList",
            "ExportClientVpnClientCertificateRevocationList",
            "ImportClientVpnClientCertificateRevocationList",
            "ExportClientVpnClientCertificateRevocationList"
        ]
    );
    ec2.assert_all_signed();
    // The endpoint holds our CRL: same DER as crl.pem, signed by our CA, listing bob.
    assert!(
        endpoint_holds_crl_pem(&e, &ec2, EP1),
        "the endpoint does not hold crl.pem"
    );
    assert_endpoint_crl_lists(&e, &ec2, EP1, &bob);
    // Recorded and audited.
    let list = e.json(&["acm", "list"]);
    assert_eq!(list["endpoints"][0]["id"], EP1);
    assert!(e.ok(&["log"]).contains("push-crl"));
}

/// A store put back from an older copy, the whole directory (so neither the checkpoint nor
/// crl.pem betrays it): the endpoint still holds the newer CRL of this CA, and pushing the older
/// one would undo revocations. push-crl refuses; the endpoint keeps its CRL.
#[test]
fn push_crl_refuses_to_replace_a_newer_crl_of_this_ca() {
    let e = pki();
    let ec2 = Ec2Server::with_state(
        &json!({"endpoints": [{"id": EP1, "serverCertificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"}]}),
    );
    e.ok(&["crl"]);
    let backup = e.path("backup");
    copy_dir(&e.pki, &backup);
    e.ok(&["revoke", "bob"]);
    e.aws_ok(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
    );
    let held = ec2.crl(EP1).expect("pushed");
    std::fs::remove_dir_all(&e.pki).expect("rm");
    copy_dir(&backup, &e.pki);
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
        2,
    );
    assert!(
        err.contains("older copy") && err.contains(EP1) && err.contains("nothing was uploaded"),
        "{err}"
    );
    assert_eq!(
        ec2.crl(EP1).as_deref(),
        Some(held.as_str()),
        "the endpoint's CRL changed"
    );
    let first_push = ec2
        .actions()
        .iter()
        .rposition(|a| a.starts_with("Import"))
        .expect("the first push uploaded");
    assert!(
        !ec2.actions()
            .iter()
            .skip(first_push + 1)
            .any(|a| a.starts_with("Import")),
        "{:?}",
        ec2.actions()
    );
}

/// The store's latest CRL number, from `status --json` (exit 0 or 1).
fn crl_number(e: &Env) -> u64 {
    let st: Value = serde_json::from_str(&s(&e.run(&["--json", "status"]).stdout)).expect("json");
    st["crl_number"].as_u64().expect("a CRL number")
}

/// The endpoint's CRL and the store's crl.pem, both as DER by openssl.
fn endpoint_holds_crl_pem(e: &Env, ec2: &Ec2Server, endpoint: &str) -> bool {
    let ours = std::fs::read_to_string(e.pki.join("crl.pem")).expect("crl.pem");
    ec2.crl(endpoint)
        .is_some_and(|held| openssl_der(e, "crl", &held) == openssl_der(e, "crl", &ours))
}

/// The endpoint's CRL verifies with the store's CA (openssl) and lists `serial`.
fn assert_endpoint_crl_lists(e: &Env, ec2: &Ec2Server, endpoint: &str, serial: &str) {
    let held = ec2.crl(endpoint).expect("a CRL on the endpoint");
    std::fs::write(e.path("held.pem"), held).expect("write");
    let text = crl_verified_text(e.dir.path(), "held.pem", "pki/ca.crt");
    assert!(
        text.contains(serial),
        "the serial {serial} is not in the CRL:\n{text}"
    );
}

/// Issue 4, first part: for five minutes after a revocation every `push-crl` made a new CRL,
/// because it compared the revocation time with the CRL's back-dated thisUpdate. The CRL that
/// `revoke` wrote lists the revocation, so it is the one uploaded, on every run; `status` does
/// not call it stale either. The endpoint gets exactly `crl.pem`, which openssl reads with bob
/// in it.
///
/// Fails when: `crl_needs_regeneration` compares the last revocation with `this_update` again
/// (each run then reports `regenerated` and a higher number).
#[test]
fn push_crl_right_after_a_revocation_uploads_the_crl_revoke_wrote() {
    let e = pki();
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}]}));
    let bob = openssl_serial(&e, e.pki.join("issued/bob.crt").to_str().unwrap_or(""));
    let rev = e.json(&["revoke", "bob", "--reason", "keyCompromise"]);
    let n = rev["crl"]["number"].as_u64().expect("revoke wrote a CRL");
    let (dry, _) = e.aws_json(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1, "--dry-run"],
        0,
    );
    assert_eq!(dry["regenerate"], Value::Null, "{dry}");
    assert_eq!(dry["crl"]["number"].as_u64(), Some(n), "{dry}");
    for run in 1..=2 {
        let (rep, err) = e.aws_json(
            None,
            Some(&ec2),
            &["clientvpn", "push-crl", "--endpoint", EP1],
            0,
        );
        assert!(!err.contains("made CRL"), "run {run}: {err}");
        assert_eq!(rep["crl"]["regenerated"], Value::Null, "run {run}: {rep}");
        assert_eq!(rep["crl"]["number"].as_u64(), Some(n), "run {run}: {rep}");
        assert_eq!(rep["pushed"][0]["crl_number"].as_u64(), Some(n), "{rep}");
        assert_eq!(crl_number(&e), n, "run {run} made a new CRL");
        assert!(endpoint_holds_crl_pem(&e, &ec2, EP1), "run {run}");
    }
    assert_endpoint_crl_lists(&e, &ec2, EP1, &bob);
    // `status` agrees: no stale CRL, nothing to do.
    let o = e.run(&["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stdout));
}

/// Issue 4, second part: `push-crl` committed a new CRL and then failed on an AWS call that
/// could have been made first (exit 3, which promises an unchanged store). Everything that can
/// be checked without changing anything is checked before the new CRL is made: an endpoint
/// that does not exist (DescribeClientVpnEndpoints), credentials the service refuses, an
/// endpoint holding a newer CRL of this CA (an older copy of the store, exit 2). Each leaves
/// every file of the store as it was, and uploads nothing. The store's latest CRL expires
/// within 30 days, so a push that got further would make a new one.
///
/// Fails when: the CLI's `aws.check_push(…)` call before `crl_for_push` is removed (the first
/// run then commits a new CRL and uploads it to EP1 before EP3 is found missing).
#[test]
fn push_crl_checks_what_it_can_before_it_makes_a_crl() {
    let e = pki();
    e.ok(&["crl", "--days", "10"]);
    let n = crl_number(&e);
    // A newer copy of the store pushed a higher-numbered CRL of this CA to EP2.
    let newer_crl = newer_copy_crl(&e);
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}, {"id": EP2}]}));
    ec2.control("tamper", &json!({"endpoint": EP2, "crl": newer_crl}));
    let before = e.snapshot();
    let no_upload = |what: &str| {
        assert!(
            !ec2.actions().iter().any(|a| a.starts_with("Import")),
            "{what}: uploaded {:?}",
            ec2.actions()
        );
        assert_eq!(e.snapshot(), before, "{what}: the store changed");
        assert_eq!(crl_number(&e), n, "{what}");
        assert!(ec2.crl(EP1).is_none(), "{what}");
    };

    // An endpoint that does not exist: one Describe call, exit 3.
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &[
            "clientvpn",
            "push-crl",
            "--endpoint",
            EP1,
            "--endpoint",
            EP3,
        ],
        3,
    );
    assert!(
        err.contains("InvalidClientVpnEndpointId.NotFound") && err.contains(EP3),
        "{err}"
    );
    assert_eq!(ec2.actions(), ["DescribeClientVpnEndpoints"]);
    no_upload("unknown endpoint");

    // Credentials refused by the service.
    ec2.control("fail", &json!({"action": "DescribeClientVpnEndpoints", "status": 401, "code": "AuthFailure", "message": "AWS was not able to validate the provided access credentials", "times": 1}));
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
        3,
    );
    assert!(err.contains("AuthFailure"), "{err}");
    no_upload("credentials refused");

    // EP2 holds a newer CRL of this CA: this store is an older copy; EP1 gets nothing either.
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &[
            "clientvpn",
            "push-crl",
            "--endpoint",
            EP1,
            "--endpoint",
            EP2,
        ],
        2,
    );
    assert!(err.contains("older copy") && err.contains(EP2), "{err}");
    no_upload("older copy");
    assert_eq!(ec2.crl(EP2).as_deref(), Some(newer_crl.as_str()));

    // With nothing in the way the push makes its new CRL and uploads it.
    e.aws_ok(
        None,
        Some(&ec2),
        &["--json", "clientvpn", "push-crl", "--endpoint", EP1],
    );
    assert_eq!(crl_number(&e), n + 1);
    assert!(endpoint_holds_crl_pem(&e, &ec2, EP1));
    ec2.assert_all_signed();
}

/// Issue 4, the one documented exception (docs/aws.md): an upload that fails after the new CRL
/// was committed leaves that CRL in the store (exit 3). What went to the other endpoint is
/// exactly the committed CRL (`crl.pem`), only the confirmed push is recorded, and the next
/// run uploads the same CRL without making another. (The store starts without a CRL, so the
/// push has to make one; the default CRL policy keeps the next run from making another.)
///
/// Fails when: `crl_for_push` no longer makes the missing CRL before the uploads (the command
/// then fails with exit 2, "not found: a CRL").
#[test]
fn push_crl_upload_failing_after_the_commit_leaves_the_newer_crl() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}, {"id": EP2}]}));
    ec2.control("fail", &json!({"action": "ImportClientVpnClientCertificateRevocationList", "endpoint": EP2, "status": 400, "code": "InvalidParameterValue", "message": "The CRL is not valid", "times": 1}));
    let (rep, err) = e.aws_json(
        None,
        Some(&ec2),
        &[
            "clientvpn",
            "push-crl",
            "--endpoint",
            EP1,
            "--endpoint",
            EP2,
        ],
        3,
    );
    assert!(err.contains("The CRL is not valid"), "{err}");
    assert_eq!(rep["crl"]["number"].as_u64(), Some(1), "{rep}");
    assert!(
        rep["crl"]["regenerated"]
            .as_str()
            .unwrap_or("")
            .contains("no CRL"),
        "{rep}"
    );
    assert_eq!(rep["pushed"][0]["endpoint"], EP1, "{rep}");
    assert_eq!(rep["failed"][0]["endpoint"], EP2, "{rep}");
    assert_eq!(crl_number(&e), 1, "the new CRL stays in the store");
    assert!(
        endpoint_holds_crl_pem(&e, &ec2, EP1),
        "EP1 has the committed CRL"
    );
    assert!(ec2.crl(EP2).is_none());
    let list = e.json(&["acm", "list"]);
    assert_eq!(
        list["endpoints"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    assert_eq!(list["endpoints"][0]["id"], EP1, "{list}");
    // The next run sends that CRL to EP2; no other is made.
    let (rep, _) = e.aws_json(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP2],
        0,
    );
    assert_eq!(rep["crl"]["regenerated"], Value::Null, "{rep}");
    assert_eq!(crl_number(&e), 1);
    assert!(endpoint_holds_crl_pem(&e, &ec2, EP2));
    ec2.assert_all_signed();
}

/// Issue 4, a sibling: a store without any CRL (an older copy of one that has made some) must
/// not first make CRL #1 and then find the endpoint holding this CA's CRL: the endpoint's CRL
/// is checked before anything is made, and any CRL of this CA there refuses the push (exit 2,
/// store unchanged).
///
/// Fails when: `check_push` skips the endpoints' CRLs when the store has none (the store then
/// holds a new CRL #1 after the refusal).
#[test]
fn push_crl_from_a_store_without_a_crl_refuses_an_endpoint_holding_one_of_this_ca() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let held = newer_copy_crl(&e);
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}]}));
    ec2.control("tamper", &json!({"endpoint": EP1, "crl": held}));
    let before = e.snapshot();
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
        2,
    );
    assert!(
        err.contains("older copy") && err.contains("the store has no CRL"),
        "{err}"
    );
    assert_eq!(e.snapshot(), before, "the store changed");
    assert_eq!(ec2.crl(EP1).as_deref(), Some(held.as_str()));
    assert!(!ec2.actions().iter().any(|a| a.starts_with("Import")));
}

#[test]
fn push_crl_makes_a_new_crl_first_when_the_latest_expires_soon() {
    let e = pki();
    e.ok(&["crl", "--days", "10"]);
    let n_before = crl_number(&e);
    let ec2 = Ec2Server::with_state(
        &json!({"endpoints": [{"id": EP1, "serverCertificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"}]}),
    );
    let (rep, _) = e.aws_json(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
        0,
    );
    assert!(
        rep["crl"]["regenerated"]
            .as_str()
            .unwrap_or("")
            .contains("expires"),
        "{rep}"
    );
    assert_eq!(rep["crl"]["number"].as_u64(), Some(n_before + 1));
}

#[test]
fn push_crl_reports_a_read_back_that_differs_and_a_refused_upload() {
    let e = pki();
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [
        {"id": EP1, "serverCertificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"},
        {"id": EP2, "serverCertificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"}]}));
    // EP1 keeps an old CRL whatever is uploaded (made by openssl, another CA).
    let d = e.dir.path();
    openssl_req(
        d,
        RSA_2048,
        "Other CA",
        "o.key",
        "o.crt",
        &["-x509", "-days", "30"],
    );
    std::fs::write(d.join("index.txt"), "").expect("index");
    std::fs::write(
        d.join("o.cnf"),
        "[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\ndefault_md=sha256\ndefault_crl_days=30\n",
    )
    .expect("cnf");
    openssl_ok(
        &[
            "ca", "-config", "o.cnf", "-gencrl", "-keyfile", "o.key", "-cert", "o.crt", "-out",
            "o.crl",
        ],
        d,
    );
    let other = std::fs::read_to_string(d.join("o.crl")).expect("crl");
    ec2.control(
        "tamper",
        &json!({"endpoint": EP1, "crl": other, "sticky": true}),
    );
    // EP2 refuses the upload.
    ec2.control("fail", &json!({"action": "ImportClientVpnClientCertificateRevocationList", "status": 400, "code": "InvalidParameterValue", "message": "The CRL is not valid", "times": 5}));
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &["--json", "clientvpn", "push-crl", "--endpoint", EP1],
        3,
    );
    // The fail injection hits whichever import comes first: EP1 (refused) here.
    assert!(
        err.contains("InvalidParameterValue") && err.contains("The CRL is not valid"),
        "{err}"
    );
    ec2.control("fail", &json!({"action": "ImportClientVpnClientCertificateRevocationList", "status": 400, "code": "X", "message": "y", "times": 0}));
    let o = e.aws_run(
        None,
        Some(&ec2),
        &[
            "clientvpn",
            "push-crl",
            "--endpoint",
            EP1,
            "--endpoint",
            EP2,
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", s(&o.stderr));
    let err = s(&o.stderr);
    assert!(
        err.contains(EP1) && err.contains("a different CRL"),
        "{err}"
    );
    assert!(
        s(&o.stdout).contains(EP2),
        "EP2 still got it: {}",
        s(&o.stdout)
    );
    let list = e.json(&["acm", "list"]);
    let ids: Vec<&str> = list["endpoints"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [EP2], "only the confirmed push is recorded");
    // An unknown endpoint: AWS's code, exit 3.
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP3],
        3,
    );
    assert!(err.contains("InvalidClientVpnEndpointId.NotFound"), "{err}");
    ec2.assert_all_signed();
}

#[test]
fn push_crl_all_finds_the_endpoints_of_this_pki_across_pages() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let arn = server_arn(&e, moto);
    let foreign = foreign_arn(&e, moto);
    let ec2 = Ec2Server::with_state(&endpoints_state(&arn, &foreign));

    // Dry run: says what would go where, sends nothing.
    let (dry, _) = e.aws_json(
        Some(moto),
        Some(&ec2),
        &["clientvpn", "push-crl", "--all", "--dry-run"],
        0,
    );
    assert_eq!(dry["endpoints"], json!([EP1]));
    assert!(
        !ec2.actions().iter().any(|a| a.starts_with("Import")),
        "a dry run uploads nothing"
    );
    let pages = ec2
        .actions()
        .iter()
        .filter(|a| *a == "DescribeClientVpnEndpoints")
        .count();
    assert_eq!(pages, 2, "four endpoints in pages of two");

    let (rep, _) = e.aws_json(
        Some(moto),
        Some(&ec2),
        &["clientvpn", "push-crl", "--all"],
        0,
    );
    let pushed: Vec<&str> = rep["pushed"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["endpoint"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(pushed, [EP1]);
    let skipped = rep["skipped"].to_string();
    assert!(
        skipped.contains(EP2) && skipped.contains("no certificate"),
        "{skipped}"
    );
    assert!(
        skipped.contains(EP4) && skipped.contains("another CA"),
        "{skipped}"
    );
    assert!(
        !skipped.contains(EP3),
        "foreign endpoints are not ours to mention"
    );
    assert!(ec2.crl(EP3).is_none() && ec2.crl(EP4).is_none() && ec2.crl(EP2).is_none());
    ec2.assert_all_signed();
}

#[test]
fn status_aws_compares_acm_and_endpoints_with_the_store() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let (_, ec2) = endpoint_pushed(&e, moto);

    let (st, _) = e.aws_json(Some(moto), Some(&ec2), &["status", "--aws"], 0);
    assert_eq!(st["aws"]["certificates"][0]["up_to_date"], true);
    assert_eq!(st["aws"]["endpoints"][0]["crl_matches"], true);

    // A renewal not yet re-imported, and a revocation not yet pushed: both reported, exit 1.
    e.ok(&["renew", "vpn.example.com"]);
    e.ok(&["revoke", "alice"]);
    let (st, _) = e.aws_json(Some(moto), Some(&ec2), &["status", "--aws"], 1);
    let problems: Vec<&str> = st["aws"]["findings"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["problem"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        problems.contains(&"outdated") && problems.contains(&"crl-differs"),
        "{st}"
    );
    // Offline status never calls AWS.
    let n = ec2.requests().len();
    e.run(&["status"]);
    assert_eq!(ec2.requests().len(), n);
    ec2.assert_all_signed();
}

#[test]
fn clientvpn_profile_from_the_endpoint_connects_to_a_real_openvpn_server() {
    let e = pki();
    let server = ExportedServer::export(&e, "vpn.example.com", "srv");
    let ca = std::fs::read_to_string(e.pki.join("ca.crt")).expect("ca");
    let config = format!(
        "client\ndev tun\nproto udp\nremote cvpn-endpoint-0123456789abcdef0.prod.clientvpn.eu-west-1.amazonaws.com 443\nremote-random-hostname\nresolv-retry infinite\nnobind\nremote-cert-tls server\ncipher AES-256-GCM\nverb 3\n<ca>\n{ca}</ca>\n\nreneg-sec 0\n"
    );
    let ec2 = Ec2Server::with_state(
        &json!({"endpoints": [{"id": EP1, "serverCertificateArn": "arn:aws:acm:eu-west-1:1:certificate/x"}], "clientConfiguration": {EP1: config}}),
    );
    let args = [
        "clientvpn",
        "profile",
        "alice",
        "--endpoint",
        EP1,
        "--out",
        "alice.ovpn",
    ];
    let o = e.aws_run(None, Some(&ec2), &args);
    assert!(o.status.success(), "{}", s(&o.stderr));
    assert!(!s(&o.stderr).contains("warning"), "{}", s(&o.stderr));
    let path = e.path("alice.ovpn");
    assert_eq!(mode(&path), 0o600);
    let profile = std::fs::read_to_string(&path).expect("profile");
    assert!(
        profile.contains("<cert>") && profile.contains("<key>") && profile.contains("reneg-sec 0")
    );
    let hs = server.connect(&profile);
    assert!(hs.ok, "the profile from the endpoint must connect:\n{hs}");
    // Never over an existing file.
    let err = e.aws_fails(None, Some(&ec2), &args, 2);
    assert!(err.contains("exists already"), "{err}");
    // The fixture's foreign <ca> gives a warning.
    let foreign =
        std::fs::read_to_string(fixture("ovpn/clientvpn-endpoint-config.ovpn")).expect("fixture");
    ec2.control(
        "state",
        &json!({"endpoints": [{"id": EP1}], "clientConfiguration": {EP1: foreign}}),
    );
    let o = e.aws_run(
        None,
        Some(&ec2),
        &[
            "clientvpn",
            "profile",
            "bob",
            "--endpoint",
            EP1,
            "--out",
            "bob.ovpn",
        ],
    );
    assert!(o.status.success(), "{}", s(&o.stderr));
    assert!(s(&o.stderr).contains("warning"), "{}", s(&o.stderr));
    ec2.assert_all_signed();
}

#[test]
fn session_tokens_are_signed() {
    let e = pki();
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}]}));
    let mut c = e.cmd(&["clientvpn", "push-crl", "--endpoint", EP1]);
    common::aws::aws_env(&mut c, None, Some(&ec2));
    c.env("AWS_SESSION_TOKEN", "session-token-123");
    let o = c.output().expect("run");
    assert!(o.status.success(), "{}", s(&o.stderr));
    for r in ec2.requests() {
        assert_eq!(r["signature_ok"], true);
        assert_eq!(r["headers"]["x-amz-security-token"], "session-token-123");
    }
}

#[test]
fn a_reimport_with_another_key_type_is_refused_before_the_call() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let arn = server_arn(&e, moto);
    e.ok(&["renew", "vpn.example.com", "--algo", "rsa4096"]);
    let before = e.snapshot();
    let err = e.aws_fails(
        Some(moto),
        None,
        &["acm", "import", "--server", "vpn.example.com", "--force"],
        2,
    );
    assert!(
        err.contains("[reimport-key-type]") && err.contains("rsa2048"),
        "{err}"
    );
    assert_eq!(e.snapshot(), before);
    // A new ARN takes it (with --force for the key type).
    let rep = import_server(&e, moto, &["--new", "--force"]);
    assert_ne!(rep["arn"], arn.as_str());
}

#[test]
fn status_aws_reports_an_endpoint_that_is_gone() {
    let e = pki();
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}]}));
    e.aws_ok(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
    );
    ec2.control("state", &json!({"endpoints": []}));
    let (st, _) = e.aws_json(None, Some(&ec2), &["status", "--aws"], 1);
    assert_eq!(st["aws"]["findings"][0]["problem"], "gone", "{st}");
}

#[test]
fn a_named_profile_and_endpoint_url_are_honoured() {
    let e = pki();
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}]}));
    std::fs::write(
        e.path("credentials"),
        format!(
            "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n\n[vpnca-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            common::aws::ACCESS_KEY,
            common::aws::SECRET_KEY
        ),
    )
    .expect("credentials");
    std::fs::write(
        e.path("config"),
        format!("[profile vpnca-test]\nregion = {REGION}\n"),
    )
    .expect("config");
    let mut c = e.cmd(&[
        "clientvpn",
        "push-crl",
        "--endpoint",
        EP1,
        "--profile",
        "vpnca-test",
        "--endpoint-url",
        &ec2.url(),
    ]);
    common::aws::aws_env(&mut c, None, None);
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env("AWS_SHARED_CREDENTIALS_FILE", e.path("credentials"))
        .env("AWS_CONFIG_FILE", e.path("config"));
    let o = c.output().expect("run");
    assert!(o.status.success(), "{}", s(&o.stderr));
    ec2.assert_all_signed();
    // The default profile's keys are refused by the server's signature check: exit 3.
    let mut c = e.cmd(&[
        "clientvpn",
        "push-crl",
        "--endpoint",
        EP1,
        "--endpoint-url",
        &ec2.url(),
    ]);
    common::aws::aws_env(&mut c, None, None);
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", e.path("credentials"));
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(3), "{}", s(&o.stderr));
    assert!(s(&o.stderr).contains("AuthFailure"), "{}", s(&o.stderr));
}

// ---------------------------------------------------------------------------------------------
// Issue 15: the next step after a command, and `status --aws` when a call fails
// ---------------------------------------------------------------------------------------------

/// The first `vpnca …` command in backticks in `text`, as arguments.
fn advised_args(text: &str) -> Vec<String> {
    let start = text
        .find("`vpnca ")
        .unwrap_or_else(|| panic!("no command in {text:?}"));
    let rest = &text[start + "`vpnca ".len()..];
    rest[..rest.find('`').expect("closing backtick")]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// After pushes to two endpoints, `revoke` names exactly those endpoints and their region in
/// one `push-crl` command (no OpenVPN step: the store is used with Client VPN), and running
/// that command puts the CRL listing the revoked serial on both (openssl). A planted endpoint
/// row (stored data, not input) fails its proof: the revocation goes on, the advice is the
/// general one with a warning, and the planted text is never printed.
///
/// Fails when: the recorded endpoints are not read (seen with `known_endpoints` skipped: the
/// general `--endpoint cvpn-endpoint-…` step is printed instead), or the endpoint rows are not
/// proven (seen with `Item::AwsEndpoint` proofs left out of `known_endpoints`: the planted id
/// was printed in the advice).
#[test]
fn revoke_names_the_recorded_endpoints_and_that_push_works() {
    let e = pki();
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}, {"id": EP2}]}));
    e.aws_ok(
        None,
        Some(&ec2),
        &[
            "clientvpn",
            "push-crl",
            "--endpoint",
            EP1,
            "--endpoint",
            EP2,
        ],
    );
    let bob = openssl_serial(&e, "pki/issued/bob.crt");
    let out = e.ok(&["revoke", "bob"]);
    let line =
        format!("  vpnca clientvpn push-crl --endpoint {EP1} --endpoint {EP2} --region {REGION}");
    assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    assert!(
        !out.contains("OpenVPN") && !out.contains("cvpn-endpoint-…"),
        "{out}"
    );
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    e.aws_ok(None, Some(&ec2), &args);
    for ep in [EP1, EP2] {
        assert!(
            endpoint_holds_crl_pem(&e, &ec2, ep),
            "{ep} does not hold crl.pem"
        );
        assert_endpoint_crl_lists(&e, &ec2, ep, &bob);
    }

    // A row edited outside vpnca (an id made to run a shell command when pasted): the
    // endpoint records are proven (issue 16), so the edit is refused — the revocation itself
    // still happens, the hint is the general one with a warning, and the planted text is never
    // printed as a command.
    let planted = "cvpn-endpoint-1; touch pwned";
    sqlite(
        &e,
        &format!("UPDATE aws_endpoints SET id = '{planted}' WHERE id = '{EP2}'"),
    );
    let o = e.run(&["revoke", "alice"]);
    let (out, err) = (s(&o.stdout), s(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("Revoked client alice"), "{out}");
    assert!(!out.contains("touch pwned"), "{out}");
    assert!(
        err.contains("cannot read the store's AWS records") && err.contains("outside vpnca"),
        "{err}"
    );
}

/// `renew` of a certificate imported into ACM says that ACM still holds the old one, with the
/// ARN and the `acm import` that re-imports it into that ARN; running that command does
/// (boto3 reads the new serial from the same ARN). A name never imported gets no such line.
///
/// Fails when: renew does not look at the ACM records (seen with `print_reimport` removed).
#[test]
fn renew_of_an_imported_certificate_names_the_reimport() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let arn = server_arn(&e, moto);
    let out = e.ok(&["renew", "vpn.example.com"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("ACM still holds the old certificate (serial "))
        .unwrap_or_else(|| panic!("no ACM reminder in:\n{out}"));
    assert!(
        line.ends_with(&format!(
            " in {arn}: re-import into the same ARN with `vpnca acm import --server vpn.example.com --region {REGION}`"
        )),
        "{line}"
    );
    assert!(!e.ok(&["renew", "alice"]).contains("ACM"));
    let cmd = advised_args(line);
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let (rep, _) = e.aws_json(Some(moto), None, &args, 0);
    assert_eq!(rep["arn"], arn.as_str());
    assert_eq!(rep["reimported"], true);
    let new = openssl_serial(&e, "pki/issued/vpn.example.com.crt");
    let held = describe(moto, &arn);
    assert!(
        hex_eq(held["serial"].as_str().unwrap_or_default(), &new),
        "ACM holds {held}, the store {new}"
    );
}

/// One failing EC2 call no longer ends `status --aws`: with the endpoint's CRL unreadable
/// (403 UnauthorizedOperation) the ACM part is still reported (up to date), the failure is a
/// `call-failed` finding naming the endpoint and the AWS error, `complete` is false, and the
/// exit code is 3 (an AWS call failed), in JSON and in text. With the endpoint listing
/// failing instead, the endpoint vpnca pushed to is still checked.
///
/// Fails when: a failed call ends the command again (seen with `Err(e) => return Err(e)` for
/// the CRL read: exit 3 with no report on standard output).
#[test]
fn status_aws_reports_the_rest_when_an_ec2_call_fails() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let (arn, ec2) = endpoint_pushed(&e, moto);
    let export = "ExportClientVpnClientCertificateRevocationList";
    let denied = |action: &str, times: u32| {
        ec2.control(
            "fail",
            &json!({"action": action, "status": 403, "code": "UnauthorizedOperation", "message": "You are not authorized to perform this operation.", "times": times}),
        );
    };
    let call_failed = |st: &Value| -> Vec<String> {
        st["aws"]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["problem"] == "call-failed")
            .map(|f| f["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    denied(export, 10);
    let (st, err) = e.aws_json(Some(moto), Some(&ec2), &["status", "--aws"], 3);
    assert_eq!(st["local"]["findings"], json!([]), "{st}");
    assert_eq!(st["aws"]["certificates"][0]["import"]["arn"], arn.as_str());
    assert_eq!(st["aws"]["certificates"][0]["up_to_date"], true);
    assert_eq!(st["aws"]["complete"], false);
    assert_eq!(
        call_failed(&st),
        [format!(
            "the CRL on {EP1} could not be checked: AWS {export} failed: UnauthorizedOperation: You are not authorized to perform this operation."
        )],
        "{st}"
    );
    assert!(err.contains("error: an AWS call failed"), "{err}");
    let o = e.aws_run(Some(moto), Some(&ec2), &["status", "--aws"]);
    let out = s(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}{}", s(&o.stderr));
    assert!(
        out.contains(&format!("  ACM server vpn.example.com {arn}: ISSUED"))
            && out.contains(&format!("ATTENTION: the CRL on {EP1} could not be checked: AWS {export} failed: UnauthorizedOperation")),
        "{out}"
    );

    // The listing fails instead: the endpoint pushed to is checked all the same.
    denied(export, 0);
    denied("DescribeClientVpnEndpoints", 10);
    let (st, _) = e.aws_json(Some(moto), Some(&ec2), &["status", "--aws"], 3);
    assert_eq!(st["aws"]["endpoints"][0]["id"], EP1, "{st}");
    assert_eq!(st["aws"]["endpoints"][0]["crl_matches"], true, "{st}");
    let failed = call_failed(&st);
    assert!(
        failed.len() == 1
            && failed[0].starts_with(&format!("which endpoints in {REGION} use this store's certificates (only the 1 endpoint(s) vpnca pushed CRLs to are checked below) could not be checked: AWS DescribeClientVpnEndpoints failed: UnauthorizedOperation")),
        "{failed:?}"
    );
    ec2.assert_all_signed();
}

/// The store's server certificate imported into ACM (moto), one endpoint (EP1) of the EC2 test
/// server using it, and the store's CRL pushed there: the ARN and the server.
fn endpoint_pushed(e: &Env, moto: &Moto) -> (String, Ec2Server) {
    let arn = server_arn(e, moto);
    let ec2 = Ec2Server::with_state(
        &json!({"endpoints": [{"id": EP1, "serverCertificateArn": arn, "clientRootCertificateChainArn": arn}]}),
    );
    e.aws_ok(
        Some(moto),
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
    );
    (arn, ec2)
}

/// A deleted ACM import record (issue 16: a decision never trusts what a table omits). Without
/// its row, `acm import` would create a second ACM certificate instead of re-importing into
/// the recorded ARN, leaving the endpoint on the old one. The list of import records is part
/// of the authenticated state, so the deletion is refused (exit 2) before any ACM call, also by
/// the locked `acm list`, and `verify` names it; moto still holds exactly one certificate.
///
/// Fails when: `Store::acm_imports` does not prove `Item::AwsImports` (seen: the second import
/// created a second certificate, exit 0).
#[test]
fn a_deleted_import_record_is_refused_not_imported_again_as_new() {
    let e = pki();
    let (moto, _g) = Moto::get();
    server_arn(&e, moto);
    assert_eq!(describe_count(moto), 1);
    sqlite(&e, "DELETE FROM aws_imports");
    let before = e.snapshot();
    let err = e.aws_fails(
        Some(moto),
        None,
        &["acm", "import", "--server", "vpn.example.com"],
        2,
    );
    assert!(err.contains("the list of ACM import records"), "{err}");
    assert_eq!(describe_count(moto), 1, "no second ACM certificate");
    assert_eq!(e.snapshot(), before, "the store is unchanged");
    let mut list = e.cmd(&["acm", "list"]);
    list.env_remove("VPNCA_PASSPHRASE");
    expect_code(&["acm", "list"], list.output().expect("run"), 2);
    let v = e.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1), "{}", s(&v.stdout));
    assert!(
        s(&v.stdout).contains("the list of ACM import records"),
        "{}",
        s(&v.stdout)
    );
}

// ---------------------------------------------------------------------------------------------
// Promises of docs/security.md backed here (tests/security_claims.rs holds the others): a CRL
// is published only once proven against the state, and AWS records deleted, replayed or
// swapped are refused before any AWS call.
// ---------------------------------------------------------------------------------------------

/// Runs vpnca with both the ACM and the EC2 endpoint pointed at `tripwire`, an EC2 test server
/// that logs every request it receives: an empty log afterwards proves no AWS call was made.
fn run_on_tripwire(e: &Env, tripwire: &Ec2Server, args: &[&str]) -> std::process::Output {
    let mut c = e.cmd(args);
    common::aws::aws_env(&mut c, None, Some(tripwire));
    c.env("AWS_ENDPOINT_URL_ACM", tripwire.url());
    c.output().expect("run vpnca")
}

/// `acm list` without the passphrase (a locked reader, checked against the signed head).
fn locked_acm_list(e: &Env) -> std::process::Output {
    let mut c = e.cmd(&["acm", "list"]);
    c.env_remove("VPNCA_PASSPHRASE");
    c.output().expect("run vpnca")
}

/// docs/security.md, "The `crls` table": a stored CRL is published by `push-crl` only once
/// proven against the authenticated state. Each SQL edit of the `crls` table (the latest CRL's
/// bytes replaced by the older, validly signed CRL of the same CA; the old CRL renumbered to
/// the top; the newest row deleted) makes `push-crl` refuse with exit 2, naming the CRL, the
/// store unchanged, and the endpoint never receives an import.
///
/// Fails when (seen with a planted fault): not seen uploading. With `Store::latest_crl`'s
/// proof, `publishable_crl`'s `prove_crl` and every proof of `Item::Crl`/`Item::CrlHead`
/// removed, a further check ("the CRL stored as #2 is not the CA's CRL #2") still refused the
/// push; the test failed on its message only.
#[test]
fn push_crl_publishes_no_crl_edited_in_the_crls_table() {
    for (attack, names) in [
        (
            "UPDATE crls SET der = (SELECT der FROM crls WHERE number = 1) WHERE number = 2",
            "CRL number 2 in the database is not the one the store's authenticated state records (its content differs)",
        ),
        (
            "UPDATE crls SET number = 3 WHERE number = 1",
            "the highest CRL number in the database is not the one the store's authenticated state records",
        ),
        (
            "DELETE FROM crls WHERE number = 2",
            "the highest CRL number in the database is not the one the store's authenticated state records",
        ),
    ] {
        let e = pki();
        e.ok(&["revoke", "bob"]);
        assert_eq!(crl_number(&e), 2, "{attack}: the setup");
        let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}]}));
        sqlite(&e, attack);
        let before = e.snapshot();
        let err = e.aws_fails(
            None,
            Some(&ec2),
            &["clientvpn", "push-crl", "--endpoint", EP1],
            2,
        );
        assert!(err.contains(names), "{attack}: {err}");
        assert!(
            !ec2.actions().iter().any(|a| a.starts_with("Import")),
            "{attack}: uploaded {:?}",
            ec2.actions()
        );
        assert!(ec2.crl(EP1).is_none(), "{attack}: the endpoint got a CRL");
        assert_eq!(e.snapshot(), before, "{attack}: the store changed");
    }
}

/// docs/security.md, the witness table: the endpoint holding "another CRL with the same
/// number" of this CA than the store's latest means this store is not the one that pushed
/// it (a copy went on without it): `push-crl` refuses with exit 2 naming the endpoint and
/// the number, uploads nothing, and the endpoint keeps its CRL. The other CRL is made by a copy
/// of the store that revoked alice while this one revoked bob: both are CRL number 2.
///
/// Fails when (seen with a planted fault): `check_not_older` drops its `number == ours && der
/// != ours_der` case (the store's CRL 2 replaced the other CRL 2, exit 0).
#[test]
fn push_crl_refuses_an_endpoint_holding_another_crl_with_the_same_number() {
    let e = pki();
    let copy = Env {
        dir: tempfile::tempdir().expect("tempdir"),
        pki: e.path("copy"),
    };
    copy_dir(&e.pki, &copy.pki);
    copy.ok(&["revoke", "alice"]);
    e.ok(&["revoke", "bob"]);
    assert_eq!((crl_number(&e), crl_number(&copy)), (2, 2), "the setup");
    let held = std::fs::read_to_string(copy.pki.join("crl.pem")).expect("crl.pem");
    let ec2 = Ec2Server::with_state(&json!({"endpoints": [{"id": EP1}]}));
    ec2.control("tamper", &json!({"endpoint": EP1, "crl": held}));
    let before = e.snapshot();
    let err = e.aws_fails(
        None,
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
        2,
    );
    assert!(
        err.contains(EP1)
            && err.contains("another CRL with the number of the store's CRL number 2")
            && err.contains("nothing was uploaded"),
        "{err}"
    );
    assert!(
        !ec2.actions().iter().any(|a| a.starts_with("Import")),
        "uploaded: {:?}",
        ec2.actions()
    );
    assert_eq!(ec2.crl(EP1).as_deref(), Some(held.as_str()));
    assert_eq!(e.snapshot(), before, "the store changed");
}

/// docs/security.md, "AWS records": a deleted endpoint row is refused with exit 2 by
/// `push-crl` to that endpoint before any AWS call (it used to upload first and refuse when
/// recording the push), by the locked `acm list`, and `verify` names it.
///
/// Fails when (seen with planted faults): `Store::known_endpoints` does not prove its items
/// (`acm list` exit 0); `ClientVpn::push_crl` without its first `known_endpoints` (the EC2
/// server logged DescribeClientVpnEndpoints, Export… and ImportClientVpnClientCertificate…
/// before the exit 2).
#[test]
fn a_deleted_endpoint_record_is_refused_before_any_aws_call() {
    let e = pki();
    let (moto, _g) = Moto::get();
    let (_arn, ec2) = endpoint_pushed(&e, moto);
    sqlite(&e, "DELETE FROM aws_endpoints");
    let before = e.snapshot();
    let calls = ec2.actions().len();
    let err = e.aws_fails(
        Some(moto),
        Some(&ec2),
        &["clientvpn", "push-crl", "--endpoint", EP1],
        2,
    );
    assert!(err.contains("endpoint record"), "{err}");
    assert_eq!(
        ec2.actions()[calls..].to_vec(),
        Vec::<String>::new(),
        "push-crl called AWS before refusing"
    );
    assert_eq!(e.snapshot(), before, "the store changed");
    let err = expect_code(&["acm", "list"], locked_acm_list(&e), 2);
    assert!(err.contains("the list of endpoint records"), "{err}");
    assert_eq!(e.snapshot(), before, "the store changed");
    let v = e.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1), "{}", s(&v.stdout));
    assert!(
        s(&v.stdout).contains("the list of endpoint records"),
        "{}",
        s(&v.stdout)
    );
}

/// docs/security.md, "AWS records": an import row replayed (the server's row put back as it
/// was before its renewal was re-imported) and two import rows swapped (the server's ARN under
/// the client certificate's record and back) are refused with exit 2 before any AWS call
/// (`acm import`, the locked `acm list`), the store unchanged, and `verify` names them.
///
/// Fails when (seen with a planted fault): `Store::acm_imports` does not prove its items (the
/// replayed row: `acm import` sent ImportCertificate to the logging server, exit 3).
#[test]
fn a_replayed_or_swapped_import_record_is_refused_before_any_aws_call() {
    let row = "SELECT serial || '|' || imported_at || '|' || hex(mac) FROM aws_imports";
    // Replayed: the row of the first import, after the renewal's re-import replaced it.
    let e = pki();
    let (moto, _g) = Moto::get();
    server_arn(&e, moto);
    let old = common::sqlite_query(&e, row);
    let old: Vec<&str> = old.split('|').collect();
    e.ok(&["renew", "vpn.example.com"]);
    server_arn(&e, moto);
    sqlite(
        &e,
        &format!(
            "UPDATE aws_imports SET serial = '{}', imported_at = {}, mac = X'{}'",
            old[0], old[1], old[2]
        ),
    );
    // Swapped: the server's and the client certificate's records under each other's ARN.
    let w = pki();
    w.ok(&["client", "clientvpn.example.com"]);
    let a1 = server_arn(&w, moto);
    let (rep, _) = w.aws_json(
        Some(moto),
        None,
        &["acm", "import", "--client", "clientvpn.example.com"],
        0,
    );
    let a2 = rep["arn"].as_str().expect("arn").to_owned();
    sqlite(
        &w,
        &format!(
            "UPDATE aws_imports SET arn = 'x' WHERE arn = '{a1}';
             UPDATE aws_imports SET arn = '{a1}' WHERE arn = '{a2}';
             UPDATE aws_imports SET arn = '{a2}' WHERE arn = 'x';"
        ),
    );
    for (what, e) in [("replayed", &e), ("swapped", &w)] {
        let before = e.snapshot();
        let tripwire = Ec2Server::start();
        let args = ["acm", "import", "--server", "vpn.example.com"];
        let err = expect_code(&args, run_on_tripwire(e, &tripwire, &args), 2);
        assert!(err.contains("ACM import record"), "{what}: {err}");
        assert_eq!(
            tripwire.actions(),
            Vec::<String>::new(),
            "{what}: an AWS call was made"
        );
        let err = expect_code(&["acm", "list"], locked_acm_list(e), 2);
        assert!(err.contains("ACM import record"), "{what}: {err}");
        assert_eq!(e.snapshot(), before, "{what}: the store changed");
        let v = e.run(&["verify"]);
        assert_eq!(v.status.code(), Some(1), "{what}: {}", s(&v.stdout));
        assert!(
            s(&v.stdout).contains("ACM import record"),
            "{what}: {}",
            s(&v.stdout)
        );
    }
}
