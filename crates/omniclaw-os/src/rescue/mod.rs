//! The rescue bot's files in its state dir: the Telegram update offset, the
//! pairing store, the audit log of operator commands and the watch's state
//! of each target.
//!
//! Every write is atomic (temp + fsync + rename) or, for the audit log, one
//! appended line per command; a crash leaves the previous state readable.
//! Nothing here stores a secret: the bot token lives in the keychain, and
//! audit lines carry the command as typed after the caller redacted it.

mod audit;
mod offset;
mod pairing;

pub use audit::{append_audit, audit_path, read_audit, AuditEntry};
pub use offset::{offset_path, read_offset, write_offset};
pub use pairing::{pairing_path, PairingStore};

use std::path::{Path, PathBuf};

/// Why a rescue state file cannot be used; each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {}: {source}; check its permissions", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}; check the disk and the directory's permissions", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is damaged ({reason}); move it aside and the bot starts it afresh", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// `<state dir>/telegram`: offset and pairing store.
pub fn telegram_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("telegram")
}

/// `<state dir>/telegram/status.json`: the channel's latest state, written
/// by the running gateway for `status` and the tray (which read files, not
/// the gateway). Trust it only while the profile's instance lock is held.
pub fn channel_status_path(state_dir: &Path) -> PathBuf {
    telegram_dir(state_dir).join("status.json")
}

/// Records the channel's state (a small JSON object without secrets).
pub fn write_channel_status(
    state_dir: &Path,
    status: &serde_json::Value,
) -> Result<(), StateError> {
    ensure_dir(&telegram_dir(state_dir))?;
    let path = channel_status_path(state_dir);
    crate::fsx::atomic_replace(&path, format!("{status}\n").as_bytes())
        .map_err(|source| StateError::Write { path, source })
}

/// `<state dir>/rescue/watch.json`: the watch's state of each target,
/// written by the running rescue gateway after every check so `status`
/// and the tray (other processes) can show "main — down · rescue repairing
/// (2/3)".
pub fn watch_state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("rescue").join("watch.json")
}

/// Records the watch's state (`{"targets": {"main": {"summary": …,
/// "paused": …, "updatedMs": …}}}`, no secrets).
pub fn write_watch_state(state_dir: &Path, state: &serde_json::Value) -> Result<(), StateError> {
    ensure_dir(&state_dir.join("rescue"))?;
    let path = watch_state_path(state_dir);
    crate::fsx::atomic_replace(&path, format!("{state}\n").as_bytes())
        .map_err(|source| StateError::Write { path, source })
}

/// The watch's last recorded state, if any and readable.
pub fn read_watch_state(state_dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(watch_state_path(state_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The last recorded channel state, if any and readable.
pub fn read_channel_status(state_dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(channel_status_path(state_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    crate::fsx::create_private_dir(dir).map_err(|source| StateError::Write {
        path: dir.to_path_buf(),
        source,
    })
}
