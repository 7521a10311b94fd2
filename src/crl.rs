//! Certificate revocation lists.
//!
//! A v2 CRL (RFC 5280 §5) signed by the store's CA, with the authority key identifier of the
//! CA's own subjectKeyIdentifier, an incrementing CRL number, each entry's revocation date and
//! reason code. PEM, as AWS Client VPN and OpenVPN's `crl-verify` read it.

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::ca::Signer;
use crate::cert::{CertKind, RevocationReason};
use crate::serial::Serial;
use crate::store::crypto::Keys;
use crate::store::{self, Store};
use crate::{Error, Result};

/// AWS Client VPN's limit on CRL entries.
pub const MAX_CRL_ENTRIES: usize = 20_000;

/// Default CRL validity in days. See docs/defaults.md: the CRL is pushed to the endpoint (not
/// fetched), a new one is written at every revocation, and an expired CRL locks every user
/// out; so the default is long, and `vpnca status` warns well before it runs out.
pub const DEFAULT_CRL_DAYS: u32 = 3650;

/// A CRL that expires within this many days is about to lock users out: `vpnca status` reports
/// it as `expiring` (its default `--warn-days`), and `vpnca clientvpn push-crl` makes a new one
/// before an upload. A CRL valid for less than this is warned about when it is written.
pub const MIN_DAYS_LEFT: u32 = 30;

/// How to build a CRL.
#[derive(Debug, Clone, Copy)]
pub struct CrlOptions {
    /// Days until nextUpdate.
    pub days: u32,
    /// Leave out revoked certificates that have expired anyway.
    pub omit_expired: bool,
}

impl CrlOptions {
    /// The store's CRL policy: the days and omit-expired setting of the last `vpnca crl`.
    pub fn from_store(store: &Store) -> Result<CrlOptions> {
        let days = store
            .setting("crl_days")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_CRL_DAYS);
        let omit_expired = store.setting("crl_omit_expired")?.as_deref() == Some("1");
        Ok(CrlOptions { days, omit_expired })
    }
}

/// A CRL that was written.
#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    /// CRL number.
    pub number: u64,
    /// thisUpdate.
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// Number of revoked certificates listed.
    pub entries: usize,
    /// PEM.
    #[serde(skip)]
    pub pem: String,
    /// Why this CRL needs a person's eye (see [`crl_warnings`]); left out of JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What to say about a CRL valid until `next_update`, written at `now` with a policy of `days`
/// by a CA that expires at `ca_not_after`: nothing when it is valid for at least
/// [`MIN_DAYS_LEFT`] days. Otherwise the reason: its nextUpdate was cut to the CA's notAfter
/// (then no `vpnca crl` can help: only a new CA), or the policy itself is that short.
pub fn crl_warnings(
    number: u64,
    now: OffsetDateTime,
    next_update: OffsetDateTime,
    days: u32,
    ca_not_after: OffsetDateTime,
) -> Vec<String> {
    if next_update - now >= Duration::days(i64::from(MIN_DAYS_LEFT)) {
        return Vec::new();
    }
    let w = if next_update >= ca_not_after && now + Duration::days(i64::from(days)) > next_update {
        format!(
            "CRL #{number}'s nextUpdate is {}, the CA's own notAfter, not {days} days from now: a CRL cannot outlive the CA that signs it. After {} no user can connect, and `vpnca crl` cannot move that date; {}. Until then `vpnca status` reports the CRL as expiring",
            crate::fmt_time(next_update),
            crate::fmt_time(next_update),
            crate::check::replace_ca(Some(next_update)),
        )
    } else {
        format!(
            "CRL #{number} is valid {days} day(s), less than the {MIN_DAYS_LEFT} days within which `vpnca status` reports a CRL as expiring: status reports it from now on (`vpnca crl --days {DEFAULT_CRL_DAYS}` sets a longer policy)"
        )
    };
    #[cfg(feature = "aws")]
    let w = format!(
        "{w}; and every `vpnca clientvpn push-crl` makes a new CRL before it uploads, since it does not upload a CRL that expires within {MIN_DAYS_LEFT} days"
    );
    vec![w]
}

