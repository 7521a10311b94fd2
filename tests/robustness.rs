//! Negative cases are data: every refused command exits 2, names the problem on stderr, never
//! panics, and leaves the store byte-for-byte as it was. Also: exit codes of `status` and
//! `verify`, the `--json` flag, tamper detection (the store is edited with SQLite directly) and
//! passphrase changes.
mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

/// A passphrase that does not open the test stores.
const WRONG: &str = "wrong-passphrase-9";
/// The passphrase `passwd` changes to.
const NEW_PASS: &str = "new-passphrase-2";

// ---- helpers -----------------------------------------------------------------------------------

/// Panics, naming every file that was added, removed or changed, when the snapshots differ.
fn assert_same(before: &Snapshot, after: &Snapshot, what: &str) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => diffs.push(format!("removed {}", p.display())),
            Some(a) if a != b => diffs.push(format!("changed {}", p.display())),
            Some(_) => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("added {}", p.display()));
    }
    panic!("{what}: the store changed: {diffs:#?}");
}

/// Checks a refusal: exit 2, no panic, `phrase` on stderr. Returns stderr.
fn check_refusal(what: &str, o: &Output, phrase: &str) -> String {
    let err = s(&o.stderr);
    assert!(
        !err.contains("panicked"),
        "{what}: vpnca panicked (exit {:?}):\n{err}",
        o.status.code()
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{what}: expected exit 2\nstdout: {}\nstderr: {err}",
        s(&o.stdout)
    );
    assert!(
        err.contains(phrase),
        "{what}: stderr does not name the problem (expected {phrase:?}):\n{err}"
    );
    err
}

/// Runs a prepared command that must be refused: exit 2, `phrase` on stderr, store unchanged.
fn refused_cmd(e: &Env, what: &str, cmd: &mut Command, phrase: &str) -> String {
    let before = e.snapshot();
    let o = cmd.stdin(Stdio::null()).output().expect("run vpnca");
    let err = check_refusal(what, &o, phrase);
    assert_same(&before, &e.snapshot(), what);
    err
}

/// `vpnca ARGS` must be refused with `phrase`, leaving the store unchanged.
fn refused(e: &Env, args: &[&str], phrase: &str) -> String {
    refused_cmd(e, &format!("vpnca {args:?}"), &mut e.cmd(args), phrase)
}

/// `vpnca ARGS` with another store passphrase.
fn cmd_pass(e: &Env, args: &[&str], pass: &str) -> Command {
    let mut c = e.cmd(args);
    c.env("VPNCA_PASSPHRASE", pass);
    c
}

/// A store with a CA, clients alice (with an e-mail SAN) and carol, server vpn.example.com,
/// and client bob revoked (so a CRL exists).
fn populated() -> Env {
    let e = Env::with_ca();
    e.ok(&["client", "alice", "--email", "alice@example.com"]);
    e.ok(&["server", "vpn.example.com"]);
    e.ok(&["client", "bob"]);
    e.ok(&["client", "carol"]);
    e.ok(&["revoke", "bob", "--reason", "keyCompromise"]);
    assert!(e.pki.join("crl.pem").is_file(), "revoke writes crl.pem");
    e
}

/// The serial (hex) of the certificate a name refers to (`ca` for the CA).
fn serial_of(e: &Env, name: &str) -> String {
    e.json(&["show", name])["serial"]
        .as_str()
        .expect("serial in show --json")
        .to_string()
}

/// `list --json`, parsed line by line.
fn list(e: &Env) -> Vec<Value> {
    json_lines(&e.ok(&["list", "--json"]), "list --json")
}

/// `log --json`, parsed line by line.
fn audit_log(e: &Env) -> Vec<Value> {
    json_lines(&e.ok(&["log", "--json"]), "log --json")
}

/// Runs `verify --json` on a store expected to be damaged: exit 1, nothing changed. Returns the
/// problems it reports.
fn verify_finds_problems(e: &Env, what: &str) -> Vec<String> {
    let before = e.snapshot();
    let o = e.run(&["--json", "verify"]);
    assert!(
        !s(&o.stderr).contains("panicked"),
        "{what}: verify panicked:\n{}",
        s(&o.stderr)
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: verify should exit 1\nstdout: {}\nstderr: {}",
        s(&o.stdout),
        s(&o.stderr)
    );
    assert_same(&before, &e.snapshot(), &format!("{what}: verify"));
    let v: Value = serde_json::from_str(&s(&o.stdout)).expect("verify --json output");
    let problems: Vec<String> = v["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| p.as_str().expect("problem text").to_string())
        .collect();
    assert!(
        !problems.is_empty(),
        "{what}: verify exit 1 without problems"
    );
    problems
}

/// `verify` exits 0 and reports no problem.
fn verify_clean(e: &Env, pass: &str) {
    let o = cmd_pass(e, &["--json", "verify"], pass)
        .output()
        .expect("run vpnca");
    assert_verify_clean("verify", &o);
}

/// Opens the store database directly (as an attacker or a broken disk would).
fn db(e: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(e.pki.join("vpnca.db")).expect("open the store with rusqlite")
}

fn key_blob(c: &rusqlite::Connection, serial: &str) -> Vec<u8> {
    c.query_row(
        "SELECT key_blob FROM certs WHERE serial = ?1",
        [serial],
        |r| r.get(0),
    )
    .expect("key_blob")
}

/// Deterministic pseudo-random bytes (xorshift64), never starting with 0x30 (DER SEQUENCE).
fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    if v.first() == Some(&0x30) {
        v[0] = 0x31;
    }
    v
}

/// A valid P-256 certificate signing request for CN `cn`, made by openssl, at `dir/file`.
fn openssl_csr(dir: &Path, file: &str, cn: &str) -> PathBuf {
    openssl_req(dir, EC_P256, cn, &format!("{file}.key"), file, &[]);
    dir.join(file)
}

// ---- refusals that leave the store unchanged ---------------------------------------------------

#[test]
fn wrong_passphrase_is_refused_and_changes_nothing() {
    let e = populated();
    let alice = serial_of(&e, "alice");
    let csr = openssl_csr(e.dir.path(), "req.csr", "csr-user");
    let csr = csr.to_str().expect("utf8");
    let cases: &[&[&str]] = &[
        &["client", "dave"],
        &["server", "new.example.com"],
        &["revoke", "alice"],
        &["revoke", "--serial", &alice],
        &["renew", "alice"],
        &["crl"],
        &["export", "alice", "--out", "out-wrong", "--key"],
        &["export", "alice", "--out", "out-wrong"],
        &["verify"],
        &["passwd"],
        &["ca", "--cn", "Another CA"],
        &["sign-req", csr, "--type", "client", "--name", "csr-user"],
        &[
            "quickstart",
            "--server",
            "vpn.example.com",
            "--client",
            "zed",
        ],
    ];
    for args in cases {
        for pass in [WRONG, "", PASS.trim_end_matches('1')] {
            let mut c = cmd_pass(&e, args, pass);
            c.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
            refused_cmd(
                &e,
                &format!("{args:?} with passphrase {pass:?}"),
                &mut c,
                "wrong passphrase",
            );
        }
    }
    assert!(!e.path("out-wrong").exists(), "export wrote files");
    // The same through --passphrase-file.
    let f = e.path("wrong.pass");
    std::fs::write(&f, format!("{WRONG}\n")).expect("write");
    let f = f.to_str().expect("utf8");
    for args in cases {
        let mut a = vec!["--passphrase-file", f];
        a.extend_from_slice(args);
        let mut c = e.cmd(&a);
        c.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
        refused_cmd(&e, &format!("{a:?}"), &mut c, "wrong passphrase");
    }
    // Still the old passphrase.
    verify_clean(&e, PASS);
}

