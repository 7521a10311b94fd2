//! The store: one directory, one SQLite database holding every record, plus public mirrors.
//!
//! Layout (see docs/store-format.md):
//! - `vpnca.db` — certificates, encrypted private keys, CRLs, the audit log, the header;
//! - `ca.crt`, `issued/NAME.crt`, `crl.pem` — public copies for easy-rsa habits (never keys).
//!
//! The store reads and writes records, items and tree nodes through one interface,
//! [`engine::Engine`]; SQLite is one file implementing it, [`sqlite`], the only one with SQL.
//! Every write is one SQLite transaction taken with `BEGIN IMMEDIATE` (writers queue on the
//! lock; a crash or SIGKILL rolls the transaction back), in rollback-journal mode with
//! `synchronous=FULL`. Mirrors are rewritten after the commit and repaired by `verify`.

mod alike;
mod audit_hash;
#[cfg(feature = "aws")]
pub(crate) mod aws;
pub(crate) mod checkpoint;
pub(crate) mod crypto;
pub(crate) mod engine;
mod rekey;
pub(crate) mod smt;
pub(crate) mod sqlite;
pub(crate) mod state;
mod syslog;

use std::path::{Path, PathBuf};

use engine::{CertQuery, CrlItemRow, Engine, MetaField, NameQuery, PendingCaRow};
use sqlite::{Db, Txn};
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
    conn: Db,
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
    t: Txn<'c>,
    /// The items this transaction changes (format 2), proven when first touched.
    state: &'c std::cell::RefCell<state::Touched>,
}

/// A read snapshot ([`Store::snapshot`]).
pub(crate) struct Snapshot<'c>(#[allow(dead_code)] Txn<'c>);

