//! The one integration-test harness: a temp store, a command builder, independent tools.
#![allow(dead_code)]

pub mod aws;
pub mod easyrsa;
pub mod oldpki;
pub mod openvpn;
pub mod root;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The passphrase every test store uses.
pub const PASS: &str = "test-passphrase-1";

/// A temporary directory holding one store at `<dir>/pki`.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub pki: PathBuf,
}

impl Env {
    /// An empty directory; no store yet.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        Env { dir, pki }
    }

    /// A store with a cheap KDF (8 MiB, 1 pass) so tests stay fast.
    pub fn init() -> Env {
        let e = Env::new();
        e.ok(&["init", "--kdf-memory-mib", "8", "--kdf-time", "1"]);
        e
    }

    /// A store with a root CA.
    pub fn with_ca() -> Env {
        let e = Env::init();
        e.ok(&["ca", "--cn", "Test VPN CA"]);
        e
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `vpnca --pki <pki> ARGS` with the passphrase in the environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vpnca"));
        c.arg("--pki").arg(&self.pki).args(args);
        c.env("VPNCA_PASSPHRASE", PASS)
            .env_remove("VPNCA_PKI")
            .env_remove("VPNCA_NEW_PASSPHRASE");
        c.current_dir(self.dir.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run vpnca")
    }

    /// Runs and asserts exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        expect_ok(args, self.run(args))
    }

    /// Runs and asserts exit `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        expect_code(args, self.run(args), code)
    }

    /// `--json` output parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("json output")
    }

    /// Every file under the store with its bytes: to prove a command left it unchanged.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot_of(&self.pki)
    }
}

/// Every file under `dir` with its bytes (empty if `dir` does not exist): to prove a command
/// left a folder unchanged.
pub fn snapshot_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    fn walk(p: &Path, m: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(p).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, m);
            } else {
                m.insert(p.clone(), std::fs::read(&p).expect("read"));
            }
        }
    }
    if dir.exists() {
        walk(dir, &mut m);
    }
    m
}

/// Asserts that vpnca ARGS exited 0; returns its stdout.
pub fn expect_ok(args: &[&str], o: Output) -> String {
    assert!(
        o.status.success(),
        "vpnca {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        s(&o.stdout),
        s(&o.stderr)
    );
    s(&o.stdout)
}

/// Asserts that vpnca ARGS exited with `code`; returns its stderr.
pub fn expect_code(args: &[&str], o: Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "vpnca {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
        s(&o.stdout),
        s(&o.stderr)
    );
    s(&o.stderr)
}

pub fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the `openssl` CLI (panics if it is missing: tests never skip silently).
pub fn openssl(args: &[&str], cwd: &Path) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the `openssl` binary is required (apt-get install openssl)")
}

/// Runs openssl and asserts success; returns stdout.
pub fn openssl_ok(args: &[&str], cwd: &Path) -> String {
    let o = openssl(args, cwd);
    assert!(
        o.status.success(),
        "openssl {args:?} failed:\n{}\n{}",
        s(&o.stdout),
        s(&o.stderr)
    );
    s(&o.stdout)
}