#[test]
fn duplicate_names_are_refused() {
    let e = populated();
    e.ok(&["client", "dup.example.com"]);
    let cases: &[&[&str]] = &[
        &["client", "alice"],
        &["client", "alice", "--email", "other@example.com"],
        &["client", "carol", "--ttl", "8h"],
        &["server", "vpn.example.com"],
        // the same name across kinds
        &["client", "vpn.example.com"],
        &["server", "dup.example.com"],
        &["build-client-full", "alice", "nopass"],
    ];
    for args in cases {
        let err = refused(&e, args, "exists already");
        assert!(err.contains("renew"), "the message suggests renew: {err}");
    }
    // The same through sign-req.
    let csr = openssl_csr(e.dir.path(), "alice.csr", "alice");
    refused(
        &e,
        &["sign-req", csr.to_str().expect("utf8"), "--type", "client"],
        "exists already",
    );
    // A revoked name can be issued again.
    e.ok(&["client", "bob"]);
}

#[test]
fn invalid_names_are_refused() {
    let e = populated();
    let long = "x".repeat(65);
    let bad_names = [
        "",
        "a/b",
        "a\\b",
        "..",
        ".x",
        "-x",
        long.as_str(),
        "a\u{1}b",
        "a\nb",
        "tab\there",
        " x",
        "x ",
    ];
    for n in bad_names {
        refused(&e, &["client", "--", n], "invalid name");
        refused(&e, &["server", "--", n], "invalid name");
        refused(&e, &["revoke", "--", n], "invalid name");
    }
    // A server name must be a DNS name (it becomes the DNS SAN).
    for n in [
        "bad_name",
        "a..b",
        "vpn.example.com.",
        "vpn-.example.com",
        "1.2.3.4",
        "*.com",
        "vpn example.com",
        "vpn.exämple.com",
    ] {
        refused(&e, &["server", n], "not a valid DNS name");
    }
    // sign-req with an explicit bad name.
    let csr = openssl_csr(e.dir.path(), "req.csr", "fine");
    let csr = csr.to_str().expect("utf8");
    for n in ["a/b", "..", " x"] {
        refused(
            &e,
            &["sign-req", csr, "--type", "client", "--name", n],
            "invalid name",
        );
    }
    refused(
        &e,
        &["sign-req", csr, "--type", "server", "--name", "bad_name"],
        "not a valid DNS name",
    );
}

#[test]
fn unknown_and_malformed_targets_are_refused() {
    let e = populated();
    let absent = "4A0B0C0D0E0F10111213141516171819";
    let cases: &[(&[&str], &str)] = &[
        (&["revoke", "nobody"], "not found"),
        (&["revoke", "--serial", absent], "not found"),
        (&["show", "nobody"], "not found"),
        (&["show", "--serial", absent], "not found"),
        (&["export", "nobody", "--out", "o1"], "not found"),
        (&["export", "--serial", absent, "--out", "o1"], "not found"),
        (&["export", "nobody", "--out", "o1", "--key"], "not found"),
        (&["renew", "nobody"], "not found"),
        (&["revoke", "--serial", "xyz"], "not a hexadecimal serial"),
        (&["show", "--serial", "xyz"], "not a hexadecimal serial"),
        (
            &["export", "--serial", "xyz", "--out", "o1"],
            "not a hexadecimal serial",
        ),
        (&["revoke", "--serial", ""], "not a hexadecimal serial"),
        (&["show", "--serial", "12 34"], "not a hexadecimal serial"),
        (&["show", "--serial", "0xZZ"], "not a hexadecimal serial"),
    ];
    for (args, phrase) in cases {
        refused(&e, args, phrase);
    }
    assert!(!e.path("o1").exists(), "a refused export created its --out");
}

#[test]
fn state_conflicts_are_refused() {
    let e = populated();
    let bob = serial_of(&e, "bob");
    let ca = serial_of(&e, "ca");
    std::fs::create_dir(e.path("taken")).expect("mkdir");
    std::fs::write(e.path("taken/alice.crt"), "keep me").expect("write");
    let cases: &[(&[&str], &str)] = &[
        (&["revoke", "bob"], "bob is already revoked: serial"),
        (&["revoke", "--serial", &bob], "already revoked"),
        (&["revoke", "--serial", &ca], "is the CA itself"),
        (&["renew", "bob"], "is revoked"),
        (&["ca", "--cn", "Second CA"], "already has a CA"),
        (
            &["export", "alice", "--out", "taken", "--key"],
            "cannot write taken/alice.crt: it exists and differs from the certificate being exported",
        ),
    ];
    for (args, phrase) in cases {
        refused(&e, args, phrase);
    }
    assert_eq!(
        std::fs::read(e.path("taken/alice.crt")).expect("read"),
        b"keep me"
    );
    assert!(!e.path("taken/alice.key").exists());
    assert!(!e.path("taken/ca.crt").exists());
}

