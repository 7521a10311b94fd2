//! The one integration-test harness: a temp store, a command builder, independent tools.
#![allow(dead_code)]

pub mod aws;
pub mod easyrsa;
pub mod oldpki;
pub mod openvpn;
pub mod root;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
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
            .env_remove("VPNCA_CHECKPOINT")
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

    /// `--json ARGS` for the commands that print JSON lines (`list`, `log`, the `--batch`
    /// forms), each line parsed by [`json_lines`].
    pub fn json_lines(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        json_lines(&self.ok(&a), &format!("vpnca {a:?}"))
    }

    /// Every file under the store with its bytes: to prove a command left it unchanged.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot_of(&self.pki)
    }
}

/// Runs SQL on the store's database with the `sqlite3` CLI: the tool of someone who can write
/// the store's files but does not know the passphrase (tests/untrusted_storage.rs).
pub fn sqlite(e: &Env, sql: &str) {
    sqlite_query(e, sql);
}

/// A tiny deterministic PRNG (xorshift64), seeded per trial: the random instants, operations
/// and edits of the crash, batch and property tests, reproducible from the seed.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index into a collection of `n` elements (`n` > 0).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Writes `<pki>/templates/NAME.toml`: what anyone who can write the store folder can plant
/// (vpnca uses it only once adopted: [`adopt_template`]).
pub fn plant_template(e: &Env, name: &str, text: &str) {
    std::fs::create_dir_all(e.pki.join("templates")).expect("mkdir templates");
    std::fs::write(e.pki.join(format!("templates/{name}.toml")), text).expect("write template");
}

/// Writes `<pki>/templates/NAME.toml` and adopts it (`vpnca template adopt NAME`): the profile
/// NAME of the store from now on.
pub fn adopt_template(e: &Env, name: &str, text: &str) {
    plant_template(e, name, text);
    e.ok(&["template", "adopt", name]);
}

/// Runs a query on the store's database with the `sqlite3` CLI; its output, trimmed.
pub fn sqlite_query(e: &Env, sql: &str) -> String {
    let o = Command::new("sqlite3")
        .arg(e.pki.join("vpnca.db"))
        .arg(sql)
        .output()
        .expect("the sqlite3 CLI is required (apt-get install sqlite3)");
    assert!(o.status.success(), "sqlite3 {sql}: {}", s(&o.stderr));
    s(&o.stdout).trim().to_string()
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

/// A path as a command-line argument (the tests' paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// JSON lines, each parsed (panics, naming `what`, on a line that is not a JSON object).
pub fn json_lines(out: &str, what: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|err| panic!("{what}: not JSON ({err}): {l:?}"));
            assert!(v.is_object(), "{what}: not an object: {l}");
            v
        })
        .collect()
}

/// The string field `k` of a JSON object (panics if it is missing or not a string).
pub fn str_field<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("field {k} missing: {v}"))
}

/// Checks the output of `vpnca --json verify`: exit 0, no panic, and no problem reported.
pub fn assert_verify_clean(what: &str, o: &Output) {
    let (out, err) = (s(&o.stdout), s(&o.stderr));
    assert!(!err.contains("panicked"), "{what}: verify panicked:\n{err}");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: verify should pass\nstdout: {out}\nstderr: {err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("verify --json output");
    assert_eq!(v["problems"], serde_json::json!([]), "{what}: {v}");
}

/// Unix permission bits of a path.
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|err| panic!("{}: {err}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The files directly in `dir` (not below) with their bytes: to prove a command wrote or left
/// an output folder exactly so.
pub fn dir_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|en| {
            let p = en.expect("dir entry").path();
            let b = std::fs::read(&p).expect("read");
            (p, b)
        })
        .collect()
}

/// Copies a folder with everything below it (a store, to put an older copy back later).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let p = entry.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

/// Runs an independent tool, `program ARGS` in `cwd`; panics with `required` (how to install
/// it) if it cannot be run: tests never skip silently.
fn tool(program: &str, required: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect(required)
}

