//! Certificate records: what the store knows about each certificate it issued.

use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;

use crate::serial::Serial;
use crate::{Error, Result};

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    /// The store's CA.
    Ca,
    /// A VPN server.
    Server,
    /// A VPN user.
    Client,
}

impl CertKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Ca => "ca",
            CertKind::Server => "server",
            CertKind::Client => "client",
        }
    }

    /// The default profile for the kind.
    pub fn default_profile(self) -> &'static str {
        match self {
            CertKind::Ca => "root-ca",
            CertKind::Server => "server",
            CertKind::Client => "client",
        }
    }
}

impl FromStr for CertKind {
    type Err = Error;
    /// `ca`, `server` or `client`, in any case (like every keyword vpnca reads: statuses,
    /// revocation reasons, key algorithms, formats).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ca" => Ok(CertKind::Ca),
            "server" => Ok(CertKind::Server),
            "client" => Ok(CertKind::Client),
            _ => Err(Error::input(
                "kind",
                format!("{s:?}; expected ca, server or client"),
            )),
        }
    }
}

/// The stored state of a certificate. Expiry is not stored: see [`CertRecord::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertState {
    /// Issued and in use.
    Valid,
    /// Replaced by `renew`; still cryptographically valid until it expires or is revoked.
    Superseded,
    /// Revoked: listed in every CRL from now on.
    Revoked,
}

impl CertState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CertState::Valid => "valid",
            CertState::Superseded => "superseded",
            CertState::Revoked => "revoked",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "valid" => Some(CertState::Valid),
            "superseded" => Some(CertState::Superseded),
            "revoked" => Some(CertState::Revoked),
            _ => None,
        }
    }
}

/// The status shown to users: the stored state, with expiry applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Usable.
    Valid,
    /// Replaced by a newer certificate of the same name, not yet expired.
    Superseded,
    /// Revoked.
    Revoked,
    /// Past notAfter (and not revoked).
    Expired,
}

impl FromStr for Status {
    type Err = Error;
    /// `valid`, `superseded`, `revoked` or `expired`, in any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "valid" => Ok(Status::Valid),
            "superseded" => Ok(Status::Superseded),
            "revoked" => Ok(Status::Revoked),
            "expired" => Ok(Status::Expired),
            _ => Err(Error::input(
                "status",
                format!("{s:?}; expected valid, superseded, revoked or expired"),
            )),
        }
    }
}

impl Status {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Superseded => "superseded",
            Status::Revoked => "revoked",
            Status::Expired => "expired",
        }
    }
}

/// Why a certificate was revoked (RFC 5280 §5.3.1 reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    /// No reason given (the CRL entry then carries no reason code, as RFC 5280 advises).
    Unspecified,
    /// The private key was compromised.
    KeyCompromise,
    /// The CA key was compromised.
    CaCompromise,
    /// The user's affiliation changed (left the company, changed team).
    AffiliationChanged,
    /// Replaced by a new certificate.
    Superseded,
    /// No longer needed.
    CessationOfOperation,
    /// Temporarily on hold.
    CertificateHold,
}

impl RevocationReason {
    /// All reasons, in CLI order.
    pub const ALL: [RevocationReason; 7] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
    ];

    /// The RFC 5280 name (`keyCompromise`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "caCompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
        }
    }

    pub(crate) fn to_rcgen(self) -> Option<rcgen::RevocationReason> {
        use rcgen::RevocationReason as R;
        match self {
            RevocationReason::Unspecified => None,
            RevocationReason::KeyCompromise => Some(R::KeyCompromise),
            RevocationReason::CaCompromise => Some(R::CaCompromise),
            RevocationReason::AffiliationChanged => Some(R::AffiliationChanged),
            RevocationReason::Superseded => Some(R::Superseded),
            RevocationReason::CessationOfOperation => Some(R::CessationOfOperation),
            RevocationReason::CertificateHold => Some(R::CertificateHold),
        }
    }
}

impl FromStr for RevocationReason {
    type Err = Error;
    /// Case-insensitive RFC 5280 names (also easy-rsa's spellings).
    fn from_str(s: &str) -> Result<Self> {
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::input(
                    "revocation reason",
                    format!(
                        "{s:?}; choose one of {}",
                        RevocationReason::ALL.map(|r| r.as_str()).join(", ")
                    ),
                )
            })
    }
}

/// One certificate in the store.
#[derive(Debug, Clone, Serialize)]
pub struct CertRecord {
    /// Serial number (hex in JSON).
    #[serde(serialize_with = "ser_serial")]
    pub serial: Serial,
    /// The name (CN).
    pub name: String,
    /// CA, server or client.
    pub kind: CertKind,
    /// The profile it was issued with.
    pub profile: String,
    /// Stored state.
    pub state: CertState,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked.
    pub reason: Option<RevocationReason>,
    /// The serial of the certificate that replaced it (renew).
    #[serde(serialize_with = "ser_opt_serial")]
    pub superseded_by: Option<Serial>,
    /// Whether the store holds its private key (not for certificates signed from a CSR).
    pub has_key: bool,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    #[serde(skip)]
    pub(crate) id: i64,
}

fn ser_serial<S: serde::Serializer>(s: &Serial, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(&s.hex())
}

fn ser_opt_serial<S: serde::Serializer>(
    s: &Option<Serial>,
    ser: S,
) -> std::result::Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_str(&s.hex()),
        None => ser.serialize_none(),
    }
}

impl CertRecord {
    /// The status at time `now`: revoked wins over expired.
    pub fn status(&self, now: OffsetDateTime) -> Status {
        match self.state {
            CertState::Revoked => Status::Revoked,
            _ if self.not_after <= now => Status::Expired,
            CertState::Superseded => Status::Superseded,
            CertState::Valid => Status::Valid,
        }
    }

    /// Live: the current certificate for its name (valid, not superseded, not expired).
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.status(now) == Status::Valid
    }

    /// The certificate in PEM.
    pub fn pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", &self.der)
    }

    /// SHA-256 fingerprint, colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256`).
    pub fn fingerprint_sha256(&self) -> String {
        crate::store::crypto::sha256(&self.der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}