#[test]
fn bad_flags_are_refused() {
    let e = populated();
    let cases: &[(&[&str], &str)] = &[
        (&["client", "x", "--days", "0"], "out of range"),
        (&["client", "x", "--days", "999999"], "out of range"),
        (
            &["server", "x.example.com", "--days", "36501"],
            "out of range",
        ),
        (&["client", "x", "--ttl", "5x"], "--ttl"),
        (&["client", "x", "--ttl", "h"], "--ttl"),
        (&["client", "x", "--ttl=-5h"], "--ttl"),
        (&["client", "x", "--ttl", "0h"], "out of range"),
        (&["client", "x", "--ttl", "36501d"], "out of range"),
        (
            &["client", "x", "--days", "5", "--ttl", "8h"],
            "cannot be used with",
        ),
        (
            &["client", "x", "--algo", "rsa1024"],
            "invalid key algorithm",
        ),
        (
            &["server", "x.example.com", "--algo", "dsa"],
            "invalid key algorithm",
        ),
        (
            &["revoke", "alice", "--reason", "foo"],
            "invalid revocation reason",
        ),
        (&["revoke", "alice", "foo"], "invalid revocation reason"),
        (
            &["server", "s.example.com", "--san", "URI:x"],
            "unknown type",
        ),
        (
            &["server", "s.example.com", "--san", "IP:300.1.1.1"],
            "not an IP address",
        ),
        (
            &["server", "s.example.com", "--san", "DNS:bad_name"],
            "not a valid DNS name",
        ),
        (
            &["server", "s.example.com", "--san", "nocolon"],
            "expected DNS:name",
        ),
        (
            &["server", "s.example.com", "--san", "email:a@example.com"],
            "does not allow email SANs",
        ),
        (
            &["client", "x", "--san", "DNS:x.example.com"],
            "does not allow dns SANs",
        ),
        (
            &["client", "x", "--san", "IP:10.0.0.1"],
            "does not allow ip SANs",
        ),
        (&["client", "x", "--email", "nope"], "e-mail address"),
        (
            &["client", "x", "--email", "a b@example.com"],
            "e-mail address",
        ),
        (&["client", "x", "--profile", "nosuch"], "no such profile"),
        (&["client", "x", "--profile", "root-ca"], "is a CA profile"),
        (&["client", "x", "sopass"], "unexpected argument"),
        (&["list", "--status", "bogus"], "invalid status"),
        (&["list", "--kind", "bogus"], "invalid kind"),
        (&["list", "--expiring-within", "-1"], "unexpected argument"),
        (&["status", "--warn-days", "abc"], "invalid value"),
        (&["crl", "--days", "0"], "out of range"),
        (&["crl", "--days", "99999"], "out of range"),
        (&["renew", "alice", "--days", "0"], "out of range"),
        (&["renew", "alice", "--ttl", "5x"], "--ttl"),
        (
            &["renew", "alice", "--algo", "rsa1024"],
            "invalid key algorithm",
        ),
        (
            &["renew", "alice", "--reuse-key", "--algo", "p256"],
            "cannot change the algorithm",
        ),
        (&["passwd", "--kdf-memory-mib", "1"], "KDF memory"),
        (&["passwd", "--kdf-time", "0"], "KDF cost"),
        (&["client"], "required"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, phrase) in cases {
        let mut c = e.cmd(args);
        c.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
        refused_cmd(&e, &format!("vpnca {args:?}"), &mut c, phrase);
    }
}

/// Numbers far out of range must be refused (or clamped), never crash the program.
#[test]
fn huge_numbers_never_panic() {
    let e = populated();
    for args in [
        &["client", "x", "--ttl", "200000000000000d"][..],
        &["client", "x", "--ttl", "9000000000000000h"],
        &["client", "x", "--ttl", "9000000000000000000m"],
        &["renew", "alice", "--ttl", "200000000000000d"],
    ] {
        refused(&e, args, "--ttl");
    }
    // Reports may refuse the number (2) or report on everything (status 1, list 0); never 101.
    for (args, codes) in [
        (&["status", "--warn-days", "4294967295"][..], &[1, 2][..]),
        (&["list", "--expiring-within", "4294967295"], &[0, 2]),
    ] {
        let before = e.snapshot();
        let o = e.run(args);
        let err = s(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
        assert!(
            o.status.code().is_some_and(|c| codes.contains(&c)),
            "{args:?}: exit {:?}\n{err}",
            o.status.code()
        );
        assert_same(&before, &e.snapshot(), &format!("{args:?}"));
    }
}

#[test]
fn bad_csr_files_are_refused() {
    let e = populated();
    let dir = e.dir.path();
    let good = openssl_csr(dir, "good.csr", "csr-user");
    let good_pem = std::fs::read(&good).expect("read");
    openssl_ok(
        &[
            "req", "-in", "good.csr", "-outform", "DER", "-out", "good.der",
        ],
        dir,
    );
    let mut bad_sig = std::fs::read(dir.join("good.der")).expect("read");
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    let truncated = {
        let text = String::from_utf8(good_pem.clone()).expect("pem");
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "{}\n{}\n{}\n",
            lines[0],
            &lines[1][..20],
            lines[lines.len() - 1]
        )
    };
    let mut der_junk = junk(200, 7);
    der_junk[0] = 0x30;
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage.csr",
            b"this is not a request\n".to_vec(),
            "no PEM CERTIFICATE REQUEST block",
        ),
        ("empty.csr", Vec::new(), "bad certificate signing request"),
        ("junk.csr", junk(512, 3), "bad certificate signing request"),
        ("derjunk.csr", der_junk, "not a valid PKCS#10 request"),
        (
            "truncated.csr",
            truncated.into_bytes(),
            "bad certificate signing request",
        ),
        ("badsig.der", bad_sig, "signature does not verify"),
        (
            "cert.csr",
            std::fs::read(e.pki.join("ca.crt")).expect("ca.crt"),
            "no PEM CERTIFICATE REQUEST block",
        ),
        (
            "two.csr",
            [good_pem.clone(), good_pem.clone()].concat(),
            "more than one request",
        ),
    ];
    for (name, bytes, phrase) in &files {
        std::fs::write(dir.join(name), bytes).expect("write");
        let err = refused(&e, &["sign-req", name, "--type", "client"], phrase);
        assert!(err.contains(name), "the message names the file: {err}");
    }
    refused(
        &e,
        &["sign-req", "missing.csr", "--type", "client"],
        "missing.csr",
    );
    refused(
        &e,
        &["sign-req", "client", "nosuchreq"],
        "reqs/nosuchreq.req",
    );
    refused(
        &e,
        &["sign-req", "good.csr"],
        "--type client|server is required",
    );
    refused(
        &e,
        &["sign-req", "good.csr", "--type", "bogus"],
        "invalid --type",
    );
    // The good one works, so the refusals above are about the files.
    e.ok(&["sign-req", "good.csr", "--type", "client"]);
}

/// A well-formed request for a key vpnca does not sign (RSA-1024, P-521) must be refused for
/// its key, not called corrupted.
#[test]
fn csr_with_an_unsupported_key_names_the_key() {
    let e = populated();
    let dir = e.dir.path();
    for (file, newkey) in [
        ("rsa1024.csr", &["-newkey", "rsa:1024"][..]),
        (
            "p521.csr",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        ),
    ] {
        openssl_req(dir, newkey, "small", "small.key", file, &[]);
        openssl_ok(&["req", "-in", file, "-verify", "-noout"], dir);
        refused(
            &e,
            &["sign-req", file, "--type", "client"],
            "unsupported public key",
        );
    }
}

/// Commands that touch the store, for the corrupted and missing store cases.
const STORE_COMMANDS: &[&[&str]] = &[
    &["list"],
    &["list", "--json"],
    &["status"],
    &["show", "alice"],
    &["log"],
    &["verify"],
    &["client", "zed"],
    &["server", "zed.example.com"],
    &["revoke", "alice"],
    &["renew", "alice"],
    &["crl"],
    &["export", "alice", "--out", "exported", "--key"],
    &["passwd"],
    &["ca", "--cn", "X"],
];

