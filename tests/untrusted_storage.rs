//! Issue 16: the storage is untrusted. Each test plays someone who can write the store's files
//! but does not know the passphrase (here: the `sqlite3` CLI on `vpnca.db`), and judges vpnca by
//! independent evidence: the CRL it publishes read by `openssl crl`, or a refusal with exit 2
//! that changed nothing.
//!
//! This file grows with the issue; today it covers SQL planted in the database file.
mod common;
use common::*;

use std::collections::BTreeSet;
use std::process::Command;

/// A store with a CA, alice and bob, and a first CRL.
fn store() -> Env {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["crl"]);
    e
}

/// Every command refuses a database with a planted schema object, naming it, with exit 2 and
/// the store unchanged: the read-only ones too (`list`, `status`, `show`), `verify`, and the
/// writing ones (`revoke`, `crl`, `client`).
fn assert_refused_everywhere(e: &Env, what: &str) {
    let before = e.snapshot();
    for args in [
        &["revoke", "bob"][..],
        &["crl"][..],
        &["client", "carol"][..],
        &["list"][..],
        &["status"][..],
        &["show", "bob"][..],
        &["verify"][..],
    ] {
        let err = e.fails(args, 2);
        assert!(
            err.contains("refusing the store database") && err.contains(what),
            "{args:?}: {err}"
        );
    }
    assert!(
        e.snapshot() == before,
        "a refused command changed the store"
    );
}

/// A trigger on `certs` that puts a revoked row back to valid: `vpnca revoke bob` printed
/// "Revoked" and the next CRL left bob out. Now every command refuses the database; once the
/// trigger is gone, `revoke bob` works and openssl reads bob's serial in the CRL.
///
/// Fails when: `check_schema` is not called by `Store::open` (revoke then succeeds; the trigger
/// itself stays inert because `configure` disables triggers — see the unit test
/// `planted_triggers_and_views_never_run` in src/store/mod.rs for that layer).
#[test]
fn a_trigger_that_unrevokes_is_refused() {
    let e = store();
    let bob = norm_serial(str_field(&e.json(&["show", "bob"]), "serial"));
    sqlite(
        &e,
        "CREATE TRIGGER keep_bob AFTER UPDATE ON certs WHEN new.name = 'bob' BEGIN \
         UPDATE certs SET state = 'valid', revoked_at = NULL, reason = NULL WHERE id = new.id; END;",
    );
    assert_refused_everywhere(&e, "trigger \"keep_bob\" on \"certs\"");
    sqlite(&e, "DROP TRIGGER keep_bob");
    e.ok(&["revoke", "bob"]);
    let (_, revoked) = crl_by_openssl(&e);
    assert!(
        revoked.contains_key(&bob),
        "bob {bob} is not in the CRL: {revoked:?}"
    );
}

/// A trigger on `crls` that swaps every new CRL for the first, empty one (which `crl.pem` and
/// `push-crl` would then publish) is refused the same way.
///
/// Fails when: `check_schema` accepts triggers on tables other than `certs`.
#[test]
fn a_trigger_that_swaps_crls_is_refused() {
    let e = store();
    sqlite(
        &e,
        "CREATE TRIGGER old_crl AFTER INSERT ON crls BEGIN \
         UPDATE crls SET der = (SELECT der FROM crls ORDER BY number LIMIT 1) WHERE number = new.number; END;",
    );
    assert_refused_everywhere(&e, "trigger \"old_crl\" on \"crls\"");
}

/// A view, an extra index and a changed table definition are refused too: vpnca's schema is
/// exactly what it creates (with or without the AWS tables, which stores made before them lack).
///
/// Fails when: `check_schema` compares table names only.
#[test]
fn views_indexes_and_changed_tables_are_refused() {
    for (plant, what) in [
        (
            "CREATE VIEW everyone AS SELECT name FROM certs",
            "view \"everyone\"",
        ),
        (
            "CREATE INDEX by_state ON certs(state, name)",
            "index \"by_state\"",
        ),
        (
            "ALTER TABLE certs ADD COLUMN note TEXT",
            "a changed definition of table \"certs\"",
        ),
        (
            "DROP TABLE aws_endpoints",
            "an incomplete set of the AWS tables",
        ),
    ] {
        let e = store();
        sqlite(&e, plant);
        assert_refused_everywhere(&e, what);
    }
}

