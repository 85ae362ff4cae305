//! `omniclaw --profile NAME remove`: takes a profile off this machine.
//!
//! Refused while the profile's gateway runs (the instance lock is taken for
//! the whole removal, so none starts meanwhile). Everything is checked
//! before anything changes: the service manager, the secret store, the
//! other profiles' configs. Then, in this order: the service through the
//! service manager, the profile's name from other profiles'
//! `rescue.targets` through the one config edit path, its secrets through
//! the secret store, and its state dir and config moved aside into a
//! backup beside them (`<state dir>.removed-<unix time>`), whose path is
//! said. A workspace is never touched, not even one inside the state dir.

use std::path::{Path, PathBuf};

use serde_json::json;

use omniclaw_core::config;
use omniclaw_core::paths::{self, Resolved, Source};
use omniclaw_core::profile::Profile;
use omniclaw_core::report::{Mark, Report};
use omniclaw_core::rescue::{targets_without, TargetsAfter};
use omniclaw_os::edit;
use omniclaw_os::lock::{InstanceLock, LockError, Owner};
use omniclaw_os::profiles::{ConfigState, Inventory, ProfileRecord};

use super::target::resolved_of;
use omniclaw_os::secrets::{SecretError, SecretName, SecretStore};

use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::setup::command;

/// A rescue profile whose `rescue.targets` names the removed profile.
struct TargetEdit {
    profile: String,
    resolved: Resolved,
    after: TargetsAfter,
}