#[test]
fn corrupted_store_file_is_refused_cleanly() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["crl"]);
    let db_path = e.pki.join("vpnca.db");
    let original = std::fs::read(&db_path).expect("read db");
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("junk", junk(original.len(), 11)),
        ("empty", Vec::new()),
        ("first half", original[..original.len() / 2].to_vec()),
        ("first page", original[..4096].to_vec()),
        ("text", b"this is not a database\n".to_vec()),
        ("header only", original[..100].to_vec()),
    ];
    for (what, bytes) in &variants {
        std::fs::write(&db_path, bytes).expect("write db");
        for args in STORE_COMMANDS {
            let mut c = e.cmd(args);
            c.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
            let err = refused_cmd(&e, &format!("{what} store: {args:?}"), &mut c, "error: ");
            assert!(
                err.contains("database"),
                "{what} store: {args:?}: the message should say the database is unreadable:\n{err}"
            );
        }
        refused(
            &e,
            &["init", "--kdf-memory-mib", "8", "--kdf-time", "1"],
            "already exists",
        );
        assert!(!e.path("exported").exists());
    }
    // Put the original back: the store works again.
    std::fs::write(&db_path, &original).expect("write db");
    verify_clean(&e, PASS);
}

/// `verify` promises to check the whole store: a damaged database page must not pass as
/// "intact". Every b-tree's root page is overwritten in turn.
#[test]
fn verify_detects_a_corrupted_database_page() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["crl"]);
    let db_path = e.pki.join("vpnca.db");
    let (page_size, roots): (usize, Vec<(String, i64)>) = {
        let c = db(&e);
        let ps: i64 = c
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .expect("page_size");
        let mut st = c
            .prepare("SELECT name, rootpage FROM sqlite_master WHERE rootpage > 1")
            .expect("prepare");
        let roots = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows");
        (usize::try_from(ps).expect("page size"), roots)
    };
    let original = std::fs::read(&db_path).expect("read db");
    let mut passed = Vec::new();
    for (name, root) in &roots {
        let mut bytes = original.clone();
        let start = (usize::try_from(*root).expect("root") - 1) * page_size;
        bytes[start..start + page_size].fill(0x5a);
        std::fs::write(&db_path, &bytes).expect("write db");
        let o = e.run(&["verify"]);
        let out = s(&o.stdout);
        assert!(!s(&o.stderr).contains("panicked"), "{name}: panic");
        if o.status.code() == Some(0) || out.contains("intact") {
            passed.push(name.clone());
        }
    }
    std::fs::write(&db_path, &original).expect("write db");
    assert!(
        passed.is_empty(),
        "verify called the store intact with these b-trees destroyed: {passed:?}"
    );
}

#[test]
fn missing_store_says_run_init() {
    // An empty directory, and a directory that does not exist.
    let empty = Env::new();
    std::fs::create_dir(&empty.pki).expect("mkdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = dir.path().join("does/not/exist");
    let absent = Env { dir, pki };
    for e in [&empty, &absent] {
        for args in STORE_COMMANDS {
            let mut c = e.cmd(args);
            c.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
            refused_cmd(
                e,
                &format!("missing store: {args:?}"),
                &mut c,
                "run `vpnca init`",
            );
        }
        refused(e, &["sign-req", "x.csr", "--type", "client"], "x.csr");
        assert!(!e.pki.join("vpnca.db").exists());
        assert!(!e.path("exported").exists());
    }
    assert!(
        !absent.pki.exists(),
        "a command created the store directory"
    );
    assert_eq!(
        std::fs::read_dir(&empty.pki).expect("read_dir").count(),
        0,
        "a command wrote into the empty directory"
    );
}

#[test]
fn init_refuses_an_existing_store_and_a_short_passphrase() {
    let e = Env::init();
    let init = ["init", "--kdf-memory-mib", "8", "--kdf-time", "1"];
    refused(&e, &init, "already exists");
    refused(&e, &["init-pki"], "already exists");
    refused_cmd(
        &e,
        "init over a store with another passphrase",
        &mut cmd_pass(&e, &init, NEW_PASS),
        "already exists",
    );
    refused(
        &e,
        &["quickstart", "--server", "bad_name"],
        "not a valid DNS name",
    );
    e.ok(&["ca"]);
    refused(&e, &init, "already exists");

    for pass in ["short", "", "1234567"] {
        let f = Env::new();
        refused_cmd(
            &f,
            &format!("init with passphrase {pass:?}"),
            &mut cmd_pass(&f, &init, pass),
            "unacceptable passphrase",
        );
        assert!(
            !f.pki.exists(),
            "a refused init created {}",
            f.pki.display()
        );
        refused_cmd(
            &f,
            &format!("quickstart with passphrase {pass:?}"),
            &mut cmd_pass(&f, &["quickstart", "--server", "vpn.example.com"], pass),
            "unacceptable passphrase",
        );
        assert!(
            !f.pki.exists(),
            "a refused quickstart created {}",
            f.pki.display()
        );
    }
    let f = Env::new();
    refused(&f, &["init", "--kdf-memory-mib", "1"], "KDF memory");
    refused(&f, &["init", "--kdf-time", "0"], "KDF cost");
    assert!(!f.pki.exists());
}

#[test]
fn no_passphrase_names_the_variable() {
    let e = populated();
    let csr = openssl_csr(e.dir.path(), "req.csr", "csr-user");
    let csr = csr.to_str().expect("utf8");
    let cases: &[&[&str]] = &[
        &["client", "dave"],
        &["server", "new.example.com"],
        &["revoke", "alice"],
        &["renew", "alice"],
        &["crl"],
        &["export", "alice", "--out", "o", "--key"],
        &["verify"],
        &["passwd"],
        &["ca", "--cn", "X"],
        &["sign-req", csr, "--type", "client"],
        &["quickstart", "--server", "vpn.example.com"],
    ];
    for args in cases {
        let mut c = e.cmd(args);
        c.env_remove("VPNCA_PASSPHRASE")
            .env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
        refused_cmd(
            &e,
            &format!("{args:?} without a passphrase"),
            &mut c,
            "VPNCA_PASSPHRASE",
        );
    }
    // passwd without a new passphrase names the other variable.
    refused(&e, &["passwd"], "VPNCA_NEW_PASSPHRASE");
    // A passphrase file that does not exist.
    refused(
        &e,
        &["--passphrase-file", "nope.txt", "verify"],
        "reading passphrase file",
    );
    let mut c = e.cmd(&["passwd", "--new-passphrase-file", "nope.txt"]);
    refused_cmd(
        &e,
        "passwd --new-passphrase-file nope.txt",
        &mut c,
        "nope.txt",
    );
    // Reading commands work without a passphrase.
    for args in [&["list"][..], &["show", "alice"], &["log"], &["status"]] {
        let o = e
            .cmd(args)
            .env_remove("VPNCA_PASSPHRASE")
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", s(&o.stderr));
    }
    // init without a passphrase creates nothing.
    let f = Env::new();
    let mut c = f.cmd(&["init"]);
    c.env_remove("VPNCA_PASSPHRASE");
    refused_cmd(&f, "init without a passphrase", &mut c, "VPNCA_PASSPHRASE");
    assert!(!f.pki.exists());
}

#[test]
fn bad_profile_override_names_the_file() {
    let e = populated();
    let builtin = |name: &str| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("pki-templates/{name}.toml")),
        )
        .expect("built-in profile")
    };
    let templates = e.pki.join("templates");
    std::fs::create_dir(&templates).expect("mkdir");
    let client = builtin("client");
    assert!(client.contains("days = 825"));
    std::fs::write(
        templates.join("client.toml"),
        client.replace("days = 825", "days = 0"),
    )
    .expect("write");
    let err = refused(
        &e,
        &["template", "adopt", "client"],
        "templates/client.toml",
    );
    assert!(err.contains("days = 0"), "{err}");
    // Not adopted, the file stops issuing with that profile (it is never used silently).
    for args in [
        &["client", "zed"][..],
        &["renew", "alice"],
        &["client", "zed", "--days", "10"],
    ] {
        let err = refused(&e, args, "templates/client.toml");
        assert!(err.contains("this file is not adopted"), "{err}");
    }
    let server = builtin("server");
    for (what, text, phrase) in [
        (
            "not TOML",
            "not toml [".to_string(),
            "templates/server.toml",
        ),
        (
            "unknown field",
            format!("{server}\nextra = 1\n"),
            "templates/server.toml",
        ),
        (
            "CA bits on an end entity",
            server.replace("\"digitalSignature\",", "\"keyCertSign\","),
            "must not have keyCertSign",
        ),
        (
            "unknown SAN type",
            server.replace("allow = [\"dns\", \"ip\"]", "allow = [\"uri\"]"),
            "unknown SAN type",
        ),
    ] {
        assert_ne!(text, server, "{what}: the edit must apply");
        std::fs::write(templates.join("server.toml"), &text).expect("write");
        refused_cmd(
            &e,
            &format!("server profile {what}"),
            &mut e.cmd(&["template", "adopt", "server"]),
            phrase,
        );
    }
    // Fixing the override makes the commands work again.
    std::fs::remove_dir_all(&templates).expect("rm");
    e.ok(&["client", "zed"]);
}

