//! `status` (is anything about to break?) and `verify` (is the store whole and untouched?).

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::cert::{CertKind, CertRecord, CertState, Status};
use crate::store::{self, Store, StoredCrl};
use crate::x509;
use crate::{Error, Result};

/// One thing `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `ca`, `ca-key` (a CA key in KMS), `crl` or `certificate`.
    pub subject: String,
    /// `expired`, `expiring`, `missing`, `stale`, `deferred` (a revocation whose CRL KMS could
    /// not sign yet), `no-dns-san`, `look-alike`; for `ca-key`:
    /// `disabled`, `pending-deletion`, `unusable`, `unreachable`, `mismatch`.
    pub problem: String,
    /// For humans.
    pub message: String,
    /// The certificate name, if any.
    pub name: Option<String>,
    /// The serial, if any.
    pub serial: Option<String>,
    /// The relevant date.
    #[serde(with = "time::serde::rfc3339::option")]
    pub date: Option<OffsetDateTime>,
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The state head the report was checked against (`SEQ:ROOT`): the one the state-signing
    /// key signed, when run without the passphrase. `None`: read unverified (a `store`
    /// `unverified` finding says why) or format 1.
    pub state_head: Option<String>,
    /// CA name.
    pub ca: Option<String>,
    /// CA notAfter.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ca_not_after: Option<OffsetDateTime>,
    /// CRL number.
    pub crl_number: Option<u64>,
    /// CRL nextUpdate.
    #[serde(with = "time::serde::rfc3339::option")]
    pub crl_next_update: Option<OffsetDateTime>,
    /// Counts by status.
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Things that need attention (exit code 1 when not empty).
    pub findings: Vec<Finding>,
}

pub(crate) fn finding(
    subject: &str,
    problem: &str,
    message: String,
    rec: Option<&CertRecord>,
    date: Option<OffsetDateTime>,
) -> Finding {
    Finding {
        subject: subject.into(),
        problem: problem.into(),
        message,
        name: rec.map(|r| r.name.clone()),
        serial: rec.map(|r| r.serial.hex()),
        date,
    }
}

/// Whether a server certificate carries at least one DNS SAN (AWS Client VPN and ACM refuse one
/// without: easy-rsa 3.2 issues them so by default). A certificate that cannot be parsed counts
/// as having one: `verify` reports it, not this check.
fn server_has_dns_san(rec: &CertRecord) -> bool {
    x509::parse_cert(&rec.der, &rec.name).map_or(true, |c| x509::has_dns_san(&c))
}

/// The words `status` and `import-easyrsa` use for a server certificate without a DNS SAN.
pub(crate) fn no_dns_san_message(name: &str, serial: &str) -> String {
    format!(
        "server {name} (serial {serial}) has no DNS subjectAltName: AWS Client VPN (ACM) refuses it; `vpnca renew {}` issues one with DNS:{}",
        crate::shell::quote(name),
        name.to_ascii_lowercase()
    )
}

/// Pairs of names with live certificates that look alike ([`crate::name::looks_alike`]),
/// each with the words `status`, `verify` and `import-easyrsa` use for it. Names are never
/// renamed: the admin decides which one is meant.
pub(crate) fn look_alike_pairs<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, String, String)> {
    let mut by_key: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for n in names {
        by_key
            .entry(crate::name::look_alike_key(n))
            .or_default()
            .push(n);
    }
    let mut out = Vec::new();
    for group in by_key.values().filter(|g| g.len() > 1) {
        for other in &group[1..] {
            let (a, b) = (group[0], *other);
            let (qa, qb) = (crate::shell::quote(a), crate::shell::quote(b));
            let message = if crate::name::nfc(a) == crate::name::nfc(b) {
                format!(
                    "{qa} is stored in two Unicode spellings ({} and {}), each with a valid certificate: `vpnca revoke {}` revokes both; to keep one, revoke the other by serial (`vpnca list`)",
                    spelling(a),
                    spelling(b),
                    crate::shell::quote(&crate::name::nfc(a))
                )
            } else {
                format!(
                    "{qa} and {qb} look alike and both have valid certificates: make sure each is the user you think (`vpnca show {qa}`, `vpnca show {qb}`); a revocation by name revokes only the name typed"
                )
            };
            out.push((a.to_string(), b.to_string(), message));
        }
    }
    out
}

/// What fixes a CRL finding of `status` when a plain `vpnca crl` does not, or not for long;
/// `None` when it does. `at_ca_end`: the CRL already ends with the CA (whose notAfter is
/// `ca_end`), so no new CRL ends later. `policy_days`: the stored CRL policy.
fn crl_advice(
    now: OffsetDateTime,
    warn_days: u32,
    ca_end: Option<OffsetDateTime>,
    policy_days: u32,
    at_ca_end: bool,
) -> Option<String> {
    let ca_end = ca_end?;
    let horizon = now + Duration::days(i64::from(warn_days.min(crate::profile::MAX_DAYS)));
    if ca_end <= now {
        return Some(format!(
            "`vpnca crl` cannot help: the CA expired on {}, and an expired CA signs no CRL; {}",
            crate::fmt_time(ca_end),
            replace_ca(None)
        ));
    }
    if ca_end <= horizon && at_ca_end {
        return Some(format!(
            "`vpnca crl` cannot help: that is the CA's own notAfter, and a CRL cannot outlive the CA that signs it; {}",
            replace_ca(Some(ca_end))
        ));
    }
    let policy_end = now + Duration::days(i64::from(policy_days));
    let run = if policy_end <= horizon && policy_end < ca_end {
        format!(
            "run `vpnca crl --days {}` and upload it (a plain `vpnca crl` keeps the stored CRL policy of {policy_days} day(s), which `vpnca status` reports again within {warn_days} days)",
            crate::crl::DEFAULT_CRL_DAYS,
        )
    } else if ca_end <= horizon {
        "run `vpnca crl` and upload it".to_string()
    } else {
        return None;
    };
    if ca_end <= horizon {
        return Some(format!(
            "{run}; but no CRL can last past {}, the CA's own notAfter: {}",
            crate::fmt_time(ca_end),
            replace_ca(Some(ca_end))
        ));
    }
    Some(run)
}

