//! A CA key held in AWS KMS (issue 18): the KMS calls vpnca makes (DescribeKey, GetPublicKey,
//! Sign) and [`KmsSigner`], an [`rcgen::SigningKey`] that signs certificates and CRLs with KMS.
//!
//! Like [`super::ec2`], KMS is called directly: the JSON 1.1 protocol (`X-Amz-Target:
//! TrentService.<Op>`), signed with SigV4 (aws-sigv4), sent with hyper; aws-sdk-kms is not
//! used (its build cost on this project's 2-core machine, docs/design/kms-ca.md). Credentials,
//! region and endpoint come from aws-config as for ACM and EC2.
//!
//! **Signing.** [`Kms::sign_digest`] hashes the message locally (SHA-256, or SHA-384 for a
//! P-384 key) and sends only the digest (`MessageType=DIGEST`): RAW messages are limited to
//! 4,096 bytes, which a certificate with many SANs or any large CRL exceeds. **Every signature
//! is verified locally** with the key's public key (aws-lc-rs) before it is returned; one that
//! does not verify is [`Error::KmsBadSignature`].
//!
//! **Throttling.** `ThrottlingException` (and 5xx answers, `KMSInternalException`,
//! `DependencyTimeoutException`, `KeyUnavailableException`, network failures and timeouts) are
//! retried with capped exponential back-off and full jitter ([`RetryPolicy`]); each attempt has
//! a timeout. [`Kms::stats`] counts the calls and the throttled attempts, for a batch summary.
//!
//! **Blocking.** [`Kms`] owns a current-thread tokio runtime, like [`super::Aws`], and its
//! methods block on it. rcgen's [`rcgen::SigningKey::sign`] is synchronous, so [`KmsSigner`]
//! blocks on that runtime for each signature: one KMS call per certificate or CRL, nothing
//! spawned, no runtime of the caller's needed. Do not call it from inside another async
//! runtime: that is refused with an error (tokio would panic). Several threads may share one
//! [`Kms`] (it is `Sync`) and sign concurrently: on a current-thread runtime the first
//! `block_on` drives the I/O for all of them (tokio's documented behaviour; tests/kms.rs
//! checks that four slow answers overlap). A batch can so sign with bounded concurrency by
//! running N threads over one client.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_lc_rs::{digest, signature};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AwsOptions, error_chain};
use crate::{Error, Result};

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const FORM_TYPE: &str = "application/x-www-form-urlencoded";
/// The largest answer read (KMS's are a few kilobytes).
const MAX_ANSWER: usize = 1 << 20;

/// The key specs vpnca can use for a CA key in KMS, and how each one signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySpec {
    /// RSA 2048 bits, signed with `RSASSA_PKCS1_V1_5_SHA_256` (the Client VPN default).
    Rsa2048,
    /// RSA 3072 bits, `RSASSA_PKCS1_V1_5_SHA_256`.
    Rsa3072,
    /// RSA 4096 bits, `RSASSA_PKCS1_V1_5_SHA_256`.
    Rsa4096,
    /// NIST P-256, `ECDSA_SHA_256`.
    EccNistP256,
    /// NIST P-384, `ECDSA_SHA_384`.
    EccNistP384,
}

impl KeySpec {
    /// KMS's name (`RSA_2048`, `ECC_NIST_P256`, …); `None` for a spec vpnca does not use.
    pub fn from_kms(name: &str) -> Option<KeySpec> {
        Some(match name {
            "RSA_2048" => KeySpec::Rsa2048,
            "RSA_3072" => KeySpec::Rsa3072,
            "RSA_4096" => KeySpec::Rsa4096,
            "ECC_NIST_P256" => KeySpec::EccNistP256,
            "ECC_NIST_P384" => KeySpec::EccNistP384,
            _ => return None,
        })
    }

    /// The spec of a public key (DER SubjectPublicKeyInfo), when it is one vpnca signs with.
    pub fn of_spki(spki_der: &[u8]) -> Option<KeySpec> {
        [
            KeySpec::Rsa2048,
            KeySpec::Rsa3072,
            KeySpec::Rsa4096,
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
        ]
        .into_iter()
        .find(|s| public_key_bits("", *s, spki_der).is_ok())
    }

    /// The spec of a key of vpnca's algorithm `a` (`None` for Ed25519, which vpnca does not
    /// sign with in KMS).
    pub fn for_algorithm(a: crate::KeyAlgorithm) -> Option<KeySpec> {
        Some(match a {
            crate::KeyAlgorithm::Rsa2048 => KeySpec::Rsa2048,
            crate::KeyAlgorithm::Rsa3072 => KeySpec::Rsa3072,
            crate::KeyAlgorithm::Rsa4096 => KeySpec::Rsa4096,
            crate::KeyAlgorithm::P256 => KeySpec::EccNistP256,
            crate::KeyAlgorithm::P384 => KeySpec::EccNistP384,
            _ => return None,
        })
    }

    /// KMS's name of the spec.
    pub fn kms_name(self) -> &'static str {
        match self {
            KeySpec::Rsa2048 => "RSA_2048",
            KeySpec::Rsa3072 => "RSA_3072",
            KeySpec::Rsa4096 => "RSA_4096",
            KeySpec::EccNistP256 => "ECC_NIST_P256",
            KeySpec::EccNistP384 => "ECC_NIST_P384",
        }
    }

    /// The key algorithm of vpnca's own keys that has this spec's shape (for the warnings
    /// about what AWS Client VPN accepts).
    pub fn key_algorithm(self) -> crate::KeyAlgorithm {
        match self {
            KeySpec::Rsa2048 => crate::KeyAlgorithm::Rsa2048,
            KeySpec::Rsa3072 => crate::KeyAlgorithm::Rsa3072,
            KeySpec::Rsa4096 => crate::KeyAlgorithm::Rsa4096,
            KeySpec::EccNistP256 => crate::KeyAlgorithm::P256,
            KeySpec::EccNistP384 => crate::KeyAlgorithm::P384,
        }
    }

    /// The KMS `SigningAlgorithm` vpnca signs with.
    pub fn signing_algorithm(self) -> &'static str {
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => "RSASSA_PKCS1_V1_5_SHA_256",
            KeySpec::EccNistP256 => "ECDSA_SHA_256",
            KeySpec::EccNistP384 => "ECDSA_SHA_384",
        }
    }

    /// The certificate and CRL signature algorithm (rcgen's).
    pub fn rcgen_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeySpec::EccNistP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeySpec::EccNistP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    /// The hash signed: SHA-256, or SHA-384 for P-384.
    fn digest_algorithm(self) -> &'static digest::Algorithm {
        match self {
            KeySpec::EccNistP384 => &digest::SHA384,
            _ => &digest::SHA256,
        }
    }

    fn verification_algorithm(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            KeySpec::EccNistP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeySpec::EccNistP384 => &signature::ECDSA_P384_SHA384_ASN1,
        }
    }

    /// RSA modulus bits or EC field bits, and for EC the curve's OID.
    fn shape(self) -> (usize, Option<&'static str>) {
        match self {
            KeySpec::Rsa2048 => (2048, None),
            KeySpec::Rsa3072 => (3072, None),
            KeySpec::Rsa4096 => (4096, None),
            KeySpec::EccNistP256 => (256, Some("1.2.840.10045.3.1.7")),
            KeySpec::EccNistP384 => (384, Some("1.3.132.0.34")),
        }
    }
}

