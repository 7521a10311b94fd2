//! Issue 16, the rollback witness outside the store: the state head in the `--json` output of
//! every writing command (for a script to note elsewhere and check with `verify --head`), and
//! the second checkpoint (`--checkpoint FILE` / `VPNCA_CHECKPOINT`). The attacks are file
//! operations only (no passphrase): the whole store folder put back, the outside file deleted
//! or swapped for another store's. Each is judged by independent evidence: exit 2 with every
//! file of the store (and the outside file) unchanged, `verify` exit 1, and the CRL read by
//! `openssl crl`.
mod common;
use common::*;

use std::path::{Path, PathBuf};

/// `vpnca --checkpoint CP ARGS`.
fn with<'a>(cp: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--checkpoint", path_str(cp)];
    a.extend_from_slice(args);
    a
}

/// A folder outside the store for the second checkpoint (another disk, a config repo).
fn elsewhere(e: &Env) -> PathBuf {
    let d = e.path("elsewhere");
    std::fs::create_dir_all(&d).expect("mkdir elsewhere");
    d.join("pki.checkpoint")
}

/// `args` fails with exit 2, naming `what`; the store and the second checkpoint `cp` are
/// left exactly as they were.
fn refused(e: &Env, cp: &Path, args: &[&str], what: &str) {
    let (before, outside) = (e.snapshot(), std::fs::read(cp).ok());
    let err = e.fails(args, 2);
    assert!(err.contains(what), "{args:?}: {err}");
    assert!(
        e.snapshot() == before,
        "{args:?} was refused but changed the store"
    );
    assert_eq!(
        std::fs::read(cp).ok(),
        outside,
        "{args:?} was refused but changed {}",
        cp.display()
    );
}

