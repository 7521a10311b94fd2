//! `passwd --rekey`: a new data key for the whole store, in one transaction.
//!
//! `passwd` only re-wraps the data key, so an old copy of the header still opens the store
//! with the old passphrase, and whoever once unwrapped the data key keeps it. A rekey draws a
//! new data key and moves everything that depends on it over, all in one write transaction
//! (all of it commits, or none): every private key blob re-encrypted, every record MAC, the
//! revoked set's tokens and MAC, the ACM import MACs, the state-signing key (a new one,
//! certified by the CA), the whole state tree and its head, and the header.
//!
//! The audit log is **not** rewritten: its entries, their MACs and the checkpoints that name
//! them stay valid (the store ID, the syslog copies). The `rekey` entry, the first one MAC'd
//! under the new key, chains on the last old entry's MAC and records the SHA-256 of every
//! entry before it ([`log_digest`]): from then on those entries are checked against that
//! digest instead of their MACs, which nobody holding only the new key can recompute — and
//! nobody holding only the old key can change without breaking the digest.

use serde::Serialize;
use zeroize::Zeroizing;

use super::crypto::{self, KdfParams, Keys};
use super::engine::{CertQuery, MetaField};
use super::{
    AuditEntry, Header, Store, Tx, audit_append, audit_fields, check_record_mac, key_aad, meta_get,
    meta_set, query_raw_records, record_mac, revocation_token, state,
};
use crate::secret::Passphrase;
use crate::{Error, Result};

/// What a rekey did.
#[derive(Debug, Clone, Serialize)]
pub struct RekeyReport {
    /// Private keys re-encrypted under the new data key (the CA's included, and a pending
    /// sub-CA's).
    pub keys_reencrypted: usize,
    /// Certificate records whose MAC was redone.
    pub records: usize,
    /// The audit entries before the `rekey` entry, now vouched for by its digest.
    pub audit_entries: i64,
    /// Whether a new state-signing key was certified by the CA.
    pub state_key_certified: bool,
}

/// The action of the audit entry a rekey writes.
pub(crate) const ACTION: &str = "rekey";

/// SHA-256 over `entries` (consecutive, from the first one of the log): each entry's MAC'd
/// fields ([`audit_fields`], chained on the MAC before it as stored) and its MAC, length-
/// prefixed. What a `rekey` entry records of the log before it.
pub(crate) fn log_digest(entries: &[AuditEntry]) -> Vec<u8> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut prev: &[u8] = &[];
    for e in entries {
        for f in audit_fields(prev, e).iter().chain(std::iter::once(&e.mac)) {
            ctx.update(&(f.len() as u64).to_be_bytes());
            ctx.update(f);
        }
        prev = &e.mac;
    }
    ctx.finish().as_ref().to_vec()
}

/// Checks that the entries before a `rekey` entry (`before`: all of them, from the first) are
/// the ones it recorded; `None` when they are, else the problem, for people.
pub(crate) fn check_before(rekey: &AuditEntry, before: &[AuditEntry]) -> Option<String> {
    let recorded = rekey.detail["log_sha256"].as_str().unwrap_or_default();
    let count = rekey.detail["entries"].as_i64();
    if count == Some(before.len() as i64) && recorded == crypto::hex(&log_digest(before)) {
        None
    } else {
        Some(format!(
            "audit log: the entries before entry {} (rekey) are not the ones it recorded ({} recorded, {} found): an entry was edited, added or removed outside vpnca",
            rekey.seq,
            count.map_or("?".into(), |c| c.to_string()),
            before.len()
        ))
    }
}