/// A self-signed CA certificate of the attacker's, made by openssl in `dir`: its DER as hex.
fn foreign_ca_hex(dir: &std::path::Path) -> String {
    openssl_req(
        dir,
        EC_P256,
        "Evil CA",
        "evil.key",
        "evil.crt",
        &[
            "-x509",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    openssl_ok(
        &[
            "x509", "-in", "evil.crt", "-outform", "DER", "-out", "evil.der",
        ],
        dir,
    );
    std::fs::read(dir.join("evil.der"))
        .expect("evil.der")
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// A foreign CA certificate added to the `chain` table would go into `ca.crt`, every export,
/// every profile's `<ca>` and the ACM chain: with `remote-cert-tls server` alone, its holder
/// could then impersonate the VPN server to new users. The chain is now proven certificate by
/// certificate from the store's CA; a planted one is refused (exit 2, store unchanged) by
/// every command that hands the chain out or writes, and `verify` reports it. With the chain
/// row gone, the profile's `<ca>` holds exactly the store's CA, as openssl reads it.
///
/// Fails when: `Store::parent_chain` returns the rows unchecked (the export then carries
/// "Evil CA").
#[test]
fn a_planted_chain_certificate_is_refused() {
    let e = store();
    let evil = foreign_ca_hex(e.dir.path());
    sqlite(
        &e,
        &format!("INSERT INTO chain (pos, der) VALUES (1, X'{evil}')"),
    );
    let before = e.snapshot();
    for args in [
        &["export", "alice", "--out", "out"][..],
        &[
            "profile",
            "alice",
            "--remote",
            "vpn.example.com",
            "--out",
            "alice.ovpn",
        ][..],
        &["revoke", "bob"][..],
        &["crl"][..],
        &["client", "carol"][..],
    ] {
        let err = e.fails(args, 2);
        // Format 2 refuses the chain against the authenticated state first; the proof of
        // the chain itself (format 1) stays behind it.
        assert!(
            err.contains("the CA's parent chain in the database is not the one the store's authenticated state records")
                || err.contains("the CA chain stored with the CA has a certificate at position 1 (CN=Evil CA) that did not sign the one before it"),
            "{args:?}: {err}"
        );
    }
    let o = e.run(&["verify"]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "verify passed a planted chain certificate"
    );
    assert!(
        e.snapshot() == before,
        "a refused command changed the store"
    );
    assert!(!e.path("out").exists() && !e.path("alice.ovpn").exists());

    sqlite(&e, "DELETE FROM chain");
    e.ok(&[
        "profile",
        "alice",
        "--remote",
        "vpn.example.com",
        "--out",
        "alice.ovpn",
    ]);
    let ovpn = std::fs::read_to_string(e.path("alice.ovpn")).expect("profile");
    let ca = ovpn
        .split("<ca>")
        .nth(1)
        .and_then(|t| t.split("</ca>").next())
        .expect("<ca> in the profile");
    std::fs::write(e.path("profile-ca.pem"), ca).expect("ca");
    let subjects = openssl_ok(
        &["crl2pkcs7", "-nocrl", "-certfile", "profile-ca.pem"],
        e.dir.path(),
    );
    std::fs::write(e.path("p7.pem"), subjects).expect("p7");
    let listed = openssl_ok(
        &["pkcs7", "-in", "p7.pem", "-print_certs", "-noout"],
        e.dir.path(),
    );
    let subjects: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("subject="))
        .collect();
    assert_eq!(subjects, ["subject=CN = Test VPN CA"], "{listed}");
}

/// The bytes of `pki/crl.pem`.
fn crl_pem(e: &Env) -> Vec<u8> {
    std::fs::read(e.pki.join("crl.pem")).expect("crl.pem")
}

/// The `crls` table is not authenticated, and every old CRL has a valid signature: an old CRL
/// renumbered to the top, or left on top by deleting the newer ones, became "the latest CRL"
/// that `verify` repaired `crl.pem` with and `push-crl` uploaded — without bob, revoked since.
/// Now the CRL is proven against the authenticated state before it is published: `verify`
/// reports it (exit 1) and leaves `crl.pem` alone; `vpnca crl` then lists bob (openssl reads
/// it), or refuses when the CRL the audit log records last is gone — never a CRL without bob.
///
/// Fails when: `Store::prove_crl` checks the signature only (verify then says the store is
/// intact and rewrites crl.pem with the old, empty CRL).
#[test]
fn an_old_crl_on_top_is_not_published() {
    // (the edit, what verify says, the edit undone if it can be: `vpnca crl` refuses the
    // edited store — format 2: the CRLs and the highest number are in the authenticated state —
    // and works again once the edit is undone)
    for (attack, why, undo) in [
        (
            "UPDATE crls SET number = 3 WHERE number = 1",
            "CRL 3: the CRL stored under number 3 is CRL number 1",
            Some("UPDATE crls SET number = 1 WHERE number = 3"),
        ),
        (
            "DELETE FROM crls WHERE number = 2",
            "CRL 1: it does not list bob (serial",
            None,
        ),
    ] {
        let e = store();
        let bob = norm_serial(str_field(&e.json(&["show", "bob"]), "serial"));
        e.ok(&["revoke", "bob"]);
        assert!(crl_by_openssl(&e).1.contains_key(&bob));
        sqlite(&e, attack);
        std::fs::remove_file(e.pki.join("crl.pem")).expect("rm crl.pem");
        let o = e.run(&["verify"]);
        assert_eq!(o.status.code(), Some(1), "{attack}: {}", s(&o.stdout));
        assert!(s(&o.stdout).contains(why), "{attack}: {}", s(&o.stdout));
        assert!(
            !e.pki.join("crl.pem").exists(),
            "{attack}: verify published the old CRL"
        );
        let err = e.fails(&["crl"], 2);
        assert!(
            err.contains("not the one the store's authenticated state records")
                || err.contains("CRL #2"),
            "{attack}: {err}"
        );
        assert!(
            !e.pki.join("crl.pem").exists(),
            "{attack}: a CRL was published"
        );
        if let Some(undo) = undo {
            sqlite(&e, undo);
            e.ok(&["crl"]);
            let (_, listed) = crl_by_openssl(&e);
            assert!(
                listed.contains_key(&bob),
                "{attack}: bob is not in the new CRL"
            );
        }
    }
}

/// A `templates/client.toml` planted in the store folder gave client certificates serverAuth
/// (a user could then pose as the VPN server to other users), CA:TRUE or a 10-year life, and
/// was used silently. Now a profile file is used only once an admin adopts it into the store's
/// authenticated state (`vpnca template adopt`, audited), and a profile's name bounds what it
/// may grant even then: `client` only clientAuth, `server` only serverAuth (both is
/// `server-client`, chosen explicitly), only `root-ca`/`sub-ca` CA:TRUE and always.
/// Each case: refused with exit 2, nothing issued; openssl reads only clientAuth in what the
/// built-in profile issues after.
///
/// Fails when: `Store::pki_profile` uses an unadopted file (seen: carol issued with a 10-year
/// life), when `Profile::check_kind` is not called on adoption (the widened profile is
/// adopted), and when the adopted text is read without its proof (the SQL edit of
/// `template.client` is used).
#[test]
fn a_planted_template_cannot_widen_a_profile() {
    let e = store();
    let client_with = |eku: &str, ca: bool| {
        format!(
            "description = \"x\"\nca = {ca}\ndays = 3650\nkey_usage = [{}]\n\
             extended_key_usage = [{eku}]\n[san]\ndns_from_name = false\nallow = [\"email\"]\n",
            if ca {
                "\"keyCertSign\", \"cRLSign\""
            } else {
                "\"digitalSignature\""
            }
        )
    };
    // A well-formed client profile with a 10-year life, planted: not used, not even valid.
    plant_template(&e, "client", &client_with("\"clientAuth\"", false));
    let before = e.snapshot();
    let err = e.fails(&["client", "carol"], 2);
    assert!(
        err.contains("templates/client.toml: this file is not adopted"),
        "{err}"
    );
    assert!(
        e.snapshot() == before,
        "a planted template changed the store"
    );
    let status = e.run(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(text.contains("client.toml is not adopted"), "{text}");

    // Adopting a widened profile is refused for what it grants.
    for (text, why) in [
        (
            client_with("\"clientAuth\", \"serverAuth\"", false),
            "the client profile may grant only clientAuth, not serverAuth",
        ),
        (
            client_with("\"clientAuth\"", true),
            "the client profile must have ca = false",
        ),
    ] {
        plant_template(&e, "client", &text);
        let before = e.snapshot();
        let err = e.fails(&["template", "adopt", "client"], 2);
        assert!(err.contains(why), "{err}");
        assert!(
            e.snapshot() == before,
            "a refused template changed the store"
        );
    }
    plant_template(
        &e,
        "server",
        "description = \"x\"\nca = false\ndays = 825\nkey_usage = [\"digitalSignature\"]\n\
         extended_key_usage = [\"serverAuth\", \"clientAuth\"]\n[san]\ndns_from_name = true\nallow = [\"dns\"]\n",
    );
    let err = e.fails(&["template", "adopt", "server"], 2);
    assert!(
        err.contains("the server profile may grant only serverAuth, not clientAuth"),
        "{err}"
    );
    std::fs::remove_dir_all(e.pki.join("templates")).expect("rm templates");

    // An adopted profile edited in the database (no passphrase: the proof fails).
    plant_template(
        &e,
        "client",
        &client_with("\"clientAuth\"", false).replace("3650", "90"),
    );
    e.ok(&["template", "adopt", "client"]);
    std::fs::remove_dir_all(e.pki.join("templates")).expect("rm templates");
    sqlite(
        &e,
        "UPDATE meta SET v = replace(v, 'days = 90', 'days = 3650') WHERE k = 'template.client'",
    );
    let before = e.snapshot();
    let err = e.fails(&["client", "carol"], 2);
    assert!(
        err.contains("store integrity check failed") && err.contains("the adopted client profile"),
        "{err}"
    );
    assert!(
        e.snapshot() == before,
        "a tampered adopted profile changed the store"
    );
    sqlite(
        &e,
        "UPDATE meta SET v = replace(v, 'days = 3650', 'days = 90') WHERE k = 'template.client'",
    );
    e.ok(&["template", "reset", "client"]);

    e.ok(&["client", "carol"]);
    e.ok(&["export", "carol", "--out", "out"]);
    let text = openssl_ok(
        &[
            "x509",
            "-in",
            "out/carol.crt",
            "-noout",
            "-ext",
            "extendedKeyUsage,basicConstraints",
        ],
        e.dir.path(),
    );
    assert!(
        text.contains("TLS Web Client Authentication")
            && !text.contains("Server Authentication")
            && !text.contains("CA:TRUE"),
        "{text}"
    );
}

/// Bounded work before the passphrase is checked (issue 17): a store header edited to ask
/// Argon2id for 4 GiB (or 64 MiB × 100 passes) made every unlock run it, then say "wrong
/// passphrase". A header beyond what `init` accepts is now a tampered header, refused before
/// any Argon2 work: the command runs here under a 1.5 GiB address-space limit (`ulimit -v`),
/// which a 4 GiB Argon2 run could not live in, and exits 2 with the reason.
///
/// Fails when: `Header::unwrap` does not check the parameters first (the process then dies
/// allocating, or runs for minutes).
#[test]
fn a_header_asking_for_huge_argon2_work_is_refused_before_it() {
    for (path, value, why) in [
        (
            "$.kdf.m_kib",
            4_194_304,
            "asks Argon2id for 4096 MiB and 1 passes",
        ),
        ("$.kdf.t", 100, "asks Argon2id for 8 MiB and 100 passes"),
    ] {
        let e = store();
        sqlite(
            &e,
            &format!("UPDATE meta SET v = json_set(v, '{path}', {value}) WHERE k = 'header'"),
        );
        let before = e.snapshot();
        let o = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1572864; exec \"$@\"")
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_vpnca"))
            .arg("--pki")
            .arg(&e.pki)
            .arg("verify")
            .env("VPNCA_PASSPHRASE", PASS)
            .output()
            .expect("run vpnca");
        let err = s(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{path}: {err}");
        assert!(
            err.contains(why) && err.contains("the header was edited outside vpnca"),
            "{path}: {err}"
        );
        assert!(e.snapshot() == before, "{path}: the store changed");
    }
}

/// The checkpoint file's audit head, `SEQ:MAC` (what anyone can read there).
fn checkpoint_head(e: &Env) -> (i64, String) {
    let text = std::fs::read_to_string(e.pki.join("vpnca.checkpoint")).expect("checkpoint");
    let head = text
        .lines()
        .find_map(|l| l.strip_prefix("audit-head "))
        .expect("audit-head line");
    let (seq, mac) = head.split_once(':').expect("SEQ:MAC");
    (seq.parse().expect("seq"), mac.to_string())
}

/// Rollback with a forged audit row: an older copy of the database (from before bob was
/// revoked) put back, with audit rows added up to the checkpointed entry, the last one carrying
/// the MAC the checkpoint file shows in clear, and `audit_head` set to match. It passed the
/// checkpoint guard, and `vpnca crl` signed a CRL without bob. Now the guard also checks that
/// the entries from the checkpointed one to the head chain under the store's key: refused,
/// exit 2, nothing changed; `verify` reports it.
///
/// Fails when: `Store::check_checkpoint` does not call `check_audit_tail` (the CRL is then
/// made, and openssl reads it without bob).
#[test]
fn a_rollback_with_a_forged_audit_row_is_refused() {
    let e = store();
    let db = e.pki.join("vpnca.db");
    let older = std::fs::read(&db).expect("db");
    e.ok(&["revoke", "bob"]);
    let (seq, mac) = checkpoint_head(&e);
    std::fs::write(&db, &older).expect("put the older copy back");
    let o = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT MAX(seq) FROM audit")
        .output()
        .expect("sqlite3");
    let old_head: i64 = s(&o.stdout).trim().parse().expect("seq");
    assert!(old_head < seq, "the copy must be older");
    let mut sql = String::from("BEGIN;");
    for n in old_head + 1..=seq {
        let m = if n == seq {
            mac.clone()
        } else {
            "00".repeat(32)
        };
        sql.push_str(&format!(
            "INSERT INTO audit (seq, time, user, action, name, serial, detail, mac) \
             VALUES ({n}, 0, 'x', 'crl', '', '', '{{}}', X'{m}');"
        ));
    }
    sql.push_str(&format!(
        "UPDATE meta SET v = '{seq}:{}' WHERE k = 'audit_head'; COMMIT;",
        mac.to_lowercase()
    ));
    sqlite(&e, &sql);
    let before = e.snapshot();
    for args in [
        &["crl"][..],
        &["client", "carol"][..],
        &["export", "alice", "--out", "x", "--key"][..],
    ] {
        let err = e.fails(args, 2);
        assert!(
            err.contains("audit log: entry") || err.contains("the state head does not belong"),
            "{args:?}: {err}"
        );
    }
    assert!(
        e.snapshot() == before,
        "a refused command changed the store"
    );
    assert_ne!(e.run(&["verify"]).status.code(), Some(0));
}

/// A deleted checkpoint was accepted silently, so an older database put back without it passed.
/// Now a store whose log has more than `init`'s entry refuses to run without its checkpoint
/// (exit 2, nothing changed), while a fresh store killed between `init`'s commit and its first
/// checkpoint still opens.
///
/// Fails when: `checkpoint::problem` returns `None` for a missing file again.
#[test]
fn a_missing_checkpoint_is_refused_once_the_store_has_history() {
    let e = store();
    let db = e.pki.join("vpnca.db");
    let older = std::fs::read(&db).expect("db");
    e.ok(&["revoke", "bob"]);
    std::fs::write(&db, &older).expect("put the older copy back");
    std::fs::remove_file(e.pki.join("vpnca.checkpoint")).expect("rm checkpoint");
    let before = e.snapshot();
    let err = e.fails(&["crl"], 2);
    assert!(err.contains("vpnca.checkpoint is missing"), "{err}");
    assert!(
        e.snapshot() == before,
        "a refused command changed the store"
    );

    let fresh = Env::init();
    std::fs::remove_file(fresh.pki.join("vpnca.checkpoint")).expect("rm checkpoint");
    fresh.ok(&["ca", "--cn", "Fresh CA"]);
    fresh.ok(&["client", "alice"]);
}

/// Imported (easy-rsa) certificates could be deleted from the database undetected, and then
/// never revoked: `verify` checked only certificates whose creation the audit log records, and
/// an import recorded one entry for all. Each imported certificate now has its own MAC'd audit
/// entry, so `verify` names a deleted one (exit 1).
///
/// Fails when: `import_easyrsa` stops writing the per-certificate `import` entries, or
/// `verify` leaves `import` out of the actions it checks.
#[test]
fn a_deleted_imported_certificate_is_reported() {
    let e = Env::init();
    let old = common::oldpki::openssl_pki_with_expired(e.dir.path());
    e.ok(&["import-easyrsa", path_str(&old)]);
    let current = str_field(&e.json(&["show", "current"]), "serial").to_string();
    e.ok(&["verify"]);
    sqlite(&e, "DELETE FROM certs WHERE name = 'current'");
    let o = e.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert!(
        s(&o.stdout).contains(&format!(
            "(import current serial {current}) names a certificate that is no longer in the store"
        )),
        "{}",
        s(&o.stdout)
    );
}

/// Mix-and-match replay: bob's row and the revoked-set checksum copied back from an older copy
/// of the database (from before bob was revoked), the rest of the history kept. Every MAC still
/// checks, so `vpnca crl` signed a CRL without bob. A new CRL must now list everything the last
/// CRL the audit log records listed: refused (exit 2, nothing written), also when the newer CRL
/// rows are deleted as well (the audit log still records CRL #2).
///
/// Fails when: `crl::check_keeps_published` is not called by `generate_in_tx` (the CRL is
/// then signed, and openssl reads it without bob).
#[test]
fn an_unrevocation_by_replayed_rows_is_refused_at_the_next_crl() {
    // (with the newer CRL rows deleted too; and with bob's notAfter set in the past and the
    // omit-expired policy switched on, which must not excuse a missing revocation either)
    for (delete_newer_crls, expire_and_omit) in [(false, false), (true, false), (false, true)] {
        let e = store();
        let older = e.path("older.db");
        std::fs::copy(e.pki.join("vpnca.db"), &older).expect("copy");
        e.ok(&["revoke", "bob"]);
        let mut sql = format!(
            "ATTACH '{}' AS o; BEGIN; \
             UPDATE certs SET state = (SELECT state FROM o.certs c WHERE c.serial = certs.serial), \
               revoked_at = (SELECT revoked_at FROM o.certs c WHERE c.serial = certs.serial), \
               reason = (SELECT reason FROM o.certs c WHERE c.serial = certs.serial), \
               mac = (SELECT mac FROM o.certs c WHERE c.serial = certs.serial) \
             WHERE name = 'bob'; \
             DELETE FROM meta WHERE k IN ('revocation_digest', 'revoked_count', 'revocation_mac'); \
             INSERT INTO meta SELECT k, v FROM o.meta WHERE k IN ('revocation_digest', 'revoked_count', 'revocation_mac');",
            path_str(&older)
        );
        if delete_newer_crls {
            sql.push_str("DELETE FROM crls WHERE number > 1;");
        }
        if expire_and_omit {
            sql.push_str(
                "UPDATE certs SET not_after = 0 WHERE name = 'bob'; \
                 INSERT OR REPLACE INTO meta (k, v) VALUES ('crl_omit_expired', '1');",
            );
        }
        sql.push_str("COMMIT;");
        sqlite(&e, &sql);
        assert_eq!(
            sqlite_query(&e, "SELECT state FROM certs WHERE name = 'bob'"),
            "valid",
            "the replay must un-revoke bob in the database"
        );
        // Even without the passphrase, `show` refuses the replayed row.
        assert!(
            e.fails(&["show", "bob"], 2)
                .contains("the record of certificate"),
            "show bob"
        );
        let crl_before = crl_pem(&e);
        let before = e.snapshot();
        // Format 2 refuses the replayed revoked set against the authenticated state first;
        // the rule that every serial of the last CRL stays revoked (format 1) stays behind it.
        let err = e.fails(&["crl"], 2);
        assert!(
            err.contains("a revocation was undone or a CRL removed outside vpnca")
                || err.contains("not the one the store's authenticated state records"),
            "{err}"
        );
        assert!(e.snapshot() == before, "a refused crl changed the store");
        assert_eq!(crl_pem(&e), crl_before);
        let err = e.fails(&["revoke", "alice"], 2);
        assert!(
            err.contains("a revocation was undone")
                || err.contains("not the one the store's authenticated state records"),
            "{err}"
        );
    }
}

/// A template planted in the store folder is outside input: a 2 GiB (sparse) one, or a
/// symbolic link to /dev/zero, was read whole into memory. It is read bounded (64 KiB) and
/// refused, exit 2, nothing issued.
///
/// Fails when: `Profile::load` reads the override with `read_to_string` again (the 2 GiB file
/// is then read, and refused only as bad TOML after).
#[test]
fn a_huge_planted_template_is_refused_unread() {
    let e = store();
    std::fs::create_dir_all(e.pki.join("templates")).expect("mkdir");
    let huge = e.pki.join("templates/client.toml");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(2 << 30))
        .expect("sparse file");
    // (The store without the planted file: the database and the mirrors.)
    let db = || std::fs::read(e.pki.join("vpnca.db")).expect("db");
    let before = (db(), dir_files(&e.pki.join("issued")));
    let err = e.fails(&["client", "carol"], 2);
    assert!(
        err.contains("refusing the template") && err.contains("64 KiB"),
        "{err}"
    );
    std::fs::remove_file(&huge).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &huge).expect("symlink");
    let err = e.fails(&["client", "carol"], 2);
    assert!(err.contains("refusing the template"), "{err}");
    std::fs::remove_file(&huge).expect("rm");
    assert!(
        (db(), dir_files(&e.pki.join("issued"))) == before,
        "the store changed"
    );
}

/// `args` fails with exit 2, its error naming each of `what`, and every file of the store is
/// as it was; the error, for further checks.
fn refused_unchanged(e: &Env, args: &[&str], what: &[&str]) -> String {
    let before = e.snapshot();
    let err = e.fails(args, 2);
    for w in what {
        assert!(err.contains(w), "{args:?}: {err}");
    }
    assert!(
        e.snapshot() == before,
        "{args:?} was refused but changed the store"
    );
    err
}

/// `verify` finds a problem (exit 1) and names `what`.
fn verify_names(e: &Env, what: &str) {
    let o = e.run(&["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stdout));
    assert!(s(&o.stdout).contains(what), "{}", s(&o.stdout));
}

/// Runs tests/data/page_edit.py MODE ARGS on the store's database (an edit of SQLite pages,
/// below SQL: see that file).
fn page_edit(e: &Env, mode: &str, args: &[&str]) {
    let script = format!("{}/tests/data/page_edit.py", env!("CARGO_MANIFEST_DIR"));
    let db = e.path("pki/vpnca.db");
    let o = Command::new("python3")
        .arg(&script)
        .arg(mode)
        .arg(&db)
        .args(args)
        .output()
        .expect("python3");
    assert!(o.status.success(), "page_edit.py {mode}: {}", s(&o.stderr));
}

fn normalized_serial(e: &Env, name: &str) -> String {
    norm_serial(&sqlite_query(
        e,
        &format!("SELECT serial FROM certs NOT INDEXED WHERE name = '{name}'"),
    ))
}

/// An index page edited alone (found by the red-team review of 2026-12-04): `certs_name`
/// says the revoked alice is valid and the valid bob revoked, while the table, every MAC and
/// every proof still say otherwise. SQLite answers lookups by name from the index's copy of
/// `state`, so `show` reported alice valid, `profile alice` was written, `revoke bob` answered
/// "already revoked" and `verify` said the store was intact. Now records are read from the
/// table by row id and the lookup checked again on them: `show` and `profile` see alice
/// revoked, `revoke bob` is not told he is revoked already (SQLite refuses the damaged index
/// at the update), the CRL still lists alice, and `verify` names the damaged index (exit 1).
///
/// Fails when (seen with planted faults): the records read with the WHERE clause on the index
/// alone (`certs_from` as before: `show alice` said `status: valid`); `engine_check` back to
/// `quick_check` (verify: "OK: the store is intact").
#[test]
fn an_index_page_edited_alone_is_not_trusted() {
    let e = store();
    e.ok(&["revoke", "alice"]);
    page_edit(
        &e,
        "index",
        &[
            "certs_name",
            "UPDATE certs SET state = 'valid' WHERE name = 'alice'; \
             UPDATE certs SET state = 'revoked' WHERE name = 'bob';",
        ],
    );
    let show = e.ok(&["show", "alice"]);
    assert!(show.contains("status:      revoked"), "{show}");
    refused_unchanged(
        &e,
        &[
            "profile",
            "alice",
            "--remote",
            "vpn.example.com",
            "--out",
            "alice.ovpn",
        ],
        &["revoked"],
    );
    assert!(!e.path("alice.ovpn").exists());

    // bob is valid in the table: his revocation is not answered "already revoked" (SQLite
    // itself notices the damaged index when the row is updated: exit 2, nothing changed).
    let err = refused_unchanged(&e, &["revoke", "bob"], &["malformed"]);
    assert!(!err.contains("already revoked"), "{err}");
    let (_, entries) = crl_by_openssl(&e);
    let alice = normalized_serial(&e, "alice");
    assert!(
        entries.contains_key(&alice),
        "alice ({alice}) not in {entries:?}"
    );
    verify_names(&e, "the database file is damaged");
}

/// The old spellings of a name are not taken from an index page (2026-12-04): a store made
/// before names were normalized (tests/data/legacy-names: José in NFC and in NFD, both valid),
/// upgraded, then its `certs_name` index edited alone so that the NFD name reads as `Jose`.
/// The old spellings came from a scan of that index, so `revoke José` revoked the NFC
/// certificate only, said so, and the NFD one stayed valid: a user left able to connect.
/// Now they come from the look-alike index's entry, proven against the state, so the NFD
/// spelling is looked up too, and the edited index then fails the proof of its list: `revoke`
/// refuses with exit 2, naming it, and changes nothing; the CRL still lists nobody, and
/// `verify` names the damage.
///
/// Fails when (seen with the planted fault): `Store::spellings` scans the name index again
/// (`revoke José` exits 0, having revoked the NFC certificate only).
#[test]
fn an_index_page_cannot_hide_an_old_spelling_from_revoke() {
    const NFC: &str = "Jos\u{e9}";
    const NFD: &str = "Jose\u{301}";
    let e = Env::new();
    copy_dir(&fixture("legacy-names/pki"), &e.pki);
    e.ok(&["verify"]); // the upgrade to format 2, with the look-alike index
    let serial_of = |name: &str| {
        norm_serial(&sqlite_query(
            &e,
            &format!("SELECT serial FROM certs NOT INDEXED WHERE name = '{name}'"),
        ))
    };
    let both = BTreeSet::from([serial_of(NFC), serial_of(NFD)]);
    page_edit(
        &e,
        "index",
        &[
            "certs_name",
            &format!("UPDATE certs SET name = 'Jose' WHERE name = '{NFD}';"),
        ],
    );
    refused_unchanged(
        &e,
        &["revoke", NFC],
        &["certificates named Jos", "(it is missing)"],
    );
    let (_, entries) = crl_by_openssl(&e);
    assert!(
        entries.keys().all(|s| !both.contains(s)),
        "José in the CRL after a refused revoke: {entries:?}"
    );
    verify_names(&e, "the database file is damaged");
}

/// A second row planted with bob's serial and a foreign certificate, reachable only through
/// the `certs_name` index (red-team review of 2026-12-04): `profile bob` and `export bob`
/// handed out the foreign certificate beside bob's real key, every proof passing on the real
/// row. Now the record used must be the row its serial leads to: both refuse with exit 2,
/// nothing written, and `verify` names the planted row.
///
/// Fails when (seen with a planted fault): `Store::check_one_row_each` not called by
/// `Store::by_name` (the profile was written with the foreign certificate).
#[test]
fn a_planted_second_row_for_a_serial_is_refused() {
    let e = store();
    let dir = e.dir.path();
    openssl_req(
        dir,
        RSA_2048,
        "bob",
        "evil.key",
        "evil.crt",
        &["-x509", "-days", "30"],
    );
    openssl_ok(
        &[
            "x509", "-in", "evil.crt", "-outform", "DER", "-out", "evil.der",
        ],
        dir,
    );
    page_edit(&e, "ghost", &["bob", path_str(&dir.join("evil.der"))]);
    let before = e.snapshot();
    for args in [
        &[
            "profile",
            "bob",
            "--remote",
            "vpn.example.com",
            "--out",
            "bob.ovpn",
        ][..],
        &["export", "bob", "--out", "out"][..],
        &["show", "bob"][..],
    ] {
        let err = e.fails(args, 2);
        assert!(err.contains("more than one row"), "{args:?}: {err}");
    }
    assert!(e.snapshot() == before);
    assert!(!dir.join("bob.ovpn").exists() && !dir.join("out").exists());
    verify_names(&e, "more than one row");
}

/// A profile pins the server certificate its `--remote` names (`verify-x509-name`); deleting
/// the server's record with SQL used to drop the pin silently (red-team review of
/// 2026-12-04), so the client would accept any server certificate of the CA. Profiles now
/// check the whole state first: exit 2, nothing written. With the record in place the pin is
/// there.
///
/// Fails when (seen with a planted fault): `ProfileContext::new` without
/// `Store::require_whole_state` (the profile was written without `verify-x509-name`).
#[test]
fn a_deleted_server_record_does_not_drop_the_profile_pin() {
    let e = store();
    e.ok(&["server", "vpn.example.com"]);
    let args = [
        "profile",
        "bob",
        "--remote",
        "vpn.example.com",
        "--out",
        "bob.ovpn",
    ];
    e.ok(&args);
    let ovpn = std::fs::read_to_string(e.path("bob.ovpn")).expect("profile");
    assert!(ovpn.contains("verify-x509-name"), "{ovpn}");
    std::fs::remove_file(e.path("bob.ovpn")).expect("rm");

    sqlite(&e, "DELETE FROM certs WHERE kind = 'server'");
    refused_unchanged(&e, &args, &["(it is missing)"]);
    assert!(!e.path("bob.ovpn").exists());
}

/// The public copies are written after the commit, so their paths are checked before it
/// (red-team review of 2026-12-04): `crl.pem` replaced by a directory made `revoke bob` commit
/// and then fail with exit 2; `issued` replaced by a symbolic link sent vpnca's writes and
/// deletions into the folder it pointed to. Both now refuse before anything changes (exit 2,
/// naming the path), and nothing is written through the link.
///
/// Fails when (seen with a planted fault): `Store::check_mirror_paths` not called before the
/// commit (`revoke bob` exited 2 with bob revoked in the database; `client dave` wrote
/// `victim/dave.crt`).
#[test]
fn a_directory_or_link_where_a_public_copy_goes_is_refused_before_the_commit() {
    let e = store();
    let crl = e.path("pki/crl.pem");
    std::fs::remove_file(&crl).expect("rm crl.pem");
    std::fs::create_dir(&crl).expect("mkdir crl.pem");
    refused_unchanged(&e, &["revoke", "bob"], &["crl.pem", "a directory"]);
    let state = sqlite_query(&e, "SELECT state FROM certs WHERE name = 'bob'");
    assert_eq!(state.trim(), "valid");
    std::fs::remove_dir(&crl).expect("rmdir crl.pem");

    let victim = e.path("victim");
    std::fs::create_dir(&victim).expect("mkdir victim");
    let issued = e.path("pki/issued");
    std::fs::rename(&issued, e.path("issued-real")).expect("mv issued");
    std::os::unix::fs::symlink(&victim, &issued).expect("symlink");
    let err = e.fails(&["client", "dave"], 2);
    assert!(
        err.contains("issued") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&victim).expect("victim").count(), 0);
    let count = sqlite_query(&e, "SELECT COUNT(*) FROM certs WHERE name = 'dave'");
    assert_eq!(count.trim(), "0");
}
