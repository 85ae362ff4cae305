//! Files written so that a crash never leaves half a file behind, and
//! read-modify-write files changed so that no concurrent update is lost.
//!
//! Every file that is read, changed and written back (configs, the secrets
//! file, the pairing store, ...) goes through [`update`]: an OS lock on a
//! sibling lock file (`.<name>.lock`, so the lock outlives the rename that
//! replaces the file), the current content read again under the lock, the
//! change computed from it, then an atomic replace. Writers that crashed
//! (kill -9) leave at most a temp file, which the next writer removes under
//! the lock; the `.bak` copy is itself written atomically, so it is never
//! empty or half a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically under the file's lock: a temp file in
/// the same directory is written and fsynced, the previous content (if any)
/// is kept as `<file>.bak` (written atomically too), then the temp file is
/// renamed over `path` and the directory fsynced. The file's permissions
/// are kept when it already existed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    update(path, Options::with_backup(), |_| {
        Ok::<_, io::Error>((Some(bytes.to_vec()), ()))
    })
    .map_err(UpdateError::into_io)
}

/// Like [`atomic_write`] but without the `.bak` copy and without the lock
/// (for state files with a single writer, such as `gateway.json`).
pub fn atomic_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let existing = fs::metadata(path).ok();
    write_replacing(path, bytes, existing.as_ref(), None)
}

/// The backup path kept by [`atomic_write`]: `omniclaw.json` → `omniclaw.json.bak`.
pub fn backup_path(path: &Path) -> PathBuf {
    sibling(path, "", ".bak")
}

/// The lock file that serializes the writers of `path`: `.<name>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    sibling(path, ".", ".lock")
}

fn sibling(path: &Path, prefix: &str, suffix: &str) -> PathBuf {
    let mut name = std::ffi::OsString::from(prefix);
    name.push(path.file_name().unwrap_or_default());
    name.push(suffix);
    path.with_file_name(name)
}

/// How [`update`] writes the new content.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Keep the previous content as `<file>.bak`.
    pub backup: bool,
    /// Unix mode of a file that does not exist yet (an existing file keeps
    /// its own); `None` for the process default.
    pub create_mode: Option<u32>,
}

impl Options {
    pub fn with_backup() -> Options {
        Options {
            backup: true,
            create_mode: None,
        }
    }

    /// For secrets: created 0600 from the first byte, no second copy.
    pub fn private() -> Options {
        Options {
            backup: false,
            create_mode: Some(0o600),
        }
    }
}

/// Why [`update`] did not write: the change refused (`Refused`), or reading,
/// locking or writing the file failed.
#[derive(Debug)]
pub enum UpdateError<E> {
    Refused(E),
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

impl<E> UpdateError<E> {
    fn io<'a>(
        path: &'a Path,
        action: &'static str,
    ) -> impl FnOnce(io::Error) -> UpdateError<E> + 'a {
        move |source| UpdateError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl UpdateError<io::Error> {
    /// Flattens an update whose change cannot refuse into its IO error.
    pub fn into_io(self) -> io::Error {
        match self {
            UpdateError::Refused(e) => e,
            UpdateError::Io { source, .. } => source,
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for UpdateError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateError::Refused(e) => e.fmt(f),
            UpdateError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
        }
    }
}

/// A held lock on a file's writers; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes the lock of `path`'s writers, waiting for the current holder. The
/// kernel releases it when a holder dies, so a killed writer never blocks
/// the next one.
pub fn lock(path: &Path) -> io::Result<FileLock> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path(path))?;
    file.lock()?;
    Ok(FileLock { file })
}

/// Changes `path` under its lock: `change` gets the current content (`None`
/// when the file does not exist), read after the lock was taken, and
/// returns the new content (`None`: leave the file as it is) and a value
/// for the caller. Concurrent updates run one after another, each on the
/// result of the one before, so none is lost; a refused change leaves the
/// file untouched.
pub fn update<T, E>(
    path: &Path,
    options: Options,
    change: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), E>,
) -> Result<T, UpdateError<E>> {
    let _lock = lock(path).map_err(UpdateError::io(path, "lock"))?;
    remove_stale_temps(path);
    let existing = fs::metadata(path).ok();
    let current = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(UpdateError::io(path, "read")(e)),
    };
    let (next, value) = change(current.as_deref()).map_err(UpdateError::Refused)?;
    let Some(next) = next else {
        return Ok(value);
    };
    if current.as_deref() == Some(next.as_slice()) {
        return Ok(value);
    }
    if options.backup {
        if let (Some(old), Some(meta)) = (&current, &existing) {
            let bak = backup_path(path);
            write_replacing(&bak, old, Some(meta), None)
                .map_err(UpdateError::io(&bak, "write the backup"))?;
        }
    }
    write_replacing(path, &next, existing.as_ref(), options.create_mode)
        .map_err(UpdateError::io(path, "write"))?;
    Ok(value)
}

