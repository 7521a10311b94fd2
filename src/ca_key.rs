//! The CA's private key: the store's own (decrypted from its record) or a key held in AWS KMS
//! (issue 18, docs/aws.md#ca-key-in-kms). Certificates, CRLs and the state-signing key's
//! certificate are all signed through [`CaKey`], whichever it is.
//!
//! A KMS CA key is named by a [`KmsKeyRef`] (key ARN, region, key spec, signing algorithm,
//! public key) kept in the store's authenticated state (item `ca-key`,
//! docs/store-format.md): read back, it is proven against the state head like every other
//! value a decision reads, and its public key must be the CA certificate's. Signing with it
//! needs the `aws` feature; a build without it refuses with a message saying so.

use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm, SigningKey};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where a KMS-held CA key is, as the store records it (the `ca-key` state item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsKeyRef {
    /// The key ARN (every call names it, whatever the user gave to `ca --kms-key`).
    pub arn: String,
    /// The key's region (a KMS key lives in one region).
    pub region: String,
    /// KMS's key spec (`RSA_2048`, `ECC_NIST_P256`, …).
    pub key_spec: String,
    /// The KMS signing algorithm (`RSASSA_PKCS1_V1_5_SHA_256`, `ECDSA_SHA_256`, …).
    pub signing_algorithm: String,
    /// The DER SubjectPublicKeyInfo KMS's GetPublicKey returned, hex.
    pub public_key: String,
}

impl KmsKeyRef {
    /// The canonical text stored (JSON, fields in declaration order).
    #[cfg(feature = "aws")]
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored text back; [`Error::Tampered`] when it is not a reference.
    pub(crate) fn parse(text: &str) -> Result<KmsKeyRef> {
        serde_json::from_str(text).map_err(|e| Error::Tampered {
            what: format!("the CA's KMS key reference is unreadable ({e})"),
        })
    }

    /// The public key, DER.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        crate::store::crypto::unhex(&self.public_key).ok_or_else(|| Error::Tampered {
            what: "the CA's KMS key reference has an unreadable public key".into(),
        })
    }
}

/// The key a CA signs with.
pub(crate) enum CaKey {
    /// The store's own key, decrypted from the CA record.
    Local(KeyPair),
    /// A key in AWS KMS: each signature is one KMS `Sign` call, verified locally.
    #[cfg(feature = "aws")]
    Kms(crate::aws::kms::KmsSigner<'static>),
}

impl CaKey {
    /// A signer for the KMS key `r` names, whose public key must be `ca_spki` (the CA
    /// certificate's): [`Error::Tampered`] otherwise. Signs with the store's client
    /// ([`crate::Store::use_kms`]) when it is for the reference's region, else connects to KMS
    /// in that region (credentials and endpoint from the standard AWS chain,
    /// `AWS_ENDPOINT_URL_KMS`); no call is made until something is signed.
    pub(crate) fn kms(store: &crate::Store, r: &KmsKeyRef, ca_spki: &[u8]) -> Result<CaKey> {
        let spki = r.public_key_der()?;
        if spki != ca_spki {
            return Err(Error::Tampered {
                what: format!(
                    "the CA's KMS key reference ({}) holds a public key that is not the CA certificate's",
                    r.arn
                ),
            });
        }
        #[cfg(feature = "aws")]
        {
            use crate::aws::kms::{KeySpec, Kms, KmsKey, KmsSigner};
            let spec = KeySpec::from_kms(&r.key_spec)
                .filter(|s| s.signing_algorithm() == r.signing_algorithm)
                .ok_or_else(|| Error::Tampered {
                    what: format!(
                        "the CA's KMS key reference names a key spec or signing algorithm vpnca does not use ({} {})",
                        r.key_spec, r.signing_algorithm
                    ),
                })?;
            let key = KmsKey::from_parts(&r.arn, spec, &spki)?;
            let kms = store.kms_client_for(&r.region)?;
            let _: &Kms = &kms;
            Ok(CaKey::Kms(KmsSigner::shared(kms, key)))
        }
        #[cfg(not(feature = "aws"))]
        let _ = store;
        #[cfg(not(feature = "aws"))]
        Err(Error::Refused {
            reason: format!(
                "this CA's key is in AWS KMS ({}), and this vpnca was built without AWS support (feature `aws`): use a vpnca built with it",
                r.arn
            ),
        })
    }

