//! The look-alike index: the check that refuses a new name looking like the name of a live
//! certificate ([`crate::name::look_alike_key`]), in O(log n) against the authenticated state.
//!
//! Each look-alike key is an item of the state ([`Item::Alike`]) whose value is the sorted list
//! of the distinct spellings of every name that has, or had, a certificate record under that
//! key (the CA's excepted). The list only grows: a record is never deleted and never renamed,
//! so only [`super::insert_record`] changes it, and a revocation or an expiry does not. Whether
//! one of those spellings is live is proven per spelling ([`Store::live_spelled`]), so the
//! decision is exactly that of the scan it replaces, with nothing taken on trust: the list is
//! proven like every value a decision reads, and so its omissions are too.
//!
//! The values live in `meta` (`alike.KEY`: a JSON array), and the setting `alike_index` (an
//! item of the state) says the store has them. Stores of format 2 made before the index get it
//! in their first write ([`migrate`]); until then — and in a format-1 store — the check reads
//! every valid name as before ([`NameQuery::Valid`]).

use std::collections::{BTreeMap, HashMap};

use super::crypto::Keys;
use super::engine::{Engine, NameQuery};
use super::state::Item;
use super::{Store, Tx, audit_append, meta_get, meta_set, state};
use crate::name::look_alike_key;
use crate::{Error, Result};

/// The store setting (an item of the state, [`state::SETTINGS`]) present once the store has
/// the look-alike index: `1`.
pub(crate) const SETTING: &str = "alike_index";

/// The `meta` keys of the index are this followed by the look-alike key.
const PREFIX: &str = "alike.";

/// The `meta` key that holds the spellings under `key`.
pub(crate) fn meta_key(key: &str) -> String {
    format!("{PREFIX}{key}")
}

/// The stored text of `names` (sorted, distinct).
fn text(names: &[String]) -> String {
    serde_json::Value::from(names.to_vec()).to_string()
}

/// The spellings stored under `key`, as the table holds them (not proven here).
pub(super) fn stored(db: &dyn Engine, key: &str) -> Result<Vec<String>> {
    let Some(v) = meta_get(db, &meta_key(key))? else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&v).map_err(|_| Error::Tampered {
        what: format!(
            "the look-alike index entry {} is unreadable (edited outside vpnca)",
            crate::shell::quote(key)
        ),
    })
}

/// The look-alike keys the `meta` table holds an entry for (not proven: the whole-state check
/// and the upgrade use them).
pub(crate) fn stored_keys(db: &dyn Engine) -> Result<Vec<String>> {
    let keys = db.meta_alike_keys()?;
    Ok(keys
        .into_iter()
        .filter_map(|k| k.strip_prefix(PREFIX).map(str::to_string))
        .collect())
}

/// The index as the certificate names in the tables make it: every look-alike key and its
/// sorted, distinct spellings.
pub(crate) fn derive(db: &dyn Engine) -> Result<BTreeMap<String, Vec<String>>> {
    let names = db.cert_names(NameQuery::All, "reading the certificate names")?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in names {
        // In name order, so each list is sorted.
        out.entry(look_alike_key(&n)).or_default().push(n);
    }
    Ok(out)
}

/// Writes the whole index from the certificate names, and the setting. Only where the tables
/// are known to be the state's (the upgrade from format 1, [`migrate`]), followed by a rebuild
/// of the tree.
pub(super) fn write_all(tx: &Tx<'_>) -> Result<()> {
    for (key, names) in derive(tx.engine())? {
        meta_set(tx, &meta_key(&key), &text(&names))?;
    }
    meta_set(tx, SETTING, "1")
}

/// Gives a format-2 store made before the index its index, inside the transaction of its first
/// write (one commit with the write, or none): only when the whole state the tables hold is the
/// one the trusted head commits to (building the index from edited names would vouch for them;
/// a store that fails stays without the index, read by the scan as before, and `verify` names
/// the problem). The tree is then rebuilt with the new items and an `upgrade` audit entry makes
/// the new head (so the database of before is an older copy for the checkpoint). Returns
/// whether it built the index.
pub(super) fn migrate(tx: &Tx<'_>, keys: &Keys) -> Result<bool> {
    if meta_get(tx.engine(), SETTING)?.is_some() {
        // Indexed (or an added row, which the proof of the setting then refuses).
        return Ok(false);
    }
    let head = state::trusted_head(tx.engine(), keys)?;
    if !state::check_all_against(tx.engine(), &head)?.is_empty() {
        return Ok(false);
    }
    write_all(tx)?;
    audit_append(
        tx,
        keys,
        "upgrade",
        "",
        "",
        &serde_json::json!({"index": "look-alike"}),
    )?;
    state::build(tx, keys)?;
    Ok(true)
}

