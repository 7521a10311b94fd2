//! `import-easyrsa` (docs/easy-rsa.md): move an easy-rsa PKI into a new vpnca store. The
//! arguments are defined in args.rs.

use anyhow::{Result, bail};
use serde_json::{Value, json};
use vpnca::Store;

use super::EXIT_ERROR;
use super::args::{Cli, ImportEasyrsaArgs};
use super::output::Out;
use super::passphrase::{open_unlocked, read_secret_file};

/// `vpnca import-easyrsa PATH`: check everything first; import all or nothing.
pub(super) fn import_easyrsa(cli: &Cli, out: &Out, args: &ImportEasyrsaArgs) -> Result<u8> {
    let ImportEasyrsaArgs {
        path,
        easyrsa_passphrase_file: pass_file,
        dry_run,
    } = args;
    let pass = pass_file
        .as_ref()
        .map(|f| read_secret_file(f))
        .transpose()?;
    let store = Store::open(&cli.pki)?;
    // Never read the store as easy-rsa's files, nor advise deleting a folder that holds it.
    vpnca::easyrsa::check_apart(&vpnca::easyrsa::find_pki(path)?, &cli.pki)?;
    if let Ok(ca) = store.ca() {
        bail!(
            "this store already has a CA ({}); import-easyrsa needs a new store: `vpnca --pki NEWDIR init`",
            ca.name
        );
    }
    let plan = vpnca::easyrsa::plan(path, pass.as_ref())?;
    for n in &plan.notes {
        errln!("note: {n}");
    }
    for p in &plan.problems {
        errln!("problem: {}: {}", p.object, p.reason);
    }
    let report = |imported: Option<&vpnca::easyrsa::ImportReport>| {
        let mut v = serde_json::to_value(&plan).unwrap_or_default();
        v["dry_run"] = json!(dry_run);
        v["imported"] = json!(imported.is_some());
        v["crl"] = imported.map_or(
            Value::Null,
            |r| json!({"number": r.crl.number, "entries": r.crl.entries}),
        );
        v
    };
    let human = |imported: bool| {
        if let Some(ca) = &plan.ca {
            outln!("CA {} (serial {})", ca.name, ca.serial.hex());
        }
        for e in &plan.certificates {
            outln!(
                "{:<7} {:<32} {:<34} {:<10} {}",
                e.kind.as_str(),
                e.name,
                e.serial.hex(),
                serde_json::to_value(e.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                if e.key { "key" } else { "no key" }
            );
        }
        if !imported {
            outln!(
                "{} certificate(s); {}",
                plan.certificates.len(),
                if plan.problems.is_empty() {
                    "no problem found"
                } else {
                    "problems above: nothing can be imported"
                }
            );
        }
    };
    if !plan.problems.is_empty() {
        let msg = format!(
            "the easy-rsa PKI at {} has {} problem(s) (listed above); nothing was imported",
            plan.source.display(),
            plan.problems.len()
        );
        if out.json {
            // One document: the report, whose `problems` say why; the message on stderr.
            outln!("{}", report(None));
            errln!("error: {msg}");
            return Ok(EXIT_ERROR);
        }
        human(false);
        bail!(msg);
    }
    if *dry_run {
        out.doc(&report(None), || human(false));
        return Ok(0);
    }
    drop(store);
    let store = open_unlocked(cli)?;
    let rep = store.import_easyrsa(&plan)?;
    out.changed(&store, report(Some(&rep)), || {
        human(true);
        outln!(
            "imported {} certificate(s) ({} revoked) and {} key(s) into {}; wrote CRL #{} ({} entries) to {}",
            rep.certificates,
            rep.revoked,
            rep.keys,
            cli.pki.display(),
            rep.crl.number,
            rep.crl.entries,
            store.crl_path().display()
        );
        outln!("Next: check `vpnca status` and `vpnca list`, upload the new CRL where the old one went,");
        outln!(
            "then delete or archive {} — it holds the plain-text easy-rsa keys.",
            plan.source.display()
        );
    });
    Ok(0)
}