    /// An rcgen error from signing with this key as a vpnca [`Error`]: for a KMS key, the KMS
    /// or verification error behind rcgen's `RemoteKeyError`.
    pub(crate) fn explain(&self, e: rcgen::Error) -> Error {
        match self {
            CaKey::Local(_) => Error::from(e),
            #[cfg(feature = "aws")]
            CaKey::Kms(k) => k.explain(e),
        }
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::Local(k) => PublicKeyData::der_bytes(k),
            #[cfg(feature = "aws")]
            CaKey::Kms(k) => k.der_bytes(),
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            CaKey::Local(k) => PublicKeyData::algorithm(k),
            #[cfg(feature = "aws")]
            CaKey::Kms(k) => k.algorithm(),
        }
    }
}

impl SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::Local(k) => SigningKey::sign(k, msg),
            #[cfg(feature = "aws")]
            CaKey::Kms(k) => k.sign(msg),
        }
    }
}

impl crate::Store {
    /// What `status` reports about a CA key in KMS (nothing for a key the store holds): asks
    /// KMS (DescribeKey, GetPublicKey) whether the key still exists, is enabled, can sign, and
    /// has the public key the store recorded (the CA certificate's). Each problem is a
    /// finding `ca-key` (`disabled`, `pending-deletion`, `unusable`, `unreachable`,
    /// `mismatch`): the CA cannot sign until it is fixed.
    #[cfg(feature = "aws")]
    pub(crate) fn kms_key_findings(&self) -> Result<Vec<crate::check::Finding>> {
        let Some(r) = self.ca_kms_key()? else {
            return Ok(Vec::new());
        };
        let finding = |problem: &str, message: String| crate::check::Finding {
            subject: "ca-key".into(),
            problem: problem.into(),
            message,
            name: Some(r.arn.clone()),
            serial: None,
            date: None,
        };
        let kms = match self.kms_client().filter(|k| k.region() == r.region) {
            Some(k) => k,
            None => match crate::aws::kms::Kms::connect(&crate::aws::AwsOptions {
                region: Some(r.region.clone()),
                ..Default::default()
            }) {
                Ok(k) => std::sync::Arc::new(k),
                // No credentials here: a finding, not the end of the report.
                Err(e) => {
                    return Ok(vec![finding(
                        "unreachable",
                        format!("cannot ask KMS whether the CA key {} can sign: {e}", r.arn),
                    )]);
                }
            },
        };
        let cannot = "the CA cannot sign a certificate or CRL until it is fixed";
        Ok(match kms.signing_key(&r.arn) {
            Ok(k) if k.spki_der() == r.public_key_der()?.as_slice() => Vec::new(),
            Ok(_) => vec![finding(
                "mismatch",
                format!(
                    "KMS key {} now has another public key than the CA certificate's: {cannot}",
                    r.arn
                ),
            )],
            Err(e @ Error::Kms { .. }) => {
                let problem = match &e {
                    Error::Kms { code, .. } if code == "DisabledException" => "disabled",
                    Error::Kms { what, .. } if what.contains("pending deletion") => {
                        "pending-deletion"
                    }
                    Error::Kms { code, .. } if matches!(code.as_str(), "Network" | "Timeout") => {
                        "unreachable"
                    }
                    _ => "unusable",
                };
                vec![finding(problem, format!("{e}; {cannot}"))]
            }
            Err(e @ Error::KmsKeyUnsuitable { .. }) => {
                vec![finding("unusable", format!("{e}; {cannot}"))]
            }
            Err(e) => return Err(e),
        })
    }
}
