//! Store format 2: one authenticated state (docs/design/authenticated-state.md).
//!
//! Every value a decision reads — each certificate record, the serials of each name, the CA
//! and its chain, each CRL and the highest CRL number, the revoked set, the CRL settings, the
//! pending sub-CA and the AWS records — is an [`Item`] of one map, committed to by the root of
//! a sparse Merkle tree ([`super::smt`]). The tables stay where the values live; the tree
//! (`smt_nodes`) holds the hash of each item's canonical encoding ([`value`]). The root sits in
//! the **state head** (`meta.state_head`: the audit sequence number, the root and a MAC under
//! the store key over both and the audit head), so an old row, an old set of rows, an old tree
//! or an old head put back by someone without the key all fail to match: a row against its
//! proof, a tree against the head, a head against the audit log.
//!
//! A write transaction ([`super::Tx`]) *touches* each item before it changes it: the item's
//! current value, read from the tables, must be the one the trusted root proves — so a
//! tampered row is never laundered into a new root — and at the commit the touched items are
//! read again and the tree and head are updated in the same transaction.

use std::collections::{BTreeMap, BTreeSet};

use super::crypto::{self, Keys};
use super::engine::{AwsList, Engine};
use super::smt::{self, Hash, Node, NodeKey, NodeSource};
use super::{meta_get, meta_set};
use crate::{Error, Result};

/// The store settings that are part of the state (CRL policy, the CRL number floor, the second
/// checkpoint: `checkpoint::OUTSIDE_SETTING`, the syslog socket, the audit log's hash chain:
/// `audit_hash::AUDIT_HASH`, the deferred CRL: [`CRL_DEFERRED`], the look-alike index:
/// `alike::SETTING`).
pub(crate) const SETTINGS: [&str; 8] = [
    "crl_days",
    "crl_omit_expired",
    "crl_number_floor",
    super::checkpoint::OUTSIDE_SETTING,
    super::syslog::SETTING,
    super::audit_hash::AUDIT_HASH,
    CRL_DEFERRED,
    super::alike::SETTING,
];

/// The setting that records revocations no CRL lists yet (JSON, [`crate::crl::CrlDeferred`]):
/// set by a revocation whose CRL is signed by KMS after the revocation is committed, cleared by
/// the next CRL recorded. Absent when the latest CRL covers the revoked set.
pub(crate) const CRL_DEFERRED: &str = "crl_deferred";

/// The `meta` key of the state-signing key's certificate (DER, hex).
pub(crate) const STATE_KEY_CERT: &str = "state_key_cert";

/// The `meta` key of the state head's signature (Ed25519, hex) by the state-signing key.
pub(crate) const STATE_SIG: &str = "state_sig";

/// The `meta` key of the reference to a CA key held in AWS KMS (JSON,
/// [`crate::ca_key::KmsKeyRef`]); absent for a CA whose key the store holds.
pub(crate) const CA_KMS_KEY: &str = "ca_kms_key";

/// The `meta` key that marks a store whose AWS records are listed in the state
/// ([`Item::AwsImports`], [`Item::AwsEndpoints`]): set by `init`, the upgrade, or the first
/// write of a store made before, which starts both lists from the tables (rows deleted before
/// then stay unseen, as before). The lists' values depend on it, so deleting it later, or
/// planting it, fails their proofs.
pub(crate) const AWS_LISTS: &str = "aws_lists";

/// Starts the AWS lists (see [`AWS_LISTS`]) inside `tx`, when the store has not yet; the lists
/// are touched first, so their absence is proven (a planted marker stops the write).
pub(crate) fn start_aws_lists(tx: &super::Tx<'_>) -> Result<()> {
    if meta_get(tx.engine(), AWS_LISTS)?.is_some() {
        return Ok(());
    }
    tx.touch(Item::AwsImports)?;
    tx.touch(Item::AwsEndpoints)?;
    meta_set(tx, AWS_LISTS, "1")
}

/// The `meta` key that holds the adopted profile `name`'s TOML text.
pub(crate) fn template_key(name: &str) -> String {
    format!("template.{name}")
}

