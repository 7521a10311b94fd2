//! `vpnca template list|show|adopt|reset` (docs/commands-templates.md): the certificate
//! profiles a store uses. A profile file in `<pki>/templates` is only ever used once it is
//! adopted into the store's authenticated state; this module shows and adopts them.

use anyhow::Result;
use serde_json::json;
use vpnca::Store;
use vpnca::profile::{BUILTIN, Profile, TemplateChange};

use super::args::{Cli, TemplateCommand};
use super::output::{Out, UNVERIFIED, sh, warn};
use super::passphrase::open_unlocked;

/// `vpnca template …`: one function per subcommand.
pub(super) fn template(cli: &Cli, out: &Out, command: &TemplateCommand) -> Result<u8> {
    match command {
        TemplateCommand::List => list(cli, out),
        TemplateCommand::Show { name } => show(cli, out, &name.to_ascii_lowercase()),
        TemplateCommand::Adopt { name, file } => {
            adopt(cli, out, &name.to_ascii_lowercase(), file.as_deref())
        }
        TemplateCommand::Reset { name } => reset(cli, out, &name.to_ascii_lowercase()),
    }
}

/// What `<pki>/templates/NAME.toml` is to the store: `None` (no file), `adopted`,
/// `differs` (from the adopted text) or `not-adopted`.
fn file_status(store: &Store, name: &str, adopted: Option<&str>) -> Result<Option<&'static str>> {
    Ok(
        Profile::read_override(store.dir(), name)?.map(|f| match adopted {
            Some(a) if a == f => "adopted",
            Some(_) => "differs",
            None => "not-adopted",
        }),
    )
}

/// `vpnca template list`: works without the passphrase, like `list`.
fn list(cli: &Cli, out: &Out) -> Result<u8> {
    let store = Store::open(&cli.pki)?;
    if store.reads_unverified()? {
        warn(UNVERIFIED);
    }
    if !out.json {
        outln!("{:<14} {:<31} FILE", "PROFILE", "IN EFFECT");
    }
    for (name, _) in BUILTIN {
        let (text, sha) = store.template_text(name)?;
        let status = file_status(&store, name, sha.as_ref().map(|_| text.as_str()))?;
        let path = Profile::override_path(store.dir(), name);
        if out.json {
            outln!(
                "{}",
                json!({
                    "name": name,
                    "in_effect": if sha.is_some() { "adopted" } else { "built-in" },
                    "sha256": sha,
                    "file": status.map(|_| path.display().to_string()),
                    "file_status": status,
                })
            );
        } else {
            let effect = match &sha {
                Some(s) => format!("adopted sha256:{}", &s[..16.min(s.len())]),
                None => "built-in".to_string(),
            };
            let file = match status {
                None => "-".to_string(),
                Some("adopted") => format!("{} (adopted)", path.display()),
                Some("differs") => format!(
                    "{} (differs from the adopted text: issuing stops)",
                    path.display()
                ),
                Some(_) => format!("{} (not adopted: issuing stops)", path.display()),
            };
            outln!("{name:<14} {effect:<31} {file}");
        }
    }
    Ok(0)
}

/// `vpnca template show NAME`: the TOML in effect, as it is (so that it can be redirected into
/// `<pki>/templates/NAME.toml` and edited).
fn show(cli: &Cli, out: &Out, name: &str) -> Result<u8> {
    let store = Store::open(&cli.pki)?;
    if store.reads_unverified()? {
        warn(UNVERIFIED);
    }
    let (text, sha) = store.template_text(name)?;
    let status = file_status(&store, name, sha.as_ref().map(|_| text.as_str()))?;
    out.doc(
        &json!({
            "name": name,
            "in_effect": if sha.is_some() { "adopted" } else { "built-in" },
            "sha256": sha,
            "text": text,
            "file_status": status,
        }),
        || outp!("{text}"),
    );
    if let Some(s) = status.filter(|s| *s != "adopted") {
        warn(&format!(
            "{} is {}: issuing with the {name} profile stops until it is adopted (`vpnca template adopt {name}`) or removed",
            Profile::override_path(store.dir(), name).display(),
            if s == "differs" {
                "not the adopted text"
            } else {
                "not adopted"
            }
        ));
    }
    Ok(0)
}

