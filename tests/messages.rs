//! What vpnca says, as reported by new admins: batch summaries that count right, suggested
//! commands that work when pasted into a shell, names printed as they were typed, keywords in
//! any case, and a `revoke` that says why there is nothing to revoke. Each test is the
//! regression test of one report, through the real binary; the suggested commands are run by
//! a real shell (`sh`, dash on Debian), and dates are checked against what openssl reads.
mod common;
use common::oldpki::openssl_pki_with_expired;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// The commands between backticks in `text`, in order.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Runs a command vpnca suggested, as a user pasting it would: by `sh -c`, with `vpnca` the
/// binary under test (quoted: the target path may hold anything), the store and passphrase in
/// the environment, each `(from, to)` of `subst` replaced first (placeholders like `DIR`), in
/// `cwd`.
fn run_suggested(e: &Env, cmd: &str, subst: &[(&str, &str)], cwd: &Path) -> Output {
    let rest = cmd
        .strip_prefix("vpnca ")
        .unwrap_or_else(|| panic!("not a vpnca command: {cmd}"));
    let mut line = format!(
        "'{}' {rest}",
        env!("CARGO_BIN_EXE_vpnca").replace('\'', r"'\''")
    );
    for (from, to) in subst {
        line = line.replace(from, to);
    }
    Command::new("sh")
        .args(["-c", &line])
        .current_dir(cwd)
        .env("VPNCA_PKI", &e.pki)
        .env("VPNCA_PASSPHRASE", PASS)
        .output()
        .expect("sh is required")
}

fn assert_ran(cmd: &str, o: &Output) {
    assert!(
        o.status.success(),
        "the suggested `{cmd}` failed in sh ({:?}):\n{}\n{}",
        o.status.code(),
        s(&o.stdout),
        s(&o.stderr)
    );
}

/// Issue 5: `profile --batch` run again over three users whose profiles exist reported
/// `3 profile(s) written, …`. A profile that exists is counted apart, is neither written nor
/// failed, and the exit code is 0 unless a line failed; `--json` says `exists` per line.
///
/// Fails when: the summary counts `rows - failed` as written again (the re-run then reads
/// `3 profile(s) written`), or when an `exists` line is counted as a failure (exit 2).
#[test]
fn profile_batch_rerun_counts_existing_profiles_apart() {
    let e = Env::with_ca();
    for u in ["alice", "bob", "carol"] {
        e.ok(&["client", u]);
    }
    std::fs::write(e.path("users.csv"), "name\nalice\nbob\ncarol\n").expect("csv");
    let args = [
        "profile",
        "--batch",
        "users.csv",
        "--remote",
        "vpn.example.com",
        "--out",
        "profiles",
    ];
    let first = e.ok(&args);
    assert!(
        first.contains("3 profile(s) written, 0 exist already, 0 failed"),
        "{first}"
    );
    let again = e.ok(&args);
    assert_eq!(
        again.lines().filter(|l| l.starts_with("exists ")).count(),
        3,
        "{again}"
    );
    assert!(
        again
            .lines()
            .last()
            .is_some_and(|l| l == "0 profile(s) written, 3 exist already, 0 failed"),
        "{again}"
    );
    // JSON lines: each `exists`, with its path; the summary on standard error.
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(&args);
    let o = e.run(&json_args);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let lines = json_lines(&s(&o.stdout), "profile --batch --json");
    assert_eq!(lines.len(), 3, "{}", s(&o.stdout));
    for (l, name) in lines.iter().zip(["alice", "bob", "carol"]) {
        assert_eq!(l["status"], "exists", "{l}");
        assert_eq!(l["name"], name, "{l}");
        assert!(
            l["path"].as_str().is_some_and(|p| p.ends_with(".ovpn")),
            "{l}"
        );
    }
    assert!(
        s(&o.stderr).contains("0 profile(s) written, 3 exist already, 0 failed"),
        "{}",
        s(&o.stderr)
    );
    // One new user, one unknown: written 1, exist 3, failed 1, exit 2.
    e.ok(&["client", "dave"]);
    std::fs::write(
        e.path("users.csv"),
        "name\nalice\nbob\ncarol\ndave\nghost\n",
    )
    .expect("csv");
    let o = e.run(&args);
    assert_eq!(o.status.code(), Some(2), "{}", s(&o.stdout));
    assert!(
        s(&o.stdout).contains("1 profile(s) written, 3 exist already, 1 failed"),
        "{}",
        s(&o.stdout)
    );
}

