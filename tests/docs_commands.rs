//! The commands shown in README.md and docs/*.md, run: every fenced `sh`, `bash` and `console`
//! block of a page, in document order, in one scratch folder per page (a store at `./pki`),
//! against the binary under test and the AWS doubles (moto for ACM, tests/aws/ec2_server.py for
//! Client VPN). A command that exits otherwise than the page says fails the test with
//! `FILE:LINE`, the command and its output; so does one whose output lacks a line that its
//! `console` block shows under it (in order; `…` matches text that changes per run). The
//! conventions (markers, expected exit codes, substitutions, shown output) are described in
//! docs/testing.md, "The docs' commands".
//!
//! Seen failing on planted doc errors: `vpnca revoke alice --reason affiliationChanged` spelled
//! `--reasn` in docs/commands-revocation.md failed with that line and clap's usage error; the
//! shown `error: cannot write adir: it is a directory (name a file)` changed to `… it is a
//! folder …` failed naming that line, the shown line and the command's actual output.

mod common;

use common::aws::{Ec2Server, Moto, aws_env};
use common::{Env, s};
use serde_json::json;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// The pages whose commands are not run, with the reason.
/// Empty today: a block that must not run says why in its page (`<!-- no-run: … -->`).
const NOT_RUN_PAGES: &[(&str, &str)] = &[];

/// The passphrase of the scratch stores: the one the pages put in `VPNCA_PASSPHRASE`.
const PASSPHRASE: &str = "choose a long passphrase";

/// The Client VPN endpoints the EC2 double holds: the IDs the pages use. They use no ACM
/// certificate until a page's set-up says so (`docs-ec2 endpoints ARN`).
const ENDPOINTS: &[&str] = &[
    "cvpn-endpoint-0123456789abcdef0",
    "cvpn-endpoint-0a1b2c3d4e5f60718",
];

/// An endpoint with federated (SAML) authentication only, which `push-crl --all` skips.
const FEDERATED_ENDPOINT: &str = "cvpn-endpoint-0f9e8d7c6b5a49382";

/// The EC2 double's state: the endpoints, and the client configuration each exports (as AWS
/// does: its `<ca>` is the chain of the endpoint's server certificate, here a foreign CA, so
/// `clientvpn profile` warns and goes on).
fn ec2_state(root: &Path) -> serde_json::Value {
    let ca = std::fs::read_to_string(root.join("tests/data/foreign-ca.crt")).expect("foreign CA");
    let mut endpoints: Vec<_> = ENDPOINTS
        .iter()
        .map(|id| json!({"id": id, "dnsName": format!("*.{id}.prod.clientvpn.eu-west-1.amazonaws.com")}))
        .collect();
    endpoints.push(json!({"id": FEDERATED_ENDPOINT, "authType": "federated-authentication"}));
    let configs: serde_json::Map<_, _> = ENDPOINTS
        .iter()
        .map(|id| {
            let text = format!(
                "client\ndev tun\nproto udp\nremote {id}.prod.clientvpn.eu-west-1.amazonaws.com 443\nremote-random-hostname\nresolv-retry infinite\nnobind\nremote-cert-tls server\ncipher AES-256-GCM\nverb 3\n<ca>\n{ca}</ca>\nreneg-sec 0\n"
            );
            ((*id).to_owned(), json!(text))
        })
        .collect();
    json!({"endpoints": endpoints, "clientConfiguration": configs})
}

/// Text replaced in every command before it runs (docs/testing.md lists them).
const SUBSTITUTIONS: &[(&str, &str)] = &[
    // The README's quickstart builds and runs the binary; here it is the binary under test.
    ("cargo run --release --", "vpnca"),
    // The placeholder for "your endpoint".
    ("cvpn-endpoint-…", "cvpn-endpoint-0123456789abcdef0"),
    // The machine's configuration stays untouched: /etc/…, /srv/… and /root/… are folders of
    // the scratch folder.
    (" /etc/", " ./etc/"),
    ("=/srv/", "=./srv/"),
    ("/root/", "./root/"),
];

/// Text replaced in the output a page shows before it is compared: the substitutions above
/// that change what the binary prints (`cvpn-endpoint-…` does not: vpnca prints it as such).
const OUTPUT_SUBSTITUTIONS: &[(&str, &str)] = &[(" /etc/", " ./etc/")];

