//! Store commands (docs/commands-store.md): `init`, `passwd`, `verify`, `status`, `log`,
//! `quickstart`. `status --aws` asks AWS through aws.rs; the arguments are defined in args.rs.

use std::path::Path;

use anyhow::Result;
use serde_json::json;
use vpnca::{CertKind, CrlOptions, IssueRequest, KeyAlgorithm, Store, Validity};

use super::EXIT_PROBLEM;
use super::args::{Cli, InitArgs, LogArgs, PasswdArgs, QuickstartArgs, StatusArgs, VerifyArgs};
#[cfg(feature = "aws")]
use super::aws;
use super::options::kdf;
use super::output::{Out, crl_json, printable, record_json, sh};
use super::passphrase::{open_unlocked, passphrase, store_passphrase, use_checkpoint};

/// `vpnca init`: a new, empty store.
pub(super) fn init(cli: &Cli, out: &Out, args: &InitArgs) -> Result<u8> {
    let InitArgs {
        kdf_memory_mib,
        kdf_time,
        allow_weak_passphrase,
        extra,
    } = args;
    if !extra.is_empty() {
        errln!("note: ignoring easy-rsa argument(s) {extra:?}");
    }
    let k = kdf(*kdf_memory_mib, *kdf_time)?;
    // Before the passphrase is asked for: an existing store, an easy-rsa PKI or any other
    // content is refused.
    Store::check_new_dir(&cli.pki)?;
    if let Some(f) = &cli.checkpoint {
        Store::check_outside_checkpoint(&cli.pki, f)?;
    }
    let pass = store_passphrase(cli, true)?;
    check_strength(&pass, *allow_weak_passphrase)?;
    let mut store = Store::init(&cli.pki, &pass, k)?;
    use_checkpoint(cli, &mut store)?;
    store.start_outside_checkpoint()?;
    out.changed(&store, json!({"pki": cli.pki, "kdf": k}), || {
        outln!(
            "Initialised an encrypted vpnca store in {}",
            cli.pki.display()
        );
        outln!("Next: vpnca ca --cn {}", sh("My VPN CA"));
    });
    Ok(0)
}

/// Refuses a weak new store passphrase unless `allow_weak` (`--allow-weak-passphrase`); the
/// error names the flag. The length rule ([`vpnca::Passphrase::check_new`]) holds either way.
fn check_strength(pass: &vpnca::Passphrase, allow_weak: bool) -> Result<()> {
    pass.check_new()?;
    if !allow_weak && let Err(e) = pass.check_strength() {
        anyhow::bail!(
            "{e}. Choose a stronger passphrase, or pass \
             --allow-weak-passphrase to use this one anyway"
        );
    }
    Ok(())
}

/// `vpnca verify --ca-cert FILE`: the whole state checked without the passphrase, against a
/// CA certificate the auditor holds.
fn verify_public(cli: &Cli, out: &Out, file: &Path, anchor: Option<&str>) -> Result<u8> {
    let store = Store::open(&cli.pki)?;
    let bytes = vpnca::fsutil::read_bounded_or_pipe(file, &vpnca::fsutil::InputLimit::CERTIFICATE)?;
    // The first certificate: `ca.crt` of a sub-CA holds its parents after it.
    let der = vpnca::pem::decode_certificates(&bytes, &file.display().to_string())?
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut rep = store.verify_public(&der)?;
    let mut warnings = Vec::new();
    if let Some(anchor) = anchor {
        match store.check_anchor(anchor)? {
            Ok(None) => {}
            Ok(Some(note)) => warnings.push(note),
            Err(problem) => rep.problems.push(problem),
        }
    }
    let mut v = serde_json::to_value(&rep)?;
    if let Some(m) = v.as_object_mut() {
        m.insert("warnings".into(), serde_json::json!(warnings));
    }
    out.doc(&v, || {
        outln!(
            "checked without the passphrase, against the CA certificate {} (sha256 {}): {} certificates",
            file.display(),
            rep.ca_sha256,
            rep.certificates
        );
        if let Some(h) = &rep.state_head {
            outln!("state head {h}, signed by the state-signing key this CA certified");
        }
        for p in &rep.problems {
            outln!("PROBLEM: {}", printable(p));
        }
        for w in &warnings {
            outln!("WARNING: {}", printable(w));
        }
        if rep.problems.is_empty() {
            outln!(
                "OK: the store's state is intact (record MACs, keys and the audit chain need the passphrase: `vpnca verify`)"
            );
        }
    });
    Ok(if rep.problems.is_empty() {
        0
    } else {
        EXIT_PROBLEM
    })
}

