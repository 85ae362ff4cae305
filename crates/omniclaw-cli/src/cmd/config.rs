//! `omniclaw config validate|get|set|unset|schema`.
//!
//! Reads work on an invalid config (that is when they are needed); writes
//! are validated as a whole before the atomic write, keep `.bak`, and keep
//! the user's comments.

use serde_json::json;

use omniclaw_core::config;
use omniclaw_core::paths::Resolved;
use omniclaw_os::edit;
use omniclaw_os::fsx;
use omniclaw_os::profiles::{self, ConfigState};

use crate::cli::ConfigCommand;
use crate::ctx::Ctx;
use crate::out::{self, CliError, CmdResult, Outcome};

use super::setup::command;

pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> CmdResult {
    match cmd {
        ConfigCommand::Schema => {
            out::json(&config::json_schema());
            Ok(Outcome::Ok)
        }
        ConfigCommand::Validate => validate(ctx),
        ConfigCommand::Get { path } => get(ctx, &path),
        ConfigCommand::Set { path, value, force } => {
            edit(ctx, &path, force, |text| config::set(text, &path, &value))
        }
        ConfigCommand::Unset { path, force } => {
            edit(ctx, &path, force, |text| config::unset(text, &path))
        }
        ConfigCommand::Rollback => rollback(ctx),
    }
}

/// Restores `<config>.last-good` (written by a gateway after 10 s of healthy
/// running) with [`edit::rollback`], which the desktop app's "Roll back"
/// shares; a running gateway picks the restored config up by its hot reload.
fn rollback(ctx: &Ctx) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let done = edit::rollback(&resolved).map_err(|e| CliError::failed(e.to_string()))?;
    let file = resolved.display(&resolved.config_path);
    // The keys the rollback changed back: the rescue's report names them.
    let keys: Vec<String> = match &done.rejected {
        Some(rejected) if done.changed => {
            let (before, after) = (
                profiles::read_config(rejected),
                profiles::read_config(&resolved.config_path),
            );
            match (before.value(), after.value()) {
                (Some(b), Some(a)) => omniclaw_core::reload::classify(b, a)
                    .changes
                    .into_iter()
                    .map(|c| c.path)
                    .collect(),
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    if ctx.json {
        out::json(&if done.changed {
            json!({
                "ok": true,
                "changed": true,
                "file": resolved.config_path,
                "restoredFrom": done.restored_from,
                "rejected": done.rejected,
                "keys": keys,
            })
        } else {
            json!({"ok": true, "changed": false, "file": resolved.config_path})
        });
    } else if !done.changed {
        println!("{file} already is the last known good config");
    } else {
        println!("{file}: restored the last known good config");
        if !keys.is_empty() {
            println!("  keys rolled back: {}", keys.join(", "));
        }
        if let Some(rejected) = &done.rejected {
            println!(
                "  the rejected one is kept as {}",
                resolved.display(rejected)
            );
        }
    }
    Ok(Outcome::Ok)
}

fn validate(ctx: &Ctx) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let file = resolved.display(&resolved.config_path);
    match profiles::read_config(&resolved.config_path) {
        ConfigState::Valid { loaded, .. } => {
            // Warnings never make the config invalid: exit 0 all the same.
            let warnings = loaded.warnings();
            if ctx.json {
                let list: Vec<_> = warnings
                    .iter()
                    .map(|d| json!({"path": d.path, "message": d.message, "line": d.line, "col": d.col}))
                    .collect();
                out::json(
                    &json!({"ok": true, "path": resolved.config_path, "errors": [], "warnings": list}),
                );
            } else if warnings.is_empty() {
                println!("{file}: valid");
            } else {
                let n = warnings.len();
                println!(
                    "{file}: valid, {n} warning{}",
                    if n == 1 { "" } else { "s" }
                );
                for d in &warnings {
                    println!("  warning: {d}");
                }
            }
            Ok(Outcome::Ok)
        }
        ConfigState::Invalid { errors, .. } => {
            if ctx.json {
                let list: Vec<_> = errors
                    .diagnostics()
                    .iter()
                    .map(|d| json!({"path": d.path, "message": d.message, "line": d.line, "col": d.col}))
                    .collect();
                out::json(&json!({"ok": false, "path": resolved.config_path, "errors": list}));
            } else {
                let n = errors.diagnostics().len();
                println!(
                    "{file}: invalid ({n} problem{})",
                    if n == 1 { "" } else { "s" }
                );
                for d in errors.diagnostics() {
                    println!("  {d}");
                }
            }
            Ok(Outcome::Problem)
        }
        ConfigState::Missing => Err(missing(&resolved)),
        ConfigState::Unreadable(msg) => Err(CliError::failed(msg)),
    }
}

fn get(ctx: &Ctx, path: &str) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    let text = read(&resolved)?;
    let doc = config::parse(&text).map_err(|e| {
        CliError::failed(format!(
            "{} does not parse:\n{e}",
            resolved.display(&resolved.config_path)
        ))
    })?;
    // Validates the path against the schema (unknown keys get a suggestion)
    // and redacts plaintext secrets.
    match config::get(&doc, path).map_err(CliError::usage)? {
        Some(v) => {
            if ctx.json {
                out::json(&json!({"ok": true, "path": path, "value": v}));
            } else {
                match &v {
                    serde_json::Value::String(s) => println!("{s}"),
                    other => out::json(other),
                }
            }
            Ok(Outcome::Ok)
        }
        None => {
            if ctx.json {
                out::json(&json!({"ok": false, "path": path, "value": null}));
            } else {
                eprintln!(
                    "{path} is not set in {} (the default applies)",
                    resolved.display(&resolved.config_path)
                );
            }
            Ok(Outcome::Problem)
        }
    }
}