// ---- exit codes and JSON -----------------------------------------------------------------------

#[test]
fn status_and_verify_exit_codes() {
    let e = Env::with_ca();
    // No CRL yet: status needs attention.
    let o = e.run(&["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    let o = e.run(&["--json", "status"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_str(&s(&o.stdout)).expect("status json");
    assert!(
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["subject"] == "crl" && f["problem"] == "missing"),
        "{v}"
    );
    // A fresh PKI with a CRL: all fine.
    e.ok(&["crl"]);
    e.ok(&["client", "alice"]);
    e.ok(&["status"]);
    let v = e.json(&["status"]);
    assert_eq!(v["findings"], serde_json::json!([]), "{v}");
    assert_eq!(v["crl_number"], 1, "{v}");
    verify_clean(&e, PASS);
    // status works locked.
    let o = e
        .cmd(&["status"])
        .env_remove("VPNCA_PASSPHRASE")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    // A certificate expiring within --warn-days.
    e.ok(&["client", "short", "--days", "5"]);
    let o = e.run(&["status", "--warn-days", "30"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert!(s(&o.stdout).contains("short"), "{}", s(&o.stdout));
    for args in [
        &["--json", "status", "--warn-days", "30"][..],
        &["status", "--warn-days", "30", "--json"],
    ] {
        let o = e.run(args);
        assert_eq!(o.status.code(), Some(1));
        let v: Value = serde_json::from_str(&s(&o.stdout)).expect("status json");
        let findings = v["findings"].as_array().expect("findings");
        assert_eq!(findings.len(), 1, "{v}");
        assert_eq!(findings[0]["name"], "short", "{v}");
        assert_eq!(findings[0]["problem"], "expiring", "{v}");
        assert_eq!(findings[0]["serial"], serial_of(&e, "short").as_str());
    }
    // Outside the window: fine again.
    e.ok(&["status", "--warn-days", "1"]);
    // The default window is 30 days.
    assert_eq!(e.run(&["status"]).status.code(), Some(1));
    verify_clean(&e, PASS);
}

#[test]
fn json_flag_before_and_after_the_subcommand() {
    let e = populated();
    let before = e.ok(&["--json", "list"]);
    let after = e.ok(&["list", "--json"]);
    assert_eq!(before, after);
    let lines: Vec<&str> = before.lines().collect();
    assert_eq!(lines.len(), 5, "{before}");
    let mut names = BTreeSet::new();
    let mut serials = BTreeSet::new();
    for l in &lines {
        let v: Value = serde_json::from_str(l).expect("one JSON object per line");
        assert!(v.is_object(), "{l}");
        let name = v["name"].as_str().expect("name").to_string();
        let serial = v["serial"].as_str().expect("serial");
        assert!(
            !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_hexdigit()),
            "serial is hex: {l}"
        );
        assert!(
            ["ca", "server", "client"].contains(&v["kind"].as_str().expect("kind")),
            "{l}"
        );
        let status = v["status"].as_str().expect("status");
        assert!(
            ["valid", "superseded", "revoked", "expired"].contains(&status),
            "{l}"
        );
        assert_eq!(status == "revoked", name == "bob", "{l}");
        time::OffsetDateTime::parse(
            v["not_after"].as_str().expect("not_after"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("not_after is RFC 3339");
        names.insert(name);
        serials.insert(serial.to_string());
    }
    assert_eq!(
        names,
        ["Test VPN CA", "alice", "bob", "carol", "vpn.example.com"]
            .map(String::from)
            .into()
    );
    assert_eq!(serials.len(), 5);
    // The serial is what openssl prints.
    let openssl_serial = openssl_ok(
        &["x509", "-noout", "-serial", "-in", "pki/issued/alice.crt"],
        e.dir.path(),
    );
    assert_eq!(
        openssl_serial.trim(),
        format!("serial={}", serial_of(&e, "alice"))
    );
    // Filters combine with --json in either position.
    assert_eq!(
        e.ok(&["--json", "list", "--status", "revoked"]),
        e.ok(&["list", "--status", "revoked", "--json"])
    );
    assert_eq!(
        e.ok(&["list", "--kind", "server", "--json"])
            .lines()
            .count(),
        1
    );
    // Other commands too.
    for args in [
        &["--json", "show", "alice"][..],
        &["show", "alice", "--json"],
        &["--json", "status"],
        &["status", "--json"],
        &["--json", "verify"],
        &["verify", "--json"],
    ] {
        let out = e.ok(args);
        let v: Value = serde_json::from_str(&out).expect("one JSON document");
        assert!(v.is_object(), "{args:?}: {out}");
    }
    for args in [&["--json", "log"][..], &["log", "--json"]] {
        for l in e.ok(args).lines() {
            let v: Value = serde_json::from_str(l).expect("log line");
            assert!(v["action"].is_string(), "{l}");
        }
    }
    // Errors are JSON too, with exit 2.
    for args in [
        &["--json", "client", "alice"][..],
        &["client", "alice", "--json"],
    ] {
        let o = e.run(args);
        assert_eq!(o.status.code(), Some(2));
        let v: Value = serde_json::from_str(&s(&o.stdout)).expect("error JSON");
        assert!(
            v["error"]
                .as_str()
                .expect("error")
                .contains("exists already"),
            "{v}"
        );
    }
}

// ---- tamper detection --------------------------------------------------------------------------

#[test]
fn tamper_flipped_key_blob_byte() {
    let e = populated();
    let alice = serial_of(&e, "alice");
    {
        let c = db(&e);
        let mut blob = key_blob(&c, &alice);
        let mid = blob.len() / 2;
        blob[mid] ^= 0x40;
        c.execute(
            "UPDATE certs SET key_blob = ?1 WHERE serial = ?2",
            rusqlite::params![blob, alice],
        )
        .expect("update");
    }
    let problems = verify_finds_problems(&e, "flipped key blob");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("alice") && p.contains(&alice)),
        "verify names alice: {problems:?}"
    );
    for args in [
        &["export", "alice", "--out", "x", "--key"][..],
        &["export", "alice", "--out", "x"],
        &["export", "--serial", &alice, "--out", "x", "--key"],
        // A tampered record is never laundered by an update.
        &["revoke", "alice"],
        &["renew", "alice"],
        &["renew", "alice", "--reuse-key"],
    ] {
        refused(&e, args, "integrity check failed");
    }
    assert!(!e.path("x").exists(), "a refused export wrote files");
    // The other certificates are unaffected.
    e.ok(&["export", "carol", "--out", "carol", "--key"]);
    openssl_ok(&["pkey", "-in", "carol/carol.key", "-noout"], e.dir.path());
}

#[test]
fn tamper_revoked_record_set_back_to_valid() {
    let e = populated();
    let bob = serial_of(&e, "bob");
    let crl_before = std::fs::read(e.pki.join("crl.pem")).expect("crl.pem");
    let n = db(&e)
        .execute(
            "UPDATE certs SET state = 'valid', revoked_at = NULL, reason = NULL WHERE serial = ?1",
            [&bob],
        )
        .expect("update");
    assert_eq!(n, 1);
    let problems = verify_finds_problems(&e, "revocation undone");
    assert!(
        problems.iter().any(|p| p.contains(&bob)),
        "verify names bob's record: {problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("revoked")),
        "verify reports the revoked set: {problems:?}"
    );
    for args in [
        &["crl"][..],
        &["crl", "--out", "new-crl.pem"],
        &["revoke", "carol"],
        &["renew", "alice", "--revoke-old"],
        &["export", "bob", "--out", "x", "--key"],
    ] {
        refused(&e, args, "integrity check failed");
    }
    assert_eq!(
        std::fs::read(e.pki.join("crl.pem")).expect("crl.pem"),
        crl_before,
        "crl.pem changed"
    );
    assert!(!e.path("new-crl.pem").exists());
    let carol = e.json(&["show", "carol"]);
    assert_eq!(carol["status"], "valid", "a refused revoke revoked carol");
}

#[test]
fn tamper_deleted_audit_entries() {
    let e = populated();
    let db_path = e.pki.join("vpnca.db");
    let pristine = std::fs::read(&db_path).expect("read db");
    let n: i64 = db(&e)
        .query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0))
        .expect("max seq");
    assert!(n >= 6, "{n} audit entries");
    for (what, sql) in [
        (
            "middle entry",
            format!("DELETE FROM audit WHERE seq = {}", n / 2),
        ),
        ("first entry", "DELETE FROM audit WHERE seq = 1".to_string()),
        ("last entry", format!("DELETE FROM audit WHERE seq = {n}")),
        (
            "edited detail",
            format!("UPDATE audit SET detail = '{{}}' WHERE seq = {}", n / 2),
        ),
        (
            "edited user",
            "UPDATE audit SET user = 'someone else' WHERE seq = 2".to_string(),
        ),
    ] {
        std::fs::write(&db_path, &pristine).expect("restore");
        assert_eq!(db(&e).execute(&sql, []).expect("tamper"), 1, "{what}");
        let problems = verify_finds_problems(&e, what);
        assert!(
            problems.iter().any(|p| p.contains("audit log")),
            "{what}: {problems:?}"
        );
    }
    std::fs::write(&db_path, &pristine).expect("restore");
    verify_clean(&e, PASS);
}

