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

use omniclaw_core::heal::{Incident, Outcome};
use omniclaw_core::tray::{Ended, Watched, WatchedIncident};

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
/// written by the running rescue gateway after each check that changed it,
/// so `status` and the tray (other processes) can show "main — down ·
/// rescue repairing (2/3)".
pub fn watch_state_path(state_dir: &Path) -> PathBuf {
    state_dir.join("rescue").join("watch.json")
}

/// Records the watch's state (`{"targets": {"main": {"summary": …,
/// "paused": …}}, "updatedMs": …}`, the time it last changed; no secrets).
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

/// Each target of the watch's last recorded state, in target order; empty
/// when there is none. `status` and the desktop app's tray both read it.
pub fn read_watched(state_dir: &Path) -> Vec<Watched> {
    read_watch_state(state_dir)
        .map(|state| watched_of(&state))
        .unwrap_or_default()
}

/// The targets of a watch state (`{"targets": {"main": {"summary": …,
/// "incident": …}}}`); entries without a summary are skipped.
pub fn watched_of(state: &serde_json::Value) -> Vec<Watched> {
    let Some(targets) = state["targets"].as_object() else {
        return Vec::new();
    };
    targets
        .iter()
        .filter_map(|(target, t)| {
            Some(Watched {
                target: target.clone(),
                summary: t["summary"].as_str()?.to_string(),
                incident: incident_of(&t["incident"]),
            })
        })
        .collect()
}

/// How the watch records an outage in its state, for [`watched_of`].
pub fn incident_json(incident: &Incident) -> serde_json::Value {
    let outcome = incident.outcome.as_ref().map(|o| {
        serde_json::json!({
            "recovered": matches!(o, Outcome::Recovered { .. }),
            "lines": incident.outcome_lines(),
        })
    });
    serde_json::json!({
        "openedMs": incident.opened_ms,
        "headline": incident.headline(),
        "steps": incident.step_lines(),
        "outcome": outcome,
    })
}

fn incident_of(v: &serde_json::Value) -> Option<WatchedIncident> {
    let lines = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str().map(str::to_string))
            .collect()
    };
    let outcome = &v["outcome"];
    Some(WatchedIncident {
        opened_ms: v["openedMs"].as_u64()?,
        headline: v["headline"].as_str()?.to_string(),
        steps: lines(&v["steps"]),
        outcome: outcome.is_object().then(|| Ended {
            recovered: outcome["recovered"].as_bool().unwrap_or(false),
            lines: lines(&outcome["lines"]),
        }),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use omniclaw_core::heal::{Failure, Owner, Rung, Step, StepResult};
    use omniclaw_core::profile::Profile;

    fn incident(outcome: Option<Outcome>) -> Incident {
        Incident {
            target: Profile::parse("main").expect("valid"),
            opened_ms: 20_000,
            cause: Failure::NotListening { port: 18789 },
            steps: vec![Step {
                rung: Rung::Restart,
                owner: Owner::Embedded,
                at_ms: 20_000,
                result: StepResult::Healthy,
            }],
            outcome,
        }
    }

    #[test]
    fn the_watch_state_reads_back_as_the_tray_shows_it() {
        let ended = incident(Some(Outcome::Recovered { at_ms: 21_000 }));
        let state = serde_json::json!({
            "targets": {
                "main": {"summary": "main — healthy", "incident": incident_json(&ended)},
                "ops": {"summary": "ops — down · rescue repairing (1/3)", "incident": incident_json(&incident(None))},
                "old": {"incident": null},
            }
        });
        let watched = watched_of(&state);
        assert_eq!(watched.len(), 2, "{watched:?}");
        assert_eq!(
            watched[0],
            Watched {
                target: "main".into(),
                summary: "main — healthy".into(),
                incident: Some(WatchedIncident {
                    opened_ms: 20_000,
                    headline: "main is down: nothing listens on port 18789".into(),
                    steps: vec!["1. restart through the desktop app (+0 s) — healthy".into()],
                    outcome: Some(Ended {
                        recovered: true,
                        lines: vec!["recovered (+1 s)".into()],
                    }),
                }),
            }
        );
        let open = watched[1].incident.as_ref().expect("an open incident");
        assert_eq!(open.outcome, None);
        assert!(watched_of(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn a_missing_or_damaged_watch_state_is_no_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_watched(dir.path()).is_empty());
        write_watch_state(
            dir.path(),
            &serde_json::json!({"targets": {"main": {"summary": "main — healthy"}}}),
        )
        .expect("write");
        assert_eq!(read_watched(dir.path())[0].summary, "main — healthy");
        std::fs::write(watch_state_path(dir.path()), "{").expect("damage");
        assert!(read_watched(dir.path()).is_empty());
    }
}
