//! AWS (docs/aws.md): `vpnca acm …`, `vpnca clientvpn …` and `status --aws`: argument checks,
//! passphrases and printing around vpnca::aws. The rest of `status` is in store.rs.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;

use super::args::{AcmCommand, AwsOpts, Cli, ClientVpnCommand};
use super::output::{Out, sh, warn, with_head};
use super::passphrase::{open_unlocked, read_new_secret_file};
use super::{EXIT_AWS, EXIT_ERROR};
use vpnca::Store;
use vpnca::aws::acm::{ArnTarget, ImportOptions, parse_tag};
use vpnca::aws::clientvpn::{check_endpoint_id, crl_for_push, crl_needs_regeneration};
use vpnca::aws::{Aws, AwsOptions, ImportRole};

fn connect(o: &AwsOpts) -> Result<Aws> {
    Ok(Aws::connect(&AwsOptions {
        profile: o.aws_profile.clone(),
        region: o.region.clone(),
        endpoint_url: o.endpoint_url.clone(),
    })?)
}

pub(super) fn acm(cli: &Cli, out: &Out, cmd: &AcmCommand) -> Result<u8> {
    match cmd {
        AcmCommand::Import {
            server,
            client,
            arn,
            new,
            tags,
            force,
            aws,
        } => {
            let (role, name) = match (server, client) {
                (Some(n), None) => (ImportRole::Server, n.clone()),
                (None, Some(n)) => (ImportRole::Client, n.clone()),
                _ => bail!("give --server NAME or --client NAME"),
            };
            let tags = tags
                .iter()
                .map(|t| parse_tag(t))
                .collect::<vpnca::Result<Vec<_>>>()?;
            let target = match (arn, new) {
                (Some(a), _) => ArnTarget::Explicit(a.clone()),
                (None, true) => ArnTarget::New,
                (None, false) => ArnTarget::Recorded,
            };
            // Fail on configuration before asking for the passphrase.
            let store = Store::open(&cli.pki)?;
            if store.live(&name)?.is_none() {
                bail!(vpnca::Error::NotFound {
                    what: format!("a valid certificate named {}", sh(&name))
                });
            }
            let aws = connect(aws)?;
            drop(store);
            let store = open_unlocked(cli)?;
            let rep = aws.acm_import(
                &store,
                &ImportOptions {
                    role,
                    name,
                    target,
                    tags,
                    force: *force,
                },
            )?;
            for w in &rep.warnings {
                warn(w);
            }
            out.changed(&store, serde_json::to_value(&rep)?, || {
                outln!("{}", rep.arn);
                if rep.reimported {
                    errln!(
                        "re-imported {} {} (serial {}{}) into the same ARN: endpoints using it need no change",
                        rep.role.as_str(),
                        rep.name,
                        rep.serial,
                        rep.previous_serial
                            .as_deref()
                            .map(|p| format!(", was {p}"))
                            .unwrap_or_default()
                    );
                } else {
                    errln!(
                        "imported {} {} (serial {}) into ACM in {}",
                        rep.role.as_str(),
                        rep.name,
                        rep.serial,
                        rep.region
                    );
                }
            });
            Ok(0)
        }
        AcmCommand::List => {
            let store = Store::open(&cli.pki)?;
            let imports = store.acm_imports()?;
            let endpoints = store.known_endpoints()?;
            out.doc(&json!({"imports": imports, "endpoints": endpoints}), || {
                if imports.is_empty() {
                    outln!("no ACM imports recorded");
                }
                for i in &imports {
                    outln!(
                        "{:<7} {:<28} serial {:<34} {}  {}",
                        i.role.as_str(),
                        i.name,
                        i.serial,
                        vpnca::fmt_time(i.imported_at),
                        i.arn
                    );
                }
                for e in &endpoints {
                    outln!(
                        "endpoint {} ({}): CRL #{} pushed {}",
                        e.id,
                        e.region,
                        e.crl_number,
                        vpnca::fmt_time(e.pushed_at)
                    );
                }
            });
            Ok(0)
        }
    }
}

