//! Where passphrases come from: the store passphrase (`--passphrase-file`, `$VPNCA_PASSPHRASE`,
//! a terminal prompt; docs/commands-store.md), passphrases for exported keys and profiles
//! (docs/commands-delivery.md), and easy-rsa's `nopass`, which keys never get.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result, anyhow, bail};
use vpnca::fsutil::{InputLimit, read_bounded_or_pipe};
use vpnca::{Passphrase, Store};

use super::args::Cli;

/// easy-rsa's trailing `nopass` argument: accepted with a note (keys are always encrypted in
/// the store); any other word there is an error.
pub(super) fn note_nopass(nopass: &Option<String>) -> Result<()> {
    match nopass.as_deref() {
        None => Ok(()),
        Some("nopass") => {
            errln!(
                "note: `nopass` is accepted for easy-rsa compatibility; vpnca always keeps private keys encrypted in the store (use `vpnca export --key` for a plain key file)"
            );
            Ok(())
        }
        Some(other) => {
            bail!("unexpected argument {other:?} (only easy-rsa's `nopass` is accepted here)")
        }
    }
}

/// A passphrase for something new (an exported key, a PKCS#12 file) from FILE, checked.
pub(super) fn read_new_secret_file(path: &Path) -> Result<Passphrase> {
    let p = read_secret_file(path)?;
    p.check_new()
        .with_context(|| format!("the passphrase in {}", path.display()))?;
    Ok(p)
}

/// The first line of FILE as a passphrase. FILE may be a pipe (`<(pass show vpnca)`); at
/// most 4 KiB are read ([`InputLimit::PASSPHRASE`]).
pub(super) fn read_secret_file(path: &Path) -> Result<Passphrase> {
    let bytes = zeroize::Zeroizing::new(read_bounded_or_pipe(path, &InputLimit::PASSPHRASE)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("passphrase file {} is not UTF-8 text", path.display()))?;
    let first = text.lines().next().unwrap_or("");
    Ok(Passphrase::new(first.to_owned()))
}

/// The passphrase for an exported key or PKCS#12 file: FILE, else a confirmed prompt on a
/// terminal (empty = generate), else generated. Returns whether it was generated.
pub(super) fn export_passphrase(file: &Option<PathBuf>) -> Result<(Passphrase, bool)> {
    if let Some(f) = file {
        return Ok((read_new_secret_file(f)?, false));
    }
    if std::io::stdin().is_terminal() {
        let p = Passphrase::new(
            rpassword::prompt_password("passphrase for the exported key (empty: generate one): ")
                .context("reading the passphrase")?,
        );
        if !p.expose().is_empty() {
            let again = Passphrase::new(
                rpassword::prompt_password("passphrase for the exported key (again): ")
                    .context("reading the passphrase")?,
            );
            if !p.ct_eq(&again) {
                bail!("the two passphrases differ; nothing was written");
            }
            return Ok((p, false));
        }
    }
    Ok((vpnca::pkcs12::generate_passphrase()?, true))
}

/// The environment variables that hold passphrases. [`take_env_secrets`] reads them at
/// start-up, before `main` removes them from the environment (docs/security.md#secrets-handling).
const SECRET_ENV_VARS: [&str; 2] = ["VPNCA_PASSPHRASE", "VPNCA_NEW_PASSPHRASE"];

/// A passphrase variable as it was found at start-up.
enum EnvSecret {
    Text(Passphrase),
    NotUnicode,
}

/// The values of [`SECRET_ENV_VARS`] that were set, by name: the only copy once the
/// environment no longer holds them. Dropped (zeroized) by [`forget_env_secrets`].
static ENV_SECRETS: Mutex<Vec<(&str, EnvSecret)>> = Mutex::new(Vec::new());

