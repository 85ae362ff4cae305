//! The audit log: one JSON line per operator command (who, when, what,
//! result) in `<state dir>/rescue/audit.jsonl`. Lines are appended with a
//! single write each, so a crash never leaves half an entry in the middle.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{ensure_dir, StateError};

/// One handled command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    pub user_id: u64,
    /// `@username` or display name of the sender.
    pub who: String,
    /// The command as the bot understood it (`/config main set gateway.port 18800`).
    pub command: String,
    /// `ok`, `refused: …`, `failed: …`, `cancelled`, `asked for confirmation`.
    pub result: String,
}

/// `<state dir>/rescue/audit.jsonl`.
pub fn audit_path(state_dir: &Path) -> PathBuf {
    state_dir.join("rescue").join("audit.jsonl")
}

/// Appends `entry` and syncs it to disk.
pub fn append_audit(state_dir: &Path, entry: &AuditEntry) -> Result<(), StateError> {
    let path = audit_path(state_dir);
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    let line = json!({
        "ts": entry.ts_ms,
        "userId": entry.user_id,
        "who": entry.who,
        "command": entry.command,
        "result": entry.result,
    })
    .to_string()
        + "\n";
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&path)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()
    };
    write().map_err(|source| StateError::Write {
        path: path.clone(),
        source,
    })
}

/// Every entry, oldest first; lines that are not entries are skipped.
pub fn read_audit(state_dir: &Path) -> Result<Vec<AuditEntry>, StateError> {
    let path = audit_path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            Some(AuditEntry {
                ts_ms: v.get("ts")?.as_u64()?,
                user_id: v.get("userId")?.as_u64()?,
                who: v.get("who")?.as_str()?.to_string(),
                command: v.get("command")?.as_str()?.to_string(),
                result: v.get("result")?.as_str()?.to_string(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_append_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let entry = |n: u64| AuditEntry {
            ts_ms: n,
            user_id: 7,
            who: "@op".into(),
            command: format!("/logs main {n}"),
            result: "ok".into(),
        };
        append_audit(dir.path(), &entry(1)).expect("appended");
        append_audit(dir.path(), &entry(2)).expect("appended");
        assert_eq!(
            read_audit(dir.path()).expect("read"),
            vec![entry(1), entry(2)]
        );
    }
}