/// Asserts that the tool run `program ARGS` succeeded; returns its stdout.
fn tool_ok(program: &str, args: &[&str], o: Output) -> String {
    assert!(
        o.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        s(&o.stdout),
        s(&o.stderr)
    );
    s(&o.stdout)
}

/// Runs the `openssl` CLI (panics if it is missing: tests never skip silently).
pub fn openssl(args: &[&str], cwd: &Path) -> Output {
    let required = "the `openssl` binary is required (apt-get install openssl)";
    tool("openssl", required, args, cwd)
}

/// Runs openssl and asserts success; returns stdout.
pub fn openssl_ok(args: &[&str], cwd: &Path) -> String {
    tool_ok("openssl", args, openssl(args, cwd))
}

/// `-newkey` options for [`openssl_req`]: an RSA-2048 key.
pub const RSA_2048: &[&str] = &["-newkey", "rsa:2048"];

/// `-newkey` options for [`openssl_req`]: a P-256 key.
pub const EC_P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// `openssl req -new` in `dir`: a new unencrypted key (`newkey`, such as [`RSA_2048`]) written
/// to `key`, and a certificate signing request for `CN=cn` written to `out`. `extra` adds
/// options (`-addext …`, `-outform DER`); with `-x509 -days N` openssl writes a self-signed
/// certificate instead of a request.
pub fn openssl_req(dir: &Path, newkey: &[&str], cn: &str, key: &str, out: &str, extra: &[&str]) {
    let subj = format!("/CN={cn}");
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(newkey);
    args.extend(["-nodes", "-keyout", key, "-subj", &subj, "-out", out]);
    args.extend_from_slice(extra);
    openssl_ok(&args, dir);
}