/// `vpnca passwd`: a new store passphrase, and new Argon2id parameters when given.
pub(super) fn passwd(cli: &Cli, out: &Out, args: &PasswdArgs) -> Result<u8> {
    let PasswdArgs {
        new_passphrase_file,
        kdf_memory_mib,
        kdf_time,
        allow_weak_passphrase,
        rekey,
    } = args;
    let mut store = open_unlocked(cli)?;
    let k = match (kdf_memory_mib, kdf_time) {
        (None, None) => None,
        _ => {
            let cur = store.kdf_params()?;
            let mut k = kdf(*kdf_memory_mib, *kdf_time)?;
            if kdf_memory_mib.is_none() {
                k.m_kib = cur.m_kib;
            }
            if kdf_time.is_none() {
                k.t = cur.t;
            }
            Some(k)
        }
    };
    let new = passphrase(
        new_passphrase_file,
        "VPNCA_NEW_PASSPHRASE",
        true,
        "new store passphrase",
    )?;
    check_strength(&new, *allow_weak_passphrase)?;
    if !rekey {
        store.change_passphrase(&new, k)?;
        out.changed(&store, json!({"ok": true}), || {
            outln!("Passphrase changed.")
        });
        return Ok(0);
    }
    let report = store.rekey(&new, k)?;
    out.changed(&store, json!({"ok": true, "rekey": report}), || {
        outln!(
            "Passphrase changed and the store re-keyed: a new data key, {} private key(s) re-encrypted, {} record(s) and the state re-authenticated{}.",
            report.keys_reencrypted,
            report.records,
            if report.state_key_certified {
                ", a new state-signing key certified by the CA"
            } else {
                ""
            }
        );
        outln!(
            "The old passphrase, old copies of the header and the old data key no longer open this store. Keys someone copied before the rekey stay exposed: revoke and re-issue those (docs/commands-store.md#passwd---rekey)."
        )
    });
    Ok(0)
}