pub fn run(ctx: &Ctx) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let cmd = command(&resolved);
    // Never the default profile by accident: the profile is named.
    if resolved.profile_source == Source::Default {
        return Err(CliError::usage(
            "name the profile to remove: `omniclaw --profile NAME remove` (`omniclaw --profile default remove` removes the default profile)",
        ));
    }
    let inv = ctx.inventory(&resolved)?;
    let Some(me) = inv.current().filter(|c| c.set_up) else {
        return Err(CliError::usage(format!(
            "profile {} is not set up here ({} does not exist); nothing to remove",
            resolved.profile,
            resolved.display(&resolved.state_dir)
        )));
    };

    // Held until the state dir is moved aside: no gateway of this profile
    // starts while it is removed.
    let _lock = if resolved.state_dir.is_dir() {
        Some(
            InstanceLock::acquire(&resolved.lock_path(), Owner::Cli).map_err(|e| match e {
                LockError::AlreadyRunning { pid, owner } => CliError::failed(format!(
                    "profile {} is running (pid {pid}, {}), so it is not removed; nothing was changed: stop it first (`{cmd} gateway stop`), then remove it",
                    resolved.profile,
                    owner.map_or("unknown owner", Owner::as_str)
                )),
                other => CliError::failed(format!("{other}; nothing was changed")),
            })?,
        )
    } else {
        None
    };

    // Check everything first.
    let manager = super::service::select(ctx)?;
    let scope = Ctx::scope(&resolved);
    let mode = ctx.store.mode(&scope);
    let mut stored = Vec::new();
    let mut notes = Vec::new();
    for name in SecretName::ALL {
        match ctx.store.get(&scope, name) {
            Ok(Some(_)) => stored.push(name),
            Ok(None) => {}
            // No keychain here (a session without a desktop): what it may
            // hold for the profile cannot be seen, and is said.
            Err(SecretError::Unreachable { detail, .. }) => {
                notes.push(format!(
                    "no OS keychain is reachable ({detail}): entries it may hold for profile {} stay; from a desktop session, `{cmd} secrets rm NAME` removes them",
                    resolved.profile
                ));
                break;
            }
            Err(e) => {
                return Err(CliError::failed(format!(
                    "{e}\nprofile {} was not removed; nothing was changed",
                    resolved.profile
                )))
            }
        }
    }
    let edits = target_edits(&inv, &resolved);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let backup = aside(&resolved.state_dir, stamp);
    let config_outside =
        !resolved.config_path.starts_with(&resolved.state_dir) && resolved.config_path.exists();
    let keep = protected(&inv, me);
    if backup.exists() {
        return Err(CliError::failed(format!(
            "{} exists already; nothing was changed: move it away, then remove the profile",
            resolved.display(&backup)
        )));
    }

    // Carry it out.
    let service = super::service::remove_service(manager.as_ref(), &resolved)?;
    let mut targets = Vec::new();
    for e in &edits {
        match &e.after {
            TargetsAfter::Without(rest) => {
                let names: Vec<&str> = rest.iter().map(Profile::name).collect();
                let value = serde_json::to_string(&names)
                    .map_err(|err| CliError::failed(format!("internal: {err}")))?;
                let target = ctx.edit_target(&e.resolved);
                edit::edit_config(&target, &edit::Options::default(), |text| {
                    config::set(text, "rescue.targets", &value)
                })
                .map_err(|err| {
                    CliError::failed(format!(
                        "{err}\nprofile {} was not removed; {}fix that config, then run `{cmd} remove` again",
                        resolved.profile,
                        service
                            .as_ref()
                            .map_or(String::new(), |s| format!("its service {} is removed already; ", s.name))
                    ))
                })?;
                targets.push(json!({"profile": e.profile, "targets": names}));
            }
            TargetsAfter::OnlyTarget => notes.push(format!(
                "rescue.targets of profile {} still names {}: it was its only target, and an empty list would let that bot act on every other profile; choose its targets with `{} config set rescue.targets '[\"NAME\"]'`",
                e.profile,
                resolved.profile,
                super::audit::command_of(&e.profile)
            )),
            TargetsAfter::Untouched => {}
        }
    }
    let mut removed_secrets = Vec::new();
    for name in &stored {
        match ctx.store.remove(&scope, *name) {
            Ok(_) => removed_secrets.push(name.path()),
            Err(e) => notes.push(format!("{name} was not removed from the {mode}: {e}")),
        }
    }
    let moved = move_aside(&resolved.state_dir, &backup, &keep).map_err(|e| {
        CliError::failed(format!(
            "cannot move {} to {}: {e}; its service, secrets and rescue targets are removed already: move it by hand",
            resolved.display(&resolved.state_dir),
            resolved.display(&backup)
        ))
    })?;
    let mut config_backup = None;
    if config_outside {
        let to = aside(&resolved.config_path, stamp);
        std::fs::rename(&resolved.config_path, &to).map_err(|e| {
            CliError::failed(format!(
                "cannot move {} to {}: {e}; the state dir is in {} already: move the config by hand",
                resolved.display(&resolved.config_path),
                resolved.display(&to),
                resolved.display(&backup)
            ))
        })?;
        // Its previous versions go with it.
        for sibling in [
            omniclaw_os::fsx::backup_path(&resolved.config_path),
            omniclaw_gateway::reload::last_good_path(&resolved.config_path),
        ] {
            if sibling.exists() {
                let _ = std::fs::rename(&sibling, aside(&sibling, stamp));
            }
        }
        config_backup = Some(to);
    }

    let workspace = &me.workspace;
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "profile": resolved.profile.name(),
            "service": service.as_ref().map(|s| json!({"platform": s.platform.as_str(), "name": s.name, "files": s.files})),
            "secrets": {"store": mode.kind(), "removed": removed_secrets},
            "rescueTargets": targets,
            "backup": {"stateDir": backup, "config": config_backup, "kept": moved.kept},
            "workspace": workspace,
            "notes": notes,
        }));
        return Ok(Outcome::Ok);
    }
    let mut rep = Report::new(Mark::Ok, format!("Removed profile {}", resolved.profile));
    rep.line(
        "service",
        match &service {
            Some(s) => format!("{} {} removed", s.platform, s.name),
            None => "none was installed".to_string(),
        },
    );
    rep.line(
        "secrets",
        match removed_secrets.len() {
            0 => format!("none stored in the {mode}"),
            _ => format!("{} removed from the {mode}", removed_secrets.join(", ")),
        },
    );
    for t in &targets {
        rep.line(
            "rescue",
            format!(
                "{} no longer names {} in rescue.targets",
                t["profile"].as_str().unwrap_or_default(),
                resolved.profile
            ),
        );
    }
    rep.line(
        "backup",
        format!(
            "{}{} (move it back to restore the profile)",
            resolved.display(&backup),
            config_backup
                .as_ref()
                .map_or(String::new(), |c| format!(" and {}", resolved.display(c)))
        ),
    );
    for k in &moved.kept {
        rep.line("kept", format!("{} (a workspace)", resolved.display(k)));
    }
    rep.line(
        "workspace",
        format!("{} left as it is", resolved.display(workspace)),
    );
    for n in &notes {
        rep.line("note", n.as_str());
    }
    print!("{}", rep.render());
    Ok(Outcome::Ok)
}