/// A KMS key as DescribeKey tells it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyDescription {
    /// The key id (a UUID, or `mrk-…`).
    pub key_id: String,
    /// The key ARN.
    pub arn: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, `PendingImport`, …
    pub key_state: String,
    /// `SIGN_VERIFY`, `ENCRYPT_DECRYPT`, …
    pub key_usage: String,
    /// `RSA_2048`, `ECC_NIST_P256`, `SYMMETRIC_DEFAULT`, …
    pub key_spec: String,
    /// The signing algorithms the key supports (empty unless SIGN_VERIFY).
    pub signing_algorithms: Vec<String>,
    /// `AWS_KMS`, `EXTERNAL` (imported key material), …
    pub origin: String,
}

/// A KMS public key as GetPublicKey tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// The key ARN (GetPublicKey answers the ARN whatever form of id was asked).
    pub arn: String,
    /// The DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// `RSA_2048`, …
    pub key_spec: String,
    /// `SIGN_VERIFY`, …
    pub key_usage: String,
    /// The signing algorithms the key supports.
    pub signing_algorithms: Vec<String>,
}

/// A KMS key checked fit to sign for vpnca: enabled, SIGN_VERIFY, of a [`KeySpec`] vpnca
/// uses, its public key read and matching its spec. Made by [`Kms::signing_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKey {
    arn: String,
    spec: KeySpec,
    spki_der: Vec<u8>,
    /// The subjectPublicKey bits: PKCS#1 RSAPublicKey, or the uncompressed EC point.
    raw_public: Vec<u8>,
}

impl KmsKey {
    /// The key ARN (what every call names, whatever the user gave).
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The key spec.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The DER SubjectPublicKeyInfo KMS returned.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Whether `signature` is this key's signature of `message` (with the spec's algorithm),
    /// checked here with aws-lc-rs.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(
            self.spec.verification_algorithm(),
            self.raw_public.as_slice(),
        )
        .verify(message, signature)
        .is_ok()
    }

    /// A key from its ARN, spec and DER SubjectPublicKeyInfo as recorded earlier (the
    /// authenticated state keeps them), without calling KMS. The public key is checked
    /// against the spec.
    pub fn from_parts(arn: &str, spec: KeySpec, spki_der: &[u8]) -> Result<KmsKey> {
        let raw_public = public_key_bits(arn, spec, spki_der)?;
        Ok(KmsKey {
            arn: arn.to_owned(),
            spec,
            spki_der: spki_der.to_vec(),
            raw_public,
        })
    }
}

/// How KMS calls are retried and timed. The defaults suit KMS's asymmetric Sign quota
/// (hundreds of requests per second per account and region, shared by every caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The first back-off's upper bound; it doubles with each attempt.
    pub base_delay: Duration,
    /// The largest back-off bound.
    pub max_delay: Duration,
    /// How long one attempt may take (connect, send, answer).
    pub call_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The back-off before retry `retry` (1 for the first retry): "full jitter", a uniformly
    /// random delay between zero and min(max_delay, base_delay × 2^(retry−1)).
    pub fn backoff(&self, retry: u32) -> Duration {
        let bound = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_delay)
            .min(Duration::from_secs(3600));
        let mut r = [0u8; 8];
        // An RNG failure only loses the jitter: the bound itself is a correct back-off.
        if aws_lc_rs::rand::fill(&mut r).is_err() {
            return bound;
        }
        let fraction = (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64;
        bound.mul_f64(fraction)
    }
}

/// What a [`Kms`] client has done so far, for a batch summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct KmsStats {
    /// HTTP requests sent (attempts, retries included).
    pub requests: u64,
    /// Attempts KMS answered with `ThrottlingException`.
    pub throttled: u64,
    /// Signatures returned (each verified).
    pub signatures: u64,
}

/// Credentials given explicitly, instead of the standard AWS chain ([`Kms::connect`]).
pub struct StaticCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// A session token, for temporary credentials.
    pub session_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<bytes::Bytes>>;

