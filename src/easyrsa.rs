//! `import-easyrsa`: carry an easy-rsa PKI (3.0–3.2) into a new store without re-issuing
//! anything: the CA and its key, every certificate with its serial, dates, name and status,
//! revocation dates and reasons, the keys easy-rsa holds, and the old CRL's number (so the
//! next CRL continues it).
//!
//! [`plan`] reads and checks the source (never writing to it); [`Store::import_easyrsa`]
//! writes the plan in one transaction, with vpnca's first CRL. Any problem in the source stops
//! the import: an inconsistent PKI is reported, never half-imported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};

use crate::cert::{CertKind, CertState, RevocationReason};
use crate::fsutil::InputLimit;
use crate::secret::{Passphrase, SecretKeyDer};
use crate::serial::Serial;
use crate::store::{self, NewRecord, Store};
use crate::{Error, Result};

/// Something in the source that does not fit: what, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The file, serial or name concerned.
    pub object: String,
    /// What is wrong.
    pub reason: String,
}

/// The status a certificate gets in the store.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// Valid (index.txt `V`, or `E`: expiry is computed from notAfter).
    Valid,
    /// Revoked (index.txt `R`).
    Revoked,
    /// Valid in index.txt, but a newer certificate has the same name (easy-rsa renew).
    Superseded,
}

/// One certificate to import.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// The CN.
    pub name: String,
    /// The serial (hex).
    #[serde(serialize_with = "ser_serial")]
    pub serial: Serial,
    /// `server` or `client`.
    pub kind: CertKind,
    /// Its status in the store.
    pub status: ImportStatus,
    /// Revocation time and reason (index.txt).
    #[serde(skip)]
    pub revoked: Option<(OffsetDateTime, RevocationReason)>,
    /// Whether its private key is imported.
    pub key: bool,
    /// The certificate file it was read from.
    pub source: PathBuf,
    #[serde(skip)]
    der: Vec<u8>,
    #[serde(skip)]
    key_der: Option<SecretKeyDer>,
    #[serde(skip)]
    not_before: OffsetDateTime,
    #[serde(skip)]
    not_after: OffsetDateTime,
    #[serde(skip)]
    profile: &'static str,
}

fn ser_serial<S: serde::Serializer>(s: &Serial, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(&s.hex())
}

/// The source's CA.
#[derive(Debug, Serialize)]
pub struct CaInfo {
    /// Its CN.
    pub name: String,
    /// Its serial (hex).
    #[serde(serialize_with = "ser_serial")]
    pub serial: Serial,
    #[serde(skip)]
    der: Vec<u8>,
    #[serde(skip)]
    key_der: Option<SecretKeyDer>,
}

/// What `import-easyrsa` found: the import to make, and the problems that stop it.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// The easy-rsa `pki/` folder.
    pub source: PathBuf,
    /// The CA, when it could be read.
    pub ca: Option<CaInfo>,
    /// The certificates, in index.txt order.
    pub certificates: Vec<Entry>,
    /// The number of the old `crl.pem`, which vpnca's CRLs continue above.
    pub crl_number_floor: Option<u64>,
    /// Things worth knowing that do not stop the import.
    pub notes: Vec<String>,
    /// Things that stop it.
    pub problems: Vec<Problem>,
}

impl Plan {
    fn problem(&mut self, object: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            object: object.into(),
            reason: reason.into(),
        });
    }
}

/// One line of index.txt.
#[derive(Debug, Clone)]
struct IndexLine {
    line: usize,
    status: char,
    revoked: Option<(OffsetDateTime, RevocationReason)>,
    serial: String,
    subject: String,
}

/// What easy-rsa (3.0–3.2) and `openssl ca` keep in a PKI folder, in the order reported.
const EASYRSA_FILES: &[&str] = &[
    "index.txt",
    "index.txt.attr",
    "serial",
    "ca.crt",
    "private/ca.key",
    "crl.pem",
    "issued/",
    "certs_by_serial/",
    "reqs/",
    "private/",
    "revoked/",
    "renewed/",
    "expired/",
    "openssl-easyrsa.cnf",
    "safessl-easyrsa.cnf",
    "vars",
];

/// The easy-rsa files and folders in `dir` (`index.txt`, `private/ca.key`, `issued/`, …) when
/// it is an easy-rsa PKI, also a new one (`easyrsa init-pki`, no CA yet); empty otherwise.
/// A folder counts as one when it holds any of `index.txt`, `serial`, `private/ca.key`,
/// `certs_by_serial/`, easy-rsa's `openssl-easyrsa.cnf` or `safessl-easyrsa.cnf`, or both
/// `private/` and `reqs/`. Only names are looked at; nothing is read.
pub fn recognize(dir: &Path) -> Vec<String> {
    let found: Vec<String> = EASYRSA_FILES
        .iter()
        .filter(|f| match f.strip_suffix('/') {
            Some(d) => dir.join(d).is_dir(),
            None => dir.join(f).symlink_metadata().is_ok(),
        })
        .map(|f| f.to_string())
        .collect();
    let has = |f: &str| found.iter().any(|x| x == f);
    let strong = [
        "index.txt",
        "serial",
        "private/ca.key",
        "certs_by_serial/",
        "openssl-easyrsa.cnf",
        "safessl-easyrsa.cnf",
    ];
    if strong.iter().any(|f| has(f)) || (has("private/") && has("reqs/")) {
        found
    } else {
        Vec::new()
    }
}

/// Refuses an easy-rsa source folder that is the store `store`, lies inside it or holds it
/// ([`Error::SourceOverlapsStore`]): the import would read the store's own files as
/// easy-rsa's, and deleting the source afterwards, as advised, would delete the store. Both
/// paths are compared canonicalized (symbolic links and `..` resolved). Nothing is written.
pub fn check_apart(source: &Path, store: &Path) -> Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).map_err(Error::io("resolving", p));
    let (src, st) = (canon(source)?, canon(store)?);
    let relation = if src == st {
        "is"
    } else if src.starts_with(&st) {
        "is inside"
    } else if st.starts_with(&src) {
        "holds"
    } else {
        return Ok(());
    };
    Err(Error::SourceOverlapsStore {
        source_dir: source.to_path_buf(),
        store: store.to_path_buf(),
        relation,
    })
}

