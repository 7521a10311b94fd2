//! Secrets as types: passphrases and private keys, zeroized on drop, never printed.

use std::fmt;

use zeroize::Zeroizing;

/// A passphrase that unlocks (or will lock) a store. Zeroized on drop; `Debug` prints no content.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

/// Minimum length of a new store passphrase, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

impl Passphrase {
    /// Wraps a passphrase. A single trailing newline (as left by `echo` into a file) is removed.
    pub fn new(mut s: String) -> Self {
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        Passphrase(Zeroizing::new(s))
    }

    /// The passphrase bytes, for key derivation only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase as text, for encodings that need characters (the PKCS#12 BMPString) or
    /// for showing a generated passphrase once.
    pub fn expose_str(&self) -> &str {
        &self.0
    }

    /// Checks the rules for a *new* passphrase (init, passwd): not empty, long enough.
    pub fn check_new(&self) -> crate::Result<()> {
        let n = self.0.chars().count();
        if n < MIN_PASSPHRASE_CHARS {
            return Err(crate::Error::BadPassphrase {
                reason: format!(
                    "it has {n} characters; at least {MIN_PASSPHRASE_CHARS} are required"
                ),
            });
        }
        Ok(())
    }

    /// Constant-time equality (for confirmation prompts).
    pub fn ct_eq(&self, other: &Passphrase) -> bool {
        let (a, b) = (self.expose(), other.expose());
        if a.len() != b.len() {
            return false;
        }
        aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// A private key in PKCS#8 DER form. Zeroized on drop; `Debug` prints no content.
pub struct SecretKeyDer(Zeroizing<Vec<u8>>);

impl SecretKeyDer {
    /// Wraps key bytes.
    pub fn new(der: Vec<u8>) -> Self {
        SecretKeyDer(Zeroizing::new(der))
    }

    /// The PKCS#8 DER bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The unencrypted PKCS#8 PEM encoding (PEM label `PRIVATE KEY`), zeroized on drop.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::pem::encode("PRIVATE KEY", self.expose()))
    }
}

impl fmt::Debug for SecretKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKeyDer(<redacted>)")
    }
}