/// Issue 6: `client 'Hans Peter'` suggested `vpnca export Hans Peter --out DIR --key`, which a
/// shell splits into two names. Every suggested command quotes what needs it, and works when
/// pasted: the `export` hint after issuing, the `renew` hint of the duplicate-name error and of
/// `status`, the hints of `quickstart`; for a name with a quote, one with a space and a
/// wildcard server name (a file in the directory matches the glob, so an unquoted `*` would
/// export the wrong name).
///
/// Fails when: the CLI's `sh` helper returns the name as it is, or `vpnca::shell::quote` (which
/// `sh` calls) leaves a name with a space unquoted: `Issued client certificate Hans Peter` and
/// `vpnca export Hans Peter --out DIR --key`, which a shell splits.
#[test]
fn suggested_commands_are_shell_quoted_and_work_when_pasted() {
    let e = Env::with_ca();
    let work = e.path("work");
    std::fs::create_dir(&work).expect("mkdir");
    std::fs::write(work.join("decoy.vpn.example.com"), "").expect("decoy");
    for (name, kind, quoted) in [
        ("Hans Peter", "client", "'Hans Peter'"),
        ("O'Brien", "client", r"'O'\''Brien'"),
        ("*.vpn.example.com", "server", "'*.vpn.example.com'"),
    ] {
        let out = e.ok(&[kind, name]);
        assert!(
            out.contains(&format!("Issued {kind} certificate {quoted} (serial")),
            "{out}"
        );
        let hint = backticked(&out)
            .into_iter()
            .find(|c| c.starts_with("vpnca export"))
            .unwrap_or_else(|| panic!("no export hint in:\n{out}"));
        assert_eq!(hint, format!("vpnca export {quoted} --out DIR --key"));
        let dir = format!("out-{}", name.len());
        let o = run_suggested(&e, &hint, &[("DIR", &dir)], &work);
        assert_ran(&hint, &o);
        assert!(
            work.join(&dir).join(format!("{name}.crt")).is_file(),
            "{hint}: no {name}.crt"
        );
        assert!(work.join(&dir).join(format!("{name}.key")).is_file());
    }

    // The duplicate-name error suggests renew and revoke, quoted; the renew works.
    let err = e.fails(&["client", "Hans Peter"], 2);
    let cmds = backticked(&err);
    assert_eq!(
        cmds,
        ["vpnca renew 'Hans Peter'", "vpnca revoke 'Hans Peter'"],
        "{err}"
    );
    let before = e.json(&["show", "Hans Peter"]);
    let o = run_suggested(&e, &cmds[0], &[], &work);
    assert_ran(&cmds[0], &o);
    let after = e.json(&["show", "Hans Peter"]);
    assert_ne!(before["serial"], after["serial"], "renew made a new one");

    // status: the renew hint for an expiring certificate.
    let o = e.run(&["status", "--warn-days", "4000"]);
    assert_eq!(o.status.code(), Some(1));
    let out = s(&o.stdout);
    for quoted in ["'Hans Peter'", r"'O'\''Brien'", "'*.vpn.example.com'"] {
        assert!(
            backticked(&out).contains(&format!("vpnca renew {quoted}")),
            "{quoted}:\n{out}"
        );
    }

    // quickstart: the server's ACM import line (the AWS route first), quoted for sh.
    let q = Env::new();
    let out = q.ok(&[
        "quickstart",
        "--server",
        "*.vpn.example.com",
        "--kdf-memory-mib",
        "8",
        "--kdf-time",
        "1",
    ]);
    assert!(
        out.contains("vpnca acm import --server '*.vpn.example.com'"),
        "{out}"
    );
    assert!(
        !out.contains("--key") && !out.contains("aws acm import-certificate"),
        "the quickstart teaches the key-on-disk route first:\n{out}"
    );
    let line = out
        .lines()
        .find(|l| l.contains("vpnca acm import"))
        .expect("acm import line");
    let cmd = line[line.find("vpnca acm import").expect("cmd")..]
        .split("   (")
        .next()
        .expect("command");
    // sh passes the name through as one argument: the command gets as far as AWS (no region
    // or credentials here: exit 2), never to a usage error or a name it cannot find.
    let o = run_suggested(&q, cmd, &[], &work);
    let err = s(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
    assert!(
        !err.contains("Usage:") && !err.contains("no certificate named"),
        "{cmd}: {err}"
    );
    // init's hint is quoted the same way.
    let i = Env::new();
    let out = i.ok(&["init", "--kdf-memory-mib", "8", "--kdf-time", "1"]);
    assert!(out.contains("Next: vpnca ca --cn 'My VPN CA'"), "{out}");
}

/// Issue 7, first part: `status` on a store without a CA printed `CA: none (until )` (and
/// `certificates: ` with nothing after it).
///
/// Fails when: the CA line prints the empty date again.
#[test]
fn status_without_a_ca_says_none() {
    let e = Env::init();
    let o = e.run(&["status"]);
    assert_eq!(o.status.code(), Some(1), "no CA is a finding");
    let out = s(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"CA:   none"), "{out}");
    assert!(lines.contains(&"certificates: none"), "{out}");
    assert!(!out.contains("until )") && !out.contains("()"), "{out}");
    assert!(out.contains("ATTENTION: the store has no CA"), "{out}");
}

