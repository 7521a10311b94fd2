//! The next step vpnca names after a command, and its warnings about settings that will bite
//! later (issue 15): what to do with a new CRL, a CRL policy or a CA too short for the 30-day
//! warning horizon, a certificate or CRL cut to the CA's notAfter, and `status` advice that
//! names only a command that helps. Every advised command is run to show that it does what
//! the advice says; dates are read back with openssl. The AWS side (recorded endpoints, ACM
//! re-import, `status --aws`) is in tests/aws.rs.

mod common;

use common::{Env, crl_verified_text, openssl_ok, openssl_time, path_str, s};
use serde_json::Value;

/// A store with a P-256 root CA valid `days` (default when `None`).
fn store_with_ca(e: &Env, days: Option<&str>) -> std::process::Output {
    e.ok(&["init", "--kdf-memory-mib", "8", "--kdf-time", "1"]);
    let mut args = vec!["--json", "ca", "--cn", "Test VPN CA", "--algo", "p256"];
    if let Some(d) = days {
        args.extend(["--days", d]);
    }
    let o = e.run(&args);
    assert!(o.status.success(), "ca: {}", s(&o.stderr));
    o
}

/// Runs ARGS, asserting exit `code`; returns (stdout, stderr).
fn run(e: &Env, args: &[&str], code: i32) -> (String, String) {
    let o = e.run(args);
    let out = s(&o.stdout);
    let err = common::expect_code(args, o, code);
    (out, err)
}

/// A date as vpnca prints it (RFC 3339, UTC, seconds).
fn vpnca_time(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// `openssl x509 -enddate` of a certificate, as vpnca prints dates.
fn not_after(e: &Env, cert: &str) -> String {
    let out = openssl_ok(&["x509", "-in", cert, "-noout", "-enddate"], e.dir.path());
    vpnca_time(openssl_time(out.trim().trim_start_matches("notAfter=")))
}

/// The CRL's (lastUpdate, nextUpdate) as openssl reads them, after checking its signature.
fn crl_dates(e: &Env) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let (crl, ca) = (e.pki.join("crl.pem"), e.pki.join("ca.crt"));
    let text = crl_verified_text(e.dir.path(), path_str(&crl), path_str(&ca));
    let field = |name: &str| {
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
        openssl_time(line)
    };
    (field("Last Update: "), field("Next Update: "))
}

/// `status --json`'s findings as (subject, problem, message).
fn findings(e: &Env, code: i32) -> Vec<(String, String, String)> {
    let (out, _) = run(e, &["--json", "status"], code);
    let v: Value = serde_json::from_str(&out).expect("status JSON");
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let g = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (g("subject"), g("problem"), g("message"))
        })
        .collect()
}

/// The message of the one finding of `subject`/`problem` (and `name` in it).
fn finding(all: &[(String, String, String)], subject: &str, problem: &str, name: &str) -> String {
    let m: Vec<&String> = all
        .iter()
        .filter(|(s, p, m)| s == subject && p == problem && m.contains(name))
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(
        m.len(),
        1,
        "one {subject}/{problem} finding of {name}: {all:?}"
    );
    m[0].clone()
}

/// The first `vpnca …` command quoted in backticks in `text`, as arguments (plain words only,
/// which is what these tests advise).
fn advised(text: &str) -> Vec<String> {
    let start = text
        .find("`vpnca ")
        .unwrap_or_else(|| panic!("no command in {text:?}"));
    let rest = &text[start + "`vpnca ".len()..];
    let cmd = &rest[..rest.find('`').expect("closing backtick")];
    cmd.split_whitespace().map(str::to_owned).collect()
}

