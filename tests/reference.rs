//! The generated command reference (src/cli/reference.rs): man pages, shell completions, and
//! the option names they are made from (issue 15: `--template`, with `--profile` kept hidden).
mod common;
use common::*;

use std::path::Path;
use std::process::Command;

/// Every page `vpnca man --out DIR` must write: the main page and one per command and
/// subcommand (the ones the main page's COMMANDS section names as vpnca-NAME(1)).
const PAGES: &[&str] = &[
    "vpnca",
    "vpnca-init",
    "vpnca-ca",
    "vpnca-server",
    "vpnca-client",
    "vpnca-sign-req",
    "vpnca-revoke",
    "vpnca-renew",
    "vpnca-crl",
    "vpnca-list",
    "vpnca-show",
    "vpnca-export",
    "vpnca-profile",
    "vpnca-status",
    "vpnca-import-easyrsa",
    "vpnca-acm",
    "vpnca-acm-import",
    "vpnca-acm-list",
    "vpnca-clientvpn",
    "vpnca-clientvpn-push-crl",
    "vpnca-clientvpn-profile",
    "vpnca-log",
    "vpnca-verify",
    "vpnca-passwd",
    "vpnca-quickstart",
    "vpnca-completions",
    "vpnca-man",
];

/// The easy-rsa verbs vpnca accepts as command names (docs/easy-rsa.md).
const EASYRSA_VERBS: &[&str] = &[
    "init-pki",
    "build-ca",
    "build-server-full",
    "build-client-full",
    "sign-req",
    "revoke",
    "renew",
    "gen-crl",
    "show-cert",
    // Translated before parsing (src/cli/easyrsa_compat), offered by the completions only.
    "export-p12",
    "show-crl",
    "revoke-renewed",
    "update-db",
    "set-pass",
];

/// Writes the pages into `<tmp>/man` and returns the directory.
fn man_pages(e: &Env) -> std::path::PathBuf {
    let dir = e.path("man");
    e.ok(&["man", "--out", path_str(&dir)]);
    dir
}