/// `vpnca verify`: check the whole store; with `--accept-restore`, accept a database put back
/// from an older copy.
pub(super) fn verify(cli: &Cli, out: &Out, args: &VerifyArgs) -> Result<u8> {
    let VerifyArgs {
        accept_restore,
        head,
        ca_cert,
    } = args;
    if let Some(file) = ca_cert {
        return verify_public(cli, out, file, head.as_deref());
    }
    let store = open_unlocked(cli)?;
    let mut rep = store.verify()?;
    if let Some(anchor) = head {
        match store.check_anchor(anchor)? {
            Ok(None) => {}
            Ok(Some(note)) => rep.warnings.push(note),
            Err(problem) => rep.problems.push(problem),
        }
    }
    let print_report = |rep: &vpnca::VerifyReport| {
        outln!(
            "checked {} certificates, {} keys, {} audit entries",
            rep.certificates,
            rep.keys,
            rep.audit_entries
        );
        if let Some(h) = &rep.state_head {
            outln!(
                "state head {h} (note it elsewhere; `vpnca verify --head {h}` checks against it)"
            );
        }
        if rep.state_key_certified {
            outln!(
                "certified the store's state-signing key: `vpnca verify --ca-cert ca.crt` and `status` now check the store without the passphrase"
            );
        }
        for r in &rep.repaired {
            outln!("repaired public mirror {}", printable(r));
        }
        for p in &rep.problems {
            // One line each: a newline a stored name brought into the message is escaped.
            outln!("PROBLEM: {}", printable(p));
        }
        for w in &rep.warnings {
            outln!("WARNING: {}", printable(w));
        }
        if rep.problems.is_empty() {
            outln!("OK: the store is intact");
        }
    };
    let others = rep.problems.len() - rep.rollback.len();
    if !*accept_restore || rep.rollback.is_empty() || others > 0 {
        out.doc(&serde_json::to_value(&rep)?, || {
            print_report(&rep);
            if *accept_restore && rep.rollback.is_empty() {
                outln!("nothing to accept: the database is not older than its checkpoint or crl.pem");
            } else if *accept_restore {
                outln!("NOT ACCEPTED: verify found {others} other problem(s); a restore is accepted only into an otherwise intact store");
            }
        });
        return Ok(if rep.problems.is_empty() {
            0
        } else {
            EXIT_PROBLEM
        });
    }
    let restore = store.accept_restore()?.ok_or_else(|| {
        anyhow::anyhow!("the store changed while it was being verified; run the command again")
    })?;
    let after = store.verify()?;
    let attention = !after.problems.is_empty() || !restore.lost_revocations.is_empty();
    out.changed(
        &store,
        serde_json::json!({"restore": restore, "verify": after}),
        || {
            for p in &rep.rollback {
                outln!("accepted: {}", printable(p));
            }
            for r in &restore.revoked_again {
                outln!(
                    "revoked again: {} (serial {}), revoked in the newer crl.pem",
                    printable(&r.name),
                    r.serial
                );
            }
            for s in &restore.lost_revocations {
                outln!("LOST REVOCATION: serial {s} is revoked in the newer crl.pem but unknown to this database; no CRL of this store can list it (its certificate stays valid until it expires: see docs/security.md)");
            }
            for f in &restore.unknown_certificates {
                outln!("unknown certificate: {f} was issued by this CA after the copy was made; the store cannot revoke it");
            }
            if let Some(c) = &restore.crl {
                outln!(
                    "wrote CRL number {} with {} entries: upload it wherever CRLs go (vpnca clientvpn push-crl)",
                    c.number, c.entries
                );
            }
            print_report(&after);
        },
    );
    Ok(if attention { EXIT_PROBLEM } else { 0 })
}

/// `vpnca status`: what needs attention (exit 1 if anything does); with `--aws`, also in AWS.
pub(super) fn status(cli: &Cli, out: &Out, args: &StatusArgs) -> Result<u8> {
    let StatusArgs {
        warn_days,
        #[cfg(feature = "aws")]
            aws: with_aws,
        #[cfg(feature = "aws")]
        aws_opts,
    } = args;
    let store = Store::open(&cli.pki)?;
    let rep = store.status(*warn_days)?;
    #[cfg(feature = "aws")]
    if *with_aws {
        let local = serde_json::to_value(&rep)?;
        if !out.json {
            print_status(&rep, *warn_days);
        }
        let remote = aws::status(&store, out, *warn_days, aws_opts)?;
        if out.json {
            outln!("{}", json!({"local": local, "aws": remote.json}));
        } else if let Some(f) = remote.json["findings"].as_array() {
            for f in f {
                outln!(
                    "ATTENTION: {}",
                    printable(f["message"].as_str().unwrap_or_default())
                );
            }
        }
        if remote.failed {
            // The report is printed in full; what AWS did not answer is in its findings.
            errln!(
                "error: an AWS call failed, so part of AWS was not checked: its `call-failed` finding says what, and why"
            );
            return Ok(super::EXIT_AWS);
        }
        return Ok(if rep.findings.is_empty() && !remote.attention {
            0
        } else {
            EXIT_PROBLEM
        });
    }
    out.doc(&serde_json::to_value(&rep)?, || {
        print_status(&rep, *warn_days)
    });
    Ok(if rep.findings.is_empty() {
        0
    } else {
        EXIT_PROBLEM
    })
}

