//! The checkpoint: evidence, outside the database, of how far the store has gone.
//!
//! `vpnca.db` carries its own integrity (record MACs, the chained audit log), but a whole older
//! copy of it is just as intact: putting back last month's database would silently undo every
//! revocation since. So after each commit the head of the audit log (sequence number and MAC)
//! is written to `vpnca.checkpoint` beside it. Before every write and every use of a private
//! key, the database must still contain that exact audit entry; if it ends before it, or holds
//! a different entry there, it is an older or another copy and is refused.
//!
//! The checkpoint only moves forward: it is rewritten under the database's write lock, from
//! the head read under that lock. A crash between a commit and the rewrite leaves it behind,
//! which is harmless (the next write catches up); it is never ahead of a committed database.
//! It holds no secret: the audit MAC cannot be forged without the store key, so an edited
//! checkpoint can only name an entry that exists. Replacing the database *and* the checkpoint
//! (the whole directory) is not detectable locally; see docs/security.md.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Store, crypto, meta_get};
use crate::cert::{CertRecord, CertState, RevocationReason};
use crate::crl::CrlInfo;
use crate::serial::Serial;
use crate::{Error, Result, fsutil};

/// The checkpoint file inside the store directory.
pub const CHECKPOINT_FILE: &str = "vpnca.checkpoint";

const MAGIC: &str = "vpnca-checkpoint v1";

/// An audit-log head: `(seq, mac)`.
type Head = (i64, Vec<u8>);

fn parse_head(s: &str) -> Option<Head> {
    let (seq, mac) = s.trim().split_once(':')?;
    let seq = seq.parse::<i64>().ok().filter(|s| *s > 0)?;
    let mac = crypto::unhex(mac).filter(|m| !m.is_empty())?;
    Some((seq, mac))
}

/// Reads the checkpoint: `Ok(None)` when there is none, an unreadable one is an error text.
fn read(dir: &Path) -> std::result::Result<Option<Head>, String> {
    let path = dir.join(CHECKPOINT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{} cannot be read ({e})", path.display())),
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(format!("{} is not a vpnca checkpoint", path.display()));
    }
    lines
        .find_map(|l| l.strip_prefix("audit-head "))
        .and_then(parse_head)
        .map(Some)
        .ok_or_else(|| format!("{} is damaged (no audit head)", path.display()))
}

/// The store format the checkpoint was written for (`format N`; absent before format 2).
fn read_format(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("format "))
        .and_then(|v| v.trim().parse().ok())
}