/// The file changed between the read a command based its change on and
/// the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("it changed while this command ran (another command or the app wrote it); nothing was written: run the command again")]
pub struct Changed;

/// Writes `next` over `path` only if the file still holds `expected`
/// (`None`: does not exist), under its lock: for commands that check a
/// whole plan first and write at the end, so an edit made in between is
/// refused rather than lost.
pub fn replace_if_unchanged(
    path: &Path,
    expected: Option<&[u8]>,
    next: &[u8],
    options: Options,
) -> Result<(), UpdateError<Changed>> {
    update(path, options, |current| {
        if current != expected {
            return Err(Changed);
        }
        Ok((Some(next.to_vec()), ()))
    })
}

/// Temp files of `path` that writers left behind when they were killed
/// between creating and renaming them. Called with the lock held: no live
/// writer has one open.
fn remove_stale_temps(path: &Path) {
    let Some(dir) = path.parent() else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefixes = Vec::new();
    for target in [path.to_path_buf(), backup_path(path)] {
        if let Some(n) = target.file_name() {
            let mut p = std::ffi::OsString::from(".");
            p.push(n);
            p.push(".tmp-");
            prefixes.push(p.to_string_lossy().into_owned());
        }
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
            // Best effort: a temp file that cannot be removed harms nobody.
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to a fresh temp file beside `path` (mode: `existing`'s,
/// else `create_mode`), fsyncs it, renames it over `path` and fsyncs the
/// directory. A failure removes the temp file and leaves `path` as it was.
fn write_replacing(
    path: &Path,
    bytes: &[u8],
    existing: Option<&fs::Metadata>,
    create_mode: Option<u32>,
) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        ));
    }
    let tmp = sibling(
        path,
        ".",
        &format!(
            ".tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ),
    );
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(mode) = create_mode {
            opts.mode(mode);
        }
    }
    #[cfg(not(unix))]
    let _ = create_mode;
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        if let Some(meta) = existing {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
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

    #[test]
    fn concurrent_updates_of_different_keys_are_all_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        std::thread::scope(|scope| {
            for writer in 0..4 {
                let p = &p;
                scope.spawn(move || {
                    for i in 0..50 {
                        update(p, Options::with_backup(), |current| {
                            let mut map: serde_json::Map<String, serde_json::Value> = current
                                .map(|b| serde_json::from_slice(b).expect("json"))
                                .unwrap_or_default();
                            map.insert(format!("w{writer}"), i.into());
                            let text = serde_json::to_vec(&map).expect("json");
                            Ok::<_, io::Error>((Some(text), ()))
                        })
                        .expect("update");
                    }
                });
            }
        });
        let map: serde_json::Value =
            serde_json::from_slice(&fs::read(&p).expect("read")).expect("json");
        for writer in 0..4 {
            assert_eq!(map[format!("w{writer}")], 49, "{map}");
        }
    }

    #[test]
    fn a_refused_change_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.json");
        atomic_write(&p, b"one").expect("write");
        let got = update(&p, Options::with_backup(), |cur| {
            assert_eq!(cur, Some(&b"one"[..]));
            Err::<(Option<Vec<u8>>, ()), _>("no")
        });
        assert!(matches!(got, Err(UpdateError::Refused("no"))));
        assert_eq!(fs::read(&p).expect("read"), b"one");
        assert!(!backup_path(&p).exists());
    }

    #[test]
    fn temp_files_of_killed_writers_are_removed_by_the_next_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("omniclaw.json");
        atomic_write(&p, b"one").expect("write");
        let stale = dir.path().join(".omniclaw.json.tmp-999999-0");
        let stale_bak = dir.path().join(".omniclaw.json.bak.tmp-999999-3");
        let other = dir.path().join(".other.json.tmp-999999-0");
        for f in [&stale, &stale_bak, &other] {
            fs::write(f, b"half").expect("write");
        }
        atomic_write(&p, b"two").expect("write");
        assert!(!stale.exists() && !stale_bak.exists());
        assert!(other.exists(), "another file's temp is not ours to remove");
        assert_eq!(fs::read(backup_path(&p)).expect("bak"), b"one");
    }

    #[cfg(unix)]
    #[test]
    fn new_private_files_are_0600_from_the_start_and_existing_modes_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("secrets.json");
        update(&p, Options::private(), |_| {
            Ok::<_, io::Error>((Some(b"{}".to_vec()), ()))
        })
        .expect("create");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let q = dir.path().join("omniclaw.json");
        fs::write(&q, b"a").expect("write");
        fs::set_permissions(&q, fs::Permissions::from_mode(0o640)).expect("chmod");
        atomic_write(&q, b"b").expect("write");
        assert_eq!(
            fs::metadata(&q).expect("meta").permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs::metadata(backup_path(&q))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o640
        );
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