/// One command of a page.
#[derive(Debug)]
struct Cmd {
    /// 1-based line in the page.
    line: usize,
    /// The shell text (continuation lines joined), substitutions applied.
    text: String,
    /// The exit code the page shows (`$ echo $?` after it), else 0.
    expect: i32,
    /// A file a `$ cat FILE` (or `$ head -N FILE`) shows: created with that text if missing.
    shows_file: Option<(String, String)>,
    /// Its output in the page has an `error: …` line (then the page must give the exit code).
    shows_error: bool,
    /// The output lines a `console` block shows under it, with their lines in the page: they
    /// must appear in its actual output, in order ([`find_shown`]).
    shown: Vec<(usize, String)>,
}

/// A fenced block of a page with the marker comment right above it, if any.
#[derive(Debug)]
struct Block {
    no_run: Option<String>,
    cmds: Vec<Cmd>,
}

/// `<!-- no-run: … -->` or `<!-- setup: … -->` right above a fence.
enum Marker {
    NoRun(String),
    Setup(usize, Vec<String>),
}

fn subst(text: &str) -> String {
    SUBSTITUTIONS
        .iter()
        .fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
}

/// Commands of the AWS CLI are never run: `aws …` and `VAR=$(aws …)`.
fn is_aws_cli(text: &str) -> bool {
    let t = text.trim_start();
    let t = match t.split_once("=$(") {
        Some((var, rest)) if var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => rest,
        _ => t,
    };
    t.starts_with("aws ")
}

/// The shell's compound-command depth change of one line: `for`/`while`/`until`/`if`/`case`
/// as its first word opens one, `done`/`fi`/`esac` as its last word closes one (so a one-line
/// `for …; do …; done` changes nothing).
fn depth_change(line: &str) -> i32 {
    let words: Vec<&str> = line.split_whitespace().collect();
    let first = words.first().copied().unwrap_or("");
    let last = words.last().map(|w| w.trim_end_matches(';')).unwrap_or("");
    let opens = matches!(first, "for" | "while" | "until" | "if" | "case");
    let closes = matches!(last, "done" | "fi" | "esac");
    i32::from(opens) - i32::from(closes)
}

/// The commands of an `sh`/`bash` block: comment and blank lines dropped, `\` continuations
/// (also after a trailing `|`, `&&`, `||`) and compound commands (`for … done`) joined.
fn sh_commands(lines: &[(usize, String)]) -> Vec<Cmd> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    let mut depth = 0;
    for (n, l) in lines {
        let t = l.trim();
        if cur.is_none() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        depth += depth_change(t);
        let (start, mut text) = cur.take().unwrap_or((*n, String::new()));
        text.push_str(l);
        text.push('\n');
        let continues = ["\\", "|", "&&", "||"].iter().any(|e| t.ends_with(e));
        if continues || depth > 0 {
            cur = Some((start, text));
        } else {
            out.push(Cmd {
                line: start,
                text: subst(text.trim_end()),
                expect: 0,
                shows_file: None,
                shows_error: false,
                shown: Vec::new(),
            });
        }
    }
    assert!(cur.is_none(), "an unfinished command in a block: {cur:?}");
    out
}

/// The commands of a `console` block: `$ ` lines (with `\` continuations), the lines after
/// one being its output. `$ echo $?` is not run: the number below it is the previous
/// command's expected exit code.
fn console_commands(lines: &[(usize, String)]) -> Vec<Cmd> {
    let mut cmds: Vec<(Cmd, Vec<(usize, String)>)> = Vec::new();
    let mut continued = false;
    for (n, l) in lines {
        if continued {
            let (c, _) = cmds.last_mut().expect("a command");
            c.text.push('\n');
            c.text.push_str(l);
            continued = l.trim_end().ends_with('\\');
        } else if let Some(cmd) = l.strip_prefix("$ ") {
            continued = cmd.trim_end().ends_with('\\');
            let c = Cmd {
                line: *n,
                text: cmd.to_owned(),
                expect: 0,
                shows_file: None,
                shows_error: false,
                shown: Vec::new(),
            };
            cmds.push((c, Vec::new()));
        } else if let Some((_, out)) = cmds.last_mut() {
            out.push((*n, l.clone()));
        }
    }
    let mut out: Vec<Cmd> = Vec::new();
    for (mut c, output) in cmds {
        if c.text.trim() == "echo $?" {
            let code = output.first().and_then(|(_, o)| o.trim().parse().ok());
            let prev = out.last_mut();
            match (prev, code) {
                (Some(p), Some(code)) => p.expect = code,
                _ => panic!(
                    "line {}: `echo $?` needs a command before it and a number below it",
                    c.line
                ),
            }
            continue;
        }
        c.shows_error = output.iter().any(|(_, l)| l.starts_with("error: "));
        let words: Vec<&str> = c.text.split_whitespace().collect();
        let file = match words.as_slice() {
            ["cat", f] => Some(*f),
            ["head", n, f] if n.starts_with('-') => Some(*f),
            _ => None,
        };
        if let Some(f) = file.filter(|_| !output.is_empty()) {
            let text: Vec<&str> = output.iter().map(|(_, l)| l.as_str()).collect();
            c.shows_file = Some((f.to_owned(), text.join("\n") + "\n"));
        }
        c.text = subst(&c.text);
        c.shown = output
            .into_iter()
            .map(|(n, l)| {
                let l = OUTPUT_SUBSTITUTIONS
                    .iter()
                    .fold(l, |l, (from, to)| l.replace(from, to));
                (n, l)
            })
            .collect();
        out.push(c);
    }
    out
}

