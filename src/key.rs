//! Key algorithms and key generation.

use std::str::FromStr;

use rcgen::{KeyPair, KeyUsagePurpose, PublicKeyData, RsaKeySize, SignatureAlgorithm};

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

    /// The key type, which decides the keyUsage bits a certificate for the key may carry.
    pub fn key_type(self) -> KeyType {
        match self {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => KeyType::Rsa,
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => KeyType::Ec,
            KeyAlgorithm::Ed25519 => KeyType::Ed25519,
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

/// The type of a public key, whatever its size: what decides which keyUsage bits a
/// certificate for it may carry (see [`KeyType::permits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA (`rsaEncryption`).
    Rsa,
    /// Elliptic curve (`id-ecPublicKey`: P-256, P-384).
    Ec,
    /// Ed25519 (`id-Ed25519`).
    Ed25519,
}

impl KeyType {
    /// The key type of a DER SubjectPublicKeyInfo, by its algorithm OID. Any other algorithm
    /// (RSASSA-PSS, Ed448, DSA, …) is refused: vpnca does not issue for it.
    pub fn of_spki(spki_der: &[u8]) -> Result<KeyType> {
        use x509_parser::prelude::FromDer;
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::Crypto(format!("public key: {e}")))?;
        match spki.algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.1" => Ok(KeyType::Rsa),
            "1.2.840.10045.2.1" => Ok(KeyType::Ec),
            "1.3.101.112" => Ok(KeyType::Ed25519),
            other => Err(Error::input(
                "public key",
                format!(
                    "algorithm {other} is not one vpnca issues certificates for (RSA, EC, Ed25519)"
                ),
            )),
        }
    }

    /// The key type of a key pair.
    pub fn of_key_pair(kp: &KeyPair) -> Result<KeyType> {
        KeyType::of_spki(&kp.subject_public_key_info())
    }

    /// How the key type is named in messages: `RSA`, `EC`, `Ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::Ec => "EC",
            KeyType::Ed25519 => "Ed25519",
        }
    }

    /// Whether a certificate for a key of this type may carry the keyUsage bit `ku`, as pkilint
    /// checks it (`pkix.key_usage_value_prohibited_for_…`):
    ///
    /// - RSA: every bit but keyAgreement (RFC 4055 §1.2; an RSA key does no key agreement);
    /// - EC: every bit but keyEncipherment and dataEncipherment (RFC 5480 §3, RFC 8813 §3: an EC
    ///   key encrypts nothing);
    /// - Ed25519: digitalSignature, nonRepudiation, keyCertSign and cRLSign only (RFC 8410 §5,
    ///   RFC 9295 §3: a signature-only key).
    pub fn permits(self, ku: KeyUsagePurpose) -> bool {
        use KeyUsagePurpose as K;
        match self {
            KeyType::Rsa => !matches!(ku, K::KeyAgreement),
            KeyType::Ec => !matches!(ku, K::KeyEncipherment | K::DataEncipherment),
            KeyType::Ed25519 => matches!(
                ku,
                K::DigitalSignature | K::ContentCommitment | K::KeyCertSign | K::CrlSign
            ),
        }
    }
}

impl std::fmt::Display for KeyType {
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
