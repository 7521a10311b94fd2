//! File helpers: files that hold secrets are created new with mode 0600 and never clobbered;
//! public mirrors are replaced atomically (temp file, fsync, rename).
//!
//! Paths a user names for output (`crl --out`, `export --out`, `profile --out`, …) are checked
//! with [`check_output`] before anything changes, and again when written ([`replace_output`],
//! and [`create_new`], which never opens an existing path): vpnca writes only regular files,
//! and never writes to, through or over a directory, device, FIFO, socket or symbolic link.
//! Symbolic links above the last component (`/var` → `/private/var`) are followed.
//!
//! Files a user names as input (a passphrase file, a request, a batch, an OpenVPN
//! configuration, an easy-rsa PKI) are read with [`read_bounded`] (regular files only),
//! [`read_bounded_or_pipe`] (also a FIFO: `<(cmd)`) or [`read_stdin_bounded`]: never more than
//! the [`InputLimit`] of that kind of file is read into memory, so that a huge file,
//! `/dev/zero` or an endless pipe is refused quickly instead of exhausting memory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{Error, Result};

/// What is at a path, as `lstat` sees it: a symbolic link is reported as such, not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing.
    Missing,
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (dangling or not).
    Symlink,
    /// A character device (`/dev/null`, a terminal).
    CharDevice,
    /// A block device (a disk).
    BlockDevice,
    /// A FIFO (named pipe).
    Fifo,
    /// A Unix domain socket.
    Socket,
}

impl PathKind {
    /// What is at `path` (not following a symbolic link there). An error other than "not
    /// found" (no permission on a directory above it) is [`Error::Io`].
    pub fn of(path: &Path) -> Result<PathKind> {
        let t = match fs::symlink_metadata(path) {
            Ok(m) => m.file_type(),
            // Also when something above it is no directory (`fifo/x`): nothing can be there.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(PathKind::Missing);
            }
            Err(e) => return Err(Error::io("examining", path)(e)),
        };
        Ok(if t.is_symlink() {
            PathKind::Symlink
        } else if t.is_dir() {
            PathKind::Dir
        } else if t.is_file() {
            PathKind::File
        } else if t.is_char_device() {
            PathKind::CharDevice
        } else if t.is_block_device() {
            PathKind::BlockDevice
        } else if t.is_fifo() {
            PathKind::Fifo
        } else {
            PathKind::Socket
        })
    }

    /// "a directory", "a character device", … for messages.
    pub fn describe(self) -> &'static str {
        match self {
            PathKind::Missing => "nothing",
            PathKind::File => "a regular file",
            PathKind::Dir => "a directory",
            PathKind::Symlink => "a symbolic link",
            PathKind::CharDevice => "a character device",
            PathKind::BlockDevice => "a block device",
            PathKind::Fifo => "a FIFO (named pipe)",
            PathKind::Socket => "a socket",
        }
    }
}

/// How a command uses a path the user named for its output (see [`check_output`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A public file (a CRL) that replaces a regular file of that name atomically (temporary
    /// file and rename, [`replace_output`]). Its directory must exist.
    Replace,
    /// A file created new and never overwritten (a request, a key): nothing may be at the
    /// path. Its directory must exist.
    New,
    /// Like [`Output::New`], but missing directories above it are created (mode 0700) when it
    /// is written (a profile, an exported file).
    NewWithDirs,
    /// A directory that receives new files: an existing directory, or nothing (then it is
    /// created with its missing parents, mode 0700).
    Dir,
}

