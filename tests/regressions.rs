//! One regression test per bug fixed after the first release of a behaviour.
mod common;
use common::*;

/// `vpnca crl` without `--omit-expired` used to reset the store's omit-expired policy; a
/// policy now changes only when a flag says so.
#[test]
fn crl_policy_is_kept_unless_a_flag_changes_it() {
    let e = Env::with_ca();
    e.ok(&["crl", "--omit-expired", "--days", "400"]);
    e.ok(&["crl"]);
    e.ok(&["client", "alice"]);
    // `revoke` writes a CRL with the stored policy: 400 days, omit-expired.
    e.ok(&["revoke", "alice"]);
    let db_policy = e.json(&["crl"]);
    let next = db_policy["next_update"].as_str().expect("next_update");
    let this = db_policy["this_update"].as_str().expect("this_update");
    let days = days_between(this, next);
    assert!((399..=401).contains(&days), "policy days lost: {days}");
    // --keep-expired turns omit-expired off again; both flags together are refused.
    e.ok(&["crl", "--keep-expired"]);
    let err = e.fails(&["crl", "--keep-expired", "--omit-expired"], 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

fn days_between(a: &str, b: &str) -> i64 {
    let f = &time::format_description::well_known::Rfc3339;
    let a = time::OffsetDateTime::parse(a, f).expect("rfc3339");
    let b = time::OffsetDateTime::parse(b, f).expect("rfc3339");
    (b - a).whole_days()
}

/// A CRL's nextUpdate never outlives the CA that signs it.
#[test]
fn crl_next_update_is_capped_at_the_ca_expiry() {
    let e = Env::init();
    e.ok(&["ca", "--cn", "Short CA", "--days", "30"]);
    e.ok(&["crl", "--days", "3650"]);
    let ca_end = openssl_ok(
        &["x509", "-in", "pki/ca.crt", "-noout", "-enddate"],
        e.dir.path(),
    );
    let crl_next = openssl_ok(
        &["crl", "-in", "pki/crl.pem", "-noout", "-nextupdate"],
        e.dir.path(),
    );
    assert_eq!(
        ca_end.trim().trim_start_matches("notAfter="),
        crl_next.trim().trim_start_matches("nextUpdate="),
        "CRL nextUpdate must equal the CA's notAfter"
    );
}

/// `export CA --key` used to write the CA's private key in plain text.
#[test]
fn the_ca_key_is_never_exported_in_plain_text() {
    let e = Env::with_ca();
    let before = e.snapshot();
    let err = e.fails(&["export", "ca", "--out", "out", "--key"], 2);
    assert!(err.contains("exported only encrypted"), "{err}");
    assert!(!e.path("out").exists(), "nothing may be written");
    assert_eq!(before, e.snapshot(), "store changed");
    // Encrypted, it is allowed, and openssl can read it with the passphrase.
    std::fs::write(e.path("kp"), "export-passphrase-1\n").expect("write");
    e.ok(&[
        "export",
        "ca",
        "--out",
        "out",
        "--key-passphrase-file",
        "kp",
    ]);
    let key = e.path("out/Test VPN CA.key");
    let modulus = openssl_ok(
        &[
            "rsa",
            "-in",
            key.to_str().expect("utf-8"),
            "-passin",
            "file:kp",
            "-noout",
            "-modulus",
        ],
        e.dir.path(),
    );
    let cert_modulus = openssl_ok(
        &["x509", "-in", "pki/ca.crt", "-noout", "-modulus"],
        e.dir.path(),
    );
    assert_eq!(modulus, cert_modulus);
}

/// Usage errors with `--json` used to print clap's text only; now a JSON error too.
#[test]
fn usage_errors_are_json_with_json() {
    let e = Env::new();
    let o = e.run(&["--json", "list", "--expiring-within", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(s(&o.stdout).trim()).expect("json error");
    let msg = v["error"].as_str().expect("error string");
    assert!(msg.contains("bogus"), "{msg}");
    // Without --json, stdout stays empty.
    let o = e.run(&["list", "--expiring-within", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    // --help still exits 0.
    e.ok(&["--help"]);
}

/// A passphrase file that is not UTF-8 is a clear error, not a panic or a lossy passphrase.
#[test]
fn a_non_utf8_passphrase_file_is_refused() {
    let e = Env::with_ca();
    std::fs::write(e.path("pf"), [0xff, 0xfe, 0x00, 0x41]).expect("write");
    let before = e.snapshot();
    let mut c = e.cmd(&["--passphrase-file", "pf", "client", "bob"]);
    c.env_remove("VPNCA_PASSPHRASE");
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(s(&o.stderr).contains("not UTF-8"), "{}", s(&o.stderr));
    assert_eq!(before, e.snapshot());
}

/// A PKCS#12 of the CA held the CA certificate twice (as leaf and as chain).
#[test]
fn a_ca_pkcs12_holds_the_ca_once() {
    let e = Env::with_ca();
    std::fs::write(e.path("pp"), "p12-passphrase-1\n").expect("write");
    e.ok(&[
        "export",
        "ca",
        "--format",
        "p12",
        "--out",
        "out",
        "--p12-passphrase-file",
        "pp",
    ]);
    let p12 = e.path("out/Test VPN CA.p12");
    let certs = openssl_ok(
        &[
            "pkcs12",
            "-in",
            p12.to_str().expect("utf-8"),
            "-nokeys",
            "-passin",
            "file:pp",
        ],
        e.dir.path(),
    );
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 1, "{certs}");
}

/// sign-req --batch checked the profile's rules only while signing: a request the server
/// profile refuses (a CN that is no DNS name) let the others through. Now nothing is signed.
#[test]
fn sign_req_batch_checks_every_request_before_signing() {
    let e = Env::with_ca();
    let dir = e.path("reqs");
    std::fs::create_dir(&dir).expect("mkdir");
    for cn in ["good.example.com", "not a dns name"] {
        let file = dir.join(format!("{}.csr", cn.replace(' ', "_")));
        openssl_ok(
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "/dev/null",
                "-subj",
                &format!("/CN={cn}"),
                "-out",
                file.to_str().expect("utf-8"),
            ],
            e.dir.path(),
        );
    }
    let before = e.snapshot();
    let err = e.fails(&["sign-req", "--batch", "reqs", "--type", "server"], 2);
    assert!(err.contains("not_a_dns_name.csr"), "{err}");
    assert!(err.contains("nothing was signed"), "{err}");
    assert_eq!(before, e.snapshot(), "store changed");
    // With --skip-invalid the good one is signed and audited as sign-req.
    e.ok(&[
        "sign-req",
        "--batch",
        "reqs",
        "--type",
        "server",
        "--skip-invalid",
    ]);
    let log = e.ok(&["--json", "log"]);
    assert!(
        log.lines()
            .any(|l| l.contains("\"sign-req\"") && l.contains("good.example.com")),
        "{log}"
    );
}

/// revoke --batch with the CA's own serial reported `invalid` but exited 0.
#[test]
fn revoke_batch_with_the_ca_serial_exits_2() {
    let e = Env::with_ca();
    let list = e.ok(&["--json", "list", "--kind", "ca"]);
    let ca: serde_json::Value =
        serde_json::from_str(list.lines().next().expect("ca")).expect("json");
    let serial = ca["serial"].as_str().expect("serial");
    std::fs::write(e.path("r.csv"), format!("serial\n{serial}\n")).expect("write");
    e.fails(&["revoke", "--batch", "r.csv"], 2);
}

/// profile --batch validated columns it ignores, and called a re-run's existing files failed.
#[test]
fn profile_batch_reads_only_names_and_skips_existing_files() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    std::fs::write(e.path("users.csv"), "name,email\nalice,not-an-address\n").expect("write");
    e.ok(&[
        "profile",
        "--batch",
        "users.csv",
        "--remote",
        "vpn.example.com",
        "--out",
        "profiles",
    ]);
    assert!(e.path("profiles/alice.ovpn").exists());
    let again = e.ok(&[
        "profile",
        "--batch",
        "users.csv",
        "--remote",
        "vpn.example.com",
        "--out",
        "profiles",
    ]);
    assert!(again.contains("exists"), "{again}");
}