/// The non-ASCII characters of a name as code points (`U+0065 U+0301`): what tells two
/// spellings apart that print the same.
pub(crate) fn spelling(name: &str) -> String {
    let cps: Vec<String> = name
        .chars()
        .filter(|c| !c.is_ascii())
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect();
    format!("with {}", cps.join(" "))
}

/// What to do when the CA itself runs out (before `by`, when it has not yet), in every message
/// that ends up there.
pub(crate) fn replace_ca(by: Option<OffsetDateTime>) -> String {
    format!(
        "vpnca cannot renew a CA: set up a new CA and move the VPN to it{} (docs/defaults.md#replacing-the-ca)",
        by.map(|t| format!(" before {}", crate::fmt_time(t)))
            .unwrap_or_default()
    )
}

impl Store {
    /// Checks expiry of the CA, the CRL and certificates within `warn_days`. Works locked.
    ///
    /// Each finding names the command that fixes it, and only one that can: when the CA
    /// itself ends within the horizon, a new CRL or a renewed certificate would end with it
    /// (both are cut to the CA's notAfter), so the advice is a new CA, not `vpnca crl` or
    /// `vpnca renew`; when the stored CRL policy is itself within the horizon, a plain
    /// `vpnca crl` would be reported again, so the advice names `--days`.
    ///
    /// Every record it counts is first checked against the state head, whole: the signed head
    /// when locked (a store without a state-signing key yet is read unverified, and says so),
    /// the MAC'd head when unlocked. An edited store is [`Error::Tampered`].
    pub fn status(&self, warn_days: u32) -> Result<StatusReport> {
        let now = store::now();
        let horizon = now + Duration::days(i64::from(warn_days.min(crate::profile::MAX_DAYS)));
        let mut findings = Vec::new();
        // Without the passphrase, what follows is checked against the head the state-signing
        // key signed (a tampered one stops here, exit 2); a store without that key is read as
        // it is, and says so.
        let state_head = if self.is_unlocked() {
            // The same whole-state check, against the MAC'd head: every record counted below,
            // and the live names of the look-alike findings, are then the proven ones.
            if let Some(what) = self.state_problems()?.into_iter().next() {
                return Err(Error::Tampered { what });
            }
            self.state_head()?
        } else {
            // The counts and findings below come from every record: the whole state is checked
            // against the signed head first.
            match self.check_public_state()? {
                Some(head) => Some(head),
                None => {
                    if self.reads_unverified()? {
                        findings.push(finding(
                            "store",
                            "unverified",
                            "this report is read from the database unverified: the store has no state-signing key yet (a store made by an older vpnca, or a format-1 store); run `vpnca verify` once with the passphrase to certify one".into(),
                            None,
                            None,
                        ));
                    }
                    None
                }
            }
        };
        let ca = self.ca().ok();
        match &ca {
            None => findings.push(finding(
                "ca",
                "missing",
                "the store has no CA: run `vpnca ca`".into(),
                None,
                None,
            )),
            Some(ca) if ca.not_after <= now => findings.push(finding(
                "ca",
                "expired",
                format!(
                    "the CA {} expired on {}: no certificate it signed is valid any more, and it signs no CRL; {}",
                    ca.name,
                    crate::fmt_time(ca.not_after),
                    replace_ca(None)
                ),
                Some(ca),
                Some(ca.not_after),
            )),
            Some(ca) if ca.not_after <= horizon => findings.push(finding(
                "ca",
                "expiring",
                format!(
                    "the CA {} expires on {}: every certificate and CRL it signed ends then too, and neither `vpnca renew` nor `vpnca crl` can go past it; {}",
                    ca.name,
                    crate::fmt_time(ca.not_after),
                    replace_ca(Some(ca.not_after))
                ),
                Some(ca),
                Some(ca.not_after),
            )),
            _ => {}
        }
        // A CA key in KMS: still there, enabled, the CA's (one DescribeKey + GetPublicKey).
        #[cfg(feature = "aws")]
        findings.extend(self.kms_key_findings()?);
        let crl = self.latest_crl()?;
        let policy = crate::CrlOptions::from_store(self)?;
        let ca_end = ca.as_ref().map(|c| c.not_after);
        let crl_fix = |at_ca_end| crl_advice(now, warn_days, ca_end, policy.days, at_ca_end);
        let at_ca_end = |t: OffsetDateTime| ca.as_ref().is_some_and(|c| t >= c.not_after);
        match &crl {
            None if ca.is_some() => findings.push(finding("crl", "missing", match crl_fix(false) {
                None => "no CRL yet: run `vpnca crl` (AWS Client VPN and OpenVPN crl-verify need one)".into(),
                Some(fix) => format!("no CRL yet (AWS Client VPN and OpenVPN crl-verify need one): {fix}"),
            }, None, None)),
            Some(c) if c.next_update <= now => findings.push(finding("crl", "expired", match crl_fix(at_ca_end(c.next_update)) {
                None => format!("the CRL expired on {}: NO USER CAN CONNECT until a new one is uploaded (`vpnca crl`)", crate::fmt_time(c.next_update)),
                Some(fix) => format!("the CRL expired on {}: NO USER CAN CONNECT; {fix}", crate::fmt_time(c.next_update)),
            }, None, Some(c.next_update))),
            Some(c) if c.next_update <= horizon => findings.push(finding("crl", "expiring", format!("the CRL's nextUpdate is {}: after that no user can connect; {}", crate::fmt_time(c.next_update), crl_fix(at_ca_end(c.next_update)).unwrap_or_else(|| "run `vpnca crl` and upload it".into())), None, Some(c.next_update))),
            _ => {}
        }
        // Revocations recorded while KMS could not sign their CRL: each one a finding until a
        // CRL lists it; the `stale` finding is then about any other revocation the CRL misses.
        let deferred = self.crl_deferred()?;
        if let Some(d) = &deferred {
            findings.extend(self.deferred_findings(d, crl.as_ref(), &crl_fix(false))?);
        }
        if let Some(mut stale) = self.crl_missing_revocations()? {
            if let Some(d) = &deferred {
                stale.missing.retain(|m| !d.serials.contains(m));
            }
            if !stale.missing.is_empty() {
                findings.push(finding(
                    "crl",
                    "stale",
                    format!(
                        "{}: {}",
                        stale.describe(),
                        crl_fix(false).unwrap_or_else(|| "run `vpnca crl`".into())
                    ),
                    None,
                    stale.last_revoked_at,
                ));
            }
        }
        let mut counts = std::collections::BTreeMap::new();
        for r in self.list(&Default::default())? {
            let s = r.status(now);
            *counts.entry(s.as_str().to_string()).or_insert(0) += 1;
            if r.kind != CertKind::Ca && s == Status::Valid && r.not_after <= horizon {
                let renew = format!("`vpnca renew {}`", crate::shell::quote(&r.name));
                // A renewal is cut to the CA's notAfter too.
                let fix = match &ca {
                    Some(c) if r.not_after >= c.not_after => format!(
                        "`vpnca renew` cannot help: it ends with the CA, and a certificate cannot outlive the CA that signs it; {}",
                        replace_ca(Some(c.not_after))
                    ),
                    Some(c) if c.not_after <= horizon => format!(
                        "{renew}, but a renewed certificate also ends with the CA on {}: {}",
                        crate::fmt_time(c.not_after),
                        replace_ca(Some(c.not_after))
                    ),
                    _ => renew,
                };
                findings.push(finding(
                    "certificate",
                    "expiring",
                    format!(
                        "{} {} (serial {}) expires on {}: {fix}",
                        r.kind.as_str(),
                        r.name,
                        r.serial,
                        crate::fmt_time(r.not_after),
                    ),
                    Some(&r),
                    Some(r.not_after),
                ));
            }
            if r.kind == CertKind::Server && s == Status::Valid && !server_has_dns_san(&r) {
                findings.push(finding(
                    "certificate",
                    "no-dns-san",
                    no_dns_san_message(&r.name, &r.serial.hex()),
                    Some(&r),
                    None,
                ));
            }
        }
        for (a, _, message) in look_alike_pairs(self.live_names()?.iter().map(String::as_str)) {
            findings.push(Finding {
                subject: "certificate".into(),
                problem: "look-alike".into(),
                message,
                name: Some(a),
                serial: None,
                date: None,
            });
        }
        for (name, problem, message) in self.template_findings()? {
            findings.push(Finding {
                subject: "template".into(),
                problem: problem.into(),
                message,
                name: Some(name.into()),
                serial: None,
                date: None,
            });
        }
        Ok(StatusReport {
            state_head,
            ca: ca.as_ref().map(|c| c.name.clone()),
            ca_not_after: ca.as_ref().map(|c| c.not_after),
            crl_number: crl.as_ref().map(|c| c.number),
            crl_next_update: crl.as_ref().map(|c| c.next_update),
            counts,
            findings,
        })
    }

