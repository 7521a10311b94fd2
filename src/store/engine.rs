//! The one interface between the store and its storage engine.
//!
//! The store modules (`mod.rs`, `state.rs`, `checkpoint.rs`, `alike.rs`, `aws.rs`, `rekey.rs`,
//! `audit_hash.rs`, `syslog.rs`) read and write *records, items and tree nodes* through
//! [`Engine`]; none of them holds SQL or names the engine's types. SQLite is one file,
//! [`super::sqlite`], which implements `Engine` for its connection (a write or read
//! transaction derefs to that connection, so the same methods run inside one). `tests/layering.rs`
//! fails when SQL or the SQLite crate's name appears anywhere else under `src/`.
//!
//! # Contract
//!
//! Every method is one *lookup* (reads only) or one *change* (writes only), and sees the
//! changes of the transaction it runs in. What is stored is untrusted input: nothing returned
//! here is believed before the store proves it against the authenticated state (`state.rs`).
//! The error of every method is [`crate::Error::Database`] naming the operation (the same words
//! as before the engine existed), unless its documentation says otherwise.
//!
//! The groups, and what each maps to in a remote engine (design/authenticated-state.md, "A
//! remote engine"), where one lookup is one consistent read of at most 100 small items, one
//! change one atomic write of at most 100 items, and no item is over 400 KB:
//!
//! - **meta** (`meta_*`): one setting item per key (`meta#KEY`); the header, heads, templates,
//!   look-alike entries. A get is one item; a put or delete one item of a change.
//! - **certificate records** (`cert_*`): one item per serial (`cert#SERIAL`, DER and sealed
//!   key inside, a few KB), with the name, CA and revoked lookups served by the state's lists
//!   (`Item::Name`, `Item::Ca`, `Item::RevokedSet`) rather than secondary indexes. The scans
//!   (`cert_names`, `cert_records(CertQuery::All)`) are `verify`/`list` paths, paged remotely.
//! - **chain, pending sub-CA, CRLs**: one item each (a CRL of 20,000 entries is ~600 KB: a
//!   remote engine stores it in chunks or in an object store, referenced by its hash).
//! - **audit log** (`audit_*`): one item per entry (`audit#SEQ`), appended in the change that
//!   makes it; reads are ranges by sequence number.
//! - **state tree nodes** (`nodes_*`): one item per node; `nodes_get_many` is one batch read
//!   (`smt.rs` asks for at most `MAX_BATCH` = 100 keys per call, the rest of one proof path),
//!   `nodes_write` part of the commit's change (staged under the new head remotely).
//! - **AWS rows** (`aws_*`): one item per import ARN and per endpoint.
//! - **engine maintenance** (`quick_check`, `vacuum`, `hot_query_plans`, `create_*`): SQLite's
//!   own; a remote engine answers them trivially (no plan, nothing to compact).
//!
//! Transactions are not trait methods: beginning (`BEGIN IMMEDIATE` for a write, `DEFERRED` for
//! a snapshot) and committing are [`super::sqlite::Txn`], engine-specific, because a remote
//! engine's "transaction" is a buffer of writes checked by a conditional put on the state head,
//! not a lock. The store's [`super::Tx`] wraps whichever the engine provides.

use crate::Result;
use crate::cert::CertRecord;

use super::{AuditEntry, RawRecord, StoredCrl};