/// Finds the easy-rsa `pki/` folder: PATH itself or PATH/pki.
pub fn find_pki(path: &Path) -> Result<PathBuf> {
    for p in [path.to_path_buf(), path.join("pki")] {
        if p.join("index.txt").is_file() || p.join("ca.crt").is_file() {
            return Ok(p);
        }
    }
    Err(Error::input(
        "easy-rsa PKI",
        format!(
            "{} holds no easy-rsa PKI (no index.txt or ca.crt in it or in its pki/ folder)",
            path.display()
        ),
    ))
}

/// Reads and checks an easy-rsa PKI. `pass` opens an encrypted `private/ca.key` (and any
/// other key encrypted with the same passphrase). Nothing in the source is modified.
pub fn plan(path: &Path, pass: Option<&Passphrase>) -> Result<Plan> {
    let root = find_pki(path)?;
    let mut plan = Plan {
        source: root.clone(),
        ca: None,
        certificates: Vec::new(),
        crl_number_floor: None,
        notes: Vec::new(),
        problems: Vec::new(),
    };
    let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();

    // The CA.
    let ca_path = root.join("ca.crt");
    let ca_der = match read_cert_file(&ca_path) {
        Ok(d) => Some(d),
        Err(e) => {
            plan.problem("ca.crt", e);
            None
        }
    };
    let ca_key_path = root.join("private/ca.key");
    let ca_key = match read_source(&ca_key_path, &InputLimit::EASYRSA_FILE) {
        Ok(bytes) => match read_key(&bytes, pass) {
            Ok(k) => Some(k),
            Err(KeyError::NeedsPassphrase) => {
                plan.problem(
                    "private/ca.key",
                    "it is encrypted: give its passphrase with --easyrsa-passphrase-file",
                );
                None
            }
            Err(KeyError::WrongPassphrase) => {
                plan.problem(
                    "private/ca.key",
                    "the passphrase does not decrypt it (wrong passphrase)",
                );
                None
            }
            Err(KeyError::Unreadable(why)) => {
                plan.problem("private/ca.key", why);
                None
            }
        },
        Err(e) => {
            plan.problem("private/ca.key", e);
            None
        }
    };
    let mut ca_name = String::new();
    if let Some(der) = &ca_der {
        match crate::x509::parse_cert(der, "ca.crt") {
            Ok(ca) => {
                ca_name = crate::x509::common_name(ca.subject()).unwrap_or_default();
                let is_ca = ca
                    .basic_constraints()
                    .ok()
                    .flatten()
                    .is_some_and(|b| b.value.ca);
                if !is_ca {
                    plan.problem(
                        "ca.crt",
                        "it is not a CA certificate (no basicConstraints CA:TRUE)",
                    );
                }
                if !(ca.subject() == ca.issuer() && crate::x509::signed_by(&ca, &ca)) {
                    plan.problem(
                        "ca.crt",
                        "it is a sub-CA (not self-signed); import-easyrsa takes a root CA",
                    );
                }
                match crate::name::normalize_name(&ca_name) {
                    Ok(n) => ca_name = n,
                    Err(e) => plan.problem("ca.crt", e.to_string()),
                }
                if let Some(k) = &ca_key
                    && crate::x509::key_matches_cert(k.expose(), &ca) != Some(true)
                {
                    plan.problem("private/ca.key", "it does not belong to ca.crt");
                }
                if ca.validity().not_after.to_datetime() <= store::now() {
                    plan.problem("ca.crt", "the CA has expired");
                }
                plan.ca = Some(CaInfo {
                    name: ca_name.clone(),
                    serial: Serial::from_bytes(ca.raw_serial()),
                    der: der.clone(),
                    key_der: ca_key,
                });
            }
            Err(e) => plan.problem("ca.crt", e.to_string()),
        }
    }

    // Every certificate file easy-rsa keeps, by serial.
    let mut certs: HashMap<String, (PathBuf, Vec<u8>)> = HashMap::new();
    for dir in [
        "issued",
        "certs_by_serial",
        "revoked/certs_by_serial",
        "renewed/certs_by_serial",
        "renewed/issued",
        "expired/certs_by_serial",
        "expired/issued",
        // 3.2: `expire` moves issued/NAME.crt to expired/NAME.crt.
        "expired",
    ] {
        for file in list_files(&root.join(dir), &["crt", "pem"]) {
            match read_cert_file(&file) {
                Ok(der) => match crate::x509::parse_cert(&der, &rel(&file)) {
                    Ok(c) => {
                        // index.txt keeps whole bytes ("01"): compare without leading zeros.
                        let serial = normalize_hex(&Serial::from_bytes(c.raw_serial()).hex());
                        certs.entry(serial).or_insert((file, der));
                    }
                    Err(e) => plan.problem(rel(&file), e.to_string()),
                },
                Err(e) => plan.problem(rel(&file), e),
            }
        }
    }

    // index.txt is the authority on serials, names and status.
    let index = match read_source(&root.join("index.txt"), &InputLimit::EASYRSA_INDEX) {
        Ok(b) => parse_index(&b, &mut plan),
        Err(e) => {
            plan.problem("index.txt", e);
            Vec::new()
        }
    };
    let ca_cert = ca_der
        .as_deref()
        .and_then(|d| crate::x509::parse_cert(d, "ca.crt").ok());
    let keys = KeySearch::new(&root, &index, pass);
    // Names whose CN is not in NFC: the NFC name, and the spellings found.
    let mut spellings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for line in &index {
        let norm = normalize_hex(&line.serial);
        let object = format!(
            "index.txt line {} (serial {}, {})",
            line.line, line.serial, line.subject
        );
        let Some((file, der)) = certs.get(&norm) else {
            plan.problem(object, "no certificate file with this serial (issued/, certs_by_serial/, revoked/, renewed/)");
            continue;
        };
        seen.insert(norm.clone());
        let Ok(cert) = crate::x509::parse_cert(der, &rel(file)) else {
            continue;
        };
        let cn = crate::x509::common_name(cert.subject()).unwrap_or_default();
        let name = &cn;
        let index_cn = unescape_oneline(
            line.subject
                .split('/')
                .find_map(|p| p.strip_prefix("CN="))
                .unwrap_or_default(),
        );
        if index_cn != *name {
            plan.problem(
                &object,
                format!(
                    "{} names CN {}, index.txt says {}",
                    rel(file),
                    crate::shell::quote(name),
                    crate::shell::quote(&index_cn)
                ),
            );
            continue;
        }
        // The store keeps names in NFC (docs/commands-certificates.md#names); the certificate
        // keeps its CN, and easy-rsa's file names keep the CN as it was given.
        let name = match crate::name::normalize_name(name) {
            Ok(n) => n,
            Err(e) => {
                plan.problem(&object, e.to_string());
                continue;
            }
        };
        if name != cn {
            spellings
                .entry(name.clone())
                .or_default()
                .insert(cn.clone());
        }
        if let Some(ca) = &ca_cert
            && !crate::x509::signed_by(&cert, ca)
        {
            plan.problem(rel(file), "it is not signed by ca.crt");
            continue;
        }
        let (kind, profile) = kind_of(&cert);
        let key_der = keys.find(&mut plan, &cert, file, &cn, line);
        let status = match line.status {
            'R' => ImportStatus::Revoked,
            _ => ImportStatus::Valid,
        };
        plan.certificates.push(Entry {
            name,
            serial: Serial::from_bytes(cert.raw_serial()),
            kind,
            status,
            revoked: line.revoked,
            key: key_der.is_some(),
            source: file.clone(),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            der: der.clone(),
            key_der,
            profile,
        });
    }
    for (serial, (file, _)) in &certs {
        if !seen.contains(serial) {
            plan.problem(rel(file), format!("serial {serial} is not in index.txt"));
        }
    }
    supersede_duplicates(&mut plan.certificates);
    // Names: recorded in NFC; two spellings of one name become one name, and names that look
    // alike are reported, never renamed.
    for (name, raw) in &spellings {
        let also_nfc = plan.certificates.iter().any(|e| {
            e.name == *name
                && crate::x509::parse_cert(&e.der, name).is_ok_and(|c| {
                    crate::x509::common_name(c.subject()).as_deref() == Some(name.as_str())
                })
        });
        let shown: Vec<String> = raw
            .iter()
            .map(|r| format!("{} ({})", crate::shell::quote(r), crate::check::spelling(r)))
            .collect();
        plan.notes.push(if also_nfc {
            format!(
                "{} and {} are one name in two Unicode spellings: imported as one name (the newer certificate valid, older ones superseded); `vpnca revoke {}` revokes them all",
                shown.join(", "),
                crate::shell::quote(name),
                crate::shell::quote(name)
            )
        } else {
            format!(
                "the CN {} is not in Unicode NFC: imported under the name {} (the certificate keeps its CN)",
                shown.join(", "),
                crate::shell::quote(name)
            )
        });
    }
    let valid: BTreeSet<&str> = plan
        .certificates
        .iter()
        .filter(|e| e.status == ImportStatus::Valid && e.kind != CertKind::Ca)
        .map(|e| e.name.as_str())
        .collect();
    let pairs = crate::check::look_alike_pairs(valid.iter().copied());
    plan.notes.extend(pairs.into_iter().map(|(_, _, m)| m));
    // easy-rsa 3.2 issues server certificates without a SAN by default: AWS Client VPN refuses
    // them. The import goes on; `status` keeps reporting them until they are renewed.
    for e in &plan.certificates {
        if e.kind == CertKind::Server
            && e.status == ImportStatus::Valid
            && crate::x509::parse_cert(&e.der, &e.name).is_ok_and(|c| !crate::x509::has_dns_san(&c))
        {
            let m = crate::check::no_dns_san_message(&e.name, &e.serial.hex());
            plan.notes.push(m);
        }
    }

    // The old CRL: its number, and that it revokes nothing index.txt calls valid.
    let crl_path = root.join("crl.pem");
    if crl_path.is_file() {
        check_old_crl(&crl_path, ca_der.as_deref(), &mut plan);
    } else {
        plan.notes
            .push("no crl.pem: vpnca's CRL numbers start at 1".into());
    }
    if ca_name.is_empty() && plan.ca.is_some() {
        plan.problem("ca.crt", "it has no CN");
    }
    Ok(plan)
}