#[test]
fn tamper_swapped_key_blobs() {
    let e = populated();
    let alice = serial_of(&e, "alice");
    let carol = serial_of(&e, "carol");
    let db_path = e.pki.join("vpnca.db");
    let pristine = std::fs::read(&db_path).expect("read db");
    for (what, cols) in [
        ("key_blob", &["key_blob"][..]),
        ("key_blob and mac", &["key_blob", "mac"]),
    ] {
        std::fs::write(&db_path, &pristine).expect("restore");
        {
            let c = db(&e);
            for col in cols {
                let get = |serial: &str| -> Vec<u8> {
                    c.query_row(
                        &format!("SELECT {col} FROM certs WHERE serial = ?1"),
                        [serial],
                        |r| r.get(0),
                    )
                    .expect("select")
                };
                let (a, b) = (get(&alice), get(&carol));
                assert_ne!(a, b);
                let set = format!("UPDATE certs SET {col} = ?1 WHERE serial = ?2");
                c.execute(&set, rusqlite::params![b, alice])
                    .expect("update");
                c.execute(&set, rusqlite::params![a, carol])
                    .expect("update");
            }
        }
        let problems = verify_finds_problems(&e, what);
        for (name, serial) in [("alice", &alice), ("carol", &carol)] {
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(name) && p.contains(serial.as_str())),
                "{what}: verify names {name}: {problems:?}"
            );
            refused(
                &e,
                &["export", name, "--out", "x", "--key"],
                "integrity check failed",
            );
        }
        assert!(!e.path("x").exists());
    }
}

#[test]
fn tamper_deleted_revoked_record() {
    let e = populated();
    let bob = serial_of(&e, "bob");
    let crl_before = std::fs::read(e.pki.join("crl.pem")).expect("crl.pem");
    let n = db(&e)
        .execute("DELETE FROM certs WHERE serial = ?1", [&bob])
        .expect("delete");
    assert_eq!(n, 1);
    let problems = verify_finds_problems(&e, "revoked record deleted");
    assert!(
        problems.iter().any(|p| p.contains("revoked")),
        "{problems:?}"
    );
    for args in [
        &["crl"][..],
        &["revoke", "carol"],
        &["renew", "alice", "--revoke-old"],
    ] {
        refused(&e, args, "integrity check failed");
    }
    assert_eq!(
        std::fs::read(e.pki.join("crl.pem")).expect("crl.pem"),
        crl_before
    );
}