/// A signed KMS client for one region and endpoint, blocking on its own current-thread
/// runtime (see the module documentation).
pub struct Kms {
    rt: tokio::runtime::Runtime,
    endpoint: http::Uri,
    /// STS, for [`Kms::caller_identity`] (`AWS_ENDPOINT_URL_STS`; with explicit
    /// credentials, the KMS endpoint).
    sts_endpoint: http::Uri,
    region: String,
    creds: Credentials,
    client: HttpsClient,
    policy: RetryPolicy,
    requests: AtomicU64,
    throttled: AtomicU64,
    signatures: AtomicU64,
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kms")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A KMS error answer: `{"__type": "…#Code", "message": "…"}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyMetadata {
    key_id: String,
    arn: String,
    key_state: Option<String>,
    key_usage: Option<String>,
    key_spec: Option<String>,
    #[serde(default)]
    signing_algorithms: Vec<String>,
    origin: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeKeyResponse {
    key_metadata: KeyMetadata,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetPublicKeyResponse {
    key_id: String,
    public_key: String,
    key_spec: Option<String>,
    /// The deprecated name of `KeySpec`, which KMS sends too (moto 5.2.1 sends only this).
    customer_master_key_spec: Option<String>,
    key_usage: Option<String>,
    #[serde(default)]
    signing_algorithms: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignResponse {
    signature: String,
    signing_algorithm: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParametersForImportResponse {
    key_id: String,
    import_token: String,
    public_key: String,
}

/// Who the credentials are (STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The 12-digit account id.
    pub account: String,
    /// The caller's ARN (`arn:aws:iam::…:user/…`, `arn:aws:sts::…:assumed-role/ROLE/SESSION`, …).
    pub arn: String,
}

impl CallerIdentity {
    /// The principal a key policy can name for this caller: an assumed role's session ARN
    /// becomes its role's ARN (`arn:aws:iam::ACCOUNT:role/ROLE`; a role with a path needs its
    /// path, which STS does not say: edit the printed policy then); others as they are.
    pub fn principal(&self) -> String {
        let parts: Vec<&str> = self.arn.splitn(6, ':').collect();
        if let [_, partition, "sts", _, account, res] = parts.as_slice()
            && let Some(rest) = res.strip_prefix("assumed-role/")
        {
            let role = rest.split('/').next().unwrap_or(rest);
            return format!("arn:{partition}:iam::{account}:role/{role}");
        }
        self.arn.clone()
    }

    /// The key policy `ca --kms-create` gives a new CA key: the account's root may administer
    /// the key (so IAM policies of the account apply, and the key can never become
    /// unmanageable), and the caller may use it as the CA: `kms:Sign`, `kms:GetPublicKey`,
    /// `kms:DescribeKey`. Pretty-printed JSON.
    pub fn ca_key_policy(&self) -> String {
        let partition = self.arn.split(':').nth(1).unwrap_or("aws");
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Id": "vpnca-ca-key",
            "Statement": [
                {
                    "Sid": "AccountAdministersTheKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": format!("arn:{partition}:iam::{}:root", self.account)},
                    "Action": "kms:*",
                    "Resource": "*"
                },
                {
                    "Sid": "VpncaCaSigns",
                    "Effect": "Allow",
                    "Principal": {"AWS": self.principal()},
                    "Action": ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"],
                    "Resource": "*"
                }
            ]
        });
        serde_json::to_string_pretty(&policy).unwrap_or_default()
    }
}

/// The wrapping algorithm vpnca imports key material with: the key material wrapped with a
/// fresh AES-256 key (AES key wrap with padding, RFC 5649), that AES key encrypted to KMS's
/// wrapping key with RSAES-OAEP (SHA-256, MGF1 SHA-256).
pub const WRAPPING_ALGORITHM: &str = "RSA_AES_KEY_WRAP_SHA_256";
/// The wrapping key spec vpnca asks for.
pub const WRAPPING_KEY_SPEC: &str = "RSA_4096";

/// What GetParametersForImport answers: the token ImportKeyMaterial needs, and the public key
/// to wrap the key material for.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportParameters {
    /// The key ARN.
    pub arn: String,
    /// The import token (opaque, valid 24 hours).
    pub import_token: Vec<u8>,
    /// KMS's wrapping public key, a DER SubjectPublicKeyInfo (RSA).
    pub wrapping_public_key: Vec<u8>,
}

impl std::fmt::Debug for ImportParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportParameters")
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

/// Wraps `pkcs8_der` (a private key, PKCS#8 DER) for ImportKeyMaterial with
/// [`WRAPPING_ALGORITHM`]: a fresh random AES-256 key wraps it (RFC 5649, key wrap with
/// padding), and that AES key is encrypted with RSAES-OAEP SHA-256 to `wrapping_spki` (KMS's
/// wrapping public key). The answer is the RSA ciphertext followed by the wrapped key. All in
/// memory; the AES key and every intermediate copy are zeroized.
pub fn wrap_key_material(wrapping_spki: &[u8], pkcs8_der: &[u8]) -> Result<Vec<u8>> {
    use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
    use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
    let fail = |what: &str| Error::Crypto(format!("cannot wrap the key material for KMS: {what}"));
    let rsa = PublicEncryptingKey::from_der(wrapping_spki)
        .ok()
        .and_then(|k| OaepPublicEncryptingKey::new(k).ok())
        .ok_or_else(|| fail("KMS's wrapping public key is not an RSA key"))?;
    if rsa.key_size_bits() < 2048 {
        return Err(fail("KMS's wrapping public key is shorter than 2048 bits"));
    }
    let mut aes_key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(aes_key.as_mut_slice()).map_err(|_| fail("no random bytes"))?;
    let mut out = vec![0u8; rsa.ciphertext_size()];
    let n = rsa
        .encrypt(&OAEP_SHA256_MGF1SHA256, aes_key.as_slice(), &mut out, None)
        .map_err(|_| fail("RSA-OAEP encryption failed"))?
        .len();
    out.truncate(n);
    let kek = AesKek::new(&AES_256, aes_key.as_slice()).map_err(|_| fail("bad AES key"))?;
    let mut wrapped = Zeroizing::new(vec![0u8; pkcs8_der.len() + 16]);
    let w = kek
        .wrap_with_padding(pkcs8_der, &mut wrapped)
        .map_err(|_| fail("AES key wrap failed"))?;
    out.extend_from_slice(w);
    Ok(out)
}

/// One attempt's failure: the KMS error code (or `Network`/`Timeout`), its message, and
/// whether a retry may help.
struct Failure {
    code: String,
    message: String,
    retry: bool,
}

impl Kms {
    /// A client for the region, credentials and KMS endpoint of `opts` and the standard AWS
    /// chain (`AWS_ENDPOINT_URL_KMS`, the global endpoint URL, the profile, else
    /// `https://kms.REGION.amazonaws.com`). [`Error::AwsConfig`] before any call when the
    /// region or credentials are missing.
    pub fn connect(opts: &AwsOptions) -> Result<Kms> {
        let r = super::resolve(opts)?;
        let url = super::service_url(&r.sdk, opts, "KMS", || default_endpoint(&r.region))?;
        let sts = super::service_url(&r.sdk, opts, "STS", || default_sts_endpoint(&r.region))?;
        let mut kms = Kms::build(r.rt, &url, &r.region, r.creds)?;
        kms.sts_endpoint = sts.parse().map_err(|e| Error::AwsConfig {
            reason: format!("STS endpoint URL {sts:?} is not a URL ({e})"),
        })?;
        Ok(kms)
    }