/// Compares the checkpoint with the database behind `conn`: `Some(problem)` when the database
/// is older than the checkpoint or another history.
pub(crate) fn problem(dir: &Path, conn: &Connection) -> Result<Option<String>> {
    let accept = "if you put this copy back on purpose (a restore from backup), `vpnca verify --accept-restore` accepts it and revokes again what the newer crl.pem revokes";
    // No downgrade: a format-1 database beside the checkpoint of a format-2 store is a copy
    // from before the upgrade.
    let db_format: u32 = meta_get(conn, "format")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(f) = read_format(dir).filter(|f| *f > db_format) {
        return Ok(Some(format!(
            "the database is an older copy: it is in store format {db_format}, but {CHECKPOINT_FILE} was written after the upgrade to format {f} (changes made since, revocations included, are missing); {accept}"
        )));
    }
    let (seq, mac) = match read(dir) {
        Ok(Some(h)) => h,
        Ok(None) => {
            // `init` writes the checkpoint right after the store's first entry; a kill in
            // between leaves a fresh store without one, which holds nothing to roll back.
            let head = meta_get(conn, "audit_head")?
                .as_deref()
                .and_then(parse_head)
                .map_or(0, |(s, _)| s);
            return Ok((head > 1).then(|| {
                format!(
                    "{CHECKPOINT_FILE} is missing, but the database has {head} audit entries: it was deleted (perhaps to put an older copy of the database back); {accept}"
                )
            }));
        }
        Err(e) => {
            return Ok(Some(format!(
                "{e}; if nothing else is wrong, delete it and the next change writes a new one"
            )));
        }
    };
    let head = meta_get(conn, "audit_head")?
        .as_deref()
        .and_then(parse_head)
        .map_or(0, |(s, _)| s);
    let at: Option<Vec<u8>> = conn
        .query_row("SELECT mac FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
        .optional()
        .map_err(Error::db("reading the audit log"))?;
    Ok(match at {
        Some(m) if m == mac => None,
        Some(_) => Some(format!(
            "the database is another history than the one checkpointed: its audit entry {seq} is not the one {CHECKPOINT_FILE} records (a copy of another store, or of an older copy that was then changed); {accept}"
        )),
        None => Some(format!(
            "the database is an older copy: {CHECKPOINT_FILE} records audit entry {seq}, but the database ends at entry {head} (changes made since, revocations included, are missing); {accept}"
        )),
    })
}

/// Writes the checkpoint for `head` (the `audit_head` meta value), with the store format and
/// the state head (format 2) read from `conn`.
fn write(dir: &Path, head: &str, conn: &Connection) -> Result<()> {
    let mut text = format!("{MAGIC}\naudit-head {head}\n");
    if let Some(f) = meta_get(conn, "format")?.filter(|f| f != "1") {
        text.push_str(&format!("format {f}\n"));
    }
    if let Some(h) = super::state::stored_head(conn)? {
        text.push_str(&format!("state-head {}\n", h.text()));
    }
    fsutil::write_atomic(&dir.join(CHECKPOINT_FILE), text.as_bytes(), 0o644)
}

/// What [`Store::accept_restore`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The audit entry the checkpoint recorded: the newest change known to have existed.
    pub checkpoint_seq: Option<i64>,
    /// Where the restored database's audit log ended.
    pub database_seq: i64,
    /// The number of the newer `crl.pem`, which this store's CRLs now continue above.
    pub newer_crl_number: Option<u64>,
    /// Certificates revoked again because the newer `crl.pem` lists them (revoked after the
    /// copy was made).
    pub revoked_again: Vec<CertRecord>,
    /// Serials (hex) the newer `crl.pem` revokes that this database never held: certificates
    /// issued after the copy was made. No CRL of this store can list them any more.
    pub lost_revocations: Vec<String>,
    /// Files in `issued/` holding a certificate of this CA that the database does not hold
    /// (issued after the copy was made; they stay valid until they expire).
    pub unknown_certificates: Vec<String>,
    /// The CRL written by the acceptance.
    pub crl: Option<CrlInfo>,
}

/// A CRL of this CA in `crl.pem`, newer than the database's.
struct Witness {
    /// Its CRL number.
    number: u64,
    /// The number of the database's newest CRL (0 when it has none).
    latest: u64,
    /// Its entries: serial, revocation date, reason.
    entries: Vec<(Serial, OffsetDateTime, RevocationReason)>,
}

fn reason_from_code(code: u8) -> RevocationReason {
    match code {
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        _ => RevocationReason::Unspecified,
    }
}

impl Store {
    /// `crl.pem`, when it holds a CRL signed by this CA and numbered above every CRL in the
    /// database.
    fn newer_mirror_crl(&self, ca_der: &[u8]) -> Result<Option<Witness>> {
        let latest = self.latest_crl()?.map_or(0, |c| c.number);
        let Some(blk) = std::fs::read(self.crl_path()).ok().and_then(|b| {
            crate::pem::decode_all(&b, "crl.pem")
                .ok()?
                .into_iter()
                .find(|blk| blk.label == "X509 CRL")
        }) else {
            return Ok(None);
        };
        use x509_parser::prelude::FromDer;
        let (Ok((_, crl)), Ok(ca)) = (
            x509_parser::revocation_list::CertificateRevocationList::from_der(&blk.der),
            crate::x509::parse_cert(ca_der, "the CA certificate"),
        ) else {
            return Ok(None);
        };
        if crl.verify_signature(ca.public_key()).is_err() {
            return Ok(None);
        }
        let number = crl
            .crl_number()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        if number <= latest {
            return Ok(None);
        }
        let entries = crl
            .iter_revoked_certificates()
            .map(|r| {
                (
                    Serial::from_bytes(r.raw_serial()),
                    r.revocation_date.to_datetime(),
                    r.reason_code()
                        .map_or(RevocationReason::Unspecified, |(_, c)| {
                            reason_from_code(c.0)
                        }),
                )
            })
            .collect();
        Ok(Some(Witness {
            number,
            latest,
            entries,
        }))
    }