/// One value of the authenticated state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Item {
    /// A certificate record, by serial (hex, as stored).
    Cert(String),
    /// The serials (all states, CA excluded) recorded under one name.
    Name(String),
    /// The spellings of every name (CA excluded) recorded under one look-alike key
    /// ([`crate::name::look_alike_key`]), sorted: the look-alike index ([`super::alike`]).
    Alike(String),
    /// The serial of the CA record.
    Ca,
    /// The parent chain of a sub-CA.
    Chain,
    /// The unfinished sub-CA request.
    PendingCa,
    /// One stored CRL, by number.
    Crl(u64),
    /// The highest CRL number stored.
    CrlHead,
    /// The revoked-set digest and count.
    RevokedSet,
    /// A store setting (one of [`SETTINGS`]).
    Setting(&'static str),
    /// An ACM import record, by ARN.
    AwsImport(String),
    /// A Client VPN endpoint record, by id and region.
    AwsEndpoint(String, String),
    /// The ARNs of every ACM import record: proves that none is missing (a deleted row would
    /// make `acm import` create a new ACM certificate instead of re-importing). Present once a
    /// write has started the AWS lists ([`AWS_LISTS`]).
    AwsImports,
    /// The id and region of every endpoint record, likewise.
    AwsEndpoints,
    /// An adopted certificate profile (`vpnca template adopt`), by built-in name: its TOML
    /// text, which replaces the built-in profile of that name.
    Template(&'static str),
    /// The certificate of the state-signing key (its SHA-256).
    StateKey,
    /// The reference to the CA's key in AWS KMS ([`CA_KMS_KEY`]).
    CaKey,
}

/// Length-prefixed concatenation: the canonical encoding of a list of fields.
fn enc(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(&(f.len() as u32).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

impl Item {
    /// The map key.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            Item::Cert(s) => enc(&[b"cert", s.as_bytes()]),
            Item::Name(n) => enc(&[b"name", n.as_bytes()]),
            Item::Alike(k) => enc(&[b"alike", k.as_bytes()]),
            Item::Ca => enc(&[b"ca"]),
            Item::Chain => enc(&[b"chain"]),
            Item::PendingCa => enc(&[b"pending-ca"]),
            Item::Crl(n) => enc(&[b"crl", n.to_string().as_bytes()]),
            Item::CrlHead => enc(&[b"crl-head"]),
            Item::RevokedSet => enc(&[b"revoked-set"]),
            Item::Setting(k) => enc(&[b"setting", k.as_bytes()]),
            Item::AwsImport(a) => enc(&[b"aws-import", a.as_bytes()]),
            Item::AwsEndpoint(i, r) => enc(&[b"aws-endpoint", i.as_bytes(), r.as_bytes()]),
            Item::AwsImports => enc(&[b"aws-imports"]),
            Item::AwsEndpoints => enc(&[b"aws-endpoints"]),
            Item::Template(n) => enc(&[b"template", n.as_bytes()]),
            Item::StateKey => enc(&[b"state-key"]),
            Item::CaKey => enc(&[b"ca-key"]),
        }
    }

    fn key_hash(&self) -> Hash {
        smt::key_hash(&self.key())
    }

    /// For people: what this item is.
    pub(crate) fn describe(&self) -> String {
        match self {
            Item::Cert(s) => format!("the record of certificate {s}"),
            Item::Name(n) => format!("the list of certificates named {}", crate::shell::quote(n)),
            Item::Alike(k) => format!("the look-alike index entry {}", crate::shell::quote(k)),
            Item::Ca => "the CA record".into(),
            Item::Chain => "the CA's parent chain".into(),
            Item::PendingCa => "the pending sub-CA request".into(),
            Item::Crl(n) => format!("CRL number {n}"),
            Item::CrlHead => "the highest CRL number".into(),
            Item::RevokedSet => "the set of revoked certificates".into(),
            Item::Setting(k) => format!("the setting {k}"),
            Item::AwsImport(a) => format!("the ACM import record of {a}"),
            Item::AwsEndpoint(i, r) => format!("the record of endpoint {i} in {r}"),
            Item::AwsImports => "the list of ACM import records".into(),
            Item::AwsEndpoints => "the list of endpoint records".into(),
            Item::Template(n) => format!("the adopted {n} profile"),
            Item::StateKey => "the state-signing key's certificate".into(),
            Item::CaKey => "the reference to the CA's key in KMS".into(),
        }
    }
}

/// Whether the database has the table `name` (format 1 may lack the AWS tables).
pub(super) fn has_table(db: &dyn Engine, name: &str) -> Result<bool> {
    db.has_table(name)
}

fn opt_int(v: Option<i64>) -> Vec<u8> {
    v.map(|v| v.to_string().into_bytes()).unwrap_or_default()
}

/// The canonical value of `item` as the tables hold it now (`None`: absent).
pub(crate) fn value(conn: &dyn Engine, item: &Item) -> Result<Option<Vec<u8>>> {
    let op = "reading the store state";
    Ok(match item {
        Item::Cert(serial) => conn.cert_item(serial)?.map(|r| {
            let text = |t: &Option<String>| t.clone().unwrap_or_default().into_bytes();
            enc(&[
                &text(&r.text[0]),
                &text(&r.text[1]),
                &text(&r.text[2]),
                &text(&r.text[3]),
                &text(&r.text[4]),
                &opt_int(r.times[0]),
                &opt_int(r.times[1]),
                &opt_int(r.times[2]),
                &text(&r.text2[0]),
                &text(&r.text2[1]),
                &opt_int(r.created_at),
                &crypto::sha256(&r.der),
                &r.key_blob.map(|b| crypto::sha256(&b)).unwrap_or_default(),
            ])
        }),
        Item::Name(name) => list(conn.cert_serials_of_name(name)?),
        Item::Ca => list(conn.cert_ca_serials()?),
        Item::Chain => {
            let ders = conn.chain_get(op)?;
            let hashes: Vec<Vec<u8>> = ders.iter().map(|d| crypto::sha256(d)).collect();
            let refs: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
            (!ders.is_empty()).then(|| enc(&refs))
        }
        Item::PendingCa => conn.pending_ca_item()?.map(|r| {
            enc(&[
                r.name.as_bytes(),
                r.algorithm.as_bytes(),
                &crypto::sha256(&r.csr_der),
                &crypto::sha256(&r.key_blob),
                r.created_at.to_string().as_bytes(),
            ])
        }),
        Item::Crl(n) => conn.crl_item(*n)?.map(|r| {
            enc(&[
                r.this_update.to_string().as_bytes(),
                r.next_update.to_string().as_bytes(),
                r.entries.to_string().as_bytes(),
                &crypto::sha256(&r.der),
            ])
        }),
        Item::CrlHead => conn.crl_head()?.map(|n| enc(&[n.to_string().as_bytes()])),
        Item::RevokedSet => {
            let digest = meta_get(conn, "revocation_digest")?.unwrap_or_default();
            let count = meta_get(conn, "revoked_count")?.unwrap_or_default();
            Some(enc(&[digest.as_bytes(), count.as_bytes()]))
        }
        Item::Setting(k) => meta_get(conn, k)?.map(|v| enc(&[v.as_bytes()])),
        Item::Template(n) => meta_get(conn, &template_key(n))?.map(|v| enc(&[v.as_bytes()])),
        Item::Alike(k) => meta_get(conn, &super::alike::meta_key(k))?.map(|v| enc(&[v.as_bytes()])),
        Item::StateKey => {
            meta_get(conn, STATE_KEY_CERT)?.map(|v| enc(&[&crypto::sha256(v.as_bytes())]))
        }
        Item::CaKey => meta_get(conn, CA_KMS_KEY)?.map(|v| enc(&[v.as_bytes()])),
        Item::AwsImport(arn) => {
            if !has_table(conn, "aws_imports")? {
                return Ok(None);
            }
            conn.aws_import(arn)?.map(|r| {
                enc(&[
                    r.region.as_bytes(),
                    r.role.as_bytes(),
                    r.name.as_bytes(),
                    r.serial.as_bytes(),
                    r.imported_at.to_string().as_bytes(),
                    &r.mac,
                ])
            })
        }
        Item::AwsImports | Item::AwsEndpoints => {
            if meta_get(conn, AWS_LISTS)?.is_none() {
                return Ok(None);
            }
            let (table, which) = match item {
                Item::AwsImports => ("aws_imports", AwsList::Imports),
                _ => ("aws_endpoints", AwsList::Endpoints),
            };
            let mut rows: Vec<Vec<u8>> = Vec::new();
            if has_table(conn, table)? {
                rows = conn
                    .aws_list(which)?
                    .into_iter()
                    .map(|(a, b)| enc(&[a.as_bytes(), b.as_bytes()]))
                    .collect();
            }
            let refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
            Some(enc(&[b"list", &enc(&refs)]))
        }
        Item::AwsEndpoint(id, region) => {
            if !has_table(conn, "aws_endpoints")? {
                return Ok(None);
            }
            conn.aws_endpoint(id, region)?.map(|r| {
                enc(&[
                    r.crl_number.to_string().as_bytes(),
                    r.pushed_at.to_string().as_bytes(),
                ])
            })
        }
    })
}

/// A list of strings as a list value (`None` when empty).
fn list(rows: Vec<String>) -> Option<Vec<u8>> {
    let refs: Vec<&[u8]> = rows.iter().map(|s| s.as_bytes()).collect();
    (!rows.is_empty()).then(|| enc(&refs))
}

/// Every item the tables hold now: the whole state, for the upgrade and for `verify`.
pub(crate) fn all_items(conn: &dyn Engine) -> Result<BTreeMap<Item, Vec<u8>>> {
    let mut items: Vec<Item> = vec![
        Item::Ca,
        Item::Chain,
        Item::PendingCa,
        Item::CrlHead,
        Item::RevokedSet,
        Item::StateKey,
        Item::CaKey,
        Item::AwsImports,
        Item::AwsEndpoints,
    ];
    items.extend(SETTINGS.iter().map(|k| Item::Setting(k)));
    items.extend(
        crate::profile::BUILTIN
            .iter()
            .map(|(n, _)| Item::Template(n)),
    );
    items.extend(conn.cert_all_serials()?.into_iter().map(Item::Cert));
    items.extend(conn.cert_all_names()?.into_iter().map(Item::Name));
    items.extend(
        super::alike::stored_keys(conn)?
            .into_iter()
            .map(Item::Alike),
    );
    let numbers = conn.crl_numbers()?;
    for n in numbers {
        let n = u64::try_from(n).map_err(|_| Error::Tampered {
            what: format!("a CRL is stored under the number {n}"),
        })?;
        items.push(Item::Crl(n));
    }
    if has_table(conn, "aws_imports")? {
        items.extend(conn.aws_import_arns()?.into_iter().map(Item::AwsImport));
    }
    if has_table(conn, "aws_endpoints")? {
        let eps = conn.aws_endpoint_keys()?;
        items.extend(eps.into_iter().map(|(i, r)| Item::AwsEndpoint(i, r)));
    }
    let mut out = BTreeMap::new();
    for item in items {
        if let Some(v) = value(conn, &item)? {
            out.insert(item, v);
        }
    }
    Ok(out)
}

/// The root of a map of items.
pub(crate) fn root_of(items: &BTreeMap<Item, Vec<u8>>) -> Hash {
    smt::root_of(
        items
            .iter()
            .map(|(k, v)| (k.key_hash(), smt::value_hash(v))),
    )
}

/// The tree's nodes as the engine stores them, read as one batch.
pub(crate) struct EngineNodes<'c>(pub(crate) &'c dyn Engine);