    /// Why a certificate just issued, signed or renewed ends earlier than its validity asked:
    /// its notAfter was cut to the CA's ([`crate::ca`] never lets a certificate outlive its
    /// issuer). `None` when it was not cut, and for the CA itself. Works locked.
    pub fn cut_to_ca(&self, rec: &CertRecord) -> Result<Option<String>> {
        if rec.kind == CertKind::Ca {
            return Ok(None);
        }
        let ca = self.ca()?;
        if rec.not_after < ca.not_after {
            return Ok(None);
        }
        Ok(Some(format!(
            "{} {} ends on {}, the CA's own notAfter, not at the end of the validity asked: a certificate cannot outlive the CA that signs it, and `vpnca renew` will not extend it; {}",
            rec.kind.as_str(),
            crate::shell::quote(&rec.name),
            crate::fmt_time(rec.not_after),
            replace_ca(Some(ca.not_after))
        )))
    }

    /// What a CA's validity means for what it signs, said when it is created or imported:
    /// nothing, unless it ends before a server or client certificate of the default validity
    /// would. Then every certificate and CRL is cut to its notAfter (and, under
    /// [`crate::crl::MIN_DAYS_LEFT`] days, `status` reports it at once). Works locked.
    pub fn ca_warnings(&self, ca: &CertRecord) -> Result<Vec<String>> {
        let mut leaf_days = u32::MAX;
        for kind in [CertKind::Client, CertKind::Server] {
            let p = self.effective_profile(kind.default_profile())?;
            leaf_days = leaf_days.min(p.days);
        }
        let lifetime = ca.not_after - ca.not_before;
        if lifetime >= Duration::days(i64::from(leaf_days)) {
            return Ok(Vec::new());
        }
        let mut w = format!(
            "the CA is valid {} day(s), until {}: every certificate and CRL it signs ends by then, so certificates are shorter than their {leaf_days}-day default, and neither `vpnca renew` nor `vpnca crl` can go past {}; {}",
            lifetime.whole_days(),
            crate::fmt_time(ca.not_after),
            crate::fmt_time(ca.not_after),
            replace_ca(Some(ca.not_after))
        );
        let min = crate::crl::MIN_DAYS_LEFT;
        if lifetime < Duration::days(i64::from(min)) {
            w.push_str(&format!(
                ". Being valid less than {min} days, it is reported by `vpnca status` as expiring from now on, and so is every CRL it signs"
            ));
        }
        Ok(vec![w])
    }
}