#[test]
fn tamper_edited_record_fields() {
    let e = populated();
    let alice = serial_of(&e, "alice");
    let carol = serial_of(&e, "carol");
    let db_path = e.pki.join("vpnca.db");
    let pristine = std::fs::read(&db_path).expect("read db");
    let cases = [
        (
            "not_after extended",
            "UPDATE certs SET not_after = not_after + 86400000 WHERE serial = ?1",
        ),
        (
            "renamed",
            "UPDATE certs SET name = 'mallory' WHERE serial = ?1",
        ),
        (
            "kind changed",
            "UPDATE certs SET kind = 'server' WHERE serial = ?1",
        ),
        (
            "profile changed",
            "UPDATE certs SET profile = 'server-client' WHERE serial = ?1",
        ),
        (
            "certificate replaced",
            "UPDATE certs SET cert_der = (SELECT cert_der FROM certs WHERE name = 'carol') WHERE serial = ?1",
        ),
        (
            "marked revoked",
            "UPDATE certs SET state = 'revoked', revoked_at = 1, reason = 'keyCompromise' WHERE serial = ?1",
        ),
        (
            "key removed",
            "UPDATE certs SET key_blob = NULL WHERE serial = ?1",
        ),
    ];
    for (what, sql) in cases {
        std::fs::write(&db_path, &pristine).expect("restore");
        assert_eq!(db(&e).execute(sql, [&alice]).expect(what), 1, "{what}");
        let problems = verify_finds_problems(&e, what);
        assert!(
            problems.iter().any(|p| p.contains(&alice)),
            "{what}: verify names the serial: {problems:?}"
        );
        refused(
            &e,
            &["export", "--serial", &alice, "--out", "x", "--key"],
            "integrity check failed",
        );
    }
    // The revoked set's checksum.
    for (what, sql) in [
        (
            "revoked count",
            "UPDATE meta SET v = '0' WHERE k = 'revoked_count'",
        ),
        (
            "revocation digest",
            "UPDATE meta SET v = '0000000000000000000000000000000000000000000000000000000000000000' WHERE k = 'revocation_digest'",
        ),
    ] {
        std::fs::write(&db_path, &pristine).expect("restore");
        assert_eq!(db(&e).execute(sql, []).expect(what), 1, "{what}");
        verify_finds_problems(&e, what);
        refused(&e, &["crl"], "integrity check failed");
        refused(
            &e,
            &["revoke", "--serial", &carol],
            "integrity check failed",
        );
    }
    std::fs::write(&db_path, &pristine).expect("restore");
    verify_clean(&e, PASS);
}

/// Deleting the record of a valid certificate makes it unrevocable (neither `revoke NAME` nor
/// `revoke --serial` finds it) while the VPN still trusts it: verify must notice (the audit log
/// still holds its `issue` entry).
#[test]
fn tamper_deleted_valid_record() {
    let e = populated();
    let alice = serial_of(&e, "alice");
    let n = db(&e)
        .execute("DELETE FROM certs WHERE serial = ?1", [&alice])
        .expect("delete");
    assert_eq!(n, 1);
    let problems = verify_finds_problems(&e, "valid record deleted");
    assert!(
        problems.iter().any(|p| p.contains(&alice)),
        "verify names the missing serial: {problems:?}"
    );
}

