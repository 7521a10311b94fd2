//! Foreign OpenVPN configurations (issue 17): what `vpnca profile NAME --config FILE` lets a
//! configuration it did not write carry into every user's profile. Only an allow-list of
//! client directives passes; a directive that runs programs or touches the user's files is
//! refused naming it and its line (exit 2, nothing written) unless `--allow-directive NAME`; a
//! `<ca>` block with certificates besides the store's CA chain needs `--allow-foreign-ca`; and
//! `verify-x509-name` is added when the remote host is a live server certificate of the store.
//! `client --batch --ovpn-config` and `clientvpn profile` (the endpoint's downloaded
//! configuration) apply the same policy and take the same two flags.
//!
//! Whether a profile works, and whether a directive that was let through is live, is judged
//! by a real OpenVPN client and server (tests/common/openvpn.rs), not by vpnca's own parser.
mod common;
use common::*;

use common::openvpn::ExportedServer;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The configuration an AWS Client VPN endpoint exports (tests/data/ovpn/README.md); its
/// `<ca>` is a CA no test store has.
fn endpoint_fixture() -> String {
    std::fs::read_to_string(fixture("ovpn/clientvpn-endpoint-config.ovpn")).expect("fixture")
}

/// The body of the first `<tag>` block of `text`, with a final newline.
fn block(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>\n");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in:\n{text}"))
        + open.len();
    let end = text[start..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("no </{tag}> in:\n{text}"));
    text[start..start + end].to_owned()
}

/// `text` with the body of its `<ca>` block replaced by `ca_pem`.
fn with_ca(text: &str, ca_pem: &str) -> String {
    text.replace(&block(text, "ca"), ca_pem)
}

/// `text` with `extra` inserted after its `verb 3` line, and the number of the first inserted
/// line.
fn insert_after_verb(text: &str, extra: &str) -> (String, usize) {
    let at = text
        .lines()
        .position(|l| l == "verb 3")
        .expect("a verb 3 line")
        + 1;
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(at, extra);
    (lines.join("\n") + "\n", at + 1)
}

/// Writes `text` to `<env dir>/<name>`; returns the path as a string.
fn write(e: &Env, name: &str, text: &str) -> String {
    let p = e.path(name);
    std::fs::write(&p, text).unwrap_or_else(|err| panic!("{name}: {err}"));
    p.to_str().expect("UTF-8 path").to_owned()
}