impl NodeSource for EngineNodes<'_> {
    fn get_many(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_bytes()).collect();
        let rows = self.0.nodes_get_many(&wanted)?;
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = rows.into_iter().collect();
        wanted
            .iter()
            .map(|k| found.remove(k).map(|v| Node::from_bytes(&v)).transpose())
            .collect()
    }
}

/// Writes a tree change (or a whole tree).
pub(crate) fn write_nodes(
    conn: &dyn Engine,
    writes: impl IntoIterator<Item = (NodeKey, Option<Node>)>,
) -> Result<()> {
    conn.nodes_write(
        &mut writes
            .into_iter()
            .map(|(k, n)| (k.to_bytes(), n.map(|n| n.to_bytes().to_vec()))),
    )
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// The audit entry (its sequence number) of the write that made this state.
    pub(crate) seq: i64,
    /// The tree's root.
    pub(crate) root: Hash,
}

impl Head {
    /// `seq:root` in hex: how the head is shown and anchored outside the store.
    pub(crate) fn text(&self) -> String {
        format!("{}:{}", self.seq, crypto::hex(&self.root))
    }

    /// Reads [`Head::text`].
    pub(crate) fn parse(s: &str) -> Option<Head> {
        let (seq, root) = s.trim().split_once(':')?;
        let seq = seq.parse::<i64>().ok().filter(|s| *s > 0)?;
        let root: Hash = crypto::unhex(root)?.try_into().ok()?;
        Some(Head { seq, root })
    }
}