    /// A client with explicit credentials, endpoint URL and region (no AWS chain is read).
    pub fn with_credentials(endpoint: &str, region: &str, creds: StaticCredentials) -> Result<Kms> {
        super::check_url(endpoint)?;
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::AwsConfig {
                reason: format!("{region:?} is not a region name like eu-west-1"),
            });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::AwsConfig {
                reason: format!("cannot start the I/O runtime ({e})"),
            })?;
        let creds = Credentials::new(
            &creds.access_key_id,
            creds.secret_access_key.as_str(),
            creds.session_token.as_ref().map(|t| t.to_string()),
            None,
            "vpnca-static",
        );
        Kms::build(rt, endpoint, region, creds)
    }

    fn build(
        rt: tokio::runtime::Runtime,
        endpoint: &str,
        region: &str,
        creds: Credentials,
    ) -> Result<Kms> {
        let uri: http::Uri = endpoint.parse().map_err(|e| Error::AwsConfig {
            reason: format!("KMS endpoint URL {endpoint:?} is not a URL ({e})"),
        })?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| Error::AwsConfig {
                reason: format!("no trusted root certificates for HTTPS to KMS ({e})"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client = {
            // hyper's client spawns its connection tasks: build it inside the runtime.
            let _guard = rt.enter();
            Client::builder(TokioExecutor::new()).build(https)
        };
        Ok(Kms {
            rt,
            sts_endpoint: uri.clone(),
            endpoint: uri,
            region: region.to_owned(),
            creds,
            client,
            policy: RetryPolicy::default(),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            signatures: AtomicU64::new(0),
        })
    }

    /// The same client with another retry policy.
    /// At least one attempt and a 1 ms call timeout are kept whatever `policy` says.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Kms {
        self.policy = RetryPolicy {
            max_attempts: policy.max_attempts.max(1),
            call_timeout: policy.call_timeout.max(Duration::from_millis(1)),
            ..policy
        };
        self
    }

    /// The service URL calls go to.
    pub fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    /// The region calls go to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Requests, throttled attempts and signatures so far.
    pub fn stats(&self) -> KmsStats {
        KmsStats {
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            signatures: self.signatures.load(Ordering::Relaxed),
        }
    }

    /// DescribeKey. `key` is a key id, key ARN, alias name (`alias/…`) or alias ARN.
    pub fn describe_key(&self, key: &str) -> Result<KeyDescription> {
        let body = serde_json::json!({ "KeyId": key });
        let r: DescribeKeyResponse = self.call_json("DescribeKey", key, &body)?;
        let m = r.key_metadata;
        Ok(KeyDescription {
            key_id: m.key_id,
            arn: m.arn,
            key_state: m.key_state.unwrap_or_default(),
            key_usage: m.key_usage.unwrap_or_default(),
            key_spec: m.key_spec.unwrap_or_default(),
            signing_algorithms: m.signing_algorithms,
            origin: m.origin.unwrap_or_default(),
        })
    }

    /// GetPublicKey: the DER SubjectPublicKeyInfo and what KMS says of the key.
    pub fn get_public_key(&self, key: &str) -> Result<PublicKeyInfo> {
        let body = serde_json::json!({ "KeyId": key });
        let r: GetPublicKeyResponse = self.call_json("GetPublicKey", key, &body)?;
        let spki_der = aws_smithy_types::base64::decode(&r.public_key).map_err(|e| {
            unexpected(
                key,
                "GetPublicKey",
                &format!("PublicKey is not base64 ({e})"),
            )
        })?;
        Ok(PublicKeyInfo {
            arn: r.key_id,
            spki_der,
            key_spec: r
                .key_spec
                .or(r.customer_master_key_spec)
                .unwrap_or_default(),
            key_usage: r.key_usage.unwrap_or_default(),
            signing_algorithms: r.signing_algorithms,
        })
    }

    /// DescribeKey and GetPublicKey, checked: the key must be Enabled
    /// ([`Error::Kms`] otherwise, as KMS would answer a Sign), of usage SIGN_VERIFY and a spec
    /// of [`KeySpec`], supporting its signing algorithm, its public key matching the spec
    /// ([`Error::KmsKeyUnsuitable`] otherwise).
    pub fn signing_key(&self, key: &str) -> Result<KmsKey> {
        let d = self.describe_key(key)?;
        match d.key_state.as_str() {
            "Enabled" => {}
            "Disabled" => {
                return Err(key_state_error(&d.arn, "is disabled", "DisabledException"));
            }
            "PendingDeletion" => {
                return Err(key_state_error(
                    &d.arn,
                    "is pending deletion",
                    "KMSInvalidStateException",
                ));
            }
            other => {
                return Err(key_state_error(
                    &d.arn,
                    &format!("is {other}, not Enabled"),
                    "KMSInvalidStateException",
                ));
            }
        }
        let unsuitable = |reason: String| Error::KmsKeyUnsuitable {
            key: d.arn.clone(),
            reason,
        };
        if d.key_usage != "SIGN_VERIFY" {
            return Err(unsuitable(format!(
                "its key usage is {}; a CA key needs SIGN_VERIFY",
                d.key_usage
            )));
        }
        let spec = KeySpec::from_kms(&d.key_spec).ok_or_else(|| {
            unsuitable(format!(
                "its key spec is {}; vpnca signs with RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256 or ECC_NIST_P384",
                d.key_spec
            ))
        })?;
        if !d
            .signing_algorithms
            .iter()
            .any(|a| a == spec.signing_algorithm())
        {
            return Err(unsuitable(format!(
                "it does not offer {} (it offers {})",
                spec.signing_algorithm(),
                d.signing_algorithms.join(", ")
            )));
        }
        let p = self.get_public_key(&d.arn)?;
        if p.key_spec != d.key_spec || p.key_usage != d.key_usage {
            return Err(unsuitable(format!(
                "GetPublicKey says {} {}, DescribeKey {} {}",
                p.key_spec, p.key_usage, d.key_spec, d.key_usage
            )));
        }
        KmsKey::from_parts(&d.arn, spec, &p.spki_der)
    }

    /// Signs `message`: hashed here (SHA-256, SHA-384 for P-384), the digest sent with
    /// `MessageType=DIGEST`, the signature verified with the key's public key against
    /// `message` before it is returned.
    pub fn sign_digest(&self, key: &KmsKey, message: &[u8]) -> Result<Vec<u8>> {
        let digest = digest::digest(key.spec.digest_algorithm(), message);
        let sig = self.sign_raw_digest(key, digest.as_ref())?;
        self.verified(key, sig, |pk, s| pk.verify(message, s))
    }

    /// Signs a digest computed by the caller: it must be as long as the key's hash
    /// ([`Error::InvalidInput`] otherwise, and nothing is sent). The signature is verified
    /// against the digest before it is returned.
    pub fn sign_prehashed(&self, key: &KmsKey, digest: &[u8]) -> Result<Vec<u8>> {
        let alg = key.spec.digest_algorithm();
        let d = digest::Digest::import_less_safe(digest, alg).map_err(|_| {
            Error::input(
                "digest",
                format!(
                    "{} bytes; KMS key {} signs {} digests of {} bytes (nothing was sent)",
                    digest.len(),
                    key.arn,
                    key.spec.signing_algorithm(),
                    alg.output_len()
                ),
            )
        })?;
        let sig = self.sign_raw_digest(key, digest)?;
        self.verified(key, sig, |pk, s| pk.verify_digest(&d, s))
    }

    /// STS GetCallerIdentity: who these credentials are (account and ARN), for a key
    /// policy naming the caller (`ca --kms-create`).
    pub fn caller_identity(&self) -> Result<CallerIdentity> {
        let op = "sts:GetCallerIdentity";
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::AwsConfig {
                reason: format!("{op} was called from inside an async runtime"),
            });
        }
        let text = self.rt.block_on(self.call(
            op,
            "(STS)",
            "Action=GetCallerIdentity&Version=2011-06-15".to_owned(),
        ))?;
        let bad = |m: &str| unexpected("(STS)", "GetCallerIdentity", m);
        let doc = roxmltree::Document::parse(&text).map_err(|e| bad(&format!("not XML ({e})")))?;
        let find = |name: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("no {name} in the answer")))
        };
        let account = find("Account")?;
        let arn = find("Arn")?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("the account {account:?} is not 12 digits")));
        }
        Ok(CallerIdentity { account, arn })
    }

    /// GetParametersForImport for asymmetric key material: wrapping algorithm
    /// `RSA_AES_KEY_WRAP_SHA_256`, a 4,096-bit RSA wrapping key. `key` must be a key of origin
    /// EXTERNAL pending import (KMS refuses otherwise).
    pub fn get_parameters_for_import(&self, key: &str) -> Result<ImportParameters> {
        let body = serde_json::json!({
            "KeyId": key,
            "WrappingAlgorithm": WRAPPING_ALGORITHM,
            "WrappingKeySpec": WRAPPING_KEY_SPEC,
        });
        let r: GetParametersForImportResponse =
            self.call_json("GetParametersForImport", key, &body)?;
        let decode = |what: &str, b64: &str| {
            aws_smithy_types::base64::decode(b64).map_err(|e| {
                unexpected(
                    key,
                    "GetParametersForImport",
                    &format!("{what} is not base64 ({e})"),
                )
            })
        };
        Ok(ImportParameters {
            arn: r.key_id,
            import_token: decode("ImportToken", &r.import_token)?,
            wrapping_public_key: decode("PublicKey", &r.public_key)?,
        })
    }

    /// ImportKeyMaterial: `encrypted` (from [`wrap_key_material`]) with the token of `params`,
    /// ExpirationModel `KEY_MATERIAL_DOES_NOT_EXPIRE` (asymmetric key material never
    /// expires). KMS then enables the key.
    pub fn import_key_material(
        &self,
        key: &str,
        params: &ImportParameters,
        encrypted: &[u8],
    ) -> Result<()> {
        let body = serde_json::json!({
            "KeyId": key,
            "ImportToken": aws_smithy_types::base64::encode(&params.import_token),
            "EncryptedKeyMaterial": aws_smithy_types::base64::encode(encrypted),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        });
        let _: serde_json::Value = self.call_json("ImportKeyMaterial", key, &body)?;
        Ok(())
    }

    /// A new CA key (`ca --kms-create`): STS GetCallerIdentity, then CreateKey (SIGN_VERIFY,
    /// `spec`, origin AWS_KMS) with [`CallerIdentity::ca_key_policy`], then CreateAlias when
    /// `alias` is given (checked before any call: `alias/NAME`, not `alias/aws/…`). Returns
    /// the key and the policy it was given.
    pub fn create_ca_key(
        &self,
        spec: KeySpec,
        alias: Option<&str>,
    ) -> Result<(KeyDescription, String)> {
        if let Some(a) = alias {
            let name = a.strip_prefix("alias/").unwrap_or("");
            if name.is_empty()
                || a.len() > 256
                || a.starts_with("alias/aws/")
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
            {
                return Err(Error::input(
                    "--kms-alias",
                    format!(
                        "{a:?} is not a KMS alias name: alias/NAME, NAME of letters, digits, / _ -, not alias/aws/… (nothing was created)"
                    ),
                ));
            }
        }
        let policy = self.caller_identity()?.ca_key_policy();
        let key = self.create_key(spec, &policy, "vpnca CA key (vpnca ca --kms-create)")?;
        if let Some(a) = alias {
            self.create_alias(a, &key.arn)?;
        }
        Ok((key, policy))
    }

    /// CreateKey: an asymmetric SIGN_VERIFY key of `spec`, origin AWS_KMS (made inside
    /// KMS), with the key policy `policy` (JSON) and a description.
    pub fn create_key(
        &self,
        spec: KeySpec,
        policy: &str,
        description: &str,
    ) -> Result<KeyDescription> {
        let body = serde_json::json!({
            "KeySpec": spec.kms_name(),
            "KeyUsage": "SIGN_VERIFY",
            "Policy": policy,
            "Description": description,
        });
        let r: DescribeKeyResponse = self.call_json("CreateKey", spec.kms_name(), &body)?;
        let m = r.key_metadata;
        Ok(KeyDescription {
            key_id: m.key_id,
            arn: m.arn,
            key_state: m.key_state.unwrap_or_default(),
            key_usage: m.key_usage.unwrap_or_default(),
            key_spec: m.key_spec.unwrap_or_default(),
            signing_algorithms: m.signing_algorithms,
            origin: m.origin.unwrap_or_default(),
        })
    }

    /// CreateAlias: `alias` (`alias/NAME`) names the key `key_id` (a key id or ARN).
    pub fn create_alias(&self, alias: &str, key_id: &str) -> Result<()> {
        let body = serde_json::json!({ "AliasName": alias, "TargetKeyId": key_id });
        let _: serde_json::Value = self.call_json("CreateAlias", key_id, &body)?;
        Ok(())
    }

    /// A [`KmsSigner`] for `key` (id, ARN, alias), after [`Kms::signing_key`]'s checks.
    pub fn signer(&self, key: &str) -> Result<KmsSigner<'_>> {
        Ok(KmsSigner::new(self, self.signing_key(key)?))
    }

    /// Sign with `MessageType=DIGEST`; the callers checked the digest's length.
    fn sign_raw_digest(&self, key: &KmsKey, digest: &[u8]) -> Result<Vec<u8>> {
        let body = serde_json::json!({
            "KeyId": key.arn,
            "Message": aws_smithy_types::base64::encode(digest),
            "MessageType": "DIGEST",
            "SigningAlgorithm": key.spec.signing_algorithm(),
        });
        let r: SignResponse = self.call_json("Sign", &key.arn, &body)?;
        if let Some(a) = r.signing_algorithm.as_deref()
            && a != key.spec.signing_algorithm()
        {
            return Err(unexpected(
                &key.arn,
                "Sign",
                &format!(
                    "the answer's SigningAlgorithm is {a}, not {}",
                    key.spec.signing_algorithm()
                ),
            ));
        }
        aws_smithy_types::base64::decode(&r.signature)
            .map_err(|e| unexpected(&key.arn, "Sign", &format!("Signature is not base64 ({e})")))
    }

    fn verified(
        &self,
        key: &KmsKey,
        sig: Vec<u8>,
        check: impl FnOnce(
            &signature::UnparsedPublicKey<&[u8]>,
            &[u8],
        ) -> std::result::Result<(), aws_lc_rs::error::Unspecified>,
    ) -> Result<Vec<u8>> {
        let pk = signature::UnparsedPublicKey::new(
            key.spec.verification_algorithm(),
            key.raw_public.as_slice(),
        );
        check(&pk, &sig).map_err(|_| Error::KmsBadSignature {
            key: key.arn.clone(),
            algorithm: key.spec.signing_algorithm(),
        })?;
        self.signatures.fetch_add(1, Ordering::Relaxed);
        Ok(sig)
    }

    /// One operation, blocking: retried per the policy; the answer parsed as `T`.
    fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::AwsConfig {
                reason: format!(
                    "KMS {op} was called from inside an async runtime; vpnca's KMS client blocks, call it from a plain thread"
                ),
            });
        }
        let text = self.rt.block_on(self.call(op, key, body.to_string()))?;
        serde_json::from_str(&text).map_err(|e| {
            unexpected(
                key,
                op,
                &format!("the answer is not the expected JSON ({e})"),
            )
        })
    }

    async fn call(&self, op: &str, key: &str, body: String) -> Result<String> {
        let attempts = self.policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let f = match self.attempt(op, &body).await {
                Ok(text) => return Ok(text),
                Err(f) => f,
            };
            if f.code == "ThrottlingException" {
                self.throttled.fetch_add(1, Ordering::Relaxed);
            }
            if !f.retry || attempt >= attempts {
                let mut message = f.message;
                if f.retry && attempts > 1 {
                    message.push_str(&format!(" (after {attempts} attempts)"));
                }
                return Err(Error::Kms {
                    key: key.to_owned(),
                    operation: op.to_owned(),
                    what: what_for(&f.code).to_owned(),
                    code: f.code,
                    message,
                });
            }
            tokio::time::sleep(self.policy.backoff(attempt)).await;
        }
    }

    /// One HTTP exchange.
    async fn attempt(&self, op: &str, body: &str) -> std::result::Result<String, Failure> {
        let fail = |code: &str, message: String, retry: bool| Failure {
            code: code.to_owned(),
            message,
            retry,
        };
        let req = self
            .signed_request(op, body)
            .map_err(|e| fail("Signing", e.to_string(), false))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let timeout = self.policy.call_timeout;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                fail(
                    "Network",
                    format!("cannot reach {}: {}", self.endpoint, error_chain(&e)),
                    true,
                )
            })?;
            let status = resp.status();
            let bytes = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        let m = format!("the answer is larger than {MAX_ANSWER} bytes");
                        fail("UnexpectedResponse", m, false)
                    } else {
                        fail("Network", format!("reading the answer: {e}"), true)
                    }
                })?
                .to_bytes();
            Ok::<_, Failure>((status, bytes))
        };
        let (status, bytes) = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                return Err(fail(
                    "Timeout",
                    format!(
                        "no answer from {} within {} ms",
                        self.endpoint,
                        timeout.as_millis()
                    ),
                    true,
                ));
            }
            Ok(r) => r?,
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let parsed = serde_json::from_str::<ErrorBody>(&text)
            .ok()
            .or_else(|| xml_error(&text));
        let code = parsed
            .as_ref()
            .and_then(|e| e.kind.as_deref())
            // "__type" may carry a namespace: "com.amazonaws.kms#NotFoundException".
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
            .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
        let message = parsed
            .and_then(|e| e.message)
            .unwrap_or_else(|| text.chars().take(300).collect());
        let retry = status.is_server_error()
            || matches!(
                code.as_str(),
                "ThrottlingException"
                    | "KMSInternalException"
                    | "DependencyTimeoutException"
                    | "KeyUnavailableException"
            );
        Err(fail(&code, message, retry))
    }

    fn signed_request(&self, op: &str, body: &str) -> Result<http::Request<Full<bytes::Bytes>>> {
        let sign_err = |e: &dyn std::fmt::Display| Error::AwsConfig {
            reason: format!("cannot sign the KMS request ({e})"),
        };
        // STS (query protocol) for `sts:` operations, else KMS (JSON 1.1).
        let sts = op.starts_with("sts:");
        let endpoint = if sts {
            &self.sts_endpoint
        } else {
            &self.endpoint
        };
        let uri = endpoint.to_string();
        let target = format!("TrentService.{op}");
        let mut headers = vec![("content-type", if sts { FORM_TYPE } else { CONTENT_TYPE })];
        if !sts {
            headers.push(("x-amz-target", target.as_str()));
        }
        let identity = self.creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(if sts { "sts" } else { "kms" })
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| sign_err(&e))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &uri,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| sign_err(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| sign_err(&e))?
            .into_parts();
        let mut req = http::Request::builder().method("POST").uri(endpoint);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let mut req = req
            .header("user-agent", concat!("vpnca/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(bytes::Bytes::from(body.to_owned())))
            .map_err(|e| sign_err(&e))?;
        instructions.apply_to_request_http1x(&mut req);
        Ok(req)
    }
}

