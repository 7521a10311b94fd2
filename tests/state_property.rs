//! Issue 16's property test: random operation sequences, some interleaved with random edits of
//! the store's files by someone without the passphrase (the attack classes of
//! tests/untrusted_storage.rs and tests/authenticated_state.rs). After every step, either vpnca
//! refused (exit 2, nothing changed) or the CRL it published — `crl.pem`, read by `openssl
//! crl` — lists exactly the serials that were truly revoked (the model, built from the commands'
//! own successful outputs, never from the store). And sequences without edits never refuse:
//! "always refuse" fails it as surely as "never refuse".
//!
//! Deterministic: each sequence has its seed; a failure names the seed and the steps.
mod common;
use common::*;

use std::collections::BTreeSet;

const NAMES: [&str; 4] = ["ann", "ben", "cat", "dan"];

/// The classes of storage edits (each refused somewhere in the other test files).
const EDITS: [&str; 8] = [
    "replay a row and the revoked set from an older copy",
    "delete a record",
    "switch the omit-expired CRL policy on",
    "rewrite a tree node",
    "put an older state head back",
    "delete the newest CRL",
    "put an older database file back",
    "un-revoke a row in place",
];

struct Seq {
    e: Env,
    rng: XorShift,
    /// The model: the live serial of each name, and every serial truly revoked.
    live: std::collections::BTreeMap<String, String>,
    revoked: BTreeSet<String>,
    /// A copy of `vpnca.db` from before a revocation (for the replay edits).
    older: Option<Vec<u8>>,
    log: Vec<String>,
}

impl Seq {
    fn new(seed: u64) -> Seq {
        let e = Env::with_ca();
        e.ok(&["crl"]);
        Seq {
            e,
            rng: XorShift::new(seed),
            live: Default::default(),
            revoked: BTreeSet::new(),
            older: None,
            log: vec![format!("seed {seed}")],
        }
    }

    fn db(&self) -> std::path::PathBuf {
        self.e.pki.join("vpnca.db")
    }

    /// One random command. `Ok(())` when it ran, `Err(stderr)` when it was refused with exit 2
    /// (having changed nothing); any other outcome fails the test.
    fn op(&mut self) -> Result<(), String> {
        let name = NAMES[self.rng.index(NAMES.len())].to_string();
        let pick = self.rng.index(5);
        self.run(name, pick)
    }