/// The `warning: ` lines of a run's standard error.
fn warnings(o: &std::process::Output) -> Vec<String> {
    s(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(str::to_owned)
        .collect()
}

/// A store with a CA, the server certificate `vpn.example.com` (exported with its key for a
/// real OpenVPN server), a CRL, and the client `alice`.
struct Pki {
    e: Env,
    server: ExportedServer,
    /// The store's CA certificate, PEM.
    ca: String,
}

impl Pki {
    fn new() -> Pki {
        let e = Env::with_ca();
        e.ok(&["server", "vpn.example.com"]);
        let server = ExportedServer::export(&e, "vpn.example.com", "srv");
        e.ok(&["client", "alice"]);
        e.ok(&["crl"]);
        let ca = std::fs::read_to_string(e.pki.join("ca.crt")).expect("ca.crt");
        Pki { e, server, ca }
    }

    /// The endpoint configuration for an endpoint whose server certificate this store issued.
    fn endpoint(&self) -> String {
        with_ca(&endpoint_fixture(), &self.ca)
    }

    /// `vpnca profile alice ARGS --out OUT`.
    fn profile(&self, args: &[&str], out: &str) -> std::process::Output {
        let mut a = vec!["profile", "alice"];
        a.extend_from_slice(args);
        a.extend(["--out", out]);
        self.e.run(&a)
    }

    /// [`Pki::profile`], asserting exit 0 and no warning; returns the profile.
    fn profile_ok(&self, args: &[&str], out: &str) -> String {
        let o = self.profile(args, out);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", s(&o.stderr));
        assert!(warnings(&o).is_empty(), "{args:?}: {}", s(&o.stderr));
        std::fs::read_to_string(self.e.path(out)).expect("profile written")
    }
}

/// The `verify-x509-name` lines of a profile.
fn x509_name_lines(profile: &str) -> Vec<&str> {
    profile
        .lines()
        .filter(|l| l.starts_with("verify-x509-name"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Refused directives, as data
// ---------------------------------------------------------------------------------------------

/// Lines (or inline blocks) a foreign configuration must not carry into users' profiles, and
/// the name the error must give.
const REFUSED: &[(&str, &str)] = &[
    ("script-security 2", "script-security"),
    ("up /etc/openvpn/update-resolv-conf", "up"),
    ("down /etc/openvpn/update-resolv-conf", "down"),
    ("route-up /tmp/x.sh", "route-up"),
    ("route-pre-down /tmp/x.sh", "route-pre-down"),
    ("ipchange /tmp/x.sh", "ipchange"),
    ("tls-verify /tmp/x.sh", "tls-verify"),
    ("client-connect /tmp/x.sh", "client-connect"),
    ("learn-address /tmp/x.sh", "learn-address"),
    (
        "auth-user-pass-verify /tmp/x.sh via-env",
        "auth-user-pass-verify",
    ),
    ("iproute /tmp/x.sh", "iproute"),
    ("plugin /usr/lib/openvpn/plugins/x.so", "plugin"),
    ("config /etc/openvpn/other.conf", "config"),
    ("management 127.0.0.1 7505", "management"),
    ("management-hold", "management-hold"),
    ("management-query-passwords", "management-query-passwords"),
    ("providers legacy default", "providers"),
    ("engine dynamic", "engine"),
    ("pkcs11-providers /usr/lib/x.so", "pkcs11-providers"),
    ("pkcs11-id 'x'", "pkcs11-id"),
    ("setenv FOO bar", "setenv"),
    ("setenv opt up /tmp/x.sh", "setenv"),
    ("setenv-safe FOO bar", "setenv-safe"),
    ("cd /tmp", "cd"),
    ("chroot /tmp", "chroot"),
    ("log /tmp/vpn.log", "log"),
    ("log-append /tmp/vpn.log", "log-append"),
    ("writepid /tmp/vpn.pid", "writepid"),
    ("daemon", "daemon"),
    ("status /tmp/status.txt", "status"),
    ("tmp-dir /tmp", "tmp-dir"),
    ("askpass /tmp/pass.txt", "askpass"),
    ("auth-user-pass /tmp/creds.txt", "auth-user-pass"),
    ("comp-lzo", "comp-lzo"),
    ("compress lz4-v2", "compress"),
    ("cipher none", "cipher"),
    ("tls-auth ta.key 1", "tls-auth"),
    ("redirect-gateway def1", "redirect-gateway"),
    // OpenVPN reads `--up CMD` in a file as `up CMD`, and a quoted first word as the word.
    ("--up /tmp/x.sh", "up"),
    ("  \"script-security\" 2", "script-security"),
    // Inline blocks: any directive can be written as one.
    ("<up>\n/tmp/x.sh\n</up>", "up"),
    (
        "<connection>\nremote evil.example 1194\n</connection>",
        "connection",
    ),
    (
        "<auth-user-pass>\nalice\nsecret\n</auth-user-pass>",
        "auth-user-pass",
    ),
];

/// Runs `attempt` (the configuration text with one line of REFUSED inserted, and the case's
/// index) for every case of REFUSED; returns what went wrong: an exit other than 2, an error
/// that does not name the line, the directive or `source(i)`, a panic, or any file written
/// under the test's directory.
fn refusal_problems(
    e: &Env,
    base: &str,
    source: impl Fn(usize) -> String,
    attempt: impl Fn(&str, usize) -> std::process::Output,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, (line, name)) in REFUSED.iter().enumerate() {
        let (text, line_no) = insert_after_verb(base, line);
        let before = snapshot_of(e.dir.path());
        let o = attempt(&text, i);
        let err = s(&o.stderr);
        let case = format!("{line:?}");
        if o.status.code() != Some(2) {
            problems.push(format!("{case}: exit {:?}, not 2:\n{err}", o.status.code()));
        }
        let first = line.lines().next().unwrap_or_default().trim();
        for want in [
            format!("line {line_no}: `{first}`"),
            name.to_string(),
            source(i),
        ] {
            if !err.contains(&want) {
                problems.push(format!("{case}: the error lacks {want:?}:\n{err}"));
            }
        }
        if err.contains("panicked") {
            problems.push(format!("{case}: panic:\n{err}"));
        }
        // The configuration file the attempt wrote is the only change allowed.
        let mut after = snapshot_of(e.dir.path());
        after.retain(|p, _| before.contains_key(p) || !p.ends_with(format!("foreign-{i}.ovpn")));
        if after != before {
            problems.push(format!("{case}: the store or the output directory changed"));
        }
    }
    problems
}

/// Fails when: a directive of REFUSED reaches a profile (seen with `up` put on the allow-list:
/// the `up` and `--up` cases were written, exit 0), when the error does not name the
/// directive, its line or the file, when anything is written, or when the file without the
/// line is refused too (seen with `remote-random-hostname` taken off the allow-list).
#[test]
fn each_dangerous_directive_is_refused_naming_it_and_its_line() {
    let pki = Pki::new();
    let e = &pki.e;
    let base = pki.endpoint();
    // The control: without the line, the file makes a profile.
    write(e, "base.ovpn", &base);
    pki.profile_ok(&["--config", "base.ovpn"], "base-alice.ovpn");
    let problems = refusal_problems(
        e,
        &base,
        |i| format!("foreign-{i}.ovpn"),
        |text, i| {
            let file = format!("foreign-{i}.ovpn");
            write(e, &file, text);
            pki.profile(&["--config", &file], &format!("out/alice-{i}.ovpn"))
        },
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// `client --batch --ovpn-config` refuses each directive of REFUSED as `vpnca profile` does,
/// before any key is made or anything written.
///
/// Fails when: the batch lets a directive through that nobody named (seen with `batch_options`
/// building a policy that allows `up` whatever the flags: the `up` cases issued carol and
/// dave, exit 0).
#[test]
fn client_batch_refuses_each_dangerous_directive() {
    let pki = Pki::new();
    let e = &pki.e;
    write(e, "new-users.csv", "name\ncarol\ndave\n");
    let problems = refusal_problems(
        e,
        &pki.endpoint(),
        |i| format!("foreign-{i}.ovpn"),
        |text, i| {
            let file = format!("foreign-{i}.ovpn");
            write(e, &file, text);
            e.run(&[
                "client",
                "--batch",
                "new-users.csv",
                "--out",
                &format!("out-{i}"),
                "--ovpn-config",
                &file,
            ])
        },
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The other ways a foreign configuration reaches many users: `profile --batch` and
/// `client --batch --ovpn-config` refuse it before anything is issued or written.
///
/// Fails when: the batch forms let the directive through (seen with `up` on the allow-list:
/// exit 0, profiles written), or refuse the file without it.
#[test]
fn batch_forms_refuse_a_dangerous_directive_before_writing() {
    let pki = Pki::new();
    let e = &pki.e;
    write(e, "base.ovpn", &pki.endpoint());
    write(e, "one.csv", "name\nalice\n");
    e.ok(&[
        "profile",
        "--batch",
        "one.csv",
        "--config",
        "base.ovpn",
        "--out",
        "control",
    ]);
    let (text, line_no) = insert_after_verb(&pki.endpoint(), "up /tmp/x.sh");
    write(e, "evil.ovpn", &text);
    write(e, "new-users.csv", "name\ncarol\ndave\n");
    let before = snapshot_of(e.dir.path());
    for args in [
        &[
            "profile",
            "--batch",
            "one.csv",
            "--config",
            "evil.ovpn",
            "--out",
            "out",
        ][..],
        &[
            "client",
            "--batch",
            "new-users.csv",
            "--out",
            "out",
            "--ovpn-config",
            "evil.ovpn",
        ],
    ] {
        let err = e.fails(args, 2);
        assert!(
            err.contains(&format!("line {line_no}: `up /tmp/x.sh`")),
            "{args:?}: {err}"
        );
        assert_eq!(
            snapshot_of(e.dir.path()),
            before,
            "{args:?} wrote something"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. --allow-directive
// ---------------------------------------------------------------------------------------------

/// `--allow-directive NAME` lets exactly that directive through (with a warning), and what it
/// lets through is live: OpenVPN runs the `up` script of the profile.
///
/// Fails when: `--allow-directive` is ignored (seen with `DirectivePolicy::allows` always
/// false: `script-security` still refused), or lets more than its directive through (seen
/// with it allowing everything once a name is given: `up` passed with only
/// `--allow-directive script-security`).
#[test]
fn allow_directive_lets_the_named_directive_through_and_openvpn_runs_it() {
    let pki = Pki::new();
    let e = &pki.e;
    let marker = e.path("up-ran");
    let up = format!("up \"/bin/sh -c 'echo ran > {}'\"", marker.display());
    let (text, line_no) = insert_after_verb(&pki.endpoint(), &format!("script-security 2\n{up}"));
    write(e, "scripted.ovpn", &text);

    // One of the two named: the other is still refused, and only it.
    let before = snapshot_of(e.dir.path());
    let err = e.fails(
        &[
            "profile",
            "alice",
            "--config",
            "scripted.ovpn",
            "--allow-directive",
            "script-security",
            "--out",
            "one.ovpn",
        ],
        2,
    );
    assert!(
        err.contains(&format!("line {}: `up ", line_no + 1)),
        "`up` not refused: {err}"
    );
    assert!(
        !err.contains("`script-security 2`"),
        "script-security refused although allowed: {err}"
    );
    assert_eq!(snapshot_of(e.dir.path()), before, "something was written");

    // Both named: written, with a warning for each, the lines as they were.
    let o = pki.profile(
        &[
            "--config",
            "scripted.ovpn",
            "--allow-directive",
            "script-security",
            "--allow-directive",
            "up",
        ],
        "both.ovpn",
    );
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let w = warnings(&o);
    for name in ["--allow-directive script-security", "--allow-directive up"] {
        assert!(
            w.iter().any(|l| l.contains(name)),
            "no warning for {name}: {w:#?}"
        );
    }
    let profile = std::fs::read_to_string(e.path("both.ovpn")).expect("profile");
    assert!(
        profile.lines().any(|l| l == "script-security 2") && profile.lines().any(|l| l == up),
        "the allowed lines are not in the profile as they were:\n{profile}"
    );

    // OpenVPN's verdict: the profile connects and its `up` script ran.
    let hs = pki.server.connect(&profile);
    assert!(
        hs.ok,
        "the profile with the allowed directives must connect:\n{hs}"
    );
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(
        ran.trim(),
        "ran",
        "OpenVPN did not run the up script:\n{hs}"
    );

    // A name that is no directive name is refused, as is the option without --config.
    let err = e.fails(
        &[
            "profile",
            "alice",
            "--config",
            "scripted.ovpn",
            "--allow-directive=--up",
            "--out",
            "bad.ovpn",
        ],
        2,
    );
    assert!(err.contains("--allow-directive"), "{err}");
    let err = e.fails(
        &[
            "profile",
            "alice",
            "--remote",
            "vpn.example.com",
            "--allow-directive",
            "up",
        ],
        2,
    );
    assert!(err.contains("--allow-directive"), "{err}");
    assert!(!e.path("bad.ovpn").exists() && !e.path("alice.ovpn").exists());
}

/// The configuration with `script-security 2` and an `up` script that writes `marker`, and the
/// line number of `up`.
fn scripted(pki: &Pki, marker: &std::path::Path) -> (String, String, usize) {
    let up = format!("up \"/bin/sh -c 'echo ran > {}'\"", marker.display());
    let (text, line_no) = insert_after_verb(&pki.endpoint(), &format!("script-security 2\n{up}"));
    (text, up, line_no + 1)
}

/// Asserts a run was refused (exit 2) because of `up` on line `line_no` only, naming `source`.
fn assert_up_refused(o: &std::process::Output, line_no: usize, source: &str) {
    let err = s(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("line {line_no}: `up ")) && err.contains(source),
        "`up` not refused, or the configuration not named: {err}"
    );
    assert!(
        !err.contains("`script-security 2`"),
        "script-security refused although allowed: {err}"
    );
}

/// Asserts the run let both directives through with a warning each, that `profile` holds
/// them as they were, and that OpenVPN connects with it and runs the `up` script.
fn assert_let_through_and_live(
    pki: &Pki,
    o: &std::process::Output,
    profile: &str,
    up: &str,
    marker: &std::path::Path,
) {
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let w = warnings(o);
    for name in ["--allow-directive script-security", "--allow-directive up"] {
        assert!(
            w.iter().any(|l| l.contains(name)),
            "no warning for {name}: {w:#?}"
        );
    }
    assert!(
        profile.lines().any(|l| l == "script-security 2") && profile.lines().any(|l| l == up),
        "the allowed lines are not in the profile as they were:\n{profile}"
    );
    let _ = std::fs::remove_file(marker);
    let hs = pki.server.connect(profile);
    assert!(
        hs.ok,
        "the profile with the allowed directives must connect:\n{hs}"
    );
    let ran = std::fs::read_to_string(marker).unwrap_or_default();
    assert_eq!(
        ran.trim(),
        "ran",
        "OpenVPN did not run the up script:\n{hs}"
    );
}

/// `client --batch --ovpn-config` takes `--allow-directive` and `--allow-foreign-ca` with the
/// semantics of `vpnca profile`: a directive that is not named is still refused with nothing
/// issued; named ones reach every profile with a warning, and OpenVPN runs them; an extra
/// `<ca>` certificate needs `--allow-foreign-ca`; neither flag is accepted without
/// `--ovpn-config`.
///
/// Fails when: the batch ignores the flags or lets more than the named directive through
/// (seen with `batch_options` building a policy that allows `up` whatever the flags:
/// `script-security` refused although named, `up` let through although not), or checks the
/// `<ca>` block only per profile (seen before `check_base`: dave issued, exit 0, a warning
/// that his files could not be written).
#[test]
fn client_batch_takes_allow_directive_and_allow_foreign_ca() {
    let pki = Pki::new();
    let e = &pki.e;
    let marker = e.path("up-ran");
    let (text, up, line_no) = scripted(&pki, &marker);
    write(e, "scripted.ovpn", &text);
    write(e, "users.csv", "name\ncarol\n");
    let batch = |out: &str, config: &str, extra: &[&str]| {
        let mut a = vec![
            "client",
            "--batch",
            "users.csv",
            "--out",
            out,
            "--ovpn-config",
            config,
        ];
        a.extend_from_slice(extra);
        e.run(&a)
    };

    let before = snapshot_of(e.dir.path());
    let o = batch(
        "one",
        "scripted.ovpn",
        &["--allow-directive", "script-security"],
    );
    assert_up_refused(&o, line_no, "scripted.ovpn");
    assert_eq!(snapshot_of(e.dir.path()), before, "something was written");

    let o = batch(
        "both",
        "scripted.ovpn",
        &[
            "--allow-directive",
            "script-security",
            "--allow-directive",
            "up",
        ],
    );
    let profile = std::fs::read_to_string(e.path("both/carol.ovpn")).unwrap_or_default();
    assert_let_through_and_live(&pki, &o, &profile, &up, &marker);

    // An extra CA in <ca>: refused, then let through by the flag; still connects.
    let foreign = block(&endpoint_fixture(), "ca");
    write(
        e,
        "extra-ca.ovpn",
        &with_ca(&endpoint_fixture(), &format!("{}{foreign}", pki.ca)),
    );
    write(e, "users.csv", "name\ndave\n");
    let before = snapshot_of(e.dir.path());
    let o = batch("ca-refused", "extra-ca.ovpn", &[]);
    let err = s(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Example Client VPN CA") && err.contains("--allow-foreign-ca"),
        "{err}"
    );
    assert_eq!(snapshot_of(e.dir.path()), before, "something was written");
    let o = batch("ca-ok", "extra-ca.ovpn", &["--allow-foreign-ca"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert!(
        warnings(&o)
            .iter()
            .any(|l| l.contains("--allow-foreign-ca")),
        "{}",
        s(&o.stderr)
    );
    let profile = std::fs::read_to_string(e.path("ca-ok/dave.ovpn")).expect("profile");
    let hs = pki.server.connect(&profile);
    assert!(hs.ok, "the profile must still connect:\n{hs}");

    // Neither flag without --ovpn-config; a name that is no directive name.
    for extra in [&["--allow-directive", "up"][..], &["--allow-foreign-ca"]] {
        let mut a = vec!["client", "--batch", "users.csv", "--out", "x"];
        a.extend_from_slice(extra);
        let err = e.fails(&a, 2);
        assert!(err.contains("--ovpn-config"), "{extra:?}: {err}");
    }
    let err = s(&batch("bad", "scripted.ovpn", &["--allow-directive=--up"]).stderr);
    assert!(err.contains("--allow-directive"), "{err}");
    assert!(!e.path("x").exists() && !e.path("bad").exists());
}

/// `clientvpn profile` reads the endpoint's downloaded configuration with the same policy:
/// each directive of REFUSED is refused (exit 2, nothing written), `--allow-directive` lets
/// the named ones through and OpenVPN runs them, and an extra `<ca>` certificate needs
/// `--allow-foreign-ca`. The endpoint is tests/aws/ec2_server.py (tests/common/aws.rs).
///
/// Fails when: the endpoint's configuration is read without the policy the flags make (seen
/// with `endpoint_config` using the default policy: `script-security` refused although
/// named, exit 2), or without any policy.
#[test]
fn clientvpn_profile_applies_the_policy_to_the_endpoint_configuration() {
    use common::aws::Ec2Server;
    const EP: &str = "cvpn-endpoint-0123456789abcdef0";
    let pki = Pki::new();
    let e = &pki.e;
    let ec2 = Ec2Server::start();
    let serve = |config: &str| {
        ec2.control(
            "state",
            &serde_json::json!({"endpoints": [{"id": EP}], "clientConfiguration": {EP: config}}),
        );
    };
    let profile = |out: &str, extra: &[&str]| {
        let mut a = vec![
            "clientvpn",
            "profile",
            "alice",
            "--endpoint",
            EP,
            "--out",
            out,
        ];
        a.extend_from_slice(extra);
        e.aws_run(None, Some(&ec2), &a)
    };
    let source = format!("the client configuration of {EP}");

    // The control, then every refused directive.
    serve(&pki.endpoint());
    let o = profile("control.ovpn", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let problems = refusal_problems(
        e,
        &pki.endpoint(),
        |_| source.clone(),
        |text, i| {
            serve(text);
            profile(&format!("out/alice-{i}.ovpn"), &[])
        },
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));

    // --allow-directive: only the named directive passes; both named, the profile is live.
    let marker = e.path("up-ran");
    let (text, up, line_no) = scripted(&pki, &marker);
    serve(&text);
    let before = snapshot_of(e.dir.path());
    let o = profile("one.ovpn", &["--allow-directive", "script-security"]);
    assert_up_refused(&o, line_no, &source);
    assert_eq!(snapshot_of(e.dir.path()), before, "something was written");
    let o = profile(
        "both.ovpn",
        &[
            "--allow-directive",
            "script-security",
            "--allow-directive",
            "up",
        ],
    );
    let written = std::fs::read_to_string(e.path("both.ovpn")).unwrap_or_default();
    assert_let_through_and_live(&pki, &o, &written, &up, &marker);

    // --allow-foreign-ca.
    let foreign = block(&endpoint_fixture(), "ca");
    serve(&with_ca(
        &endpoint_fixture(),
        &format!("{}{foreign}", pki.ca),
    ));
    let before = snapshot_of(e.dir.path());
    let o = profile("ca-refused.ovpn", &[]);
    let err = s(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Example Client VPN CA") && err.contains("--allow-foreign-ca"),
        "{err}"
    );
    assert_eq!(snapshot_of(e.dir.path()), before, "something was written");
    let o = profile("ca-ok.ovpn", &["--allow-foreign-ca"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert!(
        warnings(&o)
            .iter()
            .any(|l| l.contains("--allow-foreign-ca")),
        "{}",
        s(&o.stderr)
    );
    let written = std::fs::read_to_string(e.path("ca-ok.ovpn")).expect("profile");
    let hs = pki.server.connect(&written);
    assert!(hs.ok, "the profile must still connect:\n{hs}");

    // A name that is no directive name: refused before AWS is asked.
    let n = ec2.requests().len();
    let err = s(&profile("bad.ovpn", &["--allow-directive=--up"]).stderr);
    assert!(err.contains("--allow-directive"), "{err}");
    assert_eq!(ec2.requests().len(), n, "AWS was asked");
    ec2.assert_all_signed();
}

// ---------------------------------------------------------------------------------------------
// 3. The AWS Client VPN configuration keeps working
// ---------------------------------------------------------------------------------------------

/// The endpoint's exported file passes the allow-list unchanged, and a profile made from it
/// (with the allowed directives an admin may add) completes a real OpenVPN handshake.
///
/// Fails when: a directive of the AWS export or a safe client directive is missing from the
/// allow-list (seen with `remote-random-hostname` and `persist-key` taken off it: exit 2), or
/// the profile does not connect.
#[test]
fn an_aws_endpoint_configuration_passes_and_connects() {
    let pki = Pki::new();
    let e = &pki.e;

    // The file as AWS exports it (a foreign <ca>): only the foreign-CA warning.
    let fixture = endpoint_fixture();
    write(e, "aws.ovpn", &fixture);
    let o = pki.profile(&["--config", "aws.ovpn"], "aws-alice.ovpn");
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let w = warnings(&o);
    assert!(
        w.len() == 1 && w[0].contains("does not contain this PKI's CA"),
        "{w:#?}"
    );
    let profile = std::fs::read_to_string(e.path("aws-alice.ovpn")).expect("profile");
    let creds = format!(
        "<cert>\n{}</cert>\n<key>\n{}</key>\n",
        block(&profile, "cert"),
        block(&profile, "key")
    );
    assert_eq!(
        profile.replace(&creds, ""),
        fixture,
        "the endpoint's lines must be kept as they were"
    );

    // An endpoint of this store's CA, with the safe directives admins add: connects.
    let added = "auth-nocache\npersist-key\npersist-tun\ndata-ciphers AES-256-GCM:AES-128-GCM\n\
                 tls-version-min 1.2\nserver-poll-timeout 10\nconnect-retry 1\nmute 20\nfloat\n\
                 auth SHA256\nremote-random";
    let (text, _) = insert_after_verb(&pki.endpoint(), added);
    write(e, "endpoint.ovpn", &text);
    let profile = pki.profile_ok(&["--config", "endpoint.ovpn"], "alice.ovpn");
    for l in added.lines() {
        assert!(
            profile.lines().any(|p| p == l),
            "{l:?} not kept:\n{profile}"
        );
    }
    let hs = pki.server.connect(&profile);
    assert!(hs.ok, "the endpoint profile must connect:\n{hs}");
    assert!(
        hs.client_log.contains("AES-256-GCM"),
        "the client did not use the configuration's data cipher:\n{hs}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. --allow-foreign-ca
// ---------------------------------------------------------------------------------------------

/// A `<ca>` block with this store's CA and another CA besides is refused (every user's
/// client would trust that CA's servers too); `--allow-foreign-ca` lets it through with a
/// warning, and the profile still connects to this store's server.
///
/// Fails when: only "none of ours" is checked, as before issue 17 (seen with the mixed-block
/// check off: exit 0 without the flag), or the flag does not let the block through.
#[test]
fn an_extra_ca_certificate_needs_allow_foreign_ca() {
    let pki = Pki::new();
    let e = &pki.e;
    let foreign = block(&endpoint_fixture(), "ca");
    let text = with_ca(&endpoint_fixture(), &format!("{}{foreign}", pki.ca));
    write(e, "extra-ca.ovpn", &text);

    let before = snapshot_of(e.dir.path());
    let o = pki.profile(&["--config", "extra-ca.ovpn"], "refused.ovpn");
    let err = s(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in [
        "extra-ca.ovpn",
        "Example Client VPN CA",
        "--allow-foreign-ca",
    ] {
        assert!(err.contains(want), "the error lacks {want:?}: {err}");
    }
    assert_eq!(snapshot_of(e.dir.path()), before, "something was written");

    let o = pki.profile(
        &["--config", "extra-ca.ovpn", "--allow-foreign-ca"],
        "ok.ovpn",
    );
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let w = warnings(&o);
    assert!(
        w.iter()
            .any(|l| l.contains("Example Client VPN CA") && l.contains("--allow-foreign-ca")),
        "{w:#?}"
    );
    let profile = std::fs::read_to_string(e.path("ok.ovpn")).expect("profile");
    assert_eq!(block(&profile, "ca"), format!("{}{foreign}", pki.ca));
    let hs = pki.server.connect(&profile);
    assert!(hs.ok, "the profile must still connect:\n{hs}");
}

/// `profile --batch` with a configuration whose `<ca>` holds another CA failed every line with
/// the same error ("failed alice …", "failed bob …") and exit 2 at the end: the check that does
/// not depend on the user now runs once, before any profile — one error naming the file and
/// `--allow-foreign-ca`, no per-line outcome, nothing written.
///
/// Fails when: `cli::batch::profile` does not call `ProfileContext::check_base` first (seen:
/// one `failed` line per user on standard output).
#[test]
fn profile_batch_refuses_a_foreign_ca_once_before_any_line() {
    let pki = Pki::new();
    let e = &pki.e;
    e.ok(&["client", "bob"]);
    let foreign = block(&endpoint_fixture(), "ca");
    let text = with_ca(&endpoint_fixture(), &format!("{}{foreign}", pki.ca));
    write(e, "extra-ca.ovpn", &text);
    write(e, "users.csv", "name\nalice\nbob\n");
    let before = snapshot_of(e.dir.path());
    let o = e.run(&[
        "profile",
        "--batch",
        "users.csv",
        "--config",
        "extra-ca.ovpn",
        "--out",
        "out",
    ]);
    let (out, err) = (s(&o.stdout), s(&o.stderr));
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("extra-ca.ovpn") && err.contains("--allow-foreign-ca"),
        "{err}"
    );
    assert!(
        !out.contains("failed"),
        "a per-line failure was reported: {out}"
    );
    assert_eq!(snapshot_of(e.dir.path()), before, "something was written");
}

// ---------------------------------------------------------------------------------------------
// 5. verify-x509-name when the server is known
// ---------------------------------------------------------------------------------------------

/// A profile for a host that is a live server certificate of the store (by name or SAN) pins
/// that certificate's CN, and OpenVPN enforces it: the right server connects, another one of
/// the same CA is refused with `VERIFY X509NAME ERROR`. Unknown hosts (an IP, the AWS endpoint
/// name), revoked servers, and configurations that already pin a name get no line.
///
/// Fails when: the name is not added (seen with `known_server_name` returning `None`: no
/// verify-x509-name line in the first profile), or added for a host the store does not know.
#[test]
fn verify_x509_name_is_added_for_a_known_server_and_openvpn_enforces_it() {
    let pki = Pki::new();
    let e = &pki.e;
    e.ok(&[
        "server",
        "other.example.com",
        "--san",
        "DNS:alias.example.net",
    ]);

    // --remote with a server certificate's name: pinned, and it connects.
    let profile = pki.profile_ok(&["--remote", "vpn.example.com"], "named.ovpn");
    assert_eq!(
        x509_name_lines(&profile),
        ["verify-x509-name vpn.example.com name"],
        "{profile}"
    );
    let hs = pki.server.connect(&profile);
    assert!(
        hs.ok,
        "the pinned profile must connect to its server:\n{hs}"
    );

    // --remote with another server's SAN: that server's CN, which vpn.example.com is not.
    let profile = pki.profile_ok(&["--remote", "alias.example.net:443"], "alias.ovpn");
    assert_eq!(
        x509_name_lines(&profile),
        ["verify-x509-name other.example.com name"],
        "{profile}"
    );
    let hs = pki.server.connect(&profile);
    assert!(
        !hs.ok,
        "a server of the same CA with another name must be refused:\n{hs}"
    );
    assert!(
        hs.client_log
            .contains("VERIFY X509NAME ERROR: CN=vpn.example.com, must be other.example.com"),
        "not refused by the client's verify-x509-name:\n{hs}"
    );

    // An explicit --server-name wins; an unknown host gets nothing.
    let profile = pki.profile_ok(
        &[
            "--remote",
            "vpn.example.com",
            "--server-name",
            "other.example.com",
        ],
        "explicit.ovpn",
    );
    assert_eq!(
        x509_name_lines(&profile),
        ["verify-x509-name other.example.com name"]
    );
    let profile = pki.profile_ok(&["--remote", "127.0.0.1"], "ip.ovpn");
    assert!(x509_name_lines(&profile).is_empty(), "{profile}");

    // A foreign configuration for a known host: the line goes after remote-cert-tls; it
    // connects. One that pins a name already is left alone.
    let plain = pki
        .endpoint()
        .replace(
            "remote cvpn-endpoint-0a1b2c3d4e5f60718.prod.clientvpn.us-east-1.amazonaws.com 443",
            "remote vpn.example.com 1194",
        )
        .replace("remote-random-hostname\n", "");
    write(e, "plain.ovpn", &plain);
    let profile = pki.profile_ok(&["--config", "plain.ovpn"], "from-config.ovpn");
    assert!(
        profile.contains("remote-cert-tls server\nverify-x509-name vpn.example.com name\n"),
        "{profile}"
    );
    let hs = pki.server.connect(&profile);
    assert!(hs.ok, "the pinned endpoint profile must connect:\n{hs}");
    let (pinned, _) = insert_after_verb(&plain, "verify-x509-name vpn.example.com name");
    write(e, "pinned.ovpn", &pinned);
    let profile = pki.profile_ok(&["--config", "pinned.ovpn"], "pinned-out.ovpn");
    assert_eq!(x509_name_lines(&profile).len(), 1, "{profile}");
    write(e, "aws.ovpn", &pki.endpoint());
    let profile = pki.profile_ok(&["--config", "aws.ovpn"], "aws-out.ovpn");
    assert!(x509_name_lines(&profile).is_empty(), "{profile}");

    // A revoked server certificate is no longer a known server.
    e.ok(&["revoke", "other.example.com"]);
    let profile = pki.profile_ok(&["--remote", "alias.example.net"], "revoked.ovpn");
    assert!(x509_name_lines(&profile).is_empty(), "{profile}");
}
