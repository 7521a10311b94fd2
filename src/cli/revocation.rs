//! Revocation commands (docs/commands-revocation.md): `revoke` and `crl`. The `--batch` form
//! of `revoke` is in batch.rs; the arguments are defined in args.rs.

use anyhow::{Context, Result, bail};
use serde_json::json;
use vpnca::fsutil::Output;
use vpnca::{CrlOptions, RevocationReason, Target};

use super::args::{Cli, CrlArgs, RevokeArgs};
use super::batch;
use super::options::{PublicOut, public_out};
use super::output::{Out, crl_json, record_json, sh, warn};
use super::passphrase::open_unlocked;

/// Exit code of a `revoke` (also `revoke --batch`, `renew --revoke-old`) whose revocation is
/// recorded but whose CRL was deferred (its CA key in KMS could not sign): 3, as for every AWS failure, so that a script tells it from 0 (the
/// CRL is written: upload it) and from 2 (nothing was changed). docs/commands-revocation.md.
const EXIT_CRL_DEFERRED: u8 = 3;

/// `vpnca revoke NAME` or `revoke --serial HEX`, then a new CRL; with `--batch`,
/// batch::revoke.
pub(super) fn revoke(cli: &Cli, out: &Out, args: &RevokeArgs) -> Result<u8> {
    let RevokeArgs {
        name,
        reason_arg,
        serial,
        reason,
        batch: batch_file,
        format,
        strict,
        column,
        renewed_only,
    } = args;
    let reason: RevocationReason = match (reason, reason_arg) {
        (Some(r), None) | (None, Some(r)) => r.parse()?,
        (None, None) => RevocationReason::Unspecified,
        (Some(_), Some(_)) => bail!("give the reason once (--reason)"),
    };
    if let Some(f) = batch_file {
        return batch::revoke_mapped(
            || open_unlocked(cli),
            out,
            f,
            format.as_deref(),
            reason,
            *strict,
            column,
        );
    }
    let target = match (name, serial) {
        (_, Some(s)) => Target::Serial(s.parse()?),
        (Some(n), None) => Target::Name(vpnca::name::normalize_name(n)?),
        (None, None) => bail!("give a NAME or --serial HEX"),
    };
    let store = open_unlocked(cli)?;
    let res = match (&target, renewed_only) {
        (Target::Name(n), true) => revoke_renewed(&store, n, reason)?,
        _ => store.revoke(&target, reason)?,
    };
    let mut v = json!({"revoked": res.revoked.iter().map(record_json).collect::<Vec<_>>(),
        "crl": res.crl.as_ref().map(|c| crl_json(c, &store.crl_path()))});
    add_deferred(&mut v, res.deferred.as_ref());
    out.changed(&store, v, || {
        for r in &res.revoked {
            outln!(
                "Revoked {} {} (serial {}), reason {}",
                r.kind.as_str(),
                r.name,
                r.serial,
                reason.as_str()
            );
        }
        if let Some(crl) = &res.crl {
            outln!(
                "Wrote CRL #{} with {} entries to {} (valid until {})",
                crl.number,
                crl.entries,
                store.crl_path().display(),
                vpnca::fmt_time(crl.next_update)
            );
            print_upload_steps(&store);
        }
    });
    Ok(after_crl(&store, res.crl.as_ref(), res.deferred.as_ref()).unwrap_or(0))
}

/// With `--json`, a `crl_deferred` object beside `crl` (then null) when the CRL of a command
/// that revoked was deferred (docs/json.md#revoke); nothing otherwise.
pub(super) fn add_deferred(v: &mut serde_json::Value, d: Option<&vpnca::crl::CrlDeferred>) {
    if let (Some(d), serde_json::Value::Object(m)) = (d, v) {
        m.insert("crl_deferred".into(), json!(d));
    }
}

/// After a command that revoked (`revoke`, `revoke --batch`, `renew --revoke-old`): the new
/// CRL's warnings, or the warning that it was deferred ([`deferred_warning`]) and then
/// `Some(3)`, the exit code that says so.
pub(super) fn after_crl(
    store: &vpnca::Store,
    crl: Option<&vpnca::CrlInfo>,
    deferred: Option<&vpnca::crl::CrlDeferred>,
) -> Option<u8> {
    if let Some(crl) = crl {
        crl_warnings(crl);
    }
    let d = deferred?;
    deferred_warning(store, d);
    Some(EXIT_CRL_DEFERRED)
}