fn bad_output(path: &Path, reason: impl Into<String>) -> Error {
    Error::OutputPath {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Why vpnca refuses to write where `kind` is (for a file output).
fn refusal(kind: PathKind) -> String {
    match kind {
        PathKind::Dir => "it is a directory (name a file)".into(),
        PathKind::Symlink => "it is a symbolic link; vpnca never writes through or replaces one \
             (name the file it points to)"
            .into(),
        k => format!(
            "it is {}; vpnca writes only regular files and never replaces a device, FIFO or \
             socket",
            k.describe()
        ),
    }
}

/// Checks that the directory holding `path` exists (or, with `create`, that the nearest
/// existing directory above it does: the rest is created when written) and is a directory.
/// Symbolic links to directories are followed here.
fn check_parent(path: &Path, create: bool) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return Ok(()), // `/`: a directory, refused by the caller.
    };
    for dir in parent.ancestors().filter(|d| !d.as_os_str().is_empty()) {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {
                if create || dir == parent {
                    return Ok(());
                }
                break;
            }
            Ok(m) => {
                let kind = match PathKind::of(dir)? {
                    PathKind::Symlink if m.is_file() => "a symbolic link to a file",
                    PathKind::Symlink => "a symbolic link to something else",
                    kind => kind.describe(),
                };
                return Err(bad_output(
                    path,
                    format!("{} is {kind}, not a directory", dir.display()),
                ));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                if PathKind::of(dir)? == PathKind::Symlink {
                    return Err(bad_output(
                        path,
                        format!("{} is a symbolic link to nothing", dir.display()),
                    ));
                }
            }
            Err(e) => return Err(Error::io("examining", dir)(e)),
        }
    }
    if create {
        return Ok(());
    }
    Err(bad_output(
        path,
        format!("its directory {} does not exist", parent.display()),
    ))
}

/// Checks a path the user named for output, before anything is changed: what `how` allows
/// must be there (see [`Output`]), and its directory must exist (or, for
/// [`Output::NewWithDirs`] and [`Output::Dir`], be creatable: the nearest existing directory
/// above it is a directory). A directory where a file is expected, a device, a FIFO, a socket
/// or a symbolic link is [`Error::OutputPath`]; an existing file where a new one must be
/// created is [`Error::FileExists`]. Nothing is written.
pub fn check_output(path: &Path, how: Output) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(bad_output(path, "the path is empty"));
    }
    let kind = PathKind::of(path)?;
    match (how, kind) {
        (Output::Dir, PathKind::Dir) => return Ok(()),
        (Output::Dir, PathKind::Missing) => return check_parent(path, true),
        (Output::Dir, PathKind::File) => {
            return Err(bad_output(path, "it is a file, not a directory"));
        }
        (Output::Dir, PathKind::Symlink) => {
            return Err(bad_output(
                path,
                "it is a symbolic link; vpnca never writes through one (name the directory it \
                 points to)",
            ));
        }
        (Output::Dir, k) => {
            return Err(bad_output(
                path,
                format!("it is {}, not a directory", k.describe()),
            ));
        }
        (_, PathKind::Missing) => {}
        (Output::Replace, PathKind::File) => {}
        (Output::New | Output::NewWithDirs, PathKind::File) => {
            return Err(Error::FileExists {
                path: path.to_path_buf(),
            });
        }
        (_, k) => return Err(bad_output(path, refusal(k))),
    }
    check_parent(path, how == Output::NewWithDirs)
}

/// Creates `path` with `bytes`, failing with [`Error::FileExists`] if it exists. Mode `mode`
/// is set at creation (no window where the file is readable by others). Synced to disk.
pub(crate) fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(f) => f,
        // `create_new` opens nothing that exists, not even through a symbolic link: what is
        // there is only named.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(match PathKind::of(path) {
                Ok(PathKind::File) | Err(_) => Error::FileExists {
                    path: path.to_path_buf(),
                },
                Ok(kind) => bad_output(path, refusal(kind)),
            });
        }
        Err(e) => return Err(Error::io("creating", path)(e)),
    };
    let res = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = res {
        let _ = fs::remove_file(path);
        return Err(Error::io("writing", path)(e));
    }
    Ok(())
}

/// Creates a file the user named ([`Output::New`]): [`check_output`], then [`create_new`]
/// (synced, mode `mode` from the start). What appeared at the path since the check is refused,
/// never opened: [`Error::FileExists`] for a file, [`Error::OutputPath`] for anything else.
pub fn create_output(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    check_output(path, Output::New)?;
    create_new(path, bytes, mode)
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The most vpnca reads from one kind of input file, and how messages name it. A file that
/// holds more is refused ([`Error::InputFile`]) after reading at most `max + 1` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimit {
    /// What the file is, for messages ("the passphrase file").
    pub what: &'static str,
    /// How a failed read is reported ("reading passphrase file": [`Error::Io`]'s `op`).
    pub reading: &'static str,
    /// The most bytes read: a file that holds more is refused.
    pub max: u64,
    /// What to do when it is refused.
    pub hint: &'static str,
}

