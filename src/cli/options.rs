//! Options that become library values, shared by several commands: Argon2id parameters
//! (`--kdf-memory-mib`, `--kdf-time`; docs/commands-store.md), key algorithms, validities and
//! SANs (`--algo`, `--days`, `--ttl`, `--san`; docs/commands-certificates.md).

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use vpnca::fsutil::{Output, check_output};
use vpnca::{CertKind, IssueRequest, KdfParams, KeyAlgorithm, San, Validity};

use super::args::KeyOpts;
use super::output::warn;

/// Argon2id parameters from `--kdf-memory-mib` and `--kdf-time` (the defaults for what is not
/// given), checked.
pub(super) fn kdf(memory: Option<u32>, time: Option<u32>) -> Result<KdfParams> {
    let mut k = KdfParams::default();
    if let Some(m) = memory {
        k.m_kib = m
            .checked_mul(1024)
            .ok_or_else(|| anyhow!("--kdf-memory-mib {m} is too large"))?;
    }
    if let Some(t) = time {
        k.t = t;
    }
    k.check()?;
    Ok(k)
}

/// `--algo` (default RSA-2048), with a warning when AWS Client VPN cannot use it.
pub(super) fn algorithm(a: &Option<String>) -> Result<KeyAlgorithm> {
    let alg = match a {
        Some(s) => s.parse()?,
        None => KeyAlgorithm::default(),
    };
    warn_client_vpn(alg);
    Ok(alg)
}

/// Client VPN takes RSA-2048 (and RSA-1024, too weak for vpnca to make or sign) only.
pub(super) fn warn_client_vpn(alg: KeyAlgorithm) {
    if !alg.aws_client_vpn_compatible() {
        warn(&format!(
            "AWS Client VPN accepts only RSA-2048 keys (and RSA-1024, which is too weak for vpnca to make or sign); a {alg} certificate works with OpenVPN but not with Client VPN"
        ));
    }
}

/// `--days` or `--ttl` (`--ttl` wins); neither: the profile's validity.
pub(super) fn validity(days: Option<u32>, ttl: &Option<String>) -> Result<Validity> {
    Ok(match (days, ttl) {
        (_, Some(t)) => Validity::parse_ttl(t)?,
        (Some(d), None) => Validity::Days(d),
        (None, None) => Validity::Default,
    })
}

/// `--san TYPE:VALUE` values.
pub(super) fn sans(list: &[String]) -> Result<Vec<San>> {
    list.iter()
        .map(|s| San::parse(s).map_err(Into::into))
        .collect()
}

/// What `server NAME` and `client NAME` ask the library to issue: the checked name, the kind,
/// the key options and the SANs.
pub(super) fn issue_request(
    name: &str,
    kind: CertKind,
    sans: Vec<San>,
    key: &KeyOpts,
) -> Result<IssueRequest> {
    Ok(IssueRequest {
        name: vpnca::name::normalize_name(name)?,
        kind,
        profile: key.template.clone(),
        algorithm: algorithm(&key.algo)?,
        validity: validity(key.days, &key.ttl)?,
        sans,
    })
}

/// Where a public output (`crl --out`, `ca --csr-out`) goes.
pub(super) enum PublicOut<'a> {
    /// `-`: standard output.
    Stdout,
    /// A file, checked already.
    File(&'a Path),
}

/// The output path of `flag`: `-` is standard output (refused with `--json`, which prints its
/// report there), anything else a file checked with [`check_output`] as `how` says, before
/// the command changes anything (docs/commands-store.md#output-paths).
pub(super) fn public_out<'a>(
    path: &'a Path,
    flag: &str,
    json: bool,
    how: Output,
) -> Result<PublicOut<'a>> {
    if path == Path::new("-") {
        if json {
            bail!(
                "{flag} - writes to standard output, where --json writes its report: use one of them (or {flag} FILE); nothing was changed"
            );
        }
        return Ok(PublicOut::Stdout);
    }
    check_output(path, how)?;
    Ok(PublicOut::File(path))
}
