//! The Telegram update offset: the id of the next update to fetch. It is
//! written after an update was handled and before the next one is, so a
//! restart (or a kill) resumes exactly where handling stopped.

use std::path::{Path, PathBuf};

use super::{ensure_dir, telegram_dir, StateError};

/// `<state dir>/telegram/offset`.
pub fn offset_path(state_dir: &Path) -> PathBuf {
    telegram_dir(state_dir).join("offset")
}

/// The persisted offset, `None` before the first handled update.
pub fn read_offset(state_dir: &Path) -> Result<Option<i64>, StateError> {
    let path = offset_path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    text.trim()
        .parse::<i64>()
        .map(Some)
        .map_err(|e| StateError::Corrupt {
            path,
            reason: format!("expected a number: {e}"),
        })
}

/// Records that every update before `next` was handled.
pub fn write_offset(state_dir: &Path, next: i64) -> Result<(), StateError> {
    ensure_dir(&telegram_dir(state_dir))?;
    let path = offset_path(state_dir);
    crate::fsx::atomic_replace(&path, format!("{next}\n").as_bytes())
        .map_err(|source| StateError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_round_trips_and_reports_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_offset(dir.path()).expect("readable"), None);
        write_offset(dir.path(), 42).expect("written");
        assert_eq!(read_offset(dir.path()).expect("readable"), Some(42));
        write_offset(dir.path(), 43).expect("written");
        assert_eq!(read_offset(dir.path()).expect("readable"), Some(43));
        std::fs::write(offset_path(dir.path()), "x").expect("write");
        let err = read_offset(dir.path()).expect_err("damaged");
        assert!(err.to_string().contains("move it aside"), "{err}");
    }
}