/// Which certificate records a lookup returns (each served by an index in SQLite; the hot
/// ones are listed by [`Engine::hot_query_plans`]). Records come oldest first (by row id).
#[derive(Debug, Clone, Copy)]
pub(crate) enum CertQuery<'a> {
    /// One certificate by serial (hex).
    Serial(&'a str),
    /// Every certificate of a name, the CA's excepted.
    Name(&'a str),
    /// Every certificate of up to four spellings of a name.
    Names(&'a [String; 4]),
    /// The live certificate of a name at the time given (unix seconds).
    Live(&'a str, i64),
    /// The live certificate of up to four spellings.
    LiveNames(&'a [String; 4], i64),
    /// The CA record.
    Ca,
    /// The revoked records.
    Revoked,
    /// Every record of a kind (`ca`, `client`, `server`, …).
    Kind(&'a str),
    /// Every record.
    All,
}

/// Which certificate names a lookup returns.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NameQuery {
    /// Every name but the CA's, sorted (from the records themselves, not an index).
    All,
    /// The names with a live certificate at the time given, sorted (from the records).
    Live(i64),
    /// The stored names with a character outside printable ASCII (from the name index; a
    /// store without the look-alike index only).
    NonAscii,
    /// The names of records in state `valid`, the CA's too (from the name index).
    Valid,
}

/// A certificate record as the state tree hashes it (`Item::Cert`): the columns as stored.
#[derive(Debug)]
pub(crate) struct CertItemRow {
    /// serial, name, kind, profile, state (text, as stored).
    pub(crate) text: [Option<String>; 5],
    /// not_before, not_after, revoked_at.
    pub(crate) times: [Option<i64>; 3],
    /// reason, superseded_by.
    pub(crate) text2: [Option<String>; 2],
    pub(crate) created_at: Option<i64>,
    pub(crate) der: Vec<u8>,
    pub(crate) key_blob: Option<Vec<u8>>,
}

/// The pending sub-CA request as stored.
#[derive(Debug)]
pub(crate) struct PendingCaRow {
    pub(crate) name: String,
    pub(crate) algorithm: String,
    pub(crate) csr_der: Vec<u8>,
    pub(crate) key_blob: Vec<u8>,
    pub(crate) created_at: i64,
}

/// A stored CRL's fields as the state tree hashes them (`Item::Crl`).
#[derive(Debug)]
pub(crate) struct CrlItemRow {
    pub(crate) this_update: i64,
    pub(crate) next_update: i64,
    pub(crate) entries: i64,
    pub(crate) der: Vec<u8>,
}

/// An ACM import row as stored (role as text, MAC unchecked).
#[derive(Debug)]
#[cfg_attr(
    not(feature = "aws"),
    allow(dead_code, reason = "read by the `aws` feature")
)]
pub(crate) struct ImportRow {
    pub(crate) arn: String,
    pub(crate) region: String,
    pub(crate) role: String,
    pub(crate) name: String,
    pub(crate) serial: String,
    pub(crate) imported_at: i64,
    pub(crate) mac: Vec<u8>,
}

/// A CRL push row as stored.
#[derive(Debug)]
#[cfg_attr(
    not(feature = "aws"),
    allow(dead_code, reason = "read by the `aws` feature")
)]
pub(crate) struct EndpointRow {
    pub(crate) id: String,
    pub(crate) region: String,
    pub(crate) crl_number: i64,
    pub(crate) pushed_at: i64,
}

/// Which `UPDATE` of a single header value ([`Engine::meta_update`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum MetaField {
    /// The store format.
    Format,
    /// The wrapped data key.
    Header,
}

/// The AWS list items of the state (`Item::AwsImports`, `Item::AwsEndpoints`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum AwsList {
    Imports,
    Endpoints,
}

/// What the store asks of its storage engine. See the module documentation for the contract.
pub(crate) trait Engine {
    // ---- engine ---------------------------------------------------------------------------

