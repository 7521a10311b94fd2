//! The SQLite engine: the only file of vpnca that holds SQL or names `rusqlite` types
//! (`tests/layering.rs` keeps it so). It opens and configures the connection (the file is
//! untrusted: defensive mode, no triggers, no views, no trusted schema), holds the schema and
//! its exact check, begins and commits transactions, and implements [`Engine`] — every query
//! and statement of the store as a typed method.
//!
//! Every write is one SQLite transaction taken with `BEGIN IMMEDIATE` (writers queue on the
//! lock; a crash or SIGKILL rolls the transaction back), in rollback-journal mode with
//! `synchronous=FULL`.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use super::engine::{
    AwsList, CertItemRow, CertQuery, CrlItemRow, EndpointRow, Engine, ImportRow, MetaField,
    NameQuery, PendingCaRow,
};
use super::{AuditEntry, LOCK_WAIT, RawRecord, StoredCrl, from_ts, ts};
use crate::cert::{CertRecord, CertState};
use crate::{Error, Result};

/// The engine handle a store holds.
pub(crate) type Db = Connection;

/// The `Error::Database` of a failed SQLite call for `op`, in words that say what the user can
/// do for the two failures they can fix.
pub(crate) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| {
        use rusqlite::ErrorCode;
        // SQLite's own words ("database or disk is full", "attempt to write a readonly
        // database") do not say what the user can do, nor that the transaction was undone.
        let plain = match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Some(
                "the disk holding the store is full; the transaction was rolled back and nothing was changed (free some space and run the command again)",
            ),
            Some(ErrorCode::ReadOnly) => Some(
                "the store is read-only (a read-only file system, or no write permission on the store directory or vpnca.db); nothing was changed",
            ),
            _ => None,
        };
        Error::Database {
            op,
            message: match plain {
                Some(p) => format!("{p} [{e}]"),
                None => e.to_string(),
            },
        }
    }
}

// ---- schema ----------------------------------------------------------------------------------

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

/// The AWS records (`crate::aws`): created by `init`, and by the first AWS write in a store
/// made before them.
const AWS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS aws_imports (arn TEXT PRIMARY KEY, region TEXT NOT NULL, role TEXT NOT NULL,
    name TEXT NOT NULL, serial TEXT NOT NULL, imported_at INTEGER NOT NULL, mac BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS aws_imports_name ON aws_imports(role, name, region);
CREATE TABLE IF NOT EXISTS aws_endpoints (id TEXT NOT NULL, region TEXT NOT NULL, crl_number INTEGER NOT NULL,
    pushed_at INTEGER NOT NULL, PRIMARY KEY (id, region));
";

/// The table of the state tree, added by format 2.
const STATE_SCHEMA: &str = "
CREATE TABLE smt_nodes (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
";

/// The schema objects (`type`, `name`, `tbl_name`, `sql`) of a database made by `schema`,
/// as SQLite records them: what [`check_schema`] compares a store with.
fn schema_objects(schema: &str) -> Result<Vec<[Option<String>; 4]>> {
    let conn = Connection::open_in_memory().map_err(db("checking the schema"))?;
    conn.execute_batch(schema)
        .map_err(db("checking the schema"))?;
    read_schema(&conn)
}

fn read_schema(conn: &Connection) -> Result<Vec<[Option<String>; 4]>> {
    let mut st = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .map_err(db("reading the schema"))?;
    let rows = st
        .query_map([], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]))
        .map_err(db("reading the schema"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("reading the schema"))
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

// ---- the connection --------------------------------------------------------------------------

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
            .map_err(db("configuring the database"))?
            != on
        {
            return Err(Error::Database {
                op: "configuring the database",
                message: format!("SQLite refused to set {flag:?} to {on}"),
            });
        }
    }
    conn.busy_timeout(LOCK_WAIT)
        .map_err(db("configuring the database"))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db("configuring the database"))?;
    Ok(())
}

/// Creates the database file of a new store at `path` (configured, no tables yet).
pub(crate) fn create(path: &Path) -> Result<Db> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .map_err(db("creating the store"))?;
    configure(&conn)?;
    Ok(conn)
}

/// Opens the database of an existing store, configured, its schema checked: returns it and
/// the format whose schema it has (1 or 2).
pub(crate) fn open(path: &Path) -> Result<(Db, u32)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db("opening the store"))?;
    configure(&conn)?;
    let schema = check_schema(&conn, path)?;
    Ok((conn, schema))
}

/// The `format` setting as an open store reads it first: any failure is the file not being a
/// vpnca database (the message of [`Error::UnsupportedStore`]'s reason).
pub(crate) fn read_format(conn: &Db) -> std::result::Result<Option<String>, String> {
    conn.query_row("SELECT v FROM meta WHERE k = 'format'", [], |r| r.get(0))
        .optional()
        .map_err(|e| format!("not a readable vpnca database ({e})"))
}

