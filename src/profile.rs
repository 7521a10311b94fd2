//! Certificate profiles: what a certificate of each kind looks like.
//!
//! The defaults live in `pki-templates/*.toml`, compiled into the binary. A store can replace
//! any of them with a profile it *adopts* (`vpnca template adopt NAME`, from
//! `<pki>/templates/NAME.toml`): the text becomes part of the store's authenticated state, so a
//! file planted in the store folder is never used silently (docs/profiles.md).

use std::path::Path;

use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use serde::Deserialize;

use crate::key::KeyType;
use crate::{Error, Result};

/// The built-in profiles, by name.
pub const BUILTIN: [(&str, &str); 5] = [
    ("root-ca", include_str!("../pki-templates/root-ca.toml")),
    ("sub-ca", include_str!("../pki-templates/sub-ca.toml")),
    ("server", include_str!("../pki-templates/server.toml")),
    ("client", include_str!("../pki-templates/client.toml")),
    (
        "server-client",
        include_str!("../pki-templates/server-client.toml"),
    ),
];

/// The keyUsage bits a profile may name (RFC 5280 names; `contentCommitment` is accepted
/// for `nonRepudiation`).
const KEY_USAGE_NAMES: [(&str, KeyUsagePurpose); 7] = [
    ("digitalSignature", KeyUsagePurpose::DigitalSignature),
    ("nonRepudiation", KeyUsagePurpose::ContentCommitment),
    ("keyEncipherment", KeyUsagePurpose::KeyEncipherment),
    ("dataEncipherment", KeyUsagePurpose::DataEncipherment),
    ("keyAgreement", KeyUsagePurpose::KeyAgreement),
    ("keyCertSign", KeyUsagePurpose::KeyCertSign),
    ("cRLSign", KeyUsagePurpose::CrlSign),
];

/// Longest validity a profile or `--days` may ask for (about 100 years).
pub const MAX_DAYS: u32 = 36_500;

/// SAN policy of a profile.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SanPolicy {
    /// Add the certificate's name as a DNS SAN (servers: ACM and Client VPN need a domain).
    pub dns_from_name: bool,
    /// SAN types accepted from the user: `dns`, `ip`, `email`.
    pub allow: Vec<String>,
}

/// A certificate profile.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line for humans.
    pub description: String,
    /// A CA certificate (basicConstraints CA:TRUE, critical).
    pub ca: bool,
    /// Path length constraint for CAs.
    #[serde(default)]
    pub path_len: Option<u8>,
    /// Default validity in days.
    pub days: u32,
    /// keyUsage bits (RFC 5280 names: digitalSignature, keyEncipherment, keyCertSign, cRLSign, …).
    pub key_usage: Vec<String>,
    /// extendedKeyUsage purposes (serverAuth, clientAuth).
    pub extended_key_usage: Vec<String>,
    /// SAN policy.
    pub san: SanPolicy,
    /// Where the profile was read from (`built-in profile NAME` or the override's path), for
    /// errors.
    #[serde(skip)]
    source: String,
    /// SHA-256 (hex) of the adopted text this profile was read from; `None`: built-in.
    #[serde(skip)]
    adopted_sha256: Option<String>,
}

