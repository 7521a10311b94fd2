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
//!
//! A **second checkpoint** outside the store folder (`--checkpoint FILE` / `VPNCA_CHECKPOINT`,
//! [`Store::use_outside_checkpoint`]: another disk, a config repository) is the same file,
//! written and checked the same way, so that the whole folder put back is caught too. The first
//! write that runs with one records it in the authenticated state (the setting
//! [`OUTSIDE_SETTING`], audited as `checkpoint`); from then on the store refuses writes and key
//! use without it ([`Error::CheckpointNotGiven`]). Both files name their store (`store ID`, from
//! the MAC of its first audit entry), so another store's file is refused, never overwritten.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::engine::Engine;
use super::sqlite::Txn;
use time::OffsetDateTime;

use super::{Store, crypto, meta_get};
use crate::cert::{CertRecord, CertState, RevocationReason};
use crate::crl::CrlInfo;
use crate::serial::Serial;
use crate::{Error, Result, fsutil};

/// The checkpoint file inside the store directory.
pub const CHECKPOINT_FILE: &str = "vpnca.checkpoint";

const MAGIC: &str = "vpnca-checkpoint v1";

/// The setting (an item of the authenticated state, see `state::SETTINGS`) that records a
/// second checkpoint: the absolute path it was last used at. Once set, it is never removed.
pub(crate) const OUTSIDE_SETTING: &str = "outside_checkpoint";

/// At most this much of a checkpoint file is read (one is under 300 bytes).
const MAX_LEN: u64 = 4096;

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
    read_file(&dir.join(CHECKPOINT_FILE))
        .map(|c| c.map(|c| c.head))
        .map_err(|e| e.to_string())
}

/// A checkpoint file as read.
struct Found {
    head: Head,
    /// The `store ID` line (absent in files written before it was added).
    store: Option<String>,
}

/// Why a checkpoint file was not read.
#[derive(Debug)]
enum Unread {
    /// It cannot be read (permissions, a directory, …).
    Io(String),
    /// It is not a vpnca checkpoint at all (never overwritten).
    Foreign(String),
    /// It is one, but its audit head is missing or unreadable.
    Damaged(String),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Io(s) | Unread::Foreign(s) | Unread::Damaged(s) => f.write_str(s),
        }
    }
}

/// Reads a checkpoint file: `Ok(None)` when there is none.
fn read_file(path: &Path) -> std::result::Result<Option<Found>, Unread> {
    let mut bytes = Vec::new();
    match std::fs::File::open(path).and_then(|f| f.take(MAX_LEN).read_to_end(&mut bytes)) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Unread::Io(format!(
                "{} cannot be read ({e})",
                path.display()
            )));
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(Unread::Foreign(format!(
            "{} is not a vpnca checkpoint",
            path.display()
        )));
    }
    let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
    let head = field("audit-head ")
        .and_then(parse_head)
        .ok_or_else(|| Unread::Damaged(format!("{} is damaged (no audit head)", path.display())))?;
    Ok(Some(Found {
        head,
        store: field("store ").map(str::to_owned),
    }))
}

/// The store's identity in its checkpoints: the first 16 bytes of its first audit entry's
/// MAC, in hex (unique per store: the MAC key is random). Not secret, like the audit head.
fn store_id(conn: &dyn Engine) -> Result<Option<String>> {
    let mac = conn.audit_mac(1)?;
    Ok(mac.map(|m| crypto::hex(&m[..m.len().min(16)])))
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
pub(crate) fn problem(dir: &Path, conn: &dyn Engine) -> Result<Option<String>> {
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
                "{e}; if nothing else is wrong, delete it and run `vpnca verify --accept-restore`, which writes a new one"
            )));
        }
    };
    head_problem(conn, &(seq, mac), CHECKPOINT_FILE, accept)
}