impl Store {
    /// `status`'s `crl` `deferred` findings: one for each revocation no CRL lists yet because
    /// its CRL was deferred ([`crate::crl::CrlDeferred`]), naming the certificate, why no CRL
    /// was signed, what `crl.pem` still holds and the command that signs the CRL (`fix`:
    /// [`crl_advice`]'s words when a plain `vpnca crl` is not enough).
    fn deferred_findings(
        &self,
        d: &crate::crl::CrlDeferred,
        crl: Option<&StoredCrl>,
        fix: &Option<String>,
    ) -> Result<Vec<Finding>> {
        let held = match crl {
            Some(c) => format!(
                "{} holds CRL #{}, which does not list it",
                self.crl_path().display(),
                c.number
            ),
            None => format!("{} holds no CRL yet", self.crl_path().display()),
        };
        let why = match &d.reason {
            Some(r) => format!("no CRL was signed: {r}"),
            None => {
                "no CRL was signed (the command that revoked it did not finish signing)".to_string()
            }
        };
        let run = fix
            .clone()
            .unwrap_or_else(|| "run `vpnca crl` once KMS can sign, and upload the CRL".to_string());
        let mut out = Vec::new();
        for hex in &d.serials {
            let rec = hex
                .parse::<crate::serial::Serial>()
                .ok()
                .and_then(|s| self.by_serial(&s).ok());
            out.push(finding(
                "crl",
                "deferred",
                format!(
                    "the revocation of {} is recorded, but its CRL was deferred: {why}; {held}, so the VPN still accepts that certificate: {run}",
                    match &rec {
                        Some(r) => format!(
                            "{} {} (serial {})",
                            r.kind.as_str(),
                            crate::shell::quote(&r.name),
                            r.serial
                        ),
                        None => format!("serial {hex}"),
                    },
                ),
                rec.as_ref(),
                rec.as_ref().and_then(|r| r.revoked_at).or(Some(d.since)),
            ));
        }
        Ok(out)
    }
}

/// Revocations the store's latest CRL does not list ([`Store::crl_missing_revocations`]).
#[derive(Debug, Clone, Serialize)]
pub struct StaleCrl {
    /// The latest CRL's number.
    pub crl_number: u64,
    /// The serials (hex) of the revoked certificates it does not list.
    pub missing: Vec<String>,
    /// The latest of their revocation times.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_revoked_at: Option<OffsetDateTime>,
}

impl StaleCrl {
    /// One line for people: `CRL #3 does not list 2 revoked certificate(s), revoked up to …`.
    pub fn describe(&self) -> String {
        format!(
            "CRL #{} does not list {} revoked certificate(s){}",
            self.crl_number,
            self.missing.len(),
            self.last_revoked_at
                .map(|t| format!(" (the latest revoked on {})", crate::fmt_time(t)))
                .unwrap_or_default()
        )
    }
}

impl Store {
    /// Whether the latest CRL misses a revocation: a revoked certificate of the store (not the
    /// CA, and not an expired one when the CRL policy omits those) whose serial the CRL does not
    /// list. `None` when it lists them all, or when there is no CRL (see [`Store::status`]).
    ///
    /// It compares serials, not dates: a CRL's thisUpdate is back-dated and its entries'
    /// revocation dates may be moved to fit it (docs/defaults.md), so no date arithmetic tells
    /// reliably whether a revocation came before or after a CRL. A CRL that cannot be read
    /// misses everything. Works locked.
    pub fn crl_missing_revocations(&self) -> Result<Option<StaleCrl>> {
        let Some(crl) = self.latest_crl()? else {
            return Ok(None);
        };
        let omit_expired = crate::CrlOptions::from_store(self)?.omit_expired;
        let now = store::now();
        let listed = crl_serials(&crl.der);
        let mut missing: Vec<&CertRecord> = Vec::new();
        let revoked = self.revoked()?;
        for r in &revoked {
            let expected = r.kind != CertKind::Ca && !(omit_expired && r.not_after <= now);
            let in_crl = listed
                .as_ref()
                .is_some_and(|l| l.contains(trim_zeros(r.serial.as_bytes())));
            if expected && !in_crl {
                missing.push(r);
            }
        }
        if missing.is_empty() {
            return Ok(None);
        }
        Ok(Some(StaleCrl {
            crl_number: crl.number,
            missing: missing.iter().map(|r| r.serial.hex()).collect(),
            last_revoked_at: missing.iter().filter_map(|r| r.revoked_at).max(),
        }))
    }
}

impl Store {
    /// The latest CRL, proven against the authenticated state before it leaves the store
    /// (`push-crl`; `verify` before it repairs `crl.pem`): signed by the store's CA (its record
    /// MAC checked), the number inside it is the number it is stored under, it lists every
    /// revoked certificate (revoked-set checksum and record MACs checked) that had not expired
    /// when it was made, and nothing the store has not revoked. An old, validly signed CRL
    /// renumbered to the top, or left on top by deleting newer rows, fails the first or the
    /// third test: [`Error::Tampered`]. Needs the store unlocked.
    pub fn publishable_crl(&self) -> Result<Option<StoredCrl>> {
        // One snapshot for the CRL and the revoked set: a revocation another process commits
        // in between would otherwise look like a CRL that misses it. (Read-only: the
        // transaction is rolled back when it is dropped.)
        let _snapshot = self.snapshot()?;
        let Some(crl) = self.latest_crl()? else {
            return Ok(None);
        };
        if let Some(d) = self.crl_deferred()? {
            // Not tampering: the revocations are recorded, their CRL is not signed yet.
            return Err(Error::Refused {
                reason: format!(
                    "CRL #{} does not list serial {}, whose revocation is recorded but whose CRL was deferred ({}): it is not published; run `vpnca crl` once KMS can sign",
                    crl.number,
                    d.serials.join(", "),
                    d.reason.as_deref().unwrap_or("not signed yet")
                ),
            });
        }
        self.prove_crl(&crl, false)
            .map_err(|what| Error::Tampered { what })?;
        Ok(Some(crl))
    }