/// `vpnca template adopt NAME [--file FILE]`.
fn adopt(cli: &Cli, out: &Out, name: &str, file: Option<&std::path::Path>) -> Result<u8> {
    let mut store = Store::open(&cli.pki)?;
    let default_path = Profile::override_path(store.dir(), name);
    let path = file
        .map(|f| f.to_path_buf())
        .unwrap_or(default_path.clone());
    // Read and checked before the passphrase is asked for: a bad file costs no prompt.
    let text = match file {
        Some(f) => {
            let bytes = vpnca::fsutil::read_bounded_or_pipe(f, &vpnca::fsutil::InputLimit::TEMPLATE)?;
            String::from_utf8(bytes).map_err(|_| vpnca::Error::Template {
                source_name: f.display().to_string(),
                reason: "it is not UTF-8 text".into(),
            })?
        }
        None => Profile::read_override(store.dir(), name)?.ok_or_else(|| {
            vpnca::Error::Template {
                source_name: default_path.display().to_string(),
                reason: format!(
                    "there is no such file to adopt: write the profile there (`vpnca template show {name}` prints the one in effect) or name it with --file"
                ),
            }
        })?,
    };
    let source = path.display().to_string();
    Profile::parse_named(name, &text, &source)?;
    drop(store);
    store = open_unlocked(cli)?;
    let change = store.adopt_template(name, &text, &source)?;
    // A different file left in `<pki>/templates` would stop issuing: say so now.
    if file.is_some()
        && let Some(f) = Profile::read_override(store.dir(), name)?
        && f != text
    {
        warn(&format!(
            "{} differs from what was adopted: issuing with the {name} profile stops until it is removed or adopted",
            default_path.display()
        ));
    }
    print_change(out, &store, &change, Some(&source));
    Ok(0)
}

/// `vpnca template reset NAME`.
fn reset(cli: &Cli, out: &Out, name: &str) -> Result<u8> {
    let store = open_unlocked(cli)?;
    let change = store.reset_template(name)?;
    let path = Profile::override_path(store.dir(), name);
    if path.symlink_metadata().is_ok() {
        warn(&format!(
            "{} is still there: issuing with the {name} profile stops until it is removed (or adopted again)",
            path.display()
        ));
    }
    print_change(out, &store, &change, None);
    Ok(0)
}

fn print_change(out: &Out, store: &Store, change: &TemplateChange, source: Option<&str>) {
    let p = &change.profile;
    let mut v = serde_json::to_value(change).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("source".into(), json!(source));
    }
    out.changed(store, v, || {
        let name = &change.name;
        match (&change.sha256, change.changed) {
            (Some(sha), true) => outln!(
                "Adopted {} as the {name} profile (sha256 {sha}).",
                source.unwrap_or("?")
            ),
            (Some(sha), false) => {
                outln!("The {name} profile is already this text (sha256 {sha}); nothing changed.")
            }
            (None, true) => outln!("The {name} profile is the built-in one again."),
            (None, false) => outln!("The {name} profile is built-in already; nothing changed."),
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        outln!(
            "  {}: ca {}, {} days, keyUsage {}, extendedKeyUsage {}, SANs from the user: {}{}",
            p.description,
            p.ca,
            p.days,
            list(&p.key_usage),
            list(&p.extended_key_usage),
            list(&p.san.allow),
            if p.san.dns_from_name {
                " (and the name as a DNS SAN)"
            } else {
                ""
            }
        );
        if change.changed && change.sha256.is_some() {
            outln!(
                "Certificates issued from now on with this profile follow it; `vpnca template reset {}` goes back to the built-in one.",
                sh(name)
            );
        }
    });
}
