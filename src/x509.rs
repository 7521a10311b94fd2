//! Reading certificates and requests (x509-parser), for checks and for renewals.

use x509_parser::prelude::*;

use crate::key::KeyAlgorithm;
use crate::name::San;
use crate::{Error, Result};

/// Parses a DER certificate; `source` names it in errors.
pub(crate) fn parse_cert<'a>(der: &'a [u8], source: &str) -> Result<X509Certificate<'a>> {
    match X509Certificate::from_der(der) {
        Ok(([], c)) => Ok(c),
        Ok(_) => Err(Error::BadCertificate {
            source_name: source.into(),
            reason: "trailing data after the certificate".into(),
        }),
        Err(e) => Err(Error::BadCertificate {
            source_name: source.into(),
            reason: format!("not a valid X.509 certificate ({e})"),
        }),
    }
}

/// The subject CN, if any.
pub(crate) fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

/// The key algorithm of a SubjectPublicKeyInfo, when it is one vpnca generates.
pub(crate) fn algorithm_of(spki: &SubjectPublicKeyInfo<'_>) -> Option<KeyAlgorithm> {
    use x509_parser::public_key::PublicKey;
    match spki.parsed().ok()? {
        PublicKey::RSA(k) => match k.key_size() {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        },
        PublicKey::EC(p) => match p.key_size() {
            256 => Some(KeyAlgorithm::P256),
            384 => Some(KeyAlgorithm::P384),
            _ => None,
        },
        PublicKey::Unknown(_) if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            Some(KeyAlgorithm::Ed25519)
        }
        _ => None,
    }
}

/// The DNS, IP and e-mail SANs of a certificate.
pub(crate) fn sans(cert: &X509Certificate<'_>) -> Vec<San> {
    let mut out = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for gn in &ext.value.general_names {
            match gn {
                GeneralName::DNSName(d) => out.push(San::Dns(d.to_string())),
                GeneralName::RFC822Name(e) => out.push(San::Email(e.to_string())),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => out.push(San::Ip(std::net::IpAddr::from(
                        <[u8; 4]>::try_from(*b).unwrap_or_default(),
                    ))),
                    16 => out.push(San::Ip(std::net::IpAddr::from(
                        <[u8; 16]>::try_from(*b).unwrap_or_default(),
                    ))),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    out
}

/// Whether `cert` has at least one DNS SAN (AWS Client VPN needs one on a server certificate).
pub(crate) fn has_dns_san(cert: &X509Certificate<'_>) -> bool {
    sans(cert).iter().any(|s| matches!(s, San::Dns(_)))
}

/// Whether `cert` is signed by the key in `issuer`.
pub(crate) fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// A verified certificate signing request.
pub struct Csr {
    /// The subject CN, if the request has one.
    pub common_name: Option<String>,
    /// The requester's SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// The key algorithm, when it is one vpnca knows.
    pub algorithm: Option<KeyAlgorithm>,
}

impl Csr {
    /// Parses a CSR (PEM `CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`, or DER) and verifies
    /// its self-signature. Extensions in the request are ignored: profiles decide.
    pub fn parse(data: &[u8], source: &str) -> Result<Csr> {
        let bad = |reason: String| Error::Csr {
            source_name: source.into(),
            reason,
        };
        if data.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("the file is empty".into()));
        }
        let der = if data.first() == Some(&0x30) {
            data.to_vec()
        } else {
            let blocks = crate::pem::decode_all(data, source)
                .map_err(|_| bad("not a PEM or DER certificate request".into()))?;
            let mut reqs = blocks.into_iter().filter(|b| {
                b.label == "CERTIFICATE REQUEST" || b.label == "NEW CERTIFICATE REQUEST"
            });
            let first = reqs.next().ok_or_else(|| {
                let text = String::from_utf8_lossy(data);
                bad(
                    if text.contains("-----BEGIN CERTIFICATE REQUEST-----")
                        || text.contains("-----BEGIN NEW CERTIFICATE REQUEST-----")
                    {
                        "its PEM block has no END line (truncated?)".into()
                    } else {
                        "no PEM CERTIFICATE REQUEST block found".into()
                    },
                )
            })?;
            if reqs.next().is_some() {
                return Err(bad("more than one request in the file".into()));
            }
            first.der
        };
        let (rest, req) = X509CertificationRequest::from_der(&der).map_err(|e| {
            bad(match e {
                x509_parser::nom::Err::Incomplete(_) => {
                    "not a valid PKCS#10 request: the DER data ends early (truncated?)".into()
                }
                x509_parser::nom::Err::Error(x) | x509_parser::nom::Err::Failure(x) => {
                    format!("not a valid PKCS#10 request (malformed DER: {x})")
                }
            })
        })?;
        if !rest.is_empty() {
            return Err(bad("trailing data after the request".into()));
        }
        let info = &req.certification_request_info;
        if algorithm_of(&info.subject_pki).is_none() {
            return Err(bad("unsupported public key: vpnca signs RSA 2048/3072/4096, P-256, P-384 and Ed25519 keys (RSA-1024 is too weak, even though AWS Client VPN would accept it)".into()));
        }
        req.verify_signature().map_err(|_| {
            bad("its signature does not verify (corrupted, or not signed by its own key)".into())
        })?;
        let algorithm = algorithm_of(&info.subject_pki);
        Ok(Csr {
            common_name: common_name(&info.subject),
            spki_der: info.subject_pki.raw.to_vec(),
            algorithm,
        })
    }
}

