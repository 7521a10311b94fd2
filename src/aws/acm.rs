//! `acm import`: the certificate, its key (decrypted in memory only) and the issuing chain to
//! AWS Certificate Manager; re-import into the recorded ARN after a renewal.

use aws_sdk_acm::error::ProvideErrorMetadata;
use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::Tag;
use serde::Serialize;
use time::OffsetDateTime;

use super::preflight::{self, ImportBundle, ImportRole};
use super::{AcmImport, Aws};
use crate::cert::{CertKind, CertRecord};
use crate::store::{self, Store};
use crate::{Error, Result};

/// Where `acm import` puts the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArnTarget {
    /// The ARN recorded for this name, role and region; a new ARN when there is none.
    Recorded,
    /// This ARN (`--arn`).
    Explicit(String),
    /// Always a new ARN (`--new`).
    New,
}

/// What `acm import` is asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Server or client certificate.
    pub role: ImportRole,
    /// The certificate's name in the store.
    pub name: String,
    /// Which ARN.
    pub target: ArnTarget,
    /// Extra tags (KEY, VALUE), after the default ones.
    pub tags: Vec<(String, String)>,
    /// Import even though Client VPN could not use the key type.
    pub force: bool,
}

/// What `acm import` did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The certificate ARN.
    pub arn: String,
    /// The region.
    pub region: String,
    /// `server` or `client`.
    pub role: ImportRole,
    /// The certificate name.
    pub name: String,
    /// The serial imported (hex).
    pub serial: String,
    /// Whether an existing ARN was re-imported into.
    pub reimported: bool,
    /// The serial that ARN held before, when vpnca recorded it.
    pub previous_serial: Option<String>,
    /// The tags applied.
    pub tags: Vec<(String, String)>,
    /// Overridden rules and other notes.
    pub warnings: Vec<String>,
}

/// An ACM certificate as DescribeCertificate tells it.
#[derive(Debug, Clone, Serialize)]
pub struct AcmCertificate {
    /// The ARN.
    pub arn: String,
    /// The domain name.
    pub domain_name: Option<String>,
    /// `RSA_2048`, `EC_prime256v1`, …
    pub key_algorithm: Option<String>,
    /// The serial as ACM prints it (colon-separated hex).
    pub serial: Option<String>,
    /// `ISSUED`, `EXPIRED`, …
    pub status: Option<String>,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    /// The resources (endpoints, load balancers) that use it.
    pub in_use_by: Vec<String>,
}