/// A CRL numbered and filled from one state of the store, not yet signed ([`plan_in_tx`]).
pub(crate) struct CrlPlan {
    params: CertificateRevocationListParams,
    number: i64,
    count: usize,
    warnings: Vec<String>,
}

impl CrlPlan {
    /// The CRL number it will carry.
    pub(crate) fn number(&self) -> u64 {
        self.number as u64
    }
}

/// Builds, signs and records a new CRL inside a write transaction. Every revoked record's MAC
/// and the revoked-set checksum are checked first: a tampered store never yields a CRL. (A CA
/// whose key is in KMS signs outside the lock instead: [`Store::sign_crl_outside_lock`].)
pub(crate) fn generate_in_tx(
    store: &Store,
    tx: &store::Tx<'_>,
    keys: &Keys,
    signer: &Signer,
    opts: &CrlOptions,
) -> Result<CrlInfo> {
    let plan = plan_in_tx(store, tx, keys, signer, opts)?;
    let der = sign_plan(signer, &plan)?;
    record_in_tx(tx, keys, plan, der)
}

/// Checks the store and prepares the next CRL (its number, thisUpdate, nextUpdate and
/// entries) from the state `tx` reads: a write transaction, or a read-only snapshot
/// ([`Store::read_tx`]) whose CRL is committed later only if the state has not moved.
pub(crate) fn plan_in_tx(
    store: &Store,
    tx: &store::Tx<'_>,
    keys: &Keys,
    signer: &Signer,
    opts: &CrlOptions,
) -> Result<CrlPlan> {
    if opts.days == 0 || opts.days > crate::profile::MAX_DAYS {
        return Err(Error::input(
            "--days",
            format!(
                "{} is out of range 1..={}",
                opts.days,
                crate::profile::MAX_DAYS
            ),
        ));
    }
    let revoked = tx.revoked_set(keys)?;
    let now = store::now();
    // thisUpdate is back-dated like notBefore: a VPN server whose clock is a little behind
    // would otherwise reject a "not yet valid" CRL and with it every client. An entry's
    // revocationDate is then never later than thisUpdate (a CRL cannot list a revocation made
    // after it was issued): a revocation of the last 5 minutes is dated thisUpdate. The store
    // keeps the true time (`revoked_at`). See docs/defaults.md.
    let this_update = now - crate::ca::BACKDATE;
    let mut entries: Vec<RevokedCertParams> = revoked
        .iter()
        .map(|r| &r.rec)
        .filter(|r| r.kind != CertKind::Ca)
        .filter(|r| !(opts.omit_expired && r.not_after <= now))
        .map(|r| RevokedCertParams {
            serial_number: SerialNumber::from_slice(r.serial.as_bytes()),
            revocation_time: r.revoked_at.unwrap_or(now).min(this_update),
            reason_code: r.reason.and_then(RevocationReason::to_rcgen),
            invalidity_date: None,
        })
        .collect();
    if entries.len() > MAX_CRL_ENTRIES {
        return Err(Error::CrlTooLarge {
            count: entries.len(),
            limit: MAX_CRL_ENTRIES,
        });
    }
    entries.sort_by(|a, b| a.serial_number.as_ref().cmp(b.serial_number.as_ref()));
    check_keeps_published(store, tx, signer, &revoked)?;
    let last = tx.max_crl_number()?;
    let floor: i64 = store
        .setting("crl_number_floor")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let number = last
        .max(floor)
        .max(0)
        .checked_add(1)
        .ok_or_else(|| Error::Tampered {
            what: format!("the CRL number {} cannot be followed", last.max(floor)),
        })?;
    // Never past the CA's own notAfter: a CRL outliving its signer is never usable, and a
    // nextUpdate beyond it would promise coverage that cannot exist.
    let next_update = (now + Duration::days(i64::from(opts.days)))
        .min(signer.rec.not_after)
        .min(time::macros::datetime!(9999-12-31 0:00 UTC));
    if next_update <= this_update {
        return Err(Error::input(
            "CRL validity",
            format!(
                "the CA expired at {}; a CRL it signs would never be valid (create a new CA)",
                crate::fmt_time(signer.rec.not_after)
            ),
        ));
    }
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: entries,
        key_identifier_method: KeyIdMethod::PreSpecified(signer.ski.clone()),
    };
    let count = params.revoked_certs.len();
    let warnings = crl_warnings(
        number as u64,
        now,
        next_update,
        opts.days,
        signer.rec.not_after,
    );
    Ok(CrlPlan {
        params,
        number,
        count,
        warnings,
    })
}