fn edit(
    ctx: &Ctx,
    path: &str,
    force: bool,
    change: impl FnOnce(&str) -> Result<String, config::EditError>,
) -> CmdResult {
    let resolved = ctx.resolve()?;
    ctx.print_notes(&resolved);
    if let Some(msg) = unreadable(&resolved) {
        return Err(CliError::failed(msg));
    }
    let target = ctx.edit_target(&resolved);
    let options = edit::Options {
        force,
        ..edit::Options::default()
    };
    let edited = edit::edit_config(&target, &options, change).map_err(|e| {
        if e.is_bad_input() {
            CliError::usage(e)
        } else {
            CliError::failed(e)
        }
    })?;
    for clash in &edited.forced {
        eprintln!("warning: written with --force although {clash}");
    }
    if ctx.json {
        out::json(&json!({
            "ok": true,
            "path": path,
            "changed": edited.changed,
            "file": resolved.config_path,
            "forced": edited.forced,
        }));
    } else if edited.changed {
        println!(
            "{}: {path} updated (previous version in {})",
            resolved.display(&resolved.config_path),
            resolved.display(&fsx::backup_path(&resolved.config_path))
        );
    } else {
        println!(
            "{}: {path} already had that value",
            resolved.display(&resolved.config_path)
        );
    }
    Ok(Outcome::Ok)
}

/// Why the config cannot be read as text, when it exists and cannot (a
/// directory, a broken link, not UTF-8), with the fix.
fn unreadable(resolved: &Resolved) -> Option<String> {
    profiles::read_text(&resolved.config_path).err()
}

fn read(resolved: &Resolved) -> Result<String, CliError> {
    match profiles::read_text(&resolved.config_path) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(missing(resolved)),
        Err(msg) => Err(CliError::failed(msg)),
    }
}

fn missing(resolved: &Resolved) -> CliError {
    CliError::failed(format!(
        "no config at {}: run `{} setup` first",
        resolved.display(&resolved.config_path),
        command(resolved)
    ))
}