/// Every `sh`, `bash` and `console` block of a page, with its marker.
fn blocks(page: &str) -> Vec<Block> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    let mut marker: Option<(usize, Marker)> = None;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let t = l.trim_start();
        if let Some(rest) = t.strip_prefix("<!--") {
            // A comment, maybe over several lines.
            let start = i;
            let mut body = rest.to_owned();
            while !body.contains("-->") && i + 1 < lines.len() {
                i += 1;
                body.push('\n');
                body.push_str(lines[i]);
            }
            let body = body.split("-->").next().unwrap_or("").trim().to_owned();
            marker = if let Some(r) = body.strip_prefix("no-run:") {
                Some((i, Marker::NoRun(r.trim().to_owned())))
            } else if let Some(r) = body.strip_prefix("setup:") {
                let cmds = r
                    .lines()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
                Some((i, Marker::Setup(start + 1, cmds)))
            } else {
                None
            };
            i += 1;
            continue;
        }
        if let Some(info) = t.strip_prefix("```") {
            let indent = l.len() - t.len();
            let lang = info.split_whitespace().next().unwrap_or("");
            let open = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                let bl = lines[i];
                let cut = bl.len() - bl.trim_start().len();
                body.push((i + 1, bl[cut.min(indent)..].to_owned()));
                i += 1;
            }
            i += 1;
            // The marker counts only when it ends on the line right above the fence.
            let m = marker.take().filter(|(end, _)| end + 1 == open);
            let cmds = match lang {
                "sh" | "bash" => sh_commands(&body),
                "console" => console_commands(&body),
                _ => {
                    assert!(
                        m.is_none(),
                        "line {}: a marker above a {lang:?} block",
                        open + 1
                    );
                    continue;
                }
            };
            let mut block = Block { no_run: None, cmds };
            match m {
                Some((_, Marker::NoRun(reason))) => {
                    assert!(
                        !reason.is_empty(),
                        "line {}: no-run without a reason",
                        open + 1
                    );
                    block.no_run = Some(reason);
                }
                Some((_, Marker::Setup(line, setup))) => {
                    let setup = setup.into_iter().map(|text| Cmd {
                        line,
                        text,
                        expect: 0,
                        shows_file: None,
                        shows_error: false,
                        shown: Vec::new(),
                    });
                    block.cmds.splice(0..0, setup);
                }
                None => {}
            }
            out.push(block);
            continue;
        }
        if !t.is_empty() {
            marker = None;
        }
        i += 1;
    }
    out
}