/// `verify ARGS` exits 1 and names `what`.
fn verify_reports(e: &Env, args: &[&str], what: &str) {
    let o = e.run(args);
    let out = format!("{}{}", s(&o.stdout), s(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{args:?}: {out}");
    assert!(out.contains(what), "{args:?}: {out}");
}

/// The head `vpnca verify --json` prints.
fn verified_head(e: &Env, cp: Option<&Path>) -> String {
    let args = match cp {
        Some(cp) => with(cp, &["verify"]),
        None => vec!["verify"],
    };
    str_field(&e.json(&args), "state_head").to_string()
}

/// The `--json` document of each writing command carries `state_head`, the head `vpnca verify`
/// then prints (JSON lines: each line, the last one the head after the batch); `verify --head`
/// passes with it; after a later write it is an older anchor (a warning); the whole folder put
/// back from before it is an older copy (exit 1).
///
/// Fails when: `output::with_head` inserts nothing (or an older head).
#[test]
fn every_writing_command_prints_the_new_head() {
    let e = Env::new();
    let heads = std::cell::RefCell::new(Vec::new());
    let check = |e: &Env, what: &str, head: &serde_json::Value| {
        let head = head
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no state_head"));
        assert_eq!(head, verified_head(e, None), "{what}");
        heads.borrow_mut().push(head.to_string());
    };
    let v = e.json(&["init", "--kdf-memory-mib", "8", "--kdf-time", "1"]);
    check(&e, "init", &v["state_head"]);
    let v = e.json(&["ca", "--cn", "Test VPN CA"]);
    check(&e, "ca", &v["state_head"]);
    let v = e.json(&["client", "alice"]);
    check(&e, "client", &v["state_head"]);
    let v = e.json(&["export", "alice", "--out", "out"]);
    check(&e, "export", &v["state_head"]);
    std::fs::write(e.path("users.csv"), "name\nbob\ncarol\ndave\n").expect("csv");
    let lines = e.json_lines(&["client", "--batch", "users.csv"]);
    assert!(
        lines.iter().all(|l| l["state_head"].is_string()),
        "{lines:?}"
    );
    check(&e, "client --batch", &lines[lines.len() - 1]["state_head"]);
    let old_folder = e.path("old-folder");
    copy_dir(&e.pki, &old_folder);
    let v = e.json(&["revoke", "bob"]);
    check(&e, "revoke", &v["state_head"]);
    let anchor = heads.borrow().last().cloned().expect("a head");
    std::fs::write(e.path("leavers.csv"), "name\ncarol\n").expect("csv");
    let lines = e.json_lines(&["revoke", "--batch", "leavers.csv"]);
    check(&e, "revoke --batch", &lines[lines.len() - 1]["state_head"]);
    let v = e.json(&["crl"]);
    check(&e, "crl", &v["state_head"]);
    // Each head is newer than the one before.
    let heads = heads.into_inner();
    let seqs: Vec<u64> = heads
        .iter()
        .map(|h| h.split_once(':').expect("SEQ:ROOT").0.parse().expect("SEQ"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{heads:?}");

    // The anchor noted from `revoke`'s output: an older one now (a warning, exit 0).
    let o = e.run(&["verify", "--head", &anchor]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stdout));
    assert!(
        s(&o.stdout).contains("WARNING: the head you noted"),
        "{}",
        s(&o.stdout)
    );
    e.ok(&["verify", "--head", &heads[heads.len() - 1]]);
    // The whole folder from before bob's revocation: an older copy than the anchor.
    std::fs::remove_dir_all(&e.pki).expect("rm");
    copy_dir(&old_folder, &e.pki);
    verify_reports(
        &e,
        &["verify", "--head", &anchor],
        "PROBLEM: the database is an older copy: the head you noted is",
    );
}

/// The whole store folder put back (database and `vpnca.checkpoint` together, from after the
/// second checkpoint was set up) while the second checkpoint stays where it is: every write and
/// every key use is refused (exit 2, nothing changed, nothing published), with the option and
/// without it; `verify` finds an older copy (exit 1). The deliberate way back is
/// `verify --accept-restore` with the newer crl.pem put into the folder first: bob is revoked
/// again (openssl reads him in the CRL).
///
/// Fails when: `Store::outside` does not compare the second checkpoint's audit head with the
/// database (the put-back folder then works and `crl --out` publishes a CRL without bob); or
/// it does not refuse a store that recorded one when none is given.
#[test]
fn the_whole_folder_put_back_is_refused_by_the_outside_checkpoint() {
    let e = Env::with_ca();
    let cp = elsewhere(&e);
    e.ok(&with(&cp, &["client", "alice"]));
    e.ok(&with(&cp, &["client", "bob"]));
    e.ok(&with(&cp, &["crl"]));
    let old_folder = e.path("old-folder");
    copy_dir(&e.pki, &old_folder);
    let bob = norm_serial(str_field(&e.json(&["show", "bob"]), "serial"));
    e.ok(&with(&cp, &["revoke", "bob"]));
    let newer_crl = std::fs::read(e.pki.join("crl.pem")).expect("crl.pem");

    std::fs::remove_dir_all(&e.pki).expect("rm");
    copy_dir(&old_folder, &e.pki);
    let what = "the database is an older copy: the second checkpoint";
    refused(
        &e,
        &cp,
        &with(&cp, &["crl", "--out", "published.pem"]),
        what,
    );
    assert!(!e.path("published.pem").exists(), "a CRL was published");
    refused(&e, &cp, &with(&cp, &["client", "carol"]), what);
    refused(
        &e,
        &cp,
        &with(&cp, &["export", "alice", "--out", "out", "--key"]),
        what,
    );
    refused(
        &e,
        &cp,
        &["crl"],
        "this store keeps a second checkpoint outside its folder",
    );
    refused(
        &e,
        &cp,
        &["revoke", "alice"],
        "none was given: pass --checkpoint FILE",
    );
    verify_reports(&e, &with(&cp, &["verify"]), what);
    verify_reports(&e, &["verify"], "none was given");

    // Accepting the restore on purpose: the newer crl.pem first, then --accept-restore.
    std::fs::write(e.pki.join("crl.pem"), &newer_crl).expect("put back crl.pem");
    let o = e.run(&with(&cp, &["verify", "--accept-restore"]));
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));
    assert!(
        s(&o.stdout).contains("revoked again: bob"),
        "{}",
        s(&o.stdout)
    );
    let (_, revoked) = crl_by_openssl(&e);
    assert!(
        revoked.contains_key(&bob),
        "bob {bob} is not in the CRL: {revoked:?}"
    );
    e.ok(&with(&cp, &["client", "carol"]));
    assert_verify_clean("verify", &e.run(&with(&cp, &["--json", "verify"])));
}

/// The limit, stated by a test: the whole folder put back from **before** the second
/// checkpoint was set up records none, so a run without the option cannot tell (nothing local
/// can); with the option it is an older copy.
///
/// Fails when: the second checkpoint is not checked on a store that has not recorded it.
#[test]
fn a_folder_from_before_the_set_up_is_caught_only_with_the_option() {
    let e = Env::with_ca();
    e.ok(&["client", "bob"]);
    let old_folder = e.path("old-folder");
    copy_dir(&e.pki, &old_folder);
    let cp = elsewhere(&e);
    e.ok(&with(&cp, &["revoke", "bob"]));
    let log = e.json_lines(&["log"]);
    let entries: Vec<_> = log.iter().filter(|l| l["action"] == "checkpoint").collect();
    assert_eq!(entries.len(), 1, "the set-up is audited once: {log:?}");

    std::fs::remove_dir_all(&e.pki).expect("rm");
    copy_dir(&old_folder, &e.pki);
    e.ok(&["verify"]);
    refused(
        &e,
        &cp,
        &with(&cp, &["crl"]),
        "the database is an older copy: the second checkpoint",
    );
}

/// The second checkpoint deleted after it was set up: refused (exit 2, nothing changed), with
/// the option naming the file as missing; `verify` exit 1. A new one, elsewhere, is started only
/// on purpose with `verify --accept-restore` (audited), after which the store works with it.
///
/// Fails when: a missing second checkpoint is not refused when the store recorded one.
#[test]
fn a_missing_outside_checkpoint_is_refused() {
    let e = Env::with_ca();
    let cp = elsewhere(&e);
    e.ok(&with(&cp, &["client", "alice"]));
    std::fs::remove_file(&cp).expect("rm");
    refused(&e, &cp, &with(&cp, &["client", "carol"]), "is missing");
    refused(
        &e,
        &cp,
        &with(&cp, &["export", "alice", "--out", "out", "--key"]),
        "is missing",
    );
    verify_reports(&e, &with(&cp, &["verify"]), "is missing");

    let cp2 = e.path("elsewhere/new.checkpoint");
    let o = e.run(&with(&cp2, &["verify", "--accept-restore"]));
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));
    assert!(cp2.exists());
    e.ok(&with(&cp2, &["client", "carol"]));
    let moved = e
        .json_lines(&["log"])
        .into_iter()
        .filter(|l| l["action"] == "checkpoint")
        .count();
    assert_eq!(moved, 2, "the set-up and the new path are audited");
    assert_verify_clean("verify", &e.run(&with(&cp2, &["--json", "verify"])));
}