/// Signs a prepared CRL (one KMS `Sign` for a CA key in KMS) and checks the signature with the
/// CA certificate's public key before anything stores or publishes it. Touches no store.
pub(crate) fn sign_plan(signer: &Signer, plan: &CrlPlan) -> Result<Vec<u8>> {
    let crl = plan
        .params
        .signed_by(&signer.issuer)
        .map_err(|e| signer.explain(e))?;
    let der = crl.der().to_vec();
    verify_signature(&der, &signer.rec.der)?;
    Ok(der)
}

/// Records a signed CRL with its audit entry inside a write transaction, and forgets the
/// deferred-CRL record ([`CrlDeferred`]): the new CRL lists the whole revoked set the plan
/// was made from, which the caller has made sure is the state `tx` holds.
pub(crate) fn record_in_tx(
    tx: &store::Tx<'_>,
    keys: &Keys,
    plan: CrlPlan,
    der: Vec<u8>,
) -> Result<CrlInfo> {
    let CrlPlan {
        params,
        number,
        count,
        warnings,
    } = plan;
    let (this_update, next_update) = (params.this_update, params.next_update);
    tx.insert_crl(number, this_update, next_update, count, &der)?;
    let deferred = tx
        .crl_deferred()?
        .map(|t| CrlDeferred::parse(&t))
        .transpose()?;
    let mut detail = serde_json::json!({"number": number, "entries": count, "next_update": crate::fmt_time(next_update)});
    if let (Some(d), serde_json::Value::Object(m)) = (&deferred, &mut detail) {
        // The revocations whose CRL was deferred are listed from now on.
        m.insert("covers_deferred".into(), d.serials.clone().into());
    }
    tx.set_crl_deferred(None)?;
    store::audit_append(tx, keys, "crl", "", "", &detail)?;
    Ok(CrlInfo {
        number: number as u64,
        this_update,
        next_update,
        entries: count,
        pem: crate::pem::encode("X509 CRL", &der),
        warnings,
    })
}

/// How many times a CRL signed outside the store's lock is prepared and signed again because
/// another command wrote meanwhile ([`Store::sign_crl_outside_lock`]) before giving up.
pub const CRL_SIGN_ATTEMPTS: u32 = 5;

/// Revocations that no CRL lists yet: recorded by a revocation of a CA whose key is in KMS
/// when its CRL could not be signed (KMS unreachable, throttled past the retries, the key
/// disabled, a signature that did not verify) or before it is signed. Part of the
/// authenticated state (setting `crl_deferred`); the next CRL recorded clears it. While it is
/// there, `vpnca status` reports each revocation (`crl` `deferred`, exit 1), and the latest
/// CRL (`crl.pem`) does not list them: `vpnca crl` signs the CRL that does.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CrlDeferred {
    /// The serials (hex) revoked that no CRL lists yet, in the order they were revoked.
    pub serials: Vec<String>,
    /// When the first of them was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Why no CRL was signed (the KMS error), `None` while the revoking command has not tried
    /// yet or was interrupted before it could say.
    pub reason: Option<String>,
}

impl CrlDeferred {
    pub(crate) fn parse(text: &str) -> Result<CrlDeferred> {
        serde_json::from_str(text).map_err(|e| Error::Tampered {
            what: format!("the record of the deferred CRL cannot be read ({e})"),
        })
    }

    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What became of the CRL of a command that revoked ([`Store::revoke_with_crl`]): signed
/// (`crl`), deferred (`deferred`: a CA key in KMS could not sign it), or neither when nothing
/// was revoked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CrlOutcome {
    /// The CRL written; `None` when it was deferred or nothing was revoked.
    pub crl: Option<CrlInfo>,
    /// Why no CRL was written, and the revocations no CRL lists yet.
    pub deferred: Option<CrlDeferred>,
}

