//! The one way OmniClaw changes a profile's config: `config set|unset`,
//! `config.patch`, the desktop app's fixes, `secrets set`'s reference and the
//! rescue bot's `/config set` (which runs `config set`) all come here.
//!
//! An edit is computed from the file as it is under its lock (so concurrent
//! edits of different keys are all kept), must validate as a whole (the
//! core's edit functions check that), must not write a plaintext secret,
//! and must not bring a new conflict with another profile, a real OpenClaw
//! install or a port another process holds — unless forced. Then it is
//! written atomically with the previous version kept as `.bak`. A refused
//! edit leaves every file as it was.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use omniclaw_core::config;
use omniclaw_core::env::EnvSnapshot;
use omniclaw_core::inventory;
use omniclaw_core::paths::Resolved;
use omniclaw_core::ports::{self, Instance};

use crate::fsx;
use crate::live;
use crate::portowner::{self, Holder};
use crate::profiles;

/// The profile whose config is edited, as the isolation check needs it.
#[derive(Debug, Clone)]
pub struct Target {
    pub resolved: Resolved,
    pub env: EnvSnapshot,
}

/// How an edit is carried out.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Write even when the edit brings a conflict (the conflicts are
    /// returned in [`Edited::forced`]).
    pub force: bool,
    /// `config.patch`: the hash of the text the client based its edit on;
    /// a file changed since is refused, never overwritten.
    pub base_hash: Option<String>,
    /// A missing file is edited as `{}` (`config.patch`) instead of refused.
    pub create: bool,
}

/// What an edit did.
#[derive(Debug, Clone)]
pub struct Edited {
    pub changed: bool,
    /// The text now in the file.
    pub text: String,
    /// Conflicts written anyway because the edit was forced.
    pub forced: Vec<String>,
}

/// A conflict an edit would bring, with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub message: String,
    pub fix: String,
}

/// Why an edit was not written. Every variant leaves the file as it was.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no config at {path}: run `{command} setup` first")]
    Missing { path: String, command: String },
    #[error("{0}")]
    Unreadable(String),
    /// The result would not validate (or the path is wrong).
    #[error("{file} was not changed: {reason}")]
    Invalid { file: String, reason: String },
    #[error("{file} changed since it was read (its hash is now {current}): read it again and retry with the new hash")]
    Stale { file: String, current: String },
    #[error("{file} was not changed: {key} would hold a secret in plain text; keep it in the secret store instead: `{command} secrets set {key}` (it reads the value from stdin or a hidden prompt and points the config at the store)")]
    PlaintextSecret {
        file: String,
        key: String,
        command: String,
    },
    #[error("{file} was not changed: profile {profile} would collide:\n{}\nfix the edit, or write it anyway with `config set|unset … --force`", list(.clashes))]
    Conflicts {
        file: String,
        profile: String,
        clashes: Vec<Clash>,
    },
    #[error("cannot write {file}: {detail}; the file was not changed")]
    Io { file: String, detail: String },
}

impl EditError {
    /// Whether the edit itself is at fault (exit 2) rather than the
    /// machine (exit 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            EditError::Invalid { .. }
                | EditError::PlaintextSecret { .. }
                | EditError::Conflicts { .. }
                | EditError::Stale { .. }
        )
    }
}

/// Each clash on a line; a fix shared by the clashes before it is said
/// once, after the last of them.
pub fn list(clashes: &[Clash]) -> String {
    let mut out = Vec::new();
    for (i, c) in clashes.iter().enumerate() {
        out.push(format!("  - {}", c.message));
        if clashes.get(i + 1).is_none_or(|next| next.fix != c.fix) {
            out.push(format!("    fix: {}", c.fix));
        }
    }
    out.join("\n")
}

/// Edits the config of `target`: `change` gets the current text and returns
/// the new one (validated by the core's `set` / `unset` / `merge_patch`).
pub fn edit_config(
    target: &Target,
    options: &Options,
    change: impl FnOnce(&str) -> Result<String, config::EditError>,
) -> Result<Edited, EditError> {
    let resolved = &target.resolved;
    edit_at(
        &resolved.config_path,
        resolved.display(&resolved.config_path),
        &command(resolved),
        Some(target),
        options,
        change,
    )
}

/// [`edit_config`] of a config that belongs to no profile the caller knows
/// (a gateway run from a bare spec): validated, free of plaintext secrets,
/// locked and atomic, without the isolation check.
pub fn edit_file(
    path: &Path,
    options: &Options,
    change: impl FnOnce(&str) -> Result<String, config::EditError>,
) -> Result<Edited, EditError> {
    edit_at(
        path,
        path.display().to_string(),
        "omniclaw",
        None,
        options,
        change,
    )
}