/// What the state-signing key signs: the head and the audit head it belongs to.
fn head_message(head: &Head, audit_head: &str) -> Vec<u8> {
    enc(&[
        b"vpnca state head v2",
        head.seq.to_string().as_bytes(),
        &head.root,
        audit_head.as_bytes(),
    ])
}

fn head_mac(keys: &Keys, head: &Head, audit_head: &str) -> Vec<u8> {
    keys.mac(&[
        b"state-head-v2",
        head.seq.to_string().as_bytes(),
        &head.root,
        audit_head.as_bytes(),
    ])
}

/// The head as the database records it, unchecked (readers without the key show it as is).
pub(crate) fn stored_head(conn: &dyn Engine) -> Result<Option<Head>> {
    Ok(meta_get(conn, "state_head")?.and_then(|v| {
        let (head, _mac) = v.rsplit_once(':')?;
        Head::parse(head)
    }))
}

/// The trusted head: the one in `meta`, whose MAC binds it to the audit head (the last audit
/// entry, itself chained under the key). Anything else is [`Error::Tampered`].
pub(crate) fn trusted_head(conn: &dyn Engine, keys: &Keys) -> Result<Head> {
    let bad = |what: &str| Error::Tampered {
        what: format!("the state head {what} (the database was edited or put back outside vpnca)"),
    };
    let v = meta_get(conn, "state_head")?.ok_or_else(|| bad("is missing"))?;
    let (head, mac) = v.rsplit_once(':').ok_or_else(|| bad("is unreadable"))?;
    let head = Head::parse(head).ok_or_else(|| bad("is unreadable"))?;
    let mac = crypto::unhex(mac).ok_or_else(|| bad("is unreadable"))?;
    let audit_head = meta_get(conn, "audit_head")?.unwrap_or_default();
    let audit_seq = audit_head
        .split_once(':')
        .and_then(|(s, _)| s.parse::<i64>().ok());
    if audit_seq != Some(head.seq)
        || !keys.mac_ok(
            &[
                b"state-head-v2",
                head.seq.to_string().as_bytes(),
                &head.root,
                audit_head.as_bytes(),
            ],
            &mac,
        )
    {
        return Err(bad("does not belong to the audit log's last entry"));
    }
    Ok(head)
}