/// A subject value as `openssl ca` writes it into index.txt (`X509_NAME_oneline`): bytes outside
/// printable ASCII escaped as `\xHH` (`Jos\xC3\xA9`). The value as text, for comparing with the
/// certificate's CN.
fn unescape_oneline(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], b.get(i + 1), hex) {
            (b'\\', Some(b'x' | b'X'), Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn normalize_hex(s: &str) -> String {
    let t = s.trim().trim_start_matches('0').to_ascii_uppercase();
    if t.is_empty() { "0".into() } else { t }
}

/// The folders where easy-rsa keeps a key under its certificate's serial (`SERIAL.key`):
/// `revoke` (every version) and 3.1.0's `revoke-renewed` move it to `revoked/`, 3.0's `renew`
/// to `renewed/`. The last two are read for PKIs arranged by hand.
const KEYS_BY_SERIAL: &[&str] = &[
    "revoked/private_by_serial",
    "renewed/private_by_serial",
    "expired/private_by_serial",
    "private_by_serial",
];

/// The folders where easy-rsa keeps a key under its certificate's name (`NAME.key`): `private/`
/// for the current certificate, and for older ones of the same name where `renew`
/// (3.1.1 and later, 3.2) re-signs the same request, so the old and the new certificate share
/// the key, and `revoke-renewed` and `expire` leave it; `renewed/private/` where 3.1.0's `renew`
/// (and 3.1's `rebuild`) move the old key.
const KEYS_BY_NAME: &[&str] = &["private", "renewed/private", "expired/private"];

/// Finds the key of each certificate wherever an easy-rsa version (3.0–3.2) moved it, and
/// only a key that belongs to the certificate (`key_matches_cert`).
struct KeySearch<'a> {
    root: &'a Path,
    pass: Option<&'a Passphrase>,
    /// The key files in [`KEYS_BY_SERIAL`], by normalized serial.
    by_serial: HashMap<String, Vec<PathBuf>>,
    /// The normalized serials of each CN in index.txt.
    serials_by_cn: HashMap<String, Vec<String>>,
}

/// A file that may hold a certificate's key; `own` when it can only be this certificate's
/// (named by its serial, or `private/NAME.key` beside `issued/NAME.crt`): then a key that
/// does not match is a problem, while any other may be the key of another certificate of the
/// same name.
struct KeyCandidate {
    path: PathBuf,
    own: bool,
}

impl<'a> KeySearch<'a> {
    fn new(root: &'a Path, index: &[IndexLine], pass: Option<&'a Passphrase>) -> Self {
        let mut by_serial: HashMap<String, Vec<PathBuf>> = HashMap::new();
        for dir in KEYS_BY_SERIAL {
            for file in list_files(&root.join(dir), &["key"]) {
                let stem = file.file_stem().and_then(|s| s.to_str());
                if let Some(stem) = stem.filter(|s| !s.is_empty() && is_hex(s)) {
                    by_serial.entry(normalize_hex(stem)).or_default().push(file);
                }
            }
        }
        let mut serials_by_cn: HashMap<String, Vec<String>> = HashMap::new();
        for line in index {
            serials_by_cn
                .entry(subject_cn(&line.subject).to_owned())
                .or_default()
                .push(normalize_hex(&line.serial));
        }
        KeySearch {
            root,
            pass,
            by_serial,
            serials_by_cn,
        }
    }

    /// Where the key of `cert` (read from `file`, named `name`, on index.txt line `line`) may
    /// be, its own places first.
    fn candidates(&self, file: &Path, name: &str, line: &IndexLine) -> Vec<KeyCandidate> {
        let serial = normalize_hex(&line.serial);
        let mut out: Vec<KeyCandidate> = Vec::new();
        let mut push = |path: PathBuf, own: bool| {
            if !out.iter().any(|c| c.path == path) {
                out.push(KeyCandidate { path, own });
            }
        };
        for path in self.by_serial.get(&serial).into_iter().flatten() {
            push(path.clone(), true);
        }
        if file.parent() == Some(self.root.join("issued").as_path())
            && let Some(stem) = file.file_stem().and_then(|s| s.to_str())
        {
            push(self.root.join("private").join(format!("{stem}.key")), true);
        }
        for dir in KEYS_BY_NAME {
            push(self.root.join(dir).join(format!("{name}.key")), false);
        }
        // 3.1.1+ `renew` keeps the key: revoking the newer certificate moves the key of the
        // older ones to revoked/private_by_serial/<newer serial>.key.
        let same_cn = self.serials_by_cn.get(subject_cn(&line.subject));
        for other in same_cn.into_iter().flatten().filter(|s| **s != serial) {
            for path in self.by_serial.get(other).into_iter().flatten() {
                push(path.clone(), false);
            }
        }
        out
    }

    /// The key of `cert`, or `None` (with a note when it is encrypted with a passphrase vpnca
    /// was not given, a problem when an own key file does not fit or cannot be read).
    fn find(
        &self,
        plan: &mut Plan,
        cert: &X509Certificate<'_>,
        file: &Path,
        name: &str,
        line: &IndexLine,
    ) -> Option<SecretKeyDer> {
        let rel = |p: &Path| p.strip_prefix(self.root).unwrap_or(p).display().to_string();
        let mut locked: Option<PathBuf> = None;
        for c in self.candidates(file, name, line) {
            if !c.path.is_file() {
                continue;
            }
            let bytes = match read_source(&c.path, &InputLimit::EASYRSA_FILE) {
                Ok(b) => zeroize::Zeroizing::new(b),
                Err(e) => {
                    problem_once(plan, rel(&c.path), e);
                    return None;
                }
            };
            match read_key(&bytes, self.pass) {
                Ok(k) => match crate::x509::key_matches_cert(k.expose(), cert) {
                    Some(true) => return Some(k),
                    // Another certificate's key of the same name.
                    _ if !c.own => {}
                    _ => {
                        let why = format!("it does not belong to {}", rel(file));
                        problem_once(plan, rel(&c.path), why);
                        return None;
                    }
                },
                Err(KeyError::NeedsPassphrase | KeyError::WrongPassphrase) => {
                    locked.get_or_insert(c.path);
                    if c.own {
                        break;
                    }
                }
                Err(KeyError::Unreadable(why)) => {
                    problem_once(plan, rel(&c.path), why);
                    return None;
                }
            }
        }
        if let Some(path) = locked {
            let note = format!(
                "{} is encrypted with a passphrase vpnca was not given: {name}'s certificate is imported without its key (the user keeps it)",
                rel(&path)
            );
            if !plan.notes.contains(&note) {
                plan.notes.push(note);
            }
        }
        None
    }
}

/// Records a problem unless the same one is recorded already (a key file is looked at for
/// every certificate of its name).
fn problem_once(plan: &mut Plan, object: String, reason: String) {
    if !plan
        .problems
        .iter()
        .any(|p| p.object == object && p.reason == reason)
    {
        plan.problem(object, reason);
    }
}

/// The CN of an index.txt subject (`/C=…/CN=NAME/…`), as written there.
fn subject_cn(subject: &str) -> &str {
    subject
        .split('/')
        .find_map(|p| p.strip_prefix("CN="))
        .unwrap_or_default()
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Newest certificate per name stays valid; older valid ones are superseded by it.
fn supersede_duplicates(entries: &mut [Entry]) {
    let mut newest: BTreeMap<String, usize> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if e.status != ImportStatus::Valid {
            continue;
        }
        match newest.get(&e.name) {
            // Same second (a renew right after the issue): the later index.txt line is newer.
            Some(&j) if entries[j].not_before > e.not_before => {}
            _ => {
                newest.insert(e.name.clone(), i);
            }
        }
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if e.status == ImportStatus::Valid && newest.get(&e.name) != Some(&i) {
            e.status = ImportStatus::Superseded;
        }
    }
}

fn kind_of(cert: &X509Certificate<'_>) -> (CertKind, &'static str) {
    let eku = cert
        .extended_key_usage()
        .ok()
        .flatten()
        .map(|e| e.value.clone());
    match eku {
        Some(e) if e.server_auth && e.client_auth => (CertKind::Server, "server-client"),
        Some(e) if e.server_auth => (CertKind::Server, "server"),
        _ => (CertKind::Client, "client"),
    }
}

fn check_old_crl(path: &Path, ca_der: Option<&[u8]>, plan: &mut Plan) {
    let bytes = match read_source(path, &InputLimit::EASYRSA_CRL) {
        Ok(b) => b,
        Err(e) => {
            plan.problem("crl.pem", e);
            return;
        }
    };
    let der = match crate::pem::decode_all(&bytes, "crl.pem") {
        Ok(blocks) => match blocks.into_iter().find(|b| b.label == "X509 CRL") {
            Some(b) => b.der,
            None => {
                plan.problem("crl.pem", "no X509 CRL block");
                return;
            }
        },
        Err(e) => {
            plan.problem("crl.pem", e.to_string());
            return;
        }
    };
    let crl = match CertificateRevocationList::from_der(&der) {
        Ok((_, c)) => c,
        Err(e) => {
            plan.problem("crl.pem", format!("not a readable CRL ({e})"));
            return;
        }
    };
    if let Some(ca) = ca_der.and_then(|d| crate::x509::parse_cert(d, "ca.crt").ok())
        && crl.verify_signature(ca.public_key()).is_err()
    {
        plan.problem("crl.pem", "it is not signed by ca.crt");
        return;
    }
    plan.crl_number_floor = crl.crl_number().and_then(|n| u64::try_from(n).ok());
    for r in crl.iter_revoked_certificates() {
        let serial = Serial::from_bytes(r.raw_serial()).hex();
        match plan.certificates.iter().find(|e| e.serial.hex() == serial) {
            Some(e) if e.status == ImportStatus::Revoked => {}
            Some(e) => plan.problem(
                "crl.pem",
                format!(
                    "it revokes serial {serial} ({}), which index.txt lists as valid",
                    e.name
                ),
            ),
            None => plan.problem(
                "crl.pem",
                format!("it revokes serial {serial}, which index.txt does not list"),
            ),
        }
    }
}

/// Parses index.txt: `STATUS\tEXPIRY\tREVOKED[,REASON]\tSERIAL\tFILE\tSUBJECT`.
fn parse_index(bytes: &[u8], plan: &mut Plan) -> Vec<IndexLine> {
    let mut out = Vec::new();
    let Ok(text) = std::str::from_utf8(bytes) else {
        plan.problem("index.txt", "it is not UTF-8 text");
        return out;
    };
    if !text.is_empty() && !text.ends_with('\n') {
        plan.problem("index.txt", "it ends in the middle of a line (truncated?)");
    }
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = raw.split('\t').collect();
        let object = format!("index.txt line {n}");
        if f.len() != 6 {
            plan.problem(object, format!("{} tab-separated fields, not 6", f.len()));
            continue;
        }
        let status = match f[0] {
            "V" => 'V',
            "R" => 'R',
            "E" => 'E',
            other => {
                plan.problem(object, format!("unknown status {other:?} (V, R or E)"));
                continue;
            }
        };
        if parse_asn1_time(f[1]).is_none() {
            plan.problem(object, format!("bad expiry date {:?}", f[1]));
            continue;
        }
        let revoked = if status == 'R' {
            let (date, reason) = f[2].split_once(',').unwrap_or((f[2], "unspecified"));
            let Some(at) = parse_asn1_time(date) else {
                plan.problem(object, format!("bad revocation date {:?}", f[2]));
                continue;
            };
            let Ok(reason) = reason.parse::<RevocationReason>() else {
                plan.problem(object, format!("unknown revocation reason {reason:?}"));
                continue;
            };
            Some((at, reason))
        } else {
            None
        };
        if f[3].is_empty() || !f[3].bytes().all(|b| b.is_ascii_hexdigit()) {
            plan.problem(object, format!("bad serial {:?}", f[3]));
            continue;
        }
        if !f[5].starts_with('/') {
            plan.problem(object, format!("bad subject {:?}", f[5]));
            continue;
        }
        out.push(IndexLine {
            line: n,
            status,
            revoked,
            serial: f[3].to_owned(),
            subject: f[5].to_owned(),
        });
    }
    out
}