/// Compares a checkpointed audit head (from the file `label` names) with the database: `Some`
/// when the database ends before it or holds another entry there; `accept` says what to do.
fn head_problem(
    conn: &dyn Engine,
    (seq, mac): &Head,
    label: &str,
    accept: &str,
) -> Result<Option<String>> {
    let head = meta_get(conn, "audit_head")?
        .as_deref()
        .and_then(parse_head)
        .map_or(0, |(s, _)| s);
    let at = conn.audit_mac(*seq)?;
    Ok(match at {
        Some(m) if m == *mac => None,
        Some(_) => Some(format!(
            "the database is another history than the one checkpointed: its audit entry {seq} is not the one {label} records (a copy of another store, or of an older copy that was then changed); {accept}"
        )),
        None => Some(format!(
            "the database is an older copy: {label} records audit entry {seq}, but the database ends at entry {head} (changes made since, revocations included, are missing); {accept}"
        )),
    })
}

/// What `verify --accept-restore` does about a database older than the second checkpoint: the
/// whole store folder was put back, so the newer `crl.pem` went with it.
const ACCEPT_OUTSIDE: &str = "if you put the whole store folder back on purpose (a restore from backup), put the newest crl.pem you published (the one on the VPN server) into the store folder first, then `vpnca --checkpoint FILE verify --accept-restore` accepts the copy, revokes again what that crl.pem revokes and moves both checkpoints to it (docs/security.md)";

/// The absolute path as the store records it.
fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `path` made absolute and checked as a second checkpoint for the store in `dir`: a regular
/// file or nothing yet, in an existing directory, outside the store folder (a file inside it
/// would be put back with the database).
pub(crate) fn outside_path(dir: &Path, path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(Error::io("resolving", path))?;
    fsutil::check_output(&abs, fsutil::Output::Replace)?;
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let store = real(&std::path::absolute(dir).map_err(Error::io("resolving", dir))?);
    let parent = real(abs.parent().unwrap_or(&abs));
    if parent.starts_with(&store) {
        return Err(Error::input(
            "--checkpoint",
            format!(
                "{} is inside the store folder {}: a second checkpoint is put back together with the database there, and catches nothing; keep it elsewhere (another disk, a config repository)",
                abs.display(),
                store.display()
            ),
        ));
    }
    Ok(abs)
}

/// The checkpoint's text for `head` (the `audit_head` meta value), with the store format, the
/// state head (format 2) and the store's identity read from `conn`.
fn text(head: &str, conn: &dyn Engine) -> Result<String> {
    let mut text = format!("{MAGIC}\naudit-head {head}\n");
    if let Some(f) = meta_get(conn, "format")?.filter(|f| f != "1") {
        text.push_str(&format!("format {f}\n"));
    }
    if let Some(h) = super::state::stored_head(conn)? {
        text.push_str(&format!("state-head {}\n", h.text()));
    }
    if let Some(id) = store_id(conn)? {
        text.push_str(&format!("store {id}\n"));
    }
    Ok(text)
}

/// Writes the checkpoint for `head` (the `audit_head` meta value).
fn write(dir: &Path, head: &str, conn: &dyn Engine) -> Result<()> {
    fsutil::write_atomic(
        &dir.join(CHECKPOINT_FILE),
        text(head, conn)?.as_bytes(),
        0o644,
    )
}

/// Writes the second checkpoint at `path` for `head`: replaced atomically, never through a
/// symbolic link, never over something that is not a regular file.
fn write_outside(path: &Path, head: &str, conn: &dyn Engine) -> Result<()> {
    fsutil::replace_output(path, text(head, conn)?.as_bytes(), 0o644)
}

/// Whether the file at `path` may be (re)written as this store's second checkpoint: there is
/// none, or it is a checkpoint (damaged or not) that names no other store. A file that is not
/// a checkpoint, or is another store's, is never overwritten.
fn outside_writable(path: &Path, conn: &dyn Engine) -> Result<bool> {
    Ok(match read_file(path) {
        Ok(None) | Err(Unread::Damaged(_)) => true,
        Ok(Some(c)) => c.store.is_none() || c.store == store_id(conn)?,
        Err(Unread::Io(_) | Unread::Foreign(_)) => false,
    })
}

