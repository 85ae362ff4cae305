//! The instance lock: one running gateway per config path.
//!
//! An OS file lock on `<state dir>/gateway.lock`. The kernel drops it when
//! the holder dies, so a lock left by a killed process is taken over without
//! guesswork; the file's content (pid and owner) only serves messages.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Who runs a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Inside the desktop app.
    Embedded,
    /// Under the platform's service manager.
    Service,
    /// `omniclaw gateway` started by hand.
    Cli,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Embedded => "embedded",
            Owner::Service => "service",
            Owner::Cli => "cli",
        }
    }

    fn parse(s: &str) -> Option<Owner> {
        match s {
            "embedded" => Some(Owner::Embedded),
            "service" => Some(Owner::Service),
            "cli" => Some(Owner::Cli),
            _ => None,
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the lock file says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub owner: Option<Owner>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("already running (pid {pid}, {owner}): stop that gateway first, or talk to it with `omniclaw status`", owner = owner.map(Owner::as_str).unwrap_or("unknown owner"))]
    AlreadyRunning { pid: u32, owner: Option<Owner> },
    #[error("cannot open the instance lock {}: {source}; check that the state dir exists and is writable", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A held instance lock; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock at `path` for this process, or says who holds it.
    pub fn acquire(path: &Path, owner: Owner) -> Result<InstanceLock, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(LockError::AlreadyRunning {
                    pid: holder.as_ref().map_or(0, |h| h.pid),
                    owner: holder.and_then(|h| h.owner),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let content = format!("{} {}\n", std::process::id(), owner.as_str());
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        file.write_all(content.as_bytes()).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(InstanceLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Who holds the lock at `path` right now, without taking it for long.
    /// `None` when nobody runs this profile.
    pub fn probe(path: &Path) -> io::Result<Option<Holder>> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                file.unlock()?;
                Ok(None)
            }
            Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file).unwrap_or(Holder {
                pid: 0,
                owner: None,
            }))),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        // Empty the file first so a reader never sees a stale pid.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    let mut parts = s.split_whitespace();
    let pid = parts.next()?.parse().ok()?;
    let owner = parts.next().and_then(Owner::parse);
    Some(Holder { pid, owner })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        windows,
        ignore = "needs a real Windows: Wine fails UnlockFile on a lock it granted (ERROR_LOCK_VIOLATION)"
    )]
    fn second_acquire_names_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("gateway.lock");
        let lock = InstanceLock::acquire(&p, Owner::Embedded).expect("first");
        let err = InstanceLock::acquire(&p, Owner::Cli).expect_err("second must fail");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "already running (pid {}, embedded)",
                std::process::id()
            )),
            "{msg}"
        );
        assert_eq!(
            InstanceLock::probe(&p).expect("probe"),
            Some(Holder {
                pid: std::process::id(),
                owner: Some(Owner::Embedded)
            })
        );
        drop(lock);
        assert_eq!(InstanceLock::probe(&p).expect("probe"), None);
        InstanceLock::acquire(&p, Owner::Cli).expect("free again");
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "needs a real Windows: Wine fails UnlockFile on a lock it granted (ERROR_LOCK_VIOLATION)"
    )]
    fn stale_content_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("gateway.lock");
        // A killed holder leaves its pid in the file but no lock.
        std::fs::write(&p, "999999 service\n").expect("write");
        assert_eq!(InstanceLock::probe(&p).expect("probe"), None);
        let _lock = InstanceLock::acquire(&p, Owner::Cli).expect("take over");
        let content = std::fs::read_to_string(&p).expect("read");
        assert_eq!(content, format!("{} cli\n", std::process::id()));
    }

    #[test]
    fn missing_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("nope/gateway.lock");
        let msg = InstanceLock::acquire(&p, Owner::Cli)
            .expect_err("fails")
            .to_string();
        assert!(
            msg.contains("nope/gateway.lock") && msg.contains("writable"),
            "{msg}"
        );
        assert_eq!(InstanceLock::probe(&p).expect("probe"), None);
    }
}