/// Signs certificates and CRLs through rcgen with a CA key held in KMS: its public key and
/// algorithm come from the checked [`KmsKey`] (rcgen writes the SubjectPublicKeyInfo from
/// them, which [`KmsKey::from_parts`] checked to equal KMS's), its [`rcgen::SigningKey::sign`] is
/// [`Kms::sign_digest`] (one KMS call, the signature verified locally).
///
/// rcgen's error type cannot carry ours: a failed signature reaches the caller as
/// `rcgen::Error::RemoteKeyError`, and [`KmsSigner::take_error`] (or
/// [`KmsSigner::explain`]) gives the [`Error`] that caused it.
pub struct KmsSigner<'a> {
    kms: KmsRef<'a>,
    key: KmsKey,
    last_error: Mutex<Option<Error>>,
}

/// The client a [`KmsSigner`] signs with: borrowed, or shared.
enum KmsRef<'a> {
    Borrowed(&'a Kms),
    Shared(std::sync::Arc<Kms>),
}

impl std::ops::Deref for KmsRef<'_> {
    type Target = Kms;

    fn deref(&self) -> &Kms {
        match self {
            KmsRef::Borrowed(k) => k,
            KmsRef::Shared(k) => k,
        }
    }
}

impl std::fmt::Debug for KmsSigner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSigner")
            .field("key", &self.key.arn)
            .field("spec", &self.key.spec)
            .finish_non_exhaustive()
    }
}

