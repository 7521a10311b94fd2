//! Issue 17: terminal output. Someone who can write the store (here: the `sqlite3` CLI on
//! `vpnca.db`) plants terminal control sequences in stored fields: a certificate's name, the CA's
//! name, an audit entry's `$USER`, name and detail. Names are MAC'd, but the readers `list`,
//! `show`, `status` and `log` run locked and cannot check MACs, so they print planted rows; none
//! may pass a control sequence to the terminal (docs/security.md#terminal-output). Only row
//! values are changed: `Store::open` refuses a changed schema.
mod common;
use common::*;

use std::process::{Output, Stdio};

/// Sets the window title, then hides what follows behind a right-to-left override and a C1
/// CSI (U+009B, which a UTF-8 terminal may take as ESC [).
const ALICE: &str = "al\u{1b}]0;owned\u{7}ice\u{202e}gpj.exe\u{9b}2J";
/// How every text output shows [`ALICE`].
const ALICE_SHOWN: &str = r"al\x1b]0;owned\x07ice\u202egpj.exe\u009b2J";
/// The CA's name: clears the screen.
const CA: &str = "Test\u{1b}[2JCA";
const CA_SHOWN: &str = r"Test\x1b[2JCA";
/// An audit entry's `$USER`: hidden text, then right-to-left.
const USER: &str = "eve\u{1b}[8m\u{202e}";
const USER_SHOWN: &str = r"eve\x1b[8m\u202e";
/// An audit entry's detail, as JSON text in the database (the column holds JSON).
const DETAIL_SQL: &str = r#"{"note":"x\u001b]0;t\u0007\u202e\u009by"}"#;
const NOTE: &str = "x\u{1b}]0;t\u{7}\u{202e}\u{9b}y";
/// A name that would print a second, forged line in `list` and `log`.
const BOB: &str = "bob\nclient  mallory                          valid";
const BOB_SHOWN: &str = r"bob\nclient  mallory";

/// `s` as an SQL expression (`'al' || char(27) || …`), control characters included.
fn sql_text(s: &str) -> String {
    let parts: Vec<String> = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '\'' || c == ' ' {
                format!("'{c}'")
            } else {
                format!("char({})", u32::from(c))
            }
        })
        .collect();
    parts.join(" || ")
}

/// A store with a CA, alice and bob and a CRL; then alice's, bob's and the CA's names, bob's in
/// the audit log, and the last audit entry's user, name and detail are replaced with planted
/// ones. Returns the store
/// and alice's serial.
/// (The state-signing key is deleted too, as in a store made before it existed: the locked
/// readers then show the tables as they are — `status` says they are unverified — instead of
/// refusing the edited records, so that what they print can be checked.)
fn planted() -> (Env, String) {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["crl"]);
    let serial = str_field(&e.json(&["show", "alice"]), "serial").to_string();
    sqlite(
        &e,
        &format!(
            "UPDATE certs SET name = {} WHERE name = 'alice';
             UPDATE certs SET name = {} WHERE name = 'bob';
             UPDATE certs SET name = {} WHERE kind = 'ca';
             UPDATE audit SET name = {} WHERE name = 'bob';
             UPDATE audit SET user = {}, name = {}, detail = '{DETAIL_SQL}'
               WHERE seq = (SELECT MAX(seq) FROM audit);
             DELETE FROM meta WHERE k IN ('state_key_cert', 'state_sig');",
            sql_text(ALICE),
            sql_text(BOB),
            sql_text(CA),
            sql_text(BOB),
            sql_text(USER),
            sql_text(ALICE)
        ),
    );
    (e, serial)
}