/// After `revoke` and `renew --revoke-old` in a store with no AWS records, both routes: the
/// `vpnca clientvpn push-crl` command (not the AWS CLI), and for OpenVPN the copy of crl.pem
/// to the server's crl-verify file, its path shell-quoted: `sh` reading that word gets the
/// CRL openssl verifies, listing the revoked serial. With `--json` nothing but the report.
///
/// Fails when: revoke prints the old hint (`aws ec2 import-client-vpn-…`; seen with
/// `print_upload_steps` replaced by it), or the path is not quoted (seen with `sh` left out:
/// `sh` then splits it at the space of `my pki` and cp fails).
#[test]
fn revoke_names_the_next_step_for_client_vpn_and_openvpn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = Env {
        pki: dir.path().join("my pki"),
        dir,
    };
    store_with_ca(&e, None);
    e.ok(&["client", "alice", "--algo", "p256"]);
    e.ok(&["client", "bob", "--algo", "p256"]);
    let alice = e.json(&["show", "alice"])["serial"]
        .as_str()
        .expect("serial")
        .to_owned();

    let out = e.ok(&["revoke", "alice"]);
    assert!(!out.contains("aws ec2"), "{out}");
    assert!(
        out.contains("The VPN still accepts the revoked certificate(s) until it has this CRL:"),
        "{out}"
    );
    assert!(
        out.contains("\n  AWS Client VPN: vpnca clientvpn push-crl --endpoint cvpn-endpoint-…\n"),
        "{out}"
    );
    let word = out
        .lines()
        .find_map(|l| l.strip_prefix("  OpenVPN: copy "))
        .and_then(|l| {
            l.split(" over the file the server's crl-verify names")
                .next()
        })
        .unwrap_or_else(|| panic!("no OpenVPN step in:\n{out}"));
    assert!(
        out.contains("the server reads it again at each new connection"),
        "{out}"
    );
    let copy = e.path("server-crl.pem");
    let sh = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cp {word} {}", path_str(&copy)))
        .output()
        .expect("sh");
    assert!(
        sh.status.success(),
        "sh could not read {word}: {}",
        s(&sh.stderr)
    );
    let text = crl_verified_text(
        e.dir.path(),
        path_str(&copy),
        path_str(&e.pki.join("ca.crt")),
    );
    assert!(
        text.contains(&format!("Serial Number: {alice}")),
        "{alice} not in:\n{text}"
    );

    // renew --revoke-old writes a CRL too: the same steps.
    let out = e.ok(&["renew", "bob", "--revoke-old"]);
    assert!(
        out.contains("push-crl --endpoint cvpn-endpoint-…") && out.contains(word),
        "{out}"
    );
    // With --json, standard output is the report alone.
    e.ok(&["client", "carol", "--algo", "p256"]);
    let v = e.json(&["revoke", "carol"]);
    assert!(
        v["crl"]["number"].is_u64() && v["crl"].get("warnings").is_none(),
        "{v}"
    );
}