impl<'a> KmsSigner<'a> {
    /// A signer for a key checked earlier (or rebuilt with [`KmsKey::from_parts`]).
    pub fn new(kms: &'a Kms, key: KmsKey) -> KmsSigner<'a> {
        KmsSigner {
            kms: KmsRef::Borrowed(kms),
            key,
            last_error: Mutex::new(None),
        }
    }

    /// A signer that owns (a share of) its client: for a signer kept beyond the scope that
    /// made the client (the store's CA key, `crate::ca::CaKey`).
    pub fn shared(kms: std::sync::Arc<Kms>, key: KmsKey) -> KmsSigner<'static> {
        KmsSigner {
            kms: KmsRef::Shared(kms),
            key,
            last_error: Mutex::new(None),
        }
    }

    /// The key it signs with.
    pub fn key(&self) -> &KmsKey {
        &self.key
    }

    /// The error of the last failed [`rcgen::SigningKey::sign`], if any (and forgets it).
    pub fn take_error(&self) -> Option<Error> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// An rcgen error from signing with this key, as a vpnca [`Error`]: the KMS or
    /// verification error behind `RemoteKeyError`, else rcgen's own.
    pub fn explain(&self, e: rcgen::Error) -> Error {
        match (&e, self.take_error()) {
            (rcgen::Error::RemoteKeyError, Some(ours)) => ours,
            _ => Error::from(e),
        }
    }
}