    /// [`Store::publishable_crl`]'s tests of one CRL; the reason it fails, for people. With
    /// `allow_deferred` (`verify`), a revocation the deferred-CRL record names
    /// ([`crate::crl::CrlDeferred`]) may be missing from it: recorded, not yet signed.
    fn prove_crl(&self, crl: &StoredCrl, allow_deferred: bool) -> Result<(), String> {
        use x509_parser::prelude::FromDer;
        let keys = self.keys().map_err(|e| e.to_string())?;
        let ca = self.ca().map_err(|e| e.to_string())?;
        let raw = self.raw(&ca.serial).map_err(|e| e.to_string())?;
        store::check_record_mac(keys, &raw).map_err(|e| e.to_string())?;
        let ca_cert = x509::parse_cert(&ca.der, "the CA certificate").map_err(|e| e.to_string())?;
        let n = crl.number;
        let (_, parsed) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&crl.der)
                .map_err(|e| format!("CRL {n}: it cannot be read ({e})"))?;
        if parsed.verify_signature(ca_cert.public_key()).is_err() {
            return Err(format!(
                "CRL {n}: its signature does not verify with the CA key"
            ));
        }
        let inside = parsed.crl_number().and_then(|x| u64::try_from(x).ok());
        if inside != Some(n) {
            return Err(format!(
                "CRL {n}: the CRL stored under number {n} is CRL number {} (an older CRL renumbered outside vpnca); run `vpnca crl` for a new one",
                inside.map_or("(none)".to_string(), |x| x.to_string())
            ));
        }
        let made = parsed.last_update().to_datetime() + crate::ca::BACKDATE;
        let listed: std::collections::HashSet<Vec<u8>> = parsed
            .iter_revoked_certificates()
            .map(|e| trim_zeros(e.raw_serial()).to_vec())
            .collect();
        let revoked = self.revoked_set(keys).map_err(|e| e.to_string())?;
        let deferred: Vec<String> = match allow_deferred {
            true => self
                .crl_deferred()
                .map_err(|e| e.to_string())?
                .map(|d| d.serials)
                .unwrap_or_default(),
            false => Vec::new(),
        };
        let mut revoked_serials = std::collections::HashSet::new();
        for r in revoked.iter().map(|r| &r.rec) {
            let serial = trim_zeros(r.serial.as_bytes()).to_vec();
            if r.kind != CertKind::Ca
                && r.not_after > made
                && !listed.contains(&serial)
                && !deferred.contains(&r.serial.hex())
            {
                return Err(format!(
                    "CRL {n}: it does not list {} (serial {}), revoked on {}: it is older than the store's revocations (newer CRLs deleted, or an old one put on top, outside vpnca); run `vpnca crl` for a new one",
                    crate::shell::quote(&r.name),
                    r.serial,
                    r.revoked_at.map(crate::fmt_time).unwrap_or_default()
                ));
            }
            revoked_serials.insert(serial);
        }
        if let Some(extra) = listed.iter().find(|s| !revoked_serials.contains(*s)) {
            return Err(format!(
                "CRL {n}: it lists serial {} which the store has not revoked",
                crate::serial::Serial::from_bytes(extra)
            ));
        }
        Ok(())
    }
}

/// The serials a DER CRL lists (big-endian bytes without leading zeros), or `None` if it cannot
/// be read.
fn crl_serials(der: &[u8]) -> Option<std::collections::HashSet<Vec<u8>>> {
    use x509_parser::prelude::FromDer;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der).ok()?;
    Some(
        crl.iter_revoked_certificates()
            .map(|e| trim_zeros(e.raw_serial()).to_vec())
            .collect(),
    )
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// What `verify` reports.
#[derive(Debug, Clone, Serialize, Default)]
pub struct VerifyReport {
    /// Certificates checked.
    pub certificates: u64,
    /// Private keys decrypted and matched to their certificate.
    pub keys: u64,
    /// Audit entries checked.
    pub audit_entries: u64,
    /// Integrity problems (exit code 1 when not empty).
    pub problems: Vec<String>,
    /// Those of `problems` that show the database to be an older copy than the checkpoint or
    /// `crl.pem` (what `verify --accept-restore` accepts).
    pub rollback: Vec<String>,
    /// Public mirrors that were missing or stale and were rewritten.
    pub repaired: Vec<String>,
    /// What needs a person's eye but is no integrity problem (exit code 0): names with valid
    /// certificates that look alike.
    pub warnings: Vec<String>,
    /// The store format (2; 1 only for a store that could not be upgraded).
    pub format: u32,
    /// The state head the store was checked against (format 2), `SEQ:ROOT`: a value to note
    /// outside the store and give back to `verify --head` later.
    pub state_head: Option<String>,
    /// Whether this run certified the state-signing key (a store made before it existed).
    pub state_key_certified: bool,
    /// Whether this run upgraded a format-1 store to format 2.
    pub upgraded: bool,
}