impl Store {
    /// A new passphrase **and** a new data key (`vpnca passwd --rekey`): everything that the
    /// old data key protected or authenticated is moved to the new one in one transaction
    /// (see the module documentation), so that neither the old passphrase with an old copy of
    /// the header nor a copy of the old data key opens or vouches for the store any more.
    ///
    /// Refuses ([`Error::Tampered`], nothing written) a store that does not check out intact
    /// (`vpnca verify`): re-authenticating tampered tables under a new key would vouch for
    /// them. A store with a state-signing key whose CA cannot sign any more (expired, or a
    /// sub-CA still pending) is refused too ([`Error::Input`]): its readers could not verify
    /// the new key.
    pub fn rekey(&mut self, new: &Passphrase, kdf: Option<KdfParams>) -> Result<RekeyReport> {
        new.check_new()?;
        // A format-1 store is upgraded first (its own, ordinary write); one that is not
        // intact stays format 1 and is refused below.
        if self.format.get() < 2 {
            self.write(|_, _| Ok(()))?;
            if self.format.get() < 2 {
                return Err(Error::Tampered {
                    what: "the store does not check out intact, so it cannot be re-keyed: `vpnca verify` names the problem (nothing was changed)".into(),
                });
            }
        }
        let kdf = match kdf {
            Some(k) => k,
            None => self.header()?.kdf,
        };
        let new_keys = Keys::from_data_key(Zeroizing::new(crypto::random::<32>()?));
        let header = Header::new_wrapped(new, kdf, &new_keys.data_key)?;
        let header = serde_json::to_string(&header).map_err(|e| Error::Crypto(e.to_string()))?;
        // The new state-signing key's certificate, signed before the lock is taken (a KMS CA
        // signs remotely); the CA is checked again inside the transaction.
        let had_state_key = self.meta(state::STATE_KEY_CERT)?.is_some();
        let ca = if self.has_ca()? {
            Some(self.ca()?)
        } else {
            None
        };
        let state_cert = match &ca {
            Some(ca) if ca.not_after > super::now() && self.pending_ca()?.is_none() => {
                let signer = self.signer()?;
                Some(crate::ca::certify_state_key(
                    &signer,
                    &new_keys.state_public_key()?,
                )?)
            }
            _ if had_state_key => {
                return Err(Error::input(
                    "passwd --rekey",
                    "the store's CA cannot sign any more (it has expired, or a sub-CA is still pending), so it cannot certify a new state-signing key and readers without the passphrase could no longer verify the store; nothing was changed",
                ));
            }
            _ => None,
        };

        let old = self.keys()?;
        let tx = Tx::begin(&self.conn, &self.write_state, "locking the store")?;
        self.check_checkpoint(tx.engine())?;
        let head = state::trusted_head(tx.engine(), old)?;
        let mut problems = state::check_all(tx.engine(), old)?;
        problems.extend(self.check_audit_chain()?);
        problems.extend(self.parent_chain().err().map(|e| e.to_string()));
        #[cfg(feature = "aws")]
        problems.extend(self.acm_imports().err().map(|e| e.to_string()));
        #[cfg(not(feature = "aws"))]
        if tx.engine().has_table("aws_imports")? && tx.engine().aws_import_count()? > 0 {
            return Err(Error::input(
                "passwd --rekey",
                "this store has ACM import records, whose MACs only a vpnca built with AWS support (feature `aws`) can redo: re-key with such a build; nothing was changed",
            ));
        }
        if let Err(e) = super::check_revoked_set(tx.engine(), old) {
            problems.push(e.to_string());
        }
        let raws = query_raw_records(tx.engine(), CertQuery::All)?;
        for raw in &raws {
            if let Err(e) = check_record_mac(old, raw) {
                problems.push(e.to_string());
            }
        }
        if let Some(first) = problems.first() {
            return Err(Error::Tampered {
                what: format!(
                    "{first} — the store does not check out intact, so it cannot be re-keyed (`vpnca verify` lists every problem; nothing was changed)"
                ),
            });
        }
        if self.ca().ok().map(|c| c.serial) != ca.map(|c| c.serial) {
            return Err(Error::input(
                "passwd --rekey",
                "the store's CA changed while the rekey was being prepared; run it again",
            ));
        }
        let start_seq = head.seq;
        let entries = super::audit_entries_from(tx.engine(), 0)?;

        // Every private key and every record MAC.
        let mut keys_reencrypted = 0;
        for raw in &raws {
            let blob = match &raw.key_blob {
                Some(blob) => {
                    let aad = key_aad(&raw.rec.serial, &raw.rec.der);
                    let plain = old.open(&aad, blob).ok_or_else(|| Error::Tampered {
                        what: format!(
                            "the private key of {} (serial {}) does not open under the store key",
                            crate::shell::printable(&raw.rec.name),
                            raw.rec.serial
                        ),
                    })?;
                    keys_reencrypted += 1;
                    Some(new_keys.seal(&aad, &plain)?)
                }
                None => None,
            };
            let mac = record_mac(&new_keys, &raw.rec, blob.as_deref());
            tx.engine().cert_rekey(raw.rec.id, blob.as_deref(), &mac)?;
        }
        // A pending sub-CA's key.
        if let Some((_, blob)) = self.pending_ca()? {
            let aad = crate::ca::PENDING_CA_AAD;
            let plain = old.open(aad, &blob).ok_or_else(|| Error::Tampered {
                what: "the pending sub-CA's key does not open under the store key".into(),
            })?;
            keys_reencrypted += 1;
            tx.engine().pending_ca_rekey(&new_keys.seal(aad, &plain)?)?;
        }
        // The revoked set: the same serials, new tokens.
        let revoked: Vec<_> = raws
            .iter()
            .filter(|r| r.rec.state == crate::cert::CertState::Revoked)
            .collect();
        if !revoked.is_empty() {
            let mut digest = vec![0u8; 32];
            for r in &revoked {
                for (d, t) in digest
                    .iter_mut()
                    .zip(revocation_token(&new_keys, &r.rec.serial))
                {
                    *d ^= t;
                }
            }
            let count = revoked.len().to_string();
            let mac = new_keys.mac(&[b"revset-v1", &digest, count.as_bytes()]);
            meta_set(&tx, "revocation_digest", &crypto::hex(&digest))?;
            meta_set(&tx, "revoked_count", &count)?;
            meta_set(&tx, "revocation_mac", &crypto::hex(&mac))?;
        }
        // The ACM import records.
        #[cfg(feature = "aws")]
        for imp in self.acm_imports()? {
            tx.engine()
                .aws_import_remac(&imp.arn, &super::aws::mac_of(&new_keys, &imp))?;
        }
        tx.engine()
            .meta_update(MetaField::Header, &header, "re-keying the store header")?;
        if let Some(der) = &state_cert {
            meta_set(&tx, state::STATE_KEY_CERT, &crypto::hex(der))?;
        }
        let old_audit_head = meta_get(tx.engine(), "audit_head")?.unwrap_or_default();
        audit_append(
            &tx,
            &new_keys,
            ACTION,
            "",
            "",
            &serde_json::json!({
                "kdf": kdf,
                "entries": entries.len(),
                "log_sha256": crypto::hex(&log_digest(&entries)),
                "old_audit_head": old_audit_head,
                "old_state_head": head.text(),
                "keys_reencrypted": keys_reencrypted,
                "state_key_certificate_sha256": state_cert.as_deref().map(|d| crypto::hex(&crypto::sha256(d))),
            }),
        )?;
        self.record_outside_checkpoint(&tx, &new_keys)?;
        // The whole tree again: the key blobs' hashes, the revoked set, the import MACs and
        // the state-signing key all changed; the head is MAC'd and signed under the new key.
        state::build(&tx, &new_keys)?;
        tx.commit()?;
        self.keys = Some(new_keys);
        self.advance_checkpoint();
        self.forward_audit(start_seq);
        Ok(RekeyReport {
            keys_reencrypted,
            records: raws.len(),
            audit_entries: entries.len() as i64,
            state_key_certified: state_cert.is_some(),
        })
    }
}