impl Profile {
    /// The built-in name `name` is (the `&'static str` the state keys adopted profiles by), or
    /// an error listing the known ones.
    pub fn builtin_name(name: &str) -> Result<&'static str> {
        BUILTIN
            .iter()
            .map(|(n, _)| *n)
            .find(|n| *n == name)
            .ok_or_else(|| Error::Template {
                source_name: name.to_string(),
                reason: format!(
                    "no such profile; known profiles: {}",
                    BUILTIN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// The built-in profile `name`.
    pub fn builtin(name: &str) -> Result<Profile> {
        let name = Profile::builtin_name(name)?;
        let text = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .unwrap_or_default();
        Profile::parse(text, &format!("built-in profile {name}"))
    }

    /// Parses `text` as the profile `name`: [`Profile::parse`], and what a profile of that
    /// name may grant whatever the text says (a `client` profile only clientAuth, no end-entity
    /// profile CA:TRUE; see `check_kind`).
    pub fn parse_named(name: &str, text: &str, source: &str) -> Result<Profile> {
        let p = Profile::parse(text, source)?;
        p.check_kind(name).map_err(|reason| Error::Template {
            source_name: source.to_string(),
            reason,
        })?;
        Ok(p)
    }

    /// [`Profile::parse_named`] for the text the store adopted as profile `name`.
    pub(crate) fn parse_adopted(name: &str, text: &str) -> Result<Profile> {
        let mut p = Profile::parse_named(name, text, &format!("adopted profile {name}"))?;
        p.adopted_sha256 = Some(text_sha256(text));
        Ok(p)
    }

    /// The path of the file that may override profile `name`: `<pki>/templates/NAME.toml`.
    /// vpnca never uses it as it is: `vpnca template adopt NAME` puts it into the store's
    /// authenticated state, and a file that differs from what was adopted stops issuing.
    pub fn override_path(pki: &Path, name: &str) -> std::path::PathBuf {
        pki.join("templates").join(format!("{name}.toml"))
    }

    /// The text of `<pki>/templates/NAME.toml` (bounded, UTF-8), if the file exists.
    pub fn read_override(pki: &Path, name: &str) -> Result<Option<String>> {
        let path = Profile::override_path(pki, name);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        let bytes = crate::fsutil::read_bounded(&path, &crate::fsutil::InputLimit::TEMPLATE)?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Template {
                source_name: path.display().to_string(),
                reason: "it is not UTF-8 text".into(),
            })
    }

    /// Parses and checks a profile.
    pub fn parse(text: &str, source: &str) -> Result<Profile> {
        let bad = |reason: String| Error::Template {
            source_name: source.to_string(),
            reason,
        };
        let mut p: Profile =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim().to_string()))?;
        p.source = source.to_string();
        p.canonicalize_keywords();
        if p.days == 0 || p.days > MAX_DAYS {
            return Err(bad(format!(
                "days = {} is out of range 1..={MAX_DAYS}",
                p.days
            )));
        }
        p.key_usages().map_err(&bad)?;
        p.extended_key_usages().map_err(&bad)?;
        for t in &p.san.allow {
            if !["dns", "ip", "email"].contains(&t.as_str()) {
                return Err(bad(format!(
                    "san.allow: unknown SAN type {t:?} (dns, ip, email)"
                )));
            }
        }
        let ku = p.key_usages().map_err(&bad)?;
        if p.ca {
            if !ku.contains(&KeyUsagePurpose::KeyCertSign)
                || !ku.contains(&KeyUsagePurpose::CrlSign)
            {
                return Err(bad("a CA profile must have keyCertSign and cRLSign".into()));
            }
        } else {
            if ku.contains(&KeyUsagePurpose::KeyCertSign) || ku.contains(&KeyUsagePurpose::CrlSign)
            {
                return Err(bad(
                    "an end-entity profile must not have keyCertSign or cRLSign".into(),
                ));
            }
            if p.path_len.is_some() {
                return Err(bad("path_len is only for CA profiles".into()));
            }
        }
        if ku.is_empty() {
            return Err(bad("key_usage must not be empty".into()));
        }
        Ok(p)
    }

    /// What a profile of this name may grant, whatever its file says: `client` only
    /// clientAuth, `server` only serverAuth (a certificate that is both is made with
    /// `server-client`, chosen explicitly), none of the three CA:TRUE, and `root-ca` and `sub-ca`
    /// always CA:TRUE. A `templates/` file in the store folder (which anyone who can write the
    /// folder can plant) thus cannot give user certificates serverAuth (to impersonate the VPN
    /// server) or make them CAs.
    fn check_kind(&self, name: &str) -> std::result::Result<(), String> {
        let eku = |only: &str| -> std::result::Result<(), String> {
            match self.extended_key_usage.iter().find(|e| *e != only) {
                Some(other) => Err(format!(
                    "the {name} profile may grant only {only}, not {other} (a certificate with both serverAuth and clientAuth is made with the server-client profile, chosen explicitly: --template server-client)"
                )),
                None => Ok(()),
            }
        };
        match (name, self.ca) {
            ("root-ca" | "sub-ca", false) => Err(format!(
                "the {name} profile must have ca = true (a CA certificate with CA:FALSE signs nothing any verifier accepts)"
            )),
            ("root-ca" | "sub-ca", true) => Ok(()),
            (_, true) => Err(format!(
                "the {name} profile must have ca = false: only root-ca and sub-ca make CA certificates"
            )),
            ("client", false) => eku("clientAuth"),
            ("server", false) => eku("serverAuth"),
            _ => Ok(()),
        }
    }

