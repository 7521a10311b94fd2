//! The command-line surface: help, generated man page and completions, easy-rsa aliases,
//! `--json` placement, exit codes.
mod common;
use common::*;

#[test]
fn help_lists_every_command() {
    let e = Env::new();
    let help = e.ok(&["--help"]);
    for cmd in [
        "init",
        "ca",
        "server",
        "client",
        "sign-req",
        "revoke",
        "renew",
        "crl",
        "list",
        "show",
        "export",
        "status",
        "log",
        "verify",
        "passwd",
        "quickstart",
        "completions",
        "man",
    ] {
        assert!(
            help.contains(&format!("\n  {cmd} ")),
            "--help lacks {cmd}:\n{help}"
        );
    }
    assert!(help.contains("Exit codes: 0 ok, 1 a check found a problem (status, verify), 2 error"));
}

#[test]
fn man_page_and_completions_come_from_the_clap_definitions() {
    let e = Env::new();
    let man = e.ok(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH vpnca"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(man.contains("quickstart"));
    for shell in ["bash", "zsh", "fish"] {
        let c = e.ok(&["completions", shell]);
        assert!(
            c.contains("quickstart") && c.contains("sign-req"),
            "{shell} completions incomplete"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let e = Env::new();
    e.fails(&["frobnicate"], 2);
    e.fails(&["client"], 2);
    e.fails(&["revoke"], 2);
    e.fails(&["client", "alice", "--days", "3", "--ttl", "8h"], 2);
}

#[test]
fn easy_rsa_verbs_work_as_aliases() {
    let e = Env::new();
    e.ok(&["init-pki", "--kdf-memory-mib", "8", "--kdf-time", "1"]);
    let o = e.run(&["build-ca", "nopass"]);
    assert!(o.status.success(), "{}", s(&o.stderr));
    assert!(s(&o.stderr).contains("nopass"), "a note explains nopass");
    e.ok(&["build-server-full", "vpn.example.com", "nopass"]);
    e.ok(&["build-client-full", "alice", "nopass"]);
    e.ok(&["build-client-full", "bob", "nopass"]);
    let alice = openssl_ok(
        &["x509", "-in", "pki/issued/alice.crt", "-noout", "-serial"],
        e.dir.path(),
    );
    let alice = norm_serial(alice.trim().trim_start_matches("serial="));
    e.ok(&["revoke", "alice", "keyCompromise"]);
    e.ok(&["gen-crl"]);
    // show-cert shows bob's certificate, and openssl reads a client certificate in it.
    // Fails when: bob was built with `build-server-full` (seen: openssl printed
    // "TLS Web Server Authentication").
    let show = e.ok(&["show-cert", "bob", "--pem"]);
    let pem_start = show
        .find("-----BEGIN CERTIFICATE-----")
        .expect("--pem prints the PEM");
    let pem = &show[pem_start..];
    assert_eq!(
        pem.trim_end(),
        std::fs::read_to_string(e.pki.join("issued/bob.crt"))
            .expect("issued/bob.crt")
            .trim_end(),
        "show-cert bob shows another certificate"
    );
    std::fs::write(e.path("bob.pem"), pem).expect("write");
    let eku = openssl_ok(
        &[
            "x509",
            "-in",
            "bob.pem",
            "-noout",
            "-ext",
            "extendedKeyUsage",
        ],
        e.dir.path(),
    );
    let eku: Vec<&str> = eku.lines().map(str::trim).collect();
    assert_eq!(
        eku,
        [
            "X509v3 Extended Key Usage:",
            "TLS Web Client Authentication"
        ],
        "bob's certificate is not for TLS clients only"
    );
    assert!(
        show.lines()
            .any(|l| l.split_whitespace().eq(["name:", "bob"])),
        "{show}"
    );
    assert!(
        show.lines()
            .any(|l| l.split_whitespace().eq(["kind:", "client"])),
        "{show}"
    );
    // gen-crl's CRL verifies with the CA and lists exactly alice, with her reason.
    // Fails when: pki/ca.crt was overwritten with tests/data/foreign-ca.crt before the check
    // (seen: "does not verify"), and when alice was revoked with `superseded` (seen: the
    // entry's reason "Superseded").
    let (_, entries) = crl_by_openssl(&e);
    assert_eq!(
        entries,
        std::collections::BTreeMap::from([(alice, "Key Compromise".to_string())]),
        "the CRL entries"
    );
    // Anything but `nopass` in that position is an error.
    e.fails(&["build-client-full", "carol", "pass"], 2);
}

#[test]
fn json_flag_is_global() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    for args in [
        vec!["--json", "show", "alice"],
        vec!["show", "alice", "--json"],
    ] {
        let v: serde_json::Value = serde_json::from_str(&e.ok(&args)).expect("one JSON document");
        assert_eq!(v["name"], "alice");
        assert_eq!(v["kind"], "client");
        assert_eq!(v["status"], "valid");
        assert!(
            v["serial"]
                .as_str()
                .expect("hex serial")
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
    }
    let err = e.run(&["--json", "show", "nobody"]);
    assert_eq!(err.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&s(&err.stdout)).expect("error as JSON");
    assert!(v["error"].as_str().expect("message").contains("nobody"));
}

#[test]
fn quickstart_is_repeatable() {
    let e = Env::new();
    let args = [
        "quickstart",
        "--server",
        "vpn.example.com",
        "--client",
        "alice",
        "--kdf-memory-mib",
        "8",
        "--kdf-time",
        "1",
    ];
    e.ok(&args);
    let first = e.json(&["show", "alice"]);
    e.ok(&args);
    let again = e.json(&["show", "alice"]);
    assert_eq!(
        first["serial"], again["serial"],
        "a second quickstart reuses what exists"
    );
    e.ok(&["verify"]);
}