    /// Certificate files in `issued/` signed by this CA whose serial the database lacks.
    fn unknown_issued(&self, ca_der: &[u8]) -> Result<Vec<String>> {
        let Ok(ca) = crate::x509::parse_cert(ca_der, "the CA certificate") else {
            return Ok(Vec::new());
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("issued"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let Ok(ders) = crate::pem::decode_certificates(&bytes, "issued") else {
                continue;
            };
            for der in ders {
                let Ok(c) = crate::x509::parse_cert(&der, "issued") else {
                    continue;
                };
                let serial = Serial::from_bytes(c.raw_serial());
                if crate::x509::signed_by(&c, &ca)
                    && matches!(self.by_serial(&serial), Err(Error::NotFound { .. }))
                {
                    out.push(format!("{} (serial {serial})", f.display()));
                }
            }
        }
        Ok(out)
    }

    /// Accepts a database put back from an older copy (`verify --accept-restore`), keeping
    /// what the newer copy left outside it: every certificate the newer `crl.pem` revokes is
    /// revoked again (with its date and reason), the CRL numbers continue above it, a new CRL
    /// is written, the acceptance is audited and the checkpoint is moved to the database.
    /// Returns `Ok(None)` when there is nothing to accept. Run `verify` first: this trusts the
    /// rest of the store.
    pub fn accept_restore(&self) -> Result<Option<RestoreReport>> {
        self.keys()?;
        let checkpoint_seq = read(&self.dir).ok().flatten().map(|(s, _)| s);
        let ca = self.ca().ok();
        let witness = match &ca {
            Some(ca) => self.newer_mirror_crl(&ca.der)?,
            None => None,
        };
        if problem(&self.dir, &self.conn)?.is_none() && witness.is_none() {
            return Ok(None);
        }
        let database_seq = meta_get(&self.conn, "audit_head")?
            .as_deref()
            .and_then(parse_head)
            .map_or(0, |(s, _)| s);
        let unknown = match &ca {
            Some(ca) => self.unknown_issued(&ca.der)?,
            None => Vec::new(),
        };
        self.accepting_restore.set(true);
        let result = (|| {
            let signer = ca.as_ref().map(|_| self.signer()).transpose()?;
            let crl_opts = crate::crl::CrlOptions::from_store(self)?;
            self.write(|tx, keys| {
                let (mut again, mut lost) = (Vec::new(), Vec::new());
                if let Some(w) = &witness {
                    for (serial, at, reason) in &w.entries {
                        match self.by_serial(serial) {
                            Ok(mut r) if r.state != CertState::Revoked => {
                                crate::ca::mark_revoked(
                                    tx,
                                    keys,
                                    &mut r,
                                    *reason,
                                    *at,
                                    Some("accept-restore"),
                                )?;
                                again.push(r);
                            }
                            Ok(_) => {}
                            Err(Error::NotFound { .. }) => lost.push(serial.hex()),
                            Err(e) => return Err(e),
                        }
                    }
                    let floor = self
                        .setting("crl_number_floor")?
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                        .max(w.number);
                    super::meta_set(tx, "crl_number_floor", &floor.to_string())?;
                }
                super::audit_append(
                    tx,
                    keys,
                    "accept-restore",
                    "",
                    "",
                    &serde_json::json!({
                        "checkpoint_seq": checkpoint_seq,
                        "database_seq": database_seq,
                        "newer_crl_number": witness.as_ref().map(|w| w.number),
                        "revoked_again": again.iter().map(|r| r.serial.hex()).collect::<Vec<_>>(),
                        "lost_revocations": lost,
                        "unknown_certificates": unknown,
                    }),
                )?;
                let crl = match &signer {
                    Some(s) => Some(crate::crl::generate_in_tx(self, tx, keys, s, &crl_opts)?),
                    None => None,
                };
                Ok((again, lost, crl))
            })
        })();
        self.accepting_restore.set(false);
        let (again, lost, crl) = result?;
        self.set_checkpoint()?;
        for r in &again {
            self.sync_name_mirror(&r.name)?;
        }
        self.sync_global_mirrors()?;
        Ok(Some(RestoreReport {
            checkpoint_seq,
            database_seq,
            newer_crl_number: witness.map(|w| w.number),
            revoked_again: again,
            lost_revocations: lost,
            unknown_certificates: unknown,
            crl,
        }))
    }

    /// What `verify` finds against the outside evidence: the checkpoint, and `crl.pem` when it
    /// holds a CRL of this CA numbered above every CRL in the database (the database was put
    /// back without the newer mirror).
    pub(crate) fn rollback_problems(&self, ca_der: Option<&[u8]>) -> Result<Vec<String>> {
        let mut out: Vec<String> = problem(&self.dir, &self.conn)?.into_iter().collect();
        if let Some(ca) = ca_der
            && let Some(w) = self.newer_mirror_crl(ca)?
        {
            out.push(format!(
                "the database is an older copy: {} holds CRL number {}, signed by this CA, but the newest CRL in the database is number {}",
                self.crl_path().display(),
                w.number,
                w.latest
            ));
        }
        Ok(out)
    }

    /// Refuses a database that is older than (or diverged from) its checkpoint.
    pub(crate) fn check_checkpoint(&self, conn: &Connection) -> Result<()> {
        if self.accepting_restore.get() {
            return Ok(());
        }
        if let Some(what) = problem(&self.dir, conn)? {
            return Err(Error::Tampered { what });
        }
        // The entries from the checkpointed one to the head must chain under the store's key:
        // an entry forged on an older database to match the checkpoint (whose MAC the
        // checkpoint file shows) does not.
        if self.is_unlocked() {
            let from = read(&self.dir).ok().flatten().map_or(1, |(s, _)| s);
            self.check_audit_tail(conn, from)?;
        }
        Ok(())
    }

    /// Writes the checkpoint for the database's current audit head, whatever it said before.
    fn set_checkpoint(&self) -> Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(Error::db("locking the store"))?;
        if let Some(head) = meta_get(&tx, "audit_head")? {
            write(&self.dir, &head, &tx)?;
        }
        tx.commit().map_err(Error::db("committing"))
    }