impl rcgen::PublicKeyData for KmsSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.key.raw_public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.key.spec.rcgen_algorithm()
    }
}

impl rcgen::SigningKey for KmsSigner<'_> {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        self.kms.sign_digest(&self.key, msg).map_err(|e| {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

/// The subjectPublicKey bits of a KMS SubjectPublicKeyInfo, after checking it is a key of
/// `spec` (algorithm, curve, size).
fn public_key_bits(arn: &str, spec: KeySpec, spki_der: &[u8]) -> Result<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let bad = |reason: String| Error::KmsKeyUnsuitable {
        key: arn.to_owned(),
        reason,
    };
    let (rest, spki) =
        x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| {
            bad(format!(
                "its public key is not a DER SubjectPublicKeyInfo ({e})"
            ))
        })?;
    if !rest.is_empty() {
        return Err(bad("its public key has bytes after the DER".into()));
    }
    let (bits, curve) = spec.shape();
    let found = match spki.parsed() {
        Ok(PublicKey::RSA(k)) if curve.is_none() => k.key_size() == bits,
        Ok(PublicKey::EC(p)) => {
            let named = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            curve.is_some() && named.as_deref() == curve && p.key_size() == bits
        }
        _ => false,
    };
    if !found {
        return Err(bad(format!(
            "its public key is not a {} key",
            spec.kms_name()
        )));
    }
    let raw = spki.subject_public_key.data.to_vec();
    // rcgen writes the certificate's SubjectPublicKeyInfo itself, from the algorithm and
    // these bits: it must come out as KMS's, byte for byte.
    struct Written<'a>(&'a [u8], KeySpec);
    impl rcgen::PublicKeyData for Written<'_> {
        fn der_bytes(&self) -> &[u8] {
            self.0
        }
        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            self.1.rcgen_algorithm()
        }
    }
    if rcgen::PublicKeyData::subject_public_key_info(&Written(&raw, spec)) != spki_der {
        return Err(bad(
            "its SubjectPublicKeyInfo is not encoded as certificates carry it".into(),
        ));
    }
    Ok(raw)
}

fn key_state_error(arn: &str, what: &str, code: &str) -> Error {
    Error::Kms {
        key: arn.to_owned(),
        operation: "DescribeKey".into(),
        code: code.into(),
        what: what.into(),
        message: "the key cannot sign in this state; nothing was sent to Sign".into(),
    }
}

fn unexpected(key: &str, op: &str, message: &str) -> Error {
    Error::Kms {
        key: key.to_owned(),
        operation: op.to_owned(),
        code: "UnexpectedResponse".into(),
        what: "gave an answer vpnca cannot read".into(),
        message: message.to_owned(),
    }
}