// ---- transactions ----------------------------------------------------------------------------

/// An open SQLite transaction: `BEGIN IMMEDIATE` for a write, `BEGIN DEFERRED` for a read
/// snapshot. Dropped without [`Txn::commit`], it rolls back.
pub(crate) struct Txn<'c>(Transaction<'c>);

impl<'c> Txn<'c> {
    /// `BEGIN IMMEDIATE` on `conn` (waits for the write lock); failure is `op`.
    pub(crate) fn immediate(conn: &'c Db, op: &'static str) -> Result<Txn<'c>> {
        Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map(Txn)
            .map_err(db(op))
    }

    /// `BEGIN DEFERRED` on `conn`: one consistent snapshot for what is read in it.
    pub(crate) fn deferred(conn: &'c Db, op: &'static str) -> Result<Txn<'c>> {
        Transaction::new_unchecked(conn, TransactionBehavior::Deferred)
            .map(Txn)
            .map_err(db(op))
    }

    /// `COMMIT`.
    pub(crate) fn commit(self) -> Result<()> {
        self.0.commit().map_err(db("committing"))
    }

    /// The engine, inside this transaction.
    pub(crate) fn engine(&self) -> &dyn Engine {
        let c: &Connection = &self.0;
        c
    }
}

// ---- certificate records ---------------------------------------------------------------------

const CERT_COLS: &str = "id, serial, name, kind, profile, state, not_before, not_after, revoked_at, reason, superseded_by, created_at, cert_der, key_blob IS NOT NULL";

// The certificate lookups on the issue / revoke / show / CRL paths. They are named so that
// [`Engine::hot_query_plans`] explains exactly the SQL these paths run: each must find its rows
// through an index, never by scanning the certificates table (easy-rsa's index.txt broke at
// ~76k lines; the CA lookup once scanned the whole table).

/// `Store::by_serial`, `raw_record`: one certificate by serial (UNIQUE index).
const WHERE_SERIAL: &str = "serial = ?1";
/// `Store::by_name`, `Store::current`: every certificate of a name.
const WHERE_NAME: &str = "name = ?1 AND kind != 'ca'";
/// `Store::live`: the live certificate of a name (before issuing, for the mirrors).
const WHERE_LIVE: &str = "name = ?1 AND kind != 'ca' AND state = 'valid' AND not_after > ?2";
/// `Store::by_name` of a name stored in more than one spelling (NFC and, from an older
/// store, NFD): up to four spellings.
const WHERE_NAMES: &str = "name IN (?1, ?2, ?3, ?4) AND kind != 'ca'";
/// `Store::live` of a name stored in more than one spelling.
const WHERE_LIVE_NAMES: &str =
    "name IN (?1, ?2, ?3, ?4) AND kind != 'ca' AND state = 'valid' AND not_after > ?5";
/// `Store::names`: every certificate name but the CA's. Read from the table, not the name
/// index (an index page edited alone can make an index disagree with its table, and these
/// scans run where the table's rows are proven: `verify`, `status`, the look-alike index's
/// upgrade).
const SQL_NAMES: &str =
    "SELECT DISTINCT name FROM certs NOT INDEXED WHERE kind != 'ca' ORDER BY name";
/// `Store::live_names`: the names with a live certificate (from the table, as `SQL_NAMES`).
const SQL_LIVE_NAMES: &str = "SELECT DISTINCT name FROM certs NOT INDEXED WHERE kind != 'ca' AND state = 'valid' AND not_after > ?1 ORDER BY name";
/// The stored names with a character outside printable ASCII (only those can be non-NFC), in
/// a store without the look-alike index (which serves the old spellings otherwise).
const SQL_NON_ASCII_NAMES: &str =
    "SELECT DISTINCT name FROM certs INDEXED BY certs_name WHERE name GLOB '*[^ -~]*'";
/// A store without the look-alike index: the names of records in state `valid`, expired or
/// not, the CA's too, from the covering index alone (no table row is read: 17 ms for 100,000
/// names).
const SQL_VALID_NAMES: &str =
    "SELECT DISTINCT name FROM certs INDEXED BY certs_name WHERE state = 'valid'";