    /// Whether no transaction is open on this handle (reads then take their own snapshot).
    fn outside_transaction(&self) -> bool;
    /// Creates every table of a new store (format 2).
    fn create_tables(&self) -> Result<()>;
    /// Adds the AWS and state tables to a format-1 store (the upgrade).
    fn create_upgrade_tables(&self) -> Result<()>;
    /// Adds the AWS tables when a store made before them lacks them.
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn create_aws_tables(&self) -> Result<()>;
    /// Whether the engine holds the table (format 1 may lack the AWS ones).
    fn has_table(&self, name: &str) -> Result<bool>;
    /// The engine's own structural check, indexes against their tables included (SQLite's
    /// `integrity_check`): `["ok"]` when sound.
    fn integrity_check(&self) -> Result<Vec<String>>;
    /// Gives free space back to the file system.
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn vacuum(&self) -> Result<()>;
    /// The query plan of each hot certificate lookup (tests only).
    fn hot_query_plans(&self) -> Result<Vec<(&'static str, String)>>;

    // ---- meta (settings) -------------------------------------------------------------------

    /// One setting.
    fn meta_get(&self, k: &str) -> Result<Option<String>>;
    /// Sets one setting (insert or replace).
    fn meta_put(&self, k: &str, v: &str) -> Result<()>;
    /// Adds a setting that is not there yet (`init`; error `op`).
    fn meta_insert(&self, k: &str, v: &str, op: &'static str) -> Result<()>;
    /// Replaces the value of one of the always-present header fields (error `op`).
    fn meta_update(&self, field: MetaField, v: &str, op: &'static str) -> Result<()>;
    /// Removes a setting (error "writing the header").
    fn meta_delete(&self, k: &str) -> Result<()>;
    /// The setting keys only format 2 writes (templates, heads, the look-alike index, …).
    fn meta_v2_only_keys(&self) -> Result<Vec<String>>;
    /// The look-alike index keys (with their `alike.` prefix), sorted.
    fn meta_alike_keys(&self) -> Result<Vec<String>>;
    /// How many profiles are adopted (`template.*` settings).
    fn meta_template_count(&self) -> Result<i64>;

    // ---- certificate records ---------------------------------------------------------------

    /// Records matching `q`, oldest first (without key blob and MAC).
    fn cert_records(&self, q: CertQuery<'_>) -> Result<Vec<CertRecord>>;
    /// Records matching `q` with their key blob and MAC.
    fn cert_raw_records(&self, q: CertQuery<'_>) -> Result<Vec<RawRecord>>;
    /// The key blob and MAC of the record with row id `id`.
    fn cert_key_blob(&self, id: i64) -> Result<(Option<Vec<u8>>, Vec<u8>)>;
    /// Adds a record; returns its row id. A serial in use is [`crate::Error::Crypto`].
    fn cert_insert(&self, rec: &CertRecord, key_blob: Option<&[u8]>, mac: &[u8]) -> Result<i64>;
    /// Rewrites the mutable fields of record `id` from `rec`, with a new MAC.
    fn cert_update(&self, id: i64, rec: &CertRecord, mac: &[u8]) -> Result<()>;
    /// Deletes the key blob of record `id` (its free pages overwritten), with a new MAC.
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn cert_drop_key(&self, id: i64, mac: &[u8]) -> Result<()>;
    /// Replaces the key blob and MAC of record `id` (rekey).
    fn cert_rekey(&self, id: i64, key_blob: Option<&[u8]>, mac: &[u8]) -> Result<()>;
    /// Certificate names (error `op`).
    fn cert_names(&self, q: NameQuery, op: &'static str) -> Result<Vec<String>>;
    /// Whether a CA record exists.
    fn cert_has_ca(&self) -> Result<bool>;
    /// The latest revocation time (unix seconds).
    fn cert_last_revocation(&self) -> Result<Option<i64>>;
    /// The number of records.
    fn cert_count(&self) -> Result<i64>;
    /// The record of `serial` as the state hashes it.
    fn cert_item(&self, serial: &str) -> Result<Option<CertItemRow>>;
    /// The serials of a name (not the CA's), sorted.
    fn cert_serials_of_name(&self, name: &str) -> Result<Vec<String>>;
    /// The serials of the CA records, sorted.
    fn cert_ca_serials(&self) -> Result<Vec<String>>;
    /// Every serial.
    fn cert_all_serials(&self) -> Result<Vec<String>>;
    /// Every name but the CA's (unsorted).
    fn cert_all_names(&self) -> Result<Vec<String>>;
    /// The name the record of `serial` holds.
    fn cert_name_of(&self, serial: &str) -> Result<Option<String>>;
    /// The row id the serial's lookup leads to (the row [`Engine::cert_item`] reads).
    fn cert_id_of(&self, serial: &str) -> Result<Option<i64>>;
    /// The CA record's serial and DER.
    fn cert_ca_der(&self) -> Result<Option<(String, Vec<u8>)>>;

    // ---- chain, pending sub-CA -------------------------------------------------------------

    /// The parent chain, issuer first (error `op`).
    fn chain_get(&self, op: &'static str) -> Result<Vec<Vec<u8>>>;
    /// Adds a chain certificate at `pos`.
    fn chain_insert(&self, pos: i64, der: &[u8]) -> Result<()>;
    /// The pending sub-CA request's name and sealed key.
    fn pending_ca_get(&self) -> Result<Option<(String, Vec<u8>)>>;
    /// The pending sub-CA request as the state hashes it.
    fn pending_ca_item(&self) -> Result<Option<PendingCaRow>>;
    /// Records the pending sub-CA request (none is there).
    fn pending_ca_put(&self, row: &PendingCaRow) -> Result<()>;
    /// Forgets the pending sub-CA request.
    fn pending_ca_delete(&self) -> Result<()>;
    /// Replaces the pending sub-CA request's sealed key (rekey).
    fn pending_ca_rekey(&self, key_blob: &[u8]) -> Result<()>;

    // ---- CRLs ------------------------------------------------------------------------------

    /// The highest CRL number (0 for none).
    fn crl_max_number(&self) -> Result<i64>;
    /// The highest CRL number, as the state hashes it (`None` for none).
    fn crl_head(&self) -> Result<Option<i64>>;
    /// Records a CRL.
    fn crl_insert(&self, number: i64, row: &CrlItemRow) -> Result<()>;
    /// The DER of CRL `number`.
    fn crl_der(&self, number: u64) -> Result<Option<Vec<u8>>>;
    /// CRL `number` as the state hashes it.
    fn crl_item(&self, number: u64) -> Result<Option<CrlItemRow>>;
    /// The newest CRL.
    fn crl_latest(&self) -> Result<Option<StoredCrl>>;
    /// Every CRL number.
    fn crl_numbers(&self) -> Result<Vec<i64>>;

    // ---- audit log -------------------------------------------------------------------------

    /// Appends an entry.
    fn audit_insert(&self, e: &AuditEntry) -> Result<()>;
    /// The entries with `seq >= from_seq`, in order.
    fn audit_from(&self, from_seq: i64) -> Result<Vec<AuditEntry>>;
    /// The MAC of entry `seq`.
    fn audit_mac(&self, seq: i64) -> Result<Option<Vec<u8>>>;
    /// The last entry of `action` after `after_seq` and at or before `max_seq`: a range of
    /// sequence numbers (the tail since the checkpoint, usually one entry), never the whole log.
    fn audit_last_of(&self, action: &str, after_seq: i64, max_seq: i64) -> Result<Option<i64>>;
    /// The newest `crl` entry's sequence number and detail text.
    fn audit_last_crl(&self) -> Result<Option<(i64, String)>>;

    // ---- state tree nodes ------------------------------------------------------------------

    /// The nodes stored under `keys` (encoded), in any order; absent ones are left out.
    fn nodes_get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Puts (`Some`) or deletes (`None`) nodes.
    fn nodes_write(
        &self,
        writes: &mut dyn Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<()>;
    /// Deletes every node.
    fn nodes_clear(&self) -> Result<()>;
    /// Every node.
    fn nodes_all(&self) -> Result<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>;

    // ---- AWS rows --------------------------------------------------------------------------

    /// Every import row, newest first, each given to `each` as it is read (the first error,
    /// the engine's or `each`'s, ends the scan).
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn aws_imports(&self, each: &mut dyn FnMut(ImportRow) -> Result<()>) -> Result<()>;
    /// The import row of `arn`, as the state hashes it (everything but the ARN).
    fn aws_import(&self, arn: &str) -> Result<Option<ImportRow>>;
    /// Records an import (replacing the row of the same ARN).
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn aws_import_put(&self, row: &ImportRow) -> Result<()>;
    /// Replaces the MAC of the import row of `arn` (rekey).
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn aws_import_remac(&self, arn: &str, mac: &[u8]) -> Result<()>;
    /// How many import rows there are (a rekey without the `aws` feature refuses a store that
    /// has any).
    #[cfg_attr(
        feature = "aws",
        allow(dead_code, reason = "read by the build without `aws`")
    )]
    fn aws_import_count(&self) -> Result<i64>;
    /// Every endpoint row, by region and id.
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn aws_endpoints(&self) -> Result<Vec<EndpointRow>>;
    /// The endpoint row of (`id`, `region`).
    fn aws_endpoint(&self, id: &str, region: &str) -> Result<Option<EndpointRow>>;
    /// Records a CRL push (replacing the row of the same endpoint and region).
    #[cfg_attr(
        not(feature = "aws"),
        allow(dead_code, reason = "used by the `aws` feature")
    )]
    fn aws_endpoint_put(&self, row: &EndpointRow) -> Result<()>;
    /// The keys of a list, sorted, as pairs (`(arn, "")`, `(id, region)`).
    fn aws_list(&self, list: AwsList) -> Result<Vec<(String, String)>>;
    /// Every ARN (unsorted).
    fn aws_import_arns(&self) -> Result<Vec<String>>;
    /// Every endpoint key (unsorted).
    fn aws_endpoint_keys(&self) -> Result<Vec<(String, String)>>;
}