/// What `vpnca verify --ca-cert` found ([`Store::verify_public`]).
#[derive(Debug, Default, Serialize)]
pub struct PublicVerifyReport {
    /// The store format.
    pub format: u32,
    /// SHA-256 (hex) of the CA certificate the store was checked against.
    pub ca_sha256: String,
    /// The signed state head checked, `SEQ:ROOT`.
    pub state_head: Option<String>,
    /// Certificates in the store (all covered by the state check).
    pub certificates: u64,
    /// Integrity problems (exit code 1 when not empty).
    pub problems: Vec<String>,
}

impl Store {
    /// Checks the whole store: every record's MAC, every key blob (decrypts, matches its
    /// certificate), every certificate's signature by the CA, the revoked-set checksum, the audit
    /// chain, the latest CRL; rewrites missing or stale public mirrors. Needs the passphrase.
    pub fn verify(&self) -> Result<VerifyReport> {
        // verify re-derives the whole state and reports each difference (`state_problems`):
        // the reads on the way do not stop at the first one.
        let mut rep = self.without_read_proofs(|| self.verify_report())?;
        // A CA key in KMS, once the store checked out (its reference is then proven): still
        // there, enabled, the CA's.
        #[cfg(feature = "aws")]
        if rep.problems.is_empty() {
            rep.problems
                .extend(self.kms_key_findings()?.into_iter().map(|f| f.message));
        }
        // An intact store without a state-signing key (made before it existed) gets one, so
        // that `verify --ca-cert` and the readers without the passphrase can check it, and a
        // format-1 store is upgraded, in one write.
        // A format-1 store is upgraded in the same write.
        if rep.problems.is_empty() {
            let format = self.format();
            rep.state_key_certified = self.certify_state_key()?;
            rep.upgraded = self.format() > format;
            if rep.upgraded || rep.state_key_certified {
                rep.format = self.format();
                rep.state_head = self.state_head()?;
            }
        }
        Ok(rep)
    }

    /// The whole state checked against the head — the MAC'd one when unlocked, the signed one
    /// when locked — for a decision that depends on what the store does *not* hold: a profile
    /// pins the server certificates the store lists, and a server record deleted outside
    /// vpnca would otherwise drop the pin silently. O(records). An edited store is
    /// [`Error::Tampered`].
    pub(crate) fn require_whole_state(&self) -> Result<()> {
        if self.is_unlocked() {
            if let Some(what) = self.state_problems()?.into_iter().next() {
                return Err(Error::Tampered { what });
            }
            return Ok(());
        }
        self.check_public_state().map(|_| ())
    }

    /// For readers without the passphrase that show every record (`list`, `status`): the
    /// whole state checked against the head the state-signing key signed (as
    /// `verify --ca-cert` does, against the store's own CA). `Ok(Some(head))`: checked;
    /// `Ok(None)`: the store has no state-signing key yet (read unverified);
    /// [`Error::Tampered`] naming the first difference otherwise.
    pub fn check_public_state(&self) -> Result<Option<String>> {
        let Some((head, _)) = self.public_state()? else {
            return Ok(None);
        };
        match self.public_state_problems()?.into_iter().next() {
            Some(what) => Err(Error::Tampered { what }),
            None => Ok(Some(head)),
        }
    }

    /// Checks the store **without the passphrase**, against `ca_der` (a CA certificate the
    /// auditor holds, DER): the state head's signature by the state-signing key, that key's
    /// certificate (recorded in the state, signed by the store's CA), the store's CA being
    /// exactly `ca_der`, and every item the tables hold re-derived against the head
    /// (`vpnca verify --ca-cert`). Record MACs, key blobs and the audit chain need the
    /// passphrase: [`Store::verify`].
    pub fn verify_public(&self, ca_der: &[u8]) -> Result<PublicVerifyReport> {
        let mut rep = PublicVerifyReport {
            format: self.format(),
            ca_sha256: crate::store::crypto::hex(&crate::store::crypto::sha256(ca_der)),
            ..Default::default()
        };
        match self.public_state() {
            Ok(Some((head, store_ca))) => {
                if store_ca != ca_der {
                    rep.problems.push(format!(
                        "the store's CA (sha256 {}) is not the CA certificate given (sha256 {}): the store was replaced, or the wrong CA file was given",
                        crate::store::crypto::hex(&crate::store::crypto::sha256(&store_ca)),
                        rep.ca_sha256
                    ));
                    return Ok(rep);
                }
                rep.state_head = Some(head);
            }
            Ok(None) => {}
            Err(Error::Tampered { what }) => {
                rep.problems.push(what);
                return Ok(rep);
            }
            Err(e) => return Err(e),
        }
        rep.problems.extend(self.public_state_problems()?);
        rep.certificates = self.count()?;
        Ok(rep)
    }

    /// Compares the store with a state head noted outside it (`SEQ:ROOT`, `verify --head`):
    /// `Ok(None)` when it is the store's head, or an older one (only the newest root is kept,
    /// so an older head's root cannot be compared: the answer says so); a problem when the
    /// database ends before that sequence number (an older copy) or holds another root at it
    /// (another history). A text that is not `SEQ:ROOT` is [`Error::InvalidInput`].
    pub fn check_anchor(&self, anchor: &str) -> Result<Result<Option<String>, String>> {
        let bad = || {
            Error::input(
                "--head",
                format!("{anchor:?} is not a state head SEQ:ROOT (as `vpnca verify` prints it)"),
            )
        };
        let (seq, root) = anchor.trim().split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().ok().filter(|s| *s > 0).ok_or_else(bad)?;
        let root = root.to_ascii_lowercase();
        if root.len() != 64 || !root.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let Some(head) = self.state_head()? else {
            return Ok(Err(
                "the store has no state head (format 1): it cannot be checked against one".into(),
            ));
        };
        let (cur_seq, cur_root) = head.split_once(':').unwrap_or_default();
        let cur_seq: i64 = cur_seq.parse().unwrap_or(0);
        Ok(if seq > cur_seq {
            Err(format!(
                "the database is an older copy: the head you noted is {seq}, but the store's state ends at {cur_seq} (changes made since, revocations included, are missing)"
            ))
        } else if seq == cur_seq && root != cur_root {
            Err(format!(
                "the store is another history than the one you noted: its head {cur_seq} has another root"
            ))
        } else if seq < cur_seq {
            Ok(Some(format!(
                "the head you noted ({seq}) is older than the store's ({head}); only the newest root is kept, so the store is only known not to be older"
            )))
        } else {
            Ok(None)
        })
    }

