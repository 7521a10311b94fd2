//! Key algorithms and key generation.

use std::str::FromStr;

use rcgen::{KeyPair, RsaKeySize, SignatureAlgorithm};

use crate::secret::SecretKeyDer;
use crate::{Error, Result};

/// A key algorithm vpnca can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// RSA 2048-bit, SHA-256 signatures. The default: AWS Client VPN accepts only RSA 1024/2048.
    #[default]
    Rsa2048,
    /// RSA 3072-bit.
    Rsa3072,
    /// RSA 4096-bit.
    Rsa4096,
    /// ECDSA on P-256 with SHA-256.
    P256,
    /// ECDSA on P-384 with SHA-384.
    P384,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// All algorithms, in CLI order.
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::P256,
        KeyAlgorithm::P384,
        KeyAlgorithm::Ed25519,
    ];

    /// The CLI name (`rsa2048`, `p256`, …).
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "rsa2048",
            KeyAlgorithm::Rsa3072 => "rsa3072",
            KeyAlgorithm::Rsa4096 => "rsa4096",
            KeyAlgorithm::P256 => "p256",
            KeyAlgorithm::P384 => "p384",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// Whether AWS Client VPN accepts certificates with this key (RSA 1024/2048 only).
    pub fn aws_client_vpn_compatible(self) -> bool {
        self == KeyAlgorithm::Rsa2048
    }

    fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                &rcgen::PKCS_RSA_SHA256
            }
            KeyAlgorithm::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// Generates a fresh key pair.
    pub fn generate(self) -> Result<KeyPair> {
        let alg = self.signature_algorithm();
        let size = match self {
            KeyAlgorithm::Rsa2048 => RsaKeySize::_2048,
            KeyAlgorithm::Rsa3072 => RsaKeySize::_3072,
            KeyAlgorithm::Rsa4096 => RsaKeySize::_4096,
            _ => return KeyPair::generate_for(alg).map_err(Error::from),
        };
        KeyPair::generate_rsa_for(alg, size).map_err(Error::from)
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::input(
                    "key algorithm",
                    format!("{s:?}; choose one of rsa2048, rsa3072, rsa4096, p256, p384, ed25519"),
                )
            })
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Loads a PKCS#8 private key for signing (RSA keys sign with SHA-256).
pub fn load_key_pair(der: &SecretKeyDer) -> Result<KeyPair> {
    KeyPair::try_from(der.expose())
        .map_err(|e| Error::Crypto(format!("cannot load private key: {e}")))
}

/// The PKCS#8 DER of a key pair, as a secret.
pub fn key_der(kp: &KeyPair) -> SecretKeyDer {
    SecretKeyDer::new(kp.serialize_der())
}