impl InputLimit {
    /// `--passphrase-file`, `--new-passphrase-file`, `--key-passphrase-file`,
    /// `--easyrsa-passphrase-file`: one line.
    pub const PASSPHRASE: InputLimit = InputLimit {
        what: "the passphrase file",
        reading: "reading passphrase file",
        max: 4 * KIB,
        hint: "a passphrase file holds one line, the passphrase; check that you named the right file",
    };
    /// A certificate signing request (`sign-req`, `sign-req --batch DIR`): a few KiB.
    pub const CSR: InputLimit = InputLimit {
        what: "the certificate signing request",
        reading: "reading",
        max: MIB,
        hint: "a request is a few KiB; check that you named the request file",
    };
    /// A certificate or chain file (`ca --sub-ca --import-cert FILE --chain FILE`).
    pub const CERTIFICATE: InputLimit = InputLimit {
        what: "the certificate file",
        reading: "reading",
        max: MIB,
        hint: "a certificate or a chain of them is a few KiB; check that you named the right file",
    };
    /// `--batch FILE` (or `-`, standard input): 64 MiB, about 1,000,000 CSV rows.
    pub const BATCH: InputLimit = InputLimit {
        what: "the batch file",
        reading: "reading batch file",
        max: 64 * MIB,
        hint: "split it into smaller batches (20,000 CSV rows are about 1 MiB)",
    };
    /// An OpenVPN client configuration (`profile --config`, `--ovpn-config`).
    pub const OVPN_CONFIG: InputLimit = InputLimit {
        what: "the OpenVPN configuration",
        reading: "reading",
        max: MIB,
        hint: "a client configuration is a few KiB; check that you named the right file",
    };
    /// A profile override in the store folder (`<pki>/templates/NAME.toml`): a few hundred bytes.
    pub const TEMPLATE: InputLimit = InputLimit {
        what: "the template",
        reading: "reading profile",
        max: 64 * KIB,
        hint: "a template is a few hundred bytes of TOML (docs/profiles.md)",
    };
    /// An easy-rsa `index.txt` (`import-easyrsa`).
    pub const EASYRSA_INDEX: InputLimit = InputLimit {
        what: "the easy-rsa index",
        reading: "reading",
        max: 64 * MIB,
        hint: "an index.txt line is about 130 bytes (64 MiB: some 500,000 certificates); check that this is easy-rsa's index.txt",
    };
    /// A certificate or key of an easy-rsa PKI (`ca.crt`, `issued/*.crt`, `private/*.key`).
    pub const EASYRSA_FILE: InputLimit = InputLimit {
        what: "the easy-rsa file",
        reading: "reading",
        max: MIB,
        hint: "a certificate or key is a few KiB; check that this is the file easy-rsa wrote",
    };
    /// An easy-rsa `vars` file (`--vars=FILE`, `$EASYRSA_VARS_FILE`, `pki/vars`, `./vars`):
    /// easy-rsa's own example is about 9 KiB.
    pub const EASYRSA_VARS: InputLimit = InputLimit {
        what: "the easy-rsa vars file",
        reading: "reading",
        max: 256 * KIB,
        hint: "a vars file is a few KiB of set_var lines; check that you named easy-rsa's vars file",
    };
    /// An easy-rsa `crl.pem`: a CRL lists every revoked certificate, about 50 bytes each.
    pub const EASYRSA_CRL: InputLimit = InputLimit {
        what: "the easy-rsa CRL",
        reading: "reading",
        max: 16 * MIB,
        hint: "a CRL of 200,000 revocations is about 14 MiB; check that this is the CRL easy-rsa wrote",
    };

    /// "4 KiB", "64 MiB".
    fn max_text(&self) -> String {
        match self.max {
            n if n >= MIB && n % MIB == 0 => format!("{} MiB", n / MIB),
            n if n >= KIB && n % KIB == 0 => format!("{} KiB", n / KIB),
            n => format!("{n} bytes"),
        }
    }

    fn refuse(&self, path: &Path, reason: String) -> Error {
        Error::InputFile {
            what: self.what,
            path: path.to_path_buf(),
            reason,
        }
    }

    fn too_large(&self, path: &Path) -> Error {
        self.refuse(
            path,
            format!(
                "it holds more than {}, the most vpnca reads from one; {}",
                self.max_text(),
                self.hint
            ),
        )
    }
}