/// Issue 7, second part: `list --status Revoked` was refused while `--reason KeyCompromise`
/// was accepted. Decision: every keyword is case-insensitive (statuses, kinds, reasons,
/// algorithms, `--ttl` units, formats, `--proto`, `sign-req --type`, completions' shell).
/// Each mixed-case form gives what the lower-case one gives.
///
/// Fails when: `Status` parses case-sensitively again (`--status Revoked` exits 2).
#[test]
fn keywords_are_case_insensitive() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["client", "bob"]);
    e.ok(&["revoke", "bob", "--reason", "KEYCOMPROMISE"]);
    let lower = e.ok(&["list", "--status", "revoked", "--kind", "client"]);
    assert!(lower.contains("bob") && !lower.contains("alice"), "{lower}");
    for (status, kind) in [("Revoked", "Client"), ("REVOKED", "CLIENT")] {
        assert_eq!(
            e.ok(&["list", "--status", status, "--kind", kind]),
            lower,
            "--status {status} --kind {kind}"
        );
    }
    let valid = e.ok(&["list", "--status", "VALID"]);
    assert!(valid.contains("alice") && !valid.contains("bob"), "{valid}");

    // --ttl unit, --algo, sign-req --type, export --format, --proto, batch --format, shell.
    let t = e.json(&["client", "temp", "--ttl", "8H", "--algo", "P256"]);
    assert_eq!(t["status"], "valid", "{t}");
    let csr = fixture("csr/alice.csr");
    let r = e.json(&[
        "sign-req",
        csr.to_str().expect("utf-8"),
        "--type",
        "Client",
        "--name",
        "alice-csr",
    ]);
    assert_eq!(r["kind"], "client", "{r}");
    let x = e.json(&["export", "alice", "--out", "x", "--format", "PEM"]);
    assert_eq!(x["key"], "none", "{x}");
    e.ok(&[
        "profile",
        "alice",
        "--remote",
        "vpn.example.com",
        "--proto",
        "TCP",
        "--out",
        "alice.ovpn",
    ]);
    let ovpn = std::fs::read_to_string(e.path("alice.ovpn")).expect("profile");
    assert!(ovpn.lines().any(|l| l == "proto tcp"), "{ovpn}");
    std::fs::write(e.path("b.csv"), "name\ncarol\n").expect("csv");
    let out = e.ok(&["client", "--batch", "b.csv", "--format", "CSV"]);
    assert!(out.contains("1 issued"), "{out}");
    assert!(e.ok(&["completions", "BASH"]).contains("vpnca"));
}