/// A state head checked without the passphrase: signed by the state-signing key, whose
/// certificate the state itself commits to and the CA the state records has signed.
pub(crate) struct PublicHead {
    pub(crate) head: Head,
    /// The CA certificate (DER) that certified the state-signing key.
    pub(crate) ca_der: Vec<u8>,
}

/// The state head as anyone without the passphrase can check it (docs/store-format.md#the-state-signing-key):
/// `None` when the store has no state-signing key yet; [`Error::Tampered`] when the head is
/// not signed by it, or its certificate is not the one the state records, or not signed by the
/// CA the state records.
pub(crate) fn public_head(conn: &dyn Engine) -> Result<Option<PublicHead>> {
    use x509_parser::prelude::FromDer;
    let Some(cert_hex) = meta_get(conn, STATE_KEY_CERT)? else {
        return Ok(None);
    };
    let bad = |what: &str| Error::Tampered {
        what: format!("the state head {what} (the database was edited or put back outside vpnca)"),
    };
    let cert_der = crypto::unhex(&cert_hex)
        .ok_or_else(|| bad("has an unreadable state-signing key certificate"))?;
    let head = stored_head(conn)?.ok_or_else(|| bad("is missing"))?;
    let sig = meta_get(conn, STATE_SIG)?
        .and_then(|h| crypto::unhex(&h))
        .ok_or_else(|| bad("is not signed"))?;
    let audit_head = meta_get(conn, "audit_head")?.unwrap_or_default();
    let audit_seq = audit_head
        .split_once(':')
        .and_then(|(s, _)| s.parse::<i64>().ok());
    if audit_seq != Some(head.seq) {
        return Err(bad("does not belong to the audit log's last entry"));
    }
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&cert_der)
        .map_err(|_| bad("has an unreadable state-signing key certificate"))?;
    let spki = cert.public_key();
    if spki.algorithm.algorithm.to_id_string() != "1.3.101.112" {
        return Err(bad(
            "has a state-signing key certificate for a key that is not Ed25519",
        ));
    }
    if !is_state_key_shape(&cert) {
        // Any other certificate of the CA with an Ed25519 key (a user's, a server's) would
        // otherwise sign heads: only the one `certify_state_key` makes has this exact shape,
        // and its name is reserved (no certificate vpnca issues or imports may carry it).
        return Err(bad(
            "is signed by a certificate that is not a state-signing key certificate",
        ));
    }
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ED25519,
        spki.subject_public_key.data.as_ref(),
    )
    .verify(&head_message(&head, &audit_head), &sig)
    .map_err(|_| bad("is not signed by the store's state-signing key"))?;
    // The certificate is the one the state records, signed by the CA the state records.
    prove(conn, &head.root, &Item::StateKey)?;
    let ca = conn.cert_ca_der()?;
    prove(conn, &head.root, &Item::Ca)?;
    let (serial, ca_der) = ca.ok_or_else(|| bad("names a CA the database does not hold"))?;
    prove(conn, &head.root, &Item::Cert(serial))?;
    let (_, ca_cert) = x509_parser::certificate::X509Certificate::from_der(&ca_der)
        .map_err(|_| bad("names an unreadable CA certificate"))?;
    if cert.issuer() != ca_cert.subject()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Err(bad(
            "has a state-signing key certificate the store's CA did not sign",
        ));
    }
    Ok(Some(PublicHead { head, ca_der }))
}

