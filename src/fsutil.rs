//! File helpers: files that hold secrets are created new with mode 0600 and never clobbered;
//! public mirrors are replaced atomically (temp file, fsync, rename).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{Error, Result};

/// Creates `path` with `bytes`, failing with [`Error::FileExists`] if it exists. Mode `mode`
/// is set at creation (no window where the file is readable by others). Synced to disk.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::FileExists {
                path: path.to_path_buf(),
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

/// Replaces `path` atomically with `bytes` (mode `mode`): readers see the old or the new
/// content, never a part, also after a crash.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));

    let mut rnd = [0u8; 6];
    aws_lc_rs::rand::fill(&mut rnd)
        .map_err(|_| Error::Crypto("random number generator failed".into()))?;
    let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".vpnca-tmp-{suffix}"));
    create_new(&tmp, bytes, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("replacing", path)(e));
    }
    sync_dir(dir);
    Ok(())
}

/// Creates every `(path, bytes, mode)` of `plan` new, in order; if one fails, the files
/// already created are removed and the error returned (all or nothing).
pub fn create_all_new(plan: &[(PathBuf, Zeroizing<Vec<u8>>, u32)]) -> Result<Vec<PathBuf>> {
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
pub fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = fs::remove_file(p);
    }
}

/// Replaces `path` with `bytes` through a temporary file and a rename (readers never see a
/// part), without fsync: for public mirrors written by the thousand.
pub fn replace_unsynced(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
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
pub fn create_dir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(Error::io("creating directory", path))
}

/// Best-effort fsync of a directory, so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Temporary files (`.vpnca-tmp-…` of [`write_atomic`] and [`replace_unsynced`]) in `dir` left
/// behind by a process killed between creating and renaming them, older than `min_age` (a
/// live writer's are milliseconds old). Removes them and returns their paths.
pub fn remove_stale_temps(dir: &Path, min_age: std::time::Duration) -> Vec<PathBuf> {
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