/// The `WHERE` clause on `meta` that selects the look-alike index's rows (a range on the
/// primary key: `/` follows `.`), and its setting.
const WHERE_ALIKE_META: &str = "(k >= 'alike.' AND k < 'alike/') OR k = 'alike_index'";
/// `Store::ca`: the CA record, read by every issue, revoke and CRL.
const WHERE_CA: &str = "kind = 'ca'";
/// `check_revoked_set`, `Store::revoked`: the revoked records, read by every revoke and
/// CRL, and by `status` and `push-crl` to tell a stale CRL.
const WHERE_REVOKED: &str = "state = 'revoked'";
/// `Store::has_ca`.
const SQL_HAS_CA: &str = "SELECT COUNT(*) FROM certs WHERE kind = 'ca'";
/// `Store::last_revocation`.
const SQL_LAST_REVOCATION: &str = "SELECT MAX(revoked_at) FROM certs WHERE state = 'revoked'";
/// `raw_record`: the key blob and MAC of a record found by serial.
const SQL_KEY_BLOB: &str = "SELECT key_blob, mac FROM certs WHERE id = ?1";
/// `update_record`: a revocation or supersession.
const SQL_UPDATE_RECORD: &str = "UPDATE certs SET state = ?1, revoked_at = ?2, reason = ?3, superseded_by = ?4, mac = ?5 WHERE id = ?6";

/// The rows of `certs` a WHERE clause selects, read from the table itself: an index only
/// proposes row ids (the subquery), each row is then read by its id (`NOT INDEXED`: rowid
/// lookups only) and the clause checked again on what the table holds. SQLite otherwise takes
/// the columns an index holds (`certs_name` holds `name` and `state`) from the index, so an
/// index page edited outside vpnca — the table, its MACs and proofs untouched — could make a
/// revoked record read as valid. A row the index leaves out is caught by the proof of its
/// name's list (`state::Item::Name`).
fn certs_from(cols: &str, where_sql: &str) -> String {
    if where_sql == "1 = 1" {
        // Every row: a scan of the table itself.
        return format!("SELECT {cols} FROM certs NOT INDEXED ORDER BY id");
    }
    format!(
        "SELECT {cols} FROM certs NOT INDEXED WHERE id IN (SELECT id FROM certs WHERE {where_sql}) AND ({where_sql}) ORDER BY id"
    )
}

/// The SQL of [`Engine::cert_records`] for a WHERE clause.
fn records_sql(where_sql: &str) -> String {
    certs_from(CERT_COLS, where_sql)
}

/// The SQL of [`Engine::cert_raw_records`] for a WHERE clause.
fn raw_records_sql(where_sql: &str) -> String {
    certs_from(&format!("{CERT_COLS}, key_blob, mac"), where_sql)
}

/// `Engine::audit_last_of`, run by the checkpoint guard of every command that unlocks: a range
/// of the primary key (the tail since the checkpoint), not a scan of the log (which grows by
/// one entry per certificate: with `seq <= ?3` alone it read every entry, 8 % of a `crl` with
/// 20,000 revoked users).
const SQL_AUDIT_LAST_OF: &str =
    "SELECT MAX(seq) FROM audit WHERE action = ?1 AND seq > ?2 AND seq <= ?3";

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
        ("audit:last_of", SQL_AUDIT_LAST_OF.to_string()),
        // The two name scans that a store without the look-alike index runs once per command
        // (format 1, or format 2 before its first write: look-alikes on issue, old spellings on
        // a name lookup): they read the `certs_name` index only, never a table row.
        ("scan:valid_names", SQL_VALID_NAMES.to_string()),
        ("scan:non_ascii_names", SQL_NON_ASCII_NAMES.to_string()),
    ]
}

/// A [`CertQuery`]'s WHERE clause and arguments.
fn cert_where(q: CertQuery<'_>) -> (&'static str, Vec<Value>) {
    let text = |s: &str| Value::Text(s.to_string());
    match q {
        CertQuery::Serial(s) => (WHERE_SERIAL, vec![text(s)]),
        CertQuery::Name(n) => (WHERE_NAME, vec![text(n)]),
        CertQuery::Names(a) => (WHERE_NAMES, a.iter().map(|n| text(n)).collect()),
        CertQuery::Live(n, t) => (WHERE_LIVE, vec![text(n), Value::Integer(t)]),
        CertQuery::LiveNames(a, t) => {
            let mut v: Vec<Value> = a.iter().map(|n| text(n)).collect();
            v.push(Value::Integer(t));
            (WHERE_LIVE_NAMES, v)
        }
        CertQuery::Ca => (WHERE_CA, vec![]),
        CertQuery::Revoked => (WHERE_REVOKED, vec![]),
        CertQuery::Kind(k) => ("kind = ?1", vec![text(k)]),
        CertQuery::All => ("1 = 1", vec![]),
    }
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

fn corrupt(what: String) -> Error {
    Error::Tampered { what }
}

/// The first column of a query's rows, as text (error `op`).
fn strings(
    conn: &Connection,
    sql: &str,
    args: &[&dyn rusqlite::ToSql],
    op: &'static str,
) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached(sql).map_err(db(op))?;
    let rows = st
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(db(op))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db(op))
}