/// `openssl x509 -req` in `dir`: the CA certificate `ca_crt` with its key `ca_key` signs the
/// request `csr` (SHA-256) into the certificate `out`; `extra` gives the rest (`-days`, the
/// serial, `-extfile`).
pub fn openssl_sign_req(
    dir: &Path,
    csr: &str,
    ca_crt: &str,
    ca_key: &str,
    out: &str,
    extra: &[&str],
) {
    let mut args = vec!["x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key];
    args.extend(["-sha256", "-out", out]);
    args.extend_from_slice(extra);
    openssl_ok(&args, dir);
}

/// The committed foreign root (`tests/data/foreign-ca.crt` and `.key`) signs the request `csr`
/// in `dir` into `out`: serial 0x1001, 30 days, the extensions of the file `ext`; `extra` adds
/// options (`-copy_extensions copyall`).
pub fn foreign_ca_signs(dir: &Path, csr: &str, ext: &str, out: &str, extra: &[&str]) {
    let (crt, key) = (fixture("foreign-ca.crt"), fixture("foreign-ca.key"));
    let mut args = vec!["-set_serial", "0x1001", "-days", "30", "-extfile", ext];
    args.extend_from_slice(extra);
    openssl_sign_req(dir, csr, path_str(&crt), path_str(&key), out, &args);
}

/// `openssl verify -x509_strict ARGS` in `dir` (`-x509_strict`: OpenSSL's extra RFC 5280
/// conformance checks on every certificate): whether it succeeded, and stdout then stderr.
pub fn openssl_verify<S: AsRef<str>>(dir: &Path, args: &[S]) -> (bool, String) {
    let mut a = vec!["verify", "-x509_strict"];
    a.extend(args.iter().map(AsRef::as_ref));
    let o = openssl(&a, dir);
    (
        o.status.success(),
        format!("{}{}", s(&o.stdout), s(&o.stderr)),
    )
}

/// The serial of a certificate file as `openssl x509 -serial` prints it, normalized
/// ([`norm_serial`]).
pub fn openssl_serial(dir: &Path, cert: &str) -> String {
    let out = openssl_ok(&["x509", "-in", cert, "-noout", "-serial"], dir);
    norm_serial(
        out.trim()
            .strip_prefix("serial=")
            .unwrap_or_else(|| panic!("unexpected openssl -serial output: {out}")),
    )
}

/// The public key (PEM) of a certificate file, as openssl reads it.
pub fn cert_pubkey(dir: &Path, cert: &str) -> String {
    openssl_ok(&["x509", "-in", cert, "-noout", "-pubkey"], dir)
}

/// openssl reads the private key file `key` (decrypted with the passphrase in the file
/// `passfile`, if given) and finds in it the public key of the certificate `cert`.
pub fn assert_key_matches_cert(dir: &Path, key: &str, cert: &str, passfile: Option<&str>) {
    let passin = passfile.map(|f| format!("file:{f}"));
    let mut args = vec!["pkey", "-in", key, "-pubout"];
    if let Some(p) = &passin {
        args.extend(["-passin", p.as_str()]);
    }
    let from_key = openssl_ok(&args, dir);
    let from_cert = cert_pubkey(dir, cert);
    assert!(
        from_cert.contains("-----BEGIN PUBLIC KEY-----") && from_cert == from_key,
        "the key {key} does not match the certificate {cert}:\n{from_key}\n{from_cert}"
    );
}

/// openssl cannot open the encrypted key file `key` with the passphrase in the file `wrong`.
pub fn assert_wrong_passphrase_fails(dir: &Path, key: &str, wrong: &str) {
    let passin = format!("file:{wrong}");
    let o = openssl(&["pkey", "-in", key, "-noout", "-passin", &passin], dir);
    assert!(
        !o.status.success(),
        "a wrong passphrase opened the key {key}"
    );
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
    let (number, entries) = crl_by_openssl_in(e.dir.path());
    (number.expect("the CRL has a number"), entries)
}

/// [`crl_by_openssl`] for the `pki/` folder in `dir` (a vpnca store or an easy-rsa PKI,
/// whose CRL may have no number).
pub fn crl_by_openssl_in(dir: &Path) -> (Option<u64>, BTreeMap<String, String>) {
    let out = crl_verified_text(dir, "pki/crl.pem", "pki/ca.crt");
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
    (number, entries)
}

/// Runs GnuTLS's `certtool` (panics if it is missing: tests never skip silently).
pub fn certtool(args: &[&str], cwd: &Path) -> Output {
    let required = "GnuTLS's `certtool` is required (apt-get install gnutls-bin)";
    tool("certtool", required, args, cwd)
}

/// Runs `certtool` and asserts success; returns stdout.
pub fn certtool_ok(args: &[&str], cwd: &Path) -> String {
    tool_ok("certtool", args, certtool(args, cwd))
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

/// A PEM certificate file, as DER.
pub fn cert_der(p: &Path) -> rustls_pki_types::CertificateDer<'static> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_file(p)
        .unwrap_or_else(|err| panic!("{}: {err:?}", p.display()))
}

/// rustls-webpki path validation of `ee` for `usage`, anchored at the first certificate
/// of `anchor`, with `intermediates` and (when given) the CRL checked for the whole chain.
pub fn webpki_verify(
    anchor: &Path,
    intermediates: &[rustls_pki_types::CertificateDer<'static>],
    ee: &Path,
    crl: Option<&Path>,
    usage: webpki::KeyUsage,
) -> Result<(), webpki::Error> {
    use rustls_pki_types::pem::PemObject;
    let ca = cert_der(anchor);
    let anchors = [webpki::anchor_from_trusted_cert(&ca).expect("CA usable as a trust anchor")];
    let ee_der = cert_der(ee);
    let cert = webpki::EndEntityCert::try_from(&ee_der).expect("webpki parses the certificate");
    let crl: Option<webpki::CertRevocationList<'static>> = crl.map(|p| {
        let der =
            rustls_pki_types::CertificateRevocationListDer::from_pem_file(p).expect("CRL PEM");
        webpki::OwnedCertRevocationList::from_der(der.as_ref())
            .expect("webpki parses the CRL")
            .into()
    });
    let crls: Vec<&webpki::CertRevocationList<'static>> = crl.iter().collect();
    let revocation = if crls.is_empty() {
        None
    } else {
        Some(
            webpki::RevocationOptionsBuilder::new(&crls)
                .expect("at least one CRL")
                .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
                .build(),
        )
    };
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        rustls_pki_types::UnixTime::now(),
        usage,
        revocation,
        None,
    )
    .map(|_| ())
}