/// Whether a revocation's CRL may wait when signing it failed so: a KMS or AWS failure (KMS
/// unreachable or throttled past the retries, the key disabled or pending deletion, a signature
/// that did not verify, no usable AWS configuration), or the store changing at each attempt.
fn crl_can_wait(e: &Error) -> bool {
    matches!(
        e,
        Error::Refused { .. }
            | Error::AwsConfig { .. }
            | Error::Aws { .. }
            | Error::Kms { .. }
            | Error::KmsBadSignature { .. }
    )
}

/// Revocations are forever: every certificate the last CRL listed must still be revoked in the
/// store (the new CRL then lists it, or leaves it out under the omit-expired policy because it
/// expired — it stays revoked either way). The last CRL is the one the audit log
/// records last (its entries from there to the head checked under the store's key), found in
/// the `crls` table under that number, signed by the CA, with that number inside.
///
/// This stops an un-revocation made by editing the file — a revoked row and the revoked-set
/// checksum put back from an older copy, newer CRL rows deleted — at the next CRL, instead of
/// signing a CRL without that user: [`Error::Tampered`], nothing written.
fn check_keeps_published(
    store: &Store,
    tx: &store::Tx<'_>,
    signer: &Signer,
    revoked: &[store::RawRecord],
) -> Result<()> {
    let Some((seq, number)) = tx.last_crl_entry()? else {
        return Ok(());
    };
    store.check_audit_tail_in(tx, seq)?;
    let bad = |what: String| Error::Tampered {
        what: format!("{what}: a revocation was undone or a CRL removed outside vpnca"),
    };
    let der = tx.crl_der(number)?.ok_or_else(|| {
        bad(format!(
            "CRL #{number}, which the audit log records, is missing from the store"
        ))
    })?;
    use x509_parser::prelude::FromDer;
    let (_, last) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
        .map_err(|e| bad(format!("CRL #{number} cannot be read ({e})")))?;
    let ca = crate::x509::parse_cert(&signer.rec.der, "the CA certificate")?;
    if last.verify_signature(ca.public_key()).is_err()
        || last.crl_number().and_then(|n| u64::try_from(n).ok()) != Some(number)
    {
        return Err(bad(format!(
            "the CRL stored as #{number} is not the CA's CRL #{number}"
        )));
    }
    let still: std::collections::HashMap<Vec<u8>, &crate::cert::CertRecord> = revoked
        .iter()
        .map(|r| (trim_zeros(r.rec.serial.as_bytes()).to_vec(), &r.rec))
        .collect();
    for entry in last.iter_revoked_certificates() {
        let serial = trim_zeros(entry.raw_serial());
        match still.get(serial) {
            Some(_) => {}
            None => {
                // Not revoked any more. (A certificate the omit-expired policy leaves out of the
                // new CRL is still revoked in the store, so this is never the policy: it is an
                // un-revocation, or a deleted record.) The name is read for the message only.
                let rec = store
                    .by_serial(&crate::serial::Serial::from_bytes(serial))
                    .ok();
                return Err(bad(format!(
                    "CRL #{number} revokes {} but the store no longer has it revoked",
                    rec.map(|r| format!("{} (serial {})", crate::shell::quote(&r.name), r.serial))
                        .unwrap_or_else(|| format!(
                            "serial {}",
                            crate::serial::Serial::from_bytes(serial)
                        ))
                )));
            }
        }
    }
    Ok(())
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

impl Store {
    /// Writes a new CRL (and `<pki>/crl.pem`). `opts` becomes the store's CRL policy, used
    /// for the CRLs that `revoke` writes automatically. A CA whose key is in KMS signs it
    /// outside the store's lock ([`Store::sign_crl_outside_lock`]).
    pub fn generate_crl(&self, opts: &CrlOptions) -> Result<CrlInfo> {
        let signer = self.signer()?;
        let set_policy = |tx: &store::Tx<'_>| -> Result<()> {
            store::meta_set(tx, "crl_days", &opts.days.to_string())?;
            store::meta_set(
                tx,
                "crl_omit_expired",
                if opts.omit_expired { "1" } else { "0" },
            )
        };
        let info = if signer.is_remote() {
            self.sign_crl_outside_lock(&signer, opts, set_policy)?
        } else {
            self.write(|tx, keys| {
                let info = generate_in_tx(self, tx, keys, &signer, opts)?;
                set_policy(tx)?;
                Ok(info)
            })?
        };
        self.sync_global_mirrors()?;
        Ok(info)
    }

    /// A new CRL signed without holding the store's write lock (a KMS `Sign`, with its
    /// throttling back-off, must not hold every other writer): prepared from a snapshot
    /// ([`plan_in_tx`] in [`Store::read_tx`]), signed and checked ([`sign_plan`]), then
    /// recorded with `also` in a write transaction only if no other write was committed since
    /// the snapshot. Otherwise the CRL just signed is dropped (it never leaves the process,
    /// and its number is not used) and the CRL is prepared and signed again, from the new
    /// state, up to [`CRL_SIGN_ATTEMPTS`] times: so a revocation committed meanwhile is in the
    /// CRL recorded, and no two CRLs ever carry one number. Then [`Error::Refused`].
    pub(crate) fn sign_crl_outside_lock(
        &self,
        signer: &Signer,
        opts: &CrlOptions,
        also: impl Fn(&store::Tx<'_>) -> Result<()>,
    ) -> Result<CrlInfo> {
        let mut number = 0;
        for _ in 0..CRL_SIGN_ATTEMPTS {
            let (plan, mark) = self
                .read_tx(|tx, keys| Ok((plan_in_tx(self, tx, keys, signer, opts)?, tx.mark()?)))?;
            number = plan.number();
            let der = sign_plan(signer, &plan)?;
            let recorded = self.write(|tx, keys| {
                if tx.moved_since(&mark)? {
                    return Ok(None);
                }
                let info = record_in_tx(tx, keys, plan, der)?;
                also(tx)?;
                Ok(Some(info))
            })?;
            if let Some(info) = recorded {
                return Ok(info);
            }
        }
        Err(Error::Refused {
            reason: format!(
                "other vpnca commands changed the store each time CRL #{number} was being signed ({CRL_SIGN_ATTEMPTS} attempts): no CRL was recorded; run the command again"
            ),
        })
    }

    /// Commits revocations, then the CRL that lists them: the one path of every command that
    /// revokes (`revoke`, `revoke --batch`, `renew --revoke-old`). `revoke` makes the command's
    /// changes in one write transaction and returns its result and the serials it revoked
    /// (none: no CRL is made); `committed` runs once they are committed (the mirror files).
    /// `signer` is [`Store::signer`]'s answer: for a CA whose key is in KMS an error that
    /// [`crl_can_wait`] does not stop the revocation (it is the reason the CRL is deferred).
    ///
    /// A local CA key signs and records the CRL in the same transaction. A CA whose key is in
    /// KMS makes no KMS call inside the lock: the revocations are committed and audited with
    /// their serials added to the deferred-CRL record ([`CrlDeferred`], part of the
    /// authenticated state), then the CRL is signed outside the lock
    /// ([`Store::sign_crl_outside_lock`]), which clears the record. When it cannot be signed
    /// (KMS unreachable, throttled past the retries, the key disabled, a signature that does
    /// not verify, the store changed at every attempt), the record keeps the serials, says why
    /// and is audited (`crl-deferred`): the outcome has no CRL and [`CrlOutcome::deferred`].
    /// Any other error after the commit is returned as is (the revocations stay recorded, the
    /// CRL deferred).
    pub(crate) fn revoke_with_crl<R>(
        &self,
        signer: Result<Signer>,
        revoke: impl FnOnce(&store::Tx<'_>, &Keys) -> Result<(R, Vec<Serial>)>,
        committed: impl FnOnce(&R) -> Result<()>,
    ) -> Result<(R, CrlOutcome)> {
        let remote = match &signer {
            Ok(s) => s.is_remote(),
            Err(_) => self.ca_kms_key()?.is_some(),
        };
        // No KMS call yet; an AWS configuration that cannot even make a client defers the CRL
        // like a KMS that cannot be reached.
        let signer = match signer {
            Err(e) if !(remote && crl_can_wait(&e)) => return Err(e),
            s => s,
        };
        let crl_opts = CrlOptions::from_store(self)?;
        if !remote {
            let signer = signer?;
            let (out, crl) = self.write(|tx, keys| {
                let (out, serials) = revoke(tx, keys)?;
                let crl = match serials.is_empty() {
                    true => None,
                    false => Some(generate_in_tx(self, tx, keys, &signer, &crl_opts)?),
                };
                Ok((out, crl))
            })?;
            committed(&out)?;
            if crl.is_some() {
                self.sync_global_mirrors()?;
            }
            return Ok((
                out,
                CrlOutcome {
                    crl,
                    deferred: None,
                },
            ));
        }
        let (out, any) = self.write(|tx, keys| {
            let (out, serials) = revoke(tx, keys)?;
            if serials.is_empty() {
                return Ok((out, false));
            }
            if let Ok(signer) = &signer {
                // What would stop the CRL whoever signs it (too many entries, an expired CA,
                // a revocation undone outside vpnca) stops the revocation too, as it does for
                // a local CA key: nothing is recorded.
                plan_in_tx(self, tx, keys, signer, &crl_opts)?;
            }
            let mut d = match tx.crl_deferred()? {
                Some(t) => CrlDeferred::parse(&t)?,
                None => CrlDeferred {
                    serials: Vec::new(),
                    since: store::now(),
                    reason: None,
                },
            };
            d.serials.extend(serials.iter().map(Serial::hex));
            d.reason = None;
            tx.set_crl_deferred(Some(&d.to_text()))?;
            Ok((out, true))
        })?;
        committed(&out)?;
        if !any {
            return Ok((out, CrlOutcome::default()));
        }
        let outcome =
            match signer.and_then(|s| self.sign_crl_outside_lock(&s, &crl_opts, |_| Ok(()))) {
                Ok(crl) => CrlOutcome {
                    crl: Some(crl),
                    deferred: None,
                },
                Err(e) if crl_can_wait(&e) => self.defer_crl(&e.to_string())?,
                Err(e) => return Err(e),
            };
        self.sync_global_mirrors()?;
        Ok((out, outcome))
    }

    /// After a revocation's CRL could not be signed (`why`): the deferred-CRL record says why,
    /// audited (`crl-deferred`). When another command signed the CRL meanwhile (no record any
    /// more), its CRL lists these revocations: that CRL is the outcome.
    fn defer_crl(&self, why: &str) -> Result<CrlOutcome> {
        let deferred = self.write(|tx, keys| {
            let Some(t) = tx.crl_deferred()? else {
                return Ok(None);
            };
            let mut d = CrlDeferred::parse(&t)?;
            d.reason = Some(why.to_string());
            tx.set_crl_deferred(Some(&d.to_text()))?;
            store::audit_append(
                tx,
                keys,
                "crl-deferred",
                "",
                "",
                &serde_json::json!({"serials": d.serials, "error": why}),
            )?;
            Ok(Some(d))
        })?;
        if let Some(d) = deferred {
            return Ok(CrlOutcome {
                crl: None,
                deferred: Some(d),
            });
        }
        let crl = self.latest_crl()?.ok_or_else(|| Error::NotFound {
            what: "a CRL".into(),
        })?;
        Ok(CrlOutcome {
            crl: Some(CrlInfo {
                number: crl.number,
                this_update: crl.this_update,
                next_update: crl.next_update,
                entries: crl.entries,
                pem: crate::pem::encode("X509 CRL", &crl.der),
                warnings: Vec::new(),
            }),
            deferred: None,
        })
    }

    /// The revocations no CRL lists yet, when a CRL was deferred ([`CrlDeferred`]), proven
    /// against the state. Works locked.
    pub fn crl_deferred(&self) -> Result<Option<CrlDeferred>> {
        self.setting(store::state::CRL_DEFERRED)?
            .map(|t| CrlDeferred::parse(&t))
            .transpose()
    }
}

/// Checks a DER CRL's signature against a CA certificate (DER).
pub fn verify_signature(crl_der: &[u8], ca_der: &[u8]) -> Result<()> {
    use x509_parser::asn1_rs::{Any, BitString, FromDer, Tag};
    use x509_parser::x509::AlgorithmIdentifier;
    let bad = |reason: String| Error::Tampered {
        what: format!("the stored CRL {reason}"),
    };
    let unreadable = |part: &str| bad(format!("cannot be read (its {part})"));
    // The signature covers the encoding of the tbsCertList: the CRL's three parts are split
    // here without decoding its entries (a whole parse of a 20,000-entry CRL costs more than
    // the check; the entries are read where they are compared with the store).
    let (rest, outer) =
        <Any as FromDer>::from_der(crl_der).map_err(|_| unreadable("outer SEQUENCE"))?;
    if !rest.is_empty() || outer.tag() != Tag::Sequence {
        return Err(unreadable("outer SEQUENCE"));
    }
    let body = outer.data;
    let (after_tbs, tbs) =
        <Any as FromDer>::from_der(body).map_err(|_| unreadable("tbsCertList"))?;
    if tbs.tag() != Tag::Sequence {
        return Err(unreadable("tbsCertList"));
    }
    let tbs_raw = &body[..body.len() - after_tbs.len()];
    let (after_alg, alg) =
        AlgorithmIdentifier::from_der(after_tbs).map_err(|_| unreadable("signatureAlgorithm"))?;
    let (end, signature) =
        <BitString as FromDer>::from_der(after_alg).map_err(|_| unreadable("signatureValue"))?;
    if !end.is_empty() {
        return Err(unreadable("end: bytes follow the signature"));
    }
    let ca = crate::x509::parse_cert(ca_der, "the CA certificate")?;
    x509_parser::verify::verify_signature(ca.public_key(), &alg, &signature, tbs_raw)
        .map_err(|_| bad("is not signed by the store's CA".into()))
}

/// The CRL number and nextUpdate of a DER CRL (for comparing what an endpoint holds).
pub fn describe(crl_der: &[u8]) -> Result<(u64, OffsetDateTime)> {
    use x509_parser::prelude::FromDer;
    let bad = |reason: String| Error::input("CRL", reason);
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der)
        .map_err(|e| bad(format!("cannot be read ({e})")))?;
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let next = crl
        .next_update()
        .map(|t| t.to_datetime())
        .ok_or_else(|| bad("has no nextUpdate".into()))?;
    Ok((number, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};

    /// A self-signed P-256 CA (its DER) and an empty CRL it signed.
    fn ca_and_crl() -> (Vec<u8>, Vec<u8>) {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&key).expect("CA");
        let issuer = Issuer::from_ca_cert_der(ca.der(), key).expect("issuer");
        let now = OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: vec![],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .expect("CRL");
        (ca.der().to_vec(), crl.der().to_vec())
    }

    /// `verify_signature` splits the CRL itself: a sound one verifies; a flipped signature
    /// byte, a truncated CRL and bytes after it are refused, each naming why.
    #[test]
    fn crl_signature_check_reads_the_three_parts() {
        let (ca, crl) = ca_and_crl();
        verify_signature(&crl, &ca).expect("the CA's own CRL");
        let mut flipped = crl.clone();
        let n = flipped.len();
        flipped[n - 3] ^= 1;
        let e = verify_signature(&flipped, &ca)
            .expect_err("flipped")
            .to_string();
        assert!(e.contains("is not signed by the store's CA"), "{e}");
        let e = verify_signature(&crl[..n - 5], &ca)
            .expect_err("truncated")
            .to_string();
        assert!(e.contains("cannot be read"), "{e}");
        let mut longer = crl.clone();
        longer.extend_from_slice(&[0, 0]);
        let e = verify_signature(&longer, &ca)
            .expect_err("trailing")
            .to_string();
        assert!(e.contains("cannot be read"), "{e}");
    }
}
