//! Crash safety and concurrency: `vpnca` processes killed with SIGKILL at random instants leave a
//! consistent store; parallel writers are serialized; readers always see a whole store.
//!
//! The kill trials cover `client`, `client --batch`, `revoke`, `crl`, `passwd`,
//! `passwd --rekey`, `renew` and `import-easyrsa` (68 trials per run, deterministic seeds). Kill delays are drawn from the
//! command's measured duration (see `Durations::delay`), so most kills land mid-command.
mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The passphrase `passwd` trials switch to (and back from).
const OTHER_PASS: &str = "second-passphrase-2";

/// Held by the tests whose kill delays are calibrated on measured durations, and by the one
/// that loads both cores with writers: they would distort each other's timing.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
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

/// `verify` exits 0 with no problem; returns its JSON report.
fn verify_ok(e: &Env, pass: &str, what: &str) -> Value {
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
    v
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
    let out = crl_verified_text(e.dir.path(), "pki/crl.pem", "pki/ca.crt");
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|h| h.trim().to_ascii_uppercase())
        .collect()
}

/// The serial of the first certificate in a PEM file, read by x509-parser (not vpnca's code).
fn pem_serial(path: &Path) -> String {
    let data = std::fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let (_, pem) = x509_parser::pem::parse_x509_pem(&data)
        .unwrap_or_else(|err| panic!("{}: not PEM: {err}", path.display()));
    let cert = pem
        .parse_x509()
        .unwrap_or_else(|err| panic!("{}: not a certificate: {err}", path.display()));
    let hex: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    norm_serial(&hex)
}

/// The prefix of the temporary files vpnca writes mirrors through (then renames).
const TMP_PREFIX: &str = ".vpnca-tmp-";

/// The public mirrors match the records: `ca.crt` and `issued/NAME.crt` hold the live
/// certificate of every valid name, and `issued/` holds nothing else (run after `verify`,
/// which repairs mirrors a kill left stale). Returns the temporary files a kill left behind
/// in `pki/` and `pki/issued/` (tolerated, counted and reported: see the report of the run).
fn check_mirrors(e: &Env, certs: &[Value], what: &str) -> BTreeSet<std::path::PathBuf> {
    let mut live = BTreeSet::new();
    for c in certs.iter().filter(|c| c["status"] == "valid") {
        let name = str_field(c, "name");
        let mirror = if c["kind"] == "ca" {
            e.pki.join("ca.crt")
        } else {
            live.insert(format!("{name}.crt"));
            e.pki.join("issued").join(format!("{name}.crt"))
        };
        assert_eq!(
            pem_serial(&mirror),
            norm_serial(str_field(c, "serial")),
            "{what}: {} is not the live certificate of {name}",
            mirror.display()
        );
    }
    let mut strays = BTreeSet::new();
    let mut files = BTreeSet::new();
    for dir in [e.pki.clone(), e.pki.join("issued")] {
        for f in std::fs::read_dir(&dir).expect("read_dir") {
            let name = f.expect("entry").file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                strays.insert(dir.join(&name));
            } else if dir.ends_with("issued") {
                files.insert(name);
            }
        }
    }
    assert_eq!(files, live, "{what}: issued/ vs the valid certificates");
    strays
}

