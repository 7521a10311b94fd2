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
    /// Whether a key was written, and how: `none`, `plain` or `encrypted`.
    pub key: &'static str,
}

/// Encrypts a PKCS#8 key with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) as PEM
/// `ENCRYPTED PRIVATE KEY`.
pub fn encrypt_pkcs8(key: &SecretKeyDer, pass: &Passphrase) -> Result<Zeroizing<String>> {
    use pkcs8::der::Decode;
    let salt: [u8; 16] = crate::store::crypto::random()?;
    let iv: [u8; 16] = crate::store::crypto::random()?;
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
            .map_err(|e| Error::Crypto(format!("PBES2 parameters: {e}")))?;
    let info = pkcs8::PrivateKeyInfo::from_der(key.expose())
        .map_err(|e| Error::Crypto(format!("PKCS#8: {e}")))?;
    let doc = info
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
        if rec.name == "ca" {
            return Err(Error::input(
                "name",
                "a certificate named \"ca\" would collide with the chain file ca.crt; export it with `vpnca show ca --pem` instead",
            ));
        }
        if let KeyExport::Encrypted(p) = key {
            p.check_new()?;
        }
        let cert_path = out_dir.join(format!("{}.crt", rec.name));
        let chain_path = out_dir.join("ca.crt");
        let key_path = out_dir.join(format!("{}.key", rec.name));
        let key_pem = match key {
            KeyExport::None => None,
            KeyExport::Plain => Some(self.private_key(rec)?.to_pem()),
            KeyExport::Encrypted(p) => Some(encrypt_pkcs8(&self.private_key(rec)?, p)?),
        };
        let mut plan: Vec<(PathBuf, Zeroizing<String>, u32)> = vec![
            (cert_path, Zeroizing::new(rec.pem()), 0o644),
            (chain_path, Zeroizing::new(self.ca_chain_pem()?), 0o644),
        ];
        if let Some(k) = key_pem {
            plan.push((key_path, k, 0o600));
        }
        fsutil::create_dir(out_dir, 0o700)?;
        for (p, _, _) in &plan {
            if p.symlink_metadata().is_ok() {
                return Err(Error::FileExists { path: p.clone() });
            }
        }
        let mut written: Vec<PathBuf> = Vec::new();
        for (p, content, mode) in &plan {
            if let Err(e) = fsutil::create_new(p, content.as_bytes(), *mode) {
                for w in &written {
                    let _ = std::fs::remove_file(w);
                }
                return Err(e);
            }
            written.push(p.clone());
        }
        let kind = match key {
            KeyExport::None => "none",
            KeyExport::Plain => "plain",
            KeyExport::Encrypted(_) => "encrypted",
        };
        self.audit(
            "export",
            &rec.name,
            &rec.serial.hex(),
            &serde_json::json!({"key": kind, "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()}),
        )?;
        Ok(ExportReport {
            name: rec.name.clone(),
            serial: rec.serial.hex(),
            files: written,
            key: kind,
        })
    }
}
