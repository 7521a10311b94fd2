//! The store: one directory, one SQLite database holding every record, plus public mirrors.
//!
//! Layout (see docs/store-format.md):
//! - `vpnca.db` — certificates, encrypted private keys, CRLs, the audit log, the header;
//! - `ca.crt`, `issued/NAME.crt`, `crl.pem` — public copies for easy-rsa habits (never keys).
//!
//! Every write is one SQLite transaction taken with `BEGIN IMMEDIATE` (writers queue on the
//! lock; a crash or SIGKILL rolls the transaction back), in rollback-journal mode with
//! `synchronous=FULL`. Mirrors are rewritten after the commit and repaired by `verify`.

mod alike;
mod audit_hash;
#[cfg(feature = "aws")]
pub(crate) mod aws;
pub(crate) mod checkpoint;
pub(crate) mod crypto;
mod rekey;
pub(crate) mod smt;
pub(crate) mod state;
mod syslog;

use state::STATE_SCHEMA;

use std::path::{Path, PathBuf};

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub use alike::LookAlikes;
pub use audit_hash::AuditCheck;
pub use checkpoint::{CHECKPOINT_FILE, RestoreReport};
pub use crypto::KdfParams;
use crypto::Keys;
pub use rekey::RekeyReport;

use crate::cert::{CertKind, CertRecord, CertState, Status};
use crate::secret::{Passphrase, SecretKeyDer};
use crate::serial::Serial;
use crate::{Error, Result, fsutil};

/// The database file inside the store directory.
pub const DB_FILE: &str = "vpnca.db";
/// The store format this version writes and reads.
pub const FORMAT_VERSION: u32 = 2;
/// How long a command waits for another vpnca process holding the write lock.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

const SCHEMA: &str = "
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE certs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    serial TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    profile TEXT NOT NULL,
    state TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    revoked_at INTEGER,
    reason TEXT,
    superseded_by TEXT,
    created_at INTEGER NOT NULL,
    cert_der BLOB NOT NULL,
    key_blob BLOB,
    mac BLOB NOT NULL
);
CREATE INDEX certs_name ON certs(name, state);
CREATE INDEX certs_state ON certs(state);
CREATE INDEX certs_kind ON certs(kind);
CREATE TABLE chain (pos INTEGER PRIMARY KEY, der BLOB NOT NULL);
CREATE TABLE pending_ca (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, algorithm TEXT NOT NULL,
    csr_der BLOB NOT NULL, key_blob BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE crls (number INTEGER PRIMARY KEY, this_update INTEGER NOT NULL, next_update INTEGER NOT NULL,
    entries INTEGER NOT NULL, der BLOB NOT NULL);
CREATE TABLE audit (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
    name TEXT NOT NULL, serial TEXT NOT NULL, detail TEXT NOT NULL, mac BLOB NOT NULL);
";

/// The AWS records ([`crate::aws`]): created by `init`, and by the first AWS write in a store
/// made before them.
pub(crate) const AWS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS aws_imports (arn TEXT PRIMARY KEY, region TEXT NOT NULL, role TEXT NOT NULL,
    name TEXT NOT NULL, serial TEXT NOT NULL, imported_at INTEGER NOT NULL, mac BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS aws_imports_name ON aws_imports(role, name, region);
CREATE TABLE IF NOT EXISTS aws_endpoints (id TEXT NOT NULL, region TEXT NOT NULL, crl_number INTEGER NOT NULL,
    pushed_at INTEGER NOT NULL, PRIMARY KEY (id, region));
";

/// The schema objects (`type`, `name`, `tbl_name`, `sql`) of a database made by `schema`,
/// as SQLite records them: what [`check_schema`] compares a store with.
fn schema_objects(schema: &str) -> Result<Vec<[Option<String>; 4]>> {
    let conn = Connection::open_in_memory().map_err(Error::db("checking the schema"))?;
    conn.execute_batch(schema)
        .map_err(Error::db("checking the schema"))?;
    read_schema(&conn)
}

fn read_schema(conn: &Connection) -> Result<Vec<[Option<String>; 4]>> {
    let mut st = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .map_err(Error::db("reading the schema"))?;
    let rows = st
        .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
        .map_err(Error::db("reading the schema"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("reading the schema"))
}

/// Refuses a database whose schema is not exactly what vpnca creates (with or without the
/// AWS tables of [`AWS_SCHEMA`]): a trigger, a view, an index or a changed table definition
/// planted by someone who can write the file. Triggers and views are disabled on every
/// connection anyway ([`configure`]); this names the edit instead of ignoring it.
///
/// Returns the format whose schema it is: 1 (with or without the AWS tables) or 2.
fn check_schema(conn: &Connection, db: &Path) -> Result<u32> {
    let found = read_schema(conn)?;
    let core = schema_objects(SCHEMA)?;
    if found == core || found == schema_objects(&format!("{SCHEMA}{AWS_SCHEMA}"))? {
        return Ok(1);
    }
    let all = schema_objects(&format!("{SCHEMA}{AWS_SCHEMA}{STATE_SCHEMA}"))?;
    if found == all {
        return Ok(2);
    }
    let describe = |o: &[Option<String>; 4]| {
        format!(
            "{} {:?} on {:?}",
            o[0].as_deref().unwrap_or("?"),
            o[1].as_deref().unwrap_or("?"),
            o[2].as_deref().unwrap_or("?")
        )
    };
    let what = match found.iter().find(|o| !all.contains(o)) {
        Some(o) if all.iter().any(|a| a[0] == o[0] && a[1] == o[1]) => {
            format!("a changed definition of {}", describe(o))
        }
        Some(o) => format!("an unexpected {}", describe(o)),
        None => match core.iter().find(|o| !found.contains(o)) {
            Some(o) => format!("no {}", describe(o)),
            None => "an incomplete set of the AWS tables".to_string(),
        },
    };
    Err(Error::ForeignSchema {
        path: db.to_path_buf(),
        what,
    })
}

/// The store header: format and how the data key is wrapped.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Header {
    format: u32,
    kdf_algorithm: String,
    kdf: KdfParams,
    salt: String,
    aead: String,
    wrapped_key: String,
}

impl Header {
    /// The associated data of the wrapped data key. `bound`: the key is wrapped for a store of
    /// format 2 or later (every header vpnca writes now), so a header whose format is edited
    /// back to 1 — to pass the store off as one that has no authenticated state — no longer
    /// unwraps. Headers written before this binding existed (`vpnca/wrap/v1`) are re-wrapped
    /// bound by the next write ([`Store::write`]).
    fn wrap_aad(&self, bound: bool) -> Vec<u8> {
        let params = format!(
            "{}|{}|{}|{}|{}",
            self.kdf_algorithm, self.kdf.m_kib, self.kdf.t, self.kdf.p, self.salt
        );
        if bound {
            format!("vpnca/wrap/v2|format>=2|{params}").into_bytes()
        } else {
            format!("vpnca/wrap/v1|{params}").into_bytes()
        }
    }

    fn new_wrapped(pass: &Passphrase, kdf: KdfParams, data_key: &[u8; 32]) -> Result<Header> {
        let salt: [u8; 16] = crypto::random()?;
        let mut h = Header {
            format: FORMAT_VERSION,
            kdf_algorithm: "argon2id".into(),
            kdf,
            salt: crypto::hex(&salt),
            aead: "aes-256-gcm".into(),
            wrapped_key: String::new(),
        };
        let kek = crypto::derive_kek(pass, &salt, kdf)?;
        h.wrap_with(&kek, data_key)?;
        Ok(h)
    }

    /// Wraps `data_key` under `kek`, bound to format 2 ([`Header::wrap_aad`]).
    fn wrap_with(&mut self, kek: &[u8; 32], data_key: &[u8; 32]) -> Result<()> {
        self.format = FORMAT_VERSION;
        self.wrapped_key = crypto::hex(&crypto::seal(kek, &self.wrap_aad(true), data_key)?);
        Ok(())
    }

    /// The data key, and the key-encryption key when the header is not bound yet (to re-wrap
    /// it bound). `db_format` is the database's format: a header bound to format 2 on a
    /// format-1 database is a downgrade (the format-2 tables and state removed outside
    /// vpnca), refused.
    fn unwrap(&self, pass: &Passphrase, db_format: u32) -> Result<Unwrapped> {
        // Bounded work before the passphrase is known to be right: a header asking for more
        // than `init` allows was not written by vpnca.
        self.kdf.check().map_err(|e| Error::Tampered {
            what: format!(
                "the store header asks Argon2id for {} MiB and {} passes ({e}): vpnca never writes that, so the header was edited outside vpnca",
                self.kdf.m_kib / 1024,
                self.kdf.t
            ),
        })?;
        let salt = crypto::unhex(&self.salt).ok_or_else(|| Error::Tampered {
            what: "store header salt".into(),
        })?;
        let blob = crypto::unhex(&self.wrapped_key).ok_or_else(|| Error::Tampered {
            what: "store header key".into(),
        })?;
        let kek = crypto::derive_kek(pass, &salt, self.kdf)?;
        let (dk, bound) = match crypto::open(&kek, &self.wrap_aad(true), &blob) {
            Some(dk) => (dk, true),
            None => (
                crypto::open(&kek, &self.wrap_aad(false), &blob).ok_or(Error::WrongPassphrase)?,
                false,
            ),
        };
        if bound && (db_format < 2 || self.format < 2) {
            return Err(Error::Tampered {
                what: format!(
                    "the store header was written for a store of format 2, but {} says format {}: its format-2 state (the authenticated state, its witnesses) was removed or relabelled outside vpnca to pass it off as a store without one; restore the store from a backup",
                    if db_format < 2 {
                        "the database"
                    } else {
                        "the header"
                    },
                    db_format.min(self.format)
                ),
            });
        }
        let mut out = Zeroizing::new([0u8; 32]);
        if dk.len() != 32 {
            return Err(Error::Tampered {
                what: "wrapped data key has the wrong length".into(),
            });
        }
        out.copy_from_slice(&dk);
        Ok(Unwrapped {
            data_key: out,
            rewrap: (!bound).then_some(kek),
        })
    }
}

/// What [`Header::unwrap`] gives: the data key, and the key-encryption key when the header
/// must still be re-wrapped bound to format 2.
struct Unwrapped {
    data_key: Zeroizing<[u8; 32]>,
    rewrap: Option<Zeroizing<[u8; 32]>>,
}

/// Where a store's notices go ([`Store::on_notice`]). `Send`, so that a `Store` stays `Send`
/// (a library caller may move it to another thread; checked at compile time below).
type NoticeHook = Box<dyn Fn(&str) + Send>;

const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<Store>();
};

/// An open store. Read operations work locked; anything that touches keys or writes needs
/// [`Store::unlock`] first.
pub struct Store {
    dir: PathBuf,
    conn: Connection,
    keys: Option<Keys>,
    /// Set by [`Store::accept_restore`]: the checkpoint guard stands down for that one change.
    accepting_restore: std::cell::Cell<bool>,
    /// The stored names not in NFC (from stores older than name normalization), read once:
    /// vpnca writes every new name in NFC, so this set never grows while the store is open.
    non_nfc_names: std::cell::OnceCell<Vec<String>>,
    /// The store format: 1 until the first write upgrades it, then 2.
    format: std::cell::Cell<u32>,
    /// Set while a [`Store::write`] transaction runs: reads then see its own changes, so they
    /// are proven against the root it started from, and what it changed is not.
    in_write: std::cell::Cell<bool>,
    /// What the running write transaction changed ([`Tx`]), and the root it started from.
    write_state: std::cell::RefCell<state::Touched>,
    /// Set by [`Store::without_read_proofs`].
    no_read_proofs: std::cell::Cell<bool>,
    /// The key-encryption key, kept from [`Store::unlock`] only while the header is not bound
    /// to format 2 yet ([`Header::wrap_aad`]): the next write re-wraps it bound.
    rewrap: std::cell::RefCell<Option<Zeroizing<[u8; 32]>>>,
    /// The second checkpoint, outside the store folder ([`Store::use_outside_checkpoint`]).
    outside_checkpoint: Option<PathBuf>,
    /// Where notices about committed changes go ([`Store::on_notice`]).
    notice: Option<NoticeHook>,
    /// The KMS client a KMS-held CA key signs with, when the caller gave one
    /// ([`Store::use_kms`]); otherwise one is made from the standard AWS chain.
    #[cfg(feature = "aws")]
    kms_client: std::cell::OnceCell<std::sync::Arc<crate::aws::kms::Kms>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("unlocked", &self.keys.is_some())
            .finish()
    }
}

pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

pub(crate) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(v).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The operating-system user, for the audit log.
pub(crate) fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    match (name, uid) {
        (Some(n), Some(u)) => format!("{n} (uid {u})"),
        (Some(n), None) => n,
        (None, Some(u)) => format!("uid {u}"),
        (None, None) => "unknown".into(),
    }
}