impl<'c> Tx<'c> {
    /// `BEGIN IMMEDIATE` on `conn`; `root` is the trusted state root (format 2).
    /// `BEGIN IMMEDIATE` on `conn`, tracking the state changes in `state` (reset here).
    fn begin(
        conn: &'c Db,
        state: &'c std::cell::RefCell<state::Touched>,
        op: &'static str,
    ) -> Result<Tx<'c>> {
        let t = Txn::immediate(conn, op)?;
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
        self.t.commit()
    }

    /// The engine underneath, inside this transaction, for the store's own functions.
    fn engine(&self) -> &dyn Engine {
        self.t.engine()
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
        state::prove(self.engine(), &root, &item)?;
        st.items.insert(item);
        Ok(())
    }

    /// Proves `item`'s current value against the trusted state, unless this transaction
    /// changed it already (it was proven when touched).
    pub(crate) fn prove(&self, item: &state::Item) -> Result<()> {
        let st = self.state.borrow();
        match st.root {
            Some(root) if !st.items.contains(item) => {
                state::prove(self.engine(), &root, item).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// The revoked records, proven against the MAC'd revoked set ([`check_revoked_set`]).
    pub(crate) fn revoked_set(&self, keys: &Keys) -> Result<Vec<RawRecord>> {
        self.prove(&state::Item::RevokedSet)?;
        check_revoked_set(self.engine(), keys)
    }

    /// The highest CRL number stored (0 for none).
    pub(crate) fn max_crl_number(&self) -> Result<i64> {
        self.prove(&state::Item::CrlHead)?;
        self.engine().crl_max_number()
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
        self.engine().crl_insert(
            number,
            &CrlItemRow {
                this_update: ts(this_update),
                next_update: ts(next_update),
                entries: entries as i64,
                der: der.to_vec(),
            },
        )
    }

    /// The audit entry that records the last CRL made, and that CRL's number.
    pub(crate) fn last_crl_entry(&self) -> Result<Option<(i64, u64)>> {
        last_crl_entry(self.engine())
    }

    /// The DER of the CRL stored under `number`.
    pub(crate) fn crl_der(&self, number: u64) -> Result<Option<Vec<u8>>> {
        self.prove(&state::Item::Crl(number))?;
        crl_der(self.engine(), number)
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
        self.engine().pending_ca_put(&PendingCaRow {
            name: name.to_string(),
            algorithm: algorithm.to_string(),
            csr_der: csr_der.to_vec(),
            key_blob: key_blob.to_vec(),
            created_at: ts(now()),
        })
    }

    /// Forgets the sub-CA request.
    pub(crate) fn clear_pending_ca(&self) -> Result<()> {
        self.touch(state::Item::PendingCa)?;
        self.engine().pending_ca_delete()
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
        let before = meta_get(self.engine(), &k)?;
        match text {
            Some(t) => meta_set(self, &k, t)?,
            None => self.engine().meta_delete(&k)?,
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
        let raw = raw_record(self.engine(), &rec.serial)?;
        check_record_mac(keys, &raw)?;
        let mut without = raw.rec.clone();
        without.has_key = false;
        let mac = record_mac(keys, &without, None);
        self.engine().cert_drop_key(raw.rec.id, &mac)
    }

    /// Records (`Some`: JSON, [`crate::crl::CrlDeferred`]) or clears (`None`) the revocations
    /// no CRL lists yet: the [`state::CRL_DEFERRED`] setting, part of the authenticated state.
    pub(crate) fn set_crl_deferred(&self, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => meta_set(self, state::CRL_DEFERRED, v),
            None => {
                if meta_get(self.engine(), state::CRL_DEFERRED)?.is_none() {
                    return Ok(());
                }
                self.touch(state::Item::Setting(state::CRL_DEFERRED))?;
                self.engine().meta_delete(state::CRL_DEFERRED)
            }
        }
    }

    /// The deferred-CRL record as this transaction sees it, proven against the state it
    /// started from (unless it changed it already).
    pub(crate) fn crl_deferred(&self) -> Result<Option<String>> {
        self.prove(&state::Item::Setting(state::CRL_DEFERRED))?;
        meta_get(self.engine(), state::CRL_DEFERRED)
    }

    /// Where the store's state stands now: the state head and the audit head as recorded.
    /// Another write in between changes at least one of them ([`Tx::moved_since`]).
    pub(crate) fn mark(&self) -> Result<StateMark> {
        Ok(StateMark(
            meta_get(self.engine(), "state_head")?,
            meta_get(self.engine(), "audit_head")?,
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
            self.engine().chain_insert(i as i64, c)?;
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
            let conn = sqlite::create(&tmp)?;
            conn.create_tables()?;
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
                tx.engine().meta_insert(k, &v, "creating the store")?;
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
        let (conn, schema) = sqlite::open(&db)?;
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
        let format: Option<String> =
            sqlite::read_format(&store.conn).map_err(|reason| Error::UnsupportedStore {
                path: db.clone(),
                reason,
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
        let intact = checkpoint::problem(&self.dir, tx.engine())?.is_none()
            && v2_only_meta_keys(tx.engine())?.is_empty()
            && self.check_audit_chain()?.is_empty()
            && query_raw_records(tx.engine(), CertQuery::All)?
                .iter()
                .all(|raw| check_record_mac(keys, raw).is_ok())
            && check_revoked_set(tx.engine(), keys).is_ok()
            && self.parent_chain().is_ok();
        #[cfg(feature = "aws")]
        let intact = intact && self.acm_imports().is_ok();
        if !intact {
            return Ok(false);
        }
        tx.engine().create_upgrade_tables()?;
        tx.engine().meta_update(
            MetaField::Format,
            &FORMAT_VERSION.to_string(),
            "upgrading the store",
        )?;
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
            tx.engine()
                .meta_update(MetaField::Header, &json, "changing the passphrase")?;
            audit_append(tx, keys, "passwd", "", "", &serde_json::json!({"kdf": kdf}))
        })
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`): all of it commits or none.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx<'_>, &Keys) -> Result<T>) -> Result<T> {
        let keys = self.keys()?;
        let state_key = self.presign_state_key(keys);
        let tx = Tx::begin(&self.conn, &self.write_state, "locking the store")?;
        self.check_checkpoint(tx.engine())?;
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
                tx.engine().meta_update(
                    MetaField::Header,
                    &json,
                    "binding the store header to its format",
                )?;
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
            let head = state::trusted_head(tx.engine(), keys)?;
            tx.track(head.root, head.seq);
        }
        // Every write ends in rewriting `ca.crt` from the chain: prove it first, so a planted
        // chain certificate stops the command before it changes anything.
        self.parent_chain()?;
        let start_seq = meta_get(tx.engine(), "audit_head")?
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
            && meta_get(tx.engine(), audit_hash::AUDIT_HASH)?.is_none()
            && audit_seq(tx.engine())? > start_seq
            && self.check_audit_chain()?.is_empty()
        {
            audit_hash::start(&tx)?;
        }
        // Likewise the lists of the AWS records (`state::AWS_LISTS`), by the first write that
        // appends to the log.
        if self.format.get() >= 2
            && meta_get(tx.engine(), state::AWS_LISTS)?.is_none()
            && audit_seq(tx.engine())? > start_seq
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
        let t = Txn::deferred(&self.conn, "reading the store")?;
        *self.write_state.borrow_mut() = state::Touched::default();
        let tx = Tx {
            t,
            state: &self.write_state,
        };
        if self.format.get() >= 2 {
            let head = state::trusted_head(tx.engine(), keys)?;
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
        if self.format.get() < 2 || meta_get(tx.engine(), state::STATE_KEY_CERT)?.is_some() {
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
        let _snapshot = self.read_snapshot()?;
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
        let templates: i64 = self.conn.meta_template_count()?;
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
        Txn::deferred(&self.conn, "reading the store").map(Snapshot)
    }

    /// A snapshot for a lookup of several reads and their proof, unless one is open already
    /// (a write, or an outer snapshot): `None` then.
    pub(crate) fn read_snapshot(&self) -> Result<Option<Snapshot<'_>>> {
        if self.conn.outside_transaction() {
            self.snapshot().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The revoked records, proven against the MAC'd revoked set ([`check_revoked_set`]).
    pub(crate) fn revoked_set(&self, keys: &Keys) -> Result<Vec<RawRecord>> {
        self.proven(&[state::Item::RevokedSet])?;
        check_revoked_set(&self.conn, keys)
    }

    /// The engine's own check of the file (SQLite's `integrity_check`, for `verify`): `["ok"]`
    /// when sound. Unlike a quick check it also compares every index with its table, so an
    /// index page edited outside vpnca is named here.
    pub(crate) fn engine_check(&self) -> Result<Vec<String>> {
        self.conn.integrity_check()
    }

    /// The unfinished sub-CA request: its name and sealed key.
    pub(crate) fn pending_ca(&self) -> Result<Option<(String, Vec<u8>)>> {
        self.conn.pending_ca_get()
    }

    /// [`Store::check_audit_tail`] inside a write transaction.
    pub(crate) fn check_audit_tail_in(&self, tx: &Tx<'_>, from_seq: i64) -> Result<()> {
        self.check_audit_tail(tx.engine(), from_seq)
    }

    pub(crate) fn meta(&self, k: &str) -> Result<Option<String>> {
        meta_get(&self.conn, k)
    }

    // ---- reading records -------------------------------------------------------------------

    fn query_records(&self, q: CertQuery<'_>) -> Result<Vec<CertRecord>> {
        self.conn.cert_records(q)
    }

    /// The certificate with this serial.
    pub fn by_serial(&self, serial: &Serial) -> Result<CertRecord> {
        self.proven(&[state::Item::Cert(serial.hex())])?;
        let v = self.query_records(CertQuery::Serial(&serial.hex()))?;
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
            let _snapshot = self.read_snapshot()?;
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
        let _snapshot = self.read_snapshot()?;
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
        self.conn.vacuum()
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
        let _snapshot = self.read_snapshot()?;
        let (sp, mut items) = self.spellings(name)?;
        let mut v = match sp.as_slice() {
            [one] => self.query_records(CertQuery::Name(one))?,
            _ => {
                let a = spelling_args(&sp);
                self.query_records(CertQuery::Names(&a))?
            }
        };
        v.reverse();
        items.extend(sp.into_iter().map(state::Item::Name));
        items.extend(v.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(&v)?;
        Ok(v)
    }

    /// The stored spellings of `name`: its NFC form, and the stored names that are not in NFC
    /// but canonically equivalent to it (at most four in all); and the items of the state that
    /// prove them, for the caller's proof.
    ///
    /// With the look-alike index, the old spellings are those its entry for the name's key
    /// lists (an NFD spelling shares the key of its NFC form): proven, omissions included, in
    /// O(log n). The setting that says whether the store has the index is proven too, so a
    /// deleted setting row cannot switch the lookup to the scan. Without the index (format 1,
    /// or format 2 before its first write), the names are scanned once per process.
    fn spellings(&self, name: &str) -> Result<(Vec<String>, Vec<state::Item>)> {
        let nfc = crate::name::nfc(name);
        let mut out = vec![nfc.clone()];
        let old = |n: &String| !crate::name::is_nfc(n) && crate::name::nfc(n) == nfc;
        if self.format.get() < 2 || meta_get(&self.conn, alike::SETTING)?.is_none() {
            let legacy = match self.non_nfc_names.get() {
                Some(v) => v,
                None => {
                    let v = self
                        .conn
                        .cert_names(NameQuery::NonAscii, "reading names")?
                        .into_iter()
                        .filter(|n| !crate::name::is_nfc(n))
                        .collect();
                    self.non_nfc_names.get_or_init(|| v)
                }
            };
            out.extend(legacy.iter().filter(|n| old(n)).take(3).cloned());
            let items = if self.format.get() < 2 {
                Vec::new()
            } else {
                vec![state::Item::Setting(alike::SETTING)]
            };
            return Ok((out, items));
        }
        let key = crate::name::look_alike_key(&nfc);
        out.extend(
            alike::stored(&self.conn, &key)?
                .into_iter()
                .filter(old)
                .take(3),
        );
        Ok((
            out,
            vec![
                state::Item::Setting(alike::SETTING),
                state::Item::Alike(key),
            ],
        ))
    }

    /// Every certificate name in the store but the CA's, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        self.conn.cert_names(NameQuery::All, "reading names")
    }

    /// The names that have a live (unrevoked, unexpired) certificate, sorted.
    pub fn live_names(&self) -> Result<Vec<String>> {
        self.conn
            .cert_names(NameQuery::Live(ts(now())), "reading names")
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
        self.query_records(CertQuery::Revoked)
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
            let id = self.conn.cert_id_of(&r.serial.hex())?;
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
        let _snapshot = self.read_snapshot()?;
        let t = ts(now());
        let (sp, mut items) = self.spellings(name)?;
        let live = match sp.as_slice() {
            [one] => self.query_records(CertQuery::Live(one, t))?,
            _ => {
                let a = spelling_args(&sp);
                self.query_records(CertQuery::LiveNames(&a, t))?
            }
        }
        .pop();
        items.extend(sp.into_iter().map(state::Item::Name));
        items.extend(live.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(live.as_slice())?;
        Ok(live)
    }

    /// The live certificate of exactly this spelling of a name: each spelling has its own
    /// public mirror (`issued/NAME.crt`).
    pub(crate) fn live_spelled(&self, name: &str) -> Result<Option<CertRecord>> {
        let live = self.query_records(CertQuery::Live(name, ts(now())))?.pop();
        let mut items = vec![state::Item::Name(name.to_string())];
        items.extend(live.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(live.as_slice())?;
        Ok(live)
    }

    /// The CA certificate record.
    pub fn ca(&self) -> Result<CertRecord> {
        let ca = self.query_records(CertQuery::Ca)?.pop();
        let mut items = vec![state::Item::Ca];
        items.extend(ca.iter().map(|r| state::Item::Cert(r.serial.hex())));
        self.proven(&items)?;
        self.check_one_row_each(ca.as_slice())?;
        ca.ok_or(Error::NoCa)
    }

    /// Whether the store has a CA.
    pub fn has_ca(&self) -> Result<bool> {
        self.conn.cert_has_ca()
    }

    /// The parents of a sub-CA (issuer first, root last); empty for a root CA.
    ///
    /// The `chain` table carries no MAC, so the chain is proven instead: each certificate must
    /// be a CA that signed the one before it, starting from the store's CA certificate (its
    /// record's MAC checked when the store is unlocked). A certificate added by someone who can
    /// write the file (a foreign CA that would then go into `ca.crt`, every export, profile,
    /// `.p12` and the ACM chain) signed nothing before it: [`Error::Tampered`].
    pub fn parent_chain(&self) -> Result<Vec<Vec<u8>>> {
        let chain = self.conn.chain_get("reading the chain")?;
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
            Some(k) => self.query_records(CertQuery::Kind(k.as_str()))?,
            None => self.query_records(CertQuery::All)?,
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
        self.conn.cert_count().map(|n| n as u64)
    }

    /// For tests: SQLite's `EXPLAIN QUERY PLAN` of each certificate lookup on the issue /
    /// revoke / show / CRL paths, as `(query name, plan lines joined by " | ")`. The plans are
    /// computed from the same SQL those paths run (parameters unbound), so a test can prove
    /// that none of them scans the certificates table; the names starting `scan:` scan the
    /// `certs_name` index by design (one per command). Not part of the stable API.
    #[doc(hidden)]
    pub fn hot_query_plans(&self) -> Result<Vec<(&'static str, String)>> {
        self.conn.hot_query_plans()
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
                    if let Some(n) = self.conn.cert_name_of(serial)? {
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
fn v2_only_meta_keys(db: &dyn Engine) -> Result<Vec<String>> {
    db.meta_v2_only_keys()
}

/// The sequence number of the last audit entry (`meta.audit_head`; 0 for none).
fn audit_seq(db: &dyn Engine) -> Result<i64> {
    Ok(meta_get(db, "audit_head")?
        .and_then(|h| h.split_once(':').and_then(|(s, _)| s.parse::<i64>().ok()))
        .unwrap_or(0))
}

pub(crate) fn meta_get(db: &dyn Engine, k: &str) -> Result<Option<String>> {
    db.meta_get(k)
}

pub(crate) fn meta_set(tx: &Tx<'_>, k: &str, v: &str) -> Result<()> {
    if let Some(setting) = state::SETTINGS.iter().find(|s| **s == k) {
        tx.touch(state::Item::Setting(setting))?;
    } else if k == "revocation_digest" || k == "revoked_count" {
        tx.touch(state::Item::RevokedSet)?;
    } else if k == state::CA_KMS_KEY {
        tx.touch(state::Item::CaKey)?;
    }
    tx.engine().meta_put(k, v)
}

/// Records with their key blob and MAC, in one query (the CRL path reads 20,000 at once).
pub(crate) fn query_raw_records(db: &dyn Engine, q: CertQuery<'_>) -> Result<Vec<RawRecord>> {
    db.cert_raw_records(q)
}

pub(crate) fn raw_record(db: &dyn Engine, serial: &Serial) -> Result<RawRecord> {
    let rec = db
        .cert_records(CertQuery::Serial(&serial.hex()))?
        .pop()
        .ok_or_else(|| Error::NotFound {
            what: format!("no certificate with serial {serial}"),
        })?;
    let (key_blob, mac) = db.cert_key_blob(rec.id)?;
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
    rec.id = tx.engine().cert_insert(&rec, key_blob.as_deref(), &mac)?;
    Ok(rec)
}

/// Rewrites the mutable fields (state, revocation, superseded_by) of a record, with a new MAC.
/// The existing MAC is checked first: a tampered record is never "laundered" by an update.
pub(crate) fn update_record(tx: &Tx<'_>, keys: &Keys, rec: &CertRecord) -> Result<()> {
    tx.touch(state::Item::Cert(rec.serial.hex()))?;
    let raw = raw_record(tx.engine(), &rec.serial)?;
    check_record_mac(keys, &raw)?;
    let mac = record_mac(keys, rec, raw.key_blob.as_deref());
    tx.engine().cert_update(raw.rec.id, rec, &mac)
}

/// The per-serial token XOR-ed into the revocation digest.
pub(crate) fn revocation_token(keys: &Keys, serial: &Serial) -> Vec<u8> {
    keys.mac(&[b"revoked-v1", serial.hex().as_bytes()])
}

/// Adds a serial to the MAC-protected set of revoked serials (digest and count).
pub(crate) fn add_revoked(tx: &Tx<'_>, keys: &Keys, serial: &Serial) -> Result<()> {
    let mut digest =
        crypto::unhex(&meta_get(tx.engine(), "revocation_digest")?.unwrap_or_default())
            .filter(|d| d.len() == 32)
            .ok_or_else(|| corrupt("the revocation digest is unreadable".into()))?;
    for (d, t) in digest.iter_mut().zip(revocation_token(keys, serial)) {
        *d ^= t;
    }
    let count: u64 = meta_get(tx.engine(), "revoked_count")?
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

/// Fewer revoked records than this are checked on one thread (a thread costs more than it
/// saves).
const REVOKED_CHUNK_MIN: usize = 2048;

/// Checks each record's MAC in `raws` and returns the XOR of their revocation tokens.
fn revoked_chunk(keys: &Keys, raws: &[RawRecord]) -> Result<Vec<u8>> {
    let mut digest = vec![0u8; 32];
    for raw in raws {
        check_record_mac(keys, raw)?;
        for (d, t) in digest
            .iter_mut()
            .zip(revocation_token(keys, &raw.rec.serial))
        {
            *d ^= t;
        }
    }
    Ok(digest)
}

/// Checks that the revoked records in the store are exactly the set the digest vouches for,
/// each with an intact MAC. Detects a revoked certificate edited back to valid, or deleted.
pub(crate) fn check_revoked_set(db: &dyn Engine, keys: &Keys) -> Result<Vec<RawRecord>> {
    let raws = query_raw_records(db, CertQuery::Revoked)?;
    // Two MACs per record (its own, its revocation token): for a CRL of 20,000 entries the
    // records are checked on every core, in chunks; the first problem in record order wins,
    // as one pass would find it.
    let threads = if raws.len() < REVOKED_CHUNK_MIN {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    };
    let chunk = raws.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<u8>>> = if threads == 1 {
        vec![revoked_chunk(keys, &raws)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = raws
                .chunks(chunk)
                .map(|c| scope.spawn(move || revoked_chunk(keys, c)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let mut digest = vec![0u8; 32];
    for part in parts {
        for (d, t) in digest.iter_mut().zip(part?) {
            *d ^= t;
        }
    }
    let stored =
        crypto::unhex(&meta_get(db, "revocation_digest")?.unwrap_or_default()).unwrap_or_default();
    let count: u64 = meta_get(db, "revoked_count")?
        .unwrap_or_default()
        .parse()
        .unwrap_or(u64::MAX);
    let ok_count = count == raws.len() as u64;
    let mac_ok = if count == 0 {
        stored == vec![0u8; 32]
    } else {
        let mac =
            crypto::unhex(&meta_get(db, "revocation_mac")?.unwrap_or_default()).unwrap_or_default();
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
    let head = meta_get(tx.engine(), "audit_head")?.unwrap_or_default();
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
    tx.engine().audit_insert(&e)?;
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
    pub(crate) fn check_audit_tail(&self, db: &dyn Engine, from_seq: i64) -> Result<()> {
        let keys = self.keys()?;
        let bad = |what: String| Error::Tampered {
            what: format!("audit log: {what} (the database was edited or put back outside vpnca)"),
        };
        // The head first, then the entries up to it: outside a transaction (`private_key` runs
        // the guard on the plain connection) other processes may append meanwhile, and what
        // they append after the head read is not looked at. The checkpoint `from_seq` was read
        // before the head, so the head is at least there.
        let head = meta_get(db, "audit_head")?.unwrap_or_default();
        let head_seq = head
            .split_once(':')
            .and_then(|(s, _)| s.parse::<i64>().ok())
            .ok_or_else(|| bad("the head is unreadable".into()))?;
        // A rekey after the checkpointed entry: the entries before it are MAC'd under the old
        // key and are checked against the digest the `rekey` entry records, and the tail from
        // there (O(entries), only while a checkpoint is older than a rekey: a crash right
        // after one). A `rekey` row that is not one does not pass the MAC check below.
        let rekey_seq: Option<i64> = db.audit_last_of(rekey::ACTION, from_seq, head_seq)?;
        let from_seq = match rekey_seq {
            Some(r) => {
                let mut before = audit_entries_from(db, 1)?;
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
        let entries: Vec<AuditEntry> = audit_entries_from(db, start)?
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
pub(crate) fn crl_der(db: &dyn Engine, number: u64) -> Result<Option<Vec<u8>>> {
    db.crl_der(number)
}

/// The newest `crl` audit entry: its sequence number and the CRL number it records.
pub(crate) fn last_crl_entry(db: &dyn Engine) -> Result<Option<(i64, u64)>> {
    let row = db.audit_last_crl()?;
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
pub(crate) fn audit_entries_from(db: &dyn Engine, from_seq: i64) -> Result<Vec<AuditEntry>> {
    db.audit_from(from_seq)
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
        self.conn.crl_latest()
    }

    /// When the last revocation happened (to tell whether the CRL is stale).
    pub fn last_revocation(&self) -> Result<Option<OffsetDateTime>> {
        let v = self.conn.cert_last_revocation()?;
        Ok(v.map(from_ts))
    }
}

/// Writes a public file (a certificate or CRL) to a path the user named, atomically, mode
/// 0644: a regular file there is replaced; a directory, device, FIFO, socket or symbolic link
/// is refused ([`fsutil::replace_output`]).
pub fn write_public_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fsutil::replace_output(path, bytes, 0o644)
}
