//! Files written so that a crash never leaves half a config behind.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temp file in the same directory is
/// written and fsynced, the previous content (if any) is kept as
/// `<file>.bak`, then the temp file is renamed over `path` and the directory
/// fsynced. The file's permissions are kept when it already existed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_inner(path, bytes, true)
}

/// Like [`atomic_write`] but without the `.bak` copy (for state files).
pub fn atomic_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_inner(path, bytes, false)
}

/// The backup path kept by [`atomic_write`]: `omniclaw.json` → `omniclaw.json.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".bak");
    path.with_file_name(name)
}

fn write_inner(path: &Path, bytes: &[u8], backup: bool) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let existing = fs::metadata(path).ok();
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        if let Some(meta) = &existing {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if backup && existing.as_ref().is_some_and(|m| m.is_file()) {
            fs::copy(path, backup_path(path))?;
        }
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Creates `dir` (and parents) private to the user: mode 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // An existing dir keeps its mode unless it is open to others.
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_keeps_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("omniclaw.json");
        atomic_write(&p, b"one").expect("first write");
        assert_eq!(fs::read(&p).expect("read"), b"one");
        assert!(
            !backup_path(&p).exists(),
            "no backup of a file that did not exist"
        );
        atomic_write(&p, b"two").expect("second write");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(fs::read(backup_path(&p)).expect("bak"), b"one");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn failure_leaves_original() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should go makes the rename fail.
        let p = dir.path().join("cfg");
        fs::create_dir(&p).expect("mkdir");
        fs::write(p.join("inner"), b"x").expect("write");
        assert!(atomic_replace(&p, b"new").is_err());
        assert!(p.is_dir());
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn private_dir_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a/b");
        create_private_dir(&p).expect("create");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o700
        );
    }
}