fn configure(conn: &Connection) -> Result<()> {
    // The file is untrusted (docs/security.md): no code from it ever runs inside vpnca's
    // transactions. Triggers and views off, defensive mode (no writable_schema, no shadow
    // table writes), and no SQL functions with side effects from the schema.
    use rusqlite::config::DbConfig;
    for (flag, on) in [
        (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
        (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
        (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
    ] {
        if conn
            .set_db_config(flag, on)
            .map_err(Error::db("configuring the database"))?
            != on
        {
            return Err(Error::Database {
                op: "configuring the database",
                message: format!("SQLite refused to set {flag:?} to {on}"),
            });
        }
    }
    conn.busy_timeout(LOCK_WAIT)
        .map_err(Error::db("configuring the database"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(Error::db("configuring the database"))?;
    Ok(())
}

const CERT_COLS: &str = "id, serial, name, kind, profile, state, not_before, not_after, revoked_at, reason, superseded_by, created_at, cert_der, key_blob IS NOT NULL";

// The certificate lookups on the issue / revoke / show / CRL paths. They are named so that
// [`Store::hot_query_plans`] explains exactly the SQL these paths run: each must find its rows
// through an index, never by scanning the certificates table (easy-rsa's index.txt broke at
// ~76k lines; the CA lookup once scanned the whole table).

/// [`Store::by_serial`], [`raw_record`]: one certificate by serial (UNIQUE index).
const WHERE_SERIAL: &str = "serial = ?1";
/// [`Store::by_name`], [`Store::current`]: every certificate of a name.
const WHERE_NAME: &str = "name = ?1 AND kind != 'ca'";
/// [`Store::live`]: the live certificate of a name (before issuing, for the mirrors).
const WHERE_LIVE: &str = "name = ?1 AND kind != 'ca' AND state = 'valid' AND not_after > ?2";
/// [`Store::by_name`] of a name stored in more than one spelling (NFC and, from an older
/// store, NFD): up to four spellings.
const WHERE_NAMES: &str = "name IN (?1, ?2, ?3, ?4) AND kind != 'ca'";
/// [`Store::live`] of a name stored in more than one spelling.
const WHERE_LIVE_NAMES: &str =
    "name IN (?1, ?2, ?3, ?4) AND kind != 'ca' AND state = 'valid' AND not_after > ?5";
/// [`Store::names`]: every certificate name but the CA's.
const SQL_NAMES: &str = "SELECT DISTINCT name FROM certs WHERE kind != 'ca' ORDER BY name";
/// [`Store::live_names`]: the names with a live certificate.
const SQL_LIVE_NAMES: &str = "SELECT DISTINCT name FROM certs WHERE kind != 'ca' AND state = 'valid' AND not_after > ?1 ORDER BY name";
/// The stored names with a character outside printable ASCII (only those can be non-NFC).
const SQL_NON_ASCII_NAMES: &str =
    "SELECT DISTINCT name FROM certs INDEXED BY certs_name WHERE name GLOB '*[^ -~]*'";
/// [`Store::ca`]: the CA record, read by every issue, revoke and CRL.
const WHERE_CA: &str = "kind = 'ca'";
/// [`check_revoked_set`], [`Store::revoked`]: the revoked records, read by every revoke and
/// CRL, and by `status` and `push-crl` to tell a stale CRL.
const WHERE_REVOKED: &str = "state = 'revoked'";
/// [`Store::has_ca`].
const SQL_HAS_CA: &str = "SELECT COUNT(*) FROM certs WHERE kind = 'ca'";
/// [`Store::last_revocation`].
const SQL_LAST_REVOCATION: &str = "SELECT MAX(revoked_at) FROM certs WHERE state = 'revoked'";
/// [`Store::check_mirror_paths`]: the name of a record a write touched.
const SQL_NAME_BY_SERIAL: &str = "SELECT name FROM certs WHERE serial = ?1";
/// [`Store::check_one_row_each`]: the row a serial leads to.
const SQL_ID_BY_SERIAL: &str = "SELECT id FROM certs WHERE serial = ?1";
/// [`raw_record`]: the key blob and MAC of a record found by serial.
const SQL_KEY_BLOB: &str = "SELECT key_blob, mac FROM certs WHERE id = ?1";
/// [`update_record`]: a revocation or supersession.
const SQL_UPDATE_RECORD: &str = "UPDATE certs SET state = ?1, revoked_at = ?2, reason = ?3, superseded_by = ?4, mac = ?5 WHERE id = ?6";

/// The rows of `certs` a WHERE clause selects, read from the table itself: an index only
/// proposes row ids (the subquery), each row is then read by its id (`NOT INDEXED`: rowid
/// lookups only) and the clause checked again on what the table holds. SQLite otherwise takes
/// the columns an index holds (`certs_name` holds `name` and `state`) from the index, so an
/// index page edited outside vpnca — the table, its MACs and proofs untouched — could make a
/// revoked record read as valid. A row the index leaves out is caught by the proof of its
/// name's list ([`state::Item::Name`]).
fn certs_from(cols: &str, where_sql: &str) -> String {
    if where_sql == "1 = 1" {
        // Every row: a scan of the table itself.
        return format!("SELECT {cols} FROM certs NOT INDEXED ORDER BY id");
    }
    format!(
        "SELECT {cols} FROM certs NOT INDEXED WHERE id IN (SELECT id FROM certs WHERE {where_sql}) AND ({where_sql}) ORDER BY id"
    )
}

/// The SQL of [`query_records`] for a WHERE clause.
fn records_sql(where_sql: &str) -> String {
    certs_from(CERT_COLS, where_sql)
}

/// The SQL of [`query_raw_records`] for a WHERE clause.
fn raw_records_sql(where_sql: &str) -> String {
    certs_from(&format!("{CERT_COLS}, key_blob, mac"), where_sql)
}

/// The hot queries by name, as the functions named above run them.
fn hot_queries() -> Vec<(&'static str, String)> {
    vec![
        ("by_serial", records_sql(WHERE_SERIAL)),
        ("by_name", records_sql(WHERE_NAME)),
        ("live", records_sql(WHERE_LIVE)),
        ("ca", records_sql(WHERE_CA)),
        ("revoked_set", raw_records_sql(WHERE_REVOKED)),
        ("has_ca", SQL_HAS_CA.to_string()),
        ("last_revocation", SQL_LAST_REVOCATION.to_string()),
        ("key_blob", SQL_KEY_BLOB.to_string()),
        ("update_record", SQL_UPDATE_RECORD.to_string()),
        // The two name scans every issue (look-alikes) and name lookup (old spellings) run
        // once per command: they read the `certs_name` index only, never a table row.
        ("scan:valid_names", alike::SQL_VALID_NAMES.to_string()),
        ("scan:non_ascii_names", SQL_NON_ASCII_NAMES.to_string()),
    ]
}

/// Four `IN (…)` arguments from up to four spellings (the first repeated).
fn spelling_args(sp: &[String]) -> [String; 4] {
    std::array::from_fn(|i| sp.get(i).unwrap_or(&sp[0]).clone())
}

pub(crate) struct RawRecord {
    pub rec: CertRecord,
    pub key_blob: Option<Vec<u8>>,
    pub mac: Vec<u8>,
}

fn corrupt(what: String) -> Error {
    Error::Tampered { what }
}

fn row_to_record(row: &Row<'_>) -> rusqlite::Result<std::result::Result<CertRecord, String>> {
    let serial_hex: String = row.get(1)?;
    let kind: String = row.get(3)?;
    let state: String = row.get(5)?;
    let reason: Option<String> = row.get(9)?;
    let sup: Option<String> = row.get(10)?;
    let parse = || -> std::result::Result<CertRecord, String> {
        Ok(CertRecord {
            id: row.get(0).map_err(|e| e.to_string())?,
            serial: serial_hex
                .parse()
                .map_err(|_| format!("bad serial {serial_hex:?}"))?,
            name: row.get(2).map_err(|e| e.to_string())?,
            kind: kind
                .parse()
                .map_err(|_| format!("bad kind {kind:?} for serial {serial_hex}"))?,
            profile: row.get(4).map_err(|e| e.to_string())?,
            state: CertState::parse(&state)
                .ok_or_else(|| format!("bad state {state:?} for serial {serial_hex}"))?,
            not_before: from_ts(row.get(6).map_err(|e| e.to_string())?),
            not_after: from_ts(row.get(7).map_err(|e| e.to_string())?),
            revoked_at: row
                .get::<_, Option<i64>>(8)
                .map_err(|e| e.to_string())?
                .map(from_ts),
            reason: match reason {
                Some(r) => Some(
                    r.parse()
                        .map_err(|_| format!("bad reason {r:?} for serial {serial_hex}"))?,
                ),
                None => None,
            },
            superseded_by: match sup {
                Some(s) => Some(
                    s.parse()
                        .map_err(|_| format!("bad superseded_by for serial {serial_hex}"))?,
                ),
                None => None,
            },
            created_at: from_ts(row.get(11).map_err(|e| e.to_string())?),
            der: row.get(12).map_err(|e| e.to_string())?,
            has_key: row.get(13).map_err(|e| e.to_string())?,
        })
    };
    Ok(parse())
}

/// What the store needs to record a new certificate.
pub(crate) struct NewRecord<'a> {
    pub serial: &'a Serial,
    pub name: &'a str,
    pub kind: CertKind,
    pub profile: &'a str,
    pub der: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key: Option<&'a SecretKeyDer>,
}

/// One write transaction as the PKI modules see it ([`Store::write`]): they change records,
/// the revoked set, CRLs, the chain and the audit log through these methods and the `store`
/// functions that take a `Tx`, never through SQL — the storage engine stays inside
/// `src/store/`.
pub(crate) struct Tx<'c> {
    t: Transaction<'c>,
    /// The items this transaction changes (format 2), proven when first touched.
    state: &'c std::cell::RefCell<state::Touched>,
}

/// A read snapshot ([`Store::snapshot`]).
pub(crate) struct Snapshot<'c>(#[allow(dead_code)] Transaction<'c>);

impl<'c> Tx<'c> {
    /// `BEGIN IMMEDIATE` on `conn`; `root` is the trusted state root (format 2).
    /// `BEGIN IMMEDIATE` on `conn`, tracking the state changes in `state` (reset here).
    fn begin(
        conn: &'c Connection,
        state: &'c std::cell::RefCell<state::Touched>,
        op: &'static str,
    ) -> Result<Tx<'c>> {
        let t = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(Error::db(op))?;
        *state.borrow_mut() = state::Touched::default();
        Ok(Tx { t, state })
    }

    /// Starts tracking the state for this transaction from the trusted head.
    fn track(&self, root: smt::Hash, seq: i64) {
        let mut st = self.state.borrow_mut();
        st.root = Some(root);
        st.seq = seq;
    }

    fn commit(self) -> Result<()> {
        self.t.commit().map_err(Error::db("committing"))
    }

    /// The engine underneath, for the store's own functions.
    fn sql(&self) -> &Connection {
        &self.t
    }

    /// Marks `item` as changed by this transaction, first proving that its current value is
    /// the one the trusted state holds (so a tampered row is never laundered into the new
    /// state). Call it before changing the item. Format 1: nothing to do.
    pub(crate) fn touch(&self, item: state::Item) -> Result<()> {
        let mut st = self.state.borrow_mut();
        let Some(root) = st.root else {
            return Ok(());
        };
        if st.items.contains(&item) {
            return Ok(());
        }
        state::prove(self.sql(), &root, &item)?;
        st.items.insert(item);
        Ok(())
    }

    /// Proves `item`'s current value against the trusted state, unless this transaction
    /// changed it already (it was proven when touched).
    pub(crate) fn prove(&self, item: &state::Item) -> Result<()> {
        let st = self.state.borrow();
        match st.root {
            Some(root) if !st.items.contains(item) => {
                state::prove(self.sql(), &root, item).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// The revoked records, proven against the MAC'd revoked set ([`check_revoked_set`]).
    pub(crate) fn revoked_set(&self, keys: &Keys) -> Result<Vec<RawRecord>> {
        self.prove(&state::Item::RevokedSet)?;
        check_revoked_set(self.sql(), keys)
    }

    /// The highest CRL number stored (0 for none).
    pub(crate) fn max_crl_number(&self) -> Result<i64> {
        self.prove(&state::Item::CrlHead)?;
        self.sql()
            .query_row("SELECT COALESCE(MAX(number), 0) FROM crls", [], |r| {
                r.get(0)
            })
            .map_err(Error::db("reading the CRL number"))
    }

    /// Records a signed CRL.
    pub(crate) fn insert_crl(
        &self,
        number: i64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        entries: usize,
        der: &[u8],
    ) -> Result<()> {
        self.touch(state::Item::Crl(u64::try_from(number).unwrap_or(0)))?;
        self.touch(state::Item::CrlHead)?;
        self.sql()
            .execute(
                "INSERT INTO crls (number, this_update, next_update, entries, der) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![number, ts(this_update), ts(next_update), entries as i64, der],
            )
            .map_err(Error::db("recording the CRL"))?;
        Ok(())
    }

    /// The audit entry that records the last CRL made, and that CRL's number.
    pub(crate) fn last_crl_entry(&self) -> Result<Option<(i64, u64)>> {
        last_crl_entry(self.sql())
    }

    /// The DER of the CRL stored under `number`.
    pub(crate) fn crl_der(&self, number: u64) -> Result<Option<Vec<u8>>> {
        self.prove(&state::Item::Crl(number))?;
        crl_der(self.sql(), number)
    }

    /// Records a sub-CA request (its CSR and sealed key), replacing an unfinished one.
    pub(crate) fn set_pending_ca(
        &self,
        name: &str,
        algorithm: &str,
        csr_der: &[u8],
        key_blob: &[u8],
    ) -> Result<()> {
        self.clear_pending_ca()?;
        self.sql()
            .execute(
                "INSERT INTO pending_ca (id, name, algorithm, csr_der, key_blob, created_at) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
                params![name, algorithm, csr_der, key_blob, ts(now())],
            )
            .map_err(Error::db("recording the sub-CA request"))?;
        Ok(())
    }

    /// Forgets the sub-CA request.
    pub(crate) fn clear_pending_ca(&self) -> Result<()> {
        self.touch(state::Item::PendingCa)?;
        self.sql()
            .execute("DELETE FROM pending_ca", [])
            .map_err(Error::db("recording the sub-CA request"))?;
        Ok(())
    }

    /// Adopts `text` (TOML, already checked) as the profile `name`, or with `None` goes back
    /// to the built-in one.
    /// Returns the text adopted before.
    pub(crate) fn set_template(
        &self,
        name: &'static str,
        text: Option<&str>,
    ) -> Result<Option<String>> {
        if self.state.borrow().root.is_none() {
            return Err(Error::Tampered {
                what: "this format-1 store could not be upgraded to format 2 (`vpnca verify` names why), and profiles are adopted only into format 2's authenticated state".into(),
            });
        }
        self.touch(state::Item::Template(name))?;
        let k = state::template_key(name);
        let before = meta_get(self.sql(), &k)?;
        match text {
            Some(t) => meta_set(self, &k, t)?,
            None => {
                self.sql()
                    .execute("DELETE FROM meta WHERE k = ?1", [&k])
                    .map_err(Error::db("writing the header"))?;
            }
        }
        Ok(before)
    }

    /// Records the reference to the CA's key in AWS KMS (part of the authenticated state).
    #[cfg(feature = "aws")]
    pub(crate) fn set_ca_kms_key(&self, r: &crate::ca_key::KmsKeyRef) -> Result<()> {
        meta_set(self, state::CA_KMS_KEY, &r.to_text())
    }

    /// Deletes the CA record's encrypted private key (`ca --move-to-kms`, once the key is in
    /// KMS): the record gets a new MAC without it, after its current MAC is checked. The
    /// freed database pages are overwritten (SQLite's `secure_delete`), so the sealed blob
    /// does not stay in the file's free space.
    #[cfg(feature = "aws")]
    pub(crate) fn drop_ca_key(&self, keys: &Keys, rec: &CertRecord) -> Result<()> {
        self.touch(state::Item::Cert(rec.serial.hex()))?;
        let raw = raw_record(self.sql(), &rec.serial)?;
        check_record_mac(keys, &raw)?;
        let mut without = raw.rec.clone();
        without.has_key = false;
        let mac = record_mac(keys, &without, None);
        self.sql()
            .pragma_update(None, "secure_delete", "ON")
            .map_err(Error::db("forgetting the CA key"))?;
        self.sql()
            .execute(
                "UPDATE certs SET key_blob = NULL, mac = ?1 WHERE id = ?2",
                params![mac, raw.rec.id],
            )
            .map_err(Error::db("forgetting the CA key"))?;
        Ok(())
    }

    /// Records (`Some`: JSON, [`crate::crl::CrlDeferred`]) or clears (`None`) the revocations
    /// no CRL lists yet: the [`state::CRL_DEFERRED`] setting, part of the authenticated state.
    pub(crate) fn set_crl_deferred(&self, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => meta_set(self, state::CRL_DEFERRED, v),
            None => {
                if meta_get(self.sql(), state::CRL_DEFERRED)?.is_none() {
                    return Ok(());
                }
                self.touch(state::Item::Setting(state::CRL_DEFERRED))?;
                self.sql()
                    .execute("DELETE FROM meta WHERE k = ?1", [state::CRL_DEFERRED])
                    .map_err(Error::db("writing the header"))?;
                Ok(())
            }
        }
    }

    /// The deferred-CRL record as this transaction sees it, proven against the state it
    /// started from (unless it changed it already).
    pub(crate) fn crl_deferred(&self) -> Result<Option<String>> {
        self.prove(&state::Item::Setting(state::CRL_DEFERRED))?;
        meta_get(self.sql(), state::CRL_DEFERRED)
    }

    /// Where the store's state stands now: the state head and the audit head as recorded.
    /// Another write in between changes at least one of them ([`Tx::moved_since`]).
    pub(crate) fn mark(&self) -> Result<StateMark> {
        Ok(StateMark(
            meta_get(self.sql(), "state_head")?,
            meta_get(self.sql(), "audit_head")?,
        ))
    }

    /// Whether a write was committed since `mark` was taken (in another transaction).
    pub(crate) fn moved_since(&self, mark: &StateMark) -> Result<bool> {
        Ok(&self.mark()? != mark)
    }

    /// Records the parent chain of a sub-CA (issuer first, root last).
    pub(crate) fn insert_chain(&self, chain: &[Vec<u8>]) -> Result<()> {
        self.touch(state::Item::Chain)?;
        for (i, c) in chain.iter().enumerate() {
            self.sql()
                .execute(
                    "INSERT INTO chain (pos, der) VALUES (?1, ?2)",
                    params![i as i64, c],
                )
                .map_err(Error::db("recording the chain"))?;
        }
        Ok(())
    }
}

/// The state-signing key's certificate as prepared before a write took the lock
/// ([`Store::presign_state_key`]).
enum StateKeyCert {
    /// Not prepared: made inside the write if it is due.
    NotTried,
    /// Signed by the CA's KMS key.
    Signed(Vec<u8>),
    /// KMS could not sign it: the write goes on without it.
    Failed,
}

/// Where the store's state stood when a transaction read it ([`Tx::mark`]): what a CRL
/// prepared from a snapshot and signed outside the lock is committed against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateMark(Option<String>, Option<String>);

/// Which certificates [`Store::list`] returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this kind.
    pub kind: Option<CertKind>,
    /// Only certificates that are valid and expire within this many days.
    pub expiring_within_days: Option<u32>,
}

impl Store {
    /// Checks that `dir` can take a new store: it does not exist yet (its nearest existing
    /// parent is a directory), or it is an empty directory. Only what an interrupted `init`
    /// leaves (`.vpnca.db.init-…`) may be in it: vpnca never adopts a folder holding files it
    /// did not create, whose names its own files could take. An existing store is
    /// [`Error::AlreadyInitialized`], an easy-rsa PKI [`Error::EasyRsaFolder`] (see
    /// [`crate::easyrsa::recognize`]), anything else in it [`Error::DirNotEmpty`], a path that
    /// is no directory [`Error::OutputPath`]. Nothing is written.
    pub fn check_new_dir(dir: &Path) -> Result<()> {
        if dir.join(DB_FILE).exists() {
            return Err(Error::AlreadyInitialized {
                path: dir.to_path_buf(),
            });
        }
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            // Nothing there (or a dangling link, a file, a device): as an output directory.
            _ => return fsutil::check_output(dir, fsutil::Output::Dir),
        }
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .map_err(Error::io("reading directory", dir))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .map_err(Error::io("reading directory", dir))?;
        found.retain(|n| !n.starts_with(&format!(".{DB_FILE}.init-")));
        if found.is_empty() {
            return Ok(());
        }
        let easyrsa = crate::easyrsa::recognize(dir);
        if !easyrsa.is_empty() {
            return Err(Error::EasyRsaFolder {
                path: dir.to_path_buf(),
                found: easyrsa,
            });
        }
        found.sort();
        const SHOWN: usize = 5;
        if found.len() > SHOWN {
            let more = found.len() - SHOWN;
            found.truncate(SHOWN);
            found.push(format!("and {more} more"));
        }
        Err(Error::DirNotEmpty {
            path: dir.to_path_buf(),
            found,
        })
    }

    /// Creates a new store in `dir`, locked by `pass`. `dir` must not exist or be empty
    /// ([`Store::check_new_dir`]); it is created with its missing parents, and set to mode
    /// 0700 (also when it existed, empty).
    pub fn init(dir: &Path, pass: &Passphrase, kdf: KdfParams) -> Result<Store> {
        pass.check_new()?;
        kdf.check()?;
        Store::check_new_dir(dir)?;
        let db = dir.join(DB_FILE);
        fsutil::create_dir(dir, 0o700)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(Error::io("setting permissions", dir))?;
        let dk: Zeroizing<[u8; 32]> = Zeroizing::new(crypto::random()?);
        let header = Header::new_wrapped(pass, kdf, &dk)?;
        // Build the database under a temporary name, then rename: a store exists completely or not at all.
        let suffix: [u8; 6] = crypto::random()?;
        let tmp = dir.join(format!(".{DB_FILE}.init-{}", crypto::hex(&suffix)));
        let build = || -> Result<()> {
            let conn = Connection::open_with_flags(
                &tmp,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            )
            .map_err(Error::db("creating the store"))?;
            configure(&conn)?;
            conn.execute_batch(&format!("{SCHEMA}{AWS_SCHEMA}{STATE_SCHEMA}"))
                .map_err(Error::db("creating the store"))?;
            let header_json =
                serde_json::to_string(&header).map_err(|e| Error::Crypto(e.to_string()))?;
            let touched = std::cell::RefCell::new(state::Touched::default());
            let tx = Tx::begin(&conn, &touched, "creating the store")?;
            let meta = [
                ("format", FORMAT_VERSION.to_string()),
                ("header", header_json),
                ("created", ts(now()).to_string()),
                ("revocation_digest", crypto::hex(&[0u8; 32])),
                ("revoked_count", "0".into()),
                ("audit_head", String::new()),
                (alike::SETTING, "1".into()),
            ];
            for (k, v) in meta {
                tx.sql()
                    .execute("INSERT INTO meta (k, v) VALUES (?1, ?2)", params![k, v])
                    .map_err(Error::db("creating the store"))?;
            }
            let keys = Keys::from_data_key(dk.clone());
            audit_append(
                &tx,
                &keys,
                "init",
                "",
                "",
                &serde_json::json!({"kdf": header.kdf}),
            )?;
            state::build(&tx, &keys)?;
            tx.commit()?;
            Ok(())
        };
        if let Err(e) = build() {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(Error::io("setting permissions", &tmp))?;
        // Never clobber a store created concurrently: hard-link (fails if the target exists), then drop the temp name.
        let linked = std::fs::hard_link(&tmp, &db);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyInitialized {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io("creating", &db)(e)),
        }
        fsutil::sync_dir(dir);
        fsutil::create_dir(&dir.join("issued"), 0o755)?;
        let mut store = Store::open(dir)?;
        store.advance_checkpoint();
        store.keys = Some(Keys::from_data_key(dk));
        Ok(store)
    }

    /// Opens an existing store (locked).
    pub fn open(dir: &Path) -> Result<Store> {
        let db = dir.join(DB_FILE);
        if !db.is_file() {
            return Err(Error::NotInitialized {
                path: dir.to_path_buf(),
            });
        }
        let conn = Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(Error::db("opening the store"))?;
        configure(&conn)?;
        let schema = check_schema(&conn, &db)?;
        let store = Store {
            dir: dir.to_path_buf(),
            conn,
            keys: None,
            accepting_restore: std::cell::Cell::new(false),
            non_nfc_names: std::cell::OnceCell::new(),
            format: std::cell::Cell::new(schema),
            in_write: std::cell::Cell::new(false),
            write_state: Default::default(),
            no_read_proofs: std::cell::Cell::new(false),
            rewrap: Default::default(),
            outside_checkpoint: None,
            notice: None,
            #[cfg(feature = "aws")]
            kms_client: std::cell::OnceCell::new(),
        };
        let format: Option<String> = store
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'format'", [], |r| r.get(0))
            .optional()
            .map_err(|e| Error::UnsupportedStore {
                path: db.clone(),
                reason: format!("not a readable vpnca database ({e})"),
            })?;
        match format.as_deref() {
            Some(v) if v == schema.to_string() => Ok(store),
            Some(v @ ("1" | "2")) => Err(Error::ForeignSchema {
                path: db,
                what: format!("the tables of format {schema} in a store of format {v}"),
            }),
            Some(v) => Err(Error::UnsupportedStore {
                path: db,
                reason: format!(
                    "format version {v}; this vpnca reads versions 1 (upgraded by the first write) and {FORMAT_VERSION}"
                ),
            }),
            None => Err(Error::UnsupportedStore {
                path: db,
                reason: "no format version".into(),
            }),
        }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether [`Store::unlock`] succeeded.
    pub fn is_unlocked(&self) -> bool {
        self.keys.is_some()
    }

    fn header(&self) -> Result<Header> {
        let v = self
            .meta("header")?
            .ok_or_else(|| corrupt("the store header is missing".into()))?;
        let h: Header = serde_json::from_str(&v)
            .map_err(|e| corrupt(format!("the store header is unreadable ({e})")))?;
        if h.kdf_algorithm != "argon2id" || h.aead != "aes-256-gcm" {
            return Err(Error::UnsupportedStore {
                path: self.dir.join(DB_FILE),
                reason: format!("{} / {}", h.kdf_algorithm, h.aead),
            });
        }
        Ok(h)
    }

    /// The key-derivation parameters in the header.
    pub fn kdf_params(&self) -> Result<KdfParams> {
        Ok(self.header()?.kdf)
    }

    /// Unlocks the store with its passphrase. A wrong passphrase is [`Error::WrongPassphrase`];
    /// nothing is written either way.
    pub fn unlock(&mut self, pass: &Passphrase) -> Result<()> {
        let u = self.header()?.unwrap(pass, self.format.get())?;
        self.keys = Some(Keys::from_data_key(u.data_key));
        *self.rewrap.borrow_mut() = u.rewrap;
        Ok(())
    }

    /// Upgrades a format-1 store to format 2 inside the transaction of its first write (any
    /// command that changes the store, or `verify`): the state tree is built from the tables,
    /// its head recorded, `format` set to 2, and an `upgrade` audit entry written — committed
    /// with the write or not at all, so a command that fails (exit 2) leaves format 1 as it was,
    /// and so does a crash. Only a store that passes every format-1 check is upgraded (the
    /// checkpoint, the audit chain, each record's MAC, the revoked set, the CA chain, the AWS
    /// records): building the state from tampered tables would vouch for them. A store that
    /// fails stays format 1, where the same checks keep refusing what they refuse (and
    /// `verify` names it); once repaired (`verify --accept-restore` after a restore), the next
    /// write upgrades it. Returns whether it upgraded.
    fn upgrade_v1(&self, tx: &Tx<'_>, keys: &Keys) -> Result<bool> {
        let intact = checkpoint::problem(&self.dir, tx.sql())?.is_none()
            && v2_only_meta_keys(tx.sql())?.is_empty()
            && self.check_audit_chain()?.is_empty()
            && query_raw_records(tx.sql(), "1 = 1")?
                .iter()
                .all(|raw| check_record_mac(keys, raw).is_ok())
            && check_revoked_set(tx.sql(), keys).is_ok()
            && self.parent_chain().is_ok();
        #[cfg(feature = "aws")]
        let intact = intact && self.acm_imports().is_ok();
        if !intact {
            return Ok(false);
        }
        tx.sql()
            .execute_batch(&format!("{AWS_SCHEMA}{STATE_SCHEMA}"))
            .map_err(Error::db("upgrading the store"))?;
        tx.sql()
            .execute(
                "UPDATE meta SET v = ?1 WHERE k = 'format'",
                [FORMAT_VERSION.to_string()],
            )
            .map_err(Error::db("upgrading the store"))?;
        audit_append(
            tx,
            keys,
            "upgrade",
            "",
            "",
            &serde_json::json!({"from": 1, "to": FORMAT_VERSION}),
        )?;
        alike::write_all(tx)?;
        state::build(tx, keys)?;
        self.format.set(FORMAT_VERSION);
        Ok(true)
    }

    /// A format-1 store whose audit log records what only format 2 writes (the certification
    /// of a state-signing key, an upgrade to format 2) was format 2: its state was removed
    /// outside vpnca to pass it off as a store without one (a downgrade, which would let the
    /// next write vouch for edits format 1 cannot see). Refused. The header binding
    /// ([`Header::wrap_aad`]) catches this first for every header written since it exists;
    /// this is the check for the older ones.
    fn refuse_downgraded(&self) -> Result<()> {
        if let Some(e) = self
            .audit_log()?
            .iter()
            .find(|e| e.action == "state-key" || e.action == "upgrade")
        {
            return Err(Error::Tampered {
                what: format!(
                    "the database says format 1, but its audit log records `{}` (entry {}), which only a store of format 2 writes: its format-2 state was removed outside vpnca; restore the store from a backup",
                    e.label(),
                    e.seq
                ),
            });
        }
        Ok(())
    }

    /// `verify`'s check of the whole state (format 2): every item the tables hold, re-derived,
    /// against the trusted head, and the tree's nodes against the tree of those items.
    pub(crate) fn state_problems(&self) -> Result<Vec<String>> {
        if self.format.get() < 2 {
            if let Err(Error::Tampered { what }) = self.refuse_downgraded() {
                return Ok(vec![what]);
            }
            return Ok(v2_only_meta_keys(&self.conn)?
                .into_iter()
                .map(|k| format!("the format-1 store holds `{k}` in its header, which only format 2 writes: it was added outside vpnca (the store is not upgraded while it is there)"))
                .collect());
        }
        let _snapshot = self.snapshot()?;
        state::check_all(&self.conn, self.keys()?)
    }

    /// The store format (1 until the first write, or `verify`, upgrades it).
    pub fn format(&self) -> u32 {
        self.format.get()
    }

    /// The state head as the database records it (format 2): `seq:root`, what `--json` output
    /// and the checkpoint carry. Unchecked here; [`Store::verify`] checks it.
    pub fn state_head(&self) -> Result<Option<String>> {
        Ok(state::stored_head(&self.conn)?.map(|h| h.text()))
    }

    pub(crate) fn keys(&self) -> Result<&Keys> {
        self.keys.as_ref().ok_or(Error::Locked)
    }

    /// Changes the passphrase (and optionally the KDF cost): re-wraps the data key. Atomic.
    pub fn change_passphrase(&mut self, new: &Passphrase, kdf: Option<KdfParams>) -> Result<()> {
        new.check_new()?;
        let keys = self.keys()?;
        let kdf = match kdf {
            Some(k) => k,
            None => self.header()?.kdf,
        };
        let header = Header::new_wrapped(new, kdf, &keys.data_key)?;
        let json = serde_json::to_string(&header).map_err(|e| Error::Crypto(e.to_string()))?;
        self.write(|tx, keys| {
            tx.sql()
                .execute("UPDATE meta SET v = ?1 WHERE k = 'header'", params![json])
                .map_err(Error::db("changing the passphrase"))?;
            audit_append(tx, keys, "passwd", "", "", &serde_json::json!({"kdf": kdf}))
        })
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`): all of it commits or none.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx<'_>, &Keys) -> Result<T>) -> Result<T> {
        let keys = self.keys()?;
        let state_key = self.presign_state_key(keys);
        let tx = Tx::begin(&self.conn, &self.write_state, "locking the store")?;
        self.check_checkpoint(tx.sql())?;
        if self.format.get() == 1 {
            self.refuse_downgraded()?;
        }
        let upgraded = self.format.get() == 1 && self.upgrade_v1(&tx, keys)?;
        // A format-2 store made before the look-alike index gets it in the same way.
        if self.format.get() == 2 {
            alike::migrate(&tx, keys)?;
            // A header wrapped before the format binding is re-wrapped bound, in this write.
            if let Some(kek) = self.rewrap.borrow().as_ref() {
                let mut h = self.header()?;
                h.wrap_with(kek, &keys.data_key)?;
                let json = serde_json::to_string(&h).map_err(|e| Error::Crypto(e.to_string()))?;
                tx.sql()
                    .execute("UPDATE meta SET v = ?1 WHERE k = 'header'", params![json])
                    .map_err(Error::db("binding the store header to its format"))?;
            }
        }
        let out = self.write_in(tx, keys, f, state_key);
        if out.is_err() && upgraded {
            // Rolled back with the write: the store is format 1 as it was.
            self.format.set(1);
        }
        if out.is_ok() {
            self.rewrap.borrow_mut().take();
        }
        out
    }

    /// [`Store::write`] once the transaction is open, checked and (if it was due) upgraded.
    fn write_in<T>(
        &self,
        tx: Tx<'_>,
        keys: &Keys,
        f: impl FnOnce(&Tx<'_>, &Keys) -> Result<T>,
        state_key: StateKeyCert,
    ) -> Result<T> {
        if self.format.get() >= 2 {
            let head = state::trusted_head(tx.sql(), keys)?;
            tx.track(head.root, head.seq);
        }
        // Every write ends in rewriting `ca.crt` from the chain: prove it first, so a planted
        // chain certificate stops the command before it changes anything.
        self.parent_chain()?;
        let start_seq = meta_get(tx.sql(), "audit_head")?
            .and_then(|h| h.split_once(':').and_then(|(s, _)| s.parse::<i64>().ok()))
            .unwrap_or(0);
        // Where the new audit entries go after the commit: proven, so that an edit of the file
        // cannot switch the copy off.
        tx.prove(&state::Item::Setting(syslog::SETTING))?;
        let out = {
            // Reads inside the transaction see its own changes, not the state head's: the
            // store's read proofs stand down, the transaction's touches prove instead.
            self.in_write.set(true);
            let out = f(&tx, keys).and_then(|out| {
                self.ensure_state_key(&tx, keys, state_key)?;
                Ok(out)
            });
            self.in_write.set(false);
            out?
        };
        self.record_outside_checkpoint(&tx, keys)?;
        // A store from before the log's public hash chain: the first write that appends to the
        // log starts it, once every entry's MAC checked (O(entries), once). A log that does not
        // check is left without one (`log` says it shows it unverified; `verify` names it).
        if self.format.get() >= 2
            && meta_get(tx.sql(), audit_hash::AUDIT_HASH)?.is_none()
            && audit_seq(tx.sql())? > start_seq
            && self.check_audit_chain()?.is_empty()
        {
            audit_hash::start(&tx)?;
        }
        // Likewise the lists of the AWS records (`state::AWS_LISTS`), by the first write that
        // appends to the log.
        if self.format.get() >= 2
            && meta_get(tx.sql(), state::AWS_LISTS)?.is_none()
            && audit_seq(tx.sql())? > start_seq
        {
            state::start_aws_lists(&tx)?;
        }
        // The public copies this change leads to are written after the commit: their paths are
        // checked now, so that a directory, symbolic link or device where one goes refuses the
        // command before it changes anything (exit 2 after a commit would be a lie).
        self.check_mirror_paths()?;
        state::seal(&tx, keys)?;
        tx.commit()?;
        self.advance_checkpoint();
        self.forward_audit(start_seq);
        Ok(out)
    }

    /// Runs `f` on a read-only transaction (`BEGIN DEFERRED`, rolled back at the end): one
    /// consistent snapshot, read through the same [`Tx`] methods and proofs as a write (against
    /// the trusted head), without holding the store's write lock. What `f` changes is undone.
    /// For work prepared here and committed later by [`Store::write`] if the state has not
    /// moved ([`Tx::mark`], [`Tx::moved_since`]): a CRL signed by KMS outside the lock.
    pub(crate) fn read_tx<T>(&self, f: impl FnOnce(&Tx<'_>, &Keys) -> Result<T>) -> Result<T> {
        let keys = self.keys()?;
        let t = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)
            .map_err(Error::db("reading the store"))?;
        *self.write_state.borrow_mut() = state::Touched::default();
        let tx = Tx {
            t,
            state: &self.write_state,
        };
        if self.format.get() >= 2 {
            let head = state::trusted_head(tx.sql(), keys)?;
            tx.track(head.root, head.seq);
        }
        self.in_write.set(true);
        let out = f(&tx, keys);
        self.in_write.set(false);
        *self.write_state.borrow_mut() = state::Touched::default();
        drop(tx);
        out
    }

    /// Certifies the state-signing key with the CA when the store has none yet and has a CA
    /// that can sign (not expired, not a pending sub-CA): inside every write, so the `ca`
    /// command's own transaction makes it, and an older store gets it at its next write (or
    /// `verify`). Audited (`state-key`).
    ///
    /// A CA whose key is in KMS certifies it before the lock is taken
    /// ([`Store::presign_state_key`]); when KMS could not sign then, the store goes on without
    /// one until a later write (a KMS call must neither hold the lock nor stop a revocation).
    fn ensure_state_key(&self, tx: &Tx<'_>, keys: &Keys, state_key: StateKeyCert) -> Result<()> {
        if self.format.get() < 2 || meta_get(tx.sql(), state::STATE_KEY_CERT)?.is_some() {
            return Ok(());
        }
        if !self.has_ca()? {
            return Ok(());
        }
        let ca = self.ca()?;
        if ca.not_after <= now() {
            return Ok(());
        }
        let der = match state_key {
            StateKeyCert::Failed => return Ok(()),
            StateKeyCert::Signed(der) => {
                // Signed outside the lock by the CA this transaction holds (a CA is never
                // replaced), for this store's state-signing key: checked, not assumed.
                let cert = crate::x509::parse_cert(&der, "the state-signing key's certificate")?;
                let ca_cert = crate::x509::parse_cert(&ca.der, "the CA certificate")?;
                let ours = crate::ca::state_key_spki(&keys.state_public_key()?);
                if !crate::x509::signed_by(&cert, &ca_cert) || cert.public_key().raw != ours {
                    return Err(Error::Tampered {
                        what: "the state-signing key's certificate signed before the store was locked is not for this store's key and CA".into(),
                    });
                }
                der
            }
            StateKeyCert::NotTried => {
                let signer = self.signer()?;
                crate::ca::certify_state_key(&signer, &keys.state_public_key()?)?
            }
        };
        tx.touch(state::Item::StateKey)?;
        meta_set(tx, state::STATE_KEY_CERT, &crypto::hex(&der))?;
        audit_append(
            tx,
            keys,
            "state-key",
            "",
            "",
            &serde_json::json!({
                "certificate_sha256": crypto::hex(&crypto::sha256(&der)),
                "ca": ca.serial.hex(),
            }),
        )
    }

    /// The state-signing key's certificate made before a write locks the store, for a store
    /// that has none yet and whose CA key is in KMS (one `Sign`, which must not hold the lock);
    /// [`StateKeyCert::NotTried`] for everything else, signed inside as before: a local CA key,
    /// a CA made by the write itself, a store that has its certificate.
    fn presign_state_key(&self, keys: &Keys) -> StateKeyCert {
        let due = self.format.get() >= 2
            && matches!(self.meta(state::STATE_KEY_CERT), Ok(None))
            && matches!(self.ca_kms_key(), Ok(Some(_)))
            && self.ca().is_ok_and(|ca| ca.not_after > now());
        if !due {
            return StateKeyCert::NotTried;
        }
        let signed = self
            .signer()
            .and_then(|signer| crate::ca::certify_state_key(&signer, &keys.state_public_key()?));
        match signed {
            Ok(der) => StateKeyCert::Signed(der),
            Err(_) => StateKeyCert::Failed,
        }
    }

    /// Gives the store its state-signing key now if it has none (see `ensure_state_key`), and
    /// upgrades a format-1 store: `verify` calls it once the store checked out intact.
    pub(crate) fn certify_state_key(&self) -> Result<bool> {
        if self.format.get() >= 2 && self.meta(state::STATE_KEY_CERT)?.is_some() {
            return Ok(false);
        }
        self.write(|_, _| Ok(()))?;
        Ok(self.meta(state::STATE_KEY_CERT)?.is_some())
    }

    /// The state-signing key's certificate (DER), if the store has one. Unchecked: see
    /// [`Store::public_state`].
    pub fn state_key_certificate(&self) -> Result<Option<Vec<u8>>> {
        Ok(self
            .meta(state::STATE_KEY_CERT)?
            .and_then(|h| crypto::unhex(&h)))
    }

    /// The state as anyone without the passphrase can check it: `Ok(None)` when the store has
    /// no state-signing key yet (format 1, or no write since this version), else the head
    /// `SEQ:ROOT` and the CA certificate (DER) that vouches for it; [`Error::Tampered`] when
    /// the head's signature or its key's certificate does not check.
    pub fn public_state(&self) -> Result<Option<(String, Vec<u8>)>> {
        let _snapshot = if self.conn.is_autocommit() {
            Some(self.snapshot()?)
        } else {
            None
        };
        Ok(self.public_head()?.map(|p| (p.head.text(), p.ca_der)))
    }

    /// The signed head for readers without the passphrase ([`state::public_head`]), after the
    /// checkpoint: a database older than `vpnca.checkpoint` (a copy put back, a format-1 file
    /// beside a format-2 checkpoint, another store's database) is refused like it is by every
    /// write — the checkpoint is public, and its head is newer than any head an older copy
    /// carries, validly signed or not.
    fn public_head(&self) -> Result<Option<state::PublicHead>> {
        if let Some(what) = checkpoint::problem(&self.dir, &self.conn)? {
            return Err(Error::Tampered { what });
        }
        if self.format.get() < 2 {
            return Ok(None);
        }
        state::public_head(&self.conn)
    }

    /// Whether readers without the passphrase show this store unverified: it has no
    /// state-signing key (yet), but holds something to show — a certificate, a CA, an adopted
    /// profile — so `status` reports it and the other readers warn. (A store just made, with
    /// nothing in it, has nothing to verify.)
    pub fn reads_unverified(&self) -> Result<bool> {
        if self.public_state()?.is_some() {
            return Ok(false);
        }
        let templates: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM meta WHERE k LIKE 'template.%'",
                [],
                |r| r.get(0),
            )
            .map_err(Error::db("reading the header"))?;
        Ok(self.count()? > 0 || templates > 0)
    }

    /// `verify --ca-cert`'s whole-state check without the passphrase: the signed head, then
    /// every item the tables hold re-derived against it. Problems, for people.
    pub(crate) fn public_state_problems(&self) -> Result<Vec<String>> {
        let _snapshot = self.snapshot()?;
        match self.public_head() {
            Ok(Some(p)) => state::check_all_against(&self.conn, &p.head),
            Ok(None) => Ok(vec!["the store has no state-signing key yet, so it cannot be checked without the passphrase: run `vpnca verify` with the passphrase once (it certifies the key)".into()]),
            Err(Error::Tampered { what }) => Ok(vec![what]),
            Err(e) => Err(e),
        }
    }

    /// A read snapshot: everything read until it is dropped comes from one consistent state
    /// (another process's commit in between is not seen). Read-only: dropping it rolls back.
    pub(crate) fn snapshot(&self) -> Result<Snapshot<'_>> {
        self.conn
            .unchecked_transaction()
            .map(Snapshot)
            .map_err(Error::db("reading the store"))
    }

    /// The revoked records, proven against the MAC'd revoked set ([`check_revoked_set`]).
    pub(crate) fn revoked_set(&self, keys: &Keys) -> Result<Vec<RawRecord>> {
        self.proven(&[state::Item::RevokedSet])?;
        check_revoked_set(&self.conn, keys)
    }

    /// SQLite's own check of the file (`PRAGMA integrity_check`, for `verify`): `["ok"]` when
    /// sound. Unlike `quick_check` it also compares every index with its table, so an index page
    /// edited outside vpnca is named here.
    pub(crate) fn engine_check(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(Error::db("checking the database"))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(Error::db("checking the database"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::db("checking the database"))
    }

    /// The unfinished sub-CA request: its name and sealed key.
    pub(crate) fn pending_ca(&self) -> Result<Option<(String, Vec<u8>)>> {
        self.conn
            .query_row(
                "SELECT name, key_blob FROM pending_ca WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(Error::db("reading the pending CA"))
    }

    /// [`Store::check_audit_tail`] inside a write transaction.
    pub(crate) fn check_audit_tail_in(&self, tx: &Tx<'_>, from_seq: i64) -> Result<()> {
        self.check_audit_tail(tx.sql(), from_seq)
    }

    pub(crate) fn meta(&self, k: &str) -> Result<Option<String>> {
        meta_get(&self.conn, k)
    }

    // ---- reading records -------------------------------------------------------------------

    fn query_records(
        &self,
        where_sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<CertRecord>> {
        query_records(&self.conn, where_sql, args)
    }

    /// The certificate with this serial.
    pub fn by_serial(&self, serial: &Serial) -> Result<CertRecord> {
        self.proven(&[state::Item::Cert(serial.hex())])?;
        let v = self.query_records(WHERE_SERIAL, &[&serial.hex()])?;
        self.check_one_row_each(&v)?;
        v.into_iter().next().ok_or_else(|| Error::NotFound {
            what: format!("no certificate with serial {serial}"),
        })
    }

    /// Proves `items` (their values in the tables now) against the trusted state head, in one
    /// read snapshot (format 2): unlocked, the MAC'd head; locked, the head signed by the
    /// state-signing key ([`Store::public_state`]; a store without one yet is read as it is,
    /// and `status` says so). Inside a
    /// write transaction, against the root it started from (what it changed itself was
    /// proven when it was touched).
    pub(crate) fn proven(&self, items: &[state::Item]) -> Result<()> {
        if self.format.get() < 2 || items.is_empty() || self.no_read_proofs.get() {
            return Ok(());
        }
        let Some(keys) = &self.keys else {
            // Locked: against the head the state-signing key signed, if the store has one
            // (without one, readers show what the tables hold; `status` says so).
            let _snapshot = if self.conn.is_autocommit() {
                Some(self.snapshot()?)
            } else {
                None
            };
            if let Some(p) = self.public_head()? {
                for item in items {
                    state::prove(&self.conn, &p.head.root, item)?;
                }
            }
            return Ok(());
        };
        if self.in_write.get() {
            // Inside a write: against the root the transaction started from, except what it
            // changed already (proven when it was touched).
            let st = self.write_state.borrow();
            if let Some(root) = st.root {
                for item in items.iter().filter(|i| !st.items.contains(*i)) {
                    state::prove(&self.conn, &root, item)?;
                }
            }
            return Ok(());
        }
        let _snapshot = if self.conn.is_autocommit() {
            Some(self.snapshot()?)
        } else {
            None
        };
        let head = state::trusted_head(&self.conn, keys)?;
        for item in items {
            state::prove(&self.conn, &head.root, item)?;
        }
        Ok(())
    }

    /// Runs `f` with [`Store::proven`] standing down: for `verify`, which checks the whole
    /// state itself and reports every difference instead of stopping at the first.
    pub(crate) fn without_read_proofs<T>(&self, f: impl FnOnce() -> T) -> T {
        let was = self.no_read_proofs.replace(true);
        let out = f();
        self.no_read_proofs.set(was);
        out
    }

    /// A store setting (CRL policy, CRL number floor), proven against the state.
    pub(crate) fn setting(&self, k: &'static str) -> Result<Option<String>> {
        self.proven(&[state::Item::Setting(k)])?;
        self.meta(k)
    }

    /// The reference to the CA's key in AWS KMS (`None`: the store holds the CA key), proven
    /// against the state like every value a decision reads.
    pub(crate) fn ca_kms_key(&self) -> Result<Option<crate::ca_key::KmsKeyRef>> {
        self.proven(&[state::Item::CaKey])?;
        self.meta(state::CA_KMS_KEY)?
            .map(|t| crate::ca_key::KmsKeyRef::parse(&t))
            .transpose()
    }

    /// Signs with this KMS client when the CA's key is in KMS in the client's region (its
    /// credentials and endpoint; e.g. `ca --kms-key --endpoint-url`). The first call wins.
    #[cfg(feature = "aws")]
    pub fn use_kms(&self, kms: std::sync::Arc<crate::aws::kms::Kms>) {
        let _ = self.kms_client.set(kms);
    }

    /// The client given to [`Store::use_kms`], if any.
    #[cfg(feature = "aws")]
    pub(crate) fn kms_client(&self) -> Option<std::sync::Arc<crate::aws::kms::Kms>> {
        self.kms_client.get().cloned()
    }

    /// The store's KMS client when it is for `region`; else one connected now (credentials
    /// and endpoint from the standard AWS chain, `AWS_ENDPOINT_URL_KMS`), kept as the store's
    /// client when it has none yet, so that everything this process signs goes through one
    /// client and its [`crate::aws::kms::Kms::stats`] count all of it. No call is made here.
    #[cfg(feature = "aws")]
    pub(crate) fn kms_client_for(
        &self,
        region: &str,
    ) -> Result<std::sync::Arc<crate::aws::kms::Kms>> {
        if let Some(k) = self.kms_client().filter(|k| k.region() == region) {
            return Ok(k);
        }
        let k = std::sync::Arc::new(crate::aws::kms::Kms::connect(&crate::aws::AwsOptions {
            region: Some(region.to_string()),
            ..Default::default()
        })?);
        self.use_kms(k.clone());
        Ok(k)
    }

    /// The KMS client that signs for this store's CA, `None` for a CA whose key the store
    /// holds (or no CA). Its [`crate::aws::kms::Kms::stats`] count the requests, throttled
    /// attempts and signatures of this process: what a batch reports.
    #[cfg(feature = "aws")]
    pub fn ca_kms_client(&self) -> Result<Option<std::sync::Arc<crate::aws::kms::Kms>>> {
        if !self.has_ca()? {
            return Ok(None);
        }
        match self.ca_kms_key()? {
            Some(r) => self.kms_client_for(&r.region).map(Some),
            None => Ok(None),
        }
    }

    /// Rewrites the database file (SQLite `VACUUM`) so that no freed page or unused space in
    /// a page keeps deleted data (`ca --move-to-kms`: the sealed CA key, which a page split
    /// long before the move may have left behind). The content does not change.
    #[cfg(feature = "aws")]
    pub(crate) fn compact(&self) -> Result<()> {
        self.conn
            .execute_batch("VACUUM")
            .map_err(Error::db("compacting the store file (VACUUM)"))
    }

    /// Where the CA's key is when it is in AWS KMS (`vpnca ca --kms-key`), proven against the
    /// state; `None` when the store holds the CA key.
    pub fn ca_key_in_kms(&self) -> Result<Option<crate::ca_key::KmsKeyRef>> {
        self.ca_kms_key()
    }

    /// The TOML text of the adopted profile `name` (`vpnca template adopt`), if any: proven
    /// against the state like every value a decision reads.
    pub(crate) fn adopted_template(&self, name: &'static str) -> Result<Option<String>> {
        if self.format.get() < 2 {
            // Adopting is a write, and a write upgrades first: a format-1 store holding an
            // adopted profile was edited (and format 1 could not prove it).
            if let Some(k) = v2_only_meta_keys(&self.conn)?.into_iter().next() {
                return Err(Error::Tampered {
                    what: format!(
                        "the format-1 store holds `{k}` in its header, which only format 2 writes: it was added outside vpnca"
                    ),
                });
            }
        }
        self.proven(&[state::Item::Template(name)])?;
        self.meta(&state::template_key(name))
    }

    /// Every certificate with this name, newest first. The name is compared in NFC: `Jose`
    /// + U+0301 finds `José`, also a `José` an older store kept in NFD.
    pub fn by_name(&self, name: &str) -> Result<Vec<CertRecord>> {
        let sp = self.spellings(name)?;
        let mut v = match sp.as_slice() {
            [one] => self.query_records(WHERE_NAME, &[one])?,
            _ => {
                let a = spelling_args(&sp);
                self.query_records(WHERE_NAMES, &[&a[0], &a[1], &a[2], &a[3]])?
            }
        };
        v.reverse();
        let mut items: Vec<state::Item> = sp.into_iter().map(state::Item::Name).collect();
        items.extend(v.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(&v)?;
        Ok(v)
    }

    /// The stored spellings of `name`: its NFC form, and the stored names that are not in NFC
    /// but canonically equivalent to it (at most four in all).
    fn spellings(&self, name: &str) -> Result<Vec<String>> {
        let nfc = crate::name::nfc(name);
        let legacy = match self.non_nfc_names.get() {
            Some(v) => v,
            None => {
                let v = self
                    .string_column(SQL_NON_ASCII_NAMES, &[])?
                    .into_iter()
                    .filter(|n| !crate::name::is_nfc(n))
                    .collect();
                self.non_nfc_names.get_or_init(|| v)
            }
        };
        let mut out = vec![nfc.clone()];
        out.extend(
            legacy
                .iter()
                .filter(|n| crate::name::nfc(n) == nfc)
                .take(3)
                .cloned(),
        );
        Ok(out)
    }

    /// The first column of a query's rows, as text.
    fn string_column(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached(sql)
            .map_err(Error::db("reading names"))?;
        let rows = st
            .query_map(args, |r| r.get::<_, String>(0))
            .map_err(Error::db("reading names"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::db("reading names"))
    }

    /// Every certificate name in the store but the CA's, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        self.string_column(SQL_NAMES, &[])
    }

    /// The names that have a live (unrevoked, unexpired) certificate, sorted.
    pub fn live_names(&self) -> Result<Vec<String>> {
        self.string_column(SQL_LIVE_NAMES, &[&ts(now())])
    }

    /// "No certificate named NAME", with the stored names it may have meant
    /// ([`crate::name::suggestions`]).
    pub fn no_such_name(&self, name: &str) -> Error {
        let hint = self
            .did_you_mean(name)
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        Error::NotFound {
            what: format!("no certificate named {}{hint}", crate::shell::quote(name)),
        }
    }

    /// `did you mean alice?` for a name that is not in the store, if a stored name is near
    /// ([`crate::name::suggestions`]).
    pub fn did_you_mean(&self, name: &str) -> Option<String> {
        let known = self.names().ok()?;
        let near = crate::name::suggestions(name, known.iter().map(String::as_str));
        (!near.is_empty()).then(|| {
            format!(
                "did you mean {}?",
                near.iter()
                    .map(|n| crate::shell::quote(n))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
    }

    /// The certificate a name refers to: the live one, else the newest.
    pub fn current(&self, name: &str) -> Result<CertRecord> {
        let all = self.by_name(name)?;
        let t = now();
        let pick = all.iter().position(|r| r.is_live(t)).unwrap_or(0);
        all.into_iter()
            .nth(pick)
            .ok_or_else(|| self.no_such_name(name))
    }

    /// Every revoked certificate record (the CRL's entries to be), oldest first. The records'
    /// MACs are not checked here (that needs the store unlocked: see `verify`).
    pub fn revoked(&self) -> Result<Vec<CertRecord>> {
        self.query_records(WHERE_REVOKED, &[])
    }

    /// Each record is the one row its serial leads to (the row the proof of
    /// [`state::Item::Cert`] reads): a second row with a record's serial, planted in the table
    /// outside vpnca and reached through another index, is refused instead of being used with
    /// the proof of the real one.
    fn check_one_row_each(&self, recs: &[CertRecord]) -> Result<()> {
        if self.format.get() < 2 || self.no_read_proofs.get() {
            return Ok(());
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in recs {
            let id: Option<i64> = self
                .conn
                .query_row(SQL_ID_BY_SERIAL, [r.serial.hex()], |row| row.get(0))
                .optional()
                .map_err(Error::db("reading certificates"))?;
            if !seen.insert(r.serial.hex()) || id != Some(r.id) {
                return Err(Error::Tampered {
                    what: format!(
                        "the table holds more than one row for certificate {} ({}): a row was planted outside vpnca",
                        r.serial,
                        crate::shell::printable(&r.name)
                    ),
                });
            }
        }
        Ok(())
    }

    /// The live certificate with this name, if any.
    pub fn live(&self, name: &str) -> Result<Option<CertRecord>> {
        let t = ts(now());
        let sp = self.spellings(name)?;
        let live = match sp.as_slice() {
            [one] => self.query_records(WHERE_LIVE, &[one, &t])?,
            _ => {
                let a = spelling_args(&sp);
                self.query_records(WHERE_LIVE_NAMES, &[&a[0], &a[1], &a[2], &a[3], &t])?
            }
        }
        .pop();
        let mut items: Vec<state::Item> = sp.into_iter().map(state::Item::Name).collect();
        items.extend(live.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(live.as_slice())?;
        Ok(live)
    }

    /// The live certificate of exactly this spelling of a name: each spelling has its own
    /// public mirror (`issued/NAME.crt`).
    pub(crate) fn live_spelled(&self, name: &str) -> Result<Option<CertRecord>> {
        let live = self.query_records(WHERE_LIVE, &[&name, &ts(now())])?.pop();
        let mut items = vec![state::Item::Name(name.to_string())];
        items.extend(live.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(live.as_slice())?;
        Ok(live)
    }

    /// The CA certificate record.
    pub fn ca(&self) -> Result<CertRecord> {
        let ca = self.query_records(WHERE_CA, &[])?.pop();
        let mut items = vec![state::Item::Ca];
        items.extend(ca.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(ca.as_slice())?;
        ca.ok_or(Error::NoCa)
    }

    /// Whether the store has a CA.
    pub fn has_ca(&self) -> Result<bool> {
        Ok(self
            .conn
            .query_row(SQL_HAS_CA, [], |r| r.get::<_, i64>(0))
            .map_err(Error::db("reading"))?
            > 0)
    }

    /// The parents of a sub-CA (issuer first, root last); empty for a root CA.
    ///
    /// The `chain` table carries no MAC, so the chain is proven instead: each certificate must
    /// be a CA that signed the one before it, starting from the store's CA certificate (its
    /// record's MAC checked when the store is unlocked). A certificate added by someone who can
    /// write the file (a foreign CA that would then go into `ca.crt`, every export, profile,
    /// `.p12` and the ACM chain) signed nothing before it: [`Error::Tampered`].
    pub fn parent_chain(&self) -> Result<Vec<Vec<u8>>> {
        let chain = {
            let mut st = self
                .conn
                .prepare("SELECT der FROM chain ORDER BY pos")
                .map_err(Error::db("reading the chain"))?;
            let rows = st
                .query_map([], |r| r.get(0))
                .map_err(Error::db("reading the chain"))?;
            rows.collect::<rusqlite::Result<Vec<Vec<u8>>>>()
                .map_err(Error::db("reading the chain"))?
        };
        self.proven(&[state::Item::Chain])?;
        if chain.is_empty() {
            return Ok(chain);
        }
        let bad = |what: String| Error::Tampered {
            what: format!("the CA chain stored with the CA {what} (edited outside vpnca)"),
        };
        let ca = self.ca().map_err(|_| bad("exists without a CA".into()))?;
        if let Some(keys) = &self.keys {
            check_record_mac(keys, &self.raw(&ca.serial)?)?;
        }
        let mut child = ca.der;
        for (i, der) in chain.iter().enumerate() {
            let pos = i + 1;
            let parent = crate::x509::parse_cert(der, "a certificate of the CA chain")
                .map_err(|_| bad(format!("has an unreadable certificate at position {pos}")))?;
            let c = crate::x509::parse_cert(&child, "the CA chain")?;
            let is_ca = parent
                .basic_constraints()
                .ok()
                .flatten()
                .is_some_and(|b| b.value.ca);
            if !is_ca || !crate::x509::signed_by(&c, &parent) {
                return Err(bad(format!(
                    "has a certificate at position {pos} ({}) that did not sign the one before it",
                    parent.subject()
                )));
            }
            child = der.clone();
        }
        Ok(chain)
    }

    /// The CA certificate followed by its parents: what `ca.crt` holds and every export carries.
    pub fn ca_chain(&self) -> Result<Vec<Vec<u8>>> {
        let mut v = vec![self.ca()?.der];
        v.extend(self.parent_chain()?);
        Ok(v)
    }

    /// The CA chain in PEM.
    pub fn ca_chain_pem(&self) -> Result<String> {
        let chain = self.ca_chain()?;
        Ok(crate::pem::encode_many(
            "CERTIFICATE",
            chain.iter().map(|d| d.as_slice()),
        ))
    }

    /// Certificates matching `filter`, oldest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<CertRecord>> {
        let all = match filter.kind {
            Some(k) => self.query_records("kind = ?1", &[&k.as_str()])?,
            None => self.query_records("1 = 1", &[])?,
        };
        let t = now();
        let horizon = filter
            .expiring_within_days
            .map(|d| t + time::Duration::days(i64::from(d.min(crate::profile::MAX_DAYS))));
        Ok(all
            .into_iter()
            .filter(|r| filter.status.is_none_or(|s| r.status(t) == s))
            .filter(|r| horizon.is_none_or(|h| r.status(t) == Status::Valid && r.not_after <= h))
            .collect())
    }

    /// The number of certificate records.
    pub fn count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM certs", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(Error::db("counting"))
    }

    /// For tests: SQLite's `EXPLAIN QUERY PLAN` of each certificate lookup on the issue /
    /// revoke / show / CRL paths, as `(query name, plan lines joined by " | ")`. The plans are
    /// computed from the same SQL those paths run (parameters unbound), so a test can prove
    /// that none of them scans the certificates table; the names starting `scan:` scan the
    /// `certs_name` index by design (one per command). Not part of the stable API.
    #[doc(hidden)]
    pub fn hot_query_plans(&self) -> Result<Vec<(&'static str, String)>> {
        let explain = |sql: &str| -> rusqlite::Result<String> {
            let mut st = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let unbound = std::iter::repeat_n(rusqlite::types::Null, st.parameter_count());
            let rows = st.query_map(rusqlite::params_from_iter(unbound), |r| {
                r.get::<_, String>(3)
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join(" | "))
        };
        hot_queries()
            .into_iter()
            .map(|(name, sql)| {
                explain(&sql)
                    .map(|plan| (name, plan))
                    .map_err(Error::db("explaining a query"))
            })
            .collect()
    }

    pub(crate) fn raw(&self, serial: &Serial) -> Result<RawRecord> {
        raw_record(&self.conn, serial)
    }

    /// Decrypts the private key of a certificate, checking the record's MAC first.
    /// Inside a write the checkpoint was checked when the transaction began, before it changed
    /// anything (checking it again would compare the checkpoint with uncommitted entries).
    pub(crate) fn private_key(&self, rec: &CertRecord) -> Result<SecretKeyDer> {
        if !self.in_write.get() {
            self.check_checkpoint(&self.conn)?;
        }
        self.proven(&[state::Item::Cert(rec.serial.hex())])?;
        self.private_key_unguarded(rec)
    }

    /// [`Store::private_key`] without the checkpoint guard, for `verify`, which reports an
    /// older database once rather than on every key.
    pub(crate) fn private_key_unguarded(&self, rec: &CertRecord) -> Result<SecretKeyDer> {
        let keys = self.keys()?;
        let raw = self.raw(&rec.serial)?;
        check_record_mac(keys, &raw)?;
        let blob = raw.key_blob.ok_or_else(|| Error::NotFound {
            what: format!(
                "the store has no private key for {} (serial {}): it was signed from a CSR",
                rec.name, rec.serial
            ),
        })?;
        let der = keys
            .open(&key_aad(&rec.serial, &raw.rec.der), &blob)
            .ok_or_else(|| Error::Tampered {
                what: format!(
                    "the private key blob of {} (serial {}) does not decrypt for its record",
                    rec.name, rec.serial
                ),
            })?;
        Ok(SecretKeyDer::new(der.to_vec()))
    }

    // ---- mirrors ---------------------------------------------------------------------------

    /// Path of the public mirror of a certificate name.
    pub fn issued_path(&self, name: &str) -> PathBuf {
        self.dir.join("issued").join(format!("{name}.crt"))
    }

    /// Path of `crl.pem`.
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// Path of `ca.crt`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The public copies a write goes on to update — `ca.crt`, `crl.pem`, the `issued` folder
    /// and `issued/NAME.crt` of each name the write touched — are each nothing or what vpnca
    /// writes there (a regular file; a real directory for `issued`). A symbolic link there
    /// would send vpnca's writes and deletions elsewhere; a directory or device would fail them
    /// after the commit. [`Error::OutputPath`], before anything changed.
    fn check_mirror_paths(&self) -> Result<()> {
        use fsutil::PathKind;
        let refuse = |path: &Path, kind: PathKind| Error::OutputPath {
            path: path.to_path_buf(),
            reason: format!(
                "vpnca keeps a public copy there, but it is {}: move it away and run the command again (nothing was changed)",
                kind.describe()
            ),
        };
        for path in [self.ca_path(), self.crl_path()] {
            match PathKind::of(&path)? {
                PathKind::Missing | PathKind::File => {}
                k => return Err(refuse(&path, k)),
            }
        }
        let issued = self.dir.join("issued");
        match PathKind::of(&issued)? {
            PathKind::Missing => return Ok(()),
            PathKind::Dir => {}
            k => return Err(refuse(&issued, k)),
        }
        let mut names = std::collections::BTreeSet::new();
        for item in self.write_state.borrow().items.iter() {
            match item {
                state::Item::Name(n) => {
                    names.insert(n.clone());
                }
                // A revocation or supersession touches the record only.
                state::Item::Cert(serial) => {
                    if let Some(n) = self
                        .conn
                        .query_row(SQL_NAME_BY_SERIAL, [serial], |r| r.get::<_, String>(0))
                        .optional()
                        .map_err(Error::db("reading certificates"))?
                    {
                        names.insert(n);
                    }
                }
                _ => {}
            }
        }
        for n in names {
            let path = self.issued_path(&n);
            match PathKind::of(&path)? {
                PathKind::Missing | PathKind::File => {}
                k => return Err(refuse(&path, k)),
            }
        }
        Ok(())
    }

    /// Brings the mirror of `name` in line with the store (written when live, removed if not).
    /// Returns whether anything changed.
    pub(crate) fn sync_name_mirror(&self, name: &str) -> Result<bool> {
        let path = self.issued_path(name);
        let current = std::fs::read(&path).ok();
        match self.live_spelled(name)? {
            Some(rec) => {
                let pem = rec.pem();
                if current.as_deref() == Some(pem.as_bytes()) {
                    return Ok(false);
                }
                fsutil::create_dir(&self.dir.join("issued"), 0o755)?;
                fsutil::write_atomic(&path, pem.as_bytes(), 0o644)?;
                Ok(true)
            }
            None if current.is_some() => {
                std::fs::remove_file(&path).map_err(Error::io("removing", &path))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// [`Self::sync_name_mirror`] for many names, with one directory sync at the end instead
    /// of one per file (mirrors are public copies that `verify` repairs; batches write
    /// thousands).
    pub(crate) fn sync_mirrors_batch<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<()> {
        let dir = self.dir.join("issued");
        fsutil::create_dir(&dir, 0o755)?;
        let mut changed = false;
        for name in names {
            let path = self.issued_path(name);
            let current = std::fs::read(&path).ok();
            match self.live_spelled(name)? {
                Some(rec) => {
                    let pem = rec.pem();
                    if current.as_deref() != Some(pem.as_bytes()) {
                        fsutil::replace_unsynced(&path, pem.as_bytes(), 0o644)?;
                        changed = true;
                    }
                }
                None if current.is_some() => {
                    std::fs::remove_file(&path).map_err(Error::io("removing", &path))?;
                    changed = true;
                }
                None => {}
            }
        }
        if changed {
            fsutil::sync_dir(&dir);
        }
        Ok(())
    }

    /// Brings `ca.crt` and `crl.pem` in line with the store. Returns the files rewritten.
    pub(crate) fn sync_global_mirrors(&self) -> Result<Vec<PathBuf>> {
        let mut changed = Vec::new();
        if self.has_ca()? {
            let pem = self.ca_chain_pem()?;
            if std::fs::read(self.ca_path()).ok().as_deref() != Some(pem.as_bytes()) {
                fsutil::write_atomic(&self.ca_path(), pem.as_bytes(), 0o644)?;
                changed.push(self.ca_path());
            }
        }
        if let Some(crl) = self.latest_crl()? {
            let pem = crate::pem::encode("X509 CRL", &crl.der);
            if std::fs::read(self.crl_path()).ok().as_deref() != Some(pem.as_bytes()) {
                fsutil::write_atomic(&self.crl_path(), pem.as_bytes(), 0o644)?;
                changed.push(self.crl_path());
            }
        }
        Ok(changed)
    }
}

/// The `meta` keys only format 2 writes (an adopted profile, the state head, its signature,
/// the state-signing key's certificate, the audit hash chain, the AWS lists' marker, the
/// deferred-CRL record, the look-alike index): in a format-1 store they were
/// put there from outside, and the upgrade must not vouch for them.
fn v2_only_meta_keys(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn
        .prepare(
            &format!("SELECT k FROM meta WHERE k LIKE 'template.%' OR k IN ('state_head', 'state_sig', 'state_key_cert', 'audit_hash', 'aws_lists', 'crl_deferred') OR {} ORDER BY k", alike::WHERE_META),
        )
        .map_err(Error::db("reading the header"))?;
    st.query_map([], |r| r.get::<_, String>(0))
        .map_err(Error::db("reading the header"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(Error::db("reading the header"))
}

/// The sequence number of the last audit entry (`meta.audit_head`; 0 for none).
fn audit_seq(conn: &Connection) -> Result<i64> {
    Ok(meta_get(conn, "audit_head")?
        .and_then(|h| h.split_once(':').and_then(|(s, _)| s.parse::<i64>().ok()))
        .unwrap_or(0))
}

pub(crate) fn meta_get(conn: &Connection, k: &str) -> Result<Option<String>> {
    conn.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
        .optional()
        .map_err(Error::db("reading the header"))
}

pub(crate) fn meta_set(tx: &Tx<'_>, k: &str, v: &str) -> Result<()> {
    if let Some(setting) = state::SETTINGS.iter().find(|s| **s == k) {
        tx.touch(state::Item::Setting(setting))?;
    } else if k == "revocation_digest" || k == "revoked_count" {
        tx.touch(state::Item::RevokedSet)?;
    } else if k == state::CA_KMS_KEY {
        tx.touch(state::Item::CaKey)?;
    }
    tx.sql()
        .execute(
            "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            params![k, v],
        )
        .map_err(Error::db("writing the header"))?;
    Ok(())
}

pub(crate) fn query_records(
    conn: &Connection,
    where_sql: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Vec<CertRecord>> {
    let mut st = conn
        .prepare_cached(&records_sql(where_sql))
        .map_err(Error::db("reading certificates"))?;
    let rows = st
        .query_map(args, row_to_record)
        .map_err(Error::db("reading certificates"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(
            r.map_err(Error::db("reading certificates"))?
                .map_err(corrupt)?,
        );
    }
    Ok(out)
}

/// Records with their key blob and MAC, in one query (the CRL path reads 20,000 at once).
pub(crate) fn query_raw_records(conn: &Connection, where_sql: &str) -> Result<Vec<RawRecord>> {
    let mut st = conn
        .prepare_cached(&raw_records_sql(where_sql))
        .map_err(Error::db("reading certificates"))?;
    let rows = st
        .query_map([], |row| {
            Ok((
                row_to_record(row)?,
                row.get::<_, Option<Vec<u8>>>(14)?,
                row.get::<_, Vec<u8>>(15)?,
            ))
        })
        .map_err(Error::db("reading certificates"))?;
    let mut out = Vec::new();
    for r in rows {
        let (rec, key_blob, mac) = r.map_err(Error::db("reading certificates"))?;
        out.push(RawRecord {
            rec: rec.map_err(corrupt)?,
            key_blob,
            mac,
        });
    }
    Ok(out)
}

pub(crate) fn raw_record(conn: &Connection, serial: &Serial) -> Result<RawRecord> {
    let rec = query_records(conn, WHERE_SERIAL, &[&serial.hex()])?
        .pop()
        .ok_or_else(|| Error::NotFound {
            what: format!("no certificate with serial {serial}"),
        })?;
    let (key_blob, mac): (Option<Vec<u8>>, Vec<u8>) = conn
        .query_row(SQL_KEY_BLOB, [rec.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(Error::db("reading certificates"))?;
    Ok(RawRecord { rec, key_blob, mac })
}

/// Associated data binding a key blob to its certificate.
pub(crate) fn key_aad(serial: &Serial, der: &[u8]) -> Vec<u8> {
    format!(
        "vpnca/key/v1|{}|{}",
        serial.hex(),
        crypto::hex(&crypto::sha256(der))
    )
    .into_bytes()
}

fn opt_ts(t: Option<OffsetDateTime>) -> String {
    t.map(|t| ts(t).to_string()).unwrap_or_default()
}

pub(crate) fn record_mac(keys: &Keys, rec: &CertRecord, key_blob: Option<&[u8]>) -> Vec<u8> {
    keys.mac(
        &record_fields(rec, key_blob)
            .iter()
            .map(|v| v.as_slice())
            .collect::<Vec<_>>(),
    )
}

fn record_fields(rec: &CertRecord, key_blob: Option<&[u8]>) -> Vec<Vec<u8>> {
    vec![
        b"cert-v1".to_vec(),
        rec.serial.hex().into_bytes(),
        rec.name.as_bytes().to_vec(),
        rec.kind.as_str().as_bytes().to_vec(),
        rec.profile.as_bytes().to_vec(),
        rec.state.as_str().as_bytes().to_vec(),
        ts(rec.not_before).to_string().into_bytes(),
        ts(rec.not_after).to_string().into_bytes(),
        opt_ts(rec.revoked_at).into_bytes(),
        rec.reason
            .map(|r| r.as_str())
            .unwrap_or("")
            .as_bytes()
            .to_vec(),
        rec.superseded_by
            .as_ref()
            .map(|s| s.hex())
            .unwrap_or_default()
            .into_bytes(),
        ts(rec.created_at).to_string().into_bytes(),
        crypto::sha256(&rec.der),
        key_blob.map(crypto::sha256).unwrap_or_default(),
    ]
}

pub(crate) fn check_record_mac(keys: &Keys, raw: &RawRecord) -> Result<()> {
    let fields = record_fields(&raw.rec, raw.key_blob.as_deref());
    if keys.mac_ok(
        &fields.iter().map(|v| v.as_slice()).collect::<Vec<_>>(),
        &raw.mac,
    ) {
        Ok(())
    } else {
        Err(Error::Tampered {
            what: format!(
                "the record of {} (serial {}) was modified outside vpnca",
                raw.rec.name, raw.rec.serial
            ),
        })
    }
}

/// Inserts a new certificate record (inside a write transaction).
pub(crate) fn insert_record(tx: &Tx<'_>, keys: &Keys, n: NewRecord<'_>) -> Result<CertRecord> {
    let key_blob = match n.key {
        Some(k) => Some(keys.seal(&key_aad(n.serial, n.der), k.expose())?),
        None => None,
    };
    let mut rec = CertRecord {
        serial: n.serial.clone(),
        name: n.name.to_string(),
        kind: n.kind,
        profile: n.profile.to_string(),
        state: CertState::Valid,
        not_before: n.not_before,
        not_after: n.not_after,
        revoked_at: None,
        reason: None,
        superseded_by: None,
        has_key: key_blob.is_some(),
        created_at: now(),
        der: n.der.to_vec(),
        id: 0,
    };
    let mac = record_mac(keys, &rec, key_blob.as_deref());
    tx.touch(state::Item::Cert(rec.serial.hex()))?;
    if rec.kind == CertKind::Ca {
        tx.touch(state::Item::Ca)?;
    } else {
        tx.touch(state::Item::Name(rec.name.clone()))?;
        alike::add(tx, &rec.name)?;
    }
    tx.sql().execute(
        "INSERT INTO certs (serial, name, kind, profile, state, not_before, not_after, created_at, cert_der, key_blob, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            rec.serial.hex(),
            rec.name,
            rec.kind.as_str(),
            rec.profile,
            rec.state.as_str(),
            ts(rec.not_before),
            ts(rec.not_after),
            ts(rec.created_at),
            rec.der,
            key_blob,
            mac
        ],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            Error::Crypto(format!("serial {} is already in use (random serial collision)", rec.serial))
        }
        e => Error::db("recording the certificate")(e),
    })?;
    rec.id = tx.sql().last_insert_rowid();
    Ok(rec)
}

/// Rewrites the mutable fields (state, revocation, superseded_by) of a record, with a new MAC.
/// The existing MAC is checked first: a tampered record is never "laundered" by an update.
pub(crate) fn update_record(tx: &Tx<'_>, keys: &Keys, rec: &CertRecord) -> Result<()> {
    tx.touch(state::Item::Cert(rec.serial.hex()))?;
    let raw = raw_record(tx.sql(), &rec.serial)?;
    check_record_mac(keys, &raw)?;
    let mac = record_mac(keys, rec, raw.key_blob.as_deref());
    tx.sql()
        .execute(
            SQL_UPDATE_RECORD,
            params![
                rec.state.as_str(),
                rec.revoked_at.map(ts),
                rec.reason.map(|r| r.as_str()),
                rec.superseded_by.as_ref().map(|s| s.hex()),
                mac,
                raw.rec.id
            ],
        )
        .map_err(Error::db("updating the certificate"))?;
    Ok(())
}

/// The per-serial token XOR-ed into the revocation digest.
pub(crate) fn revocation_token(keys: &Keys, serial: &Serial) -> Vec<u8> {
    keys.mac(&[b"revoked-v1", serial.hex().as_bytes()])
}

/// Adds a serial to the MAC-protected set of revoked serials (digest and count).
pub(crate) fn add_revoked(tx: &Tx<'_>, keys: &Keys, serial: &Serial) -> Result<()> {
    let mut digest = crypto::unhex(&meta_get(tx.sql(), "revocation_digest")?.unwrap_or_default())
        .filter(|d| d.len() == 32)
        .ok_or_else(|| corrupt("the revocation digest is unreadable".into()))?;
    for (d, t) in digest.iter_mut().zip(revocation_token(keys, serial)) {
        *d ^= t;
    }
    let count: u64 = meta_get(tx.sql(), "revoked_count")?
        .unwrap_or_default()
        .parse()
        .map_err(|_| corrupt("the revoked count is unreadable".into()))?;
    let count = count
        .checked_add(1)
        .ok_or_else(|| corrupt("the revoked count is out of range".into()))?;
    meta_set(tx, "revocation_digest", &crypto::hex(&digest))?;
    meta_set(tx, "revoked_count", &count.to_string())?;
    let mac = keys.mac(&[b"revset-v1", &digest, count.to_string().as_bytes()]);
    meta_set(tx, "revocation_mac", &crypto::hex(&mac))
}

/// Checks that the revoked records in the store are exactly the set the digest vouches for,
/// each with an intact MAC. Detects a revoked certificate edited back to valid, or deleted.
pub(crate) fn check_revoked_set(conn: &Connection, keys: &Keys) -> Result<Vec<RawRecord>> {
    let raws = query_raw_records(conn, WHERE_REVOKED)?;
    let mut digest = vec![0u8; 32];
    for raw in &raws {
        check_record_mac(keys, raw)?;
        for (d, t) in digest
            .iter_mut()
            .zip(revocation_token(keys, &raw.rec.serial))
        {
            *d ^= t;
        }
    }
    let stored = crypto::unhex(&meta_get(conn, "revocation_digest")?.unwrap_or_default())
        .unwrap_or_default();
    let count: u64 = meta_get(conn, "revoked_count")?
        .unwrap_or_default()
        .parse()
        .unwrap_or(u64::MAX);
    let ok_count = count == raws.len() as u64;
    let mac_ok = if count == 0 {
        stored == vec![0u8; 32]
    } else {
        let mac = crypto::unhex(&meta_get(conn, "revocation_mac")?.unwrap_or_default())
            .unwrap_or_default();
        keys.mac_ok(&[b"revset-v1", &stored, count.to_string().as_bytes()], &mac)
    };
    if !(ok_count && mac_ok && stored == digest) {
        return Err(Error::Tampered {
            what: format!(
                "the set of revoked certificates does not match its checksum ({} revoked records found, {} expected): a revocation was undone or deleted outside vpnca",
                raws.len(),
                if count == u64::MAX {
                    "?".to_string()
                } else {
                    count.to_string()
                }
            ),
        });
    }
    Ok(raws)
}

// ---- audit log -------------------------------------------------------------------------------

/// One audit-log entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// Sequence number, from 1, without gaps.
    pub seq: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The OS user who ran the command.
    pub user: String,
    /// What happened (init, ca, issue, sign-req, revoke, renew, crl, export, passwd, …).
    pub action: String,
    /// The certificate name involved, if any.
    pub name: String,
    /// The serial involved, if any.
    pub serial: String,
    /// Details (JSON).
    pub detail: serde_json::Value,
    #[serde(skip)]
    pub(crate) mac: Vec<u8>,
    #[serde(skip)]
    pub(crate) detail_text: String,
}

impl AuditEntry {
    /// The action, and the name when there is one (`revoke alice`, `crl`), printable: how
    /// problems name an entry.
    fn label(&self) -> String {
        let text = if self.name.is_empty() {
            self.action.clone()
        } else {
            format!("{} {}", self.action, self.name)
        };
        crate::shell::printable(&text).into_owned()
    }
}

fn audit_fields(prev: &[u8], e: &AuditEntry) -> Vec<Vec<u8>> {
    vec![
        b"audit-v1".to_vec(),
        prev.to_vec(),
        e.seq.to_string().into_bytes(),
        ts(e.time).to_string().into_bytes(),
        e.user.as_bytes().to_vec(),
        e.action.as_bytes().to_vec(),
        e.name.as_bytes().to_vec(),
        e.serial.as_bytes().to_vec(),
        e.detail_text.as_bytes().to_vec(),
    ]
}

/// The position in `log` (the whole audit log, in order) of the last `rekey` entry whose MAC
/// checks under `keys` (chained on the entry before it): where the entries MAC'd under this
/// key begin. `None` when the store was never re-keyed (or not under this key).
fn rekey_entry(keys: &Keys, log: &[AuditEntry]) -> Option<usize> {
    (1..log.len()).rev().find(|&i| {
        let e = &log[i];
        e.action == rekey::ACTION && {
            let f = audit_fields(&log[i - 1].mac, e);
            keys.mac_ok(&f.iter().map(|v| v.as_slice()).collect::<Vec<_>>(), &e.mac)
        }
    })
}

/// Appends an entry to the chained audit log (inside a write transaction).
pub(crate) fn audit_append(
    tx: &Tx<'_>,
    keys: &Keys,
    action: &str,
    name: &str,
    serial: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    let head = meta_get(tx.sql(), "audit_head")?.unwrap_or_default();
    let (prev_seq, prev_mac) = match head.split_once(':') {
        Some((s, m)) => (
            s.parse::<i64>()
                .map_err(|_| corrupt("the audit head is unreadable".into()))?,
            crypto::unhex(m).unwrap_or_default(),
        ),
        None => (0, Vec::new()),
    };
    let seq = prev_seq
        .checked_add(1)
        .filter(|s| *s > 0)
        .ok_or_else(|| corrupt("the audit head is out of range".into()))?;
    let detail_text = detail.to_string();
    let mut e = AuditEntry {
        seq,
        time: now(),
        user: os_user(),
        action: action.into(),
        name: name.into(),
        serial: serial.into(),
        detail: detail.clone(),
        mac: Vec::new(),
        detail_text,
    };
    let f = audit_fields(&prev_mac, &e);
    e.mac = keys.mac(&f.iter().map(|v| v.as_slice()).collect::<Vec<_>>());
    tx.sql().execute(
        "INSERT INTO audit (seq, time, user, action, name, serial, detail, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![e.seq, ts(e.time), e.user, e.action, e.name, e.serial, e.detail_text, e.mac],
    )
    .map_err(Error::db("writing the audit log"))?;
    audit_hash::extend(tx, &prev_mac, &e)?;
    meta_set(
        tx,
        "audit_head",
        &format!("{}:{}", e.seq, crypto::hex(&e.mac)),
    )
}

impl Store {
    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        audit_entries_from(&self.conn, 0)
    }

    /// Checks the audit entries from `from_seq` to the head (inside a write transaction, on
    /// `conn`): each entry's MAC over its content and its predecessor's MAC, no gap, and the
    /// head recorded in `meta` at the last one. O(entries since `from_seq`): the checkpoint
    /// guard runs it from the checkpointed entry, usually the head itself. Catches an entry
    /// forged to match the checkpoint (its MAC copied from the checkpoint file, on an older
    /// database): its MAC does not cover its content after its predecessor.
    pub(crate) fn check_audit_tail(&self, conn: &Connection, from_seq: i64) -> Result<()> {
        let keys = self.keys()?;
        let bad = |what: String| Error::Tampered {
            what: format!("audit log: {what} (the database was edited or put back outside vpnca)"),
        };
        // The head first, then the entries up to it: outside a transaction (`private_key` runs
        // the guard on the plain connection) other processes may append meanwhile, and what
        // they append after the head read is not looked at. The checkpoint `from_seq` was read
        // before the head, so the head is at least there.
        let head = meta_get(conn, "audit_head")?.unwrap_or_default();
        let head_seq = head
            .split_once(':')
            .and_then(|(s, _)| s.parse::<i64>().ok())
            .ok_or_else(|| bad("the head is unreadable".into()))?;
        // A rekey after the checkpointed entry: the entries before it are MAC'd under the old
        // key and are checked against the digest the `rekey` entry records, and the tail from
        // there (O(entries), only while a checkpoint is older than a rekey: a crash right
        // after one). A `rekey` row that is not one does not pass the MAC check below.
        let rekey_seq: Option<i64> = conn
            .query_row(
                "SELECT MAX(seq) FROM audit WHERE action = ?1 AND seq <= ?2",
                rusqlite::params![rekey::ACTION, head_seq],
                |r| r.get(0),
            )
            .map_err(Error::db("reading the audit log"))?;
        let from_seq = match rekey_seq {
            Some(r) if r > from_seq => {
                let mut before = audit_entries_from(conn, 1)?;
                before.retain(|e| e.seq <= r);
                match before.pop() {
                    Some(entry) if entry.seq == r => {
                        if let Some(p) = rekey::check_before(&entry, &before) {
                            return Err(bad(p));
                        }
                    }
                    _ => return Err(bad(format!("entry {r} is missing"))),
                }
                r
            }
            _ => from_seq,
        };
        let start = from_seq.saturating_sub(1).max(1);
        let entries: Vec<AuditEntry> = audit_entries_from(conn, start)?
            .into_iter()
            .filter(|e| e.seq <= head_seq)
            .collect();
        let mut rest = entries.iter();
        let mut prev: Option<&AuditEntry> = None;
        if from_seq > 1 {
            // The predecessor of the range: only its MAC is used here (`verify` checks it).
            match rest.next() {
                Some(e) if e.seq == start => prev = Some(e),
                _ => return Err(bad(format!("entry {start} is missing"))),
            }
        }
        for e in rest {
            let expected = prev.map_or(1, |p| p.seq + 1);
            if e.seq != expected {
                return Err(bad(format!("entry {expected} is missing")));
            }
            let prev_mac = prev.map_or(&[][..], |p| p.mac.as_slice());
            let f = audit_fields(prev_mac, e);
            if !keys.mac_ok(&f.iter().map(|v| v.as_slice()).collect::<Vec<_>>(), &e.mac) {
                return Err(bad(format!(
                    "entry {} ({}) does not follow the entry before it",
                    e.seq,
                    e.label()
                )));
            }
            prev = Some(e);
        }
        let want = prev.map(|p| format!("{}:{}", p.seq, crypto::hex(&p.mac)));
        if want.as_deref() != Some(head.as_str()) {
            return Err(bad("the log does not end where the store says".into()));
        }
        Ok(())
    }
}

/// The DER of the stored CRL with this number.
pub(crate) fn crl_der(conn: &Connection, number: u64) -> Result<Option<Vec<u8>>> {
    conn.query_row(
        "SELECT der FROM crls WHERE number = ?1",
        [i64::try_from(number).unwrap_or(i64::MAX)],
        |r| r.get(0),
    )
    .optional()
    .map_err(Error::db("reading the CRL"))
}

/// The newest `crl` audit entry: its sequence number and the CRL number it records.
pub(crate) fn last_crl_entry(conn: &Connection) -> Result<Option<(i64, u64)>> {
    let row: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, detail FROM audit WHERE action = 'crl' ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(Error::db("reading the audit log"))?;
    row.map(|(seq, detail)| {
        serde_json::from_str::<serde_json::Value>(&detail)
            .ok()
            .and_then(|d| d["number"].as_u64())
            .map(|n| (seq, n))
            .ok_or_else(|| corrupt(format!("audit entry {seq} (crl) has no CRL number")))
    })
    .transpose()
}

/// The audit entries with `seq >= from_seq`, in order.
pub(crate) fn audit_entries_from(conn: &Connection, from_seq: i64) -> Result<Vec<AuditEntry>> {
    {
        let mut st = conn
            .prepare_cached(
                "SELECT seq, time, user, action, name, serial, detail, mac FROM audit WHERE seq >= ?1 ORDER BY seq",
            )
            .map_err(Error::db("reading the audit log"))?;
        let rows = st
            .query_map([from_seq], |r| {
                let detail_text: String = r.get(6)?;
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    time: from_ts(r.get(1)?),
                    user: r.get(2)?,
                    action: r.get(3)?,
                    name: r.get(4)?,
                    serial: r.get(5)?,
                    detail: serde_json::from_str(&detail_text)
                        .unwrap_or(serde_json::Value::String(detail_text.clone())),
                    mac: r.get(7)?,
                    detail_text,
                })
            })
            .map_err(Error::db("reading the audit log"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(Error::db("reading the audit log"))
    }
}

impl Store {
    /// Checks the audit chain: contiguous sequence, every MAC, and the head. Returns problems.
    pub(crate) fn check_audit_chain(&self) -> Result<Vec<String>> {
        let keys = self.keys()?;
        let mut problems = Vec::new();
        let mut prev = Vec::new();
        let mut expect_seq = 1;
        let log = self.audit_log()?;
        // After a rekey, the entries before the last `rekey` entry are MAC'd under the old key:
        // they are checked against the digest that entry records (its own MAC, under this
        // key, chains on the last of them), the rest by their MACs.
        let from = match rekey_entry(keys, &log) {
            Some(i) => {
                problems.extend(rekey::check_before(&log[i], &log[..i]));
                for e in &log[..i] {
                    if e.seq != expect_seq {
                        problems.push(format!(
                            "audit log: entry {expect_seq} is missing (next is {})",
                            e.seq
                        ));
                    }
                    expect_seq = e.seq.saturating_add(1);
                }
                prev = log[..i].last().map(|e| e.mac.clone()).unwrap_or_default();
                i
            }
            None => 0,
        };
        for e in log.into_iter().skip(from) {
            if e.seq != expect_seq {
                problems.push(format!(
                    "audit log: entry {expect_seq} is missing (next is {})",
                    e.seq
                ));
            }
            let f = audit_fields(&prev, &e);
            if !keys.mac_ok(&f.iter().map(|v| v.as_slice()).collect::<Vec<_>>(), &e.mac) {
                problems.push(format!(
                    "audit log: entry {} ({}) was modified, or one before it was removed",
                    e.seq,
                    e.label()
                ));
            }
            prev = e.mac.clone();
            expect_seq = e.seq.saturating_add(1);
        }
        problems.extend(audit_hash::problems(&self.conn)?);
        let head = self.meta("audit_head")?.unwrap_or_default();
        let want = format!("{}:{}", expect_seq - 1, crypto::hex(&prev));
        if head != want {
            problems.push("audit log: the last entries were removed (the log does not end where the store says)".into());
        }
        Ok(problems)
    }

    /// Appends an audit entry on its own (for operations with no other write, such as export).
    pub fn audit(
        &self,
        action: &str,
        name: &str,
        serial: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        self.write(|tx, keys| audit_append(tx, keys, action, name, serial, detail))
    }
}

/// A stored CRL.
#[derive(Debug, Clone)]
pub struct StoredCrl {
    /// CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// Number of entries.
    pub entries: usize,
    /// DER.
    pub der: Vec<u8>,
}

impl Store {
    /// The most recent CRL, if one was made.
    pub fn latest_crl(&self) -> Result<Option<StoredCrl>> {
        let crl = self.latest_crl_unproven()?;
        let mut items = vec![state::Item::CrlHead];
        items.extend(crl.iter().map(|c| state::Item::Crl(c.number)));
        self.proven(&items)?;
        Ok(crl)
    }

    fn latest_crl_unproven(&self) -> Result<Option<StoredCrl>> {
        self.conn
            .query_row("SELECT number, this_update, next_update, entries, der FROM crls ORDER BY number DESC LIMIT 1", [], |r| {
                Ok(StoredCrl {
                    number: r.get::<_, i64>(0)? as u64,
                    this_update: from_ts(r.get(1)?),
                    next_update: from_ts(r.get(2)?),
                    entries: r.get::<_, i64>(3)? as usize,
                    der: r.get(4)?,
                })
            })
            .optional()
            .map_err(Error::db("reading the CRL"))
    }

    /// When the last revocation happened (to tell whether the CRL is stale).
    pub fn last_revocation(&self) -> Result<Option<OffsetDateTime>> {
        let v: Option<i64> = self
            .conn
            .query_row(SQL_LAST_REVOCATION, [], |r| r.get(0))
            .map_err(Error::db("reading"))?;
        Ok(v.map(from_ts))
    }
}

/// Writes a public file (a certificate or CRL) to a path the user named, atomically, mode
/// 0644: a regular file there is replaced; a directory, device, FIFO, socket or symbolic link
/// is refused ([`fsutil::replace_output`]).
pub fn write_public_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fsutil::replace_output(path, bytes, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trigger or a view planted in the file never runs: [`configure`] disables both on
    /// every connection (the schema check refuses them too, but this holds without it).
    ///
    /// Fails when: `SQLITE_DBCONFIG_ENABLE_TRIGGER` is left on in `configure` (the trigger
    /// then writes its row).
    #[test]
    fn planted_triggers_and_views_never_run() {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE t (x INTEGER); CREATE TABLE log (x INTEGER);
             CREATE TRIGGER planted AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.x); END;
             CREATE VIEW v AS SELECT x FROM t;",
        )
        .expect("schema");
        configure(&conn).expect("configure");
        conn.execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        let logged: i64 = conn
            .query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
            .expect("count");
        assert_eq!(logged, 0, "the planted trigger ran");
        assert!(
            conn.query_row("SELECT COUNT(*) FROM v", [], |r| r.get::<_, i64>(0))
                .is_err(),
            "a view was read"
        );
    }

    /// The schema check accepts exactly vpnca's schema, with or without the AWS tables.
    #[test]
    fn the_schema_check_knows_its_own_schema() {
        let path = Path::new("test.db");
        for schema in [SCHEMA.to_string(), format!("{SCHEMA}{AWS_SCHEMA}")] {
            let conn = Connection::open_in_memory().expect("db");
            conn.execute_batch(&schema).expect("schema");
            check_schema(&conn, path).expect("vpnca's own schema");
            conn.execute_batch("CREATE INDEX extra ON certs(serial, name)")
                .expect("index");
            let e = check_schema(&conn, path).expect_err("an extra index");
            assert!(
                e.to_string()
                    .contains("an unexpected index \"extra\" on \"certs\""),
                "{e}"
            );
        }
    }
}