/// Reads the regular file at `path` (symbolic links followed), at most `limit.max` bytes.
/// Anything else (a directory, a device such as `/dev/zero`, a FIFO, a socket) is refused
/// without being opened, and so is a file that holds more ([`Error::InputFile`]); a failed
/// open or read is [`Error::Io`] with `limit.reading`.
pub fn read_bounded(path: &Path, limit: &InputLimit) -> Result<Vec<u8>> {
    read_input(path, limit, false)
}

/// [`read_bounded`], but a FIFO is read too (`--batch <(cmd)`, `--passphrase-file <(pass
/// show vpnca)`), up to `limit.max` bytes like a file; opening it waits for its writer.
pub fn read_bounded_or_pipe(path: &Path, limit: &InputLimit) -> Result<Vec<u8>> {
    read_input(path, limit, true)
}

/// Standard input, at most `limit.max` bytes ([`Error::InputFile`] for `<stdin>` beyond).
pub fn read_stdin_bounded(limit: &InputLimit) -> Result<Vec<u8>> {
    read_limited(std::io::stdin().lock(), Path::new("<stdin>"), limit)
}

fn read_input(path: &Path, limit: &InputLimit, pipe: bool) -> Result<Vec<u8>> {
    let check = |t: fs::FileType| -> Result<()> {
        if t.is_file() || (pipe && t.is_fifo()) {
            return Ok(());
        }
        let kind = if t.is_dir() {
            PathKind::Dir
        } else if t.is_char_device() {
            PathKind::CharDevice
        } else if t.is_block_device() {
            PathKind::BlockDevice
        } else if t.is_fifo() {
            PathKind::Fifo
        } else {
            PathKind::Socket
        };
        Err(limit.refuse(
            path,
            format!(
                "it is {}, not a regular file{}; name the file itself",
                kind.describe(),
                if pipe { " or a pipe" } else { "" }
            ),
        ))
    };
    // Checked before opening: opening a FIFO waits for a writer, reading a device may never
    // end. Checked again on what was opened, in case the path was replaced in between.
    check(
        fs::metadata(path)
            .map_err(Error::io(limit.reading, path))?
            .file_type(),
    )?;
    let f = File::open(path).map_err(Error::io(limit.reading, path))?;
    check(
        f.metadata()
            .map_err(Error::io(limit.reading, path))?
            .file_type(),
    )?;
    read_limited(f, path, limit)
}

/// Reads `r` to its end, but never more than `limit.max + 1` bytes: one more is refused. The
/// buffer is zeroized when refused (it may hold a passphrase) and allocated once for small
/// limits, so that no copy of a secret is left behind by a reallocation.
fn read_limited(r: impl Read, path: &Path, limit: &InputLimit) -> Result<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(
        usize::try_from(limit.max.min(64 * KIB) + 1).unwrap_or(0),
    ));
    r.take(limit.max + 1)
        .read_to_end(&mut buf)
        .map_err(Error::io(limit.reading, path))?;
    if buf.len() as u64 > limit.max {
        return Err(limit.too_large(path));
    }
    Ok(std::mem::take(&mut *buf))
}

/// Replaces `path` atomically with `bytes` (mode `mode`): readers see the old or the new
/// content, never a part, also after a crash.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_atomic_checked(path, bytes, mode, false)
}

/// [`write_atomic`] for a path the user named ([`Output::Replace`]): checked again once the
/// temporary file is written, right before the rename, so that a directory, device, FIFO,
/// socket or symbolic link put there since [`check_output`] is refused ([`Error::OutputPath`])
/// instead of replaced. A regular file is replaced; its other hard links keep the old content.
pub fn replace_output(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    check_output(path, Output::Replace)?;
    write_atomic_checked(path, bytes, mode, true)
}

fn write_atomic_checked(path: &Path, bytes: &[u8], mode: u32, check: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };

    let mut rnd = [0u8; 6];
    aws_lc_rs::rand::fill(&mut rnd)
        .map_err(|_| Error::Crypto("random number generator failed".into()))?;
    let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".vpnca-tmp-{suffix}"));
    create_new(&tmp, bytes, mode)?;
    let target = if check {
        PathKind::of(path)
    } else {
        Ok(PathKind::File)
    };
    let renamed = match target {
        Ok(PathKind::Missing | PathKind::File) => {
            fs::rename(&tmp, path).map_err(Error::io("replacing", path))
        }
        Ok(kind) => Err(bad_output(path, refusal(kind))),
        Err(e) => Err(e),
    };
    if let Err(e) = renamed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Creates every `(path, bytes, mode)` of `plan` new, in order; if one fails, the files