fn env_secrets() -> MutexGuard<'static, Vec<(&'static str, EnvSecret)>> {
    ENV_SECRETS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the set [`SECRET_ENV_VARS`] into zeroizing memory, once, and returns their names:
/// the caller removes them from the environment, so that no child process (an AWS
/// `credential_process`, a shell) inherits them.
pub(crate) fn take_env_secrets() -> Vec<&'static str> {
    let mut kept = env_secrets();
    let mut names = Vec::new();
    for name in SECRET_ENV_VARS {
        let Some(v) = std::env::var_os(name) else {
            continue;
        };
        let secret = match v.into_string() {
            Ok(s) => EnvSecret::Text(Passphrase::new(s)),
            Err(os) => {
                #[cfg(unix)]
                zeroize::Zeroize::zeroize(&mut std::os::unix::ffi::OsStringExt::into_vec(os));
                #[cfg(not(unix))]
                drop(os);
                EnvSecret::NotUnicode
            }
        };
        kept.retain(|(n, _)| *n != name);
        kept.push((name, secret));
        names.push(name);
    }
    names
}

/// Drops (and so zeroizes) the passphrases read by [`take_env_secrets`].
pub(crate) fn forget_env_secrets() {
    env_secrets().clear();
}

/// The passphrase that was in `$name` at start-up, if it was set.
fn from_env(name: &str) -> Result<Option<Passphrase>> {
    match env_secrets().iter().find(|(n, _)| *n == name) {
        None => Ok(None),
        Some((_, EnvSecret::Text(p))) => Ok(Some(p.clone())),
        Some((_, EnvSecret::NotUnicode)) => bail!("${name} is not valid UTF-8 text"),
    }
}

/// The store passphrase: --passphrase-file, $VPNCA_PASSPHRASE, or a terminal prompt
/// (confirmed when `new`).
pub(super) fn passphrase(
    cli_file: &Option<PathBuf>,
    env: &str,
    new: bool,
    what: &str,
) -> Result<Passphrase> {
    let flag = if env == "VPNCA_NEW_PASSPHRASE" {
        "--new-passphrase-file"
    } else {
        "--passphrase-file"
    };
    if let Some(f) = cli_file {
        return read_secret_file(f);
    }
    if let Some(v) = from_env(env)? {
        return Ok(v);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no {what}: set ${env} or use {flag} FILE (there is no terminal to prompt on)");
    }
    let p = Passphrase::new(
        rpassword::prompt_password(format!("{what}: ")).context("reading the passphrase")?,
    );
    if new {
        let again = Passphrase::new(
            rpassword::prompt_password(format!("{what} (again): "))
                .context("reading the passphrase")?,
        );
        if !p.ct_eq(&again) {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    Ok(p)
}

/// The store passphrase (see [`passphrase`]); `new`: for a new store, confirmed at a prompt.
pub(super) fn store_passphrase(cli: &Cli, new: bool) -> Result<Passphrase> {
    let what = if new {
        "new store passphrase"
    } else {
        "store passphrase"
    };
    passphrase(&cli.passphrase_file, "VPNCA_PASSPHRASE", new, what)
}

/// Opens the store at `--pki` and unlocks it with the store passphrase, with the second
/// checkpoint (`--checkpoint`, `VPNCA_CHECKPOINT`) when one is given.
pub(super) fn open_unlocked(cli: &Cli) -> Result<Store> {
    let mut store = Store::open(&cli.pki)?;
    use_checkpoint(cli, &mut store)?;
    let pass = store_passphrase(cli, false)?;
    store.unlock(&pass)?;
    // What a committed change could not do (an audit entry not sent to syslog) is a warning.
    store.on_notice(super::output::warn);
    Ok(store)
}

/// Gives the store the second checkpoint of `--checkpoint` / `VPNCA_CHECKPOINT`, if any.
pub(super) fn use_checkpoint(cli: &Cli, store: &mut Store) -> Result<()> {
    if let Some(f) = &cli.checkpoint {
        store.use_outside_checkpoint(f)?;
    }
    Ok(())
}