/// Issue 7, third part: a name in NFD (`Jose` + U+0301) was echoed as `"Jose\u{301}"`, Rust's
/// debug form. Names are printed as recorded (in NFC since issue 14 bug 3), quoted for the shell
/// where needed, in the library's
/// errors and the CLI's lines alike; a name with a control character is shown escaped
/// (`$'…'`), never raw.
///
/// Fails when: `Error::InvalidName` formats the name with `{:?}` again (`"Jose\u{301}/x"`),
/// or when `print_issued` does.
#[test]
fn names_are_printed_as_typed() {
    let e = Env::with_ca();
    // Typed in NFD, recorded and printed in NFC (tests/names.rs).
    let (nfd, nfc) = ("Jose\u{301}", "Jos\u{e9}");
    let out = e.ok(&["client", nfd]);
    assert!(
        out.contains(&format!("Issued client certificate {nfc} (serial")),
        "{out}"
    );
    let mut texts = vec![out];
    let err = e.fails(&["client", nfd], 2);
    assert!(
        err.contains(&format!("a valid certificate named {nfc} exists already")),
        "{err}"
    );
    texts.push(err);
    let err = e.fails(&["client", &format!("{nfd}/x")], 2);
    assert!(
        err.contains(&format!("invalid name {nfc}/x: it contains '/'")),
        "{err}"
    );
    texts.push(err);
    let err = e.fails(&["client", "Hans/Peter Meier"], 2);
    assert!(
        err.contains("invalid name 'Hans/Peter Meier': it contains '/'"),
        "{err}"
    );
    // A control character: escaped, so it cannot reach the terminal.
    let err = e.fails(&["client", "a\u{1b}[31mred"], 2);
    assert!(
        err.contains(r"invalid name $'a\x1b[31mred': it contains a control character"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "a raw ESC reached stderr: {err:?}");
    // Not found, by every command that looks a name up.
    for args in [
        &["revoke", "Hans Zimmer"][..],
        &["show", "Hans Zimmer"][..],
        &["renew", "Hans Zimmer"][..],
        &["export", "Hans Zimmer", "--out", "d"][..],
        &["profile", "Hans Zimmer", "--remote", "vpn.example.com"][..],
    ] {
        let err = e.fails(args, 2);
        assert!(
            err.contains("not found: no certificate named 'Hans Zimmer'"),
            "{args:?}: {err}"
        );
        texts.push(err);
    }
    // A profile of a revoked certificate names it the same way.
    e.ok(&["client", "Hans Peter"]);
    e.ok(&["revoke", "Hans Peter"]);
    let err = e.fails(&["profile", "Hans Peter", "--remote", "vpn.example.com"], 2);
    assert!(
        err.contains("the certificate of 'Hans Peter' (serial"),
        "{err}"
    );
    texts.push(err);
    for t in &texts {
        assert!(
            !t.contains("\\u{") && !t.contains("\"Jose"),
            "debug formatting: {t}"
        );
    }
}

/// Issue 8: `revoke` of a revoked user said `invalid name: "bob" has no unrevoked, unexpired
/// certificate`. It is not an invalid name: the error says the certificate is already
/// revoked, when and why (checked against `show --json`), or that it expired, when (checked
/// against openssl's notAfter), or that no certificate has that name; exit 2, store unchanged.
/// `--serial` of a revoked certificate and `renew` of a revoked name say the same kind of thing.
///
/// Fails when: the name branch of `Store::revoke` returns `Error::input("name", …)` again
/// (the message then starts with `invalid name:`).
#[test]
fn revoke_says_why_there_is_nothing_to_revoke() {
    let e = Env::init();
    let old = openssl_pki_with_expired(e.dir.path());
    e.ok(&["import-easyrsa", old.to_str().expect("utf-8 path")]);
    e.ok(&["client", "bob"]);
    e.ok(&["revoke", "bob", "--reason", "keyCompromise"]);
    let before = e.snapshot();

    let bob = e.json(&["show", "bob"]);
    let (serial, at) = (
        bob["serial"].as_str().expect("serial"),
        bob["revoked_at"].as_str().expect("revoked_at"),
    );
    let want = format!(
        "error: bob is already revoked: serial {serial} was revoked on {at} (reason keyCompromise); nothing was changed"
    );
    for args in [&["revoke", "bob"][..], &["revoke", "--serial", serial][..]] {
        let err = e.fails(args, 2);
        assert_eq!(err.trim_end(), want, "{args:?}");
    }
    // --json: the same message as the error document.
    let o = e.run(&["--json", "revoke", "bob"]);
    assert_eq!(o.status.code(), Some(2));
    let doc: Value = serde_json::from_str(s(&o.stdout).trim()).expect("error document");
    assert_eq!(doc["error"].as_str(), want.strip_prefix("error: "), "{doc}");

    // Imported: revoked (and expired since) by easy-rsa's openssl, with its reason and date.
    let er = e.json(&["show", "expired_revoked"]);
    let err = e.fails(&["revoke", "expired_revoked"], 2);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: expired_revoked is already revoked: serial {} was revoked on {} (reason keyCompromise); nothing was changed",
            er["serial"].as_str().expect("serial"),
            er["revoked_at"].as_str().expect("revoked_at")
        )
    );

    // Expired, never revoked: says when, by openssl's reading of the certificate.
    let ev = e.json(&["show", "expired_valid"]);
    let text = openssl_ok(
        &["x509", "-in", "old/expired_valid.crt", "-noout", "-enddate"],
        e.dir.path(),
    );
    let not_after = openssl_time(text.trim().trim_start_matches("notAfter="));
    let when = not_after
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let evs = ev["serial"].as_str().expect("serial");
    let err = e.fails(&["revoke", "expired_valid"], 2);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: expired_valid has nothing to revoke: its certificate (serial {evs}) expired on {when}, and an expired certificate cannot connect; nothing was changed (`vpnca revoke --serial {evs}` lists it in the CRL all the same)"
        )
    );

    // Never existed.
    let err = e.fails(&["revoke", "ghost"], 2);
    assert_eq!(
        err.trim_end(),
        "error: not found: no certificate named ghost"
    );

    // renew of a revoked name: refused, not an "invalid name".
    let err = e.fails(&["renew", "bob"], 2);
    assert!(
        err.starts_with(&format!(
            "error: bob cannot be renewed: it is revoked (serial {serial}, on {at}, reason keyCompromise)"
        )),
        "{err}"
    );
    assert!(!err.contains("invalid name"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused revoke changed the store");
}

/// A sibling of issue 8 in `revoke --batch`: a name whose certificate had expired (or was
/// revoked) was reported `already` without saying when or why, and an unknown name without a
/// hint. Each such line now says it, as text and as `note` in `--json`; nothing is revoked and
/// the store is unchanged.
///
/// Fails when: `RevokeResult::note` is left `None` for `already` lines (the text line then ends
/// after the name), or `revoke_batch` stops asking `Store::did_you_mean` for unknown names.
#[test]
fn revoke_batch_says_why_there_is_nothing_to_revoke() {
    let e = Env::init();
    let old = openssl_pki_with_expired(e.dir.path());
    e.ok(&["import-easyrsa", old.to_str().expect("utf-8 path")]);
    e.ok(&["client", "bob"]);
    e.ok(&["revoke", "bob", "--reason", "keyCompromise"]);
    let bob = e.json(&["show", "bob"]);
    let ev = e.json(&["show", "expired_valid"]);
    std::fs::write(e.path("gone.csv"), "name\nbob\nexpired_valid\nbobb\n").expect("csv");
    let before = e.snapshot();

    let lines = e.json_lines(&["revoke", "--batch", "gone.csv"]);
    let note = |target: &str| -> (String, String) {
        let l = lines
            .iter()
            .find(|l| l["target"] == target)
            .unwrap_or_else(|| panic!("{target} in {lines:?}"));
        (
            str_field(l, "status").to_string(),
            l["note"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(
        note("bob"),
        (
            "already".into(),
            format!(
                "serial {} was revoked on {} (keyCompromise)",
                str_field(&bob, "serial"),
                str_field(&bob, "revoked_at")
            )
        )
    );
    assert_eq!(
        note("expired_valid"),
        (
            "already".into(),
            format!(
                "serial {} expired on {}; an expired certificate is not revoked",
                str_field(&ev, "serial"),
                str_field(&ev, "not_after")
            )
        )
    );
    assert_eq!(note("bobb"), ("unknown".into(), "did you mean bob?".into()));

    let out = e.ok(&["revoke", "--batch", "gone.csv"]);
    assert!(
        out.contains(&format!(
            "already  bob (line 2): serial {} was revoked on",
            str_field(&bob, "serial")
        )) && out.contains("unknown  bobb (line 4): did you mean bob?"),
        "{out}"
    );
    assert!(
        e.snapshot() == before,
        "a batch with nothing to revoke changed the store"
    );
}

/// A sibling of issue 7's keywords: a profile override's `key_usage`, `extended_key_usage` and
/// `san.allow` were matched case-sensitively (`key_usage: unknown bit "DigitalSignature"`),
/// while every keyword on the command line ignores case. Now they are read in any case and
/// the certificate carries the canonical bits, as openssl reads them.
///
/// Fails when: `Profile::canonicalize_keywords` is not called by `Profile::parse` (the
/// override is then refused, exit 2).
#[test]
fn profile_keywords_are_case_insensitive() {
    let e = Env::with_ca();
    adopt_template(
        &e,
        "client",
        "description = \"shouted\"\nca = false\ndays = 90\n\
         key_usage = [\"DIGITALSIGNATURE\", \"KeyEncipherment\"]\n\
         extended_key_usage = [\"ClientAuth\"]\n\
         [san]\ndns_from_name = false\nallow = [\"EMAIL\"]\n",
    );
    e.ok(&["client", "carol", "--email", "carol@example.com"]);
    e.ok(&["export", "carol", "--out", "out"]);
    let text = openssl_ok(
        &[
            "x509",
            "-in",
            "out/carol.crt",
            "-noout",
            "-ext",
            "keyUsage,extendedKeyUsage,subjectAltName",
        ],
        e.dir.path(),
    );
    for want in [
        "Digital Signature, Key Encipherment",
        "TLS Web Client Authentication",
        "email:carol@example.com",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
}