/// The first column of a query's rows, as text, prepared fresh (error `op`).
fn strings_uncached(conn: &Connection, sql: &str, op: &'static str) -> Result<Vec<String>> {
    let mut st = conn.prepare(sql).map_err(db(op))?;
    st.query_map([], |r| r.get::<_, String>(0))
        .map_err(db(op))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db(op))
}

impl Engine for Connection {
    fn outside_transaction(&self) -> bool {
        self.is_autocommit()
    }

    fn create_tables(&self) -> Result<()> {
        self.execute_batch(&format!("{SCHEMA}{AWS_SCHEMA}{STATE_SCHEMA}"))
            .map_err(db("creating the store"))
    }

    fn create_upgrade_tables(&self) -> Result<()> {
        self.execute_batch(&format!("{AWS_SCHEMA}{STATE_SCHEMA}"))
            .map_err(db("upgrading the store"))
    }

    fn create_aws_tables(&self) -> Result<()> {
        self.execute_batch(AWS_SCHEMA)
            .map_err(db("creating the AWS tables"))
    }

    fn has_table(&self, name: &str) -> Result<bool> {
        self.query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()
        .map(|r| r.is_some())
        .map_err(db("reading the schema"))
    }

    fn integrity_check(&self) -> Result<Vec<String>> {
        let mut st = self
            .prepare("PRAGMA integrity_check")
            .map_err(db("checking the database"))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db("checking the database"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db("checking the database"))
    }

    fn vacuum(&self) -> Result<()> {
        self.execute_batch("VACUUM")
            .map_err(db("compacting the store file (VACUUM)"))
    }

