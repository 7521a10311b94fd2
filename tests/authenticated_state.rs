//! Issue 16, store format 2: one authenticated state. Every value a decision reads is proven
//! against the root of the state tree, whose head is MAC'd and bound to the audit log. Each test
//! plays someone who can write the store's files but does not know the passphrase (the `sqlite3`
//! CLI on `vpnca.db`, file copies) and judges vpnca by independent evidence: an exit-2 refusal
//! that changed nothing, `verify`'s verdict, or the CRL read by `openssl crl`.
mod common;
use common::*;

/// A store with a CA, alice and bob, and a first CRL.
fn store() -> Env {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["crl"]);
    e
}

/// `args` fails with exit 2, naming `what`, and leaves every file of the store as it was.
fn refused(e: &Env, args: &[&str], what: &str) {
    let before = e.snapshot();
    let err = e.fails(args, 2);
    assert!(err.contains(what), "{args:?}: {err}");
    assert!(
        e.snapshot() == before,
        "{args:?} was refused but changed the store"
    );
}

/// `verify` finds a problem (exit 1) and names `what`.
fn verify_reports(e: &Env, what: &str) {
    let o = e.run(&["verify"]);
    let out = format!("{}{}", s(&o.stdout), s(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "verify: {out}");
    assert!(out.contains(what), "verify: {out}");
}

/// A new store is format 2 and its state head is in the checkpoint.
#[test]
fn a_new_store_is_format_2_with_its_head_checkpointed() {
    let e = store();
    assert_eq!(
        sqlite_query(&e, "SELECT v FROM meta WHERE k = 'format'"),
        "2"
    );
    let head = sqlite_query(&e, "SELECT v FROM meta WHERE k = 'state_head'");
    let checkpoint = std::fs::read_to_string(e.pki.join("vpnca.checkpoint")).expect("checkpoint");
    let (seq_root, _mac) = head.rsplit_once(':').expect("SEQ:ROOT:MAC");
    assert!(
        checkpoint.contains(&format!("state-head {seq_root}\n"))
            && checkpoint.contains("format 2\n"),
        "{checkpoint} / {head}"
    );
    assert_verify_clean("verify", &e.run(&["--json", "verify"]));
}

/// The CRL policy in `meta` (`crl_omit_expired`, `crl_days`) carried no MAC: switched on from
/// outside, it silently shaped the next CRL. It is part of the state now: `crl` refuses with
/// exit 2 and changes nothing; `verify` names the setting.
///
/// Fails when: neither `Store::setting` proves the settings it reads nor `store::meta_set`
/// touches (proves) a setting before the new CRL rewrites it.
#[test]
fn an_edited_crl_setting_is_refused() {
    let e = store();
    sqlite(&e, "UPDATE meta SET v = '1' WHERE k = 'crl_omit_expired'");
    refused(&e, &["crl"], "the setting crl_omit_expired");
    verify_reports(&e, "the setting crl_omit_expired");
    sqlite(&e, "UPDATE meta SET v = '0' WHERE k = 'crl_omit_expired'");
    e.ok(&["crl"]);
}

/// bob's row and the revoked-set values copied back from an older copy of the database (from
/// before bob was revoked): every record MAC still checks, so format 1 let `renew bob` issue a
/// fresh certificate to a revoked user and `export bob` hand out his certificate. Now bob's
/// record is proven against the state: both refused, exit 2, nothing changed; the CRL (openssl)
/// still lists bob.
///
/// Fails when: `Store::by_name` does not prove the records it returns.
#[test]
fn a_replayed_row_cannot_be_renewed_or_exported() {
    let e = store();
    let older = e.path("older.db");
    std::fs::copy(e.pki.join("vpnca.db"), &older).expect("copy");
    let bob = norm_serial(str_field(&e.json(&["show", "bob"]), "serial"));
    e.ok(&["revoke", "bob"]);
    sqlite(
        &e,
        &format!(
            "ATTACH '{}' AS o; BEGIN; \
             UPDATE certs SET state = (SELECT state FROM o.certs c WHERE c.serial = certs.serial), \
               revoked_at = NULL, reason = NULL, \
               mac = (SELECT mac FROM o.certs c WHERE c.serial = certs.serial) \
             WHERE name = 'bob'; \
             DELETE FROM meta WHERE k IN ('revocation_digest', 'revoked_count', 'revocation_mac'); \
             INSERT INTO meta SELECT k, v FROM o.meta WHERE k IN ('revocation_digest', 'revoked_count', 'revocation_mac'); \
             COMMIT;",
            path_str(&older)
        ),
    );
    assert_eq!(
        sqlite_query(&e, "SELECT state FROM certs WHERE name = 'bob'"),
        "valid"
    );
    // The readers without the passphrase too: the head is signed by the state-signing key.
    refused(&e, &["show", "bob"], "the record of certificate");
    refused(&e, &["renew", "bob"], "the record of certificate");
    refused(
        &e,
        &["export", "bob", "--out", "out"],
        "the record of certificate",
    );
    refused(&e, &["crl"], "outside vpnca");
    verify_reports(&e, "the record of certificate");
    let (_, revoked) = crl_by_openssl(&e);
    assert!(
        revoked.contains_key(&bob),
        "bob {bob} left the CRL: {revoked:?}"
    );
}

/// A record deleted from the file (a certificate the VPN trusts that nobody could then
/// revoke, or whose name could be given to someone else): every command that reads that name
/// refuses it — `revoke alice`, `client alice` — and `verify` names the name's list.
///
/// Fails when: `Store::by_name` / `Store::live` do not prove the name's list (the deletion is
/// then invisible: `client alice` issues a second alice).
#[test]
fn a_deleted_record_is_refused_where_its_name_is_read() {
    let e = store();
    sqlite(&e, "DELETE FROM certs WHERE name = 'alice'");
    refused(
        &e,
        &["revoke", "alice"],
        "the list of certificates named alice",
    );
    refused(
        &e,
        &["client", "alice"],
        "the list of certificates named alice",
    );
    verify_reports(&e, "the list of certificates named alice");
    e.ok(&["client", "carol"]);
}

/// The tree itself, and the head, are untrusted too: a node rewritten, or the state head put
/// back from an older copy (whose tree would then match its old rows), is refused by the next
/// write (exit 2, nothing changed) and reported by `verify`.
///
/// Fails when: `state::trusted_head` does not check the head's MAC against the audit head, or
/// `smt::prove` does not check the nodes it reads against the root.
#[test]
fn an_edited_tree_or_an_old_head_is_refused() {
    let e = store();
    let db = e.pki.join("vpnca.db");
    let good = std::fs::read(&db).expect("db");
    sqlite(
        &e,
        "UPDATE smt_nodes SET v = randomblob(length(v)) WHERE k = (SELECT MIN(k) FROM smt_nodes)",
    );
    refused(&e, &["client", "carol"], "a stored tree node is malformed");
    verify_reports(&e, "the state tree holds nodes that are not the tree");

    std::fs::write(&db, &good).expect("restore");
    let older = e.path("older.db");
    std::fs::copy(&db, &older).expect("copy");
    e.ok(&["revoke", "bob"]);
    sqlite(
        &e,
        &format!(
            "ATTACH '{}' AS o; BEGIN; DELETE FROM smt_nodes; INSERT INTO smt_nodes SELECT * FROM o.smt_nodes; \
             UPDATE meta SET v = (SELECT v FROM o.meta WHERE k = 'state_head') WHERE k = 'state_head'; COMMIT;",
            path_str(&older)
        ),
    );
    refused(&e, &["client", "carol"], "the state head does not belong");
    verify_reports(&e, "the state head does not belong");
    // The old root and MAC under the current sequence number: only the MAC can tell.
    let seq = sqlite_query(&e, "SELECT seq FROM audit ORDER BY seq DESC LIMIT 1");
    let old_head = sqlite_query(&e, "SELECT v FROM meta WHERE k = 'state_head'");
    let (_, root_mac) = old_head.split_once(':').expect("SEQ:ROOT:MAC");
    sqlite(
        &e,
        &format!("UPDATE meta SET v = '{seq}:{root_mac}' WHERE k = 'state_head'"),
    );
    refused(&e, &["client", "carol"], "the state head does not belong");
}

/// A format-1 store (tests/data/legacy-names, made by vpnca before format 2) is upgraded by its
/// first write (here `verify`), in that write's transaction, with an `upgrade` audit entry — a
/// command refused with exit 2 leaves it exactly as it was, format 1; it then works as format 2
/// (a revocation reaches the CRL that openssl reads). The format-1 file put back afterwards,
/// beside the checkpoint written after the upgrade, is refused as an older copy (no
/// downgrade).
///
/// Fails when: `checkpoint::problem` ignores the checkpoint's `format` line; and when the
/// upgrade commits in its own transaction at unlock (as it did: the refused `client alice`
/// upgraded the store).
#[test]
fn a_format_1_store_upgrades_once_and_cannot_come_back() {
    let e = Env::new();
    copy_dir(&fixture("legacy-names/pki"), &e.pki);
    let v1 = std::fs::read(e.pki.join("vpnca.db")).expect("db");
    assert_eq!(
        sqlite_query(&e, "SELECT v FROM meta WHERE k = 'format'"),
        "1"
    );
    // A refused command (alice has a valid certificate) changes nothing, the format included.
    refused(&e, &["client", "alice"], "alice");
    e.ok(&["verify"]);
    assert_eq!(
        sqlite_query(&e, "SELECT v FROM meta WHERE k = 'format'"),
        "2"
    );
    let log = e.json_lines(&["log"]);
    assert_eq!(
        log.iter()
            .filter(|l| str_field(l, "action") == "upgrade")
            .count(),
        1,
        "{log:?}"
    );
    let alice = norm_serial(str_field(&e.json(&["show", "alice"]), "serial"));
    e.ok(&["revoke", "alice"]);
    let (_, revoked) = crl_by_openssl(&e);
    assert!(revoked.contains_key(&alice), "{revoked:?}");
    e.ok(&["verify"]);

    std::fs::write(e.pki.join("vpnca.db"), &v1).expect("put the format-1 file back");
    refused(&e, &["client", "carol"], "store format 1");
    refused(&e, &["revoke", "bob"], "store format 1");
}

/// A tampered format-1 store is not upgraded (building the state from edited tables would
/// vouch for them): it stays format 1, where its checks refuse what they refuse, and `verify`
/// names the edit.
#[test]
fn a_tampered_format_1_store_is_not_upgraded() {
    let e = Env::new();
    copy_dir(&fixture("legacy-names/pki"), &e.pki);
    sqlite(
        &e,
        "UPDATE certs SET not_after = not_after + 86400 WHERE name = 'alice'",
    );
    let o = e.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert_eq!(
        sqlite_query(&e, "SELECT v FROM meta WHERE k = 'format'"),
        "1"
    );
}

/// The state head as an outside anchor: `verify` prints it (and `--json` carries it);
/// `verify --head SEQ:ROOT` passes on that store and later ones (an older anchor is a warning:
/// only the newest root is kept), and finds the **whole folder** put back from before the anchor
/// — database and checkpoint together, which no local witness can catch — an older copy
/// (exit 1). A malformed anchor is exit 2.
///
/// Fails when: `Store::check_anchor` does not compare the anchor's sequence number with the
/// store's head (the old folder then passes).
#[test]
fn verify_head_checks_against_an_anchor_noted_elsewhere() {
    let e = store();
    let old_folder = e.path("old-folder");
    copy_dir(&e.pki, &old_folder);
    e.ok(&["revoke", "bob"]);
    let rep = e.json(&["verify"]);
    let anchor = str_field(&rep, "state_head").to_string();
    assert_eq!(rep["format"], 2);
    assert!(e.ok(&["verify"]).contains(&format!("state head {anchor}")));
    e.ok(&["verify", "--head", &anchor]);
    e.ok(&["client", "carol"]);
    let o = e.run(&["verify", "--head", &anchor]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert!(
        s(&o.stdout).contains("WARNING: the head you noted"),
        "{}",
        s(&o.stdout)
    );

    std::fs::remove_dir_all(&e.pki).expect("rm");
    copy_dir(&old_folder, &e.pki);
    let o = e.run(&["verify", "--head", &anchor]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert!(
        s(&o.stdout).contains("PROBLEM: the database is an older copy: the head you noted is"),
        "{}",
        s(&o.stdout)
    );
    e.ok(&["verify"]);
    let err = e.fails(&["verify", "--head", "12:xyz"], 2);
    assert!(err.contains("is not a state head SEQ:ROOT"), "{err}");
}

/// `vpnca ARGS` without the passphrase (a read-only auditor, a cron job).
fn locked(e: &Env, args: &[&str]) -> std::process::Output {
    e.cmd(args)
        .env_remove("VPNCA_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run vpnca")
}

/// Readers without the passphrase (`list`, `show`, `status` and the auditor's
/// `verify --ca-cert`) read what the tables hold, so an edit of the file fooled them. Each state
/// head is now also signed by the store's state-signing key (Ed25519, derived from the data
/// key), which the CA certified once: `openssl verify` accepts that certificate against
/// `ca.crt` (CN `vpnca state-signing key`, CA:FALSE, digitalSignature, no extendedKeyUsage).
/// Judged by exit codes and messages, each attack applied with file edits only:
/// - bob un-revoked by SQL: `show bob`, `list` and `status` refuse (exit 2); `verify
///   --ca-cert` names bob's record (exit 1);
/// - the head's signature replaced: refused as not signed by the state-signing key;
/// - another store (another CA) put in its place: `verify --ca-cert` with the auditor's own copy
///   of the CA certificate says the CA is not the one given (exit 1);
/// - the state-signing key's certificate deleted (to make the readers fall back to reading
///   unverified): `status` says so (exit 1) and the next write refuses (exit 2), since the
///   state records the certificate.
///
/// Fails when: `state::public_head` does not verify the signature (the forged signature
/// passes), and when `Store::status` does not check the whole state (status says all is well
/// with bob un-revoked).
#[test]
fn readers_without_the_passphrase_check_the_signed_head() {
    let e = store();
    e.ok(&["revoke", "bob"]);
    std::fs::copy(e.pki.join("ca.crt"), e.path("trusted-ca.crt")).expect("copy ca.crt");
    let der = sqlite_query(&e, "SELECT v FROM meta WHERE k = 'state_key_cert'");
    assert_eq!(der.len() % 2, 0, "state_key_cert: {der}");
    let bytes: Vec<u8> = (0..der.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&der[i..i + 2], 16).expect("hex"))
        .collect();
    std::fs::write(e.path("state-key.der"), bytes).expect("write");
    openssl_ok(
        &[
            "x509",
            "-inform",
            "der",
            "-in",
            "state-key.der",
            "-out",
            "state-key.pem",
        ],
        e.dir.path(),
    );
    let v = openssl_ok(
        &["verify", "-CAfile", "trusted-ca.crt", "state-key.pem"],
        e.dir.path(),
    );
    assert_eq!(v.trim(), "state-key.pem: OK");
    let text = openssl_ok(
        &[
            "x509",
            "-in",
            "state-key.pem",
            "-noout",
            "-subject",
            "-text",
        ],
        e.dir.path(),
    );
    assert!(
        text.contains("subject=CN = vpnca state-signing key")
            && text.contains("ED25519")
            && text.contains("CA:FALSE")
            && text.contains("Digital Signature")
            && !text.contains("Extended Key Usage"),
        "{text}"
    );

    let o = locked(&e, &["verify", "--ca-cert", "trusted-ca.crt"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));
    assert!(
        s(&o.stdout).contains("OK: the store's state is intact"),
        "{}",
        s(&o.stdout)
    );
    let o = locked(&e, &["status"]);
    assert!(
        s(&o.stdout).contains("state: checked against the signed head"),
        "{}",
        s(&o.stdout)
    );

    // bob un-revoked in the file.
    let saved = std::fs::read(e.pki.join("vpnca.db")).expect("db");
    sqlite(
        &e,
        "UPDATE certs SET state = 'valid', revoked_at = NULL, reason = NULL WHERE name = 'bob'",
    );
    for args in [&["show", "bob"][..], &["list"], &["status"]] {
        let o = locked(&e, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", s(&o.stdout));
        assert!(
            s(&o.stderr).contains("the record of certificate") && s(&o.stderr).contains("(bob)"),
            "{args:?}: {}",
            s(&o.stderr)
        );
    }
    let o = locked(&e, &["verify", "--ca-cert", "trusted-ca.crt"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert!(
        s(&o.stdout).contains("PROBLEM: the record of certificate"),
        "{}",
        s(&o.stdout)
    );
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");

    // A forged signature of the head.
    sqlite(
        &e,
        &format!(
            "UPDATE meta SET v = '{}' WHERE k = 'state_sig'",
            "ab".repeat(64)
        ),
    );
    for args in [&["status"][..], &["show", "alice"]] {
        let o = locked(&e, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", s(&o.stdout));
        assert!(
            s(&o.stderr).contains("is not signed by the store's state-signing key"),
            "{args:?}: {}",
            s(&o.stderr)
        );
    }
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");

    // Another store in its place (its database and checkpoint): intact in itself, but not
    // under the auditor's CA. (Its database alone, beside this store's checkpoint, is already
    // refused as another history.)
    let other = Env::with_ca();
    let checkpoint = std::fs::read(e.pki.join("vpnca.checkpoint")).expect("checkpoint");
    std::fs::copy(other.pki.join("vpnca.db"), e.pki.join("vpnca.db")).expect("swap");
    let o = locked(&e, &["verify", "--ca-cert", "trusted-ca.crt"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    std::fs::copy(
        other.pki.join("vpnca.checkpoint"),
        e.pki.join("vpnca.checkpoint"),
    )
    .expect("swap");
    let o = locked(&e, &["verify", "--ca-cert", "trusted-ca.crt"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert!(
        s(&o.stdout).contains("is not the CA certificate given"),
        "{}",
        s(&o.stdout)
    );
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");
    std::fs::write(e.pki.join("vpnca.checkpoint"), &checkpoint).expect("restore");

    // The state-signing key's certificate deleted: the readers say they are unverified, and
    // the next write refuses.
    sqlite(
        &e,
        "DELETE FROM meta WHERE k IN ('state_key_cert', 'state_sig')",
    );
    let o = locked(&e, &["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert!(
        s(&o.stdout).contains("read from the database unverified"),
        "{}",
        s(&o.stdout)
    );
    let o = locked(&e, &["list"]);
    assert!(
        s(&o.stderr).contains("read from the database unverified"),
        "{}",
        s(&o.stderr)
    );
    refused(&e, &["crl"], "the state-signing key's certificate");
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");
    e.ok(&["verify"]);
}

/// Four ways found by an attack review of the readers without the passphrase and the upgrade
/// (session 8), each now refused or said:
/// 1. any Ed25519 certificate the CA issued (a user's) put in as the state-signing key's: it
///    could sign a forged head. Only the exact certificate `certify_state_key` makes is taken
///    (its name is reserved: no certificate vpnca issues may carry it);
/// 2. the state-key certificate deleted and the CA row renamed, so that `list` did not warn
///    and `show` never did: both now say they read unverified;
/// 3. an older `vpnca.db` put back beside the newer checkpoint: the readers compare the
///    database with the public checkpoint, as every write does (exit 2, "older copy");
/// 4. a format-1 store given an adopted profile by SQL: it was used to issue and then vouched
///    for by the upgrade. A format-1 store holding a key only format 2 writes is refused, not
///    upgraded, and `verify` names the key.
///
/// Fails when: `state::is_state_key_shape` accepts any certificate (1: status says all is
/// well), `Store::reads_unverified` is not asked by `show` (2), `Store::public_head` skips the
/// checkpoint (3: status exit 0 on the older copy), and `v2_only_meta_keys` is left out of the
/// upgrade's checks (4: carol is issued and the store upgraded).
#[test]
fn the_attack_review_findings_are_refused() {
    // 1.
    let e = store();
    e.ok(&["client", "mallory", "--algo", "ed25519"]);
    let err = e.fails(
        &["client", "vpnca state-signing key", "--algo", "ed25519"],
        2,
    );
    assert!(
        err.contains("is reserved for the store's state-signing key"),
        "{err}"
    );
    let mallory = sqlite_query(&e, "SELECT hex(cert_der) FROM certs WHERE name = 'mallory'");
    let saved = std::fs::read(e.pki.join("vpnca.db")).expect("db");
    sqlite(
        &e,
        &format!("UPDATE meta SET v = lower('{mallory}') WHERE k = 'state_key_cert'"),
    );
    let o = locked(&e, &["status"]);
    assert_eq!(o.status.code(), Some(2), "{}", s(&o.stdout));
    assert!(
        s(&o.stderr)
            .contains("is signed by a certificate that is not a state-signing key certificate"),
        "{}",
        s(&o.stderr)
    );
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");

    // 2.
    sqlite(
        &e,
        "DELETE FROM meta WHERE k IN ('state_key_cert', 'state_sig'); \
         UPDATE certs SET kind = 'server' WHERE kind = 'ca'",
    );
    for args in [&["show", "bob"][..], &["list"], &["template", "list"]] {
        let o = locked(&e, args);
        assert!(
            s(&o.stderr).contains("read from the database unverified"),
            "{args:?}: {}",
            s(&o.stderr)
        );
    }
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");

    // 3.
    e.ok(&["revoke", "bob"]);
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("the older copy");
    for args in [&["status"][..], &["show", "bob"], &["list"]] {
        let o = locked(&e, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", s(&o.stdout));
        assert!(
            s(&o.stderr).contains("older copy"),
            "{args:?}: {}",
            s(&o.stderr)
        );
    }

    // 4.
    let v1 = Env::new();
    copy_dir(&fixture("legacy-names/pki"), &v1.pki);
    sqlite(
        &v1,
        "INSERT INTO meta (k, v) VALUES ('template.client', 'description = \"x\"\nca = false\ndays = 36500\nkey_usage = [\"digitalSignature\"]\nextended_key_usage = [\"clientAuth\"]\n[san]\ndns_from_name = false\nallow = [\"email\"]\n')",
    );
    refused(&v1, &["client", "carol"], "template.client");
    assert_eq!(
        sqlite_query(&v1, "SELECT v FROM meta WHERE k = 'format'"),
        "1"
    );
    verify_reports(&v1, "template.client");
    assert_eq!(
        sqlite_query(&v1, "SELECT v FROM meta WHERE k = 'format'"),
        "1"
    );
}

/// The look-alike index (one item of the state per look-alike key, listing the spellings
/// recorded under it) is proven like every value a decision reads: its row for alice's key
/// deleted, emptied, or the setting that says the store has an index deleted — each of which
/// would otherwise let `aIice` (capital i) be issued beside `alice` — makes `client aIice`
/// refuse with exit 2 and change nothing, and `verify` name the edit. Undone, `aIice` is
/// refused as a look-alike, and other names are issued.
///
/// Fails when: `Store::alike_spellings` reads the row without proving it (seen: with the row
/// emptied, aIice was issued).
#[test]
fn an_edited_look_alike_index_is_refused() {
    let e = store();
    let key = format!("alike.{}", vpnca::name::look_alike_key("alice"));
    assert_eq!(
        sqlite_query(&e, &format!("SELECT v FROM meta WHERE k = '{key}'")),
        r#"["alice"]"#
    );
    let saved = std::fs::read(e.pki.join("vpnca.db")).expect("db");
    for (edit, what) in [
        (
            format!("DELETE FROM meta WHERE k = '{key}'"),
            "the look-alike index entry alice",
        ),
        (
            format!("UPDATE meta SET v = '[]' WHERE k = '{key}'"),
            "the look-alike index entry alice",
        ),
        (
            "DELETE FROM meta WHERE k = 'alike_index'".to_string(),
            "the setting alike_index",
        ),
    ] {
        sqlite(&e, &edit);
        refused(&e, &["client", "aIice"], what);
        verify_reports(&e, what);
        assert!(
            !sqlite_query(&e, "SELECT name FROM certs")
                .lines()
                .any(|n| n == "aIice"),
            "{edit}"
        );
        std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");
    }
    refused(&e, &["client", "aIice"], "it looks like alice");
    e.ok(&["client", "carol"]);
    e.ok(&["verify"]);
}

/// A store of format 2 made before the look-alike index (tests/data/store-v2-before-alike, by
/// vpnca of 2026-12-03: alice and bob valid, carol revoked) gets the index in its first write,
/// in that write's transaction: a refused command leaves it without (byte for byte), the next
/// write builds one entry per name — revoked ones too — and writes one `upgrade` audit entry;
/// look-alikes are refused before and after, and the database of before, put back, is an
/// older copy (exit 2).
///
/// Fails when: `alike::migrate` is not called by `Store::write` (seen: no index rows after
/// `client dave`).
#[test]
fn a_format_2_store_gets_the_look_alike_index_in_its_first_write() {
    let e = Env::new();
    copy_dir(&fixture("store-v2-before-alike/pki"), &e.pki);
    let rows = |e: &Env| {
        sqlite_query(
            e,
            "SELECT k || '=' || v FROM meta WHERE k LIKE 'alike%' ORDER BY k",
        )
    };
    assert_eq!(rows(&e), "");
    let before = std::fs::read(e.pki.join("vpnca.db")).expect("db");
    refused(&e, &["client", "aIice"], "it looks like alice");
    e.ok(&["client", "dave"]);
    let mut want: Vec<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| format!("alike.{}=[\"{n}\"]", vpnca::name::look_alike_key(n)))
        .collect();
    want.push("alike_index=1".into());
    want.sort();
    assert_eq!(rows(&e), want.join("\n"));
    let log = e.json_lines(&["log"]);
    assert_eq!(
        log.iter()
            .filter(|l| str_field(l, "action") == "upgrade")
            .count(),
        1,
        "{log:?}"
    );
    refused(&e, &["client", "aIice"], "it looks like alice");
    refused(&e, &["client", "B0B"], "it looks like bob");
    // carol is revoked: a look-alike of hers is free, and both spellings are then listed.
    e.ok(&["client", "Carol"]);
    assert_eq!(
        sqlite_query(
            &e,
            &format!(
                "SELECT v FROM meta WHERE k = 'alike.{}'",
                vpnca::name::look_alike_key("carol")
            )
        ),
        r#"["Carol","carol"]"#
    );
    e.ok(&["verify"]);
    std::fs::write(e.pki.join("vpnca.db"), &before).expect("put the old file back");
    refused(&e, &["client", "erin"], "older copy");
}

/// `Store::status` through the library on an unlocked store checks the whole state against the
/// MAC'd head, as the CLI's locked `status` does against the signed one: an SQL edit that
/// un-revokes alice is refused (Tampered) instead of being counted as a valid certificate.
///
/// Fails when (seen with a planted fault): the unlocked branch of `Store::status` reads the head
/// only (status came back Ok, counting alice as valid).
#[test]
fn library_status_on_an_unlocked_store_checks_the_whole_state() {
    let e = store();
    e.ok(&["revoke", "alice"]);
    let unlocked = || {
        let mut store = vpnca::Store::open(&e.pki).expect("open the store");
        store
            .unlock(&vpnca::Passphrase::new(PASS.to_string()))
            .expect("unlock");
        store
    };
    let rep = unlocked().status(30).expect("status of an intact store");
    assert_eq!(rep.counts.get("revoked"), Some(&1), "{:?}", rep.counts);
    sqlite(
        &e,
        "UPDATE certs SET state = 'valid', revoked_at = NULL, reason = NULL WHERE name = 'alice'",
    );
    match unlocked().status(30) {
        Err(vpnca::Error::Tampered { what }) => assert!(what.contains("(alice)"), "{what}"),
        other => panic!("status of an edited store: {other:?}"),
    }
    // The CLI's locked `status` refuses it too.
    let err = e.fails(&["status"], 2);
    assert!(err.contains("(alice)") && err.contains("edited"), "{err}");
}

/// The attacker's edits that pass a format-2 store off as format 1 (no authenticated state):
/// the tree dropped, the format-2 keys of `meta` deleted, `format` set to 1 in the database and
/// the header, the checkpoint's `format`/`state-head` lines removed — plus a planted CRL policy
/// (`crl_days = 1`), which format 1 cannot see and an upgrade would vouch for.
fn downgrade(e: &Env) {
    sqlite(
        e,
        "DROP TABLE smt_nodes;
         DELETE FROM meta WHERE k IN ('state_head', 'state_sig', 'state_key_cert', 'audit_hash',
             'aws_lists', 'crl_deferred', 'alike_index') OR k LIKE 'alike.%' OR k LIKE 'template.%';
         UPDATE meta SET v = replace(v, '\"format\":2', '\"format\":1') WHERE k = 'header';
         UPDATE meta SET v = '1' WHERE k = 'format';
         INSERT OR REPLACE INTO meta (k, v) VALUES ('crl_days', '1');",
    );
    let cp = e.path("pki/vpnca.checkpoint");
    let text = std::fs::read_to_string(&cp).expect("checkpoint");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("format ") && !l.starts_with("state-head "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&cp, kept).expect("write the checkpoint");
}

/// A format-2 store downgraded to format 1 by file edits is refused by every command that
/// unlocks it (exit 2, nothing changed), `verify` included: the header's wrapped key is bound
/// to format 2, so the relabelled store does not unlock as format 1. Before, the next write
/// "upgraded" it again, vouching for the planted `crl_days = 1` (found by the red-team review
/// of 2026-12-04).
///
/// Fails when (seen with a planted fault): `Header::unwrap` accepts a header bound to format 2
/// on a format-1 database (`client carol` exited 0 and the next CRL was valid for one day).
#[test]
fn a_store_downgraded_to_format_1_is_refused() {
    let e = store();
    e.ok(&["revoke", "alice"]);
    downgrade(&e);
    for args in [&["client", "carol"][..], &["crl"], &["verify"]] {
        refused(&e, args, "was written for a store of format 2");
    }
}

/// A store made before the header binding (2026-12-04) unlocks with its old header; the
/// downgrade is then caught by its audit log (the `state-key` entry only format 2 writes), and
/// its first write binds the header, after which the header catches it.
///
/// Fails when (seen with planted faults): `Store::refuse_downgraded` not called (the fixture's
/// downgraded copy was upgraded again by `client carol`, exit 0); the re-wrap in `Store::write`
/// skipped (the second downgrade reached the audit-log check instead of the header's).
#[test]
fn a_store_from_before_the_header_binding_is_bound_by_its_first_write() {
    let e = Env::new();
    copy_dir(&fixture("store-v2-before-audit-hash/pki"), &e.pki);
    downgrade(&e);
    refused(
        &e,
        &["client", "carol"],
        "its audit log records `state-key`",
    );
    verify_reports(&e, "its audit log records `state-key`");

    let e = Env::new();
    copy_dir(&fixture("store-v2-before-audit-hash/pki"), &e.pki);
    e.ok(&["client", "carol"]);
    let o = e.run(&["verify", "--json"]);
    assert_verify_clean("verify after the binding write", &o);
    downgrade(&e);
    refused(
        &e,
        &["client", "dave"],
        "was written for a store of format 2",
    );
}