    fn verify_report(&self) -> Result<VerifyReport> {
        let keys = self.keys()?;
        let mut rep = VerifyReport::default();
        let ca = self.ca().ok();
        let ca_der = ca.as_ref().map(|c| c.der.clone());
        let ca_cert = match &ca_der {
            Some(d) => Some(x509::parse_cert(d, "the CA certificate")?),
            None => None,
        };
        let parents = self.parent_chain()?;
        let mut rep_problems = Vec::new();
        // SQLite's own structure first: a damaged page must not pass as "intact".
        let quick = self.engine_check()?;
        if quick != ["ok"] {
            rep_problems.push(format!(
                "the database file is damaged: {}",
                quick.join("; ")
            ));
        }
        let all = self.list(&Default::default())?;
        let mut names = std::collections::BTreeSet::new();
        for r in &all {
            rep.certificates += 1;
            let raw = self.raw(&r.serial)?;
            if let Err(e) = store::check_record_mac(keys, &raw) {
                rep.problems.push(e.to_string());
                continue;
            }
            match x509::parse_cert(&r.der, &r.name) {
                Ok(c) => {
                    if crate::serial::Serial::from_bytes(c.raw_serial()) != r.serial {
                        rep.problems.push(format!(
                            "{} (serial {}): the certificate's serial differs from the record's",
                            r.name, r.serial
                        ));
                    }
                    // The CA itself is checked against its parent (a sub-CA) or itself (a root).
                    let issuer_ok = match (&ca_cert, r.kind) {
                        (_, CertKind::Ca) => match parents.first() {
                            Some(p) => x509::parse_cert(p, "the parent CA")
                                .map(|p| x509::signed_by(&c, &p))
                                .unwrap_or(false),
                            None => x509::signed_by(&c, &c),
                        },
                        (Some(ca_cert), _) => x509::signed_by(&c, ca_cert),
                        (None, _) => true,
                    };
                    if !issuer_ok {
                        rep.problems.push(format!(
                            "{} (serial {}): not signed by the CA",
                            r.name, r.serial
                        ));
                    }
                    if r.has_key {
                        match self
                            .private_key_unguarded(r)
                            .and_then(|k| crate::key::load_key_pair(&k))
                        {
                            Ok(kp) => {
                                use rcgen::PublicKeyData;
                                if kp.subject_public_key_info() != c.public_key().raw {
                                    rep.problems.push(format!("{} (serial {}): the stored key does not match the certificate", r.name, r.serial));
                                } else {
                                    rep.keys += 1;
                                }
                            }
                            Err(e) => rep.problems.push(e.to_string()),
                        }
                    }
                }
                Err(e) => rep.problems.push(e.to_string()),
            }
            if r.kind != CertKind::Ca {
                names.insert(r.name.clone());
            }
        }
        // Live-name uniqueness.
        let now = store::now();
        let mut live = std::collections::BTreeMap::<&str, u32>::new();
        for r in all
            .iter()
            .filter(|r| r.kind != CertKind::Ca && r.state == CertState::Valid && r.not_after > now)
        {
            *live.entry(r.name.as_str()).or_default() += 1;
        }
        for (n, c) in live {
            if c > 1 {
                rep.problems
                    .push(format!("{n}: {c} valid certificates with the same name"));
            }
        }
        if let Err(e) = self.revoked_set(keys) {
            rep.problems.push(e.to_string());
        }
        rep.problems.extend(rep_problems);
        let log = self.audit_log()?;
        rep.audit_entries = log.len() as u64;
        // Every certificate the audit log says was created must still be in the store: a
        // deleted row would be a certificate the VPN trusts and nobody can revoke.
        let serials: std::collections::HashSet<String> =
            all.iter().map(|r| r.serial.hex()).collect();
        for e in &log {
            if matches!(e.action.as_str(), "issue" | "sign-req" | "renew" | "import")
                && !e.serial.is_empty()
                && !serials.contains(&e.serial)
            {
                rep.problems.push(format!(
                    "audit entry {} ({} {} serial {}) names a certificate that is no longer in the store (deleted outside vpnca)",
                    e.seq, e.action, e.name, e.serial
                ));
            }
        }
        rep.problems.extend(self.check_audit_chain()?);
        rep.format = self.format();
        rep.state_head = self.state_head()?;
        // Format 2: the whole state, re-derived from the tables, against the trusted head.
        for p in self.state_problems()? {
            if !rep.problems.contains(&p) {
                rep.problems.push(p);
            }
        }
        rep.rollback = self.rollback_problems(ca_der.as_deref())?;
        rep.problems.extend(rep.rollback.iter().cloned());
        let (outside_problems, outside_warnings) = self.outside_checkpoint_report()?;
        rep.problems.extend(outside_problems);
        rep.warnings.extend(outside_warnings);
        let live_names = self.live_names()?;
        rep.warnings.extend(
            look_alike_pairs(live_names.iter().map(String::as_str))
                .into_iter()
                .map(|(_, _, m)| m),
        );
        if let (Some(crl), Some(_)) = (self.latest_crl()?, &ca_cert)
            && let Err(why) = self.prove_crl(&crl, true)
        {
            rep.problems.push(why);
        }
        if let Some(d) = self.crl_deferred()? {
            // No integrity problem: `status` reports it (exit 1) until a CRL lists them.
            rep.warnings.push(format!(
                "the CRL was deferred: the revocation of serial {} is recorded but no CRL lists it yet ({}); `vpnca status` reports it until `vpnca crl` signs one",
                d.serials.join(", "),
                d.reason.as_deref().unwrap_or("not signed yet")
            ));
        }
        if rep.problems.is_empty() {
            for p in self.sync_global_mirrors()? {
                rep.repaired.push(p.display().to_string());
            }
            for n in names {
                if self.sync_name_mirror(&n)? {
                    rep.repaired
                        .push(self.issued_path(&n).display().to_string());
                }
            }
            // Temporary files of a mirror rewrite that a kill interrupted.
            let age = std::time::Duration::from_secs(600);
            for dir in [self.dir().to_path_buf(), self.dir().join("issued")] {
                for p in crate::fsutil::remove_stale_temps(&dir, age) {
                    rep.repaired.push(p.display().to_string());
                }
            }
        }
        Ok(rep)
    }

