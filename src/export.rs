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

/// Files written by an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The certificate's name.
    pub name: String,
    /// Its serial.
    pub serial: String,
    /// The files, in the order written.
    pub files: Vec<PathBuf>,
    /// Whether a key was written, and how: `none`, `plain`, `encrypted` or `pkcs12`.
    pub key: &'static str,
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
    /// Writes `DIR/NAME.crt`, `DIR/ca.crt` (the CA chain) and, when asked, `DIR/NAME.key`.
    /// Every file is created new (never overwritten; all are checked before any is written),
    /// keys with mode 0600. Recorded in the audit log.
    pub fn export(
        &self,
        rec: &CertRecord,
        out_dir: &Path,
        key: &KeyExport,
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
        let mut plan: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
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
                plan.push((file("p12"), Zeroizing::new(der), 0o600));
            }
            _ => {
                plan.push((file("crt"), Zeroizing::new(rec.pem().into_bytes()), 0o644));
                plan.push((
                    out_dir.join("ca.crt"),
                    Zeroizing::new(self.ca_chain_pem()?.into_bytes()),
                    0o644,
                ));
                let key_pem = match key {
                    KeyExport::Plain => Some(self.private_key(rec)?.to_pem()?),
                    KeyExport::Encrypted(p) => Some(encrypt_pkcs8(&self.private_key(rec)?, p)?),
                    _ => None,
                };
                if let Some(k) = key_pem {
                    plan.push((file("key"), Zeroizing::new(k.as_bytes().to_vec()), 0o600));
                }
            }
        }
        let written = self.write_new_files(
            &plan,
            "export",
            rec,
            &serde_json::json!({"key": key.as_str()}),
        )?;
        Ok(ExportReport {
            name: rec.name.clone(),
            serial: rec.serial.hex(),
            files: written,
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
        let mut detail = detail.clone();
        if let serde_json::Value::Object(m) = &mut detail {
            // Absolute paths: the log must say where the key went, whatever the cwd was.
            m.insert(
                "files".into(),
                written
                    .iter()
                    .map(|p| {
                        std::path::absolute(p)
                            .unwrap_or_else(|_| p.clone())
                            .display()
                            .to_string()
                    })
                    .collect(),
            );
        }
        if let Err(e) = self.audit(action, &rec.name, &rec.serial.hex(), &detail) {
            fsutil::remove_all(&written);
            return Err(e);
        }
        Ok(written)
    }
}