/// What the second checkpoint says about the database behind `conn`.
#[derive(Debug)]
pub(crate) enum Outside {
    /// Nothing to say: none given and none recorded; or it holds this database's audit entry
    /// (or an earlier one).
    Fine,
    /// Given for the first time and not there yet: the next write starts it.
    NotStarted(PathBuf),
    /// The database is older than it or another history, or it is missing or damaged although
    /// the store recorded it: what `verify --accept-restore` accepts (then rewriting it).
    Rollback(String),
    /// None given, although the store recorded one (the path it was last used at). Never
    /// accepted.
    NotGiven(String),
    /// Never accepted: the file given is not a checkpoint, cannot be read, or belongs to
    /// another store.
    Refused(String),
}

/// The message of an unusable second checkpoint file.
fn not_ours(path: &Path, what: &str) -> String {
    format!(
        "{what}: vpnca never overwrites it; give --checkpoint (or VPNCA_CHECKPOINT) the path of this store's second checkpoint, or a path where none exists yet to start one ({} is not it)",
        path.display()
    )
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

    /// Keeps a second checkpoint at `path`, outside the store folder (`--checkpoint FILE`):
    /// written after every commit like `vpnca.checkpoint`, and checked like it before every
    /// write and key use, and by `verify`. The first write with it records it in the store
    /// (audited); from then on the store refuses to work without one
    /// ([`Error::CheckpointNotGiven`]). `path` must be outside the store folder, and a regular
    /// file or nothing yet in an existing directory ([`Error::InvalidInput`],
    /// [`Error::OutputPath`]). Nothing is written here.
    pub fn use_outside_checkpoint(&mut self, path: &Path) -> Result<()> {
        self.outside_checkpoint = Some(outside_path(&self.dir, path)?);
        Ok(())
    }

    /// Checks `path` as [`Store::use_outside_checkpoint`] does, for a store in `dir` that may
    /// not exist yet (`init` checks before it creates anything).
    pub fn check_outside_checkpoint(dir: &Path, path: &Path) -> Result<()> {
        outside_path(dir, path).map(|_| ())
    }

    /// The second checkpoint given to [`Store::use_outside_checkpoint`], made absolute.
    pub fn outside_checkpoint(&self) -> Option<&Path> {
        self.outside_checkpoint.as_deref()
    }

    /// Records the second checkpoint now, if it is not yet: one audited write (for `init`, whose
    /// first change comes before the option is applied). Returns whether it wrote.
    pub fn start_outside_checkpoint(&self) -> Result<bool> {
        let Some(path) = &self.outside_checkpoint else {
            return Ok(false);
        };
        if self.setting(OUTSIDE_SETTING)?.as_deref() == Some(path_text(path).as_str()) {
            return Ok(false);
        }
        self.write(|_, _| Ok(()))?;
        Ok(true)
    }

    /// Inside a write, before it is sealed: records the second checkpoint in the state when it
    /// is new or its path changed (setting [`OUTSIDE_SETTING`], audit entry `checkpoint` with
    /// the path and the one before). The file itself is written after the commit.
    pub(crate) fn record_outside_checkpoint(
        &self,
        tx: &super::Tx<'_>,
        keys: &crypto::Keys,
    ) -> Result<()> {
        let Some(path) = &self.outside_checkpoint else {
            return Ok(());
        };
        let now = path_text(path);
        let was = meta_get(tx.engine(), OUTSIDE_SETTING)?;
        if was.as_deref() == Some(now.as_str()) {
            return Ok(());
        }
        super::meta_set(tx, OUTSIDE_SETTING, &now)?;
        super::audit_append(
            tx,
            keys,
            "checkpoint",
            "",
            "",
            &serde_json::json!({"path": now, "was": was}),
        )
    }

    /// What the second checkpoint says about the database behind `conn` (see [`Outside`]).
    pub(crate) fn outside(&self, conn: &dyn Engine) -> Result<Outside> {
        let recorded = self.setting(OUTSIDE_SETTING)?;
        let Some(path) = &self.outside_checkpoint else {
            return Ok(recorded.map_or(Outside::Fine, Outside::NotGiven));
        };
        let shown = path.display();
        Ok(match read_file(path) {
            Err(Unread::Io(e)) => Outside::Refused(format!(
                "the second checkpoint {e}: vpnca needs to read and write it"
            )),
            Err(Unread::Foreign(e)) => Outside::Refused(not_ours(path, &e)),
            Err(Unread::Damaged(e)) => Outside::Rollback(format!(
                "the second checkpoint {e}; if nothing else is wrong, `vpnca --checkpoint FILE verify --accept-restore` writes it again"
            )),
            Ok(None) => match recorded {
                None => Outside::NotStarted(path.clone()),
                Some(r) => Outside::Rollback(format!(
                    "the second checkpoint {shown} is missing (the store last used it at {r}): if it was moved, give its new path; if it is lost, `vpnca --checkpoint FILE verify --accept-restore` writes a new one (check first that the store folder was not put back: docs/security.md)"
                )),
            },
            Ok(Some(c)) => {
                let id = store_id(conn)?;
                match (&c.store, &id) {
                    (Some(theirs), Some(ours)) if theirs != ours => Outside::Refused(not_ours(
                        path,
                        &format!(
                            "{shown} is the second checkpoint of another store (store {theirs}; this one is store {ours})"
                        ),
                    )),
                    _ => head_problem(
                        conn,
                        &c.head,
                        &format!("the second checkpoint {shown}"),
                        ACCEPT_OUTSIDE,
                    )?
                    .map_or(Outside::Fine, Outside::Rollback),
                }
            }
        })
    }

    /// `verify`'s findings about the second checkpoint that `--accept-restore` does not accept
    /// (problems), and what only needs saying (warnings). The accepted ones are in
    /// [`Store::rollback_problems`].
    pub(crate) fn outside_checkpoint_report(&self) -> Result<(Vec<String>, Vec<String>)> {
        Ok(match self.outside(&self.conn)? {
            Outside::NotGiven(r) => (
                vec![format!(
                    "this store keeps a second checkpoint outside its folder (last used at {r}), and none was given: run verify with --checkpoint FILE or VPNCA_CHECKPOINT to check against it"
                )],
                Vec::new(),
            ),
            Outside::Refused(w) => (vec![w], Vec::new()),
            Outside::NotStarted(p) => (
                Vec::new(),
                vec![format!(
                    "the second checkpoint {} does not exist yet: the next change writes it and records it in the store, which from then on refuses to work without it",
                    p.display()
                )],
            ),
            Outside::Fine | Outside::Rollback(_) => (Vec::new(), Vec::new()),
        })
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
        let outside = matches!(self.outside(&self.conn)?, Outside::Rollback(_));
        if problem(&self.dir, &self.conn)?.is_none() && witness.is_none() && !outside {
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
                        "outside_checkpoint": self.outside_checkpoint.as_deref().map(path_text),
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
        if let Outside::Rollback(w) = self.outside(&self.conn)? {
            out.push(w);
        }
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
    pub(crate) fn check_checkpoint(&self, conn: &dyn Engine) -> Result<()> {
        if self.accepting_restore.get() {
            return Ok(());
        }
        if let Some(what) = problem(&self.dir, conn)? {
            return Err(Error::Tampered { what });
        }
        match self.outside(conn)? {
            Outside::Fine | Outside::NotStarted(_) => {}
            Outside::NotGiven(recorded) => return Err(Error::CheckpointNotGiven { recorded }),
            Outside::Rollback(what) | Outside::Refused(what) => {
                return Err(Error::Tampered { what });
            }
        }
        // The entries from the checkpointed one to the head must chain under the store's key:
        // an entry forged on an older database to match a checkpoint (whose MAC the
        // checkpoint file shows) does not.
        if self.is_unlocked() {
            let local = read(&self.dir).ok().flatten().map_or(1, |(s, _)| s);
            let outside = self
                .outside_checkpoint
                .as_deref()
                .and_then(|p| read_file(p).ok().flatten())
                .map_or(local, |c| c.head.0);
            self.check_audit_tail(conn, local.min(outside))?;
        }
        Ok(())
    }

    /// Writes the checkpoint for the database's current audit head, whatever it said before.
    fn set_checkpoint(&self) -> Result<()> {
        let tx = Txn::immediate(&self.conn, "locking the store")?;
        if let Some(head) = meta_get(tx.engine(), "audit_head")? {
            write(&self.dir, &head, tx.engine())?;
            if let Some(p) = &self.outside_checkpoint
                && outside_writable(p, tx.engine())?
            {
                write_outside(p, &head, tx.engine())?;
            }
        }
        tx.commit()
    }

    /// Moves the checkpoint to the database's current audit head, under the write lock so that
    /// it never goes backwards. Best effort: the commit it follows has happened either way.
    pub(crate) fn advance_checkpoint(&self) {
        let advance = || -> Result<()> {
            let tx = Txn::immediate(&self.conn, "locking the store")?;
            if let Some(head) =
                meta_get(tx.engine(), "audit_head")?.filter(|h| parse_head(h).is_some())
            {
                let current = read(&self.dir).ok().flatten();
                let ahead = parse_head(&head).map(|(s, _)| s);
                if current.map(|(s, _)| s) < ahead {
                    write(&self.dir, &head, tx.engine())?;
                }
                if let Some(p) = &self.outside_checkpoint {
                    self.advance_outside(p, &head, ahead, tx.engine())?;
                }
            }
            tx.commit()
        };
        let _ = advance();
    }

    /// The second checkpoint moved to `head` (sequence number `ahead`) when it is this store's
    /// and behind, or written first when the store records it at this path and it is not
    /// there yet (the commit that recorded it). Anything else is left alone: the next check
    /// names it.
    fn advance_outside(
        &self,
        path: &Path,
        head: &str,
        ahead: Option<i64>,
        conn: &dyn Engine,
    ) -> Result<()> {
        let write = match read_file(path) {
            Ok(Some(c)) => {
                (c.store.is_none() || c.store == store_id(conn)?) && Some(c.head.0) < ahead
            }
            Ok(None) => {
                meta_get(conn, OUTSIDE_SETTING)?.as_deref() == Some(path_text(path).as_str())
            }
            Err(_) => false,
        };
        if write {
            write_outside(path, head, conn)?;
        }
        Ok(())
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

    #[test]
    fn the_store_line_is_read_and_a_foreign_file_told_apart() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("x.checkpoint");
        std::fs::write(&p, "vpnca-checkpoint v1\naudit-head 7:01\nstore abcd\n").expect("write");
        let c = read_file(&p).expect("read").expect("a checkpoint");
        assert_eq!((c.head, c.store.as_deref()), ((7, vec![1]), Some("abcd")));
        std::fs::write(&p, "my notes\n").expect("write");
        assert!(matches!(read_file(&p), Err(Unread::Foreign(_))));
        std::fs::write(&p, "vpnca-checkpoint v1\nstore abcd\n").expect("write");
        assert!(matches!(read_file(&p), Err(Unread::Damaged(_))));
    }

    #[test]
    fn a_second_checkpoint_inside_the_store_folder_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let store = d.path().join("pki");
        std::fs::create_dir_all(store.join("sub")).expect("mkdir");
        for inside in [store.join("w"), store.join("sub/w"), store.join("../pki/w")] {
            let e = outside_path(&store, &inside).expect_err("inside");
            assert!(e.to_string().contains("is inside the store folder"), "{e}");
        }
        assert!(outside_path(&store, &d.path().join("w")).is_ok());
        assert!(outside_path(&store, &d.path().join("no-such-dir/w")).is_err());
    }
}