/// Another store's second checkpoint, a file that is no checkpoint, or a path inside the store
/// folder: refused (exit 2), and the file is never overwritten.
///
/// Fails when: the checkpoint's `store` line is not compared (the other store's file is then
/// refused only as "another history", or an older copy, and not named for what it is).
#[test]
fn another_stores_checkpoint_or_a_foreign_file_is_refused() {
    let a = Env::with_ca();
    let b = Env::with_ca();
    let cp_b = elsewhere(&b);
    b.ok(&with(&cp_b, &["client", "bob"]));
    let cp_a = elsewhere(&a);
    a.ok(&with(&cp_a, &["client", "alice"]));
    refused(
        &a,
        &cp_b,
        &with(&cp_b, &["client", "carol"]),
        "is the second checkpoint of another store",
    );
    verify_reports(&a, &with(&cp_b, &["verify"]), "of another store");
    // Also where the store never had one: never adopted, never overwritten.
    let c = Env::with_ca();
    refused(
        &c,
        &cp_b,
        &with(&cp_b, &["client", "carol"]),
        "of another store",
    );

    let notes = a.path("notes.txt");
    std::fs::write(&notes, "my notes\n").expect("write");
    refused(
        &a,
        &notes,
        &with(&notes, &["client", "carol"]),
        "is not a vpnca checkpoint",
    );
    let inside = a.pki.join("second.checkpoint");
    let err = a.fails(&with(&inside, &["client", "carol"]), 2);
    assert!(err.contains("is inside the store folder"), "{err}");
}

/// Normal use with `VPNCA_CHECKPOINT` from `init` on never refuses: the second checkpoint is the
/// same file as `vpnca.checkpoint`, follows every change, and the head in it is the one
/// `verify` prints.
///
/// Fails when: a check refuses an honest store (e.g. the audit head compared before the commit
/// wrote it).
#[test]
fn normal_use_with_the_outside_checkpoint_never_refuses() {
    let e = Env::new();
    let cp = elsewhere(&e);
    let run = |args: &[&str]| {
        let o = e
            .cmd(args)
            .env("VPNCA_CHECKPOINT", &cp)
            .output()
            .expect("run");
        expect_ok(args, o)
    };
    run(&["init", "--kdf-memory-mib", "8", "--kdf-time", "1"]);
    assert!(cp.exists(), "init started the second checkpoint");
    run(&["ca", "--cn", "Test VPN CA"]);
    run(&["server", "vpn.example.com"]);
    for n in ["alice", "bob", "carol"] {
        run(&["client", n]);
    }
    run(&["revoke", "bob"]);
    run(&["renew", "alice"]);
    run(&["export", "carol", "--out", "out", "--key"]);
    run(&["crl"]);
    let local = std::fs::read_to_string(e.pki.join("vpnca.checkpoint")).expect("local");
    assert_eq!(std::fs::read_to_string(&cp).expect("outside"), local);
    let head = verified_head(&e, Some(&cp));
    assert!(
        local.contains(&format!("state-head {head}\n")),
        "{local} / {head}"
    );
    let o = e
        .cmd(&["verify"])
        .env("VPNCA_CHECKPOINT", &cp)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stdout));
    assert!(!s(&o.stdout).contains("WARNING"), "{}", s(&o.stdout));
}