fn edit_at(
    path: &Path,
    file: String,
    command: &str,
    target: Option<&Target>,
    options: &Options,
    change: impl FnOnce(&str) -> Result<String, config::EditError>,
) -> Result<Edited, EditError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if options.create => {
            std::fs::create_dir_all(dir).map_err(|e| EditError::Io {
                file: file.clone(),
                detail: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        // No file to lock beside: say what is missing, not that a lock failed.
        Some(dir) if !dir.is_dir() => {
            return Err(EditError::Missing {
                path: file,
                command: command.to_string(),
            })
        }
        _ => {}
    }
    let result = fsx::update(path, fsx::Options::with_backup(), |bytes| {
        let current = match bytes {
            Some(bytes) => Some(String::from_utf8(bytes.to_vec()).map_err(|_| {
                EditError::Unreadable(
                    profiles::read_text(path)
                        .err()
                        .unwrap_or_else(|| format!("{file} is not UTF-8 text")),
                )
            })?),
            None if options.create => None,
            None => {
                return Err(EditError::Missing {
                    path: file.clone(),
                    command: command.to_string(),
                })
            }
        };
        if let (Some(base), Some(text)) = (&options.base_hash, &current) {
            let hash = config::hash(text);
            if *base != hash {
                return Err(EditError::Stale {
                    file: file.clone(),
                    current: hash,
                });
            }
        }
        let base = current.as_deref().unwrap_or("{}\n");
        let next = change(base).map_err(|e| EditError::Invalid {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        if current.as_deref() == Some(next.as_str()) {
            return Ok((None, (false, next, Vec::new())));
        }
        check_secrets(&file, command, current.as_deref(), &next)?;
        if let Some(t) = target {
            check_targets(t, &file, current.as_deref(), &next)?;
        }
        let clashes = target
            .map(|t| check_isolation(t, current.as_deref(), &next))
            .unwrap_or_default();
        if !clashes.is_empty() && !options.force {
            return Err(EditError::Conflicts {
                file: file.clone(),
                profile: target.map_or_else(String::new, |t| t.resolved.profile.to_string()),
                clashes,
            });
        }
        let forced = clashes.into_iter().map(|c| c.message).collect();
        Ok((Some(next.clone().into_bytes()), (true, next, forced)))
    });
    match result {
        Ok((changed, text, forced)) => Ok(Edited {
            changed,
            text,
            forced,
        }),
        Err(fsx::UpdateError::Refused(e)) => Err(e),
        Err(e @ fsx::UpdateError::Io { .. }) => Err(EditError::Io {
            file,
            detail: match e {
                fsx::UpdateError::Io { action, source, .. } => {
                    format!("cannot {action} it: {source}")
                }
                fsx::UpdateError::Refused(_) => String::new(),
            },
        }),
    }
}

/// Refuses a plaintext secret the edit writes (one the file already held,
/// written by hand, may stay: `doctor` flags it).
fn check_secrets(file: &str, command: &str, old: Option<&str>, new: &str) -> Result<(), EditError> {
    let value_of = |text: &str| config::parse(text).ok().map(|d| d.into_value());
    let before = old
        .and_then(value_of)
        .map(|v| config::plaintext_secrets(&v))
        .unwrap_or_default();
    let Some(after) = value_of(new) else {
        return Ok(());
    };
    match config::plaintext_secrets(&after)
        .into_iter()
        .find(|s| !before.contains(s))
    {
        Some((key, _)) => Err(EditError::PlaintextSecret {
            file: file.to_string(),
            key,
            command: command.to_string(),
        }),
        None => Ok(()),
    }
}

/// Refuses `rescue.targets` entries the edit brings that name no profile on
/// this machine. An entry the file already held stays (a profile removed
/// by hand is `status`'s to report, not a reason to refuse an unrelated
/// edit). When the profiles cannot be listed, validation alone judges.
fn check_targets(
    target: &Target,
    file: &str,
    old: Option<&str>,
    new: &str,
) -> Result<(), EditError> {
    let Ok(doc) = config::parse(new) else {
        return Ok(());
    };
    let Ok(inv) = profiles::load(&target.resolved, &target.env) else {
        return Ok(());
    };
    let known: Vec<_> = inv.profiles.iter().map(|p| p.profile.clone()).collect();
    let before: Vec<String> = old
        .and_then(|text| config::parse(text).ok())
        .map(|d| {
            config::unknown_targets(&d, &known)
                .into_iter()
                .map(|e| e.message)
                .collect()
        })
        .unwrap_or_default();
    let brought: Vec<config::Diagnostic> = config::unknown_targets(&doc, &known)
        .into_iter()
        .filter(|e| !before.contains(&e.message))
        .collect();
    if brought.is_empty() {
        return Ok(());
    }
    Err(EditError::Invalid {
        file: file.to_string(),
        reason: config::EditError::Invalid(config::ConfigErrors(brought)).to_string(),
    })
}

/// The conflicts the new text brings that the old one does not have: with
/// other profiles and OpenClaw installs (where they run, when they run),
/// and ports another process holds that the edit newly plans. Empty when
/// the profiles cannot be listed (the edit is then judged by validation
/// alone, as before).
pub fn check_isolation(target: &Target, old: Option<&str>, new: &str) -> Vec<Clash> {
    let resolved = &target.resolved;
    let Ok(inv) = profiles::load(resolved, &target.env) else {
        return Vec::new();
    };
    let me = inv
        .current()
        .map_or_else(|| resolved.profile.name().to_string(), |c| c.label.clone());
    let others: Vec<Instance> = inv
        .instances(&target.env)
        .into_iter()
        .filter(|i| i.name != me)
        .collect();
    let instance = |text: &str| -> Option<Instance> {
        let value = config::parse(text).ok()?.into_value();
        let mut i = inventory::for_profile(&me, resolved, &value, &target.env);
        if let Some(p) = resolved.env_port {
            i.ports.base = p;
        }
        Some(i)
    };
    let Some(candidate) = instance(new) else {
        return Vec::new();
    };
    let current = old.and_then(instance);
    let mut clashes: Vec<Clash> = ports::new_conflicts(&others, current.as_ref(), &candidate)
        .into_iter()
        .map(|c| Clash {
            message: c.to_string(),
            fix: c.fix(),
        })
        .collect();
    clashes.extend(held_ports(
        &me,
        resolved,
        current.as_ref(),
        &candidate,
        &others,
    ));
    clashes
}

/// Ports the edit newly plans that a process other than this profile's own
/// gateway holds right now. The socket tables are read only when the edit
/// moves a port at all.
fn held_ports(
    me: &str,
    resolved: &Resolved,
    current: Option<&Instance>,
    candidate: &Instance,
    others: &[Instance],
) -> Vec<Clash> {
    let rows = |i: &Instance| -> Vec<ports::Row> { ports::plan(std::slice::from_ref(i)).rows };
    let before = current.map(rows).unwrap_or_default();
    let moved: Vec<ports::Row> = rows(candidate)
        .into_iter()
        .filter(|r| {
            !before
                .iter()
                .any(|b| b.surface == r.surface && b.range == r.range)
        })
        .collect();
    if moved.is_empty() {
        return Vec::new();
    }
    let own = live::running_pid(&resolved.state_dir);
    let running: HashMap<String, u32> = own.map(|pid| (me.to_string(), pid)).into_iter().collect();
    let listening = portowner::listening();
    let states = live::check_with(&moved, &running, &listening);
    // A remote gateway's tunnel takes its local port even while it is down.
    let tunnels = crate::remote::load(&resolved.home)
        .map(|r| {
            r.tunnel_ports()
                .into_iter()
                .map(|(p, n)| (p, n.to_string()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let held = |p: u16| listening.contains_key(&p) || tunnels.iter().any(|(t, _)| *t == p);
    let free = ports::free_base(others, candidate.ports.base, held).ok();
    let mut clashes: Vec<Clash> = moved
        .iter()
        .zip(states)
        .filter_map(|(row, state)| match state {
            live::PortState::Held { port, holder } => {
                Some(held_clash(me, resolved, row, port, &holder, free))
            }
            _ => None,
        })
        .collect();
    for row in &moved {
        for (port, remote) in tunnels.iter().filter(|(p, _)| row.range.contains(*p)) {
            if listening.contains_key(port) {
                // Up right now: its holder (ssh) is named above.
                continue;
            }
            let fix = move_fix(
                resolved,
                row,
                free,
                format!("choose another value for {}", row.key),
            );
            clashes.push(Clash {
                message: format!(
                    "{me} {} port {port} is the local end of the remote gateway {remote}'s SSH tunnel",
                    row.surface
                ),
                fix,
            });
        }
    }
    clashes
}

fn held_clash(
    me: &str,
    resolved: &Resolved,
    row: &ports::Row,
    port: u16,
    holder: &Holder,
    free: Option<u16>,
) -> Clash {
    let fix = move_fix(
        resolved,
        row,
        free,
        format!("stop {holder} or choose another value for {}", row.key),
    );
    Clash {
        message: format!("{me} {} port {port} is held by {holder}", row.surface),
        fix,
    }
}

/// How to move a surface off a taken port: a free base when the base port
/// places it, else `otherwise`.
fn move_fix(resolved: &Resolved, row: &ports::Row, free: Option<u16>, otherwise: String) -> String {
    match (row.key == ports::PortKey::GatewayPort, free) {
        (true, Some(base)) => format!(
            "choose a base whose ports are free, e.g. {base}: {} config set gateway.port {base}",
            command(resolved)
        ),
        _ => otherwise,
    }
}

fn command(resolved: &Resolved) -> String {
    match resolved.profile.suffix() {
        None => "omniclaw".to_string(),
        Some(name) => format!("omniclaw --profile {name}"),
    }
}

/// `<config>.bak`, for messages.
pub fn backup_of(resolved: &Resolved) -> PathBuf {
    fsx::backup_path(&resolved.config_path)
}

/// Suffix of the last known good config: `omniclaw.json.last-good`.
pub const LAST_GOOD_SUFFIX: &str = ".last-good";

/// `<config>.last-good`: the config a gateway ran healthy on for 10 s,
/// which [`rollback`] restores.
pub fn last_good_path(config: &Path) -> PathBuf {
    let mut name = config
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(LAST_GOOD_SUFFIX);
    config.with_file_name(name)
}

/// What [`rollback`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The config was replaced (false: it already was the last good one).
    pub changed: bool,
    pub restored_from: PathBuf,
    /// Where the replaced text is kept, when there was one.
    pub rejected: Option<PathBuf>,
}

/// Why [`rollback`] changed nothing; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("no last known good config for profile {profile} ({file} is missing): a gateway saves it after running 10 s on a config; fix the config by hand (`{command} config validate` lists the problems)")]
    NoLastGood {
        profile: String,
        file: String,
        command: String,
    },
    #[error("{file} is not a valid config, so it is not restored:\n{errors}")]
    InvalidLastGood { file: String, errors: String },
    #[error("{0}")]
    Unreadable(String),
    #[error("cannot keep the current config as {file}: {detail}; nothing was changed")]
    KeepRejected { file: String, detail: String },
    #[error("cannot write {file}: {detail}; the file was not changed")]
    Io { file: String, detail: String },
}

/// Restores `<config>.last-good` over the profile's config, under the
/// config's lock: the text it replaces is kept as
/// `<config>.rejected.<unix seconds>` (and as `.bak`). A running gateway
/// picks the restored config up by its hot reload. `config rollback`, the
/// rescue bot's `/rollback` (which runs it) and the desktop app's
/// "Roll back" share it.
pub fn rollback(resolved: &Resolved) -> Result<RolledBack, RollbackError> {
    let good_path = last_good_path(&resolved.config_path);
    let good = match profiles::read_text(&good_path) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Err(RollbackError::NoLastGood {
                profile: resolved.profile.to_string(),
                file: resolved.display(&good_path),
                command: command(resolved),
            })
        }
        Err(message) => return Err(RollbackError::Unreadable(message)),
    };
    config::load(&good).map_err(|e| RollbackError::InvalidLastGood {
        file: resolved.display(&good_path),
        errors: e.to_string(),
    })?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = resolved
        .config_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".rejected.{stamp}"));
    let rejected = resolved.config_path.with_file_name(name);
    let shown = resolved.display(&resolved.config_path);
    // Under the config's lock, like every other writer of it: an edit
    // made meanwhile is what gets kept as rejected, never lost.
    let result = fsx::update(
        &resolved.config_path,
        fsx::Options::with_backup(),
        |current| {
            if current == Some(good.as_bytes()) {
                return Ok((None, None));
            }
            let kept = match current {
                Some(text) => {
                    fsx::atomic_replace(&rejected, text).map_err(|e| {
                        RollbackError::KeepRejected {
                            file: resolved.display(&rejected),
                            detail: e.to_string(),
                        }
                    })?;
                    Some(rejected.clone())
                }
                None => None,
            };
            Ok((Some(good.clone().into_bytes()), Some(kept)))
        },
    );
    match result {
        // `None`: the file already held the last good config.
        Ok(None) => Ok(RolledBack {
            changed: false,
            restored_from: good_path,
            rejected: None,
        }),
        Ok(Some(kept)) => Ok(RolledBack {
            changed: true,
            restored_from: good_path,
            rejected: kept,
        }),
        Err(fsx::UpdateError::Refused(e)) => Err(e),
        Err(fsx::UpdateError::Io { action, source, .. }) => Err(RollbackError::Io {
            file: shown,
            detail: format!("cannot {action} it: {source}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main_profile(home: &Path) -> Resolved {
        profile(home, "main")
    }

    fn profile(home: &Path, name: &str) -> Resolved {
        omniclaw_core::paths::resolve(omniclaw_core::paths::Inputs {
            profile_flag: Some(name),
            env: &home_env(home),
            cwd: None,
        })
        .expect("resolves")
    }

    fn home_env(home: &Path) -> EnvSnapshot {
        // OMNICLAW_HOME: the one home variable every system reads.
        EnvSnapshot::default().with(omniclaw_core::env::HOME, home.to_string_lossy().as_ref())
    }

    #[test]
    fn a_target_must_be_a_profile_on_this_machine() {
        let home = tempfile::tempdir().expect("home");
        for name in ["main", "rescue"] {
            let r = profile(home.path(), name);
            std::fs::create_dir_all(&r.state_dir).expect("state dir");
            std::fs::write(&r.config_path, "{}\n").expect("config");
        }
        let rescue = Target {
            resolved: profile(home.path(), "rescue"),
            env: home_env(home.path()),
        };
        let set = |path: &str, value: &str| {
            edit_config(&rescue, &Options::default(), |text| {
                config::set(text, path, value)
            })
        };
        let err = set("rescue.targets", "['main', 'ghost']").expect_err("refused");
        assert!(err.is_bad_input(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(
                "rescue.targets[1]: no profile \"ghost\" on this machine (profiles: main, rescue)"
            ),
            "{text}"
        );
        assert!(text.ends_with("or leave it out (3:25)"), "{text}");
        let file = std::fs::read_to_string(&rescue.resolved.config_path).expect("config");
        assert_eq!(file, "{}\n", "a refused edit writes nothing");

        set("rescue.targets", "['main']").expect("a profile that exists");
        // A target removed by hand since does not block an unrelated edit.
        std::fs::write(
            &rescue.resolved.config_path,
            "{ rescue: { targets: ['main', 'gone'] } }\n",
        )
        .expect("hand edit");
        set("logging.level", "'debug'").expect("unrelated edit");
        set("rescue.targets[2]", "'ghost'").expect_err("a new unknown target");
    }

    const GOOD: &str = "{ gateway: { port: 18789 } }\n";
    const BAD: &str = "{ gateway: { port: \"nope\" } }\n";

    #[test]
    fn rollback_restores_the_last_good_config_and_keeps_the_rejected_one() {
        let home = tempfile::tempdir().expect("home");
        let r = main_profile(home.path());
        std::fs::create_dir_all(&r.state_dir).expect("state dir");
        let err = rollback(&r).expect_err("nothing to restore yet");
        assert!(
            err.to_string()
                .contains("omniclaw --profile main config validate"),
            "{err}"
        );

        std::fs::write(last_good_path(&r.config_path), GOOD).expect("last good");
        std::fs::write(&r.config_path, BAD).expect("bad edit");
        let done = rollback(&r).expect("rolled back");
        assert!(done.changed);
        assert_eq!(
            std::fs::read_to_string(&r.config_path).expect("config"),
            GOOD
        );
        let kept = done.rejected.expect("the rejected text is kept");
        assert_eq!(std::fs::read_to_string(kept).expect("rejected"), BAD);

        let again = rollback(&r).expect("nothing left to do");
        assert_eq!((again.changed, again.rejected), (false, None));
    }

    #[test]
    fn an_invalid_last_good_config_is_not_restored() {
        let home = tempfile::tempdir().expect("home");
        let r = main_profile(home.path());
        std::fs::create_dir_all(&r.state_dir).expect("state dir");
        std::fs::write(last_good_path(&r.config_path), BAD).expect("last good");
        std::fs::write(&r.config_path, GOOD).expect("config");
        let err = rollback(&r).expect_err("refused");
        assert!(
            matches!(err, RollbackError::InvalidLastGood { .. }),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&r.config_path).expect("config"),
            GOOD
        );
    }
}