/// The text form of the `status` report.
fn print_status(rep: &vpnca::StatusReport, warn_days: u32) {
    match (&rep.ca, rep.ca_not_after) {
        (Some(ca), Some(t)) => outln!("CA:   {} (until {})", printable(ca), vpnca::fmt_time(t)),
        (Some(ca), None) => outln!("CA:   {}", printable(ca)),
        (None, _) => outln!("CA:   none"),
    }
    match (rep.crl_number, rep.crl_next_update) {
        (Some(n), Some(t)) => outln!("CRL:  #{n}, nextUpdate {}", vpnca::fmt_time(t)),
        _ => outln!("CRL:  none"),
    }
    if rep.counts.is_empty() {
        outln!("certificates: none");
    } else {
        outln!(
            "certificates: {}",
            rep.counts
                .iter()
                .map(|(k, v)| format!("{v} {}", printable(k)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(h) = &rep.state_head {
        outln!("state: checked against the signed head {h}");
    }
    if rep.findings.is_empty() {
        outln!("OK: nothing needs attention within {warn_days} days");
    }
    for f in &rep.findings {
        outln!("ATTENTION: {}", printable(&f.message));
    }
}

/// `vpnca log`: the audit log.
pub(super) fn log(cli: &Cli, out: &Out, args: &LogArgs) -> Result<u8> {
    let LogArgs { syslog, no_syslog } = args;
    if syslog.is_some() || *no_syslog {
        let store = open_unlocked(cli)?;
        store.set_syslog(syslog.as_deref())?;
        out.changed(&store, json!({ "syslog": syslog }), || match syslog {
            Some(p) => outln!(
                "Each new audit entry now also goes to the syslog socket {} after its commit.",
                p.display()
            ),
            None => outln!("Audit entries are no longer sent to syslog."),
        });
        return Ok(0);
    }
    let store = Store::open(&cli.pki)?;
    // Checked against the signed state head, without the passphrase: an edited, added or
    // removed entry stops here (exit 2).
    let (entries, check) = store.audit_log_checked()?;
    // Silent only for a new store's lone `init` entry (no CA yet, so no state-signing key):
    // any longer log without a signed head to check it against says so (with every record
    // deleted as well, `reads_unverified` alone would not).
    if let vpnca::store::AuditCheck::Unverified(why) = check
        && (entries.len() > 1 || store.public_state()?.is_some() || store.reads_unverified()?)
    {
        super::output::warn(&format!("the audit log is shown unverified: {why}"));
    }
    for e in entries {
        if out.json {
            outln!("{}", serde_json::to_value(&e)?);
        } else {
            outln!(
                "{:>5} {} {:<9} {:<24} {} {}",
                e.seq,
                vpnca::fmt_time(e.time),
                printable(&e.action),
                printable(&e.name),
                printable(&e.serial),
                printable(&e.user)
            );
        }
    }
    Ok(0)
}

/// `vpnca quickstart`: init, CA, server, clients and CRL, reusing what the store already has.
pub(super) fn quickstart(cli: &Cli, out: &Out, args: &QuickstartArgs) -> Result<u8> {
    let QuickstartArgs {
        server,
        client: clients,
        cn,
        kdf_memory_mib,
        kdf_time,
        allow_weak_passphrase,
    } = args;
    let k = kdf(*kdf_memory_mib, *kdf_time)?;
    let server = server.as_str();
    vpnca::name::validate_dns_name(server)?;
    for c in clients {
        vpnca::name::normalize_name(c)?;
    }
    // An existing store is unlocked (one prompt); a new one asks for a confirmed passphrase.
    let store = match Store::open(&cli.pki) {
        Ok(mut s) => {
            use_checkpoint(cli, &mut s)?;
            let pass = store_passphrase(cli, false)?;
            s.unlock(&pass)?;
            s
        }
        Err(vpnca::Error::NotInitialized { .. }) => {
            Store::check_new_dir(&cli.pki)?;
            if let Some(f) = &cli.checkpoint {
                Store::check_outside_checkpoint(&cli.pki, f)?;
            }
            let pass = store_passphrase(cli, true)?;
            check_strength(&pass, *allow_weak_passphrase)?;
            let mut s = Store::init(&cli.pki, &pass, k)?;
            use_checkpoint(cli, &mut s)?;
            s
        }
        Err(e) => return Err(e.into()),
    };
    let ca = match store.ca() {
        Ok(ca) => ca,
        Err(vpnca::Error::NoCa) => store.create_root_ca(
            cn.as_deref().unwrap_or("vpnca CA"),
            KeyAlgorithm::Rsa2048,
            Validity::Default,
        )?,
        Err(e) => return Err(e.into()),
    };
    let mut issued = Vec::new();
    for (name, kind) in std::iter::once((server, CertKind::Server))
        .chain(clients.iter().map(|c| (c.as_str(), CertKind::Client)))
    {
        let r = match store.live(name)? {
            Some(r) if r.kind == kind => r,
            _ => store.issue(&IssueRequest::new(name, kind))?,
        };
        issued.push(r);
    }
    let crl = store.generate_crl(&CrlOptions::from_store(&store)?)?;
    super::revocation::crl_warnings(&crl);
    let v = json!({"pki": cli.pki, "ca": record_json(&ca), "certificates": issued.iter().map(record_json).collect::<Vec<_>>(), "crl": crl_json(&crl, &store.crl_path())});
    out.changed(&store, v, || {
        let pki = cli.pki.display();
        outln!("PKI ready in {pki} (every private key is encrypted in {pki}/vpnca.db)");
        outln!("  CA:      {} -> {pki}/ca.crt", printable(&ca.name));
        for r in &issued {
            outln!(
                "  {:<7}  {} -> {}",
                r.kind.as_str(),
                printable(&r.name),
                store.issued_path(&r.name).display()
            );
        }
        outln!(
            "  CRL:     #{} -> {pki}/crl.pem (nextUpdate {})",
            crl.number,
            vpnca::fmt_time(crl.next_update)
        );
        outln!();
        outln!("Next steps:");
        next_steps(server, &pki.to_string());
    });
    Ok(0)
}

/// The quickstart's next steps, AWS Client VPN first: the route on which no key file is ever
/// written (docs/commands-store.md#quickstart).
#[cfg(feature = "aws")]
fn next_steps(server: &str, _pki: &str) {
    let sh = vpnca::shell::quote;
    outln!("  1. Server certificate into ACM (its key goes from the store to ACM in memory only):");
    outln!(
        "     vpnca acm import --server {}   (prints the ARN; after `vpnca renew`, run it again: same ARN)",
        sh(server)
    );
    outln!(
        "  2. Create the Client VPN endpoint with that ARN as server certificate and client root chain (mutual authentication)."
    );
    outln!(
        "  3. Per user: vpnca clientvpn profile NAME --endpoint cvpn-endpoint-…   (writes NAME.ovpn, mode 0600)"
    );
    outln!(
        "  4. Offboarding: vpnca revoke NAME, then vpnca clientvpn push-crl --endpoint cvpn-endpoint-…"
    );
    outln!("  5. Monitoring: vpnca status --aws (exit 1 when something needs attention).");
    outln!("  Without AWS access from here: docs/aws.md, \"Without the aws feature, or by hand\".");
}

/// The quickstart's next steps by hand (a vpnca built without the `aws` feature).
#[cfg(not(feature = "aws"))]
fn next_steps(server: &str, pki: &str) {
    let sh = vpnca::shell::quote;
    outln!(
        "  1. Server certificate and key for ACM:  vpnca export {} --out ./acm --key",
        sh(server)
    );
    outln!(
        "     aws acm import-certificate --certificate {} --private-key {} --certificate-chain fileb://acm/ca.crt",
        sh(&format!("fileb://acm/{server}.crt")),
        sh(&format!("fileb://acm/{server}.key"))
    );
    outln!("     then delete {}", sh(&format!("./acm/{server}.key")));
    outln!(
        "  2. Create the Client VPN endpoint with that certificate (mutual authentication, client root chain = the same ARN)."
    );
    outln!("  3. Per user: vpnca export NAME --out ./NAME --key   (then build the .ovpn profile)");
    outln!("  4. Offboarding: vpnca revoke NAME, then upload {pki}/crl.pem to the endpoint.");
    outln!("  5. Monitoring: vpnca status (exit 1 when something needs attention).");
}