/// The sections of a roff page: (heading, body) per `.SH`, quotes removed from headings.
fn sections(roff: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in roff.lines() {
        if let Some(h) = line.strip_prefix(".SH ") {
            out.push((h.trim_matches('"').to_owned(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

fn section<'a>(secs: &'a [(String, String)], name: &str, page: &str) -> &'a str {
    secs.iter()
        .find(|(h, _)| h == name)
        .map(|(_, b)| b.as_str())
        .unwrap_or_else(|| panic!("{page}: no {name} section"))
}

// Fails when: a command or subcommand gets no page of its own, or the main page (or a command
// group's page) names a vpnca-NAME(1) page that is not written.
#[test]
fn man_writes_one_page_per_command() {
    let e = Env::new();
    let dir = man_pages(&e);
    for p in PAGES {
        assert!(dir.join(format!("{p}.1")).is_file(), "no {p}.1 in {dir:?}");
    }
    let mut references = 0;
    for p in PAGES {
        let text = std::fs::read_to_string(dir.join(format!("{p}.1"))).expect("read page");
        // clap_mangen writes references as `vpnca\-init(1)`.
        for (i, _) in text.match_indices("(1)") {
            let start = text[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '\\'))
                .map_or(0, |s| s + 1);
            let target = ["\\fB", "\\fI", "\\fR", "\\fP"]
                .iter()
                .fold(text[start..i].replace("\\-", "-"), |t, font| {
                    t.replace(font, "")
                });
            if target.starts_with("vpnca-") {
                references += 1;
                assert!(
                    dir.join(format!("{target}.1")).is_file(),
                    "{p}.1 refers to {target}(1), which was not written"
                );
            }
        }
    }
    assert!(
        references >= PAGES.len() - 1,
        "only {references} references seen"
    );
    // Without --out: the main page on standard output, the same as vpnca.1.
    let stdout = e.ok(&["man"]);
    let main = std::fs::read_to_string(dir.join("vpnca.1")).expect("read vpnca.1");
    assert_eq!(stdout, main);
}

// Fails when: a page lacks ENVIRONMENT (VPNCA_PKI, VPNCA_PASSPHRASE), EXIT STATUS (0, 1, 2, 3)
// or EXAMPLES with a vpnca command line.
#[test]
fn every_man_page_has_environment_exit_status_and_examples() {
    let e = Env::new();
    let dir = man_pages(&e);
    for p in PAGES {
        let text = std::fs::read_to_string(dir.join(format!("{p}.1"))).expect("read page");
        let secs = sections(&text);
        let env = section(&secs, "ENVIRONMENT", p);
        for var in ["VPNCA_PKI", "VPNCA_PASSPHRASE"] {
            assert!(env.contains(var), "{p}: ENVIRONMENT lacks {var}:\n{env}");
        }
        let exit = section(&secs, "EXIT STATUS", p);
        for code in ["0", "1", "2", "3"] {
            assert!(
                exit.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "{p}: EXIT STATUS lacks {code}:\n{exit}"
            );
        }
        let examples = section(&secs, "EXAMPLES", p);
        assert!(
            examples.contains(".nf\nvpnca "),
            "{p}: EXAMPLES has no command line:\n{examples}"
        );
    }
}

// Fails when: a page holds roff that groff or man(1) warns about (an unknown macro, a bad
// escape, a line starting with a dot in an example).
#[test]
fn man_pages_render_without_warnings() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    // groff is required (scripts/test.sh installs groff-base): a test never skips silently.
    // man(1) is checked too where it is installed.
    let (groff, man) = (have("groff"), have("man"));
    assert!(
        groff,
        "groff is required to render the man pages (apt-get install groff-base)"
    );
    let e = Env::new();
    let dir = man_pages(&e);
    for p in PAGES {
        let file = dir.join(format!("{p}.1"));
        if groff {
            // -k: preconv, as man(1) does, for the UTF-8 in help texts; -ww: every warning.
            let o = render(
                Command::new("groff").args(["-k", "-man", "-Tutf8", "-ww", "-z"]),
                &file,
            );
            assert!(
                o.status.success() && o.stderr.is_empty(),
                "groff on {p}.1: {}",
                s(&o.stderr)
            );
        }
        if man {
            let mut c = Command::new("man");
            c.env("MANPAGER", "cat").env("MANWIDTH", "80");
            let o = render(c.args(["--warnings", "-l"]), &file);
            assert!(
                o.status.success() && o.stderr.is_empty(),
                "man -l {p}.1: {}",
                s(&o.stderr)
            );
            let text = s(&o.stdout);
            for h in ["ENVIRONMENT", "EXIT STATUS", "EXAMPLES"] {
                assert!(text.contains(h), "man -l {p}.1 shows no {h}:\n{text}");
            }
        }
    }
}

fn render(c: &mut Command, file: &Path) -> std::process::Output {
    c.arg(file).output().expect("run the roff renderer")
}

/// The bash completion script's case for OPTION of COMMAND (from `--option)` to `;;`). The
/// script maps `vpnca,COMMAND)` to its function name `cmd="…"`, whose block lists the cases.
fn bash_case<'a>(script: &'a str, command: &str, option: &str) -> &'a str {
    let map = format!("vpnca,{command})");
    let after = &script[script
        .find(&map)
        .unwrap_or_else(|| panic!("no completion for {command}"))..];
    let func = after
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("{command}: no cmd= line"));
    let head = format!("\n        {func})\n");
    let block = &script[script
        .find(&head)
        .unwrap_or_else(|| panic!("{command}: no block {func}"))
        + head.len()..];
    let block = &block[..block.find("\n        vpnca").unwrap_or(block.len())];
    let case = format!("{option})");
    let start = block
        .find(&case)
        .unwrap_or_else(|| panic!("{command}: no case for {option}"));
    let end = block[start..].find(";;").expect("case end") + start;
    &block[start..end]
}