/// The error code in words, after "KMS key ARN".
fn what_for(code: &str) -> &'static str {
    match code {
        "DisabledException" => "is disabled",
        "KMSInvalidStateException" => "is in a key state that does not allow this",
        "NotFoundException" => "was not found in this account and region",
        "InvalidArnException" => "is not a valid ARN",
        "InvalidKeyUsageException" => {
            "cannot sign this way (its key usage or key spec does not allow the algorithm)"
        }
        "ThrottlingException" => "is throttled: KMS refused the calls for their rate",
        "AccessDeniedException" => "may not be used with these credentials (access denied)",
        "UnrecognizedClientException" | "InvalidSignatureException" => {
            "cannot be used: KMS refused the credentials"
        }
        "KeyUnavailableException" | "KMSInternalException" | "DependencyTimeoutException" => {
            "is unavailable: KMS failed inside"
        }
        "ValidationException" => "refused the request as invalid",
        "Network" => "cannot be reached",
        "Timeout" => "did not answer in time",
        _ => "could not be used",
    }
}

/// An STS (query protocol) error answer: `<ErrorResponse><Error><Code>…</Code><Message>…`.
fn xml_error(text: &str) -> Option<ErrorBody> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let find = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(str::to_owned)
    };
    Some(ErrorBody {
        kind: Some(find("Code")?),
        message: find("Message"),
    })
}

/// The default STS endpoint of a region (the regional one).
fn default_sts_endpoint(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://sts.{region}.amazonaws.com.cn")
    } else {
        format!("https://sts.{region}.amazonaws.com")
    }
}

/// The default KMS endpoint of a region.
pub(crate) fn default_endpoint(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://kms.{region}.amazonaws.com.cn")
    } else {
        format!("https://kms.{region}.amazonaws.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_full_jitter() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            call_timeout: Duration::from_secs(1),
        };
        for _ in 0..200 {
            assert!(p.backoff(1) <= Duration::from_millis(100));
            assert!(p.backoff(2) <= Duration::from_millis(200));
            assert!(p.backoff(3) <= Duration::from_millis(350));
            assert!(p.backoff(40) <= Duration::from_millis(350));
        }
        // Full jitter: not always the bound.
        assert!((0..50).any(|_| p.backoff(3) < Duration::from_millis(300)));
    }

    #[test]
    fn specs_map_to_algorithms() {
        for (name, alg, rc) in [
            (
                "RSA_2048",
                "RSASSA_PKCS1_V1_5_SHA_256",
                &rcgen::PKCS_RSA_SHA256,
            ),
            (
                "RSA_4096",
                "RSASSA_PKCS1_V1_5_SHA_256",
                &rcgen::PKCS_RSA_SHA256,
            ),
            (
                "ECC_NIST_P256",
                "ECDSA_SHA_256",
                &rcgen::PKCS_ECDSA_P256_SHA256,
            ),
            (
                "ECC_NIST_P384",
                "ECDSA_SHA_384",
                &rcgen::PKCS_ECDSA_P384_SHA384,
            ),
        ] {
            let s = KeySpec::from_kms(name).expect("known spec");
            assert_eq!(s.kms_name(), name);
            assert_eq!(s.signing_algorithm(), alg);
            assert_eq!(s.rcgen_algorithm(), rc);
        }
        assert_eq!(KeySpec::from_kms("ECC_SECG_P256K1"), None);
        assert_eq!(
            default_endpoint("eu-west-1"),
            "https://kms.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn key_policy_names_the_caller_and_the_account() {
        let c = CallerIdentity {
            account: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/VpnAdmins/alice@example.com".into(),
        };
        assert_eq!(c.principal(), "arn:aws:iam::123456789012:role/VpnAdmins");
        let p: serde_json::Value = serde_json::from_str(&c.ca_key_policy()).expect("JSON");
        assert_eq!(
            p["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:root"
        );
        assert_eq!(
            p["Statement"][1]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:role/VpnAdmins"
        );
        let user = CallerIdentity {
            account: "123456789012".into(),
            arn: "arn:aws-cn:iam::123456789012:user/ops/bob".into(),
        };
        assert_eq!(user.principal(), user.arn);
        assert!(
            user.ca_key_policy()
                .contains("arn:aws-cn:iam::123456789012:root")
        );
    }

    /// The wrapped key material unwraps (RSA-OAEP SHA-256, then RFC 5649) to the key; the
    /// test server's `cryptography` unwrap is the independent check (tests/kms_ca.rs).
    #[test]
    fn key_material_wraps_for_import() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
        use aws_lc_rs::rsa::PrivateDecryptingKey;
        use aws_lc_rs::rsa::{KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey};
        let rsa = PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("rsa");
        let spki = rsa.public_key().as_der().expect("der").as_ref().to_vec();
        let material = b"a private key, PKCS#8 DER, 37 bytes.".to_vec();
        let wrapped = wrap_key_material(&spki, &material).expect("wrap");
        let oaep = OaepPrivateDecryptingKey::new(rsa).expect("oaep");
        let mut aes = vec![0u8; oaep.min_output_size()];
        let aes = oaep
            .decrypt(&OAEP_SHA256_MGF1SHA256, &wrapped[..256], &mut aes, None)
            .expect("oaep decrypt")
            .to_vec();
        assert_eq!(aes.len(), 32);
        let kek = AesKek::new(&AES_256, &aes).expect("kek");
        let mut out = vec![0u8; wrapped.len()];
        let got = kek
            .unwrap_with_padding(&wrapped[256..], &mut out)
            .expect("unwrap");
        assert_eq!(got, material.as_slice());
        assert!(wrap_key_material(b"not a key", &material).is_err());
    }

    #[test]
    fn public_key_must_fit_the_spec() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let spki = rcgen::PublicKeyData::subject_public_key_info(&kp);
        let k = KmsKey::from_parts("arn:k", KeySpec::EccNistP256, &spki).expect("fits");
        assert_eq!(k.raw_public, rcgen::PublicKeyData::der_bytes(&kp));
        for wrong in [KeySpec::EccNistP384, KeySpec::Rsa2048] {
            let e = KmsKey::from_parts("arn:k", wrong, &spki).expect_err("wrong spec");
            assert!(
                e.to_string()
                    .contains(&format!("is not a {} key", wrong.kms_name())),
                "{e}"
            );
        }
        assert!(KmsKey::from_parts("arn:k", KeySpec::EccNistP256, &spki[1..]).is_err());
    }
}
