//! Crash safety and concurrency: `vpnca` processes killed with SIGKILL at random instants leave a
//! consistent store; parallel writers are serialized; readers always see a whole store.
mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

/// The passphrase `passwd` trials switch to (and back from).
const OTHER_PASS: &str = "second-passphrase-2";

/// A tiny deterministic PRNG (xorshift64), seeded per trial.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn cmd_pass(e: &Env, args: &[&str], pass: &str) -> Command {
    let mut c = e.cmd(args);
    c.env("VPNCA_PASSPHRASE", pass).stdin(Stdio::null());
    c
}

fn run_pass(e: &Env, args: &[&str], pass: &str) -> Output {
    cmd_pass(e, args, pass).output().expect("run vpnca")
}

/// Runs with `pass` and asserts exit 0; returns stdout.
fn ok_pass(e: &Env, args: &[&str], pass: &str) -> String {
    let o = run_pass(e, args, pass);
    assert_eq!(
        o.status.code(),
        Some(0),
        "vpnca {args:?}:\nstdout: {}\nstderr: {}",
        s(&o.stdout),
        s(&o.stderr)
    );
    s(&o.stdout)
}

/// JSON lines, each parsed (panics on a line that is not a JSON object).
fn json_lines(out: &str, what: &str) -> Vec<Value> {
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|err| panic!("{what}: not JSON ({err}): {l:?}"));
            assert!(v.is_object(), "{what}: not an object: {l}");
            v
        })
        .collect()
}

fn str_field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing: {v}"))
}

/// `verify` exits 0 with no problem.
fn verify_ok(e: &Env, pass: &str, what: &str) {
    let o = run_pass(e, &["--json", "verify"], pass);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: verify failed\nstdout: {}\nstderr: {}",
        s(&o.stdout),
        s(&o.stderr)
    );
    let v: Value = serde_json::from_str(&s(&o.stdout)).expect("verify json");
    assert_eq!(v["problems"], serde_json::json!([]), "{what}: {v}");
}

/// Whether `pass` opens the store: verify exits 0, or exit 2 "wrong passphrase".
fn opens(e: &Env, pass: &str) -> bool {
    let o = run_pass(e, &["verify"], pass);
    match o.status.code() {
        Some(0) => true,
        Some(2) if s(&o.stderr).contains("wrong passphrase") => false,
        c => panic!(
            "verify with {pass:?}: exit {c:?}\nstdout: {}\nstderr: {}",
            s(&o.stdout),
            s(&o.stderr)
        ),
    }
}

/// The serials listed in `pki/crl.pem` (upper-case hex), after checking its signature.
fn crl_serials(e: &Env) -> BTreeSet<String> {
    let out = openssl_ok(
        &[
            "crl",
            "-in",
            "pki/crl.pem",
            "-CAfile",
            "pki/ca.crt",
            "-noout",
            "-text",
        ],
        e.dir.path(),
    );
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|h| h.trim().to_ascii_uppercase())
        .collect()
}