/// Single-quotes a string for the shell.
fn sq(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs the commands of `page` (relative to the repository) in a scratch folder; panics with
/// `page:line`, the command and its output at the first one that exits unexpectedly.
fn run_page(page: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(page)).expect("read the page");
    let cmds: Vec<Cmd> = blocks(&text)
        .into_iter()
        .filter(|b| b.no_run.is_none())
        .flat_map(|b| b.cmds)
        .filter(|c| !is_aws_cli(&c.text))
        .collect();
    assert!(!cmds.is_empty(), "{page}: no command to run");
    for c in &cmds {
        assert!(
            !c.shows_error || c.expect != 0,
            "{page}:{}: the page shows an error for `{}` but no exit code: add `$ echo $?` and the code below it",
            c.line,
            c.text
        );
    }

    let env = Env::new();
    let dir = env.dir.path();
    // `vpnca` on PATH: the binary under test; `init` and `quickstart` get a cheap KDF unless
    // the page sets one (the 64 MiB default is tested by tests/documented.rs).
    let bin = dir.join(".bin");
    std::fs::create_dir(&bin).expect("mkdir .bin");
    let wrapper = format!(
        "#!/bin/sh\ncase \" $* \" in *\" init \"*|*\" quickstart \"*) case \" $* \" in *--kdf-*) ;; *) exec {exe} \"$@\" --kdf-memory-mib 8 --kdf-time 1 ;; esac ;; esac\nexec {exe} \"$@\"\n",
        exe = sq(env!("CARGO_BIN_EXE_vpnca"))
    );
    std::fs::write(bin.join("vpnca"), wrapper).expect("write the wrapper");
    std::fs::set_permissions(bin.join("vpnca"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the wrapper");
    // `docs-ec2`: the pages' set-ups for the Client VPN double.
    std::os::unix::fs::symlink(root.join("tests/aws/docs-ec2"), bin.join("docs-ec2"))
        .expect("link docs-ec2");

    let mut script = String::from("set -o pipefail\n");
    for (i, c) in cmds.iter().enumerate() {
        let mut body = String::new();
        if let Some((file, content)) = &c.shows_file {
            let _ = writeln!(
                body,
                "[ -e {f} ] || printf '%s' {c} > {f}",
                f = sq(file),
                c = sq(content)
            );
        }
        let _ = writeln!(
            script,
            "{{\n{body}{text}\n}} >\"$DOCS_OUT.{i}\" 2>&1 </dev/null; rc=$?\nif [ \"$rc\" -ne {expect} ]; then echo \"@@FAIL {i} $rc\"; cat \"$DOCS_OUT.{i}\"; exit 1; fi",
            text = c.text,
            expect = c.expect
        );
    }
    std::fs::write(dir.join(".docs-script.sh"), &script).expect("write the script");

    let (moto, _guard) = Moto::get();
    let state = ec2_state(root);
    let ec2 = Ec2Server::with_state(&state);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    c.arg(".docs-script.sh").current_dir(dir);
    c.env("PATH", path)
        .env("HOME", dir)
        .env("VPNCA_PASSPHRASE", PASSPHRASE)
        .env("EP", ENDPOINTS[0])
        .env("VPNCA_REPO", root)
        .env("DOCS_OUT", dir.join(".docs-out"))
        .env("DOCS_EC2_STATE", state.to_string())
        .env(
            "MANPATH",
            format!("{}:", dir.join(".local/share/man").display()),
        )
        .env_remove("VPNCA_PKI")
        // The audit log's user is then `uid N` (the pages show `uid …`).
        .env_remove("USER")
        .env_remove("LOGNAME")
        .env_remove("VPNCA_NEW_PASSPHRASE");
    aws_env(&mut c, Some(moto), Some(&ec2));
    let o = c.output().expect("run bash");
    if o.status.success() {
        compare_outputs(page, &cmds, dir);
        return;
    }
    let out = s(&o.stdout);
    let fail = out
        .lines()
        .find_map(|l| l.strip_prefix("@@FAIL "))
        .unwrap_or_else(|| {
            panic!(
                "{page}: the script failed without a result:\n{out}\n{}",
                s(&o.stderr)
            )
        });
    let (i, rc) = fail.split_once(' ').expect("@@FAIL N RC");
    let c = &cmds[i.parse::<usize>().expect("index")];
    let output = out.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
    panic!(
        "{page}:{}: `{}` exited {rc}, the page expects {}\noutput:\n{output}",
        c.line, c.text, c.expect
    );
}

/// The wildcard of shown output: inside a line it matches any text; a line that is only `…`
/// stands for any number of lines.
const ANY: &str = "…";

/// Whether `actual` is the line `shown`, trailing spaces aside, each `…` in `shown` matching
/// any text (also none).
fn line_matches(shown: &str, actual: &str) -> bool {
    let (shown, actual) = (shown.trim_end(), actual.trim_end());
    let parts: Vec<&str> = shown.split(ANY).collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return shown == actual;
    };
    let Some(rest) = actual.strip_prefix(first) else {
        return false;
    };
    let Some(mut rest) = rest.strip_suffix(last) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The first of the `shown` lines that is not found in `actual` in order (each shown line
/// matched by a later actual line than the one before: a subsequence), or None when all are.
/// Blank shown lines (pages separate commands with them) and `…` lines are not looked for.
fn find_shown<'a>(shown: &'a [(usize, String)], actual: &str) -> Option<&'a (usize, String)> {
    let mut lines = actual.lines();
    shown
        .iter()
        .filter(|(_, l)| !l.trim().is_empty() && l.trim() != ANY)
        .find(|(_, l)| !lines.any(|a| line_matches(l, a)))
}

/// Checks every command's output against the lines its page shows under it; panics naming
/// each command whose output lacks one (`page:line` of the shown line, the line, the output).
fn compare_outputs(page: &str, cmds: &[Cmd], dir: &Path) {
    let mut report = String::new();
    for (i, c) in cmds.iter().enumerate() {
        if c.shown.is_empty() {
            continue;
        }
        let out = std::fs::read(dir.join(format!(".docs-out.{i}"))).expect("a command's output");
        let out = s(&out);
        if let Some((line, shown)) = find_shown(&c.shown, &out) {
            let _ = writeln!(
                report,
                "{page}:{line}: `{}` (line {}) did not print, in this order, the line the page shows:\n  {shown}\nits output:\n{out}",
                c.text, c.line
            );
        }
    }
    assert!(
        report.is_empty(),
        "{page}: output that differs from the page's (`…` matches any text):\n\n{report}"
    );
}

macro_rules! pages {
    ($($name:ident => $page:literal),* $(,)?) => {
        $(#[test] fn $name() { run_page($page); })*
        const PAGES: &[&str] = &[$($page),*];
    };
}

pages! {
    readme => "README.md",
    aws => "docs/aws.md",
    commands_batch => "docs/commands-batch.md",
    commands_certificates => "docs/commands-certificates.md",
    commands_delivery => "docs/commands-delivery.md",
    commands_revocation => "docs/commands-revocation.md",
    commands_store => "docs/commands-store.md",
    commands_templates => "docs/commands-templates.md",
    easy_rsa => "docs/easy-rsa.md",
    profiles => "docs/profiles.md",
}

/// Every page with a shell block is either run above or listed, with its reason, as not run.
#[test]
fn every_page_with_commands_is_covered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec!["README.md".to_owned()];
    for e in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "md") {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            pages.push(format!("docs/{name}"));
        }
    }
    for page in pages {
        let text = std::fs::read_to_string(root.join(&page)).expect("read");
        let runnable = blocks(&text)
            .iter()
            .any(|b| b.no_run.is_none() && b.cmds.iter().any(|c| !is_aws_cli(&c.text)));
        let listed =
            PAGES.contains(&page.as_str()) || NOT_RUN_PAGES.iter().any(|(p, _)| *p == page);
        assert!(
            !runnable || listed,
            "{page} has commands to run: add it to pages! in tests/docs_commands.rs"
        );
    }
}

