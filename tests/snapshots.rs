//! Snapshot tests of help and error text: whole invocations (exit code, stdout, stderr), with
//! serials, dates and temp paths replaced by placeholders. Snapshots live in tests/snapshots/.
//!
//! After an intended change of wording: `INSTA_UPDATE=always cargo test --test snapshots`, then
//! read the changed `.snap` files before committing them.
mod common;
use common::*;

/// One invocation, normalised, as the snapshot text:
///
/// ```text
/// $ vpnca ARGS
/// exit: CODE
/// --- stdout
/// …
/// --- stderr
/// …
/// ```
fn invocation(e: &Env, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = e.cmd(args);
    // Help is wrapped to the terminal width (or $COLUMNS without a terminal) and may be
    // coloured: pin both, whatever the developer's environment says.
    c.env("COLUMNS", "100")
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("LINES");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run vpnca");
    let shown: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(std::iter::once("vpnca".to_owned()))
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    let text = format!(
        "$ {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        shown.join(" "),
        o.status
            .code()
            .map_or("killed by a signal".to_owned(), |c| c.to_string()),
        s(&o.stdout),
        s(&o.stderr)
    );
    normalise(&text, e)
}

/// Replaces what differs between runs and machines: the temp directory (→ `[TMP]`), RFC 3339
/// times (→ `[DATE]`), 128-bit serials (→ `[SERIAL]`) and state heads (→ `[HEAD]`).
fn normalise(text: &str, e: &Env) -> String {
    let mut t = text.to_owned();
    let tmp = e.dir.path();
    if let Ok(canon) = tmp.canonicalize() {
        t = t.replace(canon.to_str().expect("utf8"), "[TMP]");
    }
    t = t.replace(tmp.to_str().expect("utf8"), "[TMP]");
    serials(&dates(&heads(&t)))
}

/// A state head `SEQ:ROOT` (64 lower-case hex digits after the colon) → `[HEAD]`.
fn heads(t: &str) -> String {
    let b = t.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < b.len() {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let start_ok = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let j = i + digits;
        let root = b.get(j + 1..j + 65);
        if digits > 0
            && start_ok
            && b.get(j) == Some(&b':')
            && root.is_some_and(|r| r.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
            && !b.get(j + 65).is_some_and(u8::is_ascii_alphanumeric)
        {
            out.extend_from_slice(b"[HEAD]");
            i = j + 65;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII was replaced")
}

/// `YYYY-MM-DDTHH:MM:SS` with optional fraction and `Z`/`±HH:MM` → `[DATE]`.
fn dates(t: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    let b = t.as_bytes();
    let fits = |i: usize| {
        b.len() >= i + SHAPE.len()
            && SHAPE.iter().zip(&b[i..]).all(|(&p, &c)| match p {
                b'd' => c.is_ascii_digit(),
                _ => c == p,
            })
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if fits(i) {
            i += SHAPE.len();
            if b.get(i) == Some(&b'.') {
                i += 1;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            if b.get(i) == Some(&b'Z') {
                i += 1;
            } else if matches!(b.get(i), Some(b'+' | b'-')) && b.len() >= i + 6 && b[i + 3] == b':'
            {
                i += 6;
            }
            out.extend_from_slice(b"[DATE]");
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("only ASCII was replaced")
}

/// A word of 16 or more upper-case hex digits (vpnca's serials are 32) → `[SERIAL]`.
fn serials(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let hex = word
            .chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c));
        if word.len() >= 16 && hex {
            out.push_str("[SERIAL]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for ch in t.chars() {
        if ch.is_ascii_alphanumeric() {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
            out.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[test]
fn normalise_replaces_only_what_varies() {
    let e = Env::new();
    let path = e.pki.display().to_string();
    let raw = format!(
        "serial 5BF06050BB347C29533C98E50582BA56, until 2029-02-23T06:08:29Z at {path}/crl.pem; \
         DEADBEEF 2036-11-18T06:03:29.123+01:00 {{\"serial\":\"7ACF27BEF1EFBBF0634C994191A5ADAF\"}} \
         alice ABCDEFABCDEFABCDEFx"
    );
    assert_eq!(
        normalise(&raw, &e),
        "serial [SERIAL], until [DATE] at [TMP]/pki/crl.pem; DEADBEEF [DATE] \
         {\"serial\":\"[SERIAL]\"} alice ABCDEFABCDEFABCDEFx"
    );
}

#[test]
fn help_text() {
    let e = Env::new();
    for (name, args) in [
        ("help", &["--help"][..]),
        ("help_client", &["client", "--help"][..]),
        ("help_revoke", &["revoke", "--help"][..]),
        ("help_crl", &["crl", "--help"][..]),
        ("help_acm_import", &["acm", "import", "--help"][..]),
        ("help_push_crl", &["clientvpn", "push-crl", "--help"][..]),
    ] {
        insta::assert_snapshot!(name, invocation(&e, args, &[]));
    }
}

#[test]
fn error_text() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["client", "carol"]);
    e.ok(&["revoke", "carol", "--reason", "keyCompromise"]);
    let before = e.snapshot();
    for (name, args, env) in [
        (
            "wrong_passphrase",
            &["client", "bob"][..],
            &[("VPNCA_PASSPHRASE", "wrong-passphrase")][..],
        ),
        ("duplicate_name", &["client", "alice"][..], &[][..]),
        ("invalid_name", &["client", "a/b"][..], &[][..]),
        (
            "revoke_unknown_serial",
            &["revoke", "--serial", "DEADBEEF"][..],
            &[][..],
        ),
        (
            "revoke_unknown_name",
            &["revoke", "Hans Zimmer"][..],
            &[][..],
        ),
        ("revoke_already_revoked", &["revoke", "carol"][..], &[][..]),
    ] {
        insta::assert_snapshot!(name, invocation(&e, args, env));
        assert_eq!(e.snapshot(), before, "{name}: the store changed");
    }
}

#[test]
fn status_and_list_text() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["revoke", "bob"]);
    for (name, args) in [
        ("status_healthy", &["status"][..]),
        ("status_warn_days", &["status", "--warn-days", "4000"][..]),
        ("list", &["list"][..]),
        ("list_json", &["--json", "list"][..]),
    ] {
        insta::assert_snapshot!(name, invocation(&e, args, &[]));
    }
}

#[test]
fn unknown_subcommand_with_json() {
    let e = Env::new();
    insta::assert_snapshot!(
        "unknown_subcommand_json",
        invocation(&e, &["--json", "frobnicate"], &[])
    );
}