fn key_type(der: &[u8]) -> String {
    crate::x509::parse_cert(der, "certificate")
        .ok()
        .and_then(|c| crate::x509::algorithm_of(c.public_key()))
        .map(|a| a.name().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// The default tags: the tool, the CN and the serial.
pub fn default_tags(rec: &CertRecord) -> Vec<(String, String)> {
    vec![
        ("vpnca:managed-by".into(), "vpnca".into()),
        ("vpnca:cn".into(), tag_safe(&rec.name)),
        ("vpnca:serial".into(), rec.serial.hex()),
    ]
}

fn tag_char_ok(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}

/// ACM allows letters, digits, spaces and `_.:/=+-@` in tags: other characters become `_`.
fn tag_safe(s: &str) -> String {
    s.chars()
        .map(|c| if tag_char_ok(c) { c } else { '_' })
        .take(256)
        .collect()
}

/// Parses and checks `KEY=VALUE` against ACM's tag rules.
pub fn parse_tag(s: &str) -> Result<(String, String)> {
    let bad = |reason: String| Error::input(format!("tag {s:?}"), reason);
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE".into()))?;
    if k.is_empty() || k.chars().count() > 128 {
        return Err(bad("the key must be 1 to 128 characters".into()));
    }
    if v.chars().count() > 256 {
        return Err(bad("the value must be at most 256 characters".into()));
    }
    if k.to_ascii_lowercase().starts_with("aws:") {
        return Err(bad("keys starting with aws: are reserved by AWS".into()));
    }
    if let Some(c) = k.chars().chain(v.chars()).find(|c| !tag_char_ok(*c)) {
        return Err(bad(format!(
            "{c:?} is not allowed; ACM tags take letters, digits, spaces and _ . : / = + - @"
        )));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Checks an ARN's shape and that it is an ACM certificate in `region`.
pub fn check_arn(arn: &str, region: &str) -> Result<()> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && parts[5].starts_with("certificate/")
        && parts[5].len() > "certificate/".len();
    if !ok {
        return Err(Error::input(
            "--arn",
            format!(
                "{arn:?} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)"
            ),
        ));
    }
    if parts[3] != region {
        return Err(Error::input(
            "--arn",
            format!(
                "{arn} is in region {}, but the calls go to {region}; pass --region {}",
                parts[3], parts[3]
            ),
        ));
    }
    Ok(())
}

pub(crate) fn sdk_error<E, R>(operation: &str, e: aws_sdk_acm::error::SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some(code) => Error::Aws {
            operation: operation.into(),
            code: code.into(),
            message: e.message().unwrap_or_default().into(),
        },
        None => Error::Aws {
            operation: operation.into(),
            code: "Network".into(),
            message: super::error_chain(&e),
        },
    }
}

impl Store {
    /// The three ImportCertificate fields for a certificate of the store: the certificate,
    /// its key as unencrypted PKCS#8 PEM (zeroized on drop) and the CA chain, issuer first.
    /// Needs the store unlocked.
    pub fn acm_bundle(&self, rec: &CertRecord) -> Result<ImportBundle> {
        self.check_record(rec)?;
        if !rec.has_key {
            return Err(Error::Refused {
                reason: format!(
                    "{} was signed from a CSR: its private key is not in the store, and ACM needs it",
                    crate::shell::quote(&rec.name)
                ),
            });
        }
        let key = self.private_key(rec)?;
        Ok(ImportBundle {
            certificate: rec.pem(),
            private_key: key.to_pem()?,
            chain: self.ca_chain_pem()?,
        })
    }
}

impl Aws {
    /// Imports (or re-imports) a certificate of the store into ACM; records the ARN and
    /// audits the import. Nothing is sent when a pre-flight rule fails; nothing is recorded
    /// when the call fails.
    pub fn acm_import(&self, store: &Store, opts: &ImportOptions) -> Result<ImportReport> {
        let want = match opts.role {
            ImportRole::Server => CertKind::Server,
            ImportRole::Client => CertKind::Client,
        };
        let rec = store.live(&opts.name)?.ok_or_else(|| Error::NotFound {
            what: format!(
                "a valid certificate named {}",
                crate::shell::quote(&opts.name)
            ),
        })?;
        if rec.kind != want {
            return Err(Error::Refused {
                reason: format!(
                    "{} is a {} certificate; `acm import --{}` takes a {} certificate",
                    crate::shell::quote(&rec.name),
                    rec.kind.as_str(),
                    opts.role.as_str(),
                    want.as_str()
                ),
            });
        }
        // One read of the recorded imports (each row's MAC is checked).
        let imports = store.acm_imports()?;
        let arn = match &opts.target {
            ArnTarget::New => None,
            ArnTarget::Recorded => imports
                .iter()
                .find(|i| i.role == opts.role && i.name == opts.name && i.region == self.region)
                .map(|r| r.arn.clone()),
            ArnTarget::Explicit(a) => {
                check_arn(a, &self.region)?;
                if let Some(other) = imports
                    .iter()
                    .find(|i| &i.arn == a && (i.name != opts.name || i.role != opts.role))
                {
                    return Err(Error::Refused {
                        reason: format!(
                            "{a} holds the {} certificate {}; re-importing {} there would replace it (use --new, or the right name)",
                            other.role.as_str(),
                            crate::shell::quote(&other.name),
                            crate::shell::quote(&opts.name)
                        ),
                    });
                }
                Some(a.clone())
            }
        };
        let previous_serial = arn
            .as_ref()
            .and_then(|a| imports.iter().find(|i| &i.arn == a))
            .map(|i| i.serial.clone());

        let mut tags = default_tags(&rec);
        for (k, v) in &opts.tags {
            tags.retain(|(dk, _)| dk != k);
            tags.push((k.clone(), v.clone()));
        }

        let bundle = store.acm_bundle(&rec)?;
        let mut violations = preflight::check(&bundle, opts.role, store::now());
        if let Some(prev) = previous_serial
            .as_deref()
            .and_then(|p| p.parse::<crate::Serial>().ok())
            .and_then(|p| store.by_serial(&p).ok())
        {
            // ACM refuses a re-import whose key type or size differs from the certificate
            // it replaces.
            let (was, now) = (key_type(&prev.der), key_type(&rec.der));
            if was != now {
                violations.push(preflight::Violation {
                    rule: "reimport-key-type",
                    message: format!(
                        "ACM refuses a re-import with another key type: the ARN holds a {was} key, the new certificate has a {now} key (use --new for a new ARN, and switch the endpoint to it)"
                    ),
                    overridable: false,
                });
            }
        }
        let mut warnings = Vec::new();
        let (overridable, blocking): (Vec<_>, Vec<_>) =
            violations.into_iter().partition(|v| v.overridable);
        let mut problems: Vec<String> = blocking
            .iter()
            .map(|v| format!("[{}] {}", v.rule, v.message))
            .collect();
        for v in overridable {
            if opts.force {
                warnings.push(format!(
                    "[{}] {} (imported anyway: --force)",
                    v.rule, v.message
                ));
            } else {
                problems.push(format!("[{}] {}", v.rule, v.message));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Preflight { problems });
        }

        let sdk_tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::input("tag", e.to_string()))?;
        let mut call = self
            .acm
            .import_certificate()
            .certificate(Blob::new(bundle.certificate.as_bytes()))
            .private_key(Blob::new(bundle.private_key.as_bytes()))
            .certificate_chain(Blob::new(bundle.chain.as_bytes()));
        call = match &arn {
            // ACM takes no tags on a re-import: they follow with AddTagsToCertificate.
            Some(a) => call.certificate_arn(a),
            None => call.set_tags(Some(sdk_tags.clone())),
        };
        let out = self
            .block_on(call.send())
            .map_err(|e| sdk_error("ImportCertificate", e))?;
        drop(bundle);
        let new_arn = out
            .certificate_arn()
            .map(str::to_owned)
            .or(arn.clone())
            .ok_or_else(|| Error::Aws {
                operation: "ImportCertificate".into(),
                code: "UnexpectedResponse".into(),
                message: "the answer carries no CertificateArn".into(),
            })?;
        if arn.is_some() {
            let tagged = self.block_on(
                self.acm
                    .add_tags_to_certificate()
                    .certificate_arn(&new_arn)
                    .set_tags(Some(sdk_tags))
                    .send(),
            );
            if let Err(e) = tagged {
                warnings.push(format!(
                    "the certificate was re-imported, but tagging it failed: {}",
                    sdk_error("AddTagsToCertificate", e)
                ));
            }
        }
        let imp = AcmImport {
            arn: new_arn.clone(),
            region: self.region.clone(),
            role: opts.role,
            name: rec.name.clone(),
            serial: rec.serial.hex(),
            imported_at: store::now(),
        };
        store.record_import(
            &imp,
            &serde_json::json!({
                "arn": new_arn, "region": self.region, "role": opts.role.as_str(),
                "reimport": arn.is_some(), "previous_serial": previous_serial,
            }),
        )?;
        Ok(ImportReport {
            arn: new_arn,
            region: self.region.clone(),
            role: opts.role,
            name: rec.name,
            serial: rec.serial.hex(),
            reimported: arn.is_some(),
            previous_serial,
            tags,
            warnings,
        })
    }

    /// DescribeCertificate.
    pub fn acm_describe(&self, arn: &str) -> Result<AcmCertificate> {
        let out = self
            .block_on(self.acm.describe_certificate().certificate_arn(arn).send())
            .map_err(|e| sdk_error("DescribeCertificate", e))?;
        let d = out.certificate().ok_or_else(|| Error::Aws {
            operation: "DescribeCertificate".into(),
            code: "UnexpectedResponse".into(),
            message: "the answer carries no Certificate".into(),
        })?;
        Ok(AcmCertificate {
            arn: arn.to_owned(),
            domain_name: d.domain_name().map(str::to_owned),
            key_algorithm: d.key_algorithm().map(|k| k.as_str().to_owned()),
            serial: d.serial().map(str::to_owned),
            status: d.status().map(|s| s.as_str().to_owned()),
            not_after: d
                .not_after()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
            in_use_by: d.in_use_by().to_vec(),
        })
    }

    /// GetCertificate: the certificate and chain PEM that ACM holds.
    pub fn acm_get(&self, arn: &str) -> Result<(String, Option<String>)> {
        let out = self
            .block_on(self.acm.get_certificate().certificate_arn(arn).send())
            .map_err(|e| sdk_error("GetCertificate", e))?;
        Ok((
            out.certificate().unwrap_or_default().to_owned(),
            out.certificate_chain().map(str::to_owned),
        ))
    }

    /// The tags of an ACM certificate.
    pub fn acm_tags(&self, arn: &str) -> Result<Vec<(String, String)>> {
        let out = self
            .block_on(
                self.acm
                    .list_tags_for_certificate()
                    .certificate_arn(arn)
                    .send(),
            )
            .map_err(|e| sdk_error("ListTagsForCertificate", e))?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect())
    }
}