/// The warning of a revocation whose CRL was deferred ([`vpnca::crl::CrlDeferred`]): which
/// serials no CRL lists, that no CRL was signed and why, what `crl.pem` still holds, and the
/// command that signs the CRL. The command then exits 3 (docs/commands-revocation.md).
pub(super) fn deferred_warning(store: &vpnca::Store, d: &vpnca::crl::CrlDeferred) {
    let held = match store.latest_crl() {
        Ok(Some(c)) => format!(
            "{} still holds CRL #{}, which does not list {}",
            store.crl_path().display(),
            c.number,
            if d.serials.len() == 1 { "it" } else { "them" }
        ),
        _ => format!("{} has no CRL yet", store.crl_path().display()),
    };
    warn(&format!(
        "the revocation of serial {} is recorded, but NO CRL WAS SIGNED: {}. {held}, and the VPN still accepts {} until a CRL that lists {} is signed and uploaded: run `vpnca crl` once KMS can sign (then upload it); `vpnca status` reports it until then",
        d.serials.join(", "),
        d.reason.as_deref().unwrap_or("the CRL was not signed"),
        if d.serials.len() == 1 {
            "that certificate"
        } else {
            "those certificates"
        },
        if d.serials.len() == 1 { "it" } else { "them" },
    ));
}

/// easy-rsa's `revoke-renewed NAME`: revokes NAME's superseded certificates (the ones `renew`
/// replaced), one by serial, and not its current one; the last revocation's CRL lists them all.
fn revoke_renewed(
    store: &vpnca::Store,
    name: &str,
    reason: RevocationReason,
) -> Result<vpnca::Revoked> {
    let now = time::OffsetDateTime::now_utc();
    let old: Vec<_> = store
        .by_name(name)?
        .into_iter()
        .filter(|r| r.status(now) == vpnca::Status::Superseded)
        .collect();
    if old.is_empty() {
        bail!(
            "{name} has no renewed (superseded, unexpired, unrevoked) certificate; `vpnca list` shows its certificates"
        );
    }
    let mut revoked = Vec::new();
    let mut crl = None;
    let mut deferred = None;
    for r in old {
        let res = store
            .revoke(&Target::Serial(r.serial.clone()), reason)
            .with_context(|| format!("revoking {name}'s serial {}", r.serial))?;
        revoked.extend(res.revoked);
        crl = res.crl;
        deferred = res.deferred;
    }
    Ok(vpnca::Revoked {
        revoked,
        crl,
        deferred,
    })
}

/// `warning: …` for each of a new CRL's warnings (it expires soon: see
/// [`vpnca::crl::crl_warnings`]); with `--json` they are also in the CRL object.
pub(super) fn crl_warnings(crl: &vpnca::CrlInfo) {
    for w in &crl.warnings {
        warn(w);
    }
}

/// Prints what to do with a CRL just written (after `revoke`, `revoke --batch`, `renew
/// --revoke-old`): the VPN accepts the revoked certificates until it holds it.
pub(super) fn print_upload_steps(store: &vpnca::Store) {
    for line in upload_steps(store) {
        outln!("{line}");
    }
}