/// Human-readable facts about a certificate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Description {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// SANs as `DNS:…`, `IP:…`, `email:…`.
    pub sans: Vec<String>,
    /// Key algorithm (`rsa2048`, `p256`, …, or `other`).
    pub key_algorithm: String,
}

/// Describes a DER certificate.
pub fn describe(der: &[u8]) -> Result<Description> {
    let c = parse_cert(der, "certificate")?;
    Ok(Description {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        sans: sans(&c).iter().map(|s| s.to_string()).collect(),
        key_algorithm: algorithm_of(c.public_key())
            .map(|a| a.name().to_string())
            .unwrap_or_else(|| "other".into()),
    })
}

/// Whether a PKCS#8 private key (DER) belongs to `cert`; `None` when the key cannot be read.
/// RSA keys are compared by modulus and exponent, whatever their size (aws-lc reads only
/// 2048 to 8192-bit RSA keys; Client VPN and old easy-rsa PKIs use 1024); others through rcgen.
pub(crate) fn key_matches_cert(key_der: &[u8], cert: &X509Certificate<'_>) -> Option<bool> {
    use rcgen::PublicKeyData;
    match rsa_public_from_pkcs8(key_der) {
        Some(Ok((n, e))) => Some(rsa_matches(cert, &n, &e)),
        Some(Err(())) => None,
        None => rcgen::KeyPair::try_from(key_der)
            .ok()
            .map(|kp| kp.der_bytes() == cert.public_key().subject_public_key.data.as_ref()),
    }
}

/// For an RSA PKCS#8 key: `Some(Ok((modulus, exponent)))`; `Some(Err)` when it says RSA but
/// cannot be read; `None` for other algorithms.
#[allow(clippy::type_complexity)]
fn rsa_public_from_pkcs8(der: &[u8]) -> Option<Result<(Vec<u8>, Vec<u8>), ()>> {
    use pkcs8::der::Decode;
    let info = pkcs8::PrivateKeyInfo::from_der(der).ok()?;
    if info.algorithm.oid.to_string() != "1.2.840.113549.1.1.1" {
        return None;
    }
    // RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, … } (RFC 8017 A.1.2)
    let parsed = x509_parser::der_parser::parse_der(info.private_key)
        .ok()
        .and_then(|(_, obj)| {
            let seq = obj.as_sequence().ok()?;
            let n = seq.get(1)?.as_slice().ok()?.to_vec();
            let e = seq.get(2)?.as_slice().ok()?.to_vec();
            Some((n, e))
        });
    Some(parsed.ok_or(()))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

fn rsa_matches(leaf: &X509Certificate<'_>, n: &[u8], e: &[u8]) -> bool {
    use x509_parser::public_key::PublicKey;
    match leaf.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => {
            strip_zeros(k.modulus) == strip_zeros(n) && strip_zeros(k.exponent) == strip_zeros(e)
        }
        _ => false,
    }
}