    fn hot_query_plans(&self) -> Result<Vec<(&'static str, String)>> {
        let explain = |sql: &str| -> rusqlite::Result<String> {
            let mut st = self.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
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
                    .map_err(db("explaining a query"))
            })
            .collect()
    }

    // ---- meta ------------------------------------------------------------------------------

    fn meta_get(&self, k: &str) -> Result<Option<String>> {
        self.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()
            .map_err(db("reading the header"))
    }

    fn meta_put(&self, k: &str, v: &str) -> Result<()> {
        self.execute(
            "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            params![k, v],
        )
        .map_err(db("writing the header"))?;
        Ok(())
    }

    fn meta_insert(&self, k: &str, v: &str, op: &'static str) -> Result<()> {
        self.execute("INSERT INTO meta (k, v) VALUES (?1, ?2)", params![k, v])
            .map_err(db(op))?;
        Ok(())
    }

    fn meta_update(&self, field: MetaField, v: &str, op: &'static str) -> Result<()> {
        let sql = match field {
            MetaField::Format => "UPDATE meta SET v = ?1 WHERE k = 'format'",
            MetaField::Header => "UPDATE meta SET v = ?1 WHERE k = 'header'",
        };
        self.execute(sql, [v]).map_err(db(op))?;
        Ok(())
    }

    fn meta_delete(&self, k: &str) -> Result<()> {
        self.execute("DELETE FROM meta WHERE k = ?1", [k])
            .map_err(db("writing the header"))?;
        Ok(())
    }

    fn meta_v2_only_keys(&self) -> Result<Vec<String>> {
        strings_uncached(
            self,
            &format!(
                "SELECT k FROM meta WHERE k LIKE 'template.%' OR k IN ('state_head', 'state_sig', 'state_key_cert', 'audit_hash', 'aws_lists', 'crl_deferred') OR {WHERE_ALIKE_META} ORDER BY k"
            ),
            "reading the header",
        )
    }

    fn meta_alike_keys(&self) -> Result<Vec<String>> {
        strings_uncached(
            self,
            "SELECT k FROM meta WHERE k >= 'alike.' AND k < 'alike/' ORDER BY k",
            "reading the look-alike index",
        )
    }

    fn meta_template_count(&self) -> Result<i64> {
        self.query_row(
            "SELECT COUNT(*) FROM meta WHERE k LIKE 'template.%'",
            [],
            |r| r.get(0),
        )
        .map_err(db("reading the header"))
    }

    // ---- certificate records ---------------------------------------------------------------

    fn cert_records(&self, q: CertQuery<'_>) -> Result<Vec<CertRecord>> {
        let (where_sql, args) = cert_where(q);
        let mut st = self
            .prepare_cached(&records_sql(where_sql))
            .map_err(db("reading certificates"))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args.iter()), row_to_record)
            .map_err(db("reading certificates"))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(db("reading certificates"))?.map_err(corrupt)?);
        }
        Ok(out)
    }

    fn cert_raw_records(&self, q: CertQuery<'_>) -> Result<Vec<RawRecord>> {
        let (where_sql, args) = cert_where(q);
        let mut st = self
            .prepare_cached(&raw_records_sql(where_sql))
            .map_err(db("reading certificates"))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok((
                    row_to_record(row)?,
                    row.get::<_, Option<Vec<u8>>>(14)?,
                    row.get::<_, Vec<u8>>(15)?,
                ))
            })
            .map_err(db("reading certificates"))?;
        let mut out = Vec::new();
        for r in rows {
            let (rec, key_blob, mac) = r.map_err(db("reading certificates"))?;
            out.push(RawRecord {
                rec: rec.map_err(corrupt)?,
                key_blob,
                mac,
            });
        }
        Ok(out)
    }

    fn cert_key_blob(&self, id: i64) -> Result<(Option<Vec<u8>>, Vec<u8>)> {
        self.query_row(SQL_KEY_BLOB, [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db("reading certificates"))
    }

    fn cert_insert(&self, rec: &CertRecord, key_blob: Option<&[u8]>, mac: &[u8]) -> Result<i64> {
        self.execute(
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
            e => db("recording the certificate")(e),
        })?;
        Ok(self.last_insert_rowid())
    }

    fn cert_update(&self, id: i64, rec: &CertRecord, mac: &[u8]) -> Result<()> {
        self.execute(
            SQL_UPDATE_RECORD,
            params![
                rec.state.as_str(),
                rec.revoked_at.map(ts),
                rec.reason.map(|r| r.as_str()),
                rec.superseded_by.as_ref().map(|s| s.hex()),
                mac,
                id
            ],
        )
        .map_err(db("updating the certificate"))?;
        Ok(())
    }

    fn cert_drop_key(&self, id: i64, mac: &[u8]) -> Result<()> {
        self.pragma_update(None, "secure_delete", "ON")
            .map_err(db("forgetting the CA key"))?;
        self.execute(
            "UPDATE certs SET key_blob = NULL, mac = ?1 WHERE id = ?2",
            params![mac, id],
        )
        .map_err(db("forgetting the CA key"))?;
        Ok(())
    }

    fn cert_rekey(&self, id: i64, key_blob: Option<&[u8]>, mac: &[u8]) -> Result<()> {
        self.execute(
            "UPDATE certs SET key_blob = ?1, mac = ?2 WHERE id = ?3",
            params![key_blob, mac, id],
        )
        .map_err(db("re-keying the certificates"))?;
        Ok(())
    }

    fn cert_names(&self, q: NameQuery, op: &'static str) -> Result<Vec<String>> {
        match q {
            NameQuery::All => strings(self, SQL_NAMES, &[], op),
            NameQuery::Live(t) => strings(self, SQL_LIVE_NAMES, &[&t], op),
            NameQuery::NonAscii => strings(self, SQL_NON_ASCII_NAMES, &[], op),
            NameQuery::Valid => strings(self, SQL_VALID_NAMES, &[], op),
        }
    }

    fn cert_has_ca(&self) -> Result<bool> {
        Ok(self
            .query_row(SQL_HAS_CA, [], |r| r.get::<_, i64>(0))
            .map_err(db("reading"))?
            > 0)
    }

    fn cert_last_revocation(&self) -> Result<Option<i64>> {
        self.query_row(SQL_LAST_REVOCATION, [], |r| r.get(0))
            .map_err(db("reading"))
    }

    fn cert_count(&self) -> Result<i64> {
        self.query_row("SELECT COUNT(*) FROM certs", [], |r| r.get::<_, i64>(0))
            .map_err(db("counting"))
    }

    fn cert_item(&self, serial: &str) -> Result<Option<CertItemRow>> {
        self.query_row(
            // From the table by row id, the serial checked on the row itself (`certs_from`);
            // the first row: `Store::check_one_row_each` refuses a second one.
            "SELECT serial, name, kind, profile, state, not_before, not_after, revoked_at, reason, superseded_by, created_at, cert_der, key_blob FROM certs NOT INDEXED WHERE id IN (SELECT id FROM certs WHERE serial = ?1) AND serial = ?1 ORDER BY id",
            [serial],
            |r| {
                let der: Vec<u8> = r.get(11)?;
                let key_blob: Option<Vec<u8>> = r.get(12)?;
                let text = |i: usize| r.get::<_, Option<String>>(i);
                let int = |i: usize| r.get::<_, Option<i64>>(i);
                Ok(CertItemRow {
                    text: [text(0)?, text(1)?, text(2)?, text(3)?, text(4)?],
                    times: [int(5)?, int(6)?, int(7)?],
                    text2: [text(8)?, text(9)?],
                    created_at: int(10)?,
                    der,
                    key_blob,
                })
            },
        )
        .optional()
        .map_err(db("reading the store state"))
    }

    fn cert_serials_of_name(&self, name: &str) -> Result<Vec<String>> {
        strings(
            self,
            "SELECT serial FROM certs WHERE name = ?1 AND kind != 'ca' ORDER BY serial",
            &[&name],
            "reading the store state",
        )
    }

    fn cert_ca_serials(&self) -> Result<Vec<String>> {
        strings(
            self,
            "SELECT serial FROM certs WHERE kind = 'ca' ORDER BY serial",
            &[],
            "reading the store state",
        )
    }

    fn cert_all_serials(&self) -> Result<Vec<String>> {
        // The table itself (an index could leave a planted row out), sorted: a serial twice
        // is a planted row (`state::check_all_against`).
        strings_uncached(
            self,
            "SELECT serial FROM certs NOT INDEXED ORDER BY serial",
            "reading the store state",
        )
    }

    fn cert_id_of(&self, serial: &str) -> Result<Option<i64>> {
        self.query_row("SELECT id FROM certs WHERE serial = ?1", [serial], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db("reading certificates"))
    }

    fn cert_all_names(&self) -> Result<Vec<String>> {
        strings_uncached(
            self,
            "SELECT DISTINCT name FROM certs WHERE kind != 'ca'",
            "reading the store state",
        )
    }

    fn cert_name_of(&self, serial: &str) -> Result<Option<String>> {
        self.query_row("SELECT name FROM certs WHERE serial = ?1", [serial], |r| {
            r.get(0)
        })
        .optional()
        .map_err(db("reading the store state"))
    }

    fn cert_ca_der(&self) -> Result<Option<(String, Vec<u8>)>> {
        self.query_row(
            "SELECT serial, cert_der FROM certs WHERE kind = 'ca'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db("reading the store state"))
    }

    // ---- chain, pending sub-CA -------------------------------------------------------------

    fn chain_get(&self, op: &'static str) -> Result<Vec<Vec<u8>>> {
        let mut st = self
            .prepare("SELECT der FROM chain ORDER BY pos")
            .map_err(db(op))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(db(op))?;
        rows.collect::<rusqlite::Result<Vec<Vec<u8>>>>()
            .map_err(db(op))
    }

    fn chain_insert(&self, pos: i64, der: &[u8]) -> Result<()> {
        self.execute(
            "INSERT INTO chain (pos, der) VALUES (?1, ?2)",
            params![pos, der],
        )
        .map_err(db("recording the chain"))?;
        Ok(())
    }

    fn pending_ca_get(&self) -> Result<Option<(String, Vec<u8>)>> {
        self.query_row(
            "SELECT name, key_blob FROM pending_ca WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db("reading the pending CA"))
    }

    fn pending_ca_item(&self) -> Result<Option<PendingCaRow>> {
        self.query_row(
            "SELECT name, algorithm, csr_der, key_blob, created_at FROM pending_ca WHERE id = 1",
            [],
            |r| {
                Ok(PendingCaRow {
                    name: r.get(0)?,
                    algorithm: r.get(1)?,
                    csr_der: r.get(2)?,
                    key_blob: r.get(3)?,
                    created_at: r.get(4)?,
                })
            },
        )
        .optional()
        .map_err(db("reading the store state"))
    }

    fn pending_ca_put(&self, row: &PendingCaRow) -> Result<()> {
        self.execute(
            "INSERT INTO pending_ca (id, name, algorithm, csr_der, key_blob, created_at) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![row.name, row.algorithm, row.csr_der, row.key_blob, row.created_at],
        )
        .map_err(db("recording the sub-CA request"))?;
        Ok(())
    }

    fn pending_ca_delete(&self) -> Result<()> {
        self.execute("DELETE FROM pending_ca", [])
            .map_err(db("recording the sub-CA request"))?;
        Ok(())
    }

    fn pending_ca_rekey(&self, key_blob: &[u8]) -> Result<()> {
        self.execute(
            "UPDATE pending_ca SET key_blob = ?1 WHERE id = 1",
            [key_blob],
        )
        .map_err(db("re-keying the pending CA"))?;
        Ok(())
    }

    // ---- CRLs ------------------------------------------------------------------------------

    fn crl_max_number(&self) -> Result<i64> {
        self.query_row("SELECT COALESCE(MAX(number), 0) FROM crls", [], |r| {
            r.get(0)
        })
        .map_err(db("reading the CRL number"))
    }

    fn crl_head(&self) -> Result<Option<i64>> {
        self.query_row("SELECT MAX(number) FROM crls", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .map_err(db("reading the store state"))
    }

    fn crl_insert(&self, number: i64, row: &CrlItemRow) -> Result<()> {
        self.execute(
            "INSERT INTO crls (number, this_update, next_update, entries, der) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![number, row.this_update, row.next_update, row.entries, row.der],
        )
        .map_err(db("recording the CRL"))?;
        Ok(())
    }

    fn crl_der(&self, number: u64) -> Result<Option<Vec<u8>>> {
        self.query_row(
            "SELECT der FROM crls WHERE number = ?1",
            [i64::try_from(number).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )
        .optional()
        .map_err(db("reading the CRL"))
    }

    fn crl_item(&self, number: u64) -> Result<Option<CrlItemRow>> {
        self.query_row(
            "SELECT this_update, next_update, entries, der FROM crls WHERE number = ?1",
            [i64::try_from(number).unwrap_or(i64::MAX)],
            |r| {
                Ok(CrlItemRow {
                    this_update: r.get(0)?,
                    next_update: r.get(1)?,
                    entries: r.get(2)?,
                    der: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(db("reading the store state"))
    }

    fn crl_latest(&self) -> Result<Option<StoredCrl>> {
        self.query_row("SELECT number, this_update, next_update, entries, der FROM crls ORDER BY number DESC LIMIT 1", [], |r| {
                Ok(StoredCrl {
                    number: r.get::<_, i64>(0)? as u64,
                    this_update: from_ts(r.get(1)?),
                    next_update: from_ts(r.get(2)?),
                    entries: r.get::<_, i64>(3)? as usize,
                    der: r.get(4)?,
                })
            })
            .optional()
            .map_err(db("reading the CRL"))
    }

    fn crl_numbers(&self) -> Result<Vec<i64>> {
        let op = "reading the store state";
        let mut st = self.prepare("SELECT number FROM crls").map_err(db(op))?;
        st.query_map([], |r| r.get::<_, i64>(0))
            .map_err(db(op))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(op))
    }

    // ---- audit log -------------------------------------------------------------------------

    fn audit_insert(&self, e: &AuditEntry) -> Result<()> {
        self.execute(
            "INSERT INTO audit (seq, time, user, action, name, serial, detail, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![e.seq, ts(e.time), e.user, e.action, e.name, e.serial, e.detail_text, e.mac],
        )
        .map_err(db("writing the audit log"))?;
        Ok(())
    }

    fn audit_from(&self, from_seq: i64) -> Result<Vec<AuditEntry>> {
        let mut st = self
            .prepare_cached(
                "SELECT seq, time, user, action, name, serial, detail, mac FROM audit WHERE seq >= ?1 ORDER BY seq",
            )
            .map_err(db("reading the audit log"))?;
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
            .map_err(db("reading the audit log"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db("reading the audit log"))
    }

    fn audit_mac(&self, seq: i64) -> Result<Option<Vec<u8>>> {
        self.query_row("SELECT mac FROM audit WHERE seq = ?1", [seq], |r| r.get(0))
            .optional()
            .map_err(db("reading the audit log"))
    }

    fn audit_last_of(&self, action: &str, after_seq: i64, max_seq: i64) -> Result<Option<i64>> {
        self.query_row(
            SQL_AUDIT_LAST_OF,
            params![action, after_seq, max_seq],
            |r| r.get(0),
        )
        .map_err(db("reading the audit log"))
    }

    fn audit_last_crl(&self) -> Result<Option<(i64, String)>> {
        self.query_row(
            "SELECT seq, detail FROM audit WHERE action = 'crl' ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db("reading the audit log"))
    }

    // ---- state tree nodes ------------------------------------------------------------------

    fn nodes_get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let op = "reading the state tree";
        let marks = vec!["?"; keys.len()].join(",");
        let mut st = self
            .prepare(&format!("SELECT k, v FROM smt_nodes WHERE k IN ({marks})"))
            .map_err(db(op))?;
        st.query_map(rusqlite::params_from_iter(keys.iter()), |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(db(op))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db(op))
    }

    fn nodes_write(
        &self,
        writes: &mut dyn Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<()> {
        let op = "writing the state tree";
        let mut put = self
            .prepare_cached("INSERT INTO smt_nodes (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v")
            .map_err(db(op))?;
        let mut del = self
            .prepare_cached("DELETE FROM smt_nodes WHERE k = ?1")
            .map_err(db(op))?;
        for (k, n) in writes {
            match n {
                Some(n) => put.execute(params![k, n]).map_err(db(op))?,
                None => del.execute(params![k]).map_err(db(op))?,
            };
        }
        Ok(())
    }

    fn nodes_clear(&self) -> Result<()> {
        self.execute("DELETE FROM smt_nodes", [])
            .map_err(db("writing the state tree"))?;
        Ok(())
    }

    fn nodes_all(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let mut st = self
            .prepare("SELECT k, v FROM smt_nodes")
            .map_err(db("reading the state tree"))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db("reading the state tree"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(db("reading the state tree"))
    }

    // ---- AWS rows --------------------------------------------------------------------------

    fn aws_imports(&self, each: &mut dyn FnMut(ImportRow) -> Result<()>) -> Result<()> {
        let mut stmt = self
            .prepare("SELECT arn, region, role, name, serial, imported_at, mac FROM aws_imports ORDER BY imported_at DESC, arn")
            .map_err(db("reading the AWS records"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ImportRow {
                    arn: r.get::<_, String>(0)?,
                    region: r.get::<_, String>(1)?,
                    role: r.get::<_, String>(2)?,
                    name: r.get::<_, String>(3)?,
                    serial: r.get::<_, String>(4)?,
                    imported_at: r.get::<_, i64>(5)?,
                    mac: r.get::<_, Vec<u8>>(6)?,
                })
            })
            .map_err(db("reading the AWS records"))?;
        for row in rows {
            each(row.map_err(db("reading the AWS records"))?)?;
        }
        Ok(())
    }

    fn aws_import(&self, arn: &str) -> Result<Option<ImportRow>> {
        self.query_row(
            "SELECT region, role, name, serial, imported_at, mac FROM aws_imports WHERE arn = ?1",
            [arn],
            |r| {
                Ok(ImportRow {
                    arn: arn.to_string(),
                    region: r.get::<_, String>(0)?,
                    role: r.get::<_, String>(1)?,
                    name: r.get::<_, String>(2)?,
                    serial: r.get::<_, String>(3)?,
                    imported_at: r.get::<_, i64>(4)?,
                    mac: r.get::<_, Vec<u8>>(5)?,
                })
            },
        )
        .optional()
        .map_err(db("reading the store state"))
    }

    fn aws_import_put(&self, row: &ImportRow) -> Result<()> {
        self.execute(
            "INSERT INTO aws_imports (arn, region, role, name, serial, imported_at, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(arn) DO UPDATE SET region = excluded.region, role = excluded.role, name = excluded.name,
                 serial = excluded.serial, imported_at = excluded.imported_at, mac = excluded.mac",
            params![row.arn, row.region, row.role, row.name, row.serial, row.imported_at, row.mac],
        )
        .map_err(db("recording the ACM import"))?;
        Ok(())
    }

    fn aws_import_remac(&self, arn: &str, mac: &[u8]) -> Result<()> {
        self.execute(
            "UPDATE aws_imports SET mac = ?1 WHERE arn = ?2",
            params![mac, arn],
        )
        .map_err(db("re-keying the AWS records"))?;
        Ok(())
    }

    fn aws_import_count(&self) -> Result<i64> {
        self.query_row("SELECT COUNT(*) FROM aws_imports", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(db("reading the AWS records"))
    }

    fn aws_endpoints(&self) -> Result<Vec<EndpointRow>> {
        let mut stmt = self
            .prepare(
                "SELECT id, region, crl_number, pushed_at FROM aws_endpoints ORDER BY region, id",
            )
            .map_err(db("reading the AWS records"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(EndpointRow {
                    id: r.get(0)?,
                    region: r.get(1)?,
                    crl_number: r.get::<_, i64>(2)?,
                    pushed_at: r.get(3)?,
                })
            })
            .map_err(db("reading the AWS records"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db("reading the AWS records"))
    }

    fn aws_endpoint(&self, id: &str, region: &str) -> Result<Option<EndpointRow>> {
        self.query_row(
            "SELECT crl_number, pushed_at FROM aws_endpoints WHERE id = ?1 AND region = ?2",
            [id, region],
            |r| {
                Ok(EndpointRow {
                    id: id.to_string(),
                    region: region.to_string(),
                    crl_number: r.get::<_, i64>(0)?,
                    pushed_at: r.get::<_, i64>(1)?,
                })
            },
        )
        .optional()
        .map_err(db("reading the store state"))
    }

    fn aws_endpoint_put(&self, row: &EndpointRow) -> Result<()> {
        self.execute(
            "INSERT INTO aws_endpoints (id, region, crl_number, pushed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id, region) DO UPDATE SET crl_number = excluded.crl_number, pushed_at = excluded.pushed_at",
            params![row.id, row.region, row.crl_number, row.pushed_at],
        )
        .map_err(db("recording the CRL push"))?;
        Ok(())
    }

    fn aws_list(&self, list: AwsList) -> Result<Vec<(String, String)>> {
        let op = "reading the store state";
        let sql = match list {
            AwsList::Imports => "SELECT arn, '' FROM aws_imports ORDER BY arn",
            AwsList::Endpoints => "SELECT id, region FROM aws_endpoints ORDER BY id, region",
        };
        let mut st = self.prepare(sql).map_err(db(op))?;
        st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db(op))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(op))
    }

    fn aws_import_arns(&self) -> Result<Vec<String>> {
        strings_uncached(
            self,
            "SELECT arn FROM aws_imports",
            "reading the store state",
        )
    }

    fn aws_endpoint_keys(&self) -> Result<Vec<(String, String)>> {
        let op = "reading the store state";
        let mut st = self
            .prepare("SELECT id, region FROM aws_endpoints")
            .map_err(db(op))?;
        st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db(op))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(op))
    }
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
