//! Revocation commands (docs/commands-revocation.md): `revoke` and `crl`. The `--batch` form
//! of `revoke` is in batch.rs; the arguments are defined in args.rs.

use anyhow::{Context, Result, bail};
use serde_json::json;
use vpnca::fsutil::Output;
use vpnca::{CrlOptions, RevocationReason, Target};

use super::args::{Cli, CrlArgs, RevokeArgs};
use super::batch;
use super::options::{PublicOut, public_out};
use super::output::{Out, crl_json, record_json};
use super::passphrase::open_unlocked;

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
    } = args;
    let reason: RevocationReason = match (reason, reason_arg) {
        (Some(r), None) | (None, Some(r)) => r.parse()?,
        (None, None) => RevocationReason::Unspecified,
        (Some(_), Some(_)) => bail!("give the reason once (--reason)"),
    };
    if let Some(f) = batch_file {
        return batch::revoke(
            || open_unlocked(cli),
            out,
            f,
            format.as_deref(),
            reason,
            *strict,
        );
    }
    let target = match (name, serial) {
        (_, Some(s)) => Target::Serial(s.parse()?),
        (Some(n), None) => Target::Name(vpnca::name::normalize_name(n)?),
        (None, None) => bail!("give a NAME or --serial HEX"),
    };
    let store = open_unlocked(cli)?;
    let res = store.revoke(&target, reason)?;
    let v = json!({"revoked": res.revoked.iter().map(record_json).collect::<Vec<_>>(), "crl": crl_json(&res.crl, &store.crl_path())});
    out.doc(&v, || {
        for r in &res.revoked {
            outln!("Revoked {} {} (serial {}), reason {}", r.kind.as_str(), r.name, r.serial, reason.as_str());
        }
        outln!(
            "Wrote CRL #{} with {} entries to {} (valid until {})",
            res.crl.number,
            res.crl.entries,
            store.crl_path().display(),
            vpnca::fmt_time(res.crl.next_update)
        );
        outln!("Upload it to your VPN (AWS Client VPN: aws ec2 import-client-vpn-client-certificate-revocation-list; OpenVPN: crl-verify).");
    });
    Ok(0)
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
    if let Some(d) = days {
        opts.days = *d;
    }
    if *omit_expired {
        opts.omit_expired = true;
    } else if *keep_expired {
        opts.omit_expired = false;
    }
    let info = store.generate_crl(&opts)?;
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
        return Ok(0);
    }
    out.doc(&crl_json(&info, &store.crl_path()), || outln!("{line}"));
    Ok(0)
}
