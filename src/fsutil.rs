//! File helpers: files that hold secrets are created new with mode 0600 and never clobbered;
//! public mirrors are replaced atomically (temp file, fsync, rename).
//!
//! Paths a user names for output (`crl --out`, `export --out`, `profile --out`, …) are checked
//! with [`check_output`] before anything changes, and again when written ([`replace_output`],
//! and [`create_new`], which never opens an existing path): vpnca writes only regular files,
//! and never writes to, through or over a directory, device, FIFO, socket or symbolic link.
//! Symbolic links above the last component (`/var` → `/private/var`) are followed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
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