/// A CRL policy under the 30-day horizon is said when it is set (a note that `--days` is now
/// the policy, a warning that status reports it at once and push-crl remakes it), in JSON as
/// the CRL's `warnings`; openssl reads the 7 days. `status` then advises `vpnca crl --days
/// 3650`, and running that clears it (a plain `vpnca crl` would not: it keeps 7 days).
///
/// Fails when: no warning is made for a short CRL (seen with `crl_warnings` returning none),
/// or status advises the plain `vpnca crl`, which would leave the finding (seen with the
/// policy case of `crl_advice` removed).
#[test]
fn a_short_crl_policy_is_said_and_status_advises_days() {
    let e = Env::new();
    store_with_ca(&e, None);
    let (_, err) = run(&e, &["crl", "--days", "7"], 0);
    assert!(
        err.contains("note: the store's CRL policy is now 7 day(s) (it was 3650): the CRLs that revoke, renew --revoke-old, clientvpn push-crl and quickstart write follow it; `vpnca crl --days 3650` sets it back"),
        "{err}"
    );
    assert!(
        err.contains("warning: CRL #1 is valid 7 day(s), less than the 30 days within which `vpnca status` reports a CRL as expiring")
            && err.contains("every `vpnca clientvpn push-crl` makes a new CRL before it uploads"),
        "{err}"
    );
    let (last, next) = crl_dates(&e);
    assert_eq!(
        (next - last).whole_minutes(),
        7 * 24 * 60 + 5,
        "openssl: {last} .. {next}"
    );

    // The policy stays: no note, the same warning, in JSON too.
    let (out, err) = run(&e, &["--json", "crl"], 0);
    assert!(!err.contains("policy is now"), "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let w = v["warnings"][0].as_str().unwrap_or_default();
    assert!(w.starts_with("CRL #2 is valid 7 day(s)"), "{v}");

    let advice = finding(&findings(&e, 1), "crl", "expiring", "");
    assert!(
        advice.contains("run `vpnca crl --days 3650` and upload it"),
        "{advice}"
    );
    let cmd = advised(&advice);
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let (_, err) = run(&e, &args, 0);
    assert!(
        err.contains("now 3650 day(s) (it was 7)") && !err.contains("warning"),
        "{err}"
    );
    assert!(findings(&e, 0).is_empty());
}

/// A CA valid 10 days: `ca` warns (in JSON too) that everything it signs ends with it; a
/// client asked for 100 days is warned to end on the CA's notAfter (openssl's), and so is its
/// renewal (JSON `warnings`); a CRL is cut to it, warned with the date. `status` then advises
/// no command that cannot help: not `vpnca crl` for the CRL, not `vpnca renew` for the
/// client that ends with the CA (running them changes nothing), but a new CA; `vpnca renew`
/// still for a 2-day client, with the CA's end.
///
/// Fails when: status advises `vpnca crl` for a CRL that ends with the CA (seen with the
/// `at_ca_end` case of `crl_advice` removed), or `vpnca renew` for a certificate that ends
/// with it (seen with the first arm of the certificate advice removed).
#[test]
fn a_short_ca_is_said_and_status_advises_a_new_ca() {
    let e = Env::new();
    let o = store_with_ca(&e, Some("10"));
    let v: Value = serde_json::from_slice(&o.stdout).expect("ca JSON");
    let ca_end = not_after(&e, "pki/ca.crt");
    let w = v["warnings"][0].as_str().unwrap_or_default();
    assert!(
        w.starts_with(&format!("the CA is valid 10 day(s), until {ca_end}: every certificate and CRL it signs ends by then"))
            && w.contains("reported by `vpnca status` as expiring from now on"),
        "{v}"
    );
    assert!(
        s(&o.stderr).contains(&format!("warning: {w}")),
        "{}",
        s(&o.stderr)
    );

    let (_, err) = run(
        &e,
        &["client", "alice", "--algo", "p256", "--days", "100"],
        0,
    );
    assert_eq!(not_after(&e, "pki/issued/alice.crt"), ca_end);
    assert!(
        err.contains(&format!("warning: client alice ends on {ca_end}, the CA's own notAfter, not at the end of the validity asked")),
        "{err}"
    );
    let v = e.json(&["renew", "alice", "--days", "200"]);
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("client alice ends on"),
        "{v}"
    );
    e.ok(&["client", "bob", "--algo", "p256", "--ttl", "2d"]);

    let (_, err) = run(&e, &["crl"], 0);
    assert_eq!(vpnca_time(crl_dates(&e).1), ca_end);
    assert!(
        err.contains(&format!("warning: CRL #1's nextUpdate is {ca_end}, the CA's own notAfter, not 3650 days from now")),
        "{err}"
    );

    let all = findings(&e, 1);
    let ca = finding(&all, "ca", "expiring", "");
    assert!(ca.contains("vpnca cannot renew a CA"), "{ca}");
    let crl = finding(&all, "crl", "expiring", "");
    assert!(
        crl.contains("`vpnca crl` cannot help: that is the CA's own notAfter")
            && !crl.contains("run `vpnca crl"),
        "{crl}"
    );
    let alice = finding(&all, "certificate", "expiring", "alice");
    assert!(
        alice.contains("`vpnca renew` cannot help: it ends with the CA"),
        "{alice}"
    );
    let bob = finding(&all, "certificate", "expiring", "bob");
    assert!(
        bob.contains(&format!(
            "`vpnca renew bob`, but a renewed certificate also ends with the CA on {ca_end}"
        )),
        "{bob}"
    );
    // What the advice says cannot help does not: the same findings after a new CRL and a
    // renewal.
    e.ok(&["crl"]);
    e.ok(&["renew", "alice"]);
    let after = findings(&e, 1);
    finding(&after, "crl", "expiring", "");
    finding(&after, "certificate", "expiring", "alice");
}

/// The defaults say nothing: a CA of 3650 days signs CRLs cut to its notAfter by minutes (the
/// CA's notBefore is back-dated), which is no warning, and `crl --days 3650` (the policy it
/// already has) adds no note; the CRL JSON keeps its shape (no `warnings`).
///
/// Fails when: a CRL cut to the CA's notAfter is warned about however far away (seen with
/// `crl_warnings`' 30-day test removed).
#[test]
fn the_defaults_draw_no_warning() {
    // What is left of standard error but the P-256 CA's "Client VPN accepts only RSA" warning.
    let quiet = |err: &str| {
        let rest: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("AWS Client VPN accepts only RSA"))
            .collect();
        assert!(rest.is_empty(), "{err}");
    };
    let e = Env::new();
    let o = store_with_ca(&e, None);
    quiet(&s(&o.stderr));
    let (_, err) = run(&e, &["client", "alice"], 0);
    quiet(&err);
    let (out, err) = run(&e, &["--json", "crl", "--days", "3650"], 0);
    quiet(&err);
    let v: Value = serde_json::from_str(&out).expect("json");
    assert!(v.get("warnings").is_none(), "{v}");
    let (_, err) = run(&e, &["revoke", "alice"], 0);
    quiet(&err);
    assert!(findings(&e, 0).is_empty());
}