/// `vpnca ARGS` without the passphrase (the locked readers), standard input closed.
fn locked(e: &Env, args: &[&str]) -> Output {
    e.cmd(args)
        .env_remove("VPNCA_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("run vpnca")
}

/// Standard output and error of `what` as text, asserting that no byte a terminal would obey
/// is in them: ESC, BEL, CR, the C1 CSI (U+009B; a lone 0x9b byte fails the UTF-8 check) and
/// the right-to-left override U+202E.
fn inert(what: &str, o: &Output) -> (String, String) {
    let text = |b: &[u8], stream: &str| {
        let t = String::from_utf8(b.to_vec())
            .unwrap_or_else(|_| panic!("{what}: {stream} is not UTF-8: {b:?}"));
        for (raw, label) in [
            ('\u{1b}', "ESC"),
            ('\u{7}', "BEL"),
            ('\r', "CR"),
            ('\u{9b}', "CSI (U+009B)"),
            ('\u{202e}', "U+202E"),
        ] {
            assert!(
                !t.contains(raw),
                "{what}: a raw {label} reached {stream}: {t:?}"
            );
        }
        t
    };
    (text(&o.stdout, "stdout"), text(&o.stderr, "stderr"))
}

/// `list`, `show` (by serial and by the planted name), `status` and `log` print the planted
/// fields escaped, with the escape visible.
/// Fails when: standard output is written without output::terminal's escape and a stored field
/// without output::printable (`list`, `show`, `status` and `log` pass ESC, BEL, U+009B and U+202E
/// through).
#[test]
fn locked_readers_show_planted_fields_escaped() {
    let (e, serial) = planted();
    for (args, code, shown) in [
        (&["list"][..], 0, &[ALICE_SHOWN][..]),
        (&["show", "--serial", &serial], 0, &[ALICE_SHOWN]),
        (&["show", ALICE], 0, &[ALICE_SHOWN]),
        (&["status"], 1, &[CA_SHOWN]),
        (&["log"], 0, &[USER_SHOWN, ALICE_SHOWN]),
    ] {
        let o = locked(&e, args);
        let what = format!("vpnca {args:?}");
        assert_eq!(o.status.code(), Some(code), "{what}: {o:?}");
        let (out, _) = inert(&what, &o);
        for want in shown {
            assert!(out.contains(want), "{what}: {want} is not shown: {out}");
        }
    }
}

/// A newline in a stored name forges no line: `list` prints one line per certificate, `log` one
/// per entry, `show` the name on its own line, escaped.
/// Fails when: list's human_record, log or show print a stored name without output::printable
/// (the planted "client mallory valid" line appears).
#[test]
fn a_newline_in_a_stored_name_forges_no_line() {
    let (e, _) = planted();
    let lines = |args: &[&str]| {
        let o = locked(&e, args);
        assert!(o.status.success(), "vpnca {args:?}: {o:?}");
        let (out, _) = inert(&format!("vpnca {args:?}"), &o);
        assert!(out.contains(BOB_SHOWN), "vpnca {args:?}: {out}");
        out.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(lines(&["list"]).len(), 3, "CA, alice, bob and nothing else");
    let log = lines(&["log"]);
    assert!(
        log.iter()
            .all(|l| l.trim_start().starts_with(char::is_numeric)),
        "every line of `log` starts with an entry's number: {log:#?}"
    );
    let show = lines(&["show", BOB]);
    assert!(
        show.iter().all(|l| !l.starts_with("client")),
        "show: {show:#?}"
    );
}

/// `--json` stays JSON: every planted string is escaped (serde_json writes `\u001b` for the ASCII
/// controls, vpnca `\u202e` and `\u009b`, which serde_json writes raw), and parses back to the
/// planted original.
/// Fails when: JSON lines reach standard output without output::terminal's escape (U+202E and
/// U+009B go out raw).
#[test]
fn json_output_escapes_and_round_trips_planted_strings() {
    let (e, serial) = planted();
    let json = |args: &[&str]| {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = locked(&e, &a);
        let (out, _) = inert(&format!("vpnca {a:?}"), &o);
        json_lines(&out, &format!("vpnca {a:?}"))
    };
    let list = json(&["list"]);
    assert!(
        list.iter().any(|v| v["name"] == ALICE),
        "list --json: {list:#?}"
    );
    assert!(
        list.iter().any(|v| v["name"] == BOB),
        "list --json: {list:#?}"
    );
    assert_eq!(json(&["show", "--serial", &serial])[0]["name"], ALICE);
    assert_eq!(json(&["status"])[0]["ca"], CA);
    let log = json(&["log"]);
    let last = log.last().expect("audit entries");
    assert_eq!(last["user"], USER);
    assert_eq!(last["name"], ALICE);
    assert_eq!(last["detail"]["note"], NOTE);
}

/// `verify` (unlocked: it finds the planted rows) reports them, and the error that refuses a
/// planted record names it, without a control sequence and one line per message: `PROBLEM:`
/// lines on standard output, `error:` on standard error (in text and `--json`).
/// Fails when: standard output or error is written without output's escapes (the library's
/// messages quote the stored name as it is: ESC, BEL, U+202E and the newline go out raw).
#[test]
fn verify_and_errors_show_planted_fields_escaped() {
    let (e, serial) = planted();
    let bob = locked(&e, &["--json", "list"]);
    let bob = json_lines(&s(&bob.stdout), "list --json")
        .into_iter()
        .find(|v| v["name"] == BOB)
        .expect("bob's planted record");
    let bob = str_field(&bob, "serial").to_string();
    for args in [&["verify"][..], &["--json", "verify"]] {
        let o = e.run(args);
        let what = format!("vpnca {args:?}");
        assert_eq!(o.status.code(), Some(1), "{what}: {o:?}");
        let (out, _) = inert(&what, &o);
        if args[0] == "verify" {
            for want in [ALICE_SHOWN, BOB_SHOWN] {
                assert!(out.contains(want), "{what}: {want} is not shown: {out}");
            }
            assert!(
                out.lines().all(|l| !l.starts_with("client")),
                "{what}: a forged line: {out}"
            );
        }
    }
    let out_dir = e.path("out");
    for (args, shown) in [
        (
            &["export", "--serial", &serial, "--out", path_str(&out_dir)][..],
            ALICE_SHOWN,
        ),
        (
            &["export", "--serial", &bob, "--out", path_str(&out_dir)],
            BOB_SHOWN,
        ),
        // Format 2: the CA record (its name planted too) is proven first, and named.
        (&["--json", "revoke", "--serial", &bob], CA_SHOWN),
    ] {
        let o = e.run(args);
        let what = format!("vpnca {args:?}");
        assert_eq!(o.status.code(), Some(2), "{what}: {o:?}");
        let (_, err) = inert(&what, &o);
        assert!(err.starts_with("error: "), "{what}: {err}");
        assert!(err.contains(shown), "{what}: {shown} is not shown: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    }
}