/// A replayed older store file: the database is put back from an earlier copy, which would
/// silently undo every revocation since. The checkpoint and the newer crl.pem both betray it;
/// every writer and every key use is refused; `verify --accept-restore` takes the copy back
/// while keeping the newer revocations (checked with openssl).
#[test]
fn tamper_replayed_older_store_file() {
    let e = populated();
    let db_path = e.pki.join("vpnca.db");
    let old = std::fs::read(&db_path).expect("read db");
    let alice = serial_of(&e, "alice");
    e.ok(&["revoke", "alice", "--reason", "affiliationChanged"]);
    e.ok(&["client", "dave"]);
    let dave = serial_of(&e, "dave");
    e.ok(&["revoke", "dave"]);
    e.ok(&["client", "erin"]);
    let erin = serial_of(&e, "erin");
    let (newer_number, newer_serials) = crl_by_openssl(&e);
    assert!(
        newer_serials.contains_key(&norm_serial(&alice))
            && newer_serials.contains_key(&norm_serial(&dave))
    );
    std::fs::write(&db_path, &old).expect("replay");

    let problems = verify_finds_problems(&e, "replayed store file");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("older copy") && p.contains("vpnca.checkpoint")),
        "verify names the checkpoint: {problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("older copy") && p.contains("crl.pem")),
        "verify names the newer crl.pem: {problems:?}"
    );
    for args in [
        &["crl"][..],
        &["export", "alice", "--out", "x", "--key"],
        &["export", "carol", "--out", "x"],
        &[
            "profile",
            "carol",
            "--remote",
            "vpn.example.com",
            "--out",
            "carol.ovpn",
        ],
        &["client", "frank"],
        &["revoke", "carol"],
        &["renew", "carol"],
    ] {
        refused(&e, args, "older copy");
    }
    let mut passwd = e.cmd(&["passwd"]);
    passwd.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
    refused_cmd(&e, "passwd", &mut passwd, "older copy");
    // The readers without the passphrase compare the database with the checkpoint too (it
    // holds alice as valid again).
    refused(&e, &["show", "alice"], "older copy");
    refused(&e, &["status"], "older copy");

    // Without the checkpoint (an older vpnca, or it was deleted), crl.pem still betrays it.
    let checkpoint = e.pki.join("vpnca.checkpoint");
    let kept = std::fs::read(&checkpoint).expect("checkpoint");
    std::fs::remove_file(&checkpoint).expect("rm checkpoint");
    let problems = verify_finds_problems(&e, "replayed store file, no checkpoint");
    assert!(
        problems.iter().any(|p| p.contains("crl.pem")),
        "{problems:?}"
    );
    std::fs::write(&checkpoint, &kept).expect("put the checkpoint back");

    // The admin did restore it on purpose: accept it, keeping the newer revocations.
    let o = e.run(&["--json", "verify", "--accept-restore"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a lost revocation needs attention: {}",
        s(&o.stderr)
    );
    let v: Value = serde_json::from_str(&s(&o.stdout)).expect("json");
    let again: Vec<&str> = v["restore"]["revoked_again"]
        .as_array()
        .expect("revoked_again")
        .iter()
        .map(|r| r["serial"].as_str().expect("serial"))
        .collect();
    assert_eq!(again, [alice.as_str()], "{v}");
    assert_eq!(
        v["restore"]["lost_revocations"],
        serde_json::json!([dave]),
        "{v}"
    );
    let unknown = v["restore"]["unknown_certificates"].to_string();
    assert!(
        unknown.contains("erin.crt") && unknown.contains(&erin),
        "{v}"
    );
    assert_eq!(v["verify"]["problems"], serde_json::json!([]), "{v}");
    let alice_now = e.json(&["show", "alice"]);
    assert_eq!(alice_now["status"], "revoked");
    assert_eq!(alice_now["reason"], "affiliationChanged", "{alice_now}");
    // The CRL goes on above the newer one and lists bob and alice again (openssl reads it).
    let (number, serials) = crl_by_openssl(&e);
    assert!(number > newer_number, "CRL {number} after {newer_number}");
    assert_eq!(serials[&norm_serial(&alice)], "Affiliation Changed");
    assert!(serials.contains_key(&norm_serial(&serial_of(&e, "bob"))));
    verify_clean(&e, PASS);
    let log = audit_log(&e);
    assert!(
        log.iter().any(|a| a["action"] == "accept-restore"),
        "audited"
    );
    // Business as usual afterwards; accepting again finds nothing to accept.
    e.ok(&["client", "frank"]);
    e.ok(&["export", "carol", "--out", "x", "--key"]);
    let o = e.run(&["verify", "--accept-restore"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert!(s(&o.stdout).contains("nothing to accept"));
}

/// A restore is accepted only into an otherwise intact store: with a tampered record besides
/// the replayed file, `verify --accept-restore` lists both problems, accepts nothing (exit 1)
/// and changes nothing.
#[test]
fn accept_restore_is_refused_over_other_problems() {
    let e = populated();
    let db_path = e.pki.join("vpnca.db");
    let old = std::fs::read(&db_path).expect("read db");
    e.ok(&["revoke", "alice"]);
    std::fs::write(&db_path, &old).expect("replay");
    // (`show` refuses the older copy: the serial is read from the file.)
    let carol: String = db(&e)
        .query_row("SELECT serial FROM certs WHERE name = 'carol'", [], |r| {
            r.get(0)
        })
        .expect("carol's serial");
    db(&e)
        .execute(
            "UPDATE certs SET not_after = not_after + 86400 WHERE serial = ?1",
            [&carol],
        )
        .expect("tamper");
    let before = e.snapshot();
    let o = e.run(&["verify", "--accept-restore"]);
    let out = s(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", s(&o.stderr));
    assert!(out.contains("NOT ACCEPTED"), "{out}");
    assert!(out.contains("older copy") && out.contains(&carol), "{out}");
    assert_same(&before, &e.snapshot(), "refused acceptance");
    refused(&e, &["crl"], "older copy");
}

/// The database of another store (same passphrase, a longer history) put in place of this one's
/// is another history, not merely an older copy; a restore is not accepted over other problems.
#[test]
fn tamper_database_of_another_store() {
    let e = populated();
    let other = populated();
    other.ok(&["client", "x1"]);
    other.ok(&["client", "x2"]);
    other.ok(&["client", "x3"]);
    std::fs::copy(other.pki.join("vpnca.db"), e.pki.join("vpnca.db")).expect("copy");
    let problems = verify_finds_problems(&e, "another store's database");
    assert!(
        problems.iter().any(|p| p.contains("another history")),
        "{problems:?}"
    );
    refused(&e, &["crl"], "another history");
    refused(
        &e,
        &["export", "alice", "--out", "x", "--key"],
        "another history",
    );
    // The admin may still take it on purpose: then it is this store, mirrors included.
    let o = e.run(&["verify", "--accept-restore"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));
    verify_clean(&e, PASS);
    assert_eq!(
        std::fs::read(e.pki.join("ca.crt")).expect("ca.crt"),
        std::fs::read(other.pki.join("ca.crt")).expect("ca.crt"),
        "the CA mirror follows the accepted database"
    );
    e.ok(&["client", "x4"]);
}

// ---- names the file system cannot hold -----------------------------------------------------

/// 64 characters is the limit, but 64 four-byte characters make a mirror file name longer than
/// the file system allows. The name must be refused before anything is recorded, or work.
#[test]
fn long_utf8_name_is_refused_or_works() {
    let e = populated();
    let name = "\u{1F600}".repeat(64);
    let before = e.snapshot();
    let o = e.run(&["client", &name]);
    let err = s(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    match o.status.code() {
        Some(0) => {}
        Some(2) => assert_same(&before, &e.snapshot(), "refused long UTF-8 name"),
        c => panic!("exit {c:?}: {err}"),
    }
    verify_clean(&e, PASS);
}

// ---- passwd ------------------------------------------------------------------------------------

#[test]
fn passwd_changes_the_passphrase() {
    let e = populated();
    let mut c = e.cmd(&["passwd"]);
    c.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
    let o = c.output().expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    // The old passphrase no longer opens the store.
    for args in [
        &["verify"][..],
        &["client", "dave"],
        &["export", "alice", "--out", "x", "--key"],
        &["passwd"],
    ] {
        let mut c = e.cmd(args);
        c.env("VPNCA_NEW_PASSPHRASE", NEW_PASS);
        refused_cmd(
            &e,
            &format!("old passphrase: {args:?}"),
            &mut c,
            "wrong passphrase",
        );
    }
    // The new one does, and every key still decrypts.
    verify_clean(&e, NEW_PASS);
    let o = cmd_pass(&e, &["export", "alice", "--out", "x", "--key"], NEW_PASS)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    openssl_ok(&["pkey", "-in", "x/alice.key", "-noout"], e.dir.path());
    let o = cmd_pass(&e, &["client", "dave"], NEW_PASS)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert!(
        audit_log(&e).iter().any(|a| a["action"] == "passwd"),
        "passwd is in the audit log"
    );
    // And back, with --new-passphrase-file and a new KDF cost.
    std::fs::write(e.path("new.pass"), format!("{PASS}\n")).expect("write");
    let o = cmd_pass(
        &e,
        &[
            "passwd",
            "--new-passphrase-file",
            "new.pass",
            "--kdf-memory-mib",
            "9",
        ],
        NEW_PASS,
    )
    .output()
    .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    refused_cmd(
        &e,
        "second old passphrase",
        &mut cmd_pass(&e, &["verify"], NEW_PASS),
        "wrong passphrase",
    );
    verify_clean(&e, PASS);
    assert_eq!(list(&e).len(), 6);
}

#[test]
fn passwd_refuses_a_short_new_passphrase() {
    let e = populated();
    for new in ["short", "", "1234567"] {
        let mut c = e.cmd(&["passwd"]);
        c.env("VPNCA_NEW_PASSPHRASE", new);
        refused_cmd(
            &e,
            &format!("passwd to {new:?}"),
            &mut c,
            "unacceptable passphrase",
        );
        std::fs::write(e.path("short.pass"), format!("{new}\n")).expect("write");
        refused(
            &e,
            &["passwd", "--new-passphrase-file", "short.pass"],
            "unacceptable passphrase",
        );
        // The old passphrase still works; the short one does not.
        verify_clean(&e, PASS);
        refused_cmd(
            &e,
            &format!("verify with {new:?}"),
            &mut cmd_pass(&e, &["verify"], new),
            "wrong passphrase",
        );
    }
}