/// `YYMMDDHHMMSSZ` (UTCTime, as openssl's index.txt writes) or `YYYYMMDDHHMMSSZ`.
fn parse_asn1_time(s: &str) -> Option<OffsetDateTime> {
    let digits = s.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match digits.len() {
        12 => {
            let yy: i32 = digits[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        14 => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let num = |a: usize| rest[a..a + 2].parse::<u8>().ok();
    let date =
        ::time::Date::from_calendar_date(year, ::time::Month::try_from(num(0)?).ok()?, num(2)?)
            .ok()?;
    let t = ::time::Time::from_hms(num(4)?, num(6)?, num(8)?).ok()?;
    Some(::time::PrimitiveDateTime::new(date, t).assume_utc())
}

fn list_files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    out.sort();
    out
}

/// A file of the easy-rsa PKI, at most `limit.max` bytes, regular files only; the error is a
/// problem for the plan: "cannot be read (…)", or why it was refused and what to do.
fn read_source(path: &Path, limit: &InputLimit) -> std::result::Result<Vec<u8>, String> {
    crate::fsutil::read_bounded(path, limit).map_err(|e| match e {
        Error::Io { cause, .. } => format!("cannot be read ({cause})"),
        Error::InputFile { reason, .. } => reason,
        e => e.to_string(),
    })
}

/// A certificate file: PEM (openssl's text dump before the block is fine) or DER.
fn read_cert_file(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let bytes = read_source(path, &InputLimit::EASYRSA_FILE)?;
    let mut certs = crate::pem::decode_certificates(&bytes, &path.display().to_string())
        .map_err(|e| e.to_string())?;
    if certs.len() != 1 {
        return Err(format!("holds {} certificates, not one", certs.len()));
    }
    Ok(certs.remove(0))
}

enum KeyError {
    NeedsPassphrase,
    WrongPassphrase,
    Unreadable(String),
}

/// Reads a private key file into PKCS#8 DER: PKCS#8 (plain or encrypted), or traditional
/// OpenSSL PEM (`RSA PRIVATE KEY` / `EC PRIVATE KEY`, plain or `Proc-Type: 4,ENCRYPTED`).
fn read_key(
    bytes: &[u8],
    pass: Option<&Passphrase>,
) -> std::result::Result<SecretKeyDer, KeyError> {
    use pkcs8::der::{Decode, Encode};
    if std::str::from_utf8(bytes).is_err() {
        return Err(KeyError::Unreadable("not a PEM text file".into()));
    }
    // The crate's secret PEM decoder: the base64 and the DER only ever in zeroizing buffers
    // (the `pem` crate leaves copies of both behind).
    let mut blocks = crate::pem::decode_secret(bytes, "the key file").map_err(|e| {
        KeyError::Unreadable(match e {
            Error::InvalidInput { reason, .. } => reason,
            e => e.to_string(),
        })
    })?;
    let at = blocks
        .iter()
        .position(|p| p.label.ends_with("PRIVATE KEY"))
        .ok_or_else(|| KeyError::Unreadable("no PRIVATE KEY block".into()))?;
    let block = blocks.swap_remove(at);
    let proc_type = block.header("Proc-Type").map(str::to_owned);
    let dek_info = block.header("DEK-Info").map(str::to_owned);
    let crate::pem::SecretBlock {
        label: tag,
        der: mut body,
        ..
    } = block;
    match tag.as_str() {
        "PRIVATE KEY" => Ok(SecretKeyDer::new(std::mem::take(&mut *body))),
        "ENCRYPTED PRIVATE KEY" => {
            let pass = pass.ok_or(KeyError::NeedsPassphrase)?;
            let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&body)
                .map_err(|e| KeyError::Unreadable(format!("not an encrypted PKCS#8 key ({e})")))?;
            check_kdf_cost(&info.encryption_algorithm).map_err(KeyError::Unreadable)?;
            let doc = info
                .decrypt(pass.expose())
                .map_err(|_| KeyError::WrongPassphrase)?;
            Ok(SecretKeyDer::new(doc.as_bytes().to_vec()))
        }
        tag @ ("RSA PRIVATE KEY" | "EC PRIVATE KEY") => {
            let inner = if proc_type.is_some_and(|v| v.contains("ENCRYPTED")) {
                let pass = pass.ok_or(KeyError::NeedsPassphrase)?;
                let dek = dek_info.as_deref().ok_or_else(|| {
                    KeyError::Unreadable("encrypted, but no DEK-Info header".into())
                })?;
                decrypt_traditional(&body, dek, pass)?
            } else {
                body
            };
            // Wrap PKCS#1 / SEC1 into PKCS#8.
            let (oid, params) = if tag == "RSA PRIVATE KEY" {
                (
                    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
                    Some(vec![0x05, 0x00]),
                )
            } else {
                (
                    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
                    ec_curve_param(&inner),
                )
            };
            let params_any = match &params {
                Some(p) => Some(
                    pkcs8::der::AnyRef::from_der(p)
                        .map_err(|e| KeyError::Unreadable(e.to_string()))?,
                ),
                None => None,
            };
            let info = pkcs8::PrivateKeyInfo::new(
                pkcs8::AlgorithmIdentifierRef {
                    oid,
                    parameters: params_any,
                },
                &inner,
            );
            let der = info
                .to_der()
                .map_err(|e| KeyError::Unreadable(format!("cannot re-encode the key ({e})")))?;
            Ok(SecretKeyDer::new(der))
        }
        other => Err(KeyError::Unreadable(format!(
            "unsupported key block {other:?}"
        ))),
    }
}

/// The most PBKDF2 iterations a key file may ask for: OpenSSL writes 2,048, and 10 million take
/// seconds; the count comes from the file, so without a bound a crafted file hangs the import.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The most memory scrypt may take for a key file (128·r·(N + p) bytes): OpenSSL itself
/// refuses more than 32 MiB by default; the parameters come from the file.
const MAX_SCRYPT_BYTES: u64 = 256 * 1024 * 1024;
/// The most scrypt work (N·r·p) an imported key may ask for: N = 2^20 with r = 8 and p = 2, far
/// above what `openssl pkcs8 -scrypt` writes (N = 2^14, r = 8, p = 1).
const MAX_SCRYPT_WORK: u64 = 1 << 24;

/// Refuses a PBES2 key-derivation cost that would hang or exhaust the machine before the
/// passphrase is even tried.
fn check_kdf_cost(scheme: &pkcs8::pkcs5::EncryptionScheme<'_>) -> std::result::Result<(), String> {
    use pkcs8::pkcs5::{EncryptionScheme, pbes2::Kdf};
    let EncryptionScheme::Pbes2(params) = scheme else {
        return Ok(());
    };
    let reencrypt = "re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`";
    match &params.kdf {
        Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => Err(format!(
            "it asks for {} PBKDF2 iterations, more than the {MAX_PBKDF2_ITERATIONS} vpnca accepts; {reencrypt}",
            p.iteration_count
        )),
        Kdf::Scrypt(p) => {
            let (n, r, lanes) = (
                p.cost_parameter,
                u64::from(p.block_size),
                u64::from(p.parallelization),
            );
            // Memory: the V array (128·r·N bytes) and the p lanes' B blocks (128·r·p bytes),
            // allocated before anything is derived. Work: N·r·p block mixes.
            let bytes = 128u64
                .saturating_mul(r)
                .saturating_mul(n.saturating_add(lanes));
            let work = n.saturating_mul(r).saturating_mul(lanes);
            if bytes > MAX_SCRYPT_BYTES || work > MAX_SCRYPT_WORK {
                Err(format!(
                    "it asks for scrypt with N={n}, r={r}, p={lanes} ({} MiB of memory, {work} block mixes), more than the {} MiB and {MAX_SCRYPT_WORK} block mixes vpnca accepts; {reencrypt}",
                    bytes / (1024 * 1024),
                    MAX_SCRYPT_BYTES / (1024 * 1024)
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// The namedCurve OID (DER) inside a SEC1 ECPrivateKey's `[0] parameters`.
fn ec_curve_param(sec1: &[u8]) -> Option<Vec<u8>> {
    let (_, obj) = x509_parser::der_parser::parse_der(sec1).ok()?;
    let seq = obj.as_sequence().ok()?;
    for item in seq {
        if let x509_parser::der_parser::ber::BerObjectContent::Unknown(any) = &item.content
            && any.tag().0 == 0
        {
            // [0] EXPLICIT OBJECT IDENTIFIER: the content is the OID's own DER.
            return Some(any.data.to_vec());
        }
    }
    None
}

/// Decrypts a traditional OpenSSL PEM body: key = EVP_BytesToKey(MD5, pass, iv[..8], 1).
fn decrypt_traditional(
    body: &[u8],
    dek: &str,
    pass: &Passphrase,
) -> std::result::Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let (alg, iv_hex) = dek
        .split_once(',')
        .ok_or_else(|| KeyError::Unreadable(format!("bad DEK-Info {dek:?}")))?;
    let iv = crate::store::crypto::unhex(iv_hex.trim())
        .ok_or_else(|| KeyError::Unreadable(format!("bad IV in DEK-Info {dek:?}")))?;
    let key_len = match alg.trim() {
        "DES-EDE3-CBC" => 24,
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        other => {
            return Err(KeyError::Unreadable(format!(
                "unsupported cipher {other} (vpnca reads DES-EDE3-CBC and AES-128/192/256-CBC)"
            )));
        }
    };
    let want_iv = if alg.trim() == "DES-EDE3-CBC" { 8 } else { 16 };
    if iv.len() != want_iv {
        return Err(KeyError::Unreadable(format!(
            "bad IV length in DEK-Info {dek:?}"
        )));
    }
    let key = evp_bytes_to_key(pass.expose(), &iv[..8], key_len);
    let mut buf = zeroize::Zeroizing::new(body.to_vec());
    let out_len = match alg.trim() {
        "DES-EDE3-CBC" => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(|e| KeyError::Unreadable(e.to_string()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        "AES-128-CBC" => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(|e| KeyError::Unreadable(e.to_string()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        "AES-192-CBC" => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(|e| KeyError::Unreadable(e.to_string()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(|e| KeyError::Unreadable(e.to_string()))?
            .decrypt_padded_mut::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
    }
    .map_err(|_| KeyError::WrongPassphrase)?;
    buf.truncate(out_len);
    // A wrong passphrase can still unpad by chance: the result must be DER.
    if x509_parser::der_parser::parse_der(&buf).map(|(rest, _)| rest.is_empty()) != Ok(true) {
        return Err(KeyError::WrongPassphrase);
    }
    Ok(buf)
}

/// OpenSSL's EVP_BytesToKey with MD5 and one round: D_i = MD5(D_{i-1} || pass || salt), the
/// key the first `len` bytes of D_1 || D_2 || …. Each D_i is key material: it is written
/// straight into a zeroizing buffer, never into a temporary (the MD5 state itself, which
/// md-5 0.10 cannot zeroize, still holds the passphrase until its memory is reused).
fn evp_bytes_to_key(pass: &[u8], salt: &[u8], len: usize) -> zeroize::Zeroizing<Vec<u8>> {
    use md5::{Digest, Md5};
    const MD5_LEN: usize = 16;
    let rounds = len.div_ceil(MD5_LEN);
    let mut out = zeroize::Zeroizing::new(vec![0u8; rounds * MD5_LEN]);
    for i in 0..rounds {
        let (done, rest) = out.split_at_mut(i * MD5_LEN);
        let mut h = Md5::new();
        h.update(&done[done.len().saturating_sub(MD5_LEN)..]);
        h.update(pass);
        h.update(salt);
        h.finalize_into(md5::digest::generic_array::GenericArray::from_mut_slice(
            &mut rest[..MD5_LEN],
        ));
    }
    out.truncate(len);
    out
}

/// What `import-easyrsa` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Certificates imported (the CA not counted).
    pub certificates: usize,
    /// Of which revoked.
    pub revoked: usize,
    /// Keys imported (the CA's included).
    pub keys: usize,
    /// vpnca's first CRL.
    pub crl: crate::crl::CrlInfo,
}

impl Store {
    /// Writes a [`plan`] into this store (which must have no CA), with vpnca's first CRL, in
    /// one transaction. Refused when the plan has problems, and when its source is the store,
    /// inside it or holds it ([`check_apart`]).
    pub fn import_easyrsa(&self, plan: &Plan) -> Result<ImportReport> {
        check_apart(&plan.source, self.dir())?;
        if !plan.problems.is_empty() {
            return Err(Error::Refused {
                reason: format!(
                    "the easy-rsa PKI at {} has {} problem(s); nothing was imported",
                    plan.source.display(),
                    plan.problems.len()
                ),
            });
        }
        if let Ok(ca) = self.ca() {
            return Err(Error::CaExists { name: ca.name });
        }
        let ca = plan.ca.as_ref().ok_or_else(|| Error::NotFound {
            what: "the easy-rsa CA".into(),
        })?;
        let ca_cert = crate::x509::parse_cert(&ca.der, "ca.crt")?;
        let opts = crate::crl::CrlOptions::from_store(self)?;
        let report = self.write(|tx, keys| {
            if self.ca().is_ok() {
                return Err(Error::CaExists {
                    name: ca.name.clone(),
                });
            }
            store::insert_record(
                tx,
                keys,
                NewRecord {
                    serial: &ca.serial,
                    name: &ca.name,
                    kind: CertKind::Ca,
                    profile: "root-ca",
                    der: &ca.der,
                    not_before: ca_cert.validity().not_before.to_datetime(),
                    not_after: ca_cert.validity().not_after.to_datetime(),
                    key: ca.key_der.as_ref(),
                },
            )?;
            let mut revoked = 0;
            let mut nkeys = usize::from(ca.key_der.is_some());
            let newest: HashMap<&str, &Serial> = plan
                .certificates
                .iter()
                .filter(|e| e.status == ImportStatus::Valid)
                .map(|e| (e.name.as_str(), &e.serial))
                .collect();
            for e in &plan.certificates {
                let mut rec = store::insert_record(
                    tx,
                    keys,
                    NewRecord {
                        serial: &e.serial,
                        name: &e.name,
                        kind: e.kind,
                        profile: e.profile,
                        der: &e.der,
                        not_before: e.not_before,
                        not_after: e.not_after,
                        key: e.key_der.as_ref(),
                    },
                )?;
                nkeys += usize::from(e.key);
                // One MAC'd entry per certificate: `verify` then notices a record deleted
                // afterwards (a certificate the VPN trusts that nobody could revoke).
                store::audit_append(
                    tx,
                    keys,
                    "import",
                    &e.name,
                    &e.serial.hex(),
                    &serde_json::json!({"kind": e.kind, "status": e.status, "key_stored": e.key}),
                )?;
                match (e.status, e.revoked) {
                    (ImportStatus::Revoked, Some((at, reason))) => {
                        rec.state = CertState::Revoked;
                        rec.revoked_at = Some(at);
                        rec.reason = Some(reason);
                        store::update_record(tx, keys, &rec)?;
                        store::add_revoked(tx, keys, &rec.serial)?;
                        revoked += 1;
                    }
                    (ImportStatus::Superseded, _) => {
                        rec.state = CertState::Superseded;
                        rec.superseded_by = newest.get(e.name.as_str()).map(|s| (*s).clone());
                        store::update_record(tx, keys, &rec)?;
                    }
                    _ => {}
                }
            }
            if let Some(floor) = plan.crl_number_floor {
                store::meta_set(tx, "crl_number_floor", &floor.to_string())?;
            }
            store::audit_append(
                tx,
                keys,
                "import-easyrsa",
                &ca.name,
                &ca.serial.hex(),
                &serde_json::json!({
                    "source": plan.source.display().to_string(),
                    "certificates": plan.certificates.len(),
                    "revoked": revoked,
                    "keys": nkeys,
                    "crl_number_floor": plan.crl_number_floor,
                }),
            )?;
            let signer = self.signer()?;
            let crl = crate::crl::generate_in_tx(self, tx, keys, &signer, &opts)?;
            Ok(ImportReport {
                certificates: plan.certificates.len(),
                revoked,
                keys: nkeys,
                crl,
            })
        })?;
        self.sync_global_mirrors()?;
        let names: Vec<&str> = plan.certificates.iter().map(|e| e.name.as_str()).collect();
        self.sync_mirrors_batch(names.iter().copied())?;
        Ok(report)
    }
}

/// Entry points for the fuzz targets in `fuzz/` (built only with `--cfg fuzzing`): the
/// parsers of files that come from outside, without the file system around them.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Parses an `index.txt`; returns the number of lines read and of problems found.
    pub fn index(bytes: &[u8]) -> (usize, usize) {
        let mut plan = Plan {
            source: PathBuf::new(),
            ca: None,
            certificates: Vec::new(),
            crl_number_floor: None,
            notes: Vec::new(),
            problems: Vec::new(),
        };
        let lines = parse_index(bytes, &mut plan);
        (lines.len(), plan.problems.len())
    }

    /// Reads a key file as `import-easyrsa` does, with `pass` when given; `Some(len)` of the
    /// PKCS#8 DER on success.
    pub fn key(bytes: &[u8], pass: Option<&Passphrase>) -> Option<usize> {
        read_key(bytes, pass).ok().map(|k| k.expose().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: u8, not_before: OffsetDateTime) -> Entry {
        Entry {
            name: "dave".into(),
            serial: Serial::from_bytes(&[serial]),
            kind: CertKind::Client,
            status: ImportStatus::Valid,
            revoked: None,
            key: false,
            source: PathBuf::new(),
            der: Vec::new(),
            key_der: None,
            not_before,
            not_after: not_before,
            profile: "client",
        }
    }

    /// Regression: a renew in the same second as the issue left the OLD certificate valid.
    /// A key whose scrypt parameters ask little memory per lane but many lanes of wide blocks
    /// (N = 2, r = 65535, p = 512: 4.2 GB and 90 s before the passphrase is even tried) is
    /// refused before any derivation, naming the cost.
    ///
    /// Fails when: the bound counts 128·r·N bytes per lane only (the old formula; the key is
    /// then derived, and the wrong passphrase is all that is reported).
    #[test]
    fn wide_scrypt_blocks_are_refused_before_deriving() {
        let input = include_bytes!("../tests/data/fuzz-regressions/easyrsa_key-scrypt-wide-blocks");
        let pass = Passphrase::new("not-the-passphrase".into());
        match read_key(&input[1..], Some(&pass)) {
            Err(KeyError::Unreadable(why)) => {
                assert!(
                    why.contains("N=2, r=65535, p=512") && why.contains("block mixes"),
                    "{why}"
                );
            }
            Err(KeyError::WrongPassphrase) => panic!("the key was derived: wrong passphrase"),
            Err(KeyError::NeedsPassphrase) => panic!("the passphrase was not used"),
            Ok(_) => panic!("the key was read"),
        }
    }

    /// openssl's index.txt escapes UTF-8 bytes: `Jos\xC3\xA9` is the CN José.
    ///
    /// Fails when: the index CN is compared as written (every non-ASCII CN is then a problem).
    #[test]
    fn index_subjects_are_unescaped() {
        assert_eq!(unescape_oneline("Jos\\xC3\\xA9"), "Jos\u{e9}");
        assert_eq!(unescape_oneline("Jose\\xcc\\x81"), "Jose\u{301}");
        assert_eq!(unescape_oneline("plain"), "plain");
        assert_eq!(unescape_oneline("odd\\x4"), "odd\\x4");
    }

    #[test]
    fn same_second_renewal_keeps_the_later_index_line() {
        let t = store::now();
        let mut e = vec![entry(1, t), entry(2, t)];
        supersede_duplicates(&mut e);
        assert_eq!(e[0].status, ImportStatus::Superseded);
        assert_eq!(e[1].status, ImportStatus::Valid);
        let mut e = vec![entry(1, t + ::time::Duration::seconds(5)), entry(2, t)];
        supersede_duplicates(&mut e);
        assert_eq!(e[0].status, ImportStatus::Valid);
    }

    #[test]
    fn index_dates() {
        assert!(parse_asn1_time("290223073626Z").is_some());
        assert!(parse_asn1_time("20290223073626Z").is_some());
        assert!(parse_asn1_time("2902230736Z").is_none());
        assert!(parse_asn1_time("291323073626Z").is_none());
    }
}