/// Whether a serial as ACM prints it names the same number as `ours` (hex). ACM prints
/// colon-separated hex; moto prints decimal: both are understood.
pub fn serial_matches(acm: &str, ours: &str) -> bool {
    let trim = |h: String| {
        let t = h.trim_start_matches('0');
        if t.is_empty() {
            "0".to_string()
        } else {
            t.to_string()
        }
    };
    let hex = |s: &str| {
        trim(
            s.chars()
                .filter(char::is_ascii_hexdigit)
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        )
    };
    let ours = hex(ours);
    if hex(acm) == ours {
        return true;
    }
    acm.bytes().all(|b| b.is_ascii_digit()) && decimal_to_hex(acm).is_some_and(|h| trim(h) == ours)
}

/// Converts a decimal string of any length to lower-case hex.
fn decimal_to_hex(dec: &str) -> Option<String> {
    // Little-endian base-2^32 limbs.
    let mut limbs: Vec<u32> = vec![0];
    for b in dec.bytes() {
        let d = u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        let mut carry = d;
        for l in &mut limbs {
            let v = u64::from(*l) * 10 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32);
        }
    }
    let mut s: String = limbs.iter().rev().map(|l| format!("{l:08x}")).collect();
    let t = s.trim_start_matches('0').len();
    s.drain(..s.len() - t);
    Some(if s.is_empty() { "0".into() } else { s })
}

#[cfg(test)]
mod tests {
    use super::serial_matches;

    #[test]
    fn serials_in_acm_and_moto_form() {
        assert!(serial_matches("4d:98:bc:27", "4D98BC27"));
        assert!(serial_matches("1301855271", "4D98BC27"));
        assert!(serial_matches(
            "103143601013037374026839142299618521052",
            "4D98BC27680957436B872F3247AC2FDC"
        ));
        assert!(!serial_matches("12", "13"));
        assert!(serial_matches("00:0a", "A"));
    }
}
