//! Exporting certificates, chains and keys to files.

use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::cert::{CertKind, CertRecord};
use crate::secret::{Passphrase, SecretKeyDer};
use crate::store::Store;
use crate::{Error, Result, fsutil};

/// PBKDF2-HMAC-SHA-256 iterations for encrypted PKCS#8 exports (OWASP 2023 guidance).
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// Whether and how to export the private key.
#[derive(Debug, Clone)]
pub enum KeyExport {
    /// Certificate and chain only.
    None,
    /// Unencrypted PKCS#8 PEM (what ACM import needs), mode 0600.
    Plain,
    /// Encrypted PKCS#8 (PBES2: PBKDF2-HMAC-SHA-256 + AES-256-CBC), mode 0600.
    Encrypted(Passphrase),
    /// One `NAME.p12` file (certificate, key and chain; see [`crate::pkcs12`]), mode 0600,
    /// instead of the PEM files.
    Pkcs12(Passphrase),
}

impl KeyExport {
    /// How the key is exported: `none`, `plain`, `encrypted` or `pkcs12`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyExport::None => "none",
            KeyExport::Plain => "plain",
            KeyExport::Encrypted(_) => "encrypted",
            KeyExport::Pkcs12(_) => "pkcs12",
        }
    }
}

/// How an export treats files already in the output directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Replace public files (`NAME.crt`, `ca.crt`) that differ from what the export writes
    /// (`export --force`). Key files (`NAME.key`, `NAME.p12`) are never replaced.
    pub force: bool,
}

/// Files written by an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The certificate's name.
    pub name: String,
    /// Its serial.
    pub serial: String,
    /// The files written (created, or replaced with `force`), in the order written.
    pub files: Vec<PathBuf>,
    /// Public files that were there already, identical to what the export would write: left
    /// as they are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<PathBuf>,
    /// Public files that differed and were replaced (`force`); also in `files`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<PathBuf>,
    /// Whether a key was written, and how: `none`, `plain`, `encrypted` or `pkcs12`.
    pub key: &'static str,
}

/// What is at the path of a public file (a certificate, the CA chain) about to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Nothing: the file is created.
    Missing,
    /// A regular file with exactly these bytes: nothing to write.
    Identical,
    /// A regular file with other bytes.
    Differs,
}

/// Compares the public file at `path` with `bytes`. Anything but a regular file or nothing (a
/// symbolic link, a directory, a device, a FIFO, a socket) is refused as by
/// [`fsutil::check_output`], before it is opened: a FIFO is never read, a link never followed.
pub(crate) fn compare_public(path: &Path, bytes: &[u8]) -> Result<Existing> {
    if fsutil::PathKind::of(path)? != fsutil::PathKind::File {
        fsutil::check_output(path, fsutil::Output::NewWithDirs)?;
        return Ok(Existing::Missing);
    }
    let mut f = std::fs::File::open(path).map_err(Error::io("reading", path))?;
    let meta = f.metadata().map_err(Error::io("reading", path))?;
    // Swapped for something else since it was examined: refused as that.
    if !meta.is_file() {
        fsutil::check_output(path, fsutil::Output::NewWithDirs)?;
        return Err(Error::FileExists {
            path: path.to_path_buf(),
        });
    }
    if meta.len() != bytes.len() as u64 {
        return Ok(Existing::Differs);
    }
    let mut old = Vec::with_capacity(bytes.len());
    std::io::Read::read_to_end(&mut f, &mut old).map_err(Error::io("reading", path))?;
    Ok(if old == bytes {
        Existing::Identical
    } else {
        Existing::Differs
    })
}

/// The refusal of a public file at `path` that differs from `what` would be written; `hint`
/// says what to do.
pub(crate) fn differs(path: &Path, what: &str, hint: &str) -> Error {
    Error::OutputPath {
        path: path.to_path_buf(),
        reason: format!("it exists and differs from {what}; vpnca leaves it as it is ({hint})"),
    }
}

/// Encrypts a PKCS#8 key with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) as PEM
/// `ENCRYPTED PRIVATE KEY`; the encrypted key is PKCS#8 v1, as every exported key (see
/// [`SecretKeyDer::to_pem`]).
pub fn encrypt_pkcs8(key: &SecretKeyDer, pass: &Passphrase) -> Result<Zeroizing<String>> {
    let salt: [u8; 16] = crate::store::crypto::random()?;
    let iv: [u8; 16] = crate::store::crypto::random()?;
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
            .map_err(|e| Error::Crypto(format!("PBES2 parameters: {e}")))?;
    let doc = key
        .export_info()?
        .encrypt_with_params(params, pass.expose())
        .map_err(|e| Error::Crypto(format!("PKCS#8 encryption: {e}")))?;
    Ok(Zeroizing::new(crate::pem::encode(
        "ENCRYPTED PRIVATE KEY",
        doc.as_bytes(),
    )))
}