    /// `pick`: 0–1 issue (revoke when live), 2 revoke (when live), 3 crl, 4 export (when live).
    fn run(&mut self, name: String, pick: usize) -> Result<(), String> {
        let args: Vec<String> = match (pick, self.live.contains_key(&name)) {
            (0 | 1, false) => vec!["client".into(), name.clone()],
            (0 | 1, true) | (2, true) => vec!["revoke".into(), name.clone()],
            (3, _) => vec!["crl".into()],
            (_, true) => vec![
                "export".into(),
                name.clone(),
                "--out".into(),
                "x".into(),
                "--force".into(),
            ],
            (_, false) => vec!["crl".into()],
        };
        self.log.push(format!("$ vpnca {}", args.join(" ")));
        let mut full = vec!["--json".to_string()];
        full.extend(args.iter().cloned());
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let before = self.e.snapshot();
        let o = self.e.run(&refs);
        match o.status.code() {
            Some(0) => {}
            Some(2) => {
                let err = s(&o.stderr);
                assert!(
                    self.e.snapshot() == before,
                    "refused but changed the store: {err}\n{}",
                    self.log.join("\n")
                );
                return Err(err);
            }
            c => panic!("exit {c:?}: {}\n{}", s(&o.stderr), self.log.join("\n")),
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        match args[0].as_str() {
            "client" => {
                let serial = norm_serial(str_field(&v, "serial"));
                self.live.insert(name, serial);
            }
            "revoke" => {
                for r in v["revoked"].as_array().expect("revoked") {
                    self.revoked.insert(norm_serial(str_field(r, "serial")));
                }
                self.live.remove(&name);
            }
            _ => {}
        }
        if matches!(args[0].as_str(), "revoke" | "crl") {
            self.check_crl();
        }
        Ok(())
    }

    /// The published CRL lists exactly the truly revoked serials.
    fn check_crl(&self) {
        let (_, listed) = crl_by_openssl(&self.e);
        let listed: BTreeSet<String> = listed.into_keys().collect();
        assert_eq!(
            listed,
            self.revoked,
            "crl.pem differs from the revocations made\n{}",
            self.log.join("\n")
        );
    }

    /// One random storage edit.
    fn edit(&mut self, k: usize) {
        self.log.push(format!("# edit: {}", EDITS[k]));
        let older = self.older.clone();
        let attach = |bytes: &[u8]| {
            let p = self.e.path("older.db");
            std::fs::write(&p, bytes).expect("older");
            format!("ATTACH '{}' AS o;", path_str(&p))
        };
        let sql = match (k, &older) {
            (0, Some(o)) => format!(
                "{} BEGIN; \
                 UPDATE certs SET state = (SELECT state FROM o.certs c WHERE c.serial = certs.serial), \
                   revoked_at = (SELECT revoked_at FROM o.certs c WHERE c.serial = certs.serial), \
                   reason = (SELECT reason FROM o.certs c WHERE c.serial = certs.serial), \
                   mac = (SELECT mac FROM o.certs c WHERE c.serial = certs.serial) \
                 WHERE serial IN (SELECT serial FROM o.certs); \
                 DELETE FROM meta WHERE k IN ('revocation_digest', 'revoked_count', 'revocation_mac'); \
                 INSERT INTO meta SELECT k, v FROM o.meta WHERE k IN ('revocation_digest', 'revoked_count', 'revocation_mac'); \
                 COMMIT;",
                attach(o)
            ),
            (1, _) => "DELETE FROM certs WHERE id = (SELECT MAX(id) FROM certs WHERE kind != 'ca')".into(),
            (2, _) => "INSERT OR REPLACE INTO meta (k, v) VALUES ('crl_omit_expired', '1')".into(),
            (3, _) => "UPDATE smt_nodes SET v = randomblob(length(v)) WHERE k = (SELECT k FROM smt_nodes ORDER BY v LIMIT 1)".into(),
            (4, Some(o)) => format!(
                "{} BEGIN; DELETE FROM smt_nodes; INSERT INTO smt_nodes SELECT * FROM o.smt_nodes; \
                 UPDATE meta SET v = (SELECT v FROM o.meta WHERE k = 'state_head') WHERE k = 'state_head'; COMMIT;",
                attach(o)
            ),
            (5, _) => "DELETE FROM crls WHERE number = (SELECT MAX(number) FROM crls)".into(),
            (6, Some(o)) => {
                std::fs::write(self.db(), o).expect("put back");
                return;
            }
            _ => "UPDATE certs SET state = 'valid', revoked_at = NULL, reason = NULL WHERE state = 'revoked'".into(),
        };
        sqlite(&self.e, &sql);
    }
}

/// Sequences without edits: every command runs, and every CRL lists exactly the revocations.
/// Fails when: any check refuses an untouched store (seen by planting `trusted_head` to refuse
/// every head: the first command of every sequence fails).
#[test]
fn sequences_without_edits_never_refuse() {
    for seed in 1..=4 {
        let mut q = Seq::new(seed);
        for _ in 0..12 {
            if let Err(err) = q.op() {
                panic!("refused an untouched store: {err}\n{}", q.log.join("\n"));
            }
        }
        q.e.ok(&["crl"]);
        q.check_crl();
        assert_verify_clean("verify", &q.e.run(&["--json", "verify"]));
    }
}

/// Sequences with random edits: after each edit vpnca either refuses (exit 2, nothing changed)
/// or still publishes exactly the true revocations — never a CRL without a revoked user.
/// Fails when: a defence of format 2 is planted out such that an edit un-revokes someone (seen
/// with the revoked-set proof and the new-CRL rule planted out: a replayed revoked set made
/// `crl` publish a CRL without a revoked user).
#[test]
fn sequences_with_edits_refuse_or_publish_the_truth() {
    let mut refused = 0;
    for seed in 100..116 {
        let mut q = Seq::new(seed);
        let untouched = |q: &mut Seq, r: Result<(), String>| {
            r.unwrap_or_else(|err| panic!("untouched: {err}\n{}", q.log.join("\n")))
        };
        // A history first; a copy of the database; then at least one revocation it does not
        // hold (what the replays try to undo).
        for _ in 0..5 {
            let r = q.op();
            untouched(&mut q, r);
        }
        q.older = Some(std::fs::read(q.db()).expect("db"));
        let victim = match q.live.keys().next() {
            Some(n) => n.clone(),
            None => {
                let r = q.run("ann".into(), 0);
                untouched(&mut q, r);
                "ann".into()
            }
        };
        let r = q.run(victim, 2);
        untouched(&mut q, r);
        for _ in 0..2 {
            let r = q.op();
            untouched(&mut q, r);
        }
        // Every class of edit, twice; half the time the next command makes a CRL.
        q.edit((seed % EDITS.len() as u64) as usize);
        if seed % 2 == 1 && q.run("ann".into(), 3).is_err() {
            refused += 1;
            continue;
        }
        // Then commands until one refuses (the store stays refused) or the budget runs out;
        // a CRL made is always checked against the model.
        let mut stopped = false;
        for _ in 0..6 {
            if q.op().is_err() {
                stopped = true;
                break;
            }
        }
        if !stopped {
            match q.e.run(&["--json", "crl"]).status.code() {
                Some(0) => q.check_crl(),
                Some(2) => stopped = true,
                c => panic!("crl exited {c:?}\n{}", q.log.join("\n")),
            }
        }
        refused += usize::from(stopped);
    }
    // Most edits are refused sooner or later; an edit may also miss (a deleted row no command
    // reads again, an older file identical to the current one).
    assert!(refused > 0, "no edit was ever refused");
}