/// Whether `cert` has exactly the shape of the certificate `ca::certify_state_key` makes:
/// subject exactly `CN=vpnca state-signing key`, basicConstraints CA:FALSE, keyUsage exactly
/// digitalSignature, and no other extension than the key identifiers (no extendedKeyUsage, no
/// subjectAltName).
fn is_state_key_shape(cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    use x509_parser::extensions::ParsedExtension;
    let subject = cert.subject();
    let mut attrs = subject.iter_attributes();
    let cn_only = match (attrs.next(), attrs.next()) {
        (Some(a), None) => {
            a.attr_type() == &x509_parser::oid_registry::OID_X509_COMMON_NAME
                && a.as_str().ok() == Some(crate::ca::STATE_KEY_CN)
        }
        _ => false,
    };
    let mut ku_ok = false;
    let mut bc_ok = false;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => {
                ku_ok = ku.digital_signature() && ku.flags == 1;
            }
            ParsedExtension::BasicConstraints(bc) => bc_ok = !bc.ca,
            ParsedExtension::SubjectKeyIdentifier(_)
            | ParsedExtension::AuthorityKeyIdentifier(_) => {}
            _ => return false,
        }
    }
    cn_only && ku_ok && bc_ok
}

/// Records a new head for `root` at the current audit head.
pub(crate) fn set_head(tx: &super::Tx<'_>, keys: &Keys, root: Hash) -> Result<Head> {
    let audit_head = meta_get(tx.engine(), "audit_head")?.unwrap_or_default();
    let seq = audit_head
        .split_once(':')
        .and_then(|(s, _)| s.parse::<i64>().ok())
        .ok_or_else(|| Error::Tampered {
            what: "the audit head is unreadable".into(),
        })?;
    let head = Head { seq, root };
    let mac = head_mac(keys, &head, &audit_head);
    meta_set(
        tx,
        "state_head",
        &format!("{}:{}", head.text(), crypto::hex(&mac)),
    )?;
    let sig = keys.state_sign(&head_message(&head, &audit_head))?;
    meta_set(tx, STATE_SIG, &crypto::hex(&sig))?;
    Ok(head)
}