/// The rescue profiles whose `rescue.targets` names `gone`.
fn target_edits(inv: &Inventory, current: &Resolved) -> Vec<TargetEdit> {
    let gone = &current.profile;
    inv.profiles
        .iter()
        .filter(|p| !p.is_current)
        .filter_map(|p| {
            let ConfigState::Valid { loaded, .. } = &p.config else {
                return None;
            };
            let after = targets_without(&loaded.config.rescue.targets, gone);
            (after != TargetsAfter::Untouched).then(|| TargetEdit {
                profile: p.label.clone(),
                resolved: resolved_of(p, current),
                after,
            })
        })
        .collect()
}

/// `<path>.removed-<stamp>`, beside `path`.
fn aside(path: &Path, stamp: u64) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".removed-{stamp}"));
    path.with_file_name(name)
}

/// What must stay where it is inside the state dir: every profile's
/// workspace, and in the default profile's dir (which also holds the
/// named profiles' `workspace-NAME` and the desktop app's own files) all
/// of those.
fn protected(inv: &Inventory, me: &ProfileRecord) -> Vec<PathBuf> {
    let mut keep: Vec<PathBuf> = inv.profiles.iter().map(|p| p.workspace.clone()).collect();
    let default_dir = paths::default_state_dir(&inv.home, &Profile::Default);
    if paths::normalize(&me.state_dir) == paths::normalize(&default_dir) {
        if let Ok(entries) = std::fs::read_dir(&me.state_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("workspace")
                    || name.starts_with("desktop")
                    || name.starts_with(".desktop")
                {
                    keep.push(e.path());
                }
            }
        }
    }
    keep
}

/// What [`move_aside`] left in place.
struct Moved {
    kept: Vec<PathBuf>,
}

/// Moves `dir` to `to` whole, or — when it holds something to keep —
/// every other entry into `to`, leaving the kept ones (and `dir`) where
/// they are.
fn move_aside(dir: &Path, to: &Path, keep: &[PathBuf]) -> std::io::Result<Moved> {
    if !dir.exists() {
        return Ok(Moved { kept: Vec::new() });
    }
    let inside = |entry: &Path| keep.iter().any(|k| k.starts_with(entry));
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let kept: Vec<PathBuf> = entries.iter().filter(|e| inside(e)).cloned().collect();
    if kept.is_empty() {
        std::fs::rename(dir, to)?;
        return Ok(Moved { kept });
    }
    omniclaw_os::fsx::create_private_dir(to)?;
    for e in entries.iter().filter(|e| !inside(e)) {
        if let Some(name) = e.file_name() {
            std::fs::rename(e, to.join(name))?;
        }
    }
    Ok(Moved { kept })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_sit_beside() {
        assert_eq!(
            aside(Path::new("/h/.omniclaw-rescue"), 7),
            PathBuf::from("/h/.omniclaw-rescue.removed-7")
        );
        assert_eq!(
            aside(Path::new("/h/cfg/rescue.json"), 7),
            PathBuf::from("/h/cfg/rescue.json.removed-7")
        );
    }

    #[test]
    fn a_workspace_inside_stays_in_place() {
        let home = tempfile::tempdir().expect("tempdir");
        let state = home.path().join(".omniclaw-x");
        std::fs::create_dir_all(state.join("ws/canvas")).expect("mkdir");
        std::fs::create_dir_all(state.join("logs")).expect("mkdir");
        std::fs::write(state.join("omniclaw.json"), "{}").expect("write");
        let to = aside(&state, 1);
        let moved = move_aside(&state, &to, &[state.join("ws")]).expect("moved");
        assert_eq!(moved.kept, vec![state.join("ws")]);
        assert!(state.join("ws/canvas").is_dir());
        assert!(to.join("logs").is_dir() && to.join("omniclaw.json").is_file());
        assert!(!state.join("omniclaw.json").exists());

        let other = home.path().join(".omniclaw-y");
        std::fs::create_dir_all(other.join("logs")).expect("mkdir");
        let to = aside(&other, 1);
        move_aside(&other, &to, &[home.path().join(".omniclaw/workspace-y")]).expect("moved");
        assert!(!other.exists() && to.join("logs").is_dir());
    }
}