    /// Moves the checkpoint to the database's current audit head, under the write lock so that
    /// it never goes backwards. Best effort: the commit it follows has happened either way.
    pub(crate) fn advance_checkpoint(&self) {
        let advance = || -> Result<()> {
            let tx =
                rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
                    .map_err(Error::db("locking the store"))?;
            if let Some(head) = meta_get(&tx, "audit_head")?.filter(|h| parse_head(h).is_some()) {
                let current = read(&self.dir).ok().flatten();
                let ahead = parse_head(&head).map(|(s, _)| s);
                if current.map(|(s, _)| s) < ahead {
                    write(&self.dir, &head, &tx)?;
                }
            }
            tx.commit().map_err(Error::db("committing"))
        };
        let _ = advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_strictly() {
        assert_eq!(parse_head("3:0aff"), Some((3, vec![0x0a, 0xff])));
        for bad in ["", "3", ":00", "0:00", "-1:00", "3:", "3:zz", "x:00"] {
            assert_eq!(parse_head(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn damaged_files_are_reported_not_trusted() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(d.path()), Ok(None));
        for (text, want) in [
            ("hello\n", "is not a vpnca checkpoint"),
            ("vpnca-checkpoint v1\n", "is damaged"),
            ("vpnca-checkpoint v1\naudit-head 3:\n", "is damaged"),
        ] {
            std::fs::write(d.path().join(CHECKPOINT_FILE), text).expect("write");
            let e = read(d.path()).expect_err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
        std::fs::write(
            d.path().join(CHECKPOINT_FILE),
            "vpnca-checkpoint v1\naudit-head 7:01\n",
        )
        .expect("write");
        assert_eq!(read(d.path()), Ok(Some((7, vec![1]))));
    }
}