/// already created are removed and the error returned (all or nothing).
pub(crate) fn create_all_new(plan: &[(PathBuf, Zeroizing<Vec<u8>>, u32)]) -> Result<Vec<PathBuf>> {
    let mut written: Vec<PathBuf> = Vec::new();
    for (p, content, mode) in plan {
        if let Err(e) = create_new(p, content, *mode) {
            remove_all(&written);
            return Err(e);
        }
        written.push(p.clone());
    }
    Ok(written)
}

/// Removes files (best effort: used to undo a partial write).
pub(crate) fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = fs::remove_file(p);
    }
}

/// Replaces `path` with `bytes` through a temporary file and a rename (readers never see a
/// part), without fsync: for public mirrors written by the thousand.
pub(crate) fn replace_unsynced(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut rnd = [0u8; 6];
    aws_lc_rs::rand::fill(&mut rnd)
        .map_err(|_| Error::Crypto("random number generator failed".into()))?;
    let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".vpnca-tmp-{suffix}"));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("replacing", path)(e));
    }
    Ok(())
}

/// Creates a directory (and parents) with mode `mode` if it does not exist.
pub(crate) fn create_dir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(Error::io("creating directory", path))
}

/// Best-effort fsync of a directory, so that a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Temporary files (`.vpnca-tmp-…` of [`write_atomic`] and [`replace_unsynced`]) in `dir` left
/// behind by a process killed between creating and renaming them, older than `min_age` (a
/// live writer's are milliseconds old). Removes them and returns their paths.
pub(crate) fn remove_stale_temps(dir: &Path, min_age: std::time::Duration) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(".vpnca-tmp-"));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if is_temp
            && old
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(p: &Path) {
        let o = std::process::Command::new("mkfifo")
            .arg(p)
            .output()
            .expect("mkfifo");
        assert!(o.status.success(), "mkfifo {}", p.display());
    }

    fn is_fifo(p: &Path) -> bool {
        PathKind::of(p).expect("lstat") == PathKind::Fifo
    }

    fn temps(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read_dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".vpnca-tmp-"))
            .collect()
    }

    /// A FIFO put at the path after [`check_output`] (here: not checked at all) is found again
    /// right before the rename and refused, the temporary file removed; a regular file is
    /// replaced.
    ///
    /// Fails when: `write_atomic_checked` renames without looking (check = false): the FIFO
    /// becomes a regular file.
    #[test]
    fn a_replacement_rechecks_the_target_before_the_rename() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("crl.pem");
        mkfifo(&p);
        let e = write_atomic_checked(&p, b"new\n", 0o644, true).expect_err("a FIFO is refused");
        assert!(
            matches!(&e, Error::OutputPath { path, reason } if path == &p && reason.contains("FIFO")),
            "{e}"
        );
        assert!(is_fifo(&p), "the FIFO was replaced");
        assert!(temps(dir.path()).is_empty(), "{:?}", temps(dir.path()));

        let f = dir.path().join("copy.pem");
        fs::write(&f, "old\n").expect("write");
        replace_output(&f, b"new\n", 0o644).expect("a regular file is replaced");
        assert_eq!(fs::read(&f).expect("read"), b"new\n");
    }

    /// [`create_new`] never opens what is there: a FIFO (put there after the check) stays a
    /// FIFO and is named as one; an existing regular file is [`Error::FileExists`].
    ///
    /// Fails when: `create_new` reports every existing path as `FileExists` (the FIFO is not
    /// named).
    #[test]
    fn create_new_names_what_is_in_the_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub.csr");
        mkfifo(&p);
        let e = create_new(&p, b"x", 0o600).expect_err("a FIFO is refused");
        assert!(
            matches!(&e, Error::OutputPath { reason, .. } if reason.contains("FIFO")),
            "{e}"
        );
        assert!(is_fifo(&p));
        let f = dir.path().join("file");
        fs::write(&f, "mine").expect("write");
        let e = create_new(&f, b"x", 0o600).expect_err("a file is never overwritten");
        assert!(matches!(e, Error::FileExists { .. }), "{e}");
        assert_eq!(fs::read(&f).expect("read"), b"mine");
    }
}