/// The whole-store invariants after a crash: verify passes, every certificate has its `issue`
/// (or `renew`) audit entry and vice versa, serials are unique, crl.pem lists exactly the
/// revoked certificates, and every certificate not yet checked exports with `--key` to a key
/// openssl reads and that matches the certificate.
fn check_consistent(e: &Env, pass: &str, checked: &mut BTreeSet<String>, what: &str) {
    verify_ok(e, pass, what);
    let certs = json_lines(&e.ok(&["list", "--json"]), "list --json");
    let log = json_lines(&e.ok(&["log", "--json"]), "log --json");
    let issued = log
        .iter()
        .filter(|a| a["action"] == "issue" || a["action"] == "renew")
        .count();
    assert_eq!(
        certs.len(),
        issued + 1,
        "{what}: {} certificates listed, {issued} issue/renew audit entries + the CA",
        certs.len()
    );
    // The audit log names exactly the listed serials.
    let listed: BTreeSet<&str> = certs.iter().map(|c| str_field(c, "serial")).collect();
    assert_eq!(listed.len(), certs.len(), "{what}: duplicate serials");
    let logged: BTreeSet<&str> = log
        .iter()
        .filter(|a| ["issue", "renew", "ca"].contains(&str_field(a, "action")))
        .map(|a| str_field(a, "serial"))
        .collect();
    assert_eq!(listed, logged, "{what}: listed vs audited serials");
    // The CRL mirror lists exactly the revoked certificates.
    let revoked: BTreeSet<String> = certs
        .iter()
        .filter(|c| c["status"] == "revoked")
        .map(|c| str_field(c, "serial").to_string())
        .collect();
    assert_eq!(
        crl_serials(e),
        revoked,
        "{what}: crl.pem vs revoked records"
    );
    // Every key exports and matches its certificate.
    for c in &certs {
        let serial = str_field(c, "serial");
        if checked.contains(serial) || c["has_key"] != true {
            continue;
        }
        let name = str_field(c, "name");
        let out = format!("exported/{serial}");
        let dir = e.dir.path();
        // The CA's key is exported only encrypted.
        let is_ca = c["kind"] == "ca";
        if is_ca {
            std::fs::write(dir.join("ca-key-pass"), "ca-key-passphrase\n").expect("write");
            ok_pass(
                e,
                &[
                    "export",
                    "--serial",
                    serial,
                    "--out",
                    &out,
                    "--key-passphrase-file",
                    "ca-key-pass",
                ],
                pass,
            );
        } else {
            ok_pass(
                e,
                &["export", "--serial", serial, "--out", &out, "--key"],
                pass,
            );
        }
        let key = format!("{out}/{name}.key");
        let crt = format!("{out}/{name}.crt");
        let passin: &[&str] = if is_ca {
            &["-passin", "file:ca-key-pass"]
        } else {
            &[]
        };
        let with = |args: &[&str]| -> Vec<String> {
            args.iter().chain(passin).map(|a| a.to_string()).collect()
        };
        let run = |args: Vec<String>| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            openssl_ok(&a, dir)
        };
        run(with(&["pkey", "-in", &key, "-noout"]));
        let from_key = run(with(&["pkey", "-in", &key, "-pubout"]));
        let from_cert = openssl_ok(&["x509", "-in", &crt, "-noout", "-pubkey"], dir);
        assert_eq!(
            from_key, from_cert,
            "{what}: key of {name} ({serial}) does not match"
        );
        checked.insert(serial.to_string());
    }
}