pub(super) fn clientvpn(cli: &Cli, out: &Out, cmd: &ClientVpnCommand) -> Result<u8> {
    match cmd {
        ClientVpnCommand::PushCrl {
            endpoint,
            all,
            dry_run,
            aws,
        } => push_crl(cli, out, endpoint, *all, *dry_run, aws),
        ClientVpnCommand::Profile {
            name,
            endpoint,
            out: out_file,
            random_hostname_prefix,
            allow_directive,
            allow_foreign_ca,
            key_passphrase_file,
            aws,
        } => {
            check_endpoint_id(endpoint)?;
            let policy = vpnca::ovpn::DirectivePolicy::new(allow_directive, *allow_foreign_ca)?;
            let key_pass = key_passphrase_file
                .as_ref()
                .map(|f| read_new_secret_file(f))
                .transpose()?;
            let path = out_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{name}.ovpn")));
            // Before AWS is asked and the store unlocked; created new when written.
            vpnca::fsutil::check_output(&path, vpnca::fsutil::Output::NewWithDirs)?;
            let store = Store::open(&cli.pki)?;
            store.current(name)?;
            let aws = connect(aws)?;
            drop(store);
            let store = open_unlocked(cli)?;
            let rec = store.current(name)?;
            let rep = aws.write_endpoint_profile(
                &store,
                &rec,
                endpoint,
                &policy,
                *random_hostname_prefix,
                key_pass.as_ref(),
                &path,
            )?;
            for w in &rep.warnings {
                warn(w);
            }
            out.changed(&store, serde_json::to_value(&rep)?, || {
                outln!(
                    "wrote {} (mode 0600): {}'s certificate and {} key inline, for {endpoint}",
                    rep.path.display(),
                    rep.name,
                    if rep.key_encrypted { "encrypted" } else { "UNENCRYPTED" }
                );
                outln!("Hand it to the user over a private channel, then delete it (see docs/commands-delivery.md).");
            });
            Ok(0)
        }
    }
}

fn push_crl(
    cli: &Cli,
    out: &Out,
    endpoints: &[String],
    all: bool,
    dry_run: bool,
    aws_opts: &AwsOpts,
) -> Result<u8> {
    for e in endpoints {
        check_endpoint_id(e)?;
    }
    let store = Store::open(&cli.pki)?;
    store.ca()?;
    // The endpoint records (proven against the signed head) before any AWS call: the push
    // ends by recording one, and a deleted or replayed record must stop it before the upload.
    store.known_endpoints()?;
    let aws = connect(aws_opts)?;
    let mut skipped = Vec::new();
    let targets: Vec<String> = if all {
        let mut t = Vec::new();
        for c in aws.find_endpoints(&store)? {
            if c.selected {
                t.push(c.endpoint.id.clone());
            } else {
                skipped.push(json!({"endpoint": c.endpoint.id, "reason": c.reason}));
                warn(&format!("skipping {}: {}", c.endpoint.id, c.reason));
            }
        }
        t
    } else {
        // Each endpoint once, in the order given.
        let mut t: Vec<String> = Vec::new();
        for e in endpoints {
            if !t.contains(e) {
                t.push(e.clone());
            }
        }
        t
    };
    let regenerate = crl_needs_regeneration(&store)?;
    if dry_run {
        let latest = store.latest_crl()?;
        let doc = json!({
            "dry_run": true,
            "region": aws.region(),
            "endpoints": targets,
            "skipped": skipped,
            "crl": latest.as_ref().map(|c| json!({"number": c.number, "entries": c.entries, "next_update": vpnca::fmt_time(c.next_update)})),
            "regenerate": regenerate,
        });
        out.doc(&doc, || {
            match (&regenerate, &latest) {
                (Some(why), _) => outln!("would first make a new CRL: {why}"),
                (None, Some(c)) => outln!(
                    "would send CRL #{} ({} entries, nextUpdate {})",
                    c.number,
                    c.entries,
                    vpnca::fmt_time(c.next_update)
                ),
                (None, None) => {}
            }
            if targets.is_empty() {
                outln!("to no endpoint (none in {} uses this PKI)", aws.region());
            }
            for t in &targets {
                outln!("to {t} in {}", aws.region());
            }
        });
        return Ok(0);
    }
    if targets.is_empty() {
        if skipped.is_empty() {
            bail!(
                "no Client VPN endpoint in {} uses a certificate this store imported (`vpnca acm list`); name one with --endpoint",
                aws.region()
            );
        }
        bail!(
            "no Client VPN endpoint in {} takes this PKI's CRL (the ones using its certificates were skipped, see above)",
            aws.region()
        );
    }
    // What can fail without changing anything fails now: credentials, region, endpoints that
    // do not exist, an endpoint holding a newer CRL of this CA. Then the new CRL (if one is
    // needed) is committed, and only then uploaded: an upload that fails after that leaves
    // the newer CRL in the store (docs/aws.md), never a CRL the store does not hold.
    aws.check_push(&store, &targets)?;
    drop(store);
    let store = open_unlocked(cli)?;
    let (crl, regenerated) = crl_for_push(&store)?;
    if let Some(why) = &regenerated {
        errln!("made CRL #{} first: {why}", crl.number);
    }
    warn("uploading a CRL resets the current connections of the endpoint (users reconnect)");
    let mut results = Vec::new();
    let mut failed = Vec::new();
    let mut refused = false;
    for t in &targets {
        match aws.push_crl(&store, t, &crl) {
            Ok(r) => {
                if !out.json {
                    outln!(
                        "{t}: CRL #{} ({} entries) uploaded and read back identical (status {})",
                        r.crl_number,
                        r.entries,
                        r.status
                    );
                }
                results.push(r);
            }
            Err(e) => {
                errln!("error: {t}: {e}");
                // The store's own state (an older copy) is exit 2, not an AWS failure.
                refused |= matches!(e, vpnca::Error::Tampered { .. });
                failed.push(json!({"endpoint": t, "error": e.to_string()}));
            }
        }
    }
    if out.json {
        let mut v = json!({
            "region": aws.region(),
            "crl": {"number": crl.number, "entries": crl.entries, "next_update": vpnca::fmt_time(crl.next_update), "regenerated": regenerated},
            "pushed": results,
            "failed": failed,
            "skipped": skipped,
        });
        with_head(&store, &mut v);
        outln!("{v}");
    }
    Ok(if refused {
        EXIT_ERROR
    } else if failed.is_empty() {
        0
    } else {
        EXIT_AWS
    })
}