/// The shown-output convention of docs/testing.md: `…` within a line, `…` lines, blank lines,
/// trailing spaces, order. Fails when: `line_matches` ignores the text after the last `…`
/// (the `until` case), or `find_shown` searches from the start for each line (the order case).
#[test]
fn shown_output_matches_as_documented() {
    assert!(line_matches(
        "Issued client certificate alice (serial …), valid until …",
        "Issued client certificate alice (serial 7B81CF2F), valid until 2029-03-07T21:46:44Z  "
    ));
    assert!(line_matches("…", ""));
    assert!(line_matches("a … b … c", "a x b y b z c"));
    assert!(!line_matches("a … until", "a 1 after"));
    assert!(!line_matches("it is a folder", "it is a directory"));
    assert!(!line_matches("…x…y…", "y x"));
    let shown = |lines: &[&str]| -> Vec<(usize, String)> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i + 1, (*l).to_owned()))
            .collect()
    };
    let out = "one\ntwo\nthree\n";
    assert_eq!(find_shown(&shown(&["one", "…", "", "three"]), out), None);
    assert_eq!(
        find_shown(&shown(&["three", "one"]), out),
        Some(&(2, "one".to_owned()))
    );
    assert_eq!(
        find_shown(&shown(&["two", "two"]), out),
        Some(&(2, "two".to_owned()))
    );
}