impl Store {
    /// [`Store::export_with`] with the default options: a public file that differs is refused.
    pub fn export(
        &self,
        rec: &CertRecord,
        out_dir: &Path,
        key: &KeyExport,
    ) -> Result<ExportReport> {
        self.export_with(rec, out_dir, key, &ExportOptions::default())
    }

    /// Writes `DIR/NAME.crt`, `DIR/ca.crt` (the CA chain) and, when asked, `DIR/NAME.key` (or
    /// only `DIR/NAME.p12`). A public file (`NAME.crt`, `ca.crt`) already there and identical
    /// is left as it is (several users exported into one folder share one `ca.crt`); one that
    /// differs is refused, or replaced with `opts.force`. Key files are created new, mode
    /// 0600, and never replaced. Everything is checked before anything is written; anything
    /// but a regular file at a path is refused. Recorded in the audit log when a file was
    /// written.
    pub fn export_with(
        &self,
        rec: &CertRecord,
        out_dir: &Path,
        key: &KeyExport,
        opts: &ExportOptions,
    ) -> Result<ExportReport> {
        self.check_record(rec)?;
        if rec.kind == CertKind::Ca && matches!(key, KeyExport::Plain) {
            return Err(Error::input(
                "--key",
                "the CA's private key is exported only encrypted (--key-passphrase-file FILE); \
                 a plain CA key on disk is the easy-rsa habit vpnca exists to end",
            ));
        }
        if rec.name == "ca" && !matches!(key, KeyExport::Pkcs12(_)) {
            return Err(Error::input(
                "name",
                "a certificate named \"ca\" would collide with the chain file ca.crt; export it with `vpnca show ca --pem` instead",
            ));
        }
        if let KeyExport::Encrypted(p) | KeyExport::Pkcs12(p) = key {
            p.check_new()?;
        }
        let file = |ext: &str| out_dir.join(format!("{}.{ext}", rec.name));
        // (path, content, mode, public).
        let mut plan: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32, bool)> = Vec::new();
        match key {
            KeyExport::Pkcs12(p) => {
                let mut chain = self.ca_chain()?;
                // A CA's own bundle holds it once, as the leaf.
                chain.retain(|c| c != &rec.der);
                let der = crate::pkcs12::build(
                    &crate::pkcs12::Bundle {
                        friendly_name: &rec.name,
                        cert: &rec.der,
                        key: &self.private_key(rec)?,
                        chain: &chain,
                    },
                    p,
                )?;
                plan.push((file("p12"), Zeroizing::new(der), 0o600, false));
            }
            _ => {
                plan.push((
                    file("crt"),
                    Zeroizing::new(rec.pem().into_bytes()),
                    0o644,
                    true,
                ));
                plan.push((
                    out_dir.join("ca.crt"),
                    Zeroizing::new(self.ca_chain_pem()?.into_bytes()),
                    0o644,
                    true,
                ));
                let key_pem = match key {
                    KeyExport::Plain => Some(self.private_key(rec)?.to_pem()?),
                    KeyExport::Encrypted(p) => Some(encrypt_pkcs8(&self.private_key(rec)?, p)?),
                    _ => None,
                };
                if let Some(k) = key_pem {
                    plan.push((
                        file("key"),
                        Zeroizing::new(k.as_bytes().to_vec()),
                        0o600,
                        false,
                    ));
                }
            }
        }
        // Keys first: a key file in the way is the refusal that --force cannot lift.
        for (p, _, _, public) in &plan {
            if !public {
                fsutil::check_output(p, fsutil::Output::NewWithDirs)?;
            }
        }
        let mut create: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
        let mut replace: Vec<(PathBuf, &[u8])> = Vec::new();
        let mut unchanged = Vec::new();
        for (p, content, mode, public) in &plan {
            let state = if *public {
                compare_public(p, content)?
            } else {
                Existing::Missing
            };
            match state {
                Existing::Missing => create.push((p.clone(), content.clone(), *mode)),
                Existing::Identical => unchanged.push(p.clone()),
                Existing::Differs if opts.force => replace.push((p.clone(), content.as_slice())),
                Existing::Differs => {
                    let what = if p.file_name() == Some("ca.crt".as_ref()) {
                        "this store's CA chain (another CA's, or from before the CA changed)"
                            .to_owned()
                    } else {
                        format!(
                            "the certificate being exported ({}, serial {}; an earlier one?)",
                            rec.name,
                            rec.serial.hex()
                        )
                    };
                    return Err(differs(
                        p,
                        &what,
                        "move it away, choose another --out, or replace public files with --force; keys are never replaced",
                    ));
                }
            }
        }
        for (p, _, _) in &create {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                fsutil::create_dir(dir, 0o700)?;
            }
        }
        let created = fsutil::create_all_new(&create)?;
        // Public files replaced with --force; put back as they were if a later step fails.
        let mut replaced: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
        let undo = |created: &[PathBuf], replaced: &[(PathBuf, Option<Vec<u8>>)]| {
            fsutil::remove_all(created);
            for (p, old) in replaced {
                match old {
                    Some(old) => drop(fsutil::replace_output(p, old, 0o644)),
                    None => fsutil::remove_all(std::slice::from_ref(p)),
                }
            }
        };
        for (p, content) in &replace {
            // A regular file a moment ago (compare_public); read only if it still is.
            let old = match fsutil::PathKind::of(p) {
                Ok(fsutil::PathKind::File) => {
                    std::fs::read(p).map(Some).map_err(Error::io("reading", p))
                }
                Ok(_) => fsutil::check_output(p, fsutil::Output::Replace).map(|()| None),
                Err(e) => Err(e),
            };
            let res = old.and_then(|old| {
                fsutil::replace_output(p, content, 0o644)?;
                Ok(old)
            });
            match res {
                Ok(old) => replaced.push((p.clone(), old)),
                Err(e) => {
                    undo(&created, &replaced);
                    return Err(e);
                }
            }
        }
        // In the order planned.
        let files: Vec<PathBuf> = plan
            .iter()
            .map(|(p, ..)| p.clone())
            .filter(|p| created.contains(p) || replaced.iter().any(|(r, _)| r == p))
            .collect();
        let replaced_paths: Vec<PathBuf> = replaced.iter().map(|(p, _)| p.clone()).collect();
        if !files.is_empty() {
            let mut detail = serde_json::json!({"key": key.as_str()});
            if !replaced_paths.is_empty() {
                detail["replaced"] = absolute_paths(&replaced_paths).into();
            }
            if let Err(e) = self.audit_files("export", rec, &detail, &files) {
                undo(&created, &replaced);
                return Err(e);
            }
        }
        Ok(ExportReport {
            name: rec.name.clone(),
            serial: rec.serial.hex(),
            files,
            unchanged,
            replaced: replaced_paths,
            key: key.as_str(),
        })
    }

    /// Creates every file of `plan` new (all are checked before any is written), then records
    /// `action` in the audit log with the file names. If a write or the audit entry fails,
    /// the files already written are removed: key material never leaves the store unaudited.
    pub(crate) fn write_new_files(
        &self,
        plan: &[(PathBuf, Zeroizing<Vec<u8>>, u32)],
        action: &str,
        rec: &CertRecord,
        detail: &serde_json::Value,
    ) -> Result<Vec<PathBuf>> {
        for (p, _, _) in plan {
            // Nothing may be there (a file, a link, a device, …); a directory above it may be
            // missing (created below), but not a file in its place.
            fsutil::check_output(p, fsutil::Output::NewWithDirs)?;
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                fsutil::create_dir(dir, 0o700)?;
            }
        }
        let written = fsutil::create_all_new(plan)?;
        if let Err(e) = self.audit_files(action, rec, detail, &written) {
            fsutil::remove_all(&written);
            return Err(e);
        }
        Ok(written)
    }

    /// Records `action` in the audit log with `detail` and the absolute paths of `files`.
    fn audit_files(
        &self,
        action: &str,
        rec: &CertRecord,
        detail: &serde_json::Value,
        files: &[PathBuf],
    ) -> Result<()> {
        let mut detail = detail.clone();
        if let serde_json::Value::Object(m) = &mut detail {
            // Absolute paths: the log must say where the key went, whatever the cwd was.
            m.insert("files".into(), absolute_paths(files).into());
        }
        self.audit(action, &rec.name, &rec.serial.hex(), &detail)
    }
}

fn absolute_paths(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        })
        .collect()
}