    /// Keywords are matched without regard to case, like every keyword vpnca takes
    /// (`DigitalSignature`, `SERVERAUTH`, `DNS`): each known one is rewritten in its canonical
    /// spelling; unknown ones are left for the checks to name.
    fn canonicalize_keywords(&mut self) {
        let canon = |list: &mut Vec<String>, known: &[&str]| {
            for s in list.iter_mut() {
                if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(s)) {
                    *s = (*k).to_string();
                }
            }
        };
        let ku: Vec<&str> = KEY_USAGE_NAMES
            .iter()
            .map(|(n, _)| *n)
            .chain(["contentCommitment"])
            .collect();
        canon(&mut self.key_usage, &ku);
        canon(&mut self.extended_key_usage, &["serverAuth", "clientAuth"]);
        canon(&mut self.san.allow, &["dns", "ip", "email"]);
    }

    /// SHA-256 (hex) of the adopted text this profile came from (`None`: the built-in one);
    /// the audit entry of each certificate issued with it records it.
    pub fn adopted_sha256(&self) -> Option<&str> {
        self.adopted_sha256.as_deref()
    }

    /// Where the profile was read from: `built-in profile NAME`, or the path of the PKI's
    /// override (what [`Error::Template`] names).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The keyUsage bits, as the profile lists them (whatever the key; see
    /// [`Profile::key_usages_for`]).
    pub fn key_usages(&self) -> std::result::Result<Vec<KeyUsagePurpose>, String> {
        self.key_usage
            .iter()
            .map(|s| {
                let s = if s == "contentCommitment" {
                    "nonRepudiation"
                } else {
                    s.as_str()
                };
                KEY_USAGE_NAMES
                    .iter()
                    .find(|(n, _)| *n == s)
                    .map(|(_, k)| *k)
                    .ok_or_else(|| format!("key_usage: unknown bit {s:?}"))
            })
            .collect()
    }

    /// The keyUsage bits of a certificate for a key of type `key`: the profile's bits less
    /// those the key type forbids ([`KeyType::permits`]). A profile names the bits for an RSA
    /// key (`server`: digitalSignature, keyEncipherment); an EC or Ed25519 certificate made
    /// with it gets only the bits its key may carry (digitalSignature). Refused (the reason is
    /// returned) when no bit is left: a certificate without keyUsage bits is invalid (RFC 5280
    /// §4.2.1.3).
    pub fn key_usages_for(
        &self,
        key: KeyType,
    ) -> std::result::Result<Vec<KeyUsagePurpose>, String> {
        let all = self.key_usages()?;
        let kept: Vec<KeyUsagePurpose> = all.into_iter().filter(|k| key.permits(*k)).collect();
        if kept.is_empty() {
            return Err(format!(
                "key_usage = [{}] leaves no bit that a certificate for an {key} key may carry \
                 (allowed for {key}: {})",
                self.key_usage.join(", "),
                KEY_USAGE_NAMES
                    .iter()
                    .filter(|(_, k)| key.permits(*k))
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(kept)
    }

    /// The extendedKeyUsage purposes.
    pub fn extended_key_usages(&self) -> std::result::Result<Vec<ExtendedKeyUsagePurpose>, String> {
        self.extended_key_usage
            .iter()
            .map(|s| {
                Ok(match s.as_str() {
                    "serverAuth" => ExtendedKeyUsagePurpose::ServerAuth,
                    "clientAuth" => ExtendedKeyUsagePurpose::ClientAuth,
                    other => {
                        return Err(format!(
                            "extended_key_usage: unknown purpose {other:?} (serverAuth, clientAuth)"
                        ));
                    }
                })
            })
            .collect()
    }
}

/// What `vpnca template adopt` or `reset` did to one profile.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateChange {
    /// The profile's name (`client`, `server`, …).
    pub name: String,
    /// Whether the state changed (adopting the text already adopted, or resetting a profile
    /// that is built-in, changes nothing and writes no audit entry).
    pub changed: bool,
    /// SHA-256 (hex) of the text adopted now; `None`: the built-in profile is in effect.
    pub sha256: Option<String>,
    /// SHA-256 (hex) of the text adopted before; `None`: it was the built-in one.
    pub previous_sha256: Option<String>,
    /// The profile in effect now.
    pub profile: Profile,
}

fn text_sha256(text: &str) -> String {
    crate::store::crypto::hex(&crate::store::crypto::sha256(text.as_bytes()))
}

impl crate::Store {
    /// Adopts `text` as the store's profile `name` (`vpnca template adopt`): checked like
    /// every profile (and what a profile of that name may grant: [`Profile::parse_named`]),
    /// then made part of the authenticated state, with an audit entry naming its SHA-256,
    /// where it came from (`source`), and what it grants.
    pub fn adopt_template(&self, name: &str, text: &str, source: &str) -> Result<TemplateChange> {
        let name = Profile::builtin_name(name)?;
        let profile = Profile::parse_named(name, text, source)?;
        let sha = text_sha256(text);
        self.write(|tx, keys| {
            let before = tx.set_template(name, Some(text))?;
            let changed = before.as_deref() != Some(text);
            let previous = before.as_deref().map(text_sha256);
            if changed {
                crate::store::audit_append(
                    tx,
                    keys,
                    "template-adopt",
                    name,
                    "",
                    &serde_json::json!({
                        "sha256": sha,
                        "previous_sha256": previous,
                        "source": source,
                        "ca": profile.ca,
                        "days": profile.days,
                        "key_usage": profile.key_usage,
                        "extended_key_usage": profile.extended_key_usage,
                        "san_allow": profile.san.allow,
                        "dns_from_name": profile.san.dns_from_name,
                    }),
                )?;
            }
            Ok(TemplateChange {
                name: name.to_string(),
                changed,
                sha256: Some(sha.clone()),
                previous_sha256: previous,
                profile: profile.clone(),
            })
        })
    }

    /// Goes back to the built-in profile `name` (`vpnca template reset`), audited.
    pub fn reset_template(&self, name: &str) -> Result<TemplateChange> {
        let name = Profile::builtin_name(name)?;
        let profile = Profile::builtin(name)?;
        self.write(|tx, keys| {
            let before = tx.set_template(name, None)?;
            let previous = before.as_deref().map(text_sha256);
            if let Some(prev) = &previous {
                crate::store::audit_append(
                    tx,
                    keys,
                    "template-reset",
                    name,
                    "",
                    &serde_json::json!({ "previous_sha256": prev }),
                )?;
            }
            Ok(TemplateChange {
                name: name.to_string(),
                changed: previous.is_some(),
                sha256: None,
                previous_sha256: previous,
                profile: profile.clone(),
            })
        })
    }

    /// The text of profile `name` in effect (the adopted one, else the built-in one), and the
    /// SHA-256 of the adopted text (`None`: built-in).
    pub fn template_text(&self, name: &str) -> Result<(String, Option<String>)> {
        let name = Profile::builtin_name(name)?;
        Ok(match self.adopted_template(name)? {
            Some(t) => {
                let sha = text_sha256(&t);
                (t, Some(sha))
            }
            None => (
                BUILTIN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| (*t).to_string())
                    .unwrap_or_default(),
                None,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for (name, text) in BUILTIN {
            Profile::builtin(name).expect(name);
            Profile::parse(text, "t")
                .expect(name)
                .check_kind(name)
                .expect(name);
        }
    }

    /// Each broken variant of the client profile is refused for its own reason, as a
    /// [`Error::Template`] naming the source.
    ///
    /// Fails when: the days check was made `p.days > MAX_DAYS` only (seen: `days = 0` parsed),
    /// and when the expected reason of the keyCertSign case was changed to "a CA profile must
    /// have keyCertSign and cRLSign" (seen: the end-entity message instead).
    #[test]
    fn bad_profiles_are_refused() {
        let (name, good) = BUILTIN[3];
        assert_eq!(name, "client");
        assert!(Profile::parse(good, "t").is_ok());
        let edit = |from: &str, to: &str| {
            assert!(good.contains(from), "the client profile has no {from:?}");
            good.replace(from, to)
        };
        let cases = [
            (
                edit("days = 825", "days = 0"),
                "days = 0 is out of range 1..=36500",
            ),
            (
                edit("\"clientAuth\"", "\"codeSigning\""),
                "extended_key_usage: unknown purpose \"codeSigning\" (serverAuth, clientAuth)",
            ),
            (
                edit("\"digitalSignature\"", "\"keyCertSign\""),
                "an end-entity profile must not have keyCertSign or cRLSign",
            ),
            (
                edit("allow = [\"email\"]", "allow = [\"uri\"]"),
                "san.allow: unknown SAN type \"uri\" (dns, ip, email)",
            ),
            // Appended after `[san]`: an unknown field of the SAN table.
            (format!("{good}\nextra = 1\n"), "unknown field `extra`"),
            (
                "not toml [".to_string(),
                "TOML parse error at line 1, column 5",
            ),
        ];
        for (text, want) in cases {
            match Profile::parse(&text, "t") {
                Err(Error::Template {
                    source_name,
                    reason,
                }) => {
                    assert_eq!(source_name, "t");
                    assert!(
                        reason.contains(want),
                        "expected {want:?}, got {reason:?} for:\n{text}"
                    );
                }
                other => panic!("expected a Template error ({want:?}), got {other:?} for:\n{text}"),
            }
        }
    }
}
