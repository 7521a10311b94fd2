//! One regression test per bug fixed after the first release of a behaviour.
mod common;
use common::*;

use std::collections::BTreeSet;

/// `vpnca crl` without `--omit-expired` used to reset the store's omit-expired policy; a
/// policy now changes only when a flag says so. Checked on the CRLs themselves, read by
/// openssl after checking their signature: after `crl --omit-expired --days 400` and a bare
/// `crl`, the CRL that `revoke` writes is valid 400 days and leaves out a revoked certificate
/// that has expired; `crl --keep-expired` lists it again, and later CRLs keep doing so.
///
/// Waits about a minute: the shortest validity (`--ttl 1m`) must run out.
///
/// Fails when: the `crl` command (src/cli/revocation.rs; src/cli/mod.rs when the bug was found)
/// reset omit-expired on a bare `crl` (the original bug, planted as `} else {` for
/// `} else if *keep_expired {`; seen: the expired serial listed by the CRL of `revoke`), and
/// when the first `crl` was given `--days 399` (seen: a CRL valid 399 days 5 minutes instead of
/// 400 days 5 minutes).
#[test]
fn crl_policy_is_kept_unless_a_flag_changes_it() {
    let e = Env::with_ca();
    // A certificate that expires in a minute, revoked while it is live.
    e.ok(&["client", "brief", "--ttl", "1m"]);
    let brief = cert_serial(&e, "pki/issued/brief.crt");
    std::fs::copy(e.pki.join("issued/brief.crt"), e.path("brief.crt")).expect("copy");
    let brief_end = std::time::Instant::now() + std::time::Duration::from_secs(61);
    e.ok(&["revoke", "brief"]);
    e.ok(&["crl", "--omit-expired", "--days", "400"]);
    // The bare `crl` that used to reset the policy.
    e.ok(&["crl"]);
    e.ok(&["client", "alice"]);
    let alice = cert_serial(&e, "pki/issued/alice.crt");
    std::thread::sleep(brief_end.saturating_duration_since(std::time::Instant::now()));
    let o = openssl(
        &["x509", "-in", "brief.crt", "-noout", "-checkend", "0"],
        e.dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "brief has not expired yet");
    // `revoke` writes a CRL with the stored policy: 400 days, omit-expired.
    e.ok(&["revoke", "alice"]);
    let (text, entries) = crl_read(&e);
    assert_eq!(
        entries,
        BTreeSet::from([alice.clone()]),
        "omit-expired lost: the expired {brief} is listed, or alice is missing"
    );
    assert_eq!(crl_lifetime(&text), POLICY_LIFETIME, "policy days lost");
    // --keep-expired turns omit-expired off again, and later CRLs keep it off.
    e.ok(&["crl", "--keep-expired"]);
    let (text, entries) = crl_read(&e);
    assert_eq!(entries, BTreeSet::from([alice.clone(), brief.clone()]));
    assert_eq!(crl_lifetime(&text), POLICY_LIFETIME, "policy days lost");
    e.ok(&["client", "carol"]);
    let carol = cert_serial(&e, "pki/issued/carol.crt");
    e.ok(&["revoke", "carol"]);
    let (text, entries) = crl_read(&e);
    assert_eq!(entries, BTreeSet::from([alice, brief, carol]));
    assert_eq!(crl_lifetime(&text), POLICY_LIFETIME, "policy days lost");
    // Both flags together are refused.
    let err = e.fails(&["crl", "--keep-expired", "--omit-expired"], 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

/// nextUpdate − thisUpdate of a CRL made with `--days 400`: thisUpdate is back-dated 5
/// minutes (docs/commands-revocation.md).
const POLICY_LIFETIME: i64 = 400 * 86_400 + 300;

/// The serial of a certificate file, read by openssl (normalized).
fn cert_serial(e: &Env, cert: &str) -> String {
    let out = openssl_ok(&["x509", "-in", cert, "-noout", "-serial"], e.dir.path());
    norm_serial(out.trim().trim_start_matches("serial="))
}

/// `pki/crl.pem` read by openssl after checking its signature: its text and its serials.
fn crl_read(e: &Env) -> (String, BTreeSet<String>) {
    let text = crl_verified_text(e.dir.path(), "pki/crl.pem", "pki/ca.crt");
    let (_, entries) = crl_by_openssl(e);
    (text, entries.into_keys().collect())
}

/// A field of `openssl crl -text` ("Last Update", "Next Update") as Unix time.
fn crl_time(text: &str, field: &str) -> i64 {
    let v = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}: ")))
        .unwrap_or_else(|| panic!("no {field} in:\n{text}"));
    openssl_time(v)
}

/// nextUpdate − thisUpdate in seconds, as openssl prints them.
fn crl_lifetime(text: &str) -> i64 {
    crl_time(text, "Next Update") - crl_time(text, "Last Update")
}

/// openssl's time format, "Mar  4 09:40:30 2027 GMT", as Unix time.
fn openssl_time(v: &str) -> i64 {
    let f = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    // openssl pads a one-digit day with a space ("Mar  4"): rebuild exactly that shape.
    let norm = v.split_whitespace().collect::<Vec<_>>();
    let v = format!(
        "{} {:>2} {} {} {}",
        norm[0], norm[1], norm[2], norm[3], norm[4]
    );
    time::PrimitiveDateTime::parse(&v, f)
        .unwrap_or_else(|err| panic!("openssl time {v:?}: {err}"))
        .assume_utc()
        .unix_timestamp()
}

/// A CRL's nextUpdate never outlives the CA that signs it (read by openssl from a CRL whose
/// signature it checked).
///
/// Fails when: the CRL was asked for `--days 20`, inside the CA's 30 days (seen: nextUpdate
/// 10 days before the CA's notAfter).
#[test]
fn crl_next_update_is_capped_at_the_ca_expiry() {
    let e = Env::init();
    e.ok(&["ca", "--cn", "Short CA", "--days", "30"]);
    e.ok(&["crl", "--days", "3650"]);
    let ca_end = openssl_ok(
        &["x509", "-in", "pki/ca.crt", "-noout", "-enddate"],
        e.dir.path(),
    );
    let crl = crl_verified_text(e.dir.path(), "pki/crl.pem", "pki/ca.crt");
    assert_eq!(
        crl_time(&crl, "Next Update"),
        openssl_time(ca_end.trim().trim_start_matches("notAfter=")),
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