/// What `status --aws` found in AWS.
pub(super) struct AwsReport {
    /// The report, for `--json`.
    pub(super) json: serde_json::Value,
    /// Something needs attention (exit 1).
    pub(super) attention: bool,
    /// An AWS call failed, so part of AWS was not checked (exit 3).
    pub(super) failed: bool,
}

/// The AWS part of `status --aws`: prints it and says whether anything needs attention. A
/// failed AWS call is one of its findings (the rest is still checked), not an error.
pub(super) fn status(store: &Store, out: &Out, warn_days: u32, o: &AwsOpts) -> Result<AwsReport> {
    let aws = connect(o)?;
    let rep = aws.status(store, warn_days)?;
    if !out.json {
        outln!("AWS ({}):", rep.region);
        if rep.certificates.is_empty() {
            outln!("  no ACM certificate recorded in this region");
        }
        for i in &rep.other_regions {
            outln!(
                "  ACM {} {} {}: in {}, not checked (run with --region {})",
                i.role.as_str(),
                i.name,
                i.arn,
                i.region,
                i.region
            );
        }
        for c in &rep.certificates {
            outln!(
                "  ACM {} {} {}: {}, until {}{}",
                c.import.role.as_str(),
                c.import.name,
                c.import.arn,
                c.acm.status.as_deref().unwrap_or("?"),
                c.acm
                    .not_after
                    .map(vpnca::fmt_time)
                    .unwrap_or_else(|| "?".into()),
                if c.up_to_date {
                    ""
                } else {
                    " (NOT the store's current certificate)"
                }
            );
        }
        for e in &rep.endpoints {
            outln!(
                "  endpoint {}: CRL {} ({}){}",
                e.id,
                e.crl_number
                    .map(|n| format!("#{n}"))
                    .unwrap_or_else(|| "none".into()),
                e.crl_status,
                if e.crl_matches {
                    ", the store's latest"
                } else {
                    ", NOT the store's latest"
                }
            );
        }
    }
    Ok(AwsReport {
        json: serde_json::to_value(&rep)?,
        attention: !rep.findings.is_empty(),
        failed: !rep.complete,
    })
}