    /// Refuses to go on when the record has been tampered with (used before exports).
    pub(crate) fn check_record(&self, rec: &CertRecord) -> Result<()> {
        let raw = self.raw(&rec.serial)?;
        store::check_record_mac(self.keys()?, &raw).map_err(|e| match e {
            Error::Tampered { what } => Error::Tampered { what },
            e => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::crl_advice;
    use crate::cert::RevocationReason;
    use crate::{
        CertKind, CrlOptions, IssueRequest, KdfParams, KeyAlgorithm, Passphrase, Store, Validity,
    };

    /// A revocation the latest CRL does not list is found by its serial, however close its
    /// date is to the CRL's, and a new CRL clears it. vpnca writes the CRL in the revocation's
    /// own transaction, so the revocation is recorded here without one, as an edited store or
    /// one written by an older version could hold it.
    ///
    /// Fails when: `crl_serials` reads no serial from the CRL (the fresh CRL then still
    /// "misses" the revocation), or when the revoked set is not compared at all (the first
    /// check then finds nothing).
    #[test]
    fn a_revocation_missing_from_the_crl_is_found_by_serial() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pass = Passphrase::new("unit-test-passphrase".into());
        let kdf = KdfParams {
            m_kib: 8 * 1024,
            t: 1,
            p: 1,
        };
        let store = Store::init(&dir.path().join("pki"), &pass, kdf).expect("init");
        store
            .create_root_ca("Unit CA", KeyAlgorithm::P256, Validity::Default)
            .expect("ca");
        let mut bob = store
            .issue(&IssueRequest {
                algorithm: KeyAlgorithm::P256,
                ..IssueRequest::new("bob", CertKind::Client)
            })
            .expect("bob");
        let opts = CrlOptions::from_store(&store).expect("policy");
        store.generate_crl(&opts).expect("crl");
        assert!(store.crl_missing_revocations().expect("check").is_none());
        let t = crate::store::now();
        store
            .write(|tx, keys| {
                crate::ca::mark_revoked(
                    tx,
                    keys,
                    &mut bob,
                    RevocationReason::KeyCompromise,
                    t,
                    None,
                )
            })
            .expect("revoke without a CRL");
        let stale = store
            .crl_missing_revocations()
            .expect("check")
            .expect("the CRL misses bob");
        assert_eq!(stale.missing, [bob.serial.hex()]);
        assert_eq!(stale.last_revoked_at, Some(t));
        let report = store.status(30).expect("status");
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.subject == "crl" && f.problem == "stale"),
            "{:?}",
            report.findings
        );
        store.generate_crl(&opts).expect("new crl");
        assert!(store.crl_missing_revocations().expect("check").is_none());
    }

    /// `status` advises, for a CRL, only a command that helps: none when the CA has expired
    /// (it signs no CRL) or when the CRL already ends with a CA that ends within the horizon;
    /// `vpnca crl` with a reminder of the CA's end when the CA ends within the horizon; `--days`
    /// when the stored policy is itself within it; nothing special otherwise. The CLI tests
    /// (tests/advice.rs) cover the cases a real store can reach; an expired CA is this one's.
    ///
    /// Fails when: the expired-CA case is left out (a plain `vpnca crl` is then advised, which
    /// fails on an expired CA), or when the horizon test is dropped for a CRL at the CA's end.
    #[test]
    fn crl_advice_names_only_a_command_that_helps() {
        let now = crate::store::now();
        let day = |n: i64| now + time::Duration::days(n);
        let advice = |ca: Option<time::OffsetDateTime>, policy, at_ca_end| {
            crl_advice(now, 30, ca, policy, at_ca_end)
        };
        let expired = advice(Some(day(-1)), 3650, true).expect("advice");
        assert!(
            expired.starts_with("`vpnca crl` cannot help: the CA expired on")
                && expired.contains("vpnca cannot renew a CA"),
            "{expired}"
        );
        let at_end = advice(Some(day(10)), 3650, true).expect("advice");
        assert!(
            at_end.starts_with("`vpnca crl` cannot help: that is the CA's own notAfter"),
            "{at_end}"
        );
        let before_end = advice(Some(day(10)), 3650, false).expect("advice");
        assert!(
            before_end.starts_with("run `vpnca crl` and upload it; but no CRL can last past"),
            "{before_end}"
        );
        let short = advice(Some(day(3000)), 7, false).expect("advice");
        assert!(
            short.starts_with("run `vpnca crl --days 3650` and upload it"),
            "{short}"
        );
        assert_eq!(advice(Some(day(3000)), 3650, false), None);
        assert_eq!(advice(Some(day(3000)), 3650, true), None);
        assert_eq!(advice(None, 7, false), None);
    }
}
