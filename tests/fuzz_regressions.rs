//! The fuzz targets' calls, in the normal test suite: each target's seeds (fuzz/seeds/TARGET/)
//! and every input a fuzzer found a bug with (tests/data/fuzz-regressions/TARGET-NAME) go
//! through the same library call as in `cargo fuzz run TARGET` (fuzz/src/lib.rs, included
//! here), and must come back, accepted or refused, without a panic. The seeds must also still
//! reach each parser's success path (at least one accepted), or fuzzing them proves little.
//!
//! The easy-rsa targets call `vpnca::easyrsa::fuzzing`, which only `--cfg fuzzing` builds
//! have; here their inputs go through the public `easyrsa::plan` instead, placed as
//! `index.txt` or `private/ca.key` of an easy-rsa folder.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use vpnca::Passphrase;

#[path = "../fuzz/src/lib.rs"]
mod targets;

/// The seeds and the saved crashes of `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = |dir: PathBuf, prefix: &str| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = entries
            .map(|e| e.expect("read a directory entry").path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        v.sort();
        v
    };
    let seeds = files(top.join("fuzz/seeds").join(target), "");
    assert!(
        !seeds.is_empty(),
        "fuzz/seeds/{target}/ has no seeds (fuzz/generate-seeds.sh makes them)"
    );
    let mut all = seeds;
    all.extend(files(
        top.join("tests/data/fuzz-regressions"),
        &format!("{target}-"),
    ));
    all
}

/// How long one input may take before it counts as a hang (`$VPNCA_FUZZ_INPUT_SECS`, default
/// 120 s). Not a performance assertion: the slowest accepted input (an easy-rsa key file at
/// the highest KDF cost vpnca accepts) takes a few seconds; the bug this catches is the
/// 45-minute PBKDF2 loop fuzzing once found, which would otherwise hang CI instead of failing.
fn input_limit() -> Duration {
    let secs = std::env::var("VPNCA_FUZZ_INPUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// A fuzz target's call, shareable with the thread that runs one input.
type Call = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// What one input did.
enum Outcome {
    Accepted,
    Refused,
    Panicked,
    Hung,
}

/// Runs `call(data)` on a thread of its own, bounded by `limit`. A hung call's thread is left
/// behind (a thread cannot be killed); the test then fails and its process ends with it.
fn run_bounded(call: &Call, data: Vec<u8>, limit: Duration) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let call = Arc::clone(call);
    std::thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| call(&data)));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(true)) => Outcome::Accepted,
        Ok(Ok(false)) => Outcome::Refused,
        Ok(Err(_)) => Outcome::Panicked,
        Err(_) => Outcome::Hung,
    }
}

/// Feeds every input of `target` to `call`, each bounded in time; fails naming each input that
/// panicked or hung, and when none was accepted.
///
/// Fails when (seen with planted faults, tests `bounded_*` below run them every time): the call
/// panics, or it does not return within the limit.
fn check(target: &str, call: impl Fn(&[u8]) -> bool + Send + Sync + 'static) {
    let call: Call = Arc::new(call);
    let limit = input_limit();
    let mut panicked = Vec::new();
    let mut hung = Vec::new();
    let mut accepted = 0;
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("read a fuzz input");
        match run_bounded(&call, data, limit) {
            Outcome::Accepted => accepted += 1,
            Outcome::Refused => {}
            Outcome::Panicked => panicked.push(path.display().to_string()),
            Outcome::Hung => hung.push(path.display().to_string()),
        }
    }
    assert!(
        panicked.is_empty(),
        "target {target}: vpnca panicked on {panicked:#?}"
    );
    assert!(
        hung.is_empty(),
        "target {target}: no answer within {limit:?} (a hang) on {hung:#?}"
    );
    assert!(
        accepted > 0,
        "target {target}: no seed was accepted; regenerate them (fuzz/generate-seeds.sh)"
    );
}

#[test]
fn csr() {
    check("csr", targets::csr);
}

