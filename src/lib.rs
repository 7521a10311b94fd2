//! vpnca: a PKI toolkit for certificate-authenticated VPNs (AWS Client VPN, OpenVPN).
//!
//! The library does everything the `vpnca` command does, without any terminal I/O:
//! passphrases come in as [`Passphrase`] values, results come back as plain data.
//!
//! ```no_run
//! use vpnca::{CertKind, IssueRequest, KdfParams, KeyAlgorithm, Passphrase, Store, Validity};
//! # fn main() -> vpnca::Result<()> {
//! let pass = Passphrase::new("correct horse battery staple".into());
//! let store = Store::init("pki".as_ref(), &pass, KdfParams::default())?;
//! store.create_root_ca("Example VPN CA", KeyAlgorithm::Rsa2048, Validity::Default)?;
//! store.issue(&IssueRequest::new("vpn.example.com", CertKind::Server))?;
//! store.issue(&IssueRequest::new("alice", CertKind::Client))?;
//! # Ok(()) }
//! ```
//!
//! See the README and `docs/` for the store format, the security model and the defaults.

#![forbid(unsafe_code)]

#[cfg(feature = "aws")]
pub mod aws;
pub mod batch;
pub mod ca;
pub mod ca_key;
pub mod cert;
pub mod check;
pub mod crl;
pub mod easyrsa;
mod error;
pub mod export;
pub mod fsutil;
pub mod key;
pub mod name;
pub mod ovpn;
pub mod pem;
pub mod pkcs12;
pub mod profile;
pub mod secret;
pub mod serial;
pub mod shell;
pub mod store;
pub mod strength;
pub mod x509;

pub use ca::{IssueRequest, RenewOptions, Renewed, Revoked, Target, Validity};
pub use cert::{CertKind, CertRecord, CertState, RevocationReason, Status};
pub use check::{StatusReport, VerifyReport};
pub use crl::{CrlInfo, CrlOptions};
pub use error::{Error, Result};
pub use export::{ExportReport, KeyExport};
pub use key::KeyAlgorithm;
pub use name::San;
pub use profile::Profile;
pub use secret::{Passphrase, SecretKeyDer};
pub use serial::Serial;
pub use store::{AuditEntry, KdfParams, ListFilter, RekeyReport, Store};
pub use x509::Csr;

/// Formats a time as RFC 3339 (UTC, seconds).
pub fn fmt_time(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The current time, truncated to seconds (what the store records).
pub fn store_now() -> time::OffsetDateTime {
    store::now()
}
