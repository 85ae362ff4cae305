//! What a running gateway publishes about itself: `<state dir>/gateway.json`.
//!
//! A gateway may run on other ports than its config says (`--port`,
//! `OMNICLAW_GATEWAY_PORT`), so `status`, `probe` and `browser status` read
//! where it really listens from here. The file is trusted only while the
//! instance lock is held by the pid it names: a file left by a killed
//! gateway is ignored, never believed.
//!
//! The file outlives its gateway: a gateway run by `omniclaw gateway`
//! marks it stopped ([`mark_stopped`]) instead of removing it, and a killed
//! one leaves it as it was, so [`read_last`] still says who ran it last —
//! the rescue's watch restarts a dead gateway through that owner.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::fsx;
use crate::lock::InstanceLock;

pub const FILE: &str = "gateway.json";

/// Where a running gateway listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub pid: u32,
    /// `cli`, `service` or `embedded`.
    pub owner: String,
    /// The address the gateway listens on (`127.0.0.1`, `0.0.0.0`, ...).
    pub bind: String,
    pub port: u16,
    pub control_port: Option<u16>,
    pub canvas_port: Option<u16>,
    pub cdp_range: Option<(u16, u16)>,
    pub config_path: PathBuf,
    /// Milliseconds since the Unix epoch when it started serving.
    pub started_ms: u64,
}

impl RuntimeInfo {
    /// Its ports, as the plan takes them.
    pub fn ports(&self) -> omniclaw_core::inventory::LivePorts {
        omniclaw_core::inventory::LivePorts {
            base: self.port,
            control: self.control_port,
            canvas: self.canvas_port,
            cdp_start: self.cdp_range.map(|(start, _)| start),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "pid": self.pid,
            "owner": self.owner,
            "bind": self.bind,
            "port": self.port,
            "controlPort": self.control_port,
            "canvasPort": self.canvas_port,
            "cdpRange": self.cdp_range.map(|(a, b)| [a, b]),
            "configPath": self.config_path,
            "startedMs": self.started_ms,
        })
    }

    fn from_json(v: &Value) -> Option<RuntimeInfo> {
        let port = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
        };
        let range = v.get("cdpRange").and_then(Value::as_array).and_then(|a| {
            Some((
                u16::try_from(a.first()?.as_u64()?).ok()?,
                u16::try_from(a.get(1)?.as_u64()?).ok()?,
            ))
        });
        Some(RuntimeInfo {
            pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
            owner: v.get("owner")?.as_str()?.to_string(),
            bind: v.get("bind")?.as_str()?.to_string(),
            port: port("port")?,
            control_port: port("controlPort"),
            canvas_port: port("canvasPort"),
            cdp_range: range,
            config_path: PathBuf::from(v.get("configPath")?.as_str()?),
            started_ms: v.get("startedMs")?.as_u64()?,
        })
    }
}

/// Publishes `info` atomically in the state dir.
pub fn write(state_dir: &Path, info: &RuntimeInfo) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(&info.to_json()).map_err(io::Error::other)?;
    text.push('\n');
    fsx::atomic_replace(&state_dir.join(FILE), text.as_bytes())
}

/// Removes the published info (on a clean stop).
pub fn remove(state_dir: &Path) {
    let _ = fs::remove_file(state_dir.join(FILE));
}

/// The last gateway that ran for a state dir, running or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub info: RuntimeInfo,
    /// When it stopped cleanly (milliseconds since the Unix epoch); `None`
    /// while it runs, or when it died without a word.
    pub stopped_ms: Option<u64>,
}

/// Marks the record of the gateway `pid` stopped at `at_ms`, keeping who
/// ran it. A record another gateway wrote since is left alone.
pub fn mark_stopped(state_dir: &Path, pid: u32, at_ms: u64) -> io::Result<()> {
    let file = state_dir.join(FILE);
    let Ok(text) = fs::read_to_string(&file) else {
        return Ok(());
    };
    let Ok(mut value) = serde_json::from_str::<Value>(&text) else {
        return Ok(());
    };
    if value.get("pid").and_then(Value::as_u64) != Some(u64::from(pid)) {
        return Ok(());
    }
    value["stoppedMs"] = json!(at_ms);
    let mut text = serde_json::to_string_pretty(&value).map_err(io::Error::other)?;
    text.push('\n');
    fsx::atomic_replace(&file, text.as_bytes())
}