// Fails when: --reason, --algo, --kind, --status or --type complete file names instead of
// their values, or an easy-rsa verb is missing from the commands offered.
#[test]
fn completions_offer_keyword_values_and_easyrsa_verbs() {
    let e = Env::new();
    let bash = e.ok(&["completions", "bash"]);
    let values: &[(&str, &str, &[&str])] = &[
        (
            "revoke",
            "--reason",
            &[
                "keyCompromise",
                "caCompromise",
                "affiliationChanged",
                "superseded",
                "cessationOfOperation",
                "certificateHold",
                "unspecified",
            ],
        ),
        (
            "client",
            "--algo",
            &["rsa2048", "rsa4096", "p256", "ed25519"],
        ),
        ("server", "--algo", &["rsa2048", "p384"]),
        ("renew", "--algo", &["rsa2048", "ed25519"]),
        ("ca", "--algo", &["rsa2048", "p256"]),
        ("list", "--kind", &["ca", "server", "client"]),
        (
            "list",
            "--status",
            &["valid", "superseded", "revoked", "expired"],
        ),
        ("sign-req", "--type", &["client", "server"]),
        (
            "client",
            "--template",
            &["client", "server", "server-client"],
        ),
        ("sign-req", "--template", &["client", "server-client"]),
    ];
    for (command, option, words) in values {
        let case = bash_case(&bash, command, option);
        assert!(
            case.contains("compgen -W") && !case.contains("compgen -f"),
            "{command} {option} does not complete its values:\n{case}"
        );
        for w in *words {
            assert!(case.contains(w), "{command} {option} lacks {w}:\n{case}");
        }
    }
    let top = bash
        .lines()
        .find(|l| l.trim_start().starts_with("opts=\"-h -V --pki"))
        .expect("the top-level opts line");
    for verb in EASYRSA_VERBS {
        assert!(
            top.split(['"', ' ']).any(|w| w == *verb),
            "bash completion lacks the easy-rsa verb {verb}: {top}"
        );
    }
    let fish = e.ok(&["completions", "fish"]);
    assert!(fish.contains("keyCompromise"), "fish lacks --reason values");
    assert!(
        fish.contains("build-client-full"),
        "fish lacks easy-rsa verbs"
    );
}

// Fails when: `--profile` (the old name of `--template`) stops working on client, server or
// sign-req, or shows up in their help; or AWS commands lose `--profile` for the AWS profile.
#[test]
fn template_option_keeps_profile_as_hidden_alias() {
    let e = Env::with_ca();
    let old = e.json(&["client", "alice", "--profile", "server-client"]);
    let new = e.json(&["client", "bob", "--template", "server-client"]);
    for (name, v) in [("alice", &old), ("bob", &new)] {
        let shown = e.json(&["show", name]);
        assert_eq!(shown["profile"], "server-client", "{name}: {v} / {shown}");
    }
    e.ok(&["server", "s.example.com", "--profile", "server"]);
    let csr = fixture("csr/alice.csr");
    e.ok(&[
        "sign-req",
        path_str(&csr),
        "--type",
        "client",
        "--name",
        "alice-csr",
        "--profile",
        "client",
    ]);
    for command in ["client", "server", "sign-req"] {
        let help = e.ok(&[command, "--help"]);
        assert!(help.contains("--template <TEMPLATE>"), "{command}:\n{help}");
        assert!(
            !help.contains("--profile"),
            "{command} shows --profile:\n{help}"
        );
    }
    let aws = e.ok(&["acm", "import", "--help"]);
    assert!(aws.contains("--profile <NAME>"), "acm import:\n{aws}");
    // The library's messages name the new option.
    let err = e.fails(&["client", "carol", "--template", "root-ca"], 2);
    assert!(
        err.contains("--template") && !err.contains("--profile"),
        "{err}"
    );
}
