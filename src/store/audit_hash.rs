//! The audit log's public hash chain: what lets `vpnca log` check the log without the
//! passphrase.
//!
//! Each audit entry's MAC needs the store key, so a reader without the passphrase cannot check
//! an entry. The store therefore also keeps a running SHA-256 over the log, the setting
//! [`AUDIT_HASH`] = `SEQ:HEX` (an item of the authenticated state, so the signed state head
//! vouches for it): `h(0)` is 32 zero bytes, and `h(n)` = SHA-256 over the length-prefixed
//! `vpnca audit hash v1`, `h(n-1)`, entry `n`'s MAC'd fields and its MAC. Every audit entry
//! extends it in its own transaction. A reader checks the signed head, proves the setting
//! against it, and recomputes the chain over the entries: one edited, added or removed entry,
//! and the log is refused.
//!
//! A store made before this version has no such setting: its first write computes it, after
//! checking every entry's MAC (once, O(entries)); until then `log` says it shows the log
//! unverified.

use super::crypto;
use super::engine::Engine;
use super::{AuditEntry, Store, Tx, audit_entries_from, audit_fields, meta_get, meta_set, state};
use crate::{Error, Result};

/// The setting that holds the running hash (`SEQ:HEX`).
pub(crate) const AUDIT_HASH: &str = "audit_hash";

/// One step of the chain: `h(n)` from `h(n-1)`, the MAC before entry `n` and entry `n`.
pub(crate) fn step(prev_hash: &[u8], prev_mac: &[u8], e: &AuditEntry) -> Vec<u8> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let head: [&[u8]; 2] = [b"vpnca audit hash v1", prev_hash];
    let fields = audit_fields(prev_mac, e);
    for f in head
        .into_iter()
        .chain(fields.iter().map(Vec::as_slice))
        .chain(std::iter::once(e.mac.as_slice()))
    {
        ctx.update(&(f.len() as u64).to_be_bytes());
        ctx.update(f);
    }
    ctx.finish().as_ref().to_vec()
}

/// The chain over `entries` (the whole log, in order): `None` when they do not run 1, 2, 3, …
fn over(entries: &[AuditEntry]) -> Option<(i64, Vec<u8>)> {
    let mut hash = vec![0u8; 32];
    let mut prev_mac: &[u8] = &[];
    for (i, e) in entries.iter().enumerate() {
        if e.seq != i as i64 + 1 {
            return None;
        }
        hash = step(&hash, prev_mac, e);
        prev_mac = &e.mac;
    }
    Some((entries.len() as i64, hash))
}

fn text(seq: i64, hash: &[u8]) -> String {
    format!("{seq}:{}", crypto::hex(hash))
}

fn parse(v: &str) -> Option<(i64, Vec<u8>)> {
    let (seq, hash) = v.split_once(':')?;
    Some((
        seq.parse().ok()?,
        crypto::unhex(hash).filter(|h| h.len() == 32)?,
    ))
}

/// Extends the chain by entry `e` (just appended after `prev_mac`, inside `tx`) when the store
/// keeps one; the setting is proven before it changes ([`meta_set`] touches it).
pub(crate) fn extend(tx: &Tx<'_>, prev_mac: &[u8], e: &AuditEntry) -> Result<()> {
    let Some(v) = meta_get(tx.engine(), AUDIT_HASH)? else {
        return Ok(());
    };
    let (seq, hash) =
        parse(&v)
            .filter(|(s, _)| *s == e.seq - 1)
            .ok_or_else(|| {
                Error::Tampered {
            what: "the audit log's hash chain does not end at its last entry (edited outside vpnca)"
                .into(),
        }
            })?;
    debug_assert_eq!(seq, e.seq - 1);
    meta_set(tx, AUDIT_HASH, &text(e.seq, &step(&hash, prev_mac, e)))
}

/// Starts the chain over the whole log when the store has none (a store from before this
/// version, the upgrade, `init`), inside `tx`. The caller vouches for the entries: their MACs
/// were checked. The setting's absence is proven first ([`meta_set`] touches it), so a row
/// planted by someone else stops the write.
pub(crate) fn start(tx: &Tx<'_>) -> Result<()> {
    if meta_get(tx.engine(), AUDIT_HASH)?.is_some() {
        return Ok(());
    }
    let entries = audit_entries_from(tx.engine(), 0)?;
    let (seq, hash) = over(&entries).ok_or_else(|| Error::Tampered {
        what: "the audit log has a gap (edited outside vpnca)".into(),
    })?;
    meta_set(tx, AUDIT_HASH, &text(seq, &hash))
}

/// `verify`'s check of the chain against the entries (the MACs are checked elsewhere).
pub(crate) fn problems(db: &dyn Engine) -> Result<Vec<String>> {
    let Some(v) = meta_get(db, AUDIT_HASH)? else {
        return Ok(Vec::new());
    };
    let entries = audit_entries_from(db, 0)?;
    Ok(match (parse(&v), over(&entries)) {
        (Some(stored), Some(now)) if stored == now => Vec::new(),
        _ => vec!["audit log: the public hash chain (`audit_hash`) does not match the entries: an entry was edited, added or removed outside vpnca".into()],
    })
}

/// How `vpnca log` could check the log it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditCheck {
    /// Every entry is the one the signed state head vouches for.
    Verified,
    /// Shown as stored: the reason (no state-signing key yet, or a store that has not been
    /// written since this version).
    Unverified(String),
}

impl Store {
    /// The audit log, oldest first, checked without the passphrase against the signed state
    /// head (see the module documentation): [`Error::Tampered`] when an entry was edited,
    /// added or removed, or the database is older than its checkpoint.
    pub fn audit_log_checked(&self) -> Result<(Vec<AuditEntry>, AuditCheck)> {
        let _snapshot = self.snapshot()?;
        let entries = self.audit_log()?;
        let Some(p) = self.public_head()? else {
            return Ok((
                entries,
                AuditCheck::Unverified(
                    "the store has no state-signing key yet (its next write, or `vpnca verify`, makes one)".into(),
                ),
            ));
        };
        // Proven: the row holds the value the signed head's tree does.
        let proven = state::prove(&self.conn, &p.head.root, &state::Item::Setting(AUDIT_HASH))?;
        let Some(v) = proven.and(meta_get(&self.conn, AUDIT_HASH)?) else {
            return Ok((
                entries,
                AuditCheck::Unverified(
                    "the store has not been written since vpnca began keeping the log's hash chain (its next change starts it)".into(),
                ),
            ));
        };
        let bad = || {
            Error::Tampered {
            what: "the audit log is not the one the store's signed state head vouches for: an entry was edited, added or removed outside vpnca (`vpnca verify` with the passphrase names it)".into(),
        }
        };
        let stored = parse(&v).ok_or_else(bad)?;
        if stored.0 != p.head.seq || over(&entries) != Some(stored) {
            return Err(bad());
        }
        Ok((entries, AuditCheck::Verified))
    }
}