/// Checks that `item`'s value in the tables is the one the tree of `root` holds.
pub(crate) fn prove(conn: &dyn Engine, root: &Hash, item: &Item) -> Result<Option<Vec<u8>>> {
    let current = value(conn, item)?;
    let proof = smt::prove(&EngineNodes(conn), root, &item.key_hash())?;
    let proven = proof.verify(root, &item.key_hash())?;
    if proven != current.as_deref().map(smt::value_hash) {
        // A record is also named by the name its row holds now (escaped: it is outside input).
        let name: Option<String> = match item {
            Item::Cert(serial) => conn.cert_name_of(serial)?,
            _ => None,
        };
        return Err(Error::Tampered {
            what: format!(
                "{}{} in the database is not the one the store's authenticated state records ({}): it was edited, deleted or put back outside vpnca",
                item.describe(),
                name.map(|n| format!(" ({})", crate::shell::printable(&n)))
                    .unwrap_or_default(),
                match (proven.is_some(), current.is_some()) {
                    (true, false) => "it is missing",
                    (false, true) => "the state has no such entry",
                    _ => "its content differs",
                }
            ),
        });
    }
    Ok(current)
}

/// The items a write transaction changes: each proven when first touched, re-read at the
/// commit ([`super::Tx`]).
#[derive(Default)]
pub(crate) struct Touched {
    /// The trusted root at the start of the transaction (format 2 only).
    pub(crate) root: Option<Hash>,
    /// The audit sequence number of that root's head.
    pub(crate) seq: i64,
    pub(crate) items: BTreeSet<Item>,
    /// Whether the store has the look-alike index, once a record's insertion asked
    /// ([`super::alike::add`]).
    pub(crate) alike_indexed: Option<bool>,
}

/// Applies the touched items to the tree and records the new head; `None` when nothing
/// changed. A transaction that changes the state must also append to the audit log (the head
/// is bound to the audit entry that made it): otherwise the old head would still match the
/// audit log, and putting it back would undo the change unnoticed.
pub(crate) fn seal(tx: &super::Tx<'_>, keys: &Keys) -> Result<Option<Head>> {
    let touched = tx.state.borrow();
    let Some(root) = touched.root else {
        return Ok(None);
    };
    let audit_seq = meta_get(tx.engine(), "audit_head")?
        .and_then(|h| h.split_once(':').and_then(|(s, _)| s.parse::<i64>().ok()))
        .unwrap_or(0);
    if audit_seq == touched.seq {
        if touched.items.is_empty() {
            return Ok(None);
        }
        return Err(Error::Tampered {
            what: "a change to the store's state without an audit entry (a vpnca bug: nothing was written)".into(),
        });
    }
    let mut changes = Vec::new();
    for item in &touched.items {
        let v = value(tx.engine(), item)?;
        changes.push((item.key_hash(), v.as_deref().map(smt::value_hash)));
    }
    let cs = smt::update(&EngineNodes(tx.engine()), &root, &changes)?;
    write_nodes(tx.engine(), cs.writes)?;
    set_head(tx, keys, cs.root).map(Some)
}