/// Records `name` (a new certificate record's, not the CA's) in the index, inside the write
/// that inserts the record: the entry is touched (proven) and rewritten when the spelling is
/// new. Nothing in a store without the index.
pub(super) fn add(tx: &Tx<'_>, name: &str) -> Result<()> {
    let cached = tx.state.borrow().alike_indexed;
    let indexed = match cached {
        Some(b) => b,
        None => {
            // Proven, so that a deleted setting row cannot switch the upkeep off.
            let b = tx.state.borrow().root.is_some() && {
                tx.prove(&Item::Setting(SETTING))?;
                meta_get(tx.engine(), SETTING)?.is_some()
            };
            tx.state.borrow_mut().alike_indexed = Some(b);
            b
        }
    };
    if !indexed {
        return Ok(());
    }
    let key = look_alike_key(name);
    tx.touch(Item::Alike(key.clone()))?;
    let mut names = stored(tx.engine(), &key)?;
    if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
        names.insert(at, name.to_string());
        meta_set(tx, &meta_key(&key), &text(&names))?;
    }
    Ok(())
}

/// `verify`'s check of the index against the names (the state proves both, so a difference is
/// a vpnca bug, or an edit made before the index was built): problems, for people.
pub(crate) fn problems(db: &dyn Engine) -> Result<Vec<String>> {
    if meta_get(db, SETTING)?.is_none() {
        return Ok(Vec::new());
    }
    let want = derive(db)?;
    let mut out = Vec::new();
    for key in stored_keys(db)? {
        if !want.contains_key(&key) {
            out.push(format!(
                "the look-alike index has an entry {} that no certificate name makes",
                crate::shell::quote(&key)
            ));
        }
    }
    for (key, names) in &want {
        let differs = match stored(db, key) {
            Ok(have) => have != *names,
            Err(Error::Tampered { what }) => {
                out.push(what);
                continue;
            }
            Err(e) => return Err(e),
        };
        if differs {
            out.push(format!(
                "the look-alike index entry {} does not list exactly the names {}",
                crate::shell::quote(key),
                names
                    .iter()
                    .map(|n| crate::shell::quote(n).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(out)
}

/// The check of new names against look-alikes ([`look_alike_key`]): the names of live
/// certificates in the store, and the names admitted earlier in the same batch.
/// [`Store::look_alikes`] makes one.
pub struct LookAlikes<'s> {
    store: &'s Store,
    /// A store without the index: every name with a record in state `valid` (expired ones
    /// too), by key. `None`: the store's index is read instead.
    scanned: Option<HashMap<String, Vec<String>>>,
    admitted: HashMap<String, String>,
}

impl LookAlikes<'_> {
    /// Refuses `name` if it looks like the name of a live certificate
    /// ([`Error::LookAlikeName`]) or like a name admitted before ([`Error::InvalidName`]);
    /// otherwise admits it. The same name again passes (whether it may be issued twice is
    /// another check).
    pub fn admit(&mut self, name: &str) -> Result<()> {
        let key = look_alike_key(name);
        let known = match &self.scanned {
            Some(by_key) => by_key.get(&key).cloned().unwrap_or_default(),
            None => self.store.alike_spellings(&key)?,
        };
        for existing in &known {
            if existing != name && self.store.live_spelled(existing)?.is_some() {
                return Err(Error::LookAlikeName {
                    name: name.to_string(),
                    existing: existing.clone(),
                });
            }
        }
        if let Some(earlier) = self.admitted.get(&key).filter(|e| *e != name) {
            return Err(Error::InvalidName {
                name: name.to_string(),
                reason: format!(
                    "it looks like {}, earlier in this batch (same letters after Unicode normalization, case folding and look-alike mapping): give them names that tell them apart",
                    crate::shell::quote(earlier)
                ),
            });
        }
        self.admitted.insert(key, name.to_string());
        Ok(())
    }
}

impl Store {
    /// The look-alike check for new names ([`LookAlikes`]) against the names with a live
    /// certificate.
    pub fn look_alikes(&self) -> Result<LookAlikes<'_>> {
        let scanned = if self.alike_indexed()? {
            None
        } else {
            let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
            for n in self.conn.cert_names(NameQuery::Valid, "reading names")? {
                by_key.entry(look_alike_key(&n)).or_default().push(n);
            }
            Some(by_key)
        };
        Ok(LookAlikes {
            store: self,
            scanned,
            admitted: HashMap::new(),
        })
    }

    /// Refuses names that look like a different name with a live certificate
    /// ([`crate::name::looks_alike`]), or like each other: two valid certificates whose names
    /// look the same are a revocation waiting to hit the wrong one.
    pub fn check_look_alikes<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let mut check = self.look_alikes()?;
        for name in names {
            check.admit(name)?;
        }
        Ok(())
    }

    /// Whether the store has the look-alike index (its setting, proven).
    fn alike_indexed(&self) -> Result<bool> {
        Ok(self.format() >= 2 && self.setting(SETTING)?.is_some())
    }

    /// The spellings the index lists under `key`, proven against the state (read in the same
    /// snapshot as the proof).
    fn alike_spellings(&self, key: &str) -> Result<Vec<String>> {
        let _snapshot = self.read_snapshot()?;
        let names = stored(&self.conn, key)?;
        self.proven(&[Item::Alike(key.to_string())])?;
        Ok(names)
    }
}