/// A committed fixture: `tests/data/<rel>` (made by `tests/data/generate.sh`).
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Serial hex as openssl and vpnca may both print it: upper case, no leading zeros.
pub fn norm_serial(h: &str) -> String {
    let h = h.trim().replace(':', "").to_ascii_uppercase();
    let t = h.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

/// `openssl crl -text` of the CRL at `crl` after checking its signature with the CA
/// certificate(s) in `ca` (paths relative to `cwd`). Panics unless openssl's verdict is
/// `verify OK`: `openssl crl -CAfile` prints `verify failure` and still **exits 0** (OpenSSL
/// 3.0), so the exit status alone proves nothing.
///
/// Seen failing on planted faults (tests/verdicts.rs runs them every time): a CRL whose
/// signature has one byte flipped, and a correct CRL checked against a foreign CA.
pub fn crl_verified_text(cwd: &Path, crl: &str, ca: &str) -> String {
    let o = openssl(&["crl", "-in", crl, "-CAfile", ca, "-noout", "-text"], cwd);
    let (out, err) = (s(&o.stdout), s(&o.stderr));
    assert!(
        o.status.success()
            && err.lines().any(|l| l.trim() == "verify OK")
            && !err.contains("verify failure"),
        "the CRL {crl} does not verify with {ca} (exit {:?}):\n{err}",
        o.status.code()
    );
    out
}

/// The CRL at `pki/crl.pem`, read by openssl after checking its signature with `pki/ca.crt`
/// (see [`crl_verified_text`]): its number and each revoked serial (normalized) with the
/// reason openssl prints ("" if none).
pub fn crl_by_openssl(e: &Env) -> (u64, BTreeMap<String, String>) {
    let out = crl_verified_text(e.dir.path(), "pki/crl.pem", "pki/ca.crt");
    let mut number = None;
    let mut entries = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        let t = l.trim();
        if t.starts_with("X509v3 CRL Number") {
            number = lines
                .next()
                .map(|n| n.trim().parse::<u64>().expect("CRL number"));
        } else if let Some(sn) = t.strip_prefix("Serial Number: ") {
            let sn = norm_serial(sn);
            entries.insert(sn.clone(), String::new());
            current = Some(sn);
        } else if t.starts_with("X509v3 CRL Reason Code") {
            let reason = lines.next().unwrap_or("").trim().to_string();
            let sn = current.clone().expect("a reason code belongs to an entry");
            entries.insert(sn, reason);
        }
    }
    (number.expect("the CRL has a number"), entries)
}

/// Runs GnuTLS's `certtool` (panics if it is missing: tests never skip silently).
pub fn certtool(args: &[&str], cwd: &Path) -> Output {
    Command::new("certtool")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("GnuTLS's `certtool` is required (apt-get install gnutls-bin)")
}

/// Runs `certtool` and asserts success; returns stdout.
pub fn certtool_ok(args: &[&str], cwd: &Path) -> String {
    let o = certtool(args, cwd);
    assert!(
        o.status.success(),
        "certtool {args:?} failed:\n{}\n{}",
        s(&o.stdout),
        s(&o.stderr)
    );
    s(&o.stdout)
}

/// One finding of pkilint: its severity (`FATAL`, `ERROR`, `WARNING`, `NOTICE`), code
/// (`pkix.key_usage_value_prohibited_for_ec`) and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFinding {
    pub severity: String,
    pub code: String,
    pub node: String,
}

/// Runs one of pkilint's linters (`lint_pkix_cert`, `lint_crl`, …) as `LINTER lint ARGS -s
/// NOTICE -f JSON FILE` and returns every finding of severity NOTICE or above, read from its
/// JSON report (its exit status is the number of findings, so it says nothing about whether
/// it ran). Panics if the linter is missing or prints no report: tests never skip silently.
pub fn pkilint(linter: &str, args: &[&str], file: &Path) -> Vec<LintFinding> {
    let o = Command::new(linter)
        .arg("lint")
        .args(args)
        .args(["-s", "NOTICE", "-f", "JSON"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "pkilint's `{linter}` is required (pip install -r tests/requirements-lint.txt): {e}"
            )
        });
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{linter} {}: no JSON report ({e}; exit {:?}):\n{}\n{}",
            file.display(),
            o.status.code(),
            s(&o.stdout),
            s(&o.stderr)
        )
    });
    let results = report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{linter}: a report without results: {report}"));
    let mut out = Vec::new();
    for r in results {
        let node = r["node_path"].as_str().unwrap_or("").to_owned();
        for f in r["finding_descriptions"].as_array().into_iter().flatten() {
            out.push(LintFinding {
                severity: f["severity"].as_str().unwrap_or("").to_owned(),
                code: f["code"].as_str().unwrap_or("").to_owned(),
                node: node.clone(),
            });
        }
    }
    out
}

/// A date as openssl prints it in `-text` output (`Dec  3 10:05:13 2026 GMT`).
pub fn openssl_time(text: &str) -> time::OffsetDateTime {
    let t = text
        .trim()
        .trim_end_matches(" GMT")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let fmt = time::format_description::parse_borrowed::<2>(
        "[month repr:short] [day padding:none] [hour]:[minute]:[second] [year]",
    )
    .expect("format");
    time::PrimitiveDateTime::parse(&t, &fmt)
        .unwrap_or_else(|e| panic!("not an openssl date: {text:?}: {e}"))
        .assume_utc()
}