/// Kill `vpnca client`, `revoke`, `crl`, `passwd` and `renew` with SIGKILL after a random delay
/// (0–300 ms, skewed towards short delays so that more kills land mid-command); after each kill
/// the store must be consistent.
#[test]
fn sigkill_at_random_instants_leaves_a_consistent_store() {
    let e = Env::with_ca();
    e.ok(&["crl"]);
    for i in 0..4 {
        e.ok(&["client", &format!("seed{i}")]);
    }
    let passes = [PASS, OTHER_PASS];
    let mut cur = 0usize;
    let mut checked = BTreeSet::new();
    let (mut killed, mut finished) = (0, 0);
    for trial in 0..24u64 {
        let mut rng = XorShift::new(trial + 1);
        let d = rng.below(301);
        let delay = d * d / 300;
        let pick = usize::try_from(rng.below(4)).expect("small");
        let valid_client = || -> Option<String> {
            let names: Vec<String> =
                json_lines(&e.ok(&["list", "--json", "--kind", "client"]), "list")
                    .iter()
                    .filter(|c| c["status"] == "valid")
                    .map(|c| str_field(c, "name").to_string())
                    .collect();
            (!names.is_empty()).then(|| names[pick % names.len()].clone())
        };
        let args: Vec<String> = match trial % 6 {
            0 | 1 => vec!["client".into(), format!("user{trial}")],
            2 => match valid_client() {
                Some(n) => vec!["revoke".into(), n],
                None => vec!["crl".into()],
            },
            3 => vec!["crl".into()],
            4 => vec!["passwd".into()],
            _ => match valid_client() {
                Some(n) => vec!["renew".into(), n],
                None => vec!["crl".into()],
            },
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = format!("trial {trial}: {args:?} killed after {delay} ms");
        let mut c = cmd_pass(&e, &args, passes[cur]);
        c.env("VPNCA_NEW_PASSPHRASE", passes[1 - cur])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn vpnca");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL on Unix
        let o = child.wait_with_output().expect("wait");
        if o.status.signal() == Some(9) {
            killed += 1;
        } else {
            finished += 1;
            assert!(
                o.status.success(),
                "{what}: finished with {:?}: {}",
                o.status,
                s(&o.stderr)
            );
        }
        if args[0] == "passwd" {
            let open: Vec<bool> = passes.iter().map(|p| opens(&e, p)).collect();
            assert_eq!(
                open.iter().filter(|o| **o).count(),
                1,
                "{what}: exactly one of the old and new passphrases must open the store: {open:?}"
            );
            cur = open.iter().position(|o| *o).expect("one opens");
        }
        check_consistent(&e, passes[cur], &mut checked, &what);
    }
    eprintln!("{killed} commands killed, {finished} finished before the kill");
    // Every certificate's mirror is the live certificate after verify.
    for c in json_lines(&e.ok(&["list", "--json", "--status", "valid"]), "list") {
        let name = str_field(&c, "name");
        let shown = e.json(&["show", "--serial", str_field(&c, "serial")]);
        let mirror = if c["kind"] == "ca" {
            e.pki.join("ca.crt")
        } else {
            e.pki.join("issued").join(format!("{name}.crt"))
        };
        let text = std::fs::read_to_string(&mirror).expect("mirror");
        assert!(
            text.starts_with(str_field(&shown, "pem")),
            "{} is not the certificate of {name}",
            mirror.display()
        );
    }
}

/// Runs `list --json` until `stop`; every run must exit 0 and parse, and the number of
/// certificates never goes down (writers only add). Returns the number of runs.
fn reader(e: &Env, stop: &AtomicBool) -> usize {
    let mut runs = 0;
    let mut last = 0;
    while !stop.load(Ordering::SeqCst) || runs == 0 {
        let o = e.run(&["list", "--json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "list during writes failed: {}",
            s(&o.stderr)
        );
        let n = json_lines(&s(&o.stdout), "list during writes").len();
        assert!(n >= last, "list went from {last} to {n} certificates");
        last = n;
        runs += 1;
    }
    runs
}

#[test]
fn parallel_issuance_is_serialized() {
    let e = Env::with_ca();
    e.ok(&["crl"]);
    let stop = AtomicBool::new(false);
    let (issued, reads) = std::thread::scope(|sc| {
        let r = sc.spawn(|| reader(&e, &stop));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let e = &e;
                sc.spawn(move || {
                    (0..10)
                        .map(|i| {
                            let v: Value = serde_json::from_str(&e.ok(&[
                                "--json",
                                "client",
                                &format!("w{w}-user{i}"),
                            ]))
                            .expect("client --json");
                            str_field(&v, "serial").to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let issued: Vec<String> = writers
            .into_iter()
            .flat_map(|h| h.join().expect("writer"))
            .collect();
        stop.store(true, Ordering::SeqCst);
        (issued, r.join().expect("reader"))
    });
    eprintln!("{reads} reads during the writes");
    assert_eq!(issued.len(), 40);
    let distinct: BTreeSet<&String> = issued.iter().collect();
    assert_eq!(distinct.len(), 40, "duplicate serials");
    let clients = json_lines(&e.ok(&["list", "--json", "--kind", "client"]), "list");
    assert_eq!(clients.len(), 40);
    let listed: BTreeSet<&str> = clients.iter().map(|c| str_field(c, "serial")).collect();
    assert_eq!(
        listed,
        issued.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    let names: BTreeSet<&str> = clients.iter().map(|c| str_field(c, "name")).collect();
    assert_eq!(names.len(), 40);
    assert!(clients.iter().all(|c| c["status"] == "valid"));
    for c in &clients {
        assert!(
            e.pki
                .join("issued")
                .join(format!("{}.crt", str_field(c, "name")))
                .is_file()
        );
    }
    let log = json_lines(&e.ok(&["log", "--json"]), "log");
    assert_eq!(log.iter().filter(|a| a["action"] == "issue").count(), 40);
    let seqs: Vec<i64> = log
        .iter()
        .map(|a| a["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(log.len()).expect("len")).collect::<Vec<_>>()
    );
    verify_ok(&e, PASS, "after parallel issuance");
}

#[test]
fn the_same_name_issued_at_once_succeeds_exactly_once() {
    let e = Env::with_ca();
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let r = sc.spawn(|| reader(&e, &stop));
        for round in 0..3 {
            let name = format!("same{round}");
            let args: &[&str] = match round {
                0 => &["client", &name],
                1 => &["client", &name, "--algo", "p256"],
                _ => &["client", &name, "--algo", "ed25519"],
            };
            // Start all four before waiting for any.
            let children: Vec<_> = (0..4)
                .map(|_| {
                    e.cmd(args)
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("spawn")
                })
                .collect();
            let outs: Vec<Output> = children
                .into_iter()
                .map(|c| c.wait_with_output().expect("wait"))
                .collect();
            let ok = outs.iter().filter(|o| o.status.success()).count();
            assert_eq!(ok, 1, "{args:?}: exactly one succeeds");
            for o in outs.iter().filter(|o| !o.status.success()) {
                let err = s(&o.stderr);
                assert_eq!(o.status.code(), Some(2), "{err}");
                assert!(
                    err.contains("exists already") && err.contains(&name),
                    "duplicate-name message: {err}"
                );
                assert!(!err.contains("panicked"), "{err}");
            }
            let with_name: Vec<Value> = json_lines(&e.ok(&["list", "--json"]), "list")
                .into_iter()
                .filter(|c| c["name"] == name.as_str())
                .collect();
            assert_eq!(with_name.len(), 1, "one certificate named {name}");
        }
        stop.store(true, Ordering::SeqCst);
        r.join().expect("reader");
    });
    let log = json_lines(&e.ok(&["log", "--json"]), "log");
    assert_eq!(log.iter().filter(|a| a["action"] == "issue").count(), 3);
    verify_ok(&e, PASS, "after the races");
}

/// Different kinds of writers at once: issue, revoke, renew and crl. Every CRL gets its own
/// number, and the final crl.pem lists every revoked certificate.
#[test]
fn mixed_parallel_writers_keep_the_store_consistent() {
    let e = Env::with_ca();
    e.ok(&["crl"]);
    for i in 0..6 {
        e.ok(&["client", &format!("victim{i}")]);
    }
    e.ok(&["server", "vpn.example.com"]);
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let r = sc.spawn(|| reader(&e, &stop));
        let e = &e;
        let writers = [
            sc.spawn(move || {
                for i in 0..6 {
                    e.ok(&["client", &format!("new{i}")]);
                }
            }),
            sc.spawn(move || {
                for i in 0..6 {
                    e.ok(&["revoke", &format!("victim{i}"), "--reason", "keyCompromise"]);
                }
            }),
            sc.spawn(move || {
                for _ in 0..6 {
                    e.ok(&["crl"]);
                }
            }),
            sc.spawn(move || {
                for _ in 0..4 {
                    e.ok(&["renew", "vpn.example.com"]);
                }
            }),
        ];
        for h in writers {
            h.join().expect("writer");
        }
        stop.store(true, Ordering::SeqCst);
        r.join().expect("reader");
    });
    verify_ok(&e, PASS, "after mixed writers");
    let log = json_lines(&e.ok(&["log", "--json"]), "log");
    let mut numbers: Vec<i64> = log
        .iter()
        .filter(|a| a["action"] == "crl")
        .map(|a| a["detail"]["number"].as_i64().expect("crl number"))
        .collect();
    // 1 + 6 explicit + 6 from revoke.
    assert_eq!(numbers.len(), 13, "{numbers:?}");
    let in_log_order = numbers.clone();
    numbers.sort_unstable();
    assert_eq!(in_log_order, numbers, "CRL numbers increase in log order");
    assert_eq!(numbers, (1..=13).collect::<Vec<_>>());
    let certs = json_lines(&e.ok(&["list", "--json"]), "list");
    let revoked: BTreeSet<String> = certs
        .iter()
        .filter(|c| c["status"] == "revoked")
        .map(|c| str_field(c, "serial").to_string())
        .collect();
    assert_eq!(revoked.len(), 6);
    assert_eq!(crl_serials(&e), revoked);
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in &certs {
        by_name
            .entry(str_field(c, "name"))
            .or_default()
            .push(str_field(c, "status"));
    }
    let server = &by_name["vpn.example.com"];
    assert_eq!(server.len(), 5, "{server:?}");
    assert_eq!(server.iter().filter(|s| **s == "valid").count(), 1);
    assert_eq!(server.iter().filter(|s| **s == "superseded").count(), 4);
}
