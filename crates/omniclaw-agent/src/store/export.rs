//! OpenClaw's transcript JSON lines: a `session` header (version 4), then
//! one line per entry, `id`/`parentId` chained, timestamps in ISO 8601 UTC
//! with milliseconds as JavaScript's `toISOString` writes them.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::clock::Millis;
use crate::session::StoreError;

/// OpenClaw's transcript format version.
pub const TRANSCRIPT_VERSION: u32 = 4;

/// One stored entry, as read for export.
pub struct Entry {
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: String,
    pub at: Millis,
    pub body: String,
}

/// `2026-01-02T03:04:05.678Z`.
pub fn iso(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn write(
    path: &Path,
    session_id: &str,
    created_at: Millis,
    cwd: &str,
    entries: &[Entry],
    out: &mut dyn Write,
) -> Result<(), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let header = json!({
        "type": "session",
        "version": TRANSCRIPT_VERSION,
        "id": session_id,
        "timestamp": iso(created_at),
        "cwd": cwd,
    });
    line(out, &header)?;
    for e in entries {
        let body: Value = serde_json::from_str(&e.body)
            .map_err(|err| corrupt(format!("entry {}: {err}", e.id)))?;
        let mut v = Map::new();
        v.insert("type".into(), Value::String(e.kind.clone()));
        v.insert("id".into(), Value::String(e.id.clone()));
        v.insert(
            "parentId".into(),
            e.parent_id.clone().map_or(Value::Null, Value::String),
        );
        v.insert("timestamp".into(), Value::String(iso(e.at)));
        match e.kind.as_str() {
            "message" => {
                v.insert("message".into(), body);
            }
            // A reset entry's body holds its own fields (`reason`).
            _ => {
                if let Value::Object(fields) = body {
                    v.extend(fields);
                }
            }
        }
        line(out, &Value::Object(v))?;
    }
    out.flush()
        .map_err(|e| StoreError::Message(format!("cannot write the export: {e}")))
}

fn line(out: &mut dyn Write, v: &Value) -> Result<(), StoreError> {
    serde_json::to_writer(&mut *out, v)
        .map_err(|e| StoreError::Message(format!("cannot write the export: {e}")))?;
    out.write_all(b"\n")
        .map_err(|e| StoreError::Message(format!("cannot write the export: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_javascript_writes_them() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_796_509_800_123), "2026-12-05T22:30:00.123Z");
    }
}
