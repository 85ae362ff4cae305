//! Stops on purpose: `<state dir>/stop-intent.json`.
//!
//! Every path that stops a gateway on purpose records here who stopped it
//! (`gateway stop`, the rescue's `/stop`, Ctrl+C, SIGTERM, the tray, the
//! dashboard, quitting the app), so the rescue's watch never "repairs" a
//! gateway a person stopped. The gateway clears it when it starts serving
//! again. Written atomically under the file's own lock
//! (`.stop-intent.json.lock`), like every shared file here. [`read`] and
//! [`last_owner`] are what the watch reads of a target's state dir.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use omniclaw_core::heal::{Owner, StopBy};
use serde_json::{json, Value};

use crate::fsx;
use crate::runtime;

pub const FILE: &str = "stop-intent.json";

/// One recorded stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopIntent {
    pub by: StopBy,
    /// The owner word of the gateway that was stopped (`service`,
    /// `embedded`, `cli`), when the stopper knew it.
    pub owner: Option<String>,
    /// Its pid, when the stopper knew it.
    pub pid: Option<u32>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl StopIntent {
    fn to_json(&self) -> Value {
        json!({
            "by": self.by.as_str(),
            "owner": self.owner,
            "pid": self.pid,
            "atMs": self.at_ms,
        })
    }

    fn from_json(v: &Value) -> Option<StopIntent> {
        Some(StopIntent {
            by: StopBy::parse(v.get("by")?.as_str()?)?,
            owner: v.get("owner").and_then(Value::as_str).map(str::to_string),
            pid: v
                .get("pid")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
            at_ms: v.get("atMs")?.as_u64()?,
        })
    }
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Records `intent`, replacing an older one.
pub fn record(state_dir: &Path, intent: &StopIntent) -> io::Result<()> {
    let file = path(state_dir);
    let _lock = fsx::lock(&file)?;
    write(&file, intent)
}

/// Records `intent` unless a stop is already recorded: a gateway that gets
/// SIGTERM keeps the more telling record of whoever sent it (`gateway
/// stop`, the rescue's `/stop`). Returns whether it wrote.
pub fn record_unless_present(state_dir: &Path, intent: &StopIntent) -> io::Result<bool> {
    let file = path(state_dir);
    let _lock = fsx::lock(&file)?;
    if read_file(&file).is_some() {
        return Ok(false);
    }
    write(&file, intent).map(|()| true)
}

fn write(file: &Path, intent: &StopIntent) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(&intent.to_json()).map_err(io::Error::other)?;
    text.push('\n');
    fsx::atomic_replace(file, text.as_bytes())
}

/// Forgets the recorded stop: the gateway runs again.
pub fn clear(state_dir: &Path) -> io::Result<()> {
    let file = path(state_dir);
    if !file.exists() {
        return Ok(());
    }
    let _lock = fsx::lock(&file)?;
    match fs::remove_file(&file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The recorded stop, if any (a file that does not parse is none: the
/// watch then judges the gateway by its checks alone).
pub fn read(state_dir: &Path) -> Option<StopIntent> {
    read_file(&path(state_dir))
}

fn read_file(file: &Path) -> Option<StopIntent> {
    let text = fs::read_to_string(file).ok()?;
    StopIntent::from_json(&serde_json::from_str(&text).ok()?)
}

/// Who runs the gateway of `state_dir`, or ran it last, as the rescue's
/// watch restarts it: the live record, else the record a stopped or dead
/// gateway left, else the owner a recorded stop names.
pub fn last_owner(state_dir: &Path) -> Option<Owner> {
    let word = runtime::read_live(state_dir)
        .or_else(|| runtime::read_last(state_dir).map(|last| last.info))
        .map(|info| info.owner)
        .or_else(|| read(state_dir).and_then(|i| i.owner))?;
    Owner::parse(&word)
}

/// Milliseconds since the Unix epoch, for [`StopIntent::at_ms`].
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(by: StopBy) -> StopIntent {
        StopIntent {
            by,
            owner: Some("cli".into()),
            pid: Some(4242),
            at_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn recorded_read_back_and_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert_eq!(read(d), None);
        clear(d).expect("clearing nothing is fine");
        record(d, &intent(StopBy::Cli)).expect("record");
        assert_eq!(read(d), Some(intent(StopBy::Cli)));
        // SIGTERM after `gateway stop` keeps the CLI's record.
        assert!(!record_unless_present(d, &intent(StopBy::Signal)).expect("record"));
        assert_eq!(read(d).map(|i| i.by), Some(StopBy::Cli));
        record(d, &intent(StopBy::Tray)).expect("replace");
        assert_eq!(read(d).map(|i| i.by), Some(StopBy::Tray));
        clear(d).expect("clear");
        assert_eq!(read(d), None);
        assert!(record_unless_present(d, &intent(StopBy::CtrlC)).expect("record"));
        assert_eq!(read(d).map(|i| i.by), Some(StopBy::CtrlC));
        // Only the record and its lock are in the state dir: no temp files.
        let mut names: Vec<String> = fs::read_dir(d)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".stop-intent.json.lock", "stop-intent.json"]);
    }

    #[test]
    fn the_last_owner_from_the_runtime_record_else_the_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert_eq!(last_owner(d), None);
        let mut stop = intent(StopBy::Tray);
        stop.owner = Some("embedded".into());
        record(d, &stop).expect("record");
        assert_eq!(last_owner(d), Some(Owner::Embedded));
        // A dead gateway's record wins over the stop's word.
        let info = runtime::RuntimeInfo {
            pid: 1,
            owner: "service".into(),
            bind: "127.0.0.1".into(),
            port: 18789,
            control_port: None,
            canvas_port: None,
            cdp_range: None,
            config_path: d.join("omniclaw.json"),
            started_ms: 1,
        };
        runtime::write(d, &info).expect("write");
        assert_eq!(last_owner(d), Some(Owner::Service));
    }

    #[test]
    fn a_record_that_does_not_parse_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(FILE), "{\"by\": \"nobody\", \"atMs\": 1}").expect("write");
        assert_eq!(read(dir.path()), None);
        fs::write(dir.path().join(FILE), "not json").expect("write");
        assert_eq!(read(dir.path()), None);
    }
}
