//! Delivery (docs/commands-delivery.md): `profile`, a user's OpenVPN profile from a Client VPN
//! endpoint's configuration or for a plain OpenVPN server. The `--batch` form is in batch.rs,
//! `export --format` in certificates.rs, `clientvpn profile` in aws.rs; the arguments are
//! defined in args.rs.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use vpnca::fsutil::{InputLimit, Output, check_output, read_bounded};

use super::args::{Cli, ProfileArgs};
use super::batch;
use super::output::{Out, warn};
use super::passphrase::{open_unlocked, read_new_secret_file};

/// `vpnca profile NAME --config FILE | --remote HOST[:PORT]`; with `--batch`, batch::profile.
pub(super) fn profile(cli: &Cli, out: &Out, args: &ProfileArgs) -> Result<u8> {
    let ProfileArgs {
        name,
        batch: batch_file,
        column,
        config,
        remote,
        proto,
        server_name,
        random_hostname_prefix,
        allow_directive,
        allow_foreign_ca,
        key_passphrase_file,
        out: out_file,
    } = args;
    // Checked before anything is read or unlocked (the profile itself is created new, never
    // over anything, when it is written).
    let (target, how) = match (batch_file, out_file) {
        (Some(_), Some(dir)) => (dir.clone(), Output::Dir),
        (_, Some(f)) => (f.clone(), Output::NewWithDirs),
        (None, None) => (
            PathBuf::from(format!("{}.ovpn", name.as_deref().unwrap_or_default())),
            Output::NewWithDirs,
        ),
        (Some(_), None) => bail!("--batch needs --out DIR"),
    };
    check_output(&target, how)?;
    let base = match (config, remote) {
        (Some(f), _) => {
            // Zeroized: a <tls-crypt> key or another user's <key> may be in it.
            let data = zeroize::Zeroizing::new(read_bounded(f, &InputLimit::OVPN_CONFIG)?);
            let policy = vpnca::ovpn::DirectivePolicy::new(allow_directive, *allow_foreign_ca)?;
            vpnca::ovpn::ProfileBase::Endpoint {
                config: vpnca::ovpn::ClientConfig::parse_with(
                    &data,
                    &f.display().to_string(),
                    &policy,
                )?,
                random_hostname_prefix: *random_hostname_prefix,
            }
        }
        (None, Some(r)) => {
            let (host, port) = vpnca::ovpn::parse_remote(r)?;
            vpnca::ovpn::ProfileBase::Plain {
                host,
                port,
                proto: proto.as_deref().unwrap_or("udp").parse()?,
                server_name: server_name.clone(),
            }
        }
        (None, None) => bail!("give --config FILE or --remote HOST[:PORT]"),
    };
    let key_pass = key_passphrase_file
        .as_ref()
        .map(|f| read_new_secret_file(f))
        .transpose()?;
    if let Some(f) = batch_file {
        let dir = out_file
            .as_deref()
            .ok_or_else(|| anyhow!("--batch needs --out DIR"))?;
        return batch::profile(
            || open_unlocked(cli),
            out,
            f,
            &base,
            key_pass.as_ref(),
            dir,
            column,
        );
    }
    let name = name
        .as_deref()
        .ok_or_else(|| anyhow!("give a NAME or --batch FILE"))?;
    let path = target;
    let store = open_unlocked(cli)?;
    let rec = store.current(name)?;
    let rep = store.write_profile(&rec, &base, key_pass.as_ref(), &path)?;
    for w in &rep.warnings {
        warn(w);
    }
    out.changed(&store, serde_json::to_value(&rep)?, || {
        outln!(
            "wrote {} (mode 0600): {}'s certificate and {} key inline",
            rep.path.display(),
            rep.name,
            if rep.key_encrypted { "encrypted" } else { "UNENCRYPTED" }
        );
        outln!("Hand it to the user over a private channel, then delete it (see docs/commands-delivery.md).");
    });
    Ok(0)
}