/// Builds the whole tree from the tables (format 2's `init` and the upgrade): the nodes are
/// written and the head recorded.
pub(crate) fn build(tx: &super::Tx<'_>, keys: &Keys) -> Result<Head> {
    // The callers (`init`, the upgrade, a rekey) have checked every audit entry's MAC.
    super::audit_hash::start(tx)?;
    start_aws_lists(tx)?;
    let items = all_items(tx.engine())?;
    tx.engine().nodes_clear()?;
    let nodes = smt::nodes_of(
        items
            .iter()
            .map(|(k, v)| (k.key_hash(), smt::value_hash(v))),
    );
    write_nodes(tx.engine(), nodes.into_iter().map(|(k, n)| (k, Some(n))))?;
    set_head(tx, keys, root_of(&items))
}

/// `verify`'s whole-state check: the root of every item the tables hold equals the trusted
/// head's, and the tree holds exactly the nodes of that map. Problems, for people.
pub(crate) fn check_all(conn: &dyn Engine, keys: &Keys) -> Result<Vec<String>> {
    match trusted_head(conn, keys) {
        Ok(head) => check_all_against(conn, &head),
        Err(Error::Tampered { what }) => Ok(vec![what]),
        Err(e) => Err(e),
    }
}

/// [`check_all`] against a head already trusted (the MAC'd one, or a [`public_head`]).
pub(crate) fn check_all_against(conn: &dyn Engine, head: &Head) -> Result<Vec<String>> {
    let items = all_items(conn)?;
    let mut problems = Vec::new();
    // One row per serial, read from the table itself: a second row planted with a record's
    // serial maps to the same state item and would otherwise go unseen here.
    let serials = conn.cert_all_serials()?;
    for w in serials.windows(2) {
        if w[0] == w[1] {
            problems.push(format!(
                "the table holds more than one row for certificate {}: a row was planted outside vpnca",
                crate::shell::printable(&w[0])
            ));
        }
    }
    if root_of(&items) != head.root {
        // Name the items that differ: each one's proof against the head — those the tables
        // hold, and those the (chained) audit log names, which finds deleted ones.
        let mut candidates: BTreeSet<Item> = items.keys().cloned().collect();
        for e in super::audit_entries_from(conn, 0)? {
            if !e.serial.is_empty() {
                candidates.insert(Item::Cert(e.serial.clone()));
            }
            if !e.name.is_empty() && e.action != "ca" {
                candidates.insert(Item::Name(e.name.clone()));
            }
        }
        // The look-alike index entry of each name (finds a deleted entry).
        let alike: Vec<Item> = candidates
            .iter()
            .filter_map(|i| match i {
                Item::Name(n) => Some(Item::Alike(crate::name::look_alike_key(n))),
                _ => None,
            })
            .collect();
        candidates.extend(alike);
        // Every setting (finds a deleted one).
        candidates.extend(SETTINGS.iter().map(|k| Item::Setting(k)));
        for item in &candidates {
            match prove(conn, &head.root, item) {
                Ok(_) => {}
                Err(Error::Tampered { what }) => problems.push(what),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if problems.is_empty() {
            problems.push("the store's state has entries the tables no longer hold (a record, CRL or setting was deleted outside vpnca)".into());
        }
        return Ok(problems);
    }
    let want: BTreeMap<Vec<u8>, Vec<u8>> = smt::nodes_of(
        items
            .iter()
            .map(|(k, v)| (k.key_hash(), smt::value_hash(v))),
    )
    .into_iter()
    .map(|(k, n)| (k.to_bytes(), n.to_bytes().to_vec()))
    .collect();
    let have: BTreeMap<Vec<u8>, Vec<u8>> = conn.nodes_all()?;
    if have != want {
        problems.push("the state tree holds nodes that are not the tree of the store's state (edited outside vpnca)".into());
    }
    problems.extend(super::alike::problems(conn)?);
    Ok(problems)
}