#[test]
fn batch() {
    check("batch", targets::batch);
}

#[test]
fn profile() {
    check("profile", targets::profile);
}

#[test]
fn ovpn() {
    check("ovpn", targets::ovpn);
    targets::remove_temp_dir("ovpn");
}

/// The store seeds through the target, like every target's; and also: every store seed is a
/// healthy store, of the current format or an older one that upgrades, so each must reach the
/// target's success path (open, unlock, `verify`, a restore accepted, `verify` clean). A seed
/// refused there fuzzes only its first refusal (a seed made before a state item that is now
/// required, for example), so this fails naming it: regenerate the seeds
/// (fuzz/generate-seeds.sh). One test, not two: the target's calls share one directory per
/// process.
///
/// Fails when (seen with planted faults): a seed truncated to 4,000 bytes; the seeds of
/// 2026-12-03 with the target before it accepted a missing checkpoint as a restore.
#[test]
fn store_open() {
    check("store_open", targets::store_open);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/store_open");
    let mut refused = Vec::new();
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read fuzz/seeds/store_open")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "too few store seeds: {seeds:?}");
    for path in &seeds {
        let data = std::fs::read(path).expect("read a seed");
        if !targets::store_open(&data) {
            refused.push(path.display().to_string());
        }
    }
    targets::remove_temp_dir("store_open");
    assert!(
        refused.is_empty(),
        "store seeds refused (regenerate them: fuzz/generate-seeds.sh): {refused:#?}"
    );
}

/// An easy-rsa folder holding `file` at `rel` (and the `index.txt` that marks the folder).
fn easyrsa_plan(
    rel: &str,
    file: &[u8],
    pass: Option<&Passphrase>,
) -> vpnca::Result<vpnca::easyrsa::Plan> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("private")).expect("mkdir private");
    std::fs::write(dir.path().join("index.txt"), b"").expect("write index.txt");
    std::fs::write(dir.path().join(rel), file).expect("write the input");
    vpnca::easyrsa::plan(dir.path(), pass)
}

#[test]
fn easyrsa_index() {
    check("easyrsa_index", |data| {
        // Accepted: no problem from reading the file itself ("index.txt", "index.txt line N");
        // "index.txt line N (serial …)" are the certificate files this folder lacks.
        easyrsa_plan("index.txt", data, None).is_ok_and(|plan| {
            !plan.problems.iter().any(|p| {
                p.object == "index.txt"
                    || p.object
                        .strip_prefix("index.txt line ")
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
    });
}

#[test]
fn easyrsa_key() {
    let pass = Passphrase::new(targets::PASSPHRASE.into());
    check("easyrsa_key", move |data| {
        // The first byte picks the passphrase, as in the fuzz target.
        let Some((&selector, file)) = data.split_first() else {
            return false;
        };
        let pass = (selector & 1 == 1).then_some(&pass);
        easyrsa_plan("private/ca.key", file, pass)
            .is_ok_and(|plan| !plan.problems.iter().any(|p| p.object == "private/ca.key"))
    });
}

/// The bound itself can fail: a call that sleeps past the limit is a hang, one that panics is
/// a panic (the planted faults behind `check`'s "Fails when").
#[test]
fn bounded_run_reports_hangs_and_panics() {
    let sleeper: Call = Arc::new(|_: &[u8]| {
        std::thread::sleep(Duration::from_secs(5));
        true
    });
    assert!(matches!(
        run_bounded(&sleeper, Vec::new(), Duration::from_millis(50)),
        Outcome::Hung
    ));
    let panics: Call = Arc::new(|_: &[u8]| panic!("planted panic"));
    assert!(matches!(
        run_bounded(&panics, Vec::new(), Duration::from_secs(60)),
        Outcome::Panicked
    ));
    let fine: Call = Arc::new(|d: &[u8]| d.is_empty());
    assert!(matches!(
        run_bounded(&fine, Vec::new(), Duration::from_secs(60)),
        Outcome::Accepted
    ));
}