/// The audit chain as `verify` checked it: every entry of `log --json` was checked (the count
/// in verify's report), and the sequence numbers run 1, 2, 3… without a gap.
fn check_audit(verified: &Value, log: &[Value], what: &str) {
    assert_eq!(
        verified["audit_entries"].as_u64(),
        Some(u64::try_from(log.len()).expect("len")),
        "{what}: verify checked a different number of audit entries than `log` lists: {verified}"
    );
    let seqs: Vec<i64> = log
        .iter()
        .map(|a| a["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(log.len()).expect("len")).collect::<Vec<_>>(),
        "{what}: audit sequence"
    );
}

/// Keys newly seen by one [`check_consistent`] that are exported and compared with their
/// certificate by openssl; the others (a batch's) are only checked to be stored.
const EXPORTS_PER_CHECK: usize = 3;

/// Exports the key of `c` (the CA's encrypted) and checks with openssl that it reads and
/// matches the certificate.
fn export_and_match(e: &Env, c: &Value, pass: &str, what: &str) {
    let serial = str_field(c, "serial");
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
}

/// What [`check_consistent`] has seen so far.
#[derive(Default)]
struct Seen {
    /// Certificates checked (each is checked once).
    serials: BTreeSet<String>,
    /// Temporary mirror files left behind by kills.
    strays: BTreeSet<std::path::PathBuf>,
}

impl Seen {
    fn print_strays(&self) {
        if !self.strays.is_empty() {
            eprintln!(
                "NOTE: {} temporary mirror file(s) left behind by kills and not removed by `verify`: {:?}",
                self.strays.len(),
                self.strays
            );
        }
    }
}

/// The whole-store invariants after a crash: verify passes and checked every audit entry (a
/// gapless chain), every certificate has its `issue` (or `renew`) audit entry and vice versa,
/// serials are unique, crl.pem lists exactly the revoked certificates, the mirrors are the live
/// certificates, and every certificate not yet seen has its key (a sample of them exported
/// with `--key` to a key openssl reads and that matches the certificate). Returns the number
/// of audit entries at its end (its own exports add entries).
fn check_consistent(e: &Env, pass: &str, seen: &mut Seen, what: &str) -> usize {
    let verified = verify_ok(e, pass, what);
    let certs = json_lines(&e.ok(&["list", "--json"]), "list --json");
    let log = json_lines(&e.ok(&["log", "--json"]), "log --json");
    check_audit(&verified, &log, what);
    assert_eq!(
        verified["certificates"].as_u64(),
        Some(u64::try_from(certs.len()).expect("len")),
        "{what}: verify checked a different number of certificates than `list` lists"
    );
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
    seen.strays.extend(check_mirrors(e, &certs, what));
    // Every certificate has its key; a sample of the new ones (first, middle, last) exports
    // and matches its certificate.
    let new: Vec<&Value> = certs
        .iter()
        .filter(|c| !seen.serials.contains(str_field(c, "serial")))
        .collect();
    let mut sample: Vec<usize> = vec![0, new.len() / 2, new.len().saturating_sub(1)];
    sample.dedup();
    for (i, c) in new.iter().enumerate() {
        assert_eq!(
            c["has_key"], true,
            "{what}: a certificate without its key: {c}"
        );
        if new.len() <= EXPORTS_PER_CHECK || sample.contains(&i) {
            export_and_match(e, c, pass, what);
        }
        seen.serials.insert(str_field(c, "serial").to_string());
    }
    json_lines(&e.ok(&["log", "--json"]), "log --json").len()
}

/// One run of a command that may be killed.
struct Run {
    out: Output,
    killed: bool,
    elapsed: Duration,
}

impl Run {
    /// A run that was not killed must have succeeded.
    fn assert_ok_unless_killed(&self, what: &str) {
        assert!(
            self.killed || self.out.status.success(),
            "{what}: finished with {:?}: {}",
            self.out.status,
            s(&self.out.stderr)
        );
    }
}

/// Spawns `c` and SIGKILLs it `delay` after the spawn unless it has exited by then (polled
/// every millisecond, so that a run that finishes first has its duration measured).
fn run_killing(mut c: Command, delay: Duration) -> Run {
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().expect("spawn vpnca");
    let killed = loop {
        if child.try_wait().expect("try_wait").is_some() {
            break false;
        }
        if start.elapsed() >= delay {
            let _ = child.kill(); // SIGKILL on Unix
            break true;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let elapsed = start.elapsed();
    let out = child.wait_with_output().expect("wait");
    // The kill may come just after the exit; the status says which happened.
    let killed = killed && out.status.signal() == Some(9);
    Run {
        out,
        killed,
        elapsed,
    }
}

/// How long each kind of command takes here and now, learnt from the runs, so that most kill
/// delays land while the command runs.
#[derive(Default)]
struct Durations(BTreeMap<String, Duration>);

impl Durations {
    fn learn(&mut self, kind: &str, r: &Run) {
        let est = self.0.entry(kind.to_owned()).or_insert(r.elapsed);
        if r.killed {
            // It ran at least this long.
            *est = (*est).max(r.elapsed);
        } else {
            *est = (*est * 3 + r.elapsed) / 4;
        }
    }

    /// Half the delays anywhere from 0 to 1.1 × the duration; the other half from 0.5 to
    /// 1.0 × it, where the transaction, the commit and the mirror writes are (the first half
    /// of a run is mostly process start, reading and the passphrase derivation).
    fn delay(&self, kind: &str, rng: &mut XorShift) -> Duration {
        let us = self.micros(kind);
        let (from, to) = if rng.below(2) == 0 {
            (0, us * 11 / 10)
        } else {
            (us / 2, us)
        };
        Duration::from_micros(from + rng.below(to - from + 1))
    }

    /// The learnt duration of `kind` in microseconds (200 ms before any run).
    fn micros(&self, kind: &str) -> u64 {
        let est = self
            .0
            .get(kind)
            .copied()
            .unwrap_or(Duration::from_millis(200));
        u64::try_from(est.as_micros()).expect("small")
    }

    /// A delay from 0.8 to 1.0 × the duration: late in the command, after its first commits.
    fn late_delay(&self, kind: &str, rng: &mut XorShift) -> Duration {
        let us = self.micros(kind);
        Duration::from_micros(us * 4 / 5 + rng.below(us / 5 + 1))
    }

    fn print(&self) {
        for (kind, d) in &self.0 {
            eprintln!("  {kind:<16} takes about {} ms", d.as_millis());
        }
    }
}

/// Per command: killed before anything was committed, killed after a commit, finished.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, [usize; 3]>);

impl Tally {
    fn add(&mut self, cmd: &'static str, r: &Run, committed: bool) {
        let slot = match (r.killed, committed) {
            (true, false) => 0,
            (true, true) => 1,
            (false, _) => 2,
        };
        self.0.entry(cmd).or_default()[slot] += 1;
    }

    /// Whether some kill landed after a commit.
    fn landed_after(&self) -> bool {
        self.0.values().any(|t| t[1] > 0)
    }

    /// Fails unless kills landed on both sides of a commit (in all commands together): at
    /// least `min_before` trials killed before anything was committed and `min_after` killed
    /// after a commit. Otherwise the consistency checks after each trial only ever saw
    /// finished commands (or processes killed before they began), and proved nothing about
    /// SIGKILL. Fails when (seen): every delay (`delay` and `late_delay`) set to 10 s (nothing
    /// is killed), and every delay set to 0 (nothing is committed).
    fn assert_landed(&self, title: &str, min_before: usize, min_after: usize) {
        let before: usize = self.0.values().map(|t| t[0]).sum();
        let after: usize = self.0.values().map(|t| t[1]).sum();
        assert!(
            before >= min_before && after >= min_after,
            "{title}: {before} kill(s) before a commit and {after} after one (want at least \
             {min_before} and {min_after}): the kills did not land inside the commands"
        );
    }

    fn print(&self, title: &str) {
        let total: usize = self.0.values().flatten().sum();
        eprintln!("{title}: {total} trials");
        for (cmd, [before, after, done]) in &self.0 {
            eprintln!(
                "  {cmd:<16} killed {:>2} ({before} before a commit, {after} after), finished {done}",
                before + after
            );
        }
    }
}

/// A batch file of `n` new names `b{trial}-{i}`.
fn batch_file(e: &Env, trial: u64, n: u64) -> (String, Vec<String>) {
    let names: Vec<String> = (0..n).map(|i| format!("b{trial}-{i}")).collect();
    let mut csv = String::from("name,email\n");
    for n in &names {
        csv.push_str(&format!("{n},{n}@example.com\n"));
    }
    let file = format!("batch{trial}.csv");
    std::fs::write(e.path(&file), csv).expect("write batch");
    (file, names)
}

/// The batch arguments: p256 keys for two batches in three, RSA-2048 (the default, whose key
/// generation takes most of the time) for the third.
fn batch_args(file: &str, rsa: bool) -> Vec<String> {
    let mut a: Vec<String> = ["client", "--batch", file, "--jobs", "2"]
        .map(String::from)
        .to_vec();
    if !rsa {
        a.extend(["--algo".into(), "p256".into()]);
    }
    a
}

/// Kill `vpnca client`, `client --batch`, `revoke`, `crl`, `passwd` and `renew` with SIGKILL at
/// a random instant of their run; after each kill the store must be consistent, a killed
/// `passwd` must leave exactly one of the two passphrases working, and a killed batch must
/// have committed all of its lines or none (a batch under 250 lines is one transaction) and
/// be completed by running it again.
#[test]
fn sigkill_at_random_instants_leaves_a_consistent_store() {
    let _heavy = heavy();
    let t0 = Instant::now();
    let e = Env::with_ca();
    let passes = [PASS, OTHER_PASS];
    let mut cur = 0usize;
    let mut seen = Seen::default();
    let mut durations = Durations::default();
    let mut tally = Tally::default();
    let never = Duration::from_secs(600);
    // Calibration: each kind of command once, run to the end and timed.
    let mut calibrate = |kind: &str, args: &[String], pass: usize| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = cmd_pass(&e, &args, passes[pass]);
        c.env("VPNCA_NEW_PASSPHRASE", passes[1 - pass]);
        let r = run_killing(c, never);
        assert!(r.out.status.success(), "{args:?}: {}", s(&r.out.stderr));
        durations.learn(kind, &r);
    };
    calibrate("crl", &["crl".into()], 0);
    for i in 0..4 {
        calibrate("client", &["client".into(), format!("seed{i}")], 0);
    }
    calibrate("revoke", &["revoke".into(), "seed3".into()], 0);
    calibrate("renew", &["renew".into(), "seed2".into()], 0);
    calibrate("passwd", &["passwd".into()], 0);
    calibrate("passwd", &["passwd".into()], 1);
    calibrate("rekey", &["passwd".into(), "--rekey".into()], 0);
    calibrate("rekey", &["passwd".into(), "--rekey".into()], 1);
    let (f, _) = batch_file(&e, 1000, 30);
    calibrate("batch p256", &batch_args(&f, false), 0);
    let (f, _) = batch_file(&e, 1001, 30);
    calibrate("batch rsa", &batch_args(&f, true), 0);
    let mut log_len = check_consistent(&e, PASS, &mut seen, "after the calibration");
    durations.print();

    const KINDS: [&str; 9] = [
        "client", "batch", "revoke", "crl", "passwd", "renew", "batch", "revoke", "rekey",
    ];
    // 48 planned trials; then, only if no kill has yet landed after a commit (a loaded machine
    // can skew the calibration), up to 24 more: batches killed late, which commit chunk by
    // chunk, so that `assert_landed` below fails only when kills really cannot land.
    const TRIALS: u64 = 48;
    const EXTRA: u64 = 24;
    let mut batches = 0;
    for trial in 0..TRIALS + EXTRA {
        let extra = trial >= TRIALS;
        if extra && tally.landed_after() {
            break;
        }
        let mut rng = XorShift::new(trial + 1);
        let pick = usize::try_from(rng.below(1 << 20)).expect("small");
        let valid_client = || -> Option<String> {
            let names: Vec<String> =
                json_lines(&e.ok(&["list", "--json", "--kind", "client"]), "list")
                    .iter()
                    .filter(|c| c["status"] == "valid")
                    .map(|c| str_field(c, "name").to_string())
                    .collect();
            (!names.is_empty()).then(|| names[pick % names.len()].clone())
        };
        let mut batch = None;
        let (cmd, kind, args): (&'static str, &str, Vec<String>) = match if extra {
            "batch"
        } else {
            KINDS[usize::try_from(trial).expect("small") % KINDS.len()]
        } {
            "client" => (
                "client",
                "client",
                vec!["client".into(), format!("user{trial}")],
            ),
            "batch" => {
                let rsa = batches % 3 == 2;
                batches += 1;
                let n = if rsa { 20 } else { 20 + rng.below(21) };
                let (f, names) = batch_file(&e, trial, n);
                let args = batch_args(&f, rsa);
                batch = Some((args.clone(), names));
                let kind = if rsa { "batch rsa" } else { "batch p256" };
                ("client --batch", kind, args)
            }
            "revoke" => match valid_client() {
                Some(n) => ("revoke", "revoke", vec!["revoke".into(), n]),
                None => ("crl", "crl", vec!["crl".into()]),
            },
            "crl" => ("crl", "crl", vec!["crl".into()]),
            "passwd" => ("passwd", "passwd", vec!["passwd".into()]),
            "rekey" => (
                "passwd --rekey",
                "rekey",
                vec!["passwd".into(), "--rekey".into()],
            ),
            _ => match valid_client() {
                Some(n) => ("renew", "renew", vec!["renew".into(), n]),
                None => ("crl", "crl", vec!["crl".into()]),
            },
        };
        let delay = if extra {
            durations.late_delay(kind, &mut rng)
        } else {
            durations.delay(kind, &mut rng)
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = format!(
            "trial {trial}: {args:?} with SIGKILL due at {:.1} ms",
            delay.as_secs_f64() * 1000.0
        );
        let mut c = cmd_pass(&e, &args, passes[cur]);
        c.env("VPNCA_NEW_PASSPHRASE", passes[1 - cur]);
        let r = run_killing(c, delay);
        r.assert_ok_unless_killed(&what);
        durations.learn(kind, &r);
        if cmd.starts_with("passwd") {
            let open: Vec<bool> = passes.iter().map(|p| opens(&e, p)).collect();
            assert_eq!(
                open.iter().filter(|o| **o).count(),
                1,
                "{what}: exactly one of the old and new passphrases must open the store: {open:?}"
            );
            cur = open.iter().position(|o| *o).expect("one opens");
        }
        // Whether the command committed, read before `verify` (which may add entries of its
        // own when it repairs what a kill left behind).
        let committed = json_lines(&e.ok(&["log", "--json"]), "log --json").len() > log_len;
        tally.add(cmd, &r, committed);
        log_len = check_consistent(&e, passes[cur], &mut seen, &what);
        if let Some((args, names)) = batch {
            // All of the batch or none of it, each with its key (checked above); running the
            // same batch again issues exactly the rest.
            let listed: BTreeSet<String> =
                json_lines(&e.ok(&["list", "--json", "--kind", "client"]), "list")
                    .iter()
                    .map(|c| str_field(c, "name").to_string())
                    .collect();
            let committed = names.iter().filter(|n| listed.contains(*n)).count();
            assert!(
                committed == 0 || committed == names.len(),
                "{what}: {committed} of {} lines committed: not one whole transaction",
                names.len()
            );
            let mut rerun = vec!["--json"];
            rerun.extend(args.iter().map(String::as_str));
            let rows = json_lines(&ok_pass(&e, &rerun, passes[cur]), "batch rerun");
            let count = |st: &str| rows.iter().filter(|r| r["status"] == st).count();
            assert_eq!(
                (count("exists"), count("issued")),
                (committed, names.len() - committed),
                "{what}: the rerun"
            );
            log_len = check_consistent(&e, passes[cur], &mut seen, &format!("{what}, rerun"));
        }
    }
    tally.print("SIGKILL trials on one store");
    tally.assert_landed("SIGKILL trials on one store", 1, 1);
    seen.print_strays();
    durations.print();
    eprintln!("took {:.1} s", t0.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// import-easyrsa
// ---------------------------------------------------------------------------------------------

/// An easy-rsa PKI made by Debian's easy-rsa at `<dir>/pki` (tests/common/easyrsa.rs): a CA
/// without a passphrase, a server, six clients, two of them revoked, and a CRL.
fn easyrsa_pki(dir: &Path) -> std::path::PathBuf {
    let pki = dir.join("pki");
    common::easyrsa::easyrsa_pki(
        &pki,
        &["alice", "bob", "carol", "dave", "erin", "frank"],
        &["bob", "erin"],
    );
    pki
}

/// What a store lists: (kind, name, serial, status, has_key) of every certificate.
fn listing(e: &Env) -> BTreeSet<(String, String, String, String, bool)> {
    json_lines(&e.ok(&["list", "--json"]), "list")
        .iter()
        .map(|c| {
            (
                str_field(c, "kind").to_owned(),
                str_field(c, "name").to_owned(),
                str_field(c, "serial").to_owned(),
                str_field(c, "status").to_owned(),
                c["has_key"] == true,
            )
        })
        .collect()
}

/// A store after a complete import: exactly the expected certificates, verify passes and
/// checked the audit chain (init, import-easyrsa, crl, and the certification of the state-signing
/// key in the same transaction), crl.pem lists the revoked ones, the
/// mirrors are written, and a second import is refused without changing anything.
fn check_imported(
    e: &Env,
    src: &Path,
    expected: &BTreeSet<(String, String, String, String, bool)>,
    what: &str,
) {
    let verified = verify_ok(e, PASS, what);
    assert_eq!(&listing(e), expected, "{what}: the imported certificates");
    let log = json_lines(&e.ok(&["log", "--json"]), "log");
    check_audit(&verified, &log, what);
    // One `import` entry per certificate (so `verify` notices a deleted one), then the summary.
    let actions: Vec<&str> = log
        .iter()
        .map(|a| str_field(a, "action"))
        .filter(|a| *a != "import")
        .collect();
    assert_eq!(
        actions,
        ["init", "import-easyrsa", "crl", "state-key"],
        "{what}"
    );
    let per_cert = log
        .iter()
        .filter(|a| str_field(a, "action") == "import")
        .count();
    let certs = expected.iter().filter(|c| c.0 != "ca").count();
    assert_eq!(per_cert, certs, "{what}: one import entry per certificate");
    let revoked: BTreeSet<String> = expected
        .iter()
        .filter(|c| c.3 == "revoked")
        .map(|c| c.2.clone())
        .collect();
    assert_eq!(crl_serials(e), revoked, "{what}: crl.pem");
    let certs = json_lines(&e.ok(&["list", "--json"]), "list");
    let strays = check_mirrors(e, &certs, what);
    if !strays.is_empty() {
        eprintln!("NOTE: {what}: temporary mirror files left behind: {strays:?}");
    }
    let before = e.snapshot();
    let err = e.fails(&["import-easyrsa", src.to_str().expect("utf-8")], 2);
    assert!(
        err.contains("already has a CA"),
        "{what}: second import: {err}"
    );
    assert_eq!(
        e.snapshot(),
        before,
        "{what}: a refused import changed the store"
    );
}

/// Kill `import-easyrsa` into a new store at random instants: afterwards the store holds the
/// whole import or nothing of it (no CA, no certificate, no mirror, only the `init` audit
/// entry) and a rerun then imports it all. Never a half-imported store that verify accepts.
#[test]
fn sigkill_during_import_easyrsa_leaves_all_or_nothing() {
    const IMPORT_TRIALS: u64 = 20;
    let src_dir = tempfile::tempdir().expect("tempdir");
    let src = easyrsa_pki(src_dir.path());
    let src_arg = src.to_str().expect("utf-8");
    let _heavy = heavy();
    let t0 = Instant::now();
    let import = ["import-easyrsa", src_arg];
    // Calibration (three whole runs), and what a complete import lists.
    let mut durations = Durations::default();
    let mut last = None;
    for _ in 0..3 {
        let e = Env::init();
        let r = run_killing(e.cmd(&import), Duration::from_secs(600));
        assert!(r.out.status.success(), "import: {}", s(&r.out.stderr));
        durations.learn("import-easyrsa", &r);
        last = Some(e);
    }
    let e = last.expect("three imports");
    let expected = listing(&e);
    assert_eq!(
        expected.len(),
        8,
        "CA, server and six clients: {expected:?}"
    );
    check_imported(&e, &src, &expected, "the calibration import");

    let mut tally = Tally::default();
    for trial in 0..IMPORT_TRIALS {
        let mut rng = XorShift::new(trial + 101);
        let e = Env::init();
        let delay = durations.delay("import-easyrsa", &mut rng);
        let what = format!(
            "import trial {trial}: SIGKILL due at {:.1} ms",
            delay.as_secs_f64() * 1000.0
        );
        let r = run_killing(e.cmd(&import), delay);
        r.assert_ok_unless_killed(&what);
        durations.learn("import-easyrsa", &r);
        let got = listing(&e);
        tally.add("import-easyrsa", &r, !got.is_empty());
        if got.is_empty() {
            // Nothing: the store is as `init` left it.
            let verified = verify_ok(&e, PASS, &what);
            let log = json_lines(&e.ok(&["log", "--json"]), "log");
            check_audit(&verified, &log, &what);
            assert_eq!(log.len(), 1, "{what}: only the init entry: {log:?}");
            for m in ["ca.crt", "crl.pem"] {
                assert!(!e.pki.join(m).exists(), "{what}: {m} without a CA");
            }
            assert_eq!(
                std::fs::read_dir(e.pki.join("issued"))
                    .map(|d| d.count())
                    .unwrap_or(0),
                0,
                "{what}: mirrors without certificates"
            );
            e.ok(&import);
        }
        check_imported(&e, &src, &expected, &what);
    }
    tally.print("SIGKILL trials of import-easyrsa");
    tally.assert_landed("SIGKILL trials of import-easyrsa", 1, 0);
    durations.print();
    eprintln!("took {:.1} s", t0.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

/// The number of certificates a `status --json` report counts (every record, by status).
fn status_count(v: &Value) -> u64 {
    v["counts"]
        .as_object()
        .unwrap_or_else(|| panic!("status without counts: {v}"))
        .values()
        .map(|n| n.as_u64().expect("a count"))
        .sum()
}

/// Runs `list --json` and `status --json` in turn until `stop`. Every `list` exits 0 and each
/// of its lines is a whole record; every `status` exits 0 or 1 (findings), never 2, with a
/// JSON report; and the number of certificates never goes down from one run to the next
/// (writers only add). Returns the number of runs.
fn reader(e: &Env, stop: &AtomicBool) -> usize {
    const STATES: [&str; 5] = ["valid", "revoked", "superseded", "expired", "pending"];
    let mut runs = 0;
    let mut last = 0;
    while !stop.load(Ordering::SeqCst) || runs < 2 {
        let n = if runs % 2 == 0 {
            let o = e.run(&["list", "--json"]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "list during writes failed: {}",
                s(&o.stderr)
            );
            let certs = json_lines(&s(&o.stdout), "list during writes");
            for c in &certs {
                let serial = str_field(c, "serial");
                assert!(
                    !serial.is_empty() && serial.chars().all(|h| h.is_ascii_hexdigit()),
                    "list during writes: {c}"
                );
                assert!(!str_field(c, "name").is_empty(), "{c}");
                assert!(STATES.contains(&str_field(c, "status")), "{c}");
                assert!(c["has_key"].is_boolean(), "{c}");
            }
            u64::try_from(certs.len()).expect("len")
        } else {
            let o = e.run(&["--json", "status"]);
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "status during writes: exit {:?}: {}",
                o.status.code(),
                s(&o.stderr)
            );
            let v: Value = serde_json::from_str(&s(&o.stdout)).unwrap_or_else(|err| {
                panic!("status --json during writes ({err}): {}", s(&o.stdout))
            });
            status_count(&v)
        };
        assert!(n >= last, "the store went from {last} to {n} certificates");
        last = n;
        runs += 1;
    }
    runs
}

/// Sets the reader's stop flag when dropped: also when the scope's body panics (a failed
/// assertion), so that `thread::scope` does not wait forever for the reader to finish.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// 8 processes × 50 `vpnca client NAME` on one store: 400 certificates, 400 distinct serials,
/// every name, 400 `issue` audit entries in a gapless chain; `list` and `status` running all
/// the while never see a half state.
#[test]
fn eight_writers_issue_four_hundred_certificates_and_lose_nothing() {
    const WRITERS: usize = 8;
    const EACH: usize = 50;
    const TOTAL: usize = WRITERS * EACH;
    let _heavy = heavy();
    let t0 = Instant::now();
    let e = Env::with_ca();
    e.ok(&["crl"]);
    let stop = AtomicBool::new(false);
    let (issued, reads) = std::thread::scope(|sc| {
        let _stop = StopOnDrop(&stop);
        let r = sc.spawn(|| reader(&e, &stop));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let e = &e;
                sc.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let name = format!("w{w}-user{i}");
                            let v: Value =
                                serde_json::from_str(&e.ok(&["--json", "client", &name]))
                                    .expect("client --json");
                            (name, str_field(&v, "serial").to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // Stop the reader before a writer's failure is reported: a panic here would otherwise
        // wait forever for the reader (seen: a CI run hung when `client` failed).
        let results: Vec<_> = writers.into_iter().map(|h| h.join()).collect();
        stop.store(true, Ordering::SeqCst);
        let issued: Vec<(String, String)> = results
            .into_iter()
            .flat_map(|r| r.expect("writer"))
            .collect();
        (issued, r.join().expect("reader"))
    });
    eprintln!(
        "{TOTAL} issuances by {WRITERS} processes at once, {reads} reads meanwhile: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(issued.len(), TOTAL);
    let serials: BTreeSet<&str> = issued.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(serials.len(), TOTAL, "duplicate serials");
    let clients = json_lines(&e.ok(&["list", "--json", "--kind", "client"]), "list");
    assert_eq!(clients.len(), TOTAL);
    let listed: BTreeMap<&str, &str> = clients
        .iter()
        .map(|c| (str_field(c, "name"), str_field(c, "serial")))
        .collect();
    let wanted: BTreeMap<&str, &str> = issued
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        listed, wanted,
        "the names and serials the writers were given"
    );
    assert!(clients.iter().all(|c| c["status"] == "valid"));
    assert!(clients.iter().all(|c| c["has_key"] == true));
    let log = json_lines(&e.ok(&["log", "--json"]), "log");
    let audited: BTreeSet<&str> = log
        .iter()
        .filter(|a| a["action"] == "issue")
        .map(|a| str_field(a, "serial"))
        .collect();
    assert_eq!(log.iter().filter(|a| a["action"] == "issue").count(), TOTAL);
    assert_eq!(audited, serials, "issue entries vs issued serials");
    let verified = verify_ok(&e, PASS, "after parallel issuance");
    check_audit(&verified, &log, "after parallel issuance");
    let all = json_lines(&e.ok(&["list", "--json"]), "list");
    let strays = check_mirrors(&e, &all, "after parallel issuance");
    assert!(strays.is_empty(), "no process was killed: {strays:?}");
}

#[test]
fn the_same_name_issued_at_once_succeeds_exactly_once() {
    let e = Env::with_ca();
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let _stop = StopOnDrop(&stop);
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
        let _stop = StopOnDrop(&stop);
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

/// A kill between creating a mirror's temporary file and renaming it leaves a `.vpnca-tmp-…`
/// file; `verify` removes those older than 10 minutes (listing them as repaired) and leaves a
/// fresh one, which may belong to a writer still running.
#[test]
fn verify_removes_stale_temporary_files() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let stale = [
        e.pki.join(".vpnca-tmp-0123456789ab"),
        e.pki.join("issued").join(".vpnca-tmp-ba9876543210"),
    ];
    for p in &stale {
        std::fs::write(p, "-----BEGIN CERTIFICATE-----\n").expect("write");
        std::fs::File::options()
            .write(true)
            .open(p)
            .and_then(|f| f.set_modified(old))
            .expect("set mtime");
    }
    let fresh = e.pki.join(".vpnca-tmp-fresh0000000");
    std::fs::write(&fresh, "x").expect("write");
    let v = e.json(&["verify"]);
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    let repaired = v["repaired"].to_string();
    for p in &stale {
        assert!(!p.exists(), "{} was not removed", p.display());
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(repaired.contains(name), "{name} not listed: {v}");
    }
    assert!(fresh.exists(), "a fresh temporary file was removed");
}

/// The upgrade of a format-1 store (tests/data/legacy-names) to format 2 is one transaction:
/// SIGKILLed at random instants of its first `verify` (which upgrades it in one write), the
/// store is left in format 1 or format 2, never between; the next `verify` finishes (or finds
/// done) the upgrade, `verify` passes, and a
/// revocation reaches the CRL that openssl reads.
///
/// Fails when: the upgrade commits in more than one transaction (a kill between them leaves the
/// tree without its head, or the format without its tree: verify then fails).
#[test]
fn sigkill_during_the_upgrade_leaves_format_1_or_2() {
    let _heavy = heavy();
    let format = |e: &Env| sqlite_query(e, "SELECT v FROM meta WHERE k = 'format'");
    // The duration of a whole upgrading `verify`, to aim the kills inside it.
    let whole = {
        let e = Env::new();
        copy_dir(&fixture("legacy-names/pki"), &e.pki);
        run_killing(e.cmd(&["verify"]), Duration::from_secs(600)).elapsed
    };
    let mut rng = XorShift::new(16);
    let (mut killed_v1, mut killed_v2) = (0, 0);
    for trial in 0..24 {
        let e = Env::new();
        copy_dir(&fixture("legacy-names/pki"), &e.pki);
        let delay = Duration::from_micros(rng.below(whole.as_micros().max(1) as u64 + 1));
        let run = run_killing(e.cmd(&["verify"]), delay);
        run.assert_ok_unless_killed(&format!("trial {trial}"));
        match format(&e).as_str() {
            "1" => killed_v1 += 1,
            "2" => killed_v2 += 1,
            f => panic!("trial {trial}: format {f:?} after a kill at {delay:?}"),
        }
        let verified = e.run(&["--json", "verify"]);
        assert_verify_clean(&format!("trial {trial}: verify after the kill"), &verified);
        assert_eq!(format(&e), "2", "trial {trial}: the next verify upgrades");
        if trial % 8 == 0 {
            let alice = pem_serial(&e.pki.join("issued/alice.crt"));
            e.ok(&["revoke", "alice"]);
            assert!(
                crl_serials(&e).contains(&alice),
                "trial {trial}: alice {alice} is not in the CRL"
            );
        }
    }
    eprintln!(
        "upgrade kills: {killed_v1} left format 1, {killed_v2} format 2 (a whole upgrade took {whole:?})"
    );
}