/// The lines [`print_upload_steps`] prints. With Client VPN endpoints recorded by earlier
/// pushes (`vpnca acm list`): the push to exactly those, one command per region. Otherwise both
/// routes: a push to an endpoint (`--all` when the store imported a certificate into ACM), and
/// for OpenVPN the copy of crl.pem. Every command is shell-quoted: the recorded endpoint rows
/// are stored data, not checked input. Never fails: a record that cannot be read gives the
/// general steps and a warning.
pub(super) fn upload_steps(store: &vpnca::Store) -> Vec<String> {
    let crl = sh(&store.crl_path().display().to_string()).into_owned();
    let mut lines =
        vec!["The VPN still accepts the revoked certificate(s) until it has this CRL:".to_string()];
    #[cfg(feature = "aws")]
    {
        let (endpoints, imports) = match (store.known_endpoints(), store.acm_imports()) {
            (Ok(e), Ok(i)) => (e, i),
            (Err(e), _) | (_, Err(e)) => {
                warn(&format!("cannot read the store's AWS records ({e})"));
                (Vec::new(), Vec::new())
            }
        };
        if !endpoints.is_empty() {
            let mut regions: Vec<&str> = endpoints.iter().map(|e| e.region.as_str()).collect();
            regions.dedup();
            for region in regions {
                let ids: String = endpoints
                    .iter()
                    .filter(|e| e.region == region)
                    .map(|e| format!(" --endpoint {}", sh(&e.id)))
                    .collect();
                lines.push(format!(
                    "  vpnca clientvpn push-crl{ids} --region {}",
                    sh(region)
                ));
            }
            return lines;
        }
        lines.push(if imports.is_empty() {
            "  AWS Client VPN: vpnca clientvpn push-crl --endpoint cvpn-endpoint-…".to_string()
        } else {
            "  AWS Client VPN: vpnca clientvpn push-crl --all   (or --endpoint cvpn-endpoint-…)"
                .to_string()
        });
    }
    #[cfg(not(feature = "aws"))]
    lines.push(format!(
        "  AWS Client VPN: aws ec2 import-client-vpn-client-certificate-revocation-list --client-vpn-endpoint-id cvpn-endpoint-… --certificate-revocation-list file://{crl}"
    ));
    lines.push(format!(
        "  OpenVPN: copy {crl} over the file the server's crl-verify names; the server reads it again at each new connection"
    ));
    lines
}

/// `vpnca crl`: a new CRL, and the store's CRL policy when a flag changes it.
pub(super) fn crl(cli: &Cli, out: &Out, args: &CrlArgs) -> Result<u8> {
    let CrlArgs {
        days,
        out: out_file,
        omit_expired,
        keep_expired,
    } = args;
    // Checked before the CRL is committed: a bad --out changes nothing.
    let dest = out_file
        .as_deref()
        .map(|f| public_out(f, "--out", out.json, Output::Replace))
        .transpose()?;
    let store = open_unlocked(cli)?;
    let mut opts = CrlOptions::from_store(&store)?;
    let stored_days = opts.days;
    if let Some(d) = days {
        opts.days = *d;
    }
    if *omit_expired {
        opts.omit_expired = true;
    } else if *keep_expired {
        opts.omit_expired = false;
    }
    let info = store.generate_crl(&opts)?;
    if opts.days != stored_days {
        errln!(
            "note: the store's CRL policy is now {} day(s) (it was {stored_days}): the CRLs that revoke, renew --revoke-old{} and quickstart write follow it; `vpnca crl --days {stored_days}` sets it back",
            opts.days,
            if cfg!(feature = "aws") {
                ", clientvpn push-crl"
            } else {
                ""
            }
        );
    }
    let asked = info.this_update + vpnca::ca::BACKDATE + time::Duration::days(i64::from(opts.days));
    if days.is_some() && info.warnings.is_empty() && info.next_update + time::Duration::DAY < asked
    {
        // Cut to the CA's notAfter (by more than a day), but far enough away to be no warning.
        errln!(
            "note: nextUpdate is {}, the CA's own notAfter, not {} days from now: a CRL cannot outlive the CA that signs it",
            vpnca::fmt_time(info.next_update),
            opts.days
        );
    }
    if let Some(PublicOut::File(f)) = dest {
        vpnca::store::write_public_file(f, info.pem.as_bytes()).with_context(|| {
            format!(
                "CRL #{} is in the store and in {}, but its copy to --out failed",
                info.number,
                store.crl_path().display()
            )
        })?;
    }
    let line = format!(
        "Wrote CRL #{} with {} entries to {}{} (nextUpdate {})",
        info.number,
        info.entries,
        store.crl_path().display(),
        match dest {
            Some(PublicOut::File(f)) => format!(" and {}", f.display()),
            Some(PublicOut::Stdout) => " and standard output".into(),
            None => String::new(),
        },
        vpnca::fmt_time(info.next_update)
    );
    if let Some(PublicOut::Stdout) = dest {
        // Standard output carries the CRL alone, for a pipe.
        outp!("{}", info.pem);
        errln!("{line}");
        crl_warnings(&info);
        return Ok(0);
    }
    out.changed(&store, crl_json(&info, &store.crl_path()), || {
        outln!("{line}")
    });
    crl_warnings(&info);
    Ok(0)
}