/// The record of the last gateway of `state_dir`, trusted or not: for who
/// ran it (its owner), never for where something listens now.
pub fn read_last(state_dir: &Path) -> Option<LastRun> {
    let text = fs::read_to_string(state_dir.join(FILE)).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    Some(LastRun {
        info: RuntimeInfo::from_json(&value)?,
        stopped_ms: value.get("stoppedMs").and_then(Value::as_u64),
    })
}

/// `<state dir>/last-exit.json`: how the last gateway run by a service
/// manager ended when it failed (its exit code and when), so the rescue's
/// watch can tell a service that stopped on bad input (exit 2), which a
/// restart cannot fix, from one that crashed.
pub const EXIT_FILE: &str = "last-exit.json";

/// A failed run's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Records that the gateway of `state_dir` exited with `code` at `at_ms`.
pub fn record_exit(state_dir: &Path, exit: Exit) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(&json!({"code": exit.code, "atMs": exit.at_ms}))
        .map_err(io::Error::other)?;
    text.push('\n');
    fsx::atomic_replace(&state_dir.join(EXIT_FILE), text.as_bytes())
}

/// The exit of the last failed run, when it is newer than the last start
/// (a gateway that served since makes it history).
pub fn read_exit(state_dir: &Path) -> Option<Exit> {
    let text = fs::read_to_string(state_dir.join(EXIT_FILE)).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    let exit = Exit {
        code: i32::try_from(value.get("code")?.as_i64()?).ok()?,
        at_ms: value.get("atMs")?.as_u64()?,
    };
    let started = read_last(state_dir).map_or(0, |l| l.info.started_ms);
    (exit.at_ms >= started).then_some(exit)
}

/// The info of the gateway running for `state_dir` right now, if any.
pub fn read_live(state_dir: &Path) -> Option<RuntimeInfo> {
    let holder = InstanceLock::probe(&state_dir.join("gateway.lock")).ok()??;
    let text = fs::read_to_string(state_dir.join(FILE)).ok()?;
    let info = RuntimeInfo::from_json(&serde_json::from_str(&text).ok()?)?;
    (info.pid == holder.pid).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::Owner;

    #[test]
    fn a_failed_exit_counts_until_a_later_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_exit(dir.path()), None);
        let exit = Exit {
            code: 2,
            at_ms: 5_000,
        };
        record_exit(dir.path(), exit).expect("record");
        assert_eq!(read_exit(dir.path()), Some(exit));
        let mut later = info(7);
        later.started_ms = 6_000;
        write(dir.path(), &later).expect("write");
        assert_eq!(read_exit(dir.path()), None, "it served since");
    }

    fn info(pid: u32) -> RuntimeInfo {
        RuntimeInfo {
            pid,
            owner: "cli".into(),
            bind: "127.0.0.1".into(),
            port: 19001,
            control_port: Some(19003),
            canvas_port: None,
            cdp_range: Some((19012, 19111)),
            config_path: PathBuf::from("/h/.omniclaw-rescue/omniclaw.json"),
            started_ms: 1,
        }
    }

    #[test]
    fn trusted_only_while_the_lock_is_held_by_that_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write(d, &info(std::process::id())).expect("write");
        assert_eq!(read_live(d), None, "nobody holds the lock");
        let lock = InstanceLock::acquire(&d.join("gateway.lock"), Owner::Cli).expect("lock");
        assert_eq!(read_live(d), Some(info(std::process::id())));
        write(d, &info(1)).expect("write");
        assert_eq!(read_live(d), None, "a file naming another pid is stale");
        drop(lock);
        remove(d);
        assert!(!d.join(FILE).exists());
    }

    #[test]
    fn the_last_owner_outlives_the_gateway() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert_eq!(read_last(d), None);
        let me = std::process::id();
        write(d, &info(me)).expect("write");
        let lock = InstanceLock::acquire(&d.join("gateway.lock"), Owner::Cli).expect("lock");
        assert_eq!(
            read_last(d),
            Some(LastRun {
                info: info(me),
                stopped_ms: None
            })
        );
        // A clean stop keeps the record, marked.
        mark_stopped(d, me, 99).expect("mark");
        drop(lock);
        assert_eq!(read_live(d), None, "not running");
        let last = read_last(d).expect("kept");
        assert_eq!(
            (last.info.owner.as_str(), last.stopped_ms),
            ("cli", Some(99))
        );
        // A record another gateway wrote since is not marked.
        write(d, &info(1)).expect("another run");
        mark_stopped(d, me, 100).expect("nothing to mark");
        assert_eq!(read_last(d).map(|l| l.stopped_ms), Some(None));
        // A killed gateway leaves its record as it was: its owner is known.
        assert_eq!(read_last(d).map(|l| l.info.owner), Some("cli".to_string()));
    }
}
