//! The one error type of the vpnca library.

use std::path::PathBuf;

/// Everything that can go wrong in a vpnca library call.
///
/// Every variant names the object involved (a path, a name, a serial) so that the CLI can
/// print it as is. No variant ever carries secret material (passphrases, key bytes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory holds no vpnca store (`vpnca init` was not run there).
    #[error("no vpnca store at {}: run `vpnca init` first (or pass --pki DIR / set VPNCA_PKI)", .path.display())]
    NotInitialized {
        /// The store directory.
        path: PathBuf,
    },
    /// `init` was asked to create a store where one already exists.
    #[error("a vpnca store already exists at {}", .path.display())]
    AlreadyInitialized {
        /// The store directory.
        path: PathBuf,
    },
    /// The store has no CA yet, and the operation needs one.
    #[error("the store has no CA yet: run `vpnca ca` (or `vpnca ca --sub-ca` / `--import-cert`)")]
    NoCa,
    /// `ca` was asked to create a CA in a store that already has one.
    #[error("the store already has a CA ({name}); a store holds exactly one CA")]
    CaExists {
        /// The CA's common name.
        name: String,
    },
    /// The passphrase does not open the store. Nothing was changed.
    #[error("wrong passphrase: it does not unlock this store (nothing was changed)")]
    WrongPassphrase,
    /// A new passphrase is unacceptable (too short, empty, not confirmed).
    #[error("unacceptable passphrase: {reason}")]
    BadPassphrase {
        /// Why it was refused.
        reason: String,
    },
    /// The operation needs the store's keys, but the store was not unlocked.
    #[error("the store is locked: this operation needs the passphrase")]
    Locked,
    /// A certificate name (CN) is not acceptable. The name is printed as a shell word
    /// ([`crate::shell::quote`]): as the user would type it, quoted where needed.
    #[error("invalid name {}: {reason}", crate::shell::quote(.name))]
    InvalidName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: String,
    },
    /// An argument (days, SAN, serial, reason, algorithm, …) is not acceptable.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which input.
        what: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A live certificate with that name exists already.
    #[error(
        "a valid certificate named {} exists already (serial {serial}); use `vpnca renew {}` to replace it, or `vpnca revoke {}` first",
        crate::shell::quote(.name),
        crate::shell::quote(.name),
        crate::shell::quote(.name)
    )]
    DuplicateName {
        /// The name.
        name: String,
        /// The serial of the live certificate.
        serial: String,
    },
    /// A new name looks like the name of a live certificate (or of another name in the same
    /// batch): the same letters after Unicode normalization, case folding and the UTS #39
    /// confusable mapping (`bob`, `Bob`, `b0b`, `bоb` with a Cyrillic о). Nothing was changed.
    #[error(
        "refusing the name {}: it looks like {}, which has a valid certificate (same letters after Unicode normalization, case folding and look-alike mapping); use {} itself, or a name that tells them apart (e.g. with the surname)",
        crate::shell::quote(.name),
        crate::shell::quote(.existing),
        crate::shell::quote(.existing)
    )]
    LookAlikeName {
        /// The name refused.
        name: String,
        /// The name it looks like.
        existing: String,
    },
    /// `revoke` found nothing left to revoke because the certificate is revoked already: for
    /// a name, its newest certificate (and none of its certificates is both unrevoked and
    /// unexpired); for a serial, that certificate. Nothing was changed.
    #[error(
        "{} is already revoked: serial {serial} was revoked on {} ({}); nothing was changed",
        crate::shell::quote(.name),
        .revoked_at.map(crate::fmt_time).unwrap_or_else(|| "an unrecorded date".into()),
        .reason.map_or("no reason recorded".into(), |r| format!("reason {}", r.as_str()))
    )]
    AlreadyRevoked {
        /// The certificate's name.
        name: String,
        /// Its serial (hex).
        serial: String,
        /// When it was revoked.
        revoked_at: Option<time::OffsetDateTime>,
        /// Why.
        reason: Option<crate::RevocationReason>,
    },
    /// `revoke NAME` found nothing left to revoke because the name's newest certificate has
    /// expired (and none of its certificates is both unrevoked and unexpired): an expired
    /// certificate cannot connect. Nothing was changed.
    #[error(
        "{} has nothing to revoke: its certificate (serial {serial}) expired on {}, and an expired certificate cannot connect; nothing was changed (`vpnca revoke --serial {serial}` lists it in the CRL all the same)",
        crate::shell::quote(.name),
        crate::fmt_time(*.not_after)
    )]
    AlreadyExpired {
        /// The certificate's name.
        name: String,
        /// Its serial (hex).
        serial: String,
        /// Its notAfter.
        not_after: time::OffsetDateTime,
    },
    /// No certificate (or other object) matches.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A certificate signing request is unusable.
    #[error("bad certificate signing request {source_name}: {reason}")]
    Csr {
        /// Where the CSR came from (a path or "stdin").
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate given to us (sub-CA import, chain) is unusable.
    #[error("bad certificate {source_name}: {reason}")]
    BadCertificate {
        /// Where it came from.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate profile (pki-templates/*.toml or its per-PKI override) is invalid.
    #[error("bad certificate profile {source_name}: {reason}")]
    Template {
        /// The template file (or built-in name).
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CRL would exceed the AWS Client VPN quota.
    #[error(
        "the CRL would hold {count} entries, more than the {limit} that AWS Client VPN accepts; use --omit-expired to leave out revoked certificates that have expired anyway, or start a new CA for new users"
    )]
    CrlTooLarge {
        /// Entries the CRL would hold.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The store's contents fail an integrity check (edited, swapped or removed data).
    #[error(
        "store integrity check failed: {what}; run `vpnca verify` for the full report (nothing was changed)"
    )]
    Tampered {
        /// What failed.
        what: String,
    },
    /// The store keeps a second checkpoint outside its folder (`--checkpoint FILE` /
    /// `VPNCA_CHECKPOINT`), recorded in its authenticated state, and none was given: every
    /// write and every use of a private key is refused until it is. Nothing was changed.
    #[error(
        "this store keeps a second checkpoint outside its folder (last used at {recorded}), and none was given: pass --checkpoint FILE or set VPNCA_CHECKPOINT (if that file is lost, `vpnca --checkpoint NEWFILE verify --accept-restore` starts a new one; see docs/security.md) (nothing was changed)"
    )]
    CheckpointNotGiven {
        /// The path the second checkpoint was last used at, as recorded in the store.
        recorded: String,
    },
    /// The store's database holds a schema object vpnca never creates (a trigger, a view, an
    /// index, a changed table): someone wrote the file outside vpnca. Nothing was run or changed.
    #[error(
        "refusing the store database {}: it holds {what}, which vpnca never creates — the file was edited outside vpnca; nothing was run or changed (restore the store from a backup; `sqlite3 FILE .schema` shows the edit)",
        .path.display()
    )]
    ForeignSchema {
        /// The database file.
        path: PathBuf,
        /// The unexpected (or missing) object.
        what: String,
    },
    /// The store was written by a newer (or unknown) format version.
    #[error("unsupported store format at {}: {reason}", .path.display())]
    UnsupportedStore {
        /// The store file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file we must create exists already; we never overwrite it.
    #[error("{} exists already; vpnca never overwrites it (move it away or choose another --out)", .path.display())]
    FileExists {
        /// The path.
        path: PathBuf,
    },
    /// A path named for output cannot be written safely: it is a directory where a file is
    /// expected, a device, a FIFO, a socket or a symbolic link (vpnca never writes to, through
    /// or over those), or its directory is missing. Found by [`crate::fsutil::check_output`]
    /// before anything changes, or when the file is written.
    #[error("cannot write {}: {reason}", .path.display())]
    OutputPath {
        /// The path as given.
        path: PathBuf,
        /// What is there, or what is missing.
        reason: String,
    },
    /// A file named as input (a passphrase file, a request, a certificate, a batch, an
    /// OpenVPN configuration, a file of an easy-rsa PKI) was refused before it was read into
    /// memory: it holds more than the most vpnca reads from such a file, or it is not a
    /// regular file (a directory, a device, a socket; a FIFO is read only where a pipe is
    /// accepted). Found by [`crate::fsutil::read_bounded`] and its siblings. Nothing was changed.
    #[error("refusing {what} {}: {reason}", .path.display())]
    InputFile {
        /// What the file was read as ("the passphrase file", "the batch file", …).
        what: &'static str,
        /// The path as given (`<stdin>` for standard input).
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// `init` was pointed at a folder that holds an easy-rsa PKI (or `openssl ca` files):
    /// creating a store there would overwrite easy-rsa's `ca.crt`, `crl.pem` and `issued/`.
    /// Nothing was written.
    #[error(
        "{} holds an easy-rsa PKI ({}): vpnca does not create its store there, it would overwrite easy-rsa's files; import it into a new folder instead: `vpnca --pki NEWDIR init && vpnca --pki NEWDIR import-easyrsa {}`",
        .path.display(),
        .found.join(", "),
        crate::shell::quote(&.path.to_string_lossy())
    )]
    EasyRsaFolder {
        /// The folder.
        path: PathBuf,
        /// The easy-rsa files and folders found in it (`index.txt`, `private/ca.key`, …).
        found: Vec<String>,
    },
    /// `init` was pointed at a folder that holds files it did not create: a store is created
    /// only in a new or empty folder. Nothing was written.
    #[error(
        "{} is not empty (it holds {}): vpnca creates its store only in a new or empty folder; choose another --pki DIR",
        .path.display(),
        .found.join(", ")
    )]
    DirNotEmpty {
        /// The folder.
        path: PathBuf,
        /// Some of the names in it.
        found: Vec<String>,
    },
    /// `import-easyrsa` was given a source folder that is the store, lies inside it, or holds
    /// it: the import would read the store as easy-rsa's files, and the advice to delete the
    /// source afterwards would delete the store. Nothing was read or written.
    #[error(
        "the easy-rsa folder {} {relation} the vpnca store {}: import from a folder apart from the store (`vpnca --pki NEWDIR init && vpnca --pki NEWDIR import-easyrsa {}`)",
        .source_dir.display(),
        .store.display(),
        crate::shell::quote(&.source_dir.to_string_lossy())
    )]
    SourceOverlapsStore {
        /// The easy-rsa folder, as given.
        source_dir: PathBuf,
        /// The store folder.
        store: PathBuf,
        /// "is", "is inside" or "holds".
        relation: &'static str,
    },
    /// A file-system operation failed.
    #[error("{op} {}: {cause}", .path.display())]
    Io {
        /// What we were doing ("reading", "creating", …).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The store database reported an error (other than "busy", which we wait out).
    #[error("store database error while {op}: {message}")]
    Database {
        /// What we were doing.
        op: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The request is well-formed but the store's state does not allow it (e.g. a profile
    /// for a revoked certificate). The message says why.
    #[error("{reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// AWS configuration is missing or unusable (no region, no credentials, a bad endpoint
    /// URL). Nothing was sent.
    #[error("AWS configuration: {reason}")]
    AwsConfig {
        /// What is missing or wrong.
        reason: String,
    },
    /// An AWS call failed: the service's error code and message (or `Network`/`Timeout`).
    /// The store is unchanged.
    #[error("AWS {operation} failed: {code}: {message}")]
    Aws {
        /// The API operation.
        operation: String,
        /// The AWS error code.
        code: String,
        /// The AWS error message.
        message: String,
    },
    /// A KMS call about a key failed, or a key cannot sign in its current state: disabled,
    /// pending deletion or import, not found, throttled past the retries, KMS unreachable or
    /// too slow. `what` says it in words after the key, `code` is KMS's error code (or
    /// `Network`, `Timeout`, `UnexpectedResponse`). Nothing was signed. An AWS error, like
    /// [`Error::Aws`] (exit 3 in the CLI).
    #[error("KMS key {key} {what} ({code} from {operation}): {message}")]
    Kms {
        /// The key as the call named it (ARN, id or alias).
        key: String,
        /// The KMS operation (`Sign`, `GetPublicKey`, `DescribeKey`).
        operation: String,
        /// KMS's error code, or `Network`, `Timeout`, `UnexpectedResponse`.
        code: String,
        /// The problem in words ("is disabled", "cannot be reached", …).
        what: String,
        /// KMS's message, or what failed.
        message: String,
    },
    /// KMS returned a signature that does not verify with the key's public key. It was not
    /// used: nothing was stored or published with it. An AWS error (exit 3 in the CLI).
    #[error(
        "KMS key {key} returned a {algorithm} signature that does not verify with the key's public key; it was refused and nothing was signed with it"
    )]
    KmsBadSignature {
        /// The key ARN.
        key: String,
        /// The KMS signing algorithm.
        algorithm: &'static str,
    },
    /// A KMS key answers but cannot be a vpnca CA key: its usage is not SIGN_VERIFY, its spec
    /// is not RSA_2048/3072/4096 or ECC_NIST_P256/P384, or its public key does not match its
    /// spec. Bad input (exit 2): another key must be named. Nothing was signed.
    #[error("KMS key {key} cannot sign for vpnca: {reason}")]
    KmsKeyUnsuitable {
        /// The key ARN.
        key: String,
        /// Why.
        reason: String,
    },
    /// An ACM import would break rules that real ACM or Client VPN enforce. Nothing was sent.
    #[error("refusing to import (nothing was sent to AWS): {}", .problems.join("; "))]
    Preflight {
        /// Each rule broken, as `[rule] message`.
        problems: Vec<String>,
    },
    /// What AWS holds after a call is not what was sent.
    #[error("{what}")]
    RemoteMismatch {
        /// What differs.
        what: String,
    },
    /// A cryptographic primitive failed (key generation, signing, encoding).
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
}

/// Shorthand for `Result<T, vpnca::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |cause| Error::Io { op, path, cause }
    }

    pub(crate) fn input(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Crypto(e.to_string())
    }
}
